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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/auth.h"
#include "base/dns.h"
#include "base/log.h"
#include "base/sasl.h"
#include "base/tls.h"
#include "base/util.h"
#include "lua/config.h"
#include "lua/hooks.h"
#include "lua/kvstore.h"
#include "mail/maildir.h"
#include "mail/spf.h"
#include "mail/spf_check.h"
#include "runtime.h"
#include "smtp/smtp_parse.h"
#include "store/index.h"
#include "ternctl_tls.h"

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
	    "  tls-report       send the TLS reports (RFC 8460) of the\n"
	    "                   sessions counted so far now, not at 00:00 UTC\n"
	    "  index rebuild USER\n"
	    "                   make USER's mail index again from the\n"
	    "                   Maildirs (offline: remove it, so that ternd\n"
	    "                   makes it at its next start)\n"
	    "Offline:\n"
	    "  check-config     check the configuration and plugins, print it\n"
	    "  passwd USER      set USER's password in the users table (from\n"
	    "                   stdin, or asked twice on a terminal)\n"
	    "  token add USER [LABEL]\n"
	    "                   a new app password for USER (HTTP bearer\n"
	    "                   token, JMAP clients): printed once, only its\n"
	    "                   hash is kept\n"
	    "  token list USER  USER's app passwords: id, made, label\n"
	    "  token revoke USER ID\n"
	    "                   remove one (ternd stops taking it at once)\n"
	    "  dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits N]\n"
	    "                   a DKIM signing key in data_dir/dkim/ (mode\n"
	    "                   0600; RSA 2048 bits unless told), and the\n"
	    "                   config line and DNS TXT record to add\n"
	    "  dkim record DOMAIN SELECTOR\n"
	    "                   the TXT record of a key made before\n"
	    "  spf IP SENDER [HELO]\n"
	    "                   the SPF result (RFC 7208) ternd would find\n"
	    "                   for mail from IP with MAIL FROM SENDER (\"\"\n"
	    "                   for <>: the HELO name's), through the\n"
	    "                   configured resolver\n"
	    "  tls-policy DOMAIN\n"
	    "                   what ternd would do about TLS for mail to\n"
	    "                   DOMAIN and why: the policy, DNSSEC, each MX\n"
	    "                   host's addresses and DANE TLSA records\n"
	    "\n"
	    "  -c FILE          the configuration ternd runs with (else\n"
	    "                   $TERN_HOME, else ./var)\n"
	    "  -h, --help, -V, --version\n");
}

/* The TXT record of key k at selector._domainkey.domain. */
static int
dkim_print_record(const struct tls_pkey *k, const char *domain,
    const char *selector)
{
	unsigned char pub[2048];
	char b64[4096];
	int n = tls_pkey_public(k, pub, sizeof(pub));

	if (n <= 0 || sasl_b64_encode((const char *)pub, (size_t)n, b64,
	    sizeof(b64)) != 0) {
		fprintf(stderr, "ternctl: cannot read the public key\n");
		return 1;
	}
	printf("%s._domainkey.%s. IN TXT ( \"v=DKIM1; k=%s; \"", selector,
	    domain, tls_pkey_type(k) == TLS_KEY_RSA ? "rsa" : "ed25519");
	/* a TXT string holds 255 octets: the key in pieces */
	size_t l = strlen(b64);
	for (size_t i = 0; i < l; i += 200)
		printf("\n    \"%s%.*s\"", i == 0 ? "p=" : "",
		    (int)(l - i < 200 ? l - i : 200), b64 + i);
	printf(" )\n");
	return 0;
}

struct spf_answer {
	enum spf_result r;
	char why[200];
	bool done;
};

static void
on_spf(void *arg, enum spf_result r, const char *why)
{
	struct spf_answer *a = arg;

	a->r = r;
	(void)snprintf(a->why, sizeof(a->why), "%s", why ? why : "");
	a->done = true;
}

