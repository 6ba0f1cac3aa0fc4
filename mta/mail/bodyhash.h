/* SPDX-License-Identifier: ISC */
/*
 * bodyhash.h - layer 2: the body hashes (SHA-256) that a message's
 * DKIM-Signature and ARC-Message-Signature fields ask for, one per
 * distinct body canonicalization and l=, computed over a body fed in
 * pieces: a body spooled as it arrives is never whole in memory, and
 * dkim_verify/arc_verify take these instead of hashing it themselves.
 * Not thread-safe: one thread at a time (the spool's worker feeds it,
 * the loop reads it after).
 */
#ifndef TERN_BODYHASH_H
#define TERN_BODYHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/dkim.h"

#define BODYHASH_MAX 8

struct tls_sha256;

struct bodyhash {
	struct {
		enum dkim_canon c;
		uint64_t limit;          /* l=, or UINT64_MAX */
		struct tls_sha256 *h;
		struct dkim_body b;
		unsigned char out[32];
	} e[BODYHASH_MAX];
	size_t n;
	bool ended;
};

/*
 * From the message's start msg[0..len) (its header section and maybe
 * some of the body): every (c=, l=) of its signatures that parse; more
 * than BODYHASH_MAX distinct ones are not computed (the verifiers then
 * say so). Returns where the body starts in msg (len if not in it).
 */
size_t bodyhash_init(struct bodyhash *bh, const char *msg, size_t len);
/* The body's octets, in order (LF or CRLF line ends). */
void bodyhash_feed(struct bodyhash *bh, const char *p, size_t n);
void bodyhash_end(struct bodyhash *bh);
/*
 * After bodyhash_end: the hash for c and limit (UINT64_MAX: none) and in
 * *total the octets of the whole canonical body; NULL if not computed.
 */
const unsigned char *bodyhash_get(const struct bodyhash *bh,
    enum dkim_canon c, uint64_t limit, uint64_t *total);
void bodyhash_clear(struct bodyhash *bh);

#endif
