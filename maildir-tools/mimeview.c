/* SPDX-License-Identifier: ISC */
/*
 * mimeview.c - see mimeview.h. GMime does the MIME structure, RFC 2047
 * and transfer decoding, and charset conversion (iconv underneath); this
 * file picks what to show and makes every string safe for a terminal
 * (text.c) before anyone prints it.
 */
#include "mimeview.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "text.h"

#define MAX_DEPTH 32

void
mv_init(void)
{
	g_mime_init();
}

GMimeMessage *
mv_parse(const char *data, size_t len)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(s);
	if (m == NULL) {
		/* Not even a header: show the bytes as a plain text body. */
		GMimeTextPart *t = g_mime_text_part_new_with_subtype("plain");
		struct buf b;
		buf_init(&b);
		text_sanitize(&b, data, len, true);
		buf_append_char(&b, '\0');
		m = g_mime_message_new(FALSE);
		g_mime_text_part_set_text(t, b.data);
		g_mime_message_set_mime_part(m, GMIME_OBJECT(t));
		g_object_unref(t);
		buf_clear(&b);
	}
	return m;
}

static char *
safe(const char *s)
{
	struct buf b;

	buf_init(&b);
	if (s != NULL)
		text_sanitize(&b, s, strlen(s), false);
	buf_append_char(&b, '\0');
	return buf_steal(&b, NULL);
}

static char *
list_str(InternetAddressList *l)
{
	char *s, *r;

	if (l == NULL || internet_address_list_length(l) == 0)
		return xstrdup("");
	s = internet_address_list_to_string(l, NULL, FALSE);
	r = safe(s);
	g_free(s);
	return r;
}

/* The first mailbox of a list (groups are looked into). */
static InternetAddressMailbox *
first_mailbox(InternetAddressList *l)
{
	for (int i = 0; l != NULL && i < internet_address_list_length(l); i++) {
		InternetAddress *a = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a))
			return INTERNET_ADDRESS_MAILBOX(a);
		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			InternetAddressMailbox *mb = first_mailbox(
			    internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(a)));
			if (mb != NULL)
				return mb;
		}
	}
	return NULL;
}

size_t
mv_addrs(InternetAddressList *l, char ***v, size_t n)
{
	for (int i = 0; l != NULL && i < internet_address_list_length(l); i++) {
		InternetAddress *a = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *addr = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(a));
			if (addr == NULL || addr[0] == '\0')
				continue;
			*v = xreallocarray(*v, n + 1, sizeof(**v));
			(*v)[n++] = xstrdup(addr);
		} else if (INTERNET_ADDRESS_IS_GROUP(a)) {
			n = mv_addrs(internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(a)), v, n);
		}
	}
	return n;
}

void
mv_head(GMimeMessage *m, struct mv_head *h)
{
	InternetAddressMailbox *mb = first_mailbox(g_mime_message_get_from(m));
	GDateTime *d = g_mime_message_get_date(m);
	const char *refs = g_mime_object_get_header(GMIME_OBJECT(m),
	    "References");
	const char *datehdr = g_mime_object_get_header(GMIME_OBJECT(m), "Date");

	memset(h, 0, sizeof(*h));
	h->from = list_str(g_mime_message_get_from(m));
	h->from_addr = safe(mb ? internet_address_mailbox_get_addr(mb) : "");
	if (mb && internet_address_get_name(INTERNET_ADDRESS(mb)) &&
	    internet_address_get_name(INTERNET_ADDRESS(mb))[0])
		h->from_short = safe(internet_address_get_name(
		    INTERNET_ADDRESS(mb)));
	else if (h->from_addr[0] != '\0' || h->from[0] != '\0')
		h->from_short = xstrdup(h->from_addr[0] ? h->from_addr :
		    h->from);
	else {
		/* No From: at all: the envelope sender delivery recorded */
		const char *rp = g_mime_object_get_header(GMIME_OBJECT(m),
		    "Return-Path");
		char *t = safe(rp ? rp : "");
		size_t n = strlen(t);
		if (n >= 2 && t[0] == '<' && t[n - 1] == '>') {
			memmove(t, t + 1, n - 2);
			t[n - 2] = '\0';
		}
		h->from_short = t[0] ? t : xstrdup("(no sender)");
		if (t[0] == '\0')
			free(t);
	}
	h->to = list_str(g_mime_message_get_to(m));
	h->cc = list_str(g_mime_message_get_cc(m));
	h->reply_to = list_str(g_mime_message_get_reply_to(m));
	h->subject = safe(g_mime_message_get_subject(m));
	h->message_id = safe(g_mime_message_get_message_id(m));
	h->date_full = safe(datehdr);
	if (d != NULL) {
		GDateTime *local = g_date_time_to_local(d);
		gchar *s = local ? g_date_time_format(local,
		    "%Y-%m-%d %H:%M") : NULL;
		h->date = safe(s);
		h->time = g_date_time_to_unix(d);
		g_free(s);
		if (local)
			g_date_time_unref(local);
	} else {
		h->date = xstrdup("");
	}
	/* References: re-joined from GMime's parse, each id in <> */
	{
		struct buf b;
		GMimeReferences *r = refs ? g_mime_references_parse(NULL,
		    refs) : NULL;
		buf_init(&b);
		for (int i = 0; r != NULL && i < g_mime_references_length(r);
		    i++)
			buf_printf(&b, "%s<%s>", b.len ? " " : "",
			    g_mime_references_get_message_id(r, i));
		buf_append_char(&b, '\0');
		if (r != NULL)
			g_mime_references_free(r);
		h->references = safe(b.data);
		buf_clear(&b);
	}
}

