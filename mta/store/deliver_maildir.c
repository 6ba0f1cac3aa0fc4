/* SPDX-License-Identifier: ISC */
/*
 * deliver_maildir.c - layer 2. Maildir delivery as the Maildir rules ask:
 * a unique name (maildir.c), O_EXCL create in tmp/, every write checked,
 * fsync, close checked, rename into new/, fsync of new/. Only after that
 * does the caller mark the recipient done in the queue.
 *
 * Directory fsyncs are shared between concurrent deliveries into the same
 * Maildir (dirsync.c), which is what a burst to one mailbox needs; the
 * table of open new/ directories is bounded and evicts unused entries.
 * A Maildir created on first delivery has each new directory's parent
 * fsynced too, so the Maildir itself survives a crash.
 *
 * Errors are classified here (Postfix's mbox_dsn idea): ENOSPC/EDQUOT ->
 * 452 4.2.2, other I/O errors -> 451 4.3.0, all temporary.
 */
#include "store/deliver_maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/dirsync.h"
#include "base/fdcopy.h"
#include "mail/maildir.h"

#define DIR_TABLE_MAX 1024

struct dir_entry {
	char *path;              /* the Maildir */
	struct dirsync *new_sync;
	unsigned refs;
	struct dir_entry *next;
};

struct deliver_maildir {
	char *host;
	long pid;
	atomic_ullong seq;
	pthread_mutex_t lock;
	struct dir_entry *dirs;
	size_t ndirs;
};

struct deliver_maildir *
deliver_maildir_new(const char *host)
{
	struct deliver_maildir *d = xcalloc(1, sizeof(*d));

	d->host = xstrdup(host);
	d->pid = (long)getpid();
	atomic_init(&d->seq, 0);
	pthread_mutex_init(&d->lock, NULL);
	return d;
}

void
deliver_maildir_free(struct deliver_maildir *d)
{
	struct dir_entry *e, *next;

	if (d == NULL)
		return;
	for (e = d->dirs; e; e = next) {
		next = e->next;
		dirsync_free(e->new_sync);
		free(e->path);
		free(e);
	}
	pthread_mutex_destroy(&d->lock);
	free(d->host);
	free(d);
}

static void
deliver_errno(struct tern_err *err, const char *what, int e)
{
	if (e == ENOSPC || e == EDQUOT)
		tern_err_set(err, 452, "4.2.2", "Mailbox full (%s: %s)", what,
		    strerror(e));
	else
		tern_err_set(err, 451, "4.3.0", "Maildir delivery failed (%s: %s)",
		    what, strerror(e));
}