/* ternctl spf IP SENDER [HELO]: check_host() as ternd does it. */
static int
spf_cmd(const char *cfg_path, int argc, char **argv)
{
	char err[1024], domain[300], sender[600];
	unsigned char ip[16];
	bool v6;
	struct spf_answer a = { SPF_NONE, "", false };

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "ternctl: spf IP SENDER [HELO]\n");
		return 2;
	}
	const char *helo = argc == 3 ? argv[2] : "";
	if (ip_parse(argv[0], strlen(argv[0]), ip, &v6) != 0) {
		fprintf(stderr, "ternctl: '%s' is not an IP address\n", argv[0]);
		return 2;
	}
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	if (v6 && memcmp(ip, mapped, 12) == 0) {
		memmove(ip, ip + 12, 4);     /* ::ffff:a.b.c.d is IPv4 */
		v6 = false;
	}
	if (!spf_identity(argv[1], helo, domain, sizeof(domain), sender,
	    sizeof(sender))) {
		printf("spf=none (no name to check)\n");
		return 0;
	}
	struct config *cfg = config_load(cfg_path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		return EX_CONFIG;
	}
	struct event_base *base = event_base_new();
	struct dns *dns = dns_new(base, cfg->resolver, cfg->dns_timeout, NULL,
	    false, err, sizeof(err));
	if (dns == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		event_base_free(base);
		config_free(cfg);
		return 1;
	}
	struct spf_check *c = spf_check_start(dns, ip, v6, domain, sender,
	    helo, on_spf, &a);
	while (!a.done && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	if (!a.done)
		spf_check_cancel(c);
	printf("spf=%s domain=%s sender=%s%s%s\n", spf_result_name(a.r),
	    domain, sender, a.why[0] ? " reason=" : "", a.why);
	dns_free(dns);
	event_base_free(base);
	config_free(cfg);
	return a.done ? 0 : 1;
}

static int
dkim_cmd(const char *cfg_path, int argc, char **argv)
{
	char err[1024], dir[4096], path[4200];
	enum tls_key_type type = TLS_KEY_RSA;
	unsigned bits = 2048;
	struct config *cfg;

	if (argc < 3 || (strcmp(argv[0], "keygen") != 0 &&
	    strcmp(argv[0], "record") != 0)) {
		fprintf(stderr, "ternctl: dkim keygen DOMAIN SELECTOR [--type "
		    "rsa|ed25519] [--bits N], or dkim record DOMAIN SELECTOR\n");
		return 2;
	}
	bool keygen = strcmp(argv[0], "keygen") == 0;
	char *domain = xstrdup(argv[1]);
	const char *selector = argv[2];
	ascii_lower(domain);
	for (int i = 3; i < argc; i++) {
		if (keygen && strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "rsa") == 0)
				type = TLS_KEY_RSA;
			else if (strcmp(argv[i], "ed25519") == 0)
				type = TLS_KEY_ED25519;
			else {
				fprintf(stderr, "ternctl: --type is rsa or "
				    "ed25519\n");
				free(domain);
				return 2;
			}
		} else if (keygen && strcmp(argv[i], "--bits") == 0 &&
		    i + 1 < argc) {
			bits = (unsigned)strtoul(argv[++i], NULL, 10);
			if (bits < 2048 || bits > 4096) {
				fprintf(stderr, "ternctl: --bits from 2048 to "
				    "4096 (RFC 8301: 1024 at least, 2048 "
				    "wanted)\n");
				free(domain);
				return 2;
			}
		} else {
			fprintf(stderr, "ternctl: dkim: unknown argument '%s'\n",
			    argv[i]);
			free(domain);
			return 2;
		}
	}
	size_t sl = strlen(selector);
	if (!smtp_valid_domain(domain, strlen(domain)) || sl == 0 || sl > 63 ||
	    strspn(selector, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-") != sl) {
		fprintf(stderr, "ternctl: '%s' is not a domain or '%s' not a "
		    "selector (letters, digits, '-')\n", domain, selector);
		free(domain);
		return 2;
	}
	if ((cfg = config_load(cfg_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		free(domain);
		return EX_CONFIG;
	}
	(void)snprintf(dir, sizeof(dir), "%s/dkim", cfg->data_dir);
	(void)snprintf(path, sizeof(path), "%s/%s.%s.key", dir, domain,
	    selector);
	if (keygen) {
		(void)mkdir(cfg->data_dir, 0700);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "ternctl: %s: %s\n", dir,
			    strerror(errno));
			config_free(cfg);
			free(domain);
			return 1;
		}
		if (tls_pkey_generate(type, bits, path, err, sizeof(err)) != 0) {
			fprintf(stderr, "ternctl: %s\n", err);
			config_free(cfg);
			free(domain);
			return 1;
		}
	}
	struct tls_pkey *k = tls_pkey_load(path, err, sizeof(err));
	if (k == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		config_free(cfg);
		free(domain);
		return 1;
	}
	if (keygen) {
		printf("-- wrote %s (%s, %u bits)\n", path, tls_pkey_type(k) ==
		    TLS_KEY_RSA ? "RSA" : "Ed25519", tls_pkey_bits(k));
		printf("-- add to the configuration (then ternctl reload):\n"
		    "dkim = { { domain = \"%s\", selector = \"%s\", "
		    "key = \"dkim/%s.%s.key\" } }\n", domain, selector,
		    domain, selector);
		printf("-- and publish in DNS:\n");
	}
	int rc = dkim_print_record(k, domain, selector);
	tls_pkey_free(k);
	config_free(cfg);
	free(domain);
	return rc;
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

static int request(const char *path, const char *line);

static void
reload_if_running(const struct config *cfg, const char *what)
{
	char *sock = xasprintf("%s/ternd.sock", cfg->run_dir);

	if (access(sock, F_OK) == 0) {
		fflush(stdout);
		if (request(sock, "reload") == 0)
			printf("ternd reloaded: %s\n", what);
	}
	free(sock);
}

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
	reload_if_running(cfg, "the new password is in use");
	config_free(cfg);
	return 0;
}

