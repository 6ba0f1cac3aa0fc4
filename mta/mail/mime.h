/* SPDX-License-Identifier: ISC */
/*
 * mime.h - layer 1 (pure): the MIME structure of a stored message (LF line
 * ends) as IMAP shows it (RFC 9051 7.5.2 BODYSTRUCTURE and ENVELOPE, 6.4.5
 * sections), with every size and line count as on the wire (CRLF).
 *
 * mime_parse() builds a tree of parts over the message bytes (offsets, no
 * copies of bodies): multiparts by their boundary (RFC 2046 5.1.1),
 * message/rfc822 and message/global parts with their own header and
 * body; nesting and part counts are bounded; a broken multipart is shown
 * as far as it goes. No I/O; fuzzed (fuzz_mime_parse).
 */
#ifndef TERN_MIME_H
#define TERN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define MIME_DEPTH_MAX 20
#define MIME_PARTS_MAX 2000

struct mime_param {
	char *name;               /* lower case */
	char *value;              /* unquoted */
};

struct mime_part {
	size_t hdr_off, hdr_len;  /* the header section, with its empty line */
	size_t body_off, body_len;
	char type[64], subtype[64];   /* lower case; default text/plain */
	struct mime_param *params;    /* Content-Type parameters */
	size_t nparams;
	char *id, *description, *encoding, *md5, *location;  /* raw, or NULL */
	char *disposition;        /* the value, lower case, or NULL */
	struct mime_param *dparams;
	size_t ndparams;
	char *language;
	uint64_t body_size;       /* octets as CRLF text */
	uint64_t body_lines;      /* lines of the body */
	struct mime_part *children;   /* multipart: the parts; message/rfc822:
	                               * one, the enclosed message */
	size_t nchildren;
	bool is_message;          /* message/rfc822 (or global): child[0] is
	                           * the enclosed message */
};

/* The whole message as the root part. Free with mime_free(). */
struct mime_part *mime_parse(const char *msg, size_t len);
void mime_free(struct mime_part *root);

/* BODYSTRUCTURE (extended) or BODY (basic) of part, RFC 9051 7.5.2. */
void mime_write_bodystructure(struct buf *out, const char *msg,
    const struct mime_part *part, bool extended);
/* ENVELOPE of the header section hdr[0..len) (RFC 9051 7.5.2). */
void mime_write_envelope(struct buf *out, const char *hdr, size_t len);

/*
 * A section's part: "" is the message, "1.2" part 2 of part 1 (RFC 9051
 * 6.4.5: numbers count the parts of a multipart; a message/rfc822
 * part's number reaches into the enclosed message's body). NULL if there
 * is no such part.
 */
const struct mime_part *mime_find_part(const struct mime_part *root,
    const char *numbers);

/*
 * Content-Transfer-Encoding undone (RFC 2045 6): base64 and
 * quoted-printable decoded, 7bit/8bit/binary (or none) as they are, in
 * CRLF form; -1 (nothing written) for an encoding not known here.
 */
int mime_decode(const char *encoding, const char *p, size_t len,
    struct buf *out);
/* A part's body decoded (multiparts and enclosed messages as they are). */
int mime_decode_part(const char *msg, const struct mime_part *p,
    struct buf *out);

/*
 * A text part's body as a reader sees it: transfer encoding undone, LF
 * line ends, ISO-8859-1 and Windows-1252 made UTF-8 (other charsets as
 * octets); -1 for an unknown transfer encoding.
 */
int mime_part_text(const char *msg, const struct mime_part *p,
    struct buf *out);

/*
 * A header field's value as a reader sees it (RFC 2047): encoded words
 * decoded (B and Q; ISO-8859-1 and Windows-1252 made UTF-8, other
 * charsets kept as octets), line breaks unfolded.
 */
void mime_decode_words(const char *v, size_t len, struct buf *out);

/*
 * What SEARCH TEXT and BODY look in (the index's full-text rows): into
 * hdr the message's header fields, decoded, one per line; into body
 * (at most max octets) its text parts with their transfer encoding
 * undone, and the header and text of enclosed messages. Attachments
 * (parts of a type other than text) are left out.
 */
void mime_search_text(const char *msg, const struct mime_part *root,
    struct buf *hdr, struct buf *body, size_t max);

/* Appends text with its LF line ends as CRLF. */
void mime_append_crlf(struct buf *out, const char *p, size_t len);
/* The CRLF size of text with LF line ends. */
uint64_t mime_crlf_size(const char *p, size_t len);

#endif
