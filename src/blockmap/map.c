/*
 * map.c - the policy behind the used-chunk map of a source disk: opens
 * the source read-only, sizes it, allocates the bitmap (bm_free releases
 * it), asks probe.c what is on the disk and mount.c where it is mounted,
 * and maps each partition (or the bare disk) through the reader the
 * table names for its filesystem - falling back to sending it whole,
 * with a WARN, when there is none or it cannot be trusted. It never
 * parses a filesystem itself and never writes to the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "blockmap/probe.h"
#include "blockmap/reader.h"
#include "common/common.h"

/* 64 MiB of map covers 2 TiB at 4 KiB chunks, 32 TiB at 64 KiB. */
#define MAP_BYTES_MAX (64u * 1024 * 1024)
#define CHUNK_MIN     4096u
#define CHUNK_MAX     (1u << 30)

const char *bm_method_name(enum bm_method m)
{
	switch (m) {
	case BM_WHOLE: return "whole";
	case BM_USED: return "used";
	case BM_HEADER: return "header";
	case BM_TABLE: return "table";
	case BM_VOLUME: return "volumes";
	}
	return "?";
}

void bm_describe(enum bm_method m, const char *note, char *out, size_t cap)
{
	const char *what = m == BM_USED	   ? "used blocks"
			   : m == BM_WHOLE ? "sent whole"
			   : m == BM_VOLUME ? "volumes by their filesystems"
					    : bm_method_name(m);

	if (note && note[0])
		snprintf(out, cap, "%s (%s)", what, note);
	else
		snprintf(out, cap, "%s", what);
}

/* The segments cover [0, size) in order, each inside the disk. */
static int segs_ok(const struct bm_disk *d, const struct bm_vol *v)
{
	uint64_t at = 0;
	size_t i;

	if (v->nseg == 0 || v->nseg > BM_MAX_SEGS)
		return 0;
	for (i = 0; i < v->nseg; i++) {
		const struct bm_seg *s = &v->seg[i];

		if (s->vol_off != at || s->len == 0 || s->disk_off > d->size ||
		    s->len > d->size - s->disk_off)
			return 0;
		at += s->len;
	}
	return at == v->size;
}

static void mark_whole(struct bm_disk *d, const struct bm_vol *v)
{
	size_t i;

	for (i = 0; i < v->nseg && i < BM_MAX_SEGS; i++)
		bm_mark(d, v->seg[i].disk_off, v->seg[i].len);
}

int bm_map_vol(struct bm_disk *d, const struct bm_vol *v, const char *fstype,
	       enum bm_method *method, char *note, size_t notecap, char *err, size_t errcap)
{
	int (*mark)(struct bm_disk *, const struct bm_vol *, char *, size_t);
	const struct bm_reader *rd = bm_reader_for(fstype);
	char why[BM_WHY_MAX] = "", sz[16];
	int r;

	*method = BM_WHOLE;
	if (note && notecap)
		note[0] = 0;
	if (!segs_ok(d, v) || v->depth > BM_MAX_DEPTH) {
		/* A volume reader's bug or a layout past what we follow: all of it. */
		log_error("%s: %s: %s: %zu segments (depth %d) do not describe %" PRIu64
			  " bytes inside the disk; sending them whole",
			  d->path, fmt_bytes(d->size, sz, sizeof(sz)), v->what, v->nseg, v->depth,
			  v->size);
		mark_whole(d, v);
		if (note && notecap)
			snprintf(note, notecap, "layout not followed");
		return 0;
	}
	if (!rd || !rd->mark) {
		mark_whole(d, v);
		if (note && notecap)
			snprintf(note, notecap, "%s",
				 rd ? rd->note : fstype && fstype[0] ? "no reader" : "");
		return 0;
	}
	mark = v->mountpoint && rd->mark_mounted ? rd->mark_mounted : rd->mark;
	r = mark(d, v, why, sizeof(why));
	if (r == -EUCLEAN) {
		log_error("%s: %s: %s on %s could not be read: %s; sending it whole", d->path,
			  fmt_bytes(d->size, sz, sizeof(sz)), fstype, v->what, why);
		mark_whole(d, v);
		if (note && notecap)
			snprintf(note, notecap, "unreadable: %s", why);
		return 0;
	}
	if (r) {
		bm_errf(d, err, errcap, "%s on %s could not be read: %s", fstype, v->what,
			strerror(-r));
		return r;
	}
	/* On success a reader may leave a remark for the plan in why. */
	if (note && notecap)
		snprintf(note, notecap, "%s", why);
	*method = rd->method;
	return 0;
}

/*
 * One area (a partition, or the bare disk) through bm_map_vol, mounted
 * or not. A note probe.c left (two signatures) outlives an empty one.
 */
static int map_area(struct bm_disk *d, int fd, int number, uint64_t start, uint64_t size,
		    const char *fstype, const char *what, enum bm_method *m, char *note,
		    char *err, size_t errcap)
{
	char mnt[BM_PATH_MAX], nb[BM_NOTE_MAX];
	struct bm_seg seg;
	struct bm_vol v;
	int r;

	if (size == 0) {
		*m = BM_WHOLE;
		return 0;
	}
	r = fstype[0] ? bm_mount_of_part(fd, number, start, mnt, sizeof(mnt)) : 0;
	if (r < 0)
		log_debug("%s: where %s is mounted: %s", d->path, what, strerror(-r));
	bm_vol_linear(&v, &seg, fd, start, size, r > 0 ? mnt : NULL, what);
	r = bm_map_vol(d, &v, fstype, m, nb, sizeof(nb), err, errcap);
	if (r)
		return r;
	if (nb[0] || !note[0])
		memcpy(note, nb, sizeof(nb));
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
		r = map_area(d, fd, 0, 0, d->size, d->fstype, "the disk", &d->method, d->note, err,
			     errcap);
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
			r = map_area(d, fd, p->number, p->start, p->size, p->fstype, what,
				     &p->method, p->note, err, errcap);
			if (r)
				return r;
		}
	}

	for (i = 0; i < d->nparts; i++) {
		struct bm_part *p = &d->parts[i];

		p->used_bytes = bm_count(d, p->start, p->start + p->size);
		if (p->method != BM_TABLE)
			continue;
		/* A container counts its EBRs, not the logical partitions inside it. */
		for (j = 0; j < d->nparts; j++) {
			const struct bm_part *q = &d->parts[j];

			if (j != i && q->method != BM_TABLE && q->start >= p->start &&
			    q->start + q->size <= p->start + p->size)
				p->used_bytes -= bm_count(d, q->start, q->start + q->size);
		}
	}
	d->map_bytes = bm_count(d, 0, d->size);
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
