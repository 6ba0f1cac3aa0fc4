/* SPDX-License-Identifier: ISC */
/*
 * imap_messages.c - layer 3, part of the IMAP session (imap_int.h): the
 * commands about messages. APPEND (batched by the store), FETCH with
 * CHANGEDSINCE and VANISHED, STORE with UNCHANGEDSINCE, SEARCH with
 * ESEARCH (RFC 4731) and MODSEQ, COPY and MOVE (RFC 6851) with COPYUID,
 * EXPUNGE, UID EXPUNGE, CLOSE and UNSELECT. Each runs as one job of the
 * selected folder's box on the I/O pool, writing its untagged answers
 * into the session's job buffer.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "base/log.h"
#include "imap/imap_fetch.h"
#include "imap/imap_search.h"
#include "imap/imap_sort.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/quota.h"
/* APPEND ------------------------------------------------------------- */

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

/*
 * The messages of an APPEND (RFC 3502 MULTIAPPEND: one or more), each
 * [(flags)] [date-time] and a literal, or UTF8 (literal8) (RFC 6855 4).
 */
struct append_msg {
	const struct imap_arg *flags, *date, *msg;
};

static int
append_args(struct imap_session *s, struct append_msg **out, size_t *nout,
    const char **why)
{
	size_t i = 1, n = 0;
	struct append_msg *v = NULL;
	const struct imap_arg *a = s->pc.args;

	*why = "APPEND mailbox [(flags)] [date-time] message ...";
	while (i < s->pc.nargs) {
		struct append_msg m = { NULL, NULL, NULL };
		size_t g = i;
		if (a[i].type == IMAP_ARG_LIST)
			m.flags = &a[i++];
		if (i + 1 < s->pc.nargs && a[i].type == IMAP_ARG_STRING &&
		    !a[i].literal)
			m.date = &a[i++];
		if (i + 1 < s->pc.nargs && a[i].type == IMAP_ARG_ATOM &&
		    ascii_strcaseeq(a[i].s, "UTF8")) {
			if (!s->utf8) {
				*why = "UTF8 APPEND needs ENABLE UTF8=ACCEPT";
				i = g;
				break;
			}
			if (a[i + 1].type != IMAP_ARG_LIST ||
			    a[i + 1].nitems != 1 ||
			    a[i + 1].items[0].type != IMAP_ARG_STRING ||
			    !a[i + 1].items[0].literal8) {
				i = g;
				break;
			}
			m.msg = &a[i + 1].items[0];
			i += 2;
		} else if (i < s->pc.nargs && a[i].type == IMAP_ARG_STRING &&
		    (a[i].literal || i + 1 == s->pc.nargs))
			m.msg = &a[i++];
		else {
			i = g;     /* flags or a date with no message after */
			break;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = m;
	}
	if (i != s->pc.nargs || n == 0) {
		free(v);
		return -1;
	}
	*out = v;
	*nout = n;
	return 0;
}

static void
append_end(struct imap_session *s)
{
	if (s->other != s->box)
		store_box_close(s->other);
	s->other = NULL;
	/* all or nothing (RFC 3502): the first failure answers */
	for (size_t k = 0; k < s->napps; k++) {
		const struct store_append *a = &s->apps[k];
		if (a->rc == 0)
			continue;
		imap_done(s, "NO", "[%s] %s", a->nobox ? "TRYCREATE" :
		    a->err.code == 452 ? "OVERQUOTA" : "SERVERBUG",
		    a->nobox ? "no such mailbox" : a->err.text);
		return;
	}
	if (s->state == I_SELECTED)
		imap_updates(s, false);
	uint32_t *uids = xcalloc(s->napps, sizeof(uint32_t));
	for (size_t k = 0; k < s->napps; k++)
		uids[k] = s->apps[k].uid;
	qsort(uids, s->napps, sizeof(uint32_t), imap_cmp_u32);
	struct buf set;
	buf_init(&set);
	imap_seqset_write(&set, uids, s->napps);
	buf_append_char(&set, '\0');
	imap_done(s, "OK", "[APPENDUID %u %s] APPEND completed",
	    s->apps[0].uidvalidity, set.data);
	buf_clear(&set);
	free(uids);
}

static void
append_finished(void *arg)
{
	struct imap_session *s = arg;

	s->refs--;
	if (s->dead) {
		if (s->refs == 0)
			imap_session_free(s);
		return;
	}
	if (--s->app_pending > 0)
		return;
	append_end(s);
	imap_flush(s);
	if (!s->busy)
		imap_process(s);
}

void
imap_cmd_append(struct imap_session *s)
{
	char path[4096];
	const char *name, *why;
	struct append_msg *v;
	size_t n;
	struct flagset f;

	if ((name = imap_arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
	if (append_args(s, &v, &n, &why) != 0) {
		imap_done(s, "BAD", "%s", why);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		if (v[k].flags && parse_flags(v[k].flags, &f) != 0) {
			imap_done(s, "BAD", "bad flag");
			free(v);
			return;
		}
		if (v[k].date && imap_parse_datetime(v[k].date->s) < 0) {
			imap_done(s, "BAD", "bad date-time");
			free(v);
			return;
		}
		if (v[k].msg->len > s->cfg->limits.max_message_size) {
			imap_done(s, "NO", "[TOOBIG] message larger than "
			    "APPENDLIMIT");
			free(v);
			return;
		}
	}
	s->other = s->box && strcmp(store_box_name(s->box), name) == 0 ?
	    s->box : store_box_open(s->acct, name, path);
	/* staged beside other clients' work, committed in a batch */
	free(s->app_flags);
	free(s->apps);
	s->app_flags = xcalloc(n, sizeof(*s->app_flags));
	s->apps = xcalloc(n, sizeof(*s->apps));
	s->napps = s->app_pending = n;
	for (size_t k = 0; k < n; k++) {
		struct store_append *a = &s->apps[k];
		if (v[k].flags)
			(void)parse_flags(v[k].flags, &s->app_flags[k]);
		a->data = v[k].msg->s;
		a->len = v[k].msg->len;
		a->crlf = true;
		a->flags = s->app_flags[k].flags;
		a->kw = s->app_flags[k].kw;
		a->nkw = s->app_flags[k].nkw;
		a->internaldate = v[k].date ? imap_parse_datetime(v[k].date->s) :
		    0;
		a->quota_bytes = s->cfg->limits.quota_storage;
		a->quota_messages = s->cfg->limits.quota_messages;
		a->done = append_finished;
		a->arg = s;
	}
	free(v);
	s->refs += n;
	s->busy = true;
	memset(&s->jerr, 0, sizeof(s->jerr));
	store_box_append_group(s->other, s->apps, n);
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
	if (strcmp(set, "$") == 0) {
		/* the saved result, in UID and sequence commands alike */
		for (size_t i = 0; i < s->nsaved && n < s->n; i++) {
			size_t seq = imap_view_seq(s, s->saved[i]);
			ssize_t k = seq ? mbox_find_uid(mb, s->saved[i]) : -1;
			if (k < 0)
				continue;
			(*idx)[n] = (size_t)k;
			(*seqs)[n] = seq;
			n++;
		}
		return n;
	}
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

bool
imap_valid_set(struct imap_session *s, const char *set)
{
	struct imap_seqset ss;

	if (set && strcmp(set, "$") == 0)
		return true;    /* SEARCHRES */
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

void
imap_vanished_earlier(struct imap_session *s, struct mbox *mb,
    uint64_t modseq, const struct imap_seqset *within, struct buf *out)
{
	uint32_t *gone = NULL;
	size_t ngone = 0, w = 0;
	bool complete;
	struct tern_err err;
	uint32_t top = mb->uidnext ? mb->uidnext - 1 : 0;

	memset(&err, 0, sizeof(err));
	if (tindex_expunged_since(store_account_index(s->acct),
	    store_rel(s->acct, mb->path), mb->uidvalidity, modseq, &gone,
	    &ngone, &complete, &err) != 0)
		complete = false;
	/* expunges the index has not been told of yet are in mb->exp */
	for (size_t k = 0; complete && k < mb->nexp; k++)
		if (mb->exp[k].modseq > modseq) {
			gone = xreallocarray(gone, ngone + 1, sizeof(uint32_t));
			gone[ngone++] = mb->exp[k].uid;
		}
	if (!complete) {
		/*
		 * The index does not reach back to modseq (it was rebuilt):
		 * every UID asked about that is not here now may have gone,
		 * which RFC 7162 3.2.5.1 allows the server to say.
		 */
		free(gone);
		gone = NULL;
		ngone = 0;
		struct imap_seqset all = { NULL, 0 };
		const struct imap_seqset *in = within;
		if (in == NULL && imap_seqset_parse("1:*", top, &all) == 0)
			in = &all;
		for (size_t r = 0; in && r < in->n; r++)
			for (uint32_t u = in->r[r].lo; u <= in->r[r].hi &&
			    u <= top && ngone < 1000000; u++) {
				if (mbox_find_uid(mb, u) < 0) {
					gone = xreallocarray(gone, ngone + 1,
					    sizeof(uint32_t));
					gone[ngone++] = u;
				}
				if (u == UINT32_MAX)
					break;
			}
		imap_seqset_clear(&all);
	}
	if (ngone > 1)
		qsort(gone, ngone, sizeof(uint32_t), imap_cmp_u32);
	for (size_t k = 0; k < ngone; k++)
		if ((within == NULL || imap_seqset_has(within, gone[k])) &&
		    mbox_find_uid(mb, gone[k]) < 0 &&
		    (w == 0 || gone[w - 1] != gone[k]))
			gone[w++] = gone[k];
	if (w) {
		buf_append_str(out, "* VANISHED (EARLIER) ");
		imap_seqset_write(out, gone, w);
		buf_append_str(out, "\r\n");
	}
	free(gone);
}

/* UID FETCH ... (CHANGEDSINCE m VANISHED): UIDs of the set gone since m */
static void
fetch_vanished(struct imap_session *s, struct mbox *mb)
{
	struct imap_seqset ss;

	if (imap_seqset_parse(s->j_set, mb->uidnext ? mb->uidnext - 1 : 0,
	    &ss) != 0)
		return;
	imap_vanished_earlier(s, mb, s->j_since, &ss, &s->jout);
	imap_seqset_clear(&ss);
}

static void
fetch_job(struct imap_session *s, struct mbox *mb)
{
	struct imap_fetch *f = imap_fetch_parse(cmd_arg(s, 1));
	size_t *idx, *seqs;
	bool changed = false;

	bool first = s->j_last_seq == 0;
	if (first)
		s->own_after = mb->modseq;   /* \Seen set here is answered */
	if (f && s->j_has_since)
		imap_fetch_want_modseq(f);
	if (s->j_vanished && first)
		fetch_vanished(s, mb);
	size_t n = resolve_set(s, mb, s->j_set, s->j_uidcmd, &idx, &seqs);
	if (f && imap_fetch_cached(f))
		imap_cache_fill(s, mb, idx, n);
	/*
	 * At most OUTPUT_HIGH of answer a job: the rest follows in another
	 * job once the client has read most of it (fetch_end), from where
	 * this one stopped in the session's view.
	 */
	s->j_more = false;
	for (size_t i = 0; f && i < n; i++) {
		if (seqs[i] <= s->j_last_seq)
			continue;
		if (s->jout.len >= OUTPUT_HIGH) {
			s->j_more = true;
			break;
		}
		s->j_last_seq = seqs[i];
		s->fetched++;
		if (s->j_has_since && mb->m[idx[i]].modseq <= s->j_since)
			continue;
		if (imap_fetch_message(&s->jout, mb, idx[i], seqs[i], f,
		    imap_fetch_opts(s), &changed, &s->jerr) != 0) {
			s->jrc = -3;    /* RFC 3516 4.3 */
			break;
		}
	}
	if (changed)
		store_box_mark_changed(s->box);
	free(idx);
	free(seqs);
	imap_fetch_free(f);
}

/* Best effort: what the index cannot say is read from the files. */
void
imap_cache_fill(struct imap_session *s, struct mbox *mb, const size_t *idx,
    size_t n)
{
	struct tern_err e;

	memset(&e, 0, sizeof(e));
	if (tindex_cache_fill(store_account_index(s->acct), store_rel(s->acct,
	    mb->path), mb, idx, n, &e) != 0)
		log_warnx("imap %s: %s", s->id, e.text);
}

static void
fetch_end(struct imap_session *s)
{
	if (s->j_more && s->jrc == 0) {
		/* the next part when the client has read this one */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    OUTPUT_LOW) {
			s->fetch_wait = true;
			bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW, 0);
		} else
			imap_fetch_next(s);
		return;
	}
	imap_updates(s, s->j_uidcmd);
	if (s->jrc == -3)
		imap_done(s, "NO", "[UNKNOWN-CTE] a part's transfer encoding is "
		    "not known here");
	else
		imap_done(s, "OK", "%sFETCH completed", s->j_uidcmd ? "UID " :
		    "");
}

void
imap_fetch_next(struct imap_session *s)
{
	s->fetch_wait = false;
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	imap_run_box_job(s, s->box, fetch_job, fetch_end);
}

void
imap_cmd_fetch(struct imap_session *s)
{
	struct imap_fetch *f;
	const struct imap_arg *set = cmd_arg(s, 0), *items = cmd_arg(s, 1);

	if ((cnargs(s) != 2 && cnargs(s) != 3) || set->type != IMAP_ARG_ATOM ||
	    !imap_valid_set(s, set->s)) {
		imap_done(s, "BAD", "FETCH sequence-set items [(modifiers)]");
		return;
	}
	if ((f = imap_fetch_parse(items)) == NULL) {
		imap_done(s, "BAD", "unknown FETCH item");
		return;
	}
	if (imap_fetch_modseq(f))
		s->condstore = true;       /* an enabling command */
	imap_fetch_free(f);
	s->j_since = 0;
	s->j_has_since = false;
	s->j_vanished = false;
	s->j_last_seq = 0;
	s->j_more = false;
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
			imap_done(s, "BAD", "FETCH modifiers: (CHANGEDSINCE modseq "
			    "[VANISHED])");
			return;
		}
		if (m->type != IMAP_ARG_LIST || !s->j_has_since) {
			imap_done(s, "BAD", "FETCH modifiers: (CHANGEDSINCE modseq "
			    "[VANISHED])");
			return;
		}
		if (s->j_vanished && (!s->j_uidcmd || !s->qresync)) {
			imap_done(s, "BAD", "VANISHED needs UID FETCH and QRESYNC");
			return;
		}
		s->condstore = true;
	}
	s->j_set = set->s;
	imap_run_box_job(s, s->box, fetch_job, fetch_end);
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
				imap_write_flags(&s->jout, mb, m, !s->rev2);
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
	imap_updates(s, s->j_uidcmd);
	if (s->jrc != 0)
		imap_done(s, "NO", "some flags could not be stored: %s", s->jerr.text);
	else if (s->j_nmod) {
		struct buf b;
		buf_init(&b);
		qsort(s->j_mod, s->j_nmod, sizeof(uint32_t), imap_cmp_u32);
		imap_seqset_write(&b, s->j_mod, s->j_nmod);
		buf_append_char(&b, '\0');
		imap_done(s, "OK", "[MODIFIED %s] Conditional STORE failed for some",
		    b.data);
		buf_clear(&b);
	} else
		imap_done(s, "OK", "%sSTORE completed", s->j_uidcmd ? "UID " : "");
	free(s->j_mod);
	s->j_mod = NULL;
	s->j_nmod = 0;
}

void
imap_cmd_store(struct imap_session *s)
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
			imap_done(s, "BAD", "STORE modifiers: (UNCHANGEDSINCE "
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
	    !imap_valid_set(s, set->s) || op->type != IMAP_ARG_ATOM ||
	    parse_flags(fl, &fs) != 0) {
		imap_done(s, "BAD", "STORE sequence-set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	const char *o = op->s + (op->s[0] == '+' || op->s[0] == '-');
	if (!ascii_strcaseeq(o, "FLAGS") && !ascii_strcaseeq(o, "FLAGS.SILENT")) {
		imap_done(s, "BAD", "STORE FLAGS, +FLAGS or -FLAGS");
		return;
	}
	if (s->readonly) {
		imap_done(s, "NO", "[READ-ONLY] the mailbox is read-only");
		return;
	}
	s->j_set = set->s;
	imap_run_box_job(s, s->box, store_job, store_end);
}

/* SEARCH ------------------------------------------------------------- */

/* ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) keys */
#define SR_MIN 1u
#define SR_MAX 2u
#define SR_COUNT 4u
#define SR_ALL 8u
#define SR_SAVE 16u    /* SEARCHRES (RFC 5182) */

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
		else if (t && ascii_strcaseeq(t, "SAVE"))
			*ret |= SR_SAVE;
		else
			return -1;
	}
	if (*ret == 0)
		*ret = SR_ALL;    /* RETURN () */
	return 0;
}

