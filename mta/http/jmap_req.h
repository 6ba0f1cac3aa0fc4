/* SPDX-License-Identifier: ISC */
/*
 * jmap_req.h - layer 1: the JMAP request object (RFC 8620 3.3), read as
 * strict I-JSON (RFC 7493), result references (3.7) and the JSON Pointer
 * evaluator with JMAP's "*" (RFC 6901 + 3.7). Pure: jansson is used as a
 * data structure and parser, never for I/O.
 */
#ifndef TERN_JMAP_REQ_H
#define TERN_JMAP_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define JMAP_DEPTH_MAX 64         /* nesting of arrays and objects */
#define JMAP_CALLS_MAX 64         /* maxCallsInRequest */

enum jmap_req_status {
	JMAP_REQ_OK,
	JMAP_REQ_NOT_JSON,        /* urn:ietf:params:jmap:error:notJSON */
	JMAP_REQ_NOT_REQUEST,     /* ...:notRequest */
	JMAP_REQ_LIMIT,           /* ...:limit (maxCallsInRequest) */
};

struct jmap_call {
	const char *name;         /* borrowed from root */
	json_t *args;             /* borrowed from root */
	const char *id;
};

struct jmap_request {
	json_t *root;             /* owned */
	const char **using;       /* borrowed strings, nusing of them */
	size_t nusing;
	struct jmap_call *calls;
	size_t ncalls;
	json_t *created_ids;      /* borrowed, or NULL */
};

/*
 * Reads data[0..len) into r. Not I-JSON (invalid UTF-8, a lone
 * surrogate, a duplicate key, NaN, an integer beyond 2^53, nesting over
 * JMAP_DEPTH_MAX, NUL escapes) is NOT_JSON; valid JSON of the wrong
 * shape NOT_REQUEST; why says what (for the problem details). r is to be
 * cleared in every case.
 */
enum jmap_req_status jmap_request_parse(const char *data, size_t len,
    struct jmap_request *r, char *why, size_t whysz);
void jmap_request_clear(struct jmap_request *r);

/*
 * RFC 6901 pointer into doc, where "*" on an array maps the rest of the
 * pointer over its items (results that are arrays are concatenated). A
 * new reference, or NULL if the path does not exist.
 */
json_t *jmap_pointer_eval(json_t *doc, const char *ptr);

/*
 * Resolves the "#name" arguments of args against the responses so far
 * (an array of [name, args, callId]): a new object with each replaced by
 * its value. NULL with *type "invalidResultReference" (or
 * "invalidArguments" when both "#x" and "x" are there) and desc.
 */
json_t *jmap_resolve_refs(json_t *args, json_t *responses,
    const char **type, char *desc, size_t descsz);

/* true if s is a JMAP Id (1-255 of A-Za-z0-9-_, RFC 8620 1.2) */
bool jmap_is_id(const char *s);

#endif
