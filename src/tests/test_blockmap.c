/*
 * test_blockmap.c - bm_probe on real disk images made by real tools
 * (sfdisk, mkfs.ext2/3/4 -d, mkswap, mkfs.vfat): GPT and DOS tables with
 * an extended partition, every identity field against blkid and sfdisk,
 * every ext partition's map against dumpe2fs's own free-block lists, swap
 * headers, unknown data, table regions, gaps; then damaged sources:
 * corrupt superblocks and descriptors, truncated images, partitions past
 * the end, EBR loops and random MBRs (ASan watches). No root needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockmap/blockmap.h"
#include "common/common.h"
#include "tests/tap.h"
#include "tests/fsimg.h"
#include "tests/shell.h"

#define SEC ((uint64_t)512)

/* Set chunks among those fully inside [lo, hi). */
static uint64_t set_inside(uint64_t lo, uint64_t hi)
{
	uint64_t i, n = 0;

	for (i = (lo + D.chunk - 1) / D.chunk; (i + 1) * D.chunk <= hi && i < D.nchunks; i++)
		n += bm_test(&D, i);
	return n;
}

/* ---- e2fsprogs' own view of a filesystem --------------------------- */

struct extv {
	uint64_t blocks, free, first;
	uint32_t bs, cluster;
	char uuid[40];
	uint8_t *freemap; /* one byte per block: simple, the images are small */
};

static void add_free(struct extv *v, char *list)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(list, ", \n", &save); tok; tok = strtok_r(NULL, ", \n", &save)) {
		unsigned long long a, b;
		uint64_t x;

		if (sscanf(tok, "%llu-%llu", &a, &b) != 2) {
			if (sscanf(tok, "%llu", &a) != 1)
				continue;
			b = a;
		}
		/* bigalloc: each number is the first block of a free cluster. */
		b += v->cluster / v->bs - 1;
		for (x = a; x <= b && x < v->blocks; x++)
			v->freemap[x] = 1;
	}
}

static int ext_view(const char *img, uint64_t off, struct extv *v)
{
	char cmd[512], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int hdr_free = 0;

	memset(v, 0, sizeof(*v));
	snprintf(cmd, sizeof(cmd), "dumpe2fs '%s?offset=%" PRIu64 "' 2>/dev/null", img, off);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long x;

		if (sscanf(line, "Block count: %llu", &x) == 1)
			v->blocks = x;
		else if (sscanf(line, "Block size: %llu", &x) == 1)
			v->bs = (uint32_t)x;
		else if (sscanf(line, "Cluster size: %llu", &x) == 1)
			v->cluster = (uint32_t)x;
		else if (sscanf(line, "First block: %llu", &x) == 1)
			v->first = x;
		else if (sscanf(line, "Free blocks: %llu", &x) == 1 && !hdr_free) {
			v->free = x;
			hdr_free = 1;
		} else if (sscanf(line, "Filesystem UUID: %39s", v->uuid) == 1) {
		} else if (strncmp(line, "  Free blocks: ", 15) == 0 && v->blocks && v->bs) {
			if (!v->cluster)
				v->cluster = v->bs;
			if (!v->freemap)
				v->freemap = calloc(v->blocks, 1);
			if (v->freemap)
				add_free(v, line + 15);
		}
	}
	free(line);
	pclose(f);
	return v->blocks && v->bs && v->freemap ? 0 : -1;
}

/*
 * The map of one ext area against dumpe2fs: the set of chunks that hold
 * an allocated block (plus the boot block and superblock at its start)
 * must be exactly the set chunks inside the area, and used_bytes their
 * size. With chunk == block size that is (blocks - free) * block size.
 */
static void check_ext(const char *img, const char *name, uint64_t start, uint64_t size,
		      uint64_t used)
{
	struct extv v;
	uint8_t *want;
	uint64_t b, i, lo, hi, alloc = 0, missing = 0, extra = 0, absent = 0, want_bytes = 0;

	if (ext_view(img, start, &v) != 0) {
		ok(0, "%s: dumpe2fs read the filesystem", name);
		return;
	}
	want = calloc(D.nchunks, 1);
	if (!want)
		return;
	lo = start / D.chunk;
	hi = (start + size + D.chunk - 1) / D.chunk;
	for (i = start / D.chunk; i <= (start + 2047) / D.chunk; i++)
		want[i] = 1;
	for (b = v.first; b < v.blocks; b++) {
		uint64_t s = start + b * v.bs;

		if (v.freemap[b])
			continue;
		alloc++;
		for (i = s / D.chunk; i <= (s + v.bs - 1) / D.chunk; i++)
			want[i] = 1;
		if (!marked(s) || !marked(s + v.bs - 1))
			missing++;
	}
	for (i = lo; i < hi; i++) {
		if (bm_test(&D, i) && !want[i])
			extra++;
		if (!bm_test(&D, i) && want[i])
			absent++;
		if (want[i])
			want_bytes += D.chunk;
	}
	ok(missing == 0,
	   "%s (chunk %u): every allocated block (%" PRIu64 " of %" PRIu64
	   ") lies in a marked chunk (%" PRIu64 " do not)",
	   name, D.chunk, alloc, v.blocks, missing);
	ok(extra == 0 && absent == 0,
	   "%s (chunk %u): marked chunks are exactly those holding allocated blocks "
	   "(%" PRIu64 " extra, %" PRIu64 " absent)",
	   name, D.chunk, extra, absent);
	is_int(used, want_bytes, "used_bytes is the size of those chunks");
	if (D.chunk == v.bs && v.cluster == v.bs && v.first == 0)
		is_int(used, (v.blocks - v.free) * v.bs,
		       "used_bytes == (block count - free blocks) * block size from dumpe2fs -h");
	free(v.freemap);
	free(want);
}

