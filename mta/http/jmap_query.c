/* SPDX-License-Identifier: ISC */
/*
 * jmap_query.c - layer 3: Email/query (RFC 8621 4.4) and
 * SearchSnippet/get (5.1), which marks a filter's text in the subject
 * and a stretch of the text of the Emails asked for. The filter is a
 * tree of FilterOperators (AND, OR, NOT) and FilterConditions, every
 * condition of section 4.4.1; the sort up to five comparators of
 * receivedAt, sentAt, size, from, to, subject, hasKeyword,
 * someInThreadHaveKeyword and allInThreadHaveKeyword.
 *
 * What the snapshots hold (folders, dates, sizes, keywords, threads) is
 * judged on the loop. The conditions on a message's text (text, body,
 * from, to, cc, bcc, subject, header, hasAttachment) and the sorts by
 * from, to and subject need the folder: one job per folder in scope
 * answers them for all its messages (jmap_search.c), and the tree is
 * judged when the last has come back. The common query, one mailbox
 * newest first, is the snapshot's own order and needs neither job nor
 * sort.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "http/jmap_account.h"
#include "http/jmap_int.h"
#include "http/jmap_email.h"
#include "http/jmap_search.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "store/mailbox.h"
#include "store/store.h"

#define FILTER_DEPTH 10
#define LEAVES_MAX 16
#define SORT_MAX 5
#define NOT_IN_MAX 16

enum { Q_COND, Q_AND, Q_OR, Q_NOT };

struct qnode {
	int op;
	struct qnode *kids;
	size_t nkids;
	/* Q_COND: its properties, all of which must hold */
	ssize_t in_box;           /* -1: none; nboxes: no such mailbox */
	ssize_t not_in[NOT_IN_MAX];
	size_t nnot;
	int64_t before, after;
	uint64_t min_size, max_size;
	const char *has_kw, *not_kw, *all_kw, *some_kw, *none_kw;
	size_t leaf[LEAVES_MAX];  /* into the query's leaves */
	bool leaf_want[LEAVES_MAX];   /* false: hasAttachment false */
	size_t nleaf;
};

enum skey { S_RECEIVED, S_SENT, S_SIZE, S_FROM, S_TO, S_SUBJECT,
	S_HAS_KW, S_SOME_KW, S_ALL_KW };

struct scomp {
	enum skey key;
	bool asc;
	const char *kw;
};

struct hit {
	const char *id;
	const char *tid;
	const struct jsnap_msg *m;
	size_t box;
	const struct jsort_row *row;   /* for S_FROM, S_TO, S_SUBJECT */
	bool kwv[SORT_MAX];            /* the keyword sorts' values */
};

struct query {
	struct jreq *q;
	json_t *args;             /* held */
	struct qnode root;
	struct jleaf leaves[LEAVES_MAX];
	size_t nleaves;
	struct scomp sort[SORT_MAX];
	size_t nsort;
	bool rows;                /* a sort needs the header keys */
	struct jsearch_out *out;  /* per box, when jobs ran */
	bool *ran;                /* per box: a job answered */
	size_t nboxes, pending;
	unsigned gen;             /* jacct_generation() when it began */
	int tries;
	struct qchg *qc;          /* Email/queryChanges': all hits to it */
};

static void qchg_answer(struct qchg *c, const struct hit *hits, size_t nh);
static void qchg_query(struct qchg *c, int tries);

/* --- keywords ------------------------------------------------------------ */

static bool
has_keyword(const struct jbox *jb, const struct jsnap_msg *m, const char *kw)
{
	uint8_t f = jq_sys_flag(kw);

	if (f)
		return (m->flags & f) != 0;
	for (size_t i = 0; i < jb->s.nkw; i++)
		if (jb->s.kw[i] && (m->kw & (1u << i)) &&
		    ascii_strcaseeq(jb->s.kw[i], kw))
			return true;
	return false;
}

/* Does some (all: every) Email of m's thread have kw? */
static bool
thread_keyword(struct jacct *a, const struct jsnap_msg *m, const char *kw,
    bool all)
{
	size_t n;
	const struct jloc *l = jacct_thread(a, m->tid, &n);

	for (size_t k = 0; k < n; k++) {
		bool h = has_keyword(jacct_box(a, l[k].box), jacct_msg(a, &l[k]),
		    kw);
		if (h != all)
			return h;
	}
	return all;
}

/* --- the filter ---------------------------------------------------------- */

static void
node_clear(struct qnode *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_clear(&n->kids[i]);
	free(n->kids);
}

static void
cond_init(struct qnode *n)
{
	memset(n, 0, sizeof(*n));
	n->op = Q_COND;
	n->in_box = -1;
	n->before = INT64_MAX;
	n->after = INT64_MIN;
	n->max_size = UINT64_MAX;
}

static const struct {
	const char *name;
	enum jleaf_kind kind;
} leaf_names[] = {
	{ "text", JL_TEXT }, { "body", JL_BODY }, { "from", JL_FROM },
	{ "to", JL_TO }, { "cc", JL_CC }, { "bcc", JL_BCC },
	{ "subject", JL_SUBJECT },
};

