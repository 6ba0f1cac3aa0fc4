/* SPDX-License-Identifier: ISC */
/* Unit tests for dnsmsg.c: the stub's query, and replies read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/dnsmsg.h"

/* A reply being built: header, the question, answer records. */
struct pkt {
	unsigned char b[8192];
	size_t n;
	unsigned an;
};

static void
put(struct pkt *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void
put16(struct pkt *p, unsigned v)
{
	unsigned char d[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	put(p, d, 2);
}

/* "mx.dane.test" in wire form, no compression */
static void
put_name(struct pkt *p, const char *text)
{
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);
		unsigned char c = (unsigned char)l;
		put(p, &c, 1);
		put(p, text, l);
		text += l + (dot != NULL);
	}
	put(p, "", 1);
}

static void
begin(struct pkt *p, unsigned id, unsigned flags, const char *qname,
    unsigned qtype)
{
	memset(p, 0, sizeof(*p));
	put16(p, id);
	put16(p, flags);
	put16(p, 1);
	put16(p, 0);         /* ANCOUNT, set by rr() */
	put16(p, 0);
	put16(p, 0);
	put_name(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

/* An answer record; its owner name already put (name or pointer). */
static void
rr(struct pkt *p, unsigned type, const void *rdata, size_t len)
{
	put16(p, type);
	put16(p, 1);
	put16(p, 0);
	put16(p, 300);
	put16(p, (unsigned)len);
	put(p, rdata, len);
	p->an++;
	p->b[6] = (unsigned char)(p->an >> 8);
	p->b[7] = (unsigned char)p->an;
}

static const unsigned char ptr_qname[] = { 0xc0, 12 };

static void
test_query(void **state)
{
	unsigned char q[512];
	(void)state;

	size_t n = dnsmsg_query(0x1234, "mx.Example.org.", 15, q, sizeof(q));
	static const unsigned char want[] = {
		0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1,
		2, 'm', 'x', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r',
		'g', 0, 0, 15, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(q, want, sizeof(want));
	/* the root, and names that are none */
	assert_int_equal(dnsmsg_query(1, ".", 48, q, sizeof(q)), 12 + 1 + 4 + 11);
	assert_int_equal(dnsmsg_query(1, "a..b", 1, q, sizeof(q)), 0);
	assert_int_equal(dnsmsg_query(1, ".a", 1, q, sizeof(q)), 0);
	char big[80];
	memset(big, 'a', 64);
	big[64] = '\0';
	assert_int_equal(dnsmsg_query(1, big, 1, q, sizeof(q)), 0);
	big[63] = '\0';
	assert_int_not_equal(dnsmsg_query(1, big, 1, q, sizeof(q)), 0);
	char longname[300];
	for (int i = 0; i < 64; i++)
		memcpy(longname + 4 * i, "abc.", 4);
	longname[255] = '\0';
	assert_int_equal(dnsmsg_query(1, longname, 1, q, sizeof(q)), 0);
	assert_int_equal(dnsmsg_query(1, "x", 1, q, 20), 0);
}

static void
test_address_with_ad(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	static const unsigned char addr[] = { 127, 0, 0, 2 };
	(void)state;

	begin(&p, 7, 0x81a0, "mx.dane.test", 1);      /* QR RD RA AD */
	put(&p, ptr_qname, 2);
	rr(&p, 1, addr, 4);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "MX.dane.test.", 1, &a), 0);
	assert_true(a.ad);
	assert_false(a.tc);
	assert_int_equal(a.rcode, 0);
	assert_string_equal(a.canon, "");
	assert_int_equal(a.n, 1);
	assert_int_equal(a.rr[0].len, 4);
	assert_memory_equal(a.rr[0].rdata, addr, 4);
	dnsmsg_answer_free(&a);
	/* without AD: read the same, not secure */
	p.b[3] = 0x80;
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "mx.dane.test", 1, &a), 0);
	assert_false(a.ad);
	assert_int_equal(a.n, 1);
	dnsmsg_answer_free(&a);
}

