/* SPDX-License-Identifier: ISC */
/*
 * smtp_client.c - layer 3: the sending side of RFC 5321 (smtp_client.h).
 *
 * Destinations ("mx:example.org", "relay:host:port") each have a queue of
 * deliveries and a set of connections. A delivery goes to an idle
 * connection of its destination if there is one, else a new connection is
 * opened while the destination has fewer than max_per_destination; else it
 * waits. A connection that finishes a transaction takes the next queued
 * delivery (no RSET needed after a completed one; RSET after an aborted
 * one), or idles for idle_time and then says QUIT.
 *
 * A new connection resolves its destination (MX hosts in order, then each
 * host's addresses; a relay host directly), tries each address in turn,
 * reads the greeting, says EHLO (HELO if EHLO is refused) and learns the
 * extensions. With PIPELINING, MAIL, every RCPT and DATA go out together
 * (RFC 2920); without it, one at a time. The body is sent with CRLF line
 * ends and dot-stuffing (message_to_wire()); to a server that offers
 * CHUNKING (RFC 3030) as one "BDAT n LAST" chunk instead, once the RCPT
 * replies say someone takes it (message_to_wire_chunk()). SIZE is respected; BODY=
 * 8BITMIME is declared when needed and offered; a server without 8BITMIME
 * gets a converted message when message_downgrade() can convert it.
 *
 * Timeouts follow RFC 5321 4.5.3.2 (command replies 5 min, DATA
 * termination 10 min), all configurable. Replies are parsed by
 * smtp_reply_reader (bounded lines and text); garbage or an overlong line
 * ends the connection with a temporary failure for what was in flight.
 */
#include "smtp/smtp_client.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base/dns.h"
#include "base/intl.h"
#include "base/log.h"
#include "base/tls.h"
#include "base/util.h"
#include "mail/message.h"
#include "mail/tlsrpt.h"
#include "smtp/mtasts.h"
#include "smtp/smtp_reply.h"
#include "smtp/sts.h"
#include "smtp/tlsa.h"

#define CLIENT_LINE_MAX 4096

enum cstate {
	C_RESOLVE, C_CONNECT, C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_TLS,
	C_READY, C_MAIL,
	C_RCPT, C_DATA, C_BODY, C_ABORT_DATA, C_RSET, C_QUIT,
};

struct pending {
	TAILQ_ENTRY(pending) entry;
	struct smtp_delivery *d;
	smtp_client_cb cb;
	void *arg;
};
TAILQ_HEAD(pending_list, pending);

struct conn;
TAILQ_HEAD(conn_list, conn);

struct dest {
	TAILQ_ENTRY(dest) entry;
	struct smtp_client *c;
	char key[320];
	enum smtp_dest_kind kind;
	char name[300];           /* domain, or relay host */
	unsigned port;
	struct pending_list queue;
	struct conn_list conns;
	unsigned nconns;
	unsigned connecting;      /* not yet ready */
	enum smtp_tls_policy tls;
	bool tls_broken;          /* a handshake failed: "may" goes plain */
	bool requiretls;          /* its deliveries are REQUIRETLS mail */
};

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct dest *dest;
	struct bufferevent *bev;
	enum cstate st;
	struct dns_query *q;
	char **hosts;
	size_t nhosts, host_i;
	bool implicit_mx;
	struct sockaddr_storage addrs[32];
	size_t naddrs, addr_i;
	char host[320];
	char hostname[300];       /* the name TLS checks (MX host or relay) */
	/* DANE (RFC 7672), for a destination whose policy is "dane": */
	bool mx_secure;           /* the MX answer was proven (DNSSEC) */
	bool addr_secure;         /* and this host's addresses */
	char *canon;              /* the host's CNAME-expanded name, when
	                           * its addresses were found securely
	                           * through an alias, or NULL */
	bool tlsa_at_canon;       /* the TLSA lookup out is canon's */
	char tlsa_base[300];      /* where the records in force were found:
	                           * the SNI sent, the name DANE-TA checks */
	bool dane;                /* usable TLSA: TLS, and a match, required */
	bool dane_tls_only;       /* TLSA, none usable: TLS required */
	struct tlsa_rr *tlsa;     /* this host's usable records */
	unsigned char *tlsa_data; /* what they point into */
	size_t ntlsa;
	bool authenticated;       /* the peer was verified (PKIX or DANE) */
	/* MTA-STS (RFC 8461), for MX delivery: */
	struct sts_query *sq;
	struct mtasts_policy *sts;     /* the policy in force, or NULL */
	bool sts_testing;         /* this host: the same checked, but only
	                           * reported (RFC 8461 "testing") */
	bool sts_verify;          /* this host: TLS with a verified
	                           * certificate required (enforce) */
	char skipped[300];        /* why the last host was passed over */
	bool tls;                 /* the connection is encrypted */
	bool pipelining, eightbitmime, has_size, ready;
	bool chunking;            /* CHUNKING: the body goes as one BDAT */
	bool requiretls;          /* the peer offers REQUIRETLS */
	bool dsn;                 /* the peer offers DSN (RFC 3461) */
	bool smtputf8;            /* the peer offers SMTPUTF8 (RFC 6531) */
	unsigned long size_max;
	struct smtp_reply_reader rr;
	struct pending *cur;
	size_t rcpt_i;            /* next RCPT reply expected */
	size_t accepted;
	bool need_rset;
	struct event *idle;
	/* the message being sent: its text (the delivery's, or conv), sent
	 * in pieces of WIRE_PIECE as the output drains, so that only a
	 * piece at a time is in its wire form */
	struct buf conv;          /* its 7-bit form, when it needed one */
	const char *src;          /* NULL once all of it is out */
	size_t src_len, src_off;
	bool src_stuff;           /* DATA: dot-stuffed, ".\r\n" at the end */
	size_t wire_len;          /* what it is on the wire (SIZE, BDAT) */
	struct buf wire;          /* the piece being written */
	int last_code;
	char last_text[SMTP_REPLY_TEXT_MAX];
	bool *freed;              /* set by conn_free for the running frame */
};

struct smtp_client {
	struct event_base *base;
	struct dns *dns;
	struct smtp_client_settings s;
	char *helo;
	TAILQ_HEAD(, dest) dests;
	unsigned long connections;
	struct event *sweep;      /* frees destinations nobody uses */
};

static void conn_free(struct conn *cn);
static void conn_next(struct conn *cn);
static void dest_kick(struct dest *dt);
static void conn_try_host(struct conn *cn);
static void conn_try_addr(struct conn *cn);
static void conn_skip_host(struct conn *cn, const char *why,
    const char *result_type);
static void tls_report(struct conn *cn, bool success,
    const char *result_type);
static const char *cert_result(const char *why);
static void mx_ready(struct conn *cn);
static void on_tlsa(void *arg, enum dns_status st, bool secure,
    const struct tlsa_rr *rrs, size_t n);
static void tlsa_lookup(struct conn *cn, const char *base);

/* MTA-STS's certificate check applies to this host: its policy says
 * enforce and DANE does not (DANE wins, RFC 8461 2). */
static bool
sts_pkix(const struct conn *cn)
{
	return cn->sts_verify && !cn->dane && !cn->dane_tls_only;
}

/* The same for a policy in testing mode: checked, reported, not kept. */
static bool
sts_probe(const struct conn *cn)
{
	return cn->sts_testing && !cn->dane && !cn->dane_tls_only;
}

/* Whether this connection looks for DANE (RFC 7672 2.2.1: only under
 * an MX answer proven by DNSSEC). */
static bool
dane_applies(const struct conn *cn)
{
	return cn->dest->tls == SMTP_TLS_DANE && cn->mx_secure &&
	    dns_validating(cn->dest->c->dns);
}

/* --- deliveries ------------------------------------------------------- */

