/* SPDX-License-Identifier: ISC */
/*
 * jmap_set.c - layer 3: Email/set (RFC 8621 4.6). A call is planned on
 * the loop from the snapshots (what each create, update and destroy
 * must do to which folder), then its steps run one after another, each
 * a job of its folder on the I/O pool or an APPEND through the store:
 *
 *   keywords   -> Maildir flags and dovecot-keywords (a rename in cur/)
 *   mailboxIds -> hard links into the folders added (COPY's mbox_copy),
 *                 the files in the folders left unlinked
 *   destroy    -> every copy unlinked
 *   create     -> the attachments' blobs read, the RFC 5322 text made
 *                 (jmap_body.c), appended to the first folder (fsynced,
 *                 as IMAP APPEND), linked into the others
 *
 * A step that fails marks its object failed (notCreated/notUpdated/
 * notDestroyed) and skips the rest of that object's steps. Steps name
 * folders by IMAP name and messages by UID, never by snapshot index, so
 * a refresh by another request meanwhile cannot mislead them. Once all
 * ran, the account is refreshed and the call answers with the new state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/iopool.h"
#include "http/jmap_account.h"
#include "store/blobs.h"
#include "http/jmap_body.h"
#include "http/jmap_email.h"
#include "http/jmap_int.h"
#include "lua/config.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"
#include "runtime.h"
#include "store/mailbox.h"
#include "store/store.h"

#define KW_MAX 64                 /* keywords on one Email */

enum okind { K_CREATE, K_UPDATE, K_DESTROY };

struct eobj {
	enum okind kind;
	char *key;                /* creation id, or the Email id */
	json_t *err;              /* its SetError once failed */
	/* create */
	json_t *create;           /* the object (held) */
	char *box;                /* where it was appended */
	uint32_t uid;
	char id[SORT_ID_LEN], tid[SORT_ID_LEN];
	uint64_t size;
	bool import;              /* Email/import: the blob is the message */
};

enum step_kind { S_READ, S_UPLOAD, S_BUILD, S_APPEND, S_FLAGS, S_COPY,
	S_REMOVE, S_INFO };

struct eset;

struct step {
	enum step_kind kind;
	size_t obj;
	struct eset *es;
	char *box;                /* the folder it runs in (IMAP name); NULL:
	                           * the object's (create) */
	uint32_t uid;             /* 0: the object's (create) */
	uint8_t flags;            /* S_FLAGS, S_APPEND */
	char *kw[KW_MAX];         /* keyword names */
	size_t nkw;
	char *dst;                /* S_COPY: the target folder's path */
	char *blob;               /* S_READ: the blob id */
	char part[JMAP_PART_LEN]; /* S_READ: "" for the whole message */
	char type[130];           /* S_READ: its type */
	struct buf data;          /* S_READ: the bytes; S_APPEND: message */
	int64_t received;         /* S_APPEND */
	char *root;
	/* results */
	int rc;
	bool missing;             /* the message was not there */
	struct tern_err err;
	struct store_append app;
};

struct eset {
	struct jreq *q;
	struct eobj *objs;
	size_t nobjs;
	struct step *steps;
	size_t nsteps, next;
	char *old_state;
	jmap_set_done done;
	void *arg;
	bool running;             /* inside step(): do not recurse */
	bool again;               /* a step ended while running */
};

