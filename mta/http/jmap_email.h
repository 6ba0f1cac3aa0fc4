/* SPDX-License-Identifier: ISC */
/*
 * jmap_email.h - layer 1: the properties of a JMAP Email (RFC 8621 4.1)
 * that come from the message's bytes: header fields parsed as the RFC
 * says (addresses, message ids, dates, text), hasAttachment, preview.
 * Pure; every string it makes is valid UTF-8 (what is not becomes
 * U+FFFD), so jansson takes it.
 */
#ifndef TERN_JMAP_EMAIL_H
#define TERN_JMAP_EMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"

enum {
	JE_MESSAGE_ID = 1u << 0,
	JE_IN_REPLY_TO = 1u << 1,
	JE_REFERENCES = 1u << 2,
	JE_SENDER = 1u << 3,
	JE_FROM = 1u << 4,
	JE_TO = 1u << 5,
	JE_CC = 1u << 6,
	JE_BCC = 1u << 7,
	JE_REPLY_TO = 1u << 8,
	JE_SUBJECT = 1u << 9,
	JE_SENT_AT = 1u << 10,
	JE_HAS_ATTACHMENT = 1u << 11,
	JE_PREVIEW = 1u << 12,
	JE_HEADERS = 1u << 13,
	JE_BODY = 1u << 14,        /* needs the whole message */
};

#define JMAP_PREVIEW_MAX 256   /* characters (RFC 8621 4.1.4) */

/* The JE_ bit of an Email property name, or 0 if it is not one of them. */
unsigned jmap_email_prop_bit(const char *name);

/*
 * Sets the properties in want of msg[0..len) (LF line ends; the header
 * alone will do unless want has JE_HAS_ATTACHMENT or JE_PREVIEW) on obj.
 */
void jmap_email_props(json_t *obj, const char *msg, size_t len,
    unsigned want);

/*
 * A SearchSnippet field (RFC 8621 5.1): text[0..len) as HTML with each
 * occurrence of the needles (ASCII case-insensitive) in <mark></mark>,
 * everything else escaped. whole: all of the text; else a window of
 * about max characters from a little before the first occurrence, with
 * "..." where it was cut. Returns false (out untouched) if no needle
 * occurs. Cuts only between UTF-8 characters; invalid UTF-8 becomes
 * U+FFFD, white space runs one space.
 */
bool jmap_snippet(const char *text, size_t len, const char *const *needles,
    size_t n, bool whole, size_t max, struct buf *out);

/* hasAttachment of msg[0..len) (RFC 8621 4.1.4). */
bool jmap_has_attachment(const char *msg, size_t len);

/*
 * "header:Name[:asForm][:all]" (RFC 8621 4.1.3): true if prop is one
 * (forms asRaw, asText, asAddresses, asGroupedAddresses, asMessageIds,
 * asDate, asURLs).
 */
bool jmap_header_prop_valid(const char *prop);
/* Sets obj[prop] from the header section hdr[0..hlen); prop is valid. */
void jmap_header_prop(json_t *obj, const char *prop, const char *hdr,
    size_t hlen);

/* Appends s[0..len) to out with every invalid UTF-8 sequence as U+FFFD. */
void jmap_utf8_clean(const char *s, size_t len, struct buf *out);
/* A JSON string of s[0..len) made valid UTF-8 (never NULL). */
json_t *jmap_string(const char *s, size_t len);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t jmap_days_from_civil(int64_t y, int64_t mo, int64_t d);
/* A UTCDate ("2026-12-01T10:00:00Z") to seconds; false if it is not one. */
bool jmap_parse_utc_date(const char *s, int64_t *t);

/* RFC 3339 UTC date-time ("2026-12-01T10:00:00Z") of t (seconds). */
void jmap_utc_date(int64_t t, char out[21]);

#endif
