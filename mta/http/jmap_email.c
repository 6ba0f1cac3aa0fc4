/* SPDX-License-Identifier: ISC */
/*
 * jmap_email.c - layer 1: Email properties from a message's bytes
 * (jmap_email.h). Header forms as RFC 8621 4.1.2 parses them: addresses
 * (4.1.2.3, display names with RFC 2047 words decoded), message ids
 * (4.1.2.5, without the angle brackets), dates (4.1.2.6), text (4.1.2.2,
 * unfolded and decoded); preview from the first text/plain part (else
 * text/html with its tags dropped), white space collapsed.
 */
#include "http/jmap_email.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"

static const struct {
	const char *name;
	unsigned bit;
} props[] = {
	{ "messageId", JE_MESSAGE_ID }, { "inReplyTo", JE_IN_REPLY_TO },
	{ "references", JE_REFERENCES }, { "sender", JE_SENDER },
	{ "from", JE_FROM }, { "to", JE_TO }, { "cc", JE_CC },
	{ "bcc", JE_BCC }, { "replyTo", JE_REPLY_TO },
	{ "subject", JE_SUBJECT }, { "sentAt", JE_SENT_AT },
	{ "hasAttachment", JE_HAS_ATTACHMENT }, { "preview", JE_PREVIEW },
	{ "headers", JE_HEADERS },
};

unsigned
jmap_email_prop_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (strcmp(props[i].name, name) == 0)
			return props[i].bit;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void
jmap_utf8_clean(const char *s, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);
		if (n == 0 || (n == 1 && p[i] == '\0')) {
			if (p[i] != '\0')
				buf_append_str(out, "\xef\xbf\xbd");
			i++;
			continue;
		}
		buf_append(out, p + i, n);
		i += n;
	}
}

json_t *
jmap_string(const char *s, size_t len)
{
	struct buf b;
	json_t *j;

	buf_init(&b);
	jmap_utf8_clean(s, len, &b);
	j = json_stringn(b.data ? b.data : "", b.len);
	buf_clear(&b);
	return j ? j : json_string("");
}

void
jmap_utc_date(int64_t t, char out[21])
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t secs = t - days * 86400;
	/* civil from days (Howard Hinnant's algorithm) */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 -
	    yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;

	if (m <= 2)
		y++;
	if (y < 0 || y > 9999)
		y = 1970, m = 1, d = 1, secs = 0;
	unsigned hh = (unsigned)(secs / 3600) % 24u, mm = (unsigned)(secs / 60 % 60),
	    ss = (unsigned)(secs % 60);
	(void)snprintf(out, 21, "%04u-%02u-%02uT%02u:%02u:%02uZ",
	    (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u, hh,
	    mm, ss);
}

int64_t
jmap_days_from_civil(int64_t y, int64_t mo, int64_t d)
{
	y -= mo <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

bool
jmap_parse_utc_date(const char *s, int64_t *t)
{
	int y, mo, d, h, mi, se;
	char z;

	/* UTCDate: "2026-12-01T10:00:00Z" (RFC 8620 1.4) */
	if (strlen(s) != 20 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo,
	    &d, &h, &mi, &se, &z) != 7 || z != 'Z' || mo < 1 || mo > 12 ||
	    d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || s[4] != '-' ||
	    s[7] != '-' || s[13] != ':' || s[16] != ':')
		return false;
	*t = jmap_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}

/* The unfolded, decoded text of a field (asText). */
static json_t *
as_text(const char *v, size_t len)
{
	struct buf b;
	json_t *j;

	buf_init(&b);
	mime_decode_words(v, len, &b);
	/* trim */
	size_t s = 0, e = b.len;
	while (s < e && (b.data[s] == ' ' || b.data[s] == '\t'))
		s++;
	while (e > s && (b.data[e - 1] == ' ' || b.data[e - 1] == '\t'))
		e--;
	j = jmap_string(b.data ? b.data + s : "", e - s);
	buf_clear(&b);
	return j;
}

#define ADDRS_MAX 500

