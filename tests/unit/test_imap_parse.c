/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for imap/imap_parse.c and imap/imap_utf7.c: literal framing,
 * commands and their argument trees (one named row per nasty case),
 * strings out, sequence sets, modified UTF-7 both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imap/imap_parse.h"
#include "imap/imap_utf7.h"

static void
test_literal_framing(void **state)
{
	uint64_t n;
	bool ns;

	(void)state;
	assert_true(imap_line_literal("a APPEND INBOX {310}", 20, &n, &ns));
	assert_int_equal(n, 310);
	assert_false(ns);
	assert_true(imap_line_literal("a LOGIN {5+}", 12, &n, &ns));
	assert_int_equal(n, 5);
	assert_true(ns);
	assert_true(imap_line_literal("a APPEND x ~{8}", 15, &n, &ns));
	assert_false(imap_line_literal("a NOOP", 6, &n, &ns));
	assert_false(imap_line_literal("a {}", 4, &n, &ns));
	assert_false(imap_line_literal("a x}", 4, &n, &ns));
	assert_false(imap_line_literal("a {99999999999999999999}", 24, &n, &ns));
}

/* The argument tree as text: atoms bare, strings in "", lists in (). */
static void
show(struct buf *b, const struct imap_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_append_char(b, ' ');
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
			buf_append_str(b, a[i].s);
			break;
		case IMAP_ARG_STRING:
			buf_printf(b, "%s\"%s\"", a[i].literal ? "L" : "",
			    a[i].s);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(b, "NIL");
			break;
		case IMAP_ARG_LIST:
			buf_append_char(b, '(');
			show(b, a[i].items, a[i].nitems);
			buf_append_char(b, ')');
			break;
		}
	}
}

