/* SPDX-License-Identifier: ISC */
/*
 * store.c - layer 3: accounts, shared open folders, their job queues and
 * change notifications (store.h). Loop thread only, but for the work
 * functions it hands to the I/O pool, which touch nothing here except
 * the box's mbox and its changed flag (the box is theirs alone then).
 * inotify watches new/ and cur/ of every open folder; events are
 * coalesced for 20 ms into one sync job.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/iopool.h"
#include "base/log.h"
#include "base/util.h"
#include "store/folders.h"
#include "store/index.h"
#include "base/buf.h"
#include "store/mailbox.h"
#include "store/quota.h"

#define COALESCE_USEC 20000
/*
 * A folder nobody shows stays in memory this long (its account and
 * index too), so that the next SELECT, a client's reconnect or the next
 * poll of a phone, costs what a second session's does; at most
 * LINGER_MSGS messages and LINGER_BOXES folders in all are kept that way,
 * the oldest go first.
 */
#define LINGER_SECS 300
#define LINGER_MSGS 500000
#define LINGER_BOXES 2000        /* each holds two inotify watches */

struct job {
	struct store_box *box;
	store_work_fn work;
	store_done_fn done;
	void *arg;
	/* on the loop, as the job goes to the pool (a batch closes) */
	void (*on_start)(struct store_box *b, void *arg);
	TAILQ_ENTRY(job) entry;
};

struct append_batch {
	TAILQ_HEAD(, store_append) list;
	size_t n;
};

/* The APPENDs of one MULTIAPPEND, while they are staged. */
struct append_group {
	struct store_append *a;
	size_t n, pending;
	bool failed;
};

struct store_box {
	struct store_account *acct;
	char *name, *path;
	struct mbox *mb;
	const char *rel;          /* path below the root: the index's key */
	bool loaded;              /* the index was asked for the box */
	struct append_batch *batch;   /* staged APPENDs awaiting their job */
	unsigned refs;
	unsigned selected;
	bool busy;
	bool changed;             /* set by the running job */
	bool sync_queued;         /* a sync job is queued or armed */
	bool sync_again;          /* a change came meanwhile: one more */
	bool force_next;          /* the next sync lists, whatever the times */
	bool new_next;            /* the next lists new/ at least */
	struct mbox *snap;        /* a big commit's rows, to write aside */
	struct mbox *snap_writing;   /* those being written */
	bool snap_inflight;       /* being written (atomic: workers read it) */
	bool snap_failed;         /* that write failed (atomic) */
	TAILQ_HEAD(, job) jobs;
	TAILQ_HEAD(, store_watch) watchers;
	struct event *timer;
	int wd_new, wd_cur;
	TAILQ_ENTRY(store_box) entry;
	bool lingering;
	size_t linger_n;          /* its messages when it began to linger */
	struct timeval idle_since;
	TAILQ_ENTRY(store_box) lentry;
};

struct store_account {
	struct store *s;
	char *user, *root;
	struct tindex *idx;       /* its own lock; used from workers only */
	unsigned refs;
	TAILQ_HEAD(, store_box) boxes;
	TAILQ_ENTRY(store_account) entry;
};

struct store {
	struct event_base *base;
	struct iopool *pool;
	TAILQ_HEAD(, store_account) accounts;
	int ifd;
	struct event *iev;
	bool pool_closing;
	TAILQ_HEAD(, store_box) linger;   /* oldest first */
	size_t linger_msgs, linger_boxes;
	struct event *linger_ev;
};

static void on_inotify(evutil_socket_t fd, short what, void *arg);
static void on_linger(evutil_socket_t fd, short what, void *arg);
static void box_free(struct store_box *b);

struct store *
store_new(struct event_base *base, struct iopool *pool)
{
	struct store *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->pool = pool;
	TAILQ_INIT(&s->accounts);
	TAILQ_INIT(&s->linger);
	s->linger_ev = evtimer_new(base, on_linger, s);
	s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ifd >= 0) {
		s->iev = event_new(base, s->ifd, EV_READ | EV_PERSIST,
		    on_inotify, s);
		event_add(s->iev, NULL);
	} else
		log_warn("store: no inotify; changes by other programs are "
		    "seen at the next command");
	return s;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	while (!TAILQ_EMPTY(&s->linger))
		box_free(TAILQ_FIRST(&s->linger));
	event_free(s->linger_ev);
	if (s->iev)
		event_free(s->iev);
	if (s->ifd >= 0)
		close(s->ifd);
	free(s);
}

