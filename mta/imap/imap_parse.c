/* SPDX-License-Identifier: ISC */
/*
 * imap_parse.c - layer 1 (pure): IMAP command framing and parsing, string
 * output and sequence sets (imap_parse.h). Grammar: RFC 9051 section 9;
 * literals RFC 9051 4.3 and RFC 7888 (LITERAL+). Called by the IMAP
 * session on the loop thread with bytes it has already framed.
 */
#include "imap/imap_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

bool
imap_line_literal(const char *line, size_t len, uint64_t *n, bool *nonsync)
{
	size_t i;

	if (len < 3 || line[len - 1] != '}')
		return false;
	i = len - 1;
	*nonsync = false;
	if (line[i - 1] == '+') {
		*nonsync = true;
		i--;
	}
	size_t end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || line[i - 1] != '{' || end - i > 19)
		return false;
	return parse_u64(line + i, end - i, n) == 0;
}

struct parser {
	const char *p;
	size_t len, i;
	size_t total;
	const char *why;
};

static bool
is_atom_char(unsigned char c)
{
	/* ATOM-CHAR: any CHAR except atom-specials (RFC 9051 9) */
	return c > ' ' && c < 0x7f && !strchr("(){%*\"\\]", c);
}

static bool
at(const struct parser *ps, char c)
{
	return ps->i < ps->len && ps->p[ps->i] == c;
}

static void
arg_free(struct imap_arg *a)
{
	free(a->s);
	for (size_t i = 0; i < a->nitems; i++)
		arg_free(&a->items[i]);
	free(a->items);
}

static int parse_args(struct parser *ps, struct imap_arg **out, size_t *n,
    int depth, bool inlist);

/* A quoted string: '"' then TEXT-CHARs with \" and \\ escapes. */
static int
parse_quoted(struct parser *ps, struct imap_arg *a)
{
	struct buf b;

	buf_init(&b);
	ps->i++;
	while (ps->i < ps->len && ps->p[ps->i] != '"') {
		char c = ps->p[ps->i];
		if (c == '\r' || c == '\n' || c == '\0') {
			ps->why = "line break or NUL in a quoted string";
			buf_clear(&b);
			return -1;
		}
		if (c == '\\') {
			if (ps->i + 1 >= ps->len || (ps->p[ps->i + 1] != '"' &&
			    ps->p[ps->i + 1] != '\\')) {
				ps->why = "bad escape in a quoted string";
				buf_clear(&b);
				return -1;
			}
			ps->i++;
			c = ps->p[ps->i];
		}
		buf_append_char(&b, c);
		ps->i++;
	}
	if (!at(ps, '"')) {
		ps->why = "unterminated quoted string";
		buf_clear(&b);
		return -1;
	}
	ps->i++;
	a->type = IMAP_ARG_STRING;
	a->len = b.len;
	a->s = b.data ? buf_steal(&b, NULL) : xstrdup("");
	return 0;
}

/* "{n}" or "{n+}" (or "~{n}"), CRLF, then n octets. */
static int
parse_literal(struct parser *ps, struct imap_arg *a)
{
	uint64_t n = 0;
	size_t digits = 0;
	bool eight = at(ps, '~');

	if (eight)
		ps->i++;
	ps->i++;  /* '{' */
	while (ps->i < ps->len && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9') {
		if (++digits > 19) {
			ps->why = "literal size too large";
			return -1;
		}
		n = n * 10 + (uint64_t)(ps->p[ps->i++] - '0');
	}
	if (at(ps, '+'))
		ps->i++;
	if (digits == 0 || !at(ps, '}') || ps->i + 2 >= ps->len ||
	    ps->p[ps->i + 1] != '\r' || ps->p[ps->i + 2] != '\n') {
		ps->why = "bad literal";
		return -1;
	}
	ps->i += 3;
	if (n > ps->len - ps->i) {
		ps->why = "literal longer than the command";
		return -1;
	}
	a->type = IMAP_ARG_STRING;
	a->literal = true;
	a->literal8 = eight;
	a->len = (size_t)n;
	a->s = xmalloc((size_t)n + 1);
	memcpy(a->s, ps->p + ps->i, (size_t)n);
	a->s[n] = '\0';
	ps->i += (size_t)n;
	return 0;
}

