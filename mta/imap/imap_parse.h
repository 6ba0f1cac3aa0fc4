/* SPDX-License-Identifier: ISC */
/*
 * imap_parse.h - layer 1 (pure): IMAP commands (RFC 9051 9, RFC 3501 9)
 * from the bytes a client sent, in two steps:
 *
 *  1. framing, line by line: imap_line_literal() says whether a line ends
 *     in a literal announcement "{n}" (synchronizing: the server answers
 *     "+" first) or "{n+}" (LITERAL+, RFC 7888); the session then reads n
 *     octets raw and the next line, until a line ends the command;
 *  2. imap_parse_command() turns the whole command (lines and literals,
 *     CRLFs included) into a tag, a name and a tree of arguments: atoms,
 *     strings (quoted or literal), NIL and parenthesised lists. A FETCH
 *     item such as BODY.PEEK[HEADER.FIELDS (From To)]<0.100> is one atom:
 *     a '[' inside an atom runs to its ']' whatever is between.
 *
 * No I/O, no allocation per byte; nesting is bounded. Fuzzed
 * (fuzz_imap_parse).
 */
#ifndef TERN_IMAP_PARSE_H
#define TERN_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define IMAP_TAG_MAX 64
#define IMAP_NAME_MAX 32
#define IMAP_DEPTH_MAX 64          /* nested lists */
#define IMAP_ARGS_MAX 100000       /* arguments in one command, all levels */

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING,           /* quoted or literal */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	char *s;                   /* ATOM, STRING: NUL-terminated copy */
	size_t len;                /* (a literal may hold NUL octets) */
	bool literal;              /* STRING: was a literal */
	bool literal8;             /* STRING: was a literal8 "~{n}" */
	bool native;               /* a mailbox name, now as folders name it */
	struct imap_arg *items;    /* LIST */
	size_t nitems;
};

struct imap_cmd {
	char tag[IMAP_TAG_MAX + 1];
	char name[IMAP_NAME_MAX + 1];  /* upper case */
	struct imap_arg *args;
	size_t nargs;
	size_t total;              /* arguments at all levels */
};

/*
 * Does line[0..len) (without its CRLF) end with "{n}" or "{n+}"? Then
 * *n is the size and *nonsync is true for "{n+}". Literal8 "~{n}"
 * (RFC 3516) is reported the same way.
 */
bool imap_line_literal(const char *line, size_t len, uint64_t *n,
    bool *nonsync);

enum imap_parse_status {
	IMAP_PARSE_OK,
	IMAP_PARSE_NO_TAG,         /* not even a tag: answer "* BAD" */
	IMAP_PARSE_BAD,            /* tagged BAD with the reason */
};

/*
 * Parses one complete command (ending in CRLF). On IMAP_PARSE_BAD the tag
 * is filled in when there was one; why says what was wrong. cmd is
 * cleared first; imap_cmd_clear() frees it in every case.
 */
enum imap_parse_status imap_parse_command(const char *p, size_t len,
    struct imap_cmd *cmd, const char **why);
void imap_cmd_clear(struct imap_cmd *cmd);

/* Convenience for handlers: a string or atom argument as text, or NULL. */
const char *imap_arg_text(const struct imap_arg *a);

/*
 * Writes s as an IMAP string: quoted when it can be, a literal
 * otherwise (CR, LF, NUL, 8-bit without UTF-8, or long).
 */
void imap_write_string(struct buf *out, const char *s, size_t len,
    bool utf8_ok);
/* NIL for NULL, else imap_write_string. */
void imap_write_nstring(struct buf *out, const char *s, bool utf8_ok);

/*
 * Sequence sets (RFC 9051 9, sequence-set): "1:4,7,9:*". Ranges are
 * stored low..high with '*' as max (given: the highest number in use,
 * 0 for an empty mailbox). $ (SEARCHRES) is not handled here.
 */
struct imap_seqset {
	struct { uint32_t lo, hi; } *r;
	size_t n;
};
int imap_seqset_parse(const char *s, uint32_t max, struct imap_seqset *set);
bool imap_seqset_has(const struct imap_seqset *set, uint32_t v);
void imap_seqset_clear(struct imap_seqset *set);
/* "1:3,5" from a sorted list of numbers. */
void imap_seqset_write(struct buf *out, const uint32_t *v, size_t n);

#endif