/* The messages of the view that match keys: box index and number each */
struct matches {
	size_t *idx;
	uint32_t *num;            /* UID for UID commands, else seq */
	size_t n;
	bool modseq_key;
	uint64_t top;             /* the highest MODSEQ among them */
};

#define SEARCH_TEXT_KEYS 16     /* TEXT/BODY keys the index answers */
#define FTS_INLINE 2000         /* messages a SEARCH adds to the index */

/*
 * TEXT and BODY keys from the full-text index: what the view has that
 * the index lacks goes into it first (at most FTS_INLINE messages: the
 * rest is looked for in the files, the same way, and the store adds it
 * while the folder is idle). Returns how many hits[] were filled.
 */
static size_t
text_hits(struct imap_session *s, struct mbox *mb,
    const struct imap_arg *keys, size_t nkeys, struct imap_text_hits *hits)
{
	const struct imap_arg *key[SEARCH_TEXT_KEYS];
	const char *needle[SEARCH_TEXT_KEYS];
	size_t nk = imap_search_text_keys(keys, nkeys, key, needle,
	    SEARCH_TEXT_KEYS), nh = 0, done;
	struct tindex *x = store_account_index(s->acct);
	struct tern_err e;

	if (nk == 0 || s->n == 0)
		return 0;
	size_t *idx = xcalloc(s->n, sizeof(size_t)), n = 0;
	for (size_t q = 0; q < s->n; q++) {
		ssize_t k = mbox_find_uid(mb, s->uids[q]);
		if (k >= 0 && !mb->m[k].in_fts)
			idx[n++] = (size_t)k;
	}
	memset(&e, 0, sizeof(e));
	if (n && tindex_fts_update(x, mb, idx, n, FTS_INLINE, &done, &e) != 0)
		log_warnx("imap %s: %s", s->id, e.text);
	else if (n > FTS_INLINE)
		mb->fts_wanted = true;     /* the store adds the rest, idle */
	free(idx);
	for (size_t i = 0; i < nk; i++) {
		memset(&e, 0, sizeof(e));
		int r = tindex_fts_find(x, needle[i], ascii_strcaseeq(key[i]->s,
		    "TEXT"), &hits[nh].bases, &hits[nh].n, &e);
		if (r < 0)
			log_warnx("imap %s: %s", s->id, e.text);
		if (r == 0)
			hits[nh++].key = key[i];
	}
	return nh;
}

