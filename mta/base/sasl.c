/* SPDX-License-Identifier: ISC */
/*
 * sasl.c - layer 1 (pure). Strict base64: the standard alphabet, padding
 * only at the end, no white space, length a multiple of four. Fields are
 * bounded (SASL_FIELD_MAX) and may not contain control characters other
 * than the separators PLAIN defines.
 */
#include "base/sasl.h"

#include <string.h>

#include "base/util.h"

int
sasl_b64_decode(const char *in, size_t len, char *out, size_t outsz,
    size_t *outlen)
{
	size_t n = 0;

	if (len % 4 != 0 || outsz == 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64_digit((unsigned char)in[i + k])) < 0)
				return -1;
		}
		unsigned triple = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
		    (unsigned)v[2] << 6 | (unsigned)v[3];
		int bytes = 3 - pad;
		if (n + (size_t)bytes >= outsz)
			return -1;
		out[n++] = (char)(triple >> 16);
		if (bytes > 1)
			out[n++] = (char)(triple >> 8 & 0xff);
		if (bytes > 2)
			out[n++] = (char)(triple & 0xff);
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

int
sasl_b64_encode(const char *in, size_t len, char *out, size_t outsz)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = 0;

	if ((len + 2) / 3 * 4 + 1 > outsz)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned a = (unsigned char)in[i];
		unsigned b = i + 1 < len ? (unsigned char)in[i + 1] : 0;
		unsigned c = i + 2 < len ? (unsigned char)in[i + 2] : 0;
		unsigned t = a << 16 | b << 8 | c;
		out[n++] = tab[t >> 18];
		out[n++] = tab[t >> 12 & 63];
		out[n++] = i + 1 < len ? tab[t >> 6 & 63] : '=';
		out[n++] = i + 2 < len ? tab[t & 63] : '=';
	}
	out[n] = '\0';
	return 0;
}

static int
field_ok(const char *s, size_t n)
{
	if (n == 0 || n >= SASL_FIELD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return 0;
	return 1;
}

int
sasl_plain(const char *b64, size_t len, char user[SASL_FIELD_MAX],
    char pass[SASL_FIELD_MAX])
{
	char buf[3 * SASL_FIELD_MAX + 4];
	size_t n;

	if (sasl_b64_decode(b64, len, buf, sizeof(buf), &n) != 0)
		return -1;
	const char *authz = buf;
	const char *nul1 = memchr(buf, '\0', n);
	if (nul1 == NULL)
		return -1;
	const char *authc = nul1 + 1;
	const char *nul2 = memchr(authc, '\0', n - (size_t)(authc - buf));
	if (nul2 == NULL)
		return -1;
	const char *pw = nul2 + 1;
	size_t azl = (size_t)(nul1 - authz), acl = (size_t)(nul2 - authc);
	size_t pwl = n - (size_t)(pw - buf);
	if (memchr(pw, '\0', pwl) != NULL || !field_ok(authc, acl) ||
	    !field_ok(pw, pwl))
		return -1;
	if (azl > 0 && (azl != acl || memcmp(authz, authc, acl) != 0))
		return -1;
	memcpy(user, authc, acl);
	user[acl] = '\0';
	memcpy(pass, pw, pwl);
	pass[pwl] = '\0';
	return 0;
}

int
sasl_login_field(const char *b64, size_t len, char out[SASL_FIELD_MAX])
{
	char buf[SASL_FIELD_MAX + 4];
	size_t n;

	if (sasl_b64_decode(b64, len, buf, sizeof(buf), &n) != 0 ||
	    memchr(buf, '\0', n) != NULL || !field_ok(buf, n))
		return -1;
	memcpy(out, buf, n + 1);
	return 0;
}
