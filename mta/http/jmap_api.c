/* SPDX-License-Identifier: ISC */
/*
 * jmap_api.c - layer 3: JMAP requests and methods (jmap_api.h). A request
 * is parsed whole (jmap_req.c), the account refreshed once, then each
 * method call runs: its "#" arguments resolved against the responses so
 * far, its arguments checked (an unknown or mistyped one is
 * invalidArguments, RFC 8620 3.6.2), then the method, which answers at
 * once or after jobs on the folders (Email/get reading files); the next
 * call starts when it has answered. Snapshot pointers are never held
 * across a job: what a job needs is copied into it first.
 */
#include "http/jmap_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "base/iopool.h"
#include "base/metrics.h"
#include "http/jmap_account.h"
#include "store/blobs.h"
#include "http/jmap_body.h"
#include "http/jmap_email.h"
#include "http/jmap_int.h"
#include "http/jmap_req.h"
#include "imap/imap_utf7.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"
#include "store/mailbox.h"

void
jmap_account_id(const char *user, char out[20])
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)user; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	(void)snprintf(out, 20, "A%016llx", (unsigned long long)h);
}

json_t *
jmap_api_capabilities(void)
{
	return json_pack("{s:{s:I,s:i,s:I,s:i,s:i,s:i,s:i,s:[s]},s:{},s:{}}",
	    CAP_CORE, "maxSizeUpload", (json_int_t)MAX_SIZE_UPLOAD,
	    "maxConcurrentUpload", 4, "maxSizeRequest",
	    (json_int_t)MAX_SIZE_REQUEST, "maxConcurrentRequests", 4,
	    "maxCallsInRequest", JMAP_CALLS_MAX, "maxObjectsInGet",
	    MAX_OBJECTS_IN_GET, "maxObjectsInSet", MAX_OBJECTS_IN_SET,
	    "collationAlgorithms", "i;ascii-casemap", CAP_MAIL,
	    CAP_SUBMISSION);
}

json_t *
jmap_api_account_capabilities(void)
{
	return json_pack("{s:{s:n,s:n,s:i,s:I,s:[s,s,s,s,s,s,s,s,s],s:b},"
	    "s:{s:i,s:{s:[]}}}", CAP_MAIL,
	    "maxMailboxesPerEmail", "maxMailboxDepth", "maxSizeMailboxName",
	    255, "maxSizeAttachmentsPerEmail", (json_int_t)MAX_SIZE_UPLOAD,
	    "emailQuerySortOptions", "receivedAt", "sentAt", "size", "from",
	    "to", "subject", "hasKeyword", "someInThreadHaveKeyword",
	    "allInThreadHaveKeyword",
	    "mayCreateTopLevelMailbox", true, CAP_SUBMISSION,
	    "maxDelayedSend", 0, "submissionExtensions", "DSN");
}

/* --- answering ----------------------------------------------------------- */

static void run_next(struct jreq *q);

void
jq_push(struct jreq *q, const char *name, json_t *args)
{
	json_array_append_new(q->responses, json_pack("[s,o,s]", name, args,
	    q->call_id));
}

void
jq_answer(struct jreq *q, const char *name, json_t *args)
{
	json_array_append_new(q->responses, json_pack("[s,o,s]", name, args,
	    q->call_id));
	q->answered = true;
	if (q->call_method) {
		struct timespec t;
		char l[160];
		clock_gettime(CLOCK_MONOTONIC, &t);
		metrics_label(l, sizeof(l), "method", q->call_method);
		metrics_observe("tern_jmap_method_duration_seconds", l,
		    (double)(t.tv_sec - q->call_start.tv_sec) +
		    (double)(t.tv_nsec - q->call_start.tv_nsec) / 1e9);
	}
	if (!q->in_call)
		run_next(q);
}

void
jq_reply(struct jreq *q, json_t *args)
{
	jq_answer(q, q->call_name, args);
}

void
jq_error(struct jreq *q, const char *type, const char *desc)
{
	json_t *e = json_pack("{s:s}", "type", type);

	if (desc)
		json_object_set_new(e, "description", json_string(desc));
	jq_answer(q, "error", e);
}

static void
finish(struct jreq *q, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);

	metrics_add("tern_jmap_requests_total", status == 200 ?
	    "result=\"ok\"" : "result=\"error\"", 1);
	json_decref(body);
	q->done(q->arg, status, text ? text : "{}", text ? strlen(text) : 2);
	free(text);
	json_decref(q->responses);
	json_decref(q->created);
	jmap_request_clear(&q->r);
	jacct_close(q->acct);
	free(q);
}

static json_t *
problem(const char *type, int status, const char *detail)
{
	return json_pack("{s:s,s:i,s:s}", "type", type, "status", status,
	    "detail", detail);
}

/* --- argument checking --------------------------------------------------- */

static bool
type_ok(json_t *v, enum atype t)
{
	size_t i;
	json_t *x;

	switch (t) {
	case A_ANY: return true;
	case A_STR: return json_is_string(v);
	case A_STR_NULL: return json_is_string(v) || json_is_null(v);
	case A_BOOL: return json_is_boolean(v);
	case A_INT: return json_is_integer(v);
	case A_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case A_OBJ_NULL: return json_is_object(v) || json_is_null(v);
	case A_ARR_NULL: return json_is_array(v) || json_is_null(v);
	case A_IDS_NULL:
	case A_STRS_NULL:
		if (json_is_null(v))
			return true;
		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, x)
			if (!json_is_string(x) || (t == A_IDS_NULL &&
			    !jmap_is_id(json_string_value(x) +
			    (json_string_value(x)[0] == '#'))))
				return false;
		return true;
	}
	return false;
}

/*
 * Every argument known and of its type, accountId ours: else the error
 * is sent and false returned.
 */
bool
jq_check_args(struct jreq *q, json_t *args, const struct aspec *spec)
{
	const char *k;
	json_t *v;
	char d[200];

	json_object_foreach(args, k, v) {
		const struct aspec *s = spec;
		while (s->name && strcmp(s->name, k) != 0)
			s++;
		if (s->name == NULL) {
			(void)snprintf(d, sizeof(d), "unknown argument '%.64s'", k);
			jq_error(q, "invalidArguments", d);
			return false;
		}
		if (!type_ok(v, s->type)) {
			(void)snprintf(d, sizeof(d), "argument '%.64s' has the "
			    "wrong type", k);
			jq_error(q, "invalidArguments", d);
			return false;
		}
	}
	for (const struct aspec *s = spec; s->name; s++)
		if (strcmp(s->name, "accountId") == 0) {
			v = json_object_get(args, "accountId");
			if (v == NULL) {
				jq_error(q, "invalidArguments", "accountId is "
				    "required");
				return false;
			}
			if (strcmp(json_string_value(v), q->account_id) != 0) {
				jq_error(q, "accountNotFound", NULL);
				return false;
			}
		}
	return true;
}

