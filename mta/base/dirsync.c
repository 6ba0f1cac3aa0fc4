/* SPDX-License-Identifier: ISC */
/*
 * dirsync.c - layer 2. Tickets: each caller takes ticket = ++issued after
 * its rename. If no fsync is running, it becomes the syncer: it records
 * target = issued (every rename that had finished by then), runs fsync()
 * without the lock, and publishes synced = target. Callers whose ticket is
 * covered return; the rest wait and one of them runs the next fsync. A
 * failed fsync publishes nothing: the waiters then try their own, so an
 * error is never reported as success (Postfix mail_stream.c's lesson that
 * late failures must reach the client).
 */
#include "base/dirsync.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

struct dirsync {
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* on CLOCK_MONOTONIC */
	int fd;
	uint64_t issued;
	uint64_t synced;
	unsigned inflight;       /* begun, not yet renamed or abandoned */
	bool busy;
};

static atomic_ullong file_fsyncs, dir_fsyncs;

struct dirsync *
dirsync_new(int dirfd)
{
	struct dirsync *ds = xcalloc(1, sizeof(*ds));

	pthread_condattr_t ca;

	pthread_mutex_init(&ds->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ds->cond, &ca);
	pthread_condattr_destroy(&ca);
	ds->fd = dirfd;
	return ds;
}

void
dirsync_free(struct dirsync *ds)
{
	if (ds == NULL)
		return;
	close(ds->fd);
	pthread_cond_destroy(&ds->cond);
	pthread_mutex_destroy(&ds->lock);
	free(ds);
}

int
dirsync_fd(const struct dirsync *ds)
{
	return ds->fd;
}

void
dirsync_begin(struct dirsync *ds)
{
	pthread_mutex_lock(&ds->lock);
	ds->inflight++;
	pthread_mutex_unlock(&ds->lock);
}

void
dirsync_abandon(struct dirsync *ds)
{
	pthread_mutex_lock(&ds->lock);
	if (ds->inflight > 0)
		ds->inflight--;
	pthread_cond_broadcast(&ds->cond);
	pthread_mutex_unlock(&ds->lock);
}

/*
 * The syncer's moment (lock held): while other writes are under way, up
 * to DIRSYNC_WINDOW_US for them to rename (or give up), each of which
 * wakes it. Alone (no load), no wait at all.
 */
static void
group_window(struct dirsync *ds)
{
	struct timespec deadline;

	if (ds->inflight == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += DIRSYNC_WINDOW_US * 1000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (ds->inflight > 0 && pthread_cond_timedwait(&ds->cond,
	    &ds->lock, &deadline) != ETIMEDOUT)
		;
}

int
dirsync_after_rename(struct dirsync *ds)
{
	uint64_t ticket, target;
	int rc = 0, saved = 0;

	pthread_mutex_lock(&ds->lock);
	if (ds->inflight > 0)
		ds->inflight--;
	ticket = ++ds->issued;
	pthread_cond_broadcast(&ds->cond);   /* a syncer may wait for it */
	while (ds->synced < ticket) {
		if (ds->busy) {
			pthread_cond_wait(&ds->cond, &ds->lock);
			continue;
		}
		ds->busy = true;
		group_window(ds);
		target = ds->issued;
		pthread_mutex_unlock(&ds->lock);
		rc = fsync(ds->fd);
		atomic_fetch_add(&dir_fsyncs, 1);
		saved = errno;
		pthread_mutex_lock(&ds->lock);
		ds->busy = false;
		if (rc == 0 && target > ds->synced)
			ds->synced = target;
		pthread_cond_broadcast(&ds->cond);
		if (rc != 0)
			break;
	}
	pthread_mutex_unlock(&ds->lock);
	if (rc != 0) {
		errno = saved;
		return -1;
	}
	return 0;
}

int
dirsync_fsync_file(int fd)
{
	atomic_fetch_add(&file_fsyncs, 1);
	return fsync(fd);
}

void
dirsync_counts(unsigned long long *files, unsigned long long *dirs)
{
	*files = atomic_load(&file_fsyncs);
	*dirs = atomic_load(&dir_fsyncs);
}
