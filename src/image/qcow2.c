/*
 * qcow2.c - qcow2 version 2 and 3 (QEMU's docs/interop/qcow2.txt): the
 * header and its extensions, the L1 table read in windows, L2 tables in a
 * four-slot cache (at most 8 MiB with 2 MiB clusters), zero clusters,
 * deflate-compressed clusters and extended L2 entries (subclusters).
 * Refcounts are not needed to read and are never looked at; internal
 * snapshots are ignored with a warning. Refused: backing files, external
 * data files, encryption, images marked corrupt, unknown incompatible
 * features, and every table or cluster that lies outside the file or
 * over the header or the L1 table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image/image_impl.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define V2_HDR_LEN  72
#define V3_HDR_LEN  104

#define INCOMPAT_DIRTY	     (1ull << 0)
#define INCOMPAT_CORRUPT     (1ull << 1)
#define INCOMPAT_DATA_FILE   (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTL2	     (1ull << 4)
#define INCOMPAT_KNOWN	     0x1full

#define EXT_END	      0x00000000u
#define EXT_DATA_FILE 0x44415441u
#define EXT_CRYPTO    0x0537be77u

#define L1E_OFFSET	 0x00fffffffffffe00ull
#define L1E_RESERVED	 0x7f000000000001ffull
#define L2E_OFFSET	 0x00fffffffffffe00ull
#define L2E_RESERVED	 0x3f000000000001feull
#define OFLAG_COMPRESSED (1ull << 62)
#define OFLAG_ZERO	 1ull
/* QEMU's own limit on the active L1 table (QCOW_MAX_L1_SIZE). */
#define L1_MAX_ENTRIES ((32u << 20) / 8)
#define SUBCLUSTERS    32
#define NAME_MAX_SHOWN 128

struct qcow2 {
	uint32_t version, cbits, l2_bits, esz, sc_bits;
	uint64_t cs;
	uint64_t l1_off, l1_entries, l1_need;
	uint64_t l2_entries;
	int ext;
	uint32_t csize_shift;
	uint64_t csize_mask, coff_mask;
	struct img_cache l1c, l2c;
};

struct qhdr {
	uint32_t magic, version, backing_size, cbits, crypt, l1_size, rc_clusters, nb_snap;
	uint64_t backing_off, size, l1_off, rc_off, snap_off;
	uint64_t incompat, compat, autoclear;
	uint32_t refcount_order, hdr_len;
	uint8_t compression;
};

static void parse_header(struct cur *c, struct qhdr *h)
{
	memset(h, 0, sizeof(*h));
	cur_u32(c, &h->magic);
	cur_u32(c, &h->version);
	cur_u64(c, &h->backing_off);
	cur_u32(c, &h->backing_size);
	cur_u32(c, &h->cbits);
	cur_u64(c, &h->size);
	cur_u32(c, &h->crypt);
	cur_u32(c, &h->l1_size);
	cur_u64(c, &h->l1_off);
	cur_u64(c, &h->rc_off);
	cur_u32(c, &h->rc_clusters);
	cur_u32(c, &h->nb_snap);
	cur_u64(c, &h->snap_off);
	h->refcount_order = 4;
	h->hdr_len = V2_HDR_LEN;
	if (h->version < 3)
		return;
	cur_u64(c, &h->incompat);
	cur_u64(c, &h->compat);
	cur_u64(c, &h->autoclear);
	cur_u32(c, &h->refcount_order);
	cur_u32(c, &h->hdr_len);
	if (h->hdr_len > V3_HDR_LEN)
		cur_u8(c, &h->compression);
}

/* The name at [off, off+len) of the file, for a message; "" if outside. */
static void read_name(struct img *im, uint64_t off, uint64_t len, char *dst, size_t cap)
{
	uint8_t buf[NAME_MAX_SHOWN];
	size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

	dst[0] = 0;
	if (off >= im->file_size || n > im->file_size - off)
		return;
	if (img_pread(im, buf, n, off, NULL, 0) == 0)
		img_quote(dst, cap, buf, n);
}

