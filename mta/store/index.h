/* SPDX-License-Identifier: ISC */
/*
 * index.h - layer 2: Tern's index of one account (DESIGN.md section 10),
 * an SQLite database in the account's Maildir root (tern-index.sqlite,
 * WAL). It is a cache that remembers what the Maildir cannot: each
 * message's MODSEQ, each folder's HIGHESTMODSEQ and the UIDs expunged
 * since a MODSEQ (IMAP CONDSTORE/QRESYNC, and JMAP's states next), plus
 * sizes and INTERNALDATEs, so that opening a folder needs no stat of its
 * files. Maildir and dovecot-uidlist stay the truth: a missing, torn or
 * older index is rebuilt from them, and the only loss is that MODSEQs
 * start again above any that were given out (they are seeded from the
 * clock in milliseconds, a counter no change rate here ever catches up).
 *
 * Every function blocks on the disk and runs on an I/O worker; one handle
 * per account, which serialises its callers with a mutex (one writer per
 * account, as the design asks). Folders are keyed by their path relative
 * to the root ("" is INBOX, ".Sent" a folder).
 */
#ifndef TERN_INDEX_H
#define TERN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct mbox;
struct mbox_expunged;
struct tindex;

#define TINDEX_FILE "tern-index.sqlite"

/* A handle; the database is opened (or made, or rebuilt) at first use. */
struct tindex *tindex_new(const char *root);
void tindex_free(struct tindex *x);

/*
 * Fills a box that has not been synced yet with what the index knows of
 * its folder at rel (UIDVALIDITY, next UID, HIGHESTMODSEQ, and per
 * message UID, base name, flags, keywords, MODSEQ, size, INTERNALDATE),
 * so that the first mbox_sync() only compares. A folder the index does
 * not know gets a fresh MODSEQ seed. 0, or -1 (then the box is left
 * empty, as without an index).
 */
int tindex_load_box(struct tindex *x, const char *rel, struct mbox *b,
    struct tern_err *err);

/* Writes every change of b (MODSEQ above b->committed) in one transaction. */
int tindex_commit_box(struct tindex *x, const char *rel, struct mbox *b,
    struct tern_err *err);

/*
 * The UIDs of rel expunged after modseq under uidvalidity, ascending, in
 * *uids (malloc'd); *complete is false when the index does not go back
 * that far (then the caller must report every UID it cannot vouch for).
 */
int tindex_expunged_since(struct tindex *x, const char *rel,
    uint32_t uidvalidity, uint64_t modseq, uint32_t **uids, size_t *n,
    bool *complete, struct tern_err *err);
/* The same, each with its MODSEQ, Email id ("" for one expunged before
 * the index kept ids) and thread id ("" if not known), in *out
 * (malloc'd). */
int tindex_expunges(struct tindex *x, const char *rel, uint32_t uidvalidity,
    uint64_t modseq, struct mbox_expunged **out, size_t *n, bool *complete,
    struct tern_err *err);

/*
 * The cache (ENVELOPE, BODYSTRUCTURE, BODY, sort keys; by base name) for
 * messages idx[0..n) of b that have not asked it yet: what it has fills
 * the fields that are still empty. What a box reads from files goes into
 * it with tindex_commit_box() (cache_dirty).
 */
int tindex_cache_fill(struct tindex *x, const char *rel, struct mbox *b,
    const size_t *idx, size_t n, struct tern_err *err);

/*
 * Thread ids (sort_keys' tid, sortkeys.h) for the messages idx[0..n) of
 * b that have sort keys and no id yet: another copy's, else the next
 * place in their thread, kept in the index at once. tindex_cache_fill()
 * does it for what it filled. On failure those keys stay without one
 * (sort_thread_id() then names the thread by its root alone).
 */
int tindex_threads_give(struct tindex *x, struct mbox *b, const size_t *idx,
    size_t n, struct tern_err *err);

/*
 * The full-text index of SEARCH TEXT and BODY (one document per base
 * name: decoded header fields and text parts, mime_search_text()).
 * tindex_fts_update() adds messages idx[0..n) of b that are not in it
 * yet, at most max of them (*done: how many were read), and marks them
 * in_fts. tindex_fts_find() gives the base names (sorted, malloc'd) whose
 * body (text: header or body) holds needle, ASCII case-insensitively as
 * IMAP's substring match; 1 (nothing found, look in the files) for a
 * needle the index cannot look for.
 */
int tindex_fts_update(struct tindex *x, struct mbox *b, const size_t *idx,
    size_t n, size_t max, size_t *done, struct tern_err *err);
int tindex_fts_find(struct tindex *x, const char *needle, bool text,
    char ***bases, size_t *n, struct tern_err *err);

/*
 * JMAP's EmailSubmission records, by a sequence that every change moves:
 * tindex_sub_add() keeps one (obj: its JSON), tindex_sub_remove() marks
 * it gone, tindex_subs() gives the rows changed after since (gone ones
 * too, obj then "") and *top, the highest sequence there is.
 */
struct tindex_sub {
	int64_t seq;
	char *id, *obj;
	bool gone;
};
int tindex_sub_add(struct tindex *x, const char *id, const char *obj,
    struct tern_err *err);
int tindex_sub_remove(struct tindex *x, const char *id, bool *found,
    struct tern_err *err);
int tindex_subs(struct tindex *x, int64_t since, struct tindex_sub **rows,
    size_t *n, int64_t *top, struct tern_err *err);
void tindex_subs_free(struct tindex_sub *rows, size_t n);
/* JMAP Identities the user made or changed (rows as tindex_sub's, seq
 * and gone unused; freed with tindex_subs_free()). */
int tindex_ident_put(struct tindex *x, const char *id, const char *obj,
    struct tern_err *err);
int tindex_ident_del(struct tindex *x, const char *id, struct tern_err *err);
int tindex_idents(struct tindex *x, struct tindex_sub **rows, size_t *n,
    struct tern_err *err);

/* A folder and its subfolders were renamed (rel and rel.*), or deleted. */
int tindex_rename(struct tindex *x, const char *from, const char *to,
    struct tern_err *err);
int tindex_drop(struct tindex *x, const char *rel, struct tern_err *err);

/*
 * Forgets everything (ternctl index rebuild): the next load of each
 * folder finds nothing and rebuilds its rows from the Maildir.
 */
int tindex_reset(struct tindex *x, struct tern_err *err);

#endif
