/* SPDX-License-Identifier: ISC */
/*
 * hooks_call.c - layer 2: the Lua bridge, one function per hook (see
 * hooks.h for the C side, doc/plugins.md for the Lua side). Arguments are
 * built as plain tables once per hook call and shared by the plugins of
 * the chain; the first plugin that returns a verdict decides. Only the
 * data hook's message object is a userdata: it points at the message
 * being received and is invalidated when the call returns, so a plugin
 * that keeps it in a global gets an error, never freed memory.
 */
#include "lua/hooks.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lua.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "lua/hooks_int.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "smtp/smtp_parse.h"

#define MSG_MT "tern.message"


/* --- arguments -------------------------------------------------------- */

static void
push_session(lua_State *L, const struct hook_session *s)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, s->ip);
	lua_setfield(L, -2, "ip");
	lua_pushinteger(L, s->port);
	lua_setfield(L, -2, "port");
	lua_pushstring(L, s->role);
	lua_setfield(L, -2, "role");
	lua_pushboolean(L, s->tls);
	lua_setfield(L, -2, "tls");
	if (s->helo) {
		lua_pushstring(L, s->helo);
		lua_setfield(L, -2, "helo");
	}
	if (s->user) {
		lua_pushstring(L, s->user);
		lua_setfield(L, -2, "user");
	}
}

/* t[k] = v ("" for NULL), t on the top of the stack */
static void
set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v ? v : "");
	lua_setfield(L, -2, k);
}

