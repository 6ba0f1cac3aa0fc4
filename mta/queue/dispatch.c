/* SPDX-License-Identifier: ISC */
/*
 * dispatch.c - layer 4: delivery scheduling (dispatch.h).
 *
 * Each queued message has a slot; the scheduler (pure, scheduler.c) holds
 * (due, slot|generation) keys and this file owns the one timer. A delivery
 * job moves through phases, alternating between a worker (disk) and the
 * loop thread (Lua, which is single-threaded):
 *
 *   LOAD     worker  read the queue file back (messages found at start-up
 *                    or waiting for a retry; a just-committed message is
 *                    still in memory and skips this)
 *   ROUTE    loop    default route per pending recipient (local domain ->
 *                    its Maildir, else remote), then the route hook
 *   DELIVER  worker  Maildir deliveries, tagged "<queue id>R<index>"
 *   REMOTE   loop    the other recipients, grouped by next hop (the
 *                    relayhost, a relay or mx route, or the recipient
 *                    domain's MX), one smtp_client delivery per group
 *   DECIDE   loop    delivered hooks; for temporary failures the retry
 *                    hook (or the built-in 30 min doubling to 4 h); failed
 *                    recipients get one bounce per message (not for <>),
 *                    committed before the original is updated
 *   RECORD   worker  remove the queue file, or rewrite its state file
 *
 * At most max_deliveries jobs run at once; the rest wait in the scheduler
 * with their bodies dropped from memory.
 *
 * Exactly once across crashes: a kill between a Maildir rename and the
 * queue update would deliver again after the restart. So the first
 * attempt on a message found at start-up first looks for its tag in the
 * recipient's new/ and cur/, and counts a hit as delivered.
 */
#include "queue/dispatch.h"
#include "queue/dispatch_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/buf.h"
#include "base/intl.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "lua/config.h"
#include "lua/hooks.h"
#include "mail/arc_seal.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "queue/queue.h"
#include "queue/scheduler.h"
#include "runtime.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_parse.h"
#include "store/deliver_maildir.h"
#include "store/quota.h"

uint64_t
dispatch_make_key(uint32_t slot, uint32_t gen)
{
	return ((uint64_t)slot << 32) | gen;
}

struct slot *
dispatch_slot_get(struct dispatch *d, uint64_t key)
{
	uint32_t idx = (uint32_t)(key >> 32);

	if (idx >= d->nslots || !d->slots[idx].used ||
	    d->slots[idx].gen != (uint32_t)key)
		return NULL;
	return &d->slots[idx];
}

static uint64_t
dispatch_slot_new(struct dispatch *d, const char *id)
{
	uint32_t idx;

	if (d->nfree > 0)
		idx = d->free_list[--d->nfree];
	else {
		if (d->nslots == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 256;
			d->slots = xreallocarray(d->slots, d->cap,
			    sizeof(*d->slots));
			d->free_list = xreallocarray(d->free_list, d->cap,
			    sizeof(*d->free_list));
		}
		idx = d->nslots++;
		d->slots[idx].gen = 0;
	}
	struct slot *s = &d->slots[idx];
	uint32_t gen = s->gen + 1;
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->gen = gen;
	(void)str_copy(s->id, sizeof(s->id), id);
	return dispatch_make_key(idx, gen);
}

void
dispatch_free_env_body(struct envelope **env, struct buf **body)
{
	if (*env) {
		envelope_clear(*env);
		free(*env);
		*env = NULL;
	}
	if (*body) {
		buf_clear(*body);
		free(*body);
		*body = NULL;
	}
}

void
dispatch_slot_free(struct dispatch *d, uint64_t key)
{
	struct slot *s = dispatch_slot_get(d, key);

	if (s == NULL)
		return;
	dispatch_free_env_body(&s->env, &s->body);
	s->used = false;
	d->free_list[d->nfree++] = (uint32_t)(key >> 32);
}

int64_t
dispatch_now(void)
{
	return (int64_t)time(NULL);
}

static void job_end(struct job *j);

/* --- LOAD (worker) ---------------------------------------------------- */

static void
work_load(void *arg)
{
	struct job *j = arg;
	struct tern_err err;

	j->env = xcalloc(1, sizeof(*j->env));
	envelope_init(j->env);
	j->body = xcalloc(1, sizeof(*j->body));
	buf_init(j->body);
	/* a big one: its start only (it is read whole only for a remote hop) */
	int rc = 0;
	bool whole = true;
	if (queue_file_size_sync(j->d->queue, j->id) > DISPATCH_BIG) {
		rc = queue_load_part_sync(j->d->queue, j->id, j->env, j->body,
		    DISPATCH_HEAD_MAX, &j->body_fd, &j->body_off, &err);
		j->lazy = rc == 0;
		whole = rc != 0 && err.code == 0;
		if (whole) {
			envelope_clear(j->env);     /* the usual way, then */
			envelope_init(j->env);
			buf_reset(j->body);
		}
	}
	if (whole)
		rc = queue_load_sync(j->d->queue, j->id, j->env, j->body, &err);
	if (rc != 0) {
		if (!err.temp) {
			log_warnx("%s: %s; moved to spool/corrupt", j->id,
			    err.text);
			(void)queue_move_aside_sync(j->d->queue, j->id);
			j->result = JOB_FINISHED;
		} else {
			log_warnx("%s: %s", j->id, err.text);
			j->result = JOB_ERROR;
		}
		dispatch_free_env_body(&j->env, &j->body);
		return;
	}
	if (j->env->held)
		j->result = JOB_HELD;
	else if (j->env->next_try > j->now && !j->forced)
		j->result = JOB_NOT_DUE;
}

/* --- ROUTE (loop) ----------------------------------------------------- */

