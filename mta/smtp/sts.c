/* SPDX-License-Identifier: ISC */
/*
 * sts.c - layer 3 (sts.h). One entry per domain: its policy if one was
 * fetched (with the record id it came under and when it expires), when
 * the TXT record was last looked at, and the lookup or fetch under way
 * with the queries waiting for it.
 *
 * RFC 8461 5.1: a valid cached policy stays in force while the record
 * cannot be found or the new policy cannot be fetched, until it expires
 * (that is what protects the second connection against an attacker who
 * strips the record); the record is looked at again at most once a
 * minute per domain, and a new id means a new fetch.
 *
 * Policies are refreshed before they expire (RFC 8461 3.3: SHOULD, "once
 * per day" suggested; a policy that lapses while the domain is in use
 * is a window for an attacker who strips the record): a timer looks at the cache, and
 * a policy fetched longer ago than `refresh` (or half its max_age, if
 * that is shorter) is fetched again in the background, its record
 * looked at first and the policy GET whatever its id, which renews its
 * max_age. Only domains mail went to within the policy's max_age are
 * refreshed, so one that is no longer written to lets its policy lapse.
 * A refresh that fails leaves the cached policy as it was and is tried
 * again at the next tick.
 */
#include "smtp/sts.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "base/dns.h"
#include "base/httpc.h"
#include "base/log.h"
#include "base/util.h"
#include "smtp/mtasts.h"

#define STS_RECHECK 60                  /* seconds between TXT lookups */
#define STS_REFRESH_BATCH 20            /* refreshes started per tick */

enum ent_state { ENT_IDLE, ENT_TXT, ENT_FETCH };

struct sts_query {
	TAILQ_ENTRY(sts_query) entry;
	struct sts_entry *e;
	sts_cb cb;
	void *arg;
};
TAILQ_HEAD(query_list, sts_query);

struct sts_entry {
	TAILQ_ENTRY(sts_entry) entry;
	struct sts *s;
	char domain[MTASTS_NAME_MAX + 1];
	bool have;                       /* pol is a fetched policy */
	struct mtasts_policy pol;
	char id[MTASTS_ID_MAX + 1];
	char new_id[MTASTS_ID_MAX + 1];  /* the id being fetched */
	time_t expires, checked;
	time_t fetched;                  /* when pol was fetched */
	time_t used;                     /* when mail last asked for it */
	bool refreshing;                 /* fetch even under the same id */
	enum ent_state st;
	struct dns_query *q;
	struct httpc *h;
	struct event *answer;            /* answers from the cache, later */
	char why[200];
	struct query_list waiting;
};
TAILQ_HEAD(entry_list, sts_entry);

struct sts {
	struct event_base *base;
	struct dns *dns;
	struct sts_settings set;
	struct entry_list entries;
	size_t nentries;
	struct event *tick;              /* the refresh timer */
};

static bool
valid(const struct sts_entry *e, time_t now)
{
	return e->have && now < e->expires;
}

/* Answers every waiting query (each may start or cancel others). */
static void
answer_all(struct sts_entry *e)
{
	struct sts_query *q;

	e->st = ENT_IDLE;
	e->refreshing = false;
	while ((q = TAILQ_FIRST(&e->waiting)) != NULL) {
		TAILQ_REMOVE(&e->waiting, q, entry);
		bool in_force = valid(e, time(NULL));
		sts_cb cb = q->cb;
		void *arg = q->arg;
		free(q);
		cb(arg, in_force ? &e->pol : NULL, in_force ? "" : e->why);
	}
}

static void
on_answer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	answer_all(arg);
}

/* A failure: the cached policy if it is still valid, else none. */
static void
fall_back(struct sts_entry *e, const char *why)
{
	if (valid(e, time(NULL)))
		log_info("mta-sts: %s: %s; the cached policy (id %s) stays in "
		    "force", e->domain, why, e->id);
	else if (strcmp(why, "no MTA-STS record") != 0)
		log_info("mta-sts: %s: %s; no policy in force", e->domain,
		    why);
	(void)str_copy(e->why, sizeof(e->why), why);
	answer_all(e);
}

/* A fetch that failed, for the domain's TLS report; then fall_back. */
static void
fetch_failed(struct sts_entry *e, const char *result_type, const char *why)
{
	if (e->s->set.fetch_failed)
		e->s->set.fetch_failed(e->s->set.report_arg, e->domain,
		    result_type);
	fall_back(e, why);
}

