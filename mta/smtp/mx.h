/* SPDX-License-Identifier: ISC */
/*
 * mx.h - layer 1 (pure): MX records as DNS gives them (RFC 1035 wire
 * rdata) into host names ordered for delivery (RFC 5321 5.1): lowest
 * preference first, equal preferences in random order (the caller passes
 * the randomness), and the null MX of RFC 7505 recognised.
 */
#ifndef TERN_MX_H
#define TERN_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MX_NAME_MAX 255

struct mx_entry {
	unsigned pref;
	char host[MX_NAME_MAX + 1];    /* without the trailing dot; "" = root */
	uint32_t shuffle;              /* random tie-breaker */
};

/*
 * Parses one MX rdata (2-octet preference, uncompressed wire name).
 * 0, or -1 if malformed.
 */
int mx_parse_rdata(const unsigned char *rdata, size_t len, struct mx_entry *e);
/* The same for SPF's mx mechanism: any visible characters in labels
 * (RFC 7208 7.1 lets a domain-spec hold them). */
int mx_parse_rdata_any(const unsigned char *rdata, size_t len,
    struct mx_entry *e);

/*
 * One TXT rdata (character-strings, each a length octet and its octets)
 * as one string, the pieces joined (RFC 7208 3.3, RFC 6376 3.6.2.2): a
 * new string, or NULL if malformed. A NUL octet becomes DEL (0x7f), which
 * no record's syntax allows.
 */
char *mx_txt_rdata(const unsigned char *rdata, size_t len);

/* Sorts by preference; equal preferences by their shuffle values. */
void mx_sort(struct mx_entry *e, size_t n);

/* RFC 7505: exactly one record, preference 0, host "." (root). */
bool mx_is_null(const struct mx_entry *e, size_t n);

/* Wire-format name (uncompressed) to text without the final dot. */
int mx_wire_name(const unsigned char *p, size_t len, char *out, size_t outsz,
    size_t *used);

/*
 * The name a DNS blocklist is asked (RFC 5782): an IPv4 address's octets
 * reversed, an IPv6 address's nibbles reversed (an IPv4-mapped one as
 * IPv4), or a domain as it is, then ".zone". 0, or -1 if what is neither
 * or the name would be too long.
 */
int mx_dnsbl_name(const char *what, const char *zone, char *out,
    size_t outsz);

#endif
