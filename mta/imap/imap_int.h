/* SPDX-License-Identifier: ISC */
/*
 * imap_int.h - layer 3: what the three files of the IMAP session share
 * (imap_session.c: the connection, framing, login, the command table;
 * imap_mailboxes.c: LIST, folders, SELECT/EXAMINE, STATUS;
 * imap_messages.c: APPEND, FETCH, STORE, SEARCH, COPY/MOVE, EXPUNGE).
 * Not for anything outside mta/imap/.
 */
#ifndef TERN_IMAP_INT_H
#define TERN_IMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>

#include "base/buf.h"
#include "base/sasl.h"
#include "base/util.h"
#include "imap/imap_parse.h"
#include "imap/imap_session.h"
#include "store/dovecot.h"
#include "store/store.h"

struct mbox;
struct list_status;
struct auth_check;

#define IMAP_LINE_MAX (64 * 1024)       /* a command line (issue 11) */
#define IMAP_BAD_MAX 20                 /* malformed commands, then BYE */
#define IMAP_PREAUTH_TIMEOUT 60
#define IMAP_AUTH_TIMEOUT (31 * 60)     /* RFC 9051 5.4: >= 30 minutes */
#define IMAP_IDLE_KEEPALIVE 120
#define OUTPUT_HIGH (1024 * 1024)     /* a FETCH job's answer, at most */
#define OUTPUT_LOW (256 * 1024)       /* the next part goes below this */
#define UNDER_HIGH (64 * 1024)        /* what a TLS or deflate layer
                                       * hands the one below at once */

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
	/* ENABLE IMAP4rev2 (RFC 9051) or UTF8=ACCEPT (RFC 6855) */
	bool rev2;                   /* no \Recent, ESEARCH for SEARCH */
	bool utf8;                   /* mailbox names and strings in UTF-8 */
	bool utf8_enabled;           /* UTF8=ACCEPT itself was enabled */
	uint64_t j_since;            /* FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE */
	bool j_has_since;
	bool j_vanished;             /* UID FETCH ... VANISHED */
	size_t j_last_seq;           /* FETCH in parts: the last one done */
	bool j_more;                 /* another part follows */
	bool fetch_wait;             /* for the client to read the last one */
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
	char j_mboxid[40];           /* CREATE: the new folder's MAILBOXID */
	bool userip;                 /* counted in the user+address limit */
	/* SEARCHRES (RFC 5182): what SEARCH RETURN (SAVE) found, as "$" */
	uint32_t *saved;             /* UIDs, ascending */
	size_t nsaved;
	bool j_save;                 /* this SEARCH saves */
	uint32_t *j_saved;           /* its result, moved into saved */
	size_t j_nsaved;
	struct store_append *apps;   /* the APPEND in flight (MULTIAPPEND) */
	struct flagset *app_flags;
	size_t napps, app_pending;
};

/* FLAGS arguments: system flags and keyword names */
struct flagset {
	uint8_t flags;
	const char *kw[KEYWORDS_MAX];
	size_t nkw;
};

typedef void (*job_fn)(struct imap_session *s, struct mbox *mb);
typedef void (*job_end)(struct imap_session *s);

/* output (imap_session.c) */
void __attribute__((format(printf, 2, 3))) imap_say(struct imap_session *s,
    const char *fmt, ...);
/* the tagged end of the running command; the session reads on */
void __attribute__((format(printf, 3, 4))) imap_done(struct imap_session *s,
    const char *status, const char *fmt, ...);
void imap_flush(struct imap_session *s);
void imap_process(struct imap_session *s);
void imap_session_free(struct imap_session *s);

/* the view of the selected folder (imap_session.c) */
void imap_view_add(struct imap_session *s, uint32_t uid);
/* seq (1-based) of uid in the view, or 0 */
size_t imap_view_seq(const struct imap_session *s, uint32_t uid);
void imap_updates(struct imap_session *s, bool expunges);
void imap_on_box_changed(void *arg);
void imap_deselect(struct imap_session *s);
int imap_cmp_u32(const void *a, const void *b);

/* jobs on the I/O pool: work there, then end on the loop */
void imap_run_box_job(struct imap_session *s, struct store_box *b,
    job_fn work, job_end end);
void imap_run_acct_job(struct imap_session *s,
    void (*work)(struct imap_session *s), job_end end);

/* IMAP_FETCH_* (imap_fetch.h) for this session and command */
unsigned imap_fetch_opts(const struct imap_session *s);

/* arguments */
const char *imap_arg_str(struct imap_session *s, size_t i);
const char *imap_arg_mailbox(struct imap_session *s, size_t i, char *path,
    size_t pathsz);
/*
 * Argument i as a mailbox name the way folders name it (modified UTF-7):
 * a UTF-8 session's name is converted in place, once. NULL (nothing
 * sent) if it is not a string, or not UTF-8 in a UTF-8 session.
 */
const char *imap_arg_name(struct imap_session *s, size_t i);
/* A folder's name as this session sees it (UTF-8 or modified UTF-7). */
void imap_write_mailbox(struct imap_session *s, struct buf *out,
    const char *name);
bool imap_valid_set(struct imap_session *s, const char *set);

/* imap_mailboxes.c */
void imap_cmd_list(struct imap_session *s);
void imap_cmd_folder(struct imap_session *s);
void imap_cmd_select(struct imap_session *s);
void imap_cmd_status(struct imap_session *s);
void imap_list_free_status(struct imap_session *s);
void imap_cmd_quota(struct imap_session *s);

/* imap_messages.c */
/* The index's cache for messages idx[0..n) of mb (on the I/O pool). */
void imap_cache_fill(struct imap_session *s, struct mbox *mb,
    const size_t *idx, size_t n);
void imap_cmd_append(struct imap_session *s);
void imap_cmd_fetch(struct imap_session *s);
/* The next part of a FETCH, once the client read the last (on_write). */
void imap_fetch_next(struct imap_session *s);
void imap_cmd_store(struct imap_session *s);
void imap_cmd_search(struct imap_session *s);
void imap_cmd_sort(struct imap_session *s);
void imap_cmd_thread(struct imap_session *s);
void imap_cmd_copy(struct imap_session *s);
void imap_cmd_expunge(struct imap_session *s);
void imap_cmd_close(struct imap_session *s);
void imap_cmd_unselect(struct imap_session *s);
/*
 * "* VANISHED (EARLIER) uids" into out: the UIDs within (NULL: all below
 * UIDNEXT) expunged after modseq; when the index does not reach back so
 * far, every such UID not in the folder now (RFC 7162 3.2.5.1).
 */
void imap_vanished_earlier(struct imap_session *s, struct mbox *mb,
    uint64_t modseq, const struct imap_seqset *within, struct buf *out);

#endif
