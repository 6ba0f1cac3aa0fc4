/* SPDX-License-Identifier: ISC */
/*
 * jmap_state.c - layer 1: JMAP state strings (jmap_state.h).
 */
#include "http/jmap_state.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static int
cmp_ent(const void *x, const void *y)
{
	return strcmp(((const struct jstate_ent *)x)->id,
	    ((const struct jstate_ent *)y)->id);
}

static void
put36(struct buf *out, uint64_t v)
{
	char d[16];
	size_t n = 0;

	do {
		unsigned r = (unsigned)(v % 36);
		d[n++] = (char)(r < 10 ? '0' + r : 'a' + r - 10);
		v /= 36;
	} while (v);
	while (n)
		buf_append(out, &d[--n], 1);
}

void
jstate_format(char kind, struct jstate_ent *e, size_t n, struct buf *out)
{
	if (n > 1)
		qsort(e, n, sizeof(*e), cmp_ent);
	buf_append(out, &kind, 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_append(out, "_", 1);
		buf_append(out, e[i].id, strlen(e[i].id));
		buf_append(out, ".", 1);
		put36(out, e[i].modseq);
		buf_append(out, ".", 1);
		put36(out, e[i].extra);
	}
}

/* A base-36 number up to 2^63 at *p, which moves past it; -1 if none. */
static int
get36(const char **p, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z')))
		return -1;
	if (s[0] == '0' && ((s[1] >= '0' && s[1] <= '9') ||
	    (s[1] >= 'a' && s[1] <= 'z')))
		return -1;        /* as written: no leading zero */
	for (; (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z'); s++) {
		unsigned d = *s <= '9' ? (unsigned)(*s - '0') :
		    (unsigned)(*s - 'a' + 10);
		if (*v > (UINT64_MAX >> 1) / 36)
			return -1;
		*v = *v * 36 + d;
	}
	*p = s;
	return 0;
}

int
jstate_parse(char kind, const char *s, struct jstate_ent **e, size_t *n)
{
	size_t cap = 0;

	*e = NULL;
	*n = 0;
	if (s == NULL || s[0] != kind)
		return -1;
	for (s++; *s != '\0';) {
		if (*n > 0 && *s++ != '_')
			goto bad;
		size_t l = 0;
		while ((s[l] >= '0' && s[l] <= '9') ||
		    (s[l] >= 'a' && s[l] <= 'z') || (s[l] >= 'A' && s[l] <= 'Z'))
			l++;
		if (l == 0 || l >= JSTATE_ID_LEN || s[l] != '.')
			goto bad;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*e = xreallocarray(*e, cap, sizeof(**e));
		}
		struct jstate_ent *t = &(*e)[(*n)++];
		memcpy(t->id, s, l);
		t->id[l] = '\0';
		s += l + 1;
		if (get36(&s, &t->modseq) != 0 || *s++ != '.' ||
		    get36(&s, &t->extra) != 0)
			goto bad;
		/* ascending and unique: as jstate_format wrote it */
		if (*n > 1 && strcmp((*e)[*n - 2].id, t->id) >= 0)
			goto bad;
	}
	return 0;
bad:
	free(*e);
	*e = NULL;
	*n = 0;
	return -1;
}

const struct jstate_ent *
jstate_find(const struct jstate_ent *e, size_t n, const char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(e[mid].id, id);
		if (c == 0)
			return &e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