/* peer: the text is the next hop's reply (else Tern's own words). */
static void
set_result(struct smtp_delivery *d, size_t i, int code, const char *text,
    bool peer)
{
	free(d->texts[i]);
	d->codes[i] = code;
	d->texts[i] = xstrdup(text);
	d->answered[i] = peer;
}

/* Every recipient without a final answer gets this one. */
static void
set_all_open(struct smtp_delivery *d, int code, const char *text, bool peer)
{
	for (size_t i = 0; i < d->nrcpts; i++)
		if (d->codes[i] == 0 || d->codes[i] / 100 == 2)
			set_result(d, i, code, text, peer);
}

static void
pending_done(struct pending *p)
{
	p->cb(p->arg, p->d);
	free(p);
}

/* Fails every queued delivery of a destination (no connection can help). */
static void
dest_fail_queue(struct dest *dt, int code, const char *text)
{
	struct pending *p;

	while ((p = TAILQ_FIRST(&dt->queue)) != NULL) {
		TAILQ_REMOVE(&dt->queue, p, entry);
		for (size_t i = 0; i < p->d->nrcpts; i++)
			if (p->d->codes[i] == 0)
				set_result(p->d, i, code, text, false);
		pending_done(p);
	}
}

void
smtp_delivery_clear(struct smtp_delivery *d)
{
	for (size_t i = 0; d->texts && i < d->nrcpts; i++)
		free(d->texts[i]);
	free(d->texts);
	free(d->codes);
	free(d->answered);
	d->texts = NULL;
	d->codes = NULL;
	d->answered = NULL;
	for (size_t i = 0; d->ascii_rcpts && i < d->nrcpts; i++)
		free(d->ascii_rcpts[i]);
	free(d->ascii_rcpts);
	free(d->ascii_sender);
	d->ascii_rcpts = NULL;
	d->ascii_sender = NULL;
}

/* path with its domain as A-labels; NULL if the local part is not ASCII
 * (then nothing but SMTPUTF8 can carry it) */
static char *
ascii_path(const char *path)
{
	char out[SMTP_PATH_MAX + 1];

	return smtp_path_ascii(path, out, sizeof(out)) == 0 ? xstrdup(out) :
	    NULL;
}

/*
 * A SMTPUTF8 message for a hop without SMTPUTF8 (RFC 6531 3.2): fine as
 * it is if nothing in its envelope or header section is UTF-8; fine
 * with A-labels for domains if only they are; else false.
 */
static bool
smtputf8_downgrade(struct smtp_delivery *d)
{
	bool need = !intl_is_ascii(d->sender, strlen(d->sender));

	for (size_t i = 0; i < d->nrcpts && !need; i++)
		need = !intl_is_ascii(d->rcpts[i], strlen(d->rcpts[i]));
	if (!intl_is_ascii(d->body->data, message_header_len(d->body->data,
	    d->body->len)))
		return false;   /* UTF-8 header fields: RFC 6532 only */
	if (!need)
		return true;
	d->ascii_sender = ascii_path(d->sender);
	d->ascii_rcpts = xcalloc(d->nrcpts, sizeof(char *));
	bool ok = d->ascii_sender != NULL;
	for (size_t i = 0; i < d->nrcpts; i++) {
		d->ascii_rcpts[i] = ascii_path(d->rcpts[i]);
		ok &= d->ascii_rcpts[i] != NULL;
	}
	if (!ok) {
		/* no half-converted envelope is ever kept */
		for (size_t i = 0; i < d->nrcpts; i++)
			free(d->ascii_rcpts[i]);
		free(d->ascii_rcpts);
		free(d->ascii_sender);
		d->ascii_rcpts = NULL;
		d->ascii_sender = NULL;
	}
	return ok;
}

/* --- output helpers --------------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
say(struct conn *cn, const char *fmt, ...)
{
	va_list ap;
	struct evbuffer *out = bufferevent_get_output(cn->bev);

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
set_timeout(struct conn *cn, unsigned secs)
{
	struct timeval tv = { (time_t)secs, 0 };

	bufferevent_set_timeouts(cn->bev, &tv, &tv);
}

/* --- transactions ----------------------------------------------------- */

#define WIRE_PIECE (64 * 1024)

static void conn_fail(struct conn *cn, const char *why);

/*
 * The message's next pieces onto the output while less than two are
 * waiting there; each is cut after an LF (a line longer than a piece
 * goes whole), so each piece's lines are turned into wire form alone.
 * The write callback calls it again as the output drains.
 */
static void
body_pump(struct conn *cn)
{
	struct evbuffer *out = bufferevent_get_output(cn->bev);

	while (cn->src && evbuffer_get_length(out) < 2 * WIRE_PIECE) {
		if (cn->src_off == cn->src_len) {
			if (cn->src_stuff)
				bufferevent_write(cn->bev, ".\r\n", 3);
			cn->src = NULL;
			break;
		}
		const char *p = cn->src + cn->src_off;
		size_t left = cn->src_len - cn->src_off, n = left;
		if (left > WIRE_PIECE) {
			const char *nl = memrchr(p, '\n', WIRE_PIECE);
			if (nl == NULL)
				nl = memchr(p + WIRE_PIECE, '\n', left -
				    WIRE_PIECE);
			n = nl ? (size_t)(nl - p) + 1 : left;
		}
		buf_reset(&cn->wire);
		(cn->src_stuff ? message_to_wire_lines : message_to_wire_chunk)(
		    p, n, &cn->wire);
		bufferevent_write(cn->bev, cn->wire.data, cn->wire.len);
		cn->src_off += n;
	}
}

static void
conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;

	(void)bev;
	if (cn->st == C_BODY && cn->src)
		body_pump(cn);
}

static void
tx_finish(struct conn *cn)
{
	struct pending *p = cn->cur;

	cn->cur = NULL;
	cn->src = NULL;          /* the delivery's text goes with it */
	buf_clear(&cn->conv);    /* no big 7-bit copy kept by an idle one */
	(void)str_copy(p->d->remote, sizeof(p->d->remote), cn->host);
	pending_done(p);
	conn_next(cn);
}

static void
send_rcpt(struct conn *cn, size_t i)
{
	const struct smtp_delivery *d = cn->cur->d;
	const char *dsn = cn->dsn && d->rcpt_dsn && d->rcpt_dsn[i] ?
	    d->rcpt_dsn[i] : "";

	say(cn, "RCPT TO:%s%s", d->ascii_rcpts && !cn->smtputf8 ?
	    d->ascii_rcpts[i] : d->rcpts[i], dsn);
}

