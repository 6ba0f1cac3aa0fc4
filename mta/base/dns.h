/* SPDX-License-Identifier: ISC */
/*
 * dns.h - layer 2: asynchronous DNS on the event loop (libunbound).
 * MX lookups for delivery (sorted, null MX recognised, implicit MX when a
 * domain has none), A/AAAA lookups of hosts, TXT records (DKIM keys), and
 * any A, AAAA, MX, TXT or PTR records as text (plugins). Callbacks run on
 * the loop thread, never before the call that started them returns; a
 * cancelled query's callback never runs (and what libunbound still has of
 * it is taken back). A query not answered within the timeout is cancelled
 * and answered DNS_TEMP.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_query;
struct tlsa_rr;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,    /* the name does not exist: permanent */
	DNS_NODATA,      /* exists, no such records */
	DNS_NULL_MX,     /* RFC 7505: accepts no mail */
	DNS_TEMP,        /* server failure, timeout: try later */
};

/*
 * resolver: NULL for /etc/resolv.conf, else "ADDRESS" or "ADDRESS:PORT"
 * ("127.0.0.1:5353", "[::1]:53"). trust_anchor: a file of DS or DNSKEY
 * records (Debian's /usr/share/dns/root.key) to validate answers with
 * DNSSEC from, or NULL: no validation, every answer insecure. trust_ad:
 * instead of that, believe the AD bit of resolver (which must then be
 * given) in the *_sec lookups. NULL with err on failure.
 */
struct dns *dns_new(struct event_base *base, const char *resolver,
    unsigned timeout_sec, const char *trust_anchor, bool trust_ad, char *err,
    size_t errsz);
/* Whether the *_sec lookups can say "secure" (a trust anchor was loaded,
 * or the resolver's AD bit is trusted). */
bool dns_validating(const struct dns *d);
/* The latter. */
bool dns_trusts_resolver(const struct dns *d);
void dns_free(struct dns *d);

/* hosts: ordered MX host names (or the domain itself: implicit MX). */
typedef void (*dns_mx_cb)(void *arg, enum dns_status st,
    char *const *hosts, size_t nhosts);
struct dns_query *dns_mx(struct dns *d, const char *domain, dns_mx_cb cb,
    void *arg);

/* The same without the implicit MX: DNS_NODATA when there is no MX
 * (SPF's mx mechanism, RFC 7208 5.4). */
struct dns_query *dns_mx_records(struct dns *d, const char *domain,
    dns_mx_cb cb, void *arg);

/* addrs: AAAA then A, port 0. */
typedef void (*dns_addr_cb)(void *arg, enum dns_status st,
    const struct sockaddr_storage *addrs, size_t naddrs);
struct dns_query *dns_addrs(struct dns *d, const char *host, dns_addr_cb cb,
    void *arg);

/* txts: each TXT record's strings joined (mx_txt_rdata); malformed ones
 * left out. */
typedef void (*dns_txt_cb)(void *arg, enum dns_status st,
    char *const *txts, size_t ntxts);
struct dns_query *dns_txt(struct dns *d, const char *name, dns_txt_cb cb,
    void *arg);

/*
 * Records of one type as text, as `dig +short` shows them: A and AAAA
 * addresses, MX "PREFERENCE HOST", TXT strings joined, PTR names (no
 * final dot); malformed ones left out. Types: DNS_RR_* (dns_rr_type()).
 */
#define DNS_RR_A 1
#define DNS_RR_PTR 12
#define DNS_RR_MX 15
#define DNS_RR_TXT 16
#define DNS_RR_AAAA 28
#define DNS_RR_DNSKEY 48       /* only asked, never shown as text */
struct dns_query *dns_records(struct dns *d, const char *name, int type,
    dns_txt_cb cb, void *arg);
/* "A", "AAAA", "MX", "TXT", "PTR" (any case) -> DNS_RR_*, else -1. */
int dns_rr_type(const char *name);

/*
 * The same lookups for DANE (RFC 7672 2.1), saying whether the answer,
 * records or their absence, was proven by DNSSEC (secure); without a
 * trust anchor never. An answer that fails validation (bogus) is
 * DNS_TEMP, and the reason is logged. The implicit MX of a domain
 * without MX records is as secure as the proof that it has none.
 */
typedef void (*dns_mx_sec_cb)(void *arg, enum dns_status st, bool secure,
    char *const *hosts, size_t nhosts);
struct dns_query *dns_mx_sec(struct dns *d, const char *domain,
    dns_mx_sec_cb cb, void *arg);
/* secure: both the AAAA and the A answer were. canon: where the host
 * is a CNAME alias, the name its chain ends at (no final dot), else
 * NULL; valid during the callback. */
typedef void (*dns_addr_sec_cb)(void *arg, enum dns_status st, bool secure,
    const char *canon, const struct sockaddr_storage *addrs, size_t naddrs);
struct dns_query *dns_addrs_sec(struct dns *d, const char *host,
    dns_addr_sec_cb cb, void *arg);
/* TLSA records (smtp/tlsa.h) of name ("_25._tcp.mx.example.org");
 * malformed ones left out; rrs valid during the callback. */
typedef void (*dns_tlsa_cb)(void *arg, enum dns_status st, bool secure,
    const struct tlsa_rr *rrs, size_t n);
struct dns_query *dns_tlsa(struct dns *d, const char *name, dns_tlsa_cb cb,
    void *arg);
#define DNS_RR_TLSA 52

/*
 * The start's self-check: the root zone's DNSKEY records asked as the
 * *_sec lookups ask. DNS_TEMP when they could not be had (or failed
 * validation); secure false when the resolver did not prove them.
 */
typedef void (*dns_check_cb)(void *arg, enum dns_status st, bool secure);
struct dns_query *dns_check(struct dns *d, dns_check_cb cb, void *arg);

void dns_cancel(struct dns_query *q);

/* The loop it answers on. */
struct event_base *dns_base(const struct dns *d);

#endif
