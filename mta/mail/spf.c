/* SPDX-License-Identifier: ISC */
/*
 * spf.c - layer 1 (pure): SPF records and macros (spf.h).
 */
#include "mail/spf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/intl.h"
#include "base/util.h"

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail",
		"softfail", "temperror", "permerror" };

	return names[r];
}

bool
spf_is_record(const char *txt)
{
	return ascii_strncaseeq(txt, "v=spf1", 6) && (txt[6] == '\0' ||
	    txt[6] == ' ');
}

void
spf_record_clear(struct spf_record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->t[i].domain);
	free(r->redirect);
	free(r->exp);
	memset(r, 0, sizeof(*r));
}

static bool
is_alpha(int c)
{
	return (c | 32) >= 'a' && (c | 32) <= 'z';
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* A macro-string's characters: visible ASCII but '%' only as a macro
 * (spf_expand() checks those) */
/*
 * A macro-string (RFC 7208 7.1): visible characters but '%', and macros:
 * "%%", "%_", "%-", "%{" letter *digit ["r"] *delimiter "}", the letters
 * c, r and t only in explanations (never here). *macro_end: whether it
 * ends in a macro-expand.
 */
static bool
macro_string_ok(const char *s, size_t n, bool *macro_end)
{
	bool end = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		end = false;
		if (c <= ' ' || c >= 127)
			return false;
		if (c != '%')
			continue;
		if (i + 1 >= n)
			return false;
		c = (unsigned char)s[++i];
		if (c == '%' || c == '_' || c == '-') {
			end = true;
			continue;
		}
		if (c != '{' || i + 1 >= n || !strchr("slodiphvSLODIPHV",
		    s[i + 1]) || s[i + 1] == '\0')
			return false;
		i += 2;
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
		if (i < n && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < n && strchr(".-+,/_=", s[i]) && s[i] != '\0')
			i++;
		if (i >= n || s[i] != '}')
			return false;
		end = true;
	}
	if (macro_end)
		*macro_end = end;
	return true;
}

/*
 * A domain-spec (RFC 7208 7.1): a macro-string that ends in a macro or
 * in "." toplabel ["."]; a toplabel is letters, digits and inner dashes,
 * not digits only.
 */
static bool
domain_spec_ok(const char *s, size_t n)
{
	bool macro_end;

	if (n == 0 || !macro_string_ok(s, n, &macro_end))
		return false;
	if (macro_end)
		return true;
	if (s[n - 1] == '.')
		n--;
	size_t a = n;
	while (a > 0 && s[a - 1] != '.')
		a--;
	if (a == 0 || a == n)
		return false;             /* no "." toplabel */
	bool alpha = false, dash = false;
	for (size_t i = a; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '-')
			dash = true;
		else if (is_alpha(c))
			alpha = true;
		else if (!is_digit(c))
			return false;
	}
	return s[a] != '-' && s[n - 1] != '-' && (alpha || dash);
}

bool
spf_uses_p(const char *spec)
{
	for (const char *p = spec; p && (p = strchr(p, '%')) != NULL; p++) {
		if (p[1] == '{' && (p[2] == 'p' || p[2] == 'P'))
			return true;
		if (p[1] == '%')
			p++;
	}
	return false;
}

/* "/N" at s (N at most max), into *bits: the octets used, or 0 if none,
 * or -1 if bad. */
static int
cidr(const char *s, size_t n, int max, int *bits)
{
	size_t i = 1;
	int v = 0;

	if (n < 2 || s[0] != '/' || !is_digit((unsigned char)s[1]))
		return -1;
	/* no leading zeros */
	if (s[1] == '0' && n > 2 && is_digit((unsigned char)s[2]))
		return -1;
	while (i < n && is_digit((unsigned char)s[i])) {
		v = v * 10 + (s[i++] - '0');
		if (v > max)
			return -1;
	}
	*bits = v;
	return (int)i;
}

/* The dual-cidr-length at the end of s[0..n): the spec's length before
 * it, or -1 if bad. */
static ssize_t
dual_cidr(const char *s, size_t n, struct spf_term *t)
{
	/* "//N" for IPv6, after an optional "/N" for IPv4 */
	const char *dd = NULL;
	for (size_t i = 0; i + 2 < n; i++)
		if (s[i] == '/' && s[i + 1] == '/' && is_digit((unsigned char)
		    s[i + 2]))
			dd = s + i;
	size_t end = dd ? (size_t)(dd - s) : n;
	if (dd) {
		int used = cidr(dd + 1, n - end - 1, 128, &t->cidr6);
		if (used < 0 || (size_t)used != n - end - 1)
			return -1;
	}
	/* "/N" before it: the last '/' of what is left, if digits follow
	 * (a '/' is otherwise part of the domain-spec) */
	const char *sl = NULL;
	for (size_t i = 0; i < end; i++)
		if (s[i] == '/')
			sl = s + i;
	if (sl && sl + 1 < s + end && is_digit((unsigned char)sl[1])) {
		int used = cidr(sl, end - (size_t)(sl - s), 32, &t->cidr4);
		if (used < 0 || (size_t)used != end - (size_t)(sl - s))
			return -1;
		end = (size_t)(sl - s);
	}
	return (ssize_t)end;
}

