/* SPDX-License-Identifier: ISC */
/*
 * ternd.c - layer 4: the daemon's main. Options, configuration, start-up
 * in dependency order (pool, queue, delivery, dispatch, listeners), the
 * one event_base, signals, and an orderly shutdown: stop accepting, let
 * sessions finish their commit and say 421, let running deliveries end,
 * then free everything in reverse order.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "base/buf.h"
#include "base/dns.h"
#include "base/httpc.h"
#include "base/iopool.h"
#include "base/dirsync.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/tls.h"
#include "base/util.h"
#include "control.h"
#include "listen.h"
#include "lua/config.h"
#include "lua/hooks.h"
#include "lua/kvstore.h"
#include "queue/dispatch.h"
#include "queue/queue.h"
#include "runtime.h"
#include "smtp/smtp_client.h"
#include "smtp/sts.h"
#include "mail/tlsrpt.h"
#include "queue/tlsrpt_send.h"
#include "mail/maildir.h"
#include "store/store.h"
#include "store/deliver_maildir.h"

#define SHUTDOWN_GRACE_SEC 10
#define KV_MAX_ENTRIES 1000000
#define KV_SYNC_SEC 5

struct ternd {
	struct event_base *base;
	const char *cfg_path;
	struct runtime *rt;          /* the generation in force */
	struct config *cfg;          /* rt->cfg of the first generation */
	struct kvstore *kv;
	char *kv_path;
	bool kv_writing;
	struct event *ev_kv;
	struct iopool *pool;
	struct queue *queue;
	struct deliver_maildir *dm;
	struct dns *dns;
	struct smtp_client *client;
	struct tls_client *tls_client;
	struct sts *sts;              /* MTA-STS policies, or NULL */
	struct tlsrpt_sender *tlsrpt; /* TLS reports, or NULL */
	struct httpc_tls sts_tls;
	struct sockaddr_storage *self;   /* where we take SMTP (loop check) */
	struct dispatch *dispatch;
	struct listen_ctx *listen;
	struct store *store;
	struct control *control;
	time_t started;
	struct event *ev_term, *ev_int, *ev_hup, *ev_check;
	struct timeval stop_at;
	bool stopping;
	char *pidfile;
};

static void
on_maildir_delivery(void *arg, const char *maildir)
{
	store_notify_path(arg, maildir);
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ternd [-c FILE] [-f] [-n] [-v]\n"
	    "\n"
	    "Tern mail server: SMTP in, durable queue, Maildir delivery.\n"
	    "\n"
	    "  -c FILE     Lua configuration file (default: the embedded\n"
	    "              default: 127.0.0.1:2525 mx, 127.0.0.1:2587\n"
	    "              submission, data under $TERN_HOME or ./var)\n"
	    "  -f          stay in the foreground and log to stderr\n"
	    "  -n          check the configuration, print it, and exit\n"
	    "  -v          more logging (debug)\n"
	    "  -h, --help  this help\n"
	    "  -V, --version\n"
	    "\n"
	    "Signals: TERM/INT shut down cleanly; HUP reloads the\n"
	    "configuration and plugins (a bad one is refused).\n"
	    "See ternd(8) and README.md.\n");
}

static int
mkdir_one(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

static int
mkdir_parents(const char *path)
{
	char p[4096];

	if (str_copy(p, sizeof(p), path) != 0)
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			if (mkdir_one(p) != 0)
				return -1;
			*s = '/';
		}
	}
	return mkdir_one(p);
}

static void
on_check(evutil_socket_t fd, short what, void *arg)
{
	struct ternd *t = arg;
	struct timeval now;

	gettimeofday(&now, NULL);
	if ((listen_session_count(t->listen) == 0 &&
	    dispatch_inflight(t->dispatch) == 0) ||
	    timercmp(&now, &t->stop_at, >)) {
		event_base_loopexit(t->base, NULL);
		return;
	}
	struct timeval tv = { 0, 50000 };
	evtimer_add(t->ev_check, &tv);
}

