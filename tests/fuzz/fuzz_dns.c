/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: DNS record data as ternd reads it (MX rdata, wire
 * names, TXT strings, TLSA rdata and its presentation form) and the names blocklists are asked (mx_dnsbl_name),
 * with the input split at its first NUL into the address and the zone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "smtp/mx.h"
#include "smtp/tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_entry e;
	char name[300], out[300];
	size_t used;

	if (mx_parse_rdata(data, size, &e) == 0)
		TERN_ASSERT(strlen(e.host) <= MX_NAME_MAX);
	if (mx_wire_name(data, size, name, sizeof(name), &used) == 0)
		TERN_ASSERT(used <= size && strlen(name) < sizeof(name));
	struct tlsa_rr r;
	if (tlsa_parse_rdata(data, size, &r) == 0) {
		char text[120];
		TERN_ASSERT(r.len + 3 == size && r.data == data + 3);
		tlsa_format(&r, 64, text, sizeof(text));
		TERN_ASSERT(strlen(text) < sizeof(text));
		if (tlsa_usable(&r))
			TERN_ASSERT(r.usage >= 2 && r.usage <= 3 &&
			    r.selector <= 1);
	}
	char *t = mx_txt_rdata(data, size);
	if (t) {
		TERN_ASSERT(strlen(t) <= size);
		free(t);
	}
	if (size > 600)
		return 0;
	char what[601], *zone;
	memcpy(what, data, size);
	what[size] = '\0';
	zone = what + strlen(what);
	zone = zone < what + size ? zone + 1 : zone;
	if (mx_dnsbl_name(what, zone, out, sizeof(out)) == 0)
		TERN_ASSERT(strlen(out) > strlen(zone) &&
		    strcmp(out + strlen(out) - strlen(zone), zone) == 0);
	return 0;
}
