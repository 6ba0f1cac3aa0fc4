/* SPDX-License-Identifier: ISC */
/*
 * mimeview.h - reading a message with GMime: the summary headers decoded
 * (RFC 2047) to safe UTF-8, the readable text (text/plain preferred,
 * text/html rendered, transfer encodings and charsets undone), and the
 * attachments. Malformed MIME is shown as well as it can be, never fatal.
 */
#ifndef TERNMAIL_MIMEVIEW_H
#define TERNMAIL_MIMEVIEW_H

#include <gmime/gmime.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

void mv_init(void);

/* Parses a message from memory; never NULL (an empty message at worst).
 * Free with g_object_unref(). */
GMimeMessage *mv_parse(const char *data, size_t len);

struct mv_head {
	char *from;        /* display form: "Name <addr>" or "addr" */
	char *from_short;  /* the name, else the address */
	char *from_addr;   /* the first From: address, or "" */
	char *to, *cc, *reply_to;
	char *subject;
	char *date;        /* local "YYYY-MM-DD HH:MM", or "" */
	char *date_full;   /* the Date: field decoded for display, or "" */
	int64_t time;      /* seconds, 0 if unknown */
	char *message_id;  /* without <>, or "" */
	char *references;  /* "<a> <b>", or "" */
};

void mv_head(GMimeMessage *m, struct mv_head *h);
void mv_head_free(struct mv_head *h);

struct mv_att {
	char *name;        /* the file name (safe UTF-8), or a made-up one */
	char *type;        /* "image/png" */
	size_t size;       /* decoded size in octets */
	GMimeObject *obj;  /* borrowed from the message */
};

struct mv_view {
	struct buf text;   /* the readable body, UTF-8, ends with '\n' */
	struct mv_att *att;
	size_t natt;
};

void mv_render(GMimeMessage *m, struct mv_view *v);
void mv_view_free(struct mv_view *v);

/* Writes attachment a, decoded, to fd. 0, or -1. */
int mv_save(const struct mv_att *a, int fd);

/* The decoded text of one text part as UTF-8 (html rendered when
 * render_html). */
void mv_part_text(GMimePart *p, bool render_html, struct buf *out);

/* The addresses of a list as bare addr-specs, into v (each xstrdup'd). */
size_t mv_addrs(InternetAddressList *l, char ***v, size_t n);

#endif
