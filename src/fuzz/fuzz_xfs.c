/*
 * fuzz_xfs.c - libFuzzer target for the XFS reader (blockmap/xfs.c): the
 * superblock, AGF and free-space B+tree parsers and the log check, on a
 * sparse volume from the input (fuzz_vol.h). Flags bit 0 recomputes the
 * v5 CRCs of every superblock, AGF and AB3B block the pieces hold before
 * the reader runs, so mutations reach the checks behind the CRC. Besides
 * the sanitizers it checks that the reader answers only 0 or -EUCLEAN
 * with a reason. Seeds: v4 and v5 images made by mkfs.xfs, and one per
 * bad class (mkseeds-fs.py).
 */
#include <stdio.h>

#include "fuzz/fuzz_vol.h"

#define XFS_SB_MAGIC   0x58465342u
#define XFS_AGF_MAGIC  0x58414746u
#define XFS_AB3B_MAGIC 0x41423342u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t blk[65536];

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the CRC at crc_off of the len-byte block at off (as XFS stores it). */
static void fix_one(uint64_t off, size_t len, size_t crc_off, uint64_t vsize)
{
	uint32_t c;

	if (off + len > vsize || pread(fv_fd, blk, len, (off_t)off) != (ssize_t)len)
		return;
	memset(blk + crc_off, 0, 4);
	c = ~bm_crc32c(0xffffffffu, blk, len);
	blk[crc_off] = (uint8_t)c;
	blk[crc_off + 1] = (uint8_t)(c >> 8);
	blk[crc_off + 2] = (uint8_t)(c >> 16);
	blk[crc_off + 3] = (uint8_t)(c >> 24);
	(void)!pwrite(fv_fd, blk + crc_off, 4, (off_t)(off + crc_off));
}

static void fix_crcs(const uint8_t *data, size_t len, uint64_t vsize)
{
	uint32_t bs, ss;
	size_t o = 9;

	if (pread(fv_fd, blk, 512, 0) != 512 || be32(blk) != XFS_SB_MAGIC)
		return;
	bs = be32(blk + 4);
	ss = (uint32_t)(blk[102] << 8 | blk[103]);
	if (bs < 512 || bs > 65536 || (bs & (bs - 1)) || ss < 512 || ss > bs || (ss & (ss - 1)))
		return;
	while (len - o >= 6) {
		uint64_t at = (uint64_t)fv_le32(data + o) * 512, s;
		size_t n = (size_t)(data[o + 4] | data[o + 5] << 8);

		o += 6;
		if (n > len - o)
			n = len - o;
		for (s = at; s < at + n && s < vsize; s += 512) {
			uint8_t m[4];

			if (pread(fv_fd, m, 4, (off_t)s) != 4)
				break;
			if (be32(m) == XFS_SB_MAGIC)
				fix_one(s, ss, 224, vsize);
			else if (be32(m) == XFS_AGF_MAGIC)
				fix_one(s, ss, 216, vsize);
			else if (be32(m) == XFS_AB3B_MAGIC && s % bs == 0)
				fix_one(s, bs, 52, vsize);
		}
		o += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bm_seg seg;
	struct bm_vol v;
	uint8_t flags;

	if (fv_build(data, size, &v, &seg, &flags) != 0)
		return 0;
	if (flags & 1)
		fix_crcs(data, size, v.size);
	fv_run(&bm_reader_xfs, &v);
	return 0;
}
