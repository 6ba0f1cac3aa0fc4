/* SPDX-License-Identifier: ISC */
/*
 * config.h - layer 2: the configuration schema, its defaults, validation
 * and the embedded default (DESIGN.md sections 3 and 4). The file is Lua,
 * evaluated by hooks.c; this module checks every key and type and builds
 * struct config. Read-only once loaded.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct cfg_node;

enum listen_role { ROLE_MX, ROLE_SUBMISSION, ROLE_SUBMISSIONS, ROLE_IMAP,
	ROLE_IMAPS, ROLE_HTTP, ROLE_HTTPS, ROLE_LMTP };
#define LISTEN_ROLES 8
enum listen_tls { LISTEN_TLS_STARTTLS, LISTEN_TLS_IMPLICIT, LISTEN_TLS_NONE };

/*
 * What an authenticated submission may put in From: (RFC 6409 8.1 leaves
 * it to the site): STRICT, only the user's own addresses, as the envelope
 * sender; ENVELOPE, whatever matches the (checked) envelope sender; NONE,
 * anything. The mail and data hooks may allow more.
 */
enum submission_from {
	SUBMISSION_FROM_STRICT,
	SUBMISSION_FROM_ENVELOPE,
	SUBMISSION_FROM_NONE,
};

struct config_listen {
	char *addr;                       /* as written: "127.0.0.1:2525" */
	enum listen_role role;
	enum listen_tls tls;
	struct sockaddr_storage ss;
	socklen_t sslen;
};

/* A certificate for the host names a client asks for (SNI). */
struct config_tls_name {
	char **names;                     /* lower case; "*.x" one label */
	size_t nnames;
	char *cert, *key;
};

/* A DKIM key: domain and selector, and its PEM private key file. */
struct config_dkim {
	char *domain;                     /* lower case */
	char *selector;
	char *key;                        /* absolute (data_dir relative) */
};

struct netmask {
	int family;                       /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
};

struct config_limits {
	uint64_t max_message_size;
	unsigned max_header_size;         /* octets of the header section */
	unsigned max_header_fields;       /* header fields, folded ones as one */
	unsigned max_hops;                /* Received: fields (RFC 5321 6.3) */
	unsigned max_recipients;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned max_connections_per_trusted_ip; /* trusted_networks' own */
	unsigned max_errors;
	unsigned command_timeout;         /* seconds */
	unsigned data_timeout;            /* seconds */
	uint64_t min_free_space;          /* bytes kept free on the spool fs */
	uint64_t quota_storage;           /* per user, bytes; 0: none */
	unsigned quota_messages;          /* per user; 0: none */
	unsigned imap_connections_per_user;   /* per user and address */
	/* HTTP, seconds: a whole request head from its first octet, each
	 * read of a body, and idle between requests */
	unsigned http_head_timeout, http_body_timeout, http_keepalive_timeout;
};