static void
text_hits_free(struct imap_text_hits *hits, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < hits[i].n; k++)
			free(hits[i].bases[k]);
		free(hits[i].bases);
	}
}

static int
search_matches(struct imap_session *s, struct mbox *mb,
    const struct imap_arg *keys, size_t nkeys, struct matches *mt)
{
	memset(mt, 0, sizeof(*mt));
	mt->idx = xcalloc(s->n + 1, sizeof(size_t));
	mt->num = xcalloc(s->n + 1, sizeof(uint32_t));
	struct imap_text_hits hits[SEARCH_TEXT_KEYS];
	struct imap_search_view v = { s->uids, s->n, s->saved, s->nsaved,
		hits, text_hits(s, mb, keys, nkeys, hits) };
	for (size_t q = 0; q < s->n; q++) {
		ssize_t k = mbox_find_uid(mb, s->uids[q]);
		if (k < 0)
			continue;
		int r = imap_search_match(mb, (size_t)k, q + 1, &v, keys, nkeys,
		    &mt->modseq_key, &s->jerr);
		if (r < 0) {
			free(mt->idx);
			free(mt->num);
			memset(mt, 0, sizeof(*mt));
			text_hits_free(hits, v.nhits);
			return -1;
		}
		if (r) {
			mt->idx[mt->n] = (size_t)k;
			mt->num[mt->n++] = s->j_uidcmd ? s->uids[q] :
			    (uint32_t)(q + 1);
			if (mb->m[k].modseq > mt->top)
				mt->top = mb->m[k].modseq;
		}
	}
	s->j_modseq = mt->modseq_key;
	text_hits_free(hits, v.nhits);
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
	} else if (s->rev2) {
		/* RFC 9051 6.4.4: ESEARCH is IMAP4rev2's only answer */
		esearch = true;
		ret = SR_ALL;
	}
	/* CHARSET x: only ASCII and UTF-8 are matched (bytes) */
	if (n >= start + 2 && imap_arg_text(&a[start]) &&
	    ascii_strcaseeq(a[start].s, "CHARSET"))
		start += 2;
	if (start >= n) {
		s->jrc = -2;
		return;
	}
	struct matches mt;
	if (search_matches(s, mb, a + start, n - start, &mt) != 0) {
		s->jrc = -2;
		return;
	}
	uint32_t *hits = mt.num;
	size_t nhits = mt.n;
	bool modseq_key = mt.modseq_key;
	uint64_t top = mt.top;
	if (ret & SR_SAVE) {
		/* "$" from now on: the UIDs (the view is in UID order) */
		s->j_saved = xcalloc(nhits + 1, sizeof(uint32_t));
		for (size_t i = 0; i < nhits; i++)
			s->j_saved[i] = mb->m[mt.idx[i]].uid;
		s->j_nsaved = nhits;
	}
	free(mt.idx);
	if (ret == SR_SAVE) {
		/* RFC 5182 2.1: SAVE alone answers nothing but OK */
		free(hits);
		return;
	}
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
	if (s->j_save) {
		/* a SEARCH that fails leaves "$" empty (RFC 5182 2.1) */
		free(s->saved);
		s->saved = s->jrc == 0 ? s->j_saved : NULL;
		s->nsaved = s->jrc == 0 ? s->j_nsaved : 0;
		if (s->jrc != 0)
			free(s->j_saved);
		s->j_saved = NULL;
		s->j_nsaved = 0;
		s->j_save = false;
	}
	if (s->jrc == -2) {
		buf_reset(&s->jout);
		imap_done(s, "BAD", "bad SEARCH key");
		return;
	}
	if (s->j_modseq)
		s->condstore = true;       /* an enabling command */
	imap_updates(s, s->j_uidcmd);
	imap_done(s, "OK", "%s%s completed", s->j_uidcmd ? "UID " : "",
	    s->j_uidcmd ? s->pc.args[0].s : s->pc.name);
}

