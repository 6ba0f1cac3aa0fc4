/* SPDX-License-Identifier: ISC */
/*
 * intl.c - layer 0 (pure): UTF-8, IDNA and NFC (intl.h).
 */
#include "base/intl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <uninorm.h>

#include "base/util.h"

bool
intl_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			if (c < 32 || c == 127)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += n + 1;
	}
	return true;
}

bool
intl_is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* true if a label of d starts with "xn--" */
static bool
has_a_label(const char *d)
{
	for (const char *p = d; *p; ) {
		if (ascii_strncaseeq(p, "xn--", 4))
			return true;
		p = strchr(p, '.');
		if (p == NULL)
			break;
		p++;
	}
	return false;
}

/* libidn2's answer (rc, res) into out; res freed */
static int
take(int rc, char *res, char *out, size_t outsz)
{
	if (rc != IDN2_OK)
		return -1;
	rc = str_copy(out, outsz, res);
	idn2_free(res);
	return rc;
}

int
intl_domain_ascii(const char *domain, char *out, size_t outsz)
{
	size_t len = strlen(domain);
	char *res = NULL;

	if (intl_is_ascii(domain, len)) {
		/* already the lookup form, A-labels and all (lower-cased) */
		if (len + 1 > outsz)
			return -1;
		for (size_t i = 0; i <= len; i++)
			out[i] = (char)ascii_tolower((unsigned char)domain[i]);
		return 0;
	}
	if (!intl_utf8_valid(domain, len))
		return -1;
	int rc = idn2_lookup_u8((const uint8_t *)domain, (uint8_t **)&res,
	    IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	return take(rc, res, out, outsz);
}

int
intl_domain_unicode(const char *domain, char *out, size_t outsz)
{
	char ascii[256], *res = NULL;

	if (intl_domain_ascii(domain, ascii, sizeof(ascii)) != 0)
		return -1;
	if (!has_a_label(ascii))
		return str_copy(out, outsz, ascii);
	int rc = idn2_to_unicode_8z8z(ascii, &res, 0);
	return take(rc, res, out, outsz);
}

int
intl_nfc(const char *s, char *out, size_t outsz)
{
	size_t len = strlen(s), n = outsz;

	if (outsz == 0 || !intl_utf8_valid(s, len))
		return -1;
	if (intl_is_ascii(s, len))
		return str_copy(out, outsz, s);
	uint8_t *r = u8_normalize(UNINORM_NFC, (const uint8_t *)s, len,
	    (uint8_t *)out, &n);
	if (r == NULL)
		return -1;
	if (r != (uint8_t *)out || n >= outsz) {
		if (r != (uint8_t *)out)
			free(r);
		return -1;
	}
	out[n] = '\0';
	return 0;
}
