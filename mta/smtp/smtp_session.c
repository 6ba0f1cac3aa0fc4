/* SPDX-License-Identifier: ISC */
/*
 * smtp_session.c - layer 3: the SMTP server side of RFC 5321, one
 * connection at a time, on libevent bufferevents.
 *
 * Shape (after OpenSMTPD's smtp_session.c): a table pairs each verb with
 * its handler; the transaction (envelope + body, MAIL to commit/RSET) is
 * separate from the connection state. Commands are processed in a loop
 * over the input buffer, so pipelined commands (RFC 2920) are answered in
 * order and their replies leave in one write. While a commit is in flight
 * the loop stops; the commit's completion sends 250 (or 4xx) and resumes.
 *
 * Framing is strict: command lines must end in CRLF, bare CR/LF/NUL get
 * 500 5.5.2; DATA goes through smtp_data.c, where only CRLF.CRLF ends it.
 * Limits: 512-octet command lines, max_errors replies >= 400 before 421,
 * max_recipients, SIZE, timeouts (command and DATA), and an output
 * backlog cap so a client that never reads cannot make us buffer forever.
 *
 * Destruction: one path, session_free(), called only from this file's
 * callbacks, after which nothing touches the session; a pending commit is
 * detached (it completes; the message is delivered; the client saw no 250
 * and may resend: at-least-once).
 */
#include "smtp/smtp_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base/auth.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sasl.h"
#include "base/tls.h"
#include "base/util.h"
#include "lua/hooks.h"
#include "mail/arc_verify.h"
#include "mail/bodyhash.h"
#include "mail/authres.h"
#include "mail/dkim_sign.h"
#include "mail/dkim_verify.h"
#include "mail/dmarc_check.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/spf_check.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "queue/queue.h"
#include "runtime.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_reply.h"

#define OUTPUT_BACKLOG_MAX (64 * 1024)
#define INPUT_HIGH_WATER (256 * 1024)
/*
 * A big message is never whole in memory: past SPILL_AT octets (its
 * header section always whole in the buffer first), the rest goes to a
 * spool file in pieces of SPILL_PIECE as it arrives; input waits while
 * one piece is being written and the next is full. The data hook sees
 * at most HOOK_BODY_MAX octets of a spooled message.
 */
#define SPILL_AT (32 * 1024)
#define SPILL_PIECE (32 * 1024)
#define HOOK_BODY_MAX (1024 * 1024)

enum session_state {
	SESSION_GREETED,         /* waiting for HELO/EHLO */
	SESSION_READY,           /* HELO done, no transaction */
	SESSION_MAIL,            /* MAIL accepted */
	SESSION_RCPT,            /* at least one RCPT accepted */
	SESSION_DATA,            /* receiving message bytes */
	SESSION_BDAT,            /* BDAT chunks came, not yet the LAST */
	SESSION_CHUNK,           /* receiving a BDAT chunk's octets */
};

struct smtp_session {
	struct smtp_session_env env;
	const struct config *cfg;    /* env.rt->cfg */
	struct hooks *hooks;         /* env.rt->hooks */
	struct hook_session hs;      /* what plugins see of the session */
	struct bufferevent *bev;
	char id[17];
	char ip[INET6_ADDRSTRLEN];
	int port;
	bool trusted;
	enum listen_role role;
	enum listen_tls tls_mode;
	bool tls;                /* the connection is encrypted */
	bool tls_wrapped;        /* a TLS layer is on: what it reads is TLS */
	bool sender_by_hook;     /* a mail hook accepted the sender */
	bool starttls_now;       /* 220 sent: wrap after this batch */
	struct evbuffer_cb_entry *under_cb; /* closing: TLS bytes in flight */
	char tls_desc[128];
	/* AUTH (RFC 4954) */
	enum { AUTH_NONE, AUTH_PLAIN, AUTH_LOGIN_USER, AUTH_LOGIN_PASS }
	    auth_step;               /* a SASL exchange in progress */
	char auth_user[SASL_FIELD_MAX]; /* authenticated as; "" if not */
	char login_user[SASL_FIELD_MAX];
	struct auth_check *auth;     /* a password check in flight */
	enum session_state state;
	char helo[SMTP_CMD_LINE_MAX];
	bool esmtp;
	unsigned errors;
	unsigned ntx;
	bool discard_line;       /* skipping the rest of an overlong line */
	bool closing;            /* close once the output is flushed */
	bool shutdown;           /* server shutting down */
	bool paused_out;         /* reading paused: client not reading */
	/* transaction */
	struct envelope *tx;
	struct buf *body;
	struct smtp_data data;
	/* BDAT (RFC 3030): the chunk being read, and a refusal to say once
	 * its octets are read (code 0: none) */
	uint64_t chunk_left, chunk_size;
	bool chunk_last;
	int chunk_code;
	enum session_state chunk_back; /* the state to go back to then */
	char chunk_enh[8];
	char chunk_text[160];
	unsigned tx_rejected;    /* RCPTs refused in this transaction */
	size_t received_len;     /* our Received: field at the body's start */
	/* a big message: body holds its start, the rest is in spill */
	struct queue_spill *spill;
	size_t spill_at;         /* body's length when spooling began */
	struct bodyhash *bh;     /* its body hashes (mx), the spill's */
	bool spill_wait;         /* input held: a piece waits for the disk */
	bool spill_end;          /* the end of data waits for the last one */
	bool spill_reading;      /* the data hook's part being read */
	size_t hook_part;        /* octets of the spill read for the hook */
	uint64_t hook_unseen;    /* octets of it the hook does not see */
	struct queue_commit *commit;
	bool message_end;        /* the next reply ends a message (metrics) */
	unsigned lmtp_rcpts;     /* LMTP: that reply, once per recipient */
	struct dkim_verify *verify; /* DKIM keys being looked up */
	struct spf_check *spf;      /* MAIL FROM's SPF, being checked */
	enum spf_result spf_result;
	char spf_domain[256];       /* the domain checked; "" none */
	char spf_why[96];
	struct spf_check *spf_helo; /* the HELO identity's (RFC 7208 2.3) */
	enum spf_result spf_helo_result;
	bool spf_helo_checked;
	char spf_helo_why[96];
	struct buf pending_ar;      /* DKIM's part, waiting for SPF's */
	struct dmarc_check *dmarc;  /* its policy being looked up */
	struct dmarc_verdict dmarc_v;
	bool dmarc_checked;
	struct dkim_verdict *dkim;  /* the message's verdicts (mx), for hooks */
	size_t ndkim;
	bool dkim_checked;
	struct arc_verify *arc;     /* its ARC chain being validated */
	struct arc_verdict arc_v;
	bool arc_checked;
	struct timeval data_start;
	/* a plugin that waits (DNS, HTTP): input is held until it is done */
	struct hook_call *hook_call;
	enum hook_id hook_wait;      /* its hook */
	struct smtp_cmd *hook_cmd;   /* the command it answers (a copy) */
	char **hook_folders;         /* the data hook's folder choices */
	/* replies of the current batch */
	struct buf out;
};

static void session_process(struct smtp_session *s);
static void session_flush(struct smtp_session *s);
static void session_free(struct smtp_session *s);
static const char *state_name(const struct smtp_session *s);
static void session_on_read(struct bufferevent *bev, void *arg);
static void session_on_write(struct bufferevent *bev, void *arg);
static void session_on_event(struct bufferevent *bev, short what, void *arg);
static bool starttls_offered(const struct smtp_session *s);
static bool auth_offered(const struct smtp_session *s);
static bool submission_role(const struct smtp_session *s);
static bool from_allowed(struct smtp_session *s);
static bool sender_owned(const struct smtp_session *s,
    const struct smtp_addr *a);
static void session_starttls(struct smtp_session *s);
static void connect_finish(struct smtp_session *s,
    const struct hook_verdict *v);

static uint64_t session_seq;

static void __attribute__((format(printf, 4, 5)))
reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtp_reply_append(&s->out, code, enh, text);
	/* LMTP (RFC 2033 4.2): one answer per recipient after the data */
	for (unsigned i = 1; s->message_end && i < s->lmtp_rcpts; i++)
		smtp_reply_append(&s->out, code, enh, text);
	if (s->message_end) {
		/* the answer to a message's end: tern_smtp_messages_total */
		s->message_end = false;
		metrics_add("tern_smtp_messages_total", code < 300 ?
		    "result=\"accepted\"" : code < 500 ?
		    "result=\"tempfail\"" : "result=\"rejected\"", 1);
	}
	if (code >= 400)
		s->errors++;
	if (code == 421)
		s->closing = true;
}

static void
reply_r(struct smtp_session *s, struct smtp_reply r)
{
	reply(s, r.code, r.enh, "%s", r.text);
}

static void
tx_reset(struct smtp_session *s)
{
	if (s->tx) {
		envelope_clear(s->tx);
		free(s->tx);
		s->tx = NULL;
	}
	if (s->body) {
		buf_clear(s->body);
		free(s->body);
		s->body = NULL;
	}
	queue_spill_free(s->spill);      /* and its body hashes */
	s->spill = NULL;
	s->bh = NULL;
	s->spill_wait = s->spill_end = s->spill_reading = false;
	s->hook_part = 0;
	s->hook_unseen = 0;
	s->tx_rejected = 0;
	free(s->dkim);
	s->dkim = NULL;
	s->ndkim = 0;
	s->dkim_checked = false;
	arc_verdict_clear(&s->arc_v);
	s->arc_checked = false;
	if (s->state > SESSION_READY)
		s->state = SESSION_READY;
}

/* --- plugins ---------------------------------------------------------- */

/* "<a@b>" -> "a@b" (a new string) */
static char *
unbracket(const char *path)
{
	size_t n = strlen(path);

	if (n >= 2 && path[0] == '<' && path[n - 1] == '>')
		return xstrndup(path + 1, n - 2);
	return xstrdup(path);
}

struct tx_view {
	struct hook_tx tx;
	char *sender;
	char **rcpts;
	char **params;
	struct hook_dkim *dkim;
	struct hook_arc_hop *arc;
};