/* --- app passwords -------------------------------------------------- */

struct tok {
	char user[256], id[16], sha[65], label[128];
	long long made;
};

/* The tokens file's lines; *n of them (malloc'd), or NULL if none. */
static struct tok *
tokens_read(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "re");
	char line[1024];
	struct tok *t = NULL;

	*n = 0;
	if (fp == NULL)
		return NULL;
	while (fgets(line, sizeof(line), fp) != NULL) {
		struct tok k;
		char *f[5], *p = line;
		line[strcspn(line, "\r\n")] = '\0';
		size_t i = 0;
		for (; i < 5 && p; i++) {
			f[i] = p;
			p = i < 4 ? strchr(p, ':') : NULL;
			if (p)
				*p++ = '\0';
		}
		memset(&k, 0, sizeof(k));
		if (i != 5 || str_copy(k.user, sizeof(k.user), f[0]) != 0 ||
		    str_copy(k.id, sizeof(k.id), f[1]) != 0 ||
		    str_copy(k.sha, sizeof(k.sha), f[2]) != 0)
			continue;
		k.made = atoll(f[3]);
		(void)str_copy(k.label, sizeof(k.label), f[4]);
		t = xreallocarray(t, *n + 1, sizeof(*t));
		t[(*n)++] = k;
	}
	fclose(fp);
	return t;
}

