/*
 * state.h - the agent's memory of a migration in progress, so that
 * `ferry migrate` run again (after a crash, a kill, a reboot of either
 * end) continues instead of starting over. One small text file per
 * destination, written atomically, read back like untrusted input.
 */
#ifndef FERRY_STATE_H
#define FERRY_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define STATE_DIR_DEFAULT "/var/lib/ferry"
#define STATE_FILE_MAX (160u * 1024)	/* every list full fits */
#define STATE_ZEROED_MAX 1024		/* unreadable source ranges sent as zeros */

struct mstate {
	uint64_t session, seed;
	uint32_t chunk;
	char dest[80];			/* the token's fingerprint "fp:xxxxxxxx" */
	uint32_t n;
	struct {
		char src[256];
		char dst[PROTO_NAME_MAX];
		uint64_t size;
		uint32_t lsec;
		uint64_t acked;		/* bytes of its send order durable */
	} d[PROTO_MAX_DISKS];
	/* Durable past the acked prefixes: ascending, disjoint. */
	uint32_t ndone;
	struct proto_range done[PROTO_DONE_MAX];
	/* What of the source could not be read and went as zeros
	 * (--skip-bad-sectors), for the summary and the destination's
	 * report of a run that resumes: ascending, disjoint. */
	uint32_t nzeroed;
	struct proto_range zeroed[STATE_ZEROED_MAX];
};

/* The state file for a destination: DIR/migrate-<hash of its token's
 * fingerprint>.state. */
void state_path(const char *dir, const char *dest, char *out, size_t cap);
/* 0 loaded, -ENOENT none, -EBADMSG (err says what is wrong) or -errno. */
int state_load(const char *path, struct mstate *s, char *err, size_t errcap);
/* Atomic: a temp file, fsync, rename, fsync of the directory. A full
 * or failing filesystem leaves the previous file as it was. Not
 * reentrant: callers serialize. */
int state_save(const char *path, const struct mstate *s, char *err, size_t errcap);
int state_remove(const char *path);

#endif
