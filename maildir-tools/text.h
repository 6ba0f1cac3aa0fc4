/* SPDX-License-Identifier: ISC */
/*
 * text.h - pure text helpers for ternmail: making untrusted bytes safe to
 * print (valid UTF-8, no terminal control sequences), Latin-1 fallback,
 * a small HTML-to-text renderer, and display-width fitting of columns.
 * No I/O; display widths follow the C library's wcwidth() (the caller
 * sets a UTF-8 LC_CTYPE).
 */
#ifndef TERNMAIL_TEXT_H
#define TERNMAIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

bool utf8_valid(const char *s, size_t n);

/*
 * Appends s to out as valid UTF-8 with nothing a terminal would obey:
 * invalid sequences become U+FFFD, C0/C1 controls and DEL are dropped
 * except tab and (when multiline) newline; CR is dropped.
 */
void text_sanitize(struct buf *out, const char *s, size_t n, bool multiline);

/* Appends ISO-8859-1 bytes as UTF-8. */
void text_latin1(struct buf *out, const char *s, size_t n);

/*
 * Renders HTML as plain text: tags removed, script/style skipped, block
 * elements and <br> as line breaks, list items as "* ", entities
 * decoded (named common ones and numeric), runs of white space folded,
 * link targets shown after the link text. Output is UTF-8 (input is).
 */
void html_to_text(struct buf *out, const char *s, size_t n);

/* Display columns of a UTF-8 string (control/invalid count as 1). */
size_t text_width(const char *s);

/*
 * Appends s cut to at most width columns ("…" marks a cut) and, when
 * pad, padded with spaces to exactly width. width 0 means no limit.
 */
void text_fit(struct buf *out, const char *s, size_t width, bool pad);

/* Appends s as the inside of a JSON string. */
void json_escape(struct buf *out, const char *s);

#endif
