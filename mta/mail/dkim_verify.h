/* SPDX-License-Identifier: ISC */
/*
 * dkim_verify.h - layer 2: DKIM verification of a received message on
 * the event loop (RFC 6376 6, RFC 8463, RFC 8301): each DKIM-Signature
 * (at most DKIM_VERIFY_MAX) parsed, its body hash computed, its key
 * looked up over DNS (base/dns.h, asynchronously: one TXT query per
 * signature, all at once) and its signature checked (base/tls.h).
 * Loop thread only.
 */
#ifndef TERN_DKIM_VERIFY_H
#define TERN_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DKIM_VERIFY_MAX 8

struct dns;
struct dkim_verify;

/* RFC 8601 2.7.1's results */
enum dkim_result { DKIM_PASS, DKIM_FAIL, DKIM_NEUTRAL, DKIM_POLICY,
	DKIM_TEMPERROR, DKIM_PERMERROR };

struct dkim_verdict {
	enum dkim_result result;
	char domain[256];         /* d=, lower case ("" if unreadable) */
	char selector[64];
	char identity[260];       /* i= (or "@" d=) */
	char b[9];                /* the first 8 characters of b= */
	const char *algorithm;    /* "rsa-sha256", "ed25519-sha256" */
	char reason[128];         /* why not pass; notes for a pass */
	unsigned bits;            /* the key's */
	bool testing;             /* the key says t=y */
	bool body_limited;        /* l= was used: not all the body is signed */
};

/* n verdicts, in the order of the fields; n 0: the message has none. */
typedef void (*dkim_verify_cb)(void *arg, const struct dkim_verdict *v,
    size_t n);

/*
 * Checks the signatures of msg[0..len) (LF or CRLF line ends); msg must
 * stay as it is until cb, which never runs before this returns. now: for
 * x=. bh: the body's hashes, made as it arrived (msg then holds only
 * the start of the body, maybe none of it), or NULL: hashed from msg.
 * NULL with cb never called only if dkim_verify_cancel() is.
 */
struct bodyhash;
struct dkim_verify *dkim_verify_start(struct dns *dns, const char *msg,
    size_t len, const struct bodyhash *bh, int64_t now, dkim_verify_cb cb,
    void *arg);
/* cb will not be called; everything is freed. */
void dkim_verify_cancel(struct dkim_verify *v);

const char *dkim_result_name(enum dkim_result r);

#endif
