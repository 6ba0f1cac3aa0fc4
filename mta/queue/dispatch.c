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

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "mail/bounce.h"
#include "base/buf.h"
#include "lua/config.h"
#include "store/deliver_maildir.h"
#include "mail/envelope.h"
#include "lua/hooks.h"
#include "base/iopool.h"
#include "base/log.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "queue/queue.h"
#include "runtime.h"
#include "queue/scheduler.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_parse.h"
#include "base/util.h"

struct slot {
	bool used;
	bool busy;               /* a job is running for it */
	bool recovered;          /* found at start-up, not yet attempted */
	bool held;               /* ternctl hold: not scheduled */
	bool forced;             /* flush/release: now, whatever next_try says */
	int64_t due;             /* when it is scheduled (stale entries skip) */
	uint32_t gen;
	char id[ENVELOPE_ID_LEN + 1];
	struct envelope *env;    /* NULL when not in memory */
	struct buf *body;
};

struct dispatch {
	struct event_base *base;
	struct runtime **current;
	struct queue *queue;
	struct deliver_maildir *dm;
	struct iopool *pool;
	struct smtp_client *client;
	struct scheduler sched;
	struct event *timer;
	struct slot *slots;
	uint32_t nslots, cap;
	uint32_t *free_list;
	uint32_t nfree;
	size_t inflight;
	bool stopped;
	struct dispatch_stats stats;
	bool pickup_running;
	struct event *pickup_timer;
};

enum job_result {
	JOB_FINISHED,            /* no recipient pending: removed */
	JOB_RETRY,               /* temporary failures: try again later */
	JOB_NOT_DUE,             /* loaded from disk, next try is later */
	JOB_ERROR,               /* could not read or record: try later */
	JOB_HELD,                /* loaded from disk, on hold */
};

enum plan_kind { PLAN_NONE, PLAN_MAILDIR, PLAN_REMOTE, PLAN_TEMP };

struct plan {
	enum plan_kind kind;
	char *maildir;           /* PLAN_MAILDIR: where */
	char *mailbox;           /* "local@domain" for Delivered-To and logs */
	char *domain;
	enum smtp_dest_kind hop_kind; /* PLAN_REMOTE: where to */
	char *hop;
	enum smtp_tls_policy tls;
	char *remote_mta;        /* who answered, for the bounce */
	bool delivered;          /* set by DELIVER */
	bool newly_failed;       /* failed in this attempt: to bounce */
};

struct job {
	struct dispatch *d;
	struct runtime *rt;      /* referenced for the job's life */
	uint64_t key;
	char id[ENVELOPE_ID_LEN + 1];
	struct envelope *env;
	struct buf *body;
	int64_t now;
	bool recovered;
	bool forced;             /* ternctl flush/release */
	struct plan *plans;
	size_t nplans;
	bool temp;               /* some recipient failed temporarily */
	bool changed;            /* state to record */
	size_t remote_pending;   /* smtp_client deliveries out */
	enum job_result result;
};

/* One message to one next hop. */
struct remote_group {
	struct job *j;
	struct smtp_delivery d;
	size_t *idx;             /* recipient indices */
	char **paths;
	size_t n;
};

static uint64_t
make_key(uint32_t slot, uint32_t gen)
{
	return ((uint64_t)slot << 32) | gen;
}

static struct slot *
slot_get(struct dispatch *d, uint64_t key)
{
	uint32_t idx = (uint32_t)(key >> 32);

	if (idx >= d->nslots || !d->slots[idx].used ||
	    d->slots[idx].gen != (uint32_t)key)
		return NULL;
	return &d->slots[idx];
}

static uint64_t
slot_new(struct dispatch *d, const char *id)
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
	return make_key(idx, gen);
}

static void
free_env_body(struct envelope **env, struct buf **body)
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

static void
slot_free(struct dispatch *d, uint64_t key)
{
	struct slot *s = slot_get(d, key);

	if (s == NULL)
		return;
	free_env_body(&s->env, &s->body);
	s->used = false;
	d->free_list[d->nfree++] = (uint32_t)(key >> 32);
}

static int64_t
now_sec(void)
{
	return (int64_t)time(NULL);
}

