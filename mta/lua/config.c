/* SPDX-License-Identifier: ISC */
/*
 * config.c - layer 2: the configuration schema (config.h). Every key is
 * listed in one table with its type; unknown keys and wrong types are
 * refused with the file, the line that set the key, and the reason. Keys
 * that DESIGN.md names but this version does not implement yet are refused
 * as such, never silently ignored.
 *
 * The embedded default is a Lua text compiled in, evaluated exactly like
 * a file; the computed defaults (host name, data_dir from $TERN_HOME or
 * ./var, local domains) are filled in here afterwards.
 */
#include "lua/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/util.h>

#include "base/buf.h"
#include "base/intl.h"
#include "base/util.h"
#include "lua/hooks.h"
#include "smtp/smtp_parse.h"

static const char embedded_default[] =
    "-- Tern's embedded default (DESIGN.md section 3): serve on loopback\n"
    "-- as a non-root user, data under $TERN_HOME or ./var.\n"
    "listen = {\n"
    "  { addr = \"127.0.0.1:2525\", role = \"mx\" },\n"
    "  { addr = \"127.0.0.1:2587\", role = \"submission\" },\n"
    "  { addr = \"127.0.0.1:2143\", role = \"imap\" },\n"
    "  { addr = \"127.0.0.1:2080\", role = \"http\" },\n"
    "}\n"
    "trusted_networks = { \"127.0.0.0/8\", \"::1/128\" }\n"
    "plugins = { \"retry_default\" }\n";

/* 127.0.0.0/8 or ::1 (plain HTTP may listen only there) */
static bool
sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

struct ctx {
	const char *source;
	char *err;
	size_t errsz;
	int line;
	const char *key;
};

static int __attribute__((format(printf, 2, 3)))
fail(struct ctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->line > 0)
		(void)snprintf(c->err, c->errsz, "%s:%d: %s: %s", c->source,
		    c->line, c->key, msg);
	else
		(void)snprintf(c->err, c->errsz, "%s: %s: %s", c->source,
		    c->key, msg);
	return -1;
}

static int
want_str(struct ctx *c, const struct cfg_node *n, char **out)
{
	if (n->type != CFG_STR)
		return fail(c, "expected a string");
	free(*out);
	*out = xstrdup(n->s);
	return 0;
}

static int
want_uint(struct ctx *c, const struct cfg_node *n, uint64_t max,
    uint64_t *out)
{
	if (n->type == CFG_NUM && n->n == (double)(long long)n->n) {
		if (n->n < 0 || n->n > (double)max)
			return fail(c, "out of range (0..%llu)",
			    (unsigned long long)max);
		*out = (uint64_t)n->n;
		return 0;
	}
	if (n->type != CFG_INT)
		return fail(c, "expected a whole number");
	if (n->i < 0 || (uint64_t)n->i > max)
		return fail(c, "out of range (0..%llu)",
		    (unsigned long long)max);
	*out = (uint64_t)n->i;
	return 0;
}

/* A whole number in [min, max] into *out. */
static int
want_unsigned(struct ctx *c, const struct cfg_node *n, uint64_t min,
    uint64_t max, unsigned *out)
{
	uint64_t v = 0;

	if (want_uint(c, n, max, &v) != 0)
		return -1;
	if (v < min)
		return fail(c, "must be at least %llu", (unsigned long long)min);
	*out = (unsigned)v;
	return 0;
}

static int
want_list(struct ctx *c, const struct cfg_node *n)
{
	if (n->type != CFG_TABLE || n->nitems != n->narray)
		return fail(c, "expected a list { ... }");
	return 0;
}

static int
parse_netmask(const char *s, struct netmask *m)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int maxbits;

	if (alen >= sizeof(addr))
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(m, 0, sizeof(*m));
	if (inet_pton(AF_INET, addr, m->addr) == 1) {
		m->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, addr, m->addr) == 1) {
		m->family = AF_INET6;
		maxbits = 128;
	} else
		return -1;
	m->bits = maxbits;
	if (slash) {
		uint64_t b;
		if (parse_u64(slash + 1, strlen(slash + 1), &b) != 0 ||
		    b > (uint64_t)maxbits)
			return -1;
		m->bits = (int)b;
	}
	return 0;
}

static int
parse_listen(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	if (want_list(c, n) != 0)
		return -1;
	if (n->nitems == 0)
		return fail(c, "needs at least one listener");
	cfg->listen = xcalloc(n->nitems, sizeof(*cfg->listen));
	for (size_t i = 0; i < n->nitems; i++) {
		const struct cfg_node *it = &n->items[i];
		struct config_listen *l = &cfg->listen[cfg->nlisten++];
		const char *role = "mx", *tls = NULL;
		int sslen = (int)sizeof(l->ss);

		if (it->type != CFG_TABLE)
			return fail(c, "item %zu: expected { addr = ..., "
			    "role = ... }", i + 1);
		for (size_t k = 0; k < it->nitems; k++) {
			const struct cfg_node *f = &it->items[k];
			if (f->key && strcmp(f->key, "addr") == 0 &&
			    f->type == CFG_STR)
				l->addr = xstrdup(f->s);
			else if (f->key && strcmp(f->key, "role") == 0 &&
			    f->type == CFG_STR)
				role = f->s;
			else if (f->key && strcmp(f->key, "tls") == 0 &&
			    f->type == CFG_STR)
				tls = f->s;
			else
				return fail(c, "item %zu: unknown or mistyped "
				    "field '%s'", i + 1, f->key ? f->key : "?");
		}
		if (l->addr == NULL)
			return fail(c, "item %zu: addr is required", i + 1);
		if (evutil_parse_sockaddr_port(l->addr,
		    (struct sockaddr *)&l->ss, &sslen) != 0 ||
		    (l->ss.ss_family == AF_INET &&
		    ((struct sockaddr_in *)&l->ss)->sin_port == 0) ||
		    (l->ss.ss_family == AF_INET6 &&
		    ((struct sockaddr_in6 *)&l->ss)->sin6_port == 0))
			return fail(c, "item %zu: '%s' is not ADDRESS:PORT "
			    "(e.g. 0.0.0.0:25 or [::]:25)", i + 1, l->addr);
		l->sslen = (socklen_t)sslen;
		if (strcmp(role, "mx") == 0)
			l->role = ROLE_MX;
		else if (strcmp(role, "submission") == 0)
			l->role = ROLE_SUBMISSION;
		else if (strcmp(role, "submissions") == 0)
			l->role = ROLE_SUBMISSIONS;
		else if (strcmp(role, "imap") == 0)
			l->role = ROLE_IMAP;
		else if (strcmp(role, "imaps") == 0)
			l->role = ROLE_IMAPS;
		else if (strcmp(role, "http") == 0)
			l->role = ROLE_HTTP;
		else if (strcmp(role, "https") == 0)
			l->role = ROLE_HTTPS;
		else if (strcmp(role, "lmtp") == 0)
			l->role = ROLE_LMTP;
		else
			return fail(c, "item %zu: role must be \"mx\", "
			    "\"submission\", \"submissions\", \"imap\", "
			    "\"imaps\", \"http\", \"https\" or \"lmtp\"",
			    i + 1);
		if (l->role == ROLE_HTTP && !sockaddr_is_loopback(&l->ss))
			return fail(c, "item %zu: plain HTTP only on a "
			    "loopback address (127.0.0.0/8, ::1); elsewhere "
			    "role \"https\"", i + 1);
		/* LMTP has no AUTH: a final delivery any client could ask */
		if (l->role == ROLE_LMTP && !sockaddr_is_loopback(&l->ss))
			return fail(c, "item %zu: LMTP only on a loopback "
			    "address (127.0.0.0/8, ::1)", i + 1);
		if (tls == NULL)
			l->tls = l->role == ROLE_SUBMISSIONS ||
			    l->role == ROLE_IMAPS || l->role == ROLE_HTTPS ?
			    LISTEN_TLS_IMPLICIT : l->role == ROLE_HTTP ?
			    LISTEN_TLS_NONE : LISTEN_TLS_STARTTLS;
		else if (strcmp(tls, "starttls") == 0)
			l->tls = LISTEN_TLS_STARTTLS;
		else if (strcmp(tls, "implicit") == 0)
			l->tls = LISTEN_TLS_IMPLICIT;
		else if (strcmp(tls, "none") == 0)
			l->tls = LISTEN_TLS_NONE;
		else
			return fail(c, "item %zu: tls must be \"starttls\", "
			    "\"implicit\" or \"none\"", i + 1);
		if ((l->role == ROLE_SUBMISSIONS || l->role == ROLE_IMAPS ||
		    l->role == ROLE_HTTPS) && l->tls != LISTEN_TLS_IMPLICIT)
			return fail(c, "item %zu: roles \"submissions\", "
			    "\"imaps\" and \"https\" are implicit TLS "
			    "(RFC 8314)", i + 1);
		if (l->role == ROLE_HTTP && l->tls != LISTEN_TLS_NONE)
			return fail(c, "item %zu: role \"http\" is without "
			    "TLS (use role \"https\")", i + 1);
	}
	return 0;
}

