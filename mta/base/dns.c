/* SPDX-License-Identifier: ISC */
/*
 * dns.c - layer 2: libunbound on libevent. Why libunbound: a full,
 * well-kept resolver with an asynchronous API, DNSSEC for DANE later, and
 * a forwarder setting that lets tests point it at a DNS server on
 * loopback. Its background work runs in a thread (ub_ctx_async); results
 * are collected when its fd becomes readable (ub_process), on the loop.
 *
 * An address lookup asks AAAA and A in parallel and answers once both
 * are back. An MX lookup with no MX records falls back to the domain
 * itself (RFC 5321 5.1: the implicit MX), checked by the address lookup
 * that follows; NXDOMAIN is permanent, SERVFAIL and timeouts temporary.
 *
 * With a trust anchor libunbound validates every answer itself (DNSSEC,
 * RFC 4035), so DANE never depends on a resolver's AD bit: a bogus
 * answer is a temporary failure, and the *_sec lookups say which answers
 * were proven. Where the administrator trusts the resolver instead
 * (dnssec = "resolver"), libunbound validates nothing and the *_sec
 * lookups are asked by a stub of our own (base/dnsstub.c), which reads
 * the AD bit that libunbound does not pass on; a SERVFAIL, which is how a
 * validating resolver answers a bogus record, is a temporary failure.
 *
 * Each answer, from either, becomes a struct rrset, which is all the
 * lookups read.
 */
#include "base/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <event2/event.h>
#include <unbound.h>

#include "base/dnsmsg.h"
#include "base/dnsstub.h"
#include "base/log.h"
#include "base/util.h"
#include "smtp/mx.h"
#include "smtp/tlsa.h"

#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

struct dns {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *ev;
	unsigned timeout;
	bool validating;
	bool trust_ad;           /* the *_sec lookups through the stub */
	struct sockaddr_storage server;
	socklen_t slen;
};

struct dns_query {
	struct dns *d;
	bool is_mx, is_txt, mx_only;
	int rtype;               /* is_txt: the type asked (dns_records) */
	bool secure[2];          /* each answer was proven (DNSSEC) */
	bool cancelled;
	int pending;             /* outstanding libunbound queries */
	int ids[2];
	struct dnsstub_query *sq[2];  /* trust_ad: the stub's queries */
	char *name;
	char *canon;             /* addresses: the CNAME-expanded name */
	dns_mx_cb mx_cb;
	dns_addr_cb addr_cb;
	dns_txt_cb txt_cb;
	dns_mx_sec_cb mx_sec_cb;     /* the *_sec forms, instead */
	dns_addr_sec_cb addr_sec_cb;
	dns_tlsa_cb tlsa_cb;
	dns_check_cb check_cb;
	void *arg;
	/* address results */
	struct sockaddr_storage addrs[32];
	size_t naddrs;
	enum dns_status st[2];
	struct event *timer;     /* the query's deadline */
};

static void
dns_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	if (ub_process(d->ctx) != 0)
		log_warnx("dns: ub_process failed");
}

