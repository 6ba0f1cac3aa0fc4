/* SPDX-License-Identifier: ISC */
/*
 * index.c - layer 2: the account's SQLite index (index.h). I/O workers
 * only; a mutex per handle makes it the one writer of its database.
 *
 * Durability: WAL with synchronous=NORMAL. A killed ternd loses nothing
 * that was committed; a machine that loses power may lose the last
 * transactions, which costs MODSEQs that are given out again for other
 * changes of that folder. That is the price of not fsyncing per flag
 * change; the Maildir and the uidlist (fsynced) never lose anything. A
 * database that does not open or has another schema version is moved
 * aside and made again; one that SQLite finds corrupt while it is used
 * is closed, checked (quick_check) when it is opened again, and moved
 * aside if it fails.
 */
#include "store/index.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/log.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"
#include "store/mailbox.h"

#define SCHEMA_VERSION 5
#define STR2(x) #x
#define TERN_STR(x) STR2(x)

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
    /* known_since: MODSEQs at or below it predate what the index saw */
    "CREATE TABLE IF NOT EXISTS mailbox(id INTEGER PRIMARY KEY,"
    " path TEXT UNIQUE NOT NULL, uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL, highestmodseq INTEGER NOT NULL,"
    " known_since INTEGER NOT NULL, guid TEXT,"
    /* new/, cur/ and uidlist times of the last full look (ns) */
    " seen_new INTEGER, seen_cur INTEGER, seen_ul INTEGER);"
    "CREATE TABLE IF NOT EXISTS msg(mailbox INTEGER NOT NULL,"
    " uid INTEGER NOT NULL, base TEXT NOT NULL, flags INTEGER NOT NULL,"
    " keywords TEXT, modseq INTEGER NOT NULL, size INTEGER NOT NULL,"
    " internaldate INTEGER NOT NULL, fname TEXT, in_new INTEGER,"
    /* SAVEDATE (RFC 8514): when the folder got it, s (v3); fts: its
     * text is in the full-text index (v3) */
    " savedate INTEGER, fts INTEGER,"
    " PRIMARY KEY(mailbox, uid))"
    " WITHOUT ROWID;"
    /* v4: the expunged message's Email id and thread id, for JMAP */
    "CREATE TABLE IF NOT EXISTS expunged(mailbox INTEGER NOT NULL,"
    " uid INTEGER NOT NULL, modseq INTEGER NOT NULL, email TEXT, thread TEXT,"
    " PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(mailbox, modseq);"
    /* v3: what was read from a message's file once, by base name (one
     * row for all its copies): ENVELOPE, BODYSTRUCTURE, BODY, sort keys */
    "CREATE TABLE IF NOT EXISTS cache(base TEXT PRIMARY KEY, envelope TEXT,"
    " structure TEXT, body TEXT, keys TEXT) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS msg_base ON msg(base);"
    /* JMAP's EmailSubmission records (nothing in the Maildir has them):
     * seq orders every change, a destroyed one is kept as gone */
    "CREATE TABLE IF NOT EXISTS submission(seq INTEGER PRIMARY KEY,"
    " id TEXT UNIQUE NOT NULL, obj TEXT NOT NULL, gone INTEGER NOT NULL"
    " DEFAULT 0);"
    /* v5: how many messages each thread key (sort_thread_root()) was
     * given, and the first subject it had; a message's thread id is in
     * its cache row's keys */
    "CREATE TABLE IF NOT EXISTS thread(key INTEGER PRIMARY KEY,"
    " subject TEXT, n INTEGER NOT NULL);"
    /* JMAP Identities made or changed by the user (Identity/set) */
    "CREATE TABLE IF NOT EXISTS identity(id TEXT PRIMARY KEY,"
    " obj TEXT NOT NULL) WITHOUT ROWID;"
    /* v3: the full-text index of SEARCH TEXT and BODY, one document per
     * base name: decoded header fields and text parts, trigram-indexed
     * so that LIKE '%...%' (IMAP's substring match) uses it */
    "CREATE TABLE IF NOT EXISTS ftsdoc(id INTEGER PRIMARY KEY,"
    " base TEXT UNIQUE NOT NULL);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(hdr, body,"
    " tokenize='trigram', detail='none');"
    /* the last copy of a message gone: its cache and text go too */
    "CREATE TRIGGER IF NOT EXISTS msg_gone AFTER DELETE ON msg"
    " WHEN NOT EXISTS (SELECT 1 FROM msg WHERE base=OLD.base) BEGIN"
    " DELETE FROM cache WHERE base=OLD.base;"
    " DELETE FROM fts WHERE rowid IN (SELECT id FROM ftsdoc"
    " WHERE base=OLD.base);"
    " DELETE FROM ftsdoc WHERE base=OLD.base; END;";

struct tindex {
	pthread_mutex_t mu;
	char *root, *path;
	sqlite3 *db;
	bool tried;
	bool check;               /* quick_check at the next open */
	bool broken;              /* SQLite said corrupt: reopen */
};

struct tindex *
tindex_new(const char *root)
{
	struct tindex *x = xcalloc(1, sizeof(*x));

	pthread_mutex_init(&x->mu, NULL);
	x->root = xstrdup(root);
	x->path = xasprintf("%s/" TINDEX_FILE, root);
	return x;
}

void
tindex_free(struct tindex *x)
{
	if (x == NULL)
		return;
	if (x->db)
		sqlite3_close(x->db);
	pthread_mutex_destroy(&x->mu);
	free(x->root);
	free(x->path);
	free(x);
}

static void
db_fail(struct tindex *x, struct tern_err *err, const char *what)
{
	int ec = x->db ? sqlite3_errcode(x->db) : SQLITE_OK;

	/*
	 * A torn database shows itself when it is used: closed, it is
	 * checked at the next use, and made again if it is not sound.
	 */
	if (ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB) {
		x->broken = true;
		x->check = true;
	}
	tern_err_set(err, 451, "4.3.0", "index %s: %s: %s", x->path, what,
	    x->db ? sqlite3_errmsg(x->db) : "not open");
	err->temp = true;
}

