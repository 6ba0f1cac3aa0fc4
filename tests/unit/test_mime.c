/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for mail/mime.c: BODYSTRUCTURE and ENVELOPE of stored (LF)
 * messages, golden strings in the form RFC 9051 7.5.2 gives, sizes as
 * CRLF text, section lookup, and transfer encodings undone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mail/mime.h"

static char *
bodystructure(const char *msg, bool ext)
{
	struct mime_part *p = mime_parse(msg, strlen(msg));
	struct buf b;

	buf_init(&b);
	mime_write_bodystructure(&b, msg, p, ext);
	mime_free(p);
	return buf_steal(&b, NULL);
}

static void
test_simple(void **state)
{
	static const char msg[] = "From: a@x.test\nSubject: hi\n\nline 1\nline 2\n";
	char *s;

	(void)state;
	s = bodystructure(msg, false);
	/* 14 octets as CRLF text, 2 lines */
	assert_string_equal(s, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") "
	    "NIL NIL \"7BIT\" 16 2)");
	free(s);
	s = bodystructure(msg, true);
	assert_string_equal(s, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") "
	    "NIL NIL \"7BIT\" 16 2 NIL NIL NIL NIL)");
	free(s);
}

static void
test_multipart(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=\"=b=\"\n\n"
	    "preamble\n"
	    "--=b=\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n"
	    "caf=C3=A9\n"
	    "--=b=\n"
	    "Content-Type: application/pdf; name=\"a b.pdf\"\n"
	    "Content-Disposition: attachment; filename=\"a b.pdf\"\n"
	    "Content-Transfer-Encoding: base64\n\n"
	    "JVBERi0=\n"
	    "--=b=\n"
	    "Content-Type: message/rfc822\n\n"
	    "From: Bob <b@y.test>\nSubject: inner\n\nhello\n"
	    "--=b=--\n"
	    "epilogue\n";
	struct mime_part *p = mime_parse(msg, strlen(msg));
	struct buf b;

	(void)state;
	assert_int_equal(p->nchildren, 3);
	buf_init(&b);
	mime_write_bodystructure(&b, msg, p, false);
	assert_string_equal(b.data,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"QUOTED-PRINTABLE\" 9 1)"
	    "(\"APPLICATION\" \"PDF\" (\"NAME\" \"a b.pdf\") NIL NIL \"BASE64\" 8)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 45 "
	    "(NIL \"inner\" ((\"Bob\" NIL \"b\" \"y.test\")) "
	    "((\"Bob\" NIL \"b\" \"y.test\")) ((\"Bob\" NIL \"b\" \"y.test\")) "
	    "NIL NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1) 4)"
	    " \"MIXED\")");
	buf_reset(&b);
	mime_write_bodystructure(&b, msg, p, true);
	assert_non_null(strstr(b.data, "(\"ATTACHMENT\" (\"FILENAME\" \"a b.pdf\"))"));
	assert_non_null(strstr(b.data, " \"MIXED\" (\"BOUNDARY\" \"=b=\") NIL NIL NIL)"));
	/* sections */
	const struct mime_part *q = mime_find_part(p, "2");
	assert_string_equal(q->subtype, "pdf");
	q = mime_find_part(p, "3.1");
	assert_string_equal(q->type, "text");
	assert_int_equal(q->body_len, 5);
	assert_null(mime_find_part(p, "4"));
	assert_null(mime_find_part(p, "1.2"));
	assert_null(mime_find_part(p, "0"));
	assert_ptr_equal(mime_find_part(p, "1.1"), mime_find_part(p, "1"));
	buf_clear(&b);
	mime_free(p);
}

static void
test_envelope(void **state)
{
	static const char hdr[] =
	    "Date: Tue, 1 Dec 2026 21:00:00 +0000\n"
	    "From: \"Liddell, Alice\" <alice@x.test>\n"
	    "Subject: a \"quoted\"\n word\n"
	    "To: b@y.test, Carl <c@z.test>\n"
	    "Message-ID: <1@x.test>\n\n";
	struct buf b;

	(void)state;
	buf_init(&b);
	mime_write_envelope(&b, hdr, strlen(hdr));
	assert_string_equal(b.data,
	    "(\"Tue, 1 Dec 2026 21:00:00 +0000\" \"a \\\"quoted\\\" word\" "
	    "((\"Liddell, Alice\" NIL \"alice\" \"x.test\")) "
	    "((\"Liddell, Alice\" NIL \"alice\" \"x.test\")) "
	    "((\"Liddell, Alice\" NIL \"alice\" \"x.test\")) "
	    "((NIL NIL \"b\" \"y.test\")(\"Carl\" NIL \"c\" \"z.test\")) "
	    "NIL NIL NIL \"<1@x.test>\")");
	buf_clear(&b);
}

