/* SPDX-License-Identifier: ISC */
/*
 * imap_mailboxes.c - layer 3, part of the IMAP session (imap_int.h): the
 * commands about folders. LIST with LIST-EXTENDED (RFC 5258) and
 * LIST-STATUS (RFC 5819); CREATE, DELETE, RENAME, SUBSCRIBE; SELECT and
 * EXAMINE with CONDSTORE and QRESYNC (RFC 7162); STATUS with SIZE (RFC
 * 8438) and HIGHESTMODSEQ. Folder work runs on the I/O pool as account
 * jobs, SELECT and STATUS as jobs of the folder's shared box.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>


#include "base/log.h"
#include "imap/imap_fetch.h"
#include "imap/imap_utf7.h"
#include "mail/mime.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/quota.h"
static bool status_items_ok(const struct imap_arg *items);

static void status_answer(struct imap_session *s, struct mbox *mb,
    const char *name, const struct imap_arg *items);

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
	const char *ref = imap_arg_str(s, s->l_sel ? 1 : 0);

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
		/* a UTF-8 session's patterns are UTF-8: matched against the
		 * names it sees */
		struct buf u;
		buf_init(&u);
		bool conv = s->utf8 && imap_utf7_to_utf8(nm, &u) == 0;
		if (conv)
			buf_append_char(&u, '\0');
		bool hit = list_matches(s, ref, conv ? u.data : nm, i == 0);
		buf_clear(&u);
		if (!hit)
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
		imap_write_mailbox(s, &s->jout, nm);
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

void
imap_list_free_status(struct imap_session *s)
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
		imap_list_free_status(s);
		imap_done(s, "OK", "%s completed", s->pc.name);
		return;
	}
	struct list_status *ls = &s->l_st[s->l_ist];
	bufferevent_write(s->bev, ls->out, strlen(ls->out));
	s->other = store_box_open(s->acct, ls->name, ls->path);
	imap_run_box_job(s, s->other, list_status_job, list_status_end);
}

static void
list_end(struct imap_session *s)
{
	if (s->l_nst) {
		list_status_next(s);
		return;
	}
	imap_done(s, "OK", "%s completed", s->pc.name);
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
	if (s->pc.nargs < i + 2 || imap_arg_str(s, i) == NULL)
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
	} else if ((s->l_pat[s->l_npat++] = imap_arg_str(s, i + 1)) == NULL)
		return -1;
	i += 2;
	if (i == s->pc.nargs)
		return 0;
	const char *r = imap_arg_str(s, i);
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

void
imap_cmd_list(struct imap_session *s)
{
	if (list_parse(s) != 0) {
		imap_done(s, "BAD", "%s [(selection)] reference pattern [RETURN "
		    "(options)]", s->pc.name);
		return;
	}
	if (s->l_npat == 1 && s->l_pat[0][0] == '\0' && !s->l_sel) {
		imap_say(s, "* LIST (\\Noselect) \"/\" \"\"");
		imap_done(s, "OK", "LIST completed");
		return;
	}
	imap_run_acct_job(s, list_work, list_end);
}

static void
folder_work(struct imap_session *s)
{
	const char *a = imap_arg_str(s, 0), *b = imap_arg_str(s, 1);
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
		/* its uidlist now, for the MAILBOXID in the answer */
		char path[4096];
		s->j_mboxid[0] = '\0';
		if (s->jrc == 0 && folders_path(s->root, tmp, path,
		    sizeof(path)) == 0) {
			struct mbox *mb = mbox_new(path);
			struct tern_err e;
			bool changed;
			memset(&e, 0, sizeof(e));
			if (mbox_sync(mb, s->root, false, &changed, &e) == 0)
				mbox_id(mb, s->j_mboxid);
			mbox_free(mb);
		}
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
		imap_done(s, "NO", "%s%s", strstr(s->jerr.text, "exists") ?
		    "[ALREADYEXISTS] " : strstr(s->jerr.text, "no such") ?
		    "[NONEXISTENT] " : "", s->jerr.text);
	else {
		/* a folder gone or moved: no box of it may linger on */
		bool del = strcmp(s->pc.name, "DELETE") == 0,
		    ren = strcmp(s->pc.name, "RENAME") == 0;
		for (size_t i = 0; (del || ren) && i < (ren ? 2u : 1u); i++) {
			char path[4096];
			const char *n = imap_arg_str(s, i);
			if (n && folders_path(s->root, folders_canonical(n), path,
			    sizeof(path)) == 0)
				store_forget_path(s->env.store, path);
		}
		if (strcmp(s->pc.name, "CREATE") == 0 && s->j_mboxid[0])
			imap_done(s, "OK", "[MAILBOXID (%s)] CREATE completed",
			    s->j_mboxid);
		else
			imap_done(s, "OK", "%s completed", s->pc.name);
	}
}