static int
parse_limits(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	static const struct {
		const char *key;
		size_t off;
		uint64_t max;
		bool u64;
	} keys[] = {
#define L(k, max, u64) { #k, offsetof(struct config_limits, k), max, u64 }
		L(max_message_size, (uint64_t)1 << 40, true),
		L(max_header_size, 64u * 1024 * 1024, false),
		L(max_header_fields, 1000000, false),
		L(max_hops, 100000, false),
		L(max_recipients, 100000, false),
		L(max_connections, 1000000, false),
		L(max_connections_per_ip, 1000000, false),
		L(max_connections_per_trusted_ip, 1000000, false),
		L(max_errors, 100000, false),
		L(command_timeout, 86400, false),
		L(data_timeout, 86400, false),
		L(min_free_space, (uint64_t)1 << 50, true),
		L(quota_storage, (uint64_t)1 << 50, true),
		L(quota_messages, 1000000000, false),
		L(imap_connections_per_user, 1000000, false),
		L(http_head_timeout, 3600, false),
		L(http_body_timeout, 3600, false),
		L(http_keepalive_timeout, 86400, false),
#undef L
	};

	if (n->type != CFG_TABLE || n->narray != 0)
		return fail(c, "expected a table { key = value, ... }");
	for (size_t i = 0; i < n->nitems; i++) {
		const struct cfg_node *f = &n->items[i];
		size_t k;
		uint64_t v;
		for (k = 0; k < TERN_ARRAY_LEN(keys); k++)
			if (strcmp(keys[k].key, f->key) == 0)
				break;
		if (k == TERN_ARRAY_LEN(keys))
			return fail(c, "unknown key '%s'", f->key);
		if (want_uint(c, f, keys[k].max, &v) != 0)
			return -1;
		char *p = (char *)&cfg->limits + keys[k].off;
		if (keys[k].u64)
			memcpy(p, &v, sizeof(uint64_t));
		else {
			unsigned u = (unsigned)v;
			memcpy(p, &u, sizeof(unsigned));
		}
	}
	return 0;
}

int
config_submission_from(const char *s)
{
	if (strcmp(s, "strict") == 0)
		return SUBMISSION_FROM_STRICT;
	if (strcmp(s, "envelope") == 0)
		return SUBMISSION_FROM_ENVELOPE;
	if (strcmp(s, "none") == 0)
		return SUBMISSION_FROM_NONE;
	return -1;
}

const char *
config_submission_from_name(enum submission_from v)
{
	return v == SUBMISSION_FROM_NONE ? "none" :
	    v == SUBMISSION_FROM_ENVELOPE ? "envelope" : "strict";
}

int
config_tls_policy(const char *s)
{
	if (strcmp(s, "may") == 0)
		return 0;       /* SMTP_TLS_MAY */
	if (strcmp(s, "none") == 0)
		return 1;       /* SMTP_TLS_NONE */
	if (strcmp(s, "verify") == 0)
		return 2;       /* SMTP_TLS_VERIFY */
	if (strcmp(s, "dane") == 0)
		return 3;       /* SMTP_TLS_DANE */
	return -1;
}

const char *
config_tls_policy_name(int pol)
{
	static const char *const names[] = { "may", "none", "verify", "dane" };

	return pol >= 0 && pol < 4 ? names[pol] : "?";
}

static int
parse_client(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	static const struct {
		const char *key;
		size_t off;
		uint64_t min, max;
	} keys[] = {
#define K(k, lo, hi) { #k, offsetof(struct config, client.k), lo, hi }
		K(port, 1, 65535),
		K(connect_timeout, 1, 3600),
		K(command_timeout, 1, 86400),
		K(data_timeout, 1, 86400),
		K(idle_time, 0, 3600),
		K(max_per_destination, 1, 1000),
		K(mta_sts_port, 1, 65535),
		K(mta_sts_refresh, 1, 31557600),
#undef K
	};

	if (n->type != CFG_TABLE || n->narray != 0)
		return fail(c, "expected a table { key = value, ... }");
	for (size_t i = 0; i < n->nitems; i++) {
		const struct cfg_node *f = &n->items[i];
		size_t k;
		uint64_t v;
		if (strcmp(f->key, "tls") == 0) {
			int pol = config_tls_policy(f->type == CFG_STR ? f->s :
			    "");
			if (pol < 0)
				return fail(c, "tls must be \"dane\", \"may\", "
				    "\"none\" or \"verify\"");
			cfg->client.tls = pol;
			continue;
		}
		if (strcmp(f->key, "ca_file") == 0) {
			if (want_str(c, f, &cfg->client.ca_file) != 0)
				return -1;
			continue;
		}
		if (strcmp(f->key, "mta_sts") == 0) {
			if (f->type != CFG_BOOL)
				return fail(c, "mta_sts: expected true or false");
			cfg->client.mta_sts = f->b;
			continue;
		}
		for (k = 0; k < TERN_ARRAY_LEN(keys); k++)
			if (strcmp(keys[k].key, f->key) == 0)
				break;
		if (k == TERN_ARRAY_LEN(keys))
			return fail(c, "unknown key '%s'", f->key);
		if (want_uint(c, f, keys[k].max, &v) != 0)
			return -1;
		if (v < keys[k].min)
			return fail(c, "%s must be at least %llu", f->key,
			    (unsigned long long)keys[k].min);
		unsigned u = (unsigned)v;
		memcpy((char *)cfg + keys[k].off, &u, sizeof(u));
	}
	return 0;
}

