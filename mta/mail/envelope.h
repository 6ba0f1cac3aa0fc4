/* SPDX-License-Identifier: ISC */
/*
 * envelope.h - layer 1 (pure): a message's envelope and delivery state, and
 * their readable "key: value" text forms. The envelope text heads each queue
 * file and ends with an "end" line, so a file cut short by a crash is
 * recognised; the state text (attempts, next try, per-recipient results)
 * lives in a small side file that is rewritten atomically.
 */
#ifndef TERN_ENVELOPE_H
#define TERN_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/dsn.h"

#define ENVELOPE_VERSION 1
#define ENVELOPE_ID_LEN 16

enum rcpt_status {
	RCPT_PENDING,
	RCPT_DONE,
	RCPT_FAILED,     /* permanent failure, to be reported */
};

struct envelope_rcpt {
	char *path;              /* "<local@domain>" as accepted */
	enum rcpt_status status;
	char *error;             /* last result text, may be NULL */
	char *folder;            /* Maildir++ folder chosen at DATA, or NULL */
	unsigned notify;         /* DSN_NOTIFY_* of RCPT NOTIFY=, 0 if none */
	char *orcpt;             /* RCPT ORCPT= as given (xtext), or NULL */
};

struct envelope {
	char id[ENVELOPE_ID_LEN + 1];
	int64_t created;         /* unix time */
	char *client;            /* client IP */
	char *helo;
	char *protocol;          /* SMTP / ESMTP */
	char *sender;            /* "<...>" or "<>" */
	char *body;              /* "7BIT" or "8BITMIME" */
	uint64_t size;           /* message octets stored after the envelope */
	bool requiretls;         /* MAIL FROM said REQUIRETLS (RFC 8689) */
	bool smtputf8;           /* MAIL FROM said SMTPUTF8 (RFC 6531) */
	enum dsn_ret ret;        /* MAIL FROM RET= (RFC 3461) */
	char *envid;             /* MAIL FROM ENVID= as given (xtext), or NULL */
	struct envelope_rcpt *rcpts;
	size_t nrcpts;
	size_t nfixed;           /* recipients in the envelope text; those
	                          * after (alias expansions) live in the
	                          * state file as "rcpt-add:" lines */
	/* state */
	unsigned attempts;
	int64_t next_try;        /* unix time; 0 = now */
	bool warned;             /* a delay warning was sent */
	bool held;               /* on hold (ternctl hold): not delivered */
	char *last_error;
};

void envelope_init(struct envelope *env);
void envelope_clear(struct envelope *env);
/* Copies path; returns the new recipient's index. */
size_t envelope_add_rcpt(struct envelope *env, const char *path);

/* Appends the envelope text (ends with "end\n"). */
void envelope_serialize(const struct envelope *env, struct buf *out);

/*
 * Parses envelope text at the start of text[0..len). On success returns 0
 * and sets *consumed to the offset just after "end\n"; on failure -1 with a
 * reason in err.
 */
int envelope_parse(const char *text, size_t len, struct envelope *env,
    size_t *consumed, char *err, size_t errsz);

/* The state side file: attempts, next try, recipient results. */
void envelope_state_serialize(const struct envelope *env, struct buf *out);
int envelope_state_parse(const char *text, size_t len, struct envelope *env,
    char *err, size_t errsz);

/*
 * Whether mail made here (not received by SMTP) must be sent as SMTPUTF8:
 * a sender or recipient or a header field of msg (its first len octets)
 * with UTF-8 (RFC 6531 3.2, RFC 6532).
 */
bool envelope_wants_smtputf8(const struct envelope *env, const char *msg,
    size_t len);

/* Number of recipients still pending. */
size_t envelope_pending(const struct envelope *env);

#endif
