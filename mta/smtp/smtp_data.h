/* SPDX-License-Identifier: ISC */
/*
 * smtp_data.h - layer 1 (pure): the DATA byte stream into message bytes.
 * Only <CRLF>.<CRLF> ends the data (RFC 5321 4.1.1.4); bare CR, bare LF and
 * NUL are recorded as errors and never treated as line ends, so no
 * "SMTP smuggling" variant can end the data early. Dot-unstuffing per
 * 4.5.2. The output has LF line ends (the Maildir convention).
 *
 * BDAT (RFC 3030) chunks go through the same machine with dots taken as
 * they are (the chunk sizes frame the message, nothing in it ends it):
 * smtp_data_init_chunks(), then every chunk's octets through
 * smtp_data_feed(), then smtp_data_chunks_end() after the LAST one.
 */
#ifndef TERN_SMTP_DATA_H
#define TERN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SMTP_DATA_ERR_BARE_CR 0x01u
#define SMTP_DATA_ERR_BARE_LF 0x02u
#define SMTP_DATA_ERR_NUL 0x04u
#define SMTP_DATA_ERR_LINE_TOO_LONG 0x08u
#define SMTP_DATA_ERR_TOO_BIG 0x10u
#define SMTP_DATA_ERR_HEADER_TOO_BIG 0x20u
#define SMTP_DATA_ERR_TOO_MANY_FIELDS 0x40u

struct smtp_data {
	int state;
	size_t linelen;         /* octets on the current line, no CRLF */
	uint64_t size;          /* octets as transmitted, CRLF = 2, unstuffed */
	uint64_t max_size;      /* 0: no limit */
	unsigned errors;        /* SMTP_DATA_ERR_* */
	struct buf *out;        /* borrowed; not written once errors is set */
	/* the header section: up to the first empty line */
	bool in_header;
	uint64_t header_size;   /* octets so far, CRLF = 2 */
	unsigned fields;        /* lines that start a field (not folded) */
	uint64_t max_header_size; /* 0: no limit */
	unsigned max_fields;    /* 0: no limit */
	bool chunks;            /* BDAT: no dot-stuffing, no end marker */
};

/* Starts a new transfer; out receives the message (LF line ends). */
void smtp_data_init(struct smtp_data *d, struct buf *out, uint64_t max_size);

/* The same for a BDAT transfer. */
void smtp_data_init_chunks(struct smtp_data *d, struct buf *out,
    uint64_t max_size);
/*
 * After the LAST chunk: a CR left alone is a bare CR; a last line
 * without its line end gets one (the stored message ends in LF).
 */
void smtp_data_chunks_end(struct smtp_data *d);

/*
 * Limits on the header section (after smtp_data_init): its size and the
 * number of fields, folded lines counting as part of their field. Over
 * either, the rest is read and dropped, as for max_size.
 */
void smtp_data_set_header_limits(struct smtp_data *d, uint64_t max_size,
    unsigned max_fields);

/*
 * Consumes bytes from p[0..n). Returns how many were consumed; *done is set
 * when the final <CRLF>.<CRLF> was consumed (bytes after it are left for
 * the caller: they are the next command). For chunks, all of them are
 * consumed and *done stays false.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *p, size_t n,
    bool *done);

#endif
