/* SPDX-License-Identifier: ISC */
/*
 * jmap_account.c - layer 3: the JMAP view of an account (jmap_account.h).
 * A refresh is: one pool job listing the folders and subscriptions, the
 * boxes opened or closed to match, then one job per folder that syncs it
 * (new/ stays new/: a JMAP read is no IMAP SELECT) and, only if its
 * HIGHESTMODSEQ or count moved, copies its messages into the snapshot.
 * An account lingers LINGER_SECS after its last user so the next request
 * finds its snapshots (and the store its folders) ready.
 */
#include "http/jmap_account.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <jansson.h>

#include "base/iopool.h"
#include "base/log.h"
#include "base/util.h"
#include "http/jmap_state.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/store.h"

#define LINGER_SECS 300

struct waiter {
	void (*done)(void *arg);
	void *arg;
	struct waiter *next;
};

struct jacct {
	TAILQ_ENTRY(jacct) entry;
	struct event_base *base;
	struct store *store;
	struct iopool *pool;
	char *user, *root;
	struct store_account *sa;
	struct jbox **boxes;
	size_t nboxes;
	unsigned refs;
	struct event *linger;
	bool prepared;            /* INBOX and special folders made */
	/* refresh */
	bool running;             /* a refresh is under way */
	size_t pending;           /* its folder jobs still out */
	struct waiter *now;       /* told when the running one ends */
	struct waiter *next;      /* asked meanwhile: told after the next */
	/* the id map, remade after a refresh that changed anything */
	struct jloc *loc;         /* by id, then box */
	size_t nloc;
	struct jloc *uniq;        /* one per id */
	size_t nuniq;
	struct jloc *thr;         /* uniq by thread, then date: or NULL */
	bool map_stale;
	unsigned gen;             /* the box list's, moved by every change */
	json_t *idents;           /* Identity/set's, once read (jmap_submit) */
	TAILQ_HEAD(, jacct_watch) watchers;
};

struct box_watch {
	struct store_watch w;
	struct jbox *jb;
};

static TAILQ_HEAD(, jacct) accounts = TAILQ_HEAD_INITIALIZER(accounts);

static void
snap_clear(struct jsnap *sn)
{
	free(sn->m);
	free(sn->del);
	free(sn->by_date);
	for (size_t i = 0; i < sn->nkw; i++)
		free(sn->kw[i]);
	free(sn->kw);
	sn->m = sn->del = NULL;
	sn->by_date = NULL;
	sn->kw = NULL;
	sn->n = sn->ndel = sn->nkw = 0;
}

static void
on_box_changed(void *arg)
{
	struct box_watch *bw = arg;
	struct jacct_watch *w, *next;

	for (w = TAILQ_FIRST(&bw->jb->acct->watchers); w; w = next) {
		next = TAILQ_NEXT(w, entry);
		w->changed(w->arg);
	}
}

static void
box_free(struct jbox *jb)
{
	struct box_watch *bw = jb->watch;

	store_box_unwatch(jb->b, &bw->w);
	free(bw);
	store_box_close(jb->b);
	snap_clear(&jb->s);
	free(jb->name);
	free(jb->path);
	free(jb);
}

static void
acct_free(struct jacct *a)
{
	TAILQ_REMOVE(&accounts, a, entry);
	for (size_t i = 0; i < a->nboxes; i++)
		box_free(a->boxes[i]);
	free(a->boxes);
	free(a->loc);
	free(a->uniq);
	free(a->thr);
	json_decref(a->idents);
	store_account_close(a->sa);
	event_free(a->linger);
	free(a->user);
	free(a->root);
	free(a);
}

static void
on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct jacct *a = arg;

	if (a->refs == 0 && !a->running)
		acct_free(a);
}