struct dns *
dns_new(struct event_base *base, const char *resolver, unsigned timeout_sec,
    const char *trust_anchor, bool trust_ad, char *err, size_t errsz)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	int rc;

	d->base = base;
	d->timeout = timeout_sec ? timeout_sec : 20;
	if (trust_ad) {
		if (resolver == NULL || dnsstub_server(resolver, &d->server,
		    &d->slen) != 0) {
			(void)snprintf(err, errsz, "dns: dnssec = \"resolver\" "
			    "needs a resolver given by its address (resolver = "
			    "\"127.0.0.1\"), %s", resolver ? "not a name" :
			    "not /etc/resolv.conf");
			free(d);
			return NULL;
		}
		d->trust_ad = d->validating = true;
		trust_anchor = NULL;     /* the resolver validates */
	}
	d->ctx = ub_ctx_create();
	if (d->ctx == NULL) {
		(void)snprintf(err, errsz, "dns: cannot create the resolver");
		free(d);
		return NULL;
	}
	(void)ub_ctx_async(d->ctx, 1);
	if (resolver == NULL)
		rc = ub_ctx_resolvconf(d->ctx, NULL);
	else {
		/* "addr:port" / "[v6]:port" -> unbound's "addr@port" */
		char fwd[128];
		const char *colon = strrchr(resolver, ':');
		if (resolver[0] == '[') {
			const char *close = strchr(resolver, ']');
			if (close && close[1] == ':')
				(void)snprintf(fwd, sizeof(fwd), "%.*s@%s",
				    (int)(close - resolver - 1), resolver + 1,
				    close + 2);
			else
				(void)snprintf(fwd, sizeof(fwd), "%.*s",
				    close ? (int)(close - resolver - 1) : 0,
				    resolver + 1);
		} else if (colon && strchr(resolver, ':') == colon)
			(void)snprintf(fwd, sizeof(fwd), "%.*s@%s",
			    (int)(colon - resolver), resolver, colon + 1);
		else
			(void)snprintf(fwd, sizeof(fwd), "%s", resolver);
		rc = ub_ctx_set_fwd(d->ctx, fwd);
		/*
		 * libunbound answers RFC 6761 special-use names ("test.") and
		 * the reverse zones of private and documentation addresses
		 * (RFC 1918, RFC 6303: 192.168.x.x's PTR) itself with
		 * NXDOMAIN; a resolver the administrator named (a site's own
		 * DNS with its internal PTRs, a lab, a test network) answers
		 * them instead. localhost stays libunbound's.
		 */
		static const char *const zones[] = { "test.", "invalid.",
			"10.in-addr.arpa.", "16.172.in-addr.arpa.",
			"17.172.in-addr.arpa.", "18.172.in-addr.arpa.",
			"19.172.in-addr.arpa.", "20.172.in-addr.arpa.",
			"21.172.in-addr.arpa.", "22.172.in-addr.arpa.",
			"23.172.in-addr.arpa.", "24.172.in-addr.arpa.",
			"25.172.in-addr.arpa.", "26.172.in-addr.arpa.",
			"27.172.in-addr.arpa.", "28.172.in-addr.arpa.",
			"29.172.in-addr.arpa.", "30.172.in-addr.arpa.",
			"31.172.in-addr.arpa.", "168.192.in-addr.arpa.",
			"254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.",
			"100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
			"d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.",
			"a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.",
			"8.b.d.0.1.0.0.2.ip6.arpa.", NULL };
		for (size_t i = 0; rc == 0 && zones[i]; i++) {
			char z[64];
			(void)snprintf(z, sizeof(z), "%s transparent", zones[i]);
			rc = ub_ctx_set_option(d->ctx, "local-zone:", z);
		}
	}
	if (rc != 0) {
		(void)snprintf(err, errsz, "dns: resolver %s: %s",
		    resolver ? resolver : "/etc/resolv.conf", ub_strerror(rc));
		dns_free(d);
		return NULL;
	}
	if (trust_anchor != NULL) {
		rc = ub_ctx_add_ta_file(d->ctx, trust_anchor);
		if (rc != 0) {
			(void)snprintf(err, errsz, "dns: trust anchor %s: %s",
			    trust_anchor, ub_strerror(rc));
			dns_free(d);
			return NULL;
		}
		d->validating = true;
	}
	d->ev = event_new(base, ub_fd(d->ctx), EV_READ | EV_PERSIST,
	    dns_on_read, d);
	event_add(d->ev, NULL);
	return d;
}

bool
dns_validating(const struct dns *d)
{
	return d->validating;
}

bool
dns_trusts_resolver(const struct dns *d)
{
	return d->trust_ad;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	if (d->ev)
		event_free(d->ev);
	ub_ctx_delete(d->ctx);
	free(d);
}

/* Answers "temporary failure" unless the query was cancelled. */
static void
answer_temp_now(struct dns_query *q)
{
	if (q->cancelled)
		return;
	if (q->mx_sec_cb)
		q->mx_sec_cb(q->arg, DNS_TEMP, false, NULL, 0);
	else if (q->addr_sec_cb)
		q->addr_sec_cb(q->arg, DNS_TEMP, false, NULL, NULL, 0);
	else if (q->tlsa_cb)
		q->tlsa_cb(q->arg, DNS_TEMP, false, NULL, 0);
	else if (q->check_cb)
		q->check_cb(q->arg, DNS_TEMP, false);
	else if (q->is_mx)
		q->mx_cb(q->arg, DNS_TEMP, NULL, 0);
	else if (q->is_txt)
		q->txt_cb(q->arg, DNS_TEMP, NULL, 0);
	else
		q->addr_cb(q->arg, DNS_TEMP, NULL, 0);
}

