/* SPDX-License-Identifier: ISC */
/*
 * jmap_submit.c - layer 3: sending over HTTP (RFC 8621 6 and 7):
 * Identity/get (the user's own addresses) and EmailSubmission/set. A
 * submission reads the Email's file, then makes of it what port 587
 * would have taken: the envelope (the identity's address, or the one
 * given, which the user must own; recipients given, or To/Cc/Bcc), a
 * Received: field, the submission fix-ups (Date:, Message-ID: added,
 * Bcc: removed; From: and a recipient field required) and the
 * submission_from check of From:, the size and recipient limits; then
 * it is committed to the durable queue (fsynced before the answer), and
 * dispatch delivers or relays it as any other. onSuccessUpdateEmail and
 * onSuccessDestroyEmail then run as an Email/set of their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/util.h"
#include "http/jmap_account.h"
#include "http/jmap_email.h"
#include "http/jmap_int.h"
#include "lua/config.h"
#include "lua/hooks.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/message.h"
#include "queue/queue.h"
#include "mail/dkim_sign.h"
#include "runtime.h"
#include "smtp/smtp_parse.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/store.h"

#define ADDR_MAX 320

/* --- Identity (RFC 8621 6) ----------------------------------------------- */

static const char *const ident_props[] = { "id", "name", "email", "replyTo",
	"bcc", "textSignature", "htmlSignature", "mayDelete", NULL };

static uint64_t
fnv(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

/*
 * The user's identities: one per address (itself if it has a domain,
 * else at each local domain), as the configuration gives them, with
 * what Identity/set changed of them, and those Identity/set made
 * (mayDelete). The slot is read first (ident_ready).
 */
static json_t *
identities(const struct jreq *q)
{
	const struct config *cfg = q->env->rt->cfg;
	const char *user = jacct_user(q->acct);
	json_t *own = *jacct_identities(q->acct);
	json_t *list = json_array(), *v;
	char email[ADDR_MAX + 1];
	const char *k;

	for (size_t i = 0; i < (strchr(user, '@') ? 1 : cfg->ndomains ?
	    cfg->ndomains : 1); i++) {
		if (strchr(user, '@'))
			(void)str_copy(email, sizeof(email), user);
		else
			(void)snprintf(email, sizeof(email), "%s@%s", user,
			    cfg->ndomains ? cfg->domains[i] : cfg->hostname);
		ascii_lower(email);
		char id[24];
		(void)snprintf(id, sizeof(id), "I%016llx",
		    (unsigned long long)fnv(email));
		json_t *o = json_pack("{s:s,s:s,s:s,s:n,s:n,s:s,s:s,s:b}", "id",
		    id, "name", "", "email", email, "replyTo", "bcc",
		    "textSignature", "", "htmlSignature", "", "mayDelete",
		    false);
		json_t *mine = json_object_get(own, id);
		json_object_foreach(mine, k, v)
			if (strcmp(k, "id") && strcmp(k, "email") &&
			    strcmp(k, "mayDelete"))
				json_object_set(o, k, v);
		json_array_append_new(list, o);
	}
	json_object_foreach(own, k, v)
		if (json_is_true(json_object_get(v, "mayDelete")))
			json_array_append(list, v);
	return list;
}

/* Each identity's id (less the "I") and a hash of what it says. */
static char *
identity_state(json_t *all)
{
	struct buf b;
	size_t i;
	json_t *o;

	buf_init(&b);
	buf_append_char(&b, 'i');
	json_array_foreach(all, i, o) {
		char *t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		buf_printf(&b, "%s%s.%08x", i ? "_" : "",
		    json_string_value(json_object_get(o, "id")) + 1,
		    (unsigned)(fnv(t ? t : "") & 0xffffffffu));
		free(t);
	}
	return buf_steal(&b, NULL);
}

/* The token of 16-digit id in list ("_"-joined "id.hash"), or NULL. */
static const char *
find_token(const char *list, const char *id)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, "_");
		if (n == 25 && strncmp(p, id, 16) == 0)
			return p;
		p += n + (p[n] == '_');
	}
	return NULL;
}

/* Runs fn once the user's own identities are read into the account. */
struct ident_wait {
	struct jreq *q;
	json_t *args;
	void (*fn)(struct jreq *q, json_t *args);
	struct tindex_sub *rows;
	size_t n;
	int rc;
};

static void
ident_load_work(void *arg)
{
	struct ident_wait *w = arg;
	struct tern_err err;

	memset(&err, 0, sizeof(err));
	w->rc = tindex_idents(store_account_index(jacct_store_account(
	    w->q->acct)), &w->rows, &w->n, &err);
}

static void
ident_load_done(void *arg)
{
	struct ident_wait *w = arg;
	json_t **slot = jacct_identities(w->q->acct);

	if (*slot == NULL && w->rc == 0) {
		*slot = json_object();
		for (size_t i = 0; i < w->n; i++) {
			json_t *o = json_loads(w->rows[i].obj, 0, NULL);
			if (json_is_object(o))
				json_object_set_new(*slot, w->rows[i].id, o);
			else
				json_decref(o);
		}
	}
	tindex_subs_free(w->rows, w->n);
	if (*slot == NULL)
		jq_error(w->q, "serverFail", "the identities cannot be read");
	else
		w->fn(w->q, w->args);
	json_decref(w->args);
	free(w);
}

static void
ident_ready(struct jreq *q, json_t *args,
    void (*fn)(struct jreq *q, json_t *args))
{
	if (*jacct_identities(q->acct)) {
		fn(q, args);
		return;
	}
	struct ident_wait *w = xcalloc(1, sizeof(*w));
	w->q = q;
	w->args = json_incref(args);
	w->fn = fn;
	iopool_submit(jacct_pool(q->acct), ident_load_work, ident_load_done, w);
}

