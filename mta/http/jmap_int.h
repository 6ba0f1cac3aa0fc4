/* SPDX-License-Identifier: ISC */
/*
 * jmap_int.h - layer 3: what the files of the JMAP API share: a request
 * in progress, the answering and argument-checking helpers (jmap_api.c),
 * and the method tables of the other files (jmap_set.c: Email/set; jmap_changes.c: the /changes; jmap_query.c: Email/query;
 * jmap_mbset.c: Mailbox/set; jmap_submit.c: Identity, EmailSubmission).
 * Loop thread only.
 */
#ifndef TERN_JMAP_INT_H
#define TERN_JMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "base/util.h"
#include "http/jmap_api.h"
#include "http/jmap_req.h"

#define CAP_CORE "urn:ietf:params:jmap:core"
#define CAP_MAIL "urn:ietf:params:jmap:mail"
#define CAP_SUBMISSION "urn:ietf:params:jmap:submission"
#define MAX_OBJECTS_IN_GET 1000
#define MAX_OBJECTS_IN_SET 500
#define MAX_SIZE_REQUEST 10000000
#define MAX_SIZE_UPLOAD JMAP_MAX_UPLOAD
#define MAX_QUERY_LIMIT 1000      /* a query's page at most */
#define HEAD_READ_MAX (256 * 1024)

struct jreq;
typedef void (*method_fn)(struct jreq *q, json_t *args);

struct method {
	const char *name;
	const char *cap;
	method_fn fn;
};

struct jreq {
	struct jacct *acct;
	const struct jmap_env *env;
	char account_id[20];
	struct jmap_request r;
	json_t *responses;
	json_t *created;          /* creation id -> id, this request's */
	size_t i;                 /* the call running */
	const char *call_id;
	const char *call_name;
	struct timespec call_start;   /* for its duration (metrics) */
	const char *call_method;  /* a method's name, or "unknown" */
	jmap_api_done done;
	void *arg;
	bool answered;            /* the running call has answered */
	bool in_call;             /* inside its method function */
};

enum atype { A_ANY, A_STR, A_STR_NULL, A_BOOL, A_INT, A_UINT, A_OBJ_NULL,
	A_ARR_NULL, A_IDS_NULL, A_STRS_NULL };

struct aspec {
	const char *name;
	enum atype type;
};

/* The method's response (args owned); the next call runs after it. */
void jq_reply(struct jreq *q, json_t *args);
void jq_error(struct jreq *q, const char *type, const char *desc);
/* Arguments known and typed, accountId ours; else the error is sent. */
bool jq_check_args(struct jreq *q, json_t *args, const struct aspec *spec);
bool jq_props_known(struct jreq *q, json_t *props, const char *const *known,
    unsigned (*extra)(const char *));
bool jq_want_prop(json_t *props, const char *name);
/* An id, or "#creation-id" made earlier in this request: NULL if unknown. */
const char *jq_id(struct jreq *q, const char *id);
/* Records a creation id's new id (RFC 8620 5.3 createdIds). */
void jq_created(struct jreq *q, const char *cid, const char *id);
/* A /set call's outcome (RFC 8620 5.3), gathered object by object. */
struct jq_setres {
	json_t *created, *updated, *destroyed;
	json_t *not_created, *not_updated, *not_destroyed;
};
void jq_setres_init(struct jq_setres *r);
/* err NULL: done (created: obj is its server-set properties, owned). */
void jq_setres_created(struct jq_setres *r, const char *key, json_t *err,
    json_t *obj);
void jq_setres_updated(struct jq_setres *r, const char *key, json_t *err);
void jq_setres_destroyed(struct jq_setres *r, const char *key, json_t *err);
/* The response arguments; empty maps and lists as null. */
json_t *jq_setres_finish(struct jreq *q, struct jq_setres *r,
    const char *old_state, const char *new_state);

/* The SetError object {type, description, properties}. */
json_t *jq_set_error(const char *type, const char *desc, const char *prop);

/* Appends a response named name (args owned), and nothing else. */
void jq_push(struct jreq *q, const char *name, json_t *args);
/* Appends a response named name (args owned); the next call runs after. */
void jq_answer(struct jreq *q, const char *name, json_t *args);
/* The Maildir flag of a system keyword ("$seen": MBOX_SEEN), or 0. */
uint8_t jq_sys_flag(const char *kw);

/*
 * Email/set's work (RFC 8621 4.6) for args already checked: done gets
 * the response arguments (owned). EmailSubmission's onSuccess* use it.
 */
typedef void (*jmap_set_done)(struct jreq *q, json_t *res, void *arg);
void jmap_email_set_run(struct jreq *q, json_t *args, jmap_set_done done,
    void *arg);

extern const struct method jmap_set_methods[];
extern const struct method jmap_submit_methods[];
extern const struct method jmap_mbset_methods[];
extern const struct method jmap_changes_methods[];

/*
 * Email/changes since the Email state `since`, at most max ids, for
 * another method of the request (Email/queryChanges): cont gets what
 * Email/changes would answer (owned), or NULL when an error was sent.
 */
typedef void (*jchanges_cont)(void *arg, json_t *res);
void jchanges_email(struct jreq *q, const char *since, size_t max,
    jchanges_cont cont, void *arg);
extern const struct method jmap_subrec_methods[];

/*
 * EmailSubmission records in the account's index (jmap_subrec.c): a job
 * on the I/O pool that adds one (id, obj: its JSON), removes one (id:
 * found says if it was there) or lists those changed after since (rows,
 * n); top is the state's sequence after it. done runs on the loop and
 * frees the job with jsub_job_free().
 */
enum jsub_op { JSUB_ADD, JSUB_REMOVE, JSUB_LIST };
struct tindex;
struct tindex_sub;
struct jsub_job {
	struct jreq *q;
	struct tindex *x;
	enum jsub_op op;
	char *id, *obj;
	int64_t since, top;
	struct tindex_sub *rows;
	size_t n;
	bool found;
	int rc;
	struct tern_err err;
	json_t *args;             /* held, for the method's answer */
	void (*done)(struct jsub_job *j);
	void *arg;
};
struct jsub_job *jsub_job(struct jreq *q, enum jsub_op op,
    void (*done)(struct jsub_job *), void *arg);
void jsub_submit(struct jsub_job *j);
void jsub_job_free(struct jsub_job *j);
/* The state string of sequence top ("u<n>"). */
void jsub_state(int64_t top, char out[24]);
extern const struct method jmap_query_methods[];

#endif
