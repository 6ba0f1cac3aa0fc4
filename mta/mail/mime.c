/* SPDX-License-Identifier: ISC */
/*
 * mime.c - layer 1 (pure): MIME structure, BODYSTRUCTURE, ENVELOPE and
 * section lookup for IMAP (mime.h). RFC 2045 5 (Content-Type and its
 * parameters), 6 (Content-Transfer-Encoding), RFC 2046 5.1.1 (boundaries),
 * 5.2.1 (message/rfc822), RFC 2183 (Content-Disposition), RFC 9051 7.5.2.
 * Offsets point into the caller's message, which must outlive the tree.
 */
#include "mail/mime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/message.h"

struct ctx {
	const char *msg;
	size_t nparts;
};

uint64_t
mime_crlf_size(const char *p, size_t len)
{
	uint64_t n = len;

	for (const char *e = p + len; (p = memchr(p, '\n', (size_t)(e - p)));
	    p++)
		n++;
	return n;
}

void
mime_append_crlf(struct buf *out, const char *p, size_t len)
{
	const char *e = p + len;

	buf_reserve(out, len + len / 40 + 2);
	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		if (nl == NULL) {
			buf_append(out, p, (size_t)(e - p));
			return;
		}
		buf_append(out, p, (size_t)(nl - p));
		buf_append(out, "\r\n", 2);
		p = nl + 1;
	}
}

static uint64_t
count_lines(const char *p, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (p[i] == '\n')
			n++;
	if (len > 0 && p[len - 1] != '\n')
		n++;
	return n;
}

/* The field's value unfolded and trimmed, as a new string. */
static char *
unfold(const char *v, size_t n)
{
	char *s = xmalloc(n + 1);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\n' || v[i] == '\r')
			continue;
		s[k++] = v[i];
	}
	while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
		k--;
	s[k] = '\0';
	size_t lead = strspn(s, " \t");
	if (lead)
		memmove(s, s + lead, k - lead + 1);
	return s;
}

static size_t
skip_ws_comments(const char *s, size_t i)
{
	for (;;) {
		while (s[i] == ' ' || s[i] == '\t')
			i++;
		if (s[i] != '(')
			return i;
		int depth = 0;
		while (s[i]) {
			if (s[i] == '\\' && s[i + 1]) {
				i += 2;
				continue;
			}
			if (s[i] == '(')
				depth++;
			else if (s[i] == ')' && --depth == 0) {
				i++;
				break;
			}
			i++;
		}
	}
}

