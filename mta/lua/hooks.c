/* SPDX-License-Identifier: ISC */
/*
 * hooks.c - layer 2: the Lua bridge (see hooks.h): configuration
 * evaluation and the plugin runtime; hooks_call.c marshals each hook.
 * With hooks_call.c, the only code that includes Lua headers.
 *
 * Configuration evaluation:
 *
 *   - text chunks only (luaL_loadbufferx mode "t": no binary chunks);
 *   - a fresh state per evaluation with a capped allocator (16 MiB) and an
 *     instruction-count hook that stops a runaway config after a budget;
 *   - the chunk's _ENV is a new table whose __index is a small allow-list
 *     (string, table, math, pairs, ipairs, type, tostring, tonumber,
 *     select, error, assert, os.getenv) and whose __newindex records each
 *     global assignment with its line (lua_getinfo "l" of the caller);
 *   - the values are copied out into struct cfg_node trees; Lua functions,
 *     userdata and cycles are refused.
 *
 * The plugin runtime (after Redis's script_lua.c, with Lua 5.4 means):
 *
 *   - one lua_State per configuration generation, with a capped
 *     allocator (a NULL return makes Lua raise "not enough memory");
 *   - a frozen base: read-only proxies of string, table, math, utf8, a
 *     trimmed os (time, clock, date, difftime) and the tern module; no io,
 *     package/require, debug, load/loadfile/dofile, rawset, collectgarbage;
 *     the string metatable is locked (__metatable) so no plugin can reach
 *     or change what every string shares;
 *   - each plugin is a text chunk run once in its own _ENV (its globals
 *     stay its own; reads fall through to the base; `config` holds its
 *     plugin_config table) and must return a table of hook functions;
 *   - every call has a budget: a count hook checks a monotonic deadline
 *     every 1,000 instructions; once past it, it raises on every
 *     instruction, so a plugin's own pcall cannot swallow the kill.
 *     Errors are logged with plugin, hook and line. The queue's hooks go
 *     through hooks_pcall(); the verdict hooks run each plugin as a
 *     coroutine (hooks_call.c) that may yield in the waiting functions of
 *     hooks_wait.c, their running time summed over resumptions and their
 *     waiting bounded by a wall-clock timer.
 */
#include "lua/hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "lua/hooks_int.h"
#include "lua/kvstore.h"

#define CONFIG_MEM_MAX (16u * 1024 * 1024)
#define CONFIG_INSN_MAX 10000000
#define CONFIG_DEPTH_MAX 16
#define CONFIG_NODES_MAX 100000

#define lua_budget hooks_budget_mem

/* lua_Alloc with a cap: returning NULL makes Lua raise a memory error. */
static void *
capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lua_budget *b = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		b->used -= old;
		return NULL;
	}
	if (nsize > old && b->used + (nsize - old) > b->cap)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p != NULL)
		b->used = b->used - old + nsize;
	return p;
}

/*
 * The config's budget: instructions and wall-clock time. One VM
 * instruction can be long (string.rep of megabytes), so the hook runs
 * every CONFIG_HOOK_EVERY instructions and looks at the clock too;
 * fuzz_config found a config that ran for minutes within the count.
 */
#define CONFIG_HOOK_EVERY 100
#define CONFIG_TIME_MAX_MS 2000

struct config_budget {
	long insns;
	struct timespec start;
	bool expired;
};

static void
insn_hook(lua_State *L, lua_Debug *ar)
{
	struct config_budget *b = *(struct config_budget **)lua_getextraspace(L);
	struct timespec now;

	(void)ar;
	if (!b->expired) {
		b->insns += CONFIG_HOOK_EVERY;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (b->insns < CONFIG_INSN_MAX &&
		    (now.tv_sec - b->start.tv_sec) * 1000 +
		    (now.tv_nsec - b->start.tv_nsec) / 1000000 <
		    CONFIG_TIME_MAX_MS)
			return;
		b->expired = true;
		/* every instruction raises from now on: pcall cannot hide it */
		lua_sethook(L, insn_hook, LUA_MASKCOUNT, 1);
	}
	luaL_error(L, "the config used more than its budget (%d million "
	    "instructions or %d ms)", CONFIG_INSN_MAX / 1000000,
	    CONFIG_TIME_MAX_MS);
}

