/* SPDX-License-Identifier: ISC */
/*
 * jmap_search.c - layer 3 helper of Email/query (jmap_search.h). The
 * full-text index answers text and body for the messages it has (what a
 * folder lacks is added first, up to FTS_INLINE messages; the store adds
 * the rest when idle), and narrows the header conditions to the
 * messages whose text holds the needle somewhere; only those are read,
 * the header alone. Matching is IMAP SEARCH's (mail/search.h).
 */
#include "http/jmap_search.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "http/jmap_email.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "mail/search.h"
#include "mail/sortkeys.h"
#include "store/index.h"
#include "store/mailbox.h"

#define FTS_INLINE 2000
#define HEAD_MAX (256 * 1024)

/* A leaf's full-text answer: base names (sorted), if the index could. */
struct fts {
	char **bases;
	size_t n;
	bool have;
};

static bool
fts_has(const struct fts *f, const char *base)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(f->bases[mid], base);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* One message's text, read once whatever the leaves ask. */
struct msgtext {
	struct buf file, head, thdr, tbody;
	bool file_read, head_read, text_made;
};

static const char *
head_of(struct mbox *mb, size_t i, struct msgtext *t, size_t *hl)
{
	struct tern_err err;

	if (!t->head_read && !t->file_read) {
		memset(&err, 0, sizeof(err));
		t->head_read = true;
		if (mbox_read_head(mb, i, &t->head, HEAD_MAX, &err) != 0)
			buf_reset(&t->head);
	}
	const struct buf *b = t->file_read ? &t->file : &t->head;
	const char *m = b->data ? b->data : "";
	*hl = message_header_len(m, b->len);
	return m;
}

static const char *
file_of(struct mbox *mb, size_t i, struct msgtext *t, size_t *len)
{
	struct tern_err err;

	if (!t->file_read) {
		memset(&err, 0, sizeof(err));
		t->file_read = true;
		if (mbox_read(mb, i, &t->file, SIZE_MAX, &err) != 0)
			buf_reset(&t->file);
	}
	*len = t->file.len;
	return t->file.data ? t->file.data : "";
}

static bool
text_has(struct mbox *mb, size_t i, struct msgtext *t, const char *needle,
    bool header_too)
{
	if (!t->text_made) {
		size_t len;
		const char *m = file_of(mb, i, t, &len);
		struct mime_part *root = mime_parse(m, len);
		mime_search_text(m, root, &t->thdr, &t->tbody, 4u << 20);
		mime_free(root);
		t->text_made = true;
	}
	return search_contains(t->tbody.data ? t->tbody.data : "",
	    t->tbody.len, needle) || (header_too && search_contains(
	    t->thdr.data ? t->thdr.data : "", t->thdr.len, needle));
}

static const char *const leaf_field[] = {
	[JL_FROM] = "From", [JL_TO] = "To", [JL_CC] = "Cc", [JL_BCC] = "Bcc",
	[JL_SUBJECT] = "Subject",
};

static bool
leaf_match(struct mbox *mb, size_t i, const struct jleaf *l,
    const struct fts *f, struct msgtext *t)
{
	const struct mbox_msg *m = &mb->m[i];
	bool indexed = m->in_fts && f->have;
	size_t hl, len;
	const char *h;

	switch (l->kind) {
	case JL_TEXT:
	case JL_BODY:
		if (indexed)
			return fts_has(f, m->base);
		return text_has(mb, i, t, l->needle, l->kind == JL_TEXT);
	case JL_ATTACH:
		h = file_of(mb, i, t, &len);
		return jmap_has_attachment(h, len);
	default:
		/* the needle is nowhere in its text: in no field either */
		if (l->needle && indexed && !fts_has(f, m->base))
			return false;
		h = head_of(mb, i, t, &hl);
		return search_header_has(h, hl, l->kind == JL_HEADER ?
		    l->name : leaf_field[l->kind], l->needle);
	}
}

static void
msgtext_clear(struct msgtext *t)
{
	buf_clear(&t->file);
	buf_clear(&t->head);
	buf_clear(&t->thdr);
	buf_clear(&t->tbody);
	memset(t, 0, sizeof(*t));
}

static char *
dup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

void
jsearch_folder(struct mbox *mb, struct tindex *x, const struct jleaf *l,
    size_t nl, bool rows, struct jsearch_out *out)
{
	struct fts *f = xcalloc(nl + 1, sizeof(*f));
	struct tern_err err;
	size_t done;

	memset(out, 0, sizeof(*out));
	out->uids = xcalloc(nl + 1, sizeof(*out->uids));
	out->n = xcalloc(nl + 1, sizeof(*out->n));
	for (size_t k = 0; k < nl; k++)
		out->uids[k] = xcalloc(mb->n + 1, sizeof(uint32_t));
	bool wants_fts = false;
	for (size_t k = 0; k < nl; k++)
		wants_fts |= l[k].needle != NULL;
	if (wants_fts) {
		size_t *idx = xcalloc(mb->n + 1, sizeof(*idx)), n = 0;
		for (size_t i = 0; i < mb->n; i++)
			if (!mb->m[i].in_fts && !(mb->m[i].flags & MBOX_DELETED))
				idx[n++] = i;
		memset(&err, 0, sizeof(err));
		if (n && tindex_fts_update(x, mb, idx, n, FTS_INLINE, &done,
		    &err) != 0)
			log_warnx("jmap: %s: %s", mb->path, err.text);
		else if (n > FTS_INLINE)
			mb->fts_wanted = true;     /* the store adds the rest */
		free(idx);
		for (size_t k = 0; k < nl; k++) {
			if (l[k].needle == NULL)
				continue;
			memset(&err, 0, sizeof(err));
			int r = tindex_fts_find(x, l[k].needle, l[k].kind !=
			    JL_BODY, &f[k].bases, &f[k].n, &err);
			if (r < 0)
				log_warnx("jmap: %s: %s", mb->path, err.text);
			f[k].have = r == 0;
		}
	}
	if (rows)
		out->rows = xcalloc(mb->n + 1, sizeof(*out->rows));
	for (size_t i = 0; i < mb->n; i++) {
		struct msgtext t;
		if (mb->m[i].flags & MBOX_DELETED)
			continue;
		memset(&t, 0, sizeof(t));
		for (size_t k = 0; k < nl; k++)
			if (leaf_match(mb, i, &l[k], &f[k], &t))
				out->uids[k][out->n[k]++] = mb->m[i].uid;
		msgtext_clear(&t);
		if (rows) {
			const struct sort_keys *sk = mbox_sort_keys(mb, i);
			struct jsort_row *r = &out->rows[out->nrows++];
			r->uid = mb->m[i].uid;
			r->from = dup_or_empty(sk->dfrom);
			r->to = dup_or_empty(sk->dto);
			r->subject = dup_or_empty(sk->subject);
		}
	}
	for (size_t k = 0; k < nl; k++) {
		for (size_t j = 0; j < f[k].n; j++)
			free(f[k].bases[j]);
		free(f[k].bases);
	}
	free(f);
}

void
jsearch_out_clear(struct jsearch_out *o, size_t nl)
{
	for (size_t k = 0; o->uids && k < nl; k++)
		free(o->uids[k]);
	free(o->uids);
	free(o->n);
	for (size_t i = 0; i < o->nrows; i++) {
		free(o->rows[i].from);
		free(o->rows[i].to);
		free(o->rows[i].subject);
	}
	free(o->rows);
	memset(o, 0, sizeof(*o));
}
