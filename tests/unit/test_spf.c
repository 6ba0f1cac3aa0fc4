/* SPDX-License-Identifier: ISC */
/*
 * SPF's pure part (mail/spf.c): records, the macro examples of RFC 7208
 * 7.4, address matching; and ip_parse (base/util.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/util.h"
#include "mail/spf.h"

static void
test_ip(void **state)
{
	unsigned char a[16];
	bool v6;

	(void)state;
	assert_int_equal(ip_parse("192.0.2.3", 9, a, &v6), 0);
	assert_false(v6);
	assert_true(a[0] == 192 && a[3] == 3);
	static const char *const good6[] = { "2001:db8::cb01", "::1", "::",
		"1:2:3:4:5:6:7:8", "::ffff:192.0.2.1", "fe80::", NULL };
	for (int i = 0; good6[i]; i++) {
		assert_int_equal(ip_parse(good6[i], strlen(good6[i]), a, &v6),
		    0);
		assert_true(v6);
	}
	assert_int_equal(ip_parse("2001:db8::cb01", 14, a, &v6), 0);
	assert_true(a[0] == 0x20 && a[1] == 0x01 && a[14] == 0xcb &&
	    a[15] == 0x01 && a[5] == 0);
	assert_int_equal(ip_parse("::ffff:192.0.2.1", 16, a, &v6), 0);
	assert_true(a[10] == 0xff && a[12] == 192 && a[15] == 1);
	static const char *const bad[] = { "1.2.3", "1.2.3.4.5", "256.1.1.1",
		"01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", ":1", "1:", "12345::",
		"g::1", "", "1.2.3.4 ", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(ip_parse(bad[i], strlen(bad[i]), a, &v6), -1);
}

static char *
expand(const char *spec, bool v6)
{
	static const unsigned char ip4[4] = { 192, 0, 2, 3 };
	static const unsigned char ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0xcb, 0x01 };
	struct spf_macros m = { "strong-bad@email.example.com",
		"email.example.com", v6 ? ip6 : ip4, v6, "mx.example.org",
		"mx.test", 1700000000, NULL };
	struct buf out;

	buf_init(&out);
	if (spf_expand(spec, &m, true, &out) != 0) {
		buf_clear(&out);
		return NULL;
	}
	return buf_steal(&out, NULL);
}

static void
test_macros(void **state)
{
	/* RFC 7208 7.4 */
	static const char *const ex[][2] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" }, { "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" }, { "%{d2}", "example.com" },
		{ "%{d1}", "com" }, { "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" }, { "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" }, { "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" }, { "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		  "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net",
		  "example.com.trusted-domains.example.net" },
		{ "%%%_%-", "% %20" }, { "%{h}", "mx.example.org" },
		{ "%{c} %{r} %{t}", "192.0.2.3 mx.test 1700000000" },
		{ "%{S}", "strong-bad%40email.example.com" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		char *got = expand(ex[i][0], false);
		assert_non_null(got);
		assert_string_equal(got, ex[i][1]);
		free(got);
	}
	char *got = expand("%{ir}.%{v}._spf.%{d2}", true);
	assert_string_equal(got, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	free(got);
	static const char *const bad[] = { "%", "%x", "%{", "%{d", "%{d0}",
		"%{q}", "%{d2x}", NULL };
	for (int i = 0; bad[i]; i++)
		assert_null(expand(bad[i], false));
	/* c, r and t only in explanations */
	struct spf_macros m = { "a@b.c", "b.c", (const unsigned char *)"\1\2\3\4",
		false, "h", "r", 0, NULL };
	struct buf out;
	buf_init(&out);
	assert_int_equal(spf_expand("%{c}", &m, false, &out), -1);
	/* a name over 253 octets loses labels on the left */
	char longspec[400];
	memset(longspec, 'a', 300);
	for (int i = 10; i < 300; i += 10)
		longspec[i] = '.';
	longspec[300] = '\0';
	out.len = 0;
	assert_int_equal(spf_expand(longspec, &m, false, &out), 0);
	assert_true(out.len <= 253 && out.data[0] != '.');
	buf_clear(&out);
}

