/* SPDX-License-Identifier: ISC */
/*
 * ternctl.c - layer 4: the administrator's tool. Talks to a running ternd
 * over its control socket (control.h: one request line, "OK <length>" and
 * a body, or "ERR <text>"), and checks configurations offline. Finds the
 * socket through the same configuration as ternd: -c FILE, else
 * $TERN_HOME, else the embedded default (./var).
 *
 * Exit status: 0 done; 1 ternd refused (the error is printed); 2 usage;
 * 69 (EX_UNAVAILABLE) ternd is not running; 78 (EX_CONFIG) a bad config.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/auth.h"
#include "base/log.h"
#include "base/util.h"
#include "lua/config.h"
#include "lua/hooks.h"
#include "lua/kvstore.h"
#include "mail/maildir.h"
#include "runtime.h"
#include "store/index.h"

#define EX_UNAVAILABLE 69
#define EX_CONFIG 78

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ternctl [-c FILE] COMMAND [ARGUMENT]\n"
	    "\n"
	    "Commands (to the running ternd):\n"
	    "  queue [--json]   the queued messages and their recipients\n"
	    "  show ID          one message: envelope, delivery state, header\n"
	    "  flush [ID]       try every waiting message (or ID) now\n"
	    "  remove ID        delete a message from the queue\n"
	    "  hold ID          keep a message from being delivered\n"
	    "  release ID       deliver a held message again\n"
	    "  stats [--json]   counters since start\n"
	    "  reload           re-read the configuration and plugins\n"
	    "  pickup           take what tern-sendmail dropped, now\n"
	    "  index rebuild USER\n"
	    "                   make USER's mail index again from the\n"
	    "                   Maildirs (offline: remove it, so that ternd\n"
	    "                   makes it at its next start)\n"
	    "Offline:\n"
	    "  check-config     check the configuration and plugins, print it\n"
	    "  passwd USER      set USER's password in the users table (from\n"
	    "                   stdin, or asked twice on a terminal)\n"
	    "\n"
	    "  -c FILE          the configuration ternd runs with (else\n"
	    "                   $TERN_HOME, else ./var)\n"
	    "  -h, --help, -V, --version\n");
}

static int
socket_path(const char *cfg_path, char *out, size_t outsz)
{
	char err[1024];

	if (cfg_path) {
		struct config *cfg = config_load(cfg_path, err, sizeof(err));
		if (cfg == NULL) {
			fprintf(stderr, "ternctl: %s\n", err);
			return -1;
		}
		int rc = str_fmt(out, outsz, "%s/ternd.sock", cfg->run_dir);
		config_free(cfg);
		return rc;
	}
	const char *home = getenv("TERN_HOME");
	return str_fmt(out, outsz, "%s/run/ternd.sock",
	    home && *home ? home : "./var");
}

static int
check_config(const char *cfg_path)
{
	char err[1024];
	struct kvstore *kv = kvstore_new(16);
	struct runtime *rt;

	log_init("ternctl", true, 0);
	rt = runtime_load(cfg_path, kv, 1, false, err, sizeof(err));
	if (rt == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		kvstore_free(kv);
		return EX_CONFIG;
	}
	config_print(rt->cfg, stdout);
	printf("-- %zu plugin(s) loaded; the configuration is valid\n",
	    hooks_plugin_count(rt->hooks));
	runtime_unref(rt);
	kvstore_free(kv);
	return 0;
}

static int
read_password(char *out, size_t outsz)
{
	if (isatty(STDIN_FILENO)) {
		char *p = getpass("New password: ");
		if (p == NULL || str_copy(out, outsz, p) != 0)
			return -1;
		p = getpass("Again: ");
		if (p == NULL || strcmp(p, out) != 0) {
			fprintf(stderr, "ternctl: the passwords differ\n");
			return -1;
		}
		return 0;
	}
	if (fgets(out, (int)outsz, stdin) == NULL)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* Replaces or adds USER's line in the users table, atomically. */
static int request(const char *path, const char *line);

/*
 * ternctl index rebuild USER: the running ternd rebuilds it; without one
 * the index files are removed and the next start makes them again.
 */
