/* SPDX-License-Identifier: ISC */
/*
 * jmap_state.h - layer 1: JMAP state strings (RFC 8620 5.1) that carry
 * what /changes needs, so no table of old states is kept and a state
 * stays good across restarts. A state is a letter for its kind and one
 * entry per folder, in id order: the Mailbox id, the folder's
 * HIGHESTMODSEQ and a third number (the next UID for Email states, a
 * hash of name and subscription for Mailbox states), numbers in base
 * 36: "e" "Fab12.kx81s.1a" "_" ... Pure.
 */
#ifndef TERN_JMAP_STATE_H
#define TERN_JMAP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define JSTATE_ID_LEN 40          /* a Mailbox id, with the NUL */

struct jstate_ent {
	char id[JSTATE_ID_LEN];
	uint64_t modseq;
	uint64_t extra;           /* next UID, or the names hash */
};

/* Appends the state of kind (a letter) for e[0..n), sorting e by id. */
void jstate_format(char kind, struct jstate_ent *e, size_t n,
    struct buf *out);

/*
 * Reads a state of kind into *e (malloc'd, *n entries, ids ascending):
 * 0, or -1 for anything that is not one this server gave out.
 */
int jstate_parse(char kind, const char *s, struct jstate_ent **e,
    size_t *n);

/* The entry with id in e[0..n) (sorted), or NULL. */
const struct jstate_ent *jstate_find(const struct jstate_ent *e, size_t n,
    const char *id);

#endif