/* The start's DNSSEC self-check: the root's DNSKEY, validated (or
 * vouched for by the resolver's AD bit: arg, a copy of its address). */
static void
on_dnssec_check(void *arg, enum dns_status st, bool secure)
{
	char *resolver = arg;

	if (resolver == NULL) {
		if (st == DNS_TEMP)
			log_warnx("dns: DNSSEC self-check failed (the root "
			    "zone's DNSKEY could not be had, or not validated): "
			    "if the resolver drops DNSSEC records, lookups under "
			    "signed zones fail and mail waits; use one that "
			    "passes them, or set dnssec = false");
	} else if (st != DNS_OK)
		log_warnx("dns: DNSSEC self-check: %s did not answer for the "
		    "root zone's DNSKEY (a resolver without the Internet, or "
		    "failing): it can vouch only for the zones it knows",
		    resolver);
	else if (!secure)
		log_warnx("dns: DNSSEC self-check: %s does not set the AD "
		    "bit on the root zone's DNSKEY, so it does not validate: "
		    "no domain gets DANE; make it validate, or set dnssec = "
		    "true to validate here", resolver);
	else
		log_info("dns: DNSSEC self-check: %s validates (AD bit on the "
		    "root zone's DNSKEY)", resolver);
	free(resolver);
}

/* Whether text is a loopback address ("127.0.0.1:53", "[::1]"). */
static bool
loopback_address(const char *text)
{
	return strncmp(text, "127.", 4) == 0 || strcmp(text, "::1") == 0 ||
	    strncmp(text, "[::1]", 5) == 0;
}

/* MTA-STS policies survive a restart in the kvstore (plugins.kv), under
 * keys no plugin can make (plugins' are "NAME\x1fKEY"). */
static void
sts_save(void *arg, const char *domain, const char *line, long long expires)
{
	char key[300];

	(void)snprintf(key, sizeof(key), "mta-sts\x1e%s", domain);
	if (kvstore_set(arg, key, line, (int64_t)expires,
	    (int64_t)time(NULL)) != 0)
		log_warnx("mta-sts: %s: the store is full; the policy is "
		    "kept in memory only", domain);
}

static const char *
sts_load(void *arg, const char *domain)
{
	char key[300];

	(void)snprintf(key, sizeof(key), "mta-sts\x1e%s", domain);
	return kvstore_get(arg, key, (int64_t)time(NULL));
}

/* The TLS-RPT book in the kvstore too, under "tls-rpt\x1eKEY", for
 * eight days at most (a longer stop loses it). */
static void
tlsrpt_kv_set(void *arg, const char *key, const char *value)
{
	char k[64];
	int64_t now = (int64_t)time(NULL);

	(void)snprintf(k, sizeof(k), "tls-rpt\x1e%s", key);
	if (kvstore_set(arg, k, value, now + 8 * 86400, now) != 0)
		log_warnx("tls-rpt: the store is full; counts are kept in "
		    "memory only");
}

static const char *
tlsrpt_kv_get(void *arg, const char *key)
{
	char k[64];

	(void)snprintf(k, sizeof(k), "tls-rpt\x1e%s", key);
	return kvstore_get(arg, k, (int64_t)time(NULL));
}

static void
tlsrpt_kv_del(void *arg, const char *key)
{
	char k[64];

	(void)snprintf(k, sizeof(k), "tls-rpt\x1e%s", key);
	kvstore_del(arg, k);
}

/* A policy fetch that failed: a failure in the domain's TLS report. */
static void
sts_fetch_failed(void *arg, const char *domain, const char *result_type)
{
	struct ternd *t = arg;
	struct tlsrpt_session s = { .domain = domain, .type = TLSRPT_STS,
		.result_type = result_type };

	if (t->tlsrpt)
		tlsrpt_sender_count(t->tlsrpt, &s);
}

/* MTA-STS policy fetches and TLS reports: chain and host name
 * verified. */
