/*
 * shell.h - running the real tools from a unit test: run() a command,
 * capture() its stdout. Shared by the tests that build images with
 * mkfs, lvm2 and friends; included once per test program after tap.h.
 */
#ifndef FERRY_TESTS_SHELL_H
#define FERRY_TESTS_SHELL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int capture(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), unused));

/* The command's exit status (noted when not 0), -1 if it did not exit. */
static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	if (WEXITSTATUS(st))
		note("command failed (%d): %.300s", WEXITSTATUS(st), cmd);
	return WEXITSTATUS(st);
}

/* stdout of a command, trailing newlines cut; 0 if it exited 0. */
static int capture(char *buf, size_t cap, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	size_t n;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	buf[0] = 0;
	f = popen(cmd, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return pclose(f) == 0 ? 0 : -1;
}

#endif