void
mv_head_free(struct mv_head *h)
{
	free(h->from);
	free(h->from_short);
	free(h->from_addr);
	free(h->to);
	free(h->cc);
	free(h->reply_to);
	free(h->subject);
	free(h->date);
	free(h->date_full);
	free(h->message_id);
	free(h->references);
}

/* Decoded content of a part (transfer encoding undone), raw bytes. */
static void
part_bytes(GMimePart *p, GByteArray **out)
{
	GMimeDataWrapper *w = g_mime_part_get_content(p);
	GMimeStream *mem = g_mime_stream_mem_new();

	if (w != NULL)
		g_mime_data_wrapper_write_to_stream(w, mem);
	*out = g_byte_array_new();
	{
		GByteArray *ba = g_mime_stream_mem_get_byte_array(
		    GMIME_STREAM_MEM(mem));
		g_byte_array_append(*out, ba->data, ba->len);
	}
	g_object_unref(mem);
}

/* Bytes in charset cs to UTF-8 (iconv through GMime); false if the
 * charset is unknown or the bytes do not convert. */
static bool
to_utf8(const char *cs, const guint8 *data, size_t len, struct buf *out)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *f = g_mime_stream_filter_new(mem);
	GMimeFilter *cf = g_mime_filter_charset_new(cs, "UTF-8");
	bool ok = false;

	if (cf != NULL) {
		GByteArray *ba;
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), cf);
		g_object_unref(cf);
		if (g_mime_stream_write(f, (const char *)data, len) >= 0 &&
		    g_mime_stream_flush(f) == 0) {
			ba = g_mime_stream_mem_get_byte_array(
			    GMIME_STREAM_MEM(mem));
			buf_append(out, ba->data, ba->len);
			ok = true;
		}
	}
	g_object_unref(f);
	g_object_unref(mem);
	return ok;
}

void
mv_part_text(GMimePart *p, bool render_html, struct buf *out)
{
	const char *cs = g_mime_object_get_content_type_parameter(
	    GMIME_OBJECT(p), "charset");
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(p));
	bool html = ct != NULL && g_mime_content_type_is_type(ct, "text",
	    "html");
	GByteArray *raw;
	struct buf u, safe_text;

	part_bytes(p, &raw);
	buf_init(&u);
	if (utf8_valid((const char *)raw->data, raw->len) &&
	    (cs == NULL || ascii_strcaseeq(cs, "us-ascii") ||
	    ascii_strcaseeq(cs, "utf-8") || ascii_strcaseeq(cs, "utf8"))) {
		buf_append(&u, raw->data, raw->len);
	} else if (cs == NULL || ascii_strcaseeq(cs, "us-ascii") ||
	    !to_utf8(cs, raw->data, raw->len, &u) ||
	    !utf8_valid(u.data, u.len)) {
		/* No charset, a wrong one or an unknown one: the commonest
		 * 8-bit case is Latin-1/Windows-1252. */
		buf_reset(&u);
		if (!to_utf8("windows-1252", raw->data, raw->len, &u))
			text_latin1(&u, (const char *)raw->data, raw->len);
	}
	g_byte_array_unref(raw);
	buf_init(&safe_text);
	if (html && render_html) {
		struct buf t;
		buf_init(&t);
		html_to_text(&t, u.data ? u.data : "", u.len);
		text_sanitize(&safe_text, t.data ? t.data : "", t.len, true);
		buf_clear(&t);
	} else {
		text_sanitize(&safe_text, u.data ? u.data : "", u.len, true);
	}
	buf_append(out, safe_text.data ? safe_text.data : "", safe_text.len);
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_append_char(out, '\n');
	buf_clear(&safe_text);
	buf_clear(&u);
}

static bool
is_attachment(GMimeObject *o)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);

	return d != NULL && g_mime_content_disposition_is_attachment(d);
}

