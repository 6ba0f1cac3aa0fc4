/* SPDX-License-Identifier: ISC */
/*
 * arc_verify.h - layer 2: validation of a received message's ARC chain
 * on the event loop (RFC 8617 5.2): the sets' form and chain statuses,
 * the newest ARC-Message-Signature, every ARC-Seal, and how far back the
 * older message signatures still hold (oldest-pass). The keys are looked
 * up over DNS asynchronously, each distinct one once, at most
 * ARC_KEYS_MAX of them. Loop thread only.
 */
#ifndef TERN_ARC_VERIFY_H
#define TERN_ARC_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/arc.h"

#define ARC_KEYS_MAX 16

struct dns;
struct arc_verify;

/* One set of the chain as it was read. */
struct arc_hop {
	unsigned i;
	char domain[256];          /* the seal's d= and s= */
	char selector[64];
	enum arc_cv cv;            /* what it claimed */
	bool seal_ok;              /* its ARC-Seal verified */
	bool ams_ok;               /* its ARC-Message-Signature verified */
	char *results;             /* its ARC-Authentication-Results after
	                            * "i=N;" (authserv-id; results) */
};

struct arc_verdict {
	enum arc_cv result;        /* none, pass, fail (RFC 8617 4.4) */
	unsigned n;                /* sets; hops[0] is instance 1 */
	struct arc_hop *hops;
	int oldest_pass;           /* RFC 8617 5.2 step 6: 0 if every AMS
	                            * verifies; -1 unless result is pass */
	char reason[160];          /* why not pass */
};

void arc_verdict_clear(struct arc_verdict *v);

/* The verdict is the callee's: arc_verdict_clear() it. */
typedef void (*arc_verify_cb)(void *arg, struct arc_verdict *v);

/*
 * Validates the chain of msg[0..len) (LF or CRLF line ends); msg stays
 * as it is until cb, which never runs before this returns. bh: the
 * body's hashes made as it arrived (msg holds only its start), or NULL:
 * hashed from msg.
 */
struct bodyhash;
struct arc_verify *arc_verify_start(struct dns *dns, const char *msg,
    size_t len, const struct bodyhash *bh, arc_verify_cb cb, void *arg);
/* cb will not be called; everything is freed. */
void arc_verify_cancel(struct arc_verify *v);

#endif
