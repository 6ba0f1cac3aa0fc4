/* SPDX-License-Identifier: ISC */
/*
 * smtp_parse.h - layer 1 (pure): one SMTP command line (without its CRLF)
 * into a struct smtp_cmd: the verb, the argument, the RFC 5321 path of
 * MAIL/RCPT (quoted local parts unquoted, source routes dropped, <> as the
 * null path) and the ESMTP parameters. No I/O; fuzzed by fuzz_smtp_parse.
 */
#ifndef TERN_SMTP_PARSE_H
#define TERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_CMD_LINE_MAX 512  /* RFC 5321 4.5.3.1.4, including CRLF */
/* MAIL and RCPT: longer by ENVID's 100 and ORCPT's 500 (RFC 3461 5) */
#define SMTP_MAILRCPT_LINE_MAX (SMTP_CMD_LINE_MAX + 600)
#define SMTP_TEXT_LINE_MAX 1000 /* RFC 5321 4.5.3.1.6, including CRLF */
#define SMTP_LOCAL_MAX 64      /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255    /* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256      /* RFC 5321 4.5.3.1.3, with the brackets */
#define SMTP_PARAMS_MAX 16

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB_LHLO,          /* LMTP's EHLO (RFC 2033 4.1) */
};

enum smtp_parse_status {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN,      /* no such verb */
	SMTP_PARSE_BAD_CHAR,     /* CR, LF, NUL or other control byte */
	SMTP_PARSE_SYNTAX,       /* verb known, arguments malformed */
	SMTP_PARSE_BAD_SENDER,   /* MAIL path malformed */
	SMTP_PARSE_BAD_RCPT,     /* RCPT path malformed */
	SMTP_PARSE_BAD_PARAM,    /* ESMTP parameter malformed */
};

struct smtp_addr {
	bool null;                          /* the null path <> */
	bool quoted;                        /* local part was a quoted string */
	bool utf8;                          /* non-ASCII local part or domain
	                                     * (RFC 6531: UTF-8, U-labels) */
	char local[SMTP_LOCAL_MAX + 1];     /* unquoted */
	char domain[SMTP_DOMAIN_MAX + 1];   /* "" for <postmaster> */
};

struct smtp_param {
	const char *key;                    /* upper-cased */
	const char *value;                  /* NULL when the key has none */
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;                    /* text after the verb, "" if none */
	struct smtp_addr addr;              /* MAIL and RCPT */
	size_t nparams;
	struct smtp_param params[SMTP_PARAMS_MAX];
	char storage[SMTP_MAILRCPT_LINE_MAX + 1];
};

/*
 * Parses line[0..len) (no CRLF); a line over SMTP_CMD_LINE_MAX (with its
 * CRLF) is a syntax error unless it is MAIL or RCPT (then the limit is
 * SMTP_MAILRCPT_LINE_MAX). On SMTP_PARSE_OK or SYNTAX-class errors
 * cmd->verb is set; pointers in cmd point into cmd->storage.
 */
enum smtp_parse_status smtp_parse_command(const char *line, size_t len,
    struct smtp_cmd *cmd);

/*
 * Parses a bare RFC 5321 Mailbox ("local@domain", no brackets) into addr;
 * 0 or -1.
 */
int smtp_parse_mailbox(const char *s, size_t len, struct smtp_addr *addr);

/*
 * Writes the address as an RFC 5321 path "<local@domain>", quoting the
 * local part when it needs it; "<>" for the null path. 0, or -1 when it
 * does not fit.
 */
int smtp_addr_format(const struct smtp_addr *addr, char *dst, size_t dstsz);

/*
 * The ASCII form of a path "<local@domain>": its domain as A-labels (a
 * path that is ASCII already is copied). 0, or -1 when the local part is
 * not ASCII (only SMTPUTF8 can carry it) or the path does not parse.
 */
int smtp_path_ascii(const char *path, char *dst, size_t dstsz);

/* True if s is a syntactically valid domain or address literal (EHLO). */
bool smtp_valid_domain(const char *s, size_t len);

/* Looks up a parameter by upper-case key; NULL if absent. */
const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd,
    const char *key);

const char *smtp_verb_name(enum smtp_verb verb);

#endif
