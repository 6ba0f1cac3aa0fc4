/* SPDX-License-Identifier: ISC */
/*
 * jmap_changes.c - layer 3: Email/changes, Thread/changes and
 * Mailbox/changes (RFC 8620 5.2, RFC 8621 2.2, 3.2 and 4.3), the
 * Email changes Email/queryChanges builds on (jchanges_email), and
 * Mailbox/queryChanges, which says cannotCalculateChanges. A Thread changes when an Email is
 * made in it or gone from it; the thread of an Email gone is the one
 * its expunge record names.
 *
 * A state names each folder's HIGHESTMODSEQ and next UID (jmap_state.h).
 * What changed in a folder since is what the store's change log has:
 * the messages whose MODSEQ is above the old one (below the old next
 * UID a change, at or above it an arrival), the messages flagged
 * \Deleted since (gone for JMAP), and the expunges the index recorded
 * with their Email ids. An Email is in several folders when it has hard
 * links, so the folders' records are put together by id: created when
 * it did not exist at the old state and does now, destroyed the other
 * way round, else updated. The log cannot answer for a folder that is
 * gone (its messages are not known any more), for expunges from before
 * the index kept Email ids, or for MODSEQs older than the index itself:
 * those are cannotCalculateChanges, and the client starts over.
 * Loop thread, except the one job per changed folder that reads its
 * expunges from the index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "http/jmap_account.h"
#include "http/jmap_int.h"
#include "http/jmap_state.h"
#include "store/index.h"
#include "store/store.h"

#define MAX_CHANGES 5000          /* a page when the client sets none */

enum { R_IN, R_UPD, R_OUT };

struct rec {
	const char *id;           /* into a snapshot or an echg_box's exp */
	uint64_t modseq;
	uint32_t uid;
	uint8_t kind;
	const char *tid;          /* its thread ("": not known) */
};

struct echg_box {
	struct echg *c;
	size_t box;
	const struct jstate_ent *old;   /* NULL: a folder new since */
	struct mbox_expunged *exp;
	size_t nexp;
	bool incomplete;
	bool asked;               /* its expunges were read, */
	uint64_t job_modseq;      /* when the folder was at this MODSEQ */
};

struct echg {
	struct jreq *q;
	char *since;
	struct jstate_ent *old;
	size_t nold;
	struct echg_box *b;       /* current folders, in id order */
	size_t nb;
	size_t pending;
	size_t max;
	char kind;                /* 'e' Email/changes, 't' Thread/changes */
	json_t *args;             /* held, to start again */
	unsigned gen;             /* jacct_generation() when it began */
	int tries;
	struct rec **recs;        /* each folder's, in MODSEQ order */
	size_t *nrec;
	jchanges_cont cont;       /* for another method (jchanges_email) */
	void *cont_arg;
};

static void
echg_free(struct echg *c)
{
	for (size_t i = 0; i < c->nb; i++) {
		free(c->b[i].exp);
		if (c->recs)
			free(c->recs[i]);
	}
	free(c->recs);
	free(c->nrec);
	free(c->b);
	free(c->old);
	free(c->since);
	json_decref(c->args);
	free(c);
}

static int
cmp_box_id(const void *x, const void *y, void *arg)
{
	struct jacct *a = arg;
	const struct echg_box *p = x, *q = y;

	return strcmp(jacct_box(a, p->box)->s.id, jacct_box(a, q->box)->s.id);
}

/* On the worker: the folder's expunges since the old MODSEQ. */
static bool
expunges_work(struct mbox *mb, void *arg)
{
	struct echg_box *eb = arg;
	struct store_account *sa = jacct_store_account(eb->c->q->acct);
	struct tern_err err;
	bool complete = false;

	memset(&err, 0, sizeof(err));
	if (tindex_expunges(store_account_index(sa), store_rel(sa, mb->path),
	    mb->uidvalidity, eb->old->modseq, &eb->exp, &eb->nexp, &complete,
	    &err) != 0)
		complete = false;
	/* those the index has not been told of yet */
	for (size_t k = 0; k < mb->nexp; k++)
		if (mb->exp[k].modseq > eb->old->modseq) {
			eb->exp = xreallocarray(eb->exp, eb->nexp + 1,
			    sizeof(*eb->exp));
			eb->exp[eb->nexp++] = mb->exp[k];
		}
	eb->incomplete = !complete;
	eb->job_modseq = mb->modseq;
	return false;
}

