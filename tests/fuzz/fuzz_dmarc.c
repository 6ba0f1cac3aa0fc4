/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: the input as a DMARC record, as a Public Suffix
 * List, and its first line as a name whose organizational domain is a
 * suffix of it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1), out[256];
	struct dmarc_record r;

	memcpy(s, data, size);
	s[size] = '\0';
	if (dmarc_record_parse(s, &r) == 1)
		TERN_ASSERT(r.pct <= 100);
	struct psl *p = psl_parse(s, size);
	char *nl = strchr(s, '\n');
	if (nl)
		*nl = '\0';
	if (strlen(s) < 250) {
		ascii_lower(s);
		psl_org_domain(p, s, out, sizeof(out));
		size_t ol = strlen(out), sl = strlen(s);
		TERN_ASSERT(ol <= sl && strcmp(s + sl - ol, out) == 0);
	}
	psl_free(p);
	free(s);
	return 0;
}
