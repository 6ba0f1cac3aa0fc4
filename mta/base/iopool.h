/* SPDX-License-Identifier: ISC */
/*
 * iopool.h - layer 2: worker threads for blocking disk work (write, fsync,
 * rename, unlink, directory scans), so the event loop never waits on the
 * disk. A job's work function runs on a worker; its done function runs
 * later on the loop thread. Done functions never run before
 * iopool_submit() returns.
 */
#ifndef TERN_IOPOOL_H
#define TERN_IOPOOL_H

#include <stddef.h>

struct event_base;
struct iopool;

typedef void (*iopool_work_fn)(void *arg);   /* on a worker thread */
typedef void (*iopool_done_fn)(void *arg);   /* on the loop thread */

/* nthreads workers; evthread_use_pthreads() must have been called. */
struct iopool *iopool_new(struct event_base *base, int nthreads);

/* Queues a job; done may be NULL. Never blocks. */
void iopool_submit(struct iopool *pool, iopool_work_fn work,
    iopool_done_fn done, void *arg);

/* Jobs queued or running, plus completions not yet delivered. */
size_t iopool_pending(const struct iopool *pool);

/*
 * Waits for queued jobs to finish, stops the workers and runs the done
 * functions of finished jobs. NULL is a no-op.
 */
void iopool_free(struct iopool *pool);

#endif