static struct eobj *
add_obj(struct eset *es, enum okind kind, const char *key)
{
	es->objs = xreallocarray(es->objs, es->nobjs + 1, sizeof(*es->objs));
	struct eobj *o = &es->objs[es->nobjs++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->key = xstrdup(key);
	return o;
}

static struct step *
add_step(struct eset *es, enum step_kind kind, const char *box,
    uint32_t uid)
{
	es->steps = xreallocarray(es->steps, es->nsteps + 1,
	    sizeof(*es->steps));
	struct step *s = &es->steps[es->nsteps++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->obj = es->nobjs - 1;
	s->box = box ? xstrdup(box) : NULL;
	s->uid = uid;
	buf_init(&s->data);
	return s;
}

static void
fail(struct eobj *o, const char *type, const char *desc, const char *prop)
{
	if (o->err == NULL)
		o->err = jq_set_error(type, desc, prop);
}

/* --- keywords ------------------------------------------------------------ */

/* A keyword name JMAP allows (RFC 8621 4.1.1), lower-cased into out. */
static bool
keyword_ok(const char *k, char *out, size_t outsz)
{
	size_t n = strlen(k);

	if (n == 0 || n > 255 || n >= outsz)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c < 0x21 || c > 0x7e || strchr("(){]%*\"\\", c))
			return false;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	return true;
}

/* The keyword set of a copy as flags and names (lower case, owned). */
struct kwset {
	uint8_t flags;
	char *kw[KW_MAX];
	size_t nkw;
};

static void
kwset_clear(struct kwset *k)
{
	for (size_t i = 0; i < k->nkw; i++)
		free(k->kw[i]);
	k->nkw = 0;
	k->flags = 0;
}

static bool
kwset_set(struct kwset *k, const char *name, bool on)
{
	uint8_t f = jq_sys_flag(name);

	if (f) {
		k->flags = on ? (uint8_t)(k->flags | f) : (uint8_t)(k->flags &
		    ~f);
		return true;
	}
	for (size_t i = 0; i < k->nkw; i++)
		if (strcmp(k->kw[i], name) == 0) {
			if (!on) {
				free(k->kw[i]);
				k->kw[i] = k->kw[--k->nkw];
			}
			return true;
		}
	if (!on)
		return true;
	if (k->nkw == KW_MAX)
		return false;
	k->kw[k->nkw++] = xstrdup(name);
	return true;
}

static void
kwset_of(struct kwset *k, const struct jbox *jb, const struct jsnap_msg *m)
{
	k->flags = m->flags & (uint8_t)~MBOX_DELETED;
	k->nkw = 0;
	for (size_t i = 0; i < jb->s.nkw && k->nkw < KW_MAX; i++)
		if (jb->s.kw[i] && (m->kw & (1u << i))) {
			char *l = xstrdup(jb->s.kw[i]);
			ascii_lower(l);
			k->kw[k->nkw++] = l;
		}
}

/* A keywords object (every value true) into k; false if it is not one. */
static bool
kwset_from_json(struct kwset *k, json_t *obj)
{
	const char *name;
	json_t *v;
	char l[256];

	if (!json_is_object(obj))
		return false;
	json_object_foreach(obj, name, v)
		if (!json_is_true(v) || !keyword_ok(name, l, sizeof(l)) ||
		    !kwset_set(k, l, true))
			return false;
	return true;
}

static void
step_take_kw(struct step *s, struct kwset *k)
{
	s->flags = k->flags;
	for (size_t i = 0; i < k->nkw; i++)
		s->kw[i] = xstrdup(k->kw[i]);
	s->nkw = k->nkw;
}

/* --- the steps, on workers ----------------------------------------------- */

/* Keyword names to bits of mb, added (and saved) as needed. */
static int
kw_bits(struct mbox *mb, char *const *kw, size_t n, uint32_t *bits,
    struct tern_err *err)
{
	bool saved = false;

	mbox_load_keywords(mb);
	*bits = 0;
	for (size_t i = 0; i < n; i++) {
		int k = keywords_find(&mb->kw, kw[i]);
		if (k < 0) {
			k = keywords_add(&mb->kw, kw[i]);
			saved = true;
		}
		if (k < 0) {
			tern_err_set(err, 452, "4.2.2", "the folder has no room for "
			    "more keywords");
			return -1;
		}
		*bits |= 1u << k;
	}
	return saved ? mbox_save_keywords(mb, err) : 0;
}

static bool
step_work(struct mbox *mb, void *arg)
{
	struct step *s = arg;
	ssize_t i = mbox_find_uid(mb, s->uid);
	bool changed = false;
	uint32_t bits;

	s->rc = -1;
	if (i < 0) {
		s->missing = true;
		return false;
	}
	struct mbox_msg *m = &mb->m[i];
	switch (s->kind) {
	case S_FLAGS: {
		if (kw_bits(mb, s->kw, s->nkw, &bits, &s->err) != 0)
			return false;
		uint8_t nf = (uint8_t)(s->flags | (m->flags & MBOX_DELETED));
		if (nf == m->flags && bits == m->kw) {
			s->rc = 0;
			return false;
		}
		s->rc = mbox_set_flags(mb, (size_t)i, nf, bits, &s->err);
		return s->rc == 0;
	}
	case S_COPY: {
		struct mbox *dst = mbox_new(s->dst);
		size_t idx = (size_t)i;
		uint32_t uid;
		if (mbox_sync(dst, s->root, false, &changed, &s->err) == 0 &&
		    mbox_copy(mb, &idx, 1, dst, s->root, &uid, &s->err) == 0)
			s->rc = 0;
		mbox_free(dst);
		return false;
	}
	case S_REMOVE:
		if (mbox_remove(mb, (size_t)i, &s->err) == 0 &&
		    mbox_sync(mb, s->root, false, &changed, &s->err) == 0)
			s->rc = 0;
		return true;
	case S_INFO: {
		struct eobj *o = &s->es->objs[s->obj];
		sort_email_id(m->base, o->id);
		sort_thread_id(mbox_sort_keys(mb, (size_t)i), m->base, o->tid);
		s->rc = 0;
		return false;
	}
	case S_READ: {
		struct buf lf;
		buf_init(&lf);
		if (mbox_read(mb, (size_t)i, &lf, MAX_SIZE_UPLOAD, &s->err) == 0) {
			const char *t = lf.data ? lf.data : "";
			if (s->part[0] == '\0') {
				buf_append(&s->data, t, lf.len);
				(void)str_copy(s->type, sizeof(s->type),
				    "message/rfc822");
				s->rc = 0;
			} else
				s->rc = jmap_part_data(t, lf.len, s->part,
				    &s->data, s->type, sizeof(s->type));
		}
		buf_clear(&lf);
		return false;
	}
	default:
		return false;
	}
}

/* An uploaded blob (RFC 8620 6.1), from tern-uploads/. */
static void
upload_work(void *arg)
{
	struct step *s = arg;

	s->rc = blob_read(s->root, s->blob, &s->data, MAX_SIZE_UPLOAD);
	s->missing = s->rc != 0;
	(void)str_copy(s->type, sizeof(s->type), "application/octet-stream");
}

static void step_run(struct eset *es);

static void
step_done(void *arg)
{
	struct step *s = arg;
	struct eset *es = s->es;
	struct eobj *o = &es->objs[s->obj];

	if (s->rc != 0) {
		if (s->missing)
			fail(o, s->kind == S_READ || s->kind == S_UPLOAD ?
			    "blobNotFound" : "notFound",
			    NULL, NULL);
		else
			fail(o, "serverFail", s->err.text[0] ? s->err.text :
			    "the folder could not be changed", NULL);
	}
	if (s->kind == S_COPY && s->rc == 0)
		store_notify_path(jacct_store(es->q->acct), s->dst);
	step_run(es);
}

static void
append_done(void *arg)
{
	struct step *s = arg;
	struct eset *es = s->es;
	struct eobj *o = &es->objs[s->obj];

	if (s->app.rc != 0)
		fail(o, s->app.err.code == 452 || s->app.err.code == 552 ?
		    "overQuota" : "serverFail", s->app.err.text, NULL);
	else
		o->uid = s->app.uid;
	step_run(es);
}

/* --- making a created message -------------------------------------------- */

/*
 * Email/import: the blob is the message, if it is one (a header section
 * of fields, RFC 5322), kept with LF line ends as every Maildir file.
 */
static void
import_text(struct eobj *o, const struct jmap_blob *b, struct buf *out)
{
	struct message_field f;
	size_t pos = 0;

	if (b == NULL || b->len == 0) {
		fail(o, "blobNotFound", NULL, NULL);
		return;
	}
	for (size_t i = 0; i < b->len; i++)
		if (!(b->data[i] == '\r' && i + 1 < b->len &&
		    b->data[i + 1] == '\n'))
			buf_append_char(out, b->data[i]);
	const char *t = out->data ? out->data : "";
	size_t hl = message_header_len(t, out->len);
	if (hl == 0 || !message_next_field(t, hl, &pos, &f)) {
		buf_clear(out);
		fail(o, "invalidEmail", "the blob is no RFC 5322 message", NULL);
		return;
	}
	o->size = mime_crlf_size(t, out->len);
}

static void
build(struct eset *es, struct step *s, struct eobj *o)
{
	const struct config *cfg = es->q->env->rt->cfg;
	struct jmap_blob blobs[64];
	size_t nb = 0;
	char date[64], msgid[300], seed[40], why[200];
	unsigned char rnd[12];
	const char *bad;
	struct tm tm;
	time_t now = time(NULL);

	for (size_t i = 0; i < es->nsteps; i++) {
		struct step *r = &es->steps[i];
		if (r->obj == s->obj && (r->kind == S_READ ||
		    r->kind == S_UPLOAD) && r->rc == 0 &&
		    nb < sizeof(blobs) / sizeof(blobs[0])) {
			blobs[nb].id = r->blob;
			blobs[nb].data = r->data.data ? r->data.data : "";
			blobs[nb].len = r->data.len;
			blobs[nb].type = r->type;
			nb++;
		}
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		(void)snprintf(seed + 2 * i, 3, "%02x", rnd[i]);
	localtime_r(&now, &tm);
	message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
	(void)snprintf(msgid, sizeof(msgid), "%s.%lld@%s", seed,
	    (long long)now, cfg->hostname);
	/* the append step right after takes the text */
	struct step *a = s + 1;
	if (o->import) {
		import_text(o, nb ? &blobs[0] : NULL, &a->data);
		return;
	}
	if (jmap_email_build(o->create, date, msgid, seed, blobs, nb, &a->data,
	    &bad, why, sizeof(why)) != 0) {
		fail(o, "invalidProperties", why, bad);
		return;
	}
	o->size = mime_crlf_size(a->data.data ? a->data.data : "",
	    a->data.len);
}

/* --- running ------------------------------------------------------------- */

static void finish(struct eset *es);
static void refreshed(void *arg);

static void
step_run(struct eset *es)
{
	if (es->running) {
		es->again = true;
		return;
	}
	es->running = true;
	do {
		es->again = false;
		while (es->next < es->nsteps) {
			struct step *s = &es->steps[es->next++];
			struct eobj *o = &es->objs[s->obj];
			if (o->err)
				continue;
			s->es = es;
			const char *name = s->box ? s->box : o->box;
			if (s->uid == 0)
				s->uid = o->uid;
			if (s->kind == S_BUILD) {
				build(es, s, o);
				continue;
			}
			if (s->kind == S_UPLOAD) {
				s->root = xstrdup(jacct_root(es->q->acct));
				iopool_submit(jacct_pool(es->q->acct),
				    upload_work, step_done, s);
				goto out;
			}
			ssize_t b = name ? jacct_box_by_name(es->q->acct,
			    name) : -1;
			if (b < 0) {
				fail(o, "notFound", "the folder is gone", NULL);
				continue;
			}
			struct jbox *jb = jacct_box(es->q->acct, (size_t)b);
			s->root = xstrdup(jacct_root(es->q->acct));
			if (s->kind == S_APPEND) {
				const struct config *cfg = es->q->env->rt->cfg;
				s->app.data = s->data.data ? s->data.data : "";
				s->app.len = s->data.len;
				s->app.flags = s->flags;
				s->app.kw = (const char *const *)s->kw;
				s->app.nkw = s->nkw;
				s->app.internaldate = s->received;
				s->app.quota_bytes = cfg->limits.quota_storage;
				s->app.quota_messages =
				    cfg->limits.quota_messages;
				s->app.done = append_done;
				s->app.arg = s;
				store_box_append(jb->b, &s->app);
			} else
				jacct_box_run(es->q->acct, (size_t)b,
				    step_work, step_done, s);
			goto out;     /* its done runs step_run again */
		}
	} while (es->again);
	es->running = false;
	/* everything ran: the snapshots again, then the answer */
	jacct_refresh(es->q->acct, refreshed, es);
	return;
out:
	es->running = false;
	if (es->again)
		step_run(es);
}

static void
refreshed(void *arg)
{
	finish(arg);
}

static void
eset_free(struct eset *es)
{
	for (size_t i = 0; i < es->nobjs; i++) {
		free(es->objs[i].key);
		free(es->objs[i].box);
		json_decref(es->objs[i].create);
		json_decref(es->objs[i].err);
	}
	for (size_t i = 0; i < es->nsteps; i++) {
		struct step *s = &es->steps[i];
		free(s->box);
		free(s->dst);
		free(s->blob);
		free(s->root);
		for (size_t k = 0; k < s->nkw; k++)
			free(s->kw[k]);
		buf_clear(&s->data);
	}
	free(es->objs);
	free(es->steps);
	free(es->old_state);
	free(es);
}

static void
finish(struct eset *es)
{
	struct jreq *q = es->q;
	struct jq_setres r;
	char *state;

	jq_setres_init(&r);
	for (size_t i = 0; i < es->nobjs; i++) {
		struct eobj *o = &es->objs[i];
		switch (o->kind) {
		case K_CREATE: {
			char blob[SORT_ID_LEN + 2];
			(void)snprintf(blob, sizeof(blob), "m%s", o->id);
			jq_setres_created(&r, o->key, o->err, o->err ? NULL :
			    json_pack("{s:s,s:s,s:s,s:I}", "id", o->id, "blobId",
			    blob, "threadId", o->tid, "size",
			    (json_int_t)o->size));
			if (!o->err)
				jq_created(q, o->key, o->id);
			break;
		}
		case K_UPDATE:
			jq_setres_updated(&r, o->key, o->err);
			break;
		case K_DESTROY:
			jq_setres_destroyed(&r, o->key, o->err);
			break;
		}
	}
	state = jacct_email_state(q->acct);
	json_t *res = jq_setres_finish(q, &r, es->old_state, state);
	free(state);
	jmap_set_done done = es->done;
	void *arg = es->arg;
	eset_free(es);
	done(q, res, arg);
}

/* --- planning ------------------------------------------------------------ */

/* The box ids of a mailboxIds object (values true), resolved; -1: bad. */
static int
box_set(struct jreq *q, json_t *obj, bool *in)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	if (!json_is_object(obj))
		return -1;
	json_object_foreach(obj, k, v) {
		const char *id = jq_id(q, k);
		ssize_t b = id ? jacct_box_by_id(q->acct, id) : -1;
		if (!json_is_true(v) || b < 0)
			return -1;
		in[b] = true;
		n++;
	}
	return (int)n;
}

/* A step that reads blob (uploaded, a message, a part); false if the
 * blob is not known. */
static bool
plan_blob(struct eset *es, const char *blob)
{
	struct jreq *q = es->q;
	char email[JMAP_BLOB_LEN], part[JMAP_PART_LEN] = "";
	size_t n = 0;
	const struct jloc *l = NULL;

	if (blob_id_valid(blob)) {
		add_step(es, S_UPLOAD, NULL, 0)->blob = xstrdup(blob);
		return true;
	}
	if (blob[0] == 'm')
		l = jacct_find(q->acct, blob + 1, &n);
	else if (jmap_part_blob_parse(blob, email, sizeof(email), part))
		l = jacct_find(q->acct, email, &n);
	if (l == NULL)
		return false;
	const struct jbox *jb = jacct_box(q->acct, l[0].box);
	struct step *s = add_step(es, S_READ, jb->name, jb->s.m[l[0].idx].uid);
	s->blob = xstrdup(blob);
	(void)str_copy(s->part, sizeof(s->part), part);
	return true;
}

/* mailboxIds, keywords and receivedAt of a create or an import. */
static bool
plan_where(struct eset *es, struct eobj *o, json_t *c, bool *in,
    struct kwset *k, int64_t *received)
{
	if (!json_is_object(c)) {
		fail(o, "invalidArguments", "not an object", NULL);
		return false;
	}
	if (box_set(es->q, json_object_get(c, "mailboxIds"), in) <= 0) {
		fail(o, "invalidProperties", "mailboxIds must name one or more "
		    "mailboxes", "mailboxIds");
		return false;
	}
	json_t *kw = json_object_get(c, "keywords");
	if (kw && !kwset_from_json(k, kw)) {
		fail(o, "invalidProperties", NULL, "keywords");
		return false;
	}
	json_t *ra = json_object_get(c, "receivedAt");
	if (ra) {
		int64_t t;
		if (!json_is_string(ra) || !jmap_parse_utc_date(
		    json_string_value(ra), &t) || t <= 0) {
			fail(o, "invalidProperties", NULL, "receivedAt");
			return false;
		}
		*received = t;
	}
	return true;
}

static void plan_store(struct eset *es, struct eobj *o, const bool *in,
    struct kwset *k, int64_t received);

/* A create of Email/set, or (import) one of Email/import (RFC 8621
 * 4.8): the blob as it is. */
static void
plan_new(struct eset *es, const char *cid, json_t *c, bool import)
{
	struct jreq *q = es->q;
	size_t nb = jacct_nboxes(q->acct);
	struct eobj *o = add_obj(es, K_CREATE, cid);
	bool *in = xcalloc(nb + 1, sizeof(bool));
	struct kwset k = { 0 };
	int64_t received = 0;
	const char *key;
	size_t i;
	json_t *v;

	o->import = import;
	if (!plan_where(es, o, c, in, &k, &received))
		goto out;
	if (import) {
		json_object_foreach(c, key, v)
			if (strcmp(key, "blobId") && strcmp(key, "mailboxIds") &&
			    strcmp(key, "keywords") && strcmp(key, "receivedAt")) {
				fail(o, "invalidProperties", NULL, key);
				goto out;
			}
		v = json_object_get(c, "blobId");
		if (!json_is_string(v)) {
			fail(o, "invalidProperties", NULL, "blobId");
			goto out;
		}
		if (!plan_blob(es, json_string_value(v))) {
			fail(o, "blobNotFound", json_string_value(v), "blobId");
			goto out;
		}
	} else {
		o->create = json_incref(c);
		/* the blobs of the attachments first */
		json_t *refs = jmap_email_blob_refs(c);
		json_array_foreach(refs, i, v)
			if (!plan_blob(es, json_string_value(v))) {
				fail(o, "blobNotFound", json_string_value(v),
				    "attachments");
				json_decref(refs);
				goto out;
			}
		json_decref(refs);
	}
	plan_store(es, o, in, &k, received);
out:
	kwset_clear(&k);
	free(in);
}

/* The message made (or the blob checked), appended, copied, known. */
static void
plan_store(struct eset *es, struct eobj *o, const bool *in, struct kwset *k,
    int64_t received)
{
	struct jreq *q = es->q;
	size_t nb = jacct_nboxes(q->acct);

	(void)add_step(es, S_BUILD, NULL, 0);
	size_t first = nb;
	for (size_t b = 0; b < nb && first == nb; b++)
		if (in[b])
			first = b;
	const struct jbox *fb = jacct_box(q->acct, first);
	o->box = xstrdup(fb->name);
	struct step *a = add_step(es, S_APPEND, fb->name, 0);
	step_take_kw(a, k);
	a->received = received;
	for (size_t b = first + 1; b < nb; b++)
		if (in[b]) {
			struct step *s = add_step(es, S_COPY, NULL, 0);
			s->dst = xstrdup(jacct_box(q->acct, b)->path);
		}
	(void)add_step(es, S_INFO, NULL, 0);
}

static void
plan_update(struct eset *es, const char *id, json_t *patch)
{
	struct jreq *q = es->q;
	size_t nb = jacct_nboxes(q->acct), n;
	struct eobj *o = add_obj(es, K_UPDATE, id);
	const struct jloc *l = jacct_find(q->acct, id, &n);
	bool *cur = xcalloc(nb + 1, sizeof(bool));
	bool *want = xcalloc(nb + 1, sizeof(bool));
	struct kwset k = { 0 };
	bool kw_changed = false, box_full = false, box_part = false,
	    kw_full = false, kw_part = false;
	const char *key;
	json_t *v;
	char l2[256];

	if (l == NULL) {
		fail(o, "notFound", NULL, NULL);
		goto out;
	}
	if (!json_is_object(patch)) {
		fail(o, "invalidPatch", NULL, NULL);
		goto out;
	}
	const struct jbox *jb0 = jacct_box(q->acct, l[0].box);
	uint32_t uid0 = jb0->s.m[l[0].idx].uid;
	kwset_of(&k, jb0, &jb0->s.m[l[0].idx]);
	for (size_t i = 0; i < n; i++)
		cur[l[i].box] = want[l[i].box] = true;
	json_object_foreach(patch, key, v) {
		if (strcmp(key, "keywords") == 0) {
			kw_full = kw_changed = true;
			kwset_clear(&k);
			if (!kwset_from_json(&k, v)) {
				fail(o, "invalidProperties", NULL, "keywords");
				goto out;
			}
		} else if (strncmp(key, "keywords/", 9) == 0) {
			kw_part = kw_changed = true;
			if ((!json_is_true(v) && !json_is_null(v)) ||
			    !keyword_ok(key + 9, l2, sizeof(l2)) ||
			    !kwset_set(&k, l2, json_is_true(v))) {
				fail(o, "invalidProperties", NULL, key);
				goto out;
			}
		} else if (strcmp(key, "mailboxIds") == 0) {
			box_full = true;
			memset(want, 0, nb * sizeof(bool));
			if (box_set(q, v, want) < 0) {
				fail(o, "invalidProperties", NULL,
				    "mailboxIds");
				goto out;
			}
		} else if (strncmp(key, "mailboxIds/", 11) == 0) {
			box_part = true;
			const char *bid = jq_id(q, key + 11);
			ssize_t b = bid ? jacct_box_by_id(q->acct, bid) : -1;
			if (b < 0 || (!json_is_true(v) && !json_is_null(v))) {
				fail(o, "invalidProperties", NULL, key);
				goto out;
			}
			want[b] = json_is_true(v);
		} else {
			fail(o, "invalidProperties", "only keywords and "
			    "mailboxIds can be changed", key);
			goto out;
		}
	}
	if ((kw_full && kw_part) || (box_full && box_part)) {
		fail(o, "invalidPatch", "a property and a path into it", NULL);
		goto out;
	}
	size_t nwant = 0;
	for (size_t b = 0; b < nb; b++)
		nwant += want[b];
	if (nwant == 0) {
		fail(o, "invalidProperties", "an Email is in one mailbox at "
		    "least", "mailboxIds");
		goto out;
	}
	if (kw_changed)
		for (size_t i = 0; i < n; i++) {
			const struct jbox *jb = jacct_box(q->acct, l[i].box);
			struct step *s = add_step(es, S_FLAGS, jb->name,
			    jb->s.m[l[i].idx].uid);
			step_take_kw(s, &k);
		}
	for (size_t b = 0; b < nb; b++)
		if (want[b] && !cur[b]) {
			struct step *s = add_step(es, S_COPY, jb0->name, uid0);
			s->dst = xstrdup(jacct_box(q->acct, b)->path);
		}
	for (size_t i = 0; i < n; i++)
		if (!want[l[i].box]) {
			const struct jbox *jb = jacct_box(q->acct, l[i].box);
			(void)add_step(es, S_REMOVE, jb->name,
			    jb->s.m[l[i].idx].uid);
		}
out:
	kwset_clear(&k);
	free(cur);
	free(want);
}

static void
plan_destroy(struct eset *es, const char *id)
{
	size_t n;
	struct eobj *o = add_obj(es, K_DESTROY, id);
	const struct jloc *l = jacct_find(es->q->acct, id, &n);

	if (l == NULL) {
		fail(o, "notFound", NULL, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct jbox *jb = jacct_box(es->q->acct, l[i].box);
		(void)add_step(es, S_REMOVE, jb->name, jb->s.m[l[i].idx].uid);
	}
}

void
jmap_email_set_run(struct jreq *q, json_t *args, jmap_set_done done,
    void *arg)
{
	struct eset *es = xcalloc(1, sizeof(*es));
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	const char *k;
	json_t *v;
	size_t i;

	es->q = q;
	es->done = done;
	es->arg = arg;
	es->old_state = jacct_email_state(q->acct);
	json_object_foreach(create, k, v)
		plan_new(es, k, v, false);
	json_object_foreach(update, k, v) {
		const char *id = jq_id(q, k);
		plan_update(es, id ? id : k, v);
	}
	json_array_foreach(destroy, i, v) {
		const char *id = jq_id(q, json_string_value(v));
		plan_destroy(es, id ? id : json_string_value(v));
	}
	step_run(es);
}

static void
set_answered(struct jreq *q, json_t *res, void *arg)
{
	(void)arg;
	jq_reply(q, res);
}

static void
email_set(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ifInState", A_STR_NULL }, { "create", A_OBJ_NULL },
		{ "update", A_OBJ_NULL }, { "destroy", A_IDS_NULL },
		{ NULL, A_ANY } };
	json_t *v;

	if (!jq_check_args(q, args, spec))
		return;
	size_t n = json_object_size(json_object_get(args, "create")) +
	    json_object_size(json_object_get(args, "update")) +
	    json_array_size(json_object_get(args, "destroy"));
	if (n > MAX_OBJECTS_IN_SET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	char *state = jacct_email_state(q->acct);
	bool mismatch = (v = json_object_get(args, "ifInState")) &&
	    json_is_string(v) && strcmp(json_string_value(v), state) != 0;
	free(state);
	if (mismatch) {
		jq_error(q, "stateMismatch", NULL);
		return;
	}
	jmap_email_set_run(q, args, set_answered, NULL);
}

static void
import_answered(struct jreq *q, json_t *res, void *arg)
{
	static const char *const not_import[] = { "updated", "destroyed",
		"notUpdated", "notDestroyed" };

	(void)arg;
	for (size_t i = 0; i < 4; i++)
		json_object_del(res, not_import[i]);
	jq_reply(q, res);
}

static void
email_import(struct jreq *q, json_t *args)
{
	static const struct aspec spec[] = { { "accountId", A_STR },
		{ "ifInState", A_STR_NULL }, { "emails", A_OBJ_NULL },
		{ NULL, A_ANY } };
	json_t *emails = json_object_get(args, "emails"), *v;
	const char *k;

	if (!jq_check_args(q, args, spec))
		return;
	if (!json_is_object(emails)) {
		jq_error(q, "invalidArguments", "emails is required");
		return;
	}
	if (json_object_size(emails) > MAX_OBJECTS_IN_SET) {
		jq_error(q, "requestTooLarge", NULL);
		return;
	}
	struct eset *es = xcalloc(1, sizeof(*es));
	es->q = q;
	es->done = import_answered;
	es->old_state = jacct_email_state(q->acct);
	if ((v = json_object_get(args, "ifInState")) && json_is_string(v) &&
	    strcmp(json_string_value(v), es->old_state) != 0) {
		free(es->old_state);
		free(es);
		jq_error(q, "stateMismatch", NULL);
		return;
	}
	json_object_foreach(emails, k, v)
		plan_new(es, k, v, true);
	step_run(es);
}

const struct method jmap_set_methods[] = {
	{ "Email/set", CAP_MAIL, email_set },
	{ "Email/import", CAP_MAIL, email_import },
	{ NULL, NULL, NULL },
};