/* __newindex of the config _ENV: store the value, remember the line. */
static int
env_newindex(lua_State *L)
{
	lua_Debug ar;
	int line = 0;

	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
		line = ar.currentline;
	if (lua_type(L, 2) == LUA_TSTRING) {
		lua_getfield(L, lua_upvalueindex(1), "n");
		lua_Integer n = lua_tointeger(L, -1) + 1;
		lua_pop(L, 1);
		lua_pushinteger(L, n);
		lua_setfield(L, lua_upvalueindex(1), "n");
		lua_newtable(L);
		lua_pushvalue(L, 2);
		lua_setfield(L, -2, "key");
		lua_pushinteger(L, line);
		lua_setfield(L, -2, "line");
		lua_rawseti(L, lua_upvalueindex(1), n);
	}
	lua_settop(L, 3);
	lua_rawset(L, 1);                        /* env[k] = v */
	return 0;
}

static int
os_getenv_safe(lua_State *L)
{
	const char *v = getenv(luaL_checkstring(L, 1));
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
	return 1;
}

/* Builds the allow-listed base table on the stack. */
static void
push_config_base(lua_State *L)
{
	static const char *const globals[] = { "pairs", "ipairs", "type",
		"tostring", "tonumber", "select", "error", "assert", "next",
		"string", "table", "math", NULL };

	luaL_requiref(L, "_G", luaopen_base, 1);
	luaL_requiref(L, "string", luaopen_string, 1);
	luaL_requiref(L, "table", luaopen_table, 1);
	luaL_requiref(L, "math", luaopen_math, 1);
	lua_pop(L, 4);
	lua_newtable(L);
	for (int i = 0; globals[i]; i++) {
		lua_getglobal(L, globals[i]);
		lua_setfield(L, -2, globals[i]);
	}
	lua_newtable(L);
	lua_pushcfunction(L, os_getenv_safe);
	lua_setfield(L, -2, "getenv");
	lua_setfield(L, -2, "os");
}

struct conv {
	char *err;
	size_t errsz;
	size_t nodes;
	const char *path;        /* top-level key, for messages */
};

static int to_node(lua_State *L, int idx, struct cfg_node *node, int depth,
    struct conv *cv);

static int
table_to_node(lua_State *L, int idx, struct cfg_node *node, int depth,
    struct conv *cv)
{
	size_t n = lua_rawlen(L, idx), cap, count = 0;

	idx = lua_absindex(L, idx);
	node->type = CFG_TABLE;
	/* count entries */
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
	}
	cap = count;
	node->items = xcalloc(cap ? cap : 1, sizeof(*node->items));
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			break;
		}
		/* counted before it is filled, so that a failure half way
		 * through is freed with the rest (fuzz_config found this) */
		node->nitems++;
		if (to_node(L, -1, &node->items[node->nitems - 1], depth + 1,
		    cv) != 0) {
			lua_pop(L, 1);
			return -1;
		}
		node->narray++;
		lua_pop(L, 1);
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_isinteger(L, -2)) {
			lua_Integer k = lua_tointeger(L, -2);
			if (k >= 1 && (size_t)k <= node->narray) {
				lua_pop(L, 1);
				continue;
			}
		}
		if (lua_type(L, -2) != LUA_TSTRING) {
			(void)snprintf(cv->err, cv->errsz,
			    "%s: table keys must be strings or a list",
			    cv->path);
			lua_pop(L, 2);
			return -1;
		}
		if (node->nitems >= cap) {
			lua_pop(L, 2);
			return -1;
		}
		struct cfg_node *it = &node->items[node->nitems];
		it->key = xstrdup(lua_tostring(L, -2));
		node->nitems++;
		if (to_node(L, -1, it, depth + 1, cv) != 0) {
			lua_pop(L, 2);
			return -1;
		}
		lua_pop(L, 1);
	}
	return 0;
}

