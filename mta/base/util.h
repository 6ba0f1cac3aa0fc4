/* SPDX-License-Identifier: ISC */
/*
 * util.h - layer 0: allocation that never returns NULL, bounded string
 * helpers that report truncation, and small pure helpers shared by every
 * layer. No I/O, no clock.
 */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define TERN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Abort the process: a broken invariant, never a peer's doing. */
#define TERN_ASSERT(c)                                                         \
	do {                                                                   \
		if (!(c))                                                      \
			tern_assert_fail(#c, __FILE__, __LINE__);              \
	} while (0)

void tern_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn));

/* Allocation: these abort on out-of-memory and never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns an owned, formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Bounded copies and formats: return 0 on success, -1 if the result did not
 * fit (dst then holds a truncated, NUL-terminated string).
 */
int str_copy(char *dst, size_t dstsz, const char *src);
int str_fmt(char *dst, size_t dstsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ASCII-only case helpers (locale independent). */
int ascii_tolower(int c);
bool ascii_strcaseeq(const char *a, const char *b);
bool ascii_strncaseeq(const char *a, const char *b, size_t n);
void ascii_lower(char *s);

/* The value of a base64 digit (RFC 4648 4), or -1. */
int b64_digit(int c);

/* Parse a decimal unsigned number of the whole string; -1 on junk/overflow. */
int parse_u64(const char *s, size_t len, uint64_t *out);

/*
 * An error as the mail path reports it: temporary or permanent, the SMTP
 * reply code and enhanced status to send or record, and a short text.
 * Classified where it happens (errno -> 4.x/5.x), carried up unchanged.
 */
struct tern_err {
	bool temp;
	int code;
	char enh[12];
	char text[200];
};

void tern_err_set(struct tern_err *err, int code, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A set of 64-bit values, for up to n of them (open addressing). */
struct u64set {
	uint64_t *k;              /* 0: free (a 0 is kept as 1) */
	size_t cap;
};
void u64set_init(struct u64set *s, size_t n);
/* Adds v; true if it was not there yet. */
bool u64set_add(struct u64set *s, uint64_t v);
void u64set_clear(struct u64set *s);

/*
 * An IP address as text (s[0..len): dotted IPv4, or IPv6 with "::" and
 * a dotted tail) into out: 0 with *v6 said, or -1. IPv4 fills 4 octets.
 */
int ip_parse(const char *s, size_t len, unsigned char out[16], bool *v6);
#endif
