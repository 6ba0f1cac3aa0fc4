/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: the input as a message whose Authentication-Results
 * fields of "mx.test" are taken out: what is left has none of them, and
 * taking out again changes nothing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf m;
	char id[256];

	(void)authres_id((const char *)data, size, id, sizeof(id));
	buf_init(&m);
	buf_append(&m, data, size);
	size_t before = m.len;
	(void)authres_strip(&m, 0, "mx.test");
	TERN_ASSERT(m.len <= before);
	size_t after = m.len;
	TERN_ASSERT(authres_strip(&m, 0, "mx.test") == 0);
	TERN_ASSERT(m.len == after);
	buf_clear(&m);
	return 0;
}