static struct bufferevent *
sts_tls_socket(void *arg, struct event_base *base, const char *host)
{
	return tls_client_socket(arg, base, host, true);
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct ternd *t = arg;

	if (t->stopping) {
		log_info("second signal: exiting now");
		event_base_loopbreak(t->base);
		return;
	}
	t->stopping = true;
	log_info("shutting down (signal %d)", (int)sig);
	gettimeofday(&t->stop_at, NULL);
	t->stop_at.tv_sec += SHUTDOWN_GRACE_SEC;
	listen_shutdown(t->listen);
	dispatch_stop(t->dispatch);
	control_free(t->control);
	t->control = NULL;
	t->ev_check = evtimer_new(t->base, on_check, t);
	struct timeval tv = { 0, 0 };
	evtimer_add(t->ev_check, &tv);
}

static bool
same_listeners(const struct config *a, const struct config *b)
{
	if (a->nlisten != b->nlisten)
		return false;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].addr, b->listen[i].addr) != 0 ||
		    a->listen[i].role != b->listen[i].role)
			return false;
	return true;
}

/*
 * Reload: a new generation (config + plugins) for new sessions and for
 * deliveries; sessions already open finish on theirs. A config that does
 * not load is refused and the running one stays. 0, or -1 with err.
 */
static int
reload(struct ternd *t, char *err, size_t errsz)
{
	struct runtime *rt;

	rt = runtime_load(t->cfg_path, t->kv, t->rt->generation + 1, true,
	    err, errsz);
	if (rt == NULL) {
		log_warnx("reload refused: %s; the running configuration "
		    "stays", err);
		return -1;
	}
	if (strcmp(rt->cfg->data_dir, t->rt->cfg->data_dir) != 0) {
		(void)snprintf(err, errsz, "data_dir cannot change while "
		    "running (restart ternd)");
		log_warnx("reload refused: %s; the running configuration "
		    "stays", err);
		runtime_unref(rt);
		return -1;
	}
	if (!same_listeners(rt->cfg, t->rt->cfg))
		log_warnx("reload: listener changes take effect at the next "
		    "restart");
	runtime_unref(t->rt);
	t->rt = rt;
	log_info("reloaded: configuration generation %u from %s, %zu "
	    "plugin(s)", rt->generation, rt->cfg->source,
	    hooks_plugin_count(rt->hooks));
	return 0;
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	char err[1024];

	(void)reload(arg, err, sizeof(err));
}

/* --- ternctl ---------------------------------------------------------- */

static void
control_answer(void *arg, bool ok, char *text)
{
	control_reply(arg, ok, text, strlen(text));
	free(text);
}

/* The gauges of /metrics, read when it is asked for. */
static void
metrics_collect(void *arg)
{
	struct ternd *t = arg;
	struct dispatch_stats st;
	struct listen_stats ls;
	char l[64];

	dispatch_get_stats(t->dispatch, &st);
	listen_get_stats(t->listen, &ls);
	metrics_set("tern_queue_messages", "state=\"waiting\"",
	    (double)st.queued);
	metrics_set("tern_queue_messages", "state=\"held\"", (double)st.held);
	metrics_set("tern_queue_messages", "state=\"delivering\"",
	    (double)st.inflight);
	for (int r = 0; r < LISTEN_ROLES; r++) {
		metrics_label(l, sizeof(l), "role", config_role_name(r));
		metrics_set("tern_connections", l, (double)ls.by_role[r]);
	}
	metrics_set("tern_imap_connections", NULL,
	    (double)(ls.by_role[ROLE_IMAP] + ls.by_role[ROLE_IMAPS]));
	metrics_set("tern_eventsource_connections", NULL, (double)ls.streams);
	metrics_set("tern_uptime_seconds", NULL,
	    (double)(time(NULL) - t->started));
}

