/* SPDX-License-Identifier: ISC */
/*
 * http_parse.c - layer 1: HTTP/1.1 request heads and chunked bodies
 * (http_parse.h). Pure: the connection feeds bytes, this says how much
 * is a head or a body and what it means. Everything RFC 9112 lets a
 * server refuse and that two parsers could read two ways is refused:
 * a line must end in CRLF (2.2: a bare CR is an error; a bare LF we
 * refuse too, as the SMTP side does), obs-fold is an error (5.2), a
 * field name is a token with the colon right after it (5.1), one
 * Content-Length of digits only, none beside Transfer-Encoding (6.3),
 * and "chunked" must be the one and only coding (6.1: we know no other).
 * HTTP/1.1 requests carry exactly one Host (3.2).
 */
#include "http/http_parse.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* RFC 9110 5.6.2 tchar */
static bool
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

enum http_status
http_head_end(const char *data, size_t len, size_t *head_len,
    const char **why)
{
	size_t i = 0, start, fields = 0;
	bool first = true;

	*why = NULL;
	/* empty lines before the request line (RFC 9112 2.2) */
	while (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
		i += 2;
	if (i < len && data[i] == '\n') {
		*why = "bare LF";
		return HTTP_BAD;
	}
	for (start = i; i < len; i++) {
		if (data[i] == '\n') {
			if (i == start || data[i - 1] != '\r') {
				*why = "bare LF";
				return HTTP_BAD;
			}
			if (i - start == 1) {       /* the empty line */
				if (first) {
					*why = "no request line";
					return HTTP_BAD;
				}
				*head_len = i + 1;
				return HTTP_OK;
			}
			if (!first && ++fields > HTTP_HEADERS_MAX) {
				*why = "too many header fields";
				return HTTP_TOO_LARGE;
			}
			first = false;
			start = i + 1;
			continue;
		}
		if (data[i] == '\r' && i + 1 < len && data[i + 1] != '\n') {
			*why = "bare CR";
			return HTTP_BAD;
		}
		if (i - start >= HTTP_LINE_MAX) {
			*why = first ? "request line too long" :
			    "header line too long";
			return first ? HTTP_URI_TOO_LONG : HTTP_TOO_LARGE;
		}
	}
	return HTTP_MORE;
}

static enum http_status
fail(struct http_request *r, enum http_status st, const char *why)
{
	r->why = why;
	return st;
}

/* Trims optional white space (SP, HTAB) off both ends, in place. */
static char *
trim_ows(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

static enum http_status
request_line(struct http_request *r, char *line)
{
	char *sp1 = strchr(line, ' '), *sp2, *q;

	if (sp1 == NULL || sp1 == line)
		return fail(r, HTTP_BAD, "malformed request line");
	*sp1 = '\0';
	for (const char *p = line; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(r, HTTP_BAD, "malformed method");
	r->method = line;
	sp2 = strchr(sp1 + 1, ' ');
	if (sp2 == NULL || sp2 == sp1 + 1)
		return fail(r, HTTP_BAD, "malformed request line");
	*sp2 = '\0';
	for (const unsigned char *p = (unsigned char *)sp1 + 1; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return fail(r, HTTP_BAD, "malformed request target");
	r->target = sp1 + 1;
	if (strncmp(sp2 + 1, "HTTP/", 5) != 0 || strlen(sp2 + 1) != 8 ||
	    sp2[7] != '.' || sp2[6] < '0' || sp2[6] > '9' || sp2[8] < '0' ||
	    sp2[8] > '9')
		return fail(r, HTTP_BAD, "malformed HTTP version");
	if (sp2[6] != '1' || sp2[8] > '1')
		return fail(r, HTTP_VERSION, "HTTP version not supported");
	r->minor = sp2[8] - '0';
	/* origin-form; asterisk-form only for OPTIONS; absolute-form as a
	 * proxy would get it is refused (we are no proxy) */
	if (r->target[0] != '/' && !(strcmp(r->target, "*") == 0 &&
	    strcmp(r->method, "OPTIONS") == 0))
		return fail(r, HTTP_BAD, "request target not in origin form");
	/* path and query: the target is kept whole, so cut a copy */
	q = strchr(sp1 + 1, '?');
	if (q) {
		r->query = q + 1;
		r->path = xstrndup(r->target, (size_t)(q - r->target));
	} else {
		r->query = "";
		r->path = xstrdup(r->target);
	}
	return HTTP_OK;
}

/* Connection: a comma list of tokens; close and keep-alive matter. */
static void
connection_tokens(const char *v, bool *close, bool *keep)
{
	while (*v) {
		size_t n;
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		n = strcspn(v, ", \t");
		if (n == 5 && ascii_strncaseeq(v, "close", 5))
			*close = true;
		else if (n == 10 && ascii_strncaseeq(v, "keep-alive", 10))
			*keep = true;
		v += n;
	}
}

static enum http_status
field_line(struct http_request *r, char *line)
{
	char *colon, *value;

	if (line[0] == ' ' || line[0] == '\t')
		return fail(r, HTTP_BAD, "obs-fold in the header");
	colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return fail(r, HTTP_BAD, "malformed header field");
	*colon = '\0';
	for (const char *p = line; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(r, HTTP_BAD, *p == ' ' || *p == '\t' ?
			    "white space before a field's colon" :
			    "malformed field name");
	value = trim_ows(colon + 1);
	for (const unsigned char *p = (unsigned char *)value; *p; p++)
		if ((*p < ' ' && *p != '\t') || *p == 0x7f)
			return fail(r, HTTP_BAD, "control character in a field");
	if (r->nf >= HTTP_HEADERS_MAX)
		return fail(r, HTTP_TOO_LARGE, "too many header fields");
	r->f[r->nf].name = line;
	r->f[r->nf].value = value;
	r->nf++;
	return HTTP_OK;
}

/* Framing (RFC 9112 6): one way to find the body's end, or none. */
static enum http_status
framing(struct http_request *r)
{
	const char *cl = NULL, *te = NULL;
	size_t hosts = 0;
	bool close = false, keep = false;

	for (size_t i = 0; i < r->nf; i++) {
		const char *n = r->f[i].name, *v = r->f[i].value;
		if (ascii_strcaseeq(n, "Content-Length")) {
			if (cl)
				return fail(r, HTTP_BAD, "two Content-Lengths");
			cl = v;
		} else if (ascii_strcaseeq(n, "Transfer-Encoding")) {
			if (te)
				return fail(r, HTTP_BAD,
				    "two Transfer-Encoding fields");
			te = v;
		} else if (ascii_strcaseeq(n, "Host"))
			hosts++;
		else if (ascii_strcaseeq(n, "Connection"))
			connection_tokens(v, &close, &keep);
		else if (ascii_strcaseeq(n, "Expect")) {
			if (!ascii_strcaseeq(v, "100-continue"))
				return fail(r, HTTP_BAD, "unknown expectation");
			r->expect_continue = true;
		}
	}
	if (r->minor == 1 && hosts != 1)
		return fail(r, HTTP_BAD, hosts ? "two Host fields" :
		    "no Host field");
	if (hosts > 1)
		return fail(r, HTTP_BAD, "two Host fields");
	if (cl && te)
		return fail(r, HTTP_BAD,
		    "Content-Length with Transfer-Encoding");
	if (te) {
		if (r->minor == 0)
			return fail(r, HTTP_BAD,
			    "Transfer-Encoding in HTTP/1.0");
		if (!ascii_strcaseeq(te, "chunked"))
			return fail(r, HTTP_BAD,
			    "transfer coding other than chunked");
		r->chunked = true;
	}
	if (cl) {
		uint64_t n;
		size_t len = strlen(cl);
		if (len == 0 || len > 18 || strspn(cl, "0123456789") != len ||
		    parse_u64(cl, len, &n) != 0)
			return fail(r, HTTP_BAD, "malformed Content-Length");
		r->content_length = (int64_t)n;
	}
	r->keep_alive = r->minor == 1 ? !close : keep && !close;
	return HTTP_OK;
}

enum http_status
http_parse_head(const char *data, size_t len, struct http_request *r)
{
	enum http_status st;
	char *p, *eol;
	bool first = true;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	while (len >= 2 && data[0] == '\r' && data[1] == '\n') {
		data += 2;
		len -= 2;
	}
	if (memchr(data, '\0', len))
		return fail(r, HTTP_BAD, "NUL in the header");
	r->raw = xstrndup(data, len);
	for (p = r->raw; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
		*eol = '\0';
		if (*p == '\0')
			break;                      /* the empty line */
		if (memchr(p, '\r', (size_t)(eol - p)) ||
		    memchr(p, '\n', (size_t)(eol - p)))
			return fail(r, HTTP_BAD, "bare CR or LF");
		st = first ? request_line(r, p) : field_line(r, p);
		if (st != HTTP_OK)
			return st;
		first = false;
	}
	if (first || eol == NULL)
		return fail(r, HTTP_BAD, "incomplete head");
	return framing(r);
}

void
http_request_clear(struct http_request *r)
{
	free(r->raw);
	free((char *)r->path);
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
}

const char *
http_field(const struct http_request *r, const char *name)
{
	for (size_t i = 0; i < r->nf; i++)
		if (ascii_strcaseeq(r->f[i].name, name))
			return r->f[i].value;
	return NULL;
}

/* --- chunked bodies (RFC 9112 7.1) --------------------------------------- */

enum {
	CH_SIZE,          /* chunk-size [ chunk-ext ] CRLF */
	CH_DATA,          /* chunk-data */
	CH_DATA_CR,       /* the CRLF after it */
	CH_DATA_LF,
	CH_TRAILER,       /* trailer field lines, then the empty line */
	CH_DONE,
};

void
http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* One octet of a chunk-size line; *end when its LF came. */
static enum http_status
size_octet(struct http_chunked *c, unsigned char ch, bool *end)
{
	int h;

	if (++c->line > HTTP_CHUNK_LINE_MAX)
		return HTTP_BAD;
	if (c->cr) {
		if (ch != '\n' || !c->digits)
			return HTTP_BAD;
		*end = true;
		return HTTP_OK;
	}
	if (ch == '\r') {
		c->cr = true;
		return HTTP_OK;
	}
	if (c->ext) {                       /* chunk-ext: checked, dropped */
		if ((ch < ' ' && ch != '\t') || ch == 0x7f)
			return HTTP_BAD;
		return HTTP_OK;
	}
	if (ch == ';' && c->digits) {
		c->ext = true;
		return HTTP_OK;
	}
	if ((h = hexval(ch)) < 0)
		return HTTP_BAD;            /* also BWS before ';' */
	if (c->left >> 60)
		return HTTP_TOO_LARGE;      /* more than 2^64 */
	c->left = c->left << 4 | (uint64_t)h;
	c->digits = true;
	return HTTP_OK;
}

/* One octet of the trailer section; *end after its empty line. */
static enum http_status
trailer_octet(struct http_chunked *c, unsigned char ch, bool *end)
{
	if (++c->trailer > HTTP_TRAILER_MAX)
		return HTTP_TOO_LARGE;
	if (c->cr) {
		if (ch != '\n')
			return HTTP_BAD;
		c->cr = false;
		if (c->line == 0)
			*end = true;
		c->line = 0;
		return HTTP_OK;
	}
	if (ch == '\r') {
		c->cr = true;
		return HTTP_OK;
	}
	if (ch == '\n' || ch == '\0' || ((ch == ' ' || ch == '\t') &&
	    c->line == 0))
		return HTTP_BAD;            /* bare LF, NUL, obs-fold */
	c->line++;
	return HTTP_OK;
}

enum http_status
http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
    size_t *used, struct buf *out, uint64_t max)
{
	size_t i = 0;
	enum http_status st;
	bool end;

	while (i < len && c->state != CH_DONE) {
		unsigned char ch = (unsigned char)in[i];
		switch (c->state) {
		case CH_SIZE:
			end = false;
			if ((st = size_octet(c, ch, &end)) != HTTP_OK) {
				*used = i;
				return st;
			}
			i++;
			if (!end)
				break;
			c->line = 0;
			c->cr = c->ext = c->digits = false;
			if (c->left == 0)
				c->state = CH_TRAILER;
			else if (c->left > max || c->total > max - c->left) {
				*used = i;
				return HTTP_TOO_LARGE;
			} else
				c->state = CH_DATA;
			break;
		case CH_DATA: {
			size_t n = len - i;
			if (n > c->left)
				n = (size_t)c->left;
			buf_append(out, in + i, n);
			c->left -= n;
			c->total += n;
			i += n;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
		case CH_DATA_LF:
			if (ch != (c->state == CH_DATA_CR ? '\r' : '\n')) {
				*used = i;
				return HTTP_BAD;
			}
			i++;
			c->state = c->state == CH_DATA_CR ? CH_DATA_LF :
			    CH_SIZE;
			break;
		case CH_TRAILER:
			end = false;
			if ((st = trailer_octet(c, ch, &end)) != HTTP_OK) {
				*used = i;
				return st;
			}
			i++;
			if (end)
				c->state = CH_DONE;
			break;
		}
	}
	*used = i;
	return c->state == CH_DONE ? HTTP_OK : HTTP_MORE;
}

int
http_path_decode(const char *path, char *out, size_t outsz)
{
	size_t o = 0;

	for (const char *p = path; *p; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = hi << 4 | lo;
			p += 2;
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

const char *
http_reason(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
