/* SPDX-License-Identifier: ISC */
/*
 * runtime.c - layer 2: a configuration generation (runtime.h). Loading
 * is all-or-nothing: a config that parses but whose plugins fail to load
 * is refused as a whole, so a reload never half-applies.
 */
#include "runtime.h"

#include <stdlib.h>

#include "config.h"
#include "hooks.h"
#include "util.h"

struct runtime *
runtime_load(const char *path, struct kvstore *kv, unsigned generation,
    char *err, size_t errsz)
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
	config_free(rt->cfg);
	free(rt);
}
