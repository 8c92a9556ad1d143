/*
 * probe.h - private to src/blockmap: what probe.c (the libblkid adapter)
 * tells map.c about a disk. probe.c identifies; it decides nothing about
 * what is sent. It does not include blkid.h, so libblkid stays inside
 * its one adapter.
 */
#ifndef FERRY_BLOCKMAP_PROBE_H
#define FERRY_BLOCKMAP_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "blockmap/blockmap.h"

/* One GPT array (two per disk) and one EBR per logical partition. */
#define BM_MAX_EXTENTS (BM_MAX_PARTS + 8)

struct bm_extent {
	uint64_t off, len; /* bytes, inside the disk */
};

/*
 * What probe.c learns beyond struct bm_disk: where the partition table's
 * own structures lie (the boot area before the first partition, both GPT
 * headers and arrays, each EBR).
 */
struct bm_layout {
	struct bm_extent tab[BM_MAX_EXTENTS];
	size_t ntab;
	int whole; /* a table that cannot be mapped: send the disk whole */
};

/*
 * Fills the identity (table, ptuuid, parts with number/start/size/ids/
 * fstype, the bare disk's fstype) and lay. A DOS extended container comes
 * back with method BM_TABLE, every other part BM_WHOLE; map.c picks the
 * real method from fstype. A partition holding two signatures gets an
 * empty fstype and the note "two signatures". lay->whole is set for a
 * table that cannot be mapped (unknown type, two signatures, more than
 * BM_MAX_PARTS partitions): nparts is then 0. d->path, d->size and
 * d->lsec must be set. Fatal errors only (I/O, memory): 0 or -errno with
 * a sentence in err.
 */
int bm_probe_layout(int fd, struct bm_disk *d, struct bm_layout *lay, char *err, size_t errcap);

struct bm_vol;
/*
 * The filesystem type libblkid finds on a volume (an LV, for the volume
 * readers), "" when none or two. 0 or a read error.
 */
int bm_probe_vol(const struct bm_vol *v, char *type, size_t cap);

#endif