static void
tx_start(struct conn *cn, struct pending *p)
{
	struct smtp_delivery *d = p->d;
	char params[400] = "";

	cn->cur = p;
	cn->rcpt_i = 0;
	cn->accepted = 0;
	buf_reset(&cn->conv);
	cn->src = d->body->data;
	cn->src_len = d->body->len;
	if (d->eightbit && !cn->eightbitmime) {
		/* RFC 6152 3: convert to 7 bit, or fail for good */
		if (message_downgrade(d->body->data, d->body->len,
		    &cn->conv) != 0) {
			cn->src = NULL;
			set_all_open(d, 554, "554 5.6.3 the message has 8-bit "
			    "content the next hop does not accept (no "
			    "8BITMIME) and it cannot be converted", false);
			tx_finish(cn);
			return;
		}
		cn->src = cn->conv.data;
		cn->src_len = cn->conv.len;
		log_info("%s: converted to 7 bit for %s (no 8BITMIME)", d->id,
		    cn->host);
	}
	cn->src_off = 0;
	cn->src_stuff = !cn->chunking;
	cn->wire_len = message_wire_size(cn->src, cn->src_len,
	    cn->src_stuff);
	if (cn->size_max > 0 && cn->wire_len > cn->size_max) {
		char text[600];
		(void)snprintf(text, sizeof(text), "552 5.3.4 message size "
		    "%zu exceeds the limit of %s (%lu)", cn->wire_len,
		    cn->host, cn->size_max);
		set_all_open(d, 552, text, false);
		tx_finish(cn);
		return;
	}
	if (d->requiretls && !(cn->tls && cn->requiretls &&
	    cn->authenticated)) {
		/* RFC 8689 4.2.1: never to a hop that cannot keep it */
		char text[600];
		(void)snprintf(text, sizeof(text), "550 5.7.30 REQUIRETLS "
		    "support required: %s %s", cn->host, !cn->authenticated ?
		    "could not be authenticated (no DANE TLSA records "
		    "matched)" : "does not offer it");
		set_all_open(d, 550, text, false);
		tx_finish(cn);
		return;
	}
	if (d->smtputf8 && !cn->smtputf8 && d->ascii_rcpts == NULL &&
	    !smtputf8_downgrade(d)) {
		char text[600];
		(void)snprintf(text, sizeof(text), "550 5.6.7 SMTPUTF8 is "
		    "required (a UTF-8 address or header field) but %s does "
		    "not offer it", cn->host);
		set_all_open(d, 550, text, false);
		tx_finish(cn);
		return;
	}
	if (cn->need_rset) {
		say(cn, "RSET");
		cn->need_rset = false;
		cn->st = C_RSET;
		set_timeout(cn, cn->dest->c->s.command_timeout);
		return;
	}
	if (cn->has_size)
		(void)snprintf(params, sizeof(params), " SIZE=%zu",
		    cn->wire_len);
	if (d->eightbit && cn->eightbitmime)
		(void)str_copy(params + strlen(params),
		    sizeof(params) - strlen(params), " BODY=8BITMIME");
	if (d->requiretls)
		(void)str_copy(params + strlen(params),
		    sizeof(params) - strlen(params), " REQUIRETLS");
	if (d->smtputf8 && cn->smtputf8)
		(void)str_copy(params + strlen(params),
		    sizeof(params) - strlen(params), " SMTPUTF8");
	if (cn->dsn && d->mail_dsn)
		(void)str_copy(params + strlen(params),
		    sizeof(params) - strlen(params), d->mail_dsn);
	d->dsn = cn->dsn;
	say(cn, "MAIL FROM:%s%s", d->ascii_sender && !cn->smtputf8 ?
	    d->ascii_sender : d->sender, params);
	if (cn->pipelining) {
		for (size_t i = 0; i < d->nrcpts; i++)
			send_rcpt(cn, i);
		/* BDAT waits for the RCPT replies: no chunk for nobody */
		if (!cn->chunking)
			say(cn, "DATA");
	}
	cn->st = C_MAIL;
	set_timeout(cn, cn->dest->c->s.command_timeout);
}

/* MAIL, RCPT and DATA replies. */
static void
tx_reply(struct conn *cn, int code, const char *text)
{
	struct smtp_delivery *d = cn->cur->d;

	switch (cn->st) {
	case C_RSET:
		tx_start(cn, cn->cur);
		return;
	case C_MAIL:
		if (code / 100 != 2) {
			set_all_open(d, code, text, true);
			cn->need_rset = true;
			if (cn->pipelining) {
				/* RCPT and DATA replies still come: read them */
				cn->st = C_RCPT;
				cn->accepted = 0;
				return;
			}
			tx_finish(cn);
			return;
		}
		cn->st = C_RCPT;
		if (!cn->pipelining)
			send_rcpt(cn, 0);
		return;
	case C_RCPT:
		if (cn->rcpt_i < d->nrcpts) {
			size_t i = cn->rcpt_i++;
			if (d->codes[i] == 0) {
				if (code / 100 == 2)
					cn->accepted++;
				set_result(d, i, code / 100 == 2 ? 0 : code,
				    text, true);
				if (code / 100 == 2)
					d->codes[i] = 0; /* pending DATA */
			}
			if (cn->rcpt_i < d->nrcpts) {
				if (!cn->pipelining)
					send_rcpt(cn, cn->rcpt_i);
				return;
			}
			cn->st = C_DATA;
			if (!cn->pipelining || cn->chunking) {
				if (cn->accepted == 0) {
					cn->need_rset = true;
					tx_finish(cn);
					return;
				}
				if (cn->chunking) {
					/* the whole message as one LAST chunk */
					say(cn, "BDAT %zu LAST", cn->wire_len);
					cn->st = C_BODY;
					body_pump(cn);
					set_timeout(cn, cn->dest->c->s.data_timeout);
					return;
				}
				say(cn, "DATA");
			}
			return;
		}
		return;
	case C_DATA:
		if (code == 354 && cn->accepted > 0) {
			cn->st = C_BODY;
			body_pump(cn);
			set_timeout(cn, cn->dest->c->s.data_timeout);
			return;
		}
		if (code == 354) {
			/* RFC 2920: nothing accepted, but DATA went through */
			say(cn, ".");
			cn->st = C_ABORT_DATA;
			return;
		}
		for (size_t i = 0; i < d->nrcpts; i++)
			if (d->codes[i] == 0)
				set_result(d, i, code, text, true);
		cn->need_rset = true;
		tx_finish(cn);
		return;
	case C_ABORT_DATA:
		cn->need_rset = true;
		tx_finish(cn);
		return;
	case C_BODY:
		if (cn->src) {
			/* a reply before the message is all out: out of step */
			conn_fail(cn, "replied before the end of the message");
			return;
		}
		for (size_t i = 0; i < d->nrcpts; i++)
			if (d->codes[i] == 0)
				set_result(d, i, code, text, true);
		if (code / 100 != 2)
			cn->need_rset = true;
		set_timeout(cn, cn->dest->c->s.command_timeout);
		tx_finish(cn);
		return;
	default:
		return;
	}
}

/* --- connection life -------------------------------------------------- */

static void
on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct conn *cn = arg;

	if (cn->st != C_READY)
		return;
	say(cn, "QUIT");
	cn->st = C_QUIT;
	set_timeout(cn, 10);
}

/* A ready connection: the next delivery, or idle. */
static void
conn_next(struct conn *cn)
{
	struct dest *dt = cn->dest;
	struct pending *p = TAILQ_FIRST(&dt->queue);

	cn->st = C_READY;
	if (p) {
		TAILQ_REMOVE(&dt->queue, p, entry);
		evtimer_del(cn->idle);
		tx_start(cn, p);
		return;
	}
	struct timeval tv = { (time_t)dt->c->s.idle_time, 0 };
	evtimer_add(cn->idle, &tv);
	set_timeout(cn, dt->c->s.idle_time + 60);
}

/*
 * The connection cannot go on. What was in flight gets a temporary
 * failure (the message may have arrived if the final reply was lost:
 * at-least-once). If this one never got ready, retrying now would not
 * help: the last connection of the destination to fail fails its queue.
 */
static void
conn_fail(struct conn *cn, const char *why)
{
	struct dest *dt = cn->dest;
	char text[400];

	if (cn->skipped[0] && strcmp(why, "no mail server could be "
	    "reached") == 0)
		(void)snprintf(text, sizeof(text), "451 4.7.5 no mail server "
		    "could be used; last: %s", cn->skipped);
	else
		(void)snprintf(text, sizeof(text), "451 4.4.2 %s%s%s", cn->host,
		    cn->host[0] ? ": " : "", why);
	if (cn->cur) {
		struct pending *p = cn->cur;
		cn->cur = NULL;
		set_all_open(p->d, 451, text, false);
		for (size_t i = 0; i < p->d->nrcpts; i++)
			if (p->d->codes[i] == 0)
				set_result(p->d, i, 451, text, false);
		(void)str_copy(p->d->remote, sizeof(p->d->remote), cn->host);
		pending_done(p);
	}
	bool was_ready = cn->ready;
	conn_free(cn);
	/*
	 * A connection that never got ready opens no other: the ones still
	 * open serve the queue, and the last of them to fail fails it.
	 * (Kicking here made a server with a garbage greeting get tens of
	 * thousands of connections a minute: tests/stress found it.)
	 */
	if (!was_ready) {
		if (dt->nconns == 0)
			dest_fail_queue(dt, 451, text);
	} else {
		dest_kick(dt);
	}
}

