/*
 * mig.h - private to the migration (`ferry migrate`, `sync`, `import`):
 * the state one run shares between its phases - the sources, what the
 * streams of a pass share, one stream's view - and the calls the phase
 * files make into each other. Nothing outside migrate.c and its phase
 * files (plan, transfer, send, compare, verify, passes, finish) includes
 * it; the agent's public API stays in agent.h.
 */
#ifndef FERRY_MIG_H
#define FERRY_MIG_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"
#include "agent/progress.h"
#include "agent/sources.h"
#include "agent/state.h"
#include "blockmap/blockmap.h"

struct img;
struct track;
struct track_map;

#define READ_MAX PROTO_DATA_MAX		/* one DATA message */
#define FLUSH_RING 16			/* FLUSHes in flight per stream */
/* What a pass already knows about: the durable record (a prefix per
 * disk, then ranges) or whole disks. */
#define KNOWN_MAX (PROTO_DONE_MAX + PROTO_MAX_DISKS)
/* Per stream buffers: a compressed DATA payload, the chunks a compare
 * window found different. */
#define ZOUT_MAX (PROTO_DATA_MAX + 65536)
#define CMP_WINDOW 4

struct src {
	char path[SRC_PATH_MAX];
	char dst[PROTO_NAME_MAX];	/* "" until mapped */
	struct bm_disk bm;
	int fd;
	int dfd;			/* O_DIRECT on a block device, or -1 */
	struct img *img;		/* an image file (ferry import), or NULL */
	pthread_mutex_t img_lock;	/* its reader keeps state: one stream at a time */
	char format[16];		/* --format for it, "" = detect */
};

/* What the streams of a pass share (under lock). */
struct shared {
	pthread_mutex_t lock;
	struct progress pg;	/* done is added to atomically */
	struct mstate st;	/* acked positions; saved at each FLUSHED */
	char state_file[600];	/* "" = no state file */
	int state_failing;		/* the last save failed (state_err says why) */
	char state_err[300];
	/* --bwlimit: one token bucket for all streams' bytes. */
	double bw_rate, bw_tokens;	/* bytes/s (0 = off), bytes */
	uint64_t bw_last_ns;
	uint32_t bw_burst;		/* one chunk */
	/* The pass: where the next piece starts, and the ranges it already
	 * knows (ascending, disjoint): skipped when the destination holds
	 * them, compared by hashes when it may not (a lost session, a sync);
	 * the rest is sent. next_k: the first known range not behind. */
	uint32_t next_disk;
	uint64_t next_off;
	uint32_t nknown, next_k;
	int known_cmp;
	struct proto_range known[KNOWN_MAX];
	int abort;			/* a stream failed: the others stop */
	int lost;			/* ... and a reconnect may help */
	char err[AGENT_ERR_MAX];
	int fds[PROTO_STREAMS_MAX];	/* extra streams' sockets, -1 = none */
};

struct mig {
	struct agent_conn *ac;
	struct shared *sh;
	uint32_t k;		/* stream index (0 = the session's connection) */
	uint32_t nstreams;	/* streams per pass (the plan's) */
	uint32_t pass_streams;	/* this pass uses only so many (0: nstreams) */
	const struct agent_target *t;
	uint8_t *rbuf;		/* READ_MAX, aligned for O_DIRECT */
	uint8_t *zout;		/* ZOUT_MAX */
	uint64_t *diffs;	/* CMP_WINDOW * PROTO_HASH_MAX */
	struct proto_plan plan;
	struct src *s;
	uint32_t n;
	/* --flush-every is for the whole session: each of nstreams streams
	 * flushes after budget bytes of its own, so all of them together
	 * never have more than flush_every unflushed. */
	uint64_t flush_every, budget, since_flush, flush_seq, flush_acked;
	uint64_t bytes_read, bytes_sent, zero_bytes, resent, compared, changed;
	int json;
	int skip_bad;		/* --skip-bad-sectors */
	int lost;		/* the connection failed (a reconnect may help) */
	char err[AGENT_ERR_MAX];
	/* The piece being sent: disk cur_disk, [cur_a, cur_off) covered
	 * since the last FLUSH (cur_a == cur_off: nothing). */
	uint32_t cur_disk;
	uint64_t cur_a, cur_off;
	/* Pieces finished since the last FLUSH: its ranges. */
	uint32_t npend;
	struct proto_range pend[PROTO_FLUSH_RANGES];
	/* FLUSHes in flight and the ranges each one makes durable. */
	struct {
		uint64_t seq;
		uint32_t n;
		struct proto_range r[PROTO_FLUSH_RANGES];
	} ring[FLUSH_RING];
	uint32_t ring_head, ring_tail;
	/* --compress: zstd level, and whether it currently pays. */
	int zlevel;
	uint64_t z_off_until;		/* raw bytes to send before trying again */
	uint64_t z_in, z_out, z_ns;	/* this window */
	uint64_t z_total_in, z_total_out;
	uint64_t t_start_ms;
	/* Change tracking: the tracker (NULL: none) and, per disk, the dirty
	 * map this pass sends instead of comparing by hashes (NULL: compare). */
	struct track *trk;
	struct track_map *tmap[PROTO_MAX_DISKS];
	uint64_t tracked;		/* bytes this stream sent from dirty maps */
	uint64_t pass_read0;		/* bytes_read when the pass began */
	uint32_t ntracked, nhashed;	/* the pass's disks, by how */
	int unclipped;			/* send dirty ranges whole (the frozen pass) */
	/* The cutover, for the summary. */
	int have_final;
	uint64_t final_read, final_sent, final_ms, freeze_ms;
};

