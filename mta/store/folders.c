/* SPDX-License-Identifier: ISC */
/*
 * folders.c - layer 2: folders of a Maildir++ tree (folders.h). Runs on
 * I/O workers. New folders are made as Dovecot makes them (cur/ new/
 * tmp/ and an empty maildirfolder file), each step durable; names are
 * checked before any path is built, so no name reaches outside the tree.
 */
#include "store/folders.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "imap/imap_utf7.h"
#include "store/deliver_maildir.h"
#include "store/dovecot.h"

static const char *const special[][2] = {
	{ "Drafts", "\\Drafts" }, { "Sent", "\\Sent" },
	{ "Trash", "\\Trash" }, { "Junk", "\\Junk" },
	{ "Archive", "\\Archive" },
};

static void
fail_errno(struct tern_err *err, const char *what, const char *path)
{
	int e = errno;

	tern_err_set(err, 451, "4.3.0", "%s %s: %s", what, path, strerror(e));
	err->temp = true;
}

const char *
folders_canonical(const char *name)
{
	return ascii_strcaseeq(name, "INBOX") ? "INBOX" : name;
}

static bool
name_ok(const char *name)
{
	size_t n = strlen(name);
	struct buf u;

	if (n == 0 || n > FOLDER_NAME_MAX || name[0] == '/' ||
	    name[n - 1] == '/' || strstr(name, "//") || strchr(name, '.') ||
	    strchr(name, '\\'))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	/* INBOX has no children here (they would be ".INBOX.x") */
	if (n > 6 && ascii_strncaseeq(name, "INBOX/", 6))
		return false;
	buf_init(&u);
	int rc = imap_utf7_to_utf8(name, &u);
	buf_clear(&u);
	return rc == 0;
}

int
folders_path(const char *root, const char *name, char *out, size_t outsz)
{
	char dir[FOLDER_NAME_MAX + 2];

	if (ascii_strcaseeq(name, "INBOX"))
		return str_copy(out, outsz, root);
	if (!name_ok(name))
		return -1;
	dir[0] = '.';
	for (size_t i = 0; name[i]; i++)
		dir[i + 1] = name[i] == '/' ? '.' : name[i];
	dir[strlen(name) + 1] = '\0';
	return str_fmt(out, outsz, "%s/%s", root, dir);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
folders_list(const char *root, char ***names, size_t *n)
{
	DIR *d = opendir(root);
	struct dirent *de;
	size_t cap = 8;

	*names = xcalloc(cap, sizeof(char *));
	*n = 0;
	(*names)[(*n)++] = xstrdup("INBOX");
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		const char *e = de->d_name;
		if (e[0] != '.' || e[1] == '\0' || strcmp(e, "..") == 0)
			continue;
		char cur[4096];
		struct stat st;
		if (str_fmt(cur, sizeof(cur), "%s/%s/cur", root, e) != 0 ||
		    stat(cur, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		char *name = xstrdup(e + 1);
		for (char *p = name; *p; p++)
			if (*p == '.')
				*p = '/';
		char check[4096];
		if (folders_path(root, name, check, sizeof(check)) != 0) {
			free(name);   /* a directory IMAP cannot name */
			continue;
		}
		if (*n == cap) {
			cap *= 2;
			*names = xreallocarray(*names, cap, sizeof(char *));
		}
		(*names)[(*n)++] = name;
	}
	closedir(d);
	qsort(*names + 1, *n - 1, sizeof(char *), cmp_str);
	return 0;
}

void
folders_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
folders_create(const char *root, const char *name, struct tern_err *err)
{
	char path[4096], sub[4200];

	if (folders_path(root, name, path, sizeof(path)) != 0 ||
	    ascii_strcaseeq(name, "INBOX")) {
		tern_err_set(err, 550, "5.1.3", "name not allowed");
		return -1;
	}
	if (mkdir(path, 0700) != 0) {
		if (errno == EEXIST)
			tern_err_set(err, 550, "5.1.3", "already exists");
		else
			fail_errno(err, "mkdir", path);
		return -1;
	}
	static const char *const subs[] = { "cur", "new", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		(void)str_fmt(sub, sizeof(sub), "%s/%s", path, subs[i]);
		if (mkdir(sub, 0700) != 0) {
			fail_errno(err, "mkdir", sub);
			return -1;
		}
	}
	(void)str_fmt(sub, sizeof(sub), "%s/maildirfolder", path);
	int fd = open(sub, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (deliver_fsync_dir(path) != 0 || deliver_fsync_dir(root) != 0) {
		fail_errno(err, "fsync", path);
		return -1;
	}
	return 0;
}

static void
remove_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[4200];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (str_fmt(p, sizeof(p), "%s/%s", dir, de->d_name) == 0)
			(void)unlink(p);
	}
	closedir(d);
}

int
folders_delete(const char *root, const char *name, struct tern_err *err)
{
	char path[4096], sub[4200];

	if (ascii_strcaseeq(name, "INBOX") ||
	    folders_path(root, name, path, sizeof(path)) != 0) {
		tern_err_set(err, 550, "5.1.3", "cannot delete that");
		return -1;
	}
	struct stat st;
	(void)str_fmt(sub, sizeof(sub), "%s/cur", path);
	if (stat(sub, &st) != 0) {
		tern_err_set(err, 550, "5.1.1", "no such mailbox");
		return -1;
	}
	static const char *const subs[] = { "cur", "new", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		(void)str_fmt(sub, sizeof(sub), "%s/%s", path, subs[i]);
		remove_files(sub);
		(void)rmdir(sub);
	}
	remove_files(path);
	if (rmdir(path) != 0) {
		fail_errno(err, "rmdir", path);
		return -1;
	}
	(void)deliver_fsync_dir(root);
	return 0;
}

int
folders_rename(const char *root, const char *from, const char *to,
    struct tern_err *err)
{
	char pf[4096], pt[4096];

	if (ascii_strcaseeq(from, "INBOX") || ascii_strcaseeq(to, "INBOX") ||
	    folders_path(root, from, pf, sizeof(pf)) != 0 ||
	    folders_path(root, to, pt, sizeof(pt)) != 0) {
		tern_err_set(err, 550, "5.1.3", "cannot rename that");
		return -1;
	}
	struct stat st;
	if (stat(pt, &st) == 0) {
		tern_err_set(err, 550, "5.1.3", "the new name exists");
		return -1;
	}
	if (rename(pf, pt) != 0) {
		if (errno == ENOENT)
			tern_err_set(err, 550, "5.1.1", "no such mailbox");
		else
			fail_errno(err, "rename", pf);
		return -1;
	}
	/* the children: ".from.x" -> ".to.x" */
	char **names;
	size_t n;
	size_t fl = strlen(from);
	if (folders_list(root, &names, &n) == 0) {
		for (size_t i = 1; i < n; i++) {
			if (strncmp(names[i], from, fl) != 0 ||
			    names[i][fl] != '/')
				continue;
			char *nn = xasprintf("%s%s", to, names[i] + fl);
			char a[4096], b[4096];
			if (folders_path(root, names[i], a, sizeof(a)) == 0 &&
			    folders_path(root, nn, b, sizeof(b)) == 0)
				(void)rename(a, b);
			free(nn);
		}
		folders_list_free(names, n);
	}
	(void)deliver_fsync_dir(root);
	return 0;
}

const char *
folders_special_use(const char *name)
{
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strcmp(name, special[i][0]) == 0)
			return special[i][1];
	return NULL;
}

