/* SPDX-License-Identifier: ISC */
/*
 * hooks.h - layer 2: the Lua bridge; hooks.c and hooks_call.c are the only
 * code that includes Lua. Two jobs:
 *
 *  - configuration: run a config file in a sandbox and turn what it set
 *    into a tree of plain C values (struct cfg_node) that config.c checks
 *    against its schema; each top-level key remembers its line;
 *  - plugins (DESIGN.md section 5): one struct hooks per configuration
 *    generation holds a lua_State with the plugins loaded, each in its own
 *    sandboxed _ENV. Every call runs under lua_pcall with a time budget and
 *    a memory cap; an error, an overrun or a malformed verdict becomes a
 *    temporary failure (451 4.3.0) logged with plugin, hook and line.
 *
 * Everything here runs on the loop thread only.
 */
#ifndef TERN_HOOKS_H
#define TERN_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type { CFG_BOOL, CFG_INT, CFG_NUM, CFG_STR, CFG_TABLE };

struct cfg_node {
	enum cfg_type type;
	char *key;               /* NULL for array items */
	int line;                /* assigning line (top level), else 0 */
	bool b;
	long long i;
	double n;
	char *s;
	struct cfg_node *items;  /* CFG_TABLE: array part first, in order */
	size_t nitems;
	size_t narray;           /* how many items are array items */
};

/*
 * Runs Lua source text (name is used in messages: the file name, or
 * "(embedded default)") in a sandbox with string, table and math, and
 * os.getenv. The result is the globals it assigned, or the table it
 * returned. NULL with "name:line: reason" in err on failure.
 */
struct cfg_node *hooks_eval_config(const char *text, size_t len,
    const char *name, char *err, size_t errsz);
void cfg_node_free(struct cfg_node *node);
/* The item of a table node with this key, or NULL. */
const struct cfg_node *cfg_node_get(const struct cfg_node *table,
    const char *key);

/* --- plugins --------------------------------------------------------- */

struct hooks;
struct hook_call;
struct kvstore;
struct buf;
struct event_base;
struct dns;

enum hook_id {
	HOOK_CONNECT, HOOK_HELO, HOOK_MAIL, HOOK_RCPT, HOOK_DATA, HOOK_ROUTE,
	HOOK_RETRY, HOOK_DELIVERED, HOOK_BOUNCED, HOOK_COUNT
};

struct hooks_settings {
	const char *const *plugins;        /* names, in order */
	size_t nplugins;
	const char *const *plugin_path;    /* directories searched in order */
	size_t npath;
	const struct cfg_node *plugin_config; /* table name -> table, or NULL */
	unsigned budget_ms;                /* per call: running */
	unsigned wait_ms;                  /* per call: waiting (0: 15 s) */
	const char *const *http_allow;     /* "host:port" tern.http may ask */
	size_t nhttp_allow;
	size_t mem_max;                    /* bytes for the whole state */
	const char *hostname;
	const char *const *domains;
	size_t ndomains;
	struct kvstore *kv;                /* borrowed; outlives the hooks */
};

/* Loads every plugin; NULL with "file:line: reason" in err. */
struct hooks *hooks_new(const struct hooks_settings *hs, char *err,
    size_t errsz);
void hooks_free(struct hooks *h);
/* True if some plugin defines this hook (else calling it is a no-op). */
bool hooks_has(const struct hooks *h, enum hook_id id);
const char *hooks_name(enum hook_id id);
/* Plugin names loaded, for logs and `ternd -n`. */
size_t hooks_plugin_count(const struct hooks *h);

enum hook_kind {
	HOOK_NONE,          /* no plugin decided: the built-in default */
	HOOK_ACCEPT,
	HOOK_REJECT,
	HOOK_TEMPFAIL,      /* also what errors and overruns become */
	HOOK_DISCARD,       /* data only: 250, then drop the message */
};

struct hook_verdict {
	enum hook_kind kind;
	int code;
	char enh[12];
	char text[256];
};

struct hook_session {
	const char *ip;
	int port;
	const char *role;
	bool tls;
	const char *helo;         /* NULL before HELO/EHLO */
	const char *user;         /* the AUTH user, NULL before AUTH */
};

/* One DKIM signature's verdict, as the data hook sees it (tx.auth.dkim). */
struct hook_dkim {
	const char *domain, *selector, *result, *reason, *algorithm;
	bool testing;
};

/* One ARC set of a received message (tx.auth.arc.sets). */
struct hook_arc_hop {
	unsigned i;
	const char *domain, *selector, *cv, *results;
	bool seal_ok, ams_ok;
};

struct hook_tx {
	const struct hook_session *s;
	const char *sender;       /* "" for <> */
	const char *const *rcpts; /* accepted so far, "local@domain" */
	size_t nrcpts;
	const char *const *params; /* MAIL parameters as "KEY=VALUE" */
	size_t nparams;
	/* received mail's authentication (the data hook): tx.auth */
	bool auth;
	const struct hook_dkim *dkim;
	size_t ndkim;
	const char *spf_result;   /* NULL: not checked */
	const char *spf_domain, *spf_reason;
	const char *spf_helo_result; /* the HELO identity's; NULL: none */
	const char *spf_helo_domain, *spf_helo_reason;
	const char *dmarc_result; /* NULL: not checked */
	const char *dmarc_policy, *dmarc_domain;
	unsigned dmarc_pct;
	const char *arc_result;   /* NULL: not checked */
	const char *arc_reason;
	int arc_oldest_pass;      /* -1: none */
	const struct hook_arc_hop *arc;
	size_t narc;
};

