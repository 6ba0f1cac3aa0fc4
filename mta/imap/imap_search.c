/* SPDX-License-Identifier: ISC */
/*
 * imap_search.c - layer 3 helper of the IMAP session: SEARCH keys (RFC
 * 3501 6.4.4) evaluated against one message, on an I/O worker inside the
 * folder's job. Flags, dates, sizes and sets come from the folder's
 * list; header and text keys read the file, once per message, and match
 * case-insensitively as bytes (US-ASCII and UTF-8 alike).
 */
#include "imap/imap_search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/util.h"
#include "imap/imap_fetch.h"
#include "imap/imap_parse.h"
#include "imap/imap_sort.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "mail/search.h"
#include "mail/sortkeys.h"
#include "store/dovecot.h"
#include "store/mailbox.h"

struct sctx {
	const uint32_t *view;     /* the session's UIDs, seq i = view[i-1] */
	size_t nview;
	const uint32_t *saved;    /* "$" */
	size_t nsaved;
	const struct imap_text_hits *hits;
	size_t nhits;
	struct buf thdr, tbody;   /* the text TEXT and BODY look in */
	bool text_loaded;
	struct tern_err *err;
	struct mbox *mb;
	size_t idx, seq;
	struct buf file;
	bool loaded, failed;
	bool modseq_key;
};

static bool
load(struct sctx *c)
{
	if (!c->loaded) {
		c->loaded = true;
		if (mbox_read(c->mb, c->idx, &c->file, SIZE_MAX,
		    c->err) != 0)
			c->failed = true;
	}
	return !c->failed;
}

