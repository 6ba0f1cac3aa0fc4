/* SPDX-License-Identifier: ISC */
/*
 * tlsrpt_send.c - layer 3 (tlsrpt_send.h). A flush takes the book and
 * starts a new one; for each domain in the old one it makes the JSON
 * report at once, looks up _smtp._tls.DOMAIN, and for each mailto
 * address there queues a message from postmaster@ our host name with the
 * null envelope sender (a report gets no report back), DKIM-signed when
 * our domain has a key; to each https address it POSTs the gzipped
 * report (RFC 8460 5.2, application/tlsrpt+gzip, certificate verified).
 * A domain without such a record gets nothing.
 *
 * The book survives a restart: each entry counted is written again, as
 * one line (tlsrpt_entry_save), to the store under its index, and "book"
 * says when the period began and how many entries there are; a flush
 * empties the store. At start the book is read back and written again
 * whole (so its indexes are the store's keys again); a period whose UTC
 * day ended while ternd was down is reported at once.
 */
#include "queue/tlsrpt_send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/dns.h"
#include "base/httpc.h"
#include "base/log.h"
#include "base/util.h"
#include "lua/config.h"
#include "mail/dkim_sign.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/tlsrpt.h"
#include "queue/queue.h"
#include "runtime.h"

struct tlsrpt_sender {
	struct event_base *base;
	struct dns *dns;
	struct queue *queue;
	struct runtime **rt;
	struct tlsrpt_book *book;
	time_t start;
	struct event *daily;
	struct pending *pending;      /* lookups under way */
	struct post *posts;           /* https uploads under way */
	const struct httpc_tls *tls;
	struct tlsrpt_store store;
	bool stored;                  /* store given */
	size_t nsaved;                /* entry keys in the store */
};

struct post {
	struct post *next;
	struct tlsrpt_sender *s;
	struct httpc *h;
	char *url;
	struct buf gz;
};

/* One domain's report waiting for its _smtp._tls record. */
struct pending {
	struct pending *next;
	struct tlsrpt_sender *s;
	struct dns_query *q;
	char *domain, *json, *report_id;
	time_t start, end;
};

static void arm_daily(struct tlsrpt_sender *s);

static void
save_index(struct tlsrpt_sender *s)
{
	char v[64];

	(void)snprintf(v, sizeof(v), "%lld %zu", (long long)s->start,
	    s->nsaved);
	s->store.set(s->store.arg, "book", v);
}

static void
save_entry(struct tlsrpt_sender *s, size_t i)
{
	char key[24];
	char *line = tlsrpt_entry_save(s->book, i);

	if (line == NULL)
		return;
	(void)snprintf(key, sizeof(key), "%zu", i);
	s->store.set(s->store.arg, key, line);
	free(line);
	if (i >= s->nsaved) {
		s->nsaved = i + 1;
		save_index(s);
	}
}

/* Empties the store: a new period starts at s->start. */
static void
forget_saved(struct tlsrpt_sender *s)
{
	char key[24];

	for (size_t i = 0; i < s->nsaved; i++) {
		(void)snprintf(key, sizeof(key), "%zu", i);
		s->store.del(s->store.arg, key);
	}
	s->nsaved = 0;
	save_index(s);
}

/* The book of the last run, if the store has one. */
static void
take_up(struct tlsrpt_sender *s)
{
	const char *v = s->store.get(s->store.arg, "book");
	long long start;
	size_t n, bad = 0;
	char key[24];

	if (v == NULL || sscanf(v, "%lld %zu", &start, &n) != 2 ||
	    n > 100000) {
		save_index(s);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(key, sizeof(key), "%zu", i);
		const char *line = s->store.get(s->store.arg, key);
		if (line == NULL || tlsrpt_entry_restore(s->book, line) != 0)
			bad++;
	}
	s->nsaved = n;
	time_t now = time(NULL);
	if (start > 0 && start <= (long long)now)
		s->start = (time_t)start;
	forget_saved(s);
	for (size_t i = 0; i < tlsrpt_book_len(s->book); i++)
		save_entry(s, i);
	if (tlsrpt_book_len(s->book) > 0 || bad > 0)
		log_info("tls-rpt: %zu policy domain(s) counted since %lld "
		    "taken up from before the restart%s",
		    tlsrpt_book_len(s->book), (long long)s->start,
		    bad ? " (some entries could not be read)" : "");
}

static int
gzip_text(const char *text, size_t len, struct buf *out)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t cap = deflateBound(&z, (uLong)len) + 32;
	buf_reserve(out, cap);
	z.next_in = (Bytef *)(uintptr_t)text;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	out->len = cap - z.avail_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