void
store_pool_closing(struct store *s)
{
	s->pool_closing = true;
}

struct iopool *
store_pool(const struct store *s)
{
	return s->pool;
}

struct store *
store_of(const struct store_account *a)
{
	return a->s;
}

struct store_account *
store_account_open(struct store *s, const char *user, const char *root)
{
	struct store_account *a;

	TAILQ_FOREACH(a, &s->accounts, entry)
		if (strcmp(a->root, root) == 0) {
			a->refs++;
			return a;
		}
	a = xcalloc(1, sizeof(*a));
	a->s = s;
	a->user = xstrdup(user);
	a->root = xstrdup(root);
	a->idx = tindex_new(root);
	a->refs = 1;
	TAILQ_INIT(&a->boxes);
	TAILQ_INSERT_TAIL(&s->accounts, a, entry);
	return a;
}

static void
index_free_work(void *arg)
{
	tindex_free(arg);
}

void
store_account_close(struct store_account *a)
{
	if (a == NULL || --a->refs > 0)
		return;
	TAILQ_REMOVE(&a->s->accounts, a, entry);
	/* closing may checkpoint the WAL: not on the loop, while it runs */
	if (a->s->pool_closing)
		tindex_free(a->idx);
	else
		iopool_submit(a->s->pool, index_free_work, NULL, a->idx);
	free(a->user);
	free(a->root);
	free(a);
}

const char *
store_account_root(const struct store_account *a)
{
	return a->root;
}

struct tindex *
store_account_index(const struct store_account *a)
{
	return a->idx;
}

const char *
store_rel(const struct store_account *a, const char *path)
{
	size_t n = strlen(a->root);

	if (strncmp(path, a->root, n) == 0 && (path[n] == '\0' ||
	    path[n] == '/'))
		return path[n] ? path + n + 1 : path + n;
	return path;
}

static void on_sync_timer(evutil_socket_t fd, short what, void *arg);
static void sync_soon(struct store_box *b, bool full);

/*
 * A lingering box is wanted again (a session, or a job: a delivery's
 * sync, the full-text index): out of the list whose boxes may be freed
 * at any time. It goes back when it is idle again.
 */
static void
linger_leave(struct store_box *b)
{
	struct store *s = b->acct->s;

	if (b->lingering) {
		TAILQ_REMOVE(&s->linger, b, lentry);
		s->linger_msgs -= b->linger_n;
		s->linger_boxes--;
		b->lingering = false;
	}
}

/* On the worker, in the box's job: a message's keys were read from its
 * file (mbox_sort_keys): its thread id, kept in the index. */
static void
give_thread(void *arg, struct mbox *mb, size_t i)
{
	struct tern_err err;

	memset(&err, 0, sizeof(err));
	if (tindex_threads_give(arg, mb, &i, 1, &err) != 0)
		log_warnx("store: %s", err.text);
}

struct store_box *
store_box_open(struct store_account *a, const char *name, const char *path)
{
	struct store_box *b;

	TAILQ_FOREACH(b, &a->boxes, entry)
		if (strcmp(b->path, path) == 0) {
			linger_leave(b);
			b->refs++;
			return b;
		}
	b = xcalloc(1, sizeof(*b));
	b->acct = a;
	a->refs++;
	b->name = xstrdup(name);
	b->path = xstrdup(path);
	b->rel = store_rel(a, b->path);
	b->mb = mbox_new(path);
	b->mb->keys_read = give_thread;
	b->mb->keys_arg = a->idx;
	b->refs = 1;
	b->wd_new = b->wd_cur = -1;
	TAILQ_INIT(&b->jobs);
	TAILQ_INIT(&b->watchers);
	b->timer = evtimer_new(a->s->base, on_sync_timer, b);
	TAILQ_INSERT_TAIL(&a->boxes, b, entry);
	if (a->s->ifd >= 0) {
		char *d = xasprintf("%s/new", path);
		uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM |
		    IN_MOVED_TO | IN_ONLYDIR;
		b->wd_new = inotify_add_watch(a->s->ifd, d, mask);
		free(d);
		d = xasprintf("%s/cur", path);
		b->wd_cur = inotify_add_watch(a->s->ifd, d, mask);
		free(d);
	}
	return b;
}

