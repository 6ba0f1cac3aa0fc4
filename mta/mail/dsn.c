/* SPDX-License-Identifier: ISC */
/*
 * dsn.c - layer 1 (pure): RFC 3461 parameters and xtext (dsn.h).
 */
#include "mail/dsn.h"

#include <string.h>

#include "base/util.h"

static const struct {
	const char *name;
	unsigned bit;
} notify_words[] = {
	{ "SUCCESS", DSN_NOTIFY_SUCCESS },
	{ "FAILURE", DSN_NOTIFY_FAILURE },
	{ "DELAY", DSN_NOTIFY_DELAY },
	{ "NEVER", DSN_NOTIFY_NEVER },
};

#define NWORDS (sizeof(notify_words) / sizeof(notify_words[0]))

int
dsn_notify_parse(const char *s, unsigned *mask)
{
	unsigned m = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (;;) {
		size_t n = strcspn(s, ",");
		unsigned bit = 0;
		for (size_t i = 0; i < NWORDS && bit == 0; i++)
			if (strlen(notify_words[i].name) == n &&
			    ascii_strncaseeq(s, notify_words[i].name, n))
				bit = notify_words[i].bit;
		if (bit == 0 || (m & bit))
			return -1;
		m |= bit;
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	/* RFC 3461 4.1: NEVER stands alone */
	if ((m & DSN_NOTIFY_NEVER) && m != DSN_NOTIFY_NEVER)
		return -1;
	*mask = m;
	return 0;
}

void
dsn_notify_format(unsigned mask, char *dst, size_t dstsz)
{
	size_t len = 0;

	if (dstsz == 0)
		return;
	dst[0] = '\0';
	for (size_t i = 0; i < NWORDS; i++) {
		if (!(mask & notify_words[i].bit))
			continue;
		const char *w = notify_words[i].name;
		size_t wl = strlen(w) + (len > 0);
		if (len + wl + 1 > dstsz)
			return;
		if (len > 0)
			dst[len++] = ',';
		memcpy(dst + len, w, strlen(w) + 1);
		len += strlen(w);
	}
}

bool
dsn_notify_wants(unsigned mask, unsigned kind)
{
	if (mask == 0) /* RFC 3461 4.1: as FAILURE,DELAY */
		return kind == DSN_NOTIFY_FAILURE || kind == DSN_NOTIFY_DELAY;
	return (mask & kind) != 0;
}

int
dsn_ret_parse(const char *s, enum dsn_ret *ret)
{
	if (s && ascii_strcaseeq(s, "FULL"))
		*ret = DSN_RET_FULL;
	else if (s && ascii_strcaseeq(s, "HDRS"))
		*ret = DSN_RET_HDRS;
	else
		return -1;
	return 0;
}

const char *
dsn_ret_name(enum dsn_ret ret)
{
	return ret == DSN_RET_FULL ? "FULL" : ret == DSN_RET_HDRS ? "HDRS" :
	    "";
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;   /* RFC 3461 4: upper-case hex only */
}

/* xchar: "!" through "~" other than "+" and "=" */
static bool
is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

int
xtext_decode(const char *s, size_t len, char *dst, size_t dstsz,
    size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			if (i + 2 >= len)
				return -1;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (!is_xchar(c))
			return -1;
		if (o + 1 >= dstsz)
			return -1;
		dst[o++] = (char)c;
	}
	if (dstsz == 0)
		return -1;
	dst[o] = '\0';
	if (outlen)
		*outlen = o;
	return 0;
}

void
xtext_encode(const char *s, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_xchar(c))
			buf_append_char(out, (char)c);
		else {
			buf_append_char(out, '+');
			buf_append_char(out, hex[c >> 4]);
			buf_append_char(out, hex[c & 15]);
		}
	}
}

bool
dsn_envid_valid(const char *s)
{
	char d[DSN_ENVID_MAX + 1];
	size_t n;

	if (s == NULL || *s == '\0' ||
	    xtext_decode(s, strlen(s), d, sizeof(d), &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] < 32 || (unsigned char)d[i] > 126)
			return false;
	return true;
}

/* RFC 5322 atext */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int
dsn_orcpt_decode(const char *s, char *dst, size_t dstsz)
{
	const char *semi;
	size_t tlen, n;

	if (s == NULL || strlen(s) > DSN_ORCPT_MAX ||
	    (semi = strchr(s, ';')) == NULL || semi == s)
		return -1;
	tlen = (size_t)(semi - s);
	for (size_t i = 0; i < tlen; i++)
		if (!is_atext((unsigned char)s[i]))
			return -1;
	if (tlen + 2 > dstsz)
		return -1;
	memcpy(dst, s, tlen + 1);   /* "type;" */
	if (xtext_decode(semi + 1, strlen(semi + 1), dst + tlen + 1,
	    dstsz - tlen - 1, &n) != 0 || n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)dst[tlen + 1 + i];
		if (c < 32 || c == 127)
			return -1;
	}
	return 0;
}

bool
dsn_orcpt_valid(const char *s)
{
	char d[DSN_ORCPT_MAX + 1];

	return dsn_orcpt_decode(s, d, sizeof(d)) == 0;
}

void
dsn_orcpt_make(const char *addr, size_t len, struct buf *out)
{
	buf_append_str(out, "rfc822;");
	xtext_encode(addr, len, out);
}
