/* SPDX-License-Identifier: ISC */
/*
 * scheduler.h - layer 1 (pure): what is due when. A min-heap of (due time,
 * key) entries; the caller passes `now` and owns the timer. Keys are the
 * caller's (dispatch uses message slots); stale entries are the caller's
 * to ignore (it checks its own generation), so removal is never needed.
 */
#ifndef TERN_SCHEDULER_H
#define TERN_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct scheduler_entry {
	int64_t due;         /* in the caller's time unit */
	uint64_t key;
};

struct scheduler {
	struct scheduler_entry *heap;
	size_t len, cap;
};

void scheduler_init(struct scheduler *s);
void scheduler_clear(struct scheduler *s);
void scheduler_add(struct scheduler *s, uint64_t key, int64_t due);
/* Pops one entry due at or before now (its due time in *due, if not
 * NULL); false if none is. */
bool scheduler_pop_due(struct scheduler *s, int64_t now, uint64_t *key,
    int64_t *due);
/* The earliest due time; false if empty. */
bool scheduler_next(const struct scheduler *s, int64_t *due);
size_t scheduler_len(const struct scheduler *s);

/*
 * The built-in retry policy (RFC 5321 4.5.4.1): the delay in seconds
 * before attempt number `attempts` + 1, given `attempts` failures so far:
 * 30 min, then doubling, capped at 4 h.
 */
int64_t scheduler_default_delay(unsigned attempts);

#endif