static int
to_node(lua_State *L, int idx, struct cfg_node *node, int depth,
    struct conv *cv)
{
	if (depth > CONFIG_DEPTH_MAX || ++cv->nodes > CONFIG_NODES_MAX) {
		(void)snprintf(cv->err, cv->errsz, "%s: nested too deeply or "
		    "too large", cv->path);
		return -1;
	}
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		node->type = CFG_BOOL;
		node->b = lua_toboolean(L, idx);
		return 0;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			node->type = CFG_INT;
			node->i = lua_tointeger(L, idx);
		} else {
			node->type = CFG_NUM;
			node->n = lua_tonumber(L, idx);
		}
		return 0;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		if (strlen(s) != len) {
			(void)snprintf(cv->err, cv->errsz,
			    "%s: strings must not contain NUL", cv->path);
			return -1;
		}
		node->type = CFG_STR;
		node->s = xstrdup(s);
		return 0;
	}
	case LUA_TTABLE:
		return table_to_node(L, idx, node, depth, cv);
	default:
		(void)snprintf(cv->err, cv->errsz, "%s: a %s is not a valid "
		    "setting", cv->path, luaL_typename(L, idx));
		return -1;
	}
}

static void
cfg_node_clear(struct cfg_node *node)
{
	free(node->key);
	free(node->s);
	for (size_t i = 0; i < node->nitems; i++)
		cfg_node_clear(&node->items[i]);
	free(node->items);
}

const struct cfg_node *
cfg_node_get(const struct cfg_node *table, const char *key)
{
	if (table == NULL || table->type != CFG_TABLE)
		return NULL;
	for (size_t i = 0; i < table->nitems; i++)
		if (table->items[i].key && strcmp(table->items[i].key, key) == 0)
			return &table->items[i];
	return NULL;
}

void
cfg_node_free(struct cfg_node *node)
{
	if (node == NULL)
		return;
	cfg_node_clear(node);
	free(node);
}

/* Copies the recorded globals (stack: base, env, record) into a tree. */
static struct cfg_node *
collect(lua_State *L, int env, int rec, int ret, struct conv *cv)
{
	struct cfg_node *root = xcalloc(1, sizeof(*root));
	lua_Integer n;

	root->type = CFG_TABLE;
	if (ret != 0 && lua_istable(L, ret)) {
		cv->path = "(returned table)";
		if (table_to_node(L, ret, root, 0, cv) != 0) {
			cfg_node_free(root);
			return NULL;
		}
		return root;
	}
	lua_getfield(L, rec, "n");
	n = lua_tointeger(L, -1);
	lua_pop(L, 1);
	root->items = xcalloc((size_t)n + 1, sizeof(*root->items));
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, rec, i);
		lua_getfield(L, -1, "key");
		lua_getfield(L, -2, "line");
		const char *key = lua_tostring(L, -2);
		int line = (int)lua_tointeger(L, -1);
		/* a later assignment of the same key replaces the earlier */
		struct cfg_node *it = NULL;
		for (size_t k = 0; k < root->nitems; k++)
			if (strcmp(root->items[k].key, key) == 0) {
				it = &root->items[k];
				cfg_node_clear(it);
				memset(it, 0, sizeof(*it));
			}
		if (it == NULL)
			it = &root->items[root->nitems++];
		it->key = xstrdup(key);
		it->line = line;
		lua_getfield(L, env, key);
		cv->path = it->key;
		if (lua_isnil(L, -1)) {
			/* assigned nil: treat as not set */
			free(it->key);
			memset(it, 0, sizeof(*it));
			root->nitems--;
			lua_pop(L, 4);
			continue;
		}
		int rc = to_node(L, -1, it, 0, cv);
		lua_pop(L, 4);
		if (rc != 0) {
			char tmp[300];
			(void)snprintf(tmp, sizeof(tmp), "line %d: %s", line,
			    cv->err);
			(void)str_copy(cv->err, cv->errsz, tmp);
			cfg_node_free(root);
			return NULL;
		}
	}
	return root;
}

#define CHUNK_NAME "config"

/* The error on top of the stack, with CHUNK_NAME replaced by name. */
static void
lua_error_text(lua_State *L, const char *name, char *err, size_t errsz)
{
	const char *msg = lua_tostring(L, -1);
	size_t n = strlen(CHUNK_NAME);

	if (msg == NULL)
		msg = "error (not a string)";
	if (strncmp(msg, CHUNK_NAME ":", n + 1) == 0)
		(void)snprintf(err, errsz, "%s:%s", name, msg + n + 1);
	else
		(void)snprintf(err, errsz, "%s: %s", name, msg);
}

