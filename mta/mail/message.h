/* SPDX-License-Identifier: ISC */
/*
 * message.h - layer 1 (pure): RFC 5322 messages as bytes with LF line ends.
 * Finding the header/body split, reading header fields (unfolded), and
 * building the trace fields Tern prepends (Received:, Return-Path:,
 * Delivered-To:). Dates are formatted from a broken-down time the caller
 * passes in; this file never reads the clock.
 */
#ifndef TERN_MESSAGE_H
#define TERN_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/buf.h"

/* Offset of the body (after the empty line), or len if there is none. */
size_t message_header_len(const char *msg, size_t len);

/*
 * Iterates header fields: *pos starts at 0; each call sets name/value
 * spans (value includes folded continuation lines, without the final LF)
 * and returns true, or false at the end of the header section.
 * A line without a colon ends the iteration (it is not a header).
 */
struct message_field {
	const char *name;
	size_t name_len;
	const char *value;       /* after "Name:" and leading white space */
	size_t value_len;
};
bool message_next_field(const char *msg, size_t len, size_t *pos,
    struct message_field *f);

/* How many fields named name (case-insensitive) the header section of
 * msg[0..len) has. */
unsigned message_count_fields(const char *msg, size_t len, const char *name);

/* Finds the first field named name (case-insensitive); true if found. */
bool message_find_field(const char *msg, size_t len, const char *name,
    struct message_field *f);

/*
 * The mailboxes of an address-list field value (From:, To:, Cc:; RFC 5322
 * 3.4, with the obsolete forms of 4.4: routes, CFWS around dots): display
 * names (kept, unquoted, as written: encoded-words stay encoded), quoted
 * strings, comments and groups are understood; each addr-spec is kept
 * with its local part unquoted. Returns the number
 * of mailboxes (up to max stored in out, the rest counted), or -1 if the
 * value is not an address list.
 */
#define MESSAGE_ADDR_LOCAL_MAX 64     /* RFC 5321 4.5.3.1.1 */
#define MESSAGE_ADDR_DOMAIN_MAX 255   /* RFC 5321 4.5.3.1.2 */
#define MESSAGE_ADDR_NAME_MAX 255
struct message_addr {
	char local[MESSAGE_ADDR_LOCAL_MAX + 1];
	char domain[MESSAGE_ADDR_DOMAIN_MAX + 1];
	char name[MESSAGE_ADDR_NAME_MAX + 1];  /* display name as written
	                                         * (quotes undone), or "" */
};
int message_parse_addresses(const char *v, size_t len,
    struct message_addr *out, size_t max);

/* "Thu, 26 Nov 2026 23:10:00 +0000" (RFC 5322 3.3); gmtoff in seconds. */
void message_format_date(char *dst, size_t dstsz, const struct tm *tm,
    long gmtoff);

struct message_trace {
	const char *helo;        /* the client's HELO/EHLO name */
	const char *client_ip;   /* textual address */
	const char *client_name; /* reverse name, or NULL if unknown */
	const char *by_host;     /* our host name */
	const char *protocol;    /* "SMTP", "ESMTP", ... (RFC 3848) */
	const char *queue_id;
	const char *for_rcpt;    /* "<a@b>" when there is one recipient */
	const char *date;        /* message_format_date() output */
	const char *tls;         /* "TLSv1.3 TLS_AES_..." or NULL */
};

/* Appends a folded "Received:" field (RFC 5321 4.4), LF line ends. */
void message_append_received(struct buf *out, const struct message_trace *t);

/*
 * Appends the delivery fields: "Return-Path: <sender>" and
 * "Delivered-To: rcpt" (rcpt without brackets; NULL: no Delivered-To,
 * for one file linked into several mailboxes).
 */
void message_append_delivery_fields(struct buf *out, const char *sender_path,
    const char *rcpt);

/*
 * Submission fix-ups (RFC 6409 8): the message msg[start..) must have a
 * From: and one of To:/Cc:/Bcc: (else -1 with the reason); Date: and
 * Message-ID: are added when missing (values given by the caller); Bcc:
 * fields are removed. Edits msg in place.
 */
int message_submission_fixup(struct buf *msg, size_t start,
    const char *date, const char *msgid, const char **why);

/* True if any octet has the high bit set. */
bool message_has_8bit(const char *msg, size_t len);

/*
 * The message as SMTP sends it: CRLF line ends, a leading dot doubled
 * (RFC 5321 4.5.2), and the final ".\r\n". Appends to out.
 */
void message_to_wire(const char *msg, size_t len, struct buf *out);
/* The same for BDAT (RFC 3030): CRLF line ends only, no dot-stuffing, no
 * end marker (the chunk size frames it). */
void message_to_wire_chunk(const char *msg, size_t len, struct buf *out);
/*
 * Lines of a message, dot-stuffed, without the end marker: a message
 * sent in pieces is message_to_wire_lines() of each piece, every piece
 * but the last ending in LF, then ".\r\n".
 */
void message_to_wire_lines(const char *msg, size_t len, struct buf *out);
/* The octets message_to_wire() (stuff) or message_to_wire_chunk() (not)
 * make of msg, without making them. */
size_t message_wire_size(const char *msg, size_t len, bool stuff);

/*
 * RFC 6152 3: makes an 8-bit message 7-bit clean for a next hop without
 * 8BITMIME. Leaf parts with 8-bit bodies are re-encoded quoted-printable
 * (RFC 2045 6.7), through multipart nesting; headers are never changed
 * except a part's Content-Transfer-Encoding, a missing MIME-Version at
 * the top, and a missing Content-Type of an 8-bit leaf, which becomes
 * "text/plain; charset=unknown-8bit" (RFC 1428). Returns 0 with the result in out, or -1 when it cannot be
 * done safely: 8-bit  octets in a header, in a message/ part, in a
 * preamble, or a multipart without its boundary.
 */
int message_downgrade(const char *msg, size_t len, struct buf *out);

#endif