static int
parse_term(const char *s, size_t n, struct spf_record *r, const char **why)
{
	static const struct {
		const char *name;
		enum spf_mech mech;
	} mechs[] = { { "all", SPF_ALL }, { "include", SPF_INCLUDE },
		{ "a", SPF_A }, { "mx", SPF_MX }, { "ptr", SPF_PTR },
		{ "ip4", SPF_IP4 }, { "ip6", SPF_IP6 }, { "exists", SPF_EXISTS } };
	size_t nl = 0;

	/* a modifier: name "=" macro-string */
	while (nl < n && (is_alpha((unsigned char)s[nl]) ||
	    is_digit((unsigned char)s[nl]) || s[nl] == '-' || s[nl] == '_' ||
	    s[nl] == '.'))
		nl++;
	if (nl > 0 && nl < n && s[nl] == '=' && is_alpha((unsigned char)s[0])) {
		const char *v = s + nl + 1;
		size_t vl = n - nl - 1;
		char **slot = NULL;
		if (!macro_string_ok(v, vl, NULL)) {
			*why = "a modifier's value is not a macro-string";
			return -1;
		}
		if (nl == 8 && ascii_strncaseeq(s, "redirect", 8))
			slot = &r->redirect;
		else if (nl == 3 && ascii_strncaseeq(s, "exp", 3))
			slot = &r->exp;
		if (slot == NULL)
			return 0;          /* unknown modifiers are ignored */
		if (!domain_spec_ok(v, vl)) {
			*why = "redirect= or exp= is not a domain-spec";
			return -1;
		}
		if (*slot) {
			*why = "redirect= or exp= twice";
			return -1;
		}
		if (vl == 0) {
			*why = "an empty redirect= or exp=";
			return -1;
		}
		*slot = xstrndup(v, vl);
		return 0;
	}
	if (r->n == SPF_TERMS_MAX) {
		*why = "too many terms";
		return -1;
	}
	struct spf_term *t = &r->t[r->n];
	memset(t, 0, sizeof(*t));
	t->qualifier = SPF_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	size_t i = 0;
	if (n && strchr("+-~?", s[0])) {
		t->qualifier = s[0] == '+' ? SPF_PASS : s[0] == '-' ? SPF_FAIL :
		    s[0] == '~' ? SPF_SOFTFAIL : SPF_NEUTRAL;
		i = 1;
	}
	size_t ml = 0;
	while (i + ml < n && is_alpha((unsigned char)s[i + ml]))
		ml++;
	while (i + ml < n && is_digit((unsigned char)s[i + ml]))
		ml++;                  /* ip4, ip6 */
	size_t k = 0;
	for (; k < sizeof(mechs) / sizeof(mechs[0]); k++)
		if (strlen(mechs[k].name) == ml &&
		    ascii_strncaseeq(s + i, mechs[k].name, ml))
			break;
	if (k == sizeof(mechs) / sizeof(mechs[0])) {
		*why = "unknown mechanism";
		return -1;
	}
	t->mech = mechs[k].mech;
	const char *rest = s + i + ml;
	size_t rl = n - i - ml;
	switch (t->mech) {
	case SPF_ALL:
		if (rl) {
			*why = "all takes nothing";
			return -1;
		}
		break;
	case SPF_INCLUDE:
	case SPF_EXISTS:
		if (rl < 2 || rest[0] != ':' || !domain_spec_ok(rest + 1,
		    rl - 1)) {
			*why = "include: and exists: need a domain";
			return -1;
		}
		t->domain = xstrndup(rest + 1, rl - 1);
		break;
	case SPF_A:
	case SPF_MX:
	case SPF_PTR: {
		ssize_t end = (ssize_t)rl;
		if (t->mech != SPF_PTR && (end = dual_cidr(rest, rl, t)) < 0) {
			*why = "a bad CIDR length";
			return -1;
		}
		if (end > 0) {
			if (rest[0] != ':' || end < 2 ||
			    !domain_spec_ok(rest + 1, (size_t)end - 1)) {
				*why = "a bad domain-spec";
				return -1;
			}
			t->domain = xstrndup(rest + 1, (size_t)end - 1);
		}
		break;
	}
	case SPF_IP4:
	case SPF_IP6: {
		bool v6, want6 = t->mech == SPF_IP6;
		if (rl < 2 || rest[0] != ':') {
			*why = "ip4: and ip6: need an address";
			return -1;
		}
		const char *slash = memchr(rest, '/', rl);
		size_t al = slash ? (size_t)(slash - rest) - 1 : rl - 1;
		if (ip_parse(rest + 1, al, t->ip, &v6) != 0 || v6 != want6) {
			*why = "a bad ip4: or ip6: address";
			return -1;
		}
		if (slash) {
			int *bits = want6 ? &t->cidr6 : &t->cidr4;
			int used = cidr(slash, rl - al - 1, want6 ? 128 : 32, bits);
			if (used < 0 || (size_t)used != rl - al - 1) {
				*why = "a bad CIDR length";
				return -1;
			}
		}
		break;
	}
	}
	r->n++;
	return 0;
}

