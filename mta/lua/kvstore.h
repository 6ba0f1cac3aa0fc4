/* SPDX-License-Identifier: ISC */
/*
 * kvstore.h - layer 2: the small persistent key-value store plugins use
 * (greylisting triplets, rate counters): string keys and values with an
 * optional expiry. In memory on the loop thread; a text snapshot is
 * written to disk (by ternd, on the iopool) when dirty and at shutdown,
 * and read back at start. Bounded in entries.
 */
#ifndef TERN_KVSTORE_H
#define TERN_KVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct kvstore;

/* An empty store. */
struct kvstore *kvstore_new(size_t max_entries);
/* Adds the snapshot at path if it exists; -1 with err on a read error. */
int kvstore_load(struct kvstore *kv, const char *path, int64_t now,
    char *err, size_t errsz);
void kvstore_free(struct kvstore *kv);

/* Borrowed value, valid until the next change; NULL if absent/expired. */
const char *kvstore_get(struct kvstore *kv, const char *key, int64_t now);
/* expires: unix time, 0 = never. -1 if the store is full. */
int kvstore_set(struct kvstore *kv, const char *key, const char *value,
    int64_t expires, int64_t now);
/* Adds delta to a numeric value (absent = 0); keeps its expiry, or sets
 * expires when it is new. Returns the new value in *out; -1 if full. */
int kvstore_incr(struct kvstore *kv, const char *key, int64_t delta,
    int64_t expires, int64_t now, int64_t *out);
void kvstore_del(struct kvstore *kv, const char *key);
size_t kvstore_count(const struct kvstore *kv);

bool kvstore_dirty(const struct kvstore *kv);
/* Appends the snapshot text (live entries) and clears the dirty flag. */
void kvstore_snapshot(struct kvstore *kv, struct buf *out, int64_t now);
/* Blocking: writes a snapshot durably (tmp, fsync, rename). 0 or -1. */
int kvstore_write_file(const char *path, const char *data, size_t len);

#endif
