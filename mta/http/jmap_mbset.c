/* SPDX-License-Identifier: ISC */
/*
 * jmap_mbset.c - layer 3: Mailbox/set (RFC 8621 2.5): folders created,
 * renamed or moved (name, parentId), subscribed, destroyed, as IMAP's
 * CREATE, RENAME, SUBSCRIBE and DELETE do it (folders.c on the I/O pool,
 * the index's rows renamed or dropped with the folder). Checked on the
 * loop first from the snapshots: names (no '/', the hierarchy
 * separator), parents, siblings of the same name, roles (the special
 * folders stay), mailboxHasChild, mailboxHasEmail unless
 * onDestroyRemoveEmails. Objects run one after another; once all ran
 * the account is refreshed (so ids, names and counts are new), boxes of
 * folders gone are forgotten, and the call answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/util.h"
#include "http/jmap_account.h"
#include "http/jmap_email.h"
#include "http/jmap_int.h"
#include "imap/imap_utf7.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/store.h"

enum mkind { M_CREATE, M_UPDATE, M_DESTROY };

struct mop {
	enum mkind kind;
	char *key;                /* creation id or Mailbox id */
	json_t *err;
	char *from, *to;          /* IMAP names: old and new (create: to) */
	int subscribe;            /* -1 unchanged, 0 off, 1 on */
	char id[MBOX_ID_LEN];     /* create: the new folder's id */
	struct mbset *ms;
	int rc;
	struct tern_err terr;
};

struct mbset {
	struct jreq *q;
	struct mop *ops;
	size_t n, next;
	char *old_state;
	char *root;
	struct tindex *index;
	struct store_account *sa;
};

static void
mfail(struct mop *o, const char *type, const char *desc, const char *prop)
{
	if (o->err == NULL)
		o->err = jq_set_error(type, desc, prop);
}

/* A JMAP name under parent (IMAP name, or NULL) as an IMAP name. */
static char *
imap_name(const char *parent, const char *name)
{
	struct buf b, u;

	if (name[0] == '\0' || strchr(name, '/') || strlen(name) > 200)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	buf_init(&u);
	if (imap_utf8_to_utf7(name, &u) != 0) {
		buf_clear(&u);
		return NULL;
	}
	buf_init(&b);
	if (parent) {
		buf_append_str(&b, parent);
		buf_append_char(&b, '/');
	}
	buf_append(&b, u.data, u.len);
	buf_append_char(&b, '\0');
	buf_clear(&u);
	if (b.len > FOLDER_NAME_MAX || ascii_strcaseeq(b.data, "INBOX")) {
		buf_clear(&b);
		return NULL;
	}
	return b.data;            /* owned */
}

static bool
has_child(struct jacct *a, const char *name)
{
	size_t l = strlen(name);

	for (size_t i = 0; i < jacct_nboxes(a); i++) {
		const char *n = jacct_box(a, i)->name;
		if (strncmp(n, name, l) == 0 && n[l] == '/')
			return true;
	}
	return false;
}

/*
 * The parent's IMAP name from a parentId (NULL: top); false if unknown.
 * "#cid" may name a Mailbox made earlier in this very call.
 */
static bool
parent_of(struct mbset *ms, json_t *pid, const char **parent)
{
	struct jreq *q = ms->q;

	*parent = NULL;
	if (pid == NULL || json_is_null(pid))
		return true;
	const char *ps = json_string_value(pid);
	if (ps && ps[0] == '#')
		for (size_t i = 0; i + 1 < ms->n; i++)
			if (ms->ops[i].kind == M_CREATE && !ms->ops[i].err &&
			    ms->ops[i].to && strcmp(ms->ops[i].key, ps + 1) == 0) {
				*parent = ms->ops[i].to;
				return true;
			}
	const char *id = json_is_string(pid) ? jq_id(q, json_string_value(
	    pid)) : NULL;
	ssize_t b = id ? jacct_box_by_id(q->acct, id) : -1;
	if (b < 0)
		return false;
	*parent = jacct_box(q->acct, (size_t)b)->name;
	return true;
}

