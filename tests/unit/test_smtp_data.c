/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for smtp_data.c: end of data, dot-unstuffing, and every
 * smuggling variant of ANCHORS.md: none of them may end the data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "smtp/smtp_data.h"

struct data_case {
	const char *name;
	const char *in;
	size_t len;              /* 0: strlen */
	int done;                /* ended? */
	size_t consumed;         /* 0: all */
	unsigned errors;
	const char *out;         /* expected output, NULL to skip */
};

#define LF SMTP_DATA_ERR_BARE_LF
#define CR SMTP_DATA_ERR_BARE_CR

static const struct data_case cases[] = {
	{ "plain", "a\r\nb\r\n.\r\n", 0, 1, 0, 0, "a\nb\n" },
	{ "empty message", ".\r\n", 0, 1, 0, 0, "" },
	{ "dot stuffed", "..a\r\n.\r\n", 0, 1, 0, 0, ".a\n" },
	{ "dot dot line", "..\r\n.\r\n", 0, 1, 0, 0, ".\n" },
	{ "next command left", "x\r\n.\r\nQUIT\r\n", 0, 1, 6, 0, "x\n" },
	{ "no end yet", "x\r\n.", 0, 0, 0, 0, NULL },
	{ "smuggle LF.LF", "a\n.\nMAIL FROM:<x@y>\r\n", 0, 0, 0, LF, NULL },
	{ "smuggle LF.CR", "a\n.\rX", 0, 0, 0, LF | CR, NULL },
	{ "smuggle CR.LF", "a\r.\nX", 0, 0, 0, CR | LF, NULL },
	{ "smuggle CR.CR", "a\r.\rX", 0, 0, 0, CR, NULL },
	{ "smuggle LF.CRLF", "a\n.\r\nMAIL", 0, 0, 0, LF, NULL },
	{ "smuggle CR.CRLF", "a\r.\r\nMAIL", 0, 0, 0, CR, NULL },
	{ "smuggle NUL.CRLF", "a\r\n\0.\r\nMAIL", 11, 0, 0,
	  SMTP_DATA_ERR_NUL, NULL },
	{ "smuggle then real end", "a\n.\nb\r\n.\r\n", 0, 1, 0, LF, NULL },
	{ "dot CR then junk", "x\r\n.\rx\r\n.\r\n", 0, 1, 0, CR, NULL },
	{ "8-bit passes", "\xc3\xa9\r\n.\r\n", 0, 1, 0, 0, "\xc3\xa9\n" },
};

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct smtp_data d;
		struct buf out;
		bool done;

		buf_init(&out);
		smtp_data_init(&d, &out, 0);
		size_t used = smtp_data_feed(&d, c->in, len, &done);
		if ((int)done != c->done)
			fail_msg("case '%s': done=%d", c->name, done);
		if (used != (c->consumed ? c->consumed : len))
			fail_msg("case '%s': consumed %zu of %zu", c->name,
			    used, len);
		if (d.errors != c->errors)
			fail_msg("case '%s': errors 0x%x want 0x%x", c->name,
			    d.errors, c->errors);
		if (c->out && (out.len != strlen(c->out) ||
		    memcmp(out.data ? out.data : "", c->out, out.len) != 0))
			fail_msg("case '%s': output '%.*s'", c->name,
			    (int)out.len, out.data);
		buf_clear(&out);
	}
}

/* The same inputs fed one byte at a time give the same results. */
static void
test_bytewise(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->in), used = 0;
		struct smtp_data d;
		struct buf out;
		bool done = false;

		buf_init(&out);
		smtp_data_init(&d, &out, 0);
		while (used < len && !done)
			used += smtp_data_feed(&d, c->in + used, 1, &done);
		if ((int)done != c->done || d.errors != c->errors)
			fail_msg("bytewise case '%s'", c->name);
		if (c->out && (out.len != strlen(c->out) ||
		    memcmp(out.data ? out.data : "", c->out, out.len) != 0))
			fail_msg("bytewise case '%s': output", c->name);
		buf_clear(&out);
	}
}

static void
test_long_line(void **state)
{
	char line[1100];
	struct smtp_data d;
	struct buf out;
	bool done;
	(void)state;

	/* 998 octets + CRLF is the limit (RFC 5321 4.5.3.1.6) */
	memset(line, 'a', 998);
	memcpy(line + 998, "\r\n.\r\n", 5);
	buf_init(&out);
	smtp_data_init(&d, &out, 0);
	smtp_data_feed(&d, line, 1003, &done);
	assert_true(done);
	assert_int_equal(d.errors, 0);
	memset(line, 'a', 999);
	memcpy(line + 999, "\r\n.\r\n", 5);
	buf_reset(&out);
	smtp_data_init(&d, &out, 0);
	smtp_data_feed(&d, line, 1004, &done);
	assert_true(done);
	assert_int_equal(d.errors, SMTP_DATA_ERR_LINE_TOO_LONG);
	buf_clear(&out);
}