/* TEXT and BODY without the index: the same text, from the file. */
static int
text_key(struct sctx *c, const struct imap_arg *k, const char *needle,
    bool text)
{
	const struct mbox_msg *m = &c->mb->m[c->idx];

	for (size_t i = 0; i < c->nhits && m->in_fts; i++) {
		const struct imap_text_hits *h = &c->hits[i];
		if (h->key != k)
			continue;
		size_t lo = 0, hi = h->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int r = strcmp(h->bases[mid], m->base);
			if (r == 0)
				return 1;
			if (r < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return 0;
	}
	if (!c->text_loaded) {
		c->text_loaded = true;
		if (load(c)) {
			const char *t = c->file.data ? c->file.data : "";
			struct mime_part *root = mime_parse(t, c->file.len);
			mime_search_text(t, root, &c->thdr, &c->tbody, 4u << 20);
			mime_free(root);
		}
	}
	return search_contains(c->tbody.data ? c->tbody.data : "",
	    c->tbody.len, needle) || (text && search_contains(c->thdr.data ?
	    c->thdr.data : "", c->thdr.len, needle));
}

size_t
imap_search_text_keys(const struct imap_arg *keys, size_t n,
    const struct imap_arg **key, const char **needle, size_t max)
{
	size_t found = 0;

	for (size_t i = 0; i < n && found < max; i++) {
		const struct imap_arg *a = &keys[i];
		if (a->type == IMAP_ARG_LIST) {
			found += imap_search_text_keys(a->items, a->nitems,
			    key + found, needle + found, max - found);
			continue;
		}
		const char *t = imap_arg_text(a);
		const char *v = i + 1 < n ? imap_arg_text(&keys[i + 1]) : NULL;
		if (t && v && a->type == IMAP_ARG_ATOM &&
		    (ascii_strcaseeq(t, "TEXT") || ascii_strcaseeq(t, "BODY"))) {
			key[found] = a;
			needle[found++] = v;
			i++;
		}
	}
	return found;
}

static bool
header_has(struct sctx *c, const char *name, const char *needle)
{
	if (!load(c))
		return false;
	const char *m = c->file.data ? c->file.data : "";
	return search_header_has(m, message_header_len(m, c->file.len), name,
	    needle);
}

/* "1-Dec-2026" */
static int64_t
parse_date(const char *s)
{
	int d, y;
	char mon[4];

	if (sscanf(s, "%d-%3s-%d", &d, mon, &y) != 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (ascii_strcaseeq(mon, imap_months[i])) {
			struct tm tm = { .tm_year = y - 1900, .tm_mon = i,
				.tm_mday = d };
			return (int64_t)timegm(&tm);
		}
	return -1;
}

/* The Date: field's day, or -1. */
static int64_t
sent_day(struct sctx *c)
{
	struct message_field f;
	char v[128], mon[4];
	int d, y;

	if (!load(c))
		return -1;
	const char *m = c->file.data ? c->file.data : "";
	if (!message_find_field(m, message_header_len(m, c->file.len), "Date",
	    &f) || f.value_len >= sizeof(v))
		return -1;
	memcpy(v, f.value, f.value_len);
	v[f.value_len] = '\0';
	const char *p = strchr(v, ',') ? strchr(v, ',') + 1 : v;
	if (sscanf(p, "%d %3s %d", &d, mon, &y) != 3)
		return -1;
	char buf[32];
	(void)snprintf(buf, sizeof(buf), "%d-%s-%d", d, mon, y);
	return parse_date(buf);
}

static int
in_saved(const struct sctx *c, uint32_t uid)
{
	size_t lo = 0, hi = c->nsaved;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->saved[mid] == uid)
			return 1;
		if (c->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Evaluates keys args[*i..]; advances *i past one key. -1: bad key. */
static int
eval(struct sctx *c, const struct imap_arg *a, size_t n, size_t *i, int depth)
{
	const struct mbox_msg *m = &c->mb->m[c->idx];

	if (*i >= n || depth > 50)
		return -1;
	const struct imap_arg *k = &a[(*i)++];
	if (k->type == IMAP_ARG_LIST) {
		size_t j = 0;
		int all = 1;
		if (k->nitems == 0)
			return -1;
		while (j < k->nitems) {
			int r = eval(c, k->items, k->nitems, &j, depth + 1);
			if (r < 0)
				return -1;
			all &= r;
		}
		return all;
	}
	const char *t = imap_arg_text(k);
	if (t == NULL)
		return -1;
	const char *v = *i < n ? imap_arg_text(&a[*i]) : NULL;
#define FLAG(name, bit, want) if (ascii_strcaseeq(t, name)) \
	return ((m->flags & (bit)) != 0) == (want);
	FLAG("SEEN", MBOX_SEEN, true) FLAG("UNSEEN", MBOX_SEEN, false)
	FLAG("ANSWERED", MBOX_ANSWERED, true)
	FLAG("UNANSWERED", MBOX_ANSWERED, false)
	FLAG("FLAGGED", MBOX_FLAGGED, true) FLAG("UNFLAGGED", MBOX_FLAGGED, false)
	FLAG("DELETED", MBOX_DELETED, true) FLAG("UNDELETED", MBOX_DELETED, false)
	FLAG("DRAFT", MBOX_DRAFT, true) FLAG("UNDRAFT", MBOX_DRAFT, false)
#undef FLAG
	if (ascii_strcaseeq(t, "ALL") || ascii_strcaseeq(t, "SAVEDATESUPPORTED"))
		return 1;     /* every folder keeps save dates (RFC 8514) */
	/* SEARCHRES: the saved result as a key (RFC 5182 2.3) */
	if (strcmp(t, "$") == 0 && k->type == IMAP_ARG_ATOM)
		return in_saved(c, m->uid);
	if (ascii_strcaseeq(t, "UID") && v && strcmp(v, "$") == 0) {
		(*i)++;
		return in_saved(c, m->uid);
	}
	if (ascii_strcaseeq(t, "RECENT"))
		return m->recent;
	if (ascii_strcaseeq(t, "OLD"))
		return !m->recent;
	if (ascii_strcaseeq(t, "NEW"))
		return m->recent && !(m->flags & MBOX_SEEN);
	if (ascii_strcaseeq(t, "NOT")) {
		int r = eval(c, a, n, i, depth + 1);
		return r < 0 ? -1 : !r;
	}
	if (ascii_strcaseeq(t, "OR")) {
		int x = eval(c, a, n, i, depth + 1);
		int y = x < 0 ? -1 : eval(c, a, n, i, depth + 1);
		return x < 0 || y < 0 ? -1 : (x || y);
	}
	if (ascii_strcaseeq(t, "MODSEQ")) {
		/* MODSEQ ["/flags/\\Seen" priv|shared|all] n (RFC 7162 3.1.5);
		 * one MODSEQ per message here, whatever the entry */
		if (v && v[0] == '/') {
			const char *ty = *i + 1 < n ? imap_arg_text(&a[*i + 1]) :
			    NULL;
			if (ty == NULL || (!ascii_strcaseeq(ty, "priv") &&
			    !ascii_strcaseeq(ty, "shared") &&
			    !ascii_strcaseeq(ty, "all")))
				return -1;
			*i += 2;
			v = *i < n ? imap_arg_text(&a[*i]) : NULL;
		}
		uint64_t x;
		if (v == NULL || parse_u64(v, strlen(v), &x) != 0)
			return -1;
		(*i)++;
		c->modseq_key = true;
		return m->modseq >= x;
	}
	/* keys with one argument */
	if (v == NULL) {
		struct imap_seqset ss;
		/* a bare sequence set */
		uint32_t max = (uint32_t)c->nview;
		if (imap_seqset_parse(t, max, &ss) != 0)
			return -1;
		int r = imap_seqset_has(&ss, (uint32_t)c->seq);
		imap_seqset_clear(&ss);
		return r;
	}
	if (ascii_strcaseeq(t, "YOUNGER") || ascii_strcaseeq(t, "OLDER")) {
		/* WITHIN (RFC 5032): INTERNALDATE against now, in seconds */
		uint64_t secs;
		if (v == NULL || parse_u64(v, strlen(v), &secs) != 0)
			return -1;
		(*i)++;
		int64_t age = (int64_t)time(NULL) - m->internaldate;
		return (t[0] == 'Y' || t[0] == 'y') ? age <= (int64_t)secs :
		    age >= (int64_t)secs;
	}
	if (ascii_strcaseeq(t, "EMAILID") || ascii_strcaseeq(t, "THREADID")) {
		/* RFC 8474 6 */
		char id[SORT_ID_LEN];
		if (v == NULL)
			return -1;
		(*i)++;
		if (t[0] == 'E' || t[0] == 'e')
			sort_email_id(m->base, id);
		else
			sort_thread_id(imap_sort_keys(c->mb, c->idx), m->base, id);
		return strcmp(id, v) == 0;
	}
	static const char *const one[] = { "UID", "KEYWORD", "UNKEYWORD",
		"LARGER", "SMALLER", "BEFORE", "ON", "SINCE", "SENTBEFORE",
		"SENTON", "SENTSINCE", "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE",
		"FROM", "TO", "CC", "BCC", "SUBJECT",
		"BODY", "TEXT", "HEADER", NULL };
	bool known = false;
	for (int q = 0; one[q]; q++)
		if (ascii_strcaseeq(t, one[q]))
			known = true;
	if (!known) {
		struct imap_seqset ss;
		if (imap_seqset_parse(t, (uint32_t)c->nview, &ss) != 0)
			return -1;
		int r = imap_seqset_has(&ss, (uint32_t)c->seq);
		imap_seqset_clear(&ss);
		return r;
	}
	(*i)++;
	if (ascii_strcaseeq(t, "UID")) {
		struct imap_seqset ss;
		uint32_t max = c->nview ? c->view[c->nview - 1] : 0;
		if (imap_seqset_parse(v, max, &ss) != 0)
			return -1;
		int r = imap_seqset_has(&ss, m->uid);
		imap_seqset_clear(&ss);
		return r;
	}
	if (ascii_strcaseeq(t, "KEYWORD") || ascii_strcaseeq(t, "UNKEYWORD")) {
		bool want = ascii_strcaseeq(t, "KEYWORD");
		bool has;
		if (ascii_strcaseeq(v, "$Forwarded"))
			has = m->flags & MBOX_FORWARDED;
		else {
			int kk = keywords_find(&c->mb->kw, v);
			has = kk >= 0 && (m->kw & (1u << kk));
		}
		return has == want;
	}
	if (ascii_strcaseeq(t, "LARGER") || ascii_strcaseeq(t, "SMALLER")) {
		uint64_t x;
		if (parse_u64(v, strlen(v), &x) != 0)
			return -1;
		if (m->vsize == 0 && load(c))
			((struct mbox_msg *)m)->vsize = mime_crlf_size(
			    c->file.data ? c->file.data : "", c->file.len);
		return ascii_strcaseeq(t, "LARGER") ? m->vsize > x : m->vsize < x;
	}
	if (ascii_strcaseeq(t, "BEFORE") || ascii_strcaseeq(t, "ON") ||
	    ascii_strcaseeq(t, "SINCE") || ascii_strcaseeq(t, "SENTBEFORE") ||
	    ascii_strcaseeq(t, "SENTON") || ascii_strcaseeq(t, "SENTSINCE") ||
	    ascii_strcaseeq(t, "SAVEDBEFORE") || ascii_strcaseeq(t, "SAVEDON") ||
	    ascii_strcaseeq(t, "SAVEDSINCE")) {
		int64_t day = parse_date(v);
		if (day < 0)
			return -1;
		bool sent = ascii_strncaseeq(t, "SENT", 4);
		bool saved = ascii_strncaseeq(t, "SAVED", 5);
		int64_t d = sent ? sent_day(c) : saved ? m->savedate -
		    (m->savedate % 86400) : m->internaldate -
		    (m->internaldate % 86400);
		if (d < 0)
			return 0;
		const char *w = sent ? t + 4 : saved ? t + 5 : t;
		if (ascii_strcaseeq(w, "BEFORE"))
			return d < day;
		if (ascii_strcaseeq(w, "ON"))
			return d >= day && d < day + 86400;
		return d >= day;
	}
	if (ascii_strcaseeq(t, "HEADER")) {
		const char *needle = *i < n ? imap_arg_text(&a[*i]) : NULL;
		if (needle == NULL)
			return -1;
		(*i)++;
		return header_has(c, v, needle);
	}
	if (ascii_strcaseeq(t, "BODY") || ascii_strcaseeq(t, "TEXT"))
		return text_key(c, k, v, ascii_strcaseeq(t, "TEXT"));
	/* FROM TO CC BCC SUBJECT */
	char field[16];
	(void)str_copy(field, sizeof(field), t);
	return header_has(c, field, v);
}


int
imap_search_match(struct mbox *mb, size_t idx, size_t seq,
    const struct imap_search_view *v, const struct imap_arg *keys,
    size_t nkeys, bool *modseq_key, struct tern_err *err)
{
	struct sctx c;
	size_t i = 0;
	int all = 1;

	memset(&c, 0, sizeof(c));
	c.view = v->uids;
	c.nview = v->n;
	c.saved = v->saved;
	c.nsaved = v->nsaved;
	c.hits = v->hits;
	c.nhits = v->nhits;
	buf_init(&c.thdr);
	buf_init(&c.tbody);
	c.err = err;
	c.mb = mb;
	c.idx = idx;
	c.seq = seq;
	buf_init(&c.file);
	while (i < nkeys) {
		int r = eval(&c, keys, nkeys, &i, 0);
		if (r < 0) {
			all = -1;
			break;
		}
		all &= r;
	}
	buf_clear(&c.file);
	buf_clear(&c.thdr);
	buf_clear(&c.tbody);
	if (modseq_key && c.modseq_key)
		*modseq_key = true;
	return all;
}
