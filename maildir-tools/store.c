/* SPDX-License-Identifier: ISC */
/*
 * store.c - Maildir++ operations for ternmail. Every change is a rename
 * (flags, seen, moves), the one operation the Maildir rules make atomic;
 * new files are written by ternd's deliver_maildir (tmp, fsync, new).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/maildir.h"
#include "store/deliver_maildir.h"

#define TMP_MAX_AGE (36 * 3600)

char *
store_folder_dir(const char *root, const char *folder)
{
	if (folder == NULL || folder[0] == '\0' ||
	    ascii_strcaseeq(folder, "INBOX"))
		return xstrdup(root);
	if (!maildir_folder_valid(folder))
		return NULL;
	return xasprintf("%s/.%s", root, folder);
}

bool
store_is_maildir(const char *dir)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char p[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < 3; i++)
		if (str_fmt(p, sizeof(p), "%s/%s", dir, subs[i]) != 0 ||
		    stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
			return false;
	return true;
}

static int
mkdir_one(const char *p)
{
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
store_create(const char *dir, bool subfolder)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char p[PATH_MAX];

	if (str_copy(p, sizeof(p), dir) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir_one(p) != 0)
				return -1;
			*s = '/';
		}
	if (mkdir_one(p) != 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (str_fmt(p, sizeof(p), "%s/%s", dir, subs[i]) != 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (mkdir_one(p) != 0)
			return -1;
	}
	if (subfolder) {
		int fd;
		if (str_fmt(p, sizeof(p), "%s/maildirfolder", dir) != 0)
			return -1;
		fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return 0;
}

/* "<sec>.M<usec>..." -> sec and usec; 0 if the name has that form */
static int
name_time(const char *name, int64_t *sec, long *usec)
{
	const char *p = name;
	int64_t s = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		s = s * 10 + (*p - '0');
	if (*p != '.' || s <= 0)
		return -1;
	*sec = s;
	*usec = 0;
	if (p[1] == 'M')
		*usec = strtol(p + 2, NULL, 10);
	return 0;
}

static int
entry_fill(struct msg_entry *e, const char *dir, const char *sub,
    const char *name, long *usec)
{
	struct maildir_name_info info;
	struct stat st;

	memset(e, 0, sizeof(*e));
	if (maildir_parse_name(name, &info) != 0)
		return -1;
	e->path = xasprintf("%s/%s/%s", dir, sub, name);
	if (stat(e->path, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(e->path);
		e->path = NULL;
		return -1;
	}
	e->uniq = xstrndup(name, info.unique_len);
	e->is_new = strcmp(sub, "new") == 0;
	memcpy(e->flags, info.flags, sizeof(e->flags));
	if (name_time(name, &e->arrived, usec) != 0) {
		e->arrived = (int64_t)st.st_mtime;
		*usec = 0;
	}
	return 0;
}

struct sortable {
	struct msg_entry e;
	long usec;
};

static int
by_arrival(const void *a, const void *b)
{
	const struct sortable *x = a, *y = b;

	if (x->e.arrived != y->e.arrived)
		return x->e.arrived < y->e.arrived ? -1 : 1;
	if (x->usec != y->usec)
		return x->usec < y->usec ? -1 : 1;
	return strcmp(x->e.uniq, y->e.uniq);
}

int
store_scan(const char *dir, struct msg_list *out)
{
	static const char *const subs[] = { "new", "cur" };
	struct sortable *v = NULL;
	size_t n = 0, cap = 0;

	out->v = NULL;
	out->n = 0;
	for (size_t i = 0; i < 2; i++) {
		char p[PATH_MAX];
		DIR *d;
		struct dirent *de;

		if (str_fmt(p, sizeof(p), "%s/%s", dir, subs[i]) != 0)
			return -1;
		if ((d = opendir(p)) == NULL) {
			if (errno == ENOENT)
				continue;
			free(v);
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			if (entry_fill(&v[n].e, dir, subs[i], de->d_name,
			    &v[n].usec) == 0)
				n++;
		}
		closedir(d);
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), by_arrival);
	out->v = n ? xcalloc(n, sizeof(*out->v)) : NULL;
	for (size_t i = 0; i < n; i++)
		out->v[i] = v[i].e;
	out->n = n;
	free(v);
	return 0;
}

void
store_entry_free(struct msg_entry *e)
{
	free(e->path);
	free(e->uniq);
	e->path = e->uniq = NULL;
}