void
imap_cmd_search(struct imap_session *s)
{
	const struct imap_arg *a = cmd_arg(s, 0);
	unsigned ret = 0;

	if (cnargs(s) == 0) {
		imap_done(s, "BAD", "SEARCH keys");
		return;
	}
	s->j_save = cnargs(s) >= 2 && imap_arg_text(a) &&
	    ascii_strcaseeq(a->s, "RETURN") && search_return(&a[1], &ret) == 0 &&
	    (ret & SR_SAVE);
	/* the keys are checked as they run (against the first message);
	 * a mailbox without messages checks nothing */
	imap_run_box_job(s, s->box, search_job, search_end);
}

/* SORT (RFC 5256, 5957; ESORT RFC 5267) and THREAD (RFC 5256) -------- */

static bool
charset_ok(const char *c)
{
	return c && (ascii_strcaseeq(c, "UTF-8") || ascii_strcaseeq(c,
	    "US-ASCII"));
}

static void
sort_job(struct imap_session *s, struct mbox *mb)
{
	const struct imap_arg *a = cmd_arg(s, 0);
	size_t n = cnargs(s), at = 0;
	unsigned ret = 0;
	bool esort = false;
	struct imap_sort crit;
	struct matches mt;

	if (n >= 2 && imap_arg_text(a) && ascii_strcaseeq(a->s, "RETURN")) {
		(void)search_return(&a[1], &ret);
		esort = true;
		at = 2;
	}
	(void)imap_sort_parse(&a[at], &crit);
	if (search_matches(s, mb, a + at + 2, n - at - 2, &mt) != 0) {
		s->jrc = -2;
		return;
	}
	imap_cache_fill(s, mb, mt.idx, mt.n);
	imap_sort_run(mb, mt.idx, mt.n, &crit);
	/* the numbers in the sorted order */
	for (size_t i = 0; i < mt.n; i++)
		mt.num[i] = s->j_uidcmd ? mb->m[mt.idx[i]].uid :
		    (uint32_t)imap_view_seq(s, mb->m[mt.idx[i]].uid);
	if (!esort) {
		buf_append_str(&s->jout, "* SORT");
		for (size_t i = 0; i < mt.n; i++)
			buf_printf(&s->jout, " %u", mt.num[i]);
		if (mt.modseq_key && mt.top)
			buf_printf(&s->jout, " (MODSEQ %llu)",
			    (unsigned long long)mt.top);
	} else {
		/* RFC 5267: MIN and MAX are the first and last in order */
		buf_append_str(&s->jout, "* ESEARCH (TAG ");
		imap_write_string(&s->jout, s->tag, strlen(s->tag), false);
		buf_append_char(&s->jout, ')');
		if (s->j_uidcmd)
			buf_append_str(&s->jout, " UID");
		if ((ret & SR_MIN) && mt.n)
			buf_printf(&s->jout, " MIN %u", mt.num[0]);
		if ((ret & SR_MAX) && mt.n)
			buf_printf(&s->jout, " MAX %u", mt.num[mt.n - 1]);
		if (ret & SR_COUNT)
			buf_printf(&s->jout, " COUNT %zu", mt.n);
		if ((ret & SR_ALL) && mt.n) {
			buf_append_str(&s->jout, " ALL ");
			for (size_t i = 0; i < mt.n; i++)
				buf_printf(&s->jout, "%s%u", i ? "," : "",
				    mt.num[i]);
		}
		if (mt.modseq_key && mt.top)
			buf_printf(&s->jout, " MODSEQ %llu",
			    (unsigned long long)mt.top);
	}
	buf_append_str(&s->jout, "\r\n");
	free(mt.idx);
	free(mt.num);
}

