/*
 * image.c - opens an image file, detects its format by magic (and holds a
 * given --format to it), walks every extent once at open so that broken
 * or hostile metadata is refused before the first byte is sent, and turns
 * the formats' extent maps into img_read() and img_alloc_map(). It owns
 * the helpers the formats share: the capped allocator, the table caches,
 * the error wording. It never writes to the file and never follows a
 * reference to another file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_impl.h"

#define META_PREFIX "failed to obtain the metadata of the image file: "
#define UNZ_PREFIX  "image decompression failed: "
#define DETECT_LEN  512

/* ---- errors ------------------------------------------------------------ */

static int verr(char *err, size_t errcap, int rc, const char *prefix, const char *name,
		const char *fmt, va_list ap)
{
	int n;

	if (!err || !errcap)
		return rc;
	n = snprintf(err, errcap, "%s%s%s", prefix, name ? name : "", name ? ": " : "");
	if (n >= 0 && (size_t)n < errcap)
		vsnprintf(err + n, errcap - (size_t)n, fmt, ap);
	return rc;
}

int img_err(char *err, size_t errcap, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(err, errcap, rc, "", NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int img_bad(const struct img *im, char *err, size_t errcap, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(err, errcap, rc, META_PREFIX, im && im->ops ? im->ops->name : NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int img_zbad(const struct img *im, char *err, size_t errcap, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(err, errcap, rc, UNZ_PREFIX, im && im->ops ? im->ops->name : NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int img_check_vsize(const struct img *im, uint64_t vsize, char *err, size_t errcap)
{
	char a[16];

	if (vsize <= IMG_VSIZE_MAX)
		return 0;
	return img_bad(im, err, errcap, -EFBIG,
		       "virtual size %llu bytes is beyond the %s this tool accepts",
		       (unsigned long long)vsize, fmt_bytes(IMG_VSIZE_MAX, a, sizeof(a)));
}

void img_quote(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	size_t i, o = 0;

	if (!cap)
		return;
	for (i = 0; i < n && src[i] && o + 1 < cap; i++)
		dst[o++] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	dst[o] = 0;
}

void img_note(char *field, size_t cap, const char *text)
{
	size_t n = strlen(field);

	if (n + 1 >= cap)
		return;
	snprintf(field + n, cap - n, "%s%s", n ? ", " : "", text);
}

/* Magic bytes as the message shows them: printable as is, else \xNN. */
static void fmt_magic(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	size_t i, o = 0;

	dst[0] = 0;
	for (i = 0; i < n && o + 5 < cap; i++) {
		if (p[i] >= 0x21 && p[i] < 0x7f && p[i] != '\\')
			dst[o++] = (char)p[i];
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", p[i]);
	}
	dst[o] = 0;
}

/* ---- memory and I/O ------------------------------------------------------ */

int img_alloc(struct img *im, size_t n, void **p, const char *what, char *err, size_t errcap)
{
	char a[16], b[16];

	*p = NULL;
	if (n > IMG_MEM_MAX || im->mem > IMG_MEM_MAX - n)
		return img_bad(im, err, errcap, -ENOMEM,
			       "%s needs %s, more than the %s an image may use", what,
			       fmt_bytes(n, a, sizeof(a)), fmt_bytes(IMG_MEM_MAX, b, sizeof(b)));
	if (!(*p = calloc(1, n ? n : 1)))
		return img_err(err, errcap, -ENOMEM, "out of memory for the image's %s", what);
	im->mem += n;
	return 0;
}

void img_free(struct img *im, void *p, size_t n)
{
	if (!p)
		return;
	free(p);
	im->mem -= n;
}

int img_pread(struct img *im, void *buf, size_t n, uint64_t off, char *err, size_t errcap)
{
	uint8_t *b = buf;
	uint64_t end;
	ssize_t k;

	if (img_add(off, n, &end) || end > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "%zu bytes at offset %llu lie past the end of the file (%llu bytes)",
			       n, (unsigned long long)off, (unsigned long long)im->file_size);
	while (n) {
		k = pread(im->fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return img_err(err, errcap, -errno,
				       "failed to read the image file at offset %llu: %s",
				       (unsigned long long)off, strerror(errno));
		if (k == 0)
			return img_err(err, errcap, -EIO,
				       "failed to read the image file at offset %llu: it shrank "
				       "while open",
				       (unsigned long long)off);
		b += k;
		off += (uint64_t)k;
		n -= (size_t)k;
	}
	return 0;
}

int img_unit_setup(struct img *im, uint32_t ulen, uint64_t clen, char *err, size_t errcap)
{
	int r;

	if ((r = img_alloc(im, ulen, (void **)&im->ubuf, "decompression buffer", err, errcap)))
		return r;
	im->ucap = ulen;
	if ((r = img_alloc(im, (size_t)clen, (void **)&im->cbuf, "compressed-data buffer", err,
			   errcap)))
		return r;
	im->ccap = clen;
	return img_z_new(im, err, errcap);
}

/* ---- table caches -------------------------------------------------------- */

int img_cache_init(struct img *im, struct img_cache *c, uint32_t slot, const char *what, char *err,
		   size_t errcap)
{
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	return img_alloc(im, (size_t)slot * IMG_CACHE_SLOTS, (void **)&c->buf, what, err, errcap);
}

void img_cache_free(struct img *im, struct img_cache *c)
{
	img_free(im, c->buf, (size_t)c->slot * IMG_CACHE_SLOTS);
	c->buf = NULL;
}

static int cache_get(struct img *im, struct img_cache *c, uint64_t off, uint32_t len,
		     const uint8_t **p, char *err, size_t errcap)
{
	unsigned i, victim = 0;
	int r;

	if (len > c->slot)
		return img_bad(im, err, errcap, -EINVAL, "table window of %u bytes", len);
	for (i = 0; i < IMG_CACHE_SLOTS; i++) {
		if (c->key[i] == off + 1 && c->len[i] == len) {
			c->used[i] = ++c->tick;
			*p = c->buf + (size_t)i * c->slot;
			return 0;
		}
		if (c->used[i] < c->used[victim])
			victim = i;
	}
	c->key[victim] = 0;
	if ((r = img_pread(im, c->buf + (size_t)victim * c->slot, len, off, err, errcap)))
		return r;
	c->key[victim] = off + 1;
	c->len[victim] = len;
	c->used[victim] = ++c->tick;
	*p = c->buf + (size_t)victim * c->slot;
	return 0;
}

int img_table(struct img *im, struct img_cache *c, uint64_t base, uint64_t n, uint32_t esize,
	      uint64_t idx, struct cur *cu, char *err, size_t errcap)
{
	uint64_t at = idx * esize, total = n * esize, w0, wlen;
	const uint8_t *p = NULL;
	int r;

	/* Windows are a multiple of esize, so no entry straddles two. */
	w0 = at - at % (c->slot - c->slot % esize);
	wlen = total - w0 < c->slot - c->slot % esize ? total - w0 : c->slot - c->slot % esize;
	if (idx >= n)
		return img_bad(im, err, errcap, -EINVAL, "table index %llu of %llu",
			       (unsigned long long)idx, (unsigned long long)n);
	if ((r = cache_get(im, c, base + w0, (uint32_t)wlen, &p, err, errcap)))
		return r;
	cur_init(cu, p + (at - w0), (size_t)(wlen - (at - w0)));
	return 0;
}

/* ---- little-endian cursor reads ------------------------------------------ */

int img_le16(struct cur *c, uint16_t *v)
{
	const uint8_t *p;

	*v = cur_ref(c, &p, 2) ? 0 : (uint16_t)(p[0] | p[1] << 8);
	return c->err;
}

int img_le32(struct cur *c, uint32_t *v)
{
	const uint8_t *p;

	*v = cur_ref(c, &p, 4) ? 0
			       : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24;
	return c->err;
}

int img_le64(struct cur *c, uint64_t *v)
{
	uint32_t lo, hi;

	img_le32(c, &lo);
	img_le32(c, &hi);
	*v = c->err ? 0 : (uint64_t)hi << 32 | lo;
	return c->err;
}

int img_skip(struct cur *c, size_t n)
{
	const uint8_t *p;

	return cur_ref(c, &p, n);
}

/* ---- detection ----------------------------------------------------------- */

struct magic {
	const char *name; /* NULL: a format we know and refuse */
	const char *label;
	size_t off;
	const char *bytes;
	size_t len;
};

/* Tried in order at the start of the file; the VHD footer is checked last. */
static const struct magic magics[] = {
    {"qcow2", "qcow2", 0, "QFI\xfb", 4},
    {"vmdk", "vmdk", 0, "KDMV", 4},
    {"vmdk", "vmdk", 0, "# Disk DescriptorFile", 21},
    {"vhd", "vhd", 0, "conectix", 8},
    {NULL, "vmdk (ESX COWD sparse)", 0, "COWD", 4},
    {NULL, "vhdx", 0, "vhdxfile", 8},
    {NULL, "qed", 0, "QED\0", 4},
    {NULL, "vdi", 64, "\x7f\x10\xda\xbe", 4},
    {NULL, "parallels", 0, "WithoutFreeSpace", 16},
    {NULL, "parallels", 0, "WithouFreSpacExt", 16},
};

static const char *canon_format(const char *f)
{
	if (!strcmp(f, "raw") || !strcmp(f, "qcow2") || !strcmp(f, "vhd") || !strcmp(f, "vmdk"))
		return f;
	if (!strcmp(f, "vpc"))
		return "vhd";
	return NULL;
}

/*
 * What the bytes say: *name is the format ("raw" when no magic matched)
 * or NULL for a known format we do not read; label and shown describe
 * the match for messages.
 */
static int detect(struct img *im, const char **name, const char **label, char *shown, size_t shcap,
		  char *err, size_t errcap)
{
	uint8_t head[DETECT_LEN], tail[8];
	size_t n = im->file_size < DETECT_LEN ? (size_t)im->file_size : DETECT_LEN, i;
	int r;

	memset(head, 0, sizeof(head));
	if ((r = img_pread(im, head, n, 0, err, errcap)))
		return r;
	for (i = 0; i < FERRY_ARRAY_LEN(magics); i++) {
		const struct magic *m = &magics[i];

		if (m->off + m->len <= n && !memcmp(head + m->off, m->bytes, m->len)) {
			*name = m->name;
			*label = m->label;
			fmt_magic(shown, shcap, head + m->off, m->len < 8 ? m->len : 8);
			return 0;
		}
	}
	if (im->file_size >= 1024) {
		if ((r = img_pread(im, tail, 8, im->file_size - 512, err, errcap)))
			return r;
		if (!memcmp(tail, "conectix", 8)) {
			*name = *label = "vhd";
			snprintf(shown, shcap, "conectix at the end");
			return 0;
		}
	}
	*name = *label = "raw";
	fmt_magic(shown, shcap, head, n < 4 ? n : 4);
	return 0;
}

/* ---- the extent walk ------------------------------------------------------ */

/* map() plus the checks every format's answer must pass. */
static int map_at(struct img *im, uint64_t off, struct img_ext *e, char *err, size_t errcap)
{
	uint64_t end;
	int r;

	memset(e, 0, sizeof(*e));
	if ((r = im->ops->map(im, off, e, err, errcap)))
		return r;
	if (e->len == 0)
		return img_bad(im, err, errcap, -EIO, "empty extent at %llu",
			       (unsigned long long)off);
	if (e->len > im->vsize - off)
		e->len = im->vsize - off;
	switch (e->kind) {
	case IMG_EXT_ZERO: break;
	case IMG_EXT_DATA:
		if (img_add(e->foff, e->len, &end) || end > im->data_end)
			return img_bad(im, err, errcap, -EINVAL,
				       "data for virtual offset %llu lies at file offset %llu, "
				       "past the end of the file's data (%llu bytes)",
				       (unsigned long long)off, (unsigned long long)e->foff,
				       (unsigned long long)im->data_end);
		break;
	case IMG_EXT_PACKED:
		if (off < e->uoff || e->ulen > im->ucap || off - e->uoff >= e->ulen ||
		    e->foff >= im->data_end || e->clen == 0 || e->clen > im->ccap)
			return img_bad(im, err, errcap, -EINVAL,
				       "compressed unit for virtual offset %llu at file offset "
				       "%llu is out of bounds",
				       (unsigned long long)off, (unsigned long long)e->foff);
		if (e->len > e->ulen - (off - e->uoff))
			e->len = e->ulen - (off - e->uoff);
		break;
	default: return img_bad(im, err, errcap, -EIO, "bad extent kind");
	}
	return 0;
}

/*
 * Every extent once: the allocated byte count for img_info, and every
 * table entry checked. Plain data cannot exceed what the file holds (two
 * entries sharing clusters would let a small file claim terabytes), which
 * also bounds the walk by the file's size.
 */
static int walk_all(struct img *im, char *err, size_t errcap)
{
	struct img_ext e;
	uint64_t off = 0, data = 0, alloc = 0;
	char a[16], b[16];
	int r;

	while (off < im->vsize) {
		if ((r = map_at(im, off, &e, err, errcap)))
			return r;
		if (e.kind == IMG_EXT_DATA) {
			data += e.len;
			if (data > im->data_end)
				return img_bad(im, err, errcap, -EINVAL,
					       "the tables map %s of data but the file holds only "
					       "%s: entries overlap",
					       fmt_bytes(data, a, sizeof(a)),
					       fmt_bytes(im->data_end, b, sizeof(b)));
		}
		if (e.kind != IMG_EXT_ZERO)
			alloc += e.len;
		if (e.kind == IMG_EXT_PACKED && off == e.uoff)
			im->n_packed++;
		off += e.len;
	}
	im->info.allocated = alloc;
	return 0;
}

/* ---- the API ------------------------------------------------------------- */

int img_open(const char *path, const char *format, struct img **out, char *err, size_t errcap)
{
	const char *want = NULL, *name = NULL, *label = NULL;
	char shown[48];
	struct img *im = NULL;
	struct stat st;
	off_t end;
	int r = 0;

	*out = NULL;
	if (err && errcap)
		err[0] = 0;
	if (format && !(want = canon_format(format)))
		return img_err(err, errcap, -EINVAL,
			       META_PREFIX "unknown format \"%s\" (raw, qcow2, vhd, vmdk)", format);
	if (!(im = calloc(1, sizeof(*im))))
		return img_err(err, errcap, -ENOMEM, "out of memory");
	im->fd = -1;
	im->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (im->fd < 0) {
		r = img_err(err, errcap, -errno, META_PREFIX "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(im->fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		r = img_err(err, errcap, -EINVAL,
			    META_PREFIX "%s: not a regular file or block device", path);
		goto out;
	}
	/* SEEK_END also sizes block devices. */
	if ((end = lseek(im->fd, 0, SEEK_END)) < 0) {
		r = img_err(err, errcap, -errno, META_PREFIX "%s: %s", path, strerror(errno));
		goto out;
	}
	im->file_size = (uint64_t)end;
	im->info.file_size = im->file_size;
	if ((r = detect(im, &name, &label, shown, sizeof(shown), err, errcap)))
		goto out;
	if (want && (!name || strcmp(want, name))) {
		r = img_err(err, errcap, -EINVAL,
			    META_PREFIX "--format %s but the file is %s (magic %s)", format, label,
			    shown);
		goto out;
	}
	if (!name) {
		r = img_err(err, errcap, -ENOTSUP,
			    META_PREFIX "%s images are not supported (magic %s): convert it to "
					"qcow2 or raw first",
			    label, shown);
		goto out;
	}
	if (!strcmp(name, "qcow2"))
		im->ops = &img_qcow2_ops;
	else if (!strcmp(name, "vhd"))
		im->ops = &img_vhd_ops;
	else if (!strcmp(name, "vmdk"))
		im->ops = &img_vmdk_ops;
	else
		im->ops = &img_raw_ops;
	snprintf(im->info.format, sizeof(im->info.format), "%s", im->ops->name);
	im->data_end = im->file_size;
	if ((r = im->ops->open(im, err, errcap)))
		goto out;
	if ((r = img_check_vsize(im, im->vsize, err, errcap)))
		goto out;
	im->info.virtual_size = im->vsize;
	if ((r = walk_all(im, err, errcap)))
		goto out;
	if (im->n_packed && im->ops->packed_word)
		img_note(im->info.features, sizeof(im->info.features), im->ops->packed_word);
	if (im->n_zero && im->ops->zero_word)
		img_note(im->info.features, sizeof(im->info.features), im->ops->zero_word);
	*out = im;
	im = NULL;
out:
	img_close(im);
	return r;
}

void img_info(const struct img *im, struct img_info *info)
{
	*info = im->info;
}

int img_read(struct img *im, void *buf, size_t len, uint64_t off, char *err, size_t errcap)
{
	uint8_t *b = buf;
	struct img_ext e;
	uint64_t end;
	size_t n;
	int r;

	if (img_add(off, len, &end) || end > im->vsize)
		return img_err(err, errcap, -EINVAL,
			       "read of %zu bytes at %llu is past the end of the virtual disk "
			       "(%llu bytes)",
			       len, (unsigned long long)off, (unsigned long long)im->vsize);
	while (len) {
		if ((r = map_at(im, off, &e, err, errcap)))
			return r;
		n = e.len < len ? (size_t)e.len : len;
		switch (e.kind) {
		case IMG_EXT_ZERO: memset(b, 0, n); break;
		case IMG_EXT_DATA:
			if ((r = img_pread(im, b, n, e.foff, err, errcap)))
				return r;
			break;
		case IMG_EXT_PACKED:
			if (im->ukey != e.uoff + 1) {
				im->ukey = 0;
				if ((r = im->ops->unpack(im, &e, im->ubuf, err, errcap)))
					return r;
				im->ukey = e.uoff + 1;
			}
			memcpy(b, im->ubuf + (off - e.uoff), n);
			break;
		}
		b += n;
		off += n;
		len -= n;
	}
	return 0;
}

int img_alloc_map(struct img *im, uint32_t chunk, uint8_t *bits, uint64_t nchunks, char *err,
		  size_t errcap)
{
	struct img_ext e;
	uint64_t off = 0, first, last, i;
	int r;

	if (chunk < 4096 || (chunk & (chunk - 1)))
		return img_err(err, errcap, -EINVAL, "chunk size %u is not a power of two >= 4096",
			       chunk);
	if (nchunks < im->vsize / chunk + (im->vsize % chunk != 0))
		return img_err(err, errcap, -EINVAL,
			       "%llu chunks of %u bytes do not cover the virtual size %llu",
			       (unsigned long long)nchunks, chunk, (unsigned long long)im->vsize);
	while (off < im->vsize) {
		if ((r = map_at(im, off, &e, err, errcap)))
			return r;
		if (e.kind == IMG_EXT_ZERO) {
			off += e.len;
			continue;
		}
		first = off / chunk;
		last = (off + e.len - 1) / chunk;
		for (i = first; i <= last; i++)
			bits[i / 8] |= (uint8_t)(1u << (i % 8));
		/* The rest of the last chunk is marked already: skip it. */
		off = (last + 1) * (uint64_t)chunk;
	}
	return 0;
}

void img_close(struct img *im)
{
	if (!im)
		return;
	if (im->ops && im->ops->close)
		im->ops->close(im);
	img_z_free(im);
	img_free(im, im->ubuf, im->ucap);
	img_free(im, im->cbuf, (size_t)im->ccap);
	if (im->fd >= 0)
		close(im->fd);
	free(im);
}
