/* SPDX-License-Identifier: ISC */
/*
 * http_parse.h - layer 1: HTTP/1.1 requests (RFC 9112), pure and strict.
 * What the server does not read the way every proxy in front of it would
 * is refused, never guessed (the request smuggling family): two
 * Content-Lengths, Content-Length with Transfer-Encoding, any transfer
 * coding but one final "chunked", obs-fold, a bare CR or LF, a space
 * before a field's colon, control characters, over-long lines, too many
 * fields. No I/O: the connection (http_conn.c) feeds bytes in.
 */
#ifndef TERN_HTTP_PARSE_H
#define TERN_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define HTTP_LINE_MAX 8192        /* a request or header line, octets */
#define HTTP_HEADERS_MAX 100      /* header fields in one request */
#define HTTP_CHUNK_LINE_MAX 1024  /* a chunk-size line with extensions */
#define HTTP_TRAILER_MAX 8192     /* all trailer fields of a chunked body */

enum http_status {
	HTTP_OK,
	HTTP_MORE,                /* not all of it yet */
	HTTP_BAD,                 /* 400, and the connection closes */
	HTTP_TOO_LARGE,           /* a line or the field count: 431; a body: 413 */
	HTTP_URI_TOO_LONG,        /* 414 */
	HTTP_VERSION,             /* 505: not HTTP/1.0 or 1.1 */
};

struct http_field {
	const char *name;         /* as sent; match case-insensitively */
	const char *value;        /* without surrounding white space */
};

struct http_request {
	char *raw;                /* owned: the head, cut into strings */
	const char *method;
	const char *target;       /* as sent */
	const char *path;         /* target up to '?', still %-encoded */
	const char *query;        /* after '?', or "" */
	int minor;                /* HTTP/1.minor */
	struct http_field f[HTTP_HEADERS_MAX];
	size_t nf;
	int64_t content_length;   /* -1: none */
	bool chunked;
	bool keep_alive;          /* the client allows another request */
	bool expect_continue;     /* Expect: 100-continue */
	const char *why;          /* on an error: what was wrong */
};

/*
 * Where the head (request line and fields, up to and with the empty
 * line) ends in data[0..len): HTTP_OK with *head_len, HTTP_MORE, or the
 * error found so far (a bare LF, a line over HTTP_LINE_MAX, too many
 * fields), so a client cannot make the server buffer without bound.
 * Empty lines before the request line are skipped (RFC 9112 2.2) and
 * counted in *head_len.
 */
enum http_status http_head_end(const char *data, size_t len,
    size_t *head_len, const char **why);

/*
 * Parses a complete head (as http_head_end found it) into r, which owns
 * a copy afterwards (http_request_clear frees it, also after an error).
 */
enum http_status http_parse_head(const char *data, size_t len,
    struct http_request *r);
void http_request_clear(struct http_request *r);

/* The value of the field named name (case-insensitive), or NULL. */
const char *http_field(const struct http_request *r, const char *name);

/*
 * A chunked body (RFC 9112 7.1), fed as it arrives: the data of the
 * chunks goes to out; at most max octets of it (else HTTP_TOO_LARGE).
 * HTTP_OK once the last chunk and the trailer section are read (*used
 * then tells where the next request starts); HTTP_MORE for more; errors
 * for anything malformed. Trailer fields are checked and dropped.
 */
struct http_chunked {
	int state;
	uint64_t left;            /* octets of the chunk still to come */
	uint64_t total;
	size_t line;              /* octets of the current line so far */
	size_t trailer;           /* octets of trailer fields so far */
	bool digits, ext, cr;
};
void http_chunked_init(struct http_chunked *c);
enum http_status http_chunked_feed(struct http_chunked *c, const char *in,
    size_t len, size_t *used, struct buf *out, uint64_t max);

/* %-decodes a path into out (NUL-terminated); -1 on a bad or NUL escape. */
int http_path_decode(const char *path, char *out, size_t outsz);

/* The reason phrase of a status code ("Not Found"). */
const char *http_reason(int code);

#endif