static const char *
add_leaf(struct query *qu, struct qnode *n, enum jleaf_kind kind,
    const char *needle, const char *name, bool want)
{
	if (qu->nleaves == LEAVES_MAX || n->nleaf == LEAVES_MAX)
		return "unsupportedFilter";
	struct jleaf *l = &qu->leaves[qu->nleaves];
	l->kind = kind;
	l->needle = needle ? xstrdup(needle) : NULL;
	l->name = name ? xstrdup(name) : NULL;
	n->leaf_want[n->nleaf] = want;
	n->leaf[n->nleaf++] = qu->nleaves++;
	return NULL;
}

static const char *
cond_prop(struct query *qu, struct qnode *n, const char *k, json_t *v)
{
	struct jacct *a = qu->q->acct;

	for (size_t i = 0; i < sizeof(leaf_names) / sizeof(leaf_names[0]); i++)
		if (strcmp(k, leaf_names[i].name) == 0)
			return json_is_string(v) ? add_leaf(qu, n,
			    leaf_names[i].kind, json_string_value(v), NULL,
			    true) : "invalidArguments";
	if (strcmp(k, "header") == 0) {
		json_t *name = json_array_get(v, 0), *val = json_array_get(v, 1);
		if (!json_is_array(v) || json_array_size(v) < 1 ||
		    json_array_size(v) > 2 || !json_is_string(name) ||
		    (val && !json_is_string(val)) ||
		    json_string_length(name) == 0 ||
		    strpbrk(json_string_value(name), ": \t\r\n"))
			return "invalidArguments";
		return add_leaf(qu, n, JL_HEADER, val ? json_string_value(val) :
		    NULL, json_string_value(name), true);
	}
	if (strcmp(k, "hasAttachment") == 0)
		return json_is_boolean(v) ? add_leaf(qu, n, JL_ATTACH, NULL,
		    NULL, json_is_true(v)) : "invalidArguments";
	if (strcmp(k, "inMailbox") == 0) {
		if (!json_is_string(v))
			return "invalidArguments";
		n->in_box = jacct_box_by_id(a, json_string_value(v));
		if (n->in_box < 0)
			n->in_box = (ssize_t)jacct_nboxes(a);
		return NULL;
	}
	if (strcmp(k, "inMailboxOtherThan") == 0) {
		size_t i;
		json_t *x;
		if (!json_is_array(v) || json_array_size(v) > NOT_IN_MAX)
			return json_is_array(v) ? "unsupportedFilter" :
			    "invalidArguments";
		json_array_foreach(v, i, x) {
			if (!json_is_string(x))
				return "invalidArguments";
			n->not_in[n->nnot++] = jacct_box_by_id(a,
			    json_string_value(x));
		}
		return NULL;
	}
	if (strcmp(k, "before") == 0 || strcmp(k, "after") == 0) {
		int64_t t;
		if (!json_is_string(v) ||
		    !jmap_parse_utc_date(json_string_value(v), &t))
			return "invalidArguments";
		*(k[0] == 'b' ? &n->before : &n->after) = t;
		return NULL;
	}
	if (strcmp(k, "minSize") == 0 || strcmp(k, "maxSize") == 0) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return "invalidArguments";
		*(k[1] == 'i' ? &n->min_size : &n->max_size) =
		    (uint64_t)json_integer_value(v);
		return NULL;
	}
	static const char *const kws[] = { "hasKeyword", "notKeyword",
		"allInThreadHaveKeyword", "someInThreadHaveKeyword",
		"noneInThreadHaveKeyword" };
	const char **slot[] = { &n->has_kw, &n->not_kw, &n->all_kw,
		&n->some_kw, &n->none_kw };
	for (size_t i = 0; i < 5; i++)
		if (strcmp(k, kws[i]) == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0)
				return "invalidArguments";
			*slot[i] = json_string_value(v);
			return NULL;
		}
	return "unsupportedFilter";
}

static const char *
filter_parse(struct query *qu, json_t *f, struct qnode *n, int depth)
{
	const char *k, *err;
	json_t *v;

	cond_init(n);
	if (f == NULL || json_is_null(f))
		return NULL;
	if (!json_is_object(f))
		return "invalidArguments";
	if (depth > FILTER_DEPTH)
		return "unsupportedFilter";
	json_t *op = json_object_get(f, "operator");
	if (op) {
		json_t *conds = json_object_get(f, "conditions");
		const char *o = json_string_value(op);
		size_t i;
		if (json_object_size(f) != 2 || !json_is_array(conds) || !o)
			return "invalidArguments";
		n->op = strcmp(o, "AND") == 0 ? Q_AND : strcmp(o, "OR") == 0 ?
		    Q_OR : strcmp(o, "NOT") == 0 ? Q_NOT : -1;
		if (n->op < 0)
			return "invalidArguments";
		n->kids = xcalloc(json_array_size(conds) + 1, sizeof(*n->kids));
		json_array_foreach(conds, i, v) {
			err = filter_parse(qu, v, &n->kids[n->nkids++],
			    depth + 1);
			if (err)
				return err;
		}
		return NULL;
	}
	json_object_foreach(f, k, v)
		if ((err = cond_prop(qu, n, k, v)) != NULL)
			return err;
	return NULL;
}

/* Is Email id (any copy of it) in box? */
static bool
in_box(struct jacct *a, const char *id, size_t box)
{
	size_t n;
	const struct jloc *l = jacct_find(a, id, &n);

	for (size_t i = 0; i < n; i++)
		if (l[i].box == box)
			return true;
	return false;
}

