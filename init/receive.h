/*
 * receive.h - the destination's disk side of a migration: opens the
 * planned disks (only after the engine accepted the plan), writes DATA,
 * makes it durable at FLUSH, hashes ranges, and finishes (fix-ups, the
 * first MiB written last, grow, readiness report).
 */
#ifndef FERRY_RECEIVE_H
#define FERRY_RECEIVE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct serve_config;

/* The first MiB (boot code, partition tables) is held in memory and
 * written last, so an interrupted migration never leaves a disk that
 * looks bootable. */
#define RECV_HEAD (1024u * 1024)

struct recv_disk {
	int fd;
	/* A block device also open with O_DIRECT (or -1): data goes straight
	 * to the disk, so a failed write fails then, with its offset, rather
	 * than later in writeback where only a FLUSH would hear of it. */
	int dfd;
	uint32_t dio;		/* its logical block size: O_DIRECT alignment */
	int is_blk;
	char name[PROTO_NAME_MAX];
	char path[256];
	char src[PROTO_LABEL_MAX];	/* the source's name ("/dev/sda") */
	uint64_t dst_size, src_size;
	uint32_t lsec;
	uint8_t table;
	uint8_t *head;		/* RECV_HEAD bytes, read from the disk at open */
	uint64_t head_len;	/* min(RECV_HEAD, src_size) */
	int head_dirty;
	uint64_t written;	/* bytes written or zeroed (for progress) */
	uint64_t committed;	/* everything below is durable */
	/* Lowest and highest byte written since the last good FLUSH (for
	 * the error a failed FLUSH reports; lo > hi when none). */
	uint64_t dirty_lo, dirty_hi;
};

struct recv_state {
	uint64_t session;	/* the agent's id for this migration */
	int live;		/* in the live environment (adapt: block devices) */
	uint32_t ndisks;
	struct recv_disk d[PROTO_MAX_DISKS];
	uint64_t seed;
	uint64_t written;
	uint64_t flushed;	/* written at the last completed FLUSH */
	/* A write or a flush failed in this session: every later FLUSH
	 * fails too (with why), so nothing written after the failure - nor
	 * what the failure lost, which another stream's fdatasync may have
	 * been told about instead - is ever committed. A new PLAN clears it. */
	int failed;
	char why[PROTO_TEXT_MAX];
	/* Durable past the disks' committed prefixes: ascending by (disk,
	 * off), disjoint, never touching each other or a prefix (see
	 * recv_flush). */
	uint32_t ndone;
	struct proto_range done[PROTO_DONE_MAX];
};

/* Scratch space one connection needs (each stream has its own): one
 * decompressed DATA, one block read back for a hash, or one DATA on its
 * way to an O_DIRECT write - so it is RECV_ALIGN-aligned. */
#define RECV_SCRATCH PROTO_DATA_MAX
#define RECV_ALIGN 4096

/* 1 if plan continues the session st holds (same id, seed, disks, sizes). */
int recv_same_session(const struct recv_state *st, const struct proto_plan *plan);

/* Opens every disk of the plan for writing after the last safety checks
 * (not mounted, not in use: O_EXCL on block devices). Nothing has been
 * written when it fails; err names the disk. */
int recv_open(struct recv_state *st, const struct proto_plan *plan,
	      const struct serve_config *cfg, char *err, size_t errcap);
/* A session's PLAN was accepted (new or resumed): a failure of the
 * session before is forgotten (what it lost was never committed, so it
 * is sent again). */
void recv_begin(struct recv_state *st);
/* What is durable (committed prefixes, ranges past them) into ok, for a
 * resumed session's PLAN_OK. */
void recv_durable(struct recv_state *st, struct proto_plan_ok *ok);
/*
 * Several streams call these at once (each with its own scratch of
 * RECV_SCRATCH bytes); they serialize what they share. Writes of different
 * streams never overlap: the agent gives each its own ranges.
 */
int recv_write(struct recv_state *st, const struct proto_data *d, uint8_t *scratch,
	       char *err, size_t errcap);
/* Makes everything written durable, then records fl's ranges as
 * durable (the engine checked they lie in the plan). Fails (and records
 * nothing) once any write or flush of the session failed. Errors name
 * the disk, the offsets and the errno. */
int recv_flush(struct recv_state *st, const struct proto_flush *fl, char *err, size_t errcap);
/* Hashes req->len bytes in req->block pieces into out (count hashes). */
int recv_hash(struct recv_state *st, const struct proto_hash_req *req, uint8_t *out,
	      uint32_t *count, uint8_t *scratch, char *err, size_t errcap);
/* Around reads of committed/written from another thread. */
void recv_lock(void);
void recv_unlock(void);
/* Bytes written so far (any thread). */
uint64_t recv_written(struct recv_state *st);
/* Fix-ups, the first MiB, grow, readiness (and, with PROTO_ADAPT_ON in
 * fin->flags, the adapt phase): the report says what happened, and that
 * the copy is not exact when fin says the source had unreadable blocks
 * that went as zeros. */
int recv_finish(struct recv_state *st, const struct proto_finish *fin, struct proto_report *r);
void recv_close(struct recv_state *st);

/* What LBA 0 of a disk under migration says: not a boot sector (no
 * 0x55AA), so the half-migrated disk reads as unpartitioned, and the
 * mark clean mode looks for. */
#define RECV_MARK "FERRY-MIGRATION-IN-PROGRESS"
#define RECV_BLANK (64u * 1024)	/* blanked at each end before any data */
#define RECV_WIPE (1024u * 1024)	/* wiped at each end by clean */

/* 1 if the disk open on fd carries the mark (session text into sess). */
int recv_marked(int fd, char *sess, size_t cap);
/* Zeroes the first and last RECV_WIPE bytes of a disk of size bytes. */
int recv_wipe(int fd, uint64_t size);

#endif
