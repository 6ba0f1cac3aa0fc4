/* SPDX-License-Identifier: ISC */
/*
 * imap_sort.h - layer 3 helper of the IMAP session: SORT (RFC 5256, with
 * SORT=DISPLAY, RFC 5957) and THREAD=ORDEREDSUBJECT / THREAD=REFERENCES
 * over messages of one folder, on an I/O worker inside the folder's job.
 * The keys come from each message's header, read once and kept with the
 * message while its box lives.
 */
#ifndef TERN_IMAP_SORT_H
#define TERN_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct imap_arg;
struct mbox;
struct sort_keys;

#define IMAP_SORT_MAX 16

struct imap_sort {
	struct { int key; bool reverse; } k[IMAP_SORT_MAX];
	size_t n;
};

/* "(REVERSE DATE SUBJECT)": 0, or -1 if it is not a sort criteria list. */
int imap_sort_parse(const struct imap_arg *a, struct imap_sort *s);

/* The keys of message i (read now if they were not yet). */
const struct sort_keys *imap_sort_keys(struct mbox *mb, size_t i);

/*
 * Orders idx[0..n) (box indices) by the criteria; ties by their order in
 * idx (the sequence numbers), as RFC 5256 wants.
 */
void imap_sort_run(struct mbox *mb, size_t *idx, size_t n,
    const struct imap_sort *s);

/*
 * "* THREAD ..." for idx[0..n), each shown as num[k] (sequence number or
 * UID): ORDEREDSUBJECT or REFERENCES (RFC 5256 3).
 */
void imap_thread_run(struct buf *out, struct mbox *mb, const size_t *idx,
    const uint32_t *num, size_t n, bool references);

#endif
