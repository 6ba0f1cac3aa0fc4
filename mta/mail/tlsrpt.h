/* SPDX-License-Identifier: ISC */
/*
 * tlsrpt.h - layer 1 (pure): SMTP TLS Reporting (RFC 8460). The
 * _smtp._tls TXT record (3), a book of the day's TLS sessions per policy
 * domain (successes and failures with their result types, 4.3), the JSON
 * report (4.4) and the message that carries it gzipped (5.3). Pure:
 * jansson builds the JSON; compressing is the caller's.
 */
#ifndef TERN_TLSRPT_H
#define TERN_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"

#define TLSRPT_RUA_MAX 4          /* addresses kept per record */
#define TLSRPT_ADDR_MAX 320

enum tlsrpt_policy { TLSRPT_STS, TLSRPT_TLSA };

/*
 * One TXT record: "v=TLSRPTv1; rua=mailto:a@example.org,https://..."
 * (v first; rua required). Its addresses into rua, up to TLSRPT_RUA_MAX:
 * a mailto one as the mail address alone (URI escapes %XX undone), an
 * https one as the whole URL; others are skipped. 0 with *n (may be 0),
 * or -1 if it is not such a record.
 */
int tlsrpt_txt_parse(const char *txt, char rua[][TLSRPT_ADDR_MAX + 1],
    size_t *n);
/* All TXT records of _smtp._tls.DOMAIN: exactly one v=TLSRPTv1 record
 * must be there (3). 0 or -1 as above. */
int tlsrpt_txt_choose(char *const *txts, size_t ntxt,
    char rua[][TLSRPT_ADDR_MAX + 1], size_t *n);

/* One session's outcome under a policy. */
struct tlsrpt_session {
	const char *domain;          /* the policy domain (A-labels) */
	enum tlsrpt_policy type;
	const char *policy;          /* its lines joined by '\n' */
	const char *mx_host;         /* the host talked to; NULL: none (a
	                              * policy fetch that failed) */
	const char *receiving_ip;    /* its address, or NULL */
	bool success;
	const char *result_type;     /* failures: "starttls-not-supported",
	                              * "certificate-host-mismatch", ... */
};

struct tlsrpt_book;
struct tlsrpt_book *tlsrpt_book_new(size_t max_domains);
void tlsrpt_book_free(struct tlsrpt_book *b);
/* Counts a session; false if the book is full (a new domain not taken). */
bool tlsrpt_count(struct tlsrpt_book *b, const struct tlsrpt_session *s);
/* The same, saying which entry counted it (stable until the book is
 * freed: entries are only added). */
bool tlsrpt_count_at(struct tlsrpt_book *b, const struct tlsrpt_session *s,
    size_t *index);
/* The domains counted (each once per policy type). */
size_t tlsrpt_book_len(const struct tlsrpt_book *b);
const char *tlsrpt_book_domain(const struct tlsrpt_book *b, size_t i);

/*
 * Entry i as one line of JSON (malloc'd), to be kept across a restart,
 * and such a line added back to a book as its next entry: 0, or -1 if it
 * is not such a line, its (domain, type) is in the book already, or the
 * book is full.
 */
char *tlsrpt_entry_save(const struct tlsrpt_book *b, size_t i);
int tlsrpt_entry_restore(struct tlsrpt_book *b, const char *text);

/*
 * The report (4.4) of the book's entries for entry i's domain, as JSON
 * text (malloc'd). org: organization-name; contact: contact-info;
 * report_id unique; the period [start, end).
 */
char *tlsrpt_report_json(const struct tlsrpt_book *b, size_t i,
    const char *org, const char *contact, const char *report_id,
    time_t start, time_t end);

/*
 * The report message (5.3): From, To, Subject "Report Domain: D
 * Submitter: S Report-Id: <ID>", TLS-Report-Domain, TLS-Report-
 * Submitter, a text part and the gzipped JSON as
 * application/tlsrpt+gzip named "S!D!START!END!ID.json.gz". LF line
 * ends (the queue's form).
 */
struct tlsrpt_message {
	const char *from, *to, *domain, *submitter, *report_id, *message_id;
	time_t start, end, date;
	const unsigned char *gz;
	size_t gz_len;
};
void tlsrpt_message_build(struct buf *out, const struct tlsrpt_message *m);

#endif