static void
push_tx(lua_State *L, const struct hook_tx *tx)
{
	lua_createtable(L, 0, 5);
	push_session(L, tx->s);
	lua_setfield(L, -2, "session");
	lua_pushstring(L, tx->sender ? tx->sender : "");
	lua_setfield(L, -2, "sender");
	lua_createtable(L, (int)tx->nrcpts, 0);
	for (size_t i = 0; i < tx->nrcpts; i++) {
		lua_pushstring(L, tx->rcpts[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "rcpts");
	lua_createtable(L, 0, (int)tx->nparams);
	for (size_t i = 0; i < tx->nparams; i++) {
		const char *eq = strchr(tx->params[i], '=');
		if (eq) {
			lua_pushlstring(L, tx->params[i],
			    (size_t)(eq - tx->params[i]));
			lua_pushstring(L, eq + 1);
		} else {
			lua_pushstring(L, tx->params[i]);
			lua_pushboolean(L, 1);
		}
		lua_settable(L, -3);
	}
	lua_setfield(L, -2, "params");
	if (!tx->auth)
		return;
	/* tx.auth = { dkim = { {...}, ... }, spf = {...}, dmarc = {...} } */
	lua_createtable(L, 0, 3);
	lua_createtable(L, (int)tx->ndkim, 0);
	for (size_t i = 0; i < tx->ndkim; i++) {
		const struct hook_dkim *d = &tx->dkim[i];
		lua_createtable(L, 0, 6);
		set_str(L, "domain", d->domain);
		set_str(L, "selector", d->selector);
		set_str(L, "result", d->result);
		set_str(L, "reason", d->reason);
		set_str(L, "algorithm", d->algorithm);
		lua_pushboolean(L, d->testing);
		lua_setfield(L, -2, "testing");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "dkim");
	if (tx->spf_result) {
		lua_createtable(L, 0, 3);
		set_str(L, "result", tx->spf_result);
		set_str(L, "domain", tx->spf_domain);
		set_str(L, "reason", tx->spf_reason);
		lua_setfield(L, -2, "spf");
	}
	if (tx->spf_helo_result) {
		lua_createtable(L, 0, 3);
		set_str(L, "result", tx->spf_helo_result);
		set_str(L, "domain", tx->spf_helo_domain);
		set_str(L, "reason", tx->spf_helo_reason);
		lua_setfield(L, -2, "spf_helo");
	}
	if (tx->dmarc_result) {
		lua_createtable(L, 0, 4);
		set_str(L, "result", tx->dmarc_result);
		set_str(L, "policy", tx->dmarc_policy);
		set_str(L, "domain", tx->dmarc_domain);
		lua_pushinteger(L, (lua_Integer)tx->dmarc_pct);
		lua_setfield(L, -2, "pct");
		lua_setfield(L, -2, "dmarc");
	}
	if (tx->arc_result) {
		/* tx.auth.arc = { result, reason, oldest_pass, sets = {...} } */
		lua_createtable(L, 0, 4);
		set_str(L, "result", tx->arc_result);
		set_str(L, "reason", tx->arc_reason);
		if (tx->arc_oldest_pass >= 0) {
			lua_pushinteger(L, tx->arc_oldest_pass);
			lua_setfield(L, -2, "oldest_pass");
		}
		lua_createtable(L, (int)tx->narc, 0);
		for (size_t i = 0; i < tx->narc; i++) {
			const struct hook_arc_hop *h = &tx->arc[i];
			lua_createtable(L, 0, 7);
			lua_pushinteger(L, h->i);
			lua_setfield(L, -2, "i");
			set_str(L, "domain", h->domain);
			set_str(L, "selector", h->selector);
			set_str(L, "cv", h->cv);
			set_str(L, "results", h->results);
			lua_pushboolean(L, h->seal_ok);
			lua_setfield(L, -2, "seal_ok");
			lua_pushboolean(L, h->ams_ok);
			lua_setfield(L, -2, "ams_ok");
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "sets");
		lua_setfield(L, -2, "arc");
	}
	lua_setfield(L, -2, "auth");
}

static void
push_msg_info(lua_State *L, const struct hook_msg_info *m)
{
	lua_createtable(L, 0, 7);
	lua_pushstring(L, m->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, m->sender ? m->sender : "");
	lua_setfield(L, -2, "sender");
	lua_pushstring(L, m->rcpt);
	lua_setfield(L, -2, "rcpt");
	lua_pushstring(L, m->domain);
	lua_setfield(L, -2, "domain");
	lua_pushinteger(L, m->attempts);
	lua_setfield(L, -2, "attempts");
	lua_pushinteger(L, (lua_Integer)m->age);
	lua_setfield(L, -2, "age");
	lua_pushstring(L, m->error ? m->error : "");
	lua_setfield(L, -2, "error");
}

/* --- verdicts --------------------------------------------------------- */

static void
verdict_set(struct hook_verdict *v, enum hook_kind kind, int code,
    const char *enh, const char *text)
{
	v->kind = kind;
	v->code = code;
	(void)str_copy(v->enh, sizeof(v->enh), enh);
	(void)str_copy(v->text, sizeof(v->text), text);
}

static void
verdict_error(struct hook_verdict *v)
{
	verdict_set(v, HOOK_TEMPFAIL, 451, "4.3.0",
	    "Temporary local problem (plugin); try again later");
}

/*
 * "550 5.7.1 text" -> code, enhanced code, text. A code whose class does
 * not match the verdict is replaced by the default (and logged).
 */
static void
parse_reply(const char *s, enum hook_kind kind, struct hook_verdict *v,
    const char *plugin)
{
	int want = kind == HOOK_REJECT ? 5 : 4;
	const char *p = s;

	if (p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
	    p[2] >= '0' && p[2] <= '9' && (p[3] == ' ' || p[3] == '\0')) {
		int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (code / 100 == want)
			v->code = code;
		else
			log_warnx("plugin=%s: reply code %d does not fit a %s "
			    "verdict; using %d", plugin, code, kind ==
			    HOOK_REJECT ? "reject" : "tempfail", v->code);
		p += p[3] ? 4 : 3;
		/* enhanced status code: class.subject.detail */
		const char *q = p;
		if ((q[0] == '4' || q[0] == '5') && q[1] == '.') {
			size_t n = strspn(q, "0123456789.");
			if (n < sizeof(v->enh) && (q[n] == ' ' || q[n] == '\0')) {
				memcpy(v->enh, q, n);
				v->enh[n] = '\0';
				v->enh[0] = (char)('0' + v->code / 100);
				p = q + n + (q[n] ? 1 : 0);
			}
		}
	}
	if (*p)
		(void)str_copy(v->text, sizeof(v->text), p);
	for (char *c = v->text; *c; c++)
		if ((unsigned char)*c < 32)
			*c = ' ';
}

/*
 * Reads (kind, text) from the top two stack slots. Returns 1 if it is a
 * verdict, 0 if nil (no verdict), -1 if malformed (logged).
 */
static int
read_verdict(struct hooks *h, lua_State *L, size_t p, enum hook_id id,
    bool allow_discard, struct hook_verdict *v)
{
	const char *plugin = h->plugins[p].name;

	if (lua_isnil(L, -2))
		return 0;
	if (lua_type(L, -2) != LUA_TSTRING) {
		log_warnx("plugin=%s hook=%s returned a %s, not a verdict",
		    plugin, hooks_name(id), luaL_typename(L, -2));
		return -1;
	}
	const char *kind = lua_tostring(L, -2);
	if (strcmp(kind, "accept") == 0) {
		verdict_set(v, HOOK_ACCEPT, 250, "2.0.0", "Ok");
		return 1;
	}
	if (strcmp(kind, "discard") == 0 && allow_discard) {
		verdict_set(v, HOOK_DISCARD, 250, "2.0.0", "Ok");
		return 1;
	}
	if (strcmp(kind, "reject") == 0)
		verdict_set(v, HOOK_REJECT, 550, id == HOOK_RCPT ? "5.1.1" :
		    "5.7.1", id == HOOK_RCPT ? "Recipient rejected" :
		    "Rejected by policy");
	else if (strcmp(kind, "tempfail") == 0)
		verdict_set(v, HOOK_TEMPFAIL, 451, "4.7.1",
		    "Try again later");
	else {
		log_warnx("plugin=%s hook=%s returned unknown verdict '%s'",
		    plugin, hooks_name(id), kind);
		return -1;
	}
	if (lua_type(L, -1) == LUA_TSTRING)
		parse_reply(lua_tostring(L, -1), v->kind, v, plugin);
	else if (!lua_isnil(L, -1)) {
		log_warnx("plugin=%s hook=%s: reply text must be a string",
		    plugin, hooks_name(id));
		return -1;
	}
	return 1;
}

/* --- the verdict hooks' chain, as coroutines ---------------------------- */

enum step { STEP_DONE, STEP_WAIT, STEP_ERROR };

static int64_t
ns_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000000LL +
	    (t1.tv_nsec - t0->tv_nsec);
}

/* Resumes c->co with narg values on its stack, within the budget left. */
static enum step
call_resume(struct hook_call *c, int narg, int *nres)
{
	struct hooks *h = c->h;
	struct timespec t0;
	int64_t left = (int64_t)h->budget_ms * 1000000LL - c->run_ns;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (left < 0)
		left = 0;
	h->deadline.tv_sec = t0.tv_sec + (time_t)(left / 1000000000LL);
	h->deadline.tv_nsec = t0.tv_nsec + (long)(left % 1000000000LL);
	if (h->deadline.tv_nsec >= 1000000000L) {
		h->deadline.tv_sec++;
		h->deadline.tv_nsec -= 1000000000L;
	}
	h->expired = false;
	h->current = c->plugin;
	h->current_hook = c->id;
	h->running = c;
	lua_sethook(c->co, hooks_budget_hook, LUA_MASKCOUNT, 1000);
	int rc = lua_resume(c->co, h->L, narg, nres);
	h->running = NULL;
	h->current = SIZE_MAX;
	int64_t ns = ns_since(&t0);
	c->run_ns += ns;
	h->call_ns += (uint64_t)ns;
	if (rc == LUA_YIELD && c->wait_op != NULL) {
		lua_pop(c->co, *nres);
		return STEP_WAIT;
	}
	if (rc == LUA_OK)
		return STEP_DONE;
	hooks_log_error(h, c->plugin, c->id, rc == LUA_YIELD ?
	    "yielded without waiting for anything" : lua_tostring(c->co, -1));
	return STEP_ERROR;
}

/* The coroutine of plugin c->plugin with the arguments (protected). */
static int
spawn(lua_State *L)
{
	struct hook_call *c = lua_touserdata(L, 1);
	struct hooks *h = c->h;
	lua_State *co = lua_newthread(L);

	lua_rawgeti(L, LUA_REGISTRYINDEX, h->plugins[c->plugin].fn_ref[c->id]);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->args_ref);
	for (int i = 1; i <= c->nargs; i++)
		lua_rawgeti(L, -i, i);
	lua_remove(L, -1 - c->nargs);                  /* the table */
	if (!lua_checkstack(co, c->nargs + 4))
		return luaL_error(L, "not enough memory");
	lua_xmove(L, co, c->nargs + 1);
	c->co = co;
	c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);    /* the thread */
	return 0;
}

