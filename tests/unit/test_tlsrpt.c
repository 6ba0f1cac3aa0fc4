/* SPDX-License-Identifier: ISC */
/* Unit tests for tlsrpt.c: the record, the book, the report, the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "mail/tlsrpt.h"

static void
test_txt(void **state)
{
	char rua[TLSRPT_RUA_MAX][TLSRPT_ADDR_MAX + 1];
	size_t n;
	(void)state;

	assert_int_equal(tlsrpt_txt_parse("v=TLSRPTv1; rua=mailto:"
	    "reports@example.com", rua, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rua[0], "reports@example.com");
	assert_int_equal(tlsrpt_txt_parse("v=TLSRPTv1;rua=https://r.test/x, "
	    "mailto:a%40b@c.test , MAILTO:d@e.test?subject=x;", rua, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(rua[0], "https://r.test/x");
	assert_string_equal(rua[1], "a@b@c.test");
	assert_string_equal(rua[2], "d@e.test");
	assert_int_equal(tlsrpt_txt_parse("v=TLSRPTv1; rua=ftp://r.test/",
	    rua, &n), 0);
	assert_int_equal(n, 0);                /* neither mailto nor https */
	assert_int_equal(tlsrpt_txt_parse("v=TLSRPTv1;", rua, &n), -1);
	assert_int_equal(tlsrpt_txt_parse("rua=mailto:a@b; v=TLSRPTv1", rua,
	    &n), -1);
	assert_int_equal(tlsrpt_txt_parse("v=TLSRPTv1; rua=mailto:a%4@b", rua,
	    &n), 0);
	assert_int_equal(n, 0);                /* a bad escape: skipped */
	assert_int_equal(tlsrpt_txt_parse("v=TLSRPTv1; rua=,", rua, &n), -1);

	char *two[] = { "v=TLSRPTv1; rua=mailto:a@b", "v=TLSRPTv1; "
	    "rua=mailto:c@d" };
	assert_int_equal(tlsrpt_txt_choose(two, 2, rua, &n), -1);
	assert_int_equal(tlsrpt_txt_choose(two, 1, rua, &n), 0);
}

static void
test_book_and_report(void **state)
{
	(void)state;
	struct tlsrpt_book *b = tlsrpt_book_new(2);
	struct tlsrpt_session s = { "Example.test", TLSRPT_STS,
		"version: STSv1\nmode: enforce\nmx: mx.example.test\n"
		"max_age: 60", "mx.example.test", "192.0.2.1", true, NULL };

	assert_true(tlsrpt_count(b, &s));
	assert_true(tlsrpt_count(b, &s));
	s.success = false;
	s.result_type = "certificate-expired";
	assert_true(tlsrpt_count(b, &s));
	assert_true(tlsrpt_count(b, &s));
	s.type = TLSRPT_TLSA;
	s.policy = "3 1 1 abcd";
	s.result_type = "validation-failure";
	assert_true(tlsrpt_count(b, &s));
	/* full: a third entry is not taken */
	struct tlsrpt_session o = s;
	o.domain = "other.test";
	assert_false(tlsrpt_count(b, &o));
	assert_int_equal(tlsrpt_book_len(b), 2);
	assert_string_equal(tlsrpt_book_domain(b, 0), "example.test");

	char *text = tlsrpt_report_json(b, 0, "mx.test", "postmaster@mx.test",
	    "r1", 86400, 2 * 86400);
	json_error_t e;
	json_t *r = json_loads(text, 0, &e);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r,
	    "report-id")), "r1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "date-range"), "start-datetime")), "1970-01-02T00:00:00Z");
	json_t *pols = json_object_get(r, "policies");
	assert_int_equal(json_array_size(pols), 2);   /* sts and tlsa */
	json_t *sts = json_array_get(pols, 0);
	json_t *sum = json_object_get(sts, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum,
	    "total-successful-session-count")), 2);
	assert_int_equal(json_integer_value(json_object_get(sum,
	    "total-failure-session-count")), 2);
	json_t *fd = json_array_get(json_object_get(sts, "failure-details"),
	    0);
	assert_int_equal(json_integer_value(json_object_get(fd,
	    "failed-session-count")), 2);
	assert_string_equal(json_string_value(json_object_get(fd,
	    "result-type")), "certificate-expired");
	json_t *ps = json_object_get(json_object_get(sts, "policy"),
	    "policy-string");
	assert_int_equal(json_array_size(ps), 4);
	assert_string_equal(json_string_value(json_array_get(ps, 1)),
	    "mode: enforce");
	json_decref(r);
	free(text);
	tlsrpt_book_free(b);
}

