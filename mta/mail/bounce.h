/* SPDX-License-Identifier: ISC */
/*
 * bounce.h - layer 1 (pure): delivery status notifications (RFC 3464)
 * as multipart/report messages (RFC 6522): a human-readable part, the
 * message/delivery-status part with one block per recipient, and the
 * original message's header (text/rfc822-headers). The caller passes the
 * date, a unique boundary and Message-ID: nothing here reads the clock.
 */
#ifndef TERN_BOUNCE_H
#define TERN_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* RFC 3464 2.3.3's actions (expanded is not used: aliases pass the
 * DSN request on to their targets, RFC 3461 6.2.7.1) */
enum bounce_action { BOUNCE_FAILED, BOUNCE_DELAYED, BOUNCE_DELIVERED,
	BOUNCE_RELAYED };

struct bounce_rcpt {
	enum bounce_action action;
	const char *addr;         /* "local@domain" */
	const char *orcpt;        /* "rfc822;addr" decoded (RFC 3461 ORCPT),
	                           * may be NULL */
	const char *status;       /* enhanced code, "5.1.1" */
	const char *diagnostic;   /* "550 5.1.1 no such user", may be NULL */
	const char *remote_mta;   /* host name, may be NULL */
};

/*
 * The report's subject and text follow its recipients: "failed" if any
 * failed, else "delayed" if any is, else a success report.
 */
struct bounce_info {
	const char *reporting_mta;    /* our host name */
	const char *queue_id;
	const char *sender;           /* "local@domain" of the original */
	const char *envid;            /* ENVID decoded, may be NULL */
	const char *arrival_date;     /* RFC 5322 date */
	const char *date;             /* now, RFC 5322 date */
	const char *boundary;         /* unique, [A-Za-z0-9'()+_,-./:=?] */
	const char *message_id;       /* "<...>" */
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	const char *orig;             /* the original message (LF ends) */
	size_t orig_len;
	bool full;                    /* RET=FULL: the whole original as
	                               * message/rfc822, not its header */
	bool global;                  /* the original came with SMTPUTF8:
	                               * RFC 6533's message/global-* parts,
	                               * "utf-8" addresses where not ASCII */
};

/* Appends the whole notification message (LF line ends) to out. */
void bounce_build(struct buf *out, const struct bounce_info *b);

#endif