const char *
jq_id(struct jreq *q, const char *id)
{
	if (id[0] != '#')
		return id;
	return json_string_value(json_object_get(q->created, id + 1));
}

void
jq_created(struct jreq *q, const char *cid, const char *id)
{
	json_object_set_new(q->created, cid, json_string(id));
}

void
jq_setres_init(struct jq_setres *r)
{
	r->created = json_object();
	r->updated = json_object();
	r->destroyed = json_array();
	r->not_created = json_object();
	r->not_updated = json_object();
	r->not_destroyed = json_object();
}

void
jq_setres_created(struct jq_setres *r, const char *key, json_t *err,
    json_t *obj)
{
	if (err)
		json_object_set(r->not_created, key, err);
	else
		json_object_set_new(r->created, key, obj);
}

void
jq_setres_updated(struct jq_setres *r, const char *key, json_t *err)
{
	if (err)
		json_object_set(r->not_updated, key, err);
	else
		json_object_set_new(r->updated, key, json_null());
}

void
jq_setres_destroyed(struct jq_setres *r, const char *key, json_t *err)
{
	if (err)
		json_object_set(r->not_destroyed, key, err);
	else
		json_array_append_new(r->destroyed, json_string(key));
}

static void
put_or_null(json_t *res, const char *key, json_t *v, size_t n)
{
	if (n)
		json_object_set_new(res, key, v);
	else {
		json_decref(v);
		json_object_set_new(res, key, json_null());
	}
}

json_t *
jq_setres_finish(struct jreq *q, struct jq_setres *r, const char *old_state,
    const char *new_state)
{
	json_t *res = json_pack("{s:s,s:s,s:s}", "accountId", q->account_id,
	    "oldState", old_state, "newState", new_state);

	put_or_null(res, "created", r->created, json_object_size(r->created));
	put_or_null(res, "updated", r->updated, json_object_size(r->updated));
	put_or_null(res, "destroyed", r->destroyed,
	    json_array_size(r->destroyed));
	put_or_null(res, "notCreated", r->not_created,
	    json_object_size(r->not_created));
	put_or_null(res, "notUpdated", r->not_updated,
	    json_object_size(r->not_updated));
	put_or_null(res, "notDestroyed", r->not_destroyed,
	    json_object_size(r->not_destroyed));
	return res;
}

json_t *
jq_set_error(const char *type, const char *desc, const char *prop)
{
	json_t *e = json_pack("{s:s}", "type", type);

	if (desc)
		json_object_set_new(e, "description", json_string(desc));
	if (prop)
		json_object_set_new(e, "properties", json_pack("[s]", prop));
	return e;
}

/* --- Core/echo ----------------------------------------------------------- */

static void
core_echo(struct jreq *q, json_t *args)
{
	jq_reply(q, json_incref(args));
}

/* --- Mailbox/get (RFC 8621 2.1) ------------------------------------------ */

static json_t *
mailbox_object(struct jacct *a, size_t i, json_t *props)
{
	struct jbox *jb = jacct_box(a, i);
	json_t *o = json_object();
	const char *slash = strrchr(jb->name, '/');
	struct buf name;
	ssize_t parent = -1;

	buf_init(&name);
	if (imap_utf7_to_utf8(slash ? slash + 1 : jb->name, &name) != 0) {
		buf_reset(&name);
		buf_append_str(&name, slash ? slash + 1 : jb->name);
	}
	if (strcmp(jb->name, "INBOX") == 0) {
		buf_reset(&name);
		buf_append_str(&name, "Inbox");
	}
	if (slash) {
		char *p = xstrndup(jb->name, (size_t)(slash - jb->name));
		parent = jacct_box_by_name(a, p);
		free(p);
	}
	json_object_set_new(o, "id", json_string(jb->s.id));
	json_object_set_new(o, "name", jmap_string(name.data ? name.data : "",
	    name.len));
	json_object_set_new(o, "parentId", parent >= 0 ?
	    json_string(jacct_box(a, (size_t)parent)->s.id) : json_null());
	json_object_set_new(o, "role", jb->role ? json_string(jb->role) :
	    json_null());
	json_object_set_new(o, "sortOrder", json_integer(jb->role &&
	    strcmp(jb->role, "inbox") == 0 ? 0 : jb->role ? 1 : 10));
	json_object_set_new(o, "totalEmails", json_integer((json_int_t)jb->s.n));
	json_object_set_new(o, "unreadEmails", json_integer(jb->s.unread));
	json_object_set_new(o, "totalThreads",
	    json_integer((json_int_t)jb->s.threads));
	json_object_set_new(o, "unreadThreads",
	    json_integer((json_int_t)jb->s.unread_threads));
	json_object_set_new(o, "myRights", json_pack("{s:b,s:b,s:b,s:b,s:b,"
	    "s:b,s:b,s:b,s:b}", "mayReadItems", 1, "mayAddItems", 1,
	    "mayRemoveItems", 1, "maySetSeen", 1, "maySetKeywords", 1,
	    "mayCreateChild", 1, "mayRename", jb->role == NULL, "mayDelete",
	    jb->role == NULL, "maySubmit", 1));
	json_object_set_new(o, "isSubscribed", json_boolean(jb->subscribed));
	buf_clear(&name);
	if (json_is_array(props)) {
		json_t *f = json_object();
		size_t k;
		json_t *p;
		json_object_set(f, "id", json_object_get(o, "id"));
		json_array_foreach(props, k, p) {
			json_t *v = json_object_get(o, json_string_value(p));
			if (v)
				json_object_set(f, json_string_value(p), v);
		}
		json_decref(o);
		return f;
	}
	return o;
}

static const char *const mailbox_props[] = { "id", "name", "parentId",
	"role", "sortOrder", "totalEmails", "unreadEmails", "totalThreads",
	"unreadThreads", "myRights", "isSubscribed", NULL };

