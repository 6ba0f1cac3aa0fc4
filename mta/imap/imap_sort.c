/* SPDX-License-Identifier: ISC */
/*
 * imap_sort.c - layer 3 helper of the IMAP session: SORT and THREAD
 * (imap_sort.h). THREAD=REFERENCES follows RFC 5256 3: messages linked
 * by Message-ID and References (In-Reply-To without References), empty
 * containers pruned, root threads with one base subject gathered, and
 * siblings in sent-date order. Runs on an I/O worker in the folder's job.
 */
#define _GNU_SOURCE 1   /* qsort_r */
#include "imap/imap_sort.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "imap/imap_parse.h"
#include "mail/message.h"
#include "mail/sortkeys.h"
#include "store/mailbox.h"

enum { K_ARRIVAL, K_CC, K_DATE, K_FROM, K_SIZE, K_SUBJECT, K_TO,
	K_DISPLAYFROM, K_DISPLAYTO };

static const char *const key_names[] = { "ARRIVAL", "CC", "DATE", "FROM",
	"SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO", NULL };

int
imap_sort_parse(const struct imap_arg *a, struct imap_sort *s)
{
	bool rev = false;

	s->n = 0;
	if (a == NULL || a->type != IMAP_ARG_LIST || a->nitems == 0)
		return -1;
	for (size_t i = 0; i < a->nitems; i++) {
		const char *t = imap_arg_text(&a->items[i]);
		if (t == NULL || a->items[i].type != IMAP_ARG_ATOM)
			return -1;
		if (ascii_strcaseeq(t, "REVERSE")) {
			if (rev)
				return -1;
			rev = true;
			continue;
		}
		int k = -1;
		for (int q = 0; key_names[q]; q++)
			if (ascii_strcaseeq(t, key_names[q]))
				k = q;
		if (k < 0 || s->n == IMAP_SORT_MAX)
			return -1;
		s->k[s->n].key = k;
		s->k[s->n].reverse = rev;
		s->n++;
		rev = false;
	}
	return rev ? -1 : 0;   /* REVERSE must be followed by a key */
}

const struct sort_keys *
imap_sort_keys(struct mbox *mb, size_t i)
{
	return mbox_sort_keys(mb, i);
}

struct ctx {
	struct mbox *mb;
	const struct imap_sort *s;
};

struct item {
	size_t idx, ord;
};

static int
cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int64_t
sent_of(const struct mbox_msg *m)
{
	/* RFC 5256: without a usable Date:, the INTERNALDATE */
	return m->keys && m->keys->sent >= 0 ? m->keys->sent : m->internaldate;
}

static int
cmp_item(const void *pa, const void *pb, void *arg)
{
	const struct item *a = pa, *b = pb;
	const struct ctx *c = arg;
	const struct mbox_msg *x = &c->mb->m[a->idx], *y = &c->mb->m[b->idx];

	for (size_t i = 0; i < c->s->n; i++) {
		int r = 0;
		switch (c->s->k[i].key) {
		case K_ARRIVAL:
			r = (x->internaldate > y->internaldate) -
			    (x->internaldate < y->internaldate);
			break;
		case K_DATE: {
			int64_t p = sent_of(x), q = sent_of(y);
			r = (p > q) - (p < q);
			break;
		}
		case K_SIZE:
			r = (x->vsize > y->vsize) - (x->vsize < y->vsize);
			break;
		case K_SUBJECT:
			r = cmp_str(x->keys->subject, y->keys->subject);
			break;
		case K_FROM:
			r = cmp_str(x->keys->from, y->keys->from);
			break;
		case K_TO:
			r = cmp_str(x->keys->to, y->keys->to);
			break;
		case K_CC:
			r = cmp_str(x->keys->cc, y->keys->cc);
			break;
		case K_DISPLAYFROM:
			r = cmp_str(x->keys->dfrom, y->keys->dfrom);
			break;
		case K_DISPLAYTO:
			r = cmp_str(x->keys->dto, y->keys->dto);
			break;
		}
		if (r)
			return c->s->k[i].reverse ? -r : r;
	}
	return (a->ord > b->ord) - (a->ord < b->ord);
}

