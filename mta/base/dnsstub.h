/* SPDX-License-Identifier: ISC */
/*
 * dnsstub.h - layer 2: one DNS query to one server, as a stub resolver
 * asks (RFC 1035 4.2): over UDP from a fresh socket and a random id, sent
 * again after 1, 2 and 4 seconds of silence, and over TCP when the reply
 * comes truncated. What dns.c uses when the administrator trusts the
 * resolver's AD bit (dnssec = "resolver"), which libunbound does not
 * pass on. No cache: the resolver has one.
 */
#ifndef TERN_DNSSTUB_H
#define TERN_DNSSTUB_H

#include <sys/socket.h>

struct event_base;
struct dnsmsg_answer;
struct dnsstub_query;

/* a: the reply read (base/dnsmsg.h), or NULL: none (refused, reset,
 * malformed over TCP). Runs on the loop, never before dnsstub_ask
 * returns; the query is gone when it returns. */
typedef void (*dnsstub_cb)(void *arg, const struct dnsmsg_answer *a);

/*
 * "ADDRESS", "ADDRESS:PORT" or "[ADDRESS]:PORT" (port 53 if none) into
 * *ss. 0, or -1 if it is not a numeric address.
 */
int dnsstub_server(const char *text, struct sockaddr_storage *ss,
    socklen_t *len);

/* Asks server for name's records of type; NULL never (a query that
 * cannot start answers NULL from the loop). */
struct dnsstub_query *dnsstub_ask(struct event_base *base,
    const struct sockaddr_storage *server, socklen_t len, const char *name,
    int type, dnsstub_cb cb, void *arg);

/* Forgets q: its callback never runs. */
void dnsstub_cancel(struct dnsstub_query *q);

#endif
