/* SPDX-License-Identifier: ISC */
/*
 * hooks_wait.c - layer 2: the Lua bridge's functions that wait: they
 * start an operation on the loop (dns.h, httpc.h), the plugin's
 * coroutine yields (hooks_wait_yield), and when the answer is in, the
 * coroutine resumes in a continuation that turns the answer, kept in C
 * until then, into Lua values. Values are only ever made inside the
 * running coroutine, so a memory error there is the plugin's error,
 * never an unprotected one.
 *
 *   tern.dns.lookup(name [, type]) -> list, "ok" | "nxdomain" | "nodata"
 *                                  or nil, "temporary failure"
 *   tern.dnsbl(ip_or_domain, zone) -> listed, codes | nil, why
 *   tern.http.request{ url =, method =, headers =, body =, timeout = }
 *       -> { status =, headers =, body = } | nil, why
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/dns.h"
#include "base/httpc.h"
#include "base/util.h"
#include "lua/hooks.h"
#include "lua/hooks_int.h"
#include "smtp/mx.h"

#define HTTP_BODY_MAX (16u * 1024 * 1024)
#define HTTP_HEADERS_MAX 50

static struct hooks *
hooks_of(lua_State *L)
{
	return *(struct hooks **)lua_getextraspace(L);
}

/* --- DNS ---------------------------------------------------------------- */

struct dns_op {
	struct hook_call *c;
	struct dns_query *q;
	enum dns_status st;
	char **answers;
	size_t n;
	bool dnsbl;
	char name[300];
};

static void
dns_op_free(struct dns_op *op)
{
	for (size_t i = 0; i < op->n; i++)
		free(op->answers[i]);
	free(op->answers);
	free(op);
}

static void
dns_op_cancel(void *p)
{
	struct dns_op *op = p;

	if (op->q)
		dns_cancel(op->q);
	dns_op_free(op);
}

static void
on_records(void *arg, enum dns_status st, char *const *answers, size_t n)
{
	struct dns_op *op = arg;

	op->q = NULL;
	op->st = st;
	op->answers = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		op->answers[op->n++] = xstrdup(answers[i]);
	hooks_wait_done(op->c);
}

