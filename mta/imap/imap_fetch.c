/* SPDX-License-Identifier: ISC */
/*
 * imap_fetch.c - layer 3 helper of the IMAP session: FETCH items (RFC 3501
 * 6.4.5, 7.4.2) parsed once per command and answered per message, on an
 * I/O worker inside the folder's job (the folder is the job's alone). A
 * message is read from its file only when an item needs its contents;
 * sizes and sections are as CRLF text (mail/mime.c); FETCH BODY[] and
 * friends set \Seen by renaming the file (mailbox.c), and say so.
 */
#include "imap/imap_fetch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "imap/imap_parse.h"
#include "imap/imap_sort.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"
#include "store/mailbox.h"

const char *const imap_months[12] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* "1-Dec-2026 21:00:00 +0000" (RFC 3501 date-time); -1 if not one. */
int64_t
imap_parse_datetime(const char *s)
{
	int d, y, H, M, S, zh;
	char mon[4], sign;

	if (sscanf(s, " %d-%3s-%d %d:%d:%d %c%4d", &d, mon, &y, &H, &M, &S,
	    &sign, &zh) != 8 || (sign != '+' && sign != '-'))
		return -1;
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (ascii_strcaseeq(mon, imap_months[i]))
			m = i;
	if (m < 0 || d < 1 || d > 31 || y < 1970 || H > 23 || M > 59 || S > 60)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m, .tm_mday = d,
		.tm_hour = H, .tm_min = M, .tm_sec = S };
	int64_t t = (int64_t)timegm(&tm);
	int off = (zh / 100) * 3600 + (zh % 100) * 60;
	return sign == '+' ? t - off : t + off;
}

void
imap_write_flags(struct buf *b, const struct mbox *mb, const struct mbox_msg *m,
    bool recent_ok)
{
	bool sp = false;

	buf_append_char(b, '(');
#define F(bit, name) if (m->flags & (bit)) { buf_printf(b, "%s%s", sp ? " " : \
	"", name); sp = true; }
	F(MBOX_SEEN, "\\Seen")
	F(MBOX_ANSWERED, "\\Answered")
	F(MBOX_FLAGGED, "\\Flagged")
	F(MBOX_DELETED, "\\Deleted")
	F(MBOX_DRAFT, "\\Draft")
	F(MBOX_FORWARDED, "$Forwarded")
#undef F
	for (int i = 0; i < KEYWORDS_MAX; i++)
		if ((m->kw & (1u << i)) && mb->kw.names[i]) {
			buf_printf(b, "%s%s", sp ? " " : "", mb->kw.names[i]);
			sp = true;
		}
	if (m->recent && recent_ok)
		buf_printf(b, "%s\\Recent", sp ? " " : "");
	buf_append_char(b, ')');
}


enum fitem_kind { FI_UID, FI_FLAGS, FI_INTERNALDATE, FI_SIZE, FI_MODSEQ,
	FI_EMAILID, FI_THREADID, FI_SAVEDATE,
	FI_ENVELOPE,
	FI_BODYSTRUCTURE, FI_BODY_BASIC, FI_SECTION, FI_RFC822,
	FI_RFC822_HEADER, FI_RFC822_TEXT, FI_BINARY, FI_BINARY_SIZE };

struct fitem {
	enum fitem_kind kind;
	char echo[300];          /* the item's name in the answer */
	char part[64];           /* "1.2", or "" */
	char spec[32];           /* "", HEADER, TEXT, MIME, HEADER.FIELDS[.NOT] */
	char **fields;           /* HEADER.FIELDS names */
	size_t nfields;
	bool peek;
	bool partial;
	uint64_t p_off, p_len;
};

struct imap_fetch {
	struct fitem *it;
	size_t n;
	bool need_file, sets_seen;   /* need_file: sections, RFC822, BINARY */
	bool structure, basic;       /* BODYSTRUCTURE, BODY: file or cache */
	bool modseq;             /* MODSEQ asked for (or CHANGEDSINCE) */
	bool envelope;           /* ENVELOPE: the header, or its cache */
	bool binary;             /* BINARY items: parts decoded */
};

static void
fetch_clear(struct imap_fetch *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (size_t k = 0; k < f->it[i].nfields; k++)
			free(f->it[i].fields[k]);
		free(f->it[i].fields);
	}
	free(f->it);
	memset(f, 0, sizeof(*f));
}

