/* SPDX-License-Identifier: ISC */
/*
 * httpc.c - layer 2: the plugins' HTTP/1.1 client (see httpc.h). Steps:
 * the host's addresses (an address literal as it is, a name through
 * dns_addrs: up to five, tried in turn while one cannot be connected
 * to), then one evhttp request on a connection of its own (a TLS
 * bufferevent from the caller's maker for https), answered once. evhttp
 * is only ever entered from our own loop callbacks, never from
 * httpc_start, so no answer can come before httpc_start returns; a
 * finished connection is freed from the loop too, not from inside
 * evhttp's callback.
 */
#include "base/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "base/dns.h"
#include "base/log.h"
#include "base/util.h"

#define HTTPC_HEADERS_MAX 100
#define HTTPC_ADDRS_MAX 4            /* a name's addresses tried in turn */

struct httpc {
	struct event_base *base;
	struct dns_query *q;
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct event *step;          /* the next step, from the loop */
	enum evhttp_cmd_type method;
	char *host, *path, *body;
	size_t body_len;
	unsigned port, timeout;
	size_t max_body;
	const struct httpc_tls *tls;
	char **hnames, **hvalues;
	size_t nheaders;
	char addr[INET6_ADDRSTRLEN];
	char more[HTTPC_ADDRS_MAX][INET6_ADDRSTRLEN]; /* to try next */
	size_t nmore;
	bool conn_error;             /* the last try could not connect */
	const char *error;           /* set by the error callback */
	char why[160];
	httpc_cb cb;
	void *arg;
};

static void
conn_free_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

static void
httpc_free(struct httpc *c)
{
	if (c->step)
		event_free(c->step);
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->hnames[i]);
		free(c->hvalues[i]);
	}
	free(c->hnames);
	free(c->hvalues);
	free(c->host);
	free(c->path);
	free(c->body);
	free(c);
}

/* The connection goes away from the loop, not from inside evhttp. */
static void
drop_conn(struct httpc *c)
{
	if (c->conn) {
		struct timeval now = { 0, 0 };
		if (event_base_once(c->base, -1, EV_TIMEOUT, conn_free_later,
		    c->conn, &now) != 0)
			log_warnx("httpc: cannot schedule a connection's end");
		c->conn = NULL;
	}
	c->req = NULL;
}

/* The one answer. */
static void
finish(struct httpc *c, const struct httpc_response *r)
{
	drop_conn(c);
	c->cb(c->arg, r);
	httpc_free(c);
}

static void
fail(struct httpc *c, const char *why)
{
	struct httpc_response r = { .status = 0, .error = why };

	finish(c, &r);
}

static void
on_error(enum evhttp_request_error e, void *arg)
{
	struct httpc *c = arg;

	switch (e) {
	case EVREQ_HTTP_TIMEOUT:
		c->error = "timeout";
		break;
	case EVREQ_HTTP_EOF:
		c->error = "connection closed before a response";
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		c->error = "malformed response";
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		c->error = "response too long";
		break;
	default:
		c->error = "connection failed";
		break;
	}
}

static void send_request(evutil_socket_t fd, short what, void *arg);

static void
on_response(struct evhttp_request *req, void *arg)
{
	struct httpc *c = arg;
	struct httpc_header hs[HTTPC_HEADERS_MAX];
	struct httpc_response r = { 0 };

	/* no response and no error said: the connection was never made
	 * (refused, or the TLS handshake failed) */
	if ((req == NULL || evhttp_request_get_response_code(req) == 0) &&
	    c->error == NULL)
		c->conn_error = true;

	if ((req == NULL || evhttp_request_get_response_code(req) == 0) &&
	    c->conn_error && c->nmore > 0) {
		/* the next address, with a new connection, from the loop */
		struct timeval now = { 0, 0 };
		drop_conn(c);
		(void)str_copy(c->addr, sizeof(c->addr), c->more[0]);
		memmove(c->more, c->more + 1, --c->nmore * sizeof(c->more[0]));
		c->conn_error = false;
		c->error = NULL;
		evtimer_add(c->step, &now);
		return;
	}
	char tls_why[100];
	if ((req == NULL || evhttp_request_get_response_code(req) == 0) &&
	    c->tls && c->conn && c->tls->failed(
	    evhttp_connection_get_bufferevent(c->conn), tls_why,
	    sizeof(tls_why))) {
		(void)snprintf(c->why, sizeof(c->why), "%s:%u: TLS: %s", c->host,
		    c->port, tls_why);
		struct httpc_response tr = { .status = 0, .error = c->why,
			.tls_failed = true };
		finish(c, &tr);
		return;
	}
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		(void)snprintf(c->why, sizeof(c->why), "%s:%u: %s", c->host,
		    c->port, c->error ? c->error : "connection failed");
		fail(c, c->why);
		return;
	}
	r.status = evhttp_request_get_response_code(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	for (struct evkeyval *kv = TAILQ_FIRST(in); kv != NULL &&
	    r.nheaders < HTTPC_HEADERS_MAX; kv = TAILQ_NEXT(kv, next))
		hs[r.nheaders++] = (struct httpc_header){ kv->key, kv->value };
	r.headers = hs;
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	r.body_len = evbuffer_get_length(body);
	r.body = r.body_len ? (const char *)evbuffer_pullup(body, -1) : "";
	finish(c, &r);
}

