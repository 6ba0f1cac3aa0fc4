/* SPDX-License-Identifier: ISC */
/* Unit tests for envelope.c: round trips and damaged input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mail/envelope.h"

static void
make(struct envelope *e)
{
	envelope_init(e);
	strcpy(e->id, "0123456789abcdef");
	e->created = 1795735378;
	e->client = strdup("127.0.0.1");
	e->helo = strdup("client.example");
	e->protocol = strdup("ESMTP");
	e->sender = strdup("<a@b.example>");
	e->body = strdup("8BITMIME");
	e->size = 42;
	envelope_add_rcpt(e, "<x@localhost>");
	envelope_add_rcpt(e, "<\"y z\"@localhost>");
}

static void
test_round_trip(void **state)
{
	struct envelope a, b;
	struct buf t;
	size_t used;
	char err[200];
	(void)state;

	make(&a);
	buf_init(&t);
	envelope_serialize(&a, &t);
	buf_append_str(&t, "message bytes");
	envelope_init(&b);
	assert_int_equal(envelope_parse(t.data, t.len, &b, &used, err,
	    sizeof(err)), 0);
	assert_string_equal(t.data + used, "message bytes");
	assert_string_equal(b.id, a.id);
	assert_int_equal(b.created, a.created);
	assert_string_equal(b.sender, "<a@b.example>");
	assert_string_equal(b.body, "8BITMIME");
	assert_int_equal(b.size, 42);
	assert_int_equal(b.nrcpts, 2);
	assert_string_equal(b.rcpts[1].path, "<\"y z\"@localhost>");
	assert_false(b.requiretls);
	assert_null(strstr(t.data, "requiretls"));
	/* REQUIRETLS (RFC 8689) is kept, and said once only */
	{
		struct envelope c;
		struct buf u;
		a.requiretls = true;
		buf_init(&u);
		envelope_serialize(&a, &u);
		envelope_init(&c);
		assert_int_equal(envelope_parse(u.data, u.len, &c, &used, err,
		    sizeof(err)), 0);
		assert_true(c.requiretls);
		envelope_clear(&c);
		char *two = strstr(u.data, "requiretls: 1\n");
		assert_non_null(two);
		buf_reset(&u);
		envelope_serialize(&a, &u);
		char *at = strstr(u.data, "requiretls: 1\n");
		struct buf w;
		buf_init(&w);
		buf_append(&w, u.data, (size_t)(at - u.data));
		buf_append_str(&w, "requiretls: 1\n");
		buf_append_str(&w, at);
		envelope_init(&c);
		assert_int_equal(envelope_parse(w.data, w.len, &c, &used, err,
		    sizeof(err)), -1);
		envelope_clear(&c);
		buf_clear(&w);
		buf_clear(&u);
		a.requiretls = false;
	}

	/* state */
	a.rcpts[0].status = RCPT_DONE;
	a.attempts = 3;
	a.next_try = 1795739000;
	a.last_error = strdup("451 4.3.0 disk");
	a.rcpts[1].error = strdup("451 4.4.2 mx.example: connection refused");
	a.warned = true;
	buf_reset(&t);
	envelope_state_serialize(&a, &t);
	assert_int_equal(envelope_state_parse(t.data, t.len, &b, err,
	    sizeof(err)), 0);
	assert_int_equal(b.rcpts[0].status, RCPT_DONE);
	assert_int_equal(b.rcpts[1].status, RCPT_PENDING);
	/* a pending recipient keeps its last temporary failure */
	assert_string_equal(b.rcpts[1].error,
	    "451 4.4.2 mx.example: connection refused");
	assert_int_equal(b.attempts, 3);
	assert_int_equal(b.next_try, 1795739000);
	assert_true(b.warned);
	assert_int_equal(envelope_pending(&b), 1);
	envelope_clear(&a);
	envelope_clear(&b);
	buf_clear(&t);
}

/* Folders chosen at DATA, and recipients added by alias expansion. */
static void
test_folders_and_expansion(void **state)
{
	struct envelope a, b;
	struct buf t;
	size_t used;
	char err[200];
	(void)state;

	make(&a);
	a.rcpts[1].folder = strdup("Lists.tern");
	buf_init(&t);
	envelope_serialize(&a, &t);
	a.nfixed = a.nrcpts;
	envelope_add_rcpt(&a, "<alias-target@localhost>");
	a.rcpts[0].status = RCPT_DONE;
	a.rcpts[2].status = RCPT_DONE;
	size_t envlen = t.len;
	envelope_state_serialize(&a, &t);
	envelope_init(&b);
	assert_int_equal(envelope_parse(t.data, envlen, &b, &used, err,
	    sizeof(err)), 0);
	assert_int_equal(b.nrcpts, 2);
	assert_null(b.rcpts[0].folder);
	assert_string_equal(b.rcpts[1].folder, "Lists.tern");
	assert_int_equal(envelope_state_parse(t.data + envlen, t.len - envlen,
	    &b, err, sizeof(err)), 0);
	assert_int_equal(b.nrcpts, 3);
	assert_string_equal(b.rcpts[2].path, "<alias-target@localhost>");
	assert_int_equal(b.rcpts[2].status, RCPT_DONE);
	assert_int_equal(b.rcpts[1].status, RCPT_PENDING);
	envelope_clear(&a);
	envelope_clear(&b);
	buf_clear(&t);
	/* a folder that could escape the Maildir is refused */
	static const char bad[] = "tern-envelope: 1\nid: 0123456789abcdef\n"
	    "from: <>\nrcpt: <a@b>\nfolder: 0 ../../x\nend\n";
	envelope_init(&b);
	assert_int_equal(envelope_parse(bad, sizeof(bad) - 1, &b, &used, err,
	    sizeof(err)), -1);
	envelope_clear(&b);
}

