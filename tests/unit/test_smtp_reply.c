/* SPDX-License-Identifier: ISC */
/* Unit tests for smtp_reply.c: formatting and the status tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_reply.h"

static void
test_single(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	smtp_reply_append(&b, 250, "2.1.0", "Ok");
	assert_string_equal(b.data, "250 2.1.0 Ok\r\n");
	buf_reset(&b);
	smtp_reply_append(&b, 354, NULL, "Go ahead");
	assert_string_equal(b.data, "354 Go ahead\r\n");
	buf_reset(&b);
	/* CR/LF in text can never start a second reply line */
	smtp_reply_append(&b, 550, "5.1.1", "a\r\n250 fake");
	assert_string_equal(b.data, "550 5.1.1 a  250 fake\r\n");
	buf_clear(&b);
}

static void
test_multi(void **state)
{
	const char *lines[] = { "host", "PIPELINING", "SIZE 10" };
	struct buf b;
	(void)state;
	buf_init(&b);
	smtp_reply_append_lines(&b, 250, lines, 3);
	assert_string_equal(b.data,
	    "250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
	buf_clear(&b);
}

static void
test_tables(void **state)
{
	struct smtp_reply r;
	(void)state;
	r = smtp_reply_for_parse(SMTP_PARSE_UNKNOWN);
	assert_int_equal(r.code, 500);
	assert_string_equal(r.enh, "5.5.1");
	r = smtp_reply_for_parse(SMTP_PARSE_BAD_CHAR);
	assert_int_equal(r.code, 500);
	assert_string_equal(r.enh, "5.5.2");
	r = smtp_reply_for_parse(SMTP_PARSE_BAD_SENDER);
	assert_string_equal(r.enh, "5.1.7");
	r = smtp_reply_for_parse(SMTP_PARSE_BAD_RCPT);
	assert_string_equal(r.enh, "5.1.3");
	r = smtp_reply_for_parse(SMTP_PARSE_BAD_PARAM);
	assert_int_equal(r.code, 555);
	/* size wins over framing, framing over long lines */
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_TOO_BIG |
	    SMTP_DATA_ERR_BARE_LF);
	assert_int_equal(r.code, 552);
	assert_string_equal(r.enh, "5.3.4");
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_BARE_CR |
	    SMTP_DATA_ERR_LINE_TOO_LONG);
	assert_int_equal(r.code, 554);
	assert_string_equal(r.enh, "5.6.0");
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_LINE_TOO_LONG);
	assert_int_equal(r.code, 500);
	assert_string_equal(r.enh, "5.5.2");
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_NUL);
	assert_int_equal(r.code, 554);
	/* the header limits come last; fields before size */
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_LINE_TOO_LONG |
	    SMTP_DATA_ERR_HEADER_TOO_BIG);
	assert_int_equal(r.code, 500);
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_HEADER_TOO_BIG |
	    SMTP_DATA_ERR_TOO_MANY_FIELDS);
	assert_int_equal(r.code, 552);
	assert_string_equal(r.text, "Message has too many header fields");
	r = smtp_reply_for_data_errors(SMTP_DATA_ERR_HEADER_TOO_BIG);
	assert_string_equal(r.enh, "5.3.4");
}

static void
test_reader(void **state)
{
	struct smtp_reply_reader r;
	const char *param;
	(void)state;

	smtp_reply_reader_init(&r);
	assert_int_equal(smtp_reply_reader_feed(&r, "250-mx.example greets", 21),
	    SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_reader_feed(&r, "250-pipelining", 14),
	    SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_reader_feed(&r, "250-SIZE 1000", 13),
	    SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_reader_feed(&r, "250 8BITMIME", 12),
	    SMTP_REPLY_DONE);
	assert_int_equal(r.code, 250);
	assert_true(smtp_reply_has_keyword(&r, "PIPELINING", NULL));
	assert_true(smtp_reply_has_keyword(&r, "SIZE", &param));
	assert_string_equal(param, "1000");
	assert_false(smtp_reply_has_keyword(&r, "STARTTLS", NULL));
	/* codes must agree; a code is three digits */
	smtp_reply_reader_init(&r);
	smtp_reply_reader_feed(&r, "250-a", 5);
	assert_int_equal(smtp_reply_reader_feed(&r, "251 b", 5), SMTP_REPLY_BAD);
	smtp_reply_reader_init(&r);
	assert_int_equal(smtp_reply_reader_feed(&r, "25", 2), SMTP_REPLY_BAD);
	assert_int_equal(smtp_reply_reader_feed(&r, "2500 x", 6), SMTP_REPLY_BAD);
	assert_int_equal(smtp_reply_reader_feed(&r, "hello", 5), SMTP_REPLY_BAD);
	smtp_reply_reader_init(&r);
	assert_int_equal(smtp_reply_reader_feed(&r, "354", 3), SMTP_REPLY_DONE);
	/* a reply of too many lines ends */
	smtp_reply_reader_init(&r);
	enum smtp_reply_status st = SMTP_REPLY_MORE;
	for (int i = 0; i < 200 && st == SMTP_REPLY_MORE; i++)
		st = smtp_reply_reader_feed(&r, "250-x", 5);
	assert_int_equal(st, SMTP_REPLY_BAD);
	/* control bytes in the text are neutralised */
	smtp_reply_reader_init(&r);
	smtp_reply_reader_feed(&r, "550 a\x01" "b", 7);
	assert_string_equal(r.text, "550 a b");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_multi),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_reader),
	};
	return cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
}
