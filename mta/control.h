/* SPDX-License-Identifier: ISC */
/*
 * control.h - layer 3: the ternctl protocol on a local socket
 * (data_dir/run/ternd.sock, mode 0600). A request is one line, "verb" or
 * "verb argument", at most CONTROL_LINE_MAX octets; the answer is one
 * header line, "OK <length>" followed by exactly <length> octets of body,
 * or "ERR <text>". One request per connection. Owns no files beyond its
 * socket; the verbs are answered by a handler the wiring registers.
 */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct control;
struct control_req;

#define CONTROL_LINE_MAX 512

/*
 * The handler gets the verb and argument ("" if none) and must answer,
 * now or later, with control_reply() exactly once.
 */
typedef void (*control_handler)(void *arg, struct control_req *req,
    const char *verb, const char *argument);

struct control *control_new(struct event_base *base, const char *path,
    control_handler fn, void *arg, char *err, size_t errsz);
void control_free(struct control *c);

/* ok: body is sent after "OK <len>"; else body is the error text. */
void control_reply(struct control_req *req, bool ok, const char *body,
    size_t len);

#endif
