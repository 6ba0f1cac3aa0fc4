/* SPDX-License-Identifier: ISC */
/* Unit tests for ternmail's pure helpers: text.c (safety, HTML, widths),
 * tmconfig_parse(), and the reply/forward subject and quoting rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <locale.h>

#include "compose.h"
#include "text.h"
#include "tmconfig.h"

static char *
run_html(const char *in)
{
	struct buf b;

	buf_init(&b);
	html_to_text(&b, in, strlen(in));
	buf_append_char(&b, '\0');
	return buf_steal(&b, NULL);
}

static void
test_sanitize(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	text_sanitize(&b, "a\x1b[31mb\r\n\xc2\x9b\xff\tc", 14, true);
	buf_append_char(&b, '\0');
	/* ESC, CR and the C1 CSI dropped; the invalid byte is U+FFFD */
	assert_string_equal(b.data, "a[31mb\n\xef\xbf\xbd\tc");
	buf_reset(&b);
	text_sanitize(&b, "x\ny", 3, false);
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "x y");
	buf_clear(&b);
	assert_true(utf8_valid("h\xc3\xa9", 3));
	assert_false(utf8_valid("\xc0\xaf", 2));        /* overlong '/' */
	assert_false(utf8_valid("\xed\xa0\x80", 3));    /* surrogate */
}

static void
test_html(void **state)
{
	char *t;
	(void)state;
	t = run_html("<html><head><title>x</title><style>p{}</style></head>"
	    "<body><h1>Title</h1><p>One&nbsp;&amp;&#x41;&#66;</p>"
	    "<script>alert('<p>')</script><ul><li>a</li><li>b</li></ul>"
	    "<a href=\"https://e.org/\">link</a><!-- <p>hidden --></body>");
	assert_string_equal(t, "Title\n\nOne &AB\n\n* a\n* b\n\n"
	    "link <https://e.org/>\n");
	free(t);
	t = run_html("a <b>bold</b>   c<br>d &bogus; <");
	assert_string_equal(t, "a bold c\nd &bogus; <\n");
	free(t);
	t = run_html("<p unclosed");
	assert_string_equal(t, "");
	free(t);
	t = run_html("&#0;&#xD800;&#99999999;");
	assert_string_equal(t, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\n");
	free(t);
}

static void
test_fit(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	text_fit(&b, "hello world", 8, true);
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "hello w\xe2\x80\xa6");
	buf_reset(&b);
	text_fit(&b, "ab", 4, true);
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "ab  ");
	buf_reset(&b);
	/* wide characters: two columns each */
	text_fit(&b, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 5, false);
	buf_append_char(&b, '\0');
	assert_int_equal(text_width(b.data), 5);
	buf_clear(&b);
	assert_int_equal(text_width("\xe6\x97\xa5x"), 3);
}

static void
test_json(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	json_escape(&b, "a\"b\\c\nd\x01");
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "a\\\"b\\\\c\\nd\\u0001");
	buf_clear(&b);
}

static void
test_tmconfig(void **state)
{
	struct tmconfig c;
	char why[200];
	const char *ok = "# settings\nfrom = me@example.org\n"
	    "name = \"A \\\"B\\\" C\" # comment\n  smtp_port=2587  \n";
	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(tmconfig_parse(&c, ok, strlen(ok), why, sizeof(why)),
	    0);
	assert_string_equal(c.v[TM_FROM], "me@example.org");
	assert_string_equal(c.v[TM_NAME], "A \"B\" C");
	assert_string_equal(c.v[TM_SMTP_PORT], "2587");
	assert_string_equal(tmconfig_get(&c, TM_SMTP_HOST, "d"), "d");
	assert_int_equal(tmconfig_parse(&c, "\nbogus = 1\n", 11, why,
	    sizeof(why)), 2);
	assert_non_null(strstr(why, "bogus"));
	assert_int_equal(tmconfig_parse(&c, "from me", 7, why, sizeof(why)), 1);
	assert_int_equal(tmconfig_parse(&c, "name = \"open", 12, why,
	    sizeof(why)), 1);
	assert_int_equal(tmconfig_parse(&c, "name = x\0y", 10, why,
	    sizeof(why)), 1);
	tmconfig_free(&c);
}

static void
test_subjects(void **state)
{
	char *s;
	struct buf b;
	(void)state;
	s = compose_reply_subject("Re: RE: re[2]: Aw: hello");
	assert_string_equal(s, "Re: hello");
	free(s);
	s = compose_reply_subject(NULL);
	assert_string_equal(s, "Re: ");
	free(s);
	s = compose_reply_subject("Regarding x");
	assert_string_equal(s, "Re: Regarding x");
	free(s);
	s = compose_forward_subject("Fwd: x");
	assert_string_equal(s, "Fwd: x");
	free(s);
	s = compose_forward_subject("x");
	assert_string_equal(s, "Fwd: x");
	free(s);
	buf_init(&b);
	compose_quote(&b, "a\n\n> b\nc");
	buf_append_char(&b, '\0');
	assert_string_equal(b.data, "> a\n>\n>> b\n> c\n");
	buf_clear(&b);
	assert_string_equal(compose_mime_type("/x/Report.PDF"),
	    "application/pdf");
	assert_string_equal(compose_mime_type("noext"),
	    "application/octet-stream");
	assert_string_equal(compose_mime_type("a.eml"), "message/rfc822");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_tmconfig),
		cmocka_unit_test(test_subjects),
	};
	setlocale(LC_CTYPE, "C.UTF-8");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
