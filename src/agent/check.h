/*
 * check.h - `ferry check` and the checks `ferry migrate` runs first: is
 * this server ready to be migrated, and is the destination ready to take
 * it. Each check is one line, PASS / WARN / FAIL, with what was found
 * and, unless it passed, how to fix it. The checks only read: the disks
 * are probed, the destination is asked for its inventory and left.
 */
#ifndef FERRY_CHECK_H
#define FERRY_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct agent_target;

#define CHECK_MAX      64 /* lines kept; more are counted in dropped */
#define CHECK_NAME_MAX 24
#define CHECK_TEXT_MAX 512 /* found and fix, each, NUL included */
/* One formatted line: in JSON every byte may become a 6-byte \u escape. */
#define CHECK_LINE_MAX (6 * (2 * CHECK_TEXT_MAX + CHECK_NAME_MAX) + 128)

enum check_level { CHECK_PASS = 0, CHECK_WARN = 1, CHECK_FAIL = 2 };

struct check_item {
	enum check_level level;
	char name[CHECK_NAME_MAX];  /* "root", "clock", "disk", "virtio_blk", ... */
	char found[CHECK_TEXT_MAX]; /* what was found, quoting values */
	char fix[CHECK_TEXT_MAX];   /* how to fix it; "" for PASS */
};

/* Caller-owned (about 66 KB): make it static. */
struct check_result {
	enum check_level worst; /* over every line, the dropped ones too */
	unsigned count[3];	/* lines per level, the dropped ones too */
	size_t n, dropped;
	struct check_item item[CHECK_MAX];
};

struct check_opts {
	/* The destination: NULL for the checks of this machine only. */
	const struct agent_target *target;
	/* "SRC[=DST]" as `--disk`; ndisks 0: every whole disk of this
	 * machine, the one holding / first, mapped in order (as migrate). */
	const char *const *disks;
	size_t ndisks;
	uint32_t chunk; /* map granularity for the send estimate; 0: default */
	/* Each line is written here as soon as it is known (NULL: quiet). */
	FILE *out;
	int json; /* NDJSON: {"event":"check",...}, {"event":"check_summary",...} */
};

/*
 * Runs every check: root, clock, memory, SELinux, the source disks (table,
 * partitions and filesystems, the bytes a migration sends), the virtio
 * drivers of the running kernel (built in, or in its initramfs), and with
 * a target: reachable, TLS and token valid, the clocks close, every
 * mapped destination disk large enough. Fills r and, with o->out, prints
 * each line and then the summary. Returns 0 when the checks ran, whatever
 * their verdict (r->worst), -EINVAL for a bad --disk spec.
 */
int check_run(const struct check_opts *o, struct check_result *r);

/* 3 (AGENT_EXIT_CHECK) when any check failed, else 0. */
int check_exit_code(const struct check_result *r);

/* "PASS", "WARN", "FAIL". */
const char *check_level_name(enum check_level l);

/*
 * One line without its newline: "PASS  found" or "WARN  found  — fix",
 * or with json {"event":"check","check":NAME,"level":...,"found":...,
 * "fix":...}. 0, or -ENOSPC when cap was too small (the line is cut).
 */
int check_format(const struct check_item *it, int json, char *buf, size_t cap);
/* The closing line: "check: FAIL (5 passed, 2 warnings, 1 failed)" or
 * {"event":"check_summary","result":"FAIL","pass":5,"warn":2,"fail":1}. */
int check_format_summary(const struct check_result *r, int json, char *buf, size_t cap);

#endif
