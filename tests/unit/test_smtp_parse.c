/* SPDX-License-Identifier: ISC */
/* Unit tests for smtp_parse.c: verbs, paths, parameters, nasty input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_parse.h"

struct parse_case {
	const char *name;
	const char *line;
	enum smtp_parse_status st;
	enum smtp_verb verb;
	const char *local;       /* expected unquoted local part, or NULL */
	const char *domain;
	int null;
};

static const struct parse_case cases[] = {
	{ "ehlo", "EHLO client.example", SMTP_PARSE_OK, SMTP_VERB_EHLO },
	{ "lower-case verb", "ehlo x", SMTP_PARSE_OK, SMTP_VERB_EHLO },
	{ "ehlo without name", "EHLO", SMTP_PARSE_SYNTAX, SMTP_VERB_EHLO },
	{ "lhlo (LMTP)", "LHLO mta.example", SMTP_PARSE_OK, SMTP_VERB_LHLO },
	{ "lhlo without name", "LHLO", SMTP_PARSE_SYNTAX, SMTP_VERB_LHLO },
	{ "helo two words", "HELO a b", SMTP_PARSE_SYNTAX, SMTP_VERB_HELO },
	{ "mail simple", "MAIL FROM:<a@b.example>", SMTP_PARSE_OK,
	  SMTP_VERB_MAIL, "a", "b.example" },
	{ "mail space after colon", "MAIL FROM: <a@b.example>", SMTP_PARSE_OK,
	  SMTP_VERB_MAIL, "a", "b.example" },
	{ "mail null sender", "MAIL FROM:<>", SMTP_PARSE_OK, SMTP_VERB_MAIL,
	  "", "", 1 },
	{ "rcpt null refused", "RCPT TO:<>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "mail no brackets", "MAIL FROM:a@b", SMTP_PARSE_SYNTAX,
	  SMTP_VERB_MAIL },
	{ "mail missing FROM", "MAIL <a@b>", SMTP_PARSE_SYNTAX,
	  SMTP_VERB_MAIL },
	{ "quoted local part", "RCPT TO:<\"john doe\"@ex.org>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "john doe", "ex.org" },
	{ "quoted with escape", "RCPT TO:<\"a\\\"b\"@ex.org>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "a\"b", "ex.org" },
	{ "quoted at sign", "RCPT TO:<\"user@other\"@ex.org>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "user@other", "ex.org" },
	{ "source route dropped", "RCPT TO:<@hop1.example,@hop2.example:u@d.example>",
	  SMTP_PARSE_OK, SMTP_VERB_RCPT, "u", "d.example" },
	{ "bad source route", "RCPT TO:<@:u@d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "postmaster without domain", "RCPT TO:<Postmaster>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "Postmaster", "" },
	{ "other local without domain", "RCPT TO:<bob>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "percent hack parses", "RCPT TO:<u%other@d.example>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "u%other", "d.example" },
	{ "ipv4 literal", "RCPT TO:<u@[127.0.0.1]>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "u", "[127.0.0.1]" },
	{ "ipv6 literal", "RCPT TO:<u@[IPv6:::1]>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "u", "[IPv6:::1]" },
	{ "bad ipv4 literal", "RCPT TO:<u@[1.2.3.400]>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "trailing dot domain", "RCPT TO:<u@d.example.>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "leading dot local", "RCPT TO:<.u@d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "double dot local", "RCPT TO:<a..b@d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "hyphen label start", "RCPT TO:<u@-d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	/* RFC 6531: UTF-8 local parts and U-labels, well-formed only */
	{ "utf-8 local", "RCPT TO:<\xc3\xa9@d.example>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "\xc3\xa9", "d.example" },
	{ "u-label domain", "RCPT TO:<u@b\xc3\xbc" "cher.example>", SMTP_PARSE_OK,
	  SMTP_VERB_RCPT, "u", "b\xc3\xbc" "cher.example" },
	{ "quoted utf-8 local", "RCPT TO:<\"j\xc3\xb6 rg\"@d.example>",
	  SMTP_PARSE_OK, SMTP_VERB_RCPT, "j\xc3\xb6 rg", "d.example" },
	{ "lone 8-bit in local", "RCPT TO:<\xe9@d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "overlong utf-8", "RCPT TO:<\xc0\xafx@d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "C1 control in utf-8", "RCPT TO:<a\xc2\x85@d.example>",
	  SMTP_PARSE_BAD_RCPT, SMTP_VERB_RCPT },
	{ "bad u-label", "RCPT TO:<u@\xe2\x98\x83\xe2\x80\x8d.example>",
	  SMTP_PARSE_BAD_RCPT, SMTP_VERB_RCPT },
	{ "space in local", "RCPT TO:<a b@d.example>", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "path traversal refused", "RCPT TO:<../../etc/passwd@d.example>",
	  SMTP_PARSE_BAD_RCPT, SMTP_VERB_RCPT },
	{ "unterminated path", "RCPT TO:<u@d.example", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "garbage after path", "RCPT TO:<u@d.example>x", SMTP_PARSE_BAD_RCPT,
	  SMTP_VERB_RCPT },
	{ "size param", "MAIL FROM:<a@b.example> SIZE=1000", SMTP_PARSE_OK,
	  SMTP_VERB_MAIL, "a", "b.example" },
	{ "bad param key", "MAIL FROM:<a@b.example> -X=1", SMTP_PARSE_BAD_PARAM,
	  SMTP_VERB_MAIL },
	{ "empty param value", "MAIL FROM:<a@b.example> SIZE=", SMTP_PARSE_BAD_PARAM,
	  SMTP_VERB_MAIL },
	{ "unknown verb", "FOO bar", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN },
	{ "verb prefix is not a verb", "MAILX FROM:<a@b>", SMTP_PARSE_UNKNOWN,
	  SMTP_VERB_UNKNOWN },
	{ "NUL byte", "NOOP\0x", SMTP_PARSE_BAD_CHAR, SMTP_VERB_UNKNOWN },
	{ "bare CR inside", "NOOP\rRSET", SMTP_PARSE_BAD_CHAR, SMTP_VERB_UNKNOWN },
	{ "data with arg", "DATA x", SMTP_PARSE_SYNTAX, SMTP_VERB_DATA },
	{ "quit trailing space", "QUIT ", SMTP_PARSE_OK, SMTP_VERB_QUIT },
	{ "empty line", "", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN },
};

static size_t
case_len(const struct parse_case *c)
{
	/* "NUL byte" case: count through the embedded NUL */
	if (strcmp(c->name, "NUL byte") == 0)
		return 6;
	return strlen(c->line);
}

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *c = &cases[i];
		struct smtp_cmd cmd;
		enum smtp_parse_status st = smtp_parse_command(c->line,
		    case_len(c), &cmd);
		if (st != c->st || (st != SMTP_PARSE_BAD_CHAR &&
		    cmd.verb != c->verb))
			fail_msg("case '%s': status %d verb %d, want %d %d",
			    c->name, st, cmd.verb, c->st, c->verb);
		if (st == SMTP_PARSE_OK && c->local) {
			if (strcmp(cmd.addr.local, c->local) != 0 ||
			    strcmp(cmd.addr.domain, c->domain) != 0 ||
			    cmd.addr.null != (c->null != 0))
				fail_msg("case '%s': got <%s>@<%s> null=%d",
				    c->name, cmd.addr.local, cmd.addr.domain,
				    cmd.addr.null);
			/* utf8 is set exactly when there is 8-bit */
			bool eight = false;
			for (const char *p = c->line; *p; p++)
				eight |= (unsigned char)*p >= 0x80;
			if (cmd.addr.utf8 != eight)
				fail_msg("case '%s': utf8=%d", c->name,
				    cmd.addr.utf8);
		}
	}
}

static void
test_params(void **state)
{
	struct smtp_cmd cmd;
	(void)state;
	static const char line[] =
	    "MAIL FROM:<a@b.example> size=42 body=8BITMIME  X-FOO";
	assert_int_equal(smtp_parse_command(line, sizeof(line) - 1, &cmd),
	    SMTP_PARSE_OK);
	assert_int_equal(cmd.nparams, 3);
	assert_string_equal(smtp_cmd_param(&cmd, "SIZE")->value, "42");
	assert_string_equal(smtp_cmd_param(&cmd, "BODY")->value, "8BITMIME");
	assert_null(smtp_cmd_param(&cmd, "X-FOO")->value);
	assert_null(smtp_cmd_param(&cmd, "NOPE"));
}

static void
test_limits(void **state)
{
	char line[600], local[80];
	struct smtp_cmd cmd;
	(void)state;

	/* 64-octet local part is fine, 65 is not (RFC 5321 4.5.3.1.1) */
	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(line, sizeof(line), "RCPT TO:<%s@d.example>", local);
	assert_int_equal(smtp_parse_command(line, strlen(line), &cmd),
	    SMTP_PARSE_OK);
	snprintf(line, sizeof(line), "RCPT TO:<%sa@d.example>", local);
	assert_int_equal(smtp_parse_command(line, strlen(line), &cmd),
	    SMTP_PARSE_BAD_RCPT);
	/* a label over 63 octets */
	memset(local, 'b', 64);
	local[64] = '\0';
	snprintf(line, sizeof(line), "RCPT TO:<u@%s.example>", local);
	assert_int_equal(smtp_parse_command(line, strlen(line), &cmd),
	    SMTP_PARSE_BAD_RCPT);
	/* longer than a command line may be */
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	assert_int_equal(smtp_parse_command(line, 511, &cmd),
	    SMTP_PARSE_SYNTAX);
	/* RCPT may be 600 longer, for DSN's ORCPT (RFC 3461 5) */
	char orcpt[520];
	memset(orcpt, 'o', 490);
	orcpt[490] = '\0';
	char big[SMTP_MAILRCPT_LINE_MAX + 10];
	snprintf(big, sizeof(big), "RCPT TO:<u@d.example> NOTIFY=SUCCESS "
	    "ORCPT=rfc822;%s", orcpt);
	assert_int_equal(smtp_parse_command(big, strlen(big), &cmd),
	    SMTP_PARSE_OK);
	assert_int_equal(strlen(smtp_cmd_param(&cmd, "ORCPT")->value), 497);
	memset(big, 'x', sizeof(big));
	memcpy(big, "RCPT TO:<u@d.example> X=", 24);
	assert_int_equal(smtp_parse_command(big, SMTP_MAILRCPT_LINE_MAX - 2,
	    &cmd), SMTP_PARSE_OK);
	assert_int_equal(smtp_parse_command(big, SMTP_MAILRCPT_LINE_MAX - 1,
	    &cmd), SMTP_PARSE_SYNTAX);
	/* a parameter given twice */
	assert_int_equal(smtp_parse_command("RCPT TO:<u@d.example> NOTIFY=NEVER"
	    " notify=NEVER", 47, &cmd), SMTP_PARSE_BAD_PARAM);
}

static void
test_format(void **state)
{
	struct smtp_addr a;
	char out[300];
	(void)state;

	assert_int_equal(smtp_parse_mailbox("a.b@ex.org", 10, &a), 0);
	assert_int_equal(smtp_addr_format(&a, out, sizeof(out)), 0);
	assert_string_equal(out, "<a.b@ex.org>");
	strcpy(a.local, "john \"q\" doe");
	assert_int_equal(smtp_addr_format(&a, out, sizeof(out)), 0);
	assert_string_equal(out, "<\"john \\\"q\\\" doe\"@ex.org>");
	a.null = true;
	assert_int_equal(smtp_addr_format(&a, out, sizeof(out)), 0);
	assert_string_equal(out, "<>");
	assert_int_equal(smtp_addr_format(&a, out, 2), -1);
}

static void
test_domains(void **state)
{
	(void)state;
	assert_true(smtp_valid_domain("a-b.example", 11));
	assert_false(smtp_valid_domain("a_b.example", 11));
	assert_false(smtp_valid_domain("", 0));
	assert_false(smtp_valid_domain("a..b", 4));
	assert_true(smtp_valid_domain("[10.0.0.1]", 10));
	assert_false(smtp_valid_domain("[10.0.0]", 8));
	assert_false(smtp_valid_domain("[]", 2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_domains),
	};
	return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
