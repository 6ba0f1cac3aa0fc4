/* SPDX-License-Identifier: ISC */
/*
 * util.c - layer 0. Allocation wrappers that abort on out-of-memory (a mail
 * server that cannot allocate a few bytes cannot keep its promises, so it
 * stops loudly; Lua's allocator is the one exception, see hooks.c), bounded
 * string helpers that report truncation, ASCII case helpers.
 */
#include "base/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
tern_assert_fail(const char *expr, const char *file, int line)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "tern: assertion failed: %s (%s:%d)\n",
	    expr, file, line);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ?
		    (size_t)n : sizeof(msg) - 1);
	abort();
}

static void __attribute__((noreturn))
oom(void)
{
	static const char msg[] = "tern: out of memory\n";
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom();
	return q;
}

void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		oom();
	return xrealloc(p, nmemb * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

int
str_copy(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);

	if (dstsz == 0)
		return -1;
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int
str_fmt(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= dstsz)
		return -1;
	return 0;
}

int
b64_digit(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
ascii_tolower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

bool
ascii_strncaseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ascii_tolower((unsigned char)a[i]) !=
		    ascii_tolower((unsigned char)b[i]))
			return false;
		if (a[i] == '\0')
			return true;
	}
	return true;
}

bool
ascii_strcaseeq(const char *a, const char *b)
{
	for (;; a++, b++) {
		if (ascii_tolower((unsigned char)*a) !=
		    ascii_tolower((unsigned char)*b))
			return false;
		if (*a == '\0')
			return true;
	}
}

void
ascii_lower(char *s)
{
	for (; *s; s++)
		*s = (char)ascii_tolower((unsigned char)*s);
}

int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

void
tern_err_set(struct tern_err *err, int code, const char *enh,
    const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	err->temp = code < 500;
	(void)str_copy(err->enh, sizeof(err->enh), enh);
	va_start(ap, fmt);
	(void)vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

void
u64set_init(struct u64set *s, size_t n)
{
	s->cap = 16;
	while (s->cap < n * 2)
		s->cap <<= 1;
	s->k = xcalloc(s->cap, sizeof(*s->k));
}

bool
u64set_add(struct u64set *s, uint64_t v)
{
	size_t i;

	v = v ? v : 1;
	i = (size_t)(v * 0x9e3779b97f4a7c15ull) & (s->cap - 1);
	while (s->k[i] && s->k[i] != v)
		i = (i + 1) & (s->cap - 1);
	if (s->k[i])
		return false;
	s->k[i] = v;
	return true;
}

void
u64set_clear(struct u64set *s)
{
	free(s->k);
	s->k = NULL;
	s->cap = 0;
}

static int
ip4_parse(const char *s, size_t len, unsigned char out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (unsigned)(s[i++] - '0');
			/* no leading zeros (an octal reading), nothing over 255 */
			if (++digits > 3 || v > 255 || (digits == 2 && v < 10))
				return -1;
		}
		if (digits == 0)
			return -1;
		out[part] = (unsigned char)v;
	}
	return i == len ? 0 : -1;
}

int
ip_parse(const char *s, size_t len, unsigned char out[16], bool *v6)
{
	unsigned char w[16];
	size_t n = 0, i = 0;
	ssize_t gap = -1;

	memset(out, 0, 16);
	if (memchr(s, ':', len) == NULL) {
		*v6 = false;
		return ip4_parse(s, len, out);
	}
	*v6 = true;
	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	} else if (len >= 1 && s[0] == ':')
		return -1;
	while (i < len) {
		size_t j = i;
		unsigned v = 0;
		while (j < len && j - i < 5 && isxdigit((unsigned char)s[j]))
			v = v << 4 | (unsigned)(isdigit((unsigned char)s[j]) ?
			    s[j] - '0' : (s[j] | 32) - 'a' + 10), j++;
		if (j < len && s[j] == '.') {
			/* a dotted IPv4 tail: the last 4 octets */
			if (n > 12 || ip4_parse(s + i, len - i, w + n) != 0)
				return -1;
			n += 4;
			i = len;
			break;
		}
		if (j == i || j - i > 4 || n > 14)
			return -1;
		w[n++] = (unsigned char)(v >> 8);
		w[n++] = (unsigned char)v;
		if (j == len) {
			i = j;
			break;
		}
		if (s[j] != ':')
			return -1;
		if (j + 1 < len && s[j + 1] == ':') {
			if (gap >= 0)
				return -1;
			gap = (ssize_t)n;
			i = j + 2;
		} else if (j + 1 == len)
			return -1;
		else
			i = j + 1;
	}
	if (gap < 0 ? n != 16 : n > 14)
		return -1;
	if (gap >= 0) {
		size_t tail = n - (size_t)gap;
		memcpy(out, w, (size_t)gap);
		memcpy(out + 16 - tail, w + gap, tail);
	} else
		memcpy(out, w, 16);
	return 0;
}
