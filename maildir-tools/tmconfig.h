/* SPDX-License-Identifier: ISC */
/*
 * tmconfig.h - ternmail's settings: ~/.config/ternmail/config (or
 * $TERNMAIL_CONFIG), then TERNMAIL_<KEY> variables, which win. The file
 * is "key = value" lines; '#' starts a comment; a value may be quoted
 * with "..." (\" and \\ inside).
 */
#ifndef TERNMAIL_TMCONFIG_H
#define TERNMAIL_TMCONFIG_H

#include <stddef.h>

enum tm_key {
	TM_MAILDIR, TM_FROM, TM_NAME, TM_SMTP_HOST, TM_SMTP_PORT,
	TM_SMTP_TLS, TM_SMTP_USER, TM_SMTP_PASSWORD_COMMAND,
	TM_SMTP_CAFILE, TM_SMTP_VERIFY, TM_SENDMAIL, TM_TRANSPORT,
	TM_EDITOR, TM_SENT, TM_DRAFTS, TM_TRASH,
	TM_NKEYS
};

struct tmconfig {
	char *v[TM_NKEYS];   /* NULL when unset */
	char *password;      /* from TERNMAIL_PASSWORD only */
};

/* The name of a key as written in the file ("smtp_host"). */
const char *tmconfig_key_name(enum tm_key k);

/*
 * Parses the file's text into c (pure; values replace earlier ones).
 * Returns 0, or the 1-based number of the first bad line with a reason
 * in why (unknown key, no '=', bad quoting, a NUL byte).
 */
int tmconfig_parse(struct tmconfig *c, const char *text, size_t len,
    char *why, size_t whysz);

/* Reads the file (absent is fine) and the environment; -1 on a bad file
 * (message printed). */
int tmconfig_load(struct tmconfig *c);

void tmconfig_free(struct tmconfig *c);

/* The value or def. */
const char *tmconfig_get(const struct tmconfig *c, enum tm_key k,
    const char *def);

#endif