void
dispatch_fill_info(const struct job *j, size_t i, struct hook_msg_info *m,
    char *rcpt, size_t rcptsz, char *sender, size_t sendersz)
{
	const char *path = j->env->rcpts[i].path;
	size_t n = strlen(path), sn = strlen(j->env->sender);

	(void)snprintf(rcpt, rcptsz, "%.*s", (int)(n - 2), path + 1);
	(void)snprintf(sender, sendersz, "%.*s", (int)(sn >= 2 ? sn - 2 : 0),
	    j->env->sender + 1);
	m->id = j->id;
	m->sender = sender;
	m->rcpt = rcpt;
	const char *at = strrchr(rcpt, '@');
	m->domain = at ? at + 1 : "";
	m->attempts = j->env->attempts;
	m->age = j->now - j->env->created;
	m->error = j->env->rcpts[i].error ? j->env->rcpts[i].error : "";
}

void
dispatch_fail_rcpt(struct job *j, size_t i, int code, const char *enh, const char *text)
{
	j->d->stats.failed++;
	struct envelope_rcpt *r = &j->env->rcpts[i];
	/* text may be r->error itself: format before freeing */
	char *error = xasprintf("%d %s %s", code, enh, text);

	free(r->error);
	r->error = error;
	r->status = RCPT_FAILED;
	j->plans[i].newly_failed = true;
	j->changed = true;
	log_info("%s: to=%s status=failed (%s)", j->id, r->path, r->error);
}

#define EXPAND_TOTAL_MAX 1000   /* recipients a message may grow to */

static void
ensure_plans(struct job *j)
{
	if (j->nplans >= j->env->nrcpts)
		return;
	j->plans = xreallocarray(j->plans, j->env->nrcpts, sizeof(*j->plans));
	memset(j->plans + j->nplans, 0,
	    (j->env->nrcpts - j->nplans) * sizeof(*j->plans));
	j->nplans = j->env->nrcpts;
}

/*
 * Alias expansion: the new addresses become recipients of this message
 * (persisted as "rcpt-add:" in its state), the alias itself is done.
 */
static void
expand_rcpt(struct job *j, size_t i, const struct hook_route *route)
{
	size_t added = 0;

	for (size_t k = 0; k < route->nexpand; k++) {
		char *path = xasprintf("<%s>", route->expand[k]);
		bool dup = false;
		for (size_t n = 0; n < j->env->nrcpts && !dup; n++)
			dup = ascii_strcaseeq(j->env->rcpts[n].path, path);
		if (!dup && j->env->nrcpts < EXPAND_TOTAL_MAX) {
			size_t n = envelope_add_rcpt(j->env, path);
			/* RFC 3461 6.2.7.1: an alias passes the DSN request
			 * on, with the address the sender gave as ORCPT */
			const struct envelope_rcpt *a = &j->env->rcpts[i];
			j->env->rcpts[n].notify = a->notify;
			if (a->orcpt)
				j->env->rcpts[n].orcpt = xstrdup(a->orcpt);
			else {
				struct buf o;
				buf_init(&o);
				dsn_orcpt_make(a->path + 1,
				    strlen(a->path) - 2, &o);
				j->env->rcpts[n].orcpt = xstrndup(o.data, o.len);
				buf_clear(&o);
			}
			added++;
		} else if (!dup)
			log_warnx("%s: expansion of %s stopped at %d "
			    "recipients", j->id, j->env->rcpts[i].path,
			    EXPAND_TOTAL_MAX);
		free(path);
	}
	ensure_plans(j);
	struct envelope_rcpt *r = &j->env->rcpts[i];
	free(r->error);
	r->error = xasprintf("250 2.0.0 expanded to %zu new recipient(s)",
	    added);
	r->status = RCPT_DONE;
	j->changed = true;
	log_info("%s: to=%s status=expanded (%zu new recipient(s))", j->id,
	    r->path, added);
}

