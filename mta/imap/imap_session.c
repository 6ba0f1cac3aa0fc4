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
#include "imap/imap_parse.h"
#include "imap/imap_utf7.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "mail/mime.h"
#include "runtime.h"
#include "store/folders.h"
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
	buf_append_str(b, " LITERAL+ CHILDREN ID ENABLE SPECIAL-USE");
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

static void
write_flags(struct buf *b, const struct mbox *mb, const struct mbox_msg *m)
{
	bool sp = false;

	buf_append_char(b, '(');
#define F(bit, name) if (m->flags & (bit)) { buf_printf(b, "%s%s", sp ? " " : \
	"", name); sp = true; }
	F(MBOX_SEEN, "\\Seen")
	F(MBOX_ANSWERED, "\\Answered")
	F(MBOX_FLAGGED, "\\Flagged")
	F(MBOX_DELETED, "\\Deleted")
	F(MBOX_DRAFT, "\\Draft")
	F(MBOX_FORWARDED, "$Forwarded")
#undef F
	for (int i = 0; i < KEYWORDS_MAX; i++)
		if ((m->kw & (1u << i)) && mb->kw.names[i]) {
			buf_printf(b, "%s%s", sp ? " " : "", mb->kw.names[i]);
			sp = true;
		}
	if (m->recent)
		buf_printf(b, "%s\\Recent", sp ? " " : "");
	buf_append_char(b, ')');
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
		for (size_t k = s->seen_exp; k < mb->nexp; k++) {
			size_t seq = view_seq(s, mb->exp[k].uid);
			if (seq == 0)
				continue;
			buf_printf(&b, "* %zu EXPUNGE\r\n", seq);
			memmove(s->uids + seq - 1, s->uids + seq,
			    (s->n - seq) * sizeof(uint32_t));
			s->n--;
		}
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
		write_flags(&b, mb, m);
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
	char local[SASL_FIELD_MAX], lnorm[256], dnorm[256];
	const char *at = strrchr(user, '@');
	const char *domain = at ? at + 1 : s->cfg->domains[0];

	(void)str_copy(local, sizeof(local), user);
	if (at)
		local[at - user] = '\0';
	if (maildir_local_normalize(local, '\0', lnorm, sizeof(lnorm)) != 0 ||
	    maildir_domain_normalize(domain, dnorm, sizeof(dnorm)) != 0)
		return -1;
	return str_fmt(s->root, sizeof(s->root), "%s/%s/%s", s->cfg->mail_dir,
	    dnorm, lnorm);
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
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    IMAP_AUTH_TIMEOUT, 0 }, &(struct timeval){ IMAP_AUTH_TIMEOUT, 0 });
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
cmd_enable(struct imap_session *s)
{
	/* nothing this server knows needs enabling (no CONDSTORE yet) */
	say(s, "* ENABLED");
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

static void
list_work(struct imap_session *s)
{
	char **names = NULL, **subs = NULL;
	size_t n = 0, ns = 0;
	bool lsub = strcmp(s->pc.name, "LSUB") == 0;
	const char *ref = arg_str(s, 0), *pat = arg_str(s, 1);
	char *full = xasprintf("%s%s", ref ? ref : "", pat ? pat : "");

	(void)folders_list(s->root, &names, &n);
	(void)folders_subscriptions(s->root, &subs, &ns);
	for (size_t i = 0; i < n; i++) {
		const char *nm = names[i];
		bool m = match(full, nm) || (i == 0 && ascii_strcaseeq(full,
		    "INBOX"));
		if (!m)
			continue;
		bool sub = false;
		for (size_t k = 0; k < ns; k++)
			if (strcmp(subs[k], nm) == 0)
				sub = true;
		if (lsub && !sub)
			continue;
		bool children = false;
		size_t l = strlen(nm);
		for (size_t k = 1; k < n; k++)
			if (strncmp(names[k], nm, l) == 0 && names[k][l] == '/')
				children = true;
		const char *su = folders_special_use(nm);
		buf_printf(&s->jout, "* %s (%s%s%s%s) \"/\" ", lsub ? "LSUB" :
		    "LIST", children ? "\\HasChildren" : "\\HasNoChildren",
		    su ? " " : "", su ? su : "", sub && !lsub ?
		    " \\Subscribed" : "");
		imap_write_string(&s->jout, nm, strlen(nm), false);
		buf_append_str(&s->jout, "\r\n");
	}
	folders_list_free(names, n);
	folders_list_free(subs, ns);
	free(full);
}

static void
list_end(struct imap_session *s)
{
	done(s, "OK", "%s completed", s->pc.name);
}

static void
cmd_list(struct imap_session *s)
{
	const char *ref = arg_str(s, 0), *pat = arg_str(s, 1);

	if (ref == NULL || pat == NULL || s->pc.nargs != 2) {
		done(s, "BAD", "%s reference pattern", s->pc.name);
		return;
	}
	if (pat[0] == '\0') {
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
	} else if (strcmp(n, "DELETE") == 0)
		s->jrc = folders_delete(s->root, a, &s->jerr);
	else if (strcmp(n, "RENAME") == 0)
		s->jrc = folders_rename(s->root, a, folders_canonical(b),
		    &s->jerr);
	else
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
	else
		done(s, "OK", "%s completed", s->pc.name);
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

static void
select_job(struct imap_session *s, struct mbox *mb)
{
	bool changed;

	s->jrc = mbox_sync(mb, s->root, !s->readonly, &changed, &s->jerr);
	if (changed)
		store_box_mark_changed(s->box);
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
	s->state = I_SELECTED;
	done(s, "OK", "[%s] %s completed", s->readonly ? "READ-ONLY" :
	    "READ-WRITE", s->pc.name);
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

static void
status_job(struct imap_session *s, struct mbox *mb)
{
	bool changed;

	s->jrc = mbox_sync(mb, s->root, false, &changed, &s->jerr);
	if (s->jrc != 0)
		return;
	const struct imap_arg *items = &s->pc.args[1];
	buf_append_str(&s->jout, "* STATUS ");
	const char *name = folders_canonical(arg_str(s, 0));
	imap_write_string(&s->jout, name, strlen(name), false);
	buf_append_str(&s->jout, " (");
	for (size_t i = 0; i < items->nitems; i++) {
		const char *it = imap_arg_text(&items->items[i]);
		size_t unseen = 0, recent = 0;
		uint64_t size = 0;
		for (size_t k = 0; k < mb->n; k++) {
			if (!(mb->m[k].flags & MBOX_SEEN))
				unseen++;
			if (mb->m[k].recent)
				recent++;
			size += mb->m[k].vsize;
		}
		if (i)
			buf_append_char(&s->jout, ' ');
		if (it && ascii_strcaseeq(it, "MESSAGES"))
			buf_printf(&s->jout, "MESSAGES %zu", mb->n);
		else if (it && ascii_strcaseeq(it, "UIDNEXT"))
			buf_printf(&s->jout, "UIDNEXT %u", mb->uidnext);
		else if (it && ascii_strcaseeq(it, "UIDVALIDITY"))
			buf_printf(&s->jout, "UIDVALIDITY %u", mb->uidvalidity);
		else if (it && ascii_strcaseeq(it, "UNSEEN"))
			buf_printf(&s->jout, "UNSEEN %zu", unseen);
		else if (it && ascii_strcaseeq(it, "RECENT"))
			buf_printf(&s->jout, "RECENT %zu", recent);
		else {
			s->jrc = -2;
			return;
		}
	}
	buf_append_str(&s->jout, ")\r\n");
	(void)changed;
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

	if (s->pc.nargs != 2 || s->pc.args[1].type != IMAP_ARG_LIST) {
		done(s, "BAD", "STATUS mailbox (items)");
		return;
	}
	if ((name = arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
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

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* "1-Dec-2026 21:00:00 +0000" (RFC 3501 date-time); -1 if not one. */
static int64_t
parse_datetime(const char *s)
{
	int d, y, H, M, S, zh;
	char mon[4], sign;

	if (sscanf(s, " %d-%3s-%d %d:%d:%d %c%4d", &d, mon, &y, &H, &M, &S,
	    &sign, &zh) != 8 || (sign != '+' && sign != '-'))
		return -1;
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (ascii_strcaseeq(mon, months[i]))
			m = i;
	if (m < 0 || d < 1 || d > 31 || y < 1970 || H > 23 || M > 59 || S > 60)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m, .tm_mday = d,
		.tm_hour = H, .tm_min = M, .tm_sec = S };
	int64_t t = (int64_t)timegm(&tm);
	int off = (zh / 100) * 3600 + (zh % 100) * 60;
	return sign == '+' ? t - off : t + off;
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
append_job(struct imap_session *s, struct mbox *mb)
{
	struct append_args a;
	struct flagset f;
	struct buf lf;
	bool saved = false, changed;

	(void)append_args(s, &a);
	memset(&f, 0, sizeof(f));
	if (a.flags)
		(void)parse_flags(a.flags, &f);
	int64_t date = a.date ? parse_datetime(a.date->s) : 0;
	/* CRLF to LF: Maildir files have LF line ends */
	buf_init(&lf);
	buf_reserve(&lf, a.msg->len + 1);
	for (size_t i = 0; i < a.msg->len; i++)
		if (!(a.msg->s[i] == '\r' && i + 1 < a.msg->len &&
		    a.msg->s[i + 1] == '\n'))
			buf_append_char(&lf, a.msg->s[i]);
	s->jrc = mbox_sync(mb, s->root, false, &changed, &s->jerr);
	s->j_nobox = s->jrc != 0;
	uint32_t kw = 0;
	if (s->jrc == 0) {
		kw = kw_bits(mb, &f, true, &saved);
		if (saved)
			(void)mbox_save_keywords(mb, &s->jerr);
		s->jrc = mbox_append(mb, s->root, lf.data ? lf.data : "", lf.len,
		    f.flags, kw, date, &s->j_uid, &s->jerr);
		s->j_validity = mb->uidvalidity;
	}
	buf_clear(&lf);
	store_box_mark_changed(s->other ? s->other : s->box);
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
	if (a.date && parse_datetime(a.date->s) < 0) {
		done(s, "BAD", "bad date-time");
		return;
	}
	if (a.msg->len > s->cfg->limits.max_message_size) {
		done(s, "NO", "[TOOBIG] message larger than APPENDLIMIT");
		return;
	}
	s->other = s->box && strcmp(store_box_name(s->box), name) == 0 ?
	    s->box : store_box_open(s->acct, name, path);
	run_box_job(s, s->other, append_job, append_end);
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

enum fitem_kind { FI_UID, FI_FLAGS, FI_INTERNALDATE, FI_SIZE, FI_ENVELOPE,
	FI_BODYSTRUCTURE, FI_BODY_BASIC, FI_SECTION, FI_RFC822,
	FI_RFC822_HEADER, FI_RFC822_TEXT };

struct fitem {
	enum fitem_kind kind;
	char echo[300];          /* the item's name in the answer */
	char part[64];           /* "1.2", or "" */
	char spec[32];           /* "", HEADER, TEXT, MIME, HEADER.FIELDS[.NOT] */
	char **fields;           /* HEADER.FIELDS names */
	size_t nfields;
	bool peek;
	bool partial;
	uint64_t p_off, p_len;
};

struct fetch {
	struct fitem *it;
	size_t n;
	bool need_file, sets_seen;
};

static void
fetch_clear(struct fetch *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (size_t k = 0; k < f->it[i].nfields; k++)
			free(f->it[i].fields[k]);
		free(f->it[i].fields);
	}
	free(f->it);
	memset(f, 0, sizeof(*f));
}

/* BODY[...] / BODY.PEEK[...]<o.l>: the section and partial. */
static int
parse_section(const char *t, struct fitem *it)
{
	const char *lb = strchr(t, '['), *rb = strrchr(t, ']');

	if (lb == NULL || rb == NULL || rb < lb)
		return -1;
	it->kind = FI_SECTION;
	it->peek = ascii_strncaseeq(t, "BODY.PEEK[", 10);
	/* the section text: [part.]spec [(fields)] */
	char sec[256];
	size_t sl = (size_t)(rb - lb - 1);
	if (sl >= sizeof(sec))
		return -1;
	memcpy(sec, lb + 1, sl);
	sec[sl] = '\0';
	char *p = sec;
	size_t pl = 0;
	while (p[pl] && (isdigit((unsigned char)p[pl]) || p[pl] == '.')) {
		if (p[pl] == '.' && !isdigit((unsigned char)p[pl + 1]))
			break;
		pl++;
	}
	if (pl >= sizeof(it->part))
		return -1;
	memcpy(it->part, p, pl);
	it->part[pl] = '\0';
	p += pl;
	if (*p == '.')
		p++;
	char *sp = strchr(p, ' ');
	size_t specl = sp ? (size_t)(sp - p) : strlen(p);
	if (specl >= sizeof(it->spec))
		return -1;
	for (size_t i = 0; i < specl; i++)
		it->spec[i] = (char)toupper((unsigned char)p[i]);
	it->spec[specl] = '\0';
	if (it->spec[0] && strcmp(it->spec, "HEADER") != 0 &&
	    strcmp(it->spec, "TEXT") != 0 && strcmp(it->spec, "MIME") != 0 &&
	    strcmp(it->spec, "HEADER.FIELDS") != 0 &&
	    strcmp(it->spec, "HEADER.FIELDS.NOT") != 0)
		return -1;
	if (strcmp(it->spec, "MIME") == 0 && it->part[0] == '\0')
		return -1;
	if (strncmp(it->spec, "HEADER.FIELDS", 13) == 0) {
		if (sp == NULL || sp[1] != '(')
			return -1;
		char *q = sp + 2;
		char *end = strchr(q, ')');
		if (end == NULL)
			return -1;
		*end = '\0';
		for (char *tok = strtok(q, " "); tok; tok = strtok(NULL, " ")) {
			it->fields = xreallocarray(it->fields, it->nfields + 1,
			    sizeof(char *));
			it->fields[it->nfields++] = xstrdup(tok);
		}
	} else if (sp)
		return -1;
	/* the answer names the section as asked, without PEEK */
	(void)str_fmt(it->echo, sizeof(it->echo), "BODY[%.*s]", (int)(rb - lb -
	    1), lb + 1);
	if (rb[1] == '<') {
		unsigned long long o, l;
		if (sscanf(rb + 2, "%llu.%llu>", &o, &l) != 2 || l == 0)
			return -1;
		it->partial = true;
		it->p_off = o;
		it->p_len = l;
		size_t el = strlen(it->echo);
		(void)snprintf(it->echo + el, sizeof(it->echo) - el, "<%llu>",
		    o);
	} else if (rb[1] != '\0')
		return -1;
	return 0;
}

static int
parse_fetch_item(const char *t, struct fetch *f)
{
	struct fitem it;

	memset(&it, 0, sizeof(it));
	(void)str_copy(it.echo, sizeof(it.echo), t);
	for (char *p = it.echo; *p && *p != '['; p++)
		*p = (char)toupper((unsigned char)*p);
	if (ascii_strcaseeq(t, "UID"))
		it.kind = FI_UID;
	else if (ascii_strcaseeq(t, "FLAGS"))
		it.kind = FI_FLAGS;
	else if (ascii_strcaseeq(t, "INTERNALDATE"))
		it.kind = FI_INTERNALDATE;
	else if (ascii_strcaseeq(t, "RFC822.SIZE"))
		it.kind = FI_SIZE;
	else if (ascii_strcaseeq(t, "ENVELOPE"))
		it.kind = FI_ENVELOPE;
	else if (ascii_strcaseeq(t, "BODYSTRUCTURE"))
		it.kind = FI_BODYSTRUCTURE;
	else if (ascii_strcaseeq(t, "BODY"))
		it.kind = FI_BODY_BASIC;
	else if (ascii_strcaseeq(t, "RFC822"))
		it.kind = FI_RFC822;
	else if (ascii_strcaseeq(t, "RFC822.HEADER"))
		it.kind = FI_RFC822_HEADER;
	else if (ascii_strcaseeq(t, "RFC822.TEXT"))
		it.kind = FI_RFC822_TEXT;
	else if ((ascii_strncaseeq(t, "BODY[", 5) ||
	    ascii_strncaseeq(t, "BODY.PEEK[", 10)) && parse_section(t, &it) == 0)
		;
	else {
		for (size_t k = 0; k < it.nfields; k++)
			free(it.fields[k]);
		free(it.fields);
		return -1;
	}
	if (it.kind >= FI_ENVELOPE)
		f->need_file = true;
	if ((it.kind == FI_SECTION && !it.peek) || it.kind == FI_RFC822 ||
	    it.kind == FI_RFC822_TEXT)
		f->sets_seen = true;
	f->it = xreallocarray(f->it, f->n + 1, sizeof(*f->it));
	f->it[f->n++] = it;
	return 0;
}

static int
parse_fetch(const struct imap_arg *a, struct fetch *f)
{
	memset(f, 0, sizeof(*f));
	if (a->type == IMAP_ARG_ATOM) {
		const char *t = a->s;
		const char *macro[3][5] = {
			{ "ALL", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE" },
			{ "FAST", "FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL },
			{ "FULL", "FLAGS", "INTERNALDATE", "RFC822.SIZE",
			  "ENVELOPE" },
		};
		for (int m = 0; m < 3; m++)
			if (ascii_strcaseeq(t, macro[m][0])) {
				for (int k = 1; k < 5 && macro[m][k]; k++)
					(void)parse_fetch_item(macro[m][k], f);
				if (m == 2)
					(void)parse_fetch_item("BODY", f);
				return 0;
			}
		return parse_fetch_item(t, f);
	}
	if (a->type != IMAP_ARG_LIST || a->nitems == 0)
		return -1;
	for (size_t i = 0; i < a->nitems; i++)
		if (a->items[i].type != IMAP_ARG_ATOM ||
		    parse_fetch_item(a->items[i].s, f) != 0) {
			fetch_clear(f);
			return -1;
		}
	return 0;
}

/* A header section with only (or all but) the named fields. */
static void
header_subset(struct buf *out, const char *h, size_t hlen,
    char *const *names, size_t n, bool not)
{
	size_t pos = 0, start;
	struct message_field f;

	for (;;) {
		start = pos;
		if (!message_next_field(h, hlen, &pos, &f))
			break;
		bool hit = false;
		for (size_t i = 0; i < n; i++)
			if (strlen(names[i]) == f.name_len &&
			    ascii_strncaseeq(f.name, names[i], f.name_len))
				hit = true;
		if (hit != not)
			mime_append_crlf(out, h + start, pos - start);
	}
	buf_append_str(out, "\r\n");
}

static void
literal(struct buf *out, const struct buf *data, const struct fitem *it)
{
	size_t off = 0, len = data->len;

	if (it->partial) {
		off = it->p_off > len ? len : (size_t)it->p_off;
		len = len - off < it->p_len ? len - off : (size_t)it->p_len;
	}
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, data->data ? data->data + off : "", len);
}

/* One section of a message (LF text) as CRLF octets. */
static void
section(struct buf *out, const char *msg, const struct mime_part *root,
    const struct fitem *it)
{
	const struct mime_part *p = mime_find_part(root, it->part);
	struct buf d;

	buf_init(&d);
	if (p) {
		/* a part that is a message: HEADER/TEXT are its message's */
		const struct mime_part *m = p;
		if (it->part[0] && p->is_message && p->nchildren == 1 &&
		    strcmp(it->spec, "MIME") != 0 && it->spec[0])
			m = &p->children[0];
		if (it->spec[0] == '\0') {
			if (it->part[0] == '\0')
				mime_append_crlf(&d, msg, root->hdr_len +
				    root->body_len);
			else
				mime_append_crlf(&d, msg + p->body_off,
				    p->body_len);
		} else if (strcmp(it->spec, "HEADER") == 0 ||
		    strcmp(it->spec, "MIME") == 0)
			mime_append_crlf(&d, msg + m->hdr_off, m->hdr_len);
		else if (strcmp(it->spec, "TEXT") == 0)
			mime_append_crlf(&d, msg + m->body_off, m->body_len);
		else
			header_subset(&d, msg + m->hdr_off, m->hdr_len,
			    it->fields, it->nfields,
			    strcmp(it->spec, "HEADER.FIELDS.NOT") == 0);
	}
	literal(out, &d, it);
	buf_clear(&d);
}

static void
fetch_one(struct imap_session *s, struct mbox *mb, const struct fetch *f,
    size_t idx, size_t seq, bool uid_cmd)
{
	struct mbox_msg *m = &mb->m[idx];
	struct buf file;
	struct mime_part *root = NULL;
	bool sp = false, flags_sent = false;

	buf_init(&file);
	if (f->need_file || m->vsize == 0) {
		if (mbox_read(mb, idx, &file, SIZE_MAX, &s->jerr) != 0) {
			buf_clear(&file);
			return;   /* gone under us: the next sync tells */
		}
		m->vsize = mime_crlf_size(file.data ? file.data : "", file.len);
		if (f->need_file)
			root = mime_parse(file.data ? file.data : "", file.len);
	}
	if (f->sets_seen && !s->readonly && !(m->flags & MBOX_SEEN)) {
		if (mbox_set_flags(mb, idx, m->flags | MBOX_SEEN, m->kw,
		    &s->jerr) == 0) {
			store_box_mark_changed(s->box);
		}
	}
	struct buf *o = &s->jout;
	buf_printf(o, "* %zu FETCH (", seq);
	if (uid_cmd) {
		buf_printf(o, "UID %u", m->uid);
		sp = true;
	}
	const char *msg = file.data ? file.data : "";
	for (size_t i = 0; i < f->n; i++) {
		const struct fitem *it = &f->it[i];
		if ((it->kind == FI_UID && uid_cmd) ||
		    (it->kind == FI_FLAGS && flags_sent))
			continue;
		if (sp)
			buf_append_char(o, ' ');
		sp = true;
		switch (it->kind) {
		case FI_UID:
			buf_printf(o, "UID %u", m->uid);
			break;
		case FI_FLAGS:
			buf_append_str(o, "FLAGS ");
			write_flags(o, mb, m);
			flags_sent = true;
			break;
		case FI_INTERNALDATE: {
			struct tm tm;
			time_t t = (time_t)m->internaldate;
			gmtime_r(&t, &tm);
			buf_printf(o, "INTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d "
			    "+0000\"", tm.tm_mday, months[tm.tm_mon],
			    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
			break;
		}
		case FI_SIZE:
			buf_printf(o, "RFC822.SIZE %llu",
			    (unsigned long long)m->vsize);
			break;
		case FI_ENVELOPE:
			buf_append_str(o, "ENVELOPE ");
			mime_write_envelope(o, msg, root->hdr_len);
			break;
		case FI_BODYSTRUCTURE:
			buf_append_str(o, "BODYSTRUCTURE ");
			mime_write_bodystructure(o, msg, root, true);
			break;
		case FI_BODY_BASIC:
			buf_append_str(o, "BODY ");
			mime_write_bodystructure(o, msg, root, false);
			break;
		case FI_SECTION:
			buf_printf(o, "%s ", it->echo);
			section(o, msg, root, it);
			break;
		case FI_RFC822:
		case FI_RFC822_HEADER:
		case FI_RFC822_TEXT: {
			struct buf d;
			buf_init(&d);
			size_t off = it->kind == FI_RFC822_TEXT ? root->hdr_len : 0;
			size_t len = it->kind == FI_RFC822_HEADER ?
			    root->hdr_len : file.len - off;
			mime_append_crlf(&d, msg + off, len);
			buf_printf(o, "%s ", it->echo);
			literal(o, &d, it);
			buf_clear(&d);
			break;
		}
		}
	}
	/* \Seen set by this FETCH: the client hears it here (RFC 3501 6.4.5) */
	if (f->sets_seen && !flags_sent && !s->readonly) {
		buf_append_str(o, " FLAGS ");
		write_flags(o, mb, m);
	}
	buf_append_str(o, ")\r\n");
	mime_free(root);
	buf_clear(&file);
	s->fetched++;
}

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

static void
fetch_job(struct imap_session *s, struct mbox *mb)
{
	struct fetch f;
	size_t *idx, *seqs;

	(void)parse_fetch(cmd_arg(s, 1), &f);
	s->own_after = mb->modseq;   /* \Seen set here is in the answer */
	size_t n = resolve_set(s, mb, s->j_set, s->j_uidcmd, &idx, &seqs);
	for (size_t i = 0; i < n; i++)
		fetch_one(s, mb, &f, idx[i], seqs[i], s->j_uidcmd);
	free(idx);
	free(seqs);
	fetch_clear(&f);
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
	struct fetch f;
	const struct imap_arg *set = cmd_arg(s, 0), *items = cmd_arg(s, 1);

	if (cnargs(s) != 2 || set->type != IMAP_ARG_ATOM ||
	    !valid_set(s, set->s)) {
		done(s, "BAD", "FETCH sequence-set items");
		return;
	}
	if (parse_fetch(items, &f) != 0) {
		done(s, "BAD", "unknown FETCH item");
		return;
	}
	fetch_clear(&f);
	s->j_set = set->s;
	run_box_job(s, s->box, fetch_job, fetch_end);
}

/* STORE -------------------------------------------------------------- */

static void
store_job(struct imap_session *s, struct mbox *mb)
{
	struct flagset fs;
	size_t *idx, *seqs;
	const char *op = cmd_arg(s, 1)->s;
	bool silent = strstr(op, ".SILENT") || strstr(op, ".silent");
	int mode = op[0] == '+' ? 1 : op[0] == '-' ? -1 : 0;
	bool saved = false;

	(void)parse_flags(cmd_arg(s, 2), &fs);
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
		if (mbox_set_flags(mb, idx[i], nf, nk, &s->jerr) != 0) {
			s->jrc = -1;
			continue;
		}
		store_box_mark_changed(s->box);
		if (!silent) {
			buf_printf(&s->jout, "* %zu FETCH (", seqs[i]);
			if (s->j_uidcmd)
				buf_printf(&s->jout, "UID %u ", m->uid);
			buf_append_str(&s->jout, "FLAGS ");
			write_flags(&s->jout, mb, m);
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
	else
		done(s, "OK", "%sSTORE completed", s->j_uidcmd ? "UID " : "");
}

static void
cmd_store(struct imap_session *s)
{
	const struct imap_arg *set = cmd_arg(s, 0), *op = cmd_arg(s, 1),
	    *fl = cmd_arg(s, 2);
	struct flagset fs;

	if (cnargs(s) != 3 || set->type != IMAP_ARG_ATOM ||
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

struct sctx {
	struct imap_session *s;
	struct mbox *mb;
	size_t idx, seq;
	struct buf file;
	bool loaded, failed;
};

static bool
load(struct sctx *c)
{
	if (!c->loaded) {
		c->loaded = true;
		if (mbox_read(c->mb, c->idx, &c->file, SIZE_MAX,
		    &c->s->jerr) != 0)
			c->failed = true;
	}
	return !c->failed;
}

static bool
contains(const char *hay, size_t n, const char *needle)
{
	size_t nl = strlen(needle);

	if (nl == 0)
		return true;
	for (size_t i = 0; i + nl <= n; i++)
		if (ascii_strncaseeq(hay + i, needle, nl))
			return true;
	return false;
}

static bool
header_has(struct sctx *c, const char *name, const char *needle)
{
	struct message_field f;
	size_t pos = 0, nlen = strlen(name);

	if (!load(c))
		return false;
	const char *m = c->file.data ? c->file.data : "";
	size_t hl = message_header_len(m, c->file.len);
	while (message_next_field(m, hl, &pos, &f))
		if (f.name_len == nlen && ascii_strncaseeq(f.name, name, nlen) &&
		    contains(f.value, f.value_len, needle))
			return true;
	return false;
}

/* "1-Dec-2026" */
static int64_t
parse_date(const char *s)
{
	int d, y;
	char mon[4];

	if (sscanf(s, "%d-%3s-%d", &d, mon, &y) != 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (ascii_strcaseeq(mon, months[i])) {
			struct tm tm = { .tm_year = y - 1900, .tm_mon = i,
				.tm_mday = d };
			return (int64_t)timegm(&tm);
		}
	return -1;
}

/* The Date: field's day, or -1. */
static int64_t
sent_day(struct sctx *c)
{
	struct message_field f;
	char v[128], mon[4];
	int d, y;

	if (!load(c))
		return -1;
	const char *m = c->file.data ? c->file.data : "";
	if (!message_find_field(m, message_header_len(m, c->file.len), "Date",
	    &f) || f.value_len >= sizeof(v))
		return -1;
	memcpy(v, f.value, f.value_len);
	v[f.value_len] = '\0';
	const char *p = strchr(v, ',') ? strchr(v, ',') + 1 : v;
	if (sscanf(p, "%d %3s %d", &d, mon, &y) != 3)
		return -1;
	char buf[32];
	(void)snprintf(buf, sizeof(buf), "%d-%s-%d", d, mon, y);
	return parse_date(buf);
}

/* Evaluates keys args[*i..]; advances *i past one key. -1: bad key. */
static int
eval(struct sctx *c, const struct imap_arg *a, size_t n, size_t *i, int depth)
{
	const struct mbox_msg *m = &c->mb->m[c->idx];

	if (*i >= n || depth > 50)
		return -1;
	const struct imap_arg *k = &a[(*i)++];
	if (k->type == IMAP_ARG_LIST) {
		size_t j = 0;
		int all = 1;
		if (k->nitems == 0)
			return -1;
		while (j < k->nitems) {
			int r = eval(c, k->items, k->nitems, &j, depth + 1);
			if (r < 0)
				return -1;
			all &= r;
		}
		return all;
	}
	const char *t = imap_arg_text(k);
	if (t == NULL)
		return -1;
	const char *v = *i < n ? imap_arg_text(&a[*i]) : NULL;
#define FLAG(name, bit, want) if (ascii_strcaseeq(t, name)) \
	return ((m->flags & (bit)) != 0) == (want);
	FLAG("SEEN", MBOX_SEEN, true) FLAG("UNSEEN", MBOX_SEEN, false)
	FLAG("ANSWERED", MBOX_ANSWERED, true)
	FLAG("UNANSWERED", MBOX_ANSWERED, false)
	FLAG("FLAGGED", MBOX_FLAGGED, true) FLAG("UNFLAGGED", MBOX_FLAGGED, false)
	FLAG("DELETED", MBOX_DELETED, true) FLAG("UNDELETED", MBOX_DELETED, false)
	FLAG("DRAFT", MBOX_DRAFT, true) FLAG("UNDRAFT", MBOX_DRAFT, false)
#undef FLAG
	if (ascii_strcaseeq(t, "ALL"))
		return 1;
	if (ascii_strcaseeq(t, "RECENT"))
		return m->recent;
	if (ascii_strcaseeq(t, "OLD"))
		return !m->recent;
	if (ascii_strcaseeq(t, "NEW"))
		return m->recent && !(m->flags & MBOX_SEEN);
	if (ascii_strcaseeq(t, "NOT")) {
		int r = eval(c, a, n, i, depth + 1);
		return r < 0 ? -1 : !r;
	}
	if (ascii_strcaseeq(t, "OR")) {
		int x = eval(c, a, n, i, depth + 1);
		int y = x < 0 ? -1 : eval(c, a, n, i, depth + 1);
		return x < 0 || y < 0 ? -1 : (x || y);
	}
	/* keys with one argument */
	if (v == NULL) {
		struct imap_seqset ss;
		/* a bare sequence set */
		uint32_t max = (uint32_t)c->s->n;
		if (imap_seqset_parse(t, max, &ss) != 0)
			return -1;
		int r = imap_seqset_has(&ss, (uint32_t)c->seq);
		imap_seqset_clear(&ss);
		return r;
	}
	static const char *const one[] = { "UID", "KEYWORD", "UNKEYWORD",
		"LARGER", "SMALLER", "BEFORE", "ON", "SINCE", "SENTBEFORE",
		"SENTON", "SENTSINCE", "FROM", "TO", "CC", "BCC", "SUBJECT",
		"BODY", "TEXT", "HEADER", NULL };
	bool known = false;
	for (int q = 0; one[q]; q++)
		if (ascii_strcaseeq(t, one[q]))
			known = true;
	if (!known) {
		struct imap_seqset ss;
		if (imap_seqset_parse(t, (uint32_t)c->s->n, &ss) != 0)
			return -1;
		int r = imap_seqset_has(&ss, (uint32_t)c->seq);
		imap_seqset_clear(&ss);
		return r;
	}
	(*i)++;
	if (ascii_strcaseeq(t, "UID")) {
		struct imap_seqset ss;
		uint32_t max = c->s->n ? c->s->uids[c->s->n - 1] : 0;
		if (imap_seqset_parse(v, max, &ss) != 0)
			return -1;
		int r = imap_seqset_has(&ss, m->uid);
		imap_seqset_clear(&ss);
		return r;
	}
	if (ascii_strcaseeq(t, "KEYWORD") || ascii_strcaseeq(t, "UNKEYWORD")) {
		bool want = ascii_strcaseeq(t, "KEYWORD");
		bool has;
		if (ascii_strcaseeq(v, "$Forwarded"))
			has = m->flags & MBOX_FORWARDED;
		else {
			int kk = keywords_find(&c->mb->kw, v);
			has = kk >= 0 && (m->kw & (1u << kk));
		}
		return has == want;
	}
	if (ascii_strcaseeq(t, "LARGER") || ascii_strcaseeq(t, "SMALLER")) {
		uint64_t x;
		if (parse_u64(v, strlen(v), &x) != 0)
			return -1;
		if (m->vsize == 0 && load(c))
			((struct mbox_msg *)m)->vsize = mime_crlf_size(
			    c->file.data ? c->file.data : "", c->file.len);
		return ascii_strcaseeq(t, "LARGER") ? m->vsize > x : m->vsize < x;
	}
	if (ascii_strcaseeq(t, "BEFORE") || ascii_strcaseeq(t, "ON") ||
	    ascii_strcaseeq(t, "SINCE") || ascii_strcaseeq(t, "SENTBEFORE") ||
	    ascii_strcaseeq(t, "SENTON") || ascii_strcaseeq(t, "SENTSINCE")) {
		int64_t day = parse_date(v);
		if (day < 0)
			return -1;
		bool sent = (t[0] == 'S' || t[0] == 's') && (t[1] == 'E' ||
		    t[1] == 'e') && (t[2] == 'N' || t[2] == 'n');
		int64_t d = sent ? sent_day(c) : m->internaldate -
		    (m->internaldate % 86400);
		if (d < 0)
			return 0;
		const char *w = sent ? t + 4 : t;
		if (ascii_strcaseeq(w, "BEFORE"))
			return d < day;
		if (ascii_strcaseeq(w, "ON"))
			return d >= day && d < day + 86400;
		return d >= day;
	}
	if (ascii_strcaseeq(t, "HEADER")) {
		const char *needle = *i < n ? imap_arg_text(&a[*i]) : NULL;
		if (needle == NULL)
			return -1;
		(*i)++;
		return header_has(c, v, needle);
	}
	if (ascii_strcaseeq(t, "BODY") || ascii_strcaseeq(t, "TEXT")) {
		if (!load(c))
			return 0;
		const char *msg = c->file.data ? c->file.data : "";
		size_t hl = ascii_strcaseeq(t, "BODY") ?
		    message_header_len(msg, c->file.len) : 0;
		return contains(msg + hl, c->file.len - hl, v);
	}
	/* FROM TO CC BCC SUBJECT */
	char field[16];
	(void)str_copy(field, sizeof(field), t);
	return header_has(c, field, v);
}

static void
search_job(struct imap_session *s, struct mbox *mb)
{
	struct sctx c;
	size_t start = 0;
	const struct imap_arg *a = cmd_arg(s, 0);
	size_t n = cnargs(s);

	/* CHARSET x: only ASCII and UTF-8 are matched (bytes) */
	if (n >= 2 && imap_arg_text(a) && ascii_strcaseeq(a->s, "CHARSET"))
		start = 2;
	buf_append_str(&s->jout, "* SEARCH");
	for (size_t q = 0; q < s->n; q++) {
		ssize_t k = mbox_find_uid(mb, s->uids[q]);
		if (k < 0)
			continue;
		memset(&c, 0, sizeof(c));
		c.s = s;
		c.mb = mb;
		c.idx = (size_t)k;
		c.seq = q + 1;
		buf_init(&c.file);
		size_t i = start;
		int all = 1;
		while (i < n) {
			int r = eval(&c, a, n, &i, 0);
			if (r < 0) {
				s->jrc = -2;
				break;
			}
			all &= r;
		}
		buf_clear(&c.file);
		if (s->jrc == -2)
			return;
		if (all)
			buf_printf(&s->jout, " %u", s->j_uidcmd ? s->uids[q] :
			    (uint32_t)(q + 1));
	}
	buf_append_str(&s->jout, "\r\n");
}

static void
search_end(struct imap_session *s)
{
	if (s->jrc == -2) {
		buf_reset(&s->jout);
		done(s, "BAD", "bad SEARCH key");
		return;
	}
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
	if (s->starttls_now) {
		session_starttls(s);
		if (!s->closing) {
			bufferevent_setcb(s->bev, session_on_read,
			    session_on_write, session_on_event, s);
			bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		}
	}
	if (s->closing && !s->dead) {
		/* input is ignored now; EOF still ends the session */
		struct bufferevent *u = bufferevent_get_underlying(s->bev);
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) != 0 ||
		    s->refs > 0 || s->auth)
			return;     /* on_write comes back */
		if (u && evbuffer_get_length(bufferevent_get_output(u)) != 0) {
			/* the TLS layer's bytes are still going out */
			if (s->under_cb == NULL)
				s->under_cb = evbuffer_add_cb(
				    bufferevent_get_output(u), under_drained, s);
			return;
		}
		session_free(s);
	}
}

static void
process(struct imap_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (!s->closing && !s->starttls_now && !s->dead) {
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
	if (s->under_cb) {
		struct bufferevent *u = bufferevent_get_underlying(s->bev);
		if (u)
			evbuffer_remove_cb_entry(bufferevent_get_output(u),
			    s->under_cb);
	}
	imap_cmd_clear(&s->pc);
	buf_clear(&s->cmd);
	buf_clear(&s->jout);
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
	bufferevent_set_timeouts(s->bev, &(struct timeval){
	    IMAP_PREAUTH_TIMEOUT, 0 }, &(struct timeval){ IMAP_PREAUTH_TIMEOUT,
	    0 });
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
