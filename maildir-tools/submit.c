/* SPDX-License-Identifier: ISC */
/*
 * submit.c - see submit.h. The only OpenSSL user in maildir-tools. The
 * reply reader and the wire form (CRLF, dot-stuffing) are ternd's own
 * (smtp_reply.c, message.c); a reply is bounded, every read and write
 * has a timeout.
 */
#include "submit.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sasl.h"
#include "base/util.h"
#include "mail/message.h"
#include "smtp/smtp_reply.h"

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char in[4096];
	size_t inlen;
	struct buf *err;
};

static int
conn_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, (int)(n > 65536 ? 65536 :
			    n));
			w = r > 0 ? r : -1;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
		}
		if (w <= 0) {
			buf_printf(c->err, "write to the server failed: %s",
			    c->ssl ? "TLS error" : strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t
conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, c->in + c->inlen,
		    (int)(sizeof(c->in) - c->inlen));
		n = r > 0 ? r : -1;
	} else {
		do
			n = recv(c->fd, c->in + c->inlen,
			    sizeof(c->in) - c->inlen, 0);
		while (n < 0 && errno == EINTR);
	}
	if (n <= 0) {
		buf_printf(c->err, "%s", n == 0 ? "the server closed the "
		    "connection" : errno == EAGAIN ? "the server did not answer "
		    "in time" : "read from the server failed");
		return -1;
	}
	c->inlen += (size_t)n;
	return n;
}

/* Reads one whole reply; its code, or -1. */
static int
read_reply(struct conn *c, struct smtp_reply_reader *r)
{
	smtp_reply_reader_init(r);
	for (;;) {
		char *nl = memchr(c->in, '\n', c->inlen);
		size_t len;
		enum smtp_reply_status st;

		if (nl == NULL) {
			if (c->inlen == sizeof(c->in)) {
				buf_printf(c->err, "reply line too long");
				return -1;
			}
			if (conn_fill(c) < 0)
				return -1;
			continue;
		}
		len = (size_t)(nl - c->in);
		if (len > 0 && c->in[len - 1] == '\r')
			len--;
		st = smtp_reply_reader_feed(r, c->in, len);
		c->inlen -= (size_t)(nl + 1 - c->in);
		memmove(c->in, nl + 1, c->inlen);
		if (st == SMTP_REPLY_BAD) {
			buf_printf(c->err, "the server sent a malformed reply");
			return -1;
		}
		if (st == SMTP_REPLY_DONE)
			return r->code;
	}
}

/* Sends a command, reads the reply; its code or -1. */
static int
command(struct conn *c, struct smtp_reply_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
command(struct conn *c, struct smtp_reply_reader *r, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		buf_printf(c->err, "command too long");
		return -1;
	}
	memcpy(line + n, "\r\n", 2);
	if (conn_write(c, line, (size_t)n + 2) != 0)
		return -1;
	return read_reply(c, r);
}

