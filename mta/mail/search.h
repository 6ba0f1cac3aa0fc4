/* SPDX-License-Identifier: ISC */
/*
 * search.h - layer 1 (pure): the substring matches that IMAP SEARCH and
 * JMAP's Email/query filters share: ASCII case-insensitive, as bytes
 * (so US-ASCII and UTF-8 alike), and header fields as written and as a
 * reader sees them (encoded words decoded, RFC 2047).
 */
#ifndef TERN_SEARCH_H
#define TERN_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

/* Does hay[0..n) hold needle (an empty needle is everywhere)? */
bool search_contains(const char *hay, size_t n, const char *needle);

/*
 * Has the header section hdr[0..hlen) a field name (case-insensitive)
 * whose value holds needle? A NULL needle asks only for the field.
 */
bool search_header_has(const char *hdr, size_t hlen, const char *name,
    const char *needle);

#endif
