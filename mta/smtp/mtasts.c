/* SPDX-License-Identifier: ISC */
/*
 * mtasts.c - layer 1 (pure): RFC 8461's record and policy syntax.
 *
 * The TXT record's fields are "key=value" separated by ";" with optional
 * spaces; v=STSv1 comes first. The policy file's lines are "key: value";
 * a field given twice keeps the first (only mx repeats). A pattern is a
 * host name, or "*." and a host name, where the star stands for exactly
 * one leftmost label (so *.example.net matches mx.example.net, not
 * example.net nor a.b.example.net).
 */
#include "smtp/mtasts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

int
mtasts_txt_parse(const char *txt, char id[MTASTS_ID_MAX + 1])
{
	const char *p = txt, *end = txt + strlen(txt);
	bool first = true, have_id = false;

	while (p < end) {
		p = skip_ws(p, end);
		size_t rest = strlen(p);
		const char *semi = memchr(p, ';', rest);
		const char *fe = semi ? semi : p + rest;
		const char *eq = memchr(p, '=', (size_t)(fe - p));
		/* trailing spaces of the field */
		const char *ve = fe;
		while (ve > p && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (p == ve && semi == NULL)
			break;          /* "...;" and spaces at the end */
		if (eq == NULL || eq == p)
			return -1;
		size_t klen = (size_t)(eq - p);
		const char *v = eq + 1;
		size_t vlen = (size_t)(ve - v);
		if (first) {
			if (klen != 1 || p[0] != 'v' || vlen != 5 ||
			    memcmp(v, "STSv1", 5) != 0)
				return -1;
			first = false;
		} else if (klen == 2 && memcmp(p, "id", 2) == 0 && !have_id) {
			if (vlen == 0 || vlen > MTASTS_ID_MAX)
				return -1;
			for (size_t i = 0; i < vlen; i++)
				if (!is_alnum(v[i]))
					return -1;
			memcpy(id, v, vlen);
			id[vlen] = '\0';
			have_id = true;
		} else {
			/* other fields: key is letters, digits, '_', '.', '-' */
			for (size_t i = 0; i < klen; i++)
				if (!is_alnum(p[i]) && p[i] != '_' &&
				    p[i] != '.' && p[i] != '-')
					return -1;
		}
		if (semi == NULL)
			break;
		p = semi + 1;
	}
	return !first && have_id ? 0 : -1;
}

int
mtasts_txt_choose(char *const *txts, size_t n, char id[MTASTS_ID_MAX + 1])
{
	const char *only = NULL;
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		if (strncmp(txts[i], "v=STSv1", 7) == 0) {
			only = txts[i];
			count++;
		}
	if (count != 1)
		return -1;
	return mtasts_txt_parse(only, id);
}

/* A host name as a policy may give it: labels of letters, digits and
 * '-', not starting or ending with '-'. */
static bool
valid_host(const char *s, size_t len)
{
	size_t lab = 0;

	if (len == 0 || len > MTASTS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-')
			return false;
		if (c == '-' && lab == 0)
			return false;
		if (++lab > 63)
			return false;
	}
	return lab > 0 && s[len - 1] != '-';
}

int
mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p,
    char *why, size_t whysz)
{
	const char *s = text, *end = text + len;
	bool have_version = false, have_mode = false, have_age = false;

	memset(p, 0, sizeof(*p));
	if (len > MTASTS_POLICY_MAX) {
		(void)snprintf(why, whysz, "policy longer than %d octets",
		    MTASTS_POLICY_MAX);
		return -1;
	}
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *le = nl ? nl : end;
		if (le > s && le[-1] == '\r')
			le--;
		const char *colon = memchr(s, ':', (size_t)(le - s));
		if (le == s) {
			/* an empty line (the last one, mostly) */
		} else if (colon == NULL || colon == s) {
			(void)snprintf(why, whysz, "a line without \"key:\"");
			return -1;
		} else {
			size_t klen = (size_t)(colon - s);
			const char *v = skip_ws(colon + 1, le);
			const char *ve = le;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t vlen = (size_t)(ve - v);
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(s, k, klen) == 0)
			if (KEY("version") && !have_version) {
				if (vlen != 5 || memcmp(v, "STSv1", 5) != 0) {
					(void)snprintf(why, whysz, "version is "
					    "not STSv1");
					return -1;
				}
				have_version = true;
			} else if (KEY("mode") && !have_mode) {
				if (vlen == 7 && memcmp(v, "enforce", 7) == 0)
					p->mode = MTASTS_ENFORCE;
				else if (vlen == 7 && memcmp(v, "testing", 7) ==
				    0)
					p->mode = MTASTS_TESTING;
				else if (vlen == 4 && memcmp(v, "none", 4) == 0)
					p->mode = MTASTS_NONE;
				else {
					(void)snprintf(why, whysz, "mode is not "
					    "enforce, testing or none");
					return -1;
				}
				have_mode = true;
			} else if (KEY("max_age") && !have_age) {
				unsigned long a = 0;
				if (vlen == 0 || vlen > 10) {
					(void)snprintf(why, whysz, "bad max_age");
					return -1;
				}
				for (size_t i = 0; i < vlen; i++) {
					if (v[i] < '0' || v[i] > '9') {
						(void)snprintf(why, whysz, "bad "
						    "max_age");
						return -1;
					}
					a = a * 10 + (unsigned long)(v[i] - '0');
				}
				p->max_age = a > MTASTS_MAX_AGE ?
				    MTASTS_MAX_AGE : a;
				have_age = true;
			} else if (KEY("mx")) {
				bool wild = vlen > 2 && v[0] == '*' &&
				    v[1] == '.';
				if (!valid_host(wild ? v + 2 : v, wild ? vlen -
				    2 : vlen)) {
					(void)snprintf(why, whysz, "bad mx "
					    "pattern");
					return -1;
				}
				if (p->nmx < MTASTS_MX_MAX) {
					memcpy(p->mx[p->nmx], v, vlen);
					p->mx[p->nmx][vlen] = '\0';
					ascii_lower(p->mx[p->nmx]);
					p->nmx++;
				}
			}
#undef KEY
		}
		if (nl == NULL)
			break;
		s = nl + 1;
	}
	if (!have_version || !have_mode || !have_age) {
		(void)snprintf(why, whysz, "%s missing", !have_version ?
		    "version" : !have_mode ? "mode" : "max_age");
		return -1;
	}
	if (p->mode != MTASTS_NONE && p->nmx == 0) {
		(void)snprintf(why, whysz, "no mx pattern");
		return -1;
	}
	return 0;
}

