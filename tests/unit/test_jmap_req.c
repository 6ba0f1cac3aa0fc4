/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for http/jmap_req.c and http/jmap_email.c: requests read as
 * strict I-JSON (one row per refusal), result references, JSON Pointer
 * with "*", Ids, and Email properties from message bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/jmap_body.h"
#include "http/jmap_email.h"
#include "http/jmap_req.h"
#include "http/jmap_state.h"

static enum jmap_req_status
req(const char *text)
{
	struct jmap_request r;
	char why[256];
	enum jmap_req_status st = jmap_request_parse(text, strlen(text), &r,
	    why, sizeof(why));

	jmap_request_clear(&r);
	return st;
}

static void
test_request(void **state)
{
	struct jmap_request r;
	char why[256];
	const char *ok = "{\"using\":[\"urn:ietf:params:jmap:core\"],"
	    "\"methodCalls\":[[\"Core/echo\",{\"a\":1},\"c1\"]],"
	    "\"createdIds\":{\"k\":\"Mx\"}}";

	(void)state;
	assert_int_equal(jmap_request_parse(ok, strlen(ok), &r, why,
	    sizeof(why)), JMAP_REQ_OK);
	assert_int_equal(r.nusing, 1);
	assert_int_equal(r.ncalls, 1);
	assert_string_equal(r.calls[0].name, "Core/echo");
	assert_string_equal(r.calls[0].id, "c1");
	jmap_request_clear(&r);
	static const struct {
		const char *name, *text;
		enum jmap_req_status st;
	} rows[] = {
		{ "not json", "{", JMAP_REQ_NOT_JSON },
		{ "duplicate key", "{\"using\":[],\"using\":[],"
		    "\"methodCalls\":[]}", JMAP_REQ_NOT_JSON },
		{ "invalid utf-8", "{\"using\":[\"\xff\"],\"methodCalls\":[]}",
		    JMAP_REQ_NOT_JSON },
		{ "lone surrogate", "{\"using\":[\"\\ud800\"],"
		    "\"methodCalls\":[]}", JMAP_REQ_NOT_JSON },
		{ "nan", "{\"using\":[],\"methodCalls\":[],\"x\":NaN}",
		    JMAP_REQ_NOT_JSON },
		{ "nul escape", "{\"using\":[\"a\\u0000\"],\"methodCalls\":[]}",
		    JMAP_REQ_NOT_JSON },
		{ "beyond 2^53", "{\"using\":[],\"methodCalls\":[[\"a\","
		    "{\"n\":9007199254740993},\"c\"]]}", JMAP_REQ_NOT_JSON },
		{ "array", "[]", JMAP_REQ_NOT_REQUEST },
		{ "no using", "{\"methodCalls\":[]}", JMAP_REQ_NOT_REQUEST },
		{ "unknown key", "{\"using\":[],\"methodCalls\":[],\"x\":1}",
		    JMAP_REQ_NOT_REQUEST },
		{ "call of two", "{\"using\":[],\"methodCalls\":[[\"a\",{}]]}",
		    JMAP_REQ_NOT_REQUEST },
		{ "args not object", "{\"using\":[],\"methodCalls\":"
		    "[[\"a\",[],\"c\"]]}", JMAP_REQ_NOT_REQUEST },
		{ "created id bad", "{\"using\":[],\"methodCalls\":[],"
		    "\"createdIds\":{\"a\":\"b c\"}}", JMAP_REQ_NOT_REQUEST },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum jmap_req_status st = req(rows[i].text);
		if (st != rows[i].st)
			fail_msg("%s: status %d", rows[i].name, st);
	}
	/* nesting: 64 levels is I-JSON for us, 65 is not */
	char deep[400];
	size_t n = 0;
	n += (size_t)snprintf(deep + n, sizeof(deep) - n,
	    "{\"using\":[],\"methodCalls\":[[\"a\",");
	for (int i = 0; i < 63; i++)
		deep[n++] = '[';
	for (int i = 0; i < 63; i++)
		deep[n++] = ']';
	(void)snprintf(deep + n, sizeof(deep) - n, ",\"c\"]]}");
	assert_int_equal(req(deep), JMAP_REQ_NOT_JSON);
	/* too many calls */
	struct buf b;
	buf_init(&b);
	buf_append_str(&b, "{\"using\":[],\"methodCalls\":[");
	for (int i = 0; i <= JMAP_CALLS_MAX; i++)
		buf_printf(&b, "%s[\"a\",{},\"c\"]", i ? "," : "");
	buf_append_str(&b, "]}");
	assert_int_equal(req(b.data), JMAP_REQ_LIMIT);
	buf_clear(&b);
}

