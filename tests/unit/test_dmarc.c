/* SPDX-License-Identifier: ISC */
/*
 * DMARC's pure part (mail/dmarc.c): organizational domains by the
 * Public Suffix List's rules (normal, wildcard, exception), policy
 * records, alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mail/dmarc.h"

static const char list[] =
    "// a comment\n"
    "com\nuk\nco.uk\n"
    "*.ck\n!www.ck\n"
    "jp\n*.kobe.jp\n!city.kobe.jp\n"
    "\n// ===BEGIN PRIVATE DOMAINS===\n"
    "blogspot.com\n";

static char *
org(const struct psl *p, const char *d)
{
	static char out[256];

	psl_org_domain(p, d, out, sizeof(out));
	return out;
}

static void
test_psl(void **state)
{
	struct psl *p = psl_parse(list, strlen(list));

	(void)state;
	assert_int_equal(psl_rules(p), 9);
	assert_string_equal(org(p, "example.com"), "example.com");
	assert_string_equal(org(p, "mail.example.com"), "example.com");
	assert_string_equal(org(p, "a.b.example.co.uk"), "example.co.uk");
	assert_string_equal(org(p, "co.uk"), "co.uk");         /* a suffix */
	assert_string_equal(org(p, "x.y.ck"), "x.y.ck");       /* *.ck */
	assert_string_equal(org(p, "a.www.ck"), "www.ck");     /* !www.ck */
	assert_string_equal(org(p, "a.b.city.kobe.jp"), "city.kobe.jp");
	assert_string_equal(org(p, "a.b.other.kobe.jp"), "b.other.kobe.jp");
	assert_string_equal(org(p, "me.blogspot.com"), "me.blogspot.com");
	/* not in the list: the implicit "*" rule */
	assert_string_equal(org(p, "a.sub.org.test"), "org.test");
	assert_string_equal(org(NULL, "a.sub.org.test"), "org.test");
	assert_string_equal(org(p, "test"), "test");
	assert_true(dmarc_aligned(p, "mail.example.com", "example.com", false));
	assert_false(dmarc_aligned(p, "mail.example.com", "example.com", true));
	assert_true(dmarc_aligned(p, "EXAMPLE.com", "example.com", true));
	assert_false(dmarc_aligned(p, "a.co.uk", "b.co.uk", false));
	psl_free(p);
}

static void
test_records(void **state)
{
	struct dmarc_record r;

	(void)state;
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; sp=none; "
	    "pct=20; adkim=s; aspf=r; rua=mailto:d@example.com", &r), 1);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(r.sp, DMARC_P_NONE);
	assert_int_equal(r.pct, 20);
	assert_true(r.adkim_strict && !r.aspf_strict);
	assert_int_equal(dmarc_record_parse("v=DMARC1;p=quarantine", &r), 1);
	assert_int_equal(r.sp, DMARC_P_QUARANTINE);
	assert_int_equal(r.pct, 100);
	assert_int_equal(dmarc_record_parse("v=DMARC1; rua=mailto:x@y", &r), 1);
	assert_int_equal(r.p, DMARC_P_NONE);
	assert_int_equal(dmarc_record_parse("v=spf1 -all", &r), 0);
	assert_int_equal(dmarc_record_parse("v=DMARC10; p=none", &r), 0);
	assert_int_equal(dmarc_record_parse("v=DMARC1", &r), -1);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=maybe", &r), -1);
	assert_int_equal(dmarc_record_parse("p=none; v=DMARC1", &r), 0);
	assert_string_equal(dmarc_policy_name(DMARC_P_QUARANTINE),
	    "quarantine");
	assert_string_equal(dmarc_result_name(DMARC_FAIL), "fail");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psl),
		cmocka_unit_test(test_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
