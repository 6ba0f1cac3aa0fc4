/* SPDX-License-Identifier: ISC */
/*
 * imap_fetch.h - layer 3 helper of the IMAP session: FETCH (RFC 3501
 * 6.4.5), message flags as IMAP writes them, and IMAP date-times. The
 * answer functions run on an I/O worker inside a folder's job.
 */
#ifndef TERN_IMAP_FETCH_H
#define TERN_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

struct imap_arg;
struct imap_fetch;
struct mbox;
struct mbox_msg;

extern const char *const imap_months[12];

/* The items of a FETCH (an atom, a macro or a list); NULL if bad. */
struct imap_fetch *imap_fetch_parse(const struct imap_arg *a);
void imap_fetch_free(struct imap_fetch *f);

/*
 * Appends "* seq FETCH (...)" for message idx of mb. Items that read the
 * body set \Seen unless readonly (then *changed = true, and FLAGS are in
 * the answer). With condstore, FLAGS come with MODSEQ. A file gone under
 * us answers nothing (the next sync tells the client). -1 (nothing
 * written) when a BINARY item meets an encoding it cannot undo.
 */
#define IMAP_FETCH_UID 0x01u        /* a UID FETCH: UID comes first */
#define IMAP_FETCH_READONLY 0x02u   /* EXAMINE: \Seen is not set */
#define IMAP_FETCH_CONDSTORE 0x04u  /* FLAGS come with MODSEQ */
#define IMAP_FETCH_REV2 0x08u       /* IMAP4rev2: no \Recent */
int imap_fetch_message(struct buf *out, struct mbox *mb, size_t idx,
    size_t seq, const struct imap_fetch *f, unsigned opts, bool *changed,
    struct tern_err *err);

/* The items read what the index's cache keeps (ENVELOPE, BODYSTRUCTURE,
 * BODY, THREADID): fill it first. */
bool imap_fetch_cached(const struct imap_fetch *f);

/* MODSEQ is among the items (a CONDSTORE enabling FETCH); adds it. */
bool imap_fetch_modseq(const struct imap_fetch *f);
void imap_fetch_want_modseq(struct imap_fetch *f);

/* "(\Seen $Work \Recent)"; \Recent only if recent_ok (not IMAP4rev2) */
void imap_write_flags(struct buf *b, const struct mbox *mb,
    const struct mbox_msg *m, bool recent_ok);

/* "1-Dec-2026 21:00:00 +0000" (RFC 3501 date-time) to seconds; -1. */
int64_t imap_parse_datetime(const char *s);

#endif
