/* SPDX-License-Identifier: ISC */
/*
 * bodyhash.c - layer 2: body hashes computed in pieces (bodyhash.h).
 */
#include "mail/bodyhash.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/tls.h"
#include "base/util.h"

static void
hash_out(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

static void
want(struct bodyhash *bh, enum dkim_canon c, uint64_t limit)
{
	for (size_t i = 0; i < bh->n; i++)
		if (bh->e[i].c == c && bh->e[i].limit == limit)
			return;
	if (bh->n == BODYHASH_MAX)
		return;
	bh->e[bh->n].c = c;
	bh->e[bh->n].limit = limit;
	bh->e[bh->n].h = tls_sha256_new();
	dkim_body_init(&bh->e[bh->n].b, c, limit, hash_out, bh->e[bh->n].h);
	bh->n++;
}

size_t
bodyhash_init(struct bodyhash *bh, const char *msg, size_t len)
{
	struct dkim_field *f;
	size_t body;
	size_t nf = dkim_fields(msg, len, &f, &body);

	memset(bh, 0, sizeof(*bh));
	for (size_t i = 0; i < nf; i++) {
		bool dkim = f[i].nlen == 14 && strncasecmp(f[i].p,
		    "DKIM-Signature", 14) == 0;
		bool ams = f[i].nlen == 21 && strncasecmp(f[i].p,
		    "ARC-Message-Signature", 21) == 0;
		if (!dkim && !ams)
			continue;
		const char *colon = memchr(f[i].p, ':', f[i].len);
		const char *v = colon + 1;
		size_t vlen = f[i].len - (size_t)(v - f[i].p);
		struct dkim_sig s;
		const char *why;
		unsigned inst;
		int rc = dkim ? dkim_sig_parse(v, vlen, &s, &why) :
		    dkim_ams_parse(v, vlen, &s, &inst, &why);
		if (rc == 0)
			want(bh, s.bc, s.has_l ? s.l : UINT64_MAX);
		dkim_sig_clear(&s);
	}
	free(f);
	return body;
}

void
bodyhash_feed(struct bodyhash *bh, const char *p, size_t n)
{
	for (size_t i = 0; i < bh->n; i++)
		dkim_body_feed(&bh->e[i].b, p, n);
}

void
bodyhash_end(struct bodyhash *bh)
{
	if (bh->ended)
		return;
	for (size_t i = 0; i < bh->n; i++) {
		dkim_body_end(&bh->e[i].b);
		tls_sha256_final(bh->e[i].h, bh->e[i].out);
		bh->e[i].h = NULL;
	}
	bh->ended = true;
}

const unsigned char *
bodyhash_get(const struct bodyhash *bh, enum dkim_canon c, uint64_t limit,
    uint64_t *total)
{
	if (bh == NULL || !bh->ended)
		return NULL;
	for (size_t i = 0; i < bh->n; i++)
		if (bh->e[i].c == c && bh->e[i].limit == limit) {
			*total = bh->e[i].b.total;
			return bh->e[i].out;
		}
	return NULL;
}

void
bodyhash_clear(struct bodyhash *bh)
{
	for (size_t i = 0; i < bh->n; i++)
		if (bh->e[i].h) {
			unsigned char out[32];
			tls_sha256_final(bh->e[i].h, out);   /* frees it */
		}
	memset(bh, 0, sizeof(*bh));
}
