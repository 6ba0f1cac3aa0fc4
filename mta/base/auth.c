/* SPDX-License-Identifier: ISC */
/*
 * auth.c - layer 2 (auth.h). crypt_r() with a per-call struct crypt_data
 * is thread-safe, so checks run on the pool; the comparison of the
 * computed hash is constant-time. The table is read once per
 * configuration generation (reload re-reads it). Per-address failure
 * counting: at most AUTH_FAIL_MAX failures in AUTH_FAIL_WINDOW seconds;
 * a small table, oldest entries recycled.
 */
#include "base/auth.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/iopool.h"
#include "base/metrics.h"
#include "base/sasl.h"
#include "base/tls.h"
#include "base/util.h"

#define AUTH_FAIL_MAX 10
#define AUTH_FAIL_WINDOW 600
#define AUTH_IP_SLOTS 1024
#define CACHE_TTL 3600          /* as Dovecot's auth_cache_ttl */
#define CACHE_BUCKETS 4096
#define CACHE_MAX 20000

/*
 * The check cache: after crypt(3) said yes, the user's hash and a keyed
 * digest of the password are kept for CACHE_TTL seconds, so that the
 * next login with the same password (a client's second connection, a
 * phone coming back) costs a digest instead of a yescrypt. A changed
 * hash (ternctl passwd) never matches; failures are not cached. Loop
 * thread only. The cost: a process memory dump gives digests that are
 * quicker to attack than yescrypt, for an hour (Dovecot's auth cache
 * makes the same trade).
 */
struct cache_ent {
	char *user, *hash;
	unsigned char mac[32];
	long expires;
	struct cache_ent *next;
};
static struct cache_ent *cache[CACHE_BUCKETS];
static size_t cache_n;

static unsigned
cache_bucket(const char *user)
{
	unsigned h = 2166136261u;

	for (; *user; user++)
		h = (h ^ (unsigned char)*user) * 16777619u;
	return h % CACHE_BUCKETS;
}

static void
cache_clear(void)
{
	for (size_t i = 0; i < CACHE_BUCKETS; i++)
		while (cache[i]) {
			struct cache_ent *e = cache[i];
			cache[i] = e->next;
			free(e->user);
			free(e->hash);
			explicit_bzero(e->mac, sizeof(e->mac));
			free(e);
		}
	cache_n = 0;
}

static int
pass_mac(const char *user, const char *pass, unsigned char out[32])
{
	char in[2 * SASL_FIELD_MAX + 2];
	size_t ul = strlen(user), pl = strlen(pass);

	if (ul + pl + 1 > sizeof(in))
		return -1;
	memcpy(in, user, ul + 1);
	memcpy(in + ul + 1, pass, pl);
	int rc = tls_keyed_digest(in, ul + 1 + pl, out);
	explicit_bzero(in, sizeof(in));
	return rc;
}

static bool
cache_hit(const char *user, const char *hash, const char *pass, long now)
{
	unsigned char mac[32];
	struct cache_ent *e;

	for (e = cache[cache_bucket(user)]; e; e = e->next)
		if (strcmp(e->user, user) == 0)
			break;
	if (e == NULL || e->expires <= now || strcmp(e->hash, hash) != 0 ||
	    pass_mac(user, pass, mac) != 0)
		return false;
	unsigned char d = 0;
	for (size_t i = 0; i < sizeof(mac); i++)
		d |= (unsigned char)(mac[i] ^ e->mac[i]);
	return d == 0;
}

static void
cache_put(const char *user, const char *hash, const unsigned char mac[32],
    long now)
{
	unsigned b = cache_bucket(user);
	struct cache_ent *e;

	for (e = cache[b]; e; e = e->next)
		if (strcmp(e->user, user) == 0)
			break;
	if (e == NULL) {
		if (cache_n >= CACHE_MAX)
			cache_clear();
		e = xcalloc(1, sizeof(*e));
		e->user = xstrdup(user);
		e->next = cache[b];
		cache[b] = e;
		cache_n++;
	}
	free(e->hash);
	e->hash = xstrdup(hash);
	memcpy(e->mac, mac, 32);
	e->expires = now + CACHE_TTL;
}