/* What plugins see of the transaction; free with tx_view_clear(). */
static void
tx_view_init(struct smtp_session *s, struct tx_view *v,
    const struct smtp_cmd *mail)
{
	memset(v, 0, sizeof(*v));
	v->tx.s = &s->hs;
	v->sender = s->tx ? unbracket(s->tx->sender) :
	    mail && !mail->addr.null ? xasprintf("%s@%s", mail->addr.local,
	    mail->addr.domain) : xstrdup("");
	v->tx.sender = v->sender;
	if (s->tx && s->tx->nrcpts) {
		v->rcpts = xcalloc(s->tx->nrcpts, sizeof(char *));
		for (size_t i = 0; i < s->tx->nrcpts; i++)
			v->rcpts[i] = unbracket(s->tx->rcpts[i].path);
		v->tx.nrcpts = s->tx->nrcpts;
	}
	v->tx.rcpts = (const char *const *)v->rcpts;
	if (mail && mail->nparams) {
		v->params = xcalloc(mail->nparams, sizeof(char *));
		for (size_t i = 0; i < mail->nparams; i++)
			v->params[i] = mail->params[i].value ?
			    xasprintf("%s=%s", mail->params[i].key,
			    mail->params[i].value) :
			    xstrdup(mail->params[i].key);
		v->tx.nparams = mail->nparams;
	}
	v->tx.params = (const char *const *)v->params;
	if (s->dkim_checked) {
		v->tx.auth = true;
		v->dkim = xcalloc(s->ndkim + 1, sizeof(*v->dkim));
		for (size_t i = 0; i < s->ndkim; i++) {
			const struct dkim_verdict *d = &s->dkim[i];
			v->dkim[i] = (struct hook_dkim){ d->domain, d->selector,
			    dkim_result_name(d->result), d->reason,
			    d->algorithm ? d->algorithm : "", d->testing };
		}
		v->tx.dkim = v->dkim;
		v->tx.ndkim = s->ndkim;
		if (s->dmarc_checked) {
			v->tx.dmarc_result = dmarc_result_name(
			    s->dmarc_v.result);
			v->tx.dmarc_policy = s->dmarc_v.record_domain[0] ?
			    dmarc_policy_name(s->dmarc_v.policy) : "none";
			v->tx.dmarc_domain = s->dmarc_v.from;
			v->tx.dmarc_pct = s->dmarc_v.pct;
		}
		if (s->spf_domain[0]) {
			v->tx.spf_result = spf_result_name(s->spf_result);
			v->tx.spf_domain = s->spf_domain;
			v->tx.spf_reason = s->spf_why;
		}
		if (s->spf_helo_checked) {
			v->tx.spf_helo_result = spf_result_name(
			    s->spf_helo_result);
			v->tx.spf_helo_domain = s->helo;
			v->tx.spf_helo_reason = s->spf_helo_why;
		}
		v->tx.arc_oldest_pass = -1;
		if (s->arc_checked) {
			const struct arc_verdict *a = &s->arc_v;
			v->tx.arc_result = arc_cv_name(a->result);
			v->tx.arc_reason = a->reason;
			v->tx.arc_oldest_pass = a->oldest_pass;
			v->arc = xcalloc(a->n + 1, sizeof(*v->arc));
			for (unsigned i = 0; i < a->n; i++) {
				const struct arc_hop *h = &a->hops[i];
				v->arc[i] = (struct hook_arc_hop){ h->i,
				    h->domain, h->selector, arc_cv_name(h->cv),
				    h->results ? h->results : "", h->seal_ok,
				    h->ams_ok };
			}
			v->tx.arc = v->arc;
			v->tx.narc = a->n;
		}
	}
}

static void
tx_view_clear(struct tx_view *v)
{
	free(v->sender);
	for (size_t i = 0; i < v->tx.nrcpts; i++)
		free(v->rcpts[i]);
	free(v->rcpts);
	for (size_t i = 0; i < v->tx.nparams; i++)
		free(v->params[i]);
	free(v->params);
	free(v->dkim);
	free(v->arc);
}

/* Answers a reject/tempfail verdict; true if the command is refused. */
static bool
verdict_refuses(struct smtp_session *s, const struct hook_verdict *v,
    const char *what)
{
	if (v->kind != HOOK_REJECT && v->kind != HOOK_TEMPFAIL)
		return false;
	log_info("session %s: %s refused by plugin client=%s: %d %s %s",
	    s->id, what, s->ip, v->code, v->enh, v->text);
	reply(s, v->code, v->enh, "%s", v->text);
	return true;
}

static void on_hook(void *arg, const struct hook_verdict *v);

static struct hook_io
session_io(const struct smtp_session *s)
{
	return (struct hook_io){ s->env.base, s->env.dns,
		s->env.rt->http_tls ? &s->env.rt->http_tls_maker : NULL };
}

/* A copy of cmd whose pointers point into the copy's own storage. */
static struct smtp_cmd *
cmd_copy(const struct smtp_cmd *cmd)
{
	struct smtp_cmd *c = xmalloc(sizeof(*c));
	const char *lo = cmd->storage;
	const char *hi = cmd->storage + sizeof(cmd->storage);

	*c = *cmd;
#define MOVE(p) do { \
		if ((p) >= lo && (p) < hi) \
			(p) = c->storage + ((p) - lo); \
	} while (0)
	MOVE(c->arg);
	for (size_t i = 0; i < c->nparams; i++) {
		MOVE(c->params[i].key);
		if (c->params[i].value)
			MOVE(c->params[i].value);
	}
#undef MOVE
	return c;
}

/* The hook of cmd is waiting: its answer comes from on_hook. */
static bool
hook_pending(struct smtp_session *s, enum hook_id id,
    const struct smtp_cmd *cmd)
{
	if (s->hook_call == NULL)
		return false;
	s->hook_wait = id;
	s->hook_cmd = cmd ? cmd_copy(cmd) : NULL;
	return true;
}

/* --- command handlers ------------------------------------------------ */

static void helo_finish(struct smtp_session *s, const struct smtp_cmd *cmd,
    const struct hook_verdict *v);

static void
cmd_helo(struct smtp_session *s, struct smtp_cmd *cmd)
{
	struct hook_io io = session_io(s);
	struct hook_verdict v;

	/* LMTP greets with LHLO only, SMTP never does (RFC 2033 4.1) */
	if ((s->role == ROLE_LMTP) != (cmd->verb == SMTP_VERB_LHLO)) {
		reply(s, 500, "5.5.1", s->role == ROLE_LMTP ? "This is LMTP: "
		    "LHLO, not EHLO or HELO" : "Command unrecognized");
		return;
	}
	tx_reset(s);
	s->hook_call = hooks_helo_start(s->hooks, &io, &s->hs, cmd->arg,
	    on_hook, s, &v);
	if (!hook_pending(s, HOOK_HELO, cmd))
		helo_finish(s, cmd, &v);
}

static void
helo_finish(struct smtp_session *s, const struct smtp_cmd *cmd,
    const struct hook_verdict *v)
{
	const struct config *cfg = s->cfg;

	if (verdict_refuses(s, v, "HELO"))
		return;
	(void)str_copy(s->helo, sizeof(s->helo), cmd->arg);
	s->hs.helo = s->helo;
	s->esmtp = cmd->verb == SMTP_VERB_EHLO || cmd->verb == SMTP_VERB_LHLO;
	s->state = SESSION_READY;
	if (!s->esmtp) {
		reply(s, 250, NULL, "%s", cfg->hostname);
		return;
	}
	char l0[300], lsize[64];
	(void)str_fmt(l0, sizeof(l0), "%s greets %s", cfg->hostname, s->helo);
	(void)str_fmt(lsize, sizeof(lsize), "SIZE %llu",
	    (unsigned long long)cfg->limits.max_message_size);
	const char *lines[12] = { l0, "PIPELINING", lsize, "8BITMIME",
		"ENHANCEDSTATUSCODES", "CHUNKING", "DSN", "SMTPUTF8" };
	int n = 8;
	if (starttls_offered(s))
		lines[n++] = "STARTTLS";
	if (auth_offered(s))
		lines[n++] = "AUTH PLAIN LOGIN";
	if (s->tls)
		lines[n++] = "REQUIRETLS";   /* RFC 8689: over TLS only */
	smtp_reply_append_lines(&s->out, 250, lines, n);
}

static void mail_finish(struct smtp_session *s, const struct smtp_cmd *cmd,
    const struct hook_verdict *mvp);