/* { domain = "...", selector = "...", key = "..." } into d; item: its
 * number in a list, for messages (0: not in one) */
static int
parse_key(struct ctx *c, const struct cfg_node *it, size_t item,
    struct config_dkim *d)
{
	char where[32] = "";

	if (item)
		(void)snprintf(where, sizeof(where), "item %zu: ", item);
	if (it->type != CFG_TABLE)
		return fail(c, "%sexpected { domain = ..., selector = ..., "
		    "key = ... }", where);
	for (size_t k = 0; k < it->nitems; k++) {
		const struct cfg_node *f = &it->items[k];
		char **slot = NULL;
		if (f->key && strcmp(f->key, "domain") == 0)
			slot = &d->domain;
		else if (f->key && strcmp(f->key, "selector") == 0)
			slot = &d->selector;
		else if (f->key && strcmp(f->key, "key") == 0)
			slot = &d->key;
		if (slot == NULL || f->type != CFG_STR || *slot)
			return fail(c, "%sunknown or mistyped field '%s'", where,
			    f->key ? f->key : "?");
		*slot = xstrdup(f->s);
	}
	if (!d->domain || !d->selector || !d->key)
		return fail(c, "%sdomain, selector and key are required",
		    where);
	ascii_lower(d->domain);
	if (!smtp_valid_domain(d->domain, strlen(d->domain)))
		return fail(c, "%s'%s' is not a domain", where, d->domain);
	/* a selector is one or more labels (RFC 6376 3.1) */
	size_t sl = strlen(d->selector);
	if (sl == 0 || sl > 63 || strspn(d->selector,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-.") != sl || d->selector[0] == '.' ||
	    d->selector[sl - 1] == '.' || strstr(d->selector, ".."))
		return fail(c, "%s'%s' is not a selector", where, d->selector);
	return 0;
}

/*
 * One certificate: { cert = "...", key = "..." [, names = { ... }] };
 * names only where with_names (SNI entries of a list).
 */
static int
parse_cert(struct ctx *c, const struct cfg_node *n, char **cert, char **key,
    struct config_tls_name *tn, size_t item)
{
	char where[32] = "";

