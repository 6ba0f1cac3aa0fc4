/* SPDX-License-Identifier: ISC */
/*
 * dispatch.c - layer 4: delivery scheduling (dispatch.h).
 *
 * Each queued message has a slot; the scheduler (pure, scheduler.c) holds
 * (due, slot|generation) keys and this file owns the one timer. A message
 * that just committed still has its envelope and body in memory and goes
 * straight to a delivery job; one found at start-up, or retried later, is
 * read back from the spool by the job itself (on the worker, not the loop).
 * At most max_deliveries jobs run at once; the rest wait in the scheduler
 * (their bodies are dropped from memory and read again when due).
 *
 * A delivery job, on a worker thread: for each pending recipient of a
 * local domain, Return-Path and Delivered-To are prepended and the message
 * is written durably to data_dir/mail/<domain>/<mailbox>/ under a name
 * tagged "<queue id>R<index>"; then, if no
 * recipient is left pending, the queue file is removed, else the state
 * file records who is done and when to try again (built-in policy from
 * scheduler.c: 30 min, doubling, capped at 4 h). Recipients of other
 * domains (accepted from trusted clients) stay queued until relaying
 * exists; they are not retried on a timer meanwhile.
 *
 * Exactly once across crashes: a kill between a Maildir rename and the
 * queue update would deliver again after the restart. So the first
 * attempt on a message found at start-up first looks for its tag in the
 * recipient's new/ and cur/, and counts a hit as delivered.
 */
#include "dispatch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "deliver_maildir.h"
#include "envelope.h"
#include "iopool.h"
#include "log.h"
#include "maildir.h"
#include "message.h"
#include "queue.h"
#include "scheduler.h"
#include "smtp_parse.h"
#include "util.h"

struct slot {
	bool used;
	bool busy;               /* a job is running for it */
	bool recovered;          /* found at start-up, not yet attempted */
	uint32_t gen;
	char id[ENVELOPE_ID_LEN + 1];
	struct envelope *env;    /* NULL when not in memory */
	struct buf *body;
};

struct dispatch {
	struct event_base *base;
	const struct config *cfg;
	struct queue *queue;
	struct deliver_maildir *dm;
	struct iopool *pool;
	struct scheduler sched;
	struct event *timer;
	struct slot *slots;
	uint32_t nslots, cap;
	uint32_t *free_list;
	uint32_t nfree;
	size_t inflight;
	bool stopped;
};

enum job_result {
	JOB_FINISHED,            /* no recipient pending: removed */
	JOB_RETRY,               /* temporary failures: try again later */
	JOB_PARKED,              /* only non-local recipients left */
	JOB_NOT_DUE,             /* loaded from disk, next try is later */
	JOB_ERROR,               /* could not read or record: try later */
};