struct jacct *
jacct_open(struct event_base *base, struct store *st, struct iopool *pool,
    const char *user, const char *root)
{
	struct jacct *a;

	TAILQ_FOREACH(a, &accounts, entry)
		if (strcmp(a->user, user) == 0 && strcmp(a->root, root) == 0) {
			a->refs++;
			evtimer_del(a->linger);
			return a;
		}
	a = xcalloc(1, sizeof(*a));
	a->base = base;
	a->store = st;
	a->pool = pool;
	a->user = xstrdup(user);
	a->root = xstrdup(root);
	a->sa = store_account_open(st, user, root);
	a->linger = evtimer_new(base, on_linger, a);
	a->refs = 1;
	a->map_stale = true;
	TAILQ_INIT(&a->watchers);
	TAILQ_INSERT_TAIL(&accounts, a, entry);
	return a;
}

void
jacct_close(struct jacct *a)
{
	struct timeval tv = { LINGER_SECS, 0 };

	if (a == NULL)
		return;
	TERN_ASSERT(a->refs > 0);
	if (--a->refs == 0)
		evtimer_add(a->linger, &tv);
}

struct jacct *
jacct_ref(struct jacct *a)
{
	a->refs++;
	evtimer_del(a->linger);
	return a;
}

const char *
jacct_user(const struct jacct *a)
{
	return a->user;
}

json_t **
jacct_identities(struct jacct *a)
{
	return &a->idents;
}

struct iopool *
jacct_pool(const struct jacct *a)
{
	return a->pool;
}

struct store *
jacct_store(const struct jacct *a)
{
	return a->store;
}

struct store_account *
jacct_store_account(const struct jacct *a)
{
	return a->sa;
}

const char *
jacct_root(const struct jacct *a)
{
	return a->root;
}

unsigned
jacct_generation(const struct jacct *a)
{
	return a->gen;
}

size_t
jacct_nboxes(const struct jacct *a)
{
	return a->nboxes;
}

struct jbox *
jacct_box(struct jacct *a, size_t i)
{
	return i < a->nboxes ? a->boxes[i] : NULL;
}

ssize_t
jacct_box_by_id(const struct jacct *a, const char *id)
{
	for (size_t i = 0; i < a->nboxes; i++)
		if (strcmp(a->boxes[i]->s.id, id) == 0)
			return (ssize_t)i;
	return -1;
}