/*
 * After EHLO: STARTTLS if the policy wants it and the server offers it.
 * True if the connection moved on (STARTTLS sent, or failed).
 */
static bool
starttls_maybe(struct conn *cn)
{
	struct dest *dt = cn->dest;

	bool dane = cn->dane || cn->dane_tls_only;
	bool must = dane || sts_pkix(cn);

	if (cn->tls || dt->tls == SMTP_TLS_NONE)
		return false;
	if (dt->c->s.tls == NULL && !must)
		return false;
	bool offered = cn->st == C_EHLO && smtp_reply_has_keyword(&cn->rr,
	    "STARTTLS", NULL);
	bool opportunistic = (dt->tls == SMTP_TLS_MAY ||
	    dt->tls == SMTP_TLS_DANE) && !must;
	if (must && (!offered || dt->c->s.tls == NULL)) {
		/* RFC 7672 2.2, RFC 8461 5: never in plain text here */
		conn_skip_host(cn, dane ? "has DANE TLSA records but does not "
		    "offer STARTTLS" : "MTA-STS (enforce) requires TLS; "
		    "STARTTLS not offered", "starttls-not-supported");
		return true;
	}
	if (sts_probe(cn) && !offered) {
		log_info("smtp client: %s does not offer STARTTLS (MTA-STS "
		    "testing: delivered anyway)", cn->host);
		tls_report(cn, false, "starttls-not-supported");
	}
	if (offered && !(opportunistic && dt->tls_broken)) {
		/* keep what this EHLO said in case STARTTLS is refused */
		cn->pipelining = smtp_reply_has_keyword(&cn->rr, "PIPELINING",
		    NULL);
		cn->eightbitmime = smtp_reply_has_keyword(&cn->rr, "8BITMIME",
		    NULL);
		cn->chunking = smtp_reply_has_keyword(&cn->rr, "CHUNKING",
		    NULL);
		say(cn, "STARTTLS");
		cn->st = C_STARTTLS;
		return true;
	}
	if (dt->tls == SMTP_TLS_VERIFY) {
		conn_fail(cn, offered ? "TLS failed earlier; TLS is required" :
		    "STARTTLS not offered; TLS is required");
		return true;
	}
	return false;
}

static void conn_on_read(struct bufferevent *bev, void *arg);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);

static void
starttls_begin(struct conn *cn)
{
	struct dest *dt = cn->dest;

	if (cn->dane)
		/* RFC 7672 3.2.2: after a CNAME, either name may be the
		 * certificate's; the base domain is sent (RFC 7671 7) */
		cn->bev = tls_client_wrap_dane(dt->c->s.tls, dt->c->base,
		    cn->bev, cn->tlsa_base, strcmp(cn->tlsa_base,
		    cn->hostname) != 0 ? cn->hostname : NULL, cn->tlsa,
		    cn->ntlsa);
	else if (cn->dane_tls_only)
		cn->bev = tls_client_wrap(dt->c->s.tls, dt->c->base, cn->bev,
		    cn->tlsa_base, false);
	else if (sts_probe(cn))
		cn->bev = tls_client_wrap_probe(dt->c->s.tls, dt->c->base,
		    cn->bev, cn->hostname);
	else
		cn->bev = tls_client_wrap(dt->c->s.tls, dt->c->base, cn->bev,
		    cn->hostname, dt->tls == SMTP_TLS_VERIFY || sts_pkix(cn));
	if (cn->bev == NULL) {
		conn_fail(cn, "cannot start TLS");
		return;
	}
	bufferevent_setcb(cn->bev, conn_on_read, conn_on_write, conn_on_event,
	    cn);
	bufferevent_setwatermark(cn->bev, EV_WRITE, WIRE_PIECE, 0);
	/* the TLS layer encrypts into the socket's output no further than
	 * this, so a message does not pile up there either */
	bufferevent_setwatermark(bufferevent_get_underlying(cn->bev), EV_WRITE,
	    0, 2 * WIRE_PIECE);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
	set_timeout(cn, dt->c->s.command_timeout);
	cn->st = C_TLS;
}

static void
handle_reply(struct conn *cn, int code, const char *text)
{
	const char *param;

	(void)str_copy(cn->last_text, sizeof(cn->last_text), text);
	cn->last_code = code;
	switch (cn->st) {
	case C_GREETING:
		if (code / 100 != 2) {
			log_info("smtp client: %s greeted with %s; next host",
			    cn->host, text);
			bufferevent_free(cn->bev);
			cn->bev = NULL;
			cn->addr_i = cn->naddrs; /* this host is done */
			conn_try_addr(cn);
			return;
		}
		say(cn, "EHLO %s", cn->dest->c->helo);
		cn->st = C_EHLO;
		return;
	case C_EHLO:
		if (code / 100 == 5) {
			say(cn, "HELO %s", cn->dest->c->helo);
			cn->st = C_HELO;
			return;
		}
		/* FALLTHROUGH */
	case C_HELO:
		if (code / 100 != 2) {
			conn_fail(cn, text);
			return;
		}
		if (starttls_maybe(cn))
			return;
		if (cn->st == C_EHLO) {
			cn->pipelining = smtp_reply_has_keyword(&cn->rr,
			    "PIPELINING", NULL);
			cn->eightbitmime = smtp_reply_has_keyword(&cn->rr,
			    "8BITMIME", NULL);
			cn->chunking = smtp_reply_has_keyword(&cn->rr,
			    "CHUNKING", NULL);
			cn->requiretls = cn->tls && smtp_reply_has_keyword(
			    &cn->rr, "REQUIRETLS", NULL);
			cn->dsn = smtp_reply_has_keyword(&cn->rr, "DSN", NULL);
			cn->smtputf8 = smtp_reply_has_keyword(&cn->rr,
			    "SMTPUTF8", NULL);
			if (smtp_reply_has_keyword(&cn->rr, "SIZE", &param)) {
				cn->has_size = true;
				cn->size_max = strtoul(param, NULL, 10);
			}
		}
		cn->ready = true;
		cn->dest->connecting--;
		conn_next(cn);
		return;
	case C_STARTTLS:
		if (code / 100 == 2) {
			starttls_begin(cn);
			return;
		}
		if (cn->dest->tls == SMTP_TLS_VERIFY) {
			conn_fail(cn, "STARTTLS refused; TLS is required");
			return;
		}
		if (cn->dane || cn->dane_tls_only || sts_pkix(cn)) {
			conn_skip_host(cn, sts_pkix(cn) ? "MTA-STS (enforce) "
			    "requires TLS; STARTTLS refused" : "has DANE TLSA "
			    "records but refused STARTTLS",
			    "starttls-not-supported");
			return;
		}
		/* "may": go on without TLS, with what EHLO said */
		cn->st = C_EHLO;
		cn->ready = true;
		cn->dest->connecting--;
		conn_next(cn);
		return;
	case C_QUIT:
		conn_free(cn);
		return;
	case C_READY:
		return; /* unsolicited: ignore */
	default:
		if (cn->cur)
			tx_reply(cn, code, text);
		return;
	}
}

/*
 * Reads replies. handle_reply() may free the connection (and start new
 * ones); the frame flag tells us, so nothing is touched afterwards (the
 * ioev.c lesson in STYLE.md).
 */