void
imap_cmd_sort(struct imap_session *s)
{
	const struct imap_arg *a = cmd_arg(s, 0);
	size_t n = cnargs(s), at = 0;
	unsigned ret;
	struct imap_sort crit;

	if (n >= 2 && imap_arg_text(a) && ascii_strcaseeq(a->s, "RETURN")) {
		if (search_return(&a[1], &ret) != 0 || (ret & SR_SAVE)) {
			imap_done(s, "BAD", "SORT RETURN (MIN MAX COUNT ALL)");
			return;
		}
		at = 2;
	}
	if (n < at + 3 || imap_sort_parse(&a[at], &crit) != 0) {
		imap_done(s, "BAD", "SORT (criteria) charset keys");
		return;
	}
	if (!charset_ok(imap_arg_text(&a[at + 1]))) {
		imap_done(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] unknown charset");
		return;
	}
	imap_run_box_job(s, s->box, sort_job, search_end);
}

static void
thread_job(struct imap_session *s, struct mbox *mb)
{
	const struct imap_arg *a = cmd_arg(s, 0);
	struct matches mt;

	if (search_matches(s, mb, a + 2, cnargs(s) - 2, &mt) != 0) {
		s->jrc = -2;
		return;
	}
	imap_cache_fill(s, mb, mt.idx, mt.n);
	imap_thread_run(&s->jout, mb, mt.idx, mt.num, mt.n,
	    ascii_strcaseeq(a->s, "REFERENCES"));
	free(mt.idx);
	free(mt.num);
}

