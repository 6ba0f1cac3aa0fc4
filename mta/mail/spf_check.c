/* SPDX-License-Identifier: ISC */
/*
 * spf_check.c - layer 2: SPF's check_host() over asynchronous DNS
 * (spf_check.h). A stack of frames, one per record being evaluated
 * (include pushes one, redirect replaces its own); each lookup's answer
 * moves the top frame on.
 */
#include "mail/spf_check.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "base/dns.h"
#include "base/util.h"

#define DEPTH_MAX 12
#define LOOKUPS_MAX 10            /* RFC 7208 4.6.4 */
#define VOIDS_MAX 2
#define MX_NAMES_MAX 10

struct frame {
	char *domain;
	struct spf_record rec;
	bool loaded;              /* rec is its record */
	bool redirected;          /* reached by redirect= (none: permerror) */
	size_t next;              /* the term being evaluated */
};

enum wait { W_NONE, W_TXT, W_A, W_EXISTS, W_MX, W_MXHOST, W_PTR,
	W_PTRHOST };

#define PTR_NAMES_MAX 10          /* RFC 7208 4.6.4 */

struct spf_check {
	struct dns *dns;
	unsigned char ip[16];
	bool v6;
	char *sender, *helo;
	struct frame f[DEPTH_MAX];
	size_t depth;
	int lookups, voids;
	enum wait wait;
	struct dns_query *q;
	char **mx;                /* the MX names of the mx mechanism */
	size_t nmx, mx_i;
	/* the client's names (PTR), being validated for ptr or %{p} */
	char **ptr;
	size_t nptr, ptr_i;
	char *ptr_target;         /* ptr: the name they must be in */
	bool for_p;               /* else for %{p} */
	char *p;                  /* %{p}, once found ("unknown": none) */
	char *p_best;             /* a validated name for %{p} so far */
	int p_rank;
	struct event *later;
	enum spf_result result;
	const char *why;
	spf_check_cb cb;
	void *arg;
};

static void step(struct spf_check *c);

static void
frame_clear(struct frame *f)
{
	free(f->domain);
	spf_record_clear(&f->rec);
	memset(f, 0, sizeof(*f));
}

static void
ptr_clear(struct spf_check *c)
{
	for (size_t i = 0; i < c->nptr; i++)
		free(c->ptr[i]);
	free(c->ptr);
	c->ptr = NULL;
	c->nptr = c->ptr_i = 0;
	free(c->ptr_target);
	c->ptr_target = NULL;
	free(c->p_best);
	c->p_best = NULL;
	c->p_rank = 0;
}

static void
mx_clear(struct spf_check *c)
{
	for (size_t i = 0; i < c->nmx; i++)
		free(c->mx[i]);
	free(c->mx);
	c->mx = NULL;
	c->nmx = c->mx_i = 0;
}

void
spf_check_cancel(struct spf_check *c)
{
	if (c == NULL)
		return;
	if (c->q)
		dns_cancel(c->q);
	if (c->later)
		event_free(c->later);
	for (size_t i = 0; i < c->depth; i++)
		frame_clear(&c->f[i]);
	mx_clear(c);
	ptr_clear(c);
	free(c->p);
	free(c->sender);
	free(c->helo);
	free(c);
}

static void
on_later(evutil_socket_t fd, short what, void *arg)
{
	struct spf_check *c = arg;
	spf_check_cb cb = c->cb;
	void *cbarg = c->arg;
	enum spf_result r = c->result;
	const char *why = c->why;

	(void)fd;
	(void)what;
	spf_check_cancel(c);
	cb(cbarg, r, why);
}

/* The final result: given from the loop, never from inside a call. */
static void
done(struct spf_check *c, enum spf_result r, const char *why)
{
	struct timeval now = { 0, 0 };

	c->result = r;
	c->why = why;
	c->wait = W_NONE;
	c->later = evtimer_new(dns_base(c->dns), on_later, c);
	evtimer_add(c->later, &now);
}

static struct frame *
top(struct spf_check *c)
{
	return &c->f[c->depth - 1];
}

/* The top frame's record says r: its parent goes on, or it is the end. */
static void
frame_done(struct spf_check *c, enum spf_result r)
{
	struct frame *f = top(c);

	if (f->redirected && r == SPF_NONE)
		r = SPF_PERMERROR;     /* RFC 7208 6.1 */
	frame_clear(f);
	c->depth--;
	if (c->depth == 0) {
		done(c, r, r == SPF_PERMERROR ? "the record is broken" :
		    r == SPF_NONE ? "no SPF record" : NULL);
		return;
	}
	/* it was an include of the term at the parent's next */
	struct frame *p = top(c);
	switch (r) {
	case SPF_PASS:
		frame_done(c, p->rec.t[p->next].qualifier);
		return;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		p->next++;
		step(c);
		return;
	case SPF_TEMPERROR:
		done(c, SPF_TEMPERROR, "a DNS lookup failed");
		return;
	default:
		done(c, SPF_PERMERROR, "an included domain has no good record");
		return;
	}
}