int
deliver_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* mkdir one level; on creation fsync the parent so the entry is durable */
static int
mkdir_durable(const char *path)
{
	char parent[4096];
	char *slash;

	if (mkdir(path, 0700) != 0)
		return errno == EEXIST ? 0 : -1;
	if (str_copy(parent, sizeof(parent), path) != 0)
		return -1;
	slash = strrchr(parent, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	return deliver_fsync_dir(slash == parent ? "/" : parent);
}

/* mkdir -p path, then path/{cur,new,tmp} */
static int
maildir_create(const char *maildir)
{
	char p[4096];
	static const char *const subs[] = { "tmp", "new", "cur" };

	if (str_copy(p, sizeof(p), maildir) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir_durable(p) != 0)
			return -1;
		*s = '/';
	}
	if (mkdir_durable(p) != 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		char sub[4096];
		if (str_fmt(sub, sizeof(sub), "%s/%s", maildir, subs[i]) != 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (mkdir_durable(sub) != 0)
			return -1;
	}
	return 0;
}

/* The cached new/ directory of a Maildir, referenced; NULL with errno. */
static struct dir_entry *
dir_get(struct deliver_maildir *d, const char *maildir)
{
	struct dir_entry *e, **pp;
	char path[4096];
	int fd;

	pthread_mutex_lock(&d->lock);
	for (e = d->dirs; e; e = e->next)
		if (strcmp(e->path, maildir) == 0) {
			e->refs++;
			pthread_mutex_unlock(&d->lock);
			return e;
		}
	pthread_mutex_unlock(&d->lock);

	if (str_fmt(path, sizeof(path), "%s/new", maildir) != 0) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;

	pthread_mutex_lock(&d->lock);
	/* Another thread may have added it meanwhile. */
	for (e = d->dirs; e; e = e->next)
		if (strcmp(e->path, maildir) == 0) {
			e->refs++;
			pthread_mutex_unlock(&d->lock);
			close(fd);
			return e;
		}
	/* Bounded: drop unused entries once the table is full. */
	if (d->ndirs >= DIR_TABLE_MAX) {
		for (pp = &d->dirs; *pp;) {
			e = *pp;
			if (e->refs == 0) {
				*pp = e->next;
				dirsync_free(e->new_sync);
				free(e->path);
				free(e);
				d->ndirs--;
			} else
				pp = &e->next;
		}
	}
	e = xcalloc(1, sizeof(*e));
	e->path = xstrdup(maildir);
	e->new_sync = dirsync_new(fd);
	e->refs = 1;
	e->next = d->dirs;
	d->dirs = e;
	d->ndirs++;
	pthread_mutex_unlock(&d->lock);
	return e;
}

static void
dir_put(struct deliver_maildir *d, struct dir_entry *e)
{
	pthread_mutex_lock(&d->lock);
	e->refs--;
	pthread_mutex_unlock(&d->lock);
}

static int
write_iov(int fd, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (left > 0) {
			ssize_t n = write(fd, p, left);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			p += n;
			left -= (size_t)n;
		}
	}
	return 0;
}

bool
deliver_maildir_has_tag(const char *maildir, const char *tag)
{
	static const char *const subs[] = { "new", "cur" };
	char path[4096], needle[128];
	bool found = false;

	if (str_fmt(needle, sizeof(needle), "T%s.", tag) != 0)
		return false;
	for (size_t i = 0; i < 2 && !found; i++) {
		DIR *dir;
		struct dirent *de;
		if (str_fmt(path, sizeof(path), "%s/%s", maildir, subs[i]) != 0 ||
		    (dir = opendir(path)) == NULL)
			continue;
		while (!found && (de = readdir(dir)) != NULL)
			found = strstr(de->d_name, needle) != NULL;
		closedir(dir);
	}
	return found;
}

/* a fresh unique name for a file of size octets carrying tag */
static int
new_name(struct deliver_maildir *d, uint64_t size, const char *tag,
    char *name, size_t namesz)
{
	struct maildir_name_parts parts;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	parts.sec = tv.tv_sec;
	parts.usec = tv.tv_usec;
	parts.pid = d->pid;
	parts.seq = atomic_fetch_add(&d->seq, 1);
	parts.host = d->host;
	parts.size = size;
	parts.tag = tag;
	return maildir_unique_name(name, namesz, &parts);
}

int
deliver_maildir_sync(struct deliver_maildir *d, const char *maildir,
    const char *tag, const struct iovec *iov, int iovcnt, char *name_out,
    size_t namesz, struct tern_err *err)
{
	return deliver_maildir_sync_from(d, maildir, tag, iov, iovcnt, -1, 0, 0,
	    name_out, namesz, err);
}

int
deliver_maildir_sync_from(struct deliver_maildir *d, const char *maildir,
    const char *tag, const struct iovec *iov, int iovcnt, int src_fd,
    uint64_t src_off, uint64_t src_len, char *name_out, size_t namesz,
    struct tern_err *err)
{
	struct dir_entry *dir;
	char name[MAILDIR_NAME_MAX + 1], tmp[4096], final[4096];
	uint64_t size = src_fd >= 0 ? src_len : 0;
	int fd = -1, e;

