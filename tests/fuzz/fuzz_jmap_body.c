/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: Email bodies of the input read as a message
 * (bodyStructure, textBody/htmlBody/attachments, every body value,
 * header:Name forms, each part's blob data), and the input read as an
 * Email/set create object made into a message, which must read back;
 * and SearchSnippets of the input as text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "http/jmap_body.h"
#include "http/jmap_email.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk_blobs(json_t *part, const char *msg, size_t len, int depth)
{
	json_t *id = json_object_get(part, "partId"), *sub;
	size_t i;

	if (json_is_string(id) && depth < 30) {
		struct buf b;
		char type[130];
		buf_init(&b);
		(void)jmap_part_data(msg, len, json_string_value(id), &b, type,
		    sizeof(type));
		buf_clear(&b);
	}
	json_array_foreach(json_object_get(part, "subParts"), i, sub)
		walk_blobs(sub, msg, len, depth + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct jmap_body_opts o = { "Mx", NULL, false, false, true, 64 };
	json_t *obj = json_object();

	jmap_email_body(obj, p, size, ~0u, &o);
	jmap_header_prop(obj, "header:Subject:asText", p, size);
	jmap_header_prop(obj, "header:To:asGroupedAddresses:all", p, size);
	jmap_header_prop(obj, "header:List-Post:asURLs", p, size);
	walk_blobs(json_object_get(obj, "bodyStructure"), p, size, 0);
	/* snippets of the input as text: always valid UTF-8 */
	static const char *const needles[] = { "a", "re", "\xc3\xa9" };
	for (int whole = 0; whole < 2; whole++) {
		struct buf sn;
		buf_init(&sn);
		if (jmap_snippet(p, size, needles, 3, whole, 40, &sn)) {
			json_t *j = json_stringn(sn.data, sn.len);
			TERN_ASSERT(j != NULL);
			json_decref(j);
		}
		buf_clear(&sn);
	}
	char *s = json_dumps(obj, JSON_COMPACT);
	TERN_ASSERT(s != NULL);      /* every string it made was UTF-8 */
	free(s);
	json_decref(obj);

	json_error_t e;
	json_t *c = json_loadb(p, size, JSON_REJECT_DUPLICATES, &e);
	if (json_is_object(c)) {
		struct jmap_blob blob = { "Bb", "blob", 4, "text/plain" };
		struct buf out;
		const char *bad;
		char why[200];
		buf_init(&out);
		if (jmap_email_build(c, "Thu, 1 Jan 2026 00:00:00 +0000",
		    "id@x", "seed", &blob, 1, &out, &bad, why,
		    sizeof(why)) == 0) {
			/* what it made reads as a message again */
			json_t *back = json_object();
			jmap_email_props(back, out.data ? out.data : "",
			    out.len, ~0u);
			jmap_email_body(back, out.data ? out.data : "",
			    out.len, ~0u, &o);
			json_decref(back);
		} else
			TERN_ASSERT(bad != NULL);
		buf_clear(&out);
	}
	json_decref(c);
	return 0;
}
