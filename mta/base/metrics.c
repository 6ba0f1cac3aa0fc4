/* SPDX-License-Identifier: ISC */
/*
 * metrics.c - layer 0: the registry and its exposition (metrics.h).
 * Series are few (tens): a linear list, looked up by name and labels.
 */
#include "base/metrics.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

/* histogram bounds, seconds */
static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 14400, 86400 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct series {
	char *name, *labels;
	enum kind kind;
	double value;             /* counter, gauge; histogram: the sum */
	unsigned long count;      /* histogram */
	unsigned long bucket[NBOUNDS];
};

static const struct {
	const char *name, *help;
} helps[] = {
	{ "tern_smtp_connections_total", "SMTP connections taken, by role" },
	{ "tern_smtp_messages_total", "Messages ended by an SMTP client, by "
	    "result (accepted, rejected, tempfail)" },
	{ "tern_queue_messages", "Messages in the queue now, by state" },
	{ "tern_deliveries_total", "Delivery attempts of a recipient, by "
	    "relay (local, smtp) and result (delivered, deferred, failed)" },
	{ "tern_delivery_delay_seconds", "From arrival in the queue to final "
	    "delivery or failure, by relay" },
	{ "tern_connections", "Connections open now, by role" },
	{ "tern_imap_connections", "IMAP connections open now" },
	{ "tern_jmap_requests_total", "JMAP API requests, by result (ok, "
	    "error: a request-level problem)" },
	{ "tern_jmap_method_duration_seconds", "Time of JMAP method calls, "
	    "by method" },
	{ "tern_eventsource_connections", "EventSource push connections open "
	    "now" },
	{ "tern_auth_failures_total", "Failed logins, by protocol" },
	{ "tern_plugin_errors_total", "Lua hook errors, by plugin and hook" },
	{ "tern_uptime_seconds", "Seconds since ternd started" },
};

static struct series *all;
static size_t nall;
static void (*collect)(void *);
static void *collect_arg;

static struct series *
find(const char *name, const char *labels, enum kind kind)
{
	labels = labels ? labels : "";
	for (size_t i = 0; i < nall; i++)
		if (strcmp(all[i].name, name) == 0 &&
		    strcmp(all[i].labels, labels) == 0)
			return &all[i];
	all = xreallocarray(all, nall + 1, sizeof(*all));
	struct series *s = &all[nall++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	s->labels = xstrdup(labels);
	s->kind = kind;
	return s;
}

void
metrics_add(const char *name, const char *labels, double v)
{
	find(name, labels, K_COUNTER)->value += v;
}

void
metrics_set(const char *name, const char *labels, double v)
{
	find(name, labels, K_GAUGE)->value = v;
}

void
metrics_observe(const char *name, const char *labels, double v)
{
	struct series *s = find(name, labels, K_HISTOGRAM);

	s->value += v;
	s->count++;
	for (size_t i = 0; i < NBOUNDS; i++)
		if (v <= bounds[i])
			s->bucket[i]++;
}

void
metrics_on_collect(void (*fn)(void *arg), void *arg)
{
	collect = fn;
	collect_arg = arg;
}

void
metrics_label(char *out, size_t outsz, const char *name, const char *value)
{
	size_t n = 0;

	(void)snprintf(out, outsz, "%s=\"", name);
	n = strlen(out);
	for (const char *p = value; *p && n + 3 < outsz; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n') {
			out[n++] = '\\';
			out[n++] = *p == '\n' ? 'n' : *p;
		} else
			out[n++] = *p;
	}
	if (n + 2 > outsz)
		n = outsz - 2;
	out[n++] = '"';
	out[n] = '\0';
}

static int
cmp_series(const void *x, const void *y)
{
	const struct series *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->labels, b->labels);
}

static void
number(struct buf *out, double v)
{
	if (v == (double)(long long)v && v < 1e15 && v > -1e15)
		buf_printf(out, "%lld", (long long)v);
	else
		buf_printf(out, "%.6g", v);
}

static void
line(struct buf *out, const char *name, const char *suffix,
    const char *labels, const char *extra, double v)
{
	bool any = labels[0] || extra;

	buf_printf(out, "%s%s", name, suffix);
	if (any)
		buf_printf(out, "{%s%s%s}", labels, labels[0] && extra ? "," :
		    "", extra ? extra : "");
	buf_append_char(out, ' ');
	number(out, v);
	buf_append_char(out, '\n');
}

void
metrics_render(struct buf *out)
{
	if (collect)
		collect(collect_arg);
	qsort(all, nall, sizeof(*all), cmp_series);
	for (size_t i = 0; i < nall; i++) {
		const struct series *s = &all[i];
		if (i == 0 || strcmp(all[i - 1].name, s->name) != 0) {
			const char *help = "";
			for (size_t k = 0; k < sizeof(helps) / sizeof(helps[0]);
			    k++)
				if (strcmp(helps[k].name, s->name) == 0)
					help = helps[k].help;
			buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name,
			    help, s->name, s->kind == K_COUNTER ? "counter" :
			    s->kind == K_GAUGE ? "gauge" : "histogram");
		}
		if (s->kind != K_HISTOGRAM) {
			line(out, s->name, "", s->labels, NULL, s->value);
			continue;
		}
		char le[32];
		for (size_t k = 0; k < NBOUNDS; k++) {
			(void)snprintf(le, sizeof(le), "le=\"%g\"", bounds[k]);
			line(out, s->name, "_bucket", s->labels, le,
			    (double)s->bucket[k]);
		}
		line(out, s->name, "_bucket", s->labels, "le=\"+Inf\"",
		    (double)s->count);
		line(out, s->name, "_sum", s->labels, NULL, s->value);
		line(out, s->name, "_count", s->labels, NULL, (double)s->count);
	}
}

void
metrics_reset(void)
{
	for (size_t i = 0; i < nall; i++) {
		free(all[i].name);
		free(all[i].labels);
	}
	free(all);
	all = NULL;
	nall = 0;
}