/* Walks the header extensions in the rest of the first cluster. */
static int parse_exts(struct img *im, const uint8_t *p, size_t len, size_t start, char *data_file,
		      size_t dfcap, int *crypto, char *err, size_t errcap)
{
	struct cur c;
	uint32_t type, elen;
	const uint8_t *d;

	if (start > len)
		return 0;
	cur_init(&c, p + start, len - start);
	while (cur_left(&c) >= 8) {
		cur_u32(&c, &type);
		cur_u32(&c, &elen);
		if (type == EXT_END)
			return 0;
		if (cur_ref(&c, &d, elen) || img_skip(&c, (8 - elen % 8) % 8))
			return img_bad(im, err, errcap, -EINVAL,
				       "header extension 0x%08x (%u bytes) runs past the first "
				       "cluster",
				       type, elen);
		if (type == EXT_DATA_FILE)
			img_quote(data_file, dfcap, d, elen);
		else if (type == EXT_CRYPTO)
			*crypto = 1;
	}
	return 0;
}

static int check_header(struct img *im, struct qcow2 *q, const struct qhdr *h, const uint8_t *p,
			size_t len, char *err, size_t errcap)
{
	char name[NAME_MAX_SHOWN + 1] = "", df[NAME_MAX_SHOWN + 1] = "", tmp[64];
	int crypto = 0, r;

	if (h->version < 2 || h->version > 3)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "version %u is not supported (only 2 and 3)", h->version);
	if (h->cbits < 9 || h->cbits > 21)
		return img_bad(im, err, errcap, -EINVAL, "cluster_bits %u is outside 9..21",
			       h->cbits);
	q->cbits = h->cbits;
	q->cs = 1ull << h->cbits;
	if (h->version >= 3 && (h->hdr_len < V3_HDR_LEN || h->hdr_len > q->cs))
		return img_bad(im, err, errcap, -EINVAL, "header length %u is outside %u..%llu",
			       h->hdr_len, V3_HDR_LEN, (unsigned long long)q->cs);
	if ((r = parse_exts(im, p, len, h->hdr_len, df, sizeof(df), &crypto, err, errcap)))
		return r;
	if (h->backing_off) {
		read_name(im, h->backing_off, h->backing_size, name, sizeof(name));
		return img_bad(im, err, errcap, -ENOTSUP,
			       "the image has a backing file \"%s\": images that reference "
			       "other files are not supported (flatten it with qemu-img convert)",
			       name);
	}
	if ((h->incompat & INCOMPAT_DATA_FILE) || df[0])
		return img_bad(im, err, errcap, -ENOTSUP,
			       "the image keeps its data in an external data file \"%s\": "
			       "images that reference other files are not supported",
			       df);
	if (h->crypt || crypto)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "the image is encrypted (crypt_method %u%s): encrypted images are "
			       "not supported",
			       h->crypt,
			       h->crypt == 1   ? ", AES"
			       : h->crypt == 2 ? ", LUKS"
					       : "");
	if (h->incompat & ~INCOMPAT_KNOWN)
		return img_bad(im, err, errcap, -ENOTSUP, "unknown incompatible features 0x%llx",
			       (unsigned long long)(h->incompat & ~INCOMPAT_KNOWN));
	if (h->incompat & INCOMPAT_CORRUPT)
		return img_bad(im, err, errcap, -EINVAL,
			       "the image is marked corrupt (see qemu-img check)");
	if ((h->incompat & INCOMPAT_COMPRESSION) && h->compression != 0)
		return img_bad(im, err, errcap, -ENOTSUP,
			       "compression type %u%s is not supported (only deflate)",
			       h->compression, h->compression == 1 ? " (zstd)" : "");
	if (!(h->incompat & INCOMPAT_COMPRESSION) && h->compression != 0)
		return img_bad(im, err, errcap, -EINVAL,
			       "compression type %u without its incompatible feature bit",
			       h->compression);
	if ((r = img_check_vsize(im, h->size, err, errcap)))
		return r;
	q->ext = !!(h->incompat & INCOMPAT_EXTL2);
	if (q->ext && h->cbits < 14)
		return img_bad(im, err, errcap, -EINVAL,
			       "extended L2 entries need clusters of 16 KiB or more (cluster_bits "
			       "%u)",
			       h->cbits);
	if (h->incompat & INCOMPAT_DIRTY)
		img_note(im->info.warnings, sizeof(im->info.warnings),
			 "the image was not closed cleanly (dirty bit)");
	if (h->nb_snap) {
		snprintf(tmp, sizeof(tmp), "%u internal snapshot%s ignored", h->nb_snap,
			 h->nb_snap == 1 ? "" : "s");
		img_note(im->info.warnings, sizeof(im->info.warnings), tmp);
	}
	return 0;
}