static void
identity_changes_run(struct jreq *q, json_t *args)
{
	const char *since = json_string_value(json_object_get(args,
	    "sinceState"));
	json_t *all, *created, *updated, *destroyed, *o;
	size_t i;

	if (since == NULL || since[0] != 'i') {
		jq_error(q, "cannotCalculateChanges", "not a state of this "
		    "server");
		return;
	}
	all = identities(q);
	char *now = identity_state(all);
	created = json_array();
	updated = json_array();
	destroyed = json_array();
	json_array_foreach(all, i, o) {
		const char *id = json_string_value(json_object_get(o, "id"));
		const char *was = find_token(since + 1, id + 1);
		const char *is = find_token(now + 1, id + 1);
		if (was == NULL)
			json_array_append_new(created, json_string(id));
		else if (strncmp(was, is, 25) != 0)
			json_array_append_new(updated, json_string(id));
	}
	for (const char *p = since + 1; *p;) {
		size_t n = strcspn(p, "_");
		char id[24];
		if (n == 25 && find_token(now + 1, p) == NULL) {
			(void)snprintf(id, sizeof(id), "I%.16s", p);
			json_array_append_new(destroyed, json_string(id));
		}
		p += n + (p[n] == '_');
	}
	json_decref(all);
	jq_reply(q, json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:o}", "accountId",
	    q->account_id, "oldState", since, "newState", now,
	    "hasMoreChanges", 0, "created", created, "updated", updated,
	    "destroyed", destroyed));
	free(now);
}

static void
identity_changes(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "sinceState", A_STR }, { "maxChanges", A_ANY },
		{ NULL, A_ANY } };

	if (jq_check_args(q, args, spec))
		ident_ready(q, args, identity_changes_run);
}

static void
identity_get_run(struct jreq *q, json_t *args)
{
	json_t *ids, *props, *all, *list, *nf, *v, *o;
	size_t k, i;

	props = json_object_get(args, "properties");
	ids = json_object_get(args, "ids");
	all = identities(q);
	list = json_array();
	nf = json_array();
	json_array_foreach(all, i, o) {
		bool asked = !json_is_array(ids);
		json_array_foreach(ids, k, v)
			asked |= json_equal(v, json_object_get(o, "id"));
		if (!asked)
			continue;
		if (json_is_array(props)) {
			json_t *f = json_pack("{s:O}", "id", json_object_get(o,
			    "id"));
			json_array_foreach(props, k, v)
				json_object_set(f, json_string_value(v),
				    json_object_get(o, json_string_value(v)));
			json_array_append_new(list, f);
		} else
			json_array_append(list, o);
	}
	json_array_foreach(ids, k, v) {
		bool found = false;
		json_array_foreach(all, i, o)
			found |= json_equal(v, json_object_get(o, "id"));
		if (!found)
			json_array_append(nf, v);
	}
	char *state = identity_state(all);
	json_decref(all);
	jq_reply(q, json_pack("{s:s,s:s,s:o,s:o}", "accountId", q->account_id,
	    "state", state, "list", list, "notFound", nf));
	free(state);
}

static void
identity_get(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ids", A_IDS_NULL }, { "properties", A_STRS_NULL },
		{ NULL, A_ANY } };

	if (!jq_check_args(q, args, spec) ||
	    !jq_props_known(q, json_object_get(args, "properties"),
	    ident_props, NULL))
		return;
	ident_ready(q, args, identity_get_run);
}

/* --- Identity/set -------------------------------------------------------- */

struct iset {
	struct jreq *q;
	json_t *args;
	char *old_state;
	struct jq_setres r;
	json_t *writes;           /* [[id, obj or null, kind, key]] to do */
	size_t next;
};

static const char *const ident_settable[] = { "name", "replyTo", "bcc",
	"textSignature", "htmlSignature", NULL };

/* The settable properties of patch into o; false (*bad) if another. */
static bool
ident_apply(json_t *o, json_t *patch, const char **bad, bool create)
{
	const char *k;
	json_t *v;

	json_object_foreach(patch, k, v) {
		bool ok = false;
		for (size_t i = 0; ident_settable[i]; i++)
			if (strcmp(k, ident_settable[i]) == 0)
				ok = (i == 1 || i == 2) ? json_is_array(v) ||
				    json_is_null(v) : json_is_string(v);
		if (create && strcmp(k, "email") == 0 && json_is_string(v))
			ok = true;
		if (!ok) {
			*bad = k;
			return false;
		}
		json_object_set(o, k, v);
	}
	return true;
}

/* The jq_setres_* calls with an error made here: they borrow it. */
static void
iset_created(struct jq_setres *r, const char *key, json_t *err, json_t *obj)
{
	jq_setres_created(r, key, err, obj);
	json_decref(err);
}

static void
iset_updated(struct jq_setres *r, const char *key, json_t *err)
{
	jq_setres_updated(r, key, err);
	json_decref(err);
}

static void
iset_destroyed(struct jq_setres *r, const char *key, json_t *err)
{
	jq_setres_destroyed(r, key, err);
	json_decref(err);
}

static void iset_next(struct iset *s);

struct iwrite {
	struct iset *s;
	char *id, *obj;
	int rc;
};

static void
iwrite_work(void *arg)
{
	struct iwrite *w = arg;
	struct tindex *x = store_account_index(jacct_store_account(
	    w->s->q->acct));
	struct tern_err err;

	memset(&err, 0, sizeof(err));
	w->rc = w->obj ? tindex_ident_put(x, w->id, w->obj, &err) :
	    tindex_ident_del(x, w->id, &err);
}