static int
exec(struct tindex *x, const char *sql)
{
	return sqlite3_exec(x->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int
version_of(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k='version'", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool
healthy(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool ok = false;

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) !=
	    SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *r = sqlite3_column_text(st, 0);
		ok = r && strcmp((const char *)r, "ok") == 0;
	}
	sqlite3_finalize(st);
	return ok;
}

/* Version 2 had no savedate (its rows get one from INTERNALDATE on
 * load), no cache and no full-text index (made empty). */
static int
upgrade_2(struct tindex *x)
{
	return exec(x, "BEGIN; ALTER TABLE msg ADD COLUMN savedate INTEGER;"
	    " ALTER TABLE msg ADD COLUMN fts INTEGER;"
	    " UPDATE meta SET v=3 WHERE k='version'; COMMIT");
}

/* Version 3 kept no Email id of an expunge: changes back to then are
 * ones JMAP cannot calculate (the id is NULL). */
static int
upgrade_3(struct tindex *x)
{
	return exec(x, "BEGIN; ALTER TABLE expunged ADD COLUMN email TEXT;"
	    " ALTER TABLE expunged ADD COLUMN thread TEXT;"
	    " UPDATE meta SET v=4 WHERE k='version'; COMMIT");
}

/* Version 4 gave threads no ids of their own: they are given as the
 * messages are seen again (the thread table is made by the schema). */
static int
upgrade_4(struct tindex *x)
{
	return exec(x, "UPDATE meta SET v=5 WHERE k='version'");
}

/* Opens the database, making it (again) when it is missing or unusable. */
static int
db_open(struct tindex *x, struct tern_err *err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (sqlite3_open_v2(x->path, &x->db, SQLITE_OPEN_READWRITE |
		    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
			sqlite3_busy_timeout(x->db, 10000);
			int v = -2;
			if (exec(x, "PRAGMA journal_mode=WAL") == 0 &&
			    exec(x, "PRAGMA synchronous=NORMAL") == 0 &&
			    (!x->check || healthy(x->db)) &&
			    exec(x, schema) == 0 &&
			    ((v = version_of(x->db)) == SCHEMA_VERSION ||
			    (v == 2 && upgrade_2(x) == 0 && upgrade_3(x) == 0 &&
			    upgrade_4(x) == 0) ||
			    (v == 3 && upgrade_3(x) == 0 && upgrade_4(x) == 0) ||
			    (v == 4 && upgrade_4(x) == 0) ||
			    (v == -1 && exec(x, "INSERT INTO meta VALUES"
			    "('version', " TERN_STR(SCHEMA_VERSION) ")") == 0)))
				return 0;
			log_warnx("index %s: unusable (%s%s), made again",
			    x->path, v >= 0 ? "schema version " : "",
			    v >= 0 ? "differs" : sqlite3_errmsg(x->db));
		}
		sqlite3_close(x->db);
		x->db = NULL;
		/* kept for a look, replaced by the next one set aside */
		char *aside = xasprintf("%s.broken", x->path);
		(void)rename(x->path, aside);
		free(aside);
		for (int i = 0; i < 2; i++) {
			char *p = xasprintf("%s%s", x->path, i ? "-shm" : "-wal");
			(void)unlink(p);
			free(p);
		}
	}
	db_fail(x, err, "open");
	return -1;
}

static int
lock(struct tindex *x, struct tern_err *err)
{
	pthread_mutex_lock(&x->mu);
	if (x->broken && x->db) {
		sqlite3_close(x->db);
		x->db = NULL;
		x->tried = false;
		x->broken = false;
	}
	if (x->db || (!x->tried && (x->tried = true) && db_open(x, err) == 0))
		return 0;
	if (x->db == NULL && err->text[0] == '\0')
		db_fail(x, err, "open");
	pthread_mutex_unlock(&x->mu);
	return -1;
}

static void
unlock(struct tindex *x)
{
	pthread_mutex_unlock(&x->mu);
}

static uint64_t
modseq_seed(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void
keywords_to_bits(struct mbox *b, const char *text, uint32_t *kw)
{
	*kw = 0;
	while (text && *text) {
		const char *sp = strchr(text, ' ');
		size_t len = sp ? (size_t)(sp - text) : strlen(text);
		char name[256];
		if (len > 0 && len < sizeof(name)) {
			memcpy(name, text, len);
			name[len] = '\0';
			int k = keywords_find(&b->kw, name);
			if (k >= 0)
				*kw |= 1u << k;
		}
		text = sp ? sp + 1 : NULL;
	}
}

static char *
bits_to_keywords(const struct mbox *b, uint32_t kw)
{
	struct buf out;

	if (kw == 0)
		return NULL;
	buf_init(&out);
	for (int k = 0; k < KEYWORDS_MAX; k++)
		if ((kw & (1u << k)) && b->kw.names[k]) {
			if (out.len)
				buf_append_char(&out, ' ');
			buf_append_str(&out, b->kw.names[k]);
		}
	if (out.len == 0) {
		buf_clear(&out);
		return NULL;
	}
	buf_append_char(&out, '\0');
	return out.data;
}

int
tindex_load_box(struct tindex *x, const char *rel, struct mbox *b,
    struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t id = -1;

	if (lock(x, err) != 0)
		return -1;
	mbox_load_keywords(b);
	int64_t seen[3] = { -1, -1, -1 };
	const char *guid = NULL;
	if (sqlite3_prepare_v2(x->db, "SELECT id, uidvalidity, uidnext,"
	    " highestmodseq, seen_new, seen_cur, seen_ul, guid FROM mailbox"
	    " WHERE path=?", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		b->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		b->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		b->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		for (int k = 0; k < 3; k++)
			if (sqlite3_column_type(st, 4 + k) == SQLITE_INTEGER)
				seen[k] = sqlite3_column_int64(st, 4 + k);
		guid = (const char *)sqlite3_column_text(st, 7);
		if (guid && strlen(guid) < sizeof(b->guid))
			memcpy(b->guid, guid, strlen(guid) + 1);
	} else
		b->modseq = modseq_seed();
	b->committed = b->modseq;
	sqlite3_finalize(st);
	st = NULL;
	if (id < 0) {
		unlock(x);
		return 0;
	}
	if (sqlite3_prepare_v2(x->db, "SELECT uid, base, flags, keywords,"
	    " modseq, size, internaldate, fname, in_new, savedate, fts FROM msg"
	    " WHERE"
	    " mailbox=? ORDER BY uid", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	bool names = true;       /* every row knows its file's name */
	sqlite3_bind_int64(st, 1, id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (b->n == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 256;
			b->m = xreallocarray(b->m, b->cap, sizeof(*b->m));
		}
		struct mbox_msg *m = &b->m[b->n++];
		memset(m, 0, sizeof(*m));
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->base = xstrdup((const char *)sqlite3_column_text(st, 1));
		const char *fn = (const char *)sqlite3_column_text(st, 7);
		m->fname = xstrdup(fn ? fn : m->base);
		m->in_new = sqlite3_column_int(st, 8) != 0;
		names &= fn != NULL;
		m->flags = (uint8_t)sqlite3_column_int(st, 2);
		keywords_to_bits(b, (const char *)sqlite3_column_text(st, 3),
		    &m->kw);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 4);
		m->vsize = (uint64_t)sqlite3_column_int64(st, 5);
		m->internaldate = sqlite3_column_int64(st, 6);
		m->savedate = sqlite3_column_int64(st, 9);
		if (m->savedate == 0)
			m->savedate = m->internaldate;
		m->in_fts = sqlite3_column_int(st, 10) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		db_fail(x, err, "load");
		for (size_t i = 0; i < b->n; i++) {
			free(b->m[i].base);
			free(b->m[i].fname);
		}
		b->n = 0;
		b->modseq = b->committed = modseq_seed();
		b->uidvalidity = b->uidnext = 0;
		unlock(x);
		return -1;
	}
	b->preloaded = true;
	unlock(x);
	/*
	 * Nothing touched new/, cur/ or the uidlist since the index last
	 * looked: what it says is the folder, and no listing is needed
	 * (the way Dovecot trusts its index). Any change of theirs is seen
	 * by the next sync, as the times then differ.
	 */
	if (names && seen[0] >= 0 && seen[1] >= 0 && seen[2] >= 0 &&
	    mbox_times_are(b, seen[0], seen[1], seen[2]))
		b->preloaded = false;
	return 0;
fail:
	sqlite3_finalize(st);
	db_fail(x, err, "load");
	unlock(x);
	return -1;
}

/* The id of rel's row, made or reset to b's UIDVALIDITY; -1 on error. */
static int64_t
box_row(struct tindex *x, const char *rel, const struct mbox *b)
{
	sqlite3_stmt *st;
	int64_t id = -1;
	uint32_t uv = 0;

	if (sqlite3_prepare_v2(x->db, "SELECT id, uidvalidity FROM mailbox"
	    " WHERE path=?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		uv = (uint32_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (id >= 0 && uv == b->uidvalidity)
		return id;
	if (id >= 0) {
		/* a new UIDVALIDITY: nothing of the old numbering holds */
		char *q = sqlite3_mprintf("DELETE FROM msg WHERE mailbox=%lld;"
		    "DELETE FROM expunged WHERE mailbox=%lld;"
		    "UPDATE mailbox SET uidvalidity=%u, known_since=%llu"
		    " WHERE id=%lld", (long long)id, (long long)id,
		    b->uidvalidity, (unsigned long long)b->committed,
		    (long long)id);
		int rc = exec(x, q);
		sqlite3_free(q);
		return rc == 0 ? id : -1;
	}
	if (sqlite3_prepare_v2(x->db, "INSERT INTO mailbox(path, uidvalidity,"
	    " uidnext, highestmodseq, known_since, guid) VALUES(?,?,?,?,?,?)",
	    -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, b->uidvalidity);
	sqlite3_bind_int64(st, 3, b->uidnext);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)b->committed);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)b->committed);
	sqlite3_bind_text(st, 6, b->guid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(x->db);
	sqlite3_finalize(st);
	return id;
}

static void
bind_nullable(sqlite3_stmt *st, int col, const char *v)
{
	if (v)
		sqlite3_bind_text(st, col, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

/* The cache row of m: what is known of it now (the rest stays NULL). */
static int
cache_put(sqlite3_stmt *st, const struct mbox_msg *m)
{
	char *keys = m->keys ? sort_keys_pack(m->keys, NULL) : NULL;

	sqlite3_bind_text(st, 1, m->base, -1, SQLITE_STATIC);
	bind_nullable(st, 2, m->envelope);
	bind_nullable(st, 3, m->structure);
	bind_nullable(st, 4, m->body);
	bind_nullable(st, 5, keys);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	free(keys);
	return rc == SQLITE_DONE ? 0 : -1;
}

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? xstrdup((const char *)t) : NULL;
}

/* A cache row (columns from, from+3) into the fields m lacks. */
static void
cache_take(sqlite3_stmt *st, int from, struct mbox_msg *m)
{
	m->cache_tried = true;
	/* what this box read itself meanwhile stays */
	if (m->envelope == NULL)
		m->envelope = column_dup(st, from);
	if (m->structure == NULL)
		m->structure = column_dup(st, from + 1);
	if (m->body == NULL)
		m->body = column_dup(st, from + 2);
	const char *k = (const char *)sqlite3_column_text(st, from + 3);
	if (m->keys == NULL && k) {
		struct sort_keys *sk = xcalloc(1, sizeof(*sk));
		if (sort_keys_unpack(k, (size_t)sqlite3_column_bytes(st, from + 3),
		    sk) == 0)
			m->keys = sk;
		else
			free(sk);
	}
}

#define CACHE_BY_FOLDER 256   /* more to ask: the folder's rows at once */

static bool
cache_empty(struct tindex *x)
{
	sqlite3_stmt *st;
	bool empty = false;

	if (sqlite3_prepare_v2(x->db, "SELECT NOT EXISTS(SELECT 1 FROM cache)",
	    -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		empty = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return empty;
}

static int
cache_fill(struct tindex *x, const char *rel, struct mbox *b,
    const size_t *idx, size_t n, struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t asked = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		asked += !b->m[idx[i]].cache_tried;
	if (asked == 0)
		return 0;
	if (lock(x, err) != 0)
		return -1;
	if (asked > CACHE_BY_FOLDER && cache_empty(x)) {
		/* nothing cached anywhere yet (a new account): no pass */
		for (size_t i = 0; i < n; i++)
			b->m[idx[i]].cache_tried = true;
		unlock(x);
		return 0;
	}
	if (asked > CACHE_BY_FOLDER) {
		/* one pass over the folder's rows beats as many lookups */
		if (sqlite3_prepare_v2(x->db, "SELECT m.uid, m.base, c.envelope,"
		    " c.structure, c.body, c.keys FROM mailbox f JOIN msg m ON"
		    " m.mailbox=f.id JOIN cache c ON c.base=m.base WHERE"
		    " f.path=?", -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			ssize_t k = mbox_find_uid(b, (uint32_t)sqlite3_column_int64(
			    st, 0));
			const char *base = (const char *)sqlite3_column_text(st, 1);
			/* the row may be older than the box: the same file? */
			if (k >= 0 && !b->m[k].cache_tried && base &&
			    strcmp(b->m[k].base, base) == 0)
				cache_take(st, 2, &b->m[k]);
		}
		sqlite3_finalize(st);
		st = NULL;
		for (size_t i = 0; i < n; i++)
			b->m[idx[i]].cache_tried = true;
		unlock(x);
		return rc == SQLITE_DONE ? 0 : -1;
	}
	if (sqlite3_prepare_v2(x->db, "SELECT envelope, structure, body, keys"
	    " FROM cache WHERE base=?", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct mbox_msg *m = &b->m[idx[i]];
		if (m->cache_tried)
			continue;
		m->cache_tried = true;
		sqlite3_bind_text(st, 1, m->base, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			cache_take(st, 0, m);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	unlock(x);
	return 0;
fail:
	db_fail(x, err, "cache");
	unlock(x);
	return -1;
}

int
tindex_cache_fill(struct tindex *x, const char *rel, struct mbox *b,
    const size_t *idx, size_t n, struct tern_err *err)
{
	if (cache_fill(x, rel, b, idx, n, err) != 0)
		return -1;
	return tindex_threads_give(x, b, idx, n, err);
}

/*
 * A thread id for k (sort_keys.h): the one another copy's cache row has,
 * else the next place in the thread of its root and subject, counted in
 * the thread table. The cache row gets it at once, so that a crash
 * before the box's commit does not count the message twice. Lock held,
 * in a transaction.
 */
struct thread_stmts {
	sqlite3_stmt *seen, *get, *put, *cput;
};

static int
thread_give(struct thread_stmts *t, const char *base, struct sort_keys *k)
{
	uint64_t key;
	int rc;

	if (!sort_thread_root(k, &key)) {
		sort_thread_id(k, base, k->tid);   /* a thread of its own */
		return 0;
	}
	sqlite3_bind_text(t->seen, 1, base, -1, SQLITE_STATIC);
	if (sqlite3_step(t->seen) == SQLITE_ROW &&
	    sqlite3_column_text(t->seen, 0)) {
		struct sort_keys old;
		if (sort_keys_unpack((const char *)sqlite3_column_text(t->seen,
		    0), (size_t)sqlite3_column_bytes(t->seen, 0), &old) == 0) {
			memcpy(k->tid, old.tid, SORT_ID_LEN);
			sort_keys_clear(&old);
		}
	}
	sqlite3_reset(t->seen);
	if (k->tid[0])
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		int64_t n = 0;
		bool have = false, same = true;
		sqlite3_bind_int64(t->get, 1, (sqlite3_int64)key);
		if ((rc = sqlite3_step(t->get)) == SQLITE_ROW) {
			have = true;
			n = sqlite3_column_int64(t->get, 1);
			same = sort_thread_same_subject((const char *)
			    sqlite3_column_text(t->get, 0), k->subject);
		}
		sqlite3_reset(t->get);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
		if (have && !same && pass == 0) {
			key = sort_thread_split(key, k->subject);
			continue;
		}
		sqlite3_bind_int64(t->put, 1, (sqlite3_int64)key);
		bind_nullable(t->put, 2, k->subject);
		rc = sqlite3_step(t->put);
		sqlite3_reset(t->put);
		if (rc != SQLITE_DONE)
			return -1;
		sort_thread_name(key, (uint64_t)n / SORT_THREAD_MAX, k->tid);
		break;
	}
	char *packed = sort_keys_pack(k, NULL);
	sqlite3_bind_text(t->cput, 1, base, -1, SQLITE_STATIC);
	sqlite3_bind_text(t->cput, 2, packed, -1, free);
	rc = sqlite3_step(t->cput);
	sqlite3_reset(t->cput);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
thread_stmts_free(struct thread_stmts *t)
{
	sqlite3_finalize(t->seen);
	sqlite3_finalize(t->get);
	sqlite3_finalize(t->put);
	sqlite3_finalize(t->cput);
}

int
tindex_threads_give(struct tindex *x, struct mbox *b, const size_t *idx,
    size_t n, struct tern_err *err)
{
	struct thread_stmts t = { NULL, NULL, NULL, NULL };
	size_t *todo = NULL, want = 0;

	for (size_t i = 0; i < n; i++)
		want += b->m[idx[i]].keys && !b->m[idx[i]].keys->tid[0];
	if (want == 0)
		return 0;
	todo = xcalloc(want, sizeof(*todo));
	want = 0;
	for (size_t i = 0; i < n; i++)
		if (b->m[idx[i]].keys && !b->m[idx[i]].keys->tid[0])
			todo[want++] = idx[i];
	if (lock(x, err) != 0) {
		free(todo);
		return -1;
	}
	if (exec(x, "BEGIN IMMEDIATE") != 0) {
		db_fail(x, err, "threads");
		unlock(x);
		free(todo);
		return -1;
	}
	if (sqlite3_prepare_v2(x->db, "SELECT keys FROM cache WHERE base=?",
	    -1, &t.seen, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT subject, n FROM thread WHERE"
	    " key=?", -1, &t.get, NULL) != SQLITE_OK ||
	    /* the first subject that is not empty stays the thread's */
	    sqlite3_prepare_v2(x->db, "INSERT INTO thread VALUES(?,?,1)"
	    " ON CONFLICT(key) DO UPDATE SET n=n+1,"
	    " subject=coalesce(nullif(subject, ''), excluded.subject)", -1,
	    &t.put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "INSERT INTO cache(base, keys)"
	    " VALUES(?,?) ON CONFLICT(base) DO UPDATE SET keys=excluded.keys",
	    -1, &t.cput, NULL) != SQLITE_OK)
		goto rollback;
	for (size_t i = 0; i < want; i++)
		if (thread_give(&t, b->m[todo[i]].base, b->m[todo[i]].keys) !=
		    0)
			goto rollback;
	if (exec(x, "COMMIT") != 0)
		goto rollback;
	thread_stmts_free(&t);
	unlock(x);
	free(todo);
	return 0;
rollback:
	db_fail(x, err, "threads");
	(void)exec(x, "ROLLBACK");
	thread_stmts_free(&t);
	/* what the transaction gave is gone with it */
	for (size_t i = 0; i < want; i++)
		b->m[todo[i]].keys->tid[0] = '\0';
	unlock(x);
	free(todo);
	return -1;
}

int
tindex_commit_box(struct tindex *x, const char *rel, struct mbox *b,
    struct tern_err *err)
{
	sqlite3_stmt *up = NULL, *del = NULL, *gone = NULL, *box = NULL;
	sqlite3_stmt *cput = NULL;
	int64_t id;

	if (!b->synced || (b->modseq == b->committed && !b->index_stale &&
	    !b->dirty && !b->seen_changed))
		return 0;
	if (lock(x, err) != 0)
		return -1;
	if (exec(x, "BEGIN IMMEDIATE") != 0)
		goto fail;
	if ((id = box_row(x, rel, b)) < 0)
		goto rollback;
	/* in place (not REPLACE: that deletes and inserts, index and all) */
	if (sqlite3_prepare_v2(x->db, "INSERT INTO msg VALUES"
	    "(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(mailbox, uid) DO UPDATE SET"
	    " base=excluded.base, flags=excluded.flags,"
	    " keywords=excluded.keywords, modseq=excluded.modseq,"
	    " size=excluded.size, internaldate=excluded.internaldate,"
	    " fname=excluded.fname, in_new=excluded.in_new,"
	    " savedate=excluded.savedate, fts=excluded.fts", -1, &up, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "DELETE FROM msg WHERE mailbox=? AND"
	    " uid=?", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "INSERT OR REPLACE INTO expunged VALUES"
	    "(?,?,?,?,?)", -1, &gone, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "UPDATE mailbox SET uidnext=?,"
	    " highestmodseq=?, guid=?, seen_new=?, seen_cur=?, seen_ul=?"
	    " WHERE id=?", -1, &box, NULL) != SQLITE_OK ||
	    /* what another copy's box learnt is kept */
	    sqlite3_prepare_v2(x->db, "INSERT INTO cache VALUES(?,?,?,?,?)"
	    " ON CONFLICT(base) DO UPDATE SET"
	    " envelope=coalesce(excluded.envelope, envelope),"
	    " structure=coalesce(excluded.structure, structure),"
	    " body=coalesce(excluded.body, body),"
	    " keys=coalesce(excluded.keys, keys)", -1, &cput, NULL) !=
	    SQLITE_OK)
		goto rollback;
	uint64_t since = b->index_stale ? 0 : b->committed;
	for (size_t i = 0; i < b->n; i++) {
		struct mbox_msg *m = &b->m[i];
		if (m->cache_dirty) {
			if (cache_put(cput, m) != 0)
				goto rollback;
			m->cache_dirty = false;
		}
		if (m->modseq <= since && !m->dirty)
			continue;
		m->dirty = false;
		char *kw = bits_to_keywords(b, m->kw);
		sqlite3_bind_int64(up, 1, id);
		sqlite3_bind_int64(up, 2, m->uid);
		sqlite3_bind_text(up, 3, m->base, -1, SQLITE_STATIC);
		sqlite3_bind_int(up, 4, m->flags);
		if (kw)
			sqlite3_bind_text(up, 5, kw, -1, free);
		else
			sqlite3_bind_null(up, 5);
		sqlite3_bind_int64(up, 6, (sqlite3_int64)m->modseq);
		sqlite3_bind_int64(up, 7, (sqlite3_int64)m->vsize);
		sqlite3_bind_int64(up, 8, m->internaldate);
		sqlite3_bind_text(up, 9, m->fname, -1, SQLITE_STATIC);
		sqlite3_bind_int(up, 10, m->in_new);
		sqlite3_bind_int64(up, 11, m->savedate);
		sqlite3_bind_int(up, 12, m->in_fts);
		int rc = sqlite3_step(up);
		sqlite3_reset(up);
		if (rc != SQLITE_DONE)
			goto rollback;
	}
	for (size_t i = 0; i < b->nexp; i++) {
		const struct mbox_expunged *e = &b->exp[i];
		if (e->modseq <= b->committed)
			continue;
		sqlite3_bind_int64(del, 1, id);
		sqlite3_bind_int64(del, 2, e->uid);
		sqlite3_bind_int64(gone, 1, id);
		sqlite3_bind_int64(gone, 2, e->uid);
		sqlite3_bind_int64(gone, 3, (sqlite3_int64)e->modseq);
		sqlite3_bind_text(gone, 4, e->email, -1, SQLITE_STATIC);
		if (e->thread[0])
			sqlite3_bind_text(gone, 5, e->thread, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(gone, 5);
		int r1 = sqlite3_step(del), r2 = sqlite3_step(gone);
		sqlite3_reset(del);
		sqlite3_reset(gone);
		if (r1 != SQLITE_DONE || r2 != SQLITE_DONE)
			goto rollback;
	}
	sqlite3_bind_int64(box, 1, b->uidnext);
	sqlite3_bind_int64(box, 2, (sqlite3_int64)b->modseq);
	sqlite3_bind_text(box, 3, b->guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(box, 4, b->seen_new);
	sqlite3_bind_int64(box, 5, b->seen_cur);
	sqlite3_bind_int64(box, 6, b->seen_ul);
	sqlite3_bind_int64(box, 7, id);
	if (sqlite3_step(box) != SQLITE_DONE)
		goto rollback;
	if (exec(x, "COMMIT") != 0)
		goto rollback;
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	sqlite3_finalize(gone);
	sqlite3_finalize(box);
	sqlite3_finalize(cput);
	b->committed = b->modseq;
	b->index_stale = false;
	b->dirty = false;
	b->cache_pending = 0;
	b->seen_changed = false;
	unlock(x);
	return 0;
rollback:
	db_fail(x, err, "commit");
	(void)exec(x, "ROLLBACK");
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	sqlite3_finalize(gone);
	sqlite3_finalize(box);
	sqlite3_finalize(cput);
	/* written again in full by the next commit */
	b->index_stale = true;
	unlock(x);
	return -1;
fail:
	db_fail(x, err, "commit");
	unlock(x);
	return -1;
}

int
tindex_expunges(struct tindex *x, const char *rel, uint32_t uidvalidity,
    uint64_t modseq, struct mbox_expunged **out, size_t *n, bool *complete,
    struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int64_t id = -1;

	*out = NULL;
	*n = 0;
	*complete = false;
	if (lock(x, err) != 0)
		return -1;
	if (sqlite3_prepare_v2(x->db, "SELECT id, known_since FROM mailbox"
	    " WHERE path=? AND uidvalidity=?", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uidvalidity);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		*complete = modseq >= (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (id < 0) {
		unlock(x);
		return 0;
	}
	if (sqlite3_prepare_v2(x->db, "SELECT uid, modseq, email, thread"
	    " FROM expunged"
	    " WHERE mailbox=? AND modseq>? ORDER BY uid", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		struct mbox_expunged *e = &(*out)[(*n)++];
		const unsigned char *em = sqlite3_column_text(st, 2);
		const unsigned char *th = sqlite3_column_text(st, 3);
		e->uid = (uint32_t)sqlite3_column_int64(st, 0);
		e->modseq = (uint64_t)sqlite3_column_int64(st, 1);
		/* a row from before v4 has none: "" */
		if (str_fmt(e->email, sizeof(e->email), "%s",
		    em ? (const char *)em : "") != 0)
			e->email[0] = '\0';
		if (str_fmt(e->thread, sizeof(e->thread), "%s",
		    th ? (const char *)th : "") != 0)
			e->thread[0] = '\0';
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(*out);
		*out = NULL;
		*n = 0;
		db_fail(x, err, "expunged");
		unlock(x);
		return -1;
	}
	unlock(x);
	return 0;
fail:
	sqlite3_finalize(st);
	db_fail(x, err, "expunged");
	unlock(x);
	return -1;
}

int
tindex_expunged_since(struct tindex *x, const char *rel,
    uint32_t uidvalidity, uint64_t modseq, uint32_t **uids, size_t *n,
    bool *complete, struct tern_err *err)
{
	struct mbox_expunged *e;

	*uids = NULL;
	if (tindex_expunges(x, rel, uidvalidity, modseq, &e, n, complete,
	    err) != 0)
		return -1;
	if (*n) {
		*uids = xcalloc(*n, sizeof(uint32_t));
		for (size_t i = 0; i < *n; i++)
			(*uids)[i] = e[i].uid;
	}
	free(e);
	return 0;
}

int
tindex_rename(struct tindex *x, const char *from, const char *to,
    struct tern_err *err)
{
	if (lock(x, err) != 0)
		return -1;
	/*
	 * The folder and its children (".A" and ".A.*"); rows left at the
	 * new names by folders the index never heard were deleted go first.
	 */
	int fl = (int)strlen(from) + 1, tl = (int)strlen(to) + 1;
	char *q = sqlite3_mprintf("BEGIN;"
	    "CREATE TEMP TABLE IF NOT EXISTS gone(id INTEGER);"
	    "DELETE FROM gone;"
	    "INSERT INTO gone SELECT id FROM mailbox WHERE path=%Q OR"
	    " substr(path,1,%d)=%Q||'.';"
	    "DELETE FROM msg WHERE mailbox IN (SELECT id FROM gone);"
	    "DELETE FROM expunged WHERE mailbox IN (SELECT id FROM gone);"
	    "DELETE FROM mailbox WHERE id IN (SELECT id FROM gone);"
	    "UPDATE mailbox SET path=%Q||substr(path,%d) WHERE path=%Q OR"
	    " substr(path,1,%d)=%Q||'.';"
	    "COMMIT", to, tl, to, to, fl, from, fl, from);
	int rc = exec(x, q);
	sqlite3_free(q);
	if (rc != 0) {
		db_fail(x, err, "rename");
		(void)exec(x, "ROLLBACK");
	}
	unlock(x);
	return rc;
}

int
tindex_drop(struct tindex *x, const char *rel, struct tern_err *err)
{
	if (lock(x, err) != 0)
		return -1;
	char *q = sqlite3_mprintf("BEGIN;"
	    "DELETE FROM msg WHERE mailbox IN (SELECT id FROM mailbox"
	    " WHERE path=%Q);"
	    "DELETE FROM expunged WHERE mailbox IN (SELECT id FROM mailbox"
	    " WHERE path=%Q);"
	    "DELETE FROM mailbox WHERE path=%Q; COMMIT", rel, rel, rel);
	int rc = exec(x, q);
	sqlite3_free(q);
	if (rc != 0) {
		db_fail(x, err, "drop");
		(void)exec(x, "ROLLBACK");
	}
	unlock(x);
	return rc;
}

int
tindex_reset(struct tindex *x, struct tern_err *err)
{
	if (lock(x, err) != 0)
		return -1;
	int rc = exec(x, "BEGIN; DELETE FROM cache; DELETE FROM fts;"
	    " DELETE FROM ftsdoc; DELETE FROM msg; DELETE FROM expunged;"
	    " DELETE FROM mailbox; COMMIT");
	if (rc != 0) {
		db_fail(x, err, "reset");
		(void)exec(x, "ROLLBACK");
	}
	unlock(x);
	return rc;
}

/* --- EmailSubmission records --------------------------------------------- */

/* sql with ? bound to a (and b, if not NULL); *changes: rows changed. */
static int
sub_exec(struct tindex *x, const char *sql, const char *a, const char *b,
    int *changes, struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (lock(x, err) != 0)
		return -1;
	if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
		if (b)
			sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		*changes = rc == 0 ? sqlite3_changes(x->db) : 0;
	}
	sqlite3_finalize(st);
	if (rc != 0)
		db_fail(x, err, "submission");
	unlock(x);
	return rc;
}

int
tindex_sub_add(struct tindex *x, const char *id, const char *obj,
    struct tern_err *err)
{
	int changes;

	return sub_exec(x, "INSERT INTO submission(seq, id, obj) VALUES("
	    "(SELECT coalesce(max(seq), 0) + 1 FROM submission), ?, ?)", id,
	    obj, &changes, err);
}

int
tindex_sub_remove(struct tindex *x, const char *id, bool *found,
    struct tern_err *err)
{
	int changes = 0;
	int rc = sub_exec(x, "UPDATE submission SET gone = 1, obj = '',"
	    " seq = (SELECT max(seq) + 1 FROM submission)"
	    " WHERE id = ? AND gone = 0", id, NULL, &changes, err);

	*found = changes > 0;
	return rc;
}

int
tindex_ident_put(struct tindex *x, const char *id, const char *obj,
    struct tern_err *err)
{
	int changes;

	return sub_exec(x, "INSERT OR REPLACE INTO identity VALUES(?, ?)", id,
	    obj, &changes, err);
}

int
tindex_ident_del(struct tindex *x, const char *id, struct tern_err *err)
{
	int changes;

	return sub_exec(x, "DELETE FROM identity WHERE id = ?", id, NULL,
	    &changes, err);
}

int
tindex_idents(struct tindex *x, struct tindex_sub **rows, size_t *n,
    struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*rows = NULL;
	*n = 0;
	if (lock(x, err) != 0)
		return -1;
	if (sqlite3_prepare_v2(x->db, "SELECT id, obj FROM identity ORDER BY id",
	    -1, &st, NULL) != SQLITE_OK) {
		db_fail(x, err, "identity");
		unlock(x);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*rows = xreallocarray(*rows, *n + 1, sizeof(**rows));
		struct tindex_sub *r = &(*rows)[(*n)++];
		memset(r, 0, sizeof(*r));
		r->id = xstrdup((const char *)sqlite3_column_text(st, 0));
		r->obj = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		db_fail(x, err, "identity");
	unlock(x);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
tindex_subs(struct tindex *x, int64_t since, struct tindex_sub **rows,
    size_t *n, int64_t *top, struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	*top = 0;
	if (lock(x, err) != 0)
		return -1;
	if (sqlite3_prepare_v2(x->db, "SELECT seq, id, obj, gone FROM submission"
	    " WHERE seq > ? ORDER BY seq", -1, &st, NULL) != SQLITE_OK) {
		db_fail(x, err, "submission");
		unlock(x);
		return -1;
	}
	sqlite3_bind_int64(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*rows = xreallocarray(*rows, cap, sizeof(**rows));
		}
		struct tindex_sub *r = &(*rows)[(*n)++];
		r->seq = sqlite3_column_int64(st, 0);
		r->id = xstrdup((const char *)sqlite3_column_text(st, 1));
		r->obj = xstrdup((const char *)sqlite3_column_text(st, 2));
		r->gone = sqlite3_column_int(st, 3) != 0;
		*top = r->seq;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && *n == 0 && sqlite3_prepare_v2(x->db,
	    "SELECT coalesce(max(seq), 0) FROM submission", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			*top = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	unlock(x);
	if (rc != SQLITE_DONE) {
		tindex_subs_free(*rows, *n);
		*rows = NULL;
		*n = 0;
		db_fail(x, err, "submission");
		return -1;
	}
	return 0;
}

void
tindex_subs_free(struct tindex_sub *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].id);
		free(rows[i].obj);
	}
	free(rows);
}

/* --- the full-text index (SEARCH TEXT and BODY) -------------------------- */

#define FTS_READ_MAX (64u << 20)   /* a message's octets read for its text */
#define FTS_TEXT_MAX (4u << 20)    /* its body text kept */
#define FTS_CHUNK 64               /* messages read, then written together */

struct fts_doc {
	struct mbox_msg *m;
	struct buf hdr, body;
};

static int
fts_write(struct tindex *x, struct fts_doc *d, size_t n, struct tern_err *err)
{
	sqlite3_stmt *doc = NULL, *txt = NULL;

	if (lock(x, err) != 0)
		return -1;
	if (exec(x, "BEGIN IMMEDIATE") != 0 ||
	    sqlite3_prepare_v2(x->db, "INSERT OR IGNORE INTO ftsdoc(base)"
	    " VALUES(?)", -1, &doc, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "INSERT INTO fts(rowid, hdr, body)"
	    " VALUES(?,?,?)", -1, &txt, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_text(doc, 1, d[i].m->base, -1, SQLITE_STATIC);
		if (sqlite3_step(doc) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(doc);
		if (sqlite3_changes(x->db) == 0)
			continue;    /* a copy elsewhere was indexed already */
		sqlite3_bind_int64(txt, 1, sqlite3_last_insert_rowid(x->db));
		sqlite3_bind_text(txt, 2, d[i].hdr.data ? d[i].hdr.data : "",
		    (int)d[i].hdr.len, SQLITE_STATIC);
		sqlite3_bind_text(txt, 3, d[i].body.data ? d[i].body.data : "",
		    (int)d[i].body.len, SQLITE_STATIC);
		if (sqlite3_step(txt) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(txt);
	}
	if (exec(x, "COMMIT") != 0)
		goto fail;
	sqlite3_finalize(doc);
	sqlite3_finalize(txt);
	unlock(x);
	return 0;
fail:
	db_fail(x, err, "full-text");
	(void)exec(x, "ROLLBACK");
	sqlite3_finalize(doc);
	sqlite3_finalize(txt);
	unlock(x);
	return -1;
}

/* Writes d[0..n), then frees them. */
static int
fts_flush(struct tindex *x, struct mbox *b, struct fts_doc *d, size_t n,
    struct tern_err *err)
{
	int rc = fts_write(x, d, n, err);

	for (size_t k = 0; k < n; k++) {
		if (rc == 0) {
			d[k].m->in_fts = true;
			d[k].m->dirty = b->dirty = true;   /* its row says so */
		}
		buf_clear(&d[k].hdr);
		buf_clear(&d[k].body);
	}
	return rc;
}

int
tindex_fts_update(struct tindex *x, struct mbox *b, const size_t *idx,
    size_t n, size_t max, size_t *done, struct tern_err *err)
{
	struct fts_doc d[FTS_CHUNK];
	struct buf file;
	size_t nd = 0;
	int rc = 0;

	*done = 0;
	buf_init(&file);
	for (size_t i = 0; i < n && *done < max && rc == 0; i++) {
		struct mbox_msg *m = &b->m[idx[i]];
		if (m->in_fts)
			continue;
		struct tern_err e;
		memset(&e, 0, sizeof(e));
		buf_reset(&file);
		if (mbox_read(b, idx[i], &file, FTS_READ_MAX, &e) != 0)
			continue;    /* gone under us: the next sync tells */
		const char *t = file.data ? file.data : "";
		struct mime_part *root = mime_parse(t, file.len);
		d[nd].m = m;
		buf_init(&d[nd].hdr);
		buf_init(&d[nd].body);
		mime_search_text(t, root, &d[nd].hdr, &d[nd].body, FTS_TEXT_MAX);
		mime_free(root);
		nd++;
		(*done)++;
		if (nd == FTS_CHUNK) {
			rc = fts_flush(x, b, d, nd, err);
			nd = 0;
		}
	}
	if (nd)        /* (only if no chunk failed: the loop stops then) */
		rc = fts_flush(x, b, d, nd, err);
	buf_clear(&file);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
tindex_fts_find(struct tindex *x, const char *needle, bool text,
    char ***bases, size_t *n, struct tern_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	*bases = NULL;
	*n = 0;
	/* LIKE with ESCAPE does not use the trigram index: a needle with
	 * LIKE's wildcards in it is not for the index */
	if (strpbrk(needle, "%_") != NULL)
		return 1;
	if (lock(x, err) != 0)
		return -1;
	if (sqlite3_prepare_v2(x->db, text ?
	    "SELECT d.base FROM fts JOIN ftsdoc d ON d.id=fts.rowid WHERE"
	    " fts.hdr LIKE ?1 UNION SELECT d.base FROM fts JOIN ftsdoc d ON"
	    " d.id=fts.rowid WHERE fts.body LIKE ?1" :
	    "SELECT d.base FROM fts JOIN ftsdoc d ON d.id=fts.rowid WHERE"
	    " fts.body LIKE ?1", -1, &st, NULL) != SQLITE_OK) {
		db_fail(x, err, "full-text");
		unlock(x);
		return -1;
	}
	/*
	 * The trigram tokenizer's LIKE reads a byte past the pattern's end
	 * (SQLite 3.40; valgrind saw it): the copy has zeros to spare.
	 */
	size_t nl = strlen(needle);
	char *pat = xcalloc(nl + 3 + 8, 1);
	pat[0] = '%';
	memcpy(pat + 1, needle, nl);
	pat[nl + 1] = '%';
	sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);   /* used in place */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*bases = xreallocarray(*bases, cap, sizeof(char *));
		}
		(*bases)[(*n)++] = xstrdup((const char *)sqlite3_column_text(st,
		    0));
	}
	sqlite3_finalize(st);
	free(pat);
	if (rc != SQLITE_DONE) {
		db_fail(x, err, "full-text");
		unlock(x);
		for (size_t i = 0; i < *n; i++)
			free((*bases)[i]);
		free(*bases);
		*bases = NULL;
		*n = 0;
		return -1;
	}
	unlock(x);
	if (*n > 1)
		qsort(*bases, *n, sizeof(char *), cmp_str);
	return 0;
}
