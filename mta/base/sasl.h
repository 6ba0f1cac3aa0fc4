/* SPDX-License-Identifier: ISC */
/*
 * sasl.h - layer 1 (pure): the SASL mechanisms AUTH offers (RFC 4954):
 * base64 (RFC 4648, strict), PLAIN (RFC 4616: authzid NUL authcid NUL
 * password) and the LOGIN fields. No I/O; fuzzed.
 */
#ifndef TERN_SASL_H
#define TERN_SASL_H

#include <stddef.h>

#define SASL_FIELD_MAX 256

/* Decodes base64 into out (NUL-terminated); -1 on bad input or overflow. */
int sasl_b64_decode(const char *in, size_t len, char *out, size_t outsz,
    size_t *outlen);
/* Encodes into out; -1 if it does not fit. */
int sasl_b64_encode(const char *in, size_t len, char *out, size_t outsz);

/*
 * PLAIN: base64 of "authzid\0authcid\0passwd". The authzid must be empty
 * or equal to the authcid (no acting for others). 0, or -1.
 */
int sasl_plain(const char *b64, size_t len, char user[SASL_FIELD_MAX],
    char pass[SASL_FIELD_MAX]);

/* LOGIN: one base64 field (user name or password), no NUL inside. */
int sasl_login_field(const char *b64, size_t len, char out[SASL_FIELD_MAX]);

#endif