static void
iwrite_done(void *arg)
{
	struct iwrite *w = arg;
	struct iset *s = w->s;
	json_t *job = json_array_get(s->writes, s->next - 1);
	const char *kind = json_string_value(json_array_get(job, 2));
	const char *key = json_string_value(json_array_get(job, 3));
	json_t *slot = *jacct_identities(s->q->acct);
	json_t *err = w->rc ? jq_set_error("serverFail", "not kept", NULL) :
	    NULL;

	if (!err) {          /* the account's copy follows the index */
		if (w->obj)
			json_object_set_new(slot, w->id, json_loads(w->obj, 0,
			    NULL));
		else
			json_object_del(slot, w->id);
	}
	if (kind[0] == 'c') {
		iset_created(&s->r, key, err, err ? NULL :
		    json_pack("{s:s,s:b}", "id", w->id, "mayDelete", 1));
		if (!err)
			jq_created(s->q, key, w->id);
	} else if (kind[0] == 'u')
		iset_updated(&s->r, key, err);
	else
		iset_destroyed(&s->r, key, err);
	free(w->id);
	free(w->obj);
	free(w);
	iset_next(s);
}

static void
iset_next(struct iset *s)
{
	json_t *job = json_array_get(s->writes, s->next);

	if (job) {
		struct iwrite *w = xcalloc(1, sizeof(*w));
		s->next++;
		w->s = s;
		w->id = xstrdup(json_string_value(json_array_get(job, 0)));
		json_t *o = json_array_get(job, 1);
		w->obj = json_is_object(o) ? json_dumps(o, JSON_COMPACT) : NULL;
		iopool_submit(jacct_pool(s->q->acct), iwrite_work, iwrite_done,
		    w);
		return;
	}
	json_t *all = identities(s->q);
	char *state = identity_state(all);
	json_decref(all);
	json_t *res = jq_setres_finish(s->q, &s->r, s->old_state, state);
	struct jreq *q = s->q;
	free(state);
	free(s->old_state);
	json_decref(s->writes);
	json_decref(s->args);
	free(s);
	jq_reply(q, res);
}

static void
identity_set_run(struct jreq *q, json_t *args)
{
	const struct config *cfg = q->env->rt->cfg;
	struct iset *s = xcalloc(1, sizeof(*s));
	json_t *all = identities(q), *v, *o;
	const char *k, *bad;
	size_t i, k2;

	s->q = q;
	s->args = json_incref(args);
	s->old_state = identity_state(all);
	s->writes = json_array();
	jq_setres_init(&s->r);
	if ((v = json_object_get(args, "ifInState")) && json_is_string(v) &&
	    strcmp(json_string_value(v), s->old_state) != 0) {
		json_decref(all);
		free(s->old_state);
		json_decref(s->writes);
		json_decref(s->args);
		json_decref(jq_setres_finish(q, &s->r, "", ""));
		free(s);
		jq_error(q, "stateMismatch", NULL);
		return;
	}
	json_object_foreach(json_object_get(args, "create"), k, v) {
		json_t *n = json_pack("{s:s,s:n,s:n,s:s,s:s,s:b}", "name", "",
		    "replyTo", "bcc", "textSignature", "", "htmlSignature", "",
		    "mayDelete", true);
		const char *email;
		struct smtp_addr a;
		char rnd[40], id[24];
		if (!json_is_object(v) || !ident_apply(n, v, &bad, true)) {
			iset_created(&s->r, k, jq_set_error(
			    "invalidProperties", NULL, json_is_object(v) ? bad :
			    NULL), NULL);
			json_decref(n);
			continue;
		}
		email = json_string_value(json_object_get(n, "email"));
		if (email == NULL || smtp_parse_mailbox(email, strlen(email),
		    &a) != 0 || !config_user_owns(cfg, jacct_user(q->acct),
		    a.local, a.domain)) {
			iset_created(&s->r, k, jq_set_error("forbiddenFrom",
			    "not one of your addresses", "email"), NULL);
			json_decref(n);
			continue;
		}
		(void)snprintf(rnd, sizeof(rnd), "%s %ld %zu", email,
		    (long)time(NULL), json_array_size(s->writes));
		(void)snprintf(id, sizeof(id), "I%016llx",
		    (unsigned long long)fnv(rnd));
		json_object_set_new(n, "id", json_string(id));
		json_array_append_new(s->writes, json_pack("[s,o,s,s]", id, n,
		    "c", k));
	}
	json_object_foreach(json_object_get(args, "update"), k, v) {
		const char *id = jq_id(q, k);
		json_t *cur = NULL;
		json_array_foreach(all, i, o)
			if (id && strcmp(json_string_value(json_object_get(o,
			    "id")), id) == 0)
				cur = o;
		if (cur == NULL) {
			iset_updated(&s->r, k, jq_set_error("notFound",
			    NULL, NULL));
			continue;
		}
		json_t *n = json_deep_copy(cur);
		if (!json_is_object(v) || !ident_apply(n, v, &bad, false)) {
			iset_updated(&s->r, k, jq_set_error(
			    "invalidProperties", NULL, json_is_object(v) ? bad :
			    NULL));
			json_decref(n);
			continue;
		}
		json_array_append_new(s->writes, json_pack("[s,o,s,s]", id, n,
		    "u", k));
	}
	json_array_foreach(json_object_get(args, "destroy"), k2, v) {
		const char *key = json_string_value(v);
		const char *id = key ? jq_id(q, key) : NULL;
		json_t *cur = NULL;
		json_array_foreach(all, i, o)
			if (id && strcmp(json_string_value(json_object_get(o,
			    "id")), id) == 0)
				cur = o;
		if (cur == NULL || !json_is_true(json_object_get(cur,
		    "mayDelete"))) {
			iset_destroyed(&s->r, key ? key : "", jq_set_error(
			    cur ? "forbidden" : "notFound", cur ? "an address "
			    "of the account stays" : NULL, NULL));
			continue;
		}
		json_array_append_new(s->writes, json_pack("[s,n,s,s]", id, "d",
		    key));
	}
	json_decref(all);
	iset_next(s);
}

static void
identity_set(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ifInState", A_STR_NULL }, { "create", A_OBJ_NULL },
		{ "update", A_OBJ_NULL }, { "destroy", A_IDS_NULL },
		{ NULL, A_ANY } };

	if (!jq_check_args(q, args, spec))
		return;
	if (json_object_size(json_object_get(args, "create")) +
	    json_object_size(json_object_get(args, "update")) +
	    json_array_size(json_object_get(args, "destroy")) >
	    MAX_OBJECTS_IN_SET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	ident_ready(q, args, identity_set_run);
}

