/* SPDX-License-Identifier: ISC */
/*
 * maildir.c - layer 1 (pure). The Maildir conventions (cr.yp.to/proto/
 * maildir.html and the Courier/Dovecot extensions): names unique by time,
 * microseconds, pid, a per-process counter and the host; ",S=" size; the
 * ":2," info with flags D F P R S T in ASCII order. Local parts become path
 * components only through maildir_local_normalize(), which is strict on
 * purpose: a bad name is refused, never "fixed" into someone else's box.
 * A UTF-8 local part (RFC 6531) is a directory name in NFC (valid UTF-8,
 * no control, no '/'); a domain's directory is its A-label form.
 */
#include "mail/maildir.h"

#include <string.h>

#include "base/intl.h"
#include "base/util.h"

int
maildir_unique_name(char *dst, size_t dstsz,
    const struct maildir_name_parts *p)
{
	char host[128];
	size_t n = 0;

	for (const char *h = p->host; *h && n + 5 < sizeof(host); h++) {
		if (*h == '/') {
			memcpy(host + n, "\\057", 4);
			n += 4;
		} else if (*h == ':') {
			memcpy(host + n, "\\072", 4);
			n += 4;
		} else
			host[n++] = *h;
	}
	host[n] = '\0';
	if (p->tag != NULL)
		for (const char *t = p->tag; *t; t++)
			if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' &&
			    *t <= 'Z') || (*t >= '0' && *t <= '9')))
				return -1;
	return str_fmt(dst, dstsz, "%lld.M%06ldP%ldQ%llu%s%s.%s,S=%llu",
	    (long long)p->sec, p->usec, p->pid, (unsigned long long)p->seq,
	    p->tag ? "T" : "", p->tag ? p->tag : "", host,
	    (unsigned long long)p->size);
}

static bool
mailbox_char_ok(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr(".-_='&#$^`{}|~*?", c) != NULL);
}

int
maildir_local_normalize(const char *local, char delim, char *out,
    size_t outsz)
{
	char nfc[4 * 64 + 1] = "";
	size_t n = 0;

	/* RFC 6531: a UTF-8 local part is one name in NFC, whatever form
	 * the sender used; its octets past ASCII are kept as they are */
	if (!intl_is_ascii(local, strlen(local))) {
		if (intl_nfc(local, nfc, sizeof(nfc)) != 0)
			return -1;
		local = nfc;
	}
	for (const char *s = local; *s; s++) {
		int c = ascii_tolower((unsigned char)*s);
		if (delim != '\0' && c == delim)
			break;
		if (!mailbox_char_ok(c) && c < 0x80)
			return -1;
		if (c == '.' && (n == 0 || out[n - 1] == '.'))
			return -1;
		if (n + 1 >= outsz || n >= 64)
			return -1;
		out[n++] = (char)c;
	}
	if (n == 0 || out[n - 1] == '.')
		return -1;
	out[n] = '\0';
	return 0;
}

int
maildir_domain_normalize(const char *domain, char *out, size_t outsz)
{
	char ascii[256];
	size_t n = 0;

	/* U-labels become A-labels: one directory whichever form came */
	if (intl_domain_ascii(domain, ascii, sizeof(ascii)) != 0)
		return -1;
	domain = ascii;

	for (const char *s = domain; *s; s++) {
		int c = ascii_tolower((unsigned char)*s);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.'))
			return -1;
		if (c == '.' && (n == 0 || out[n - 1] == '.'))
			return -1;
		if (n + 1 >= outsz)
			return -1;
		out[n++] = (char)c;
	}
	if (n == 0 || out[n - 1] == '.')
		return -1;
	out[n] = '\0';
	return 0;
}

int
maildir_parse_name(const char *name, struct maildir_name_info *info)
{
	const char *colon;
	size_t len = strlen(name), nf = 0;
	char last = 0;

	memset(info, 0, sizeof(*info));
	if (len == 0 || len > MAILDIR_NAME_MAX || name[0] == '.' ||
	    strchr(name, '/') != NULL)
		return -1;
	colon = strchr(name, ':');
	if (colon == NULL) {
		info->unique_len = len;
		return 0;
	}
	info->unique_len = (size_t)(colon - name);
	if (info->unique_len == 0 || strncmp(colon, ":2,", 3) != 0)
		return -1;
	info->has_info = true;
	for (const char *f = colon + 3; *f; f++) {
		if (*f >= 'A' && *f <= 'Z') {
			if (*f <= last)
				return -1;
			last = *f;
		} else if (!(*f >= 'a' && *f <= 'z'))
			return -1;
		if (nf + 1 >= sizeof(info->flags))
			return -1;
		info->flags[nf++] = *f;
	}
	info->flags[nf] = '\0';
	return 0;
}

bool
maildir_folder_valid(const char *name)
{
	size_t n = 0;

	for (const char *s = name; *s; s++, n++) {
		int c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return false;
		if (c == '.' && (n == 0 || s[-1] == '.'))
			return false;
	}
	return n > 0 && n <= 100 && name[n - 1] != '.';
}

int
maildir_user_root(const char *mail_dir, const char *default_domain,
    const char *user, char *out, size_t outsz)
{
	char local[256], lnorm[256], dnorm[256];
	const char *at = strrchr(user, '@');
	const char *domain = at ? at + 1 : default_domain;

	if (str_copy(local, sizeof(local), user) != 0)
		return -1;
	if (at)
		local[at - user] = '\0';
	if (maildir_local_normalize(local, '\0', lnorm, sizeof(lnorm)) != 0 ||
	    maildir_domain_normalize(domain, dnorm, sizeof(dnorm)) != 0)
		return -1;
	return str_fmt(out, outsz, "%s/%s/%s", mail_dir, dnorm, lnorm);
}
