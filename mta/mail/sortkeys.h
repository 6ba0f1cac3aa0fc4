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

struct sort_keys {
	int64_t sent;             /* Date: in seconds (UTC), or -1 */
	char *subject;            /* base subject, ASCII lower-cased */
	bool reply;               /* Re:/Fwd: were taken off the subject */
	char *from, *to, *cc;     /* addr-mailbox of the first, lower case */
	char *dfrom, *dto;        /* display name, else addr-spec, lower */
	char *msgid;              /* "<id@host>", or NULL */
	char **refs;              /* References, then In-Reply-To if new */
	size_t nrefs;
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
#define SORT_ID_LEN 18            /* with the NUL */
void sort_email_id(const char *base, char out[SORT_ID_LEN]);
/* The 64 bits of an id these make (a letter, 16 hex digits). */
uint64_t sort_id_bits(const char *id);
void sort_thread_id(const struct sort_keys *k, const char *base,
    char out[SORT_ID_LEN]);

/* An RFC 5322 date-time ("Tue, 1 Dec 2026 10:00:00 +0100") in seconds. */
int64_t sort_parse_date(const char *s, size_t len);

#endif