ssize_t
jacct_box_by_name(const struct jacct *a, const char *name)
{
	for (size_t i = 0; i < a->nboxes; i++)
		if (strcmp(a->boxes[i]->name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* --- the refresh --------------------------------------------------------- */

struct listing {
	struct jacct *a;
	char **names;
	size_t n;
	char **subs;
	size_t nsubs;
	bool prepare;
	int rc;
};

static void
list_work(void *arg)
{
	struct listing *l = arg;

	if (l->prepare) {
		folders_ensure_root(l->a->root);
		folders_ensure_special(l->a->root);
	}
	l->rc = folders_list(l->a->root, &l->names, &l->n);
	if (folders_subscriptions(l->a->root, &l->subs, &l->nsubs) != 0) {
		l->subs = NULL;
		l->nsubs = 0;
	}
}

static int
cmp_date(const void *x, const void *y, void *arg)
{
	const struct jsnap_msg *m = arg;
	const struct jsnap_msg *a = &m[*(const uint32_t *)x],
	    *b = &m[*(const uint32_t *)y];

	if (a->received != b->received)
		return a->received > b->received ? -1 : 1;
	return a->uid > b->uid ? -1 : a->uid < b->uid;   /* newest first */
}

/* ",S=" of a name: the size with LF line ends, until the CRLF size is
 * known (Email/get counts it and the index keeps it) */
static uint64_t
lf_size(const char *base)
{
	const char *p = strstr(base, ",S=");
	uint64_t v = 0;

	if (p == NULL)
		return 0;
	for (p += 3; *p >= '0' && *p <= '9' && v < (1ull << 50); p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

/*
 * The sort keys (a thread id needs the Message-ID and References) of
 * every message from the index's cache first; what it has not, read
 * from the files by mbox_sort_keys() then (and learnt by the cache).
 */
static void
keys_fill(struct jbox *jb, struct mbox *mb)
{
	struct store_account *sa = jb->acct->sa;
	size_t *idx = xcalloc(mb->n + 1, sizeof(*idx)), n = 0;
	struct tern_err err;

	for (size_t i = 0; i < mb->n; i++)
		if (mb->m[i].keys == NULL && !mb->m[i].cache_tried)
			idx[n++] = i;
	memset(&err, 0, sizeof(err));
	if (n && tindex_cache_fill(store_account_index(sa), store_rel(sa,
	    mb->path), mb, idx, n, &err) != 0)
		log_warnx("jmap: %s: %s", jb->path, err.text);
	free(idx);
}

/*
 * Threads with a message in the folder, and those with one unread: one
 * pass over two sets of thread ids (a sort of 100,000 ids cost more
 * than the rest of a snapshot).
 */
static void
count_threads(struct jsnap *sn)
{
	struct u64set all, unread;

	u64set_init(&all, sn->n);
	u64set_init(&unread, sn->n);
	for (size_t i = 0; i < sn->n; i++) {
		uint64_t v = sort_id_bits(sn->m[i].tid);
		sn->threads += u64set_add(&all, v);
		if (!(sn->m[i].flags & MBOX_SEEN))
			sn->unread_threads += u64set_add(&unread, v);
	}
	u64set_clear(&all);
	u64set_clear(&unread);
}

/*
 * On the worker, in the folder's job: sync, then a new snapshot in
 * jb->fresh if the folder moved (the loop swaps it in: requests read
 * jb->s meanwhile).
 */
static void
snap_work(struct store_box *b, void *arg)
{
	struct jbox *jb = arg;
	struct mbox *mb = store_box_mbox(b);
	struct tern_err err;
	bool changed = false;

	memset(&err, 0, sizeof(err));
	if (mbox_sync(mb, jb->acct->root, false, &changed, &err) != 0)
		log_warnx("jmap: %s: %s", jb->path, err.text);
	if (changed)
		store_box_mark_changed(b);
	if (jb->have && jb->s.uidvalidity == mb->uidvalidity &&
	    jb->s.modseq == mb->modseq && jb->s.mb_n == mb->n && !changed)
		return;
	struct jsnap *sn = xcalloc(1, sizeof(*sn));
	mbox_load_keywords(mb);
	sn->uidvalidity = mb->uidvalidity;
	sn->uidnext = mb->uidnext;
	sn->modseq = mb->modseq;
	sn->mb_n = mb->n;
	mbox_id(mb, sn->id);
	keys_fill(jb, mb);
	sn->m = xcalloc(mb->n + 1, sizeof(*sn->m));
	const struct jsnap *old = &jb->s;
	size_t o = 0, old_n = jb->have && old->uidvalidity == mb->uidvalidity ?
	    old->n : 0;
	for (size_t i = 0; i < mb->n; i++) {
		const struct mbox_msg *m = &mb->m[i];
		struct jsnap_msg *s;
		if (m->flags & MBOX_DELETED) {
			/* invisible to JMAP (RFC 8621 1.4): for /changes */
			if (sn->del == NULL)
				sn->del = xcalloc(mb->n, sizeof(*sn->del));
			s = &sn->del[sn->ndel++];
			s->uid = m->uid;
			s->modseq = m->modseq;
			sort_email_id(m->base, s->id);
			sort_thread_id(mbox_sort_keys(mb, i), m->base, s->tid);
			continue;
		}
		s = &sn->m[sn->n++];
		s->uid = m->uid;
		s->modseq = m->modseq;
		const struct sort_keys *sk = mbox_sort_keys(mb, i);
		/* a UID's file and thread stay: the old snapshot's ids (read
		 * only, as the loop's requests read it) save the hashing */
		while (o < old_n && old->m[o].uid < m->uid)
			o++;
		if (o < old_n && old->m[o].uid == m->uid && sk->tid[0] &&
		    strcmp(old->m[o].tid, sk->tid) == 0) {
			memcpy(s->id, old->m[o].id, SORT_ID_LEN);
			memcpy(s->tid, old->m[o].tid, SORT_ID_LEN);
		} else {
			sort_email_id(m->base, s->id);
			sort_thread_id(sk, m->base, s->tid);
		}
		s->sent = sk->sent;
		s->flags = m->flags;
		s->kw = m->kw;
		s->size = m->vsize ? m->vsize : lf_size(m->base);
		s->received = m->internaldate;
		if (!(m->flags & MBOX_SEEN))
			sn->unread++;
	}
	sn->nkw = KEYWORDS_MAX;
	sn->kw = xcalloc(sn->nkw + 1, sizeof(char *));
	for (size_t i = 0; i < sn->nkw; i++)     /* NULL: a free letter */
		sn->kw[i] = mb->kw.names[i] ? xstrdup(mb->kw.names[i]) : NULL;
	sn->by_date = xcalloc(sn->n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < sn->n; i++)
		sn->by_date[i] = (uint32_t)i;
	qsort_r(sn->by_date, sn->n, sizeof(uint32_t), cmp_date, sn->m);
	count_threads(sn);
	jb->fresh = sn;
}

static void refresh_start(struct jacct *a);

static void
refresh_end(struct jacct *a)
{
	struct waiter *w = a->now, *next;

	a->now = NULL;
	a->running = false;
	a->refs++;                /* a waiter may close the account */
	for (; w; w = next) {
		next = w->next;
		w->done(w->arg);
		free(w);
	}
	if (a->next) {
		/* asked while the last one ran: a refresh that a waiter
		 * above started is new enough for them too (joined to its
		 * waiters, which must not be lost); else one more */
		struct waiter *tail = a->next;
		while (tail->next)
			tail = tail->next;
		tail->next = a->now;
		a->now = a->next;
		a->next = NULL;
		if (!a->running)
			refresh_start(a);
	}
	jacct_close(a);
}

static void
snap_done(struct store_box *b, void *arg)
{
	struct jbox *jb = arg;
	struct jacct *a = jb->acct;

	(void)b;
	if (jb->fresh) {
		snap_clear(&jb->s);
		jb->s = *jb->fresh;
		free(jb->fresh);
		jb->fresh = NULL;
		jb->have = true;
		a->map_stale = true;
	}
	if (--a->pending == 0)
		refresh_end(a);
}

static struct jbox *
box_new(struct jacct *a, const char *name)
{
	char path[4096];
	struct jbox *jb;
	struct box_watch *bw;

	if (folders_path(a->root, name, path, sizeof(path)) != 0)
		return NULL;
	jb = xcalloc(1, sizeof(*jb));
	jb->acct = a;
	jb->name = xstrdup(name);
	jb->path = xstrdup(path);
	jb->b = store_box_open(a->sa, name, path);
	bw = xcalloc(1, sizeof(*bw));
	bw->jb = jb;
	bw->w.changed = on_box_changed;
	bw->w.arg = bw;
	store_box_watch(jb->b, &bw->w);
	jb->watch = bw;
	const char *su = strcmp(name, "INBOX") == 0 ? "\\Inbox" :
	    folders_special_use(name);
	static const char *const roles[][2] = {
		{ "\\Inbox", "inbox" }, { "\\Sent", "sent" },
		{ "\\Drafts", "drafts" }, { "\\Trash", "trash" },
		{ "\\Junk", "junk" }, { "\\Archive", "archive" },
		{ "\\All", "all" }, { "\\Flagged", "flagged" },
	};
	for (size_t i = 0; su && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(su, roles[i][0]) == 0)
			jb->role = roles[i][1];
	return jb;
}

static void
list_done(void *arg)
{
	struct listing *l = arg;
	struct jacct *a = l->a;
	struct jbox **nb;
	size_t n = 0;
	bool same = true;

	if (l->rc != 0) {
		log_warnx("jmap: %s: cannot list folders", a->root);
		l->n = 0;
	}
	a->prepared = true;
	nb = xcalloc(l->n + 1, sizeof(*nb));
	for (size_t i = 0; i < l->n; i++) {
		ssize_t k = -1;
		struct jbox *jb;
		for (size_t j = 0; j < a->nboxes && k < 0; j++)
			if (a->boxes[j] && strcmp(a->boxes[j]->name,
			    l->names[i]) == 0)
				k = (ssize_t)j;
		if (k >= 0) {
			jb = a->boxes[k];
			a->boxes[k] = NULL;
		} else if ((jb = box_new(a, l->names[i])) == NULL)
			continue;
		same &= k == (ssize_t)n;
		jb->subscribed = strcmp(jb->name, "INBOX") == 0;
		for (size_t s = 0; s < l->nsubs; s++)
			if (strcmp(l->subs[s], jb->name) == 0)
				jb->subscribed = true;
		nb[n++] = jb;
	}
	for (size_t i = 0; i < a->nboxes; i++)
		if (a->boxes[i]) {           /* gone from the tree */
			box_free(a->boxes[i]);
			a->map_stale = true;
		}
	if (n != a->nboxes)
		a->map_stale = true;
	if (!same || n != a->nboxes)
		a->gen++;
	free(a->boxes);
	a->boxes = nb;
	a->nboxes = n;
	folders_list_free(l->names, l->n);
	folders_list_free(l->subs, l->nsubs);
	free(l);
	if (n == 0) {
		refresh_end(a);
		return;
	}
	a->pending = n;
	for (size_t i = 0; i < n; i++)
		store_box_run(a->boxes[i]->b, snap_work, snap_done,
		    a->boxes[i]);
}

static void
refresh_start(struct jacct *a)
{
	struct listing *l = xcalloc(1, sizeof(*l));

	a->running = true;
	l->a = a;
	l->prepare = !a->prepared;
	iopool_submit(a->pool, list_work, list_done, l);
}

void
jacct_refresh(struct jacct *a, void (*done)(void *arg), void *arg)
{
	struct waiter *w = xcalloc(1, sizeof(*w));

	w->done = done;
	w->arg = arg;
	if (a->running) {
		w->next = a->next;
		a->next = w;
		return;
	}
	w->next = a->now;
	a->now = w;
	refresh_start(a);
}

/* --- the id map ---------------------------------------------------------- */

static int
cmp_loc(const void *x, const void *y)
{
	const struct jloc *a = x, *b = y;
	int c = strcmp(a->id, b->id);

	if (c)
		return c;
	return a->box < b->box ? -1 : a->box > b->box;
}

static void
map_build(struct jacct *a)
{
	size_t n = 0, k = 0;

	if (!a->map_stale)
		return;
	for (size_t i = 0; i < a->nboxes; i++)
		n += a->boxes[i]->s.n;
	free(a->loc);
	free(a->uniq);
	free(a->thr);
	a->thr = NULL;
	a->loc = xcalloc(n + 1, sizeof(*a->loc));
	for (size_t i = 0; i < a->nboxes; i++)
		for (size_t j = 0; j < a->boxes[i]->s.n; j++) {
			a->loc[k].id = a->boxes[i]->s.m[j].id;
			a->loc[k].box = i;
			a->loc[k].idx = j;
			k++;
		}
	a->nloc = n;
	qsort(a->loc, n, sizeof(*a->loc), cmp_loc);
	a->uniq = xcalloc(n + 1, sizeof(*a->uniq));
	a->nuniq = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(a->loc[i].id, a->loc[i - 1].id) != 0)
			a->uniq[a->nuniq++] = a->loc[i];
	a->map_stale = false;
}

const struct jloc *
jacct_find(struct jacct *a, const char *id, size_t *n)
{
	size_t lo = 0, hi;

	map_build(a);
	hi = a->nloc;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(a->loc[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*n = 0;
	while (lo + *n < a->nloc && strcmp(a->loc[lo + *n].id, id) == 0)
		(*n)++;
	return *n ? &a->loc[lo] : NULL;
}

const struct jloc *
jacct_all(struct jacct *a, size_t *n)
{
	map_build(a);
	*n = a->nuniq;
	return a->uniq;
}

const struct jsnap_msg *
jacct_msg(const struct jacct *a, const struct jloc *l)
{
	return &a->boxes[l->box]->s.m[l->idx];
}

static int
cmp_thr(const void *x, const void *y, void *arg)
{
	const struct jacct *a = arg;
	const struct jsnap_msg *m = jacct_msg(a, x), *n = jacct_msg(a, y);
	int c = strcmp(m->tid, n->tid);

	if (c)
		return c;
	if (m->received != n->received)
		return m->received < n->received ? -1 : 1;
	/* the same second: in one folder, the order of arrival */
	if (((const struct jloc *)x)->box == ((const struct jloc *)y)->box &&
	    m->uid != n->uid)
		return m->uid < n->uid ? -1 : 1;
	return strcmp(m->id, n->id);
}

const struct jloc *
jacct_thread(struct jacct *a, const char *tid, size_t *n)
{
	size_t lo = 0, hi;

	map_build(a);
	if (a->thr == NULL) {
		a->thr = xcalloc(a->nuniq + 1, sizeof(*a->thr));
		memcpy(a->thr, a->uniq, a->nuniq * sizeof(*a->thr));
		qsort_r(a->thr, a->nuniq, sizeof(*a->thr), cmp_thr, a);
	}
	hi = a->nuniq;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(jacct_msg(a, &a->thr[mid])->tid, tid) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*n = 0;
	while (lo + *n < a->nuniq &&
	    strcmp(jacct_msg(a, &a->thr[lo + *n])->tid, tid) == 0)
		(*n)++;
	return *n ? &a->thr[lo] : NULL;
}

/* --- states -------------------------------------------------------------- */

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

uint64_t
jacct_box_names(const struct jbox *jb)
{
	uint64_t h = 14695981039346656037ull;

	h = fnv(h, jb->name, strlen(jb->name) + 1);
	h = fnv(h, &jb->subscribed, sizeof(jb->subscribed));
	return h & 0xffffffffffffull;
}

/* Every change of a message is a new MODSEQ of its folder, so any
 * change gives a new state; the next UID tells arrivals from changes. */
static char *
state_of(const struct jacct *a, char kind)
{
	struct jstate_ent *e = xcalloc(a->nboxes + 1, sizeof(*e));
	struct buf out;

	for (size_t i = 0; i < a->nboxes; i++) {
		const struct jbox *jb = a->boxes[i];
		(void)str_fmt(e[i].id, sizeof(e[i].id), "%s", jb->s.id);
		e[i].modseq = jb->s.modseq;
		e[i].extra = kind == 'm' ? jacct_box_names(jb) : jb->s.uidnext;
	}
	buf_init(&out);
	jstate_format(kind, e, a->nboxes, &out);
	free(e);
	return buf_steal(&out, NULL);
}

char *
jacct_email_state(const struct jacct *a)
{
	return state_of(a, 'e');
}

char *
jacct_mailbox_state(const struct jacct *a)
{
	return state_of(a, 'm');
}

char *
jacct_thread_state(const struct jacct *a)
{
	return state_of(a, 't');
}

char *
jacct_query_state(const struct jacct *a)
{
	char *st = jacct_email_state(a);

	st[0] = 'q';
	return st;
}

/* --- jobs and watchers --------------------------------------------------- */

struct boxjob {
	bool (*work)(struct mbox *mb, void *arg);
	void (*done)(void *arg);
	void *arg;
};

static void
boxjob_work(struct store_box *b, void *arg)
{
	struct boxjob *j = arg;

	if (j->work(store_box_mbox(b), j->arg))
		store_box_mark_changed(b);
}

static void
boxjob_done(struct store_box *b, void *arg)
{
	struct boxjob *j = arg;

	(void)b;
	j->done(j->arg);
	free(j);
}

void
jacct_box_run(struct jacct *a, size_t i,
    bool (*work)(struct mbox *mb, void *arg), void (*done)(void *arg),
    void *arg)
{
	struct boxjob *j = xcalloc(1, sizeof(*j));

	TERN_ASSERT(i < a->nboxes);
	j->work = work;
	j->done = done;
	j->arg = arg;
	store_box_run(a->boxes[i]->b, boxjob_work, boxjob_done, j);
}

void
jacct_watch(struct jacct *a, struct jacct_watch *w)
{
	TAILQ_INSERT_TAIL(&a->watchers, w, entry);
}

void
jacct_unwatch(struct jacct *a, struct jacct_watch *w)
{
	TAILQ_REMOVE(&a->watchers, w, entry);
}
