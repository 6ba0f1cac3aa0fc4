/* SPDX-License-Identifier: ISC */
/*
 * quota.c - layer 2: how much of their quota an account uses (quota.h).
 * Counted from the Maildir++ tree itself, the way Maildir++ quotas count
 * (the S= size in a file's name, else the file's size), kept for
 * QUOTA_TTL seconds and moved along by what ternd itself adds, so that
 * a delivery costs a count only now and then. Blocking (I/O workers);
 * the cache has its own lock.
 */
#include "store/quota.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUOTA_TTL 30
#define QUOTA_PEEK_TTL 600     /* what RCPT may go by, never counting */
#define QUOTA_SLOTS 256

struct slot {
	char *root;
	struct quota_use use;
	time_t counted;
	time_t used;              /* for replacing the least recent */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[QUOTA_SLOTS];

void
quota_root(const char *maildir, char *out, size_t outsz)
{
	const char *slash = strrchr(maildir, '/');

	(void)str_copy(out, outsz, maildir);
	if (slash && slash[1] == '.' && (size_t)(slash - maildir) < outsz)
		out[slash - maildir] = '\0';   /* root/.Folder -> root */
}

static void
count_dir(const char *dir, struct quota_use *u)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		const char *s = strstr(de->d_name, ",S=");
		uint64_t size = 0;
		if (s)
			size = strtoull(s + 3, NULL, 10);
		else {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
				size = (uint64_t)st.st_size;
		}
		u->bytes += size;
		u->messages++;
	}
	closedir(d);
}

static void
count_folder(const char *path, struct quota_use *u)
{
	char sub[4096];

	if (str_fmt(sub, sizeof(sub), "%s/cur", path) == 0)
		count_dir(sub, u);
	if (str_fmt(sub, sizeof(sub), "%s/new", path) == 0)
		count_dir(sub, u);
}

static void
count(const char *root, struct quota_use *u)
{
	DIR *d = opendir(root);
	struct dirent *de;

	memset(u, 0, sizeof(*u));
	count_folder(root, u);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		if (de->d_name[0] != '.' || de->d_name[1] == '\0' ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (str_fmt(path, sizeof(path), "%s/%s", root, de->d_name) == 0)
			count_folder(path, u);
	}
	closedir(d);
}

static struct slot *
find(const char *root, bool make, time_t now)
{
	struct slot *old = &slots[0];

	for (size_t i = 0; i < QUOTA_SLOTS; i++) {
		if (slots[i].root && strcmp(slots[i].root, root) == 0) {
			slots[i].used = now;
			return &slots[i];
		}
		if (slots[i].root == NULL || slots[i].used < old->used)
			old = &slots[i];
	}
	if (!make)
		return NULL;
	free(old->root);
	memset(old, 0, sizeof(*old));
	old->root = xstrdup(root);
	old->used = now;
	return old;
}

void
quota_use(const char *root, struct quota_use *u)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&mu);
	struct slot *s = find(root, false, now);
	if (s && now - s->counted < QUOTA_TTL) {
		*u = s->use;
		pthread_mutex_unlock(&mu);
		return;
	}
	pthread_mutex_unlock(&mu);
	/* counted outside the lock: others' accounts do not wait for it */
	count(root, u);
	pthread_mutex_lock(&mu);
	s = find(root, true, now);
	s->use = *u;
	s->counted = now;
	pthread_mutex_unlock(&mu);
}

int
quota_peek(const char *root, struct quota_use *u)
{
	time_t now = time(NULL);
	int rc = -1;

	pthread_mutex_lock(&mu);
	struct slot *s = find(root, false, now);
	if (s && now - s->counted < QUOTA_PEEK_TTL) {
		*u = s->use;
		rc = 0;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void
quota_add(const char *root, int64_t bytes, int64_t messages)
{
	pthread_mutex_lock(&mu);
	struct slot *s = find(root, false, time(NULL));
	if (s) {
		s->use.bytes = (int64_t)s->use.bytes + bytes < 0 ? 0 :
		    (uint64_t)((int64_t)s->use.bytes + bytes);
		s->use.messages = (int64_t)s->use.messages + messages < 0 ? 0 :
		    (uint64_t)((int64_t)s->use.messages + messages);
	}
	pthread_mutex_unlock(&mu);
}

void
quota_forget(const char *root)
{
	pthread_mutex_lock(&mu);
	struct slot *s = find(root, false, time(NULL));
	if (s)
		s->counted = 0;
	pthread_mutex_unlock(&mu);
}

int
quota_check(const char *root, uint64_t max_bytes, uint64_t max_messages,
    uint64_t adding, struct tern_err *err)
{
	struct quota_use u;

	if (max_bytes == 0 && max_messages == 0)
		return 0;
	quota_use(root, &u);
	if ((max_bytes && u.bytes + adding > max_bytes) ||
	    (max_messages && u.messages + 1 > max_messages)) {
		tern_err_set(err, 452, "4.2.2", "mailbox full (quota: %llu of "
		    "%llu KiB, %llu of %llu messages)",
		    (unsigned long long)(u.bytes / 1024),
		    (unsigned long long)(max_bytes / 1024),
		    (unsigned long long)u.messages,
		    (unsigned long long)max_messages);
		err->temp = true;
		return -1;
	}
	return 0;
}