struct cfg_node *
hooks_eval_config(const char *text, size_t len, const char *name, char *err,
    size_t errsz)
{
	struct lua_budget budget = { 0, CONFIG_MEM_MAX };
	struct config_budget cb = { 0 };
	struct cfg_node *root = NULL;
	struct conv cv = { err, errsz, 0, "" };
	lua_State *L;
	int base, env, rec, top;

	L = lua_newstate(capped_alloc, &budget);
	if (L == NULL) {
		(void)snprintf(err, errsz, "%s: cannot create Lua state", name);
		return NULL;
	}
	push_config_base(L);
	base = lua_gettop(L);
	lua_newtable(L);                  /* env */
	env = lua_gettop(L);
	lua_newtable(L);                  /* record of assignments */
	rec = lua_gettop(L);
	lua_pushinteger(L, 0);
	lua_setfield(L, rec, "n");
	lua_newtable(L);                  /* metatable of env */
	lua_pushvalue(L, base);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, rec);
	lua_pushcclosure(L, env_newindex, 1);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, env);

	/*
	 * Lua shortens long chunk names with "..."; give it a short one and
	 * put the full file name back into its messages.
	 */
	if (luaL_loadbufferx(L, text, len, "=" CHUNK_NAME, "t") != LUA_OK) {
		lua_error_text(L, name, err, errsz);
		lua_close(L);
		return NULL;
	}
	lua_pushvalue(L, env);
	lua_setupvalue(L, -2, 1);         /* the chunk's _ENV */
	*(struct config_budget **)lua_getextraspace(L) = &cb;
	clock_gettime(CLOCK_MONOTONIC, &cb.start);
	lua_sethook(L, insn_hook, LUA_MASKCOUNT, CONFIG_HOOK_EVERY);
	top = lua_gettop(L) - 1;
	if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
		lua_error_text(L, name, err, errsz);
		lua_close(L);
		return NULL;
	}
	lua_sethook(L, NULL, 0, 0);
	root = collect(L, env, rec, lua_istable(L, top + 1) ? top + 1 : 0, &cv);
	if (root == NULL) {
		char tmp[512];
		(void)snprintf(tmp, sizeof(tmp), "%s: %s", name, err);
		(void)str_copy(err, errsz, tmp);
	}
	lua_close(L);
	return root;
}

/* --- the plugin runtime ---------------------------------------------- */

static const char *const hook_names[HOOK_COUNT] = {
	"connect", "helo", "mail", "rcpt", "data", "route", "retry",
	"delivered", "bounced",
};

const char *
hooks_name(enum hook_id id)
{
	return id < HOOK_COUNT ? hook_names[id] : "load";
}

static struct hooks *
hooks_of(lua_State *L)
{
	return *(struct hooks **)lua_getextraspace(L);
}

static int64_t
ms_left(const struct hooks *h)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(h->deadline.tv_sec - now.tv_sec) * 1000 +
	    (h->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

void
hooks_budget_hook(lua_State *L, lua_Debug *ar)
{
	struct hooks *h = hooks_of(L);

	(void)ar;
	if (!h->expired && ms_left(h) > 0)
		return;
	if (!h->expired) {
		h->expired = true;
		/* From now on every instruction raises: pcall cannot hide it. */
		lua_sethook(L, hooks_budget_hook, LUA_MASKCOUNT, 1);
	}
	luaL_error(L, "time budget of %d ms exceeded", (int)h->budget_ms);
}

static int
msgh(lua_State *L)
{
	if (!lua_isstring(L, 1))
		lua_pushfstring(L, "(error object is a %s value)",
		    luaL_typename(L, 1));
	return 1;
}

int
hooks_pcall(struct hooks *h, size_t plugin, enum hook_id id, int nargs,
    int nres)
{
	lua_State *L = h->L;
	int base = lua_gettop(L) - nargs, rc;

	clock_gettime(CLOCK_MONOTONIC, &h->deadline);
	h->deadline.tv_sec += h->budget_ms / 1000;
	h->deadline.tv_nsec += (long)(h->budget_ms % 1000) * 1000000L;
	if (h->deadline.tv_nsec >= 1000000000L) {
		h->deadline.tv_sec++;
		h->deadline.tv_nsec -= 1000000000L;
	}
	h->expired = false;
	h->current = plugin;
	h->current_hook = id;
	lua_pushcfunction(L, msgh);
	lua_insert(L, base);
	struct timespec t0 = h->deadline, t1;
	lua_sethook(L, hooks_budget_hook, LUA_MASKCOUNT, 1000);
	rc = lua_pcall(L, nargs, nres, base);
	lua_sethook(L, NULL, 0, 0);
	lua_remove(L, base);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	h->calls++;
	h->call_ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
	    (t1.tv_nsec - t0.tv_nsec)) + (uint64_t)h->budget_ms * 1000000u;
	if (rc != LUA_OK) {
		hooks_log_error(h, plugin, id, lua_tostring(L, -1));
		lua_pop(L, 1);
		/* A memory error may leave garbage: collect it now. */
		lua_gc(L, LUA_GCCOLLECT);
		return -1;
	}
	return 0;
}

