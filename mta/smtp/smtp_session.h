/* SPDX-License-Identifier: ISC */
/*
 * smtp_session.h - layer 3: the SMTP server state machine, one per
 * connection. Owns no files: it asks queue.c to commit a message and
 * answers from the result, and asks hooks.c for the plugins' verdicts.
 * Runs on the loop thread only.
 */
#ifndef TERN_SMTP_SESSION_H
#define TERN_SMTP_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "lua/config.h"

struct event_base;
struct iopool;
struct queue;
struct runtime;
struct smtp_session;

struct dns;

struct smtp_session_env {
	struct event_base *base;
	struct runtime *rt;          /* the session takes its own reference */
	struct queue *queue;
	struct iopool *pool;         /* for password checks */
	struct dns *dns;             /* DKIM keys of mail received on mx;
	                              * NULL: not verified */
	/*
	 * Is this local mailbox known to be at its quota (without touching
	 * the disk)? Then RCPT gets 452 4.2.2. NULL: never asked.
	 */
	bool (*mailbox_full)(const struct config *cfg, const char *mailbox,
	    const char *domain);
	/* Called once, from the session's single destruction path. */
	void (*on_close)(void *arg, struct smtp_session *s);
	void *arg;
};

/*
 * Takes ownership of fd (non-blocking) and greets the client. The env is
 * copied. Never calls on_close before returning.
 */
struct smtp_session *smtp_session_new(const struct smtp_session_env *env,
    evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen,
    enum listen_role role, enum listen_tls tls);

/*
 * Server shutdown: answers 421 and closes as soon as no commit is in
 * flight (a message being committed still gets its 250 first).
 */
void smtp_session_shutdown(struct smtp_session *s);

#endif
