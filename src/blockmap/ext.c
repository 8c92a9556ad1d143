/*
 * ext.c - the ext2/3/4 adapter: opens a filesystem read-only with
 * libext2fs at its partition's offset, reads the block bitmaps and marks
 * the chunks that hold allocated blocks. It never opens for writing and
 * never replays the journal, so it works on a mounted filesystem's
 * device. The only file that includes ext2fs.h; libext2fs error codes
 * become -EUCLEAN (send the partition whole) or a fatal -errno here.
 */
#include <sys/types.h> /* before ext2fs.h: musl's headers need it first */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "blockmap/blockmap_impl.h"
#include "common/common.h"

/* Boot block and primary superblock: bytes 0..2047 of every ext fs. */
#define EXT_HEAD_BYTES 2048u
#define EXT_SB_OFFSET  1024u

struct ext_io_ctx {
	errcode_t first_err; /* what the device said, before libext2fs renames it */
};

static int why_set(char *why, size_t whycap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int why_set(char *why, size_t whycap, const char *fmt, ...)
{
	va_list ap;

	if (why && whycap) {
		va_start(ap, fmt);
		vsnprintf(why, whycap, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

/*
 * Device errors are fatal (the data read would fail the same way); any
 * other libext2fs complaint means this filesystem cannot be trusted and
 * is sent whole.
 */
static int ext_err(errcode_t e, const struct ext_io_ctx *io, char *why, size_t whycap)
{
	if (io && io->first_err == EIO)
		e = EIO;
	if (e == EIO)
		return -EIO;
	if (e == ENOMEM || e == EXT2_ET_NO_MEMORY)
		return -ENOMEM;
	return why_set(why, whycap, "%s", error_message(e));
}

/* libext2fs turns a failed bitmap read into EXT2_ET_BLOCK_BITMAP_READ; keep the cause. */
static errcode_t ext_read_error(io_channel ch, unsigned long block, int count, void *data,
				size_t size, int actual, errcode_t error)
{
	struct ext_io_ctx *io = ch->app_data;

	(void)block, (void)count, (void)data, (void)size, (void)actual;
	if (io && !io->first_err)
		io->first_err = error;
	return error;
}

/*
 * The superblock, checked by hand before libext2fs sizes anything from
 * it: a block count that does not fit the partition makes the bitmaps
 * meaningless (and libext2fs would read past the partition).
 */
static int sb_check(int fd, uint64_t start, uint64_t size, uint32_t *bs, uint64_t *blocks,
		    int *live, char *why, size_t whycap)
{
	struct ext2_super_block sb;
	uint32_t log, incompat;
	uint64_t n;
	ssize_t got;
	char a[16], b[16];

	if (size < EXT_HEAD_BYTES)
		return why_set(why, whycap, "the partition is only %" PRIu64 " bytes", size);
	do
		got = pread(fd, &sb, sizeof(sb), (off_t)(start + EXT_SB_OFFSET));
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if (got != (ssize_t)sizeof(sb))
		return -EIO;
	if (ext2fs_le16_to_cpu(sb.s_magic) != EXT2_SUPER_MAGIC)
		return why_set(why, whycap, "%s", error_message(EXT2_ET_BAD_MAGIC));
	log = ext2fs_le32_to_cpu(sb.s_log_block_size);
	if (log > EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE)
		return why_set(why, whycap, "block size 2^%u is out of range",
			       log + EXT2_MIN_BLOCK_LOG_SIZE);
	*bs = (uint32_t)EXT2_MIN_BLOCK_SIZE << log;
	incompat = ext2fs_le32_to_cpu(sb.s_feature_incompat);
	n = ext2fs_le32_to_cpu(sb.s_blocks_count);
	if (incompat & EXT4_FEATURE_INCOMPAT_64BIT)
		n |= (uint64_t)ext2fs_le32_to_cpu(sb.s_blocks_count_hi) << 32;
	if (n == 0 || ext2fs_le32_to_cpu(sb.s_first_data_block) >= n)
		return why_set(why, whycap, "block count %" PRIu64 " is invalid", n);
	if (n > size / *bs)
		return why_set(why, whycap,
			       "it claims %s (%" PRIu64 " blocks of %u), the partition is %s",
			       fmt_bytes(n > UINT64_MAX / *bs ? UINT64_MAX : n * *bs, a, sizeof(a)),
			       n, *bs, fmt_bytes(size, b, sizeof(b)));
	*blocks = n;
	/*
	 * Mounted: ext4 with a journal sets needs_recovery, without one it
	 * clears VALID_FS. Its bitmaps and their checksums in the group
	 * descriptors are then read at different moments and may disagree.
	 */
	*live = (incompat & EXT3_FEATURE_INCOMPAT_RECOVER) ||
		!(ext2fs_le16_to_cpu(sb.s_state) & EXT2_VALID_FS);
	return 0;
}

static errcode_t ext_open(const char *path, uint64_t start, int flags, ext2_filsys *fs)
{
	char opts[40];

	snprintf(opts, sizeof(opts), "offset=%" PRIu64, start);
	return ext2fs_open2(path, opts, flags, 0, 0, unix_io_manager, fs);
}

/*
 * ext2fs_read_block_bitmap takes a bitmap location outside the
 * filesystem for an all-free group: a corrupt descriptor would hide a
 * whole group's data. (ext2fs_check_desc checks more, but marks every
 * inode-table block one by one: seconds on a large filesystem.)
 */
static errcode_t desc_check(ext2_filsys fs, uint64_t blocks)
{
	dgrp_t i;

	for (i = 0; i < fs->group_desc_count; i++) {
		blk64_t b = ext2fs_block_bitmap_loc(fs, i);

		if (b < fs->super->s_first_data_block || b >= blocks)
			return EXT2_ET_GDESC_BAD_BLOCK_MAP;
	}
	return 0;
}

/*
 * Walks the runs of set bits: one find_first_set and one find_first_zero
 * per run, and none inside a chunk already marked, so the cost is
 * bounded by min(runs, chunks) whatever the filesystem size.
 */
static errcode_t mark_runs(struct bm_disk *d, ext2_filsys fs, uint64_t start, uint32_t bs,
			   uint64_t first, uint64_t last)
{
	uint64_t b = first;

	while (b <= last) {
		blk64_t s, z;
		errcode_t e;
		uint64_t next;

		e = ext2fs_find_first_set_block_bitmap2(fs->block_map, b, last, &s);
		if (e == ENOENT)
			break;
		if (e)
			return e;
		e = ext2fs_find_first_zero_block_bitmap2(fs->block_map, s, last, &z);
		if (e == ENOENT)
			z = last + 1;
		else if (e)
			return e;
		bm_mark(d, start + s * bs, (z - s) * bs);
		/* The rest of the chunk holding block z - 1 is marked already. */
		next = (start + z * bs + d->chunk - 1) / d->chunk * d->chunk;
		next = (next - start) / bs;
		b = next > z ? next : z;
	}
	return 0;
}

int bm_ext_mark(struct bm_disk *d, int fd, uint64_t start, uint64_t size, char *why, size_t whycap)
{
	struct ext_io_ctx io = {0};
	ext2_filsys fs = NULL;
	uint64_t blocks = 0;
	uint32_t bs = 0;
	int flags, live = 0, r;
	errcode_t e;

	if (why && whycap)
		why[0] = 0;
	/* Without it error_message() prints "Unknown code ext2 13". */
	initialize_ext2_error_table();
	r = sb_check(fd, start, size, &bs, &blocks, &live, why, whycap);
	if (r)
		return r;

	flags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP;
	if (live)
		flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
	e = ext_open(d->path, start, flags, &fs);
	if (e) {
		fs = NULL;
		r = ext_err(e, NULL, why, whycap);
		goto out;
	}
	/* The superblock may have changed between our read and libext2fs's. */
	if (ext2fs_blocks_count(fs->super) != blocks || fs->blocksize != bs) {
		r = why_set(why, whycap, "the superblock changed while it was read");
		goto out;
	}
	fs->io->app_data = &io;
	fs->io->read_error = ext_read_error;
	e = desc_check(fs, blocks);
	if (!e)
		e = ext2fs_read_block_bitmap(fs);
	if (e) {
		r = ext_err(e, &io, why, whycap);
		goto out;
	}
	/* Block 0 of a 1 KiB-block fs (the boot block) is not in any bitmap. */
	bm_mark(d, start, EXT_HEAD_BYTES);
	e = mark_runs(d, fs, start, bs, fs->super->s_first_data_block, blocks - 1);
	if (e)
		r = ext_err(e, &io, why, whycap);
out:
	if (fs)
		ext2fs_close_free(&fs);
	return r;
}
