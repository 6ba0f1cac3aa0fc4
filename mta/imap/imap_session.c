/* SPDX-License-Identifier: ISC */
/*
 * imap_session.c - layer 3: the IMAP server state machine (imap_session.h):
 * the connection (STARTTLS, COMPRESS=DEFLATE), framing, login, the view of
 * the selected folder and what others change in it, IDLE, and the one
 * command table that also makes the CAPABILITY list, so nothing is
 * advertised without a handler. The commands on folders are in
 * imap_mailboxes.c, those on messages in imap_messages.c (imap_int.h is
 * what the three share).
 *
 * Input is framed here (lines and literals, imap_parse.c), parsed whole,
 * and dispatched. Every command on a selected folder runs as one job of
 * that folder on the I/O pool (store.c): the job reads and changes the
 * Maildir and writes its untagged answers into the session's job buffer;
 * its completion, on the loop, sends them, then the updates other
 * sessions' and programs' changes caused (EXPUNGE or VANISHED only where
 * RFC 3501 7.4.1 allows), then the tagged reply. A session waits for its
 * own job before reading its next command.
 *
 * A session has one destruction path (imap_session_free); a job in
 * flight keeps it alive (refs) until its completion has run.
 */
#include "imap/imap_session.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "base/auth.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/tls.h"
#include "imap/imap_compress.h"
#include "imap/imap_fetch.h"
#include "imap/imap_utf7.h"
#include "mail/maildir.h"
#include "runtime.h"
#include "store/folders.h"
#include "store/mailbox.h"
#include "imap/imap_int.h"

struct cmd_def {
	const char *name;
	unsigned states;             /* bit per enum istate */
	void (*fn)(struct imap_session *s);
	const char *cap;             /* the capability it brings, or NULL */
};

#define ST(x) (1u << (x))
#define ANY (ST(I_NOTAUTH) | ST(I_AUTH) | ST(I_SELECTED))
#define AUTHED (ST(I_AUTH) | ST(I_SELECTED))

/* --- output ------------------------------------------------------------ */

void __attribute__((format(printf, 2, 3)))
imap_say(struct imap_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* The tagged end of the running command; the session reads on. */
void __attribute__((format(printf, 3, 4)))
imap_done(struct imap_session *s, const char *status, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	evbuffer_add_printf(out, "%s %s ", s->tag, status);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	imap_cmd_clear(&s->pc);
	s->busy = false;
}

static const struct cmd_def *commands(void);

static void
capabilities(struct imap_session *s, struct buf *b)
{
	buf_append_str(b, "IMAP4rev1 IMAP4rev2");
	if (s->state == I_NOTAUTH) {
		if (!s->tls && s->env.rt->tls && s->tls_mode ==
		    LISTEN_TLS_STARTTLS)
			buf_append_str(b, " STARTTLS");
		if (s->tls || (s->trusted && s->cfg->auth_loopback_plaintext))
			buf_append_str(b, " AUTH=PLAIN SASL-IR");
		else
			buf_append_str(b, " LOGINDISABLED");
	}
	for (const struct cmd_def *c = commands(); c->name; c++)
		if (c->cap && s->state != I_NOTAUTH)
			buf_printf(b, " %s", c->cap);
	buf_append_str(b, " LITERAL+ CHILDREN ID ENABLE SPECIAL-USE"
	    " CONDSTORE QRESYNC LIST-EXTENDED LIST-STATUS STATUS=SIZE ESEARCH"
	    " OBJECTID WITHIN SEARCHRES UTF8=ACCEPT BINARY MULTIAPPEND"
	    " SAVEDATE");
	buf_printf(b, " APPENDLIMIT=%llu",
	    (unsigned long long)s->cfg->limits.max_message_size);
}

/* --- the view of the selected folder ----------------------------------- */

void
imap_view_add(struct imap_session *s, uint32_t uid)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->uids = xreallocarray(s->uids, s->cap, sizeof(uint32_t));
	}
	s->uids[s->n++] = uid;
}

