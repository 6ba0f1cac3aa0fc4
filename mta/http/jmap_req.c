/* SPDX-License-Identifier: ISC */
/*
 * jmap_req.c - layer 1: JMAP requests, result references and pointers
 * (jmap_req.h). jansson rejects duplicate keys (JSON_REJECT_DUPLICATES),
 * invalid UTF-8, lone surrogates, NaN and "\u0000" itself; what I-JSON
 * asks beyond that (nesting within JMAP_DEPTH_MAX, integers within
 * +-2^53, RFC 7493 2.2) is checked here on the tree.
 */
#include "http/jmap_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define SAFE_INT 9007199254740991LL    /* 2^53 - 1 (RFC 7493 2.2) */

static bool
ijson_ok(json_t *v, int depth, const char **why)
{
	size_t i;
	const char *k;
	json_t *x;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (depth >= JMAP_DEPTH_MAX) {
			*why = "nested too deeply";
			return false;
		}
		if (json_is_array(v)) {
			json_array_foreach(v, i, x)
				if (!ijson_ok(x, depth + 1, why))
					return false;
		} else {
			json_object_foreach(v, k, x)
				if (!ijson_ok(x, depth + 1, why))
					return false;
		}
		return true;
	case JSON_INTEGER:
		if (json_integer_value(v) > SAFE_INT ||
		    json_integer_value(v) < -SAFE_INT) {
			*why = "integer beyond 2^53";
			return false;
		}
		return true;
	default:
		return true;
	}
}

enum jmap_req_status
jmap_request_parse(const char *data, size_t len, struct jmap_request *r,
    char *why, size_t whysz)
{
	json_error_t e;
	json_t *u, *mc, *v;
	const char *k, *bad = NULL;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &e);
	if (r->root == NULL) {
		(void)snprintf(why, whysz, "%s (at octet %d)", e.text,
		    e.position);
		return JMAP_REQ_NOT_JSON;
	}
	if (!ijson_ok(r->root, 0, &bad)) {
		(void)snprintf(why, whysz, "not I-JSON: %s", bad);
		return JMAP_REQ_NOT_JSON;
	}
	if (!json_is_object(r->root)) {
		(void)snprintf(why, whysz, "the request is not an object");
		return JMAP_REQ_NOT_REQUEST;
	}
	json_object_foreach(r->root, k, v)
		if (strcmp(k, "using") && strcmp(k, "methodCalls") &&
		    strcmp(k, "createdIds")) {
			(void)snprintf(why, whysz, "unknown property '%.64s'",
			    k);
			return JMAP_REQ_NOT_REQUEST;
		}
	u = json_object_get(r->root, "using");
	mc = json_object_get(r->root, "methodCalls");
	if (!json_is_array(u) || !json_is_array(mc)) {
		(void)snprintf(why, whysz, "using and methodCalls must be "
		    "arrays");
		return JMAP_REQ_NOT_REQUEST;
	}
	r->created_ids = json_object_get(r->root, "createdIds");
	if (r->created_ids) {
		if (!json_is_object(r->created_ids)) {
			(void)snprintf(why, whysz, "createdIds must be an "
			    "object");
			return JMAP_REQ_NOT_REQUEST;
		}
		json_object_foreach(r->created_ids, k, v)
			if (!json_is_string(v) ||
			    !jmap_is_id(json_string_value(v))) {
				(void)snprintf(why, whysz, "createdIds values "
				    "must be Ids");
				return JMAP_REQ_NOT_REQUEST;
			}
	}
	r->using = xcalloc(json_array_size(u) + 1, sizeof(char *));
	json_array_foreach(u, i, v) {
		if (!json_is_string(v)) {
			(void)snprintf(why, whysz, "using must hold strings");
			return JMAP_REQ_NOT_REQUEST;
		}
		r->using[r->nusing++] = json_string_value(v);
	}
	if (json_array_size(mc) > JMAP_CALLS_MAX) {
		(void)snprintf(why, whysz, "more than %d method calls",
		    JMAP_CALLS_MAX);
		return JMAP_REQ_LIMIT;
	}
	r->calls = xcalloc(json_array_size(mc) + 1, sizeof(*r->calls));
	json_array_foreach(mc, i, v) {
		json_t *n = json_array_get(v, 0), *a = json_array_get(v, 1),
		    *id = json_array_get(v, 2);
		if (!json_is_array(v) || json_array_size(v) != 3 ||
		    !json_is_string(n) || !json_is_object(a) ||
		    !json_is_string(id)) {
			(void)snprintf(why, whysz, "methodCalls[%zu] is not "
			    "[name, arguments, id]", i);
			return JMAP_REQ_NOT_REQUEST;
		}
		r->calls[r->ncalls].name = json_string_value(n);
		r->calls[r->ncalls].args = a;
		r->calls[r->ncalls].id = json_string_value(id);
		r->ncalls++;
	}
	return JMAP_REQ_OK;
}

