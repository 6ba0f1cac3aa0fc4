/* SPDX-License-Identifier: ISC */
/*
 * dispatch.h - layer 4: the one glue between the queue, the scheduler, the
 * delivery agents and the routing/retry hooks. Takes committed messages
 * from queue.c, asks the route hook where each recipient goes, delivers
 * through deliver_maildir.c on the iopool, asks the retry hook when to try
 * again, sends bounces, marks results in the queue, and owns the timer.
 */
#ifndef TERN_DISPATCH_H
#define TERN_DISPATCH_H

#include <stddef.h>

struct runtime;
struct smtp_client;
struct deliver_maildir;
struct event_base;
struct iopool;
struct queue;
struct dispatch;

/*
 * Registers itself as the queue's on_commit receiver. *current is the
 * configuration generation in force (swapped by a reload).
 */
struct dispatch *dispatch_new(struct event_base *base,
    struct runtime **current, struct queue *q, struct deliver_maildir *dm,
    struct iopool *pool, struct smtp_client *client);
/* Start-up: schedules every message found in the spool. */
void dispatch_load_queue(struct dispatch *d);
/* Stops starting deliveries (shutdown). */
void dispatch_stop(struct dispatch *d);
/* Deliveries running on the pool. */
size_t dispatch_inflight(const struct dispatch *d);
void dispatch_free(struct dispatch *d);

#endif
