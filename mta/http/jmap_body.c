/* SPDX-License-Identifier: ISC */
/*
 * jmap_body.c - layer 1: Email bodies as JMAP shows them, and messages
 * made from Email/set creates (jmap_body.h). Part ids are the IMAP
 * section numbers of the parts (RFC 9051 6.4.5: "1", "2.1"; a
 * single-part message's body is "1"); a multipart has none. A
 * message/rfc822 part is a leaf, as RFC 8621 4.1.4 has it: its blob is
 * the enclosed message.
 */
#include "http/jmap_body.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sasl.h"
#include "base/util.h"
#include "http/jmap_email.h"
#include "mail/message.h"
#include "mail/mime.h"

static const char *const part_default[] = { "partId", "blobId", "size",
	"name", "type", "charset", "disposition", "cid", "language",
	"location", NULL };
static const char *const part_known[] = { "partId", "blobId", "size",
	"name", "type", "charset", "disposition", "cid", "language",
	"location", "headers", "subParts", NULL };

unsigned
jmap_body_prop_bit(const char *name)
{
	static const struct {
		const char *name;
		unsigned bit;
	} b[] = { { "bodyStructure", JB_STRUCTURE }, { "textBody", JB_TEXT },
		{ "htmlBody", JB_HTML }, { "attachments", JB_ATTACHMENTS },
		{ "bodyValues", JB_VALUES } };

	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (strcmp(b[i].name, name) == 0)
			return b[i].bit;
	return 0;
}

bool
jmap_body_prop_known(const char *name)
{
	for (const char *const *p = part_known; *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return strncmp(name, "header:", 7) == 0 && jmap_header_prop_valid(name);
}

static const char *
param(const struct mime_param *ps, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].name, name) == 0)
			return ps[i].value;
	return NULL;
}

static bool
is_multipart(const struct mime_part *p)
{
	return strcmp(p->type, "multipart") == 0 && p->nchildren > 0;
}

void
jmap_part_blob_id(const char *email_id, const char *part,
    char out[JMAP_BLOB_LEN])
{
	size_t n = (size_t)snprintf(out, JMAP_BLOB_LEN, "P%s_%s", email_id,
	    part);
	for (size_t i = strlen(email_id) + 2; i < n && i < JMAP_BLOB_LEN; i++)
		if (out[i] == '.')
			out[i] = '-';
}

bool
jmap_part_blob_parse(const char *blob, char *email_id, size_t idsz,
    char part[JMAP_PART_LEN])
{
	const char *us;

	if (blob[0] != 'P' || (us = strchr(blob, '_')) == NULL)
		return false;
	size_t n = (size_t)(us - blob - 1), m = strlen(us + 1);
	if (n == 0 || n >= idsz || m == 0 || m >= JMAP_PART_LEN)
		return false;
	memcpy(email_id, blob + 1, n);
	email_id[n] = '\0';
	for (size_t i = 0; i <= m; i++) {
		char c = us[1 + i];
		if (c == '-')
			c = '.';
		else if (c != '\0' && (c < '0' || c > '9'))
			return false;
		part[i] = c;
	}
	return true;
}

int
jmap_part_data(const char *msg, size_t len, const char *part,
    struct buf *out, char *type, size_t typesz)
{
	struct mime_part *root = mime_parse(msg, len);
	const struct mime_part *p = mime_find_part(root, part);
	int rc = -1;

	if (p && !is_multipart(p)) {
		rc = mime_decode_part(msg, p, out);
		if (rc != 0)     /* an unknown encoding: as it is */
			rc = (buf_append(out, msg + p->body_off, p->body_len),
			    0);
		(void)snprintf(type, typesz, "%s/%s", p->type, p->subtype);
	}
	mime_free(root);
	return rc;
}

int
jmap_part_text(const char *msg, size_t len, const char *part,
    struct buf *out)
{
	struct mime_part *root = mime_parse(msg, len);
	const struct mime_part *p = mime_find_part(root, part);
	int rc = -1;

	if (p && strcmp(p->type, "text") == 0) {
		struct buf t;
		buf_init(&t);
		if (mime_part_text(msg, p, &t) == 0) {
			jmap_utf8_clean(t.data ? t.data : "", t.len, out);
			rc = 0;
		}
		buf_clear(&t);
	}
	mime_free(root);
	return rc;
}