void
imap_cmd_thread(struct imap_session *s)
{
	const struct imap_arg *a = cmd_arg(s, 0);
	const char *alg = cnargs(s) >= 3 ? imap_arg_text(a) : NULL;

	if (alg == NULL || a->type != IMAP_ARG_ATOM ||
	    (!ascii_strcaseeq(alg, "ORDEREDSUBJECT") &&
	    !ascii_strcaseeq(alg, "REFERENCES"))) {
		imap_done(s, "BAD", "THREAD ORDEREDSUBJECT|REFERENCES charset "
		    "keys");
		return;
	}
	if (!charset_ok(imap_arg_text(&a[1]))) {
		imap_done(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] unknown charset");
		return;
	}
	imap_run_box_job(s, s->box, thread_job, search_end);
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
		imap_done(s, "NO", "%s%s", s->j_nobox ? "[TRYCREATE] " : "",
		    s->j_nobox ? "no such mailbox" : s->jerr.text);
		return;
	}
	if (folders_path(s->root, dname, path, sizeof(path)) == 0)
		store_notify_path(s->env.store, path);
	imap_updates(s, true);
	imap_done(s, "OK", "%s completed", s->pc.nargs && s->j_uidcmd ? "UID" :
	    s->pc.name);
}

void
imap_cmd_copy(struct imap_session *s)
{
	const struct imap_arg *set = cmd_arg(s, 0);
	const char *dname = cnargs(s) == 2 ? imap_arg_name(s, s->j_arg + 1) :
	    NULL;
	char path[4096];

	if (cnargs(s) != 2 || set->type != IMAP_ARG_ATOM ||
	    !imap_valid_set(s, set->s) || dname == NULL) {
		imap_done(s, "BAD", "COPY sequence-set mailbox");
		return;
	}
	if (folders_path(s->root, folders_canonical(dname), path,
	    sizeof(path)) != 0) {
		imap_done(s, "NO", "[CANNOT] that mailbox name is not allowed");
		return;
	}
	s->j_set = set->s;
	imap_run_box_job(s, s->box, copy_job, copy_end);
}

