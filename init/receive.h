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
	int is_blk;
	char name[PROTO_NAME_MAX];
	char path[256];
	uint64_t dst_size, src_size;
	uint32_t lsec;
	uint8_t table;
	uint8_t *head;		/* RECV_HEAD bytes, read from the disk at open */
	uint64_t head_len;	/* min(RECV_HEAD, src_size) */
	int head_dirty;
	uint64_t written;	/* bytes written or zeroed (for progress) */
	uint64_t base;		/* committed when this session's PLAN came */
	uint64_t committed;	/* everything below is durable */
};

struct recv_state {
	uint64_t session;	/* the agent's id for this migration */
	uint32_t ndisks;
	struct recv_disk d[PROTO_MAX_DISKS];
	uint64_t seed;
	uint64_t written;
	uint64_t flushed;	/* written at the last completed FLUSH */
	/* The streams of the session in progress, and where each stood at
	 * its last completed FLUSH (see recv_flush). */
	uint32_t nstreams;
	struct {
		uint32_t disk;
		uint64_t off;
	} pos[PROTO_STREAMS_MAX];
};

/* Scratch space one connection needs (each stream has its own): one
 * decompressed DATA, or one block read back for a hash. */
#define RECV_SCRATCH PROTO_DATA_MAX

/* 1 if plan continues the session st holds (same id, seed, disks, sizes). */
int recv_same_session(const struct recv_state *st, const struct proto_plan *plan);

/* Opens every disk of the plan for writing after the last safety checks
 * (not mounted, not in use: O_EXCL on block devices). Nothing has been
 * written when it fails; err names the disk. */
int recv_open(struct recv_state *st, const struct proto_plan *plan,
	      const struct serve_config *cfg, char *err, size_t errcap);
/* A session's PLAN was accepted (new or resumed) for nstreams streams:
 * what is committed now is the base, the streams start from nothing. */
void recv_begin(struct recv_state *st, uint32_t nstreams);
/*
 * Several streams call these at once (each with its own scratch of
 * RECV_SCRATCH bytes); they serialize what they share. Writes of different
 * streams never overlap: the agent gives each its own ranges.
 */
int recv_write(struct recv_state *st, const struct proto_data *d, uint8_t *scratch,
	       char *err, size_t errcap);
/* Makes everything durable; then stream k stands at pos, and a disk is
 * committed up to the lowest position any stream of the session has. */
int recv_flush(struct recv_state *st, uint32_t k, const struct proto_flush *pos, char *err,
	       size_t errcap);
/* Hashes req->len bytes in req->block pieces into out (count hashes). */
int recv_hash(struct recv_state *st, const struct proto_hash_req *req, uint8_t *out,
	      uint32_t *count, uint8_t *scratch, char *err, size_t errcap);
/* Around reads of committed/written from another thread. */
void recv_lock(void);
void recv_unlock(void);
/* Bytes written so far (any thread). */
uint64_t recv_written(struct recv_state *st);
/* Fix-ups, the first MiB, grow, readiness: the report says what happened. */
int recv_finish(struct recv_state *st, uint8_t flags, struct proto_report *r);
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