void
folders_ensure_root(const char *root)
{
	char p[4200];

	if (str_copy(p, sizeof(p), root) != 0)
		return;
	for (char *q = p + 1; *q; q++)
		if (*q == '/') {
			*q = '\0';
			(void)mkdir(p, 0700);
			*q = '/';
		}
	(void)mkdir(p, 0700);
	static const char *const subs[] = { "cur", "new", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		char sub[4300];
		if (str_fmt(sub, sizeof(sub), "%s/%s", root, subs[i]) == 0)
			(void)mkdir(sub, 0700);
	}
}

void
folders_ensure_special(const char *root)
{
	struct tern_err err;

	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		memset(&err, 0, sizeof(err));
		(void)folders_create(root, special[i][0], &err);
	}
}

struct sub_collect {
	char **names;
	size_t n, cap;
};

static void
collect(void *arg, const char *name)
{
	struct sub_collect *c = arg;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->names = xreallocarray(c->names, c->cap, sizeof(char *));
	}
	c->names[c->n++] = xstrdup(name);
}

static int
read_all(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[8192];
	ssize_t r;

	if (fd < 0)
		return -1;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0 && out->len < (1u << 20))
		buf_append(out, chunk, (size_t)r);
	close(fd);
	return r < 0 ? -1 : 0;
}

int
folders_subscriptions(const char *root, char ***names, size_t *n)
{
	char path[4096];
	struct buf text;
	struct sub_collect c = { NULL, 0, 0 };

	buf_init(&text);
	if (str_fmt(path, sizeof(path), "%s/subscriptions", root) == 0 &&
	    read_all(path, &text) == 0)
		subscriptions_parse(text.data ? text.data : "", text.len,
		    collect, &c);
	buf_clear(&text);
	*names = c.names;
	*n = c.n;
	return 0;
}

int
folders_subscribe(const char *root, const char *name, bool on,
    struct tern_err *err)
{
	char path[4096], tmp[4200];
	char **names;
	size_t n, w = 0;
	bool have = false;

	(void)folders_subscriptions(root, &names, &n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			have = true;
			if (!on) {
				free(names[i]);
				continue;
			}
		}
		names[w++] = names[i];
	}
	n = w;
	if (on && !have) {
		names = xreallocarray(names, n + 1, sizeof(char *));
		names[n++] = xstrdup(name);
	}
	struct buf text;
	buf_init(&text);
	subscriptions_serialize((const char *const *)names, n, &text);
	folders_list_free(names, n);
	(void)str_fmt(path, sizeof(path), "%s/subscriptions", root);
	(void)str_fmt(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, text.data, text.len) ==
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
