/* SPDX-License-Identifier: ISC */
/*
 * smtp_client.h - layer 3: the SMTP client (RFC 5321, the sending side):
 * per-destination queues of deliveries, connection pools with idle reuse
 * and a concurrency limit, MX and address resolution through dns.c.
 * Owns no files: dispatch hands it a message and gets per-recipient
 * results back. Loop thread only.
 */
#ifndef TERN_SMTP_CLIENT_H
#define TERN_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

struct event_base;
struct dns;
struct smtp_client;
struct tls_client;
struct sockaddr_storage;
struct sts;
struct tlsrpt_session;

enum smtp_tls_policy {
	SMTP_TLS_MAY,        /* STARTTLS when offered, unverified (default) */
	SMTP_TLS_NONE,       /* never */
	SMTP_TLS_VERIFY,     /* required, chain and host name verified */
	SMTP_TLS_DANE,       /* RFC 7672: where an MX host has TLSA records
	                      * proven by DNSSEC, TLS is required and the
	                      * certificate must match one; elsewhere "may"
	                      * (the default) */
};

struct smtp_client_settings {
	const char *helo;                 /* our host name */
	unsigned port;                    /* for MX delivery (25) */
	unsigned connect_timeout;         /* seconds */
	unsigned command_timeout;         /* RFC 5321 4.5.3.2: 5 min */
	unsigned data_timeout;            /* DATA termination: 10 min */
	unsigned idle_time;               /* keep an idle connection */
	unsigned max_per_destination;
	struct tls_client *tls;           /* NULL: no STARTTLS at all */
	struct sts *sts;                  /* MTA-STS policies for MX
	                                   * delivery under "dane" and
	                                   * "may", or NULL: none */
	/* each session under a DANE or MTA-STS (enforce, testing)
	 * policy, for TLS reports (RFC 8460); NULL: not counted */
	void (*tls_report)(void *arg, const struct tlsrpt_session *s);
	void *tls_report_arg;
	/* where we take mail ourselves (address and port): a next hop
	 * there is a loop (RFC 5321 5.1), mail for it bounces 5.4.6 */
	const struct sockaddr_storage *self;
	size_t nself;
};

enum smtp_dest_kind { SMTP_DEST_MX, SMTP_DEST_RELAY };

/*
 * One message for one destination, owned by the caller. The client fills
 * codes/texts per recipient (codes[i] 2xx: delivered; 4xx: try later;
 * 5xx: failed), answered[i] (the text is the next hop's own reply, not
 * one Tern made: only then may a bounce name it as Remote-MTA) and remote
 * (the host last talked to, or "").
 */
struct smtp_delivery {
	enum smtp_dest_kind kind;
	char dest[300];                   /* MX: domain; RELAY: host[:port] */
	enum smtp_tls_policy tls;
	const char *id;                   /* queue id, for logs */
	const char *sender;               /* "<...>" */
	const char *const *rcpts;         /* "<...>" */
	size_t nrcpts;
	const struct buf *body;           /* LF line ends */
	bool eightbit;                    /* the body has 8-bit octets */
	bool smtputf8;                    /* came with SMTPUTF8 (RFC 6531):
	                                   * declared to a hop that has it;
	                                   * to one without, addresses go as
	                                   * A-labels if that is enough, else
	                                   * it fails 5.6.7 */
	char *ascii_sender;               /* the client's: those A-label */
	char **ascii_rcpts;               /* forms (NULL when not needed) */
	bool requiretls;                  /* RFC 8689: only to a verified
	                                   * TLS peer that offers it (tls is
	                                   * then "verify") */
	/* DSN (RFC 3461), sent only to a next hop that offers it: */
	const char *mail_dsn;             /* " RET=.. ENVID=..", or NULL */
	const char *const *rcpt_dsn;      /* nrcpts " NOTIFY=.. ORCPT=..",
	                                   * entries may be NULL; or NULL */
	bool dsn;                         /* set: the hop took them (it
	                                   * reports from here on) */
	int *codes;                       /* nrcpts, allocated by the client */
	char **texts;                     /* nrcpts, owned by the delivery */
	bool *answered;                   /* nrcpts, allocated by the client */
	char remote[300];
};

typedef void (*smtp_client_cb)(void *arg, struct smtp_delivery *d);

struct smtp_client *smtp_client_new(struct event_base *base, struct dns *dns,
    const struct smtp_client_settings *s);
/*
 * Queues a delivery; cb runs exactly once, on the loop, never before this
 * returns (unless the client is freed first: then never).
 */
void smtp_client_send(struct smtp_client *c, struct smtp_delivery *d,
    smtp_client_cb cb, void *arg);
/* Frees codes/texts/answered and the A-label paths. */
void smtp_delivery_clear(struct smtp_delivery *d);
/* Closes idle connections (shutdown); active ones finish. */
void smtp_client_close_idle(struct smtp_client *c);
/* Whether an MX can be found securely here: DANE (answers validated
 * with DNSSEC) or MTA-STS can apply. */
bool smtp_client_secure_mx(const struct smtp_client *c);
/* Connections opened so far (for logs and tests). */
unsigned long smtp_client_connections(const struct smtp_client *c);
/* Drops everything without calling back. NULL is a no-op. */
void smtp_client_free(struct smtp_client *c);

#endif
