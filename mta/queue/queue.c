/* SPDX-License-Identifier: ISC */
/*
 * queue.c - layer 2: the spool (queue.h). The commit protocol, in the
 * order that makes a crash at any instant safe:
 *
 *   1. open spool/tmp/<id> O_CREAT|O_EXCL, write envelope + message,
 *      every write checked;
 *   2. fsync the file, check close() (late errors on network filesystems);
 *   3. rename to spool/queue/<id> with RENAME_NOREPLACE;
 *   4. fsync spool/queue/ (shared between concurrent commits: dirsync.c);
 *   5. only then, on the loop thread, the session may send 250.
 *
 * A crash before 4 leaves a file the client never saw acknowledged: either
 * in tmp/ (deleted at start) or in queue/ (delivered: at-least-once). The
 * envelope's "end" line marks a complete header; the size field the body.
 * Below min_free bytes of free space new mail gets 452 4.3.1 (OpenSMTPD's
 * MINSPACE idea), ENOSPC/EDQUOT too; nothing already queued is touched.
 */
#include "queue/queue.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/dirsync.h"
#include "base/fdcopy.h"
#include "base/iopool.h"
#include "base/log.h"
#include "mail/dkim_sign.h"
#include "mail/message.h"

struct queue {
	char *dir;               /* spool */
	char *tmp_dir, *queue_dir, *corrupt_dir, *pickup_dir;
	pthread_mutex_t id_lock; /* ids are made on workers too (pickup) */
	struct dirsync *queue_sync;
	struct iopool *pool;
	uint64_t min_free;
	uint64_t last_id;
	queue_on_commit_fn on_commit;
	void *on_commit_arg;
	struct queue_direct direct;
};

struct queue_commit {
	struct queue *q;
	struct envelope *env;
	struct buf *body;
	struct buf head;         /* serialized envelope */
	queue_commit_cb cb;
	void *cb_arg;
	struct tern_err err;
	int rc;
	void *plan;              /* the fast path's, or NULL */
	bool all_done;           /* it delivered everything: no file */
	struct queue_spill *spill; /* the message's rest, or NULL */
};

struct queue_spill {
	struct queue *q;
	char path[4096];
	int fd;                  /* -1 until the first write */
	uint64_t size;           /* octets handed to it */
	int err;                 /* errno of the first failed write, or 0 */
	bool busy;               /* a job in flight */
	bool dead;               /* freed while busy: the job's end frees it */
	/* the job in flight */
	struct buf *data;
	size_t read_max;
	queue_spill_feed_fn feed;
	void *feed_arg;
	void (*feed_free)(void *);
	queue_spill_cb cb;
	void (*read_cb)(void *arg, struct buf *data);
	void *cb_arg;
};

static int
mkdir_p1(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

struct queue *
queue_open(const char *spool_dir, struct iopool *pool, uint64_t min_free,
    char *err, size_t errsz)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	int fd;

	q->dir = xstrdup(spool_dir);
	q->tmp_dir = xasprintf("%s/tmp", spool_dir);
	q->queue_dir = xasprintf("%s/queue", spool_dir);
	q->corrupt_dir = xasprintf("%s/corrupt", spool_dir);
	q->pickup_dir = xasprintf("%s/pickup", spool_dir);
	pthread_mutex_init(&q->id_lock, NULL);
	q->pool = pool;
	q->min_free = min_free;
	/*
	 * spool/ may be traversed by anyone (0711) so local users can reach
	 * pickup/, where anyone may drop a file but only ternd may list
	 * (01733: sticky like /tmp, nobody removes others' files; droppers
	 * make their rename durable with syncfs(), see sendmail.c). The
	 * queue itself stays private (0700). What is taken from pickup is
	 * opened without following links and must be a regular file with
	 * one link.
	 */
	if (mkdir_p1(q->dir) != 0 || chmod(q->dir, 0711) != 0 ||
	    mkdir_p1(q->tmp_dir) != 0 || mkdir_p1(q->queue_dir) != 0 ||
	    mkdir_p1(q->corrupt_dir) != 0 || mkdir_p1(q->pickup_dir) != 0 ||
	    chmod(q->pickup_dir, 01733) != 0) {
		(void)snprintf(err, errsz, "cannot create spool %s: %s",
		    spool_dir, strerror(errno));
		queue_close(q);
		return NULL;
	}
	fd = open(q->queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		(void)snprintf(err, errsz, "cannot open %s: %s", q->queue_dir,
		    strerror(errno));
		queue_close(q);
		return NULL;
	}
	q->queue_sync = dirsync_new(fd);
	return q;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	dirsync_free(q->queue_sync);
	free(q->dir);
	free(q->tmp_dir);
	free(q->queue_dir);
	free(q->corrupt_dir);
	free(q->pickup_dir);
	pthread_mutex_destroy(&q->id_lock);
	free(q);
}

