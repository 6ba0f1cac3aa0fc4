/* SPDX-License-Identifier: ISC */
/*
 * hooks_json.c - layer 2: tern.json for plugins that talk to HTTP
 * services (rspamd's /checkv2 answers in JSON), on jansson.
 *
 *   tern.json.decode(text) -> value | nil, why
 *       objects become tables with string keys, arrays lists, null nil
 *       (a member that is null is absent), numbers integers or floats;
 *   tern.json.encode(value) -> text
 *       a table with only 1..n keys (n > 0) is an array, any other table
 *       an object (its keys strings); nesting is bounded (32).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "lua/hooks_int.h"

#define JSON_DEPTH_MAX 32

/* Pushes v; raises if too deep (the json_t is freed by the caller's
 * holder userdata, see l_decode). */
static void
push_json(lua_State *L, const json_t *v, int depth)
{
	if (depth > JSON_DEPTH_MAX)
		luaL_error(L, "tern.json.decode: nested too deeply");
	luaL_checkstack(L, 4, "tern.json.decode");
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *m;
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach((json_t *)v, k, m) {
			if (json_is_null(m))
				continue;
			push_json(L, m, depth + 1);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;
		lua_createtable(L, (int)json_array_size(v), 0);
		json_array_foreach(v, i, m) {
			push_json(L, m, depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(v));
		break;
	case JSON_NULL:
		lua_pushnil(L);
		break;
	}
}

static int
holder_gc(lua_State *L)
{
	json_t **p = lua_touserdata(L, 1);

	if (*p) {
		json_decref(*p);
		*p = NULL;
	}
	return 0;
}

static int
l_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	json_error_t err;
	/* a holder frees the tree even if making the values raises */
	json_t **p = lua_newuserdatauv(L, sizeof(*p), 0);

	*p = NULL;
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, holder_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	*p = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	    &err);
	if (*p == NULL) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s (at %d)", err.text, err.position);
		return 2;
	}
	push_json(L, *p, 0);
	json_decref(*p);
	*p = NULL;
	return 1;
}

static json_t *to_json(lua_State *L, int idx, int depth);

static json_t *
table_to_json(lua_State *L, int idx, int depth)
{
	size_t n = lua_rawlen(L, idx), count = 0;
	json_t *out;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
	}
	if (n > 0 && count == n) {
		out = json_array();
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, (lua_Integer)i);
			json_t *m = to_json(L, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
			if (m == NULL || json_array_append_new(out, m) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	out = json_object();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 2);
			json_decref(out);
			return NULL;
		}
		json_t *m = to_json(L, lua_gettop(L), depth + 1);
		if (m == NULL || json_object_set_new(out, lua_tostring(L, -2),
		    m) != 0) {
			lua_pop(L, 2);
			json_decref(out);
			return NULL;
		}
		lua_pop(L, 1);
	}
	return out;
}

/* NULL for what JSON cannot say (functions, non-string keys, depth). */
static json_t *
to_json(lua_State *L, int idx, int depth)
{
	if (depth > JSON_DEPTH_MAX || !lua_checkstack(L, 4))
		return NULL;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		return json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		return json_stringn(s, len);       /* NULL if not UTF-8 */
	}
	case LUA_TTABLE:
		return table_to_json(L, idx, depth);
	default:
		return NULL;
	}
}

static int
text_gc(lua_State *L)
{
	char **p = lua_touserdata(L, 1);

	free(*p);
	*p = NULL;
	return 0;
}

static int
l_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	/* a holder for the text, made before anything is allocated: the
	 * string pushed at the end may raise (memory cap) */
	char **p = lua_newuserdatauv(L, sizeof(*p), 0);
	*p = NULL;
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, text_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	json_t *v = to_json(L, 1, 0);
	if (v == NULL)
		return luaL_error(L, "tern.json.encode: not expressible in "
		    "JSON (functions, non-string keys, invalid UTF-8 or nested "
		    "deeper than %d)", JSON_DEPTH_MAX);
	*p = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (*p == NULL)
		return luaL_error(L, "tern.json.encode: out of memory");
	lua_pushstring(L, *p);
	free(*p);
	*p = NULL;
	return 1;
}

void
hooks_json_register(lua_State *L)
{
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, l_decode);
	lua_setfield(L, -2, "decode");
	lua_pushcfunction(L, l_encode);
	lua_setfield(L, -2, "encode");
	hooks_make_readonly(L);
	lua_setfield(L, -2, "json");
}
