/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: DNS record data as ternd reads it (MX rdata, wire
 * names, TXT strings, TLSA rdata and its presentation form), whole DNS
 * replies as the stub reads them (dnsmsg_parse, as the reply to a query
 * for mx.dane.test or its TLSA name, of each type it asks, with the id
 * the input starts with), and the names blocklists are asked
 * (mx_dnsbl_name), with the input split at its first NUL into the
 * address and the zone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/dnsmsg.h"
#include "base/util.h"
#include "smtp/mx.h"
#include "smtp/tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
replies(const uint8_t *data, size_t size)
{
	static const struct {
		const char *name;
		int type;
	} asked[] = { { "mx.dane.test", 1 }, { "mx.dane.test", 28 },
		{ "dane.test", 15 }, { "_25._tcp.mx.dane.test", 52 },
		{ ".", 48 } };
	struct dnsmsg_answer a;

	if (size < 2)
		return;
	uint16_t id = (uint16_t)(data[0] << 8 | data[1]);
	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
		if (dnsmsg_parse(data, size, id, asked[i].name, asked[i].type,
		    &a) != 0) {
			TERN_ASSERT(a.n == 0);
			continue;
		}
		TERN_ASSERT(a.n <= DNSMSG_MAX_RR && strlen(a.canon) < 256);
		TERN_ASSERT(!a.tc || a.n == 0);
		for (size_t k = 0; k < a.n; k++) {
			TERN_ASSERT(a.rr[k].len <= size ||
			    asked[i].type == 15);
			if (asked[i].type == 15) {
				/* expanded: a name mx_wire_name can read */
				char host[300];
				size_t used;
				TERN_ASSERT(a.rr[k].len >= 3 && a.rr[k].len <=
				    2 + 255);
				TERN_ASSERT(mx_wire_name(a.rr[k].rdata + 2,
				    a.rr[k].len - 2, host, sizeof(host),
				    &used) != 0 || used == a.rr[k].len - 2);
			}
		}
		dnsmsg_answer_free(&a);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_entry e;
	char name[300], out[300];
	size_t used;

	replies(data, size);
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