static void
conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	bool freed = false;
	size_t len;
	char *line;

	cn->freed = &freed;
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		enum smtp_reply_status st = smtp_reply_reader_feed(&cn->rr,
		    line, len);
		free(line);
		if (st == SMTP_REPLY_BAD) {
			conn_fail(cn, "malformed reply");
			return;
		}
		if (st == SMTP_REPLY_DONE) {
			int code = cn->rr.code;
			char text[SMTP_REPLY_TEXT_MAX];
			(void)str_copy(text, sizeof(text), cn->rr.text);
			handle_reply(cn, code, text);  /* reads cn->rr's keywords */
			if (freed)
				return;
			smtp_reply_reader_init(&cn->rr);
			if (cn->bev != bev)
				break; /* moved on to another address */
		}
	}
	cn->freed = NULL;
	if (cn->bev == bev && evbuffer_get_length(in) > CLIENT_LINE_MAX)
		conn_fail(cn, "reply line too long");
}

static void
conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *cn = arg;

	if ((what & BEV_EVENT_CONNECTED) && cn->st == C_TLS) {
		char desc[128], why[256], how[64] = "";
		if (cn->dane) {
			if (tls_dane_verified(cn->bev, how, sizeof(how), why,
			    sizeof(why)) != 0) {
				char text[300];
				(void)snprintf(text, sizeof(text), "DANE: %s",
				    why);
				conn_skip_host(cn, text, "validation-failure");
				return;
			}
			cn->authenticated = true;
		} else if (sts_pkix(cn)) {
			if (tls_verified(cn->bev, why, sizeof(why)) != 0) {
				char text[300];
				(void)snprintf(text, sizeof(text), "MTA-STS: %s",
				    why);
				conn_skip_host(cn, text, cert_result(why));
				return;
			}
			cn->authenticated = true;
			(void)str_copy(how, sizeof(how), "MTA-STS");
		} else if (sts_probe(cn)) {
			/* RFC 8461 5: reported, delivered all the same */
			if (tls_verified(cn->bev, why, sizeof(why)) != 0) {
				log_info("smtp client: %s: %s (MTA-STS testing: "
				    "delivered anyway)", cn->host, why);
				tls_report(cn, false, cert_result(why));
			} else
				tls_report(cn, true, NULL);
		} else if (cn->dest->tls == SMTP_TLS_VERIFY) {
			if (tls_verified(cn->bev, why, sizeof(why)) != 0) {
				conn_fail(cn, why);
				return;
			}
			cn->authenticated = true;
			(void)str_copy(how, sizeof(how), "PKIX");
		}
		if (cn->dane || cn->dane_tls_only || sts_pkix(cn))
			tls_report(cn, true, NULL);
		tls_describe(cn->bev, desc, sizeof(desc));
		log_info("smtp client: TLS to %s: %s%s%s%s", cn->host, desc,
		    cn->dane ? " (DANE: " : cn->dane_tls_only ?
		    " (TLSA records, none usable: unauthenticated" :
		    cn->authenticated ? " (verified " : "", how,
		    cn->dane || cn->dane_tls_only || cn->authenticated ? ")" :
		    "");
		cn->tls = true;
		smtp_reply_reader_init(&cn->rr);
		say(cn, "EHLO %s", cn->dest->c->helo);   /* RFC 3207 4.2 */
		cn->st = C_EHLO;
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		cn->st = C_GREETING;
		set_timeout(cn, cn->dest->c->s.command_timeout);
		return;
	}
	if (cn->st == C_TLS) {
		char why[256];
		tls_error(cn->bev, why, sizeof(why));
		log_info("smtp client: TLS with %s failed: %s", cn->host, why);
		char text[300];
		if (cn->dane || cn->dane_tls_only || sts_pkix(cn)) {
			/* RFC 7672 2.2, RFC 8461 5: not this host; maybe the
			 * next MX */
			(void)snprintf(text, sizeof(text), "%s: TLS handshake "
			    "failed: %s", sts_pkix(cn) ? "MTA-STS" : "DANE",
			    why);
			conn_skip_host(cn, text, sts_pkix(cn) ?
			    cert_result(why) : "validation-failure");
			return;
		}
		if (cn->dest->tls == SMTP_TLS_MAY ||
		    cn->dest->tls == SMTP_TLS_DANE)
			cn->dest->tls_broken = true; /* next time: plain */
		(void)snprintf(text, sizeof(text), "TLS handshake failed: %s",
		    why);
		conn_fail(cn, text);
		return;
	}
	if (cn->st == C_CONNECT) {
		/* this address failed: the next one */
		log_info("smtp client: connect to %s failed: %s", cn->host,
		    (what & BEV_EVENT_TIMEOUT) ? "timeout" :
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(cn->bev);
		cn->bev = NULL;
		cn->addr_i++;
		conn_try_addr(cn);
		return;
	}
	if (cn->st == C_QUIT) {
		conn_free(cn);
		return;
	}
	conn_fail(cn, (what & BEV_EVENT_TIMEOUT) ? "timeout" :
	    (what & BEV_EVENT_EOF) ? "connection closed" : "connection error");
}

static void
conn_try_addr(struct conn *cn)
{
	struct dest *dt = cn->dest;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (cn->addr_i >= cn->naddrs) {
		cn->host_i++;
		conn_try_host(cn);
		return;
	}
	struct sockaddr_storage *ss = &cn->addrs[cn->addr_i];
	socklen_t sl;
	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)ss;
		s6->sin6_port = htons((uint16_t)dt->port);
		sl = sizeof(*s6);
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
	} else {
		struct sockaddr_in *s4 = (void *)ss;
		s4->sin_port = htons((uint16_t)dt->port);
		sl = sizeof(*s4);
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
	}
	(void)snprintf(cn->host, sizeof(cn->host), "%.255s[%s]:%u",
	    cn->hosts ? cn->hosts[cn->host_i] : dt->name, ip, dt->port);
	(void)str_copy(cn->hostname, sizeof(cn->hostname),
	    cn->hosts ? cn->hosts[cn->host_i] : dt->name);
	cn->tls = false;
	cn->authenticated = false;
	cn->bev = bufferevent_socket_new(dt->c->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	TERN_ASSERT(cn->bev != NULL);
	bufferevent_setcb(cn->bev, conn_on_read, conn_on_write, conn_on_event,
	    cn);
	bufferevent_setwatermark(cn->bev, EV_WRITE, WIRE_PIECE, 0);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
	smtp_reply_reader_init(&cn->rr);
	cn->st = C_CONNECT;
	set_timeout(cn, dt->c->s.connect_timeout);
	dt->c->connections++;
	if (bufferevent_socket_connect(cn->bev, (struct sockaddr *)ss,
	    (int)sl) != 0) {
		bufferevent_free(cn->bev);
		cn->bev = NULL;
		cn->addr_i++;
		conn_try_addr(cn);
	}
}

/* Whether a (with the destination's port) is where we take mail. */
static bool
is_self(const struct smtp_client *c, const struct sockaddr_storage *a,
    unsigned port)
{
	for (size_t i = 0; i < c->s.nself; i++) {
		const struct sockaddr_storage *m = &c->s.self[i];
		if (m->ss_family != a->ss_family)
			continue;
		if (a->ss_family == AF_INET) {
			const struct sockaddr_in *x = (const void *)a;
			const struct sockaddr_in *y = (const void *)m;
			if (ntohs(y->sin_port) == port && x->sin_addr.s_addr ==
			    y->sin_addr.s_addr)
				return true;
		} else if (a->ss_family == AF_INET6) {
			const struct sockaddr_in6 *x = (const void *)a;
			const struct sockaddr_in6 *y = (const void *)m;
			if (ntohs(y->sin6_port) == port && memcmp(&x->sin6_addr,
			    &y->sin6_addr, 16) == 0)
				return true;
		}
	}
	return false;
}