static json_t *
as_addresses(const char *v, size_t len)
{
	struct message_addr *a = xcalloc(ADDRS_MAX, sizeof(*a));
	json_t *arr = json_array();
	int n = message_parse_addresses(v, len, a, ADDRS_MAX);

	for (int i = 0; i < n && i < ADDRS_MAX; i++) {
		json_t *o = json_object();
		char email[MESSAGE_ADDR_LOCAL_MAX + MESSAGE_ADDR_DOMAIN_MAX + 2];
		if (a[i].domain[0])
			(void)snprintf(email, sizeof(email), "%s@%s",
			    a[i].local, a[i].domain);
		else
			(void)snprintf(email, sizeof(email), "%s", a[i].local);
		if (a[i].name[0])
			json_object_set_new(o, "name", as_text(a[i].name,
			    strlen(a[i].name)));
		else
			json_object_set_new(o, "name", json_null());
		json_object_set_new(o, "email", jmap_string(email,
		    strlen(email)));
		json_array_append_new(arr, o);
	}
	free(a);
	return arr;
}

/* msg-ids: "<a@b> <c@d>" -> ["a@b", "c@d"], or null if none parse. */
static json_t *
as_message_ids(const char *v, size_t len)
{
	json_t *arr = json_array();
	size_t i = 0;

	while (i < len) {
		const char *lt = memchr(v + i, '<', len - i), *gt;
		if (lt == NULL)
			break;
		gt = memchr(lt, '>', len - (size_t)(lt - v));
		if (gt == NULL)
			break;
		size_t n = (size_t)(gt - lt - 1);
		bool ok = n > 0 && memchr(lt + 1, '@', n) != NULL;
		for (size_t k = 1; ok && k <= n; k++)
			if ((unsigned char)lt[k] <= ' ' || lt[k] == '<')
				ok = false;
		if (ok)
			json_array_append_new(arr, jmap_string(lt + 1, n));
		i = (size_t)(gt - v) + 1;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return json_null();
	}
	return arr;
}

static void
set_field(json_t *obj, const char *hdr, size_t hlen, const char *field,
    const char *prop, json_t *(*form)(const char *, size_t))
{
	struct message_field f;

	if (message_find_field(hdr, hlen, field, &f))
		json_object_set_new(obj, prop, form(f.value, f.value_len));
	else
		json_object_set_new(obj, prop, json_null());
}

static bool
has_attachment(const struct mime_part *p)
{
	if (p->nchildren && !p->is_message) {
		for (size_t i = 0; i < p->nchildren; i++)
			if (has_attachment(&p->children[i]))
				return true;
		return false;
	}
	if (p->disposition && strcmp(p->disposition, "attachment") == 0)
		return true;
	return strcmp(p->type, "text") != 0 && strcmp(p->type, "multipart");
}

/* The longest needle that occurs at t[i], or 0. */
static size_t
needle_at(const char *t, size_t len, size_t i, const char *const *needles,
    size_t n)
{
	size_t best = 0;

	for (size_t k = 0; k < n; k++) {
		size_t nl = strlen(needles[k]);
		if (nl > best && nl <= len - i &&
		    ascii_strncaseeq(t + i, needles[k], nl))
			best = nl;
	}
	return best;
}

