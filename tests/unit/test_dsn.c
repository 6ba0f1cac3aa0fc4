/* SPDX-License-Identifier: ISC */
/* Unit tests for dsn.c: NOTIFY, RET, xtext, ENVID and ORCPT (RFC 3461). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mail/dsn.h"

static void
test_notify(void **state)
{
	unsigned m = 99;
	char t[40];
	(void)state;

	assert_int_equal(dsn_notify_parse("SUCCESS,FAILURE", &m), 0);
	assert_int_equal(m, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
	assert_int_equal(dsn_notify_parse("delay,Success", &m), 0);
	dsn_notify_format(m, t, sizeof(t));
	assert_string_equal(t, "SUCCESS,DELAY");
	assert_int_equal(dsn_notify_parse("NEVER", &m), 0);
	assert_int_equal(m, DSN_NOTIFY_NEVER);
	static const char *bad[] = { "", "NEVER,SUCCESS", "FAILURE,NEVER",
		"SUCCESS,SUCCESS", "SUCCESS,", ",SUCCESS", "ALWAYS",
		"SUCCESS,,DELAY", "SUCCESSX" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dsn_notify_parse(bad[i], &m), -1);
	assert_int_equal(dsn_notify_parse(NULL, &m), -1);
	/* none given: failures and delays */
	assert_true(dsn_notify_wants(0, DSN_NOTIFY_FAILURE));
	assert_true(dsn_notify_wants(0, DSN_NOTIFY_DELAY));
	assert_false(dsn_notify_wants(0, DSN_NOTIFY_SUCCESS));
	assert_false(dsn_notify_wants(DSN_NOTIFY_NEVER, DSN_NOTIFY_FAILURE));
	assert_true(dsn_notify_wants(DSN_NOTIFY_SUCCESS, DSN_NOTIFY_SUCCESS));
	assert_false(dsn_notify_wants(DSN_NOTIFY_SUCCESS, DSN_NOTIFY_DELAY));
	/* too small a buffer: cut at a keyword, never mid-word */
	dsn_notify_format(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, t, 10);
	assert_string_equal(t, "SUCCESS");
}

static void
test_ret(void **state)
{
	enum dsn_ret r;
	(void)state;

	assert_int_equal(dsn_ret_parse("full", &r), 0);
	assert_int_equal(r, DSN_RET_FULL);
	assert_int_equal(dsn_ret_parse("HDRS", &r), 0);
	assert_int_equal(r, DSN_RET_HDRS);
	assert_int_equal(dsn_ret_parse("HEADERS", &r), -1);
	assert_int_equal(dsn_ret_parse(NULL, &r), -1);
	assert_string_equal(dsn_ret_name(DSN_RET_FULL), "FULL");
}

static void
test_xtext(void **state)
{
	char d[64];
	size_t n;
	struct buf b;
	(void)state;

	assert_int_equal(xtext_decode("a+2Bb+3Dc", 9, d, sizeof(d), &n), 0);
	assert_string_equal(d, "a+b=c");
	assert_int_equal(n, 5);
	/* lower-case hex, a cut escape, a raw '+' or '=' or space: bad */
	assert_int_equal(xtext_decode("a+2b", 4, d, sizeof(d), &n), -1);
	assert_int_equal(xtext_decode("a+2", 3, d, sizeof(d), &n), -1);
	assert_int_equal(xtext_decode("a+", 2, d, sizeof(d), &n), -1);
	assert_int_equal(xtext_decode("a=b", 3, d, sizeof(d), &n), -1);
	assert_int_equal(xtext_decode("a b", 3, d, sizeof(d), &n), -1);
	/* does not fit */
	assert_int_equal(xtext_decode("abcd", 4, d, 4, &n), -1);
	assert_int_equal(xtext_decode("abc", 3, d, 4, &n), 0);
	/* NUL decodes; the caller judges */
	assert_int_equal(xtext_decode("+00", 3, d, sizeof(d), &n), 0);
	assert_int_equal(n, 1);
	buf_init(&b);
	xtext_encode("a+b=c d\xc3\xa9", 9, &b);
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "a+2Bb+3Dc+20d+C3+A9");
	buf_clear(&b);
}

static void
test_envid_orcpt(void **state)
{
	char d[DSN_ORCPT_MAX + 1];
	struct buf b;
	(void)state;

	assert_true(dsn_envid_valid("QQ314159"));
	assert_true(dsn_envid_valid("a+20b"));
	assert_false(dsn_envid_valid(""));
	assert_false(dsn_envid_valid(NULL));
	assert_false(dsn_envid_valid("a+0Ab"));      /* a control octet */
	assert_false(dsn_envid_valid("a+C3+A9"));    /* not printable ASCII */
	char longid[DSN_ENVID_MAX + 2];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_false(dsn_envid_valid(longid));
	longid[DSN_ENVID_MAX] = '\0';
	assert_true(dsn_envid_valid(longid));

	assert_int_equal(dsn_orcpt_decode("rfc822;Bob+2Bx@example.org", d,
	    sizeof(d)), 0);
	assert_string_equal(d, "rfc822;Bob+x@example.org");
	assert_true(dsn_orcpt_valid("utf-8;j+C3+B6rg@example.org"));
	assert_false(dsn_orcpt_valid("rfc822"));
	assert_false(dsn_orcpt_valid(";bob@example.org"));
	assert_false(dsn_orcpt_valid("rfc822;"));
	assert_false(dsn_orcpt_valid("rfc 822;bob@example.org"));
	assert_false(dsn_orcpt_valid("rfc822;bob+0D+0A@example.org"));
	assert_false(dsn_orcpt_valid(NULL));
	buf_init(&b);
	dsn_orcpt_make("a b@example.org", 15, &b);
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "rfc822;a+20b@example.org");
	assert_true(dsn_orcpt_valid(b.data));
	buf_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_ret),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_envid_orcpt),
	};
	return cmocka_run_group_tests_name("dsn", tests, NULL, NULL);
}