void
hooks_log_error(struct hooks *h, size_t plugin, enum hook_id id,
    const char *msg)
{
	const char *pname = plugin < h->nplugins ? h->plugins[plugin].name :
	    "?";
	char l1[160], l2[64], labels[240];

	log_warnx("plugin=%s hook=%s error: %s", pname, hooks_name(id),
	    msg ? msg : "(error object is not a string)");
	metrics_label(l1, sizeof(l1), "plugin", pname);
	metrics_label(l2, sizeof(l2), "hook", hooks_name(id));
	(void)snprintf(labels, sizeof(labels), "%s,%s", l1, l2);
	metrics_add("tern_plugin_errors_total", labels, 1);
}

void
hooks_push_fn(struct hooks *h, size_t p, enum hook_id id)
{
	lua_rawgeti(h->L, LUA_REGISTRYINDEX, h->plugins[p].fn_ref[id]);
}

bool
hooks_has(const struct hooks *h, enum hook_id id)
{
	return h != NULL && h->has[id];
}

size_t
hooks_plugin_count(const struct hooks *h)
{
	return h ? h->nplugins : 0;
}

/* --- the tern module ------------------------------------------------- */

const char *
hooks_plugin_name(struct hooks *h)
{
	return h->current < h->nplugins ? h->plugins[h->current].name :
	    "(loading)";
}

/* tern.log(level, ...): "info", "warn" or "debug"; values joined by " " */
static int
l_log(lua_State *L)
{
	struct hooks *h = hooks_of(L);
	const char *level = luaL_checkstring(L, 1);
	luaL_Buffer b;
	int n = lua_gettop(L);

	luaL_buffinit(L, &b);
	for (int i = 2; i <= n; i++) {
		if (i > 2)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	const char *msg = lua_tostring(L, -1);
	if (strcmp(level, "warn") == 0)
		log_warnx("plugin=%s: %s", hooks_plugin_name(h), msg);
	else if (strcmp(level, "debug") == 0)
		log_debug("plugin=%s: %s", hooks_plugin_name(h), msg);
	else
		log_info("plugin=%s: %s", hooks_plugin_name(h), msg);
	return 0;
}

static int
l_now(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
	return 1;
}

static int64_t
unix_now(void)
{
	return (int64_t)time(NULL);
}

/* Keys are per plugin: "<plugin>\x1f<key>". */
static void
push_kv_key(lua_State *L, struct hooks *h)
{
	size_t len;
	const char *k = luaL_checklstring(L, 1, &len);

	if (strlen(k) != len)
		luaL_error(L, "kv keys must not contain NUL");
	lua_pushfstring(L, "%s\x1f%s", hooks_plugin_name(h), k);
}

static int
l_kv_get(lua_State *L)
{
	struct hooks *h = hooks_of(L);

	push_kv_key(L, h);
	const char *v = h->kv ? kvstore_get(h->kv, lua_tostring(L, -1),
	    unix_now()) : NULL;
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
	return 1;
}

static int64_t
opt_expiry(lua_State *L, int idx)
{
	lua_Integer ttl = luaL_optinteger(L, idx, 0);

	return ttl > 0 ? unix_now() + (int64_t)ttl : 0;
}

/* tern.kv_set(key, value [, ttl_seconds]); value nil deletes */
static int
l_kv_set(lua_State *L)
{
	struct hooks *h = hooks_of(L);
	int64_t expires = opt_expiry(L, 3);
	bool del = lua_isnoneornil(L, 2);
	size_t vlen = 0;
	const char *v = del ? NULL : luaL_tolstring(L, 2, &vlen);

	if (v && strlen(v) != vlen)
		return luaL_error(L, "kv values must not contain NUL");
	lua_settop(L, 2);
	push_kv_key(L, h);
	const char *key = lua_tostring(L, -1);
	if (h->kv == NULL)
		return 0;
	if (del) {
		kvstore_del(h->kv, key);
		return 0;
	}
	if (kvstore_set(h->kv, key, v, expires, unix_now()) != 0)
		return luaL_error(L, "kv store is full");
	return 0;
}

/* tern.kv_incr(key [, delta [, ttl]]) -> new value; ttl applies if new */
static int
l_kv_incr(lua_State *L)
{
	struct hooks *h = hooks_of(L);
	int64_t out = 0;
	lua_Integer delta = luaL_optinteger(L, 2, 1);
	int64_t expires = opt_expiry(L, 3);

	lua_settop(L, 1);
	push_kv_key(L, h);
	const char *key = lua_tostring(L, -1);
	if (h->kv && kvstore_incr(h->kv, key, (int64_t)delta, expires,
	    unix_now(), &out) != 0)
		return luaL_error(L, "kv store is full");
	lua_pushinteger(L, (lua_Integer)out);
	return 1;
}

/* tern.readlines(path) -> table of lines (for users and alias tables) */
static int
l_readlines(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	FILE *fp = fopen(path, "re");
	char line[4096];
	lua_Integer n = 0;

	if (fp == NULL)
		return luaL_error(L, "cannot read %s: %s", path,
		    strerror(errno));
	lua_newtable(L);
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t len = strlen(line);
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r'))
			line[--len] = '\0';
		lua_pushlstring(L, line, len);
		lua_rawseti(L, -2, ++n);
		if (n > 1000000) {
			fclose(fp);
			return luaL_error(L, "%s: too many lines", path);
		}
	}
	fclose(fp);
	return 1;
}

