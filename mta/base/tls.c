/* SPDX-License-Identifier: ISC */
/*
 * tls.c - layer 2 (tls.h). The client context: TLS 1.2 minimum, the
 * library's default cipher suites (OpenSSL 3's are sane), the system
 * trust store or a configured CA file. Opportunistic connections do not
 * verify (RFC 7435: any encryption beats none); "verify" connections ask
 * for the chain and the host name (SSL_set1_host), and a failure is a
 * temporary delivery failure, never a fallback to plain text.
 */
#include "base/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "smtp/tlsa.h"

struct tls_client {
	SSL_CTX *ctx;
};

/* Frees a context and the struct that holds it. */
static void
ctx_free(SSL_CTX *ctx, void *t)
{
	SSL_CTX_free(ctx);
	free(t);
}

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
		ctx_free(t->ctx, t);
		return NULL;
	}
	/* DANE is per connection (SSL_dane_enable); this only allows it */
	if (SSL_CTX_dane_enable(t->ctx) <= 0) {
		(void)snprintf(err, errsz, "tls: cannot enable DANE");
		ctx_free(t->ctx, t);
		return NULL;
	}
	return t;
}

void
tls_client_free(struct tls_client *t)
{
	if (t != NULL)
		ctx_free(t->ctx, t);
}

/*
 * A TLS filter over `under` (which it owns from now on, also on failure).
 * ssl may be NULL (allocation failed): then under is freed.
 */
static struct bufferevent *
filter(struct event_base *base, struct bufferevent *under, SSL *ssl,
    enum bufferevent_ssl_state state)
{
	struct bufferevent *bev;

	if (ssl == NULL) {
		bufferevent_free(under);
		return NULL;
	}
	bev = bufferevent_openssl_filter_new(base, under, ssl, state,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		bufferevent_free(under);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *
tls_client_wrap(struct tls_client *t, struct event_base *base,
    struct bufferevent *under, const char *host, bool verify)
{
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL)
		return filter(base, under, NULL, BUFFEREVENT_SSL_CONNECTING);
	/* SNI and the name to check; an IP literal gets neither */
	if (host && *host && strspn(host, "0123456789.:[]") != strlen(host)) {
		SSL_set_tlsext_host_name(ssl, host);
		if (verify)
			SSL_set1_host(ssl, host);
	}
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return filter(base, under, ssl, BUFFEREVENT_SSL_CONNECTING);
}

struct bufferevent *
tls_client_wrap_probe(struct tls_client *t, struct event_base *base,
    struct bufferevent *under, const char *host)
{
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL)
		return filter(base, under, NULL, BUFFEREVENT_SSL_CONNECTING);
	SSL_set_tlsext_host_name(ssl, host);
	SSL_set1_host(ssl, host);
	/* verified all the same; the result is only read afterwards */
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	return filter(base, under, ssl, BUFFEREVENT_SSL_CONNECTING);
}

struct bufferevent *
tls_client_wrap_dane(struct tls_client *t, struct event_base *base,
    struct bufferevent *under, const char *host, const char *alt,
    const struct tlsa_rr *rrs, size_t n)
{
	SSL *ssl = SSL_new(t->ctx);
	size_t added = 0;

	if (ssl == NULL)
		return filter(base, under, NULL, BUFFEREVENT_SSL_CONNECTING);
	/* the base domain: the name DANE-TA checks, and the SNI sent */
	if (SSL_dane_enable(ssl, host) <= 0) {
		SSL_free(ssl);
		return filter(base, under, NULL, BUFFEREVENT_SSL_CONNECTING);
	}
	if (alt && SSL_add1_host(ssl, alt) != 1) {
		SSL_free(ssl);
		return filter(base, under, NULL, BUFFEREVENT_SSL_CONNECTING);
	}
	SSL_set_tlsext_host_name(ssl, host);
	(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < n; i++)
		if (SSL_dane_tlsa_add(ssl, rrs[i].usage, rrs[i].selector,
		    rrs[i].mtype, rrs[i].data, rrs[i].len) > 0)
			added++;
	if (added == 0) {
		/* none OpenSSL can use: no certificate could ever match */
		SSL_free(ssl);
		return filter(base, under, NULL, BUFFEREVENT_SSL_CONNECTING);
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return filter(base, under, ssl, BUFFEREVENT_SSL_CONNECTING);
}

int
tls_dane_verified(struct bufferevent *bev, char *how, size_t howsz,
    char *why, size_t whysz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t dlen;

	if (ssl == NULL) {
		(void)snprintf(why, whysz, "not a TLS connection");
		return -1;
	}
	long rc = SSL_get_verify_result(ssl);
	if (rc != X509_V_OK) {
		(void)snprintf(why, whysz, "certificate: %s",
		    X509_verify_cert_error_string(rc));
		return -1;
	}
	if (SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data,
	    &dlen) < 0) {
		(void)snprintf(why, whysz, "no TLSA record matches the "
		    "certificate");
		return -1;
	}
	(void)snprintf(how, howsz, "%s %u %u %u", tlsa_usage_name(usage),
	    usage, selector, mtype);
	return 0;
}

