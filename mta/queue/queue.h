/* SPDX-License-Identifier: ISC */
/*
 * queue.h - layer 2: the durable queue under data_dir/spool, and the only
 * writer of it. One file per message, spool/queue/<id>: the envelope text
 * (envelope.h), then the message. A side file spool/queue/<id>.state holds
 * delivery state once there is any. Files are created in spool/tmp/ and
 * renamed into place; a file is acknowledged only once it and its
 * directory are fsynced.
 *
 * Threads: queue_open/queue_close/queue_new_id/queue_commit/queue_scan run
 * on the loop thread; the *_sync functions block and run on iopool workers.
 */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/envelope.h"

struct iopool;
struct queue;
struct queue_commit;

/* Creates spool/{tmp,queue,corrupt} as needed. NULL with err on failure. */
struct queue *queue_open(const char *spool_dir, struct iopool *pool,
    uint64_t min_free, char *err, size_t errsz);
void queue_close(struct queue *q);

/* A new 16-hex-digit id, unique and increasing within this spool. */
void queue_new_id(struct queue *q, char id[ENVELOPE_ID_LEN + 1]);

/* err is NULL on success. Runs on the loop thread. */
typedef void (*queue_commit_cb)(void *arg, const char *id,
    const struct tern_err *err);
/* Hands a committed message on; takes ownership of env and body. */
typedef void (*queue_on_commit_fn)(void *arg, struct envelope *env,
    struct buf *body);

/* Who is told of each committed message (dispatch). */
void queue_set_on_commit(struct queue *q, queue_on_commit_fn fn, void *arg);

/*
 * Delivery before the commit (the local fast path, dispatch's). plan runs
 * on the loop thread as a message is committed and returns where its
 * recipients go, or NULL when it is not for this path; deliver runs on a
 * worker before anything is written to the spool and marks each recipient
 * it delivered RCPT_DONE (durably: file and directory synced). Then, if
 * every recipient is done, no queue file is written at all; else the
 * message is queued as always, its delivered recipients in its state file.
 * done runs on the loop after the commit's callback, with all=true when
 * the message needed no queue file (the queue frees it), and frees plan.
 */
struct queue_direct {
	void *(*plan)(void *arg, const struct envelope *env);
	void (*deliver)(void *plan, struct envelope *env,
	    const struct buf *body);
	void (*done)(void *plan, const struct envelope *env, bool all);
	void *arg;
};
void queue_set_direct(struct queue *q, const struct queue_direct *d);

/*
 * Writes env and body durably, then calls cb (the 250 or the 4xx) and
 * hands the message to the on_commit function. Takes ownership of env and
 * body (heap objects). cb never runs before this returns.
 */
struct queue_commit *queue_commit(struct queue *q, struct envelope *env,
    struct buf *body, queue_commit_cb cb, void *arg);
/* The requester is gone: cb will not be called; the commit completes. */
void queue_commit_detach(struct queue_commit *c);

/* Blocking, for workers. 0 or -1 with err. */
int queue_load_sync(struct queue *q, const char *id, struct envelope *env,
    struct buf *body, struct tern_err *err);
int queue_state_write_sync(struct queue *q, const struct envelope *env,
    struct tern_err *err);
int queue_remove_sync(struct queue *q, const char *id);
/* Moves a broken queue file to spool/corrupt/ for an administrator. */
int queue_move_aside_sync(struct queue *q, const char *id);

/* Envelope and state only (no body); blocking. 0 or -1 with err. */
int queue_load_envelope_sync(struct queue *q, const char *id,
    struct envelope *env, struct tern_err *err);
/* The ids in the queue now (blocking; no cleanup). Returns the count. */
size_t queue_list_sync(struct queue *q, void (*fn)(void *arg,
    const char *id), void *arg);

/*
 * The pickup directory (spool/pickup): tern-sendmail drops messages there
 * (envelope text + message, any id). queue_pickup_sync() commits each one
 * into the queue under a new id (durably, as a commit), removes it from
 * pickup, and calls fn with the envelope and body (heap objects, the
 * caller takes them). Messages of a domain with keys in ds (may be
 * NULL) are DKIM-signed as submitted mail. Blocking: on a worker.
 * Returns how many.
 */
struct dkim_signer;
size_t queue_pickup_sync(struct queue *q, const char *hostname,
    const struct dkim_signer *ds,
    void (*fn)(void *arg, struct envelope *env, struct buf *body),
    void *arg);
/* Hands committed pickup messages to the on_commit receiver (loop). */
void queue_handoff(struct queue *q, struct envelope *env, struct buf *body);

/*
 * Start-up scan (blocking): removes spool/tmp leftovers (never
 * acknowledged) and calls fn for each queued message id. Returns the count.
 */
size_t queue_scan(struct queue *q, void (*fn)(void *arg, const char *id),
    void *arg);

#endif