static int
cmp_rec_modseq(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;

	if (a->modseq != b->modseq)
		return a->modseq < b->modseq ? -1 : 1;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/* Did Email id exist at the old state? (ids marked by a record aside) */
static bool
existed_then(struct echg *c, const char *id)
{
	size_t n;
	const struct jloc *l = jacct_find(c->q->acct, id, &n);

	for (size_t k = 0; k < n; k++) {
		const struct jbox *jb = jacct_box(c->q->acct, l[k].box);
		const struct jstate_ent *o = jstate_find(c->old, c->nold,
		    jb->s.id);
		/* a UID below the old next one that is here now was here
		 * then: UIDs only grow */
		if (o && jb->s.m[l[k].idx].uid < o->extra)
			return true;
	}
	return false;
}

struct idinfo {
	const char *id;
	bool then;                /* a change or an expunge says it existed */
};

static int
cmp_info(const void *x, const void *y)
{
	return strcmp(((const struct idinfo *)x)->id,
	    ((const struct idinfo *)y)->id);
}

static int
cmp_rec_id(const void *x, const void *y)
{
	return strcmp((*(const struct rec *const *)x)->id,
	    (*(const struct rec *const *)y)->id);
}

static bool
email_now(struct echg *c, const char *id)
{
	size_t n;

	return jacct_find(c->q->acct, id, &n) != NULL;
}

static bool
email_then(struct echg *c, const struct idinfo *info, size_t ni,
    const char *id)
{
	struct idinfo key = { id, false };
	const struct idinfo *in = bsearch(&key, info, ni, sizeof(*info),
	    cmp_info);

	return (in && in->then) || existed_then(c, id);
}

struct verdicts {
	json_t *created, *updated, *destroyed;
};

static void
verdict(struct verdicts *v, const char *id, bool now, bool then)
{
	if (now && then)
		json_array_append_new(v->updated, json_string(id));
	else if (now)
		json_array_append_new(v->created, json_string(id));
	else if (then)
		json_array_append_new(v->destroyed, json_string(id));
	/* neither: came and went in between */
}

/* A thread an Email was made in or gone from. */
struct tv {
	const char *tid;
	bool gone;
};

static int
cmp_tv(const void *x, const void *y)
{
	return strcmp(((const struct tv *)x)->tid, ((const struct tv *)y)->tid);
}

/*
 * Thread/changes: a thread existed then if an Email of it was gone
 * since, or one of its Emails now existed then; it exists now if it
 * has an Email.
 */
static void
thread_verdicts(struct echg *c, const struct idinfo *info, size_t ni,
    struct tv *tv, size_t n, struct verdicts *v)
{
	qsort(tv, n, sizeof(*tv), cmp_tv);
	for (size_t k = 0; k < n;) {
		size_t j = k, ne;
		bool then = false;
		for (; j < n && strcmp(tv[j].tid, tv[k].tid) == 0; j++)
			then |= tv[j].gone;
		const struct jloc *l = jacct_thread(c->q->acct, tv[k].tid, &ne);
		for (size_t i = 0; i < ne && !then; i++)
			then = email_then(c, info, ni, l[i].id);
		verdict(v, tv[k].tid, l != NULL, then);
		k = j;
	}
}

static void
echg_fail(struct echg *c, const char *why)
{
	struct jreq *q = c->q;
	jchanges_cont cont = c->cont;
	void *arg = c->cont_arg;

	echg_free(c);
	jq_error(q, "cannotCalculateChanges", why);
	if (cont)
		cont(arg, NULL);
}

/* Folder i's records since the old state: NULL, or why there are none. */
static const char *
box_records(struct echg *c, size_t i)
{
	struct echg_box *eb = &c->b[i];
	const struct jsnap *s = &jacct_box(c->q->acct, eb->box)->s;
	uint64_t since = eb->old ? eb->old->modseq : 0;
	uint64_t unext = eb->old ? eb->old->extra : 0;

	if (eb->old && eb->old->modseq == s->modseq)
		return NULL;
	if (eb->incomplete)
		return "the change log does not go back so far";
	struct rec *r = xcalloc(s->n + s->ndel + eb->nexp + 1, sizeof(*r));
	size_t n = 0;
	c->recs[i] = r;
	for (size_t k = 0; k < s->n; k++)
		if (s->m[k].modseq > since)
			r[n++] = (struct rec){ s->m[k].id, s->m[k].modseq,
			    s->m[k].uid, s->m[k].uid < unext ? R_UPD : R_IN,
			    s->m[k].tid };
	for (size_t k = 0; k < s->ndel; k++)
		if (s->del[k].modseq > since && s->del[k].uid < unext)
			r[n++] = (struct rec){ s->del[k].id, s->del[k].modseq,
			    s->del[k].uid, R_OUT, s->del[k].tid };
	for (size_t k = 0; k < eb->nexp; k++) {
		const struct mbox_expunged *e = &eb->exp[k];
		/* newer than the snapshot: for the next call */
		if (e->uid >= unext || e->modseq > s->modseq)
			continue;
		if (e->email[0] == '\0' || (c->kind == 't' && !e->thread[0]))
			return "expunges from before the index kept ids";
		r[n++] = (struct rec){ e->email, e->modseq, e->uid, R_OUT,
		    e->thread };
	}
	qsort(r, n, sizeof(*r), cmp_rec_modseq);
	/* one expunge may be in the index and still in the box */
	size_t w = 0;
	for (size_t k = 0; k < n; k++)
		if (w == 0 || r[k].modseq != r[w - 1].modseq ||
		    r[k].uid != r[w - 1].uid)
			r[w++] = r[k];
	c->nrec[i] = w;
	return NULL;
}

static void
echg_finish(struct echg *c)
{
	struct jreq *q = c->q;
	struct rec **recs;
	size_t *nrec, total = 0;
	const char *why;

	recs = c->recs = xcalloc(c->nb + 1, sizeof(*recs));
	nrec = c->nrec = xcalloc(c->nb + 1, sizeof(*nrec));
	for (size_t i = 0; i < c->nb; i++) {
		if ((why = box_records(c, i)) != NULL) {
			echg_fail(c, why);
			return;
		}
		total += nrec[i];
	}
	/* what each id was at the old state */
	struct idinfo *info = xcalloc(total + 1, sizeof(*info));
	size_t ni = 0;
	for (size_t i = 0; i < c->nb; i++)
		for (size_t k = 0; k < nrec[i]; k++)
			info[ni++] = (struct idinfo){ recs[i][k].id,
			    recs[i][k].kind != R_IN };
	qsort(info, ni, sizeof(*info), cmp_info);
	size_t nu = 0;
	for (size_t k = 0; k < ni; k++) {
		if (nu && strcmp(info[nu - 1].id, info[k].id) == 0)
			info[nu - 1].then |= info[k].then;
		else
			info[nu++] = info[k];
	}
	/* the page: whole MODSEQs, folder by folder, up to max ids */
	const struct rec **taken = xcalloc(total + 1, sizeof(*taken));
	size_t nt = 0, cut_box = c->nb, cut_at = 0;
	for (size_t i = 0; i < c->nb && cut_box == c->nb; i++)
		for (size_t k = 0; k < nrec[i]; k++) {
			if (nt >= c->max) {
				cut_box = i;
				cut_at = k;
				break;
			}
			taken[nt++] = &recs[i][k];
		}
	/* a MODSEQ is not split (an index rebuilt gives many the same) */
	if (cut_box < c->nb) {
		size_t back = 0;
		while (cut_at > 0 && recs[cut_box][cut_at - 1].modseq ==
		    recs[cut_box][cut_at].modseq) {
			cut_at--;
			back++;
		}
		nt -= back;
		if (nt == 0) {
			free(info);
			free(taken);
			echg_fail(c, "more changes at one MODSEQ than maxChanges");
			return;
		}
	}
	qsort(taken, nt, sizeof(*taken), cmp_rec_id);
	struct verdicts v = { json_array(), json_array(), json_array() };
	struct tv *tv = xcalloc(nt + 1, sizeof(*tv));
	size_t ntv = 0;
	for (size_t k = 0; k < nt; k++) {
		const char *id = taken[k]->id;
		if (k && strcmp(id, taken[k - 1]->id) == 0)
			continue;
		bool now = email_now(c, id), then = email_then(c, info, nu, id);
		const char *tid = "";
		size_t n;
		if (now)
			tid = jacct_msg(q->acct, jacct_find(q->acct, id, &n))->tid;
		else       /* the thread a record of the destroyed one names */
			for (size_t j = k; j < nt && !strcmp(taken[j]->id, id);
			    j++)
				if (taken[j]->kind == R_OUT && taken[j]->tid[0])
					tid = taken[j]->tid;
		if (c->kind == 'e')
			verdict(&v, id, now, then);
		else if (now != then) {
			/* made or gone: the thread's emailIds change */
			if (!tid[0]) {
				free(info);
				free(taken);
				free(tv);
				json_decref(v.created);
				json_decref(v.updated);
				json_decref(v.destroyed);
				echg_fail(c, "the thread of an Email gone is "
				    "not known");
				return;
			}
			tv[ntv].tid = tid;
			tv[ntv++].gone = then;
		}
	}
	if (c->kind == 't')
		thread_verdicts(c, info, nu, tv, ntv, &v);
	free(tv);
	/* the new state: up to the cut, the folders as they are now */
	struct jstate_ent *e = xcalloc(c->nb + 1, sizeof(*e));
	size_t ne = 0;
	for (size_t i = 0; i < c->nb; i++) {
		const struct jsnap *s = &jacct_box(q->acct, c->b[i].box)->s;
		struct jstate_ent *t = &e[ne];
		if (i < cut_box) {
			(void)str_fmt(t->id, sizeof(t->id), "%s", s->id);
			t->modseq = s->modseq;
			t->extra = s->uidnext;
			ne++;
		} else if (i == cut_box && (cut_at > 0 || c->b[i].old)) {
			/* up to the last MODSEQ given; an arrival not given
			 * yet keeps its UID at or above the next UID named */
			(void)str_fmt(t->id, sizeof(t->id), "%s", s->id);
			t->modseq = cut_at > 0 ? recs[i][cut_at - 1].modseq :
			    c->b[i].old->modseq;
			t->extra = s->uidnext;
			for (size_t k = cut_at; k < nrec[i]; k++)
				if (recs[i][k].kind == R_IN &&
				    recs[i][k].uid < t->extra)
					t->extra = recs[i][k].uid;
			ne++;
		} else if (c->b[i].old)
			e[ne++] = *c->b[i].old;
	}
	struct buf st;
	buf_init(&st);
	jstate_format(c->kind, e, ne, &st);
	json_t *res = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:o}", "accountId",
	    q->account_id, "oldState", c->since, "newState", st.data,
	    "hasMoreChanges", cut_box < c->nb, "created", v.created, "updated",
	    v.updated, "destroyed", v.destroyed);
	buf_clear(&st);
	free(e);
	free(info);
	free(taken);
	jchanges_cont cont = c->cont;
	void *arg = c->cont_arg;
	echg_free(c);
	if (cont)
		cont(arg, res);
	else
		jq_reply(q, res);
}