/* tern.is_local(domain) -> true if it is one of our domains */
static int
l_is_local(lua_State *L)
{
	struct hooks *h = hooks_of(L);
	const char *d = luaL_checkstring(L, 1);

	for (size_t i = 0; i < h->ndomains; i++)
		if (ascii_strcaseeq(h->domains[i], d)) {
			lua_pushboolean(L, 1);
			return 1;
		}
	lua_pushboolean(L, 0);
	return 1;
}

/* Case-insensitive glob: '*' any run, '?' one character. */
static bool
glob_match(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == '?' || (*p && ascii_tolower((unsigned char)*p) ==
		    ascii_tolower((unsigned char)*s))) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else
			return false;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static int
l_glob(lua_State *L)
{
	lua_pushboolean(L, glob_match(luaL_checkstring(L, 1),
	    luaL_checkstring(L, 2)));
	return 1;
}

/* --- sandbox construction -------------------------------------------- */

static int
l_readonly(lua_State *L)
{
	return luaL_error(L, "attempt to change a read-only table (%s)",
	    lua_isstring(L, 2) ? lua_tostring(L, 2) : "?");
}

/* Replaces the table on top with a read-only proxy of it. */
void
hooks_make_readonly(lua_State *L)
{
	lua_newtable(L);                 /* proxy */
	lua_newtable(L);                 /* its metatable */
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_readonly);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_remove(L, -2);
}

/* Copies the named fields of the global library lib into a new table. */
static void
push_lib_copy(lua_State *L, const char *lib, const char *const *only)
{
	lua_newtable(L);
	lua_getglobal(L, lib);
	if (only) {
		for (size_t i = 0; only[i]; i++) {
			lua_getfield(L, -1, only[i]);
			lua_setfield(L, -3, only[i]);
		}
	} else {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_settable(L, -5);
		}
	}
	lua_pop(L, 1);
}

