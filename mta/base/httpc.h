/* SPDX-License-Identifier: ISC */
/*
 * httpc.h - layer 2: an HTTP/1.1 client on the event loop, for plugins
 * that ask a spam filter or a policy service (tern.http.request). One
 * request per connection ("Connection: close"), http:// or https:// (the
 * TLS bufferevent made by the caller's httpc_tls: base/tls.c in ternd,
 * chain and host name verified); a host name is resolved by our own
 * asynchronous resolver (dns.h), never by a blocking getaddrinfo.
 * libevent's evhttp speaks the protocol.
 *
 * The callback runs on the loop, never before httpc_start returns, and
 * exactly once unless the request is cancelled first.
 */
#ifndef TERN_HTTPC_H
#define TERN_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event_base;
struct dns;
struct httpc;

/*
 * What makes a TLS connection (not yet connected) to host, verified;
 * and says why, after a failure, if its handshake never finished.
 */
struct httpc_tls {
	struct bufferevent *(*socket)(void *arg, struct event_base *base,
	    const char *host);
	bool (*failed)(struct bufferevent *bev, char *why, size_t whysz);
	void *arg;
};

struct httpc_header {
	const char *name, *value;
};

struct httpc_request {
	const char *method;          /* GET, POST, PUT, DELETE, HEAD */
	const char *host;            /* a name or an address (no brackets) */
	unsigned port;
	const char *path;            /* with its query, starts with '/' */
	const struct httpc_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
	unsigned timeout_sec;        /* connect, send and each read */
	size_t max_body;             /* a longer response is an error */
	const struct httpc_tls *tls; /* https: how; NULL: http */
};

struct httpc_response {
	int status;                  /* 0: no response; error says why */
	const char *error;
	bool tls_failed;             /* status 0: the TLS handshake failed
	                              * (a certificate that did not verify) */
	const struct httpc_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
};

typedef void (*httpc_cb)(void *arg, const struct httpc_response *r);

/* dns may be NULL when host is an address. */
struct httpc *httpc_start(struct event_base *base, struct dns *dns,
    const struct httpc_request *rq, httpc_cb cb, void *arg);
void httpc_cancel(struct httpc *c);

/*
 * "http[s]://host[:port][/path[?query]]" -> its parts (path "/" if none,
 * port 80 or 443 if none, *https); 0, or -1 if it is not such a URL
 * (user info, fragments and other schemes refused).
 */
int httpc_parse_url(const char *url, char *host, size_t hostsz,
    unsigned *port, char *path, size_t pathsz, bool *https);

#endif
