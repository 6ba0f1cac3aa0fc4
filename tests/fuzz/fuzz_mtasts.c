/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: MTA-STS (mtasts.c) and TLS-RPT (tlsrpt.c) records.
 * The input as a policy file, and up to its first NUL as an _mta-sts and
 * an _smtp._tls TXT record; every pattern a parsed policy keeps must
 * match a host made from it, every rua kept is an address with an '@'
 * or an https: URI; the same text as a TLS-RPT book entry (as kept
 * across restarts) must, once read, save as it reads back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "mail/tlsrpt.h"
#include "smtp/mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mtasts_policy p;
	char why[100], id[MTASTS_ID_MAX + 1];

	if (mtasts_policy_parse((const char *)data, size, &p, why,
	    sizeof(why)) == 0) {
		TERN_ASSERT(p.nmx <= MTASTS_MX_MAX);
		TERN_ASSERT(p.max_age <= MTASTS_MAX_AGE);
		/* the cache line reads back as the same policy */
		static struct mtasts_policy q;
		char line[64 + (MTASTS_NAME_MAX + 2) * MTASTS_MX_MAX];
		long long exp;
		TERN_ASSERT(mtasts_cache_format(&p, "x1", 7, line,
		    sizeof(line)) == 0);
		TERN_ASSERT(mtasts_cache_parse(line, &q, id, &exp) == 0);
		TERN_ASSERT(q.mode == p.mode && q.max_age == p.max_age &&
		    q.nmx == p.nmx && exp == 7 && strcmp(id, "x1") == 0);
		for (size_t i = 0; i < p.nmx; i++)
			TERN_ASSERT(strcmp(q.mx[i], p.mx[i]) == 0);
		for (size_t i = 0; i < p.nmx; i++) {
			char host[MTASTS_NAME_MAX + 8];
			const char *m = p.mx[i];
			(void)snprintf(host, sizeof(host), "%s%s",
			    m[0] == '*' ? "x" : "", m[0] == '*' ? m + 1 : m);
			if (strlen(host) <= MTASTS_NAME_MAX)
				TERN_ASSERT(mtasts_mx_match(&p, host));
		}
	} else
		TERN_ASSERT(why[0] != '\0');
	if (size < 600) {
		char txt[601];
		memcpy(txt, data, size);
		txt[size] = '\0';
		static struct mtasts_policy c;
		long long e;
		(void)mtasts_cache_parse(txt, &c, id, &e);
		if (mtasts_txt_parse(txt, id) == 0)
			TERN_ASSERT(strlen(id) >= 1 && strlen(id) <=
			    MTASTS_ID_MAX);
		char rua[TLSRPT_RUA_MAX][TLSRPT_ADDR_MAX + 1];
		size_t n;
		if (tlsrpt_txt_parse(txt, rua, &n) == 0) {
			TERN_ASSERT(n <= TLSRPT_RUA_MAX);
			for (size_t i = 0; i < n; i++)
				TERN_ASSERT(ascii_strncaseeq(rua[i],
				    "https://", 8) ||
				    strchr(rua[i], '@') != NULL);
		}
		/* a TLS-RPT book line: kept, it saves as it reads back */
		struct tlsrpt_book *b = tlsrpt_book_new(0);
		if (tlsrpt_entry_restore(b, txt) == 0) {
			char *line = tlsrpt_entry_save(b, 0);
			struct tlsrpt_book *b2 = tlsrpt_book_new(0);
			TERN_ASSERT(line && tlsrpt_entry_restore(b2, line) == 0);
			char *again = tlsrpt_entry_save(b2, 0);
			TERN_ASSERT(again && strcmp(line, again) == 0);
			TERN_ASSERT(tlsrpt_entry_restore(b, line) != 0);
			free(line);
			free(again);
			tlsrpt_book_free(b2);
		}
		tlsrpt_book_free(b);
	}
	return 0;
}