/* SNI, and with verify the peer's chain and name (not for IP literals) */
static void
client_names(SSL *ssl, const char *host, bool verify)
{
	if (host && *host && strspn(host, "0123456789.:[]") != strlen(host)) {
		SSL_set_tlsext_host_name(ssl, host);
		if (verify)
			SSL_set1_host(ssl, host);
	} else if (host && *host && verify)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
}

struct bufferevent *
tls_client_socket(struct tls_client *t, struct event_base *base,
    const char *host, bool verify)
{
	SSL *ssl = SSL_new(t->ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	client_names(ssl, host, verify);
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
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

	/* a verifying handshake: why the certificate failed says more
	 * than "certificate verify failed" */
	if (ssl && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
	    SSL_get_verify_result(ssl) != X509_V_OK) {
		(void)snprintf(out, outsz, "certificate: %s",
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		return;
	}
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

bool
tls_handshake_failed(struct bufferevent *bev, char *why, size_t whysz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL || SSL_is_init_finished(ssl))
		return false;
	tls_error(bev, why, whysz);
	return true;
}

/* --- server ---------------------------------------------------------- */

struct tls_sni {
	char **names;             /* lower case; "*.x": one label under x */
	size_t nnames;
	SSL_CTX *ctx;
};

struct tls_server {
	SSL_CTX *ctx;             /* the default certificate's */
	struct tls_sni *sni;      /* others, by the name the client asks */
	size_t nsni;
};

static int
write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	char tmp[4096];
	FILE *fp;
	int fd, ok;

	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", path) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) :
	    PEM_write_X509(fp, cert);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		ok = 0;
	if (fclose(fp) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
tls_selfsigned_ensure(const char *cert, const char *key, const char *host,
    char *err, size_t errsz)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_EXTENSION *ext = NULL;
	char san[300];
	int rc = -1;

	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
		return 0;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	if (pkey == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(x, name);
	(void)snprintf(san, sizeof(san), "DNS:%s", host);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	if (ext == NULL || !X509_add_ext(x, ext, -1) ||
	    !X509_sign(x, pkey, EVP_sha256()))
		goto out;
	if (write_pem(key, 0600, pkey, NULL) != 0 ||
	    write_pem(cert, 0644, NULL, x) != 0) {
		(void)snprintf(err, errsz, "cannot write %s / %s: %s", cert,
		    key, strerror(errno));
		rc = -2;
		goto out;
	}
	rc = 0;
out:
	if (rc == -1)
		(void)snprintf(err, errsz, "cannot make a self-signed "
		    "certificate: %s", ERR_error_string(ERR_get_error(), NULL));
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc == 0 ? 0 : -1;
}

/* A server context with one certificate; NULL with err. */
static SSL_CTX *
server_ctx(const char *cert, const char *key, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		(void)snprintf(err, errsz, "tls: cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		(void)snprintf(err, errsz, "tls: cannot use %s and %s: %s",
		    cert, key, ERR_error_string(ERR_get_error(), NULL));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Whether the name a client asked for is one of sni's. */
static bool
sni_matches(const struct tls_sni *e, const char *name)
{
	for (size_t i = 0; i < e->nnames; i++) {
		const char *n = e->names[i];
		if (ascii_strcaseeq(n, name))
			return true;
		/* "*.example.org": exactly one label before example.org */
		const char *dot = strchr(name, '.');
		if (n[0] == '*' && n[1] == '.' && dot && dot > name &&
		    ascii_strcaseeq(n + 2, dot + 1))
			return true;
	}
	return false;
}

/* ClientHello's server name: the certificate for it, else the default. */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	const struct tls_server *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* exact names first, then wildcards */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < t->nsni; i++) {
			const struct tls_sni *e = &t->sni[i];
			bool exact = false;
			for (size_t k = 0; k < e->nnames; k++)
				exact |= ascii_strcaseeq(e->names[k], name);
			if ((pass == 0 && exact) || (pass == 1 &&
			    sni_matches(e, name))) {
				SSL_set_SSL_CTX(ssl, e->ctx);
				return SSL_TLSEXT_ERR_OK;
			}
		}
	return SSL_TLSEXT_ERR_OK;     /* the default certificate */
}

struct tls_server *
tls_server_new(const char *cert, const char *key, char *err, size_t errsz)
{
	struct tls_server *t = xcalloc(1, sizeof(*t));

	if ((t->ctx = server_ctx(cert, key, err, errsz)) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

int
tls_server_add_names(struct tls_server *t, const char *const *names,
    size_t n, const char *cert, const char *key, char *err, size_t errsz)
{
	SSL_CTX *ctx = server_ctx(cert, key, err, errsz);

	if (ctx == NULL)
		return -1;
	t->sni = xreallocarray(t->sni, t->nsni + 1, sizeof(*t->sni));
	struct tls_sni *e = &t->sni[t->nsni++];
	e->ctx = ctx;
	e->names = xcalloc(n + 1, sizeof(char *));
	e->nnames = n;
	for (size_t i = 0; i < n; i++)
		e->names[i] = xstrdup(names[i]);
	SSL_CTX_set_tlsext_servername_callback(t->ctx, on_servername);
	SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
	return 0;
}

void
tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nsni; i++) {
		for (size_t k = 0; k < t->sni[i].nnames; k++)
			free(t->sni[i].names[k]);
		free(t->sni[i].names);
		SSL_CTX_free(t->sni[i].ctx);
	}
	free(t->sni);
	ctx_free(t->ctx, t);
}

struct bufferevent *
tls_server_wrap(struct tls_server *t, struct event_base *base,
    struct bufferevent *under)
{
	return filter(base, under, SSL_new(t->ctx), BUFFEREVENT_SSL_ACCEPTING);
}

struct bufferevent *
tls_server_socket(struct tls_server *t, struct event_base *base, int fd)
{
	SSL *ssl = SSL_new(t->ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct tls_sha256 {
	EVP_MD_CTX *ctx;
};

struct tls_sha256 *
tls_sha256_new(void)
{
	struct tls_sha256 *h = xcalloc(1, sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		fatalx("sha256: cannot start");
	return h;
}

void
tls_sha256_update(struct tls_sha256 *h, const void *data, size_t len)
{
	if (!EVP_DigestUpdate(h->ctx, data, len))
		fatalx("sha256: cannot hash");
}

void
tls_sha256_final(struct tls_sha256 *h, unsigned char out[32])
{
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(h->ctx, out, &n) || n != 32)
		fatalx("sha256: cannot finish");
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* --- signature keys ---------------------------------------------------- */

struct tls_pkey {
	EVP_PKEY *pk;
	enum tls_key_type type;
};

struct tls_pkey *
tls_pkey_load(const char *path, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *pk;

	if (fp == NULL) {
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	pk = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	(void)fclose(fp);
	if (pk == NULL) {
		(void)snprintf(err, errsz, "%s: not a PEM private key", path);
		ERR_clear_error();
		return NULL;
	}
	struct tls_pkey *k = xcalloc(1, sizeof(*k));
	k->pk = pk;
	if (EVP_PKEY_is_a(pk, "RSA"))
		k->type = TLS_KEY_RSA;
	else if (EVP_PKEY_is_a(pk, "ED25519"))
		k->type = TLS_KEY_ED25519;
	else {
		(void)snprintf(err, errsz, "%s: neither an RSA nor an Ed25519 "
		    "key", path);
		tls_pkey_free(k);
		return NULL;
	}
	if (k->type == TLS_KEY_RSA && EVP_PKEY_get_bits(pk) < 1024) {
		(void)snprintf(err, errsz, "%s: an RSA key of %d bits is too "
		    "short (RFC 8301: 1024 at least, 2048 wanted)", path,
		    EVP_PKEY_get_bits(pk));
		tls_pkey_free(k);
		return NULL;
	}
	return k;
}

void
tls_pkey_free(struct tls_pkey *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pk);
	free(k);
}

enum tls_key_type
tls_pkey_type(const struct tls_pkey *k)
{
	return k->type;
}

unsigned
tls_pkey_bits(const struct tls_pkey *k)
{
	return (unsigned)EVP_PKEY_get_bits(k->pk);
}

static void
sha256_of(const void *data, size_t len, unsigned char out[32])
{
	struct tls_sha256 *h = tls_sha256_new();

	tls_sha256_update(h, data, len);
	tls_sha256_final(h, out);
}

int
tls_pkey_sign(const struct tls_pkey *k, const void *data, size_t len,
    unsigned char *sig, size_t sigsz)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[32];
	size_t n = sigsz;
	int ok;

	if (ctx == NULL)
		return -1;
	if (k->type == TLS_KEY_RSA)
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
		    k->pk) == 1 && EVP_DigestSign(ctx, sig, &n, data, len) == 1;
	else {
		sha256_of(data, len, digest);
		ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pk) == 1 &&
		    EVP_DigestSign(ctx, sig, &n, digest, sizeof(digest)) == 1;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return -1;
	}
	return (int)n;
}

int
tls_pkey_public(const struct tls_pkey *k, unsigned char *out, size_t outsz)
{
	if (k->type == TLS_KEY_ED25519) {
		size_t n = outsz;
		if (EVP_PKEY_get_raw_public_key(k->pk, out, &n) != 1) {
			ERR_clear_error();
			return -1;
		}
		return (int)n;
	}
	int n = i2d_PUBKEY(k->pk, NULL);
	if (n <= 0 || (size_t)n > outsz)
		return -1;
	unsigned char *p = out;
	return i2d_PUBKEY(k->pk, &p);
}

int
tls_pkey_generate(enum tls_key_type type, unsigned bits, const char *path,
    char *err, size_t errsz)
{
	EVP_PKEY *pk = type == TLS_KEY_RSA ?
	    EVP_RSA_gen(bits) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	int fd;
	FILE *fp;

	if (pk == NULL) {
		(void)snprintf(err, errsz, "cannot make the key");
		ERR_clear_error();
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		EVP_PKEY_free(pk);
		return -1;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		(void)close(fd);
		EVP_PKEY_free(pk);
		return -1;
	}
	int ok = PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL) == 1;
	ok &= fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	ok &= fclose(fp) == 0;
	EVP_PKEY_free(pk);
	if (!ok) {
		(void)snprintf(err, errsz, "%s: cannot write the key", path);
		(void)unlink(path);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int
tls_verify(enum tls_key_type type, const unsigned char *pub, size_t publen,
    const void *data, size_t len, const unsigned char *sig, size_t siglen,
    unsigned *bits)
{
	EVP_PKEY *pk = NULL;
	unsigned char digest[32];
	const unsigned char *p = pub;
	int rc = -1;

	*bits = 0;
	if (type == TLS_KEY_ED25519) {
		if (publen == 32)
			pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
			    pub, publen);
	} else if ((pk = d2i_PUBKEY(NULL, &p, (long)publen)) == NULL ||
	    p != pub + publen || !EVP_PKEY_is_a(pk, "RSA")) {
		EVP_PKEY_free(pk);
		p = pub;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)publen);
		if (pk && p != pub + publen) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	if (pk == NULL) {
		ERR_clear_error();
		return -1;
	}
	*bits = (unsigned)EVP_PKEY_get_bits(pk);
	if (type == TLS_KEY_RSA && *bits < 1024) {
		EVP_PKEY_free(pk);
		return -1;         /* RFC 8301 3.2: not valid */
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx) {
		int r;
		if (type == TLS_KEY_RSA)
			r = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
			    pk) == 1 ? EVP_DigestVerify(ctx, sig, siglen, data,
			    len) : -1;
		else {
			sha256_of(data, len, digest);
			r = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) ==
			    1 ? EVP_DigestVerify(ctx, sig, siglen, digest,
			    sizeof(digest)) : -1;
		}
		rc = r == 1 ? 1 : 0;
		EVP_MD_CTX_free(ctx);
	}
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rc;
}

int
tls_keyed_digest(const void *data, size_t len, unsigned char out[32])
{
	static unsigned char key[32];
	static bool have_key;
	unsigned int olen = 0;

	if (!have_key) {
		if (RAND_bytes(key, sizeof(key)) != 1)
			return -1;
		have_key = true;
	}
	if (HMAC(EVP_sha256(), key, sizeof(key), data, len, out, &olen) ==
	    NULL || olen != 32)
		return -1;
	return 0;
}