struct config {
	char *source;                     /* file name, or "(embedded default)" */
	char *hostname;
	char *data_dir;                   /* absolute */
	char *spool_dir, *mail_dir, *run_dir;
	struct config_listen *listen;
	size_t nlisten;
	char **domains;                   /* lower case */
	size_t ndomains;
	struct netmask *trusted;
	size_t ntrusted;
	char recipient_delimiter;         /* '\0': none */
	unsigned io_threads;
	unsigned max_deliveries;          /* delivery jobs in flight */
	struct config_limits limits;
	/* plugins (DESIGN.md section 5) */
	char **plugins;                   /* names, in order */
	size_t nplugins;
	char **plugin_path;               /* absolute directories */
	size_t npath;
	const struct cfg_node *plugin_config; /* into tree, or NULL */
	unsigned hook_budget_ms;          /* running, per hook call */
	unsigned hook_wait_ms;            /* waiting, per hook call */
	char **plugin_http_allow;         /* "host:port" for tern.http */
	char *plugin_http_ca;             /* https: CA file; NULL: system's */
	size_t nhttp_allow;
	uint64_t plugin_memory;
	struct cfg_node *tree;            /* the evaluated file, kept */
	/* outbound */
	char *tls_cert, *tls_key;         /* the server certificate */
	struct config_tls_name *tls_names; /* more, chosen by SNI */
	size_t ntls_names;
	char *users;                      /* user:hash table */
	bool users_default;               /* not configured: data_dir/users,
	                                   * optional until it exists */
	bool auth_loopback_plaintext;     /* AUTH without TLS from trusted */
	bool inbound_auth;                /* SPF, DKIM, DMARC of mail on mx */
	bool tls_reports;                 /* RFC 8460 reports, daily */
	bool local_fast_path;             /* local mail into its Maildirs
	                                   * before the 250, no queue file */
	bool hardlink_deliveries;         /* one file, linked, for a message
	                                   * to several local mailboxes */
	char *public_suffix_list;         /* DMARC's organizational domains */
	enum submission_from submission_from;
	bool tls_selfsigned;              /* default paths: made at start */
	char *resolver;                   /* NULL: /etc/resolv.conf */
	bool dnssec;                      /* validate answers (DANE) */
	bool dnssec_resolver;             /* ... by trusting the resolver's
	                                   * AD bit (dnssec = "resolver") */
	char *dnssec_trust_anchor;        /* DS/DNSKEY file: the root's */
	char *user;                       /* run as this user (from root) */
	char *relayhost;                  /* NULL: MX delivery */
	char *authserv_id;                /* Authentication-Results' name of
	                                   * us; NULL: the host name */
	char *http_public_url;            /* JMAP's URLs, e.g. behind a proxy:
	                                   * "https://mail.example.org"; NULL:
	                                   * the listener reached */
	struct config_dkim *dkim;         /* signing keys (mail/dkim_sign.h) */
	size_t ndkim;
	struct config_dkim *arc;          /* the ARC sealing key, or NULL
	                                   * (mail/arc_seal.h) */
	unsigned delay_warning;           /* seconds; 0: never */
	unsigned dns_timeout;             /* seconds per lookup */
	struct {
		unsigned port;
		unsigned connect_timeout, command_timeout, data_timeout;
		unsigned idle_time, max_per_destination;
		int tls;                  /* enum smtp_tls_policy: "dane" */
		char *ca_file;            /* NULL: the system trust store */
		bool mta_sts;             /* RFC 8461 policies for MX mail */
		unsigned mta_sts_port;    /* where they are fetched: 443 */
		unsigned mta_sts_refresh; /* seconds before a policy in use
		                           * is fetched again: a day */
	} client;
};

/* path NULL: the embedded default. NULL with "file:line: reason" in err. */
struct config *config_load(const char *path, char *err, size_t errsz);
void config_free(struct config *cfg);
/* Prints the effective configuration as a Lua file. */
void config_print(const struct config *cfg, FILE *fp);

/* Domain (without trailing dot) is one of ours; case-insensitive. */
bool config_is_local_domain(const struct config *cfg, const char *domain);
/*
 * local@domain is one of user's addresses: user "alice" owns alice (and
 * alice+ext with the recipient delimiter) at every local domain; user
 * "alice@example.org" owns that address (and its +ext forms) only.
 */
bool config_user_owns(const struct config *cfg, const char *user,
    const char *local, const char *domain);
/* Client address is in trusted_networks (may relay). */
bool config_is_trusted(const struct config *cfg, const struct sockaddr *sa);
const char *config_role_name(enum listen_role role);
/* "strict", "envelope", "none" -> enum submission_from, else -1. */
int config_submission_from(const char *s);
const char *config_submission_from_name(enum submission_from v);
/* "may" 0, "none" 1, "verify" 2, "dane" 3 (enum smtp_tls_policy), else
 * -1. */
int config_tls_policy(const char *s);
/* The policy's name in the config ("may", ..., "dane"). */
const char *config_tls_policy_name(int pol);
/*
 * The trust anchor file to validate DNS answers with, or NULL (why says:
 * dnssec = false, or no such file) for no validation and so no DANE; or
 * NULL for dnssec = "resolver", where the resolver's AD bit stands in.
 */
const char *config_trust_anchor(const struct config *cfg, char *why,
    size_t whysz);

#endif