/* ---- identity against blkid and sfdisk ----------------------------- */

static void check_ids(const char *img, const struct bm_part *p)
{
	char want[128], name[64];

	snprintf(name, sizeof(name), "partition %d", p->number);
	capture(want, sizeof(want),
		"blkid -p -o value -s TYPE --offset %" PRIu64 " --size %" PRIu64 " %s", p->start,
		p->size, img);
	ok(strcmp(p->fstype, want) == 0, "%s: fstype \"%s\" is blkid's \"%s\"", name, p->fstype,
	   want);
	capture(want, sizeof(want),
		"blkid -p -o value -s UUID --offset %" PRIu64 " --size %" PRIu64 " %s", p->start,
		p->size, img);
	ok(strcmp(p->uuid, want) == 0, "%s: UUID \"%s\" is blkid's \"%s\"", name, p->uuid, want);
	capture(want, sizeof(want),
		"blkid -p -o value -s LABEL --offset %" PRIu64 " --size %" PRIu64 " %s", p->start,
		p->size, img);
	ok(strcmp(p->label, want) == 0, "%s: LABEL \"%s\" is blkid's \"%s\"", name, p->label, want);
}

struct layout {
	int number;
	uint64_t start, size; /* logical sectors, as sfdisk was told */
	const char *fstype;
	enum bm_method method;
};

static void check_layout(const char *img, const struct layout *l, size_t n)
{
	char want[128];
	size_t i;
	int dos = strcmp(D.table, "dos") == 0;

	is_int(D.nparts, n, "partition count is what sfdisk was told");
	for (i = 0; i < n; i++) {
		const struct bm_part *p = part(l[i].number);

		if (!ok(p != NULL, "partition %d found", l[i].number))
			continue;
		ok(p->start == l[i].start * D.lsec && p->size == l[i].size * D.lsec,
		   "partition %d: start %" PRIu64 " size %" PRIu64 " (want %" PRIu64 " %" PRIu64
		   ")",
		   p->number, p->start, p->size, l[i].start * D.lsec, l[i].size * D.lsec);
		ok(strcmp(p->fstype, l[i].fstype) == 0 && p->method == l[i].method,
		   "partition %d: %s, method %s (want %s, %s)", p->number, p->fstype,
		   bm_method_name(p->method), l[i].fstype, bm_method_name(l[i].method));
		capture(want, sizeof(want), "sfdisk --part-type %s %d 2>/dev/null", img, p->number);
		if (dos)
			ok(strtoul(p->parttype, NULL, 16) == strtoul(want, NULL, 16),
			   "partition %d: type %s is sfdisk's %s", p->number, p->parttype, want);
		else
			ok(strcasecmp(p->parttype, want) == 0,
			   "partition %d: type GUID %s is sfdisk's %s", p->number, p->parttype,
			   want);
		if (dos) {
			snprintf(want, sizeof(want), "%s-%02x", D.ptuuid, p->number);
		} else {
			capture(want, sizeof(want), "sfdisk --part-uuid %s %d 2>/dev/null", img,
				p->number);
		}
		ok(strcasecmp(p->partuuid, want) == 0, "partition %d: PARTUUID %s (want %s)",
		   p->number, p->partuuid, want);
		if (l[i].method != BM_TABLE)
			check_ids(img, p);
	}
}

static uint64_t sum_used(void)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < D.nparts; i++)
		n += D.parts[i].used_bytes;
	return n;
}

/* ---- images --------------------------------------------------------- */

static int make_files(void)
{
	/* Files of several sizes, a few hundred small ones: a realistic bitmap. */
	return run(
	    "set -e; cd %s; mkdir -p f1/sub f2 f3; "
	    "head -c 1500000 /dev/urandom > f1/big; head -c 300000 /dev/urandom > f1/sub/mid; "
	    "for i in $(seq 1 120); do head -c $((i * 97)) /dev/urandom > f1/sub/s$i; done; "
	    "head -c 600000 /dev/urandom > f2/a; for i in $(seq 1 40); do echo $i > f2/t$i; done; "
	    "head -c 2200000 /dev/urandom > f3/a; ln -s a f3/link; mkdir f3/empty",
	    T);
}

/* Random bytes without 0x55, so no sector of them looks like an MBR/EBR. */
static int dd_random(const char *img, uint64_t sec, uint64_t count)
{
	return run("head -c %" PRIu64 " /dev/urandom | tr '\\125' '\\124' | "
		   "dd of=%s bs=512 seek=%" PRIu64 " conv=notrunc status=none",
		   count * SEC, img, sec);
}

static int dd_file(const char *img, const char *file, uint64_t sec)
{
	return run("dd if=%s of=%s bs=512 seek=%" PRIu64 " conv=notrunc status=none", file, img,
		   sec);
}

static int mkext(const char *img, const char *mkfs, const char *opts, const char *dir, uint64_t sec,
		 uint64_t kib)
{
	return run("%s -q -F %s %s%s%s -E offset=%" PRIu64 " %s %" PRIu64 "k </dev/null", mkfs,
		   opts, dir ? "-d " : "", dir ? T : "", dir ? dir : "", sec * SEC, img, kib);
}