/* Plans recipient i: its default route, then what the route hook says. */
static void
route_rcpt(struct job *j, size_t i)
{
	const struct config *cfg = j->rt->cfg;
	struct envelope_rcpt *r = &j->env->rcpts[i];
	struct plan *p = &j->plans[i];
	size_t plen = strlen(r->path);
	char mailbox[SMTP_LOCAL_MAX + 1], domain[SMTP_DOMAIN_MAX + 1];
	/* r and p stay valid: expansion happens last, through expand_rcpt */
	char rcpt[600], sender[600];
	const char *folder = r->folder;
	struct hook_msg_info m;
	struct hook_route route;
	struct smtp_addr a;

	if (plen < 2 || smtp_parse_mailbox(r->path + 1, plen - 2, &a) != 0) {
		dispatch_fail_rcpt(j, i, 550, "5.1.3", "bad recipient address in queue");
		return;
	}
	bool local = a.domain[0] != '[' && config_is_local_domain(cfg,
	    a.domain);
	if (local && (maildir_local_normalize(a.local,
	    cfg->recipient_delimiter, mailbox, sizeof(mailbox)) != 0 ||
	    maildir_domain_normalize(a.domain, domain, sizeof(domain)) != 0)) {
		dispatch_fail_rcpt(j, i, 553, "5.1.3", "mailbox name not allowed");
		return;
	}
	if (local) {
		p->kind = PLAN_MAILDIR;
		p->maildir = xasprintf("%s/%s/%s", cfg->mail_dir, domain,
		    mailbox);
		p->mailbox = xasprintf("%s@%s", mailbox, domain);
		p->domain = xstrdup(domain);
	} else {
		p->kind = PLAN_REMOTE;
		p->domain = xstrdup(a.domain);
		p->tls = (enum smtp_tls_policy)cfg->client.tls;
		if (cfg->relayhost) {
			p->hop_kind = SMTP_DEST_RELAY;
			p->hop = xstrdup(cfg->relayhost);
		} else {
			/* the MX of a U-label domain is its A-label's */
			char ascii[SMTP_DOMAIN_MAX + 1];
			p->hop_kind = SMTP_DEST_MX;
			p->hop = xstrdup(intl_domain_ascii(a.domain, ascii,
			    sizeof(ascii)) == 0 ? ascii : a.domain);
		}
	}
	if (hooks_has(j->rt->hooks, HOOK_ROUTE)) {
		dispatch_fill_info(j, i, &m, rcpt, sizeof(rcpt), sender, sizeof(sender));
		hooks_route(j->rt->hooks, &m, &route);
		switch (route.kind) {
		case ROUTE_DEFAULT:
			break;
		case ROUTE_EXPAND:
			p->kind = PLAN_NONE;
			expand_rcpt(j, i, &route);
			hooks_route_clear(&route);
			return;
		case ROUTE_MAILDIR:
			free(p->maildir);
			p->kind = PLAN_MAILDIR;
			p->maildir = xstrdup(route.target);
			if (p->mailbox == NULL)
				p->mailbox = xstrdup(rcpt);
			if (route.folder[0])
				folder = route.folder;
			break;
		case ROUTE_RELAY:
		case ROUTE_MX:
			free(p->maildir);
			p->maildir = NULL;
			p->kind = PLAN_REMOTE;
			free(p->hop);
			p->hop_kind = route.kind == ROUTE_RELAY ?
			    SMTP_DEST_RELAY : SMTP_DEST_MX;
			p->hop = xstrdup(route.target);
			p->tls = (enum smtp_tls_policy)(route.tls[0] ?
			    config_tls_policy(route.tls) : cfg->client.tls);
			break;
		case ROUTE_REJECT:
			p->kind = PLAN_NONE;
			dispatch_fail_rcpt(j, i, route.v.code, route.v.enh, route.v.text);
			return;
		case ROUTE_TEMPFAIL:
			p->kind = PLAN_TEMP;
			free(r->error);
			r->error = xasprintf("%d %s %s", route.v.code,
			    route.v.enh, route.v.text);
			return;
		}
	}
	if (p->kind == PLAN_MAILDIR && folder) {
		char *f = xasprintf("%s/.%s", p->maildir, folder);
		free(p->maildir);
		p->maildir = f;
	}
}

static void work_deliver(void *arg);
static void work_whole_deliver(void *arg);
static void done_deliver(void *arg);

/* A remote hop takes the message from memory (and ARC seals it there). */
static bool
needs_whole(const struct job *j)
{
	for (size_t i = 0; i < j->env->nrcpts; i++)
		if (j->env->rcpts[i].status == RCPT_PENDING &&
		    j->plans[i].kind == PLAN_REMOTE)
			return true;
	return false;
}

/* Its turn to be read whole, or a wait for one (big_wake). */
static void
big_start(struct job *j)
{
	struct dispatch *d = j->d;

	if (d->big_loaded >= DISPATCH_BIG_MAX) {
		if (d->nbig_wait == d->big_wait_cap) {
			d->big_wait_cap = d->big_wait_cap ?
			    2 * d->big_wait_cap : 16;
			d->big_wait = xreallocarray(d->big_wait,
			    d->big_wait_cap, sizeof(*d->big_wait));
		}
		d->big_wait[d->nbig_wait++] = j;
		return;
	}
	d->big_loaded++;
	j->big = true;
	iopool_submit(d->pool, work_whole_deliver, done_deliver, j);
}

static void
phase_route(struct job *j)
{
	ensure_plans(j);
	/* nrcpts may grow as aliases expand; new ones are routed too */
	for (size_t i = 0; i < j->env->nrcpts; i++)
		if (j->env->rcpts[i].status == RCPT_PENDING)
			route_rcpt(j, i);
	if (j->lazy && needs_whole(j))
		big_start(j);
	else
		iopool_submit(j->d->pool, work_deliver, done_deliver, j);
}

static void
done_load(void *arg)
{
	struct job *j = arg;

	if (j->env == NULL || j->result == JOB_NOT_DUE ||
	    j->result == JOB_HELD) {
		job_end(j);
		return;
	}
	phase_route(j);
}

/* --- DELIVER (worker) ------------------------------------------------- */

/*
 * One copy into a Maildir, with its Return-Path and Delivered-To, tagged
 * "<id>R<i>" (recovery looks for the tag), within the quota. 0 with the
 * file's name, or -1 with err (err->temp: try again later).
 */
static int
deliver_local(struct deliver_maildir *dm, const struct config_limits *lim,
    const char *id, size_t i, const char *sender, const char *maildir,
    const char *mailbox, const struct buf *body, int src_fd, uint64_t src_off,
    uint64_t src_len, char *name, size_t namesz, struct tern_err *err)
{
	char tag[ENVELOPE_ID_LEN + 24], root[4096];
	struct iovec iov[2];
	struct buf head;
	int rc;

	(void)str_fmt(tag, sizeof(tag), "%sR%zu", id, i);
	buf_init(&head);
	message_append_delivery_fields(&head, sender, mailbox);
	iov[0].iov_base = head.data;
	iov[0].iov_len = head.len;
	iov[1].iov_base = body->data;
	iov[1].iov_len = body->len;
	/* src_fd: the message is src_len octets of it, body not used */
	uint64_t size = head.len + (src_fd >= 0 ? src_len : body->len);
	/* over quota: 452 4.2.2, the message waits in the queue */
	quota_root(maildir, root, sizeof(root));
	memset(err, 0, sizeof(*err));
	rc = quota_check(root, lim->quota_storage, lim->quota_messages, size,
	    err);
	if (rc == 0)
		rc = deliver_maildir_sync_from(dm, maildir, tag, iov,
		    src_fd >= 0 ? 1 : 2, src_fd, src_off, src_len, name, namesz,
		    err);
	if (rc == 0)
		quota_add(root, (int64_t)size, 1);
	buf_clear(&head);
	return rc;
}

