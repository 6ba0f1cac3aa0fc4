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

bool
authres_find(const char *msg, size_t len, const char *id, const char **val,
    size_t *vlen)
{
	size_t hl = message_header_len(msg, len), pos = 0;
	struct message_field f;
	char got[256];

	while (message_next_field(msg, hl, &pos, &f))
		if (f.name_len == 22 && ascii_strncaseeq(f.name,
		    "Authentication-Results", 22) &&
		    authres_id(f.value, f.value_len, got, sizeof(got)) &&
		    ascii_strcaseeq(got, id)) {
			*val = f.value;
			*vlen = f.value_len;
			while (*vlen > 0 && (f.value[*vlen - 1] == '\n' ||
			    f.value[*vlen - 1] == '\r'))
				(*vlen)--;
			return true;
		}
	return false;
}

/* Past a quoted string that starts at i. */
static size_t
skip_quoted(const char *s, size_t len, size_t i)
{
	for (i++; i < len && s[i] != '"'; i++)
		if (s[i] == '\\' && i + 1 < len)
			i++;
	return i < len ? i + 1 : len;
}

size_t
authres_method(const char *val, size_t len, const char *method,
    char *result, size_t resultsz)
{
	size_t i = 0, count = 0, ml = strlen(method);
	bool first = true;            /* the authserv-id's part */

	if (resultsz)
		result[0] = '\0';
	while (i < len) {
		/* one resinfo: up to the next ';' outside comments, quotes */
		size_t a = i;
		int depth = 0;
		while (i < len && (depth > 0 || val[i] != ';')) {
			if (val[i] == '"' && depth == 0) {
				i = skip_quoted(val, len, i);
				continue;
			}
			if (val[i] == '\\' && depth > 0 && i + 1 < len)
				i++;
			else if (val[i] == '(')
				depth++;
			else if (val[i] == ')' && depth > 0)
				depth--;
			i++;
		}
		size_t e = i++;
		if (first) {
			first = false;
			continue;
		}
		a = skip_cfws(val, e, a);
		size_t n = a;
		while (n < e && val[n] != '=' && val[n] != '/' &&
		    !is_wsp((unsigned char)val[n]) && val[n] != '(')
			n++;
		if (n - a != ml || !ascii_strncaseeq(val + a, method, ml))
			continue;
		/* [ "/" version ] "=" result */
		n = skip_cfws(val, e, n);
		if (n < e && val[n] == '/') {
			n = skip_cfws(val, e, n + 1);
			while (n < e && val[n] >= '0' && val[n] <= '9')
				n++;
			n = skip_cfws(val, e, n);
		}
		if (n >= e || val[n] != '=')
			continue;
		n = skip_cfws(val, e, n + 1);
		size_t r = n;
		while (r < e && !is_wsp((unsigned char)val[r]) && val[r] != '(')
			r++;
		if (r == n)
			continue;
		if (count++ == 0 && resultsz) {
			size_t l = r - n < resultsz - 1 ? r - n : resultsz - 1;
			for (size_t k = 0; k < l; k++)
				result[k] = (char)((unsigned char)val[n + k] |
				    (val[n + k] >= 'A' && val[n + k] <= 'Z' ?
				    32 : 0));
			result[l] = '\0';
		}
	}
	return count;
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
