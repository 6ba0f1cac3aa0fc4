/* SPDX-License-Identifier: ISC */
/* Unit tests for mx.c: rdata, ordering, null MX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/mx.h"

static void
test_rdata(void **state)
{
	static const unsigned char mx1[] = { 0, 10, 3, 'm', 'x', '1', 4, 't',
		'e', 's', 't', 0 };
	static const unsigned char null[] = { 0, 0, 0 };
	static const unsigned char ptr[] = { 0, 10, 0xc0, 0x0c };
	static const unsigned char cut[] = { 0, 10, 5, 'a', 'b' };
	static const unsigned char junk[] = { 0, 10, 1, '/', 0 };
	struct mx_entry e;
	(void)state;

	assert_int_equal(mx_parse_rdata(mx1, sizeof(mx1), &e), 0);
	assert_int_equal(e.pref, 10);
	assert_string_equal(e.host, "mx1.test");
	assert_int_equal(mx_parse_rdata(null, sizeof(null), &e), 0);
	assert_string_equal(e.host, "");
	assert_true(mx_is_null(&e, 1));
	assert_int_equal(mx_parse_rdata(ptr, sizeof(ptr), &e), -1);
	assert_int_equal(mx_parse_rdata(cut, sizeof(cut), &e), -1);
	assert_int_equal(mx_parse_rdata(junk, sizeof(junk), &e), -1);
}

static void
test_order(void **state)
{
	struct mx_entry e[5] = {
		{ 20, "b", 5 }, { 10, "x", 9 }, { 20, "a", 1 }, { 5, "first", 0 },
		{ 10, "y", 2 },
	};
	(void)state;
	mx_sort(e, 5);
	assert_string_equal(e[0].host, "first");
	/* equal preferences follow the random tie-breaker */
	assert_string_equal(e[1].host, "y");
	assert_string_equal(e[2].host, "x");
	assert_string_equal(e[3].host, "a");
	assert_string_equal(e[4].host, "b");
	assert_false(mx_is_null(e, 5));
	struct mx_entry two[2] = { { 0, "", 0 }, { 10, "mx", 0 } };
	assert_false(mx_is_null(two, 2));   /* RFC 7505: only alone */
}

static void
test_txt(void **state)
{
	static const unsigned char two[] = "\x05v=spf\x03 -a";
	static const unsigned char bad[] = "\x05" "abc";
	static const unsigned char nul[] = "\x02" "a\0";
	char *t;

	(void)state;
	t = mx_txt_rdata(two, sizeof(two) - 1);
	assert_string_equal(t, "v=spf -a");
	free(t);
	t = mx_txt_rdata((const unsigned char *)"\0", 1);
	assert_string_equal(t, "");
	free(t);
	assert_null(mx_txt_rdata(bad, sizeof(bad) - 1));
	t = mx_txt_rdata(nul, sizeof(nul) - 1);
	assert_non_null(t);
	assert_non_null(strchr(t, '\x7f'));
	free(t);
}

static void
test_dnsbl_name(void **state)
{
	char n[300];

	(void)state;
	assert_int_equal(mx_dnsbl_name("192.0.2.99", "bl.example", n,
	    sizeof(n)), 0);
	assert_string_equal(n, "99.2.0.192.bl.example");
	/* RFC 5782 2.4: nibbles, least significant first */
	assert_int_equal(mx_dnsbl_name("2001:db8:1:2:3:4:567:89ab", "bl.test",
	    n, sizeof(n)), 0);
	assert_string_equal(n, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0."
	    "0.0.8.b.d.0.1.0.0.2.bl.test");
	/* an IPv4 client on a dual-stack listener is asked as IPv4 */
	assert_int_equal(mx_dnsbl_name("::ffff:127.0.0.2", "bl.test", n,
	    sizeof(n)), 0);
	assert_string_equal(n, "2.0.0.127.bl.test");
	/* a domain list (URIBL, RHSBL) */
	assert_int_equal(mx_dnsbl_name("spam.example", "dbl.test", n,
	    sizeof(n)), 0);
	assert_string_equal(n, "spam.example.dbl.test");
	assert_int_equal(mx_dnsbl_name("a..b", "dbl.test", n, sizeof(n)), -1);
	assert_int_equal(mx_dnsbl_name("a b", "dbl.test", n, sizeof(n)), -1);
	assert_int_equal(mx_dnsbl_name("1.2.3.4", "", n, sizeof(n)), -1);
	assert_int_equal(mx_dnsbl_name("1.2.3.4", ".bl", n, sizeof(n)), -1);
	assert_int_equal(mx_dnsbl_name("1.2.3.4", "bl.test", n, 10), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rdata),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_dnsbl_name),
	};
	return cmocka_run_group_tests_name("mx", tests, NULL, NULL);
}