	if (item)
		(void)snprintf(where, sizeof(where), "item %zu: ", item);
	if (n->type != CFG_TABLE || n->narray != 0)
		return fail(c, "%sexpected { cert = \"...\", key = \"...\" }",
		    where);
	for (size_t i = 0; i < n->nitems; i++) {
		const struct cfg_node *f = &n->items[i];
		if (strcmp(f->key, "cert") == 0) {
			if (want_str(c, f, cert) != 0)
				return -1;
		} else if (strcmp(f->key, "key") == 0) {
			if (want_str(c, f, key) != 0)
				return -1;
		} else if (tn && strcmp(f->key, "names") == 0) {
			if (want_list(c, f) != 0)
				return -1;
			tn->names = xcalloc(f->nitems + 1, sizeof(char *));
			for (size_t k = 0; k < f->nitems; k++) {
				const struct cfg_node *it = &f->items[k];
				const char *nm = it->type == CFG_STR ? it->s : "";
				const char *dom = strncmp(nm, "*.", 2) == 0 ?
				    nm + 2 : nm;
				if (!smtp_valid_domain(dom, strlen(dom)) ||
				    dom[0] == '[')
					return fail(c, "%snames: '%s' is not a "
					    "host name (or *.domain)", where, nm);
				tn->names[tn->nnames] = xstrdup(nm);
				ascii_lower(tn->names[tn->nnames++]);
			}
		} else
			return fail(c, "%sunknown key '%s'", where, f->key);
	}
	if (!*cert || !*key)
		return fail(c, "%sneeds both cert and key", where);
	return 0;
}

/*
 * tls = { cert = "...", key = "..." }, or a list of them with names = {
 * ... } for SNI; the first one without names (else the first) is the
 * default.
 */
static int
parse_tls(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	if (n->type == CFG_TABLE && n->narray == 0)
		return parse_cert(c, n, &cfg->tls_cert, &cfg->tls_key, NULL, 0);
	if (want_list(c, n) != 0 || n->nitems == 0)
		return n->nitems == 0 ? fail(c, "an empty list") : -1;
	cfg->tls_names = xcalloc(n->nitems, sizeof(*cfg->tls_names));
	for (size_t i = 0; i < n->nitems; i++) {
		struct config_tls_name *tn = &cfg->tls_names[cfg->ntls_names++];
		if (parse_cert(c, &n->items[i], &tn->cert, &tn->key, tn,
		    i + 1) != 0)
			return -1;
	}
	/* the default: the first without names, else the first */
	size_t d = 0;
	while (d < cfg->ntls_names && cfg->tls_names[d].nnames > 0)
		d++;
	if (d == cfg->ntls_names)
		d = 0;
	cfg->tls_cert = xstrdup(cfg->tls_names[d].cert);
	cfg->tls_key = xstrdup(cfg->tls_names[d].key);
	return 0;
}

/* arc = { domain = "...", selector = "...", key = "..." } */
static int
parse_arc(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	cfg->arc = xcalloc(1, sizeof(*cfg->arc));
	return parse_key(c, n, 0, cfg->arc);
}

/* dkim = { { domain = "...", selector = "...", key = "..." }, ... } */
static int
parse_dkim(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	if (want_list(c, n) != 0)
		return -1;
	cfg->dkim = xcalloc(n->nitems + 1, sizeof(*cfg->dkim));
	for (size_t i = 0; i < n->nitems; i++) {
		struct config_dkim *d = &cfg->dkim[cfg->ndkim++];
		if (parse_key(c, &n->items[i], i + 1, d) != 0)
			return -1;
		for (size_t j = 0; j + 1 < cfg->ndkim; j++)
			if (strcmp(cfg->dkim[j].domain, d->domain) == 0 &&
			    strcmp(cfg->dkim[j].selector, d->selector) == 0)
				return fail(c, "item %zu: %s._domainkey.%s is "
				    "named twice", i + 1, d->selector,
				    d->domain);
	}
	return 0;
}

/* "host:port" or "[v6]:port", as tern.http.request compares them */
static bool
http_allow_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (colon == NULL || colon == s || parse_u64(colon + 1,
	    strlen(colon + 1), &port) != 0 || port == 0 || port > 65535)
		return false;
	if (s[0] == '[')
		return colon[-1] == ']' && colon - s > 2;
	for (const char *p = s; p < colon; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			return false;
	return true;
}

static int
apply(struct ctx *c, const struct cfg_node *n, struct config *cfg)
{
	uint64_t v;

	c->line = n->line;
	c->key = n->key ? n->key : "?";
	if (strcmp(c->key, "hostname") == 0) {
		if (want_str(c, n, &cfg->hostname) != 0)
			return -1;
		if (!smtp_valid_domain(cfg->hostname, strlen(cfg->hostname)))
			return fail(c, "'%s' is not a valid host name",
			    cfg->hostname);
		return 0;
	}
	if (strcmp(c->key, "data_dir") == 0)
		return want_str(c, n, &cfg->data_dir);
	if (strcmp(c->key, "listen") == 0)
		return parse_listen(c, n, cfg);
	if (strcmp(c->key, "limits") == 0)
		return parse_limits(c, n, cfg);
	if (strcmp(c->key, "io_threads") == 0)
		return want_unsigned(c, n, 1, 256, &cfg->io_threads);
	if (strcmp(c->key, "max_deliveries") == 0)
		return want_unsigned(c, n, 1, 100000, &cfg->max_deliveries);
	if (strcmp(c->key, "plugins") == 0 ||
	    strcmp(c->key, "plugin_path") == 0) {
		bool is_path = strcmp(c->key, "plugin_path") == 0;
		char ***list = is_path ? &cfg->plugin_path : &cfg->plugins;
		size_t *count = is_path ? &cfg->npath : &cfg->nplugins;
		if (want_list(c, n) != 0)
			return -1;
		*list = xcalloc(n->nitems + 1, sizeof(char *));
		for (size_t i = 0; i < n->nitems; i++) {
			if (n->items[i].type != CFG_STR)
				return fail(c, "item %zu: expected a string",
				    i + 1);
			(*list)[(*count)++] = xstrdup(n->items[i].s);
		}
		return 0;
	}
	if (strcmp(c->key, "plugin_config") == 0) {
		if (n->type != CFG_TABLE || n->narray != 0)
			return fail(c, "expected { plugin = { ... }, ... }");
		for (size_t i = 0; i < n->nitems; i++)
			if (n->items[i].type != CFG_TABLE)
				return fail(c, "'%s': expected a table",
				    n->items[i].key);
		cfg->plugin_config = n;
		return 0;
	}
	if (strcmp(c->key, "tls") == 0)
		return parse_tls(c, n, cfg);
	if (strcmp(c->key, "users") == 0)
		return want_str(c, n, &cfg->users);
	if (strcmp(c->key, "public_suffix_list") == 0)
		return want_str(c, n, &cfg->public_suffix_list);
	if (strcmp(c->key, "plugin_http_ca") == 0)
		return want_str(c, n, &cfg->plugin_http_ca);
	if (strcmp(c->key, "inbound_auth") == 0) {
		if (n->type != CFG_BOOL)
			return fail(c, "expected true or false");
		cfg->inbound_auth = n->b;
		return 0;
	}
	if (strcmp(c->key, "tls_reports") == 0) {
		if (n->type != CFG_BOOL)
			return fail(c, "expected true or false");
		cfg->tls_reports = n->b;
		return 0;
	}
	if (strcmp(c->key, "local_fast_path") == 0) {
		if (n->type != CFG_BOOL)
			return fail(c, "expected true or false");
		cfg->local_fast_path = n->b;
		return 0;
	}
	if (strcmp(c->key, "hardlink_deliveries") == 0) {
		if (n->type != CFG_BOOL)
			return fail(c, "expected true or false");
		cfg->hardlink_deliveries = n->b;
		return 0;
	}
	if (strcmp(c->key, "auth_loopback_plaintext") == 0) {
		if (n->type != CFG_BOOL)
			return fail(c, "expected true or false");
		cfg->auth_loopback_plaintext = n->b;
		return 0;
	}
	if (strcmp(c->key, "submission_from") == 0) {
		int sf = n->type == CFG_STR ? config_submission_from(n->s) :
		    -1;
		if (sf < 0)
			return fail(c, "expected \"strict\", \"envelope\" or "
			    "\"none\"");
		cfg->submission_from = (enum submission_from)sf;
		return 0;
	}
	if (strcmp(c->key, "resolver") == 0)
		return want_str(c, n, &cfg->resolver);
	if (strcmp(c->key, "dnssec") == 0) {
		/* "resolver": believe the resolver's AD bit (RFC 4035
		 * 4.9.3: only over a path to it that is itself secure) */
		if (n->type == CFG_STR && strcmp(n->s, "resolver") == 0) {
			cfg->dnssec = cfg->dnssec_resolver = true;
			return 0;
		}
		if (n->type != CFG_BOOL)
			return fail(c, "expected true, false or \"resolver\"");
		cfg->dnssec = n->b;
		cfg->dnssec_resolver = false;
		return 0;
	}
	if (strcmp(c->key, "dnssec_trust_anchor") == 0)
		return want_str(c, n, &cfg->dnssec_trust_anchor);
	if (strcmp(c->key, "user") == 0)
		return want_str(c, n, &cfg->user);
	if (strcmp(c->key, "relayhost") == 0)
		return want_str(c, n, &cfg->relayhost);
	if (strcmp(c->key, "dkim") == 0)
		return parse_dkim(c, n, cfg);
	if (strcmp(c->key, "arc") == 0)
		return parse_arc(c, n, cfg);
	if (strcmp(c->key, "authserv_id") == 0) {
		if (want_str(c, n, &cfg->authserv_id) != 0)
			return -1;
		size_t l = strlen(cfg->authserv_id);
		if (l == 0 || l > 200 || strcspn(cfg->authserv_id,
		    " \t\r\n;()\"\\") != l)
			return fail(c, "'%s' is not a name for "
			    "Authentication-Results", cfg->authserv_id);
		return 0;
	}
	if (strcmp(c->key, "http_public_url") == 0) {
		if (want_str(c, n, &cfg->http_public_url) != 0)
			return -1;
		size_t l = strlen(cfg->http_public_url);
		if ((strncmp(cfg->http_public_url, "https://", 8) != 0 &&
		    strncmp(cfg->http_public_url, "http://", 7) != 0) ||
		    l > 100 || cfg->http_public_url[l - 1] == '/' ||
		    strpbrk(cfg->http_public_url, " \t\"<>{}?#"))
			return fail(c, "expected \"https://host[:port][/path]\" "
			    "without a final '/'");
		return 0;
	}
	if (strcmp(c->key, "smtp_client") == 0)
		return parse_client(c, n, cfg);
	if (strcmp(c->key, "dns_timeout") == 0)
		return want_unsigned(c, n, 1, 600, &cfg->dns_timeout);
	if (strcmp(c->key, "delay_warning") == 0)
		return want_unsigned(c, n, 0, 365u * 86400, &cfg->delay_warning);
	if (strcmp(c->key, "hook_budget_ms") == 0)
		return want_unsigned(c, n, 1, 60000, &cfg->hook_budget_ms);
	if (strcmp(c->key, "hook_wait_ms") == 0)
		return want_unsigned(c, n, 1, 600000, &cfg->hook_wait_ms);
	if (strcmp(c->key, "plugin_http_allow") == 0) {
		if (want_list(c, n) != 0)
			return -1;
		cfg->plugin_http_allow = xcalloc(n->nitems + 1, sizeof(char *));
		for (size_t i = 0; i < n->nitems; i++) {
			const struct cfg_node *it = &n->items[i];
			if (it->type != CFG_STR || !http_allow_ok(it->s))
				return fail(c, "item %zu: expected \"HOST:PORT\" "
				    "(\"[ADDRESS]:PORT\" for IPv6)", i + 1);
			cfg->plugin_http_allow[cfg->nhttp_allow++] =
			    xstrdup(it->s);
		}
		return 0;
	}
	if (strcmp(c->key, "plugin_memory") == 0) {
		if (want_uint(c, n, (uint64_t)1 << 40, &v) != 0)
			return -1;
		if (v < 1024 * 1024)
			return fail(c, "must be at least 1 MiB");
		cfg->plugin_memory = v;
		return 0;
	}
	if (strcmp(c->key, "recipient_delimiter") == 0) {
		if (n->type != CFG_STR || strlen(n->s) > 1)
			return fail(c, "expected one character or \"\"");
		cfg->recipient_delimiter = n->s[0];
		return 0;
	}
	if (strcmp(c->key, "domains") == 0) {
		if (want_list(c, n) != 0)
			return -1;
		cfg->domains = xcalloc(n->nitems + 1, sizeof(char *));
		for (size_t i = 0; i < n->nitems; i++) {
			const struct cfg_node *it = &n->items[i];
			char ascii[256];
			/* kept in A-labels (a U-label is taken too) */
			if (it->type != CFG_STR || intl_domain_ascii(it->s,
			    ascii, sizeof(ascii)) != 0 ||
			    !smtp_valid_domain(ascii, strlen(ascii)) ||
			    ascii[0] == '[')
				return fail(c, "item %zu: not a domain name",
				    i + 1);
			cfg->domains[cfg->ndomains++] = xstrdup(ascii);
		}
		return 0;
	}
	if (strcmp(c->key, "trusted_networks") == 0) {
		if (want_list(c, n) != 0)
			return -1;
		cfg->trusted = xcalloc(n->nitems + 1, sizeof(*cfg->trusted));
		for (size_t i = 0; i < n->nitems; i++) {
			const struct cfg_node *it = &n->items[i];
			if (it->type != CFG_STR ||
			    parse_netmask(it->s, &cfg->trusted[i]) != 0)
				return fail(c, "item %zu: not an address or "
				    "ADDRESS/BITS network", i + 1);
			cfg->ntrusted++;
		}
		return 0;
	}
	return fail(c, "unknown setting");
}

static char *
absolute_path(const char *p)
{
	char cwd[PATH_MAX];

	if (p[0] == '/')
		return xstrdup(p);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(p);
	if (p[0] == '.' && p[1] == '/')
		p += 2;
	return xasprintf("%s/%s", cwd, p);
}

/*
 * plugin_path: relative entries are relative to the config file's
 * directory; without the key: /etc/tern/plugins (SYSCONFDIR), the
 * installed plugins (PKGDATADIR), and the source tree's plugins/ so an
 * uninstalled build finds the shipped ones.
 */
static int
resolve_plugin_path(struct config *cfg, const char *cfg_path)
{
	char dir[PATH_MAX];

	if (cfg->plugin_path == NULL) {
		cfg->plugin_path = xcalloc(4, sizeof(char *));
		cfg->plugin_path[cfg->npath++] = xstrdup(SYSCONFDIR
		    "/tern/plugins");
		cfg->plugin_path[cfg->npath++] = xstrdup(PKGDATADIR
		    "/plugins");
		cfg->plugin_path[cfg->npath++] = xstrdup(TERN_SRC_PLUGINS);
		return 0;
	}
	if (cfg_path == NULL || str_copy(dir, sizeof(dir), cfg_path) != 0)
		(void)str_copy(dir, sizeof(dir), ".");
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		(void)str_copy(dir, sizeof(dir), ".");
	for (size_t i = 0; i < cfg->npath; i++) {
		if (cfg->plugin_path[i][0] == '/')
			continue;
		char *abs = xasprintf("%s/%s", dir, cfg->plugin_path[i]);
		char *full = absolute_path(abs);
		free(abs);
		free(cfg->plugin_path[i]);
		cfg->plugin_path[i] = full;
	}
	return 0;
}

static int
read_text(const char *path, struct buf *out, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "re");
	char chunk[8192];
	size_t n;

