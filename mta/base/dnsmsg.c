/* SPDX-License-Identifier: ISC */
/*
 * dnsmsg.c - layer 1 (pure): DNS queries written and their replies read
 * (RFC 1035 4.1, compression 4.1.4; EDNS0, RFC 6891; the AD bit, RFC
 * 4035 3.2.3 and RFC 6840 5.7, which lets a query ask for it).
 *
 * Names are handled in wire form (length-prefixed labels, at most 255
 * octets) and compared without regard to ASCII case. A compression
 * pointer must point before the piece of the name it ends, so each jump
 * goes further back and no name can loop.
 */
#include "base/dnsmsg.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define TYPE_CNAME 5
#define TYPE_MX 15
#define TYPE_OPT 41
#define CLASS_IN 1

#define FLAG_QR 0x8000
#define FLAG_TC 0x0200
#define FLAG_RD 0x0100
#define FLAG_AD 0x0020

#define MAX_SEEN 128             /* answer records looked at */

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Text to wire form; its length, or 0 if not a DNS name. */
static size_t
name_to_wire(const char *text, unsigned char *out)
{
	size_t n = 0;
	const char *p = text;

	if (strcmp(p, ".") == 0)
		p++;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t lab = dot ? (size_t)(dot - p) : strlen(p);
		if (lab == 0 || lab > 63 || n + 1 + lab + 1 > 255)
			return 0;
		out[n++] = (unsigned char)lab;
		memcpy(out + n, p, lab);
		n += lab;
		p += lab;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	return n;
}

/*
 * The name at off of the message p[0..len) in wire form, pointers
 * followed: out (255 octets) and its length; *next the offset after the
 * name where it was met. -1 if malformed.
 */
