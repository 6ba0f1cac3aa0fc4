/* SPDX-License-Identifier: ISC */
/*
 * tlsa.h - layer 1 (pure): TLSA records (RFC 6698 2.1) as DNS gives them,
 * which of them SMTP may use (RFC 7672 3.1), and their presentation form
 * ("3 1 1 ab12...") for logs and `ternctl tls-policy`.
 */
#ifndef TERN_TLSA_H
#define TERN_TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSA_USAGE_PKIX_TA 0
#define TLSA_USAGE_PKIX_EE 1
#define TLSA_USAGE_DANE_TA 2
#define TLSA_USAGE_DANE_EE 3
#define TLSA_DATA_MAX 4096         /* a longer record is not used */

struct tlsa_rr {
	uint8_t usage, selector, mtype;
	const unsigned char *data;     /* points into the rdata parsed */
	size_t len;
};

/* One TLSA rdata: usage, selector, matching type, then at least one
 * octet of association data. 0, or -1 if malformed. */
int tlsa_parse_rdata(const unsigned char *rdata, size_t len,
    struct tlsa_rr *out);

/*
 * Whether SMTP uses the record (RFC 7672 3.1.3): DANE-TA(2) or DANE-EE(3)
 * only, selector Cert(0) or SPKI(1), matching type Full(0), SHA2-256(1)
 * with 32 octets or SHA2-512(2) with 64.
 */
bool tlsa_usable(const struct tlsa_rr *r);

/* "3 1 1 <hex>", the data cut to max_hex digits with "..." when longer
 * (0: all of it). Always NUL-terminated; truncated to outsz. */
void tlsa_format(const struct tlsa_rr *r, size_t max_hex, char *out,
    size_t outsz);

/* What a TLSA lookup for one MX host gave. */
enum tlsa_lookup {
	TLSA_FOUND,                    /* records */
	TLSA_ABSENT,                   /* NXDOMAIN or no TLSA records */
	TLSA_FAILED,                   /* temporary, or DNSSEC bogus */
};

/* What DANE asks of the connection to that host (RFC 7672 2.2). */
enum tlsa_verdict {
	TLSA_NO_DANE,                  /* the policy as without DANE */
	TLSA_AUTHENTICATE,             /* TLS, and a usable record must
	                                * match the certificate */
	TLSA_TLS_ONLY,                 /* records, none usable: TLS
	                                * required, unauthenticated */
	TLSA_SKIP_HOST,                /* the lookup failed: not this host
	                                * now (it may be an attack) */
};

/*
 * The verdict for one host: DANE only where the MX answer, the host's
 * addresses and the TLSA answer were all proven by DNSSEC (secure);
 * a failed TLSA lookup counts only where it would have (mx and address
 * answers secure). *usable: how many records tlsa_usable() takes.
 */
enum tlsa_verdict tlsa_verdict(bool mx_secure, bool addr_secure,
    enum tlsa_lookup lookup, bool tlsa_secure, const struct tlsa_rr *rrs,
    size_t n, size_t *usable);
/* One line for logs and ternctl: "DANE: TLS required, certificate must
 * match" and so on. */
const char *tlsa_verdict_text(enum tlsa_verdict v);

/* "DANE-EE", "DANE-TA", "PKIX-TA", "PKIX-EE" or "unknown usage". */
const char *tlsa_usage_name(unsigned usage);

#endif