static char *
stats_text(struct ternd *t, bool json)
{
	struct dispatch_stats st;
	struct listen_stats ls;
	long up = (long)(time(NULL) - t->started);

	dispatch_get_stats(t->dispatch, &st);
	listen_get_stats(t->listen, &ls);
	if (json)
		return xasprintf("{\"uptime\": %ld, \"sessions_open\": %zu, "
		    "\"sessions_total\": %lu, \"connections_refused\": %lu, "
		    "\"received\": %lu, \"delivered\": %lu, \"failed\": "
		    "%lu, \"deferred\": %lu, \"reports\": %lu, \"queued\": "
		    "%zu, \"held\": %zu, \"delivering\": %zu, "
		    "\"generation\": %u, \"plugins\": %zu}\n", up, ls.open,
		    ls.total, ls.refused, st.received, st.delivered,
		    st.failed, st.deferred, st.reports, st.queued, st.held,
		    st.inflight, t->rt->generation,
		    hooks_plugin_count(t->rt->hooks));
	return xasprintf("uptime               %lds\n"
	    "sessions open        %zu\nsessions since start %lu\n"
	    "connections refused  %lu\nreceived             %lu\n"
	    "delivered            %lu\nfailed               %lu\n"
	    "deferred             %lu\nreports              %lu\n"
	    "queued               %zu\nheld                 %zu\n"
	    "delivering           %zu\ngeneration           %u\n"
	    "plugins              %zu\n", up, ls.open, ls.total, ls.refused,
	    st.received, st.delivered, st.failed, st.deferred, st.reports,
	    st.queued, st.held, st.inflight, t->rt->generation,
	    hooks_plugin_count(t->rt->hooks));
}

struct rebuild_req {
	struct control_req *req;
	char *user;
};

static void
on_rebuilt(void *arg, int rc, size_t folders, size_t messages,
    const char *error)
{
	struct rebuild_req *r = arg;

	if (rc == 0) {
		log_info("index: rebuilt for %s: %zu folder(s), %zu message(s)",
		    r->user, folders, messages);
		control_answer(r->req, true, xasprintf("index of %s rebuilt: "
		    "%zu folder(s), %zu message(s)\n", r->user, folders,
		    messages));
	} else
		control_answer(r->req, false, xasprintf("index of %s: %s",
		    r->user, error));
	free(r->user);
	free(r);
}

/* ternctl index rebuild USER */
static void
index_rebuild(struct ternd *t, struct control_req *req, const char *user)
{
	const struct config *cfg = t->rt->cfg;   /* this generation's */
	char root[4096];
	struct stat st;

	if (*user == '\0' || maildir_user_root(cfg->mail_dir,
	    cfg->domains[0], user, root, sizeof(root)) != 0) {
		control_answer(req, false, xasprintf("'%s' cannot be a user "
		    "name", user));
		return;
	}
	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
		control_answer(req, false, xasprintf("%s has no mail (no %s)",
		    user, root));
		return;
	}
	struct rebuild_req *r = xcalloc(1, sizeof(*r));
	r->req = req;
	r->user = xstrdup(user);
	store_rebuild(t->store, user, root, on_rebuilt, r);
}

static void
on_control(void *arg, struct control_req *req, const char *verb,
    const char *a)
{
	struct ternd *t = arg;
	bool json = strcmp(a, "--json") == 0;
	char err[1024];

	log_info("ternctl: %s%s%s", verb, *a ? " " : "", a);
	if (strcmp(verb, "queue") == 0)
		dispatch_list(t->dispatch, json, control_answer, req);
	else if (strcmp(verb, "show") == 0)
		dispatch_show(t->dispatch, a, control_answer, req);
	else if (strcmp(verb, "flush") == 0)
		dispatch_flush(t->dispatch, *a ? a : NULL, control_answer,
		    req);
	else if (strcmp(verb, "remove") == 0)
		dispatch_remove(t->dispatch, a, control_answer, req);
	else if (strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0)
		dispatch_hold(t->dispatch, a, verb[0] == 'h', control_answer,
		    req);
	else if (strcmp(verb, "pickup") == 0)
		dispatch_pickup(t->dispatch, control_answer, req);
	else if (strcmp(verb, "stats") == 0)
		control_answer(req, true, stats_text(t, json));
	else if (strcmp(verb, "index-rebuild") == 0)
		index_rebuild(t, req, a);
	else if (strcmp(verb, "tls-report") == 0) {
		if (t->tlsrpt == NULL)
			control_answer(req, false, xstrdup("tls_reports = "
			    "false"));
		else
			control_answer(req, true, xasprintf("%zu policy "
			    "domain(s) reported on\n",
			    tlsrpt_sender_flush(t->tlsrpt)));
	}
	else if (strcmp(verb, "reload") == 0) {
		if (reload(t, err, sizeof(err)) == 0)
			control_answer(req, true, xasprintf("reloaded: "
			    "generation %u, %zu plugin(s)\n",
			    t->rt->generation,
			    hooks_plugin_count(t->rt->hooks)));
		else
			control_answer(req, false, xstrdup(err));
	} else
		control_answer(req, false, xasprintf("unknown command '%s'",
		    verb));
}

