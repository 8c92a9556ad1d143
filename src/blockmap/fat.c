/*
 * fat.c - the FAT12/16/32 reader (EFI system partitions, boot areas,
 * small data volumes). Sent: the reserved sectors (boot sector, FSInfo,
 * the backup boot sector), every FAT copy, the FAT12/16 root directory,
 * and each cluster the FAT marks as not free. The FAT is read from the
 * copy the filesystem uses (the first, or FAT32's active one when
 * mirroring is off); every BPB field is bounded against the others and
 * the volume before use, so a bad one sends the volume whole instead.
 * There is no GETFSMAP for FAT: a mounted one is read as of the last
 * sync, like the others on disk. It never writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "blockmap/reader.h"
#include "common/common.h"

/* Linux's rule (fs/fat): more than 4084 clusters is FAT16. */
#define FAT12_MAX_CLUSTERS 4084u
#define FAT32_MAX_CLUSTERS 0x0ffffff5u
/* FAT bytes read per pread: a multiple of 4 (and 3, for FAT12 pairs). */
#define FAT_BUF 12288u

struct bpb {
	uint32_t bps, spc, reserved, nfats, root_ents, total, fatsz, root_clus;
	uint16_t ext_flags;
	uint8_t media;
	int bits; /* 12, 16 or 32 */
	uint64_t data_start, clusters, fat_off;
};

static int is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

static int read_bpb(const struct bm_vol *v, struct bpb *b, char *why, size_t whycap)
{
	uint8_t s[512];
	struct cur c;
	uint16_t bps, res, roots, tot16, fat16, flags = 0;
	uint8_t jmp, spc, nfats, media;
	uint32_t tot32, fat32 = 0, rootc = 0, active;
	uint64_t fat_bytes, need, root_sec;
	int r;

	if (v->size < sizeof(s))
		return bm_why(why, whycap, "the volume is only %" PRIu64 " bytes", v->size);
	r = bm_vol_read(v, s, sizeof(s), 0);
	if (r)
		return r;
	cur_init(&c, s, sizeof(s));
	cur_u8(&c, &jmp);
	cur_skip(&c, 10); /* rest of the jump, OEM name */
	cur_le16(&c, &bps);
	cur_u8(&c, &spc);
	cur_le16(&c, &res);
	cur_u8(&c, &nfats);
	cur_le16(&c, &roots);
	cur_le16(&c, &tot16);
	cur_u8(&c, &media);
	cur_le16(&c, &fat16);
	cur_skip(&c, 2 + 2 + 4); /* geometry, hidden sectors */
	cur_le32(&c, &tot32);
	if (fat16 == 0) {
		cur_le32(&c, &fat32);
		cur_le16(&c, &flags);
		cur_skip(&c, 2); /* version */
		cur_le32(&c, &rootc);
	}
	if (c.err)
		return bm_why(why, whycap, "boot sector cut short");
	if ((jmp != 0xeb && jmp != 0xe9) || s[510] != 0x55 || s[511] != 0xaa)
		return bm_why(why, whycap, "no boot sector signature (jump 0x%02x, %02x%02x)", jmp,
			      s[510], s[511]);
	if (!is_pow2(bps) || bps < 512 || bps > 4096)
		return bm_why(why, whycap, "%u bytes per sector", bps);
	if (!is_pow2(spc) || (uint32_t)spc * bps > 65536)
		return bm_why(why, whycap, "%u sectors per cluster of %u bytes", spc, bps);
	if (res == 0 || nfats == 0 || nfats > 4)
		return bm_why(why, whycap, "%u reserved sectors, %u FATs", res, nfats);
	b->bps = bps;
	b->spc = spc;
	b->reserved = res;
	b->nfats = nfats;
	b->root_ents = roots;
	b->media = media;
	b->total = tot16 ? tot16 : tot32;
	b->fatsz = fat16 ? fat16 : fat32;
	b->ext_flags = flags;
	b->root_clus = rootc;
	if (b->total == 0 || (uint64_t)b->total * bps > v->size)
		return bm_why(why, whycap,
			      "%u sectors of %u bytes on a volume of %" PRIu64 " bytes", b->total,
			      bps, v->size);
	if (b->fatsz == 0)
		return bm_why(why, whycap, "FAT size 0");
	/* FAT32 has no fixed root directory; FAT12/16 must have one. */
	if ((fat16 == 0) != (roots == 0))
		return bm_why(why, whycap, "%u root entries with a %s FAT size field", roots,
			      fat16 ? "16-bit" : "32-bit");
	root_sec = ((uint64_t)roots * 32 + bps - 1) / bps;
	b->data_start = (uint64_t)res + (uint64_t)nfats * b->fatsz + root_sec;
	if (b->data_start >= b->total)
		return bm_why(why, whycap, "the data area starts at sector %" PRIu64 " of %u",
			      b->data_start, b->total);
	b->clusters = (b->total - b->data_start) / spc;
	if (fat16 == 0)
		b->bits = 32;
	else
		b->bits = b->clusters > FAT12_MAX_CLUSTERS ? 16 : 12;
	if (b->clusters == 0 || (b->bits == 32 && b->clusters > FAT32_MAX_CLUSTERS) ||
	    (b->bits == 16 && b->clusters > 0xfff4u))
		return bm_why(why, whycap, "%" PRIu64 " clusters for FAT%d", b->clusters, b->bits);
	/* The FAT must hold an entry for every cluster (plus the two reserved). */
	need = (b->clusters + 2) * (uint64_t)b->bits / 8 + 1;
	fat_bytes = (uint64_t)b->fatsz * bps;
	if (need > fat_bytes)
		return bm_why(why, whycap, "a FAT of %" PRIu64 " bytes for %" PRIu64 " clusters",
			      fat_bytes, b->clusters);
	if (b->bits == 32 && (rootc < 2 || rootc >= b->clusters + 2))
		return bm_why(why, whycap, "root directory cluster %u of %" PRIu64, rootc,
			      b->clusters);
	/* FAT32 with mirroring off (bit 7) uses the one copy bits 0-3 name. */
	active = b->bits == 32 && (flags & 0x80) ? flags & 0xfu : 0;
	if (active >= nfats)
		return bm_why(why, whycap, "active FAT %u of %u", active, nfats);
	b->fat_off = ((uint64_t)res + (uint64_t)active * b->fatsz) * bps;
	return 0;
}