static void dispatch_pump(struct dispatch *d);
static void job_end(struct job *j);
static void on_pickup_timer(evutil_socket_t fd, short what, void *arg);

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
	if (queue_load_sync(j->d->queue, j->id, j->env, j->body, &err) != 0) {
		if (!err.temp) {
			log_warnx("%s: %s; moved to spool/corrupt", j->id,
			    err.text);
			(void)queue_move_aside_sync(j->d->queue, j->id);
			j->result = JOB_FINISHED;
		} else {
			log_warnx("%s: %s", j->id, err.text);
			j->result = JOB_ERROR;
		}
		free_env_body(&j->env, &j->body);
		return;
	}
	if (j->env->held)
		j->result = JOB_HELD;
	else if (j->env->next_try > j->now && !j->forced)
		j->result = JOB_NOT_DUE;
}

/* --- ROUTE (loop) ----------------------------------------------------- */

static void
fill_info(const struct job *j, size_t i, struct hook_msg_info *m,
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

static void
fail_rcpt(struct job *j, size_t i, int code, const char *enh, const char *text)
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
			envelope_add_rcpt(j->env, path);
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
		fail_rcpt(j, i, 550, "5.1.3", "bad recipient address in queue");
		return;
	}
	bool local = a.domain[0] != '[' && config_is_local_domain(cfg,
	    a.domain);
	if (local && (maildir_local_normalize(a.local,
	    cfg->recipient_delimiter, mailbox, sizeof(mailbox)) != 0 ||
	    maildir_domain_normalize(a.domain, domain, sizeof(domain)) != 0)) {
		fail_rcpt(j, i, 553, "5.1.3", "mailbox name not allowed");
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
			p->hop_kind = SMTP_DEST_MX;
			p->hop = xstrdup(a.domain);
		}
	}
	if (hooks_has(j->rt->hooks, HOOK_ROUTE)) {
		fill_info(j, i, &m, rcpt, sizeof(rcpt), sender, sizeof(sender));
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
			fail_rcpt(j, i, route.v.code, route.v.enh, route.v.text);
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
static void done_deliver(void *arg);

static void
phase_route(struct job *j)
{
	ensure_plans(j);
	/* nrcpts may grow as aliases expand; new ones are routed too */
	for (size_t i = 0; i < j->env->nrcpts; i++)
		if (j->env->rcpts[i].status == RCPT_PENDING)
			route_rcpt(j, i);
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

static void
deliver_one(struct job *j, size_t i)
{
	struct envelope_rcpt *r = &j->env->rcpts[i];
	struct plan *p = &j->plans[i];
	char name[MAILDIR_NAME_MAX + 1], tag[ENVELOPE_ID_LEN + 24];
	struct tern_err err;
	struct iovec iov[2];
	struct buf head;
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
	buf_init(&head);
	message_append_delivery_fields(&head, j->env->sender, p->mailbox);
	iov[0].iov_base = head.data;
	iov[0].iov_len = head.len;
	iov[1].iov_base = j->body->data;
	iov[1].iov_len = j->body->len;
	rc = deliver_maildir_sync(j->d->dm, p->maildir, tag, iov, 2, name,
	    sizeof(name), &err);
	buf_clear(&head);
	free(r->error);
	if (rc == 0) {
		r->error = xasprintf("250 2.0.0 %s", name);
		r->status = RCPT_DONE;
		p->delivered = true;
		j->changed = true;
		log_info("%s: to=%s relay=local maildir=%s delay=%llds "
		    "status=sent (%s)", j->id, r->path, p->maildir,
		    (long long)(now_sec() - j->env->created), name);
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

static void
work_deliver(void *arg)
{
	struct job *j = arg;

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

/* --- DECIDE (loop) ---------------------------------------------------- */

static void work_record(void *arg);
static void done_record(void *arg);

static void
phase_record(struct job *j)
{
	iopool_submit(j->d->pool, work_record, done_record, j);
}

static void
on_bounce_committed(void *arg, const char *id, const struct tern_err *err)
{
	struct job *j = arg;

	if (err) {
		/*
		 * Not recorded as failed: the recipients stay pending and
		 * the next attempt bounces them again.
		 */
		log_warnx("%s: cannot queue the report: %s", j->id, err->text);
		j->env->warned = false;
		for (size_t i = 0; i < j->env->nrcpts; i++)
			if (j->plans[i].newly_failed) {
				j->env->rcpts[i].status = RCPT_PENDING;
				j->temp = true;
			}
		if (j->env->next_try <= j->now)
			j->env->next_try = now_sec() + 60;
	} else {
		j->d->stats.reports++;
		log_info("%s: report to the sender queued as %s", j->id, id);
	}
	phase_record(j);
}

/*
 * Builds a report for the sender: BOUNCE_FAILED for the recipients that
 * failed in this attempt, BOUNCE_DELAYED for those still pending. The
 * report is committed before the original's state is recorded.
 */
static bool
send_report(struct job *j, enum bounce_action action)
{
	struct dispatch *d = j->d;
	const struct config *cfg = j->rt->cfg;
	struct bounce_rcpt *br;
	struct bounce_info bi;
	struct envelope *env;
	struct buf *body;
	char date[64], arrival[64], boundary[80], msgid[160], enh[12];
	size_t n = 0;
	struct tm tm;
	time_t t;

	br = xcalloc(j->env->nrcpts, sizeof(*br));
	char **addrs = xcalloc(j->env->nrcpts, sizeof(char *));
	char **status = xcalloc(j->env->nrcpts, sizeof(char *));
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		if (action == BOUNCE_FAILED ? !j->plans[i].newly_failed :
		    (j->env->rcpts[i].status != RCPT_PENDING ||
		    j->plans[i].kind == PLAN_NONE))
			continue;
		const char *path = j->env->rcpts[i].path;
		const char *e = j->env->rcpts[i].error ?
		    j->env->rcpts[i].error : action == BOUNCE_FAILED ?
		    "550 5.0.0 failed" : "451 4.0.0 not delivered yet";
		addrs[n] = xstrndup(path + 1, strlen(path) - 2);
		/* "550 5.1.1 text" -> "5.1.1" */
		char want = action == BOUNCE_FAILED ? '5' : '4';
		if (sscanf(e, "%*d %11s", enh) != 1 || enh[0] != want)
			(void)str_copy(enh, sizeof(enh), action ==
			    BOUNCE_FAILED ? "5.0.0" : "4.0.0");
		status[n] = xstrdup(enh);
		br[n].addr = addrs[n];
		br[n].status = status[n];
		br[n].diagnostic = e;
		br[n].remote_mta = NULL;
		if (j->plans[i].remote_mta) {
			/* "host[ip]:port" -> "host" */
			char *h = j->plans[i].remote_mta;
			char *b = strchr(h, '[');
			if (b && b > h)
				*b = '\0';
			br[n].remote_mta = h;
		}
		n++;
	}
	env = xcalloc(1, sizeof(*env));
	envelope_init(env);
	queue_new_id(d->queue, env->id);
	t = time(NULL);
	localtime_r(&t, &tm);
	message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
	t = (time_t)j->env->created;
	localtime_r(&t, &tm);
	message_format_date(arrival, sizeof(arrival), &tm, tm.tm_gmtoff);
	(void)snprintf(boundary, sizeof(boundary), "%s/%s", env->id,
	    cfg->hostname);
	(void)snprintf(msgid, sizeof(msgid), "<%s.%s@%s>", env->id,
	    action == BOUNCE_FAILED ? "bounce" : "delay", cfg->hostname);
	char *sender = xstrndup(j->env->sender + 1, strlen(j->env->sender) - 2);
	bi.action = action;
	bi.reporting_mta = cfg->hostname;
	bi.queue_id = j->id;
	bi.sender = sender;
	bi.arrival_date = arrival;
	bi.date = date;
	bi.boundary = boundary;
	bi.message_id = msgid;
	bi.rcpts = br;
	bi.nrcpts = n;
	bi.orig = j->body ? j->body->data : "";
	bi.orig_len = j->body ? j->body->len : 0;
	body = xcalloc(1, sizeof(*body));
	buf_init(body);
	bounce_build(body, &bi);
	env->created = now_sec();
	env->client = xstrdup("127.0.0.1");
	env->helo = xstrdup(cfg->hostname);
	env->protocol = xstrdup("local");
	env->sender = xstrdup("<>");
	env->body = xstrdup("7BIT");
	envelope_add_rcpt(env, j->env->sender);
	for (size_t i = 0; i < n; i++) {
		free(addrs[i]);
		free(status[i]);
	}
	free(addrs);
	free(status);
	free(br);
	free(sender);
	(void)queue_commit(d->queue, env, body, on_bounce_committed, j);
	return true;
}

static void
phase_decide(struct job *j)
{
	struct hooks *hooks = j->rt->hooks;
	struct hook_msg_info m;
	char rcpt[600], sender[600];
	bool any_failed = false;
	int64_t delay = 0;
	bool bounce = false;

	for (size_t i = 0; i < j->env->nrcpts; i++) {
		if (j->plans[i].delivered && j->plans[i].kind == PLAN_MAILDIR)
			j->d->stats.delivered++;
		if (j->plans[i].delivered && hooks_has(hooks,
		    HOOK_DELIVERED)) {
			fill_info(j, i, &m, rcpt, sizeof(rcpt), sender,
			    sizeof(sender));
			hooks_delivered(hooks, &m);
		}
	}
	if (j->temp) {
		size_t first = 0;
		while (first < j->env->nrcpts &&
		    !(j->env->rcpts[first].status == RCPT_PENDING &&
		    j->plans[first].kind != PLAN_NONE))
			first++;
		j->env->attempts++;
		j->changed = true;
		if (first < j->env->nrcpts) {
			fill_info(j, first, &m, rcpt, sizeof(rcpt), sender,
			    sizeof(sender));
			free(j->env->last_error);
			j->env->last_error = xstrdup(m.error);
		}
		if (first < j->env->nrcpts &&
		    hooks_retry(hooks, &m, &delay, &bounce)) {
			if (bounce) {
				for (size_t i = 0; i < j->env->nrcpts; i++)
					if (j->env->rcpts[i].status ==
					    RCPT_PENDING &&
					    j->plans[i].kind != PLAN_NONE)
						fail_rcpt(j, i, 550, "5.4.7",
						    j->env->rcpts[i].error ?
						    j->env->rcpts[i].error :
						    "delivery time expired");
				j->temp = false;
			}
		} else
			delay = scheduler_default_delay(j->env->attempts);
		if (j->temp)
			j->env->next_try = now_sec() + delay;
	}
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		if (!j->plans[i].newly_failed)
			continue;
		any_failed = true;
		if (hooks_has(hooks, HOOK_BOUNCED)) {
			fill_info(j, i, &m, rcpt, sizeof(rcpt), sender,
			    sizeof(sender));
			hooks_bounced(hooks, &m);
		}
	}
	bool null_sender = strcmp(j->env->sender, "<>") == 0;
	if (any_failed) {
		if (null_sender) {
			/* Never bounce a bounce. */
			log_info("%s: failed recipients of a <> message: "
			    "no bounce sent", j->id);
		} else if (send_report(j, BOUNCE_FAILED))
			return; /* on_bounce_committed records */
	}
	unsigned warn_after = j->rt->cfg->delay_warning;
	if (j->temp && !j->env->warned && warn_after > 0 && !null_sender &&
	    j->now - j->env->created >= (int64_t)warn_after) {
		j->env->warned = true;
		j->changed = true;
		log_info("%s: delayed for %llds: warning the sender", j->id,
		    (long long)(j->now - j->env->created));
		if (send_report(j, BOUNCE_DELAYED))
			return;
	}
	phase_record(j);
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

		free(p->remote_mta);
		p->remote_mta = remote ? xstrdup(remote) : NULL;
		free(r->error);
		r->error = xstrdup(text);
		if (code / 100 == 2) {
			r->status = RCPT_DONE;
			p->delivered = true;
			j->changed = true;
			j->d->stats.delivered++;
			log_info("%s: to=%s relay=%s delay=%llds status=sent (%s)",
			    j->id, r->path, remote ? remote : g->d.dest,
			    (long long)(now_sec() - j->env->created), text);
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
	free(g->idx);
	free(g->paths);
	free(g);
	if (--j->remote_pending == 0)
		phase_decide(j);
}

/* Groups the remote recipients by next hop and hands them to the client. */
static void
phase_remote(struct job *j)
{
	bool eightbit = message_has_8bit(j->body->data, j->body->len);
	bool *taken = xcalloc(j->env->nrcpts, sizeof(bool));

	j->remote_pending = 1;   /* held until every group is out */
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		struct plan *p = &j->plans[i];
		if (taken[i] || j->env->rcpts[i].status != RCPT_PENDING ||
		    p->kind != PLAN_REMOTE)
			continue;
		struct remote_group *g = xcalloc(1, sizeof(*g));
		g->j = j;
		g->idx = xcalloc(j->env->nrcpts, sizeof(size_t));
		g->paths = xcalloc(j->env->nrcpts, sizeof(char *));
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
			g->n++;
		}
		g->d.kind = p->hop_kind;
		g->d.tls = p->tls;
		(void)str_copy(g->d.dest, sizeof(g->d.dest), p->hop);
		g->d.id = j->id;
		g->d.sender = j->env->sender;
		g->d.rcpts = (const char *const *)g->paths;
		g->d.nrcpts = g->n;
		g->d.body = j->body;
		g->d.eightbit = eightbit;
		j->remote_pending++;
		smtp_client_send(j->d->client, &g->d, on_remote_done, g);
	}
	free(taken);
	if (--j->remote_pending == 0)
		phase_decide(j);
}

static void
done_deliver(void *arg)
{
	phase_remote(arg);
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
		j->env->next_try = now_sec() + 60;
	if (j->changed && queue_state_write_sync(j->d->queue, j->env,
	    &err) != 0) {
		/*
		 * Recipients delivered now may be delivered again after a
		 * restart (at-least-once); nothing is lost.
		 */
		log_warnx("%s: cannot record delivery state: %s", j->id,
		    err.text);
		if (j->result != JOB_RETRY) {
			j->env->next_try = now_sec() + 60;
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

static void
job_end(struct job *j)
{
	struct dispatch *d = j->d;
	struct slot *s = slot_get(d, j->key);
	int64_t next;

	d->inflight--;
	TERN_ASSERT(s != NULL);
	s->busy = false;
	switch (j->result) {
	case JOB_FINISHED:
		slot_free(d, j->key);
		break;
	case JOB_RETRY:
	case JOB_NOT_DUE:
		next = j->env && j->env->next_try > 0 ? j->env->next_try :
		    now_sec() + 60;
		s->due = next;
		scheduler_add(&d->sched, j->key, next);
		if (j->result == JOB_RETRY) {
			d->stats.deferred++;
			log_info("%s: deferred, next attempt in %llds", j->id,
			    (long long)(next - now_sec()));
		}
		break;
	case JOB_HELD:
		s->held = true;
		log_info("%s: on hold", j->id);
		break;
	case JOB_ERROR:
		s->due = now_sec() + 60;
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
	free_env_body(&j->env, &j->body);
	runtime_unref(j->rt);
	free(j);
	dispatch_pump(d);
}

static void
job_start(struct dispatch *d, uint64_t key)
{
	struct slot *s = slot_get(d, key);
	struct job *j;

	if (s == NULL || s->busy || s->held)
		return;
	j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->rt = runtime_ref(*d->current);
	j->key = key;
	(void)str_copy(j->id, sizeof(j->id), s->id);
	j->env = s->env;       /* the job takes what is in memory */
	j->body = s->body;
	s->env = NULL;
	s->body = NULL;
	j->now = now_sec();
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
	int64_t due, now = now_sec();

	if (d->stopped || !scheduler_next(&d->sched, &due))
		return;
	if (d->inflight >= (*d->current)->cfg->max_deliveries)
		return; /* job_end pumps again */
	struct timeval tv = { due > now ? (time_t)(due - now) : 0, 0 };
	evtimer_add(d->timer, &tv);
}

static void
dispatch_pump(struct dispatch *d)
{
	uint64_t key;
	int64_t now = now_sec(), due;

	while (!d->stopped &&
	    d->inflight < (*d->current)->cfg->max_deliveries &&
	    scheduler_pop_due(&d->sched, now, &key, &due)) {
		struct slot *s = slot_get(d, key);
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
	uint64_t key = slot_new(d, env->id);
	struct slot *s = slot_get(d, key);

	s->env = env;
	s->body = body;
	d->stats.received++;
	if (!d->stopped &&
	    d->inflight < (*d->current)->cfg->max_deliveries) {
		job_start(d, key);
		return;
	}
	/* Busy: read it back from the spool when its turn comes. */
	free_env_body(&s->env, &s->body);
	s->due = now_sec();
	scheduler_add(&d->sched, key, s->due);
	dispatch_arm(d);
}

static void
on_scanned(void *arg, const char *id)
{
	struct dispatch *d = arg;
	uint64_t key = slot_new(d, id);

	struct slot *s = slot_get(d, key);
	s->recovered = true;
	s->due = now_sec();
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
	d->pickup_timer = event_new(d->base, -1, EV_PERSIST, on_pickup_timer,
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
			free_env_body(&d->slots[i].env, &d->slots[i].body);
	free(d->slots);
	free(d->free_list);
	scheduler_clear(&d->sched);
	event_free(d->timer);
	if (d->pickup_timer)
		event_free(d->pickup_timer);
	free(d);
}

/* --- for ternctl ------------------------------------------------------ */

void
dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *st)
{
	*st = d->stats;
	st->queued = 0;
	st->held = 0;
	for (uint32_t i = 0; i < d->nslots; i++)
		if (d->slots[i].used) {
			st->queued++;
			if (d->slots[i].held)
				st->held++;
		}
	st->inflight = d->inflight;
}

static struct slot *
slot_by_id(struct dispatch *d, const char *id, uint64_t *key)
{
	for (uint32_t i = 0; i < d->nslots; i++)
		if (d->slots[i].used && strcmp(d->slots[i].id, id) == 0) {
			*key = make_key(i, d->slots[i].gen);
			return &d->slots[i];
		}
	return NULL;
}

struct ctl_job {
	struct dispatch *d;
	char id[ENVELOPE_ID_LEN + 1];
	uint64_t key;
	bool json, hold, ok;
	struct buf text;
	dispatch_answer cb;
	void *arg;
};

static struct ctl_job *
ctl_new(struct dispatch *d, const char *id, dispatch_answer cb, void *arg)
{
	struct ctl_job *c = xcalloc(1, sizeof(*c));

	c->d = d;
	if (id)
		(void)str_copy(c->id, sizeof(c->id), id);
	c->cb = cb;
	c->arg = arg;
	buf_init(&c->text);
	return c;
}

static void
ctl_answer(struct ctl_job *c)
{
	char *text = buf_steal(&c->text, NULL);

	c->cb(c->arg, c->ok, text);
	free(c);
}

static void
json_str(struct buf *b, const char *s)
{
	buf_append_char(b, '"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			buf_printf(b, "\\%c", ch);
		else if (ch < 32 || ch >= 127)
			buf_printf(b, "\\u%04x", ch);
		else
			buf_append_char(b, (char)ch);
	}
	buf_append_char(b, '"');
}

static const char *
status_name(enum rcpt_status st)
{
	return st == RCPT_DONE ? "done" : st == RCPT_FAILED ? "failed" :
	    "pending";
}

static void
format_age(char *out, size_t sz, int64_t secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		(void)snprintf(out, sz, "%llds", (long long)secs);
	else if (secs < 7200)
		(void)snprintf(out, sz, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		(void)snprintf(out, sz, "%lldh%02lldm", (long long)secs / 3600,
		    (long long)secs % 3600 / 60);
	else
		(void)snprintf(out, sz, "%lldd%02lldh", (long long)secs / 86400,
		    (long long)secs % 86400 / 3600);
}

static void
list_one(void *arg, const char *id)
{
	struct ctl_job *c = arg;
	struct envelope env;
	struct tern_err err;
	int64_t now = now_sec();
	char age[32], next[32];

	envelope_init(&env);
	if (queue_load_envelope_sync(c->d->queue, id, &env, &err) != 0) {
		envelope_clear(&env);
		return;
	}
	format_age(age, sizeof(age), now - env.created);
	format_age(next, sizeof(next), env.next_try - now);
	if (c->json) {
		if (c->text.len > 2)
			buf_append_str(&c->text, ",\n");
		buf_append_str(&c->text, " {\"id\": ");
		json_str(&c->text, env.id);
		buf_printf(&c->text, ", \"created\": %lld, \"age\": %lld, "
		    "\"size\": %llu, \"from\": ", (long long)env.created,
		    (long long)(now - env.created),
		    (unsigned long long)env.size);
		json_str(&c->text, env.sender);
		buf_printf(&c->text, ", \"attempts\": %u, \"next_try\": %lld, "
		    "\"held\": %s, \"rcpts\": [", env.attempts,
		    (long long)env.next_try, env.held ? "true" : "false");
		for (size_t i = 0; i < env.nrcpts; i++) {
			buf_append_str(&c->text, i ? ", {\"to\": " : "{\"to\": ");
			json_str(&c->text, env.rcpts[i].path);
			buf_append_str(&c->text, ", \"status\": ");
			json_str(&c->text, status_name(env.rcpts[i].status));
			if (env.rcpts[i].error) {
				buf_append_str(&c->text, ", \"last\": ");
				json_str(&c->text, env.rcpts[i].error);
			}
			buf_append_char(&c->text, '}');
		}
		buf_append_str(&c->text, "]}");
	} else {
		buf_printf(&c->text, "%s  %6s  %8llu  %s%s\n", env.id, age,
		    (unsigned long long)env.size, env.sender,
		    env.held ? "  (held)" : "");
		for (size_t i = 0; i < env.nrcpts; i++) {
			const struct envelope_rcpt *r = &env.rcpts[i];
			buf_printf(&c->text, "    %-40s %s", r->path,
			    status_name(r->status));
			if (r->status == RCPT_PENDING && env.attempts > 0)
				buf_printf(&c->text, "  attempts=%u next=%s",
				    env.attempts, env.next_try > now ? next :
				    "now");
			if (r->error && r->status != RCPT_DONE)
				buf_printf(&c->text, "  last=%s", r->error);
			buf_append_char(&c->text, '\n');
		}
	}
	envelope_clear(&env);
}

static void
list_work(void *arg)
{
	struct ctl_job *c = arg;

	if (c->json)
		buf_append_str(&c->text, "[\n");
	size_t n = queue_list_sync(c->d->queue, list_one, c);
	if (c->json)
		buf_append_str(&c->text, "\n]\n");
	else if (n == 0)
		buf_append_str(&c->text, "the queue is empty\n");
	else
		buf_printf(&c->text, "-- %zu message(s)\n", n);
	c->ok = true;
}

static void
ctl_done(void *arg)
{
	ctl_answer(arg);
}

void
dispatch_list(struct dispatch *d, bool json, dispatch_answer cb, void *arg)
{
	struct ctl_job *c = ctl_new(d, NULL, cb, arg);

	c->json = json;
	iopool_submit(d->pool, list_work, ctl_done, c);
}

static void
show_work(void *arg)
{
	struct ctl_job *c = arg;
	struct envelope env;
	struct buf body;
	struct tern_err err;

	envelope_init(&env);
	buf_init(&body);
	if (queue_load_sync(c->d->queue, c->id, &env, &body, &err) != 0) {
		buf_printf(&c->text, "%s: %s", c->id, err.text);
	} else {
		envelope_serialize(&env, &c->text);
		envelope_state_serialize(&env, &c->text);
		buf_append_str(&c->text, "-- header section:\n");
		buf_append(&c->text, body.data,
		    message_header_len(body.data, body.len));
		c->ok = true;
	}
	envelope_clear(&env);
	buf_clear(&body);
}

static bool
id_ok(const char *id)
{
	if (strlen(id) != ENVELOPE_ID_LEN)
		return false;
	for (; *id; id++)
		if (!((*id >= '0' && *id <= '9') || (*id >= 'a' && *id <= 'f')))
			return false;
	return true;
}

void
dispatch_show(struct dispatch *d, const char *id, dispatch_answer cb,
    void *arg)
{
	if (!id_ok(id)) {
		cb(arg, false, xstrdup("not a queue id"));
		return;
	}
	iopool_submit(d->pool, show_work, ctl_done, ctl_new(d, id, cb, arg));
}

void
dispatch_flush(struct dispatch *d, const char *id, dispatch_answer cb,
    void *arg)
{
	int64_t now = now_sec();
	size_t n = 0;

	for (uint32_t i = 0; i < d->nslots; i++) {
		struct slot *s = &d->slots[i];
		if (!s->used || s->busy || s->held || (id && strcmp(s->id, id)))
			continue;
		if (s->due > now) {
			s->due = now;
			scheduler_add(&d->sched, make_key(i, s->gen), now);
		}
		s->forced = true;
		n++;
	}
	if (id && n == 0) {
		uint64_t key;
		struct slot *s = slot_by_id(d, id, &key);
		cb(arg, false, xstrdup(s == NULL ? "no such message" : s->held ?
		    "the message is on hold (ternctl release first)" :
		    "the message is being delivered now"));
		return;
	}
	dispatch_pump(d);
	cb(arg, true, xasprintf("%zu message(s) scheduled now\n", n));
}

static void
remove_work(void *arg)
{
	struct ctl_job *c = arg;

	c->ok = queue_remove_sync(c->d->queue, c->id) == 0;
	if (c->ok)
		buf_printf(&c->text, "%s removed\n", c->id);
	else
		buf_printf(&c->text, "%s: cannot remove: %s", c->id,
		    strerror(errno));
}

static void
remove_done(void *arg)
{
	struct ctl_job *c = arg;

	if (c->ok) {
		log_info("%s: removed by ternctl", c->id);
		slot_free(c->d, c->key);
	} else {
		struct slot *s = slot_get(c->d, c->key);
		if (s) {
			/* its schedule may have come due (and been skipped)
			 * while it was busy: give it one again */
			s->busy = false;
			s->due = now_sec();
			scheduler_add(&c->d->sched, c->key, s->due);
			dispatch_pump(c->d);
		}
	}
	ctl_answer(c);
}

/* The slot of id if it can be changed now; else answers and NULL. */
static struct slot *
ctl_slot(struct dispatch *d, const char *id, uint64_t *key,
    dispatch_answer cb, void *arg)
{
	struct slot *s;

	if (!id_ok(id)) {
		cb(arg, false, xstrdup("not a queue id"));
		return NULL;
	}
	if ((s = slot_by_id(d, id, key)) == NULL) {
		cb(arg, false, xstrdup("no such message"));
		return NULL;
	}
	if (s->busy) {
		cb(arg, false, xstrdup("the message is being delivered now; "
		    "try again in a moment"));
		return NULL;
	}
	return s;
}

void
dispatch_remove(struct dispatch *d, const char *id, dispatch_answer cb,
    void *arg)
{
	uint64_t key;
	struct slot *s = ctl_slot(d, id, &key, cb, arg);

	if (s == NULL)
		return;
	struct ctl_job *c = ctl_new(d, id, cb, arg);
	c->key = key;
	s->busy = true;   /* no delivery starts meanwhile */
	iopool_submit(d->pool, remove_work, remove_done, c);
}

static void
hold_work(void *arg)
{
	struct ctl_job *c = arg;
	struct envelope env;
	struct tern_err err;

	envelope_init(&env);
	if (queue_load_envelope_sync(c->d->queue, c->id, &env, &err) != 0 ||
	    (env.held = c->hold, queue_state_write_sync(c->d->queue, &env,
	    &err)) != 0)
		buf_printf(&c->text, "%s: %s", c->id, err.text);
	else {
		buf_printf(&c->text, "%s %s\n", c->id, c->hold ? "held" :
		    "released");
		c->ok = true;
	}
	envelope_clear(&env);
}

static void
hold_done(void *arg)
{
	struct ctl_job *c = arg;
	struct slot *s = slot_get(c->d, c->key);

	if (s) {
		s->busy = false;
		if (c->ok) {
			s->held = c->hold;
			log_info("%s: %s by ternctl", c->id, c->hold ? "held" :
			    "released");
			/* free what is in memory: it is read back when due */
			free_env_body(&s->env, &s->body);
			if (!c->hold) {
				s->forced = true;
				s->due = now_sec();
				scheduler_add(&c->d->sched, c->key, s->due);
				dispatch_pump(c->d);
			}
		} else if (!s->held) {
			/* failed: a schedule skipped while busy comes back */
			s->due = now_sec();
			scheduler_add(&c->d->sched, c->key, s->due);
			dispatch_pump(c->d);
		}
	}
	ctl_answer(c);
}

void
dispatch_hold(struct dispatch *d, const char *id, bool hold,
    dispatch_answer cb, void *arg)
{
	uint64_t key;
	struct slot *s = ctl_slot(d, id, &key, cb, arg);

	if (s == NULL)
		return;
	if (s->held == hold) {
		cb(arg, false, xstrdup(hold ? "already on hold" :
		    "not on hold"));
		return;
	}
	struct ctl_job *c = ctl_new(d, id, cb, arg);
	c->key = key;
	c->hold = hold;
	s->busy = true;
	iopool_submit(d->pool, hold_work, hold_done, c);
}

/* --- pickup (tern-sendmail) ------------------------------------------- */

struct pickup_item {
	struct envelope *env;
	struct buf *body;
};

struct pickup_job {
	struct dispatch *d;
	struct pickup_item *items;
	size_t n, cap;
	dispatch_answer cb;
	void *arg;
};

static void
pickup_collect(void *arg, struct envelope *env, struct buf *body)
{
	struct pickup_job *p = arg;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->items = xreallocarray(p->items, p->cap, sizeof(*p->items));
	}
	p->items[p->n].env = env;
	p->items[p->n].body = body;
	p->n++;
}

static void
pickup_work(void *arg)
{
	struct pickup_job *p = arg;

	(void)queue_pickup_sync(p->d->queue, (*p->d->current)->cfg->hostname,
	    pickup_collect, p);
}

static void
pickup_done(void *arg)
{
	struct pickup_job *p = arg;
	struct dispatch *d = p->d;

	d->pickup_running = false;
	for (size_t i = 0; i < p->n; i++)
		queue_handoff(d->queue, p->items[i].env, p->items[i].body);
	if (p->cb)
		p->cb(p->arg, true, xasprintf("%zu message(s) picked up\n",
		    p->n));
	free(p->items);
	free(p);
}

void
dispatch_pickup(struct dispatch *d, dispatch_answer cb, void *arg)
{
	struct pickup_job *p;

	if (d->pickup_running || d->stopped) {
		if (cb)
			cb(arg, true, xstrdup("a pickup is already running\n"));
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->cb = cb;
	p->arg = arg;
	d->pickup_running = true;
	iopool_submit(d->pool, pickup_work, pickup_done, p);
}

static void
on_pickup_timer(evutil_socket_t fd, short what, void *arg)
{
	dispatch_pickup(arg, NULL, NULL);
}