static int check_l1(struct img *im, struct qcow2 *q, const struct qhdr *h, char *err, size_t errcap)
{
	uint64_t span = q->cs * q->l2_entries, bytes, end;

	q->l1_entries = h->l1_size;
	q->l1_off = h->l1_off;
	q->l1_need = h->size / span + (h->size % span != 0);
	if (q->l1_entries < q->l1_need)
		return img_bad(im, err, errcap, -EINVAL,
			       "the L1 table has %llu entries, the virtual size needs %llu",
			       (unsigned long long)q->l1_entries, (unsigned long long)q->l1_need);
	if (q->l1_entries > L1_MAX_ENTRIES)
		return img_bad(im, err, errcap, -EFBIG,
			       "the L1 table has %llu entries, more than %u",
			       (unsigned long long)q->l1_entries, L1_MAX_ENTRIES);
	if (!q->l1_entries)
		return 0;
	bytes = q->l1_entries * 8;
	if (q->l1_off % q->cs || q->l1_off < q->cs)
		return img_bad(im, err, errcap, -EINVAL,
			       "the L1 table offset %llu is not a cluster boundary after the "
			       "header",
			       (unsigned long long)q->l1_off);
	if (img_add(q->l1_off, bytes, &end) || end > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "the L1 table (offset %llu, %llu entries) lies past the end of "
			       "the file (%llu bytes)",
			       (unsigned long long)q->l1_off, (unsigned long long)q->l1_entries,
			       (unsigned long long)im->file_size);
	return 0;
}

