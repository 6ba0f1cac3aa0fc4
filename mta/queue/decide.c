/* SPDX-License-Identifier: ISC */
/*
 * decide.c - layer 4: the DECIDE phase of a delivery job (dispatch.c
 * describes the phases). Runs on the loop thread, once every recipient
 * of an attempt has a result: the delivered hooks; for temporary failures
 * the retry hook (or the built-in RFC 5321 4.5.4.1 schedule); the bounced
 * hooks; one RFC 3464 report per message for the recipients that failed
 * in this attempt (never for a <> sender), and one delay warning. A report
 * is committed to the queue before the original's state is recorded, so a
 * crash in between sends it twice at worst, never not at all.
 */
#include "queue/dispatch_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "lua/config.h"
#include "lua/hooks.h"
#include "mail/bounce.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/message.h"
#include "queue/queue.h"
#include "queue/scheduler.h"
#include "mail/dkim_sign.h"
#include "runtime.h"

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
			j->env->next_try = dispatch_now() + 60;
	} else {
		j->d->stats.reports++;
		log_info("%s: report to the sender queued as %s", j->id, id);
	}
	dispatch_record(j);
}

/*
 * What the report of this attempt says of recipient i, if anything:
 * failures and (RFC 3461 NOTIFY=SUCCESS) deliveries; or, for a delay
 * warning, the recipients still pending. -1: not in it.
 */
static int
report_action(const struct job *j, size_t i, bool delay)
{
	const struct envelope_rcpt *r = &j->env->rcpts[i];
	const struct plan *p = &j->plans[i];

	if (delay)
		return r->status == RCPT_PENDING && p->kind != PLAN_NONE &&
		    dsn_notify_wants(r->notify, DSN_NOTIFY_DELAY) ?
		    BOUNCE_DELAYED : -1;
	if (p->newly_failed)
		return dsn_notify_wants(r->notify, DSN_NOTIFY_FAILURE) ?
		    BOUNCE_FAILED : -1;
	if (p->delivered && !p->dsn_passed &&
	    dsn_notify_wants(r->notify, DSN_NOTIFY_SUCCESS))
		return p->kind == PLAN_REMOTE ? BOUNCE_RELAYED :
		    BOUNCE_DELIVERED;
	return -1;
}

/*
 * Builds a report for the sender: the failures of this attempt and the
 * deliveries that asked for one, or (delay) a warning for the
 * recipients still pending. It is committed before the original's state
 * is recorded. False if there is nothing to report.
 */
