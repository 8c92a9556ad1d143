/*
 * blockmap_impl.h - private to src/blockmap: what probe.c (the libblkid
 * adapter), ext.c (the libext2fs adapter) and map.c (the bitmap and the
 * policy) share. It includes neither library's header, so each stays
 * inside its one adapter.
 */
#ifndef FERRY_BLOCKMAP_IMPL_H
#define FERRY_BLOCKMAP_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "blockmap/blockmap.h"

/* Largest logical sector handled: 512 and 4096 are what disks have. */
#define BM_SECTOR_MAX 4096u
/* One GPT array (two per disk) and one EBR per logical partition. */
#define BM_MAX_EXTENTS (BM_MAX_PARTS + 8)
/* Swap header when blkid gives no magic offset: one 4 KiB page. */
#define BM_SWAP_HDR 4096u

struct bm_extent {
	uint64_t off, len; /* bytes, inside the disk */
};

/*
 * What probe.c learns beyond struct bm_disk: where the partition table's
 * own structures lie (the boot area before the first partition, both GPT
 * headers and arrays, each EBR), and the swap header length of each
 * partition (index BM_MAX_PARTS: the bare disk).
 */
struct bm_layout {
	struct bm_extent tab[BM_MAX_EXTENTS];
	size_t ntab;
	uint32_t hdr_len[BM_MAX_PARTS + 1];
	int whole; /* a table that cannot be mapped: send the disk whole */
};

/*
 * probe.c: fills d->lsec-dependent identity (table, ptuuid, parts with
 * number/start/size/ids/fstype, the bare disk's fstype) and lay. A DOS
 * extended container comes back with method BM_TABLE, every other part
 * BM_WHOLE; map.c picks the real method from fstype. lay->whole is set
 * for a table that cannot be mapped (unknown type, two signatures, more
 * than BM_MAX_PARTS partitions): nparts is then 0. d->path, d->size
 * and d->lsec must be set. Fatal errors only (I/O, memory): 0 or -errno
 * with a sentence in err.
 */
int bm_probe_layout(int fd, struct bm_disk *d, struct bm_layout *lay, char *err, size_t errcap);

/*
 * ext.c: marks the chunks holding allocated blocks of the ext2/3/4
 * filesystem at [start, start + size) of the disk. -EUCLEAN when the
 * filesystem cannot be used (why says what libext2fs or the bounds
 * checks said; the caller sends it whole); -EIO or -ENOMEM are fatal.
 */
int bm_ext_mark(struct bm_disk *d, int fd, uint64_t start, uint64_t size, char *why, size_t whycap);

/* map.c: sets every chunk overlapping [off, off + len), clipped to the disk. */
void bm_mark(struct bm_disk *d, uint64_t off, uint64_t len);

/* map.c: "<path>: <size>: " + the formatted rest into err (may be NULL). */
void bm_errf(const struct bm_disk *d, char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
