/*
 * vmdk.c - VMDK hosted sparse extents (VMware's Virtual Disk Format 5.0):
 * monolithicSparse (one sparse extent with its descriptor embedded) and
 * streamOptimized (deflate grains, each behind a 12-byte grain header,
 * metadata behind markers, and the grain directory possibly only in the
 * footer: gdOffset GD_AT_END). Grain directory in windows, grain tables
 * in a small cache. A descriptor that names any other extent file, a
 * parent (delta disk) or another createType is refused, as is any table
 * or grain outside the file or over the header, descriptor or directory.
 * Markers are never scanned: grains are found through the tables only.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "image/image_impl.h"

#define SECTOR	       512u
#define VMDK_MAGIC     0x564d444bu /* "KDMV" little-endian */
#define GD_AT_END      0xffffffffffffffffull
#define FLAG_NL_DETECT (1u << 0)
#define FLAG_ZERO_GTE  (1u << 2)
#define FLAG_COMPRESS  (1u << 16)
#define FLAG_MARKERS   (1u << 17)
#define ALGO_DEFLATE   1
#define MARKER_EOS     0
#define MARKER_FOOTER  3
#define GRAIN_HDR      12
#define GRAIN_MAX_SEC  (IMG_UNIT_MAX / SECTOR)
#define GTES_MAX       65536u
#define DESC_MAX       (1u << 20)

struct vmdk {
	uint32_t flags, gtes;
	uint64_t capacity, grain_sec, grain; /* grain in bytes */
	uint64_t desc_off, desc_len, gd_off, gd_entries;
	int compressed, markers;
	struct img_cache gdc, gtc;
};

struct vhdr {
	uint32_t magic, version, flags, gtes;
	uint64_t capacity, grain, desc_off, desc_size, rgd_off, gd_off, overhead;
	uint8_t unclean, nl[4];
	uint16_t algo;
};

static int parse_hdr(const uint8_t *p, struct vhdr *h)
{
	struct cur c;

	cur_init(&c, p, SECTOR);
	img_le32(&c, &h->magic);
	img_le32(&c, &h->version);
	img_le32(&c, &h->flags);
	img_le64(&c, &h->capacity);
	img_le64(&c, &h->grain);
	img_le64(&c, &h->desc_off);
	img_le64(&c, &h->desc_size);
	img_le32(&c, &h->gtes);
	img_le64(&c, &h->rgd_off);
	img_le64(&c, &h->gd_off);
	img_le64(&c, &h->overhead);
	cur_u8(&c, &h->unclean);
	cur_bytes(&c, h->nl, 4);
	img_le16(&c, &h->algo);
	return c.err;
}

/*
 * With gdOffset GD_AT_END the real header is the footer: the last three
 * sectors are a footer marker, the footer, and the end-of-stream marker.
 */
static int read_footer(struct img *im, struct vhdr *h, char *err, size_t errcap)
{
	uint8_t b[3 * SECTOR];
	uint64_t fm_sec, eos_sec;
	uint32_t fm_size, fm_type, eos_size, eos_type;
	struct cur c;
	int r;

	if (im->file_size < 4 * SECTOR)
		return img_bad(im, err, errcap, -EINVAL,
			       "gdOffset is GD_AT_END but the file is too short for a footer");
	if ((r = img_pread(im, b, sizeof(b), im->file_size - sizeof(b), err, errcap)))
		return r;
	cur_init(&c, b, SECTOR);
	img_le64(&c, &fm_sec);
	img_le32(&c, &fm_size);
	img_le32(&c, &fm_type);
	cur_init(&c, b + 2 * SECTOR, SECTOR);
	img_le64(&c, &eos_sec);
	img_le32(&c, &eos_size);
	img_le32(&c, &eos_type);
	if (fm_size != 0 || fm_type != MARKER_FOOTER || eos_sec != 0 || eos_size != 0 ||
	    eos_type != MARKER_EOS)
		return img_bad(im, err, errcap, -EINVAL,
			       "gdOffset is GD_AT_END but the file does not end in a footer "
			       "marker, footer and end-of-stream marker");
	if ((r = parse_hdr(b + SECTOR, h)) || h->magic != VMDK_MAGIC)
		return img_bad(im, err, errcap, -EINVAL, "the footer has no VMDK magic");
	if (h->gd_off == GD_AT_END)
		return img_bad(im, err, errcap, -EINVAL, "the footer's gdOffset is GD_AT_END too");
	return 0;
}

/* One "key=value" or extent line of the descriptor. */
struct desc {
	char create[48];
	char extent_file[128];
	int extents, bad_extent, parent;
	uint64_t extent_sec;
	char parent_hint[128];
};