	if (fp == NULL) {
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		buf_append(out, chunk, n);
		if (out->len > 4 * 1024 * 1024) {
			(void)snprintf(err, errsz, "%s: file too large", path);
			fclose(fp);
			return -1;
		}
	}
	if (ferror(fp)) {
		(void)snprintf(err, errsz, "%s: read error", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

struct config *
config_load(const char *path, char *err, size_t errsz)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct cfg_node *root;
	struct buf text;
	struct ctx c;
	char host[256];

	cfg->source = xstrdup(path ? path : "(embedded default)");
	cfg->recipient_delimiter = '+';
	cfg->io_threads = 8;
	cfg->max_deliveries = 64;
	cfg->limits.max_message_size = 50u * 1024 * 1024;
	/* Postfix's header_size_limit; no real message has 1,000 fields */
	cfg->limits.max_header_size = 100 * 1024;
	cfg->limits.max_header_fields = 1000;
	cfg->limits.max_recipients = 1000;
	cfg->limits.max_connections = 10000;
	cfg->limits.max_connections_per_ip = 50;
	cfg->limits.max_hops = 50;           /* as Postfix's hopcount_limit */
	/* an application on the same host or network (a webmail, a mailing
	 * list manager) may keep many connections open */
	cfg->limits.max_connections_per_trusted_ip = 1000;
	cfg->limits.max_errors = 20;
	cfg->limits.command_timeout = 300;  /* RFC 5321 4.5.3.2.7 */
	cfg->limits.data_timeout = 600;     /* RFC 5321 4.5.3.2.6 */
	cfg->limits.min_free_space = 64u * 1024 * 1024;
	cfg->limits.imap_connections_per_user = 50;  /* Dovecot's is 10 */
	cfg->limits.http_head_timeout = 30;
	cfg->limits.http_body_timeout = 60;
	cfg->limits.http_keepalive_timeout = 120;
	cfg->hook_budget_ms = 100;
	cfg->hook_wait_ms = 15000;
	cfg->plugin_memory = 64u * 1024 * 1024;
	cfg->delay_warning = 4 * 3600;
	cfg->dns_timeout = 20;
	cfg->dnssec = true;
	cfg->dnssec_trust_anchor = xstrdup("/usr/share/dns/root.key");
	cfg->client.tls = 3;                /* SMTP_TLS_DANE */
	cfg->inbound_auth = true;
	cfg->local_fast_path = true;
	cfg->hardlink_deliveries = true;
	cfg->tls_reports = true;
	cfg->public_suffix_list = xstrdup(
	    "/usr/share/publicsuffix/public_suffix_list.dat");
	cfg->client.port = 25;
	cfg->client.connect_timeout = 30;
	cfg->client.command_timeout = 300;  /* RFC 5321 4.5.3.2 */
	cfg->client.data_timeout = 600;
	cfg->client.idle_time = 5;
	cfg->client.max_per_destination = 10;
	cfg->client.mta_sts = true;
	cfg->client.mta_sts_port = 443;
	cfg->client.mta_sts_refresh = 86400;

	buf_init(&text);
	if (path == NULL)
		buf_append(&text, embedded_default, sizeof(embedded_default) - 1);
	else if (read_text(path, &text, err, errsz) != 0) {
		buf_clear(&text);
		config_free(cfg);
		return NULL;
	}
	root = hooks_eval_config(text.data, text.len, cfg->source, err, errsz);
	buf_clear(&text);
	if (root == NULL) {
		config_free(cfg);
		return NULL;
	}
	c.source = cfg->source;
	c.err = err;
	c.errsz = errsz;
	cfg->tree = root;
	for (size_t i = 0; i < root->nitems; i++) {
		if (apply(&c, &root->items[i], cfg) != 0) {
			config_free(cfg);
			return NULL;
		}
	}
	if (resolve_plugin_path(cfg, path) != 0) {
		(void)snprintf(err, errsz, "%s: plugin_path: path too long",
		    cfg->source);
		config_free(cfg);
		return NULL;
	}

	if (cfg->listen == NULL) {
		(void)snprintf(err, errsz, "%s: listen: at least one listener "
		    "is required", cfg->source);
		config_free(cfg);
		return NULL;
	}
	if (cfg->dnssec_resolver && cfg->resolver == NULL) {
		(void)snprintf(err, errsz, "%s: dnssec = \"resolver\" trusts "
		    "the AD bit of the resolver named by resolver = "
		    "\"ADDRESS\", and none is", cfg->source);
		config_free(cfg);
		return NULL;
	}
	if (cfg->hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
			(void)str_copy(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		cfg->hostname = xstrdup(host);
	}
	if (cfg->data_dir == NULL) {
		const char *home = getenv("TERN_HOME");
		cfg->data_dir = xstrdup(home && *home ? home : "./var");
	}
	char *abs = absolute_path(cfg->data_dir);
	free(cfg->data_dir);
	cfg->data_dir = abs;
	cfg->spool_dir = xasprintf("%s/spool", cfg->data_dir);
	if (cfg->tls_cert == NULL) {
		cfg->tls_cert = xasprintf("%s/tls/cert.pem", cfg->data_dir);
		cfg->tls_key = xasprintf("%s/tls/key.pem", cfg->data_dir);
		cfg->tls_selfsigned = true;
	}
	cfg->mail_dir = xasprintf("%s/mail", cfg->data_dir);
	if (cfg->users == NULL) {
		/* data_dir/users, used once `ternctl passwd` made it */
		cfg->users = xasprintf("%s/users", cfg->data_dir);
		cfg->users_default = true;
	}
	cfg->run_dir = xasprintf("%s/run", cfg->data_dir);
	for (size_t i = 0; i < cfg->ndkim; i++)
		if (cfg->dkim[i].key[0] != '/') {     /* under data_dir */
			char *k = xasprintf("%s/%s", cfg->data_dir,
			    cfg->dkim[i].key);
			free(cfg->dkim[i].key);
			cfg->dkim[i].key = k;
		}
	if (cfg->arc && cfg->arc->key[0] != '/') {
		char *k = xasprintf("%s/%s", cfg->data_dir, cfg->arc->key);
		free(cfg->arc->key);
		cfg->arc->key = k;
	}
	if (cfg->domains == NULL) {
		cfg->domains = xcalloc(3, sizeof(char *));
		cfg->domains[cfg->ndomains++] = xstrdup("localhost");
		if (!ascii_strcaseeq(cfg->hostname, "localhost") &&
		    smtp_valid_domain(cfg->hostname, strlen(cfg->hostname))) {
			cfg->domains[cfg->ndomains] = xstrdup(cfg->hostname);
			ascii_lower(cfg->domains[cfg->ndomains++]);
		}
	}
	if (cfg->trusted == NULL) {
		cfg->trusted = xcalloc(2, sizeof(*cfg->trusted));
		(void)parse_netmask("127.0.0.0/8", &cfg->trusted[0]);
		(void)parse_netmask("::1/128", &cfg->trusted[1]);
		cfg->ntrusted = 2;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	cfg_node_free(cfg->tree);
	free(cfg->resolver);
	free(cfg->dnssec_trust_anchor);
	free(cfg->user);
	free(cfg->relayhost);
	free(cfg->authserv_id);
	free(cfg->plugin_http_ca);
	free(cfg->public_suffix_list);
	free(cfg->http_public_url);
	for (size_t i = 0; i < cfg->ndkim; i++) {
		free(cfg->dkim[i].domain);
		free(cfg->dkim[i].selector);
		free(cfg->dkim[i].key);
	}
	free(cfg->dkim);
	if (cfg->arc) {
		free(cfg->arc->domain);
		free(cfg->arc->selector);
		free(cfg->arc->key);
		free(cfg->arc);
	}
	free(cfg->tls_cert);
	free(cfg->tls_key);
	for (size_t i = 0; i < cfg->ntls_names; i++) {
		struct config_tls_name *tn = &cfg->tls_names[i];
		for (size_t k = 0; k < tn->nnames; k++)
			free(tn->names[k]);
		free(tn->names);
		free(tn->cert);
		free(tn->key);
	}
	free(cfg->tls_names);
	free(cfg->users);
	free(cfg->client.ca_file);
	for (size_t i = 0; i < cfg->nplugins; i++)
		free(cfg->plugins[i]);
	free(cfg->plugins);
	for (size_t i = 0; i < cfg->nhttp_allow; i++)
		free(cfg->plugin_http_allow[i]);
	free(cfg->plugin_http_allow);
	for (size_t i = 0; i < cfg->npath; i++)
		free(cfg->plugin_path[i]);
	free(cfg->plugin_path);
	free(cfg->source);
	free(cfg->hostname);
	free(cfg->data_dir);
	free(cfg->spool_dir);
	free(cfg->mail_dir);
	free(cfg->run_dir);
	for (size_t i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i].addr);
	free(cfg->listen);
	for (size_t i = 0; i < cfg->ndomains; i++)
		free(cfg->domains[i]);
	free(cfg->domains);
	free(cfg->trusted);
	free(cfg);
}

const char *
config_role_name(enum listen_role role)
{
	return role == ROLE_SUBMISSIONS ? "submissions" :
	    role == ROLE_SUBMISSION ? "submission" : role == ROLE_IMAP ?
	    "imap" : role == ROLE_IMAPS ? "imaps" : role == ROLE_HTTP ?
	    "http" : role == ROLE_HTTPS ? "https" : role == ROLE_LMTP ?
	    "lmtp" : "mx";
}

/* A Lua string literal: what was read comes back the same. */
static void
print_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(fp, "\\%03u", *p);
		else
			fputc(*p, fp);
	}
	fputc('"', fp);
}

static void
print_str_key(FILE *fp, const char *key, const char *value)
{
	fprintf(fp, "%s = ", key);
	print_str(fp, value);
	fputc('\n', fp);
}

static void
print_list(FILE *fp, const char *key, char *const *items, size_t n)
{
	fprintf(fp, "%s = {", key);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ", " : " ", fp);
		print_str(fp, items[i]);
	}
	fputs(" }\n", fp);
}