static void
box_free(struct store_box *b)
{
	struct store *s = b->acct->s;

	linger_leave(b);
	if (s->ifd >= 0) {
		/* the same directory may be watched for another box: no */
		if (b->wd_new >= 0)
			(void)inotify_rm_watch(s->ifd, b->wd_new);
		if (b->wd_cur >= 0)
			(void)inotify_rm_watch(s->ifd, b->wd_cur);
	}
	TAILQ_REMOVE(&b->acct->boxes, b, entry);
	event_free(b->timer);
	mbox_free(b->mb);
	store_account_close(b->acct);
	free(b->name);
	free(b->path);
	free(b);
}

/* Nobody holds b and it has no job: it lingers, or goes. */
static void
box_idle(struct store_box *b)
{
	struct store *s = b->acct->s;

	if (s->pool_closing || !b->mb->synced || b->mb->n > LINGER_MSGS) {
		box_free(b);
		return;
	}
	if (!b->lingering) {
		b->lingering = true;
		event_base_gettimeofday_cached(s->base, &b->idle_since);
		TAILQ_INSERT_TAIL(&s->linger, b, lentry);
		b->linger_n = b->mb->n;
		s->linger_msgs += b->linger_n;
		s->linger_boxes++;
	}
	while ((s->linger_msgs > LINGER_MSGS ||
	    s->linger_boxes > LINGER_BOXES) && !TAILQ_EMPTY(&s->linger))
		box_free(TAILQ_FIRST(&s->linger));
	if (!evtimer_pending(s->linger_ev, NULL)) {
		struct timeval tv = { LINGER_SECS, 0 };
		evtimer_add(s->linger_ev, &tv);
	}
}

static void
on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	struct timeval now;
	struct store_box *b;

	event_base_gettimeofday_cached(s->base, &now);
	while ((b = TAILQ_FIRST(&s->linger)) != NULL &&
	    now.tv_sec - b->idle_since.tv_sec >= LINGER_SECS)
		box_free(b);
	if ((b = TAILQ_FIRST(&s->linger)) != NULL) {
		struct timeval tv = { LINGER_SECS - (now.tv_sec -
		    b->idle_since.tv_sec), 0 };
		evtimer_add(s->linger_ev, &tv);
	}
}

void
store_box_close(struct store_box *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	if (b->busy || !TAILQ_EMPTY(&b->jobs))
		return;     /* the last job's completion sees to it */
	box_idle(b);
}

struct mbox *
store_box_mbox(struct store_box *b)
{
	return b->mb;
}

const char *
store_box_name(const struct store_box *b)
{
	return b->name;
}

struct store_account *
store_box_account(const struct store_box *b)
{
	return b->acct;
}

void
store_box_mark_changed(struct store_box *b)
{
	b->changed = true;
}

static void box_pump(struct store_box *b);

#define BIG_COMMIT 2000

/* the commit job_work does after every work function is the job */
static void
commit_work(struct store_box *b, void *arg)
{
	(void)b;
	(void)arg;
}

/*
 * Every job of a box: the index fills the box before its first sync and
 * takes its changes after each job (one transaction per job).
 */
