/* SPDX-License-Identifier: ISC */
/*
 * smtp_data.c - layer 1 (pure). A byte-at-a-time state machine; runs of
 * ordinary bytes are copied in bulk. States:
 *
 *   BOL      at the start of a line (after CRLF, or at the very start)
 *   DOT      BOL saw '.'; a CR next may be the end of data
 *   DOT_CR   saw "<BOL>.\r"; LF ends the data, anything else is a bare CR
 *   MID      inside a line
 *   CR       saw '\r' inside a line; LF makes a line end
 *
 * A bare LF or bare CR sets an error flag and is treated as an ordinary
 * byte that does *not* start a line: so "\n.\n", "\n.\r\n", "\r.\r" and
 * "\r\n\0.\r\n" can never end the transfer. After an error the rest of the
 * transfer is still read (to stay in step with the client) but not stored.
 */
#include "smtp/smtp_data.h"

#include "smtp/smtp_parse.h"

enum { ST_BOL, ST_DOT, ST_DOT_CR, ST_MID, ST_CR };

void
smtp_data_init(struct smtp_data *d, struct buf *out, uint64_t max_size)
{
	d->state = ST_BOL;
	d->linelen = 0;
	d->size = 0;
	d->max_size = max_size;
	d->errors = 0;
	d->out = out;
	d->in_header = true;
	d->header_size = 0;
	d->fields = 0;
	d->max_header_size = 0;
	d->max_fields = 0;
	d->chunks = false;
}

void
smtp_data_init_chunks(struct smtp_data *d, struct buf *out, uint64_t max_size)
{
	smtp_data_init(d, out, max_size);
	d->chunks = true;
}

void
smtp_data_set_header_limits(struct smtp_data *d, uint64_t max_size,
    unsigned max_fields)
{
	d->max_header_size = max_size;
	d->max_fields = max_fields;
}

/* The first octet of a line while in the header: a new field or a fold. */
static void
header_line_start(struct smtp_data *d, char c)
{
	if (c == ' ' || c == '\t')
		return;
	d->fields++;
	if (d->max_fields && d->fields > d->max_fields)
		d->errors |= SMTP_DATA_ERR_TOO_MANY_FIELDS;
}

static void
header_count(struct smtp_data *d, size_t n)
{
	if (!d->in_header)
		return;
	d->header_size += n;
	if (d->max_header_size && d->header_size > d->max_header_size)
		d->errors |= SMTP_DATA_ERR_HEADER_TOO_BIG;
}

static void
emit(struct smtp_data *d, const char *p, size_t n)
{
	if (d->errors == 0 && n > 0)
		buf_append(d->out, p, n);
}

/* Counts n octets of line content; flags long lines and size overrun. */
static void
count(struct smtp_data *d, size_t n)
{
	header_count(d, n);
	d->linelen += n;
	d->size += n;
	if (d->linelen > SMTP_TEXT_LINE_MAX - 2)
		d->errors |= SMTP_DATA_ERR_LINE_TOO_LONG;
	if (d->max_size && d->size > d->max_size)
		d->errors |= SMTP_DATA_ERR_TOO_BIG;
}

static void
end_line(struct smtp_data *d)
{
	header_count(d, 2);
	if (d->linelen == 0)
		d->in_header = false;   /* the empty line ends the header */
	d->size += 2;
	if (d->max_size && d->size > d->max_size)
		d->errors |= SMTP_DATA_ERR_TOO_BIG;
	emit(d, "\n", 1);
	d->linelen = 0;
	d->state = ST_BOL;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *p, size_t n, bool *done)
{
	size_t i = 0;

	*done = false;
	while (i < n) {
		char c = p[i];

		switch (d->state) {
		case ST_BOL:
			if (c == '.' && !d->chunks) {
				d->state = ST_DOT;
				i++;
				continue;
			}
			d->state = ST_MID;
			continue; /* handle c in MID */
		case ST_DOT:
			if (c == '\r') {
				d->state = ST_DOT_CR;
				i++;
				continue;
			}
			/* A stuffed dot: drop it (RFC 5321 4.5.2). */
			d->state = ST_MID;
			continue;
		case ST_DOT_CR:
			if (c == '\n') {
				*done = true;
				d->state = ST_BOL;
				return i + 1;
			}
			/* ".\r" then not LF: a line "." followed by a bare CR. */
			d->errors |= SMTP_DATA_ERR_BARE_CR;
			count(d, 1);
			d->state = ST_MID;
			continue;
		case ST_CR:
			if (c == '\n') {
				i++;
				end_line(d);
				continue;
			}
			d->errors |= SMTP_DATA_ERR_BARE_CR;
			count(d, 1);
			d->state = ST_MID;
			continue;
		case ST_MID: {
			/* Copy a run of ordinary bytes in one go. */
			size_t start = i;
			if (d->in_header && d->linelen == 0 && p[i] != '\r' &&
			    p[i] != '\n' && p[i] != '\0')
				header_line_start(d, p[i]);
			while (i < n && p[i] != '\r' && p[i] != '\n' &&
			    p[i] != '\0')
				i++;
			if (i > start) {
				count(d, i - start);
				emit(d, p + start, i - start);
			}
			if (i == n)
				return n;
			c = p[i++];
			if (c == '\r')
				d->state = ST_CR;
			else if (c == '\n') {
				d->errors |= SMTP_DATA_ERR_BARE_LF;
				count(d, 1);
			} else {
				d->errors |= SMTP_DATA_ERR_NUL;
				count(d, 1);
			}
			continue;
		}
		}
	}
	return n;
}

void
smtp_data_chunks_end(struct smtp_data *d)
{
	if (d->state == ST_CR) {
		d->errors |= SMTP_DATA_ERR_BARE_CR;
		count(d, 1);
	}
	if (d->state != ST_BOL) {
		/* a last line without CRLF: stored with its line end */
		d->size -= 2;        /* not sent: not counted */
		end_line(d);
	}
	d->state = ST_BOL;
}