static uint32_t entry(const struct bpb *b, const uint8_t *p, uint64_t n, uint64_t base)
{
	uint64_t o;

	if (b->bits == 32)
		return ((uint32_t)p[4 * (n - base)] | (uint32_t)p[4 * (n - base) + 1] << 8 |
			(uint32_t)p[4 * (n - base) + 2] << 16 |
			(uint32_t)p[4 * (n - base) + 3] << 24) &
		       0x0fffffffu;
	if (b->bits == 16)
		return (uint32_t)p[2 * (n - base)] | (uint32_t)p[2 * (n - base) + 1] << 8;
	o = n * 3 / 2 - base * 3 / 2;
	return n & 1 ? (uint32_t)(p[o] >> 4 | p[o + 1] << 4)
		     : (uint32_t)(p[o] | (p[o + 1] & 0xf) << 8);
}

static void mark_run(struct bm_disk *d, const struct bm_vol *v, const struct bpb *b, uint64_t first,
		     uint64_t end)
{
	uint64_t csize = (uint64_t)b->spc * b->bps;

	bm_vol_mark(d, v, b->data_start * b->bps + (first - 2) * csize, (end - first) * csize);
}

static int fat_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	uint8_t buf[FAT_BUF];
	struct bpb b;
	uint64_t n, base = 0, have = 0, run = 0, per, last;
	uint32_t bad;
	int r;

	memset(&b, 0, sizeof(b));
	r = read_bpb(v, &b, why, whycap);
	if (r)
		return r;
	per = FAT_BUF * 8 / (uint64_t)b.bits; /* entries per buffer, even for FAT12 */
	bad = b.bits == 12 ? 0xff7u : b.bits == 16 ? 0xfff7u : 0x0ffffff7u;
	last = b.clusters + 2;
	for (n = 0; n < last; n++) {
		uint32_t e;

		if (n >= base + have) {
			uint64_t left = last - n, cnt = left < per ? left : per;
			size_t len = (size_t)((cnt * b.bits + 7) / 8);

			base = n;
			have = cnt;
			r = bm_vol_read(v, buf, len, b.fat_off + base * b.bits / 8);
			if (r == -EINVAL)
				return bm_why(why, whycap, "the FAT runs past the volume");
			if (r)
				return r;
		}
		e = entry(&b, buf, n, base);
		if (n == 0) {
			/* Entry 0 repeats the media byte: a cheap proof this is the FAT. */
			if ((e & 0xff) != b.media)
				return bm_why(why, whycap, "FAT entry 0 is 0x%x, media byte 0x%02x",
					      e, b.media);
			continue;
		}
		if (n == 1)
			continue;
		if (e != 0 && e != bad) {
			if (!run)
				run = n;
		} else if (run) {
			mark_run(d, v, &b, run, n);
			run = 0;
		}
	}
	if (run)
		mark_run(d, v, &b, run, last);
	/* Reserved sectors, every FAT, the root directory: always. */
	bm_vol_mark(d, v, 0, b.data_start * b.bps);
	if (why && whycap)
		why[0] = 0;
	return 0;
}

static int fat_mark_mounted(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	int r = fat_mark(d, v, why, whycap);

	if (r == 0)
		snprintf(why, whycap, "mounted: FAT as of the last sync");
	return r;
}

static const char *const fat_types[] = {"vfat", "msdos", NULL};

const struct bm_reader bm_reader_fat = {
    .name = "fat",
    .types = fat_types,
    .method = BM_USED,
    .mark = fat_mark,
    .mark_mounted = fat_mark_mounted,
};
