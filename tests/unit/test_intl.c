/* SPDX-License-Identifier: ISC */
/* Unit tests for intl.c: UTF-8 validity, IDNA A-labels, NFC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/intl.h"

static void
test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ "plain", true },
		{ "j\xc3\xb6rg", true },
		{ "\xe2\x82\xac", true },              /* U+20AC */
		{ "\xf0\x9f\x93\xa7", true },          /* U+1F4E7 */
		{ "\xc3", false },                      /* cut short */
		{ "\xe2\x82", false },
		{ "\xc0\xaf", false },                  /* overlong '/' */
		{ "\xe0\x80\xaf", false },              /* overlong */
		{ "\xed\xa0\x80", false },              /* a surrogate */
		{ "\xf4\x90\x80\x80", false },          /* over U+10FFFF */
		{ "\xc2\x85", false },                  /* C1 control */
		{ "a\tb", false },                      /* C0 control */
		{ "\x7f", false },
		{ "\xff", false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (intl_utf8_valid(cases[i].s, strlen(cases[i].s)) !=
		    cases[i].ok)
			fail_msg("case %zu", i);
	assert_true(intl_is_ascii("abc", 3));
	assert_false(intl_is_ascii("\xc3\xa9", 2));
}

static void
test_domains(void **state)
{
	char out[256];
	(void)state;

	assert_int_equal(intl_domain_ascii("B\xc3\xbc" "cher.Example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "xn--bcher-kva.example");
	assert_int_equal(intl_domain_ascii("Mail.EXAMPLE", out, sizeof(out)),
	    0);
	assert_string_equal(out, "mail.example");
	/* IDNA2008: a joiner where it may not be */
	assert_int_equal(intl_domain_ascii("\xe2\x80\x8d" "a.example", out,
	    sizeof(out)), -1);
	assert_int_equal(intl_domain_ascii("b\xc3\xbc" "cher.example", out, 5),
	    -1);
	assert_int_equal(intl_domain_unicode("xn--bcher-kva.example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "b\xc3\xbc" "cher.example");
}

static void
test_nfc(void **state)
{
	char out[64];
	(void)state;

	assert_int_equal(intl_nfc("jo\xcc\x88rg", out, sizeof(out)), 0);
	assert_string_equal(out, "j\xc3\xb6rg");
	assert_int_equal(intl_nfc("j\xc3\xb6rg", out, sizeof(out)), 0);
	assert_string_equal(out, "j\xc3\xb6rg");
	assert_int_equal(intl_nfc("ascii", out, sizeof(out)), 0);
	assert_int_equal(intl_nfc("\xc3", out, sizeof(out)), -1);
	assert_int_equal(intl_nfc("j\xc3\xb6rg", out, 4), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_nfc),
	};
	return cmocka_run_group_tests_name("intl", tests, NULL, NULL);
}