/* What follows a section's ']': nothing, or "<offset.length>". */
static int
parse_partial(const char *p, struct fitem *it)
{
	unsigned long long o, l;

	if (*p == '\0')
		return 0;
	if (*p != '<' || sscanf(p + 1, "%llu.%llu>", &o, &l) != 2 || l == 0 ||
	    p[strlen(p) - 1] != '>')
		return -1;
	it->partial = true;
	it->p_off = o;
	it->p_len = l;
	size_t el = strlen(it->echo);
	(void)snprintf(it->echo + el, sizeof(it->echo) - el, "<%llu>", o);
	return 0;
}

/* BODY[...] / BODY.PEEK[...]<o.l>: the section and partial. */
static int
parse_section(const char *t, struct fitem *it)
{
	const char *lb = strchr(t, '['), *rb = strrchr(t, ']');

	if (lb == NULL || rb == NULL || rb < lb)
		return -1;
	it->kind = FI_SECTION;
	it->peek = ascii_strncaseeq(t, "BODY.PEEK[", 10);
	/* the section text: [part.]spec [(fields)] */
	char sec[256];
	size_t sl = (size_t)(rb - lb - 1);
	if (sl >= sizeof(sec))
		return -1;
	memcpy(sec, lb + 1, sl);
	sec[sl] = '\0';
	char *p = sec;
	size_t pl = 0;
	while (p[pl] && (isdigit((unsigned char)p[pl]) || p[pl] == '.')) {
		if (p[pl] == '.' && !isdigit((unsigned char)p[pl + 1]))
			break;
		pl++;
	}
	if (pl >= sizeof(it->part))
		return -1;
	memcpy(it->part, p, pl);
	it->part[pl] = '\0';
	p += pl;
	if (*p == '.')
		p++;
	char *sp = strchr(p, ' ');
	size_t specl = sp ? (size_t)(sp - p) : strlen(p);
	if (specl >= sizeof(it->spec))
		return -1;
	for (size_t i = 0; i < specl; i++)
		it->spec[i] = (char)toupper((unsigned char)p[i]);
	it->spec[specl] = '\0';
	if (it->spec[0] && strcmp(it->spec, "HEADER") != 0 &&
	    strcmp(it->spec, "TEXT") != 0 && strcmp(it->spec, "MIME") != 0 &&
	    strcmp(it->spec, "HEADER.FIELDS") != 0 &&
	    strcmp(it->spec, "HEADER.FIELDS.NOT") != 0)
		return -1;
	if (strcmp(it->spec, "MIME") == 0 && it->part[0] == '\0')
		return -1;
	if (strncmp(it->spec, "HEADER.FIELDS", 13) == 0) {
		if (sp == NULL || sp[1] != '(')
			return -1;
		char *q = sp + 2;
		char *end = strchr(q, ')');
		if (end == NULL)
			return -1;
		*end = '\0';
		for (char *tok = strtok(q, " "); tok; tok = strtok(NULL, " ")) {
			it->fields = xreallocarray(it->fields, it->nfields + 1,
			    sizeof(char *));
			it->fields[it->nfields++] = xstrdup(tok);
		}
	} else if (sp)
		return -1;
	/* the answer names the section as asked, without PEEK */
	(void)str_fmt(it->echo, sizeof(it->echo), "BODY[%.*s]", (int)(rb - lb -
	    1), lb + 1);
	return parse_partial(rb + 1, it);
}

/*
 * BINARY[part]<o.l>, BINARY.PEEK[part]<o.l>, BINARY.SIZE[part] (RFC 3516
 * 4.2): a part number only, no HEADER or TEXT.
 */
