/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for message.c: header/body split, field iteration with
 * folding, dates, and the trace fields Tern prepends (golden text).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mail/message.h"

static void
test_header_len(void **state)
{
	(void)state;
	assert_int_equal(message_header_len("A: b\n\nbody", 10), 6);
	assert_int_equal(message_header_len("\nbody", 5), 1);
	assert_int_equal(message_header_len("A: b\n", 5), 5);
	assert_int_equal(message_header_len("", 0), 0);
}

static void
test_fields(void **state)
{
	static const char msg[] = "Subject: hello\n\tworld\nFrom:  a@b\n"
	    "X-Empty:\nbad line\nTo: c\n\nbody\n";
	struct message_field f;
	size_t pos = 0;
	(void)state;

	assert_true(message_next_field(msg, sizeof(msg) - 1, &pos, &f));
	assert_int_equal(f.name_len, 7);
	assert_memory_equal(f.value, "hello\n\tworld", f.value_len);
	assert_true(message_next_field(msg, sizeof(msg) - 1, &pos, &f));
	assert_memory_equal(f.name, "From", 4);
	assert_memory_equal(f.value, "a@b", f.value_len);
	assert_true(message_next_field(msg, sizeof(msg) - 1, &pos, &f));
	assert_int_equal(f.value_len, 0);
	/* a line without a colon ends the header section */
	assert_false(message_next_field(msg, sizeof(msg) - 1, &pos, &f));
	assert_true(message_find_field(msg, sizeof(msg) - 1, "from", &f));
	assert_false(message_find_field(msg, sizeof(msg) - 1, "To", &f));
	/* a field name with a space is not a field */
	pos = 0;
	assert_false(message_next_field("Bad Name: x\n", 12, &pos, &f));
}

static void
test_date(void **state)
{
	struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 26,
		.tm_wday = 4, .tm_hour = 23, .tm_min = 5, .tm_sec = 9 };
	char d[64];
	(void)state;
	message_format_date(d, sizeof(d), &tm, 0);
	assert_string_equal(d, "Thu, 26 Nov 2026 23:05:09 +0000");
	message_format_date(d, sizeof(d), &tm, -(5 * 3600 + 30 * 60));
	assert_string_equal(d, "Thu, 26 Nov 2026 23:05:09 -0530");
}

static void
test_received(void **state)
{
	struct message_trace t = {
		.helo = "client.example", .client_ip = "192.0.2.1",
		.client_name = NULL, .by_host = "mx.example.org",
		.protocol = "ESMTP", .queue_id = "0123456789abcdef",
		.for_rcpt = "<bob@example.org>",
		.date = "Thu, 26 Nov 2026 23:05:09 +0000",
	};
	struct buf b;
	(void)state;
	buf_init(&b);
	message_append_received(&b, &t);
	assert_string_equal(b.data,
	    "Received: from client.example (unknown [192.0.2.1])\n"
	    "\tby mx.example.org (Tern) with ESMTP id 0123456789abcdef\n"
	    "\tfor <bob@example.org>;\n"
	    "\tThu, 26 Nov 2026 23:05:09 +0000\n");
	buf_reset(&b);
	t.for_rcpt = NULL;
	message_append_received(&b, &t);
	assert_non_null(strstr(b.data, "0123456789abcdef;\n\tThu"));
	buf_reset(&b);
	message_append_delivery_fields(&b, "<>", "bob@example.org");
	assert_string_equal(b.data,
	    "Return-Path: <>\nDelivered-To: bob@example.org\n");
	buf_clear(&b);
}