static const char *
header(const struct httpc_response *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (ascii_strcaseeq(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

static void
on_policy(void *arg, const struct httpc_response *r)
{
	struct sts_entry *e = arg;
	char why[200];
	struct mtasts_policy p;

	e->h = NULL;
	if (r->status == 0) {
		(void)snprintf(why, sizeof(why), "policy fetch failed: %s",
		    r->error ? r->error : "no response");
		fetch_failed(e, r->tls_failed ? "sts-webpki-invalid" :
		    "sts-policy-fetch-error", why);
		return;
	}
	if (r->status != 200) {
		/* a redirect is not followed (RFC 8461 3.3) */
		(void)snprintf(why, sizeof(why), "policy fetch: HTTP status "
		    "%d", r->status);
		fetch_failed(e, "sts-policy-fetch-error", why);
		return;
	}
	const char *ct = header(r, "Content-Type");
	size_t ctl = ct ? strcspn(ct, "; \t") : 0;
	if (ct == NULL || ctl != 10 || !ascii_strncaseeq(ct, "text/plain",
	    10)) {
		fetch_failed(e, "sts-policy-invalid",
		    "policy fetch: not text/plain");
		return;
	}
	char bad[120];
	if (mtasts_policy_parse(r->body, r->body_len, &p, bad,
	    sizeof(bad)) != 0) {
		(void)snprintf(why, sizeof(why), "policy: %s", bad);
		fetch_failed(e, "sts-policy-invalid", why);
		return;
	}
	time_t now = time(NULL);
	e->pol = p;
	e->have = true;
	(void)str_copy(e->id, sizeof(e->id), e->new_id);
	e->expires = now + (time_t)p.max_age;
	e->checked = e->fetched = now;
	log_info("mta-sts: %s: policy id %s, mode %s, %zu mx pattern(s), "
	    "max_age %lu", e->domain, e->id, mtasts_mode_name(p.mode), p.nmx,
	    p.max_age);
	char line[64 + (MTASTS_NAME_MAX + 2) * MTASTS_MX_MAX];
	if (e->s->set.save && mtasts_cache_format(&p, e->id,
	    (long long)e->expires, line, sizeof(line)) == 0)
		e->s->set.save(e->s->set.store_arg, e->domain, line,
		    (long long)e->expires);
	(void)snprintf(e->why, sizeof(e->why), "policy mode %s",
	    mtasts_mode_name(p.mode));
	answer_all(e);
}

static void
fetch(struct sts_entry *e)
{
	char host[MTASTS_NAME_MAX + 10];

	(void)snprintf(host, sizeof(host), "mta-sts.%s", e->domain);
	struct httpc_request rq = {
		.method = "GET",
		.host = host,
		.port = e->s->set.port,
		.path = "/.well-known/mta-sts.txt",
		.timeout_sec = e->s->set.timeout,
		.max_body = MTASTS_POLICY_MAX,
		.tls = e->s->set.tls,
	};
	e->st = ENT_FETCH;
	e->h = httpc_start(e->s->base, e->s->dns, &rq, on_policy, e);
}

static void
on_txt(void *arg, enum dns_status st, char *const *txts, size_t n)
{
	struct sts_entry *e = arg;
	char id[MTASTS_ID_MAX + 1];

	e->q = NULL;
	if (st == DNS_TEMP) {
		fall_back(e, "_mta-sts lookup failed (temporary)");
		return;
	}
	if (st != DNS_OK || mtasts_txt_choose(txts, n, id) != 0) {
		/* no record: a cached policy still holds (RFC 8461 5.1) */
		e->checked = time(NULL);
		fall_back(e, "no MTA-STS record");
		return;
	}
	e->checked = time(NULL);
	if (valid(e, e->checked) && strcmp(id, e->id) == 0 &&
	    !e->refreshing) {
		answer_all(e);
		return;
	}
	(void)str_copy(e->new_id, sizeof(e->new_id), id);
	fetch(e);
}

static void
entry_free(struct sts_entry *e)
{
	if (e->q)
		dns_cancel(e->q);
	if (e->h)
		httpc_cancel(e->h);
	if (e->answer)
		event_free(e->answer);
	struct sts_query *q;
	while ((q = TAILQ_FIRST(&e->waiting)) != NULL) {
		TAILQ_REMOVE(&e->waiting, q, entry);
		free(q);
	}
	TAILQ_REMOVE(&e->s->entries, e, entry);
	e->s->nentries--;
	free(e);
}

/* Room for one more: the idle entry looked at longest ago goes. */
static void
make_room(struct sts *s)
{
	struct sts_entry *e, *old = NULL;

	if (s->nentries < s->set.max_domains)
		return;
	TAILQ_FOREACH(e, &s->entries, entry)
		if (e->st == ENT_IDLE && TAILQ_EMPTY(&e->waiting) &&
		    (old == NULL || e->checked < old->checked))
			old = e;
	if (old)
		entry_free(old);
}

/* The _mta-sts record, then (on_txt) the policy if need be. */
static void
look_up(struct sts_entry *e)
{
	char name[MTASTS_NAME_MAX + 12];

	(void)snprintf(name, sizeof(name), "_mta-sts.%s", e->domain);
	e->st = ENT_TXT;
	e->q = dns_txt(e->s->dns, name, on_txt, e);
}

/* How long a policy is used before it is fetched again. */
static time_t
refresh_after(const struct sts *s, const struct sts_entry *e)
{
	time_t half = (time_t)(e->pol.max_age / 2);

	return half < (time_t)s->set.refresh ? half : (time_t)s->set.refresh;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sts *s = arg;
	struct sts_entry *e;
	time_t now = time(NULL);
	int started = 0;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(e, &s->entries, entry) {
		if (started >= STS_REFRESH_BATCH)
			break;
		if (e->st != ENT_IDLE || !valid(e, now) ||
		    now < e->fetched + refresh_after(s, e) ||
		    now >= e->used + (time_t)e->pol.max_age)
			continue;
		log_info("mta-sts: %s: refreshing the policy (id %s, fetched "
		    "%llds ago, expires in %llds)", e->domain, e->id,
		    (long long)(now - e->fetched),
		    (long long)(e->expires - now));
		e->refreshing = true;
		started++;
		look_up(e);      /* answers no one; may end at once */
	}
}

struct sts_query *
sts_get(struct sts *s, const char *domain, sts_cb cb, void *arg)
{
	struct sts_entry *e;
	struct sts_query *q = xcalloc(1, sizeof(*q));

	TAILQ_FOREACH(e, &s->entries, entry)
		if (ascii_strcaseeq(e->domain, domain))
			break;
	if (e == NULL) {
		make_room(s);
		e = xcalloc(1, sizeof(*e));
		e->s = s;
		(void)str_copy(e->domain, sizeof(e->domain), domain);
		ascii_lower(e->domain);
		TAILQ_INIT(&e->waiting);
		e->answer = evtimer_new(s->base, on_answer, e);
		TAILQ_INSERT_TAIL(&s->entries, e, entry);
		s->nentries++;
		/* a policy from before a restart: in force until it expires,
		 * its record looked at again now */
		const char *line = s->set.load ? s->set.load(s->set.store_arg,
		    e->domain) : NULL;
		long long expires;
		if (line && mtasts_cache_parse(line, &e->pol, e->id,
		    &expires) == 0) {
			e->have = true;
			e->expires = (time_t)expires;
			e->fetched = e->expires - (time_t)e->pol.max_age;
		}
	}
	e->used = time(NULL);
	q->e = e;
	q->cb = cb;
	q->arg = arg;
	TAILQ_INSERT_TAIL(&e->waiting, q, entry);
	if (e->st != ENT_IDLE)
		return q;                /* shares what is under way */
	time_t now = time(NULL);
	if (valid(e, now) && now < e->checked + STS_RECHECK) {
		struct timeval tv = { 0, 0 };
		evtimer_add(e->answer, &tv);
		return q;
	}
	look_up(e);
	return q;
}

void
sts_cancel(struct sts_query *q)
{
	TAILQ_REMOVE(&q->e->waiting, q, entry);
	free(q);
}

struct sts *
sts_new(struct event_base *base, struct dns *dns, const struct sts_settings *set)
{
	struct sts *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->dns = dns;
	s->set = *set;
	if (s->set.max_domains == 0)
		s->set.max_domains = 1000;
	if (s->set.timeout == 0)
		s->set.timeout = 60;
	if (s->set.refresh == 0)
		s->set.refresh = 86400;
	TAILQ_INIT(&s->entries);
	/* ticks often enough for the interval, at least hourly */
	unsigned every = s->set.refresh / 4;
	struct timeval tv = { every < 1 ? 1 : every > 3600 ? 3600 : every,
		0 };
	s->tick = event_new(base, -1, EV_PERSIST, on_tick, s);
	event_add(s->tick, &tv);
	return s;
}

void
sts_free(struct sts *s)
{
	struct sts_entry *e;

	if (s == NULL)
		return;
	while ((e = TAILQ_FIRST(&s->entries)) != NULL)
		entry_free(e);
	event_free(s->tick);
	free(s);
}
