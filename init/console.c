/*
 * console.c - phase 2: stdin/stdout/stderr on /dev/console, log lines
 * mirrored to /dev/kmsg, and the result port a test harness reads.
 * fatal() lives here because it needs both.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/common.h"
#include "init.h"

static int result_fd = -1;

void open_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0)
		log_set_mirror(fd);
}

void result_open(const char *dev)
{
	struct termios t;
	int fd;

	if (!dev[0])
		return;
	fd = open(dev, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		log_errno(-errno, "result port %s", dev);
		return;
	}
	/* Raw, so the harness sees exactly the bytes written. */
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	result_fd = fd;
}

void result_set_fd(int fd)
{
	result_fd = fd;
}

int result_enabled(void)
{
	return result_fd >= 0;
}

void result_line(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (result_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fd_write_all(result_fd, line, (size_t)n);
}

void fatal(const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("fatal: %s", msg);
	result_line("FERRY FATAL %s", msg);
	if (getpid() != 1)
		_exit(1);
	if (result_enabled())
		hand_off(INIT_HANDOFF_POWEROFF, NULL);
	rescue_shell(msg);
	for (;;)
		pause();
}
