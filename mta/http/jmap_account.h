/* SPDX-License-Identifier: ISC */
/*
 * jmap_account.h - layer 3: an account as JMAP sees it (RFC 8621): every
 * folder of the user's Maildir++ tree open in the store, and of each a
 * snapshot (the messages' UIDs, Email ids, flags, keywords, sizes and
 * dates, its counts), taken in a job of the folder on the I/O pool and
 * read on the loop afterwards; the map from Email id to the folders that
 * hold the message (hard links make one Email live in several); state
 * strings; and watchers told when a folder changes (EventSource). Kept
 * for a while after its last user, so snapshots are made again only for
 * folders that changed. Loop thread only (snapshots are made on workers
 * inside the folder's job).
 */
#ifndef TERN_JMAP_ACCOUNT_H
#define TERN_JMAP_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>

#include "mail/sortkeys.h"
#include "store/mailbox.h"

struct event_base;
struct iopool;
struct store;
struct store_box;
struct store_account;
struct jacct;

struct jsnap_msg {
	uint32_t uid;
	char id[SORT_ID_LEN];     /* the Email id (OBJECTID's EMAILID) */
	uint8_t flags;            /* MBOX_* */
	uint32_t kw;              /* bits into jbox.kw */
	uint64_t size;            /* octets as CRLF text */
	int64_t received;         /* INTERNALDATE, s */
	int64_t sent;             /* Date:, s, or -1 */
	uint64_t modseq;          /* its last change */
	char tid[SORT_ID_LEN];    /* its thread (sort_thread_id) */
};

/* What a refresh saw of a folder; made on a worker, swapped in on the loop. */
struct jsnap {
	char id[MBOX_ID_LEN];     /* Mailbox id */
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;          /* the folder's HIGHESTMODSEQ then */
	size_t mb_n;              /* its messages, \Deleted ones too */
	struct jsnap_msg *m;      /* by UID; \Deleted ones left out */
	size_t n;
	struct jsnap_msg *del;    /* those (gone for JMAP), by UID */
	size_t ndel;
	uint32_t *by_date;        /* indexes into m, newest first */
	char **kw;                /* keyword names of the kw bits */
	size_t nkw;
	unsigned unread;
	size_t threads, unread_threads;   /* in this folder */
};

struct jbox {
	char *name;               /* IMAP name (modified UTF-7) */
	char *path;               /* the Maildir */
	const char *role;         /* "inbox", "sent", ... or NULL */
	bool subscribed;
	struct store_box *b;
	struct jsnap s;           /* valid once have */
	bool have;
	/* the account's */
	struct jsnap *fresh;      /* made by the running refresh, or NULL */
	struct jacct *acct;
	void *watch;
};

/* Where an Email id lives: box index and index into its m[]. */
struct jloc {
	const char *id;
	size_t box, idx;
};

struct jacct_watch {
	void (*changed)(void *arg);   /* a folder changed (refresh to see) */
	void *arg;
	TAILQ_ENTRY(jacct_watch) entry;
};

/* The account of user (one per user, shared; ref counted). */
struct jacct *jacct_open(struct event_base *base, struct store *st,
    struct iopool *pool, const char *user, const char *root);
void jacct_close(struct jacct *a);
/* One more reference (released with jacct_close). */
struct jacct *jacct_ref(struct jacct *a);
const char *jacct_user(const struct jacct *a);
const char *jacct_root(const struct jacct *a);
struct store *jacct_store(const struct jacct *a);
struct iopool *jacct_pool(const struct jacct *a);
/* A slot the Identity methods keep the user's own identities in (a JSON
 * object by id, NULL until read); the account frees it. */
json_t **jacct_identities(struct jacct *a);
struct store_account *jacct_store_account(const struct jacct *a);

/*
 * Lists the folders again and brings every snapshot in step with its
 * folder (after syncing it); done(arg) on the loop once all are. A
 * refresh asked while one runs waits for the next, so what it sees is
 * never older than the call.
 */
void jacct_refresh(struct jacct *a, void (*done)(void *arg), void *arg);

size_t jacct_nboxes(const struct jacct *a);
/*
 * Moves whenever the list of boxes changes (a folder made, gone or
 * renamed): box indexes held across a job are good only while it stays.
 */
unsigned jacct_generation(const struct jacct *a);
struct jbox *jacct_box(struct jacct *a, size_t i);
/* The box of a Mailbox id, or -1. */
ssize_t jacct_box_by_id(const struct jacct *a, const char *id);
/* The box whose IMAP name is name, or -1. */
ssize_t jacct_box_by_name(const struct jacct *a, const char *name);

/*
 * Every copy of Email id (*n of them, in box order), or NULL: valid
 * until the next refresh.
 */
const struct jloc *jacct_find(struct jacct *a, const char *id, size_t *n);
/* Every Email once (its first copy), by id: valid until the next refresh. */
const struct jloc *jacct_all(struct jacct *a, size_t *n);
/* The Emails of thread tid (one copy each), oldest first, or NULL. */
const struct jloc *jacct_thread(struct jacct *a, const char *tid,
    size_t *n);
/* The snapshot's message at l. */
const struct jsnap_msg *jacct_msg(const struct jacct *a,
    const struct jloc *l);

/*
 * State strings of the snapshots (RFC 8620 5.1 "state"; jmap_state.h),
 * malloc'd: Email states name each folder's HIGHESTMODSEQ and next UID,
 * Mailbox states its HIGHESTMODSEQ (the counts) and jacct_box_names().
 * jacct_query_state() is the Email state under the letter q
 * (Email/queryChanges reads the changes since from it).
 */
char *jacct_email_state(const struct jacct *a);
char *jacct_mailbox_state(const struct jacct *a);
/* Thread states are Email states under their own letter. */
char *jacct_thread_state(const struct jacct *a);
char *jacct_query_state(const struct jacct *a);
/* A hash of what a Mailbox shows besides its counts (name, parent,
 * role, subscription). */
uint64_t jacct_box_names(const struct jbox *jb);

/*
 * Runs work on box i's folder (a job of it), then done on the loop; work
 * returns true if it changed the folder (its watchers are told).
 */
void jacct_box_run(struct jacct *a, size_t i,
    bool (*work)(struct mbox *mb, void *arg), void (*done)(void *arg),
    void *arg);

void jacct_watch(struct jacct *a, struct jacct_watch *w);
void jacct_unwatch(struct jacct *a, struct jacct_watch *w);

#endif
