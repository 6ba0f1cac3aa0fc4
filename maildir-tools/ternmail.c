/* SPDX-License-Identifier: ISC */
/*
 * ternmail.c - the command-line user agent over Maildir: the verbs, their
 * options and their output. The Maildir work is store.c's, reading MIME
 * mimeview.c's, writing it compose.c's, sending submit.c's.
 *
 * Exit status follows sysexits(3): 0 done, 64 usage, 65 bad input,
 * 66 no such message or file, 73 cannot create, 74 I/O error, 75 try
 * again later (delivery or sending failed for now), 69 refused for good,
 * 78 bad configuration; `check` exits 1 if problems remain.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compose.h"
#include "mimeview.h"
#include "store.h"
#include "submit.h"
#include "text.h"
#include "tmconfig.h"

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOINPUT 66
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73
#define EX_IOERR 74
#define EX_TEMPFAIL 75
#define EX_CONFIG 78

#define DELIVER_MAX (256u << 20)

static struct tmconfig cfg;
static const char *opt_maildir;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: ternmail [-m MAILDIR] VERB [options]\n"
	    "\n"
	    "Reading:\n"
	    "  list [-f FOLDER] [--new] [--json]   one line per message\n"
	    "  show N|PATH [-f FOLDER] [--raw] [--headers]\n"
	    "  save-attachment N INDEX [FILE|-] [-f FOLDER]\n"
	    "  folders                              folders with counts\n"
	    "Writing (each also takes --print, --draft, --sendmail,\n"
	    "--body FILE|-, --edit, --attach FILE):\n"
	    "  compose --to ADDRS [--cc ADDRS] [--bcc ADDRS] --subject TEXT\n"
	    "  reply N [--all] [-f FOLDER]\n"
	    "  forward N --to ADDRS [--inline] [-f FOLDER]\n"
	    "Filing:\n"
	    "  move N FOLDER [-f FOLDER]\n"
	    "  flag N +F -S ... [-f FOLDER]       flags: S R F T D P\n"
	    "  delete N [--expunge] [-f FOLDER]   to Trash, or for good\n"
	    "Tools:\n"
	    "  deliver [-f FOLDER] [MAILDIR]        stdin into a Maildir\n"
	    "  check [-n] [MAILDIR]                 check and repair\n"
	    "\n"
	    "The Maildir is -m, else $MAILDIR, else `maildir` in\n"
	    "~/.config/ternmail/config, else ~/Maildir. Folders are Maildir++\n"
	    "(.Name); INBOX is the Maildir itself. See ternmail(1).\n");
}

static void
die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3),
    noreturn));

static void
die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("ternmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static char *
maildir_root(void)
{
	const char *env = getenv("MAILDIR");
	const char *home = getenv("HOME");

	if (opt_maildir != NULL)
		return xstrdup(opt_maildir);
	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	if (tmconfig_get(&cfg, TM_MAILDIR, NULL) != NULL) {
		const char *m = tmconfig_get(&cfg, TM_MAILDIR, NULL);
		if (m[0] == '~' && m[1] == '/' && home != NULL)
			return xasprintf("%s%s", home, m + 1);
		return xstrdup(m);
	}
	if (home == NULL || home[0] == '\0') {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	return xasprintf("%s/Maildir", home);
}

static char *
folder_dir(const char *root, const char *folder)
{
	char *d = store_folder_dir(root, folder);

	if (d == NULL)
		die(EX_USAGE, "not a valid folder name: %s", folder);
	return d;
}

static int
slurp_fd(int fd, struct buf *b, size_t max)
{
	char chunk[65536];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (b->len + (size_t)n > max) {
			errno = EFBIG;
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
	return 0;
}

static void
slurp_path(const char *path, struct buf *b)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || slurp_fd(fd, b, DELIVER_MAX) != 0)
		die(EX_NOINPUT, "%s: %s", path, strerror(errno));
	if (fd != 0)
		close(fd);
}

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A message by number in dir, or by path. */
static void
resolve(const char *dir, const char *arg, struct msg_entry *e)
{
	if (all_digits(arg)) {
		if (store_resolve(dir, strtoul(arg, NULL, 10), e) != 0)
			die(EX_NOINPUT, "no message %s in %s (run `ternmail list` "
			    "to see the numbers)", arg, dir);
		return;
	}
	if (store_entry_from_path(arg, e) != 0) {
		/* a file outside any Maildir: read-only use */
		struct stat st;
		if (stat(arg, &st) != 0 || !S_ISREG(st.st_mode))
			die(EX_NOINPUT, "%s: no such message", arg);
		memset(e, 0, sizeof(*e));
		e->path = xstrdup(arg);
	}
}

static GMimeMessage *
load_message(const struct msg_entry *e, struct buf *raw)
{
	slurp_path(e->path, raw);
	return mv_parse(raw->data ? raw->data : "", raw->len);
}

/* A message opened by number or path, parsed, with what it came from. */
struct opened {
	char *root, *dir;
	struct msg_entry e;
	struct buf raw;
	GMimeMessage *m;
};

static void
open_message(const char *folder, const char *arg, struct opened *o)
{
	o->root = maildir_root();
	o->dir = folder_dir(o->root, folder);
	resolve(o->dir, arg, &o->e);
	buf_init(&o->raw);
	o->m = load_message(&o->e, &o->raw);
}

static void
close_message(struct opened *o)
{
	g_object_unref(o->m);
	buf_clear(&o->raw);
	store_entry_free(&o->e);
	free(o->dir);
	free(o->root);
}

static size_t
term_width(void)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");

	if (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (cols != NULL && all_digits(cols))
		return strtoul(cols, NULL, 10);
	return 0;
}