static bool
uid_in(const uint32_t *u, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u[mid] == uid)
			return true;
		if (u[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool
cond_match(struct query *qu, const struct qnode *n, const struct hit *h)
{
	struct jacct *a = qu->q->acct;
	const struct jsnap_msg *m = h->m;
	const struct jbox *jb = jacct_box(a, h->box);

	if (m->received >= n->before || m->received < n->after ||
	    m->size < n->min_size || m->size >= n->max_size)
		return false;
	if (n->in_box >= 0 && (n->in_box >= (ssize_t)qu->nboxes ||
	    !in_box(a, m->id, (size_t)n->in_box)))
		return false;
	if (n->has_kw && !has_keyword(jb, m, n->has_kw))
		return false;
	if (n->not_kw && has_keyword(jb, m, n->not_kw))
		return false;
	if (n->all_kw && !thread_keyword(a, m, n->all_kw, true))
		return false;
	if (n->some_kw && !thread_keyword(a, m, n->some_kw, false))
		return false;
	if (n->none_kw && thread_keyword(a, m, n->none_kw, false))
		return false;
	if (n->nnot) {
		/* in some mailbox other than those */
		size_t c;
		const struct jloc *l = jacct_find(a, m->id, &c);
		bool other = false;
		for (size_t i = 0; i < c && !other; i++) {
			bool listed = false;
			for (size_t k = 0; k < n->nnot; k++)
				listed |= n->not_in[k] == (ssize_t)l[i].box;
			other = !listed;
		}
		if (!other)
			return false;
	}
	for (size_t i = 0; i < n->nleaf; i++) {
		const struct jsearch_out *o = &qu->out[h->box];
		size_t k = n->leaf[i];
		bool hit = qu->ran[h->box] && uid_in(o->uids[k], o->n[k],
		    m->uid);
		if (hit != n->leaf_want[i])
			return false;
	}
	return true;
}

static bool
node_match(struct query *qu, const struct qnode *n, const struct hit *h)
{
	switch (n->op) {
	case Q_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if (!node_match(qu, &n->kids[i], h))
				return false;
		return true;
	case Q_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if (node_match(qu, &n->kids[i], h))
				return true;
		return false;
	case Q_NOT:
		for (size_t i = 0; i < n->nkids; i++)
			if (node_match(qu, &n->kids[i], h))
				return false;
		return true;
	default:
		return cond_match(qu, n, h);
	}
}

/* A condition with nothing but inMailbox (or nothing at all). */
static bool
only_box(const struct qnode *n)
{
	return n->op == Q_COND && n->nnot == 0 && n->before == INT64_MAX &&
	    n->after == INT64_MIN && n->min_size == 0 &&
	    n->max_size == UINT64_MAX && !n->has_kw && !n->not_kw &&
	    !n->all_kw && !n->some_kw && !n->none_kw && n->nleaf == 0;
}

/* Whether n asks anything of other Emails of a message's thread. */
static bool
asks_thread(const struct qnode *n)
{
	if (n->op == Q_COND)
		return n->all_kw || n->some_kw || n->none_kw;
	for (size_t i = 0; i < n->nkids; i++)
		if (asks_thread(&n->kids[i]))
			return true;
	return false;
}

/*
 * Whether Email/queryChanges can follow the query: when only an Email's
 * own properties place it (no thread keywords, not collapsed), what
 * moved in the results since a state is what Email/changes names.
 */
static bool
calculable(const struct query *qu)
{
	if (json_is_true(json_object_get(qu->args, "collapseThreads")) ||
	    asks_thread(&qu->root))
		return false;
	for (size_t i = 0; i < qu->nsort; i++)
		if (qu->sort[i].key == S_SOME_KW || qu->sort[i].key == S_ALL_KW)
			return false;
	return true;
}

/* --- the sort ------------------------------------------------------------ */

static const char *
sort_parse(struct query *qu, json_t *sort)
{
	static const struct {
		const char *name;
		enum skey key;
	} keys[] = {
		{ "receivedAt", S_RECEIVED }, { "sentAt", S_SENT },
		{ "size", S_SIZE }, { "from", S_FROM }, { "to", S_TO },
		{ "subject", S_SUBJECT }, { "hasKeyword", S_HAS_KW },
		{ "someInThreadHaveKeyword", S_SOME_KW },
		{ "allInThreadHaveKeyword", S_ALL_KW },
	};
	size_t i;
	json_t *c;

	if (sort == NULL || json_is_null(sort))
		return NULL;
	if (!json_is_array(sort))
		return "invalidArguments";
	if (json_array_size(sort) > SORT_MAX)
		return "unsupportedSort";
	json_array_foreach(sort, i, c) {
		const char *k;
		json_t *v, *p = json_object_get(c, "property");
		struct scomp *s = &qu->sort[qu->nsort];
		if (!json_is_object(c) || !json_is_string(p))
			return "invalidArguments";
		json_object_foreach(c, k, v)
			if (strcmp(k, "property") && strcmp(k, "isAscending") &&
			    strcmp(k, "collation") && strcmp(k, "keyword"))
				return "invalidArguments";
		v = json_object_get(c, "isAscending");
		if (v && !json_is_boolean(v))
			return "invalidArguments";
		s->asc = v ? json_is_true(v) : true;
		v = json_object_get(c, "collation");
		if (v && (!json_is_string(v) || strcmp(json_string_value(v),
		    "i;ascii-casemap") != 0))
			return json_is_string(v) ? "unsupportedSort" :
			    "invalidArguments";
		size_t k2 = 0;
		while (k2 < sizeof(keys) / sizeof(keys[0]) &&
		    strcmp(keys[k2].name, json_string_value(p)) != 0)
			k2++;
		if (k2 == sizeof(keys) / sizeof(keys[0]))
			return "unsupportedSort";
		s->key = keys[k2].key;
		v = json_object_get(c, "keyword");
		if (s->key >= S_HAS_KW) {
			if (!json_is_string(v) || json_string_length(v) == 0)
				return "invalidArguments";
			s->kw = json_string_value(v);
		} else if (v)
			return "invalidArguments";
		qu->rows |= s->key == S_FROM || s->key == S_TO ||
		    s->key == S_SUBJECT;
		qu->nsort++;
	}
	return NULL;
}

static int
cmp_hit(const void *x, const void *y, void *arg)
{
	const struct hit *a = x, *b = y;
	const struct query *qu = arg;

	for (size_t i = 0; i < qu->nsort; i++) {
		const struct scomp *s = &qu->sort[i];
		int c = 0;
		switch (s->key) {
		case S_RECEIVED:
			c = (a->m->received > b->m->received) -
			    (a->m->received < b->m->received);
			break;
		case S_SENT:
			c = (a->m->sent > b->m->sent) - (a->m->sent < b->m->sent);
			break;
		case S_SIZE:
			c = (a->m->size > b->m->size) - (a->m->size < b->m->size);
			break;
		case S_FROM:
			c = strcmp(a->row ? a->row->from : "",
			    b->row ? b->row->from : "");
			break;
		case S_TO:
			c = strcmp(a->row ? a->row->to : "",
			    b->row ? b->row->to : "");
			break;
		case S_SUBJECT:
			c = strcmp(a->row ? a->row->subject : "",
			    b->row ? b->row->subject : "");
			break;
		default:
			c = a->kwv[i] - b->kwv[i];
			break;
		}
		if (c)
			return s->asc ? c : -c;
	}
	/* ties: newest first (oldest, under an ascending receivedAt), in
	 * one folder by arrival (UID), then by id: one order every call */
	bool asc = qu->nsort && qu->sort[0].key == S_RECEIVED &&
	    qu->sort[0].asc;
	int c = 0;
	if (a->m->received != b->m->received)
		c = a->m->received < b->m->received ? -1 : 1;
	else if (a->box == b->box && a->m->uid != b->m->uid)
		c = a->m->uid < b->m->uid ? -1 : 1;
	if (c)
		return asc ? c : -c;
	return strcmp(a->id, b->id);
}

static const struct jsort_row *
row_of(const struct query *qu, size_t box, uint32_t uid)
{
	const struct jsearch_out *o = &qu->out[box];
	size_t lo = 0, hi = o->nrows;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->rows[mid].uid == uid)
			return &o->rows[mid];
		if (o->rows[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* --- collapseThreads ----------------------------------------------------- */

/* The first hit of each thread stays, in order. */
static size_t
collapse(struct hit *hits, size_t nh)
{
	struct u64set seen;
	size_t w = 0;

	u64set_init(&seen, nh);
	for (size_t k = 0; k < nh; k++)
		if (u64set_add(&seen, sort_id_bits(hits[k].tid)))
			hits[w++] = hits[k];
	u64set_clear(&seen);
	return w;
}

/* --- running it ---------------------------------------------------------- */

static void
query_free(struct query *qu)
{
	for (size_t b = 0; qu->out && b < qu->nboxes; b++)
		jsearch_out_clear(&qu->out[b], qu->nleaves);
	free(qu->out);
	free(qu->ran);
	for (size_t i = 0; i < qu->nleaves; i++) {
		free(qu->leaves[i].needle);
		free(qu->leaves[i].name);
	}
	node_clear(&qu->root);
	json_decref(qu->args);
	free(qu);
}

static void
hit_fill(struct query *qu, struct hit *h, size_t box,
    const struct jsnap_msg *m)
{
	memset(h, 0, sizeof(*h));
	h->id = m->id;
	h->tid = m->tid;
	h->m = m;
	h->box = box;
}

static void
query_answer(struct query *qu)
{
	struct jreq *q = qu->q;
	json_t *args = qu->args, *v;
	struct hit *hits;
	size_t nh = 0;
	const struct qnode *r = &qu->root;
	bool newest = qu->nsort == 0 || (qu->nsort == 1 &&
	    qu->sort[0].key == S_RECEIVED && !qu->sort[0].asc);

	if (r->op == Q_COND && r->in_box >= (ssize_t)qu->nboxes) {
		hits = xcalloc(1, sizeof(*hits));     /* no such mailbox */
	} else if (r->op == Q_COND && r->in_box >= 0) {
		size_t b = (size_t)r->in_box;
		const struct jbox *jb = jacct_box(q->acct, b);
		bool plain = only_box(r);
		hits = xcalloc(jb->s.n + 1, sizeof(*hits));
		for (size_t k = 0; k < jb->s.n; k++) {
			/* newest first already: the common case needs no sort */
			hit_fill(qu, &hits[nh], b, &jb->s.m[jb->s.by_date[k]]);
			if (plain || node_match(qu, r, &hits[nh]))
				nh++;
		}
	} else {
		size_t n;
		const struct jloc *l = jacct_all(q->acct, &n);
		hits = xcalloc(n + 1, sizeof(*hits));
		for (size_t k = 0; k < n; k++) {
			hit_fill(qu, &hits[nh], l[k].box, jacct_msg(q->acct,
			    &l[k]));
			if (node_match(qu, r, &hits[nh]))
				nh++;
		}
		newest = false;
	}
	if (!newest) {
		for (size_t k = 0; k < nh; k++) {
			if (qu->rows)
				hits[k].row = row_of(qu, hits[k].box,
				    hits[k].m->uid);
			for (size_t i = 0; i < qu->nsort; i++) {
				const struct scomp *s = &qu->sort[i];
				if (s->key == S_HAS_KW)
					hits[k].kwv[i] = has_keyword(jacct_box(
					    q->acct, hits[k].box), hits[k].m,
					    s->kw);
				else if (s->key >= S_SOME_KW)
					hits[k].kwv[i] = thread_keyword(q->acct,
					    hits[k].m, s->kw, s->key == S_ALL_KW);
			}
		}
		qsort_r(hits, nh, sizeof(*hits), cmp_hit, qu);
	}
	if (qu->qc) {
		qchg_answer(qu->qc, hits, nh);
		free(hits);
		query_free(qu);
		return;
	}
	if (json_is_true(json_object_get(args, "collapseThreads")))
		nh = collapse(hits, nh);
	/* the window: position or anchor, then limit (RFC 8620 5.5) */
	int64_t pos = (v = json_object_get(args, "position")) ?
	    json_integer_value(v) : 0;
	const char *anchor = json_string_value(json_object_get(args, "anchor"));
	size_t limit = (v = json_object_get(args, "limit")) ?
	    (size_t)json_integer_value(v) : MAX_QUERY_LIMIT;
	if (limit > MAX_QUERY_LIMIT)
		limit = MAX_QUERY_LIMIT;
	if (anchor) {
		size_t k = 0;
		while (k < nh && strcmp(hits[k].id, anchor) != 0)
			k++;
		if (k == nh) {
			free(hits);
			query_free(qu);
			jq_error(q, "anchorNotFound", NULL);
			return;
		}
		int64_t off = (v = json_object_get(args, "anchorOffset")) ?
		    json_integer_value(v) : 0;
		pos = (int64_t)k + off;
		if (pos < 0)
			pos = 0;
	} else if (pos < 0) {
		pos += (int64_t)nh;
		if (pos < 0)
			pos = 0;
	}
	if ((size_t)pos > nh)
		pos = (int64_t)nh;
	json_t *ids = json_array();
	for (size_t k = (size_t)pos; k < nh && k < (size_t)pos + limit; k++)
		json_array_append_new(ids, json_string(hits[k].id));
	char *state = jacct_query_state(q->acct);
	json_t *res = json_pack("{s:s,s:s,s:b,s:I,s:o}", "accountId",
	    q->account_id, "queryState", state, "canCalculateChanges",
	    calculable(qu), "position", (json_int_t)pos, "ids", ids);
	free(state);
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(res, "total", json_integer((json_int_t)nh));
	if (json_object_get(args, "limit") &&
	    (size_t)json_integer_value(json_object_get(args, "limit")) > limit)
		json_object_set_new(res, "limit", json_integer((json_int_t)limit));
	free(hits);
	query_free(qu);
	jq_reply(q, res);
}

static void query_start(struct jreq *q, json_t *args, int tries);

/* The jobs are back: if folders came or went meanwhile, the boxes
 * named by index are others now, and the query starts again. */
static void
query_ready(struct query *qu)
{
	struct jreq *q = qu->q;

	if (qu->gen == jacct_generation(q->acct)) {
		query_answer(qu);
		return;
	}
	json_t *args = json_incref(qu->args);
	int tries = qu->tries + 1;
	struct qchg *qc = qu->qc;
	query_free(qu);
	if (qc)
		qchg_query(qc, tries);
	else if (tries < 3)
		query_start(q, args, tries);
	else
		jq_error(q, "serverFail", "the folders keep changing");
	json_decref(args);
}

struct qjob {
	struct query *qu;
	size_t box;
};

static bool
search_work(struct mbox *mb, void *arg)
{
	struct qjob *j = arg;
	struct store_account *sa = jacct_store_account(j->qu->q->acct);

	jsearch_folder(mb, store_account_index(sa), j->qu->leaves,
	    j->qu->nleaves, j->qu->rows, &j->qu->out[j->box]);
	return false;
}

static void
search_done(void *arg)
{
	struct qjob *j = arg;
	struct query *qu = j->qu;

	qu->ran[j->box] = true;
	free(j);
	if (--qu->pending == 0)
		query_ready(qu);
}

static void
email_query(struct jreq *q, json_t *args)
{
	query_start(q, args, 0);
}

static struct query *query_new(struct jreq *q, json_t *args, int tries);
static void query_launch(struct query *qu);

static void
query_start(struct jreq *q, json_t *args, int tries)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "filter", A_OBJ_NULL }, { "sort", A_ARR_NULL },
		{ "position", A_INT }, { "anchor", A_STR_NULL },
		{ "anchorOffset", A_INT }, { "limit", A_UINT },
		{ "calculateTotal", A_BOOL }, { "collapseThreads", A_BOOL },
		{ NULL, A_ANY } };
	struct query *qu;

	if (!jq_check_args(q, args, spec) ||
	    (qu = query_new(q, args, tries)) == NULL)
		return;
	query_launch(qu);
}

/* The query of args' filter and sort, or NULL when the error was sent. */
static struct query *
query_new(struct jreq *q, json_t *args, int tries)
{
	struct query *qu;
	const char *err;

	qu = xcalloc(1, sizeof(*qu));
	qu->q = q;
	qu->args = json_incref(args);
	qu->nboxes = jacct_nboxes(q->acct);
	qu->gen = jacct_generation(q->acct);
	qu->tries = tries;
	if ((err = filter_parse(qu, json_object_get(args, "filter"),
	    &qu->root, 0)) != NULL ||
	    (err = sort_parse(qu, json_object_get(args, "sort"))) != NULL) {
		query_free(qu);
		jq_error(q, err, NULL);
		return NULL;
	}
	return qu;
}

/* Its jobs, if it needs any, then the answer. */
static void
query_launch(struct query *qu)
{
	struct jreq *q = qu->q;

	qu->out = xcalloc(qu->nboxes + 1, sizeof(*qu->out));
	qu->ran = xcalloc(qu->nboxes + 1, sizeof(*qu->ran));
	if (qu->nleaves == 0 && !qu->rows) {
		query_answer(qu);
		return;
	}
	/* the folders in scope: the one of a top-level inMailbox, or all */
	const struct qnode *r = &qu->root;
	qu->pending = 1;
	for (size_t b = 0; b < qu->nboxes; b++) {
		if (r->op == Q_COND && r->in_box >= 0 && (size_t)r->in_box != b)
			continue;
		if (jacct_box(q->acct, b)->s.n == 0)
			continue;
		struct qjob *j = xcalloc(1, sizeof(*j));
		j->qu = qu;
		j->box = b;
		qu->pending++;
		jacct_box_run(q->acct, b, search_work, search_done, j);
	}
	if (--qu->pending == 0)
		query_ready(qu);
}

/* --- Email/queryChanges (RFC 8620 5.6) ----------------------------------- */

/*
 * A query state is the Email state under the letter q. What changed in
 * the results since one is what Email/changes names: every Email made,
 * changed or gone since is "removed", and those the query has now are
 * "added" at their place (RFC 8620 5.6 allows removing what was not
 * there, and adding back what stayed). The query then runs again, and
 * its state must be the one the changes end at: else once more.
 */
struct qchg {
	struct jreq *q;
	json_t *args;             /* held */
	char *since;              /* the Email state */
	size_t max;               /* 0: none given */
	json_t *changed;          /* ids, from Email/changes */
	char *until;              /* the Email state they end at */
	int tries;
};

static void
qchg_free(struct qchg *c)
{
	json_decref(c->args);
	json_decref(c->changed);
	free(c->since);
	free(c->until);
	free(c);
}

static void
qchg_changes_done(void *arg, json_t *res)
{
	struct qchg *c = arg;

	if (res == NULL) {            /* the error was sent */
		qchg_free(c);
		return;
	}
	if (json_is_true(json_object_get(res, "hasMoreChanges"))) {
		json_decref(res);
		if (c->max)
			jq_error(c->q, "tooManyChanges", NULL);
		else
			jq_error(c->q, "cannotCalculateChanges",
			    "too many changes: query again");
		qchg_free(c);
		return;
	}
	c->changed = json_array();
	static const char *const kinds[] = { "created", "updated",
		"destroyed" };
	for (size_t k = 0; k < 3; k++)
		json_array_extend(c->changed, json_object_get(res, kinds[k]));
	c->until = xstrdup(json_string_value(json_object_get(res,
	    "newState")));
	json_decref(res);
	if (c->max && json_array_size(c->changed) > c->max) {
		jq_error(c->q, "tooManyChanges", NULL);
		qchg_free(c);
		return;
	}
	qchg_query(c, 0);
}

static void
qchg_start(struct qchg *c)
{
	/* one more than max: "removed" may not outgrow it (tooManyChanges) */
	jchanges_email(c->q, c->since, c->max ? c->max + 1 : 100000,
	    qchg_changes_done, c);
}

static void
qchg_query(struct qchg *c, int tries)
{
	struct query *qu;

	if (tries >= 3) {
		jq_error(c->q, "serverFail", "the folders keep changing");
		qchg_free(c);
		return;
	}
	if ((qu = query_new(c->q, c->args, tries)) == NULL) {
		qchg_free(c);
		return;
	}
	qu->qc = c;
	query_launch(qu);
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void
qchg_answer(struct qchg *c, const struct hit *hits, size_t nh)
{
	struct jreq *q = c->q;
	char *now = jacct_email_state(q->acct);

	if (strcmp(now, c->until) != 0) {
		/* it moved on between the two: from the start */
		free(now);
		json_decref(c->changed);
		c->changed = NULL;
		free(c->until);
		c->until = NULL;
		if (++c->tries < 3)
			qchg_start(c);
		else {
			jq_error(q, "serverFail", "the folders keep changing");
			qchg_free(c);
		}
		return;
	}
	free(now);
	size_t n = json_array_size(c->changed);
	const char **ids = xcalloc(n + 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = json_string_value(json_array_get(c->changed, i));
	qsort(ids, n, sizeof(*ids), cmp_str);
	json_t *removed = json_array(), *added = json_array();
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0)
			json_array_append_new(removed, json_string(ids[i]));
	for (size_t k = 0; k < nh && n; k++)
		if (bsearch(&hits[k].id, ids, n, sizeof(*ids), cmp_str))
			json_array_append_new(added, json_pack("{s:s,s:I}",
			    "id", hits[k].id, "index", (json_int_t)k));
	free(ids);
	if (c->max && json_array_size(removed) + json_array_size(added) >
	    c->max) {
		json_decref(removed);
		json_decref(added);
		jq_error(q, "tooManyChanges", NULL);
		qchg_free(c);
		return;
	}
	char *old = xasprintf("q%s", c->since + 1);
	char *state = jacct_query_state(q->acct);
	json_t *res = json_pack("{s:s,s:s,s:s,s:o,s:o}", "accountId",
	    q->account_id, "oldQueryState", old, "newQueryState", state,
	    "removed", removed, "added", added);
	if (json_is_true(json_object_get(c->args, "calculateTotal")))
		json_object_set_new(res, "total", json_integer((json_int_t)nh));
	free(old);
	free(state);
	qchg_free(c);
	jq_reply(q, res);
}

static void
email_query_changes(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "filter", A_OBJ_NULL }, { "sort", A_ARR_NULL },
		{ "sinceQueryState", A_STR }, { "maxChanges", A_ANY },
		{ "upToId", A_STR_NULL }, { "calculateTotal", A_BOOL },
		{ "collapseThreads", A_BOOL }, { NULL, A_ANY } };
	json_t *v = json_object_get(args, "maxChanges");
	const char *since = json_string_value(json_object_get(args,
	    "sinceQueryState"));
	struct query *qu;

	if (!jq_check_args(q, args, spec))
		return;
	if (since == NULL) {
		jq_error(q, "invalidArguments", "sinceQueryState is required");
		return;
	}
	if (v && !json_is_null(v) && (!json_is_integer(v) ||
	    json_integer_value(v) <= 0)) {
		jq_error(q, "invalidArguments", "maxChanges must be above 0");
		return;
	}
	/* the filter and sort must be sound, and not ask of threads */
	if ((qu = query_new(q, args, 0)) == NULL)
		return;
	bool ok = calculable(qu);
	query_free(qu);
	if (!ok) {
		jq_error(q, "cannotCalculateChanges", "the results depend on "
		    "threads: query again");
		return;
	}
	if (since[0] != 'q') {
		jq_error(q, "cannotCalculateChanges", "not a query state of "
		    "this server");
		return;
	}
	/* upToId is a hint (RFC 8620 5.6): all changes are given */
	struct qchg *c = xcalloc(1, sizeof(*c));
	c->q = q;
	c->args = json_incref(args);
	c->since = xasprintf("e%s", since + 1);
	c->max = v && json_is_integer(v) ? (size_t)json_integer_value(v) : 0;
	qchg_start(c);
}