static void
add_att(struct mv_view *v, GMimeObject *o)
{
	struct mv_att *a;
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	GMimeStream *null = g_mime_stream_null_new();
	const char *name = NULL;

	v->att = xreallocarray(v->att, v->natt + 1, sizeof(*v->att));
	a = &v->att[v->natt++];
	a->obj = o;
	a->type = safe(type ? type : "application/octet-stream");
	g_free(type);
	if (GMIME_IS_PART(o)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
		name = g_mime_part_get_filename(GMIME_PART(o));
		if (w != NULL)
			g_mime_data_wrapper_write_to_stream(w, null);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));
		if (inner != NULL) {
			g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL,
			    null);
			name = g_mime_message_get_subject(inner);
		}
	}
	a->size = GMIME_STREAM_NULL(null)->written;
	g_object_unref(null);
	if (name != NULL && name[0] != '\0') {
		/* only the last path component, never a path */
		const char *slash = strrchr(name, '/');
		const char *bs = strrchr(slash ? slash : name, '\\');
		name = bs ? bs + 1 : slash ? slash + 1 : name;
	}
	if (name == NULL || name[0] == '\0' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		a->name = xasprintf("part%zu", v->natt);
	else
		a->name = safe(name);
}

static void
walk(GMimeObject *o, struct mv_view *v, int depth)
{
	GMimeContentType *ct;

	if (o == NULL)
		return;
	if (depth > MAX_DEPTH) {
		add_att(v, o);
		return;
	}
	ct = g_mime_object_get_content_type(o);
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		if (ct && g_mime_content_type_is_type(ct, "multipart",
		    "alternative") && n > 0) {
			/* Show text/plain if there is one, else the last one
			 * we can show; the others are not attachments. */
			GMimeObject *pick = NULL;
			for (int i = 0; i < n && pick == NULL; i++) {
				GMimeObject *c = g_mime_multipart_get_part(mp, i);
				GMimeContentType *cct =
				    g_mime_object_get_content_type(c);
				if (GMIME_IS_PART(c) && cct &&
				    g_mime_content_type_is_type(cct, "text",
				    "plain"))
					pick = c;
			}
			for (int i = n - 1; i >= 0 && pick == NULL; i--) {
				GMimeObject *c = g_mime_multipart_get_part(mp, i);
				GMimeContentType *cct =
				    g_mime_object_get_content_type(c);
				if (GMIME_IS_MULTIPART(c) || (cct &&
				    g_mime_content_type_is_type(cct, "text",
				    "*")))
					pick = c;
			}
			walk(pick ? pick : g_mime_multipart_get_part(mp, 0), v,
			    depth + 1);
			return;
		}
		if (n == 0) {
			/* Broken (no boundary, or none found): what GMime
			 * kept as prologue is the text there is. */
			const char *pro = g_mime_multipart_get_prologue(mp);
			if (pro != NULL) {
				if (v->text.len > 0)
					buf_append_str(&v->text, "\n");
				text_sanitize(&v->text, pro, strlen(pro), true);
			}
			return;
		}
		for (int i = 0; i < n; i++)
			walk(g_mime_multipart_get_part(mp, i), v, depth + 1);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(o)) {
		add_att(v, o);
		return;
	}
	if (GMIME_IS_PART(o) && ct != NULL && !is_attachment(o) &&
	    (g_mime_content_type_is_type(ct, "text", "plain") ||
	    g_mime_content_type_is_type(ct, "text", "html"))) {
		if (v->text.len > 0)
			buf_append_str(&v->text, "\n");
		mv_part_text(GMIME_PART(o), true, &v->text);
		return;
	}
	add_att(v, o);
}

void
mv_render(GMimeMessage *m, struct mv_view *v)
{
	memset(v, 0, sizeof(*v));
	buf_init(&v->text);
	walk(g_mime_message_get_mime_part(m), v, 0);
	if (v->text.len == 0 || v->text.data[v->text.len - 1] != '\n')
		buf_append_char(&v->text, '\n');
}

void
mv_view_free(struct mv_view *v)
{
	for (size_t i = 0; i < v->natt; i++) {
		free(v->att[i].name);
		free(v->att[i].type);
	}
	free(v->att);
	buf_clear(&v->text);
}

int
mv_save(const struct mv_att *a, int fd)
{
	GMimeStream *s = g_mime_stream_fs_new(dup(fd));
	ssize_t rc = -1;

	if (s == NULL)
		return -1;
	if (GMIME_IS_PART(a->obj)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(a->obj));
		rc = w ? g_mime_data_wrapper_write_to_stream(w, s) : 0;
	} else if (GMIME_IS_MESSAGE_PART(a->obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(a->obj));
		rc = inner ? g_mime_object_write_to_stream(GMIME_OBJECT(inner),
		    NULL, s) : 0;
	}
	if (g_mime_stream_flush(s) != 0)
		rc = -1;
	g_object_unref(s);
	return rc < 0 ? -1 : 0;
}
