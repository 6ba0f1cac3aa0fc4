/* SPDX-License-Identifier: ISC */
/*
 * blobs.c - layer 2: uploaded blobs on disk (blobs.h).
 * Written as tmp file, fsynced, renamed into place, so a blob is there
 * whole or not at all.
 */
#include "store/blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/tls.h"
#include "store/folders.h"

bool
blob_id_valid(const char *id)
{
	if (id[0] != 'U' || strlen(id) != BLOB_ID_LEN - 1)
		return false;
	for (const char *p = id + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void
set_err(struct tern_err *err, const char *what, const char *path)
{
	tern_err_set(err, 451, "4.3.0", "%s %s: %s", what, path,
	    strerror(errno));
	err->temp = true;
}

/* Uploads nobody touched for a day: gone. */
static void
prune(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[4400];
		struct stat st;
		if (de->d_name[0] == '.' ||
		    str_fmt(p, sizeof(p), "%s/%s", dir, de->d_name) != 0)
			continue;
		if (stat(p, &st) == 0 && now - st.st_mtime > UPLOAD_KEEP_SECS)
			(void)unlink(p);
	}
	closedir(d);
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

int
blob_store(const char *root, const char *data, size_t len, int fd,
    uint64_t fdsize, char id[BLOB_ID_LEN], struct tern_err *err)
{
	char dir[4200], tmp[4300], final[4300];
	unsigned char md[32];
	char chunk[65536];
	struct tls_sha256 *ctx = tls_sha256_new();
	int out = -1, rc = -1;

	(void)str_fmt(dir, sizeof(dir), "%s/" BLOB_DIR, root);
	folders_ensure_root(root);     /* a user who never had mail */
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		set_err(err, "mkdir", dir);
		tls_sha256_final(ctx, md);
		return -1;
	}
	prune(dir);
	(void)str_fmt(tmp, sizeof(tmp), "%s/.tmp.%ld.%lx", dir, (long)getpid(),
	    (unsigned long)(uintptr_t)ctx);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		set_err(err, "create", tmp);
		goto done;
	}
	if (fd < 0) {
		tls_sha256_update(ctx, data, len);
		if (!write_all(out, data, len)) {
			set_err(err, "write", tmp);
			goto done;
		}
	} else
		for (uint64_t off = 0; off < fdsize;) {
			size_t want = fdsize - off < sizeof(chunk) ?
			    (size_t)(fdsize - off) : sizeof(chunk);
			ssize_t r = pread(fd, chunk, want, (off_t)off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0)
				tls_sha256_update(ctx, chunk, (size_t)r);
			if (r <= 0 || !write_all(out, chunk, (size_t)r)) {
				set_err(err, "copy", tmp);
				goto done;
			}
			off += (uint64_t)r;
		}
	tls_sha256_final(ctx, md);
	ctx = NULL;
	if (fsync(out) != 0) {
		set_err(err, "fsync", tmp);
		goto done;
	}
	id[0] = 'U';
	for (unsigned i = 0; i < 16; i++)
		(void)snprintf(id + 1 + 2 * i, 3, "%02x", md[i]);
	(void)str_fmt(final, sizeof(final), "%s/%s", dir, id);
	if (rename(tmp, final) != 0) {
		set_err(err, "rename", final);
		goto done;
	}
	rc = 0;
done:
	if (out >= 0)
		close(out);
	if (rc != 0)
		(void)unlink(tmp);
	if (ctx)
		tls_sha256_final(ctx, md);
	return rc;
}

int
blob_spool_file(const char *dir)
{
	char tmp[4200];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	if (str_fmt(tmp, sizeof(tmp), "%s/.upload.XXXXXX", dir) != 0 ||
	    (fd = mkstemp(tmp)) < 0)
		return -1;
	(void)unlink(tmp);
	return fd;
}

int
blob_read(const char *root, const char *id, struct buf *out, size_t max)
{
	char path[4300];
	char chunk[65536];
	ssize_t r;
	int fd;

	if (!blob_id_valid(id) ||
	    str_fmt(path, sizeof(path), "%s/" BLOB_DIR "/%s", root, id) != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	(void)futimens(fd, NULL);    /* in use: kept another day */
	while ((r = read(fd, chunk, sizeof(chunk))) > 0 || (r < 0 &&
	    errno == EINTR)) {
		if (r < 0)
			continue;
		if (out->len + (size_t)r > max) {
			close(fd);
			return -1;
		}
		buf_append(out, chunk, (size_t)r);
	}
	close(fd);
	return r < 0 ? -1 : 0;
}