/* --- reading ------------------------------------------------------------- */

struct walk {
	const char *msg;
	size_t len;
	const struct jmap_body_opts *o;
	json_t *props;            /* the part properties asked for */
};

static bool
want(const struct walk *w, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(w->props, i, p)
		if (strcmp(json_string_value(p), name) == 0)
			return true;
	return false;
}

static json_t *
decoded_or_null(const char *v)
{
	if (v == NULL)
		return json_null();
	struct buf b;
	buf_init(&b);
	mime_decode_words(v, strlen(v), &b);
	json_t *j = jmap_string(b.data ? b.data : "", b.len);
	buf_clear(&b);
	return j;
}

static json_t *
part_object(const struct walk *w, const struct mime_part *p, const char *id)
{
	json_t *o = json_object();
	bool multi = is_multipart(p);
	size_t i;
	json_t *pr;

	json_array_foreach(w->props, i, pr) {
		const char *n = json_string_value(pr);
		json_t *v = NULL;
		if (strcmp(n, "partId") == 0)
			v = multi ? json_null() : json_string(id);
		else if (strcmp(n, "blobId") == 0) {
			char b[JMAP_BLOB_LEN];
			if (w->o->email_id)
				jmap_part_blob_id(w->o->email_id, id, b);
			v = multi || !w->o->email_id ? json_null() :
			    json_string(b);
		} else if (strcmp(n, "size") == 0) {
			uint64_t sz = p->body_size;
			if (!multi && !p->is_message) {
				struct buf d;
				buf_init(&d);
				if (mime_decode_part(w->msg, p, &d) == 0)
					sz = d.len;
				buf_clear(&d);
			}
			v = json_integer((json_int_t)sz);
		} else if (strcmp(n, "name") == 0) {
			const char *fn = param(p->dparams, p->ndparams,
			    "filename");
			if (fn == NULL)
				fn = param(p->params, p->nparams, "name");
			v = decoded_or_null(fn);
		} else if (strcmp(n, "type") == 0) {
			char t[130];
			(void)snprintf(t, sizeof(t), "%s/%s", p->type,
			    p->subtype);
			v = jmap_string(t, strlen(t));
		} else if (strcmp(n, "charset") == 0) {
			const char *cs = param(p->params, p->nparams,
			    "charset");
			if (cs)
				v = jmap_string(cs, strlen(cs));
			else if (strcmp(p->type, "text") == 0)
				v = json_string("us-ascii");
			else
				v = json_null();
		} else if (strcmp(n, "disposition") == 0)
			v = p->disposition ? jmap_string(p->disposition,
			    strlen(p->disposition)) : json_null();
		else if (strcmp(n, "cid") == 0) {
			if (p->id) {
				const char *s = p->id;
				size_t l = strlen(s);
				while (l && (*s == ' ' || *s == '<'))
					s++, l--;
				while (l && (s[l - 1] == ' ' || s[l - 1] == '>'))
					l--;
				v = jmap_string(s, l);
			} else
				v = json_null();
		} else if (strcmp(n, "language") == 0) {
			if (p->language) {
				v = json_array();
				char *dup = xstrdup(p->language), *save = NULL;
				for (char *t = strtok_r(dup, ", \t", &save); t;
				    t = strtok_r(NULL, ", \t", &save))
					json_array_append_new(v, jmap_string(t,
					    strlen(t)));
				free(dup);
			} else
				v = json_null();
		} else if (strcmp(n, "location") == 0)
			v = p->location ? jmap_string(p->location,
			    strlen(p->location)) : json_null();
		else if (strcmp(n, "headers") == 0 ||
		    strncmp(n, "header:", 7) == 0) {
			json_t *tmp = json_object();
			if (strcmp(n, "headers") == 0)
				jmap_email_props(tmp, w->msg + p->hdr_off,
				    p->hdr_len, JE_HEADERS);
			else
				jmap_header_prop(tmp, n, w->msg + p->hdr_off,
				    p->hdr_len);
			v = json_incref(json_object_get(tmp, n));
			json_decref(tmp);
		} else if (strcmp(n, "subParts") == 0)
			continue;      /* below */
		json_object_set_new(o, n, v ? v : json_null());
	}
	return o;
}