static int
cmp_node_key(const void *a, const void *b)
{
	const struct cfg_node *x = *(const struct cfg_node *const *)a;
	const struct cfg_node *y = *(const struct cfg_node *const *)b;

	return strcmp(x->key, y->key);
}

/*
 * A value of plugin_config, as the plugin will see it: the list part in
 * order, then the keys sorted (Lua's own order changes from run to run).
 */
static void
print_node(FILE *fp, const struct cfg_node *n, int depth)
{
	switch (n->type) {
	case CFG_BOOL:
		fputs(n->b ? "true" : "false", fp);
		return;
	case CFG_INT:
		fprintf(fp, "%lld", n->i);
		return;
	case CFG_NUM:
		fprintf(fp, "%.17g", n->n);
		return;
	case CFG_STR:
		print_str(fp, n->s);
		return;
	case CFG_TABLE:
		break;
	}
	const struct cfg_node **items = xcalloc(n->nitems + 1,
	    sizeof(*items));
	size_t nkeyed = 0;
	for (size_t i = 0; i < n->nitems; i++)
		items[i] = &n->items[i];
	for (size_t i = 0; i < n->nitems; i++)
		if (n->items[i].key)
			nkeyed++;
	if (nkeyed == n->nitems - n->narray && nkeyed > 1)
		qsort(items + n->narray, nkeyed, sizeof(*items), cmp_node_key);
	fputc('{', fp);
	for (size_t i = 0; i < n->nitems; i++) {
		const struct cfg_node *it = items[i];
		fprintf(fp, "%s\n%*s", i ? "," : "", 2 * (depth + 1), "");
		if (it->key) {
			fputc('[', fp);
			print_str(fp, it->key);
			fputs("] = ", fp);
		}
		print_node(fp, it, depth + 1);
	}
	if (n->nitems)
		fprintf(fp, ",\n%*s", 2 * depth, "");
	fputc('}', fp);
	free(items);
}

