/* SPDX-License-Identifier: ISC */
/*
 * buf.h - layer 0: a growable byte buffer for pure code. Always keeps a NUL
 * after the data so the contents can be read as a C string when they hold
 * no NUL themselves. Embedded: buf_init()/buf_clear().
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_clear(struct buf *b);          /* frees the storage */
void buf_reset(struct buf *b);          /* len = 0, keeps storage */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Takes the storage out: the caller owns the returned string. */
char *buf_steal(struct buf *b, size_t *lenp);

#endif