struct kv_write {
	struct ternd *t;
	struct buf text;
	int rc;
};

static void
kv_write_work(void *arg)
{
	struct kv_write *w = arg;

	w->rc = kvstore_write_file(w->t->kv_path, w->text.data, w->text.len);
}

static void
kv_write_done(void *arg)
{
	struct kv_write *w = arg;

	if (w->rc != 0)
		log_warn("cannot save the plugin key-value store %s",
		    w->t->kv_path);
	w->t->kv_writing = false;
	buf_clear(&w->text);
	free(w);
}

/* Every few seconds: a snapshot of the kv store, written on the pool. */
static void
on_kv_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ternd *t = arg;
	struct kv_write *w;

	if (t->kv_writing || !kvstore_dirty(t->kv))
		return;
	w = xcalloc(1, sizeof(*w));
	w->t = t;
	buf_init(&w->text);
	kvstore_snapshot(t->kv, &w->text, (int64_t)time(NULL));
	t->kv_writing = true;
	iopool_submit(t->pool, kv_write_work, kv_write_done, w);
}

/*
 * chown -R data_dir to the run-as user, not following links; only what
 * is not theirs yet (a store made by an earlier run as root). Bounded
 * depth: data_dir/mail/domain/user/.Folder/cur/file is 6 levels down.
 */
static void
chown_tree(const char *path, uid_t uid, gid_t gid, int depth)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode))
		return;
	if ((st.st_uid != uid || st.st_gid != gid) &&
	    lchown(path, uid, gid) != 0)
		log_warn("cannot chown %s", path);
	if (!S_ISDIR(st.st_mode) || depth > 12 || (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *sub;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		chown_tree(sub, uid, gid, depth + 1);
		free(sub);
	}
	closedir(d);
}

/*
 * Privilege separation: started as root with `user` set, ternd has bound
 * its ports and made its directories; now the data directory becomes the
 * user's and the process becomes the user, before the event loop reads
 * anything from a client. The control socket stays usable by the user's
 * group (0660, run/ 0750).
 */
static int
drop_privileges(const struct config *cfg, const char *sock, char *err,
    size_t errsz)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (cfg->user == NULL) {
		if (geteuid() == 0)
			log_warnx("running as root: set user = \"tern\" in the "
			    "config to run unprivileged");
		return 0;
	}
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		(void)snprintf(err, errsz, "user = \"%s\": no such user "
		    "(scripts/run creates it; or useradd --system %s)",
		    cfg->user, cfg->user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (geteuid() != 0) {
		if (geteuid() == uid)
			return 0;
		(void)snprintf(err, errsz, "user = \"%s\": start ternd as root "
		    "to run as that user (running as uid %ld)", cfg->user,
		    (long)geteuid());
		return -1;
	}
	if (uid == 0) {
		(void)snprintf(err, errsz, "user = \"%s\": refusing to run as "
		    "root", cfg->user);
		return -1;
	}
	chown_tree(cfg->data_dir, uid, gid, 0);
	if (chmod(cfg->run_dir, 0750) != 0 || chown(sock, uid, gid) != 0) {
		(void)snprintf(err, errsz, "cannot hand %s to %s: %s",
		    cfg->run_dir, cfg->user, strerror(errno));
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		(void)snprintf(err, errsz, "cannot become %s: %s", cfg->user,
		    strerror(errno));
		return -1;
	}
	/* no way back */
	if (setuid(0) == 0 || geteuid() != uid || getegid() != gid) {
		(void)snprintf(err, errsz, "privileges were not dropped");
		return -1;
	}
	if (access(cfg->data_dir, R_OK | W_OK | X_OK) != 0 ||
	    access(cfg->spool_dir, R_OK | W_OK | X_OK) != 0) {
		(void)snprintf(err, errsz, "as %s, cannot use %s (is a parent "
		    "directory closed to it?)", cfg->user, cfg->data_dir);
		return -1;
	}
	log_info("running as %s (uid %ld, gid %ld)", cfg->user, (long)uid,
	    (long)gid);
	return 0;
}

