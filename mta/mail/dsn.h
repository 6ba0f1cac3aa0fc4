/* SPDX-License-Identifier: ISC */
/*
 * dsn.h - layer 1 (pure): the SMTP DSN extension's parameters (RFC 3461):
 * NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL, and xtext, the
 * encoding ENVID and ORCPT travel in. The envelope keeps ENVID and ORCPT
 * as received (xtext: printable ASCII, one line); reports show them
 * decoded. No I/O; fuzzed by fuzz_dsn.
 */
#ifndef TERN_DSN_H
#define TERN_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* NOTIFY (RFC 3461 4.1); 0 = not given: failures and delays are reported */
#define DSN_NOTIFY_SUCCESS 1u
#define DSN_NOTIFY_FAILURE 2u
#define DSN_NOTIFY_DELAY   4u
#define DSN_NOTIFY_NEVER   8u

enum dsn_ret { DSN_RET_UNSET, DSN_RET_FULL, DSN_RET_HDRS };

#define DSN_ENVID_MAX 100      /* RFC 3461 4.4: decoded length */
#define DSN_ORCPT_MAX 500      /* RFC 3461 4.2: the whole parameter value */

/*
 * "SUCCESS,FAILURE,DELAY" in any order and case, or "NEVER" alone; each
 * keyword once. 0 and the mask, or -1.
 */
int dsn_notify_parse(const char *s, unsigned *mask);
/* The canonical text of a nonzero mask ("SUCCESS,FAILURE"); "" for 0. */
void dsn_notify_format(unsigned mask, char *dst, size_t dstsz);
/* Whether a report of this kind goes out for a recipient's mask. */
bool dsn_notify_wants(unsigned mask, unsigned kind);

/* "FULL" or "HDRS", any case; 0 or -1. */
int dsn_ret_parse(const char *s, enum dsn_ret *ret);
const char *dsn_ret_name(enum dsn_ret ret);

/*
 * xtext (RFC 3461 4): printable ASCII other than '+' and '=' as is, any
 * other octet as "+XX" (upper-case hex). Decoding checks the syntax and
 * writes at most dstsz-1 octets plus a NUL; -1 on bad syntax or when it
 * does not fit. Control octets and NUL decode fine (the caller decides).
 */
int xtext_decode(const char *s, size_t len, char *dst, size_t dstsz,
    size_t *outlen);
void xtext_encode(const char *s, size_t len, struct buf *out);

/* ENVID=: valid xtext, decoded at most DSN_ENVID_MAX printable octets. */
bool dsn_envid_valid(const char *s);

/*
 * ORCPT=addr-type;xtext (RFC 3461 4.2): addr-type an atom, the address
 * valid xtext whose decoded form is printable ASCII or UTF-8 (no control
 * octets); the whole at most DSN_ORCPT_MAX octets. True if valid.
 */
bool dsn_orcpt_valid(const char *s);
/*
 * The Original-Recipient value of a valid ORCPT: "type;decoded" with the
 * type as given (RFC 3464 2.3.1). -1 if not valid.
 */
int dsn_orcpt_decode(const char *s, char *dst, size_t dstsz);
/* An ORCPT value for an rfc822 address we were given: "rfc822;xtext". */
void dsn_orcpt_make(const char *addr, size_t len, struct buf *out);

#endif