static int
index_rebuild(const char *cfg_path, const char *user)
{
	char err[1024], root[4096], line[600];
	struct config *cfg = config_load(cfg_path, err, sizeof(err));
	struct stat st;

	if (cfg == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		return EX_CONFIG;
	}
	if (maildir_user_root(cfg->mail_dir, cfg->domains[0], user, root,
	    sizeof(root)) != 0) {
		fprintf(stderr, "ternctl: '%s' cannot be a user name\n", user);
		config_free(cfg);
		return 2;
	}
	char *sock = xasprintf("%s/ternd.sock", cfg->run_dir);
	if (access(sock, F_OK) == 0) {
		(void)str_fmt(line, sizeof(line), "index-rebuild %s", user);
		int rc = request(sock, line);
		free(sock);
		config_free(cfg);
		return rc;
	}
	free(sock);
	config_free(cfg);
	if (stat(root, &st) != 0) {
		fprintf(stderr, "ternctl: %s has no mail (no %s)\n", user, root);
		return 1;
	}
	int removed = 0;
	for (int i = 0; i < 3; i++) {
		static const char *const tail[] = { "", "-wal", "-shm" };
		char *p = xasprintf("%s/%s%s", root, TINDEX_FILE, tail[i]);
		if (unlink(p) == 0)
			removed++;
		else if (errno != ENOENT) {
			fprintf(stderr, "ternctl: %s: %s\n", p, strerror(errno));
			free(p);
			return 1;
		}
		free(p);
	}
	printf("ternd is not running: %s's index %s; it is made again when "
	    "ternd next opens the mailbox\n", user, removed ? "removed" :
	    "was not there");
	return 0;
}

static int
passwd(const char *cfg_path, const char *user)
{
	char err[1024], pass[256], tmp[4096], line[1024];
	struct config *cfg = config_load(cfg_path, err, sizeof(err));
	bool replaced = false;
	FILE *in, *out;
	int fd;

	if (cfg == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		return EX_CONFIG;
	}
	if (cfg->users == NULL) {
		fprintf(stderr, "ternctl: the configuration names no users "
		    "table (users = \"/path\")\n");
		config_free(cfg);
		return EX_CONFIG;
	}
	if (*user == '\0' || strpbrk(user, ": \t\n") != NULL) {
		fprintf(stderr, "ternctl: '%s' is not a user name\n", user);
		config_free(cfg);
		return 2;
	}
	if (read_password(pass, sizeof(pass)) != 0 || pass[0] == '\0') {
		fprintf(stderr, "ternctl: no password given\n");
		config_free(cfg);
		return 2;
	}
	char *hash = auth_hash_password(pass);
	explicit_bzero(pass, sizeof(pass));
	if (hash == NULL) {
		fprintf(stderr, "ternctl: cannot hash the password\n");
		config_free(cfg);
		return 1;
	}
	if (cfg->users_default)
		(void)mkdir(cfg->data_dir, 0711);  /* before ternd's first run */
	(void)snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->users);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "ternctl: %s: %s\n", tmp, strerror(errno));
		free(hash);
		config_free(cfg);
		return 1;
	}
	if ((in = fopen(cfg->users, "re")) != NULL) {
		size_t ul = strlen(user);
		while (fgets(line, sizeof(line), in) != NULL) {
			if (strncasecmp(line, user, ul) == 0 && line[ul] == ':') {
				if (!replaced)
					fprintf(out, "%s:%s\n", user, hash);
				replaced = true;
			} else
				fputs(line, out);
		}
		fclose(in);
	}
	if (!replaced)
		fprintf(out, "%s:%s\n", user, hash);
	free(hash);
	int rc = fflush(out) == 0 && fsync(fileno(out)) == 0;
	rc = (fclose(out) == 0) && rc;
	if (!rc || rename(tmp, cfg->users) != 0) {
		fprintf(stderr, "ternctl: cannot write %s: %s\n", cfg->users,
		    strerror(errno));
		unlink(tmp);
		config_free(cfg);
		return 1;
	}
	printf("%s %s in %s\n", user, replaced ? "changed" : "added",
	    cfg->users);
	/* a running ternd uses it at once */
	char *sock = xasprintf("%s/ternd.sock", cfg->run_dir);
	if (access(sock, F_OK) == 0) {
		fflush(stdout);
		if (request(sock, "reload") == 0)
			printf("ternd reloaded: the new password is in use\n");
	}
	free(sock);
	config_free(cfg);
	return 0;
}