static int qcow2_open(struct img *im, char *err, size_t errcap)
{
	struct qcow2 *q = NULL;
	uint8_t first[V3_HDR_LEN + 8], *hbuf = NULL;
	size_t hlen = 0;
	struct qhdr h;
	struct cur c;
	int r;

	if ((r = img_alloc(im, sizeof(*q), (void **)&q, "qcow2 state", err, errcap)))
		return r;
	im->priv = q;
	memset(first, 0, sizeof(first));
	if ((r = img_pread(im, first,
			   im->file_size < sizeof(first) ? (size_t)im->file_size : sizeof(first), 0,
			   err, errcap)))
		return r;
	cur_init(&c, first, im->file_size < sizeof(first) ? (size_t)im->file_size : sizeof(first));
	parse_header(&c, &h);
	if (c.err || h.magic != QCOW2_MAGIC)
		return img_bad(im, err, errcap, -EINVAL,
			       "the file (%llu bytes) is too short for "
			       "a qcow2 header",
			       (unsigned long long)im->file_size);
	if (h.version < 2 || h.version > 3 || h.cbits < 9 || h.cbits > 21)
		return check_header(im, q, &h, first, 0, err, errcap);
	/* The header and its extensions fill at most the first cluster. */
	hlen = im->file_size < (1ull << h.cbits) ? (size_t)im->file_size : (size_t)1 << h.cbits;
	if ((r = img_alloc(im, hlen, (void **)&hbuf, "qcow2 header", err, errcap)) ||
	    (r = img_pread(im, hbuf, hlen, 0, err, errcap)))
		goto out;
	if ((r = check_header(im, q, &h, hbuf, hlen, err, errcap)))
		goto out;
	q->version = h.version;
	q->esz = q->ext ? 16 : 8;
	q->l2_entries = q->cs / q->esz;
	q->l2_bits = q->cbits - (q->ext ? 4 : 3);
	q->sc_bits = q->cbits - 5;
	q->csize_shift = 62 - (q->cbits - 8);
	q->csize_mask = (1ull << (q->cbits - 8)) - 1;
	q->coff_mask = (1ull << q->csize_shift) - 1;
	if ((r = check_l1(im, q, &h, err, errcap)))
		goto out;
	im->vsize = h.size;
	im->data_end = im->file_size;
	snprintf(im->info.subformat, sizeof(im->info.subformat), "v%u", h.version);
	if (q->ext)
		img_note(im->info.features, sizeof(im->info.features), "extended L2 entries");
	if ((r = img_cache_init(im, &q->l1c, IMG_WINDOW, "qcow2 L1 cache", err, errcap)) ||
	    (r = img_cache_init(im, &q->l2c, (uint32_t)q->cs, "qcow2 L2 cache", err, errcap)))
		goto out;
out:
	img_free(im, hbuf, hlen);
	return r;
}

/* [off, off+len) must be outside the header cluster and the L1 table. */
static int check_place(struct img *im, struct qcow2 *q, uint64_t off, uint64_t len,
		       const char *what, uint64_t ci, char *err, size_t errcap)
{
	if (off < q->cs)
		return img_bad(im, err, errcap, -EINVAL,
			       "%s for cluster %llu at offset %llu overlaps the header", what,
			       (unsigned long long)ci, (unsigned long long)off);
	if (off >= im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "%s for cluster %llu at offset %llu points past the end of the "
			       "file (%llu bytes)",
			       what, (unsigned long long)ci, (unsigned long long)off,
			       (unsigned long long)im->file_size);
	if (len > im->file_size - off)
		len = im->file_size - off;
	if (img_overlap(off, len, q->l1_off, q->l1_entries * 8))
		return img_bad(im, err, errcap, -EINVAL,
			       "%s for cluster %llu at offset %llu overlaps the L1 table", what,
			       (unsigned long long)ci, (unsigned long long)off);
	return 0;
}