static void trim(char **s, char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
		(*e)--;
}

/* The value of key="v" or key=v on one line, unquoted, into dst. */
static int line_value(const char *s, const char *e, const char *key, char *dst, size_t cap)
{
	size_t kl = strlen(key);
	const char *v;

	if ((size_t)(e - s) <= kl || strncmp(s, key, kl))
		return 0;
	v = s + kl;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	if (v >= e || *v != '=')
		return 0;
	v++;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	if (v < e && *v == '"') {
		v++;
		if (e > v && e[-1] == '"')
			e--;
	}
	img_quote(dst, cap, (const uint8_t *)v, (size_t)(e - v));
	return 1;
}

/* "RW 2048 SPARSE "name.vmdk"" (access, sectors, type, file, offset). */
static void extent_line(const char *s, const char *e, struct desc *d)
{
	const char *p = s, *q;
	char tok[16];
	size_t n;

	d->extents++;
	while (p < e && *p != ' ' && *p != '\t')
		p++;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	d->extent_sec = strtoull(p, NULL, 10);
	while (p < e && *p != ' ' && *p != '\t')
		p++;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	for (q = p; q < e && *q != ' ' && *q != '\t'; q++)
		;
	n = (size_t)(q - p) < sizeof(tok) - 1 ? (size_t)(q - p) : sizeof(tok) - 1;
	memcpy(tok, p, n);
	tok[n] = 0;
	if (strcmp(tok, "SPARSE"))
		d->bad_extent = 1;
	p = memchr(q, '"', (size_t)(e - q));
	if (!p || !(q = memchr(p + 1, '"', (size_t)(e - p - 1))))
		d->bad_extent = 1;
	else if (!d->extent_file[0]) /* the first one names the set */
		img_quote(d->extent_file, sizeof(d->extent_file), (const uint8_t *)p + 1,
			  (size_t)(q - p - 1));
}

static void parse_desc(const char *t, size_t len, struct desc *d)
{
	const char *s = t, *end = t + len, *nl;
	char *ls, *le, pcid[32];

	memset(d, 0, sizeof(*d));
	while (s < end && *s) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			nl = end;
		ls = (char *)(uintptr_t)s;
		le = (char *)(uintptr_t)nl;
		trim(&ls, &le);
		if (ls < le && *ls != '#') {
			if (line_value(ls, le, "createType", d->create, sizeof(d->create)))
				;
			else if (line_value(ls, le, "parentCID", pcid, sizeof(pcid))) {
				if (strcmp(pcid, "ffffffff"))
					d->parent = 1;
			} else if (line_value(ls, le, "parentFileNameHint", d->parent_hint,
					      sizeof(d->parent_hint)))
				d->parent = 1;
			else if ((le - ls > 3 && !strncmp(ls, "RW ", 3)) ||
				 (le - ls > 7 && !strncmp(ls, "RDONLY ", 7)) ||
				 (le - ls > 9 && !strncmp(ls, "NOACCESS ", 9)))
				extent_line(ls, le, d);
		}
		s = nl + 1;
	}
}

static int check_desc(struct img *im, const char *text, size_t len, uint64_t capacity, int embedded,
		      char *err, size_t errcap)
{
	struct desc d;

	parse_desc(text, len, &d);
	if (d.parent)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "a delta disk (parent \"%s\"): images that reference other files "
			       "are not supported",
			       d.parent_hint);
	if (embedded && d.extents == 0)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "the embedded descriptor names no extent: an extent of a split "
			       "image? (images that reference other files are not supported)");
	if (!embedded || d.extents != 1 || d.bad_extent)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "the descriptor (createType \"%s\") references %d extent file%s "
			       "(\"%s\"%s): images that reference other files are not supported "
			       "(convert to monolithicSparse or streamOptimized)",
			       d.create, d.extents, d.extents == 1 ? "" : "s", d.extent_file,
			       d.extents > 1 ? ", ..." : "");
	if (strcmp(d.create, "monolithicSparse") && strcmp(d.create, "streamOptimized"))
		return img_bad(im, err, errcap, -ENOTSUP,
			       "createType \"%s\" is not supported (monolithicSparse, "
			       "streamOptimized)",
			       d.create);
	if (d.extent_sec != capacity)
		return img_bad(im, err, errcap, -EINVAL,
			       "the descriptor's extent has %llu sectors, the header %llu",
			       (unsigned long long)d.extent_sec, (unsigned long long)capacity);
	snprintf(im->info.subformat, sizeof(im->info.subformat), "%.31s", d.create);
	return 0;
}