static void
show_flags(const struct msg_entry *e, char *out)
{
	size_t k = 0;

	if (strchr(e->flags, 'S') == NULL)
		out[k++] = 'N';
	for (const char *p = e->flags; *p && k < 8; p++)
		if (strchr("SRFTPD", *p))
			out[k++] = *p;
	out[k] = '\0';
}

/* Reads the header block of a file only: enough for list. */
static GMimeMessage *
load_head(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct buf b;
	char chunk[8192];
	ssize_t n;
	GMimeMessage *m;

	buf_init(&b);
	while (fd >= 0 && b.len < (256u << 10) &&
	    (n = read(fd, chunk, sizeof(chunk))) > 0) {
		buf_append(&b, chunk, (size_t)n);
		if (memmem(b.data, b.len, "\n\n", 2) != NULL ||
		    memmem(b.data, b.len, "\r\n\r\n", 4) != NULL)
			break;
	}
	if (fd >= 0)
		close(fd);
	{
		char *end = b.data ? memmem(b.data, b.len, "\n\n", 2) : NULL;
		if (end != NULL)
			b.len = (size_t)(end - b.data) + 2;
	}
	m = mv_parse(b.data ? b.data : "", b.len);
	buf_clear(&b);
	return m;
}

static int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "folder", required_argument, NULL, 'f' },
		{ "new", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *folder = NULL;
	bool only_new = false, json = false;
	char *root, *dir;
	struct msg_list l;
	struct buf out;
	size_t width = term_width(), numw = 1;
	int c;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1)
		switch (c) {
		case 'f': folder = optarg; break;
		case 'n': only_new = true; break;
		case 'j': json = true; break;
		default: return EX_USAGE;
		}
	root = maildir_root();
	dir = folder_dir(root, folder);
	if (!store_is_maildir(dir))
		die(EX_NOINPUT, "%s is not a Maildir", dir);
	if (store_scan(dir, &l) != 0)
		die(EX_IOERR, "%s: %s", dir, strerror(errno));
	store_seq_save(dir, &l);
	for (size_t n = l.n; n >= 10; n /= 10)
		numw++;
	buf_init(&out);
	if (json)
		buf_append_str(&out, "[");
	for (size_t i = 0; i < l.n; i++) {
		struct msg_entry *e = &l.v[i];
		GMimeMessage *m;
		struct mv_head h;
		char flags[12];

		show_flags(e, flags);
		if (only_new && flags[0] != 'N')
			continue;
		m = load_head(e->path);
		mv_head(m, &h);
		if (h.date[0] == '\0') {
			/* no usable Date: the arrival time */
			time_t t = (time_t)e->arrived;
			struct tm tm;
			char d[32];
			localtime_r(&t, &tm);
			strftime(d, sizeof(d), "%Y-%m-%d %H:%M", &tm);
			free(h.date);
			h.date = xstrdup(d);
		}
		if (json) {
			buf_printf(&out, "%s\n {\"number\": %zu, \"flags\": \"%s\", "
			    "\"date\": \"", out.len > 1 ? "," : "", i + 1, flags);
			json_escape(&out, h.date);
			buf_printf(&out, "\", \"time\": %lld, \"from\": \"",
			    (long long)(h.time ? h.time : e->arrived));
			json_escape(&out, h.from);
			buf_append_str(&out, "\", \"from_address\": \"");
			json_escape(&out, h.from_addr);
			buf_append_str(&out, "\", \"subject\": \"");
			json_escape(&out, h.subject);
			buf_append_str(&out, "\", \"message_id\": \"");
			json_escape(&out, h.message_id);
			buf_append_str(&out, "\", \"path\": \"");
			{
				struct buf p;
				buf_init(&p);
				text_sanitize(&p, e->path, strlen(e->path), false);
				buf_append_char(&p, '\0');
				json_escape(&out, p.data);
				buf_clear(&p);
			}
			buf_append_str(&out, "\"}");
		} else {
			size_t fixed = numw + 1 + 4 + 1 + 16 + 1;
			size_t fromw = 20, subw = 0;
			if (width > 0) {
				if (width < fixed + fromw + 1 + 10)
					fromw = width > fixed + 12 ?
					    (width - fixed - 1) / 3 : 8;
				subw = width > fixed + fromw + 1 ?
				    width - fixed - fromw - 1 : 1;
			}
			buf_printf(&out, "%*zu %-4s %-16s ", (int)numw, i + 1,
			    flags, h.date);
			text_fit(&out, h.from_short, fromw, true);
			buf_append_char(&out, ' ');
			text_fit(&out, h.subject[0] ? h.subject :
			    "(no subject)", subw, false);
			buf_append_char(&out, '\n');
		}
		mv_head_free(&h);
		g_object_unref(m);
	}
	if (json)
		buf_append_str(&out, l.n ? "\n]\n" : "]\n");
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_clear(&out);
	store_list_free(&l);
	free(dir);
	free(root);
	return 0;
}

static void
human_size(size_t n, char *out, size_t outsz)
{
	if (n < 1024)
		str_fmt(out, outsz, "%zu B", n);
	else if (n < 1024 * 1024)
		str_fmt(out, outsz, "%.1f KB", (double)n / 1024);
	else
		str_fmt(out, outsz, "%.1f MB", (double)n / (1024 * 1024));
}

static void
print_header(struct buf *out, const char *name, const char *v)
{
	if (v != NULL && v[0] != '\0')
		buf_printf(out, "%s: %s\n", name, v);
}

