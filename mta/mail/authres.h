/* SPDX-License-Identifier: ISC */
/*
 * authres.h - layer 1 (pure): Authentication-Results header fields
 * (RFC 8601): the authserv-id a field claims, taking out the fields
 * that claim ours (a sender cannot forge our verdicts), and writing
 * ours. No I/O; fuzzed (fuzz_authres).
 */
#ifndef TERN_AUTHRES_H
#define TERN_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/*
 * The authserv-id of an Authentication-Results field value (after the
 * colon; comments and white space skipped) into out: true, or false if
 * it has none that can be read.
 */
bool authres_id(const char *val, size_t len, char *out, size_t outsz);

/*
 * The first Authentication-Results field in msg's header section that
 * claims id: its value (*val, *vlen, without its final line end).
 */
bool authres_find(const char *msg, size_t len, const char *id,
    const char **val, size_t *vlen);

/*
 * How many results an Authentication-Results value has for method
 * ("arc", "dkim"); the first one's result, lower case, into result.
 */
size_t authres_method(const char *val, size_t len, const char *method,
    char *result, size_t resultsz);

/*
 * Takes out of the header section of msg[start..) every
 * Authentication-Results field whose authserv-id is id (ASCII case
 * ignored); the number taken out.
 */
size_t authres_strip(struct buf *msg, size_t start, const char *id);

/* One method's result: "dkim=pass" and its reason and properties. */
struct authres_prop {
	const char *name;         /* "header.d" */
	const char *value;        /* quoted when it needs to be */
};

/*
 * Appends "Authentication-Results: id;" then each result on its own
 * folded line; "none" alone when there are none (nresults 0). Ends in
 * "\n". authres_add() appends one result to a field begun with
 * authres_begin(), authres_end() closes it.
 */
void authres_begin(struct buf *out, const char *id);
void authres_add(struct buf *out, const char *method, const char *result,
    const char *comment, const char *reason, const struct authres_prop *p,
    size_t np);
void authres_end(struct buf *out, size_t nresults);

#endif
