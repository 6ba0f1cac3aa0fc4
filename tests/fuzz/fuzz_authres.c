/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: the input as a message whose Authentication-Results
 * fields of "mx.test" are taken out: what is left has none of them, and
 * taking out again changes nothing; and as a field value whose results
 * of one method are counted.
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
	char res[8];
	if (authres_method((const char *)data, size, "arc", res, sizeof(res)))
		TERN_ASSERT(strlen(res) < sizeof(res));
	const char *v;
	size_t vl;
	if (authres_find((const char *)data, size, "mx.test", &v, &vl))
		TERN_ASSERT(v >= (const char *)data && v + vl <=
		    (const char *)data + size);
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