static int
tls_start(struct conn *c, const struct submit_server *s)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	if (s->verify) {
		SSL_CTX_set_default_verify_paths(c->ctx);
		if (s->cafile != NULL && s->cafile[0] != '\0' &&
		    SSL_CTX_load_verify_locations(c->ctx, s->cafile,
		    NULL) != 1) {
			buf_printf(c->err, "cannot load CA file %s", s->cafile);
			return -1;
		}
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	}
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL)
		goto fail;
	SSL_set_tlsext_host_name(c->ssl, s->host);
	if (s->verify)
		SSL_set1_host(c->ssl, s->host);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1) {
		long v = SSL_get_verify_result(c->ssl);
		buf_printf(c->err, "TLS handshake with %s failed%s%s", s->host,
		    v != X509_V_OK ? ": " : "",
		    v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	return 0;
fail:
	buf_printf(c->err, "TLS set-up failed");
	return -1;
}

static int
dial(const struct submit_server *s, struct buf *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { s->timeout > 0 ? s->timeout : 60, 0 };
	int fd = -1, rc;

	rc = getaddrinfo(s->host, s->port, &hints, &res);
	if (rc != 0) {
		buf_printf(err, "%s: %s", s->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		buf_printf(err, "cannot connect to %s port %s: %s", s->host,
		    s->port, strerror(errno));
	return fd;
}

static int
fail_code(int code)
{
	return code >= 500 && code < 600 ? -2 : -1;
}

int
submit_smtp(const struct submit_server *s, const char *from,
    char *const *rcpts, size_t nrcpts, const char *msg, size_t len,
    struct buf *err)
{
	struct conn c = { .fd = -1, .err = err };
	struct smtp_reply_reader r;
	struct buf wire;
	int code, rc = -1;

	buf_init(&wire);
	if ((c.fd = dial(s, err)) < 0)
		return -1;
	if (s->tls == SUBMIT_IMPLICIT && tls_start(&c, s) != 0)
		goto out;
	if ((code = read_reply(&c, &r)) != 220) {
		if (code > 0)
			buf_printf(err, "greeting: %s", r.text);
		rc = code > 0 ? fail_code(code) : -1;
		goto out;
	}
	if ((code = command(&c, &r, "EHLO %s", s->helo)) != 250)
		goto refused;
	if (s->tls == SUBMIT_STARTTLS) {
		if (!smtp_reply_has_keyword(&r, "STARTTLS", NULL)) {
			buf_printf(err, "%s does not offer STARTTLS; not sending "
			    "in the clear (set smtp_tls = none to allow it)",
			    s->host);
			goto out;
		}
		if ((code = command(&c, &r, "STARTTLS")) != 220)
			goto refused;
		if (c.inlen != 0) {
			/* STARTTLS injection: nothing may follow in the clear */
			buf_printf(err, "the server sent data after STARTTLS");
			goto out;
		}
		if (tls_start(&c, s) != 0)
			goto out;
		if ((code = command(&c, &r, "EHLO %s", s->helo)) != 250)
			goto refused;
	}
	if (s->user != NULL && s->user[0] != '\0') {
		char plain[1024], b64[1400];
		size_t ul = strlen(s->user), pl = strlen(s->password ?
		    s->password : "");
		if (ul + pl + 2 > sizeof(plain)) {
			buf_printf(err, "user name or password too long");
			goto out;
		}
		plain[0] = '\0';
		memcpy(plain + 1, s->user, ul);
		plain[1 + ul] = '\0';
		memcpy(plain + 2 + ul, s->password ? s->password : "", pl);
		if (sasl_b64_encode(plain, ul + pl + 2, b64, sizeof(b64)) < 0) {
			buf_printf(err, "cannot encode credentials");
			goto out;
		}
		explicit_bzero(plain, sizeof(plain));
		code = command(&c, &r, "AUTH PLAIN %s", b64);
		explicit_bzero(b64, sizeof(b64));
		if (code != 235)
			goto refused;
	}
	if ((code = command(&c, &r, "MAIL FROM:<%s>", from)) != 250)
		goto refused;
	for (size_t i = 0; i < nrcpts; i++) {
		code = command(&c, &r, "RCPT TO:<%s>", rcpts[i]);
		if (code != 250 && code != 251) {
			if (code > 0) {
				buf_printf(err, "%s refused: %s; nothing was "
				    "sent", rcpts[i], r.text);
				rc = fail_code(code);
				command(&c, &r, "RSET");
				command(&c, &r, "QUIT");
			}
			goto out;
		}
	}
	if ((code = command(&c, &r, "DATA")) != 354)
		goto refused;
	message_to_wire(msg, len, &wire);
	if (conn_write(&c, wire.data, wire.len) != 0)
		goto out;
	if ((code = read_reply(&c, &r)) != 250)
		goto refused;
	command(&c, &r, "QUIT");
	rc = 0;
	goto out;
refused:
	if (code > 0) {
		buf_printf(err, "%s", r.text);
		rc = fail_code(code);
	}
out:
	buf_clear(&wire);
	if (c.ssl != NULL) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	SSL_CTX_free(c.ctx);
	if (c.fd >= 0)
		close(c.fd);
	return rc;
}

int
submit_sendmail(const char *prog, const char *from,
    char *const *rcpts, size_t nrcpts, const char *msg, size_t len,
    struct buf *err)
{
	char **argv = xcalloc(nrcpts + 6, sizeof(*argv));
	int p[2], status;
	pid_t pid;
	size_t k = 0;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;

	argv[k++] = (char *)(uintptr_t)prog;
	argv[k++] = "-i";
	argv[k++] = "-f";
	argv[k++] = (char *)(uintptr_t)from;
	argv[k++] = "--";
	for (size_t i = 0; i < nrcpts; i++)
		argv[k++] = rcpts[i];
	if (pipe(p) != 0) {
		buf_printf(err, "pipe: %s", strerror(errno));
		free(argv);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		buf_printf(err, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		free(argv);
		return -1;
	}
	if (pid == 0) {
		dup2(p[0], 0);
		close(p[0]);
		close(p[1]);
		execvp(prog, argv);
		fprintf(stderr, "ternmail: cannot run %s: %s\n", prog,
		    strerror(errno));
		_exit(75);
	}
	free(argv);
	close(p[0]);
	sigaction(SIGPIPE, &ign, &old);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(p[1], msg + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(p[1]);
	sigaction(SIGPIPE, &old, NULL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	buf_printf(err, "%s failed (exit status %d)", prog,
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return -1;
}
