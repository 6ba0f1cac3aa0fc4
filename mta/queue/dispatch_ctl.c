/* SPDX-License-Identifier: ISC */
/*
 * dispatch_ctl.c - layer 4: what ternctl asks of the queue (dispatch.h,
 * "for ternctl"): counters, listing, showing, flush, remove, hold and
 * release, and the intake of spool/pickup (tern-sendmail). Disk work runs
 * on the I/O pool through queue.c, answers come back on the loop; a
 * message being delivered is never edited under the job's feet.
 */
#include "queue/dispatch_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/util.h"
#include "lua/config.h"
#include "mail/envelope.h"
#include "mail/message.h"
#include "queue/queue.h"
#include "queue/scheduler.h"
#include "runtime.h"

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
			*key = dispatch_make_key(i, d->slots[i].gen);
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

/*
 * A recipient's last result: its own (a failure, or since the state file
 * keeps it, the last temporary one), else for a pending recipient the
 * message's last error (state files written before rcpt-deferred).
 */
static const char *
last_result(const struct envelope *env, size_t i)
{
	const struct envelope_rcpt *r = &env->rcpts[i];

	if (r->error)
		return r->error;
	return r->status == RCPT_PENDING ? env->last_error : NULL;
}

static void
list_one(void *arg, const char *id)
{
	struct ctl_job *c = arg;
	struct envelope env;
	struct tern_err err;
	int64_t now = dispatch_now();
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
			const char *last = last_result(&env, i);
			if (last) {
				buf_append_str(&c->text, ", \"last\": ");
				json_str(&c->text, last);
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
			const char *last = last_result(&env, i);
			if (last && r->status != RCPT_DONE)
				buf_printf(&c->text, "  last=%s", last);
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
	int64_t now = dispatch_now();
	size_t n = 0;

	for (uint32_t i = 0; i < d->nslots; i++) {
		struct slot *s = &d->slots[i];
		if (!s->used || s->busy || s->held || (id && strcmp(s->id, id)))
			continue;
		if (s->due > now) {
			s->due = now;
			scheduler_add(&d->sched, dispatch_make_key(i, s->gen), now);
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
		dispatch_slot_free(c->d, c->key);
	} else {
		struct slot *s = dispatch_slot_get(c->d, c->key);
		if (s) {
			/* its schedule may have come due (and been skipped)
			 * while it was busy: give it one again */
			s->busy = false;
			s->due = dispatch_now();
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
	struct slot *s = dispatch_slot_get(c->d, c->key);

	if (s) {
		s->busy = false;
		if (c->ok) {
			s->held = c->hold;
			log_info("%s: %s by ternctl", c->id, c->hold ? "held" :
			    "released");
			/* free what is in memory: it is read back when due */
			dispatch_free_env_body(&s->env, &s->body);
			if (!c->hold) {
				s->forced = true;
				s->due = dispatch_now();
				scheduler_add(&c->d->sched, c->key, s->due);
				dispatch_pump(c->d);
			}
		} else if (!s->held) {
			/* failed: a schedule skipped while busy comes back */
			s->due = dispatch_now();
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
	struct runtime *rt;       /* held: its host name and keys */
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

	(void)queue_pickup_sync(p->d->queue, p->rt->cfg->hostname, p->rt->dkim,
	    pickup_collect, p);
}

static void
pickup_done(void *arg)
{
	struct pickup_job *p = arg;
	struct dispatch *d = p->d;

	d->pickup_running = false;
	runtime_unref(p->rt);
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
	p->rt = runtime_ref(*d->current);
	p->cb = cb;
	p->arg = arg;
	d->pickup_running = true;
	iopool_submit(d->pool, pickup_work, pickup_done, p);
}

void
dispatch_on_pickup_timer(evutil_socket_t fd, short what, void *arg)
{
	dispatch_pickup(arg, NULL, NULL);
}
