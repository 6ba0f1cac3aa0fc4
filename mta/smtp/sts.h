/* SPDX-License-Identifier: ISC */
/*
 * sts.h - layer 3: MTA-STS policies (RFC 8461) for the SMTP client:
 * discovery (the _mta-sts TXT record), the policy fetched over HTTPS
 * (certificate chain and the name mta-sts.DOMAIN verified, no redirect
 * followed, 200 and text/plain only), and a cache in memory that keeps
 * a policy for its max_age, refetches it when the record's id
 * changes and refreshes the policies in use before they expire. Lookups
 * for a domain already under way are shared. Loop thread only; owns no
 * files.
 */
#ifndef TERN_STS_H
#define TERN_STS_H

#include <stddef.h>

struct dns;
struct event_base;
struct httpc_tls;
struct mtasts_policy;
struct sts;
struct sts_query;

struct sts_settings {
	unsigned port;                    /* 443; tests: a loopback port */
	unsigned timeout;                 /* seconds, for the fetch */
	const struct httpc_tls *tls;      /* verifying TLS for httpc */
	size_t max_domains;               /* cache entries (0: 1000) */
	unsigned refresh;                 /* seconds a policy in use is kept
	                                   * before it is fetched again, at
	                                   * most half its max_age (0: a
	                                   * day) */
	/* a store that survives restarts (ternd: its kvstore), or NULL:
	 * save a fetched policy (one line, mtasts_cache_format) until it
	 * expires; load one back, NULL if none */
	void (*save)(void *arg, const char *domain, const char *line,
	    long long expires);
	const char *(*load)(void *arg, const char *domain);
	void *store_arg;
	/* a policy that could not be had (TLS-RPT, RFC 8460 4.3.2.1):
	 * result_type "sts-policy-fetch-error", "sts-policy-invalid" or
	 * "sts-webpki-invalid"; or NULL */
	void (*fetch_failed)(void *arg, const char *domain,
	    const char *result_type);
	void *report_arg;
};

struct sts *sts_new(struct event_base *base, struct dns *dns,
    const struct sts_settings *s);
void sts_free(struct sts *s);

/*
 * The policy in force for domain (an A-label name): policy NULL when
 * there is none, and why says so (for logs: "no _mta-sts record", "fetch
 * failed: ..."). A policy of mode none is passed as it is. cb runs once,
 * on the loop, never before sts_get returns, unless cancelled.
 */
typedef void (*sts_cb)(void *arg, const struct mtasts_policy *policy,
    const char *why);
struct sts_query *sts_get(struct sts *s, const char *domain, sts_cb cb,
    void *arg);
void sts_cancel(struct sts_query *q);

#endif
