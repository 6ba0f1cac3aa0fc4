/* SPDX-License-Identifier: ISC */
/*
 * dkim_sign.c - layer 2: DKIM signing with the configured keys
 * (dkim_sign.h).
 */
#include "mail/dkim_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tls.h"
#include "base/util.h"
#include "lua/config.h"
#include "mail/dkim.h"
#include "mail/message.h"

struct dkim_signer_key {
	char *domain, *selector;
	struct tls_pkey *key;
};

struct dkim_signer {
	struct dkim_signer_key *k;
	size_t n;
};

struct dkim_signer *
dkim_signer_new(const struct config *cfg, char *err, size_t errsz)
{
	struct dkim_signer *ds;

	if (cfg->ndkim == 0)
		return NULL;
	ds = xcalloc(1, sizeof(*ds));
	ds->k = xcalloc(cfg->ndkim, sizeof(*ds->k));
	for (size_t i = 0; i < cfg->ndkim; i++) {
		struct dkim_signer_key *k = &ds->k[ds->n];
		if ((k->key = tls_pkey_load(cfg->dkim[i].key, err, errsz)) ==
		    NULL) {
			dkim_signer_free(ds);
			return NULL;
		}
		k->domain = xstrdup(cfg->dkim[i].domain);
		k->selector = xstrdup(cfg->dkim[i].selector);
		ds->n++;
	}
	return ds;
}

void
dkim_signer_free(struct dkim_signer *ds)
{
	if (ds == NULL)
		return;
	for (size_t i = 0; i < ds->n; i++) {
		free(ds->k[i].domain);
		free(ds->k[i].selector);
		tls_pkey_free(ds->k[i].key);
	}
	free(ds->k);
	free(ds);
}

/*
 * The domain whose keys sign a message: its (first) From: address's
 * domain if it has keys, else the nearest parent that has. NULL: none.
 */
static const char *
signing_domain(const struct dkim_signer *ds, const char *msg, size_t len)
{
	struct message_field f;
	struct message_addr a[1];
	size_t hl = message_header_len(msg, len);

	if (ds == NULL || !message_find_field(msg, hl, "From", &f) ||
	    message_parse_addresses(f.value, f.value_len, a, 1) < 1)
		return NULL;
	ascii_lower(a[0].domain);
	for (const char *d = a[0].domain; d; ) {
		for (size_t i = 0; i < ds->n; i++)
			if (strcmp(ds->k[i].domain, d) == 0)
				return ds->k[i].domain;
		d = strchr(d, '.');
		if (d)
			d++;
	}
	return NULL;
}

int
dkim_signer_wants(const struct dkim_signer *ds, const char *msg, size_t len)
{
	return signing_domain(ds, msg, len) != NULL;
}

int
dkim_sign_prepare(const struct dkim_signer *ds, struct buf *msg,
    size_t start)
{
	struct buf out;

	if (!message_has_8bit(msg->data + start, msg->len - start) ||
	    !dkim_signer_wants(ds, msg->data + start, msg->len - start))
		return 0;
	buf_init(&out);
	if (message_downgrade(msg->data + start, msg->len - start, &out) != 0) {
		buf_clear(&out);
		return 0;              /* 8-bit headers: it stays as it is */
	}
	msg->len = start;
	buf_append(msg, out.data, out.len);
	buf_clear(&out);
	return 1;
}

static void
hash_out(void *arg, const void *p, size_t n)
{
	tls_sha256_update(arg, p, n);
}

int
dkim_signer_sign(const struct dkim_signer *ds, struct buf *msg,
    size_t start, int64_t now, char *why, size_t whysz)
{
	const char *text = msg->data + start;
	size_t len = msg->len - start, body;
	const char *domain = signing_domain(ds, text, len);
	struct dkim_field *f;
	struct dkim_body b;
	unsigned char bh[32], sig[1024];
	struct buf fields;
	int made = 0;

	if (domain == NULL)
		return 0;
	size_t nf = dkim_fields(text, len, &f, &body);
	struct tls_sha256 *h = tls_sha256_new();
	dkim_body_init(&b, DKIM_RELAXED, UINT64_MAX, hash_out, h);
	dkim_body_feed(&b, text + body, len - body);
	dkim_body_end(&b);
	tls_sha256_final(h, bh);
	buf_init(&fields);
	for (size_t i = 0; i < ds->n; i++) {
		const struct dkim_signer_key *k = &ds->k[i];
		if (strcmp(k->domain, domain) != 0)
			continue;
		enum dkim_alg alg = tls_pkey_type(k->key) == TLS_KEY_RSA ?
		    DKIM_RSA_SHA256 : DKIM_ED25519_SHA256;
		struct buf field, tosign;
		char **names;
		size_t nn;
		buf_init(&field);
		buf_init(&tosign);
		dkim_sign_field(f, nf, alg, k->domain, k->selector, now, bh, 0,
		    &field, &names, &nn);
		dkim_signed_text(f, nf, -1, DKIM_RELAXED, names, nn,
		    field.data, field.len, &tosign);
		dkim_names_free(names, nn);
		int sl = tls_pkey_sign(k->key, tosign.data, tosign.len, sig,
		    sizeof(sig));
		buf_clear(&tosign);
		if (sl <= 0) {
			(void)snprintf(why, whysz, "DKIM: the key of %s._domainkey"
			    ".%s cannot sign", k->selector, k->domain);
			buf_clear(&field);
			buf_clear(&fields);
			free(f);
			return -1;
		}
		dkim_append_b(&field, sig, (size_t)sl);
		buf_append(&fields, field.data, field.len);
		buf_clear(&field);
		made++;
	}
	free(f);
	if (made) {
		/* the fields go in at start: the message after them */
		struct buf rest;
		buf_init(&rest);
		buf_append(&rest, msg->data + start, msg->len - start);
		msg->len = start;
		buf_append(msg, fields.data, fields.len);
		buf_append(msg, rest.data, rest.len);
		buf_clear(&rest);
	}
	buf_clear(&fields);
	return made;
}

int
dkim_sign_submitted(const struct dkim_signer *ds, struct buf *msg,
    size_t start, int64_t now, bool *made7, char *why, size_t whysz)
{
	*made7 = false;
	if (ds == NULL)
		return 0;
	*made7 = dkim_sign_prepare(ds, msg, start) == 1;
	return dkim_signer_sign(ds, msg, start, now, why, whysz);
}
