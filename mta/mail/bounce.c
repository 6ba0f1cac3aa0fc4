/* SPDX-License-Identifier: ISC */
/*
 * bounce.c - layer 1 (pure). RFC 3464 fields: per message
 * Original-Envelope-Id (ENVID), Reporting-MTA, Arrival-Date,
 * X-Tern-Queue-ID (an extension field, RFC 3464 3.3); per recipient
 * Original-Recipient (ORCPT), Final-Recipient, Action, Status,
 * Remote-MTA, Diagnostic-Code (and Will-Retry-Until is left out: the give-up time belongs
 * to the retry policy). The report is sent from MAILER-DAEMON with the
 * null sender by the caller, and carries Auto-Submitted: auto-replied
 * (RFC 3834) so that well-behaved software never answers it.
 *
 * Only the original header section is returned (text/rfc822-headers):
 * enough to identify the message, without sending bulk back; unless the
 * sender asked for all of it (RET=FULL, RFC 3461 4.3) in a failure.
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

static bool
ascii_only(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static const char *
action_name(enum bounce_action a)
{
	switch (a) {
	case BOUNCE_FAILED:
		return "failed";
	case BOUNCE_DELAYED:
		return "delayed";
	case BOUNCE_DELIVERED:
		return "delivered";
	case BOUNCE_RELAYED:
		return "relayed";
	}
	return "failed";
}

void
bounce_build(struct buf *out, const struct bounce_info *b)
{
	bool failed = false, delayed = false;
	size_t hlen = message_header_len(b->orig, b->orig_len);

	for (size_t i = 0; i < b->nrcpts; i++) {
		failed |= b->rcpts[i].action == BOUNCE_FAILED;
		delayed |= b->rcpts[i].action == BOUNCE_DELAYED;
	}
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n",
	    b->reporting_mta);
	buf_printf(out, "To: <%s>\n", b->sender);
	buf_printf(out, "Subject: %s\n", failed ?
	    "Undelivered Mail Returned to Sender" : delayed ?
	    "Delayed Mail (still being retried)" :
	    "Successful Mail Delivery Report");
	buf_printf(out, "Date: %s\n", b->date);
	buf_printf(out, "Message-ID: %s\n", b->message_id);
	buf_append_str(out, "Auto-Submitted: auto-replied\n");
	buf_append_str(out, "MIME-Version: 1.0\n");
	buf_printf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\n\tboundary=\"%s\"\n", b->boundary);
	buf_append_str(out, "\nThis is a MIME-encapsulated message.\n\n");

	/* 1. for people */
	buf_printf(out, "--%s\n", b->boundary);
	buf_printf(out, "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=%s\n\n", b->global ?
	    "utf-8" : "us-ascii");
	buf_printf(out, "This is the mail system at host %s.\n\n",
	    b->reporting_mta);
	if (failed)
		buf_append_str(out, "I'm sorry to have to inform you that your "
		    "message could not\nbe delivered to one or more "
		    "recipients. It's attached below.\n\n");
	else if (delayed)
		buf_append_str(out, "Your message could not be delivered yet "
		    "to one or more recipients.\nIt is still queued and will "
		    "be retried; you need not send it again.\n\n");
	else {
		bool relayed = false;
		for (size_t i = 0; i < b->nrcpts; i++)
			relayed |= b->rcpts[i].action == BOUNCE_RELAYED;
		buf_append_str(out, "You asked to be told when your message "
		    "arrived. It has been\ndelivered to the recipients "
		    "below.\n");
		if (relayed)
			buf_append_str(out, "\"relayed\": handed on to a "
			    "server that will not report its\nown delivery; "
			    "you may not hear more of it.\n");
		buf_append_char(out, '\n');
	}
	for (size_t i = 0; i < b->nrcpts; i++) {
		const struct bounce_rcpt *r = &b->rcpts[i];
		buf_append_str(out, "<");
		append_clean(out, r->addr);
		buf_append_str(out, ">: ");
		if (r->action == BOUNCE_DELIVERED || r->action == BOUNCE_RELAYED)
			buf_printf(out, "%s: ", action_name(r->action));
		append_clean(out, r->diagnostic ? r->diagnostic : r->status);
		buf_append_char(out, '\n');
	}
	buf_append_char(out, '\n');

	/* 2. for machines (RFC 3464 2.2, 2.3: the fields in its order) */
	buf_printf(out, "--%s\n", b->boundary);
	buf_printf(out, "Content-Description: Delivery report\n"
	    "Content-Type: message/%sdelivery-status\n\n", b->global ?
	    "global-" : "");
	if (b->envid) {
		buf_append_str(out, "Original-Envelope-Id: ");
		append_clean(out, b->envid);
		buf_append_char(out, '\n');
	}
	buf_printf(out, "Reporting-MTA: dns; %s\n", b->reporting_mta);
	buf_printf(out, "Arrival-Date: %s\n", b->arrival_date);
	buf_printf(out, "X-Tern-Queue-ID: %s\n", b->queue_id);
	for (size_t i = 0; i < b->nrcpts; i++) {
		const struct bounce_rcpt *r = &b->rcpts[i];
		buf_append_char(out, '\n');
		if (r->orcpt) {
			buf_append_str(out, "Original-Recipient: ");
			append_clean(out, r->orcpt);
			buf_append_char(out, '\n');
		}
		/* RFC 6533 3: a UTF-8 address is of type utf-8 */
		buf_printf(out, "Final-Recipient: %s; ", b->global &&
		    !ascii_only(r->addr) ? "utf-8" : "rfc822");
		append_clean(out, r->addr);
		buf_printf(out, "\nAction: %s\n", action_name(r->action));
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

	/* 3. the original: its header section, or all of it (RET=FULL) */
	buf_printf(out, "--%s\n", b->boundary);
	if (b->full) {
		buf_printf(out, "Content-Description: Undelivered Message\n"
		    "Content-Type: message/%s\n\n", b->global ? "global" :
		    "rfc822");
		buf_append(out, b->orig, b->orig_len);
		if (b->orig_len == 0 || b->orig[b->orig_len - 1] != '\n')
			buf_append_char(out, '\n');
	} else {
		buf_printf(out, "Content-Description: %s\n"
		    "Content-Type: %s\n\n", failed ?
		    "Undelivered Message Headers" : "Message Headers",
		    b->global ? "message/global-headers" :
		    "text/rfc822-headers");
		buf_append(out, b->orig, hlen);
		if (hlen == 0 || b->orig[hlen - 1] != '\n')
			buf_append_char(out, '\n');
	}
	buf_printf(out, "\n--%s--\n", b->boundary);
}
