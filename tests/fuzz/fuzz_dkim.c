/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: the input read as a message whose DKIM-Signature
 * fields are parsed and whose signed text and body are canonicalized
 * (both ways, fed whole and in pieces: the two must agree), and as a
 * key record; its ARC sets (RFC 8617) read, their seals and message
 * signatures parsed and the seals' texts made.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "mail/arc.h"
#include "mail/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
collect(void *arg, const void *p, size_t n)
{
	buf_append(arg, p, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct dkim_field *f;
	size_t body, nf = dkim_fields(msg, size, &f, &body);
	const char *why;

	TERN_ASSERT(body <= size);
	for (size_t i = 0; i < nf; i++) {
		struct dkim_sig s;
		struct buf t;
		TERN_ASSERT(f[i].p >= msg && f[i].p + f[i].len <= msg + size);
		if (f[i].nlen != 14 || strncasecmp(f[i].p, "DKIM-Signature",
		    14) != 0)
			continue;
		const char *colon = memchr(f[i].p, ':', f[i].len);
		TERN_ASSERT(colon != NULL);
		size_t off = (size_t)(colon + 1 - f[i].p);
		if (dkim_sig_parse(colon + 1, f[i].len - off, &s, &why) != 0)
			continue;
		TERN_ASSERT(s.nh > 0 && s.blen > 0 && s.bhlen == 32);
		buf_init(&t);
		dkim_signed_text(f, nf, (ssize_t)i, s.hc, s.hnames, s.nh,
		    f[i].p, f[i].len, &t);
		buf_clear(&t);
		dkim_sig_clear(&s);
	}
	struct arc_set sets[ARC_INSTANCE_MAX];
	unsigned n;
	if (arc_sets(f, nf, sets, &n, &why) == 0) {
		TERN_ASSERT(n <= ARC_INSTANCE_MAX);
		struct dkim_field *fl = xcalloc(3 * (size_t)n + 1, sizeof(*fl));
		for (unsigned k = 0; k < n; k++) {
			TERN_ASSERT(sets[k].aar < nf && sets[k].ams < nf &&
			    sets[k].as < nf);
			TERN_ASSERT(arc_field_instance(&f[sets[k].as]) ==
			    (int)k + 1);
			fl[3 * k] = f[sets[k].aar];
			fl[3 * k + 1] = f[sets[k].ams];
			fl[3 * k + 2] = f[sets[k].as];
			const char *c = memchr(f[sets[k].as].p, ':',
			    f[sets[k].as].len);
			struct arc_seal as;
			if (arc_seal_parse(c + 1, f[sets[k].as].len - (size_t)(c +
			    1 - f[sets[k].as].p), &as, &why) == 0)
				TERN_ASSERT(as.i == k + 1 && as.blen > 0);
			c = memchr(f[sets[k].ams].p, ':', f[sets[k].ams].len);
			struct dkim_sig s;
			unsigned inst;
			if (dkim_ams_parse(c + 1, f[sets[k].ams].len - (size_t)(c +
			    1 - f[sets[k].ams].p), &s, &inst, &why) == 0) {
				TERN_ASSERT(inst == k + 1);
				dkim_sig_clear(&s);
			}
			struct buf t;
			buf_init(&t);
			arc_seal_text(fl, k + 1, &t);
			buf_clear(&t);
		}
		free(fl);
	}
	free(f);
	for (int c = 0; c < 2; c++) {
		struct buf whole, pieces;
		struct dkim_body b;
		buf_init(&whole);
		buf_init(&pieces);
		dkim_body_init(&b, c ? DKIM_RELAXED : DKIM_SIMPLE, UINT64_MAX,
		    collect, &whole);
		dkim_body_feed(&b, msg + body, size - body);
		dkim_body_end(&b);
		TERN_ASSERT(b.total == whole.len);
		dkim_body_init(&b, c ? DKIM_RELAXED : DKIM_SIMPLE, 7, collect,
		    &pieces);
		for (size_t i = body; i < size; i += 3)
			dkim_body_feed(&b, msg + i, size - i < 3 ? size - i : 3);
		dkim_body_end(&b);
		TERN_ASSERT(pieces.len == (whole.len < 7 ? whole.len : 7));
		TERN_ASSERT(pieces.len == 0 ||
		    memcmp(pieces.data, whole.data, pieces.len) == 0);
		buf_clear(&whole);
		buf_clear(&pieces);
	}
	struct dkim_key k;
	(void)dkim_key_parse(msg, size, &k, &why);
	return 0;
}
