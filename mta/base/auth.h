/* SPDX-License-Identifier: ISC */
/*
 * auth.h - layer 2: the users table ("user:hash" lines, crypt(3) hashes:
 * yescrypt, sha512-crypt, ...) and password checks. The check runs
 * crypt(3) (deliberately slow) on an iopool worker; an unknown user is
 * checked against a dummy hash so the answer takes as long. Failures are
 * counted per client address; past the limit the address waits.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth_users;
struct iopool;

/*
 * App passwords (bearer tokens for HTTP, `ternctl token`) are in the
 * users table's path plus this suffix: "user:id:sha256hex:created:label"
 * lines, the token itself never kept.
 */
#define AUTH_TOKENS_SUFFIX ".tokens"

/* Loads the table (and its tokens); NULL with "file:line: reason". */
struct auth_users *auth_users_load(const char *path, char *err,
    size_t errsz);
void auth_users_free(struct auth_users *u);

/* ok: the password matches. Runs on the loop thread. */
typedef void (*auth_cb)(void *arg, bool ok);
struct auth_check;
/* user/pass are copied. cb never runs before this returns. */
struct auth_check *auth_check(struct auth_users *u, struct iopool *pool,
    const char *user, const char *pass, auth_cb cb, void *arg);
/* The requester is gone. */
void auth_check_detach(struct auth_check *c);

/* Per client address: too many recent failures? Record one (and count
 * it in tern_auth_failures_total{protocol}). */
bool auth_ip_blocked(const char *ip, long now);
void auth_ip_failed(const char *ip, long now, const char *protocol);

/* The user a bearer token belongs to, or NULL (loop thread; fast). */
const char *auth_token_user(const struct auth_users *u, const char *token);

/* A new hash for a password (yescrypt); NULL on failure. Owned. */
char *auth_hash_password(const char *pass);

#endif