static void
test_pointer(void **state)
{
	json_t *doc = json_loads("{\"list\":[{\"id\":\"a\",\"t\":[\"x\",\"y\"]},"
	    "{\"id\":\"b\",\"t\":[\"z\"]}],\"a/b\":1,\"m~n\":2}", 0, NULL);
	json_t *v;
	char *s;

	(void)state;
	v = jmap_pointer_eval(doc, "/list/*/id");
	s = json_dumps(v, JSON_COMPACT);
	assert_string_equal(s, "[\"a\",\"b\"]");
	free(s);
	json_decref(v);
	v = jmap_pointer_eval(doc, "/list/*/t");    /* arrays concatenated */
	s = json_dumps(v, JSON_COMPACT);
	assert_string_equal(s, "[\"x\",\"y\",\"z\"]");
	free(s);
	json_decref(v);
	v = jmap_pointer_eval(doc, "/list/1/id");
	assert_string_equal(json_string_value(v), "b");
	json_decref(v);
	v = jmap_pointer_eval(doc, "/a~1b");
	assert_int_equal(json_integer_value(v), 1);
	json_decref(v);
	v = jmap_pointer_eval(doc, "/m~0n");
	assert_int_equal(json_integer_value(v), 2);
	json_decref(v);
	assert_null(jmap_pointer_eval(doc, "/list/2"));
	assert_null(jmap_pointer_eval(doc, "/list/01"));
	assert_null(jmap_pointer_eval(doc, "/nope"));
	assert_null(jmap_pointer_eval(doc, "list"));
	assert_null(jmap_pointer_eval(doc, "/a~2b"));
	json_decref(doc);
}

static void
test_refs(void **state)
{
	json_t *resp = json_loads("[[\"Email/query\",{\"ids\":[\"M1\",\"M2\"]},"
	    "\"q\"]]", 0, NULL);
	json_t *args = json_loads("{\"accountId\":\"A\",\"#ids\":{\"resultOf\":"
	    "\"q\",\"name\":\"Email/query\",\"path\":\"/ids\"}}", 0, NULL);
	const char *type;
	char desc[200];
	json_t *out;

	(void)state;
	out = jmap_resolve_refs(args, resp, &type, desc, sizeof(desc));
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "ids")), 2);
	assert_null(json_object_get(out, "#ids"));
	json_decref(out);
	json_decref(args);
	/* the wrong method name, a missing path, both #x and x */
	static const char *const bad[][2] = {
		{ "{\"#ids\":{\"resultOf\":\"q\",\"name\":\"Email/get\","
		    "\"path\":\"/ids\"}}", "invalidResultReference" },
		{ "{\"#ids\":{\"resultOf\":\"q\",\"name\":\"Email/query\","
		    "\"path\":\"/nope\"}}", "invalidResultReference" },
		{ "{\"#ids\":{\"resultOf\":\"zz\",\"name\":\"Email/query\","
		    "\"path\":\"/ids\"}}", "invalidResultReference" },
		{ "{\"#ids\":1}", "invalidResultReference" },
		{ "{\"ids\":[],\"#ids\":{\"resultOf\":\"q\",\"name\":"
		    "\"Email/query\",\"path\":\"/ids\"}}", "invalidArguments" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		args = json_loads(bad[i][0], 0, NULL);
		assert_null(jmap_resolve_refs(args, resp, &type, desc,
		    sizeof(desc)));
		assert_string_equal(type, bad[i][1]);
		json_decref(args);
	}
	json_decref(resp);
	assert_true(jmap_is_id("Mabc-_9"));
	assert_false(jmap_is_id(""));
	assert_false(jmap_is_id("a b"));
	assert_false(jmap_is_id("a/b"));
}