int
spf_record_parse(const char *txt, struct spf_record *r, const char **why)
{
	size_t i = 6, len = strlen(txt);

	memset(r, 0, sizeof(*r));
	if (!spf_is_record(txt))
		return 0;
	while (i < len) {
		while (i < len && txt[i] == ' ')
			i++;
		size_t j = i;
		while (j < len && txt[j] != ' ')
			j++;
		if (j > i && parse_term(txt + i, j - i, r, why) != 0) {
			spf_record_clear(r);
			return -1;
		}
		i = j;
	}
	return 1;
}

bool
spf_ip_in(const unsigned char *ip, bool v6, const unsigned char *net,
    int bits)
{
	int max = v6 ? 128 : 32;

	if (bits > max)
		bits = max;
	for (int b = 0; b < bits; b += 8) {
		int left = bits - b;
		unsigned char mask = left >= 8 ? 0xff :
		    (unsigned char)(0xff << (8 - left));
		if ((ip[b / 8] & mask) != (net[b / 8] & mask))
			return false;
	}
	return true;
}

/* The value of macro letter c (lower case), in out. */
static int
macro_value(int c, const struct spf_macros *m, bool exp, struct buf *out)
{
	const char *at = strrchr(m->sender, '@');
	char tmp[80];

	switch (c) {
	case 's':
		buf_append_str(out, m->sender);
		return 0;
	case 'l':
		if (at && at > m->sender)
			buf_append(out, m->sender, (size_t)(at - m->sender));
		else
			buf_append_str(out, "postmaster");
		return 0;
	case 'o':
		buf_append_str(out, at ? at + 1 : m->sender);
		return 0;
	case 'd':
		buf_append_str(out, m->domain);
		return 0;
	case 'i':
		if (!m->v6) {
			(void)snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", m->ip[0],
			    m->ip[1], m->ip[2], m->ip[3]);
			buf_append_str(out, tmp);
		} else
			for (int k = 0; k < 32; k++) {
				unsigned v = k % 2 ? m->ip[k / 2] & 15u :
				    (unsigned)m->ip[k / 2] >> 4;
				(void)snprintf(tmp, sizeof(tmp), "%s%x", k ? "." :
				    "", v);
				buf_append_str(out, tmp);
			}
		return 0;
	case 'p':
		/* the validated name of the address, found by the caller */
		buf_append_str(out, m->p ? m->p : "unknown");
		return 0;
	case 'v':
		buf_append_str(out, m->v6 ? "ip6" : "in-addr");
		return 0;
	case 'h':
		buf_append_str(out, m->helo ? m->helo : "");
		return 0;
	case 'c':
		if (!exp)
			return -1;
		if (!m->v6)
			(void)snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", m->ip[0],
			    m->ip[1], m->ip[2], m->ip[3]);
		else {
			size_t n = 0;
			for (int k = 0; k < 16; k += 2)
				n += (size_t)snprintf(tmp + n, sizeof(tmp) - n,
				    "%s%x", k ? ":" : "", (unsigned)m->ip[k] << 8 |
				    m->ip[k + 1]);
		}
		buf_append_str(out, tmp);
		return 0;
	case 'r':
		if (!exp)
			return -1;
		buf_append_str(out, m->receiver ? m->receiver : "unknown");
		return 0;
	case 't':
		if (!exp)
			return -1;
		(void)snprintf(tmp, sizeof(tmp), "%lld", (long long)m->now);
		buf_append_str(out, tmp);
		return 0;
	default:
		return -1;
	}
}

static void
url_escape(const char *s, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_alpha(c) || is_digit(c) || strchr("-._~", c))
			buf_append_char(out, (char)c);
		else {
			buf_append_char(out, '%');
			buf_append_char(out, hex[c >> 4]);
			buf_append_char(out, hex[c & 15]);
		}
	}
}

/* One %{...} macro at s (past "%{"): its length through "}", or -1. */
static int
expand_macro(const char *s, const struct spf_macros *m, bool exp,
    struct buf *out)
{
	int letter = (unsigned char)s[0];
	size_t i = 1;
	unsigned keep = 0;
	bool reverse = false, upper;
	char delims[16];
	size_t nd = 0;
	struct buf v;