void
queue_set_on_commit(struct queue *q, queue_on_commit_fn fn, void *arg)
{
	q->on_commit = fn;
	q->on_commit_arg = arg;
}

void
queue_new_id(struct queue *q, char id[ENVELOPE_ID_LEN + 1])
{
	struct timeval tv;
	uint64_t v;

	gettimeofday(&tv, NULL);
	/* microseconds since the epoch, 12 bits of room for a sequence */
	v = ((uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec) << 12;
	pthread_mutex_lock(&q->id_lock);
	if (v <= q->last_id)
		v = q->last_id + 1;
	q->last_id = v;
	pthread_mutex_unlock(&q->id_lock);
	(void)snprintf(id, ENVELOPE_ID_LEN + 1, "%016llx", (unsigned long long)v);
}

/* errno of a failed disk operation -> the reply the client gets */
static void
queue_errno(struct tern_err *err, const char *what, int e)
{
	if (e == ENOSPC || e == EDQUOT)
		tern_err_set(err, 452, "4.3.1", "Insufficient system storage");
	else
		tern_err_set(err, 451, "4.3.0",
		    "Local error in processing (%s: %s)", what, strerror(e));
}

static int
write_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Writes path durably (steps 1-2 above) under dir_tmp, then renames it to
 * final and syncs the final directory. The temp file is removed on
 * failure. copy_len octets of copy_fd follow the iovecs (copy_fd -1: none).
 */
static int
durable_create(struct queue *q, const char *tmp, const char *final,
    struct iovec *iov, int iovcnt, int copy_fd, uint64_t copy_len,
    bool noreplace, struct tern_err *err)
{
	int fd, e;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		queue_errno(err, "create", errno);
		return -1;
	}
	dirsync_begin(q->queue_sync);
	if (write_all(fd, iov, iovcnt) != 0 || (copy_fd >= 0 &&
	    fd_copy(fd, copy_fd, 0, copy_len) != 0) ||
	    dirsync_fsync_file(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		dirsync_abandon(q->queue_sync);
		queue_errno(err, "write", e);
		return -1;
	}
	if (close(fd) != 0) {
		e = errno;
		unlink(tmp);
		dirsync_abandon(q->queue_sync);
		queue_errno(err, "close", e);
		return -1;
	}
	if ((noreplace ? renameat2(AT_FDCWD, tmp, AT_FDCWD, final,
	    RENAME_NOREPLACE) : rename(tmp, final)) != 0) {
		e = errno;
		unlink(tmp);
		dirsync_abandon(q->queue_sync);
		queue_errno(err, "rename", e);
		return -1;
	}
	if (dirsync_after_rename(q->queue_sync) != 0) {
		/*
		 * The file may or may not survive a crash; do not ack it. It
		 * stays queued and will be delivered (at-least-once).
		 */
		queue_errno(err, "fsync dir", errno);
		return -1;
	}
	return 0;
}

static bool
space_ok(struct queue *q, uint64_t need)
{
	struct statvfs sv;

	if (q->min_free == 0 || statvfs(q->dir, &sv) != 0)
		return true;
	return (uint64_t)sv.f_bavail * sv.f_frsize >= q->min_free + need &&
	    (sv.f_files == 0 || sv.f_favail > 16);
}

static void commit_write(struct queue_commit *c);

static void
queue_commit_work(void *arg)
{
	struct queue_commit *c = arg;

	commit_write(c);
	if (c->spill && c->spill->fd >= 0) {
		/* copied, or not (then the client gets the 4xx) */
		close(c->spill->fd);
		c->spill->fd = -1;
		(void)unlink(c->spill->path);
	}
}

static void
commit_write(struct queue_commit *c)
{
	struct queue *q = c->q;
	char tmp[4096], final[4096];
	struct iovec iov[2];
	uint64_t rest = c->spill ? c->spill->size : 0;
	bool no_space = false;

	if (c->spill && !queue_spill_ok(c->spill, &no_space)) {
		if (no_space)
			tern_err_set(&c->err, 452, "4.3.1",
			    "Insufficient system storage");
		else
			queue_errno(&c->err, "write", c->spill->err);
		c->rc = -1;
		return;
	}
	if (!space_ok(q, c->head.len + c->body->len + rest)) {
		tern_err_set(&c->err, 452, "4.3.1",
		    "Insufficient system storage");
		c->rc = -1;
		return;
	}
	if (str_fmt(tmp, sizeof(tmp), "%s/%s", q->tmp_dir, c->env->id) != 0 ||
	    str_fmt(final, sizeof(final), "%s/%s", q->queue_dir,
	    c->env->id) != 0) {
		tern_err_set(&c->err, 451, "4.3.0", "Spool path too long");
		c->rc = -1;
		return;
	}
	if (c->plan) {
		q->direct.deliver(c->plan, c->env, c->body);
		if (envelope_pending(c->env) == 0) {
			c->all_done = true;   /* on disk where it belongs */
			c->rc = 0;
			return;
		}
	}
	iov[0].iov_base = c->head.data;
	iov[0].iov_len = c->head.len;
	iov[1].iov_base = c->body->data;
	iov[1].iov_len = c->body->len;
	c->rc = durable_create(q, tmp, final, iov, 2, c->spill ? c->spill->fd :
	    -1, rest, true, &c->err);
	/* delivered by the fast path: said in the state file, after it */
	if (c->rc == 0 && c->plan && envelope_pending(c->env) <
	    c->env->nrcpts && queue_state_write_sync(q, c->env, &c->err) != 0)
		log_warnx("%s: cannot record the recipients delivered before "
		    "the commit (they may get it twice): %s", c->env->id,
		    c->err.text);
}

/* --- a body as it arrives ------------------------------------------- */

static void
spill_release(struct queue_spill *sp)
{
	if (sp->feed_free)
		sp->feed_free(sp->feed_arg);
	free(sp);
}

/*
 * Loop thread, no job in flight. The file is gone already (the commit's
 * worker removed it) or goes now: a transfer cut off or reset, rare, and
 * an unlink in spool/tmp; done here so that it also holds while the
 * pool is being stopped (no job could be queued then).
 */
static void
spill_destroy(struct queue_spill *sp)
{
	if (sp->fd >= 0) {
		close(sp->fd);
		(void)unlink(sp->path);
	}
	spill_release(sp);
}

struct queue_spill *
queue_spill_new(struct queue *q, const char *id, queue_spill_feed_fn feed,
    void *feed_arg, void (*feed_free)(void *))
{
	struct queue_spill *sp = xcalloc(1, sizeof(*sp));

	sp->q = q;
	sp->feed = feed;
	sp->feed_arg = feed_arg;
	sp->feed_free = feed_free;
	sp->fd = -1;
	if (str_fmt(sp->path, sizeof(sp->path), "%s/%s.body", q->tmp_dir,
	    id) != 0)
		sp->err = ENAMETOOLONG;
	return sp;
}

bool
queue_spill_busy(const struct queue_spill *sp)
{
	return sp->busy;
}

uint64_t
queue_spill_size(const struct queue_spill *sp)
{
	return sp->size;
}

bool
queue_spill_ok(const struct queue_spill *sp, bool *no_space)
{
	if (no_space)
		*no_space = sp->err == ENOSPC || sp->err == EDQUOT;
	return sp->err == 0;
}

static void
spill_append_work(void *arg)
{
	struct queue_spill *sp = arg;

	if (sp->err)
		return;
	if (sp->fd < 0) {
		sp->fd = open(sp->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (sp->fd < 0) {
			sp->err = errno;
			return;
		}
	}
	if (!space_ok(sp->q, sp->data->len)) {
		sp->err = ENOSPC;
		return;
	}
	if (sp->feed)
		sp->feed(sp->feed_arg, sp->data->data, sp->data->len);
	struct iovec v = { sp->data->data, sp->data->len };
	if (write_all(sp->fd, &v, 1) != 0)
		sp->err = errno ? errno : EIO;
}

static void
spill_job_done(void *arg)
{
	struct queue_spill *sp = arg;
	struct buf *data = sp->data;
	queue_spill_cb cb = sp->cb;
	void (*read_cb)(void *, struct buf *) = sp->read_cb;
	void *cb_arg = sp->cb_arg;

	sp->busy = false;
	sp->data = NULL;
	sp->cb = NULL;
	sp->read_cb = NULL;
	if (sp->dead) {
		if (data) {
			buf_clear(data);
			free(data);
		}
		spill_destroy(sp);
		return;
	}
	if (read_cb) {
		read_cb(cb_arg, data);
		return;
	}
	if (data) {
		buf_clear(data);
		free(data);
	}
	if (cb)
		cb(cb_arg, sp->err == 0);
}

void
queue_spill_append(struct queue_spill *sp, struct buf *data,
    queue_spill_cb cb, void *arg)
{
	TERN_ASSERT(!sp->busy);
	sp->busy = true;
	sp->data = data;
	sp->size += data->len;
	sp->cb = cb;
	sp->cb_arg = arg;
	iopool_submit(sp->q->pool, spill_append_work, spill_job_done, sp);
}

static void
spill_read_work(void *arg)
{
	struct queue_spill *sp = arg;
	struct buf *b = xcalloc(1, sizeof(*b));
	size_t want = sp->read_max < sp->size ? sp->read_max : sp->size;

	buf_init(b);
	buf_reserve(b, want + 1);
	while (b->len < want && sp->fd >= 0) {
		ssize_t n = pread(sp->fd, b->data + b->len, want - b->len,
		    (off_t)b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b->len += (size_t)n;
	}
	if (b->len < want) {
		buf_clear(b);
		free(b);
		b = NULL;
	} else
		b->data[b->len] = '\0';
	sp->data = b;
}

void
queue_spill_read(struct queue_spill *sp, size_t max,
    void (*cb)(void *arg, struct buf *data), void *arg)
{
	TERN_ASSERT(!sp->busy);
	sp->busy = true;
	sp->read_max = max;
	sp->read_cb = cb;
	sp->cb_arg = arg;
	iopool_submit(sp->q->pool, spill_read_work, spill_job_done, sp);
}

void
queue_spill_free(struct queue_spill *sp)
{
	if (sp == NULL)
		return;
	if (sp->busy)
		sp->dead = true;     /* its job's end frees it */
	else
		spill_destroy(sp);
}

static void
queue_commit_done(void *arg)
{
	struct queue_commit *c = arg;
	struct queue *q = c->q;

	if (c->cb)
		c->cb(c->cb_arg, c->env->id, c->rc == 0 ? NULL : &c->err);
	if (c->plan)
		q->direct.done(c->plan, c->env, c->all_done);
	if (c->all_done) {
		if (c->cb == NULL)
			log_info("%s: delivered after the client left",
			    c->env->id);
	} else if (c->rc == 0) {
		if (c->cb == NULL)
			log_info("%s: committed after the client left; it "
			    "will be delivered", c->env->id);
		if (c->spill) {      /* too big to hand on: read it back */
			buf_clear(c->body);
			free(c->body);
			c->body = NULL;
		}
		if (q->on_commit) {
			q->on_commit(q->on_commit_arg, c->env, c->body);
			c->env = NULL;
			c->body = NULL;
		}
	} else
		log_warnx("%s: queue commit failed: %d %s %s", c->env->id,
		    c->err.code, c->err.enh, c->err.text);
	if (c->env) {
		envelope_clear(c->env);
		free(c->env);
	}
	if (c->body) {
		buf_clear(c->body);
		free(c->body);
	}
	buf_clear(&c->head);
	if (c->spill)
		spill_destroy(c->spill);
	free(c);
}

/* The commit of env, body and (if not NULL) the rest in sp. */
static struct queue_commit *
commit_start(struct queue *q, struct envelope *env, struct buf *body,
    struct queue_spill *sp, queue_commit_cb cb, void *arg)
{
	struct queue_commit *c = xcalloc(1, sizeof(*c));

	TERN_ASSERT(sp == NULL || !sp->busy);
	c->q = q;
	c->env = env;
	c->body = body;
	c->spill = sp;
	c->cb = cb;
	c->cb_arg = arg;
	env->size = body->len + (sp ? sp->size : 0);
	env->nfixed = env->nrcpts;
	buf_init(&c->head);
	envelope_serialize(env, &c->head);
	/* no fast path for a spooled body: the copies need it in memory */
	if (q->direct.plan && sp == NULL)
		c->plan = q->direct.plan(q->direct.arg, env);
	iopool_submit(q->pool, queue_commit_work, queue_commit_done, c);
	return c;
}

struct queue_commit *
queue_commit(struct queue *q, struct envelope *env, struct buf *body,
    queue_commit_cb cb, void *arg)
{
	return commit_start(q, env, body, NULL, cb, arg);
}

struct queue_commit *
queue_commit_spilled(struct queue *q, struct envelope *env, struct buf *head,
    struct queue_spill *sp, queue_commit_cb cb, void *arg)
{
	return commit_start(q, env, head, sp, cb, arg);
}

void
queue_set_direct(struct queue *q, const struct queue_direct *d)
{
	q->direct = *d;
}

void
queue_commit_detach(struct queue_commit *c)
{
	c->cb = NULL;
	c->cb_arg = NULL;
}

static int
read_file(const char *path, struct buf *out, int *err_no)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0) {
		*err_no = errno;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf_reserve(out, (size_t)st.st_size);
	for (;;) {
		buf_reserve(out, 65536);
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*err_no = errno;
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	out->data[out->len] = '\0';
	close(fd);
	return 0;
}

/* The message's state file, if it has one, into env (a bad one is
 * logged and ignored: the queue file alone is still deliverable). */
static void
load_state(struct queue *q, const char *id, struct envelope *env)
{
	char path[4096], why[200];
	struct buf raw;
	int e;

	buf_init(&raw);
	if (str_fmt(path, sizeof(path), "%s/%s.state", q->queue_dir, id) == 0 &&
	    read_file(path, &raw, &e) == 0 && envelope_state_parse(raw.data,
	    raw.len, env, why, sizeof(why)) != 0)
		log_warnx("%s: ignoring bad state file: %s", id, why);
	buf_clear(&raw);
}

int
queue_load_sync(struct queue *q, const char *id, struct envelope *env,
    struct buf *body, struct tern_err *err)
{
	char path[4096], why[200];
	size_t off;
	int e;

	/* read into body itself, the envelope then moved out of its way:
	 * a big message is in memory once, not twice */
	if (str_fmt(path, sizeof(path), "%s/%s", q->queue_dir, id) != 0 ||
	    read_file(path, body, &e) != 0) {
		tern_err_set(err, 451, "4.3.0", "cannot read queue file: %s",
		    strerror(e));
		buf_reset(body);
		return -1;
	}
	if (envelope_parse(body->data, body->len, env, &off, why,
	    sizeof(why)) != 0) {
		tern_err_set(err, 554, "5.3.0", "corrupt queue file: %s", why);
		buf_reset(body);
		return -1;
	}
	if (body->len - off != env->size) {
		tern_err_set(err, 554, "5.3.0",
		    "corrupt queue file: size %zu, envelope says %llu",
		    body->len - off, (unsigned long long)env->size);
		buf_reset(body);
		return -1;
	}
	memmove(body->data, body->data + off, body->len - off + 1);
	body->len -= off;
	load_state(q, id, env);
	return 0;
}

int
queue_load_part_sync(struct queue *q, const char *id, struct envelope *env,
    struct buf *head, size_t max, int *fd, uint64_t *body_off,
    struct tern_err *err)
{
	char path[4096], why[200];
	struct buf raw;
	struct stat st;
	size_t off;

	*fd = -1;
	if (str_fmt(path, sizeof(path), "%s/%s", q->queue_dir, id) != 0 ||
	    (*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(*fd, &st) != 0) {
		tern_err_set(err, 451, "4.3.0", "cannot read queue file: %s",
		    strerror(errno));
		goto fail;
	}
	/* the envelope and the message's start, in one read */
	size_t want = max + 256 * 1024;
	if ((uint64_t)st.st_size < want)
		want = (size_t)st.st_size;
	buf_init(&raw);
	buf_reserve(&raw, want);
	while (raw.len < want) {
		ssize_t n = pread(*fd, raw.data + raw.len, want - raw.len,
		    (off_t)raw.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		raw.len += (size_t)n;
	}
	raw.data[raw.len] = '\0';
	if (raw.len < want || envelope_parse(raw.data, raw.len, env, &off, why,
	    sizeof(why)) != 0) {
		/* a short read, or an envelope longer than that */
		memset(err, 0, sizeof(*err));
		buf_clear(&raw);
		goto fail;
	}
	if ((uint64_t)st.st_size - off != env->size) {
		tern_err_set(err, 554, "5.3.0",
		    "corrupt queue file: size %llu, envelope says %llu",
		    (unsigned long long)((uint64_t)st.st_size - off),
		    (unsigned long long)env->size);
		buf_clear(&raw);
		goto fail;
	}
	*body_off = off;
	buf_append(head, raw.data + off, raw.len - off < max ? raw.len - off :
	    max);
	buf_clear(&raw);
	load_state(q, id, env);
	return 0;
fail:
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return -1;
}

int64_t
queue_file_size_sync(struct queue *q, const char *id)
{
	char path[4096];
	struct stat st;

	if (str_fmt(path, sizeof(path), "%s/%s", q->queue_dir, id) != 0 ||
	    stat(path, &st) != 0)
		return -1;
	return (int64_t)st.st_size;
}

int
queue_state_write_sync(struct queue *q, const struct envelope *env,
    struct tern_err *err)
{
	char tmp[4096], final[4096];
	struct buf text;
	struct iovec iov;
	int rc;

	if (str_fmt(tmp, sizeof(tmp), "%s/%s.state", q->tmp_dir,
	    env->id) != 0 || str_fmt(final, sizeof(final), "%s/%s.state",
	    q->queue_dir, env->id) != 0) {
		tern_err_set(err, 451, "4.3.0", "Spool path too long");
		return -1;
	}
	buf_init(&text);
	envelope_state_serialize(env, &text);
	iov.iov_base = text.data;
	iov.iov_len = text.len;
	unlink(tmp); /* a leftover of an earlier failed attempt */
	rc = durable_create(q, tmp, final, &iov, 1, -1, 0, false, err);
	buf_clear(&text);
	return rc;
}

int
queue_remove_sync(struct queue *q, const char *id)
{
	char path[4096];
	int rc = 0;

	/*
	 * The state file first: if we crash between the two unlinks, the
	 * message is simply delivered again from scratch. No directory fsync:
	 * a removal undone by a crash means a duplicate, never a loss.
	 */
	if (str_fmt(path, sizeof(path), "%s/%s.state", q->queue_dir, id) == 0 &&
	    unlink(path) != 0 && errno != ENOENT)
		rc = -1;
	if (str_fmt(path, sizeof(path), "%s/%s", q->queue_dir, id) != 0 ||
	    unlink(path) != 0)
		rc = -1;
	return rc;
}

int
queue_move_aside_sync(struct queue *q, const char *id)
{
	char from[4096], to[4096];

	if (str_fmt(from, sizeof(from), "%s/%s", q->queue_dir, id) != 0 ||
	    str_fmt(to, sizeof(to), "%s/%s", q->corrupt_dir, id) != 0)
		return -1;
	if (rename(from, to) != 0)
		return -1;
	(void)str_fmt(from, sizeof(from), "%s/%s.state", q->queue_dir, id);
	(void)str_fmt(to, sizeof(to), "%s/%s.state", q->corrupt_dir, id);
	(void)rename(from, to);
	return 0;
}

static bool
is_queue_id(const char *name)
{
	if (strlen(name) != ENVELOPE_ID_LEN)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static bool is_queue_id(const char *name);

int
queue_load_envelope_sync(struct queue *q, const char *id,
    struct envelope *env, struct tern_err *err)
{
	char path[4096], why[200], head[65536];
	struct buf raw;
	size_t off;
	ssize_t n;
	int fd, e;

	if (str_fmt(path, sizeof(path), "%s/%s", q->queue_dir, id) != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		tern_err_set(err, 451, "4.3.0", "cannot read queue file: %s",
		    strerror(errno));
		return -1;
	}
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n < 0 || envelope_parse(head, (size_t)n, env, &off, why,
	    sizeof(why)) != 0) {
		tern_err_set(err, 554, "5.3.0", "corrupt queue file: %s",
		    n < 0 ? strerror(errno) : why);
		return -1;
	}
	buf_init(&raw);
	if (str_fmt(path, sizeof(path), "%s/%s.state", q->queue_dir, id) == 0 &&
	    read_file(path, &raw, &e) == 0)
		(void)envelope_state_parse(raw.data, raw.len, env, why,
		    sizeof(why));
	buf_clear(&raw);
	return 0;
}

size_t
queue_list_sync(struct queue *q, void (*fn)(void *arg, const char *id),
    void *arg)
{
	DIR *d = opendir(q->queue_dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (is_queue_id(de->d_name)) {
			fn(arg, de->d_name);
			n++;
		}
	closedir(d);
	return n;
}

void
queue_handoff(struct queue *q, struct envelope *env, struct buf *body)
{
	if (q->on_commit)
		q->on_commit(q->on_commit_arg, env, body);
	else {
		envelope_clear(env);
		free(env);
		buf_clear(body);
		free(body);
	}
}

/* One pickup file into the queue; 0 with env/body set, or -1 (logged). */
static int
pickup_one(struct queue *q, const char *name, const char *hostname,
    const struct dkim_signer *ds, struct envelope **envp, struct buf **bodyp)
{
	char path[4096], tmp[4096], final[4096], why[200], date[64];
	struct envelope *env;
	struct buf raw, *body;
	struct tern_err err;
	struct stat st;
	size_t off;
	int e;

	if (str_fmt(path, sizeof(path), "%s/%s", q->pickup_dir, name) != 0)
		return -1;
	/* anyone can drop files here: no links to things we may read */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1) {
		log_warnx("pickup: %s is not a plain file; removed", name);
		if (fd >= 0)
			close(fd);
		(void)unlink(path);
		return -1;
	}
	buf_init(&raw);
	for (;;) {
		buf_reserve(&raw, 65536);
		ssize_t r = read(fd, raw.data + raw.len, raw.cap - raw.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r < 0 ? errno : 0;
			break;
		}
		raw.len += (size_t)r;
		if (raw.len > ((size_t)1 << 30)) {
			e = EFBIG;
			break;
		}
	}
	close(fd);
	if (e != 0) {
		log_warnx("pickup: %s: %s", name, strerror(e));
		buf_clear(&raw);
		return -1;
	}
	raw.data[raw.len] = '\0';
	env = xcalloc(1, sizeof(*env));
	envelope_init(env);
	if (envelope_parse(raw.data, raw.len, env, &off, why,
	    sizeof(why)) != 0) {
		log_warnx("pickup: %s: %s; moved to spool/corrupt", name, why);
		(void)str_fmt(final, sizeof(final), "%s/pickup-%s",
		    q->corrupt_dir, name);
		(void)rename(path, final);
		envelope_clear(env);
		free(env);
		buf_clear(&raw);
		return -1;
	}
	queue_new_id(q, env->id);
	body = xcalloc(1, sizeof(*body));
	buf_init(body);
	/* our trace field: who dropped it, when (RFC 5321 4.4 for local) */
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
	buf_printf(body, "Received: (from uid %ld)\n\tby %s (Tern) with local "
	    "id %s;\n\t%s\n", (long)st.st_uid, hostname, env->id, date);
	size_t start = body->len;
	buf_append(body, raw.data + off, raw.len - off);
	buf_clear(&raw);
	bool made7;
	if (dkim_sign_submitted(ds, body, start, (int64_t)now, &made7, why,
	    sizeof(why)) < 0)
		log_warnx("pickup: %s: unsigned: %s", name, why);
	if (made7) {
		free(env->body);
		env->body = xstrdup("7BIT");
	}
	env->created = (int64_t)now;
	env->size = body->len;
	env->nfixed = env->nrcpts;
	struct buf head;
	buf_init(&head);
	envelope_serialize(env, &head);
	struct iovec iov[2] = { { head.data, head.len },
		{ body->data, body->len } };
	if (str_fmt(tmp, sizeof(tmp), "%s/%s", q->tmp_dir, env->id) != 0 ||
	    str_fmt(final, sizeof(final), "%s/%s", q->queue_dir,
	    env->id) != 0 || durable_create(q, tmp, final, iov, 2, -1, 0, true,
	    &err) != 0) {
		log_warnx("pickup: %s: cannot queue it: %s", name, err.text);
		buf_clear(&head);
		envelope_clear(env);
		free(env);
		buf_clear(body);
		free(body);
		return -1;
	}
	buf_clear(&head);
	/* queued durably: now it may leave pickup (a crash between: twice) */
	if (unlink(path) != 0)
		log_warn("pickup: cannot remove %s", path);
	log_info("%s: accepted from pickup (uid %ld) from=%s size=%zu "
	    "nrcpt=%zu", env->id, (long)st.st_uid, env->sender, body->len,
	    env->nrcpts);
	*envp = env;
	*bodyp = body;
	return 0;
}

size_t
queue_pickup_sync(struct queue *q, const char *hostname,
    const struct dkim_signer *ds, void (*fn)(void *arg, struct envelope *env, struct buf *body), void *arg)
{
	DIR *d = opendir(q->pickup_dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct envelope *env;
		struct buf *body;
		/* tern-sendmail writes "tmp-*" and renames when complete */
		if (de->d_name[0] == '.' || strncmp(de->d_name, "tmp-", 4) == 0)
			continue;
		if (pickup_one(q, de->d_name, hostname, ds, &env, &body) ==
		    0) {
			fn(arg, env, body);
			n++;
		}
	}
	closedir(d);
	return n;
}

size_t
queue_scan(struct queue *q, void (*fn)(void *arg, const char *id), void *arg)
{
	DIR *d;
	struct dirent *de;
	size_t n = 0;
	char path[4096];

	if ((d = opendir(q->tmp_dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (str_fmt(path, sizeof(path), "%s/%s", q->tmp_dir,
			    de->d_name) == 0)
				(void)unlink(path);
		}
		closedir(d);
	}
	if ((d = opendir(q->queue_dir)) == NULL) {
		log_warn("cannot scan %s", q->queue_dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_queue_id(de->d_name))
			continue;
		fn(arg, de->d_name);
		n++;
	}
	closedir(d);
	return n;
}