/* The part id of child k of a part whose id is id. */
static void
child_id(const char *id, size_t k, char out[JMAP_PART_LEN])
{
	if (id[0] == '\0')
		(void)snprintf(out, JMAP_PART_LEN, "%zu", k + 1);
	else
		(void)snprintf(out, JMAP_PART_LEN, "%s.%zu", id, k + 1);
}

static json_t *
structure(const struct walk *w, const struct mime_part *p, const char *id,
    int depth)
{
	json_t *o = part_object(w, p, id[0] ? id : "1");

	if (is_multipart(p) && depth < MIME_DEPTH_MAX) {
		json_t *subs = json_array();
		for (size_t k = 0; k < p->nchildren; k++) {
			char cid[JMAP_PART_LEN];
			child_id(id, k, cid);
			json_array_append_new(subs, structure(w,
			    &p->children[k], cid, depth + 1));
		}
		json_object_set_new(o, "subParts", subs);
	}
	return o;
}

/* A leaf part met by parseStructure, and where it went. */
struct leaf {
	const struct mime_part *p;
	char id[JMAP_PART_LEN];
};

struct list {
	struct leaf *v;
	size_t n, cap;
};

static void
push(struct list *l, const struct leaf *x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = *x;
}

static bool
inline_media(const struct mime_part *p)
{
	return strcmp(p->type, "image") == 0 || strcmp(p->type, "audio") == 0 ||
	    strcmp(p->type, "video") == 0;
}

static bool
is_text(const struct mime_part *p, const char *sub)
{
	return strcmp(p->type, "text") == 0 && strcmp(p->subtype, sub) == 0;
}

/* RFC 8621 4.1.4's parseStructure, over the children of p. */
static void
parse_structure(const struct mime_part *parts, size_t nparts,
    const char *parent, bool top, const char *mptype, bool in_alt,
    struct list *html, struct list *text, struct list *att, int depth)
{
	size_t text_len = text ? text->n : (size_t)-1;
	size_t html_len = html ? html->n : (size_t)-1;

	for (size_t i = 0; i < nparts; i++) {
		const struct mime_part *p = &parts[i];
		struct leaf lf;
		lf.p = p;
		if (top)
			(void)str_copy(lf.id, sizeof(lf.id), "1");
		else
			child_id(parent, i, lf.id);
		bool has_name = param(p->dparams, p->ndparams, "filename") ||
		    param(p->params, p->nparams, "name");
		bool attachment = p->disposition &&
		    strcmp(p->disposition, "attachment") == 0;
		bool is_inline = !attachment && (is_text(p, "plain") ||
		    is_text(p, "html") || inline_media(p)) && (i == 0 ||
		    (strcmp(mptype, "related") != 0 && (inline_media(p) ||
		    !has_name)));
		if (is_multipart(p)) {
			if (depth >= MIME_DEPTH_MAX)
				continue;
			const char *sub = p->subtype;
			/* the children of the top multipart are "1", "2" */
			parse_structure(p->children, p->nchildren,
			    top ? "" : lf.id, false, sub, in_alt ||
			    strcmp(sub, "alternative") == 0, html, text, att,
			    depth + 1);
		} else if (is_inline) {
			if (strcmp(mptype, "alternative") == 0) {
				if (is_text(p, "plain") && text)
					push(text, &lf);
				else if (is_text(p, "html") && html)
					push(html, &lf);
				else
					push(att, &lf);
				continue;
			} else if (in_alt) {
				if (is_text(p, "plain"))
					html = NULL;
				if (is_text(p, "html"))
					text = NULL;
			}
			if (text)
				push(text, &lf);
			if (html)
				push(html, &lf);
			if ((!text || !html) && inline_media(p))
				push(att, &lf);
		} else
			push(att, &lf);
	}
	if (strcmp(mptype, "alternative") == 0 && text && html) {
		if (text_len == text->n && html_len != html->n)
			for (size_t i = html_len; i < html->n; i++)
				push(text, &html->v[i]);
		if (html_len == html->n && text_len != text->n)
			for (size_t i = text_len; i < text->n; i++)
				push(html, &text->v[i]);
	}
}

static json_t *
list_json(const struct walk *w, const struct list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, part_object(w, l->v[i].p, l->v[i].id));
	return a;
}

