/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: HTTP heads (where they end, what they mean) and
 * chunked bodies, fed whole and in two pieces: both ways read the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum http_status
feed(const char *p, size_t n, size_t split, struct buf *out, size_t *used)
{
	struct http_chunked c;
	size_t u1 = 0, u2 = 0;
	enum http_status st;

	http_chunked_init(&c);
	if (split > n)
		split = n;
	st = http_chunked_feed(&c, p, split, &u1, out, 4096);
	if (st == HTTP_MORE) {
		TERN_ASSERT(u1 == split);
		st = http_chunked_feed(&c, p + split, n - split, &u2, out, 4096);
	}
	*used = u1 + u2;
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct http_request r;
	const char *why;
	size_t hl;

	if (http_head_end(p, size, &hl, &why) == HTTP_OK) {
		TERN_ASSERT(hl <= size);
		if (http_parse_head(p, hl, &r) == HTTP_OK) {
			TERN_ASSERT(r.method && r.target && r.path && r.query);
			TERN_ASSERT(!(r.chunked && r.content_length >= 0));
			for (size_t i = 0; i < r.nf; i++)
				TERN_ASSERT(r.f[i].name[0] != '\0');
		}
		http_request_clear(&r);
	}
	struct buf a, b;
	size_t ua, ub;
	buf_init(&a);
	buf_init(&b);
	enum http_status sa = feed(p, size, size, &a, &ua);
	enum http_status sb = feed(p, size, size / 2, &b, &ub);
	TERN_ASSERT(sa == sb);
	if (sa == HTTP_OK) {
		TERN_ASSERT(ua == ub && a.len == b.len);
		TERN_ASSERT(a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
	}
	buf_clear(&a);
	buf_clear(&b);
	char *s = xstrndup(p, size < 256 ? size : 256), out[300];
	(void)http_path_decode(s, out, sizeof(out));
	free(s);
	return 0;
}
