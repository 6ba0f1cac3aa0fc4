/* SPDX-License-Identifier: ISC */
/*
 * submit.h - sending a finished message: over SMTP submission (RFC 6409:
 * STARTTLS or implicit TLS, AUTH PLAIN) with a blocking client, or by
 * handing it to tern-sendmail. All recipients are accepted or nothing is
 * sent: a refused recipient ends the transaction before DATA.
 */
#ifndef TERNMAIL_SUBMIT_H
#define TERNMAIL_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

enum submit_tls { SUBMIT_STARTTLS, SUBMIT_IMPLICIT, SUBMIT_NONE };

struct submit_server {
	const char *host;
	const char *port;
	enum submit_tls tls;
	bool verify;           /* check the certificate and its name */
	const char *cafile;    /* extra trust anchors, or NULL */
	const char *user;      /* AUTH when not NULL */
	const char *password;
	const char *helo;      /* our name for EHLO */
	int timeout;           /* seconds per reply */
};

/* 0 sent; -1 with why in err (a temporary failure: try again later);
 * -2 refused for good (a 5xx). */
int submit_smtp(const struct submit_server *s, const char *from,
    char *const *rcpts, size_t nrcpts, const char *msg, size_t len,
    struct buf *err);

/* Runs prog (tern-sendmail) with -i -f from -- rcpts, message on stdin.
 * 0 when it exits 0; -1 otherwise with why in err. */
int submit_sendmail(const char *prog, const char *from,
    char *const *rcpts, size_t nrcpts, const char *msg, size_t len,
    struct buf *err);

#endif