/*
 * The verdict hooks run as coroutines: a plugin may call functions that
 * wait (tern.dns.lookup, tern.dnsbl, tern.http.request) and the caller
 * goes on with other work meanwhile. Each *_start function returns NULL
 * when the chain finished at once (*v holds the verdict), or a pending
 * call whose done callback runs later on the loop, exactly once, with
 * the verdict, unless hooks_call_cancel() comes first. What the call
 * points at (the data hook's msg and folders) must stay as it is until
 * then; the tx and session are copied at the start.
 *
 * The budget: budget_ms of running, summed over the call's plugins and
 * resumptions, and wait_ms of wall-clock time from the start; either
 * overrun is a 451 4.3.0 (logged).
 */
struct httpc_tls;

struct hook_io {
	struct event_base *base;
	struct dns *dns;          /* NULL: tern.dns functions fail */
	const struct httpc_tls *tls; /* NULL: tern.http has no https */
};

typedef void (*hook_done_cb)(void *arg, const struct hook_verdict *v);

struct hook_call *hooks_connect_start(struct hooks *h,
    const struct hook_io *io, const struct hook_session *s,
    hook_done_cb done, void *arg, struct hook_verdict *v);
struct hook_call *hooks_helo_start(struct hooks *h, const struct hook_io *io,
    const struct hook_session *s, const char *name, hook_done_cb done,
    void *arg, struct hook_verdict *v);
struct hook_call *hooks_mail_start(struct hooks *h, const struct hook_io *io,
    const struct hook_tx *tx, const char *addr, hook_done_cb done,
    void *arg, struct hook_verdict *v);
struct hook_call *hooks_rcpt_start(struct hooks *h, const struct hook_io *io,
    const struct hook_tx *tx, const char *addr, hook_done_cb done,
    void *arg, struct hook_verdict *v);
/* unseen: octets of a spooled message after msg (msg.size counts them,
 * msg.truncated is true) */
struct hook_call *hooks_data_start(struct hooks *h, const struct hook_io *io,
    const struct hook_tx *tx, struct buf *msg, size_t start, uint64_t unseen,
    char **folders, hook_done_cb done, void *arg, struct hook_verdict *v);
/* Stops a pending call: what it waits for is cancelled, done never runs. */
void hooks_call_cancel(struct hook_call *c);

/*
 * The same without waiting (JMAP submission): a plugin that calls a
 * waiting function there gets an error, which is a 451.
 */
void hooks_connect(struct hooks *h, const struct hook_session *s,
    struct hook_verdict *v);
void hooks_helo(struct hooks *h, const struct hook_session *s,
    const char *name, struct hook_verdict *v);
void hooks_mail(struct hooks *h, const struct hook_tx *tx, const char *addr,
    struct hook_verdict *v);
void hooks_rcpt(struct hooks *h, const struct hook_tx *tx, const char *addr,
    struct hook_verdict *v);

/*
 * data: the message is msg[start..len) (LF line ends); plugins may edit
 * its header (msg is changed in place) and choose a folder per recipient:
 * folders[i] (owned, may be set to a new xstrdup'd name) for rcpts[i].
 */
void hooks_data(struct hooks *h, const struct hook_tx *tx, struct buf *msg,
    size_t start, char **folders, struct hook_verdict *v);

/* A delivered/failed/retried recipient, as the routing hooks see it. */
struct hook_msg_info {
	const char *id;
	const char *sender;
	const char *rcpt;         /* "local@domain" */
	const char *domain;
	unsigned attempts;
	int64_t age;              /* seconds since it was queued */
	const char *error;        /* last error text, or "" */
};

enum route_kind { ROUTE_DEFAULT, ROUTE_MAILDIR, ROUTE_RELAY, ROUTE_MX,
	ROUTE_EXPAND, ROUTE_REJECT, ROUTE_TEMPFAIL };

#define HOOK_EXPAND_MAX 100

struct hook_route {
	enum route_kind kind;
	char target[1024];        /* maildir path, relay host:port, MX domain */
	char folder[128];         /* with ROUTE_MAILDIR, may be "" */
	char tls[8];              /* with RELAY/MX: "may", "none", "verify" or "" */
	struct hook_verdict v;    /* with REJECT/TEMPFAIL */
	char **expand;            /* ROUTE_EXPAND: "local@domain" (owned) */
	size_t nexpand;
};

/* Frees what a route result owns (the expansion list). */
void hooks_route_clear(struct hook_route *r);

void hooks_route(struct hooks *h, const struct hook_msg_info *m,
    struct hook_route *r);
/*
 * retry: returns true if a plugin decided: *bounce, or *delay seconds.
 * False: no plugin (or an error): the caller's built-in policy applies.
 */
bool hooks_retry(struct hooks *h, const struct hook_msg_info *m,
    int64_t *delay, bool *bounce);
void hooks_delivered(struct hooks *h, const struct hook_msg_info *m);
void hooks_bounced(struct hooks *h, const struct hook_msg_info *m);

#endif
