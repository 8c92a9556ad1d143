/*
 * fuzz_vol.h - what the filesystem reader targets (fuzz_xfs.c,
 * fuzz_fat.c) share: a sparse volume built from the input, so a seed can
 * hold the few metadata blocks of a real 32 MiB filesystem instead of all
 * of it. Input: a flags byte, the volume size as 8 little-endian bytes
 * (clipped to 64 MiB), then pieces: a 512-byte sector number (u32 LE), a
 * length (u16 LE) and that many bytes. The volume is a memfd (zeros
 * where no piece lies) read through the real bm_vol, and the map a real
 * bm_disk. Seeds: src/fuzz/corpus/mkseeds-fs.py (xfs, fat), mkseeds-vol.py (lvm, btrfs).
 */
#ifndef FERRY_FUZZ_VOL_H
#define FERRY_FUZZ_VOL_H

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blockmap/reader.h"

#define FV_MAX	 (64u << 20)
#define FV_CHUNK 65536u

static struct bm_disk fv_disk; /* large: not on the stack */
static uint8_t fv_map[FV_MAX / FV_CHUNK / 8];
static int fv_fd = -1;

static uint32_t fv_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Builds the volume from data; calls fix(fd, size) (may be NULL) to make
 * checksums right when flags bit 0 asks. 0, or -1 for an input too short.
 */
static int fv_build(const uint8_t *data, size_t len, struct bm_vol *v, struct bm_seg *seg,
		    uint8_t *flags)
{
	uint64_t size;
	size_t o = 9;

	if (len < 9)
		return -1;
	if (fv_fd < 0 && (fv_fd = memfd_create("fuzz-vol", 0)) < 0)
		abort();
	*flags = data[0];
	size = fv_le32(data + 1) | (uint64_t)fv_le32(data + 5) << 32;
	if (size < 4096 || size > FV_MAX)
		size = size < 4096 ? 4096 : FV_MAX;
	size &= ~(uint64_t)511;
	if (ftruncate(fv_fd, 0) || ftruncate(fv_fd, (off_t)size))
		abort();
	while (len - o >= 6) {
		uint64_t at = (uint64_t)fv_le32(data + o) * 512;
		size_t n = (size_t)(data[o + 4] | data[o + 5] << 8);

		o += 6;
		if (n > len - o)
			n = len - o;
		if (at < size && n)
			(void)!pwrite(fv_fd, data + o, at + n > size ? (size_t)(size - at) : n,
				      (off_t)at);
		o += n;
	}
	memset(&fv_disk, 0, sizeof(fv_disk));
	memset(fv_map, 0, sizeof(fv_map));
	snprintf(fv_disk.path, sizeof(fv_disk.path), "fuzz");
	fv_disk.size = size;
	fv_disk.chunk = FV_CHUNK;
	fv_disk.nchunks = (size + FV_CHUNK - 1) / FV_CHUNK;
	fv_disk.map = fv_map;
	bm_vol_linear(v, seg, fv_fd, 0, size, NULL, "fuzz volume");
	return 0;
}

/* A reader answers 0, "cannot be trusted" with a reason, or no memory; nothing else. */
static void fv_run(const struct bm_reader *rd, const struct bm_vol *v)
{
	char why[BM_WHY_MAX] = "";
	int r = rd->mark(&fv_disk, v, why, sizeof(why));

	if (r != 0 && r != -EUCLEAN && r != -ENOMEM)
		abort();
	if (r == -EUCLEAN && !why[0])
		abort();
	/* FUZZ_VOL_SAY=1: what each input got (to check that a bad seed hits its class). */
	if (getenv("FUZZ_VOL_SAY"))
		fprintf(stderr, "fuzz_vol: %d %s (%llu bytes marked)\n", r, why,
			(unsigned long long)bm_count(&fv_disk, 0, fv_disk.size));
}

#endif