static void
query_free(struct dns_query *q)
{
	if (q->timer)
		event_free(q->timer);
	free(q->name);
	free(q->canon);
	free(q);
}

/*
 * The deadline: libunbound retries an unreachable server for minutes;
 * delivery should rather be retried later. Cancel what is out, answer
 * DNS_TEMP now.
 */
static void
query_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	for (int i = 0; i < 2; i++) {
		if (q->ids[i] >= 0)
			(void)ub_cancel(q->d->ctx, q->ids[i]);
		if (q->sq[i] != NULL)
			dnsstub_cancel(q->sq[i]);
		q->sq[i] = NULL;
	}
	q->pending = 0;
	if (!q->cancelled)
		log_info("dns: %s: no answer within %us", q->name,
		    q->d->timeout);
	answer_temp_now(q);
	query_free(q);
}

static void
query_arm(struct dns_query *q)
{
	struct timeval tv = { (time_t)q->d->timeout, 0 };

	q->timer = evtimer_new(q->d->base, query_timeout, q);
	evtimer_add(q->timer, &tv);
}

static enum dns_status
status_of(const struct ub_result *r, int err)
{
	if (err == 0 && r != NULL && r->bogus) {
		/* validation failed: maybe an attack, maybe a broken zone */
		log_warnx("dns: %s (type %d) fails DNSSEC validation: %s",
		    r->qname ? r->qname : "?", r->qtype,
		    r->why_bogus ? r->why_bogus : "bogus");
		return DNS_TEMP;
	}
	if (err != 0 || r == NULL || r->rcode == RCODE_SERVFAIL)
		return DNS_TEMP;
	if (r->nxdomain || r->rcode == RCODE_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (r->rcode != 0)
		return DNS_TEMP;
	return r->havedata ? DNS_OK : DNS_NODATA;
}

/* A libunbound answer to a one-query lookup: false if the lookup was
 * cancelled meanwhile (then it is freed here). */
static bool
answer_wanted(struct dns_query *q, struct ub_result *r)
{
	q->pending--;
	q->ids[0] = -1;
	if (!q->cancelled)
		return true;
	ub_resolve_free(r);
	query_free(q);
	return false;
}

/* One answer, from libunbound or from the stub: what the lookups read. */
struct rrset {
	enum dns_status st;
	bool secure;             /* proven by DNSSEC (or the AD bit said so) */
	const char *canon;       /* the CNAME chain's end, or NULL */
	size_t n;
	const unsigned char **data;
	size_t *len;
};

static void
rrset_alloc(struct rrset *s, size_t n)
{
	s->n = n;
	s->data = xcalloc(n + 1, sizeof(*s->data));
	s->len = xcalloc(n + 1, sizeof(*s->len));
}

static void
rrset_from_ub(struct rrset *s, const struct ub_result *r, int err)
{
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	s->st = status_of(r, err);
	s->secure = err == 0 && r != NULL && r->secure;
	if (s->st != DNS_OK)
		return;
	s->canon = r->canonname;
	while (r->data[n])
		n++;
	rrset_alloc(s, n);
	for (size_t i = 0; i < n; i++) {
		s->data[i] = (const unsigned char *)r->data[i];
		s->len[i] = (size_t)r->len[i];
	}
}

static void
rrset_from_stub(struct rrset *s, const struct dns_query *q, int type,
    const struct dnsmsg_answer *a)
{
	memset(s, 0, sizeof(*s));
	if (a == NULL) {
		s->st = DNS_TEMP;
		return;
	}
	s->secure = a->ad;
	if (a->rcode == 0)
		s->st = a->n + a->malformed > 0 ? DNS_OK : DNS_NODATA;
	else if (a->rcode == RCODE_NXDOMAIN)
		s->st = DNS_NXDOMAIN;
	else {
		/* a validating resolver's answer to a bogus record */
		if (a->rcode == RCODE_SERVFAIL)
			log_warnx("dns: %s (type %d): the resolver answered "
			    "SERVFAIL (DNSSEC validation failed there, or the "
			    "zone's servers did)", q->name, type);
		s->st = DNS_TEMP;
	}
	if (s->st != DNS_OK)
		return;
	s->canon = a->canon[0] ? a->canon : NULL;
	rrset_alloc(s, a->n);
	for (size_t i = 0; i < a->n; i++) {
		s->data[i] = a->rr[i].rdata;
		s->len[i] = a->rr[i].len;
	}
}

static void
rrset_free(struct rrset *s)
{
	free(s->data);
	free(s->len);
}

static void
mx_answer(struct dns_query *q, const struct rrset *s)
{
	enum dns_status st = s->st;
	struct mx_entry *e = NULL;
	char **hosts = NULL;
	size_t n = 0;

	if (st == DNS_OK) {
		e = xcalloc(s->n ? s->n : 1, sizeof(*e));
		for (size_t i = 0; i < s->n; i++) {
			if ((q->mx_only ? mx_parse_rdata_any :
			    mx_parse_rdata)(s->data[i], s->len[i], &e[n]) != 0)
				continue;
			if (getrandom(&e[n].shuffle, sizeof(e[n].shuffle), 0) !=
			    sizeof(e[n].shuffle))
				e[n].shuffle = (uint32_t)rand();
			n++;
		}
		if (mx_is_null(e, n))
			st = DNS_NULL_MX;
		else if (n == 0)
			st = DNS_TEMP; /* records we could not read */
		else {
			mx_sort(e, n);
			hosts = xcalloc(n, sizeof(char *));
			for (size_t i = 0; i < n; i++)
				hosts[i] = e[i].host;
		}
	}
	if (st == DNS_NODATA && !q->mx_only) {
		/* no MX: the domain itself is the implicit MX */
		hosts = xcalloc(1, sizeof(char *));
		hosts[0] = q->name;
		n = 1;
		st = DNS_OK;
	}
	if (q->mx_sec_cb)
		q->mx_sec_cb(q->arg, st, s->secure, hosts, st == DNS_OK ? n : 0);
	else
		q->mx_cb(q->arg, st, hosts, st == DNS_OK ? n : 0);
	free(hosts);
	free(e);
}

static void
mx_done(void *arg, int err, struct ub_result *r)
{
	struct dns_query *q = arg;
	struct rrset s;

	if (!answer_wanted(q, r))
		return;
	rrset_from_ub(&s, r, err);
	mx_answer(q, &s);
	rrset_free(&s);
	ub_resolve_free(r);
	query_free(q);
}

/* The stub's answer to a one-query lookup (it is never cancelled late:
 * dnsstub_cancel takes it back at once). */
static void
stub_wanted(struct dns_query *q)
{
	q->pending--;
	q->sq[0] = NULL;
}

static void
mx_stub_done(void *arg, const struct dnsmsg_answer *a)
{
	struct dns_query *q = arg;
	struct rrset s;

	stub_wanted(q);
	rrset_from_stub(&s, q, DNS_RR_MX, a);
	mx_answer(q, &s);
	rrset_free(&s);
	query_free(q);
}

struct dns_query *
dns_mx_records(struct dns *d, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query *q = dns_mx(d, domain, cb, arg);

	q->mx_only = true;     /* read when the answer comes, never before */
	return q;
}

/* A query that could not start: answer DNS_TEMP from the loop. */
static void
answer_temp(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	answer_temp_now(q);
	query_free(q);
}

static void
answer_later(struct dns_query *q)
{
	struct timeval now = { 0, 0 };

	if (event_base_once(q->d->base, -1, EV_TIMEOUT, answer_temp, q,
	    &now) != 0)
		TERN_ASSERT(!"event_base_once failed");
}

/* Starts q (its callback set) as one query of type for name. */
static struct dns_query *
stub_query(struct dns *d, struct dns_query *q, const char *name, int type,
    dnsstub_cb done, void *arg)
{
	q->d = d;
	q->ids[0] = q->ids[1] = -1;
	q->name = xstrdup(name);
	q->arg = arg;
	q->pending = 1;
	q->sq[0] = dnsstub_ask(d->base, &d->server, d->slen, name, type, done,
	    q);
	query_arm(q);
	return q;
}

/* The same through libunbound. */
static struct dns_query *
one_query(struct dns *d, struct dns_query *q, const char *name, int type,
    ub_callback_type done, void *arg)
{
	q->d = d;
	q->ids[0] = q->ids[1] = -1;
	q->name = xstrdup(name);
	q->arg = arg;
	q->pending = 1;
	if (ub_resolve_async(d->ctx, q->name, type, 1, q, done,
	    &q->ids[0]) != 0) {
		/* answer asynchronously anyway: never before we return */
		q->pending = 0;
		log_warnx("dns: cannot start a query (type %d) for %s", type,
		    name);
		answer_later(q);
	} else
		query_arm(q);
	return q;
}

struct dns_query *
dns_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->is_mx = true;
	q->mx_cb = cb;
	return one_query(d, q, domain, DNS_RR_MX, mx_done, arg);
}

