/* SPDX-License-Identifier: ISC */
/*
 * dmarc_check.h - layer 2: DMARC (RFC 7489) of a received message on
 * the event loop: its policy record (at _dmarc.<From: domain>, else at
 * its organizational domain's), and the verdict from the DKIM and SPF
 * results already known. Loop thread only.
 */
#ifndef TERN_DMARC_CHECK_H
#define TERN_DMARC_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/dmarc.h"
#include "mail/dkim_verify.h"
#include "mail/spf.h"

struct dns;
struct dmarc_check;

struct dmarc_verdict {
	enum dmarc_result result;
	enum dmarc_policy policy;  /* the one that applies (sp= for a
	                            * subdomain of where the record is) */
	unsigned pct;
	char from[256];            /* the From: domain */
	char record_domain[256];   /* where the record was ("" none) */
	bool dkim_aligned, spf_aligned;
};

typedef void (*dmarc_check_cb)(void *arg, const struct dmarc_verdict *v);

/* psl may be NULL (the last two labels are the organizational domain).
 * cb never runs before this returns. */
struct dmarc_check *dmarc_check_start(struct dns *dns, const struct psl *psl,
    const char *from, const struct dkim_verdict *dkim, size_t ndkim,
    enum spf_result spf, const char *spf_domain, dmarc_check_cb cb,
    void *arg);
void dmarc_check_cancel(struct dmarc_check *c);

#endif