void
store_list_free(struct msg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		store_entry_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The file that remembers the numbering of dir (NULL if no place). */
static char *
seq_path(const char *dir, char **real_out)
{
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char real[PATH_MAX], base[PATH_MAX];
	uint64_t h = 1469598103934665603ULL;

	if (realpath(dir, real) == NULL)
		return NULL;
	for (const char *p = real; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	if (state != NULL && state[0] == '/')
		str_fmt(base, sizeof(base), "%s/ternmail", state);
	else if (home != NULL && home[0] == '/')
		str_fmt(base, sizeof(base), "%s/.local/state/ternmail", home);
	else
		return NULL;
	if (real_out)
		*real_out = xstrdup(real);
	return xasprintf("%s/seq-%016llx", base, (unsigned long long)h);
}

void
store_seq_save(const char *dir, const struct msg_list *l)
{
	char *real = NULL, *path = seq_path(dir, &real), *tmp;
	struct buf b;
	FILE *fp;

	if (path == NULL)
		return;
	{
		char parent[PATH_MAX];
		str_copy(parent, sizeof(parent), path);
		*strrchr(parent, '/') = '\0';
		for (char *s = parent + 1; *s; s++)
			if (*s == '/') {
				*s = '\0';
				mkdir_one(parent);
				*s = '/';
			}
		mkdir_one(parent);
	}
	buf_init(&b);
	buf_printf(&b, "%s\n", real);
	for (size_t i = 0; i < l->n; i++)
		buf_printf(&b, "%s\n", l->v[i].uniq);
	tmp = xasprintf("%s.%ld", path, (long)getpid());
	fp = fopen(tmp, "w");
	if (fp != NULL) {
		bool ok = fwrite(b.data, 1, b.len, fp) == b.len;
		if (fclose(fp) != 0 || !ok || rename(tmp, path) != 0)
			unlink(tmp);
	}
	free(tmp);
	buf_clear(&b);
	free(path);
	free(real);
}

/* Finds uniq in dir's new/ or cur/; fills out. */
static int
find_uniq(const char *dir, const char *uniq, struct msg_entry *out)
{
	static const char *const subs[] = { "new", "cur" };
	size_t ul = strlen(uniq);

	for (size_t i = 0; i < 2; i++) {
		char p[PATH_MAX];
		DIR *d;
		struct dirent *de;
		int rc = -1;

		if (str_fmt(p, sizeof(p), "%s/%s", dir, subs[i]) != 0 ||
		    (d = opendir(p)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			long usec;
			if (strncmp(de->d_name, uniq, ul) != 0 ||
			    (de->d_name[ul] != '\0' && de->d_name[ul] != ':'))
				continue;
			rc = entry_fill(out, dir, subs[i], de->d_name, &usec);
			if (rc == 0)
				break;
		}
		closedir(d);
		if (rc == 0)
			return 0;
	}
	return -1;
}

int
store_resolve(const char *dir, unsigned long n, struct msg_entry *out)
{
	char *real = NULL, *path = seq_path(dir, &real);
	char **seq = NULL;
	size_t nseq = 0;
	struct msg_list l;
	int rc = -1;

	if (n == 0) {
		free(path);
		free(real);
		return -1;
	}
	if (path != NULL) {
		FILE *fp = fopen(path, "r");
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		bool first = true, ok = false;

		while (fp != NULL && (len = getline(&line, &cap, fp)) > 0) {
			if (line[len - 1] == '\n')
				line[--len] = '\0';
			if (first) {
				ok = strcmp(line, real) == 0;
				first = false;
				if (!ok)
					break;
				continue;
			}
			seq = xreallocarray(seq, nseq + 1, sizeof(*seq));
			seq[nseq++] = xstrdup(line);
		}
		free(line);
		if (fp != NULL)
			fclose(fp);
	}
	if (n <= nseq) {
		rc = find_uniq(dir, seq[n - 1], out);
		goto done;
	}
	/* Past the remembered list: those that arrived since, in order. */
	if (store_scan(dir, &l) != 0)
		goto done;
	{
		size_t k = nseq;
		for (size_t i = 0; i < l.n && rc != 0; i++) {
			bool known = false;
			for (size_t j = 0; j < nseq && !known; j++)
				known = strcmp(seq[j], l.v[i].uniq) == 0;
			if (known || ++k != n)
				continue;
			*out = l.v[i];
			l.v[i].path = l.v[i].uniq = NULL;
			rc = 0;
		}
	}
	store_list_free(&l);
done:
	for (size_t i = 0; i < nseq; i++)
		free(seq[i]);
	free(seq);
	free(path);
	free(real);
	return rc;
}

int
store_entry_from_path(const char *path, struct msg_entry *out)
{
	char dir[PATH_MAX], name[PATH_MAX];
	char *slash;
	struct maildir_name_info info;
	long usec;

	if (str_copy(dir, sizeof(dir), path) != 0)
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return -1;
	str_copy(name, sizeof(name), slash + 1);
	*slash = '\0';
	slash = strrchr(dir, '/');
	if (slash == NULL || (strcmp(slash + 1, "new") != 0 &&
	    strcmp(slash + 1, "cur") != 0)) {
		errno = EINVAL;
		return -1;
	}
	{
		char sub[4];
		str_copy(sub, sizeof(sub), slash + 1);
		*slash = '\0';
		if (entry_fill(out, dir[0] ? dir : "/", sub, name, &usec) == 0)
			return 0;
	}
	if (maildir_parse_name(name, &info) != 0)
		return -1;
	name[info.unique_len] = '\0';
	return find_uniq(dir, name, out);
}

/* The Maildir a message lives in (its path minus "/new/name"). */
static char *
entry_dir(const struct msg_entry *e)
{
	const char *slash = strrchr(e->path, '/');
	size_t n = (size_t)(slash - e->path);

	while (n > 0 && e->path[n - 1] != '/')
		n--;
	return xstrndup(e->path, n > 0 ? n - 1 : 0);
}

static void
flags_apply(char *flags, const char *add, const char *del)
{
	bool set[128] = { false };
	size_t k = 0;

	for (const char *p = flags; *p; p++)
		set[(unsigned char)*p & 127] = true;
	for (const char *p = add ? add : ""; *p; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			set[(unsigned char)*p] = true;
	for (const char *p = del ? del : ""; *p; p++)
		set[(unsigned char)*p & 127] = false;
	for (int c = 'A'; c <= 'z'; c++)
		if (set[c] && k < 26 && ((c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z')))
			flags[k++] = (char)c;
	flags[k] = '\0';
}

int
store_set_flags(struct msg_entry *e, const char *add, const char *del)
{
	char flags[27], *dir, *np;

	str_copy(flags, sizeof(flags), e->flags);
	flags_apply(flags, add, del);
	if (!e->is_new && strcmp(flags, e->flags) == 0)
		return 0;
	dir = entry_dir(e);
	np = xasprintf("%s/cur/%s:2,%s", dir, e->uniq, flags);
	free(dir);
	if (rename(e->path, np) != 0) {
		free(np);
		return -1;
	}
	free(e->path);
	e->path = np;
	e->is_new = false;
	memcpy(e->flags, flags, sizeof(flags));
	return 0;
}

static int
read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

int
store_move(struct msg_entry *e, const char *dst, bool subfolder)
{
	const char *name = strrchr(e->path, '/') + 1;
	char *np, *sub;
	int rc;

	if (!store_is_maildir(dst) && store_create(dst, subfolder) != 0)
		return -1;
	np = xasprintf("%s/%s/%s", dst, e->is_new ? "new" : "cur", name);
	rc = rename(e->path, np);
	if (rc != 0 && errno == EXDEV) {
		/* Another file system: copy durably, then remove. */
		struct buf b;
		struct tern_err err;
		buf_init(&b);
		rc = read_file(e->path, &b);
		if (rc == 0)
			rc = store_deliver(dst, subfolder, b.data ? b.data : "",
			    b.len, e->is_new ? NULL : e->flags, &err);
		buf_clear(&b);
		if (rc == 0)
			rc = unlink(e->path);
		free(np);
		return rc;
	}
	if (rc != 0) {
		free(np);
		return -1;
	}
	sub = xasprintf("%s/%s", dst, e->is_new ? "new" : "cur");
	deliver_fsync_dir(sub);
	free(sub);
	free(e->path);
	e->path = np;
	return 0;
}

int
store_unlink(struct msg_entry *e)
{
	return unlink(e->path);
}

int
store_deliver(const char *dir, bool subfolder, const char *data,
    size_t len, const char *flags, struct tern_err *err)
{
	struct deliver_maildir *d;
	struct iovec iov = { (void *)(uintptr_t)data, len };
	char host[256], name[MAILDIR_NAME_MAX + 1];
	int rc;

	if (subfolder && !store_is_maildir(dir) &&
	    store_create(dir, true) != 0) {
		tern_err_set(err, errno == ENOSPC || errno == EDQUOT ? 452 : 451,
		    "4.3.0", "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (gethostname(host, sizeof(host)) != 0)
		str_copy(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	d = deliver_maildir_new(host);
	rc = deliver_maildir_sync(d, dir, NULL, &iov, 1, name, sizeof(name),
	    err);
	deliver_maildir_free(d);
	if (rc == 0 && flags != NULL) {
		char *from = xasprintf("%s/new/%s", dir, name);
		char *to = xasprintf("%s/cur/%s:2,%s", dir, name, flags);
		if (rename(from, to) == 0) {
			char *cur = xasprintf("%s/cur", dir);
			deliver_fsync_dir(cur);
			free(cur);
		}
		free(from);
		free(to);
	}
	return rc;
}

static unsigned
check_one(const char *dir, bool subfolder, bool repair,
    void (*report)(void *, const char *, const char *), void *arg)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	unsigned left = 0;
	time_t now = time(NULL);
	char p[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < 3; i++) {
		str_fmt(p, sizeof(p), "%s/%s", dir, subs[i]);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (repair && mkdir_one(p) == 0) {
			report(arg, "created missing directory", p);
		} else {
			report(arg, "missing directory", p);
			left++;
		}
	}
	if (subfolder) {
		str_fmt(p, sizeof(p), "%s/maildirfolder", dir);
		if (stat(p, &st) != 0) {
			int fd = repair ? open(p, O_WRONLY | O_CREAT |
			    O_CLOEXEC, 0600) : -1;
			if (fd >= 0) {
				close(fd);
				report(arg, "created missing marker", p);
			} else {
				report(arg, "missing marker", p);
				left++;
			}
		}
	}
	for (size_t i = 0; i < 3; i++) {
		DIR *d;
		struct dirent *de;
		str_fmt(p, sizeof(p), "%s/%s", dir, subs[i]);
		if ((d = opendir(p)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char f[PATH_MAX];
			struct maildir_name_info info;
			if (de->d_name[0] == '.' ||
			    str_fmt(f, sizeof(f), "%s/%s", p, de->d_name) != 0 ||
			    lstat(f, &st) != 0)
				continue;
			if (i == 2) {
				if (now - st.st_mtime <= TMP_MAX_AGE)
					continue;
				if (repair && unlink(f) == 0) {
					report(arg, "removed stale tmp file", f);
				} else {
					report(arg, "stale tmp file", f);
					left++;
				}
				continue;
			}
			if (!S_ISREG(st.st_mode)) {
				report(arg, "not a regular file", f);
				left++;
			} else if (maildir_parse_name(de->d_name, &info) != 0) {
				report(arg, "not a Maildir message name", f);
				left++;
			} else if (i == 1 && info.has_info) {
				report(arg, "flags on a file in new/", f);
			}
		}
		closedir(d);
	}
	return left;
}

char **
store_folders(const char *root)
{
	char **v = xcalloc(2, sizeof(*v));
	size_t n = 1;
	DIR *d;
	struct dirent *de;

	v[0] = xstrdup("INBOX");
	if ((d = opendir(root)) == NULL)
		return v;
	while ((de = readdir(d)) != NULL) {
		char *dir;
		if (de->d_name[0] != '.' || !maildir_folder_valid(de->d_name + 1))
			continue;
		dir = xasprintf("%s/%s", root, de->d_name);
		if (store_is_maildir(dir)) {
			v = xreallocarray(v, n + 2, sizeof(*v));
			v[n++] = xstrdup(de->d_name + 1);
			v[n] = NULL;
		}
		free(dir);
	}
	closedir(d);
	for (size_t i = 2; i < n; i++)   /* insertion sort; folders are few */
		for (size_t j = i; j > 1 && strcmp(v[j - 1], v[j]) > 0; j--) {
			char *t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v;
}

void
store_folders_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

unsigned
store_check(const char *root, bool repair,
    void (*report)(void *, const char *, const char *), void *arg)
{
	unsigned left = check_one(root, false, repair, report, arg);
	char **f = store_folders(root);

	for (size_t i = 1; f[i]; i++) {
		char *dir = store_folder_dir(root, f[i]);
		left += check_one(dir, true, repair, report, arg);
		free(dir);
	}
	store_folders_free(f);
	/* Folders with a missing subdirectory are not found by
	 * store_folders(); look for ".Name" directories that lack one. */
	{
		DIR *d = opendir(root);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			char *dir;
			if (de->d_name[0] != '.' ||
			    !maildir_folder_valid(de->d_name + 1))
				continue;
			dir = xasprintf("%s/%s", root, de->d_name);
			if (!store_is_maildir(dir)) {
				struct stat st;
				if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
					left += check_one(dir, true, repair,
					    report, arg);
			}
			free(dir);
		}
		if (d != NULL)
			closedir(d);
	}
	return left;
}