/* --- SearchSnippet/get (RFC 8621 5.1) ----------------------------------- */

#define SNIPPET_MAX 200           /* characters of a preview snippet */

struct snip_item {
	uint32_t uid;
	json_t *obj;              /* borrowed: the list holds it */
};

struct snip_box {
	struct snip *sn;
	struct snip_item *it;
	size_t n;
};

struct snip {
	struct jreq *q;
	struct query *qu;         /* the filter, for its needles */
	const char *subj[LEAVES_MAX], *body[LEAVES_MAX];
	size_t nsubj, nbody;
	json_t *list, *nf;
	size_t pending;
};

/* The needles a match shows: those of text, subject and body, not
 * under a NOT. */
static void
snip_needles(struct snip *sn, const struct qnode *n)
{
	if (n->op == Q_NOT)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		snip_needles(sn, &n->kids[i]);
	for (size_t i = 0; i < n->nleaf; i++) {
		const struct jleaf *l = &sn->qu->leaves[n->leaf[i]];
		if (l->needle == NULL || l->needle[0] == '\0')
			continue;
		if (l->kind == JL_TEXT || l->kind == JL_SUBJECT)
			sn->subj[sn->nsubj++] = l->needle;
		if (l->kind == JL_TEXT || l->kind == JL_BODY)
			sn->body[sn->nbody++] = l->needle;
	}
}

