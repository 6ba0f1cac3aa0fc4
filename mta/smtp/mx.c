/* SPDX-License-Identifier: ISC */
/*
 * mx.c - layer 1 (pure). RFC 1035 3.3.9 (MX rdata), 3.1 (names as length-
 * prefixed labels ending with a zero octet; libunbound hands rdata with
 * names uncompressed, so a compression pointer is an error here). RFC 5321
 * 5.1: try MX hosts in preference order, equal ones in random order.
 * RFC 7505: a single MX of preference 0 and host "." means the domain
 * accepts no mail.
 */
#include "smtp/mx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static int
wire_name(const unsigned char *p, size_t len, char *out, size_t outsz,
    size_t *used, bool any);

int
mx_wire_name(const unsigned char *p, size_t len, char *out, size_t outsz,
    size_t *used)
{
	return wire_name(p, len, out, outsz, used, false);
}

/* any: a label may hold any visible character but '.' (SPF's names,
 * RFC 7208 7.1), else host names' letters, digits, '-' and '_' */
static int
wire_name(const unsigned char *p, size_t len, char *out, size_t outsz,
    size_t *used, bool any)
{
	size_t i = 0, n = 0;

	if (outsz == 0)
		return -1;
	for (;;) {
		if (i >= len)
			return -1;
		unsigned lab = p[i++];
		if (lab == 0)
			break;
		if (lab > 63 || i + lab > len)
			return -1;  /* compression pointers are not expected */
		if (n > 0) {
			if (n + 1 >= outsz)
				return -1;
			out[n++] = '.';
		}
		if (n + lab >= outsz)
			return -1;
		for (unsigned k = 0; k < lab; k++) {
			unsigned char c = p[i + k];
			/* host names: letters, digits, hyphen (and _ seen) */
			if (any ? (c <= ' ' || c >= 127 || c == '.') :
			    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_'))
				return -1;
			out[n++] = (char)c;
		}
		i += lab;
	}
	out[n] = '\0';
	if (used)
		*used = i;
	return 0;
}

static int
parse_rdata(const unsigned char *rdata, size_t len, struct mx_entry *e,
    bool any)
{
	size_t used;

	if (len < 3)
		return -1;
	e->pref = (unsigned)rdata[0] << 8 | rdata[1];
	if (wire_name(rdata + 2, len - 2, e->host, sizeof(e->host), &used,
	    any) != 0 || used != len - 2)
		return -1;
	e->shuffle = 0;
	return 0;
}

int
mx_parse_rdata(const unsigned char *rdata, size_t len, struct mx_entry *e)
{
	return parse_rdata(rdata, len, e, false);
}

int
mx_parse_rdata_any(const unsigned char *rdata, size_t len, struct mx_entry *e)
{
	return parse_rdata(rdata, len, e, true);
}

char *
mx_txt_rdata(const unsigned char *rdata, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t i = 0, n = 0;

	while (i < len) {
		size_t l = rdata[i++];
		if (l > len - i) {
			free(out);
			return NULL;
		}
		/* a NUL cannot stay in a C string; DEL is no character any
		 * record may hold, so such a record still fails to parse
		 * (an SPF record with one is a permerror, RFC 7208 7.1) */
		for (size_t k = 0; k < l; k++)
			out[n + k] = rdata[i + k] ? (char)rdata[i + k] : '\x7f';
		n += l;
		i += l;
	}
	out[n] = '\0';
	return out;
}

static int
cmp(const void *a, const void *b)
{
	const struct mx_entry *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	if (x->shuffle != y->shuffle)
		return x->shuffle < y->shuffle ? -1 : 1;
	return strcmp(x->host, y->host);
}

void
mx_sort(struct mx_entry *e, size_t n)
{
	qsort(e, n, sizeof(*e), cmp);
}

bool
mx_is_null(const struct mx_entry *e, size_t n)
{
	return n == 1 && e[0].pref == 0 && e[0].host[0] == '\0';
}

int
mx_dnsbl_name(const char *what, const char *zone, char *out, size_t outsz)
{
	unsigned char ip[16];
	bool v6;
	size_t n = 0, zl = strlen(zone);

	if (zl == 0 || zl > 200 || zone[0] == '.' || zone[zl - 1] == '.')
		return -1;
	if (ip_parse(what, strlen(what), ip, &v6) == 0) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0xff, 0xff };
		static const char hex[] = "0123456789abcdef";
		if (v6 && memcmp(ip, mapped, 12) == 0) {
			memmove(ip, ip + 12, 4);
			v6 = false;
		}
		char rev[80];
		if (v6) {
			for (int i = 15; i >= 0; i--) {
				rev[n++] = hex[ip[i] & 15];
				rev[n++] = '.';
				rev[n++] = hex[ip[i] >> 4];
				rev[n++] = '.';
			}
			rev[n] = '\0';
		} else
			(void)snprintf(rev, sizeof(rev), "%u.%u.%u.%u.", ip[3],
			    ip[2], ip[1], ip[0]);
		return str_fmt(out, outsz, "%s%s", rev, zone);
	}
	/* a domain (a URI or sender blocklist): its own labels first */
	size_t wl = strlen(what);
	if (wl == 0 || wl > 253 || what[0] == '.' || what[wl - 1] == '.')
		return -1;
	for (const char *p = what; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    (*p == '.' && p[1] != '.')))
			return -1;
	if (wl + 1 + zl > 253)
		return -1;
	return str_fmt(out, outsz, "%s.%s", what, zone);
}
