/* SPDX-License-Identifier: ISC */
/*
 * message.c - layer 1 (pure). RFC 5322 2.2 header fields (name, colon,
 * value, folding by leading WSP), 3.3 dates, 3.4 address lists, RFC 5321
 * 4.4 trace fields.
 * Bytes are LF-terminated lines as the queue and Maildirs store them.
 * Header values pass through as they are: only our own fields are built
 * here, from values the session has already validated (no CR/LF).
 */
#include "mail/message.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

size_t
message_header_len(const char *msg, size_t len)
{
	if (len > 0 && msg[0] == '\n')
		return 1;
	for (size_t i = 0; i + 1 < len; i++) {
		const char *nl = memchr(msg + i, '\n', len - i - 1);
		if (nl == NULL)
			break;
		i = (size_t)(nl - msg);
		if (msg[i + 1] == '\n')
			return i + 2;
	}
	return len;
}

bool
message_next_field(const char *msg, size_t len, size_t *pos,
    struct message_field *f)
{
	size_t i = *pos, start = i, colon;

	if (i >= len || msg[i] == '\n' || msg[i] == ' ' || msg[i] == '\t')
		return false;
	while (i < len && msg[i] != ':' && msg[i] != '\n')
		i++;
	if (i >= len || msg[i] != ':' || i == start)
		return false;
	for (size_t k = start; k < i; k++) {
		unsigned char c = (unsigned char)msg[k];
		if (c <= 32 || c >= 127)  /* ftext, RFC 5322 3.6.8 */
			return false;
	}
	colon = i++;
	while (i < len && (msg[i] == ' ' || msg[i] == '\t'))
		i++;
	f->name = msg + start;
	f->name_len = colon - start;
	f->value = msg + i;
	for (;;) {
		const char *nl = memchr(msg + i, '\n', len - i);
		if (nl == NULL) {
			i = len;
			f->value_len = len - (size_t)(f->value - msg);
			break;
		}
		i = (size_t)(nl - msg) + 1;
		if (i < len && (msg[i] == ' ' || msg[i] == '\t'))
			continue; /* folded */
		f->value_len = (size_t)(nl - f->value);
		break;
	}
	*pos = i;
	return true;
}

bool
message_find_field(const char *msg, size_t len, const char *name,
    struct message_field *f)
{
	size_t pos = 0, nlen = strlen(name);

	while (message_next_field(msg, len, &pos, f))
		if (f->name_len == nlen && ascii_strncaseeq(f->name, name, nlen))
			return true;
	return false;
}

/* --- address lists (RFC 5322 3.4) ------------------------------------ */

#define ADDR_BAD ((size_t)-1)

/* Skips white space, folding and (nested) comments; ADDR_BAD if unclosed. */
static size_t
skip_cfws(const char *v, size_t len, size_t i)
{
	for (;;) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' ||
		    v[i] == '\n'))
			i++;
		if (i >= len || v[i] != '(')
			return i;
		size_t depth = 0;
		while (i < len) {
			if (v[i] == '\\' && i + 1 < len) {
				i += 2;
				continue;
			}
			if (v[i] == '(')
				depth++;
			else if (v[i] == ')' && --depth == 0) {
				i++;
				break;
			}
			i++;
		}
		if (depth > 0)
			return ADDR_BAD;
	}
}

/* atext (RFC 5322 3.2.3), and 8-bit octets for UTF-8 (RFC 6532) */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
put(char *out, size_t outsz, size_t *n, char c)
{
	if (*n + 1 >= outsz)
		return false;
	out[(*n)++] = c;
	out[*n] = '\0';
	return true;
}

/*
 * A quoted string at v[i] == '"': the index after it. Its content is
 * appended unescaped to out, unless out is NULL (only skipping it).
 */
static size_t
quoted(const char *v, size_t len, size_t i, char *out, size_t outsz,
    size_t *n)
{
	for (i++; i < len && v[i] != '"'; i++) {
		if (v[i] == '\\' && i + 1 < len)
			i++;
		if (out == NULL || n == NULL)
			continue;
		if (!put(out, outsz, n, v[i]))
			return ADDR_BAD;
	}
	return i < len ? i + 1 : ADDR_BAD;
}

/*
 * word *("." word) for a local part, or dot-atom / domain-literal for a
 * domain, with CFWS allowed around the dots (obs-local-part,
 * obs-domain). Appends to out.
 */
