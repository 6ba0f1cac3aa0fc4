/* SPDX-License-Identifier: ISC */
/*
 * intl.h - layer 0 (pure): what internationalized mail (RFC 6531/6532)
 * needs of Unicode: well-formed UTF-8, a domain's ASCII form (IDNA2008
 * A-labels through libidn2, the UTS #46 non-transitional lookup mapping
 * with NFC, so that a U-label and its A-label compare equal), and NFC
 * of local parts (libunistring). No I/O.
 */
#ifndef TERN_INTL_H
#define TERN_INTL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Well-formed UTF-8 (no overlong forms, surrogates or code points over
 * U+10FFFF) without C0 or C1 controls or DEL.
 */
bool intl_utf8_valid(const char *s, size_t len);
bool intl_is_ascii(const char *s, size_t len);

/*
 * The lookup form of a domain: A-labels, lower case. An ASCII domain is
 * only lower-cased (its syntax, "xn--" labels too, is the caller's to
 * check). 0, or -1 if it is not a valid IDN or does not fit.
 */
int intl_domain_ascii(const char *domain, char *out, size_t outsz);
/* The U-label form of a domain, for people (A-labels decoded); 0 or -1. */
int intl_domain_unicode(const char *domain, char *out, size_t outsz);

/* Unicode NFC of UTF-8 text; 0, or -1 if not valid or does not fit. */
int intl_nfc(const char *s, char *out, size_t outsz);

#endif