void
imap_sort_run(struct mbox *mb, size_t *idx, size_t n,
    const struct imap_sort *s)
{
	struct item *it = xcalloc(n + 1, sizeof(*it));
	struct ctx c = { mb, s };
	bool need_keys = false;

	for (size_t i = 0; i < s->n; i++)
		need_keys |= s->k[i].key != K_ARRIVAL && s->k[i].key != K_SIZE;
	for (size_t i = 0; i < n; i++) {
		it[i].idx = idx[i];
		it[i].ord = i;
		if (need_keys)
			(void)imap_sort_keys(mb, idx[i]);
	}
	qsort_r(it, n, sizeof(*it), cmp_item, &c);
	for (size_t i = 0; i < n; i++)
		idx[i] = it[i].idx;
	free(it);
}

/* --- THREAD --------------------------------------------------------------- */

struct node {
	long msg;                 /* index into the idx given, or -1 */
	const char *id;
	struct node *parent, *child, *next;
	int64_t date;             /* for ordering: its own or first child's */
};

struct forest {
	struct node **v;          /* every node made (for freeing) */
	size_t n;
	/* Message-ID -> node, open addressing */
	struct node **tab;
	size_t cap;
};

static struct node *
node_new(struct forest *f, const char *id, long msg)
{
	struct node *x = xcalloc(1, sizeof(*x));

	x->id = id;
	x->msg = msg;
	f->v = xreallocarray(f->v, f->n + 1, sizeof(*f->v));
	f->v[f->n++] = x;
	return x;
}