static void
job_work(void *arg)
{
	struct job *j = arg;
	struct store_box *b = j->box;
	struct tern_err err;

	memset(&err, 0, sizeof(err));
	if (!b->loaded) {
		b->loaded = true;
		if (!b->mb->synced && tindex_load_box(b->acct->idx, b->rel,
		    b->mb, &err) != 0)
			log_warnx("store: %s", err.text);
	}
	j->work(b, j->arg);
	/*
	 * While a big commit is being written aside, the rows of later jobs
	 * wait for the commit job that follows it (written in order).
	 */
	if (__atomic_load_n(&b->snap_inflight, __ATOMIC_ACQUIRE))
		return;
	if (__atomic_exchange_n(&b->snap_failed, false, __ATOMIC_ACQ_REL))
		b->mb->index_stale = true;     /* all of it again */
	/*
	 * Thousands of rows (a folder the index has not seen, a FETCH that
	 * filled the cache): the answer goes first, and the rows, copied,
	 * are written beside the box's queue, so that the next session's
	 * SELECT does not wait for them. A crash in between costs nothing
	 * but fresh MODSEQs for them.
	 */
	if (j->work != commit_work && (b->mb->modseq - b->mb->committed >
	    BIG_COMMIT || b->mb->cache_pending > BIG_COMMIT)) {
		b->snap = mbox_snapshot(b->mb);
		return;
	}
	memset(&err, 0, sizeof(err));
	if (tindex_commit_box(b->acct->idx, b->rel, b->mb, &err) != 0)
		log_warnx("store: %s", err.text);
}

#define FTS_IDLE_CHUNK 200   /* messages a job of its own indexes */

/*
 * The full-text index catches up with a folder its user searched,
 * FTS_IDLE_CHUNK messages a job, while the folder has nothing else to
 * do (a session's command waits at most for one chunk).
 */
static void
fts_work(struct store_box *b, void *arg)
{
	struct mbox *mb = b->mb;
	struct tern_err err;
	size_t n = 0, done = 0;

	(void)arg;
	size_t *idx = xcalloc(mb->n + 1, sizeof(size_t));
	for (size_t i = 0; i < mb->n; i++)
		if (!mb->m[i].in_fts)
			idx[n++] = i;
	memset(&err, 0, sizeof(err));
	if (n && tindex_fts_update(b->acct->idx, mb, idx, n, FTS_IDLE_CHUNK,
	    &done, &err) != 0) {
		log_warnx("store: %s", err.text);
		done = 0;
	}
	if (done == 0 || done == n)
		mb->fts_wanted = false;
	free(idx);
}

/* A big commit, written beside the box's queue (snap_start). */
static void
snap_work(void *arg)
{
	struct store_box *b = arg;
	struct tern_err err;

	memset(&err, 0, sizeof(err));
	if (tindex_commit_box(b->acct->idx, b->rel, b->snap_writing,
	    &err) != 0) {
		log_warnx("store: %s", err.text);
		__atomic_store_n(&b->snap_failed, true, __ATOMIC_RELEASE);
	}
}

static void
snap_done(void *arg)
{
	struct store_box *b = arg;

	mbox_free(b->snap_writing);
	b->snap_writing = NULL;
	__atomic_store_n(&b->snap_inflight, false, __ATOMIC_RELEASE);
	/* what the box's jobs changed meanwhile, in order after it */
	if (!b->acct->s->pool_closing)
		store_box_run(b, commit_work, NULL, NULL);
	store_box_close(b);
}

static void
snap_start(struct store_box *b)
{
	b->snap_writing = b->snap;
	b->snap = NULL;
	if (b->acct->s->pool_closing) {
		/* no pool to give it to: written here, at shutdown */
		b->refs++;
		snap_work(b);
		b->refs--;
		mbox_free(b->snap_writing);
		b->snap_writing = NULL;
		return;
	}
	b->refs++;                  /* until snap_done */
	__atomic_store_n(&b->snap_inflight, true, __ATOMIC_RELEASE);
	iopool_submit(b->acct->s->pool, snap_work, snap_done, b);
}

static void
job_done(void *arg)
{
	struct job *j = arg;
	struct store_box *b = j->box;
	bool changed = b->changed;
	struct store_watch *w, *next;

	b->busy = false;
	b->changed = false;
	if (b->snap)
		snap_start(b);
	b->refs++;        /* callbacks may close the box */
	if (j->done)
		j->done(b, j->arg);
	free(j);
	if (changed)
		for (w = TAILQ_FIRST(&b->watchers); w; w = next) {
			next = TAILQ_NEXT(w, entry);
			w->changed(w->arg);
		}
	b->refs--;
	if (TAILQ_EMPTY(&b->jobs) && b->mb->fts_wanted &&
	    !b->acct->s->pool_closing) {
		/* even with no session left: its user searched here */
		store_box_run(b, fts_work, NULL, NULL);   /* pumps */
		return;
	}
	if (b->refs == 0 && TAILQ_EMPTY(&b->jobs)) {
		box_idle(b);
		return;
	}
	box_pump(b);
}