static void
test_email(void **state)
{
	static const char msg[] =
	    "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\n"
	    "To: a@b.example, \"Bee, C\" <c@d.example>\n"
	    "Subject: =?iso-8859-1?q?caf=E9?=\n"
	    " folded\n"
	    "Message-ID: <1@x.example>\n"
	    "References: <0@x.example> <00@x.example>\n"
	    "Date: Tue, 1 Dec 2026 10:00:00 +0100\n"
	    "Content-Type: multipart/mixed; boundary=b\n"
	    "\n"
	    "--b\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "Hello   there,\n\n  friend\xff\n"
	    "--b\n"
	    "Content-Type: application/pdf\n"
	    "Content-Disposition: attachment; filename=x.pdf\n"
	    "\n"
	    "PDF\n"
	    "--b--\n";
	json_t *o = json_object();
	char *s;

	(void)state;
	jmap_email_props(o, msg, sizeof(msg) - 1, JE_FROM | JE_TO | JE_CC |
	    JE_SUBJECT | JE_MESSAGE_ID | JE_REFERENCES | JE_IN_REPLY_TO |
	    JE_SENT_AT | JE_HAS_ATTACHMENT | JE_PREVIEW);
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"cc\":null,"
	    "\"from\":[{\"email\":\"jorg@example.org\",\"name\":\"J\xc3\xb6rg\"}],"
	    "\"hasAttachment\":true,\"inReplyTo\":null,"
	    "\"messageId\":[\"1@x.example\"],"
	    "\"preview\":\"Hello there, friend\xef\xbf\xbd\","
	    "\"references\":[\"0@x.example\",\"00@x.example\"],"
	    "\"sentAt\":\"2026-12-01T09:00:00Z\","
	    "\"subject\":\"caf\xc3\xa9 folded\","
	    "\"to\":[{\"email\":\"a@b.example\",\"name\":null},"
	    "{\"email\":\"c@d.example\",\"name\":\"Bee, C\"}]}");
	free(s);
	json_decref(o);
	char d[21];
	jmap_utc_date(0, d);
	assert_string_equal(d, "1970-01-01T00:00:00Z");
	jmap_utc_date(1796190394, d);
	assert_string_equal(d, "2026-12-02T05:46:34Z");
	/* an HTML preview: no script or style text, blocks part words */
	static const char html[] = "Content-Type: text/html\n\n"
	    "<style>p{}</style><p>One</p><p>two <b>three</b>.<br>four"
	    "<script>alert(1)</script><SCRIPT>x</SCRIPT></p>";
	o = json_object();
	jmap_email_props(o, html, sizeof(html) - 1, JE_PREVIEW);
	assert_string_equal(json_string_value(json_object_get(o, "preview")),
	    "One two three. four");
	json_decref(o);
	assert_int_equal(jmap_email_prop_bit("subject"), JE_SUBJECT);
	assert_int_equal(jmap_email_prop_bit("id"), 0);
}

/* The partIds of list key of obj, joined by spaces. */
static void
part_ids(json_t *obj, const char *key, char *out, size_t outsz)
{
	size_t i;
	json_t *p;

	out[0] = '\0';
	json_array_foreach(json_object_get(obj, key), i, p) {
		size_t n = strlen(out);
		(void)snprintf(out + n, outsz - n, "%s%s", n ? " " : "",
		    json_string_value(json_object_get(p, "partId")));
	}
}

static void
test_body(void **state)
{
	/* RFC 8621 4.1.4's example shape, cut down: mixed(alt(plain, html),
	 * inline image, plain, attachment) */
	static const char msg[] =
	    "Subject: x\n"
	    "Content-Type: multipart/mixed; boundary=a\n\n"
	    "--a\nContent-Type: multipart/alternative; boundary=b\n\n"
	    "--b\nContent-Type: text/plain\n\nplain one\n"
	    "--b\nContent-Type: text/html\n\n<p>html one</p>\n"
	    "--b--\n"
	    "--a\nContent-Type: image/png\nContent-Disposition: inline\n"
	    "Content-Transfer-Encoding: base64\n\niVBORw==\n"
	    "--a\nContent-Type: text/plain; charset=iso-8859-1\n"
	    "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9\n"
	    "--a\nContent-Type: application/zip; name=\"z.zip\"\n\nPK\n"
	    "--a--\n";
	struct jmap_body_opts o = { "M1", NULL, true, true, false, 0 };
	json_t *obj = json_object();
	char ids[200], blob[JMAP_BLOB_LEN], eid[40], part[JMAP_PART_LEN];

	(void)state;
	jmap_email_body(obj, msg, sizeof(msg) - 1, JB_STRUCTURE | JB_TEXT |
	    JB_HTML | JB_ATTACHMENTS | JB_VALUES, &o);
	part_ids(obj, "textBody", ids, sizeof(ids));
	assert_string_equal(ids, "1.1 2 3");
	part_ids(obj, "htmlBody", ids, sizeof(ids));
	assert_string_equal(ids, "1.2 2 3");
	part_ids(obj, "attachments", ids, sizeof(ids));
	assert_string_equal(ids, "4");
	json_t *v = json_object_get(obj, "bodyValues");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    v, "3"), "value")), "caf\xc3\xa9");
	assert_non_null(json_object_get(v, "1.2"));
	json_t *img = json_array_get(json_object_get(obj, "textBody"), 1);
	assert_int_equal(json_integer_value(json_object_get(img, "size")), 4);
	assert_string_equal(json_string_value(json_object_get(img, "blobId")),
	    "PM1_2");
	json_decref(obj);
	jmap_part_blob_id("Mab", "1.2", blob);
	assert_string_equal(blob, "PMab_1-2");
	assert_true(jmap_part_blob_parse(blob, eid, sizeof(eid), part));
	assert_string_equal(eid, "Mab");
	assert_string_equal(part, "1.2");
	assert_false(jmap_part_blob_parse("PMab_1/2", eid, sizeof(eid), part));
	assert_false(jmap_part_blob_parse("Mab", eid, sizeof(eid), part));

	/* a plain message: its body is part 1 in both lists */
	obj = json_object();
	jmap_email_body(obj, "Subject: y\n\nhi\n", 15, JB_TEXT | JB_HTML, &o);
	part_ids(obj, "textBody", ids, sizeof(ids));
	assert_string_equal(ids, "1");
	part_ids(obj, "htmlBody", ids, sizeof(ids));
	assert_string_equal(ids, "1");
	json_decref(obj);

	assert_true(jmap_header_prop_valid("header:Subject"));
	assert_true(jmap_header_prop_valid("header:To:asAddresses:all"));
	assert_true(jmap_header_prop_valid("header:X:all"));
	assert_false(jmap_header_prop_valid("header:To:asNothing"));
	assert_false(jmap_header_prop_valid("header::asText"));
	assert_false(jmap_header_prop_valid("header:A B"));
}

