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

#include "message.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_received),
	};
	return cmocka_run_group_tests_name("message", tests, NULL, NULL);
}