static void
plan_one(struct mbset *ms, enum mkind kind, const char *key, json_t *obj,
    bool remove_emails)
{
	struct jreq *q = ms->q;
	struct mop *o = &ms->ops[ms->n++];
	const char *k;
	json_t *v;

	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->key = xstrdup(key);
	o->subscribe = -1;
	o->ms = ms;
	const struct jbox *jb = NULL;
	if (kind != M_CREATE) {
		const char *id = jq_id(q, key);
		ssize_t b = id ? jacct_box_by_id(q->acct, id) : -1;
		if (b < 0) {
			mfail(o, "notFound", NULL, NULL);
			return;
		}
		jb = jacct_box(q->acct, (size_t)b);
		o->from = xstrdup(jb->name);
	}
	if (kind == M_DESTROY) {
		if (jb->role)
			mfail(o, "forbidden", "a special folder stays", NULL);
		else if (has_child(q->acct, jb->name))
			mfail(o, "mailboxHasChild", NULL, NULL);
		else if (jb->s.mb_n > 0 && !remove_emails)
			mfail(o, "mailboxHasEmail", NULL, NULL);
		return;
	}
	if (!json_is_object(obj)) {
		mfail(o, "invalidArguments", "not an object", NULL);
		return;
	}
	json_t *name = json_object_get(obj, "name");
	json_t *pid = json_object_get(obj, "parentId");
	json_object_foreach(obj, k, v) {
		if (strcmp(k, "name") == 0 || strcmp(k, "parentId") == 0)
			continue;
		if (strcmp(k, "isSubscribed") == 0 && json_is_boolean(v))
			o->subscribe = json_is_true(v);
		else if ((strcmp(k, "role") == 0 && json_is_null(v)) ||
		    (strcmp(k, "sortOrder") == 0 && json_is_integer(v)))
			;      /* roles come from the folders' names */
		else {
			mfail(o, "invalidProperties", NULL, k);
			return;
		}
	}
	if (kind == M_UPDATE && name == NULL && pid == NULL)
		return;        /* only the subscription */
	if (kind == M_UPDATE && jb->role) {
		mfail(o, "forbidden", "a special folder keeps its name",
		    name ? "name" : "parentId");
		return;
	}
	const char *parent;
	if (!parent_of(ms, pid, &parent)) {
		mfail(o, "invalidProperties", "no such parent", "parentId");
		return;
	}
	if (kind == M_UPDATE && pid == NULL) {
		/* the parent stays */
		const char *slash = strrchr(jb->name, '/');
		if (slash) {
			char *p = xstrndup(jb->name, (size_t)(slash - jb->name));
			ssize_t b = jacct_box_by_name(q->acct, p);
			free(p);
			parent = b >= 0 ? jacct_box(q->acct, (size_t)b)->name :
			    NULL;
		}
	}
	const char *nm = json_string_value(name);
	struct buf cur;
	buf_init(&cur);
	if (nm == NULL && kind == M_UPDATE) {
		/* moved under another parent with its name */
		const char *slash = strrchr(jb->name, '/');
		const char *leaf = slash ? slash + 1 : jb->name;
		if (imap_utf7_to_utf8(leaf, &cur) == 0) {
			buf_append_char(&cur, '\0');
			nm = cur.data;
		}
	}
	if (nm == NULL || (o->to = imap_name(parent, nm)) == NULL) {
		mfail(o, "invalidProperties", "a name without '/', not INBOX",
		    "name");
		buf_clear(&cur);
		return;
	}
	buf_clear(&cur);
	if (jacct_box_by_name(q->acct, o->to) >= 0 && (o->from == NULL ||
	    strcmp(o->from, o->to) != 0)) {
		mfail(o, "alreadyExists", NULL, "name");
		return;
	}
	if (o->from && strncmp(o->to, o->from, strlen(o->from)) == 0 &&
	    o->to[strlen(o->from)] == '/')
		mfail(o, "invalidProperties", "not under itself", "parentId");
}

static void
mop_work(void *arg)
{
	struct mop *o = arg;
	struct mbset *ms = o->ms;
	char pa[4096], pb[4096];
	struct tern_err e;

	o->rc = 0;
	memset(&e, 0, sizeof(e));
	if (o->kind == M_CREATE) {
		o->rc = folders_create(ms->root, o->to, &o->terr);
		if (o->rc == 0 && folders_path(ms->root, o->to, pa,
		    sizeof(pa)) == 0) {
			/* its uidlist now, for its id */
			struct mbox *mb = mbox_new(pa);
			bool changed;
			if (mbox_sync(mb, ms->root, false, &changed, &e) == 0)
				mbox_id(mb, o->id);
			mbox_free(mb);
		}
	} else if (o->kind == M_DESTROY) {
		o->rc = folders_delete(ms->root, o->from, &o->terr);
		if (o->rc == 0 && folders_path(ms->root, o->from, pa,
		    sizeof(pa)) == 0 && tindex_drop(ms->index,
		    store_rel(ms->sa, pa), &e) != 0)
			log_warnx("jmap: %s", e.text);
	} else if (o->to && strcmp(o->from, o->to) != 0) {
		o->rc = folders_rename(ms->root, o->from, o->to, &o->terr);
		if (o->rc == 0 && folders_path(ms->root, o->from, pa,
		    sizeof(pa)) == 0 && folders_path(ms->root, o->to, pb,
		    sizeof(pb)) == 0 && tindex_rename(ms->index,
		    store_rel(ms->sa, pa), store_rel(ms->sa, pb), &e) != 0)
			log_warnx("jmap: %s", e.text);
	}
	if (o->rc == 0 && o->subscribe >= 0)
		o->rc = folders_subscribe(ms->root, o->to ? o->to : o->from,
		    o->subscribe == 1, &o->terr);
	if (o->rc == 0 && o->kind == M_DESTROY)
		(void)folders_subscribe(ms->root, o->from, false, &e);
}

