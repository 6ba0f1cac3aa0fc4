/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for base/metrics.c: the Prometheus text of counters,
 * gauges and histograms, label escaping, the collect callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/metrics.h"

static int collected;

static void
collect(void *arg)
{
	collected++;
	metrics_set("g_now", NULL, *(double *)arg);
}

static void
test_render(void **state)
{
	struct buf out;
	char l[64];
	double g = 7;

	(void)state;
	metrics_reset();
	metrics_add("c_total", "result=\"ok\"", 1);
	metrics_add("c_total", "result=\"ok\"", 2);
	metrics_add("c_total", "result=\"error\"", 1);
	metrics_observe("h_seconds", "m=\"x\"", 0.02);
	metrics_observe("h_seconds", "m=\"x\"", 7200);
	metrics_on_collect(collect, &g);
	buf_init(&out);
	metrics_render(&out);
	assert_int_equal(collected, 1);
	const char *t = out.data;
	assert_non_null(strstr(t, "# TYPE c_total counter\n"
	    "c_total{result=\"error\"} 1\nc_total{result=\"ok\"} 3\n"));
	assert_non_null(strstr(t, "# TYPE g_now gauge\ng_now 7\n"));
	assert_non_null(strstr(t, "# TYPE h_seconds histogram\n"));
	assert_non_null(strstr(t, "h_seconds_bucket{m=\"x\",le=\"0.01\"} 0\n"));
	assert_non_null(strstr(t, "h_seconds_bucket{m=\"x\",le=\"0.025\"} 1\n"));
	assert_non_null(strstr(t, "h_seconds_bucket{m=\"x\",le=\"3600\"} 1\n"));
	assert_non_null(strstr(t, "h_seconds_bucket{m=\"x\",le=\"14400\"} 2\n"));
	assert_non_null(strstr(t, "h_seconds_bucket{m=\"x\",le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(t, "h_seconds_sum{m=\"x\"} 7200.02\n"));
	assert_non_null(strstr(t, "h_seconds_count{m=\"x\"} 2\n"));
	buf_clear(&out);
	metrics_label(l, sizeof(l), "plugin", "a\"b\\c\nd");
	assert_string_equal(l, "plugin=\"a\\\"b\\\\c\\nd\"");
	metrics_label(l, 12, "plugin", "a very long value");
	assert_true(strlen(l) <= 11 && l[strlen(l) - 1] == '"');
	assert_true(strncmp(l, "plugin=\"a", 9) == 0);
	metrics_on_collect(NULL, NULL);
	metrics_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
