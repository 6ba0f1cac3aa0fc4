/* SPDX-License-Identifier: ISC */
/* libFuzzer harness: queue envelope and state text; round trip on success. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e, again;
	struct buf t;
	size_t used, used2;
	char err[200];

	envelope_init(&e);
	if (envelope_parse((const char *)data, size, &e, &used, err,
	    sizeof(err)) == 0) {
		TERN_ASSERT(used <= size);
		(void)envelope_state_parse((const char *)data + used,
		    size - used, &e, err, sizeof(err));
		buf_init(&t);
		envelope_serialize(&e, &t);
		envelope_init(&again);
		TERN_ASSERT(envelope_parse(t.data, t.len, &again, &used2, err,
		    sizeof(err)) == 0);
		TERN_ASSERT(again.nrcpts == e.nfixed && used2 == t.len);
		envelope_clear(&again);
		buf_clear(&t);
	}
	envelope_clear(&e);
	return 0;
}