static void
test_wire(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	message_to_wire("a\n.b\n..\nc", 9, &b);
	assert_string_equal(b.data, "a\r\n..b\r\n...\r\nc\r\n.\r\n");
	buf_clear(&b);
	assert_int_equal(message_wire_size("a\n.b\n..\nc", 9, true), 19);
	assert_int_equal(message_wire_size("a\n.b\n..\nc", 9, false), 14);
	assert_int_equal(message_wire_size("", 0, true), 3);
	/* in pieces cut after an LF: the same octets */
	static const char m[] = ".one\ntwo\n.three\n\nfour";
	buf_init(&b);
	message_to_wire_lines(m, 5, &b);
	message_to_wire_lines(m + 5, 4, &b);
	message_to_wire_lines(m + 9, sizeof(m) - 1 - 9, &b);
	buf_append(&b, ".\r\n", 3);
	struct buf whole;
	buf_init(&whole);
	message_to_wire(m, sizeof(m) - 1, &whole);
	assert_string_equal(b.data, whole.data);
	assert_int_equal(whole.len, message_wire_size(m, sizeof(m) - 1, true));
	buf_clear(&whole);
	buf_clear(&b);
	assert_true(message_has_8bit("a\xc3\xa9", 3));
	assert_false(message_has_8bit("plain\n", 6));
}

struct dg_case {
	const char *name;
	const char *in;
	int rc;
	const char *want;        /* a substring of the output */
};

static const struct dg_case dg_cases[] = {
	{ "7-bit untouched", "Subject: a\n\nplain\n", 0, "Subject: a\n\nplain\n" },
	{ "8-bit leaf", "Subject: a\nContent-Transfer-Encoding: 8bit\n\n"
	  "caf\xc3\xa9 \n", 0,
	  "Subject: a\nMIME-Version: 1.0\nContent-Type: text/plain; "
	  "charset=unknown-8bit\nContent-Transfer-Encoding: "
	  "quoted-printable\n\ncaf=C3=A9=20\n" },
	{ "declared type kept", "MIME-Version: 1.0\nContent-Type: text/plain; "
	  "charset=utf-8\n\n\xc3\xa9\n", 0, "MIME-Version: 1.0\nContent-Type: "
	  "text/plain; charset=utf-8\nContent-Transfer-Encoding: "
	  "quoted-printable\n\n=C3=A9\n" },
	{ "digest part is message/rfc822", "Content-Type: multipart/digest; "
	  "boundary=b\n\n--b\n\nSubject: x\n\n\xe9\n--b--\n", -1, NULL },
	{ "equals sign", "\n\xff=\n", 0, "=FF=3D\n" },
	{ "8-bit header", "Subject: caf\xc3\xa9\n\nx\xff\n", -1, NULL },
	{ "message part", "Content-Type: message/rfc822\n\nx\xff\n", -1, NULL },
	{ "no boundary", "Content-Type: multipart/mixed\n\nx\xff\n", -1, NULL },
	{ "unclosed multipart", "Content-Type: multipart/mixed; boundary=b\n\n"
	  "--b\n\nx\xff\n", -1, NULL },
	{ "multipart", "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
	  "--b\nContent-Type: text/plain\n\n\xe9\n--b\n\nascii\n--b--\n", 0,
	  "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: "
	  "quoted-printable\n\n=E9\n--b\n\nascii\n--b--\n" },
	{ "untyped 8-bit part", "Content-Type: multipart/mixed; boundary=b\n\n"
	  "--b\n\n\xe9\n--b--\n", 0, "--b\nContent-Type: text/plain; "
	  "charset=unknown-8bit\nContent-Transfer-Encoding: quoted-printable"
	  "\n\n=E9\n--b--\n" },
};

