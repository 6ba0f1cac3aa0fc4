/* SPDX-License-Identifier: ISC */
/*
 * imapload - an IMAP client for scripts/bench imap, the same for Tern and
 * for Dovecot: plain IMAP on loopback, LOGIN, blocking sockets (poll for
 * many connections). One mode per run; prints one line of key=value.
 *
 *   imapload -p PORT -u USER -w PASS [-c CONNS] [-n N] [-f FOLDER]
 *            [-d MAILDIR] MODE
 *
 *   select     SELECT FOLDER three times: the first (the server has not
 *              seen it), a second connection while the first is open,
 *              and a third after both logged out (ms each)
 *   fetch      FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE), twice
 *   envelope   FETCH 1:* ENVELOPE, twice
 *   search     SEARCH TEXT for one message's subject words, twice (ms)
 *   store      STORE 1:N +FLAGS.SILENT (\Flagged), then -FLAGS back
 *   append     C connections APPEND N messages of 4 KiB in all to FOLDER
 *   idle       C connections SELECT FOLDER and IDLE; one file is dropped
 *              into MAILDIR/new; the time until each connection hears
 *              EXISTS (p50, p99, max)
 *   hold       C connections logged in, FOLDER selected, IDLE; prints
 *              "ready" and holds them until stdin closes
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	char *buf;
	size_t len, cap, off;
	unsigned tag;
	double t;                /* idle: when EXISTS came */
};

static const char *host = "127.0.0.1", *user = "bench", *pass = "bench";
static const char *folder = "INBOX", *maildir;
static int port, nconn = 1, nmsg = 10000;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "imapload: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* Reads more into c->buf; -1 at EOF or error. */
static int
fill(struct conn *c)
{
	if (c->off > 0 && c->off == c->len)
		c->off = c->len = 0;
	if (c->cap - c->len < 65536) {
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 1 << 20;
			c->buf = realloc(c->buf, c->cap);
			if (c->buf == NULL)
				die("out of memory");
		}
	}
	ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

/*
 * The next response line (literals included, as one line) into *line;
 * 1 if there is one in the buffer, 0 if more must be read.
 */
static int
next_line(struct conn *c, const char **line, size_t *llen)
{
	size_t p = c->off;

	for (;;) {
		char *nl = memchr(c->buf + p, '\n', c->len - p);
		if (nl == NULL)
			return 0;
		size_t end = (size_t)(nl - c->buf);
		/* "{n}" before CRLF: n octets follow, then the line goes on */
		if (end >= 2 && c->buf[end - 2] == '}') {
			size_t k = end - 2;
			while (k > c->off && c->buf[k - 1] >= '0' &&
			    c->buf[k - 1] <= '9')
				k--;
			if (k > c->off && c->buf[k - 1] == '{') {
				size_t n = strtoul(c->buf + k, NULL, 10);
				if (end + 1 + n > c->len)
					return 0;
				p = end + 1 + n;
				continue;
			}
		}
		*line = c->buf + c->off;
		*llen = end + 1 - c->off;
		c->off = end + 1;
		return 1;
	}
}

static size_t
read_line(struct conn *c, const char **line)
{
	size_t n;

	while (!next_line(c, line, &n))
		if (fill(c) != 0)
			die("connection closed");
	return n;
}

static void
say(struct conn *c, const char *fmt, ...)
{
	char out[8192];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(out, sizeof(out), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(out))
		die("command too long");
	for (int w = 0; w < n;) {
		ssize_t k = write(c->fd, out + w, (size_t)(n - w));
		if (k <= 0)
			die("write: %s", strerror(errno));
		w += (int)k;
	}
}

/* Sends a tagged command and reads to its end; counts untagged lines
 * that contain what (if not NULL). Dies unless OK. */
