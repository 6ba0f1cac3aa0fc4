/* SPDX-License-Identifier: ISC */
/*
 * dirsync.h - layer 2: group commit for directory fsyncs. After a rename
 * into a directory, a worker calls dirsync_after_rename(); it returns once
 * an fsync of that directory that *started after the rename* has
 * completed. Concurrent callers share one fsync. Thread-safe; blocking.
 */
#ifndef TERN_DIRSYNC_H
#define TERN_DIRSYNC_H

struct dirsync;

/* Takes ownership of dirfd (an O_RDONLY|O_DIRECTORY descriptor). */
struct dirsync *dirsync_new(int dirfd);
void dirsync_free(struct dirsync *ds);
/* 0 once durable, -1 with errno if the fsync failed. */
int dirsync_after_rename(struct dirsync *ds);
int dirsync_fd(const struct dirsync *ds);

#endif