/* Leaves the frozen base table on the stack. */
static void
push_plugin_base(lua_State *L)
{
	static const char *const globals[] = { "assert", "error", "ipairs",
		"next", "pairs", "pcall", "select", "tonumber", "tostring",
		"type", "xpcall", "rawequal", "rawget", "rawlen",
		"setmetatable", "getmetatable", NULL };
	static const char *const os_ok[] = { "time", "clock", "date",
		"difftime", NULL };
	static const luaL_Reg tern_fns[] = {
		{ "log", l_log }, { "now", l_now }, { "kv_get", l_kv_get },
		{ "kv_set", l_kv_set }, { "kv_incr", l_kv_incr },
		{ "readlines", l_readlines }, { "is_local", l_is_local },
		{ "glob", l_glob }, { NULL, NULL },
	};
	struct hooks *h = hooks_of(L);

	luaL_openlibs(L);
	/* Lock the metatable every string shares. */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);

	lua_newtable(L);
	for (size_t i = 0; globals[i]; i++) {
		lua_getglobal(L, globals[i]);
		lua_setfield(L, -2, globals[i]);
	}
	static const char *const libs[] = { "string", "table", "math", "utf8",
		NULL };
	for (size_t i = 0; libs[i]; i++) {
		push_lib_copy(L, libs[i], NULL);
		if (strcmp(libs[i], "string") == 0) {
			lua_pushnil(L);
			lua_setfield(L, -2, "dump");
		}
		hooks_make_readonly(L);
		lua_setfield(L, -2, libs[i]);
	}
	push_lib_copy(L, "os", os_ok);
	hooks_make_readonly(L);
	lua_setfield(L, -2, "os");
	luaL_newlib(L, tern_fns);
	lua_pushstring(L, h->hostname);
	lua_setfield(L, -2, "hostname");
	hooks_wait_register(L);
	hooks_json_register(L);
	hooks_make_readonly(L);
	lua_setfield(L, -2, "tern");
	hooks_make_readonly(L);
	/* Remove what the sandbox must not reach from the real globals. */
	static const char *const gone[] = { "io", "package", "require",
		"debug", "load", "loadfile", "dofile", "collectgarbage",
		"rawset", "os", NULL };
	for (size_t i = 0; gone[i]; i++) {
		lua_pushnil(L);
		lua_setglobal(L, gone[i]);
	}
}