static void
html_escaped(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		switch (s[i]) {
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '&': buf_append_str(out, "&amp;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		default: buf_append_char(out, s[i]); break;
		}
}

bool
jmap_snippet(const char *text, size_t len, const char *const *needles,
    size_t n, bool whole, size_t max, struct buf *out)
{
	struct buf clean, sp;
	size_t first = SIZE_MAX;

	buf_init(&clean);
	buf_init(&sp);
	jmap_utf8_clean(text, len, &clean);
	/* white space as one space */
	for (size_t i = 0; i < clean.len; i++) {
		char c = clean.data[i];
		bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
		if (ws && (sp.len == 0 || sp.data[sp.len - 1] == ' '))
			continue;
		buf_append_char(&sp, ws ? ' ' : c);
	}
	buf_clear(&clean);
	if (sp.len && sp.data[sp.len - 1] == ' ')
		sp.data[--sp.len] = '\0';
	const char *t = sp.data ? sp.data : "";
	for (size_t i = 0; i < sp.len && first == SIZE_MAX; i++)
		if (needle_at(t, sp.len, i, needles, n))
			first = i;
	if (first == SIZE_MAX) {
		buf_clear(&sp);
		return false;
	}
	size_t from = 0, to = sp.len;
	if (!whole) {
		/* a few words of what comes before it */
		from = first > 30 ? first - 30 : 0;
		while (from > 0 && t[from] != ' ')
			from--;
		to = from + max < sp.len ? from + max : sp.len;
		while (to < sp.len && ((unsigned char)t[to] & 0xc0) == 0x80)
			to++;
		while (from < first && ((unsigned char)t[from] & 0xc0) == 0x80)
			from++;
		if (from > 0)
			buf_append_str(out, "...");
	}
	for (size_t i = from; i < to;) {
		size_t nl = needle_at(t, to, i, needles, n);
		if (nl) {
			buf_append_str(out, "<mark>");
			html_escaped(out, t + i, nl);
			buf_append_str(out, "</mark>");
			i += nl;
		} else
			html_escaped(out, t + i++, 1);
	}
	if (to < sp.len)
		buf_append_str(out, "...");
	buf_clear(&sp);
	return true;
}

bool
jmap_has_attachment(const char *msg, size_t len)
{
	struct mime_part *root = mime_parse(msg, len);
	bool r = has_attachment(root);

	mime_free(root);
	return r;
}

static const struct mime_part *
first_text(const struct mime_part *p, const char *subtype, int depth)
{
	if (depth > MIME_DEPTH_MAX)
		return NULL;
	if (p->nchildren && !p->is_message) {
		for (size_t i = 0; i < p->nchildren; i++) {
			const struct mime_part *t = first_text(&p->children[i],
			    subtype, depth + 1);
			if (t)
				return t;
		}
		return NULL;
	}
	if (strcmp(p->type, "text") == 0 && strcmp(p->subtype, subtype) == 0 &&
	    !(p->disposition && strcmp(p->disposition, "attachment") == 0))
		return p;
	return NULL;
}

/* At "<": a tag that starts or ends a block (or a line break)? */
static bool
block_tag(const char *p, size_t len)
{
	static const char *const blocks[] = { "br", "p", "div", "li", "tr",
		"td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
		"ol", "blockquote", "hr", "pre", "script", "style", NULL };
	size_t i = 1;

	if (i < len && p[i] == '/')
		i++;
	for (const char *const *b = blocks; *b; b++) {
		size_t n = strlen(*b);
		if (i + n < len && ascii_strncaseeq(p + i, *b, n) &&
		    strchr(" \t\n/>", p[i + n]))
			return true;
	}
	return false;
}

/* The preview: white space runs as one space, tags out of HTML. */
static json_t *
preview(const char *msg, const struct mime_part *root)
{
	const struct mime_part *p = first_text(root, "plain", 0);
	bool html = false;
	struct buf t, o;
	size_t chars = 0;
	bool space = true, tag = false;

	if (p == NULL && (p = first_text(root, "html", 0)) != NULL)
		html = true;
	if (p == NULL)
		return json_string("");
	buf_init(&t);
	buf_init(&o);
	(void)mime_part_text(msg, p, &t);
	for (size_t i = 0; i < t.len && chars < JMAP_PREVIEW_MAX; i++) {
		unsigned char c = (unsigned char)t.data[i];
		if (html && c == '<') {
			/* what a script or style element holds is no text */
			static const char *const skip[] = { "script", "style" };
			for (size_t k = 0; k < 2; k++) {
				size_t sl = strlen(skip[k]);
				if (i + 1 + sl <= t.len && ascii_strncaseeq(t.data +
				    i + 1, skip[k], sl)) {
					char end[16];
					(void)snprintf(end, sizeof(end), "</%s",
					    skip[k]);
					const char *e = NULL;
					for (size_t j = i + 1; j + sl + 2 <= t.len;
					    j++)
						if (ascii_strncaseeq(t.data + j, end,
						    sl + 2)) {
							e = t.data + j;
							break;
						}
					i = e ? (size_t)(e - t.data) : t.len;
					break;
				}
			}
			tag = true;
			/* a block's tag parts words ("a<br>b" is "a b") */
			if (!space && block_tag(t.data + i, t.len - i)) {
				buf_append_char(&o, ' ');
				space = true;
			}
			if (i >= t.len)
				break;
			continue;
		}
		if (tag) {
			if (c == '>')
				tag = false;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (!space)
				buf_append_char(&o, ' ');
			space = true;
			continue;
		}
		space = false;
		buf_append_char(&o, (char)c);
		if ((c & 0xc0) != 0x80)
			chars++;
	}
	while (o.len && o.data[o.len - 1] == ' ')
		o.len--;
	/* a sequence cut at the end is cleaned away */
	json_t *j = jmap_string(o.data ? o.data : "", o.len);
	buf_clear(&t);
	buf_clear(&o);
	return j;
}

static void
headers_prop(json_t *obj, const char *hdr, size_t hlen)
{
	json_t *arr = json_array();
	struct message_field f;
	size_t pos = 0;

	while (message_next_field(hdr, hlen, &pos, &f)) {
		json_t *o = json_object();
		json_object_set_new(o, "name", jmap_string(f.name, f.name_len));
		/* raw: the value as it is, a leading space as in the field */
		struct buf v;
		buf_init(&v);
		buf_append_char(&v, ' ');
		buf_append(&v, f.value, f.value_len);
		json_object_set_new(o, "value", jmap_string(v.data, v.len));
		buf_clear(&v);
		json_array_append_new(arr, o);
	}
	json_object_set_new(obj, "headers", arr);
}

static json_t *
as_raw(const char *v, size_t len)
{
	struct buf b;
	json_t *j;

	/* the octets after the colon: the leading space kept */
	buf_init(&b);
	buf_append_char(&b, ' ');
	buf_append(&b, v, len);
	j = jmap_string(b.data, b.len);
	buf_clear(&b);
	return j;
}

static json_t *
as_date(const char *v, size_t len)
{
	int64_t t = sort_parse_date(v, len);
	char d[21];

	if (t < 0)
		return json_null();
	jmap_utc_date(t, d);
	return json_string(d);
}

/* One group without a name holding every mailbox (groups are flattened). */
static json_t *
as_grouped(const char *v, size_t len)
{
	return json_pack("[{s:n,s:o}]", "name", "addresses",
	    as_addresses(v, len));
}

/* List-* fields: the URLs in angle brackets (RFC 2369), or null. */
static json_t *
as_urls(const char *v, size_t len)
{
	json_t *arr = json_array();
	size_t i = 0;

	while (i < len) {
		const char *lt = memchr(v + i, '<', len - i), *gt;
		if (lt == NULL || (gt = memchr(lt, '>', len -
		    (size_t)(lt - v))) == NULL)
			break;
		struct buf b;
		buf_init(&b);
		for (const char *p = lt + 1; p < gt; p++)
			if ((unsigned char)*p > ' ')
				buf_append_char(&b, *p);
		if (b.len)
			json_array_append_new(arr, jmap_string(b.data, b.len));
		buf_clear(&b);
		i = (size_t)(gt - v) + 1;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return json_null();
	}
	return arr;
}

static const struct {
	const char *name;
	json_t *(*fn)(const char *, size_t);
} forms[] = {
	{ "asRaw", as_raw }, { "asText", as_text },
	{ "asAddresses", as_addresses }, { "asGroupedAddresses", as_grouped },
	{ "asMessageIds", as_message_ids }, { "asDate", as_date },
	{ "asURLs", as_urls },
};

/* Splits a valid header: property; the form's function, *all. */
static bool
header_prop_split(const char *prop, char *name, size_t namesz,
    json_t *(**fn)(const char *, size_t), bool *all)
{
	const char *p = prop + 7, *c;
	size_t nl;

	if (strncmp(prop, "header:", 7) != 0)
		return false;
	c = strchr(p, ':');
	nl = c ? (size_t)(c - p) : strlen(p);
	if (nl == 0 || nl >= namesz)
		return false;
	for (size_t i = 0; i < nl; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] > '~')
			return false;
	memcpy(name, p, nl);
	name[nl] = '\0';
	*fn = as_raw;
	*all = false;
	if (c == NULL)
		return true;
	p = c + 1;
	if (strcmp(p, "all") == 0) {
		*all = true;
		return true;
	}
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t fl = strlen(forms[i].name);
		if (strncmp(p, forms[i].name, fl) == 0 && (p[fl] == '\0' ||
		    strcmp(p + fl, ":all") == 0)) {
			*fn = forms[i].fn;
			*all = p[fl] != '\0';
			return true;
		}
	}
	return false;
}

