/* SPDX-License-Identifier: ISC */
/*
 * http_conn.c - layer 3: the HTTP connection (http_conn.h). States: HEAD
 * (reading a request head), BODY (its body), HANDLER (the request is
 * with the handler: nothing more is read, pipelined bytes wait in the
 * input buffer), STREAM (an endless response), CLOSING (the last bytes
 * are going out). A head must come whole within head_timeout of its
 * first octet, whatever the pace (a slowloris client that sends a byte a
 * second gets 408 and the close); a body read may idle body_timeout.
 *
 * A body past SPOOL_AT octets, of a route that gives a file for it
 * (spool_open), goes there instead of memory: the octets so far are
 * written by a job on the I/O pool while nothing more is read (SPOOL),
 * then reading goes on; the handler finds the file with
 * http_conn_body_fd().
 *
 * One destruction path, conn_free(). A connection whose client went
 * while its request was with the handler stays (dead) until the handler
 * answers, so the handler's pointer is never left dangling; a stream's
 * owner is told through its gone callback instead.
 */
#include "http/http_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base/iopool.h"
#include "base/log.h"
#include "base/tls.h"
#include "base/util.h"
#include "runtime.h"

#define HTTP_HEAD_MAX 65536     /* a whole head, octets: else 431 */
#define SPOOL_AT 65536          /* a body past this goes to a file */

enum conn_state { C_HEAD, C_BODY, C_SPOOL, C_HANDLER, C_STREAM, C_CLOSING };

struct http_conn {
	struct http_conn_env env;
	struct bufferevent *bev;
	struct event *head_timer;
	struct event *resume;     /* reads on after an answer */
	enum conn_state state;
	char id[17];
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage local;
	bool tls, trusted, dead, shutdown;
	struct http_request req;
	bool have_req;
	struct buf body;
	struct http_chunked ch;
	size_t scanned;           /* octets of the head looked at for LF */
	size_t last_lf;           /* just after the last LF seen */
	uint64_t limit;           /* the route's body limit */
	int spool_fd;             /* the body's file, or -1: in body */
	uint64_t spooled;         /* octets in it */
	bool spool_failed;        /* a write failed: 500 at the end */
	bool spool_last;          /* the body is complete: then dispatch */
	bool keep;                /* another request may follow */
	unsigned long requests;
	void (*gone)(void *arg);
	void *gone_arg;
};

static void conn_read(struct http_conn *c);

static void
conn_free(struct http_conn *c)
{
	log_debug("http %s: close client=%s requests=%lu", c->id, c->ip,
	    c->requests);
	if (c->have_req)
		http_request_clear(&c->req);
	buf_clear(&c->body);
	if (c->spool_fd >= 0)
		close(c->spool_fd);
	event_free(c->head_timer);
	event_free(c->resume);
	bufferevent_free(c->bev);
	c->env.on_close(c->env.close_arg, c);
	runtime_unref(c->env.rt);
	free(c);
}

/* The client is gone (or we are done with it). */
static void
conn_dead(struct http_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_del(c->head_timer);
	event_del(c->resume);
	if (c->state == C_HANDLER || c->state == C_SPOOL)
		return;     /* http_respond() or the spool job frees it */
	if (c->state == C_STREAM && c->gone) {
		void (*gone)(void *) = c->gone;
		c->gone = NULL;
		gone(c->gone_arg);
	}
	conn_free(c);
}

static void
set_timeouts(struct http_conn *c, int rd, int wr)
{
	struct timeval r = { rd, 0 }, w = { wr, 0 };

	for (struct bufferevent *b = c->bev; b; b = bufferevent_get_underlying(b))
		bufferevent_set_timeouts(b, rd ? &r : NULL, wr ? &w : NULL);
}

static void
put_date(struct evbuffer *out)
{
	char d[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evbuffer_add_printf(out, "Date: %s\r\n", d);
}

/* A refusal of the framing layer: a short text, then the close. */
static void
refuse(struct http_conn *c, int code, const char *why)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", code,
	    http_reason(code), why ? why : "");

	log_info("http %s: refused client=%s status=%d reason=\"%s\"", c->id,
	    c->ip, code, why ? why : "");
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code, http_reason(code));
	put_date(out);
	evbuffer_add_printf(out, "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %d\r\nConnection: close\r\n\r\n", n);
	evbuffer_add(out, body, (size_t)n);
	c->state = C_CLOSING;
	c->keep = false;
	event_del(c->head_timer);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
	set_timeouts(c, 0, 30);
}

