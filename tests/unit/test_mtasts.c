/* SPDX-License-Identifier: ISC */
/* Unit tests for mtasts.c: the TXT record, the policy file, mx patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/mtasts.h"

static void
test_txt(void **state)
{
	char id[MTASTS_ID_MAX + 1];
	(void)state;

	assert_int_equal(mtasts_txt_parse("v=STSv1; id=20160831085700Z;", id),
	    0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(mtasts_txt_parse("v=STSv1;id=a1", id), 0);
	assert_string_equal(id, "a1");
	assert_int_equal(mtasts_txt_parse("v=STSv1; id=x; ext=1 ", id), 0);
	assert_int_equal(mtasts_txt_parse("id=x; v=STSv1", id), -1);
	assert_int_equal(mtasts_txt_parse("v=STSv1;", id), -1);   /* no id */
	assert_int_equal(mtasts_txt_parse("v=STSv2; id=x", id), -1);
	assert_int_equal(mtasts_txt_parse("v=STSv1; id=a-b", id), -1);
	assert_int_equal(mtasts_txt_parse("v=STSv1; id=", id), -1);
	assert_int_equal(mtasts_txt_parse("v=STSv1; id="
	    "123456789012345678901234567890123", id), -1);  /* 33 */
	assert_int_equal(mtasts_txt_parse("v=STSv1; junk", id), -1);
	assert_int_equal(mtasts_txt_parse("", id), -1);

	char *one[] = { "v=spf1 -all", "v=STSv1; id=7" };
	char *two[] = { "v=STSv1; id=7", "v=STSv1; id=8" };
	assert_int_equal(mtasts_txt_choose(one, 2, id), 0);
	assert_string_equal(id, "7");
	assert_int_equal(mtasts_txt_choose(two, 2, id), -1);
	assert_int_equal(mtasts_txt_choose(one, 1, id), -1);
}

static void
test_policy(void **state)
{
	static const char ok[] = "version: STSv1\r\nmode: enforce\r\n"
	    "mx: mail.example.com\r\nmx: *.Example.NET\r\n"
	    "max_age: 604800\r\nfuture: ignored\r\n";
	struct mtasts_policy p;
	char why[100];
	(void)state;

	assert_int_equal(mtasts_policy_parse(ok, strlen(ok), &p, why,
	    sizeof(why)), 0);
	assert_int_equal(p.mode, MTASTS_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.nmx, 2);
	assert_string_equal(p.mx[1], "*.example.net");
	assert_true(mtasts_mx_match(&p, "mail.example.com"));
	assert_true(mtasts_mx_match(&p, "MAIL.example.com."));
	assert_true(mtasts_mx_match(&p, "mx1.example.net"));
	assert_false(mtasts_mx_match(&p, "example.net"));
	assert_false(mtasts_mx_match(&p, "a.b.example.net"));
	assert_false(mtasts_mx_match(&p, "xmail.example.com"));
	assert_false(mtasts_mx_match(&p, ""));

	static const char lf[] = "version: STSv1\nmode: testing\nmx: a.test\n"
	    "max_age: 99999999999\n";
	assert_int_equal(mtasts_policy_parse(lf, strlen(lf), &p, why,
	    sizeof(why)), -1);                 /* 11 digits */
	static const char big[] = "version: STSv1\nmode: testing\nmx: a.test\n"
	    "max_age: 9999999999\n";
	assert_int_equal(mtasts_policy_parse(big, strlen(big), &p, why,
	    sizeof(why)), 0);
	assert_int_equal(p.max_age, MTASTS_MAX_AGE);
	assert_int_equal(p.mode, MTASTS_TESTING);
	static const char none[] = "version: STSv1\nmode: none\nmax_age: 1\n";
	assert_int_equal(mtasts_policy_parse(none, strlen(none), &p, why,
	    sizeof(why)), 0);
	static const char nomx[] = "version: STSv1\nmode: enforce\n"
	    "max_age: 1\n";
	assert_int_equal(mtasts_policy_parse(nomx, strlen(nomx), &p, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "no mx pattern");
	static const char noversion[] = "mode: enforce\nmx: a\nmax_age: 1\n";
	assert_int_equal(mtasts_policy_parse(noversion, strlen(noversion), &p,
	    why, sizeof(why)), -1);
	static const char badmode[] = "version: STSv1\nmode: strict\n"
	    "mx: a\nmax_age: 1\n";
	assert_int_equal(mtasts_policy_parse(badmode, strlen(badmode), &p,
	    why, sizeof(why)), -1);
	static const char badmx[] = "version: STSv1\nmode: enforce\n"
	    "mx: a..b\nmax_age: 1\n";
	assert_int_equal(mtasts_policy_parse(badmx, strlen(badmx), &p, why,
	    sizeof(why)), -1);
	static const char junk[] = "version: STSv1\nthis is html\n";
	assert_int_equal(mtasts_policy_parse(junk, strlen(junk), &p, why,
	    sizeof(why)), -1);
	assert_string_equal(mtasts_mode_name(MTASTS_ENFORCE), "enforce");
}

static void
test_cache_line(void **state)
{
	static const char ok[] = "version: STSv1\nmode: enforce\n"
	    "mx: mx.example.test\nmx: *.example.net\nmax_age: 600\n";
	struct mtasts_policy p, q;
	char why[100], id[MTASTS_ID_MAX + 1], line[600];
	long long exp;
	(void)state;

	assert_int_equal(mtasts_policy_parse(ok, strlen(ok), &p, why,
	    sizeof(why)), 0);
	assert_int_equal(mtasts_cache_format(&p, "id42", 1800000000LL, line,
	    sizeof(line)), 0);
	assert_string_equal(line, "1 id42 enforce 600 1800000000 "
	    "mx.example.test *.example.net");
	assert_int_equal(mtasts_cache_parse(line, &q, id, &exp), 0);
	assert_string_equal(id, "id42");
	assert_true(exp == 1800000000LL);
	assert_int_equal(q.mode, MTASTS_ENFORCE);
	assert_int_equal(q.max_age, 600);
	assert_int_equal(q.nmx, 2);
	assert_true(mtasts_mx_match(&q, "a.example.net"));
	assert_int_equal(mtasts_cache_format(&p, "id42", 1, line, 20), -1);
	assert_int_equal(mtasts_cache_parse("2 id42 enforce 600 1 mx.test", &q,
	    id, &exp), -1);
	assert_int_equal(mtasts_cache_parse("1 id42 enforce 600 1", &q, id,
	    &exp), -1);                        /* enforce without mx */
	assert_int_equal(mtasts_cache_parse("1 id42 none 600 1", &q, id,
	    &exp), 0);
	assert_int_equal(mtasts_cache_parse("1 i-d enforce 600 1 a.test", &q,
	    id, &exp), -1);
	assert_int_equal(mtasts_cache_parse("1 id enforce x 1 a.test", &q, id,
	    &exp), -1);
	assert_int_equal(mtasts_cache_parse("1 id enforce 1 1 a..test", &q,
	    id, &exp), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_cache_line),
	};
	return cmocka_run_group_tests_name("mtasts", tests, NULL, NULL);
}