static void
deliver_one(struct job *j, size_t i)
{
	struct envelope_rcpt *r = &j->env->rcpts[i];
	struct plan *p = &j->plans[i];
	char name[MAILDIR_NAME_MAX + 1], tag[ENVELOPE_ID_LEN + 24];
	struct tern_err err;
	int rc;

	(void)str_fmt(tag, sizeof(tag), "%sR%zu", j->id, i);
	if (j->recovered && deliver_maildir_has_tag(p->maildir, tag)) {
		/* Delivered before a crash, not yet recorded: exactly once. */
		log_info("%s: to=%s relay=local mailbox=%s status=sent "
		    "(already delivered before the restart)", j->id, r->path,
		    p->maildir);
		r->status = RCPT_DONE;
		p->delivered = true;
		j->changed = true;
		return;
	}
	rc = deliver_local(j->d->dm, &j->rt->cfg->limits, j->id, i,
	    j->env->sender, p->maildir, p->mailbox, j->body, j->lazy ?
	    j->body_fd : -1, j->body_off, j->env->size, name, sizeof(name),
	    &err);
	free(r->error);
	if (rc == 0) {
		r->error = xasprintf("250 2.0.0 %s", name);
		r->status = RCPT_DONE;
		p->delivered = true;
		j->changed = true;
		log_info("%s: to=%s relay=local maildir=%s delay=%llds "
		    "status=sent (%s)", j->id, r->path, p->maildir,
		    (long long)(dispatch_now() - j->env->created), name);
		return;
	}
	r->error = xasprintf("%d %s %s", err.code, err.enh, err.text);
	log_info("%s: to=%s relay=local maildir=%s status=%s (%s)", j->id,
	    r->path, p->maildir, err.temp ? "deferred" : "failed", r->error);
	if (err.temp)
		j->temp = true;
	else {
		r->status = RCPT_FAILED;
		p->newly_failed = true;
		j->changed = true;
	}
}

/* --- the local fast path (queue_direct) -------------------------------- */

/*
 * A message whose recipients are all local, with no plugin that routes or
 * wants to hear of deliveries and no success report asked for, is
 * delivered before the 250 and never queued (queue.h, queue_direct). What
 * is not delivered then goes through the queue as usual.
 */
struct direct {
	struct dispatch *d;
	struct runtime *rt;
	size_t n;
	char **maildir;          /* per recipient */
	char **mailbox;
	bool *sent;
};

static void
direct_free(struct direct *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->maildir[i]);
		free(x->mailbox[i]);
	}
	free(x->maildir);
	free(x->mailbox);
	free(x->sent);
	runtime_unref(x->rt);
	free(x);
}

static void *
direct_plan(void *arg, const struct envelope *env)
{
	struct dispatch *d = arg;
	struct runtime *rt = *d->current;
	const struct config *cfg = rt->cfg;
	char mailbox[SMTP_LOCAL_MAX + 1], domain[SMTP_DOMAIN_MAX + 1];
	struct smtp_addr a;

	if (!cfg->local_fast_path || d->stopped ||
	    hooks_has(rt->hooks, HOOK_ROUTE) ||
	    hooks_has(rt->hooks, HOOK_DELIVERED))
		return NULL;
	struct direct *x = xcalloc(1, sizeof(*x));
	x->d = d;
	x->rt = runtime_ref(rt);
	x->maildir = xcalloc(env->nrcpts, sizeof(char *));
	x->mailbox = xcalloc(env->nrcpts, sizeof(char *));
	x->sent = xcalloc(env->nrcpts, sizeof(bool));
	x->n = env->nrcpts;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];
		size_t plen = strlen(r->path);
		if (dsn_notify_wants(r->notify, DSN_NOTIFY_SUCCESS) ||
		    plen < 2 || smtp_parse_mailbox(r->path + 1, plen - 2,
		    &a) != 0 || a.domain[0] == '[' ||
		    !config_is_local_domain(cfg, a.domain) ||
		    maildir_local_normalize(a.local, cfg->recipient_delimiter,
		    mailbox, sizeof(mailbox)) != 0 ||
		    maildir_domain_normalize(a.domain, domain,
		    sizeof(domain)) != 0) {
			direct_free(x);
			return NULL;
		}
		x->maildir[i] = r->folder ? xasprintf("%s/%s/%s/.%s",
		    cfg->mail_dir, domain, mailbox, r->folder) :
		    xasprintf("%s/%s/%s", cfg->mail_dir, domain, mailbox);
		x->mailbox[i] = xasprintf("%s@%s", mailbox, domain);
	}
	return x;
}

/* recipient i of a direct delivery is in its Maildir as name */
static void
direct_sent(struct direct *x, struct envelope *env, size_t i,
    const char *name, const char *how)
{
	struct envelope_rcpt *r = &env->rcpts[i];

	free(r->error);
	r->error = xasprintf("250 2.0.0 %s", name);
	r->status = RCPT_DONE;
	x->sent[i] = true;
	log_info("%s: to=%s relay=local maildir=%s delay=0s "
	    "status=sent (%s, %sbefore the 250)", env->id, r->path,
	    x->maildir[i], name, how);
}

/* recipient i could not be delivered before the 250: the queue retries */
static void
direct_queued(const struct direct *x, const struct envelope *env, size_t i,
    const struct tern_err *err)
{
	log_info("%s: to=%s relay=local maildir=%s: not delivered before the "
	    "commit (%d %s %s): queued", env->id, env->rcpts[i].path,
	    x->maildir[i], err->code, err->enh, err->text);
}

