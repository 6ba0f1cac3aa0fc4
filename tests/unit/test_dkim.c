/* SPDX-License-Identifier: ISC */
/*
 * DKIM (mail/dkim.c): tag lists, the canonicalizations of RFC 6376
 * 3.4.6, signatures and key records, and the example of RFC 8463
 * appendix A: both its signatures verify with its keys (base/tls.c),
 * the Ed25519 one is made again byte for byte from its private key, a
 * change to the message breaks them, and a signature of ours verifies.
 * ARC (mail/arc.c): a chain of two sets made by dkimpy verifies, seal
 * by seal and message signature by message signature, and broken forms
 * of chains and seals are told apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/sasl.h"
#include "base/tls.h"
#include "base/util.h"
#include "mail/arc.h"
#include "mail/authres.h"
#include "mail/bodyhash.h"
#include "mail/dkim.h"

static void
collect(void *arg, const void *p, size_t n)
{
	buf_append(arg, p, n);
}

static char *
body_canon(enum dkim_canon c, const char *body, size_t piece)
{
	struct buf out;
	struct dkim_body b;
	size_t n = strlen(body);

	buf_init(&out);
	dkim_body_init(&b, c, UINT64_MAX, collect, &out);
	for (size_t i = 0; i < n; i += piece)
		dkim_body_feed(&b, body + i, n - i < piece ? n - i : piece);
	dkim_body_end(&b);
	buf_append_char(&out, '\0');
	return buf_steal(&out, NULL);
}

static void
test_tags(void **state)
{
	struct dkim_tag t[8];
	size_t n;

	(void)state;
	static const char tl[] = " v = 1 ; a=rsa-sha256;\r\n\tb=AB\r\n CD;";
	assert_int_equal(dkim_tags_parse(tl, strlen(tl), t, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_true(t[0].nlen == 1 && t[0].vlen == 1 && t[0].val[0] == '1');
	const struct dkim_tag *b = dkim_tag_find(t, n, "b");
	assert_non_null(b);
	assert_int_equal(b->vlen, 7);          /* AB CRLF SP CD */
	assert_null(dkim_tag_find(t, n, "bh"));
	static const char *const bad[] = { "a=1;a=2", "=1", "a", "a=1;;b=2",
		"1a=2", "a b=1", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(dkim_tags_parse(bad[i], strlen(bad[i]), t, 8,
		    &n), -1);
	assert_int_equal(dkim_tags_parse("", 0, t, 8, &n), 0);
	assert_int_equal(n, 0);
	/* more tags than room */
	assert_int_equal(dkim_tags_parse("a=1;b=2;c=3", 11, t, 2, &n), -1);
}