/* From the loop: the request goes out to c->addr. */
static void
send_request(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;
	char hostport[300];

	(void)fd;
	(void)what;
	if (c->tls) {
		/* the connection owns the TLS bufferevent from here on */
		struct bufferevent *bev = c->tls->socket(c->tls->arg, c->base,
		    c->host);
		if (bev == NULL) {
			fail(c, "cannot make a TLS connection");
			return;
		}
		c->conn = evhttp_connection_base_bufferevent_new(c->base, NULL,
		    bev, c->addr, (ev_uint16_t)c->port);
		if (c->conn == NULL)
			bufferevent_free(bev);
	} else
		c->conn = evhttp_connection_base_new(c->base, NULL, c->addr,
		    (ev_uint16_t)c->port);
	if (c->conn == NULL) {
		fail(c, "cannot open a connection");
		return;
	}
	evhttp_connection_set_timeout(c->conn, (int)c->timeout);
	evhttp_connection_set_retries(c->conn, 0);
	evhttp_connection_set_max_body_size(c->conn, (ev_ssize_t)c->max_body);
	evhttp_connection_set_max_headers_size(c->conn, 64 * 1024);
	c->req = evhttp_request_new(on_response, c);
	evhttp_request_set_error_cb(c->req, on_error);
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
	if (strchr(c->host, ':'))
		(void)snprintf(hostport, sizeof(hostport), "[%s]:%u", c->host,
		    c->port);
	else
		(void)snprintf(hostport, sizeof(hostport), "%s:%u", c->host,
		    c->port);
	evhttp_add_header(out, "Host", hostport);
	evhttp_add_header(out, "Connection", "close");
	evhttp_add_header(out, "User-Agent", "Tern/" PACKAGE_VERSION);
	for (size_t i = 0; i < c->nheaders; i++)
		evhttp_add_header(out, c->hnames[i], c->hvalues[i]);
	if (c->body_len) {
		char len[32];
		(void)snprintf(len, sizeof(len), "%zu", c->body_len);
		evhttp_remove_header(out, "Content-Length");
		evhttp_add_header(out, "Content-Length", len);
		evbuffer_add(evhttp_request_get_output_buffer(c->req), c->body,
		    c->body_len);
	}
	/* on failure evhttp has already answered (on_response) */
	(void)evhttp_make_request(c->conn, c->req, c->method, c->path);
}

static const struct timeval zero = { 0, 0 };

static void
fail_step(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;

	(void)fd;
	(void)what;
	fail(c, c->why);
}

static void
go_later(struct httpc *c)
{
	c->step = evtimer_new(c->base, send_request, c);
	evtimer_add(c->step, &zero);
}

static void
on_addrs(void *arg, enum dns_status st, const struct sockaddr_storage *a,
    size_t n)
{
	struct httpc *c = arg;

	c->q = NULL;
	if (st != DNS_OK || n == 0) {
		(void)snprintf(c->why, sizeof(c->why), "%s: %s", c->host,
		    st == DNS_TEMP ? "cannot resolve it now" :
		    "no such host");
		fail(c, c->why);
		return;
	}
	for (size_t i = 0; i < n && i <= HTTPC_ADDRS_MAX; i++) {
		char *to = i == 0 ? c->addr : c->more[c->nmore++];
		if (a[i].ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a[i])->
			    sin6_addr, to, INET6_ADDRSTRLEN);
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&a[i])->
			    sin_addr, to, INET6_ADDRSTRLEN);
	}
	go_later(c);
}

