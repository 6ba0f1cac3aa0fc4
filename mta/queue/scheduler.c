/* SPDX-License-Identifier: ISC */
/*
 * scheduler.c - layer 1 (pure). A binary min-heap; O(log n) add and pop.
 * Time is always a parameter (a fake clock in tests, the loop's cached time
 * in dispatch.c). The default retry delays live here as policy; dispatch
 * applies them until a Lua retry hook overrides (DESIGN.md section 5).
 */
#include "queue/scheduler.h"

#include <stdlib.h>

#include "base/util.h"

void
scheduler_init(struct scheduler *s)
{
	s->heap = NULL;
	s->len = s->cap = 0;
}

void
scheduler_clear(struct scheduler *s)
{
	free(s->heap);
	scheduler_init(s);
}

static bool
before(const struct scheduler_entry *a, const struct scheduler_entry *b)
{
	return a->due < b->due || (a->due == b->due && a->key < b->key);
}

void
scheduler_add(struct scheduler *s, uint64_t key, int64_t due)
{
	size_t i;

	if (s->len == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->heap = xreallocarray(s->heap, s->cap, sizeof(*s->heap));
	}
	i = s->len++;
	s->heap[i].due = due;
	s->heap[i].key = key;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&s->heap[i], &s->heap[parent]))
			break;
		struct scheduler_entry t = s->heap[i];
		s->heap[i] = s->heap[parent];
		s->heap[parent] = t;
		i = parent;
	}
}

bool
scheduler_pop_due(struct scheduler *s, int64_t now, uint64_t *key,
    int64_t *due)
{
	size_t i = 0;

	if (s->len == 0 || s->heap[0].due > now)
		return false;
	*key = s->heap[0].key;
	if (due)
		*due = s->heap[0].due;
	s->heap[0] = s->heap[--s->len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->len && before(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->len && before(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct scheduler_entry t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return true;
}

bool
scheduler_next(const struct scheduler *s, int64_t *due)
{
	if (s->len == 0)
		return false;
	*due = s->heap[0].due;
	return true;
}

size_t
scheduler_len(const struct scheduler *s)
{
	return s->len;
}

int64_t
scheduler_default_delay(unsigned attempts)
{
	int64_t d = 30 * 60;

	for (unsigned i = 1; i < attempts && d < 4 * 3600; i++)
		d *= 2;
	return d > 4 * 3600 ? 4 * 3600 : d;
}
