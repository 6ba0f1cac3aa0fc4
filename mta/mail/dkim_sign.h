/* SPDX-License-Identifier: ISC */
/*
 * dkim_sign.h - layer 2: DKIM signing with the configured keys (the
 * texts from dkim.h, the keys and signatures from base/tls.h). Keys are
 * read when a configuration is loaded; signing is pure computation and
 * may run on any thread.
 */
#ifndef TERN_DKIM_SIGN_H
#define TERN_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct config;
struct dkim_signer;

/* The keys of cfg->dkim, read (NULL if it names none); NULL with err if
 * one cannot be read. */
struct dkim_signer *dkim_signer_new(const struct config *cfg, char *err,
    size_t errsz);
void dkim_signer_free(struct dkim_signer *ds);

/*
 * Signs msg[start..) with every key of its From: domain, else of the
 * nearest parent domain with keys (relaxed alignment, RFC 7489 3.1.1),
 * inserting the DKIM-Signature fields at start. The number of
 * signatures made: 0 when no key fits (or there is no From:), -1 when
 * a key failed to sign (why says so; the message is left unsigned).
 * A message that is 8-bit should be made 7-bit first (a later downgrade
 * would break the signature): dkim_sign_prepare() does that.
 */
int dkim_signer_sign(const struct dkim_signer *ds, struct buf *msg,
    size_t start, int64_t now, char *why, size_t whysz);

/* Whether a key would sign msg[start..) (its From: domain has one). */
int dkim_signer_wants(const struct dkim_signer *ds, const char *msg,
    size_t len);

/*
 * Makes msg[start..) 7-bit (quoted-printable parts, message_downgrade)
 * if it is 8-bit and a key would sign it: true if it changed (the
 * envelope's BODY is 7BIT then).
 */
int dkim_sign_prepare(const struct dkim_signer *ds, struct buf *msg,
    size_t start);

/*
 * Submitted mail (ports 587/465, JMAP, tern-sendmail): made 7-bit when
 * a key would sign it (*made7 then: its BODY is 7BIT), then signed.
 * What dkim_signer_sign() returns.
 */
int dkim_sign_submitted(const struct dkim_signer *ds, struct buf *msg,
    size_t start, int64_t now, bool *made7, char *why, size_t whysz);

#endif
