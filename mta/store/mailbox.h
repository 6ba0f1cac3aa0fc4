/* SPDX-License-Identifier: ISC */
/*
 * mailbox.h - layer 2: one Maildir++ folder as IMAP sees it, kept in step
 * with the files and the Dovecot-compatible UID files (DESIGN.md section
 * 10). Every function here blocks on the disk and runs on an I/O worker;
 * store.c makes sure that only one of them runs on a box at a time and
 * that the loop thread reads a box only between them.
 *
 * Maildir stays the truth: flags live in file names (":2,<flags>"),
 * UIDs in dovecot-uidlist (changed only under dovecot-uidlist.lock, as
 * Dovecot does, so both can work on one tree), keyword letters in
 * dovecot-keywords. A message's INTERNALDATE is its file's mtime.
 */
#ifndef TERN_MAILBOX_H
#define TERN_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/sortkeys.h"
#include "store/dovecot.h"

/* system flags (Maildir letters D F P R S T) */
#define MBOX_SEEN 0x01u       /* S */
#define MBOX_ANSWERED 0x02u   /* R */
#define MBOX_FLAGGED 0x04u    /* F */
#define MBOX_DELETED 0x08u    /* T */
#define MBOX_DRAFT 0x10u      /* D */
#define MBOX_FORWARDED 0x20u  /* P: the keyword $Forwarded */

struct sort_keys;

struct mbox_msg {
	uint32_t uid;
	char *base;               /* the name without its ":2," info */
	char *fname;              /* the name as it is now in cur/ or new/ */
	bool in_new;
	uint8_t flags;
	uint32_t kw;              /* bit i: dovecot-keywords index i */
	uint64_t vsize;           /* octets as CRLF text (W=, or counted) */
	int64_t internaldate;     /* mtime, seconds */
	int64_t savedate;         /* came into this folder (RFC 8514), s */
	uint64_t modseq;          /* in memory: last change seen */
	bool recent;
	bool dirty;               /* vsize learnt: the index wants the row */
	/* read from the file once, kept while the box lives and in the
	 * index's cache (by base name: one row for every copy) */
	struct sort_keys *keys;   /* SORT, THREAD, THREADID */
	char *envelope;           /* FETCH ENVELOPE's text */
	char *structure;          /* FETCH BODYSTRUCTURE's text */
	char *body;               /* FETCH BODY's text (the basic form) */
	bool cache_dirty;         /* one of the four is new: the index wants it */
	bool cache_tried;         /* the index's cache was asked for them */
	bool in_fts;              /* its text is in the full-text index */
};

struct mbox_expunged {
	uint32_t uid;
	uint64_t modseq;
	char email[SORT_ID_LEN];  /* its Email id (JMAP's destroyed) */
	char thread[SORT_ID_LEN]; /* its thread id, "" if not known then */
};

#define MBOX_CHANGES 4096

struct mbox_change {
	uint32_t uid;
	uint64_t modseq;
};

struct mbox {
	char *path;               /* the Maildir directory */
	uint32_t uidvalidity, uidnext;
	struct mbox_msg *m;       /* ascending uid */
	size_t n, cap;
	struct keywords kw;
	uint64_t modseq;          /* highest change (HIGHESTMODSEQ) */
	uint64_t committed;       /* changes up to here are in the index */
	bool preloaded;           /* m[] came from the index, not yet synced */
	bool index_stale;         /* the index needs every row again */
	bool dirty;               /* some m[].dirty is set */
	bool seen_changed;        /* seen_* differ from what the index has */
	bool force_sync;          /* the next sync lists the directories */
	bool list_new;            /* the next sync lists new/ at least */
	/* inotify events our own renames and unlinks will cause, in new/
	 * and cur/ (atomic: workers add, the loop takes) */
	size_t own[2];
	bool kw_loaded;
	int64_t kw_mtime;         /* dovecot-keywords' mtime when read, ns */
	size_t cache_pending;     /* messages with cache_dirty */
	bool fts_wanted;          /* searched, and not all in the full-text
	                           * index: the store adds the rest when idle */
	struct mbox_change *chg;  /* the last flag changes (a ring) */
	size_t chg_next;          /* changes noted in all */
	uint64_t chg_floor;       /* those at or below it may be gone */
	struct mbox_expunged *exp;   /* expunges since open, for sessions */
	size_t nexp, capexp;
	char guid[33];
	/* what the last sync saw, to skip a rescan when nothing changed */
	int64_t seen_new, seen_cur, seen_ul;   /* mtimes, ns */
	bool synced;
	/* told when mbox_sort_keys() read a message's keys from its file
	 * (the store gives it its thread id there); may be NULL */
	void (*keys_read)(void *arg, struct mbox *b, size_t i);
	void *keys_arg;
};

/* A new box for path (nothing read yet). */
struct mbox *mbox_new(const char *path);
void mbox_free(struct mbox *b);

/*
 * Brings b in step with the disk: reads dovecot-uidlist (creating it with
 * a new UIDVALIDITY from the root's dovecot-uidvalidity if missing), lists
 * new/ and cur/, moves new/ files into cur/ when move_new, keeps the UID
 * of every file found again by its base name (a file renamed by another
 * program keeps its UID), gives new files the next UIDs in name order,
 * drops vanished ones (recorded in b->exp), and writes the uidlist back
 * (fsynced) when it changed. root: the account's Maildir, for
 * dovecot-uidvalidity. *changed: anything seen that sessions must hear.
 */
int mbox_sync(struct mbox *b, const char *root, bool move_new, bool *changed,
    struct tern_err *err);

