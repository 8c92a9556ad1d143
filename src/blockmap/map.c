/*
 * map.c - the used-chunk map of a source disk and the policy behind it:
 * opens the source read-only, sizes it, asks probe.c what is on it and
 * ext.c which ext blocks are allocated, and sets one bit per chunk that
 * must be sent. It owns the bitmap's memory (bm_free releases it) and
 * never writes to the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "blockmap/blockmap_impl.h"
#include "common/common.h"

/* 64 MiB of map covers 2 TiB at 4 KiB chunks, 32 TiB at 64 KiB. */
#define MAP_BYTES_MAX (64u * 1024 * 1024)
#define CHUNK_MIN     4096u
#define CHUNK_MAX     (1u << 30)

void bm_errf(const struct bm_disk *d, char *err, size_t errcap, const char *fmt, ...)
{
	char sz[16];
	va_list ap;
	int n;

	if (!err || errcap == 0)
		return;
	n = snprintf(err, errcap, "%s: %s: ", d->path, fmt_bytes(d->size, sz, sizeof(sz)));
	if (n < 0 || (size_t)n >= errcap)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errcap - (size_t)n, fmt, ap);
	va_end(ap);
}

void bm_mark(struct bm_disk *d, uint64_t off, uint64_t len)
{
	uint64_t i, last;

	if (off >= d->size || len == 0)
		return;
	if (len > d->size - off)
		len = d->size - off;
	i = off / d->chunk;
	last = (off + len - 1) / d->chunk;
	for (; i <= last && (i & 7); i++)
		d->map[i >> 3] |= (uint8_t)(1u << (i & 7));
	if (i + 8 <= last + 1) {
		memset(d->map + (i >> 3), 0xff, (size_t)((last + 1 - i) >> 3));
		i += (last + 1 - i) & ~(uint64_t)7;
	}
	for (; i <= last; i++)
		d->map[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* Bytes of [lo, hi) that lie in set chunks. */
static uint64_t count_set(const struct bm_disk *d, uint64_t lo, uint64_t hi)
{
	uint64_t i, last, n = 0;

	if (hi > d->size)
		hi = d->size;
	if (lo >= hi)
		return 0;
	i = lo / d->chunk;
	last = (hi - 1) / d->chunk;
	while (i <= last) {
		uint64_t cs, ce;

		if ((i & 7) == 0 && i + 8 <= last && d->map[i >> 3] == 0) {
			i += 8;
			continue;
		}
		if (bm_test(d, i)) {
			cs = i * d->chunk;
			ce = cs + d->chunk;
			n += (ce < hi ? ce : hi) - (cs > lo ? cs : lo);
		}
		i++;
	}
	return n;
}

const char *bm_method_name(enum bm_method m)
{
	switch (m) {
	case BM_WHOLE: return "whole";
	case BM_USED: return "used";
	case BM_HEADER: return "header";
	case BM_TABLE: return "table";
	}
	return "?";
}

static enum bm_method method_for(const char *fstype)
{
	if (!strcmp(fstype, "ext2") || !strcmp(fstype, "ext3") || !strcmp(fstype, "ext4") ||
	    !strcmp(fstype, "ext4dev"))
		return BM_USED;
	if (!strcmp(fstype, "swap"))
		return BM_HEADER;
	return BM_WHOLE;
}

/*
 * Marks one area (a partition, or the bare disk) by its filesystem. An
 * ext filesystem that libext2fs cannot use is sent whole with a warning;
 * only errors of the disk itself come back.
 */
static int map_area(struct bm_disk *d, int fd, uint64_t start, uint64_t size, const char *fstype,
		    uint32_t hdr_len, const char *what, enum bm_method *m, char *err, size_t errcap)
{
	char why[256], sz[16];
	int r;

	*m = method_for(fstype);
	if (*m == BM_USED) {
		r = bm_ext_mark(d, fd, start, size, why, sizeof(why));
		if (r == -EUCLEAN) {
			log_error("%s: %s: %s on %s could not be read: %s; sending it whole",
				  d->path, fmt_bytes(d->size, sz, sizeof(sz)), fstype, what, why);
			*m = BM_WHOLE;
		} else if (r) {
			bm_errf(d, err, errcap, "%s on %s could not be read: %s", fstype, what,
				strerror(-r));
			return r;
		}
	}
	if (*m == BM_HEADER)
		bm_mark(d, start, hdr_len < size ? hdr_len : size);
	if (*m == BM_WHOLE)
		bm_mark(d, start, size);
	return 0;
}

static int disk_size(int fd, struct bm_disk *d, char *err, size_t errcap)
{
	struct stat st;
	int ss;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
		d->lsec = 512;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &d->size) != 0 || ioctl(fd, BLKSSZGET, &ss) != 0) {
			int e = -errno;

			bm_errf(d, err, errcap, "cannot get its size: %s", strerror(-e));
			return e;
		}
		d->lsec = ss > 0 ? (uint32_t)ss : 0;
	} else {
		bm_errf(d, err, errcap, "not a block device or a regular file");
		return -EINVAL;
	}
	if (d->size == 0) {
		bm_errf(d, err, errcap, "the disk is empty");
		return -EINVAL;
	}
	return 0;
}

