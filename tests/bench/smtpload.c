/* SPDX-License-Identifier: ISC */
/*
 * smtpload - an SMTP load generator on libevent, for scripts/bench.
 *
 *   smtpload -p PORT [-h 127.0.0.1] [-n MESSAGES] [-c CONNECTIONS]
 *            [-r RCPTS] [-u USERS] [-s SIZE] [-t RATE] [-i IDLE]
 *
 * C connections each send messages back to back (persistent connections,
 * PIPELINING for MAIL/RCPT/DATA) until N messages have been sent in all.
 * Message i goes to R recipients; with -u U, connection k sends to user
 * (k / (C / U)) ("userK@localhost"), else all to "bench@localhost" (R=1)
 * or "rJ@localhost" (J < R). Prints one line of key=value figures:
 * sent, accepted, failed, elapsed, accepted msgs/s, and the latency from
 * the end of DATA to the 250 (p50, p99, max). With -t RATE each
 * connection writes its message text at RATE octets/s (in tenths of a
 * second), a slow sender; the figures add its peak and its elapsed time.
 *
 * With -i IDLE it instead opens IDLE connections, counts greetings, and
 * holds them until stdin closes (for the idle-connection figure).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

enum cstate { C_GREET, C_EHLO, C_ENVELOPE, C_DATA, C_QUIT, C_IDLE };

struct conn {
	struct bufferevent *bev;
	enum cstate st;
	int idx;
	int pending;             /* replies still expected in this state */
	int bad;                 /* a non-2xx/3xx reply in this batch */
	double t_end;            /* time the final dot was sent */
	size_t off;              /* -t: octets of the text written */
	struct event *tick;      /* -t: the next tenth of a second */
};

static struct event_base *base;
static const char *host = "127.0.0.1";
static int port, nmsg = 1000, nconn = 20, nrcpt = 1, nusers = 0;
static size_t msgsize = 4096, rate;
static int sent, accepted, failed, done_conns, greeted;
static double *lat;
static int nlat;
static char *body;
static size_t bodylen;
static double t_start;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void conn_next(struct conn *c);