bool
jq_props_known(struct jreq *q, json_t *props, const char *const *known,
    unsigned (*extra)(const char *))
{
	size_t i;
	json_t *p;

	if (!json_is_array(props))
		return true;
	json_array_foreach(props, i, p) {
		const char *n = json_string_value(p);
		const char *const *k = known;
		while (*k && strcmp(*k, n) != 0)
			k++;
		if (*k == NULL && !(extra && extra(n))) {
			char d[200];
			(void)snprintf(d, sizeof(d), "unknown property "
			    "'%.64s'", n);
			jq_error(q, "invalidArguments", d);
			return false;
		}
	}
	return true;
}

static void
mailbox_get(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ids", A_IDS_NULL }, { "properties", A_STRS_NULL },
		{ NULL, A_ANY } };
	json_t *ids, *props, *list, *nf, *v;
	size_t k;

	if (!jq_check_args(q, args, spec))
		return;
	ids = json_object_get(args, "ids");
	props = json_object_get(args, "properties");
	if (!jq_props_known(q, props, mailbox_props, NULL))
		return;
	list = json_array();
	nf = json_array();
	if (json_is_array(ids)) {
		if (json_array_size(ids) > MAX_OBJECTS_IN_GET) {
			json_decref(list);
			json_decref(nf);
			jq_error(q, "requestTooLarge", NULL);
			return;
		}
		json_array_foreach(ids, k, v) {
			ssize_t b = jacct_box_by_id(q->acct,
			    json_string_value(v));
			if (b < 0)
				json_array_append(nf, v);
			else
				json_array_append_new(list, mailbox_object(
				    q->acct, (size_t)b, props));
		}
	} else
		for (size_t b = 0; b < jacct_nboxes(q->acct); b++)
			json_array_append_new(list, mailbox_object(q->acct, b,
			    props));
	char *state = jacct_mailbox_state(q->acct);
	jq_reply(q, json_pack("{s:s,s:s,s:o,s:o}", "accountId", q->account_id,
	    "state", state, "list", list, "notFound", nf));
	free(state);
}

/* --- Mailbox/query (RFC 8621 2.3) ---------------------------------------- */

/* A Mailbox object against a filter (FilterOperator or condition):
 * 1, 0, or -1 and *err for a filter that is not one. */
static int
mbox_match(json_t *o, json_t *f, int depth, const char **err)
{
	const char *k;
	json_t *v;

	if (!json_is_object(f) || depth > 10) {
		*err = "invalidArguments";
		return -1;
	}
	json_t *op = json_object_get(f, "operator");
	if (op) {
		json_t *conds = json_object_get(f, "conditions"), *c;
		const char *ops = json_string_value(op);
		size_t i;
		int any = 0, all = 1;
		if (!ops || !json_is_array(conds) || json_object_size(f) != 2 ||
		    (strcmp(ops, "AND") && strcmp(ops, "OR") &&
		    strcmp(ops, "NOT"))) {
			*err = "invalidArguments";
			return -1;
		}
		json_array_foreach(conds, i, c) {
			int r = mbox_match(o, c, depth + 1, err);
			if (r < 0)
				return -1;
			any |= r;
			all &= r;
		}
		return ops[0] == 'A' ? all : ops[0] == 'O' ? any : !any;
	}
	json_object_foreach(f, k, v) {
		json_t *have = json_object_get(o, k);
		if (strcmp(k, "parentId") == 0 || strcmp(k, "role") == 0) {
			if (!json_is_null(v) && !json_is_string(v)) {
				*err = "invalidArguments";
				return -1;
			}
			if (json_is_null(v) ? !json_is_null(have) :
			    !json_is_string(have) || strcmp(json_string_value(v),
			    json_string_value(have)) != 0)
				return 0;
		} else if (strcmp(k, "name") == 0) {
			if (!json_is_string(v)) {
				*err = "invalidArguments";
				return -1;
			}
			if (!strstr(json_string_value(have), json_string_value(v)))
				return 0;
		} else if (strcmp(k, "hasAnyRole") == 0 ||
		    strcmp(k, "isSubscribed") == 0) {
			if (!json_is_boolean(v)) {
				*err = "invalidArguments";
				return -1;
			}
			bool b = k[0] == 'h' ? !json_is_null(json_object_get(o,
			    "role")) : json_is_true(have);
			if (b != json_is_true(v))
				return 0;
		} else {
			*err = "unsupportedFilter";
			return -1;
		}
	}
	return 1;
}

struct mbhit {
	size_t box;
	json_t *o;
	char *path;               /* the names from the top, for the tree */
};

static int
cmp_mbhit(const void *x, const void *y, void *arg)
{
	const struct mbhit *a = x, *b = y;
	json_t *sort = arg, *c;
	size_t i;

	json_array_foreach(sort, i, c) {
		const char *p = json_string_value(json_object_get(c, "property"));
		bool asc = !json_is_false(json_object_get(c, "isAscending"));
		int r = 0;
		if (strcmp(p, "sortOrder") == 0) {
			json_int_t m = json_integer_value(json_object_get(a->o,
			    "sortOrder")), n = json_integer_value(
			    json_object_get(b->o, "sortOrder"));
			r = (m > n) - (m < n);
		} else
			r = strcmp(json_string_value(json_object_get(a->o,
			    "name")), json_string_value(json_object_get(b->o,
			    "name")));
		if (r)
			return asc ? r : -r;
	}
	return strcmp(a->path, b->path);
}