static void
test_size(void **state)
{
	struct smtp_data d;
	struct buf out;
	bool done;
	(void)state;

	buf_init(&out);
	smtp_data_init(&d, &out, 10);
	smtp_data_feed(&d, "12345678\r\n.\r\n", 13, &done); /* 10 octets */
	assert_true(done);
	assert_int_equal(d.errors, 0);
	buf_reset(&out);
	smtp_data_init(&d, &out, 10);
	smtp_data_feed(&d, "123456789\r\n.\r\n", 14, &done);
	assert_true(done);
	assert_int_equal(d.errors, SMTP_DATA_ERR_TOO_BIG);
	buf_clear(&out);
}

/* Runs text (then the end of data) byte by byte under header limits. */
static unsigned
header_errors(const char *text, uint64_t max_size, unsigned max_fields,
    unsigned *fields)
{
	struct smtp_data d;
	struct buf out;
	bool done = false;

	buf_init(&out);
	smtp_data_init(&d, &out, 0);
	smtp_data_set_header_limits(&d, max_size, max_fields);
	for (size_t i = 0; text[i]; i++)
		smtp_data_feed(&d, text + i, 1, &done);
	smtp_data_feed(&d, ".\r\n", 3, &done);
	assert_true(done);
	buf_clear(&out);
	*fields = d.fields;
	return d.errors;
}

static void
test_header_limits(void **state)
{
	static const struct {
		const char *name, *text;
		uint64_t max_size;
		unsigned max_fields, fields, errors;
	} hcases[] = {
		{ "within", "A: 1\r\nB: 2\r\n\r\nbody\r\n", 14, 2, 2, 0 },
		{ "size counts CRLF and the empty line",
		  "A: 1\r\nB: 2\r\n\r\nbody\r\n", 13, 0, 2,
		  SMTP_DATA_ERR_HEADER_TOO_BIG },
		{ "folded lines are one field", "A: 1\r\n 2\r\n\t3\r\n\r\n",
		  0, 1, 1, 0 },
		{ "one field too many", "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, 2, 3,
		  SMTP_DATA_ERR_TOO_MANY_FIELDS },
		{ "the body is not the header", "A: 1\r\n\r\nB: 2\r\nC: 3\r\n"
		  "D: 4\r\n", 10, 1, 1, 0 },
		{ "no body at all", "A: 1\r\nB: 2\r\n", 0, 1, 2,
		  SMTP_DATA_ERR_TOO_MANY_FIELDS },
		{ "a stuffed dot starts a field", "..A: 1\r\nB: 2\r\n\r\n", 0, 0,
		  2, 0 },
		{ "no limits", "A: 1\r\nB: 2\r\n\r\n", 0, 0, 2, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		unsigned fields;
		unsigned e = header_errors(hcases[i].text, hcases[i].max_size,
		    hcases[i].max_fields, &fields);
		if (e != hcases[i].errors || fields != hcases[i].fields)
			fail_msg("%s: errors 0x%x fields %u", hcases[i].name, e,
			    fields);
	}
}

/* BDAT chunks: dots are text, a CRLF may be split, the end adds LF */
static void
test_chunks(void **state)
{
	static const struct {
		const char *in[3];
		const char *out;
		unsigned errors;
	} chunk_cases[] = {
		{ { "a\r\n.\r\n..b\r", "\nend", NULL }, "a\n.\n..b\nend\n", 0 },
		{ { "", NULL, NULL }, "", 0 },
		{ { "x\r\n", "", NULL }, "x\n", 0 },
		{ { "bare\nlf\r\n", NULL, NULL }, NULL, SMTP_DATA_ERR_BARE_LF },
		{ { "cr at the end\r", NULL, NULL }, NULL, SMTP_DATA_ERR_BARE_CR },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		struct smtp_data d;
		struct buf out;
		bool done;
		buf_init(&out);
		smtp_data_init_chunks(&d, &out, 0);
		for (size_t k = 0; k < 3 && chunk_cases[i].in[k]; k++) {
			size_t n = strlen(chunk_cases[i].in[k]);
			assert_int_equal(smtp_data_feed(&d, chunk_cases[i].in[k], n,
			    &done), n);
			assert_false(done);
		}
		smtp_data_chunks_end(&d);
		assert_int_equal(d.errors, chunk_cases[i].errors);
		if (chunk_cases[i].out)
			assert_string_equal(out.data ? out.data : "",
			    chunk_cases[i].out);
		buf_clear(&out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_bytewise),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_chunks),
	};
	return cmocka_run_group_tests_name("smtp_data", tests, NULL, NULL);
}
