/* SPDX-License-Identifier: ISC */
/*
 * store.h - ternmail's view of a Maildir++ store on disk: folders, the
 * messages of one folder in arrival order, flag changes and moves (by
 * rename, so another reader never sees a half state), safe delivery
 * (ternd's own deliver_maildir), the structure check, and the message
 * numbers that stay put between `list` and the next command.
 *
 * The naming and flag rules are maildir.c's, shared with ternd.
 */
#ifndef TERNMAIL_STORE_H
#define TERNMAIL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct msg_entry {
	char *path;        /* full path of the file now */
	char *uniq;        /* the unique part of its name */
	bool is_new;       /* in new/ */
	char flags[27];    /* the ":2," flags, ASCII order */
	int64_t arrived;   /* seconds, from the name (else the mtime) */
};

struct msg_list {
	struct msg_entry *v;
	size_t n;
};

/*
 * The directory of a folder: "INBOX" (or NULL/"") is root itself, any
 * other name root/.Name (Maildir++). NULL if the name is not a valid
 * folder name. The caller frees.
 */
char *store_folder_dir(const char *root, const char *folder);

/* True if dir has cur/, new/ and tmp/. */
bool store_is_maildir(const char *dir);

/* Creates dir (and cur/ new/ tmp/); a Maildir++ subfolder also gets its
 * "maildirfolder" marker. 0, or -1 with errno. */
int store_create(const char *dir, bool subfolder);

/* The messages of the folder in dir, oldest arrival first. */
int store_scan(const char *dir, struct msg_list *out);
void store_list_free(struct msg_list *l);

/*
 * Message numbers: store_seq_save() remembers the order just shown for
 * dir; store_resolve() turns number n (1-based) into the message, using
 * that remembered order while its files exist, so numbers do not shift
 * when a message is deleted or arrives. 0, or -1 (no such message).
 */
void store_seq_save(const char *dir, const struct msg_list *l);
int store_resolve(const char *dir, unsigned long n, struct msg_entry *out);
void store_entry_free(struct msg_entry *e);

/* Finds the message file at path (which may have moved between new/ and
 * cur/ or changed flags since). 0, or -1. */
int store_entry_from_path(const char *path, struct msg_entry *out);

/*
 * Changes the flags of a message: the file is renamed into cur/ with
 * ":2,<flags>" (sorted, no repeats). add/del are strings of flag letters.
 * e->path and e->flags are updated. 0, or -1 with errno.
 */
int store_set_flags(struct msg_entry *e, const char *add, const char *del);

/* Moves a message into the Maildir dst (created if missing), keeping its
 * name and flags. 0, or -1 with errno. */
int store_move(struct msg_entry *e, const char *dst, bool subfolder);

/* Removes a message for good. */
int store_unlink(struct msg_entry *e);

/*
 * Delivers data into the Maildir dir (created if missing) the way ternd
 * does: tmp/ -> write -> fsync -> new/ -> fsync of new/. If flags is not
 * NULL the message then goes to cur/ with them (a copy in Sent is seen).
 * 0, or -1 with err (err->code 452 for a full disk or quota).
 */
int store_deliver(const char *dir, bool subfolder, const char *data,
    size_t len, const char *flags, struct tern_err *err);

/*
 * Checks the Maildir++ store at root: missing cur/ new/ tmp/ are created
 * (when repair), tmp/ files older than 36 hours removed (when repair),
 * file names that are not Maildir names reported. Each finding is passed
 * to report. Returns the count of problems left unrepaired.
 */
unsigned store_check(const char *root, bool repair,
    void (*report)(void *arg, const char *what, const char *path), void *arg);

/* The folders of root: "INBOX" first, then the Maildir++ folders sorted.
 * Returns a NULL-terminated array; free with store_folders_free(). */
char **store_folders(const char *root);
void store_folders_free(char **v);

#endif