static void
test_broken(void **state)
{
	/* no closing delimiter, a boundary that is only a prefix, deep nesting */
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\n\nfirst\n--bb\nnot a delimiter\n--b\n\nlast, unclosed\n";
	struct mime_part *p = mime_parse(msg, strlen(msg));
	struct buf b;

	(void)state;
	assert_int_equal(p->nchildren, 2);
	buf_init(&b);
	for (int i = 0; i < 50; i++)
		buf_append_str(&b, "Content-Type: message/rfc822\n\n");
	buf_append_str(&b, "x\n");
	struct mime_part *d = mime_parse(b.data, b.len);
	struct buf out;
	buf_init(&out);
	mime_write_bodystructure(&out, b.data, d, true);  /* bounded, no crash */
	assert_true(out.len > 0);
	mime_free(d);
	buf_clear(&out);
	buf_clear(&b);
	mime_free(p);
	assert_int_equal(mime_crlf_size("a\nb\n", 4), 6);
}

static void
expect_decoded(const char *enc, const char *in, const char *want,
    size_t wantlen)
{
	struct buf b;

	buf_init(&b);
	assert_int_equal(mime_decode(enc, in, strlen(in), &b), 0);
	assert_int_equal(b.len, wantlen);
	assert_memory_equal(b.len ? b.data : "", want, wantlen);
	buf_clear(&b);
}

static void
test_decode(void **state)
{
	struct buf b;

	(void)state;
	/* base64: line breaks and junk skipped, '=' ends, NULs kept */
	expect_decoded("base64", "AAEC\nA/8A\r\naGVs bG8=\nIGlnbm9yZWQ=",
	    "\0\1\2\3\377\0hello", 11);
	expect_decoded(" Base64 (a comment)", "aGk=", "hi", 2);
	expect_decoded("base64", "", "", 0);
	/* quoted-printable: escapes, soft breaks, trailing blanks, CRLF */
	expect_decoded("quoted-printable", "a=3Db=3d \t\nsoft=\nline\n"
	    "=XYz=\n=4", "a=b=\r\nsoftline\r\n=XYz=4", 22);
	expect_decoded("QUOTED-PRINTABLE", "no newline", "no newline", 10);
	/* identities, in CRLF form */
	expect_decoded(NULL, "a\nb", "a\r\nb", 4);
	expect_decoded("8bit", "\xc3\xa9\n", "\xc3\xa9\r\n", 4);
	expect_decoded("binary", "x", "x", 1);
	buf_init(&b);
	assert_int_equal(mime_decode("x-uuencode", "begin", 5, &b), -1);
	assert_int_equal(b.len, 0);
	/* a part of a message, and a multipart as it is */
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Transfer-Encoding: base64\n\naGk=\n--b--\n";
	struct mime_part *p = mime_parse(msg, strlen(msg));
	assert_int_equal(mime_decode_part(msg, &p->children[0], &b), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "hi", 2);
	buf_reset(&b);
	assert_int_equal(mime_decode_part(msg, p, &b), 0);
	assert_true(b.len > 10);
	mime_free(p);
	buf_clear(&b);
}

static char *
words(const char *v)
{
	struct buf b;

	buf_init(&b);
	mime_decode_words(v, strlen(v), &b);
	buf_append_char(&b, '\0');
	return buf_steal(&b, NULL);
}

static void
test_search_text(void **state)
{
	char *w;

	(void)state;
	/* RFC 2047: B and Q, blanks between words dropped, Latin-1 made
	 * UTF-8, broken words kept as text, folding unfolded */
	w = words("=?utf-8?q?Caf=C3=A9_menu?= =?UTF-8?B?Z3LDvMOfZQ==?= !");
	assert_string_equal(w, "Caf\xc3\xa9 menugr\xc3\xbc\xc3\x9f" "e !");
	free(w);
	w = words("=?iso-8859-1?q?caf=E9?=\n\tand =?x?y?z?= =?utf-8?q?open");
	assert_string_equal(w, "caf\xc3\xa9 and =?x?y?z?= =?utf-8?q?open");
	free(w);
	w = words("=?utf-8*en?q?a?=");
	assert_string_equal(w, "a");
	free(w);
	/* text parts decoded, attachments left out, enclosed messages in */
	static const char msg[] =
	    "Subject: =?utf-8?q?hi_there?=\n"
	    "Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n"
	    "--b\nContent-Type: image/png\n\nPNGDATA\n"
	    "--b\nContent-Type: message/rfc822\n\n"
	    "Subject: inner\n\ninner text\n"
	    "--b\nContent-Type: text/plain; charset=latin1\n\ncaf\xe9\n"
	    "--b--\n";
	struct mime_part *p = mime_parse(msg, strlen(msg));
	struct buf h, b;
	buf_init(&h);
	buf_init(&b);
	mime_search_text(msg, p, &h, &b, 1 << 20);
	buf_append_char(&h, '\0');
	buf_append_char(&b, '\0');
	assert_non_null(strstr(h.data, "Subject: hi there\n"));
	assert_non_null(strstr(b.data, "hello"));
	assert_null(strstr(b.data, "PNGDATA"));
	assert_non_null(strstr(b.data, "Subject: inner"));
	assert_non_null(strstr(b.data, "inner text"));
	assert_non_null(strstr(b.data, "caf\xc3\xa9"));
	buf_reset(&b);
	mime_search_text(msg, p, &h, &b, 3);    /* bounded */
	assert_true(b.len <= 4);
	mime_free(p);
	buf_clear(&h);
	buf_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_search_text),
	};
	return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
