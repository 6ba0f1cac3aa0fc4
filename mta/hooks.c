/* SPDX-License-Identifier: ISC */
/*
 * hooks.c - layer 2: the Lua bridge (see hooks.h). The only file that
 * includes Lua headers. Configuration evaluation:
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
 */
#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "util.h"

#define CONFIG_MEM_MAX (16u * 1024 * 1024)
#define CONFIG_INSN_MAX 10000000
#define CONFIG_DEPTH_MAX 16
#define CONFIG_NODES_MAX 100000

struct lua_budget {
	size_t used;
	size_t cap;
};

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

static void
insn_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	luaL_error(L, "instruction budget exceeded");
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
		if (to_node(L, -1, &node->items[node->nitems], depth + 1,
		    cv) != 0) {
			lua_pop(L, 1);
			return -1;
		}
		node->nitems++;
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
	lua_sethook(L, insn_hook, LUA_MASKCOUNT, CONFIG_INSN_MAX);
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
