/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for http/http_parse.c: where a head ends, what a head
 * means, and the smuggling cases refused (one named row each), chunked
 * bodies fed whole and an octet at a time, %-decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_parse.h"

static enum http_status
parse(const char *head, struct http_request *r)
{
	size_t hl;
	const char *why;
	enum http_status st = http_head_end(head, strlen(head), &hl, &why);

	if (st != HTTP_OK) {
		memset(r, 0, sizeof(*r));
		return st;
	}
	assert_int_equal(hl, strlen(head));
	return http_parse_head(head, hl, r);
}

static void
test_good(void **state)
{
	struct http_request r;

	(void)state;
	assert_int_equal(parse("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n"
	    "Accept: */*\r\n\r\n", &r), HTTP_OK);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/a/b");
	assert_string_equal(r.query, "x=1&y=2");
	assert_int_equal(r.minor, 1);
	assert_true(r.keep_alive);
	assert_int_equal(r.content_length, -1);
	assert_string_equal(http_field(&r, "accept"), "*/*");
	http_request_clear(&r);
	/* a leading empty line (RFC 9112 2.2), OWS around values */
	assert_int_equal(parse("\r\nPOST /api HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length:  12 \r\nConnection: close\r\n\r\n", &r), HTTP_OK);
	assert_int_equal(r.content_length, 12);
	assert_false(r.keep_alive);
	http_request_clear(&r);
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r), HTTP_OK);
	assert_false(r.keep_alive);
	http_request_clear(&r);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
	    "\r\n", &r), HTTP_OK);
	assert_true(r.keep_alive);
	http_request_clear(&r);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n", &r),
	    HTTP_OK);
	assert_true(r.chunked);
	assert_true(r.expect_continue);
	http_request_clear(&r);
}

static const struct {
	const char *name, *head;
	enum http_status st;
} bad[] = {
	{ "two content-lengths", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", HTTP_BAD },
	{ "content-length list", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5, 5\r\n\r\n", HTTP_BAD },
	{ "signed content-length", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: +5\r\n\r\n", HTTP_BAD },
	{ "cl with te", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", HTTP_BAD },
	{ "te not chunked", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", HTTP_BAD },
	{ "te chunked twice", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked, chunked\r\n\r\n", HTTP_BAD },
	{ "te chunked not last", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked, identity\r\n\r\n", HTTP_BAD },
	{ "two te fields", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HTTP_BAD },
	{ "te in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HTTP_BAD },
	{ "obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
	    HTTP_BAD },
	{ "space before colon", "GET / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length : 5\r\n\r\n", HTTP_BAD },
	{ "bare lf", "GET / HTTP/1.1\nHost: h\r\n\r\n", HTTP_BAD },
	{ "bare lf in field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
	    HTTP_BAD },
	{ "bare cr", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", HTTP_BAD },
	{ "no host", "GET / HTTP/1.1\r\n\r\n", HTTP_BAD },
	{ "two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	    HTTP_BAD },
	{ "http/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", HTTP_VERSION },
	{ "lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", HTTP_BAD },
	{ "absolute form", "GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n",
	    HTTP_BAD },
	{ "control in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n",
	    HTTP_BAD },
	{ "unknown expect", "GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\n\r\n",
	    HTTP_BAD },
	{ "empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD },
	{ "two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD },
};

static void
test_bad(void **state)
{
	struct http_request r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum http_status st = parse(bad[i].head, &r);
		if (st != bad[i].st)
			fail_msg("%s: status %d", bad[i].name, st);
		http_request_clear(&r);
	}
}

static void
test_limits(void **state)
{
	struct buf b;
	size_t hl;
	const char *why;

	(void)state;
	buf_init(&b);
	buf_append_str(&b, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
	for (int i = 0; i < HTTP_LINE_MAX; i++)
		buf_append_char(&b, 'a');
	assert_int_equal(http_head_end(b.data, b.len, &hl, &why),
	    HTTP_TOO_LARGE);
	buf_reset(&b);
	buf_append_str(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < HTTP_HEADERS_MAX; i++)
		buf_printf(&b, "X%d: y\r\n", i);
	buf_append_str(&b, "\r\n");
	assert_int_equal(http_head_end(b.data, b.len, &hl, &why),
	    HTTP_TOO_LARGE);
	buf_reset(&b);
	buf_append_str(&b, "GET /");
	for (int i = 0; i < HTTP_LINE_MAX; i++)
		buf_append_char(&b, 'a');
	assert_int_equal(http_head_end(b.data, b.len, &hl, &why),
	    HTTP_URI_TOO_LONG);
	/* not all there yet */
	assert_int_equal(http_head_end("GET / HTTP/1.1\r\nHost: h\r\n", 25,
	    &hl, &why), HTTP_MORE);
	buf_clear(&b);
}

static enum http_status
chunked(const char *in, size_t step, struct buf *out, size_t *rest)
{
	struct http_chunked c;
	size_t len = strlen(in), i = 0, used;
	enum http_status st = HTTP_MORE;

	http_chunked_init(&c);
	while (i < len && st == HTTP_MORE) {
		size_t n = len - i < step ? len - i : step;
		st = http_chunked_feed(&c, in + i, n, &used, out, 1000);
		i += used;
		if (st == HTTP_MORE)
			assert_int_equal(used, n);
	}
	*rest = len - i;
	return st;
}

static void
test_chunked(void **state)
{
	static const char body[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n"
	    "0\r\nTrailer: x\r\n\r\nGET";
	struct buf out;
	size_t rest;

	(void)state;
	for (size_t step = 1; step <= sizeof(body); step++) {
		buf_init(&out);
		assert_int_equal(chunked(body, step, &out, &rest), HTTP_OK);
		assert_int_equal(out.len, 11);
		assert_memory_equal(out.data, "hello world", 11);
		assert_int_equal(rest, 3);      /* the next request's */
		buf_clear(&out);
	}
	static const struct {
		const char *name, *in;
		enum http_status st;
	} rows[] = {
		{ "bare lf after size", "5\nhello\r\n0\r\n\r\n", HTTP_BAD },
		{ "no crlf after data", "5\r\nhelloX0\r\n\r\n", HTTP_BAD },
		{ "space before ext", "5 ;x\r\nhello\r\n0\r\n\r\n", HTTP_BAD },
		{ "no digits", "\r\n", HTTP_BAD },
		{ "not hex", "g\r\n", HTTP_BAD },
		{ "too big for the limit", "3e9\r\n", HTTP_TOO_LARGE },
		{ "overflow", "fffffffffffffffff\r\n", HTTP_TOO_LARGE },
		{ "obs-fold trailer", "0\r\nA: b\r\n c\r\n\r\n", HTTP_BAD },
		{ "bare lf trailer", "0\r\nA: b\n\r\n", HTTP_BAD },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		buf_init(&out);
		enum http_status st = chunked(rows[i].in, 64, &out, &rest);
		if (st != rows[i].st)
			fail_msg("%s: status %d", rows[i].name, st);
		buf_clear(&out);
	}
}

static void
test_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(http_path_decode("/a%20b%2Fc", out, sizeof(out)), 0);
	assert_string_equal(out, "/a b/c");
	assert_int_equal(http_path_decode("/a%00", out, sizeof(out)), -1);
	assert_int_equal(http_path_decode("/a%2", out, sizeof(out)), -1);
	assert_int_equal(http_path_decode("/a%zz", out, sizeof(out)), -1);
	assert_int_equal(http_path_decode("/abc", out, 3), -1);
	assert_string_equal(http_reason(404), "Not Found");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