static int
request(const char *path, const char *line)
{
	struct sockaddr_un sun;
	char head[128];
	size_t hn = 0;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) != 0) {
		fprintf(stderr, "ternctl: socket path too long: %s\n", path);
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "ternctl: cannot reach ternd at %s: %s (is it "
		    "running? try -c FILE)\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EX_UNAVAILABLE;
	}
	size_t len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "ternctl: write: %s\n", strerror(errno));
		close(fd);
		return EX_UNAVAILABLE;
	}
	/* the header line */
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n <= 0) {
			fprintf(stderr, "ternctl: ternd closed the connection\n");
			close(fd);
			return EX_UNAVAILABLE;
		}
		if (c == '\n')
			break;
		if (hn + 1 < sizeof(head))
			head[hn++] = c;
	}
	head[hn] = '\0';
	if (strncmp(head, "ERR ", 4) == 0) {
		/* the error text may be longer than head: read the rest */
		fprintf(stderr, "ternctl: %s\n", head + 4);
		close(fd);
		return 1;
	}
	unsigned long long want;
	if (sscanf(head, "OK %llu", &want) != 1) {
		fprintf(stderr, "ternctl: unexpected answer '%s'\n", head);
		close(fd);
		return 1;
	}
	unsigned long long got = 0;
	char buf[8192];
	while (got < want) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, stdout);
		got += (unsigned long long)n;
	}
	close(fd);
	if (got != want) {
		fprintf(stderr, "ternctl: answer cut short (%llu of %llu "
		    "octets)\n", got, want);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg_path = NULL;
	char path[4096], line[600];
	int ch;

	while ((ch = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ternctl (Tern) %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	const char *arg = optind + 1 < argc ? argv[optind + 1] : "";
	if (strcmp(cmd, "index") == 0) {
		if (optind + 3 != argc || strcmp(arg, "rebuild") != 0) {
			fprintf(stderr, "ternctl: index rebuild USER\n");
			return 2;
		}
		return index_rebuild(cfg_path, argv[optind + 2]);
	}
	if (optind + 2 < argc) {
		fprintf(stderr, "ternctl: too many arguments\n");
		return 2;
	}
	static const char *const needs_id[] = { "show", "remove", "hold",
		"release", NULL };
	static const char *const known[] = { "queue", "show", "flush",
		"remove", "hold", "release", "stats", "reload", "pickup", NULL };
	if (strcmp(cmd, "check-config") == 0)
		return check_config(cfg_path);
	if (strcmp(cmd, "passwd") == 0) {
		if (*arg == '\0') {
			fprintf(stderr, "ternctl: passwd needs a user name\n");
			return 2;
		}
		return passwd(cfg_path, arg);
	}
	bool ok = false;
	for (size_t i = 0; known[i]; i++)
		ok |= strcmp(cmd, known[i]) == 0;
	if (!ok) {
		fprintf(stderr, "ternctl: unknown command '%s' (see --help)\n",
		    cmd);
		return 2;
	}
	for (size_t i = 0; needs_id[i]; i++)
		if (strcmp(cmd, needs_id[i]) == 0 && *arg == '\0') {
			fprintf(stderr, "ternctl: %s needs a queue id\n", cmd);
			return 2;
		}
	if (socket_path(cfg_path, path, sizeof(path)) != 0)
		return EX_CONFIG;
	if (str_fmt(line, sizeof(line), "%s%s%s", cmd, *arg ? " " : "",
	    arg) != 0) {
		fprintf(stderr, "ternctl: argument too long\n");
		return 2;
	}
	return request(path, line);
}