void
imap_cmd_folder(struct imap_session *s)
{
	char path[4096];
	size_t want = strcmp(s->pc.name, "RENAME") == 0 ? 2 : 1;
	const char *name = imap_arg_name(s, 0);
	char tmp[FOLDER_NAME_MAX + 2];

	if (s->pc.nargs != want || name == NULL || (want == 2 &&
	    imap_arg_name(s, 1) == NULL)) {
		imap_done(s, "BAD", "%s needs %zu mailbox name(s)", s->pc.name, want);
		return;
	}
	/* CREATE "A/": the trailing separator is a hint, not the name */
	(void)str_copy(tmp, sizeof(tmp), name);
	size_t l = strlen(tmp);
	if (strcmp(s->pc.name, "CREATE") == 0 && l > 1 && tmp[l - 1] == '/')
		tmp[l - 1] = '\0';
	if (folders_path(s->root, folders_canonical(tmp), path,
	    sizeof(path)) != 0 || (want == 2 && (imap_arg_str(s, 1) == NULL ||
	    folders_path(s->root, folders_canonical(imap_arg_str(s, 1)), path,
	    sizeof(path)) != 0))) {
		imap_done(s, "NO", "[CANNOT] that mailbox name is not allowed");
		return;
	}
	if (strcmp(s->pc.name, "DELETE") == 0 && s->box &&
	    strcmp(store_box_name(s->box), folders_canonical(name)) == 0)
		imap_deselect(s);
	imap_run_acct_job(s, folder_work, folder_end);
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
	bool have_known = false;

	if (s->j_qr_uv != mb->uidvalidity)
		return;     /* another numbering: the client starts again */
	if (s->j_qr_known)
		have_known = imap_seqset_parse(s->j_qr_known, mb->uidnext ?
		    mb->uidnext - 1 : 0, &known) == 0;
	imap_vanished_earlier(s, mb, s->j_qr_ms, have_known ? &known : NULL,
	    &s->jqr);
	for (size_t i = 0; i < mb->n; i++) {
		const struct mbox_msg *m = &mb->m[i];
		if (m->modseq <= s->j_qr_ms || (have_known &&
		    !imap_seqset_has(&known, m->uid)))
			continue;
		buf_printf(&s->jqr, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_write_flags(&s->jqr, mb, m, !s->rev2);
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
		imap_deselect(s);
		imap_done(s, "NO", "[NONEXISTENT] %s", "no such mailbox");
		return;
	}
	s->n = 0;
	for (size_t i = 0; i < mb->n; i++) {
		imap_view_add(s, mb->m[i].uid);
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
	imap_say(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
	    "$Forwarded%s)", kw.data ? kw.data : "");
	imap_say(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	    "\\Draft $Forwarded%s%s)] Limited", kw.data ? kw.data : "",
	    s->readonly ? "" : " \\*");
	buf_clear(&kw);
	imap_say(s, "* %zu EXISTS", s->n);
	if (!s->rev2)
		imap_say(s, "* %zu RECENT", recent);
	else {
		/* RFC 9051 6.3.2: the folder's LIST line */
		struct buf l;
		const char *nm = store_box_name(s->box);
		const char *su = folders_special_use(nm);
		buf_init(&l);
		buf_printf(&l, "* LIST (%s) \"/\" ", su ? su : "");
		imap_write_mailbox(s, &l, nm);
		buf_append_str(&l, "\r\n");
		bufferevent_write(s->bev, l.data, l.len);
		buf_clear(&l);
	}
	if (unseen)
		imap_say(s, "* OK [UNSEEN %zu] First unseen", unseen);
	imap_say(s, "* OK [UIDVALIDITY %u] UIDs valid", mb->uidvalidity);
	imap_say(s, "* OK [UIDNEXT %u] Predicted next UID", mb->uidnext);
	char id[40];
	mbox_id(mb, id);
	imap_say(s, "* OK [MAILBOXID (%s)] Ok", id);
	imap_say(s, "* OK [HIGHESTMODSEQ %llu] Highest",
	    (unsigned long long)mb->modseq);
	if (s->jqr.len)
		bufferevent_write(s->bev, s->jqr.data, s->jqr.len);
	buf_reset(&s->jqr);
	s->state = I_SELECTED;
	imap_done(s, "OK", "[%s] %s completed", s->readonly ? "READ-ONLY" :
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
		imap_done(s, "BAD", "%s mailbox [(parameters)]", s->pc.name);
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
		    imap_valid_set(s, q->items[2].s))) && q->nitems <= 4) {
			if (!s->qresync) {
				imap_done(s, "BAD", "QRESYNC is not enabled");
				return -1;
			}
			s->j_qr = true;
			s->j_qr_uv = (uint32_t)uv;
			s->j_qr_ms = ms;
			s->j_qr_known = q->nitems >= 3 ? q->items[2].s : NULL;
			i++;
			continue;
		}
		imap_done(s, "BAD", "unknown %s parameter", s->pc.name);
		return -1;
	}
	return 0;
}

