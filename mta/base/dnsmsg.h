/* SPDX-License-Identifier: ISC */
/*
 * dnsmsg.h - layer 1 (pure): DNS messages (RFC 1035 4) for the stub
 * queries that trust a resolver's AD bit (dnssec = "resolver"): a query
 * with RD and AD set and an EDNS0 OPT record (RFC 6891), and the answer
 * to it read back: header flags, the records of the type asked at the
 * end of the CNAME chain that starts at the name asked, with compressed
 * names in MX rdata expanded, so the rdata is what libunbound would
 * hand over.
 */
#ifndef TERN_DNSMSG_H
#define TERN_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSMSG_UDP_SIZE 1232     /* the EDNS0 payload we offer (DNS flag day 2020) */
#define DNSMSG_MAX_RR 64         /* records kept of one answer */
#define DNSMSG_MAX_CHAIN 8       /* CNAMEs followed */

struct dnsmsg_rr {
	unsigned char *rdata;    /* MX: name uncompressed; others as sent */
	size_t len;
};

struct dnsmsg_answer {
	int rcode;               /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN... */
	bool ad;                 /* the resolver says: proven by DNSSEC */
	bool tc;                 /* truncated: ask again over TCP */
	char canon[256];         /* the chain's end when it is not the name
	                          * asked (text, no final dot), else "" */
	size_t n;
	size_t malformed;        /* records of the type that could not be read */
	struct dnsmsg_rr rr[DNSMSG_MAX_RR];
};

/*
 * The query for name (text, final dot optional) and type, id as given:
 * its length, or 0 if the name is not a valid DNS name or outsz too
 * small (512 is always enough).
 */
size_t dnsmsg_query(uint16_t id, const char *name, int type,
    unsigned char *out, size_t outsz);

/*
 * Reads the answer to that query. 0 with *a filled (free with
 * dnsmsg_answer_free), or -1 if p is not a well-formed reply to it (id,
 * QR, opcode, the question echoed), *a then empty. A truncated reply
 * (tc) is read as far as it goes.
 */
int dnsmsg_parse(const unsigned char *p, size_t len, uint16_t id,
    const char *name, int type, struct dnsmsg_answer *a);
void dnsmsg_answer_free(struct dnsmsg_answer *a);

#endif
