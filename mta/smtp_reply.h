/* SPDX-License-Identifier: ISC */
/*
 * smtp_reply.h - layer 1 (pure): SMTP replies. The one table that maps
 * parser and DATA-framing statuses to reply code, enhanced status code
 * (RFC 3463) and text, and the formatting of (multi-line) replies.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stdbool.h>

#include "buf.h"
#include "smtp_data.h"
#include "smtp_parse.h"

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

#endif
