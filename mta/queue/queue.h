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
/* Hands a committed message on; takes ownership of env and body (body
 * NULL: not in memory, read it from the queue file). */
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

/*
 * A message's body written to spool/tmp/<id>.body as it arrives, so a
 * big message is never whole in memory (the session's). It is not
 * durable and need not be: queue_commit_spilled() copies it into the
 * queue file, which is. Loop thread; the writes run on workers, one at
 * a time. A leftover after a crash is removed by queue_scan().
 */
struct queue_spill;
typedef void (*queue_spill_feed_fn)(void *arg, const char *p, size_t n);
typedef void (*queue_spill_cb)(void *arg, bool ok);
/*
 * feed, when not NULL, sees every appended piece first, on the worker
 * that writes it (body hashes); feed_arg is freed with feed_free when
 * the spill goes (after any job in flight). Until then the caller may
 * read feed_arg between jobs.
 */
struct queue_spill *queue_spill_new(struct queue *q, const char *id,
    queue_spill_feed_fn feed, void *feed_arg, void (*feed_free)(void *));
/*
 * Appends data (taken) on a worker; cb on the loop when it is written:
 * ok false after a write error (or no room: below min_free), which
 * sticks. Only when !queue_spill_busy().
 */
void queue_spill_append(struct queue_spill *sp, struct buf *data,
    queue_spill_cb cb, void *arg);
bool queue_spill_busy(const struct queue_spill *sp);
/* Octets handed to it so far (written or being written). */
uint64_t queue_spill_size(const struct queue_spill *sp);
/* False once a write failed; *no_space when for want of room. */
bool queue_spill_ok(const struct queue_spill *sp, bool *no_space);
/*
 * Reads up to max octets of its start on a worker: cb(arg, data) on the
 * loop, data a heap buffer the callee takes (NULL on a read error).
 * Only when !queue_spill_busy().
 */
void queue_spill_read(struct queue_spill *sp, size_t max,
    void (*cb)(void *arg, struct buf *data), void *arg);
/* The file goes (on a worker); a write in flight finishes first, its
 * callback not called. NULL is a no-op. */
void queue_spill_free(struct queue_spill *sp);
/*
 * queue_commit() of a message whose first part, head, is in memory and
 * whose rest is in sp (not busy): the queue file is the envelope, head,
 * then sp's octets copied in the kernel (copy_file_range), fsynced as
 * every commit. Takes env, head and sp. The message is handed on without
 * its body (on_commit's body is NULL: it is read from the queue file).
 */
struct queue_commit *queue_commit_spilled(struct queue *q,
    struct envelope *env, struct buf *head, struct queue_spill *sp,
    queue_commit_cb cb, void *arg);

/* Blocking, for workers. 0 or -1 with err. */
int queue_load_sync(struct queue *q, const char *id, struct envelope *env,
    struct buf *body, struct tern_err *err);
/*
 * A big message without reading it whole (blocking): its envelope and
 * state as queue_load_sync() gives them, the first max octets of the
 * message in head, and its queue file open (*fd, the caller's to close)
 * with the message at *body_off. 0, or -1 with err; -1 with err->code 0
 * when the envelope is too long to read this way (use queue_load_sync).
 */
int queue_load_part_sync(struct queue *q, const char *id, struct envelope *env,
    struct buf *head, size_t max, int *fd, uint64_t *body_off,
    struct tern_err *err);
/* The queue file's size in octets (blocking), or -1. */
int64_t queue_file_size_sync(struct queue *q, const char *id);
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
