/* SPDX-License-Identifier: ISC */
/*
 * spf_check.h - layer 2: SPF's check_host() (RFC 7208 4) on the event
 * loop, every lookup asynchronous (base/dns.h): records, include and
 * redirect, a, mx, exists, ptr (5.5: the client's PTR names, at most
 * 10, each validated by its addresses), %{p} (7.3: found the same way
 * before the term that uses it), with the limits of 4.6.4 (10
 * mechanisms and modifiers that look up, 10 MX and PTR names, 2 void
 * lookups). Names that cannot exist (RFC 1035) are not asked for. Loop
 * thread only.
 */
#ifndef TERN_SPF_CHECK_H
#define TERN_SPF_CHECK_H

#include <stdbool.h>

#include "mail/spf.h"

struct dns;
struct spf_check;

/* r and, for what is not pass/none, a few words of why. */
typedef void (*spf_check_cb)(void *arg, enum spf_result r, const char *why);

/*
 * check_host(ip, domain, sender): ip 4 octets (v6 false) or 16; sender
 * "local@domain" (postmaster@ the HELO name for <> and for the HELO
 * check). cb never runs before this returns.
 */
struct spf_check *spf_check_start(struct dns *dns, const unsigned char *ip,
    bool v6, const char *domain, const char *sender, const char *helo,
    spf_check_cb cb, void *arg);
void spf_check_cancel(struct spf_check *c);

#endif
