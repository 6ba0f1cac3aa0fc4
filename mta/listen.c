/* SPDX-License-Identifier: ISC */
/*
 * listen.c - layer 4: sockets and admission. Each configured address gets
 * an evconnlistener with a large backlog (a backlog of 5 stalls clients
 * under load: OpenSMTPD's lesson in ANCHORS.md). On accept the global and
 * per-IP limits are checked; over a limit the client gets one 421 line
 * and the socket is closed without a session. Accept errors such as
 * EMFILE pause accepting for a second instead of spinning.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "mail/maildir.h"
#include "http/http_app.h"
#include "http/http_conn.h"
#include "imap/imap_session.h"
#include "runtime.h"
#include "smtp/smtp_session.h"
#include "store/quota.h"

#define IP_BUCKETS 4096

struct ip_count {
	char ip[INET6_ADDRSTRLEN];
	unsigned n;
	struct ip_count *next;
};

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct listen_ctx *ctx;
	struct smtp_session *s;      /* one of the two */
	struct imap_session *is;
	struct http_conn *hc;
	struct ip_count *ipc;
	enum listen_role role;
};

struct listener {
	struct listen_ctx *ctx;
	struct evconnlistener *ev;
	enum listen_role role;
	enum listen_tls tls;
};

struct listen_ctx {
	struct event_base *base;
	struct runtime **current;
	struct queue *queue;
	struct iopool *pool;
	struct store *store;
	struct http_app *http;
	struct dns *dns;
	struct listener *listeners;
	size_t nlisteners;
	TAILQ_HEAD(, conn) conns;
	size_t nconns;
	unsigned long sessions_total;   /* sessions since start */
	unsigned long refused_total;    /* connections refused (limits) */
	struct ip_count *ips[IP_BUCKETS];
	struct event *resume;
	bool shutting_down;
};

static unsigned
ip_hash(const char *ip)
{
	unsigned h = 2166136261u;

	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % IP_BUCKETS;
}

