/* SPDX-License-Identifier: ISC */
/*
 * envelope.c - layer 1 (pure). Text form, one field per line:
 *
 *   tern-envelope: 1
 *   id: 0190f5b2c3d4e5f6
 *   created: 1764198472
 *   client: 127.0.0.1
 *   helo: client.example
 *   protocol: ESMTP
 *   from: <alice@example.org>
 *   body: 7BIT
 *   size: 4211
 *   requiretls: 1            (only when MAIL FROM said REQUIRETLS)
 *   smtputf8: 1              (only when MAIL FROM said SMTPUTF8)
 *   ret: HDRS                (DSN, RFC 3461: only when given)
 *   envid: QQ+2B314          (DSN: as given, xtext)
 *   rcpt: <bob@example.org>
 *   notify: 0 SUCCESS,FAILURE    (DSN, per recipient index)
 *   orcpt: 0 rfc822;bob@example.org
 *   end
 *
 * Values are single lines without control characters (the session only
 * accepts such). Unknown keys are errors: a newer Tern's queue is not
 * half-read by an older one. The state file has the same shape with
 * "tern-state: 1", "attempts:", "next:", "rcpt-done: N", "rcpt-failed: N
 * text", "rcpt-deferred: N text" (the last temporary failure of a
 * recipient still pending), "last-error:". An envelope may also say "folder: N Name": the
 * Maildir++ folder a data hook chose for recipient N. Recipients added
 * by alias expansion ("rcpt-add:") have their "notify:" and "orcpt:"
 * lines in the state file.
 */
#include "mail/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/intl.h"
#include "base/util.h"
#include "mail/maildir.h"
#include "mail/message.h"

void
envelope_init(struct envelope *env)
{
	memset(env, 0, sizeof(*env));
}

void
envelope_clear(struct envelope *env)
{
	free(env->client);
	free(env->helo);
	free(env->protocol);
	free(env->sender);
	free(env->body);
	for (size_t i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].path);
		free(env->rcpts[i].error);
		free(env->rcpts[i].folder);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	free(env->envid);
	free(env->last_error);
	envelope_init(env);
}

size_t
envelope_add_rcpt(struct envelope *env, const char *path)
{
	env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1,
	    sizeof(*env->rcpts));
	env->rcpts[env->nrcpts].path = xstrdup(path);
	env->rcpts[env->nrcpts].status = RCPT_PENDING;
	env->rcpts[env->nrcpts].error = NULL;
	env->rcpts[env->nrcpts].folder = NULL;
	env->rcpts[env->nrcpts].notify = 0;
	env->rcpts[env->nrcpts].orcpt = NULL;
	return env->nrcpts++;
}

bool
envelope_wants_smtputf8(const struct envelope *env, const char *msg,
    size_t len)
{
	if (env->sender && !intl_is_ascii(env->sender, strlen(env->sender)))
		return true;
	for (size_t i = 0; i < env->nrcpts; i++)
		if (!intl_is_ascii(env->rcpts[i].path,
		    strlen(env->rcpts[i].path)))
			return true;
	return !intl_is_ascii(msg, message_header_len(msg, len));
}

size_t
envelope_pending(const struct envelope *env)
{
	size_t n = 0;

	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].status == RCPT_PENDING)
			n++;
	return n;
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

/* The DSN lines of recipients [from, to). */
static void
dsn_rcpt_lines(const struct envelope *env, size_t from, size_t to,
    struct buf *out)
{
	char notify[40];

	for (size_t i = from; i < to; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];
		if (r->notify) {
			dsn_notify_format(r->notify, notify, sizeof(notify));
			buf_printf(out, "notify: %zu %s\n", i, notify);
		}
		if (r->orcpt)
			buf_printf(out, "orcpt: %zu %s\n", i, r->orcpt);
	}
}

