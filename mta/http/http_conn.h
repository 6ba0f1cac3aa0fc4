/* SPDX-License-Identifier: ISC */
/*
 * http_conn.h - layer 3: one HTTP/1.1 connection (RFC 9112): TLS (role
 * https, through base/tls.c), framing with http_parse.c, keep-alive and
 * pipelined requests answered in order, the timeouts that keep a slow
 * client from holding a connection (the whole head within
 * head_timeout, each read of a body within body_timeout, idle between
 * requests keepalive_timeout), and responses, whole or streamed
 * (EventSource). It owns no files and knows no routes: each complete
 * request goes to the handler its creator gave. Loop thread only.
 */
#ifndef TERN_HTTP_CONN_H
#define TERN_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "base/buf.h"
#include "http/http_parse.h"
#include "lua/config.h"

struct event_base;
struct iopool;
struct runtime;
struct http_conn;

struct http_conn_env {
	struct event_base *base;
	struct runtime *rt;          /* the connection takes a reference */
	/*
	 * The largest body the route of req takes (octets); a bigger one
	 * is refused with 413 before it is read.
	 */
	uint64_t (*body_limit)(void *arg, const struct http_request *req);
	/*
	 * A complete request: the handler answers it, now or later, with
	 * http_respond() or http_stream_start(); the connection reads no
	 * further request until then. req and body stay valid until then.
	 */
	void (*handle)(void *arg, struct http_conn *c,
	    const struct http_request *req, const struct buf *body);
	/*
	 * A body past 64 KiB goes to the file this gives (an fd open for
	 * writing, the connection closes it after the answer), or stays
	 * in memory if it gives -1 or is NULL. The writes run on pool.
	 */
	int (*spool_open)(void *arg, const struct http_request *req);
	struct iopool *pool;
	void *arg;                   /* for body_limit, spool_open, handle */
	void (*on_close)(void *close_arg, struct http_conn *c);
	void *close_arg;
	unsigned head_timeout, body_timeout, keepalive_timeout;  /* s */
};

/* Takes fd; tls: LISTEN_TLS_IMPLICIT for https. */
struct http_conn *http_conn_new(const struct http_conn_env *env,
    evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen,
    enum listen_tls tls);
/* Server shutdown: closes once the answer in progress is out. */
void http_conn_shutdown(struct http_conn *c);

/*
 * The file the body of the request with the handler went to (spool_open)
 * and its size, or -1 (then it is all in the handler's body).
 */
int http_conn_body_fd(const struct http_conn *c, uint64_t *size);
const char *http_conn_ip(const struct http_conn *c);
const char *http_conn_id(const struct http_conn *c);
bool http_conn_tls(const struct http_conn *c);
bool http_conn_trusted(const struct http_conn *c);   /* trusted_networks */
const struct sockaddr *http_conn_local(const struct http_conn *c);

/*
 * The answer: status line, headers (each "Name: value\r\n", or NULL),
 * Content-Length, Date, and body (not sent for HEAD). The connection
 * then reads the next request or, if either side said close, closes.
 */
void http_respond(struct http_conn *c, int code, const char *ctype,
    const char *headers, const void *body, size_t len);

/*
 * A response without an end (text/event-stream): headers now, then
 * http_stream_write() at will; gone(arg) is called once if the client
 * goes (after it, c must not be touched). http_stream_end() closes.
 */
void http_stream_start(struct http_conn *c, const char *ctype,
    const char *headers, void (*gone)(void *arg), void *arg);
void http_stream_write(struct http_conn *c, const void *data, size_t len);
void http_stream_end(struct http_conn *c);
/* Octets written and not yet taken by the kernel (a slow reader). */
size_t http_stream_pending(const struct http_conn *c);

#endif