/* EXPUNGE, CLOSE, UNSELECT, CHECK ------------------------------------ */

static void
expunge_job(struct imap_session *s, struct mbox *mb)
{
	struct imap_seqset ss;
	bool have = false, changed;

	bool dollar = s->j_set && strcmp(s->j_set, "$") == 0;
	if (s->j_set && !dollar) {
		uint32_t max = s->n ? s->uids[s->n - 1] : 0;
		have = imap_seqset_parse(s->j_set, max, &ss) == 0;
		if (!have)
			return;    /* checked before; never "all" by mistake */
	}
	for (size_t i = 0; i < mb->n; i++) {
		if (!(mb->m[i].flags & MBOX_DELETED))
			continue;
		if (have && !imap_seqset_has(&ss, mb->m[i].uid))
			continue;
		if (dollar && bsearch(&mb->m[i].uid, s->saved, s->nsaved,
		    sizeof(uint32_t), imap_cmp_u32) == NULL)
			continue;
		(void)mbox_remove(mb, i, &s->jerr);
	}
	if (have)
		imap_seqset_clear(&ss);
	quota_forget(s->root);     /* counted again at the next look */
	s->jrc = mbox_sync(mb, s->root, true, &changed, &s->jerr);
	if (changed)
		store_box_mark_changed(s->box);
}

