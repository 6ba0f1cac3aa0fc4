/* SPDX-License-Identifier: ISC */
/*
 * dmarc.c - layer 1 (pure): DMARC's records, organizational domains and
 * alignment (dmarc.h).
 */
#include "mail/dmarc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/dkim.h"

struct psl {
	char **rules;             /* "com", "*.ck", "!www.ck"; sorted */
	size_t n;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct psl *
psl_parse(const char *text, size_t len)
{
	struct psl *p = xcalloc(1, sizeof(*p));
	size_t cap = 0, i = 0;

	while (i < len) {
		size_t j = i;
		while (j < len && text[j] != '\n')
			j++;
		/* a rule is the line up to white space; "//" a comment */
		size_t e = i;
		while (e < j && text[e] != ' ' && text[e] != '\t' &&
		    text[e] != '\r')
			e++;
		if (e > i && !(e - i >= 2 && text[i] == '/' && text[i + 1] ==
		    '/') && e - i < 254) {
			if (p->n == cap) {
				cap = cap ? cap * 2 : 1024;
				p->rules = xreallocarray(p->rules, cap,
				    sizeof(char *));
			}
			char *r = xstrndup(text + i, e - i);
			ascii_lower(r);
			p->rules[p->n++] = r;
		}
		i = j + 1;
	}
	if (p->n)
		qsort(p->rules, p->n, sizeof(char *), cmp_str);
	return p;
}

void
psl_free(struct psl *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->rules[i]);
	free(p->rules);
	free(p);
}

size_t
psl_rules(const struct psl *p)
{
	return p ? p->n : 0;
}

static bool
has(const struct psl *p, const char *prefix, const char *s)
{
	char key[300];
	const char *k = key;

	if (p->n == 0 || snprintf(key, sizeof(key), "%s%s", prefix, s) >=
	    (int)sizeof(key))
		return false;     /* an empty list (fuzz_dmarc): no bsearch */
	return bsearch(&k, p->rules, p->n, sizeof(char *), cmp_str) != NULL;
}

void
psl_org_domain(const struct psl *p, const char *d, char *out, size_t outsz)
{
	size_t off[128], n = 0, len = strlen(d);
	size_t ps = SIZE_MAX;     /* the label where the public suffix starts */

	for (size_t i = 0; i < len && n < 128; i++)
		if (i == 0 || d[i - 1] == '.')
			off[n++] = i;
	if (n == 0) {
		(void)snprintf(out, outsz, "%s", d);
		return;
	}
	for (size_t i = 0; p && i < n && ps == SIZE_MAX; i++) {
		if (has(p, "!", d + off[i]))
			ps = i + 1;        /* an exception: one label less */
		else if (has(p, "", d + off[i]) || (i + 1 < n &&
		    has(p, "*.", d + off[i + 1])))
			ps = i;
	}
	if (ps == SIZE_MAX)
		ps = n - 1;            /* the implicit rule "*" */
	if (ps == 0) {
		(void)snprintf(out, outsz, "%s", d);   /* a public suffix */
		return;
	}
	(void)snprintf(out, outsz, "%s", d + off[ps - 1]);
}

bool
dmarc_aligned(const struct psl *p, const char *a, const char *b, bool strict)
{
	char oa[256], ob[256];

	if (ascii_strcaseeq(a, b))
		return true;
	if (strict)
		return false;
	psl_org_domain(p, a, oa, sizeof(oa));
	psl_org_domain(p, b, ob, sizeof(ob));
	return ascii_strcaseeq(oa, ob);
}

static bool
tag_is(const struct dkim_tag *t, const char *v)
{
	return t && t->vlen == strlen(v) && ascii_strncaseeq(t->val, v,
	    t->vlen);
}

static int
policy(const struct dkim_tag *t, enum dmarc_policy *p)
{
	if (tag_is(t, "none"))
		*p = DMARC_P_NONE;
	else if (tag_is(t, "quarantine"))
		*p = DMARC_P_QUARANTINE;
	else if (tag_is(t, "reject"))
		*p = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

int
dmarc_record_parse(const char *txt, struct dmarc_record *r)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	const struct dkim_tag *v;
	size_t n;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	if (!ascii_strncaseeq(txt, "v=DMARC1", 8) ||
	    (txt[8] != '\0' && txt[8] != ';' && txt[8] != ' ' &&
	    txt[8] != '\t'))
		return 0;
	if (dkim_tags_parse(txt, strlen(txt), t, DKIM_TAGS_MAX, &n) != 0 ||
	    n == 0 || !tag_is(&t[0], "DMARC1"))
		return -1;
	v = dkim_tag_find(t, n, "p");
	if (v == NULL) {
		/* RFC 7489 6.6.3: with rua= it is p=none, else unusable */
		if (dkim_tag_find(t, n, "rua") == NULL)
			return -1;
		r->p = DMARC_P_NONE;
	} else if (policy(v, &r->p) != 0)
		return -1;
	r->sp = r->p;
	if ((v = dkim_tag_find(t, n, "sp")) && policy(v, &r->sp) != 0)
		r->sp = r->p;          /* a bad sp= is as none given */
	if ((v = dkim_tag_find(t, n, "pct"))) {
		uint64_t pct;
		if (parse_u64(v->val, v->vlen, &pct) == 0 && pct <= 100)
			r->pct = (unsigned)pct;
	}
	r->adkim_strict = tag_is(dkim_tag_find(t, n, "adkim"), "s");
	r->aspf_strict = tag_is(dkim_tag_find(t, n, "aspf"), "s");
	return 1;
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = { "none", "pass", "fail",
		"temperror", "permerror" };

	return names[r];
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = { "none", "quarantine", "reject" };

	return names[p];
}
