/* SPDX-License-Identifier: ISC */
/*
 * smtp_reply.h - layer 1 (pure): SMTP replies. The one table that maps
 * parser and DATA-framing statuses to reply code, enhanced status code
 * (RFC 3463) and text, and the formatting of (multi-line) replies.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stdbool.h>

#include "base/buf.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"

struct smtp_reply {
	int code;
	const char *enh;
	const char *text;
};

/* The reply for a failed parse; SMTP_PARSE_OK is not a valid input. */
struct smtp_reply smtp_reply_for_parse(enum smtp_parse_status st);

/* The reply for the end of a DATA transfer with framing errors. */
struct smtp_reply smtp_reply_for_data_errors(unsigned errors);

/*
 * Appends "code enh text\r\n" (enh may be NULL or ""). Text is cleaned of
 * CR/LF so it can never inject a second reply line.
 */
void smtp_reply_append(struct buf *out, int code, const char *enh,
    const char *text);

/*
 * Appends a multi-line reply: lines[0..n) each become "code-text", the
 * last "code text".
 */
void smtp_reply_append_lines(struct buf *out, int code, const char *const *lines,
    int n);

/*
 * The client side: reads a server's (multi-line) reply one line at a
 * time (without the line end). The text of all lines is kept, joined by
 * a space, up to a bound; a reply of too many lines, a line without a
 * valid code, or codes that change between lines is an error.
 */
#define SMTP_REPLY_LINES_MAX 100
#define SMTP_REPLY_TEXT_MAX 1024

enum smtp_reply_status { SMTP_REPLY_MORE, SMTP_REPLY_DONE, SMTP_REPLY_BAD };

struct smtp_reply_reader {
	int code;
	int nlines;
	char text[SMTP_REPLY_TEXT_MAX];  /* "250 PIPELINING SIZE ..." joined */
	size_t len;
	char lines[32][80];              /* EHLO keywords (first word, upper) */
	int nkeys;
};

void smtp_reply_reader_init(struct smtp_reply_reader *r);
enum smtp_reply_status smtp_reply_reader_feed(struct smtp_reply_reader *r,
    const char *line, size_t len);
/* True if a keyword (EHLO extension) was seen; its parameter in *param. */
bool smtp_reply_has_keyword(const struct smtp_reply_reader *r,
    const char *key, const char **param);

#endif