/* seq (1-based) of uid in the view, or 0 */
size_t
imap_view_seq(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->uids[mid] == uid)
			return mid + 1;
		if (s->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int
imap_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * What changed in the folder since this session last looked: EXPUNGE
 * (when allowed), EXISTS, and FLAGS of messages others changed. Only
 * between the box's jobs (its state is stable then).
 */
void
imap_updates(struct imap_session *s, bool expunges)
{
	struct mbox *mb;
	struct buf b;

	if (s->box == NULL)
		return;
	mb = store_box_mbox(s->box);
	buf_init(&b);
	if (expunges) {
		/* QRESYNC: VANISHED with the UIDs, else EXPUNGE per message */
		uint32_t *gone = NULL;
		size_t ngone = 0;
		if (s->qresync && mb->nexp > s->seen_exp)
			gone = xcalloc(mb->nexp - s->seen_exp, sizeof(uint32_t));
		for (size_t k = s->seen_exp; k < mb->nexp; k++) {
			size_t seq = imap_view_seq(s, mb->exp[k].uid);
			if (seq == 0)
				continue;
			if (gone)
				gone[ngone++] = mb->exp[k].uid;
			else
				buf_printf(&b, "* %zu EXPUNGE\r\n", seq);
			memmove(s->uids + seq - 1, s->uids + seq,
			    (s->n - seq) * sizeof(uint32_t));
			s->n--;
		}
		if (ngone) {
			qsort(gone, ngone, sizeof(uint32_t), imap_cmp_u32);
			buf_append_str(&b, "* VANISHED ");
			imap_seqset_write(&b, gone, ngone);
			buf_append_str(&b, "\r\n");
		}
		free(gone);
		s->seen_exp = mb->nexp;
	}
	uint32_t last = s->n ? s->uids[s->n - 1] : 0;
	size_t before = s->n;
	/* new messages: those above the last UID shown (m[] is by UID) */
	size_t lo = 0, hi = mb->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mb->m[mid].uid <= last)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < mb->n; i++)
		imap_view_add(s, mb->m[i].uid);
	if (s->n != before)
		buf_printf(&b, "* %zu EXISTS\r\n", s->n);
	/* flags others changed: from the folder's list of recent changes
	 * when it reaches back so far (1,000 IDLE sessions on a folder of
	 * 100,000 must not each look at every message), else all */
	uint32_t *chg;
	size_t nchg;
	bool listed = mbox_changes_since(mb, s->seen_modseq, &chg, &nchg);
	size_t count = listed ? nchg : mb->n;
	for (size_t k = 0; k < count; k++) {
		ssize_t i = listed ? mbox_find_uid(mb, chg[k]) : (ssize_t)k;
		if (i < 0)
			continue;
		const struct mbox_msg *m = &mb->m[i];
		if (m->modseq <= s->seen_modseq || m->uid > last ||
		    (s->own_after && m->modseq > s->own_after))
			continue;
		size_t seq = imap_view_seq(s, m->uid);
		if (seq == 0)
			continue;
		buf_printf(&b, "* %zu FETCH (UID %u FLAGS ", seq, m->uid);
		imap_write_flags(&b, mb, m, !s->rev2);
		if (s->condstore)
			buf_printf(&b, " MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
		buf_append_str(&b, ")\r\n");
	}
	free(chg);
	s->seen_modseq = mb->modseq;
	s->own_after = 0;
	if (b.len)
		bufferevent_write(s->bev, b.data, b.len);
	buf_clear(&b);
}

void
imap_on_box_changed(void *arg)
{
	struct imap_session *s = arg;

	if (s->idling && !s->dead) {
		imap_updates(s, true);
		imap_flush(s);
	}
}

void
imap_deselect(struct imap_session *s)
{
	if (s->box) {
		store_box_unwatch(s->box, &s->watch);
		store_box_select(s->box, false);
		store_box_close(s->box);
		s->box = NULL;
	}
	s->n = 0;
	s->seen_exp = 0;
	s->seen_modseq = 0;
	s->own_after = 0;
	free(s->saved);               /* "$" belongs to the folder */
	s->saved = NULL;
	s->nsaved = 0;
	if (s->state == I_SELECTED)
		s->state = I_AUTH;
}

/* --- jobs ------------------------------------------------------------- */

/*
 * A job of the session: on a folder (box_work, run by the folder's queue)
 * or on the account (acct_work, straight on the pool). Either way the
 * session counts it (refs), waits for it (busy), and on completion sends
 * what the job wrote, then runs end.
 */
struct sjob {
	struct imap_session *s;
	job_fn box_work;
	void (*acct_work)(struct imap_session *s);
	job_end end;
};

static void
sjob_box_work(struct store_box *b, void *arg)
{
	struct sjob *j = arg;

	j->box_work(j->s, store_box_mbox(b));
}

static void
sjob_acct_work(void *arg)
{
	struct sjob *j = arg;

	j->acct_work(j->s);
}

static void
sjob_done(void *arg)
{
	struct sjob *j = arg;
	struct imap_session *s = j->s;
	job_end end = j->end;

	free(j);
	s->refs--;
	if (s->dead) {
		if (s->refs == 0)
			imap_session_free(s);
		return;
	}
	if (s->jout.len)
		bufferevent_write(s->bev, s->jout.data, s->jout.len);
	buf_reset(&s->jout);
	end(s);
	imap_flush(s);
	if (!s->busy)
		imap_process(s);
}

static void
sjob_box_done(struct store_box *b, void *arg)
{
	(void)b;
	sjob_done(arg);
}

static struct sjob *
sjob_new(struct imap_session *s, job_end end)
{
	struct sjob *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->end = end;
	s->refs++;
	s->busy = true;
	buf_reset(&s->jout);
	memset(&s->jerr, 0, sizeof(s->jerr));
	s->jrc = 0;
	return j;
}

void
imap_run_box_job(struct imap_session *s, struct store_box *b, job_fn work,
    job_end end)
{
	struct sjob *j = sjob_new(s, end);

	j->box_work = work;
	store_box_run(b, sjob_box_work, sjob_box_done, j);
}

/* An account-level job (folders, subscriptions). */
void
imap_run_acct_job(struct imap_session *s, void (*work)(struct imap_session *s),
    job_end end)
{
	struct sjob *j = sjob_new(s, end);

	j->acct_work = work;
	iopool_submit(s->env.pool, sjob_acct_work, sjob_done, j);
}

