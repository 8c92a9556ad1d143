/*
 * fuzz_ptable.c - libFuzzer target for ptable.c. Input: one flags byte
 * (bit 0: 4096-byte sectors, bit 1: GPT_GROW_LAST, bit 2: make the GPT
 * CRCs right first, so mutations reach the checks behind them), the
 * destination disk size as 8 little-endian bytes, then the first region
 * of the disk. Besides the sanitizers it checks what the API promises: a
 * refusal leaves the buffer as it was and says why; a relocated table is
 * detected as GPT, its backup header checks out, and relocating it again
 * changes nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "disk/ptable.h"

#define HDR_LEN 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t input[PTABLE_REGION_LEN], region[PTABLE_REGION_LEN], copy[PTABLE_REGION_LEN];
static uint8_t backup[GPT_BACKUP_MAX], backup2[GPT_BACKUP_MAX];

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Rewrites the array and header CRCs of the header at LBA 1, if in bounds. */
static void fix_crcs(uint8_t *b, size_t len, uint32_t lsec)
{
	uint8_t *h;
	uint64_t lba, bytes;
	uint32_t hsize;

	if (len / 2 < lsec)
		return;
	h = b + lsec;
	lba = le64(h + 72);
	bytes = (uint64_t)le32(h + 80) * le32(h + 84);
	if (lba <= len / lsec && bytes <= len - lba * lsec)
		put32(h + 88, gpt_crc32(0, b + lba * lsec, (size_t)bytes));
	hsize = le32(h + 12);
	if (hsize >= 20 && hsize <= lsec) {
		put32(h + 16, 0);
		put32(h + 16, gpt_crc32(0, h, hsize));
	}
}

static void check_backup(const struct gpt_reloc *r, uint32_t lsec)
{
	const uint8_t *bh;
	uint32_t hsize, crc;
	uint8_t tmp[4096];

	if (r->backup_len < lsec || r->backup_len > sizeof(backup))
		abort();
	bh = backup + r->backup_len - lsec;
	hsize = le32(bh + 12);
	if (memcmp(bh, "EFI PART", 8) != 0 || hsize > lsec || hsize < 92 ||
	    le64(bh + 24) != r->last_lba || le64(bh + 32) != 1 ||
	    le64(bh + 72) * lsec != r->backup_off)
		abort();
	memcpy(tmp, bh, hsize);
	put32(tmp + 16, 0);
	crc = gpt_crc32(0, tmp, hsize);
	if (crc != le32(bh + 16))
		abort();
}

/* One disk size: relocate (and relocate again), then grow as MBR. */
static void one(const uint8_t *in, size_t len, uint32_t lsec, unsigned flags, uint64_t disk,
		enum ptable_kind kind)
{
	char err[PTABLE_ERR_LEN];
	enum ptable_kind kind2;
	struct gpt_reloc r, r2;
	struct mbr_grow g;
	int rc;

	memcpy(region, in, len);
	memcpy(copy, in, len);
	err[0] = 0;
	rc = gpt_relocate(region, len, lsec, disk, flags, backup, sizeof(backup), &r, err,
			  sizeof(err));
	if (rc < 0) {
		if (!err[0] || memcmp(region, copy, len) != 0)
			abort();
		/*
		 * What detect calls a GPT only fails to fit the disk, or to
		 * grow (no partition, or two ending last).
		 */
		if (kind == PTABLE_GPT && rc != -ENOSPC &&
		    !((flags & GPT_GROW_LAST) && (rc == -ENOENT || rc == -EBADMSG)))
			abort();
	} else {
		if (kind != PTABLE_GPT ||
		    ptable_detect(region, len, lsec, &kind2, err, sizeof(err)) != 0 ||
		    kind2 != PTABLE_GPT)
			abort();
		check_backup(&r, lsec);
		if (r.backup_off + r.backup_len > disk ||
		    (r.grown &&
		     (r.grown_new_bytes <= r.grown_old_bytes ||
		      r.grown_start_lba * lsec + r.grown_new_bytes > (r.last_usable + 1) * lsec)))
			abort();
		memcpy(copy, region, len);
		memcpy(backup2, backup, r.backup_len);
		if (gpt_relocate(region, len, lsec, disk, flags, backup, sizeof(backup), &r2, err,
				 sizeof(err)) != 0 ||
		    r2.grown != 0 || r2.backup_off != r.backup_off ||
		    memcmp(region, copy, len) != 0 || memcmp(backup, backup2, r.backup_len) != 0)
			abort();
	}

	memcpy(region, in, len);
	err[0] = 0;
	rc = mbr_grow_last(region, len, lsec, disk, &g, err, sizeof(err));
	if (rc < 0 && (!err[0] || memcmp(region, in, len) != 0))
		abort();
	if (rc == 0 && !g.grown && memcmp(region, in, len) != 0)
		abort();
	if (rc == 0 && g.grown &&
	    (ptable_detect(region, len, lsec, &kind2, err, sizeof(err)) != 0 ||
	     kind2 != PTABLE_MBR || g.new_bytes <= g.old_bytes ||
	     g.start_lba * lsec + g.new_bytes > disk))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[PTABLE_ERR_LEN];
	enum ptable_kind kind;
	uint64_t disk;
	uint32_t lsec;
	unsigned flags;
	size_t len;
	int rc;

	if (size < HDR_LEN)
		return 0;
	lsec = data[0] & 1 ? 4096 : 512;
	flags = data[0] & 2 ? GPT_GROW_LAST : 0;
	disk = le64(data + 1);
	len = size - HDR_LEN;
	if (len > sizeof(input))
		len = sizeof(input);
	memcpy(input, data + HDR_LEN, len);
	if (data[0] & 4)
		fix_crcs(input, len, lsec);

	err[0] = 0;
	rc = ptable_detect(input, len, lsec, &kind, err, sizeof(err));
	if (rc < 0 && !err[0])
		abort();

	/*
	 * The size bytes are few among many, so mutations rarely touch them:
	 * also try a smaller disk and one about the size of the region (the
	 * backup then falls inside it).
	 */
	one(input, len, lsec, flags, disk, kind);
	one(input, len, lsec, flags, disk >> 4, kind);
	one(input, len, lsec, flags, len + disk % (256 * 1024), kind);
	return 0;
}
