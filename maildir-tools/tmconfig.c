/* SPDX-License-Identifier: ISC */
/*
 * tmconfig.c - see tmconfig.h. tmconfig_parse() is pure and fuzzed
 * (fuzz_tmconfig); tmconfig_load() does the file and environment.
 */
#include "tmconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"

static const char *const names[TM_NKEYS] = {
	[TM_MAILDIR] = "maildir", [TM_FROM] = "from", [TM_NAME] = "name",
	[TM_SMTP_HOST] = "smtp_host", [TM_SMTP_PORT] = "smtp_port",
	[TM_SMTP_TLS] = "smtp_tls", [TM_SMTP_USER] = "smtp_user",
	[TM_SMTP_PASSWORD_COMMAND] = "smtp_password_command",
	[TM_SMTP_CAFILE] = "smtp_cafile", [TM_SMTP_VERIFY] = "smtp_verify",
	[TM_SENDMAIL] = "sendmail", [TM_TRANSPORT] = "transport",
	[TM_EDITOR] = "editor", [TM_SENT] = "sent_folder",
	[TM_DRAFTS] = "drafts_folder", [TM_TRASH] = "trash_folder",
};

const char *
tmconfig_key_name(enum tm_key k)
{
	return names[k];
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One line (no '\n'); 0, or -1 with why. */
static int
parse_line(struct tmconfig *c, const char *p, size_t n, char *why,
    size_t whysz)
{
	size_t i = 0, k0, klen;
	struct buf v;
	int key = -1;

	while (i < n && is_space(p[i]))
		i++;
	if (i == n || p[i] == '#')
		return 0;
	k0 = i;
	while (i < n && (p[i] == '_' || (p[i] >= 'a' && p[i] <= 'z') ||
	    (p[i] >= '0' && p[i] <= '9')))
		i++;
	klen = i - k0;
	for (int k = 0; k < TM_NKEYS; k++)
		if (strlen(names[k]) == klen && memcmp(names[k], p + k0,
		    klen) == 0)
			key = k;
	if (key < 0) {
		str_fmt(why, whysz, "unknown key \"%.*s\"", (int)(klen ? klen :
		    1), p + k0);
		return -1;
	}
	while (i < n && is_space(p[i]))
		i++;
	if (i == n || p[i] != '=') {
		str_fmt(why, whysz, "expected '=' after %s", names[key]);
		return -1;
	}
	i++;
	while (i < n && is_space(p[i]))
		i++;
	buf_init(&v);
	if (i < n && p[i] == '"') {
		bool closed = false;
		for (i++; i < n; i++) {
			if (p[i] == '\\' && i + 1 < n) {
				buf_append_char(&v, p[++i]);
			} else if (p[i] == '"') {
				closed = true;
				i++;
				break;
			} else {
				buf_append_char(&v, p[i]);
			}
		}
		while (i < n && is_space(p[i]))
			i++;
		if (!closed || (i < n && p[i] != '#')) {
			buf_clear(&v);
			str_fmt(why, whysz, "bad quoting in the value of %s",
			    names[key]);
			return -1;
		}
	} else {
		size_t end = i;
		for (size_t j = i; j < n && p[j] != '#'; j++)
			if (!is_space(p[j]))
				end = j + 1;
		buf_append(&v, p + i, end - i);
	}
	buf_append_char(&v, '\0');
	if (strlen(v.data) != v.len - 1) {
		buf_clear(&v);
		str_fmt(why, whysz, "a NUL byte in the value of %s", names[key]);
		return -1;
	}
	free(c->v[key]);
	c->v[key] = buf_steal(&v, NULL);
	return 0;
}

int
tmconfig_parse(struct tmconfig *c, const char *text, size_t len,
    char *why, size_t whysz)
{
	size_t i = 0;
	int line = 1;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
		if (memchr(text + i, '\0', n) != NULL) {
			str_fmt(why, whysz, "a NUL byte");
			return line;
		}
		if (parse_line(c, text + i, n, why, whysz) != 0)
			return line;
		i += n + 1;
		line++;
	}
	return 0;
}

int
tmconfig_load(struct tmconfig *c)
{
	const char *path = getenv("TERNMAIL_CONFIG");
	char *def = NULL;
	FILE *fp;

	memset(c, 0, sizeof(*c));
	if (path == NULL || path[0] == '\0') {
		const char *xdg = getenv("XDG_CONFIG_HOME");
		const char *home = getenv("HOME");
		if (xdg != NULL && xdg[0] == '/')
			def = xasprintf("%s/ternmail/config", xdg);
		else if (home != NULL && home[0] != '\0')
			def = xasprintf("%s/.config/ternmail/config", home);
		path = def;
	}
	if (path != NULL && (fp = fopen(path, "r")) != NULL) {
		struct buf b;
		char chunk[4096], why[200];
		size_t n;
		int line;
		buf_init(&b);
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 &&
		    b.len < 1 << 20)
			buf_append(&b, chunk, n);
		fclose(fp);
		line = tmconfig_parse(c, b.data ? b.data : "", b.len, why,
		    sizeof(why));
		buf_clear(&b);
		if (line != 0) {
			fprintf(stderr, "ternmail: %s:%d: %s\n", path, line, why);
			free(def);
			return -1;
		}
	} else if (path != NULL && errno != ENOENT && def == NULL) {
		fprintf(stderr, "ternmail: %s: %s\n", path, strerror(errno));
		return -1;
	}
	free(def);
	for (int k = 0; k < TM_NKEYS; k++) {
		char env[64];
		const char *v;
		size_t i;
		str_fmt(env, sizeof(env), "TERNMAIL_%s", names[k]);
		for (i = 9; env[i]; i++)
			env[i] = (char)(env[i] >= 'a' && env[i] <= 'z' ?
			    env[i] - 32 : env[i]);
		if ((v = getenv(env)) != NULL) {
			free(c->v[k]);
			c->v[k] = xstrdup(v);
		}
	}
	if (getenv("TERNMAIL_PASSWORD") != NULL)
		c->password = xstrdup(getenv("TERNMAIL_PASSWORD"));
	return 0;
}

void
tmconfig_free(struct tmconfig *c)
{
	for (int k = 0; k < TM_NKEYS; k++)
		free(c->v[k]);
	free(c->password);
}

const char *
tmconfig_get(const struct tmconfig *c, enum tm_key k, const char *def)
{
	return c->v[k] != NULL && c->v[k][0] != '\0' ? c->v[k] : def;
}
