/* SPDX-License-Identifier: ISC */
/*
 * http_app.h - layer 3: what the HTTP listeners serve (DESIGN.md section
 * 12): the routes, authentication (HTTP Basic against the users table,
 * over TLS or from loopback; the AUTH failure limit shared with SMTP and
 * IMAP), the JMAP session resource, the API, blob downloads and push
 * (EventSource). One per daemon, shared by every HTTP connection. Loop
 * thread only.
 */
#ifndef TERN_HTTP_APP_H
#define TERN_HTTP_APP_H

#include "http/http_conn.h"

struct event_base;
struct iopool;
struct queue;
struct runtime;
struct store;
struct http_app;

/* current: the daemon's runtime pointer (a reload swaps *current). */
struct http_app *http_app_new(struct event_base *base,
    struct runtime **current, struct store *store, struct iopool *pool,
    struct queue *queue);
void http_app_free(struct http_app *app);

/* The handler, body limit and spool an http_conn_env takes (arg: the
 * app). */
uint64_t http_app_body_limit(void *arg, const struct http_request *req);
int http_app_spool_open(void *arg, const struct http_request *req);
void http_app_handle(void *arg, struct http_conn *c,
    const struct http_request *req, const struct buf *body);
/* Push connections open now (metrics, stats). */
size_t http_app_streams(const struct http_app *app);

#endif