static void
mailbox_query(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "filter", A_OBJ_NULL }, { "sort", A_ARR_NULL },
		{ "position", A_INT }, { "anchor", A_STR_NULL },
		{ "anchorOffset", A_INT }, { "limit", A_UINT },
		{ "calculateTotal", A_BOOL }, { "sortAsTree", A_BOOL },
		{ "filterAsTree", A_BOOL }, { NULL, A_ANY } };
	json_t *filter = json_object_get(args, "filter");
	json_t *sort = json_object_get(args, "sort"), *c, *v;
	size_t n = jacct_nboxes(q->acct), nh = 0, i;
	const char *err = NULL;
	char state[32];

	if (!jq_check_args(q, args, spec))
		return;
	json_array_foreach(sort, i, c) {
		const char *p = json_string_value(json_object_get(c, "property"));
		if (!json_is_object(c) || p == NULL) {
			jq_error(q, "invalidArguments", NULL);
			return;
		}
		if (strcmp(p, "sortOrder") && strcmp(p, "name")) {
			jq_error(q, "unsupportedSort", NULL);
			return;
		}
	}
	struct mbhit *h = xcalloc(n + 1, sizeof(*h));
	for (size_t b = 0; b < n; b++) {
		json_t *o = mailbox_object(q->acct, b, NULL);
		int r = json_is_object(filter) ? mbox_match(o, filter, 0, &err) :
		    1;
		if (r < 0) {
			json_decref(o);
			break;
		}
		/* filterAsTree: a child of a Mailbox left out is left out */
		if (r == 1 && json_is_true(json_object_get(args,
		    "filterAsTree"))) {
			ssize_t pb = json_is_string(json_object_get(o,
			    "parentId")) ? jacct_box_by_id(q->acct,
			    json_string_value(json_object_get(o, "parentId"))) :
			    -1;
			for (int up = 0; r == 1 && pb >= 0 && up < 64; up++) {
				json_t *po = mailbox_object(q->acct, (size_t)pb,
				    NULL);
				json_t *pp = json_object_get(po, "parentId");
				r = mbox_match(po, filter, 0, &err);
				pb = json_is_string(pp) ? jacct_box_by_id(q->acct,
				    json_string_value(pp)) : -1;
				json_decref(po);
			}
		}
		if (r == 1) {
			h[nh].box = b;
			h[nh].o = o;
			h[nh++].path = xstrdup(jacct_box(q->acct, b)->name);
		} else
			json_decref(o);
	}
	if (err == NULL) {
		/* sortAsTree: the path first, a parent before its children */
		json_t *tree = json_array();
		if (json_is_true(json_object_get(args, "sortAsTree")))
			qsort_r(h, nh, sizeof(*h), cmp_mbhit, tree);
		else
			qsort_r(h, nh, sizeof(*h), cmp_mbhit, json_is_array(sort) ?
			    sort : tree);
		json_decref(tree);
	}
	json_t *ids = json_array();
	int64_t pos = (v = json_object_get(args, "position")) ?
	    json_integer_value(v) : 0;
	size_t limit = (v = json_object_get(args, "limit")) ?
	    (size_t)json_integer_value(v) : n;
	const char *anchor = json_string_value(json_object_get(args, "anchor"));
	if (anchor) {
		size_t k = 0;
		while (k < nh && strcmp(json_string_value(json_object_get(
		    h[k].o, "id")), anchor) != 0)
			k++;
		if (k == nh && err == NULL)
			err = "anchorNotFound";
		pos = (int64_t)k + ((v = json_object_get(args, "anchorOffset")) ?
		    json_integer_value(v) : 0);
	}
	if (pos < 0)
		pos = (int64_t)nh + pos < 0 ? 0 : (int64_t)nh + pos;
	for (size_t k = (size_t)pos; k < nh && k < (size_t)pos + limit; k++)
		json_array_append(ids, json_object_get(h[k].o, "id"));
	for (size_t k = 0; k < nh; k++) {
		json_decref(h[k].o);
		free(h[k].path);
	}
	free(h);
	if (err) {
		json_decref(ids);
		jq_error(q, err, NULL);
		return;
	}
	/* a short hash of the Mailbox state: no query is kept */
	char *ms = jacct_mailbox_state(q->acct);
	uint64_t hs = 14695981039346656037ull;
	for (const char *p = ms; *p; p++)
		hs = (hs ^ (unsigned char)*p) * 1099511628211ull;
	(void)snprintf(state, sizeof(state), "q%016llx", (unsigned long long)hs);
	free(ms);
	json_t *res = json_pack("{s:s,s:s,s:b,s:I,s:o}", "accountId",
	    q->account_id, "queryState", state, "canCalculateChanges", 0,
	    "position", (json_int_t)(pos > (int64_t)nh ? (int64_t)nh : pos),
	    "ids", ids);
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(res, "total", json_integer((json_int_t)nh));
	jq_reply(q, res);
}

/* --- keywords ----------------------------------------------------------- */

/* A keyword's name as IMAP keeps it ("$seen" is the flag \Seen). */
static const struct {
	const char *kw;
	uint8_t flag;
} sys_kw[] = {
	{ "$seen", MBOX_SEEN }, { "$answered", MBOX_ANSWERED },
	{ "$flagged", MBOX_FLAGGED }, { "$draft", MBOX_DRAFT },
	{ "$forwarded", MBOX_FORWARDED },
};

uint8_t
jq_sys_flag(const char *kw)
{
	for (size_t i = 0; i < sizeof(sys_kw) / sizeof(sys_kw[0]); i++)
		if (ascii_strcaseeq(kw, sys_kw[i].kw))
			return sys_kw[i].flag;
	return 0;
}

/* --- Email/get (RFC 8621 4.2) -------------------------------------------- */

static const char *const email_default[] = { "id", "blobId", "threadId",
	"mailboxIds", "keywords", "size", "receivedAt", "messageId",
	"inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
	"replyTo", "subject", "sentAt", "hasAttachment", "preview",
	"bodyValues", "textBody", "htmlBody", "attachments", NULL };

/* One message to read in a folder's job. */
struct eitem {
	uint32_t uid;
	char id[SORT_ID_LEN];
	json_t *obj;              /* filled by the job */
};

struct egroup {
	struct eget *g;
	struct eitem *it;
	size_t n;
	unsigned want;
	unsigned bwant;           /* JB_ bits */
	struct jmap_body_opts opts;
	json_t *hprops;           /* header:... properties (borrowed) */
	bool thread;
	bool size;                /* count the CRLF size where not known */
};

struct eget {
	struct jreq *q;
	json_t *list;             /* objects in the order asked */
	json_t *nf;
	size_t pending;
	json_t *props;
	json_t *bprops, *hprops;  /* held for the jobs */
};