static void
test_records(void **state)
{
	struct spf_record r;
	const char *why;

	(void)state;
	assert_int_equal(spf_record_parse("v=spf1 +mx a:%{d}.x/24//64 "
	    "-ip4:192.0.2.0/24 ~ip6:2001:db8::/32 ?include:_spf.example.com "
	    "exists:%{i}.bl.test ptr all redirect=_r.example.com "
	    "exp=explain.%{d} foo.bar=baz", &r, &why), 1);
	assert_int_equal(r.n, 8);
	assert_int_equal(r.t[0].mech, SPF_MX);
	assert_int_equal(r.t[1].mech, SPF_A);
	assert_string_equal(r.t[1].domain, "%{d}.x");
	assert_int_equal(r.t[1].cidr4, 24);
	assert_int_equal(r.t[1].cidr6, 64);
	assert_int_equal(r.t[2].qualifier, SPF_FAIL);
	assert_int_equal(r.t[2].cidr4, 24);
	assert_int_equal(r.t[3].qualifier, SPF_SOFTFAIL);
	assert_int_equal(r.t[3].cidr6, 32);
	assert_int_equal(r.t[4].qualifier, SPF_NEUTRAL);
	assert_string_equal(r.redirect, "_r.example.com");
	assert_non_null(r.exp);
	spf_record_clear(&r);
	assert_int_equal(spf_record_parse("v=spf10 -all", &r, &why), 0);
	assert_int_equal(spf_record_parse("hello", &r, &why), 0);
	assert_int_equal(spf_record_parse("V=SPF1", &r, &why), 1);
	assert_int_equal(r.n, 0);
	spf_record_clear(&r);
	static const char *const bad[] = { "v=spf1 foo", "v=spf1 all:x",
		"v=spf1 ip4:1.2.3", "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip6:1.2.3.4",
		"v=spf1 include", "v=spf1 a/", "v=spf1 a//129",
		"v=spf1 redirect=a redirect=b", "v=spf1 exp=", "v=spf1 -",
		"v=spf1 ip4:1.2.3.4/08", NULL };
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(spf_record_parse(bad[i], &r, &why), -1);
		assert_int_equal(r.n, 0);
	}
	/* domain-specs (RFC 7208 7.1): a macro or "." toplabel at the end,
	 * c, r and t only in explanations, no literal '%' */
	static const char *const specs_bad[] = { "v=spf1 a:museum",
		"v=spf1 a:111.222.33.44", "v=spf1 a:example.-com",
		"v=spf1 a:example.com:8080", "v=spf1 exists:mail.example.com/24",
		"v=spf1 ptr:example.com/24", "v=spf1 redirect=example.com/24",
		"v=spf1 -all exp=%{r}.example.com", "v=spf1 -all foo=%abc",
		"v=spf1 a:%{x}.example.com", "v=spf1 a:foo.example.com\x7f",
		"v=spf1 mx:example.com.-", NULL };
	for (int i = 0; specs_bad[i]; i++)
		assert_int_equal(spf_record_parse(specs_bad[i], &r, &why), -1);
	static const char *const specs_ok[] = {
		"v=spf1 a:foo:bar/baz.example.com", "v=spf1 a:example.com.",
		"v=spf1 a:%{d}", "v=spf1 exists:%{ir}.%{v}._spf.%{d2}",
		"v=spf1 a:1-2.example.1-2", "v=spf1 -all foo=%%%_%-",
		"v=spf1 ptr:%{p}.example.com", NULL };
	for (int i = 0; specs_ok[i]; i++) {
		assert_int_equal(spf_record_parse(specs_ok[i], &r, &why), 1);
		spf_record_clear(&r);
	}
	assert_int_equal(spf_record_parse("v=spf1 a:foo:bar/baz.example.com",
	    &r, &why), 1);
	assert_string_equal(r.t[0].domain, "foo:bar/baz.example.com");
	assert_int_equal(r.t[0].cidr4, 32);
	spf_record_clear(&r);
	assert_true(spf_uses_p("%{p}.x.com"));
	assert_true(spf_uses_p("a.%{P2r}"));
	assert_false(spf_uses_p("%%{p}.x.com"));
	assert_false(spf_uses_p(NULL));

	/* the identity: MAIL FROM's domain, else postmaster@ the HELO name */
	char dom[300], snd[300];
	assert_true(spf_identity("<a@B.example>", "h.test", dom, sizeof(dom),
	    snd, sizeof(snd)));
	assert_string_equal(dom, "b.example");
	assert_string_equal(snd, "a@B.example");
	assert_true(spf_identity("@example.net", "h.test", dom, sizeof(dom),
	    snd, sizeof(snd)));
	assert_string_equal(snd, "postmaster@example.net");
	assert_true(spf_identity("<>", "H.test", dom, sizeof(dom), snd,
	    sizeof(snd)));
	assert_string_equal(dom, "h.test");
	assert_string_equal(snd, "postmaster@H.test");
	assert_false(spf_identity("", "", dom, sizeof(dom), snd, sizeof(snd)));
	/* SMTPUTF8: a U-label domain is looked up by its A-labels */
	assert_true(spf_identity("<j\xc3\xb6rg@B\xc3\xbc" "cher.example>",
	    "h.test", dom, sizeof(dom), snd, sizeof(snd)));
	assert_string_equal(dom, "xn--bcher-kva.example");

	/* matching */
	static const unsigned char net[4] = { 192, 0, 2, 0 };
	static const unsigned char in[4] = { 192, 0, 2, 200 };
	static const unsigned char out[4] = { 192, 0, 3, 1 };
	assert_true(spf_ip_in(in, false, net, 24));
	assert_false(spf_ip_in(out, false, net, 24));
	assert_true(spf_ip_in(out, false, net, 22));
	assert_true(spf_ip_in(out, false, net, 0));
	assert_false(spf_ip_in(in, false, net, 32));
	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
