/* SPDX-License-Identifier: ISC */
/*
 * listen.h - layer 4: the listening sockets, accept, the global and per-IP
 * connection limits, and the set of live sessions (for shutdown).
 */
#ifndef TERN_LISTEN_H
#define TERN_LISTEN_H

#include <stddef.h>

#include "lua/config.h"

struct event_base;
struct iopool;
struct queue;
struct runtime;
struct listen_ctx;
struct store;

/*
 * Binds every listener of (*current)->cfg; NULL with err if one cannot be
 * bound. New sessions get a reference to *current as it is when they
 * connect (a reload swaps *current; listeners stay as they were bound).
 */
struct listen_ctx *listen_start(struct event_base *base,
    struct runtime **current, struct queue *q, struct iopool *pool,
    struct store *store, char *err, size_t errsz);
/* The resolver for DKIM keys of mail received on mx (none until set). */
struct dns;
void listen_set_dns(struct listen_ctx *ctx, struct dns *dns);
/* Stops accepting and asks every session to finish (421). */
void listen_shutdown(struct listen_ctx *ctx);
/* Sessions open now. */
size_t listen_session_count(const struct listen_ctx *ctx);
struct listen_stats {
	size_t open;                /* sessions open now */
	unsigned long total;        /* sessions since start */
	unsigned long refused;      /* connections refused by the limits */
	size_t by_role[LISTEN_ROLES];   /* open now, by enum listen_role */
	size_t streams;             /* of the HTTP ones, EventSource pushes */
};
void listen_get_stats(const struct listen_ctx *ctx, struct listen_stats *st);
/* Closes listeners; sessions still open are dropped. NULL is a no-op. */
void listen_free(struct listen_ctx *ctx);

/*
 * Where cfg takes SMTP (mx, submission, submissions listeners): each
 * listener's address and port, a wildcard one (0.0.0.0, ::) as every
 * address of the host's interfaces with its port. malloc'd, *n of them.
 * For the client's loop check (smtp_client_settings.self).
 */
struct sockaddr_storage *listen_smtp_addresses(const struct config *cfg,
    size_t *n);

#endif