static size_t
dotted(const char *v, size_t len, size_t i, bool domain, char *out,
    size_t outsz)
{
	size_t n = 0;

	out[0] = '\0';
	if ((i = skip_cfws(v, len, i)) == ADDR_BAD)
		return ADDR_BAD;
	if (domain && i < len && v[i] == '[') {
		while (i < len && v[i] != ']') {
			if (v[i] == '\\' || (v[i] == '[' && n > 0) ||
			    !put(out, outsz, &n, v[i]))
				return ADDR_BAD;
			i++;
		}
		if (i >= len || !put(out, outsz, &n, ']'))
			return ADDR_BAD;
		return skip_cfws(v, len, i + 1);
	}
	for (;;) {
		size_t before = n;
		if ((i = skip_cfws(v, len, i)) == ADDR_BAD)
			return ADDR_BAD;
		if (i < len && v[i] == '"' && !domain)
			i = quoted(v, len, i, out, outsz, &n);
		else
			while (i < len && is_atext((unsigned char)v[i]))
				if (!put(out, outsz, &n, v[i++]))
					return ADDR_BAD;
		if (i == ADDR_BAD || n == before)
			return ADDR_BAD;    /* an empty word */
		if ((i = skip_cfws(v, len, i)) == ADDR_BAD)
			return ADDR_BAD;
		if (i >= len || v[i] != '.')
			return i;
		if (!put(out, outsz, &n, '.'))
			return ADDR_BAD;
		i++;
	}
}

static size_t
addr_spec(const char *v, size_t len, size_t i, struct message_addr *a)
{
	i = dotted(v, len, i, false, a->local, sizeof(a->local));
	if (i == ADDR_BAD || i >= len || v[i] != '@')
		return ADDR_BAD;
	return dotted(v, len, i + 1, true, a->domain, sizeof(a->domain));
}

/*
 * Looks ahead from i at the top level (outside quotes and comments) for
 * the first of ':' (a group), '<' (a name-addr), '@' (an addr-spec) or a
 * separator; returns it, or 0 at the end.
 */
static char
next_special(const char *v, size_t len, size_t i)
{
	while (i < len) {
		if (v[i] == '"') {
			if ((i = quoted(v, len, i, NULL, 0, NULL)) == ADDR_BAD)
				return 0;
			continue;
		}
		if (v[i] == '(') {
			if ((i = skip_cfws(v, len, i)) == ADDR_BAD)
				return 0;
			continue;
		}
		if (strchr(":<@,;", v[i]))
			return v[i];
		i++;
	}
	return 0;
}

/* A mailbox at i: name-addr or addr-spec. */
static size_t
mailbox(const char *v, size_t len, size_t i, struct message_addr *a)
{
	size_t nn = 0;

	a->name[0] = '\0';
	if (next_special(v, len, i) == '<') {
		/*
		 * The display name (a phrase) up to the '<': quoted strings
		 * unquoted, comments dropped, white space runs as one space.
		 */
		bool space = false;
		while (i < len && v[i] != '<') {
			if (v[i] == '"') {
				if (space && nn > 0)
					(void)put(a->name, sizeof(a->name), &nn, ' ');
				space = false;
				i = quoted(v, len, i, a->name, sizeof(a->name), &nn);
				if (i == ADDR_BAD)   /* too long: keep what fits */
					return ADDR_BAD;
			} else if (v[i] == '(')
				i = skip_cfws(v, len, i);
			else if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' ||
			    v[i] == '\n') {
				space = true;
				i++;
			} else {
				if (space && nn > 0)
					(void)put(a->name, sizeof(a->name), &nn, ' ');
				space = false;
				(void)put(a->name, sizeof(a->name), &nn, v[i]);
				i++;
			}
			if (i == ADDR_BAD)
				return ADDR_BAD;
		}
		i = skip_cfws(v, len, i + 1);
		/* obs-route: "@a,@b:" before the addr-spec */
		if (i != ADDR_BAD && i < len && v[i] == '@') {
			while (i < len && v[i] != ':' && v[i] != '>')
				i++;
			if (i >= len || v[i] != ':')
				return ADDR_BAD;
			i++;
		}
		if (i == ADDR_BAD ||
		    (i = addr_spec(v, len, i, a)) == ADDR_BAD ||
		    i >= len || v[i] != '>')
			return ADDR_BAD;
		return skip_cfws(v, len, i + 1);
	}
	return addr_spec(v, len, i, a);
}

