/* SPDX-License-Identifier: ISC */
/*
 * arc_seal.c - layer 2: ARC sealing (arc_seal.h).
 */
#include "mail/arc_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tls.h"
#include "base/util.h"
#include "lua/config.h"
#include "mail/arc.h"
#include "mail/authres.h"
#include "mail/dkim.h"

struct arc_sealer {
	char *domain, *selector;
	struct tls_pkey *key;
	enum dkim_alg alg;
};

struct arc_sealer *
arc_sealer_new(const struct config *cfg, char *err, size_t errsz)
{
	struct arc_sealer *as;
	struct tls_pkey *key;

	if (cfg->arc == NULL)
		return NULL;
	if ((key = tls_pkey_load(cfg->arc->key, err, errsz)) == NULL)
		return NULL;
	as = xcalloc(1, sizeof(*as));
	as->key = key;
	as->alg = tls_pkey_type(key) == TLS_KEY_RSA ? DKIM_RSA_SHA256 :
	    DKIM_ED25519_SHA256;
	as->domain = xstrdup(cfg->arc->domain);
	as->selector = xstrdup(cfg->arc->selector);
	return as;
}

void
arc_sealer_free(struct arc_sealer *as)
{
	if (as == NULL)
		return;
	free(as->domain);
	free(as->selector);
	tls_pkey_free(as->key);
	free(as);
}