/* Two DNS names equal, in any case, with or without the final dot. */
static bool
same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static char *
name_without_dot(const char *name)
{
	char *s = xstrdup(name);
	size_t n = strlen(s);

	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
	return s;
}

/* One of the two answers (idx 0: AAAA, 1: A) of an address lookup. */
static void
addr_answer(struct dns_query *q, int idx, const struct rrset *s)
{
	q->st[idx] = s->st;
	q->secure[idx] = s->secure;
	if (s->st == DNS_OK && q->canon == NULL && s->canon &&
	    !same_name(s->canon, q->name))
		q->canon = name_without_dot(s->canon);
	if (s->st != DNS_OK)
		return;
	for (size_t i = 0; i < s->n && q->naddrs < 32; i++) {
		struct sockaddr_storage *ss = &q->addrs[q->naddrs];
		memset(ss, 0, sizeof(*ss));
		if (idx == 0 && s->len[i] == 16) {
			struct sockaddr_in6 *s6 = (void *)ss;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, s->data[i], 16);
			q->naddrs++;
		} else if (idx == 1 && s->len[i] == 4) {
			struct sockaddr_in *s4 = (void *)ss;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, s->data[i], 4);
			q->naddrs++;
		}
	}
}

/* One answer is in: when both are, the lookup's callback. */
static void
addr_settle(struct dns_query *q)
{
	if (--q->pending > 0)
		return;
	if (q->cancelled) {
		query_free(q);
		return;
	}
	enum dns_status st;
	if (q->naddrs > 0)
		st = DNS_OK;
	else if (q->st[0] == DNS_TEMP || q->st[1] == DNS_TEMP)
		st = DNS_TEMP;
	else if (q->st[0] == DNS_NXDOMAIN || q->st[1] == DNS_NXDOMAIN)
		st = DNS_NXDOMAIN;
	else
		st = DNS_NODATA;
	if (q->addr_sec_cb)
		q->addr_sec_cb(q->arg, st, q->secure[0] && q->secure[1],
		    st == DNS_OK ? q->canon : NULL, q->addrs, q->naddrs);
	else
		q->addr_cb(q->arg, st, q->addrs, q->naddrs);
	query_free(q);
}

