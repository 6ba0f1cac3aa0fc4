/* SPDX-License-Identifier: ISC */
/*
 * tls.c - layer 2 (tls.h). The client context: TLS 1.2 minimum, the
 * library's default cipher suites (OpenSSL 3's are sane), the system
 * trust store or a configured CA file. Opportunistic connections do not
 * verify (RFC 7435: any encryption beats none); "verify" connections ask
 * for the chain and the host name (SSL_set1_host), and a failure is a
 * temporary delivery failure, never a fallback to plain text.
 */
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util.h"

struct tls_client {
	SSL_CTX *ctx;
};

struct tls_client *
tls_client_new(const char *ca_file, char *err, size_t errsz)
{
	struct tls_client *t = xcalloc(1, sizeof(*t));

	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL) {
		(void)snprintf(err, errsz, "tls: cannot create a context");
		free(t);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	int ok = ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file,
	    NULL) : SSL_CTX_set_default_verify_paths(t->ctx);
	if (ok != 1) {
		(void)snprintf(err, errsz, "tls: cannot load %s",
		    ca_file ? ca_file : "the system trust store");
		SSL_CTX_free(t->ctx);
		free(t);
		return NULL;
	}
	return t;
}

void
tls_client_free(struct tls_client *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct bufferevent *
tls_client_wrap(struct tls_client *t, struct event_base *base,
    struct bufferevent *under, const char *host, bool verify)
{
	SSL *ssl = SSL_new(t->ctx);
	struct bufferevent *bev;

	if (ssl == NULL) {
		bufferevent_free(under);
		return NULL;
	}
	/* SNI and the name to check; an IP literal gets neither */
	if (host && *host && strspn(host, "0123456789.:[]") != strlen(host)) {
		SSL_set_tlsext_host_name(ssl, host);
		if (verify)
			SSL_set1_host(ssl, host);
	}
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	bev = bufferevent_openssl_filter_new(base, under, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		bufferevent_free(under);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

int
tls_verified(struct bufferevent *bev, char *why, size_t whysz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long rc;

	if (ssl == NULL) {
		(void)snprintf(why, whysz, "not a TLS connection");
		return -1;
	}
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (cert == NULL) {
		(void)snprintf(why, whysz, "no certificate");
		return -1;
	}
	X509_free(cert);
	rc = SSL_get_verify_result(ssl);
	if (rc != X509_V_OK) {
		(void)snprintf(why, whysz, "certificate: %s",
		    X509_verify_cert_error_string(rc));
		return -1;
	}
	return 0;
}

void
tls_describe(struct bufferevent *bev, char *out, size_t outsz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL) {
		(void)str_copy(out, outsz, "none");
		return;
	}
	(void)snprintf(out, outsz, "%s %s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
}

void
tls_error(struct bufferevent *bev, char *out, size_t outsz)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (e) {
		ERR_error_string_n(e, out, outsz);
		return;
	}
	if (ssl && SSL_get_verify_result(ssl) != X509_V_OK) {
		(void)snprintf(out, outsz, "certificate: %s",
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		return;
	}
	(void)str_copy(out, outsz, "handshake failed");
}