/* The top frame's term matched: the record says its qualifier. */
static void
matched(struct spf_check *c)
{
	struct frame *f = top(c);

	frame_done(c, f->rec.t[f->next].qualifier);
}

static bool
count_lookup(struct spf_check *c)
{
	if (++c->lookups > LOOKUPS_MAX) {
		done(c, SPF_PERMERROR, "more than 10 DNS lookups");
		return false;
	}
	return true;
}

static bool
count_void(struct spf_check *c)
{
	if (++c->voids > VOIDS_MAX) {
		done(c, SPF_PERMERROR, "more than 2 void lookups");
		return false;
	}
	return true;
}

/* The domain a term names (its domain-spec expanded, or the frame's). */
static char *
target(struct spf_check *c, const char *spec)
{
	struct frame *f = top(c);
	struct spf_macros m = { c->sender, f->domain, c->ip, c->v6, c->helo,
		NULL, 0, c->p };
	struct buf out;

	if (spec == NULL)
		return xstrdup(f->domain);
	buf_init(&out);
	if (spf_expand(spec, &m, false, &out) != 0) {
		buf_clear(&out);
		return NULL;
	}
	if (out.len && out.data[out.len - 1] == '.')
		out.data[--out.len] = '\0';
	return buf_steal(&out, NULL);
}

/*
 * Whether a target name can be asked for (RFC 1035: labels of 1 to 63
 * octets, 253 in all). One that cannot is treated as one that does not
 * exist (RFC 7208 4.8).
 */
static bool
name_ok(const char *d)
{
	size_t n = strlen(d), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else
			label++;
	}
	return true;
}

/* Whether name is d or a name under it (ASCII case ignored). */
static bool
name_in(const char *name, const char *d)
{
	size_t nl = strlen(name), dl = strlen(d);

	return nl >= dl && ascii_strcaseeq(name + nl - dl, d) &&
	    (nl == dl || name[nl - dl - 1] == '.');
}

static void next_ptr_host(struct spf_check *c);

/* The names of the client's address (PTR), then each validated. */
static void
on_ptr(void *arg, enum dns_status st, char *const *names, size_t n)
{
	struct spf_check *c = arg;

	c->q = NULL;
	c->wait = W_NONE;
	if (!c->for_p && (st == DNS_NXDOMAIN || st == DNS_NODATA ||
	    (st == DNS_OK && n == 0)) && !count_void(c))
		return;
	/* a DNS error: the mechanism does not match (RFC 7208 5.5) */
	for (size_t i = 0; st == DNS_OK && i < n && i < PTR_NAMES_MAX; i++) {
		if (c->nptr == 0)
			c->ptr = xcalloc(PTR_NAMES_MAX, sizeof(char *));
		c->ptr[c->nptr++] = xstrdup(names[i]);
	}
	c->ptr_i = 0;
	next_ptr_host(c);
}

static void
start_ptr(struct spf_check *c, bool for_p, char *target_name)
{
	char name[80];
	size_t n = 0;

	ptr_clear(c);
	c->for_p = for_p;
	c->ptr_target = target_name;
	if (!c->v6)
		(void)snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa",
		    c->ip[3], c->ip[2], c->ip[1], c->ip[0]);
	else {
		for (int k = 15; k >= 0; k--)
			n += (size_t)snprintf(name + n, sizeof(name) - n,
			    "%x.%x.", c->ip[k] & 15u, (unsigned)c->ip[k] >> 4);
		(void)snprintf(name + n, sizeof(name) - n, "ip6.arpa");
	}
	c->wait = W_PTR;
	c->q = dns_records(c->dns, name, DNS_RR_PTR, on_ptr, c);
}

