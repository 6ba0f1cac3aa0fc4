/* SPDX-License-Identifier: ISC */
/*
 * arc_verify.c - layer 2: ARC chain validation (arc_verify.h). The form
 * of the chain is checked first (no lookups for a chain that is broken
 * or was failed by its last sealer), then every distinct key is asked
 * for at once, and the signatures are checked when all are back.
 */
#include "mail/arc_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/dns.h"
#include "base/tls.h"
#include "base/util.h"
#include "mail/bodyhash.h"
#include "mail/dkim.h"

struct arc_key {
	struct arc_verify *v;
	char name[400];            /* selector._domainkey.domain */
	struct dns_query *q;
	enum dns_status st;
	char *txt;                 /* the first record that reads as a key */
	struct dkim_key k;
	bool have;
	const char *why;
};

struct arc_verify {
	const char *msg;
	size_t len;
	struct dkim_field *f;
	size_t nf, body;
	const struct bodyhash *bh; /* or NULL: hashed from msg */
	struct arc_set sets[ARC_INSTANCE_MAX];
	struct arc_seal seals[ARC_INSTANCE_MAX];
	struct dkim_sig ams[ARC_INSTANCE_MAX];
	bool ams_parsed[ARC_INSTANCE_MAX];
	struct arc_key keys[ARC_KEYS_MAX];
	size_t nkeys, pending;
	struct {                   /* body hashes made: by c= and l= */
		enum dkim_canon c;
		uint64_t l;
		unsigned char bh[32];
		uint64_t total;
	} bodies[4];
	size_t nbodies;
	struct arc_verdict out;
	arc_verify_cb cb;
	void *arg;
	struct event *later;
};

void
arc_verdict_clear(struct arc_verdict *v)
{
	for (unsigned i = 0; v->hops && i < v->n; i++)
		free(v->hops[i].results);
	free(v->hops);
	memset(v, 0, sizeof(*v));
}

static void
finish(struct arc_verify *v)
{
	arc_verify_cb cb = v->cb;
	void *arg = v->arg;
	struct arc_verdict out = v->out;

	memset(&v->out, 0, sizeof(v->out));
	arc_verify_cancel(v);
	cb(arg, &out);
}

static void
on_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg);
}

static void
fail(struct arc_verify *v, const char *why)
{
	if (v->out.result != ARC_CV_FAIL)
		(void)snprintf(v->out.reason, sizeof(v->out.reason), "%s", why);
	v->out.result = ARC_CV_FAIL;
	v->out.oldest_pass = -1;
}

static const char *
field_value(const struct dkim_field *f, size_t *len)
{
	const char *colon = memchr(f->p, ':', f->len);

	*len = f->len - (size_t)(colon + 1 - f->p);
	return colon + 1;
}

/* The key slot for selector._domainkey.domain, asked for once. */
static struct arc_key *
key_for(struct arc_verify *v, const char *selector, const char *domain)
{
	char name[400];

	(void)snprintf(name, sizeof(name), "%s._domainkey.%s", selector,
	    domain);
	for (size_t i = 0; i < v->nkeys; i++)
		if (strcmp(v->keys[i].name, name) == 0)
			return &v->keys[i];
	if (v->nkeys == ARC_KEYS_MAX)
		return NULL;
	struct arc_key *k = &v->keys[v->nkeys++];
	k->v = v;
	(void)snprintf(k->name, sizeof(k->name), "%s", name);
	return k;
}

/* Whether sig (data signed by key k with alg) verifies; why if not. */
static bool
check(const struct arc_key *k, enum dkim_alg alg, const struct buf *data,
    const unsigned char *sig, size_t siglen, const char **why)
{
	unsigned bits = 0;

	if (k == NULL || k->st == DNS_TEMP) {
		*why = "key lookup failed";
		return false;
	}
	if (!k->have) {
		*why = k->why ? k->why : "no key for the signature";
		return false;
	}
	if (k->k.plen == 0) {
		*why = "key revoked";
		return false;
	}
	if (k->k.alg != alg) {
		*why = "the key is of another algorithm";
		return false;
	}
	int ok = tls_verify(alg == DKIM_RSA_SHA256 ? TLS_KEY_RSA :
	    TLS_KEY_ED25519, k->k.p, k->k.plen, data->data, data->len, sig,
	    siglen, &bits);
	if (ok <= 0)
		*why = ok < 0 ? "the key cannot be read or is too short" :
		    "signature did not verify";
	return ok > 0;
}

