/* SPDX-License-Identifier: ISC */
/* libFuzzer harness: SASL PLAIN/LOGIN responses and base64 round trips. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/sasl.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[SASL_FIELD_MAX], pass[SASL_FIELD_MAX], enc[2048], dec[2048];
	size_t n;

	if (sasl_plain((const char *)data, size, user, pass) == 0)
		TERN_ASSERT(strlen(user) > 0 && strlen(pass) > 0);
	(void)sasl_login_field((const char *)data, size, user);
	if (size < 1000 && sasl_b64_encode((const char *)data, size, enc,
	    sizeof(enc)) == 0) {
		TERN_ASSERT(sasl_b64_decode(enc, strlen(enc), dec, sizeof(dec),
		    &n) == 0);
		TERN_ASSERT(n == size && memcmp(dec, data, size) == 0);
	}
	return 0;
}
