/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for store/dovecot.c: dovecot-uidlist v3 and v1 (Courier),
 * what is kept verbatim, the next uid rule, keywords and subscriptions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/dovecot.h"

static void
test_uidlist_v3_round_trip(void **state)
{
	/* as Dovecot 2.3 writes it: fields before the colon */
	static const char in[] =
	    "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1 Zfuture\n"
	    "25019 :1275660208.M1P1.host,S=100,W=102\n"
	    "25020 W1234 Xunknown :1275660209.M2P1.host,S=1200\n"
	    "25021 :1275660210.M3P1.host\n";
	struct uidlist ul;
	struct buf out;
	char err[100];

	(void)state;
	uidlist_init(&ul);
	assert_int_equal(uidlist_parse(in, strlen(in), &ul, err, sizeof(err)), 0);
	assert_int_equal(ul.version, 3);
	assert_int_equal(ul.uidvalidity, 1275660208u);
	assert_int_equal(ul.next_uid, 25022);
	assert_string_equal(ul.guid, "3085f01b7f11094c501100008c4a11c1");
	assert_int_equal(ul.n, 3);
	assert_string_equal(ul.recs[1].name, "1275660209.M2P1.host,S=1200");
	assert_string_equal(ul.recs[1].fields, "W1234 Xunknown");
	assert_null(ul.recs[0].fields);
	assert_int_equal(uidlist_next_uid(&ul), 25022);
	buf_init(&out);
	uidlist_serialize(&ul, &out);
	/* the same text back: unknown header and record fields kept */
	assert_string_equal(out.data, in);
	buf_clear(&out);
	uidlist_clear(&ul);
}

static void
test_uidlist_next_uid_and_order(void **state)
{
	static const char in[] =
	    "3 V7 N3\n"
	    "9 :c\n"
	    "2 :a\n"
	    "5 :b:2,S\n"           /* an info part left in: dropped */
	    "5 :dup\n"             /* a uid twice: the first stays */
	    "x :bad\n"             /* broken lines are skipped */
	    "0 :zero\n"
	    "6 no-colon\n"
	    "7 :../escape\n";
	struct uidlist ul;
	char err[100];

	(void)state;
	uidlist_init(&ul);
	assert_int_equal(uidlist_parse(in, strlen(in), &ul, err, sizeof(err)), 0);
	assert_int_equal(ul.n, 3);
	assert_int_equal(ul.recs[0].uid, 2);
	assert_int_equal(ul.recs[1].uid, 5);
	assert_string_equal(ul.recs[1].name, "b");
	assert_int_equal(ul.recs[2].uid, 9);
	/* N3 is behind the last uid: max(N, last + 1) */
	assert_int_equal(uidlist_next_uid(&ul), 10);
	uidlist_add(&ul, 10, "d", NULL);
	assert_int_equal(uidlist_next_uid(&ul), 11);
	uidlist_clear(&ul);
	/* an append torn by a crash: the unfinished line is no record */
	static const char torn[] = "3 V1 N3\n3 :c\n4 :d\n12 :1764.M12";
	uidlist_init(&ul);
	assert_int_equal(uidlist_parse(torn, strlen(torn), &ul, err,
	    sizeof(err)), 0);
	assert_int_equal(ul.n, 2);
	assert_int_equal(uidlist_next_uid(&ul), 5);
	uidlist_clear(&ul);
}

static void
test_uidlist_v1_and_bad_headers(void **state)
{
	static const char v1[] = "1 1100000000 4\n1 one\n3 three:2,RS\n";
	static const char *bad[] = { "", "2 V1 N1\n", "3 N5\n", "3 V0 N1\n",
		"1 x y\n", "3 Vabc\n", "1", "1 ", "1 5" };   /* "1": fuzz_dovecot */
	struct uidlist ul;
	struct buf out;
	char err[100];

	(void)state;
	uidlist_init(&ul);
	assert_int_equal(uidlist_parse(v1, strlen(v1), &ul, err, sizeof(err)), 0);
	assert_int_equal(ul.version, 1);
	assert_int_equal(ul.uidvalidity, 1100000000u);
	assert_int_equal(ul.n, 2);
	assert_string_equal(ul.recs[1].name, "three");
	buf_init(&out);
	uidlist_serialize(&ul, &out);
	/* written back as v3, the same uids and uidvalidity */
	assert_string_equal(out.data, "3 V1100000000 N4\n1 :one\n3 :three\n");
	buf_clear(&out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (uidlist_parse(bad[i], strlen(bad[i]), &ul, err,
		    sizeof(err)) != -1)
			fail_msg("accepted header %zu", i);
	uidlist_clear(&ul);
}

static void
test_keywords(void **state)
{
	static const char in[] = "0 $Forwarded\n3 Work\nx bad\n30 toolarge\n"
	    "4 work\n5 \\Seen\n1 $Junk\n";
	struct keywords kw;
	struct buf out;

	(void)state;
	keywords_init(&kw);
	keywords_parse(in, strlen(in), &kw);
	assert_int_equal(keywords_find(&kw, "$forwarded"), 0);
	assert_int_equal(keywords_find(&kw, "WORK"), 3);
	assert_int_equal(keywords_find(&kw, "\\Seen"), -1);
	assert_null(kw.names[4]);           /* a duplicate of Work */
	assert_int_equal(keywords_add(&kw, "Personal"), 2);
	assert_int_equal(keywords_add(&kw, "work"), 3);
	assert_int_equal(keywords_add(&kw, "bad(name"), -1);
	buf_init(&out);
	keywords_serialize(&kw, &out);
	assert_string_equal(out.data,
	    "0 $Forwarded\n1 $Junk\n2 Personal\n3 Work\n");
	for (int i = 0; i < KEYWORDS_MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "k%d", i);
		(void)keywords_add(&kw, name);
	}
	assert_int_equal(keywords_add(&kw, "one-too-many"), -1);
	buf_clear(&out);
	keywords_clear(&kw);
}

static void
collect(void *arg, const char *name)
{
	struct buf *b = arg;

	buf_printf(b, "[%s]", name);
}

static void
test_subscriptions(void **state)
{
	static const char v2[] = "V\t2\n\nINBOX\nLists\tTern\nSent\n";
	static const char v1[] = "INBOX\nLists/Tern\n";
	const char *names[] = { "INBOX", "Lists/Tern" };
	struct buf b;

	(void)state;
	buf_init(&b);
	subscriptions_parse(v2, strlen(v2), collect, &b);
	assert_string_equal(b.data, "[INBOX][Lists/Tern][Sent]");
	buf_reset(&b);
	subscriptions_parse(v1, strlen(v1), collect, &b);
	assert_string_equal(b.data, "[INBOX][Lists/Tern]");
	buf_reset(&b);
	subscriptions_serialize(names, 2, &b);
	assert_string_equal(b.data, "V\t2\n\nINBOX\nLists\tTern\n");
	buf_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidlist_v3_round_trip),
		cmocka_unit_test(test_uidlist_next_uid_and_order),
		cmocka_unit_test(test_uidlist_v1_and_bad_headers),
		cmocka_unit_test(test_keywords),
		cmocka_unit_test(test_subscriptions),
	};
	return cmocka_run_group_tests_name("dovecot", tests, NULL, NULL);
}
