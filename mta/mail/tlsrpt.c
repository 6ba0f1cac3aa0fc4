/* SPDX-License-Identifier: ISC */
/*
 * tlsrpt.c - layer 1 (pure): RFC 8460's record, book, report and
 * message (tlsrpt.h).
 *
 * The book keeps one entry per (domain, policy type): the policy as
 * last seen, the MX hosts it covered, the session counts and the
 * failures grouped by (result type, MX host, address). Bounded: a full
 * book takes no new domain, and an entry keeps at most 32 failure
 * groups and 16 MX hosts (the rest are still counted in the summary).
 */
#include "mail/tlsrpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/sasl.h"
#include "base/util.h"
#include "mail/message.h"

#define FAIL_GROUPS_MAX 32
#define MX_MAX 16

struct fail_group {
	char *result_type, *mx, *ip;
	uint64_t count;
};

struct entry {
	char *domain;
	enum tlsrpt_policy type;
	char *policy;
	char *mx[MX_MAX];
	size_t nmx;
	uint64_t ok, failed;
	struct fail_group fails[FAIL_GROUPS_MAX];
	size_t nfails;
};

struct tlsrpt_book {
	struct entry *e;
	size_t n, cap, max;
};

/* %XX escapes undone; false on a bad one or an address too long. */
static bool
unescape(const char *s, size_t len, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return false;
			char hex[3] = { s[i + 1], s[i + 2], 0 };
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end != '\0' || v <= 0 || hex[0] == '+' ||
			    hex[0] == '-')
				return false;
			c = (char)v;
			i += 2;
		}
		if (o + 1 >= outsz || (unsigned char)c < 0x21 || c == 0x7f)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0;
}

int
tlsrpt_txt_parse(const char *txt, char rua[][TLSRPT_ADDR_MAX + 1], size_t *n)
{
	const char *p = txt;
	bool first = true, have_rua = false;

	*n = 0;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t flen = strcspn(p, ";");
		size_t vl = flen;
		while (vl > 0 && (p[vl - 1] == ' ' || p[vl - 1] == '\t'))
			vl--;
		if (vl == 0 && p[flen] == '\0')
			break;
		const char *eq = memchr(p, '=', vl);
		if (eq == NULL || eq == p)
			return -1;
		size_t klen = (size_t)(eq - p);
		const char *v = eq + 1;
		size_t vlen = vl - klen - 1;
		if (first) {
			if (klen != 1 || p[0] != 'v' || vlen != 8 ||
			    memcmp(v, "TLSRPTv1", 8) != 0)
				return -1;
			first = false;
		} else if (klen == 3 && memcmp(p, "rua", 3) == 0 && !have_rua) {
			have_rua = true;
			/* comma-separated URIs */
			const char *u = v, *ue = v + vlen;
			while (u < ue) {
				while (u < ue && (*u == ' ' || *u == '\t'))
					u++;
				const char *c = u;
				while (c < ue && *c != ',')
					c++;
				const char *e = c;
				if (c == ue)
					c = NULL;
				const char *t = e;
				while (t > u && (t[-1] == ' ' || t[-1] == '\t'))
					t--;
				if (t - u > 7 && ascii_strncaseeq(u, "mailto:",
				    7) && *n < TLSRPT_RUA_MAX) {
					const char *a = u + 7;
					size_t al = (size_t)(t - a);
					/* no ?headers */
					const char *q = memchr(a, '?', al);
					if (q)
						al = (size_t)(q - a);
					if (unescape(a, al, rua[*n],
					    TLSRPT_ADDR_MAX + 1) &&
					    strchr(rua[*n], '@') != NULL)
						(*n)++;
				} else if (t - u > 8 && ascii_strncaseeq(u,
				    "https://", 8) && *n < TLSRPT_RUA_MAX &&
				    (size_t)(t - u) <= TLSRPT_ADDR_MAX) {
					bool ok = true;
					for (const char *k = u; k < t; k++)
						ok &= *k > ' ' && *k < 0x7f;
					if (ok) {
						memcpy(rua[*n], u, (size_t)(t - u));
						rua[*n][t - u] = '\0';
						(*n)++;
					}
				} else if (t == u)
					return -1;    /* an empty URI */
				u = c ? c + 1 : ue;
			}
		}
		if (p[flen] == '\0')
			break;
		p += flen + 1;
	}
	return !first && have_rua ? 0 : -1;
}