bool
mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	char h[MTASTS_NAME_MAX + 2];
	size_t hl = strlen(host);

	if (hl == 0 || hl > MTASTS_NAME_MAX)
		return false;
	memcpy(h, host, hl + 1);
	if (h[hl - 1] == '.')
		h[--hl] = '\0';
	ascii_lower(h);
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];
		if (m[0] == '*' && m[1] == '.') {
			const char *dot = strchr(h, '.');
			/* one label, then exactly the rest */
			if (dot && dot > h && strcmp(dot + 1, m + 2) == 0)
				return true;
		} else if (strcmp(h, m) == 0)
			return true;
	}
	return false;
}

const char *
mtasts_mode_name(enum mtasts_mode m)
{
	return m == MTASTS_ENFORCE ? "enforce" : m == MTASTS_TESTING ?
	    "testing" : "none";
}

int
mtasts_cache_format(const struct mtasts_policy *p, const char *id,
    long long expires, char *out, size_t outsz)
{
	int w = snprintf(out, outsz, "1 %s %s %lu %lld", id,
	    mtasts_mode_name(p->mode), p->max_age, expires);
	if (w < 0 || (size_t)w >= outsz)
		return -1;
	size_t n = (size_t)w;
	for (size_t i = 0; i < p->nmx; i++) {
		w = snprintf(out + n, outsz - n, " %s", p->mx[i]);
		if (w < 0 || (size_t)w >= outsz - n)
			return -1;
		n += (size_t)w;
	}
	return 0;
}

int
mtasts_cache_parse(const char *line, struct mtasts_policy *p,
    char id[MTASTS_ID_MAX + 1], long long *expires)
{
	char text[64 + (MTASTS_NAME_MAX + 2) * MTASTS_MX_MAX];
	char *save = NULL, *tok;
	size_t field = 0;

	if (strlen(line) >= sizeof(text))
		return -1;
	memcpy(text, line, strlen(line) + 1);
	memset(p, 0, sizeof(*p));
	for (tok = strtok_r(text, " ", &save); tok; tok = strtok_r(NULL, " ",
	    &save), field++) {
		size_t l = strlen(tok);
		char *end;
		switch (field) {
		case 0:
			if (strcmp(tok, "1") != 0)
				return -1;
			break;
		case 1:
			if (l == 0 || l > MTASTS_ID_MAX)
				return -1;
			for (size_t i = 0; i < l; i++)
				if (!is_alnum(tok[i]))
					return -1;
			memcpy(id, tok, l + 1);
			break;
		case 2:
			if (strcmp(tok, "enforce") == 0)
				p->mode = MTASTS_ENFORCE;
			else if (strcmp(tok, "testing") == 0)
				p->mode = MTASTS_TESTING;
			else if (strcmp(tok, "none") == 0)
				p->mode = MTASTS_NONE;
			else
				return -1;
			break;
		case 3:
			p->max_age = strtoul(tok, &end, 10);
			if (*end || tok[0] < '0' || tok[0] > '9' ||
			    p->max_age > MTASTS_MAX_AGE)
				return -1;
			break;
		case 4:
			*expires = strtoll(tok, &end, 10);
			if (*end || tok[0] < '0' || tok[0] > '9')
				return -1;
			break;
		default: {
			bool wild = l > 2 && tok[0] == '*' && tok[1] == '.';
			if (p->nmx >= MTASTS_MX_MAX || !valid_host(wild ?
			    tok + 2 : tok, wild ? l - 2 : l))
				return -1;
			memcpy(p->mx[p->nmx], tok, l + 1);
			ascii_lower(p->mx[p->nmx]);
			p->nmx++;
		}
		}
	}
	if (field < 5 || (p->mode != MTASTS_NONE && p->nmx == 0))
		return -1;
	return 0;
}