static void
expunge_end(struct imap_session *s)
{
	if (strcmp(s->pc.name, "CLOSE") == 0) {
		imap_deselect(s);
		imap_done(s, "OK", "CLOSE completed");
		return;
	}
	imap_updates(s, true);
	imap_done(s, "OK", "EXPUNGE completed");
}

void
imap_cmd_expunge(struct imap_session *s)
{
	if (s->j_uidcmd) {
		const struct imap_arg *set = cmd_arg(s, 0);
		if (cnargs(s) != 1 || set->type != IMAP_ARG_ATOM ||
		    !imap_valid_set(s, set->s)) {
			imap_done(s, "BAD", "UID EXPUNGE uid-set");
			return;
		}
		s->j_set = set->s;
	} else
		s->j_set = NULL;
	if (s->readonly) {
		imap_done(s, "NO", "[READ-ONLY] the mailbox is read-only");
		return;
	}
	imap_run_box_job(s, s->box, expunge_job, expunge_end);
}

void
imap_cmd_close(struct imap_session *s)
{
	if (s->readonly) {
		imap_deselect(s);
		imap_done(s, "OK", "CLOSE completed");
		return;
	}
	s->j_set = NULL;
	imap_run_box_job(s, s->box, expunge_job, expunge_end);
}

void
imap_cmd_unselect(struct imap_session *s)
{
	imap_deselect(s);
	imap_done(s, "OK", "UNSELECT completed");
}