/* DSN (RFC 3461): RET, ENVID, NOTIFY and ORCPT, also of added rcpts */
static void
test_dsn(void **state)
{
	struct envelope a, b;
	struct buf t;
	size_t used;
	char err[200];
	(void)state;

	make(&a);
	a.ret = DSN_RET_HDRS;
	a.envid = strdup("QQ+2B314");
	a.rcpts[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	a.rcpts[1].orcpt = strdup("rfc822;y+20z@localhost");
	buf_init(&t);
	envelope_serialize(&a, &t);
	assert_non_null(strstr(t.data, "ret: HDRS\nenvid: QQ+2B314\n"));
	assert_non_null(strstr(t.data, "notify: 0 SUCCESS,FAILURE\n"
	    "orcpt: 1 rfc822;y+20z@localhost\nend\n"));
	a.nfixed = a.nrcpts;
	size_t n = envelope_add_rcpt(&a, "<target@localhost>");
	a.rcpts[n].notify = DSN_NOTIFY_NEVER;
	a.rcpts[n].orcpt = strdup("rfc822;x@localhost");
	size_t envlen = t.len;
	envelope_state_serialize(&a, &t);
	envelope_init(&b);
	assert_int_equal(envelope_parse(t.data, envlen, &b, &used, err,
	    sizeof(err)), 0);
	assert_int_equal(b.ret, DSN_RET_HDRS);
	assert_string_equal(b.envid, "QQ+2B314");
	assert_int_equal(b.rcpts[0].notify, a.rcpts[0].notify);
	assert_null(b.rcpts[0].orcpt);
	assert_int_equal(b.rcpts[1].notify, 0);
	assert_string_equal(b.rcpts[1].orcpt, "rfc822;y+20z@localhost");
	assert_int_equal(envelope_state_parse(t.data + envlen, t.len - envlen,
	    &b, err, sizeof(err)), 0);
	assert_int_equal(b.nrcpts, 3);
	assert_int_equal(b.rcpts[2].notify, DSN_NOTIFY_NEVER);
	assert_string_equal(b.rcpts[2].orcpt, "rfc822;x@localhost");
	envelope_clear(&a);
	envelope_clear(&b);
	buf_clear(&t);

	static const char *const bad[] = {
		"ret: ALL\n", "ret: FULL\nret: FULL\n", "envid: a b\n",
		"envid: +0A\n", "notify: 0 NEVER,SUCCESS\n",
		"notify: 1 SUCCESS\n", "notify: 0 SUCCESS\nnotify: 0 DELAY\n",
		"orcpt: 0 bob\n", "orcpt: 0\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[300];
		(void)snprintf(text, sizeof(text), "tern-envelope: 1\nid: "
		    "0123456789abcdef\nfrom: <>\nrcpt: <a@b>\n%send\n",
		    bad[i]);
		envelope_init(&b);
		if (envelope_parse(text, strlen(text), &b, &used, err,
		    sizeof(err)) == 0)
			fail_msg("bad DSN line %zu accepted", i);
		envelope_clear(&b);
	}
	/* the state file may not change a fixed recipient's request */
	make(&b);
	b.nfixed = b.nrcpts;
	static const char st[] = "tern-state: 1\nnotify: 0 NEVER\nend\n";
	assert_int_equal(envelope_state_parse(st, sizeof(st) - 1, &b, err,
	    sizeof(err)), -1);
	envelope_clear(&b);
}

static void
test_damaged(void **state)
{
	static const char *const bad[] = {
		"",
		"tern-envelope: 2\nend\n",
		"tern-envelope: 1\nid: 0123456789abcdef\nfrom: <>\n"
		    "rcpt: <a@b>\n",                  /* no end: cut short */
		"tern-envelope: 1\nid: 0123456789abcdef\nfrom: <>\nend\n",
		"tern-envelope: 1\nid: short\nfrom: <>\nrcpt: <a@b>\nend\n",
		"tern-envelope: 1\nid: 0123456789abcdef\nfrom: <>\n"
		    "rcpt: <a@b>\nwhat: x\nend\n",    /* unknown key */
		"tern-envelope: 1\nid: 0123456789abcdef\nfrom: <>\n"
		    "rcpt: a@b\nend\n",               /* no brackets */
		"tern-envelope: 1\nid: 0123456789abcdef\nfrom: <>\nfrom: <>\n"
		    "rcpt: <a@b>\nend\n",             /* duplicate */
		"tern-envelope: 1\nid: 0123456789abcdef\nfrom: <\x01>\n"
		    "rcpt: <a@b>\nend\n",             /* control byte */
	};
	struct envelope e;
	size_t used;
	char err[200];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		envelope_init(&e);
		if (envelope_parse(bad[i], strlen(bad[i]), &e, &used, err,
		    sizeof(err)) == 0)
			fail_msg("damaged envelope %zu accepted", i);
		envelope_clear(&e);
	}
	/* state index out of range */
	make(&e);
	assert_int_equal(envelope_state_parse("tern-state: 1\nrcpt-done: 9\n"
	    "end\n", 29, &e, err, sizeof(err)), -1);
	envelope_clear(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_folders_and_expansion),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_damaged),
	};
	return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