/* --- argument helpers ----------------------------------------------- */

unsigned
imap_fetch_opts(const struct imap_session *s)
{
	return (s->j_uidcmd ? IMAP_FETCH_UID : 0) | (s->readonly ?
	    IMAP_FETCH_READONLY : 0) | (s->condstore ? IMAP_FETCH_CONDSTORE :
	    0) | (s->rev2 ? IMAP_FETCH_REV2 : 0);
}

const char *
imap_arg_str(struct imap_session *s, size_t i)
{
	return i < s->pc.nargs ? imap_arg_text(&s->pc.args[i]) : NULL;
}

const char *
imap_arg_name(struct imap_session *s, size_t i)
{
	struct imap_arg *a = i < s->pc.nargs ? &s->pc.args[i] : NULL;
	const char *t = a ? imap_arg_text(a) : NULL;

	if (t == NULL || a->native || !s->utf8)
		return t;
	/* RFC 6855 3, RFC 9051 5.1: UTF-8 on the wire, modified UTF-7 in
	 * the folder's directory name (as Dovecot names it) */
	struct buf b;
	buf_init(&b);
	if (strlen(t) != a->len || imap_utf8_to_utf7(t, &b) != 0) {
		buf_clear(&b);
		return NULL;
	}
	buf_append_char(&b, '\0');
	free(a->s);
	a->s = buf_steal(&b, &a->len);
	a->len = strlen(a->s);
	a->native = true;
	return a->s;
}

void
imap_write_mailbox(struct imap_session *s, struct buf *out, const char *name)
{
	struct buf b;

	if (!s->utf8) {
		imap_write_string(out, name, strlen(name), false);
		return;
	}
	buf_init(&b);
	if (imap_utf7_to_utf8(name, &b) == 0) {
		buf_append_char(&b, '\0');
		imap_write_string(out, b.data, strlen(b.data), true);
	} else   /* a directory not named in modified UTF-7: as it is */
		imap_write_string(out, name, strlen(name), false);
	buf_clear(&b);
}

/* A mailbox argument: its canonical name, or NULL (BAD sent). */
const char *
imap_arg_mailbox(struct imap_session *s, size_t i, char *path, size_t pathsz)
{
	const char *name = imap_arg_name(s, i);

	if (name == NULL) {
		imap_done(s, "BAD", s->utf8 && imap_arg_str(s, i) ?
		    "mailbox name is not UTF-8" : "mailbox name expected");
		return NULL;
	}
	name = folders_canonical(name);
	if (folders_path(s->root, name, path, pathsz) != 0) {
		imap_done(s, "NO", "[CANNOT] that mailbox name is not allowed");
		return NULL;
	}
	return name;
}

/*
 * The idle timeout, on every layer of the connection: the socket's own
 * (under TLS and deflate) would end a logged-in session at the pre-login
 * timeout otherwise.
 */
static void
set_timeouts(struct imap_session *s, int secs)
{
	struct timeval tv = { secs, 0 };

	for (struct bufferevent *b = s->bev; b; b = bufferevent_get_underlying(b))
		bufferevent_set_timeouts(b, &tv, &tv);
}

/* --- not authenticated ----------------------------------------------- */

static void
cmd_capability(struct imap_session *s)
{
	struct buf b;

	buf_init(&b);
	capabilities(s, &b);
	imap_say(s, "* CAPABILITY %s", b.data);
	buf_clear(&b);
	imap_done(s, "OK", "CAPABILITY completed");
}

static void
cmd_noop_now(struct imap_session *s)
{
	imap_done(s, "OK", "NOOP completed");
}

static void
sync_job(struct imap_session *s, struct mbox *mb)
{
	bool changed;

	s->jrc = mbox_sync(mb, s->root, true, &changed, &s->jerr);
	if (changed)
		store_box_mark_changed(s->box);
}

static void
noop_end(struct imap_session *s)
{
	imap_updates(s, true);
	imap_done(s, "OK", "%s completed", s->pc.name);
}

static void
cmd_noop(struct imap_session *s)
{
	if (s->state != I_SELECTED) {
		cmd_noop_now(s);
		return;
	}
	imap_run_box_job(s, s->box, sync_job, noop_end);
}

static void
cmd_logout(struct imap_session *s)
{
	imap_say(s, "* BYE Tern IMAP server logging out");
	imap_done(s, "OK", "LOGOUT completed");
	s->state = I_LOGOUT;
	s->closing = true;
}

static void
cmd_id(struct imap_session *s)
{
	imap_say(s, "* ID (\"name\" \"Tern\" \"version\" \"%s\")", PACKAGE_VERSION);
	imap_done(s, "OK", "ID completed");
}

static void
cmd_starttls(struct imap_session *s)
{
	if (s->tls || s->env.rt->tls == NULL ||
	    s->tls_mode != LISTEN_TLS_STARTTLS) {
		imap_done(s, "BAD", "STARTTLS not available");
		return;
	}
	imap_done(s, "OK", "Begin TLS negotiation now");
	s->starttls_now = true;
}

