/* SPDX-License-Identifier: ISC */
/*
 * jmap_subrec.c - layer 3: EmailSubmission records (RFC 8621 7):
 * EmailSubmission/get, /query and /changes, and the jobs that keep and
 * read the records in the account's index (tindex_sub_*), which
 * jmap_submit.c's /set uses. A submission is final at once (the queue
 * has it), so a record never changes: it is made, and maybe destroyed.
 * Its deliveryStatus is null: the queue's per-recipient state is not
 * followed into it. The state is "u" and the highest sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/iopool.h"
#include "base/util.h"
#include "http/jmap_account.h"
#include "http/jmap_email.h"
#include "http/jmap_int.h"
#include "store/index.h"
#include "store/store.h"

static struct tindex *
index_of(struct jreq *q)
{
	return store_account_index(jacct_store_account(q->acct));
}

static void
job_work(void *arg)
{
	struct jsub_job *j = arg;

	memset(&j->err, 0, sizeof(j->err));
	switch (j->op) {
	case JSUB_ADD:
		j->rc = tindex_sub_add(j->x, j->id, j->obj, &j->err);
		break;
	case JSUB_REMOVE:
		j->rc = tindex_sub_remove(j->x, j->id, &j->found, &j->err);
		break;
	case JSUB_LIST:
		j->rc = tindex_subs(j->x, j->since, &j->rows, &j->n, &j->top,
		    &j->err);
		break;
	}
	if (j->op != JSUB_LIST && j->rc == 0) {
		/* the state after it */
		struct tindex_sub *r;
		size_t n;
		if (tindex_subs(j->x, INT64_MAX, &r, &n, &j->top, &j->err) == 0)
			tindex_subs_free(r, n);
	}
}

static void
job_done(void *arg)
{
	struct jsub_job *j = arg;

	j->done(j);
}

struct jsub_job *
jsub_job(struct jreq *q, enum jsub_op op, void (*done)(struct jsub_job *),
    void *arg)
{
	struct jsub_job *j = xcalloc(1, sizeof(*j));

	j->q = q;
	j->x = index_of(q);
	j->op = op;
	j->done = done;
	j->arg = arg;
	return j;
}

void
jsub_submit(struct jsub_job *j)
{
	iopool_submit(jacct_pool(j->q->acct), job_work, job_done, j);
}

void
jsub_job_free(struct jsub_job *j)
{
	tindex_subs_free(j->rows, j->n);
	free(j->id);
	free(j->obj);
	json_decref(j->args);
	free(j);
}

void
jsub_state(int64_t top, char out[24])
{
	(void)snprintf(out, 24, "u%lld", (long long)top);
}

/* "u<n>": n, or -1 */
static int64_t
state_seq(const char *s)
{
	char *end;
	long long v;

	if (s == NULL || s[0] != 'u' || s[1] < '0' || s[1] > '9')
		return -1;
	v = strtoll(s + 1, &end, 10);
	return *end == '\0' && v >= 0 ? v : -1;
}

/* --- EmailSubmission/get --------------------------------------------------- */

static const char *const sub_props[] = { "id", "identityId", "emailId",
	"threadId", "envelope", "sendAt", "undoStatus", "deliveryStatus",
	"dsnBlobIds", "mdnBlobIds", NULL };

static json_t *
row_object(const struct tindex_sub *r, json_t *props)
{
	json_t *all = json_loads(r->obj, 0, NULL), *o;
	size_t k;
	json_t *p;

	if (all == NULL)
		return NULL;
	if (!json_is_array(props))
		return all;
	o = json_pack("{s:s}", "id", r->id);
	json_array_foreach(props, k, p)
		if (json_object_get(all, json_string_value(p)))
			json_object_set(o, json_string_value(p),
			    json_object_get(all, json_string_value(p)));
	json_decref(all);
	return o;
}

static void
get_done(struct jsub_job *j)
{
	struct jreq *q = j->q;
	json_t *ids = json_object_get(j->args, "ids");
	json_t *props = json_object_get(j->args, "properties");
	json_t *list = json_array(), *nf = json_array(), *v, *o;
	char state[24];
	size_t k;

	if (j->rc != 0) {
		json_decref(list);
		json_decref(nf);
		jsub_job_free(j);
		jq_error(q, "serverFail", "the records cannot be read");
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		const struct tindex_sub *r = &j->rows[i];
		bool asked = !json_is_array(ids);
		json_array_foreach(ids, k, v)
			asked |= strcmp(json_string_value(v), r->id) == 0;
		if (!r->gone && asked && (o = row_object(r, props)))
			json_array_append_new(list, o);
	}
	json_array_foreach(ids, k, v) {
		bool found = false;
		for (size_t i = 0; i < j->n; i++)
			found |= !j->rows[i].gone &&
			    strcmp(j->rows[i].id, json_string_value(v)) == 0;
		if (!found)
			json_array_append(nf, v);
	}
	jsub_state(j->top, state);
	json_t *res = json_pack("{s:s,s:s,s:o,s:o}", "accountId", q->account_id,
	    "state", state, "list", list, "notFound", nf);
	jsub_job_free(j);
	jq_reply(q, res);
}

