/* SPDX-License-Identifier: ISC */
/*
 * blobs.h - layer 2: blobs uploaded over JMAP (RFC 8620 6.1),
 * kept in the account's Maildir root under tern-uploads/ (a name
 * without a leading dot, so no Maildir++ folder), one file per blob named
 * by its id: "U" and the first 32 hex digits of the content's SHA-256,
 * so an upload of the same octets is the same blob. They are for
 * attaching and importing; one not touched for UPLOAD_KEEP_SECS is
 * removed by the next upload. Blocking: on an I/O worker.
 */
#ifndef TERN_BLOBS_H
#define TERN_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

#define BLOB_ID_LEN 34           /* "U" + 32 hex + NUL */
#define BLOB_DIR "tern-uploads"
#define UPLOAD_KEEP_SECS (24 * 3600)

/* Is id one of ours ("U" and 32 lower-case hex digits)? */
bool blob_id_valid(const char *id);

/*
 * Keeps data[0..len), or the fdsize octets of fd if fd >= 0, as a blob
 * of the account at root: its id in id. 0, or -1 and err.
 */
int blob_store(const char *root, const char *data, size_t len, int fd,
    uint64_t fdsize, char id[BLOB_ID_LEN], struct tern_err *err);

/*
 * An unnamed file in dir for a body on its way in (O_TMPFILE, else made
 * and unlinked at once: nothing is left if ternd dies): its fd, or -1.
 */
int blob_spool_file(const char *dir);

/* The octets of blob id (at most max) into out: 0, or -1 (no such). */
int blob_read(const char *root, const char *id, struct buf *out,
    size_t max);

#endif