static void
drop_thread(struct hook_call *c)
{
	if (c->co == NULL)
		return;
	if (lua_status(c->co) == LUA_YIELD)
		(void)lua_resetthread(c->co);
	luaL_unref(c->h->L, LUA_REGISTRYINDEX, c->co_ref);
	c->co = NULL;
}

static void
call_end(struct hook_call *c)
{
	struct hooks *h = c->h;

	c->finished = true;
	if (c->ud)
		c->ud->ctx = NULL;            /* stale from now on */
	c->ud = NULL;
	drop_thread(c);
	if (c->args_ref != LUA_NOREF)
		luaL_unref(h->L, LUA_REGISTRYINDEX, c->args_ref);
	c->args_ref = LUA_NOREF;
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	h->calls++;
}

static void
call_free(struct hook_call *c)
{
	for (size_t i = 0; i < c->data.nrcpts; i++)
		free(c->data.rcpts[i]);
	free(c->data.rcpts);
	free(c);
}

/* Done: the caller hears of it unless it is still in the start call. */
static void
call_finish(struct hook_call *c)
{
	call_end(c);
	if (c->in_start)
		return;
	c->done(c->arg, &c->v);
	call_free(c);
}

static void
on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hook_call *c = arg;
	struct hooks *h = c->h;
	char why[96];

	(void)fd;
	(void)what;
	(void)snprintf(why, sizeof(why), "waited longer than %u ms "
	    "(hook_wait_ms)", h->wait_ms);
	hooks_log_error(h, c->plugin, c->id, why);
	if (c->wait_op) {
		c->wait_cancel(c->wait_op);
		c->wait_op = NULL;
	}
	verdict_error(&c->v);
	call_finish(c);
}

static void
arm_timer(struct hook_call *c)
{
	int64_t left = (int64_t)c->h->wait_ms * 1000000LL -
	    ns_since(&c->started);

	if (c->timer)
		return;
	if (left < 0)
		left = 0;
	struct timeval tv = { (time_t)(left / 1000000000LL),
		(suseconds_t)(left % 1000000000LL / 1000) };
	c->timer = evtimer_new(c->io.base, on_wait_timeout, c);
	evtimer_add(c->timer, &tv);
}

/*
 * Runs the chain from where it stands: resumes the coroutine with narg
 * values, or (narg < 0) starts the next plugin's. Returns when it waits
 * or is finished.
 */
