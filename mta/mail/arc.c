/* SPDX-License-Identifier: ISC */
/*
 * arc.c - layer 1 (pure): ARC sets, seals and the texts they sign
 * (arc.h).
 */
#include "mail/arc.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

const char *
arc_cv_name(enum arc_cv cv)
{
	static const char *const names[] = { "none", "pass", "fail" };

	return names[cv];
}

static bool
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
named(const struct dkim_field *f, const char *name)
{
	size_t l = strlen(name);

	return f->nlen == l && ascii_strncaseeq(f->p, name, l);
}

/* A field's value: after its colon. */
static const char *
value(const struct dkim_field *f, size_t *len)
{
	const char *colon = memchr(f->p, ':', f->len);

	if (colon == NULL) {
		*len = 0;
		return f->p + f->len;
	}
	*len = f->len - (size_t)(colon + 1 - f->p);
	return colon + 1;
}

/* 1..50 from up to two digits, else -1 */
static int
instance_of(const char *s, size_t len)
{
	if (len == 0 || len > 2)
		return -1;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= ARC_INSTANCE_MAX ? v : -1;
}

int
arc_aar_instance(const char *val, size_t len, size_t *rest)
{
	size_t i = 0, a;

	while (i < len && is_fws((unsigned char)val[i]))
		i++;
	if (i >= len || (val[i] | 32) != 'i')
		return -1;
	for (i++; i < len && is_fws((unsigned char)val[i]); i++)
		;
	if (i >= len || val[i] != '=')
		return -1;
	for (i++; i < len && is_fws((unsigned char)val[i]); i++)
		;
	for (a = i; i < len && val[i] >= '0' && val[i] <= '9'; i++)
		;
	int v = instance_of(val + a, i - a);
	while (i < len && is_fws((unsigned char)val[i]))
		i++;
	if (v < 0 || i >= len || val[i] != ';')
		return -1;
	*rest = i + 1;
	return v;
}

/* The i= of a tag list (AMS, AS), or -1. */
static int
tags_instance(const char *val, size_t len)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	const struct dkim_tag *v;
	size_t n;

	if (dkim_tags_parse(val, len, t, DKIM_TAGS_MAX, &n) != 0 ||
	    (v = dkim_tag_find(t, n, "i")) == NULL)
		return -1;
	return instance_of(v->val, v->vlen);
}

int
arc_field_instance(const struct dkim_field *f)
{
	size_t vl, rest;
	const char *v = value(f, &vl);

	if (named(f, "arc-authentication-results"))
		return arc_aar_instance(v, vl, &rest);
	if (named(f, "arc-message-signature") || named(f, "arc-seal"))
		return tags_instance(v, vl);
	return 0;
}

#define NONE ((size_t)-1)

int
arc_sets(const struct dkim_field *f, size_t nf, struct arc_set *sets,
    unsigned *n, const char **why)
{
	unsigned top = 0;

	*n = 0;
	for (unsigned k = 0; k < ARC_INSTANCE_MAX; k++)
		sets[k] = (struct arc_set){ NONE, NONE, NONE };
	for (size_t i = 0; i < nf; i++) {
		size_t *slot;
		int inst = arc_field_instance(&f[i]);
		if (inst == 0)
			continue;
		if (inst < 0) {
			*why = "an ARC field has no instance from 1 to 50";
			return -1;
		}
		struct arc_set *s = &sets[inst - 1];
		slot = f[i].nlen == 26 ? &s->aar : f[i].nlen == 21 ? &s->ams :
		    &s->as;
		if (*slot != NONE) {
			*why = "two ARC fields of one kind for one instance";
			return -1;
		}
		*slot = i;
		if ((unsigned)inst > top)
			top = (unsigned)inst;
	}
	for (unsigned k = 0; k < top; k++)
		if (sets[k].aar == NONE || sets[k].ams == NONE ||
		    sets[k].as == NONE) {
			*why = "an ARC set is incomplete or missing";
			return -1;
		}
	*n = top;
	return 0;
}

static bool
tag_is(const struct dkim_tag *t, const char *v)
{
	return t && t->vlen == strlen(v) && strncmp(t->val, v, t->vlen) == 0;
}