static long
cmd(struct conn *c, const char *what, const char *fmt, ...)
{
	char text[8192], tag[16];
	va_list ap;
	long hits = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(tag, sizeof(tag), "t%u ", ++c->tag);
	say(c, "%s%s\r\n", tag, text);
	for (;;) {
		const char *l;
		size_t n = read_line(c, &l);
		if (n > strlen(tag) && memcmp(l, tag, strlen(tag)) == 0) {
			if (memcmp(l + strlen(tag), "OK", 2) != 0)
				die("%s: %.*s", text, (int)n, l);
			return hits;
		}
		if (what && memmem(l, n, what, strlen(what)))
			hits++;
	}
}

static void
open_conn(struct conn *c)
{
	struct sockaddr_in sin;
	const char *l;
	int one = 1;

	memset(c, 0, sizeof(*c));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("bad host %s", host);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		die("connect: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	read_line(c, &l);
	if (strncmp(l, "* OK", 4) != 0)
		die("greeting: %.40s", l);
	cmd(c, NULL, "LOGIN \"%s\" \"%s\"", user, pass);
}

static void
close_conn(struct conn *c)
{
	cmd(c, NULL, "LOGOUT");
	close(c->fd);
	free(c->buf);
}

static double
timed(struct conn *c, long *hits, const char *what, const char *text)
{
	double t0 = now();
	long h = cmd(c, what, "%s", text);

	if (hits)
		*hits = h;
	return now() - t0;
}

static void
mode_select(void)
{
	struct conn a, b, d;
	char sel[512];

	snprintf(sel, sizeof(sel), "SELECT \"%s\"", folder);
	open_conn(&a);
	double t1 = timed(&a, NULL, NULL, sel);
	open_conn(&b);
	double t2 = timed(&b, NULL, NULL, sel);
	close_conn(&a);
	close_conn(&b);
	open_conn(&d);
	double t3 = timed(&d, NULL, NULL, sel);
	close_conn(&d);
	printf("first_select_ms=%.1f second_select_ms=%.2f "
	    "reopen_select_ms=%.2f\n", t1 * 1e3, t2 * 1e3, t3 * 1e3);
}

static void
mode_fetch(const char *items, const char *name)
{
	struct conn c;
	char sel[512], f[256];
	long n1, n2;

	open_conn(&c);
	snprintf(sel, sizeof(sel), "EXAMINE \"%s\"", folder);
	cmd(&c, NULL, "%s", sel);
	snprintf(f, sizeof(f), "FETCH 1:* %s", items);
	double t1 = timed(&c, &n1, " FETCH ", f);
	double t2 = timed(&c, &n2, " FETCH ", f);
	close_conn(&c);
	printf("%s_msgs=%ld %s_first_s=%.3f %s_first_msgs_s=%.0f "
	    "%s_second_s=%.3f %s_second_msgs_s=%.0f\n", name, n1, name, t1,
	    name, n1 / t1, name, t2, name, n2 / t2);
}

static void
mode_search(void)
{
	struct conn c;
	char f[256];
	long h1, h2;

	open_conn(&c);
	snprintf(f, sizeof(f), "EXAMINE \"%s\"", folder);
	cmd(&c, NULL, "%s", f);
	/* one message's words: a subject the bench tree gives one message */
	const char *q = "SEARCH TEXT \"number 4242 about\"";
	double t1 = timed(&c, &h1, "* SEARCH 4243", q);
	double t2 = timed(&c, &h2, "* SEARCH 4243", q);
	close_conn(&c);
	printf("search_first_ms=%.1f search_second_ms=%.1f search_hits=%ld\n",
	    t1 * 1e3, t2 * 1e3, h1 + h2);
}

static void
mode_store(void)
{
	struct conn c;
	char f[256];

	open_conn(&c);
	snprintf(f, sizeof(f), "SELECT \"%s\"", folder);
	cmd(&c, NULL, "%s", f);
	snprintf(f, sizeof(f), "STORE 1:%d +FLAGS.SILENT (\\Flagged)", nmsg);
	double t1 = timed(&c, NULL, NULL, f);
	snprintf(f, sizeof(f), "STORE 1:%d -FLAGS.SILENT (\\Flagged)", nmsg);
	double t2 = timed(&c, NULL, NULL, f);
	close_conn(&c);
	printf("store_msgs=%d set_s=%.3f set_msgs_s=%.0f clear_s=%.3f "
	    "clear_msgs_s=%.0f\n", nmsg, t1, nmsg / t1, t2, nmsg / t2);
}

static char *
message(size_t *len, int i)
{
	static char m[4200];
	int n = snprintf(m, sizeof(m), "From: Bench <bench@localhost>\r\n"
	    "To: bench@localhost\r\nSubject: appended %d\r\n"
	    "Message-ID: <append.%d.%d@bench.test>\r\n\r\n", i, (int)getpid(),
	    i);
	while (n < 4096 - 2)
		n += snprintf(m + n, sizeof(m) - (size_t)n, "%.*s\r\n",
		    (int)(4096 - 4 - n < 70 ? 4096 - 4 - n : 70),
		    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"
		    "klmnopqrstuvwxyz");
	*len = (size_t)n;
	return m;
}

static void
mode_append(void)
{
	struct conn *c = calloc((size_t)nconn, sizeof(*c));
	int *left = calloc((size_t)nconn, sizeof(int));
	int busy = 0;

	for (int i = 0; i < nconn; i++) {
		open_conn(&c[i]);
		left[i] = nmsg / nconn + (i < nmsg % nconn);
	}
	double t0 = now();
	/* every connection has one APPEND in flight (LITERAL+) */
	struct pollfd *pf = calloc((size_t)nconn, sizeof(*pf));
	for (int i = 0; i < nconn; i++) {
		pf[i].fd = c[i].fd;
		pf[i].events = POLLIN;
		if (left[i]) {
			size_t len;
			char *m = message(&len, i);
			say(&c[i], "a APPEND \"%s\" {%zu+}\r\n", folder, len);
			if (write(c[i].fd, m, len) != (ssize_t)len ||
			    write(c[i].fd, "\r\n", 2) != 2)
				die("write");
			busy++;
		}
	}
	int done = 0;
	while (busy > 0) {
		if (poll(pf, (nfds_t)nconn, 30000) <= 0)
			die("append: no answer in 30 s");
		for (int i = 0; i < nconn; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (fill(&c[i]) != 0)
				die("append: connection closed");
			const char *l;
			size_t n;
			while (next_line(&c[i], &l, &n)) {
				if (strncmp(l, "a ", 2) != 0)
					continue;
				if (strncmp(l, "a OK", 4) != 0)
					die("APPEND: %.*s", (int)n, l);
				done++;
				if (--left[i] == 0) {
					busy--;
					continue;
				}
				size_t len;
				char *m = message(&len, done);
				say(&c[i], "a APPEND \"%s\" {%zu+}\r\n", folder,
				    len);
				if (write(c[i].fd, m, len) != (ssize_t)len ||
				    write(c[i].fd, "\r\n", 2) != 2)
					die("write");
			}
		}
	}
	double t = now() - t0;
	for (int i = 0; i < nconn; i++)
		close_conn(&c[i]);
	printf("append_msgs=%d connections=%d s=%.3f msgs_s=%.0f\n", done,
	    nconn, t, done / t);
	free(pf);
	free(left);
	free(c);
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* C connections in IDLE on FOLDER; returns them */
static struct conn *
idle_conns(void)
{
	struct conn *c = calloc((size_t)nconn, sizeof(*c));

	for (int i = 0; i < nconn; i++) {
		const char *l;
		open_conn(&c[i]);
		cmd(&c[i], NULL, "SELECT \"%s\"", folder);
		say(&c[i], "i IDLE\r\n");
		read_line(&c[i], &l);
		if (l[0] != '+')
			die("IDLE: %.40s", l);
	}
	return c;
}

static void
mode_idle(void)
{
	struct conn *c = idle_conns();
	struct pollfd *pf = calloc((size_t)nconn, sizeof(*pf));
	char tmp[4096], dst[4096];
	int heard = 0;

	if (maildir == NULL)
		die("idle needs -d MAILDIR");
	usleep(200000);   /* let every server settle its watches */
	snprintf(tmp, sizeof(tmp), "%s/tmp/%ld.M1P%d.imapload", maildir,
	    (long)time(NULL), (int)getpid());
	snprintf(dst, sizeof(dst), "%s/new/%ld.M1P%d.imapload", maildir,
	    (long)time(NULL), (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "From: x@localhost\nSubject: dropped\n\nbody\n");
	fclose(f);
	double t0 = now();
	if (rename(tmp, dst) != 0)
		die("rename: %s", strerror(errno));
	for (int i = 0; i < nconn; i++) {
		pf[i].fd = c[i].fd;
		pf[i].events = POLLIN;
	}
	while (heard < nconn && now() - t0 < 30) {
		if (poll(pf, (nfds_t)nconn, 1000) < 0)
			die("poll");
		for (int i = 0; i < nconn; i++) {
			if (c[i].t > 0 || !(pf[i].revents & POLLIN))
				continue;
			if (fill(&c[i]) != 0)
				die("idle: connection closed");
			const char *l;
			size_t n;
			while (next_line(&c[i], &l, &n))
				if (memmem(l, n, " EXISTS", 7) && c[i].t == 0) {
					c[i].t = now() - t0;
					heard++;
					pf[i].events = 0;
				}
		}
	}
	double *lat = calloc((size_t)heard + 1, sizeof(double));
	int k = 0;
	for (int i = 0; i < nconn && k < heard; i++)
		if (c[i].t > 0)
			lat[k++] = c[i].t;
	qsort(lat, (size_t)k, sizeof(double), cmp_d);
	printf("idle_clients=%d heard=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
	    nconn, heard, k ? lat[k / 2] * 1e3 : -1.0,
	    k ? lat[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1] * 1e3 : -1.0,
	    k ? lat[k - 1] * 1e3 : -1.0);
	/* the connections are simply dropped */
	fflush(stdout);
	_exit(0);
}

static void
mode_hold(void)
{
	struct conn *c = idle_conns();
	char b[64];

	printf("ready connections=%d\n", nconn);
	fflush(stdout);
	while (read(0, b, sizeof(b)) > 0)
		;
	(void)c;
	_exit(0);
}

int
main(int argc, char **argv)
{
	int ch;
	struct rlimit rl;

	while ((ch = getopt(argc, argv, "h:p:u:w:c:n:f:d:")) != -1) {
		switch (ch) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'u': user = optarg; break;
		case 'w': pass = optarg; break;
		case 'c': nconn = atoi(optarg); break;
		case 'n': nmsg = atoi(optarg); break;
		case 'f': folder = optarg; break;
		case 'd': maildir = optarg; break;
		default:
			fprintf(stderr, "usage: imapload -p PORT [-u USER] [-w PASS] "
			    "[-c CONNS] [-n N] [-f FOLDER] [-d MAILDIR] MODE\n");
			return 2;
		}
	}
	if (optind >= argc || port <= 0 || nconn <= 0) {
		fprintf(stderr, "imapload: a port and a mode, please\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	const char *m = argv[optind];
	if (strcmp(m, "select") == 0)
		mode_select();
	else if (strcmp(m, "fetch") == 0)
		mode_fetch("(UID FLAGS RFC822.SIZE INTERNALDATE)", "fetch");
	else if (strcmp(m, "envelope") == 0)
		mode_fetch("ENVELOPE", "envelope");
	else if (strcmp(m, "search") == 0)
		mode_search();
	else if (strcmp(m, "store") == 0)
		mode_store();
	else if (strcmp(m, "append") == 0)
		mode_append();
	else if (strcmp(m, "idle") == 0)
		mode_idle();
	else if (strcmp(m, "hold") == 0)
		mode_hold();
	else {
		fprintf(stderr, "imapload: unknown mode %s\n", m);
		return 2;
	}
	return 0;
}