static int is_regular(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int map_alloc(struct bm_disk *d, uint32_t chunk, char *err, size_t errcap)
{
	char cs[16], ms[16], lim[16];
	uint64_t bytes;

	d->chunk = chunk;
	d->nchunks = d->size / chunk + (d->size % chunk != 0);
	bytes = (d->nchunks + 7) / 8;
	if (bytes > MAP_BYTES_MAX) {
		bm_errf(d, err, errcap, "%s chunks need a %s map (limit %s); use larger chunks",
			fmt_bytes(chunk, cs, sizeof(cs)), fmt_bytes(bytes, ms, sizeof(ms)),
			fmt_bytes(MAP_BYTES_MAX, lim, sizeof(lim)));
		return -EFBIG;
	}
	d->map = calloc((size_t)bytes, 1);
	if (!d->map) {
		bm_errf(d, err, errcap, "no memory for a %s map", fmt_bytes(bytes, ms, sizeof(ms)));
		return -ENOMEM;
	}
	return 0;
}

static int build(struct bm_disk *d, int fd, const struct bm_layout *lay, char *err, size_t errcap)
{
	char what[32], sz[16];
	size_t i, j;
	int r;

	if (lay->whole || (d->table[0] && d->fstype[0])) {
		if (!lay->whole)
			log_info("%s: %s: %s signature beside a %s partition table; sending the "
				 "whole disk",
				 d->path, fmt_bytes(d->size, sz, sizeof(sz)), d->fstype, d->table);
		d->method = BM_WHOLE;
		bm_mark(d, 0, d->size);
		for (i = 0; i < d->nparts; i++)
			if (d->parts[i].method != BM_TABLE)
				d->parts[i].method = BM_WHOLE;
	} else if (!d->table[0]) {
		r = map_area(d, fd, 0, d->size, d->fstype, lay->hdr_len[BM_MAX_PARTS], "the disk",
			     &d->method, err, errcap);
		if (r)
			return r;
	} else {
		d->method = BM_TABLE;
		for (i = 0; i < lay->ntab; i++)
			bm_mark(d, lay->tab[i].off, lay->tab[i].len);
		for (i = 0; i < d->nparts; i++) {
			struct bm_part *p = &d->parts[i];

			if (p->method == BM_TABLE)
				continue; /* DOS extended: its EBRs are in lay->tab */
			snprintf(what, sizeof(what), "partition %d", p->number);
			r = map_area(d, fd, p->start, p->size, p->fstype, lay->hdr_len[i], what,
				     &p->method, err, errcap);
			if (r)
				return r;
		}
	}

	for (i = 0; i < d->nparts; i++) {
		struct bm_part *p = &d->parts[i];

		p->used_bytes = count_set(d, p->start, p->start + p->size);
		if (p->method != BM_TABLE)
			continue;
		/* A container counts its EBRs, not the logical partitions inside it. */
		for (j = 0; j < d->nparts; j++) {
			const struct bm_part *q = &d->parts[j];

			if (j != i && q->method != BM_TABLE && q->start >= p->start &&
			    q->start + q->size <= p->start + p->size)
				p->used_bytes -= count_set(d, q->start, q->start + q->size);
		}
	}
	d->map_bytes = count_set(d, 0, d->size);
	return 0;
}

int bm_probe(const char *path, uint32_t chunk, struct bm_disk *d, char *err, size_t errcap)
{
	struct bm_layout lay;
	int fd = -1, r;

	if (err && errcap)
		err[0] = 0;
	if (!d)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	if (!path || !path[0]) {
		if (err && errcap)
			snprintf(err, errcap, "no disk given");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(d->path)) {
		if (err && errcap)
			snprintf(err, errcap, "%.64s...: path longer than %zu bytes", path,
				 sizeof(d->path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(d->path, path, strlen(path) + 1);
	if (chunk == 0)
		chunk = BM_CHUNK_DEFAULT;
	if (chunk < CHUNK_MIN || chunk > CHUNK_MAX || (chunk & (chunk - 1))) {
		if (err && errcap)
			snprintf(err, errcap,
				 "%s: chunk size %" PRIu32
				 " is not a power of two between 4096 and %u",
				 path, chunk, CHUNK_MAX);
		return -EINVAL;
	}

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (err && errcap)
			snprintf(err, errcap, "%s: %s", path, strerror(-r));
		goto out;
	}
	r = disk_size(fd, d, err, errcap);
	if (r)
		goto out;
	/*
	 * A mounted filesystem writes through its partition's device, whose
	 * page cache is not the whole disk's: pages of /dev/sda cached by an
	 * earlier pass (while anyone holds it open) would show old bitmaps.
	 * Drop them so tables and bitmaps come from the disk.
	 */
	if (!is_regular(fd))
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	r = map_alloc(d, chunk, err, errcap);
	if (r)
		goto out;
	r = bm_probe_layout(fd, d, &lay, err, errcap);
	if (r)
		goto out;
	r = build(d, fd, &lay, err, errcap);
out:
	if (fd >= 0)
		close(fd);
	if (r)
		bm_free(d);
	return r;
}

void bm_free(struct bm_disk *d)
{
	if (!d)
		return;
	free(d->map);
	d->map = NULL;
	d->nchunks = 0;
	d->map_bytes = 0;
}