static void
box_pump(struct store_box *b)
{
	struct job *j;

	if (b->busy || (j = TAILQ_FIRST(&b->jobs)) == NULL)
		return;
	TAILQ_REMOVE(&b->jobs, j, entry);
	b->busy = true;
	if (j->on_start)
		j->on_start(b, j->arg);
	iopool_submit(b->acct->s->pool, job_work, job_done, j);
}

void
store_box_run(struct store_box *b, store_work_fn work, store_done_fn done,
    void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->box = b;
	j->work = work;
	j->done = done;
	j->arg = arg;
	linger_leave(b);      /* never freed with a job queued or running */
	TAILQ_INSERT_TAIL(&b->jobs, j, entry);
	box_pump(b);
}

void
store_box_watch(struct store_box *b, struct store_watch *w)
{
	TAILQ_INSERT_TAIL(&b->watchers, w, entry);
}

void
store_box_unwatch(struct store_box *b, struct store_watch *w)
{
	TAILQ_REMOVE(&b->watchers, w, entry);
}

void
store_box_select(struct store_box *b, bool on)
{
	if (on)
		b->selected++;
	else if (b->selected > 0)
		b->selected--;
}

/* what a timed sync is to list (sync_work's argument) */
static char SYNC_FULL, SYNC_NEW;

static void
sync_work(struct store_box *b, void *arg)
{
	struct tern_err err;
	bool changed = false;

	memset(&err, 0, sizeof(err));
	if (arg == &SYNC_FULL)
		b->mb->force_sync = true;   /* inotify saw cur/ change */
	else if (arg == &SYNC_NEW)
		b->mb->list_new = true;     /* inotify saw new/ change */
	if (mbox_sync(b->mb, b->acct->root, b->selected > 0, &changed,
	    &err) != 0)
		log_warnx("store: %s: %s", b->path, err.text);
	if (changed)
		store_box_mark_changed(b);
}

static void
sync_done(struct store_box *b, void *arg)
{
	(void)arg;
	b->sync_queued = false;
	if (b->sync_again) {
		/* what came meanwhile (force_next, new_next say what) */
		struct timeval tv = { 0, COALESCE_USEC };
		b->sync_again = false;
		b->sync_queued = true;
		evtimer_add(b->timer, &tv);
	}
}

static void
on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
	struct store_box *b = arg;
	void *mode = b->force_next ? &SYNC_FULL : b->new_next ? &SYNC_NEW :
	    NULL;

	b->force_next = b->new_next = false;
	store_box_run(b, sync_work, sync_done, mode);
}

/*
 * inotify saw a change (maybe ours, maybe another program's): a listing
 * soon, even if the directories' times say nothing changed (a change
 * within the same tick as one of ours). Changes that come while a sync
 * is queued or running get one more.
 */
void
store_box_sync_soon(struct store_box *b)
{
	sync_soon(b, true);
}

/*
 * full: cur/ (or anything) changed, everything is listed; else only new/
 * did, and new/ is listed even if its time looks the same.
 */
static void
sync_soon(struct store_box *b, bool full)
{
	struct timeval tv = { 0, COALESCE_USEC };

	if (full)
		b->force_next = true;
	else
		b->new_next = true;
	if (b->sync_queued) {
		b->sync_again = true;
		return;
	}
	b->sync_queued = true;
	evtimer_add(b->timer, &tv);
}

void
store_notify_path(struct store *s, const char *path)
{
	struct store_account *a;
	struct store_box *b;

	TAILQ_FOREACH(a, &s->accounts, entry)
		TAILQ_FOREACH(b, &a->boxes, entry)
			if (strcmp(b->path, path) == 0 && !b->sync_queued) {
				b->sync_queued = true;
				store_box_run(b, sync_work, sync_done, NULL);
			}
}

