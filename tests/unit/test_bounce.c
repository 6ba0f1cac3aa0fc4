/* SPDX-License-Identifier: ISC */
/* Unit tests for bounce.c: the RFC 3464 report, golden text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mail/bounce.h"

static const char orig[] = "Received: from x\nSubject: hello\n"
    "Message-ID: <1@example.org>\n\nsecret body\n";

static void
build(struct buf *out, enum bounce_action action)
{
	struct bounce_rcpt r[2] = {
		{ action, "gone@example.org", NULL, "5.1.1",
		  "550 5.1.1 user unknown", "mx.example.org" },
		{ action, "full@example.org", NULL, "5.2.2", NULL, NULL },
	};
	struct bounce_info b = {
		.reporting_mta = "mx.test",
		.queue_id = "0123456789abcdef", .sender = "alice@example.net",
		.arrival_date = "Thu, 26 Nov 2026 23:00:00 +0000",
		.date = "Thu, 26 Nov 2026 23:30:00 +0000",
		.boundary = "0123/mx.test", .message_id = "<b1@mx.test>",
		.rcpts = r, .nrcpts = 2, .orig = orig,
		.orig_len = sizeof(orig) - 1,
	};
	buf_init(out);
	bounce_build(out, &b);
}

static void
test_failed(void **state)
{
	struct buf out;
	(void)state;
	build(&out, BOUNCE_FAILED);
	const char *s = out.data;
	assert_non_null(strstr(s, "From: Mail Delivery System "
	    "<MAILER-DAEMON@mx.test>\nTo: <alice@example.net>\n"));
	assert_non_null(strstr(s, "Auto-Submitted: auto-replied\n"));
	assert_non_null(strstr(s, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\n\tboundary=\"0123/mx.test\"\n"));
	assert_non_null(strstr(s, "--0123/mx.test\nContent-Description: "
	    "Delivery report\nContent-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.test\n"));
	assert_non_null(strstr(s, "\nFinal-Recipient: rfc822; gone@example.org"
	    "\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.example.org\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"));
	assert_non_null(strstr(s, "\nFinal-Recipient: rfc822; full@example.org"
	    "\nAction: failed\nStatus: 5.2.2\n\n"));
	/* only the header of the original comes back */
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\n\n"
	    "Received: from x\nSubject: hello\nMessage-ID: <1@example.org>\n"));
	assert_null(strstr(s, "secret body"));
	assert_non_null(strstr(s, "\n--0123/mx.test--\n"));
	buf_clear(&out);
}

static void
test_delayed(void **state)
{
	struct buf out;
	(void)state;
	build(&out, BOUNCE_DELAYED);
	assert_non_null(strstr(out.data, "Action: delayed\n"));
	assert_non_null(strstr(out.data, "Subject: Delayed Mail"));
	assert_null(strstr(out.data, "Action: failed"));
	buf_clear(&out);
}

/* DSN: a success report, ENVID and ORCPT, RET=FULL */
static void
test_dsn(void **state)
{
	struct bounce_rcpt r[2] = {
		{ BOUNCE_DELIVERED, "bob@example.org", "rfc822;Bob@Example.org",
		  "2.0.0", NULL, NULL },
		{ BOUNCE_RELAYED, "carol@example.com", NULL, "2.0.0",
		  "250 2.0.0 Ok: queued as 1234", "mx.example.com" },
	};
	struct bounce_info b = {
		.reporting_mta = "mx.test", .envid = "QQ314159",
		.queue_id = "0123456789abcdef", .sender = "alice@example.net",
		.arrival_date = "Thu, 26 Nov 2026 23:00:00 +0000",
		.date = "Thu, 26 Nov 2026 23:30:00 +0000",
		.boundary = "0123/mx.test", .message_id = "<b1@mx.test>",
		.rcpts = r, .nrcpts = 2, .orig = orig,
		.orig_len = sizeof(orig) - 1,
	};
	struct buf out;
	(void)state;
	buf_init(&out);
	bounce_build(&out, &b);
	const char *s = out.data;
	assert_non_null(strstr(s, "Subject: Successful Mail Delivery Report\n"));
	/* RFC 3464 2.2: Original-Envelope-Id first, extensions last */
	assert_non_null(strstr(s, "message/delivery-status\n\n"
	    "Original-Envelope-Id: QQ314159\nReporting-MTA: dns; mx.test\n"
	    "Arrival-Date: Thu, 26 Nov 2026 23:00:00 +0000\n"
	    "X-Tern-Queue-ID: 0123456789abcdef\n"));
	assert_non_null(strstr(s, "\nOriginal-Recipient: rfc822;Bob@Example.org"
	    "\nFinal-Recipient: rfc822; bob@example.org\nAction: delivered\n"
	    "Status: 2.0.0\n\n"));
	assert_non_null(strstr(s, "\nFinal-Recipient: rfc822; carol@example.com"
	    "\nAction: relayed\nStatus: 2.0.0\nRemote-MTA: dns; "
	    "mx.example.com\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued as "
	    "1234\n"));
	assert_null(strstr(s, "secret body"));
	buf_clear(&out);

	/* a failure with RET=FULL carries the whole message */
	r[0].action = BOUNCE_FAILED;
	r[0].status = "5.1.1";
	b.full = true;
	buf_init(&out);
	bounce_build(&out, &b);
	s = out.data;
	assert_non_null(strstr(s, "Subject: Undelivered Mail"));
	assert_non_null(strstr(s, "Content-Type: message/rfc822\n\n"
	    "Received: from x\n"));
	assert_non_null(strstr(s, "\n\nsecret body\n\n--0123/mx.test--\n"));
	buf_clear(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_dsn),
	};
	return cmocka_run_group_tests_name("bounce", tests, NULL, NULL);
}
