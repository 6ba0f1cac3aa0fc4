/* SPDX-License-Identifier: ISC */
/* Unit tests for tlsa.c: rdata, what SMTP may use, the verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/tlsa.h"

static void
rr(struct tlsa_rr *r, unsigned u, unsigned s, unsigned m, size_t len)
{
	static unsigned char data[80];

	memset(data, 0xab, sizeof(data));
	r->usage = (uint8_t)u;
	r->selector = (uint8_t)s;
	r->mtype = (uint8_t)m;
	r->data = data;
	r->len = len;
}

static void
test_parse(void **state)
{
	static const unsigned char ee[] = { 3, 1, 1, 0xde, 0xad };
	static const unsigned char bare[] = { 3, 1, 1 };
	struct tlsa_rr r;
	(void)state;

	assert_int_equal(tlsa_parse_rdata(ee, sizeof(ee), &r), 0);
	assert_int_equal(r.usage, 3);
	assert_int_equal(r.selector, 1);
	assert_int_equal(r.mtype, 1);
	assert_int_equal(r.len, 2);
	assert_ptr_equal(r.data, ee + 3);
	/* no association data at all: malformed */
	assert_int_equal(tlsa_parse_rdata(bare, sizeof(bare), &r), -1);
	assert_int_equal(tlsa_parse_rdata(NULL, 0, &r), -1);
}

static void
test_usable(void **state)
{
	struct tlsa_rr r;
	(void)state;

	rr(&r, 3, 1, 1, 32);
	assert_true(tlsa_usable(&r));
	rr(&r, 2, 0, 2, 64);
	assert_true(tlsa_usable(&r));
	rr(&r, 3, 0, 0, 70);
	assert_true(tlsa_usable(&r));       /* Full: any length */
	rr(&r, 3, 1, 1, 31);
	assert_false(tlsa_usable(&r));      /* SHA-256 of the wrong size */
	rr(&r, 3, 1, 2, 32);
	assert_false(tlsa_usable(&r));
	rr(&r, 1, 1, 1, 32);
	assert_false(tlsa_usable(&r));      /* PKIX-EE: not for SMTP */
	rr(&r, 0, 0, 1, 32);
	assert_false(tlsa_usable(&r));
	rr(&r, 4, 1, 1, 32);
	assert_false(tlsa_usable(&r));
	rr(&r, 3, 2, 1, 32);
	assert_false(tlsa_usable(&r));      /* unknown selector */
	rr(&r, 3, 1, 3, 32);
	assert_false(tlsa_usable(&r));      /* unknown matching type */
	rr(&r, 3, 0, 0, TLSA_DATA_MAX + 1);
	assert_false(tlsa_usable(&r));
}

static void
test_format(void **state)
{
	static const unsigned char d[] = { 0x01, 0x23, 0xab, 0xcd };
	struct tlsa_rr r = { 3, 1, 1, d, sizeof(d) };
	char out[64];
	(void)state;

	tlsa_format(&r, 0, out, sizeof(out));
	assert_string_equal(out, "3 1 1 0123abcd");
	tlsa_format(&r, 4, out, sizeof(out));
	assert_string_equal(out, "3 1 1 0123...");
	tlsa_format(&r, 0, out, 9);
	assert_string_equal(out, "3 1 1 01");
	assert_string_equal(tlsa_usage_name(3), "DANE-EE");
	assert_string_equal(tlsa_usage_name(2), "DANE-TA");
	assert_string_equal(tlsa_usage_name(9), "unknown usage");
}

static void
test_verdict(void **state)
{
	struct tlsa_rr rs[2];
	size_t u;
	(void)state;

	rr(&rs[0], 1, 1, 1, 32);             /* unusable */
	rr(&rs[1], 3, 1, 1, 32);             /* usable */
	assert_int_equal(tlsa_verdict(true, true, TLSA_FOUND, true, rs, 2, &u),
	    TLSA_AUTHENTICATE);
	assert_int_equal(u, 1);
	assert_int_equal(tlsa_verdict(true, true, TLSA_FOUND, true, rs, 1, &u),
	    TLSA_TLS_ONLY);
	/* an insecure TLSA RRset proves nothing */
	assert_int_equal(tlsa_verdict(true, true, TLSA_FOUND, false, rs, 2,
	    &u), TLSA_NO_DANE);
	/* insecure MX or addresses: no TLSA lookup counts, even a failed one */
	assert_int_equal(tlsa_verdict(false, true, TLSA_FOUND, true, rs, 2,
	    &u), TLSA_NO_DANE);
	assert_int_equal(tlsa_verdict(true, false, TLSA_FAILED, false, rs, 0,
	    &u), TLSA_NO_DANE);
	/* secure up to the TLSA lookup, which failed: not this host */
	assert_int_equal(tlsa_verdict(true, true, TLSA_FAILED, false, NULL, 0,
	    &u), TLSA_SKIP_HOST);
	assert_int_equal(tlsa_verdict(true, true, TLSA_ABSENT, true, NULL, 0,
	    &u), TLSA_NO_DANE);
	assert_string_equal(tlsa_verdict_text(TLSA_NO_DANE), "no DANE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_verdict),
	};
	return cmocka_run_group_tests_name("tlsa", tests, NULL, NULL);
}