static int
cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "folder", required_argument, NULL, 'f' },
		{ "raw", no_argument, NULL, 'r' },
		{ "headers", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *folder = NULL;
	bool raw = false, headers = false;
	struct opened o;
	struct buf out;
	int c;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1)
		switch (c) {
		case 'f': folder = optarg; break;
		case 'r': raw = true; break;
		case 'H': headers = true; break;
		default: return EX_USAGE;
		}
	if (optind + 1 != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	open_message(folder, argv[optind], &o);
	buf_init(&out);
	if (raw) {
		fwrite(o.raw.data ? o.raw.data : "", 1, o.raw.len, stdout);
	} else {
		struct mv_head h;
		struct mv_view v;
		mv_head(o.m, &h);
		if (headers) {
			GMimeHeaderList *hl = g_mime_object_get_header_list(
			    GMIME_OBJECT(o.m));
			for (int i = 0; i < g_mime_header_list_get_count(hl);
			    i++) {
				GMimeHeader *hd = g_mime_header_list_get_header_at(
				    hl, i);
				const char *val = g_mime_header_get_value(hd);
				char *dec = g_mime_utils_header_decode_text(NULL,
				    val ? val : "");
				struct buf s;
				buf_init(&s);
				text_sanitize(&s, g_mime_header_get_name(hd),
				    strlen(g_mime_header_get_name(hd)), false);
				buf_append_str(&s, ": ");
				text_sanitize(&s, dec, strlen(dec), false);
				buf_append_char(&s, '\0');
				buf_printf(&out, "%s\n", s.data);
				buf_clear(&s);
				g_free(dec);
			}
		} else {
			print_header(&out, "From", h.from);
			print_header(&out, "To", h.to);
			print_header(&out, "Cc", h.cc);
			print_header(&out, "Reply-To", h.reply_to);
			print_header(&out, "Date", h.date_full);
			print_header(&out, "Subject", h.subject);
		}
		buf_append_char(&out, '\n');
		mv_render(o.m, &v);
		buf_append(&out, v.text.data, v.text.len);
		if (v.natt > 0) {
			buf_append_str(&out, "\nAttachments:\n");
			for (size_t i = 0; i < v.natt; i++) {
				char sz[32];
				human_size(v.att[i].size, sz, sizeof(sz));
				buf_printf(&out, "  %zu. %s (%s, %s)\n", i + 1,
				    v.att[i].name, v.att[i].type, sz);
			}
		}
		mv_view_free(&v);
		mv_head_free(&h);
		fwrite(out.data, 1, out.len, stdout);
	}
	if (o.e.uniq != NULL && store_set_flags(&o.e, "S", NULL) != 0)
		fprintf(stderr, "ternmail: cannot mark %s seen: %s\n",
		    o.e.path, strerror(errno));
	buf_clear(&out);
	close_message(&o);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

static int
cmd_save_attachment(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "folder", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *folder = NULL, *file;
	struct opened o;
	struct mv_view v;
	unsigned long idx;
	int c, fd, rc = 0;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1)
		switch (c) {
		case 'f': folder = optarg; break;
		default: return EX_USAGE;
		}
	if (argc - optind < 2 || argc - optind > 3 ||
	    !all_digits(argv[optind + 1])) {
		usage(stderr);
		return EX_USAGE;
	}
	open_message(folder, argv[optind], &o);
	mv_render(o.m, &v);
	idx = strtoul(argv[optind + 1], NULL, 10);
	if (idx == 0 || idx > v.natt)
		die(EX_NOINPUT, "message has %zu attachment(s), not %lu", v.natt,
		    idx);
	file = argc - optind == 3 ? argv[optind + 2] : v.att[idx - 1].name;
	if (strcmp(file, "-") == 0)
		fd = 1;
	else
		fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(EX_CANTCREAT, "%s: %s", file, strerror(errno));
	if (mv_save(&v.att[idx - 1], fd) != 0 || (fd != 1 && (fsync(fd) != 0 ||
	    close(fd) != 0))) {
		fprintf(stderr, "ternmail: %s: %s\n", file, strerror(errno));
		rc = EX_IOERR;
	} else if (fd != 1) {
		printf("saved %s (%zu bytes)\n", file, v.att[idx - 1].size);
	}
	mv_view_free(&v);
	close_message(&o);
	return rc;
}

/* --- writing messages --- */

struct writer {
	const char *to, *cc, *bcc, *subject, *body_file;
	char **attach;
	size_t nattach;
	bool print, draft, sendmail, edit;
};

