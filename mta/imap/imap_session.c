/* SPDX-License-Identifier: ISC */
/*
 * imap_session.c - layer 3: the IMAP server state machine (imap_session.h),
 * RFC 3501 with IDLE (RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC 6851),
 * NAMESPACE (RFC 2342), ID (RFC 2971), ENABLE (RFC 5161), UNSELECT (RFC
 * 3691), CHILDREN (RFC 3348), LITERAL+ (RFC 7888), SASL-IR (RFC 4959) and
 * SPECIAL-USE (RFC 6154) attributes.
 *
 * Input is framed here (lines and literals, imap_parse.c), parsed whole,
 * and dispatched through one command table that also makes the
 * CAPABILITY list, so nothing is advertised without a handler. Every
 * command on a selected folder runs as one job of that folder on the I/O
 * pool (store.c): the job reads and changes the Maildir and writes its
 * untagged answers into the session's job buffer; its completion, on the
 * loop, sends them, then the updates other sessions' and programs' changes
 * caused (EXPUNGE only where RFC 3501 7.4.1 allows), then the tagged
 * reply. A session waits for its own job before reading its next command.
 *
 * A session has one destruction path (session_free); a job in flight
 * keeps it alive (refs) until its completion has run.
 */
#include "imap/imap_session.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base/auth.h"
#include "base/buf.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/sasl.h"
#include "base/tls.h"
#include "base/util.h"
#include "imap/imap_compress.h"
#include "imap/imap_fetch.h"
#include "imap/imap_parse.h"
#include "imap/imap_search.h"
#include "imap/imap_utf7.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "runtime.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/store.h"

#define IMAP_LINE_MAX (64 * 1024)       /* a command line (issue 11) */
#define IMAP_BAD_MAX 20                 /* malformed commands, then BYE */
#define IMAP_PREAUTH_TIMEOUT 60
#define IMAP_AUTH_TIMEOUT (31 * 60)     /* RFC 9051 5.4: >= 30 minutes */
#define IMAP_IDLE_KEEPALIVE 120
#define OUTPUT_HIGH (1024 * 1024)

enum istate { I_NOTAUTH, I_AUTH, I_SELECTED, I_LOGOUT };

struct imap_session {
	struct imap_session_env env;
	const struct config *cfg;
	struct bufferevent *bev;
	char id[17];
	char ip[INET6_ADDRSTRLEN];
	bool trusted;
	enum listen_tls tls_mode;
	bool tls, tls_wrapped, starttls_now;
	bool compress_now, compressed;   /* COMPRESS=DEFLATE (RFC 4978) */
	char tls_desc[128];
	enum istate state;
	char user[SASL_FIELD_MAX];
	char root[4096];
	struct store_account *acct;
	struct store_box *box;
	struct store_box *other;     /* STATUS or APPEND target, while busy */
	bool readonly;
	struct store_watch watch;
	uint32_t *uids;              /* the client's view: seq i is uids[i-1] */
	size_t n, cap;
	uint64_t seen_modseq;
	size_t seen_exp;
	struct buf cmd;              /* the command being framed */
	uint64_t lit_left;
	bool in_lit;
	struct imap_cmd pc;          /* the command being run */
	bool busy;
	bool idling;
	char tag[IMAP_TAG_MAX + 1];  /* of the command being run */
	bool auth_pending;           /* AUTHENTICATE PLAIN waits for a line */
	struct auth_check *auth;
	unsigned bad;
	bool closing, shutdown, dead;
	unsigned refs;
	struct event *keepalive;
	struct evbuffer_cb_entry *under_cb;
	struct evbuffer *under_buf;  /* the layer under_cb is on */
	uint64_t own_after;          /* changes after this modseq are ours */
	unsigned long cmds, fetched;
	struct buf jout;             /* a job's untagged output */
	struct tern_err jerr;
	int jrc;
	uint32_t j_uid, j_validity;  /* APPENDUID */
	bool j_uidcmd;               /* UID FETCH/STORE/... */
	const char *j_set;           /* the set argument (in pc) */
	size_t j_arg;                /* where the command's own args start */
	bool j_nobox;                /* the target folder does not exist */
	/* CONDSTORE and QRESYNC (RFC 7162) */
	bool condstore, qresync;     /* enabled in this session */
	uint64_t j_since;            /* FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE */
	bool j_has_since;
	bool j_vanished;             /* UID FETCH ... VANISHED */
	bool j_unchanged;            /* STORE UNCHANGEDSINCE j_since */
	size_t j_op;                 /* STORE: where the operation is */
	bool j_modseq;               /* SEARCH had a MODSEQ key */
	uint32_t *j_mod;             /* STORE: what failed UNCHANGEDSINCE */
	size_t j_nmod;
	bool j_qr;                   /* SELECT (QRESYNC (...)) */
	uint32_t j_qr_uv;
	uint64_t j_qr_ms;
	const char *j_qr_known;      /* known-uids, or NULL */
	struct buf jqr;              /* what QRESYNC tells, after SELECT's */
	/* LIST-EXTENDED, LIST-STATUS */
	bool l_sel;                  /* extended syntax used */
	bool l_subscribed, l_recursive, l_special, l_ret_subscribed;
	const struct imap_arg *l_status;   /* RETURN (STATUS (items)) */
	const char *l_pat[16];
	size_t l_npat;
	struct list_status *l_st;    /* folders awaiting their STATUS */
	size_t l_nst, l_ist;
	struct buf l_tail;
	struct store_append app;     /* the APPEND in flight */
	struct flagset *app_flags;
};

struct cmd_def {
	const char *name;
	unsigned states;             /* bit per enum istate */
	void (*fn)(struct imap_session *s);
	const char *cap;             /* the capability it brings, or NULL */
};

#define ST(x) (1u << (x))
#define ANY (ST(I_NOTAUTH) | ST(I_AUTH) | ST(I_SELECTED))
#define AUTHED (ST(I_AUTH) | ST(I_SELECTED))

static void session_free(struct imap_session *s);
static bool valid_set(struct imap_session *s, const char *set);
static bool status_items_ok(const struct imap_arg *items);
static void status_answer(struct imap_session *s, struct mbox *mb,
    const char *name, const struct imap_arg *items);
static void process(struct imap_session *s);
static void flush(struct imap_session *s);
static void updates(struct imap_session *s, bool expunges);

/* --- output ------------------------------------------------------------ */

static void __attribute__((format(printf, 2, 3)))
say(struct imap_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* The tagged end of the running command; the session reads on. */
static void __attribute__((format(printf, 3, 4)))
done(struct imap_session *s, const char *status, const char *fmt, ...)
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
	buf_append_str(b, "IMAP4rev1");
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
	    " CONDSTORE QRESYNC LIST-EXTENDED LIST-STATUS STATUS=SIZE ESEARCH");
	buf_printf(b, " APPENDLIMIT=%llu",
	    (unsigned long long)s->cfg->limits.max_message_size);
}

/* --- the view of the selected folder ----------------------------------- */

static void
view_add(struct imap_session *s, uint32_t uid)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->uids = xreallocarray(s->uids, s->cap, sizeof(uint32_t));
	}
	s->uids[s->n++] = uid;
}

/* seq (1-based) of uid in the view, or 0 */
static size_t
view_seq(const struct imap_session *s, uint32_t uid)
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

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * What changed in the folder since this session last looked: EXPUNGE
 * (when allowed), EXISTS, and FLAGS of messages others changed. Only
 * between the box's jobs (its state is stable then).
 */
static void
updates(struct imap_session *s, bool expunges)
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
			size_t seq = view_seq(s, mb->exp[k].uid);
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
			qsort(gone, ngone, sizeof(uint32_t), cmp_u32);
			buf_append_str(&b, "* VANISHED ");
			imap_seqset_write(&b, gone, ngone);
			buf_append_str(&b, "\r\n");
		}
		free(gone);
		s->seen_exp = mb->nexp;
	}
	uint32_t last = s->n ? s->uids[s->n - 1] : 0;
	size_t before = s->n;
	for (size_t i = 0; i < mb->n; i++)
		if (mb->m[i].uid > last)
			view_add(s, mb->m[i].uid);
	if (s->n != before)
		buf_printf(&b, "* %zu EXISTS\r\n", s->n);
	for (size_t i = 0; i < mb->n; i++) {
		const struct mbox_msg *m = &mb->m[i];
		if (m->modseq <= s->seen_modseq || m->uid > last ||
		    (s->own_after && m->modseq > s->own_after))
			continue;
		size_t seq = view_seq(s, m->uid);
		if (seq == 0)
			continue;
		buf_printf(&b, "* %zu FETCH (UID %u FLAGS ", seq, m->uid);
		imap_write_flags(&b, mb, m);
		if (s->condstore)
			buf_printf(&b, " MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
		buf_append_str(&b, ")\r\n");
	}
	s->seen_modseq = mb->modseq;
	s->own_after = 0;
	if (b.len)
		bufferevent_write(s->bev, b.data, b.len);
	buf_clear(&b);
}

static void
on_box_changed(void *arg)
{
	struct imap_session *s = arg;

	if (s->idling && !s->dead) {
		updates(s, true);
		flush(s);
	}
}

static void
deselect(struct imap_session *s)
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
	if (s->state == I_SELECTED)
		s->state = I_AUTH;
}

/* --- jobs ------------------------------------------------------------- */

typedef void (*job_fn)(struct imap_session *s, struct mbox *mb);
typedef void (*job_end)(struct imap_session *s);

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
			session_free(s);
		return;
	}
	if (s->jout.len)
		bufferevent_write(s->bev, s->jout.data, s->jout.len);
	buf_reset(&s->jout);
	end(s);
	flush(s);
	if (!s->busy)
		process(s);
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

static void
run_box_job(struct imap_session *s, struct store_box *b, job_fn work,
    job_end end)
{
	struct sjob *j = sjob_new(s, end);

	j->box_work = work;
	store_box_run(b, sjob_box_work, sjob_box_done, j);
}