static void test_gpt(void)
{
	static const struct layout l[] = {
	    {1, 2048, 16384, "ext4", BM_USED},	 {2, 18432, 8192, "ext2", BM_USED},
	    {3, 26624, 4096, "swap", BM_HEADER}, {4, 30720, 8192, "vfat", BM_USED},
	    {5, 43008, 4096, "", BM_WHOLE},	 {6, 47104, 16384, "ext3", BM_USED},
	};
	static const uint32_t chunks[] = {4096, 65536, 1024 * 1024};
	char img[128], want[128];
	uint64_t nsec = 128 * MiB / SEC;
	size_t c;
	int r;

	snprintf(img, sizeof(img), "%s/gpt.img", T);
	r = run("truncate -s 128M %s && printf 'label: gpt\\n"
		"start=2048, size=16384, type=L, name=root\\n"
		"start=18432, size=8192, type=L\\n"
		"start=26624, size=4096, type=S\\n"
		"start=30720, size=8192, type=U\\n"
		"start=43008, size=4096, type=L\\n"
		"start=47104, size=16384, type=L\\n' | sfdisk -q %s",
		img, img);
	/* p1: a 6 MiB ext4 in an 8 MiB partition; p2: ext2 with 1 KiB blocks. */
	r |= mkext(img, "mkfs.ext4", "-b 4096 -L root", "/f1", 2048, 6144);
	r |= mkext(img, "mkfs.ext2", "-b 1024 -L small", "/f2", 18432, 4096);
	r |= mkext(img, "mkfs.ext3", "-b 4096", "/f3", 47104, 8192);
	r |= run("cd %s && rm -f swap.bin vfat.bin && truncate -s 2M swap.bin && "
		 "mkswap -q -L swp swap.bin && mkfs.vfat -n ESP -C vfat.bin 4096 >/dev/null",
		 T);
	snprintf(want, sizeof(want), "%s/swap.bin", T);
	r |= dd_file(img, want, 26624);
	snprintf(want, sizeof(want), "%s/vfat.bin", T);
	r |= dd_file(img, want, 30720);
	/* Random data: a gap between partitions, p5, the free tail before the backup GPT. */
	r |= dd_random(img, 38912, 4096);
	r |= dd_random(img, 43008, 4096);
	r |= dd_random(img, 63488, nsec - 63488 - 40);
	if (!ok(r == 0, "GPT image built with sfdisk, mkfs.ext2/3/4 -d, mkswap, mkfs.vfat"))
		return;

	for (c = 0; c < FERRY_ARRAY_LEN(chunks); c++) {
		uint64_t t0 = time_now_ms();

		r = probe(img, chunks[c]);
		if (!ok(r == 0, "gpt: bm_probe at %u-byte chunks (rc %d: %s)", chunks[c], r, ERR))
			continue;
		note("gpt: probed in %" PRIu64 " ms, map %" PRIu64 " bytes, %" PRIu64 " of %" PRIu64
		     " bytes to send",
		     time_now_ms() - t0, (D.nchunks + 7) / 8, D.map_bytes, D.size);
		if (c == 0) {
			ok(strcmp(D.table, "gpt") == 0 && D.method == BM_TABLE && !D.fstype[0],
			   "table \"%s\", method %s, no whole-disk signature (\"%s\")", D.table,
			   bm_method_name(D.method), D.fstype);
			capture(want, sizeof(want), "blkid -p -o value -s PTUUID %s", img);
			ok(strcasecmp(D.ptuuid, want) == 0, "PTUUID %s is blkid's %s", D.ptuuid,
			   want);
			is_int(D.lsec, 512, "an image file has 512-byte sectors");
			check_layout(img, l, FERRY_ARRAY_LEN(l));
			ok(strcmp(part(1)->label, "root") == 0 &&
			       strcmp(part(3)->label, "swp") == 0,
			   "labels: ext4 \"%s\", swap \"%s\"", part(1)->label, part(3)->label);
			is_int(part(3)->used_bytes, 4096, "swap: exactly its 4 KiB header");
			ok(marked(26624 * SEC) && set_inside(26624 * SEC + 4096, 30720 * SEC) == 0,
			   "swap: the header chunk marked, nothing after it");
			is_int(D.map_bytes, sum_used() + MiB + 5 * 4096,
			       "map_bytes = partitions + 1 MiB boot area + backup GPT (5 chunks)");
		}
		check_ext(img, "gpt p1 ext4 6 MiB in 8 MiB", 2048 * SEC, 16384 * SEC,
			  part(1)->used_bytes);
		ok(set_inside(2048 * SEC + 6 * MiB, 18432 * SEC) == 0,
		   "p1: nothing past the filesystem's end is marked");
		check_ext(img, "gpt p2 ext2 1 KiB blocks", 18432 * SEC, 8192 * SEC,
			  part(2)->used_bytes);
		check_ext(img, "gpt p6 ext3", 47104 * SEC, 16384 * SEC, part(6)->used_bytes);
		ok(part(5)->used_bytes == part(5)->size &&
		       set_inside(43008 * SEC, 47104 * SEC) == 4096 * SEC / D.chunk,
		   "unknown data: sent whole");
		ok(marked(30720 * SEC) && part(4)->used_bytes < part(4)->size / 2,
		   "the empty vfat: its boot sector and FATs, not its free clusters "
		   "(%" PRIu64 " of %" PRIu64 " bytes)",
		   part(4)->used_bytes, part(4)->size);
		ok(marked(0) && marked(33 * SEC) && marked(MiB - 1),
		   "protective MBR, primary GPT header and array, boot gap marked");
		ok(marked(D.size - 33 * SEC) && marked(D.size - 1),
		   "backup GPT array and header (last 33 sectors) marked");
		ok(set_inside(38912 * SEC, 43008 * SEC) == 0,
		   "random bytes between partitions: not marked");
		ok(set_inside(63488 * SEC, D.size - 33 * SEC) == 0,
		   "free space before the backup GPT: not marked");
		bm_free(&D);
	}
}

