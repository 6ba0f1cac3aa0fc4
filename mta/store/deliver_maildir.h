/* SPDX-License-Identifier: ISC */
/*
 * deliver_maildir.h - layer 2: the only writer of users' Maildirs.
 * deliver_maildir_sync() blocks (run it on an iopool worker) and returns
 * only once the message is durable in new/.
 */
#ifndef TERN_DELIVER_MAILDIR_H
#define TERN_DELIVER_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/util.h"
#include "mail/maildir.h"

struct deliver_maildir;

/* host: this machine's name for the unique file names. */
struct deliver_maildir *deliver_maildir_new(const char *host);
void deliver_maildir_free(struct deliver_maildir *d);

/*
 * Writes iov into maildir (a directory path; created with cur/ new/ tmp/
 * and missing parents if absent) following tmp -> fsync -> new -> fsync
 * dir. Thread-safe. 0 with the file's name in name_out, or -1 with err
 * (temporary unless the path cannot be a Maildir).
 */
int deliver_maildir_sync(struct deliver_maildir *d, const char *maildir,
    const char *tag, const struct iovec *iov, int iovcnt, char *name_out,
    size_t namesz, struct tern_err *err);
/*
 * The same with src_len octets of the file src_fd (from src_off) after
 * iov, copied in the kernel (base/fdcopy.h): a big message goes from
 * its queue file into the Maildir without being read into memory.
 */
int deliver_maildir_sync_from(struct deliver_maildir *d, const char *maildir,
    const char *tag, const struct iovec *iov, int iovcnt, int src_fd,
    uint64_t src_off, uint64_t src_len, char *name_out, size_t namesz,
    struct tern_err *err);

/*
 * One message for several Maildirs, stored once: src (a file delivered
 * by the calls above, size octets) is hard-linked into the new/ of each
 * maildirs[i] that is not NULL, under a name of its own carrying tags[i]
 * (names[i]), and durable as above when ok[i]. Where ok[i] is false
 * errs[i] says why (another filesystem, src moved meanwhile, ...): the
 * caller writes that copy itself.
 */
void deliver_maildir_link_all(struct deliver_maildir *d, const char *src,
    uint64_t size, size_t n, char *const *maildirs, const char *const *tags,
    char (*names)[MAILDIR_NAME_MAX + 1], bool *ok, struct tern_err *errs);

/* fsync(2) of a directory by path; 0, or -1 with errno. */
int deliver_fsync_dir(const char *path);

/*
 * Crash recovery: true if maildir/new or maildir/cur holds a file whose
 * name carries tag (as written by deliver_maildir_sync). Blocking; reads
 * the directories, so call it only for messages recovered after a start.
 */
bool deliver_maildir_has_tag(const char *maildir, const char *tag);

#endif
