/* SPDX-License-Identifier: ISC */
/*
 * maildir.h - layer 1 (pure): Maildir naming rules shared by ternd's
 * delivery and ternmail. Unique file names (the caller passes time, pid,
 * sequence and host: no clock here), the ":2,FLAGS" info suffix, and the
 * turning of an address into safe path components.
 */
#ifndef TERN_MAILDIR_H
#define TERN_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAILDIR_NAME_MAX 255

struct maildir_name_parts {
	int64_t sec;
	long usec;
	long pid;
	uint64_t seq;
	const char *host;
	uint64_t size;     /* the file's size in octets, for ",S=" */
	const char *tag;   /* delivery tag (letters/digits) or NULL */
};

/*
 * "<sec>.M<usec>P<pid>Q<seq>[T<tag>].<host>,S=<size>", with '/' and ':'
 * in the host written as \057 and \072 (the Maildir rule). ternd's tag is
 * "<queue id>R<recipient index>": after a crash it finds deliveries that
 * happened but were not yet recorded in the queue. 0, or -1 if too long.
 */
int maildir_unique_name(char *dst, size_t dstsz,
    const struct maildir_name_parts *p);

/*
 * Turns an address local part into a mailbox name: lower-cased, cut at the
 * first extension delimiter (if delim is not '\0': "user+tag" -> "user"),
 * and checked to be a safe single path component (only letters, digits
 * and . - _ = ' & # $ ^ ` { } | ~ * ?, and non-ASCII characters of valid
 * UTF-8, normalized to NFC; no leading '.', no "..", not empty, at most 64
 * octets). 0, or -1 if it cannot be one.
 */
int maildir_local_normalize(const char *local, char delim, char *out,
    size_t outsz);

/*
 * Lower-cases a domain for use as a directory name, U-labels as A-labels;
 * refuses address literals and anything that is not letters, digits, '-'
 * and inner dots (once in ASCII form).
 */
int maildir_domain_normalize(const char *domain, char *out, size_t outsz);

/*
 * The Maildir root of a login name: "alice@example.org" is
 * mail_dir/example.org/alice, "alice" is mail_dir/<default_domain>/alice
 * (the one delivery to alice@<first domain> uses). 0, or -1 if the name
 * cannot be one.
 */
int maildir_user_root(const char *mail_dir, const char *default_domain,
    const char *user, char *out, size_t outsz);

/*
 * Splits a Maildir file name: the unique part and, when present, the flags
 * after ":2,". Flags must be upper-case letters in ASCII order without
 * repeats (lower-case experimental flags are kept but not checked for
 * order). Returns 0, or -1 for a name that is not a Maildir message name.
 */
struct maildir_name_info {
	size_t unique_len;
	bool has_info;
	char flags[27];
};
int maildir_parse_name(const char *name, struct maildir_name_info *info);

/*
 * A Maildir++ folder name ("Junk", "Lists.tern"): letters, digits and
 * . - _ only, no leading, trailing or double dot, at most 100 octets.
 */
bool maildir_folder_valid(const char *name);

#endif
