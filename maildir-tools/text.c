/* SPDX-License-Identifier: ISC */
/*
 * text.c - see text.h. Everything here reads untrusted mail content, so
 * every loop is bounded by the input length and every output is checked
 * UTF-8; fuzz_html and fuzz_mime exercise it.
 */
#include "text.h"

#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include "base/util.h"

/* Decodes one UTF-8 sequence at s (n > 0 bytes); returns its length and
 * the code point, or 0 if invalid (overlong, surrogate, > U+10FFFF). */
static size_t
utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 ||
	    c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static void
utf8_put(struct buf *out, uint32_t c)
{
	char b[4];

	if (c < 0x80) {
		buf_append_char(out, (char)c);
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | (c >> 6));
		b[1] = (char)(0x80 | (c & 0x3f));
		buf_append(out, b, 2);
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		buf_append(out, b, 3);
	} else {
		b[0] = (char)(0xf0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f));
		buf_append(out, b, 4);
	}
}

bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < n) {
		size_t l = utf8_dec(p + i, n - i, &cp);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

void
text_sanitize(struct buf *out, const char *s, size_t n, bool multiline)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < n) {
		size_t l = utf8_dec(p + i, n - i, &cp);
		if (l == 0) {
			utf8_put(out, 0xfffd);
			i++;
			continue;
		}
		i += l;
		if (cp == '\t' || (cp == '\n' && multiline))
			buf_append_char(out, (char)cp);
		else if (cp == '\n')
			buf_append_char(out, ' ');
		else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			continue;
		else
			utf8_put(out, cp);
	}
}

void
text_latin1(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		utf8_put(out, (unsigned char)s[i]);
}