static void
call_go(struct hook_call *c, int narg)
{
	struct hooks *h = c->h;

	for (;;) {
		if (narg < 0) {
			while (c->plugin < h->nplugins &&
			    h->plugins[c->plugin].fn_ref[c->id] == LUA_NOREF)
				c->plugin++;
			if (c->plugin >= h->nplugins) {
				call_finish(c);           /* nobody decided */
				return;
			}
			lua_pushcfunction(h->L, spawn);
			lua_pushlightuserdata(h->L, c);
			if (lua_pcall(h->L, 1, 0, 0) != LUA_OK) {
				hooks_log_error(h, c->plugin, c->id,
				    lua_tostring(h->L, -1));
				lua_pop(h->L, 1);
				verdict_error(&c->v);
				call_finish(c);
				return;
			}
			narg = c->nargs;
		}
		int nres = 0;
		enum step st = call_resume(c, narg, &nres);
		if (st == STEP_WAIT) {
			arm_timer(c);
			return;
		}
		int rc = -1;
		if (st == STEP_DONE && lua_checkstack(c->co, 2)) {
			lua_settop(c->co, 2);
			rc = read_verdict(h, c->co, c->plugin, c->id,
			    c->allow_discard, &c->v);
		}
		drop_thread(c);
		if (rc < 0) {
			if (st == STEP_ERROR)
				lua_gc(h->L, LUA_GCCOLLECT);
			verdict_error(&c->v);
			call_finish(c);
			return;
		}
		if (rc > 0) {
			call_finish(c);
			return;
		}
		c->plugin++;
		narg = -1;
	}
}

struct hook_call *
hooks_wait_check(lua_State *L, const char *fn)
{
	struct hooks *h = *(struct hooks **)lua_getextraspace(L);
	struct hook_call *c = h->running;

	if (c == NULL || !c->can_wait || c->co != L)
		luaL_error(L, "%s cannot wait in the %s hook", fn,
		    hooks_name(h->current_hook));
	else if (!lua_isyieldable(L))
		luaL_error(L, "%s cannot wait inside a function called by "
		    "Lua's library (sort, gsub, a metamethod)", fn);
	return c;
}

int
hooks_wait_yield(lua_State *L, struct hook_call *c, void (*cancel)(void *),
    void *op, lua_KFunction k)
{
	c->wait_cancel = cancel;
	c->wait_op = op;
	return lua_yieldk(L, 0, (lua_KContext)(intptr_t)op, k);
}

void
hooks_wait_done(struct hook_call *c)
{
	c->wait_op = NULL;
	call_go(c, 0);
}

void
hooks_call_cancel(struct hook_call *c)
{
	if (c == NULL)
		return;
	if (c->wait_op) {
		c->wait_cancel(c->wait_op);
		c->wait_op = NULL;
	}
	call_end(c);
	call_free(c);
}

/* Builds the arguments (protected): pushes nargs values, packs them. */
typedef void (*push_args_fn)(lua_State *L, const void *what,
    struct hook_call *c);

struct setup {
	push_args_fn push;
	const void *what;
	struct hook_call *c;
};