/* a tag's value, lower case, as a domain-ish name into out */
static bool
copy_name(const struct dkim_tag *t, char *out, size_t outsz)
{
	if (t == NULL || t->vlen == 0 || t->vlen >= outsz)
		return false;
	for (size_t i = 0; i < t->vlen; i++) {
		int c = (unsigned char)t->val[i];
		if (!((c | 32) >= 'a' && (c | 32) <= 'z') && !(c >= '0' &&
		    c <= '9') && c != '-' && c != '.' && c != '_')
			return false;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c | 32 : c);
	}
	out[t->vlen] = '\0';
	return out[0] != '.' && out[t->vlen - 1] != '.' && !strstr(out, "..");
}

int
arc_seal_parse(const char *val, size_t len, struct arc_seal *as,
    const char **why)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	const struct dkim_tag *v;
	size_t n;
	int bl;

	memset(as, 0, sizeof(*as));
	as->t = -1;
	if (dkim_tags_parse(val, len, t, DKIM_TAGS_MAX, &n) != 0) {
		*why = "the ARC-Seal is not a tag list";
		return -1;
	}
	if (dkim_tag_find(t, n, "h")) {
		*why = "the ARC-Seal has h=";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "i")) == NULL ||
	    (bl = instance_of(v->val, v->vlen)) < 0) {
		*why = "the ARC-Seal has no instance";
		return -1;
	}
	as->i = (unsigned)bl;
	v = dkim_tag_find(t, n, "a");
	if (tag_is(v, "rsa-sha256"))
		as->alg = DKIM_RSA_SHA256;
	else if (tag_is(v, "ed25519-sha256"))
		as->alg = DKIM_ED25519_SHA256;
	else {
		*why = "the ARC-Seal's algorithm is unknown";
		return -1;
	}
	v = dkim_tag_find(t, n, "cv");
	if (tag_is(v, "none"))
		as->cv = ARC_CV_NONE;
	else if (tag_is(v, "pass"))
		as->cv = ARC_CV_PASS;
	else if (tag_is(v, "fail"))
		as->cv = ARC_CV_FAIL;
	else {
		*why = "the ARC-Seal's cv= is missing or unknown";
		return -1;
	}
	if (!copy_name(dkim_tag_find(t, n, "d"), as->d, sizeof(as->d)) ||
	    !copy_name(dkim_tag_find(t, n, "s"), as->s, sizeof(as->s))) {
		*why = "the ARC-Seal's d= or s= is bad or missing";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "b")) == NULL ||
	    (bl = dkim_b64_decode(v->val, v->vlen, as->b, sizeof(as->b))) <=
	    0) {
		*why = "the ARC-Seal's b= is bad or missing";
		return -1;
	}
	as->blen = (size_t)bl;
	if ((v = dkim_tag_find(t, n, "t"))) {
		int64_t x = 0;
		if (v->vlen == 0 || v->vlen > 12) {
			*why = "the ARC-Seal's t= is bad";
			return -1;
		}
		for (size_t i = 0; i < v->vlen; i++) {
			if (v->val[i] < '0' || v->val[i] > '9') {
				*why = "the ARC-Seal's t= is bad";
				return -1;
			}
			x = x * 10 + (v->val[i] - '0');
		}
		as->t = x;
	}
	return 0;
}

void
arc_seal_text(const struct dkim_field *fields, unsigned n, struct buf *out)
{
	if (n == 0)
		return;
	for (unsigned k = 0; k + 1 < 3 * n; k++)
		dkim_canon_field(DKIM_RELAXED, fields[k].p, fields[k].len,
		    fields[k].nlen, out);
	const struct dkim_field *last = &fields[3 * n - 1];
	/* the seal itself: b= out, no CRLF at its end (as DKIM's own) */
	dkim_signed_text(NULL, 0, -1, DKIM_RELAXED, NULL, 0, last->p,
	    last->len, out);
}

void
arc_seal_field(enum dkim_alg alg, unsigned i, enum arc_cv cv,
    const char *domain, const char *selector, int64_t t, struct buf *out)
{
	buf_printf(out, "ARC-Seal: i=%u; a=%s; cv=%s;\n\td=%s; s=%s;\n\t"
	    "t=%lld; b=", i, alg == DKIM_RSA_SHA256 ? "rsa-sha256" :
	    "ed25519-sha256", arc_cv_name(cv), domain, selector, (long long)t);
}