static void mbset_next(struct mbset *ms);

static void
mop_done(void *arg)
{
	struct mop *o = arg;

	if (o->rc != 0)
		mfail(o, "serverFail", o->terr.text, NULL);
	mbset_next(o->ms);
}

static void
mbset_refreshed(void *arg)
{
	struct mbset *ms = arg;
	struct jreq *q = ms->q;
	struct jq_setres r;
	char *state, path[4096];

	jq_setres_init(&r);
	for (size_t i = 0; i < ms->n; i++) {
		struct mop *o = &ms->ops[i];
		/* a box of a folder gone or moved may not linger on */
		if (!o->err && o->from && (o->kind == M_DESTROY || (o->to &&
		    strcmp(o->from, o->to) != 0)) && folders_path(ms->root,
		    o->from, path, sizeof(path)) == 0)
			store_forget_path(jacct_store(q->acct), path);
		if (o->kind == M_CREATE) {
			jq_setres_created(&r, o->key, o->err, o->err ? NULL :
			    json_pack("{s:s}", "id", o->id));
			if (!o->err)
				jq_created(q, o->key, o->id);
		} else if (o->kind == M_UPDATE)
			jq_setres_updated(&r, o->key, o->err);
		else
			jq_setres_destroyed(&r, o->key, o->err);
		free(o->key);
		free(o->from);
		free(o->to);
		json_decref(o->err);
	}
	state = jacct_mailbox_state(q->acct);
	json_t *res = jq_setres_finish(q, &r, ms->old_state, state);
	free(state);
	free(ms->old_state);
	free(ms->ops);
	free(ms->root);
	free(ms);
	jq_reply(q, res);
}

static void
mbset_next(struct mbset *ms)
{
	while (ms->next < ms->n) {
		struct mop *o = &ms->ops[ms->next++];
		if (o->err || (o->kind == M_UPDATE && o->subscribe < 0 &&
		    (o->to == NULL || strcmp(o->from, o->to) == 0)))
			continue;
		iopool_submit(store_pool(jacct_store(ms->q->acct)), mop_work,
		    mop_done, o);
		return;
	}
	jacct_refresh(ms->q->acct, mbset_refreshed, ms);
}

static void
mailbox_set(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ifInState", A_STR_NULL }, { "create", A_OBJ_NULL },
		{ "update", A_OBJ_NULL }, { "destroy", A_IDS_NULL },
		{ "onDestroyRemoveEmails", A_BOOL }, { NULL, A_ANY } };
	json_t *create, *update, *destroy, *v;
	const char *k;
	size_t i;

	if (!jq_check_args(q, args, spec))
		return;
	create = json_object_get(args, "create");
	update = json_object_get(args, "update");
	destroy = json_object_get(args, "destroy");
	size_t n = json_object_size(create) + json_object_size(update) +
	    json_array_size(destroy);
	if (n > MAX_OBJECTS_IN_SET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	struct mbset *ms = xcalloc(1, sizeof(*ms));
	ms->q = q;
	ms->old_state = jacct_mailbox_state(q->acct);
	if ((v = json_object_get(args, "ifInState")) && json_is_string(v) &&
	    strcmp(json_string_value(v), ms->old_state) != 0) {
		free(ms->old_state);
		free(ms);
		jq_error(q, "stateMismatch", NULL);
		return;
	}
	ms->root = xstrdup(jacct_root(q->acct));
	ms->sa = jacct_store_account(q->acct);
	ms->index = store_account_index(ms->sa);
	ms->ops = xcalloc(n + 1, sizeof(*ms->ops));
	bool rm = json_is_true(json_object_get(args, "onDestroyRemoveEmails"));
	json_object_foreach(create, k, v)
		plan_one(ms, M_CREATE, k, v, rm);
	json_object_foreach(update, k, v)
		plan_one(ms, M_UPDATE, k, v, rm);
	json_array_foreach(destroy, i, v)
		plan_one(ms, M_DESTROY, json_string_value(v), NULL, rm);
	mbset_next(ms);
}

const struct method jmap_mbset_methods[] = {
	{ "Mailbox/set", CAP_MAIL, mailbox_set },
	{ NULL, NULL, NULL },
};
