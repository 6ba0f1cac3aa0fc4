/* SPDX-License-Identifier: ISC */
/*
 * tls.h - layer 2: TLS through libevent's OpenSSL bufferevents; the only
 * code that includes OpenSSL. The client side (STARTTLS when sending on:
 * opportunistic, or verified chain and host name) and the server side
 * (STARTTLS and implicit TLS for clients, one certificate, a self-signed
 * one made at first start when none is configured). TLS 1.2 at least.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event_base;
struct tls_client;
struct tlsa_rr;

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

/*
 * A TLS bufferevent on no socket yet, for a caller that connects it
 * (bufferevent_socket_connect, evhttp): host for SNI and, with verify,
 * the name the certificate must carry. NULL on failure.
 */
struct bufferevent *tls_client_socket(struct tls_client *t,
    struct event_base *base, const char *host, bool verify);

/*
 * A handshake that checks the chain and host's name but goes on whatever
 * they are (MTA-STS "testing", RFC 8461 5): tls_verified() says after it
 * whether the certificate would have passed. Takes under.
 */
struct bufferevent *tls_client_wrap_probe(struct tls_client *t,
    struct event_base *base, struct bufferevent *under, const char *host);

/*
 * A handshake for DANE (RFC 7672 3): the server's certificate must match
 * one of the TLSA records (the caller passes usable ones, tlsa.h):
 * DANE-EE the certificate or its key itself, names and dates unchecked
 * (RFC 7672 3.1.1); DANE-TA a trust anchor in the chain the server
 * sends, with host (the TLSA base domain, also the SNI sent) or alt
 * (NULL, or the name a CNAME chain led from to host: RFC 7672 3.2.2) as
 * the name it must carry. A mismatch fails the handshake. Takes under,
 * as tls_client_wrap.
 */
struct bufferevent *tls_client_wrap_dane(struct tls_client *t,
    struct event_base *base, struct bufferevent *under, const char *host,
    const char *alt, const struct tlsa_rr *rrs, size_t n);
/* After a DANE handshake: 0 and what matched in how ("DANE-EE 3 1 1"),
 * or -1 with why. */
int tls_dane_verified(struct bufferevent *bev, char *how, size_t howsz,
    char *why, size_t whysz);

/* After the handshake: 0 if the peer was verified, -1 with a reason. */
int tls_verified(struct bufferevent *bev, char *why, size_t whysz);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for logs and Received fields. */
void tls_describe(struct bufferevent *bev, char *out, size_t outsz);
/* The last TLS error on this bufferevent, for logs. */
void tls_error(struct bufferevent *bev, char *out, size_t outsz);
/* Whether the handshake on bev never finished; why (tls_error) if so. */
bool tls_handshake_failed(struct bufferevent *bev, char *why, size_t whysz);

/*
 * HMAC-SHA-256 of data under a random key made once per process: a
 * digest worth nothing outside it (the password check cache). 0 or -1.
 */
int tls_keyed_digest(const void *data, size_t len, unsigned char out[32]);

/* SHA-256, fed piece by piece (content ids of blobs, token hashes). */
struct tls_sha256;
struct tls_sha256 *tls_sha256_new(void);
void tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len);
/* The digest; h is freed. */
void tls_sha256_final(struct tls_sha256 *h, unsigned char out[32]);

/* --- signature keys (DKIM, ARC) --------------------------------------- */

/*
 * A private key for signing: RSA (2048 bits and up for new keys) or
 * Ed25519. Signing is RSASSA-PKCS1-v1_5 with SHA-256 of the data for
 * RSA, and for Ed25519 PureEdDSA over the SHA-256 digest of the data
 * (RFC 8463 3: "ed25519-sha256" signs the hash).
 */
enum tls_key_type { TLS_KEY_RSA, TLS_KEY_ED25519 };
struct tls_pkey;
/* A PEM private key file (PKCS#8 or traditional). NULL with err. */
struct tls_pkey *tls_pkey_load(const char *path, char *err, size_t errsz);
void tls_pkey_free(struct tls_pkey *k);
enum tls_key_type tls_pkey_type(const struct tls_pkey *k);
unsigned tls_pkey_bits(const struct tls_pkey *k);
/* The signature of data[0..len) into sig (up to sigsz): its length, or
 * -1. */
int tls_pkey_sign(const struct tls_pkey *k, const void *data, size_t len,
    unsigned char *sig, size_t sigsz);
/*
 * The public key as a DKIM key record's p= wants it (RFC 6376 3.6.1,
 * RFC 8463 4.2): the DER SubjectPublicKeyInfo for RSA, the 32 raw
 * octets for Ed25519; its length, or -1.
 */
int tls_pkey_public(const struct tls_pkey *k, unsigned char *out,
    size_t outsz);
/*
 * Makes a key (bits: RSA only) and writes it as PEM PKCS#8 to path,
 * mode 0600, failing if path exists. Blocking. 0, or -1 with err.
 */
int tls_pkey_generate(enum tls_key_type type, unsigned bits,
    const char *path, char *err, size_t errsz);
/*
 * Checks sig over data with a public key in p= form (above; for RSA the
 * RSAPublicKey form is taken too): 1 good, 0 bad, -1 the key is not
 * usable (*bits its size when known, else 0).
 */
int tls_verify(enum tls_key_type type, const unsigned char *pub,
    size_t publen, const void *data, size_t len, const unsigned char *sig,
    size_t siglen, unsigned *bits);

/* --- server ---------------------------------------------------------- */

struct tls_server;

/*
 * Makes a self-signed certificate for host (EC P-256, SAN = host, ten
 * years) at cert/key unless both exist. Blocking; for start-up. 0 or -1.
 */
int tls_selfsigned_ensure(const char *cert, const char *key, const char *host,
    char *err, size_t errsz);
struct tls_server *tls_server_new(const char *cert, const char *key,
    char *err, size_t errsz);
void tls_server_free(struct tls_server *t);
/*
 * Another certificate, for the host names a client may ask for (SNI):
 * exact names, or "*.example.org" for one label under it; a client that
 * asks for none of them gets the default one. 0, or -1 with err.
 */
int tls_server_add_names(struct tls_server *t, const char *const *names,
    size_t n, const char *cert, const char *key, char *err, size_t errsz);
/* STARTTLS: a server handshake over a live connection (takes under). */
struct bufferevent *tls_server_wrap(struct tls_server *t,
    struct event_base *base, struct bufferevent *under);
/* Implicit TLS (port 465): a server handshake on a new socket (takes fd). */
struct bufferevent *tls_server_socket(struct tls_server *t,
    struct event_base *base, int fd);

#endif