/* The results of a lookup (protected: op is freed by the caller). */
static int
push_lookup(lua_State *L)
{
	struct dns_op *op = lua_touserdata(L, 1);

	if (op->st == DNS_TEMP) {
		lua_pushnil(L);
		lua_pushliteral(L, "temporary failure");
		return 2;
	}
	lua_createtable(L, (int)op->n, 0);
	for (size_t i = 0; i < op->n; i++) {
		lua_pushstring(L, op->answers[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_pushstring(L, op->st == DNS_OK ? "ok" : op->st == DNS_NXDOMAIN ?
	    "nxdomain" : "nodata");
	return 2;
}

/*
 * A list's answer: listed for 127.0.0.0/8 but not 127.255.255.0/24, the
 * codes lists give for refused queries (RFC 5782 2.1; Spamhaus's
 * 127.255.255.252-255).
 */
static int
push_dnsbl(lua_State *L)
{
	struct dns_op *op = lua_touserdata(L, 1);
	const char *refused = NULL;
	bool listed = false;

	for (size_t i = 0; i < op->n; i++) {
		if (strncmp(op->answers[i], "127.255.255.", 12) == 0)
			refused = op->answers[i];
		else if (strncmp(op->answers[i], "127.", 4) == 0)
			listed = true;
	}
	if (op->st == DNS_TEMP || (refused && !listed)) {
		lua_pushnil(L);
		if (refused)
			lua_pushfstring(L, "the list refused the query (%s)",
			    refused);
		else
			lua_pushliteral(L, "temporary failure");
		return 2;
	}
	lua_pushboolean(L, listed);
	lua_createtable(L, (int)op->n, 0);
	for (size_t i = 0; i < op->n; i++) {
		lua_pushstring(L, op->answers[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 2;
}

/* Runs push under pcall on op, frees op, returns its results or raises. */
static int
results(lua_State *L, lua_CFunction push, void *op, void (*free_op)(void *))
{
	int top = lua_gettop(L);

	lua_pushcfunction(L, push);
	lua_pushlightuserdata(L, op);
	int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
	free_op(op);
	if (rc != LUA_OK)
		return lua_error(L);
	return lua_gettop(L) - top;
}

static void
dns_op_release(void *p)
{
	dns_op_free(p);
}

static int
k_lookup(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	return results(L, push_lookup, (void *)(intptr_t)ctx, dns_op_release);
}

static int
k_dnsbl(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	return results(L, push_dnsbl, (void *)(intptr_t)ctx, dns_op_release);
}

static struct dns *
dns_of(lua_State *L, struct hook_call *c, const char *fn)
{
	if (c->io.dns == NULL)
		luaL_error(L, "%s: no resolver (the resolver setting)", fn);
	return c->io.dns;
}

static int
l_dns_lookup(lua_State *L)
{
	size_t len;
	const char *name = luaL_checklstring(L, 1, &len);
	const char *tname = luaL_optstring(L, 2, "A");
	int type = dns_rr_type(tname);

	if (type < 0)
		return luaL_error(L, "tern.dns.lookup: type %s is not one of "
		    "A, AAAA, MX, TXT, PTR", tname);
	if (len == 0 || len > 253 || strlen(name) != len)
		return luaL_error(L, "tern.dns.lookup: '%s' is not a name",
		    name);
	struct hook_call *c = hooks_wait_check(L, "tern.dns.lookup");
	struct dns *d = dns_of(L, c, "tern.dns.lookup");
	struct dns_op *op = xcalloc(1, sizeof(*op));
	op->c = c;
	(void)str_copy(op->name, sizeof(op->name), name);
	op->q = dns_records(d, op->name, type, on_records, op);
	return hooks_wait_yield(L, c, dns_op_cancel, op, k_lookup);
}

static int
l_dnsbl(lua_State *L)
{
	const char *what = luaL_checkstring(L, 1);
	const char *zone = luaL_checkstring(L, 2);
	char name[300];

	if (mx_dnsbl_name(what, zone, name, sizeof(name)) != 0)
		return luaL_error(L, "tern.dnsbl: '%s' in '%s' is not an "
		    "address or a domain in a zone", what, zone);
	struct hook_call *c = hooks_wait_check(L, "tern.dnsbl");
	struct dns *d = dns_of(L, c, "tern.dnsbl");
	struct dns_op *op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->dnsbl = true;
	(void)str_copy(op->name, sizeof(op->name), name);
	op->q = dns_records(d, op->name, DNS_RR_A, on_records, op);
	return hooks_wait_yield(L, c, dns_op_cancel, op, k_dnsbl);
}

/* --- HTTP --------------------------------------------------------------- */

struct http_op {
	struct hook_call *c;
	struct httpc *req;
	int status;
	char error[200];
	char **hnames, **hvalues;
	size_t nheaders;
	char *body;
	size_t body_len;
};

static void
http_op_free(struct http_op *op)
{
	for (size_t i = 0; i < op->nheaders; i++) {
		free(op->hnames[i]);
		free(op->hvalues[i]);
	}
	free(op->hnames);
	free(op->hvalues);
	free(op->body);
	free(op);
}

static void
http_op_cancel(void *p)
{
	struct http_op *op = p;

	httpc_cancel(op->req);
	http_op_free(op);
}

static void
on_http(void *arg, const struct httpc_response *r)
{
	struct http_op *op = arg;

	op->req = NULL;
	op->status = r->status;
	if (r->status == 0)
		(void)str_copy(op->error, sizeof(op->error), r->error ?
		    r->error : "no response");
	op->hnames = xcalloc(r->nheaders + 1, sizeof(char *));
	op->hvalues = xcalloc(r->nheaders + 1, sizeof(char *));
	for (size_t i = 0; i < r->nheaders; i++) {
		op->hnames[i] = xstrdup(r->headers[i].name);
		ascii_lower(op->hnames[i]);
		op->hvalues[i] = xstrdup(r->headers[i].value);
		op->nheaders++;
	}
	op->body = xmalloc(r->body_len + 1);
	if (r->body_len)
		memcpy(op->body, r->body, r->body_len);
	op->body_len = r->body_len;
	hooks_wait_done(op->c);
}

/* The response as Lua values (protected: op is freed by the caller). */
static int
push_response(lua_State *L)
{
	struct http_op *op = lua_touserdata(L, 1);

	if (op->status == 0) {
		lua_pushnil(L);
		lua_pushstring(L, op->error);
		return 2;
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, op->status);
	lua_setfield(L, -2, "status");
	lua_createtable(L, 0, (int)op->nheaders);
	for (size_t i = 0; i < op->nheaders; i++) {
		/* a repeated field: its values joined (RFC 9110 5.3) */
		lua_getfield(L, -1, op->hnames[i]);
		if (lua_isstring(L, -1)) {
			lua_pushliteral(L, ", ");
			lua_pushstring(L, op->hvalues[i]);
			lua_concat(L, 3);
		} else {
			lua_pop(L, 1);
			lua_pushstring(L, op->hvalues[i]);
		}
		lua_setfield(L, -2, op->hnames[i]);
	}
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, op->body, op->body_len);
	lua_setfield(L, -2, "body");
	return 1;
}

static void
http_op_release(void *p)
{
	http_op_free(p);
}

static int
k_http(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	return results(L, push_response, (void *)(intptr_t)ctx,
	    http_op_release);
}

/* Is host:port one the config lets plugins ask? */
static bool
http_allowed(const struct hooks *h, const char *host, unsigned port)
{
	char hp[300];

	if (strchr(host, ':'))
		(void)snprintf(hp, sizeof(hp), "[%s]:%u", host, port);
	else
		(void)snprintf(hp, sizeof(hp), "%s:%u", host, port);
	for (size_t i = 0; i < h->nhttp_allow; i++)
		if (ascii_strcaseeq(h->http_allow[i], hp))
			return true;
	return false;
}

static bool
header_ok(const char *s, bool name)
{
	if (name && *s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\r' || ch == '\n' || (name && (ch <= 32 ||
		    ch >= 127 || ch == ':')))
			return false;
	}
	return true;
}

static int
header_error(lua_State *L)
{
	return luaL_error(L, "tern.http.request: headers must map field names "
	    "to one-line strings or lists of them (at most %d fields)",
	    HTTP_HEADERS_MAX);
}

/* hs[*nh] = name: the string at idx (kept alive by the headers table). */
static int
add_header(lua_State *L, struct httpc_header *hs, size_t *nh,
    const char *name, int idx)
{
	if (lua_type(L, idx) != LUA_TSTRING ||
	    !header_ok(lua_tostring(L, idx), false) || *nh == HTTP_HEADERS_MAX)
		return -1;
	hs[(*nh)++] = (struct httpc_header){ name, lua_tostring(L, idx) };
	return 0;
}

static const char *
field_str(lua_State *L, const char *key, const char *def, size_t *len)
{
	const char *v;

	lua_getfield(L, 1, key);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		if (len)
			*len = def ? strlen(def) : 0;
		return def;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "tern.http.request: %s must be a string", key);
	v = lua_tolstring(L, -1, len);
	lua_pop(L, 1);     /* still referenced by the table */
	return v;
}

static int
l_http_request(lua_State *L)
{
	struct hooks *h = hooks_of(L);
	char host[256], path[2048];
	unsigned port;
	size_t body_len;
	struct httpc_header hs[HTTP_HEADERS_MAX];
	size_t nh = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	const char *url = field_str(L, "url", NULL, NULL);
	const char *method = field_str(L, "method", "GET", NULL);
	const char *body = field_str(L, "body", "", &body_len);
	lua_getfield(L, 1, "timeout");
	lua_Integer timeout = lua_isnil(L, -1) ? 10 : luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	bool https;
	if (url == NULL || httpc_parse_url(url, host, sizeof(host), &port,
	    path, sizeof(path), &https) != 0)
		return luaL_error(L, "tern.http.request: url must be "
		    "http[s]://host[:port]/path");
	if (strcmp(method, "GET") && strcmp(method, "POST") &&
	    strcmp(method, "PUT") && strcmp(method, "DELETE") &&
	    strcmp(method, "HEAD"))
		return luaL_error(L, "tern.http.request: method %s is not "
		    "GET, POST, PUT, DELETE or HEAD", method);
	if (timeout < 1 || timeout > 600)
		return luaL_error(L, "tern.http.request: timeout must be 1 to "
		    "600 seconds");
	if (body_len > HTTP_BODY_MAX)
		return luaL_error(L, "tern.http.request: body longer than %d "
		    "bytes", (int)HTTP_BODY_MAX);
	if (!http_allowed(h, host, port))
		return luaL_error(L, "tern.http.request: %s:%d is not in "
		    "plugin_http_allow", host, (int)port);
	lua_getfield(L, 1, "headers");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			/* name = "value", or name = { "value", ... } */
			if (lua_type(L, -2) != LUA_TSTRING ||
			    !header_ok(lua_tostring(L, -2), true))
				return header_error(L);
			const char *name = lua_tostring(L, -2);
			if (lua_type(L, -1) == LUA_TSTRING) {
				if (add_header(L, hs, &nh, name, -1) != 0)
					return header_error(L);
			} else if (lua_istable(L, -1)) {
				size_t n = lua_rawlen(L, -1);
				for (size_t i = 1; i <= n; i++) {
					lua_rawgeti(L, -1, (lua_Integer)i);
					int rc = add_header(L, hs, &nh, name,
					    -1);
					lua_pop(L, 1);
					if (rc != 0)
						return header_error(L);
				}
			} else
				return header_error(L);
			lua_pop(L, 1);
		}
	} else if (!lua_isnil(L, -1))
		return luaL_error(L, "tern.http.request: headers must be a "
		    "table");
	struct hook_call *c = hooks_wait_check(L, "tern.http.request");
	if (https && c->io.tls == NULL)
		return luaL_error(L, "tern.http.request: no https here");
	struct httpc_request rq = { method, host, port, path, hs, nh, body,
		body_len, (unsigned)timeout, HTTP_BODY_MAX, https ? c->io.tls :
		NULL };
	struct http_op *op = xcalloc(1, sizeof(*op));
	op->c = c;
	op->req = httpc_start(c->io.base, c->io.dns, &rq, on_http, op);
	lua_pop(L, 1);
	return hooks_wait_yield(L, c, http_op_cancel, op, k_http);
}

void
hooks_wait_register(lua_State *L)
{
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_dns_lookup);
	lua_setfield(L, -2, "lookup");
	hooks_make_readonly(L);
	lua_setfield(L, -2, "dns");
	lua_pushcfunction(L, l_dnsbl);
	lua_setfield(L, -2, "dnsbl");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_http_request);
	lua_setfield(L, -2, "request");
	hooks_make_readonly(L);
	lua_setfield(L, -2, "http");
}