static int
read_name(const unsigned char *p, size_t len, size_t off, unsigned char *out,
    size_t *outlen, size_t *next)
{
	size_t n = 0, pos = off, start = off;
	bool jumped = false;

	for (;;) {
		if (pos >= len)
			return -1;
		unsigned lab = p[pos];
		if ((lab & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -1;
			size_t to = (size_t)(lab & 0x3f) << 8 | p[pos + 1];
			if (to >= start)
				return -1;   /* before this piece: no loops */
			if (!jumped)
				*next = pos + 2;
			jumped = true;
			pos = start = to;
			continue;
		}
		if (lab & 0xc0)
			return -1;           /* 0x40, 0x80: not in use */
		if (n + 1 + lab > 255 || pos + 1 + lab > len)
			return -1;
		memcpy(out + n, p + pos, 1 + lab);
		n += 1 + lab;
		pos += 1 + lab;
		if (lab == 0)
			break;
	}
	if (!jumped)
		*next = pos;
	*outlen = n;
	return 0;
}

static bool
wire_eq(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
	/* label lengths are below 64, so folding leaves them alone */
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (ascii_tolower(a[i]) != ascii_tolower(b[i]))
			return false;
	return true;
}

/* Wire form to text without the final dot; -1 unless every label is
 * host-name characters (letters, digits, '-', '_'). */
static int
wire_to_text(const unsigned char *w, char *out, size_t outsz)
{
	size_t n = 0, i = 0;

	while (w[i] != 0) {
		unsigned lab = w[i++];
		if (n > 0)
			out[n++] = '.';
		for (unsigned k = 0; k < lab; k++, i++) {
			unsigned char c = w[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_'))
				return -1;
			if (n + 2 >= outsz)
				return -1;
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return 0;
}

size_t
dnsmsg_query(uint16_t id, const char *name, int type, unsigned char *out,
    size_t outsz)
{
	unsigned char wire[256];
	size_t wl = name_to_wire(name, wire);

	if (wl == 0 || type < 0 || type > 0xffff || outsz < 12 + wl + 4 + 11)
		return 0;
	memset(out, 0, 12);
	put16(out, id);
	put16(out + 2, FLAG_RD | FLAG_AD);
	put16(out + 4, 1);           /* QDCOUNT */
	put16(out + 10, 1);          /* ARCOUNT: the OPT record */
	size_t n = 12;
	memcpy(out + n, wire, wl);
	n += wl;
	put16(out + n, (unsigned)type);
	put16(out + n + 2, CLASS_IN);
	n += 4;
	/* OPT: root owner, the payload size as class, no flags, no data */
	out[n++] = 0;
	put16(out + n, TYPE_OPT);
	put16(out + n + 2, DNSMSG_UDP_SIZE);
	memset(out + n + 4, 0, 6);
	return n + 10;
}

struct seen {
	size_t owner;            /* offset of its owner name */
	unsigned type;
	size_t rdata, rdlen;
};

/* The record's rdata as kept: an MX's exchange name uncompressed. */
static int
keep_rdata(const unsigned char *p, size_t len, const struct seen *s,
    struct dnsmsg_rr *rr)
{
	if (s->type == TYPE_MX) {
		unsigned char w[256];
		size_t wl, next;
		if (s->rdlen < 3 || read_name(p, len, s->rdata + 2, w, &wl,
		    &next) != 0 || next != s->rdata + s->rdlen)
			return -1;
		rr->rdata = xmalloc(2 + wl);
		memcpy(rr->rdata, p + s->rdata, 2);
		memcpy(rr->rdata + 2, w, wl);
		rr->len = 2 + wl;
		return 0;
	}
	rr->rdata = xmalloc(s->rdlen ? s->rdlen : 1);
	memcpy(rr->rdata, p + s->rdata, s->rdlen);
	rr->len = s->rdlen;
	return 0;
}

static bool
owner_is(const unsigned char *p, size_t len, const struct seen *s,
    const unsigned char *name, size_t nl)
{
	unsigned char w[256];
	size_t wl, next;

	return read_name(p, len, s->owner, w, &wl, &next) == 0 &&
	    wire_eq(w, wl, name, nl);
}

int
dnsmsg_parse(const unsigned char *p, size_t len, uint16_t id,
    const char *name, int type, struct dnsmsg_answer *a)
{
	unsigned char qw[256], w[256], cur[256];
	size_t qwl, wl, curl, off, next;
	struct seen seen[MAX_SEEN];
	size_t nseen = 0;

	memset(a, 0, sizeof(*a));
	qwl = name_to_wire(name, qw);
	if (qwl == 0 || len < 12 || get16(p) != id)
		return -1;
	unsigned flags = get16(p + 2);
	if (!(flags & FLAG_QR) || ((flags >> 11) & 0xf) != 0)
		return -1;
	if (get16(p + 4) != 1)
		return -1;
	unsigned an = get16(p + 6);
	if (read_name(p, len, 12, w, &wl, &off) != 0 ||
	    !wire_eq(w, wl, qw, qwl) || off + 4 > len ||
	    get16(p + off) != (unsigned)type || get16(p + off + 2) != CLASS_IN)
		return -1;
	off += 4;
	a->rcode = (int)(flags & 0xf);
	a->ad = (flags & FLAG_AD) != 0;
	a->tc = (flags & FLAG_TC) != 0;
	if (a->tc)
		return 0;            /* asked again over TCP: nothing to read */
	for (unsigned i = 0; i < an; i++) {
		size_t owner = off;
		if (read_name(p, len, off, w, &wl, &next) != 0 ||
		    next + 10 > len)
			goto bad;
		unsigned rtype = get16(p + next), rclass = get16(p + next + 2);
		size_t rdlen = get16(p + next + 8);
		if (next + 10 + rdlen > len)
			goto bad;
		if (rclass == CLASS_IN && nseen < MAX_SEEN)
			seen[nseen++] = (struct seen){ owner, rtype, next + 10,
				rdlen };
		off = next + 10 + rdlen;
	}
	/* the CNAME chain from the name asked, in whatever order it came */
	memcpy(cur, qw, qwl);
	curl = qwl;
	for (int hop = 0; hop <= DNSMSG_MAX_CHAIN; hop++) {
		bool found = false;
		for (size_t i = 0; i < nseen && !found; i++)
			found = seen[i].type == (unsigned)type &&
			    owner_is(p, len, &seen[i], cur, curl);
		if (found || type == TYPE_CNAME)
			break;
		const struct seen *cn = NULL;
		for (size_t i = 0; i < nseen && cn == NULL; i++)
			if (seen[i].type == TYPE_CNAME &&
			    owner_is(p, len, &seen[i], cur, curl))
				cn = &seen[i];
		if (cn == NULL)
			break;
		if (hop == DNSMSG_MAX_CHAIN ||
		    read_name(p, len, cn->rdata, w, &wl, &next) != 0 ||
		    next != cn->rdata + cn->rdlen)
			goto bad;
		memcpy(cur, w, wl);
		curl = wl;
	}
	if (!wire_eq(cur, curl, qw, qwl) &&
	    wire_to_text(cur, a->canon, sizeof(a->canon)) != 0)
		goto bad;
	for (size_t i = 0; i < nseen && a->n < DNSMSG_MAX_RR; i++) {
		if (seen[i].type != (unsigned)type ||
		    !owner_is(p, len, &seen[i], cur, curl))
			continue;
		if (keep_rdata(p, len, &seen[i], &a->rr[a->n]) == 0)
			a->n++;
		else
			a->malformed++;
	}
	return 0;
bad:
	dnsmsg_answer_free(a);
	return -1;
}

void
dnsmsg_answer_free(struct dnsmsg_answer *a)
{
	for (size_t i = 0; i < a->n && i < DNSMSG_MAX_RR; i++)
		free(a->rr[i].rdata);
	memset(a, 0, sizeof(*a));
}
