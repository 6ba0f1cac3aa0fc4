/* SPDX-License-Identifier: ISC */
/*
 * arc.h - layer 1 (pure): ARC (RFC 8617) without the crypto and the
 * DNS: the ARC sets of a message (ARC-Authentication-Results,
 * ARC-Message-Signature, ARC-Seal of each instance), ARC-Seal fields,
 * the text a seal signs, and the fields of a new set. The
 * ARC-Message-Signature is a DKIM signature (dkim.h: dkim_ams_parse,
 * dkim_sign_field with an instance). No I/O; fuzzed (fuzz_dkim).
 */
#ifndef TERN_ARC_H
#define TERN_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/dkim.h"

/* chain validation status (RFC 8617 4.1.3) */
enum arc_cv { ARC_CV_NONE, ARC_CV_PASS, ARC_CV_FAIL };

/* One instance's three fields, indexes into the message's fields. */
struct arc_set {
	size_t aar, ams, as;
};

/*
 * The ARC sets among the fields f (RFC 8617 5.2 steps 1 and 2): 0 with
 * *n sets in sets[0..n) (sets[k] is instance k+1; sets has room for
 * ARC_INSTANCE_MAX), *n 0 when there are none; -1 with why when the
 * chain's form is broken (an instance unreadable or above 50, a field
 * twice for one instance, a set incomplete, a gap).
 */
int arc_sets(const struct dkim_field *f, size_t nf, struct arc_set *sets,
    unsigned *n, const char **why);

/* An ARC field's instance (1..50), -1 if it has none that can be read,
 * 0 if it is no ARC field. */
int arc_field_instance(const struct dkim_field *f);

/* The instance of an ARC-Authentication-Results value ("i=N; ..."), or
 * -1; *rest: where its authserv-id starts. */
int arc_aar_instance(const char *val, size_t len, size_t *rest);

struct arc_seal {
	enum dkim_alg alg;
	unsigned i;
	enum arc_cv cv;
	char d[256], s[64];       /* lower case */
	unsigned char b[1024];
	size_t blen;
	int64_t t;                /* -1: none */
};

/* An ARC-Seal field's value (RFC 8617 4.1.3): 0, or -1 with why. */
int arc_seal_parse(const char *val, size_t len, struct arc_seal *as,
    const char **why);

/*
 * The text the seal of the last of fields[0..3n) signs (RFC 8617
 * 5.1.1): the fields of each set in instance order, AAR, AMS, AS
 * (fields[3k..3k+3) is instance k+1's), relaxed; the last ARC-Seal with
 * its b= value out and without its final CRLF. Appended to out.
 */
void arc_seal_text(const struct dkim_field *fields, unsigned n,
    struct buf *out);

/* "ARC-Seal: i=; a=; cv=; d=; s=; t=; b=", folded, for the value. */
void arc_seal_field(enum dkim_alg alg, unsigned i, enum arc_cv cv,
    const char *domain, const char *selector, int64_t t, struct buf *out);

const char *arc_cv_name(enum arc_cv cv);

#endif