static int
setup_args(lua_State *L)
{
	struct setup *su = lua_touserdata(L, 1);
	int base = lua_gettop(L);

	su->push(L, su->what, su->c);
	int n = lua_gettop(L) - base;
	lua_createtable(L, n, 0);
	lua_insert(L, base + 1);
	for (int i = n; i >= 1; i--)
		lua_rawseti(L, base + 1, i);
	su->c->nargs = n;
	su->c->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static struct hook_call *
call_start(struct hooks *h, enum hook_id id, const struct hook_io *io,
    push_args_fn push, const void *what, struct data_ctx *data,
    hook_done_cb done, void *arg, struct hook_verdict *v)
{
	struct hook_call *c;

	v->kind = HOOK_NONE;
	if (!hooks_has(h, id))
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->h = h;
	c->id = id;
	c->args_ref = LUA_NOREF;
	c->co_ref = LUA_NOREF;
	c->allow_discard = id == HOOK_DATA;
	c->can_wait = io != NULL && io->base != NULL;
	if (io)
		c->io = *io;
	if (data)
		c->data = *data;
	c->done = done;
	c->arg = arg;
	c->v.kind = HOOK_NONE;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	c->in_start = true;
	struct setup su = { push, what, c };
	lua_pushcfunction(h->L, setup_args);
	lua_pushlightuserdata(h->L, &su);
	if (lua_pcall(h->L, 1, 0, 0) != LUA_OK) {
		hooks_log_error(h, SIZE_MAX, id, lua_tostring(h->L, -1));
		lua_pop(h->L, 1);
		verdict_error(&c->v);
		call_end(c);
	} else
		call_go(c, -1);
	c->in_start = false;
	if (!c->finished)
		return c;
	*v = c->v;
	call_free(c);
	return NULL;
}

/* The synchronous form: nothing can wait, so it is finished at once. */
static void
call_now(struct hooks *h, enum hook_id id, push_args_fn push,
    const void *what, struct data_ctx *data, struct hook_verdict *v)
{
	struct hook_call *c = call_start(h, id, NULL, push, what, data, NULL,
	    NULL, v);

	TERN_ASSERT(c == NULL);
}

static void
args_session(lua_State *L, const void *what, struct hook_call *c)
{
	(void)c;
	push_session(L, what);
}

struct named {
	const void *p;           /* a session or a tx */
	const char *name;
};

static void
args_session_name(lua_State *L, const void *what, struct hook_call *c)
{
	const struct named *n = what;

	(void)c;
	push_session(L, n->p);
	lua_pushstring(L, n->name);
}

static void
args_tx_addr(lua_State *L, const void *what, struct hook_call *c)
{
	const struct named *n = what;

	(void)c;
	push_tx(L, n->p);
	lua_pushstring(L, n->name);
}

struct hook_call *
hooks_connect_start(struct hooks *h, const struct hook_io *io,
    const struct hook_session *s, hook_done_cb done, void *arg,
    struct hook_verdict *v)
{
	return call_start(h, HOOK_CONNECT, io, args_session, s, NULL, done,
	    arg, v);
}

struct hook_call *
hooks_helo_start(struct hooks *h, const struct hook_io *io,
    const struct hook_session *s, const char *name, hook_done_cb done,
    void *arg, struct hook_verdict *v)
{
	struct named n = { s, name };

	return call_start(h, HOOK_HELO, io, args_session_name, &n, NULL, done,
	    arg, v);
}

struct hook_call *
hooks_mail_start(struct hooks *h, const struct hook_io *io,
    const struct hook_tx *tx, const char *addr, hook_done_cb done,
    void *arg, struct hook_verdict *v)
{
	struct named n = { tx, addr };

	return call_start(h, HOOK_MAIL, io, args_tx_addr, &n, NULL, done, arg,
	    v);
}

struct hook_call *
hooks_rcpt_start(struct hooks *h, const struct hook_io *io,
    const struct hook_tx *tx, const char *addr, hook_done_cb done,
    void *arg, struct hook_verdict *v)
{
	struct named n = { tx, addr };

	return call_start(h, HOOK_RCPT, io, args_tx_addr, &n, NULL, done, arg,
	    v);
}

void
hooks_connect(struct hooks *h, const struct hook_session *s,
    struct hook_verdict *v)
{
	call_now(h, HOOK_CONNECT, args_session, s, NULL, v);
}

void
hooks_helo(struct hooks *h, const struct hook_session *s, const char *name,
    struct hook_verdict *v)
{
	struct named n = { s, name };

	call_now(h, HOOK_HELO, args_session_name, &n, NULL, v);
}

void
hooks_mail(struct hooks *h, const struct hook_tx *tx, const char *addr,
    struct hook_verdict *v)
{
	struct named n = { tx, addr };

	call_now(h, HOOK_MAIL, args_tx_addr, &n, NULL, v);
}

void
hooks_rcpt(struct hooks *h, const struct hook_tx *tx, const char *addr,
    struct hook_verdict *v)
{
	struct named n = { tx, addr };

	call_now(h, HOOK_RCPT, args_tx_addr, &n, NULL, v);
}

/* --- the data hook's message object ------------------------------------ */

static struct data_ctx *
check_msg(lua_State *L)
{
	struct msg_ud *ud = luaL_checkudata(L, 1, MSG_MT);

	if (ud->ctx == NULL)
		luaL_error(L, "message object used outside its data hook");
	return ud->ctx;
}

static const char *
msg_text(struct data_ctx *c, size_t *len)
{
	*len = c->msg->len - c->start;
	return c->msg->data + c->start;
}

/* Pushes a field value with folding line breaks removed. */
static void
push_unfolded(lua_State *L, const char *v, size_t n)
{
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\n')
			luaL_addchar(&b, v[i]);
	luaL_pushresult(&b);
}

static int
l_msg_header(lua_State *L)
{
	struct data_ctx *c = check_msg(L);
	const char *name = luaL_checkstring(L, 2);
	struct message_field f;
	size_t len;
	const char *m = msg_text(c, &len);

	if (message_find_field(m, message_header_len(m, len), name, &f))
		push_unfolded(L, f.value, f.value_len);
	else
		lua_pushnil(L);
	return 1;
}

static int
l_msg_headers(lua_State *L)
{
	struct data_ctx *c = check_msg(L);
	struct message_field f;
	size_t len, pos = 0;
	const char *m = msg_text(c, &len);
	size_t hlen = message_header_len(m, len);
	lua_Integer n = 0;

	lua_newtable(L);
	while (message_next_field(m, hlen, &pos, &f)) {
		lua_createtable(L, 0, 2);
		lua_pushlstring(L, f.name, f.name_len);
		lua_setfield(L, -2, "name");
		push_unfolded(L, f.value, f.value_len);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, ++n);
	}
	return 1;
}

static bool
field_name_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 76)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 ||
		    *s == ':')
			return false;
	return true;
}

