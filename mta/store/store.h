/* SPDX-License-Identifier: ISC */
/*
 * store.h - layer 3: the mail store's loop side (DESIGN.md section 10):
 * accounts and their open folders, shared by every session on them, with
 * the rule that makes mailbox.c safe: a box runs one job at a time on the
 * I/O pool, and the loop thread reads a box only between its jobs (in a
 * job's done callback or a watcher's callback). Changes made by ternd's
 * own deliveries reach the store through store_notify_path(); changes by
 * other programs through inotify on open folders (coalesced, then one
 * sync for every session). Loop thread only.
 */
#ifndef TERN_STORE_H
#define TERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "base/util.h"

struct event_base;
struct iopool;
struct mbox;
struct store;
struct store_account;
struct store_box;
struct tindex;

struct store *store_new(struct event_base *base, struct iopool *pool);
void store_free(struct store *s);
/* The I/O pool is about to stop: accounts closed from now on close here. */
void store_pool_closing(struct store *s);

/* The account rooted at the Maildir root (one per user); ref counted. */
struct store_account *store_account_open(struct store *s, const char *user,
    const char *root);
void store_account_close(struct store_account *a);
const char *store_account_root(const struct store_account *a);
/* The account's index (index.h): for work functions on the I/O pool. */
struct tindex *store_account_index(const struct store_account *a);
/* A folder's path below the account's root ("" for the root: INBOX). */
const char *store_rel(const struct store_account *a, const char *path);
struct iopool *store_pool(const struct store *s);
struct store *store_of(const struct store_account *a);

/* A folder of the account, by IMAP name and Maildir path; ref counted. */
struct store_box *store_box_open(struct store_account *a, const char *name,
    const char *path);
void store_box_close(struct store_box *b);
struct mbox *store_box_mbox(struct store_box *b);
const char *store_box_name(const struct store_box *b);
struct store_account *store_box_account(const struct store_box *b);

typedef void (*store_work_fn)(struct store_box *b, void *arg);  /* worker */
typedef void (*store_done_fn)(struct store_box *b, void *arg);  /* loop */
/*
 * Runs work on a worker when the box has no other job, then done on the
 * loop; jobs of one box run in the order given. done never runs before
 * this returns. A job that changed what sessions see calls
 * store_box_mark_changed() (from its work function).
 */
void store_box_run(struct store_box *b, store_work_fn work,
    store_done_fn done, void *arg);
void store_box_mark_changed(struct store_box *b);

/*
 * APPEND, batched: the message is staged (written and fsynced in tmp/)
 * on the I/O pool beside other work, then committed together with every
 * other APPEND staged into the box meanwhile (one directory fsync, one
 * uidlist write). done runs on the loop, once, with rc/uid/uidvalidity
 * (nobox: the folder does not exist). The caller keeps a, data and the
 * keyword names alive until then, and holds the box open.
 */
struct store_append {
	const char *data;         /* the message as the client sent it */
	size_t len;
	bool crlf;                /* CRLF line ends: stored with LF */
	uint8_t flags;
	const char *const *kw;    /* keyword names */
	size_t nkw;
	int64_t internaldate;     /* 0: now */
	uint64_t quota_bytes;     /* the account's limits (0: none) */
	uint64_t quota_messages;
	void (*done)(void *arg);
	void *arg;
	/* results */
	int rc;
	bool nobox;
	uint32_t uid, uidvalidity;
	struct tern_err err;
	/* the store's */
	struct store_box *box;
	char *base;
	char tmp[4096];
	size_t staged;            /* octets written (counted in the quota) */
	struct append_group *group;
	bool discard;             /* its group failed: the file goes */
	TAILQ_ENTRY(store_append) entry;
};
void store_box_append(struct store_box *b, struct store_append *a);
/*
 * MULTIAPPEND (RFC 3502): a[0..n) all, in order, or none: when one
 * cannot be staged or committed, none stays (every rc is then -1, with
 * the first error). Each a[i].done runs once.
 */
void store_box_append_group(struct store_box *b, struct store_append *a,
    size_t n);

/* Sessions that show the box; told after any job that changed it. */
struct store_watch {
	void (*changed)(void *arg);
	void *arg;
	TAILQ_ENTRY(store_watch) entry;
};
void store_box_watch(struct store_box *b, struct store_watch *w);
void store_box_unwatch(struct store_box *b, struct store_watch *w);
/* Selected by a session (new/ is moved to cur/ when it syncs). */
void store_box_select(struct store_box *b, bool on);
/* Schedules one sync (coalesced with any other asked for meanwhile). */
void store_box_sync_soon(struct store_box *b);

/*
 * ternctl index rebuild: forgets the account's index, then syncs every
 * folder into it again (open folders included: their sessions carry on).
 * done runs once on the loop with 0 or -1, the folders and messages seen.
 */
typedef void (*store_rebuild_done)(void *arg, int rc, size_t folders,
    size_t messages, const char *error);
void store_rebuild(struct store *s, const char *user, const char *root,
    store_rebuild_done done, void *arg);

/*
 * The folder at path (and those below it) was deleted or renamed: a box
 * of it kept in memory after its last session goes.
 */
void store_forget_path(struct store *s, const char *path);

/*
 * ternd delivered into the Maildir at path: an open box there syncs now,
 * so its IDLE clients hear of it without waiting for inotify.
 */
void store_notify_path(struct store *s, const char *path);

#endif