/* The Maildir of user: the one delivery uses. */
static int
user_root(struct imap_session *s, const char *user)
{
	return maildir_user_root(s->cfg->mail_dir, s->cfg->domains[0], user,
	    s->root, sizeof(s->root));
}

static void
login_prepare(struct imap_session *s)
{
	/* the account's INBOX and the special-use folders */
	folders_ensure_root(s->root);
	folders_ensure_special(s->root);
}

static void
login_end(struct imap_session *s)
{
	struct buf b;

	buf_init(&b);
	capabilities(s, &b);
	imap_done(s, "OK", "[CAPABILITY %s] Logged in", b.data);
	buf_clear(&b);
}

/*
 * Logged-in sessions per user and client address, at most
 * limits.imap_connections_per_user (a client that leaks connections
 * cannot take all of them). Loop thread only.
 */
struct userip {
	char *key;                /* "user\0ip" as "user ip" */
	unsigned n;
	struct userip *next;
};
#define USERIP_BUCKETS 1024
static struct userip *userips[USERIP_BUCKETS];

static struct userip **
userip_slot(const char *key)
{
	unsigned h = 2166136261u;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct userip **e = &userips[h % USERIP_BUCKETS];
	while (*e && strcmp((*e)->key, key) != 0)
		e = &(*e)->next;
	return e;
}

static bool
userip_take(struct imap_session *s)
{
	char key[SASL_FIELD_MAX + INET6_ADDRSTRLEN + 2];

	(void)snprintf(key, sizeof(key), "%s %s", s->user, s->ip);
	struct userip **e = userip_slot(key);
	if (*e && s->cfg->limits.imap_connections_per_user &&
	    (*e)->n >= s->cfg->limits.imap_connections_per_user)
		return false;
	if (*e == NULL) {
		*e = xcalloc(1, sizeof(**e));
		(*e)->key = xstrdup(key);
	}
	(*e)->n++;
	s->userip = true;
	return true;
}

static void
userip_give(struct imap_session *s)
{
	char key[SASL_FIELD_MAX + INET6_ADDRSTRLEN + 2];

	if (!s->userip)
		return;
	s->userip = false;
	(void)snprintf(key, sizeof(key), "%s %s", s->user, s->ip);
	struct userip **e = userip_slot(key), *x = *e;
	if (x && --x->n == 0) {
		*e = x->next;
		free(x->key);
		free(x);
	}
}

