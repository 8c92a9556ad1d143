/*
 * fsmap.c - a mounted filesystem's own account of its space, through
 * FS_IOC_GETFSMAP on its mountpoint (XFS and ext4 answer it). The kernel
 * answers from its in-memory metadata, so the map includes what the log
 * holds but has not written back. Everything not reported free is sent:
 * metadata, log, inodes, data, and any gap between records. It owns no
 * state and never writes; readers (ext.c, xfs.c) decide what a failure
 * means for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/fsmap.h>

#include "blockmap/reader.h"
#include "common/common.h"

/* Records per ioctl: 64 * 56 bytes on the stack; more calls, not more memory. */
#define FSMAP_RECS 64

/* fsmap_head ends in a flexible array: the records follow it in one buffer. */
#define FSMAP_BUF_WORDS ((sizeof(struct fsmap_head) + FSMAP_RECS * sizeof(struct fsmap)) / 8 + 1)

/* The kernel's new_encode_dev(), which fmr_device carries. */
static uint32_t kdev(dev_t dev)
{
	unsigned ma = major(dev), mi = minor(dev);

	return (mi & 0xffu) | (ma << 8) | ((mi & ~0xffu) << 12);
}

int bm_fsmap_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	uint64_t buf[FSMAP_BUF_WORDS];
	struct fsmap_head *h = (struct fsmap_head *)buf;
	struct stat st;
	uint64_t pos = 0, nrec = 0;
	uint32_t dev;
	int fd, r = 0, done = 0;

	if (!v->mountpoint)
		return -EINVAL;
	fd = open(v->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		r = -errno;
		goto out;
	}
	dev = kdev(st.st_dev);
	memset(buf, 0, sizeof(buf));
	h->fmh_count = FSMAP_RECS;
	h->fmh_keys[1].fmr_device = UINT32_MAX;
	h->fmh_keys[1].fmr_flags = UINT32_MAX;
	h->fmh_keys[1].fmr_physical = UINT64_MAX;
	h->fmh_keys[1].fmr_owner = UINT64_MAX;
	h->fmh_keys[1].fmr_offset = UINT64_MAX;
	while (!done) {
		struct fsmap prev = h->fmh_keys[0];
		uint32_t i, n;

		if (ioctl(fd, FS_IOC_GETFSMAP, h) != 0) {
			r = -errno;
			goto out;
		}
		n = h->fmh_entries;
		if (n == 0)
			break;
		if (n > FSMAP_RECS) {
			r = bm_why(why, whycap, "GETFSMAP returned %u records for %u", n,
				   FSMAP_RECS);
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fsmap *f = &h->fmh_recs[i];
			uint64_t end;

			if (f->fmr_flags & FMR_OF_LAST)
				done = 1;
			if (f->fmr_device != dev)
				continue; /* an external log or realtime device */
			if (f->fmr_physical > v->size ||
			    f->fmr_length > v->size - f->fmr_physical) {
				r = bm_why(why, whycap,
					   "GETFSMAP reports %" PRIu64 "+%" PRIu64
					   " on a volume of %" PRIu64 " bytes",
					   (uint64_t)f->fmr_physical, (uint64_t)f->fmr_length,
					   v->size);
				goto out;
			}
			end = f->fmr_physical + f->fmr_length;
			nrec++;
			if ((f->fmr_flags & FMR_OF_SPECIAL_OWNER) && f->fmr_owner == FMR_OWN_FREE) {
				/* Anything before a free extent that was not reported is sent. */
				if (f->fmr_physical > pos)
					bm_vol_mark(d, v, pos, f->fmr_physical - pos);
			} else if (end > pos) {
				bm_vol_mark(d, v, pos, end - pos);
			}
			if (end > pos)
				pos = end;
		}
		h->fmh_keys[0] = h->fmh_recs[n - 1];
		/* The kernel moves on from the last record; if it did not, stop. */
		if (!memcmp(&prev, &h->fmh_keys[0], sizeof(prev))) {
			r = bm_why(why, whycap, "GETFSMAP did not advance past %" PRIu64,
				   (uint64_t)prev.fmr_physical);
			goto out;
		}
	}
	if (nrec == 0) {
		r = bm_why(why, whycap, "GETFSMAP reported nothing on the data device");
		goto out;
	}
	/* Past the last record lies no filesystem (a partition larger than it). */
out:
	close(fd);
	return r;
}