/* The identity's address of an id, or NULL. */
static char *
identity_email(const struct jreq *q, const char *id)
{
	json_t *all = identities(q), *o;
	size_t i;
	char *email = NULL;

	json_array_foreach(all, i, o)
		if (strcmp(json_string_value(json_object_get(o, "id")), id) ==
		    0)
			email = xstrdup(json_string_value(json_object_get(o,
			    "email")));
	json_decref(all);
	return email;
}

/* --- EmailSubmission/set (RFC 8621 7.5) ---------------------------------- */

struct sub {
	struct subset *ss;
	char *cid;                /* creation id */
	char *email_id;
	char *identity;           /* its address */
	json_t *envelope;         /* as given, or NULL */
	uint32_t uid;             /* the Email's first copy */
	struct buf msg;           /* its text (LF) */
	int rc;
	json_t *err;
	char qid[ENVELOPE_ID_LEN + 1];
	json_t *rcpts;            /* the envelope's recipients, as sent */
	char *mail_from;
	int64_t send_at;
	struct queue_commit *commit;
	int stage;                /* 0 to read, 1 read, 2 done */
	char *identity_id;
	char tid[SORT_ID_LEN];    /* the Email's thread */
	json_t *obj;              /* the record, once queued */
};

struct subset {
	struct jreq *q;
	json_t *args;             /* held, for onSuccess* */
	struct sub *subs;
	size_t n, pending;
	int64_t old_top, new_top; /* the states' sequences */
	json_t *destroyed, *not_destroyed;
	size_t next_destroy;
};

static bool
sub_read(struct mbox *mb, void *arg)
{
	struct sub *s = arg;
	ssize_t i = mbox_find_uid(mb, s->uid);
	struct tern_err err;

	s->rc = -1;
	if (i >= 0 && mbox_read(mb, (size_t)i, &s->msg,
	    MAX_SIZE_UPLOAD, &err) == 0)
		s->rc = 0;
	return false;
}

static void sub_next(struct subset *ss);

static void
sub_fail(struct sub *s, const char *type, const char *desc,
    const char *prop)
{
	if (s->err == NULL)
		s->err = jq_set_error(type, desc, prop);
}

/* An address from JSON or a header, as "<local@domain>"; false if bad. */
static bool
path_of(const char *addr, char *out, size_t outsz, struct smtp_addr *a)
{
	return smtp_parse_mailbox(addr, strlen(addr), a) == 0 && !a->null &&
	    a->domain[0] && smtp_addr_format(a, out, outsz) == 0;
}

/* params: the address's "parameters" as given (NULL: none) */
static void
add_rcpt(json_t *rcpts, const char *email, json_t *params)
{
	size_t i;
	json_t *r;

	json_array_foreach(rcpts, i, r)
		if (ascii_strcaseeq(json_string_value(json_object_get(r,
		    "email")), email))
			return;
	json_array_append_new(rcpts, json_pack("{s:s,s:O}", "email", email,
	    "parameters", params ? params : json_null()));
}

/*
 * The SMTP parameters of an envelope address (RFC 8621 7, "parameters":
 * names to values): DSN's RET and ENVID for mailFrom, NOTIFY and ORCPT
 * for a recipient (rcpt: its index in env), as on port 587. False at
 * one this server does not take, or a bad value.
 */
static bool
apply_params(json_t *params, struct envelope *env, ssize_t rcpt)
{
	const char *key;
	json_t *v;

	if (params == NULL || json_is_null(params))
		return true;
	if (!json_is_object(params))
		return false;
	json_object_foreach(params, key, v) {
		const char *val = json_string_value(v);
		if (val == NULL)
			return false;
		if (rcpt < 0 && ascii_strcaseeq(key, "RET")) {
			if (dsn_ret_parse(val, &env->ret) != 0)
				return false;
		} else if (rcpt < 0 && ascii_strcaseeq(key, "ENVID")) {
			if (!dsn_envid_valid(val) || env->envid)
				return false;
			env->envid = xstrdup(val);
		} else if (rcpt >= 0 && ascii_strcaseeq(key, "NOTIFY")) {
			if (dsn_notify_parse(val, &env->rcpts[rcpt].notify) != 0)
				return false;
		} else if (rcpt >= 0 && ascii_strcaseeq(key, "ORCPT")) {
			if (!dsn_orcpt_valid(val) || env->rcpts[rcpt].orcpt)
				return false;
			env->rcpts[rcpt].orcpt = xstrdup(val);
		} else
			return false;
	}
	return true;
}

/* The recipients of To:, Cc: and Bcc: (before the fix-ups drop Bcc:). */
static bool
header_rcpts(const char *msg, size_t len, json_t *rcpts)
{
	static const char *const fields[] = { "To", "Cc", "Bcc" };
	size_t hl = message_header_len(msg, len);
	struct message_addr *a = xcalloc(100, sizeof(*a));
	bool ok = true;

	for (size_t f = 0; f < 3; f++) {
		struct message_field mf;
		size_t pos = 0;
		while (message_next_field(msg, hl, &pos, &mf)) {
			if (mf.name_len != strlen(fields[f]) ||
			    !ascii_strncaseeq(mf.name, fields[f], mf.name_len))
				continue;
			int n = message_parse_addresses(mf.value, mf.value_len,
			    a, 100);
			if (n < 0 || n > 100) {
				ok = false;
				break;
			}
			for (int i = 0; i < n; i++) {
				char e[MESSAGE_ADDR_LOCAL_MAX + MESSAGE_ADDR_DOMAIN_MAX + 2];
				if (str_fmt(e, sizeof(e), "%s@%s", a[i].local,
				    a[i].domain) != 0)
					continue;
				add_rcpt(rcpts, e, NULL);
			}
		}
	}
	free(a);
	return ok;
}