static bool
eget_work(struct mbox *mb, void *arg)
{
	struct egroup *gr = arg;
	struct buf b;
	struct tern_err err;

	buf_init(&b);
	for (size_t k = 0; k < gr->n; k++) {
		ssize_t i = mbox_find_uid(mb, gr->it[k].uid);
		if (i < 0)
			continue;          /* gone since: left as it is */
		if (gr->thread) {
			char tid[SORT_ID_LEN];
			sort_thread_id(mbox_sort_keys(mb, (size_t)i),
			    mb->m[i].base, tid);
			json_object_set_new(gr->it[k].obj, "threadId",
			    json_string(tid));
		}
		struct mbox_msg *m = &mb->m[i];
		bool count = gr->size && m->vsize == 0;
		bool hdrs = json_array_size(gr->hprops) > 0;
		if (gr->want == 0 && gr->bwant == 0 && !hdrs && !count)
			continue;
		buf_reset(&b);
		memset(&err, 0, sizeof(err));
		int rc = count || gr->bwant ||
		    (gr->want & (JE_HAS_ATTACHMENT | JE_PREVIEW)) ?
		    mbox_read(mb, (size_t)i, &b, MAX_SIZE_UPLOAD, &err) :
		    mbox_read_head(mb, (size_t)i, &b, HEAD_READ_MAX, &err);
		if (rc != 0)
			continue;
		if (count) {
			m->vsize = mime_crlf_size(b.data ? b.data : "", b.len);
			m->dirty = mb->dirty = true;     /* the index keeps it */
		}
		if (gr->size)
			json_object_set_new(gr->it[k].obj, "size",
			    json_integer((json_int_t)m->vsize));
		const char *msg = b.data ? b.data : "";
		jmap_email_props(gr->it[k].obj, msg, b.len, gr->want);
		if (hdrs) {
			size_t hl = message_header_len(msg, b.len), h;
			json_t *hp;
			json_array_foreach(gr->hprops, h, hp)
				jmap_header_prop(gr->it[k].obj,
				    json_string_value(hp), msg, hl);
		}
		if (gr->bwant) {
			struct jmap_body_opts o = gr->opts;
			o.email_id = gr->it[k].id;
			jmap_email_body(gr->it[k].obj, msg, b.len, gr->bwant,
			    &o);
		}
	}
	buf_clear(&b);
	return false;
}

static void
eget_finish(struct eget *g)
{
	struct jreq *q = g->q;

	char *state = jacct_email_state(q->acct);
	json_t *res = json_pack("{s:s,s:s,s:o,s:o}", "accountId",
	    q->account_id, "state", state, "list", g->list, "notFound", g->nf);
	free(state);
	json_decref(g->bprops);
	json_decref(g->hprops);
	free(g);
	jq_reply(q, res);
}

static void
eget_done(void *arg)
{
	struct egroup *gr = arg;
	struct eget *g = gr->g;

	free(gr->it);
	free(gr);
	if (--g->pending == 0)
		eget_finish(g);
}

bool
jq_want_prop(json_t *props, const char *name)
{
	size_t i;
	json_t *p;

	if (!json_is_array(props))
		return true;
	json_array_foreach(props, i, p)
		if (strcmp(json_string_value(p), name) == 0)
			return true;
	return false;
}

static unsigned
email_file_prop(const char *name)
{
	return jmap_email_prop_bit(name);
}

/* Email properties beyond the list: body ones and header:... forms. */
static unsigned
email_extra_prop(const char *name)
{
	return jmap_body_prop_bit(name) || jmap_header_prop_valid(name);
}

/* The keywords object of a copy: system flags and the folder's keywords. */
static json_t *
keywords_object(const struct jbox *jb, const struct jsnap_msg *m)
{
	json_t *o = json_object();

	for (size_t i = 0; i < sizeof(sys_kw) / sizeof(sys_kw[0]); i++)
		if (m->flags & sys_kw[i].flag)
			json_object_set_new(o, sys_kw[i].kw, json_true());
	for (size_t i = 0; i < jb->s.nkw; i++)
		if (jb->s.kw[i] && (m->kw & (1u << i))) {
			/* keywords are case-insensitive: JMAP's lower case */
			char *l = xstrdup(jb->s.kw[i]);
			ascii_lower(l);
			json_object_set_new(o, l, json_true());
			free(l);
		}
	return o;
}