static size_t
hash_id(const char *s)
{
	size_t h = 1469598103934665603u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* the node of id, made (empty) if new */
static struct node *
by_id(struct forest *f, const char *id)
{
	size_t i = hash_id(id) & (f->cap - 1);

	while (f->tab[i]) {
		if (strcmp(f->tab[i]->id, id) == 0)
			return f->tab[i];
		i = (i + 1) & (f->cap - 1);
	}
	return f->tab[i] = node_new(f, id, -1);
}

/*
 * Threads deeper than this are cut (the rest starts a thread of its own):
 * every walk up a thread and the recursions over it stay bounded, however
 * the References of hostile mail are chained.
 */
#define THREAD_DEPTH_MAX 256

static size_t
depth_of(const struct node *x)
{
	size_t d = 0;

	for (; x && d <= THREAD_DEPTH_MAX; x = x->parent)
		d++;
	return d;
}

static bool
is_ancestor(const struct node *a, const struct node *x)
{
	for (; x; x = x->parent)
		if (x == a)
			return true;
	return false;
}

static void
unlink_node(struct node *x)
{
	if (x->parent == NULL)
		return;
	struct node **p = &x->parent->child;
	while (*p && *p != x)
		p = &(*p)->next;
	if (*p)
		*p = x->next;
	x->parent = NULL;
	x->next = NULL;
}

static void
add_child(struct node *parent, struct node *x)
{
	unlink_node(x);
	x->parent = parent;
	x->next = NULL;
	struct node **p = &parent->child;
	while (*p)
		p = &(*p)->next;
	*p = x;
}

/* RFC 5256 3 (3): empty containers go, or give way to their children */
static struct node *
prune(struct node *list, bool at_root)
{
	struct node *out = NULL, **tail = &out;

	for (struct node *x = list, *next; x; x = next) {
		next = x->next;
		x->next = NULL;
		x->child = prune(x->child, false);
		for (struct node *c = x->child; c; c = c->next)
			c->parent = x;
		if (x->msg < 0 && x->child == NULL)
			continue;
		if (x->msg < 0 && (!at_root || x->child->next == NULL)) {
			/* its children take its place */
			struct node *c = x->child;
			for (struct node *k = c; k; k = k->next)
				k->parent = x->parent;
			*tail = c;
			while (*tail)
				tail = &(*tail)->next;
			continue;
		}
		*tail = x;
		tail = &x->next;
	}
	return out;
}

struct tctx {
	struct mbox *mb;
	const size_t *idx;
};

static int64_t
node_date(struct node *x, const struct tctx *t)
{
	if (x->msg >= 0)
		return sent_of(&t->mb->m[t->idx[x->msg]]);
	return x->child ? x->child->date : 0;
}

static int
cmp_node(const void *pa, const void *pb)
{
	const struct node *a = *(struct node *const *)pa;
	const struct node *b = *(struct node *const *)pb;

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	long x = a->msg >= 0 ? a->msg : (a->child ? a->child->msg : 0);
	long y = b->msg >= 0 ? b->msg : (b->child ? b->child->msg : 0);
	return (x > y) - (x < y);
}

/* siblings in date order, children first (a dummy takes its first's) */
static struct node *
sort_level(struct node *list, const struct tctx *t)
{
	size_t n = 0;

	for (struct node *x = list; x; x = x->next) {
		x->child = sort_level(x->child, t);
		x->date = node_date(x, t);
		n++;
	}
	if (n < 2)
		return list;
	struct node **v = xcalloc(n, sizeof(*v));
	size_t i = 0;
	for (struct node *x = list; x; x = x->next)
		v[i++] = x;
	qsort(v, n, sizeof(*v), cmp_node);
	for (i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	struct node *head = v[0];
	free(v);
	return head;
}

static void
write_members(struct buf *out, const struct node *x, const uint32_t *num)
{
	if (x->msg >= 0) {
		buf_printf(out, "%u", num[x->msg]);
		/* one child each: a chain "a b c" */
		while (x->child && x->child->next == NULL && x->child->msg >= 0) {
			x = x->child;
			buf_printf(out, " %u", num[x->msg]);
		}
		if (x->child == NULL)
			return;
		buf_append_char(out, ' ');
	}
	for (const struct node *c = x->child; c; c = c->next) {
		buf_append_char(out, '(');
		write_members(out, c, num);
		buf_append_char(out, ')');
	}
}

static const struct sort_keys *
keys_of(const struct node *x, const struct tctx *t)
{
	while (x && x->msg < 0)
		x = x->child;
	return x ? t->mb->m[t->idx[x->msg]].keys : NULL;
}

/* RFC 5256 3 (4): root threads with one base subject come together */
static struct node *
gather(struct forest *f, struct node *roots, const struct tctx *t)
{
	size_t n = 0, cap = 1;

	for (struct node *x = roots; x; x = x->next)
		n++;
	if (n == 0)
		return NULL;
	struct node **v = xcalloc(n, sizeof(*v));
	n = 0;
	for (struct node *x = roots, *next; x; x = next) {
		next = x->next;
		x->next = NULL;
		v[n++] = x;
	}
	while (cap < 2 * n + 2)
		cap <<= 1;
	long *seen = xcalloc(cap, sizeof(*seen));   /* index + 1 into v */
	for (size_t i = 0; i < n; i++) {
		struct node *x = v[i];
		const struct sort_keys *k = keys_of(x, t);
		if (k == NULL || k->subject[0] == '\0')
			continue;
		size_t h = hash_id(k->subject) & (cap - 1);
		while (seen[h] && strcmp(keys_of(v[seen[h] - 1], t)->subject,
		    k->subject) != 0)
			h = (h + 1) & (cap - 1);
		if (seen[h] == 0) {
			seen[h] = (long)i + 1;
			continue;
		}
		size_t j = (size_t)seen[h] - 1;
		struct node *o = v[j];
		bool o_reply = o->msg >= 0 && keys_of(o, t)->reply;
		bool x_reply = x->msg >= 0 && k->reply;
		if (o->msg < 0 && x->msg < 0) {
			while (x->child)
				add_child(o, x->child);
			v[i] = NULL;
		} else if (o->msg < 0 || (x_reply && !o_reply && x->msg >= 0)) {
			add_child(o, x);       /* into the empty one, or a reply */
			v[i] = NULL;
		} else if (x->msg < 0 || (o_reply && !x_reply)) {
			add_child(x, o);
			v[j] = NULL;
			seen[h] = (long)i + 1;
		} else {
			/* neither is the other's reply: both under a new one */
			struct node *d = node_new(f, NULL, -1);
			add_child(d, o);
			add_child(d, x);
			v[j] = d;
			v[i] = NULL;
		}
	}
	struct node *out = NULL, **tail = &out;
	for (size_t i = 0; i < n; i++)
		if (v[i]) {
			*tail = v[i];
			tail = &v[i]->next;
		}
	free(seen);
	free(v);
	return out;
}

void
imap_thread_run(struct buf *out, struct mbox *mb, const size_t *idx,
    const uint32_t *num, size_t n, bool references)
{
	struct forest f;
	struct tctx t = { mb, idx };
	struct node *roots = NULL, **tail = &roots;

	memset(&f, 0, sizeof(f));
	for (size_t i = 0; i < n; i++)
		(void)imap_sort_keys(mb, idx[i]);
	buf_append_str(out, "* THREAD");
	if (!references) {
		/* ORDEREDSUBJECT: by base subject, then date; first is parent */
		struct node *by_subj = NULL;
		size_t cap = 1;
		while (cap < 2 * n + 2)
			cap <<= 1;
		struct node **tab = xcalloc(cap, sizeof(*tab));
		for (size_t i = 0; i < n; i++) {
			struct node *x = node_new(&f, NULL, (long)i);
			const char *subj = mb->m[idx[i]].keys->subject;
			size_t h = hash_id(subj) & (cap - 1);
			while (tab[h] && strcmp(keys_of(tab[h], &t)->subject,
			    subj) != 0)
				h = (h + 1) & (cap - 1);
			if (tab[h] == NULL) {
				tab[h] = node_new(&f, NULL, -1);   /* the group */
				tab[h]->msg = -1;
				tab[h]->next = by_subj;
				by_subj = tab[h];
			}
			add_child(tab[h], x);
		}
		free(tab);
		by_subj = sort_level(by_subj, &t);
		for (struct node *g = by_subj; g; g = g->next) {
			/* the first is the parent of the others */
			struct node *first = g->child;
			while (first->next)
				add_child(first, first->next);
			*tail = first;
			first->parent = NULL;
			tail = &first->next;
		}
		/* the groups are in date order; keep that order of firsts */
	} else {
		/* room for every id (a message's own and its references),
		 * at most half full */
		size_t ids = 0, cap = 1;
		for (size_t i = 0; i < n; i++)
			ids += 1 + mb->m[idx[i]].keys->nrefs;
		while (cap < 2 * ids + 2)
			cap <<= 1;
		f.cap = cap;
		f.tab = xcalloc(cap, sizeof(*f.tab));
		for (size_t i = 0; i < n; i++) {
			const struct sort_keys *k = mb->m[idx[i]].keys;
			struct node *x;
			if (k->msgid && (x = by_id(&f, k->msgid))->msg < 0)
				x->msg = (long)i;
			else
				x = node_new(&f, NULL, (long)i);   /* none, or twice */
			struct node *prev = NULL;
			for (size_t r = 0; r < k->nrefs; r++) {
				struct node *y = by_id(&f, k->refs[r]);
				if (prev && y->parent == NULL && y != prev &&
				    depth_of(prev) < THREAD_DEPTH_MAX &&
				    !is_ancestor(y, prev))
					add_child(prev, y);
				prev = y;
			}
			/* the message's parent is its last reference */
			unlink_node(x);
			if (prev && prev != x &&
			    depth_of(prev) < THREAD_DEPTH_MAX &&
			    !is_ancestor(x, prev))
				add_child(prev, x);
		}
		/* whatever is still too deep starts a thread of its own (a
		 * later cut only makes the others shallower) */
		for (size_t i = 0; i < f.n; i++)
			if (depth_of(f.v[i]) > THREAD_DEPTH_MAX)
				unlink_node(f.v[i]);
		for (size_t i = 0; i < f.n; i++)
			if (f.v[i]->parent == NULL) {
				*tail = f.v[i];
				f.v[i]->next = NULL;
				tail = &f.v[i]->next;
			}
		roots = prune(roots, true);
		roots = sort_level(roots, &t);
		roots = gather(&f, roots, &t);
	}
	roots = sort_level(roots, &t);
	if (roots)
		buf_append_char(out, ' ');
	for (struct node *x = roots; x; x = x->next) {
		buf_append_char(out, '(');
		write_members(out, x, num);
		buf_append_char(out, ')');
	}
	buf_append_str(out, "\r\n");
	for (size_t i = 0; i < f.n; i++)
		free(f.v[i]);
	free(f.v);
	free(f.tab);
}