/* -t: a tenth of a second's share of the text, until all of it is out. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	size_t n = rate / 10 > 0 ? rate / 10 : 1;

	(void)fd;
	(void)what;
	if (c->bev == NULL)
		return;
	if (n > bodylen - c->off)
		n = bodylen - c->off;
	bufferevent_write(c->bev, body + c->off, n);
	c->off += n;
	if (c->off < bodylen) {
		struct timeval tv = { 0, 100000 };
		evtimer_add(c->tick, &tv);
	} else
		c->t_end = now();
}

static void
conn_finish(struct conn *c)
{
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->tick)
		evtimer_del(c->tick);
	if (++done_conns == nconn)
		event_base_loopexit(base, NULL);
}

static void
send_envelope(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int user = nusers > 0 ? c->idx / (nconn / nusers > 0 ?
	    nconn / nusers : 1) : 0;

	evbuffer_add_printf(out, "MAIL FROM:<load@bench.example> SIZE=%zu\r\n",
	    bodylen);
	for (int r = 0; r < nrcpt; r++) {
		if (nusers > 0)
			evbuffer_add_printf(out, "RCPT TO:<user%d@localhost>\r\n",
			    user);
		else if (nrcpt == 1)
			evbuffer_add_printf(out, "RCPT TO:<bench@localhost>\r\n");
		else
			evbuffer_add_printf(out, "RCPT TO:<r%d@localhost>\r\n",
			    r);
	}
	evbuffer_add_printf(out, "DATA\r\n");
	c->st = C_ENVELOPE;
	c->pending = 2 + nrcpt;
	c->bad = 0;
}

static void
conn_next(struct conn *c)
{
	if (sent >= nmsg) {
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "QUIT\r\n");
		c->st = C_QUIT;
		c->pending = 1;
		return;
	}
	sent++;
	send_envelope(c);
}

static void
on_reply(struct conn *c, int code)
{
	if (c->st == C_IDLE) {
		greeted++;
		return;
	}
	if (code >= 400)
		c->bad = 1;
	if (--c->pending > 0)
		return;
	switch (c->st) {
	case C_GREET:
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "EHLO load.bench.example\r\n");
		c->st = C_EHLO;
		c->pending = 1;
		break;
	case C_EHLO:
		conn_next(c);
		break;
	case C_ENVELOPE:
		if (c->bad) {
			failed++;
			evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "RSET\r\n");
			c->st = C_EHLO; /* the RSET reply moves on */
			c->pending = 1;
			break;
		}
		c->st = C_DATA;
		if (rate > 0) {
			if (c->tick == NULL)
				c->tick = evtimer_new(base, on_tick, c);
			c->off = 0;
			on_tick(-1, 0, c);
			c->pending = 1;
			break;
		}
		bufferevent_write(c->bev, body, bodylen);
		c->t_end = now();
		c->pending = 1;
		break;
	case C_DATA:
		if (c->bad)
			failed++;
		else {
			accepted++;
			lat[nlat++] = now() - c->t_end;
		}
		conn_next(c);
		break;
	case C_QUIT:
		conn_finish(c);
		break;
	case C_IDLE:
		break;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	while (c->bev && (line = evbuffer_readln(in, &len,
	    EVBUFFER_EOL_CRLF)) != NULL) {
		int last = len < 4 || line[3] != '-';
		int code = atoi(line);
		free(line);
		if (last)
			on_reply(c, code);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	fprintf(stderr, "smtpload: connection %d: %s\n", c->idx,
	    (what & BEV_EVENT_EOF) ? "closed by server" : "error");
	if (c->st == C_ENVELOPE || c->st == C_DATA)
		failed++;
	conn_finish(c);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void
make_body(void)
{
	size_t cap = msgsize + 256;
	size_t n = 0;

	body = malloc(cap + 100);
	n += (size_t)snprintf(body, cap, "From: load@bench.example\r\n"
	    "To: bench@localhost\r\nSubject: load test\r\n\r\n");
	while (n + 80 < msgsize) {
		memset(body + n, 'x', 76);
		body[n] = (char)('a' + (n / 78) % 26);
		n += 76;
		memcpy(body + n, "\r\n", 2);
		n += 2;
	}
	memcpy(body + n, ".\r\n", 3);
	bodylen = n + 3;
}

int
main(int argc, char **argv)
{
	int idle = 0, ch;
	struct sockaddr_in sin;

	while ((ch = getopt(argc, argv, "h:p:n:c:r:u:s:t:i:")) != -1) {
		switch (ch) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': nmsg = atoi(optarg); break;
		case 'c': nconn = atoi(optarg); break;
		case 'r': nrcpt = atoi(optarg); break;
		case 'u': nusers = atoi(optarg); break;
		case 's': msgsize = (size_t)atol(optarg); break;
		case 't': rate = (size_t)atol(optarg); break;
		case 'i': idle = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: smtpload -p PORT [-n N] [-c C] "
			    "[-r R] [-u U] [-s SIZE] [-t RATE] [-i IDLE]\n");
			return 2;
		}
	}
	if (port <= 0) {
		fprintf(stderr, "smtpload: -p PORT is required\n");
		return 2;
	}
	if (idle > 0) {
		struct rlimit rl = { (rlim_t)idle + 64, (rlim_t)idle + 64 };
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		nconn = idle;
	}
	make_body();
	lat = calloc((size_t)nmsg + 1, sizeof(double));
	base = event_base_new();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (evutil_inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "smtpload: bad host %s\n", host);
		return 2;
	}
	t_start = now();
	for (int i = 0; i < nconn; i++) {
		struct conn *c = calloc(1, sizeof(*c));
		c->idx = i;
		c->st = idle ? C_IDLE : C_GREET;
		c->pending = 1;
		c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin,
		    sizeof(sin)) != 0) {
			fprintf(stderr, "smtpload: connect %d: %s\n", i,
			    strerror(errno));
			return 1;
		}
	}
	if (idle) {
		/* wait until all are greeted or 30 s, then report */
		double deadline = now() + 30;
		while (greeted < idle && now() < deadline)
			event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK),
			    usleep(1000);
		printf("idle_connections=%d greeted=%d greet_seconds=%.2f\n",
		    idle, greeted, now() - t_start);
		fflush(stdout);
		/* hold them until our stdin closes */
		char tmp[16];
		while (read(STDIN_FILENO, tmp, sizeof(tmp)) > 0)
			;
		return 0;
	}
	event_base_dispatch(base);
	double elapsed = now() - t_start;
	qsort(lat, (size_t)nlat, sizeof(double), cmp);
	double p50 = nlat ? lat[nlat / 2] : 0;
	double p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0;
	double mx = nlat ? lat[nlat - 1] : 0;
	printf("sent=%d accepted=%d failed=%d elapsed=%.3f accepted_per_s=%.1f "
	    "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", sent, accepted, failed,
	    elapsed, accepted / elapsed, p50 * 1e3, p99 * 1e3, mx * 1e3);
	return failed ? 1 : 0;
}