static void
on_txt(void *arg, enum dns_status st, char *const *txts, size_t n)
{
	struct spf_check *c = arg;
	struct frame *f = top(c);
	const char *rec = NULL, *why;
	size_t found = 0;

	c->q = NULL;
	c->wait = W_NONE;
	if (st == DNS_TEMP) {
		done(c, SPF_TEMPERROR, "the SPF record could not be looked up");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (spf_is_record(txts[i])) {
			rec = txts[i];
			found++;
		}
	if (found == 0) {
		frame_done(c, SPF_NONE);
		return;
	}
	if (found > 1) {
		done(c, SPF_PERMERROR, "more than one SPF record");
		return;
	}
	if (spf_record_parse(rec, &f->rec, &why) != 1) {
		done(c, SPF_PERMERROR, why);
		return;
	}
	f->loaded = true;
	f->next = 0;
	step(c);
}

/* Whether one of addrs is the client's, within the term's CIDR. */
static bool
addr_match(struct spf_check *c, const struct sockaddr_storage *a, size_t n,
    int bits4, int bits6)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].ss_family == AF_INET && !c->v6) {
			const struct sockaddr_in *s4 = (const void *)&a[i];
			if (spf_ip_in(c->ip, false, (const unsigned char *)
			    &s4->sin_addr, bits4))
				return true;
		} else if (a[i].ss_family == AF_INET6 && c->v6) {
			const struct sockaddr_in6 *s6 = (const void *)&a[i];
			if (spf_ip_in(c->ip, true, s6->sin6_addr.s6_addr, bits6))
				return true;
		}
	}
	return false;
}

static void next_mx_host(struct spf_check *c);

static void
on_addrs(void *arg, enum dns_status st, const struct sockaddr_storage *a,
    size_t n)
{
	struct spf_check *c = arg;
	struct frame *f = top(c);
	const struct spf_term *t = &f->rec.t[f->next];
	enum wait w = c->wait;

	c->q = NULL;
	c->wait = W_NONE;
	if (w == W_PTRHOST) {
		/* a name whose addresses include the client's is validated;
		 * one whose lookup fails is passed over (RFC 7208 5.5) */
		const char *name = c->ptr[c->ptr_i];
		if (st == DNS_OK && addr_match(c, a, n, 32, 128)) {
			if (!c->for_p && name_in(name, c->ptr_target)) {
				ptr_clear(c);
				matched(c);
				return;
			}
			/* %{p}: the domain itself, else a name under it, else
			 * any (RFC 7208 7.3) */
			int rank = ascii_strcaseeq(name, f->domain) ? 3 :
			    name_in(name, f->domain) ? 2 : 1;
			if (c->for_p && rank > c->p_rank) {
				free(c->p_best);
				c->p_best = xstrdup(name);
				c->p_rank = rank;
			}
		}
		c->ptr_i++;
		next_ptr_host(c);
		return;
	}
	if (st == DNS_TEMP) {
		done(c, SPF_TEMPERROR, "an address lookup failed");
		return;
	}
	if (n == 0 && w != W_MXHOST && !count_void(c))
		return;
	bool hit;
	if (w == W_EXISTS) {
		hit = false;
		for (size_t i = 0; i < n; i++)
			hit |= a[i].ss_family == AF_INET;
	} else
		hit = addr_match(c, a, n, t->cidr4, t->cidr6);
	if (hit) {
		mx_clear(c);
		matched(c);
		return;
	}
	if (w == W_MXHOST) {
		c->mx_i++;
		next_mx_host(c);
		return;
	}
	f->next++;
	step(c);
}

static void
next_mx_host(struct spf_check *c)
{
	if (c->mx_i >= c->nmx) {
		mx_clear(c);
		top(c)->next++;
		step(c);
		return;
	}
	c->wait = W_MXHOST;
	c->q = dns_addrs(c->dns, c->mx[c->mx_i], on_addrs, c);
}

static void
next_ptr_host(struct spf_check *c)
{
	if (c->ptr_i < c->nptr) {
		c->wait = W_PTRHOST;
		c->q = dns_addrs(c->dns, c->ptr[c->ptr_i], on_addrs, c);
		return;
	}
	if (c->for_p) {
		/* %{p} known: the term that needs it is evaluated again */
		c->p = xstrdup(c->p_best ? c->p_best : "unknown");
		ptr_clear(c);
		step(c);
		return;
	}
	ptr_clear(c);
	top(c)->next++;               /* ptr: no validated name in it */
	step(c);
}

static void
on_mx(void *arg, enum dns_status st, char *const *hosts, size_t n)
{
	struct spf_check *c = arg;

	c->q = NULL;
	c->wait = W_NONE;
	if (st == DNS_TEMP) {
		done(c, SPF_TEMPERROR, "an MX lookup failed");
		return;
	}
	if (st != DNS_OK || n == 0) {
		if (st != DNS_NULL_MX && !count_void(c))
			return;
		top(c)->next++;
		step(c);
		return;
	}
	if (n > MX_NAMES_MAX) {
		done(c, SPF_PERMERROR, "more than 10 MX names");
		return;
	}
	c->mx = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c->mx[c->nmx++] = xstrdup(hosts[i]);
	c->mx_i = 0;
	next_mx_host(c);
}

