/* SPDX-License-Identifier: ISC */
/*
 * mailbox.c - layer 2: a Maildir++ folder with Dovecot's UID files
 * (mailbox.h). Runs on I/O workers only, one call per box at a time
 * (store.c). The crash rules: a message file is fsynced in tmp/ before it
 * is renamed into cur/; a UID is final only once the uidlist naming it is
 * fsynced and renamed into place, which happens before any caller may
 * tell a client about it (APPENDUID, COPYUID). The uidlist is replaced
 * the way Dovecot does it: dovecot-uidlist.lock is created with O_EXCL
 * (the lock), the new text is written into it, and it is renamed over
 * dovecot-uidlist (the unlock). A lock older than 120 s is stale, and
 * one a killed ternd left is known at once by tern-uidlist.lock (see
 * the uidlist lock below).
 */
#include "store/mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mail/message.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"
#include "store/deliver_maildir.h"

#define LOCK_STALE_SECS 120
#define LOCK_WAIT_MS 10000
#define UIDLIST "dovecot-uidlist"
#define UIDLIST_LOCK "dovecot-uidlist.lock"
#define KEYWORDS "dovecot-keywords"

static void
fail_errno(struct tern_err *err, const char *what, const char *path)
{
	int e = errno;

	tern_err_set(err, e == ENOSPC || e == EDQUOT ? 452 : 451,
	    e == ENOSPC || e == EDQUOT ? "4.3.1" : "4.3.0", "%s %s: %s", what,
	    path, strerror(e));
	err->temp = true;
}

struct mbox *
mbox_new(const char *path)
{
	struct mbox *b = xcalloc(1, sizeof(*b));

	b->path = xstrdup(path);
	keywords_init(&b->kw);
	return b;
}

static void
msg_clear(struct mbox_msg *m)
{
	free(m->base);
	free(m->fname);
	if (m->keys) {
		sort_keys_clear(m->keys);
		free(m->keys);
	}
	free(m->envelope);
	free(m->structure);
	free(m->body);
}

void
mbox_free(struct mbox *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		msg_clear(&b->m[i]);
	free(b->m);
	free(b->exp);
	free(b->chg);
	keywords_clear(&b->kw);
	free(b->path);
	free(b);
}

/*
 * The last MBOX_CHANGES flag changes (UID and MODSEQ, in MODSEQ order),
 * so that a session hears of them without a look at every message.
 */
static void
note_change(struct mbox *b, uint32_t uid)
{
	if (b->chg == NULL)
		b->chg = xcalloc(MBOX_CHANGES, sizeof(*b->chg));
	struct mbox_change *c = &b->chg[b->chg_next % MBOX_CHANGES];
	if (b->chg_next >= MBOX_CHANGES)
		b->chg_floor = c->modseq;     /* overwritten: no longer told */
	c->uid = uid;
	c->modseq = b->modseq;
	b->chg_next++;
}

static int
cmp_uid32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

bool
mbox_changes_since(const struct mbox *b, uint64_t since, uint32_t **uids,
    size_t *n)
{
	*uids = NULL;
	*n = 0;
	if (since < b->chg_floor)
		return false;     /* older than what the list holds */
	size_t have = b->chg_next < MBOX_CHANGES ? b->chg_next : MBOX_CHANGES;
	uint32_t *v = xcalloc(have + 1, sizeof(uint32_t));
	for (size_t k = 0; k < have; k++) {
		const struct mbox_change *c = &b->chg[(b->chg_next - 1 - k) %
		    MBOX_CHANGES];
		if (c->modseq <= since)
			break;
		v[(*n)++] = c->uid;
	}
	qsort(v, *n, sizeof(uint32_t), cmp_uid32);
	size_t w = 0;
	for (size_t k = 0; k < *n; k++)
		if (w == 0 || v[w - 1] != v[k])
			v[w++] = v[k];
	*n = w;
	*uids = v;
	return true;
}

/* --- our own changes, as inotify will report them ------------------------ */

enum { OWN_NEW, OWN_CUR };

static void
own_expect(struct mbox *b, int dir, size_t n)
{
	__atomic_add_fetch(&b->own[dir], n, __ATOMIC_ACQ_REL);
}

/* The change failed: its events will not come. */
static void
own_cancel(struct mbox *b, int dir, size_t n)
{
	for (size_t k = 0; k < n; k++)
		(void)mbox_own_event(b, dir == OWN_CUR);
}