static void
email_get(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ids", A_IDS_NULL }, { "properties", A_STRS_NULL },
		{ "bodyProperties", A_STRS_NULL },
		{ "fetchTextBodyValues", A_BOOL },
		{ "fetchHTMLBodyValues", A_BOOL },
		{ "fetchAllBodyValues", A_BOOL },
		{ "maxBodyValueBytes", A_UINT }, { NULL, A_ANY } };
	json_t *ids, *props, *v;
	size_t k, nboxes = jacct_nboxes(q->acct);
	unsigned want = 0;

	if (!jq_check_args(q, args, spec))
		return;
	ids = json_object_get(args, "ids");
	props = json_object_get(args, "properties");
	if (!jq_props_known(q, props, email_default, email_extra_prop))
		return;
	json_t *bprops = json_object_get(args, "bodyProperties");
	if (json_is_array(bprops)) {
		json_array_foreach(bprops, k, v)
			if (!jmap_body_prop_known(json_string_value(v))) {
				jq_error(q, "invalidArguments", "unknown body "
				    "property");
				return;
			}
	} else
		bprops = NULL;
	unsigned bwant = 0;
	json_t *hprops = json_array();
	if (!json_is_array(props)) {
		props = json_array();
		for (const char *const *p = email_default; *p; p++)
			json_array_append_new(props, json_string(*p));
	} else
		json_incref(props);
	json_array_foreach(props, k, v) {
		const char *n = json_string_value(v);
		want |= email_file_prop(n);
		bwant |= jmap_body_prop_bit(n);
		if (strncmp(n, "header:", 7) == 0)
			json_array_append(hprops, v);
	}
	struct jmap_body_opts bopts = { NULL, bprops,
		json_is_true(json_object_get(args, "fetchTextBodyValues")),
		json_is_true(json_object_get(args, "fetchHTMLBodyValues")),
		json_is_true(json_object_get(args, "fetchAllBodyValues")),
		(size_t)json_integer_value(json_object_get(args,
		    "maxBodyValueBytes")) };
	bool thread = jq_want_prop(props, "threadId");
	bool size = jq_want_prop(props, "size");
	if (!json_is_array(ids)) {
		size_t n;
		const struct jloc *l = jacct_all(q->acct, &n);
		if (n > MAX_OBJECTS_IN_GET) {
			json_decref(props);
			json_decref(hprops);
			jq_error(q, "requestTooLarge", NULL);
			return;
		}
		ids = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(ids, json_string(l[i].id));
	} else {
		if (json_array_size(ids) > MAX_OBJECTS_IN_GET) {
			json_decref(props);
			json_decref(hprops);
			jq_error(q, "requestTooLarge", NULL);
			return;
		}
		json_incref(ids);
	}
	struct eget *g = xcalloc(1, sizeof(*g));
	struct egroup **groups = xcalloc(nboxes + 1, sizeof(*groups));
	g->q = q;
	g->bprops = json_incref(bprops);
	g->hprops = hprops;
	g->list = json_array();
	g->nf = json_array();
	json_array_foreach(ids, k, v) {
		size_t n = 0;
		const char *id = jq_id(q, json_string_value(v));
		const struct jloc *l = id ? jacct_find(q->acct, id, &n) : NULL;
		if (l == NULL) {
			json_array_append(g->nf, v);
			continue;
		}
		const struct jbox *jb = jacct_box(q->acct, l[0].box);
		const struct jsnap_msg *m = &jb->s.m[l[0].idx];
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(id));
		if (jq_want_prop(props, "blobId")) {
			char blob[SORT_ID_LEN + 2];
			(void)snprintf(blob, sizeof(blob), "m%s", id);
			json_object_set_new(o, "blobId", json_string(blob));
		}
		if (jq_want_prop(props, "mailboxIds")) {
			json_t *mb = json_object();
			for (size_t i = 0; i < n; i++)
				json_object_set_new(mb, jacct_box(q->acct,
				    l[i].box)->s.id, json_true());
			json_object_set_new(o, "mailboxIds", mb);
		}
		if (jq_want_prop(props, "keywords"))
			json_object_set_new(o, "keywords", keywords_object(jb,
			    m));
		if (jq_want_prop(props, "size"))
			json_object_set_new(o, "size",
			    json_integer((json_int_t)m->size));
		if (jq_want_prop(props, "receivedAt")) {
			char d[21];
			jmap_utc_date(m->received, d);
			json_object_set_new(o, "receivedAt", json_string(d));
		}
		json_array_append_new(g->list, o);
		if (want == 0 && bwant == 0 && json_array_size(hprops) == 0 &&
		    !thread && !size)
			continue;
		struct egroup *gr = groups[l[0].box];
		if (gr == NULL) {
			gr = groups[l[0].box] = xcalloc(1, sizeof(*gr));
			gr->g = g;
			gr->want = want;
			gr->bwant = bwant;
			gr->opts = bopts;
			gr->hprops = hprops;
			gr->thread = thread;
			gr->size = size;
			gr->it = xcalloc(json_array_size(ids), sizeof(*gr->it));
		}
		gr->it[gr->n].uid = m->uid;
		(void)str_copy(gr->it[gr->n].id, sizeof(gr->it[gr->n].id), id);
		gr->it[gr->n].obj = o;     /* borrowed: g->list holds it */
		gr->n++;
	}
	json_decref(ids);
	json_decref(props);
	g->pending = 1;                    /* until every job is out */
	for (size_t b = 0; b < nboxes; b++)
		if (groups[b]) {
			g->pending++;
			jacct_box_run(q->acct, b, eget_work, eget_done,
			    groups[b]);
		}
	free(groups);
	if (--g->pending == 0)
		eget_finish(g);
}

/* --- Email/parse (RFC 8621 4.9) ------------------------------------------ */

static const char *const parse_default[] = { "messageId", "inReplyTo",
	"references", "sender", "from", "to", "cc", "bcc", "replyTo",
	"subject", "sentAt", "hasAttachment", "preview", "bodyValues",
	"textBody", "htmlBody", "attachments", NULL };

struct eparse;

struct pblob {
	struct eparse *p;
	char id[JMAP_BLOB_LEN + JMAP_PART_LEN + 2];
	char part[JMAP_PART_LEN];
	uint32_t uid;
	char *root;
	struct buf data;
	int rc;
};

struct eparse {
	struct jreq *q;
	json_t *props, *hprops, *bprops;
	unsigned want, bwant;
	struct jmap_body_opts opts;
	json_t *parsed, *unparsable, *nf;
	size_t pending;
};

static void
pblob_upload_work(void *arg)
{
	struct pblob *b = arg;

	b->rc = blob_read(b->root, b->id, &b->data, MAX_SIZE_UPLOAD);
}

static bool
pblob_box_work(struct mbox *mb, void *arg)
{
	struct pblob *b = arg;
	ssize_t i = mbox_find_uid(mb, b->uid);
	struct tern_err err;
	struct buf lf;
	char type[130];

	b->rc = -1;
	if (i < 0)
		return false;
	buf_init(&lf);
	memset(&err, 0, sizeof(err));
	if (mbox_read(mb, (size_t)i, &lf, MAX_SIZE_UPLOAD, &err) == 0) {
		if (b->part[0] == '\0') {
			buf_append(&b->data, lf.data ? lf.data : "", lf.len);
			b->rc = 0;
		} else
			b->rc = jmap_part_data(lf.data ? lf.data : "", lf.len,
			    b->part, &b->data, type, sizeof(type));
	}
	buf_clear(&lf);
	return false;
}

static void
eparse_finish(struct eparse *p)
{
	struct jreq *q = p->q;
	json_t *res = json_pack("{s:s,s:o,s:o,s:o}", "accountId",
	    q->account_id,
	    "parsed", json_object_size(p->parsed) ? json_incref(p->parsed) :
	    json_null(),
	    "notParsable", json_array_size(p->unparsable) ?
	    json_incref(p->unparsable) : json_null(),
	    "notFound", json_array_size(p->nf) ? json_incref(p->nf) :
	    json_null());

	json_decref(p->parsed);
	json_decref(p->unparsable);
	json_decref(p->nf);
	json_decref(p->props);
	json_decref(p->hprops);
	json_decref(p->bprops);
	free(p);
	jq_reply(q, res);
}