void
envelope_serialize(const struct envelope *env, struct buf *out)
{
	buf_printf(out, "tern-envelope: %d\n", ENVELOPE_VERSION);
	buf_printf(out, "id: %s\n", env->id);
	buf_printf(out, "created: %lld\n", (long long)env->created);
	buf_printf(out, "client: %s\n", nz(env->client));
	buf_printf(out, "helo: %s\n", nz(env->helo));
	buf_printf(out, "protocol: %s\n", nz(env->protocol));
	buf_printf(out, "from: %s\n", nz(env->sender));
	buf_printf(out, "body: %s\n", env->body ? env->body : "7BIT");
	buf_printf(out, "size: %llu\n", (unsigned long long)env->size);
	if (env->requiretls)
		buf_append_str(out, "requiretls: 1\n");
	if (env->smtputf8)
		buf_append_str(out, "smtputf8: 1\n");
	if (env->ret != DSN_RET_UNSET)
		buf_printf(out, "ret: %s\n", dsn_ret_name(env->ret));
	if (env->envid)
		buf_printf(out, "envid: %s\n", env->envid);
	size_t nfixed = env->nfixed ? env->nfixed : env->nrcpts;
	for (size_t i = 0; i < nfixed; i++)
		buf_printf(out, "rcpt: %s\n", env->rcpts[i].path);
	for (size_t i = 0; i < nfixed; i++)
		if (env->rcpts[i].folder)
			buf_printf(out, "folder: %zu %s\n", i,
			    env->rcpts[i].folder);
	dsn_rcpt_lines(env, 0, nfixed, out);
	buf_append_str(out, "end\n");
}

void
envelope_state_serialize(const struct envelope *env, struct buf *out)
{
	buf_printf(out, "tern-state: %d\n", ENVELOPE_VERSION);
	buf_printf(out, "attempts: %u\n", env->attempts);
	buf_printf(out, "next: %lld\n", (long long)env->next_try);
	if (env->warned)
		buf_append_str(out, "warned: 1\n");
	if (env->held)
		buf_append_str(out, "held: 1\n");
	for (size_t i = env->nfixed; env->nfixed && i < env->nrcpts; i++)
		buf_printf(out, "rcpt-add: %s\n", env->rcpts[i].path);
	if (env->nfixed)
		dsn_rcpt_lines(env, env->nfixed, env->nrcpts, out);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];
		if (r->status == RCPT_DONE)
			buf_printf(out, "rcpt-done: %zu\n", i);
		else if (r->status == RCPT_FAILED)
			buf_printf(out, "rcpt-failed: %zu %s\n", i, nz(r->error));
		else if (r->error)
			buf_printf(out, "rcpt-deferred: %zu %s\n", i, r->error);
	}
	if (env->last_error)
		buf_printf(out, "last-error: %s\n", env->last_error);
	buf_append_str(out, "end\n");
}

/* Splits the next line into key and value; -1 at a malformed line. */
struct line {
	const char *key;
	size_t klen;
	const char *val;
	size_t vlen;
};

static int
next_line(const char *text, size_t len, size_t *pos, struct line *l)
{
	size_t i = *pos;
	const char *nl = memchr(text + i, '\n', len - i);
	size_t end;

	if (nl == NULL)
		return -1;
	end = (size_t)(nl - text);
	for (size_t k = i; k < end; k++)
		if ((unsigned char)text[k] < 32 && text[k] != '\t')
			return -1;
	l->key = text + i;
	const char *colon = memchr(text + i, ':', end - i);
	if (colon == NULL) {
		l->klen = end - i;
		l->val = text + end;
		l->vlen = 0;
	} else {
		l->klen = (size_t)(colon - l->key);
		l->val = colon + 1;
		if (l->val < text + end && *l->val == ' ')
			l->val++;
		l->vlen = (size_t)(text + end - l->val);
	}
	*pos = end + 1;
	return 0;
}

static bool
key_is(const struct line *l, const char *k)
{
	return l->klen == strlen(k) && memcmp(l->key, k, l->klen) == 0;
}

static int
set_str(char **dst, const struct line *l)
{
	if (*dst != NULL)
		return -1; /* duplicate field */
	*dst = xstrndup(l->val, l->vlen);
	return 0;
}

