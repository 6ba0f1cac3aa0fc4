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

#include <stdbool.h>
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
/* Told (on the loop) of every Maildir a message was delivered into. */
void dispatch_set_on_maildir(struct dispatch *d,
    void (*cb)(void *arg, const char *maildir), void *arg);
/* Start-up: schedules every message found in the spool. */
void dispatch_load_queue(struct dispatch *d);
/* Stops starting deliveries (shutdown). */
void dispatch_stop(struct dispatch *d);
/* Deliveries running on the pool. */
size_t dispatch_inflight(const struct dispatch *d);
void dispatch_free(struct dispatch *d);

/* --- for ternctl ------------------------------------------------------ */

struct dispatch_stats {
	unsigned long received, delivered, failed, deferred, reports;
	size_t queued, inflight, held;
};
void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *st);

/*
 * Answers arrive on the loop thread: ok or not, and an owned text (the
 * body, or the error). The callback may run before the call returns.
 */
typedef void (*dispatch_answer)(void *arg, bool ok, char *text);

/* The queue as text (one message per block) or JSON. */
void dispatch_list(struct dispatch *d, bool json, dispatch_answer cb,
    void *arg);
/* One message: envelope, state and its header section. */
void dispatch_show(struct dispatch *d, const char *id, dispatch_answer cb,
    void *arg);
/* Makes id (or every waiting message, id NULL) due now. */
void dispatch_flush(struct dispatch *d, const char *id, dispatch_answer cb,
    void *arg);
void dispatch_remove(struct dispatch *d, const char *id, dispatch_answer cb,
    void *arg);
void dispatch_hold(struct dispatch *d, const char *id, bool hold,
    dispatch_answer cb, void *arg);
/* Takes what tern-sendmail dropped into spool/pickup (cb may be NULL). */
void dispatch_pickup(struct dispatch *d, dispatch_answer cb, void *arg);

#endif
