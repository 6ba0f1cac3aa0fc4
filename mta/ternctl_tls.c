/* SPDX-License-Identifier: ISC */
/*
 * ternctl_tls.c - `ternctl tls-policy DOMAIN`: what ternd's SMTP client
 * would do about TLS for mail to DOMAIN, and why. It asks the configured
 * resolver, validating with the configured trust anchor as ternd does,
 * walks the MX hosts in order and takes for each the verdict the client
 * takes (tlsa_verdict(), smtp/tlsa.h), and the MTA-STS policy it would
 * fetch (smtp/sts.c, the same code). Nothing is sent to any host.
 */
#include "ternctl_tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/dns.h"
#include "base/httpc.h"
#include "base/intl.h"
#include "base/tls.h"
#include "base/util.h"
#include "lua/config.h"
#include "smtp/mtasts.h"
#include "smtp/smtp_parse.h"
#include "smtp/sts.h"
#include "smtp/tlsa.h"

#define EX_CONFIG 78

/* One answer, copied out of the callback. */
struct answer {
	bool done, secure;
	enum dns_status st;
	char **names;                  /* MX hosts */
	size_t nnames;
	char addrs[8][INET6_ADDRSTRLEN];
	size_t naddrs, naddrs_all;
	struct tlsa_rr *rrs;           /* data copied too */
	size_t nrrs;
	char *canon;                   /* addresses: the CNAME target */
};

static void
answer_clear(struct answer *a)
{
	for (size_t i = 0; i < a->nnames; i++)
		free(a->names[i]);
	free(a->names);
	for (size_t i = 0; i < a->nrrs; i++)
		free((void *)a->rrs[i].data);
	free(a->rrs);
	free(a->canon);
	memset(a, 0, sizeof(*a));
}

static void
on_mx(void *arg, enum dns_status st, bool secure, char *const *hosts,
    size_t n)
{
	struct answer *a = arg;

	a->st = st;
	a->secure = secure;
	a->names = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		a->names[i] = xstrdup(hosts[i]);
	a->nnames = n;
	a->done = true;
}

static void
on_addrs(void *arg, enum dns_status st, bool secure, const char *canon,
    const struct sockaddr_storage *addrs, size_t n)
{
	struct answer *a = arg;

	a->st = st;
	a->secure = secure;
	a->canon = canon ? xstrdup(canon) : NULL;
	a->naddrs_all = n;
	for (size_t i = 0; i < n && a->naddrs < 8; i++) {
		const void *p = addrs[i].ss_family == AF_INET6 ?
		    (const void *)&((const struct sockaddr_in6 *)&addrs[i])->
		    sin6_addr : (const void *)&((const struct sockaddr_in *)
		    &addrs[i])->sin_addr;
		if (inet_ntop(addrs[i].ss_family, p, a->addrs[a->naddrs],
		    sizeof(a->addrs[0])) != NULL)
			a->naddrs++;
	}
	a->done = true;
}

static void
on_tlsa(void *arg, enum dns_status st, bool secure, const struct tlsa_rr *rrs,
    size_t n)
{
	struct answer *a = arg;

	a->st = st;
	a->secure = secure;
	a->rrs = xcalloc(n ? n : 1, sizeof(*a->rrs));
	for (size_t i = 0; i < n; i++) {
		unsigned char *d = xmalloc(rrs[i].len);
		memcpy(d, rrs[i].data, rrs[i].len);
		a->rrs[i] = rrs[i];
		a->rrs[i].data = d;
	}
	a->nrrs = n;
	a->done = true;
}

struct sts_answer {
	bool done, have;
	struct mtasts_policy p;
	char why[200];
};

static void
on_sts(void *arg, const struct mtasts_policy *p, const char *why)
{
	struct sts_answer *a = arg;

	a->have = p != NULL;
	if (p)
		a->p = *p;
	(void)str_copy(a->why, sizeof(a->why), why);
	a->done = true;
}

static struct bufferevent *
sts_socket(void *arg, struct event_base *base, const char *host)
{
	return tls_client_socket(arg, base, host, true);
}

static bool
wait_for(struct event_base *base, struct answer *a)
{
	while (!a->done && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	return a->done;
}

/* How an answer was proven: validated here, or the resolver said so. */
static const char *
secure_text(const struct dns *dns)
{
	return dns_trusts_resolver(dns) ? "secure, the resolver's AD bit" :
	    "secure, DNSSEC";
}

static const char *
secure_paren(const struct dns *dns)
{
	return dns_trusts_resolver(dns) ? " (secure, the resolver's AD bit)" :
	    " (secure, DNSSEC)";
}

static const char *
status_text(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "found";
	case DNS_NXDOMAIN:
		return "no such domain";
	case DNS_NODATA:
		return "none";
	case DNS_NULL_MX:
		return "null MX: the domain takes no mail (RFC 7505)";
	case DNS_TEMP:
		return "lookup failed (temporary, or DNSSEC validation failed)";
	}
	return "?";
}

