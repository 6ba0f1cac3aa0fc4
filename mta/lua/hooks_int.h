/* SPDX-License-Identifier: ISC */
/*
 * hooks_int.h - private to hooks.c and hooks_call.c (the Lua bridge):
 * the plugin runtime's state and the call helper they share.
 */
#ifndef TERN_HOOKS_INT_H
#define TERN_HOOKS_INT_H

#include <time.h>

#include <lua.h>

#include "base/buf.h"

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
	unsigned wait_ms;
	char **http_allow;
	size_t nhttp_allow;
	struct hook_call *running; /* the call whose coroutine runs, or NULL */
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

/* What the data hook's message object points at. */
struct data_ctx {
	struct buf *msg;
	size_t start;
	uint64_t unseen;         /* octets of a spooled message after msg */
	char **folders;
	char **rcpts;            /* copies of the recipients, folders' order */
	size_t nrcpts;
};

struct msg_ud {
	struct data_ctx *ctx;    /* NULL once the hook returned */
};

/* A verdict hook's chain in progress (hooks_*_start). */
struct hook_call {
	struct hooks *h;
	enum hook_id id;
	struct hook_io io;
	bool can_wait;           /* false for the synchronous wrappers */
	bool in_start;           /* inside its start function */
	bool finished;
	bool allow_discard;
	int args_ref;            /* a table of the hook's arguments */
	int nargs;
	size_t plugin;           /* the plugin whose turn it is */
	lua_State *co;           /* its coroutine, or NULL between plugins */
	int co_ref;
	int64_t run_ns;          /* time spent running, all resumptions */
	struct timespec started;
	struct event *timer;     /* the wall-clock budget, once it waits */
	void (*wait_cancel)(void *op);
	void *wait_op;           /* what it waits for, or NULL */
	struct data_ctx data;
	struct msg_ud *ud;       /* the data hook's message, or NULL */
	struct hook_verdict v;
	hook_done_cb done;
	void *arg;
};

/*
 * For the functions that wait (hooks_wait.c): the call that may wait, or
 * a Lua error naming fn if the hook running cannot (route, retry, JMAP,
 * loading) or the yield could not cross a C function of Lua's.
 */
struct hook_call *hooks_wait_check(lua_State *L, const char *fn);
/*
 * op has started: returns what the waiting function returns (it yields).
 * When op's answer is in (kept in op), its callback calls
 * hooks_wait_done(c); k then runs in the coroutine, pushes the results
 * and frees op. If the call is cancelled or overruns first, cancel(op)
 * stops and frees op instead.
 */
int hooks_wait_yield(lua_State *L, struct hook_call *c,
    void (*cancel)(void *op), void *op, lua_KFunction k);
void hooks_wait_done(struct hook_call *c);
/* tern.dns, tern.dnsbl, tern.http and tern.json, into the table on top. */
void hooks_wait_register(lua_State *L);
void hooks_json_register(lua_State *L);
/* The tern module's plugin_name for logs. */
const char *hooks_plugin_name(struct hooks *h);
/* Logs and counts a plugin error (plugin, hook, message). */
void hooks_log_error(struct hooks *h, size_t plugin, enum hook_id id,
    const char *msg);
/* Replaces the table on top with a read-only proxy of it. */
void hooks_make_readonly(lua_State *L);
/* The count hook that enforces h->deadline. */
void hooks_budget_hook(lua_State *L, lua_Debug *ar);

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
