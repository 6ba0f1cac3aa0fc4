/* SPDX-License-Identifier: ISC */
/*
 * imap_search.h - layer 3 helper of the IMAP session: SEARCH keys (RFC
 * 3501 6.4.4) against one message, on an I/O worker inside the folder's
 * job.
 */
#ifndef TERN_IMAP_SEARCH_H
#define TERN_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct imap_arg;
struct mbox;

/*
 * Message idx of mb, number seq in the session's view (view[0..nview)
 * are its UIDs), against keys[0..nkeys) (ANDed): 1 if it matches, 0 if
 * not, -1 if a key is not a SEARCH key. *modseq_key (if not NULL) is set
 * when a MODSEQ key was met (the answer then carries the highest MODSEQ).
 */
int imap_search_match(struct mbox *mb, size_t idx, size_t seq,
    const uint32_t *view, size_t nview, const struct imap_arg *keys,
    size_t nkeys, bool *modseq_key, struct tern_err *err);

#endif