static void
test_message(void **state)
{
	static const unsigned char gz[100] = { 0x1f, 0x8b };
	struct tlsrpt_message m = { "postmaster@mx.test", "r@example.test",
		"example.test", "mx.test", "r1", "r1@mx.test", 0, 86400, 0,
		gz, sizeof(gz) };
	struct buf b;
	(void)state;

	buf_init(&b);
	tlsrpt_message_build(&b, &m);
	buf_append_char(&b, '\0');
	assert_non_null(strstr(b.data, "Subject: Report Domain: example.test "
	    "Submitter: mx.test Report-ID: <r1>\n"));
	assert_non_null(strstr(b.data, "TLS-Report-Domain: example.test\n"));
	assert_non_null(strstr(b.data, "report-type=\"tlsrpt\""));
	assert_non_null(strstr(b.data, "filename=\"mx.test!example.test!0!"
	    "86400!r1.json.gz\""));
	/* 100 octets: 57 and 43, two base64 lines */
	assert_non_null(strstr(b.data, "\nH4s"));
	assert_null(strstr(b.data, "\r"));
	buf_clear(&b);
}

static void
test_save_and_restore(void **state)
{
	(void)state;
	struct tlsrpt_book *b = tlsrpt_book_new(0), *c = tlsrpt_book_new(0);
	struct tlsrpt_session s = { "example.test", TLSRPT_STS,
		"version: STSv1\nmode: enforce", "mx.example.test",
		"192.0.2.1", true, NULL };
	size_t i;

	assert_true(tlsrpt_count_at(b, &s, &i));
	assert_int_equal(i, 0);
	s.success = false;
	s.result_type = "certificate-expired";
	s.receiving_ip = NULL;
	assert_true(tlsrpt_count_at(b, &s, &i));
	s.type = TLSRPT_TLSA;
	s.policy = "3 1 1 ab\"cd";
	assert_true(tlsrpt_count_at(b, &s, &i));
	assert_int_equal(i, 1);
	/* each entry read back into another book: the same report */
	for (size_t k = 0; k < 2; k++) {
		char *line = tlsrpt_entry_save(b, k);
		assert_non_null(line);
		assert_null(strchr(line, '\n'));
		assert_int_equal(tlsrpt_entry_restore(c, line), 0);
		/* the same (domain, type) twice: refused */
		assert_int_equal(tlsrpt_entry_restore(c, line), -1);
		char *again = tlsrpt_entry_save(c, k);
		assert_string_equal(line, again);
		free(line);
		free(again);
	}
	char *r1 = tlsrpt_report_json(b, 0, "h", "p@h", "id", 0, 86400);
	char *r2 = tlsrpt_report_json(c, 0, "h", "p@h", "id", 0, 86400);
	assert_string_equal(r1, r2);
	free(r1);
	free(r2);
	assert_null(tlsrpt_entry_save(b, 2));
	/* lines that are not entries */
	static const char *const bad[] = { "", "[]", "{}", "not json",
		"{\"domain\":\"\",\"type\":\"sts\",\"policy\":null,"
		"\"mx\":[],\"ok\":0,\"failed\":0,\"failures\":[]}",
		"{\"domain\":\"a.test\",\"type\":\"dane\",\"policy\":null,"
		"\"mx\":[],\"ok\":0,\"failed\":0,\"failures\":[]}",
		"{\"domain\":\"a.test\",\"type\":\"sts\",\"policy\":null,"
		"\"mx\":[],\"ok\":-1,\"failed\":0,\"failures\":[]}",
		"{\"domain\":\"a.test\",\"type\":\"sts\",\"policy\":null,"
		"\"mx\":[],\"ok\":0,\"failed\":1,\"failures\":[[\"x\"]]}",
		"{\"domain\":\"a\\u0000b\",\"type\":\"sts\",\"policy\":"
		"null,\"mx\":[],\"ok\":0,\"failed\":0,\"failures\":[]}",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(tlsrpt_entry_restore(c, bad[k]), -1);
	assert_int_equal(tlsrpt_book_len(c), 2);
	assert_int_equal(tlsrpt_entry_restore(c, "{\"domain\":\"A.test\","
	    "\"type\":\"tlsa\",\"policy\":null,\"mx\":[\"m\"],\"ok\":3,"
	    "\"failed\":1,\"failures\":[[\"starttls-not-supported\",null,"
	    "\"::1\",1]]}"), 0);
	assert_string_equal(tlsrpt_book_domain(c, 2), "a.test");
	tlsrpt_book_free(b);
	tlsrpt_book_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_book_and_report),
		cmocka_unit_test(test_save_and_restore),
		cmocka_unit_test(test_message),
	};
	return cmocka_run_group_tests_name("tlsrpt", tests, NULL, NULL);
}
