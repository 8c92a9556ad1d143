/*
 * blockmap.h - what of a source disk must be sent: the partition table,
 * its partitions with their filesystems, and a map of the chunks that
 * hold used data. Read-only: a source is never opened for writing.
 *
 * The map is a bitmap of fixed-size chunks (1 bit per chunk: a 2 TiB disk
 * at 64 KiB chunks costs 4 MiB), so memory is bounded by the disk size,
 * not by how fragmented its filesystems are.
 */
#ifndef FERRY_BLOCKMAP_H
#define FERRY_BLOCKMAP_H

#include <stddef.h>
#include <stdint.h>

#define BM_MAX_PARTS 128
#define BM_MAX_LVS 64
#define BM_CHUNK_DEFAULT (64u * 1024)
#define BM_NOTE_MAX 64

enum bm_method {
	BM_WHOLE,	/* unknown content: every chunk */
	BM_USED,	/* a filesystem's allocated blocks only (ext, XFS, FAT...) */
	BM_HEADER,	/* swap: the header page only */
	BM_TABLE,	/* partition tables only: space outside partitions, a DOS
			   extended partition (its EBRs) */
	BM_VOLUME,	/* a volume manager's member (LVM PV): its own metadata,
			   then each volume inside it by that volume's method */
};

struct bm_part {
	int number;		/* 1-based partition number */
	uint64_t start, size;	/* bytes */
	char fstype[16];	/* "ext4", "swap", "vfat", "" if none found */
	char uuid[40], label[64];
	char partuuid[40], parttype[40];
	enum bm_method method;
	uint64_t used_bytes;	/* what the method says must be sent */
	char note[BM_NOTE_MAX];	/* why it is sent so: "encrypted", "mounted: GETFSMAP",
				   "unreadable: bad magic"; "" when nothing to say */
};

/*
 * A volume inside a partition or disk (an LVM logical volume), filled by
 * the volume reader that found it: what it holds and what of it is sent.
 */
struct bm_lv {
	char vg[64], name[64];
	char fstype[16];
	char note[BM_NOTE_MAX];
	enum bm_method method;
	uint64_t size, used_bytes;
	int part;		/* number of the partition holding it, 0: the bare disk */
};

struct bm_disk {
	char path[256];
	uint64_t size;		/* bytes */
	uint32_t lsec;		/* logical sector size */
	char table[8];		/* "gpt", "dos", "" (none) */
	char ptuuid[40];
	char fstype[16];	/* filesystem directly on the disk, if any */
	char uuid[40], label[64];
	enum bm_method method;	/* no table: by fstype; a gpt/dos table:
				   BM_TABLE; a table not mapped: BM_WHOLE */
	char note[BM_NOTE_MAX];	/* as bm_part's, for the bare disk */
	size_t nparts;
	struct bm_part parts[BM_MAX_PARTS];
	size_t nlvs;		/* volumes inside partitions, in disk order */
	struct bm_lv lvs[BM_MAX_LVS];

	uint32_t chunk;		/* bytes per map bit, a power of two */
	uint64_t nchunks;	/* ceil(size / chunk) */
	uint8_t *map;		/* nchunks bits, bit i = chunk i must be sent */
	uint64_t map_bytes;	/* bytes covered by set bits (last chunk clipped) */
};

/*
 * Probes path (block device or image file) with libblkid, then builds the
 * used-chunk map: each partition (or the bare disk) by the reader for its
 * filesystem (src/blockmap/readers.c: BM_USED for ext2/3/4, XFS, FAT,
 * BM_HEADER for swap), BM_WHOLE for anything else, and for space outside
 * partitions only the partition tables (MBR/GPT primary at the start,
 * the GPT backup at the end). chunk is a power of two >= 4096 (0 =
 * BM_CHUNK_DEFAULT). err gets a sentence naming the disk. Returns 0 or
 * -errno (-EFBIG: the map would pass 64 MiB, use larger chunks); on
 * failure nothing needs freeing. A filesystem that cannot be read is
 * sent whole with a log_error (and a note), not a failure.
 *
 * A mounted filesystem is asked through its mountpoint (FS_IOC_GETFSMAP)
 * where its reader can; otherwise its on-disk structures are as fresh as
 * its last writeback: sync before a pass, and probe again after FIFREEZE
 * for the final one. The disk's own page cache is dropped first (it is
 * not coherent with the partition device the filesystem writes through).
 */
int bm_probe(const char *path, uint32_t chunk, struct bm_disk *d, char *err,
	     size_t errcap);
void bm_free(struct bm_disk *d);

static inline int bm_test(const struct bm_disk *d, uint64_t i)
{
	return (d->map[i >> 3] >> (i & 7)) & 1;
}

const char *bm_method_name(enum bm_method m);

/*
 * What is sent of one area, for people: "used blocks", "sent whole
 * (encrypted)", "header only", "sent whole (unreadable: bad magic)".
 */
void bm_describe(enum bm_method m, const char *note, char *out, size_t cap);

/*
 * Growing an LVM2 PV into its grown partition (the destination's --grow;
 * lvm_grow.c). Pure of I/O: the caller's callbacks read and write the
 * partition at offsets from its start (0 or -errno) and make it durable.
 */
struct bm_pv_io {
	int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	int (*write)(void *ctx, const void *buf, size_t len, uint64_t off);
	int (*sync)(void *ctx);
	void *ctx;
};

struct bm_pv_grown {
	char vg[64];
	uint64_t extent_size, old_extents, new_extents;
};

/*
 * Makes the PV at the start of a partition of new_bytes use all of it: its
 * pe_count and dev_size in the VG text (seqno + 1) and its PV header, as
 * LVM commits metadata; LVs untouched. 1 grown, 0 nothing to grow,
 * -ENOENT not an LVM PV, -EUCLEAN refused with err (nothing written: a VG
 * over several PVs, two metadata areas, damaged metadata), or -errno.
 */
int bm_lvm_grow(const struct bm_pv_io *io, uint64_t new_bytes, struct bm_pv_grown *g, char *err,
		size_t errcap);

#endif