/*
 * Prints the configuration as a Lua file that loads back to the same
 * configuration (tests/integration/test_config.py feeds it back): every
 * key, defaults included; a key whose absence means something prints as
 * "key = nil" with the meaning in a comment.
 */
void
config_print(const struct config *cfg, FILE *fp)
{
	char addr[INET6_ADDRSTRLEN];

	fprintf(fp, "-- effective configuration from %s\n", cfg->source);
	print_str_key(fp, "hostname", cfg->hostname);
	print_str_key(fp, "data_dir", cfg->data_dir);
	fprintf(fp, "listen = {\n");
	for (size_t i = 0; i < cfg->nlisten; i++) {
		fputs("  { addr = ", fp);
		print_str(fp, cfg->listen[i].addr);
		fprintf(fp, ", role = \"%s\", tls = \"%s\" },\n",
		    config_role_name(cfg->listen[i].role),
		    cfg->listen[i].tls == LISTEN_TLS_IMPLICIT ? "implicit" :
		    cfg->listen[i].tls == LISTEN_TLS_NONE ? "none" : "starttls");
	}
	fputs("}\n", fp);
	if (cfg->tls_selfsigned) {
		fputs("tls = nil -- self-signed, made at first start: ", fp);
		fprintf(fp, "%s, %s\n", cfg->tls_cert, cfg->tls_key);
	} else {
		fputs("tls = { cert = ", fp);
		print_str(fp, cfg->tls_cert);
		fputs(", key = ", fp);
		print_str(fp, cfg->tls_key);
		fputs(" }\n", fp);
	}
	for (size_t i = 0; i < cfg->ntls_names; i++) {
		const struct config_tls_name *tn = &cfg->tls_names[i];
		if (tn->nnames == 0)
			continue;
		fputs("-- by SNI: ", fp);
		for (size_t k = 0; k < tn->nnames; k++)
			fprintf(fp, "%s%s", k ? ", " : "", tn->names[k]);
		fputs(" -> ", fp);
		print_str(fp, tn->cert);
		fputs("\n", fp);
	}
	if (cfg->users && !cfg->users_default)
		print_str_key(fp, "users", cfg->users);
	else
		fprintf(fp, "users = nil -- %s, once ternctl passwd made it\n",
		    cfg->users);
	fprintf(fp, "inbound_auth = %s\n", cfg->inbound_auth ? "true" :
	    "false");
	fprintf(fp, "tls_reports = %s\n", cfg->tls_reports ? "true" :
	    "false");
	fprintf(fp, "local_fast_path = %s\n", cfg->local_fast_path ? "true" :
	    "false");
	fprintf(fp, "hardlink_deliveries = %s\n", cfg->hardlink_deliveries ?
	    "true" : "false");
	print_str_key(fp, "public_suffix_list", cfg->public_suffix_list);
	fprintf(fp, "auth_loopback_plaintext = %s\n",
	    cfg->auth_loopback_plaintext ? "true" : "false");
	fprintf(fp, "submission_from = \"%s\"\n",
	    config_submission_from_name(cfg->submission_from));
	print_list(fp, "domains", cfg->domains, cfg->ndomains);
	fprintf(fp, "trusted_networks = {");
	for (size_t i = 0; i < cfg->ntrusted; i++) {
		const struct netmask *m = &cfg->trusted[i];
		inet_ntop(m->family, m->addr, addr, sizeof(addr));
		fprintf(fp, "%s\"%s/%d\"", i ? ", " : " ", addr, m->bits);
	}
	fprintf(fp, " }\n");
	char delim[2] = { cfg->recipient_delimiter, '\0' };
	print_str_key(fp, "recipient_delimiter", delim);
	fprintf(fp, "io_threads = %u\nmax_deliveries = %u\n", cfg->io_threads,
	    cfg->max_deliveries);
	fprintf(fp, "limits = {\n");
	fprintf(fp, "  max_message_size = %llu,\n",
	    (unsigned long long)cfg->limits.max_message_size);
	fprintf(fp, "  max_header_size = %u,\n", cfg->limits.max_header_size);
	fprintf(fp, "  max_header_fields = %u,\n",
	    cfg->limits.max_header_fields);
	fprintf(fp, "  max_hops = %u,\n", cfg->limits.max_hops);
	fprintf(fp, "  max_recipients = %u,\n", cfg->limits.max_recipients);
	fprintf(fp, "  max_connections = %u,\n", cfg->limits.max_connections);
	fprintf(fp, "  max_connections_per_ip = %u,\n",
	    cfg->limits.max_connections_per_ip);
	fprintf(fp, "  max_connections_per_trusted_ip = %u,\n",
	    cfg->limits.max_connections_per_trusted_ip);
	fprintf(fp, "  max_errors = %u,\n", cfg->limits.max_errors);
	fprintf(fp, "  command_timeout = %u,\n", cfg->limits.command_timeout);
	fprintf(fp, "  data_timeout = %u,\n", cfg->limits.data_timeout);
	fprintf(fp, "  min_free_space = %llu,\n",
	    (unsigned long long)cfg->limits.min_free_space);
	fprintf(fp, "  quota_storage = %llu,\n  quota_messages = %u,\n",
	    (unsigned long long)cfg->limits.quota_storage,
	    cfg->limits.quota_messages);
	fprintf(fp, "  imap_connections_per_user = %u,\n",
	    cfg->limits.imap_connections_per_user);
	fprintf(fp, "  http_head_timeout = %u, http_body_timeout = %u,\n"
	    "  http_keepalive_timeout = %u,\n}\n",
	    cfg->limits.http_head_timeout, cfg->limits.http_body_timeout,
	    cfg->limits.http_keepalive_timeout);
	print_list(fp, "plugins", cfg->plugins, cfg->nplugins);
	print_list(fp, "plugin_path", cfg->plugin_path, cfg->npath);
	if (cfg->plugin_config) {
		fputs("plugin_config = ", fp);
		print_node(fp, cfg->plugin_config, 0);
		fputc('\n', fp);
	} else
		fputs("plugin_config = nil\n", fp);
	fprintf(fp, "hook_budget_ms = %u\nhook_wait_ms = %u\n"
	    "plugin_memory = %llu\n", cfg->hook_budget_ms, cfg->hook_wait_ms,
	    (unsigned long long)cfg->plugin_memory);
	print_list(fp, "plugin_http_allow", cfg->plugin_http_allow,
	    cfg->nhttp_allow);
	if (cfg->plugin_http_ca)
		print_str_key(fp, "plugin_http_ca", cfg->plugin_http_ca);
	else
		fputs("plugin_http_ca = nil -- https: the system's trust store\n",
		    fp);
	if (cfg->resolver)
		print_str_key(fp, "resolver", cfg->resolver);
	else
		fputs("resolver = nil -- /etc/resolv.conf\n", fp);
	fprintf(fp, "dnssec = %s\n", cfg->dnssec_resolver ? "\"resolver\"" :
	    cfg->dnssec ? "true" : "false");
	print_str_key(fp, "dnssec_trust_anchor", cfg->dnssec_trust_anchor);
	if (cfg->user)
		print_str_key(fp, "user", cfg->user);
	else
		fputs("user = nil -- stays the user it was started as\n", fp);
	if (cfg->http_public_url)
		print_str_key(fp, "http_public_url", cfg->http_public_url);
	if (cfg->authserv_id)
		print_str_key(fp, "authserv_id", cfg->authserv_id);
	else
		fputs("authserv_id = nil -- the host name\n", fp);
	fputs("dkim = {", fp);
	for (size_t i = 0; i < cfg->ndkim; i++) {
		fputs(i ? ",\n  { domain = " : "\n  { domain = ", fp);
		print_str(fp, cfg->dkim[i].domain);
		fputs(", selector = ", fp);
		print_str(fp, cfg->dkim[i].selector);
		fputs(", key = ", fp);
		print_str(fp, cfg->dkim[i].key);
		fputs(" }", fp);
	}
	fputs(cfg->ndkim ? "\n}\n" : " } -- no DKIM signing\n", fp);
	if (cfg->arc) {
		fputs("arc = { domain = ", fp);
		print_str(fp, cfg->arc->domain);
		fputs(", selector = ", fp);
		print_str(fp, cfg->arc->selector);
		fputs(", key = ", fp);
		print_str(fp, cfg->arc->key);
		fputs(" }\n", fp);
	} else
		fputs("arc = nil -- no ARC sealing of forwarded mail\n", fp);
	if (cfg->relayhost)
		print_str_key(fp, "relayhost", cfg->relayhost);
	else
		fputs("relayhost = nil -- MX delivery\n", fp);
	fprintf(fp, "delay_warning = %u\ndns_timeout = %u\n",
	    cfg->delay_warning, cfg->dns_timeout);
	fprintf(fp, "smtp_client = { port = %u, connect_timeout = %u, "
	    "command_timeout = %u,\n  data_timeout = %u, idle_time = %u, "
	    "max_per_destination = %u,\n  tls = \"%s\"",
	    cfg->client.port, cfg->client.connect_timeout,
	    cfg->client.command_timeout, cfg->client.data_timeout,
	    cfg->client.idle_time, cfg->client.max_per_destination,
	    config_tls_policy_name(cfg->client.tls));
	fprintf(fp, ",\n  mta_sts = %s, mta_sts_port = %u, mta_sts_refresh = %u",
	    cfg->client.mta_sts ? "true" : "false", cfg->client.mta_sts_port,
	    cfg->client.mta_sts_refresh);
	if (cfg->client.ca_file) {
		fputs(", ca_file = ", fp);
		print_str(fp, cfg->client.ca_file);
	}
	fputs(" }\n", fp);
}