static void
test_canon(void **state)
{
	/* RFC 6376 3.4.6 */
	static const char hdr[] = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n";
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";
	struct dkim_field *f;
	size_t bo, nf = dkim_fields(hdr, strlen(hdr), &f, &bo);
	struct buf out;

	(void)state;
	assert_int_equal(nf, 2);
	assert_int_equal(bo, strlen(hdr));
	buf_init(&out);
	for (size_t i = 0; i < nf; i++)
		dkim_canon_field(DKIM_RELAXED, f[i].p, f[i].len, f[i].nlen,
		    &out);
	assert_string_equal(out.data, "a:X\r\nb:Y Z\r\n");
	out.len = 0;
	for (size_t i = 0; i < nf; i++)
		dkim_canon_field(DKIM_SIMPLE, f[i].p, f[i].len, f[i].nlen,
		    &out);
	buf_append_char(&out, '\0');
	assert_string_equal(out.data, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
	buf_clear(&out);
	free(f);
	for (size_t piece = 1; piece <= 40; piece += 13) {
		char *r = body_canon(DKIM_RELAXED, body, piece);
		char *s = body_canon(DKIM_SIMPLE, body, piece);
		assert_string_equal(r, " C\r\nD E\r\n");
		assert_string_equal(s, " C \r\nD \t E\r\n");
		free(r);
		free(s);
	}
	/* LF line ends are line ends; an empty body; no final line end */
	char *r = body_canon(DKIM_RELAXED, "a  b\n\n", 1);
	assert_string_equal(r, "a b\r\n");
	free(r);
	r = body_canon(DKIM_RELAXED, "", 1);
	assert_string_equal(r, "");
	free(r);
	r = body_canon(DKIM_SIMPLE, "", 1);
	assert_string_equal(r, "\r\n");
	free(r);
	r = body_canon(DKIM_SIMPLE, "\n\n", 1);
	assert_string_equal(r, "\r\n");
	free(r);
	r = body_canon(DKIM_RELAXED, "x\r", 1);      /* a CR alone stays */
	assert_string_equal(r, "x\r\r\n");
	free(r);
	/* l=: only so much of it is given, all of it counted */
	struct buf o;
	struct dkim_body b;
	buf_init(&o);
	dkim_body_init(&b, DKIM_SIMPLE, 3, collect, &o);
	dkim_body_feed(&b, "hello\n", 6);
	dkim_body_end(&b);
	assert_int_equal(o.len, 3);
	assert_int_equal(b.total, 7);
	buf_clear(&o);
}

/* RFC 8463 appendix A */
static const char rfc8463[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";
static const char ed_key[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rsa_key[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6"
    "NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e"
    "/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT"
    "+l/K4w3QIDAQAB";
/* RFC 8032 7.1 test 1's secret key (RFC 8463's), as PKCS#8 */
static const char ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";

static void
sha_out(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

/*
 * Verifies signature field i of msg with key record txt: 1 good, 0 bad
 * signature, -2 body hash differs, -1 could not.
 */
static int
verify(const char *msg, size_t len, size_t which, const char *txt)
{
	struct dkim_field *f;
	size_t body, nf = dkim_fields(msg, len, &f, &body), seen = 0;
	struct dkim_sig s;
	struct dkim_key k;
	const char *why;
	int rc = -1;

	for (size_t i = 0; i < nf; i++) {
		if (f[i].nlen != 14 || strncmp(f[i].p, "DKIM-Signature", 14))
			continue;
		if (seen++ != which)
			continue;
		const char *v = memchr(f[i].p, ':', f[i].len) + 1;
		assert_int_equal(dkim_sig_parse(v, f[i].len - (size_t)(v -
		    f[i].p), &s, &why), 0);
		assert_int_equal(dkim_key_parse(txt, strlen(txt), &k, &why), 0);
		assert_true(k.alg == s.alg);
		unsigned char bh[32];
		struct tls_sha256 *h = tls_sha256_new();
		struct dkim_body b;
		dkim_body_init(&b, s.bc, s.has_l ? s.l : UINT64_MAX, sha_out, h);
		dkim_body_feed(&b, msg + body, len - body);
		dkim_body_end(&b);
		tls_sha256_final(h, bh);
		if (memcmp(bh, s.bh, 32) != 0)
			rc = -2;
		else {
			struct buf t;
			unsigned bits;
			buf_init(&t);
			dkim_signed_text(f, nf, (ssize_t)i, s.hc, s.hnames, s.nh,
			    f[i].p, f[i].len, &t);
			rc = tls_verify(s.alg == DKIM_RSA_SHA256 ? TLS_KEY_RSA :
			    TLS_KEY_ED25519, k.p, k.plen, t.data, t.len, s.b,
			    s.blen, &bits);
			buf_clear(&t);
		}
		dkim_sig_clear(&s);
	}
	free(f);
	return rc;
}

static struct tls_pkey *
ed_private(void)
{
	char path[] = "/tmp/test_dkim.XXXXXX", err[200];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, ed_pem, strlen(ed_pem)),
	    (ssize_t)strlen(ed_pem));
	close(fd);
	struct tls_pkey *k = tls_pkey_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(k);
	assert_int_equal(tls_pkey_type(k), TLS_KEY_ED25519);
	return k;
}

static void
test_rfc8463(void **state)
{
	size_t len = strlen(rfc8463);

	(void)state;
	assert_int_equal(verify(rfc8463, len, 0, ed_key), 1);
	assert_int_equal(verify(rfc8463, len, 1, rsa_key), 1);
	/* a key of the other kind does not verify */
	assert_int_equal(verify(rfc8463, len, 0, ed_key), 1);

	/* the Ed25519 signature made again from the private key */
	struct tls_pkey *k = ed_private();
	unsigned char pub[64], sig[128], want[128];
	char b64[200];
	assert_int_equal(tls_pkey_public(k, pub, sizeof(pub)), 32);
	assert_int_equal(sasl_b64_encode((const char *)pub, 32, b64,
	    sizeof(b64)), 0);
	assert_string_equal(b64, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	struct dkim_field *f;
	size_t body, nf = dkim_fields(rfc8463, len, &f, &body);
	struct dkim_sig s;
	const char *why, *v = memchr(f[0].p, ':', f[0].len) + 1;
	assert_int_equal(dkim_sig_parse(v, f[0].len - (size_t)(v - f[0].p), &s,
	    &why), 0);
	assert_string_equal(s.d, "football.example.com");
	assert_string_equal(s.s, "brisbane");
	assert_int_equal(s.nh, 8);
	assert_string_equal(s.hnames[4], "message-id");
	assert_int_equal(s.t, 1528637909);
	struct buf t;
	buf_init(&t);
	dkim_signed_text(f, nf, 0, s.hc, s.hnames, s.nh, f[0].p, f[0].len, &t);
	int n = tls_pkey_sign(k, t.data, t.len, sig, sizeof(sig));
	assert_int_equal(n, 64);
	assert_int_equal(dkim_b64_decode("/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9O"
	    "dqQehSwhEIug4D11Bus Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==", 89, want,
	    sizeof(want)), 64);
	assert_memory_equal(sig, want, 64);
	buf_clear(&t);
	dkim_sig_clear(&s);
	free(f);

	/* a change to the body, or to a signed field, breaks them */
	char *m = xstrdup(rfc8463);
	char *p = strstr(m, "hungry");
	p[0] = 'H';
	assert_int_equal(verify(m, len, 0, ed_key), -2);
	assert_int_equal(verify(m, len, 1, rsa_key), -2);
	p[0] = 'h';
	p = strstr(m, "dinner");
	p[0] = 'D';
	assert_int_equal(verify(m, len, 0, ed_key), 0);
	assert_int_equal(verify(m, len, 1, rsa_key), 0);
	p[0] = 'd';
	/* white space changes nothing under relaxed/relaxed */
	p = strstr(m, "Subject: ");
	p[8] = '\t';
	assert_int_equal(verify(m, len, 0, ed_key), 1);
	free(m);

	/* a signature of ours, with LF line ends as the queue keeps them */
	static const char plain[] = "From: Joe <joe@football.example.com>\n"
	    "To: Suzie <suzie@shopping.example.net>\nSubject: again\n"
	    "Date: Fri, 11 Jul 2003 21:00:37 -0700\n\nbody  text\n\n\n";
	nf = dkim_fields(plain, strlen(plain), &f, &body);
	struct buf field, mine;
	char **names;
	size_t nn;
	unsigned char bh[32];
	struct tls_sha256 *h = tls_sha256_new();
	struct dkim_body b;
	dkim_body_init(&b, DKIM_RELAXED, UINT64_MAX, sha_out, h);
	dkim_body_feed(&b, plain + body, strlen(plain) - body);
	dkim_body_end(&b);
	tls_sha256_final(h, bh);
	buf_init(&field);
	dkim_sign_field(f, nf, DKIM_ED25519_SHA256, "football.example.com",
	    "brisbane", 1700000000, bh, 0, &field, &names, &nn);
	/* From, To, Subject and Date once more than the message has them */
	assert_int_equal(nn, 8);
	buf_init(&t);
	dkim_signed_text(f, nf, -1, DKIM_RELAXED, names, nn, field.data,
	    field.len, &t);
	n = tls_pkey_sign(k, t.data, t.len, sig, sizeof(sig));
	assert_int_equal(n, 64);
	dkim_append_b(&field, sig, (size_t)n);
	buf_init(&mine);
	buf_append(&mine, field.data, field.len);
	buf_append_str(&mine, plain);
	for (size_t i = 0; i < mine.len; i++)
		assert_true(mine.data[i] != '\n' || i + 1 == mine.len ||
		    mine.data[i + 1] != '\n' || i >= field.len);
	assert_int_equal(verify(mine.data, mine.len, 0, ed_key), 1);
	/* a second From: added below breaks it (oversigned) */
	struct buf added;
	buf_init(&added);
	buf_append(&added, mine.data, field.len);
	buf_append_str(&added, "From: Evil <evil@example.com>\n");
	buf_append_str(&added, plain);
	assert_int_equal(verify(added.data, added.len, 0, ed_key), 0);
	buf_clear(&added);
	buf_clear(&mine);
	buf_clear(&field);
	buf_clear(&t);
	dkim_names_free(names, nn);
	free(f);
	tls_pkey_free(k);
}

static void
test_sig_and_key(void **state)
{
	struct dkim_sig s;
	struct dkim_key k;
	const char *why;
	static const char bh[] = "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=";
	char v[400];

	(void)state;
	static const char *const bad[] = {
		"v=2; a=rsa-sha256; d=x.org; s=s; h=from; BH; b=AAAA",
		"v=1; a=rsa-sha1; d=x.org; s=s; h=from; BH; b=AAAA",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=to; BH; b=AAAA",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=from; BH; b=A",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=from; BH",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=from; BH; b=AAAA; i=@y.org",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=from; BH; b=AAAA; c=fancy",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=from; BH; b=AAAA; t=5; x=4",
		"v=1; a=rsa-sha256; d=x..org; s=s; h=from; BH; b=AAAA",
		"v=1; a=rsa-sha256; d=x.org; s=s; h=from; BH; b=AAAA; q=http",
		NULL };
	for (int i = 0; bad[i]; i++) {
		/* BH: where the body hash goes */
		const char *at = strstr(bad[i], "BH");
		(void)snprintf(v, sizeof(v), "%.*s%s%s", (int)(at - bad[i]),
		    bad[i], bh, at + 2);
		assert_int_equal(dkim_sig_parse(v, strlen(v), &s, &why), -1);
		assert_non_null(why);
		assert_int_equal(s.nh, 0);
	}
	(void)snprintf(v, sizeof(v), "v=1; a=rsa-sha256; d=X.Org; s=Sel; "
	    "h=From:To; %s; b=AAAA; i=joe@mail.x.org; l=10; c=relaxed", bh);
	assert_int_equal(dkim_sig_parse(v, strlen(v), &s, &why), 0);
	assert_string_equal(s.d, "x.org");
	assert_string_equal(s.s, "sel");
	assert_true(s.hc == DKIM_RELAXED && s.bc == DKIM_SIMPLE);
	assert_true(s.has_l && s.l == 10);
	assert_string_equal(s.hnames[1], "to");
	dkim_sig_clear(&s);

	static const char k1[] = "v=DKIM1; p=";
	assert_int_equal(dkim_key_parse(k1, strlen(k1), &k, &why), 0);
	assert_int_equal(k.plen, 0);             /* revoked */
	static const char k2[] = "k=ed25519; t=y:s; s=email; h=sha256; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	assert_int_equal(dkim_key_parse(k2, strlen(k2), &k, &why), 0);
	assert_true(k.alg == DKIM_ED25519_SHA256 && k.testing && k.strict &&
	    k.plen == 32);
	static const char *const kbad[] = { "p=AAAA; v=DKIM1", "v=DKIM2; p=",
		"h=sha1; p=AAAA", "k=dsa; p=AAAA", "s=web; p=AAAA", "k=rsa",
		"p=A", NULL };
	for (int i = 0; kbad[i]; i++)
		assert_int_equal(dkim_key_parse(kbad[i], strlen(kbad[i]), &k,
		    &why), -1);
}

static void
test_authres(void **state)
{
	char id[64];
	struct buf m, out;

	(void)state;
	assert_true(authres_id(" mx.test; dkim=pass", 18, id, sizeof(id)));
	assert_string_equal(id, "mx.test");
	assert_true(authres_id(" (c) MX.test 1; none", 20, id, sizeof(id)));
	assert_string_equal(id, "MX.test");
	assert_true(authres_id("\"a b\";none", 10, id, sizeof(id)));
	assert_string_equal(id, "a b");
	assert_false(authres_id("  (only a comment)", 18, id, sizeof(id)));
	assert_false(authres_id("\"open", 5, id, sizeof(id)));

	buf_init(&m);
	buf_append_str(&m, "Received: by us\n"
	    "Authentication-Results: mx.test; dkim=pass\n"
	    "Subject: hi\n"
	    "authentication-results: (x)\n MX.TEST;\n\tspf=pass\n"
	    "Authentication-Results: other.test; dkim=pass\n"
	    "\nAuthentication-Results: mx.test; in the body\n");
	assert_int_equal(authres_strip(&m, 16, "mx.test"), 2);
	assert_string_equal(m.data, "Received: by us\nSubject: hi\n"
	    "Authentication-Results: other.test; dkim=pass\n"
	    "\nAuthentication-Results: mx.test; in the body\n");
	buf_clear(&m);

	buf_init(&out);
	authres_begin(&out, "mx.test");
	struct authres_prop p[] = { { "header.d", "example.org" },
		{ "header.b", "ab/+c=" }, { "header.s", "" } };
	authres_add(&out, "dkim", "fail", "1024-bit (key)", "body hash \"x\"",
	    p, 3);
	authres_end(&out, 1);
	assert_string_equal(out.data, "Authentication-Results: mx.test;\n"
	    "\tdkim=fail (1024-bit key) reason=\"body hash \\\"x\\\"\" "
	    "header.d=example.org header.b=\"ab/+c=\"\n");
	out.len = 0;
	authres_begin(&out, "mx.test");
	authres_end(&out, 0);
	assert_string_equal(out.data, "Authentication-Results: mx.test; none\n");
	buf_clear(&out);
}

/* a chain of two sets made by dkimpy's arc_sign, and its key */
static const char arc_chain[] =
    "ARC-Seal: i=2; cv=pass; a=rsa-sha256; d=fwd.test; s=a1; t=1796000001;\r\n"
    " b=jajn/wpi3M0L8yHl0hFGox/lBBHpqewHNu+2dKiXvWRQ0yfop6q8WRjGLz8RyWdwNbvWQ\r\n"
    " IWuYgtHisztMutGWIiDWhfhue9C/CBot3eUpw4ahDmG98qyL7fnhPjIVuiIaGN/5fRfA7Gr\r\n"
    " kTkLy9yG4xVudWcpiHBVk3RfgWGbnJI=\r\n"
    "ARC-Message-Signature: i=2; a=rsa-sha256; c=relaxed/relaxed; d=fwd.test;\r\n"
    " s=a1; t=1796000001; h=from : to : subject : from;\r\n"
    " bh=Ck5SoRNWUpSR4X0COv7R5ub2pUTtl6xz4dTFz++ji4M=;\r\n"
    " b=NJoHfjyMvDic7ZQ/P4y+f6HYiVLYgSKFgqto1C6xAJT7OOH2j/vqPoZa7883NT27qv2Fj\r\n"
    " mBKcixc9LdcfjANZ4mDqHEBYp/po7B8Src9MBYLPk5xwCkrEaPboOcUG6LM4UCrcnkXTrMz\r\n"
    " uwLVY1f6hJOAsj2WEL2cVSsYcUXxFDE=\r\n"
    "ARC-Authentication-Results: i=2; fwd.test; arc=pass\r\n"
    "Authentication-Results: fwd.test; arc=pass\r\n"
    "ARC-Seal: i=1; cv=none; a=rsa-sha256; d=fwd.test; s=a1; t=1796000000;\r\n"
    " b=MfK+toTM/HsuyR1V/hyh9hVuhJ1LfWIyI/gG9kADmYdTZXexUuNTRSwoTimMowqusLZuF\r\n"
    " eF8t5zv4wPezRU/LL+TFbWs0PJm3EZwMVNMXWF7QAcm/qc1C2qUJIHcD7SOAt/zhI+GyDRZ\r\n"
    " IVFR8QVWBgdmFOW3rHazDZWinoIiUf8=\r\n"
    "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=fwd.test;\r\n"
    " s=a1; t=1796000000; h=from : to : subject : from;\r\n"
    " bh=Ck5SoRNWUpSR4X0COv7R5ub2pUTtl6xz4dTFz++ji4M=;\r\n"
    " b=itMKf5MWXc6e/9/+OAJHjrrmnNDfxdbh64Rq/tDEjqvfMg0ZySwNFeDRKB9+4NYR1K/TH\r\n"
    " fzedoNigcKMN3F514G+5++XI+TpwvLp5qQB5uMEZmBmITaTstPBlMUSnc8hcp4AZkn/fPDf\r\n"
    " mL0VZ+b/gZYUsTG8/UVnOcCinAARzaw=\r\n"
    "ARC-Authentication-Results: i=1; fwd.test; dkim=pass;\r\n"
    "  arc=none\r\n"
    "From: a@b.test\r\n"
    "To: c@d.test\r\n"
    "Subject: s\r\n"
    "\r\n"
    "body\r\n";
static const char arc_key[] = "v=DKIM1; k=rsa; p="
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC0lgn/fAqjHVOuoH4Hm5VvlHZq"
    "CnHFtVWlcPpiBiZPn/+RqetURHXJnW9/WYvzqdZvAzdOAkCgmzo40GsfnZmr+ndB"
    "sRIMA2iWraIDwvNmhGX44c0oaAlbFz+WEKAtGwP19GGbZR6xT/+02fO0SzCicKwv"
    "Wgbk+KRTSbEo3XhBswIDAQAB"
;


/* The ARC-Seal of instance i of msg: 1 verifies, 0 not. */
static int
arc_seal_verifies(const char *msg, unsigned i)
{
	struct dkim_field *f;
	size_t body, nf = dkim_fields(msg, strlen(msg), &f, &body);
	struct arc_set sets[ARC_INSTANCE_MAX];
	struct arc_seal as;
	struct dkim_key k;
	unsigned n, bits;
	const char *why;

	assert_int_equal(arc_sets(f, nf, sets, &n, &why), 0);
	assert_true(i <= n);
	struct dkim_field fl[3 * 2];
	for (unsigned x = 0; x < i; x++) {
		fl[3 * x] = f[sets[x].aar];
		fl[3 * x + 1] = f[sets[x].ams];
		fl[3 * x + 2] = f[sets[x].as];
	}
	const struct dkim_field *sf = &f[sets[i - 1].as];
	const char *v = memchr(sf->p, ':', sf->len) + 1;
	assert_int_equal(arc_seal_parse(v, sf->len - (size_t)(v - sf->p), &as,
	    &why), 0);
	assert_int_equal(as.i, i);
	assert_int_equal(as.cv, i == 1 ? ARC_CV_NONE : ARC_CV_PASS);
	assert_string_equal(as.d, "fwd.test");
	assert_int_equal(dkim_key_parse(arc_key, strlen(arc_key), &k, &why), 0);
	struct buf t;
	buf_init(&t);
	arc_seal_text(fl, i, &t);
	int rc = tls_verify(TLS_KEY_RSA, k.p, k.plen, t.data, t.len, as.b,
	    as.blen, &bits);
	buf_clear(&t);
	free(f);
	return rc;
}

/* The ARC-Message-Signature of instance i: 1 verifies, 0 not, -2 body. */
static int
arc_ams_verifies(const char *msg, unsigned i)
{
	struct dkim_field *f;
	size_t len = strlen(msg), body, nf = dkim_fields(msg, len, &f, &body);
	struct arc_set sets[ARC_INSTANCE_MAX];
	struct dkim_sig s;
	struct dkim_key k;
	unsigned n, inst, bits;
	const char *why;
	int rc;

	assert_int_equal(arc_sets(f, nf, sets, &n, &why), 0);
	const struct dkim_field *af = &f[sets[i - 1].ams];
	const char *v = memchr(af->p, ':', af->len) + 1;
	assert_int_equal(dkim_ams_parse(v, af->len - (size_t)(v - af->p), &s,
	    &inst, &why), 0);
	assert_int_equal(inst, i);
	assert_int_equal(dkim_key_parse(arc_key, strlen(arc_key), &k, &why), 0);
	unsigned char bh[32];
	struct tls_sha256 *h = tls_sha256_new();
	struct dkim_body b;
	dkim_body_init(&b, s.bc, UINT64_MAX, sha_out, h);
	dkim_body_feed(&b, msg + body, len - body);
	dkim_body_end(&b);
	tls_sha256_final(h, bh);
	if (memcmp(bh, s.bh, 32) != 0)
		rc = -2;
	else {
		struct buf t;
		buf_init(&t);
		dkim_signed_text(f, nf, (ssize_t)sets[i - 1].ams, s.hc, s.hnames,
		    s.nh, af->p, af->len, &t);
		rc = tls_verify(TLS_KEY_RSA, k.p, k.plen, t.data, t.len, s.b,
		    s.blen, &bits);
		buf_clear(&t);
	}
	dkim_sig_clear(&s);
	free(f);
	return rc;
}

/* msg with its first "from" replaced by "to" (same length or not) */
static char *
changed(const char *msg, const char *from, const char *to)
{
	const char *at = strstr(msg, from);
	assert_non_null(at);
	return xasprintf("%.*s%s%s", (int)(at - msg), msg, to,
	    at + strlen(from));
}

static void
hash_piece(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

/* bodyhash: the hashes its fields ask for, fed in pieces of any size,
 * are what hashing the body at once gives. */
static void
test_bodyhash(void **state)
{
	static const char head[] =
	    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=x.test;\n"
	    " s=s; h=from; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\n"
	    "DKIM-Signature: v=1; a=rsa-sha256; c=simple/relaxed; d=x.test;\n"
	    " s=s; h=from; l=20; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;\n"
	    " b=AAAA\n"
	    "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed;\n"
	    " d=x.test; s=s; h=from; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;\n"
	    " b=AAAA\n"
	    "From: a@x.test\n\n";
	static const char body[] = "a  line \t with\tspace  \n\n.dot\r\n"
	    "x\n\n\n\n";
	struct { enum dkim_canon c; uint64_t l; } want[] = {
		{ DKIM_SIMPLE, UINT64_MAX }, { DKIM_RELAXED, 20 },
		{ DKIM_RELAXED, UINT64_MAX } };
	(void)state;

	for (size_t piece = 1; piece <= sizeof(body); piece++) {
		char msg[sizeof(head) + sizeof(body)];
		struct bodyhash bh;
		(void)snprintf(msg, sizeof(msg), "%s%s", head, body);
		size_t off = bodyhash_init(&bh, msg, strlen(head) + 5);
		assert_int_equal(off, strlen(head));
		assert_int_equal(bh.n, 3);
		for (size_t i = 0; i < strlen(body); i += piece)
			bodyhash_feed(&bh, body + i, strlen(body) - i < piece ?
			    strlen(body) - i : piece);
		bodyhash_end(&bh);
		for (size_t w = 0; w < 3; w++) {
			unsigned char one[32];
			struct tls_sha256 *h = tls_sha256_new();
			struct dkim_body b;
			uint64_t total;
			dkim_body_init(&b, want[w].c, want[w].l, hash_piece, h);
			dkim_body_feed(&b, body, strlen(body));
			dkim_body_end(&b);
			tls_sha256_final(h, one);
			const unsigned char *got = bodyhash_get(&bh, want[w].c,
			    want[w].l, &total);
			assert_non_null(got);
			assert_memory_equal(got, one, 32);
			assert_int_equal(total, b.total);
		}
		uint64_t total;
		assert_null(bodyhash_get(&bh, DKIM_SIMPLE, 20, &total));
		bodyhash_clear(&bh);
	}
	/* none asked for; one cleared before its end frees its hashes */
	struct bodyhash bh;
	bodyhash_init(&bh, "From: a\n\nbody\n", 15);
	assert_int_equal(bh.n, 0);
	bodyhash_clear(&bh);
	bodyhash_init(&bh, head, strlen(head));
	bodyhash_feed(&bh, "x", 1);
	bodyhash_clear(&bh);
}

static void
test_arc(void **state)
{
	(void)state;
	/* dkimpy's chain verifies here, every part of it */
	for (unsigned i = 1; i <= 2; i++) {
		assert_int_equal(arc_seal_verifies(arc_chain, i), 1);
		assert_int_equal(arc_ams_verifies(arc_chain, i), 1);
	}
	/* the older AAR changed: seal 1 and 2 fail, the AMSs do not */
	char *m = changed(arc_chain, "dkim=pass;", "dkim=fail;");
	assert_int_equal(arc_seal_verifies(m, 1), 0);
	assert_int_equal(arc_seal_verifies(m, 2), 0);
	assert_int_equal(arc_ams_verifies(m, 2), 1);
	free(m);
	/* the body changed: the AMSs' body hash, not the seals */
	m = changed(arc_chain, "\r\n\r\nbody", "\r\n\r\nbodies");
	assert_int_equal(arc_ams_verifies(m, 2), -2);
	assert_int_equal(arc_seal_verifies(m, 2), 1);
	free(m);

	/* forms: none, a gap, a field twice, a bad instance */
	struct dkim_field *f;
	struct arc_set sets[ARC_INSTANCE_MAX];
	size_t body, nf;
	unsigned n;
	const char *why;
	static const char *const bad[] = {
		/* instance 1 has no AMS */
		"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.test; s=s; b=AA==\n"
		"ARC-Authentication-Results: i=1; x.test; none\n\nb\n",
		/* 2 without 1 */
		"ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=x.test; s=s; b=AA==\n"
		"ARC-Message-Signature: i=2; a=rsa-sha256; d=x.test; s=s\n"
		"ARC-Authentication-Results: i=2; x.test; none\n\nb\n",
		/* two seals of 1 */
		"ARC-Seal: i=1; cv=none\nARC-Seal: i=1; cv=none\n\nb\n",
		/* 51, 0, none at all */
		"ARC-Seal: i=51; cv=none\n\nb\n",
		"ARC-Authentication-Results: i=0; x.test; none\n\nb\n",
		"ARC-Message-Signature: a=rsa-sha256\n\nb\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		nf = dkim_fields(bad[i], strlen(bad[i]), &f, &body);
		assert_int_equal(arc_sets(f, nf, sets, &n, &why), -1);
		free(f);
	}
	nf = dkim_fields("From: a\n\nb\n", 11, &f, &body);
	assert_int_equal(arc_sets(f, nf, sets, &n, &why), 0);
	assert_int_equal(n, 0);
	free(f);
	size_t rest;
	assert_int_equal(arc_aar_instance(" i = 7 ; mx.test; none", 22, &rest),
	    7);
	assert_int_equal(rest, 8);
	assert_int_equal(arc_aar_instance(" i=7 mx.test", 12, &rest), -1);
	assert_int_equal(arc_aar_instance(" i=123;", 7, &rest), -1);

	/* seals: h= is not allowed, cv= is required and known */
	struct arc_seal as;
	static const char *const seals[] = {
		"i=1; a=rsa-sha256; cv=none; d=x.test; s=s; b=AA==; h=from",
		"i=1; a=rsa-sha256; d=x.test; s=s; b=AA==",
		"i=1; a=rsa-sha256; cv=maybe; d=x.test; s=s; b=AA==",
		"i=1; a=rsa-sha1; cv=none; d=x.test; s=s; b=AA==",
		"i=1; a=rsa-sha256; cv=none; d=x.test; b=AA==",
		"i=1; a=rsa-sha256; cv=none; d=x.test; s=s; b=",
	};
	for (size_t i = 0; i < sizeof(seals) / sizeof(seals[0]); i++)
		assert_int_equal(arc_seal_parse(seals[i], strlen(seals[i]), &as,
		    &why), -1);
	const char *ok = "i=3; a=ed25519-sha256; cv=pass; d=X.Test; s=Sel; "
	    "t=17; b=AA==";
	assert_int_equal(arc_seal_parse(ok, strlen(ok), &as, &why), 0);
	assert_true(as.i == 3 && as.alg == DKIM_ED25519_SHA256 &&
	    as.cv == ARC_CV_PASS && as.t == 17);
	assert_string_equal(as.d, "x.test");
	assert_string_equal(as.s, "sel");

	/* an AMS may not sign ARC-Seal, has no v=, its i= is the instance */
	struct dkim_sig s;
	unsigned inst;
	const char *ams = "i=2; a=rsa-sha256; d=x.test; s=s; h=from:arc-seal; "
	    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AA==";
	assert_int_equal(dkim_ams_parse(ams, strlen(ams), &s, &inst, &why), -1);
	ams = "i=2; a=rsa-sha256; d=x.test; s=s; h=from:to; "
	    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AA==";
	assert_int_equal(dkim_ams_parse(ams, strlen(ams), &s, &inst, &why), 0);
	assert_int_equal(inst, 2);
	assert_string_equal(s.i, "@x.test");
	dkim_sig_clear(&s);
	assert_int_equal(dkim_sig_parse(ams, strlen(ams), &s, &why), -1);

	/* the arc= result of an Authentication-Results value */
	char res[16];
	const char *ar = " mx.test; dkim=pass (a; b) header.d=\"x;arc=fail\";"
	    " ARC = Pass (i=2) smtp.remote-ip=1.2.3.4";
	assert_int_equal(authres_method(ar, strlen(ar), "arc", res,
	    sizeof(res)), 1);
	assert_string_equal(res, "pass");
	assert_int_equal(authres_method(ar, strlen(ar), "spf", res,
	    sizeof(res)), 0);
	ar = " mx.test; arc=none; arc/1=fail";
	assert_int_equal(authres_method(ar, strlen(ar), "arc", res,
	    sizeof(res)), 2);
	assert_string_equal(res, "none");
	/* the field of ours among others */
	const char *msg = "Authentication-Results: other.test; arc=pass\n"
	    "Authentication-Results: mx.test;\n\tarc=none\n\nbody\n";
	const char *val;
	size_t vl;
	assert_true(authres_find(msg, strlen(msg), "MX.test", &val, &vl));
	assert_int_equal(vl, 18);
	assert_memory_equal(val, "mx.test;\n\tarc=none", 18);
	assert_false(authres_find(msg, strlen(msg), "nobody.test", &val, &vl));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_canon),
		cmocka_unit_test(test_rfc8463),
		cmocka_unit_test(test_sig_and_key),
		cmocka_unit_test(test_authres),
		cmocka_unit_test(test_arc),
		cmocka_unit_test(test_bodyhash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