static struct ip_count *
ip_get(struct listen_ctx *ctx, const char *ip)
{
	unsigned h = ip_hash(ip);
	struct ip_count *c;

	for (c = ctx->ips[h]; c; c = c->next)
		if (strcmp(c->ip, ip) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	(void)str_copy(c->ip, sizeof(c->ip), ip);
	c->next = ctx->ips[h];
	ctx->ips[h] = c;
	return c;
}

/*
 * For RCPT: the Maildir delivery would use (mail_dir/domain/mailbox) is
 * at the quota by its last count (quota_peek: no disk on the loop). No
 * count: not full (delivery checks again; the message then waits).
 */
static bool
mailbox_full(const struct config *cfg, const char *mailbox, const char *domain)
{
	const struct config_limits *l = &cfg->limits;
	char d[256], root[4096];
	struct quota_use u;

	if ((l->quota_storage == 0 && l->quota_messages == 0) ||
	    maildir_domain_normalize(domain, d, sizeof(d)) != 0 ||
	    str_fmt(root, sizeof(root), "%s/%s/%s", cfg->mail_dir, d,
	    mailbox) != 0 || quota_peek(root, &u) != 0)
		return false;
	return (l->quota_storage && u.bytes >= l->quota_storage) ||
	    (l->quota_messages && u.messages >= l->quota_messages);
}

static void
ip_put(struct listen_ctx *ctx, struct ip_count *ipc)
{
	struct ip_count **pp;

	if (--ipc->n > 0)
		return;
	for (pp = &ctx->ips[ip_hash(ipc->ip)]; *pp; pp = &(*pp)->next)
		if (*pp == ipc) {
			*pp = ipc->next;
			free(ipc);
			return;
		}
}

static void
conn_closed(struct conn *c)
{
	struct listen_ctx *ctx = c->ctx;

	TAILQ_REMOVE(&ctx->conns, c, entry);
	ctx->nconns--;
	ip_put(ctx, c->ipc);
	free(c);
}

static void
on_session_close(void *arg, struct smtp_session *s)
{
	conn_closed(arg);
}

static void
on_imap_close(void *arg, struct imap_session *s)
{
	conn_closed(arg);
}

static void
on_http_close(void *arg, struct http_conn *c)
{
	conn_closed(arg);
}

static void
refuse(evutil_socket_t fd, const struct config *cfg, const char *why,
    enum listen_role role)
{
	char line[400];
	int n = role == ROLE_HTTP || role == ROLE_HTTPS ?
	    snprintf(line, sizeof(line), "HTTP/1.1 503 Service Unavailable\r\n"
	    "Connection: close\r\nContent-Length: 0\r\nRetry-After: 10\r\n"
	    "\r\n") : snprintf(line, sizeof(line),
	    "421 4.7.0 %s Error: %s\r\n", cfg->hostname, why);

	if (n > 0)
		(void)!write(fd, line, (size_t)n < sizeof(line) ? (size_t)n :
		    sizeof(line) - 1);
	evutil_closesocket(fd);
}

static void
on_accept(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct listen_ctx *ctx = l->ctx;
	const struct config *cfg = (*ctx->current)->cfg;
	char ip[INET6_ADDRSTRLEN] = "unknown";
	struct smtp_session_env env;
	struct ip_count *ipc;
	struct conn *c;

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip,
		    sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    ip, sizeof(ip));
	if (ctx->shutting_down) {
		refuse(fd, cfg, "service shutting down", l->role);
		return;
	}
	if (ctx->nconns >= cfg->limits.max_connections) {
		ctx->refused_total++;
		log_warnx("refused client=%s: too many connections (%zu)", ip,
		    ctx->nconns);
		refuse(fd, cfg, "too many connections", l->role);
		return;
	}
	ipc = ip_get(ctx, ip);
	/* trusted_networks have a limit of their own (a higher one) */
	unsigned per_ip = config_is_trusted(cfg, sa) ?
	    cfg->limits.max_connections_per_trusted_ip :
	    cfg->limits.max_connections_per_ip;
	if (ipc->n >= per_ip) {
		ctx->refused_total++;
		log_warnx("refused client=%s: too many connections from this "
		    "address (%u)", ip, ipc->n);
		if (ipc->n == 0) { /* a limit of 0: drop the new entry */
			ipc->n = 1;
			ip_put(ctx, ipc);
		}
		refuse(fd, cfg, "too many connections from your address",
		    l->role);
		return;
	}
	ipc->n++;
	/*
	 * Every answer is written whole, so Nagle only ever holds back its
	 * tail: libevent writes at most 16 KiB a call, and the part after
	 * that waited for the peer's delayed ACK (40 ms on Linux) - a JMAP
	 * answer over 16 KiB took 44 ms instead of 2.
	 */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->ipc = ipc;
	c->role = l->role;
	if (l->role == ROLE_MX || l->role == ROLE_SUBMISSION ||
	    l->role == ROLE_SUBMISSIONS || l->role == ROLE_LMTP) {
		char lab[64];
		metrics_label(lab, sizeof(lab), "role",
		    config_role_name(l->role));
		metrics_add("tern_smtp_connections_total", lab, 1);
	}
	TAILQ_INSERT_TAIL(&ctx->conns, c, entry);
	ctx->nconns++;
	ctx->sessions_total++;
	if (l->role == ROLE_HTTP || l->role == ROLE_HTTPS) {
		struct http_conn_env henv = {
			.base = ctx->base, .rt = *ctx->current,
			.body_limit = http_app_body_limit,
			.handle = http_app_handle,
			.spool_open = http_app_spool_open, .pool = ctx->pool,
			.arg = ctx->http, .on_close = on_http_close,
			.close_arg = c,
			.head_timeout = cfg->limits.http_head_timeout,
			.body_timeout = cfg->limits.http_body_timeout,
			.keepalive_timeout = cfg->limits.http_keepalive_timeout };
		c->hc = http_conn_new(&henv, fd, sa, (socklen_t)salen, l->tls);
		return;
	}
	if (l->role == ROLE_IMAP || l->role == ROLE_IMAPS) {
		struct imap_session_env ienv = { ctx->base, *ctx->current,
			ctx->pool, ctx->store, on_imap_close, c };
		c->is = imap_session_new(&ienv, fd, sa, (socklen_t)salen,
		    l->tls);
		return;
	}
	env.base = ctx->base;
	env.rt = *ctx->current;
	env.queue = ctx->queue;
	env.pool = ctx->pool;
	env.dns = ctx->dns;
	env.mailbox_full = mailbox_full;
	env.on_close = on_session_close;
	env.arg = c;
	c->s = smtp_session_new(&env, fd, sa, (socklen_t)salen, l->role,
	    l->tls);
}

void
listen_set_dns(struct listen_ctx *ctx, struct dns *dns)
{
	ctx->dns = dns;
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listen_ctx *ctx = arg;

	if (ctx->shutting_down)
		return;
	for (size_t i = 0; i < ctx->nlisteners; i++)
		evconnlistener_enable(ctx->listeners[i].ev);
}

static void
on_accept_error(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	struct listen_ctx *ctx = l->ctx;
	int e = EVUTIL_SOCKET_ERROR();

	log_warnx("accept: %s; pausing for 1s",
	    evutil_socket_error_to_string(e));
	for (size_t i = 0; i < ctx->nlisteners; i++)
		evconnlistener_disable(ctx->listeners[i].ev);
	struct timeval tv = { 1, 0 };
	evtimer_add(ctx->resume, &tv);
}