static const struct {
	const char *name;
	uint32_t cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", 0xa0 }, { "copy", 0xa9 },
	{ "reg", 0xae }, { "hellip", 0x2026 }, { "mdash", 0x2014 },
	{ "ndash", 0x2013 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
	{ "ldquo", 0x201c }, { "rdquo", 0x201d }, { "euro", 0x20ac },
	{ "bull", 0x2022 }, { "middot", 0xb7 }, { "laquo", 0xab },
	{ "raquo", 0xbb }, { "eacute", 0xe9 }, { "egrave", 0xe8 },
	{ "agrave", 0xe0 }, { "uuml", 0xfc }, { "ouml", 0xf6 },
	{ "auml", 0xe4 }, { "szlig", 0xdf }, { "ccedil", 0xe7 },
};

/* At s[0] == '&': decodes an entity; returns bytes used (0: not one). */
static size_t
entity(const char *s, size_t n, uint32_t *cp)
{
	size_t i = 1;

	if (n > 2 && s[1] == '#') {
		uint32_t v = 0;
		bool hex = n > 3 && (s[2] == 'x' || s[2] == 'X');
		size_t digits = 0;
		for (i = hex ? 3 : 2; i < n && digits < 8; i++, digits++) {
			char c = s[i];
			if (c >= '0' && c <= '9')
				v = v * (hex ? 16 : 10) + (uint32_t)(c - '0');
			else if (hex && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
				v = v * 16 + (uint32_t)((c | 0x20) - 'a' + 10);
			else
				break;
		}
		if (digits == 0)
			return 0;
		if (i < n && s[i] == ';')
			i++;
		if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			v = 0xfffd;
		*cp = v;
		return i;
	}
	while (i < n && i < 10 && ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z'))
		i++;
	for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++)
		if (strlen(entities[k].name) == i - 1 &&
		    memcmp(entities[k].name, s + 1, i - 1) == 0) {
			*cp = entities[k].cp;
			return i < n && s[i] == ';' ? i + 1 : i;
		}
	return 0;
}

struct html {
	struct buf *out;
	int newlines;      /* trailing newlines already written */
	bool space;        /* a space is pending */
	char href[512];
	size_t link_start; /* out->len when <a href> began */
};

static void
html_break(struct html *h, int want)
{
	h->space = false;
	if (h->out->len == 0)
		return;
	while (h->newlines < want) {
		buf_append_char(h->out, '\n');
		h->newlines++;
	}
}

static void
html_char(struct html *h, uint32_t cp)
{
	if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' ||
	    cp == '\f') {
		h->space = h->out->len > 0 && h->newlines == 0;
		return;
	}
	if (h->space) {
		buf_append_char(h->out, ' ');
		h->space = false;
	}
	utf8_put(h->out, cp == 0xa0 ? ' ' : cp);
	h->newlines = 0;
}

static bool
tag_is(const char *name, size_t len, const char *const *set)
{
	for (; *set; set++)
		if (strlen(*set) == len && ascii_strncaseeq(name, *set, len))
			return true;
	return false;
}

/* The value of attribute attr within a tag's text, into dst. */
static void
tag_attr(const char *t, size_t n, const char *attr, char *dst, size_t dstsz)
{
	size_t al = strlen(attr);

	dst[0] = '\0';
	for (size_t i = 0; i + al < n; i++) {
		size_t j, k = 0;
		char q = 0;
		if (!ascii_strncaseeq(t + i, attr, al) || (i > 0 &&
		    t[i - 1] != ' ' && t[i - 1] != '\t' && t[i - 1] != '\n'))
			continue;
		j = i + al;
		while (j < n && t[j] == ' ')
			j++;
		if (j >= n || t[j] != '=')
			continue;
		j++;
		while (j < n && t[j] == ' ')
			j++;
		if (j < n && (t[j] == '"' || t[j] == '\''))
			q = t[j++];
		for (; j < n && k + 1 < dstsz; j++) {
			if (q ? t[j] == q : (t[j] == ' ' || t[j] == '>'))
				break;
			dst[k++] = t[j];
		}
		dst[k] = '\0';
		return;
	}
}

void
html_to_text(struct buf *out, const char *s, size_t n)
{
	static const char *const blocks[] = { "p", "div", "table", "tr",
		"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote",
		"pre", "hr", "section", "article", "header", "footer", "dl",
		"dt", "dd", "form", NULL };
	static const char *const paras[] = { "p", "h1", "h2", "h3", "h4",
		"h5", "h6", "table", "blockquote", "ul", "ol", NULL };
	struct html h = { .out = out, .newlines = 0 };
	size_t i = 0;
	size_t start_len = out->len;

	h.out = out;
	while (i < n) {
		if (s[i] == '<') {
			size_t j = i + 1, name0, namelen;
			bool closing = false;
			if (j < n && s[j] == '!') {
				/* comment or doctype */
				if (n - j >= 3 && memcmp(s + j, "!--", 3) == 0) {
					const char *e = memmem(s + j + 3,
					    n - j - 3, "-->", 3);
					i = e ? (size_t)(e - s) + 3 : n;
				} else {
					const char *e = memchr(s + j, '>', n - j);
					i = e ? (size_t)(e - s) + 1 : n;
				}
				continue;
			}
			if (j < n && s[j] == '/') {
				closing = true;
				j++;
			}
			name0 = j;
			while (j < n && ((s[j] | 0x20) >= 'a' &&
			    (s[j] | 0x20) <= 'z' ? true : (s[j] >= '0' &&
			    s[j] <= '9')))
				j++;
			namelen = j - name0;
			if (namelen == 0) {
				html_char(&h, '<');
				i++;
				continue;
			}
			{
				const char *e = memchr(s + j, '>', n - j);
				size_t end = e ? (size_t)(e - s) : n;
				const char *name = s + name0;
				if (!closing && (tag_is(name, namelen,
				    (const char *const[]){ "script", "style",
				    "head", "title", NULL }))) {
					/* skip to the matching close tag */
					size_t k = end;
					while (k < n) {
						const char *c = memchr(s + k, '<',
						    n - k);
						if (c == NULL) {
							k = n;
							break;
						}
						k = (size_t)(c - s);
						if (k + 1 + namelen < n &&
						    s[k + 1] == '/' &&
						    ascii_strncaseeq(s + k + 2,
						    name, namelen))
							break;
						k++;
					}
					e = k < n ? memchr(s + k, '>', n - k) :
					    NULL;
					i = e ? (size_t)(e - s) + 1 : n;
					continue;
				}
				if (tag_is(name, namelen,
				    (const char *const[]){ "br", NULL })) {
					html_break(&h, h.newlines + 1);
				} else if (tag_is(name, namelen,
				    (const char *const[]){ "li", NULL })) {
					if (!closing) {
						html_break(&h, 1);
						buf_append_str(out, "* ");
						h.newlines = 0;
					}
				} else if (tag_is(name, namelen, paras)) {
					html_break(&h, 2);
				} else if (tag_is(name, namelen, blocks)) {
					html_break(&h, 1);
				} else if (tag_is(name, namelen,
				    (const char *const[]){ "td", "th",
				    NULL })) {
					if (!closing)
						h.space = h.out->len > 0 &&
						    h.newlines == 0;
				} else if (tag_is(name, namelen,
				    (const char *const[]){ "a", NULL })) {
					if (!closing) {
						tag_attr(s + j, end - j, "href",
						    h.href, sizeof(h.href));
						h.link_start = out->len;
					} else if (h.href[0] != '\0') {
						size_t tl = out->len -
						    h.link_start;
						size_t hl = strlen(h.href);
						if ((ascii_strncaseeq(h.href,
						    "http", 4) ||
						    ascii_strncaseeq(h.href,
						    "mailto:", 7)) && (tl != hl ||
						    memcmp(out->data +
						    h.link_start, h.href, hl) !=
						    0)) {
							buf_append_str(out, " <");
							text_sanitize(out, h.href,
							    hl, false);
							buf_append_char(out, '>');
							h.newlines = 0;
						}
						h.href[0] = '\0';
					}
				}
				i = end < n ? end + 1 : n;
			}
			continue;
		}
		if (s[i] == '&') {
			uint32_t cp;
			size_t used = entity(s + i, n - i, &cp);
			if (used > 0) {
				html_char(&h, cp);
				i += used;
				continue;
			}
		}
		{
			uint32_t cp;
			size_t l = utf8_dec((const unsigned char *)s + i, n - i,
			    &cp);
			if (l == 0) {
				cp = 0xfffd;
				l = 1;
			}
			html_char(&h, cp);
			i += l;
		}
	}
	/* end with exactly one newline */
	while (out->len > start_len && out->data[out->len - 1] == '\n')
		out->len--;
	if (out->len > start_len)
		buf_append_char(out, '\n');
}

static int
cp_width(uint32_t cp)
{
	int w = wcwidth((wchar_t)cp);

	if (w >= 0)
		return w;
	/* No UTF-8 locale: East Asian wide ranges by hand, else 1. */
	if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
	    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
	    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
	    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
	    (cp >= 0x20000 && cp <= 0x3fffd))
		return 2;
	return 1;
}