/* On the loop: the blob's octets made an Email, if they are one. */
static void
pblob_done(void *arg)
{
	struct pblob *b = arg;
	struct eparse *p = b->p;
	struct buf lf;
	struct message_field f;
	size_t pos = 0;

	buf_init(&lf);
	for (size_t i = 0; b->rc == 0 && i < b->data.len; i++)
		if (!(b->data.data[i] == '\r' && i + 1 < b->data.len &&
		    b->data.data[i + 1] == '\n'))
			buf_append_char(&lf, b->data.data[i]);
	const char *msg = lf.data ? lf.data : "";
	size_t hl = message_header_len(msg, lf.len);
	if (b->rc != 0)
		json_array_append_new(p->nf, json_string(b->id));
	else if (hl == 0 || !message_next_field(msg, hl, &pos, &f))
		json_array_append_new(p->unparsable, json_string(b->id));
	else {
		json_t *o = json_object();
		static const char *const nulls[] = { "id", "mailboxIds",
			"keywords", "receivedAt", "threadId" };
		for (size_t i = 0; i < 5; i++)
			if (jq_want_prop(p->props, nulls[i]))
				json_object_set_new(o, nulls[i], json_null());
		if (jq_want_prop(p->props, "blobId"))
			json_object_set_new(o, "blobId", json_string(b->id));
		if (jq_want_prop(p->props, "size"))
			json_object_set_new(o, "size", json_integer(
			    (json_int_t)mime_crlf_size(msg, lf.len)));
		jmap_email_props(o, msg, lf.len, p->want);
		size_t h;
		json_t *hp;
		json_array_foreach(p->hprops, h, hp)
			jmap_header_prop(o, json_string_value(hp), msg, hl);
		if (p->bwant) {
			struct jmap_body_opts bo = p->opts;
			/* a message's parts have blobs; an upload's not */
			bo.email_id = b->id[0] == 'm' ? b->id + 1 : NULL;
			jmap_email_body(o, msg, lf.len, p->bwant, &bo);
		}
		json_object_set_new(p->parsed, b->id, o);
	}
	buf_clear(&lf);
	buf_clear(&b->data);
	free(b->root);
	free(b);
	if (--p->pending == 0)
		eparse_finish(p);
}

static void
email_parse(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "blobIds", A_ANY }, { "properties", A_STRS_NULL },
		{ "bodyProperties", A_STRS_NULL },
		{ "fetchTextBodyValues", A_BOOL },
		{ "fetchHTMLBodyValues", A_BOOL },
		{ "fetchAllBodyValues", A_BOOL },
		{ "maxBodyValueBytes", A_UINT }, { NULL, A_ANY } };
	json_t *blobs = json_object_get(args, "blobIds"), *props, *v;
	size_t k;

	if (!jq_check_args(q, args, spec))
		return;
	if (!json_is_array(blobs)) {
		jq_error(q, "invalidArguments", "blobIds is required");
		return;
	}
	json_array_foreach(blobs, k, v)
		if (!json_is_string(v)) {
			jq_error(q, "invalidArguments", "blobIds: not ids");
			return;
		}
	if (json_array_size(blobs) > MAX_OBJECTS_IN_GET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	props = json_object_get(args, "properties");
	if (!jq_props_known(q, props, email_default, email_extra_prop))
		return;
	json_t *bprops = json_object_get(args, "bodyProperties");
	json_array_foreach(bprops, k, v)
		if (!jmap_body_prop_known(json_string_value(v))) {
			jq_error(q, "invalidArguments", "unknown body property");
			return;
		}
	struct eparse *p = xcalloc(1, sizeof(*p));
	p->q = q;
	if (json_is_array(props))
		p->props = json_incref(props);
	else {
		p->props = json_array();
		for (const char *const *d = parse_default; *d; d++)
			json_array_append_new(p->props, json_string(*d));
	}
	p->hprops = json_array();
	json_array_foreach(p->props, k, v) {
		const char *n = json_string_value(v);
		p->want |= email_file_prop(n);
		p->bwant |= jmap_body_prop_bit(n);
		if (strncmp(n, "header:", 7) == 0)
			json_array_append(p->hprops, v);
	}
	p->bprops = json_is_array(bprops) ? json_incref(bprops) : NULL;
	p->opts = (struct jmap_body_opts){ NULL, p->bprops,
		json_is_true(json_object_get(args, "fetchTextBodyValues")),
		json_is_true(json_object_get(args, "fetchHTMLBodyValues")),
		json_is_true(json_object_get(args, "fetchAllBodyValues")),
		(size_t)json_integer_value(json_object_get(args,
		    "maxBodyValueBytes")) };
	p->parsed = json_object();
	p->unparsable = json_array();
	p->nf = json_array();
	p->pending = 1;
	json_array_foreach(blobs, k, v) {
		const char *id = json_string_value(v);
		char email[JMAP_BLOB_LEN], part[JMAP_PART_LEN] = "";
		size_t n = 0;
		const struct jloc *l = NULL;
		if (strlen(id) >= sizeof(((struct pblob *)0)->id)) {
			json_array_append(p->nf, v);
			continue;
		}
		struct pblob *b = xcalloc(1, sizeof(*b));
		b->p = p;
		(void)str_copy(b->id, sizeof(b->id), id);
		buf_init(&b->data);
		if (blob_id_valid(id)) {
			b->root = xstrdup(jacct_root(q->acct));
			p->pending++;
			iopool_submit(jacct_pool(q->acct), pblob_upload_work,
			    pblob_done, b);
			continue;
		}
		if (id[0] == 'm')
			l = jacct_find(q->acct, id + 1, &n);
		else if (jmap_part_blob_parse(id, email, sizeof(email), part))
			l = jacct_find(q->acct, email, &n);
		if (l == NULL) {
			json_array_append(p->nf, v);
			free(b);
			continue;
		}
		(void)str_copy(b->part, sizeof(b->part), part);
		b->uid = jacct_msg(q->acct, l)->uid;
		p->pending++;
		jacct_box_run(q->acct, l[0].box, pblob_box_work, pblob_done, b);
	}
	if (--p->pending == 0)
		eparse_finish(p);
}

/* --- Thread/get (RFC 8621 3.1) ------------------------------------------- */

static const char *const thread_props[] = { "id", "emailIds", NULL };

static int
cmp_strp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static json_t *
thread_object(struct jreq *q, const char *tid, json_t *props)
{
	size_t n;
	const struct jloc *l = jacct_thread(q->acct, tid, &n);
	json_t *o, *ids;

	if (l == NULL)
		return NULL;
	o = json_pack("{s:s}", "id", tid);
	if (jq_want_prop(props, "emailIds")) {
		ids = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(ids, json_string(l[k].id));
		json_object_set_new(o, "emailIds", ids);
	}
	return o;
}

