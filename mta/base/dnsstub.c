/* SPDX-License-Identifier: ISC */
/*
 * dnsstub.c - layer 2: a stub DNS query on libevent.
 *
 * UDP: the socket is connected to the server, so the kernel drops
 * datagrams from anywhere else; a reply must also carry our random id
 * and echo the question (dnsmsg_parse), else it is ignored and we keep
 * waiting. Silence is answered by sending again after 1, 2 and 4
 * seconds; after that we wait for the caller's deadline (dns.c's
 * dns_timeout). An ICMP "port unreachable" (ECONNREFUSED) ends the query
 * at once. A truncated reply (TC) starts the same query over TCP (RFC
 * 7766), two-octet length first, one reply read.
 */
#include "base/dnsstub.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "base/dnsmsg.h"
#include "base/log.h"
#include "base/util.h"

#define UDP_TRIES 4

struct dnsstub_query {
	struct event_base *base;
	struct sockaddr_storage server;
	socklen_t slen;
	char *name;
	int type;
	uint16_t id;
	unsigned char q[512];
	size_t qlen;
	int fd;                      /* UDP */
	struct event *ev;            /* UDP reads and resends; or the failure */
	int sent;
	struct bufferevent *bev;     /* TCP */
	dnsstub_cb cb;
	void *arg;
};

int
dnsstub_server(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	int n = (int)sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (evutil_parse_sockaddr_port(text, (struct sockaddr *)ss, &n) != 0)
		return -1;
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *s4 = (void *)ss;
		if (s4->sin_port == 0)
			s4->sin_port = htons(53);
	} else if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)ss;
		if (s6->sin6_port == 0)
			s6->sin6_port = htons(53);
	} else
		return -1;
	*len = (socklen_t)n;
	return 0;
}

static void
query_free(struct dnsstub_query *q)
{
	if (q->ev)
		event_free(q->ev);
	if (q->fd >= 0)
		(void)close(q->fd);
	if (q->bev)
		bufferevent_free(q->bev);
	free(q->name);
	free(q);
}

static void
finish(struct dnsstub_query *q, const struct dnsmsg_answer *a)
{
	q->cb(q->arg, a);
	query_free(q);
}

static void
on_fail(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, NULL);
}

/* Ends q with "no answer" from the loop, not from here. */
static void
fail_soon(struct dnsstub_query *q)
{
	struct timeval now = { 0, 0 };

	if (q->ev)
		event_free(q->ev);
	q->ev = evtimer_new(q->base, on_fail, q);
	evtimer_add(q->ev, &now);
}

static void
on_tcp_read(struct bufferevent *bev, void *arg)
{
	struct dnsstub_query *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned char hdr[2];

	if (evbuffer_copyout(in, hdr, 2) != 2)
		return;
	size_t n = (size_t)hdr[0] << 8 | hdr[1];
	if (evbuffer_get_length(in) < 2 + n)
		return;
	unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)(2 + n)) + 2;
	struct dnsmsg_answer a;
	if (dnsmsg_parse(p, n, q->id, q->name, q->type, &a) != 0 || a.tc) {
		log_warnx("dns: %s (type %d): the resolver's reply over TCP "
		    "cannot be read", q->name, q->type);
		dnsmsg_answer_free(&a);
		finish(q, NULL);
		return;
	}
	finish(q, &a);
	dnsmsg_answer_free(&a);
}

static void
on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		finish(arg, NULL);
}

/* The reply was truncated: the same question over TCP. */
static void
ask_tcp(struct dnsstub_query *q)
{
	unsigned char len[2] = { (unsigned char)(q->qlen >> 8),
		(unsigned char)q->qlen };

	event_free(q->ev);
	q->ev = NULL;
	(void)close(q->fd);
	q->fd = -1;
	q->bev = bufferevent_socket_new(q->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (q->bev == NULL) {
		fail_soon(q);
		return;
	}
	bufferevent_setcb(q->bev, on_tcp_read, NULL, on_tcp_event, q);
	(void)bufferevent_write(q->bev, len, 2);
	(void)bufferevent_write(q->bev, q->q, q->qlen);
	(void)bufferevent_enable(q->bev, EV_READ);
	if (bufferevent_socket_connect(q->bev, (struct sockaddr *)&q->server,
	    (int)q->slen) != 0) {
		bufferevent_free(q->bev);
		q->bev = NULL;
		fail_soon(q);
	}
}

static void
udp_send(struct dnsstub_query *q)
{
	struct timeval tv = { 1 << q->sent, 0 };

	/* a lost datagram is what the resend is for */
	(void)send(q->fd, q->q, q->qlen, 0);
	q->sent++;
	/* re-adding a pending event with NULL would keep its timeout */
	event_del(q->ev);
	event_add(q->ev, q->sent < UDP_TRIES ? &tv : NULL);
}

static void
on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct dnsstub_query *q = arg;
	unsigned char buf[4096];

	if (what & EV_TIMEOUT) {
		udp_send(q);
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == ECONNREFUSED) {
				log_info("dns: %s (type %d): the resolver "
				    "refuses (nothing listens there)", q->name,
				    q->type);
				finish(q, NULL);
			}
			return;      /* EAGAIN: keep waiting */
		}
		struct dnsmsg_answer a;
		if (dnsmsg_parse(buf, (size_t)n, q->id, q->name, q->type,
		    &a) != 0)
			continue;    /* not the reply: another may come */
		if (a.tc) {
			ask_tcp(q);
			return;
		}
		finish(q, &a);
		dnsmsg_answer_free(&a);
		return;
	}
}

struct dnsstub_query *
dnsstub_ask(struct event_base *base, const struct sockaddr_storage *server,
    socklen_t len, const char *name, int type, dnsstub_cb cb, void *arg)
{
	struct dnsstub_query *q = xcalloc(1, sizeof(*q));

	q->base = base;
	q->server = *server;
	q->slen = len;
	q->name = xstrdup(name);
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->fd = -1;
	if (getrandom(&q->id, sizeof(q->id), 0) != sizeof(q->id))
		q->id = (uint16_t)rand();
	q->qlen = dnsmsg_query(q->id, name, type, q->q, sizeof(q->q));
	if (q->qlen == 0) {
		log_info("dns: %s: not a name that can be asked", name);
		fail_soon(q);
		return q;
	}
	q->fd = socket(server->ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (q->fd < 0 || connect(q->fd, (const struct sockaddr *)server,
	    len) != 0) {
		log_warn("dns: cannot reach the resolver for %s", name);
		fail_soon(q);
		return q;
	}
	q->ev = event_new(base, q->fd, EV_READ | EV_PERSIST, on_udp, q);
	udp_send(q);
	return q;
}

void
dnsstub_cancel(struct dnsstub_query *q)
{
	query_free(q);
}