	if (!is_alpha(letter))
		return -1;
	upper = letter >= 'A' && letter <= 'Z';
	if (is_digit((unsigned char)s[i])) {
		while (is_digit((unsigned char)s[i])) {
			keep = keep * 10 + (unsigned)(s[i++] - '0');
			if (keep > 128)
				keep = 128;    /* more parts than any name has */
		}
		if (keep == 0)
			return -1;         /* RFC 7208 7.1: nonzero */
	}
	if (s[i] == 'r' || s[i] == 'R') {
		reverse = true;
		i++;
	}
	while (s[i] && strchr(".-+,/_=", s[i])) {
		if (nd + 1 < sizeof(delims))
			delims[nd++] = s[i];
		i++;
	}
	delims[nd] = '\0';
	if (s[i] != '}')
		return -1;
	buf_init(&v);
	if (macro_value(letter | 32, m, exp, &v) != 0) {
		buf_clear(&v);
		return -1;
	}
	const char *val = v.data ? v.data : "";
	if (nd == 0)
		(void)str_copy(delims, sizeof(delims), ".");
	/* the parts, split at any delimiter */
	const char *parts[256];
	size_t plen[256], np = 0, start = 0, vl = v.len;
	for (size_t k = 0; k <= vl && np < 256; k++)
		if (k == vl || strchr(delims, val[k])) {
			parts[np] = val + start;
			plen[np++] = k - start;
			start = k + 1;
		}
	/* reversed first, then the right-hand keep of them (RFC 7208 7.3) */
	size_t first = keep && keep < np ? np - keep : 0;
	struct buf joined;
	buf_init(&joined);
	for (size_t k = first; k < np; k++) {
		size_t idx = reverse ? np - 1 - k : k;
		if (joined.len)
			buf_append_char(&joined, '.');
		buf_append(&joined, parts[idx], plen[idx]);
	}
	if (upper)
		url_escape(joined.data ? joined.data : "", joined.len, out);
	else
		buf_append(out, joined.data ? joined.data : "", joined.len);
	buf_clear(&joined);
	buf_clear(&v);
	return (int)i + 1;
}

int
spf_expand(const char *spec, const struct spf_macros *m, bool exp,
    struct buf *out)
{
	size_t start = out->len;

	for (size_t i = 0; spec[i]; i++) {
		if (spec[i] != '%') {
			buf_append_char(out, spec[i]);
			continue;
		}
		char c = spec[i + 1];
		if (c == '%')
			buf_append_char(out, '%');
		else if (c == '_')
			buf_append_char(out, ' ');
		else if (c == '-')
			buf_append_str(out, "%20");
		else if (c == '{') {
			int used = expand_macro(spec + i + 2, m, exp, out);
			if (used < 0)
				return -1;
			i += (size_t)used;
		} else
			return -1;
		i++;
	}
	buf_append_char(out, '\0');
	out->len--;
	if (!exp) {
		/* over 253 octets: labels go from the left */
		while (out->len - start > 253) {
			char *dot = memchr(out->data + start, '.', out->len - start);
			if (dot == NULL)
				break;
			size_t cut = (size_t)(dot - (out->data + start)) + 1;
			memmove(out->data + start, out->data + start + cut,
			    out->len - start - cut + 1);
			out->len -= cut;
		}
	}
	return 0;
}

bool
spf_identity(const char *path, const char *helo, char *domain,
    size_t domainsz, char *sender, size_t sendersz)
{
	size_t pl = strlen(path);
	const char *at;

	if (pl >= 2 && path[0] == '<' && path[pl - 1] == '>') {
		path++;
		pl -= 2;
	}
	if (pl > 0 && (at = memrchr(path, '@', pl)) != NULL &&
	    at + 1 < path + pl) {
		size_t ll = (size_t)(at - path), dl = pl - ll - 1;
		if (ll == 0)
			(void)snprintf(sender, sendersz, "postmaster@%.*s",
			    (int)dl, at + 1);
		else
			(void)snprintf(sender, sendersz, "%.*s", (int)pl, path);
		(void)snprintf(domain, domainsz, "%.*s", (int)dl, at + 1);
	} else {
		size_t hl = strlen(helo);
		if (hl == 0 || hl > 253)
			return false;
		(void)snprintf(sender, sendersz, "postmaster@%s", helo);
		(void)snprintf(domain, domainsz, "%s", helo);
	}
	for (char *p = domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p | 32);
	/* a U-label domain (SMTPUTF8) is asked for by its A-labels */
	char ascii[256];
	if (!intl_is_ascii(domain, strlen(domain)) &&
	    intl_domain_ascii(domain, ascii, sizeof(ascii)) == 0)
		(void)str_copy(domain, domainsz, ascii);
	return true;
}