static void
direct_deliver_one(struct direct *x, struct envelope *env, size_t i,
    const struct buf *body)
{
	char name[MAILDIR_NAME_MAX + 1];
	struct tern_err err;

	if (deliver_local(x->d->dm, &x->rt->cfg->limits, env->id, i,
	    env->sender, x->maildir[i], x->mailbox[i], body, -1, 0, 0,
	    name, sizeof(name), &err) != 0) {
		/* the queue tries again, and reports if it must */
		direct_queued(x, env, i, &err);
		return;
	}
	direct_sent(x, env, i, name, "");
}

/*
 * A message for several mailboxes (hardlink_deliveries) is written once,
 * into the first one's Maildir, and hard-linked into the others: one
 * write and one file fsync instead of one of each per recipient. One
 * file cannot name each recipient, so it carries no Delivered-To (as
 * Dovecot's LMTP stores a mail with several recipients). Each copy
 * still counts in its owner's quota. What cannot be linked is written
 * as a copy of its own, with its Delivered-To.
 */
static void
direct_deliver_linked(struct direct *x, struct envelope *env,
    const struct buf *body)
{
	const struct config_limits *lim = &x->rt->cfg->limits;
	size_t n = x->n, first = n;
	char (*tags)[ENVELOPE_ID_LEN + 24] = xcalloc(n, sizeof(*tags));
	char (*names)[MAILDIR_NAME_MAX + 1] = xcalloc(n, sizeof(*names));
	char (*roots)[4096] = xcalloc(n, sizeof(*roots));
	char **to = xcalloc(n, sizeof(char *));
	const char **tagp = xcalloc(n, sizeof(char *));
	struct tern_err *errs = xcalloc(n, sizeof(*errs));
	bool *ok = xcalloc(n, sizeof(bool));
	char src[4096 + MAILDIR_NAME_MAX + 8];
	struct iovec iov[2];
	struct buf head;
	uint64_t size;

	buf_init(&head);
	message_append_delivery_fields(&head, env->sender, NULL);
	iov[0].iov_base = head.data;
	iov[0].iov_len = head.len;
	iov[1].iov_base = body->data;
	iov[1].iov_len = body->len;
	size = head.len + body->len;
	for (size_t i = 0; i < n; i++) {
		(void)str_fmt(tags[i], sizeof(tags[i]), "%sR%zu", env->id, i);
		tagp[i] = tags[i];
		quota_root(x->maildir[i], roots[i], sizeof(roots[i]));
		if (quota_check(roots[i], lim->quota_storage,
		    lim->quota_messages, size, &errs[i]) != 0) {
			direct_queued(x, env, i, &errs[i]);
			continue;
		}
		if (first == n) {
			if (deliver_maildir_sync(x->d->dm, x->maildir[i],
			    tags[i], iov, 2, names[i], sizeof(names[i]),
			    &errs[i]) != 0) {
				direct_queued(x, env, i, &errs[i]);
				continue;
			}
			quota_add(roots[i], (int64_t)size, 1);
			direct_sent(x, env, i, names[i], "");
			first = i;
			continue;
		}
		to[i] = x->maildir[i];
	}
	if (first < n && str_fmt(src, sizeof(src), "%s/new/%s",
	    x->maildir[first], names[first]) == 0)
		deliver_maildir_link_all(x->d->dm, src, size, n, to, tagp,
		    names, ok, errs);
	for (size_t i = 0; i < n; i++) {
		if (to[i] == NULL)
			continue;
		if (!ok[i]) {
			log_info("%s: to=%s maildir=%s: not linked (%s): a "
			    "copy of its own", env->id, env->rcpts[i].path,
			    x->maildir[i], errs[i].text);
			direct_deliver_one(x, env, i, body);
			continue;
		}
		quota_add(roots[i], (int64_t)size, 1);
		direct_sent(x, env, i, names[i], "linked, ");
	}
	buf_clear(&head);
	free(tags);
	free(names);
	free(roots);
	free(to);
	free(tagp);
	free(errs);
	free(ok);
}

static void
direct_deliver(void *plan, struct envelope *env, const struct buf *body)
{
	struct direct *x = plan;

	if (x->n > 1 && x->rt->cfg->hardlink_deliveries) {
		direct_deliver_linked(x, env, body);
		return;
	}
	for (size_t i = 0; i < x->n; i++)
		direct_deliver_one(x, env, i, body);
}

static void
direct_done(void *plan, const struct envelope *env, bool all)
{
	struct direct *x = plan;
	struct dispatch *d = x->d;

	for (size_t i = 0; i < x->n; i++) {
		if (!x->sent[i])
			continue;
		d->stats.delivered++;
		metrics_add("tern_deliveries_total",
		    "relay=\"local\",result=\"delivered\"", 1);
		metrics_observe("tern_delivery_delay_seconds",
		    "relay=\"local\"", (double)(dispatch_now() - env->created));
		if (d->on_maildir)
			d->on_maildir(d->on_maildir_arg, x->maildir[i]);
	}
	if (all) {
		d->stats.received++;
		log_info("%s: delivered before the commit: no queue file",
		    env->id);
	}
	direct_free(x);
}

/*
 * Mail that came in from another server and goes out again (an alias
 * to a remote address, a relay route) is ARC-sealed (RFC 8617 5.1) when
 * the config has a key: the copy for the remote hops carries what we
 * found when it came in.
 */
static void
arc_seal_remote(struct job *j)
{
	const struct config *cfg = j->rt->cfg;
	bool remote = false;
	char why[160];

	for (size_t i = 0; i < j->env->nrcpts && !remote; i++)
		remote = j->env->rcpts[i].status == RCPT_PENDING &&
		    j->plans[i].kind == PLAN_REMOTE;
	if (!remote || j->rt->arc == NULL)
		return;
	struct buf *b = xcalloc(1, sizeof(*b));
	buf_init(b);
	buf_append(b, j->body->data, j->body->len);
	int rc = arc_seal(j->rt->arc, b, 0, cfg->authserv_id ?
	    cfg->authserv_id : cfg->hostname, (int64_t)time(NULL), why,
	    sizeof(why));
	if (rc == 1) {
		j->sealed = b;
		log_info("%s: arc sealed d=%s", j->id, cfg->arc->domain);
		return;
	}
	if (rc < 0)
		log_warnx("%s: arc not sealed: %s", j->id, why);
	buf_clear(b);
	free(b);
}

