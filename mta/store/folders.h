/* SPDX-License-Identifier: ISC */
/*
 * folders.h - layer 2: the folders of an account's Maildir++ tree, named
 * as Dovecot names them: INBOX is the root Maildir, "A/B" is the
 * directory ".A.B" (mailbox names in modified UTF-7, as on the IMAP wire
 * for IMAP4rev1 clients; '/' the hierarchy separator, '.' therefore not
 * allowed in a name). Blocking: runs on I/O workers.
 */
#ifndef TERN_FOLDERS_H
#define TERN_FOLDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"

#define FOLDER_NAME_MAX 255

/*
 * The directory of mailbox name (INBOX case-insensitive), or -1 if the
 * name is not allowed: empty, not modified UTF-7, '.', "//", a leading
 * or trailing '/', control characters, over FOLDER_NAME_MAX.
 */
int folders_path(const char *root, const char *name, char *out,
    size_t outsz);
/* INBOX in its canonical spelling when name is any case of it. */
const char *folders_canonical(const char *name);

/* Every mailbox of the tree, INBOX first (owned array of owned names). */
int folders_list(const char *root, char ***names, size_t *n);
void folders_list_free(char **names, size_t n);

/* CREATE: the Maildir (cur new tmp, maildirfolder); -1 if it exists. */
int folders_create(const char *root, const char *name, struct tern_err *err);
/* DELETE: the folder's files and directory (not its children). */
int folders_delete(const char *root, const char *name, struct tern_err *err);
/* RENAME, with the folder's children. */
int folders_rename(const char *root, const char *from, const char *to,
    struct tern_err *err);

/* The special-use attribute of a name ("\\Sent"), or NULL. */
const char *folders_special_use(const char *name);
/* The account's root Maildir (and its parents), if missing. */
void folders_ensure_root(const char *root);
/* Drafts, Sent, Trash, Junk, Archive: made when missing (first login). */
void folders_ensure_special(const char *root);

/* subscriptions (the file at the root) */
int folders_subscriptions(const char *root, char ***names, size_t *n);
int folders_subscribe(const char *root, const char *name, bool on,
    struct tern_err *err);

#endif
