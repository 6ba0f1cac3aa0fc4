/* SPDX-License-Identifier: ISC */
/*
 * smtp_reply.c - layer 1 (pure). Reply codes per RFC 5321 4.2 and 4.3.2,
 * enhanced status codes per RFC 3463 / RFC 5248. The session decides
 * *which* reply; this file owns *what it says* for parse and framing errors
 * and how reply lines are formatted.
 */
#include "smtp_reply.h"

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