/* A text descriptor file: always refused, but with what it references. */
static int open_text(struct img *im, char *err, size_t errcap)
{
	size_t n = im->file_size < DESC_MAX ? (size_t)im->file_size : DESC_MAX;
	char *t = NULL;
	int r;

	if ((r = img_alloc(im, n + 1, (void **)&t, "VMDK descriptor", err, errcap)))
		return r;
	if (!(r = img_pread(im, t, n, 0, err, errcap)))
		r = check_desc(im, t, n, 0, 0, err, errcap);
	img_free(im, t, n + 1);
	return r;
}

static int check_hdr(struct img *im, struct vmdk *v, const struct vhdr *h, char *err, size_t errcap)
{
	uint64_t vs, span, end;
	int r;

	if (h->version < 1 || h->version > 3)
		return img_bad(im, err, errcap, -ENOTSUP, "version %u is not supported",
			       h->version);
	if ((h->flags & FLAG_NL_DETECT) &&
	    (h->nl[0] != '\n' || h->nl[1] != ' ' || h->nl[2] != '\r' || h->nl[3] != '\n'))
		return img_bad(im, err, errcap, -EINVAL,
			       "the newline check bytes are damaged (copied in text mode?)");
	if (img_mul(h->capacity, SECTOR, &vs))
		vs = UINT64_MAX;
	if ((r = img_check_vsize(im, vs, err, errcap)))
		return r;
	if (h->grain < 1 || h->grain > GRAIN_MAX_SEC || (h->grain & (h->grain - 1)))
		return img_bad(im, err, errcap, -EINVAL,
			       "grain size %llu sectors is not a power of two up to %u",
			       (unsigned long long)h->grain, GRAIN_MAX_SEC);
	if (h->gtes < 1 || h->gtes > GTES_MAX)
		return img_bad(im, err, errcap, -EINVAL,
			       "%u entries per grain table is outside 1..%u", h->gtes, GTES_MAX);
	v->compressed = !!(h->flags & FLAG_COMPRESS);
	v->markers = !!(h->flags & FLAG_MARKERS);
	if (v->compressed && h->algo != ALGO_DEFLATE)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "compression algorithm %u is not supported (only deflate)", h->algo);
	v->flags = h->flags;
	v->gtes = h->gtes;
	v->capacity = h->capacity;
	v->grain_sec = h->grain;
	v->grain = h->grain * SECTOR;
	span = v->grain_sec * v->gtes;
	v->gd_entries = v->capacity / span + (v->capacity % span != 0);
	if (img_mul(h->gd_off, SECTOR, &v->gd_off) || v->gd_off < SECTOR ||
	    img_add(v->gd_off, v->gd_entries * 4, &end) || end > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "the grain directory (sector %llu, %llu entries) lies outside the "
			       "file (%llu bytes)",
			       (unsigned long long)h->gd_off, (unsigned long long)v->gd_entries,
			       (unsigned long long)im->file_size);
	if (img_overlap(v->gd_off, v->gd_entries * 4, v->desc_off, v->desc_len))
		return img_bad(im, err, errcap, -EINVAL,
			       "the grain directory overlaps the descriptor");
	im->vsize = vs;
	return 0;
}

