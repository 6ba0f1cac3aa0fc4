/* SPDX-License-Identifier: ISC */
/*
 * spf.h - layer 1 (pure): SPF (RFC 7208) records, macros and address
 * matching; mail/spf_check.c evaluates a record over DNS. No I/O;
 * fuzzed (fuzz_spf).
 */
#ifndef TERN_SPF_H
#define TERN_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum spf_result { SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL,
	SPF_TEMPERROR, SPF_PERMERROR };

enum spf_mech { SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4,
	SPF_IP6, SPF_EXISTS };

#define SPF_TERMS_MAX 64

struct spf_term {
	enum spf_mech mech;
	enum spf_result qualifier;   /* PASS, FAIL, SOFTFAIL or NEUTRAL */
	char *domain;             /* its domain-spec, unexpanded; or NULL */
	int cidr4, cidr6;         /* prefix lengths (32 and 128: none given) */
	unsigned char ip[16];     /* ip4 (4 octets) and ip6 */
};

struct spf_record {
	struct spf_term t[SPF_TERMS_MAX];
	size_t n;
	char *redirect, *exp;     /* modifiers, unexpanded; or NULL */
};

/*
 * A TXT record: 1 and *r if it is an SPF record ("v=spf1" then a space
 * or the end, case ignored), 0 if it is none, -1 if it is one that does
 * not parse (permerror, with why). r is cleared by spf_record_clear()
 * either way.
 */
bool spf_is_record(const char *txt);
int spf_record_parse(const char *txt, struct spf_record *r, const char **why);
void spf_record_clear(struct spf_record *r);

/* What macros expand to (RFC 7208 7.3). */
struct spf_macros {
	const char *sender;       /* "local@domain" (MAIL FROM, or
	                           * postmaster@ the HELO name) */
	const char *domain;       /* the domain being checked now (%{d}) */
	const unsigned char *ip;  /* the client's address */
	bool v6;
	const char *helo;         /* %{h} */
	const char *receiver;     /* %{r}, explanations only */
	int64_t now;              /* %{t} */
	const char *p;            /* %{p}, the validated name; NULL: "unknown" */
};

/* Whether a domain-spec uses %{p} (its name must be validated first). */
bool spf_uses_p(const char *spec);

/*
 * Expands a domain-spec (exp false) or an explanation (exp true: %{c},
 * %{r}, %{t} allowed) into out (appended, NUL-terminated): 0, or -1 for
 * a macro that is not one (permerror). A domain longer than 253 octets
 * loses labels from the left until it fits (RFC 7208 7.3).
 */
int spf_expand(const char *spec, const struct spf_macros *m, bool exp,
    struct buf *out);

/* Whether ip (16 octets if v6, else 4) is in net/bits. */
bool spf_ip_in(const unsigned char *ip, bool v6, const unsigned char *net,
    int bits);

const char *spf_result_name(enum spf_result r);

/*
 * The identity checked for a transaction (RFC 7208 2.4): the domain of
 * MAIL FROM's path ("<local@domain>", or a bare address), with
 * "postmaster" for an empty local part; for <> (or a path without a
 * domain) the HELO name, as postmaster@ it (2.3). domain lower case.
 * false when there is no name to check (no HELO either).
 */
bool spf_identity(const char *path, const char *helo, char *domain,
    size_t domainsz, char *sender, size_t sendersz);

#endif