/* Sectors of the extended container, outside its logicals, that end in 55 AA. */
static size_t find_ebrs(const char *img, uint64_t ex, uint64_t exlen, const struct layout *lg,
			size_t nlg, uint64_t *out, size_t cap)
{
	uint8_t sec[512];
	uint64_t s;
	size_t n = 0, j;
	int fd = open(img, O_RDONLY);

	if (fd < 0)
		return 0;
	for (s = ex; s < ex + exlen; s++) {
		int inside = 0;

		for (j = 0; j < nlg; j++)
			inside |= s >= lg[j].start && s < lg[j].start + lg[j].size;
		if (inside || pread(fd, sec, 512, (off_t)(s * SEC)) != 512)
			continue;
		if (sec[510] == 0x55 && sec[511] == 0xaa && n < cap)
			out[n++] = s;
	}
	close(fd);
	return n;
}

static void test_dos(void)
{
	static const struct layout l[] = {
	    {1, 2048, 16384, "ext4", BM_USED},	{2, 18432, 32768, "", BM_TABLE},
	    {3, 51200, 16384, "ext4", BM_USED}, {4, 67584, 4096, "", BM_WHOLE},
	    {5, 20480, 12288, "ext3", BM_USED}, {6, 34816, 8192, "swap", BM_HEADER},
	};
	static const uint32_t chunks[] = {4096, 65536};
	char img[128], want[128];
	uint64_t ebr[8];
	size_t c, i, nebr;
	int r;

	snprintf(img, sizeof(img), "%s/dos.img", T);
	r = run("truncate -s 64M %s && printf 'label: dos\\n"
		"start=2048, size=16384, type=83\\n"
		"start=18432, size=32768, type=5\\n"
		"start=51200, size=16384, type=83\\n"
		"start=67584, size=4096, type=da\\n"
		"start=20480, size=12288, type=83\\n"
		"start=34816, size=8192, type=82\\n' | sfdisk -q %s",
		img, img);
	r |= mkext(img, "mkfs.ext4", "-b 4096", "/f3", 2048, 8192);
	/* 1 KiB blocks: at 4 KiB, 6 MiB is too small for mke2fs to add a journal. */
	r |= mkext(img, "mkfs.ext3", "-b 1024", "/f2", 20480, 6144);
	r |= mkext(img, "mkfs.ext4", "-b 4096 -O bigalloc -C 16384", "/f1", 51200, 8192);
	r |= run("cd %s && rm -f swap4.bin && truncate -s 4M swap4.bin && mkswap -q swap4.bin", T);
	snprintf(want, sizeof(want), "%s/swap4.bin", T);
	r |= dd_file(img, want, 34816);
	r |= dd_random(img, 67584, 4096);
	/* Junk in the extended container between the EBRs and logicals. */
	r |= dd_random(img, 18432 + 8, 2000);
	r |= dd_random(img, 32768 + 8, 2000);
	r |= dd_random(img, 71680, 131072 - 71680);
	if (!ok(r == 0, "DOS image built: ext4, extended with ext3 + swap logicals, bigalloc "
			"ext4, unknown data"))
		return;
	nebr = find_ebrs(img, 18432, 32768, l + 4, 2, ebr, FERRY_ARRAY_LEN(ebr));
	ok(nebr == 2, "sfdisk wrote 2 EBRs (at %" PRIu64 " and %" PRIu64 ")", ebr[0],
	   nebr > 1 ? ebr[1] : 0);

	for (c = 0; c < FERRY_ARRAY_LEN(chunks); c++) {
		uint64_t ebr_bytes = 0;

		r = probe(img, chunks[c]);
		if (!ok(r == 0, "dos: bm_probe at %u-byte chunks (rc %d: %s)", chunks[c], r, ERR))
			continue;
		if (c == 0) {
			ok(strcmp(D.table, "dos") == 0 && D.method == BM_TABLE && !D.fstype[0],
			   "table \"%s\", method %s", D.table, bm_method_name(D.method));
			capture(want, sizeof(want), "blkid -p -o value -s PTUUID %s", img);
			ok(strcmp(D.ptuuid, want) == 0, "PTUUID %s is blkid's %s", D.ptuuid, want);
			check_layout(img, l, FERRY_ARRAY_LEN(l));
			is_int(part(6)->used_bytes, 4096, "swap logical: exactly its header");
		}
		for (i = 0; i < nebr; i++) {
			ok(marked(ebr[i] * SEC), "EBR at sector %" PRIu64 " marked", ebr[i]);
			ebr_bytes += D.chunk;
		}
		ok(set_inside(18432 * SEC, 20480 * SEC) + set_inside(32768 * SEC, 34816 * SEC) ==
		       nebr,
		   "extended container: only the EBR chunks, not the junk after them");
		is_int(part(2)->used_bytes, ebr_bytes, "extended container used_bytes = its EBRs");
		ok(marked(0) && set_inside(0, MiB) == MiB / D.chunk,
		   "MBR and the boot gap up to partition 1 marked");
		check_ext(img, "dos p1 ext4", 2048 * SEC, 16384 * SEC, part(1)->used_bytes);
		check_ext(img, "dos p5 ext3 (logical)", 20480 * SEC, 12288 * SEC,
			  part(5)->used_bytes);
		check_ext(img, "dos p3 ext4 bigalloc 16 KiB clusters", 51200 * SEC, 16384 * SEC,
			  part(3)->used_bytes);
		ok(set_inside(71680 * SEC, D.size) == 0,
		   "space after the last partition: not marked");
		is_int(D.map_bytes, sum_used() + MiB,
		       "map_bytes = partitions + EBRs + 1 MiB boot area");
		bm_free(&D);
	}
}

