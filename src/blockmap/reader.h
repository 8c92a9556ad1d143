/*
 * reader.h - private to src/blockmap: the interface between the policy
 * (map.c) and the filesystem and volume readers (ext.c, swap.c, xfs.c,
 * fat.c, lvm.c, btrfs.c), listed in one table (readers.c). A reader sees
 * a volume - a partition, the bare disk, or a logical volume inside a
 * partition - through struct bm_vol, reads it only with bm_vol_read and
 * says what must be sent only with bm_vol_mark; it never sees the disk's
 * layout and never decides what happens when it fails (map.c does).
 *
 * Layers, lowest first; each calls only those below it:
 *   vol.c      the bitmap and volume I/O (bm_mark, bm_vol_read/mark)
 *   mount.c    where a volume is mounted (/proc/self/mountinfo, sysfs)
 *   readers    one file per format, one table entry each (readers.c)
 *   map.c      the policy: bm_probe, bm_map_vol
 * probe.c (libblkid: what is on the disk) sits beside the readers and
 * is called by map.c only. The one upward call is a volume reader mapping
 * its volumes through bm_map_vol: recursion, bounded by BM_MAX_DEPTH.
 */
#ifndef FERRY_BLOCKMAP_READER_H
#define FERRY_BLOCKMAP_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockmap/blockmap.h"

/* Largest logical sector handled: 512 and 4096 are what disks have. */
#define BM_SECTOR_MAX 4096u
/* Volumes inside volumes: an LV in a PV in a partition is depth 1. */
#define BM_MAX_DEPTH 2
/* Segments of one volume (LVM: one per linear piece or stripe run). */
#define BM_MAX_SEGS 256
/* Reader explanations ("why") and mountpoints. */
#define BM_WHY_MAX  256
#define BM_PATH_MAX 512

/* One linear piece of a volume on the disk: [vol_off, vol_off + len) of
 * the volume is [disk_off, disk_off + len) of the source disk. */
struct bm_seg {
	uint64_t vol_off, disk_off, len;
};

/*
 * What a reader reads: a partition, the bare disk, or an LV. seg is
 * sorted by vol_off and covers [0, size) without gaps (a partition has
 * one segment; bm_vol_read and bm_vol_mark rely on it, map.c checks it).
 */
struct bm_vol {
	int fd;			  /* the source disk, read-only */
	uint64_t size;		  /* bytes of the volume */
	const struct bm_seg *seg; /* volume -> disk offsets */
	size_t nseg;
	const char *mountpoint; /* where it is mounted now, or NULL */
	char what[64];		/* "partition 2", "LV rl/root": for messages */
	int depth;		/* 0 for a partition or the disk; +1 per volume layer */
};

/*
 * Reads [off, off + len) of the volume into buf, across segments.
 * 0, -EINVAL for a range outside the volume (a reader's bounds check
 * failed to catch it: treat as corrupt), or the disk's -errno.
 */
int bm_vol_read(const struct bm_vol *v, void *buf, size_t len, uint64_t off);
/* len bytes at off of fd, whole: 0, -errno, -EIO when the disk ends
 * first (it shrank under us), -EINVAL for an offset past INT64_MAX. */
int bm_pread(int fd, void *buf, size_t len, uint64_t off);
/* Marks the disk chunks holding [off, off + len) of the volume (clipped to it). */
void bm_vol_mark(struct bm_disk *d, const struct bm_vol *v, uint64_t off, uint64_t len);
/* Bytes of the volume that lie in marked chunks. */
uint64_t bm_vol_count(const struct bm_disk *d, const struct bm_vol *v);
/* A one-segment volume at [start, start + size) of the disk; seg is the caller's. */
void bm_vol_linear(struct bm_vol *v, struct bm_seg *seg, int fd, uint64_t start, uint64_t size,
		   const char *mountpoint, const char *what);