/* submission_from (as on port 587): may From: carry these addresses? */
static bool
from_allowed(const struct sub *s, const struct config *cfg,
    const char *user, const char *msg, size_t len)
{
	struct message_addr a[8];
	struct message_field f;
	size_t hl = message_header_len(msg, len);

	if (cfg->submission_from == SUBMISSION_FROM_NONE)
		return true;
	if (!message_find_field(msg, hl, "From", &f))
		return false;
	int n = message_parse_addresses(f.value, f.value_len, a, 8);
	if (n <= 0 || n > 8)
		return false;
	for (int i = 0; i < n; i++) {
		char e[MESSAGE_ADDR_LOCAL_MAX + MESSAGE_ADDR_DOMAIN_MAX + 2];
		if (str_fmt(e, sizeof(e), "%s@%s", a[i].local, a[i].domain) != 0)
			return false;
		if (cfg->submission_from == SUBMISSION_FROM_ENVELOPE ?
		    !ascii_strcaseeq(e, s->mail_from) :
		    !config_user_owns(cfg, user, a[i].local, a[i].domain))
			return false;
	}
	return true;
}

/* The EmailSubmission object of a queued submission (RFC 8621 7). */
static json_t *
sub_object(const struct sub *s)
{
	char id[ENVELOPE_ID_LEN + 2], d[21];

	(void)snprintf(id, sizeof(id), "S%s", s->qid);
	jmap_utc_date(s->send_at, d);
	json_t *mp = json_object_get(json_object_get(s->envelope, "mailFrom"),
	    "parameters");
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:{s:s,s:O},s:O},s:s,"
	    "s:n,s:[],s:[]}", "id", id, "identityId", s->identity_id,
	    "emailId", s->email_id, "threadId", s->tid, "undoStatus", "final",
	    "envelope", "mailFrom", "email", s->mail_from, "parameters",
	    mp ? mp : json_null(), "rcptTo", s->rcpts, "sendAt", d, "deliveryStatus", "dsnBlobIds",
	    "mdnBlobIds");
}

static void
sub_recorded(struct jsub_job *j)
{
	struct sub *s = j->arg;

	if (j->rc != 0)
		log_warnx("jmap: submission %s queued, its record not kept: %s",
		    s->qid, j->err.text);
	else
		s->ss->new_top = j->top;
	jsub_job_free(j);
	sub_next(s->ss);
}

static void
sub_committed(void *arg, const char *id, const struct tern_err *err)
{
	struct sub *s = arg;

	s->commit = NULL;
	if (err) {
		sub_fail(s, "serverFail", err->text, NULL);
		sub_next(s->ss);
		return;
	}
	log_info("%s: submitted over JMAP user=%s from=<%s> nrcpt=%zu", id,
	    jacct_user(s->ss->q->acct), s->mail_from,
	    json_array_size(s->rcpts));
	/* the record, for EmailSubmission/get: kept before the answer */
	s->obj = sub_object(s);
	struct jsub_job *j = jsub_job(s->ss->q, JSUB_ADD, sub_recorded, s);
	j->id = xstrdup(json_string_value(json_object_get(s->obj, "id")));
	j->obj = json_dumps(s->obj, JSON_COMPACT);
	jsub_submit(j);
}

/* The message read: its envelope and checks, then the queue. */
/* "<a@b>" -> "a@b" */
static char *
bare(const char *path)
{
	size_t n = strlen(path);

	return n >= 2 && path[0] == '<' ? xstrndup(path + 1, n - 2) :
	    xstrdup(path);
}

/* A plugin's no, as the SetError of this submission. */
static bool
hook_refuses(struct sub *s, const struct hook_verdict *v, const char *what)
{
	if (v->kind != HOOK_REJECT && v->kind != HOOK_TEMPFAIL)
		return false;
	log_info("jmap: submission %s refused by plugin: %d %s %s", what,
	    v->code, v->enh, v->text);
	/* a tempfail is mostly a rate a plugin keeps: try later */
	sub_fail(s, v->kind == HOOK_TEMPFAIL ? "rateLimit" : "forbiddenToSend",
	    v->text, NULL);
	return true;
}

/*
 * The plugins see a JMAP submission as they see one on port 587: the
 * mail, rcpt and data hooks, in a session of role http or https whose
 * HELO is "jmap" and whose user is the account's. False if they refused
 * it (s->err set) or discarded it (*discard: it counts as sent).
 */
static bool
submit_hooks(struct sub *s, struct envelope *env, struct buf *body,
    size_t start, bool *discard)
{
	struct jreq *q = s->ss->q;
	struct hooks *hk = q->env->rt->hooks;
	struct hook_session hs = { q->env->client_ip, 0, q->env->tls ?
		"https" : "http", q->env->tls, "jmap", jacct_user(q->acct) };
	char **rc = xcalloc(env->nrcpts + 1, sizeof(char *));
	char *sender = bare(env->sender);
	struct hook_tx tx = { .s = &hs, .sender = sender,
		.rcpts = (const char *const *)rc };
	struct hook_verdict v;
	bool ok = false;

	*discard = false;
	for (size_t i = 0; i < env->nrcpts; i++)
		rc[i] = bare(env->rcpts[i].path);
	if (hooks_has(hk, HOOK_MAIL)) {
		hooks_mail(hk, &tx, sender, &v);
		if (hook_refuses(s, &v, "sender"))
			goto out;
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (hooks_has(hk, HOOK_RCPT)) {
			hooks_rcpt(hk, &tx, rc[i], &v);
			if (hook_refuses(s, &v, "recipient"))
				goto out;
		}
		tx.nrcpts = i + 1;
	}
	if (hooks_has(hk, HOOK_DATA)) {
		char **folders = xcalloc(env->nrcpts + 1, sizeof(char *));
		hooks_data(hk, &tx, body, start, folders, &v);
		for (size_t i = 0; i < env->nrcpts; i++)
			env->rcpts[i].folder = folders[i];
		free(folders);
		if (hook_refuses(s, &v, "message"))
			goto out;
		*discard = v.kind == HOOK_DISCARD;
	}
	ok = true;
out:
	for (size_t i = 0; i < env->nrcpts; i++)
		free(rc[i]);
	free(rc);
	free(sender);
	return ok;
}