void
imap_cmd_select(struct imap_session *s)
{
	char path[4096];
	const char *name;

	if (s->box) {
		imap_deselect(s);
		imap_say(s, "* OK [CLOSED] Previous mailbox closed");
	}
	if ((name = imap_arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
	if (select_params(s) != 0)
		return;
	s->readonly = strcmp(s->pc.name, "EXAMINE") == 0;
	s->box = store_box_open(s->acct, name, path);
	s->watch.changed = imap_on_box_changed;
	s->watch.arg = s;
	store_box_watch(s->box, &s->watch);
	if (!s->readonly)
		store_box_select(s->box, true);
	imap_run_box_job(s, s->box, select_job, select_end);
}

/* QUOTA (RFC 9208): one root, "", for the whole account ----------------- */

static void
quota_line(struct imap_session *s, struct buf *out)
{
	const struct config_limits *l = &s->cfg->limits;
	struct quota_use u;

	quota_use(s->root, &u);
	buf_append_str(out, "* QUOTA \"\" (");
	if (l->quota_storage)
		buf_printf(out, "STORAGE %llu %llu",
		    (unsigned long long)((u.bytes + 1023) / 1024),
		    (unsigned long long)(l->quota_storage / 1024));
	if (l->quota_messages)
		buf_printf(out, "%sMESSAGE %llu %u", l->quota_storage ? " " : "",
		    (unsigned long long)u.messages, l->quota_messages);
	buf_append_str(out, ")\r\n");
}

static bool
have_quota(const struct imap_session *s)
{
	return s->cfg->limits.quota_storage || s->cfg->limits.quota_messages;
}

static void
getquota_work(struct imap_session *s)
{
	if (strcmp(s->pc.name, "GETQUOTAROOT") == 0) {
		const char *name = folders_canonical(imap_arg_str(s, 0));
		buf_append_str(&s->jout, "* QUOTAROOT ");
		imap_write_mailbox(s, &s->jout, name);
		buf_append_str(&s->jout, have_quota(s) ? " \"\"\r\n" : "\r\n");
	}
	if (have_quota(s))
		quota_line(s, &s->jout);
}

static void
getquota_end(struct imap_session *s)
{
	imap_done(s, "OK", "%s completed", s->pc.name);
}

void
imap_cmd_quota(struct imap_session *s)
{
	char path[4096];

	if (strcmp(s->pc.name, "SETQUOTA") == 0) {
		imap_done(s, "NO", "[NOPERM] quotas are set in ternd's "
		    "configuration");
		return;
	}
	if (s->pc.nargs != 1 || imap_arg_str(s, 0) == NULL) {
		imap_done(s, "BAD", "%s %s", s->pc.name,
		    strcmp(s->pc.name, "GETQUOTA") == 0 ? "root" : "mailbox");
		return;
	}
	if (strcmp(s->pc.name, "GETQUOTA") == 0 &&
	    (imap_arg_str(s, 0)[0] != '\0' || !have_quota(s))) {
		imap_done(s, "NO", "[NONEXISTENT] no such quota root");
		return;
	}
	if (strcmp(s->pc.name, "GETQUOTAROOT") == 0 &&
	    imap_arg_mailbox(s, 0, path, sizeof(path)) == NULL)
		return;
	imap_run_acct_job(s, getquota_work, getquota_end);
}

/* STATUS ------------------------------------------------------------- */

static const char *const status_items[] = { "MESSAGES", "UIDNEXT",
	"UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "HIGHESTMODSEQ", "MAILBOXID",
	"DELETED", NULL };

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
	size_t unseen = 0, recent = 0, deleted = 0;
	uint64_t size = 0;
	for (size_t k = 0; k < mb->n; k++) {
		if (!(mb->m[k].flags & MBOX_SEEN))
			unseen++;
		if (mb->m[k].flags & MBOX_DELETED)
			deleted++;
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
	imap_write_mailbox(s, &s->jout, name);
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
		else if (ascii_strcaseeq(it, "DELETED"))
			buf_printf(&s->jout, "DELETED %zu", deleted);
		else if (ascii_strcaseeq(it, "SIZE"))
			buf_printf(&s->jout, "SIZE %llu",
			    (unsigned long long)size);
		else if (ascii_strcaseeq(it, "HIGHESTMODSEQ"))
			buf_printf(&s->jout, "HIGHESTMODSEQ %llu",
			    (unsigned long long)mb->modseq);
		else if (ascii_strcaseeq(it, "MAILBOXID")) {
			char id[40];
			mbox_id(mb, id);
			buf_printf(&s->jout, "MAILBOXID (%s)", id);
		}
	}
	buf_append_str(&s->jout, ")\r\n");
}

static void
status_job(struct imap_session *s, struct mbox *mb)
{
	status_answer(s, mb, folders_canonical(imap_arg_str(s, 0)),
	    &s->pc.args[1]);
}

static void
status_end(struct imap_session *s)
{
	store_box_close(s->other);
	s->other = NULL;
	if (s->jrc == -2) {
		buf_reset(&s->jout);
		imap_done(s, "BAD", "unknown STATUS item");
	} else if (s->jrc != 0) {
		buf_reset(&s->jout);
		imap_done(s, "NO", "[NONEXISTENT] no such mailbox");
	} else
		imap_done(s, "OK", "STATUS completed");
}

void
imap_cmd_status(struct imap_session *s)
{
	char path[4096];
	const char *name;

	if (s->pc.nargs != 2 || !status_items_ok(&s->pc.args[1])) {
		imap_done(s, "BAD", "STATUS mailbox (items), items: MESSAGES UIDNEXT "
		    "UIDVALIDITY UNSEEN DELETED RECENT SIZE HIGHESTMODSEQ "
		    "MAILBOXID");
		return;
	}
	if ((name = imap_arg_mailbox(s, 0, path, sizeof(path))) == NULL)
		return;
	for (size_t i = 0; i < s->pc.args[1].nitems; i++) {
		const char *it = imap_arg_text(&s->pc.args[1].items[i]);
		if (it && ascii_strcaseeq(it, "HIGHESTMODSEQ"))
			s->condstore = true;   /* an enabling command */
	}
	s->other = store_box_open(s->acct, name, path);
	imap_run_box_job(s, s->other, status_job, status_end);
}

