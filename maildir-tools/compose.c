/* SPDX-License-Identifier: ISC */
/*
 * compose.c - see compose.h. GMime writes the structure, the encoded
 * words and the transfer encodings; we choose them (UTF-8 text always,
 * quoted-printable only when needed) so what we send is predictable.
 */
#include "compose.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "mimeview.h"
#include "text.h"

#define LINE_MAX_7BIT 78

static GMimeContentEncoding
text_encoding(const char *s, size_t n)
{
	size_t line = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || c == '\0' || c == '\r')
			return GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
		if (c == '\n') {
			line = 0;
			continue;
		}
		if (++line > LINE_MAX_7BIT)
			return GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	}
	/* a line "From " at the start invites mangling by mbox tools */
	return GMIME_CONTENT_ENCODING_7BIT;
}

static GMimeObject *
text_part(const char *body)
{
	GMimeTextPart *t = g_mime_text_part_new_with_subtype("plain");
	struct buf b;
	GMimeStream *s;
	GMimeDataWrapper *w;

	/* LF line ends, ending with one, valid UTF-8 */
	buf_init(&b);
	text_sanitize(&b, body ? body : "", body ? strlen(body) : 0, true);
	if (b.len > 0 && b.data[b.len - 1] != '\n')
		buf_append_char(&b, '\n');
	s = g_mime_stream_mem_new_with_buffer(b.data ? b.data : "", b.len);
	w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(GMIME_PART(t), w);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(t), "charset",
	    utf8_valid(b.data ? b.data : "", b.len) && text_encoding(b.data ?
	    b.data : "", b.len) == GMIME_CONTENT_ENCODING_7BIT ? "us-ascii" :
	    "utf-8");
	g_mime_part_set_content_encoding(GMIME_PART(t),
	    text_encoding(b.data ? b.data : "", b.len));
	g_object_unref(w);
	g_object_unref(s);
	buf_clear(&b);
	return GMIME_OBJECT(t);
}

static const struct {
	const char *ext, *type;
} types[] = {
	{ "txt", "text/plain" }, { "text", "text/plain" },
	{ "html", "text/html" }, { "htm", "text/html" },
	{ "csv", "text/csv" }, { "md", "text/markdown" },
	{ "ics", "text/calendar" }, { "vcf", "text/vcard" },
	{ "pdf", "application/pdf" }, { "zip", "application/zip" },
	{ "gz", "application/gzip" }, { "tgz", "application/gzip" },
	{ "tar", "application/x-tar" }, { "xz", "application/x-xz" },
	{ "json", "application/json" }, { "xml", "application/xml" },
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument."
	    "wordprocessingml.document" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument."
	    "spreadsheetml.sheet" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
	{ "png", "image/png" }, { "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" }, { "gif", "image/gif" },
	{ "webp", "image/webp" }, { "svg", "image/svg+xml" },
	{ "mp3", "audio/mpeg" }, { "ogg", "audio/ogg" },
	{ "mp4", "video/mp4" }, { "eml", "message/rfc822" },
};