int
message_parse_addresses(const char *v, size_t len, struct message_addr *out,
    size_t max)
{
	struct message_addr scratch;
	size_t i = 0, n = 0;
	bool in_group = false;

	for (;;) {
		if ((i = skip_cfws(v, len, i)) == ADDR_BAD)
			return -1;
		if (i >= len)
			break;
		if (v[i] == ',') {              /* obs: empty list elements */
			i++;
			continue;
		}
		if (in_group && v[i] == ';') {
			in_group = false;
			i++;
			continue;
		}
		if (!in_group && next_special(v, len, i) == ':') {
			while (v[i] != ':') {   /* the group's display name */
				if (v[i] == '"')
					i = quoted(v, len, i, NULL, 0, NULL);
				else if (v[i] == '(')
					i = skip_cfws(v, len, i);
				else
					i++;
				if (i == ADDR_BAD || i >= len)
					return -1;
			}
			i++;
			in_group = true;
			continue;
		}
		struct message_addr *a = n < max ? &out[n] : &scratch;
		if ((i = mailbox(v, len, i, a)) == ADDR_BAD)
			return -1;
		n++;
		if (i < len && v[i] != ',' && !(in_group && v[i] == ';'))
			return -1;
		if (n > 100000)
			return -1;
	}
	return in_group ? -1 : (int)n;
}

void
message_format_date(char *dst, size_t dstsz, const struct tm *tm,
    long gmtoff)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	long off = gmtoff / 60;
	char sign = off < 0 ? '-' : '+';

	if (off < 0)
		off = -off;
	(void)str_fmt(dst, dstsz, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[(tm->tm_wday % 7 + 7) % 7], tm->tm_mday,
	    months[(tm->tm_mon % 12 + 12) % 12], tm->tm_year + 1900,
	    tm->tm_hour, tm->tm_min, tm->tm_sec, sign, off / 60, off % 60);
}

void
message_append_received(struct buf *out, const struct message_trace *t)
{
	buf_printf(out, "Received: from %s (%s [%s])\n", t->helo,
	    t->client_name ? t->client_name : "unknown", t->client_ip);
	if (t->tls)
		buf_printf(out, "\t(using %s)\n", t->tls);
	buf_printf(out, "\tby %s (Tern) with %s id %s", t->by_host,
	    t->protocol, t->queue_id);
	if (t->for_rcpt)
		buf_printf(out, "\n\tfor %s", t->for_rcpt);
	buf_printf(out, ";\n\t%s\n", t->date);
}

void
message_append_delivery_fields(struct buf *out, const char *sender_path,
    const char *rcpt)
{
	buf_printf(out, "Return-Path: %s\n", sender_path);
	if (rcpt != NULL)
		buf_printf(out, "Delivered-To: %s\n", rcpt);
}

bool
message_has_8bit(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)msg[i] & 0x80)
			return true;
	return false;
}

static void
to_wire(const char *msg, size_t len, struct buf *out, bool stuff)
{
	size_t i = 0;

	buf_reserve(out, len + len / 32 + 8);
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		if (stuff && msg[i] == '.')
			buf_append_char(out, '.');
		buf_append(out, msg + i, end - i);
		buf_append(out, "\r\n", 2);
		i = end + 1;
	}
}

void
message_to_wire(const char *msg, size_t len, struct buf *out)
{
	to_wire(msg, len, out, true);
	buf_append(out, ".\r\n", 3);
}

void
message_to_wire_chunk(const char *msg, size_t len, struct buf *out)
{
	to_wire(msg, len, out, false);
}

void
message_to_wire_lines(const char *msg, size_t len, struct buf *out)
{
	to_wire(msg, len, out, true);
}

size_t
message_wire_size(const char *msg, size_t len, bool stuff)
{
	size_t n = stuff ? 3 : 0, i = 0;     /* ".\r\n" */

	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		n += end - i + 2 + (stuff && msg[i] == '.');
		i = end + 1;
	}
	return n;
}

/* --- 8-bit to 7-bit ---------------------------------------------------- */

#define DOWNGRADE_DEPTH_MAX 10

static void
qp_encode(const char *p, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		char enc[3];
		size_t n;

		if (c == '\n') {
			buf_append_char(out, '\n');
			col = 0;
			continue;
		}
		bool eol = i + 1 == len || p[i + 1] == '\n';
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !eol)) {
			enc[0] = (char)c;
			n = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			n = 3;
		}
		/* soft line break: lines of at most 76 characters */
		if (col + n > 75 && !(eol && col + n <= 76)) {
			buf_append(out, "=\n", 2);
			col = 0;
		}
		buf_append(out, enc, n);
		col += n;
	}
}