static void
thread_get(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ids", A_IDS_NULL }, { "properties", A_STRS_NULL },
		{ NULL, A_ANY } };
	json_t *ids, *props, *list, *nf, *v, *o;
	size_t k, n;

	if (!jq_check_args(q, args, spec))
		return;
	ids = json_object_get(args, "ids");
	props = json_object_get(args, "properties");
	if (!jq_props_known(q, props, thread_props, NULL))
		return;
	list = json_array();
	nf = json_array();
	if (json_is_array(ids)) {
		if (json_array_size(ids) > MAX_OBJECTS_IN_GET) {
			json_decref(list);
			json_decref(nf);
			jq_error(q, "requestTooLarge", NULL);
			return;
		}
		json_array_foreach(ids, k, v) {
			const char *id = jq_id(q, json_string_value(v));
			if (id && (o = thread_object(q, id, props)))
				json_array_append_new(list, o);
			else
				json_array_append(nf, v);
		}
	} else {
		/* every thread: one per run of jacct_thread's order */
		const struct jloc *all = jacct_all(q->acct, &n);
		const char **tids = xcalloc(n + 1, sizeof(*tids));
		size_t nt = 0;
		for (k = 0; k < n; k++)
			tids[nt++] = jacct_msg(q->acct, &all[k])->tid;
		qsort(tids, nt, sizeof(*tids), cmp_strp);
		size_t distinct = 0;
		for (k = 0; k < nt; k++)
			distinct += k == 0 || strcmp(tids[k], tids[k - 1]) != 0;
		if (distinct > MAX_OBJECTS_IN_GET) {
			free(tids);
			json_decref(list);
			json_decref(nf);
			jq_error(q, "requestTooLarge", NULL);
			return;
		}
		for (k = 0; k < nt; k++)
			if (k == 0 || strcmp(tids[k], tids[k - 1]) != 0)
				json_array_append_new(list, thread_object(q,
				    tids[k], props));
		free(tids);
	}
	char *state = jacct_thread_state(q->acct);
	jq_reply(q, json_pack("{s:s,s:s,s:o,s:o}", "accountId", q->account_id,
	    "state", state, "list", list, "notFound", nf));
	free(state);
}

/* --- the request --------------------------------------------------------- */

static const struct method api_methods[] = {
	{ "Core/echo", CAP_CORE, core_echo },
	{ "Mailbox/get", CAP_MAIL, mailbox_get },
	{ "Mailbox/query", CAP_MAIL, mailbox_query },
	{ "Email/get", CAP_MAIL, email_get },
	{ "Thread/get", CAP_MAIL, thread_get },
	{ "Email/parse", CAP_MAIL, email_parse },
	{ NULL, NULL, NULL },
};

static bool
using_has(const struct jreq *q, const char *cap)
{
	for (size_t i = 0; i < q->r.nusing; i++)
		if (strcmp(q->r.using[i], cap) == 0)
			return true;
	return false;
}

static const struct method *
find_method(const char *name)
{
	static const struct method *const tables[] = { api_methods,
		jmap_set_methods, jmap_submit_methods, jmap_mbset_methods,
		jmap_changes_methods, jmap_query_methods,
		jmap_subrec_methods };

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct method *m = tables[t]; m->name; m++)
			if (strcmp(m->name, name) == 0)
				return m;
	return NULL;
}

static void
run_next(struct jreq *q)
{
	while (q->i < q->r.ncalls) {
		const struct jmap_call *c = &q->r.calls[q->i++];
		const struct method *m = find_method(c->name);
		const char *type;
		char desc[300];
		json_t *args;

		q->call_id = c->id;
		q->call_name = c->name;
		q->answered = false;
		clock_gettime(CLOCK_MONOTONIC, &q->call_start);
		/* a name a client made up is not a label of its own */
		q->call_method = m ? m->name : "unknown";
		if (m == NULL || !using_has(q, m->cap)) {
			q->in_call = true;
			jq_error(q, "unknownMethod", NULL);
			q->in_call = false;
			continue;
		}
		args = jmap_resolve_refs(c->args, q->responses, &type, desc,
		    sizeof(desc));
		q->in_call = true;
		if (args == NULL)
			jq_error(q, type, desc);
		else {
			m->fn(q, args);
			json_decref(args);
		}
		q->in_call = false;
		if (!q->answered)
			return;        /* a job answers, and calls us again */
	}
	json_t *body = json_pack("{s:O,s:s}", "methodResponses",
	    q->responses, "sessionState", "s1");
	if (q->r.created_ids)
		json_object_set(body, "createdIds", q->created);
	finish(q, 200, body);
}

static void
refreshed(void *arg)
{
	run_next(arg);
}

void
jmap_api_run(struct jacct *a, const struct jmap_env *env, const char *body,
    size_t len, jmap_api_done done, void *arg)
{
	struct jreq *q = xcalloc(1, sizeof(*q));
	char why[256];
	enum jmap_req_status st;

	q->acct = jacct_ref(a);
	jmap_account_id(jacct_user(q->acct), q->account_id);
	q->done = done;
	q->arg = arg;
	q->env = env;
	q->responses = json_array();
	q->created = json_object();
	st = jmap_request_parse(body, len, &q->r, why, sizeof(why));
	if (st != JMAP_REQ_OK) {
		static const char *const types[] = { "",
			"urn:ietf:params:jmap:error:notJSON",
			"urn:ietf:params:jmap:error:notRequest",
			"urn:ietf:params:jmap:error:limit" };
		json_t *p = problem(types[st], 400, why);
		if (st == JMAP_REQ_LIMIT)
			json_object_set_new(p, "limit",
			    json_string("maxCallsInRequest"));
		finish(q, 400, p);
		return;
	}
	for (size_t i = 0; i < q->r.nusing; i++)
		if (strcmp(q->r.using[i], CAP_CORE) != 0 &&
		    strcmp(q->r.using[i], CAP_MAIL) != 0 &&
		    strcmp(q->r.using[i], CAP_SUBMISSION) != 0) {
			char d[300];
			(void)snprintf(d, sizeof(d), "unknown capability "
			    "'%.200s'", q->r.using[i]);
			finish(q, 400, problem("urn:ietf:params:jmap:error:"
			    "unknownCapability", 400, d));
			return;
		}
	if (q->r.created_ids) {
		const char *k;
		json_t *v;
		json_object_foreach(q->r.created_ids, k, v)
			if (json_is_string(v))
				json_object_set(q->created, k, v);
	}
	jacct_refresh(q->acct, refreshed, q);
}