static int
l_msg_add_header(lua_State *L)
{
	struct data_ctx *c = check_msg(L);
	const char *name = luaL_checkstring(L, 2);
	size_t vlen;
	const char *value = luaL_checklstring(L, 3, &vlen);
	struct buf field;

	if (!field_name_ok(name))
		return luaL_error(L, "add_header: bad field name");
	for (size_t i = 0; i < vlen; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return luaL_error(L, "add_header: the value must be "
			    "one line");
	if (vlen > 900)
		return luaL_error(L, "add_header: value too long");
	buf_init(&field);
	buf_printf(&field, "%s: %s\n", name, value);
	/* insert at c->start */
	buf_reserve(c->msg, field.len);
	memmove(c->msg->data + c->start + field.len, c->msg->data + c->start,
	    c->msg->len - c->start + 1);
	memcpy(c->msg->data + c->start, field.data, field.len);
	c->msg->len += field.len;
	buf_clear(&field);
	return 0;
}

static int
l_msg_remove_header(lua_State *L)
{
	struct data_ctx *c = check_msg(L);
	const char *name = luaL_checkstring(L, 2);
	size_t nlen = strlen(name);
	lua_Integer removed = 0;
	size_t pos = 0;

	for (;;) {
		size_t len;
		const char *m = msg_text(c, &len);
		size_t hlen = message_header_len(m, len), at = pos;
		struct message_field f;
		if (!message_next_field(m, hlen, &pos, &f))
			break;
		if (f.name_len == nlen && ascii_strncaseeq(f.name, name, nlen)) {
			size_t cut = pos - at;
			char *d = c->msg->data + c->start;
			memmove(d + at, d + pos, len - pos + 1);
			c->msg->len -= cut;
			pos = at;
			removed++;
		}
	}
	lua_pushinteger(L, removed);
	return 1;
}

static int
l_msg_body(lua_State *L)
{
	struct data_ctx *c = check_msg(L);
	size_t len;
	const char *m = msg_text(c, &len);
	size_t hlen = message_header_len(m, len);

	lua_pushlstring(L, m + hlen, len - hlen);
	return 1;
}

/* The whole message, header and body, as received (LF line ends). */
static int
l_msg_text(lua_State *L)
{
	struct data_ctx *c = check_msg(L);
	size_t len;
	const char *m = msg_text(c, &len);

	lua_pushlstring(L, m, len);
	return 1;
}

static int
l_msg_index(lua_State *L)
{
	const char *key = luaL_checkstring(L, 2);

	if (strcmp(key, "size") == 0) {
		struct data_ctx *c = check_msg(L);
		lua_pushinteger(L, (lua_Integer)(c->msg->len - c->start +
		    c->unseen));
		return 1;
	}
	if (strcmp(key, "truncated") == 0) {
		struct data_ctx *c = check_msg(L);
		lua_pushboolean(L, c->unseen > 0);
		return 1;
	}
	luaL_getmetatable(L, MSG_MT);
	lua_getfield(L, -1, "methods");
	lua_getfield(L, -1, key);
	return 1;
}

/* tx:set_folder(rcpt, folder); upvalue 1: the message userdata */
static int
l_tx_set_folder(lua_State *L)
{
	struct msg_ud *ud = lua_touserdata(L, lua_upvalueindex(1));
	const char *rcpt = luaL_checkstring(L, 2);
	const char *folder = luaL_checkstring(L, 3);

	if (ud == NULL || ud->ctx == NULL)
		return luaL_error(L, "set_folder used outside its data hook");
	if (!maildir_folder_valid(folder))
		return luaL_error(L, "set_folder: '%s' is not a valid folder "
		    "name (letters, digits, . - _)", folder);
	const struct data_ctx *d = ud->ctx;
	for (size_t i = 0; i < d->nrcpts; i++)
		if (ascii_strcaseeq(d->rcpts[i], rcpt)) {
			free(ud->ctx->folders[i]);
			ud->ctx->folders[i] = xstrdup(folder);
			lua_pushboolean(L, 1);
			return 1;
		}
	lua_pushboolean(L, 0);
	return 1;
}

void hooks_call_init(struct hooks *h);

void
hooks_call_init(struct hooks *h)
{
	static const luaL_Reg methods[] = {
		{ "header", l_msg_header }, { "headers", l_msg_headers },
		{ "add_header", l_msg_add_header },
		{ "remove_header", l_msg_remove_header },
		{ "body", l_msg_body }, { "text", l_msg_text },
		{ NULL, NULL },
	};
	lua_State *L = h->L;

	luaL_newmetatable(L, MSG_MT);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "methods");
	lua_pushcfunction(L, l_msg_index);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

/* tx and its message object: the userdata points at c->data. */
static void
args_data(lua_State *L, const void *what, struct hook_call *c)
{
	struct msg_ud *ud;

	push_tx(L, what);
	ud = lua_newuserdatauv(L, sizeof(*ud), 0);
	ud->ctx = NULL;
	luaL_setmetatable(L, MSG_MT);
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, l_tx_set_folder, 1);
	lua_setfield(L, -3, "set_folder");
	ud->ctx = &c->data;
	c->ud = ud;
}

static void
data_ctx_init(struct data_ctx *d, const struct hook_tx *tx, struct buf *msg,
    size_t start, uint64_t unseen, char **folders)
{
	d->msg = msg;
	d->start = start;
	d->unseen = unseen;
	d->folders = folders;
	d->rcpts = xcalloc(tx->nrcpts + 1, sizeof(char *));
	for (size_t i = 0; i < tx->nrcpts; i++)
		d->rcpts[i] = xstrdup(tx->rcpts[i]);
	d->nrcpts = tx->nrcpts;
}

struct hook_call *
hooks_data_start(struct hooks *h, const struct hook_io *io,
    const struct hook_tx *tx, struct buf *msg, size_t start, uint64_t unseen,
    char **folders, hook_done_cb done, void *arg, struct hook_verdict *v)
{
	struct data_ctx d;

	v->kind = HOOK_NONE;
	if (!hooks_has(h, HOOK_DATA))
		return NULL;
	data_ctx_init(&d, tx, msg, start, unseen, folders);
	return call_start(h, HOOK_DATA, io, args_data, tx, &d, done, arg, v);
}