static void
sub_send(struct sub *s)
{
	struct jreq *q = s->ss->q;
	const struct config *cfg = q->env->rt->cfg;
	const char *user = jacct_user(q->acct);
	struct smtp_addr sa;
	char path[SMTP_PATH_MAX + 1];
	const char *msg = s->msg.data ? s->msg.data : "";

	/* the envelope */
	json_t *mf = json_object_get(s->envelope, "mailFrom");
	const char *from = mf ? json_string_value(json_object_get(mf,
	    "email")) : s->identity;
	if (from == NULL || !path_of(from, path, sizeof(path), &sa)) {
		sub_fail(s, "invalidProperties", "envelope.mailFrom is not an "
		    "address", "envelope");
		return;
	}
	if (!config_user_owns(cfg, user, sa.local, sa.domain)) {
		sub_fail(s, "forbiddenMailFrom", "not one of your addresses",
		    NULL);
		return;
	}
	s->mail_from = xstrdup(from);
	s->rcpts = json_array();
	json_t *rt = json_object_get(s->envelope, "rcptTo");
	if (s->envelope) {
		size_t i;
		json_t *r;
		if (!json_is_array(rt)) {
			sub_fail(s, "invalidProperties", NULL, "envelope");
			return;
		}
		json_array_foreach(rt, i, r) {
			const char *e = json_string_value(json_object_get(r,
			    "email"));
			if (e == NULL) {
				sub_fail(s, "invalidProperties", NULL,
				    "envelope");
				return;
			}
			add_rcpt(s->rcpts, e, json_object_get(r,
			    "parameters"));
		}
	} else if (!header_rcpts(msg, s->msg.len, s->rcpts)) {
		sub_fail(s, "invalidEmail", "a recipient field does not "
		    "parse", NULL);
		return;
	}
	size_t nr = json_array_size(s->rcpts);
	if (nr == 0) {
		sub_fail(s, "noRecipients", NULL, NULL);
		return;
	}
	if (cfg->limits.max_recipients && nr > cfg->limits.max_recipients) {
		json_t *e = jq_set_error("tooManyRecipients", NULL, NULL);
		json_object_set_new(e, "maxRecipients",
		    json_integer(cfg->limits.max_recipients));
		s->err = e;
		return;
	}
	struct envelope *env = xcalloc(1, sizeof(*env));
	envelope_init(env);
	json_t *bad = json_array();
	size_t i;
	json_t *r;
	bool params_ok = apply_params(mf ? json_object_get(mf, "parameters") :
	    NULL, env, -1);
	json_array_foreach(s->rcpts, i, r) {
		const char *e = json_string_value(json_object_get(r, "email"));
		if (!path_of(e, path, sizeof(path), &sa))
			json_array_append_new(bad, json_string(e));
		else
			params_ok &= apply_params(json_object_get(r,
			    "parameters"), env, (ssize_t)envelope_add_rcpt(env,
			    path));
	}
	if (!params_ok) {
		sub_fail(s, "invalidProperties", "an envelope parameter is not "
		    "supported or not valid (DSN's RET, ENVID, NOTIFY and "
		    "ORCPT are)", "envelope");
		json_decref(bad);
		envelope_clear(env);
		free(env);
		return;
	}
	if (json_array_size(bad)) {
		json_t *e = jq_set_error("invalidRecipients", NULL, NULL);
		json_object_set_new(e, "invalidRecipients", bad);
		s->err = e;
		envelope_clear(env);
		free(env);
		return;
	}
	json_decref(bad);

	/* the message, as port 587 makes it */
	struct buf *body = xcalloc(1, sizeof(*body));
	struct message_trace t = { 0 };
	char date[64], msgid[300];
	struct tm tm;
	time_t now = time(NULL);
	buf_init(body);
	queue_new_id(q->env->queue, env->id);
	localtime_r(&now, &tm);
	message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
	t.helo = "jmap";
	t.client_ip = q->env->client_ip;
	t.by_host = cfg->hostname;
	t.protocol = q->env->tls ? "HTTPS" : "HTTP";
	t.queue_id = env->id;
	char for_ascii[SMTP_PATH_MAX + 1];
	t.for_rcpt = env->nrcpts != 1 ? NULL : smtp_path_ascii(
	    env->rcpts[0].path, for_ascii, sizeof(for_ascii)) == 0 ?
	    for_ascii : env->rcpts[0].path;
	t.date = date;
	message_append_received(body, &t);
	size_t start = body->len;
	buf_append(body, msg, s->msg.len);
	(void)snprintf(msgid, sizeof(msgid), "<%s@%s>", env->id,
	    cfg->hostname);
	const char *why = NULL;
	if (message_submission_fixup(body, start, date, msgid, &why) != 0 ||
	    !from_allowed(s, cfg, user, body->data + start, body->len - start)) {
		sub_fail(s, why ? "invalidEmail" : "forbiddenFrom", why ? why :
		    "From: holds an address that is not yours", NULL);
		buf_clear(body);
		free(body);
		envelope_clear(env);
		free(env);
		return;
	}
	if (cfg->limits.max_message_size &&
	    body->len > cfg->limits.max_message_size) {
		json_t *e = jq_set_error("tooLarge", NULL, NULL);
		json_object_set_new(e, "maxSize", json_integer((json_int_t)
		    cfg->limits.max_message_size));
		s->err = e;
		buf_clear(body);
		free(body);
		envelope_clear(env);
		free(env);
		return;
	}
	(void)snprintf(path, sizeof(path), "<%s>", s->mail_from);
	if (smtp_parse_mailbox(s->mail_from, strlen(s->mail_from), &sa) == 0)
		(void)smtp_addr_format(&sa, path, sizeof(path));
	env->created = (int64_t)now;
	env->client = xstrdup(q->env->client_ip);
	env->helo = xstrdup("jmap");
	env->protocol = xstrdup(t.protocol);
	env->sender = xstrdup(path);
	env->body = xstrdup(message_has_8bit(body->data + start, body->len -
	    start) ? "8BITMIME" : "7BIT");
	(void)str_copy(s->qid, sizeof(s->qid), env->id);
	s->send_at = (int64_t)now;
	bool discard;
	if (!submit_hooks(s, env, body, start, &discard) || discard) {
		if (discard)
			log_info("%s: discarded by plugin (jmap) from=%s",
			    env->id, env->sender);
		buf_clear(body);
		free(body);
		envelope_clear(env);
		free(env);
		return;          /* sub_next goes on: a discard is "sent" */
	}
	/* signed as on port 587, after the hooks (made 7-bit first) */
	char dkwhy[200];
	bool made7;
	if (dkim_sign_submitted(q->env->rt->dkim, body, start, (int64_t)now,
	    &made7, dkwhy, sizeof(dkwhy)) < 0) {
		log_warnx("%s: %s", env->id, dkwhy);
		s->err = jq_set_error("serverFail", "the message cannot be "
		    "signed now", NULL);
		buf_clear(body);
		free(body);
		envelope_clear(env);
		free(env);
		return;
	}
	if (made7) {
		free(env->body);
		env->body = xstrdup("7BIT");
	}
	env->smtputf8 = envelope_wants_smtputf8(env, body->data + start,
	    body->len - start);
	s->commit = queue_commit(q->env->queue, env, body, sub_committed, s);
}