static int vmdk_open(struct img *im, char *err, size_t errcap)
{
	uint8_t sec[SECTOR];
	struct vhdr h;
	struct vmdk *v;
	uint64_t end;
	char *t = NULL;
	int r;

	if ((r = img_alloc(im, sizeof(*v), (void **)&v, "VMDK state", err, errcap)))
		return r;
	im->priv = v;
	memset(sec, 0, sizeof(sec));
	if ((r = img_pread(im, sec, im->file_size < SECTOR ? (size_t)im->file_size : SECTOR, 0, err,
			   errcap)))
		return r;
	if (!memcmp(sec, "# Disk DescriptorFile", 21))
		return open_text(im, err, errcap);
	if (parse_hdr(sec, &h) || h.magic != VMDK_MAGIC || im->file_size < SECTOR)
		return img_bad(im, err, errcap, -EINVAL, "the file is too short for a header");
	/* The descriptor: embedded, bounded, inside the file and after the header. */
	if (img_mul(h.desc_off, SECTOR, &v->desc_off) || img_mul(h.desc_size, SECTOR, &v->desc_len))
		v->desc_off = v->desc_len = UINT64_MAX;
	if (!h.desc_off || !h.desc_size)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "no embedded descriptor: an extent of a split image? (images that "
			       "reference other files are not supported)");
	if (v->desc_len > DESC_MAX || img_add(v->desc_off, v->desc_len, &end) ||
	    end > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "the descriptor (sector %llu, %llu sectors) lies outside the file "
			       "or is larger than 1 MiB",
			       (unsigned long long)h.desc_off, (unsigned long long)h.desc_size);
	if ((r = img_alloc(im, (size_t)v->desc_len + 1, (void **)&t, "VMDK descriptor", err,
			   errcap)))
		return r;
	if ((r = img_pread(im, t, (size_t)v->desc_len, v->desc_off, err, errcap)))
		goto out;
	if (h.gd_off == GD_AT_END && (r = read_footer(im, &h, err, errcap)))
		goto out;
	if ((r = check_hdr(im, v, &h, err, errcap)) ||
	    (r = check_desc(im, t, (size_t)v->desc_len, h.capacity, 1, err, errcap)))
		goto out;
	if (v->compressed)
		img_note(im->info.features, sizeof(im->info.features), "deflate");
	if (v->markers)
		img_note(im->info.features, sizeof(im->info.features), "markers");
	if (h.unclean)
		img_note(im->info.warnings, sizeof(im->info.warnings),
			 "the image was not closed cleanly");
	if ((r = img_cache_init(im, &v->gdc, IMG_WINDOW, "VMDK grain directory cache", err,
				errcap)) ||
	    (r = img_cache_init(im, &v->gtc, v->gtes * 4, "VMDK grain table cache", err, errcap)))
		goto out;
	if (v->compressed &&
	    (r = img_unit_setup(im, (uint32_t)v->grain, 2 * v->grain + GRAIN_HDR, err, errcap)))
		goto out;
out:
	img_free(im, t, (size_t)v->desc_len + 1);
	return r;
}

/* [off, off+len) must not overlap the header, descriptor or directory. */
static int check_place(struct img *im, struct vmdk *v, uint64_t off, uint64_t len, uint64_t gt_off,
		       const char *what, uint64_t idx, char *err, size_t errcap)
{
	if (off >= im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "%s %llu at offset %llu points past the end of the file (%llu "
			       "bytes)",
			       what, (unsigned long long)idx, (unsigned long long)off,
			       (unsigned long long)im->file_size);
	if (len > im->file_size - off)
		len = im->file_size - off;
	if (img_overlap(off, len, 0, SECTOR) || img_overlap(off, len, v->desc_off, v->desc_len) ||
	    img_overlap(off, len, v->gd_off, v->gd_entries * 4))
		return img_bad(im, err, errcap, -EINVAL,
			       "%s %llu at offset %llu overlaps the header, descriptor or grain "
			       "directory",
			       what, (unsigned long long)idx, (unsigned long long)off);
	if (gt_off && img_overlap(off, len, gt_off, (uint64_t)v->gtes * 4))
		return img_bad(im, err, errcap, -EINVAL,
			       "%s %llu at offset %llu overlaps its own grain table", what,
			       (unsigned long long)idx, (unsigned long long)off);
	return 0;
}

/* Zero for an unallocated grain or a zeroed-grain entry. */
static int is_zero_gte(const struct vmdk *v, uint32_t gte)
{
	return gte == 0 || (gte == 1 && (v->flags & FLAG_ZERO_GTE));
}