void
hooks_data(struct hooks *h, const struct hook_tx *tx, struct buf *msg,
    size_t start, char **folders, struct hook_verdict *v)
{
	struct data_ctx d;

	v->kind = HOOK_NONE;
	if (!hooks_has(h, HOOK_DATA))
		return;
	data_ctx_init(&d, tx, msg, start, 0, folders);
	call_now(h, HOOK_DATA, args_data, tx, &d, v);
}

/* --- routing and reporting hooks -------------------------------------- */

struct info_args {
	const struct hook_msg_info *m;
	bool with_rcpt;
};

static int
info_cf(lua_State *L)
{
	const struct info_args *a = lua_touserdata(L, 1);

	lua_settop(L, 0);
	if (a->with_rcpt)
		lua_pushstring(L, a->m->rcpt);
	push_msg_info(L, a->m);
	return lua_gettop(L);
}

/*
 * The queue hooks' arguments, made under pcall (the plugin state may be
 * at its memory cap): 0 with them pushed, or -1 (logged).
 */
static int
push_info(struct hooks *h, enum hook_id id, const struct hook_msg_info *m,
    bool with_rcpt)
{
	struct info_args a = { m, with_rcpt };

	lua_pushcfunction(h->L, info_cf);
	lua_pushlightuserdata(h->L, &a);
	if (lua_pcall(h->L, 1, with_rcpt ? 2 : 1, 0) == LUA_OK)
		return 0;
	hooks_log_error(h, SIZE_MAX, id, lua_tostring(h->L, -1));
	lua_pop(h->L, 1);
	lua_gc(h->L, LUA_GCCOLLECT);
	return -1;
}

static int
read_route(struct hooks *h, size_t p, struct hook_route *r)
{
	lua_State *L = h->L;
	const char *plugin = h->plugins[p].name;

	if (lua_isnil(L, -2))
		return 0;
	if (lua_type(L, -2) == LUA_TSTRING) {
		const char *k = lua_tostring(L, -2);
		if (strcmp(k, "reject") == 0 || strcmp(k, "tempfail") == 0) {
			if (read_verdict(h, h->L, p, HOOK_ROUTE, false, &r->v) < 0)
				return -1;
			r->kind = r->v.kind == HOOK_REJECT ? ROUTE_REJECT :
			    ROUTE_TEMPFAIL;
			return 1;
		}
		log_warnx("plugin=%s hook=route: unknown verdict '%s'", plugin,
		    k);
		return -1;
	}
	if (!lua_istable(L, -2)) {
		log_warnx("plugin=%s hook=route returned a %s", plugin,
		    luaL_typename(L, -2));
		return -1;
	}
	lua_getfield(L, -2, "expand");
	if (lua_istable(L, -1)) {
		size_t n = lua_rawlen(L, -1);
		if (n == 0 || n > HOOK_EXPAND_MAX) {
			log_warnx("plugin=%s hook=route: expand needs 1 to %d "
			    "addresses", plugin, HOOK_EXPAND_MAX);
			lua_pop(L, 1);
			return -1;
		}
		r->expand = xcalloc(n, sizeof(char *));
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i);
			const char *a = lua_tostring(L, -1);
			struct smtp_addr sa;
			if (lua_type(L, -1) != LUA_TSTRING ||
			    smtp_parse_mailbox(a, strlen(a), &sa) != 0 ||
			    sa.domain[0] == '\0') {
				log_warnx("plugin=%s hook=route: expand item %zu "
				    "is not an address", plugin, i);
				lua_pop(L, 2);
				return -1;
			}
			r->expand[r->nexpand++] = xstrdup(a);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		r->kind = ROUTE_EXPAND;
		return 1;
	}
	lua_pop(L, 1);
	static const struct {
		const char *key;
		enum route_kind kind;
	} keys[] = { { "maildir", ROUTE_MAILDIR }, { "relay", ROUTE_RELAY },
		{ "mx", ROUTE_MX } };
	for (size_t i = 0; i < TERN_ARRAY_LEN(keys); i++) {
		lua_getfield(L, -2, keys[i].key);
		if (lua_type(L, -1) == LUA_TSTRING) {
			r->kind = keys[i].kind;
			if (str_copy(r->target, sizeof(r->target),
			    lua_tostring(L, -1)) != 0) {
				lua_pop(L, 1);
				log_warnx("plugin=%s hook=route: target too "
				    "long", plugin);
				return -1;
			}
		}
		lua_pop(L, 1);
	}
	if (r->kind == ROUTE_DEFAULT) {
		log_warnx("plugin=%s hook=route: a table needs maildir, relay, "
		    "mx or expand", plugin);
		return -1;
	}
	if (r->kind == ROUTE_MAILDIR && (r->target[0] != '/' ||
	    strstr(r->target, "/../") != NULL ||
	    strstr(r->target, "/..") == r->target + strlen(r->target) - 3)) {
		log_warnx("plugin=%s hook=route: maildir must be an absolute "
		    "path without ..", plugin);
		return -1;
	}
	lua_getfield(L, -2, "tls");
	if (lua_type(L, -1) == LUA_TSTRING) {
		const char *t = lua_tostring(L, -1);
		if (strcmp(t, "may") && strcmp(t, "none") && strcmp(t, "verify") &&
		    strcmp(t, "dane")) {
			log_warnx("plugin=%s hook=route: tls must be dane, may, "
			    "none or verify", plugin);
			lua_pop(L, 1);
			return -1;
		}
		(void)str_copy(r->tls, sizeof(r->tls), t);
	}
	lua_pop(L, 1);
	lua_getfield(L, -2, "folder");
	if (lua_type(L, -1) == LUA_TSTRING) {
		const char *f = lua_tostring(L, -1);
		if (!maildir_folder_valid(f)) {
			log_warnx("plugin=%s hook=route: bad folder '%s'",
			    plugin, f);
			lua_pop(L, 1);
			return -1;
		}
		(void)str_copy(r->folder, sizeof(r->folder), f);
	}
	lua_pop(L, 1);
	return 1;
}

