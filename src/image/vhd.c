/*
 * vhd.c - VHD ("vpc"; Microsoft's Virtual Hard Disk Image Format
 * Specification 1.0): fixed disks (data, then the footer) and dynamic
 * disks (footer copy, dynamic header, BAT, blocks of a sector bitmap and
 * data). The footer and dynamic header checksums are verified; a dynamic
 * disk's sectors whose bitmap bit is clear read as zeros, as the spec
 * says. The BAT is read in windows and bitmaps through a small cache.
 * Differencing disks (they need their parent file) are refused, and so is
 * any block outside the file or over the footer, header or BAT.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image/image_impl.h"

#define FOOTER_LEN   512
#define DYN_LEN	     1024
#define SECTOR	     512
#define TYPE_FIXED   2
#define TYPE_DYNAMIC 3
#define TYPE_DIFF    4
#define BAT_FREE     0xffffffffu
#define BLOCK_MIN    SECTOR
#define BLOCK_MAX    (256u << 20)

struct vhd {
	int dynamic;
	uint64_t dyn_off, bat_off, bat_entries, bat_need;
	uint32_t block, bitmap; /* bytes */
	struct img_cache batc, bmc;
};

static uint32_t checksum(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			sum += p[i];
	return ~sum;
}

struct footer {
	uint8_t cookie[8];
	uint32_t features, version, csum, type;
	uint64_t data_off, orig_size, cur_size;
	uint8_t creator[4];
};

static int parse_footer(struct img *im, const uint8_t *p, struct footer *f, char *err,
			size_t errcap)
{
	struct cur c;
	uint32_t ts, cver, chost, geom;

	cur_init(&c, p, FOOTER_LEN);
	cur_bytes(&c, f->cookie, 8);
	cur_u32(&c, &f->features);
	cur_u32(&c, &f->version);
	cur_u64(&c, &f->data_off);
	cur_u32(&c, &ts);
	cur_bytes(&c, f->creator, 4);
	cur_u32(&c, &cver);
	cur_u32(&c, &chost);
	cur_u64(&c, &f->orig_size);
	cur_u64(&c, &f->cur_size);
	cur_u32(&c, &geom);
	cur_u32(&c, &f->type);
	cur_u32(&c, &f->csum);
	if (c.err || memcmp(f->cookie, "conectix", 8))
		return img_bad(im, err, errcap, -EINVAL, "no footer (cookie \"conectix\")");
	if (checksum(p, FOOTER_LEN, 64) != f->csum)
		return img_bad(im, err, errcap, -EBADMSG,
			       "footer checksum 0x%08x does not match its contents (0x%08x)",
			       f->csum, checksum(p, FOOTER_LEN, 64));
	if (f->version >> 16 != 1)
		return img_bad(im, err, errcap, -ENOTSUP, "format version 0x%08x is not 1.x",
			       f->version);
	return 0;
}

/* The parent's name from a differencing disk's header (UTF-16BE), as ASCII. */
static void parent_name(const uint8_t *dyn, char *dst, size_t cap)
{
	uint8_t a[128];
	size_t i;

	for (i = 0; i < sizeof(a); i++)
		a[i] = dyn[64 + 2 * i] ? '?' : dyn[64 + 2 * i + 1];
	img_quote(dst, cap, a, sizeof(a));
}