static void
hash_out(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

/* Whether the ARC-Message-Signature of instance i (1-based) verifies. */
static bool
ams_ok(struct arc_verify *v, unsigned i, const char **why)
{
	struct dkim_sig *s = &v->ams[i - 1];
	size_t fi = v->sets[i - 1].ams;
	unsigned char bh[32];
	struct dkim_body b;
	struct buf t;

	if (!v->ams_parsed[i - 1]) {
		*why = "the ARC-Message-Signature cannot be read";
		return false;
	}
	/* each distinct body canonicalization once, at most four */
	uint64_t l = s->has_l ? s->l : UINT64_MAX, total = 0;
	size_t bi = 0;
	while (bi < v->nbodies && (v->bodies[bi].c != s->bc ||
	    v->bodies[bi].l != l))
		bi++;
	const unsigned char *got = v->bh ? bodyhash_get(v->bh, s->bc, l,
	    &total) : NULL;
	if (v->bh && got == NULL) {
		*why = "too many body canonicalizations in the message";
		return false;
	}
	if (got)
		memcpy(bh, got, 32);
	else if (bi == v->nbodies) {
		if (bi == sizeof(v->bodies) / sizeof(v->bodies[0])) {
			*why = "too many body canonicalizations in the chain";
			return false;
		}
		struct tls_sha256 *h = tls_sha256_new();
		dkim_body_init(&b, s->bc, l, hash_out, h);
		dkim_body_feed(&b, v->msg + v->body, v->len - v->body);
		dkim_body_end(&b);
		tls_sha256_final(h, v->bodies[bi].bh);
		v->bodies[bi].c = s->bc;
		v->bodies[bi].l = l;
		v->bodies[bi].total = b.total;
		v->nbodies++;
	}
	if (got == NULL) {
		memcpy(bh, v->bodies[bi].bh, 32);
		total = v->bodies[bi].total;
	}
	if (memcmp(bh, s->bh, 32) != 0 || (s->has_l && s->l > total)) {
		*why = "the ARC-Message-Signature's body hash did not verify";
		return false;
	}
	buf_init(&t);
	dkim_signed_text(v->f, v->nf, (ssize_t)fi, s->hc, s->hnames, s->nh,
	    v->f[fi].p, v->f[fi].len, &t);
	bool ok = check(key_for(v, s->s, s->d), s->alg, &t, s->b, s->blen,
	    why);
	buf_clear(&t);
	return ok;
}

/* Whether the ARC-Seal of instance i verifies over sets 1..i. */
static bool
seal_ok(struct arc_verify *v, unsigned i, const char **why)
{
	struct dkim_field *fl = xcalloc(3 * (size_t)i, sizeof(*fl));
	const struct arc_seal *as = &v->seals[i - 1];
	struct buf t;

	for (unsigned k = 0; k < i; k++) {
		fl[3 * k] = v->f[v->sets[k].aar];
		fl[3 * k + 1] = v->f[v->sets[k].ams];
		fl[3 * k + 2] = v->f[v->sets[k].as];
	}
	buf_init(&t);
	arc_seal_text(fl, i, &t);
	free(fl);
	bool ok = check(key_for(v, as->s, as->d), as->alg, &t, as->b,
	    as->blen, why);
	buf_clear(&t);
	return ok;
}

/* Every key is back: the signatures (RFC 8617 5.2 steps 5 to 8). */
static void
evaluate(struct arc_verify *v)
{
	unsigned n = v->out.n;
	const char *why;
	char msg[160];

	if (v->out.result == ARC_CV_FAIL)
		return;
	if (!(v->out.hops[n - 1].ams_ok = ams_ok(v, n, &why))) {
		(void)snprintf(msg, sizeof(msg), "i=%u: %s", n, why);
		fail(v, msg);
	}
	/* oldest-pass: back from N-1 while the older ones still verify */
	int oldest = v->out.result == ARC_CV_FAIL ? -1 : 0;
	for (unsigned i = n - 1; i >= 1; i--)
		if (!(v->out.hops[i - 1].ams_ok = ams_ok(v, i, &why))) {
			if (oldest == 0)
				oldest = (int)i + 1;
			break;
		}
	for (unsigned i = n; i >= 1; i--)
		if (!(v->out.hops[i - 1].seal_ok = seal_ok(v, i, &why)) &&
		    v->out.result != ARC_CV_FAIL) {
			(void)snprintf(msg, sizeof(msg), "i=%u: the ARC-Seal: %s",
			    i, why);
			fail(v, msg);
		}
	if (v->out.result != ARC_CV_FAIL) {
		v->out.result = ARC_CV_PASS;
		v->out.oldest_pass = oldest;
	}
}

static void
on_key(void *arg, enum dns_status st, char *const *txts, size_t n)
{
	struct arc_key *k = arg;
	struct arc_verify *v = k->v;

	k->q = NULL;
	k->st = st;
	for (size_t i = 0; st == DNS_OK && i < n && !k->have; i++)
		k->have = dkim_key_parse(txts[i], strlen(txts[i]), &k->k,
		    &k->why) == 0;
	if (--v->pending == 0) {
		evaluate(v);
		finish(v);
	}
}

/* The sets' form and statuses (steps 1 to 4); false: no lookups needed. */
static bool
read_chain(struct arc_verify *v)
{
	const char *why;
	unsigned n;
	char msg[160];

	if (arc_sets(v->f, v->nf, v->sets, &n, &why) != 0) {
		fail(v, why);
		return false;
	}
	if (n == 0)
		return false;            /* none */
	v->out.n = n;
	v->out.hops = xcalloc(n, sizeof(*v->out.hops));
	for (unsigned i = 1; i <= n; i++) {
		struct arc_hop *h = &v->out.hops[i - 1];
		size_t vl, rest;
		const char *val;
		h->i = i;
		val = field_value(&v->f[v->sets[i - 1].aar], &vl);
		if (arc_aar_instance(val, vl, &rest) > 0) {
			size_t a = rest, e = vl;
			while (a < e && (val[a] == ' ' || val[a] == '\t' ||
			    val[a] == '\r' || val[a] == '\n'))
				a++;
			while (e > a && (val[e - 1] == '\r' || val[e - 1] == '\n'))
				e--;
			h->results = xstrndup(val + a, e - a);
		}
		val = field_value(&v->f[v->sets[i - 1].as], &vl);
		if (arc_seal_parse(val, vl, &v->seals[i - 1], &why) != 0) {
			(void)snprintf(msg, sizeof(msg), "i=%u: %s", i, why);
			fail(v, msg);
			continue;
		}
		h->cv = v->seals[i - 1].cv;
		(void)snprintf(h->domain, sizeof(h->domain), "%s",
		    v->seals[i - 1].d);
		(void)snprintf(h->selector, sizeof(h->selector), "%s",
		    v->seals[i - 1].s);
		unsigned inst;
		val = field_value(&v->f[v->sets[i - 1].ams], &vl);
		v->ams_parsed[i - 1] = dkim_ams_parse(val, vl, &v->ams[i - 1],
		    &inst, &why) == 0;
		if (!v->ams_parsed[i - 1] && i == n) {
			(void)snprintf(msg, sizeof(msg), "i=%u: the "
			    "ARC-Message-Signature: %s", i, why);
			fail(v, msg);
		}
	}
	if (v->out.result == ARC_CV_FAIL)
		return false;
	/* step 3: the newest sealer said the chain had failed */
	if (v->seals[n - 1].cv == ARC_CV_FAIL) {
		(void)snprintf(msg, sizeof(msg), "i=%u: the sealer found the "
		    "chain failed (cv=fail)", n);
		fail(v, msg);
		return false;
	}
	/* step 4: cv=none for the first set only, pass for the others */
	for (unsigned i = 1; i <= n; i++)
		if ((i == 1) != (v->seals[i - 1].cv == ARC_CV_NONE) ||
		    (i > 1 && v->seals[i - 1].cv != ARC_CV_PASS)) {
			(void)snprintf(msg, sizeof(msg), "i=%u: cv=%s is wrong "
			    "for that instance", i,
			    arc_cv_name(v->seals[i - 1].cv));
			fail(v, msg);
			return false;
		}
	/* the keys: every seal's, every parsed message signature's */
	for (unsigned i = 1; i <= n; i++) {
		if (key_for(v, v->seals[i - 1].s, v->seals[i - 1].d) == NULL ||
		    (v->ams_parsed[i - 1] && key_for(v, v->ams[i - 1].s,
		    v->ams[i - 1].d) == NULL)) {
			fail(v, "the chain needs more keys than we look up");
			return false;
		}
	}
	return true;
}

struct arc_verify *
arc_verify_start(struct dns *dns, const char *msg, size_t len,
    const struct bodyhash *bh, arc_verify_cb cb, void *arg)
{
	struct arc_verify *v = xcalloc(1, sizeof(*v));

	v->msg = msg;
	v->len = len;
	v->bh = bh;
	v->cb = cb;
	v->arg = arg;
	v->out.result = ARC_CV_NONE;
	v->out.oldest_pass = -1;
	v->nf = dkim_fields(msg, len, &v->f, &v->body);
	if (read_chain(v)) {
		v->pending = v->nkeys;
		for (size_t i = 0; i < v->nkeys; i++)
			v->keys[i].q = dns_txt(dns, v->keys[i].name, on_key,
			    &v->keys[i]);
		return v;
	}
	v->later = evtimer_new(dns_base(dns), on_later, v);
	struct timeval tv = { 0, 0 };
	evtimer_add(v->later, &tv);
	return v;
}

void
arc_verify_cancel(struct arc_verify *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nkeys; i++)
		if (v->keys[i].q)
			dns_cancel(v->keys[i].q);
	for (unsigned i = 0; i < ARC_INSTANCE_MAX; i++)
		if (v->ams_parsed[i])
			dkim_sig_clear(&v->ams[i]);
	if (v->later)
		event_free(v->later);
	arc_verdict_clear(&v->out);
	free(v->f);
	free(v);
}