struct job {
	struct dispatch *d;
	uint64_t key;
	char id[ENVELOPE_ID_LEN + 1];
	struct envelope *env;
	struct buf *body;
	int64_t now;
	bool recovered;          /* first attempt after a (re)start */
	enum job_result result;
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
slot_drop_body(struct slot *s)
{
	if (s->env) {
		envelope_clear(s->env);
		free(s->env);
		s->env = NULL;
	}
	if (s->body) {
		buf_clear(s->body);
		free(s->body);
		s->body = NULL;
	}
}

static void
slot_free(struct dispatch *d, uint64_t key)
{
	struct slot *s = slot_get(d, key);

	if (s == NULL)
		return;
	slot_drop_body(s);
	s->used = false;
	d->free_list[d->nfree++] = (uint32_t)(key >> 32);
}

static int64_t
now_sec(void)
{
	return (int64_t)time(NULL);
}

/* --- the delivery job (worker thread) -------------------------------- */

/* Delivers one recipient; returns its new status. */
static enum rcpt_status
deliver_rcpt(struct job *j, size_t i, bool *remote, bool *temp)
{
	struct dispatch *d = j->d;
	const struct config *cfg = d->cfg;
	struct envelope_rcpt *r = &j->env->rcpts[i];
	struct smtp_addr a;
	char mailbox[SMTP_LOCAL_MAX + 1], domain[SMTP_DOMAIN_MAX + 1];
	char maildir[4096], name[MAILDIR_NAME_MAX + 1];
	size_t plen = strlen(r->path);
	struct tern_err err;
	struct buf head;
	struct iovec iov[2];
	int rc;

	if (plen < 2 || smtp_parse_mailbox(r->path + 1, plen - 2, &a) != 0) {
		free(r->error);
		r->error = xstrdup("550 5.1.3 bad recipient address in queue");
		log_warnx("%s: to=%s status=failed (%s)", j->id, r->path,
		    r->error);
		return RCPT_FAILED;
	}
	if (a.domain[0] == '[' || !config_is_local_domain(cfg, a.domain)) {
		*remote = true;
		return RCPT_PENDING;
	}
	if (maildir_local_normalize(a.local, cfg->recipient_delimiter,
	    mailbox, sizeof(mailbox)) != 0 || maildir_domain_normalize(
	    a.domain, domain, sizeof(domain)) != 0 ||
	    str_fmt(maildir, sizeof(maildir), "%s/%s/%s", cfg->mail_dir,
	    domain, mailbox) != 0) {
		free(r->error);
		r->error = xstrdup("553 5.1.3 mailbox name not allowed");
		log_warnx("%s: to=%s status=failed (%s)", j->id, r->path,
		    r->error);
		return RCPT_FAILED;
	}
	char tag[ENVELOPE_ID_LEN + 24];
	(void)str_fmt(tag, sizeof(tag), "%sR%zu", j->id, i);
	if (j->recovered && deliver_maildir_has_tag(maildir, tag)) {
		/* Delivered before a crash, not yet recorded: exactly once. */
		log_info("%s: to=%s relay=local mailbox=%s/%s status=sent "
		    "(already delivered before the restart)", j->id, r->path,
		    domain, mailbox);
		return RCPT_DONE;
	}
	buf_init(&head);
	char rcpt[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2];
	(void)str_fmt(rcpt, sizeof(rcpt), "%s@%s", mailbox, domain);
	message_append_delivery_fields(&head, j->env->sender, rcpt);
	iov[0].iov_base = head.data;
	iov[0].iov_len = head.len;
	iov[1].iov_base = j->body->data;
	iov[1].iov_len = j->body->len;
	rc = deliver_maildir_sync(d->dm, maildir, tag, iov, 2, name,
	    sizeof(name), &err);
	buf_clear(&head);
	free(r->error);
	r->error = xasprintf("%d %s %s", rc == 0 ? 250 : err.code,
	    rc == 0 ? "2.0.0" : err.enh, rc == 0 ? name : err.text);
	if (rc == 0) {
		log_info("%s: to=%s relay=local mailbox=%s/%s delay=%llds "
		    "status=sent (%s)", j->id, r->path, domain, mailbox,
		    (long long)(now_sec() - j->env->created), name);
		return RCPT_DONE;
	}
	log_info("%s: to=%s relay=local mailbox=%s/%s status=%s (%d %s %s)",
	    j->id, r->path, domain, mailbox, err.temp ? "deferred" : "failed",
	    err.code, err.enh, err.text);
	if (err.temp) {
		*temp = true;
		return RCPT_PENDING;
	}
	return RCPT_FAILED;
}

static void
job_work(void *arg)
{
	struct job *j = arg;
	struct dispatch *d = j->d;
	struct tern_err err;
	bool remote = false, temp = false, changed = false;

	if (j->env == NULL) {
		j->env = xcalloc(1, sizeof(*j->env));
		envelope_init(j->env);
		j->body = xcalloc(1, sizeof(*j->body));
		buf_init(j->body);
		if (queue_load_sync(d->queue, j->id, j->env, j->body,
		    &err) != 0) {
			if (!err.temp) {
				log_warnx("%s: %s; moved to spool/corrupt",
				    j->id, err.text);
				(void)queue_move_aside_sync(d->queue, j->id);
				j->result = JOB_FINISHED;
			} else {
				log_warnx("%s: %s", j->id, err.text);
				j->result = JOB_ERROR;
			}
			return;
		}
		if (j->env->next_try > j->now) {
			j->result = JOB_NOT_DUE;
			return;
		}
	}
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		struct envelope_rcpt *r = &j->env->rcpts[i];
		if (r->status != RCPT_PENDING)
			continue;
		bool is_remote = false;
		r->status = deliver_rcpt(j, i, &is_remote, &temp);
		if (r->status != RCPT_PENDING)
			changed = true;
		remote |= is_remote;
	}
	if (envelope_pending(j->env) == 0) {
		if (queue_remove_sync(d->queue, j->id) != 0)
			log_warn("%s: cannot remove queue file", j->id);
		else
			log_info("%s: removed", j->id);
		j->result = JOB_FINISHED;
		return;
	}
	if (temp) {
		j->env->attempts++;
		j->env->next_try = now_sec() +
		    scheduler_default_delay(j->env->attempts);
		changed = true;
		j->result = JOB_RETRY;
	} else
		j->result = remote ? JOB_PARKED : JOB_RETRY;
	if (changed && queue_state_write_sync(d->queue, j->env, &err) != 0) {
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

static void dispatch_pump(struct dispatch *d);

static void
job_done(void *arg)
{
	struct job *j = arg;
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
		scheduler_add(&d->sched, j->key, next);
		if (j->result == JOB_RETRY)
			log_info("%s: deferred, next attempt in %llds", j->id,
			    (long long)(next - now_sec()));
		break;
	case JOB_PARKED:
		log_info("%s: waiting: remote recipients stay queued (relay "
		    "is not available in this version)", j->id);
		break;
	case JOB_ERROR:
		scheduler_add(&d->sched, j->key, now_sec() + 60);
		break;
	}
	if (j->env) {
		envelope_clear(j->env);
		free(j->env);
	}
	if (j->body) {
		buf_clear(j->body);
		free(j->body);
	}
	free(j);
	dispatch_pump(d);
}

static void
job_start(struct dispatch *d, uint64_t key)
{
	struct slot *s = slot_get(d, key);
	struct job *j;

	if (s == NULL || s->busy)
		return;
	j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->key = key;
	(void)str_copy(j->id, sizeof(j->id), s->id);
	j->env = s->env;       /* the job takes what is in memory */
	j->body = s->body;
	s->env = NULL;
	s->body = NULL;
	j->now = now_sec();
	j->recovered = s->recovered;
	s->recovered = false;
	s->busy = true;
	d->inflight++;
	iopool_submit(d->pool, job_work, job_done, j);
}

static void
dispatch_arm(struct dispatch *d)
{
	int64_t due, now = now_sec();

	if (d->stopped || !scheduler_next(&d->sched, &due))
		return;
	if (d->inflight >= d->cfg->max_deliveries)
		return; /* job_done pumps again */
	struct timeval tv = { due > now ? (time_t)(due - now) : 0, 0 };
	evtimer_add(d->timer, &tv);
}

static void
dispatch_pump(struct dispatch *d)
{
	uint64_t key;
	int64_t now = now_sec();

	while (!d->stopped && d->inflight < d->cfg->max_deliveries &&
	    scheduler_pop_due(&d->sched, now, &key))
		job_start(d, key);
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
	if (!d->stopped && d->inflight < d->cfg->max_deliveries) {
		job_start(d, key);
		return;
	}
	/* Busy: read it back from the spool when its turn comes. */
	slot_drop_body(s);
	scheduler_add(&d->sched, key, now_sec());
	dispatch_arm(d);
}

static void
on_scanned(void *arg, const char *id)
{
	struct dispatch *d = arg;
	uint64_t key = slot_new(d, id);

	slot_get(d, key)->recovered = true;
	scheduler_add(&d->sched, key, now_sec());
}

void
dispatch_load_queue(struct dispatch *d)
{
	size_t n = queue_scan(d->queue, on_scanned, d);

	if (n > 0)
		log_info("queue: %zu message(s) found in the spool", n);
	dispatch_pump(d);
}

struct dispatch *
dispatch_new(struct event_base *base, const struct config *cfg,
    struct queue *q, struct deliver_maildir *dm, struct iopool *pool)
{
	struct dispatch *d = xcalloc(1, sizeof(*d));

	d->base = base;
	d->cfg = cfg;
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
			slot_drop_body(&d->slots[i]);
	free(d->slots);
	free(d->free_list);
	scheduler_clear(&d->sched);
	event_free(d->timer);
	free(d);
}
