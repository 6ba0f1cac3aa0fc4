/* SPDX-License-Identifier: ISC */
/*
 * dovecot.c - layer 1 (pure): dovecot-uidlist, dovecot-keywords and
 * subscriptions as text (dovecot.h). Called by the store on a worker
 * thread with a file's contents; never reads or writes a file itself.
 * Values come from disk written by Tern, Dovecot or Courier: every
 * number is range-checked, every line bounded, nothing trusted.
 */
#include "store/dovecot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define UIDLIST_RECS_MAX 10000000   /* a folder of ten million messages */

void
uidlist_init(struct uidlist *ul)
{
	memset(ul, 0, sizeof(*ul));
}

void
uidlist_clear(struct uidlist *ul)
{
	for (size_t i = 0; i < ul->n; i++) {
		free(ul->recs[i].fields);
		free(ul->recs[i].name);
	}
	free(ul->recs);
	free(ul->extra);
	uidlist_init(ul);
}

/* A decimal uint32 at s[0..n); false if not exactly that. */
static bool
get_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v;

	if (n == 0 || n > 10 || parse_u64(s, n, &v) != 0 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool
is_hex32(const char *s, size_t n)
{
	if (n != 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static void
append_field(char **dst, const char *s, size_t n)
{
	char *old = *dst;

	*dst = old ? xasprintf("%s %.*s", old, (int)n, s) :
	    xstrndup(s, n);
	free(old);
}

static int
header_v3(const char *l, size_t len, struct uidlist *ul)
{
	size_t i = 1;
	bool have_v = false;

	while (i < len) {
		while (i < len && l[i] == ' ')
			i++;
		size_t s = i;
		while (i < len && l[i] != ' ')
			i++;
		if (i == s)
			break;
		const char *f = l + s;
		size_t fn = i - s;
		if (f[0] == 'V' && get_u32(f + 1, fn - 1, &ul->uidvalidity))
			have_v = true;
		else if (f[0] == 'N' && get_u32(f + 1, fn - 1, &ul->next_uid))
			;
		else if (f[0] == 'G' && is_hex32(f + 1, fn - 1))
			memcpy(ul->guid, f + 1, 32);
		else
			append_field(&ul->extra, f, fn);
	}
	return have_v && ul->uidvalidity != 0 ? 0 : -1;
}

static int
header_v1(const char *l, size_t len, struct uidlist *ul)
{
	/* "1 <uidvalidity> <nextuid>" */
	if (len < 5 || l[1] != ' ')
		return -1;
	const char *a = l + 2, *end = l + len;
	const char *sp = memchr(a, ' ', (size_t)(end - a));

	if (sp == NULL)
		return -1;
	if (!get_u32(a, (size_t)(sp - a), &ul->uidvalidity) ||
	    !get_u32(sp + 1, (size_t)(end - sp - 1), &ul->next_uid) ||
	    ul->uidvalidity == 0)
		return -1;
	return 0;
}

/* One record line; bad lines are skipped (the file is found by name). */
static void
record(const char *l, size_t len, struct uidlist *ul)
{
	size_t i = 0;
	uint32_t uid;

	while (i < len && l[i] >= '0' && l[i] <= '9')
		i++;
	if (!get_u32(l, i, &uid) || uid == 0 || i >= len || l[i] != ' ')
		return;
	const char *rest = l + i + 1;
	size_t rn = len - i - 1;
	const char *name = NULL, *fields = NULL;
	size_t nn = 0, fn = 0;
	if (ul->version == 1) {
		name = rest;
		nn = rn;
	} else {
		/* fields up to a token starting with ':'; the name after it */
		size_t k = 0;
		while (k < rn) {
			if (rest[k] == ':' && (k == 0 || rest[k - 1] == ' ')) {
				name = rest + k + 1;
				nn = rn - k - 1;
				break;
			}
			k++;
		}
		if (name == NULL)
			return;
		fields = rest;
		fn = k;
		while (fn > 0 && fields[fn - 1] == ' ')
			fn--;
	}
	/* the info part, if a writer left it in */
	const char *colon = memchr(name, ':', nn);
	if (colon)
		nn = (size_t)(colon - name);
	if (nn == 0 || nn > 255 || memchr(name, '/', nn) || name[0] == '.')
		return;
	if (ul->n >= UIDLIST_RECS_MAX)
		return;
	if (ul->n == ul->cap) {
		ul->cap = ul->cap ? ul->cap * 2 : 64;
		ul->recs = xreallocarray(ul->recs, ul->cap, sizeof(*ul->recs));
	}
	struct uidlist_rec *r = &ul->recs[ul->n++];
	r->uid = uid;
	r->name = xstrndup(name, nn);
	r->fields = fn > 0 ? xstrndup(fields, fn) : NULL;
}

static int
cmp_rec(const void *a, const void *b)
{
	const struct uidlist_rec *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int
uidlist_parse(const char *text, size_t len, struct uidlist *ul, char *err,
    size_t errsz)
{
	size_t pos = 0;
	bool first = true;
	bool sorted = true;

	uidlist_clear(ul);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *l = text + pos;
		size_t ln = end - pos;
		pos = nl ? end + 1 : len;
		if (ln > 0 && l[ln - 1] == '\r')
			ln--;
		if (first) {
			first = false;
			int rc = -1;
			if (ln >= 1 && l[0] == '3' && (ln == 1 || l[1] == ' ')) {
				ul->version = 3;
				rc = header_v3(l, ln, ul);
			} else if (ln >= 1 && l[0] == '1') {
				ul->version = 1;
				rc = header_v1(l, ln, ul);
			}
			if (rc != 0) {
				(void)snprintf(err, errsz, "unknown or broken "
				    "dovecot-uidlist header");
				uidlist_clear(ul);
				return -1;
			}
			continue;
		}
		if (ln == 0)
			continue;
		/* an unfinished last line is a torn append, not a record */
		if (nl == NULL)
			break;
		size_t before = ul->n;
		record(l, ln, ul);
		if (ul->n > before && before > 0 &&
		    ul->recs[before].uid <= ul->recs[before - 1].uid)
			sorted = false;
	}
	if (first) {
		(void)snprintf(err, errsz, "empty dovecot-uidlist");
		return -1;
	}
	if (!sorted) {
		/* stable enough: equal uids keep the first one below */
		qsort(ul->recs, ul->n, sizeof(*ul->recs), cmp_rec);
		size_t w = 0;
		for (size_t r = 0; r < ul->n; r++) {
			if (w > 0 && ul->recs[r].uid == ul->recs[w - 1].uid) {
				free(ul->recs[r].name);
				free(ul->recs[r].fields);
				continue;
			}
			ul->recs[w++] = ul->recs[r];
		}
		ul->n = w;
	}
	return 0;
}

uint32_t
uidlist_next_uid(const struct uidlist *ul)
{
	uint32_t next = ul->next_uid;

	if (ul->n > 0 && ul->recs[ul->n - 1].uid >= next)
		next = ul->recs[ul->n - 1].uid + 1;
	return next == 0 ? 1 : next;
}

void
uidlist_add(struct uidlist *ul, uint32_t uid, const char *name,
    const char *fields)
{
	if (ul->n == ul->cap) {
		ul->cap = ul->cap ? ul->cap * 2 : 64;
		ul->recs = xreallocarray(ul->recs, ul->cap, sizeof(*ul->recs));
	}
	struct uidlist_rec *r = &ul->recs[ul->n++];
	r->uid = uid;
	r->name = xstrdup(name);
	r->fields = fields && *fields ? xstrdup(fields) : NULL;
	if (uid >= ul->next_uid)
		ul->next_uid = uid + 1;
}

void
uidlist_serialize(const struct uidlist *ul, struct buf *out)
{
	buf_printf(out, "3 V%u N%u", ul->uidvalidity, uidlist_next_uid(ul));
	if (ul->guid[0])
		buf_printf(out, " G%s", ul->guid);
	if (ul->extra)
		buf_printf(out, " %s", ul->extra);
	buf_append_char(out, '\n');
	for (size_t i = 0; i < ul->n; i++) {
		const struct uidlist_rec *r = &ul->recs[i];
		if (r->fields)
			buf_printf(out, "%u %s :%s\n", r->uid, r->fields,
			    r->name);
		else
			buf_printf(out, "%u :%s\n", r->uid, r->name);
	}
}

/* --- dovecot-keywords ------------------------------------------------- */

void
keywords_init(struct keywords *kw)
{
	memset(kw, 0, sizeof(*kw));
}

void
keywords_clear(struct keywords *kw)
{
	for (int i = 0; i < KEYWORDS_MAX; i++)
		free(kw->names[i]);
	keywords_init(kw);
}

bool
keywords_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > KEYWORD_LEN_MAX || name[0] == '\\')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		/* atom-specials (RFC 9051 9) and ']' are not allowed */
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c))
			return false;
	}
	return true;
}

