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
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/util.h"

struct dirsync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;
	uint64_t issued;
	uint64_t synced;
	bool busy;
};

struct dirsync *
dirsync_new(int dirfd)
{
	struct dirsync *ds = xcalloc(1, sizeof(*ds));

	pthread_mutex_init(&ds->lock, NULL);
	pthread_cond_init(&ds->cond, NULL);
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

int
dirsync_after_rename(struct dirsync *ds)
{
	uint64_t ticket, target;
	int rc = 0, saved = 0;

	pthread_mutex_lock(&ds->lock);
	ticket = ++ds->issued;
	while (ds->synced < ticket) {
		if (ds->busy) {
			pthread_cond_wait(&ds->cond, &ds->lock);
			continue;
		}
		ds->busy = true;
		target = ds->issued;
		pthread_mutex_unlock(&ds->lock);
		rc = fsync(ds->fd);
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