int
tlsrpt_txt_choose(char *const *txts, size_t ntxt,
    char rua[][TLSRPT_ADDR_MAX + 1], size_t *n)
{
	const char *only = NULL;
	size_t count = 0;

	*n = 0;
	for (size_t i = 0; i < ntxt; i++)
		if (strncmp(txts[i], "v=TLSRPTv1", 10) == 0) {
			only = txts[i];
			count++;
		}
	if (count != 1)
		return -1;
	return tlsrpt_txt_parse(only, rua, n);
}

struct tlsrpt_book *
tlsrpt_book_new(size_t max_domains)
{
	struct tlsrpt_book *b = xcalloc(1, sizeof(*b));

	b->max = max_domains ? max_domains : 1000;
	return b;
}

void
tlsrpt_book_free(struct tlsrpt_book *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct entry *e = &b->e[i];
		free(e->domain);
		free(e->policy);
		for (size_t k = 0; k < e->nmx; k++)
			free(e->mx[k]);
		for (size_t k = 0; k < e->nfails; k++) {
			free(e->fails[k].result_type);
			free(e->fails[k].mx);
			free(e->fails[k].ip);
		}
	}
	free(b->e);
	free(b);
}

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The entry of (domain, type), made if need be; NULL if the book is
 * full. */
static struct entry *
entry_for(struct tlsrpt_book *b, const char *domain, enum tlsrpt_policy type,
    size_t *index)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->e[i].type == type && ascii_strcaseeq(b->e[i].domain,
		    domain)) {
			*index = i;
			return &b->e[i];
		}
	if (b->n >= b->max)
		return NULL;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		b->e = xreallocarray(b->e, b->cap, sizeof(*b->e));
	}
	*index = b->n;
	struct entry *e = &b->e[b->n++];
	memset(e, 0, sizeof(*e));
	e->domain = xstrdup(domain);
	ascii_lower(e->domain);
	e->type = type;
	return e;
}

bool
tlsrpt_count(struct tlsrpt_book *b, const struct tlsrpt_session *s)
{
	size_t i;

	return tlsrpt_count_at(b, s, &i);
}

bool
tlsrpt_count_at(struct tlsrpt_book *b, const struct tlsrpt_session *s,
    size_t *index)
{
	struct entry *e = entry_for(b, s->domain, s->type, index);

	if (e == NULL)
		return false;
	if (s->policy && !same(e->policy, s->policy)) {
		free(e->policy);
		e->policy = xstrdup(s->policy);
	}
	bool known = s->mx_host == NULL;   /* a policy fetch: no host */
	for (size_t k = 0; k < e->nmx && !known; k++)
		known = ascii_strcaseeq(e->mx[k], s->mx_host);
	if (!known && e->nmx < MX_MAX)
		e->mx[e->nmx++] = xstrdup(s->mx_host);
	if (s->success) {
		e->ok++;
		return true;
	}
	e->failed++;
	const char *rt = s->result_type ? s->result_type : "validation-failure";
	for (size_t k = 0; k < e->nfails; k++) {
		struct fail_group *g = &e->fails[k];
		if (strcmp(g->result_type, rt) == 0 && same(g->mx, s->mx_host) &&
		    same(g->ip, s->receiving_ip)) {
			g->count++;
			return true;
		}
	}
	if (e->nfails < FAIL_GROUPS_MAX) {
		struct fail_group *g = &e->fails[e->nfails++];
		g->result_type = xstrdup(rt);
		g->mx = s->mx_host ? xstrdup(s->mx_host) : NULL;
		g->ip = s->receiving_ip ? xstrdup(s->receiving_ip) : NULL;
		g->count = 1;
	}
	return true;
}

size_t
tlsrpt_book_len(const struct tlsrpt_book *b)
{
	return b->n;
}