static json_t *
snippet_json(const char *t, size_t len, const char *const *needles,
    size_t n, bool whole)
{
	struct buf out;
	json_t *j;

	buf_init(&out);
	j = jmap_snippet(t, len, needles, n, whole, SNIPPET_MAX, &out) ?
	    json_stringn(out.data ? out.data : "", out.len) : json_null();
	buf_clear(&out);
	return j;
}

/* On the worker: each message's subject and text, marked. */
static bool
snip_work(struct mbox *mb, void *arg)
{
	struct snip_box *sb = arg;
	struct snip *sn = sb->sn;
	struct buf file, subj, thdr, tbody;
	struct tern_err err;
	struct message_field f;

	for (size_t k = 0; k < sb->n; k++) {
		ssize_t i = mbox_find_uid(mb, sb->it[k].uid);
		buf_init(&file);
		buf_init(&subj);
		buf_init(&thdr);
		buf_init(&tbody);
		memset(&err, 0, sizeof(err));
		if (i >= 0 && mbox_read(mb, (size_t)i, &file, 8u << 20,
		    &err) == 0) {
			const char *m = file.data ? file.data : "";
			size_t hl = message_header_len(m, file.len);
			if (message_find_field(m, hl, "Subject", &f))
				mime_decode_words(f.value, f.value_len, &subj);
			struct mime_part *root = mime_parse(m, file.len);
			mime_search_text(m, root, &thdr, &tbody, 1u << 20);
			mime_free(root);
		}
		/* the list holds the objects: set on the worker, read on
		 * the loop only once every job is back */
		json_object_set_new(sb->it[k].obj, "subject", snippet_json(
		    subj.data, subj.len, sn->subj, sn->nsubj, true));
		json_object_set_new(sb->it[k].obj, "preview", snippet_json(
		    tbody.data, tbody.len, sn->body, sn->nbody, false));
		buf_clear(&file);
		buf_clear(&subj);
		buf_clear(&thdr);
		buf_clear(&tbody);
	}
	return false;
}

