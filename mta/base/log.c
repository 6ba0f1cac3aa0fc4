/* SPDX-License-Identifier: ISC */
/*
 * log.c - layer 0: log lines to stderr (foreground) or syslog (mail
 * facility). Each line is formatted into a local buffer and written with a
 * single write(2), so lines from worker threads never interleave. Lines
 * longer than the buffer are truncated, never split.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "tern";
static bool log_stderr = true;
static int log_verbosity = 0;

void
log_init(const char *progname, bool to_stderr, int verbosity)
{
	log_progname = progname;
	log_stderr = to_stderr;
	log_verbosity = verbosity;
	if (!to_stderr)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_verbosity(int verbosity)
{
	log_verbosity = verbosity;
}

bool
log_debug_enabled(void)
{
	return log_verbosity > 0;
}

static void
log_vemit(int prio, const char *tag, const char *fmt, va_list ap,
    int errnum)
{
	char line[2048];
	size_t n = 0;
	int r;

	if (log_stderr) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		r = snprintf(line, sizeof(line),
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld]: %s",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_progname,
		    (long)getpid(), tag);
		if (r > 0)
			n = (size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1;
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	if (errnum) {
		r = snprintf(line + n, sizeof(line) - n, ": %s",
		    strerror(errnum));
		if (r > 0)
			n += (size_t)r < sizeof(line) - n ? (size_t)r :
			    sizeof(line) - n - 1;
	}
	if (log_stderr) {
		if (n >= sizeof(line) - 1)
			n = sizeof(line) - 2;
		line[n++] = '\n';
		(void)!write(STDERR_FILENO, line, n);
	} else {
		line[n] = '\0';
		syslog(prio, "%s", line);
	}
}

#define LOG_BODY(prio, tag, errnum)                                           \
	va_list ap;                                                           \
	va_start(ap, fmt);                                                    \
	log_vemit(prio, tag, fmt, ap, errnum);                                \
	va_end(ap)

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, "", 0);
}

void
log_debug(const char *fmt, ...)
{
	if (log_verbosity <= 0)
		return;
	LOG_BODY(LOG_DEBUG, "debug: ", 0);
}

void
log_warn(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_WARNING, "warning: ", e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, "warning: ", 0);
}

void
fatal(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_ERR, "fatal: ", e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, "fatal: ", 0);
	exit(1);
}