/* What unit sub of cluster ci reads from: zeros, data at *host, or packed. */
static int classify(struct img *im, struct qcow2 *q, uint64_t l2off, uint64_t ci, uint64_t l2e,
		    uint64_t bmp, unsigned sub, enum img_kind *kind, uint64_t *host, char *err,
		    size_t errcap)
{
	uint64_t hoff = l2e & L2E_OFFSET;
	unsigned a, z;
	int r;

	*host = 0;
	if (l2e & OFLAG_COMPRESSED) {
		if (bmp)
			return img_bad(im, err, errcap, -EINVAL,
				       "compressed cluster %llu has a subcluster bitmap",
				       (unsigned long long)ci);
		*kind = IMG_EXT_PACKED;
		*host = l2e & q->coff_mask;
		if (img_overlap(*host, 1, l2off, q->cs))
			return img_bad(im, err, errcap, -EINVAL,
				       "the compressed cluster %llu lies inside its own L2 table",
				       (unsigned long long)ci);
		return 0;
	}
	if (l2e & L2E_RESERVED)
		return img_bad(im, err, errcap, -EINVAL,
			       "the L2 entry for cluster %llu has reserved bits set (0x%016llx)",
			       (unsigned long long)ci, (unsigned long long)l2e);
	if (hoff) {
		if (hoff % q->cs)
			return img_bad(im, err, errcap, -EINVAL,
				       "the L2 entry for cluster %llu points at unaligned offset "
				       "%llu",
				       (unsigned long long)ci, (unsigned long long)hoff);
		if ((r = check_place(im, q, hoff, q->cs, "the L2 entry", ci, err, errcap)))
			return r;
		if (hoff == l2off)
			return img_bad(im, err, errcap, -EINVAL,
				       "the L2 entry for cluster %llu points at its own L2 table",
				       (unsigned long long)ci);
	}
	if (!q->ext) {
		if (l2e & OFLAG_ZERO) {
			if (q->version < 3)
				return img_bad(im, err, errcap, -EINVAL,
					       "zero cluster %llu in a version 2 image",
					       (unsigned long long)ci);
			*kind = IMG_EXT_ZERO;
			im->n_zero++;
			return 0;
		}
		*kind = hoff ? IMG_EXT_DATA : IMG_EXT_ZERO;
		*host = hoff;
		return 0;
	}
	if (l2e & OFLAG_ZERO)
		return img_bad(im, err, errcap, -EINVAL,
			       "the extended L2 entry for cluster %llu has bit 0 set",
			       (unsigned long long)ci);
	a = (unsigned)(bmp >> sub) & 1;
	z = (unsigned)(bmp >> (SUBCLUSTERS + sub)) & 1;
	if (a && z)
		return img_bad(im, err, errcap, -EINVAL,
			       "subcluster %u of cluster %llu is both allocated and zero", sub,
			       (unsigned long long)ci);
	if (a && !hoff)
		return img_bad(im, err, errcap, -EINVAL,
			       "subcluster %u of cluster %llu is allocated but the cluster is not",
			       sub, (unsigned long long)ci);
	if (z)
		im->n_zero++;
	*kind = a ? IMG_EXT_DATA : IMG_EXT_ZERO;
	*host = a ? hoff + ((uint64_t)sub << q->sc_bits) : 0;
	return 0;
}

static int packed_ext(struct img *im, struct qcow2 *q, uint64_t off, uint64_t ci, uint64_t l2e,
		      struct img_ext *e, char *err, size_t errcap)
{
	uint64_t coff = l2e & q->coff_mask;
	uint64_t nsec = ((l2e >> q->csize_shift) & q->csize_mask) + 1;
	uint64_t csize = nsec * 512 - (coff & 511);
	int r;

	if ((r = check_place(im, q, coff, csize, "the compressed cluster", ci, err, errcap)))
		return r;
	if (!im->ubuf && (r = img_unit_setup(im, (uint32_t)q->cs, 2 * q->cs, err, errcap)))
		return r;
	e->kind = IMG_EXT_PACKED;
	e->foff = coff;
	/* The last compressed cluster may end before its last sector does. */
	e->clen = csize < im->file_size - coff ? csize : im->file_size - coff;
	e->uoff = ci << q->cbits;
	e->ulen = (uint32_t)q->cs;
	e->len = e->uoff + q->cs - off;
	return 0;
}

