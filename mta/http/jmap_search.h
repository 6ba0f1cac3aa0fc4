/* SPDX-License-Identifier: ISC */
/*
 * jmap_search.h - layer 3 helper of Email/query: the filter conditions
 * that need a message's text (text, body, from, to, cc, bcc, subject,
 * header, hasAttachment; RFC 8621 4.4.1), and the sort keys that need
 * its header (from, to, subject), for every message of one folder. Runs
 * on an I/O worker inside the folder's job; what it gives is owned by
 * the caller and read on the loop afterwards.
 */
#ifndef TERN_JMAP_SEARCH_H
#define TERN_JMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mbox;
struct tindex;

enum jleaf_kind { JL_TEXT, JL_BODY, JL_FROM, JL_TO, JL_CC, JL_BCC,
	JL_SUBJECT, JL_HEADER, JL_ATTACH };

struct jleaf {
	enum jleaf_kind kind;
	char *needle;             /* NULL: JL_ATTACH, or a header's presence */
	char *name;               /* JL_HEADER's field name */
};

/* The header sort keys of one message (RFC 5256 base subject; display
 * names, else addresses; lower case). */
struct jsort_row {
	uint32_t uid;
	char *from, *to, *subject;
};

struct jsearch_out {
	uint32_t **uids;          /* per leaf: the UIDs that match, ascending */
	size_t *n;
	struct jsort_row *rows;   /* by UID, when asked for */
	size_t nrows;
};

/*
 * Leaves l[0..nl) against every message of mb not \Deleted (x: the
 * account's index, for the full-text search), and the sort rows if
 * rows. Never fails: a message that cannot be read matches no leaf.
 */
void jsearch_folder(struct mbox *mb, struct tindex *x, const struct jleaf *l,
    size_t nl, bool rows, struct jsearch_out *out);
void jsearch_out_clear(struct jsearch_out *o, size_t nl);

#endif