static void
test_not_the_reply(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	(void)state;

	begin(&p, 7, 0x8180, "mx.dane.test", 1);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 8, "mx.dane.test", 1, &a), -1);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "mx2.dane.test", 1, &a),
	    -1);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "mx.dane.test", 28, &a),
	    -1);
	assert_int_equal(dnsmsg_parse(p.b, 11, 7, "mx.dane.test", 1, &a), -1);
	assert_int_equal(dnsmsg_parse(p.b, p.n - 1, 7, "mx.dane.test", 1, &a),
	    -1);
	p.b[2] = 0x01;       /* a query, not a reply */
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "mx.dane.test", 1, &a), -1);
	p.b[2] = 0x81 | (2 << 3);  /* opcode 2 */
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "mx.dane.test", 1, &a), -1);
	p.b[2] = 0x81;
	assert_int_equal(dnsmsg_parse(p.b, p.n, 7, "mx.dane.test", 1, &a), 0);
	assert_int_equal(a.n, 0);   /* NOERROR, no records: NODATA */
	/* an answer record running past the end */
	static const unsigned char addr[] = { 127, 0, 0, 2 };
	put(&p, ptr_qname, 2);
	rr(&p, 1, addr, 4);
	assert_int_equal(dnsmsg_parse(p.b, p.n - 1, 7, "mx.dane.test", 1, &a),
	    -1);
	assert_int_equal(a.n, 0);
}

static void
test_rcode_and_tc(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	(void)state;

	begin(&p, 9, 0x81a3, "none.dane.test", 52);   /* NXDOMAIN, proven */
	assert_int_equal(dnsmsg_parse(p.b, p.n, 9, "none.dane.test", 52, &a),
	    0);
	assert_int_equal(a.rcode, 3);
	assert_true(a.ad);
	assert_int_equal(a.n, 0);
	begin(&p, 9, 0x8182, "none.dane.test", 52);   /* SERVFAIL */
	assert_int_equal(dnsmsg_parse(p.b, p.n, 9, "none.dane.test", 52, &a),
	    0);
	assert_int_equal(a.rcode, 2);
	begin(&p, 9, 0x8380, "none.dane.test", 52);   /* TC: nothing read */
	p.b[7] = 5;          /* five answers said, none there */
	assert_int_equal(dnsmsg_parse(p.b, p.n, 9, "none.dane.test", 52, &a),
	    0);
	assert_true(a.tc);
	assert_int_equal(a.n, 0);
}

static void
test_mx_compressed(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	(void)state;

	begin(&p, 3, 0x81a0, "dane.test", 15);
	/* 10 mx.<pointer to dane.test>; 20 mx2.dane.test uncompressed */
	static const unsigned char mx1[] = { 0, 10, 2, 'm', 'x', 0xc0, 12 };
	put(&p, ptr_qname, 2);
	rr(&p, 15, mx1, sizeof(mx1));
	struct pkt n2 = { .n = 0 };
	put16(&n2, 20);
	put_name(&n2, "mx2.dane.test");
	put(&p, ptr_qname, 2);
	rr(&p, 15, n2.b, n2.n);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 3, "dane.test", 15, &a), 0);
	assert_int_equal(a.n, 2);
	static const unsigned char want1[] = { 0, 10, 2, 'm', 'x', 4, 'd', 'a',
		'n', 'e', 4, 't', 'e', 's', 't', 0 };
	assert_int_equal(a.rr[0].len, sizeof(want1));
	assert_memory_equal(a.rr[0].rdata, want1, sizeof(want1));
	assert_int_equal(a.rr[1].len, n2.n);
	assert_memory_equal(a.rr[1].rdata, n2.b, n2.n);
	dnsmsg_answer_free(&a);

	/* an exchange name running past its rdata: left out, counted */
	begin(&p, 3, 0x8180, "dane.test", 15);
	static const unsigned char bad[] = { 0, 10, 2, 'm', 'x' };
	put(&p, ptr_qname, 2);
	rr(&p, 15, bad, sizeof(bad));
	put(&p, "", 1);      /* what the name would have run into */
	assert_int_equal(dnsmsg_parse(p.b, p.n, 3, "dane.test", 15, &a), 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.malformed, 1);
}

