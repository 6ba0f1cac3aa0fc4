/* SPDX-License-Identifier: ISC */
/*
 * tls.h - layer 2: TLS through libevent's OpenSSL bufferevents; the only
 * code that includes OpenSSL. For now the client side (STARTTLS when
 * sending on): one SSL_CTX, TLS 1.2 at least, and per connection either
 * opportunistic encryption or full verification (chain and host name).
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event_base;
struct tls_client;

/* ca_file NULL: the system's trust store. NULL with err on failure. */
struct tls_client *tls_client_new(const char *ca_file, char *err,
    size_t errsz);
void tls_client_free(struct tls_client *t);

/*
 * Starts a TLS handshake over `under` (which the returned bufferevent
 * owns from now on). host: for SNI and, with verify, the name the
 * certificate must carry. NULL on failure (under is then freed).
 */
struct bufferevent *tls_client_wrap(struct tls_client *t,
    struct event_base *base, struct bufferevent *under, const char *host,
    bool verify);

/* After the handshake: 0 if the peer was verified, -1 with a reason. */
int tls_verified(struct bufferevent *bev, char *why, size_t whysz);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for logs and Received fields. */
void tls_describe(struct bufferevent *bev, char *out, size_t outsz);
/* The last TLS error on this bufferevent, for logs. */
void tls_error(struct bufferevent *bev, char *out, size_t outsz);

#endif