/* An account-level job (folders, subscriptions). */
static void
run_acct_job(struct imap_session *s, void (*work)(struct imap_session *s),
    job_end end)
{
	struct sjob *j = sjob_new(s, end);

	j->acct_work = work;
	iopool_submit(s->env.pool, sjob_acct_work, sjob_done, j);
}

/* --- argument helpers ----------------------------------------------- */

static const char *
arg_str(struct imap_session *s, size_t i)
{
	return i < s->pc.nargs ? imap_arg_text(&s->pc.args[i]) : NULL;
}

/* A mailbox argument: its canonical name, or NULL (BAD sent). */
static const char *
arg_mailbox(struct imap_session *s, size_t i, char *path, size_t pathsz)
{
	const char *name = arg_str(s, i);

	if (name == NULL) {
		done(s, "BAD", "mailbox name expected");
		return NULL;
	}
	name = folders_canonical(name);
	if (folders_path(s->root, name, path, pathsz) != 0) {
		done(s, "NO", "[CANNOT] that mailbox name is not allowed");
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
	say(s, "* CAPABILITY %s", b.data);
	buf_clear(&b);
	done(s, "OK", "CAPABILITY completed");
}

static void
cmd_noop_now(struct imap_session *s)
{
	done(s, "OK", "NOOP completed");
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
	updates(s, true);
	done(s, "OK", "%s completed", s->pc.name);
}

static void
cmd_noop(struct imap_session *s)
{
	if (s->state != I_SELECTED) {
		cmd_noop_now(s);
		return;
	}
	run_box_job(s, s->box, sync_job, noop_end);
}

static void
cmd_logout(struct imap_session *s)
{
	say(s, "* BYE Tern IMAP server logging out");
	done(s, "OK", "LOGOUT completed");
	s->state = I_LOGOUT;
	s->closing = true;
}

static void
cmd_id(struct imap_session *s)
{
	say(s, "* ID (\"name\" \"Tern\" \"version\" \"%s\")", PACKAGE_VERSION);
	done(s, "OK", "ID completed");
}

static void
cmd_starttls(struct imap_session *s)
{
	if (s->tls || s->env.rt->tls == NULL ||
	    s->tls_mode != LISTEN_TLS_STARTTLS) {
		done(s, "BAD", "STARTTLS not available");
		return;
	}
	done(s, "OK", "Begin TLS negotiation now");
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
	done(s, "OK", "[CAPABILITY %s] Logged in", b.data);
	buf_clear(&b);
}

static void
on_auth_checked(void *arg, bool ok)
{
	struct imap_session *s = arg;

	s->auth = NULL;
	if (!ok || user_root(s, s->user) != 0) {
		auth_ip_failed(s->ip, (long)time(NULL));
		log_info("imap %s: login failed user=%s client=%s", s->id,
		    s->user, s->ip);
		s->user[0] = '\0';
		done(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		flush(s);
		process(s);
		return;
	}
	s->state = I_AUTH;
	s->acct = store_account_open(s->env.store, s->user, s->root);
	log_info("imap %s: login user=%s client=%s tls=%s", s->id, s->user,
	    s->ip, s->tls ? s->tls_desc : "no");
	set_timeouts(s, IMAP_AUTH_TIMEOUT);
	run_acct_job(s, login_prepare, login_end);
}

static bool
may_login(struct imap_session *s)
{
	if (!s->tls && !(s->trusted && s->cfg->auth_loopback_plaintext)) {
		done(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
		return false;
	}
	if (s->env.rt->users == NULL) {
		done(s, "NO", "[UNAVAILABLE] No users table");
		return false;
	}
	if (auth_ip_blocked(s->ip, (long)time(NULL))) {
		done(s, "NO", "[UNAVAILABLE] Too many failed logins; try later");
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
	const char *user = arg_str(s, 0), *pass = arg_str(s, 1);

	if (user == NULL || pass == NULL || s->pc.nargs != 2) {
		done(s, "BAD", "LOGIN user password");
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
		done(s, "BAD", "Authentication cancelled");
		return;
	}
	if (sasl_plain(line, len, user, pass) != 0) {
		done(s, "BAD", "Cannot decode the response");
		return;
	}
	start_check(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

static void
cmd_authenticate(struct imap_session *s)
{
	const char *mech = arg_str(s, 0), *ir = arg_str(s, 1);

	if (mech == NULL || !ascii_strcaseeq(mech, "PLAIN")) {
		done(s, "NO", "[CANNOT] Only PLAIN");
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
	say(s, "+ ");
}

/* --- authenticated ---------------------------------------------------- */

static void
cmd_compress(struct imap_session *s)
{
	const char *m = arg_str(s, 0);

	if (s->pc.nargs != 1 || m == NULL || !ascii_strcaseeq(m, "DEFLATE")) {
		done(s, "BAD", "COMPRESS DEFLATE");
		return;
	}
	if (s->compressed) {
		done(s, "NO", "[COMPRESSIONACTIVE] already deflating");
		return;
	}
	done(s, "OK", "DEFLATE active");
	s->compress_now = true;     /* flush() wraps, after the OK */
}

static void
cmd_enable(struct imap_session *s)
{
	struct buf on;

	if (s->pc.nargs == 0) {
		done(s, "BAD", "ENABLE capability...");
		return;
	}
	buf_init(&on);
	buf_append_str(&on, "* ENABLED");
	for (size_t i = 0; i < s->pc.nargs; i++) {
		const char *c = arg_str(s, i);
		if (c && ascii_strcaseeq(c, "CONDSTORE") && !s->condstore) {
			s->condstore = true;
			buf_append_str(&on, " CONDSTORE");
		} else if (c && ascii_strcaseeq(c, "QRESYNC") && !s->qresync) {
			/* QRESYNC brings CONDSTORE (RFC 7162 3.2.3) */
			s->qresync = s->condstore = true;
			buf_append_str(&on, " QRESYNC");
		}
	}
	buf_append_char(&on, '\0');
	say(s, "%s", on.data);
	buf_clear(&on);
	done(s, "OK", "ENABLE completed");
}

static void
cmd_namespace(struct imap_session *s)
{
	say(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	done(s, "OK", "NAMESPACE completed");
}

/* LIST wildcards: '*' any, '%' any but the separator. */
static bool
match(const char *pat, const char *name)
{
	if (*pat == '\0')
		return *name == '\0';
	if (*pat == '*') {
		for (const char *p = name;; p++) {
			if (match(pat + 1, p))
				return true;
			if (*p == '\0')
				return false;
		}
	}
	if (*pat == '%') {
		for (const char *p = name;; p++) {
			if (match(pat + 1, p))
				return true;
			if (*p == '\0' || *p == '/')
				return false;
		}
	}
	if (*name == '\0')
		return false;
	bool eq = pat[0] == name[0];
	return eq && match(pat + 1, name + 1);
}

/*
 * LIST with RFC 5258 (LIST-EXTENDED) and RFC 5819 (LIST-STATUS):
 * LIST [(selection)] reference pattern|(patterns) [RETURN (options)].
 * Folder attributes (children, special use) are always given; STATUS
 * answers follow each selectable folder, from its shared box.
 */
struct list_status {
	char *name, *path;
	char *out;                /* the LIST lines up to this folder's */
};

static bool
list_matches(struct imap_session *s, const char *ref, const char *name,
    bool inbox)
{
	for (size_t i = 0; i < s->l_npat; i++) {
		char *full = xasprintf("%s%s", ref, s->l_pat[i]);
		bool m = match(full, name) || (inbox && ascii_strcaseeq(full,
		    "INBOX"));
		free(full);
		if (m)
			return true;
	}
	return false;
}

static bool
name_in(char *const *names, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(names[k], name) == 0)
			return true;
	return false;
}

static void
list_work(struct imap_session *s)
{
	char **names = NULL, **subs = NULL;
	size_t n = 0, ns = 0;
	bool lsub = strcmp(s->pc.name, "LSUB") == 0;
	const char *ref = arg_str(s, s->l_sel ? 1 : 0);

	ref = ref ? ref : "";
	(void)folders_list(s->root, &names, &n);
	(void)folders_subscriptions(s->root, &subs, &ns);
	/* candidates: the folders, then subscribed names that are gone */
	size_t nall = n;
	char **all = xcalloc(n + ns + 1, sizeof(char *));
	memcpy(all, names, n * sizeof(char *));
	if (s->l_subscribed || lsub)
		for (size_t k = 0; k < ns; k++)
			if (!name_in(names, n, subs[k]))
				all[nall++] = subs[k];
	for (size_t i = 0; i < nall; i++) {
		const char *nm = all[i];
		bool exists = i < n;
		if (!list_matches(s, ref, nm, i == 0))
			continue;
		bool sub = name_in(subs, ns, nm);
		size_t l = strlen(nm);
		bool children = false, sub_child = false;
		for (size_t k = 1; k < n; k++)
			if (strncmp(names[k], nm, l) == 0 && names[k][l] == '/')
				children = true;
		for (size_t k = 0; k < ns; k++)
			if (strncmp(subs[k], nm, l) == 0 && subs[k][l] == '/')
				sub_child = true;
		const char *su = exists ? folders_special_use(nm) : NULL;
		bool childinfo = false;
		if ((s->l_subscribed || lsub) && !sub) {
			if (!(s->l_recursive && sub_child))
				continue;
			childinfo = true;
		}
		if (s->l_special && su == NULL)
			continue;
		struct buf attr;
		buf_init(&attr);
		if (!exists)
			buf_append_str(&attr, "\\NonExistent ");
		buf_append_str(&attr, children ? "\\HasChildren" :
		    "\\HasNoChildren");
		if (su)
			buf_printf(&attr, " %s", su);
		if (sub && !lsub && (s->l_ret_subscribed || s->l_subscribed ||
		    !s->l_sel))
			buf_append_str(&attr, " \\Subscribed");
		buf_append_char(&attr, '\0');
		buf_printf(&s->jout, "* %s (%s) \"/\" ", lsub ? "LSUB" : "LIST",
		    attr.data);
		buf_clear(&attr);
		imap_write_string(&s->jout, nm, strlen(nm), false);
		if (childinfo && !lsub)
			buf_append_str(&s->jout, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		buf_append_str(&s->jout, "\r\n");
		char path[4096];
		if (s->l_status && exists &&
		    folders_path(s->root, nm, path, sizeof(path)) == 0) {
			/* the LIST lines so far go out, then this one's STATUS */
			s->l_st = xreallocarray(s->l_st, s->l_nst + 1,
			    sizeof(*s->l_st));
			s->l_st[s->l_nst].name = xstrdup(nm);
			s->l_st[s->l_nst].path = xstrdup(path);
			s->l_st[s->l_nst].out = xstrndup(s->jout.data,
			    s->jout.len);
			s->l_nst++;
			buf_reset(&s->jout);
		}
	}
	/* after the last folder with a STATUS: sent at the end */
	if (s->l_nst) {
		buf_append(&s->l_tail, s->jout.data ? s->jout.data : "",
		    s->jout.len);
		buf_reset(&s->jout);
	}
	free(all);
	folders_list_free(names, n);
	folders_list_free(subs, ns);
}

static void list_status_next(struct imap_session *s);

static void
list_status_job(struct imap_session *s, struct mbox *mb)
{
	status_answer(s, mb, s->l_st[s->l_ist].name, s->l_status);
}

static void
list_status_end(struct imap_session *s)
{
	store_box_close(s->other);
	s->other = NULL;
	s->l_ist++;
	list_status_next(s);
}

static void
list_free_status(struct imap_session *s)
{
	for (size_t i = 0; i < s->l_nst; i++) {
		free(s->l_st[i].name);
		free(s->l_st[i].path);
		free(s->l_st[i].out);
	}
	free(s->l_st);
	s->l_st = NULL;
	s->l_nst = s->l_ist = 0;
}

static void
list_status_next(struct imap_session *s)
{
	if (s->l_ist >= s->l_nst) {
		/* what came after the last folder with a STATUS */
		if (s->l_tail.len)
			bufferevent_write(s->bev, s->l_tail.data, s->l_tail.len);
		buf_reset(&s->l_tail);
		list_free_status(s);
		done(s, "OK", "%s completed", s->pc.name);
		return;
	}
	struct list_status *ls = &s->l_st[s->l_ist];
	bufferevent_write(s->bev, ls->out, strlen(ls->out));
	s->other = store_box_open(s->acct, ls->name, ls->path);
	run_box_job(s, s->other, list_status_job, list_status_end);
}

static void
list_end(struct imap_session *s)
{
	if (s->l_nst) {
		list_status_next(s);
		return;
	}
	done(s, "OK", "%s completed", s->pc.name);
}

/* The selection options, patterns and return options of a LIST. */
static int
list_parse(struct imap_session *s)
{
	size_t i = 0;
	bool lsub = strcmp(s->pc.name, "LSUB") == 0;

	s->l_sel = s->l_subscribed = s->l_recursive = s->l_special = false;
	s->l_ret_subscribed = false;
	s->l_status = NULL;
	s->l_npat = 0;
	if (!lsub && s->pc.nargs > 0 && s->pc.args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *o = &s->pc.args[0];
		s->l_sel = true;
		i = 1;
		for (size_t k = 0; k < o->nitems; k++) {
			const char *t = imap_arg_text(&o->items[k]);
			if (t && ascii_strcaseeq(t, "SUBSCRIBED"))
				s->l_subscribed = true;
			else if (t && ascii_strcaseeq(t, "RECURSIVEMATCH"))
				s->l_recursive = true;
			else if (t && ascii_strcaseeq(t, "SPECIAL-USE"))
				s->l_special = true;
			else if (t && ascii_strcaseeq(t, "REMOTE"))
				;
			else
				return -1;
		}
		/* RECURSIVEMATCH alone is an error (RFC 5258 3) */
		if (s->l_recursive && !s->l_subscribed && !s->l_special)
			return -1;
	}
	if (s->pc.nargs < i + 2 || arg_str(s, i) == NULL)
		return -1;
	const struct imap_arg *p = &s->pc.args[i + 1];
	if (p->type == IMAP_ARG_LIST && !lsub) {
		if (p->nitems == 0 || p->nitems > 16)
			return -1;
		for (size_t k = 0; k < p->nitems; k++)
			if ((s->l_pat[s->l_npat++] = imap_arg_text(&p->items[k])) ==
			    NULL)
				return -1;
		s->l_sel = true;
	} else if ((s->l_pat[s->l_npat++] = arg_str(s, i + 1)) == NULL)
		return -1;
	i += 2;
	if (i == s->pc.nargs)
		return 0;
	const char *r = arg_str(s, i);
	if (lsub || r == NULL || !ascii_strcaseeq(r, "RETURN") ||
	    i + 2 != s->pc.nargs || s->pc.args[i + 1].type != IMAP_ARG_LIST)
		return -1;
	s->l_sel = true;
	const struct imap_arg *o = &s->pc.args[i + 1];
	for (size_t k = 0; k < o->nitems; k++) {
		const char *t = imap_arg_text(&o->items[k]);
		if (t && ascii_strcaseeq(t, "SUBSCRIBED"))
			s->l_ret_subscribed = true;
		else if (t && (ascii_strcaseeq(t, "CHILDREN") ||
		    ascii_strcaseeq(t, "SPECIAL-USE")))
			;   /* always given */
		else if (t && ascii_strcaseeq(t, "STATUS") && k + 1 < o->nitems &&
		    o->items[k + 1].type == IMAP_ARG_LIST &&
		    o->items[k + 1].nitems > 0 &&
		    status_items_ok(&o->items[k + 1])) {
			s->l_status = &o->items[++k];
		} else
			return -1;
	}
	return 0;
}

static void
cmd_list(struct imap_session *s)
{
	if (list_parse(s) != 0) {
		done(s, "BAD", "%s [(selection)] reference pattern [RETURN "
		    "(options)]", s->pc.name);
		return;
	}
	if (s->l_npat == 1 && s->l_pat[0][0] == '\0' && !s->l_sel) {
		say(s, "* LIST (\\Noselect) \"/\" \"\"");
		done(s, "OK", "LIST completed");
		return;
	}
	run_acct_job(s, list_work, list_end);
}

static void
folder_work(struct imap_session *s)
{
	const char *a = arg_str(s, 0), *b = arg_str(s, 1);
	const char *n = s->pc.name;

	a = a ? folders_canonical(a) : a;
	if (strcmp(n, "CREATE") == 0) {
		char tmp[FOLDER_NAME_MAX + 1];
		/* "A/B/" creates A/B; parents are made too */
		(void)str_copy(tmp, sizeof(tmp), a);
		size_t l = strlen(tmp);
		if (l > 1 && tmp[l - 1] == '/')
			tmp[l - 1] = '\0';
		for (char *p = tmp; (p = strchr(p, '/')) != NULL; p++) {
			*p = '\0';
			struct tern_err e;
			memset(&e, 0, sizeof(e));
			(void)folders_create(s->root, tmp, &e);
			*p = '/';
		}
		s->jrc = folders_create(s->root, tmp, &s->jerr);
	} else if (strcmp(n, "DELETE") == 0) {
		char pa[4096];
		s->jrc = folders_delete(s->root, a, &s->jerr);
		struct tern_err e;
		memset(&e, 0, sizeof(e));
		if (s->jrc == 0 && folders_path(s->root, a, pa, sizeof(pa)) == 0 &&
		    tindex_drop(store_account_index(s->acct),
		    store_rel(s->acct, pa), &e) != 0)
			log_warnx("imap: %s", e.text);
	} else if (strcmp(n, "RENAME") == 0) {
		char pa[4096], pb[4096];
		b = folders_canonical(b);
		s->jrc = folders_rename(s->root, a, b, &s->jerr);
		struct tern_err e;
		memset(&e, 0, sizeof(e));
		/* the folder keeps its MODSEQs and expunge log (not INBOX,
		 * whose messages move into a new folder) */
		if (s->jrc == 0 && !ascii_strcaseeq(a, "INBOX") &&
		    folders_path(s->root, a, pa, sizeof(pa)) == 0 &&
		    folders_path(s->root, b, pb, sizeof(pb)) == 0 &&
		    tindex_rename(store_account_index(s->acct),
		    store_rel(s->acct, pa), store_rel(s->acct, pb), &e) != 0)
			log_warnx("imap: %s", e.text);
	} else
		s->jrc = folders_subscribe(s->root, a, strcmp(n, "SUBSCRIBE") ==
		    0, &s->jerr);
}

static void
folder_end(struct imap_session *s)
{
	if (s->jrc != 0)
		done(s, "NO", "%s%s", strstr(s->jerr.text, "exists") ?
		    "[ALREADYEXISTS] " : strstr(s->jerr.text, "no such") ?
		    "[NONEXISTENT] " : "", s->jerr.text);
	else {
		/* a folder gone or moved: no box of it may linger on */
		bool del = strcmp(s->pc.name, "DELETE") == 0,
		    ren = strcmp(s->pc.name, "RENAME") == 0;
		for (size_t i = 0; (del || ren) && i < (ren ? 2u : 1u); i++) {
			char path[4096];
			const char *n = arg_str(s, i);
			if (n && folders_path(s->root, folders_canonical(n), path,
			    sizeof(path)) == 0)
				store_forget_path(s->env.store, path);
		}
		done(s, "OK", "%s completed", s->pc.name);
	}
}

static void
cmd_folder(struct imap_session *s)
{
	char path[4096];
	size_t want = strcmp(s->pc.name, "RENAME") == 0 ? 2 : 1;
	const char *name = arg_str(s, 0);
	char tmp[FOLDER_NAME_MAX + 2];

	if (s->pc.nargs != want || name == NULL) {
		done(s, "BAD", "%s needs %zu mailbox name(s)", s->pc.name, want);
		return;
	}
	/* CREATE "A/": the trailing separator is a hint, not the name */
	(void)str_copy(tmp, sizeof(tmp), name);
	size_t l = strlen(tmp);
	if (strcmp(s->pc.name, "CREATE") == 0 && l > 1 && tmp[l - 1] == '/')
		tmp[l - 1] = '\0';
	if (folders_path(s->root, folders_canonical(tmp), path,
	    sizeof(path)) != 0 || (want == 2 && (arg_str(s, 1) == NULL ||
	    folders_path(s->root, folders_canonical(arg_str(s, 1)), path,
	    sizeof(path)) != 0))) {
		done(s, "NO", "[CANNOT] that mailbox name is not allowed");
		return;
	}
	if (strcmp(s->pc.name, "DELETE") == 0 && s->box &&
	    strcmp(store_box_name(s->box), folders_canonical(name)) == 0)
		deselect(s);
	run_acct_job(s, folder_work, folder_end);
}

/* SELECT and EXAMINE ------------------------------------------------- */

/*
 * SELECT (QRESYNC (uidvalidity modseq [known-uids])): what the client
 * missed since modseq, as VANISHED (EARLIER) and FETCH responses, into
 * jout (written after the SELECT's own responses).
 */
static void
qresync_job(struct imap_session *s, struct mbox *mb)
{
	struct imap_seqset known;
	bool have_known = false, complete;
	uint32_t *gone;
	size_t ngone;
	struct tern_err err;
	uint32_t top = mb->uidnext ? mb->uidnext - 1 : 0;

	if (s->j_qr_uv != mb->uidvalidity)
		return;     /* another numbering: the client starts again */
	if (s->j_qr_known)
		have_known = imap_seqset_parse(s->j_qr_known, top, &known) == 0;
	memset(&err, 0, sizeof(err));
	if (tindex_expunged_since(store_account_index(s->acct),
	    store_rel(s->acct, mb->path), mb->uidvalidity, s->j_qr_ms, &gone,
	    &ngone, &complete, &err) != 0) {
		complete = false;
		ngone = 0;
	}
	/* expunges in this run that the index has not been told of yet
	 * are in mb->exp too (it is committed after this job) */
	for (size_t k = 0; k < mb->nexp; k++)
		if (mb->exp[k].modseq > s->j_qr_ms) {
			gone = xreallocarray(gone, ngone + 1, sizeof(uint32_t));
			gone[ngone++] = mb->exp[k].uid;
		}
	if (!complete) {
		/*
		 * The index does not reach back to modseq (it was rebuilt):
		 * every UID below UIDNEXT that is not here may have gone,
		 * which RFC 7162 3.2.5.1 allows the server to say.
		 */
		free(gone);
		gone = NULL;
		ngone = 0;
		size_t k = 0;
		for (uint32_t u = 1; u <= top; u++) {
			while (k < mb->n && mb->m[k].uid < u)
				k++;
			if (k < mb->n && mb->m[k].uid == u)
				continue;
			if (have_known && !imap_seqset_has(&known, u))
				continue;
			gone = xreallocarray(gone, ngone + 1, sizeof(uint32_t));
			gone[ngone++] = u;
			if (!have_known && ngone > 1000000)
				break;
		}
	}
	if (ngone > 1)
		qsort(gone, ngone, sizeof(uint32_t), cmp_u32);
	size_t w = 0;
	for (size_t k = 0; k < ngone; k++)
		if ((!have_known || imap_seqset_has(&known, gone[k])) &&
		    (w == 0 || gone[w - 1] != gone[k]) &&
		    mbox_find_uid(mb, gone[k]) < 0)
			gone[w++] = gone[k];
	if (w) {
		buf_append_str(&s->jqr, "* VANISHED (EARLIER) ");
		imap_seqset_write(&s->jqr, gone, w);
		buf_append_str(&s->jqr, "\r\n");
	}
	free(gone);
	for (size_t i = 0; i < mb->n; i++) {
		const struct mbox_msg *m = &mb->m[i];
		if (m->modseq <= s->j_qr_ms || (have_known &&
		    !imap_seqset_has(&known, m->uid)))
			continue;
		buf_printf(&s->jqr, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_write_flags(&s->jqr, mb, m);
		buf_printf(&s->jqr, " MODSEQ (%llu))\r\n",
		    (unsigned long long)m->modseq);
	}
	if (have_known)
		imap_seqset_clear(&known);
}

static void
select_job(struct imap_session *s, struct mbox *mb)
{
	bool changed;

	buf_reset(&s->jqr);
	s->jrc = mbox_sync(mb, s->root, !s->readonly, &changed, &s->jerr);
	if (changed)
		store_box_mark_changed(s->box);
	if (s->jrc == 0 && s->j_qr)
		qresync_job(s, mb);
}

static void
select_end(struct imap_session *s)
{
	struct mbox *mb = store_box_mbox(s->box);
	size_t recent = 0, unseen = 0;

	if (s->jrc != 0) {
		deselect(s);
		done(s, "NO", "[NONEXISTENT] %s", "no such mailbox");
		return;
	}
	s->n = 0;
	for (size_t i = 0; i < mb->n; i++) {
		view_add(s, mb->m[i].uid);
		if (mb->m[i].recent)
			recent++;
		if (!(mb->m[i].flags & MBOX_SEEN) && unseen == 0)
			unseen = i + 1;
	}
	s->seen_modseq = mb->modseq;
	s->seen_exp = mb->nexp;
	struct buf kw;
	buf_init(&kw);
	for (int i = 0; i < KEYWORDS_MAX; i++)
		if (mb->kw.names[i])
			buf_printf(&kw, " %s", mb->kw.names[i]);
	say(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
	    "$Forwarded%s)", kw.data ? kw.data : "");
	say(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	    "\\Draft $Forwarded%s%s)] Limited", kw.data ? kw.data : "",
	    s->readonly ? "" : " \\*");
	buf_clear(&kw);
	say(s, "* %zu EXISTS", s->n);
	say(s, "* %zu RECENT", recent);
	if (unseen)
		say(s, "* OK [UNSEEN %zu] First unseen", unseen);
	say(s, "* OK [UIDVALIDITY %u] UIDs valid", mb->uidvalidity);
	say(s, "* OK [UIDNEXT %u] Predicted next UID", mb->uidnext);
	say(s, "* OK [HIGHESTMODSEQ %llu] Highest",
	    (unsigned long long)mb->modseq);
	if (s->jqr.len)
		bufferevent_write(s->bev, s->jqr.data, s->jqr.len);
	buf_reset(&s->jqr);
	s->state = I_SELECTED;
	done(s, "OK", "[%s] %s completed", s->readonly ? "READ-ONLY" :
	    "READ-WRITE", s->pc.name);
}

/* (CONDSTORE) or (QRESYNC (uidvalidity modseq [known-uids [...]])) */
static int
select_params(struct imap_session *s)
{
	s->j_qr = false;
	if (s->pc.nargs == 1)
		return 0;
	const struct imap_arg *l = &s->pc.args[1];
	if (s->pc.nargs != 2 || l->type != IMAP_ARG_LIST) {
		done(s, "BAD", "%s mailbox [(parameters)]", s->pc.name);
		return -1;
	}
	for (size_t i = 0; i < l->nitems; i++) {
		const char *p = imap_arg_text(&l->items[i]);
		if (p && ascii_strcaseeq(p, "CONDSTORE")) {
			s->condstore = true;
			continue;
		}
		const struct imap_arg *q = i + 1 < l->nitems ? &l->items[i + 1] :
		    NULL;
		uint64_t uv, ms;
		if (p && ascii_strcaseeq(p, "QRESYNC") && q &&
		    q->type == IMAP_ARG_LIST && q->nitems >= 2 &&
		    q->items[0].type == IMAP_ARG_ATOM &&
		    q->items[1].type == IMAP_ARG_ATOM &&
		    parse_u64(q->items[0].s, strlen(q->items[0].s), &uv) == 0 &&
		    uv > 0 && uv <= UINT32_MAX &&
		    parse_u64(q->items[1].s, strlen(q->items[1].s), &ms) == 0 &&
		    (q->nitems < 3 || (q->items[2].type == IMAP_ARG_ATOM &&
		    valid_set(s, q->items[2].s))) && q->nitems <= 4) {
			if (!s->qresync) {
				done(s, "BAD", "QRESYNC is not enabled");
				return -1;
			}
			s->j_qr = true;
			s->j_qr_uv = (uint32_t)uv;
			s->j_qr_ms = ms;
			s->j_qr_known = q->nitems >= 3 ? q->items[2].s : NULL;
			i++;
			continue;
		}
		done(s, "BAD", "unknown %s parameter", s->pc.name);
		return -1;
	}
	return 0;
}

static void
cmd_select(struct imap_session *s)
{
	char path[4096];
	const char *name;

	if (s->box) {
		deselect(s);
		say(s, "* OK [CLOSED] Previous mailbox closed");
	}
	if ((name = arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
	if (select_params(s) != 0)
		return;
	s->readonly = strcmp(s->pc.name, "EXAMINE") == 0;
	s->box = store_box_open(s->acct, name, path);
	s->watch.changed = on_box_changed;
	s->watch.arg = s;
	store_box_watch(s->box, &s->watch);
	if (!s->readonly)
		store_box_select(s->box, true);
	run_box_job(s, s->box, select_job, select_end);
}

/* STATUS ------------------------------------------------------------- */

static const char *const status_items[] = { "MESSAGES", "UIDNEXT",
	"UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "HIGHESTMODSEQ", NULL };

static bool
status_items_ok(const struct imap_arg *items)
{
	if (items->type != IMAP_ARG_LIST || items->nitems == 0)
		return false;
	for (size_t i = 0; i < items->nitems; i++) {
		const char *it = imap_arg_text(&items->items[i]);
		bool known = false;
		for (size_t k = 0; it && status_items[k]; k++)
			known |= ascii_strcaseeq(it, status_items[k]);
		if (!known)
			return false;
	}
	return true;
}

/* "* STATUS name (...)" into jout, after a sync; s->jrc says how it went. */
static void
status_answer(struct imap_session *s, struct mbox *mb, const char *name,
    const struct imap_arg *items)
{
	bool changed, want_size = false;

	s->jrc = mbox_sync(mb, s->root, false, &changed, &s->jerr);
	if (s->jrc != 0)
		return;
	if (changed)
		store_box_mark_changed(s->other);
	for (size_t i = 0; i < items->nitems; i++)
		want_size |= ascii_strcaseeq(imap_arg_text(&items->items[i]),
		    "SIZE");
	size_t unseen = 0, recent = 0;
	uint64_t size = 0;
	for (size_t k = 0; k < mb->n; k++) {
		if (!(mb->m[k].flags & MBOX_SEEN))
			unseen++;
		if (mb->m[k].recent)
			recent++;
		if (want_size && mb->m[k].vsize == 0) {
			/* no W= or S= in its name: counted once, then kept */
			struct buf d;
			struct tern_err e;
			buf_init(&d);
			memset(&e, 0, sizeof(e));
			if (mbox_read(mb, k, &d, SIZE_MAX, &e) == 0) {
				mb->m[k].vsize = mime_crlf_size(d.data ? d.data :
				    "", d.len);
				mb->m[k].dirty = mb->dirty = true;
			}
			buf_clear(&d);
		}
		size += mb->m[k].vsize;
	}
	buf_append_str(&s->jout, "* STATUS ");
	imap_write_string(&s->jout, name, strlen(name), false);
	buf_append_str(&s->jout, " (");
	for (size_t i = 0; i < items->nitems; i++) {
		const char *it = imap_arg_text(&items->items[i]);
		if (i)
			buf_append_char(&s->jout, ' ');
		if (ascii_strcaseeq(it, "MESSAGES"))
			buf_printf(&s->jout, "MESSAGES %zu", mb->n);
		else if (ascii_strcaseeq(it, "UIDNEXT"))
			buf_printf(&s->jout, "UIDNEXT %u", mb->uidnext);
		else if (ascii_strcaseeq(it, "UIDVALIDITY"))
			buf_printf(&s->jout, "UIDVALIDITY %u", mb->uidvalidity);
		else if (ascii_strcaseeq(it, "UNSEEN"))
			buf_printf(&s->jout, "UNSEEN %zu", unseen);
		else if (ascii_strcaseeq(it, "RECENT"))
			buf_printf(&s->jout, "RECENT %zu", recent);
		else if (ascii_strcaseeq(it, "SIZE"))
			buf_printf(&s->jout, "SIZE %llu",
			    (unsigned long long)size);
		else if (ascii_strcaseeq(it, "HIGHESTMODSEQ"))
			buf_printf(&s->jout, "HIGHESTMODSEQ %llu",
			    (unsigned long long)mb->modseq);
	}
	buf_append_str(&s->jout, ")\r\n");
}

static void
status_job(struct imap_session *s, struct mbox *mb)
{
	status_answer(s, mb, folders_canonical(arg_str(s, 0)),
	    &s->pc.args[1]);
}

static void
status_end(struct imap_session *s)
{
	store_box_close(s->other);
	s->other = NULL;
	if (s->jrc == -2) {
		buf_reset(&s->jout);
		done(s, "BAD", "unknown STATUS item");
	} else if (s->jrc != 0) {
		buf_reset(&s->jout);
		done(s, "NO", "[NONEXISTENT] no such mailbox");
	} else
		done(s, "OK", "STATUS completed");
}

static void
cmd_status(struct imap_session *s)
{
	char path[4096];
	const char *name;

	if (s->pc.nargs != 2 || !status_items_ok(&s->pc.args[1])) {
		done(s, "BAD", "STATUS mailbox (items), items: MESSAGES UIDNEXT "
		    "UIDVALIDITY UNSEEN RECENT SIZE HIGHESTMODSEQ");
		return;
	}
	if ((name = arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
	for (size_t i = 0; i < s->pc.args[1].nitems; i++) {
		const char *it = imap_arg_text(&s->pc.args[1].items[i]);
		if (it && ascii_strcaseeq(it, "HIGHESTMODSEQ"))
			s->condstore = true;   /* an enabling command */
	}
	s->other = store_box_open(s->acct, name, path);
	run_box_job(s, s->other, status_job, status_end);
}

/* APPEND ------------------------------------------------------------- */

struct flagset {
	uint8_t flags;
	const char *kw[KEYWORDS_MAX];
	size_t nkw;
};

/* A flag list; -1 for a flag that is not one (\Recent is refused). */
static int
parse_flags(const struct imap_arg *a, struct flagset *f)
{
	const struct imap_arg *items = a->type == IMAP_ARG_LIST ? a->items : a;
	size_t n = a->type == IMAP_ARG_LIST ? a->nitems : 1;

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		const char *t = imap_arg_text(&items[i]);
		if (t == NULL || items[i].type != IMAP_ARG_ATOM)
			return -1;
		if (ascii_strcaseeq(t, "\\Seen"))
			f->flags |= MBOX_SEEN;
		else if (ascii_strcaseeq(t, "\\Answered"))
			f->flags |= MBOX_ANSWERED;
		else if (ascii_strcaseeq(t, "\\Flagged"))
			f->flags |= MBOX_FLAGGED;
		else if (ascii_strcaseeq(t, "\\Deleted"))
			f->flags |= MBOX_DELETED;
		else if (ascii_strcaseeq(t, "\\Draft"))
			f->flags |= MBOX_DRAFT;
		else if (ascii_strcaseeq(t, "$Forwarded"))
			f->flags |= MBOX_FORWARDED;
		else if (t[0] == '\\' || !keywords_valid(t))
			return -1;
		else if (f->nkw < KEYWORDS_MAX)
			f->kw[f->nkw++] = t;
	}
	return 0;
}

/* Keyword names to bits of mb, adding names (saved) as needed. */
static uint32_t
kw_bits(struct mbox *mb, const struct flagset *f, bool add, bool *saved)
{
	uint32_t bits = 0;

	for (size_t i = 0; i < f->nkw; i++) {
		int k = add ? keywords_add(&mb->kw, f->kw[i]) :
		    keywords_find(&mb->kw, f->kw[i]);
		if (k >= 0) {
			bits |= 1u << k;
			if (add)
				*saved = true;
		}
	}
	return bits;
}

/* The parts of an APPEND, from the parsed command. */
struct append_args {
	const struct imap_arg *flags, *date, *msg;
};

static int
append_args(struct imap_session *s, struct append_args *a)
{
	size_t i = 1;

	memset(a, 0, sizeof(*a));
	if (i < s->pc.nargs && s->pc.args[i].type == IMAP_ARG_LIST)
		a->flags = &s->pc.args[i++];
	if (i + 1 < s->pc.nargs && s->pc.args[i].type == IMAP_ARG_STRING &&
	    !s->pc.args[i].literal)
		a->date = &s->pc.args[i++];
	if (i + 1 != s->pc.nargs || s->pc.args[i].type != IMAP_ARG_STRING)
		return -1;
	a->msg = &s->pc.args[i];
	return 0;
}

static void
append_end(struct imap_session *s)
{
	if (s->other != s->box)
		store_box_close(s->other);
	s->other = NULL;
	if (s->jrc != 0) {
		done(s, "NO", "[%s] %s", s->j_nobox ? "TRYCREATE" :
		    s->jerr.code == 452 ? "OVERQUOTA" : "SERVERBUG",
		    s->j_nobox ? "no such mailbox" : s->jerr.text);
		return;
	}
	if (s->state == I_SELECTED)
		updates(s, false);
	done(s, "OK", "[APPENDUID %u %u] APPEND completed", s->j_validity,
	    s->j_uid);
}

static void
append_finished(void *arg)
{
	struct imap_session *s = arg;

	s->refs--;
	if (s->dead) {
		if (s->refs == 0)
			session_free(s);
		return;
	}
	s->jrc = s->app.rc;
	s->jerr = s->app.err;
	s->j_nobox = s->app.nobox;
	s->j_uid = s->app.uid;
	s->j_validity = s->app.uidvalidity;
	append_end(s);
	flush(s);
	if (!s->busy)
		process(s);
}

static void
cmd_append(struct imap_session *s)
{
	char path[4096];
	const char *name;
	struct append_args a;
	struct flagset f;

	if ((name = arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
	if (append_args(s, &a) != 0) {
		done(s, "BAD", "APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (a.flags && parse_flags(a.flags, &f) != 0) {
		done(s, "BAD", "bad flag");
		return;
	}
	if (a.date && imap_parse_datetime(a.date->s) < 0) {
		done(s, "BAD", "bad date-time");
		return;
	}
	if (a.msg->len > s->cfg->limits.max_message_size) {
		done(s, "NO", "[TOOBIG] message larger than APPENDLIMIT");
		return;
	}
	s->other = s->box && strcmp(store_box_name(s->box), name) == 0 ?
	    s->box : store_box_open(s->acct, name, path);
	/* staged beside other clients' work, committed in a batch */
	free(s->app_flags);
	s->app_flags = xcalloc(1, sizeof(*s->app_flags));
	if (a.flags)
		(void)parse_flags(a.flags, s->app_flags);
	memset(&s->app, 0, sizeof(s->app));
	s->app.data = a.msg->s;
	s->app.len = a.msg->len;
	s->app.crlf = true;
	s->app.flags = s->app_flags->flags;
	s->app.kw = s->app_flags->kw;
	s->app.nkw = s->app_flags->nkw;
	s->app.internaldate = a.date ? imap_parse_datetime(a.date->s) : 0;
	s->app.done = append_finished;
	s->app.arg = s;
	s->refs++;
	s->busy = true;
	memset(&s->jerr, 0, sizeof(s->jerr));
	store_box_append(s->other, &s->app);
}

/* Messages of a set: the view's, by sequence number or UID. ------------ */

/* Fills idx (box indices) and seqs for the set; returns the count. */
static size_t
resolve_set(struct imap_session *s, const struct mbox *mb, const char *set,
    bool uid, size_t **idx, size_t **seqs)
{
	struct imap_seqset ss;
	size_t n = 0;

	*idx = xcalloc(s->n + 1, sizeof(size_t));
	*seqs = xcalloc(s->n + 1, sizeof(size_t));
	uint32_t max = uid ? (s->n ? s->uids[s->n - 1] : 0) : (uint32_t)s->n;
	if (imap_seqset_parse(set, max, &ss) != 0)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		if (!imap_seqset_has(&ss, uid ? s->uids[i] : (uint32_t)(i + 1)))
			continue;
		ssize_t k = mbox_find_uid(mb, s->uids[i]);
		if (k < 0)
			continue;     /* expunged by another; not told yet */
		(*idx)[n] = (size_t)k;
		(*seqs)[n] = i + 1;
		n++;
	}
	imap_seqset_clear(&ss);
	return n;
}

static bool
valid_set(struct imap_session *s, const char *set)
{
	struct imap_seqset ss;

	if (set == NULL || imap_seqset_parse(set, 1, &ss) != 0)
		return false;
	imap_seqset_clear(&ss);
	return true;
}

/* FETCH -------------------------------------------------------------- */

/* The args of the command after "UID" and its name. */
static const struct imap_arg *
cmd_arg(struct imap_session *s, size_t i)
{
	i += s->j_arg;
	return i < s->pc.nargs ? &s->pc.args[i] : NULL;
}

static size_t
cnargs(const struct imap_session *s)
{
	return s->pc.nargs - s->j_arg;
}

/* UID FETCH ... (CHANGEDSINCE m VANISHED): UIDs of the set gone since m */
static void
fetch_vanished(struct imap_session *s, struct mbox *mb)
{
	struct imap_seqset ss;
	uint32_t *gone = NULL;
	size_t ngone = 0, w = 0;
	bool complete;
	struct tern_err err;
	uint32_t top = mb->uidnext ? mb->uidnext - 1 : 0;

	if (imap_seqset_parse(s->j_set, top, &ss) != 0)
		return;
	memset(&err, 0, sizeof(err));
	if (tindex_expunged_since(store_account_index(s->acct),
	    store_rel(s->acct, mb->path), mb->uidvalidity, s->j_since, &gone,
	    &ngone, &complete, &err) != 0)
		complete = false;
	if (!complete) {
		/* not known that far back: every UID of the set not here */
		free(gone);
		gone = NULL;
		ngone = 0;
		for (size_t r = 0; r < ss.n; r++)
			for (uint32_t u = ss.r[r].lo; u <= ss.r[r].hi &&
			    u <= top && ngone < 1000000; u++) {
				gone = xreallocarray(gone, ngone + 1,
				    sizeof(uint32_t));
				gone[ngone++] = u;
				if (u == UINT32_MAX)
					break;
			}
		qsort(gone, ngone, sizeof(uint32_t), cmp_u32);
	}
	for (size_t k = 0; k < ngone; k++)
		if (imap_seqset_has(&ss, gone[k]) &&
		    mbox_find_uid(mb, gone[k]) < 0 &&
		    (w == 0 || gone[w - 1] != gone[k]))
			gone[w++] = gone[k];
	if (w) {
		buf_append_str(&s->jout, "* VANISHED (EARLIER) ");
		imap_seqset_write(&s->jout, gone, w);
		buf_append_str(&s->jout, "\r\n");
	}
	free(gone);
	imap_seqset_clear(&ss);
}

static void
fetch_job(struct imap_session *s, struct mbox *mb)
{
	struct imap_fetch *f = imap_fetch_parse(cmd_arg(s, 1));
	size_t *idx, *seqs;
	bool changed = false;

	s->own_after = mb->modseq;   /* \Seen set here is in the answer */
	if (f && s->j_has_since)
		imap_fetch_want_modseq(f);
	if (s->j_vanished)
		fetch_vanished(s, mb);
	size_t n = resolve_set(s, mb, s->j_set, s->j_uidcmd, &idx, &seqs);
	for (size_t i = 0; f && i < n; i++) {
		if (s->j_has_since && mb->m[idx[i]].modseq <= s->j_since)
			continue;
		imap_fetch_message(&s->jout, mb, idx[i], seqs[i], f,
		    s->j_uidcmd, s->readonly, s->condstore, &changed, &s->jerr);
	}
	s->fetched += n;
	if (changed)
		store_box_mark_changed(s->box);
	free(idx);
	free(seqs);
	imap_fetch_free(f);
}

static void
fetch_end(struct imap_session *s)
{
	updates(s, s->j_uidcmd);
	done(s, "OK", "%sFETCH completed", s->j_uidcmd ? "UID " : "");
}

static void
cmd_fetch(struct imap_session *s)
{
	struct imap_fetch *f;
	const struct imap_arg *set = cmd_arg(s, 0), *items = cmd_arg(s, 1);

	if ((cnargs(s) != 2 && cnargs(s) != 3) || set->type != IMAP_ARG_ATOM ||
	    !valid_set(s, set->s)) {
		done(s, "BAD", "FETCH sequence-set items [(modifiers)]");
		return;
	}
	if ((f = imap_fetch_parse(items)) == NULL) {
		done(s, "BAD", "unknown FETCH item");
		return;
	}
	if (imap_fetch_modseq(f))
		s->condstore = true;       /* an enabling command */
	imap_fetch_free(f);
	s->j_since = 0;
	s->j_has_since = false;
	s->j_vanished = false;
	if (cnargs(s) == 3) {
		/* (CHANGEDSINCE modseq [VANISHED]) RFC 7162 3.1.4, 3.2.6 */
		const struct imap_arg *m = cmd_arg(s, 2);
		for (size_t i = 0; m->type == IMAP_ARG_LIST && i < m->nitems;
		    i++) {
			const char *t = imap_arg_text(&m->items[i]);
			const char *v = i + 1 < m->nitems ?
			    imap_arg_text(&m->items[i + 1]) : NULL;
			if (t && ascii_strcaseeq(t, "CHANGEDSINCE") && v &&
			    parse_u64(v, strlen(v), &s->j_since) == 0) {
				s->j_has_since = true;
				i++;
				continue;
			}
			if (t && ascii_strcaseeq(t, "VANISHED")) {
				s->j_vanished = true;
				continue;
			}
			done(s, "BAD", "FETCH modifiers: (CHANGEDSINCE modseq "
			    "[VANISHED])");
			return;
		}
		if (m->type != IMAP_ARG_LIST || !s->j_has_since) {
			done(s, "BAD", "FETCH modifiers: (CHANGEDSINCE modseq "
			    "[VANISHED])");
			return;
		}
		if (s->j_vanished && (!s->j_uidcmd || !s->qresync)) {
			done(s, "BAD", "VANISHED needs UID FETCH and QRESYNC");
			return;
		}
		s->condstore = true;
	}
	s->j_set = set->s;
	run_box_job(s, s->box, fetch_job, fetch_end);
}

/* STORE -------------------------------------------------------------- */

static void
store_job(struct imap_session *s, struct mbox *mb)
{
	struct flagset fs;
	size_t *idx, *seqs;
	const char *op = cmd_arg(s, s->j_op)->s;
	bool silent = strstr(op, ".SILENT") || strstr(op, ".silent");
	int mode = op[0] == '+' ? 1 : op[0] == '-' ? -1 : 0;
	bool saved = false;

	(void)parse_flags(cmd_arg(s, s->j_op + 1), &fs);
	s->own_after = mb->modseq;
	uint32_t kw = kw_bits(mb, &fs, mode >= 0, &saved);
	if (saved)
		(void)mbox_save_keywords(mb, &s->jerr);
	size_t n = resolve_set(s, mb, s->j_set, s->j_uidcmd, &idx, &seqs);
	for (size_t i = 0; i < n; i++) {
		struct mbox_msg *m = &mb->m[idx[i]];
		uint8_t nf = mode > 0 ? (uint8_t)(m->flags | fs.flags) :
		    mode < 0 ? (uint8_t)(m->flags & ~fs.flags) : fs.flags;
		uint32_t nk = mode > 0 ? m->kw | kw : mode < 0 ? m->kw & ~kw :
		    kw;
		if (s->j_unchanged && m->modseq > s->j_since) {
			/* changed since the client looked: not touched */
			s->j_mod = xreallocarray(s->j_mod, s->j_nmod + 1,
			    sizeof(uint32_t));
			s->j_mod[s->j_nmod++] = s->j_uidcmd ? m->uid :
			    (uint32_t)seqs[i];
			continue;
		}
		uint64_t before = m->modseq;
		if (mbox_set_flags(mb, idx[i], nf, nk, &s->jerr) != 0) {
			s->jrc = -1;
			continue;
		}
		if (m->modseq != before)
			store_box_mark_changed(s->box);
		if (!silent || (s->condstore && m->modseq != before)) {
			buf_printf(&s->jout, "* %zu FETCH (", seqs[i]);
			if (s->j_uidcmd)
				buf_printf(&s->jout, "UID %u ", m->uid);
			if (!silent) {
				buf_append_str(&s->jout, "FLAGS ");
				imap_write_flags(&s->jout, mb, m);
			}
			/* RFC 7162 3.1.3: MODSEQ even with .SILENT */
			if (s->condstore)
				buf_printf(&s->jout, "%sMODSEQ (%llu)", silent ?
				    "" : " ", (unsigned long long)m->modseq);
			buf_append_str(&s->jout, ")\r\n");
		}
	}
	free(idx);
	free(seqs);
}

static void
store_end(struct imap_session *s)
{
	updates(s, s->j_uidcmd);
	if (s->jrc != 0)
		done(s, "NO", "some flags could not be stored: %s", s->jerr.text);
	else if (s->j_nmod) {
		struct buf b;
		buf_init(&b);
		qsort(s->j_mod, s->j_nmod, sizeof(uint32_t), cmp_u32);
		imap_seqset_write(&b, s->j_mod, s->j_nmod);
		buf_append_char(&b, '\0');
		done(s, "OK", "[MODIFIED %s] Conditional STORE failed for some",
		    b.data);
		buf_clear(&b);
	} else
		done(s, "OK", "%sSTORE completed", s->j_uidcmd ? "UID " : "");
	free(s->j_mod);
	s->j_mod = NULL;
	s->j_nmod = 0;
}

static void
cmd_store(struct imap_session *s)
{
	const struct imap_arg *set = cmd_arg(s, 0), *op, *fl;
	struct flagset fs;

	/* STORE set [(UNCHANGEDSINCE modseq)] op flags (RFC 7162 3.1.3) */
	s->j_op = 1;
	s->j_unchanged = false;
	if (cnargs(s) == 4) {
		const struct imap_arg *m = cmd_arg(s, 1);
		const char *t = m->type == IMAP_ARG_LIST && m->nitems == 2 ?
		    imap_arg_text(&m->items[0]) : NULL;
		const char *v = t ? imap_arg_text(&m->items[1]) : NULL;
		if (t == NULL || !ascii_strcaseeq(t, "UNCHANGEDSINCE") ||
		    v == NULL || parse_u64(v, strlen(v), &s->j_since) != 0) {
			done(s, "BAD", "STORE modifiers: (UNCHANGEDSINCE "
			    "modseq)");
			return;
		}
		s->j_unchanged = true;
		s->condstore = true;       /* an enabling command */
		s->j_op = 2;
	}
	op = cmd_arg(s, s->j_op);
	fl = cmd_arg(s, s->j_op + 1);
	if (cnargs(s) != s->j_op + 2 || set->type != IMAP_ARG_ATOM ||
	    !valid_set(s, set->s) || op->type != IMAP_ARG_ATOM ||
	    parse_flags(fl, &fs) != 0) {
		done(s, "BAD", "STORE sequence-set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	const char *o = op->s + (op->s[0] == '+' || op->s[0] == '-');
	if (!ascii_strcaseeq(o, "FLAGS") && !ascii_strcaseeq(o, "FLAGS.SILENT")) {
		done(s, "BAD", "STORE FLAGS, +FLAGS or -FLAGS");
		return;
	}
	if (s->readonly) {
		done(s, "NO", "[READ-ONLY] the mailbox is read-only");
		return;
	}
	s->j_set = set->s;
	run_box_job(s, s->box, store_job, store_end);
}

/* SEARCH ------------------------------------------------------------- */

/* ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) keys */
#define SR_MIN 1u
#define SR_MAX 2u
#define SR_COUNT 4u
#define SR_ALL 8u

static int
search_return(const struct imap_arg *a, unsigned *ret)
{
	*ret = 0;
	if (a->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->nitems; i++) {
		const char *t = imap_arg_text(&a->items[i]);
		if (t && ascii_strcaseeq(t, "MIN"))
			*ret |= SR_MIN;
		else if (t && ascii_strcaseeq(t, "MAX"))
			*ret |= SR_MAX;
		else if (t && ascii_strcaseeq(t, "COUNT"))
			*ret |= SR_COUNT;
		else if (t && ascii_strcaseeq(t, "ALL"))
			*ret |= SR_ALL;
		else
			return -1;
	}
	if (*ret == 0)
		*ret = SR_ALL;    /* RETURN () */
	return 0;
}

static void
search_job(struct imap_session *s, struct mbox *mb)
{
	size_t start = 0;
	const struct imap_arg *a = cmd_arg(s, 0);
	size_t n = cnargs(s);
	unsigned ret = 0;
	bool esearch = false;

	if (n >= 2 && imap_arg_text(a) && ascii_strcaseeq(a->s, "RETURN")) {
		if (search_return(&a[1], &ret) != 0) {
			s->jrc = -2;
			return;
		}
		esearch = true;
		start = 2;
	}
	/* CHARSET x: only ASCII and UTF-8 are matched (bytes) */
	if (n >= start + 2 && imap_arg_text(&a[start]) &&
	    ascii_strcaseeq(a[start].s, "CHARSET"))
		start += 2;
	if (start >= n) {
		s->jrc = -2;
		return;
	}
	bool modseq_key = false;
	uint64_t top = 0;
	uint32_t *hits = xcalloc(s->n + 1, sizeof(uint32_t));
	size_t nhits = 0;
	for (size_t q = 0; q < s->n; q++) {
		ssize_t k = mbox_find_uid(mb, s->uids[q]);
		if (k < 0)
			continue;
		int r = imap_search_match(mb, (size_t)k, q + 1, s->uids, s->n,
		    a + start, n - start, &modseq_key, &s->jerr);
		if (r < 0) {
			s->jrc = -2;
			free(hits);
			return;
		}
		if (r) {
			hits[nhits++] = s->j_uidcmd ? s->uids[q] :
			    (uint32_t)(q + 1);
			if (mb->m[k].modseq > top)
				top = mb->m[k].modseq;
		}
	}
	s->j_modseq = modseq_key;
	if (!esearch) {
		buf_append_str(&s->jout, "* SEARCH");
		for (size_t i = 0; i < nhits; i++)
			buf_printf(&s->jout, " %u", hits[i]);
		/* RFC 7162 3.1.5: the highest MODSEQ of what matched */
		if (modseq_key && top)
			buf_printf(&s->jout, " (MODSEQ %llu)",
			    (unsigned long long)top);
	} else {
		buf_append_str(&s->jout, "* ESEARCH (TAG ");
		imap_write_string(&s->jout, s->tag, strlen(s->tag), false);
		buf_append_char(&s->jout, ')');
		if (s->j_uidcmd)
			buf_append_str(&s->jout, " UID");
		if ((ret & SR_MIN) && nhits)
			buf_printf(&s->jout, " MIN %u", hits[0]);
		if ((ret & SR_MAX) && nhits)
			buf_printf(&s->jout, " MAX %u", hits[nhits - 1]);
		if (ret & SR_COUNT)
			buf_printf(&s->jout, " COUNT %zu", nhits);
		if ((ret & SR_ALL) && nhits) {
			buf_append_str(&s->jout, " ALL ");
			imap_seqset_write(&s->jout, hits, nhits);
		}
		if (modseq_key && top)
			buf_printf(&s->jout, " MODSEQ %llu",
			    (unsigned long long)top);
	}
	buf_append_str(&s->jout, "\r\n");
	free(hits);
}

static void
search_end(struct imap_session *s)
{
	if (s->jrc == -2) {
		buf_reset(&s->jout);
		done(s, "BAD", "bad SEARCH key");
		return;
	}
	if (s->j_modseq)
		s->condstore = true;       /* an enabling command */
	updates(s, s->j_uidcmd);
	done(s, "OK", "%sSEARCH completed", s->j_uidcmd ? "UID " : "");
}

static void
cmd_search(struct imap_session *s)
{
	if (cnargs(s) == 0) {
		done(s, "BAD", "SEARCH keys");
		return;
	}
	/* the keys are checked as they run (against the first message);
	 * a mailbox without messages checks nothing */
	run_box_job(s, s->box, search_job, search_end);
}

/* COPY and MOVE ------------------------------------------------------ */

static void
copy_job(struct imap_session *s, struct mbox *mb)
{
	char path[4096];
	size_t *idx, *seqs;
	bool move = strcmp(s->pc.name, "MOVE") == 0 ||
	    (s->j_uidcmd && ascii_strcaseeq(s->pc.args[0].s, "MOVE"));
	const char *dname = folders_canonical(imap_arg_text(cmd_arg(s, 1)));

	s->j_nobox = false;
	if (folders_path(s->root, dname, path, sizeof(path)) != 0) {
		s->jrc = -1;
		return;
	}
	size_t n = resolve_set(s, mb, s->j_set, s->j_uidcmd, &idx, &seqs);
	/* a private view of the target: its shared box syncs afterwards */
	struct mbox *dst = mbox_new(path);
	bool changed;
	if (mbox_sync(dst, s->root, false, &changed, &s->jerr) != 0) {
		s->j_nobox = true;
		s->jrc = -1;
		goto out;
	}
	uint32_t *uids = xcalloc(n + 1, sizeof(uint32_t));
	if (n > 0 && mbox_copy(mb, idx, n, dst, s->root, uids,
	    &s->jerr) != 0) {
		s->jrc = -1;
		free(uids);
		goto out;
	}
	if (n > 0) {
		uint32_t *src = xcalloc(n, sizeof(uint32_t));
		for (size_t i = 0; i < n; i++)
			src[i] = mb->m[idx[i]].uid;
		buf_printf(&s->jout, "* OK [COPYUID %u ", dst->uidvalidity);
		imap_seqset_write(&s->jout, src, n);
		buf_append_char(&s->jout, ' ');
		imap_seqset_write(&s->jout, uids, n);
		buf_append_str(&s->jout, "] copied\r\n");
		free(src);
	}
	free(uids);
	if (move && n > 0) {
		for (size_t i = 0; i < n; i++)
			(void)mbox_remove(mb, idx[i], &s->jerr);
		(void)mbox_sync(mb, s->root, true, &changed, &s->jerr);
		store_box_mark_changed(s->box);
	}
out:
	mbox_free(dst);
	free(idx);
	free(seqs);
}

static void
copy_end(struct imap_session *s)
{
	char path[4096];
	const char *dname = folders_canonical(imap_arg_text(cmd_arg(s, 1)));

	if (s->jrc != 0) {
		buf_reset(&s->jout);
		done(s, "NO", "%s%s", s->j_nobox ? "[TRYCREATE] " : "",
		    s->j_nobox ? "no such mailbox" : s->jerr.text);
		return;
	}
	if (folders_path(s->root, dname, path, sizeof(path)) == 0)
		store_notify_path(s->env.store, path);
	updates(s, true);
	done(s, "OK", "%s completed", s->pc.nargs && s->j_uidcmd ? "UID" :
	    s->pc.name);
}

static void
cmd_copy(struct imap_session *s)
{
	const struct imap_arg *set = cmd_arg(s, 0);
	const char *dname = cnargs(s) == 2 ? imap_arg_text(cmd_arg(s, 1)) : NULL;
	char path[4096];

	if (cnargs(s) != 2 || set->type != IMAP_ARG_ATOM ||
	    !valid_set(s, set->s) || dname == NULL) {
		done(s, "BAD", "COPY sequence-set mailbox");
		return;
	}
	if (folders_path(s->root, folders_canonical(dname), path,
	    sizeof(path)) != 0) {
		done(s, "NO", "[CANNOT] that mailbox name is not allowed");
		return;
	}
	s->j_set = set->s;
	run_box_job(s, s->box, copy_job, copy_end);
}

/* EXPUNGE, CLOSE, UNSELECT, CHECK ------------------------------------ */

static void
expunge_job(struct imap_session *s, struct mbox *mb)
{
	struct imap_seqset ss;
	bool have = false, changed;

	if (s->j_set) {
		uint32_t max = s->n ? s->uids[s->n - 1] : 0;
		have = imap_seqset_parse(s->j_set, max, &ss) == 0;
	}
	for (size_t i = 0; i < mb->n; i++)
		if ((mb->m[i].flags & MBOX_DELETED) && (!have ||
		    imap_seqset_has(&ss, mb->m[i].uid)))
			(void)mbox_remove(mb, i, &s->jerr);
	if (have)
		imap_seqset_clear(&ss);
	s->jrc = mbox_sync(mb, s->root, true, &changed, &s->jerr);
	if (changed)
		store_box_mark_changed(s->box);
}

static void
expunge_end(struct imap_session *s)
{
	if (strcmp(s->pc.name, "CLOSE") == 0) {
		deselect(s);
		done(s, "OK", "CLOSE completed");
		return;
	}
	updates(s, true);
	done(s, "OK", "EXPUNGE completed");
}

static void
cmd_expunge(struct imap_session *s)
{
	if (s->j_uidcmd) {
		const struct imap_arg *set = cmd_arg(s, 0);
		if (cnargs(s) != 1 || set->type != IMAP_ARG_ATOM ||
		    !valid_set(s, set->s)) {
			done(s, "BAD", "UID EXPUNGE uid-set");
			return;
		}
		s->j_set = set->s;
	} else
		s->j_set = NULL;
	if (s->readonly) {
		done(s, "NO", "[READ-ONLY] the mailbox is read-only");
		return;
	}
	run_box_job(s, s->box, expunge_job, expunge_end);
}

static void
cmd_close(struct imap_session *s)
{
	if (s->readonly) {
		deselect(s);
		done(s, "OK", "CLOSE completed");
		return;
	}
	s->j_set = NULL;
	run_box_job(s, s->box, expunge_job, expunge_end);
}

static void
cmd_unselect(struct imap_session *s)
{
	deselect(s);
	done(s, "OK", "UNSELECT completed");
}

/* IDLE --------------------------------------------------------------- */

static void
on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if (s->idling) {
		say(s, "* OK Still here");
		flush(s);
	}
}

static void
idle_start_end(struct imap_session *s)
{
	struct timeval tv = { IMAP_IDLE_KEEPALIVE, 0 };

	updates(s, true);
	say(s, "+ idling");
	s->idling = true;
	s->busy = true;           /* the command is open until DONE */
	event_add(s->keepalive, &tv);
}

static void
cmd_idle(struct imap_session *s)
{
	if (s->state == I_SELECTED)
		run_box_job(s, s->box, sync_job, idle_start_end);
	else
		idle_start_end(s);
}

static void
idle_stop(struct imap_session *s)
{
	s->idling = false;
	event_del(s->keepalive);
	done(s, "OK", "IDLE terminated");
}

/* UID ---------------------------------------------------------------- */

static void
cmd_uid(struct imap_session *s)
{
	const char *sub = arg_str(s, 0);

	s->j_uidcmd = true;
	s->j_arg = 1;
	if (sub && ascii_strcaseeq(sub, "FETCH"))
		cmd_fetch(s);
	else if (sub && ascii_strcaseeq(sub, "STORE"))
		cmd_store(s);
	else if (sub && ascii_strcaseeq(sub, "SEARCH"))
		cmd_search(s);
	else if (sub && (ascii_strcaseeq(sub, "COPY") ||
	    ascii_strcaseeq(sub, "MOVE")))
		cmd_copy(s);
	else if (sub && ascii_strcaseeq(sub, "EXPUNGE"))
		cmd_expunge(s);
	else
		done(s, "BAD", "UID FETCH, STORE, SEARCH, COPY, MOVE or EXPUNGE");
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
	{ "LIST", AUTHED, cmd_list, NULL },
	{ "LSUB", AUTHED, cmd_list, NULL },
	{ "STATUS", AUTHED, cmd_status, NULL },
	{ "SELECT", AUTHED, cmd_select, NULL },
	{ "EXAMINE", AUTHED, cmd_select, NULL },
	{ "CREATE", AUTHED, cmd_folder, NULL },
	{ "DELETE", AUTHED, cmd_folder, NULL },
	{ "RENAME", AUTHED, cmd_folder, NULL },
	{ "SUBSCRIBE", AUTHED, cmd_folder, NULL },
	{ "UNSUBSCRIBE", AUTHED, cmd_folder, NULL },
	{ "APPEND", AUTHED, cmd_append, "UIDPLUS" },
	{ "IDLE", AUTHED, cmd_idle, "IDLE" },
	{ "CHECK", ST(I_SELECTED), cmd_noop, NULL },
	{ "CLOSE", ST(I_SELECTED), cmd_close, NULL },
	{ "UNSELECT", ST(I_SELECTED), cmd_unselect, "UNSELECT" },
	{ "EXPUNGE", ST(I_SELECTED), cmd_expunge, NULL },
	{ "SEARCH", ST(I_SELECTED), cmd_search, NULL },
	{ "FETCH", ST(I_SELECTED), cmd_fetch, NULL },
	{ "STORE", ST(I_SELECTED), cmd_store, NULL },
	{ "COPY", ST(I_SELECTED), cmd_copy, NULL },
	{ "MOVE", ST(I_SELECTED), cmd_copy, "MOVE" },
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
			say(s, "* BAD %s", why);
		else
			done(s, "BAD", "%s", why);
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
			done(s, "BAD", "%s is not valid %s", c->name,
			    s->state == I_NOTAUTH ? "before login" :
			    s->state == I_SELECTED ? "now" :
			    "without a selected mailbox");
			return;
		}
		s->busy = true;   /* until done() */
		c->fn(s);
		return;
	}
	s->bad++;
	done(s, "BAD", "unknown command");
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
	struct bufferevent *b = tls_server_wrap(s->env.rt->tls, s->env.base,
	    s->bev);
	if (b == NULL) {
		s->closing = true;
		return;
	}
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
		session_free(s);
}

static void
flush(struct imap_session *s)
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
		session_free(s);
	}
}

static void
process(struct imap_session *s)
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
				say(s, "* BYE Line too long");
				s->closing = true;
			}
			break;
		}
		size_t len = (size_t)p.pos + 1;
		if (len > IMAP_LINE_MAX) {
			say(s, "* BYE Line too long");
			s->closing = true;
			break;
		}
		char *line = xmalloc(len + 1);
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		if (len < 2 || line[len - 2] != '\r') {
			free(line);
			buf_reset(&s->cmd);
			say(s, "* BAD Lines end in CRLF");
			if (++s->bad > IMAP_BAD_MAX) {
				say(s, "* BYE Too many bad commands");
				s->closing = true;
			}
			continue;
		}
		if (s->idling) {
			if (len == 6 && ascii_strncaseeq(line, "DONE", 4))
				idle_stop(s);
			else {
				say(s, "* BAD Expected DONE");
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
			say(s, "* BYE Command too large");
			s->closing = true;
			break;
		}
		buf_append(&s->cmd, line, len);
		uint64_t n;
		bool nonsync;
		bool lit = imap_line_literal(line, len - 2, &n, &nonsync);
		free(line);
		if (lit) {
			if (n > s->cfg->limits.max_message_size) {
				if (nonsync) {
					say(s, "* BYE Literal too large");
					s->closing = true;
					break;
				}
				/* the client waits for "+": it never comes */
				char tag[IMAP_TAG_MAX + 1];
				size_t tl = strcspn(s->cmd.data, " ");
				(void)snprintf(tag, sizeof(tag), "%.*s",
				    (int)(tl > IMAP_TAG_MAX ? IMAP_TAG_MAX : tl),
				    s->cmd.data);
				say(s, "%s NO [TOOBIG] Literal too large", tag);
				buf_reset(&s->cmd);
				continue;
			}
			if (!nonsync)
				say(s, "+ Ready for literal data");
			s->in_lit = n > 0;
			s->lit_left = n;
			continue;
		}
		dispatch(s);
		buf_reset(&s->cmd);
		if (s->bad > IMAP_BAD_MAX && !s->closing) {
			say(s, "* BYE Too many bad commands");
			s->closing = true;
		}
	}
	flush(s);
}

static void
session_on_read(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	if (s->tls_wrapped && !s->tls) {
		s->tls = true;
		tls_describe(s->bev, s->tls_desc, sizeof(s->tls_desc));
	}
	process(s);
}

static void
session_on_write(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	if (s->closing)
		flush(s);
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
		say(s, "* BYE Autologout; idle for too long");
		s->closing = true;
		bufferevent_enable(s->bev, EV_WRITE);
		flush(s);
		return;
	}
	s->dead = true;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	if (s->refs == 0)
		session_free(s);
}

static void
session_free(struct imap_session *s)
{
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
	deselect(s);
	store_account_close(s->acct);
	if (s->under_cb)
		evbuffer_remove_cb_entry(s->under_buf, s->under_cb);
	imap_cmd_clear(&s->pc);
	buf_clear(&s->cmd);
	buf_clear(&s->jout);
	buf_clear(&s->jqr);
	buf_clear(&s->l_tail);
	free(s->app_flags);
	list_free_status(s);
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
	say(s, "* OK [CAPABILITY %s] Tern IMAP ready", caps.data);
	buf_clear(&caps);
	return s;
}

void
imap_session_shutdown(struct imap_session *s)
{
	say(s, "* BYE Server shutting down");
	s->closing = true;
	s->shutdown = true;
	flush(s);
}