static void
on_addrs(void *arg, enum dns_status st, const struct sockaddr_storage *a,
    size_t n)
{
	struct conn *cn = arg;

	cn->q = NULL;
	/*
	 * A next hop that is ourselves: it and every MX after it are out
	 * (RFC 5321 5.1); the best one being us is a loop, for good.
	 */
	for (size_t i = 0; st == DNS_OK && i < n; i++) {
		struct dest *dt = cn->dest;
		if (!is_self(dt->c, &a[i], dt->port))
			continue;
		if (cn->host_i == 0) {
			char text[700];
			(void)snprintf(text, sizeof(text), "554 5.4.6 mail for "
			    "%.300s loops back to myself (%.300s)", dt->name,
			    cn->hosts ? cn->hosts[0] : dt->name);
			log_warnx("smtp client: %s", text + 10);
			conn_free(cn);
			dest_fail_queue(dt, 554, text);
			return;
		}
		conn_fail(cn, "the remaining MX hosts are ourselves");
		return;
	}
	if (st != DNS_OK || n == 0) {
		const char *h = cn->hosts ? cn->hosts[cn->host_i] :
		    cn->dest->name;
		if (cn->implicit_mx && (st == DNS_NXDOMAIN || st == DNS_NODATA)) {
			/* no MX and no address: nowhere to deliver */
			struct dest *dt = cn->dest;
			char text[400];
			(void)snprintf(text, sizeof(text), "550 5.1.2 %s: "
			    "domain has no mail server (no MX, no address)",
			    dt->name);
			conn_free(cn);
			dest_fail_queue(dt, 550, text);
			return;
		}
		log_info("smtp client: no address for %s (%s)", h,
		    st == DNS_TEMP ? "temporary DNS failure" : "none");
		cn->host_i++;
		conn_try_host(cn);
		return;
	}
	cn->naddrs = n < 32 ? n : 32;
	memcpy(cn->addrs, a, cn->naddrs * sizeof(*a));
	cn->addr_i = 0;
	if (dane_applies(cn) && cn->addr_secure) {
		/* RFC 7672 2.2.2: TLSA only for securely found addresses,
		 * first at the end of a secure CNAME chain */
		cn->tlsa_at_canon = cn->canon != NULL;
		tlsa_lookup(cn, cn->canon ? cn->canon : cn->hosts ?
		    cn->hosts[cn->host_i] : cn->dest->name);
		return;
	}
	conn_try_addr(cn);
}

static void
on_addrs_sec(void *arg, enum dns_status st, bool secure, const char *canon,
    const struct sockaddr_storage *a, size_t n)
{
	struct conn *cn = arg;

	cn->addr_secure = secure;
	free(cn->canon);
	cn->canon = secure && canon ? xstrdup(canon) : NULL;
	on_addrs(arg, st, a, n);
}

/* TLSA records of the host's service at base ("_25._tcp.base"). */
static void
tlsa_lookup(struct conn *cn, const char *base)
{
	char name[400];

	(void)snprintf(name, sizeof(name), "_%u._tcp.%s", cn->dest->port,
	    base);
	cn->st = C_RESOLVE;
	cn->q = dns_tlsa(cn->dest->c->dns, name, on_tlsa, cn);
}

static void
dane_clear(struct conn *cn)
{
	free(cn->tlsa);
	free(cn->tlsa_data);
	cn->tlsa = NULL;
	cn->tlsa_data = NULL;
	cn->ntlsa = 0;
	cn->dane = cn->dane_tls_only = false;
	cn->addr_secure = false;
	free(cn->canon);
	cn->canon = NULL;
	cn->tlsa_at_canon = false;
	cn->tlsa_base[0] = '\0';
}

/*
 * A session under a DANE or MTA-STS (enforce, testing) policy, for TLS
 * reports: the policy as RFC 8460 4.4 wants it (TLSA records, or the
 * policy's lines), the host, its address when connected.
 */
static void
tls_report(struct conn *cn, bool success, const char *result_type)
{
	const struct smtp_client_settings *set = &cn->dest->c->s;
	bool tlsa = cn->dane || cn->dane_tls_only || (result_type &&
	    strcmp(result_type, "dnssec-invalid") == 0);
	struct buf pol;
	char ip[INET6_ADDRSTRLEN] = "";

	if (set->tls_report == NULL || (!tlsa && !(cn->sts &&
	    cn->sts->mode != MTASTS_NONE)))
		return;
	buf_init(&pol);
	if (tlsa) {
		for (size_t i = 0; i < cn->ntlsa; i++) {
			char t[2 * TLSA_DATA_MAX + 20];
			tlsa_format(&cn->tlsa[i], 0, t, sizeof(t));
			buf_printf(&pol, "%s%s", i ? "\n" : "", t);
		}
	} else {
		buf_printf(&pol, "version: STSv1\nmode: %s",
		    mtasts_mode_name(cn->sts->mode));
		for (size_t i = 0; i < cn->sts->nmx; i++)
			buf_printf(&pol, "\nmx: %s", cn->sts->mx[i]);
		buf_printf(&pol, "\nmax_age: %lu", cn->sts->max_age);
	}
	buf_append_char(&pol, '\0');
	if (cn->addr_i < cn->naddrs) {
		const struct sockaddr_storage *ss = &cn->addrs[cn->addr_i];
		(void)inet_ntop(ss->ss_family, ss->ss_family == AF_INET6 ?
		    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
		    (const void *)&((const struct sockaddr_in *)ss)->sin_addr,
		    ip, sizeof(ip));
	}
	struct tlsrpt_session s = {
		.domain = cn->dest->name,
		.type = tlsa ? TLSRPT_TLSA : TLSRPT_STS,
		.policy = pol.data,
		.mx_host = cn->hosts ? cn->hosts[cn->host_i] : cn->dest->name,
		.receiving_ip = ip[0] ? ip : NULL,
		.success = success,
		.result_type = result_type,
	};
	set->tls_report(set->tls_report_arg, &s);
	buf_clear(&pol);
}

/* RFC 8460 4.3's result type of a failed certificate check. */
static const char *
cert_result(const char *why)
{
	if (strstr(why, "hostname mismatch"))
		return "certificate-host-mismatch";
	if (strstr(why, "expired"))
		return "certificate-expired";
	return "certificate-not-trusted";
}

/* The host is passed over (RFC 7672 2.2): the next one, if any.
 * result_type: an RFC 8460 failure to count, or NULL. */
static void
conn_skip_host(struct conn *cn, const char *why, const char *result_type)
{
	const char *h = cn->hosts ? cn->hosts[cn->host_i] : cn->dest->name;

	if (result_type)
		tls_report(cn, false, result_type);
	(void)snprintf(cn->skipped, sizeof(cn->skipped), "%.200s: %.90s", h,
	    why);
	log_info("smtp client: %s %s; next host", cn->host[0] ? cn->host : h,
	    why);
	if (cn->bev) {
		bufferevent_free(cn->bev);
		cn->bev = NULL;
	}
	cn->addr_i = cn->naddrs;   /* none of this host's addresses */
	conn_try_addr(cn);
}

