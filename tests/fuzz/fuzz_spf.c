/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: the input as an SPF record, whose domain-specs and
 * modifiers are then expanded, and as an IP address.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	struct spf_record r;
	const char *why;
	unsigned char ip[16];
	bool v6;
	static const unsigned char ip4[4] = { 192, 0, 2, 3 };
	struct spf_macros m = { "a-b@c.d.example", "c.d.example", ip4, false,
		"helo.example", "mx.example", 1, "p.c.d.example" };

	memcpy(s, data, size);
	s[size] = '\0';
	(void)ip_parse(s, size, ip, &v6);
	if (spf_record_parse(s, &r, &why) == 1) {
		TERN_ASSERT(r.n <= SPF_TERMS_MAX);
		for (size_t i = 0; i < r.n; i++) {
			struct buf out;
			buf_init(&out);
			if (r.t[i].domain && spf_expand(r.t[i].domain, &m, false,
			    &out) == 0)
				TERN_ASSERT(out.len <= 253 ||
				    memchr(out.data, '.', out.len) == NULL);
			buf_clear(&out);
		}
		struct buf e;
		buf_init(&e);
		if (r.exp)
			(void)spf_expand(r.exp, &m, true, &e);
		buf_clear(&e);
		spf_record_clear(&r);
	}
	free(s);
	return 0;
}