/* Sets flags and keywords of message i (a rename in cur/). */
int mbox_set_flags(struct mbox *b, size_t i, uint8_t flags, uint32_t kw,
    struct tern_err *err);

/*
 * Stores a new message (data with LF line ends) with these flags and
 * INTERNALDATE (0: now): tmp/ -> fsync -> cur/, then its UID in the
 * uidlist, fsynced before it returns (so the UID may be announced).
 */
int mbox_append(struct mbox *b, const char *root, const char *data,
    size_t len, uint8_t flags, uint32_t kw, int64_t internaldate,
    uint32_t *uid, struct tern_err *err);

/*
 * APPEND in two steps, so that many can share one directory fsync and
 * one uidlist write: mbox_stage() writes a message into the folder at
 * path's tmp/, fsynced, with its INTERNALDATE (any thread: it touches no
 * box); mbox_commit_staged() moves staged files into cur/ in order and
 * gives them the next UIDs (rc and uid per message), fsynced before it
 * returns (so the UIDs may be announced). On a failure of the whole a
 * staged file is removed.
 */
struct mbox_staged {
	const char *tmp;          /* in: the staged file */
	char *base;               /* in: its base name (the caller frees) */
	uint8_t flags;
	uint32_t kw;
	int64_t internaldate;
	char *fname;              /* the caller frees (NULL once taken) */
	uint32_t uid;             /* out */
	int rc;                   /* out: 0, or -1 with err */
	struct tern_err err;
};
int mbox_stage(const char *path, const char *data, size_t len,
    int64_t internaldate, char **base, char *tmp, size_t tmpsz,
    struct tern_err *err);
int mbox_commit_staged(struct mbox *b, const char *root,
    struct mbox_staged *st, size_t n, struct tern_err *err);
/* A staged file that will not be committed (a failed MULTIAPPEND's). */
void mbox_unstage(const char *tmp);

/*
 * Copies messages idx[0..n) of src into dst (hard links, keeping base
 * names, so one file is one message in two folders), with new UIDs in
 * dst given in order in uids[] (dst is synced first). Keywords are
 * carried by name.
 */
int mbox_copy(struct mbox *src, const size_t *idx, size_t n, struct mbox *dst,
    const char *root, uint32_t *uids, struct tern_err *err);

/* Removes message i's file; the next sync records the expunge. */
int mbox_remove(struct mbox *b, size_t i, struct tern_err *err);

/* Reads message i (LF line ends) into out, at most max octets. */
int mbox_read(const struct mbox *b, size_t i, struct buf *out, size_t max,
    struct tern_err *err);

/* The first max octets of message i (all of it if it is shorter). */
int mbox_read_head(const struct mbox *b, size_t i, struct buf *out,
    size_t max, struct tern_err *err);

/*
 * What the index has not got yet of b, as a box of its own (only the
 * rows to write, copied) for tindex_commit_box() to write elsewhere;
 * b counts as written from now.
 */
struct mbox *mbox_snapshot(struct mbox *b);

/*
 * Loop thread, for each inotify event in new/ (cur false) or cur/: true
 * if it is one that a change of our own was to cause (then nothing need
 * be listed for it). An event of another program's that comes first
 * takes the place of ours, whose event then asks for the listing: no
 * change of another's is ever taken for ours without one that follows.
 */
bool mbox_own_event(struct mbox *b, bool cur);
/* The events were lost (the inotify queue overflowed): none is ours. */
void mbox_own_reset(struct mbox *b);

/* Something of m was read from its file: the index's cache takes it. */
void mbox_cache_learnt(struct mbox *b, struct mbox_msg *m);

/*
 * The UIDs (sorted, each once; malloc'd) of the messages whose flags
 * changed after MODSEQ since, if the list of recent changes reaches back
 * that far; false if not (then every message must be looked at).
 */
bool mbox_changes_since(const struct mbox *b, uint64_t since,
    uint32_t **uids, size_t *n);

/*
 * The folder's id (OBJECTID's MAILBOXID, RFC 8474, and JMAP's Mailbox
 * id): "F" and the GUID of its dovecot-uidlist, which moves with it on
 * RENAME, as Dovecot's does.
 */
#define MBOX_ID_LEN 40
void mbox_id(const struct mbox *b, char out[MBOX_ID_LEN]);

/*
 * The sort keys of message i (SORT, THREAD, JMAP's threads), read from
 * its file's header the first time (then kept, and given to the index's
 * cache). Never NULL.
 */
const struct sort_keys *mbox_sort_keys(struct mbox *b, size_t i);

/* The index of uid, or -1. */
ssize_t mbox_find_uid(const struct mbox *b, uint32_t uid);

/* Flag letters for a file name (sorted, as Maildir wants). */
void mbox_flag_letters(uint8_t flags, uint32_t kw, char *out, size_t outsz);

/*
 * True, and b counts as synced with those times, if new/, cur/ and the
 * uidlist still have these mtimes (ns): for a box filled from the index.
 */
bool mbox_times_are(struct mbox *b, int64_t t_new, int64_t t_cur,
    int64_t t_ul);

/* Reads dovecot-keywords (once; mbox_sync does it if nobody did). */
void mbox_load_keywords(struct mbox *b);

/* Saves dovecot-keywords (after mbox_keyword adds one). */
int mbox_save_keywords(struct mbox *b, struct tern_err *err);

/*
 * The next UIDVALIDITY for a new folder of the account at root, from and
 * into root/dovecot-uidvalidity (hex), as Dovecot keeps it.
 */
uint32_t mbox_next_uidvalidity(const char *root);

#endif
