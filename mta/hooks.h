/* SPDX-License-Identifier: ISC */
/*
 * hooks.h - layer 2: the Lua bridge, the only code that includes Lua.
 * For now it evaluates configuration files: it runs the file in a sandbox
 * and turns what it set into a tree of plain C values (struct cfg_node)
 * that config.c checks against its schema. Each top-level key remembers
 * the line that assigned it, so errors can name it.
 */
#ifndef TERN_HOOKS_H
#define TERN_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

enum cfg_type { CFG_BOOL, CFG_INT, CFG_NUM, CFG_STR, CFG_TABLE };

struct cfg_node {
	enum cfg_type type;
	char *key;               /* NULL for array items */
	int line;                /* assigning line (top level), else 0 */
	bool b;
	long long i;
	double n;
	char *s;
	struct cfg_node *items;  /* CFG_TABLE: array part first, in order */
	size_t nitems;
	size_t narray;           /* how many items are array items */
};

/*
 * Runs Lua source text (name is used in messages: the file name, or
 * "(embedded default)") in a sandbox with string, table and math, and
 * os.getenv. The result is the globals it assigned, or the table it
 * returned. NULL with "name:line: reason" in err on failure.
 */
struct cfg_node *hooks_eval_config(const char *text, size_t len,
    const char *name, char *err, size_t errsz);
void cfg_node_free(struct cfg_node *node);

#endif
