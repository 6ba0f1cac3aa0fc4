/* SPDX-License-Identifier: ISC */
/* cmocka: mail/sortkeys.c (RFC 5256 base subjects, dates, SORT keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mail/sortkeys.h"

static void
subject(const char *in, const char *want, bool want_reply)
{
	bool reply;
	char *got = sort_base_subject(in, strlen(in), &reply);

	assert_string_equal(got, want);
	assert_int_equal(reply, want_reply);
	free(got);
}

static void
test_base_subject(void **state)
{
	(void)state;
	subject("Weekly report", "weekly report", false);
	subject("Re: Weekly report", "weekly report", true);
	subject("RE: re:  Fwd: Weekly\n report", "weekly report", true);
	subject("[tern-dev] Re: [tern-dev] build fails", "build fails", true);
	subject("Re[2]: parts", "parts", true);
	subject("Fw: the plan (fwd)", "the plan", true);
	subject("[Fwd: Re: the plan]", "the plan", true);
	subject("[only a blob]", "[only a blob]", false);
	subject("   ", "", false);
	subject("Réunion", "réunion", false);   /* bytes past ASCII stay */
}

static void
test_dates(void **state)
{
	(void)state;
	const char *d = "Tue, 01 Dec 2026 10:00:00 +0000";
	int64_t t = sort_parse_date(d, strlen(d));
	assert_int_equal(t, 1796119200);
	d = "1 Dec 2026 11:00 +0100";
	assert_int_equal(sort_parse_date(d, strlen(d)), 1796119200);
	d = "Tue, 1 Dec 26 05:00:00 EST";
	assert_int_equal(sort_parse_date(d, strlen(d)), 1796119200);
	d = "Tue, 01 Dec 2026 10:00:00 +0000 (UTC)";
	assert_int_equal(sort_parse_date(d, strlen(d)), 1796119200);
	d = "yesterday";
	assert_int_equal(sort_parse_date(d, strlen(d)), -1);
	d = "Tue, 41 Dec 2026 10:00:00 +0000";
	assert_int_equal(sort_parse_date(d, strlen(d)), -1);
}

static void
test_keys(void **state)
{
	const char *h =
	    "From: \"Ann Other\" <Ann@Example.ORG>\n"
	    "To: bob@example.net, carol@example.net\n"
	    "Cc: Dave <dave@example.com>\n"
	    "Subject: Re: lunch\n"
	    "Date: Tue, 01 Dec 2026 10:00:00 +0000\n"
	    "Message-ID: <m2@example.org>\n"
	    "In-Reply-To: <m1@example.org>\n"
	    "References: <m0@example.org>\n <m1@example.org> <m0@example.org>\n"
	    "\n";
	struct sort_keys k;

	(void)state;
	sort_keys_parse(h, strlen(h), &k);
	assert_int_equal(k.sent, 1796119200);
	assert_string_equal(k.subject, "lunch");
	assert_true(k.reply);
	assert_string_equal(k.from, "ann");
	assert_string_equal(k.dfrom, "ann other");
	assert_string_equal(k.to, "bob");
	assert_string_equal(k.dto, "bob@example.net");
	assert_string_equal(k.cc, "dave");
	assert_string_equal(k.msgid, "<m2@example.org>");
	assert_int_equal(k.nrefs, 2);
	assert_string_equal(k.refs[0], "<m0@example.org>");
	assert_string_equal(k.refs[1], "<m1@example.org>");
	sort_keys_clear(&k);
	/* In-Reply-To when there is no References; nothing at all */
	h = "In-Reply-To: <x@y> (comment)\n\n";
	sort_keys_parse(h, strlen(h), &k);
	assert_int_equal(k.nrefs, 1);
	assert_string_equal(k.refs[0], "<x@y>");
	assert_int_equal(k.sent, -1);
	assert_string_equal(k.subject, "");
	assert_null(k.from);
	sort_keys_clear(&k);
}