	for (int i = 0; i < iovcnt; i++)
		size += iov[i].iov_len;
	dir = dir_get(d, maildir);
	if (dir == NULL && errno == ENOENT) {
		if (maildir_create(maildir) != 0) {
			deliver_errno(err, "create Maildir", errno);
			return -1;
		}
		dir = dir_get(d, maildir);
	}
	if (dir == NULL) {
		deliver_errno(err, "open Maildir", errno);
		return -1;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		if (new_name(d, size, tag, name, sizeof(name)) != 0 ||
		    str_fmt(tmp, sizeof(tmp), "%s/tmp/%s", maildir, name) != 0 ||
		    str_fmt(final, sizeof(final), "%s/new/%s", maildir,
		    name) != 0) {
			dir_put(d, dir);
			tern_err_set(err, 554, "5.3.5",
			    "Maildir path too long");
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		deliver_errno(err, "create", errno);
		dir_put(d, dir);
		return -1;
	}
	dirsync_begin(dir->new_sync);
	if (write_iov(fd, iov, iovcnt) != 0 || (src_fd >= 0 && fd_copy(fd,
	    src_fd, (off_t)src_off, src_len) != 0) ||
	    dirsync_fsync_file(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		dirsync_abandon(dir->new_sync);
		dir_put(d, dir);
		deliver_errno(err, "write", e);
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, final) != 0) {
		e = errno;
		unlink(tmp);
		dirsync_abandon(dir->new_sync);
		dir_put(d, dir);
		deliver_errno(err, "rename", e);
		return -1;
	}
	if (dirsync_after_rename(dir->new_sync) != 0) {
		e = errno;
		dir_put(d, dir);
		/* In new/ but maybe not durable: report a temporary failure;
		 * a retry may duplicate, never lose. */
		deliver_errno(err, "fsync new/", e);
		return -1;
	}
	dir_put(d, dir);
	(void)str_copy(name_out, namesz, name);
	return 0;
}

/*
 * The linked copies: each into its Maildir's new/ under a name of its
 * own, then each new/ fsynced. The links go first, so that the first
 * fsync commits the journal with all of them in it (ext4: one commit,
 * the rest find their directories committed already).
 */
void
deliver_maildir_link_all(struct deliver_maildir *d, const char *src,
    uint64_t size, size_t n, char *const *maildirs, const char *const *tags,
    char (*names)[MAILDIR_NAME_MAX + 1], bool *ok, struct tern_err *errs)
{
	struct dir_entry **dirs = xcalloc(n, sizeof(*dirs));
	char final[4096];

	for (size_t i = 0; i < n; i++) {
		int rc = -1;
		ok[i] = false;
		memset(&errs[i], 0, sizeof(errs[i]));
		if (maildirs[i] == NULL)
			continue;
		dirs[i] = dir_get(d, maildirs[i]);
		if (dirs[i] == NULL && errno == ENOENT) {
			if (maildir_create(maildirs[i]) != 0) {
				deliver_errno(&errs[i], "create Maildir", errno);
				continue;
			}
			dirs[i] = dir_get(d, maildirs[i]);
		}
		if (dirs[i] == NULL) {
			deliver_errno(&errs[i], "open Maildir", errno);
			continue;
		}
		dirsync_begin(dirs[i]->new_sync);
		for (int attempt = 0; attempt < 5; attempt++) {
			if (new_name(d, size, tags[i], names[i],
			    sizeof(names[i])) != 0 || str_fmt(final, sizeof(final),
			    "%s/new/%s", maildirs[i], names[i]) != 0) {
				errno = ENAMETOOLONG;
				break;
			}
			if ((rc = link(src, final)) == 0 || errno != EEXIST)
				break;
		}
		if (rc != 0) {
			deliver_errno(&errs[i], "link", errno);
			dirsync_abandon(dirs[i]->new_sync);
			dir_put(d, dirs[i]);
			dirs[i] = NULL;
			continue;
		}
		ok[i] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (dirs[i] == NULL)
			continue;
		if (dirsync_after_rename(dirs[i]->new_sync) != 0) {
			/* in new/ but maybe not durable: as above */
			deliver_errno(&errs[i], "fsync new/", errno);
			ok[i] = false;
		}
		dir_put(d, dirs[i]);
	}
	free(dirs);
}