/* Lower-cased media type of a Content-Type value ("text/plain"). */
static void
media_type(const char *v, size_t n, char *out, size_t outsz)
{
	size_t k = 0;

	while (n > 0 && (*v == ' ' || *v == '\t' || *v == '\n'))
		v++, n--;
	for (size_t i = 0; i < n && k + 1 < outsz && v[i] != ';' &&
	    v[i] != ' ' && v[i] != '\t' && v[i] != '\n'; i++)
		out[k++] = (char)ascii_tolower((unsigned char)v[i]);
	out[k] = '\0';
}

/* The boundary parameter of a Content-Type value; 0 or -1. */
static int
boundary_param(const char *v, size_t n, char *out, size_t outsz)
{
	for (size_t i = 0; i + 9 <= n; i++) {
		if (!ascii_strncaseeq(v + i, "boundary=", 9) ||
		    (i > 0 && v[i - 1] != ';' && v[i - 1] != ' ' &&
		    v[i - 1] != '\t' && v[i - 1] != '\n'))
			continue;
		size_t j = i + 9, k = 0;
		bool quoted = j < n && v[j] == '"';
		if (quoted)
			j++;
		for (; j < n && k + 1 < outsz; j++) {
			if (quoted ? v[j] == '"' : (v[j] == ';' ||
			    v[j] == ' ' || v[j] == '\t' || v[j] == '\n'))
				break;
			out[k++] = v[j];
		}
		out[k] = '\0';
		return k > 0 ? 0 : -1;
	}
	return -1;
}

static int downgrade_entity(const char *m, size_t len, struct buf *out,
    bool top, bool digest, int depth);

/* Copies a header section, dropping Content-Transfer-Encoding fields. */
static void
copy_header_without_cte(const char *h, size_t hlen, struct buf *out)
{
	size_t pos = 0, at = 0;
	struct message_field f;

	while (at = pos, message_next_field(h, hlen, &pos, &f)) {
		if (f.name_len == 25 && ascii_strncaseeq(f.name,
		    "Content-Transfer-Encoding", 25))
			continue;
		buf_append(out, h + at, pos - at);
	}
	/* anything the iterator did not take (should be nothing) */
	if (pos < hlen && h[pos] != '\n')
		buf_append(out, h + pos, hlen - pos);
}

static int
downgrade_multipart(const char *m, size_t len, size_t hlen,
    const char *boundary, bool digest, struct buf *out, int depth)
{
	size_t blen = strlen(boundary), i = hlen;
	bool in_part = false, closed = false;
	size_t part_start = 0;

	buf_append(out, m, hlen);
	while (i < len) {
		const char *nl = memchr(m + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - m) : len;
		size_t next = nl ? end + 1 : len;
		/*
		 * RFC 2046 5.1.1: a delimiter line is "--" boundary, "--" more
		 * for the last one, then only white space; a line that merely
		 * starts with the boundary is body text.
		 */
		bool delim = end - i >= blen + 2 && m[i] == '-' &&
		    m[i + 1] == '-' && memcmp(m + i + 2, boundary, blen) == 0;
		bool last = false;
		if (delim) {
			size_t k = i + 2 + blen;
			if (end - k >= 2 && m[k] == '-' && m[k + 1] == '-') {
				last = true;
				k += 2;
			}
			for (; k < end; k++)
				if (m[k] != ' ' && m[k] != '\t')
					delim = false;
		}
		if (delim && !closed) {
			if (in_part) {
				/* the part ends before the line break */
				size_t pend = i > part_start ? i - 1 : i;
				if (downgrade_entity(m + part_start,
				    pend - part_start, out, false, digest,
				    depth + 1) != 0)
					return -1;
				buf_append_char(out, '\n');
			}
			buf_append(out, m + i, next - i);
			in_part = !last;
			closed = last;
			part_start = next;
		} else if (!in_part) {
			/* preamble or epilogue: copied, must be 7-bit */
			if (message_has_8bit(m + i, end - i))
				return -1;
			buf_append(out, m + i, next - i);
		}
		i = next;
	}
	if (in_part)
		return -1; /* never closed */
	return 0;
}

/*
 * One entity. Its type is its Content-Type, else the default of RFC 2045
 * 5.2 (text/plain; charset=us-ascii) or, inside multipart/digest,
 * message/rfc822 (RFC 2046 5.1.5). An 8-bit leaf without a Content-Type
 * has an undeclared charset: it is labelled "unknown-8bit" (RFC 1428) as
 * it is encoded, so that readers do not take it for ASCII.
 */