/*
 * Forks into the background. The parent waits on a pipe until the child
 * reports that start-up finished (listeners bound, spool open) or why it
 * failed, so `ternd` exits non-zero when the daemon could not start.
 * Returns the write end of the pipe in the child.
 */
static int
daemonize_start(void)
{
	int p[2], fd;
	char msg[1024];
	ssize_t n;
	pid_t pid;

	if (pipe(p) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		n = read(p[0], msg, sizeof(msg) - 1);
		if (n == 2 && memcmp(msg, "ok", 2) == 0)
			_exit(0);
		if (n > 0) {
			msg[n] = '\0';
			fprintf(stderr, "ternd: %s\n", msg);
		} else
			fprintf(stderr, "ternd: the daemon died during "
			    "start-up\n");
		_exit(1);
	}
	close(p[0]);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > 2)
			close(fd);
	}
	return p[1];
}

static int ready_fd = -1;

static void __attribute__((noreturn))
startup_fail(const char *msg)
{
	if (ready_fd >= 0)
		(void)!write(ready_fd, msg, strlen(msg));
	fatalx("%s", msg);
}

static void
startup_done(void)
{
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "ok", 2);
		close(ready_fd);
		ready_fd = -1;
	}
}

static int
write_pidfile(const char *path)
{
	FILE *fp = fopen(path, "we");

	if (fp == NULL)
		return -1;
	fprintf(fp, "%ld\n", (long)getpid());
	return fclose(fp);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ternd t;
	const char *cfg_path = NULL;
	bool foreground = false, check_only = false;
	int verbose = 0, ch;
	char err[1024];

	memset(&t, 0, sizeof(t));
	umask(0077);   /* nothing ternd writes is for others to read */
	/*
	 * A message read whole for delivery (megabytes) is its own mapping,
	 * given back when freed. Left to itself glibc raises this threshold
	 * to the largest block freed, and the next big messages stay in the
	 * arenas of the I/O threads after they are gone (+60 MiB after 200
	 * 5 MiB messages, scripts/bench S1).
	 */
	(void)mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	while ((ch = getopt_long(argc, argv, "c:fnvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'n':
			check_only = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ternd (Tern) %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ternd: unexpected argument '%s'\n",
		    argv[optind]);
		return 2;
	}
	t.cfg_path = cfg_path;
	t.kv = kvstore_new(KV_MAX_ENTRIES);
	if (check_only)
		log_init("ternd", true, verbose);
	t.rt = runtime_load(cfg_path, t.kv, 1, !check_only, err, sizeof(err));
	if (t.rt == NULL) {
		fprintf(stderr, "ternd: %s\n", err);
		kvstore_free(t.kv);
		return 1;
	}
	t.cfg = t.rt->cfg;
	if (check_only) {
		config_print(t.cfg, stdout);
		printf("-- %zu plugin(s) loaded\n",
		    hooks_plugin_count(t.rt->hooks));
		runtime_unref(t.rt);
		kvstore_free(t.kv);
		return 0;
	}
	/* data_dir: traversable (0711) so local users reach spool/pickup */
	if (mkdir_parents(t.cfg->data_dir) != 0 ||
	    chmod(t.cfg->data_dir, 0711) != 0 ||
	    mkdir_one(t.cfg->mail_dir) != 0 || mkdir_one(t.cfg->run_dir) != 0) {
		fprintf(stderr, "ternd: cannot create %s: %s\n",
		    t.cfg->data_dir, strerror(errno));
		return 1;
	}
	if (!foreground && (ready_fd = daemonize_start()) < 0) {
		fprintf(stderr, "ternd: cannot daemonize: %s\n",
		    strerror(errno));
		return 1;
	}
	log_init("ternd", foreground, verbose);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0)
		startup_fail("libevent has no pthreads support");
	t.base = event_base_new();
	if (t.base == NULL)
		startup_fail("cannot create the event base");
	t.pool = iopool_new(t.base, (int)t.cfg->io_threads);
	t.queue = queue_open(t.cfg->spool_dir, t.pool,
	    t.cfg->limits.min_free_space, err, sizeof(err));
	if (t.queue == NULL)
		startup_fail(err);
	t.store = store_new(t.base, t.pool);
	t.listen = listen_start(t.base, &t.rt, t.queue, t.pool, t.store, err,
	    sizeof(err));
	if (t.listen == NULL)
		startup_fail(err);
	t.kv_path = xasprintf("%s/plugins.kv", t.cfg->data_dir);
	if (kvstore_load(t.kv, t.kv_path, (int64_t)time(NULL), err,
	    sizeof(err)) != 0)
		startup_fail(err);
	t.pidfile = xasprintf("%s/ternd.pid", t.cfg->run_dir);
	if (write_pidfile(t.pidfile) != 0)
		log_warn("cannot write %s", t.pidfile);
	char why[300];
	const char *anchor = config_trust_anchor(t.cfg, why, sizeof(why));
	t.dns = dns_new(t.base, t.cfg->resolver, t.cfg->dns_timeout, anchor,
	    t.cfg->dnssec_resolver, err, sizeof(err));
	if (t.dns == NULL)
		startup_fail(err);
	if (anchor) {
		log_info("dns: DNSSEC validation with %s; DANE on", anchor);
		/* a resolver that drops DNSSEC records makes every answer
		 * under a signed zone bogus: say so early, once */
		(void)dns_check(t.dns, on_dnssec_check, NULL);
	} else if (t.cfg->dnssec_resolver) {
		log_info("dns: DNSSEC from the AD bit of %s (dnssec = "
		    "\"resolver\"); DANE on", t.cfg->resolver);
		if (!loopback_address(t.cfg->resolver))
			log_warnx("dns: %s is not on loopback: anyone on the "
			    "path to it can forge its AD bit, so DANE is only "
			    "as safe as that path (RFC 4035 4.9.3)",
			    t.cfg->resolver);
		(void)dns_check(t.dns, on_dnssec_check,
		    xstrdup(t.cfg->resolver));
	} else
		log_info("dns: no DNSSEC validation (%s); no DANE", why);
	listen_set_dns(t.listen, t.dns);
	t.tls_client = tls_client_new(t.cfg->client.ca_file, err, sizeof(err));
	if (t.tls_client == NULL)
		startup_fail(err);
	/* MTA-STS policies and TLS reports over https: verified */
	t.sts_tls = (struct httpc_tls){ sts_tls_socket, tls_handshake_failed,
		t.tls_client };
	if (t.cfg->client.mta_sts) {
		struct sts_settings ss = {
			.port = t.cfg->client.mta_sts_port,
			.refresh = t.cfg->client.mta_sts_refresh,
			.timeout = t.cfg->client.connect_timeout,
			.tls = &t.sts_tls,
			.save = sts_save, .load = sts_load,
			.store_arg = t.kv,
			.fetch_failed = sts_fetch_failed, .report_arg = &t,
		};
		t.sts = sts_new(t.base, t.dns, &ss);
	}
	if (t.cfg->tls_reports) {
		const struct tlsrpt_store st = { tlsrpt_kv_set, tlsrpt_kv_get,
			tlsrpt_kv_del, t.kv };
		t.tlsrpt = tlsrpt_sender_new(t.base, t.dns, t.queue, &t.rt,
		    &t.sts_tls, &st);
	}
	size_t nself;
	t.self = listen_smtp_addresses(t.cfg, &nself);
	struct smtp_client_settings cs = {
		.tls = t.tls_client,
		.sts = t.sts,
		.tls_report = t.tlsrpt ? tlsrpt_sender_count : NULL,
		.tls_report_arg = t.tlsrpt,
		.self = t.self, .nself = nself,
		.helo = t.cfg->hostname, .port = t.cfg->client.port,
		.connect_timeout = t.cfg->client.connect_timeout,
		.command_timeout = t.cfg->client.command_timeout,
		.data_timeout = t.cfg->client.data_timeout,
		.idle_time = t.cfg->client.idle_time,
		.max_per_destination = t.cfg->client.max_per_destination,
	};
	t.client = smtp_client_new(t.base, t.dns, &cs);
	t.dm = deliver_maildir_new(t.cfg->hostname);
	t.dispatch = dispatch_new(t.base, &t.rt, t.queue, t.dm, t.pool,
	    t.client);
	/* deliveries reach IMAP sessions on that folder at once */
	dispatch_set_on_maildir(t.dispatch, on_maildir_delivery, t.store);
	t.started = time(NULL);
	metrics_on_collect(metrics_collect, &t);
	char *sock = xasprintf("%s/ternd.sock", t.cfg->run_dir);
	t.control = control_new(t.base, sock, on_control, &t, err,
	    sizeof(err));
	if (t.control == NULL)
		startup_fail(err);
	if (drop_privileges(t.cfg, sock, err, sizeof(err)) != 0)
		startup_fail(err);
	free(sock);
	dispatch_load_queue(t.dispatch);

	t.ev_term = evsignal_new(t.base, SIGTERM, on_terminate, &t);
	t.ev_int = evsignal_new(t.base, SIGINT, on_terminate, &t);
	t.ev_hup = evsignal_new(t.base, SIGHUP, on_hup, &t);
	evsignal_add(t.ev_term, NULL);
	evsignal_add(t.ev_int, NULL);
	evsignal_add(t.ev_hup, NULL);
	t.ev_kv = event_new(t.base, -1, EV_PERSIST, on_kv_timer, &t);
	struct timeval kv_tv = { KV_SYNC_SEC, 0 };
	evtimer_add(t.ev_kv, &kv_tv);
	log_info("ternd %s started: host=%s data_dir=%s config=%s "
	    "io_threads=%u plugins=%zu", PACKAGE_VERSION, t.cfg->hostname,
	    t.cfg->data_dir, t.cfg->source, t.cfg->io_threads,
	    hooks_plugin_count(t.rt->hooks));
	startup_done();

	event_base_dispatch(t.base);

	/* Finish disk work first: its completions still reach sessions. */
	store_pool_closing(t.store);
	iopool_free(t.pool);
	if (kvstore_dirty(t.kv)) {
		struct buf text;
		buf_init(&text);
		kvstore_snapshot(t.kv, &text, (int64_t)time(NULL));
		if (kvstore_write_file(t.kv_path, text.data, text.len) != 0)
			log_warn("cannot save %s", t.kv_path);
		buf_clear(&text);
	}
	event_free(t.ev_kv);
	listen_free(t.listen);
	control_free(t.control);
	smtp_client_free(t.client);
	tlsrpt_sender_free(t.tlsrpt);
	sts_free(t.sts);
	tls_client_free(t.tls_client);
	free(t.self);
	dns_free(t.dns);
	dispatch_free(t.dispatch);
	store_free(t.store);
	queue_close(t.queue);
	deliver_maildir_free(t.dm);
	if (t.ev_check)
		event_free(t.ev_check);
	event_free(t.ev_term);
	event_free(t.ev_int);
	event_free(t.ev_hup);
	event_base_free(t.base);
	unlink(t.pidfile);
	free(t.pidfile);
	unsigned long long ffs, dfs;
	dirsync_counts(&ffs, &dfs);
	log_info("disk: %llu file fsync(s), %llu directory fsync(s)", ffs, dfs);
	log_info("ternd stopped");
	runtime_unref(t.rt);
	kvstore_free(t.kv);
	free(t.kv_path);
	return 0;
}
