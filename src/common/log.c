/*
 * log.c - one line per event, to stderr, optionally to a log file and a
 * mirror (PID 1 mirrors to /dev/kmsg). Never logs secrets: callers pass
 * fingerprints, not tokens.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

static const char *log_prog = "ferry";
static int log_lvl = LOG_LVL_INFO;
static int log_file_fd = -1;
static int log_mirror_fd = -1;
static int log_file_paused;

void log_init(const char *prog, int level)
{
	log_prog = prog;
	if (level >= LOG_LVL_ERROR && level <= LOG_LVL_DEBUG)
		log_lvl = level;
}

int log_level(void)
{
	return log_lvl;
}

void log_set_file(int fd)
{
	log_file_fd = fd;
}

void log_pause_file(int pause)
{
	log_file_paused = pause;
}

void log_set_mirror(int fd)
{
	log_mirror_fd = fd;
}

static void log_emit(int level, const char *tag, const char *fmt, va_list ap,
		     int err)
{
	char msg[1024], line[1200];
	int n, saved = errno;

	if (level > log_lvl && (log_file_fd < 0 || level > LOG_LVL_DEBUG))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	if (err)
		n = snprintf(line, sizeof(line), "%s: %s%s: %s\n", log_prog, tag,
			     msg, strerror(-err));
	else
		n = snprintf(line, sizeof(line), "%s: %s%s\n", log_prog, tag, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (level <= log_lvl) {
		fd_write_all(STDERR_FILENO, line, (size_t)n);
		/* The kernel log at debug priority: in dmesg, but not echoed
		 * to the console a second time. */
		if (log_mirror_fd >= 0) {
			char k[sizeof(line) + 4];

			memcpy(k, "<7>", 3);
			memcpy(k + 3, line, (size_t)n);
			(void)!write(log_mirror_fd, k, (size_t)n + 3);
		}
	}
	if (log_file_fd >= 0 && !log_file_paused) {
		char ts[32];
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ ", &tm);
		fd_write_all(log_file_fd, ts, strlen(ts));
		fd_write_all(log_file_fd, line, (size_t)n);
	}
	errno = saved;
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERROR, "error: ", fmt, ap, 0);
	va_end(ap);
}

void log_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERROR, "error: ", fmt, ap, err < 0 ? err : -err);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_INFO, "", fmt, ap, 0);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_DEBUG, "debug: ", fmt, ap, 0);
	va_end(ap);
}