static void changes_run(struct jreq *q, json_t *args, char kind, int tries,
    jchanges_cont cont, void *arg);

/* The jobs are back: if folders came or went meanwhile, the boxes
 * named by index are others now, and it starts again. */
static void
echg_ready(struct echg *c)
{
	struct jreq *q = c->q;

	/* a snapshot made again meanwhile may show expunges the jobs did
	 * not read: then too it starts again */
	bool same = c->gen == jacct_generation(q->acct);
	for (size_t i = 0; same && i < c->nb; i++) {
		const struct echg_box *eb = &c->b[i];
		uint64_t now = jacct_box(q->acct, eb->box)->s.modseq;
		if (eb->old && (eb->asked ? now > eb->job_modseq :
		    now != eb->old->modseq))
			same = false;
	}
	if (same) {
		echg_finish(c);
		return;
	}
	json_t *args = json_incref(c->args);
	char kind = c->kind;
	int tries = c->tries + 1;
	jchanges_cont cont = c->cont;
	void *arg = c->cont_arg;
	echg_free(c);
	if (tries < 5)
		changes_run(q, args, kind, tries, cont, arg);
	else {
		jq_error(q, "serverFail", "the folders keep changing");
		if (cont)
			cont(arg, NULL);
	}
	json_decref(args);
}

