/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: JMAP requests as I-JSON, result references against
 * the request's own calls, pointers, and Email properties of the input
 * read as a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "http/jmap_email.h"
#include "http/jmap_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct jmap_request r;
	char why[256];

	if (jmap_request_parse(p, size, &r, why, sizeof(why)) == JMAP_REQ_OK) {
		/* the calls as responses: references between them resolve
		 * or fail, never crash */
		json_t *resp = json_array();
		for (size_t i = 0; i < r.ncalls; i++) {
			const char *type;
			char desc[300];
			json_t *out = jmap_resolve_refs(r.calls[i].args, resp,
			    &type, desc, sizeof(desc));
			TERN_ASSERT(out != NULL || type != NULL);
			json_decref(out);
			json_array_append_new(resp, json_pack("[s,O,s]",
			    r.calls[i].name, r.calls[i].args, r.calls[i].id));
		}
		json_decref(resp);
		for (size_t i = 0; i < r.nusing; i++)
			json_decref(jmap_pointer_eval(r.root, r.using[i]));
	}
	jmap_request_clear(&r);
	json_t *o = json_object();
	jmap_email_props(o, p, size, ~0u);
	char *s = json_dumps(o, JSON_COMPACT);
	TERN_ASSERT(s != NULL);      /* every string it made was UTF-8 */
	free(s);
	json_decref(o);
	return 0;
}
