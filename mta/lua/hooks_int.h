/* SPDX-License-Identifier: ISC */
/*
 * hooks_int.h - private to hooks.c and hooks_call.c (the Lua bridge):
 * the plugin runtime's state and the call helper they share.
 */
#ifndef TERN_HOOKS_INT_H
#define TERN_HOOKS_INT_H

#include <time.h>

#include <lua.h>

#include "lua/hooks.h"

struct hooks_budget_mem {
	size_t used;
	size_t cap;
};

struct plugin {
	char *name;
	int fn_ref[HOOK_COUNT];  /* registry refs, LUA_NOREF if absent */
};

struct hooks {
	lua_State *L;
	struct hooks_budget_mem mem;
	struct plugin *plugins;
	size_t nplugins;
	bool has[HOOK_COUNT];
	unsigned budget_ms;
	struct timespec deadline;
	bool expired;
	size_t current;          /* plugin running, for tern.log and kv */
	enum hook_id current_hook;
	struct kvstore *kv;
	char *hostname;
	char **domains;
	size_t ndomains;
	int msg_mt_ref;          /* metatable of data-hook message objects */
	uint64_t calls;          /* hook calls made, for the cost figure */
	uint64_t call_ns;        /* time spent in them */
};

/*
 * Calls the function below nargs arguments on the stack with the time
 * budget. 0 with nres results pushed, or -1 (logged with plugin, hook and
 * line; nothing pushed).
 */
int hooks_pcall(struct hooks *h, size_t plugin, enum hook_id id, int nargs,
    int nres);
/* Pushes plugin p's function for hook id (caller checks it exists). */
void hooks_push_fn(struct hooks *h, size_t p, enum hook_id id);

#endif