static void
expunges_done(void *arg)
{
	struct echg_box *eb = arg;
	struct echg *c = eb->c;

	if (--c->pending == 0)
		echg_ready(c);
}

/* maxChanges, or 0 after the error was sent */
static size_t
max_changes(struct jreq *q, json_t *args)
{
	json_t *v = json_object_get(args, "maxChanges");

	if (v && !json_is_null(v) && json_integer_value(v) <= 0) {
		jq_error(q, "invalidArguments", "maxChanges must be above 0");
		return 0;
	}
	if (v && !json_is_null(v) && json_integer_value(v) < MAX_CHANGES)
		return (size_t)json_integer_value(v);
	return MAX_CHANGES;
}

static const struct aspec changes_spec[] = { { "accountId", A_STR },
	{ "sinceState", A_STR }, { "maxChanges", A_ANY }, { NULL, A_ANY } };

static bool
changes_args(struct jreq *q, json_t *args)
{
	json_t *v = json_object_get(args, "maxChanges");

	if (!jq_check_args(q, args, changes_spec))
		return false;
	if (json_object_get(args, "sinceState") == NULL) {
		jq_error(q, "invalidArguments", "sinceState is required");
		return false;
	}
	if (v && !json_is_null(v) && !json_is_integer(v)) {
		jq_error(q, "invalidArguments", "maxChanges is not a number");
		return false;
	}
	return true;
}