/* Pushes a cfg_node as a Lua value (tables recursively). */
static void
push_cfg(lua_State *L, const struct cfg_node *n)
{
	switch (n->type) {
	case CFG_BOOL:
		lua_pushboolean(L, n->b);
		break;
	case CFG_INT:
		lua_pushinteger(L, (lua_Integer)n->i);
		break;
	case CFG_NUM:
		lua_pushnumber(L, n->n);
		break;
	case CFG_STR:
		lua_pushstring(L, n->s);
		break;
	case CFG_TABLE:
		lua_createtable(L, (int)n->narray, (int)(n->nitems - n->narray));
		for (size_t i = 0; i < n->nitems; i++) {
			push_cfg(L, &n->items[i]);
			if (n->items[i].key)
				lua_setfield(L, -2, n->items[i].key);
			else
				lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	}
}

static int
read_plugin(const struct hooks_settings *hs, const char *name,
    struct buf *text, char *path, size_t pathsz)
{
	for (size_t i = 0; i < hs->npath; i++) {
		FILE *fp;
		if (str_fmt(path, pathsz, "%s/%s.lua", hs->plugin_path[i],
		    name) != 0 || (fp = fopen(path, "re")) == NULL)
			continue;
		char chunk[8192];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_append(text, chunk, n);
		fclose(fp);
		return 0;
	}
	return -1;
}

static bool
plugin_name_ok(const char *name)
{
	if (*name == '\0' || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* Loads plugin i; -1 with err. Stack: base at index `base`. */
static int
load_plugin(struct hooks *h, const struct hooks_settings *hs, size_t i,
    int base, char *err, size_t errsz)
{
	lua_State *L = h->L;
	struct plugin *p = &h->plugins[i];
	char path[4096], chunk[128];
	struct buf text;

	if (!plugin_name_ok(hs->plugins[i])) {
		(void)snprintf(err, errsz, "plugins: '%s' is not a plugin name",
		    hs->plugins[i]);
		return -1;
	}
	p->name = xstrdup(hs->plugins[i]);
	for (int k = 0; k < HOOK_COUNT; k++)
		p->fn_ref[k] = LUA_NOREF;
	buf_init(&text);
	if (read_plugin(hs, p->name, &text, path, sizeof(path)) != 0) {
		(void)snprintf(err, errsz, "plugin '%s' not found in "
		    "plugin_path", p->name);
		buf_clear(&text);
		return -1;
	}
	(void)snprintf(chunk, sizeof(chunk), "=%s.lua", p->name);
	if (luaL_loadbufferx(L, text.data ? text.data : "", text.len, chunk,
	    "t") != LUA_OK) {
		(void)snprintf(err, errsz, "%s", lua_tostring(L, -1));
		buf_clear(&text);
		lua_pop(L, 1);
		return -1;
	}
	buf_clear(&text);
	/* its _ENV: own globals, reads fall through to the base */
	lua_newtable(L);
	lua_newtable(L);
	lua_pushvalue(L, base);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	const struct cfg_node *pc = cfg_node_get(hs->plugin_config, p->name);
	if (pc)
		push_cfg(L, pc);
	else
		lua_newtable(L);
	lua_setfield(L, -2, "config");
	lua_setupvalue(L, -2, 1);
	if (hooks_pcall(h, i, HOOK_COUNT, 0, 1) != 0) {
		(void)snprintf(err, errsz, "plugin '%s' (%s) failed to load; "
		    "see the log line above", p->name, path);
		return -1;
	}
	if (!lua_istable(L, -1)) {
		(void)snprintf(err, errsz, "plugin '%s' (%s) must return a "
		    "table of hook functions", p->name, path);
		lua_pop(L, 1);
		return -1;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		int k;
		const char *key = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : "?";
		for (k = 0; k < HOOK_COUNT; k++)
			if (strcmp(key, hook_names[k]) == 0)
				break;
		if (k == HOOK_COUNT || !lua_isfunction(L, -1)) {
			(void)snprintf(err, errsz, "plugin '%s': '%s' is not a "
			    "hook function (hooks: connect helo mail rcpt data "
			    "route retry delivered bounced)", p->name, key);
			lua_pop(L, 3);
			return -1;
		}
		lua_pushvalue(L, -1);
		p->fn_ref[k] = luaL_ref(L, LUA_REGISTRYINDEX);
		h->has[k] = true;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

void hooks_call_init(struct hooks *h);

struct hooks *
hooks_new(const struct hooks_settings *hs, char *err, size_t errsz)
{
	struct hooks *h = xcalloc(1, sizeof(*h));
	int base;

	h->mem.cap = hs->mem_max;
	h->budget_ms = hs->budget_ms ? hs->budget_ms : 100;
	h->wait_ms = hs->wait_ms ? hs->wait_ms : 15000;
	h->http_allow = xcalloc(hs->nhttp_allow + 1, sizeof(char *));
	for (size_t i = 0; i < hs->nhttp_allow; i++)
		h->http_allow[i] = xstrdup(hs->http_allow[i]);
	h->nhttp_allow = hs->nhttp_allow;
	h->kv = hs->kv;
	h->hostname = xstrdup(hs->hostname);
	h->domains = xcalloc(hs->ndomains + 1, sizeof(char *));
	for (size_t i = 0; i < hs->ndomains; i++)
		h->domains[i] = xstrdup(hs->domains[i]);
	h->ndomains = hs->ndomains;
	h->current = SIZE_MAX;
	h->L = lua_newstate(capped_alloc, &h->mem);
	if (h->L == NULL) {
		(void)snprintf(err, errsz, "cannot create the Lua state");
		hooks_free(h);
		return NULL;
	}
	*(struct hooks **)lua_getextraspace(h->L) = h;
	push_plugin_base(h->L);
	base = lua_gettop(h->L);
	hooks_call_init(h);
	h->plugins = xcalloc(hs->nplugins + 1, sizeof(*h->plugins));
	for (size_t i = 0; i < hs->nplugins; i++) {
		h->nplugins = i + 1;
		if (load_plugin(h, hs, i, base, err, errsz) != 0) {
			hooks_free(h);
			return NULL;
		}
	}
	lua_settop(h->L, 0);
	h->current = SIZE_MAX;
	return h;
}

void
hooks_free(struct hooks *h)
{
	if (h == NULL)
		return;
	if (h->calls > 0)
		log_info("plugins: %llu hook call(s), %.2f us per call on "
		    "average", (unsigned long long)h->calls,
		    (double)h->call_ns / (double)h->calls / 1000.0);
	if (h->L)
		lua_close(h->L);
	for (size_t i = 0; i < h->nplugins; i++)
		free(h->plugins[i].name);
	free(h->plugins);
	for (size_t i = 0; i < h->ndomains; i++)
		free(h->domains[i]);
	free(h->domains);
	for (size_t i = 0; i < h->nhttp_allow; i++)
		free(h->http_allow[i]);
	free(h->http_allow);
	free(h->hostname);
	free(h);
}
