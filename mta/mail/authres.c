/* SPDX-License-Identifier: ISC */
/*
 * authres.c - layer 1 (pure): Authentication-Results fields
 * (authres.h).
 */
#include "mail/authres.h"

#include <string.h>

#include "base/util.h"
#include "mail/message.h"

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Past white space and (nested) comments from i. */
static size_t
skip_cfws(const char *s, size_t len, size_t i)
{
	int depth = 0;

	while (i < len) {
		if (depth == 0 && is_wsp((unsigned char)s[i]))
			i++;
		else if (s[i] == '(') {
			depth++;
			i++;
		} else if (depth > 0 && s[i] == ')') {
			depth--;
			i++;
		} else if (depth > 0 && s[i] == '\\' && i + 1 < len)
			i += 2;
		else if (depth > 0)
			i++;
		else
			break;
	}
	return i;
}

bool
authres_id(const char *val, size_t len, char *out, size_t outsz)
{
	size_t i = skip_cfws(val, len, 0), n = 0;

	if (i < len && val[i] == '"') {          /* a quoted-string */
		for (i++; i < len && val[i] != '"'; i++) {
			if (val[i] == '\\' && i + 1 < len)
				i++;
			if (n + 1 >= outsz)
				return false;
			out[n++] = val[i];
		}
		if (i >= len)
			return false;
	} else {
		/* a token: up to white space, ';', '(' or the end */
		for (; i < len && !is_wsp((unsigned char)val[i]) &&
		    val[i] != ';' && val[i] != '('; i++) {
			if (n + 1 >= outsz)
				return false;
			out[n++] = val[i];
		}
	}
	out[n] = '\0';
	return n > 0;
}

size_t
authres_strip(struct buf *msg, size_t start, const char *id)
{
	size_t pos = 0, taken = 0;
	char got[256];

	for (;;) {
		const char *text = msg->data + start;
		size_t len = msg->len - start;
		size_t hl = message_header_len(text, len);
		struct message_field f;
		size_t at = pos;
		if (!message_next_field(text, hl, &pos, &f))
			break;
		if (f.name_len != 22 || !ascii_strncaseeq(f.name,
		    "Authentication-Results", 22) ||
		    !authres_id(f.value, f.value_len, got, sizeof(got)) ||
		    !ascii_strcaseeq(got, id))
			continue;
		/* the whole field, its line end too */
		memmove(msg->data + start + at, msg->data + start + pos,
		    msg->len - start - pos);
		msg->len -= pos - at;
		msg->data[msg->len] = '\0';
		pos = at;
		taken++;
	}
	return taken;
}

void
authres_begin(struct buf *out, const char *id)
{
	buf_printf(out, "Authentication-Results: %s", id);
}

/* A value as a token, or quoted if it has anything a token may not. */
static void
append_value(struct buf *out, const char *v)
{
	bool plain = *v != '\0';

	for (const char *p = v; *p && plain; p++)
		plain = (unsigned char)*p > ' ' && (unsigned char)*p < 127 &&
		    !strchr("()<>,;:\\\"/[]?=", *p);
	if (plain) {
		buf_append_str(out, v);
		return;
	}
	buf_append_char(out, '"');
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 127)
			continue;          /* nothing that cannot be shown */
		if (*p == '"' || *p == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, *p);
	}
	buf_append_char(out, '"');
}

void
authres_add(struct buf *out, const char *method, const char *result,
    const char *comment, const char *reason, const struct authres_prop *p,
    size_t np)
{
	buf_printf(out, ";\n\t%s=%s", method, result);
	if (comment && *comment) {
		buf_append_str(out, " (");
		for (const char *c = comment; *c; c++)
			if ((unsigned char)*c >= ' ' && (unsigned char)*c < 127 &&
			    *c != '(' && *c != ')' && *c != '\\')
				buf_append_char(out, *c);
		buf_append_char(out, ')');
	}
	if (reason && *reason) {
		buf_append_str(out, " reason=");
		append_value(out, reason);
	}
	for (size_t i = 0; i < np; i++) {
		if (p[i].value == NULL || p[i].value[0] == '\0')
			continue;
		buf_printf(out, " %s=", p[i].name);
		append_value(out, p[i].value);
	}
}

void
authres_end(struct buf *out, size_t nresults)
{
	if (nresults == 0)
		buf_append_str(out, "; none");
	buf_append_char(out, '\n');
}