/* Email/changes ('e') and Thread/changes ('t'); for cont, if not NULL */
static void
changes_run(struct jreq *q, json_t *args, char kind, int tries,
    jchanges_cont cont, void *arg)
{
	struct echg *c;
	size_t max;

	if (!changes_args(q, args) || (max = max_changes(q, args)) == 0) {
		if (cont)
			cont(arg, NULL);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->cont = cont;
	c->cont_arg = arg;
	c->q = q;
	c->max = max;
	c->kind = kind;
	c->args = json_incref(args);
	c->gen = jacct_generation(q->acct);
	c->tries = tries;
	c->since = xstrdup(json_string_value(json_object_get(args,
	    "sinceState")));
	if (jstate_parse(kind, c->since, &c->old, &c->nold) != 0) {
		echg_fail(c, "not a state of this server");
		return;
	}
	c->nb = jacct_nboxes(q->acct);
	c->b = xcalloc(c->nb + 1, sizeof(*c->b));
	for (size_t i = 0; i < c->nb; i++) {
		c->b[i].c = c;
		c->b[i].box = i;
		c->b[i].old = jstate_find(c->old, c->nold,
		    jacct_box(q->acct, i)->s.id);
	}
	qsort_r(c->b, c->nb, sizeof(*c->b), cmp_box_id, q->acct);
	/* every old folder must still be there: its messages are unknown */
	size_t found = 0;
	for (size_t i = 0; i < c->nb; i++) {
		const struct echg_box *eb = &c->b[i];
		const struct jsnap *s = &jacct_box(q->acct, eb->box)->s;
		if (eb->old == NULL)
			continue;
		found++;
		if (eb->old->modseq > s->modseq || eb->old->extra > s->uidnext) {
			echg_fail(c, "the folder's numbering is not as it was");
			return;
		}
	}
	if (found != c->nold) {
		echg_fail(c, "a folder of that state is gone");
		return;
	}
	c->pending = 1;
	for (size_t i = 0; i < c->nb; i++) {
		struct echg_box *eb = &c->b[i];
		if (eb->old == NULL ||
		    eb->old->modseq == jacct_box(q->acct, eb->box)->s.modseq)
			continue;
		c->pending++;
		eb->asked = true;
		jacct_box_run(q->acct, eb->box, expunges_work, expunges_done,
		    eb);
	}
	if (--c->pending == 0)
		echg_finish(c);
}

static void
email_changes(struct jreq *q, json_t *args)
{
	changes_run(q, args, 'e', 0, NULL, NULL);
}

static void
thread_changes(struct jreq *q, json_t *args)
{
	changes_run(q, args, 't', 0, NULL, NULL);
}

void
jchanges_email(struct jreq *q, const char *since, size_t max,
    jchanges_cont cont, void *arg)
{
	json_t *args = json_pack("{s:s,s:s,s:I}", "accountId", q->account_id,
	    "sinceState", since, "maxChanges", (json_int_t)max);

	changes_run(q, args, 'e', 0, cont, arg);
	json_decref(args);
}

/* --- Mailbox/changes ----------------------------------------------------- */

static const char *const count_props[] = { "totalEmails", "unreadEmails",
	"totalThreads", "unreadThreads", NULL };

static void
mailbox_changes(struct jreq *q, json_t *args)
{
	struct jstate_ent *old, *cur, *nw;
	size_t nold, ncur = jacct_nboxes(q->acct), nnew = 0, max;
	const char *since;

	if (!changes_args(q, args) || (max = max_changes(q, args)) == 0)
		return;
	since = json_string_value(json_object_get(args, "sinceState"));
	if (jstate_parse('m', since, &old, &nold) != 0) {
		jq_error(q, "cannotCalculateChanges",
		    "not a state of this server");
		return;
	}
	cur = xcalloc(ncur + 1, sizeof(*cur));
	for (size_t i = 0; i < ncur; i++) {
		const struct jbox *jb = jacct_box(q->acct, i);
		(void)str_fmt(cur[i].id, sizeof(cur[i].id), "%s", jb->s.id);
		cur[i].modseq = jb->s.modseq;
		cur[i].extra = jacct_box_names(jb);
	}
	struct buf scratch;
	buf_init(&scratch);
	jstate_format('m', cur, ncur, &scratch);    /* sorts cur */
	buf_clear(&scratch);
	/* both sorted by id: walked together, changes in id order */
	json_t *created = json_array(), *updated = json_array(),
	    *destroyed = json_array();
	bool names = false, more = false;
	size_t taken = 0, i = 0, k = 0;
	nw = xcalloc(nold + ncur + 1, sizeof(*nw));
	while (i < nold || k < ncur) {
		int c = i == nold ? 1 : k == ncur ? -1 :
		    strcmp(old[i].id, cur[k].id);
		bool same = c == 0 && old[i].modseq == cur[k].modseq &&
		    old[i].extra == cur[k].extra;
		if (!same && taken == max) {
			/* the rest as it was: for the next call */
			more = true;
			if (c <= 0)
				nw[nnew++] = old[i];
			i += c <= 0;
			k += c >= 0;
			continue;
		}
		if (c < 0) {
			json_array_append_new(destroyed, json_string(old[i].id));
			i++;
			taken++;
			continue;
		}
		nw[nnew++] = cur[k];
		if (c > 0)
			json_array_append_new(created, json_string(cur[k].id));
		else if (!same) {
			json_array_append_new(updated, json_string(cur[k].id));
			names |= old[i].extra != cur[k].extra;
		}
		taken += !same;
		i += c == 0;
		k++;
	}
	struct buf st;
	buf_init(&st);
	jstate_format('m', nw, nnew, &st);
	json_t *props = json_null();
	if (!names && json_array_size(updated) > 0) {
		props = json_array();
		for (const char *const *p = count_props; *p; p++)
			json_array_append_new(props, json_string(*p));
	}
	json_t *res = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:o,s:o}",
	    "accountId", q->account_id, "oldState", since, "newState",
	    st.data, "hasMoreChanges", more, "created", created, "updated",
	    updated, "destroyed", destroyed, "updatedProperties", props);
	buf_clear(&st);
	free(nw);
	free(cur);
	free(old);
	jq_reply(q, res);
}

/* Mailbox query states are not kept: a client queries again (RFC 8620
 * 5.6; the folder list is short). */
static void
query_changes(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "filter", A_OBJ_NULL }, { "sort", A_ARR_NULL },
		{ "sinceQueryState", A_STR }, { "maxChanges", A_ANY },
		{ "upToId", A_STR_NULL }, { "calculateTotal", A_BOOL },
		{ "collapseThreads", A_BOOL }, { NULL, A_ANY } };

	if (!jq_check_args(q, args, spec))
		return;
	jq_error(q, "cannotCalculateChanges",
	    "query results are not kept: query again");
}

const struct method jmap_changes_methods[] = {
	{ "Email/changes", CAP_MAIL, email_changes },
	{ "Mailbox/changes", CAP_MAIL, mailbox_changes },
	{ "Thread/changes", CAP_MAIL, thread_changes },
	{ "Mailbox/queryChanges", CAP_MAIL, query_changes },
	{ NULL, NULL, NULL },
};