static int
status_code(enum http_status st, bool body)
{
	switch (st) {
	case HTTP_TOO_LARGE: return body ? 413 : 431;
	case HTTP_URI_TOO_LONG: return 414;
	case HTTP_VERSION: return 505;
	default: return 400;
	}
}

static void
dispatch(struct http_conn *c)
{
	c->state = C_HANDLER;
	c->requests++;
	bufferevent_disable(c->bev, EV_READ);
	set_timeouts(c, 0, 0);
	c->env.handle(c->env.arg, c, &c->req, &c->body);
}

/* The head is complete: parse it and decide how the body is framed. */
static void
head_done(struct http_conn *c, size_t head_len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	const char *data = (const char *)evbuffer_pullup(in, (ssize_t)head_len);
	enum http_status st;

	event_del(c->head_timer);
	st = http_parse_head(data, head_len, &c->req);
	c->have_req = true;
	evbuffer_drain(in, head_len);
	c->scanned = c->last_lf = 0;
	if (st != HTTP_OK) {
		refuse(c, status_code(st, false), c->req.why);
		return;
	}
	c->keep = c->req.keep_alive && !c->shutdown;
	c->limit = c->env.body_limit(c->env.arg, &c->req);
	if (c->req.content_length > 0 &&
	    (uint64_t)c->req.content_length > c->limit) {
		refuse(c, 413, "body too large");
		return;
	}
	buf_reset(&c->body);
	if (c->req.chunked)
		http_chunked_init(&c->ch);
	if (c->req.content_length <= 0 && !c->req.chunked) {
		dispatch(c);
		return;
	}
	if (c->req.expect_continue)
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "HTTP/1.1 100 Continue\r\n\r\n");
	c->state = C_BODY;
	set_timeouts(c, (int)c->env.body_timeout, 60);
}

static void
read_head(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), head_len;
	const char *why;

	if (len == 0)
		return;
	if (!evtimer_pending(c->head_timer, NULL)) {
		struct timeval tv = { (time_t)c->env.head_timeout, 0 };
		evtimer_add(c->head_timer, &tv);
		set_timeouts(c, (int)c->env.head_timeout, 60);
	}
	if (len > HTTP_HEAD_MAX)
		len = HTTP_HEAD_MAX;
	const char *data = (const char *)evbuffer_pullup(in, (ssize_t)len);
	/* look again only when a line ended, or one may be too long */
	const char *lf = len > c->scanned ? memrchr(data + c->scanned, '\n',
	    len - c->scanned) : NULL;
	if (lf)
		c->last_lf = (size_t)(lf - data) + 1;
	c->scanned = len;
	if (lf == NULL && len - c->last_lf <= HTTP_LINE_MAX &&
	    len < HTTP_HEAD_MAX)
		return;
	switch (http_head_end(data, len, &head_len, &why)) {
	case HTTP_OK:
		head_done(c, head_len);
		return;
	case HTTP_MORE:
		if (len >= HTTP_HEAD_MAX)
			refuse(c, 431, "head too large");
		return;
	case HTTP_TOO_LARGE:
		refuse(c, 431, why);
		return;
	case HTTP_URI_TOO_LONG:
		refuse(c, 414, why);
		return;
	default:
		refuse(c, 400, why);
		return;
	}
}

struct spool_job {
	struct http_conn *c;
	int fd;
	struct buf data;
	bool failed;
};

static void
spool_work(void *arg)
{
	struct spool_job *j = arg;
	size_t off = 0;

	while (off < j->data.len) {
		ssize_t w = write(j->fd, j->data.data + off, j->data.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			j->failed = true;
			return;
		}
		off += (size_t)w;
	}
}

static void
spool_done(void *arg)
{
	struct spool_job *j = arg;
	struct http_conn *c = j->c;

	c->spooled += j->data.len;
	c->spool_failed |= j->failed;
	buf_clear(&j->data);
	free(j);
	if (c->dead) {
		c->state = C_CLOSING;
		conn_free(c);
		return;
	}
	if (c->spool_last) {
		if (c->spool_failed) {
			c->state = C_BODY;
			refuse(c, 500, "cannot keep the body");
			return;
		}
		dispatch(c);
		return;
	}
	c->state = C_BODY;
	bufferevent_enable(c->bev, EV_READ);
	conn_read(c);       /* what came meanwhile */
}