void
jmap_request_clear(struct jmap_request *r)
{
	json_decref(r->root);
	free(r->using);
	free(r->calls);
	memset(r, 0, sizeof(*r));
}

/* One reference token, unescaped (~1 is '/', ~0 is '~'); -1 if bad. */
static int
token(const char *p, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '~') {
			if (i + 1 >= n || (p[i + 1] != '0' && p[i + 1] != '1'))
				return -1;
			c = p[++i] == '0' ? '~' : '/';
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static bool
array_index(const char *t, size_t *idx)
{
	size_t n = strlen(t);
	unsigned long long v = 0;

	if (n == 0 || n > 9 || (n > 1 && t[0] == '0') ||
	    strspn(t, "0123456789") != n)
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(t[i] - '0');
	*idx = (size_t)v;
	return true;
}

static json_t *
eval(json_t *doc, const char *ptr, int depth)
{
	char tok[256];
	const char *end;
	size_t idx;

	if (*ptr == '\0')
		return json_incref(doc);
	if (*ptr != '/' || depth > JMAP_DEPTH_MAX)
		return NULL;
	ptr++;
	end = strchr(ptr, '/');
	if (end == NULL)
		end = ptr + strlen(ptr);
	if (token(ptr, (size_t)(end - ptr), tok, sizeof(tok)) != 0)
		return NULL;
	if (json_is_array(doc) && strcmp(tok, "*") == 0) {
		json_t *out = json_array(), *item;
		size_t i;
		json_array_foreach(doc, i, item) {
			json_t *r = eval(item, end, depth + 1);
			if (r == NULL) {
				json_decref(out);
				return NULL;
			}
			if (json_is_array(r))
				json_array_extend(out, r);
			else
				json_array_append(out, r);
			json_decref(r);
		}
		return out;
	}
	if (json_is_array(doc)) {
		if (!array_index(tok, &idx) || idx >= json_array_size(doc))
			return NULL;
		return eval(json_array_get(doc, idx), end, depth + 1);
	}
	if (json_is_object(doc)) {
		json_t *m = json_object_get(doc, tok);
		return m ? eval(m, end, depth + 1) : NULL;
	}
	return NULL;
}

json_t *
jmap_pointer_eval(json_t *doc, const char *ptr)
{
	return eval(doc, ptr, 0);
}

json_t *
jmap_resolve_refs(json_t *args, json_t *responses, const char **type,
    char *desc, size_t descsz)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach(args, k, v) {
		if (k[0] != '#') {
			if (json_object_get(out, k) == NULL)
				json_object_set(out, k, v);
			continue;
		}
		if (json_object_get(args, k + 1)) {
			*type = "invalidArguments";
			(void)snprintf(desc, descsz, "both '%.64s' and '%.64s'",
			    k, k + 1);
			json_decref(out);
			return NULL;
		}
		json_t *ro = json_object_get(v, "resultOf"),
		    *rn = json_object_get(v, "name"),
		    *rp = json_object_get(v, "path"), *found = NULL, *res;
		size_t i;
		*type = "invalidResultReference";
		if (!json_is_object(v) || json_object_size(v) != 3 ||
		    !json_is_string(ro) || !json_is_string(rn) ||
		    !json_is_string(rp)) {
			(void)snprintf(desc, descsz, "'%.64s' is not a "
			    "ResultReference", k);
			json_decref(out);
			return NULL;
		}
		json_array_foreach(responses, i, res) {
			if (strcmp(json_string_value(json_array_get(res, 2)),
			    json_string_value(ro)) == 0)
				found = res;   /* the last one of that id */
		}
		if (found == NULL || strcmp(json_string_value(json_array_get(
		    found, 0)), json_string_value(rn)) != 0) {
			(void)snprintf(desc, descsz, "no %.64s response for "
			    "'%.64s'", json_string_value(rn),
			    json_string_value(ro));
			json_decref(out);
			return NULL;
		}
		json_t *val = jmap_pointer_eval(json_array_get(found, 1),
		    json_string_value(rp));
		if (val == NULL) {
			(void)snprintf(desc, descsz, "path '%.128s' not found",
			    json_string_value(rp));
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, k + 1, val);
	}
	*type = NULL;
	return out;
}

bool
jmap_is_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}