static void
on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(fd, ev, sizeof(ev))) > 0) {
		for (char *p = ev; p < ev + n;) {
			const struct inotify_event *ie = (const void *)p;
			struct store_account *a;
			struct store_box *b;
			TAILQ_FOREACH(a, &s->accounts, entry)
				TAILQ_FOREACH(b, &a->boxes, entry)
					if (ie->mask & IN_Q_OVERFLOW) {
						mbox_own_reset(b->mb);
						sync_soon(b, true);
					} else if (ie->wd == b->wd_cur &&
					    !mbox_own_event(b->mb, true))
						sync_soon(b, true);
					else if (ie->wd == b->wd_new &&
					    !mbox_own_event(b->mb, false))
						sync_soon(b, false);
			p += sizeof(*ie) + ie->len;
		}
	}
}

/* --- ternctl index rebuild ---------------------------------------------- */

struct rebuild {
	struct store_account *a;
	char **names;
	size_t n, left;
	size_t messages;          /* added to by workers: atomically */
	int rc;
	struct tern_err err;
	store_rebuild_done done;
	void *arg;
};

static void
rebuild_finish(struct rebuild *r)
{
	r->done(r->arg, r->rc, r->rc == 0 ? r->n : 0,
	    __atomic_load_n(&r->messages, __ATOMIC_RELAXED), r->err.text);
	folders_list_free(r->names, r->n);
	store_account_close(r->a);
	free(r);
}

static void
rebuild_box_work(struct store_box *b, void *arg)
{
	struct rebuild *r = arg;
	struct tern_err err;
	bool changed = false;

	memset(&err, 0, sizeof(err));
	/* job_work commits every row after this, whatever the index had */
	b->mb->index_stale = true;
	if (mbox_sync(b->mb, b->acct->root, b->selected > 0, &changed,
	    &err) != 0)
		log_warnx("store: rebuild: %s: %s", b->path, err.text);
	else
		__atomic_add_fetch(&r->messages, b->mb->n, __ATOMIC_RELAXED);
	if (changed)
		store_box_mark_changed(b);
}

static void
rebuild_box_done(struct store_box *b, void *arg)
{
	struct rebuild *r = arg;

	store_box_close(b);
	if (--r->left == 0)
		rebuild_finish(r);
}

static void
rebuild_reset_work(void *arg)
{
	struct rebuild *r = arg;

	if (tindex_reset(r->a->idx, &r->err) != 0 ||
	    folders_list(r->a->root, &r->names, &r->n) != 0) {
		if (r->err.text[0] == '\0')
			tern_err_set(&r->err, 451, "4.3.0", "cannot list %s",
			    r->a->root);
		r->rc = -1;
	}
}

static void
rebuild_reset_done(void *arg)
{
	struct rebuild *r = arg;

	if (r->rc != 0) {
		rebuild_finish(r);
		return;
	}
	r->left = r->n + 1;    /* one more, so done waits for the loop */
	for (size_t i = 0; i < r->n; i++) {
		char path[4096];
		if (folders_path(r->a->root, r->names[i], path,
		    sizeof(path)) != 0) {
			r->left--;
			continue;
		}
		struct store_box *b = store_box_open(r->a, r->names[i], path);
		store_box_run(b, rebuild_box_work, rebuild_box_done, r);
	}
	if (--r->left == 0)
		rebuild_finish(r);
}

void
store_rebuild(struct store *s, const char *user, const char *root,
    store_rebuild_done done, void *arg)
{
	struct rebuild *r = xcalloc(1, sizeof(*r));

	r->a = store_account_open(s, user, root);
	r->done = done;
	r->arg = arg;
	iopool_submit(s->pool, rebuild_reset_work, rebuild_reset_done, r);
}

void
store_forget_path(struct store *s, const char *path)
{
	struct store_box *b, *next;
	size_t l = strlen(path);

	for (b = TAILQ_FIRST(&s->linger); b; b = next) {
		next = TAILQ_NEXT(b, lentry);
		if (strncmp(b->path, path, l) == 0 && (b->path[l] == '\0' ||
		    b->path[l] == '.'))
			box_free(b);
	}
}

/* --- APPEND, batched ----------------------------------------------------- */

