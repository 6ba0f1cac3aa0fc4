/* SPDX-License-Identifier: ISC */
/*
 * quota.h - layer 2: the per-user quota (config limits.quota_storage and
 * limits.quota_messages, the same for every account): what an account's
 * Maildir++ tree uses, and the check that delivery (452 4.2.2, the
 * message stays queued and is retried) and IMAP APPEND (NO [OVERQUOTA])
 * make before they write. Blocking, thread-safe.
 */
#ifndef TERN_QUOTA_H
#define TERN_QUOTA_H

#include <stdint.h>

#include "base/util.h"

struct quota_use {
	uint64_t bytes;           /* as Maildir++ counts: S= sizes */
	uint64_t messages;
};

/* The account's use (counted now, or a count at most 30 s old). */
void quota_use(const char *root, struct quota_use *u);
/*
 * The last count (at most 10 minutes old, moved along by ternd's own
 * writes) without counting: 0, or -1 if there is none. For the loop
 * thread (SMTP RCPT): it never touches the disk.
 */
int quota_peek(const char *root, struct quota_use *u);
/* What this process added or removed since the last count. */
void quota_add(const char *root, int64_t bytes, int64_t messages);
/* Count again at the next look (after expunges, say). */
void quota_forget(const char *root);
/* The account root of a folder's path (root/.Folder is in root). */
void quota_root(const char *maildir, char *out, size_t outsz);
/*
 * 0 if adding a message of this size keeps the account within the
 * limits (0 = no limit), else -1 with 452 4.2.2 in err (temporary).
 */
int quota_check(const char *root, uint64_t max_bytes,
    uint64_t max_messages, uint64_t adding, struct tern_err *err);

#endif
