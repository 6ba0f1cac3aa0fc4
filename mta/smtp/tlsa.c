/* SPDX-License-Identifier: ISC */
/*
 * tlsa.c - layer 1 (pure): TLSA rdata (RFC 6698 2.1: three octets, then
 * the certificate association data) and RFC 7672 3.1's rules for SMTP:
 * the PKIX usages (0 and 1) are not used, because an MX host's
 * certificate is not expected to chain to a public CA; an unknown
 * selector or matching type, or a digest of the wrong length, makes a
 * record unusable, never an error of the whole RRset.
 */
#include "smtp/tlsa.h"

#include <stdio.h>
#include <string.h>

int
tlsa_parse_rdata(const unsigned char *rdata, size_t len, struct tlsa_rr *out)
{
	if (rdata == NULL || len < 4)
		return -1;
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->data = rdata + 3;
	out->len = len - 3;
	return 0;
}

bool
tlsa_usable(const struct tlsa_rr *r)
{
	if (r->usage != TLSA_USAGE_DANE_TA && r->usage != TLSA_USAGE_DANE_EE)
		return false;
	if (r->selector > 1)
		return false;
	switch (r->mtype) {
	case 0:
		return r->len > 0 && r->len <= TLSA_DATA_MAX;
	case 1:
		return r->len == 32;
	case 2:
		return r->len == 64;
	}
	return false;
}

const char *
tlsa_usage_name(unsigned usage)
{
	static const char *const names[] = { "PKIX-TA", "PKIX-EE", "DANE-TA",
		"DANE-EE" };

	return usage < 4 ? names[usage] : "unknown usage";
}

void
tlsa_format(const struct tlsa_rr *r, size_t max_hex, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t n;

	if (outsz == 0)
		return;
	int w = snprintf(out, outsz, "%u %u %u ", r->usage, r->selector,
	    r->mtype);
	if (w < 0 || (size_t)w >= outsz)
		return;
	n = (size_t)w;
	size_t digits = r->len * 2;
	bool cut = max_hex > 0 && digits > max_hex;
	if (cut)
		digits = max_hex;
	for (size_t i = 0; i < digits && n + 1 < outsz; i++, n++) {
		unsigned char c = r->data[i / 2];
		out[n] = hex[(i % 2 == 0) ? c >> 4 : c & 15];
	}
	out[n] = '\0';
	if (cut && n + 3 < outsz)
		memcpy(out + n, "...", 4);
}

enum tlsa_verdict
tlsa_verdict(bool mx_secure, bool addr_secure, enum tlsa_lookup lookup,
    bool tlsa_secure, const struct tlsa_rr *rrs, size_t n, size_t *usable)
{
	*usable = 0;
	if (!mx_secure || !addr_secure)
		return TLSA_NO_DANE;   /* RFC 7672 2.2.1, 2.2.2 */
	if (lookup == TLSA_FAILED)
		return TLSA_SKIP_HOST;
	if (lookup == TLSA_ABSENT || !tlsa_secure)
		return TLSA_NO_DANE;
	for (size_t i = 0; i < n; i++)
		if (tlsa_usable(&rrs[i]))
			(*usable)++;
	return *usable > 0 ? TLSA_AUTHENTICATE : TLSA_TLS_ONLY;
}

const char *
tlsa_verdict_text(enum tlsa_verdict v)
{
	switch (v) {
	case TLSA_NO_DANE:
		break;
	case TLSA_AUTHENTICATE:
		return "DANE: TLS required, the certificate must match a TLSA "
		    "record";
	case TLSA_TLS_ONLY:
		return "DANE: TLS required (TLSA records, none usable), "
		    "unauthenticated";
	case TLSA_SKIP_HOST:
		return "DANE: not used now (TLSA lookup failed, or DNSSEC "
		    "validation failed)";
	}
	return "no DANE";
}