static void
addr_done_one(struct dns_query *q, int idx, int err, struct ub_result *r)
{
	struct rrset s;

	q->ids[idx] = -1;
	rrset_from_ub(&s, r, err);
	addr_answer(q, idx, &s);
	rrset_free(&s);
	ub_resolve_free(r);
	addr_settle(q);
}

static void
aaaa_done(void *arg, int err, struct ub_result *r)
{
	addr_done_one(arg, 0, err, r);
}

static void
a_done(void *arg, int err, struct ub_result *r)
{
	addr_done_one(arg, 1, err, r);
}

static void
addr_stub_one(struct dns_query *q, int idx, const struct dnsmsg_answer *a)
{
	struct rrset s;

	q->sq[idx] = NULL;
	rrset_from_stub(&s, q, idx == 0 ? DNS_RR_AAAA : DNS_RR_A, a);
	addr_answer(q, idx, &s);
	rrset_free(&s);
	addr_settle(q);
}

static void
aaaa_stub_done(void *arg, const struct dnsmsg_answer *a)
{
	addr_stub_one(arg, 0, a);
}

static void
a_stub_done(void *arg, const struct dnsmsg_answer *a)
{
	addr_stub_one(arg, 1, a);
}

struct dns_query *
dns_addrs(struct dns *d, const char *host, dns_addr_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->d = d;
	q->ids[0] = q->ids[1] = -1;
	q->name = xstrdup(host);
	q->addr_cb = cb;
	q->arg = arg;
	q->pending = 2;
	if (ub_resolve_async(d->ctx, q->name, DNS_RR_AAAA, 1, q, aaaa_done,
	    &q->ids[0]) != 0) {
		q->ids[0] = -1;
		q->pending--;
		q->st[0] = DNS_TEMP;
	}
	if (ub_resolve_async(d->ctx, q->name, DNS_RR_A, 1, q, a_done,
	    &q->ids[1]) != 0) {
		q->ids[1] = -1;
		q->pending--;
		q->st[1] = DNS_TEMP;
	}
	if (q->pending == 0) {
		log_warnx("dns: cannot start address queries for %s", host);
		answer_later(q);
	} else
		query_arm(q);
	return q;
}