static bool
send_report(struct job *j, bool delay)
{
	struct dispatch *d = j->d;
	const struct config *cfg = j->rt->cfg;
	struct bounce_rcpt *br;
	struct bounce_info bi;
	struct envelope *env;
	struct buf *body;
	char date[64], arrival[64], boundary[80], msgid[160], enh[12];
	char envid[DSN_ENVID_MAX + 1];
	size_t n = 0;
	bool failed = false;
	struct tm tm;
	time_t t;

	br = xcalloc(j->env->nrcpts, sizeof(*br));
	char **addrs = xcalloc(j->env->nrcpts, sizeof(char *));
	char **status = xcalloc(j->env->nrcpts, sizeof(char *));
	char **orcpts = xcalloc(j->env->nrcpts, sizeof(char *));
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		int action = report_action(j, i, delay);
		if (action < 0)
			continue;
		const struct envelope_rcpt *r = &j->env->rcpts[i];
		bool ok = action == BOUNCE_DELIVERED || action == BOUNCE_RELAYED;
		const char *e = r->error ? r->error : action == BOUNCE_FAILED ?
		    "550 5.0.0 failed" : action == BOUNCE_DELAYED ?
		    "451 4.0.0 not delivered yet" : "250 2.0.0 delivered";
		addrs[n] = xstrndup(r->path + 1, strlen(r->path) - 2);
		/* "550 5.1.1 text" -> "5.1.1" */
		char want = ok ? '2' : action == BOUNCE_FAILED ? '5' : '4';
		if (sscanf(e, "%*d %11s", enh) != 1 || enh[0] != want)
			(void)str_fmt(enh, sizeof(enh), "%c.0.0", want);
		status[n] = xstrdup(enh);
		if (r->orcpt) {
			orcpts[n] = xcalloc(1, DSN_ORCPT_MAX + 1);
			if (dsn_orcpt_decode(r->orcpt, orcpts[n],
			    DSN_ORCPT_MAX + 1) != 0)
				orcpts[n][0] = '\0';
		}
		br[n].action = (enum bounce_action)action;
		br[n].addr = addrs[n];
		br[n].orcpt = orcpts[n] && orcpts[n][0] ? orcpts[n] : NULL;
		br[n].status = status[n];
		/* a local delivery's text names our file: not theirs to see */
		br[n].diagnostic = action == BOUNCE_DELIVERED ? NULL : e;
		br[n].remote_mta = NULL;
		if (j->plans[i].remote_mta) {
			/* "host[ip]:port" -> "host" */
			char *h = j->plans[i].remote_mta;
			char *b = strchr(h, '[');
			if (b && b > h)
				*b = '\0';
			br[n].remote_mta = h;
		}
		failed |= action == BOUNCE_FAILED;
		n++;
	}
	bool success = n > 0 && !delay && !failed;
	if (n > 0) {
		env = xcalloc(1, sizeof(*env));
		envelope_init(env);
		queue_new_id(d->queue, env->id);
		t = time(NULL);
		localtime_r(&t, &tm);
		message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
		t = (time_t)j->env->created;
		localtime_r(&t, &tm);
		message_format_date(arrival, sizeof(arrival), &tm,
		    tm.tm_gmtoff);
		(void)snprintf(boundary, sizeof(boundary), "%s/%s", env->id,
		    cfg->hostname);
		(void)snprintf(msgid, sizeof(msgid), "<%s.%s@%s>", env->id,
		    failed ? "bounce" : success ? "dsn" : "delay",
		    cfg->hostname);
		char *sender = xstrndup(j->env->sender + 1,
		    strlen(j->env->sender) - 2);
		memset(&bi, 0, sizeof(bi));
		bi.reporting_mta = cfg->hostname;
		bi.queue_id = j->id;
		bi.sender = sender;
		bi.envid = j->env->envid && xtext_decode(j->env->envid,
		    strlen(j->env->envid), envid, sizeof(envid), NULL) == 0 ?
		    envid : NULL;
		bi.arrival_date = arrival;
		bi.date = date;
		bi.boundary = boundary;
		bi.message_id = msgid;
		bi.rcpts = br;
		bi.nrcpts = n;
		bi.orig = j->body ? j->body->data : "";
		bi.orig_len = j->body ? j->body->len : 0;
		/* RFC 3461 4.3: the whole message back only when asked,
		 * and only with a failure; of a message over DISPATCH_BIG
		 * (never read whole for local delivery) its header only */
		bi.full = failed && j->env->ret == DSN_RET_FULL && !j->lazy;
		if (failed && j->env->ret == DSN_RET_FULL && j->lazy)
			log_info("%s: RET=FULL: the report returns the header "
			    "only (the message is over %d octets)", j->id,
			    DISPATCH_BIG);
		bi.global = j->env->smtputf8;
		body = xcalloc(1, sizeof(*body));
		buf_init(body);
		bounce_build(body, &bi);
		free(sender);
		/* from MAILER-DAEMON@ our host name: signed if its domain
		 * has keys */
		char why[200];
		if (dkim_signer_sign(j->rt->dkim, body, 0,
		    (int64_t)time(NULL), why, sizeof(why)) < 0)
			log_warnx("%s: the report goes unsigned: %s", env->id,
			    why);
		env->created = dispatch_now();
		env->client = xstrdup("127.0.0.1");
		env->helo = xstrdup(cfg->hostname);
		env->protocol = xstrdup("local");
		env->sender = xstrdup("<>");
		env->body = xstrdup(message_has_8bit(body->data, body->len) ?
		    "8BITMIME" : "7BIT");
		/* a UTF-8 sender or header goes back as it came (RFC 6533) */
		env->smtputf8 = j->env->smtputf8;
		/* RFC 8689 5: the report of REQUIRETLS mail (its header
		 * section, as every report of ours) is held to it too */
		env->requiretls = j->env->requiretls;
		size_t ri = envelope_add_rcpt(env, j->env->sender);
		/* a report asks for no report of its own (RFC 3461 6.2) */
		env->rcpts[ri].notify = DSN_NOTIFY_NEVER;
		log_info("%s: %s report for %zu recipient(s) to %s", j->id,
		    failed ? "failure" : success ? "success" : "delay", n,
		    j->env->sender);
		(void)queue_commit(d->queue, env, body, on_bounce_committed,
		    j);
	}
	for (size_t i = 0; i < n; i++) {
		free(addrs[i]);
		free(status[i]);
		free(orcpts[i]);
	}
	free(addrs);
	free(status);
	free(orcpts);
	free(br);
	return n > 0;
}