static int
method_of(const char *m, enum evhttp_cmd_type *t)
{
	static const struct {
		const char *name;
		enum evhttp_cmd_type type;
	} ms[] = { { "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
		{ "PUT", EVHTTP_REQ_PUT }, { "DELETE", EVHTTP_REQ_DELETE },
		{ "HEAD", EVHTTP_REQ_HEAD } };

	for (size_t i = 0; i < TERN_ARRAY_LEN(ms); i++)
		if (strcmp(ms[i].name, m) == 0) {
			*t = ms[i].type;
			return 0;
		}
	return -1;
}

struct httpc *
httpc_start(struct event_base *base, struct dns *dns,
    const struct httpc_request *rq, httpc_cb cb, void *arg)
{
	struct httpc *c = xcalloc(1, sizeof(*c));
	unsigned char ip[16];
	bool v6;

	c->base = base;
	c->cb = cb;
	c->arg = arg;
	c->host = xstrdup(rq->host);
	c->path = xstrdup(rq->path);
	c->port = rq->port;
	c->timeout = rq->timeout_sec ? rq->timeout_sec : 10;
	c->max_body = rq->max_body ? rq->max_body : 1024 * 1024;
	c->tls = rq->tls;
	if (method_of(rq->method, &c->method) != 0)
		c->method = EVHTTP_REQ_GET;   /* the caller checked it */
	if (rq->body_len) {
		c->body = xmalloc(rq->body_len);
		memcpy(c->body, rq->body, rq->body_len);
		c->body_len = rq->body_len;
	}
	c->hnames = xcalloc(rq->nheaders + 1, sizeof(char *));
	c->hvalues = xcalloc(rq->nheaders + 1, sizeof(char *));
	for (size_t i = 0; i < rq->nheaders; i++) {
		c->hnames[i] = xstrdup(rq->headers[i].name);
		c->hvalues[i] = xstrdup(rq->headers[i].value);
		c->nheaders++;
	}
	if (ip_parse(c->host, strlen(c->host), ip, &v6) == 0) {
		(void)str_copy(c->addr, sizeof(c->addr), c->host);
		go_later(c);
	} else if (dns == NULL) {
		(void)snprintf(c->why, sizeof(c->why), "%s: no resolver",
		    c->host);
		c->step = evtimer_new(base, fail_step, c);
		evtimer_add(c->step, &zero);
	} else
		c->q = dns_addrs(dns, c->host, on_addrs, c);
	return c;
}

void
httpc_cancel(struct httpc *c)
{
	if (c == NULL)
		return;
	if (c->q)
		dns_cancel(c->q);
	if (c->conn)
		evhttp_connection_free(c->conn);  /* its request goes too */
	httpc_free(c);
}

int
httpc_parse_url(const char *url, char *host, size_t hostsz, unsigned *port,
    char *path, size_t pathsz, bool *https)
{
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
	int rc = -1;

	if (u == NULL)
		return -1;
	const char *scheme = evhttp_uri_get_scheme(u);
	const char *h = evhttp_uri_get_host(u);
	const char *p = evhttp_uri_get_path(u);
	const char *q = evhttp_uri_get_query(u);
	int pt = evhttp_uri_get_port(u);
	*https = scheme && ascii_strcaseeq(scheme, "https");
	if (scheme == NULL || !(*https || ascii_strcaseeq(scheme, "http")) ||
	    h == NULL ||
	    *h == '\0' || evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL || pt == 0 || pt > 65535)
		goto out;
	/* IPv6 literals come bracketed */
	size_t hl = strlen(h);
	if (h[0] == '[') {
		if (hl < 3 || h[hl - 1] != ']' || hl - 2 >= hostsz)
			goto out;
		memcpy(host, h + 1, hl - 2);
		host[hl - 2] = '\0';
	} else if (str_copy(host, hostsz, h) != 0)
		goto out;
	*port = pt < 0 ? (*https ? 443 : 80) : (unsigned)pt;
	if (str_fmt(path, pathsz, "%s%s%s", p && *p ? p : "/", q ? "?" : "",
	    q ? q : "") != 0 || path[0] != '/')
		goto out;
	rc = 0;
out:
	evhttp_uri_free(u);
	return rc;
}