static void
cmd_mail(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct config *cfg = s->cfg;
	char path[SMTP_PATH_MAX + 80];

	if (s->state == SESSION_GREETED) {
		reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->state != SESSION_READY) {
		reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (submission_role(s) && s->auth_user[0] == '\0') {
		reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	for (size_t i = 0; i < cmd->nparams; i++) {
		const struct smtp_param *p = &cmd->params[i];
		if (strcmp(p->key, "SIZE") == 0 && s->esmtp) {
			uint64_t size;
			if (p->value == NULL || parse_u64(p->value,
			    strlen(p->value), &size) != 0) {
				reply(s, 501, "5.5.4", "Bad SIZE parameter");
				return;
			}
			if (size > cfg->limits.max_message_size) {
				reply(s, 552, "5.3.4", "Message size exceeds "
				    "fixed maximum message size");
				return;
			}
		} else if (strcmp(p->key, "BODY") == 0 && s->esmtp) {
			if (p->value == NULL || (!ascii_strcaseeq(p->value,
			    "8BITMIME") && !ascii_strcaseeq(p->value, "7BIT"))) {
				reply(s, 501, "5.5.4", "Bad BODY parameter");
				return;
			}
		} else if (strcmp(p->key, "REQUIRETLS") == 0 && s->esmtp) {
			if (!s->tls) {
				reply(s, 530, "5.7.10", "REQUIRETLS needs a TLS "
				    "session");
				return;
			}
			if (p->value != NULL) {
				reply(s, 501, "5.5.4", "REQUIRETLS takes no "
				    "value");
				return;
			}
		} else if (strcmp(p->key, "SMTPUTF8") == 0 && s->esmtp) {
			if (p->value != NULL) {
				reply(s, 501, "5.5.4", "SMTPUTF8 takes no "
				    "value");
				return;
			}
		} else if (strcmp(p->key, "RET") == 0 && s->esmtp) {
			enum dsn_ret ret;
			if (dsn_ret_parse(p->value, &ret) != 0) {
				reply(s, 501, "5.5.4", "Bad RET parameter "
				    "(FULL or HDRS)");
				return;
			}
		} else if (strcmp(p->key, "ENVID") == 0 && s->esmtp) {
			if (!dsn_envid_valid(p->value)) {
				reply(s, 501, "5.5.4", "Bad ENVID parameter");
				return;
			}
		} else {
			reply(s, 555, "5.5.4", "Unsupported parameter %s",
			    p->key);
			return;
		}
	}
	if (smtp_addr_format(&cmd->addr, path, sizeof(path)) != 0) {
		reply(s, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	if (cmd->addr.utf8 && smtp_cmd_param(cmd, "SMTPUTF8") == NULL) {
		/* RFC 6531 3.4 */
		reply(s, 553, "5.6.7", "Must declare SMTPUTF8 to send a UTF-8 "
		    "address");
		return;
	}
	struct hook_verdict mv = { .kind = HOOK_NONE };
	if (hooks_has(s->hooks, HOOK_MAIL)) {
		struct hook_io io = session_io(s);
		struct tx_view view;
		tx_view_init(s, &view, cmd);
		s->hook_call = hooks_mail_start(s->hooks, &io, &view.tx,
		    view.sender, on_hook, s, &mv);
		tx_view_clear(&view);
		if (hook_pending(s, HOOK_MAIL, cmd))
			return;
	}
	mail_finish(s, cmd, &mv);
}

static void
mail_finish(struct smtp_session *s, const struct smtp_cmd *cmd,
    const struct hook_verdict *mvp)
{
	const struct hook_verdict mv = *mvp;
	const char *body = "7BIT";
	char path[SMTP_PATH_MAX + 80];

	if (verdict_refuses(s, &mv, "MAIL"))
		return;
	for (size_t i = 0; i < cmd->nparams; i++)
		if (strcmp(cmd->params[i].key, "BODY") == 0 &&
		    cmd->params[i].value &&
		    ascii_strcaseeq(cmd->params[i].value, "8BITMIME"))
			body = "8BITMIME";
	(void)smtp_addr_format(&cmd->addr, path, sizeof(path));
	/* An authenticated user sends as themself unless a plugin widens it. */
	s->sender_by_hook = mv.kind == HOOK_ACCEPT;
	if (s->auth_user[0] && mv.kind != HOOK_ACCEPT &&
	    !sender_owned(s, &cmd->addr)) {
		log_info("session %s: user=%s may not send as %s", s->id,
		    s->auth_user, path);
		reply(s, 553, "5.7.1", "Sender address not owned by user %s",
		    s->auth_user);
		return;
	}
	s->tx = xcalloc(1, sizeof(*s->tx));
	envelope_init(s->tx);
	s->tx->sender = xstrdup(path);
	s->tx->body = xstrdup(body);
	s->tx->requiretls = smtp_cmd_param(cmd, "REQUIRETLS") != NULL;
	s->tx->smtputf8 = smtp_cmd_param(cmd, "SMTPUTF8") != NULL;
	const struct smtp_param *ret = smtp_cmd_param(cmd, "RET");
	const struct smtp_param *envid = smtp_cmd_param(cmd, "ENVID");
	if (ret)
		(void)dsn_ret_parse(ret->value, &s->tx->ret);
	if (envid)
		s->tx->envid = xstrdup(envid->value);
	s->state = SESSION_MAIL;
	reply(s, 250, "2.1.0", "Ok");
}

static void rcpt_finish(struct smtp_session *s, const struct smtp_cmd *cmd,
    const struct hook_verdict *vp);

static void
cmd_rcpt(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct config *cfg = s->cfg;
	struct smtp_addr *a = &cmd->addr;
	char mailbox[SMTP_LOCAL_MAX + 1];

	if (s->state != SESSION_MAIL && s->state != SESSION_RCPT) {
		reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	for (size_t i = 0; i < cmd->nparams; i++) {
		const struct smtp_param *p = &cmd->params[i];
		unsigned mask;
		const char *bad = NULL;
		if (strcmp(p->key, "NOTIFY") == 0 && s->esmtp) {
			if (dsn_notify_parse(p->value, &mask) != 0)
				bad = "Bad NOTIFY parameter";
		} else if (strcmp(p->key, "ORCPT") == 0 && s->esmtp) {
			if (!dsn_orcpt_valid(p->value))
				bad = "Bad ORCPT parameter";
		} else {
			reply(s, 555, "5.5.4", "Unsupported parameter %s",
			    p->key);
			s->tx_rejected++;
			return;
		}
		if (bad) {
			reply(s, 501, "5.5.4", "%s", bad);
			s->tx_rejected++;
			return;
		}
	}
	if (a->utf8 && !s->tx->smtputf8) {
		reply(s, 553, "5.6.7", "Must declare SMTPUTF8 to send to a "
		    "UTF-8 address");
		s->tx_rejected++;
		return;
	}
	if (s->tx->nrcpts >= cfg->limits.max_recipients) {
		reply(s, 452, "4.5.3", "Error: too many recipients");
		s->tx_rejected++;
		return;
	}
	if (a->domain[0] == '\0') /* <postmaster>, RFC 5321 4.1.1.3 */
		(void)str_copy(a->domain, sizeof(a->domain), cfg->hostname);
	bool local = a->domain[0] != '[' &&
	    config_is_local_domain(cfg, a->domain);
	/* Path safety first: no plugin can make this a Maildir name. */
	if (local && maildir_local_normalize(a->local,
	    cfg->recipient_delimiter, mailbox, sizeof(mailbox)) != 0) {
		reply(s, 553, "5.1.3", "Mailbox name not allowed");
		s->tx_rejected++;
		return;
	}
	struct hook_verdict v = { .kind = HOOK_NONE };
	if (hooks_has(s->hooks, HOOK_RCPT)) {
		struct hook_io io = session_io(s);
		struct tx_view view;
		char *addr = xasprintf("%s@%s", a->local, a->domain);
		tx_view_init(s, &view, NULL);
		s->hook_call = hooks_rcpt_start(s->hooks, &io, &view.tx, addr,
		    on_hook, s, &v);
		tx_view_clear(&view);
		free(addr);
		if (hook_pending(s, HOOK_RCPT, cmd))
			return;
	}
	rcpt_finish(s, cmd, &v);
}

/* After the rcpt hook: cmd's checks before it passed (cmd_rcpt). */
static void
rcpt_finish(struct smtp_session *s, const struct smtp_cmd *cmd,
    const struct hook_verdict *vp)
{
	const struct config *cfg = s->cfg;
	const struct smtp_addr *a = &cmd->addr;
	const struct hook_verdict v = *vp;
	char path[SMTP_PATH_MAX + 80], mailbox[SMTP_LOCAL_MAX + 1];
	bool local = a->domain[0] != '[' &&
	    config_is_local_domain(cfg, a->domain);

	if (verdict_refuses(s, &v, "RCPT")) {
		s->tx_rejected++;
		return;
	}
	if (local && maildir_local_normalize(a->local,
	    cfg->recipient_delimiter, mailbox, sizeof(mailbox)) != 0)
		mailbox[0] = '\0';   /* cannot be: cmd_rcpt checked it */
	if (!local && s->role == ROLE_LMTP) {
		/* LMTP is final delivery: nothing goes on from here */
		reply(s, 550, "5.1.1", "Not a local recipient");
		s->tx_rejected++;
		return;
	}
	if (v.kind != HOOK_ACCEPT && !local && !s->trusted &&
	    s->auth_user[0] == '\0') {
		reply(s, 550, "5.7.1", "Relaying denied");
		s->tx_rejected++;
		return;
	}
	if (smtp_addr_format(a, path, sizeof(path)) != 0) {
		reply(s, 501, "5.1.3", "Bad recipient address syntax");
		s->tx_rejected++;
		return;
	}
	if (local && s->env.mailbox_full && s->env.mailbox_full(cfg, mailbox,
	    a->domain)) {
		/* known full: the sender keeps it (delivery checks again) */
		reply(s, 452, "4.2.2", "Mailbox full");
		s->tx_rejected++;
		return;
	}
	/* The same recipient twice is accepted once (one delivery). */
	for (size_t i = 0; i < s->tx->nrcpts; i++)
		if (ascii_strcaseeq(s->tx->rcpts[i].path, path)) {
			reply(s, 250, "2.1.5", "Ok");
			return;
		}
	size_t ri = envelope_add_rcpt(s->tx, path);
	const struct smtp_param *notify = smtp_cmd_param(cmd, "NOTIFY");
	const struct smtp_param *orcpt = smtp_cmd_param(cmd, "ORCPT");
	if (notify)
		(void)dsn_notify_parse(notify->value, &s->tx->rcpts[ri].notify);
	if (orcpt)
		s->tx->rcpts[ri].orcpt = xstrdup(orcpt->value);
	s->state = SESSION_RCPT;
	reply(s, 250, "2.1.5", "Ok");
}

static void body_start(struct smtp_session *s, bool chunks);
static void data_end(struct smtp_session *s);

static void
cmd_data(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct config *cfg = s->cfg;

	if (s->state == SESSION_MAIL && s->tx_rejected > 0) {
		/* RFC 2920 3.1: pipelined DATA after every RCPT failed. */
		reply(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	if (s->state == SESSION_BDAT) {
		reply(s, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (s->state != SESSION_RCPT) {
		reply(s, 503, "5.5.1", s->state == SESSION_MAIL ?
		    "Error: need RCPT command" : "Error: need MAIL command");
		return;
	}
	/*
	 * RFC 2920 3.1: DATA ends a pipelined group; the client waits for the
	 * 354. Octets already here were sent before it could have seen one
	 * (it has not been sent): a client that writes its message blindly
	 * (spam tools, smuggling probes). Refused and disconnected, as
	 * Postfix's smtpd_forbid_unauth_pipelining does.
	 */
	size_t early = evbuffer_get_length(bufferevent_get_input(s->bev));
	if (early > 0) {
		log_info("session %s: improper pipelining after DATA client=%s "
		    "(%zu octets sent before the 354)", s->id, s->ip, early);
		reply(s, 554, "5.5.0", "Error: SMTP protocol synchronization "
		    "(message text sent before the 354 reply)");
		s->closing = true;
		return;
	}
	body_start(s, false);
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    cfg->limits.data_timeout, 0 }, &(struct timeval){
	    cfg->limits.data_timeout, 0 });
	reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/*
 * The message's buffer, with our Received: field first, and the
 * transfer's parser (chunks: BDAT's). state is the caller's to set.
 */
static void
body_start(struct smtp_session *s, bool chunks)
{
	const struct config *cfg = s->cfg;
	struct message_trace t;
	struct tm tm;
	time_t now;
	char date[64];

	queue_new_id(s->env.queue, s->tx->id);
	gettimeofday(&s->data_start, NULL);
	now = s->data_start.tv_sec;
	s->tx->created = now;
	s->tx->client = xstrdup(s->ip);
	s->tx->helo = xstrdup(s->helo);
	/* RFC 3848; RFC 6531 3.7.3: UTF8SMTP and UTF8LMTP with S and A */
	const char *suffix = s->tls ? (s->auth_user[0] ? "SA" : "S") :
	    s->auth_user[0] ? "A" : "";
	s->tx->protocol = !s->esmtp ? xstrdup("SMTP") : xasprintf("%s%s",
	    s->role == ROLE_LMTP ? (s->tx->smtputf8 ? "UTF8LMTP" : "LMTP") :
	    s->tx->smtputf8 ? "UTF8SMTP" : "ESMTP", suffix);

	/* The Received: field goes first into the body buffer. */
	s->body = xcalloc(1, sizeof(*s->body));
	buf_init(s->body);
	buf_reserve(s->body, 8192);
	localtime_r(&now, &tm);
	message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
	t.helo = s->helo;
	t.client_ip = s->ip;
	t.client_name = NULL;
	t.by_host = cfg->hostname;
	t.protocol = s->tx->protocol;
	t.queue_id = s->tx->id;
	/* "for" in A-labels where it can be: a header section that is
	 * ASCII can go to a hop without SMTPUTF8 */
	char for_ascii[SMTP_PATH_MAX + 1];
	t.for_rcpt = s->tx->nrcpts != 1 ? NULL : smtp_path_ascii(
	    s->tx->rcpts[0].path, for_ascii, sizeof(for_ascii)) == 0 ?
	    for_ascii : s->tx->rcpts[0].path;
	t.date = date;
	t.tls = s->tls ? s->tls_desc : NULL;
	message_append_received(s->body, &t);
	s->received_len = s->body->len;
	/* The message proper starts after our field. */
	if (chunks)
		smtp_data_init_chunks(&s->data, s->body,
		    cfg->limits.max_message_size);
	else
		smtp_data_init(&s->data, s->body, cfg->limits.max_message_size);
	smtp_data_set_header_limits(&s->data, cfg->limits.max_header_size,
	    cfg->limits.max_header_fields);
	s->state = chunks ? SESSION_BDAT : SESSION_DATA;
}

/* --- a big message, spooled as it arrives ----------------------------- */

/* Its DKIM and ARC signatures are checked (received on mx). */
static bool
verifies(const struct smtp_session *s)
{
	return s->role == ROLE_MX && s->env.dns && s->cfg->inbound_auth;
}

static void
bh_feed(void *arg, const char *p, size_t n)
{
	bodyhash_feed(arg, p, n);
}

static void
bh_free(void *arg)
{
	if (arg) {
		bodyhash_clear(arg);
		free(arg);
	}
}

/*
 * Submitted mail that a DKIM key will sign stays in memory (up to
 * max_message_size, as before): its 7-bit conversion and its signature
 * need the whole body.
 */
static bool
spill_allowed(const struct smtp_session *s)
{
	const struct dkim_signer *ds = s->env.rt->dkim;

	return !(submission_role(s) && ds != NULL && dkim_signer_wants(ds,
	    s->body->data + s->received_len, s->body->len - s->received_len));
}

static void on_spilled(void *arg, bool ok);

/* What is past spill_at goes to the file. */
static void
spill_piece(struct smtp_session *s)
{
	struct buf *piece = xcalloc(1, sizeof(*piece));

	buf_init(piece);
	buf_append(piece, s->body->data + s->spill_at, s->body->len -
	    s->spill_at);
	s->body->len = s->spill_at;
	s->body->data[s->body->len] = '\0';
	queue_spill_append(s->spill, piece, on_spilled, s);
}

/*
 * After each piece of input: spooling begins once the header section is
 * whole and the message is past SPILL_AT, then a full piece is handed on
 * whenever the last is written. True when input must wait for the disk.
 */
static bool
spill_check(struct smtp_session *s)
{
	if (s->data.errors)      /* refused at the end; nothing more is kept */
		return false;
	if (s->spill == NULL) {
		if (s->data.in_header || s->body->len - s->received_len <
		    SPILL_AT || !spill_allowed(s))
			return false;
		const char *m = s->body->data + s->received_len;
		size_t len = s->body->len - s->received_len;
		if (verifies(s)) {
			s->bh = xcalloc(1, sizeof(*s->bh));
			size_t off = bodyhash_init(s->bh, m, len);
			bodyhash_feed(s->bh, m + off, len - off);
		}
		s->spill = queue_spill_new(s->env.queue, s->tx->id, s->bh ?
		    bh_feed : NULL, s->bh, bh_free);
		s->spill_at = s->body->len;
		log_debug("%s: spooling the message as it arrives session=%s",
		    s->tx->id, s->id);
		return false;
	}
	if (s->body->len - s->spill_at < SPILL_PIECE)
		return false;
	if (!queue_spill_busy(s->spill)) {
		spill_piece(s);
		return false;
	}
	if (s->body->len - s->spill_at < 2 * SPILL_PIECE)
		return false;
	s->spill_wait = true;
	return true;
}

static void data_checks(struct smtp_session *s);

/* The end of data: the last piece written, the body hashes whole, the
 * message goes on to its checks. */
static void
spill_flush(struct smtp_session *s)
{
	bool no_space;

	if (queue_spill_busy(s->spill))
		return;                 /* on_spilled comes back here */
	if (s->body->len > s->spill_at) {
		spill_piece(s);
		return;
	}
	s->spill_end = false;
	if (!queue_spill_ok(s->spill, &no_space)) {
		log_warnx("%s: cannot spool the message (%s) session=%s",
		    s->tx->id, no_space ? "no room" : "write error", s->id);
		if (no_space)
			reply(s, 452, "4.3.1", "Insufficient system storage");
		else
			reply(s, 451, "4.3.0", "Local error in processing");
		tx_reset(s);
		if (s->shutdown && !s->closing)   /* asked meanwhile */
			reply(s, 421, "4.3.2", "%s Service shutting down",
			    s->cfg->hostname);
		return;
	}
	if (s->bh)
		bodyhash_end(s->bh);
	data_checks(s);
}

static void
on_spilled(void *arg, bool ok)
{
	struct smtp_session *s = arg;

	(void)ok;                  /* sticks; said at the end (spill_flush) */
	if (s->spill_end)
		spill_flush(s);
	else if (s->spill_wait) {
		s->spill_wait = false;
		if (s->body->len - s->spill_at >= SPILL_PIECE)
			spill_piece(s);
	}
	session_process(s);
}

/*
 * BDAT size [LAST] (RFC 3030): the chunk's octets are read whatever the
 * answer; a refusal is said after them. A size that cannot be read
 * leaves no way to find the next command: the session ends.
 */
static void
cmd_bdat(struct smtp_session *s, struct smtp_cmd *cmd)
{
	const struct config *cfg = s->cfg;
	const char *a = cmd->arg;
	uint64_t size = 0;
	size_t digits = 0;

	while (a[digits] >= '0' && a[digits] <= '9' && digits < 20) {
		size = size * 10 + (uint64_t)(a[digits] - '0');
		digits++;
	}
	const char *rest = a + digits;
	bool last = false;
	if (*rest == ' ' && ascii_strcaseeq(rest + 1, "LAST"))
		last = true;
	else if (*rest != '\0')
		digits = 0;
	if (digits == 0 || digits == 20) {
		reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		s->closing = true;
		return;
	}
	s->chunk_left = s->chunk_size = size;
	s->chunk_last = last;
	s->chunk_code = 0;
	if (s->state == SESSION_MAIL && s->tx_rejected > 0) {
		s->chunk_code = 554;
		(void)str_copy(s->chunk_enh, sizeof(s->chunk_enh), "5.5.1");
		(void)str_copy(s->chunk_text, sizeof(s->chunk_text),
		    "Error: no valid recipients");
	} else if (s->state != SESSION_RCPT && s->state != SESSION_BDAT) {
		s->chunk_code = 503;
		(void)str_copy(s->chunk_enh, sizeof(s->chunk_enh), "5.5.1");
		(void)str_copy(s->chunk_text, sizeof(s->chunk_text),
		    s->state == SESSION_MAIL ? "Error: need RCPT command" :
		    "Error: need MAIL command");
	} else if (s->state == SESSION_RCPT)
		body_start(s, true);
	s->chunk_back = s->state;
	s->state = SESSION_CHUNK;
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    cfg->limits.data_timeout, 0 }, &(struct timeval){
	    cfg->limits.data_timeout, 0 });
}

/* A chunk's octets; 1 when it is all read (and answered), 0 if more. */
static int
session_read_chunk(struct smtp_session *s, struct evbuffer *in)
{
	const struct config *cfg = s->cfg;
	struct evbuffer_iovec v;
	bool done;

	while (s->chunk_left > 0 && evbuffer_get_length(in) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t n = v.iov_len < s->chunk_left ? v.iov_len :
		    (size_t)s->chunk_left;
		if (s->chunk_code == 0)
			(void)smtp_data_feed(&s->data, v.iov_base, n, &done);
		evbuffer_drain(in, n);
		s->chunk_left -= n;
		if (s->chunk_code == 0 && spill_check(s))
			return 0;
	}
	if (s->chunk_left > 0)
		return 0;
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    cfg->limits.command_timeout, 0 }, &(struct timeval){
	    cfg->limits.command_timeout, 0 });
	if (s->chunk_code) {
		s->state = s->chunk_back;
		reply(s, s->chunk_code, s->chunk_enh, "%s", s->chunk_text);
		return 1;
	}
	if (!s->chunk_last) {
		s->state = SESSION_BDAT;
		reply(s, 250, "2.0.0", "%llu octets received",
		    (unsigned long long)s->chunk_size);
		return 1;
	}
	smtp_data_chunks_end(&s->data);
	s->state = SESSION_DATA;     /* as after DATA's end: the answer */
	data_end(s);
	return 1;
}

static void
on_commit(void *arg, const char *id, const struct tern_err *err)
{
	struct smtp_session *s = arg;
	struct timeval now;

	s->commit = NULL;
	gettimeofday(&now, NULL);
	if (err) {
		reply(s, err->code, err->enh, "%s", err->text);
	} else {
		double ms = (double)(now.tv_sec - s->data_start.tv_sec) * 1e3 +
		    (double)(now.tv_usec - s->data_start.tv_usec) / 1e3;
		log_debug("%s: commit latency=%.2fms", id, ms);
		reply(s, 250, "2.0.0", "Ok: queued as %s", id);
	}
	if (s->shutdown && !s->closing)
		reply(s, 421, "4.3.2", "%s Service shutting down",
		    s->cfg->hostname);
	session_process(s);
}

/*
 * After the data hook: its folders, its verdict. Refused or discarded:
 * answered here, the transaction over.
 */
static void data_commit(struct smtp_session *s, bool hook_accepted);

static void
data_hook_finish(struct smtp_session *s, const struct hook_verdict *v)
{
	if (s->hook_part) {
		/* what was read back for it goes (it edits only the header) */
		s->body->len -= s->hook_part;
		s->body->data[s->body->len] = '\0';
		s->hook_part = 0;
	}
	for (size_t i = 0; i < s->tx->nrcpts; i++)
		s->tx->rcpts[i].folder = s->hook_folders[i];
	free(s->hook_folders);
	s->hook_folders = NULL;
	if (verdict_refuses(s, v, "DATA")) {
		tx_reset(s);
		return;
	}
	if (v->kind == HOOK_DISCARD) {
		log_info("%s: discarded by plugin session=%s client=%s from=%s",
		    s->tx->id, s->id, s->ip, s->tx->sender);
		reply(s, 250, "2.0.0", "Ok: queued as %s", s->tx->id);
		tx_reset(s);
		return;
	}
	data_commit(s, v->kind == HOOK_ACCEPT);
}

/*
 * Submitted mail of a domain with DKIM keys leaves signed (made 7-bit
 * first, so no later downgrade breaks it), the signature below our
 * Received: field. False when it cannot be signed (answered 451).
 */
static bool
dkim_sign(struct smtp_session *s)
{
	char why[200];
	bool made7;

	if (s->spill) {
		/* spooled because no key would sign it; a data hook that
		 * changed its From: cannot change that */
		if (s->env.rt->dkim && dkim_signer_wants(s->env.rt->dkim,
		    s->body->data + s->received_len, s->body->len -
		    s->received_len))
			log_warnx("%s: not DKIM-signed: spooled as it arrived, "
			    "before a plugin changed its From: session=%s",
			    s->tx->id, s->id);
		return true;
	}
	int n = dkim_sign_submitted(s->env.rt->dkim, s->body, s->received_len,
	    (int64_t)time(NULL), &made7, why, sizeof(why));

	if (n < 0) {
		log_warnx("%s: %s", s->tx->id, why);
		reply(s, 451, "4.3.0", "Error: cannot sign the message now");
		tx_reset(s);
		return false;
	}
	if (made7) {
		free(s->tx->body);
		s->tx->body = xstrdup("7BIT");
	}
	if (n > 0)
		log_info("%s: DKIM-signed (%d signature%s) session=%s",
		    s->tx->id, n, n == 1 ? "" : "s", s->id);
	return true;
}

static const char *authserv_id(const struct smtp_session *s);
static void spf_start(struct smtp_session *s);
static void on_spf(void *arg, enum spf_result r, const char *why);
static void on_spf_helo(void *arg, enum spf_result r, const char *why);
static void auth_done(struct smtp_session *s);
static void on_verified(void *arg, const struct dkim_verdict *v, size_t n);
static void on_arc(void *arg, struct arc_verdict *v);
static void data_accept(struct smtp_session *s);

static void
data_end(struct smtp_session *s)
{
	const struct config *cfg = s->cfg;

	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    cfg->limits.command_timeout, 0 }, &(struct timeval){
	    cfg->limits.command_timeout, 0 });
	s->message_end = true;    /* the next reply is its answer */
	s->lmtp_rcpts = s->role == ROLE_LMTP && s->tx ?
	    (unsigned)s->tx->nrcpts : 1;
	if (s->data.errors) {
		log_info("session %s: message refused client=%s errors=0x%x "
		    "size=%llu", s->id, s->ip, s->data.errors,
		    (unsigned long long)s->data.size);
		reply_r(s, smtp_reply_for_data_errors(s->data.errors));
		tx_reset(s);
		return;
	}
	if (s->spill) {
		s->spill_end = true;
		spill_flush(s);        /* then data_checks */
		return;
	}
	data_checks(s);
}

/* The message is in (its start in body, the rest maybe spooled). */
static void
data_checks(struct smtp_session *s)
{
	const struct config *cfg = s->cfg;

	if (submission_role(s)) {
		const char *why;
		char date[64], msgid[200];
		struct tm tm;
		time_t now = time(NULL);
		localtime_r(&now, &tm);
		message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
		(void)snprintf(msgid, sizeof(msgid), "<%s@%s>", s->tx->id,
		    s->cfg->hostname);
		if (message_submission_fixup(s->body, s->received_len, date,
		    msgid, &why) != 0) {
			reply(s, 550, "5.6.0", "%s", why);
			tx_reset(s);
			return;
		}
	}
	/* a loop: more Received: fields than any real path has (RFC 5321
	 * 6.3); ours is one of them */
	unsigned hops = message_count_fields(s->body->data, s->body->len,
	    "Received");
	if (cfg->limits.max_hops && hops > cfg->limits.max_hops) {
		log_info("session %s: message refused client=%s: %u Received: "
		    "fields (max_hops %u)", s->id, s->ip, hops,
		    cfg->limits.max_hops);
		reply(s, 554, "5.4.6", "Too many hops (%u Received: fields): "
		    "a mail loop", hops);
		tx_reset(s);
		return;
	}
	/* verdicts that claim to be ours are forged (RFC 8601 5) */
	size_t forged = authres_strip(s->body, s->received_len,
	    authserv_id(s));
	if (forged)
		log_info("%s: %zu Authentication-Results field(s) of ours "
		    "taken out session=%s", s->tx->id, forged, s->id);
	if (verifies(s)) {
		spf_start(s);
		s->verify = dkim_verify_start(s->env.dns, s->body->data +
		    s->received_len, s->body->len - s->received_len, s->bh,
		    (int64_t)time(NULL), on_verified, s);
		s->arc = arc_verify_start(s->env.dns, s->body->data +
		    s->received_len, s->body->len - s->received_len, s->bh,
		    on_arc, s);
		return;            /* on_verified, on_arc, on_spf go on */
	}
	data_accept(s);
}

/*
 * SPF (RFC 7208) of the MAIL FROM domain, or of the HELO name for <>
 * (as postmaster@ it), beside the DKIM lookups.
 */
static void
spf_start(struct smtp_session *s)
{
	unsigned char ip[16];
	bool v6;
	char sender[SMTP_PATH_MAX + 16];
	const char *path = s->tx->sender;

	s->spf_result = SPF_NONE;
	s->spf_domain[0] = s->spf_why[0] = '\0';
	s->spf_helo_checked = false;
	if (ip_parse(s->ip, strlen(s->ip), ip, &v6) != 0)
		return;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	if (v6 && memcmp(ip, mapped, 12) == 0) {
		/* an IPv4 client on a dual-stack listener is an IPv4 one */
		memmove(ip, ip + 12, 4);
		v6 = false;
	}
	if (!spf_identity(path, s->helo, s->spf_domain, sizeof(s->spf_domain),
	    sender, sizeof(sender))) {
		s->spf_domain[0] = '\0';
		return;                 /* no name SPF could check */
	}
	s->spf = spf_check_start(s->env.dns, ip, v6, s->spf_domain, sender,
	    s->helo, on_spf, s);
	/*
	 * RFC 7208 2.3: the HELO identity too, when the MAIL FROM one is
	 * another name (for <> it is the one above); a name, not a literal.
	 */
	size_t hl = strlen(s->helo);
	if (path[1] != '>' && hl > 0 && hl <= 253 && s->helo[0] != '[' &&
	    strchr(s->helo, '.') && smtp_valid_domain(s->helo, hl)) {
		char hsender[300];
		(void)snprintf(hsender, sizeof(hsender), "postmaster@%s",
		    s->helo);
		s->spf_helo = spf_check_start(s->env.dns, ip, v6, s->helo,
		    hsender, s->helo, on_spf_helo, s);
	}
}

/* Both SPF checks and DKIM's are back: DMARC, then the field. */
static bool
auth_pending(const struct smtp_session *s)
{
	return s->spf != NULL || s->spf_helo != NULL || s->verify != NULL ||
	    s->arc != NULL;
}

/* The ARC chain's verdict (RFC 8617 5.2), kept for the field and hooks. */
static void
on_arc(void *arg, struct arc_verdict *v)
{
	struct smtp_session *s = arg;

	s->arc = NULL;
	s->arc_v = *v;
	s->arc_checked = true;
	if (v->n > 0)
		log_info("%s: arc=%s sets=%u sealer=%s%s%s", s->tx->id,
		    arc_cv_name(v->result), v->n, v->hops[v->n - 1].domain,
		    v->reason[0] ? " reason=" : "", v->reason);
	if (!auth_pending(s))
		auth_done(s);
}

static void
on_spf_helo(void *arg, enum spf_result r, const char *why)
{
	struct smtp_session *s = arg;

	s->spf_helo = NULL;
	s->spf_helo_result = r;
	s->spf_helo_checked = true;
	(void)snprintf(s->spf_helo_why, sizeof(s->spf_helo_why), "%s",
	    why ? why : "");
	log_info("%s: spf=%s helo=%s%s%s", s->tx->id, spf_result_name(r),
	    s->helo, why ? " reason=" : "", why ? why : "");
	if (!auth_pending(s))
		auth_done(s);
}

static void
on_spf(void *arg, enum spf_result r, const char *why)
{
	struct smtp_session *s = arg;

	s->spf = NULL;
	s->spf_result = r;
	(void)snprintf(s->spf_why, sizeof(s->spf_why), "%s", why ? why : "");
	log_info("%s: spf=%s domain=%s%s%s", s->tx->id, spf_result_name(r),
	    s->spf_domain, why ? " reason=" : "", why ? why : "");
	if (!auth_pending(s))
		auth_done(s);
}

static const char *
authserv_id(const struct smtp_session *s)
{
	return s->cfg->authserv_id ? s->cfg->authserv_id : s->cfg->hostname;
}

/*
 * The DKIM verdicts, in an Authentication-Results field below our
 * Received: (where the data hook reads it), then the message goes on.
 */
static void
on_verified(void *arg, const struct dkim_verdict *v, size_t n)
{
	struct smtp_session *s = arg;
	struct buf ar;

	s->verify = NULL;
	s->dkim = xcalloc(n + 1, sizeof(*s->dkim));
	memcpy(s->dkim, v, n * sizeof(*v));
	s->ndkim = n;
	s->dkim_checked = true;
	buf_init(&ar);
	authres_begin(&ar, authserv_id(s));
	for (size_t i = 0; i < n; i++) {
		char bits[64] = "";
		if (v[i].result == DKIM_PASS || v[i].result == DKIM_FAIL)
			(void)snprintf(bits, sizeof(bits), "%u-bit key%s",
			    v[i].bits, v[i].testing ? "; test mode" : "");
		struct authres_prop p[] = { { "header.d", v[i].domain },
			{ "header.i", v[i].identity },
			{ "header.s", v[i].selector },
			{ "header.a", v[i].algorithm },
			{ "header.b", v[i].b } };
		authres_add(&ar, "dkim", dkim_result_name(v[i].result), bits,
		    v[i].reason, p, sizeof(p) / sizeof(p[0]));
		log_info("%s: dkim=%s d=%s s=%s%s%s", s->tx->id,
		    dkim_result_name(v[i].result), v[i].domain, v[i].selector,
		    v[i].reason[0] ? " reason=" : "", v[i].reason);
	}
	if (n == 0)
		buf_append_str(&ar, ";\n\tdkim=none");
	s->pending_ar = ar;
	if (!auth_pending(s))
		auth_done(s);
}

static void auth_finish(struct smtp_session *s);

static void
on_dmarc(void *arg, const struct dmarc_verdict *v)
{
	struct smtp_session *s = arg;

	s->dmarc = NULL;
	s->dmarc_v = *v;
	s->dmarc_checked = true;
	log_info("%s: dmarc=%s header.from=%s policy=%s", s->tx->id,
	    dmarc_result_name(v->result), v->from, v->record_domain[0] ?
	    dmarc_policy_name(v->policy) : "-");
	auth_finish(s);
}

/*
 * DKIM and SPF are both back: DMARC of the From: domain (one address,
 * RFC 7489 6.6.1), then the field goes in.
 */
static void
auth_done(struct smtp_session *s)
{
	const char *msg = s->body->data + s->received_len;
	size_t len = message_header_len(msg, s->body->len - s->received_len);
	struct message_field f;
	struct message_addr a[2];

	s->dmarc_checked = false;
	if (message_find_field(msg, len, "From", &f) &&
	    message_parse_addresses(f.value, f.value_len, a, 2) == 1 &&
	    a[0].domain[0] && strchr(a[0].domain, '.')) {
		s->dmarc = dmarc_check_start(s->env.dns, s->env.rt->psl,
		    a[0].domain, s->dkim, s->ndkim, s->spf_result,
		    s->spf_domain, on_dmarc, s);
		return;
	}
	auth_finish(s);
}

/* The verdicts are in: the field goes in, the message on. */
static void
auth_finish(struct smtp_session *s)
{
	struct buf ar = s->pending_ar, rest;

	memset(&s->pending_ar, 0, sizeof(s->pending_ar));
	if (s->spf_domain[0]) {
		bool helo = s->tx->sender[1] == '>' || strchr(s->tx->sender,
		    '@') == NULL;
		char who[SMTP_PATH_MAX + 1];
		size_t sl = strlen(s->tx->sender);
		(void)snprintf(who, sizeof(who), "%.*s", (int)(sl > 2 ? sl - 2 :
		    0), s->tx->sender + 1);
		struct authres_prop p[] = { { helo ? "smtp.helo" :
			"smtp.mailfrom", helo ? s->spf_domain : who } };
		authres_add(&ar, "spf", spf_result_name(s->spf_result), NULL,
		    s->spf_result == SPF_PASS ? NULL : s->spf_why, p, 1);
	}
	if (s->spf_helo_checked) {
		struct authres_prop p[] = { { "smtp.helo", s->helo } };
		authres_add(&ar, "spf", spf_result_name(s->spf_helo_result),
		    NULL, s->spf_helo_result == SPF_PASS ? NULL :
		    s->spf_helo_why, p, 1);
	}
	if (s->dmarc_checked) {
		const struct dmarc_verdict *d = &s->dmarc_v;
		char note[80] = "";
		if (d->record_domain[0])
			(void)snprintf(note, sizeof(note), "p=%s pct=%u",
			    dmarc_policy_name(d->policy), d->pct);
		struct authres_prop p[] = { { "header.from", d->from } };
		authres_add(&ar, "dmarc", dmarc_result_name(d->result), note,
		    NULL, p, 1);
	}
	if (s->arc_checked) {
		/* RFC 8617 10.1: arc= with the client and oldest-pass */
		const struct arc_verdict *a = &s->arc_v;
		char note[300] = "", oldest[16] = "";
		if (a->n > 0)
			(void)snprintf(note, sizeof(note), "i=%u d=%s", a->n,
			    a->hops[a->n - 1].domain);
		if (a->result == ARC_CV_PASS && a->n > 1)
			(void)snprintf(oldest, sizeof(oldest), "%d",
			    a->oldest_pass);
		struct authres_prop p[] = { { "header.oldest-pass", oldest },
			{ "smtp.remote-ip", s->ip } };
		authres_add(&ar, "arc", arc_cv_name(a->result), note,
		    a->reason, p, 2);
	}
	authres_end(&ar, 1);
	buf_init(&rest);
	buf_append(&rest, s->body->data + s->received_len, s->body->len -
	    s->received_len);
	s->body->len = s->received_len;
	buf_append(s->body, ar.data, ar.len);
	buf_append(s->body, rest.data, rest.len);
	buf_clear(&rest);
	buf_clear(&ar);
	data_accept(s);
	/* a shutdown asked meanwhile: on_commit says 421 after its 250;
	 * a message the data hook refused has no commit */
	if (s->shutdown && !s->closing && s->commit == NULL &&
	    s->hook_call == NULL && !s->spill_reading)
		reply(s, 421, "4.3.2", "%s Service shutting down",
		    s->cfg->hostname);
	session_process(s);
}

static void data_accept(struct smtp_session *s);

/* A spooled message's first HOOK_BODY_MAX octets, for the data hook. */
static void
on_hook_part(void *arg, struct buf *part)
{
	struct smtp_session *s = arg;

	s->spill_reading = false;
	if (part == NULL) {
		log_warnx("%s: cannot read the spooled message back session=%s",
		    s->tx->id, s->id);
		reply(s, 451, "4.3.0", "Local error in processing");
		tx_reset(s);
	} else {
		buf_append(s->body, part->data, part->len);
		s->hook_part = part->len;
		s->hook_unseen = queue_spill_size(s->spill) - part->len;
		buf_clear(part);
		free(part);
		data_accept(s);
	}
	if (s->shutdown && !s->closing && s->commit == NULL &&
	    s->hook_call == NULL)
		reply(s, 421, "4.3.2", "%s Service shutting down",
		    s->cfg->hostname);
	session_process(s);
}

/* The message is whole and checked: the data hook, then the queue. */
static void
data_accept(struct smtp_session *s)
{
	struct hook_io io = session_io(s);
	struct tx_view view;
	struct hook_verdict v;

	if (!hooks_has(s->hooks, HOOK_DATA)) {
		data_commit(s, false);
		return;
	}
	if (s->spill && s->hook_part == 0 && queue_spill_size(s->spill) > 0) {
		/* the hook sees the start of it, read back on a worker */
		s->spill_reading = true;
		queue_spill_read(s->spill, HOOK_BODY_MAX, on_hook_part, s);
		return;
	}
	/* The message proper starts after our Received: field. */
	s->hook_folders = xcalloc(s->tx->nrcpts + 1, sizeof(char *));
	tx_view_init(s, &view, NULL);
	s->hook_call = hooks_data_start(s->hooks, &io, &view.tx, s->body,
	    s->received_len, s->hook_unseen, s->hook_folders, on_hook, s, &v);
	tx_view_clear(&view);
	if (!hook_pending(s, HOOK_DATA, NULL))
		data_hook_finish(s, &v);
}

static void
data_commit(struct smtp_session *s, bool hook_accepted)
{
	if (submission_role(s) && s->auth_user[0] && !hook_accepted &&
	    !from_allowed(s)) {
		tx_reset(s);
		return;
	}
	if (submission_role(s) && !dkim_sign(s))
		return;
	log_info("%s: accepted session=%s client=%s from=%s size=%llu "
	    "nrcpt=%zu via=%s%s%s", s->tx->id, s->id, s->ip, s->tx->sender,
	    (unsigned long long)(s->body->len + (s->spill ?
	    queue_spill_size(s->spill) : 0)), s->tx->nrcpts,
	    s->data.chunks ? "BDAT" : "DATA", s->tx->requiretls ?
	    " requiretls" : "", s->spill ? " spooled" : "");
	s->ntx++;
	/* the commit takes the envelope and the body (and its spool file) */
	if (s->spill) {
		s->commit = queue_commit_spilled(s->env.queue, s->tx, s->body,
		    s->spill, on_commit, s);
		s->spill = NULL;
		s->bh = NULL;
	} else
		s->commit = queue_commit(s->env.queue, s->tx, s->body,
		    on_commit, s);
	s->tx = NULL;
	s->body = NULL;
	tx_reset(s);
}

static void
cmd_rset(struct smtp_session *s, struct smtp_cmd *cmd)
{
	tx_reset(s);
	reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_noop(struct smtp_session *s, struct smtp_cmd *cmd)
{
	reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtp_session *s, struct smtp_cmd *cmd)
{
	reply(s, 221, "2.0.0", "Bye");
	s->closing = true;
}

static void
cmd_vrfy(struct smtp_session *s, struct smtp_cmd *cmd)
{
	/* RFC 5321 3.5.3: 252, and no disclosure of who exists. */
	reply(s, 252, "2.5.2", "Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
cmd_expn(struct smtp_session *s, struct smtp_cmd *cmd)
{
	reply(s, 502, "5.5.1", "EXPN not available");
}

static void
cmd_help(struct smtp_session *s, struct smtp_cmd *cmd)
{
	reply(s, 214, "2.0.0", "Tern ESMTP. Commands: EHLO HELO MAIL RCPT "
	    "DATA RSET NOOP QUIT VRFY HELP; see RFC 5321");
}

static bool
submission_role(const struct smtp_session *s)
{
	return s->role == ROLE_SUBMISSION || s->role == ROLE_SUBMISSIONS;
}

/* AUTH is offered on submission roles, under TLS (or loopback if allowed). */
static bool
auth_offered(const struct smtp_session *s)
{
	return s->env.rt->users != NULL && submission_role(s) &&
	    s->auth_user[0] == '\0' && (s->tls ||
	    (s->cfg->auth_loopback_plaintext && s->trusted));
}

static void
on_auth_checked(void *arg, bool ok)
{
	struct smtp_session *s = arg;
	const char *user = s->auth_step == AUTH_NONE ? "" : s->login_user;

	s->auth = NULL;
	if (ok) {
		(void)str_copy(s->auth_user, sizeof(s->auth_user), user);
		s->hs.user = s->auth_user;
		log_info("session %s: authenticated user=%s client=%s", s->id,
		    s->auth_user, s->ip);
		reply(s, 235, "2.7.0", "Authentication successful");
	} else {
		auth_ip_failed(s->ip, (long)time(NULL), "smtp");
		log_warnx("session %s: authentication failed user=%s "
		    "client=%s", s->id, user, s->ip);
		reply(s, 535, "5.7.8", "Authentication credentials invalid");
	}
	s->auth_step = AUTH_NONE;
	explicit_bzero(s->login_user, sizeof(s->login_user));
	if (ok)
		(void)str_copy(s->login_user, sizeof(s->login_user), "");
	session_process(s);
}

static void
auth_start_check(struct smtp_session *s, const char *user, const char *pass)
{
	(void)str_copy(s->login_user, sizeof(s->login_user), user);
	if (s->auth_step == AUTH_NONE)
		s->auth_step = AUTH_PLAIN; /* marks "checking" for the cb */
	s->auth = auth_check(s->env.rt->users, s->env.pool, user, pass,
	    on_auth_checked, s);
}

/* One line of a SASL exchange (not a command). */
static void
auth_line(struct smtp_session *s, const char *line, size_t len)
{
	char user[SASL_FIELD_MAX], pass[SASL_FIELD_MAX];

	if (len == 1 && line[0] == '*') {
		s->auth_step = AUTH_NONE;
		reply(s, 501, "5.7.0", "Authentication cancelled");
		return;
	}
	switch (s->auth_step) {
	case AUTH_PLAIN:
		if (sasl_plain(line, len, user, pass) != 0) {
			s->auth_step = AUTH_NONE;
			reply(s, 501, "5.5.2", "Cannot decode the response");
			return;
		}
		auth_start_check(s, user, pass);
		break;
	case AUTH_LOGIN_USER:
		if (sasl_login_field(line, len, s->login_user) != 0) {
			s->auth_step = AUTH_NONE;
			reply(s, 501, "5.5.2", "Cannot decode the response");
			return;
		}
		s->auth_step = AUTH_LOGIN_PASS;
		reply(s, 334, NULL, "UGFzc3dvcmQ6");     /* "Password:" */
		break;
	case AUTH_LOGIN_PASS:
		if (sasl_login_field(line, len, pass) != 0) {
			s->auth_step = AUTH_NONE;
			reply(s, 501, "5.5.2", "Cannot decode the response");
			return;
		}
		(void)str_copy(user, sizeof(user), s->login_user);
		auth_start_check(s, user, pass);
		break;
	case AUTH_NONE:
		break;
	}
	explicit_bzero(pass, sizeof(pass));
}

static void
cmd_auth(struct smtp_session *s, struct smtp_cmd *cmd)
{
	char mech[32], initial[SMTP_CMD_LINE_MAX];

	if (s->auth_user[0]) {
		reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->state > SESSION_READY) {
		reply(s, 503, "5.5.1", "Error: AUTH not allowed in a "
		    "transaction");
		return;
	}
	if (s->env.rt->users == NULL || !submission_role(s)) {
		reply(s, 503, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (!auth_offered(s)) {
		reply(s, 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (auth_ip_blocked(s->ip, (long)time(NULL))) {
		reply(s, 454, "4.7.0", "Too many failed authentications; "
		    "try again later");
		return;
	}
	initial[0] = '\0';
	if (sscanf(cmd->arg, "%31s %511s", mech, initial) < 1) {
		reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [response]");
		return;
	}
	if (ascii_strcaseeq(mech, "PLAIN")) {
		s->auth_step = AUTH_PLAIN;
		if (initial[0] == '\0')
			smtp_reply_append(&s->out, 334, NULL, "");
		else if (strcmp(initial, "=") == 0)
			auth_line(s, "", 0);
		else
			auth_line(s, initial, strlen(initial));
	} else if (ascii_strcaseeq(mech, "LOGIN")) {
		s->auth_step = AUTH_LOGIN_USER;
		if (initial[0] == '\0')
			reply(s, 334, NULL, "VXNlcm5hbWU6");   /* "Username:" */
		else
			auth_line(s, initial, strlen(initial));
	} else
		reply(s, 504, "5.5.4", "Unrecognized authentication type");
}

/*
 * Is local@domain one of the authenticated user's addresses? The user
 * "alice" owns alice@ of every local domain, "bob@example.org" only that
 * address; either with a +extension (recipient_delimiter), since mail to
 * alice+tag@ is delivered to alice.
 */
static bool
user_owns(const struct smtp_session *s, const char *local, const char *domain)
{
	return config_user_owns(s->cfg, s->auth_user, local, domain);
}

/* May the authenticated user send as this envelope sender? */
static bool
sender_owned(const struct smtp_session *s, const struct smtp_addr *a)
{
	return !a->null && user_owns(s, a->local, a->domain);
}

/*
 * submission_from: may an authenticated user's message carry this From:?
 * "strict": each of its mailboxes is one of the user's addresses, or the
 * envelope sender a mail hook allowed; "envelope": it is the envelope
 * sender; "none": anything. A data hook's "accept" skips the check
 * (data_end). False with the reply sent.
 */
static bool
from_allowed(struct smtp_session *s)
{
	enum submission_from mode = s->cfg->submission_from;
	const char *msg = s->body->data + s->received_len;
	size_t len = s->body->len - s->received_len;
	struct message_addr addrs[8];
	struct message_field f;
	char sender[SMTP_PATH_MAX + 1];
	int n;

	if (mode == SUBMISSION_FROM_NONE)
		return true;
	len = message_header_len(msg, len);
	/* message_submission_fixup made sure there is a From: */
	if (!message_find_field(msg, len, "From", &f))
		return true;
	n = message_parse_addresses(f.value, f.value_len, addrs, 8);
	if (n <= 0 || n > 8) {
		reply(s, 550, "5.6.0", n > 8 ? "Error: more than 8 From: "
		    "addresses" : "Error: the From: header field is not a list "
		    "of addresses");
		return false;
	}
	/* the envelope sender as "local@domain", without the brackets */
	size_t sl = strlen(s->tx->sender);
	(void)snprintf(sender, sizeof(sender), "%.*s", (int)(sl - 2),
	    s->tx->sender + 1);
	for (int i = 0; i < n; i++) {
		char addr[MESSAGE_ADDR_LOCAL_MAX + MESSAGE_ADDR_DOMAIN_MAX + 2];
		if (str_fmt(addr, sizeof(addr), "%s@%s", addrs[i].local,
		    addrs[i].domain) != 0)
			addr[0] = '\0';   /* cannot happen: sizes add up */
		bool is_sender = ascii_strcaseeq(addr, sender);
		if (mode == SUBMISSION_FROM_ENVELOPE ? is_sender :
		    (user_owns(s, addrs[i].local, addrs[i].domain) ||
		    (is_sender && s->sender_by_hook)))
			continue;
		log_info("session %s: user=%s may not use From: %s "
		    "(submission_from=%s)", s->id, s->auth_user, addr,
		    config_submission_from_name(mode));
		reply(s, 550, "5.7.1", "From: address %s not owned by user %s",
		    addr, s->auth_user);
		return false;
	}
	return true;
}

static bool
starttls_offered(const struct smtp_session *s)
{
	return !s->tls && s->tls_mode == LISTEN_TLS_STARTTLS &&
	    s->env.rt->tls != NULL;
}

/* RFC 3207 */
static void
cmd_starttls(struct smtp_session *s, struct smtp_cmd *cmd)
{
	if (s->tls) {
		reply(s, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (!starttls_offered(s)) {
		reply(s, 454, "4.7.0", "TLS not available");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	s->starttls_now = true;   /* nothing after this line is read */
}

/*
 * After the 220: anything the client sent behind STARTTLS is thrown away
 * (CVE-2011-0411: it must not be answered inside TLS), the connection is
 * wrapped, and the session forgets HELO and any transaction (RFC 3207
 * 4.2). The handshake completes in session_on_event.
 */
static void
session_starttls(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);

	if (junk > 0) {
		log_info("session %s: discarded %zu octets sent after STARTTLS",
		    s->id, junk);
		evbuffer_drain(in, junk);
	}
	s->starttls_now = false;
	s->bev = tls_server_wrap(s->env.rt->tls, s->env.base, s->bev);
	s->tls_wrapped = s->bev != NULL;
	if (s->bev == NULL) {
		log_warnx("session %s: cannot start TLS", s->id);
		s->env.on_close(s->env.arg, s);  /* see session_free */
		runtime_unref(s->env.rt);
		free(s);
		return;
	}
	bufferevent_setcb(s->bev, session_on_read, session_on_write,
	    session_on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH_WATER);
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    s->cfg->limits.command_timeout, 0 }, &(struct timeval){
	    s->cfg->limits.command_timeout, 0 });
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	tx_reset(s);
	s->state = SESSION_GREETED;
	s->helo[0] = '\0';
	s->hs.helo = NULL;
	s->esmtp = false;
	s->auth_user[0] = '\0';
	s->hs.user = NULL;
	s->auth_step = AUTH_NONE;
}

static const struct {
	enum smtp_verb verb;
	void (*fn)(struct smtp_session *, struct smtp_cmd *);
} commands[] = {
	{ SMTP_VERB_EHLO, cmd_helo },
	{ SMTP_VERB_HELO, cmd_helo },
	{ SMTP_VERB_LHLO, cmd_helo },
	{ SMTP_VERB_MAIL, cmd_mail },
	{ SMTP_VERB_RCPT, cmd_rcpt },
	{ SMTP_VERB_DATA, cmd_data },
	{ SMTP_VERB_RSET, cmd_rset },
	{ SMTP_VERB_NOOP, cmd_noop },
	{ SMTP_VERB_QUIT, cmd_quit },
	{ SMTP_VERB_VRFY, cmd_vrfy },
	{ SMTP_VERB_EXPN, cmd_expn },
	{ SMTP_VERB_HELP, cmd_help },
	{ SMTP_VERB_STARTTLS, cmd_starttls },
	{ SMTP_VERB_AUTH, cmd_auth },
	{ SMTP_VERB_BDAT, cmd_bdat },
};

static void
session_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	enum smtp_parse_status st;

	st = smtp_parse_command(line, len, &cmd);
	if (st != SMTP_PARSE_OK) {
		reply_r(s, smtp_reply_for_parse(st));
		if (cmd.verb == SMTP_VERB_RCPT && s->tx)
			s->tx_rejected++;
		return;
	}
	for (size_t i = 0; i < TERN_ARRAY_LEN(commands); i++)
		if (commands[i].verb == cmd.verb) {
			commands[i].fn(s, &cmd);
			return;
		}
	reply(s, 500, "5.5.1", "Command unrecognized");
}

/* MAIL and RCPT lines may be longer (DSN's ENVID and ORCPT, RFC 3461 5),
 * outside a SASL exchange */
static bool
long_line_allowed(struct evbuffer *in)
{
	unsigned char *h = evbuffer_pullup(in, 5);

	return h && (ascii_strncaseeq((const char *)h, "MAIL ", 5) ||
	    ascii_strncaseeq((const char *)h, "RCPT ", 5));
}

/*
 * Takes one command line off the input. Returns 1 if a line was handled,
 * 0 if more input is needed.
 */
static int
session_read_line(struct smtp_session *s, struct evbuffer *in)
{
	char line[SMTP_MAILRCPT_LINE_MAX + 1];
	struct evbuffer_ptr p;
	size_t len;

	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) >= SMTP_MAILRCPT_LINE_MAX) {
			/* No end in sight: refuse once, skip to the LF. A
			 * SASL exchange in progress ends with it. */
			s->auth_step = AUTH_NONE;
			if (!s->discard_line)
				reply(s, 500, "5.5.2", "Line too long");
			s->discard_line = true;
			evbuffer_drain(in, evbuffer_get_length(in));
		}
		return 0;
	}
	len = (size_t)p.pos + 1;
	if (s->discard_line) {
		s->discard_line = false;
		evbuffer_drain(in, len);
		return 1;
	}
	if (len > SMTP_MAILRCPT_LINE_MAX || (len > SMTP_CMD_LINE_MAX &&
	    !long_line_allowed(in))) {
		evbuffer_drain(in, len);
		s->auth_step = AUTH_NONE;
		reply(s, 500, "5.5.2", "Line too long");
		return 1;
	}
	evbuffer_remove(in, line, len);
	if (len < 2 || line[len - 2] != '\r') {
		s->auth_step = AUTH_NONE;
		reply(s, 500, "5.5.2", "Syntax error: lines must end in CRLF");
		return 1;
	}
	if (s->auth_step != AUTH_NONE) {
		auth_line(s, line, len - 2);
		return 1;
	}
	session_command(s, line, len - 2);
	return 1;
}

/* Feeds DATA bytes; 1 if the end of data was reached, 0 if more needed. */
static int
session_read_data(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	bool done = false;

	while (evbuffer_get_length(in) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used = smtp_data_feed(&s->data, v.iov_base, v.iov_len,
		    &done);
		evbuffer_drain(in, used);
		if (done) {
			data_end(s);
			return 1;
		}
		if (spill_check(s))
			return 0;
	}
	return 0;
}

static void
session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (!s->closing && s->commit == NULL && s->verify == NULL &&
	    s->arc == NULL && !s->spill_wait && !s->spill_end &&
	    !s->spill_reading &&
	    s->spf == NULL && s->spf_helo == NULL && s->dmarc == NULL &&
	    !s->starttls_now &&
	    s->auth == NULL && s->hook_call == NULL) {
		if (s->errors > s->cfg->limits.max_errors) {
			reply(s, 421, "4.7.0", "%s Error: too many errors",
			    s->cfg->hostname);
			break;
		}
		if (s->state == SESSION_DATA) {
			if (!session_read_data(s, in))
				break;
		} else if (s->state == SESSION_CHUNK) {
			if (!session_read_chunk(s, in))
				break;
		} else if (!session_read_line(s, in))
			break;
	}
	session_flush(s);
}

/*
 * Closing: with a TLS filter, the last reply sits in the underlying
 * connection's buffer after the filter's own output is empty. Wait for
 * that too, so a 221 or 421 is not cut off. True if still waiting.
 */
static void
under_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct smtp_session *s = arg;

	if (evbuffer_get_length(buf) == 0 && s->commit == NULL)
		session_free(s);
}

static bool
wait_for_under(struct smtp_session *s)
{
	struct bufferevent *u = bufferevent_get_underlying(s->bev);

	if (u == NULL || evbuffer_get_length(bufferevent_get_output(u)) == 0)
		return false;
	if (s->under_cb == NULL)
		s->under_cb = evbuffer_add_cb(bufferevent_get_output(u),
		    under_drained, s);
	return true;
}

static void
session_flush(struct smtp_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (s->out.len > 0) {
		bufferevent_write(s->bev, s->out.data, s->out.len);
		buf_reset(&s->out);
	}
	if (s->starttls_now) {
		session_starttls(s);   /* the 220 goes out before the handshake */
		return;
	}
	if (s->closing) {
		bufferevent_disable(s->bev, EV_READ);
		if (evbuffer_get_length(out) == 0 && !wait_for_under(s)) {
			session_free(s);
			return;
		}
	} else if (evbuffer_get_length(out) > OUTPUT_BACKLOG_MAX) {
		/* The client is not reading its replies: stop reading. */
		bufferevent_disable(s->bev, EV_READ);
		s->paused_out = true;
	}
}

/*
 * The handshake is done: from here on the session is encrypted. Decided
 * by what the TLS layer delivers, not by when its "connected" event
 * comes: a GnuTLS client sends its last handshake flight and EHLO in one
 * segment, and the EHLO may be read before that event; its reply must
 * already offer AUTH and no STARTTLS. Idempotent.
 */
static void
session_tls_ready(struct smtp_session *s)
{
	if (s->tls)
		return;
	s->tls = true;
	s->hs.tls = true;
	tls_describe(s->bev, s->tls_desc, sizeof(s->tls_desc));
	log_info("session %s: TLS %s client=%s", s->id, s->tls_desc, s->ip);
}

static void
session_on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	/* bytes out of a TLS layer exist only after its handshake */
	if (s->tls_wrapped)
		session_tls_ready(s);
	session_process(s);
}

static void
session_on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	/* Called once the output has drained. */
	if (s->closing) {
		if (s->commit == NULL && !wait_for_under(s))
			session_free(s);
		return;
	}
	if (s->paused_out) {
		s->paused_out = false;
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

static void
session_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* a TLS handshake (STARTTLS or implicit) completed */
		session_tls_ready(s);
		return;
	}
	if ((what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) && !s->tls &&
	    (s->tls_mode == LISTEN_TLS_IMPLICIT || s->helo[0] == '\0') &&
	    bufferevent_get_underlying(s->bev) != NULL) {
		char why[256];
		tls_error(s->bev, why, sizeof(why));
		log_info("session %s: TLS handshake failed client=%s: %s",
		    s->id, s->ip, why);
	}

	if (what & BEV_EVENT_TIMEOUT && !s->closing &&
	    (what & BEV_EVENT_READING)) {
		log_info("session %s: timeout after %s client=%s", s->id,
		    state_name(s), s->ip);
		reply(s, 421, "4.4.2", "%s Error: timeout exceeded",
		    s->cfg->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		session_flush(s);
		return;
	}
	/* EOF, error, or write timeout: nothing more can be said. */
	if (!s->closing && !s->shutdown && s->state > SESSION_READY) {
		/* the client went away in the middle of a transaction */
		if (s->state == SESSION_DATA || s->state == SESSION_CHUNK ||
		    s->state == SESSION_BDAT)
			log_info("session %s: lost connection after %s "
			    "(%llu bytes) client=%s", s->id, state_name(s),
			    (unsigned long long)s->data.size, s->ip);
		else
			log_info("session %s: lost connection after %s "
			    "client=%s", s->id, state_name(s), s->ip);
	}
	session_free(s);
}

/* The last command that moved the session on (Postfix's log words). */
static const char *
state_name(const struct smtp_session *s)
{
	switch (s->state) {
	case SESSION_GREETED:
		return "CONNECT";
	case SESSION_READY:
		return s->esmtp ? "EHLO" : "HELO";
	case SESSION_MAIL:
		return "MAIL";
	case SESSION_RCPT:
		return "RCPT";
	case SESSION_DATA:
		return "DATA";
	case SESSION_BDAT:
	case SESSION_CHUNK:
		return "BDAT";
	}
	return "?";
}

static void
session_free(struct smtp_session *s)
{
	if (s->commit) {
		queue_commit_detach(s->commit);
		s->commit = NULL;
	}
	hooks_call_cancel(s->hook_call);
	s->hook_call = NULL;
	free(s->hook_cmd);
	s->hook_cmd = NULL;
	if (s->hook_folders) {
		for (size_t i = 0; s->tx && i < s->tx->nrcpts; i++)
			free(s->hook_folders[i]);
		free(s->hook_folders);
		s->hook_folders = NULL;
	}
	dkim_verify_cancel(s->verify);
	s->verify = NULL;
	arc_verify_cancel(s->arc);
	s->arc = NULL;
	spf_check_cancel(s->spf);
	s->spf = NULL;
	spf_check_cancel(s->spf_helo);
	s->spf_helo = NULL;
	dmarc_check_cancel(s->dmarc);
	s->dmarc = NULL;
	buf_clear(&s->pending_ar);
	if (s->auth) {
		auth_check_detach(s->auth);
		s->auth = NULL;
	}
	log_info("session %s: disconnect client=%s messages=%u errors=%u",
	    s->id, s->ip, s->ntx, s->errors);
	if (s->under_cb) {
		struct bufferevent *u = bufferevent_get_underlying(s->bev);
		if (u)
			evbuffer_remove_cb_entry(bufferevent_get_output(u),
			    s->under_cb);
		s->under_cb = NULL;
	}
	tx_reset(s);
	bufferevent_free(s->bev);
	buf_clear(&s->out);
	if (s->env.on_close)
		s->env.on_close(s->env.arg, s);
	runtime_unref(s->env.rt);
	free(s);
}

struct smtp_session *
smtp_session_new(const struct smtp_session_env *env, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, enum listen_role role,
    enum listen_tls tls_mode)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	const struct config *cfg = env->rt->cfg;
	struct hook_verdict v;
	struct timeval tv;

	s->env = *env;
	s->tls_mode = tls_mode;
	runtime_ref(env->rt);
	s->cfg = cfg;
	s->hooks = env->rt->hooks;
	s->role = role;
	s->state = SESSION_GREETED;
	buf_init(&s->out);
	gettimeofday(&tv, NULL);
	(void)snprintf(s->id, sizeof(s->id), "%016llx",
	    (unsigned long long)(((uint64_t)tv.tv_sec << 24) |
	    (++session_seq & 0xffffff)));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, s->ip, sizeof(s->ip));
		s->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, s->ip, sizeof(s->ip));
		s->port = ntohs(in6->sin6_port);
	} else
		(void)str_copy(s->ip, sizeof(s->ip), "unknown");
	s->trusted = config_is_trusted(cfg, sa);

	if (tls_mode == LISTEN_TLS_IMPLICIT && env->rt->tls != NULL) {
		s->bev = tls_server_socket(env->rt->tls, env->base, fd);
		s->tls_wrapped = true;
	} else
		s->bev = bufferevent_socket_new(env->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	TERN_ASSERT(s->bev != NULL);
	bufferevent_setcb(s->bev, session_on_read, session_on_write,
	    session_on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH_WATER);
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    cfg->limits.command_timeout, 0 }, &(struct timeval){
	    cfg->limits.command_timeout, 0 });
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("session %s: connect client=%s port=%d role=%s%s", s->id,
	    s->ip, s->port, config_role_name(role),
	    s->trusted ? " trusted" : "");
	s->hs.ip = s->ip;
	s->hs.port = s->port;
	s->hs.role = config_role_name(role);
	s->hs.tls = false;
	s->hs.helo = NULL;
	s->hs.user = NULL;
	struct hook_io io = session_io(s);
	s->hook_call = hooks_connect_start(s->hooks, &io, &s->hs, on_hook, s,
	    &v);
	if (hook_pending(s, HOOK_CONNECT, NULL))
		return s;             /* the greeting waits for the plugin */
	connect_finish(s, &v);
	bufferevent_write(s->bev, s->out.data, s->out.len);
	buf_reset(&s->out);
	return s;
}