bool
mbox_own_event(struct mbox *b, bool cur)
{
	size_t *c = &b->own[cur ? OWN_CUR : OWN_NEW];
	size_t v = __atomic_load_n(c, __ATOMIC_ACQUIRE);

	while (v > 0)
		if (__atomic_compare_exchange_n(c, &v, v - 1, false,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

void
mbox_own_reset(struct mbox *b)
{
	__atomic_store_n(&b->own[OWN_NEW], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&b->own[OWN_CUR], 0, __ATOMIC_RELEASE);
}

/* rename() within the folder, counted as our own change */
static int
own_rename(struct mbox *b, const char *from, bool from_new, const char *to)
{
	if (strcmp(from, to) == 0)
		return rename(from, to);   /* no event comes: none counted */
	own_expect(b, from_new ? OWN_NEW : OWN_CUR, 1);
	own_expect(b, OWN_CUR, 1);
	if (rename(from, to) == 0)
		return 0;
	int e = errno;
	own_cancel(b, from_new ? OWN_NEW : OWN_CUR, 1);
	own_cancel(b, OWN_CUR, 1);
	errno = e;
	return -1;
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct mbox *
mbox_snapshot(struct mbox *b)
{
	struct mbox *c = xcalloc(1, sizeof(*c));
	uint64_t since = b->index_stale ? 0 : b->committed;

	c->path = xstrdup(b->path);
	keywords_init(&c->kw);
	for (int k = 0; k < KEYWORDS_MAX; k++)
		c->kw.names[k] = dup_or_null(b->kw.names[k]);
	c->uidvalidity = b->uidvalidity;
	c->uidnext = b->uidnext;
	c->modseq = b->modseq;
	c->committed = b->committed;
	c->index_stale = b->index_stale;
	c->dirty = b->dirty;
	c->seen_changed = b->seen_changed;
	c->synced = b->synced;
	memcpy(c->guid, b->guid, sizeof(c->guid));
	c->seen_new = b->seen_new;
	c->seen_cur = b->seen_cur;
	c->seen_ul = b->seen_ul;
	c->m = xcalloc(b->n + 1, sizeof(*c->m));
	for (size_t i = 0; i < b->n; i++) {
		struct mbox_msg *m = &b->m[i];
		if (m->modseq <= since && !m->dirty && !m->cache_dirty)
			continue;
		struct mbox_msg *d = &c->m[c->n++];
		d->uid = m->uid;
		d->base = xstrdup(m->base);
		d->fname = dup_or_null(m->fname);
		d->in_new = m->in_new;
		d->flags = m->flags;
		d->kw = m->kw;
		d->vsize = m->vsize;
		d->internaldate = m->internaldate;
		d->savedate = m->savedate;
		d->modseq = m->modseq;
		d->dirty = m->dirty;
		d->in_fts = m->in_fts;
		d->cache_dirty = m->cache_dirty;
		if (m->cache_dirty) {
			d->envelope = dup_or_null(m->envelope);
			d->structure = dup_or_null(m->structure);
			d->body = dup_or_null(m->body);
			if (m->keys) {
				char *p = sort_keys_pack(m->keys, NULL);
				d->keys = xcalloc(1, sizeof(*d->keys));
				if (sort_keys_unpack(p, strlen(p), d->keys) != 0) {
					free(d->keys);
					d->keys = NULL;
				}
				free(p);
			}
		}
		m->dirty = m->cache_dirty = false;
	}
	c->cap = c->n;
	c->exp = xcalloc(b->nexp + 1, sizeof(*c->exp));
	for (size_t i = 0; i < b->nexp; i++)
		if (b->exp[i].modseq > b->committed)
			c->exp[c->nexp++] = b->exp[i];
	c->capexp = c->nexp;
	/* b counts as written from now: the copy is what gets written */
	b->committed = b->modseq;
	b->index_stale = b->dirty = b->seen_changed = false;
	b->cache_pending = 0;
	return c;
}

void
mbox_cache_learnt(struct mbox *b, struct mbox_msg *m)
{
	if (!m->cache_dirty)
		b->cache_pending++;
	m->cache_dirty = b->dirty = true;
}

ssize_t
mbox_find_uid(const struct mbox *b, uint32_t uid)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->m[mid].uid == uid)
			return (ssize_t)mid;
		if (b->m[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* --- names and flags -------------------------------------------------- */

/* Flags and keywords from a name's ":2," info. */
static void
info_flags(const char *name, uint8_t *flags, uint32_t *kw)
{
	const char *info = strstr(name, ":2,");

	*flags = 0;
	*kw = 0;
	if (info == NULL)
		return;
	for (const char *p = info + 3; *p; p++) {
		switch (*p) {
		case 'S': *flags |= MBOX_SEEN; break;
		case 'R': *flags |= MBOX_ANSWERED; break;
		case 'F': *flags |= MBOX_FLAGGED; break;
		case 'T': *flags |= MBOX_DELETED; break;
		case 'D': *flags |= MBOX_DRAFT; break;
		case 'P': *flags |= MBOX_FORWARDED; break;
		default:
			if (*p >= 'a' && *p <= 'z')
				*kw |= 1u << (*p - 'a');
		}
	}
}

void
mbox_flag_letters(uint8_t flags, uint32_t kw, char *out, size_t outsz)
{
	size_t n = 0;

	/* Maildir: letters in ASCII order, upper case before lower */
	if ((flags & MBOX_DRAFT) && n + 1 < outsz)
		out[n++] = 'D';
	if ((flags & MBOX_FLAGGED) && n + 1 < outsz)
		out[n++] = 'F';
	if ((flags & MBOX_FORWARDED) && n + 1 < outsz)
		out[n++] = 'P';
	if ((flags & MBOX_ANSWERED) && n + 1 < outsz)
		out[n++] = 'R';
	if ((flags & MBOX_SEEN) && n + 1 < outsz)
		out[n++] = 'S';
	if ((flags & MBOX_DELETED) && n + 1 < outsz)
		out[n++] = 'T';
	for (int i = 0; i < KEYWORDS_MAX; i++)
		if ((kw & (1u << i)) && n + 1 < outsz)
			out[n++] = (char)('a' + i);
	out[n] = '\0';
}

static char *
base_of(const char *name)
{
	const char *c = strchr(name, ':');

	return c ? xstrndup(name, (size_t)(c - name)) : xstrdup(name);
}

/* W= of a base name, or 0. */
static uint64_t
name_vsize(const char *base)
{
	const char *w = strstr(base, ",W=");
	uint64_t v = 0;

	if (w == NULL)
		return 0;
	for (w += 3; *w >= '0' && *w <= '9'; w++)
		v = v * 10 + (uint64_t)(*w - '0');
	return v;
}

/* --- the uidlist lock ------------------------------------------------- */

/*
 * The dotlock is Dovecot's protocol; what it cannot tell is whether the
 * process that made a lock is still alive, so a lock left by a killed
 * writer blocks the folder until it is 120 s old. Between ternd processes
 * (and ternmail) the owner file says more: a writer holds an flock on
 * OWNER while it holds the dotlock, and writes the dotlock's device and
 * inode into it. A dotlock found under an OWNER we could flock, whose
 * record names that very file, was made by a writer that is gone (the
 * kernel dropped its flock): it is removed at once. Any other dotlock
 * is Dovecot's, or from before this file existed, and is waited for.
 */
#define OWNER "tern-uidlist.lock"

struct ul_lock {
	int fd;        /* the dotlock, taking the new text; -1: not held */
	int owner;     /* OWNER, flocked; -1: none (cannot be created) */
};

static bool
owner_clear(int owner)
{
	return ftruncate(owner, 0) == 0;
}

static void
owner_note(int owner, const struct stat *st)
{
	char rec[64];
	int n = snprintf(rec, sizeof(rec), "%ju %ju\n", (uintmax_t)st->st_dev,
	    (uintmax_t)st->st_ino);

	/* a short record names no lock: that one is then waited for */
	if (owner >= 0 && owner_clear(owner) &&
	    pwrite(owner, rec, (size_t)n, 0) != n)
		return;
}

/* Did the writer recorded in OWNER make the dotlock st (and is gone)? */
static bool
owner_made(int owner, const struct stat *st)
{
	char rec[64];
	ssize_t n;
	uintmax_t dev, ino;

	if (owner < 0 || (n = pread(owner, rec, sizeof(rec) - 1, 0)) <= 0)
		return false;
	rec[n] = '\0';
	return sscanf(rec, "%ju %ju", &dev, &ino) == 2 &&
	    dev == (uintmax_t)st->st_dev && ino == (uintmax_t)st->st_ino;
}

static void
owner_release(struct ul_lock *lk)
{
	if (lk->owner >= 0) {
		/* if this fails, the record names a file that is gone */
		(void)owner_clear(lk->owner);
		close(lk->owner);      /* drops the flock */
		lk->owner = -1;
	}
}

static bool
lock_pause(int *waited)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	if (*waited >= LOCK_WAIT_MS)
		return false;
	nanosleep(&ts, NULL);
	*waited += 10;
	return true;
}

/* Takes OWNER, then creates the dotlock (O_EXCL); 0, or -1 and err. */
static int
lock_uidlist(const struct mbox *b, struct ul_lock *lk, struct tern_err *err)
{
	char path[4096], opath[4096];
	int waited = 0;

	lk->fd = lk->owner = -1;
	if (str_fmt(path, sizeof(path), "%s/" UIDLIST_LOCK, b->path) != 0 ||
	    str_fmt(opath, sizeof(opath), "%s/" OWNER, b->path) != 0) {
		errno = ENAMETOOLONG;
		fail_errno(err, "lock", b->path);
		return -1;
	}
	/* a folder we may not write: the dotlock's own error tells */
	lk->owner = open(opath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (lk->owner >= 0 && flock(lk->owner, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			close(lk->owner);
			lk->owner = -1;
		} else if (!lock_pause(&waited)) {
			close(lk->owner);
			lk->owner = -1;
			tern_err_set(err, 451, "4.3.0", "%s is locked", opath);
			err->temp = true;
			return -1;
		}
	}
	for (;;) {
		struct stat st;
		lk->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (lk->fd >= 0) {
			if (fstat(lk->fd, &st) == 0)
				owner_note(lk->owner, &st);
			return 0;
		}
		if (errno != EEXIST) {
			fail_errno(err, "cannot lock", path);
			owner_release(lk);
			return -1;
		}
		if (stat(path, &st) == 0 && (owner_made(lk->owner, &st) ||
		    time(NULL) - st.st_mtime > LOCK_STALE_SECS)) {
			(void)unlink(path);     /* stale: its owner is gone */
			continue;
		}
		if (!lock_pause(&waited)) {
			tern_err_set(err, 451, "4.3.0", "%s is locked", path);
			err->temp = true;
			owner_release(lk);
			return -1;
		}
	}
}

/*
 * Work under the lock that takes long (a new/ of many thousands of
 * files): the lock's time is brought forward every 30 s, so that neither
 * Dovecot nor another ternd takes it for stale (after 120 s).
 */
static void
lock_refresh(const struct ul_lock *lk, time_t *since)
{
	time_t now = time(NULL);

	if (lk->fd >= 0 && now - *since >= 30) {
		(void)futimens(lk->fd, NULL);
		*since = now;
	}
}

/* The dotlock removed (nothing written), then OWNER let go. */
static void
unlock_uidlist(const struct mbox *b, struct ul_lock *lk)
{
	char path[4096];

	if (lk->fd >= 0) {
		close(lk->fd);
		lk->fd = -1;
		if (str_fmt(path, sizeof(path), "%s/" UIDLIST_LOCK,
		    b->path) == 0)
			(void)unlink(path);
	}
	owner_release(lk);
}

/* Does the file end in a line break (a torn append does not)? */
static bool
ends_in_newline(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return false;
	bool ok = fstat(fd, &st) == 0 && st.st_size > 0 &&
	    pread(fd, &c, 1, st.st_size - 1) == 1 && c == '\n';
	close(fd);
	return ok;
}

/* A part-written append taken off again; if even that fails, the torn
 * line has no line break after it: the next commit writes the whole
 * file (ends_in_newline), and a reader ignores an unfinished line. */
static void
cut_back(int fd, off_t size)
{
	if (ftruncate(fd, size) != 0)
		return;
}

/*
 * The records of the staged messages that made it (rc 0) appended to
 * the uidlist and fsynced, under the lock (which it then drops); a
 * failed write is cut off again.
 */
static int append_records(const struct mbox *b, struct ul_lock *lk,
    const char *ulp, struct buf *text, struct tern_err *err);

static int
append_uidlist(const struct mbox *b, struct ul_lock *lk, const char *ulp,
    const struct mbox_staged *st, size_t n, struct tern_err *err)
{
	struct buf text;

	buf_init(&text);
	for (size_t i = 0; i < n; i++)
		if (st[i].rc == 0)
			buf_printf(&text, "%u :%s\n", st[i].uid, st[i].base);
	return append_records(b, lk, ulp, &text, err);
}

/* text (uidlist records) appended and fdatasynced; unlocks; frees text */
static int
append_records(const struct mbox *b, struct ul_lock *lk, const char *ulp,
    struct buf *text, struct tern_err *err)
{
	struct stat sb;
	int rc = -1;

	int fd = open(ulp, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		fail_errno(err, "open", ulp);
		goto out;
	}
	size_t off = 0;
	while (off < text->len) {
		ssize_t w = write(fd, text->data + off, text->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fail_errno(err, "write", ulp);
			cut_back(fd, sb.st_size);
			goto out;
		}
		off += (size_t)w;
	}
	if (fdatasync(fd) != 0) {
		fail_errno(err, "fsync", ulp);
		cut_back(fd, sb.st_size);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_clear(text);
	unlock_uidlist(b, lk);
	return rc;
}

/* Writes ul into the dotlock and renames it into place: the lock is
 * let go whatever the outcome. */
static int
commit_uidlist(const struct mbox *b, struct ul_lock *lk,
    const struct uidlist *ul, struct tern_err *err)
{
	char lock[4096], final[4096];
	struct buf text;
	int fd = lk->fd, rc = -1;

	buf_init(&text);
	uidlist_serialize(ul, &text);
	(void)str_fmt(lock, sizeof(lock), "%s/" UIDLIST_LOCK, b->path);
	(void)str_fmt(final, sizeof(final), "%s/" UIDLIST, b->path);
	size_t off = 0;
	while (off < text.len) {
		ssize_t w = write(fd, text.data + off, text.len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fail_errno(err, "write", lock);
			buf_clear(&text);
			unlock_uidlist(b, lk);
			return -1;
		}
		off += (size_t)w;
	}
	buf_clear(&text);
	lk->fd = -1;
	if (fsync(fd) != 0 || close(fd) != 0) {
		fail_errno(err, "fsync", lock);
		(void)unlink(lock);
	} else if (rename(lock, final) != 0) {
		fail_errno(err, "rename", final);
		(void)unlink(lock);
	} else if (deliver_fsync_dir(b->path) != 0)
		fail_errno(err, "fsync", b->path);
	else
		rc = 0;
	owner_release(lk);
	return rc;
}

static int
read_file_part(const char *path, struct buf *out, size_t max, bool cut)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	ssize_t r;

	if (fd < 0)
		return -1;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0) {
		if (cut && out->len + (size_t)r >= max) {
			buf_append(out, chunk, max - out->len);
			close(fd);
			return 0;
		}
		if (out->len + (size_t)r > max) {
			close(fd);
			errno = EFBIG;
			return -1;
		}
		buf_append(out, chunk, (size_t)r);
	}
	int e = errno;
	close(fd);
	errno = e;
	return r < 0 ? -1 : 0;
}

static int
read_file(const char *path, struct buf *out, size_t max)
{
	return read_file_part(path, out, max, false);
}

/*
 * Reads the uidlist, or starts one with a new UIDVALIDITY: then true,
 * and the caller must write it before any client hears the UIDVALIDITY.
 */
static bool
load_uidlist(const struct mbox *b, const char *root, struct uidlist *ul)
{
	char path[4096], err[100];
	struct buf text;

	buf_init(&text);
	uidlist_init(ul);
	if (str_fmt(path, sizeof(path), "%s/" UIDLIST, b->path) == 0 &&
	    read_file(path, &text, 256u << 20) == 0 &&
	    uidlist_parse(text.data ? text.data : "", text.len, ul, err,
	    sizeof(err)) == 0) {
		buf_clear(&text);
		return false;
	}
	buf_clear(&text);
	uidlist_init(ul);
	ul->version = 3;
	ul->uidvalidity = b->uidvalidity ? b->uidvalidity :
	    mbox_next_uidvalidity(root);
	/* never a UID given out before (the index may remember some) */
	ul->next_uid = b->uidnext ? b->uidnext : 1;
	unsigned char g[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, g, sizeof(g)) == (ssize_t)sizeof(g))
			for (int i = 0; i < 16; i++)
				(void)snprintf(ul->guid + 2 * i, 3, "%02x", g[i]);
		close(fd);
	}
	return true;
}

uint32_t
mbox_next_uidvalidity(const char *root)
{
	char path[4096], tmp[4096], text[32];
	uint32_t last = 0, next = (uint32_t)time(NULL);
	int fd;

	if (str_fmt(path, sizeof(path), "%s/dovecot-uidvalidity", root) != 0)
		return next;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (n > 0) {
			text[n] = '\0';
			last = (uint32_t)strtoul(text, NULL, 16);
		}
	}
	if (next <= last)
		next = last + 1;
	if (str_fmt(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) != 0)
		return next;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		int n = snprintf(text, sizeof(text), "%08x", next);
		bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
		if (close(fd) == 0 && ok && rename(tmp, path) == 0)
			(void)deliver_fsync_dir(root);
		else
			(void)unlink(tmp);
	}
	return next;
}