/* One record of type q->rtype as text (dns_records); NULL if malformed. */
static char *
record_text(int type, const unsigned char *d, size_t len)
{
	char text[INET6_ADDRSTRLEN + MX_NAME_MAX + 16];
	struct mx_entry e;
	size_t used;

	switch (type) {
	case DNS_RR_TXT:
		return mx_txt_rdata(d, len);
	case DNS_RR_A:
	case DNS_RR_AAAA:
		if (len != (type == DNS_RR_A ? 4u : 16u) ||
		    inet_ntop(type == DNS_RR_A ? AF_INET : AF_INET6, d, text,
		    sizeof(text)) == NULL)
			return NULL;
		return xstrdup(text);
	case DNS_RR_MX:
		if (mx_parse_rdata(d, len, &e) != 0)
			return NULL;
		(void)snprintf(text, sizeof(text), "%u %s", e.pref,
		    e.host[0] ? e.host : ".");
		return xstrdup(text);
	case DNS_RR_PTR:
		if (mx_wire_name(d, len, text, sizeof(text), &used) != 0 ||
		    used != len)
			return NULL;
		return xstrdup(text);
	}
	return NULL;
}

static void
txt_done(void *arg, int err, struct ub_result *r)
{
	struct dns_query *q = arg;
	enum dns_status st = status_of(r, err);
	char **txts = NULL;
	size_t n = 0;

	if (!answer_wanted(q, r))
		return;
	if (st == DNS_OK) {
		size_t count = 0;
		while (r->data[count])
			count++;
		txts = xcalloc(count + 1, sizeof(char *));
		for (size_t i = 0; i < count; i++)
			if ((txts[n] = record_text(q->rtype,
			    (unsigned char *)r->data[i], (size_t)r->len[i])) !=
			    NULL)
				n++;
	}
	ub_resolve_free(r);
	q->txt_cb(q->arg, st, txts, n);
	for (size_t i = 0; i < n; i++)
		free(txts[i]);
	free(txts);
	query_free(q);
}

struct dns_query *
dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
	return dns_records(d, name, DNS_RR_TXT, cb, arg);
}

int
dns_rr_type(const char *name)
{
	static const struct {
		const char *name;
		int type;
	} types[] = { { "A", DNS_RR_A }, { "AAAA", DNS_RR_AAAA },
		{ "MX", DNS_RR_MX }, { "TXT", DNS_RR_TXT }, { "PTR", DNS_RR_PTR } };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (ascii_strcaseeq(types[i].name, name))
			return types[i].type;
	return -1;
}

struct dns_query *
dns_records(struct dns *d, const char *name, int type, dns_txt_cb cb,
    void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->is_txt = true;
	q->rtype = type;
	q->txt_cb = cb;
	return one_query(d, q, name, type, txt_done, arg);
}

void
dns_cancel(struct dns_query *q)
{
	/*
	 * What libunbound can still take back is cancelled now; an answer
	 * it has already queued finds the query marked and frees it without
	 * calling back. The stub's queries go at once. A query with nothing
	 * outstanding goes at once (one that never started is freed by its
	 * own deferred answer).
	 */
	q->cancelled = true;
	for (int i = 0; i < 2; i++) {
		if (q->ids[i] >= 0 && ub_cancel(q->d->ctx, q->ids[i]) == 0) {
			q->ids[i] = -1;
			q->pending--;
		}
		if (q->sq[i] != NULL) {
			dnsstub_cancel(q->sq[i]);
			q->sq[i] = NULL;
			q->pending--;
		}
	}
	if (q->pending == 0 && q->timer != NULL)
		query_free(q);
}