void
keywords_parse(const char *text, size_t len, struct keywords *kw)
{
	size_t pos = 0;

	keywords_clear(kw);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *l = text + pos;
		size_t ln = end - pos;
		pos = nl ? end + 1 : len;
		const char *sp = memchr(l, ' ', ln);
		uint32_t idx;
		if (sp == NULL || !get_u32(l, (size_t)(sp - l), &idx) ||
		    idx >= KEYWORDS_MAX || kw->names[idx])
			continue;
		char *name = xstrndup(sp + 1, ln - (size_t)(sp - l) - 1);
		if (!keywords_valid(name) || keywords_find(kw, name) >= 0) {
			free(name);
			continue;
		}
		kw->names[idx] = name;
	}
}

void
keywords_serialize(const struct keywords *kw, struct buf *out)
{
	for (int i = 0; i < KEYWORDS_MAX; i++)
		if (kw->names[i])
			buf_printf(out, "%d %s\n", i, kw->names[i]);
}

int
keywords_find(const struct keywords *kw, const char *name)
{
	for (int i = 0; i < KEYWORDS_MAX; i++)
		if (kw->names[i] && ascii_strcaseeq(kw->names[i], name))
			return i;
	return -1;
}

int
keywords_add(struct keywords *kw, const char *name)
{
	int i = keywords_find(kw, name);

	if (i >= 0)
		return i;
	if (!keywords_valid(name))
		return -1;
	for (i = 0; i < KEYWORDS_MAX; i++)
		if (kw->names[i] == NULL) {
			kw->names[i] = xstrdup(name);
			return i;
		}
	return -1;
}

/* --- subscriptions ---------------------------------------------------- */

void
subscriptions_parse(const char *text, size_t len, subscriptions_cb cb,
    void *arg)
{
	size_t pos = 0;
	bool v2 = len >= 4 && memcmp(text, "V\t2\n", 4) == 0;

	if (v2)
		pos = 4;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t ln = end - pos;
		if (ln > 0 && ln < 1024) {
			char *name = xstrndup(text + pos, ln);
			if (v2)
				for (char *p = name; *p; p++)
					if (*p == '\t')
						*p = '/';
			if (memchr(name, '\0', ln) == NULL && name[0] != '/')
				cb(arg, name);
			free(name);
		}
		pos = nl ? end + 1 : len;
	}
}

void
subscriptions_serialize(const char *const *names, size_t n, struct buf *out)
{
	buf_append_str(out, "V\t2\n\n");
	for (size_t i = 0; i < n; i++) {
		for (const char *p = names[i]; *p; p++)
			buf_append_char(out, *p == '/' ? '\t' : *p);
		buf_append_char(out, '\n');
	}
}