static int qcow2_map(struct img *im, uint64_t off, struct img_ext *e, char *err, size_t errcap)
{
	struct qcow2 *q = im->priv;
	uint64_t ci = off >> q->cbits, l1i = ci >> q->l2_bits, l1e, l2off, n, v;
	uint64_t unit = q->ext ? q->cs / SUBCLUSTERS : q->cs, u, u0, host0, host, l2e, bmp = 0;
	unsigned sub;
	enum img_kind kind0, kind;
	struct cur c;
	int r;

	if ((r = img_table(im, &q->l1c, q->l1_off, q->l1_need, 8, l1i, &c, err, errcap)))
		return r;
	cur_u64(&c, &l1e);
	if (l1e & L1E_RESERVED)
		return img_bad(im, err, errcap, -EINVAL,
			       "L1 entry %llu has reserved bits set (0x%016llx)",
			       (unsigned long long)l1i, (unsigned long long)l1e);
	l2off = l1e & L1E_OFFSET;
	if (!l2off) {
		/* No L2 table: zeros, over every following empty L1 entry too. */
		for (n = 1; l1i + n < q->l1_need && cur_left(&c) >= 8; n++) {
			cur_u64(&c, &v);
			if (v & (L1E_OFFSET | L1E_RESERVED))
				break;
		}
		e->kind = IMG_EXT_ZERO;
		e->len = ((l1i + n) << (q->l2_bits + q->cbits)) - off;
		return 0;
	}
	if (l2off % q->cs || l2off + q->cs > im->file_size)
		return img_bad(im, err, errcap, -EINVAL,
			       "L1 entry %llu points at an L2 table at offset %llu, %s",
			       (unsigned long long)l1i, (unsigned long long)l2off,
			       l2off % q->cs ? "not a cluster boundary"
					     : "past the end of the file");
	if ((r = check_place(im, q, l2off, q->cs, "the L2 table", ci, err, errcap)))
		return r;
	if ((r = img_table(im, &q->l2c, l2off, q->l2_entries, q->esz, ci & (q->l2_entries - 1), &c,
			   err, errcap)))
		return r;
	cur_u64(&c, &l2e);
	if (q->ext)
		cur_u64(&c, &bmp);
	sub = q->ext ? (unsigned)((off >> q->sc_bits) & (SUBCLUSTERS - 1)) : 0;
	if ((r = classify(im, q, l2off, ci, l2e, bmp, sub, &kind0, &host0, err, errcap)))
		return r;
	if (kind0 == IMG_EXT_PACKED)
		return packed_ext(im, q, off, ci, l2e, e, err, errcap);
	u0 = off / unit;
	/* Extend over the units that follow while they continue the run. */
	for (u = u0 + 1; u * unit < im->vsize; u++) {
		if (u % (q->cs / unit) == 0) {
			if (cur_left(&c) < q->esz)
				break;
			ci++;
			cur_u64(&c, &l2e);
			if (q->ext)
				cur_u64(&c, &bmp);
		}
		sub = (unsigned)(u % (q->cs / unit));
		if ((r = classify(im, q, l2off, ci, l2e, bmp, sub, &kind, &host, err, errcap)))
			return r;
		if (kind != kind0 || (kind == IMG_EXT_DATA && host != host0 + (u - u0) * unit))
			break;
	}
	e->kind = kind0;
	e->len = u * unit - off;
	e->foff = host0 + (off - u0 * unit);
	return 0;
}

static int qcow2_unpack(struct img *im, const struct img_ext *e, uint8_t *out, char *err,
			size_t errcap)
{
	size_t got;
	int r;

	if ((r = img_pread(im, im->cbuf, (size_t)e->clen, e->foff, err, errcap)))
		return r;
	if ((r = img_z_inflate(im, 0, im->cbuf, (size_t)e->clen, out, e->ulen, &got, err, errcap)))
		return r;
	if (got != e->ulen)
		return img_zbad(im, err, errcap, -EIO,
				"the cluster at virtual offset %llu inflates to %zu bytes, not %u",
				(unsigned long long)e->uoff, got, e->ulen);
	return 0;
}

static void qcow2_close(struct img *im)
{
	struct qcow2 *q = im->priv;

	if (!q)
		return;
	img_cache_free(im, &q->l1c);
	img_cache_free(im, &q->l2c);
	img_free(im, q, sizeof(*q));
	im->priv = NULL;
}

const struct img_ops img_qcow2_ops = {
    .name = "qcow2",
    .packed_word = "compressed clusters",
    .zero_word = "zero clusters",
    .open = qcow2_open,
    .map = qcow2_map,
    .unpack = qcow2_unpack,
    .close = qcow2_close,
};