/* Sets every chunk overlapping [off, off + len) of the disk, clipped to it. */
void bm_mark(struct bm_disk *d, uint64_t off, uint64_t len);
/* Bytes of [lo, hi) of the disk that lie in set chunks. */
uint64_t bm_count(const struct bm_disk *d, uint64_t lo, uint64_t hi);
/* "<path>: <size>: " + the formatted rest into err (may be NULL). */
void bm_errf(const struct bm_disk *d, char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Formats why (may be NULL) and returns -EUCLEAN: a reader's "cannot be trusted". */
int bm_why(char *why, size_t whycap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* CRC-32C (Castagnoli), as XFS v5 and btrfs checksum their metadata:
 * crc = bm_crc32c(0xffffffff, p, n) ... then ~crc. Bitwise: no table. */
uint32_t bm_crc32c(uint32_t crc, const void *p, size_t n);

/*
 * One format. mark sets what must be sent of an unmounted volume (or of
 * a mounted one when mark_mounted is NULL). Both return 0; -EUCLEAN with
 * a sentence in why when the structures on the volume cannot be trusted
 * (bad magic, a field out of bounds, a loop): the caller sends the
 * volume whole with a WARN; any other -errno (the disk failed, no
 * memory) is fatal to the probe. A reader may have marked part of the
 * volume before failing: harmless, the fallback marks all of it.
 *
 * An entry with mark == NULL names a format that is recognised and sent
 * whole on purpose; note says why ("encrypted").
 */
struct bm_reader {
	const char *name;	  /* "xfs" */
	const char *const *types; /* blkid TYPE values it takes, NULL-terminated */
	enum bm_method method;	  /* what a successful mark means */
	int (*mark)(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap);
	int (*mark_mounted)(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap);
	const char *note; /* for mark == NULL: why it is sent whole */
};

/* The entry taking blkid TYPE fstype, or NULL (unknown: sent whole). */
const struct bm_reader *bm_reader_for(const char *fstype);

/* The readers, each defined in its own file and listed in readers.c. */
extern const struct bm_reader bm_reader_ext, bm_reader_swap, bm_reader_xfs, bm_reader_fat;
extern const struct bm_reader bm_reader_lvm, bm_reader_btrfs;

/*
 * The policy for one volume (map.c): picks the reader for fstype ("" =
 * nothing found), calls mark_mounted when v->mountpoint is set, else
 * mark, and falls back to sending the volume whole with a WARN (log_error)
 * when the reader says -EUCLEAN or there is none. *method and note (may
 * be NULL) say what was done, for the plan. Returns 0 or a fatal -errno
 * with a sentence in err.
 */
int bm_map_vol(struct bm_disk *d, const struct bm_vol *v, const char *fstype,
	       enum bm_method *method, char *note, size_t notecap, char *err, size_t errcap);

/*
 * A mounted filesystem's used space from the kernel (fsmap.c):
 * FS_IOC_GETFSMAP on v->mountpoint, every record but free space marked.
 * 0; -EUCLEAN with why when the records do not fit the volume; another
 * -errno when the kernel or the filesystem does not answer (-ENOTTY,
 * -EOPNOTSUPP) or the mountpoint cannot be opened: the reader decides.
 */
int bm_fsmap_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap);

/*
 * Where volumes are mounted (mount.c). bm_mount_of_dev finds the mount
 * of block device dev (major:minor in mountinfo, or a mount source whose
 * st_rdev is dev: btrfs shows an anonymous device number there).
 * bm_mount_of_part finds partition number of the disk open as fd: a
 * block device through sysfs, an image file through the loop device that
 * holds it at offset start. Each returns 1 with the mountpoint in mnt,
 * 0 when not mounted, or -errno.
 */
int bm_mount_of_dev(dev_t dev, char *mnt, size_t cap);
int bm_mount_of_part(int fd, int number, uint64_t start, char *mnt, size_t cap);

#endif