static int open_dynamic(struct img *im, struct vhd *v, const struct footer *f, char *err,
			size_t errcap)
{
	uint8_t dyn[DYN_LEN];
	char name[129];
	uint64_t next, end, bytes;
	uint32_t hver, entries, block, csum;
	uint8_t cookie[8];
	struct cur c;
	int r;

	v->dyn_off = f->data_off;
	if (img_add(v->dyn_off, DYN_LEN, &end) || end > im->file_size || v->dyn_off < FOOTER_LEN)
		return img_bad(im, err, errcap, -EINVAL,
			       "the dynamic disk header offset %llu lies outside the file",
			       (unsigned long long)v->dyn_off);
	if ((r = img_pread(im, dyn, DYN_LEN, v->dyn_off, err, errcap)))
		return r;
	cur_init(&c, dyn, DYN_LEN);
	cur_bytes(&c, cookie, 8);
	cur_u64(&c, &next);
	cur_u64(&c, &v->bat_off);
	cur_u32(&c, &hver);
	cur_u32(&c, &entries);
	cur_u32(&c, &block);
	cur_u32(&c, &csum);
	if (c.err || memcmp(cookie, "cxsparse", 8))
		return img_bad(im, err, errcap, -EINVAL,
			       "no dynamic disk header (cookie \"cxsparse\") at offset %llu",
			       (unsigned long long)v->dyn_off);
	if (checksum(dyn, DYN_LEN, 36) != csum)
		return img_bad(im, err, errcap, -EBADMSG,
			       "dynamic disk header checksum 0x%08x does not match its contents "
			       "(0x%08x)",
			       csum, checksum(dyn, DYN_LEN, 36));
	if (f->type == TYPE_DIFF) {
		parent_name(dyn, name, sizeof(name));
		return img_bad(im, err, errcap, -ENOTSUP,
			       "a differencing disk (parent \"%s\"): images that reference other "
			       "files are not supported (merge it with qemu-img convert)",
			       name);
	}
	if (block < BLOCK_MIN || block > BLOCK_MAX || (block & (block - 1)))
		return img_bad(im, err, errcap, -EINVAL,
			       "block size %u is not a power of two in 512 B..256 MiB", block);
	v->block = block;
	/* One bit per sector, padded to whole sectors. */
	v->bitmap = (block / SECTOR / 8 + SECTOR - 1) / SECTOR * SECTOR;
	v->bat_entries = entries;
	v->bat_need = f->cur_size / block + (f->cur_size % block != 0);
	if (v->bat_entries < v->bat_need)
		return img_bad(im, err, errcap, -EINVAL,
			       "the BAT has %u entries, the virtual size needs %llu", entries,
			       (unsigned long long)v->bat_need);
	bytes = v->bat_entries * 4;
	if (img_add(v->bat_off, bytes, &end) || end > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "the BAT (offset %llu, %u entries) lies past the end of the file "
			       "(%llu bytes)",
			       (unsigned long long)v->bat_off, entries,
			       (unsigned long long)im->file_size);
	if (img_overlap(v->bat_off, bytes, 0, FOOTER_LEN) ||
	    img_overlap(v->bat_off, bytes, v->dyn_off, DYN_LEN))
		return img_bad(im, err, errcap, -EINVAL,
			       "the BAT at offset %llu overlaps the footer copy or the header",
			       (unsigned long long)v->bat_off);
	if ((r = img_cache_init(im, &v->batc, IMG_WINDOW, "VHD BAT cache", err, errcap)) ||
	    (r = img_cache_init(im, &v->bmc, v->bitmap, "VHD bitmap cache", err, errcap)))
		return r;
	return 0;
}

static int vhd_open(struct img *im, char *err, size_t errcap)
{
	uint8_t buf[FOOTER_LEN];
	struct footer f;
	struct vhd *v;
	int r;

	if ((r = img_alloc(im, sizeof(*v), (void **)&v, "VHD state", err, errcap)))
		return r;
	im->priv = v;
	if (im->file_size < FOOTER_LEN)
		return img_bad(im, err, errcap, -EINVAL, "the file is too short for a footer");
	/* A dynamic disk starts with a footer copy; a fixed one only ends in one. */
	if ((r = img_pread(im, buf, FOOTER_LEN, 0, err, errcap)))
		return r;
	if (memcmp(buf, "conectix", 8) &&
	    (r = img_pread(im, buf, FOOTER_LEN, im->file_size - FOOTER_LEN, err, errcap)))
		return r;
	if ((r = parse_footer(im, buf, &f, err, errcap)))
		return r;
	if ((r = img_check_vsize(im, f.cur_size, err, errcap)))
		return r;
	im->vsize = f.cur_size;
	im->data_end = im->file_size - FOOTER_LEN;
	switch (f.type) {
	case TYPE_FIXED:
		snprintf(im->info.subformat, sizeof(im->info.subformat), "fixed");
		if (f.cur_size > im->file_size - FOOTER_LEN)
			return img_bad(im, err, errcap, -EINVAL,
				       "a fixed disk of %llu bytes in a file of %llu bytes",
				       (unsigned long long)f.cur_size,
				       (unsigned long long)im->file_size);
		return 0;
	case TYPE_DYNAMIC:
	case TYPE_DIFF:
		v->dynamic = 1;
		snprintf(im->info.subformat, sizeof(im->info.subformat), "dynamic");
		img_note(im->info.features, sizeof(im->info.features), "sector bitmaps");
		return open_dynamic(im, v, &f, err, errcap);
	default: return img_bad(im, err, errcap, -ENOTSUP, "disk type %u is not supported", f.type);
	}
}

