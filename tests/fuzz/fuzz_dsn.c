/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: DSN parameters (RFC 3461). The input is one
 * parameter value, tried as NOTIFY, RET, ENVID, ORCPT and xtext; what
 * decodes must encode back to the same octets, and a mask must format
 * to text that parses to it again.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[DSN_ORCPT_MAX + 2], d[DSN_ORCPT_MAX + 2], d2[DSN_ORCPT_MAX + 2];
	char t[40];
	unsigned mask, again;
	enum dsn_ret ret;
	size_t n, n2;
	struct buf b;

	if (size > DSN_ORCPT_MAX + 1)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dsn_notify_parse(s, &mask) == 0) {
		TERN_ASSERT(mask != 0);
		dsn_notify_format(mask, t, sizeof(t));
		TERN_ASSERT(dsn_notify_parse(t, &again) == 0 && again == mask);
	}
	(void)dsn_ret_parse(s, &ret);
	(void)dsn_envid_valid(s);
	if (dsn_orcpt_decode(s, d, sizeof(d)) == 0)
		TERN_ASSERT(dsn_orcpt_valid(s) && strchr(d, ';') != NULL);
	if (xtext_decode((const char *)data, size, d, sizeof(d), &n) == 0) {
		TERN_ASSERT(n <= size);
		buf_init(&b);
		xtext_encode(d, n, &b);
		TERN_ASSERT(xtext_decode(b.data, b.len, d2, sizeof(d2),
		    &n2) == 0 && n2 == n && memcmp(d, d2, n) == 0);
		buf_clear(&b);
	}
	return 0;
}
