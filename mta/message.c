/* SPDX-License-Identifier: ISC */
/*
 * message.c - layer 1 (pure). RFC 5322 2.2 header fields (name, colon,
 * value, folding by leading WSP), 3.3 dates, RFC 5321 4.4 trace fields.
 * Bytes are LF-terminated lines as the queue and Maildirs store them.
 * Header values pass through as they are: only our own fields are built
 * here, from values the session has already validated (no CR/LF).
 */
#include "message.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

size_t
message_header_len(const char *msg, size_t len)
{
	if (len > 0 && msg[0] == '\n')
		return 1;
	for (size_t i = 0; i + 1 < len; i++) {
		const char *nl = memchr(msg + i, '\n', len - i - 1);
		if (nl == NULL)
			break;
		i = (size_t)(nl - msg);
		if (msg[i + 1] == '\n')
			return i + 2;
	}
	return len;
}

bool
message_next_field(const char *msg, size_t len, size_t *pos,
    struct message_field *f)
{
	size_t i = *pos, start = i, colon;

	if (i >= len || msg[i] == '\n' || msg[i] == ' ' || msg[i] == '\t')
		return false;
	while (i < len && msg[i] != ':' && msg[i] != '\n')
		i++;
	if (i >= len || msg[i] != ':' || i == start)
		return false;
	for (size_t k = start; k < i; k++) {
		unsigned char c = (unsigned char)msg[k];
		if (c <= 32 || c >= 127)  /* ftext, RFC 5322 3.6.8 */
			return false;
	}
	colon = i++;
	while (i < len && (msg[i] == ' ' || msg[i] == '\t'))
		i++;
	f->name = msg + start;
	f->name_len = colon - start;
	f->value = msg + i;
	for (;;) {
		const char *nl = memchr(msg + i, '\n', len - i);
		if (nl == NULL) {
			i = len;
			f->value_len = len - (size_t)(f->value - msg);
			break;
		}
		i = (size_t)(nl - msg) + 1;
		if (i < len && (msg[i] == ' ' || msg[i] == '\t'))
			continue; /* folded */
		f->value_len = (size_t)(nl - f->value);
		break;
	}
	*pos = i;
	return true;
}

bool
message_find_field(const char *msg, size_t len, const char *name,
    struct message_field *f)
{
	size_t pos = 0, nlen = strlen(name);

	while (message_next_field(msg, len, &pos, f))
		if (f->name_len == nlen && ascii_strncaseeq(f->name, name, nlen))
			return true;
	return false;
}

void
message_format_date(char *dst, size_t dstsz, const struct tm *tm,
    long gmtoff)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	long off = gmtoff / 60;
	char sign = off < 0 ? '-' : '+';

	if (off < 0)
		off = -off;
	(void)str_fmt(dst, dstsz, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[(tm->tm_wday % 7 + 7) % 7], tm->tm_mday,
	    months[(tm->tm_mon % 12 + 12) % 12], tm->tm_year + 1900,
	    tm->tm_hour, tm->tm_min, tm->tm_sec, sign, off / 60, off % 60);
}

void
message_append_received(struct buf *out, const struct message_trace *t)
{
	buf_printf(out, "Received: from %s (%s [%s])\n", t->helo,
	    t->client_name ? t->client_name : "unknown", t->client_ip);
	buf_printf(out, "\tby %s (Tern) with %s id %s", t->by_host,
	    t->protocol, t->queue_id);
	if (t->for_rcpt)
		buf_printf(out, "\n\tfor %s", t->for_rcpt);
	buf_printf(out, ";\n\t%s\n", t->date);
}

void
message_append_delivery_fields(struct buf *out, const char *sender_path,
    const char *rcpt)
{
	buf_printf(out, "Return-Path: %s\nDelivered-To: %s\n", sender_path,
	    rcpt);
}