static void
on_committed(void *arg, const char *id, const struct tern_err *err)
{
	char *to = arg;

	if (err)
		log_warnx("tls-rpt: cannot queue the report to %s: %s", to,
		    err->text);
	else
		log_info("%s: tls-rpt: report queued for %s", id, to);
	free(to);
}

static void
queue_report(struct pending *p, const char *to)
{
	struct runtime *rt = *p->s->rt;
	const struct config *cfg = rt->cfg;
	struct buf gz, *body = xcalloc(1, sizeof(*body));
	char from[400], msgid[400];

	buf_init(&gz);
	buf_init(body);
	if (gzip_text(p->json, strlen(p->json), &gz) != 0) {
		log_warnx("tls-rpt: %s: cannot compress the report", p->domain);
		buf_clear(&gz);
		free(body);
		return;
	}
	(void)snprintf(from, sizeof(from), "postmaster@%s", cfg->hostname);
	(void)snprintf(msgid, sizeof(msgid), "%s@%s", p->report_id,
	    cfg->hostname);
	struct tlsrpt_message m = {
		.from = from, .to = to, .domain = p->domain,
		.submitter = cfg->hostname, .report_id = p->report_id,
		.message_id = msgid, .start = p->start, .end = p->end,
		.date = time(NULL), .gz = (const unsigned char *)gz.data,
		.gz_len = gz.len,
	};
	tlsrpt_message_build(body, &m);
	buf_clear(&gz);
	char why[200];
	if (dkim_signer_sign(rt->dkim, body, 0, (int64_t)time(NULL), why,
	    sizeof(why)) < 0)
		log_warnx("tls-rpt: the report goes unsigned: %s", why);
	struct envelope *env = xcalloc(1, sizeof(*env));
	envelope_init(env);
	queue_new_id(p->s->queue, env->id);
	env->created = (int64_t)time(NULL);
	env->client = xstrdup("127.0.0.1");
	env->helo = xstrdup(cfg->hostname);
	env->protocol = xstrdup("local");
	env->sender = xstrdup("<>");
	env->body = xstrdup("7BIT");
	char *path = xasprintf("<%s>", to);
	size_t ri = envelope_add_rcpt(env, path);
	free(path);
	env->rcpts[ri].notify = DSN_NOTIFY_NEVER;
	log_info("tls-rpt: report %s for %s to %s", p->report_id, p->domain,
	    to);
	(void)queue_commit(p->s->queue, env, body, on_committed,
	    xstrdup(to));
}

static void
post_free(struct post *o)
{
	struct post **pp = &o->s->posts;

	while (*pp && *pp != o)
		pp = &(*pp)->next;
	if (*pp)
		*pp = o->next;
	free(o->url);
	buf_clear(&o->gz);
	free(o);
}

static void
on_posted(void *arg, const struct httpc_response *r)
{
	struct post *o = arg;

	o->h = NULL;
	if (r->status >= 200 && r->status < 300)
		log_info("tls-rpt: report posted to %s (HTTP %d)", o->url,
		    r->status);
	else if (r->status)
		log_warnx("tls-rpt: report to %s not taken: HTTP %d", o->url,
		    r->status);
	else
		log_warnx("tls-rpt: report to %s not sent: %s", o->url,
		    r->error ? r->error : "no response");
	post_free(o);
}

/* RFC 8460 5.2: POST the gzipped report to an https: address. */
static void
post_report(struct pending *p, const char *url)
{
	char host[300], path[400];
	unsigned port;
	bool https;

	if (p->s->tls == NULL || httpc_parse_url(url, host, sizeof(host),
	    &port, path, sizeof(path), &https) != 0 || !https) {
		log_info("tls-rpt: %s: %s is not an https address we can use",
		    p->domain, url);
		return;
	}
	struct post *o = xcalloc(1, sizeof(*o));
	o->s = p->s;
	o->url = xstrdup(url);
	buf_init(&o->gz);
	if (gzip_text(p->json, strlen(p->json), &o->gz) != 0) {
		post_free(o);
		return;
	}
	static const struct httpc_header hdr[] = {
		{ "Content-Type", "application/tlsrpt+gzip" },
	};
	struct httpc_request rq = {
		.method = "POST", .host = host, .port = port, .path = path,
		.headers = hdr, .nheaders = 1, .body = o->gz.data,
		.body_len = o->gz.len, .timeout_sec = 60, .max_body = 65536,
		.tls = p->s->tls,
	};
	o->next = p->s->posts;
	p->s->posts = o;
	log_info("tls-rpt: report %s for %s to %s", p->report_id, p->domain,
	    url);
	o->h = httpc_start(p->s->base, p->s->dns, &rq, on_posted, o);
}

static void
pending_free(struct pending *p)
{
	struct pending **pp = &p->s->pending;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	free(p->domain);
	free(p->json);
	free(p->report_id);
	free(p);
}