/* a yescrypt hash of a random password: unknown users cost the same */
static const char dummy_hash[] =
    "$y$j9T$tBmFkCaVZy3lK3cDk1iGk/$dZuygeUtUo1G5QBSWImnTC4k7Q0/yyNm0mt7UQhNIbD";

struct user {
	char *name;
	char *hash;
};

/* An app password (bearer token): only its SHA-256 is kept. */
struct token {
	char *user;
	unsigned char sha[32];
};

struct auth_users {
	struct user *v;
	size_t n;
	struct token *t;
	size_t nt;
};

static int
unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return s[2 * n] == ':' || s[2 * n] == '\0' ? 0 : -1;
}

/* "user:id:sha256hex:created:label" lines, next to the users table. */
static int
tokens_load(struct auth_users *u, const char *path, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "re");
	char line[1024];
	int lineno = 0;

	if (fp == NULL && errno == ENOENT)
		return 0;              /* no app passwords yet */
	if (fp == NULL) {
		(void)snprintf(err, errsz, "tokens: %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') :
		    NULL;
		unsigned char sha[32];
		if (c1 == NULL || c1 == line || c2 == NULL ||
		    unhex(c2 + 1, sha, 32) != 0) {
			(void)snprintf(err, errsz, "%s:%d: expected "
			    "user:id:sha256:created:label", path, lineno);
			fclose(fp);
			return -1;
		}
		*c1 = '\0';
		u->t = xreallocarray(u->t, u->nt + 1, sizeof(*u->t));
		u->t[u->nt].user = xstrdup(line);
		ascii_lower(u->t[u->nt].user);
		memcpy(u->t[u->nt].sha, sha, 32);
		u->nt++;
	}
	fclose(fp);
	return 0;
}

const char *
auth_token_user(const struct auth_users *u, const char *token)
{
	unsigned char sha[32];
	const char *who = NULL;
	struct tls_sha256 *h = tls_sha256_new();

	tls_sha256_update(h, token, strlen(token));
	tls_sha256_final(h, sha);
	/* every entry compared in full: the time says nothing */
	for (size_t i = 0; u && i < u->nt; i++) {
		unsigned char d = 0;
		for (size_t k = 0; k < 32; k++)
			d |= (unsigned char)(sha[k] ^ u->t[i].sha[k]);
		if (d == 0)
			who = u->t[i].user;
	}
	return who;
}

struct auth_check {
	char user[SASL_FIELD_MAX];     /* lower-cased */
	char pass[SASL_FIELD_MAX];
	char hash[512];
	unsigned char mac[32];         /* of the password, for the cache */
	bool have_mac, cached;
	bool ok;
	auth_cb cb;
	void *arg;
};

struct auth_users *
auth_users_load(const char *path, char *err, size_t errsz)
{
	struct auth_users *u = xcalloc(1, sizeof(*u));
	FILE *fp = fopen(path, "re");
	char line[1024];
	int lineno = 0;

	if (fp == NULL) {
		(void)snprintf(err, errsz, "users: %s: %s", path,
		    strerror(errno));
		free(u);
		return NULL;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *colon = strchr(line, ':');
		if (colon == NULL || colon == line || colon[1] != '$') {
			(void)snprintf(err, errsz, "%s:%d: expected user:$hash",
			    path, lineno);
			fclose(fp);
			auth_users_free(u);
			return NULL;
		}
		*colon = '\0';
		u->v = xreallocarray(u->v, u->n + 1, sizeof(*u->v));
		u->v[u->n].name = xstrdup(line);
		ascii_lower(u->v[u->n].name);
		u->v[u->n].hash = xstrdup(colon + 1);
		u->n++;
	}
	fclose(fp);
	char *tp = xasprintf("%s" AUTH_TOKENS_SUFFIX, path);
	int rc = tokens_load(u, tp, err, errsz);
	free(tp);
	if (rc != 0) {
		auth_users_free(u);
		return NULL;
	}
	return u;
}