size_t
text_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, w = 0;
	uint32_t cp;

	while (i < n) {
		size_t l = utf8_dec(p + i, n - i, &cp);
		if (l == 0) {
			l = 1;
			cp = 0xfffd;
		}
		w += (size_t)cp_width(cp);
		i += l;
	}
	return w;
}

void
text_fit(struct buf *out, const char *s, size_t width, bool pad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, w = 0;
	uint32_t cp;

	if (width == 0) {
		buf_append_str(out, s);
		return;
	}
	if (text_width(s) <= width) {
		buf_append_str(out, s);
		w = text_width(s);
	} else {
		while (i < n) {
			size_t l = utf8_dec(p + i, n - i, &cp);
			int cw;
			if (l == 0) {
				l = 1;
				cp = 0xfffd;
			}
			cw = cp_width(cp);
			if (w + (size_t)cw + 1 > width)
				break;
			utf8_put(out, cp);
			w += (size_t)cw;
			i += l;
		}
		utf8_put(out, 0x2026);
		w++;
	}
	while (pad && w < width) {
		buf_append_char(out, ' ');
		w++;
	}
}

void
json_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_append_char(out, '\\');
			buf_append_char(out, (char)c);
		} else if (c == '\n') {
			buf_append_str(out, "\\n");
		} else if (c == '\t') {
			buf_append_str(out, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(out, "\\u%04x", c);
		} else {
			buf_append_char(out, (char)c);
		}
	}
}