/* An atom; a '[' inside it runs to the matching ']' (FETCH sections). */
static int
parse_atom(struct parser *ps, struct imap_arg *a)
{
	size_t start = ps->i;

	while (ps->i < ps->len) {
		unsigned char c = (unsigned char)ps->p[ps->i];
		if (c == '[') {
			size_t depth = 0;
			while (ps->i < ps->len) {
				c = (unsigned char)ps->p[ps->i];
				if (c == '\r' || c == '\n' || c == '\0')
					break;
				if (c == '[')
					depth++;
				else if (c == ']' && --depth == 0)
					break;
				ps->i++;
			}
			if (!at(ps, ']')) {
				ps->why = "unbalanced [ ]";
				return -1;
			}
			ps->i++;
			continue;
		}
		/* "*" and "%" are atom-specials but usual in sequence sets
		 * and LIST patterns: allowed inside an atom */
		if (!is_atom_char(c) && c != '*' && c != '%' &&
		    !(c == '\\' && ps->i == start))   /* a flag: \Seen */
			break;
		ps->i++;
	}
	if (ps->i == start) {
		ps->why = "unexpected character";
		return -1;
	}
	size_t n = ps->i - start;
	if (n == 3 && ascii_strncaseeq(ps->p + start, "NIL", 3)) {
		a->type = IMAP_ARG_NIL;
		return 0;
	}
	a->type = IMAP_ARG_ATOM;
	a->s = xstrndup(ps->p + start, n);
	a->len = n;
	return 0;
}

static int
parse_one(struct parser *ps, struct imap_arg *a, int depth)
{
	char c = ps->p[ps->i];

	if (++ps->total > IMAP_ARGS_MAX) {
		ps->why = "too many arguments";
		return -1;
	}
	if (c == '"')
		return parse_quoted(ps, a);
	if (c == '{' || (c == '~' && ps->i + 1 < ps->len &&
	    ps->p[ps->i + 1] == '{'))
		return parse_literal(ps, a);
	if (c == '(') {
		if (depth >= IMAP_DEPTH_MAX) {
			ps->why = "lists nested too deeply";
			return -1;
		}
		ps->i++;
		a->type = IMAP_ARG_LIST;
		if (parse_args(ps, &a->items, &a->nitems, depth + 1, true) != 0)
			return -1;
		if (!at(ps, ')')) {
			ps->why = "unbalanced parentheses";
			return -1;
		}
		ps->i++;
		return 0;
	}
	return parse_atom(ps, a);
}

/*
 * Arguments separated by single spaces, up to ')' (in a list) or the CR
 * of the final CRLF (top level); "()" is an empty list.
 */
static int
parse_args(struct parser *ps, struct imap_arg **out, size_t *n, int depth,
    bool inlist)
{
	char end = inlist ? ')' : '\r';
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (ps->i >= ps->len) {
		ps->why = "missing CRLF";
		return -1;
	}
	if (ps->p[ps->i] == end)
		return 0;
	for (;;) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		struct imap_arg *a = &(*out)[*n];
		memset(a, 0, sizeof(*a));
		(*n)++;
		if (parse_one(ps, a, depth) != 0)
			return -1;
		if (ps->i >= ps->len) {
			ps->why = "missing CRLF";
			return -1;
		}
		char c = ps->p[ps->i];
		if (c == end)
			return 0;
		if (c == ')' || c == '\r') {
			ps->why = "unbalanced parentheses";
			return -1;
		}
		if (c == '\n') {
			ps->why = "bare LF (lines end in CRLF)";
			return -1;
		}
		if (c != ' ') {
			ps->why = "expected a space between arguments";
			return -1;
		}
		ps->i++;
		if (ps->i >= ps->len || ps->p[ps->i] == ' ' ||
		    ps->p[ps->i] == end) {
			ps->why = "a space where an argument should be";
			return -1;
		}
	}
}

void
imap_cmd_clear(struct imap_cmd *cmd)
{
	for (size_t i = 0; i < cmd->nargs; i++)
		arg_free(&cmd->args[i]);
	free(cmd->args);
	memset(cmd, 0, sizeof(*cmd));
}