static void
submission_get(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ids", A_IDS_NULL }, { "properties", A_STRS_NULL },
		{ NULL, A_ANY } };

	if (!jq_check_args(q, args, spec) ||
	    !jq_props_known(q, json_object_get(args, "properties"), sub_props,
	    NULL))
		return;
	if (json_array_size(json_object_get(args, "ids")) >
	    MAX_OBJECTS_IN_GET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	struct jsub_job *j = jsub_job(q, JSUB_LIST, get_done, NULL);
	j->args = json_incref(args);
	jsub_submit(j);
}

/* --- EmailSubmission/changes ------------------------------------------------ */

static void
changes_done(struct jsub_job *j)
{
	struct jreq *q = j->q;
	json_t *created = json_array(), *destroyed = json_array(), *v;
	size_t max = SIZE_MAX, taken = 0;
	int64_t upto = j->since;
	char state[24];

	if (j->rc != 0) {
		json_decref(created);
		json_decref(destroyed);
		jsub_job_free(j);
		jq_error(q, "serverFail", "the records cannot be read");
		return;
	}
	if ((v = json_object_get(j->args, "maxChanges")) && json_is_integer(v))
		max = (size_t)json_integer_value(v);
	for (size_t i = 0; i < j->n && taken < max; i++, taken++) {
		json_array_append_new(j->rows[i].gone ? destroyed : created,
		    json_string(j->rows[i].id));
		upto = j->rows[i].seq;
	}
	jsub_state(taken == j->n ? j->top : upto, state);
	json_t *res = json_pack("{s:s,s:O,s:s,s:b,s:o,s:[],s:o}", "accountId",
	    q->account_id, "oldState", json_object_get(j->args, "sinceState"),
	    "newState", state, "hasMoreChanges", taken < j->n, "created",
	    created, "updated", "destroyed", destroyed);
	jsub_job_free(j);
	jq_reply(q, res);
}

static void
submission_changes(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "sinceState", A_STR }, { "maxChanges", A_ANY },
		{ NULL, A_ANY } };
	json_t *m = json_object_get(args, "maxChanges");
	int64_t since;

	if (!jq_check_args(q, args, spec))
		return;
	if (m && !json_is_null(m) && (!json_is_integer(m) ||
	    json_integer_value(m) <= 0)) {
		jq_error(q, "invalidArguments", "maxChanges must be above 0");
		return;
	}
	since = state_seq(json_string_value(json_object_get(args,
	    "sinceState")));
	if (since < 0) {
		jq_error(q, "cannotCalculateChanges", "not a state of this "
		    "server");
		return;
	}
	struct jsub_job *j = jsub_job(q, JSUB_LIST, changes_done, NULL);
	j->since = since;
	j->args = json_incref(args);
	jsub_submit(j);
}

/* --- EmailSubmission/query ------------------------------------------------- */

static bool
in_list(json_t *list, json_t *v)
{
	size_t k;
	json_t *x;

	if (!json_is_array(list))
		return true;
	json_array_foreach(list, k, x)
		if (json_equal(x, v))
			return true;
	return false;
}

struct qrow {
	json_t *o;
	const char *id;
};

static int
cmp_qrow(const void *a, const void *b, void *arg)
{
	const struct qrow *x = a, *y = b;
	json_t *sort = arg, *c;
	size_t i;

	json_array_foreach(sort, i, c) {
		const char *p = json_string_value(json_object_get(c, "property"));
		const char *k = strcmp(p, "sentAt") == 0 ? "sendAt" : p;
		int r = strcmp(json_string_value(json_object_get(x->o, k)),
		    json_string_value(json_object_get(y->o, k)));
		if (r)
			return json_is_false(json_object_get(c, "isAscending")) ?
			    -r : r;
	}
	return strcmp(x->id, y->id);
}

