/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: ternmail's reading of a message (GMime parse, the
 * summary headers, the rendered text, the attachment list and their
 * decoding) and the HTML renderer. Whatever comes in, what would be
 * printed is valid UTF-8 without terminal control characters.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "mimeview.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_safe(const char *s, size_t n)
{
	TERN_ASSERT(utf8_valid(s, n));
	for (size_t i = 0; i < n; i++)
		TERN_ASSERT((unsigned char)s[i] >= 0x20 || s[i] == '\n' ||
		    s[i] == '\t');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static int devnull = -1;
	GMimeMessage *m;
	struct mv_head h;
	struct mv_view v;
	struct buf b;

	if (!ready) {
		mv_init();
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		ready = true;
	}
	m = mv_parse((const char *)data, size);
	TERN_ASSERT(m != NULL);
	mv_head(m, &h);
	check_safe(h.from, strlen(h.from));
	check_safe(h.subject, strlen(h.subject));
	check_safe(h.to, strlen(h.to));
	mv_render(m, &v);
	check_safe(v.text.data, v.text.len);
	for (size_t i = 0; i < v.natt; i++) {
		check_safe(v.att[i].name, strlen(v.att[i].name));
		TERN_ASSERT(strchr(v.att[i].name, '/') == NULL);
		(void)mv_save(&v.att[i], devnull);
	}
	mv_view_free(&v);
	mv_head_free(&h);
	g_object_unref(m);

	buf_init(&b);
	html_to_text(&b, (const char *)data, size);
	buf_append_char(&b, '\0');
	TERN_ASSERT(utf8_valid(b.data, b.len - 1));
	{
		struct buf f;
		buf_init(&f);
		text_fit(&f, b.data, 20, true);
		buf_clear(&f);
	}
	buf_clear(&b);
	return 0;
}
