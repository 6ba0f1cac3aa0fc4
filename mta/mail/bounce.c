/* SPDX-License-Identifier: ISC */
/*
 * bounce.c - layer 1 (pure). RFC 3464 fields: per message Reporting-MTA,
 * X-Tern-Queue-ID (an extension field, RFC 3464 3.3), Arrival-Date; per
 * recipient Final-Recipient, Action, Status, Diagnostic-Code,
 * Remote-MTA (and Will-Retry-Until is left out: the give-up time belongs
 * to the retry policy). The report is sent from MAILER-DAEMON with the
 * null sender by the caller, and carries Auto-Submitted: auto-replied
 * (RFC 3834) so that well-behaved software never answers it.
 *
 * Only the original header section is returned (text/rfc822-headers):
 * enough to identify the message, without sending bulk back.
 */
#include "mail/bounce.h"

#include <string.h>

#include "mail/message.h"

static void
append_clean(struct buf *out, const char *s)
{
	for (; s && *s; s++)
		buf_append_char(out, (*s == '\n' || *s == '\r') ? ' ' : *s);
}

void
bounce_build(struct buf *out, const struct bounce_info *b)
{
	bool failed = b->action == BOUNCE_FAILED;
	size_t hlen = message_header_len(b->orig, b->orig_len);

	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n",
	    b->reporting_mta);
	buf_printf(out, "To: <%s>\n", b->sender);
	buf_printf(out, "Subject: %s\n", failed ?
	    "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	buf_printf(out, "Date: %s\n", b->date);
	buf_printf(out, "Message-ID: %s\n", b->message_id);
	buf_append_str(out, "Auto-Submitted: auto-replied\n");
	buf_append_str(out, "MIME-Version: 1.0\n");
	buf_printf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\n\tboundary=\"%s\"\n", b->boundary);
	buf_append_str(out, "\nThis is a MIME-encapsulated message.\n\n");

	/* 1. for people */
	buf_printf(out, "--%s\n", b->boundary);
	buf_append_str(out, "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n");
	buf_printf(out, "This is the mail system at host %s.\n\n",
	    b->reporting_mta);
	if (failed)
		buf_append_str(out, "I'm sorry to have to inform you that your "
		    "message could not\nbe delivered to one or more "
		    "recipients. It's attached below.\n\n");
	else
		buf_append_str(out, "Your message could not be delivered yet "
		    "to one or more recipients.\nIt is still queued and will "
		    "be retried; you need not send it again.\n\n");
	for (size_t i = 0; i < b->nrcpts; i++) {
		buf_append_str(out, "<");
		append_clean(out, b->rcpts[i].addr);
		buf_append_str(out, ">: ");
		append_clean(out, b->rcpts[i].diagnostic ?
		    b->rcpts[i].diagnostic : b->rcpts[i].status);
		buf_append_char(out, '\n');
	}
	buf_append_char(out, '\n');

	/* 2. for machines */
	buf_printf(out, "--%s\n", b->boundary);
	buf_append_str(out, "Content-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n");
	buf_printf(out, "Reporting-MTA: dns; %s\n", b->reporting_mta);
	buf_printf(out, "X-Tern-Queue-ID: %s\n", b->queue_id);
	buf_printf(out, "Arrival-Date: %s\n", b->arrival_date);
	for (size_t i = 0; i < b->nrcpts; i++) {
		const struct bounce_rcpt *r = &b->rcpts[i];
		buf_append_str(out, "\nFinal-Recipient: rfc822; ");
		append_clean(out, r->addr);
		buf_printf(out, "\nAction: %s\n", failed ? "failed" : "delayed");
		buf_append_str(out, "Status: ");
		append_clean(out, r->status);
		buf_append_char(out, '\n');
		if (r->remote_mta) {
			buf_append_str(out, "Remote-MTA: dns; ");
			append_clean(out, r->remote_mta);
			buf_append_char(out, '\n');
		}
		if (r->diagnostic) {
			buf_append_str(out, "Diagnostic-Code: smtp; ");
			append_clean(out, r->diagnostic);
			buf_append_char(out, '\n');
		}
	}
	buf_append_char(out, '\n');

	/* 3. the original header section */
	buf_printf(out, "--%s\n", b->boundary);
	buf_append_str(out, "Content-Description: Undelivered Message "
	    "Headers\nContent-Type: text/rfc822-headers\n\n");
	buf_append(out, b->orig, hlen);
	if (hlen == 0 || b->orig[hlen - 1] != '\n')
		buf_append_char(out, '\n');
	buf_printf(out, "\n--%s--\n", b->boundary);
}