bool
jmap_header_prop_valid(const char *prop)
{
	char name[256];
	json_t *(*fn)(const char *, size_t);
	bool all;

	return header_prop_split(prop, name, sizeof(name), &fn, &all);
}

void
jmap_header_prop(json_t *obj, const char *prop, const char *hdr, size_t hlen)
{
	char name[256];
	json_t *(*fn)(const char *, size_t);
	bool all;
	struct message_field f;
	size_t pos = 0;
	json_t *last = NULL, *arr = json_array();

	if (!header_prop_split(prop, name, sizeof(name), &fn, &all)) {
		json_decref(arr);
		return;
	}
	while (message_next_field(hdr, hlen, &pos, &f)) {
		if (f.name_len != strlen(name) || !ascii_strncaseeq(f.name, name,
		    f.name_len))
			continue;
		if (all)
			json_array_append_new(arr, fn(f.value, f.value_len));
		else {
			json_decref(last);
			last = fn(f.value, f.value_len);   /* the last one */
		}
	}
	if (all)
		json_object_set_new(obj, prop, arr);
	else {
		json_decref(arr);
		json_object_set_new(obj, prop, last ? last : json_null());
	}
}

void
jmap_email_props(json_t *obj, const char *msg, size_t len, unsigned want)
{
	size_t hlen = message_header_len(msg, len);
	struct message_field f;

	if (want & JE_MESSAGE_ID)
		set_field(obj, msg, hlen, "Message-ID", "messageId",
		    as_message_ids);
	if (want & JE_IN_REPLY_TO)
		set_field(obj, msg, hlen, "In-Reply-To", "inReplyTo",
		    as_message_ids);
	if (want & JE_REFERENCES)
		set_field(obj, msg, hlen, "References", "references",
		    as_message_ids);
	if (want & JE_SENDER)
		set_field(obj, msg, hlen, "Sender", "sender", as_addresses);
	if (want & JE_FROM)
		set_field(obj, msg, hlen, "From", "from", as_addresses);
	if (want & JE_TO)
		set_field(obj, msg, hlen, "To", "to", as_addresses);
	if (want & JE_CC)
		set_field(obj, msg, hlen, "Cc", "cc", as_addresses);
	if (want & JE_BCC)
		set_field(obj, msg, hlen, "Bcc", "bcc", as_addresses);
	if (want & JE_REPLY_TO)
		set_field(obj, msg, hlen, "Reply-To", "replyTo", as_addresses);
	if (want & JE_SUBJECT)
		set_field(obj, msg, hlen, "Subject", "subject", as_text);
	if (want & JE_SENT_AT) {
		int64_t t = -1;
		if (message_find_field(msg, hlen, "Date", &f))
			t = sort_parse_date(f.value, f.value_len);
		if (t >= 0) {
			char d[21];
			jmap_utc_date(t, d);
			json_object_set_new(obj, "sentAt", json_string(d));
		} else
			json_object_set_new(obj, "sentAt", json_null());
	}
	if (want & JE_HEADERS)
		headers_prop(obj, msg, hlen);
	if (want & (JE_HAS_ATTACHMENT | JE_PREVIEW)) {
		struct mime_part *root = mime_parse(msg, len);
		if (want & JE_HAS_ATTACHMENT)
			json_object_set_new(obj, "hasAttachment",
			    json_boolean(has_attachment(root)));
		if (want & JE_PREVIEW)
			json_object_set_new(obj, "preview", preview(msg, root));
		mime_free(root);
	}
}
