/* SPDX-License-Identifier: ISC */
/* Unit tests for sasl.c: base64, PLAIN, LOGIN, with the nasty cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/sasl.h"

static void
test_b64(void **state)
{
	char out[64], enc[64];
	size_t n;
	(void)state;
	assert_int_equal(sasl_b64_decode("aGVsbG8=", 8, out, sizeof(out), &n), 0);
	assert_string_equal(out, "hello");
	assert_int_equal(sasl_b64_encode("hello", 5, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "aGVsbG8=");
	assert_int_equal(sasl_b64_decode("", 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	static const char *const bad[] = { "aGVsbG8", "aGV=bG8=", "aGVs bG8=",
		"a===", "====", "aGVsbG8*" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sasl_b64_decode(bad[i], strlen(bad[i]), out, sizeof(out),
		    &n) == 0)
			fail_msg("'%s' decoded", bad[i]);
	/* output bound */
	assert_int_equal(sasl_b64_decode("aGVsbG8=", 8, out, 5, &n), -1);
}

static void
test_plain(void **state)
{
	char user[SASL_FIELD_MAX], pass[SASL_FIELD_MAX], b64[256];
	(void)state;
	/* "\0alice\0secret" */
	sasl_b64_encode("\0alice\0secret", 13, b64, sizeof(b64));
	assert_int_equal(sasl_plain(b64, strlen(b64), user, pass), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "secret");
	/* authzid equal to authcid is fine, another one is not */
	sasl_b64_encode("alice\0alice\0pw", 14, b64, sizeof(b64));
	assert_int_equal(sasl_plain(b64, strlen(b64), user, pass), 0);
	sasl_b64_encode("root\0alice\0pw", 13, b64, sizeof(b64));
	assert_int_equal(sasl_plain(b64, strlen(b64), user, pass), -1);
	/* missing fields, empty password, extra NUL, control bytes */
	static const struct { const char *s; size_t n; } bad[] = {
		{ "alice", 5 }, { "\0alice", 6 }, { "\0alice\0", 7 },
		{ "\0alice\0pw\0x", 11 }, { "\0al\nice\0pw", 10 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sasl_b64_encode(bad[i].s, bad[i].n, b64, sizeof(b64));
		if (sasl_plain(b64, strlen(b64), user, pass) == 0)
			fail_msg("bad PLAIN %zu accepted", i);
	}
}

static void
test_login(void **state)
{
	char out[SASL_FIELD_MAX];
	(void)state;
	assert_int_equal(sasl_login_field("YWxpY2U=", 8, out), 0);
	assert_string_equal(out, "alice");
	assert_int_equal(sasl_login_field("", 0, out), -1);
	assert_int_equal(sasl_login_field("YQBi", 4, out), -1); /* a\0b */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
	};
	return cmocka_run_group_tests_name("sasl", tests, NULL, NULL);
}