/* A body value (RFC 8621 4.1.4 EmailBodyValue) of a text part. */
static json_t *
body_value(const struct walk *w, const struct mime_part *p)
{
	struct buf t, c;
	bool problem = false, truncated = false;

	buf_init(&t);
	buf_init(&c);
	if (mime_part_text(w->msg, p, &t) != 0) {
		problem = true;
		buf_append(&t, w->msg + p->body_off, p->body_len);
	}
	jmap_utf8_clean(t.data ? t.data : "", t.len, &c);
	if (c.len != t.len || (t.len && memcmp(c.data, t.data, t.len) != 0))
		problem = true;
	size_t n = c.len;
	if (w->o->max_bytes && n > w->o->max_bytes) {
		n = w->o->max_bytes;
		/* not inside a UTF-8 sequence */
		while (n > 0 && (c.data[n] & 0xc0) == 0x80)
			n--;
		truncated = true;
	}
	json_t *o = json_pack("{s:s%,s:b,s:b}", "value", c.data ? c.data : "",
	    n, "isEncodingProblem", problem, "isTruncated", truncated);
	buf_clear(&t);
	buf_clear(&c);
	return o;
}

static void
values_of(const struct walk *w, json_t *vals, const struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].p->type, "text") == 0 &&
		    json_object_get(vals, l->v[i].id) == NULL)
			json_object_set_new(vals, l->v[i].id, body_value(w,
			    l->v[i].p));
}

static void
all_values(const struct walk *w, json_t *vals, const struct mime_part *p,
    const char *id, int depth)
{
	if (is_multipart(p)) {
		if (depth >= MIME_DEPTH_MAX)
			return;
		for (size_t k = 0; k < p->nchildren; k++) {
			char cid[JMAP_PART_LEN];
			child_id(id, k, cid);
			all_values(w, vals, &p->children[k], cid, depth + 1);
		}
	} else if (strcmp(p->type, "text") == 0)
		json_object_set_new(vals, id[0] ? id : "1", body_value(w, p));
}

void
jmap_email_body(json_t *obj, const char *msg, size_t len, unsigned wantb,
    const struct jmap_body_opts *o)
{
	struct mime_part *root = mime_parse(msg, len);
	struct walk w = { msg, len, o, NULL };
	struct list text = { 0 }, html = { 0 }, att = { 0 };

	if (o->props)
		w.props = json_incref(o->props);
	else {
		w.props = json_array();
		for (const char *const *p = part_default; *p; p++)
			json_array_append_new(w.props, json_string(*p));
	}
	if (wantb & JB_STRUCTURE) {
		json_t *s = structure(&w, root, "", 0);
		if (!want(&w, "subParts") && o->props)
			json_object_del(s, "subParts");
		json_object_set_new(obj, "bodyStructure", s);
	}
	parse_structure(root, 1, "", true, "mixed", false, &html, &text, &att,
	    0);
	if (wantb & JB_TEXT)
		json_object_set_new(obj, "textBody", list_json(&w, &text));
	if (wantb & JB_HTML)
		json_object_set_new(obj, "htmlBody", list_json(&w, &html));
	if (wantb & JB_ATTACHMENTS)
		json_object_set_new(obj, "attachments", list_json(&w, &att));
	if (wantb & JB_VALUES) {
		json_t *vals = json_object();
		if (o->fetch_all)
			all_values(&w, vals, root, "", 0);
		else {
			if (o->fetch_text)
				values_of(&w, vals, &text);
			if (o->fetch_html)
				values_of(&w, vals, &html);
		}
		json_object_set_new(obj, "bodyValues", vals);
	}
	free(text.v);
	free(html.v);
	free(att.v);
	json_decref(w.props);
	mime_free(root);
}

/* --- writing ------------------------------------------------------------- */

static bool
ascii_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80 || s[i] == '\n' || s[i] == '\r')
			return false;
	return true;
}

/* Appends n <= 57 octets of d as base64 (the project's encoder). */
static void
append_b64(struct buf *out, const char *d, size_t n)
{
	char enc[80];

	if (sasl_b64_encode(d, n, enc, sizeof(enc)) == 0)
		buf_append_str(out, enc);
}

/* s as one or more RFC 2047 B words (UTF-8), each under 75 octets. */
static void
encode_words(struct buf *out, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		/* 45 octets of input make 60 of base64: whole characters */
		size_t take = n - i > 45 ? 45 : n - i;
		while (take < n - i && take > 1 &&
		    ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		if (i > 0)
			buf_append_str(out, "\n ");
		buf_append_str(out, "=?UTF-8?B?");
		append_b64(out, s + i, take);
		buf_append_str(out, "?=");
		i += take;
	}
}

