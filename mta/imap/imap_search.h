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

/*
 * A TEXT or BODY key answered by the index's full-text search: the base
 * names (sorted) of the messages that match, for those in_fts.
 */
struct imap_text_hits {
	const struct imap_arg *key;   /* the TEXT or BODY atom */
	char **bases;
	size_t n;
};

/* What a SEARCH runs against besides the folder. */
struct imap_search_view {
	const uint32_t *uids;     /* the session's view: seq i is uids[i-1] */
	size_t n;
	const uint32_t *saved;    /* "$" (SEARCHRES, RFC 5182): UIDs, sorted */
	size_t nsaved;
	const struct imap_text_hits *hits;
	size_t nhits;
};

/*
 * The TEXT and BODY keys among keys[0..n) (at any depth), at most max:
 * the key atoms into key[], their strings into needle[]. Returns how
 * many.
 */
size_t imap_search_text_keys(const struct imap_arg *keys, size_t n,
    const struct imap_arg **key, const char **needle, size_t max);

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
