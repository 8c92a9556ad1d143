/*
 * test_track.c - the dirty map and the trace record parser. The map is
 * checked against a plain reference bitmap: exact while the budget holds,
 * a superset (never a lost write) within the budget once it degrades, and
 * empty again after a clear. The parser reads pages built here the way
 * the kernel's ring buffer lays them out, and refuses damaged ones. As
 * root, the tracer runs for real on a loop device: exactly the written
 * and discarded ranges come back, reads do not, a partition's writes map
 * to the partition's offsets, an image file is not tracked, and a kernel
 * buffer too small to hold the writes is reported as a gap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/blkpg.h>
#include <linux/fs.h>

#include "tests/tap.h"
#include "track/track.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The runs of m as "a-b,..." (KiB) for messages. */
static const char *runs(const struct track_map *m, char *buf, size_t cap)
{
	uint64_t a, b, at = 0;
	size_t n = 0;

	buf[0] = 0;
	while (n + 40 < cap && track_map_next(m, at, &a, &b)) {
		n += (size_t)snprintf(buf + n, cap - n, "%s%llu-%llu", n ? "," : "",
				      (unsigned long long)(a >> 10), (unsigned long long)(b >> 10));
		at = b;
	}
	return buf;
}

static void basics(void)
{
	struct track_map *m;
	uint64_t a = 0, b = 0;
	char buf[256];

	ok(track_map_new(0, TRACK_MAP_BUDGET, &m) == -EINVAL, "a disk of 0 bytes is refused");
	if (!ok(track_map_new(GiB + 1000, TRACK_MAP_BUDGET, &m) == 0, "a map of 1 GiB + 1000"))
		return;
	ok(!track_map_next(m, 0, &a, &b), "a new map is clean");
	track_map_mark(m, 100, 10);
	ok(track_map_next(m, 0, &a, &b) && a == 0 && b == 4096,
	   "10 bytes at 100 dirty the first 4 KiB grain (%s)", runs(m, buf, sizeof(buf)));
	track_map_mark(m, 4096, 4096);
	track_map_mark(m, 12288, 8192);
	ok(track_map_next(m, 0, &a, &b) && a == 0 && b == 8192 && track_map_next(m, b, &a, &b) &&
	       a == 12288 && b == 20480 && !track_map_next(m, b, &a, &b),
	   "adjacent marks coalesce into runs, a gap stays (%s)", runs(m, buf, sizeof(buf)));
	track_map_mark(m, 8192, 4096);
	ok(track_map_next(m, 0, &a, &b) && a == 0 && b == 20480 && !track_map_next(m, b, &a, &b),
	   "filling the gap joins the runs (%s)", runs(m, buf, sizeof(buf)));
	ok(track_map_next(m, 5000, &a, &b) && a == 5000 && b == 20480,
	   "a run is clipped to where the search starts");
	/* The disk's end: a grain past it is not reported past the size. */
	track_map_mark(m, GiB + 500, 1ull << 40);
	ok(track_map_next(m, GiB, &a, &b) && a == GiB && b == GiB + 1000,
	   "a mark past the end is clipped to the disk");
	track_map_mark(m, GiB + 1000, 5);
	track_map_mark(m, 2 * GiB, 5);
	is_int(track_map_dirty(m), 20480 + 1000, "dirty bytes count what was marked, clipped");
	/* A whole 16 MiB group costs no leaf. */
	{
		size_t before = track_map_mem_used(m);

		track_map_mark(m, 64 * MiB, 32 * MiB);
		is_int(track_map_mem_used(m), before, "whole groups are marked without a leaf");
		ok(track_map_test(m, 64 * MiB) && track_map_test(m, 96 * MiB - 1) &&
		       !track_map_test(m, 96 * MiB) && !track_map_test(m, 64 * MiB - 1),
		   "a 32 MiB mark covers exactly its range");
	}
	/* Filling a group grain by grain turns it into a whole group. */
	{
		uint64_t off;
		size_t before;

		for (off = 128 * MiB; off < 144 * MiB; off += 4096)
			track_map_mark(m, off, 4096);
		ok(track_map_next(m, 100 * MiB, &a, &b) && a == 128 * MiB && b == 144 * MiB,
		   "16 MiB written 4 KiB at a time is one run");
		before = track_map_mem_used(m);
		track_map_mark(m, 200 * MiB, 4096);
		is_int(track_map_mem_used(m), before,
		       "the leaf of a group that filled up is given back and reused");
	}
	track_map_clear(m);
	ok(!track_map_next(m, 0, &a, &b) && track_map_grain(m) == TRACK_GRAIN,
	   "clear: clean again, at 4 KiB");
	track_map_mark(m, 7 * 4096, 1);
	ok(track_map_next(m, 0, &a, &b) && a == 7 * 4096 && b == 8 * 4096,
	   "marks after a clear work as on a new map");
	track_map_free(m);
}

