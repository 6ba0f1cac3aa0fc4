/* SPDX-License-Identifier: ISC */
/*
 * search.c - layer 1 (pure): substring matches in text and header
 * fields (search.h).
 */
#include "mail/search.h"

#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/message.h"
#include "mail/mime.h"

bool
search_contains(const char *hay, size_t n, const char *needle)
{
	size_t nl = strlen(needle);

	if (nl == 0)
		return true;
	for (size_t i = 0; i + nl <= n; i++)
		if (ascii_strncaseeq(hay + i, needle, nl))
			return true;
	return false;
}

bool
search_header_has(const char *hdr, size_t hlen, const char *name,
    const char *needle)
{
	struct message_field f;
	size_t pos = 0, nlen = strlen(name);

	while (message_next_field(hdr, hlen, &pos, &f)) {
		if (f.name_len != nlen || !ascii_strncaseeq(f.name, name, nlen))
			continue;
		if (needle == NULL || search_contains(f.value, f.value_len,
		    needle))
			return true;
		struct buf d;
		buf_init(&d);
		mime_decode_words(f.value, f.value_len, &d);
		bool hit = search_contains(d.data ? d.data : "", d.len, needle);
		buf_clear(&d);
		if (hit)
			return true;
	}
	return false;
}
