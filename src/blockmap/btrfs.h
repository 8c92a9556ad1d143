/*
 * btrfs.h - private to src/blockmap (and its unit tests and fuzz target):
 * what of one btrfs device is in use, as its own trees say. The scan is
 * written against two callbacks (read the device, mark a range of it), so
 * the parsers run the same on a disk, an image in memory or a fuzzer's
 * bytes. btrfs.c owns the on-disk side, btrfs_live.c the mounted one.
 */
#ifndef FERRY_BLOCKMAP_BTRFS_H
#define FERRY_BLOCKMAP_BTRFS_H

#include <stddef.h>
#include <stdint.h>

#define BTRFS_SB_OFF	    65536u
#define BTRFS_SB_LEN	    4096u
#define BTRFS_HEAD_LEN	    (1024u * 1024) /* reserved on every device: boot loaders live here */
#define BTRFS_NODE_MIN	    4096u
#define BTRFS_NODE_MAX	    65536u
#define BTRFS_LEVELS	    8u	 /* node levels 0..7 */
#define BTRFS_HDR_LEN	    101u /* struct btrfs_header */
#define BTRFS_KEY_LEN	    17u
#define BTRFS_ITEM_LEN	    25u /* key, data offset, data size */
#define BTRFS_PTR_LEN	    33u /* key, block pointer, generation */
#define BTRFS_SYS_ARRAY_MAX 2048u
#define BTRFS_CHUNKS_MAX    (1u << 20)
#define BTRFS_LOCAL_MAX	    4u /* stripes of one chunk on one device (DUP: 2) */

/* Block group / chunk type bits. */
#define BTRFS_BG_DATA	  (1ull << 0)
#define BTRFS_BG_SYSTEM	  (1ull << 1)
#define BTRFS_BG_METADATA (1ull << 2)
#define BTRFS_BG_RAID0	  (1ull << 3)
#define BTRFS_BG_RAID1	  (1ull << 4)
#define BTRFS_BG_DUP	  (1ull << 5)
#define BTRFS_BG_RAID10	  (1ull << 6)
#define BTRFS_BG_RAID5	  (1ull << 7)
#define BTRFS_BG_RAID6	  (1ull << 8)
#define BTRFS_BG_RAID1C3  (1ull << 9)
#define BTRFS_BG_RAID1C4  (1ull << 10)

/* Item types and tree ids used here. */
#define BTRFS_ROOT_ITEM	     132u
#define BTRFS_EXTENT_ITEM    168u
#define BTRFS_METADATA_ITEM  169u
#define BTRFS_DEV_ITEM	     216u
#define BTRFS_CHUNK_ITEM     228u
#define BTRFS_EXTENT_TREE_ID 2u
#define BTRFS_CHUNK_TREE_ID  3u

struct btrfs_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
};

struct btrfs_sb {
	uint8_t fsid[16]; /* what tree blocks carry: metadata_uuid when it is set */
	uint8_t uuid[16]; /* the filesystem's uuid, as the kernel reports it */
	uint64_t generation, root, chunk_root, log_root, total_bytes, num_devices;
	uint64_t devid, dev_bytes; /* this device's id and size in the filesystem */
	uint64_t incompat;
	uint32_t sectorsize, nodesize, sys_array_len;
	uint8_t root_level, chunk_root_level;
	uint8_t sys_array[BTRFS_SYS_ARRAY_MAX];
};

struct btrfs_chunk {
	uint64_t logical, length, type, stripe_len;
	uint16_t num_stripes, sub_stripes;
	uint8_t nlocal;
	struct {
		uint16_t idx;  /* which stripe of the chunk */
		uint64_t phys; /* its start on this device */
	} local[BTRFS_LOCAL_MAX];
};

/* The chunks of one filesystem, sorted by logical address. */
struct btrfs_map {
	uint64_t devid, dev_size; /* this device: its id, the bytes it really has */
	struct btrfs_chunk *c;
	size_t n, cap;
};