/* Random marks against a reference bitmap of 4 KiB grains. */
static void against_reference(uint64_t size, size_t budget, int rounds, const char *name)
{
	uint64_t grains = (size + 4095) / 4096, i, a, b, at;
	uint8_t *ref = calloc((size_t)grains, 1);
	struct track_map *m;
	int lost = 0, extra = 0, r;

	if (!ref || track_map_new(size, budget, &m)) {
		ok(0, "%s: setup", name);
		free(ref);
		return;
	}
	for (r = 0; r < rounds; r++) {
		/* Mostly small writes, some large, clustered like a filesystem's. */
		uint64_t off = (rnd() % 8 == 0) ? rnd() % size
						: (rnd() % 4) * (size / 4) + rnd() % (size / 64);
		uint64_t len = rnd() % 16 == 0 ? rnd() % (8 * MiB) : 1 + rnd() % 65536;

		if (off >= size)
			continue;
		track_map_mark(m, off, len);
		for (i = off / 4096; i < grains && i * 4096 < off + len; i++)
			ref[i] = 1;
	}
	for (i = 0; i < grains; i++) {
		int t = track_map_test(m, i * 4096);

		lost += ref[i] && !t;
		extra += !ref[i] && t;
	}
	/* The runs say the same as the point tests. */
	{
		uint64_t sum = 0, pts = 0;

		for (at = 0; track_map_next(m, at, &a, &b); at = b)
			sum += b - a;
		for (i = 0; i < grains; i++)
			pts += track_map_test(m, i * 4096)
				   ? ((i + 1) * 4096 > size ? size - i * 4096 : 4096)
				   : 0;
		is_int(sum, pts, "runs and point tests agree");
	}
	is_int(lost, 0, name);
	if (track_map_grain(m) == TRACK_GRAIN)
		is_int(extra, 0, "at 4 KiB the map is exact");
	else
		ok(1, "degraded to %llu KiB grains: %d extra 4 KiB grains, none lost",
		   (unsigned long long)(track_map_grain(m) >> 10), extra);
	ok(track_map_mem_used(m) <= track_map_mem_max(m) && track_map_mem_max(m) <= budget + 4096,
	   "memory %zu used, %zu at most, budget %zu", track_map_mem_used(m), track_map_mem_max(m),
	   budget);
	note("%s: grain %llu KiB, %llu dirty bytes, memory %zu of %zu", name,
	     (unsigned long long)(track_map_grain(m) >> 10), (unsigned long long)track_map_dirty(m),
	     track_map_mem_used(m), track_map_mem_max(m));
	track_map_clear(m);
	ok(!track_map_next(m, 0, &a, &b) && track_map_grain(m) == TRACK_GRAIN,
	   "cleared after degrading: clean, back to 4 KiB");
	track_map_free(m);
	free(ref);
}

