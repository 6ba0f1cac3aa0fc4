/* SPDX-License-Identifier: ISC */
/*
 * tlsrpt_send.h - layer 3: TLS reports (RFC 8460) from the SMTP
 * client's sessions: counted in a book (mail/tlsrpt.h) through the day,
 * and at 00:00 UTC (or when ternctl tls-report asks) one report per
 * policy domain whose _smtp._tls record asks for one, gzipped: queued
 * like any message of ours for a mailto: address, POSTed to an https:
 * one. Loop thread only.
 */
#ifndef TERN_TLSRPT_SEND_H
#define TERN_TLSRPT_SEND_H

#include <stddef.h>

struct dns;
struct event_base;
struct httpc_tls;
struct queue;
struct runtime;
struct tlsrpt_session;
struct tlsrpt_sender;

/*
 * Where the book is kept across restarts (ternd: its kvstore): keys are
 * short ("book", "0", "1", ...), values one line each; get's value is
 * borrowed until the next change.
 */
struct tlsrpt_store {
	void (*set)(void *arg, const char *key, const char *value);
	const char *(*get)(void *arg, const char *key);
	void (*del)(void *arg, const char *key);
	void *arg;
};

/* tls: verifying TLS for https: addresses (NULL: those are skipped).
 * store: NULL for a book in memory only; else the book left there by
 * the last run is taken up, and its report goes out at once if its UTC
 * day is over. */
struct tlsrpt_sender *tlsrpt_sender_new(struct event_base *base,
    struct dns *dns, struct queue *q, struct runtime **rt,
    const struct httpc_tls *tls, const struct tlsrpt_store *store);
void tlsrpt_sender_free(struct tlsrpt_sender *s);
/* One session's outcome (the client's callback). */
void tlsrpt_sender_count(void *s, const struct tlsrpt_session *ss);
/* Ends the period now: the reports go out (their lookups run on), and
 * a new book starts. How many domains were in the book. */
size_t tlsrpt_sender_flush(struct tlsrpt_sender *s);

#endif
