/*
 * check_impl.h - what the parts of `ferry check` share: the machine they
 * read (a tree in the tests) and the line writer. Private to check*.c.
 */
#ifndef FERRY_AGENT_CHECK_IMPL_H
#define FERRY_AGENT_CHECK_IMPL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "agent/check.h"
#include "common/common.h"

#define PATHBUF 512
#define LINEBUF 512

/* What the checks read from the machine; the tests substitute a tree. */
struct env {
	const char *root;    /* "" or a prefix for /proc, /sys, /boot, /lib, /etc */
	const char *release; /* uname -r */
	uid_t euid;
	time_t now;
};

struct ck {
	const struct check_opts *o;
	struct check_result *r;
	const struct env *e;
};

/* Records one line (fix may be NULL) and prints it when asked to. */
void ck_say(struct ck *c, enum check_level l, const char *name, const char *fix, const char *fmt,
	    ...) FERRY_ATTR_PRINTF(5, 6);
/* printf into dst, and appended to dst, clipped with "..." */
void ck_text(char *dst, size_t cap, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
void ck_append(char *dst, size_t cap, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
/* e->root followed by the formatted path. */
void ck_path(const struct env *e, char *dst, size_t cap, const char *fmt, ...)
    FERRY_ATTR_PRINTF(4, 5);
/* The path as the operator knows it: without the test prefix. */
const char *ck_shown(const struct env *e, const char *path);
int ck_exists(const char *path);

/* check_kernel.c: the virtio drivers of the kernel that will boot. */
void ck_virtio(struct ck *c);

#endif
