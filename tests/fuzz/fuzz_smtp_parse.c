/* SPDX-License-Identifier: ISC */
/* libFuzzer harness: one SMTP command line into smtp_parse_command(). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/util.h"
#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd cmd;
	char out[SMTP_PATH_MAX + 200];

	if (smtp_parse_command((const char *)data, size, &cmd) ==
	    SMTP_PARSE_OK && (cmd.verb == SMTP_VERB_MAIL ||
	    cmd.verb == SMTP_VERB_RCPT)) {
		/* What we format must parse back to the same address. */
		if (smtp_addr_format(&cmd.addr, out, sizeof(out)) == 0 &&
		    !cmd.addr.null && cmd.addr.domain[0] != '\0') {
			struct smtp_addr again;
			size_t n = strlen(out);
			TERN_ASSERT(smtp_parse_mailbox(out + 1, n - 2,
			    &again) == 0);
			TERN_ASSERT(strcmp(again.local, cmd.addr.local) == 0);
			TERN_ASSERT(strcmp(again.domain, cmd.addr.domain) == 0);
		}
		for (size_t i = 0; i < cmd.nparams; i++)
			TERN_ASSERT(cmd.params[i].key[0] != '\0');
	}
	return 0;
}