static void
sub_read_done(void *arg)
{
	struct sub *s = arg;

	if (s->rc != 0)
		sub_fail(s, "invalidProperties", "the Email cannot be read",
		    "emailId");
	sub_next(s->ss);
}

static void subset_finish(struct subset *ss);

static void
sub_next(struct subset *ss)
{
	struct jreq *q = ss->q;

	for (size_t i = 0; i < ss->n; i++) {
		struct sub *s = &ss->subs[i];
		if (s->err || s->stage == 2)
			continue;
		if (s->stage == 0) {
			size_t n;
			const struct jloc *l = jacct_find(q->acct, s->email_id,
			    &n);
			s->stage = 1;
			if (l == NULL) {
				sub_fail(s, "invalidProperties", "no such "
				    "Email", "emailId");
				continue;
			}
			(void)str_copy(s->tid, sizeof(s->tid),
			    jacct_msg(q->acct, l)->tid);
			s->uid = jacct_box(q->acct, l[0].box)->s.m[l[0].idx].uid;
			jacct_box_run(q->acct, l[0].box, sub_read, sub_read_done,
			    s);
			return;
		}
		s->stage = 2;
		sub_send(s);
		if (s->commit)
			return;       /* sub_committed goes on */
	}
	subset_finish(ss);
}

static void
subset_free(struct subset *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct sub *s = &ss->subs[i];
		free(s->cid);
		free(s->email_id);
		free(s->identity);
		free(s->mail_from);
		json_decref(s->envelope);
		json_decref(s->err);
		json_decref(s->rcpts);
		json_decref(s->obj);
		free(s->identity_id);
		buf_clear(&s->msg);
	}
	free(ss->subs);
	json_decref(ss->args);
	json_decref(ss->destroyed);
	json_decref(ss->not_destroyed);
	free(ss);
}

static void
on_success_done(struct jreq *q, json_t *res, void *arg)
{
	(void)arg;
	jq_answer(q, "Email/set", res);
}

/* "#creation-id" or a submission's id -> its sub, or NULL. */
static struct sub *
sub_by_ref(struct subset *ss, const char *ref)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct sub *s = &ss->subs[i];
		if (s->err)
			continue;
		if (ref[0] == '#' ? strcmp(ref + 1, s->cid) == 0 :
		    ref[0] == 'S' && strcmp(ref + 1, s->qid) == 0)
			return s;
	}
	return NULL;
}

static void
subset_finish(struct subset *ss)
{
	struct jreq *q = ss->q;
	json_t *created = json_object(), *nc = json_object();

	for (size_t i = 0; i < ss->n; i++) {
		struct sub *s = &ss->subs[i];
		if (s->err) {
			json_object_set(nc, s->cid, s->err);
			continue;
		}
		/* what the server set (RFC 8620 5.3): all but what was given */
		json_t *o = json_deep_copy(s->obj);
		json_object_del(o, "identityId");
		json_object_del(o, "emailId");
		json_object_set_new(created, s->cid, o);
		jq_created(q, s->cid, json_string_value(json_object_get(s->obj,
		    "id")));
	}
	char olds[24], news[24];
	jsub_state(ss->old_top, olds);
	jsub_state(ss->new_top, news);
	json_t *res = json_pack("{s:s,s:s,s:s}", "accountId", q->account_id,
	    "oldState", olds, "newState", news);
	json_object_set_new(res, "created", json_object_size(created) ?
	    created : (json_decref(created), json_null()));
	json_object_set_new(res, "notCreated", json_object_size(nc) ? nc :
	    (json_decref(nc), json_null()));
	json_object_set_new(res, "updated", json_null());
	json_t *nu = json_object(), *v2;
	const char *k2;
	json_object_foreach(json_object_get(ss->args, "update"), k2, v2)
		json_object_set_new(nu, k2, jq_set_error("cannotUnsend",
		    "sent at once (no delayed sending)", NULL));
	json_object_set_new(res, "notUpdated", json_object_size(nu) ? nu :
	    (json_decref(nu), json_null()));
	json_object_set(res, "destroyed", json_array_size(ss->destroyed) ?
	    ss->destroyed : json_null());
	json_object_set(res, "notDestroyed",
	    json_object_size(ss->not_destroyed) ? ss->not_destroyed :
	    json_null());

	/* onSuccessUpdateEmail / onSuccessDestroyEmail: an Email/set */
	json_t *upd = json_object_get(ss->args, "onSuccessUpdateEmail");
	json_t *des = json_object_get(ss->args, "onSuccessDestroyEmail");
	json_t *eargs = NULL;
	if (json_object_size(upd) || json_array_size(des)) {
		json_t *u = json_object(), *x = json_array(), *v;
		const char *k;
		size_t i;
		json_object_foreach(upd, k, v) {
			struct sub *s = sub_by_ref(ss, k);
			if (s)
				json_object_set(u, s->email_id, v);
		}
		json_array_foreach(des, i, v) {
			struct sub *s = json_is_string(v) ? sub_by_ref(ss,
			    json_string_value(v)) : NULL;
			if (s)
				json_array_append_new(x, json_string(
				    s->email_id));
		}
		eargs = json_pack("{s:s,s:o,s:o}", "accountId", q->account_id,
		    "update", u, "destroy", x);
	}
	subset_free(ss);
	if (eargs == NULL) {
		jq_reply(q, res);
		return;
	}
	jq_push(q, q->call_name, res);
	jmap_email_set_run(q, eargs, on_success_done, NULL);
	json_decref(eargs);
}