static void
on_tlsa(void *arg, enum dns_status st, bool secure, const struct tlsa_rr *rrs,
    size_t n)
{
	struct conn *cn = arg;
	const char *h = cn->hosts ? cn->hosts[cn->host_i] : cn->dest->name;

	cn->q = NULL;
	if (cn->tlsa_at_canon && secure && (st == DNS_NXDOMAIN ||
	    st == DNS_NODATA)) {
		/* RFC 7672 2.2.2: none at the expanded name: the initial */
		log_info("smtp client: %s is an alias of %s, which has no "
		    "TLSA records: trying its own", h, cn->canon);
		cn->tlsa_at_canon = false;
		tlsa_lookup(cn, h);
		return;
	}
	(void)str_copy(cn->tlsa_base, sizeof(cn->tlsa_base),
	    cn->tlsa_at_canon ? cn->canon : h);
	size_t usable;
	enum tlsa_verdict v = tlsa_verdict(cn->mx_secure, cn->addr_secure,
	    st == DNS_OK ? TLSA_FOUND : st == DNS_TEMP ? TLSA_FAILED :
	    TLSA_ABSENT, secure, rrs, n, &usable);
	switch (v) {
	case TLSA_SKIP_HOST:
		/* unknown, or bogus: this host cannot be trusted now */
		cn->naddrs = 0;
		cn->host[0] = '\0';
		conn_skip_host(cn, "TLSA lookup failed (temporary, or "
		    "DNSSEC validation failed)", "dnssec-invalid");
		return;
	case TLSA_TLS_ONLY:
		cn->dane_tls_only = true;
		log_info("smtp client: %s has TLSA records%s%s, none usable: "
		    "TLS required, unauthenticated", h, cn->tlsa_at_canon ?
		    " at its alias target " : "", cn->tlsa_at_canon ?
		    cn->canon : "");
		break;
	case TLSA_AUTHENTICATE: {
		size_t bytes = 0, off = 0;
		for (size_t i = 0; i < n; i++)
			if (tlsa_usable(&rrs[i]))
				bytes += rrs[i].len;
		cn->tlsa = xcalloc(usable, sizeof(*cn->tlsa));
		cn->tlsa_data = xmalloc(bytes);
		for (size_t i = 0; i < n; i++) {
			if (!tlsa_usable(&rrs[i]))
				continue;
			cn->tlsa[cn->ntlsa] = rrs[i];
			memcpy(cn->tlsa_data + off, rrs[i].data, rrs[i].len);
			cn->tlsa[cn->ntlsa].data = cn->tlsa_data + off;
			off += rrs[i].len;
			cn->ntlsa++;
		}
		cn->dane = true;
		log_info("smtp client: %s has %zu usable TLSA record(s)%s%s: "
		    "DANE required", h, cn->ntlsa, cn->tlsa_at_canon ?
		    " at its alias target " : "", cn->tlsa_at_canon ?
		    cn->canon : "");
		break;
	}
	case TLSA_NO_DANE:
		break;
	}
	conn_try_addr(cn);
}

static void
conn_try_host(struct conn *cn)
{
	struct dest *dt = cn->dest;
	size_t nhosts = cn->hosts ? cn->nhosts : 1;

	if (cn->host_i >= nhosts) {
		conn_fail(cn, "no mail server could be reached");
		return;
	}
	const char *h = cn->hosts ? cn->hosts[cn->host_i] : dt->name;
	struct in_addr a4;
	struct in6_addr a6;
	dane_clear(cn);
	cn->sts_verify = cn->sts_testing = false;
	if (cn->sts && !mtasts_mx_match(cn->sts, h)) {
		if (cn->sts->mode == MTASTS_ENFORCE) {
			/* RFC 8461 4.1: not a host the domain named */
			(void)snprintf(cn->skipped, sizeof(cn->skipped),
			    "%.200s: MTA-STS: not an mx of the policy", h);
			log_info("smtp client: %s is not an mx of %s's MTA-STS "
			    "policy (enforce); next host", h, dt->name);
			cn->naddrs = 0;
			tls_report(cn, false, "validation-failure");
			cn->host_i++;
			conn_try_host(cn);
			return;
		}
		log_info("smtp client: %s is not an mx of %s's MTA-STS policy "
		    "(testing: used anyway)", h, dt->name);
		tls_report(cn, false, "validation-failure");
	} else if (cn->sts && cn->sts->mode == MTASTS_ENFORCE)
		cn->sts_verify = true;
	else if (cn->sts && cn->sts->mode == MTASTS_TESTING)
		cn->sts_testing = true;
	/* an address literal ("[1.2.3.4]" or a bare address) needs no DNS */
	char lit[300];
	(void)str_copy(lit, sizeof(lit), h);
	if (lit[0] == '[') {
		memmove(lit, lit + 1, strlen(lit));
		char *e = strchr(lit, ']');
		if (e)
			*e = '\0';
	}
	memset(cn->addrs, 0, sizeof(cn->addrs));
	if (inet_pton(AF_INET, lit, &a4) == 1) {
		struct sockaddr_in *s4 = (void *)&cn->addrs[0];
		s4->sin_family = AF_INET;
		s4->sin_addr = a4;
		cn->naddrs = 1;
		cn->addr_i = 0;
		conn_try_addr(cn);
		return;
	}
	if (inet_pton(AF_INET6, lit, &a6) == 1) {
		struct sockaddr_in6 *s6 = (void *)&cn->addrs[0];
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = a6;
		cn->naddrs = 1;
		cn->addr_i = 0;
		conn_try_addr(cn);
		return;
	}
	cn->st = C_RESOLVE;
	if (dane_applies(cn))
		cn->q = dns_addrs_sec(dt->c->dns, lit, on_addrs_sec, cn);
	else
		cn->q = dns_addrs(dt->c->dns, lit, on_addrs, cn);
}

static void
on_mx(void *arg, enum dns_status st, char *const *hosts, size_t n)
{
	struct conn *cn = arg;
	struct dest *dt = cn->dest;
	char text[400];

	cn->q = NULL;
	if (st == DNS_NULL_MX) {
		(void)snprintf(text, sizeof(text), "556 5.1.10 %s does not "
		    "accept mail (null MX, RFC 7505)", dt->name);
		conn_free(cn);
		dest_fail_queue(dt, 556, text);
		return;
	}
	if (st == DNS_NXDOMAIN) {
		(void)snprintf(text, sizeof(text), "550 5.1.2 %s: domain not "
		    "found", dt->name);
		conn_free(cn);
		dest_fail_queue(dt, 550, text);
		return;
	}
	if (st != DNS_OK) {
		(void)snprintf(text, sizeof(text), "451 4.4.3 %s: temporary "
		    "DNS failure looking up MX", dt->name);
		conn_free(cn);
		if (dt->nconns == 0)
			dest_fail_queue(dt, 451, text);
		return;
	}
	cn->hosts = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		cn->hosts[i] = xstrdup(hosts[i]);
	cn->nhosts = n;
	cn->implicit_mx = n == 1 && ascii_strcaseeq(hosts[0], dt->name);
	cn->host_i = 0;
	if (cn->sq == NULL)
		mx_ready(cn);      /* else when the MTA-STS answer comes */
}

/* The MX hosts and the MTA-STS policy (if asked) are known: go. */
static void
mx_ready(struct conn *cn)
{
	struct dest *dt = cn->dest;
	char text[400];

	if (dt->requiretls && !cn->mx_secure && !(cn->sts &&
	    cn->sts->mode == MTASTS_ENFORCE)) {
		/* RFC 8689 4.2.1: an MX found securely, or nowhere */
		(void)snprintf(text, sizeof(text), "550 5.7.30 REQUIRETLS "
		    "support required: the MX of %.200s cannot be found securely "
		    "(no DNSSEC proof, no MTA-STS policy in enforce mode)",
		    dt->name);
		conn_free(cn);
		dest_fail_queue(dt, 550, text);
		return;
	}
	conn_try_host(cn);
}

static void
on_mx_sec(void *arg, enum dns_status st, bool secure, char *const *hosts,
    size_t n)
{
	((struct conn *)arg)->mx_secure = secure;
	on_mx(arg, st, hosts, n);
}

/* The MX lookup (the relay host's addresses). */
static void
conn_resolve(struct conn *cn)
{
	struct dest *dt = cn->dest;
	bool dane = dt->tls == SMTP_TLS_DANE && dns_validating(dt->c->dns);

	if (dt->kind == SMTP_DEST_MX && dane)
		cn->q = dns_mx_sec(dt->c->dns, dt->name, on_mx_sec, cn);
	else if (dt->kind == SMTP_DEST_MX)
		cn->q = dns_mx(dt->c->dns, dt->name, on_mx, cn);
	else {
		cn->mx_secure = true;  /* a relay is named, not looked up */
		conn_try_host(cn);
	}
}

