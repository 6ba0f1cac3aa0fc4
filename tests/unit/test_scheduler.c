/* SPDX-License-Identifier: ISC */
/* Unit tests for scheduler.c on a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "queue/scheduler.h"

static void
test_order(void **state)
{
	struct scheduler s;
	uint64_t key;
	int64_t due;
	(void)state;

	scheduler_init(&s);
	assert_false(scheduler_next(&s, &due));
	for (uint64_t k = 0; k < 1000; k++)
		scheduler_add(&s, k, (int64_t)((k * 7919) % 1000));
	assert_true(scheduler_next(&s, &due));
	assert_int_equal(due, 0);
	assert_false(scheduler_pop_due(&s, -1, &key, NULL));
	int64_t last = -1;
	size_t n = 0;
	while (scheduler_pop_due(&s, 499, &key, &due)) {
		assert_true(due <= 499);
		int64_t d = (int64_t)((key * 7919) % 1000);
		assert_true(d >= last && d <= 499);
		last = d;
		n++;
	}
	assert_int_equal(n, 500);
	assert_int_equal(scheduler_len(&s), 500);
	scheduler_clear(&s);
}

static void
test_default_delay(void **state)
{
	(void)state;
	/* RFC 5321 4.5.4.1: at least 30 minutes; growing; capped */
	assert_int_equal(scheduler_default_delay(1), 1800);
	assert_int_equal(scheduler_default_delay(2), 3600);
	assert_int_equal(scheduler_default_delay(3), 7200);
	assert_int_equal(scheduler_default_delay(4), 14400);
	assert_int_equal(scheduler_default_delay(50), 14400);
	assert_int_equal(scheduler_default_delay(0), 1800);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_default_delay),
	};
	return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