static void
test_ids(void **state)
{
	char a[SORT_ID_LEN], b[SORT_ID_LEN];
	struct sort_keys k;
	const char *h = "Message-ID: <m2@x>\nReferences: <m0@x> <m1@x>\n\n";

	(void)state;
	sort_email_id("1700000000.M1P1.host,S=10", a);
	sort_email_id("1700000000.M1P1.host,S=10", b);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 17);
	assert_int_equal(a[0], 'M');
	sort_email_id("1700000000.M2P1.host,S=10", b);
	assert_string_not_equal(a, b);
	/* the bits back: the hex digits written, one value per id */
	char back[SORT_ID_LEN];
	(void)snprintf(back, sizeof(back), "M%016llx",
	    (unsigned long long)sort_id_bits(a));
	assert_string_equal(back, a);
	assert_true(sort_id_bits(a) != sort_id_bits(b));
	assert_true(sort_id_bits("TFFFFFFFFFFFFFFFF") == UINT64_MAX);
	/* a thread is named after its first reference */
	sort_keys_parse(h, strlen(h), &k);
	sort_thread_id(&k, "x", a);
	sort_keys_clear(&k);
	h = "Message-ID: <m0@x>\n\n";
	sort_keys_parse(h, strlen(h), &k);
	sort_thread_id(&k, "y", b);
	sort_keys_clear(&k);
	assert_string_equal(a, b);
	assert_int_equal(a[0], 'T');
	sort_thread_id(NULL, "y", b);
	assert_string_not_equal(a, b);

	/* part 0 of a root is the id without the index; the other parts
	 * and the other subjects of a root are other threads */
	uint64_t key;
	h = "Message-ID: <m2@x>\nReferences: <m0@x> <m1@x>\n\n";
	sort_keys_parse(h, strlen(h), &k);
	assert_true(sort_thread_root(&k, &key));
	sort_thread_name(key, 0, b);
	assert_string_equal(a, b);
	sort_thread_name(key, 1, b);
	assert_string_not_equal(a, b);
	assert_int_equal(b[0], 'T');
	char c[SORT_ID_LEN];
	sort_thread_name(key, 2, c);
	assert_string_not_equal(b, c);
	assert_true(sort_thread_split(key, "lunch") != key);
	assert_true(sort_thread_split(key, "lunch") !=
	    sort_thread_split(key, "dinner"));
	assert_true(sort_thread_split(key, "lunch") ==
	    sort_thread_split(key, "lunch"));
	sort_keys_clear(&k);
	h = "Subject: none\n\n";
	sort_keys_parse(h, strlen(h), &k);
	assert_false(sort_thread_root(&k, &key));
	sort_keys_clear(&k);
	assert_true(sort_thread_same_subject("lunch", "lunch"));
	assert_true(sort_thread_same_subject("", "lunch"));
	assert_true(sort_thread_same_subject("lunch", NULL));
	assert_false(sort_thread_same_subject("lunch", "dinner"));
}

static void
test_pack(void **state)
{
	static const char h[] =
	    "Date: Tue, 1 Dec 2026 10:00:00 +0100\n"
	    "Subject: Re: lunch: 12:30?\n"
	    "From: \"Ann\" <ann@example.org>\n"
	    "Message-ID: <3@x>\nReferences: <1@x> <2@x>\n\n";
	struct sort_keys k, u;
	size_t len;

	(void)state;
	sort_keys_parse(h, strlen(h), &k);
	char *p = sort_keys_pack(&k, &len);
	assert_int_equal(sort_keys_unpack(p, strlen(p), &u), 0);
	assert_int_equal(u.sent, k.sent);
	assert_true(u.reply);
	assert_string_equal(u.subject, k.subject);
	assert_string_equal(u.from, "ann");
	assert_null(u.to);
	assert_string_equal(u.msgid, "<3@x>");
	assert_int_equal(u.nrefs, 2);
	assert_string_equal(u.refs[1], "<2@x>");
	/* packed again: the same string */
	char *q = sort_keys_pack(&u, NULL);
	assert_string_equal(p, q);
	sort_keys_clear(&u);
	/* anything else is refused, with nothing left behind */
	static const char *const bad[] = { "", "k1", "k2 0 0 0 1:a------",
		"k1 0 0 0 1:a-----", "k1 0 0 0 1:a-------x", "k1 0 0 1 1:a------",
		"k1 0 0 1 1:a-------", "k1 0 2 0 1:a------", "k1 0 0 0 9:a------",
		"k1 0 0 0 -------", "k1 0 0 99999 1:a------", NULL };
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(sort_keys_unpack(bad[i], strlen(bad[i]), &u), -1);
		assert_null(u.subject);
	}
	assert_int_equal(sort_keys_unpack("k1 -1 0 0 0:------", 18, &u), 0);
	assert_string_equal(u.subject, "");
	assert_int_equal(u.sent, -1);
	sort_keys_clear(&u);
	/* the thread id the index gave rides along, and comes back */
	memcpy(k.tid, "T0123456789abcdef", SORT_ID_LEN);
	char *t = sort_keys_pack(&k, NULL);
	assert_int_equal(sort_keys_unpack(t, strlen(t), &u), 0);
	assert_string_equal(u.tid, "T0123456789abcdef");
	char tid[SORT_ID_LEN];
	sort_thread_id(&u, "x", tid);
	assert_string_equal(tid, "T0123456789abcdef");
	sort_keys_clear(&u);
	assert_string_equal(u.tid, "");
	/* an id that is not one of ours is refused */
	char bad_tid[512];
	(void)snprintf(bad_tid, sizeof(bad_tid), "%s17:M0123456789abcdef", p);
	assert_int_equal(sort_keys_unpack(bad_tid, strlen(bad_tid), &u), -1);
	(void)snprintf(bad_tid, sizeof(bad_tid), "%s3:T01", p);
	assert_int_equal(sort_keys_unpack(bad_tid, strlen(bad_tid), &u), -1);
	free(t);
	k.tid[0] = '\0';
	/* a NUL inside a field is not a string */
	assert_int_equal(sort_keys_unpack("k1 0 0 0 1:\0------", 18, &u), -1);
	free(p);
	free(q);
	sort_keys_clear(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_pack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
