/*
 * vol.c - the lowest layer of src/blockmap: setting and counting bits of
 * the used-chunk map, and reading and marking a volume through its
 * segments. Every reader goes through these, so a volume's bounds are
 * checked here once, whatever the reader believed. It calls nothing else
 * in blockmap and never writes to the disk.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blockmap/reader.h"
#include "common/common.h"

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

int bm_why(char *why, size_t whycap, const char *fmt, ...)
{
	va_list ap;

	if (why && whycap) {
		va_start(ap, fmt);
		vsnprintf(why, whycap, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
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

uint64_t bm_count(const struct bm_disk *d, uint64_t lo, uint64_t hi)
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

void bm_vol_linear(struct bm_vol *v, struct bm_seg *seg, int fd, uint64_t start, uint64_t size,
		   const char *mountpoint, const char *what)
{
	memset(v, 0, sizeof(*v));
	seg->vol_off = 0;
	seg->disk_off = start;
	seg->len = size;
	v->fd = fd;
	v->size = size;
	v->seg = seg;
	v->nseg = 1;
	v->mountpoint = mountpoint;
	snprintf(v->what, sizeof(v->what), "%s", what);
}

/* The segment holding volume offset off (binary search: LVs may have many). */
static const struct bm_seg *seg_at(const struct bm_vol *v, uint64_t off)
{
	size_t lo = 0, hi = v->nseg;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bm_seg *s = &v->seg[mid];

		if (off < s->vol_off)
			hi = mid;
		else if (off - s->vol_off >= s->len)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

int bm_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t got = 0;

	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the disk shrank under us */
		got += (size_t)n;
	}
	return 0;
}

int bm_vol_read(const struct bm_vol *v, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	if (off > v->size || len > v->size - off)
		return -EINVAL;
	while (len) {
		const struct bm_seg *s = seg_at(v, off);
		uint64_t in, n;
		int r;

		if (!s)
			return -EINVAL;
		in = off - s->vol_off;
		n = s->len - in < len ? s->len - in : len;
		r = bm_pread(v->fd, p, (size_t)n, s->disk_off + in);
		if (r)
			return r;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

void bm_vol_mark(struct bm_disk *d, const struct bm_vol *v, uint64_t off, uint64_t len)
{
	if (off >= v->size || len == 0)
		return;
	if (len > v->size - off)
		len = v->size - off;
	while (len) {
		const struct bm_seg *s = seg_at(v, off);
		uint64_t in, n;

		if (!s)
			return;
		in = off - s->vol_off;
		n = s->len - in < len ? s->len - in : len;
		bm_mark(d, s->disk_off + in, n);
		off += n;
		len -= n;
	}
}

uint64_t bm_vol_count(const struct bm_disk *d, const struct bm_vol *v)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < v->nseg; i++)
		n += bm_count(d, v->seg[i].disk_off, v->seg[i].disk_off + v->seg[i].len);
	return n;
}

uint32_t bm_crc32c(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	int k;

	while (n--) {
		crc ^= *b++;
		for (k = 0; k < 8; k++)
			crc = crc >> 1 ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc;
}