static void
on_sts(void *arg, const struct mtasts_policy *p, const char *why)
{
	struct conn *cn = arg;

	cn->sq = NULL;
	if (p && p->mode != MTASTS_NONE) {
		cn->sts = xmalloc(sizeof(*cn->sts));
		*cn->sts = *p;
	}
	(void)why;
	if (cn->hosts != NULL)
		mx_ready(cn);      /* the MX answer came first */
}

static void
conn_open(struct dest *dt)
{
	struct conn *cn = xcalloc(1, sizeof(*cn));

	cn->dest = dt;
	cn->st = C_RESOLVE;
	buf_init(&cn->wire);
	buf_init(&cn->conv);
	cn->idle = evtimer_new(dt->c->base, on_idle, cn);
	TAILQ_INSERT_TAIL(&dt->conns, cn, entry);
	dt->nconns++;
	dt->connecting++;
	if (dt->kind == SMTP_DEST_MX && dt->c->s.sts && (dt->tls ==
	    SMTP_TLS_DANE || dt->tls == SMTP_TLS_MAY)) {
		/* the policy and the MX are asked for at once */
		cn->sq = sts_get(dt->c->s.sts, dt->name, on_sts, cn);
	}
	conn_resolve(cn);
}

static void
conn_free(struct conn *cn)
{
	struct dest *dt = cn->dest;

	if (cn->freed)
		*cn->freed = true;
	if (cn->q)
		dns_cancel(cn->q);
	if (cn->sq)
		sts_cancel(cn->sq);
	free(cn->sts);
	if (cn->bev)
		bufferevent_free(cn->bev);
	if (cn->cur) {
		/* not expected: every path answers cur first */
		struct pending *p = cn->cur;
		set_all_open(p->d, 451, "451 4.4.2 connection dropped", false);
		pending_done(p);
	}
	if (!cn->ready)
		dt->connecting--;
	event_free(cn->idle);
	for (size_t i = 0; i < cn->nhosts; i++)
		free(cn->hosts[i]);
	free(cn->hosts);
	dane_clear(cn);
	buf_clear(&cn->wire);
	buf_clear(&cn->conv);
	TAILQ_REMOVE(&dt->conns, cn, entry);
	dt->nconns--;
	free(cn);
}

/* Puts queued deliveries on idle connections, or opens new ones. */
static void
dest_kick(struct dest *dt)
{
	struct conn *cn;
	size_t queued = 0;
	struct pending *p;

again:
	TAILQ_FOREACH(cn, &dt->conns, entry) {
		if (cn->st == C_READY && cn->cur == NULL &&
		    !TAILQ_EMPTY(&dt->queue)) {
			p = TAILQ_FIRST(&dt->queue);
			TAILQ_REMOVE(&dt->queue, p, entry);
			evtimer_del(cn->idle);
			tx_start(cn, p);
			goto again; /* tx_start may have changed the list */
		}
	}
	TAILQ_FOREACH(p, &dt->queue, entry)
		queued++;
	/* one new connection per queued delivery not yet covered */
	while (queued > dt->connecting && dt->nconns < dt->c->s.max_per_destination)
		conn_open(dt);
}

/* --- the client ------------------------------------------------------- */

static struct dest *
dest_get(struct smtp_client *c, const struct smtp_delivery *d)
{
	struct dest *dt;
	char key[320];

	(void)snprintf(key, sizeof(key), "%s:%d:%d:%s", d->kind ==
	    SMTP_DEST_MX ? "mx" : "relay", (int)d->tls, (int)d->requiretls,
	    d->dest);
	ascii_lower(key);
	TAILQ_FOREACH(dt, &c->dests, entry)
		if (strcmp(dt->key, key) == 0)
			return dt;
	dt = xcalloc(1, sizeof(*dt));
	dt->c = c;
	(void)str_copy(dt->key, sizeof(dt->key), key);
	dt->kind = d->kind;
	dt->tls = d->tls;
	dt->requiretls = d->requiretls;
	TAILQ_INIT(&dt->queue);
	TAILQ_INIT(&dt->conns);
	dt->port = c->s.port;
	(void)str_copy(dt->name, sizeof(dt->name), d->dest);
	if (d->kind == SMTP_DEST_RELAY) {
		/* host:port, [host]:port, [v6]:port */
		char *colon = strrchr(dt->name, ':');
		char *close = strrchr(dt->name, ']');
		if (colon && (close == NULL || colon > close) &&
		    (dt->name[0] == '[' || strchr(dt->name, ':') == colon)) {
			unsigned long port = strtoul(colon + 1, NULL, 10);
			if (port > 0 && port < 65536)
				dt->port = (unsigned)port;
			*colon = '\0';
		}
	}
	TAILQ_INSERT_TAIL(&c->dests, dt, entry);
	return dt;
}

void
smtp_client_send(struct smtp_client *c, struct smtp_delivery *d,
    smtp_client_cb cb, void *arg)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	struct dest *dt = dest_get(c, d);

	d->codes = xcalloc(d->nrcpts ? d->nrcpts : 1, sizeof(int));
	d->texts = xcalloc(d->nrcpts ? d->nrcpts : 1, sizeof(char *));
	d->answered = xcalloc(d->nrcpts ? d->nrcpts : 1, sizeof(bool));
	d->remote[0] = '\0';
	p->d = d;
	p->cb = cb;
	p->arg = arg;
	TAILQ_INSERT_TAIL(&dt->queue, p, entry);
	dest_kick(dt);
}

/*
 * Every minute: destinations with nothing queued and no connection are
 * freed, so memory follows the active destinations, not every domain
 * ever seen. (Never from a connection callback: they still use dt.)
 */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	struct dest *dt, *next;

	for (dt = TAILQ_FIRST(&c->dests); dt; dt = next) {
		next = TAILQ_NEXT(dt, entry);
		if (TAILQ_EMPTY(&dt->queue) && TAILQ_EMPTY(&dt->conns)) {
			TAILQ_REMOVE(&c->dests, dt, entry);
			free(dt);
		}
	}
}

struct smtp_client *
smtp_client_new(struct event_base *base, struct dns *dns,
    const struct smtp_client_settings *s)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->dns = dns;
	c->s = *s;
	c->helo = xstrdup(s->helo);
	c->s.helo = c->helo;
	if (c->s.max_per_destination == 0)
		c->s.max_per_destination = 1;
	TAILQ_INIT(&c->dests);
	c->sweep = event_new(base, -1, EV_PERSIST, on_sweep, c);
	struct timeval tv = { 60, 0 };
	evtimer_add(c->sweep, &tv);
	return c;
}

bool
smtp_client_secure_mx(const struct smtp_client *c)
{
	return dns_validating(c->dns) || c->s.sts != NULL;
}

unsigned long
smtp_client_connections(const struct smtp_client *c)
{
	return c->connections;
}

void
smtp_client_close_idle(struct smtp_client *c)
{
	struct dest *dt;
	struct conn *cn;

	TAILQ_FOREACH(dt, &c->dests, entry)
		TAILQ_FOREACH(cn, &dt->conns, entry)
			if (cn->st == C_READY && cn->cur == NULL) {
				evtimer_del(cn->idle);
				on_idle(-1, 0, cn);
			}
}

void
smtp_client_free(struct smtp_client *c)
{
	struct dest *dt;

	if (c == NULL)
		return;
	while ((dt = TAILQ_FIRST(&c->dests)) != NULL) {
		struct conn *cn;
		struct pending *p;
		while ((cn = TAILQ_FIRST(&dt->conns)) != NULL) {
			if (cn->cur) {
				free(cn->cur);   /* no callbacks at teardown */
				cn->cur = NULL;
			}
			cn->freed = NULL;
			conn_free(cn);
		}
		while ((p = TAILQ_FIRST(&dt->queue)) != NULL) {
			TAILQ_REMOVE(&dt->queue, p, entry);
			free(p);
		}
		TAILQ_REMOVE(&c->dests, dt, entry);
		free(dt);
	}
	event_free(c->sweep);
	free(c->helo);
	free(c);
}
