/* SPDX-License-Identifier: ISC */
/*
 * dkim.h - layer 1 (pure): DKIM (RFC 6376, with RFC 8463's
 * ed25519-sha256 and RFC 8301's end of rsa-sha1) without the crypto and
 * the DNS: tag lists, DKIM-Signature fields and key records, the
 * canonicalizations (simple and relaxed; a body fed piece by piece),
 * the header fields a signature covers and the text that is signed.
 * The caller hashes and signs or verifies (base/tls.h) and looks the
 * keys up. Messages may have LF or CRLF line ends; canonical forms have
 * CRLF. No I/O; fuzzed (fuzz_dkim).
 */
#ifndef TERN_DKIM_H
#define TERN_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

/* --- tag lists (RFC 6376 3.2) ----------------------------------------- */

#define DKIM_TAGS_MAX 40

struct dkim_tag {
	const char *name, *val;   /* into the text; the value trimmed */
	size_t nlen, vlen;
};

/* -1: not a tag-list, a tag twice, or more than max tags. */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tag *t,
    size_t max, size_t *n);
const struct dkim_tag *dkim_tag_find(const struct dkim_tag *t, size_t n,
    const char *name);

/* --- canonicalization (RFC 6376 3.4) ------------------------------------ */

enum dkim_canon { DKIM_SIMPLE, DKIM_RELAXED };

typedef void (*dkim_out_fn)(void *arg, const void *p, size_t n);

/* A body's canonical form, fed in pieces, given to out; at most limit
 * octets of it (l=), total counts all of it. */
struct dkim_body {
	enum dkim_canon c;
	dkim_out_fn out;
	void *arg;
	uint64_t limit, done, total;
	uint64_t empty;           /* empty lines not given yet */
	bool wsp, line, cr;
};

void dkim_body_init(struct dkim_body *b, enum dkim_canon c, uint64_t limit,
    dkim_out_fn out, void *arg);
void dkim_body_feed(struct dkim_body *b, const char *p, size_t n);
void dkim_body_end(struct dkim_body *b);

/* A header field: its text with its line ends, and its name's length. */
struct dkim_field {
	const char *p;
	size_t len, nlen;
};

/*
 * The fields of msg's header section into *f (malloc'd; lines that are
 * no field are passed over); their number. *body: where the body starts
 * (len if there is none).
 */
size_t dkim_fields(const char *msg, size_t len, struct dkim_field **f,
    size_t *body);
/* Appends the canonical form of a field (CRLF at its end). */
void dkim_canon_field(enum dkim_canon c, const char *p, size_t len,
    size_t nlen, struct buf *out);

/* --- signatures (RFC 6376 3.5) ------------------------------------------ */

enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

#define DKIM_HNAMES_MAX 64

struct dkim_sig {
	enum dkim_alg alg;
	enum dkim_canon hc, bc;
	char d[256], s[64], i[260];   /* d and s lower case */
	char *hnames[DKIM_HNAMES_MAX];   /* h=, lower case, malloc'd */
	size_t nh;
	unsigned char bh[64], b[1024];
	size_t bhlen, blen;
	bool has_l;
	uint64_t l;
	int64_t t, x;             /* -1: none */
};

/*
 * A DKIM-Signature field's value: 0, or -1 with why (a permerror of
 * RFC 6376 6.1.1). Cleared with dkim_sig_clear() either way.
 */
int dkim_sig_parse(const char *val, size_t len, struct dkim_sig *s,
    const char **why);
void dkim_sig_clear(struct dkim_sig *s);

/* ARC's instances (RFC 8617 4.2.1) */
#define ARC_INSTANCE_MAX 50

/*
 * An ARC-Message-Signature field's value (RFC 8617 4.1.2): a DKIM
 * signature without v=, whose i= is its instance (*instance); its h=
 * may not name ARC-Seal. s->i is "@" d=.
 */
int dkim_ams_parse(const char *val, size_t len, struct dkim_sig *s,
    unsigned *instance, const char **why);

/*
 * The text a signature signs (RFC 6376 3.7): the fields names[] name,
 * each name taking the next one of that name from the bottom (none
 * left: nothing), canonicalized by hc; then the signature's own field
 * (sig, with its b= value taken out) canonicalized, without its final
 * CRLF. self: that field's index in f, not to be taken for a name, or
 * -1 (signing: it is not in the message yet).
 */
void dkim_signed_text(const struct dkim_field *f, size_t nf, ssize_t self,
    enum dkim_canon hc, char *const *names, size_t nnames, const char *sig,
    size_t siglen, struct buf *out);

/*
 * A new signature field (relaxed/relaxed, LF line ends) for a message
 * with fields f: h= names each field of the default list the message
 * has, as often as it has it, and From, To, Subject and Date once more
 * (oversigned: none may be added). Ends in "b=", for the value; the
 * names are in *names (malloc'd, lower case, *nnames). instance 0: a
 * DKIM-Signature; else the ARC-Message-Signature of that instance.
 */
void dkim_sign_field(const struct dkim_field *f, size_t nf,
    enum dkim_alg alg, const char *domain, const char *selector, int64_t t,
    const unsigned char bh[32], unsigned instance, struct buf *out,
    char ***names, size_t *nnames);
/* Appends base64 of sig, folded as the end of a field, and "\n". */
void dkim_append_b(struct buf *field, const unsigned char *sig, size_t n);
void dkim_names_free(char **names, size_t n);

/* --- key records (RFC 6376 3.6.1, RFC 8463 4) ------------------------- */

struct dkim_key {
	enum dkim_alg alg;        /* k=rsa or k=ed25519 */
	unsigned char p[1100];
	size_t plen;              /* 0: revoked (p= empty) */
	bool testing;             /* t=y */
	bool strict;              /* t=s: i= in d= itself */
};

/* A key record's text (the TXT strings joined): 0, or -1 with why. */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *k,
    const char **why);

/* Base64 with folding white space in it (b=, bh=, p=): its length in out,
 * or -1. */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out,
    size_t outsz);

#endif