static void
test_downgrade(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dg_cases) / sizeof(dg_cases[0]); i++) {
		const struct dg_case *c = &dg_cases[i];
		struct buf b;
		buf_init(&b);
		int rc = message_downgrade(c->in, strlen(c->in), &b);
		if (rc != c->rc)
			fail_msg("case '%s': rc %d", c->name, rc);
		if (rc == 0 && (b.data == NULL || strstr(b.data, c->want) == NULL))
			fail_msg("case '%s': got '%s'", c->name, b.data);
		if (rc == 0)
			assert_false(message_has_8bit(b.data, b.len));
		buf_clear(&b);
	}
	/* soft line breaks keep lines within 76 characters */
	char longline[300];
	memset(longline, '\xe9', 100);
	longline[100] = '\n';
	longline[101] = '\0';
	char in[400];
	snprintf(in, sizeof(in), "\n%s", longline);
	struct buf b;
	buf_init(&b);
	assert_int_equal(message_downgrade(in, strlen(in), &b), 0);
	for (char *l = b.data, *nl; (nl = strchr(l, '\n')) != NULL; l = nl + 1)
		assert_true(nl - l <= 76);
	buf_clear(&b);
}
static void
test_addresses(void **state)
{
	static const struct {
		const char *name, *value;
		int n;                  /* -1: not an address list */
		const char *first;      /* "local@domain" of the first */
		const char *second;
	} cases[] = {
		{ "bare", "alice@example.org", 1, "alice@example.org", NULL },
		{ "name-addr", "Alice Liddell <alice@example.org>", 1,
		    "alice@example.org", NULL },
		{ "quoted name with <> and @ inside",
		    "\"Eve <eve@evil.test>, x\" <alice@example.org>", 1,
		    "alice@example.org", NULL },
		{ "comment that looks like an address",
		    "alice@example.org (bob@other.test)", 1,
		    "alice@example.org", NULL },
		{ "nested comments", "(a (b) c) alice@example.org", 1,
		    "alice@example.org", NULL },
		{ "two", "a@x.test, \"B\" <b@y.test>", 2, "a@x.test",
		    "b@y.test" },
		{ "quoted local part", "\"john doe\"@example.org", 1,
		    "john doe@example.org", NULL },
		{ "group", "friends: a@x.test, b@y.test;", 2, "a@x.test",
		    "b@y.test" },
		{ "empty group", "undisclosed-recipients:;", 0, NULL, NULL },
		{ "obs-route", "<@relay.test:alice@example.org>", 1,
		    "alice@example.org", NULL },
		{ "folded", "Alice\n <alice@example.org>", 1,
		    "alice@example.org", NULL },
		{ "domain literal", "a@[192.0.2.1]", 1, "a@[192.0.2.1]", NULL },
		{ "obs CFWS around dots", "a . b @ example . org", 1,
		    "a.b@example.org", NULL },
		{ "UTF-8 (RFC 6532)", "J\xc3\xb6rg <j\xc3\xb6rg@example.org>", 1,
		    "j\xc3\xb6rg@example.org", NULL },
		{ "no at sign", "alice", -1, NULL, NULL },
		{ "unclosed angle", "Alice <alice@example.org", -1, NULL, NULL },
		{ "unclosed comment", "alice@example.org (x", -1, NULL, NULL },
		{ "unclosed quote", "\"Alice <a@b.test>", -1, NULL, NULL },
		{ "two without comma", "a@x.test b@y.test", -1, NULL, NULL },
		{ "unclosed group", "g: a@x.test", -1, NULL, NULL },
		{ "empty", "", 0, NULL, NULL },
		{ "local part too long",
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "@x.test", -1, NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct message_addr a[4];
		char got[400];
		int n = message_parse_addresses(cases[i].value,
		    strlen(cases[i].value), a, 4);
		if (n != cases[i].n)
			fail_msg("%s: %d addresses, want %d", cases[i].name, n,
			    cases[i].n);
		if (cases[i].first) {
			snprintf(got, sizeof(got), "%s@%s", a[0].local,
			    a[0].domain);
			if (strcmp(got, cases[i].first) != 0)
				fail_msg("%s: got %s", cases[i].name, got);
		}
		if (cases[i].second) {
			snprintf(got, sizeof(got), "%s@%s", a[1].local,
			    a[1].domain);
			if (strcmp(got, cases[i].second) != 0)
				fail_msg("%s: second %s", cases[i].name, got);
		}
	}
	/* display names */
	struct message_addr n[2];
	const char *v = "\"Liddell, Alice\" (the girl) <a@x.test>, Bob  Smith <b@y.test>";
	assert_int_equal(message_parse_addresses(v, strlen(v), n, 2), 2);
	assert_string_equal(n[0].name, "Liddell, Alice");
	assert_string_equal(n[1].name, "Bob Smith");
	/* more than max: all counted, max stored */
	struct message_addr one[1];
	assert_int_equal(message_parse_addresses("a@x.test, b@x.test, c@x.test",
	    28, one, 1), 3);
	assert_string_equal(one[0].local, "a");
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_downgrade),
		cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests_name("message", tests, NULL, NULL);
}
