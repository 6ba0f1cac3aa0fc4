/* SPDX-License-Identifier: ISC */
/*
 * dirsync.h - layer 2: group commit for directory fsyncs. After a rename
 * into a directory, a worker calls dirsync_after_rename(); it returns once
 * an fsync of that directory that *started after the rename* has
 * completed. Concurrent callers share one fsync. Thread-safe; blocking.
 * The process's fsyncs are counted (scripts/bench prints them per
 * message; ternd logs them when it stops).
 */
#ifndef TERN_DIRSYNC_H
#define TERN_DIRSYNC_H

struct dirsync;

/* Takes ownership of dirfd (an O_RDONLY|O_DIRECTORY descriptor). */
struct dirsync *dirsync_new(int dirfd);
void dirsync_free(struct dirsync *ds);
/*
 * A write that ends in a rename into this directory begins (before its
 * file is created): while such writes are under way, the caller that is
 * to run the next fsync waits for them a moment (at most
 * DIRSYNC_WINDOW_US), so that one fsync covers their renames too. Each
 * begin is ended by dirsync_after_rename() or, if the write failed before
 * its rename, dirsync_abandon().
 */
#ifndef DIRSYNC_WINDOW_US
#define DIRSYNC_WINDOW_US 1000
#endif
void dirsync_begin(struct dirsync *ds);
void dirsync_abandon(struct dirsync *ds);
/* 0 once durable, -1 with errno if the fsync failed. */
int dirsync_after_rename(struct dirsync *ds);
int dirsync_fd(const struct dirsync *ds);

/* fsync(fd) of a file, counted (dirsync_counts) */
int dirsync_fsync_file(int fd);
/* fsyncs so far in this process: of files, of directories */
void dirsync_counts(unsigned long long *files, unsigned long long *dirs);

#endif
