/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: IMAP literal framing, command parsing, sequence sets
 * and modified UTF-7. Decoded UTF-7 encodes back to the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "imap/imap_parse.h"
#include "imap/imap_utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(const struct imap_arg *a, size_t n, size_t *count)
{
	for (size_t i = 0; i < n; i++) {
		(*count)++;
		if (a[i].type == IMAP_ARG_ATOM || a[i].type == IMAP_ARG_STRING)
			TERN_ASSERT(a[i].s != NULL && a[i].s[a[i].len] == '\0');
		if (a[i].type == IMAP_ARG_LIST)
			walk(a[i].items, a[i].nitems, count);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct imap_cmd cmd;
	const char *why;
	uint64_t n;
	bool ns;
	size_t count = 0;

	(void)imap_line_literal(p, size, &n, &ns);
	if (imap_parse_command(p, size, &cmd, &why) == IMAP_PARSE_OK) {
		walk(cmd.args, cmd.nargs, &count);
		TERN_ASSERT(count == cmd.total);
		TERN_ASSERT(cmd.tag[0] != '\0' && cmd.name[0] != '\0');
	}
	imap_cmd_clear(&cmd);
	char *s = xstrndup(p, size < 512 ? size : 512);
	struct imap_seqset set;
	if (imap_seqset_parse(s, 1000, &set) == 0) {
		for (size_t i = 0; i < set.n; i++)
			TERN_ASSERT(set.r[i].lo <= set.r[i].hi);
		imap_seqset_clear(&set);
	}
	struct buf u8, u7;
	buf_init(&u8);
	buf_init(&u7);
	if (imap_utf7_to_utf8(s, &u8) == 0) {
		TERN_ASSERT(imap_utf8_to_utf7(u8.data ? u8.data : "", &u7) == 0);
		TERN_ASSERT(strcmp(u7.data ? u7.data : "", s) == 0);
	}
	buf_reset(&u7);
	(void)imap_utf8_to_utf7(s, &u7);
	buf_clear(&u8);
	buf_clear(&u7);
	free(s);
	return 0;
}