static void
stage_work(void *arg)
{
	struct store_append *a = arg;
	struct buf lf;
	const char *data = a->data;
	size_t len = a->len;

	buf_init(&lf);
	if (a->crlf) {
		/* Maildir files have LF line ends */
		buf_reserve(&lf, a->len + 1);
		for (size_t i = 0; i < a->len; i++)
			if (!(a->data[i] == '\r' && i + 1 < a->len &&
			    a->data[i + 1] == '\n'))
				buf_append_char(&lf, a->data[i]);
		data = lf.data ? lf.data : "";
		len = lf.len;
	}
	if (quota_check(a->box->acct->root, a->quota_bytes, a->quota_messages,
	    len, &a->err) != 0)
		a->rc = -1;
	else if (mbox_stage(a->box->path, data, len, a->internaldate,
	    &a->base, a->tmp, sizeof(a->tmp), &a->err) != 0) {
		a->rc = -1;
		a->nobox = access(a->box->path, F_OK) != 0;
	} else {
		quota_add(a->box->acct->root, (int64_t)len, 1);
		a->staged = len;
	}
	buf_clear(&lf);
}

static void
batch_start(struct store_box *b, void *arg)
{
	/* appends staged from now on go into a new batch */
	if (b->batch == arg)
		b->batch = NULL;
}

/*
 * A MULTIAPPEND of which one message could not be committed (a rename
 * that failed): the others are removed again, their UIDs never told.
 */
static void
group_undo(struct store_box *b, struct append_batch *bt)
{
	struct store_append *a, *f;
	bool removed = false;

	TAILQ_FOREACH(a, &bt->list, entry) {
		struct append_group *g = a->group;
		if (g == NULL || a->discard || a->rc == 0)
			continue;
		for (size_t k = 0; k < g->n; k++) {
			f = &g->a[k];
			if (f->rc != 0)
				continue;
			ssize_t x = mbox_find_uid(b->mb, f->uid);
			struct tern_err e;
			memset(&e, 0, sizeof(e));
			if (x >= 0 && mbox_remove(b->mb, (size_t)x, &e) == 0)
				removed = true;
			f->rc = -1;
			f->uid = 0;
			f->err = a->err;
		}
	}
	if (removed) {
		bool changed;
		struct tern_err e;
		memset(&e, 0, sizeof(e));
		(void)mbox_sync(b->mb, b->acct->root, false, &changed, &e);
	}
}

static void
batch_work(struct store_box *b, void *arg)
{
	struct append_batch *bt = arg;
	struct mbox *mb = b->mb;
	struct mbox_staged *st = xcalloc(bt->n + 1, sizeof(*st));
	struct store_append *a;
	struct tern_err err;
	size_t i = 0;
	bool kwsave = false;

	memset(&err, 0, sizeof(err));
	/* keywords by name into this folder's letters (after a sync) */
	bool changed = false;
	(void)mbox_sync(mb, b->acct->root, false, &changed, &err);
	/* a failed MULTIAPPEND's staged files: gone, uncounted */
	TAILQ_FOREACH(a, &bt->list, entry)
		if (a->discard) {
			mbox_unstage(a->tmp);
			quota_add(b->acct->root, -(int64_t)a->staged, -1);
		}
	TAILQ_FOREACH(a, &bt->list, entry) {
		if (a->discard)
			continue;
		st[i].tmp = a->tmp;
		st[i].base = a->base;
		st[i].flags = a->flags;
		st[i].internaldate = a->internaldate;
		for (size_t k = 0; k < a->nkw; k++) {
			int x = keywords_add(&mb->kw, a->kw[k]);
			if (x >= 0) {
				st[i].kw |= 1u << x;
				kwsave = true;
			}
		}
		i++;
	}
	if (kwsave)
		(void)mbox_save_keywords(mb, &err);
	memset(&err, 0, sizeof(err));
	size_t nst = i;
	if (nst)
		(void)mbox_commit_staged(mb, b->acct->root, st, nst, &err);
	i = 0;
	TAILQ_FOREACH(a, &bt->list, entry) {
		a->uidvalidity = mb->uidvalidity;
		if (a->discard)
			continue;    /* rc and err were set when it failed */
		a->rc = st[i].rc;
		if (a->rc != 0)
			a->err = st[i].err.text[0] ? st[i].err : err;
		a->uid = st[i].uid;
		free(st[i].fname);
		i++;
	}
	free(st);
	group_undo(b, bt);
	store_box_mark_changed(b);
}