static void
work_deliver(void *arg)
{
	struct job *j = arg;

	arc_seal_remote(j);
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		if (j->env->rcpts[i].status != RCPT_PENDING)
			continue;
		switch (j->plans[i].kind) {
		case PLAN_MAILDIR:
			deliver_one(j, i);
			break;
		case PLAN_REMOTE:
			break;   /* after this phase, on the loop */
		case PLAN_TEMP:
			j->temp = true;
			break;
		case PLAN_NONE:
			break;
		}
	}
}

/* A lazy job with a remote hop: the message read whole first. */
static void
work_whole_deliver(void *arg)
{
	struct job *j = arg;
	uint64_t want = j->env->size;

	buf_reset(j->body);
	buf_reserve(j->body, (size_t)want);
	while (j->body->len < want) {
		ssize_t n = pread(j->body_fd, j->body->data + j->body->len,
		    (size_t)(want - j->body->len), (off_t)(j->body_off +
		    j->body->len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		j->body->len += (size_t)n;
	}
	j->body->data[j->body->len] = '\0';
	if (j->body->len < want) {
		/* its start is gone too: every pending copy waits a turn */
		log_warnx("%s: cannot read the queue file back: %s", j->id,
		    strerror(errno ? errno : EIO));
		buf_reset(j->body);
		for (size_t i = 0; i < j->env->nrcpts; i++)
			if (j->env->rcpts[i].status == RCPT_PENDING)
				j->plans[i].kind = PLAN_TEMP;
	}
	j->lazy = false;
	work_deliver(j);
}

/* --- DECIDE (loop) ---------------------------------------------------- */

static void work_record(void *arg);
static void done_record(void *arg);

void
dispatch_record(struct job *j)
{
	iopool_submit(j->d->pool, work_record, done_record, j);
}

static void
on_remote_done(void *arg, struct smtp_delivery *d)
{
	struct remote_group *g = arg;
	struct job *j = g->j;
	const char *remote = d->remote[0] ? d->remote : NULL;

	for (size_t k = 0; k < g->n; k++) {
		size_t i = g->idx[k];
		struct envelope_rcpt *r = &j->env->rcpts[i];
		struct plan *p = &j->plans[i];
		int code = d->codes[k];
		const char *text = d->texts[k] ? d->texts[k] : "451 4.4.0 no reply";

		/* only a reply of that host names it (RFC 3464 2.3.5) */
		free(p->remote_mta);
		p->remote_mta = remote && d->answered[k] ? xstrdup(remote) :
		    NULL;
		free(r->error);
		r->error = xstrdup(text);
		if (code / 100 == 2) {
			r->status = RCPT_DONE;
			p->delivered = true;
			p->dsn_passed = d->dsn;
			j->changed = true;
			j->d->stats.delivered++;
			log_info("%s: to=%s relay=%s delay=%llds status=sent (%s)",
			    j->id, r->path, remote ? remote : g->d.dest,
			    (long long)(dispatch_now() - j->env->created), text);
		} else if (code / 100 == 5) {
			r->status = RCPT_FAILED;
			p->newly_failed = true;
			j->changed = true;
			j->d->stats.failed++;
			log_info("%s: to=%s relay=%s status=failed (%s)", j->id,
			    r->path, remote ? remote : g->d.dest, text);
		} else {
			j->temp = true;
			log_info("%s: to=%s relay=%s status=deferred (%s)",
			    j->id, r->path, remote ? remote : g->d.dest, text);
		}
	}
	smtp_delivery_clear(&g->d);
	for (size_t k = 0; k < g->n; k++)
		free(g->rcpt_dsn[k]);
	free(g->rcpt_dsn);
	free(g->mail_dsn);
	free(g->idx);
	free(g->paths);
	free(g);
	if (--j->remote_pending == 0)
		dispatch_decide(j);
}

/* The DSN request goes on to a next hop that has DSN (RFC 3461 6.2.1). */
static char *
mail_dsn_params(const struct envelope *env)
{
	if (env->ret == DSN_RET_UNSET && env->envid == NULL)
		return NULL;
	return xasprintf("%s%s%s%s", env->ret ? " RET=" : "",
	    dsn_ret_name(env->ret), env->envid ? " ENVID=" : "",
	    env->envid ? env->envid : "");
}

static char *
rcpt_dsn_params(const struct envelope_rcpt *r)
{
	char notify[40];

	if (r->notify == 0 && r->orcpt == NULL)
		return NULL;
	dsn_notify_format(r->notify, notify, sizeof(notify));
	return xasprintf("%s%s%s%s", r->notify ? " NOTIFY=" : "", notify,
	    r->orcpt ? " ORCPT=" : "", r->orcpt ? r->orcpt : "");
}

/* Groups the remote recipients by next hop and hands them to the client. */
static void
phase_remote(struct job *j)
{
	const struct buf *body = j->sealed ? j->sealed : j->body;
	bool eightbit = message_has_8bit(body->data, body->len);
	bool *taken = xcalloc(j->env->nrcpts, sizeof(bool));

	j->remote_pending = 1;   /* held until every group is out */
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		struct plan *p = &j->plans[i];
		if (taken[i] || j->env->rcpts[i].status != RCPT_PENDING ||
		    p->kind != PLAN_REMOTE)
			continue;
		if (j->env->requiretls && p->hop_kind == SMTP_DEST_MX &&
		    !smtp_client_secure_mx(j->d->client)) {
			/*
			 * RFC 8689 4.2.1 wants the MX found securely: with
			 * neither DNSSEC validation nor MTA-STS, only a
			 * configured relay or route can take such mail.
			 */
			dispatch_fail_rcpt(j, i, 550, "5.7.30", "REQUIRETLS "
			    "support required: the MX of this domain cannot be "
			    "found securely here (no DNSSEC validation, no "
			    "MTA-STS)");
			continue;
		}
		struct remote_group *g = xcalloc(1, sizeof(*g));
		g->j = j;
		g->idx = xcalloc(j->env->nrcpts, sizeof(size_t));
		g->paths = xcalloc(j->env->nrcpts, sizeof(char *));
		g->rcpt_dsn = xcalloc(j->env->nrcpts, sizeof(char *));
		for (size_t k = i; k < j->env->nrcpts; k++) {
			struct plan *q = &j->plans[k];
			if (taken[k] || j->env->rcpts[k].status !=
			    RCPT_PENDING || q->kind != PLAN_REMOTE ||
			    q->hop_kind != p->hop_kind || q->tls != p->tls ||
			    !ascii_strcaseeq(q->hop, p->hop))
				continue;
			taken[k] = true;
			g->idx[g->n] = k;
			g->paths[g->n] = j->env->rcpts[k].path;
			g->rcpt_dsn[g->n] = rcpt_dsn_params(&j->env->rcpts[k]);
			g->n++;
		}
		g->mail_dsn = mail_dsn_params(j->env);
		g->d.mail_dsn = g->mail_dsn;
		g->d.rcpt_dsn = (const char *const *)g->rcpt_dsn;
		g->d.kind = p->hop_kind;
		g->d.tls = p->tls;
		/* RFC 8689: a verified TLS peer, nothing less */
		g->d.requiretls = j->env->requiretls;
		g->d.smtputf8 = j->env->smtputf8;
		if (g->d.requiretls)
			/* an MX only by DANE (its MX answer proven) or an
			 * enforced MTA-STS policy, a named relay by DANE or
			 * its certificate chain */
			g->d.tls = p->hop_kind == SMTP_DEST_MX ? SMTP_TLS_DANE :
			    SMTP_TLS_VERIFY;
		(void)str_copy(g->d.dest, sizeof(g->d.dest), p->hop);
		g->d.id = j->id;
		g->d.sender = j->env->sender;
		g->d.rcpts = (const char *const *)g->paths;
		g->d.nrcpts = g->n;
		g->d.body = body;
		g->d.eightbit = eightbit;
		j->remote_pending++;
		smtp_client_send(j->d->client, &g->d, on_remote_done, g);
	}
	free(taken);
	if (--j->remote_pending == 0)
		dispatch_decide(j);
}

static void
done_deliver(void *arg)
{
	struct job *j = arg;

	if (j->d->on_maildir)
		for (size_t i = 0; i < j->nplans; i++)
			if (j->plans[i].delivered &&
			    j->plans[i].kind == PLAN_MAILDIR)
				j->d->on_maildir(j->d->on_maildir_arg,
				    j->plans[i].maildir);
	phase_remote(j);
}

void
dispatch_set_on_maildir(struct dispatch *d,
    void (*cb)(void *arg, const char *maildir), void *arg)
{
	d->on_maildir = cb;
	d->on_maildir_arg = arg;
}

/* --- RECORD (worker) -------------------------------------------------- */

static void
work_record(void *arg)
{
	struct job *j = arg;
	struct tern_err err;

	if (envelope_pending(j->env) == 0) {
		if (queue_remove_sync(j->d->queue, j->id) != 0)
			log_warn("%s: cannot remove queue file", j->id);
		else
			log_info("%s: removed", j->id);
		j->result = JOB_FINISHED;
		return;
	}
	j->result = JOB_RETRY;   /* something is pending: it failed for now */
	if (j->result == JOB_RETRY && j->env->next_try <= j->now)
		j->env->next_try = dispatch_now() + 60;
	if (j->changed && queue_state_write_sync(j->d->queue, j->env,
	    &err) != 0) {
		/*
		 * Recipients delivered now may be delivered again after a
		 * restart (at-least-once); nothing is lost.
		 */
		log_warnx("%s: cannot record delivery state: %s", j->id,
		    err.text);
		if (j->result != JOB_RETRY) {
			j->env->next_try = dispatch_now() + 60;
			j->result = JOB_RETRY;
		}
	}
}

static void
done_record(void *arg)
{
	job_end(arg);
}

/* --- job life --------------------------------------------------------- */

/* A big message's turn to be read whole: the first one waiting. */
static void
big_wake(struct dispatch *d)
{
	if (d->nbig_wait == 0 || d->big_loaded >= DISPATCH_BIG_MAX)
		return;
	struct job *j = d->big_wait[0];
	memmove(d->big_wait, d->big_wait + 1, --d->nbig_wait *
	    sizeof(*d->big_wait));
	big_start(j);
}

static void
job_end(struct job *j)
{
	struct dispatch *d = j->d;
	struct slot *s = dispatch_slot_get(d, j->key);
	int64_t next;

	d->inflight--;
	TERN_ASSERT(s != NULL);
	s->busy = false;
	if (j->body_fd >= 0)
		close(j->body_fd);
	if (j->big) {
		d->big_loaded--;
		big_wake(d);
	}
	switch (j->result) {
	case JOB_FINISHED:
		dispatch_slot_free(d, j->key);
		break;
	case JOB_RETRY:
	case JOB_NOT_DUE:
		next = j->env && j->env->next_try > 0 ? j->env->next_try :
		    dispatch_now() + 60;
		s->due = next;
		scheduler_add(&d->sched, j->key, next);
		if (j->result == JOB_RETRY) {
			d->stats.deferred++;
			log_info("%s: deferred, next attempt in %llds", j->id,
			    (long long)(next - dispatch_now()));
		}
		break;
	case JOB_HELD:
		s->held = true;
		log_info("%s: on hold", j->id);
		break;
	case JOB_ERROR:
		s->due = dispatch_now() + 60;
		scheduler_add(&d->sched, j->key, s->due);
		break;
	}
	if (j->plans) {
		for (size_t i = 0; i < j->nplans; i++) {
			free(j->plans[i].maildir);
			free(j->plans[i].mailbox);
			free(j->plans[i].domain);
			free(j->plans[i].hop);
			free(j->plans[i].remote_mta);
		}
		free(j->plans);
	}
	dispatch_free_env_body(&j->env, &j->body);
	if (j->sealed) {
		buf_clear(j->sealed);
		free(j->sealed);
	}
	runtime_unref(j->rt);
	free(j);
	dispatch_pump(d);
}

static void
job_start(struct dispatch *d, uint64_t key)
{
	struct slot *s = dispatch_slot_get(d, key);
	struct job *j;

	if (s == NULL || s->busy || s->held)
		return;
	j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->body_fd = -1;
	j->rt = runtime_ref(*d->current);
	j->key = key;
	(void)str_copy(j->id, sizeof(j->id), s->id);
	j->env = s->env;       /* the job takes what is in memory */
	j->body = s->body;
	s->env = NULL;
	s->body = NULL;
	j->now = dispatch_now();
	j->recovered = s->recovered;
	s->recovered = false;
	j->forced = s->forced;
	s->forced = false;
	s->busy = true;
	d->inflight++;
	if (j->env == NULL)
		iopool_submit(d->pool, work_load, done_load, j);
	else
		phase_route(j);
}

static void
dispatch_arm(struct dispatch *d)
{
	int64_t due, now = dispatch_now();

	if (d->stopped || !scheduler_next(&d->sched, &due))
		return;
	if (d->inflight >= (*d->current)->cfg->max_deliveries)
		return; /* job_end pumps again */
	struct timeval tv = { due > now ? (time_t)(due - now) : 0, 0 };
	evtimer_add(d->timer, &tv);
}

void
dispatch_pump(struct dispatch *d)
{
	uint64_t key;
	int64_t now = dispatch_now(), due;

	while (!d->stopped &&
	    d->inflight < (*d->current)->cfg->max_deliveries &&
	    scheduler_pop_due(&d->sched, now, &key, &due)) {
		struct slot *s = dispatch_slot_get(d, key);
		if (s == NULL || s->due != due)
			continue;   /* stale: freed, or flushed/rescheduled */
		job_start(d, key);
	}
	dispatch_arm(d);
}

static void
dispatch_on_timer(evutil_socket_t fd, short what, void *arg)
{
	dispatch_pump(arg);
}

static void
dispatch_on_commit(void *arg, struct envelope *env, struct buf *body)
{
	struct dispatch *d = arg;
	uint64_t key = dispatch_slot_new(d, env->id);
	struct slot *s = dispatch_slot_get(d, key);

	s->env = env;
	s->body = body;
	d->stats.received++;
	if (body != NULL && !d->stopped &&
	    d->inflight < (*d->current)->cfg->max_deliveries) {
		job_start(d, key);
		return;
	}
	/* Busy, or too big to be handed on in memory: read it back from
	 * the spool when its turn comes. */
	dispatch_free_env_body(&s->env, &s->body);
	s->due = dispatch_now();
	scheduler_add(&d->sched, key, s->due);
	dispatch_arm(d);
}

static void
on_scanned(void *arg, const char *id)
{
	struct dispatch *d = arg;
	uint64_t key = dispatch_slot_new(d, id);

	struct slot *s = dispatch_slot_get(d, key);
	s->recovered = true;
	s->due = dispatch_now();
	scheduler_add(&d->sched, key, s->due);
}

void
dispatch_load_queue(struct dispatch *d)
{
	size_t n = queue_scan(d->queue, on_scanned, d);

	if (n > 0)
		log_info("queue: %zu message(s) found in the spool", n);
	dispatch_pump(d);
	/* and what tern-sendmail left while ternd was down; then every 10s */
	dispatch_pickup(d, NULL, NULL);
	struct timeval tv = { 10, 0 };
	d->pickup_timer = event_new(d->base, -1, EV_PERSIST, dispatch_on_pickup_timer,
	    d);
	evtimer_add(d->pickup_timer, &tv);
}

struct dispatch *
dispatch_new(struct event_base *base, struct runtime **current,
    struct queue *q, struct deliver_maildir *dm, struct iopool *pool,
    struct smtp_client *client)
{
	struct dispatch *d = xcalloc(1, sizeof(*d));

	d->client = client;
	d->base = base;
	d->current = current;
	d->queue = q;
	d->dm = dm;
	d->pool = pool;
	scheduler_init(&d->sched);
	d->timer = evtimer_new(base, dispatch_on_timer, d);
	TERN_ASSERT(d->timer != NULL);
	queue_set_on_commit(q, dispatch_on_commit, d);
	queue_set_direct(q, &(struct queue_direct){ direct_plan,
	    direct_deliver, direct_done, d });
	return d;
}

void
dispatch_stop(struct dispatch *d)
{
	d->stopped = true;
	evtimer_del(d->timer);
	if (d->pickup_timer)
		evtimer_del(d->pickup_timer);
	smtp_client_close_idle(d->client);
}

size_t
dispatch_inflight(const struct dispatch *d)
{
	return d->inflight;
}

void
dispatch_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	for (uint32_t i = 0; i < d->nslots; i++)
		if (d->slots[i].used)
			dispatch_free_env_body(&d->slots[i].env, &d->slots[i].body);
	free(d->slots);
	free(d->big_wait);
	free(d->free_list);
	scheduler_clear(&d->sched);
	event_free(d->timer);
	if (d->pickup_timer)
		event_free(d->pickup_timer);
	free(d);
}