/* One host: its addresses, its TLSA records, the verdict. 0, or 1 if a
 * lookup could not finish. */
static int
show_host(struct event_base *base, struct dns *dns, const char *host,
    unsigned port, bool mx_secure, bool dane, const struct mtasts_policy *sts)
{
	struct answer a = { 0 };
	char name[400];
	int rc = 0;
	bool sts_enforce = sts && sts->mode == MTASTS_ENFORCE;

	printf("  %s\n", host);
	if (sts && !mtasts_mx_match(sts, host)) {
		printf("    MTA-STS: not an mx of the policy\n");
		if (sts_enforce) {
			printf("    => not used (MTA-STS enforce)\n");
			return 0;
		}
		sts_enforce = false;
	} else if (sts)
		printf("    MTA-STS: an mx of the policy\n");
	const char *fallback = sts_enforce ? "MTA-STS: TLS required, the "
	    "certificate verified for this name" : "opportunistic TLS";
	(void)dns_addrs_sec(dns, host, on_addrs, &a);
	if (!wait_for(base, &a))
		return 1;
	bool addr_secure = a.secure;
	char *canon = a.canon ? xstrdup(a.canon) : NULL;
	if (canon)
		printf("    an alias (CNAME) of %s\n", canon);
	printf("    addresses: ");
	if (a.st != DNS_OK)
		printf("%s\n", status_text(a.st));
	else {
		for (size_t i = 0; i < a.naddrs; i++)
			printf("%s%s", i ? " " : "", a.addrs[i]);
		printf("%s (%s)\n", a.naddrs_all > a.naddrs ? " ..." : "",
		    addr_secure ? secure_text(dns) : "insecure");
	}
	enum dns_status ast = a.st;
	answer_clear(&a);
	if (ast != DNS_OK) {
		printf("    => not used: no address\n");
		free(canon);
		return ast == DNS_TEMP;
	}
	if (!dane) {
		printf("    => %s\n", sts_enforce ? fallback :
		    "as the policy says (no DANE)");
		free(canon);
		return 0;
	}
	if (!mx_secure || !addr_secure) {
		printf("    => no DANE: the %s answer is not secure (RFC 7672 "
		    "2.2); %s\n", mx_secure ? "address" : "MX", fallback);
		free(canon);
		return 0;
	}
	/* RFC 7672 2.2.2: the alias target's records first, then the
	 * host's own when the target securely has none */
	for (int step = canon ? 0 : 1; step < 2; step++) {
		(void)snprintf(name, sizeof(name), "_%u._tcp.%s", port,
		    step == 0 ? canon : host);
		(void)dns_tlsa(dns, name, on_tlsa, &a);
		if (!wait_for(base, &a)) {
			free(canon);
			return 1;
		}
		printf("    TLSA %s: %s%s\n", name, status_text(a.st),
		    a.st == DNS_OK ? (a.secure ? secure_paren(dns) :
		    " (insecure: not used)") : "");
		if (step == 1 || !a.secure || (a.st != DNS_NXDOMAIN &&
		    a.st != DNS_NODATA))
			break;
		answer_clear(&a);
	}
	free(canon);
	for (size_t i = 0; i < a.nrrs; i++) {
		char text[200];
		tlsa_format(&a.rrs[i], 64, text, sizeof(text));
		printf("      %s  %s%s\n", text, tlsa_usage_name(
		    a.rrs[i].usage), tlsa_usable(&a.rrs[i]) ? "" :
		    " (not usable for SMTP)");
	}
	size_t usable;
	enum tlsa_verdict v = tlsa_verdict(mx_secure, addr_secure,
	    a.st == DNS_OK ? TLSA_FOUND : a.st == DNS_TEMP ? TLSA_FAILED :
	    TLSA_ABSENT, a.secure, a.rrs, a.nrrs, &usable);
	printf("    => %s%s%s\n", tlsa_verdict_text(v), v == TLSA_NO_DANE ?
	    ": " : "", v == TLSA_NO_DANE ? fallback : "");
	if (v == TLSA_SKIP_HOST)
		rc = 1;
	answer_clear(&a);
	return rc;
}

static const char *
policy_text(int pol)
{
	switch (pol) {
	case 0:
		return "STARTTLS when offered, certificate not checked";
	case 1:
		return "never TLS";
	case 2:
		return "TLS required, certificate chain and host name verified";
	case 3:
		return "DANE where an MX host publishes TLSA records under "
		    "DNSSEC, else STARTTLS when offered";
	}
	return "?";
}