/* A HASHES? request: a run of disk's bytes [off, off+len). */
struct vreq {
	uint32_t disk;
	uint64_t off, len;
};

/* SIGINT/SIGTERM (stop, resume later: the signal's number) and SIGUSR1
 * (cut over after the first pass), caught from the start of a run. */
extern volatile sig_atomic_t mig_got_stop, mig_got_cutover;

/* migrate.c: sets m->err; returns -1. */
int mig_fail(struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* plan.c: the sources, the mapping, the plan, the session's identity. */
int mig_image_probe(struct src *s, uint32_t chunk, uint8_t *buf, char *err, size_t errcap);
void mig_src_free(struct src *s);
int mig_map_disks(struct mig *m, const struct proto_inventory *inv);
void mig_print_plan(struct mig *m, const char *to);
int mig_send_plan(struct mig *m, int sync_all);
int mig_load_or_start_state(struct mig *m, const struct agent_target *t, const char *dir,
			    int restart);

/* transfer.c: one pass with all streams. */
uint32_t mig_streams_for(const struct mig *m, uint32_t want);
/* The next pass compares every disk whole by hashes (a sync). */
void mig_known_all(struct mig *m);
int mig_transfer(struct mig *m);
int mig_aborted(struct mig *m);
void mig_tick(struct mig *m);

/* send.c: DATA, FLUSH and what the destination acknowledges. */
uint64_t mig_now_ns(void);
int mig_src_read(struct src *s, uint8_t *buf, size_t n, uint64_t off, char *err,
		 size_t errcap);
/* The data path's read of disk i: unreadable blocks found and, with
 * --skip-bad-sectors, read as zeros and recorded; else m->err names
 * them. 0 or -1. */
int mig_read(struct mig *m, uint32_t i, uint8_t *buf, size_t n, uint64_t off);
int mig_send_data(struct mig *m, uint16_t disk, uint8_t enc, uint64_t off, uint32_t len,
		  const uint8_t *p);
int mig_send_part(struct mig *m, uint32_t i, uint64_t from, uint64_t to);
/* What disk i's dirty map (m->tmap[i]) has in [from, to) and is used now. */
int mig_send_dirty(struct mig *m, uint32_t i, uint64_t from, uint64_t to);
int mig_send_flush(struct mig *m);
/* The current piece is covered up to end (of disk): pending for the next
 * FLUSH (sent now when the list is full). */
int mig_piece_done(struct mig *m, uint32_t disk, uint64_t end);
int mig_wait_flushed(struct mig *m);
int mig_pump(struct mig *m, int wait_ms);
void mig_flushed_to(struct mig *m, uint64_t seq);
/* Saves the state file now: 0, or -errno (logged once; sh->state_err). */
int mig_save_state(struct mig *m);

/* compare.c: hashes asked for and compared. */
int mig_hash_req(struct mig *m, const struct vreq *v, uint32_t block);
int mig_recv_hashes(struct mig *m, uint32_t disk, uint64_t off, uint32_t block,
		    uint32_t count, struct proto_hashes *h);
int mig_compare_range(struct mig *m, uint32_t i, uint64_t from, uint64_t to);

/* verify.c */
int mig_verify(struct mig *m);

/* passes.c: incremental passes and the frozen cutover, with change
 * tracking: started before anything is read (for --sync-interval and
 * --freeze), told what the first plan trusted without comparing. */
void mig_track_start(struct mig *m);
void mig_track_planned(struct mig *m);
void mig_catch_signals(void);
void mig_report_pass(struct mig *m, unsigned pass, uint64_t t0);
int mig_sync_loop(struct mig *m, unsigned interval);
int mig_final_pass(struct mig *m, unsigned timeout);

/* finish.c */
/* ip: the static setup of --adapt-ip (prefix 0: none). */
int mig_finish(struct mig *m, uint8_t handoff, uint8_t flags, const struct proto_adapt_ip *ip,
	       struct proto_report *rep);
void mig_summary(struct mig *m, const char *result, uint64_t t0, uint64_t total_size,
		 uint64_t unused);

#endif
