/* SPDX-License-Identifier: ISC */
/*
 * imap_session.h - layer 3: the IMAP4rev1 server state machine (RFC 3501,
 * with IDLE, UIDPLUS, MOVE, NAMESPACE, ID, ENABLE, UNSELECT, CHILDREN,
 * LITERAL+, SASL-IR, SPECIAL-USE, CONDSTORE, QRESYNC, LIST-EXTENDED,
 * LIST-STATUS, STATUS=SIZE, ESEARCH, SORT, THREAD, OBJECTID, WITHIN,
 * SEARCHRES, QUOTA, COMPRESS=DEFLATE), one per
 * connection. Owns no files: the
 * store (store/) does all disk work on the I/O pool and the session
 * answers from its results. Loop thread only.
 */
#ifndef TERN_IMAP_SESSION_H
#define TERN_IMAP_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "lua/config.h"

struct event_base;
struct iopool;
struct runtime;
struct store;
struct imap_session;

struct imap_session_env {
	struct event_base *base;
	struct runtime *rt;          /* the session takes its own reference */
	struct iopool *pool;         /* password checks */
	struct store *store;
	void (*on_close)(void *arg, struct imap_session *s);
	void *arg;
};

/* Takes fd and greets; never calls on_close before returning. */
struct imap_session *imap_session_new(const struct imap_session_env *env,
    evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen,
    enum listen_tls tls);
/* Server shutdown: "* BYE" and close once no job is in flight. */
void imap_session_shutdown(struct imap_session *s);

#endif