static void
on_record(void *arg, enum dns_status st, char *const *txts, size_t n)
{
	struct pending *p = arg;
	char rua[TLSRPT_RUA_MAX][TLSRPT_ADDR_MAX + 1];
	size_t nrua = 0;

	p->q = NULL;
	if (st != DNS_OK || tlsrpt_txt_choose(txts, n, rua, &nrua) != 0 ||
	    nrua == 0)
		log_info("tls-rpt: %s has no usable _smtp._tls record (%s): "
		    "no report", p->domain, st == DNS_TEMP ? "lookup failed" :
		    "none");
	for (size_t i = 0; i < nrua; i++)
		if (strncmp(rua[i], "https://", 8) == 0)
			post_report(p, rua[i]);
		else
			queue_report(p, rua[i]);
	pending_free(p);
}

size_t
tlsrpt_sender_flush(struct tlsrpt_sender *s)
{
	struct tlsrpt_book *b = s->book;
	const struct config *cfg = (*s->rt)->cfg;
	time_t now = time(NULL), start = s->start;
	size_t n = tlsrpt_book_len(b);
	char contact[400];

	(void)snprintf(contact, sizeof(contact), "postmaster@%s",
	    cfg->hostname);
	s->book = tlsrpt_book_new(0);
	s->start = now;
	if (s->stored)
		forget_saved(s);
	for (size_t i = 0; i < n; i++) {
		const char *domain = tlsrpt_book_domain(b, i);
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(tlsrpt_book_domain(b, k), domain) == 0;
		if (seen)
			continue;      /* its report has both policy types */
		struct pending *p = xcalloc(1, sizeof(*p));
		char id[ENVELOPE_ID_LEN + 1];
		queue_new_id(s->queue, id);
		p->s = s;
		p->domain = xstrdup(domain);
		p->report_id = xasprintf("%s.%s", id, domain);
		p->start = start;
		p->end = now;
		p->json = tlsrpt_report_json(b, i, cfg->hostname, contact,
		    p->report_id, p->start, p->end);
		p->next = s->pending;
		s->pending = p;
		char name[300];
		(void)snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
		p->q = dns_txt(s->dns, name, on_record, p);
	}
	tlsrpt_book_free(b);
	return n;
}

void
tlsrpt_sender_count(void *arg, const struct tlsrpt_session *ss)
{
	struct tlsrpt_sender *s = arg;
	size_t i;

	if (!tlsrpt_count_at(s->book, ss, &i))
		log_info("tls-rpt: the book is full; %s not counted",
		    ss->domain);
	else if (s->stored)
		save_entry(s, i);
}

static void
on_daily(evutil_socket_t fd, short what, void *arg)
{
	struct tlsrpt_sender *s = arg;

	(void)fd;
	(void)what;
	if (tlsrpt_book_len(s->book) > 0)
		(void)tlsrpt_sender_flush(s);
	else {
		s->start = time(NULL);
		if (s->stored)
			save_index(s);
	}
	arm_daily(s);
}

/* The next 00:00 UTC (RFC 8460 4.1: a day's report, UTC days). */
static void
arm_daily(struct tlsrpt_sender *s)
{
	time_t now = time(NULL);
	struct timeval tv = { 86400 - (now % 86400) + 60, 0 };

	evtimer_add(s->daily, &tv);
}

struct tlsrpt_sender *
tlsrpt_sender_new(struct event_base *base, struct dns *dns, struct queue *q,
    struct runtime **rt, const struct httpc_tls *tls,
    const struct tlsrpt_store *store)
{
	struct tlsrpt_sender *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->dns = dns;
	s->queue = q;
	s->rt = rt;
	s->tls = tls;
	s->book = tlsrpt_book_new(0);
	s->start = time(NULL);
	s->daily = evtimer_new(base, on_daily, s);
	if (store) {
		s->store = *store;
		s->stored = true;
		take_up(s);
	}
	time_t now = time(NULL);
	if (tlsrpt_book_len(s->book) > 0 && s->start / 86400 < now / 86400) {
		/* its day ended while we were down: report it now */
		struct timeval soon = { 1, 0 };
		evtimer_add(s->daily, &soon);
	} else
		arm_daily(s);
	return s;
}

void
tlsrpt_sender_free(struct tlsrpt_sender *s)
{
	if (s == NULL)
		return;
	while (s->pending) {
		if (s->pending->q)
			dns_cancel(s->pending->q);
		pending_free(s->pending);
	}
	while (s->posts) {
		if (s->posts->h)
			httpc_cancel(s->posts->h);
		post_free(s->posts);
	}
	event_free(s->daily);
	tlsrpt_book_free(s->book);
	free(s);
}