static void
on_auth_checked(void *arg, bool ok)
{
	struct imap_session *s = arg;

	s->auth = NULL;
	if (!ok || user_root(s, s->user) != 0) {
		auth_ip_failed(s->ip, (long)time(NULL), "imap");
		log_info("imap %s: login failed user=%s client=%s", s->id,
		    s->user, s->ip);
		s->user[0] = '\0';
		imap_done(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		imap_flush(s);
		imap_process(s);
		return;
	}
	if (!userip_take(s)) {
		log_info("imap %s: refused user=%s client=%s: more than %u "
		    "connections", s->id, s->user, s->ip,
		    s->cfg->limits.imap_connections_per_user);
		s->user[0] = '\0';
		imap_done(s, "NO", "[LIMIT] Too many connections for this user "
		    "from this address");
		imap_flush(s);
		imap_process(s);
		return;
	}
	s->state = I_AUTH;
	s->acct = store_account_open(s->env.store, s->user, s->root);
	log_info("imap %s: login user=%s client=%s tls=%s", s->id, s->user,
	    s->ip, s->tls ? s->tls_desc : "no");
	set_timeouts(s, IMAP_AUTH_TIMEOUT);
	imap_run_acct_job(s, login_prepare, login_end);
}

static bool
may_login(struct imap_session *s)
{
	if (!s->tls && !(s->trusted && s->cfg->auth_loopback_plaintext)) {
		imap_done(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
		return false;
	}
	if (s->env.rt->users == NULL) {
		imap_done(s, "NO", "[UNAVAILABLE] No users table");
		return false;
	}
	if (auth_ip_blocked(s->ip, (long)time(NULL))) {
		imap_done(s, "NO", "[UNAVAILABLE] Too many failed logins; try later");
		return false;
	}
	return true;
}

static void
start_check(struct imap_session *s, const char *user, const char *pass)
{
	(void)str_copy(s->user, sizeof(s->user), user);
	s->busy = true;
	s->auth = auth_check(s->env.rt->users, s->env.pool, user, pass,
	    on_auth_checked, s);
}

static void
cmd_login(struct imap_session *s)
{
	const char *user = imap_arg_str(s, 0), *pass = imap_arg_str(s, 1);

	if (user == NULL || pass == NULL || s->pc.nargs != 2) {
		imap_done(s, "BAD", "LOGIN user password");
		return;
	}
	if (!may_login(s))
		return;
	start_check(s, user, pass);
}

static void
sasl_plain_line(struct imap_session *s, const char *line, size_t len)
{
	char user[SASL_FIELD_MAX], pass[SASL_FIELD_MAX];

	s->auth_pending = false;
	if (len == 1 && line[0] == '*') {
		imap_done(s, "BAD", "Authentication cancelled");
		return;
	}
	if (sasl_plain(line, len, user, pass) != 0) {
		imap_done(s, "BAD", "Cannot decode the response");
		return;
	}
	start_check(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

static void
cmd_authenticate(struct imap_session *s)
{
	const char *mech = imap_arg_str(s, 0), *ir = imap_arg_str(s, 1);

	if (mech == NULL || !ascii_strcaseeq(mech, "PLAIN")) {
		imap_done(s, "NO", "[CANNOT] Only PLAIN");
		return;
	}
	if (!may_login(s))
		return;
	if (ir) {                  /* SASL-IR */
		sasl_plain_line(s, strcmp(ir, "=") == 0 ? "" : ir,
		    strcmp(ir, "=") == 0 ? 0 : strlen(ir));
		return;
	}
	s->busy = true;
	s->auth_pending = true;
	imap_say(s, "+ ");
}

/* --- authenticated ---------------------------------------------------- */

static void
cmd_compress(struct imap_session *s)
{
	const char *m = imap_arg_str(s, 0);

	if (s->pc.nargs != 1 || m == NULL || !ascii_strcaseeq(m, "DEFLATE")) {
		imap_done(s, "BAD", "COMPRESS DEFLATE");
		return;
	}
	if (s->compressed) {
		imap_done(s, "NO", "[COMPRESSIONACTIVE] already deflating");
		return;
	}
	imap_done(s, "OK", "DEFLATE active");
	s->compress_now = true;     /* imap_flush() wraps, after the OK */
}

static void
cmd_enable(struct imap_session *s)
{
	struct buf on;

	if (s->pc.nargs == 0) {
		imap_done(s, "BAD", "ENABLE capability...");
		return;
	}
	buf_init(&on);
	buf_append_str(&on, "* ENABLED");
	for (size_t i = 0; i < s->pc.nargs; i++) {
		const char *c = imap_arg_str(s, i);
		if (c && ascii_strcaseeq(c, "CONDSTORE") && !s->condstore) {
			s->condstore = true;
			buf_append_str(&on, " CONDSTORE");
		} else if (c && ascii_strcaseeq(c, "QRESYNC") && !s->qresync) {
			/* QRESYNC brings CONDSTORE (RFC 7162 3.2.3) */
			s->qresync = s->condstore = true;
			buf_append_str(&on, " QRESYNC");
		} else if (c && ascii_strcaseeq(c, "IMAP4rev2") && !s->rev2) {
			/* RFC 9051: UTF-8 names, no \Recent, ESEARCH */
			s->rev2 = s->utf8 = true;
			buf_append_str(&on, " IMAP4rev2");
		} else if (c && ascii_strcaseeq(c, "UTF8=ACCEPT") &&
		    !s->utf8_enabled) {
			s->utf8 = s->utf8_enabled = true;
			buf_append_str(&on, " UTF8=ACCEPT");
		}
	}
	buf_append_char(&on, '\0');
	imap_say(s, "%s", on.data);
	buf_clear(&on);
	imap_done(s, "OK", "ENABLE completed");
}

static void
cmd_namespace(struct imap_session *s)
{
	imap_say(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_done(s, "OK", "NAMESPACE completed");
}

/* IDLE --------------------------------------------------------------- */

static void
on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if (s->idling) {
		imap_say(s, "* OK Still here");
		imap_flush(s);
	}
}

static void
idle_start_end(struct imap_session *s)
{
	struct timeval tv = { IMAP_IDLE_KEEPALIVE, 0 };

	imap_updates(s, true);
	imap_say(s, "+ idling");
	s->idling = true;
	s->busy = true;           /* the command is open until DONE */
	event_add(s->keepalive, &tv);
}

static void
cmd_idle(struct imap_session *s)
{
	if (s->state == I_SELECTED)
		imap_run_box_job(s, s->box, sync_job, idle_start_end);
	else
		idle_start_end(s);
}

static void
idle_stop(struct imap_session *s)
{
	s->idling = false;
	event_del(s->keepalive);
	imap_done(s, "OK", "IDLE terminated");
}

/* UID ---------------------------------------------------------------- */

static void
cmd_uid(struct imap_session *s)
{
	const char *sub = imap_arg_str(s, 0);

	s->j_uidcmd = true;
	s->j_arg = 1;
	if (sub && ascii_strcaseeq(sub, "FETCH"))
		imap_cmd_fetch(s);
	else if (sub && ascii_strcaseeq(sub, "STORE"))
		imap_cmd_store(s);
	else if (sub && ascii_strcaseeq(sub, "SEARCH"))
		imap_cmd_search(s);
	else if (sub && ascii_strcaseeq(sub, "SORT"))
		imap_cmd_sort(s);
	else if (sub && ascii_strcaseeq(sub, "THREAD"))
		imap_cmd_thread(s);
	else if (sub && (ascii_strcaseeq(sub, "COPY") ||
	    ascii_strcaseeq(sub, "MOVE")))
		imap_cmd_copy(s);
	else if (sub && ascii_strcaseeq(sub, "EXPUNGE"))
		imap_cmd_expunge(s);
	else
		imap_done(s, "BAD", "UID FETCH, STORE, SEARCH, SORT, THREAD, COPY, "
		    "MOVE or EXPUNGE");
}

/* --- the command table ------------------------------------------------ */

static const struct cmd_def table[] = {
	{ "CAPABILITY", ANY, cmd_capability, NULL },
	{ "NOOP", ANY, cmd_noop, NULL },
	{ "LOGOUT", ANY, cmd_logout, NULL },
	{ "ID", ANY, cmd_id, NULL },
	{ "STARTTLS", ST(I_NOTAUTH), cmd_starttls, NULL },
	{ "LOGIN", ST(I_NOTAUTH), cmd_login, NULL },
	{ "AUTHENTICATE", ST(I_NOTAUTH), cmd_authenticate, NULL },
	{ "ENABLE", AUTHED, cmd_enable, NULL },
	{ "COMPRESS", AUTHED, cmd_compress, "COMPRESS=DEFLATE" },
	{ "NAMESPACE", AUTHED, cmd_namespace, "NAMESPACE" },
	{ "LIST", AUTHED, imap_cmd_list, NULL },
	{ "LSUB", AUTHED, imap_cmd_list, NULL },
	{ "STATUS", AUTHED, imap_cmd_status, NULL },
	{ "SELECT", AUTHED, imap_cmd_select, NULL },
	{ "EXAMINE", AUTHED, imap_cmd_select, NULL },
	{ "CREATE", AUTHED, imap_cmd_folder, NULL },
	{ "DELETE", AUTHED, imap_cmd_folder, NULL },
	{ "RENAME", AUTHED, imap_cmd_folder, NULL },
	{ "SUBSCRIBE", AUTHED, imap_cmd_folder, NULL },
	{ "UNSUBSCRIBE", AUTHED, imap_cmd_folder, NULL },
	{ "APPEND", AUTHED, imap_cmd_append, "UIDPLUS" },
	{ "GETQUOTAROOT", AUTHED, imap_cmd_quota,
	  "QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE" },
	{ "GETQUOTA", AUTHED, imap_cmd_quota, NULL },
	{ "SETQUOTA", AUTHED, imap_cmd_quota, NULL },
	{ "IDLE", AUTHED, cmd_idle, "IDLE" },
	{ "CHECK", ST(I_SELECTED), cmd_noop, NULL },
	{ "CLOSE", ST(I_SELECTED), imap_cmd_close, NULL },
	{ "UNSELECT", ST(I_SELECTED), imap_cmd_unselect, "UNSELECT" },
	{ "EXPUNGE", ST(I_SELECTED), imap_cmd_expunge, NULL },
	{ "SEARCH", ST(I_SELECTED), imap_cmd_search, NULL },
	{ "SORT", ST(I_SELECTED), imap_cmd_sort, "SORT SORT=DISPLAY ESORT" },
	{ "THREAD", ST(I_SELECTED), imap_cmd_thread,
	  "THREAD=ORDEREDSUBJECT THREAD=REFERENCES" },
	{ "FETCH", ST(I_SELECTED), imap_cmd_fetch, NULL },
	{ "STORE", ST(I_SELECTED), imap_cmd_store, NULL },
	{ "COPY", ST(I_SELECTED), imap_cmd_copy, NULL },
	{ "MOVE", ST(I_SELECTED), imap_cmd_copy, "MOVE" },
	{ "UID", ST(I_SELECTED), cmd_uid, NULL },
	{ NULL, 0, NULL, NULL },
};

static const struct cmd_def *
commands(void)
{
	return table;
}

static void
dispatch(struct imap_session *s)
{
	const char *why;
	enum imap_parse_status st;

	imap_cmd_clear(&s->pc);
	st = imap_parse_command(s->cmd.data, s->cmd.len, &s->pc, &why);
	(void)str_copy(s->tag, sizeof(s->tag), s->pc.tag[0] ? s->pc.tag : "*");
	s->cmds++;
	if (st != IMAP_PARSE_OK) {
		s->bad++;
		if (st == IMAP_PARSE_NO_TAG)
			imap_say(s, "* BAD %s", why);
		else
			imap_done(s, "BAD", "%s", why);
		imap_cmd_clear(&s->pc);
		return;
	}
	s->j_uidcmd = false;
	s->j_arg = 0;
	s->j_set = NULL;
	for (const struct cmd_def *c = table; c->name; c++) {
		if (strcmp(c->name, s->pc.name) != 0)
			continue;
		if (!(c->states & ST(s->state))) {
			imap_done(s, "BAD", "%s is not valid %s", c->name,
			    s->state == I_NOTAUTH ? "before login" :
			    s->state == I_SELECTED ? "now" :
			    "without a selected mailbox");
			return;
		}
		s->busy = true;   /* until imap_done() */
		c->fn(s);
		return;
	}
	s->bad++;
	imap_done(s, "BAD", "unknown command");
}

/* --- framing and the connection --------------------------------------- */

static void
session_starttls(struct imap_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	/* RFC 3501 6.2.1: nothing sent behind STARTTLS is read */
	evbuffer_drain(in, evbuffer_get_length(in));
	buf_reset(&s->cmd);
	s->starttls_now = false;
	struct bufferevent *under = s->bev;
	struct bufferevent *b = tls_server_wrap(s->env.rt->tls, s->env.base,
	    under);
	if (b == NULL) {
		s->closing = true;
		return;
	}
	/* the filter hands on only what the socket can take soon: what
	 * waits stays in the top layer, where FETCH looks (OUTPUT_LOW) */
	bufferevent_setwatermark(under, EV_WRITE, 0, UNDER_HIGH);
	s->bev = b;
	s->tls_wrapped = true;
}

/* After "OK DEFLATE active" (which goes out as it is): both ways deflated. */
static void
session_compress(struct imap_session *s)
{
	struct bufferevent *under = s->bev;

	s->compress_now = false;
	struct bufferevent *b = imap_compress_wrap(under, IMAP_LINE_MAX +
	    s->cfg->limits.max_message_size + 65536);
	if (b == NULL) {
		s->closing = true;
		return;
	}
	bufferevent_setwatermark(under, EV_WRITE, 0, UNDER_HIGH);
	s->bev = b;
	s->compressed = true;
	/* what the client sent behind COMPRESS is deflated already */
	if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

static void session_on_read(struct bufferevent *bev, void *arg);
static void session_on_write(struct bufferevent *bev, void *arg);
static void session_on_event(struct bufferevent *bev, short what, void *arg);

static void
under_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct imap_session *s = arg;

	if (evbuffer_get_length(buf) == 0 && s->closing && s->refs == 0 &&
	    !s->auth)
		imap_session_free(s);
}

void
imap_flush(struct imap_session *s)
{
	if (s->starttls_now || s->compress_now) {
		if (s->starttls_now)
			session_starttls(s);
		else
			session_compress(s);
		if (!s->closing) {
			bufferevent_setcb(s->bev, session_on_read,
			    session_on_write, session_on_event, s);
			bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		}
	}
	if (s->closing && !s->dead) {
		/* input is ignored now; EOF still ends the session */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) != 0 ||
		    s->refs > 0 || s->auth)
			return;     /* on_write comes back */
		/* the layers below (deflate, TLS) may still have bytes */
		for (struct bufferevent *u = bufferevent_get_underlying(s->bev);
		    u; u = bufferevent_get_underlying(u))
			if (evbuffer_get_length(bufferevent_get_output(u)) != 0) {
				if (s->under_cb == NULL) {
					s->under_buf = bufferevent_get_output(u);
					s->under_cb = evbuffer_add_cb(
					    s->under_buf, under_drained, s);
				}
				return;
			}
		imap_session_free(s);
	}
}

void
imap_process(struct imap_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (!s->closing && !s->starttls_now && !s->compress_now &&
	    !s->dead) {
		if (s->in_lit) {
			size_t have = evbuffer_get_length(in);
			if (have == 0)
				break;
			size_t take = have < s->lit_left ? have :
			    (size_t)s->lit_left;
			buf_reserve(&s->cmd, take);
			evbuffer_remove(in, s->cmd.data + s->cmd.len, take);
			s->cmd.len += take;
			s->cmd.data[s->cmd.len] = '\0';
			s->lit_left -= take;
			if (s->lit_left == 0)
				s->in_lit = false;
			continue;
		}
		if (s->busy && !s->idling && !s->auth_pending)
			break;
		struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) > IMAP_LINE_MAX) {
				imap_say(s, "* BYE Line too long");
				s->closing = true;
			}
			break;
		}
		size_t len = (size_t)p.pos + 1;
		if (len > IMAP_LINE_MAX) {
			imap_say(s, "* BYE Line too long");
			s->closing = true;
			break;
		}
		char *line = xmalloc(len + 1);
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		if (len < 2 || line[len - 2] != '\r') {
			free(line);
			buf_reset(&s->cmd);
			imap_say(s, "* BAD Lines end in CRLF");
			if (++s->bad > IMAP_BAD_MAX) {
				imap_say(s, "* BYE Too many bad commands");
				s->closing = true;
			}
			continue;
		}
		if (s->idling) {
			if (len == 6 && ascii_strncaseeq(line, "DONE", 4))
				idle_stop(s);
			else {
				imap_say(s, "* BAD Expected DONE");
				s->bad++;
			}
			free(line);
			continue;
		}
		if (s->auth_pending) {
			sasl_plain_line(s, line, len - 2);
			free(line);
			continue;
		}
		if (s->cmd.len + len > s->cfg->limits.max_message_size + 65536) {
			free(line);
			imap_say(s, "* BYE Command too large");
			s->closing = true;
			break;
		}
		buf_append(&s->cmd, line, len);
		uint64_t n;
		bool nonsync;
		bool lit = imap_line_literal(line, len - 2, &n, &nonsync);
		free(line);
		if (lit) {
			/* one message up to APPENDLIMIT; a MULTIAPPEND's
			 * messages together no more than that either */
			if (n > s->cfg->limits.max_message_size ||
			    s->cmd.len + n > s->cfg->limits.max_message_size +
			    65536) {
				if (nonsync) {
					imap_say(s, "* BYE Literal too large");
					s->closing = true;
					break;
				}
				/* the client waits for "+": it never comes */
				char tag[IMAP_TAG_MAX + 1];
				size_t tl = strcspn(s->cmd.data, " ");
				(void)snprintf(tag, sizeof(tag), "%.*s",
				    (int)(tl > IMAP_TAG_MAX ? IMAP_TAG_MAX : tl),
				    s->cmd.data);
				imap_say(s, "%s NO [TOOBIG] Literal too large", tag);
				buf_reset(&s->cmd);
				continue;
			}
			if (!nonsync)
				imap_say(s, "+ Ready for literal data");
			s->in_lit = n > 0;
			s->lit_left = n;
			continue;
		}
		dispatch(s);
		buf_reset(&s->cmd);
		if (s->bad > IMAP_BAD_MAX && !s->closing) {
			imap_say(s, "* BYE Too many bad commands");
			s->closing = true;
		}
	}
	imap_flush(s);
}