static void degradation(void)
{
	struct track_map *m;
	uint64_t a, b, G, size = 4 * GiB;
	/* The top (256 groups, 1 KiB) and 16 leaves. */
	size_t budget = 1024 + 16 * 520 + 200;
	int all = 1;

	if (!ok(track_map_new(size, budget, &m) == 0, "a 4 GiB map with 16 leaves"))
		return;
	for (G = 0; G < 256; G++)
		track_map_mark(m, G * 16 * MiB + (G % 7) * 4096 * 17, 4096);
	ok(track_map_grain(m) > TRACK_GRAIN,
	   "one write in each of 256 groups: the grain grew to "
	   "%llu KiB",
	   (unsigned long long)(track_map_grain(m) >> 10));
	for (G = 0; G < 256; G++)
		all &= track_map_test(m, G * 16 * MiB + (G % 7) * 4096 * 17);
	ok(all, "every write is still dirty after degrading");
	ok(track_map_mem_used(m) <= budget, "memory %zu within the budget %zu",
	   track_map_mem_used(m), budget);
	ok(track_map_dirty(m) < size, "coarser, not everything: %llu MiB of 4096 dirty",
	   (unsigned long long)(track_map_dirty(m) >> 20));
	track_map_clear(m);
	ok(!track_map_next(m, 0, &a, &b), "clear after degrading");
	track_map_free(m);

	against_reference(256 * MiB + 12345, TRACK_MAP_BUDGET, 2000,
			  "256 MiB, ample budget: none lost");
	against_reference(GiB, 1024 + 8 * 520, 3000, "1 GiB, 8 leaves: none lost");
	against_reference(3 * GiB + 4096 * 3, 4096 + 40 * 520, 5000, "3 GiB, 40 leaves: none lost");
}

static void merge_and_big(void)
{
	struct track_map *x, *y, *big;
	uint64_t a, b;

	if (track_map_new(GiB, TRACK_MAP_BUDGET, &x) || track_map_new(GiB, TRACK_MAP_BUDGET, &y)) {
		ok(0, "merge setup");
		return;
	}
	track_map_mark(x, 0, 4096);
	track_map_mark(y, 8192, 4096);
	track_map_mark(y, 512 * MiB, 32 * MiB);
	track_map_merge(x, y);
	ok(track_map_test(x, 0) && track_map_test(x, 8192) && !track_map_test(x, 4096) &&
	       track_map_test(x, 530 * MiB) && track_map_dirty(x) == 8192 + 32 * MiB,
	   "merge: dst gets src's runs and keeps its own");
	track_map_free(x);
	track_map_free(y);

	/* 16 TiB: the stated bound, and the map works at its far end. */
	if (!ok(track_map_new(16ull << 40, TRACK_MAP_BUDGET, &big) == 0, "a 16 TiB map"))
		return;
	ok(track_map_mem_max(big) <= TRACK_MAP_BUDGET,
	   "16 TiB: at most %zu bytes per map (%u MiB budget), two maps per disk <= 64 MiB",
	   track_map_mem_max(big), TRACK_MAP_BUDGET >> 20);
	is_int(track_map_grain(big), TRACK_GRAIN, "16 TiB starts at 4 KiB grains");
	track_map_mark(big, (16ull << 40) - 4096, 4096);
	track_map_mark(big, 5ull << 40, 1);
	ok(track_map_next(big, 0, &a, &b) && a == 5ull << 40 && b == (5ull << 40) + 4096 &&
	       track_map_next(big, b, &a, &b) && a == (16ull << 40) - 4096 && b == 16ull << 40,
	   "16 TiB: marks at 5 TiB and at the last grain");
	track_map_free(big);
}

/* ---- the record parser -------------------------------------------------- */

static const char fmt_rq[] =
    "name: block_rq_complete\n"
    "ID: 2107\n"
    "format:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\n"
    "\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;\n"
    "\tfield:sector_t sector;\toffset:16;\tsize:8;\tsigned:0;\n"
    "\tfield:unsigned int nr_sector;\toffset:24;\tsize:4;\tsigned:0;\n"
    "\tfield:int error;\toffset:28;\tsize:4;\tsigned:1;\n"
    "\tfield:unsigned short ioprio;\toffset:32;\tsize:2;\tsigned:0;\n"
    "\tfield:char rwbs[10];\toffset:34;\tsize:10;\tsigned:0;\n"
    "\tfield:__data_loc char[] cmd;\toffset:44;\tsize:4;\tsigned:0;\n"
    "\n"
    "print fmt: \"%d,%d %s\", REC->dev\n";

static const char fmt_hdr[] = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
			      "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
			      "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
			      "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n";

struct got {
	struct track_io io[16];
	int n;
};

