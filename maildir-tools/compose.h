/* SPDX-License-Identifier: ISC */
/*
 * compose.h - building RFC 5322 messages with GMime: new messages,
 * replies and forwards. What comes out is 7-bit clean: quoted-printable
 * for non-ASCII or long-lined text, base64 for attachments, RFC 2047 for
 * non-ASCII header text, RFC 2231 for non-ASCII file names.
 */
#ifndef TERNMAIL_COMPOSE_H
#define TERNMAIL_COMPOSE_H

#include <gmime/gmime.h>
#include <stdbool.h>

#include "base/buf.h"
#include "base/util.h"

struct compose {
	const char *from_name;     /* may be NULL */
	const char *from_addr;
	const char *to, *cc, *bcc; /* address lists as typed, may be NULL */
	const char *subject;       /* UTF-8 */
	const char *body;          /* UTF-8 text */
	char **attach;             /* file paths */
	size_t nattach;
	const char *in_reply_to;   /* "<id>" or NULL */
	const char *references;    /* "<a> <b>" or NULL */
	GMimeMessage *forward;     /* attached as message/rfc822, or NULL */
	GMimeObject **extra;       /* parts attached as they are */
	size_t nextra;
	const char *domain;        /* for the Message-ID */
};

/* NULL with err set when an attachment cannot be read or an address
 * list does not parse. */
GMimeMessage *compose_build(const struct compose *c, struct tern_err *err);

/* The message as bytes with LF line ends; Bcc: kept only if with_bcc. */
void compose_write(GMimeMessage *m, bool with_bcc, struct buf *out);

/* Every To/Cc/Bcc address; returns the count, *v to free. */
size_t compose_recipients(GMimeMessage *m, char ***v);

/* Pure helpers for replies and forwards. */
char *compose_reply_subject(const char *subject);    /* "Re: ..." once */
char *compose_forward_subject(const char *subject);  /* "Fwd: ..." */
void compose_quote(struct buf *out, const char *text); /* "> " lines */

/* The MIME type for a file name, by its extension. */
const char *compose_mime_type(const char *path);

#endif
