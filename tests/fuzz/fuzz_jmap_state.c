/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: the input read as an Email and a Mailbox state
 * string; what is accepted must be written back byte for byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "http/jmap_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	for (int k = 0; k < 2; k++) {
		char kind = k ? 'm' : 'e';
		struct jstate_ent *e;
		size_t n;
		if (jstate_parse(kind, s, &e, &n) != 0)
			continue;
		struct buf out;
		buf_init(&out);
		jstate_format(kind, e, n, &out);
		TERN_ASSERT(out.len == strlen(s) && memcmp(out.data, s,
		    out.len) == 0);
		for (size_t i = 0; i < n; i++)
			TERN_ASSERT(jstate_find(e, n, e[i].id) == &e[i]);
		buf_clear(&out);
		free(e);
	}
	free(s);
	return 0;
}
