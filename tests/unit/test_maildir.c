/* SPDX-License-Identifier: ISC */
/* Unit tests for maildir.c: unique names, local parts, flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mail/maildir.h"

static void
test_unique_name(void **state)
{
	struct maildir_name_parts p = { 1795735378, 994514, 4599, 7,
		"mx/a:b", 439, NULL };
	char name[256];
	(void)state;
	assert_int_equal(maildir_unique_name(name, sizeof(name), &p), 0);
	assert_string_equal(name,
	    "1795735378.M994514P4599Q7.mx\\057a\\072b,S=439");
	p.usec = 5;
	p.host = "h";
	assert_int_equal(maildir_unique_name(name, sizeof(name), &p), 0);
	assert_string_equal(name, "1795735378.M000005P4599Q7.h,S=439");
	assert_int_equal(maildir_unique_name(name, 10, &p), -1);
	p.tag = "0123456789abcdefR2";
	assert_int_equal(maildir_unique_name(name, sizeof(name), &p), 0);
	assert_string_equal(name,
	    "1795735378.M000005P4599Q7T0123456789abcdefR2.h,S=439");
	p.tag = "a/b";   /* never a path separator or a dot */
	assert_int_equal(maildir_unique_name(name, sizeof(name), &p), -1);
	p.tag = "a.b";
	assert_int_equal(maildir_unique_name(name, sizeof(name), &p), -1);
}

struct local_case {
	const char *in;
	char delim;
	const char *out;         /* NULL: refused */
};

static const struct local_case locals[] = {
	{ "Alice", '+', "alice" },
	{ "alice+lists", '+', "alice" },
	{ "alice+lists", '\0', NULL },     /* '+' is no mailbox char */
	{ "a.b-c_d", '+', "a.b-c_d" },
	{ "../../etc/passwd", '+', NULL },
	{ "a/b", '+', NULL },
	{ ".hidden", '+', NULL },
	{ "a..b", '+', NULL },
	{ "trailing.", '+', NULL },
	{ "", '+', NULL },
	{ "+tag", '+', NULL },              /* empty after the cut */
	{ "user%other", '+', NULL },        /* percent hack */
	{ "other!user", '+', NULL },        /* bang path */
	{ "john doe", '+', NULL },
	{ "a\"b", '+', NULL },
	/* UTF-8 (RFC 6531): NFC, the ASCII part lower-cased */
	{ "Caf\xc3\xa9", '+', "caf\xc3\xa9" },
	{ "Cafe\xcc\x81+x", '+', "caf\xc3\xa9" },   /* e + U+0301 */
	{ "\xe9", '+', NULL },                        /* not UTF-8 */
	{ "a\xc2\x85", '+', NULL },                   /* a C1 control */
	{ "\xc3\xa9/..", '+', NULL },
	{ ".\xc3\xa9", '+', NULL },
};

static void
test_local(void **state)
{
	char out[65];
	(void)state;
	for (size_t i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) {
		int rc = maildir_local_normalize(locals[i].in, locals[i].delim,
		    out, sizeof(out));
		if (locals[i].out == NULL && rc == 0)
			fail_msg("'%s' accepted as '%s'", locals[i].in, out);
		if (locals[i].out && (rc != 0 ||
		    strcmp(out, locals[i].out) != 0))
			fail_msg("'%s' -> rc %d", locals[i].in, rc);
	}
}

static void
test_domain(void **state)
{
	char out[256];
	(void)state;
	assert_int_equal(maildir_domain_normalize("Example.ORG", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "example.org");
	assert_int_equal(maildir_domain_normalize("[127.0.0.1]", out,
	    sizeof(out)), -1);
	assert_int_equal(maildir_domain_normalize("..", out, sizeof(out)), -1);
	assert_int_equal(maildir_domain_normalize("a/b", out, sizeof(out)),
	    -1);
	/* a U-label is the same directory as its A-label */
	assert_int_equal(maildir_domain_normalize("B\xc3\xbc" "cher.Example",
	    out, sizeof(out)), 0);
	assert_string_equal(out, "xn--bcher-kva.example");
	assert_int_equal(maildir_domain_normalize("XN--bcher-kva.example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "xn--bcher-kva.example");
	assert_int_equal(maildir_domain_normalize("\xe2\x98\x83\xe2\x80\x8d.x",
	    out, sizeof(out)), -1);
}

static void
test_parse_name(void **state)
{
	struct maildir_name_info info;
	(void)state;
	assert_int_equal(maildir_parse_name("123.M1P2Q3.h,S=4:2,FS", &info),
	    0);
	assert_true(info.has_info);
	assert_string_equal(info.flags, "FS");
	assert_int_equal(info.unique_len, 16);
	assert_int_equal(maildir_parse_name("123.M1P2.h", &info), 0);
	assert_false(info.has_info);
	assert_int_equal(maildir_parse_name("x:2,SF", &info), -1);
	assert_int_equal(maildir_parse_name("x:2,SS", &info), -1);
	assert_int_equal(maildir_parse_name("x:1,S", &info), -1);
	assert_int_equal(maildir_parse_name(".x", &info), -1);
	assert_int_equal(maildir_parse_name(":2,S", &info), -1);
	assert_int_equal(maildir_parse_name("x:2,", &info), 0);
	assert_string_equal(info.flags, "");
}

static void
test_user_root(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(maildir_user_root("/m", "example.org", "Alice", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "/m/example.org/alice");
	assert_int_equal(maildir_user_root("/m", "example.org",
	    "bob@Other.Test", out, sizeof(out)), 0);
	assert_string_equal(out, "/m/other.test/bob");
	/* never a path out of mail_dir */
	assert_int_equal(maildir_user_root("/m", "example.org", "../x", out,
	    sizeof(out)), -1);
	assert_int_equal(maildir_user_root("/m", "example.org", "a@../x", out,
	    sizeof(out)), -1);
	assert_int_equal(maildir_user_root("/m", "example.org", "", out,
	    sizeof(out)), -1);
	assert_int_equal(maildir_user_root("/m", "example.org", "a@", out,
	    sizeof(out)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unique_name),
		cmocka_unit_test(test_user_root),
		cmocka_unit_test(test_local),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_parse_name),
	};
	return cmocka_run_group_tests_name("maildir", tests, NULL, NULL);
}