/* RFC 2045 token characters */
static bool
is_token(unsigned char c)
{
	return c > ' ' && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

static size_t
get_token(const char *s, size_t i, char *out, size_t outsz)
{
	size_t n = 0;

	while (s[i] && is_token((unsigned char)s[i])) {
		if (n + 1 < outsz)
			out[n++] = (char)ascii_tolower((unsigned char)s[i]);
		i++;
	}
	out[n] = '\0';
	return i;
}

/* "value; a=b; c="d"" after the value: the parameters. */
static void
parse_params(const char *s, size_t i, struct mime_param **params, size_t *n)
{
	size_t cap = 0;

	for (;;) {
		i = skip_ws_comments(s, i);
		if (s[i] != ';')
			return;
		i = skip_ws_comments(s, i + 1);
		char name[128];
		i = get_token(s, i, name, sizeof(name));
		i = skip_ws_comments(s, i);
		if (name[0] == '\0' || s[i] != '=')
			return;
		i = skip_ws_comments(s, i + 1);
		struct buf v;
		buf_init(&v);
		if (s[i] == '"') {
			for (i++; s[i] && s[i] != '"'; i++) {
				if (s[i] == '\\' && s[i + 1])
					i++;
				buf_append_char(&v, s[i]);
			}
			if (s[i] == '"')
				i++;
		} else
			while (s[i] && s[i] != ';' && s[i] != ' ' &&
			    s[i] != '\t' && s[i] != '(')
				buf_append_char(&v, s[i++]);
		if (*n >= 64) {
			buf_clear(&v);
			return;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			*params = xreallocarray(*params, cap, sizeof(**params));
		}
		(*params)[*n].name = xstrdup(name);
		(*params)[*n].value = v.data ? buf_steal(&v, NULL) : xstrdup("");
		(*n)++;
	}
}

static const char *
param_get(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

static void parse_entity(struct ctx *c, struct mime_part *p, size_t off,
    size_t len, bool digest, int depth);

/* RFC 2046 5.1.1: "--" boundary [ "--" ] *WSP at the start of a line. */
static int
delimiter(const char *l, size_t n, const char *b, size_t bn)
{
	if (n < bn + 2 || l[0] != '-' || l[1] != '-' ||
	    memcmp(l + 2, b, bn) != 0)
		return 0;
	size_t k = bn + 2;
	int kind = 1;
	if (n - k >= 2 && l[k] == '-' && l[k + 1] == '-') {
		kind = 2;
		k += 2;
	}
	for (; k < n; k++)
		if (l[k] != ' ' && l[k] != '\t' && l[k] != '\r')
			return 0;
	return kind;
}

static void
parse_multipart(struct ctx *c, struct mime_part *p, int depth)
{
	const char *m = c->msg;
	const char *bnd = param_get(p, "boundary");
	size_t bn = bnd ? strlen(bnd) : 0;
	size_t i = p->body_off, end = p->body_off + p->body_len;
	size_t part_start = 0, cap = 0;
	bool in_part = false;

	if (bn == 0 || bn > 200)
		return;
	bool digest = strcmp(p->subtype, "digest") == 0;
	while (i < end) {
		const char *nl = memchr(m + i, '\n', end - i);
		size_t le = nl ? (size_t)(nl - m) : end;
		size_t next = nl ? le + 1 : end;
		int kind = delimiter(m + i, le - i, bnd, bn);
		if (kind) {
			if (in_part && p->nchildren < MIME_PARTS_MAX &&
			    c->nparts < MIME_PARTS_MAX) {
				/* the LF before the delimiter belongs to it */
				size_t pend = i > part_start ? i - 1 : i;
				if (p->nchildren == cap) {
					cap = cap ? cap * 2 : 4;
					p->children = xreallocarray(p->children,
					    cap, sizeof(*p->children));
				}
				struct mime_part *ch =
				    &p->children[p->nchildren++];
				memset(ch, 0, sizeof(*ch));
				c->nparts++;
				parse_entity(c, ch, part_start, pend - part_start,
				    digest, depth + 1);
			}
			if (kind == 2)
				return;
			in_part = true;
			part_start = next;
		}
		i = next;
	}
	/* no closing delimiter: the last part runs to the end */
	if (in_part && part_start < end && p->nchildren < MIME_PARTS_MAX &&
	    c->nparts < MIME_PARTS_MAX) {
		if (p->nchildren == cap) {
			cap = cap ? cap * 2 : 4;
			p->children = xreallocarray(p->children, cap,
			    sizeof(*p->children));
		}
		struct mime_part *ch = &p->children[p->nchildren++];
		memset(ch, 0, sizeof(*ch));
		c->nparts++;
		parse_entity(c, ch, part_start, end - part_start, digest,
		    depth + 1);
	}
}

static void
parse_entity(struct ctx *c, struct mime_part *p, size_t off, size_t len,
    bool digest, int depth)
{
	const char *m = c->msg + off;
	size_t hlen = message_header_len(m, len), pos = 0;
	struct message_field f;

	p->hdr_off = off;
	p->hdr_len = hlen;
	p->body_off = off + hlen;
	p->body_len = len - hlen;
	(void)str_copy(p->type, sizeof(p->type), digest ? "message" : "text");
	(void)str_copy(p->subtype, sizeof(p->subtype), digest ? "rfc822" :
	    "plain");
	while (message_next_field(m, hlen, &pos, &f)) {
		char name[32];
		if (f.name_len >= sizeof(name))
			continue;
		for (size_t k = 0; k < f.name_len; k++)
			name[k] = (char)ascii_tolower((unsigned char)f.name[k]);
		name[f.name_len] = '\0';
		char **slot = NULL;
		if (strcmp(name, "content-type") == 0) {
			char *v = unfold(f.value, f.value_len);
			char t[64], st[64];
			size_t i = skip_ws_comments(v, 0);
			i = get_token(v, i, t, sizeof(t));
			i = skip_ws_comments(v, i);
			if (t[0] && v[i] == '/') {
				i = skip_ws_comments(v, i + 1);
				i = get_token(v, i, st, sizeof(st));
				if (st[0]) {
					(void)str_copy(p->type, sizeof(p->type), t);
					(void)str_copy(p->subtype,
					    sizeof(p->subtype), st);
					for (size_t k = 0; k < p->nparams; k++) {
						free(p->params[k].name);
						free(p->params[k].value);
					}
					p->nparams = 0;
					parse_params(v, i, &p->params,
					    &p->nparams);
				}
			}
			free(v);
			continue;
		}
		if (strcmp(name, "content-disposition") == 0) {
			char *v = unfold(f.value, f.value_len);
			char d[64];
			size_t i = get_token(v, skip_ws_comments(v, 0), d,
			    sizeof(d));
			if (d[0] && p->disposition == NULL) {
				p->disposition = xstrdup(d);
				parse_params(v, i, &p->dparams, &p->ndparams);
			}
			free(v);
			continue;
		}
		if (strcmp(name, "content-id") == 0)
			slot = &p->id;
		else if (strcmp(name, "content-description") == 0)
			slot = &p->description;
		else if (strcmp(name, "content-transfer-encoding") == 0)
			slot = &p->encoding;
		else if (strcmp(name, "content-md5") == 0)
			slot = &p->md5;
		else if (strcmp(name, "content-language") == 0)
			slot = &p->language;
		else if (strcmp(name, "content-location") == 0)
			slot = &p->location;
		if (slot && *slot == NULL)
			*slot = unfold(f.value, f.value_len);
	}
	p->body_size = mime_crlf_size(c->msg + p->body_off, p->body_len);
	p->body_lines = count_lines(c->msg + p->body_off, p->body_len);
	if (depth >= MIME_DEPTH_MAX)
		return;
	if (strcmp(p->type, "multipart") == 0)
		parse_multipart(c, p, depth);
	else if (strcmp(p->type, "message") == 0 &&
	    (strcmp(p->subtype, "rfc822") == 0 ||
	    strcmp(p->subtype, "global") == 0) && c->nparts < MIME_PARTS_MAX) {
		p->is_message = true;
		p->children = xcalloc(1, sizeof(*p->children));
		p->nchildren = 1;
		c->nparts++;
		parse_entity(c, &p->children[0], p->body_off, p->body_len,
		    false, depth + 1);
	}
}

struct mime_part *
mime_parse(const char *msg, size_t len)
{
	struct mime_part *root = xcalloc(1, sizeof(*root));
	struct ctx c = { msg, 1 };

	parse_entity(&c, root, 0, len, false, 0);
	return root;
}

static void
free_params(struct mime_param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

static void
part_clear(struct mime_part *p)
{
	free_params(p->params, p->nparams);
	free_params(p->dparams, p->ndparams);
	free(p->id);
	free(p->description);
	free(p->encoding);
	free(p->md5);
	free(p->location);
	free(p->disposition);
	free(p->language);
	for (size_t i = 0; i < p->nchildren; i++)
		part_clear(&p->children[i]);
	free(p->children);
}

void
mime_free(struct mime_part *root)
{
	if (root == NULL)
		return;
	part_clear(root);
	free(root);
}

/* --- output ------------------------------------------------------------ */

/* A quoted string, or a literal if it holds CR, LF or NUL. */
static void
str(struct buf *out, const char *s, size_t n)
{
	bool lit = n > 4000;

	for (size_t i = 0; !lit && i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			lit = true;
	if (lit) {
		buf_printf(out, "{%zu}\r\n", n);
		buf_append(out, s, n);
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, s[i]);
	}
	buf_append_char(out, '"');
}

static void
nstr(struct buf *out, const char *s)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		str(out, s, strlen(s));
}

static void
upper_str(struct buf *out, const char *s)
{
	char tmp[64];
	size_t n = 0;

	for (; *s && n + 1 < sizeof(tmp); s++)
		tmp[n++] = (*s >= 'a' && *s <= 'z') ? (char)(*s - 32) : *s;
	tmp[n] = '\0';
	str(out, tmp, n);
}

static void
params(struct buf *out, const struct mime_param *p, size_t n)
{
	if (n == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_append_char(out, ' ');
		upper_str(out, p[i].name);
		buf_append_char(out, ' ');
		nstr(out, p[i].value);
	}
	buf_append_char(out, ')');
}

static void
disposition(struct buf *out, const struct mime_part *p)
{
	if (p->disposition == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	upper_str(out, p->disposition);
	buf_append_char(out, ' ');
	params(out, p->dparams, p->ndparams);
	buf_append_char(out, ')');
}

static void
write_part(struct buf *out, const char *msg, const struct mime_part *p,
    bool ext, int depth)
{
	buf_append_char(out, '(');
	if (strcmp(p->type, "multipart") == 0 && p->nchildren > 0 &&
	    depth < MIME_DEPTH_MAX + 2) {
		for (size_t i = 0; i < p->nchildren; i++)
			write_part(out, msg, &p->children[i], ext, depth + 1);
		buf_append_char(out, ' ');
		upper_str(out, p->subtype);
		if (ext) {
			buf_append_char(out, ' ');
			params(out, p->params, p->nparams);
			buf_append_char(out, ' ');
			disposition(out, p);
			buf_append_char(out, ' ');
			nstr(out, p->language);
			buf_append_char(out, ' ');
			nstr(out, p->location);
		}
		buf_append_char(out, ')');
		return;
	}
	bool multipart = strcmp(p->type, "multipart") == 0;
	/* a multipart without parts is shown as text/plain (RFC 9051 says
	 * a body has at least one part) */
	upper_str(out, multipart ? "text" : p->type);
	buf_append_char(out, ' ');
	upper_str(out, multipart ? "plain" : p->subtype);
	buf_append_char(out, ' ');
	if (strcmp(p->type, "text") == 0 && param_get(p, "charset") == NULL) {
		struct mime_param def[1 + 64];
		size_t n = 0;
		def[n].name = (char *)"charset";
		def[n++].value = (char *)"us-ascii";
		for (size_t i = 0; i < p->nparams && n < 65; i++)
			def[n++] = p->params[i];
		params(out, def, n);
	} else
		params(out, p->params, p->nparams);
	buf_append_char(out, ' ');
	nstr(out, p->id);
	buf_append_char(out, ' ');
	nstr(out, p->description);
	buf_append_char(out, ' ');
	if (p->encoding)
		upper_str(out, p->encoding);
	else
		str(out, "7BIT", 4);
	buf_printf(out, " %llu", (unsigned long long)p->body_size);
	if (p->is_message && p->nchildren == 1) {
		const struct mime_part *m = &p->children[0];
		buf_append_char(out, ' ');
		mime_write_envelope(out, msg + m->hdr_off, m->hdr_len);
		buf_append_char(out, ' ');
		write_part(out, msg, m, ext, depth + 1);
		buf_printf(out, " %llu", (unsigned long long)p->body_lines);
	} else if (strcmp(p->type, "text") == 0 || multipart)
		buf_printf(out, " %llu", (unsigned long long)p->body_lines);
	if (ext) {
		buf_append_char(out, ' ');
		nstr(out, p->md5);
		buf_append_char(out, ' ');
		disposition(out, p);
		buf_append_char(out, ' ');
		nstr(out, p->language);
		buf_append_char(out, ' ');
		nstr(out, p->location);
	}
	buf_append_char(out, ')');
}

void
mime_write_bodystructure(struct buf *out, const char *msg,
    const struct mime_part *part, bool extended)
{
	write_part(out, msg, part, extended, 0);
}

static void
env_field(struct buf *out, const char *hdr, size_t len, const char *name)
{
	struct message_field f;

	if (!message_find_field(hdr, len, name, &f)) {
		buf_append_str(out, "NIL");
		return;
	}
	char *v = unfold(f.value, f.value_len);
	str(out, v, strlen(v));
	free(v);
}

/* An address list, or NIL; false if the field is absent or empty. */
static bool
env_addrs(struct buf *out, const char *hdr, size_t len, const char *name)
{
	struct message_field f;
	struct message_addr a[50];

	if (!message_find_field(hdr, len, name, &f))
		return false;
	int n = message_parse_addresses(f.value, f.value_len, a, 50);
	if (n <= 0)
		return false;
	buf_append_char(out, '(');
	for (int i = 0; i < n && i < 50; i++) {
		buf_append_char(out, '(');
		nstr(out, a[i].name[0] ? a[i].name : NULL);
		buf_append_str(out, " NIL ");
		nstr(out, a[i].local);
		buf_append_char(out, ' ');
		nstr(out, a[i].domain);
		buf_append_char(out, ')');
	}
	buf_append_char(out, ')');
	return true;
}

void
mime_write_envelope(struct buf *out, const char *hdr, size_t len)
{
	static const char *const lists[] = { "To", "Cc", "Bcc" };

	buf_append_char(out, '(');
	env_field(out, hdr, len, "Date");
	buf_append_char(out, ' ');
	env_field(out, hdr, len, "Subject");
	/* from, sender, reply-to: the last two default to from */
	buf_append_char(out, ' ');
	size_t from_at = out->len;
	if (!env_addrs(out, hdr, len, "From"))
		buf_append_str(out, "NIL");
	size_t from_len = out->len - from_at;
	char *from = xstrndup(out->data + from_at, from_len);
	buf_append_char(out, ' ');
	if (!env_addrs(out, hdr, len, "Sender"))
		buf_append_str(out, from);
	buf_append_char(out, ' ');
	if (!env_addrs(out, hdr, len, "Reply-To"))
		buf_append_str(out, from);
	free(from);
	for (size_t i = 0; i < 3; i++) {
		buf_append_char(out, ' ');
		if (!env_addrs(out, hdr, len, lists[i]))
			buf_append_str(out, "NIL");
	}
	buf_append_char(out, ' ');
	env_field(out, hdr, len, "In-Reply-To");
	buf_append_char(out, ' ');
	env_field(out, hdr, len, "Message-ID");
	buf_append_char(out, ')');
}

const struct mime_part *
mime_find_part(const struct mime_part *root, const char *numbers)
{
	const struct mime_part *p = root;
	const char *s = numbers;

	if (*s == '\0')
		return root;
	while (*s) {
		unsigned long n = 0;
		if (*s < '1' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (unsigned long)(*s++ - '0');
			if (n > MIME_PARTS_MAX)
				return NULL;
		}
		if (*s == '.')
			s++;
		else if (*s != '\0')
			return NULL;
		/* into an enclosed message: its body's parts */
		if (p->is_message && p->nchildren == 1)
			p = &p->children[0];
		if (strcmp(p->type, "multipart") == 0) {
			if (n > p->nchildren)
				return NULL;
			p = &p->children[n - 1];
		} else if (n == 1)
			;   /* part 1 of a single-part body is the body itself */
		else
			return NULL;
	}
	return p;
}

/* --- Content-Transfer-Encoding (RFC 2045 6) ----------------------------- */

/* Lenient, as readers must be (RFC 2045 6.8): what is not base64 is
 * skipped, '=' ends the data. */
static void
decode_base64(const char *p, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '=')
			break;
		int v = b64_digit((unsigned char)p[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_char(out, (char)((acc >> bits) & 0xff));
		}
	}
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Quoted-printable (RFC 2045 6.7): hard line breaks become CRLF, soft
 * ones ("=" at the end of a line) and trailing blanks go; an "=" that
 * starts no escape is kept as it is. */
static void
decode_qp(const char *p, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		size_t e = i;
		while (e < len && p[e] != '\n')
			e++;
		size_t end = e;           /* the line without its LF */
		if (end > i && p[end - 1] == '\r')
			end--;
		while (end > i && (p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;
		bool soft = end > i && p[end - 1] == '=';
		if (soft)
			end--;
		for (size_t k = i; k < end; k++) {
			int h, l;
			if (p[k] == '=' && k + 2 < end &&
			    (h = hex_value((unsigned char)p[k + 1])) >= 0 &&
			    (l = hex_value((unsigned char)p[k + 2])) >= 0) {
				buf_append_char(out, (char)(h << 4 | l));
				k += 2;
			} else
				buf_append_char(out, p[k]);
		}
		if (e < len && !soft)
			buf_append_str(out, "\r\n");
		i = e < len ? e + 1 : e;
	}
}

int
mime_decode(const char *encoding, const char *p, size_t len, struct buf *out)
{
	char enc[32];
	size_t n = 0;

	/* the value without blanks or a comment, any case */
	for (const char *e = encoding ? encoding : ""; *e && *e != '(' &&
	    n + 1 < sizeof(enc); e++)
		if (*e != ' ' && *e != '\t' && *e != '\r' && *e != '\n')
			enc[n++] = (char)tolower((unsigned char)*e);
	enc[n] = '\0';
	if (n == 0 || strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
	    strcmp(enc, "binary") == 0)
		mime_append_crlf(out, p, len);
	else if (strcmp(enc, "base64") == 0)
		decode_base64(p, len, out);
	else if (strcmp(enc, "quoted-printable") == 0)
		decode_qp(p, len, out);
	else
		return -1;
	return 0;
}

int
mime_decode_part(const char *msg, const struct mime_part *p, struct buf *out)
{
	/* a multipart or an enclosed message has no encoding of its own
	 * to undo (RFC 2045 6.4): as it is */
	if (strcmp(p->type, "multipart") == 0 || p->is_message) {
		mime_append_crlf(out, msg + p->body_off, p->body_len);
		return 0;
	}
	return mime_decode(p->encoding, msg + p->body_off, p->body_len, out);
}

/* --- text for SEARCH (the index's full-text rows) ----------------------- */

/* ISO-8859-1 (and what calls itself US-ASCII or Windows-1252, near
 * enough for searching) to UTF-8; other charsets are kept as they are. */
static bool
latin1_charset(const char *cs)
{
	return cs && (ascii_strcaseeq(cs, "iso-8859-1") ||
	    ascii_strcaseeq(cs, "latin1") || ascii_strcaseeq(cs, "iso_8859-1") ||
	    ascii_strcaseeq(cs, "windows-1252") || ascii_strcaseeq(cs, "cp1252"));
}

static void
append_charset(struct buf *out, const char *p, size_t len, bool latin1)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (latin1 && c >= 0x80) {
			buf_append_char(out, (char)(0xc0 | (c >> 6)));
			buf_append_char(out, (char)(0x80 | (c & 0x3f)));
		} else
			buf_append_char(out, (char)c);
	}
}

int
mime_part_text(const char *msg, const struct mime_part *p, struct buf *out)
{
	struct buf d;
	int rc;

	buf_init(&d);
	rc = mime_decode_part(msg, p, &d);
	if (rc == 0) {
		/* CRLF back to LF: text for readers, not for the wire */
		const char *t = d.data ? d.data : "";
		bool latin1 = latin1_charset(param_get(p, "charset"));
		size_t i = 0, start = 0;
		for (; i < d.len; i++)
			if (t[i] == '\r' && i + 1 < d.len && t[i + 1] == '\n') {
				append_charset(out, t + start, i - start, latin1);
				start = i + 1;
			}
		append_charset(out, t + start, d.len - start, latin1);
	}
	buf_clear(&d);
	return rc;
}

/* One encoded word at p ("=?cs?B?...?=", RFC 2047 2): decoded into out
 * (unless NULL), its length returned; 0 if p does not start one. */
static size_t
encoded_word(const char *p, size_t len, struct buf *out)
{
	char cs[64];
	size_t i = 2, n = 0;

	if (len < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	while (i < len && p[i] != '?' && n + 1 < sizeof(cs)) {
		if ((unsigned char)p[i] <= ' ')
			return 0;
		cs[n++] = p[i++];
	}
	cs[n] = '\0';
	char *star = strchr(cs, '*');   /* RFC 2231 language */
	if (star)
		*star = '\0';
	if (i + 3 >= len || p[i] != '?' || p[i + 2] != '?')
		return 0;
	char enc = (char)tolower((unsigned char)p[i + 1]);
	if (enc != 'b' && enc != 'q')
		return 0;
	size_t start = i + 3, end = start;
	while (end + 1 < len && !(p[end] == '?' && p[end + 1] == '=')) {
		if ((unsigned char)p[end] <= ' ')
			return 0;
		end++;
	}
	if (end + 1 >= len)
		return 0;
	if (out == NULL)
		return end + 2;
	struct buf d;
	buf_init(&d);
	if (enc == 'b')
		decode_base64(p + start, end - start, &d);
	else
		for (size_t k = start; k < end; k++) {
			int h, l;
			if (p[k] == '_')
				buf_append_char(&d, ' ');
			else if (p[k] == '=' && k + 2 < end &&
			    (h = hex_value((unsigned char)p[k + 1])) >= 0 &&
			    (l = hex_value((unsigned char)p[k + 2])) >= 0) {
				buf_append_char(&d, (char)(h << 4 | l));
				k += 2;
			} else
				buf_append_char(&d, p[k]);
		}
	append_charset(out, d.data ? d.data : "", d.len, latin1_charset(cs));
	buf_clear(&d);
	return end + 2;
}

void
mime_decode_words(const char *v, size_t len, struct buf *out)
{
	size_t i = 0;
	bool after_word = false;

	while (i < len) {
		size_t w = encoded_word(v + i, len - i, out);
		if (w) {
			i += w;
			after_word = true;
			continue;
		}
		if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n') {
			size_t j = i;
			while (j < len && (v[j] == ' ' || v[j] == '\t' ||
			    v[j] == '\r' || v[j] == '\n'))
				j++;
			/* blanks between two encoded words are not text */
			if (!(after_word && j < len && encoded_word(v + j, len - j,
			    NULL) > 0))
				buf_append_char(out, ' ');
			i = j;
			continue;
		}
		after_word = false;
		buf_append_char(out, v[i++]);
	}
}

static void
search_header(const char *h, size_t hlen, struct buf *out)
{
	struct message_field f;
	size_t pos = 0;

	while (message_next_field(h, hlen, &pos, &f)) {
		buf_append(out, f.name, f.name_len);
		buf_append_str(out, ": ");
		mime_decode_words(f.value, f.value_len, out);
		buf_append_char(out, '\n');
	}
}

static void
search_part(const char *msg, const struct mime_part *p, struct buf *hdr,
    struct buf *body, size_t max, int depth)
{
	if (depth > MIME_DEPTH_MAX || body->len >= max)
		return;
	if (p->is_message && p->nchildren == 1) {
		/* an enclosed message: its header is text of the body */
		const struct mime_part *c = &p->children[0];
		struct buf h;
		buf_init(&h);
		search_header(msg + c->hdr_off, c->hdr_len, &h);
		buf_append(body, h.data ? h.data : "", h.len < max - body->len ?
		    h.len : max - body->len);
		buf_clear(&h);
		search_part(msg, c, hdr, body, max, depth + 1);
		return;
	}
	if (p->nchildren) {
		for (size_t i = 0; i < p->nchildren; i++)
			search_part(msg, &p->children[i], hdr, body, max, depth + 1);
		return;
	}
	if (strcmp(p->type, "text") != 0)
		return;       /* attachments: not searched as text */
	struct buf d;
	buf_init(&d);
	if (mime_decode_part(msg, p, &d) == 0) {
		size_t n = d.len < max - body->len ? d.len : max - body->len;
		append_charset(body, d.data ? d.data : "", n,
		    latin1_charset(param_get(p, "charset")));
		buf_append_char(body, '\n');
	}
	buf_clear(&d);
}

void
mime_search_text(const char *msg, const struct mime_part *root,
    struct buf *hdr, struct buf *body, size_t max)
{
	search_header(msg + root->hdr_off, root->hdr_len, hdr);
	search_part(msg, root, hdr, body, max, 0);
}
