/*
 * ext.c - the ext2/3/4 reader: opens a filesystem read-only with
 * libext2fs, reads the block bitmaps and marks the chunks that hold
 * allocated blocks. It never opens for writing and never replays the
 * journal, so it works on a mounted filesystem's device. The only file
 * that includes ext2fs.h; libext2fs error codes become -EUCLEAN (send the
 * volume whole) or a fatal -errno here.
 */
#include <sys/types.h> /* before ext2fs.h: musl's headers need it first */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "blockmap/reader.h"
#include "common/common.h"

/* Boot block and primary superblock: bytes 0..2047 of every ext fs. */
#define EXT_HEAD_BYTES 2048u
#define EXT_SB_OFFSET  1024u

struct ext_io_ctx {
	errcode_t first_err; /* what the device said, before libext2fs renames it */
};

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
	return bm_why(why, whycap, "%s", error_message(e));
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
static int sb_check(const struct bm_vol *v, uint32_t *bs, uint64_t *blocks, int *live, char *why,
		    size_t whycap)
{
	struct ext2_super_block sb;
	uint32_t log, incompat;
	uint64_t n, size = v->size;
	char a[16], b[16];
	int r;

	if (size < EXT_HEAD_BYTES)
		return bm_why(why, whycap, "the volume is only %" PRIu64 " bytes", size);
	r = bm_vol_read(v, &sb, sizeof(sb), EXT_SB_OFFSET);
	if (r)
		return r;
	if (ext2fs_le16_to_cpu(sb.s_magic) != EXT2_SUPER_MAGIC)
		return bm_why(why, whycap, "%s", error_message(EXT2_ET_BAD_MAGIC));
	log = ext2fs_le32_to_cpu(sb.s_log_block_size);
	if (log > EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE)
		return bm_why(why, whycap, "block size 2^%u is out of range",
			       log + EXT2_MIN_BLOCK_LOG_SIZE);
	*bs = (uint32_t)EXT2_MIN_BLOCK_SIZE << log;
	incompat = ext2fs_le32_to_cpu(sb.s_feature_incompat);
	n = ext2fs_le32_to_cpu(sb.s_blocks_count);
	if (incompat & EXT4_FEATURE_INCOMPAT_64BIT)
		n |= (uint64_t)ext2fs_le32_to_cpu(sb.s_blocks_count_hi) << 32;
	if (n == 0 || ext2fs_le32_to_cpu(sb.s_first_data_block) >= n)
		return bm_why(why, whycap, "block count %" PRIu64 " is invalid", n);
	if (n > size / *bs)
		return bm_why(why, whycap,
			       "it claims %s (%" PRIu64 " blocks of %u), the volume is %s",
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

/*
 * A read-only io_manager over struct bm_vol: libext2fs reads the volume
 * through bm_vol_read, so an LV in several pieces reads like a partition
 * (unix_io's "offset=" handles one piece only), and every read is bounded
 * by the volume. libext2fs gives a manager no context but the name, so
 * the name carries the bm_vol's address (ext_open makes it; nothing else
 * can reach this manager).
 */
static errcode_t vio_open(const char *name, int flags, io_channel *ch);
static errcode_t vio_close(io_channel ch);
static errcode_t vio_set_blksize(io_channel ch, int blksize);
static errcode_t vio_read(io_channel ch, unsigned long block, int count, void *data);
static errcode_t vio_read64(io_channel ch, unsigned long long block, int count, void *data);
static errcode_t vio_write(io_channel ch, unsigned long block, int count, const void *data);
static errcode_t vio_write64(io_channel ch, unsigned long long block, int count,
			     const void *data);
static errcode_t vio_flush(io_channel ch);

static struct struct_io_manager vol_io = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "ferry volume",
	.open = vio_open,
	.close = vio_close,
	.set_blksize = vio_set_blksize,
	.read_blk = vio_read,
	.write_blk = vio_write,
	.flush = vio_flush,
	.read_blk64 = vio_read64,
	.write_blk64 = vio_write64,
};

static errcode_t vio_open(const char *name, int flags, io_channel *ch)
{
	void *v = NULL;
	io_channel io = NULL;
	errcode_t e;

	if (flags & IO_FLAG_RW)
		return EXT2_ET_OP_NOT_SUPPORTED;
	if (!name || sscanf(name, "ferry-vol:%p", &v) != 1 || !v)
		return EXT2_ET_BAD_DEVICE_NAME;
	e = ext2fs_get_memzero(sizeof(*io), &io);
	if (e)
		return e;
	e = ext2fs_get_mem(strlen(name) + 1, &io->name);
	if (e) {
		ext2fs_free_mem(&io);
		return e;
	}
	memcpy(io->name, name, strlen(name) + 1);
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = &vol_io;
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = v;
	*ch = io;
	return 0;
}

static errcode_t vio_close(io_channel ch)
{
	if (--ch->refcount > 0)
		return 0;
	ext2fs_free_mem(&ch->name);
	ext2fs_free_mem(&ch);
	return 0;
}

static errcode_t vio_set_blksize(io_channel ch, int blksize)
{
	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	ch->block_size = blksize;
	return 0;
}

static errcode_t vio_read64(io_channel ch, unsigned long long block, int count, void *data)
{
	const struct bm_vol *v = ch->private_data;
	/* A negative count is a byte count (libext2fs's convention). */
	uint64_t len = count < 0 ? (uint64_t)-(int64_t)count : (uint64_t)count * ch->block_size;
	errcode_t e;
	int r;

	if (block > UINT64_MAX / (uint64_t)ch->block_size || len > SIZE_MAX)
		return EXT2_ET_LLSEEK_FAILED;
	r = bm_vol_read(v, data, (size_t)len, block * (uint64_t)ch->block_size);
	if (r == 0)
		return 0;
	/* Outside the volume: a field the bounds checks missed; say "short read". */
	e = r == -EINVAL ? EXT2_ET_SHORT_READ : (errcode_t)-r;
	if (ch->read_error)
		return ch->read_error(ch, (unsigned long)block, count, data, (size_t)len, 0, e);
	return e;
}

static errcode_t vio_read(io_channel ch, unsigned long block, int count, void *data)
{
	return vio_read64(ch, block, count, data);
}

static errcode_t vio_write64(io_channel ch, unsigned long long block, int count,
			     const void *data)
{
	(void)ch, (void)block, (void)count, (void)data;
	return EXT2_ET_OP_NOT_SUPPORTED;
}

static errcode_t vio_write(io_channel ch, unsigned long block, int count, const void *data)
{
	return vio_write64(ch, block, count, data);
}

static errcode_t vio_flush(io_channel ch)
{
	(void)ch;
	return 0;
}

static errcode_t ext_open(const struct bm_vol *v, int flags, ext2_filsys *fs)
{
	char name[40];

	snprintf(name, sizeof(name), "ferry-vol:%p", (const void *)v);
	return ext2fs_open2(name, NULL, flags, 0, 0, &vol_io, fs);
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
static errcode_t mark_runs(struct bm_disk *d, const struct bm_vol *v, ext2_filsys fs, uint32_t bs,
			   uint64_t first, uint64_t last)
{
	uint64_t start = v->nseg == 1 ? v->seg[0].disk_off : 0;
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
		bm_vol_mark(d, v, s * bs, (z - s) * bs);
		/*
		 * The rest of the chunk holding block z - 1 is marked already
		 * (one segment: the chunk grid is known; several: go on at z).
		 */
		next = z;
		if (v->nseg == 1) {
			next = (start + z * bs + d->chunk - 1) / d->chunk * d->chunk;
			next = (next - start) / bs;
		}
		b = next > z ? next : z;
	}
	return 0;
}

static int ext_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
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
	r = sb_check(v, &bs, &blocks, &live, why, whycap);
	if (r)
		return r;

	flags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP;
	if (live)
		flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
	e = ext_open(v, flags, &fs);
	if (e) {
		fs = NULL;
		r = ext_err(e, NULL, why, whycap);
		goto out;
	}
	/* The superblock may have changed between our read and libext2fs's. */
	if (ext2fs_blocks_count(fs->super) != blocks || fs->blocksize != bs) {
		r = bm_why(why, whycap, "the superblock changed while it was read");
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
	bm_vol_mark(d, v, 0, EXT_HEAD_BYTES);
	e = mark_runs(d, v, fs, bs, fs->super->s_first_data_block, blocks - 1);
	if (e)
		r = ext_err(e, &io, why, whycap);
out:
	if (fs)
		ext2fs_close_free(&fs);
	return r;
}

/*
 * Mounted: the kernel's own map (GETFSMAP, Linux 4.12+) includes what the
 * journal holds and the bitmaps on disk do not show yet. Without it, the
 * bitmaps as of the last sync (the agent syncs before every pass and
 * freezes for the last one).
 */
static int ext_mark_mounted(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	char fw[BM_WHY_MAX] = "";
	int r;

	r = bm_fsmap_mark(d, v, fw, sizeof(fw));
	if (r == 0) {
		bm_vol_mark(d, v, 0, EXT_HEAD_BYTES);
		snprintf(why, whycap, "mounted: GETFSMAP");
		return 0;
	}
	log_info("%s on %s: GETFSMAP on %s: %s; reading its bitmaps", d->path, v->what,
		 v->mountpoint, r == -EUCLEAN ? fw : strerror(-r));
	r = ext_mark(d, v, why, whycap);
	if (r == 0)
		snprintf(why, whycap, "mounted: bitmaps as of the last sync");
	return r;
}

static const char *const ext_types[] = {"ext2", "ext3", "ext4", "ext4dev", NULL};

const struct bm_reader bm_reader_ext = {
	.name = "ext",
	.types = ext_types,
	.method = BM_USED,
	.mark = ext_mark,
	.mark_mounted = ext_mark_mounted,
};