/* Unstructured text (Subject:): as it is if ASCII, else encoded words. */
static void
put_text(struct buf *out, const char *s)
{
	size_t n = strlen(s);

	if (ascii_only(s, n))
		buf_append(out, s, n);
	else
		encode_words(out, s, n);
}

static bool
atext_only(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!(((unsigned char)*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    strchr("!#$%&'*+-/=?^_`{|}~ ", *s)))
			return false;
	return true;
}

static bool
email_ok(const char *e)
{
	const char *at = strrchr(e, '@');

	if (at == NULL || at == e || at[1] == '\0' || strlen(e) > 320)
		return false;
	for (const char *p = e; *p; p++)
		if ((unsigned char)*p <= ' ' || strchr("<>()[]\\,;:\"", *p))
			return false;
	return true;
}

/* An EmailAddress[] as an address list; false if it is not one. */
static bool
put_addresses(struct buf *out, json_t *arr)
{
	size_t i;
	json_t *a;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return false;
	json_array_foreach(arr, i, a) {
		json_t *name = json_object_get(a, "name");
		json_t *email = json_object_get(a, "email");
		const char *e = json_string_value(email);
		if (!json_is_object(a) || e == NULL || !email_ok(e) ||
		    (name && !json_is_null(name) && !json_is_string(name)))
			return false;
		const char *key;
		json_t *v;
		json_object_foreach(a, key, v)
			if (strcmp(key, "name") != 0 && strcmp(key, "email"))
				return false;
		if (i > 0)
			buf_append_str(out, ",\n ");
		const char *n = json_string_value(name);
		if (n && *n) {
			size_t nl = strlen(n);
			if (!ascii_only(n, nl))
				encode_words(out, n, nl);
			else if (atext_only(n))
				buf_append(out, n, nl);
			else {
				buf_append_char(out, '"');
				for (const char *p = n; *p; p++) {
					if (*p == '"' || *p == '\\')
						buf_append_char(out, '\\');
					buf_append_char(out, *p);
				}
				buf_append_char(out, '"');
			}
			buf_append_str(out, " <");
			buf_append_str(out, e);
			buf_append_char(out, '>');
		} else
			buf_append_str(out, e);
	}
	return true;
}

/* msg-ids from a String[] (without brackets); false if not. */
static bool
put_ids(struct buf *out, json_t *arr)
{
	size_t i;
	json_t *a;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return false;
	json_array_foreach(arr, i, a) {
		const char *s = json_string_value(a);
		if (s == NULL || !email_ok(s))
			return false;
		if (i > 0)
			buf_append_str(out, "\n ");
		buf_append_char(out, '<');
		buf_append_str(out, s);
		buf_append_char(out, '>');
	}
	return true;
}

/* RFC 3339 date-time -> RFC 5322 date; false if it does not parse. */
static bool
put_date(struct buf *out, const char *s)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static const char *const wd[] = { "Thu", "Fri", "Sat", "Sun", "Mon",
		"Tue", "Wed" };
	int y, mo, d, h, mi, se, n = 0;
	char rest[16] = "";

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se,
	    &n) != 6 || n != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 60)
		return false;
	const char *z = s + 19;
	if (*z == '.')
		for (z++; *z >= '0' && *z <= '9'; z++)
			;
	int off = 0;
	if (*z == 'Z' && z[1] == '\0')
		off = 0;
	else if ((*z == '+' || *z == '-') && strlen(z) == 6 && z[3] == ':') {
		int oh, om;
		if (sscanf(z + 1, "%2d:%2d", &oh, &om) != 2)
			return false;
		off = (oh * 60 + om) * (*z == '-' ? -1 : 1);
	} else
		return false;
	/* the weekday of the local date */
	int64_t days = jmap_days_from_civil(y, mo, d);
	(void)snprintf(rest, sizeof(rest), "%c%02d%02d", off < 0 ? '-' : '+',
	    abs(off) / 60, abs(off) % 60);
	char line[80];
	(void)snprintf(line, sizeof(line), "%s, %d %s %04d %02d:%02d:%02d %s",
	    wd[((days % 7) + 7) % 7], d, mon[mo - 1], y, h, mi, se, rest);
	buf_append_str(out, line);
	return true;
}