static void
batch_done(struct store_box *b, void *arg)
{
	struct append_batch *bt = arg;
	struct store_append *a;

	(void)b;
	/* a MULTIAPPEND's group goes after its last member is told (the
	 * members may be freed by their done) */
	struct append_group **groups = xcalloc(bt->n + 1, sizeof(*groups));
	size_t ng = 0;
	TAILQ_FOREACH(a, &bt->list, entry)
		if (a->group && a == &a->group->a[a->group->n - 1])
			groups[ng++] = a->group;
	while ((a = TAILQ_FIRST(&bt->list)) != NULL) {
		TAILQ_REMOVE(&bt->list, a, entry);
		free(a->base);
		a->base = NULL;
		a->done(a->arg);
	}
	for (size_t k = 0; k < ng; k++)
		free(groups[k]);
	free(groups);
	free(bt);
}

static void batch_add(struct store_box *b, struct store_append *a);

static void
stage_done(void *arg)
{
	struct store_append *a = arg;
	struct store_box *b = a->box;
	struct append_group *g = a->group;

	if (g) {
		/* all of a MULTIAPPEND staged: into the batch together */
		if (a->rc != 0 && !g->failed) {
			g->failed = true;
			for (size_t k = 0; k < g->n; k++)
				if (&g->a[k] != a) {
					g->a[k].err = a->err;
					g->a[k].nobox = a->nobox;
				}
		}
		if (--g->pending > 0)
			return;
		bool failed = g->failed;
		for (size_t k = 0; k < g->n; k++) {
			struct store_append *x = &g->a[k];
			if (failed && x->rc == 0) {
				/* staged: the batch's job removes it */
				x->rc = -1;
				x->discard = true;
			}
			if (x->rc != 0 && !x->discard) {
				free(x->base);
				x->base = NULL;
			}
		}
		for (size_t k = 0; k < g->n; k++) {
			g->a[k].group = failed ? NULL : g;
			if (g->a[k].discard || !failed)
				batch_add(b, &g->a[k]);
		}
		if (failed) {
			for (size_t k = 0; k < g->n; k++)
				if (!g->a[k].discard)
					g->a[k].done(g->a[k].arg);
		}
		if (failed)
			free(g);
		box_pump(b);
		return;
	}
	if (a->rc != 0) {
		free(a->base);
		a->base = NULL;
		a->done(a->arg);
		return;
	}
	batch_add(b, a);
	box_pump(b);
}

static void
batch_add(struct store_box *b, struct store_append *a)
{
	if (b->batch == NULL) {
		b->batch = xcalloc(1, sizeof(*b->batch));
		TAILQ_INIT(&b->batch->list);
		struct job *j = xcalloc(1, sizeof(*j));
		j->box = b;
		j->work = batch_work;
		j->done = batch_done;
		j->arg = b->batch;
		j->on_start = batch_start;
		TAILQ_INSERT_TAIL(&b->jobs, j, entry);
	}
	TAILQ_INSERT_TAIL(&b->batch->list, a, entry);
	b->batch->n++;
}

static void
append_init(struct store_box *b, struct store_append *a)
{
	a->box = b;
	a->rc = 0;
	a->nobox = false;
	a->base = NULL;
	a->staged = 0;
	a->group = NULL;
	a->discard = false;
	memset(&a->err, 0, sizeof(a->err));
}

void
store_box_append(struct store_box *b, struct store_append *a)
{
	append_init(b, a);
	iopool_submit(b->acct->s->pool, stage_work, stage_done, a);
}

void
store_box_append_group(struct store_box *b, struct store_append *a,
    size_t n)
{
	if (n == 1) {
		store_box_append(b, a);
		return;
	}
	struct append_group *g = xcalloc(1, sizeof(*g));
	g->a = a;
	g->n = g->pending = n;
	for (size_t k = 0; k < n; k++) {
		append_init(b, &a[k]);
		a[k].group = g;
	}
	for (size_t k = 0; k < n; k++)
		iopool_submit(b->acct->s->pool, stage_work, stage_done, &a[k]);
}