/*
 * This attempt's outcome for each recipient, in tern_deliveries_total
 * {relay,result}, and for those done (delivered or failed) the time
 * since the message came, in tern_delivery_delay_seconds{relay}.
 */
static void
count_outcomes(const struct job *j)
{
	char l[96];

	for (size_t i = 0; i < j->env->nrcpts; i++) {
		const struct plan *p = &j->plans[i];
		const char *relay = p->kind == PLAN_MAILDIR ? "local" :
		    p->kind == PLAN_REMOTE ? "smtp" : "none", *result;
		if (p->delivered)
			result = "delivered";
		else if (p->newly_failed)
			result = "failed";
		else if (j->temp && j->env->rcpts[i].status == RCPT_PENDING &&
		    p->kind != PLAN_NONE)
			result = "deferred";
		else
			continue;
		(void)snprintf(l, sizeof(l), "relay=\"%s\",result=\"%s\"",
		    relay, result);
		metrics_add("tern_deliveries_total", l, 1);
		if (strcmp(result, "deferred") != 0) {
			(void)snprintf(l, sizeof(l), "relay=\"%s\"", relay);
			metrics_observe("tern_delivery_delay_seconds", l,
			    (double)(dispatch_now() - j->env->created));
		}
	}
}

void
dispatch_decide(struct job *j)
{
	struct hooks *hooks = j->rt->hooks;
	struct hook_msg_info m;
	char rcpt[600], sender[600];
	bool any_failed = false;
	int64_t delay = 0;
	bool bounce = false;

	count_outcomes(j);
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		if (j->plans[i].delivered && j->plans[i].kind == PLAN_MAILDIR)
			j->d->stats.delivered++;
		if (j->plans[i].delivered && hooks_has(hooks,
		    HOOK_DELIVERED)) {
			dispatch_fill_info(j, i, &m, rcpt, sizeof(rcpt), sender,
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
			dispatch_fill_info(j, first, &m, rcpt, sizeof(rcpt), sender,
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
						dispatch_fail_rcpt(j, i, 550, "5.4.7",
						    j->env->rcpts[i].error ?
						    j->env->rcpts[i].error :
						    "delivery time expired");
				j->temp = false;
			}
		} else
			delay = scheduler_default_delay(j->env->attempts);
		if (j->temp)
			j->env->next_try = dispatch_now() + delay;
	}
	for (size_t i = 0; i < j->env->nrcpts; i++) {
		if (!j->plans[i].newly_failed)
			continue;
		any_failed = true;
		if (hooks_has(hooks, HOOK_BOUNCED)) {
			dispatch_fill_info(j, i, &m, rcpt, sizeof(rcpt), sender,
			    sizeof(sender));
			hooks_bounced(hooks, &m);
		}
	}
	bool null_sender = strcmp(j->env->sender, "<>") == 0;
	if (null_sender) {
		/* Never bounce a bounce. */
		if (any_failed)
			log_info("%s: failed recipients of a <> message: "
			    "no bounce sent", j->id);
	} else if (send_report(j, false))
		return; /* on_bounce_committed records */
	unsigned warn_after = j->rt->cfg->delay_warning;
	if (j->temp && !j->env->warned && warn_after > 0 && !null_sender &&
	    j->now - j->env->created >= (int64_t)warn_after) {
		j->env->warned = true;
		j->changed = true;
		log_info("%s: delayed for %llds: warning the sender", j->id,
		    (long long)(j->now - j->env->created));
		if (send_report(j, true))
			return;
	}
	dispatch_record(j);
}
