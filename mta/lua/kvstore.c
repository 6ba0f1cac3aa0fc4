/* SPDX-License-Identifier: ISC */
/*
 * kvstore.c - layer 2 (kvstore.h). A chained hash table. The snapshot is
 * one entry per line, "expires<TAB>key<TAB>value", with backslash escapes
 * for tab, newline and backslash, so any byte string survives. Expired
 * entries are dropped lazily on access, when the table is full, and from
 * snapshots.
 */
#include "lua/kvstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

struct kv_entry {
	char *key;
	char *value;
	int64_t expires;
	struct kv_entry *next;
};

struct kvstore {
	struct kv_entry **buckets;
	size_t nbuckets;
	size_t count;
	size_t max;
	bool dirty;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct kv_entry **
find(struct kvstore *kv, const char *key)
{
	struct kv_entry **pp = &kv->buckets[hash(key) % kv->nbuckets];

	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}

static void
entry_free(struct kv_entry *e)
{
	free(e->key);
	free(e->value);
	free(e);
}

static void
unlink_entry(struct kvstore *kv, struct kv_entry **pp)
{
	struct kv_entry *e = *pp;

	*pp = e->next;
	entry_free(e);
	kv->count--;
	kv->dirty = true;
}

static void
expire_all(struct kvstore *kv, int64_t now)
{
	for (size_t i = 0; i < kv->nbuckets; i++)
		for (struct kv_entry **pp = &kv->buckets[i]; *pp;) {
			if ((*pp)->expires && (*pp)->expires <= now)
				unlink_entry(kv, pp);
			else
				pp = &(*pp)->next;
		}
}

static struct kv_entry *
lookup(struct kvstore *kv, const char *key, int64_t now)
{
	struct kv_entry **pp = find(kv, key);

	if (*pp && (*pp)->expires && (*pp)->expires <= now) {
		unlink_entry(kv, pp);
		return NULL;
	}
	return *pp;
}

const char *
kvstore_get(struct kvstore *kv, const char *key, int64_t now)
{
	struct kv_entry *e = lookup(kv, key, now);

	return e ? e->value : NULL;
}

static struct kv_entry *
insert(struct kvstore *kv, const char *key, int64_t now)
{
	struct kv_entry *e;

	if (kv->count >= kv->max) {
		expire_all(kv, now);
		if (kv->count >= kv->max)
			return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	struct kv_entry **pp = &kv->buckets[hash(key) % kv->nbuckets];
	e->next = *pp;
	*pp = e;
	kv->count++;
	return e;
}

int
kvstore_set(struct kvstore *kv, const char *key, const char *value,
    int64_t expires, int64_t now)
{
	struct kv_entry *e = lookup(kv, key, now);

	if (e == NULL && (e = insert(kv, key, now)) == NULL)
		return -1;
	free(e->value);
	e->value = xstrdup(value);
	e->expires = expires;
	kv->dirty = true;
	return 0;
}

int
kvstore_incr(struct kvstore *kv, const char *key, int64_t delta,
    int64_t expires, int64_t now, int64_t *out)
{
	struct kv_entry *e = lookup(kv, key, now);
	char num[32];
	int64_t v = 0;

	if (e == NULL) {
		if ((e = insert(kv, key, now)) == NULL)
			return -1;
		e->expires = expires;
	} else
		v = strtoll(e->value, NULL, 10);
	v += delta;
	(void)snprintf(num, sizeof(num), "%lld", (long long)v);
	free(e->value);
	e->value = xstrdup(num);
	kv->dirty = true;
	*out = v;
	return 0;
}

void
kvstore_del(struct kvstore *kv, const char *key)
{
	struct kv_entry **pp = find(kv, key);

	if (*pp)
		unlink_entry(kv, pp);
}

size_t
kvstore_count(const struct kvstore *kv)
{
	return kv->count;
}

bool
kvstore_dirty(const struct kvstore *kv)
{
	return kv->dirty;
}

static void
put_escaped(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\t')
			buf_append(out, "\\t", 2);
		else if (*s == '\n')
			buf_append(out, "\\n", 2);
		else if (*s == '\\')
			buf_append(out, "\\\\", 2);
		else
			buf_append_char(out, *s);
	}
}

void
kvstore_snapshot(struct kvstore *kv, struct buf *out, int64_t now)
{
	buf_append_str(out, "tern-kv: 1\n");
	for (size_t i = 0; i < kv->nbuckets; i++)
		for (struct kv_entry *e = kv->buckets[i]; e; e = e->next) {
			if (e->expires && e->expires <= now)
				continue;
			buf_printf(out, "%lld\t", (long long)e->expires);
			put_escaped(out, e->key);
			buf_append_char(out, '\t');
			put_escaped(out, e->value);
			buf_append_char(out, '\n');
		}
	kv->dirty = false;
}

/* Unescapes s[0..n) into a new string. */
static char *
unescape(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
			out[k++] = s[i] == 't' ? '\t' : s[i] == 'n' ? '\n' : s[i];
		} else
			out[k++] = s[i];
	}
	out[k] = '\0';
	return out;
}

static void
load_text(struct kvstore *kv, char *text, int64_t now)
{
	char *line = text, *nl;

	if (strncmp(text, "tern-kv: 1\n", 11) != 0)
		return;
	line += 11;
	for (; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		char *t1 = memchr(line, '\t', (size_t)(nl - line));
		char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(nl - t1 - 1)) :
		    NULL;
		if (t2 == NULL)
			continue;
		int64_t exp = strtoll(line, NULL, 10);
		if (exp && exp <= now)
			continue;
		char *k = unescape(t1 + 1, (size_t)(t2 - t1 - 1));
		char *v = unescape(t2 + 1, (size_t)(nl - t2 - 1));
		(void)kvstore_set(kv, k, v, exp, now);
		free(k);
		free(v);
	}
}

struct kvstore *
kvstore_new(size_t max_entries)
{
	struct kvstore *kv = xcalloc(1, sizeof(*kv));

	kv->max = max_entries;
	kv->nbuckets = 4096;
	kv->buckets = xcalloc(kv->nbuckets, sizeof(*kv->buckets));
	return kv;
}

int
kvstore_load(struct kvstore *kv, const char *path, int64_t now, char *err,
    size_t errsz)
{
	struct buf text;
	char chunk[8192];
	size_t n;
	FILE *fp = fopen(path, "re");

	if (fp == NULL) {
		if (errno == ENOENT)
			return 0;
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf_init(&text);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&text, chunk, n);
	fclose(fp);
	if (text.data)
		load_text(kv, text.data, now);
	buf_clear(&text);
	kv->dirty = false;
	return 0;
}

void
kvstore_free(struct kvstore *kv)
{
	if (kv == NULL)
		return;
	for (size_t i = 0; i < kv->nbuckets; i++) {
		struct kv_entry *e, *next;
		for (e = kv->buckets[i]; e; e = next) {
			next = e->next;
			entry_free(e);
		}
	}
	free(kv->buckets);
	free(kv);
}

int
kvstore_write_file(const char *path, const char *data, size_t len)
{
	char tmp[4096];
	int fd;

	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", path) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return -1;
		}
		data += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}