/*
 * The body so far to the file, if the route has one for it; false if
 * it stays in memory. last: the body is complete (dispatch after).
 */
static bool
spool(struct http_conn *c, bool last)
{
	/* small pieces gather in memory first; a body that came whole
	 * before it was ever spooled stays there */
	if (!last && c->body.len < SPOOL_AT)
		return false;
	if (c->spool_fd < 0 && (last || c->env.spool_open == NULL ||
	    c->env.pool == NULL ||
	    (c->spool_fd = c->env.spool_open(c->env.arg, &c->req)) < 0))
		return false;
	struct spool_job *j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->fd = c->spool_fd;
	j->data = c->body;
	buf_init(&c->body);
	c->spool_last = last;
	c->state = C_SPOOL;
	bufferevent_disable(c->bev, EV_READ);
	iopool_submit(c->env.pool, spool_work, spool_done, j);
	return true;
}

static void
read_body(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in);

	if (!c->req.chunked) {
		size_t want = (size_t)c->req.content_length - c->body.len;
		if (len > want)
			len = want;
		buf_reserve(&c->body, len);
		evbuffer_remove(in, c->body.data + c->body.len, len);
		c->body.len += len;
		c->body.data[c->body.len] = '\0';
		bool last = c->spooled + c->body.len ==
		    (uint64_t)c->req.content_length;
		if (!spool(c, last) && last)
			dispatch(c);
		return;
	}
	while (len > 0) {
		struct evbuffer_iovec v;
		size_t used;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		enum http_status st = http_chunked_feed(&c->ch, v.iov_base,
		    v.iov_len, &used, &c->body, c->limit);
		evbuffer_drain(in, used);
		len -= used;
		if (st == HTTP_OK) {
			if (!spool(c, true))
				dispatch(c);
			return;
		}
		if (st != HTTP_MORE) {
			refuse(c, status_code(st, true), "bad chunked body");
			return;
		}
		if (spool(c, false))
			return;
	}
}

static void
conn_read(struct http_conn *c)
{
	if (c->state == C_HEAD)
		read_head(c);
	if (c->state == C_BODY)
		read_body(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->state == C_HEAD || c->state == C_BODY)
		conn_read(c);
	else if (c->state == C_SPOOL || c->state == C_HANDLER)
		return;     /* read after the write, or the next request */
	else    /* a stream's client sends nothing we read */
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->state == C_CLOSING)
		conn_dead(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if ((what & BEV_EVENT_TIMEOUT) && c->state == C_BODY) {
		refuse(c, 408, "body timeout");
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->state == C_HEAD &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		refuse(c, 408, "head timeout");
		return;
	}
	conn_dead(c);       /* EOF, error, idle keep-alive timeout */
}

static void
on_head_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	if (c->state == C_HEAD)
		refuse(c, 408, "head timeout");
}

/* After an answer: the next request, or the close. */
static void
next_request(struct http_conn *c)
{
	if (c->have_req)
		http_request_clear(&c->req);
	c->have_req = false;
	buf_reset(&c->body);
	if (c->spool_fd >= 0)
		close(c->spool_fd);
	c->spool_fd = -1;
	c->spooled = 0;
	c->spool_failed = c->spool_last = false;
	if (!c->keep || c->shutdown) {
		c->state = C_CLOSING;
		set_timeouts(c, 0, 30);
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	c->state = C_HEAD;
	set_timeouts(c, (int)c->env.keepalive_timeout, 60);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* a pipelined request may be buffered: read it from the loop, not
	 * from inside the handler that answered */
	event_active(c->resume, EV_TIMEOUT, 0);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	if (!c->dead && c->state == C_HEAD)
		conn_read(c);
}

static void
put_head(struct http_conn *c, int code, const char *ctype,
    const char *headers)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code, http_reason(code));
	put_date(out);
	if (ctype)
		evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
	if (headers)
		evbuffer_add(out, headers, strlen(headers));
	if (!c->keep)
		evbuffer_add_printf(out, "Connection: close\r\n");
}

