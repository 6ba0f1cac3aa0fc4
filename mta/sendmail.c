/* SPDX-License-Identifier: ISC */
/*
 * sendmail.c - layer 4: tern-sendmail, the sendmail(8)-compatible way for
 * local programs to send mail.
 *
 *   tern-sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C config] [rcpt...]
 *
 * The message (stdin) and its envelope are written durably into the
 * spool's pickup directory (tmp- file, fsync, rename, fsync of the
 * directory; Postfix's maildrop idea), then ternd is told over its
 * control socket to take it. If ternd is not running, the message waits
 * there and is sent when it starts. Exit 0 only once the message is on
 * disk; sysexits(3) codes otherwise. -t takes the recipients from To:,
 * Cc: and Bcc: and removes Bcc:; From:, Date: and Message-ID: are added
 * when missing. Other sendmail options (-oem, -odi, -bm, -B...) are
 * accepted and ignored, as programs pass them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "lua/config.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/message.h"
#include "smtp/smtp_parse.h"

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73
#define EX_IOERR 74
#define EX_TEMPFAIL 75
#define EX_CONFIG 78

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: tern-sendmail [-t] [-i] [-f sender] [-F name] [-C config] "
	    "[-N dsn] [-R ret] [-V envid] [recipient...]\n"
	    "\n"
	    "Queues the message on standard input for delivery by ternd.\n"
	    "  -t         recipients from To:, Cc: and Bcc: (Bcc: is removed)\n"
	    "  -i, -oi    a line with a single dot does not end the message\n"
	    "  -f ADDR    the envelope sender (default: you@this host)\n"
	    "  -F NAME    your full name, for a From: field we add\n"
	    "  -C FILE    ternd's configuration (else $TERN_HOME, else ./var)\n"
	    "  -N DSN     delivery reports wanted: never, or any of success,\n"
	    "             failure, delay (default failure,delay)\n"
	    "  -R RET     a failure report returns the message: full or hdrs\n"
	    "  -V ENVID   an identifier the reports quote\n"
	    "Exit status: 0 queued; 64 usage; 65 bad message; 73/74/75 could\n"
	    "not write it (nothing was queued); 78 bad configuration.\n");
}

/* Adds each "<addr>" of an address-list header value to rcpts. */
static int
add_header_addrs(const char *v, size_t n, char ***rcpts, size_t *nrcpts)
{
	size_t i = 0;

	while (i < n) {
		/* one address: up to a comma outside quotes and <> */
		size_t start = i;
		bool q = false, angle = false;
		for (; i < n; i++) {
			if (v[i] == '"')
				q = !q;
			else if (v[i] == '<' && !q)
				angle = true;
			else if (v[i] == '>' && !q)
				angle = false;
			else if (v[i] == ',' && !q && !angle)
				break;
		}
		char item[600];
		size_t len = i - start < sizeof(item) - 1 ? i - start :
		    sizeof(item) - 1;
		memcpy(item, v + start, len);
		item[len] = '\0';
		i++;
		char *lt = strrchr(item, '<'), *addr = item;
		if (lt) {
			char *gt = strchr(lt, '>');
			if (gt)
				*gt = '\0';
			addr = lt + 1;
		}
		while (*addr == ' ' || *addr == '\t' || *addr == '\n')
			addr++;
		size_t al = strlen(addr);
		while (al > 0 && (addr[al - 1] == ' ' || addr[al - 1] == '\t' ||
		    addr[al - 1] == '\n'))
			addr[--al] = '\0';
		if (al == 0)
			continue;
		struct smtp_addr a;
		if (smtp_parse_mailbox(addr, al, &a) != 0) {
			fprintf(stderr, "tern-sendmail: bad address '%s'\n",
			    addr);
			return -1;
		}
		*rcpts = xreallocarray(*rcpts, *nrcpts + 1, sizeof(char *));
		(*rcpts)[(*nrcpts)++] = xstrdup(addr);
	}
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Durably into spool/pickup; returns a sysexits code. pickup/ is 01733:
 * anyone may drop a file, nobody but ternd may list it. The file is
 * readable (0644) so that ternd, which may run as its own user, can take
 * it; its name carries 64 random bits, so other users cannot guess it.
 * The rename is made durable with an fsync of the directory where we may
 * open it, else with syncfs() of its file system.
 */
static int
drop(const char *spool, const struct buf *file)
{
	char dir[4096], tmp[4200], final[4200];
	struct timeval tv;
	uint64_t rnd = 0;
	int fd, dfd;

	gettimeofday(&tv, NULL);
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd ^= (uint64_t)tv.tv_usec << 20 ^ (uint64_t)getpid();
	if (str_fmt(dir, sizeof(dir), "%s/pickup", spool) != 0)
		return EX_CANTCREAT;
	(void)str_fmt(tmp, sizeof(tmp), "%s/tmp-%lld.%06ld.%ld.%016llx", dir,
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    (unsigned long long)rnd);
	(void)str_fmt(final, sizeof(final), "%s/%lld.%06ld.%ld.%016llx", dir,
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    (unsigned long long)rnd);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "tern-sendmail: cannot create %s: %s (is the "
		    "spool there? try -C FILE)\n", tmp, strerror(errno));
		return errno == ENOSPC ? EX_TEMPFAIL : EX_CANTCREAT;
	}
	(void)fchmod(fd, 0644);   /* whatever the umask */
	if (write_all(fd, file->data, file->len) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "tern-sendmail: cannot write %s: %s\n", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return errno == ENOSPC ? EX_TEMPFAIL : EX_IOERR;
	}
	if (rename(tmp, final) != 0) {
		fprintf(stderr, "tern-sendmail: rename: %s\n", strerror(errno));
		close(fd);
		unlink(tmp);
		return EX_IOERR;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if ((dfd >= 0 && fsync(dfd) != 0) || (dfd < 0 && syncfs(fd) != 0)) {
		fprintf(stderr, "tern-sendmail: sync %s: %s\n", dir,
		    strerror(errno));
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return EX_IOERR;
	}
	if (dfd >= 0)
		close(dfd);
	if (close(fd) != 0) {
		fprintf(stderr, "tern-sendmail: close: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* Asks ternd to take the message now; quiet if it is not running. */
static void
poke(const char *run_dir)
{
	struct sockaddr_un sun;
	char reply[64];
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_fmt(sun.sun_path, sizeof(sun.sun_path), "%s/ternd.sock",
	    run_dir) != 0)
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
	    write(fd, "pickup\n", 7) == 7)
		(void)!read(fd, reply, sizeof(reply));
	close(fd);
}

int
main(int argc, char **argv)
{
	const char *sender = NULL, *fullname = NULL, *cfg_path = NULL;
	bool from_headers = false, dot_ends = true;
	char **rcpts = NULL, err[1024];
	size_t nrcpts = 0;
	struct buf msg, file;
	int ch;

	/* sendmail's options are a mess of single-dash words: -oi, -oem ... */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("tern-sendmail (Tern) %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "-oi") == 0)
			argv[i] = "-i";
		else if (strncmp(argv[i], "-o", 2) == 0 ||
		    strncmp(argv[i], "-b", 2) == 0 ||
		    strncmp(argv[i], "-B", 2) == 0 ||
		    strncmp(argv[i], "-O", 2) == 0)
			argv[i] = "-v";   /* accepted and ignored */
	}
	unsigned notify = 0;
	enum dsn_ret ret = DSN_RET_UNSET;
	char envid[3 * DSN_ENVID_MAX + 1] = "";
	while ((ch = getopt(argc, argv, "tif:r:F:C:N:R:V:vh")) != -1) {
		switch (ch) {
		case 't': from_headers = true; break;
		case 'i': dot_ends = false; break;
		case 'f': case 'r': sender = optarg; break;
		case 'F': fullname = optarg; break;
		case 'C': cfg_path = optarg; break;
		case 'N':   /* sendmail's DSN options (RFC 3461) */
			if (dsn_notify_parse(optarg, &notify) != 0) {
				fprintf(stderr, "tern-sendmail: -N: never, or "
				    "success,failure,delay\n");
				return EX_USAGE;
			}
			break;
		case 'R':
			if (dsn_ret_parse(optarg, &ret) != 0) {
				fprintf(stderr, "tern-sendmail: -R: full or "
				    "hdrs\n");
				return EX_USAGE;
			}
			break;
		case 'V': {
			struct buf x;
			buf_init(&x);
			xtext_encode(optarg, strlen(optarg), &x);
			buf_append_char(&x, '\0');
			bool ok = dsn_envid_valid(x.data) &&
			    str_copy(envid, sizeof(envid), x.data) == 0;
			buf_clear(&x);
			if (!ok) {
				fprintf(stderr, "tern-sendmail: -V: at most %d "
				    "printable characters\n", DSN_ENVID_MAX);
				return EX_USAGE;
			}
			break;
		}
		case 'v': break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	struct config *cfg = config_load(cfg_path, err, sizeof(err));
	struct buf fixed;
	struct envelope env;
	int rc = 0;

	buf_init(&msg);
	buf_init(&fixed);
	buf_init(&file);
	envelope_init(&env);
	if (cfg == NULL) {
		fprintf(stderr, "tern-sendmail: %s\n", err);
		return EX_CONFIG;
	}
	for (int i = optind; i < argc; i++) {
		if (add_header_addrs(argv[i], strlen(argv[i]), &rcpts,
		    &nrcpts) != 0) {
			rc = EX_USAGE;
			goto out;
		}
	}
	/* the message: LF line ends; "." alone ends it unless -i */
	char line[65536];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (dot_ends && n == 1 && line[0] == '.')
			break;
		if (memchr(line, '\0', n) != NULL) {
			fprintf(stderr, "tern-sendmail: the message has NUL "
			    "octets\n");
			rc = EX_DATAERR;
			goto out;
		}
		buf_append(&msg, line, n);
		buf_append_char(&msg, '\n');
	}
	if (ferror(stdin)) {
		fprintf(stderr, "tern-sendmail: read error\n");
		rc = EX_IOERR;
		goto out;
	}
	/* -t: recipients from the header; Bcc: removed */
	size_t hlen = message_header_len(msg.data ? msg.data : "", msg.len);
	if (from_headers) {
		struct message_field f;
		size_t pos = 0;
		while (message_next_field(msg.data, hlen, &pos, &f)) {
			if ((f.name_len == 2 && ascii_strncaseeq(f.name, "To", 2)) ||
			    (f.name_len == 2 && ascii_strncaseeq(f.name, "Cc", 2)) ||
			    (f.name_len == 3 && ascii_strncaseeq(f.name, "Bcc", 3)))
				if (add_header_addrs(f.value, f.value_len, &rcpts,
				    &nrcpts) != 0) {
					rc = EX_DATAERR;
					goto out;
				}
		}
	}
	if (nrcpts == 0) {
		fprintf(stderr, "tern-sendmail: no recipients (give them as "
		    "arguments, or -t)\n");
		rc = EX_USAGE;
		goto out;
	}
	/* the sender: -f, else the user at this host */
	char me[600];
	if (sender == NULL) {
		struct passwd *pw = getpwuid(getuid());
		(void)str_fmt(me, sizeof(me), "%s@%s", pw ? pw->pw_name :
		    "nobody", cfg->hostname);
		sender = me;
	}
	struct smtp_addr sa;
	if (*sender && smtp_parse_mailbox(sender, strlen(sender), &sa) != 0) {
		fprintf(stderr, "tern-sendmail: bad sender '%s'\n", sender);
		rc = EX_USAGE;
		goto out;
	}
	/* From:, Date:, Message-ID: when missing; Bcc: never leaves */
	struct message_field f;
	if (!message_find_field(msg.data ? msg.data : "", hlen, "From", &f)) {
		if (fullname)
			buf_printf(&fixed, "From: \"%s\" <%s>\n", fullname, sender);
		else
			buf_printf(&fixed, "From: <%s>\n", sender);
	}
	buf_append(&fixed, msg.data ? msg.data : "", msg.len);
	if (msg.len == 0 || hlen == msg.len)
		buf_append_char(&fixed, '\n');
	char date[64], msgid[300];
	time_t now = time(NULL);
	struct tm tm;
	struct timeval tv;
	localtime_r(&now, &tm);
	message_format_date(date, sizeof(date), &tm, tm.tm_gmtoff);
	gettimeofday(&tv, NULL);
	(void)str_fmt(msgid, sizeof(msgid), "<%lld.%06ld.%ld@%s>",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    cfg->hostname);
	const char *why;
	if (message_submission_fixup(&fixed, 0, date, msgid, &why) != 0 &&
	    strstr(why, "From") != NULL) {
		fprintf(stderr, "tern-sendmail: %s\n", why);
		rc = EX_DATAERR;
		goto out;
	}
	/* envelope + message, the queue's own format */
	memcpy(env.id, "0000000000000000", 17);
	env.created = (int64_t)now;
	env.client = xstrdup("127.0.0.1");
	env.helo = xstrdup(cfg->hostname);
	env.protocol = xstrdup("local");
	env.sender = xasprintf("<%s>", sender);
	env.body = xstrdup(message_has_8bit(fixed.data, fixed.len) ?
	    "8BITMIME" : "7BIT");
	env.size = fixed.len;
	for (size_t i = 0; i < nrcpts; i++) {
		char *p = xasprintf("<%s>", rcpts[i]);
		size_t ri = envelope_add_rcpt(&env, p);
		env.rcpts[ri].notify = notify;
		free(p);
	}
	env.ret = ret;
	if (envid[0])
		env.envid = xstrdup(envid);
	env.smtputf8 = envelope_wants_smtputf8(&env, fixed.data, fixed.len);
	envelope_serialize(&env, &file);
	buf_append(&file, fixed.data, fixed.len);
	rc = drop(cfg->spool_dir, &file);
	if (rc == 0)
		poke(cfg->run_dir);
out:
	envelope_clear(&env);
	buf_clear(&file);
	buf_clear(&fixed);
	buf_clear(&msg);
	for (size_t i = 0; i < nrcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	config_free(cfg);
	return rc;
}