/* A text body: 7bit when it can be, else quoted-printable UTF-8. */
static void
put_text_part(struct buf *out, const char *type, const char *v)
{
	size_t n = strlen(v);
	bool plain = true;
	size_t col = 0;

	for (size_t i = 0; i < n && plain; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c >= 0x80 || c == '\r' || c == '\0')
			plain = false;
		col = c == '\n' ? 0 : col + 1;
		if (col > 900)
			plain = false;
	}
	buf_printf(out, "Content-Type: %s; charset=utf-8\n", type);
	buf_append_str(out, plain ? "Content-Transfer-Encoding: 7bit\n\n" :
	    "Content-Transfer-Encoding: quoted-printable\n\n");
	if (plain) {
		buf_append(out, v, n);
		if (n && v[n - 1] != '\n')
			buf_append_char(out, '\n');
		return;
	}
	col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		if (c == '\n') {
			buf_append_char(out, '\n');
			col = 0;
			continue;
		}
		bool lit = (c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && i + 1 < n && v[i + 1] != '\n' &&
		    v[i + 1] != '\r');
		size_t w = lit ? 1 : 3;
		if (col + w > 75) {
			buf_append_str(out, "=\n");
			col = 0;
		}
		if (lit)
			buf_append_char(out, (char)c);
		else
			buf_printf(out, "=%02X", c);
		col += w;
	}
	if (col)
		buf_append_char(out, '\n');
}

static void
put_base64(struct buf *out, const char *d, size_t n)
{
	for (size_t i = 0; i < n; i += 57) {
		append_b64(out, d + i, n - i > 57 ? 57 : n - i);
		buf_append_char(out, '\n');
	}
}

static bool
type_ok(const char *t)
{
	const char *sl = strchr(t, '/');

	if (sl == NULL || sl == t || sl[1] == '\0' || strlen(t) > 120)
		return false;
	for (const char *p = t; *p; p++)
		if (!(((unsigned char)*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("!#$&-^_.+/", *p)))
			return false;
	return true;
}

/* A text part's value: partId -> bodyValues[partId].value. */
static const char *
part_value(json_t *create, json_t *part, const char **bad)
{
	json_t *vals = json_object_get(create, "bodyValues");
	const char *id = json_string_value(json_object_get(part, "partId"));
	json_t *v = id ? json_object_get(json_object_get(vals, id), "value") :
	    NULL;

	if (json_object_get(part, "blobId") || !json_is_string(v)) {
		*bad = "bodyValues";
		return NULL;
	}
	return json_string_value(v);
}

/* The one text part of textBody or htmlBody, or NULL. */
static json_t *
single_part(json_t *create, const char *key, const char **bad)
{
	json_t *a = json_object_get(create, key);

	if (a == NULL)
		return NULL;
	if (!json_is_array(a) || json_array_size(a) != 1 ||
	    !json_is_object(json_array_get(a, 0))) {
		*bad = key;
		return NULL;
	}
	return json_array_get(a, 0);
}

/* A body part without a type, or with this one. */
static bool
part_type_is(json_t *part, const char *type)
{
	json_t *t = part ? json_object_get(part, "type") : NULL;

	return t == NULL || (json_is_string(t) && strcmp(json_string_value(t),
	    type) == 0);
}

static const struct jmap_blob *
blob_find(const struct jmap_blob *blobs, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(blobs[i].id, id) == 0)
			return &blobs[i];
	return NULL;
}

json_t *
jmap_email_blob_refs(json_t *create)
{
	json_t *out = json_array(), *a = json_object_get(create,
	    "attachments"), *v;
	size_t i;

	json_array_foreach(a, i, v) {
		json_t *b = json_object_get(v, "blobId");
		if (json_is_string(b))
			json_array_append(out, b);
	}
	return out;
}

static void
boundary(char *out, size_t outsz, const char *seed, int level)
{
	(void)snprintf(out, outsz, "=_tern_%d_%.40s", level, seed);
}