static void test_bare(void)
{
	char img[128], want[128];
	int r;

	snprintf(img, sizeof(img), "%s/bare.img", T);
	r = run("rm -f %s && mkfs.ext4 -q -F -b 4096 -L bare -d %s/f1 %s 24M </dev/null >/dev/null",
		img, T, img);
	if (!ok(r == 0, "ext4 on a whole disk (no table) built"))
		return;
	r = probe(img, 4096);
	if (!ok(r == 0, "bare ext4: bm_probe (rc %d: %s)", r, ERR))
		return;
	capture(want, sizeof(want), "blkid -p -o value -s UUID %s", img);
	ok(!D.table[0] && D.nparts == 0 && strcmp(D.fstype, "ext4") == 0 &&
	       strcmp(D.uuid, want) == 0 && strcmp(D.label, "bare") == 0,
	   "no table, ext4 UUID %s (blkid %s), label \"%s\"", D.uuid, want, D.label);
	is_int(D.method, BM_USED, "bare ext4 mapped by its bitmaps");
	check_ext(img, "bare ext4", 0, D.size, D.map_bytes);
	bm_free(&D);

	/* Swap on a whole disk: the header only. */
	snprintf(img, sizeof(img), "%s/bareswap.img", T);
	r = run("rm -f %s && truncate -s 8M %s && mkswap -q %s", img, img, img);
	r |= probe(img, 4096);
	ok(r == 0 && D.method == BM_HEADER && D.map_bytes == 4096,
	   "bare swap: header method, 4096 bytes (%s, %" PRIu64 ")", bm_method_name(D.method),
	   D.map_bytes);
	bm_free(&D);
}

