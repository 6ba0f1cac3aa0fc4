/* SPDX-License-Identifier: ISC */
/* libFuzzer harness: ternmail's config file parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/util.h"
#include "tmconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tmconfig c;
	char why[200];
	int line;

	memset(&c, 0, sizeof(c));
	line = tmconfig_parse(&c, (const char *)data, size, why, sizeof(why));
	TERN_ASSERT(line >= 0);
	if (line > 0)
		TERN_ASSERT(why[0] != '\0');
	for (int k = 0; k < TM_NKEYS; k++)
		if (c.v[k] != NULL)
			TERN_ASSERT(strchr(c.v[k], '\n') == NULL);
	tmconfig_free(&c);
	return 0;
}
