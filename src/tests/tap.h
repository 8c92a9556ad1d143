/*
 * tap.h - the unit tests' harness: TAP lines on stdout ("ok 3 - name",
 * "not ok 4 - name", "ok 5 # SKIP reason") and a last line
 * "N passed, N failed[, N skipped]" that scripts/unit.sh reads. One
 * header, included once per test program; nothing here allocates.
 */
#ifndef FERRY_TAP_H
#define FERRY_TAP_H

#include <stdarg.h>
#include <stdio.h>

/* Every helper is static and marked unused: a test uses what it needs. */
#define TAP_FN static __attribute__((unused))

static int tap_n, tap_pass, tap_fail, tap_skip;

TAP_FN int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

TAP_FN int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (cond)
		tap_pass++;
	else
		tap_fail++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}

/* ok(cond, "fmt", ...): one assertion; returns cond for chaining. */
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

TAP_FN int tap_is_int(long long got, long long want, const char *name, const char *file, int line)
{
	int r = tap_ok(got == want, file, line, "%s", name);

	if (!r)
		printf("#   got %lld, want %lld\n", got, want);
	return r;
}

#define is_int(got, want, name)                                                                    \
	tap_is_int((long long)(got), (long long)(want), (name), __FILE__, __LINE__)

/* One skipped check; the "# skip:" line is what scripts/unit.sh shows. */
TAP_FN void skip(const char *reason)
{
	tap_n++;
	tap_skip++;
	printf("ok %d # SKIP %s\n# skip: %s\n", tap_n, reason, reason);
	fflush(stdout);
}

TAP_FN void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A "# " comment line: measurements and context, never a verdict. */
TAP_FN void note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Plan, summary line; the exit status for main(). */
TAP_FN int tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_skip)
		printf("%d passed, %d failed, %d skipped\n", tap_pass, tap_fail, tap_skip);
	else
		printf("%d passed, %d failed\n", tap_pass, tap_fail);
	fflush(stdout);
	return tap_fail ? 1 : 0;
}

#endif