static int
get_i64(const struct line *l, int64_t *out)
{
	uint64_t v;

	if (parse_u64(l->val, l->vlen, &v) != 0 || v > INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int parse_index(const struct line *l, const struct envelope *env,
    size_t *idx, const char **rest, size_t *restlen);

/* "notify: N MASK" and "orcpt: N value", for recipients from "from" on. */
static int
dsn_rcpt_line(const struct line *l, struct envelope *env, size_t from)
{
	size_t idx, rlen;
	const char *rest;
	unsigned mask;

	if (parse_index(l, env, &idx, &rest, &rlen) != 0 || idx < from ||
	    rlen == 0 || rlen > DSN_ORCPT_MAX)
		return -1;
	char *v = xstrndup(rest, rlen);
	int rc = -1;
	struct envelope_rcpt *r = &env->rcpts[idx];
	if (key_is(l, "notify") && r->notify == 0 &&
	    dsn_notify_parse(v, &mask) == 0) {
		r->notify = mask;
		rc = 0;
	} else if (key_is(l, "orcpt") && r->orcpt == NULL &&
	    dsn_orcpt_valid(v)) {
		r->orcpt = v;
		v = NULL;
		rc = 0;
	}
	free(v);
	return rc;
}

int
envelope_parse(const char *text, size_t len, struct envelope *env,
    size_t *consumed, char *err, size_t errsz)
{
	size_t pos = 0;
	struct line l;
	bool have_id = false, have_from = false;
	int64_t v;

	if (next_line(text, len, &pos, &l) != 0 ||
	    !key_is(&l, "tern-envelope")) {
		(void)str_copy(err, errsz, "not a tern envelope");
		return -1;
	}
	if (get_i64(&l, &v) != 0 || v != ENVELOPE_VERSION) {
		(void)str_copy(err, errsz, "unsupported envelope version");
		return -1;
	}
	for (;;) {
		if (next_line(text, len, &pos, &l) != 0) {
			(void)str_copy(err, errsz,
			    "envelope incomplete (no end line)");
			return -1;
		}
		if (key_is(&l, "end") && l.vlen == 0)
			break;
		int rc = 0;
		if (key_is(&l, "id")) {
			if (l.vlen != ENVELOPE_ID_LEN || have_id)
				rc = -1;
			else {
				memcpy(env->id, l.val, l.vlen);
				env->id[l.vlen] = '\0';
				have_id = true;
			}
		} else if (key_is(&l, "created"))
			rc = get_i64(&l, &env->created);
		else if (key_is(&l, "client"))
			rc = set_str(&env->client, &l);
		else if (key_is(&l, "helo"))
			rc = set_str(&env->helo, &l);
		else if (key_is(&l, "protocol"))
			rc = set_str(&env->protocol, &l);
		else if (key_is(&l, "from")) {
			rc = set_str(&env->sender, &l);
			have_from = true;
		} else if (key_is(&l, "body"))
			rc = set_str(&env->body, &l);
		else if (key_is(&l, "size")) {
			rc = get_i64(&l, &v);
			env->size = (uint64_t)v;
		} else if (key_is(&l, "requiretls")) {
			if (l.vlen != 1 || l.val[0] != '1' || env->requiretls)
				rc = -1;
			env->requiretls = true;
		} else if (key_is(&l, "smtputf8")) {
			if (l.vlen != 1 || l.val[0] != '1' || env->smtputf8)
				rc = -1;
			env->smtputf8 = true;
		} else if (key_is(&l, "ret")) {
			char rv[8];
			if (env->ret != DSN_RET_UNSET || l.vlen >= sizeof(rv))
				rc = -1;
			else {
				memcpy(rv, l.val, l.vlen);
				rv[l.vlen] = '\0';
				rc = dsn_ret_parse(rv, &env->ret);
			}
		} else if (key_is(&l, "envid")) {
			rc = set_str(&env->envid, &l);
			if (rc == 0 && !dsn_envid_valid(env->envid))
				rc = -1;
		} else if (key_is(&l, "notify") || key_is(&l, "orcpt"))
			rc = dsn_rcpt_line(&l, env, 0);
		else if (key_is(&l, "rcpt")) {
			if (l.vlen < 2 || l.val[0] != '<' ||
			    l.val[l.vlen - 1] != '>')
				rc = -1;
			else {
				char *p = xstrndup(l.val, l.vlen);
				envelope_add_rcpt(env, p);
				free(p);
			}
		} else if (key_is(&l, "folder")) {
			size_t idx, rlen;
			const char *rest;
			rc = parse_index(&l, env, &idx, &rest, &rlen);
			if (rc == 0 && (rlen == 0 || env->rcpts[idx].folder))
				rc = -1;
			if (rc == 0) {
				env->rcpts[idx].folder = xstrndup(rest, rlen);
				if (!maildir_folder_valid(env->rcpts[idx].folder))
					rc = -1;
			}
		} else
			rc = -1;
		if (rc != 0) {
			(void)snprintf(err, errsz, "bad envelope line '%.*s'",
			    (int)(l.klen > 40 ? 40 : l.klen), l.key);
			return -1;
		}
	}
	if (!have_id || !have_from || env->nrcpts == 0) {
		(void)str_copy(err, errsz,
		    "envelope lacks id, from or recipients");
		return -1;
	}
	env->nfixed = env->nrcpts;
	*consumed = pos;
	return 0;
}

static int
parse_index(const struct line *l, const struct envelope *env, size_t *idx,
    const char **rest, size_t *restlen)
{
	size_t i = 0;
	uint64_t v;

	while (i < l->vlen && l->val[i] != ' ')
		i++;
	if (parse_u64(l->val, i, &v) != 0 || v >= env->nrcpts)
		return -1;
	*idx = (size_t)v;
	if (rest) {
		*rest = i < l->vlen ? l->val + i + 1 : l->val + i;
		*restlen = i < l->vlen ? l->vlen - i - 1 : 0;
	}
	return 0;
}

int
envelope_state_parse(const char *text, size_t len, struct envelope *env,
    char *err, size_t errsz)
{
	size_t pos = 0, idx, rlen;
	const char *rest;
	struct line l;
	int64_t v;

	if (next_line(text, len, &pos, &l) != 0 || !key_is(&l, "tern-state") ||
	    get_i64(&l, &v) != 0 || v != ENVELOPE_VERSION) {
		(void)str_copy(err, errsz, "not a tern state file");
		return -1;
	}
	for (;;) {
		int rc = 0;
		if (next_line(text, len, &pos, &l) != 0) {
			(void)str_copy(err, errsz, "state file incomplete");
			return -1;
		}
		if (key_is(&l, "end") && l.vlen == 0)
			return 0;
		if (key_is(&l, "attempts")) {
			rc = get_i64(&l, &v);
			env->attempts = v > 1000000 ? 1000000 : (unsigned)v;
		} else if (key_is(&l, "next"))
			rc = get_i64(&l, &env->next_try);
		else if (key_is(&l, "warned"))
			env->warned = true;
		else if (key_is(&l, "held"))
			env->held = true;
		else if (key_is(&l, "rcpt-done")) {
			rc = parse_index(&l, env, &idx, NULL, NULL);
			if (rc == 0)
				env->rcpts[idx].status = RCPT_DONE;
		} else if (key_is(&l, "rcpt-failed")) {
			rc = parse_index(&l, env, &idx, &rest, &rlen);
			if (rc == 0) {
				env->rcpts[idx].status = RCPT_FAILED;
				free(env->rcpts[idx].error);
				env->rcpts[idx].error = xstrndup(rest, rlen);
			}
		} else if (key_is(&l, "rcpt-deferred")) {
			rc = parse_index(&l, env, &idx, &rest, &rlen);
			if (rc == 0 && env->rcpts[idx].status == RCPT_PENDING) {
				free(env->rcpts[idx].error);
				env->rcpts[idx].error = xstrndup(rest, rlen);
			}
		} else if (key_is(&l, "rcpt-add")) {
			if (l.vlen < 2 || l.val[0] != '<' ||
			    l.val[l.vlen - 1] != '>' || env->nrcpts >= 10000)
				rc = -1;
			else {
				char *p = xstrndup(l.val, l.vlen);
				envelope_add_rcpt(env, p);
				free(p);
			}
		} else if (key_is(&l, "notify") || key_is(&l, "orcpt")) {
			/* only of recipients added after the envelope */
			rc = dsn_rcpt_line(&l, env, env->nfixed);
		} else if (key_is(&l, "last-error")) {
			free(env->last_error);
			env->last_error = xstrndup(l.val, l.vlen);
		} else
			rc = -1;
		if (rc != 0) {
			(void)snprintf(err, errsz, "bad state line '%.*s'",
			    (int)(l.klen > 40 ? 40 : l.klen), l.key);
			return -1;
		}
	}
}
