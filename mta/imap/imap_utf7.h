/* SPDX-License-Identifier: ISC */
/*
 * imap_utf7.h - layer 1 (pure): mailbox names in IMAP's modified UTF-7
 * (RFC 3501 5.1.3), the form IMAP4rev1 clients use on the wire and the
 * form Dovecot (and Tern) give folder directories, both ways with UTF-8.
 * Strict: what does not decode exactly (a bad base64 digit, an unended
 * shift, ASCII that should not be encoded, a lone surrogate) is refused.
 */
#ifndef TERN_IMAP_UTF7_H
#define TERN_IMAP_UTF7_H

#include <stddef.h>

#include "base/buf.h"

/* Appends the UTF-8 form of s; -1 if s is not valid modified UTF-7. */
int imap_utf7_to_utf8(const char *s, struct buf *out);
/* Appends the modified UTF-7 form of s; -1 if s is not valid UTF-8. */
int imap_utf8_to_utf7(const char *s, struct buf *out);

#endif