const char *
config_trust_anchor(const struct config *cfg, char *why, size_t whysz)
{
	why[0] = '\0';
	if (!cfg->dnssec) {
		(void)snprintf(why, whysz, "dnssec = false");
		return NULL;
	}
	if (cfg->dnssec_resolver) {
		(void)snprintf(why, whysz, "dnssec = \"resolver\": the "
		    "resolver validates");
		return NULL;
	}
	if (access(cfg->dnssec_trust_anchor, R_OK) != 0) {
		(void)snprintf(why, whysz, "no trust anchor at %s (Debian's "
		    "dns-root-data has one)", cfg->dnssec_trust_anchor);
		return NULL;
	}
	return cfg->dnssec_trust_anchor;
}

bool
config_is_local_domain(const struct config *cfg, const char *domain)
{
	char a[256];

	/* the domains are kept in A-labels: a U-label is asked by its
	 * A-label form (IDNA2008), an ASCII name as it is */
	if (!intl_is_ascii(domain, strlen(domain))) {
		if (intl_domain_ascii(domain, a, sizeof(a)) != 0)
			return false;
		domain = a;
	}
	for (size_t i = 0; i < cfg->ndomains; i++)
		if (ascii_strcaseeq(cfg->domains[i], domain))
			return true;
	return false;
}

bool
config_user_owns(const struct config *cfg, const char *user,
    const char *local, const char *domain)
{
	char base[256], addr[512];
	char delim = cfg->recipient_delimiter;

	if (str_copy(base, sizeof(base), local) != 0)
		return false;
	char *ext = delim ? strchr(base, delim) : NULL;
	if (ext && ext > base)
		*ext = '\0';
	if (strchr(user, '@')) {
		(void)snprintf(addr, sizeof(addr), "%s@%s", base, domain);
		return ascii_strcaseeq(addr, user);
	}
	return ascii_strcaseeq(base, user) && config_is_local_domain(cfg,
	    domain);
}

static bool
mask_match(const struct netmask *m, const unsigned char *a)
{
	int full = m->bits / 8, rest = m->bits % 8;

	if (memcmp(m->addr, a, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (m->addr[full] & mask) == (a[full] & mask);
}

bool
config_is_trusted(const struct config *cfg, const struct sockaddr *sa)
{
	const unsigned char *a4 = NULL, *a6 = NULL;
	unsigned char mapped[4];

	if (sa->sa_family == AF_INET)
		a4 = (const unsigned char *)&((const struct sockaddr_in *)sa)
		    ->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		a6 = in6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			memcpy(mapped, in6->s6_addr + 12, 4);
			a4 = mapped;
		}
	}
	for (size_t i = 0; i < cfg->ntrusted; i++) {
		const struct netmask *m = &cfg->trusted[i];
		if (m->family == AF_INET && a4 && mask_match(m, a4))
			return true;
		if (m->family == AF_INET6 && a6 && mask_match(m, a6))
			return true;
	}
	return false;
}
