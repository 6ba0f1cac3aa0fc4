/* SPDX-License-Identifier: ISC */
/*
 * fdcopy.h - layer 2: octets of one file appended to another in the
 * kernel (copy_file_range), in 64 KiB pieces where it cannot: a big
 * message goes from the spool into the queue file or a Maildir without
 * passing through ternd's memory. Blocking: I/O threads only.
 */
#ifndef TERN_FDCOPY_H
#define TERN_FDCOPY_H

#include <stdint.h>
#include <sys/types.h>

/* len octets of from, starting at off, written at to's offset. 0, or -1
 * with errno (EIO if from is shorter than that). */
int fd_copy(int to, int from, off_t off, uint64_t len);

#endif