/* Patches a little-endian u32 into the image at off. */
static int poke32(const char *img, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	int fd = open(img, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pwrite(fd, b, 4, (off_t)off);
	close(fd);
	return n == 4 ? 0 : -1;
}

static void test_corrupt(void)
{
	/* Superblock at 1024: s_blocks_count +4, s_log_block_size +24, s_blocks_per_group +32,
	 * s_inodes_per_group +40. */
	static const struct {
		const char *name, *mkfs_opt;
		uint64_t off;
		uint32_t val;
		int whole;
	} cases[] = {
	    {"block size 2^40 (s_log_block_size 30)", "-O ^metadata_csum", 1024 + 24, 30, 1},
	    {"block count 10x the partition", "-O ^metadata_csum", 1024 + 4, 20480, 1},
	    {"s_blocks_per_group 0", "-O ^metadata_csum", 1024 + 32, 0, 1},
	    {"s_inodes_per_group 0xffffffff", "-O ^metadata_csum", 1024 + 40, 0xffffffffu, 1},
	    /* Group descriptor 0 at block 1: bg_block_bitmap beyond the filesystem. */
	    {"block bitmap of group 0 outside the fs", "-O ^metadata_csum,^64bit,^uninit_bg", 4096,
	     0x00ffffffu, 1},
	    {"bad superblock checksum, unmounted", "", 1024 + 120, 0x41414141u, 1},
	};
	char img[128];
	size_t i;
	int r;

	snprintf(img, sizeof(img), "%s/corrupt.img", T);
	for (i = 0; i < FERRY_ARRAY_LEN(cases); i++) {
		r = run(
		    "rm -f %s && mkfs.ext4 -q -F -b 4096 %s -d %s/f2 %s 8M </dev/null >/dev/null",
		    img, cases[i].mkfs_opt, T, img);
		r |= poke32(img, cases[i].off, cases[i].val);
		if (!ok(r == 0, "corrupt image: %s", cases[i].name))
			continue;
		r = probe(img, 4096);
		ok(r == 0 && D.method == BM_WHOLE && D.map_bytes == D.size &&
		       strstr(LOG, "could not be read") && strstr(LOG, "sending it whole") &&
		       strstr(LOG, img),
		   "%s: falls back to whole, warns naming the disk (rc %d, %s)", cases[i].name, r,
		   bm_method_name(D.method));
		bm_free(&D);
	}

	/*
	 * Mounted-looking (needs_recovery) with a stale superblock checksum:
	 * checksums race with a live kernel, so the bitmaps are used anyway.
	 */
	r = run("rm -f %s && mkfs.ext4 -q -F -b 4096 -d %s/f2 %s 32M </dev/null >/dev/null && "
		"debugfs -w -R 'feature needs_recovery' %s >/dev/null 2>&1",
		img, T, img, img);
	r |= poke32(img, 1024 + 120, 0x41414141u); /* s_volume_name */
	if (ok(r == 0, "live-looking ext4 with a stale superblock checksum built")) {
		r = probe(img, 4096);
		ok(r == 0 && strcmp(D.fstype, "ext4") == 0 && D.method == BM_USED &&
		       D.map_bytes < D.size / 2,
		   "needs_recovery + bad checksum: still mapped by its bitmaps (rc %d, %s, %s)", r,
		   D.fstype, bm_method_name(D.method));
		bm_free(&D);
	}
}

static void test_truncated(void)
{
	char img[128];
	const struct bm_part *p;
	int r;

	/* A DOS table made for 32 MiB on a disk cut to 16 MiB. */
	snprintf(img, sizeof(img), "%s/cut.img", T);
	r = run("rm -f %s && truncate -s 32M %s && printf 'label: dos\\n"
		"start=2048, size=16384, type=83\\nstart=18432, size=22528, type=83\\n"
		"start=45056, size=8192, type=83\\n' | sfdisk -q %s",
		img, img, img);
	r |= mkext(img, "mkfs.ext4", "-b 4096", "/f2", 2048, 8192);
	r |= mkext(img, "mkfs.ext4", "-b 4096", NULL, 18432, 11264);
	r |= run("truncate -s 16M %s", img);
	if (ok(r == 0, "DOS image cut below its partitions built")) {
		r = probe(img, 4096);
		ok(r == 0, "cut: bm_probe succeeds (rc %d: %s)", r, ERR);
		p = part(2);
		ok(p && p->size == 16 * MiB - 18432 * SEC && p->method == BM_WHOLE &&
		       p->used_bytes == p->size,
		   "partition 2 clipped to the disk, its ext4 (now too big) sent whole");
		p = part(3);
		ok(p && p->size == 0 && p->used_bytes == 0,
		   "partition 3 starts past the end: empty");
		ok(strstr(LOG, "runs past the end") && strstr(LOG, "past the end of the disk"),
		   "both warned about");
		p = part(1);
		ok(p && p->method == BM_USED, "partition 1 still mapped by its bitmaps");
		ok(D.map_bytes <= D.size, "map_bytes within the disk");
		bm_free(&D);
	}

	/* A GPT disk cut in half: both headers now disagree with the size. */
	snprintf(img, sizeof(img), "%s/gptcut.img", T);
	r = run("rm -f %s && truncate -s 64M %s && printf 'label: gpt\\n,8M\\n,\\n' | sfdisk -q %s "
		"&& truncate -s 20M %s",
		img, img, img, img);
	r |= probe(img, 4096);
	ok(r == 0 && D.nparts == 0 && D.method == BM_WHOLE && D.map_bytes == D.size,
	   "GPT cut short: no partitions trusted, sent whole (table \"%s\", rc %d)", D.table, r);
	bm_free(&D);

	/* Tiny and odd sources. */
	snprintf(img, sizeof(img), "%s/tiny.img", T);
	run("head -c 1000 /dev/urandom > %s", img);
	r = probe(img, 0);
	ok(r == 0 && D.chunk == BM_CHUNK_DEFAULT && D.nchunks == 1 && D.map_bytes == 1000 &&
	       D.method == BM_WHOLE,
	   "1000-byte image: one chunk, 1000 bytes, whole (rc %d)", r);
	bm_free(&D);
	run(": > %s", img);
	r = probe(img, 0);
	ok(r == -EINVAL && strstr(ERR, img) && D.map == NULL, "empty image refused: %s", ERR);
	snprintf(img, sizeof(img), "%s/nonexistent.img", T);
	r = probe(img, 0);
	ok(r == -ENOENT && strstr(ERR, img), "missing image: -ENOENT, \"%s\"", ERR);
	r = probe(T, 0);
	ok(r == -EINVAL && strstr(ERR, "not a block device"), "a directory refused: %s", ERR);
	snprintf(img, sizeof(img), "%s/tiny.img", T);
	run("head -c 5000 /dev/urandom > %s", img);
	r = probe(img, 1000);
	ok(r == -EINVAL && strstr(ERR, "chunk"), "chunk 1000 refused: %s", ERR);
	r = probe(img, 8192 + 4096);
	ok(r == -EINVAL, "chunk 12288 (not a power of two) refused");

	snprintf(img, sizeof(img), "%s/huge.img", T);
	if (run("truncate -s 3T %s 2>/dev/null", img) == 0) {
		r = probe(img, 4096);
		ok(r == -EFBIG && strstr(ERR, "use larger chunks") && D.map == NULL,
		   "3 TiB at 4 KiB chunks (96 MiB map) refused: %s", ERR);
		r = probe(img, 0);
		ok(r == 0 && D.method == BM_WHOLE,
		   "3 TiB sparse at 64 KiB chunks: %" PRIu64 " map bytes", (D.nchunks + 7) / 8);
		bm_free(&D);
		run("rm -f %s", img);
	} else {
		skip("cannot make a 3 TiB sparse file here");
	}
}

/* An EBR whose link points back at itself; then random MBRs. */
static void test_hostile_tables(void)
{
	static const struct layout lg[] = {{5, 6144, 2048, "", BM_WHOLE},
					   {6, 10240, 2048, "", BM_WHOLE}};
	char img[128];
	uint64_t ebr[4];
	uint8_t mbr[512];
	size_t n;
	int r, i, fd, bad = 0;

	snprintf(img, sizeof(img), "%s/loop.img", T);
	r = run(
	    "rm -f %s && truncate -s 8M %s && printf 'label: dos\\n"
	    "start=2048, size=2048, type=83\\nstart=4096, size=12288, type=5\\n"
	    "start=6144, size=2048, type=83\\nstart=10240, size=2048, type=83\\n' | sfdisk -q %s",
	    img, img, img);
	n = find_ebrs(img, 4096, 12288, lg, 2, ebr, 4);
	if (ok(r == 0 && n == 2, "DOS image with 2 logicals built")) {
		/* EBR 2's link entry: type 05, start = its own offset in the container. */
		r = poke32(img, ebr[1] * SEC + 446 + 16 + 4, 0x05);
		r |= poke32(img, ebr[1] * SEC + 446 + 16 + 8, (uint32_t)(ebr[1] - 4096));
		r |= poke32(img, ebr[1] * SEC + 446 + 16 + 12, 4096);
		ok(r == 0, "EBR link looped back to itself");
		r = probe(img, 4096);
		ok(r == 0 && marked(ebr[0] * SEC) && marked(ebr[1] * SEC),
		   "EBR loop: probe ends, both EBRs marked (rc %d, %zu parts)", r, D.nparts);
		bm_free(&D);
	}

	/* Random primary entries (and links) over a small disk: no crash, no overrun. */
	srand(7);
	QUIET = 1;
	snprintf(img, sizeof(img), "%s/rand.img", T);
	for (i = 0; i < 60; i++) {
		int k;

		run("rm -f %s && truncate -s 4M %s", img, img);
		for (k = 0; k < 446; k++)
			mbr[k] = 0;
		for (k = 446; k < 510; k++)
			mbr[k] = (uint8_t)rand();
		for (k = 0; k < 4; k++) {
			mbr[446 + 16 * k] = (rand() & 1) ? 0x80 : 0; /* keep blkid interested */
			if (rand() % 3 == 0)
				mbr[446 + 16 * k + 4] = 0x05;
			if (rand() % 2) {
				uint32_t s = (uint32_t)(rand() % 12000),
					 l = (uint32_t)(rand() % 12000);

				memcpy(mbr + 446 + 16 * k + 8, &s, 4);
				memcpy(mbr + 446 + 16 * k + 12, &l, 4);
			}
		}
		mbr[510] = 0x55;
		mbr[511] = 0xaa;
		fd = open(img, O_WRONLY);
		if (fd < 0 || pwrite(fd, mbr, 512, 0) != 512)
			bad++;
		/* An EBR-looking sector where some of them point. */
		if (fd >= 0 && pwrite(fd, mbr, 512, (off_t)((rand() % 8000) * SEC)) != 512)
			bad++;
		if (fd >= 0)
			close(fd);
		r = probe(img, 4096);
		if (r != 0 || D.map_bytes > D.size || D.nparts > BM_MAX_PARTS)
			bad++;
		bm_free(&D);
	}
	QUIET = 0;
	is_int(bad, 0, "60 random MBRs: every probe succeeds within bounds");
}

/*
 * 4096-byte logical sectors, as on 4Kn disks: a loop device with
 * --sector-size 4096 (root only). GPT LBAs, EBR links and the backup GPT
 * (5 LBAs here, not 33 sectors) are all in 4 KiB units.
 */
static void test_4kn(void)
{
	static const struct layout gl[] = {{1, 256, 2048, "ext4", BM_USED},
					   {2, 2304, 2048, "", BM_WHOLE}};
	static const struct layout dl[] = {{1, 256, 2048, "ext4", BM_USED},
					   {2, 2304, 4096, "", BM_TABLE},
					   {5, 2560, 1024, "ext4", BM_USED},
					   {6, 3840, 512, "swap", BM_HEADER}};
	char img[128], dev[64], swp[128];
	uint64_t ebr[4];
	size_t n;
	int r;

	if (geteuid() != 0) {
		skip("4Kn loop device: needs root");
		return;
	}
	snprintf(img, sizeof(img), "%s/4kn.img", T);
	snprintf(swp, sizeof(swp), "%s/swap4k.bin", T);
	run("rm -f %s && truncate -s 64M %s", img, img);
	if (capture(dev, sizeof(dev), "losetup -b 4096 -f --show %s 2>/dev/null", img) != 0 ||
	    strncmp(dev, "/dev/loop", 9) != 0) {
		skip("4Kn loop device: losetup -b 4096 failed");
		return;
	}
	r = run("printf 'label: gpt\nstart=256, size=2048\nstart=2304, size=2048\n' | "
		"sfdisk -q %s 2>/dev/null; sfdisk -d %s >/dev/null",
		dev, dev);
	r |= run("mkfs.ext4 -q -F -d %s/f2 -E offset=%" PRIu64 " %s 8M </dev/null", T,
		 (uint64_t)256 * 4096, dev);
	if (ok(r == 0, "4Kn GPT on %s built", dev)) {
		r = probe(dev, 4096);
		ok(r == 0 && D.lsec == 4096 && strcmp(D.table, "gpt") == 0 && D.size == 64 * MiB,
		   "4Kn: block device sized by ioctl, sector %u, table %s (rc %d: %s)", D.lsec,
		   D.table, r, ERR);
		if (r == 0) {
			check_layout(dev, gl, 2);
			check_ext(dev, "4Kn gpt p1 ext4", 256 * 4096, 2048 * 4096,
				  part(1)->used_bytes);
			ok(marked(D.size - 4096) && marked(D.size - 5 * 4096) &&
			       !marked(D.size - 6 * 4096) && marked(4096) && marked(2 * 4096),
			   "4Kn: both GPT headers and arrays (4 KiB LBAs) marked, nothing before "
			   "the backup");
		}
		bm_free(&D);
	}
	r = run(
	    "printf 'label: dos\nstart=256, size=2048, type=83\n"
	    "start=2304, size=4096, type=5\nstart=2560, size=1024, type=83\n"
	    "start=3840, size=512, type=82\n' | sfdisk -q %s 2>/dev/null; sfdisk -d %s >/dev/null",
	    dev, dev);
	r |= run("mkfs.ext4 -q -F -d %s/f2 -E offset=%" PRIu64 " %s 8M </dev/null", T,
		 (uint64_t)256 * 4096, dev);
	r |= run("mkfs.ext4 -q -F -E offset=%" PRIu64 " %s 4M </dev/null", (uint64_t)2560 * 4096,
		 dev);
	r |= run("rm -f %s && truncate -s 2M %s && mkswap -q %s && dd if=%s of=%s bs=4096 "
		 "seek=3840 conv=notrunc status=none",
		 swp, swp, swp, swp, dev);
	if (ok(r == 0, "4Kn DOS with an extended partition on %s built", dev)) {
		r = probe(dev, 4096);
		ok(r == 0 && D.lsec == 4096 && strcmp(D.table, "dos") == 0,
		   "4Kn dos probed (rc %d: %s)", r, ERR);
		if (r == 0) {
			check_layout(dev, dl, 4);
			/* EBRs are 4 KiB sectors: sfdisk puts them 1 MiB before each logical. */
			n = 0;
			ebr[n++] = 2304 * 4096;
			ebr[n++] = (3840 - 256) * 4096;
			ok(marked(ebr[0]) && marked(ebr[1]) && part(2)->used_bytes == 2 * 4096,
			   "4Kn: both EBRs (4 KiB sectors) marked, container used %" PRIu64,
			   part(2)->used_bytes);
			check_ext(dev, "4Kn dos p5 ext4 (logical)", 2560 * 4096, 1024 * 4096,
				  part(5)->used_bytes);
		}
		bm_free(&D);
	}
	run("sync; losetup -d %s", dev);
}

/*
 * The whole disk's page cache is not the partition's: with /dev/loopA
 * (the disk) held open, blocks a mounted ext4 wrote through /dev/loopB
 * (its partition) stay stale in loopA's cache. A second probe must still
 * see the new allocations (root only: loop devices and mount).
 */
static void test_stale_cache(void)
{
	char img[128], mnt[128], a[64], b[64];
	uint64_t before = 0;
	int r, hold = -1, mounted = 0;

	if (geteuid() != 0) {
		skip("page cache of a held-open disk: needs root");
		return;
	}
	snprintf(img, sizeof(img), "%s/stale.img", T);
	snprintf(mnt, sizeof(mnt), "%s/mnt", T);
	r = run("rm -f %s && truncate -s 64M %s && printf 'label: gpt\n,\n' | sfdisk -q %s && "
		"mkdir -p %s",
		img, img, img, mnt);
	r |= capture(a, sizeof(a), "losetup -f --show %s 2>/dev/null", img);
	if (r || strncmp(a, "/dev/loop", 9) != 0) {
		skip("page cache of a held-open disk: losetup failed");
		return;
	}
	if (capture(b, sizeof(b), "losetup -f --show -o %" PRIu64 " --sizelimit %" PRIu64 " %s",
		    MiB, 60 * MiB, img) != 0 ||
	    strncmp(b, "/dev/loop", 9) != 0) {
		skip("page cache of a held-open disk: second losetup failed");
		b[0] = 0;
		goto out;
	}
	if (run("mkfs.ext4 -q -F %s </dev/null && mount -t ext4 %s %s 2>/dev/null", b, b, mnt)) {
		skip("page cache of a held-open disk: cannot mount ext4 here");
		goto out;
	}
	mounted = 1;
	hold = open(a, O_RDONLY); /* as the agent holds its source open across passes */
	r = probe(a, 4096);
	if (r == 0 && part(1))
		before = part(1)->used_bytes;
	bm_free(&D);
	r |= run("head -c 8M /dev/urandom > %s/new && sync", mnt);
	r |= probe(a, 4096);
	ok(r == 0 && part(1) && part(1)->method == BM_USED &&
	       part(1)->used_bytes >= before + 8 * MiB,
	   "mounted ext4, disk held open: 8 MiB written through the partition is seen "
	   "(%" PRIu64 " -> %" PRIu64 " bytes)",
	   before, part(1) ? part(1)->used_bytes : 0);
	bm_free(&D);
out:
	if (hold >= 0)
		close(hold);
	if (mounted)
		run("umount %s", mnt);
	if (b[0])
		run("losetup -d %s", b);
	run("losetup -d %s", a);
}

/* FERRY_BLOCKMAP_BIG=1: 4 GiB sparse disk, 1.4 GiB of files in its ext4. */
static void test_big(void)
{
	char img[128];
	uint64_t t0;
	int r;

	if (!getenv("FERRY_BLOCKMAP_BIG")) {
		skip("4 GiB / 1.4 GiB-used timing: set FERRY_BLOCKMAP_BIG=1 (about a minute)");
		return;
	}
	snprintf(img, sizeof(img), "%s/big.img", T);
	r = run("set -e; cd %s; mkdir -p big; for i in $(seq 1 14); do "
		"head -c 100000000 /dev/urandom > big/f$i; done; for i in $(seq 1 2000); do "
		"echo $i > big/s$i; done; truncate -s 4G big.img; "
		"printf 'label: gpt\\n,512M\\n,\\n' | sfdisk -q big.img; "
		"mkfs.ext4 -q -F -d big -E offset=%" PRIu64 " big.img %" PRIu64 "k </dev/null",
		T, 512 * MiB + MiB, (4096 * MiB - 512 * MiB - 2 * MiB) / 1024);
	if (!ok(r == 0, "4 GiB image with ~1.4 GiB of files built"))
		return;
	t0 = time_now_ms();
	r = probe(img, 0);
	note("4 GiB disk, 1.4 GiB used ext4: probe %" PRIu64 " ms, map %" PRIu64 " bytes, %" PRIu64
	     " MiB to send",
	     time_now_ms() - t0, (D.nchunks + 7) / 8, D.map_bytes / MiB);
	ok(r == 0 && part(2) && part(2)->method == BM_USED, "big: ext4 mapped by its bitmaps");
	check_ext(img, "big ext4", part(2)->start, part(2)->size, part(2)->used_bytes);
	bm_free(&D);
	run("rm -rf %s/big %s", T, img);
}

int main(void)
{
	static const char *const tools[] = {"sfdisk",	 "mkfs.ext4", "mkfs.ext2",
					    "mkfs.ext3", "dumpe2fs",  "debugfs",
					    "blkid",	 "mkswap",    "mkfs.vfat"};
	size_t i;

	log_init("test_blockmap", LOG_LVL_INFO);
	for (i = 0; i < FERRY_ARRAY_LEN(tools); i++) {
		if (run("PATH=$PATH:/sbin:/usr/sbin command -v %s >/dev/null", tools[i]) != 0) {
			char why[96];

			snprintf(why, sizeof(why), "%s not installed: no images can be made",
				 tools[i]);
			skip(why);
			return tap_done();
		}
	}
	snprintf(T, sizeof(T), "%s/ferry-bm-XXXXXX",
		 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 40 ? getenv("TMPDIR") : "/tmp");
	if (!ok(mkdtemp(T) != NULL, "temp dir") || !ok(make_files() == 0, "test files written"))
		return tap_done();

	test_gpt();
	test_dos();
	test_bare();
	test_corrupt();
	test_truncated();
	test_hostile_tables();
	test_4kn();
	test_stale_cache();
	test_big();

	run("rm -rf %s", T);
	return tap_done();
}