static void
test_build(void **state)
{
	json_error_t e;
	json_t *c = json_loads("{\"from\":[{\"name\":\"J\u00f6rg\","
	    "\"email\":\"j@x.example\"}],\"to\":[{\"name\":\"Bee, C\","
	    "\"email\":\"c@x.example\"}],\"subject\":\"caf\u00e9 ok\","
	    "\"sentAt\":\"2026-12-02T10:00:00+01:00\","
	    "\"textBody\":[{\"partId\":\"t\"}],"
	    "\"bodyValues\":{\"t\":{\"value\":\"na\u00efve =\\n\"}},"
	    "\"attachments\":[{\"blobId\":\"B1\",\"name\":\"a.txt\"}]}",
	    0, &e);
	struct jmap_blob b = { "B1", "data", 4, "text/plain" };
	struct buf out;
	const char *bad;
	char why[200];

	(void)state;
	assert_non_null(c);
	buf_init(&out);
	assert_int_equal(jmap_email_build(c, "D", "m@x", "s", &b, 1, &out, &bad,
	    why, sizeof(why)), 0);
	/* it reads back as what was asked for */
	json_t *o = json_object();
	struct jmap_body_opts opts = { "M", NULL, true, false, false, 0 };
	jmap_email_props(o, out.data, out.len, JE_FROM | JE_TO | JE_SUBJECT |
	    JE_SENT_AT | JE_MESSAGE_ID | JE_HAS_ATTACHMENT);
	jmap_email_body(o, out.data, out.len, JB_VALUES | JB_ATTACHMENTS |
	    JB_TEXT, &opts);
	json_t *from = json_array_get(json_object_get(o, "from"), 0);
	assert_string_equal(json_string_value(json_object_get(from, "name")),
	    "J\xc3\xb6rg");
	json_t *to = json_array_get(json_object_get(o, "to"), 0);
	assert_string_equal(json_string_value(json_object_get(to, "name")),
	    "Bee, C");
	assert_string_equal(json_string_value(json_object_get(o, "subject")),
	    "caf\xc3\xa9 ok");
	assert_string_equal(json_string_value(json_object_get(o, "sentAt")),
	    "2026-12-02T09:00:00Z");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o,
	    "messageId"), 0)), "m@x");
	assert_true(json_is_true(json_object_get(o, "hasAttachment")));
	json_t *t = json_array_get(json_object_get(o, "textBody"), 0);
	const char *pid = json_string_value(json_object_get(t, "partId"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(o, "bodyValues"), pid), "value")),
	    "na\xc3\xafve =\n");
	json_t *a = json_array_get(json_object_get(o, "attachments"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "name")),
	    "a.txt");
	assert_int_equal(json_integer_value(json_object_get(a, "size")), 4);
	json_decref(o);
	buf_clear(&out);

	/* what cannot be made says which property */
	static const struct {
		const char *json, *bad;
	} bads[] = {
		{ "{\"from\":[{\"email\":\"no at\"}]}", "from" },
		{ "{\"to\":[]}", "to" },
		{ "{\"sentAt\":\"yesterday\"}", "sentAt" },
		{ "{\"size\":4}", "size" },
		{ "{\"header:From:asText\":\"x\"}", "header:From:asText" },
		{ "{\"textBody\":[{\"partId\":\"t\"}]}", "bodyValues" },
		{ "{\"attachments\":[{\"blobId\":\"B9\"}]}", "attachments" },
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		json_t *x = json_loads(bads[i].json, 0, &e);
		buf_init(&out);
		assert_int_equal(jmap_email_build(x, "D", "m@x", "s", &b, 1,
		    &out, &bad, why, sizeof(why)), -1);
		assert_string_equal(bad, bads[i].bad);
		buf_clear(&out);
		json_decref(x);
	}
	json_decref(c);
}