static void
session_on_read(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	if (s->tls_wrapped && !s->tls) {
		s->tls = true;
		tls_describe(s->bev, s->tls_desc, sizeof(s->tls_desc));
	}
	imap_process(s);
}

static void
session_on_write(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	if (s->fetch_wait && !s->closing && !s->dead)
		imap_fetch_next(s);
	else if (s->closing)
		imap_flush(s);
}

static void
session_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct imap_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->tls = true;
		tls_describe(s->bev, s->tls_desc, sizeof(s->tls_desc));
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !s->closing) {
		log_info("imap %s: timeout client=%s", s->id, s->ip);
		imap_say(s, "* BYE Autologout; idle for too long");
		s->closing = true;
		bufferevent_enable(s->bev, EV_WRITE);
		imap_flush(s);
		return;
	}
	s->dead = true;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	if (s->refs == 0)
		imap_session_free(s);
}

void
imap_session_free(struct imap_session *s)
{
	userip_give(s);
	if (s->auth) {
		auth_check_detach(s->auth);
		s->auth = NULL;
	}
	if (s->refs > 0) {      /* a job is out: its completion frees us */
		s->dead = true;
		return;
	}
	log_info("imap %s: logout client=%s user=%s commands=%lu fetched=%lu",
	    s->id, s->ip, s->user[0] ? s->user : "-", s->cmds, s->fetched);
	if (s->other && s->other != s->box)   /* a STATUS or APPEND cut off */
		store_box_close(s->other);
	s->other = NULL;
	imap_deselect(s);
	store_account_close(s->acct);
	if (s->under_cb)
		evbuffer_remove_cb_entry(s->under_buf, s->under_cb);
	imap_cmd_clear(&s->pc);
	buf_clear(&s->cmd);
	buf_clear(&s->jout);
	buf_clear(&s->jqr);
	buf_clear(&s->l_tail);
	free(s->app_flags);
	free(s->apps);
	free(s->saved);
	free(s->j_saved);
	imap_list_free_status(s);
	free(s->j_mod);
	free(s->uids);
	event_free(s->keepalive);
	bufferevent_free(s->bev);
	s->env.on_close(s->env.arg, s);
	runtime_unref(s->env.rt);
	free(s);
}

