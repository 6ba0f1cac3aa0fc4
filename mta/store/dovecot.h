/* SPDX-License-Identifier: ISC */
/*
 * dovecot.h - layer 1 (pure): the text of the Dovecot-compatible files of
 * a Maildir++ folder, so that a tree moves between Dovecot and Tern with
 * its UIDs (DESIGN.md section 10):
 *
 *   dovecot-uidlist   "3 V<uidvalidity> N<nextuid> G<guid> [fields]" then
 *                     "<uid> [fields] :<base name>" per message (v3, the
 *                     one written); "1 <uidvalidity> <nextuid>" then
 *                     "<uid> <name>" (v1, Courier's) is read too. Unknown
 *                     header and record fields are kept and written back.
 *   dovecot-keywords  "<index> <keyword>", index 0-25 = Maildir flag a-z.
 *   subscriptions     "V\t2", an empty line, then one name per line with
 *                     the hierarchy separator as a tab (Dovecot 2.x); the
 *                     older one-name-per-line form is read too.
 *
 * No I/O: text in, structures out, and back. Fuzzed (fuzz_dovecot).
 */
#ifndef TERN_DOVECOT_H
#define TERN_DOVECOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct uidlist_rec {
	uint32_t uid;
	char *fields;             /* between the uid and ':', or NULL */
	char *name;               /* the base name (no ":2," info) */
};

struct uidlist {
	int version;              /* as read: 1 or 3 (written: 3) */
	uint32_t uidvalidity;
	uint32_t next_uid;        /* the N field; see uidlist_next_uid */
	char guid[33];            /* 32 hex digits, or "" */
	char *extra;              /* unknown header fields, or NULL */
	struct uidlist_rec *recs; /* ascending uid, no duplicates */
	size_t n, cap;
};

void uidlist_init(struct uidlist *ul);
void uidlist_clear(struct uidlist *ul);
/*
 * Parses the file's text. Records out of order are sorted and a uid seen
 * twice keeps its first line (Dovecot rebuilds such files; dropping a
 * duplicate loses no message: the file is found again by name). -1 with
 * the reason if the header is not one of the two versions.
 */
int uidlist_parse(const char *text, size_t len, struct uidlist *ul,
    char *err, size_t errsz);
/* The v3 text. */
void uidlist_serialize(const struct uidlist *ul, struct buf *out);
/* The uid the next new message gets: max(N, last uid + 1), at least 1. */
uint32_t uidlist_next_uid(const struct uidlist *ul);
/* Appends a record (uid above every other); takes copies. */
void uidlist_add(struct uidlist *ul, uint32_t uid, const char *name,
    const char *fields);

#define KEYWORDS_MAX 26           /* letters a-z in Maildir names */
#define KEYWORD_LEN_MAX 200

struct keywords {
	char *names[KEYWORDS_MAX];  /* NULL: free slot */
};

void keywords_init(struct keywords *kw);
void keywords_clear(struct keywords *kw);
/* Lines "<index> <name>"; bad lines are skipped (as Dovecot does). */
void keywords_parse(const char *text, size_t len, struct keywords *kw);
void keywords_serialize(const struct keywords *kw, struct buf *out);
/* Index of name (case-insensitive, RFC 9051 2.3.2), or -1. */
int keywords_find(const struct keywords *kw, const char *name);
/* Index of name, given the first free slot if new; -1 if all 26 taken. */
int keywords_add(struct keywords *kw, const char *name);
/* An IMAP flag-keyword: atom characters, not starting with '\'. */
bool keywords_valid(const char *name);

/* subscriptions: calls cb with each name, '/' as the separator. */
typedef void (*subscriptions_cb)(void *arg, const char *name);
void subscriptions_parse(const char *text, size_t len, subscriptions_cb cb,
    void *arg);
/* Writes the v2 form of names[0..n) ('/' separated). */
void subscriptions_serialize(const char *const *names, size_t n,
    struct buf *out);

#endif