static void
hash_out(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

/* A field of a buffer, as dkim.h sees fields. */
static struct dkim_field
field_of(const struct buf *b)
{
	const char *colon = memchr(b->data, ':', b->len);

	return (struct dkim_field){ b->data, b->len,
		colon ? (size_t)(colon - b->data) : 0 };
}

/* The highest instance any ARC field claims (for a broken chain). */
static unsigned
top_instance(const struct dkim_field *f, size_t nf)
{
	unsigned top = 0;

	for (size_t i = 0; i < nf; i++) {
		int k = arc_field_instance(&f[i]);
		if (k < 0)
			return ARC_INSTANCE_MAX;   /* unreadable: no room */
		if ((unsigned)k > top)
			top = (unsigned)k;
	}
	return top;
}

int
arc_seal(const struct arc_sealer *as, struct buf *msg, size_t start,
    const char *authserv_id, int64_t now, char *why, size_t whysz)
{
	const char *text = msg->data + start, *ar, *w;
	size_t len = msg->len - start, arlen, body, rest;
	char res[16];
	struct arc_set sets[ARC_INSTANCE_MAX];
	unsigned n;
	enum arc_cv cv;
	struct dkim_field *f;
	unsigned char sig[1024], bh[32];
	int rc = -1;

	if (as == NULL)
		return 0;
	if (!authres_find(text, len, authserv_id, &ar, &arlen)) {
		(void)snprintf(why, whysz, "no Authentication-Results of ours");
		return 0;
	}
	if (authres_method(ar, arlen, "arc", res, sizeof(res)) != 1) {
		(void)snprintf(why, whysz, "no ARC result of ours");
		return 0;
	}
	if (strcmp(res, "pass") == 0)
		cv = ARC_CV_PASS;
	else if (strcmp(res, "none") == 0)
		cv = ARC_CV_NONE;
	else
		cv = ARC_CV_FAIL;
	size_t nf = dkim_fields(text, len, &f, &body);
	bool formed = arc_sets(f, nf, sets, &n, &w) == 0;
	if (cv == ARC_CV_FAIL) {
		n = formed ? n : top_instance(f, nf);
		formed = false;            /* only the new set is sealed */
	} else if (!formed || (cv == ARC_CV_NONE) != (n == 0)) {
		(void)snprintf(why, whysz, "the chain is not what we found "
		    "when it came in");
		free(f);
		return 0;
	}
	if (formed && n > 0) {
		/* a chain failed before us stays failed: nothing to add */
		struct arc_seal top;
		const struct dkim_field *t = &f[sets[n - 1].as];
		const char *colon = memchr(t->p, ':', t->len);
		if (arc_seal_parse(colon + 1, t->len - (size_t)(colon + 1 -
		    t->p), &top, &w) == 0 && top.cv == ARC_CV_FAIL) {
			(void)snprintf(why, whysz, "the chain was failed by "
			    "an earlier sealer");
			free(f);
			return 0;
		}
	}
	if (n >= ARC_INSTANCE_MAX) {
		(void)snprintf(why, whysz, "the chain has %u sets already", n);
		free(f);
		return 0;
	}
	unsigned i = n + 1;
	struct buf aar, ams, seal, tosign;
	char **names;
	size_t nn;
	buf_init(&aar);
	buf_init(&ams);
	buf_init(&seal);
	buf_init(&tosign);
	/* ARC-Authentication-Results: what we found, as we wrote it */
	buf_printf(&aar, "ARC-Authentication-Results: i=%u; ", i);
	rest = 0;
	while (rest < arlen && (ar[rest] == ' ' || ar[rest] == '\t'))
		rest++;
	buf_append(&aar, ar + rest, arlen - rest);
	buf_append_char(&aar, '\n');
	/* ARC-Message-Signature: the message as it leaves */
	struct tls_sha256 *h = tls_sha256_new();
	struct dkim_body b;
	dkim_body_init(&b, DKIM_RELAXED, UINT64_MAX, hash_out, h);
	dkim_body_feed(&b, text + body, len - body);
	dkim_body_end(&b);
	tls_sha256_final(h, bh);
	dkim_sign_field(f, nf, as->alg, as->domain, as->selector, now, bh, i,
	    &ams, &names, &nn);
	dkim_signed_text(f, nf, -1, DKIM_RELAXED, names, nn, ams.data,
	    ams.len, &tosign);
	dkim_names_free(names, nn);
	int sl = tls_pkey_sign(as->key, tosign.data, tosign.len, sig,
	    sizeof(sig));
	if (sl <= 0)
		goto out;
	dkim_append_b(&ams, sig, (size_t)sl);
	/* ARC-Seal: the sets before (unless failed) and this one */
	arc_seal_field(as->alg, i, cv, as->domain, as->selector, now, &seal);
	unsigned from = formed ? 0 : n;
	struct dkim_field *fl = xcalloc(3 * (size_t)i, sizeof(*fl));
	for (unsigned k = from; k < n; k++) {
		fl[3 * k] = f[sets[k].aar];
		fl[3 * k + 1] = f[sets[k].ams];
		fl[3 * k + 2] = f[sets[k].as];
	}
	fl[3 * n] = field_of(&aar);
	fl[3 * n + 1] = field_of(&ams);
	fl[3 * n + 2] = field_of(&seal);
	tosign.len = 0;
	arc_seal_text(fl + 3 * from, i - from, &tosign);
	free(fl);
	sl = tls_pkey_sign(as->key, tosign.data, tosign.len, sig, sizeof(sig));
	if (sl <= 0)
		goto out;
	dkim_append_b(&seal, sig, (size_t)sl);
	/* in at start: ARC-Seal, ARC-Message-Signature, ARC-A-R, the rest */
	struct buf all;
	buf_init(&all);
	buf_append(&all, seal.data, seal.len);
	buf_append(&all, ams.data, ams.len);
	buf_append(&all, aar.data, aar.len);
	buf_append(&all, text, len);
	msg->len = start;
	buf_append(msg, all.data, all.len);
	buf_clear(&all);
	rc = 1;
out:
	if (rc < 0)
		(void)snprintf(why, whysz, "ARC: the key of %s._domainkey.%s "
		    "cannot sign", as->selector, as->domain);
	free(f);
	buf_clear(&aar);
	buf_clear(&ams);
	buf_clear(&seal);
	buf_clear(&tosign);
	return rc;
}