enum imap_parse_status
imap_parse_command(const char *p, size_t len, struct imap_cmd *cmd,
    const char **why)
{
	struct parser ps = { p, len, 0, 0, NULL };
	size_t start;

	memset(cmd, 0, sizeof(*cmd));
	*why = "syntax error";
	/* tag: 1*<any ASTRING-CHAR except "+"> */
	start = 0;
	while (ps.i < len && is_atom_char((unsigned char)p[ps.i]) &&
	    p[ps.i] != '+')
		ps.i++;
	if (ps.i == start || ps.i - start > IMAP_TAG_MAX || ps.i >= len ||
	    p[ps.i] != ' ') {
		*why = ps.i == start ? "missing tag" : "bad tag";
		return IMAP_PARSE_NO_TAG;
	}
	memcpy(cmd->tag, p, ps.i);
	cmd->tag[ps.i] = '\0';
	ps.i++;
	start = ps.i;
	while (ps.i < len && ((p[ps.i] >= 'A' && p[ps.i] <= 'Z') ||
	    (p[ps.i] >= 'a' && p[ps.i] <= 'z') ||
	    (p[ps.i] >= '0' && p[ps.i] <= '9') || p[ps.i] == '-'))
		ps.i++;
	if (ps.i == start || ps.i - start > IMAP_NAME_MAX) {
		*why = "missing or bad command name";
		return IMAP_PARSE_BAD;
	}
	for (size_t k = start; k < ps.i; k++)
		cmd->name[k - start] = (char)(ps.p[k] >= 'a' && ps.p[k] <= 'z' ?
		    ps.p[k] - 32 : ps.p[k]);
	cmd->name[ps.i - start] = '\0';
	if (ps.i < len && p[ps.i] != ' ' && p[ps.i] != '\r') {
		*why = "bad command name";
		return IMAP_PARSE_BAD;
	}
	if (ps.i < len && p[ps.i] == ' ')
		ps.i++;
	if (parse_args(&ps, &cmd->args, &cmd->nargs, 0, false) != 0) {
		*why = ps.why ? ps.why : "syntax error";
		return IMAP_PARSE_BAD;
	}
	cmd->total = ps.total;
	if (ps.i + 2 != len || p[ps.i] != '\r' || p[ps.i + 1] != '\n') {
		*why = "junk after the command";
		return IMAP_PARSE_BAD;
	}
	return IMAP_PARSE_OK;
}

const char *
imap_arg_text(const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING)
		return NULL;
	if (memchr(a->s, '\0', a->len))
		return NULL;
	return a->s;
}

void
imap_write_string(struct buf *out, const char *s, size_t len, bool utf8_ok)
{
	bool quote = len < 1024;

	for (size_t i = 0; quote && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0' ||
		    (c >= 0x80 && !utf8_ok))
			quote = false;
	}
	if (!quote) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, s[i]);
	}
	buf_append_char(out, '"');
}

void
imap_write_nstring(struct buf *out, const char *s, bool utf8_ok)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		imap_write_string(out, s, strlen(s), utf8_ok);
}

/* --- sequence sets --------------------------------------------------- */

static int
seq_number(const char **s, uint32_t max, uint32_t *v)
{
	const char *p = *s;
	uint64_t n = 0;

	if (*p == '*') {
		*v = max;
		*s = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (uint64_t)(*p++ - '0');
		if (n > UINT32_MAX)
			return -1;
	}
	*v = (uint32_t)n;
	*s = p;
	return 0;
}

int
imap_seqset_parse(const char *s, uint32_t max, struct imap_seqset *set)
{
	size_t cap = 0;

	set->r = NULL;
	set->n = 0;
	for (;;) {
		uint32_t a, b;
		if (seq_number(&s, max, &a) != 0)
			goto bad;
		b = a;
		if (*s == ':') {
			s++;
			if (seq_number(&s, max, &b) != 0)
				goto bad;
		}
		if (set->n == cap) {
			if (cap >= 100000)
				goto bad;
			cap = cap ? cap * 2 : 4;
			set->r = xreallocarray(set->r, cap, sizeof(*set->r));
		}
		set->r[set->n].lo = a < b ? a : b;
		set->r[set->n].hi = a < b ? b : a;
		set->n++;
		if (*s == '\0')
			return 0;
		if (*s++ != ',')
			goto bad;
	}
bad:
	imap_seqset_clear(set);
	return -1;
}

bool
imap_seqset_has(const struct imap_seqset *set, uint32_t v)
{
	for (size_t i = 0; i < set->n; i++)
		if (v >= set->r[i].lo && v <= set->r[i].hi)
			return true;
	return false;
}

void
imap_seqset_clear(struct imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

void
imap_seqset_write(struct buf *out, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0)
			buf_append_char(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", v[i], v[j]);
		else
			buf_printf(out, "%u", v[i]);
		i = j + 1;
	}
}