/* The greeting, or the refusal the connect hook chose. */
static void
connect_finish(struct smtp_session *s, const struct hook_verdict *v)
{
	if (v->kind == HOOK_REJECT || v->kind == HOOK_TEMPFAIL) {
		log_info("session %s: connection refused by plugin: %d %s %s",
		    s->id, v->code, v->enh, v->text);
		/* RFC 5321 3.1: 554 (or 421) instead of the greeting. */
		reply(s, v->kind == HOOK_REJECT ? 554 : 421, v->enh, "%s %s",
		    s->cfg->hostname, v->text);
		s->closing = true;
		bufferevent_disable(s->bev, EV_READ);
	} else
		reply(s, 220, NULL, "%s %s Tern", s->cfg->hostname,
		    s->role == ROLE_LMTP ? "LMTP" : "ESMTP");
}

/* A waiting plugin is done: its command is answered, input goes on. */
static void
on_hook(void *arg, const struct hook_verdict *v)
{
	struct smtp_session *s = arg;
	struct smtp_cmd *cmd = s->hook_cmd;

	s->hook_call = NULL;
	s->hook_cmd = NULL;
	switch (s->hook_wait) {
	case HOOK_CONNECT:
		connect_finish(s, v);
		break;
	case HOOK_HELO:
		helo_finish(s, cmd, v);
		break;
	case HOOK_MAIL:
		mail_finish(s, cmd, v);
		break;
	case HOOK_RCPT:
		rcpt_finish(s, cmd, v);
		break;
	case HOOK_DATA:
		data_hook_finish(s, v);
		break;
	default:
		TERN_ASSERT(!"a hook the session does not wait for");
	}
	free(cmd);
	if (s->shutdown && !s->closing && s->commit == NULL &&
	    s->hook_call == NULL && !s->spill_reading)
		reply(s, 421, "4.3.2", "%s Service shutting down",
		    s->cfg->hostname);
	session_process(s);
}

void
smtp_session_shutdown(struct smtp_session *s)
{
	s->shutdown = true;
	if (s->commit || s->verify || s->arc || s->spf || s->spf_helo ||
	    s->dmarc || s->hook_call || s->spill_end || s->spill_reading)
		return; /* on_commit (on_hook) answers, then 421 */
	reply(s, 421, "4.3.2", "%s Service shutting down",
	    s->cfg->hostname);
	session_flush(s);
}
