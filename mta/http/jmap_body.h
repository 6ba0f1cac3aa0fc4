/* SPDX-License-Identifier: ISC */
/*
 * jmap_body.h - layer 1: the body of a JMAP Email (RFC 8621 4.1.4) from a
 * message's bytes: bodyStructure, textBody, htmlBody and attachments (the
 * RFC's parseStructure), bodyValues, and the blob ids of parts; and the
 * other way, the RFC 5322 text of an Email/set create (4.6): header
 * fields from the properties (RFC 2047 where they are not ASCII) and a
 * body from textBody/htmlBody/bodyValues and attachments. Pure; strings
 * it puts into JSON are valid UTF-8.
 */
#ifndef TERN_JMAP_BODY_H
#define TERN_JMAP_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"

enum {
	JB_STRUCTURE = 1u << 0,
	JB_TEXT = 1u << 1,
	JB_HTML = 1u << 2,
	JB_ATTACHMENTS = 1u << 3,
	JB_VALUES = 1u << 4,
};

#define JMAP_PART_LEN 64      /* a partId ("1.2.3") at most, with the NUL */
#define JMAP_BLOB_LEN 96

/* The JB_ bit of an Email property name, or 0. */
unsigned jmap_body_prop_bit(const char *name);
/* A name bodyProperties may hold (EmailBodyPart properties, header:). */
bool jmap_body_prop_known(const char *name);

struct jmap_body_opts {
	const char *email_id;     /* for the parts' blob ids (NULL: none) */
	json_t *props;            /* bodyProperties, or NULL: the default */
	bool fetch_text, fetch_html, fetch_all;
	size_t max_bytes;         /* of a body value; 0: no limit */
};

/* Sets the body properties in want of msg[0..len) (LF line ends) on obj. */
void jmap_email_body(json_t *obj, const char *msg, size_t len, unsigned want,
    const struct jmap_body_opts *o);

/*
 * A part's blob id ("P<email id>_<part id with '-' for '.'>") and back:
 * false if blob is not one.
 */
void jmap_part_blob_id(const char *email_id, const char *part,
    char out[JMAP_BLOB_LEN]);
bool jmap_part_blob_parse(const char *blob, char *email_id, size_t idsz,
    char part[JMAP_PART_LEN]);

/* The part of msg that a part id names (its bytes decoded) into out. */
int jmap_part_data(const char *msg, size_t len, const char *part,
    struct buf *out, char *type, size_t typesz);

/* A text part as UTF-8 (transfer encoding and charset undone); -1 if none. */
int jmap_part_text(const char *msg, size_t len, const char *part,
    struct buf *out);

/* A blob an Email/set create refers to (attachments), with its bytes. */
struct jmap_blob {
	const char *id;
	const char *data;
	size_t len;
	const char *type;         /* what its source says, or NULL */
};

/*
 * The message an Email/set create object describes (RFC 8621 4.6),
 * LF line ends, into out. date: the Date: value when sentAt is not
 * given; msgid: the Message-ID (without brackets) when messageId is not
 * given; seed: makes the multipart boundaries unique. Blobs: those the
 * attachments name. Returns 0, or -1 with the property at fault in
 * *bad (a static name) and a reason in why.
 */
int jmap_email_build(json_t *create, const char *date, const char *msgid,
    const char *seed, const struct jmap_blob *blobs, size_t nblobs,
    struct buf *out, const char **bad, char *why, size_t whysz);

/* The blob ids an Email/set create's parts refer to, as an array. */
json_t *jmap_email_blob_refs(json_t *create);

#endif