static void
identity(char **name, char **addr)
{
	const char *from = tmconfig_get(&cfg, TM_FROM, NULL);
	const char *nm = tmconfig_get(&cfg, TM_NAME, NULL);

	if (from == NULL) {
		char host[256];
		struct passwd *pw = getpwuid(getuid());
		const char *user = getenv("USER");
		if (gethostname(host, sizeof(host)) != 0)
			str_copy(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		*addr = xasprintf("%s@%s", user && user[0] ? user :
		    pw ? pw->pw_name : "nobody", host);
	} else {
		*addr = xstrdup(from);
	}
	*name = nm ? xstrdup(nm) : NULL;
}

static int
run_editor(const char *path)
{
	const char *ed = tmconfig_get(&cfg, TM_EDITOR, NULL);
	pid_t pid;
	int status;

	if (ed == NULL)
		ed = getenv("VISUAL");
	if (ed == NULL || ed[0] == '\0')
		ed = getenv("EDITOR");
	if (ed == NULL || ed[0] == '\0')
		ed = "vi";
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *cmd = xasprintf("%s \"$1\"", ed);
		execl("/bin/sh", "sh", "-c", cmd, "sh", path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Template in, edited text out: To/Cc/Bcc/Subject and the body. */
static void
edit_message(struct writer *w, struct buf *body, char **to, char **cc,
    char **bcc, char **subject)
{
	const char *tmpdir = getenv("TMPDIR");
	char *path = xasprintf("%s/ternmail-XXXXXX.eml", tmpdir && tmpdir[0] ?
	    tmpdir : "/tmp");
	struct buf t, in;
	int fd = mkstemps(path, 4);
	char *p, *end;

	if (fd < 0)
		die(EX_CANTCREAT, "%s: %s", path, strerror(errno));
	buf_init(&t);
	buf_printf(&t, "To: %s\nCc: %s\nBcc: %s\nSubject: %s\n\n",
	    w->to ? w->to : "", w->cc ? w->cc : "", w->bcc ? w->bcc : "",
	    w->subject ? w->subject : "");
	buf_append(&t, body->data ? body->data : "", body->len);
	if (write(fd, t.data, t.len) != (ssize_t)t.len || close(fd) != 0)
		die(EX_IOERR, "%s: %s", path, strerror(errno));
	buf_clear(&t);
	if (run_editor(path) != 0) {
		unlink(path);
		die(EX_DATAERR, "the editor failed; nothing was sent");
	}
	buf_init(&in);
	slurp_path(path, &in);
	unlink(path);
	free(path);
	buf_append_char(&in, '\0');
	buf_reset(body);
	*to = *cc = *bcc = *subject = NULL;
	for (p = in.data; *p && *p != '\n'; p = end + 1) {
		char *colon, *v;
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p) - 1;
		*end = '\0';
		colon = strchr(p, ':');
		if (colon == NULL)
			die(EX_DATAERR, "edited message: not a header line: %s",
			    p);
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (ascii_strcaseeq(p, "To"))
			*to = xstrdup(v);
		else if (ascii_strcaseeq(p, "Cc"))
			*cc = xstrdup(v);
		else if (ascii_strcaseeq(p, "Bcc"))
			*bcc = xstrdup(v);
		else if (ascii_strcaseeq(p, "Subject"))
			*subject = xstrdup(v);
		else
			fprintf(stderr, "ternmail: ignoring header %s\n", p);
	}
	if (*p == '\n')
		buf_append_str(body, p + 1);
	buf_clear(&in);
}

static int
password_from_command(const char *cmd, char **out)
{
	FILE *fp = popen(cmd, "r");
	char line[1024];

	if (fp == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) == NULL) {
		pclose(fp);
		return -1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	*out = xstrdup(line);
	explicit_bzero(line, sizeof(line));
	return pclose(fp) == 0 ? 0 : -1;
}

static int
send_message(GMimeMessage *m, const struct writer *w, const char *from)
{
	char **rcpts = NULL;
	size_t n = compose_recipients(m, &rcpts);
	struct buf msg, err;
	int rc;
	const char *transport = tmconfig_get(&cfg, TM_TRANSPORT, "smtp");

	if (n == 0)
		die(EX_USAGE, "no recipients");
	buf_init(&msg);
	buf_init(&err);
	compose_write(m, false, &msg);
	if (w->sendmail || strcmp(transport, "sendmail") == 0) {
		rc = submit_sendmail(tmconfig_get(&cfg, TM_SENDMAIL,
		    "tern-sendmail"), from, rcpts, n, msg.data, msg.len, &err);
	} else {
		struct submit_server s = { 0 };
		const char *tls = tmconfig_get(&cfg, TM_SMTP_TLS, "starttls");
		const char *verify = tmconfig_get(&cfg, TM_SMTP_VERIFY, "yes");
		const char *pwcmd = tmconfig_get(&cfg,
		    TM_SMTP_PASSWORD_COMMAND, NULL);
		char *password = cfg.password ? xstrdup(cfg.password) : NULL;
		char host[256];

		s.host = tmconfig_get(&cfg, TM_SMTP_HOST, "localhost");
		s.tls = strcmp(tls, "implicit") == 0 ? SUBMIT_IMPLICIT :
		    strcmp(tls, "none") == 0 ? SUBMIT_NONE : SUBMIT_STARTTLS;
		if (strcmp(tls, "implicit") != 0 && strcmp(tls, "none") != 0 &&
		    strcmp(tls, "starttls") != 0)
			die(EX_CONFIG, "smtp_tls must be starttls, implicit or "
			    "none, not %s", tls);
		s.port = tmconfig_get(&cfg, TM_SMTP_PORT,
		    s.tls == SUBMIT_IMPLICIT ? "465" : "587");
		s.verify = strcmp(verify, "no") != 0;
		s.cafile = tmconfig_get(&cfg, TM_SMTP_CAFILE, NULL);
		s.user = tmconfig_get(&cfg, TM_SMTP_USER, NULL);
		if (s.user != NULL && password == NULL && pwcmd != NULL &&
		    password_from_command(pwcmd, &password) != 0)
			die(EX_CONFIG, "smtp_password_command failed");
		s.password = password;
		if (gethostname(host, sizeof(host)) != 0)
			str_copy(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		s.helo = host;
		s.timeout = 60;
		rc = submit_smtp(&s, from, rcpts, n, msg.data, msg.len, &err);
		if (password != NULL) {
			explicit_bzero(password, strlen(password));
			free(password);
		}
	}
	if (rc != 0) {
		buf_append_char(&err, '\0');
		fprintf(stderr, "ternmail: not sent: %s\n", err.data);
	}
	for (size_t i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
	buf_clear(&msg);
	buf_clear(&err);
	return rc == 0 ? 0 : rc == -2 ? EX_UNAVAILABLE : EX_TEMPFAIL;
}

static int
store_copy(GMimeMessage *m, enum tm_key which, const char *def,
    const char *flags)
{
	char *root = maildir_root();
	char *dir = folder_dir(root, tmconfig_get(&cfg, which, def));
	struct buf b;
	struct tern_err err;
	int rc;

	buf_init(&b);
	compose_write(m, true, &b);
	rc = store_deliver(dir, strcmp(dir, root) != 0, b.data, b.len, flags,
	    &err);
	if (rc != 0)
		fprintf(stderr, "ternmail: cannot store a copy in %s: %s\n", dir,
		    err.text);
	buf_clear(&b);
	free(dir);
	free(root);
	return rc;
}

/*
 * The common end of compose, reply and forward: build, then print,
 * store as a draft, or send and keep a copy in Sent. 0 when sent.
 */
static int
finish(struct writer *w, struct compose *c, struct buf *body,
    bool *sent)
{
	char *to = NULL, *cc = NULL, *bcc = NULL, *subject = NULL;
	struct tern_err err;
	GMimeMessage *m;
	int rc = 0;

	*sent = false;
	if (w->edit) {
		edit_message(w, body, &to, &cc, &bcc, &subject);
		c->to = to;
		c->cc = cc;
		c->bcc = bcc;
		c->subject = subject;
	}
	buf_append_char(body, '\0');
	c->body = body->data;
	c->attach = w->attach;
	c->nattach = w->nattach;
	m = compose_build(c, &err);
	if (m == NULL)
		die(err.code == 66 ? EX_NOINPUT : EX_DATAERR, "%s", err.text);
	if (w->print) {
		struct buf out;
		buf_init(&out);
		compose_write(m, true, &out);
		fwrite(out.data, 1, out.len, stdout);
		buf_clear(&out);
	} else if (w->draft) {
		if (store_copy(m, TM_DRAFTS, "Drafts", "DS") != 0)
			rc = EX_CANTCREAT;
		else
			printf("saved as a draft in %s\n",
			    tmconfig_get(&cfg, TM_DRAFTS, "Drafts"));
	} else {
		rc = send_message(m, w, c->from_addr);
		if (rc == 0) {
			*sent = true;
			if (store_copy(m, TM_SENT, "Sent", "S") != 0)
				fprintf(stderr, "ternmail: the message was sent, "
				    "but no copy was kept\n");
			printf("sent\n");
		}
	}
	g_object_unref(m);
	free(to);
	free(cc);
	free(bcc);
	free(subject);
	return rc;
}

enum { O_TO = 256, O_CC, O_BCC, O_SUBJECT, O_ATTACH, O_BODY, O_PRINT,
	O_DRAFT, O_SENDMAIL, O_EDIT, O_ALL, O_INLINE };

static const struct option writer_opts[] = {
	{ "to", required_argument, NULL, O_TO },
	{ "cc", required_argument, NULL, O_CC },
	{ "bcc", required_argument, NULL, O_BCC },
	{ "subject", required_argument, NULL, O_SUBJECT },
	{ "attach", required_argument, NULL, O_ATTACH },
	{ "body", required_argument, NULL, O_BODY },
	{ "print", no_argument, NULL, O_PRINT },
	{ "draft", no_argument, NULL, O_DRAFT },
	{ "sendmail", no_argument, NULL, O_SENDMAIL },
	{ "edit", no_argument, NULL, O_EDIT },
	{ "all", no_argument, NULL, O_ALL },
	{ "inline", no_argument, NULL, O_INLINE },
	{ "folder", required_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

/* Parses the writer options; returns the -f folder (or NULL). */
static const char *
writer_args(int argc, char **argv, struct writer *w, bool *all,
    bool *inl)
{
	const char *folder = NULL;
	int c;

	memset(w, 0, sizeof(*w));
	while ((c = getopt_long(argc, argv, "f:", writer_opts, NULL)) != -1)
		switch (c) {
		case O_TO: w->to = optarg; break;
		case O_CC: w->cc = optarg; break;
		case O_BCC: w->bcc = optarg; break;
		case O_SUBJECT: w->subject = optarg; break;
		case O_BODY: w->body_file = optarg; break;
		case O_PRINT: w->print = true; break;
		case O_DRAFT: w->draft = true; break;
		case O_SENDMAIL: w->sendmail = true; break;
		case O_EDIT: w->edit = true; break;
		case O_ALL: if (all) { *all = true; break; } goto bad;
		case O_INLINE: if (inl) { *inl = true; break; } goto bad;
		case O_ATTACH:
			w->attach = xreallocarray(w->attach, w->nattach + 1,
			    sizeof(*w->attach));
			w->attach[w->nattach++] = optarg;
			break;
		case 'f': folder = optarg; break;
		default:
		bad:
			usage(stderr);
			exit(EX_USAGE);
		}
	if (w->print && w->draft)
		die(EX_USAGE, "--print and --draft do not go together");
	return folder;
}

static void
read_body(const struct writer *w, struct buf *body)
{
	if (w->body_file != NULL)
		slurp_path(w->body_file, body);
	else if (!w->edit && !isatty(0))
		slurp_fd(0, body, DELIVER_MAX);
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "localhost";
}

static int
cmd_compose(int argc, char **argv)
{
	struct writer w;
	struct compose c = { 0 };
	struct buf body;
	char *name, *addr;
	bool sent;
	int rc;

	writer_args(argc, argv, &w, NULL, NULL);
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!w.edit && (w.to == NULL || w.to[0] == '\0') && !w.draft &&
	    !w.print)
		die(EX_USAGE, "compose needs --to (or --edit, or --draft)");
	identity(&name, &addr);
	buf_init(&body);
	read_body(&w, &body);
	c.from_name = name;
	c.from_addr = addr;
	c.to = w.to;
	c.cc = w.cc;
	c.bcc = w.bcc;
	c.subject = w.subject;
	c.domain = domain_of(addr);
	rc = finish(&w, &c, &body, &sent);
	buf_clear(&body);
	free(name);
	free(addr);
	free(w.attach);
	return rc;
}

/* The addresses of list as a string, leaving out self and those already
 * in not_in (bare addresses compared case-insensitively). */
static char *
list_without(InternetAddressList *list, const char *self, char **not_in,
    size_t nnot, char ***seen, size_t *nseen)
{
	InternetAddressList *keep = internet_address_list_new();
	char *s;

	for (int i = 0; list != NULL && i < internet_address_list_length(list);
	    i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		const char *addr;
		bool drop = false;
		if (!INTERNET_ADDRESS_IS_MAILBOX(a))
			continue;
		addr = internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(a));
		if (addr == NULL || addr[0] == '\0' || (self != NULL &&
		    ascii_strcaseeq(addr, self)))
			continue;
		for (size_t k = 0; k < nnot && !drop; k++)
			drop = ascii_strcaseeq(addr, not_in[k]);
		for (size_t k = 0; k < *nseen && !drop; k++)
			drop = ascii_strcaseeq(addr, (*seen)[k]);
		if (drop)
			continue;
		*seen = xreallocarray(*seen, *nseen + 1, sizeof(**seen));
		(*seen)[(*nseen)++] = xstrdup(addr);
		internet_address_list_add(keep, a);
	}
	s = internet_address_list_to_string(keep, NULL, FALSE);
	g_object_unref(keep);
	{
		char *r = xstrdup(s ? s : "");
		g_free(s);
		return r;
	}
}

static int
cmd_reply(int argc, char **argv)
{
	struct writer w;
	struct compose c = { 0 };
	struct buf body, quoted, refs;
	struct opened o;
	struct mv_head h;
	struct mv_view v;
	GMimeMessage *orig;
	char *name, *addr, *to, *cc = NULL, *subject, *irt;
	char **seen = NULL;
	size_t nseen = 0;
	bool all = false, sent;
	const char *folder;
	int rc;

	folder = writer_args(argc, argv, &w, &all, NULL);
	if (optind + 1 != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	open_message(folder, argv[optind], &o);
	orig = o.m;
	mv_head(orig, &h);
	mv_render(orig, &v);
	identity(&name, &addr);
	{
		InternetAddressList *rt = g_mime_message_get_reply_to(orig);
		InternetAddressList *src = rt && internet_address_list_length(rt)
		    ? rt : g_mime_message_get_from(orig);
		to = list_without(src, NULL, NULL, 0, &seen, &nseen);
		if (all) {
			InternetAddressList *both = internet_address_list_new();
			internet_address_list_append(both,
			    g_mime_message_get_to(orig));
			internet_address_list_append(both,
			    g_mime_message_get_cc(orig));
			cc = list_without(both, addr, NULL, 0, &seen, &nseen);
			g_object_unref(both);
		}
	}
	if (w.to != NULL)
		die(EX_USAGE, "reply takes its recipients from the message; use "
		    "--cc to add more");
	subject = compose_reply_subject(h.subject);
	irt = h.message_id[0] ? xasprintf("<%s>", h.message_id) : NULL;
	buf_init(&refs);
	buf_append_str(&refs, h.references);
	if (irt != NULL)
		buf_printf(&refs, "%s%s", refs.len ? " " : "", irt);
	buf_append_char(&refs, '\0');
	buf_init(&quoted);
	buf_printf(&quoted, "On %s, %s wrote:\n", h.date_full[0] ?
	    h.date_full : "an unknown date", h.from_short);
	buf_append_char(&v.text, '\0');
	compose_quote(&quoted, v.text.data);
	buf_init(&body);
	buf_append(&body, quoted.data, quoted.len);
	{
		struct buf mine;
		buf_init(&mine);
		read_body(&w, &mine);
		if (mine.len > 0) {
			buf_append_char(&body, '\n');
			buf_append(&body, mine.data, mine.len);
		}
		buf_clear(&mine);
	}
	c.from_name = name;
	c.from_addr = addr;
	c.to = to;
	if (w.cc != NULL && cc != NULL && cc[0] != '\0') {
		char *both = xasprintf("%s, %s", cc, w.cc);
		free(cc);
		cc = both;
	} else if (w.cc != NULL) {
		free(cc);
		cc = xstrdup(w.cc);
	}
	c.cc = cc;
	c.bcc = w.bcc;
	c.subject = w.subject ? w.subject : subject;
	if (w.to == NULL)
		w.to = to;
	if (w.subject == NULL)
		w.subject = subject;
	w.cc = cc;
	c.in_reply_to = irt;
	c.references = refs.data;
	c.domain = domain_of(addr);
	rc = finish(&w, &c, &body, &sent);
	if (sent && o.e.uniq != NULL && store_set_flags(&o.e, "RS", NULL) != 0)
		fprintf(stderr, "ternmail: cannot mark %s replied: %s\n",
		    o.e.path, strerror(errno));
	for (size_t i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	buf_clear(&body);
	buf_clear(&quoted);
	buf_clear(&refs);
	mv_view_free(&v);
	mv_head_free(&h);
	close_message(&o);
	free(irt);
	free(subject);
	free(to);
	free(cc);
	free(name);
	free(addr);
	free(w.attach);
	return rc;
}

static int
cmd_forward(int argc, char **argv)
{
	struct writer w;
	struct compose c = { 0 };
	struct buf body;
	struct opened o;
	struct mv_head h;
	struct mv_view v;
	GMimeMessage *orig;
	GMimeObject **extra = NULL;
	char *name, *addr, *subject;
	bool inl = false, sent;
	const char *folder;
	int rc;

	folder = writer_args(argc, argv, &w, NULL, &inl);
	if (optind + 1 != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!w.edit && (w.to == NULL || w.to[0] == '\0') && !w.draft &&
	    !w.print)
		die(EX_USAGE, "forward needs --to");
	open_message(folder, argv[optind], &o);
	orig = o.m;
	mv_head(orig, &h);
	mv_render(orig, &v);
	identity(&name, &addr);
	subject = compose_forward_subject(h.subject);
	buf_init(&body);
	read_body(&w, &body);
	if (inl) {
		if (body.len > 0 && body.data[body.len - 1] != '\n')
			buf_append_char(&body, '\n');
		buf_printf(&body, "%s---------- Forwarded message ----------\n",
		    body.len ? "\n" : "");
		buf_printf(&body, "From: %s\nDate: %s\nSubject: %s\nTo: %s\n",
		    h.from, h.date_full, h.subject, h.to);
		if (h.cc[0])
			buf_printf(&body, "Cc: %s\n", h.cc);
		buf_append_char(&body, '\n');
		buf_append(&body, v.text.data, v.text.len);
		/* the original's attachments travel along */
		extra = xcalloc(v.natt ? v.natt : 1, sizeof(*extra));
		for (size_t i = 0; i < v.natt; i++)
			extra[i] = v.att[i].obj;
		c.extra = extra;
		c.nextra = v.natt;
	} else {
		c.forward = orig;
	}
	c.from_name = name;
	c.from_addr = addr;
	c.to = w.to;
	c.cc = w.cc;
	c.bcc = w.bcc;
	c.subject = w.subject ? w.subject : subject;
	if (w.subject == NULL)
		w.subject = subject;
	c.domain = domain_of(addr);
	rc = finish(&w, &c, &body, &sent);
	if (sent && o.e.uniq != NULL && store_set_flags(&o.e, "PS", NULL) != 0)
		fprintf(stderr, "ternmail: cannot mark %s forwarded: %s\n",
		    o.e.path, strerror(errno));
	free(extra);
	buf_clear(&body);
	mv_view_free(&v);
	mv_head_free(&h);
	close_message(&o);
	free(subject);
	free(name);
	free(addr);
	free(w.attach);
	return rc;
}

/* --- filing --- */

static int
one_message_args(int argc, char **argv, const struct option *extra,
    int *flag_out, char **root, char **dir, struct msg_entry *e,
    int nargs)
{
	const char *folder = NULL;
	struct option opts[4] = {
		{ "folder", required_argument, NULL, 'f' },
	};
	int c;

	if (extra != NULL)
		opts[1] = *extra;
	while ((c = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
		if (c == 'f')
			folder = optarg;
		else if (extra != NULL && c == extra->val)
			*flag_out = 1;
		else {
			usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (argc - optind != nargs) {
		usage(stderr);
		exit(EX_USAGE);
	}
	*root = maildir_root();
	*dir = folder_dir(*root, folder);
	resolve(*dir, argv[optind], e);
	if (e->uniq == NULL)
		die(EX_USAGE, "%s is not in a Maildir", argv[optind]);
	return optind;
}

static int
cmd_move(int argc, char **argv)
{
	struct msg_entry e;
	char *root, *dir, *dst;
	int i = one_message_args(argc, argv, NULL, NULL, &root, &dir, &e, 2);

	dst = folder_dir(root, argv[i + 1]);
	if (strcmp(dst, dir) != 0 && store_move(&e, dst, strcmp(dst, root) !=
	    0) != 0)
		die(EX_IOERR, "cannot move to %s: %s", argv[i + 1],
		    strerror(errno));
	store_entry_free(&e);
	free(dst);
	free(dir);
	free(root);
	return 0;
}

static int
cmd_flag(int argc, char **argv)
{
	struct msg_entry e;
	char *root, *dir;
	char add[32] = "", del[32] = "";
	size_t na = 0, nd = 0;
	const char *folder = NULL;
	int n = 0;

	/* "-S" looks like an option to getopt: parse by hand */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-f") == 0 && i + 1 < argc) {
			folder = argv[++i];
		} else if ((a[0] == '+' || a[0] == '-') && a[1] != '\0' &&
		    n == 1) {
			for (const char *p = a + 1; *p; p++) {
				if (!strchr("SRFTDP", *p))
					die(EX_USAGE, "unknown flag %c (use S R "
					    "F T D P)", *p);
				if (a[0] == '+' && na < sizeof(add) - 1)
					add[na++] = *p;
				else if (a[0] == '-' && nd < sizeof(del) - 1)
					del[nd++] = *p;
			}
		} else if (n == 0) {
			n = i;
		} else {
			usage(stderr);
			return EX_USAGE;
		}
	}
	add[na] = del[nd] = '\0';
	if (n == 0 || (na == 0 && nd == 0)) {
		usage(stderr);
		return EX_USAGE;
	}
	root = maildir_root();
	dir = folder_dir(root, folder);
	resolve(dir, argv[n], &e);
	if (e.uniq == NULL)
		die(EX_USAGE, "%s is not in a Maildir", argv[n]);
	if (store_set_flags(&e, add, del) != 0)
		die(EX_IOERR, "%s: %s", e.path, strerror(errno));
	store_entry_free(&e);
	free(dir);
	free(root);
	return 0;
}

static int
cmd_delete(int argc, char **argv)
{
	static const struct option expunge = { "expunge", no_argument, NULL,
		'x' };
	struct msg_entry e;
	char *root, *dir, *trash;
	int ex = 0;

	one_message_args(argc, argv, &expunge, &ex, &root, &dir, &e, 1);
	trash = folder_dir(root, tmconfig_get(&cfg, TM_TRASH, "Trash"));
	if (ex || strcmp(trash, dir) == 0) {
		if (store_unlink(&e) != 0)
			die(EX_IOERR, "%s: %s", e.path, strerror(errno));
	} else {
		if (store_set_flags(&e, "T", NULL) != 0 ||
		    store_move(&e, trash, true) != 0)
			die(EX_IOERR, "cannot move to Trash: %s",
			    strerror(errno));
	}
	store_entry_free(&e);
	free(trash);
	free(dir);
	free(root);
	return 0;
}

static int
cmd_folders(int argc, char **argv)
{
	char *root = maildir_root();
	char **f;

	if (argc > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!store_is_maildir(root))
		die(EX_NOINPUT, "%s is not a Maildir", root);
	f = store_folders(root);
	for (size_t i = 0; f[i]; i++) {
		char *dir = folder_dir(root, f[i]);
		struct msg_list l;
		size_t unseen = 0;
		if (store_scan(dir, &l) == 0) {
			for (size_t k = 0; k < l.n; k++)
				if (strchr(l.v[k].flags, 'S') == NULL)
					unseen++;
			printf("%-24s %6zu message%s %6zu unseen\n", f[i],
			    l.n, l.n == 1 ? " " : "s", unseen);
			store_list_free(&l);
		}
		free(dir);
	}
	store_folders_free(f);
	free(root);
	return 0;
}

/* --- tools --- */

static int
cmd_deliver(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "folder", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *folder = NULL;
	char *root, *dir;
	struct buf in, msg;
	struct tern_err err;
	size_t i = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1)
		switch (c) {
		case 'f': folder = optarg; break;
		default: usage(stderr); return EX_USAGE;
		}
	if (argc - optind > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	root = argc - optind == 1 ? xstrdup(argv[optind]) : maildir_root();
	dir = store_folder_dir(root, folder);
	if (dir == NULL) {
		fprintf(stderr, "ternmail: not a valid folder name: %s\n",
		    folder);
		free(root);
		return EX_USAGE;
	}
	buf_init(&in);
	buf_init(&msg);
	if (slurp_fd(0, &in, DELIVER_MAX) != 0) {
		fprintf(stderr, "ternmail: reading the message: %s\n",
		    strerror(errno));
		rc = errno == EFBIG ? EX_DATAERR : EX_IOERR;
		goto out;
	}
	if (in.len == 0) {
		fprintf(stderr, "ternmail: empty message, not delivered\n");
		rc = EX_DATAERR;
		goto out;
	}
	/* an mbox "From " line is not part of the message */
	if (in.len > 5 && memcmp(in.data, "From ", 5) == 0) {
		char *nl = memchr(in.data, '\n', in.len);
		i = nl ? (size_t)(nl - in.data) + 1 : in.len;
	}
	/* Maildir files have LF line ends */
	for (; i < in.len; i++)
		if (!(in.data[i] == '\r' && i + 1 < in.len &&
		    in.data[i + 1] == '\n'))
			buf_append_char(&msg, in.data[i]);
	if (store_deliver(dir, strcmp(dir, root) != 0, msg.data ? msg.data :
	    "", msg.len, NULL, &err) != 0) {
		fprintf(stderr, "ternmail: %s: %s\n", dir, err.text);
		rc = err.code == 554 ? EX_CANTCREAT : EX_TEMPFAIL;
	}
out:
	buf_clear(&msg);
	buf_clear(&in);
	free(dir);
	free(root);
	return rc;
}

static void
check_report(void *arg, const char *what, const char *path)
{
	unsigned *n = arg;

	(*n)++;
	printf("%s: %s\n", what, path);
}

static int
cmd_check(int argc, char **argv)
{
	bool repair = true;
	char *root;
	unsigned found = 0, left;
	int c;

	while ((c = getopt(argc, argv, "n")) != -1)
		switch (c) {
		case 'n': repair = false; break;
		default: usage(stderr); return EX_USAGE;
		}
	if (argc - optind > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	root = argc - optind == 1 ? xstrdup(argv[optind]) : maildir_root();
	{
		struct stat st;
		if (stat(root, &st) != 0 && repair) {
			if (store_create(root, false) != 0)
				die(EX_CANTCREAT, "%s: %s", root,
				    strerror(errno));
			printf("created Maildir: %s\n", root);
		} else if (stat(root, &st) != 0) {
			die(EX_NOINPUT, "%s: %s", root, strerror(errno));
		}
	}
	left = store_check(root, repair, check_report, &found);
	if (found == 0)
		printf("%s: ok\n", root);
	else if (left == 0)
		printf("%s: repaired\n", root);
	else
		printf("%s: %u problem(s) left\n", root, left);
	free(root);
	return left == 0 ? 0 : 1;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} verbs[] = {
	{ "list", cmd_list }, { "show", cmd_show },
	{ "save-attachment", cmd_save_attachment },
	{ "compose", cmd_compose }, { "reply", cmd_reply },
	{ "forward", cmd_forward }, { "move", cmd_move },
	{ "flag", cmd_flag }, { "delete", cmd_delete },
	{ "folders", cmd_folders }, { "deliver", cmd_deliver },
	{ "check", cmd_check },
};

int
main(int argc, char **argv)
{
	int i = 1, rc;

	setlocale(LC_ALL, "");
	if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
		setlocale(LC_CTYPE, "C.UTF-8");
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
			opt_maildir = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("ternmail (Tern) %s\n", PACKAGE_VERSION);
			return 0;
		} else {
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (tmconfig_load(&cfg) != 0)
		return EX_CONFIG;
	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
		if (strcmp(argv[i], verbs[k].name) == 0) {
			mv_init();
			optind = 1;
			rc = verbs[k].fn(argc - i, argv + i);
			tmconfig_free(&cfg);
			return rc;
		}
	fprintf(stderr, "ternmail: unknown verb %s\n", argv[i]);
	usage(stderr);
	return EX_USAGE;
}