static int vmdk_map(struct img *im, uint64_t off, struct img_ext *e, char *err, size_t errcap)
{
	struct vmdk *v = im->priv;
	uint64_t g = off / v->grain, gdi = g / v->gtes, gti = g % v->gtes, gt_off, n, foff;
	uint64_t g0 = g, foff0 = 0;
	uint32_t gde, gte;
	struct cur c;
	int r, zero0;

	if ((r = img_table(im, &v->gdc, v->gd_off, v->gd_entries, 4, gdi, &c, err, errcap)))
		return r;
	img_le32(&c, &gde);
	if (gde == 0) {
		for (n = 1; gdi + n < v->gd_entries && cur_left(&c) >= 4; n++) {
			img_le32(&c, &gde);
			if (gde)
				break;
		}
		e->kind = IMG_EXT_ZERO;
		e->len = (gdi + n) * v->gtes * v->grain - off;
		return 0;
	}
	gt_off = (uint64_t)gde * SECTOR;
	if (gt_off + (uint64_t)v->gtes * 4 > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "grain directory entry %llu points at a grain table past the end "
			       "of the file",
			       (unsigned long long)gdi);
	if ((r = check_place(im, v, gt_off, (uint64_t)v->gtes * 4, 0, "grain table", gdi, err,
			     errcap)))
		return r;
	if ((r = img_table(im, &v->gtc, gt_off, v->gtes, 4, gti, &c, err, errcap)))
		return r;
	img_le32(&c, &gte);
	zero0 = is_zero_gte(v, gte);
	if (gte == 1 && zero0)
		im->n_zero++;
	if (!zero0) {
		foff0 = (uint64_t)gte * SECTOR;
		if ((r = check_place(im, v, foff0, v->compressed ? GRAIN_HDR : v->grain, gt_off,
				     "grain", g, err, errcap)))
			return r;
		if (v->compressed) {
			e->kind = IMG_EXT_PACKED;
			e->foff = foff0;
			e->clen =
			    im->file_size - foff0 < im->ccap ? im->file_size - foff0 : im->ccap;
			e->uoff = g * v->grain;
			e->ulen = (uint32_t)v->grain;
			e->len = e->uoff + v->grain - off;
			return 0;
		}
	}
	/* Extend over the following grains of this table while the run goes on. */
	for (g++; g % v->gtes && g * v->grain < im->vsize; g++) {
		img_le32(&c, &gte);
		if (is_zero_gte(v, gte) != zero0)
			break;
		if (zero0) {
			if (gte == 1)
				im->n_zero++;
			continue;
		}
		foff = (uint64_t)gte * SECTOR;
		if (foff != foff0 + (g - g0) * v->grain)
			break;
		if ((r = check_place(im, v, foff, v->grain, gt_off, "grain", g, err, errcap)))
			return r;
	}
	e->kind = zero0 ? IMG_EXT_ZERO : IMG_EXT_DATA;
	e->len = g * v->grain - off;
	e->foff = foff0 + (off - g0 * v->grain);
	return 0;
}

static int vmdk_unpack(struct img *im, const struct img_ext *e, uint8_t *out, char *err,
		       size_t errcap)
{
	struct vmdk *v = im->priv;
	uint8_t hdr[GRAIN_HDR];
	uint64_t lba, need;
	uint32_t size;
	size_t got, clen = (size_t)e->clen;
	const uint8_t *in = im->cbuf;
	struct cur c;
	int r;

	if (v->markers) {
		if (e->clen < GRAIN_HDR)
			return img_zbad(
			    im, err, errcap, -EINVAL,
			    "the grain at offset %llu is cut off by the end of the file",
			    (unsigned long long)e->foff);
		if ((r = img_pread(im, hdr, GRAIN_HDR, e->foff, err, errcap)))
			return r;
		cur_init(&c, hdr, sizeof(hdr));
		img_le64(&c, &lba);
		img_le32(&c, &size);
		if (lba != e->uoff / SECTOR)
			return img_zbad(im, err, errcap, -EINVAL,
					"the grain at offset %llu is for sector %llu, its table "
					"says %llu",
					(unsigned long long)e->foff, (unsigned long long)lba,
					(unsigned long long)(e->uoff / SECTOR));
		if (size == 0 || size > e->clen - GRAIN_HDR)
			return img_zbad(im, err, errcap, -EINVAL,
					"the grain at offset %llu claims %u compressed bytes, "
					"%llu are there",
					(unsigned long long)e->foff, size,
					(unsigned long long)(e->clen - GRAIN_HDR));
		clen = size;
		if ((r = img_pread(im, im->cbuf, clen, e->foff + GRAIN_HDR, err, errcap)))
			return r;
	} else if ((r = img_pread(im, im->cbuf, clen, e->foff, err, errcap))) {
		return r;
	}
	if ((r = img_z_inflate(im, 1, in, clen, out, e->ulen, &got, err, errcap)))
		return r;
	/* The last grain may hold only the part of the disk that exists. */
	need = im->vsize - e->uoff < e->ulen ? im->vsize - e->uoff : e->ulen;
	if (got < need)
		return img_zbad(im, err, errcap, -EIO,
				"the grain at virtual offset %llu inflates to %zu bytes, not %llu",
				(unsigned long long)e->uoff, got, (unsigned long long)need);
	memset(out + got, 0, e->ulen - got);
	return 0;
}

static void vmdk_close(struct img *im)
{
	struct vmdk *v = im->priv;

	if (!v)
		return;
	img_cache_free(im, &v->gdc);
	img_cache_free(im, &v->gtc);
	img_free(im, v, sizeof(*v));
	im->priv = NULL;
}

const struct img_ops img_vmdk_ops = {
    .name = "vmdk",
    .packed_word = "compressed grains",
    .zero_word = "zeroed grains",
    .open = vmdk_open,
    .map = vmdk_map,
    .unpack = vmdk_unpack,
    .close = vmdk_close,
};