static void destroy_next(struct subset *ss);

static void
destroy_done(struct jsub_job *j)
{
	struct subset *ss = j->arg;

	if (j->rc != 0)
		json_object_set_new(ss->not_destroyed, j->id, jq_set_error(
		    "serverFail", j->err.text, NULL));
	else if (!j->found)
		json_object_set_new(ss->not_destroyed, j->id, jq_set_error(
		    "notFound", NULL, NULL));
	else {
		json_array_append_new(ss->destroyed, json_string(j->id));
		ss->new_top = j->top;
	}
	jsub_job_free(j);
	destroy_next(ss);
}

/* The records destroyed one by one (the mail itself is gone already). */
static void
destroy_next(struct subset *ss)
{
	json_t *d = json_object_get(ss->args, "destroy");

	if (ss->next_destroy < json_array_size(d)) {
		const char *id = jq_id(ss->q, json_string_value(
		    json_array_get(d, ss->next_destroy++)));
		struct jsub_job *j = jsub_job(ss->q, JSUB_REMOVE, destroy_done,
		    ss);
		j->id = xstrdup(id ? id : "");
		jsub_submit(j);
		return;
	}
	sub_next(ss);
}

static void
set_begin(struct jsub_job *j)
{
	struct subset *ss = j->arg;
	struct jreq *q = ss->q;
	json_t *want = json_object_get(ss->args, "ifInState");
	char state[24];

	ss->old_top = ss->new_top = j->top;
	jsub_job_free(j);
	jsub_state(ss->old_top, state);
	if (json_is_string(want) && strcmp(json_string_value(want), state)) {
		subset_free(ss);
		jq_error(q, "stateMismatch", NULL);
		return;
	}
	destroy_next(ss);
}

static void
submission_set(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ifInState", A_STR_NULL }, { "create", A_OBJ_NULL },
		{ "update", A_OBJ_NULL }, { "destroy", A_IDS_NULL },
		{ "onSuccessUpdateEmail", A_OBJ_NULL },
		{ "onSuccessDestroyEmail", A_ARR_NULL }, { NULL, A_ANY } };
	json_t *create, *v;
	const char *k;

	if (!jq_check_args(q, args, spec))
		return;
	create = json_object_get(args, "create");
	if (json_object_size(create) + json_array_size(json_object_get(args,
	    "destroy")) + json_object_size(json_object_get(args, "update")) >
	    MAX_OBJECTS_IN_SET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	struct subset *ss = xcalloc(1, sizeof(*ss));
	ss->q = q;
	ss->args = json_incref(args);
	ss->destroyed = json_array();
	ss->not_destroyed = json_object();
	ss->subs = xcalloc(json_object_size(create) + 1, sizeof(*ss->subs));
	json_object_foreach(create, k, v) {
		struct sub *s = &ss->subs[ss->n++];
		s->ss = ss;
		s->cid = xstrdup(k);
		buf_init(&s->msg);
		const char *eid = json_string_value(json_object_get(v,
		    "emailId"));
		const char *iid = json_string_value(json_object_get(v,
		    "identityId"));
		json_t *env = json_object_get(v, "envelope");
		const char *key;
		json_t *x;
		json_object_foreach(v, key, x)
			if (strcmp(key, "emailId") && strcmp(key, "identityId") &&
			    strcmp(key, "envelope"))
				sub_fail(s, "invalidProperties", NULL, key);
		const char *rid = eid ? jq_id(q, eid) : NULL;
		if (rid == NULL)
			sub_fail(s, "invalidProperties", NULL, "emailId");
		else
			s->email_id = xstrdup(rid);
		if (iid == NULL || (s->identity = identity_email(q,
		    iid)) == NULL)
			sub_fail(s, "invalidProperties", NULL, "identityId");
		if (env && !json_is_null(env)) {
			if (!json_is_object(env))
				sub_fail(s, "invalidProperties", NULL,
				    "envelope");
			else
				s->envelope = json_incref(env);
		}
		if (iid)
			s->identity_id = xstrdup(iid);
	}
	/* the state first (ifInState), then the destroys, then creates */
	struct jsub_job *j = jsub_job(q, JSUB_LIST, set_begin, ss);
	j->since = INT64_MAX;
	jsub_submit(j);
}

/* The identities are read first: identityId may name one of Identity/set. */
static void
submission_set_ready(struct jreq *q, json_t *args)
{
	ident_ready(q, args, submission_set);
}

const struct method jmap_submit_methods[] = {
	{ "Identity/get", CAP_SUBMISSION, identity_get },
	{ "Identity/changes", CAP_SUBMISSION, identity_changes },
	{ "Identity/set", CAP_SUBMISSION, identity_set },
	{ "EmailSubmission/set", CAP_SUBMISSION, submission_set_ready },
	{ NULL, NULL, NULL },
};
