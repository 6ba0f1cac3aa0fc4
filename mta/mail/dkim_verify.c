/* SPDX-License-Identifier: ISC */
/*
 * dkim_verify.c - layer 2: DKIM verification (dkim_verify.h). The body
 * hashes are computed when it starts (one pass per distinct body
 * canonicalization and l=), the keys asked for all at once, and each
 * signature checked as its key comes.
 */
#include "mail/dkim_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "base/dns.h"
#include "base/tls.h"
#include "base/util.h"
#include "mail/bodyhash.h"
#include "mail/dkim.h"

struct vsig {
	struct dkim_verify *v;
	size_t field;             /* its index in v->f */
	struct dkim_sig sig;
	bool parsed;
	struct dns_query *q;      /* its key's lookup, while out */
	bool body_ok;
};

struct dkim_verify {
	const char *msg;
	size_t len;
	struct dkim_field *f;
	size_t nf;
	struct vsig *s;
	struct dkim_verdict *out;
	size_t n, pending;
	dkim_verify_cb cb;
	void *arg;
	struct event *later;      /* the answer when no lookup is needed */
};

const char *
dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = { "pass", "fail", "neutral",
		"policy", "temperror", "permerror" };

	return names[r];
}

static void
hash_out(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

static void
finish(struct dkim_verify *v)
{
	dkim_verify_cb cb = v->cb;
	void *arg = v->arg;
	struct dkim_verdict *out = v->out;
	size_t n = v->n;

	v->out = NULL;
	dkim_verify_cancel(v);
	cb(arg, out, n);
	free(out);
}

static void
on_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg);
}

