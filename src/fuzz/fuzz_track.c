/*
 * fuzz_track.c - libFuzzer target for the change tracker's parsers and
 * its dirty map. The first byte chooses:
 *   0: an event "format" text   1: a "header_page" text
 *   2: a trace_pipe_raw page, read with the block_rq_complete format of a
 *      6.x kernel and 4 KiB pages (what the kernel hands out is still
 *      bounds-checked: every event must lie inside the page)
 *   3: a list of marks (8-byte offset, 4-byte length) on a small map with
 *      a tiny budget, checked against a reference: never a lost write,
 *      memory within the bound, runs that agree with point tests
 * Seeds: corpus/track (a real format, header_page and page from a 6.18
 * kernel, and a mark list).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "track/track.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct track_pagefmt pf = {
    .commit_off = 8, .commit_len = 8, .data_off = 16, .page_size = 4096};
static const struct track_evfmt ev = {.id = 2107,
				      .dev_off = 8,
				      .sector_off = 16,
				      .nr_off = 24,
				      .rwbs_off = 34,
				      .rwbs_len = 10,
				      .min_len = 44};

static uint64_t sum;

static void sink(void *ctx, const struct track_io *io)
{
	(void)ctx;
	sum += io->sector + io->nr + (uint64_t)io->op + io->dev;
}

#define MAP_SIZE (64ull << 20) + 12345
#define GRAINS	 ((MAP_SIZE + 4095) / 4096)

static void marks(const uint8_t *p, size_t n)
{
	static uint8_t ref[GRAINS];
	struct track_map *m;
	uint64_t g, a, b, at, runs = 0, pts = 0;

	/* The top (4 groups) and 2 leaves: degrading is the normal case. */
	if (track_map_new(MAP_SIZE, 64 + 2 * 520, &m))
		abort();
	memset(ref, 0, sizeof(ref));
	for (; n >= 12; p += 12, n -= 12) {
		uint64_t off;
		uint32_t len;

		memcpy(&off, p, 8);
		memcpy(&len, p + 8, 4);
		off %= MAP_SIZE + 8192; /* sometimes past the end */
		if (len == 0xffffffffu) {
			track_map_clear(m);
			memset(ref, 0, sizeof(ref));
			continue;
		}
		track_map_mark(m, off, len);
		/* Only bytes inside the disk count: a grain past its end is not one. */
		for (g = off / 4096; len && off < MAP_SIZE && g < GRAINS && g * 4096 < off + len;
		     g++)
			ref[g] = 1;
	}
	for (g = 0; g < GRAINS; g++) {
		int t = track_map_test(m, g * 4096);

		if (ref[g] && !t)
			abort(); /* a lost write */
		pts += t ? ((g + 1) * 4096 > MAP_SIZE ? MAP_SIZE - g * 4096 : 4096) : 0;
	}
	for (at = 0; track_map_next(m, at, &a, &b); at = b) {
		if (a < at || b <= a || b > MAP_SIZE)
			abort();
		runs += b - a;
	}
	if (runs != pts || runs != track_map_dirty(m) ||
	    track_map_mem_used(m) > track_map_mem_max(m))
		abort();
	track_map_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[TRACK_ERR_MAX];
	struct track_evfmt f;
	struct track_pagefmt p;
	int missed;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (track_parse_format((const char *)data + 1, size - 1, &f, err, sizeof(err)) ==
			0 &&
		    (f.dev_off + 4u > f.min_len || f.sector_off + 8u > f.min_len ||
		     f.nr_off + 4u > f.min_len || f.rwbs_off + (unsigned)f.rwbs_len > f.min_len))
			abort(); /* a format whose fields lie past its records */
		break;
	case 1:
		if (track_parse_header_page((const char *)data + 1, size - 1, &p, err,
					    sizeof(err)) == 0 &&
		    (p.commit_off + p.commit_len > p.data_off || p.page_size <= p.data_off))
			abort();
		break;
	case 2: {
		/* A heap copy of exactly the input: ASan sees any read past it. */
		uint8_t *page = malloc(size - 1 ? size - 1 : 1);

		memcpy(page, data + 1, size - 1);
		track_parse_page(&pf, &ev, 1, page, size - 1, sink, NULL, &missed);
		free(page);
		break;
	}
	case 3: marks(data + 1, size - 1); break;
	}
	return 0;
}