int
jmap_email_build(json_t *create, const char *date, const char *msgid,
    const char *seed, const struct jmap_blob *blobs, size_t nblobs,
    struct buf *out, const char **bad, char *why, size_t whysz)
{
	static const struct {
		const char *prop, *field;
		int form;          /* 0 addresses, 1 ids, 2 text, 3 date */
	} hf[] = {
		{ "from", "From", 0 }, { "sender", "Sender", 0 },
		{ "replyTo", "Reply-To", 0 }, { "to", "To", 0 },
		{ "cc", "Cc", 0 }, { "bcc", "Bcc", 0 },
		{ "subject", "Subject", 2 }, { "sentAt", "Date", 3 },
		{ "messageId", "Message-ID", 1 },
		{ "inReplyTo", "In-Reply-To", 1 },
		{ "references", "References", 1 },
	};
	const char *key;
	json_t *v;

	*bad = NULL;
	why[0] = '\0';
	/* every key must be one we can make something of */
	json_object_foreach(create, key, v) {
		bool ok = strcmp(key, "mailboxIds") == 0 ||
		    strcmp(key, "keywords") == 0 ||
		    strcmp(key, "receivedAt") == 0 ||
		    strcmp(key, "textBody") == 0 ||
		    strcmp(key, "htmlBody") == 0 ||
		    strcmp(key, "bodyValues") == 0 ||
		    strcmp(key, "attachments") == 0 ||
		    (strncmp(key, "header:", 7) == 0 &&
		    jmap_header_prop_valid(key));
		for (size_t i = 0; !ok && i < sizeof(hf) / sizeof(hf[0]); i++)
			ok = strcmp(key, hf[i].prop) == 0;
		if (!ok) {
			(void)snprintf(why, whysz, "property '%.60s' cannot be "
			    "set", key);
			*bad = key;
			return -1;
		}
	}
	size_t start = out->len;
	for (size_t i = 0; i < sizeof(hf) / sizeof(hf[0]); i++) {
		v = json_object_get(create, hf[i].prop);
		if (v == NULL || json_is_null(v)) {
			if (hf[i].form == 3)
				buf_printf(out, "Date: %s\n", date);
			else if (hf[i].form == 1 && strcmp(hf[i].prop,
			    "messageId") == 0)
				buf_printf(out, "Message-ID: <%s>\n", msgid);
			continue;
		}
		size_t mark = out->len;
		buf_printf(out, "%s: ", hf[i].field);
		bool ok;
		switch (hf[i].form) {
		case 0:
			ok = put_addresses(out, v);
			break;
		case 1:
			ok = put_ids(out, v);
			break;
		case 2:
			ok = json_is_string(v) && (put_text(out,
			    json_string_value(v)), true);
			break;
		default:
			ok = json_is_string(v) && put_date(out,
			    json_string_value(v));
			break;
		}
		if (!ok) {
			out->len = mark;
			*bad = hf[i].prop;
			(void)snprintf(why, whysz, "%s is not valid",
			    hf[i].prop);
			return -1;
		}
		buf_append_char(out, '\n');
	}
	/* header:Name:asText / asRaw of other fields */
	json_object_foreach(create, key, v) {
		char name[100];
		const char *form;
		if (strncmp(key, "header:", 7) != 0)
			continue;
		const char *c = strchr(key + 7, ':');
		size_t nl = c ? (size_t)(c - key - 7) : strlen(key + 7);
		form = c ? c + 1 : "asRaw";
		if (nl >= sizeof(name) || !json_is_string(v) ||
		    (strcmp(form, "asText") != 0 && strcmp(form, "asRaw"))) {
			*bad = key;
			(void)snprintf(why, whysz, "only header:Name:asText "
			    "and :asRaw with a string can be set");
			return -1;
		}
		memcpy(name, key + 7, nl);
		name[nl] = '\0';
		static const char *const own[] = { "from", "sender", "reply-to",
			"to", "cc", "bcc", "subject", "date", "message-id",
			"in-reply-to", "references", "mime-version",
			"content-type", "content-transfer-encoding", NULL };
		bool taken = false;
		for (const char *const *o = own; *o; o++)
			taken |= ascii_strcaseeq(name, *o);
		const char *s = json_string_value(v);
		if (taken || (strcmp(form, "asRaw") == 0 &&
		    !ascii_only(s, strlen(s)))) {
			*bad = key;
			(void)snprintf(why, whysz, "%.60s cannot be set this "
			    "way", key);
			return -1;
		}
		buf_printf(out, "%s: ", name);
		if (strcmp(form, "asText") == 0)
			put_text(out, s);
		else
			buf_append_str(out, s[0] == ' ' ? s + 1 : s);
		buf_append_char(out, '\n');
	}
	buf_append_str(out, "MIME-Version: 1.0\n");

