/* SPDX-License-Identifier: ISC */
/*
 * jmap_api.h - layer 3: the JMAP API endpoint (RFC 8620 3): one request's
 * method calls run in order, each with its result references resolved
 * against the responses before it; the methods of RFC 8621 this server
 * has (Core/echo, Mailbox/get, Email/query, Email/get) answer from the
 * account's snapshots (jmap_account.h) and from the folders' files, read
 * in jobs of the folders on the I/O pool. Loop thread only.
 */
#ifndef TERN_JMAP_API_H
#define TERN_JMAP_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct jacct;
struct queue;
struct runtime;

#define JMAP_MAX_UPLOAD 50000000  /* maxSizeUpload, octets */

/* The capabilities and limits this server announces (session object). */
json_t *jmap_api_capabilities(void);
json_t *jmap_api_account_capabilities(void);
/* The accountId of a user: stable, JMAP Id characters only. */
void jmap_account_id(const char *user, char out[20]);

/*
 * Runs the request body[0..len) for the account; done(arg, status,
 * json) once (before this returns for a request that cannot be parsed),
 * with the HTTP status and the response (or problem details) as JSON
 * text (owned by the callee: copy it). The request holds its own
 * reference to the account.
 */
/* What the methods that write need of the daemon. */
struct jmap_env {
	struct queue *queue;      /* EmailSubmission's messages go here */
	struct runtime *rt;       /* the config (a reference the caller holds
	                           * until done) */
	const char *client_ip;    /* for the Received: field */
	bool tls;
};

typedef void (*jmap_api_done)(void *arg, int status, const char *json,
    size_t len);
void jmap_api_run(struct jacct *a, const struct jmap_env *env,
    const char *body, size_t len, jmap_api_done done, void *arg);

#endif