static void
query_done(struct jsub_job *j)
{
	struct jreq *q = j->q;
	json_t *f = json_object_get(j->args, "filter");
	json_t *sort = json_object_get(j->args, "sort"), *v;
	struct qrow *rows = xcalloc(j->n + 1, sizeof(*rows));
	size_t nr = 0;
	char state[24];

	for (size_t i = 0; j->rc == 0 && i < j->n; i++) {
		json_t *o = j->rows[i].gone ? NULL : json_loads(j->rows[i].obj,
		    0, NULL);
		const char *sa;
		if (o == NULL)
			continue;
		sa = json_string_value(json_object_get(o, "sendAt"));
		if (!in_list(json_object_get(f, "identityIds"),
		    json_object_get(o, "identityId")) ||
		    !in_list(json_object_get(f, "emailIds"),
		    json_object_get(o, "emailId")) ||
		    !in_list(json_object_get(f, "threadIds"),
		    json_object_get(o, "threadId")) ||
		    ((v = json_object_get(f, "undoStatus")) &&
		    !json_equal(v, json_object_get(o, "undoStatus"))) ||
		    ((v = json_object_get(f, "before")) && sa &&
		    strcmp(sa, json_string_value(v)) >= 0) ||
		    ((v = json_object_get(f, "after")) && sa &&
		    strcmp(sa, json_string_value(v)) < 0)) {
			json_decref(o);
			continue;
		}
		rows[nr].o = o;
		rows[nr++].id = j->rows[i].id;
	}
	json_t *none = json_array();
	qsort_r(rows, nr, sizeof(*rows), cmp_qrow, json_is_array(sort) ? sort :
	    none);
	json_decref(none);
	int64_t pos = (v = json_object_get(j->args, "position")) ?
	    json_integer_value(v) : 0;
	size_t limit = (v = json_object_get(j->args, "limit")) ?
	    (size_t)json_integer_value(v) : MAX_QUERY_LIMIT;
	if (pos < 0)
		pos = (int64_t)nr + pos < 0 ? 0 : (int64_t)nr + pos;
	if ((size_t)pos > nr)
		pos = (int64_t)nr;
	json_t *ids = json_array();
	for (size_t k = (size_t)pos; k < nr && k < (size_t)pos + limit; k++)
		json_array_append_new(ids, json_string(rows[k].id));
	for (size_t k = 0; k < nr; k++)
		json_decref(rows[k].o);
	free(rows);
	jsub_state(j->top, state);
	state[0] = 'q';
	json_t *res = json_pack("{s:s,s:s,s:b,s:I,s:o}", "accountId",
	    q->account_id, "queryState", state, "canCalculateChanges", 0,
	    "position", (json_int_t)pos, "ids", ids);
	if (json_is_true(json_object_get(j->args, "calculateTotal")))
		json_object_set_new(res, "total", json_integer((json_int_t)nr));
	int rc = j->rc;
	jsub_job_free(j);
	if (rc != 0) {
		json_decref(res);
		jq_error(q, "serverFail", "the records cannot be read");
		return;
	}
	jq_reply(q, res);
}

static void
submission_query(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "filter", A_OBJ_NULL }, { "sort", A_ARR_NULL },
		{ "position", A_INT }, { "anchor", A_STR_NULL },
		{ "anchorOffset", A_INT }, { "limit", A_UINT },
		{ "calculateTotal", A_BOOL }, { NULL, A_ANY } };
	json_t *f = json_object_get(args, "filter"), *v, *c;
	const char *k;
	size_t i;
	int64_t t;

	if (!jq_check_args(q, args, spec))
		return;
	if (json_object_get(args, "anchor") &&
	    !json_is_null(json_object_get(args, "anchor"))) {
		jq_error(q, "unsupportedFilter", "anchor is not supported here");
		return;
	}
	json_object_foreach(f, k, v) {
		bool list = strcmp(k, "identityIds") == 0 ||
		    strcmp(k, "emailIds") == 0 || strcmp(k, "threadIds") == 0;
		if (list ? !json_is_array(v) : strcmp(k, "undoStatus") == 0 ?
		    !json_is_string(v) : (strcmp(k, "before") == 0 ||
		    strcmp(k, "after") == 0) ? !json_is_string(v) ||
		    !jmap_parse_utc_date(json_string_value(v), &t) : true) {
			jq_error(q, list || !strcmp(k, "undoStatus") ||
			    !strcmp(k, "before") || !strcmp(k, "after") ?
			    "invalidArguments" : "unsupportedFilter", k);
			return;
		}
	}
	json_array_foreach(json_object_get(args, "sort"), i, c) {
		const char *p = json_string_value(json_object_get(c, "property"));
		if (p == NULL || (strcmp(p, "emailId") && strcmp(p, "threadId") &&
		    strcmp(p, "sentAt"))) {
			jq_error(q, "unsupportedSort", NULL);
			return;
		}
	}
	struct jsub_job *j = jsub_job(q, JSUB_LIST, query_done, NULL);
	j->args = json_incref(args);
	jsub_submit(j);
}

const struct method jmap_subrec_methods[] = {
	{ "EmailSubmission/get", CAP_SUBMISSION, submission_get },
	{ "EmailSubmission/changes", CAP_SUBMISSION, submission_changes },
	{ "EmailSubmission/query", CAP_SUBMISSION, submission_query },
	{ NULL, NULL, NULL },
};
