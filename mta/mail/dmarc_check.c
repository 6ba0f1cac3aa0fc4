/* SPDX-License-Identifier: ISC */
/*
 * dmarc_check.c - layer 2: DMARC over asynchronous DNS (dmarc_check.h).
 * One TXT lookup at _dmarc.<From: domain>, a second at the
 * organizational domain's when the first has no record; then the
 * DKIM and SPF results, aligned by the record's modes, give the verdict.
 */
#include "mail/dmarc_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dns.h"
#include "base/util.h"

struct dmarc_check {
	struct dns *dns;
	const struct psl *psl;
	struct dmarc_verdict v;
	char org[256];
	bool at_org;              /* the lookup out is the org domain's */
	char (*dkim_pass)[256];   /* d= of the DKIM signatures that passed */
	size_t npass;
	enum spf_result spf;
	char spf_domain[256];
	struct dns_query *q;
	dmarc_check_cb cb;
	void *arg;
};

void
dmarc_check_cancel(struct dmarc_check *c)
{
	if (c == NULL)
		return;
	if (c->q)
		dns_cancel(c->q);
	free(c->dkim_pass);
	free(c);
}

static void
finish(struct dmarc_check *c)
{
	dmarc_check_cb cb = c->cb;
	void *arg = c->arg;
	struct dmarc_verdict v = c->v;

	c->q = NULL;
	dmarc_check_cancel(c);
	cb(arg, &v);
}

static void ask(struct dmarc_check *c, const char *domain);

static void
on_txt(void *arg, enum dns_status st, char *const *txts, size_t n)
{
	struct dmarc_check *c = arg;
	struct dmarc_record r, got = { DMARC_P_NONE, DMARC_P_NONE, 100, false,
		false };
	size_t found = 0;

	c->q = NULL;
	if (st == DNS_TEMP) {
		c->v.result = DMARC_TEMPERROR;
		finish(c);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (dmarc_record_parse(txts[i], &r) == 1) {
			got = r;
			found++;
		}
	if (found != 1) {
		/* none, or more than one (RFC 7489 6.6.3: as none) */
		if (!c->at_org && strcmp(c->org, c->v.from) != 0) {
			c->at_org = true;
			ask(c, c->org);
			return;
		}
		c->v.result = DMARC_NONE;
		finish(c);
		return;
	}
	(void)snprintf(c->v.record_domain, sizeof(c->v.record_domain), "%s",
	    c->at_org ? c->org : c->v.from);
	/* sp= for a subdomain of the organizational domain's record */
	c->v.policy = c->at_org ? got.sp : got.p;
	c->v.pct = got.pct;
	for (size_t i = 0; i < c->npass && !c->v.dkim_aligned; i++)
		c->v.dkim_aligned = dmarc_aligned(c->psl, c->dkim_pass[i],
		    c->v.from, got.adkim_strict);
	c->v.spf_aligned = c->spf == SPF_PASS && c->spf_domain[0] &&
	    dmarc_aligned(c->psl, c->spf_domain, c->v.from, got.aspf_strict);
	c->v.result = c->v.dkim_aligned || c->v.spf_aligned ? DMARC_PASS :
	    DMARC_FAIL;
	finish(c);
}

static void
ask(struct dmarc_check *c, const char *domain)
{
	char name[300];

	(void)snprintf(name, sizeof(name), "_dmarc.%s", domain);
	c->q = dns_txt(c->dns, name, on_txt, c);
}

struct dmarc_check *
dmarc_check_start(struct dns *dns, const struct psl *psl, const char *from,
    const struct dkim_verdict *dkim, size_t ndkim, enum spf_result spf,
    const char *spf_domain, dmarc_check_cb cb, void *arg)
{
	struct dmarc_check *c = xcalloc(1, sizeof(*c));

	c->dns = dns;
	c->psl = psl;
	c->cb = cb;
	c->arg = arg;
	(void)snprintf(c->v.from, sizeof(c->v.from), "%s", from);
	ascii_lower(c->v.from);
	psl_org_domain(psl, c->v.from, c->org, sizeof(c->org));
	c->dkim_pass = xcalloc(ndkim + 1, sizeof(*c->dkim_pass));
	for (size_t i = 0; i < ndkim; i++)
		if (dkim[i].result == DKIM_PASS)
			(void)snprintf(c->dkim_pass[c->npass++], 256, "%s",
			    dkim[i].domain);
	c->spf = spf;
	(void)snprintf(c->spf_domain, sizeof(c->spf_domain), "%s",
	    spf_domain ? spf_domain : "");
	ask(c, c->v.from);
	return c;
}
