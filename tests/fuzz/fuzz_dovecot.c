/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: dovecot-uidlist, dovecot-keywords and subscriptions
 * text. A parsed uidlist serializes to text that parses to the same
 * records (uids ascending, names without '/', ':' or a leading dot).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "store/dovecot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
count(void *arg, const char *name)
{
	size_t *n = arg;

	TERN_ASSERT(name[0] != '/');
	(*n)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct uidlist a, b;
	struct keywords kw;
	struct buf out;
	char err[100];
	size_t n = 0;

	uidlist_init(&a);
	uidlist_init(&b);
	buf_init(&out);
	if (uidlist_parse(text, size, &a, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < a.n; i++) {
			TERN_ASSERT(a.recs[i].uid > 0);
			TERN_ASSERT(i == 0 || a.recs[i].uid > a.recs[i - 1].uid);
			TERN_ASSERT(strchr(a.recs[i].name, '/') == NULL);
			TERN_ASSERT(strchr(a.recs[i].name, ':') == NULL);
		}
		TERN_ASSERT(a.n == 0 ||
		    uidlist_next_uid(&a) > a.recs[a.n - 1].uid);
		uidlist_serialize(&a, &out);
		if (uidlist_parse(out.data, out.len, &b, err, sizeof(err)) == 0 &&
		    memchr(text, '\r', size) == NULL &&
		    memchr(text, '\0', size) == NULL)
			TERN_ASSERT(b.n <= a.n);
	}
	keywords_init(&kw);
	keywords_parse(text, size, &kw);
	for (int i = 0; i < KEYWORDS_MAX; i++)
		TERN_ASSERT(kw.names[i] == NULL || keywords_valid(kw.names[i]));
	buf_reset(&out);
	keywords_serialize(&kw, &out);
	keywords_clear(&kw);
	subscriptions_parse(text, size, count, &n);
	uidlist_clear(&a);
	uidlist_clear(&b);
	buf_clear(&out);
	return 0;
}
