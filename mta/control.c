/* SPDX-License-Identifier: ISC */
/*
 * control.c - layer 3: the control socket (control.h). Each connection
 * reads one request line (CRLF or LF; longer than CONTROL_LINE_MAX, or
 * with control bytes, gets ERR), hands it to the handler, and closes after
 * the answer is written. A client that disconnects while its answer is
 * being prepared detaches the request: the reply is then dropped. Idle
 * clients are dropped after 30 seconds.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "base/log.h"
#include "base/util.h"

struct control {
	struct event_base *base;
	struct evconnlistener *lev;
	char *path;
	control_handler fn;
	void *arg;
};

struct control_req {
	struct control *c;
	struct bufferevent *bev;  /* NULL once the client is gone */
	bool asked;               /* handler called, reply pending */
	bool replied;
};

static void
req_free(struct control_req *r)
{
	if (r->bev)
		bufferevent_free(r->bev);
	free(r);
}

static void
req_on_write(struct bufferevent *bev, void *arg)
{
	struct control_req *r = arg;

	if (r->replied)
		req_free(r);
}

static void
req_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_req *r = arg;

	if (r->asked && !r->replied) {
		/* the handler still owns r: detach, free at the reply */
		bufferevent_free(r->bev);
		r->bev = NULL;
		return;
	}
	req_free(r);
}

void
control_reply(struct control_req *r, bool ok, const char *body, size_t len)
{
	r->replied = true;
	if (r->bev == NULL) {
		free(r);
		return;
	}
	struct evbuffer *out = bufferevent_get_output(r->bev);
	if (ok) {
		evbuffer_add_printf(out, "OK %zu\n", len);
		evbuffer_add(out, body, len);
	} else {
		evbuffer_add_printf(out, "ERR ");
		for (size_t i = 0; i < len; i++)
			evbuffer_add(out, (body[i] == '\n' ? " " : body + i), 1);
		evbuffer_add(out, "\n", 1);
	}
	bufferevent_disable(r->bev, EV_READ);
}

static void
req_on_read(struct bufferevent *bev, void *arg)
{
	struct control_req *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[CONTROL_LINE_MAX + 2];
	struct evbuffer_ptr p;
	size_t len;

	if (r->asked)
		return;
	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
			r->asked = true;
			control_reply(r, false, "request too long", 16);
		}
		return;
	}
	len = (size_t)p.pos;
	if (len > CONTROL_LINE_MAX) {
		r->asked = true;
		control_reply(r, false, "request too long", 16);
		return;
	}
	evbuffer_remove(in, line, len + 1);
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 32 || line[i] == 127) {
			r->asked = true;
			control_reply(r, false, "control byte in request", 23);
			return;
		}
	char *sp = strchr(line, ' ');
	const char *argument = "";
	if (sp) {
		*sp = '\0';
		argument = sp + 1;
	}
	r->asked = true;
	r->c->fn(r->c->arg, r, line, argument);
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control *c = arg;
	struct control_req *r = xcalloc(1, sizeof(*r));
	struct timeval tv = { 30, 0 };

	r->c = c;
	r->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	TERN_ASSERT(r->bev != NULL);
	bufferevent_setcb(r->bev, req_on_read, req_on_write, req_on_event, r);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

struct control *
control_new(struct event_base *base, const char *path, control_handler fn,
    void *arg, char *err, size_t errsz)
{
	struct control *c = xcalloc(1, sizeof(*c));
	struct sockaddr_un sun;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) != 0) {
		(void)snprintf(err, errsz, "control socket path too long: %s",
		    path);
		free(c);
		return NULL;
	}
	c->base = base;
	c->fn = fn;
	c->arg = arg;
	c->path = xstrdup(path);
	(void)unlink(path);  /* a stale socket of an earlier run */
	old = umask(0117);   /* 0660: the daemon's user and its group */
	c->lev = evconnlistener_new_bind(base, on_accept, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, (int)sizeof(sun));
	umask(old);
	if (c->lev == NULL) {
		(void)snprintf(err, errsz, "cannot listen on %s: %s", path,
		    strerror(errno));
		free(c->path);
		free(c);
		return NULL;
	}
	return c;
}

void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	evconnlistener_free(c->lev);
	(void)unlink(c->path);
	free(c->path);
	free(c);
}