static int vhd_map(struct img *im, uint64_t off, struct img_ext *e, char *err, size_t errcap)
{
	struct vhd *v = im->priv;
	uint64_t b, in, boff, end, n, s, last;
	uint32_t ent;
	const uint8_t *bm;
	struct cur c;
	int bit, r;

	if (!v->dynamic)
		return img_raw_map(im, off, e);
	b = off / v->block;
	in = off % v->block;
	if ((r = img_table(im, &v->batc, v->bat_off, v->bat_need, 4, b, &c, err, errcap)))
		return r;
	cur_u32(&c, &ent);
	if (ent == BAT_FREE) {
		for (n = 1; b + n < v->bat_need && cur_left(&c) >= 4; n++) {
			cur_u32(&c, &ent);
			if (ent != BAT_FREE)
				break;
		}
		e->kind = IMG_EXT_ZERO;
		e->len = (b + n) * v->block - off;
		return 0;
	}
	boff = (uint64_t)ent * SECTOR;
	if (img_add(boff, (uint64_t)v->bitmap + v->block, &end) || end > im->data_end)
		return img_bad(im, err, errcap, -EINVAL,
			       "BAT entry %llu points at a block at offset %llu, past the end of "
			       "the data (%llu bytes)",
			       (unsigned long long)b, (unsigned long long)boff,
			       (unsigned long long)im->data_end);
	if (img_overlap(boff, end - boff, 0, FOOTER_LEN) ||
	    img_overlap(boff, end - boff, v->dyn_off, DYN_LEN) ||
	    img_overlap(boff, end - boff, v->bat_off, v->bat_entries * 4))
		return img_bad(im, err, errcap, -EINVAL,
			       "BAT entry %llu points at a block at offset %llu that overlaps the "
			       "footer copy, the header or the BAT",
			       (unsigned long long)b, (unsigned long long)boff);
	if ((r = img_table(im, &v->bmc, boff, v->bitmap, 1, 0, &c, err, errcap)) ||
	    cur_ref(&c, &bm, v->bitmap))
		return r ? r : img_bad(im, err, errcap, -EIO, "bitmap");
	/* A run of sectors with the same bit, whole bytes at a time. */
	s = in / SECTOR;
	last = v->block / SECTOR;
	bit = bm[s / 8] >> (7 - s % 8) & 1;
	for (s++; s < last; s++) {
		if (s % 8 == 0 && s + 8 <= last && bm[s / 8] == (bit ? 0xff : 0)) {
			s += 7;
			continue;
		}
		if ((bm[s / 8] >> (7 - s % 8) & 1) != bit)
			break;
	}
	e->kind = bit ? IMG_EXT_DATA : IMG_EXT_ZERO;
	e->len = s * SECTOR - in;
	e->foff = boff + v->bitmap + in;
	return 0;
}

static void vhd_close(struct img *im)
{
	struct vhd *v = im->priv;

	if (!v)
		return;
	img_cache_free(im, &v->batc);
	img_cache_free(im, &v->bmc);
	img_free(im, v, sizeof(*v));
	im->priv = NULL;
}

const struct img_ops img_vhd_ops = {
    .name = "vhd",
    .open = vhd_open,
    .map = vhd_map,
    .close = vhd_close,
};
