/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: mail/mime.c, the MIME structure IMAP shows, and
 * mail/sortkeys.c, the SORT and THREAD keys. Every part lies inside the
 * message, BODYSTRUCTURE and ENVELOPE are written for any input, every
 * part's transfer encoding is undone within bounds, every
 * section number found resolves, and the keys are always made.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/mime.h"
#include "mail/sortkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct mime_part *p, size_t size, int depth)
{
	TERN_ASSERT(depth < 100);
	TERN_ASSERT(p->hdr_off + p->hdr_len <= size);
	TERN_ASSERT(p->body_off + p->body_len <= size);
	for (size_t i = 0; i < p->nchildren; i++)
		check(&p->children[i], size, depth + 1);
}

static void
decode_all(const char *msg, const struct mime_part *p, int depth)
{
	struct buf d;

	buf_init(&d);
	if (mime_decode_part(msg, p, &d) == 0)
		TERN_ASSERT(d.len <= 2 * p->body_len);
	buf_clear(&d);
	for (size_t i = 0; i < p->nchildren && depth < 100; i++)
		decode_all(msg, &p->children[i], depth + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct mime_part *root = mime_parse(msg, size);
	struct buf b;

	check(root, size, 0);
	buf_init(&b);
	mime_write_bodystructure(&b, msg, root, true);
	mime_write_envelope(&b, msg + root->hdr_off, root->hdr_len);
	(void)mime_find_part(root, "1.2.3");
	(void)mime_find_part(root, "2");
	/* BINARY: every part decoded, never longer than twice its text */
	decode_all(msg, root, 0);
	/* SEARCH's text: bounded as asked; header words decoded */
	struct buf th, tb;
	buf_init(&th);
	buf_init(&tb);
	mime_search_text(msg, root, &th, &tb, 4096);
	TERN_ASSERT(tb.len <= 4096 + MIME_PARTS_MAX);   /* a LF a part */
	buf_reset(&th);
	mime_decode_words(msg, size, &th);
	TERN_ASSERT(th.len <= 2 * size);
	buf_clear(&th);
	buf_clear(&tb);
	buf_reset(&b);
	(void)mime_decode("quoted-printable", msg, size, &b);
	TERN_ASSERT(b.len <= 2 * size);
	buf_reset(&b);
	(void)mime_decode("base64", msg, size, &b);
	TERN_ASSERT(b.len <= size);
	buf_reset(&b);
	mime_append_crlf(&b, msg, size);
	TERN_ASSERT(b.len == mime_crlf_size(msg, size));
	buf_clear(&b);
	struct sort_keys k;
	sort_keys_parse(msg, root->hdr_len, &k);
	TERN_ASSERT(k.subject != NULL);
	bool reply;
	char *bs = sort_base_subject(msg, size > 300 ? 300 : size, &reply);
	TERN_ASSERT(bs != NULL && strlen(bs) <= size);
	free(bs);
	/* the index's form of the keys: back as they were; any input
	 * either unpacks or is refused */
	size_t plen;
	char *packed = sort_keys_pack(&k, &plen);
	struct sort_keys u;
	TERN_ASSERT(sort_keys_unpack(packed, strlen(packed), &u) == 0);
	char *again = sort_keys_pack(&u, NULL);
	TERN_ASSERT(strcmp(packed, again) == 0);
	free(again);
	free(packed);
	sort_keys_clear(&u);
	if (sort_keys_unpack(msg, size, &u) == 0)
		TERN_ASSERT(u.subject != NULL);
	sort_keys_clear(&u);
	sort_keys_clear(&k);
	(void)sort_parse_date(msg, size > 100 ? 100 : size);
	mime_free(root);
	return 0;
}