void
hooks_route(struct hooks *h, const struct hook_msg_info *m,
    struct hook_route *r)
{
	lua_State *L;

	memset(r, 0, sizeof(*r));
	r->kind = ROUTE_DEFAULT;
	if (!hooks_has(h, HOOK_ROUTE))
		return;
	L = h->L;
	if (push_info(h, HOOK_ROUTE, m, true) != 0) {
		r->kind = ROUTE_TEMPFAIL;
		verdict_error(&r->v);
		return;
	}
	for (size_t p = 0; p < h->nplugins; p++) {
		if (h->plugins[p].fn_ref[HOOK_ROUTE] == LUA_NOREF)
			continue;
		hooks_push_fn(h, p, HOOK_ROUTE);
		lua_pushvalue(L, -3);
		lua_pushvalue(L, -3);
		if (hooks_pcall(h, p, HOOK_ROUTE, 2, 2) != 0) {
			r->kind = ROUTE_TEMPFAIL;
			verdict_error(&r->v);
			break;
		}
		int rc = read_route(h, p, r);
		lua_pop(L, 2);
		if (rc < 0) {
			hooks_route_clear(r);
			memset(r, 0, sizeof(*r));
			r->kind = ROUTE_TEMPFAIL;
			verdict_error(&r->v);
			break;
		}
		if (rc > 0)
			break;
	}
	lua_pop(L, 2);
	h->current = SIZE_MAX;
}

void
hooks_route_clear(struct hook_route *r)
{
	for (size_t i = 0; i < r->nexpand; i++)
		free(r->expand[i]);
	free(r->expand);
	r->expand = NULL;
	r->nexpand = 0;
}

bool
hooks_retry(struct hooks *h, const struct hook_msg_info *m, int64_t *delay,
    bool *bounce)
{
	lua_State *L;
	bool decided = false;

	*bounce = false;
	if (!hooks_has(h, HOOK_RETRY))
		return false;
	L = h->L;
	if (push_info(h, HOOK_RETRY, m, false) != 0)
		return false;
	for (size_t p = 0; p < h->nplugins && !decided; p++) {
		if (h->plugins[p].fn_ref[HOOK_RETRY] == LUA_NOREF)
			continue;
		hooks_push_fn(h, p, HOOK_RETRY);
		lua_pushvalue(L, -2);
		if (hooks_pcall(h, p, HOOK_RETRY, 1, 1) != 0)
			break;
		if (lua_isinteger(L, -1) || lua_type(L, -1) == LUA_TNUMBER) {
			lua_Number d = lua_tonumber(L, -1);
			if (d >= 0 && d <= 365.0 * 86400) {
				*delay = d < 1 ? 1 : (int64_t)d;
				decided = true;
			} else
				log_warnx("plugin=%s hook=retry: delay %g out "
				    "of range", h->plugins[p].name, d);
		} else if (lua_type(L, -1) == LUA_TSTRING &&
		    strcmp(lua_tostring(L, -1), "bounce") == 0) {
			*bounce = true;
			decided = true;
		} else if (!lua_isnil(L, -1))
			log_warnx("plugin=%s hook=retry returned a %s, not a "
			    "delay or \"bounce\"", h->plugins[p].name,
			    luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	h->current = SIZE_MAX;
	return decided;
}

static void
report(struct hooks *h, enum hook_id id, const struct hook_msg_info *m)
{
	lua_State *L;

	if (!hooks_has(h, id))
		return;
	L = h->L;
	if (push_info(h, id, m, false) != 0)
		return;
	for (size_t p = 0; p < h->nplugins; p++) {
		if (h->plugins[p].fn_ref[id] == LUA_NOREF)
			continue;
		hooks_push_fn(h, p, id);
		lua_pushvalue(L, -2);
		if (hooks_pcall(h, p, id, 1, 0) != 0)
			continue;
	}
	lua_pop(L, 1);
	h->current = SIZE_MAX;
}

void
hooks_delivered(struct hooks *h, const struct hook_msg_info *m)
{
	report(h, HOOK_DELIVERED, m);
}

void
hooks_bounced(struct hooks *h, const struct hook_msg_info *m)
{
	report(h, HOOK_BOUNCED, m);
}