static void
test_commands(void **state)
{
	static const struct {
		const char *name, *in;
		enum imap_parse_status st;
		const char *tag, *cmd, *args;   /* args: show() form, or why */
	} cases[] = {
		{ "simple", "a1 NOOP\r\n", IMAP_PARSE_OK, "a1", "NOOP", "" },
		{ "lower-case name", "x login alice \"pw d\"\r\n", IMAP_PARSE_OK,
		  "x", "LOGIN", "alice \"pw d\"" },
		{ "escapes", "t LOGIN a \"q\\\"b\\\\\"\r\n", IMAP_PARSE_OK, "t",
		  "LOGIN", "a \"q\"b\\\"" },
		{ "literal", "t LOGIN {5}\r\nalice {3+}\r\npw!\r\n", IMAP_PARSE_OK,
		  "t", "LOGIN", "L\"alice\" L\"pw!\"" },
		{ "fetch items", "f UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS "
		  "(From To)]<0.100>)\r\n", IMAP_PARSE_OK, "f", "UID",
		  "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)" },
		{ "nested and empty lists", "s STORE 1 +FLAGS (\\Seen $Junk)\r\n",
		  IMAP_PARSE_OK, "s", "STORE", "1 +FLAGS (\\Seen $Junk)" },
		{ "empty list", "s X ()\r\n", IMAP_PARSE_OK, "s", "X", "()" },
		{ "NIL", "s LIST \"\" NIL\r\n", IMAP_PARSE_OK, "s", "LIST",
		  "\"\" NIL" },
		{ "list pattern", "l LIST \"\" *\r\n", IMAP_PARSE_OK, "l", "LIST",
		  "\"\" *" },
		{ "no tag", " NOOP\r\n", IMAP_PARSE_NO_TAG, "", "", "missing tag" },
		{ "tag with +", "+ NOOP\r\n", IMAP_PARSE_NO_TAG, "", "",
		  "missing tag" },
		{ "no command", "a\r\n", IMAP_PARSE_NO_TAG, "", "", "bad tag" },
		{ "unbalanced (", "a X (a b\r\n", IMAP_PARSE_BAD, "a", "X",
		  "unbalanced parentheses" },
		{ "unbalanced )", "a X a)\r\n", IMAP_PARSE_BAD, "a", "X",
		  "unbalanced parentheses" },
		{ "two spaces", "a X a  b\r\n", IMAP_PARSE_BAD, "a", "X",
		  "a space where an argument should be" },
		{ "bare LF", "a X a\n", IMAP_PARSE_BAD, "a", "X",
		  "bare LF (lines end in CRLF)" },
		{ "lying literal", "a X {10}\r\nabc\r\n", IMAP_PARSE_BAD, "a", "X",
		  "literal longer than the command" },
		{ "CR in quoted", "a X \"a\rb\"\r\n", IMAP_PARSE_BAD, "a", "X",
		  "line break or NUL in a quoted string" },
		{ "bad escape", "a X \"\\n\"\r\n", IMAP_PARSE_BAD, "a", "X",
		  "bad escape in a quoted string" },
		{ "unbalanced [", "a FETCH 1 BODY[HEADER\r\n", IMAP_PARSE_BAD, "a",
		  "FETCH", "unbalanced [ ]" },
		{ "junk after", "a X b\r\nc\r\n", IMAP_PARSE_BAD, "a", "X",
		  "junk after the command" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_cmd cmd;
		const char *why = NULL;
		struct buf b;
		enum imap_parse_status st = imap_parse_command(cases[i].in,
		    strlen(cases[i].in), &cmd, &why);
		buf_init(&b);
		if (st == IMAP_PARSE_OK)
			show(&b, cmd.args, cmd.nargs);
		else
			buf_append_str(&b, why);
		if (st != cases[i].st || strcmp(cmd.tag, cases[i].tag) != 0 ||
		    (st != IMAP_PARSE_NO_TAG && strcmp(cmd.name, cases[i].cmd) !=
		    0 && st == IMAP_PARSE_OK) || strcmp(b.data ? b.data : "",
		    cases[i].args) != 0)
			fail_msg("%s: status %d tag '%s' name '%s' got '%s'",
			    cases[i].name, st, cmd.tag, cmd.name,
			    b.data ? b.data : "");
		buf_clear(&b);
		imap_cmd_clear(&cmd);
	}
}

static void
test_deep_nesting(void **state)
{
	struct buf in;
	struct imap_cmd cmd;
	const char *why;

	(void)state;
	buf_init(&in);
	buf_append_str(&in, "a X ");
	for (int i = 0; i < 10000; i++)
		buf_append_char(&in, '(');
	for (int i = 0; i < 10000; i++)
		buf_append_char(&in, ')');
	buf_append_str(&in, "\r\n");
	assert_int_equal(imap_parse_command(in.data, in.len, &cmd, &why),
	    IMAP_PARSE_BAD);
	assert_string_equal(why, "lists nested too deeply");
	imap_cmd_clear(&cmd);
	buf_clear(&in);
}

static void
test_strings_out(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	imap_write_string(&b, "a \"b\"\\", 6, false);
	assert_string_equal(b.data, "\"a \\\"b\\\"\\\\\"");
	buf_reset(&b);
	imap_write_string(&b, "two\r\nlines", 10, false);
	assert_string_equal(b.data, "{10}\r\ntwo\r\nlines");
	buf_reset(&b);
	imap_write_string(&b, "J\xc3\xb6rg", 5, false);
	assert_string_equal(b.data, "{5}\r\nJ\xc3\xb6rg");
	buf_reset(&b);
	imap_write_string(&b, "J\xc3\xb6rg", 5, true);
	assert_string_equal(b.data, "\"J\xc3\xb6rg\"");
	buf_reset(&b);
	imap_write_nstring(&b, NULL, false);
	assert_string_equal(b.data, "NIL");
	buf_clear(&b);
}

static void
test_seqsets(void **state)
{
	struct imap_seqset s;
	struct buf b;
	uint32_t v[] = { 1, 2, 3, 5, 7, 8 };

	(void)state;
	assert_int_equal(imap_seqset_parse("1:3,7,9:*", 12, &s), 0);
	assert_true(imap_seqset_has(&s, 2));
	assert_false(imap_seqset_has(&s, 4));
	assert_true(imap_seqset_has(&s, 12));
	imap_seqset_clear(&s);
	assert_int_equal(imap_seqset_parse("*:4", 2, &s), 0);   /* 2:4 */
	assert_true(imap_seqset_has(&s, 3));
	imap_seqset_clear(&s);
	assert_int_equal(imap_seqset_parse("0", 5, &s), -1);
	assert_int_equal(imap_seqset_parse("1,", 5, &s), -1);
	assert_int_equal(imap_seqset_parse("1:x", 5, &s), -1);
	assert_int_equal(imap_seqset_parse("4294967296", 5, &s), -1);
	buf_init(&b);
	imap_seqset_write(&b, v, 6);
	assert_string_equal(b.data, "1:3,5,7:8");
	buf_clear(&b);
}

static void
test_utf7(void **state)
{
	static const struct { const char *utf7, *utf8; } ok[] = {
		{ "INBOX", "INBOX" },
		{ "&-", "&" },
		{ "Entw&APw-rfe", "Entw\xc3\xbcrfe" },
		{ "&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
		  "\xe8\xaa\x9e" },
		{ "&2D3eAA-", "\xf0\x9f\x98\x80" },   /* a surrogate pair */
	};
	static const char *bad7[] = { "&", "&AGE-", "&ZeV", "&Z!-", "a\x80",
		"&2D0-", "&AOQ", "&AOQB-",
		"&APw-&APw-" /* two runs for one: fuzz_imap_parse */ };
	static const char *bad8[] = { "\xff", "a\x01", "\xed\xa0\x80" };
	struct buf b;

	(void)state;
	buf_init(&b);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		buf_reset(&b);
		if (imap_utf7_to_utf8(ok[i].utf7, &b) != 0 ||
		    strcmp(b.data, ok[i].utf8) != 0)
			fail_msg("decode %s: '%s'", ok[i].utf7, b.data);
		buf_reset(&b);
		if (imap_utf8_to_utf7(ok[i].utf8, &b) != 0 ||
		    strcmp(b.data, ok[i].utf7) != 0)
			fail_msg("encode %s: '%s'", ok[i].utf7, b.data);
	}
	for (size_t i = 0; i < sizeof(bad7) / sizeof(bad7[0]); i++) {
		buf_reset(&b);
		if (imap_utf7_to_utf8(bad7[i], &b) != -1)
			fail_msg("decoded bad %s", bad7[i]);
	}
	for (size_t i = 0; i < sizeof(bad8) / sizeof(bad8[0]); i++) {
		buf_reset(&b);
		if (imap_utf8_to_utf7(bad8[i], &b) != -1)
			fail_msg("encoded bad %zu", i);
	}
	buf_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_framing),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_strings_out),
		cmocka_unit_test(test_seqsets),
		cmocka_unit_test(test_utf7),
	};
	return cmocka_run_group_tests_name("imap_parse", tests, NULL, NULL);
}
