/* SPDX-License-Identifier: ISC */
/*
 * smtp_reply.c - layer 1 (pure). Reply codes per RFC 5321 4.2 and 4.3.2,
 * enhanced status codes per RFC 3463 / RFC 5248. The session decides
 * *which* reply; this file owns *what it says* for parse and framing errors
 * and how reply lines are formatted.
 */
#include "smtp/smtp_reply.h"

#include <stdio.h>
#include <string.h>

static const struct {
	enum smtp_parse_status st;
	struct smtp_reply reply;
} parse_replies[] = {
	{ SMTP_PARSE_UNKNOWN, { 500, "5.5.1", "Command unrecognized" } },
	{ SMTP_PARSE_BAD_CHAR,
	    { 500, "5.5.2", "Bad character in command (bare CR, LF or NUL)" } },
	{ SMTP_PARSE_SYNTAX, { 501, "5.5.4", "Syntax error in arguments" } },
	{ SMTP_PARSE_BAD_SENDER,
	    { 501, "5.1.7", "Bad sender address syntax" } },
	{ SMTP_PARSE_BAD_RCPT,
	    { 501, "5.1.3", "Bad recipient address syntax" } },
	{ SMTP_PARSE_BAD_PARAM,
	    { 555, "5.5.4", "Malformed MAIL/RCPT parameters" } },
};

struct smtp_reply
smtp_reply_for_parse(enum smtp_parse_status st)
{
	for (size_t i = 0; i < sizeof(parse_replies) / sizeof(parse_replies[0]);
	    i++)
		if (parse_replies[i].st == st)
			return parse_replies[i].reply;
	return (struct smtp_reply){ 500, "5.5.2", "Syntax error" };
}

struct smtp_reply
smtp_reply_for_data_errors(unsigned errors)
{
	/* The most severe first: size is what the client can act on. */
	if (errors & SMTP_DATA_ERR_TOO_BIG)
		return (struct smtp_reply){ 552, "5.3.4",
		    "Message size exceeds fixed maximum message size" };

	if (errors & (SMTP_DATA_ERR_BARE_LF | SMTP_DATA_ERR_BARE_CR))
		return (struct smtp_reply){ 554, "5.6.0",
		    "Message contains bare CR or LF; lines must end in CRLF" };
	if (errors & SMTP_DATA_ERR_NUL)
		return (struct smtp_reply){ 554, "5.6.0",
		    "Message contains NUL bytes" };
	if (errors & SMTP_DATA_ERR_LINE_TOO_LONG)
		return (struct smtp_reply){ 500, "5.5.2",
		    "Line too long (more than 998 octets)" };
	/* then the site's limits on the header section */
	if (errors & SMTP_DATA_ERR_TOO_MANY_FIELDS)
		return (struct smtp_reply){ 552, "5.3.4",
		    "Message has too many header fields" };
	if (errors & SMTP_DATA_ERR_HEADER_TOO_BIG)
		return (struct smtp_reply){ 552, "5.3.4",
		    "Message header section exceeds the size limit" };
	return (struct smtp_reply){ 554, "5.6.0", "Malformed message" };
}

static void
append_clean(struct buf *out, const char *text)
{
	for (; *text; text++)
		buf_append_char(out, (*text == '\r' || *text == '\n') ? ' ' :
		    *text);
}

void
smtp_reply_append(struct buf *out, int code, const char *enh,
    const char *text)
{
	buf_printf(out, "%03d ", code);
	if (enh && *enh) {
		buf_append_str(out, enh);
		buf_append_char(out, ' ');
	}
	append_clean(out, text);
	buf_append(out, "\r\n", 2);
}

void
smtp_reply_append_lines(struct buf *out, int code, const char *const *lines,
    int n)
{
	for (int i = 0; i < n; i++) {
		buf_printf(out, "%03d%c", code, i == n - 1 ? ' ' : '-');
		append_clean(out, lines[i]);
		buf_append(out, "\r\n", 2);
	}
}

void
smtp_reply_reader_init(struct smtp_reply_reader *r)
{
	memset(r, 0, sizeof(*r));
}

enum smtp_reply_status
smtp_reply_reader_feed(struct smtp_reply_reader *r, const char *line,
    size_t len)
{
	int code;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9')
		return SMTP_REPLY_BAD;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTP_REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return SMTP_REPLY_BAD;
	if (++r->nlines > SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_BAD;
	r->code = code;
	/* text: "CODE first-line-text second-line-text ..." */
	const char *t = len > 4 ? line + 4 : "";
	size_t tl = len > 4 ? len - 4 : 0;
	if (r->len == 0)
		r->len = (size_t)snprintf(r->text, sizeof(r->text), "%d", code);
	if (tl > 0 && r->len + 1 < sizeof(r->text)) {
		size_t room = sizeof(r->text) - r->len - 1;
		size_t n = tl < room - 1 ? tl : room - 1;
		r->text[r->len++] = ' ';
		for (size_t i = 0; i < n; i++)
			r->text[r->len++] = ((unsigned char)t[i] < 32 ||
			    (unsigned char)t[i] > 126) ? ' ' : t[i];
		r->text[r->len] = '\0';
	}
	/* EHLO keywords: the first word of each line after the first */
	if (r->nlines > 1 && r->nkeys < 32) {
		size_t k = 0;
		for (; k < tl && k < sizeof(r->lines[0]) - 1 && t[k] != ' '; k++)
			r->lines[r->nkeys][k] = (t[k] >= 'a' && t[k] <= 'z') ?
			    (char)(t[k] - 32) : t[k];
		r->lines[r->nkeys][k] = '\0';
		/* keep the parameter after the keyword, if it fits */
		if (k < tl && t[k] == ' ' && k + 1 < sizeof(r->lines[0])) {
			size_t p = k;
			r->lines[r->nkeys][k++] = '\0';
			for (size_t i = p + 1; i < tl && k <
			    sizeof(r->lines[0]) - 1; i++)
				r->lines[r->nkeys][k++] = t[i];
			r->lines[r->nkeys][k] = '\0';
		}
		r->nkeys++;
	}
	return (len == 3 || line[3] == ' ') ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

bool
smtp_reply_has_keyword(const struct smtp_reply_reader *r, const char *key,
    const char **param)
{
	for (int i = 0; i < r->nkeys; i++)
		if (strcmp(r->lines[i], key) == 0) {
			if (param)
				*param = r->lines[i] + strlen(r->lines[i]) + 1;
			return true;
		}
	return false;
}