static int
downgrade_entity(const char *m, size_t len, struct buf *out, bool top,
    bool digest, int depth)
{
	size_t hlen = message_header_len(m, len);
	struct message_field f;
	char type[128], boundary[200];
	bool typed;

	if (depth > DOWNGRADE_DEPTH_MAX || message_has_8bit(m, hlen))
		return -1;
	if (!message_has_8bit(m + hlen, len - hlen)) {
		buf_append(out, m, len);
		return 0;
	}
	(void)str_copy(type, sizeof(type), digest ? "message/rfc822" :
	    "text/plain");
	typed = message_find_field(m, hlen, "Content-Type", &f);
	if (typed)
		media_type(f.value, f.value_len, type, sizeof(type));
	if (strncmp(type, "multipart/", 10) == 0) {
		if (boundary_param(f.value, f.value_len, boundary,
		    sizeof(boundary)) != 0)
			return -1;
		return downgrade_multipart(m, len, hlen, boundary,
		    strcmp(type, "multipart/digest") == 0, out, depth);
	}
	if (strncmp(type, "message/", 8) == 0)
		return -1; /* RFC 2046 5.2: never encoded */
	/* a leaf with an 8-bit body: quoted-printable */
	size_t body_at = hlen;
	size_t hdr_end = hlen;
	if (hdr_end > 0 && m[hdr_end - 1] == '\n' && hdr_end >= 2 &&
	    m[hdr_end - 2] == '\n')
		hdr_end--;  /* keep the empty line for after our field */
	else if (hdr_end == 1 && m[0] == '\n')
		hdr_end = 0;
	copy_header_without_cte(m, hdr_end, out);
	if (top && !message_find_field(m, hlen, "MIME-Version", &f))
		buf_append_str(out, "MIME-Version: 1.0\n");
	if (!typed)
		buf_append_str(out, "Content-Type: text/plain; "
		    "charset=unknown-8bit\n");
	buf_append_str(out, "Content-Transfer-Encoding: quoted-printable\n\n");
	qp_encode(m + body_at, len - body_at, out);
	return 0;
}

int
message_downgrade(const char *msg, size_t len, struct buf *out)
{
	size_t mark = out->len;

	if (downgrade_entity(msg, len, out, true, false, 0) != 0) {
		out->len = mark;
		return -1;
	}
	return 0;
}

int
message_submission_fixup(struct buf *msg, size_t start, const char *date,
    const char *msgid, const char **why)
{
	const char *m = msg->data + start;
	size_t len = msg->len - start, hlen = message_header_len(m, len);
	struct message_field f;
	struct buf add;

	if (!message_find_field(m, hlen, "From", &f)) {
		*why = "the message has no From: field";
		return -1;
	}
	if (!message_find_field(m, hlen, "To", &f) &&
	    !message_find_field(m, hlen, "Cc", &f) &&
	    !message_find_field(m, hlen, "Bcc", &f)) {
		*why = "the message has no To:, Cc: or Bcc: field";
		return -1;
	}
	buf_init(&add);
	if (!message_find_field(m, hlen, "Date", &f))
		buf_printf(&add, "Date: %s\n", date);
	if (!message_find_field(m, hlen, "Message-ID", &f))
		buf_printf(&add, "Message-ID: %s\n", msgid);
	/* drop Bcc: fields (their recipients are in the envelope) */
	size_t pos = 0;
	for (;;) {
		size_t at = pos;
		m = msg->data + start;
		len = msg->len - start;
		hlen = message_header_len(m, len);
		if (!message_next_field(m, hlen, &pos, &f))
			break;
		if (f.name_len == 3 && ascii_strncaseeq(f.name, "Bcc", 3)) {
			memmove(msg->data + start + at, msg->data + start + pos,
			    len - pos + 1);
			msg->len -= pos - at;
			pos = at;
		}
	}
	if (add.len) {
		buf_reserve(msg, add.len);
		memmove(msg->data + start + add.len, msg->data + start,
		    msg->len - start + 1);
		memcpy(msg->data + start, add.data, add.len);
		msg->len += add.len;
	}
	buf_clear(&add);
	return 0;
}

unsigned
message_count_fields(const char *msg, size_t len, const char *name)
{
	size_t hl = message_header_len(msg, len), pos = 0, nl = strlen(name);
	struct message_field f;
	unsigned n = 0;

	while (message_next_field(msg, hl, &pos, &f))
		n += f.name_len == nl && ascii_strncaseeq(f.name, name, nl);
	return n;
}