void
http_respond(struct http_conn *c, int code, const char *ctype,
    const char *headers, const void *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	TERN_ASSERT(c->state == C_HANDLER);
	if (c->dead) {
		c->state = C_CLOSING;
		conn_free(c);
		return;
	}
	put_head(c, code, ctype, headers);
	evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", len);
	if (len && strcmp(c->req.method, "HEAD") != 0)
		evbuffer_add(out, body, len);
	log_debug("http %s: %s %s status=%d len=%zu", c->id, c->req.method,
	    c->req.path, code, len);
	next_request(c);
}

void
http_stream_start(struct http_conn *c, const char *ctype, const char *headers,
    void (*gone)(void *arg), void *arg)
{
	TERN_ASSERT(c->state == C_HANDLER);
	if (c->dead) {
		c->state = C_CLOSING;
		conn_free(c);
		gone(arg);
		return;
	}
	c->keep = false;
	put_head(c, 200, ctype, headers);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "Cache-Control: no-cache\r\n\r\n");
	c->state = C_STREAM;
	c->gone = gone;
	c->gone_arg = arg;
	/* read on, to see the client close; a reader that stops taking
	 * what we write for 5 minutes is gone */
	set_timeouts(c, 0, 300);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void
http_stream_write(struct http_conn *c, const void *data, size_t len)
{
	if (c->state == C_STREAM)
		bufferevent_write(c->bev, data, len);
}

size_t
http_stream_pending(const struct http_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
http_stream_end(struct http_conn *c)
{
	if (c->state != C_STREAM)
		return;
	c->gone = NULL;
	c->state = C_CLOSING;
	set_timeouts(c, 0, 30);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_dead(c);
}

void
http_conn_shutdown(struct http_conn *c)
{
	c->shutdown = true;
	c->keep = false;
	if (c->state == C_HEAD &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		conn_dead(c);
	else if (c->state == C_STREAM) {
		/* the stream's owner must let go of c: it ends here */
		void (*gone)(void *) = c->gone;
		c->gone = NULL;
		if (gone)
			gone(c->gone_arg);
		http_stream_end(c);
	}
}

int
http_conn_body_fd(const struct http_conn *c, uint64_t *size)
{
	*size = c->spooled;
	return c->spool_fd;
}

const char *
http_conn_ip(const struct http_conn *c)
{
	return c->ip;
}

const char *
http_conn_id(const struct http_conn *c)
{
	return c->id;
}

bool
http_conn_tls(const struct http_conn *c)
{
	return c->tls;
}

bool
http_conn_trusted(const struct http_conn *c)
{
	return c->trusted;
}

const struct sockaddr *
http_conn_local(const struct http_conn *c)
{
	return (const struct sockaddr *)&c->local;
}

static unsigned long conn_seq;

struct http_conn *
http_conn_new(const struct http_conn_env *env, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, enum listen_tls tls)
{
	struct http_conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv;
	socklen_t ll = sizeof(c->local);

	c->env = *env;
	runtime_ref(env->rt);
	buf_init(&c->body);
	c->spool_fd = -1;
	gettimeofday(&tv, NULL);
	(void)snprintf(c->id, sizeof(c->id), "%016llx",
	    (unsigned long long)(((uint64_t)tv.tv_sec << 24) |
	    (++conn_seq & 0xffffff)));
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    c->ip, sizeof(c->ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    c->ip, sizeof(c->ip));
	else
		(void)str_copy(c->ip, sizeof(c->ip), "unknown");
	(void)salen;
	if (getsockname(fd, (struct sockaddr *)&c->local, &ll) != 0)
		memset(&c->local, 0, sizeof(c->local));
	c->trusted = config_is_trusted(env->rt->cfg, sa);
	if (tls == LISTEN_TLS_IMPLICIT && env->rt->tls) {
		c->bev = tls_server_socket(env->rt->tls, env->base, fd);
		c->tls = true;
	} else
		c->bev = bufferevent_socket_new(env->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	TERN_ASSERT(c->bev != NULL);
	c->head_timer = evtimer_new(env->base, on_head_timer, c);
	c->resume = event_new(env->base, -1, 0, on_resume, c);
	c->state = C_HEAD;
	c->keep = true;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	set_timeouts(c, (int)env->keepalive_timeout, 60);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("http %s: connect client=%s%s", c->id, c->ip,
	    c->tls ? " tls=implicit" : "");
	return c;
}