void
auth_users_free(struct auth_users *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].name);
		free(u->v[i].hash);
	}
	for (size_t i = 0; i < u->nt; i++)
		free(u->t[i].user);
	free(u->t);
	free(u->v);
	free(u);
}

static bool
ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static void
check_work(void *arg)
{
	struct auth_check *c = arg;

	if (c->cached)
		return;     /* the answer is known; only the order is kept */
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *h = c->hash[0] ? c->hash : dummy_hash;
	const char *out = crypt_r(c->pass, h, cd);

	c->ok = c->hash[0] && out && out[0] != '*' && ct_equal(out, h);
	explicit_bzero(c->pass, sizeof(c->pass));
	free(cd);
}

static void
check_done(void *arg)
{
	struct auth_check *c = arg;

	if (c->ok && !c->cached && c->have_mac)
		cache_put(c->user, c->hash, c->mac, (long)time(NULL));
	explicit_bzero(c->mac, sizeof(c->mac));
	if (c->cb)
		c->cb(c->arg, c->ok);
	free(c);
}

struct auth_check *
auth_check(struct auth_users *u, struct iopool *pool, const char *user,
    const char *pass, auth_cb cb, void *arg)
{
	struct auth_check *c = xcalloc(1, sizeof(*c));
	char lower[SASL_FIELD_MAX];

	(void)str_copy(c->pass, sizeof(c->pass), pass);
	(void)str_copy(lower, sizeof(lower), user);
	ascii_lower(lower);
	(void)str_copy(c->user, sizeof(c->user), lower);
	for (size_t i = 0; u && i < u->n; i++)
		if (strcmp(u->v[i].name, lower) == 0)
			(void)str_copy(c->hash, sizeof(c->hash), u->v[i].hash);
	if (c->hash[0]) {
		if (cache_hit(lower, c->hash, pass, (long)time(NULL))) {
			c->cached = c->ok = true;
			explicit_bzero(c->pass, sizeof(c->pass));
		} else
			c->have_mac = pass_mac(lower, pass, c->mac) == 0;
	}
	c->cb = cb;
	c->arg = arg;
	iopool_submit(pool, check_work, check_done, c);
	return c;
}

void
auth_check_detach(struct auth_check *c)
{
	c->cb = NULL;
}

struct ip_fail {
	char ip[48];
	long first;
	unsigned n;
};

static struct ip_fail fails[AUTH_IP_SLOTS];

static struct ip_fail *
ip_slot(const char *ip, long now, bool create)
{
	struct ip_fail *oldest = &fails[0];

	for (size_t i = 0; i < AUTH_IP_SLOTS; i++) {
		if (strcmp(fails[i].ip, ip) == 0) {
			if (now - fails[i].first > AUTH_FAIL_WINDOW) {
				fails[i].first = now;
				fails[i].n = 0;
			}
			return &fails[i];
		}
		if (fails[i].first < oldest->first)
			oldest = &fails[i];
	}
	if (!create)
		return NULL;
	(void)str_copy(oldest->ip, sizeof(oldest->ip), ip);
	oldest->first = now;
	oldest->n = 0;
	return oldest;
}

bool
auth_ip_blocked(const char *ip, long now)
{
	struct ip_fail *f = ip_slot(ip, now, false);

	return f && f->n >= AUTH_FAIL_MAX;
}

void
auth_ip_failed(const char *ip, long now, const char *protocol)
{
	char l[64];

	ip_slot(ip, now, true)->n++;
	metrics_label(l, sizeof(l), "protocol", protocol);
	metrics_add("tern_auth_failures_total", l, 1);
}

char *
auth_hash_password(const char *pass)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	char *out = NULL;

	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return NULL;
	cd = xcalloc(1, sizeof(*cd));
	const char *h = crypt_r(pass, salt, cd);
	if (h && h[0] != '*')
		out = xstrdup(h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return out;
}
