/* SPDX-License-Identifier: ISC */
/*
 * dmarc.h - layer 1 (pure): DMARC (RFC 7489): the Public Suffix List
 * and organizational domains (3.2), policy records (6.3), alignment
 * (3.1) and the verdict from the DKIM and SPF results. No I/O; fuzzed
 * (fuzz_dmarc).
 */
#ifndef TERN_DMARC_H
#define TERN_DMARC_H

#include <stdbool.h>
#include <stddef.h>

/* The Public Suffix List (publicsuffix.org's format), parsed. */
struct psl;
struct psl *psl_parse(const char *text, size_t len);
void psl_free(struct psl *p);
size_t psl_rules(const struct psl *p);

/*
 * The organizational domain of d (lower case, no final dot) into out:
 * its public suffix and one label more; d itself if d is a public
 * suffix. p NULL: the last two labels.
 */
void psl_org_domain(const struct psl *p, const char *d, char *out,
    size_t outsz);

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

struct dmarc_record {
	enum dmarc_policy p, sp;
	unsigned pct;             /* 0-100 */
	bool adkim_strict, aspf_strict;
};

/* A TXT record: 1 and *r if it is a DMARC record, 0 if it is none, -1 if
 * it is one that cannot be used (RFC 7489 6.6.3: then as none). */
int dmarc_record_parse(const char *txt, struct dmarc_record *r);

/* Whether a and b are aligned: the same domain (strict), or the same
 * organizational domain (relaxed). */
bool dmarc_aligned(const struct psl *p, const char *a, const char *b,
    bool strict);

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR,
	DMARC_PERMERROR };
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
