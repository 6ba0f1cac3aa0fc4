/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: DATA bytes through smtp_data_feed(), whole and in
 * random splits; both must agree, the output may never contain CR or NUL,
 * and data may only end right after CRLF.CRLF. (Output is compared only
 * for clean transfers: after an error it is discarded by design.) The
 * same bytes as BDAT chunks: all consumed, never an end, whole and in
 * pieces alike, and a clean result ends in LF.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data a, b;
	struct buf oa, ob;
	bool da = false, db = false;
	size_t ua, ub = 0, step;

	if (size == 0)
		return 0;
	step = (size_t)data[0] % 7 + 1;
	buf_init(&oa);
	buf_init(&ob);
	smtp_data_init(&a, &oa, 1 << 20);
	smtp_data_init(&b, &ob, 1 << 20);
	/* header limits from the first octet: both runs must agree on them */
	if (data[0] & 0x80) {
		smtp_data_set_header_limits(&a, 200, 5);
		smtp_data_set_header_limits(&b, 200, 5);
	}
	ua = smtp_data_feed(&a, (const char *)data, size, &da);
	while (ub < size && !db) {
		size_t n = size - ub < step ? size - ub : step;
		ub += smtp_data_feed(&b, (const char *)data + ub, n, &db);
	}
	TERN_ASSERT(da == db && ua == ub && a.errors == b.errors);
	TERN_ASSERT(a.fields == b.fields && a.header_size == b.header_size);
	TERN_ASSERT(a.header_size <= a.size);
	/* Output after an error is discarded by design; compare clean runs. */
	if (a.errors == 0)
		TERN_ASSERT(oa.len == ob.len && (oa.len == 0 ||
		    memcmp(oa.data, ob.data, oa.len) == 0));
	if (da) {
		TERN_ASSERT(ua >= 3 && memcmp(data + ua - 3, ".\r\n", 3) == 0);
		TERN_ASSERT(ua == 3 || (ua >= 5 &&
		    memcmp(data + ua - 5, "\r\n", 2) == 0));
	}
	if (a.errors == 0)
		for (size_t i = 0; i < oa.len; i++)
			TERN_ASSERT(oa.data[i] != '\r' && oa.data[i] != '\0');
	/* as BDAT chunks */
	buf_reset(&oa);
	buf_reset(&ob);
	smtp_data_init_chunks(&a, &oa, 1 << 20);
	smtp_data_init_chunks(&b, &ob, 1 << 20);
	TERN_ASSERT(smtp_data_feed(&a, (const char *)data, size, &da) == size);
	TERN_ASSERT(!da);
	for (ub = 0; ub < size; ub += step) {
		size_t n = size - ub < step ? size - ub : step;
		TERN_ASSERT(smtp_data_feed(&b, (const char *)data + ub, n,
		    &db) == n && !db);
	}
	smtp_data_chunks_end(&a);
	smtp_data_chunks_end(&b);
	TERN_ASSERT(a.errors == b.errors && a.size == b.size);
	if (a.errors == 0) {
		TERN_ASSERT(oa.len == ob.len && (oa.len == 0 ||
		    memcmp(oa.data, ob.data, oa.len) == 0));
		TERN_ASSERT(oa.len == 0 || oa.data[oa.len - 1] == '\n');
		for (size_t i = 0; i < oa.len; i++)
			TERN_ASSERT(oa.data[i] != '\r' && oa.data[i] != '\0');
	}
	buf_clear(&oa);
	buf_clear(&ob);
	return 0;
}