	const char *err = NULL;
	json_t *tp = single_part(create, "textBody", &err);
	json_t *hp = err ? NULL : single_part(create, "htmlBody", &err);
	const char *tv = tp ? part_value(create, tp, &err) : NULL;
	const char *hv = hp && !err ? part_value(create, hp, &err) : NULL;
	json_t *att = json_object_get(create, "attachments");
	if (!err && att && !json_is_array(att))
		err = "attachments";
	if (!err && !part_type_is(tp, "text/plain"))
		err = "textBody";
	if (!err && !part_type_is(hp, "text/html"))
		err = "htmlBody";
	if (err) {
		out->len = start;
		*bad = err;
		(void)snprintf(why, whysz, "%s: one part with a partId in "
		    "bodyValues (and its type) is expected", err);
		return -1;
	}
	size_t natt = json_array_size(att);
	char b1[80], b2[80];
	boundary(b1, sizeof(b1), seed, 1);
	boundary(b2, sizeof(b2), seed, 2);
	if (natt) {
		buf_printf(out, "Content-Type: multipart/mixed; "
		    "boundary=\"%s\"\n\n", b1);
		buf_printf(out, "--%s\n", b1);
	}
	if (tv && hv) {
		buf_printf(out, "Content-Type: multipart/alternative; "
		    "boundary=\"%s\"\n\n--%s\n", b2, b2);
		put_text_part(out, "text/plain", tv);
		buf_printf(out, "\n--%s\n", b2);
		put_text_part(out, "text/html", hv);
		buf_printf(out, "\n--%s--\n", b2);
	} else if (hv)
		put_text_part(out, "text/html", hv);
	else
		put_text_part(out, "text/plain", tv ? tv : "");
	for (size_t i = 0; i < natt; i++) {
		json_t *a = json_array_get(att, i);
		const char *bid = json_string_value(json_object_get(a,
		    "blobId"));
		const char *type = json_string_value(json_object_get(a,
		    "type"));
		const char *name = json_string_value(json_object_get(a,
		    "name"));
		const char *disp = json_string_value(json_object_get(a,
		    "disposition"));
		const char *cid = json_string_value(json_object_get(a, "cid"));
		const struct jmap_blob *b = bid ? blob_find(blobs, nblobs,
		    bid) : NULL;
		if (b == NULL) {
			out->len = start;
			*bad = "attachments";
			(void)snprintf(why, whysz, "attachment %zu: blob "
			    "%.40s not found", i, bid ? bid : "(none)");
			return -1;
		}
		if (type == NULL)
			type = b->type ? b->type : "application/octet-stream";
		if (!type_ok(type) || strncmp(type, "multipart/", 10) == 0 ||
		    (disp && strcmp(disp, "inline") != 0 &&
		    strcmp(disp, "attachment") != 0) ||
		    (cid && !email_ok(cid) && strspn(cid, "abcdefghijklmnop"
		    "qrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
		    strlen(cid))) {
			out->len = start;
			*bad = "attachments";
			(void)snprintf(why, whysz, "attachment %zu: type, "
			    "disposition or cid is not valid", i);
			return -1;
		}
		buf_printf(out, "\n--%s\nContent-Type: %s", b1, type);
		if (name) {
			buf_append_str(out, ";\n name=\"");
			size_t nl = strlen(name);
			if (ascii_only(name, nl) && !strpbrk(name, "\"\\"))
				buf_append(out, name, nl);
			else
				encode_words(out, name, nl);
			buf_append_char(out, '"');
		}
		buf_printf(out, "\nContent-Disposition: %s",
		    disp ? disp : "attachment");
		if (name) {
			buf_append_str(out, ";\n filename=\"");
			size_t nl = strlen(name);
			if (ascii_only(name, nl) && !strpbrk(name, "\"\\"))
				buf_append(out, name, nl);
			else
				encode_words(out, name, nl);
			buf_append_char(out, '"');
		}
		if (cid)
			buf_printf(out, "\nContent-ID: <%s>", cid);
		buf_append_str(out, "\nContent-Transfer-Encoding: base64\n\n");
		put_base64(out, b->data, b->len);
	}
	if (natt)
		buf_printf(out, "\n--%s--\n", b1);
	return 0;
}
