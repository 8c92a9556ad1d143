/*
 * track.h - block-level change tracking of the source disks without a
 * kernel module: the kernel reports every completed write to a disk as a
 * block trace event; the tracker keeps the written ranges in a bounded
 * dirty map per disk, and a pass takes the map instead of comparing every
 * chunk by hashes. Tracking is an optimization only: anything that may
 * have lost a write (events dropped, tracing unavailable, a device whose
 * I/O the trace does not show, time not covered) is reported as a gap,
 * and the caller then compares that disk by hashes as before.
 *
 * Three layers, each usable alone:
 *   the dirty map      (dirty.c)  - a two-level bitmap, bounded memory
 *   the record parser  (record.c) - trace event formats and ring-buffer
 *                                   pages as the kernel hands them out
 *   the tracer         (ftrace.c) - tracefs: an instance of our own, the
 *                                   block completion events, a reader
 */
#ifndef FERRY_TRACK_H
#define FERRY_TRACK_H

#include <stddef.h>
#include <stdint.h>

/* ---- the dirty map ----------------------------------------------------- */

/*
 * Granularity starts at TRACK_GRAIN (4 KiB). A leaf of 512 bytes holds
 * 4096 grains (16 MiB of disk at 4 KiB); the top level holds 4 bytes per
 * leaf-sized group of the disk (1 MiB per 4 TiB). When the leaves would
 * exceed the budget the whole map doubles its grain (pairs of bits merge,
 * the disk's groups halve), so memory never exceeds the budget and the
 * map only grows coarser, never loses a write. TRACK_MAP_BUDGET bounds
 * one map, top level included, up to 16 TiB; a tracked disk has two maps
 * (one being sent, one filling): at most 64 MiB per disk.
 */
#define TRACK_GRAIN	 4096u
#define TRACK_MAP_BUDGET (32u << 20)

struct track_map;

/* A map of a disk of size bytes whose memory stays within budget (bytes;
 * at least the top level and one leaf are always allowed). Allocates
 * once, here; marking never allocates. 0 or -ENOMEM/-EINVAL. */
int track_map_new(uint64_t size, size_t budget, struct track_map **out);
void track_map_free(struct track_map *m);
/* Marks [off, off+len) dirty (clipped to the disk). */
void track_map_mark(struct track_map *m, uint64_t off, uint64_t len);
/* dst |= src (maps of the same disk size). */
void track_map_merge(struct track_map *dst, const struct track_map *src);
/* Empty again, at the finest grain. */
void track_map_clear(struct track_map *m);
/* The first dirty run at or after from: 1 and [*a, *b) (grain-aligned,
 * clipped to the disk), or 0 when there is none. */
int track_map_next(const struct track_map *m, uint64_t from, uint64_t *a, uint64_t *b);
/* 1 when the byte at off is in a dirty grain. */
int track_map_test(const struct track_map *m, uint64_t off);
/* Bytes marked dirty (at the current grain). */
uint64_t track_map_dirty(const struct track_map *m);
/* The current grain in bytes (4 KiB, then 8 KiB, ... after degrading). */
uint64_t track_map_grain(const struct track_map *m);
/* Bytes of memory the map may use at most / uses now. */
size_t track_map_mem_max(const struct track_map *m);
size_t track_map_mem_used(const struct track_map *m);

/* ---- the record parser -------------------------------------------------- */

/* Where the fields of one block trace event sit in its record, from the
 * event's tracefs "format" file (they moved between kernel versions). */
struct track_evfmt {
	uint16_t id; /* common_type */
	uint16_t dev_off, sector_off, nr_off, rwbs_off, rwbs_len;
	uint16_t min_len; /* the record holds every field above */
};

/* The ring buffer's page layout, from tracefs "events/header_page". */
struct track_pagefmt {
	uint16_t commit_off, commit_len, data_off;
	uint32_t page_size; /* data_off + the data field's size */
};

/* One completed request as the trace reports it. */
struct track_io {
	uint32_t dev;	 /* kernel dev_t: major << 20 | minor */
	uint64_t sector; /* 512-byte sectors, from the whole disk's start */
	uint32_t nr;	 /* sectors */
	char op;	 /* 'W' write, 'D' discard, 'N' other (write
			    zeroes, passthrough), 'F' flush, 'R' read */
};

#define TRACK_ERR_MAX 256

int track_parse_format(const char *text, size_t len, struct track_evfmt *f, char *err,
		       size_t errcap);
int track_parse_header_page(const char *text, size_t len, struct track_pagefmt *p, char *err,
			    size_t errcap);
/*
 * Calls fn for every record of a known event (evs[0..nev)) in one page
 * read from trace_pipe_raw (len bytes). Returns 0, or -EBADMSG when the
 * page is damaged (the records before the damage were delivered); *missed
 * is set when the page says the kernel lost events before it.
 */
int track_parse_page(const struct track_pagefmt *pf, const struct track_evfmt *evs, size_t nev,
		     const uint8_t *page, size_t len,
		     void (*fn)(void *ctx, const struct track_io *io), void *ctx, int *missed);

/* ---- the tracer ---------------------------------------------------------- */

struct track;

/*
 * Starts tracking the block devices paths[0..n) (whole disks; an image
 * file or anything else is simply not tracked). Tracking of every
 * traceable disk starts before this returns, so call it before the first
 * pass reads anything. Returns 0 (see track_disk for each disk's
 * availability) or -errno with err saying why nothing can be tracked.
 */
int track_start(const char *const *paths, size_t n, struct track **out, char *err, size_t errcap);
/* Stops, removes the trace instance, frees everything. NULL is fine. */
void track_stop(struct track *t);
/* 1 when disk i is tracked, else 0 with why set ("image file", ...). */
int track_disk(const struct track *t, size_t i, char *why, size_t whycap);
/*
 * At the start of a pass: reads every event the kernel holds, then swaps
 * disk i's maps, so writes from now on land in the next map. Returns 1
 * with *map holding every write since the previous take (or since the
 * start), or 0 when it cannot be trusted (why says: events lost, ...),
 * in which case *map is still returned (it must go back with track_put)
 * and the disk must be compared by hashes in this pass.
 */
int track_take(struct track *t, size_t i, struct track_map **map, char *why, size_t whycap);
/* Marks [off, off+len) of disk i dirty in the filling map (what a pass
 * took but did not send, e.g. blocks unused now). */
void track_mark(struct track *t, size_t i, uint64_t off, uint64_t len);
/* Hands a taken map back: cleared for reuse, or, when the pass failed,
 * merged into the filling map first. */
void track_put(struct track *t, size_t i, struct track_map *map, int failed);
/* The filling map of disk i is not to be trusted (e.g. the time between
 * two runs was not covered): its next take reports a gap with why. */
void track_invalidate(struct track *t, size_t i, const char *why);
/* Events read so far and lost so far (all disks). */
void track_counts(const struct track *t, uint64_t *events, uint64_t *lost);

/* For `ferry check`: can path be tracked on this machine? 0 and a short
 * description, or -errno and why not. Starts and stops a trace. */
int track_probe(const char *path, char *why, size_t whycap);

#endif