struct listen_ctx *
listen_start(struct event_base *base, struct runtime **current,
    struct queue *q, struct iopool *pool, struct store *store, char *err,
    size_t errsz)
{
	struct listen_ctx *ctx = xcalloc(1, sizeof(*ctx));
	const struct config *cfg = (*current)->cfg;

	ctx->store = store;
	ctx->base = base;
	ctx->current = current;
	ctx->pool = pool;
	ctx->queue = q;
	ctx->http = http_app_new(base, current, store, pool, q);
	TAILQ_INIT(&ctx->conns);
	ctx->resume = evtimer_new(base, on_resume, ctx);
	ctx->listeners = xcalloc(cfg->nlisten, sizeof(*ctx->listeners));
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *cl = &cfg->listen[i];
		struct listener *l = &ctx->listeners[i];
		l->ctx = ctx;
		l->role = cl->role;
		l->tls = cl->tls;
		if (cl->tls == LISTEN_TLS_IMPLICIT && (*current)->tls == NULL) {
			(void)snprintf(err, errsz, "%s: implicit TLS needs a "
			    "certificate", cl->addr);
			ctx->nlisteners = i;
			listen_free(ctx);
			return NULL;
		}
		l->ev = evconnlistener_new_bind(base, on_accept, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 4096,
		    (const struct sockaddr *)&cl->ss, (int)cl->sslen);
		if (l->ev == NULL) {
			(void)snprintf(err, errsz, "cannot listen on %s: %s",
			    cl->addr, strerror(errno));
			ctx->nlisteners = i;
			listen_free(ctx);
			return NULL;
		}
		evconnlistener_set_error_cb(l->ev, on_accept_error);
		ctx->nlisteners++;
		log_info("listening on %s role=%s", cl->addr,
		    config_role_name(cl->role));
	}
	return ctx;
}

void
listen_shutdown(struct listen_ctx *ctx)
{
	struct conn *c, *next;

	ctx->shutting_down = true;
	for (size_t i = 0; i < ctx->nlisteners; i++)
		evconnlistener_disable(ctx->listeners[i].ev);
	/* A session may free itself (and its conn) inside the call. */
	for (c = TAILQ_FIRST(&ctx->conns); c; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->is)
			imap_session_shutdown(c->is);
		else if (c->hc)
			http_conn_shutdown(c->hc);
		else
			smtp_session_shutdown(c->s);
	}
}

size_t
listen_session_count(const struct listen_ctx *ctx)
{
	return ctx->nconns;
}

void
listen_get_stats(const struct listen_ctx *ctx, struct listen_stats *st)
{
	const struct conn *c;

	st->open = ctx->nconns;
	st->total = ctx->sessions_total;
	st->refused = ctx->refused_total;
	memset(st->by_role, 0, sizeof(st->by_role));
	st->streams = ctx->http ? http_app_streams(ctx->http) : 0;
	TAILQ_FOREACH(c, &ctx->conns, entry)
		if ((size_t)c->role < LISTEN_ROLES)
			st->by_role[c->role]++;
}

void
listen_free(struct listen_ctx *ctx)
{
	if (ctx == NULL)
		return;
	for (size_t i = 0; i < ctx->nlisteners; i++)
		evconnlistener_free(ctx->listeners[i].ev);
	free(ctx->listeners);
	event_free(ctx->resume);
	http_app_free(ctx->http);
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		struct ip_count *ipc, *next;
		for (ipc = ctx->ips[i]; ipc; ipc = next) {
			next = ipc->next;
			free(ipc);
		}
	}
	/* Sessions still open at exit are left to process teardown. */
	free(ctx);
}

/* Appends a (with port) to the list, growing it. */
static void
self_add(struct sockaddr_storage **v, size_t *n, size_t *cap,
    const struct sockaddr *a, uint16_t port)
{
	if (a->sa_family != AF_INET && a->sa_family != AF_INET6)
		return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	struct sockaddr_storage *ss = &(*v)[(*n)++];
	memset(ss, 0, sizeof(*ss));
	if (a->sa_family == AF_INET) {
		memcpy(ss, a, sizeof(struct sockaddr_in));
		((struct sockaddr_in *)ss)->sin_port = port;
	} else {
		memcpy(ss, a, sizeof(struct sockaddr_in6));
		((struct sockaddr_in6 *)ss)->sin6_port = port;
	}
}

struct sockaddr_storage *
listen_smtp_addresses(const struct config *cfg, size_t *n)
{
	struct sockaddr_storage *v = NULL;
	struct ifaddrs *ifs = NULL;
	size_t cap = 0;

	*n = 0;
	(void)getifaddrs(&ifs);
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];
		if (l->role != ROLE_MX && l->role != ROLE_SUBMISSION &&
		    l->role != ROLE_SUBMISSIONS && l->role != ROLE_LMTP)
			continue;
		const struct sockaddr *sa = (const struct sockaddr *)&l->ss;
		uint16_t port;
		bool any;
		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *s4 = (const void *)sa;
			port = s4->sin_port;
			any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
		} else if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const void *)sa;
			port = s6->sin6_port;
			any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
		} else
			continue;
		if (!any) {
			self_add(&v, n, &cap, sa, port);
			continue;
		}
		/* a wildcard: every interface address (an IPv6 one takes
		 * IPv4 clients too) */
		for (struct ifaddrs *f = ifs; f; f = f->ifa_next)
			if (f->ifa_addr && (f->ifa_addr->sa_family ==
			    sa->sa_family || sa->sa_family == AF_INET6))
				self_add(&v, n, &cap, f->ifa_addr, port);
	}
	if (ifs)
		freeifaddrs(ifs);
	return v;
}