static void
verdict(struct vsig *s, enum dkim_result r, const char *reason)
{
	struct dkim_verdict *d = &s->v->out[s - s->v->s];

	d->result = r;
	if (reason)
		(void)snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

/* The key's answer: the signature checked. */
static void
on_key(void *arg, enum dns_status st, char *const *txts, size_t n)
{
	struct vsig *s = arg;
	struct dkim_verify *v = s->v;
	struct dkim_verdict *d = &v->out[s - v->s];
	struct dkim_key k;
	const char *why = "no key record";
	bool have = false;

	s->q = NULL;
	if (st == DNS_TEMP)
		verdict(s, DKIM_TEMPERROR, "key lookup failed");
	else if (st != DNS_OK || n == 0)
		verdict(s, DKIM_PERMERROR, "no key for the signature");
	else {
		/* the first record that reads as a key (RFC 6376 3.6.2.2) */
		for (size_t i = 0; i < n && !have; i++)
			have = dkim_key_parse(txts[i], strlen(txts[i]), &k,
			    &why) == 0;
		if (!have)
			verdict(s, DKIM_PERMERROR, why);
	}
	if (have) {
		d->testing = k.testing;
		const char *at = strchr(s->sig.i, '@');
		if (k.plen == 0)
			verdict(s, DKIM_PERMERROR, "key revoked");
		else if (k.alg != s->sig.alg)
			verdict(s, DKIM_PERMERROR, "the key is of another "
			    "algorithm");
		else if (k.strict && at && strcasecmp(at + 1, s->sig.d) != 0)
			verdict(s, DKIM_PERMERROR, "i= is a subdomain of a "
			    "strict key's domain");
		else if (!s->body_ok)
			verdict(s, DKIM_FAIL, "body hash did not verify");
		else {
			struct buf t;
			buf_init(&t);
			dkim_signed_text(v->f, v->nf, (ssize_t)s->field,
			    s->sig.hc, s->sig.hnames, s->sig.nh,
			    v->f[s->field].p, v->f[s->field].len, &t);
			int ok = tls_verify(s->sig.alg == DKIM_RSA_SHA256 ?
			    TLS_KEY_RSA : TLS_KEY_ED25519, k.p, k.plen, t.data,
			    t.len, s->sig.b, s->sig.blen, &d->bits);
			buf_clear(&t);
			if (ok < 0)
				verdict(s, DKIM_PERMERROR, d->bits && d->bits <
				    1024 ? "key too short" : "the key cannot "
				    "be read");
			else if (ok == 0)
				verdict(s, DKIM_FAIL, "signature did not verify");
			else
				verdict(s, DKIM_PASS, d->body_limited ?
				    "l= leaves part of the body unsigned" :
				    NULL);
		}
	}
	if (--v->pending == 0)
		finish(v);
}

struct dkim_verify *
dkim_verify_start(struct dns *dns, const char *msg, size_t len,
    const struct bodyhash *bh_in, int64_t now, dkim_verify_cb cb, void *arg)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));
	size_t body;

	v->msg = msg;
	v->len = len;
	v->cb = cb;
	v->arg = arg;
	v->nf = dkim_fields(msg, len, &v->f, &body);
	v->s = xcalloc(DKIM_VERIFY_MAX, sizeof(*v->s));
	v->out = xcalloc(DKIM_VERIFY_MAX, sizeof(*v->out));
	for (size_t i = 0; i < v->nf && v->n < DKIM_VERIFY_MAX; i++) {
		const struct dkim_field *f = &v->f[i];
		if (f->nlen != 14 || strncasecmp(f->p, "DKIM-Signature", 14))
			continue;
		struct vsig *s = &v->s[v->n];
		struct dkim_verdict *d = &v->out[v->n++];
		const char *why = NULL;
		const char *colon = memchr(f->p, ':', f->len);
		s->v = v;
		s->field = i;
		d->result = DKIM_NEUTRAL;
		if (dkim_sig_parse(colon + 1, f->len - (size_t)(colon + 1 -
		    f->p), &s->sig, &why) != 0) {
			verdict(s, DKIM_PERMERROR, why);
			continue;
		}
		s->parsed = true;
		(void)snprintf(d->domain, sizeof(d->domain), "%s", s->sig.d);
		(void)snprintf(d->selector, sizeof(d->selector), "%s", s->sig.s);
		(void)snprintf(d->identity, sizeof(d->identity), "%s", s->sig.i);
		d->algorithm = s->sig.alg == DKIM_RSA_SHA256 ? "rsa-sha256" :
		    "ed25519-sha256";
		d->body_limited = s->sig.has_l;
		/* the first characters of b= as written (RFC 6008) */
		const struct dkim_tag *bt;
		struct dkim_tag tags[DKIM_TAGS_MAX];
		size_t nt;
		if (dkim_tags_parse(colon + 1, f->len - (size_t)(colon + 1 -
		    f->p), tags, DKIM_TAGS_MAX, &nt) == 0 &&
		    (bt = dkim_tag_find(tags, nt, "b")) != NULL) {
			size_t k = 0;
			for (size_t j = 0; j < bt->vlen && k < 8; j++)
				if (bt->val[j] > ' ')
					d->b[k++] = bt->val[j];
			d->b[k] = '\0';
		}
		if (s->sig.x >= 0 && now > s->sig.x) {
			verdict(s, DKIM_PERMERROR, "signature expired");
			continue;
		}
		/* its body hash */
		unsigned char bh[32];
		uint64_t total;
		uint64_t l = s->sig.has_l ? s->sig.l : UINT64_MAX;
		if (bh_in) {
			const unsigned char *got = bodyhash_get(bh_in,
			    s->sig.bc, l, &total);
			if (got == NULL) {
				verdict(s, DKIM_PERMERROR, "too many body "
				    "canonicalizations in the message");
				continue;
			}
			memcpy(bh, got, 32);
		} else {
			struct tls_sha256 *h = tls_sha256_new();
			struct dkim_body b;
			dkim_body_init(&b, s->sig.bc, l, hash_out, h);
			dkim_body_feed(&b, msg + body, len - body);
			dkim_body_end(&b);
			tls_sha256_final(h, bh);
			total = b.total;
		}
		if (s->sig.has_l && s->sig.l > total) {
			verdict(s, DKIM_PERMERROR, "l= is longer than the body");
			continue;
		}
		s->body_ok = memcmp(bh, s->sig.bh, 32) == 0;
		char name[400];
		(void)snprintf(name, sizeof(name), "%s._domainkey.%s", s->sig.s,
		    s->sig.d);
		v->pending++;
		s->q = dns_txt(dns, name, on_key, s);
	}
	if (v->pending == 0) {
		v->later = evtimer_new(dns_base(dns), on_later, v);
		struct timeval tv = { 0, 0 };
		evtimer_add(v->later, &tv);
	}
	return v;
}

void
dkim_verify_cancel(struct dkim_verify *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->s[i].q)
			dns_cancel(v->s[i].q);
		dkim_sig_clear(&v->s[i].sig);
	}
	if (v->later)
		event_free(v->later);
	free(v->s);
	free(v->f);
	free(v->out);
	free(v);
}