/* Evaluates the top frame until a lookup is out or there is a result. */
static void
step(struct spf_check *c)
{
	for (;;) {
		struct frame *f = top(c);
		if (!f->loaded) {
			c->wait = W_TXT;
			c->q = dns_txt(c->dns, f->domain, on_txt, c);
			return;
		}
		if (f->next >= f->rec.n) {
			if (f->rec.redirect == NULL) {
				frame_done(c, SPF_NEUTRAL);
				return;
			}
			if (c->p == NULL && spf_uses_p(f->rec.redirect)) {
				start_ptr(c, true, NULL);
				return;
			}
			if (!count_lookup(c))
				return;
			char *d = target(c, f->rec.redirect);
			if (d == NULL) {
				done(c, SPF_PERMERROR, "a bad macro");
				return;
			}
			if (!name_ok(d)) {
				free(d);
				done(c, SPF_PERMERROR, "redirect= names no "
				    "possible domain");
				return;
			}
			/* the redirect's result is this record's */
			frame_clear(f);
			f->domain = d;
			f->redirected = true;
			continue;
		}
		const struct spf_term *t = &f->rec.t[f->next];
		char *d;
		/* %{p} in its name: the client's name validated first */
		if (c->p == NULL && spf_uses_p(t->domain)) {
			start_ptr(c, true, NULL);
			return;
		}
		switch (t->mech) {
		case SPF_ALL:
			matched(c);
			return;
		case SPF_IP4:
		case SPF_IP6:
			if ((t->mech == SPF_IP6) == c->v6 && spf_ip_in(c->ip,
			    c->v6, t->ip, c->v6 ? t->cidr6 : t->cidr4)) {
				matched(c);
				return;
			}
			f->next++;
			continue;
		case SPF_PTR:
			if (!count_lookup(c))
				return;
			if ((d = target(c, t->domain)) == NULL) {
				done(c, SPF_PERMERROR, "a bad macro");
				return;
			}
			start_ptr(c, false, d);
			return;
		case SPF_INCLUDE:
			if (!count_lookup(c))
				return;
			if (c->depth == DEPTH_MAX) {
				done(c, SPF_PERMERROR, "includes nested too deep");
				return;
			}
			if ((d = target(c, t->domain)) == NULL) {
				done(c, SPF_PERMERROR, "a bad macro");
				return;
			}
			if (!name_ok(d)) {
				/* a name that cannot exist has no record */
				free(d);
				done(c, SPF_PERMERROR, "an included domain has "
				    "no good record");
				return;
			}
			memset(&c->f[c->depth], 0, sizeof(c->f[c->depth]));
			c->f[c->depth++].domain = d;
			continue;
		case SPF_A:
		case SPF_EXISTS:
		case SPF_MX:
			if (!count_lookup(c))
				return;
			if ((d = target(c, t->domain)) == NULL) {
				done(c, SPF_PERMERROR, "a bad macro");
				return;
			}
			if (!name_ok(d)) {
				/* treated as a name that does not exist */
				free(d);
				if (!count_void(c))
					return;
				f->next++;
				continue;
			}
			if (t->mech == SPF_MX) {
				c->wait = W_MX;
				c->q = dns_mx_records(c->dns, d, on_mx, c);
			} else {
				c->wait = t->mech == SPF_A ? W_A : W_EXISTS;
				c->q = dns_addrs(c->dns, d, on_addrs, c);
			}
			free(d);
			return;
		}
	}
}

struct spf_check *
spf_check_start(struct dns *dns, const unsigned char *ip, bool v6,
    const char *domain, const char *sender, const char *helo,
    spf_check_cb cb, void *arg)
{
	struct spf_check *c = xcalloc(1, sizeof(*c));
	size_t dl = strlen(domain);

	c->dns = dns;
	memcpy(c->ip, ip, v6 ? 16 : 4);
	c->v6 = v6;
	c->sender = xstrdup(sender);
	c->helo = xstrdup(helo ? helo : "");
	c->cb = cb;
	c->arg = arg;
	/* RFC 7208 4.3: not a name with labels, no record to ask for */
	if (dl == 0 || strchr(domain, '.') == NULL || !name_ok(domain) ||
	    domain[0] == '[') {
		done(c, SPF_NONE, "not a domain to check");
		return c;
	}
	c->f[0].domain = xstrdup(domain);
	c->depth = 1;
	step(c);
	return c;
}