static int
parse_binary(const char *t, struct fitem *it)
{
	const char *lb = strchr(t, '['), *rb = strchr(t, ']');
	size_t hl = lb ? (size_t)(lb - t) : 0;

	if (lb == NULL || rb == NULL || rb < lb ||
	    (size_t)(rb - lb - 1) >= sizeof(it->part))
		return -1;
	if (hl == 6 && ascii_strncaseeq(t, "BINARY", 6))
		it->kind = FI_BINARY;
	else if (hl == 11 && ascii_strncaseeq(t, "BINARY.PEEK", 11)) {
		it->kind = FI_BINARY;
		it->peek = true;
	} else if (hl == 11 && ascii_strncaseeq(t, "BINARY.SIZE", 11))
		it->kind = FI_BINARY_SIZE;
	else
		return -1;
	size_t pl = (size_t)(rb - lb - 1);
	for (size_t i = 0; i < pl; i++) {
		char c = lb[1 + i];
		bool dot = c == '.';
		if (!(c >= '0' && c <= '9') && !(dot && i > 0 && i + 1 < pl &&
		    lb[i] != '.'))
			return -1;
	}
	memcpy(it->part, lb + 1, pl);
	it->part[pl] = '\0';
	(void)str_fmt(it->echo, sizeof(it->echo), "%s[%s]",
	    it->kind == FI_BINARY_SIZE ? "BINARY.SIZE" : "BINARY", it->part);
	if (rb[1] == '<' && it->kind != FI_BINARY)
		return -1;       /* BINARY.SIZE has no partial */
	return parse_partial(rb + 1, it);
}

static int
parse_fetch_item(const char *t, struct imap_fetch *f)
{
	struct fitem it;

	memset(&it, 0, sizeof(it));
	(void)str_copy(it.echo, sizeof(it.echo), t);
	for (char *p = it.echo; *p && *p != '['; p++)
		*p = (char)toupper((unsigned char)*p);
	if (ascii_strcaseeq(t, "UID"))
		it.kind = FI_UID;
	else if (ascii_strcaseeq(t, "FLAGS"))
		it.kind = FI_FLAGS;
	else if (ascii_strcaseeq(t, "INTERNALDATE"))
		it.kind = FI_INTERNALDATE;
	else if (ascii_strcaseeq(t, "RFC822.SIZE"))
		it.kind = FI_SIZE;
	else if (ascii_strcaseeq(t, "EMAILID"))
		it.kind = FI_EMAILID;
	else if (ascii_strcaseeq(t, "THREADID"))
		it.kind = FI_THREADID;
	else if (ascii_strcaseeq(t, "SAVEDATE"))
		it.kind = FI_SAVEDATE;
	else if (ascii_strcaseeq(t, "MODSEQ")) {
		it.kind = FI_MODSEQ;
		f->modseq = true;
	}
	else if (ascii_strcaseeq(t, "ENVELOPE"))
		it.kind = FI_ENVELOPE;
	else if (ascii_strcaseeq(t, "BODYSTRUCTURE"))
		it.kind = FI_BODYSTRUCTURE;
	else if (ascii_strcaseeq(t, "BODY"))
		it.kind = FI_BODY_BASIC;
	else if (ascii_strcaseeq(t, "RFC822"))
		it.kind = FI_RFC822;
	else if (ascii_strcaseeq(t, "RFC822.HEADER"))
		it.kind = FI_RFC822_HEADER;
	else if (ascii_strcaseeq(t, "RFC822.TEXT"))
		it.kind = FI_RFC822_TEXT;
	else if ((ascii_strncaseeq(t, "BODY[", 5) ||
	    ascii_strncaseeq(t, "BODY.PEEK[", 10)) && parse_section(t, &it) == 0)
		;
	else if (ascii_strncaseeq(t, "BINARY", 6) && parse_binary(t, &it) == 0)
		;
	else {
		for (size_t k = 0; k < it.nfields; k++)
			free(it.fields[k]);
		free(it.fields);
		return -1;
	}
	if (it.kind >= FI_SECTION)
		f->need_file = true;
	if (it.kind == FI_BODYSTRUCTURE)
		f->structure = true;
	if (it.kind == FI_BODY_BASIC)
		f->basic = true;
	if (it.kind == FI_ENVELOPE)
		f->envelope = true;
	if (it.kind == FI_BINARY || it.kind == FI_BINARY_SIZE)
		f->binary = true;
	if (((it.kind == FI_SECTION || it.kind == FI_BINARY) && !it.peek) ||
	    it.kind == FI_RFC822 || it.kind == FI_RFC822_TEXT)
		f->sets_seen = true;
	f->it = xreallocarray(f->it, f->n + 1, sizeof(*f->it));
	f->it[f->n++] = it;
	return 0;
}