int
tls_policy_cmd(const char *cfg_path, int argc, char **argv)
{
	char err[1024], why[300], ascii[SMTP_DOMAIN_MAX + 1];
	int rc = 0;

	if (argc != 1) {
		fprintf(stderr, "ternctl: tls-policy DOMAIN\n");
		return 2;
	}
	const char *domain = argv[0];
	if (intl_domain_ascii(domain, ascii, sizeof(ascii)) != 0 ||
	    !smtp_valid_domain(ascii, strlen(ascii))) {
		fprintf(stderr, "ternctl: '%s' is not a domain\n", domain);
		return 2;
	}
	ascii_lower(ascii);
	struct config *cfg = config_load(cfg_path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		return EX_CONFIG;
	}
	printf("domain: %s\n", ascii);
	if (config_is_local_domain(cfg, ascii)) {
		printf("local: delivered into this server's Maildirs, no SMTP "
		    "client involved\n");
		config_free(cfg);
		return 0;
	}
	const char *anchor = config_trust_anchor(cfg, why, sizeof(why));
	int pol = cfg->client.tls;
	bool dane = pol == 3 && (anchor != NULL || cfg->dnssec_resolver);
	printf("policy: %s (smtp_client.tls): %s\n",
	    config_tls_policy_name(pol), policy_text(pol));
	if (anchor)
		printf("dnssec: answers validated with %s\n", anchor);
	else if (cfg->dnssec_resolver)
		printf("dnssec: the AD bit of %s is trusted (dnssec = "
		    "\"resolver\")\n", cfg->resolver);
	else
		printf("dnssec: off (%s)%s\n", why, pol == 3 ?
		    ": no DANE, STARTTLS when offered" : "");
	printf("note: a route hook may choose another next hop or policy "
	    "per message\n");
	struct event_base *base = event_base_new();
	struct dns *dns = dns_new(base, cfg->resolver, cfg->dns_timeout, anchor,
	    cfg->dnssec_resolver, err, sizeof(err));
	if (dns == NULL) {
		fprintf(stderr, "ternctl: %s\n", err);
		event_base_free(base);
		config_free(cfg);
		return 1;
	}
	if (cfg->relayhost) {
		/* host[:port], [host]:port: the relay, not the MX */
		char host[300];
		unsigned port = cfg->client.port;
		(void)str_copy(host, sizeof(host), cfg->relayhost);
		char *colon = strrchr(host, ':');
		char *close = strrchr(host, ']');
		if (colon && (close == NULL || colon > close) &&
		    (host[0] == '[' || strchr(host, ':') == colon)) {
			port = (unsigned)strtoul(colon + 1, NULL, 10);
			*colon = '\0';
		}
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			if ((close = strchr(host, ']')) != NULL)
				*close = '\0';
		}
		printf("next hop: relayhost %s, port %u (no MX lookup)\n", host,
		    port);
		rc = show_host(base, dns, host, port, true, dane, NULL);
	} else {
		struct sts_answer sa = { 0 };
		bool use_sts = cfg->client.mta_sts && (pol == 0 || pol == 3);
		if (use_sts) {
			struct tls_client *tc = tls_client_new(
			    cfg->client.ca_file, err, sizeof(err));
			if (tc == NULL) {
				fprintf(stderr, "ternctl: %s\n", err);
				rc = 1;
			} else {
				struct httpc_tls maker = { sts_socket,
					tls_handshake_failed, tc };
				struct sts_settings ss = {
					.port = cfg->client.mta_sts_port,
					.timeout = cfg->client.connect_timeout,
					.tls = &maker,
				};
				struct sts *sts = sts_new(base, dns, &ss);
				(void)sts_get(sts, ascii, on_sts, &sa);
				while (!sa.done && event_base_loop(base,
				    EVLOOP_ONCE) == 0)
					;
				sts_free(sts);
				tls_client_free(tc);
			}
			if (!sa.have)
				printf("MTA-STS: none (%s)\n", sa.why[0] ?
				    sa.why : "no policy");
			else {
				printf("MTA-STS: mode %s, max_age %lu, mx",
				    mtasts_mode_name(sa.p.mode), sa.p.max_age);
				for (size_t i = 0; i < sa.p.nmx; i++)
					printf(" %s", sa.p.mx[i]);
				printf("\n");
			}
		} else
			printf("MTA-STS: not used (%s)\n", cfg->client.mta_sts ?
			    "the policy is none or verify" :
			    "smtp_client.mta_sts = false");
		const struct mtasts_policy *sp = sa.have && sa.p.mode !=
		    MTASTS_NONE ? &sa.p : NULL;
		struct answer a = { 0 };
		(void)dns_mx_sec(dns, ascii, on_mx, &a);
		if (!wait_for(base, &a))
			rc = 1;
		else if (a.st != DNS_OK) {
			printf("MX: %s\n", status_text(a.st));
			rc = a.st == DNS_TEMP;
		} else {
			bool implicit = a.nnames == 1 &&
			    ascii_strcaseeq(a.names[0], ascii);
			printf("MX: %s%s\n", implicit ? "none, the domain "
			    "itself (implicit MX)" : "in the order tried",
			    a.secure ? secure_paren(dns) : " (insecure)");
			for (size_t i = 0; i < a.nnames; i++)
				rc |= show_host(base, dns, a.names[i],
				    cfg->client.port, a.secure, dane, sp);
		}
		answer_clear(&a);
	}
	dns_free(dns);
	event_base_free(base);
	config_free(cfg);
	return rc;
}