static unsigned long session_seq;

struct imap_session *
imap_session_new(const struct imap_session_env *env, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, enum listen_tls tls)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct timeval tv;

	s->env = *env;
	runtime_ref(env->rt);
	s->cfg = env->rt->cfg;
	s->tls_mode = tls;
	buf_init(&s->cmd);
	buf_init(&s->jout);
	buf_init(&s->jqr);
	buf_init(&s->l_tail);
	gettimeofday(&tv, NULL);
	(void)snprintf(s->id, sizeof(s->id), "%016llx",
	    (unsigned long long)(((uint64_t)tv.tv_sec << 24) |
	    (++session_seq & 0xffffff)));
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    s->ip, sizeof(s->ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    s->ip, sizeof(s->ip));
	else
		(void)str_copy(s->ip, sizeof(s->ip), "unknown");
	s->trusted = config_is_trusted(s->cfg, sa);
	(void)salen;
	if (tls == LISTEN_TLS_IMPLICIT && env->rt->tls) {
		s->bev = tls_server_socket(env->rt->tls, env->base, fd);
		s->tls_wrapped = true;
	} else
		s->bev = bufferevent_socket_new(env->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	TERN_ASSERT(s->bev != NULL);
	s->keepalive = event_new(env->base, -1, EV_PERSIST, on_keepalive, s);
	bufferevent_setcb(s->bev, session_on_read, session_on_write,
	    session_on_event, s);
	set_timeouts(s, IMAP_PREAUTH_TIMEOUT);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("imap %s: connect client=%s%s", s->id, s->ip,
	    tls == LISTEN_TLS_IMPLICIT ? " tls=implicit" : "");
	struct buf caps;
	buf_init(&caps);
	capabilities(s, &caps);
	imap_say(s, "* OK [CAPABILITY %s] Tern IMAP ready", caps.data);
	buf_clear(&caps);
	return s;
}

void
imap_session_shutdown(struct imap_session *s)
{
	imap_say(s, "* BYE Server shutting down");
	s->closing = true;
	s->shutdown = true;
	imap_flush(s);
}