const char *
tlsrpt_book_domain(const struct tlsrpt_book *b, size_t i)
{
	return i < b->n ? b->e[i].domain : NULL;
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *
tlsrpt_entry_save(const struct tlsrpt_book *b, size_t i)
{
	if (i >= b->n)
		return NULL;
	const struct entry *e = &b->e[i];
	json_t *o = json_object(), *mx = json_array(), *f = json_array();
	json_object_set_new(o, "domain", json_string(e->domain));
	json_object_set_new(o, "type", json_string(e->type == TLSRPT_STS ?
	    "sts" : "tlsa"));
	json_object_set_new(o, "policy", str_or_null(e->policy));
	for (size_t k = 0; k < e->nmx; k++)
		json_array_append_new(mx, json_string(e->mx[k]));
	json_object_set_new(o, "mx", mx);
	json_object_set_new(o, "ok", json_integer((json_int_t)e->ok));
	json_object_set_new(o, "failed", json_integer((json_int_t)e->failed));
	for (size_t k = 0; k < e->nfails; k++) {
		const struct fail_group *g = &e->fails[k];
		json_t *a = json_array();
		json_array_append_new(a, json_string(g->result_type));
		json_array_append_new(a, str_or_null(g->mx));
		json_array_append_new(a, str_or_null(g->ip));
		json_array_append_new(a, json_integer((json_int_t)g->count));
		json_array_append_new(f, a);
	}
	json_object_set_new(o, "failures", f);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* A string of at most max octets, no NUL; or null where nullable. */
static bool
good_str(const json_t *v, size_t max, bool nullable)
{
	if (json_is_null(v))
		return nullable;
	return json_is_string(v) && json_string_length(v) <= max &&
	    strlen(json_string_value(v)) == json_string_length(v);
}

static bool
good_count(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

static char *
dup_or_null(const json_t *v)
{
	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

int
tlsrpt_entry_restore(struct tlsrpt_book *b, const char *text)
{
	json_error_t jerr;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	int rc = -1;

	if (!json_is_object(o))
		goto out;
	const json_t *d = json_object_get(o, "domain"),
	    *t = json_object_get(o, "type"), *p = json_object_get(o, "policy"),
	    *mx = json_object_get(o, "mx"), *ok = json_object_get(o, "ok"),
	    *failed = json_object_get(o, "failed"),
	    *f = json_object_get(o, "failures");
	if (!good_str(d, 255, false) || json_string_length(d) == 0 ||
	    !good_str(t, 4, false) || !good_str(p, 65536, true) ||
	    !json_is_array(mx) || json_array_size(mx) > MX_MAX ||
	    !good_count(ok) || !good_count(failed) || !json_is_array(f) ||
	    json_array_size(f) > FAIL_GROUPS_MAX)
		goto out;
	enum tlsrpt_policy type;
	if (strcmp(json_string_value(t), "sts") == 0)
		type = TLSRPT_STS;
	else if (strcmp(json_string_value(t), "tlsa") == 0)
		type = TLSRPT_TLSA;
	else
		goto out;
	for (size_t k = 0; k < json_array_size(mx); k++)
		if (!good_str(json_array_get(mx, k), 255, false))
			goto out;
	for (size_t k = 0; k < json_array_size(f); k++) {
		const json_t *a = json_array_get(f, k);
		if (!json_is_array(a) || json_array_size(a) != 4 ||
		    !good_str(json_array_get(a, 0), 64, false) ||
		    !good_str(json_array_get(a, 1), 255, true) ||
		    !good_str(json_array_get(a, 2), 64, true) ||
		    !good_count(json_array_get(a, 3)))
			goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->e[i].type == type && ascii_strcaseeq(b->e[i].domain,
		    json_string_value(d)))
			goto out;        /* one entry per (domain, type) */
	size_t i;
	struct entry *e = entry_for(b, json_string_value(d), type, &i);
	if (e == NULL)
		goto out;
	e->policy = dup_or_null(p);
	for (size_t k = 0; k < json_array_size(mx); k++)
		e->mx[e->nmx++] = dup_or_null(json_array_get(mx, k));
	e->ok = (uint64_t)json_integer_value(ok);
	e->failed = (uint64_t)json_integer_value(failed);
	for (size_t k = 0; k < json_array_size(f); k++) {
		const json_t *a = json_array_get(f, k);
		struct fail_group *g = &e->fails[e->nfails++];
		g->result_type = dup_or_null(json_array_get(a, 0));
		g->mx = dup_or_null(json_array_get(a, 1));
		g->ip = dup_or_null(json_array_get(a, 2));
		g->count = (uint64_t)json_integer_value(json_array_get(a, 3));
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static void
iso_time(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	(void)gmtime_r(&t, &tm);
	(void)strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
policy_json(const struct entry *e)
{
	json_t *pol = json_object();
	json_t *lines = json_array();
	const char *p = e->policy ? e->policy : "";

	/* an MTA-STS policy never fetched (only fetch failures counted):
	 * RFC 8460 4.4's no-policy-found */
	json_object_set_new(pol, "policy-type", json_string(e->type ==
	    TLSRPT_TLSA ? "tlsa" : e->policy ? "sts" : "no-policy-found"));
	while (*p) {
		size_t l = strcspn(p, "\n");
		json_array_append_new(lines, json_stringn(p, l));
		p += l + (p[l] == '\n');
	}
	json_object_set_new(pol, "policy-string", lines);
	json_object_set_new(pol, "policy-domain", json_string(e->domain));
	json_t *mx = json_array();
	for (size_t k = 0; k < e->nmx; k++)
		json_array_append_new(mx, json_string(e->mx[k]));
	json_object_set_new(pol, "mx-host", mx);
	return pol;
}

char *
tlsrpt_report_json(const struct tlsrpt_book *b, size_t i, const char *org,
    const char *contact, const char *report_id, time_t start, time_t end)
{
	char t0[32], t1[32];
	json_t *r = json_object();
	json_t *range = json_object();
	json_t *policies = json_array();

	iso_time(start, t0, sizeof(t0));
	iso_time(end, t1, sizeof(t1));
	json_object_set_new(r, "organization-name", json_string(org));
	json_object_set_new(range, "start-datetime", json_string(t0));
	json_object_set_new(range, "end-datetime", json_string(t1));
	json_object_set_new(r, "date-range", range);
	json_object_set_new(r, "contact-info", json_string(contact));
	json_object_set_new(r, "report-id", json_string(report_id));
	for (size_t k = 0; k < b->n; k++) {
		const struct entry *e = &b->e[k];
		if (!ascii_strcaseeq(e->domain, b->e[i].domain))
			continue;
		json_t *p = json_object();
		json_t *sum = json_object();
		json_object_set_new(p, "policy", policy_json(e));
		json_object_set_new(sum, "total-successful-session-count",
		    json_integer((json_int_t)e->ok));
		json_object_set_new(sum, "total-failure-session-count",
		    json_integer((json_int_t)e->failed));
		json_object_set_new(p, "summary", sum);
		if (e->nfails > 0) {
			json_t *fd = json_array();
			for (size_t g = 0; g < e->nfails; g++) {
				const struct fail_group *f = &e->fails[g];
				json_t *o = json_object();
				json_object_set_new(o, "result-type",
				    json_string(f->result_type));
				if (f->ip)
					json_object_set_new(o, "receiving-ip",
					    json_string(f->ip));
				if (f->mx)
					json_object_set_new(o,
					    "receiving-mx-hostname",
					    json_string(f->mx));
				json_object_set_new(o, "failed-session-count",
				    json_integer((json_int_t)f->count));
				json_array_append_new(fd, o);
			}
			json_object_set_new(p, "failure-details", fd);
		}
		json_array_append_new(policies, p);
	}
	json_object_set_new(r, "policies", policies);
	char *text = json_dumps(r, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(r);
	return text;
}

void
tlsrpt_message_build(struct buf *out, const struct tlsrpt_message *m)
{
	char date[64], boundary[80], name[700];
	struct tm tm;

	(void)gmtime_r(&m->date, &tm);
	message_format_date(date, sizeof(date), &tm, 0);
	(void)snprintf(boundary, sizeof(boundary), "=_tlsrpt_%s",
	    m->report_id);
	(void)snprintf(name, sizeof(name), "%s!%s!%lld!%lld!%s.json.gz",
	    m->submitter, m->domain, (long long)m->start, (long long)m->end,
	    m->report_id);
	buf_printf(out, "From: <%s>\nTo: <%s>\nDate: %s\n"
	    "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\n"
	    "Message-ID: <%s>\nTLS-Report-Domain: %s\n"
	    "TLS-Report-Submitter: %s\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";\n"
	    " boundary=\"%s\"\n\n", m->from, m->to, date, m->domain,
	    m->submitter, m->report_id, m->message_id, m->domain,
	    m->submitter, boundary);
	buf_printf(out, "--%s\nContent-Type: text/plain; charset=us-ascii\n\n"
	    "This is an aggregate TLS report from %s for %s (RFC 8460).\n\n",
	    boundary, m->submitter, m->domain);
	buf_printf(out, "--%s\nContent-Type: application/tlsrpt+gzip\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment;\n filename=\"%s\"\n\n", boundary,
	    name);
	/* base64 in lines of 76 (57 octets each) */
	for (size_t i = 0; i < m->gz_len; i += 57) {
		char line[80];
		size_t k = m->gz_len - i < 57 ? m->gz_len - i : 57;
		if (sasl_b64_encode((const char *)m->gz + i, k, line,
		    sizeof(line)) == 0)
			buf_printf(out, "%s\n", line);
	}
	buf_printf(out, "--%s--\n", boundary);
}