static void
snip_finish(struct snip *sn)
{
	struct jreq *q = sn->q;
	json_t *res = json_pack("{s:s,s:o,s:o}", "accountId", q->account_id,
	    "list", sn->list, "notFound", json_array_size(sn->nf) ?
	    json_incref(sn->nf) : json_null());

	json_decref(sn->nf);
	query_free(sn->qu);
	free(sn);
	jq_reply(q, res);
}

static void
snip_done(void *arg)
{
	struct snip_box *sb = arg;
	struct snip *sn = sb->sn;

	free(sb->it);
	free(sb);
	if (--sn->pending == 0)
		snip_finish(sn);
}

static void
snippet_get(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "filter", A_OBJ_NULL }, { "emailIds", A_ANY },
		{ NULL, A_ANY } };
	json_t *ids = json_object_get(args, "emailIds"), *v;
	const char *err;
	size_t k;

	if (!jq_check_args(q, args, spec))
		return;
	if (!json_is_array(ids)) {
		jq_error(q, "invalidArguments", "emailIds is required");
		return;
	}
	json_array_foreach(ids, k, v)
		if (!json_is_string(v)) {
			jq_error(q, "invalidArguments", "emailIds: not ids");
			return;
		}
	if (json_array_size(ids) > MAX_OBJECTS_IN_GET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	struct snip *sn = xcalloc(1, sizeof(*sn));
	sn->q = q;
	sn->qu = xcalloc(1, sizeof(*sn->qu));
	sn->qu->q = q;
	sn->qu->args = json_incref(args);
	sn->qu->nboxes = jacct_nboxes(q->acct);
	if ((err = filter_parse(sn->qu, json_object_get(args, "filter"),
	    &sn->qu->root, 0)) != NULL) {
		query_free(sn->qu);
		free(sn);
		jq_error(q, err, NULL);
		return;
	}
	snip_needles(sn, &sn->qu->root);
	sn->list = json_array();
	sn->nf = json_array();
	size_t nb = jacct_nboxes(q->acct);
	struct snip_box **boxes = xcalloc(nb + 1, sizeof(*boxes));
	json_array_foreach(ids, k, v) {
		size_t n;
		const char *id = jq_id(q, json_string_value(v));
		const struct jloc *l = id ? jacct_find(q->acct, id, &n) : NULL;
		if (l == NULL) {
			json_array_append(sn->nf, v);
			continue;
		}
		json_t *o = json_pack("{s:s,s:n,s:n}", "emailId", id,
		    "subject", "preview");
		json_array_append_new(sn->list, o);
		if (sn->nsubj + sn->nbody == 0)
			continue;          /* nothing to mark: nulls */
		struct snip_box *sb = boxes[l->box];
		if (sb == NULL) {
			sb = boxes[l->box] = xcalloc(1, sizeof(*sb));
			sb->sn = sn;
			sb->it = xcalloc(json_array_size(ids) + 1,
			    sizeof(*sb->it));
		}
		sb->it[sb->n].uid = jacct_msg(q->acct, l)->uid;
		sb->it[sb->n++].obj = o;
	}
	sn->pending = 1;
	for (size_t b = 0; b < nb; b++)
		if (boxes[b]) {
			sn->pending++;
			jacct_box_run(q->acct, b, snip_work, snip_done,
			    boxes[b]);
		}
	free(boxes);
	if (--sn->pending == 0)
		snip_finish(sn);
}

const struct method jmap_query_methods[] = {
	{ "Email/query", CAP_MAIL, email_query },
	{ "Email/queryChanges", CAP_MAIL, email_query_changes },
	{ "SearchSnippet/get", CAP_MAIL, snippet_get },
	{ NULL, NULL, NULL },
};
