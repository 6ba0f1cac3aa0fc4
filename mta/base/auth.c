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

#include "base/iopool.h"
#include "base/sasl.h"
#include "base/util.h"

#define AUTH_FAIL_MAX 10
#define AUTH_FAIL_WINDOW 600
#define AUTH_IP_SLOTS 1024

/* a yescrypt hash of a random password: unknown users cost the same */
static const char dummy_hash[] =
    "$y$j9T$tBmFkCaVZy3lK3cDk1iGk/$dZuygeUtUo1G5QBSWImnTC4k7Q0/yyNm0mt7UQhNIbD";

struct user {
	char *name;
	char *hash;
};

struct auth_users {
	struct user *v;
	size_t n;
};

struct auth_check {
	char user[SASL_FIELD_MAX];
	char pass[SASL_FIELD_MAX];
	char hash[512];
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

	(void)str_copy(c->user, sizeof(c->user), user);
	(void)str_copy(c->pass, sizeof(c->pass), pass);
	(void)str_copy(lower, sizeof(lower), user);
	ascii_lower(lower);
	for (size_t i = 0; u && i < u->n; i++)
		if (strcmp(u->v[i].name, lower) == 0)
			(void)str_copy(c->hash, sizeof(c->hash), u->v[i].hash);
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
auth_ip_failed(const char *ip, long now)
{
	ip_slot(ip, now, true)->n++;
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
