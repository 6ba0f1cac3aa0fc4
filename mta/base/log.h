/* SPDX-License-Identifier: ISC */
/*
 * log.h - layer 0: the only writer of stderr/syslog for the daemon.
 * One line per event; by convention the queue or session id comes first,
 * then key=value pairs. log_warn/fatal append strerror(errno); the *x
 * variants do not. Thread-safe (one write(2) per line).
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG };

void log_init(const char *progname, bool to_stderr, int verbosity);
void log_set_verbosity(int verbosity);
bool log_debug_enabled(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