struct dns_query *
dns_mx_sec(struct dns *d, const char *domain, dns_mx_sec_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->is_mx = true;
	q->mx_sec_cb = cb;
	if (d->trust_ad)
		return stub_query(d, q, domain, DNS_RR_MX, mx_stub_done, arg);
	return one_query(d, q, domain, DNS_RR_MX, mx_done, arg);
}

struct dns_query *
dns_addrs_sec(struct dns *d, const char *host, dns_addr_sec_cb cb, void *arg)
{
	if (!d->trust_ad) {
		struct dns_query *q = dns_addrs(d, host, NULL, arg);
		q->addr_sec_cb = cb; /* read when the answers come, not before */
		return q;
	}
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->d = d;
	q->ids[0] = q->ids[1] = -1;
	q->name = xstrdup(host);
	q->addr_sec_cb = cb;
	q->arg = arg;
	q->pending = 2;
	q->sq[0] = dnsstub_ask(d->base, &d->server, d->slen, host, DNS_RR_AAAA,
	    aaaa_stub_done, q);
	q->sq[1] = dnsstub_ask(d->base, &d->server, d->slen, host, DNS_RR_A,
	    a_stub_done, q);
	query_arm(q);
	return q;
}

static void
tlsa_answer(struct dns_query *q, const struct rrset *s)
{
	struct tlsa_rr *rrs = xcalloc(s->n + 1, sizeof(*rrs));
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (tlsa_parse_rdata(s->data[i], s->len[i], &rrs[n]) == 0)
			n++;
	q->tlsa_cb(q->arg, s->st, s->secure, rrs, n);
	free(rrs);
}

static void
tlsa_done(void *arg, int err, struct ub_result *r)
{
	struct dns_query *q = arg;
	struct rrset s;

	if (!answer_wanted(q, r))
		return;
	rrset_from_ub(&s, r, err);
	tlsa_answer(q, &s);
	rrset_free(&s);
	ub_resolve_free(r);     /* after: the records pointed into it */
	query_free(q);
}

static void
tlsa_stub_done(void *arg, const struct dnsmsg_answer *a)
{
	struct dns_query *q = arg;
	struct rrset s;

	stub_wanted(q);
	rrset_from_stub(&s, q, DNS_RR_TLSA, a);
	tlsa_answer(q, &s);
	rrset_free(&s);
	query_free(q);
}

struct dns_query *
dns_tlsa(struct dns *d, const char *name, dns_tlsa_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->tlsa_cb = cb;
	if (d->trust_ad)
		return stub_query(d, q, name, DNS_RR_TLSA, tlsa_stub_done, arg);
	return one_query(d, q, name, DNS_RR_TLSA, tlsa_done, arg);
}

static void
check_done(void *arg, int err, struct ub_result *r)
{
	struct dns_query *q = arg;
	struct rrset s;

	if (!answer_wanted(q, r))
		return;
	rrset_from_ub(&s, r, err);
	q->check_cb(q->arg, s.st, s.secure);
	rrset_free(&s);
	ub_resolve_free(r);
	query_free(q);
}

static void
check_stub_done(void *arg, const struct dnsmsg_answer *a)
{
	struct dns_query *q = arg;
	struct rrset s;

	stub_wanted(q);
	rrset_from_stub(&s, q, DNS_RR_DNSKEY, a);
	q->check_cb(q->arg, s.st, s.secure);
	rrset_free(&s);
	query_free(q);
}

struct dns_query *
dns_check(struct dns *d, dns_check_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->check_cb = cb;
	if (d->trust_ad)
		return stub_query(d, q, ".", DNS_RR_DNSKEY, check_stub_done,
		    arg);
	return one_query(d, q, ".", DNS_RR_DNSKEY, check_done, arg);
}

struct event_base *
dns_base(const struct dns *d)
{
	return d->base;
}
