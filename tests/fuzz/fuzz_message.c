/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: RFC 5322 header iteration, address lists, the 8-bit
 * downgrade, the reply reader and Maildir name parsing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/maildir.h"
#include "mail/message.h"
#include "smtp/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct message_field f;
	struct maildir_name_info info;
	size_t pos = 0, hlen = message_header_len(msg, size), n = 0;
	char *name;

	TERN_ASSERT(hlen <= size);
	while (message_next_field(msg, size, &pos, &f)) {
		TERN_ASSERT(pos <= size && f.name_len > 0);
		TERN_ASSERT(f.value >= msg && f.value + f.value_len <= msg + size);
		TERN_ASSERT(++n <= size);
	}
	(void)message_find_field(msg, size, "Subject", &f);
	/* the whole input as an address list */
	struct message_addr addrs[3];
	int na = message_parse_addresses(msg, size, addrs, 3);
	TERN_ASSERT(na >= -1 && (size_t)(na < 0 ? 0 : na) <= size);
	for (int k = 0; k < na && k < 3; k++)
		TERN_ASSERT(strlen(addrs[k].local) <= MESSAGE_ADDR_LOCAL_MAX &&
		    strlen(addrs[k].domain) <= MESSAGE_ADDR_DOMAIN_MAX);
	/* the 8-bit downgrade: 7-bit clean when it succeeds */
	struct buf out;
	buf_init(&out);
	if (message_downgrade(msg, size, &out) == 0)
		TERN_ASSERT(!message_has_8bit(out.data ? out.data : "",
		    out.len));
	buf_reset(&out);
	/* the wire form: its size said beforehand, and the same in pieces
	 * cut after an LF (the SMTP client sends it so) */
	message_to_wire(msg, size, &out);
	TERN_ASSERT(out.len == message_wire_size(msg, size, true));
	struct buf parts;
	buf_init(&parts);
	for (size_t i = 0; i < size;) {
		const char *nl = memchr(msg + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - msg) + 1 : size;
		if (end - i < 7 && end < size) {
			nl = memchr(msg + end, '\n', size - end);
			end = nl ? (size_t)(nl - msg) + 1 : size;
		}
		message_to_wire_lines(msg + i, end - i, &parts);
		i = end;
	}
	buf_append(&parts, ".\r\n", 3);
	TERN_ASSERT(parts.len == out.len &&
	    memcmp(parts.data, out.data, out.len) == 0);
	buf_clear(&parts);
	buf_reset(&out);
	message_to_wire_chunk(msg, size, &out);
	TERN_ASSERT(out.len == message_wire_size(msg, size, false));
	buf_clear(&out);
	/* the client's reply reader, line by line */
	struct smtp_reply_reader rr;
	smtp_reply_reader_init(&rr);
	for (size_t i = 0; i < size;) {
		const char *nl = memchr(msg + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - msg) : size;
		if (smtp_reply_reader_feed(&rr, msg + i, end - i) !=
		    SMTP_REPLY_MORE)
			smtp_reply_reader_init(&rr);
		TERN_ASSERT(rr.len < sizeof(rr.text));
		i = end + 1;
	}
	name = xstrndup(msg, size < 300 ? size : 300);
	if (maildir_parse_name(name, &info) == 0)
		TERN_ASSERT(info.unique_len <= strlen(name));
	free(name);
	return 0;
}
