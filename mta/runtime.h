/* SPDX-License-Identifier: ISC */
/*
 * runtime.h - layer 2: one configuration generation: the config and the
 * plugins loaded for it. Reference-counted: a session keeps the
 * generation it started with; a reload makes a new one and the old one is
 * freed when its last session ends. Loop thread only.
 */
#ifndef TERN_RUNTIME_H
#define TERN_RUNTIME_H

#include "base/httpc.h"

#include <stdbool.h>
#include <stddef.h>

struct config;
struct hooks;
struct kvstore;
struct tls_server;
struct auth_users;
struct arc_sealer;
struct tls_client;
struct dkim_signer;
struct psl;

struct runtime {
	struct config *cfg;
	struct hooks *hooks;
	struct tls_server *tls;       /* NULL: no certificate (yet) */
	struct auth_users *users;     /* NULL: no AUTH */
	struct dkim_signer *dkim;     /* NULL: no DKIM keys */
	struct arc_sealer *arc;       /* NULL: no ARC sealing */
	struct psl *psl;              /* the Public Suffix List, or NULL */
	struct tls_client *http_tls;  /* tern.http's https (plugin_http_allow
	                               * set), with http_tls_maker for httpc */
	struct httpc_tls http_tls_maker;
	unsigned refs;
	unsigned generation;
};

/*
 * Loads config (path NULL: embedded default), its plugins, its TLS
 * certificate and its DKIM keys; refs = 1. make_cert: create the self-signed certificate
 * (and data_dir/tls) when the config names none and it does not exist.
 */
struct runtime *runtime_load(const char *path, struct kvstore *kv,
    unsigned generation, bool make_cert, char *err, size_t errsz);
struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

#endif