static int
tokens_write(const char *path, const struct tok *t, size_t n)
{
	char tmp[4200];
	FILE *out;
	int fd;

	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", path) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "ternctl: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s:%s:%s:%lld:%s\n", t[i].user, t[i].id, t[i].sha,
		    t[i].made, t[i].label);
	int ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
	ok = fclose(out) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		fprintf(stderr, "ternctl: cannot write %s: %s\n", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		(void)snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int
token(const char *cfg_path, int argc, char **argv)
{
	char err[1024], path[4200];
	const char *sub = argc > 0 ? argv[0] : "", *user = argc > 1 ? argv[1] :
	    "";
	struct config *cfg;
	struct tok *t;
	size_t n;
	int rc = 0;

	if ((strcmp(sub, "add") != 0 || argc < 2 || argc > 3) &&
	    (strcmp(sub, "list") != 0 || argc != 2) &&
	    (strcmp(sub, "revoke") != 0 || argc != 3)) {
		fprintf(stderr, "ternctl: token add USER [LABEL] | list USER | "
		    "revoke USER ID\n");
		return 2;
	}
	if (*user == '\0' || strpbrk(user, ": \t\n") != NULL) {
		fprintf(stderr, "ternctl: '%s' is not a user name\n", user);
		return 2;
	}
	if ((cfg = config_load(cfg_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		return EX_CONFIG;
	}
	if (cfg->users == NULL || str_fmt(path, sizeof(path), "%s"
	    AUTH_TOKENS_SUFFIX, cfg->users) != 0) {
		fprintf(stderr, "ternctl: the configuration names no users "
		    "table (users = \"/path\")\n");
		config_free(cfg);
		return EX_CONFIG;
	}
	t = tokens_read(path, &n);
	if (strcmp(sub, "list") == 0) {
		for (size_t i = 0; i < n; i++)
			if (strcasecmp(t[i].user, user) == 0) {
				char when[32];
				time_t m = (time_t)t[i].made;
				struct tm tm;
				gmtime_r(&m, &tm);
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
				printf("%s  %s UTC  %s\n", t[i].id, when,
				    t[i].label);
			}
	} else if (strcmp(sub, "revoke") == 0) {
		size_t w = 0;
		for (size_t i = 0; i < n; i++)
			if (!(strcasecmp(t[i].user, user) == 0 &&
			    strcmp(t[i].id, argv[2]) == 0))
				t[w++] = t[i];
		if (w == n) {
			fprintf(stderr, "ternctl: %s has no token %s\n", user,
			    argv[2]);
			rc = 1;
		} else if (tokens_write(path, t, w) != 0)
			rc = 1;
		else {
			printf("token %s of %s revoked\n", argv[2], user);
			reload_if_running(cfg, "the token is refused");
		}
	} else {
		unsigned char rnd[24], sha[32];
		char secret[41], tokstr[64];
		const char *label = argc > 2 ? argv[2] : "";
		if (strpbrk(label, ":\n") != NULL || strlen(label) >= 128) {
			fprintf(stderr, "ternctl: a label has no ':' and is "
			    "short\n");
			free(t);
			config_free(cfg);
			return 2;
		}
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			fprintf(stderr, "ternctl: no randomness\n");
			free(t);
			config_free(cfg);
			return 1;
		}
		hex(rnd, 20, secret);
		(void)snprintf(tokstr, sizeof(tokstr), "tern_%s", secret);
		struct tls_sha256 *h = tls_sha256_new();
		tls_sha256_update(h, tokstr, strlen(tokstr));
		tls_sha256_final(h, sha);
		t = xreallocarray(t, n + 1, sizeof(*t));
		struct tok *k = &t[n++];
		memset(k, 0, sizeof(*k));
		(void)str_copy(k->user, sizeof(k->user), user);
		hex(rnd + 20, 4, k->id);
		hex(sha, 32, k->sha);
		k->made = (long long)time(NULL);
		(void)str_copy(k->label, sizeof(k->label), label);
		if (cfg->users_default)
			(void)mkdir(cfg->data_dir, 0711);
		if (tokens_write(path, t, n) != 0)
			rc = 1;
		else {
			/* the one time it is shown */
			printf("%s\n", tokstr);
			fprintf(stderr, "token %s for %s: use it as "
			    "\"Authorization: Bearer ...\" (JMAP)\n", k->id,
			    user);
			reload_if_running(cfg, "the token is taken");
		}
		explicit_bzero(secret, sizeof(secret));
		explicit_bzero(tokstr, sizeof(tokstr));
	}
	free(t);
	config_free(cfg);
	return rc;
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
	if (strcmp(cmd, "token") == 0)
		return token(cfg_path, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "dkim") == 0)
		return dkim_cmd(cfg_path, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "spf") == 0)
		return spf_cmd(cfg_path, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "tls-policy") == 0)
		return tls_policy_cmd(cfg_path, argc - optind - 1,
		    argv + optind + 1);
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
		"remove", "hold", "release", "stats", "reload", "pickup",
		"tls-report", NULL };
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
