/* SPDX-License-Identifier: ISC */
/*
 * sortkeys.h - layer 1 (pure): what IMAP SORT and THREAD (RFC 5256, RFC
 * 5957 SORT=DISPLAY) and OBJECTID's THREADID need from a message's header
 * section: the sent date, the base subject, the first address of From,
 * To and Cc, display names, Message-ID and the references. No I/O;
 * fuzzed with the MIME harness (fuzz_mime_parse).
 */
#ifndef TERN_SORTKEYS_H
#define TERN_SORTKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SORT_ID_LEN 18            /* an id of sort_email_id(), with the NUL */

struct sort_keys {
	int64_t sent;             /* Date: in seconds (UTC), or -1 */
	char *subject;            /* base subject, ASCII lower-cased */
	bool reply;               /* Re:/Fwd: were taken off the subject */
	char *from, *to, *cc;     /* addr-mailbox of the first, lower case */
	char *dfrom, *dto;        /* display name, else addr-spec, lower */
	char *msgid;              /* "<id@host>", or NULL */
	char **refs;              /* References, then In-Reply-To if new */
	size_t nrefs;
	char tid[SORT_ID_LEN];    /* the thread the index gave it, or "" */
};

/* From a header section (LF or CRLF line ends). Never fails. */
void sort_keys_parse(const char *hdr, size_t len, struct sort_keys *k);
void sort_keys_clear(struct sort_keys *k);

/*
 * The keys as one string for the index's cache, and back: fields as
 * "<length>:<octets>" ("-" for none), so any octet may be in them.
 * sort_keys_unpack() fills k from what sort_keys_pack() made, or fails
 * (-1, k cleared) on anything else. The refs are bounded (SORT_REFS_MAX).
 */
#define SORT_REFS_MAX 1000
char *sort_keys_pack(const struct sort_keys *k, size_t *len);
int sort_keys_unpack(const char *s, size_t len, struct sort_keys *k);

/*
 * RFC 5256 2.1 base subject of s (len octets) into a new string (ASCII
 * lower-cased); *reply says whether Re:/Fwd:/(fwd) were removed.
 */
char *sort_base_subject(const char *s, size_t len, bool *reply);

/*
 * OBJECTID (RFC 8474) and JMAP ids, 1-255 of [A-Za-z0-9_-]: an Email id
 * from the Maildir base name ("M" + 16 hex digits of a 64-bit hash; a
 * flag change never changes it, hard links in two folders share it, and
 * a rebuilt index gives the same one); a Thread id from the first
 * Message-ID the thread knows (its first reference, else its own, else
 * the Email id: a message without ids is a thread of its own).
 */
void sort_email_id(const char *base, char out[SORT_ID_LEN]);
/* The 64 bits of an id these make (a letter, 16 hex digits). */
uint64_t sort_id_bits(const char *id);
void sort_thread_id(const struct sort_keys *k, const char *base,
    char out[SORT_ID_LEN]);

/*
 * Threads as the index gives them (k->tid, which sort_thread_id() then
 * returns): a message joins the thread of its first reference (or its
 * own Message-ID) only if its base subject is that thread's, or one of
 * the two is empty; another subject starts a thread of its own under
 * the same root (a changed subject is a new conversation). A thread
 * takes SORT_THREAD_MAX messages; the next ones start the next part.
 * sort_thread_root(): false if k names no Message-ID (a thread of the
 * message alone, no row needed); else the hash of the root in *key.
 * sort_thread_split(): the key of that root with another subject.
 * sort_thread_name(): the id of part `part` of a thread; part 0 of an
 * unsplit root is the id sort_thread_id() gives without the index.
 */
#define SORT_THREAD_MAX 500
bool sort_thread_root(const struct sort_keys *k, uint64_t *key);
uint64_t sort_thread_split(uint64_t key, const char *subject);
bool sort_thread_same_subject(const char *a, const char *b);
void sort_thread_name(uint64_t key, uint64_t part, char out[SORT_ID_LEN]);

/* An RFC 5322 date-time ("Tue, 1 Dec 2026 10:00:00 +0100") in seconds. */
int64_t sort_parse_date(const char *s, size_t len);

#endif