static int
parse_fetch(const struct imap_arg *a, struct imap_fetch *f)
{
	memset(f, 0, sizeof(*f));
	if (a->type == IMAP_ARG_ATOM) {
		const char *t = a->s;
		const char *macro[3][5] = {
			{ "ALL", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE" },
			{ "FAST", "FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL },
			{ "FULL", "FLAGS", "INTERNALDATE", "RFC822.SIZE",
			  "ENVELOPE" },
		};
		for (int m = 0; m < 3; m++)
			if (ascii_strcaseeq(t, macro[m][0])) {
				for (int k = 1; k < 5 && macro[m][k]; k++)
					(void)parse_fetch_item(macro[m][k], f);
				if (m == 2)
					(void)parse_fetch_item("BODY", f);
				return 0;
			}
		return parse_fetch_item(t, f);
	}
	if (a->type != IMAP_ARG_LIST || a->nitems == 0)
		return -1;
	for (size_t i = 0; i < a->nitems; i++)
		if (a->items[i].type != IMAP_ARG_ATOM ||
		    parse_fetch_item(a->items[i].s, f) != 0) {
			fetch_clear(f);
			return -1;
		}
	return 0;
}

/* A header section with only (or all but) the named fields. */
static void
header_subset(struct buf *out, const char *h, size_t hlen,
    char *const *names, size_t n, bool not)
{
	size_t pos = 0, start;
	struct message_field f;

	for (;;) {
		start = pos;
		if (!message_next_field(h, hlen, &pos, &f))
			break;
		bool hit = false;
		for (size_t i = 0; i < n; i++)
			if (strlen(names[i]) == f.name_len &&
			    ascii_strncaseeq(f.name, names[i], f.name_len))
				hit = true;
		if (hit != not)
			mime_append_crlf(out, h + start, pos - start);
	}
	buf_append_str(out, "\r\n");
}

static void
literal(struct buf *out, const struct buf *data, const struct fitem *it)
{
	size_t off = 0, len = data->len;

	if (it->partial) {
		off = it->p_off > len ? len : (size_t)it->p_off;
		len = len - off < it->p_len ? len - off : (size_t)it->p_len;
	}
	const char *p = data->data ? data->data + off : "";
	/* NUL only in a literal8 (RFC 3516 4.3) */
	buf_printf(out, "%s{%zu}\r\n", it->kind == FI_BINARY &&
	    memchr(p, '\0', len) ? "~" : "", len);
	buf_append(out, p, len);
}

/* A part's content with its transfer encoding undone; -1: unknown CTE. */
static int
binary_section(struct buf *d, const char *msg, const struct mime_part *root,
    const struct fitem *it)
{
	const struct mime_part *p = mime_find_part(root, it->part);

	if (p == NULL)
		return 0;
	if (it->part[0] == '\0') {
		mime_append_crlf(d, msg, root->hdr_len + root->body_len);
		return 0;
	}
	return mime_decode_part(msg, p, d);
}

/* One section of a message (LF text) as CRLF octets. */
static void
section(struct buf *out, const char *msg, const struct mime_part *root,
    const struct fitem *it)
{
	const struct mime_part *p = mime_find_part(root, it->part);
	struct buf d;

	buf_init(&d);
	if (p) {
		/* a part that is a message: HEADER/TEXT are its message's */
		const struct mime_part *m = p;
		if (it->part[0] && p->is_message && p->nchildren == 1 &&
		    strcmp(it->spec, "MIME") != 0 && it->spec[0])
			m = &p->children[0];
		if (it->spec[0] == '\0') {
			if (it->part[0] == '\0')
				mime_append_crlf(&d, msg, root->hdr_len +
				    root->body_len);
			else
				mime_append_crlf(&d, msg + p->body_off,
				    p->body_len);
		} else if (strcmp(it->spec, "HEADER") == 0 ||
		    strcmp(it->spec, "MIME") == 0)
			mime_append_crlf(&d, msg + m->hdr_off, m->hdr_len);
		else if (strcmp(it->spec, "TEXT") == 0)
			mime_append_crlf(&d, msg + m->body_off, m->body_len);
		else
			header_subset(&d, msg + m->hdr_off, m->hdr_len,
			    it->fields, it->nfields,
			    strcmp(it->spec, "HEADER.FIELDS.NOT") == 0);
	}
	literal(out, &d, it);
	buf_clear(&d);
}

/* "1-Dec-2026 21:00:00 +0000", quoted */
static void
write_datetime(struct buf *o, int64_t secs)
{
	struct tm tm;
	time_t t = (time_t)secs;

	gmtime_r(&t, &tm);
	buf_printf(o, "\"%2d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    imap_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

int
imap_fetch_message(struct buf *o, struct mbox *mb, size_t idx, size_t seq,
    const struct imap_fetch *f, unsigned opts, bool *changed,
    struct tern_err *err)
{
	bool uid_cmd = opts & IMAP_FETCH_UID, readonly = opts &
	    IMAP_FETCH_READONLY, condstore = opts & IMAP_FETCH_CONDSTORE;
	bool recent_ok = !(opts & IMAP_FETCH_REV2);
	struct mbox_msg *m = &mb->m[idx];
	struct buf file;
	struct mime_part *root = NULL;
	bool sp = false, flags_sent = false, modseq_sent = false;

	buf_init(&file);
	/* BODYSTRUCTURE and BODY from what the box (or the index) keeps */
	bool parse = f->need_file || (f->structure && m->structure == NULL) ||
	    (f->basic && m->body == NULL);
	bool whole = parse || m->vsize == 0;
	if (whole || (f->envelope && m->envelope == NULL)) {
		/* for ENVELOPE alone the header is enough: 256 KiB of it */
		if ((whole ? mbox_read(mb, idx, &file, SIZE_MAX, err) :
		    mbox_read_head(mb, idx, &file, 256 * 1024, err)) != 0) {
			buf_clear(&file);
			return 0;   /* gone under us: the next sync tells */
		}
	}
	if (whole) {
		uint64_t v = mime_crlf_size(file.data ? file.data : "", file.len);
		if (v != m->vsize) {
			m->vsize = v;
			m->dirty = mb->dirty = true;   /* the index keeps it */
		}
		if (parse)
			root = mime_parse(file.data ? file.data : "", file.len);
	}
	for (int k = 0; root && k < 2; k++) {
		char **slot = k ? &m->body : &m->structure;
		if (*slot || !(k ? f->basic : f->structure))
			continue;
		struct buf b;
		buf_init(&b);
		mime_write_bodystructure(&b, file.data ? file.data : "", root,
		    k == 0);
		buf_append_char(&b, '\0');
		*slot = b.data;
		mbox_cache_learnt(mb, m);
	}
	if (f->envelope && m->envelope == NULL) {
		struct buf e;
		const char *t = file.data ? file.data : "";
		buf_init(&e);
		mime_write_envelope(&e, t, root ? root->hdr_len :
		    message_header_len(t, file.len));
		buf_append_char(&e, '\0');
		m->envelope = e.data;   /* kept while the box lives */
		mbox_cache_learnt(mb, m);
	}
	/* BINARY of a part whose encoding is unknown: no answer at all */
	struct buf *bin = f->binary ? xcalloc(f->n, sizeof(struct buf)) : NULL;
	for (size_t i = 0; bin && i < f->n; i++) {
		if (f->it[i].kind != FI_BINARY && f->it[i].kind != FI_BINARY_SIZE)
			continue;
		if (binary_section(&bin[i], file.data ? file.data : "", root,
		    &f->it[i]) != 0) {
			for (size_t k = 0; k < f->n; k++)
				buf_clear(&bin[k]);
			free(bin);
			mime_free(root);
			buf_clear(&file);
			return -1;
		}
	}
	if (f->sets_seen && !readonly && !(m->flags & MBOX_SEEN)) {
		if (mbox_set_flags(mb, idx, m->flags | MBOX_SEEN, m->kw,
		    err) == 0) {
			*changed = true;
		}
	}
	buf_printf(o, "* %zu FETCH (", seq);
	if (uid_cmd) {
		buf_printf(o, "UID %u", m->uid);
		sp = true;
	}
	const char *msg = file.data ? file.data : "";
	for (size_t i = 0; i < f->n; i++) {
		const struct fitem *it = &f->it[i];
		if ((it->kind == FI_UID && uid_cmd) ||
		    (it->kind == FI_FLAGS && flags_sent) ||
		    (it->kind == FI_MODSEQ && modseq_sent))
			continue;
		if (sp)
			buf_append_char(o, ' ');
		sp = true;
		switch (it->kind) {
		case FI_UID:
			buf_printf(o, "UID %u", m->uid);
			break;
		case FI_FLAGS:
			buf_append_str(o, "FLAGS ");
			imap_write_flags(o, mb, m, recent_ok);
			flags_sent = true;
			break;
		case FI_INTERNALDATE:
			buf_append_str(o, "INTERNALDATE ");
			write_datetime(o, m->internaldate);
			break;
		case FI_SAVEDATE:
			/* RFC 8514 */
			buf_append_str(o, "SAVEDATE ");
			if (m->savedate > 0)
				write_datetime(o, m->savedate);
			else
				buf_append_str(o, "NIL");
			break;
		case FI_SIZE:
			buf_printf(o, "RFC822.SIZE %llu",
			    (unsigned long long)m->vsize);
			break;
		case FI_EMAILID: {
			char id[SORT_ID_LEN];
			sort_email_id(m->base, id);
			buf_printf(o, "EMAILID (%s)", id);
			break;
		}
		case FI_THREADID: {
			char id[SORT_ID_LEN];
			sort_thread_id(imap_sort_keys(mb, idx), m->base, id);
			buf_printf(o, "THREADID (%s)", id);
			break;
		}
		case FI_MODSEQ:
			buf_printf(o, "MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
			modseq_sent = true;
			break;
		case FI_ENVELOPE:
			buf_append_str(o, "ENVELOPE ");
			buf_append_str(o, m->envelope ? m->envelope : "NIL");
			break;
		case FI_BODYSTRUCTURE:
			buf_append_str(o, "BODYSTRUCTURE ");
			buf_append_str(o, m->structure ? m->structure : "NIL");
			break;
		case FI_BODY_BASIC:
			buf_append_str(o, "BODY ");
			buf_append_str(o, m->body ? m->body : "NIL");
			break;
		case FI_SECTION:
			buf_printf(o, "%s ", it->echo);
			section(o, msg, root, it);
			break;
		case FI_BINARY:
			buf_printf(o, "%s ", it->echo);
			literal(o, &bin[i], it);
			break;
		case FI_BINARY_SIZE:
			buf_printf(o, "%s %zu", it->echo, bin[i].len);
			break;
		case FI_RFC822:
		case FI_RFC822_HEADER:
		case FI_RFC822_TEXT: {
			struct buf d;
			buf_init(&d);
			size_t off = it->kind == FI_RFC822_TEXT ? root->hdr_len : 0;
			size_t len = it->kind == FI_RFC822_HEADER ?
			    root->hdr_len : file.len - off;
			mime_append_crlf(&d, msg + off, len);
			buf_printf(o, "%s ", it->echo);
			literal(o, &d, it);
			buf_clear(&d);
			break;
		}
		}
	}
	/* \Seen set by this FETCH: the client hears it here (RFC 3501 6.4.5) */
	if (f->sets_seen && !flags_sent && !readonly) {
		buf_append_str(o, " FLAGS ");
		imap_write_flags(o, mb, m, recent_ok);
		flags_sent = true;
	}
	/* RFC 7162 3.1.4: with CONDSTORE on, flags come with their MODSEQ */
	if ((f->modseq || (condstore && flags_sent)) && !modseq_sent)
		buf_printf(o, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_append_str(o, ")\r\n");
	for (size_t k = 0; bin && k < f->n; k++)
		buf_clear(&bin[k]);
	free(bin);
	mime_free(root);
	buf_clear(&file);
	return 0;
}


bool
imap_fetch_cached(const struct imap_fetch *f)
{
	if (f->envelope || f->structure || f->basic)
		return true;
	for (size_t i = 0; i < f->n; i++)
		if (f->it[i].kind == FI_THREADID)
			return true;
	return false;
}

bool
imap_fetch_modseq(const struct imap_fetch *f)
{
	return f->modseq;
}

void
imap_fetch_want_modseq(struct imap_fetch *f)
{
	f->modseq = true;
}

struct imap_fetch *
imap_fetch_parse(const struct imap_arg *a)
{
	struct imap_fetch *f = xcalloc(1, sizeof(*f));

	if (parse_fetch(a, f) != 0) {
		imap_fetch_free(f);
		return NULL;
	}
	return f;
}

void
imap_fetch_free(struct imap_fetch *f)
{
	if (f == NULL)
		return;
	fetch_clear(f);
	free(f);
}