/* What the scan found, for the plan and the tests. */
struct btrfs_stats {
	uint64_t chunks, data_chunks;
	uint64_t whole_bytes;  /* stripes here of chunks sent whole */
	uint64_t extent_bytes; /* allocated extents (logical bytes) in the extent tree */
	uint64_t nodes;	       /* tree blocks read */
	int chunk_level;       /* 1: only whole chunks (extent tree elsewhere) */
	char note[128];	       /* why a coarser map was used, if it was */
};

struct btrfs_io {
	/* 0 or -errno; reads len bytes at off of this device. */
	int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	/* Marks [off, off + len) of this device as in use. */
	void (*mark)(void *ctx, uint64_t off, uint64_t len);
	void *ctx;
	uint64_t size; /* the device's bytes */
};

uint32_t bm_btrfs_crc32c(uint32_t crc, const void *p, size_t n);

/*
 * The primary superblock in buf (BTRFS_SB_LEN bytes) of a device of
 * dev_size bytes: magic, CRC32C, sizes, levels, features this code can
 * map. 0 or -EUCLEAN with why.
 */
int bm_btrfs_sb(const uint8_t *buf, uint64_t dev_size, struct btrfs_sb *sb, char *why,
		size_t whycap);

/*
 * One tree block read from logical address bytenr: checksum, fsid,
 * bytenr, level (want_level < 0: any), nritems and every item inside the
 * block, keys in order. 0 or -EUCLEAN with why.
 */
int bm_btrfs_node(const uint8_t *buf, const struct btrfs_sb *sb, uint64_t bytenr, int want_level,
		  char *why, size_t whycap);

/* The i-th item of a checked leaf: its key and data. */
void bm_btrfs_item(const uint8_t *leaf, uint32_t i, struct btrfs_key *k, const uint8_t **data,
		   uint32_t *size);

/* One CHUNK_ITEM (key offset = logical) into the map, checked. 0 / -EUCLEAN / -ENOMEM. */
int bm_btrfs_add_chunk(struct btrfs_map *m, uint64_t logical, const uint8_t *item, uint32_t size,
		       char *why, size_t whycap);
/* The chunks of the superblock's sys_chunk_array. */
int bm_btrfs_sys_array(const struct btrfs_sb *sb, struct btrfs_map *m, char *why, size_t whycap);
const struct btrfs_chunk *bm_btrfs_chunk_at(const struct btrfs_map *m, uint64_t logical);
void bm_btrfs_map_free(struct btrfs_map *m);

/*
 * Marks the device's head (boot area, primary superblock) and every
 * superblock copy; the pieces here of one allocated extent [logical,
 * +len) (data or tree block; nothing for RAID5/6 chunks); the stripes
 * here of chunks sent whole: RAID5/6 ones, or all of them when all is set.
 */
void bm_btrfs_mark_head(const struct btrfs_io *io);
int bm_btrfs_mark_extent(const struct btrfs_map *m, const struct btrfs_io *io, uint64_t logical,
			 uint64_t len, char *why, size_t whycap);
void bm_btrfs_mark_chunks(const struct btrfs_map *m, const struct btrfs_io *io, int all,
			  struct btrfs_stats *st);
/* Whether a chunk's extents can be mapped one by one (not RAID5/6). */
int bm_btrfs_chunk_by_extent(const struct btrfs_chunk *c);

/*
 * The whole scan of an unmounted device: superblock, chunk tree, root
 * tree, extent tree. 0 (st says how fine the map is), -EUCLEAN with why
 * (send the device whole), or a device error.
 */
int bm_btrfs_scan(const struct btrfs_io *io, struct btrfs_stats *st, char *why, size_t whycap);

/*
 * The same from a mounted filesystem through BTRFS_IOC_TREE_SEARCH on
 * mnt (the kernel's current trees, after the caller's sync). sb is the
 * device's superblock (for its devid). 0, -EUCLEAN with why, or -errno
 * when the ioctl is not available (then scan the device instead).
 */
int bm_btrfs_scan_mounted(const char *mnt, const struct btrfs_sb *sb, const struct btrfs_io *io,
			  struct btrfs_stats *st, char *why, size_t whycap);

#endif