/* Snippets: marks, escapes, a window cut between characters. */
static void
test_snippet(void **state)
{
	const char *nd[] = { "fox", "the quick" };
	struct buf out;
	char text[600];

	(void)state;
	buf_init(&out);
	assert_false(jmap_snippet("nothing", 7, nd, 2, true, 50, &out));
	assert_int_equal(out.len, 0);
	const char *t = "The  QUICK\n brown <fox> & the Fox";
	assert_true(jmap_snippet(t, strlen(t), nd, 2, true, 50, &out));
	assert_string_equal(out.data, "<mark>The QUICK</mark> brown "
	    "&lt;<mark>fox</mark>&gt; &amp; the <mark>Fox</mark>");
	/* far in: a window starting a few words before, cut both sides */
	memset(text, 0, sizeof(text));
	for (size_t i = 0; i < 100; i++)
		strcat(text, "\xc3\xa9 ");          /* "é " */
	strcat(text, "fox tail");
	for (size_t i = 0; i < 40; i++)
		strcat(text, " \xc3\xa9");
	buf_reset(&out);
	assert_true(jmap_snippet(text, strlen(text), nd, 1, false, 40, &out));
	assert_true(strncmp(out.data, "...", 3) == 0);
	assert_non_null(strstr(out.data, "<mark>fox</mark> tail"));
	assert_true(out.len > 6 &&
	    strcmp(out.data + out.len - 3, "...") == 0);
	/* every byte before the marks is whole characters */
	for (const char *p = out.data + 3; *p && *p != '<'; p++)
		if ((unsigned char)*p == 0xc3)
			assert_true((unsigned char)p[1] == 0xa9);
	buf_clear(&out);
}

/* State strings: written sorted, read back; anything else refused. */
static void
test_state(void **state)
{
	struct jstate_ent in[3] = { { "Fzz", 36, 1 }, { "Fa1", 0, 35 },
		{ "F09", UINT64_MAX >> 1, 4294967296ull } };
	struct jstate_ent *e;
	struct buf out;
	size_t n;

	(void)state;
	buf_init(&out);
	jstate_format('e', in, 3, &out);
	assert_string_equal(out.data,
	    "eF09.1y2p0ij32e8e7.1z141z4_Fa1.0.z_Fzz.10.1");
	assert_int_equal(jstate_parse('e', out.data, &e, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(e[0].id, "F09");
	assert_true(e[0].modseq == UINT64_MAX >> 1);
	assert_true(e[0].extra == 4294967296ull);
	assert_true(e[2].modseq == 36 && e[2].extra == 1);
	assert_ptr_equal(jstate_find(e, n, "Fa1"), &e[1]);
	assert_null(jstate_find(e, n, "Fa2"));
	free(e);
	/* a Mailbox state is not an Email state */
	assert_int_equal(jstate_parse('m', out.data, &e, &n), -1);
	assert_int_equal(jstate_parse('e', "e", &e, &n), 0);
	assert_int_equal(n, 0);
	free(e);
	static const char *const bad[] = { "", "e_", "eFa", "eFa.", "eFa.1",
		"eFa.1.", "eFa.1.1_", "eFa.1.1_Fa.1.1", "eFb.1.1_Fa.1.1",
		"eFa.01.1", "eFa.1.1/", "eF-a.1.1", "eFa.A.1",
		"eFa.zzzzzzzzzzzzzz.1", "eFa.1.1__Fb.1.1", NULL };
	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(jstate_parse('e', bad[i], &e, &n), -1);
		assert_null(e);
		assert_int_equal(n, 0);
	}
	buf_clear(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_pointer),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_email),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_snippet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