static void collect(void *ctx, const struct track_io *io)
{
	struct got *g = ctx;

	if (g->n < 16)
		g->io[g->n] = *io;
	g->n++;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A data event of the rq format at p (type_len from its length): bytes. */
static size_t put_event(uint8_t *p, uint32_t dev, uint64_t sector, uint32_t nr, const char *rwbs)
{
	uint8_t rec[48] = {0};
	uint16_t id = 2107;

	memcpy(rec, &id, 2);
	memcpy(rec + 8, &dev, 4);
	memcpy(rec + 16, &sector, 8);
	memcpy(rec + 24, &nr, 4);
	memcpy(rec + 34, rwbs, strlen(rwbs));
	put32(p, (48 / 4) | (5u << 5)); /* type_len 12, time_delta 5 */
	memcpy(p + 4, rec, 48);
	return 52;
}

static void parser(void)
{
	struct track_evfmt ev;
	struct track_pagefmt pf;
	char err[TRACK_ERR_MAX];
	static uint8_t page[4096];
	struct got g;
	size_t o;
	int missed, r;
	uint64_t len;

	if (!ok(track_parse_format(fmt_rq, sizeof(fmt_rq) - 1, &ev, err, sizeof(err)) == 0,
		"the 6.x block_rq_complete format parses (%s)", err))
		return;
	ok(ev.id == 2107 && ev.dev_off == 8 && ev.sector_off == 16 && ev.nr_off == 24 &&
	       ev.rwbs_off == 34 && ev.rwbs_len == 10 && ev.min_len == 44,
	   "its fields: id, dev, sector, nr_sector, rwbs");
	{
		char bad[sizeof(fmt_rq)];

		memcpy(bad, fmt_rq, sizeof(fmt_rq));
		*strstr(bad, "size:8") = 'x';
		ok(track_parse_format(bad, sizeof(bad) - 1, &ev, err, sizeof(err)) < 0,
		   "a sector field without a size is refused: %s", err);
		memcpy(bad, fmt_rq, sizeof(fmt_rq));
		memcpy(strstr(bad, "size:8"), "size:4", 6);
		ok(track_parse_format(bad, sizeof(bad) - 1, &ev, err, sizeof(err)) < 0,
		   "a 4-byte sector is refused: %s", err);
		ok(track_parse_format("name: x\n", 8, &ev, err, sizeof(err)) < 0,
		   "a format without fields is refused: %s", err);
	}
	track_parse_format(fmt_rq, sizeof(fmt_rq) - 1, &ev, err, sizeof(err));
	if (!ok(track_parse_header_page(fmt_hdr, sizeof(fmt_hdr) - 1, &pf, err, sizeof(err)) == 0 &&
		    pf.commit_off == 8 && pf.commit_len == 8 && pf.data_off == 16 &&
		    pf.page_size == 4096,
		"header_page: commit at 8 (8 bytes), data at 16, 4 KiB pages (%s)", err))
		return;

	memset(page, 0, sizeof(page));
	o = 16;
	o += put_event(page + o, 7 << 20, 2088, 8, "WS");
	put32(page + o, 30 | (1u << 5)); /* a time extend */
	o += 8;
	o += put_event(page + o, 7 << 20, 100, 0, "FF");
	/* A discarded event (padding with a length). */
	put32(page + o, 29 | (1u << 5));
	put32(page + o + 4, 12);
	o += 16;
	o += put_event(page + o, 7 << 20, 4096, 128, "DS");
	len = o - 16;
	memcpy(page + 8, &len, 8);
	g.n = 0;
	missed = 0;
	r = track_parse_page(&pf, &ev, 1, page, sizeof(page), collect, &g, &missed);
	ok(r == 0 && g.n == 3 && !missed,
	   "a page of three events, a time extend and padding "
	   "(r %d, %d events)",
	   r, g.n);
	ok(g.n >= 3 && g.io[0].dev == 7u << 20 && g.io[0].sector == 2088 && g.io[0].nr == 8 &&
	       g.io[0].op == 'W' && g.io[1].op == 'F' && g.io[2].op == 'D' && g.io[2].nr == 128,
	   "their dev, sector, sectors and operation");
	/* The flag of lost events. */
	len |= 1ull << 31;
	memcpy(page + 8, &len, 8);
	g.n = 0;
	r = track_parse_page(&pf, &ev, 1, page, sizeof(page), collect, &g, &missed);
	ok(r == 0 && missed, "a page flagged 'missed events' says so");
	/* Damage: a length past the page, an event running past the data. */
	len = 5000;
	memcpy(page + 8, &len, 8);
	ok(track_parse_page(&pf, &ev, 1, page, sizeof(page), collect, &g, &missed) == -EBADMSG,
	   "a commit length past the page is refused");
	len = o - 16 - 20;
	memcpy(page + 8, &len, 8);
	g.n = 0;
	ok(track_parse_page(&pf, &ev, 1, page, sizeof(page), collect, &g, &missed) == -EBADMSG &&
	       g.n == 2,
	   "an event cut by the commit length: damage, after the events before it");
	len = o - 16;
	memcpy(page + 8, &len, 8);
	put32(page + 16, 0); /* type_len 0: the length follows */
	put32(page + 20, 2); /* shorter than its own length word */
	ok(track_parse_page(&pf, &ev, 1, page, sizeof(page), collect, &g, &missed) == -EBADMSG,
	   "a long event shorter than its header is refused");
	ok(track_parse_page(&pf, &ev, 1, page, 10, collect, &g, &missed) == -EBADMSG,
	   "a read shorter than the page header is refused");
}

/* ---- the tracer on a real loop device ------------------------------------ */

static char loopdev[64], img[] = "/tmp/ferry-test-track.XXXXXX";

static int sh(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	int r;

	if (!f)
		return -1;
	if (out) {
		out[0] = 0;
		if (fgets(out, (int)cap, f))
			out[strcspn(out, "\n")] = 0;
	}
	r = pclose(f);
	return r;
}

/* The runs of a taken map, as a string like the one expected. */
static int expect_runs(struct track *t, size_t i, const char *want, const char *name)
{
	struct track_map *m;
	char why[TRACK_ERR_MAX], got[512];
	int good = track_take(t, i, &m, why, sizeof(why));

	if (!m) {
		ok(0, "%s: no map (%s)", name, why);
		return 0;
	}
	runs(m, got, sizeof(got));
	ok(good == 1 && !strcmp(got, want), "%s: %s%s%s (want %s)", name, got,
	   good ? "" : "; gap: ", good ? "" : why, want);
	track_put(t, i, m, 0);
	return good;
}

static void wr(int fd, uint64_t off, size_t len)
{
	static uint8_t buf[1 << 20] __attribute__((aligned(4096)));

	memset(buf, 0x5a, len);
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		note("pwrite at %llu: %s", (unsigned long long)off, strerror(errno));
}

static void live(void)
{
	struct track *t;
	const char *paths[2];
	char why[TRACK_ERR_MAX], cmd[200], part[80];
	int fd, ifd, pfd;
	uint64_t range[2];
	struct blkpg_partition bp = {.start = 4 << 20, .length = 16 << 20, .pno = 1};
	struct blkpg_ioctl_arg ba = {.op = BLKPG_ADD_PARTITION, .datalen = sizeof(bp), .data = &bp};
	uint8_t rb[65536] __attribute__((aligned(4096)));

	if (geteuid() != 0) {
		skip("tracking a loop device needs root");
		return;
	}
	ifd = mkstemp(img);
	if (ifd < 0 || ftruncate(ifd, 64 << 20)) {
		skip("no temporary image");
		return;
	}
	close(ifd);
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", img);
	if (sh(cmd, loopdev, sizeof(loopdev)) || !loopdev[0]) {
		skip("no loop device");
		unlink(img);
		return;
	}
	paths[0] = loopdev;
	paths[1] = img;
	if (track_start(paths, 2, &t, why, sizeof(why)) || !track_disk(t, 0, why, sizeof(why))) {
		note("not tracked: %s", why);
		skip("block tracing unavailable on this kernel");
		goto out;
	}
	ok(!track_disk(t, 1, why, sizeof(why)) && strstr(why, "image file"),
	   "an image file is not tracked: %s", why);
	fd = open(loopdev, O_RDWR | O_DIRECT);
	expect_runs(t, 0, "", "nothing written: an empty map");
	wr(fd, 1 << 20, 4096);
	wr(fd, 10 << 20, 65536);
	range[0] = 20 << 20;
	range[1] = 1 << 20;
	ok(ioctl(fd, BLKDISCARD, range) == 0, "discard 1 MiB at 20 MiB");
	if (pread(fd, rb, sizeof(rb), 30 << 20) != (ssize_t)sizeof(rb))
		note("pread: %s", strerror(errno));
	fsync(fd);
	expect_runs(t, 0, "1024-1028,10240-10304,20480-21504",
		    "two writes and a discard, not the read");
	wr(fd, 40 << 20, 8192);
	{
		/* A write during a "pass" lands in the next map. */
		struct track_map *m;

		track_take(t, 0, &m, why, sizeof(why));
		wr(fd, 50 << 20, 4096);
		ok(m && track_map_test(m, 40 << 20) && !track_map_test(m, 50 << 20),
		   "taking swaps the maps: a later write is not in the taken one");
		track_put(t, 0, m, 1);
		expect_runs(t, 0, "40960-40968,51200-51204",
			    "a failed pass gives its map back to the next one");
	}
	track_mark(t, 0, 60 << 20, 1);
	expect_runs(t, 0, "61440-61444", "track_mark: what a pass did not send stays dirty");
	track_invalidate(t, 0, "test: not covered");
	{
		struct track_map *m;
		int good = track_take(t, 0, &m, why, sizeof(why));

		ok(good == 0 && strstr(why, "not covered"), "an invalidated map is a gap: %s", why);
		track_put(t, 0, m, 0);
	}
	expect_runs(t, 0, "", "after a gap, the next map is trusted again");
	track_stop(t);

	/* A partition: its writes come back at the partition's offsets. */
	snprintf(part, sizeof(part), "%sp1", loopdev);
	if (ioctl(fd, BLKPG, &ba) == 0 && access(part, F_OK) == 0) {
		paths[0] = part;
		if (track_start(paths, 1, &t, why, sizeof(why)) == 0 &&
		    track_disk(t, 0, why, sizeof(why))) {
			pfd = open(part, O_RDWR | O_DIRECT);
			wr(pfd, 8192, 4096);		     /* through the partition */
			wr(fd, (4 << 20) + (1 << 20), 4096); /* through the whole disk */
			wr(fd, 1 << 20, 4096);		     /* before the partition */
			close(pfd);
			expect_runs(t, 0, "8-12,1024-1028",
				    "partition at 4 MiB: writes at its offsets 8 KiB and 1 MiB");
		} else {
			ok(0, "tracking the partition %s: %s", part, why);
		}
		track_stop(t);
		bp.start = bp.length = 0;
		ba.op = BLKPG_DEL_PARTITION;
		ioctl(fd, BLKPG, &ba);
	} else {
		skip("cannot add a partition to the loop device (BLKPG)");
	}

	/* A buffer too small and nobody reading: the loss is a gap. */
	setenv("FERRY_TRACK_BUFFER_KB", "4", 1);
	setenv("FERRY_TRACK_READER", "0", 1);
	paths[0] = loopdev;
	if (track_start(paths, 1, &t, why, sizeof(why)) == 0 &&
	    track_disk(t, 0, why, sizeof(why))) {
		struct track_map *m;
		int k, good;
		uint64_t ev, lost;

		for (k = 0; k < 2000; k++)
			wr(fd, (uint64_t)(k % 4000) * 8192, 4096);
		good = track_take(t, 0, &m, why, sizeof(why));
		track_counts(t, &ev, &lost);
		ok(good == 0 && strstr(why, "lost"),
		   "2000 writes into a 4 KiB buffer: a gap (%s; "
		   "%llu events read)",
		   why, (unsigned long long)ev);
		track_put(t, 0, m, 0);
		wr(fd, 1 << 20, 4096);
		expect_runs(t, 0, "1024-1028", "the map after the gap is trusted again");
	} else {
		ok(0, "tracker with a tiny buffer: %s", why);
	}
	track_stop(t);
	unsetenv("FERRY_TRACK_BUFFER_KB");
	unsetenv("FERRY_TRACK_READER");
	close(fd);
out:
	snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
	sh(cmd, NULL, 0);
	unlink(img);
}

int main(void)
{
	basics();
	degradation();
	merge_and_big();
	parser();
	live();
	return tap_done();
}