/* --- sync -------------------------------------------------------------- */

struct entry {
	char *name;
	char *base;
	bool in_new;
	int64_t mtime;            /* ns, once looked at (else 0) */
};

/* A file's mtime (ns) by its directory's descriptor: one lookup. */
static int64_t
entry_mtime(int dfd, const char *name)
{
	struct stat st;

	if (dfd < 0 || fstatat(dfd, name, &st, 0) != 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->base,
	    ((const struct entry *)b)->base);
}

static int
cmp_msg_uid(const void *a, const void *b)
{
	const struct mbox_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

struct arrival {
	size_t i;
	int64_t t;
	const char *name;
};

static int
cmp_arrival(const void *a, const void *b)
{
	const struct arrival *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct rec_name {
	const char *name;
	size_t idx;
};

static int
cmp_rec_name(const void *a, const void *b)
{
	const struct rec_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* equal names (a broken file): the lower uid first */
	return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static int
list_dir(const char *dir, bool in_new, struct entry **e, size_t *n,
    size_t *cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			*e = xreallocarray(*e, *cap, sizeof(**e));
		}
		(*e)[*n].name = xstrdup(de->d_name);
		(*e)[*n].base = base_of(de->d_name);
		(*e)[*n].in_new = in_new;
		(*e)[*n].mtime = 0;
		(*n)++;
	}
	closedir(d);
	return 0;
}

static int64_t
mtime_ns(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

void
mbox_load_keywords(struct mbox *b)
{
	char path[4096];
	struct buf text;

	if (b->kw_loaded)
		return;
	b->kw_loaded = true;
	keywords_clear(&b->kw);
	buf_init(&text);
	b->kw_mtime = -1;
	if (str_fmt(path, sizeof(path), "%s/" KEYWORDS, b->path) == 0 &&
	    (b->kw_mtime = mtime_ns(path), read_file(path, &text,
	    1 << 20) == 0))
		keywords_parse(text.data ? text.data : "", text.len, &b->kw);
	buf_clear(&text);
}

int
mbox_save_keywords(struct mbox *b, struct tern_err *err)
{
	char path[4096], tmp[4096];
	struct buf text;
	int fd;

	buf_init(&text);
	keywords_serialize(&b->kw, &text);
	(void)str_fmt(path, sizeof(path), "%s/" KEYWORDS, b->path);
	(void)str_fmt(tmp, sizeof(tmp), "%s/" KEYWORDS ".tmp", b->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, text.data ? text.data : "", text.len) ==
	    (ssize_t)text.len && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	buf_clear(&text);
	if (!ok || rename(tmp, path) != 0) {
		fail_errno(err, "write", path);
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* The entries list_dir() made. */
static void
entries_free(struct entry *e, size_t ne)
{
	for (size_t i = 0; i < ne; i++) {
		free(e[i].name);
		free(e[i].base);
	}
	free(e);
}

/*
 * A file of new/ into cur/ (":2," added if it had no info), as a
 * selected folder's are: its new name, or NULL if it stayed.
 */
static char *
move_to_cur(struct mbox *b, const char *dnew, const char *dcur,
    const char *name)
{
	char from[4096], to[4096];
	char *nn = strchr(name, ':') ? xstrdup(name) :
	    xasprintf("%s:2,", name);

	if (str_fmt(from, sizeof(from), "%s/%s", dnew, name) == 0 &&
	    str_fmt(to, sizeof(to), "%s/%s", dcur, nn) == 0 &&
	    own_rename(b, from, true, to) == 0)
		return nn;
	free(nn);
	return NULL;
}

static void
record_expunge(struct mbox *b, const struct mbox_msg *m)
{
	if (b->nexp == b->capexp) {
		b->capexp = b->capexp ? b->capexp * 2 : 16;
		b->exp = xreallocarray(b->exp, b->capexp, sizeof(*b->exp));
	}
	b->exp[b->nexp].uid = m->uid;
	sort_email_id(m->base, b->exp[b->nexp].email);
	/* the thread only if its keys were read (the file may be gone) */
	if (m->keys)
		sort_thread_id(m->keys, m->base, b->exp[b->nexp].thread);
	else
		b->exp[b->nexp].thread[0] = '\0';
	b->exp[b->nexp].modseq = ++b->modseq;
	b->nexp++;
}

bool
mbox_times_are(struct mbox *b, int64_t t_new, int64_t t_cur, int64_t t_ul)
{
	char dnew[4096], dcur[4096], ulp[4096];

	if (str_fmt(dnew, sizeof(dnew), "%s/new", b->path) != 0 ||
	    str_fmt(dcur, sizeof(dcur), "%s/cur", b->path) != 0 ||
	    str_fmt(ulp, sizeof(ulp), "%s/" UIDLIST, b->path) != 0 ||
	    mtime_ns(dnew) != t_new || mtime_ns(dcur) != t_cur ||
	    mtime_ns(ulp) != t_ul)
		return false;
	b->seen_new = t_new;
	b->seen_cur = t_cur;
	b->seen_ul = t_ul;
	b->synced = true;
	return true;
}

static int
cmp_idx_base(const void *a, const void *b, void *arg)
{
	const struct mbox *mb = arg;

	return strcmp(mb->m[*(const size_t *)a].base,
	    mb->m[*(const size_t *)b].base);
}

/*
 * Only new/ changed (cur/ and the uidlist are as the last sync saw them,
 * under the lock): new/ alone is listed, its new files get the next
 * UIDs, appended to the uidlist. A delivery into a folder of 100,000
 * reaches its IDLE sessions without a listing of cur/ or a read of the
 * uidlist. 1: not so simple after all (the caller lists everything).
 */
#define SYNC_NEW_MAX 64    /* new files that sync_new() takes */

static int
sync_new(struct mbox *b, bool move_new, bool *changed, struct tern_err *err)
{
	char dnew[4096], dcur[4096], ulp[4096];
	struct entry *e = NULL;
	size_t ne = 0, cape = 0;
	struct ul_lock lk = { -1, -1 };

	(void)str_fmt(dnew, sizeof(dnew), "%s/new", b->path);
	(void)str_fmt(dcur, sizeof(dcur), "%s/cur", b->path);
	(void)str_fmt(ulp, sizeof(ulp), "%s/" UIDLIST, b->path);
	if (lock_uidlist(b, &lk, err) != 0)
		return -1;
	int64_t mn = mtime_ns(dnew);
	if (mtime_ns(ulp) != b->seen_ul || mtime_ns(dcur) != b->seen_cur ||
	    b->uidnext == 0 || !ends_in_newline(ulp) ||
	    list_dir(dnew, true, &e, &ne, &cape) != 0) {
		unlock_uidlist(b, &lk);
		entries_free(e, ne);
		return 1;
	}
	mbox_load_keywords(b);
	/* the messages the box has in new/, by base name */
	size_t *in = xcalloc(b->n + 1, sizeof(size_t)), nin = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->m[i].in_new)
			in[nin++] = i;
	qsort_r(in, nin, sizeof(size_t), cmp_idx_base, b);
	bool *found = xcalloc(nin + 1, sizeof(bool));
	struct arrival *arr = xcalloc(ne + 1, sizeof(*arr));
	size_t nnew = 0;
	int dfd_new = open(dnew, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < ne; i++) {
		size_t lo = 0, hi = nin;
		bool known = false;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(b->m[in[mid]].base, e[i].base);
			if (c == 0) {
				found[mid] = known = true;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (known)
			continue;
		if (nnew == SYNC_NEW_MAX)
			break;        /* many: a full listing does it better */
		/* a base the box has in cur/ is not a new message either */
		for (size_t k = 0; !known && k < b->n; k++)
			known = strcmp(b->m[k].base, e[i].base) == 0;
		if (known)
			continue;
		e[i].mtime = entry_mtime(dfd_new, e[i].name);
		arr[nnew].i = i;
		arr[nnew].t = e[i].mtime;
		arr[nnew].name = e[i].name;
		nnew++;
	}
	if (dfd_new >= 0)
		close(dfd_new);
	int rc = 0;
	if (nnew == SYNC_NEW_MAX) {
		unlock_uidlist(b, &lk);
		rc = 1;
		goto out;
	}
	qsort(arr, nnew, sizeof(*arr), cmp_arrival);
	/* their UIDs go into the uidlist first: then the box may show them */
	struct buf rec;
	buf_init(&rec);
	uint32_t next = b->uidnext;
	for (size_t k = 0; k < nnew; k++)
		buf_printf(&rec, "%u :%s\n", next++, e[arr[k].i].base);
	if (nnew && append_records(b, &lk, ulp, &rec, err) != 0)
		rc = -1;
	else if (!nnew) {
		buf_clear(&rec);
		unlock_uidlist(b, &lk);
	}
	if (rc == 0) {
		/* files gone from new/ (deleted: a move to cur/ changes cur/) */
		size_t w = 0, g = 0;
		bool *gone = xcalloc(b->n + 1, sizeof(bool));
		for (size_t k = 0; k < nin; k++)
			if (!found[k])
				gone[in[k]] = true;
		for (size_t i = 0; i < b->n; i++) {
			if (gone[i]) {
				record_expunge(b, &b->m[i]);
				msg_clear(&b->m[i]);
				g++;
				continue;
			}
			b->m[w++] = b->m[i];
		}
		b->n = w;
		free(gone);
		if (b->n + nnew > b->cap) {
			b->cap = b->n + nnew + 64;
			b->m = xreallocarray(b->m, b->cap, sizeof(*b->m));
		}
		for (size_t k = 0; k < nnew; k++) {
			struct entry *x = &e[arr[k].i];
			struct mbox_msg *m = &b->m[b->n++];
			memset(m, 0, sizeof(*m));
			m->uid = b->uidnext++;
			m->base = x->base;
			m->fname = x->name;
			x->base = x->name = NULL;
			m->in_new = true;
			info_flags(m->fname, &m->flags, &m->kw);
			m->internaldate = x->mtime / 1000000000;
			m->vsize = name_vsize(m->base);
			m->recent = true;
			m->savedate = (int64_t)time(NULL);
			m->modseq = ++b->modseq;
		}
		if (nnew || g)
			*changed = true;
		/* a selected folder's new/ goes to cur/, as a full sync does */
		bool moved = false;
		for (size_t i = 0; move_new && i < b->n; i++) {
			struct mbox_msg *m = &b->m[i];
			char *nn = m->in_new ? move_to_cur(b, dnew, dcur,
			    m->fname) : NULL;
			if (nn == NULL)
				continue;
			free(m->fname);
			m->fname = nn;
			m->in_new = false;
			m->dirty = b->dirty = true;
			moved = true;
		}
		int64_t sn = moved || nnew ? mtime_ns(dnew) : mn;
		int64_t sc = moved ? mtime_ns(dcur) : b->seen_cur;
		int64_t su = nnew ? mtime_ns(ulp) : b->seen_ul;
		if (sn != b->seen_new || sc != b->seen_cur || su != b->seen_ul)
			b->seen_changed = true;
		b->seen_new = sn;
		b->seen_cur = sc;
		b->seen_ul = su;
	}
out:
	entries_free(e, ne);
	free(arr);
	free(found);
	free(in);
	return rc;
}

int
mbox_sync(struct mbox *b, const char *root, bool move_new, bool *changed,
    struct tern_err *err)
{
	char dnew[4096], dcur[4096], ulp[4096];
	struct entry *e = NULL;
	size_t ne = 0, cape = 0;
	struct uidlist ul;
	struct ul_lock lk = { -1, -1 };

	*changed = false;
	if (str_fmt(dnew, sizeof(dnew), "%s/new", b->path) != 0 ||
	    str_fmt(dcur, sizeof(dcur), "%s/cur", b->path) != 0 ||
	    str_fmt(ulp, sizeof(ulp), "%s/" UIDLIST, b->path) != 0) {
		tern_err_set(err, 451, "4.3.0", "path too long");
		return -1;
	}
	int64_t mn = mtime_ns(dnew), mc = mtime_ns(dcur), mu = mtime_ns(ulp);
	if (b->synced && !b->force_sync && mc == b->seen_cur &&
	    mu == b->seen_ul && mc >= 0) {
		if (mn == b->seen_new && !b->list_new)
			return 0;     /* nothing touched the folder */
		/* only new/ (a delivery, a file dropped in) */
		b->list_new = false;
		int r = sync_new(b, move_new, changed, err);
		if (r != 1)
			return r;
	}
	b->force_sync = false;
	b->list_new = false;
	if (mc < 0) {
		errno = ENOENT;
		fail_errno(err, "no folder", b->path);
		return -1;
	}
	if (lock_uidlist(b, &lk, err) != 0)
		return -1;
	bool fresh = load_uidlist(b, root, &ul);
	/* another writer (a COPY's private view of this folder, Dovecot)
	 * may have added keywords: names only grow, so read them again */
	char kwp[4096];
	if (b->kw_loaded && str_fmt(kwp, sizeof(kwp), "%s/" KEYWORDS,
	    b->path) == 0 && mtime_ns(kwp) != b->kw_mtime)
		b->kw_loaded = false;
	mbox_load_keywords(b);
	if (b->preloaded && !fresh && ul.uidvalidity != b->uidvalidity) {
		/* the index knew another numbering: none of it holds */
		for (size_t i = 0; i < b->n; i++)
			msg_clear(&b->m[i]);
		b->n = 0;
	}
	b->preloaded = false;
	if (list_dir(dcur, false, &e, &ne, &cape) != 0 ||
	    list_dir(dnew, true, &e, &ne, &cape) != 0) {
		fail_errno(err, "readdir", b->path);
		unlock_uidlist(b, &lk);
		uidlist_clear(&ul);
		entries_free(e, ne);
		return -1;
	}
	if (ne > 1)
		qsort(e, ne, sizeof(*e), cmp_entry);
	/* the uidlist's records by name, to find files again */
	struct rec_name *rn = xcalloc(ul.n + 1, sizeof(*rn));
	for (size_t i = 0; i < ul.n; i++) {
		rn[i].name = ul.recs[i].name;
		rn[i].idx = i;
	}
	qsort(rn, ul.n, sizeof(*rn), cmp_rec_name);
	bool *seen_rec = xcalloc(ul.n + 1, sizeof(bool));
	uint32_t *uid_of = xcalloc(ne + 1, sizeof(uint32_t));
	size_t a = 0;
	for (size_t i = 0; i < ne; i++) {
		while (a < ul.n && strcmp(rn[a].name, e[i].base) < 0)
			a++;
		if (a < ul.n && strcmp(rn[a].name, e[i].base) == 0 &&
		    !seen_rec[rn[a].idx]) {
			uid_of[i] = ul.recs[rn[a].idx].uid;
			seen_rec[rn[a].idx] = true;
		}
	}
	free(rn);
	bool ul_changed = fresh;   /* a new UIDVALIDITY is kept from now */
	/*
	 * A UID is never given twice: the next one is fixed before records
	 * of vanished files go (Dovecot leaves N behind and keeps an
	 * expunged message's record until it rewrites the file). N behind
	 * the last record alone is no reason to write the file: appended
	 * records (Dovecot's, and ours) leave it so, and max(N, last + 1)
	 * holds while the records stay.
	 */
	if (ul.next_uid < uidlist_next_uid(&ul))
		ul.next_uid = uidlist_next_uid(&ul);
	/* records whose file is gone */
	size_t w = 0;
	for (size_t i = 0; i < ul.n; i++) {
		if (seen_rec[i]) {
			ul.recs[w++] = ul.recs[i];
			continue;
		}
		free(ul.recs[i].name);
		free(ul.recs[i].fields);
		ul_changed = true;
	}
	ul.n = w;
	free(seen_rec);
	/*
	 * New files: the next UIDs in arrival order, by the files' mtimes
	 * (names do not sort by time: the microseconds are not padded),
	 * then by name.
	 */
	size_t nnew = 0;
	struct arrival *arr = xcalloc(ne + 1, sizeof(*arr));
	int dfd_new = open(dnew, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dfd_cur = open(dcur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < ne; i++) {
		if (uid_of[i])
			continue;
		arr[nnew].i = i;
		arr[nnew].name = e[i].name;
		e[i].mtime = entry_mtime(e[i].in_new ? dfd_new : dfd_cur,
		    e[i].name);
		arr[nnew].t = e[i].mtime;
		nnew++;
	}
	qsort(arr, nnew, sizeof(*arr), cmp_arrival);
	for (size_t k = 0; k < nnew; k++) {
		size_t i = arr[k].i;
		uint32_t uid = uidlist_next_uid(&ul);
		uidlist_add(&ul, uid, e[i].base, NULL);
		uid_of[i] = uid;
		ul_changed = true;
	}
	free(arr);
	/* new/ -> cur/ (Dovecot does it too when a folder is opened) */
	bool touched = ul_changed || ul.version != 3;
	time_t locked_at = time(NULL);
	if (move_new)
		for (size_t i = 0; i < ne; i++) {
			if (!e[i].in_new)
				continue;
			/* a long move: the lock is not left to look stale */
			if ((i & 1023) == 0)
				lock_refresh(&lk, &locked_at);
			char *nn = move_to_cur(b, dnew, dcur, e[i].name);
			if (nn == NULL)
				continue;
			free(e[i].name);
			e[i].name = nn;
			e[i].in_new = false;
			touched = true;
		}
	if (ul_changed || ul.version != 3) {
		if (commit_uidlist(b, &lk, &ul, err) != 0)
			goto fail;
	} else
		unlock_uidlist(b, &lk);
	b->uidvalidity = ul.uidvalidity;
	b->uidnext = uidlist_next_uid(&ul);
	memcpy(b->guid, ul.guid, sizeof(b->guid));

	/* the new message list, in uid order, against the old one */
	struct mbox_msg *m = xcalloc(ne + 1, sizeof(*m));
	for (size_t i = 0; i < ne; i++) {
		m[i].uid = uid_of[i];
		m[i].base = e[i].base;
		m[i].fname = e[i].name;
		m[i].in_new = e[i].in_new;
		m[i].internaldate = e[i].mtime / 1000000000;   /* 0: unknown */
		info_flags(e[i].name, &m[i].flags, &m[i].kw);
		e[i].base = e[i].name = NULL;
	}
	/* by uid (the files were in name order) */
	qsort(m, ne, sizeof(*m), cmp_msg_uid);
	size_t o = 0;
	for (size_t i = 0; i < ne; i++) {
		while (o < b->n && b->m[o].uid < m[i].uid) {
			record_expunge(b, &b->m[o]);
			*changed = true;
			o++;
		}
		if (o < b->n && b->m[o].uid == m[i].uid) {
			const struct mbox_msg *old = &b->m[o];
			m[i].internaldate = old->internaldate;
			m[i].savedate = old->savedate;
			m[i].vsize = old->vsize;
			m[i].recent = old->recent;
			/* what was read from the file stays with it */
			m[i].keys = old->keys;
			m[i].envelope = old->envelope;
			m[i].structure = old->structure;
			m[i].body = old->body;
			m[i].cache_dirty = old->cache_dirty;
			m[i].cache_tried = old->cache_tried;
			m[i].in_fts = old->in_fts;
			if (m[i].cache_dirty)
				b->dirty = true;
			((struct mbox_msg *)old)->keys = NULL;
			((struct mbox_msg *)old)->envelope = NULL;
			((struct mbox_msg *)old)->structure = NULL;
			((struct mbox_msg *)old)->body = NULL;
			m[i].modseq = old->modseq;
			/* the index keeps file names: a new one is written */
			if (old->dirty || old->in_new != m[i].in_new ||
			    old->fname == NULL ||
			    strcmp(old->fname, m[i].fname) != 0)
				m[i].dirty = b->dirty = true;
			if (old->flags != m[i].flags || old->kw != m[i].kw) {
				m[i].modseq = ++b->modseq;
				note_change(b, m[i].uid);
				*changed = true;
			}
			o++;
			continue;
		}
		/* new to us */
		if (m[i].internaldate == 0)
			m[i].internaldate = entry_mtime(m[i].in_new ? dfd_new :
			    dfd_cur, m[i].fname) / 1000000000;
		m[i].vsize = name_vsize(m[i].base);
		m[i].recent = b->synced;
		/* SAVEDATE: now for what arrives while the folder is open;
		 * what was there before anyone looked came at its mtime */
		m[i].savedate = b->synced ? (int64_t)time(NULL) :
		    m[i].internaldate;
		m[i].modseq = ++b->modseq;
		*changed = true;
	}
	while (o < b->n) {
		record_expunge(b, &b->m[o]);
		*changed = true;
		o++;
	}
	for (size_t i = 0; i < b->n; i++)
		msg_clear(&b->m[i]);
	free(b->m);
	b->m = m;
	b->n = b->cap = ne;
	if (!b->synced)
		*changed = true;
	b->synced = true;
	/*
	 * What the next sync compares with. After changes of our own the
	 * directories' times are read again (else every sync would be
	 * followed by one more); without any, the times from before the
	 * listing, so that a file another program dropped while we listed
	 * is found by the next sync (its times then differ).
	 */
	int64_t sn = mn, sc = mc, su = mu;
	if (touched) {
		sn = mtime_ns(dnew);
		sc = mtime_ns(dcur);
		su = mtime_ns(ulp);
	}
	if (sn != b->seen_new || sc != b->seen_cur || su != b->seen_ul)
		b->seen_changed = true;
	b->seen_new = sn;
	b->seen_cur = sc;
	b->seen_ul = su;
	free(uid_of);
	free(e);
	uidlist_clear(&ul);
	if (dfd_new >= 0)
		close(dfd_new);
	if (dfd_cur >= 0)
		close(dfd_cur);
	return 0;
fail:
	if (dfd_new >= 0)
		close(dfd_new);
	if (dfd_cur >= 0)
		close(dfd_cur);
	entries_free(e, ne);
	free(uid_of);
	uidlist_clear(&ul);
	unlock_uidlist(b, &lk);
	return -1;
}

/* --- changes ----------------------------------------------------------- */

int
mbox_set_flags(struct mbox *b, size_t i, uint8_t flags, uint32_t kw,
    struct tern_err *err)
{
	struct mbox_msg *m = &b->m[i];
	char letters[40], from[4096], to[4096], *name;

	if (m->flags == flags && m->kw == kw && !m->in_new)
		return 0;
	mbox_flag_letters(flags, kw, letters, sizeof(letters));
	name = xasprintf("%s:2,%s", m->base, letters);
	if (str_fmt(from, sizeof(from), "%s/%s/%s", b->path, m->in_new ? "new" :
	    "cur", m->fname) != 0 || str_fmt(to, sizeof(to), "%s/cur/%s",
	    b->path, name) != 0) {
		free(name);
		tern_err_set(err, 451, "4.3.0", "path too long");
		return -1;
	}
	/* in step with cur/ before: still so after our own rename */
	char dcur[4096];
	(void)str_fmt(dcur, sizeof(dcur), "%s/cur", b->path);
	bool in_step = b->synced && mtime_ns(dcur) == b->seen_cur;
	if (own_rename(b, from, m->in_new, to) != 0) {
		fail_errno(err, "rename", from);
		free(name);
		return -1;
	}
	if (in_step)
		b->seen_cur = mtime_ns(dcur);
	free(m->fname);
	m->fname = name;
	m->in_new = false;
	m->flags = flags;
	m->kw = kw;
	m->modseq = ++b->modseq;
	note_change(b, m->uid);
	return 0;
}

static unsigned long name_seq;

/* Writes data into tmp/ durably; the unique base name in *base. */
static int
write_tmp(const char *dir, const char *data, size_t len, char **base,
    char *tmp, size_t tmpsz, struct tern_err *err)
{
	char host[256];
	struct timeval tv;
	int fd = -1;

	if (gethostname(host, sizeof(host)) != 0)
		(void)str_copy(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	uint64_t vsize = mime_crlf_size(data, len);
	for (int tries = 0; tries < 100 && fd < 0; tries++) {
		gettimeofday(&tv, NULL);
		free(*base);
		*base = xasprintf("%lld.M%ldP%ldQ%lu.%s,S=%zu,W=%llu",
		    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
		    __atomic_add_fetch(&name_seq, 1, __ATOMIC_RELAXED), host,
		    len, (unsigned long long)vsize);
		if (str_fmt(tmp, tmpsz, "%s/tmp/%s", dir, *base) != 0) {
			tern_err_set(err, 451, "4.3.0", "path too long");
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			fail_errno(err, "create", tmp);
			return -1;
		}
	}
	if (fd < 0) {
		fail_errno(err, "create", tmp);
		return -1;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fail_errno(err, "write", tmp);
			close(fd);
			(void)unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fail_errno(err, "fsync", tmp);
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

int
mbox_stage(const char *path, const char *data, size_t len,
    int64_t internaldate, char **base, char *tmp, size_t tmpsz,
    struct tern_err *err)
{
	*base = NULL;
	if (write_tmp(path, data, len, base, tmp, tmpsz, err) != 0) {
		free(*base);
		*base = NULL;
		return -1;
	}
	if (internaldate > 0) {
		struct timespec ts[2] = { { (time_t)internaldate, 0 },
			{ (time_t)internaldate, 0 } };
		(void)utimensat(AT_FDCWD, tmp, ts, 0);
	}
	return 0;
}

void
mbox_unstage(const char *tmp)
{
	(void)unlink(tmp);
}

int
mbox_commit_staged(struct mbox *b, const char *root, struct mbox_staged *st,
    size_t n, struct tern_err *err)
{
	char dcur[4096], ulp[4096];
	bool changed;
	struct uidlist ul;
	struct ul_lock lk = { -1, -1 };
	size_t moved = 0;

	(void)str_fmt(dcur, sizeof(dcur), "%s/cur", b->path);
	(void)str_fmt(ulp, sizeof(ulp), "%s/" UIDLIST, b->path);
	if (mbox_sync(b, root, false, &changed, err) != 0 ||
	    lock_uidlist(b, &lk, err) != 0)
		goto fail;
	/*
	 * The uidlist as the sync left it (its time says nobody wrote it
	 * since): the new lines are appended, as Dovecot appends them,
	 * rather than the whole file written again.
	 */
	int64_t ul_t = mtime_ns(ulp);
	bool append = b->synced && ul_t > 0 && ul_t == b->seen_ul &&
	    b->uidnext > 0 && ends_in_newline(ulp);
	if (append)
		uidlist_init(&ul);
	else
		load_uidlist(b, root, &ul);
	for (size_t i = 0; i < n; i++) {
		char letters[40], final[4096];
		mbox_flag_letters(st[i].flags, st[i].kw, letters,
		    sizeof(letters));
		st[i].fname = xasprintf("%s:2,%s", st[i].base, letters);
		(void)str_fmt(final, sizeof(final), "%s/%s", dcur, st[i].fname);
		own_expect(b, OWN_CUR, 1);
		if (rename(st[i].tmp, final) != 0) {
			own_cancel(b, OWN_CUR, 1);
			fail_errno(&st[i].err, "rename", final);
			st[i].rc = -1;
			(void)unlink(st[i].tmp);
			continue;
		}
		moved++;
	}
	/* one directory fsync for all, then their UIDs in one uidlist */
	if (moved && deliver_fsync_dir(dcur) != 0) {
		fail_errno(err, "fsync", dcur);
		uidlist_clear(&ul);
		unlock_uidlist(b, &lk);
		goto undo;
	}
	uint32_t next = b->uidnext;
	for (size_t i = 0; i < n; i++)
		if (st[i].rc == 0) {
			st[i].uid = append ? next++ : uidlist_next_uid(&ul);
			if (!append)
				uidlist_add(&ul, st[i].uid, st[i].base, NULL);
		}
	if (moved && (append ? append_uidlist(b, &lk, ulp, st, n, err) :
	    commit_uidlist(b, &lk, &ul, err)) != 0) {
		/* the files stay: the next sync gives them UIDs */
		uidlist_clear(&ul);
		for (size_t i = 0; i < n; i++)
			if (st[i].rc == 0) {
				st[i].rc = -1;
				st[i].uid = 0;
			}
		return -1;
	}
	if (!moved)
		unlock_uidlist(b, &lk);
	if (append)
		b->uidnext = next;
	else {
		b->uidvalidity = ul.uidvalidity;
		b->uidnext = uidlist_next_uid(&ul);
	}
	uidlist_clear(&ul);
	/*
	 * The box was in step before (the sync above) and knows what this
	 * changed: the next sync need not list the folder again. A change
	 * by another program in between is not lost: inotify tells the
	 * store, whose sync then lists whatever the times say.
	 */
	b->seen_cur = mtime_ns(dcur);
	b->seen_ul = mtime_ns(ulp);
	/* in memory at once, so the sessions see them without a rescan */
	for (size_t i = 0; i < n; i++) {
		if (st[i].rc != 0)
			continue;
		if (b->n == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 64;
			b->m = xreallocarray(b->m, b->cap, sizeof(*b->m));
		}
		struct mbox_msg *m = &b->m[b->n++];
		memset(m, 0, sizeof(*m));
		m->uid = st[i].uid;
		m->base = xstrdup(st[i].base);
		m->fname = st[i].fname;
		st[i].fname = NULL;
		m->flags = st[i].flags;
		m->kw = st[i].kw;
		m->vsize = name_vsize(m->base);
		m->internaldate = st[i].internaldate > 0 ? st[i].internaldate :
		    time(NULL);
		m->savedate = (int64_t)time(NULL);
		m->modseq = ++b->modseq;
		m->recent = true;
	}
	return 0;
undo:
	for (size_t i = 0; i < n; i++)
		if (st[i].rc == 0 && st[i].fname) {
			char final[4096];
			if (str_fmt(final, sizeof(final), "%s/%s", dcur,
			    st[i].fname) == 0)
				(void)unlink(final);
		}
fail:
	for (size_t i = 0; i < n; i++) {
		if (st[i].rc == 0) {
			st[i].rc = -1;
			st[i].err = *err;
			(void)unlink(st[i].tmp);
		}
	}
	return -1;
}

int
mbox_append(struct mbox *b, const char *root, const char *data, size_t len,
    uint8_t flags, uint32_t kw, int64_t internaldate, uint32_t *uid,
    struct tern_err *err)
{
	char tmp[4096];
	struct mbox_staged st;

	memset(&st, 0, sizeof(st));
	if (mbox_stage(b->path, data, len, internaldate, &st.base, tmp,
	    sizeof(tmp), err) != 0)
		return -1;
	st.tmp = tmp;
	st.flags = flags;
	st.kw = kw;
	st.internaldate = internaldate;
	int rc = mbox_commit_staged(b, root, &st, 1, err);
	if (rc == 0 && st.rc != 0) {
		*err = st.err;
		rc = -1;
	}
	*uid = st.uid;
	free(st.base);
	free(st.fname);
	return rc;
}

int
mbox_copy(struct mbox *src, const size_t *idx, size_t n, struct mbox *dst,
    const char *root, uint32_t *uids, struct tern_err *err)
{
	bool changed;
	struct uidlist ul;
	char dcur[4096];
	struct ul_lock lk = { -1, -1 };
	bool kwsave = false;

	if (mbox_sync(dst, root, false, &changed, err) != 0)
		return -1;
	char **names = xcalloc(n + 1, sizeof(char *));
	char **bases = xcalloc(n + 1, sizeof(char *));
	size_t done = 0;
	(void)str_fmt(dcur, sizeof(dcur), "%s/cur", dst->path);
	for (; done < n; done++) {
		const struct mbox_msg *m = &src->m[idx[done]];
		uint32_t kw = 0;
		for (int k = 0; k < KEYWORDS_MAX; k++)
			if ((m->kw & (1u << k)) && src->kw.names[k]) {
				int j = keywords_add(&dst->kw, src->kw.names[k]);
				if (j >= 0) {
					kw |= 1u << j;
					kwsave = true;
				}
			}
		char letters[40], from[4096], to[4096];
		mbox_flag_letters(m->flags, kw, letters, sizeof(letters));
		bases[done] = xstrdup(m->base);
		names[done] = xasprintf("%s:2,%s", m->base, letters);
		(void)str_fmt(from, sizeof(from), "%s/%s/%s", src->path,
		    m->in_new ? "new" : "cur", m->fname);
		(void)str_fmt(to, sizeof(to), "%s/%s", dcur, names[done]);
		if (link(from, to) == 0)
			continue;
		if (errno != EEXIST && errno != EXDEV && errno != EPERM) {
			fail_errno(err, "link", to);
			break;
		}
		/* the same message is there already, or no hard links: a
		 * new file with its own name */
		struct buf data;
		buf_init(&data);
		char tmp[4096];
		char *base = NULL;
		if (read_file(from, &data, SIZE_MAX) != 0 ||
		    write_tmp(dst->path, data.data ? data.data : "", data.len, &base,
		    tmp, sizeof(tmp), err) != 0) {
			if (err->text[0] == '\0')
				fail_errno(err, "read", from);
			buf_clear(&data);
			free(base);
			break;
		}
		buf_clear(&data);
		free(bases[done]);
		free(names[done]);
		bases[done] = base;
		names[done] = xasprintf("%s:2,%s", base, letters);
		(void)str_fmt(to, sizeof(to), "%s/%s", dcur, names[done]);
		if (rename(tmp, to) != 0) {
			fail_errno(err, "rename", to);
			(void)unlink(tmp);
			break;
		}
	}
	if (done < n)
		goto undo;
	if (kwsave && mbox_save_keywords(dst, err) != 0)
		goto undo;
	if (deliver_fsync_dir(dcur) != 0) {
		fail_errno(err, "fsync", dcur);
		goto undo;
	}
	if (lock_uidlist(dst, &lk, err) != 0)
		goto undo;
	load_uidlist(dst, root, &ul);
	for (size_t i = 0; i < n; i++) {
		uids[i] = uidlist_next_uid(&ul);
		uidlist_add(&ul, uids[i], bases[i], NULL);
	}
	if (commit_uidlist(dst, &lk, &ul, err) != 0) {
		uidlist_clear(&ul);
		goto undo;
	}
	dst->uidvalidity = ul.uidvalidity;
	uidlist_clear(&ul);
	for (size_t i = 0; i < n; i++) {
		free(bases[i]);
		free(names[i]);
	}
	free(bases);
	free(names);
	/* dst learns its new messages at its next sync */
	dst->seen_cur = -2;
	return 0;
undo:
	for (size_t i = 0; i < n; i++) {
		if (i < done && names[i]) {
			char to[4096];
			if (str_fmt(to, sizeof(to), "%s/%s", dcur, names[i]) == 0)
				(void)unlink(to);
		}
		free(bases[i]);
		free(names[i]);
	}
	free(bases);
	free(names);
	return -1;
}

/* The path of message i's file, or -1 with 451 in err. */
static int
msg_path(const struct mbox *b, size_t i, char *path, size_t sz,
    struct tern_err *err)
{
	const struct mbox_msg *m = &b->m[i];

	if (str_fmt(path, sz, "%s/%s/%s", b->path, m->in_new ? "new" : "cur",
	    m->fname) != 0) {
		tern_err_set(err, 451, "4.3.0", "path too long");
		return -1;
	}
	return 0;
}

int
mbox_remove(struct mbox *b, size_t i, struct tern_err *err)
{
	char path[4096];

	if (msg_path(b, i, path, sizeof(path), err) != 0)
		return -1;
	int dir = b->m[i].in_new ? OWN_NEW : OWN_CUR;
	own_expect(b, dir, 1);
	if (unlink(path) != 0) {
		own_cancel(b, dir, 1);
		if (errno != ENOENT) {
			fail_errno(err, "unlink", path);
			return -1;
		}
	}
	return 0;
}

static int
read_msg(const struct mbox *b, size_t i, struct buf *out, size_t max,
    bool cut, struct tern_err *err)
{
	char path[4096];

	if (msg_path(b, i, path, sizeof(path), err) != 0)
		return -1;
	if (read_file_part(path, out, max, cut) != 0) {
		fail_errno(err, "read", path);
		return -1;
	}
	return 0;
}

int
mbox_read(const struct mbox *b, size_t i, struct buf *out, size_t max,
    struct tern_err *err)
{
	return read_msg(b, i, out, max, false, err);
}

int
mbox_read_head(const struct mbox *b, size_t i, struct buf *out, size_t max,
    struct tern_err *err)
{
	return read_msg(b, i, out, max, true, err);
}

void
mbox_id(const struct mbox *b, char out[MBOX_ID_LEN])
{
	if (b->guid[0])
		(void)snprintf(out, MBOX_ID_LEN, "F%s", b->guid);
	else
		(void)snprintf(out, MBOX_ID_LEN, "F%08x", b->uidvalidity);
}

const struct sort_keys *
mbox_sort_keys(struct mbox *mb, size_t i)
{
	struct mbox_msg *m = &mb->m[i];

	if (m->keys == NULL) {
		struct buf h;
		struct tern_err err;
		buf_init(&h);
		memset(&err, 0, sizeof(err));
		m->keys = xcalloc(1, sizeof(*m->keys));
		const char *t = "";
		size_t hl = 0;
		bool read = mbox_read_head(mb, i, &h, 64 * 1024, &err) == 0;
		if (read && h.data) {
			t = h.data;
			hl = message_header_len(t, h.len);
		}
		sort_keys_parse(t, hl, m->keys);
		buf_clear(&h);
		if (read) {    /* the index keeps them (not what a failure gave) */
			mbox_cache_learnt(mb, m);
			if (mb->keys_read)
				mb->keys_read(mb->keys_arg, mb, i);
		}
	}
	return m->keys;
}