static void
test_cname_chain(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	static const unsigned char addr[] = { 127, 0, 0, 2 }, other[] = { 10,
		0, 0, 1 };
	(void)state;

	/* the target's record first, then the CNAME, then a stranger */
	begin(&p, 5, 0x81a0, "alias.dane.test", 1);
	size_t target = p.n;
	put_name(&p, "MX.dane.test");
	rr(&p, 1, addr, 4);
	put(&p, ptr_qname, 2);
	unsigned char cname[2] = { 0xc0, (unsigned char)target };
	rr(&p, 5, cname, 2);
	put_name(&p, "other.dane.test");
	rr(&p, 1, other, 4);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 5, "alias.dane.test", 1, &a),
	    0);
	assert_string_equal(a.canon, "MX.dane.test");
	assert_int_equal(a.n, 1);
	assert_memory_equal(a.rr[0].rdata, addr, 4);
	dnsmsg_answer_free(&a);

	/* a chain to nowhere (the target has no A): NODATA at the end */
	begin(&p, 5, 0x81a0, "alias.dane.test", 1);
	put(&p, ptr_qname, 2);
	struct pkt t = { .n = 0 };
	put_name(&t, "gone.dane.test");
	rr(&p, 5, t.b, t.n);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 5, "alias.dane.test", 1, &a),
	    0);
	assert_string_equal(a.canon, "gone.dane.test");
	assert_int_equal(a.n, 0);

	/* a loop of CNAMEs: a -> b -> a ... longer than we follow */
	begin(&p, 5, 0x8180, "a.test", 1);
	size_t a_at = 12;
	put(&p, ptr_qname, 2);
	size_t b_at = p.n + 10;
	struct pkt bn = { .n = 0 };
	put_name(&bn, "b.test");
	rr(&p, 5, bn.b, bn.n);
	unsigned char back[2] = { 0xc0, (unsigned char)a_at };
	unsigned char bptr[2] = { 0xc0, (unsigned char)b_at };
	put(&p, bptr, 2);
	rr(&p, 5, back, 2);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 5, "a.test", 1, &a), -1);
}

static void
test_pointer_loops(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	static const unsigned char addr[] = { 127, 0, 0, 2 };
	(void)state;

	/* an owner that points at itself */
	begin(&p, 1, 0x8180, "x.test", 1);
	unsigned char self[2] = { 0xc0, (unsigned char)p.n };
	put(&p, self, 2);
	rr(&p, 1, addr, 4);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 1, "x.test", 1, &a), -1);

	/* a label, then a pointer back to that label: a loop */
	begin(&p, 1, 0x8180, "x.test", 1);
	unsigned char loop[4] = { 1, 'y', 0xc0, (unsigned char)p.n };
	put(&p, loop, 4);
	rr(&p, 1, addr, 4);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 1, "x.test", 1, &a), -1);

	/* a pointer forward */
	begin(&p, 1, 0x8180, "x.test", 1);
	unsigned char fwd[2] = { 0xc0, (unsigned char)(p.n + 14) };
	put(&p, fwd, 2);
	rr(&p, 1, addr, 4);
	put(&p, ptr_qname, 2);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 1, "x.test", 1, &a), -1);

	/* the 0x40 and 0x80 label types */
	begin(&p, 1, 0x8180, "x.test", 1);
	unsigned char ext[2] = { 0x41, 0 };
	put(&p, ext, 2);
	rr(&p, 1, addr, 4);
	assert_int_equal(dnsmsg_parse(p.b, p.n, 1, "x.test", 1, &a), -1);
}

static void
test_many_records(void **state)
{
	struct pkt p;
	struct dnsmsg_answer a;
	unsigned char tlsa[35] = { 3, 1, 1 };
	(void)state;

	begin(&p, 2, 0x81a0, "_25._tcp.mx.dane.test", 52);
	for (int i = 0; i < DNSMSG_MAX_RR + 6; i++) {
		tlsa[3] = (unsigned char)i;
		put(&p, ptr_qname, 2);
		rr(&p, 52, tlsa, sizeof(tlsa));
	}
	assert_int_equal(dnsmsg_parse(p.b, p.n, 2, "_25._tcp.mx.dane.test", 52,
	    &a), 0);
	assert_int_equal(a.n, DNSMSG_MAX_RR);
	assert_int_equal(a.rr[5].rdata[3], 5);
	dnsmsg_answer_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_address_with_ad),
		cmocka_unit_test(test_not_the_reply),
		cmocka_unit_test(test_rcode_and_tc),
		cmocka_unit_test(test_mx_compressed),
		cmocka_unit_test(test_cname_chain),
		cmocka_unit_test(test_pointer_loops),
		cmocka_unit_test(test_many_records),
	};
	return cmocka_run_group_tests_name("dnsmsg", tests, NULL, NULL);
}
