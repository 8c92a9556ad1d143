/*
 * fuzz_btrfs_node.c - the btrfs parsers on arbitrary bytes. Input: one
 * flags byte, then the block. Bit 0: a superblock (bm_btrfs_sb, then
 * its sys_chunk_array); else a tree block of 4, 16 or 64 KiB (bits 1-2)
 * through bm_btrfs_node, and a leaf's CHUNK_ITEMs into a chunk map whose
 * extents are then marked. Bit 3 makes the checksum right first, so
 * mutations reach the checks behind it. Besides the sanitizers it checks
 * that nothing is marked or read outside the 1 GiB device.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/btrfs.h"

#define DEV_BYTES (1ull << 30)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t blk[BTRFS_NODE_MAX];

static void mark(void *ctx, uint64_t off, uint64_t len)
{
	(void)ctx;
	if (off > DEV_BYTES || len > DEV_BYTES - off)
		abort();
}

static int rd(void *ctx, void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	if (off > DEV_BYTES || len > DEV_BYTES - off)
		abort();
	memset(buf, 0, len);
	return 0;
}

static void fix_csum(uint8_t *b, size_t len)
{
	uint32_t c = ~bm_btrfs_crc32c(~0u, b + 32, len - 32);

	b[0] = (uint8_t)c;
	b[1] = (uint8_t)(c >> 8);
	b[2] = (uint8_t)(c >> 16);
	b[3] = (uint8_t)(c >> 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[4] = {4096, 16384, 65536, 16384};
	static struct btrfs_sb sb;
	struct btrfs_map m = {1, DEV_BYTES, NULL, 0, 0};
	struct btrfs_io io = {rd, mark, NULL, DEV_BYTES};
	uint32_t ns, i, n;
	char why[256];
	uint8_t f;

	if (size < 1)
		return 0;
	f = data[0];
	ns = (f & 1) ? BTRFS_SB_LEN : sizes[(f >> 1) & 3];
	memset(blk, 0, sizeof(blk));
	memcpy(blk, data + 1, size - 1 < ns ? size - 1 : ns);
	if (f & 8)
		fix_csum(blk, ns);
	if (f & 1) {
		if (bm_btrfs_sb(blk, DEV_BYTES, &sb, why, sizeof(why)) == 0 &&
		    bm_btrfs_sys_array(&sb, &m, why, sizeof(why)) == 0) {
			for (i = 0; i < m.n; i++)
				bm_btrfs_mark_extent(&m, &io, m.c[i].logical, m.c[i].length, why,
						     sizeof(why));
			bm_btrfs_mark_chunks(&m, &io, 1, &(struct btrfs_stats){0});
		}
		bm_btrfs_map_free(&m);
		return 0;
	}
	/* The tree block's own fsid and bytenr: the checks behind them are the target. */
	memset(&sb, 0, sizeof(sb));
	memcpy(sb.fsid, blk + 0x20, 16);
	sb.nodesize = ns;
	sb.sectorsize = 4096;
	if (bm_btrfs_node(blk, &sb,
			  (uint64_t)blk[0x30] | (uint64_t)blk[0x31] << 8 |
			      (uint64_t)blk[0x32] << 16 | (uint64_t)blk[0x33] << 24 |
			      (uint64_t)blk[0x34] << 32 | (uint64_t)blk[0x35] << 40 |
			      (uint64_t)blk[0x36] << 48 | (uint64_t)blk[0x37] << 56,
			  -1, why, sizeof(why)))
		return 0;
	if (blk[0x64] != 0)
		return 0;
	n = (uint32_t)blk[0x60] | (uint32_t)blk[0x61] << 8 | (uint32_t)blk[0x62] << 16 |
	    (uint32_t)blk[0x63] << 24;
	for (i = 0; i < n; i++) {
		struct btrfs_key k;
		const uint8_t *d;
		uint32_t len;

		bm_btrfs_item(blk, i, &k, &d, &len);
		if (d < blk + BTRFS_HDR_LEN || d + len > blk + ns)
			abort();
		if (k.type == BTRFS_CHUNK_ITEM)
			bm_btrfs_add_chunk(&m, k.offset, d, len, why, sizeof(why));
		else if (k.type == BTRFS_EXTENT_ITEM || k.type == BTRFS_METADATA_ITEM)
			bm_btrfs_mark_extent(&m, &io, k.objectid,
					     k.type == BTRFS_EXTENT_ITEM ? k.offset : ns, why,
					     sizeof(why));
	}
	bm_btrfs_mark_chunks(&m, &io, 1, &(struct btrfs_stats){0});
	bm_btrfs_map_free(&m);
	return 0;
}
