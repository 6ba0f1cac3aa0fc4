/* SPDX-License-Identifier: ISC */
/*
 * imap_utf7.c - layer 1 (pure): modified UTF-7 <-> UTF-8 (imap_utf7.h).
 * RFC 3501 5.1.3: printable US-ASCII but '&' stands for itself, "&-" is
 * '&', and "&" base64(UTF-16BE) "-" holds everything else, with ','
 * instead of '/' and no padding.
 */
#include "imap/imap_utf7.h"

#include <stdint.h>
#include <string.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

static void
put_utf8(struct buf *out, uint32_t cp)
{
	if (cp < 0x80)
		buf_append_char(out, (char)cp);
	else if (cp < 0x800) {
		buf_append_char(out, (char)(0xc0 | (cp >> 6)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_char(out, (char)(0xe0 | (cp >> 12)));
		buf_append_char(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_char(out, (char)(0xf0 | (cp >> 18)));
		buf_append_char(out, (char)(0x80 | ((cp >> 12) & 0x3f)));
		buf_append_char(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	}
}

int
imap_utf7_to_utf8(const char *s, struct buf *out)
{
	size_t mark = out->len;
	const char *shift_end = NULL;

	while (*s) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c > 0x7e)
			goto bad;
		if (c != '&') {
			buf_append_char(out, (char)c);
			s++;
			continue;
		}
		s++;
		if (*s == '-') {
			buf_append_char(out, '&');
			s++;
			continue;
		}
		/* two runs back to back are one run written as two: only
		 * one form may name a mailbox */
		if (s - 1 == shift_end)
			goto bad;
		/* a shifted run: 16-bit units from 6-bit digits */
		uint32_t bits = 0, high = 0;
		int nbits = 0;
		size_t units = 0;
		while (*s && *s != '-') {
			int v = b64_value(*s++);
			if (v < 0)
				goto bad;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			units++;
			if (high) {
				if (u < 0xdc00 || u > 0xdfff)
					goto bad;
				put_utf8(out, 0x10000 + ((high - 0xd800) << 10) +
				    (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff)
				high = u;
			else if (u >= 0xdc00 && u <= 0xdfff)
				goto bad;
			else if (u <= 0x7f)
				goto bad;   /* printable: written directly;
				             * controls: never in a name */
			else
				put_utf8(out, u);
		}
		/* the run ends in '-', with no unit half done, no bits set */
		if (*s != '-' || units == 0 || high || nbits >= 6 || bits != 0)
			goto bad;
		s++;
		shift_end = s;
	}
	return 0;
bad:
	out->len = mark;
	if (out->data)
		out->data[mark] = '\0';
	return -1;
}

/* Next code point of UTF-8 text; 0 at the end, -1 if invalid. */
static int
next_cp(const unsigned char **p, uint32_t *cp)
{
	const unsigned char *s = *p;
	uint32_t c = s[0], min;
	int n;

	if (c == 0)
		return 0;
	if (c < 0x80) {
		*cp = c;
		*p = s + 1;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 1;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3;
		c &= 0x07;
		min = 0x10000;
	} else
		return -1;
	for (int i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*p = s + n + 1;
	return 1;
}

int
imap_utf8_to_utf7(const char *s, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t mark = out->len;
	uint32_t cp;
	int r;

	while ((r = next_cp(&p, &cp)) > 0) {
		if (cp >= 0x20 && cp <= 0x7e) {
			buf_append_str(out, cp == '&' ? "&-" : (char[2]){
			    (char)cp, 0 });
			continue;
		}
		if (cp < 0x20 || cp == 0x7f)
			goto bad;
		/* a run of non-printable code points, as UTF-16BE base64 */
		buf_append_char(out, '&');
		uint32_t bits = 0;
		int nbits = 0;
		for (;;) {
			uint32_t u[2];
			int nu = 1;
			if (cp >= 0x10000) {
				u[0] = 0xd800 + ((cp - 0x10000) >> 10);
				u[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
				nu = 2;
			} else
				u[0] = cp;
			for (int k = 0; k < nu; k++) {
				bits = (bits << 16) | u[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					buf_append_char(out,
					    b64[(bits >> nbits) & 0x3f]);
				}
				bits &= (1u << nbits) - 1;
			}
			const unsigned char *save = p;
			r = next_cp(&p, &cp);
			if (r < 0)
				goto bad;
			if (r == 0 || (cp >= 0x20 && cp <= 0x7e)) {
				p = save;
				break;
			}
			if (cp < 0x20 || cp == 0x7f)
				goto bad;
		}
		if (nbits > 0)
			buf_append_char(out, b64[(bits << (6 - nbits)) & 0x3f]);
		buf_append_char(out, '-');
	}
	if (r < 0)
		goto bad;
	return 0;
bad:
	out->len = mark;
	if (out->data)
		out->data[mark] = '\0';
	return -1;
}
