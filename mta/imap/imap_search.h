/* SPDX-License-Identifier: ISC */
/*
 * imap_search.h - layer 3 helper of the IMAP session: SEARCH keys (RFC
 * 3501 6.4.4) against one message, on an I/O worker inside the folder's
 * job.
 */
#ifndef TERN_IMAP_SEARCH_H
#define TERN_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct imap_arg;
struct mbox;

/* What a SEARCH runs against besides the folder. */
struct imap_search_view {
	const uint32_t *uids;     /* the session's view: seq i is uids[i-1] */
	size_t n;
	const uint32_t *saved;    /* "$" (SEARCHRES, RFC 5182): UIDs, sorted */
	size_t nsaved;
};

/*
 * Message idx of mb, number seq in the session's view, against
 * keys[0..nkeys) (ANDed): 1 if it matches, 0 if not, -1 if a key is not
 * a SEARCH key. *modseq_key (if not NULL) is set when a MODSEQ key was
 * met (the answer then carries the highest MODSEQ).
 */
int imap_search_match(struct mbox *mb, size_t idx, size_t seq,
    const struct imap_search_view *v, const struct imap_arg *keys,
    size_t nkeys, bool *modseq_key, struct tern_err *err);

#endif
