/* SPDX-License-Identifier: ISC */
/*
 * imap_compress.h - layer 3 helper of the IMAP session: COMPRESS=DEFLATE
 * (RFC 4978) as a bufferevent filter.
 */
#ifndef TERN_IMAP_COMPRESS_H
#define TERN_IMAP_COMPRESS_H

#include <stddef.h>

struct bufferevent;

/*
 * A bufferevent that inflates what comes from under and deflates what is
 * written to it; freeing it frees under. Inflated input beyond
 * max_pending octets not yet read is an error (the connection ends).
 * NULL if zlib cannot start.
 */
struct bufferevent *imap_compress_wrap(struct bufferevent *under,
    size_t max_pending);

#endif
