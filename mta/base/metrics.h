/* SPDX-License-Identifier: ISC */
/*
 * metrics.h - layer 0: the daemon's counters, gauges and histograms, and
 * their Prometheus text exposition (version 0.0.4), served at /metrics.
 * One registry per process; loop thread only (the I/O workers count
 * nothing). A series is a name and its labels, written as Prometheus
 * writes them ("result=\"accepted\""); it is made on first use.
 */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include <stddef.h>

#include "base/buf.h"

/* Adds v to a counter. */
void metrics_add(const char *name, const char *labels, double v);
/* Sets a gauge. */
void metrics_set(const char *name, const char *labels, double v);
/* Observes v (seconds) in a histogram of METRICS_BUCKETS buckets. */
void metrics_observe(const char *name, const char *labels, double v);

/* Called before each exposition: sets the gauges read from elsewhere. */
void metrics_on_collect(void (*fn)(void *arg), void *arg);

/* The exposition of every series, with HELP and TYPE lines. */
void metrics_render(struct buf *out);

/* A label value escaped for the exposition (\, " and newline). */
void metrics_label(char *out, size_t outsz, const char *name,
    const char *value);

/* Forgets everything (tests). */
void metrics_reset(void);

#endif
