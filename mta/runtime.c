/* SPDX-License-Identifier: ISC */
/*
 * runtime.c - layer 2: a configuration generation (runtime.h). Loading
 * is all-or-nothing: a config that parses but whose plugins fail to load
 * is refused as a whole, so a reload never half-applies.
 */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/auth.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/tls.h"
#include "base/util.h"
#include "lua/config.h"
#include "mail/arc_seal.h"
#include "mail/dkim_sign.h"
#include "mail/dmarc.h"
#include "lua/hooks.h"

/* DMARC's organizational domains: the list read once per generation;
 * without it, the last two labels of a name. */
static struct psl *
psl_load(const char *path)
{
	FILE *fp = fopen(path, "re");
	struct buf text;
	char chunk[65536];
	size_t n;

	if (fp == NULL) {
		log_warnx("%s: %s (DMARC takes the last two labels of a name "
		    "as its organizational domain)", path, strerror(errno));
		return NULL;
	}
	buf_init(&text);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&text, chunk, n);
	(void)fclose(fp);
	struct psl *p = psl_parse(text.data ? text.data : "", text.len);
	buf_clear(&text);
	return p;
}

/* tern.http's https connections: chain and host name verified. */
static struct bufferevent *
http_tls_socket(void *arg, struct event_base *base, const char *host)
{
	return tls_client_socket(arg, base, host, true);
}

struct runtime *
runtime_load(const char *path, struct kvstore *kv, unsigned generation,
    bool make_cert, char *err, size_t errsz)
{
	struct runtime *rt;
	struct hooks_settings hs;
	struct config *cfg = config_load(path, err, errsz);

	if (cfg == NULL)
		return NULL;
	hs.plugins = (const char *const *)cfg->plugins;
	hs.nplugins = cfg->nplugins;
	hs.plugin_path = (const char *const *)cfg->plugin_path;
	hs.npath = cfg->npath;
	hs.plugin_config = cfg->plugin_config;
	hs.budget_ms = cfg->hook_budget_ms;
	hs.wait_ms = cfg->hook_wait_ms;
	hs.http_allow = (const char *const *)cfg->plugin_http_allow;
	hs.nhttp_allow = cfg->nhttp_allow;
	hs.mem_max = (size_t)cfg->plugin_memory;
	hs.hostname = cfg->hostname;
	hs.domains = (const char *const *)cfg->domains;
	hs.ndomains = cfg->ndomains;
	hs.kv = kv;
	rt = xcalloc(1, sizeof(*rt));
	rt->cfg = cfg;
	rt->refs = 1;
	rt->generation = generation;
	rt->hooks = hooks_new(&hs, err, errsz);
	if (rt->hooks == NULL) {
		config_free(cfg);
		free(rt);
		return NULL;
	}
	if (cfg->users && !(cfg->users_default && access(cfg->users, F_OK) !=
	    0) && (rt->users = auth_users_load(cfg->users, err, errsz)) ==
	    NULL) {
		runtime_unref(rt);
		return NULL;
	}
	if (cfg->tls_selfsigned && make_cert) {
		char dir[4096];
		(void)snprintf(dir, sizeof(dir), "%s/tls", cfg->data_dir);
		(void)mkdir(cfg->data_dir, 0700);
		(void)mkdir(dir, 0700);
		if (tls_selfsigned_ensure(cfg->tls_cert, cfg->tls_key,
		    cfg->hostname, err, errsz) != 0) {
			runtime_unref(rt);
			return NULL;
		}
	}
	if (!cfg->tls_selfsigned || access(cfg->tls_cert, R_OK) == 0) {
		rt->tls = tls_server_new(cfg->tls_cert, cfg->tls_key, err,
		    errsz);
		if (rt->tls == NULL) {
			runtime_unref(rt);
			return NULL;
		}
		for (size_t i = 0; i < cfg->ntls_names; i++) {
			const struct config_tls_name *tn = &cfg->tls_names[i];
			if (tn->nnames && tls_server_add_names(rt->tls,
			    (const char *const *)tn->names, tn->nnames,
			    tn->cert, tn->key, err, errsz) != 0) {
				runtime_unref(rt);
				return NULL;
			}
		}
	}
	if (cfg->ndkim && (rt->dkim = dkim_signer_new(cfg, err, errsz)) ==
	    NULL) {
		runtime_unref(rt);
		return NULL;
	}
	if (cfg->arc && (rt->arc = arc_sealer_new(cfg, err, errsz)) ==
	    NULL) {
		runtime_unref(rt);
		return NULL;
	}
	if (cfg->nhttp_allow) {
		rt->http_tls = tls_client_new(cfg->plugin_http_ca, err, errsz);
		if (rt->http_tls == NULL) {
			runtime_unref(rt);
			return NULL;
		}
		rt->http_tls_maker = (struct httpc_tls){ http_tls_socket,
			tls_handshake_failed, rt->http_tls };
	}
	rt->psl = psl_load(cfg->public_suffix_list);
	return rt;
}

struct runtime *
runtime_ref(struct runtime *rt)
{
	rt->refs++;
	return rt;
}

void
runtime_unref(struct runtime *rt)
{
	if (rt == NULL || --rt->refs > 0)
		return;
	hooks_free(rt->hooks);
	tls_server_free(rt->tls);
	auth_users_free(rt->users);
	dkim_signer_free(rt->dkim);
	arc_sealer_free(rt->arc);
	tls_client_free(rt->http_tls);
	psl_free(rt->psl);
	config_free(rt->cfg);
	free(rt);
}
