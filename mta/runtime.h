/* SPDX-License-Identifier: ISC */
/*
 * runtime.h - layer 2: one configuration generation: the config and the
 * plugins loaded for it. Reference-counted: a session keeps the
 * generation it started with; a reload makes a new one and the old one is
 * freed when its last session ends. Loop thread only.
 */
#ifndef TERN_RUNTIME_H
#define TERN_RUNTIME_H

#include <stddef.h>

struct config;
struct hooks;
struct kvstore;

struct runtime {
	struct config *cfg;
	struct hooks *hooks;
	unsigned refs;
	unsigned generation;
};

/* Loads config (path NULL: embedded default) and its plugins; refs = 1. */
struct runtime *runtime_load(const char *path, struct kvstore *kv,
    unsigned generation, char *err, size_t errsz);
struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

#endif