const char *
compose_mime_type(const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot = strrchr(base ? base : path, '.');

	if (dot != NULL)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (ascii_strcaseeq(dot + 1, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

static GMimeObject *
attachment(const char *path, struct tern_err *err)
{
	const char *type = compose_mime_type(path);
	const char *base = strrchr(path, '/');
	char media[64];
	const char *slash;
	GMimePart *p;
	GMimeStream *s;
	GMimeDataWrapper *w;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		tern_err_set(err, 66, "", "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* An .eml file goes as bytes: we do not vouch for its structure. */
	if (strcmp(type, "message/rfc822") == 0)
		type = "application/octet-stream";
	slash = strchr(type, '/');
	str_fmt(media, sizeof(media), "%.*s", (int)(slash - type), type);
	p = g_mime_part_new_with_type(media, slash + 1);
	s = g_mime_stream_fs_new(fd);
	w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, w);
	g_object_unref(w);
	g_object_unref(s);
	g_mime_part_set_filename(p, base ? base + 1 : path);
	g_mime_object_set_disposition(GMIME_OBJECT(p), "attachment");
	g_mime_part_set_filename(p, base ? base + 1 : path);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	return GMIME_OBJECT(p);
}

static bool
add_list(GMimeMessage *m, GMimeAddressType type, const char *s,
    struct tern_err *err)
{
	InternetAddressList *l;

	if (s == NULL || s[0] == '\0')
		return true;
	l = internet_address_list_parse(NULL, s);
	if (l == NULL || internet_address_list_length(l) == 0) {
		if (l != NULL)
			g_object_unref(l);
		tern_err_set(err, 65, "", "cannot parse address list: %s", s);
		return false;
	}
	/* every address needs a domain */
	{
		char **v = NULL;
		size_t n = mv_addrs(l, &v, 0);
		bool ok = n > 0;
		for (size_t i = 0; i < n; i++) {
			if (strchr(v[i], '@') == NULL || v[i][0] == '@' ||
			    strchr(v[i], '@')[1] == '\0')
				ok = false;
			free(v[i]);
		}
		free(v);
		if (!ok) {
			g_object_unref(l);
			tern_err_set(err, 65, "", "not a full address "
			    "(user@domain): %s", s);
			return false;
		}
	}
	internet_address_list_append(g_mime_message_get_addresses(m, type), l);
	g_object_unref(l);
	return true;
}

GMimeMessage *
compose_build(const struct compose *c, struct tern_err *err)
{
	GMimeMessage *m = g_mime_message_new(TRUE);
	GMimeObject *body = text_part(c->body);
	GDateTime *now = g_date_time_new_now_local();
	char *id = g_mime_utils_generate_message_id(c->domain ? c->domain :
	    "localhost");

	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, c->from_name,
	    c->from_addr);
	if (!add_list(m, GMIME_ADDRESS_TYPE_TO, c->to, err) ||
	    !add_list(m, GMIME_ADDRESS_TYPE_CC, c->cc, err) ||
	    !add_list(m, GMIME_ADDRESS_TYPE_BCC, c->bcc, err))
		goto fail;
	g_mime_message_set_subject(m, c->subject ? c->subject : "", "utf-8");
	g_mime_message_set_date(m, now);
	g_mime_message_set_message_id(m, id);
	if (c->in_reply_to != NULL && c->in_reply_to[0] != '\0')
		g_mime_object_set_header(GMIME_OBJECT(m), "In-Reply-To",
		    c->in_reply_to, NULL);
	if (c->references != NULL && c->references[0] != '\0')
		g_mime_object_set_header(GMIME_OBJECT(m), "References",
		    c->references, NULL);
	g_mime_object_set_header(GMIME_OBJECT(m), "User-Agent",
	    "ternmail/" PACKAGE_VERSION, NULL);
	if (c->nattach == 0 && c->forward == NULL && c->nextra == 0) {
		g_mime_message_set_mime_part(m, body);
	} else {
		GMimeMultipart *mp = g_mime_multipart_new_with_subtype("mixed");
		g_mime_multipart_add(mp, body);
		for (size_t i = 0; i < c->nattach; i++) {
			GMimeObject *a = attachment(c->attach[i], err);
			if (a == NULL) {
				g_object_unref(mp);
				goto fail;
			}
			g_mime_multipart_add(mp, a);
			g_object_unref(a);
		}
		for (size_t i = 0; i < c->nextra; i++)
			g_mime_multipart_add(mp, c->extra[i]);
		if (c->forward != NULL) {
			GMimeMessagePart *fp = g_mime_message_part_new_with_message(
			    "rfc822", c->forward);
			g_mime_object_set_disposition(GMIME_OBJECT(fp),
			    "inline");
			g_mime_multipart_add(mp, GMIME_OBJECT(fp));
			g_object_unref(fp);
		}
		g_mime_message_set_mime_part(m, GMIME_OBJECT(mp));
		g_object_unref(mp);
	}
	g_mime_object_encode(GMIME_OBJECT(m), GMIME_ENCODING_CONSTRAINT_7BIT);
	g_object_unref(body);
	g_date_time_unref(now);
	g_free(id);
	return m;
fail:
	g_object_unref(body);
	g_object_unref(m);
	g_date_time_unref(now);
	g_free(id);
	return NULL;
}

void
compose_write(GMimeMessage *m, bool with_bcc, struct buf *out)
{
	GMimeFormatOptions *o = g_mime_format_options_new();
	GMimeStream *s = g_mime_stream_mem_new();
	GByteArray *ba;

	g_mime_format_options_set_newline_format(o, GMIME_NEWLINE_FORMAT_UNIX);
	if (!with_bcc)
		g_mime_format_options_add_hidden_header(o, "Bcc");
	g_mime_object_write_to_stream(GMIME_OBJECT(m), o, s);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	buf_append(out, ba->data, ba->len);
	g_object_unref(s);
	g_mime_format_options_free(o);
}

size_t
compose_recipients(GMimeMessage *m, char ***v)
{
	size_t n = 0;

	*v = NULL;
	n = mv_addrs(g_mime_message_get_to(m), v, n);
	n = mv_addrs(g_mime_message_get_cc(m), v, n);
	n = mv_addrs(g_mime_message_get_bcc(m), v, n);
	return n;
}

/* True if s starts with prefix ("re", "fwd", ...) followed by ':' or by
 * "[n]:" (as some agents write), case-insensitively. */
static size_t
prefix_len(const char *s, const char *prefix)
{
	size_t n = strlen(prefix), i;

	if (!ascii_strncaseeq(s, prefix, n))
		return 0;
	i = n;
	if (s[i] == '[') {
		while (s[i] && s[i] != ']')
			i++;
		if (s[i] == ']')
			i++;
	}
	if (s[i] != ':')
		return 0;
	i++;
	while (s[i] == ' ')
		i++;
	return i;
}

char *
compose_reply_subject(const char *s)
{
	size_t k;

	s = s ? s : "";
	while (*s == ' ')
		s++;
	/* "Re: Re: x" and "Re[2]: x" become "Re: x"; "Aw:" (German) too */
	while ((k = prefix_len(s, "re")) > 0 || (k = prefix_len(s, "aw")) > 0)
		s += k;
	return xasprintf("Re: %s", s);
}

char *
compose_forward_subject(const char *s)
{
	s = s ? s : "";
	while (*s == ' ')
		s++;
	if (prefix_len(s, "fwd") > 0 || prefix_len(s, "fw") > 0)
		return xstrdup(s);
	return xasprintf("Fwd: %s", s);
}

void
compose_quote(struct buf *out, const char *text)
{
	const char *p = text ? text : "";

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		buf_append_str(out, n == 0 || p[0] == '>' ? ">" : "> ");
		buf_append(out, p, n);
		buf_append_char(out, '\n');
		p += n + (nl ? 1 : 0);
	}
}
