/* SPDX-License-Identifier: ISC */
/*
 * arc_seal.h - layer 2: ARC sealing (RFC 8617 5.1) of mail that ternd
 * forwards, with the configured key (config `arc`). The new set carries
 * the Authentication-Results field ternd wrote when the message came in
 * (its authserv-id) and the chain status that field's arc= result gives.
 * The key is read when a configuration is loaded; sealing is pure
 * computation and may run on any thread.
 */
#ifndef TERN_ARC_SEAL_H
#define TERN_ARC_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct config;
struct arc_sealer;

/* The key of cfg->arc, read (NULL if there is none); NULL with err if
 * it cannot be read. */
struct arc_sealer *arc_sealer_new(const struct config *cfg, char *err,
    size_t errsz);
void arc_sealer_free(struct arc_sealer *as);

/*
 * Adds the next ARC set at the top of msg[start..): 1. 0 when it is not
 * to be sealed (why says which): no Authentication-Results of
 * authserv_id, or no arc= result in it, a chain that does not match that
 * result, a chain an earlier sealer failed, 50 sets already. -1 when the
 * key failed to sign. now: for t=.
 */
int arc_seal(const struct arc_sealer *as, struct buf *msg, size_t start,
    const char *authserv_id, int64_t now, char *why, size_t whysz);

#endif
