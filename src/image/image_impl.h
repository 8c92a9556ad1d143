/*
 * image_impl.h - private to src/image: the format interface (a format
 * maps a virtual offset to an extent: zeros, plain bytes of the file, or
 * one compressed unit), the capped allocator, the table caches every
 * format reads its L1/L2/BAT/GD/GT through, little-endian cursor reads
 * and the error helpers. inflate.c is the only file that sees zlib.h.
 * Nothing outside src/image includes this header.
 */
#ifndef FERRY_IMAGE_IMPL_H
#define FERRY_IMAGE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "image/image.h"

/*
 * Everything one open image allocates (tables, caches, the decompressed
 * unit and its input, zlib's state) is counted against this cap.
 */
#define IMG_MEM_MAX (32u << 20)
/* Slots per table cache, and the window a large table is read in. */
#define IMG_CACHE_SLOTS 4
#define IMG_WINDOW	(64u << 10)
/* The largest compressed unit (qcow2 cluster, VMDK grain) we inflate. */
#define IMG_UNIT_MAX (4u << 20)

enum img_kind {
	IMG_EXT_ZERO,	/* reads as zeros: hole, unallocated, zero cluster */
	IMG_EXT_DATA,	/* plain bytes at foff */
	IMG_EXT_PACKED, /* one compressed unit */
};

/* What one virtual offset maps to, for len bytes from there. */
struct img_ext {
	enum img_kind kind;
	uint64_t len;
	uint64_t foff; /* DATA: the queried byte's file offset; PACKED: the unit's */
	uint64_t clen; /* PACKED: compressed bytes at foff, at most */
	uint64_t uoff; /* PACKED: virtual offset of the unit's first byte */
	uint32_t ulen; /* PACKED: bytes the unit inflates to */
};

struct img;

struct img_ops {
	const char *name;
	/* info.features words for PACKED units and for explicit zero units. */
	const char *packed_word, *zero_word;
	/* Reads and checks the headers; sets vsize, data_end, info fields. */
	int (*open)(struct img *im, char *err, size_t errcap);
	/* The extent at off (< vsize); may be longer than asked, never 0. */
	int (*map)(struct img *im, uint64_t off, struct img_ext *e, char *err, size_t errcap);
	/* Inflates the PACKED unit e into out (e->ulen bytes). */
	int (*unpack)(struct img *im, const struct img_ext *e, uint8_t *out, char *err,
		      size_t errcap);
	void (*close)(struct img *im);
};

/* A few equally sized slots holding byte ranges of the file, LRU. */
struct img_cache {
	uint8_t *buf;
	uint32_t slot;
	uint64_t key[IMG_CACHE_SLOTS]; /* file offset + 1; 0: empty */
	uint32_t len[IMG_CACHE_SLOTS];
	uint64_t used[IMG_CACHE_SLOTS];
	uint64_t tick;
};

struct img_z;

struct img {
	int fd;
	const struct img_ops *ops;
	void *priv;
	uint64_t file_size;
	uint64_t vsize;
	/* DATA extents must end at or before this (a VHD footer is not data). */
	uint64_t data_end;
	size_t mem; /* bytes allocated through img_alloc */
	struct img_info info;
	/* Compressed units: the last one inflated, and its input buffer. */
	uint8_t *ubuf, *cbuf;
	uint32_t ucap;
	uint64_t ccap;
	uint64_t ukey; /* uoff + 1 of the unit in ubuf; 0: none */
	struct img_z *z;
	/* Counted by the walk at open, for info.features; maps bump n_zero. */
	uint64_t n_packed, n_zero;
};

extern const struct img_ops img_raw_ops, img_qcow2_ops, img_vhd_ops, img_vmdk_ops;
/* Holes and data of the file from off on (raw.c; fixed VHDs use it too). */
int img_raw_map(struct img *im, uint64_t off, struct img_ext *e);

/* ---- errors ------------------------------------------------------------ */

/* snprintf into err (may be NULL); returns rc. */
int img_err(char *err, size_t errcap, int rc, const char *fmt, ...) FERRY_ATTR_PRINTF(4, 5);
/* "failed to obtain the metadata of the image file: <format>: <detail>" */
int img_bad(const struct img *im, char *err, size_t errcap, int rc, const char *fmt, ...)
    FERRY_ATTR_PRINTF(5, 6);
/* "image decompression failed: <format>: <detail>" */
int img_zbad(const struct img *im, char *err, size_t errcap, int rc, const char *fmt, ...)
    FERRY_ATTR_PRINTF(5, 6);
/* Refuses a virtual size beyond IMG_VSIZE_MAX (before tables are sized). */
int img_check_vsize(const struct img *im, uint64_t vsize, char *err, size_t errcap);
/* Copies a name from the file for an error message: printable ASCII only. */
void img_quote(char *dst, size_t cap, const uint8_t *src, size_t n);
/* Appends ", "-separated text to a fixed info field. */
void img_note(char *field, size_t cap, const char *text);

/* ---- memory and I/O ------------------------------------------------------ */

/* malloc counted against IMG_MEM_MAX; the error names what wanted it. */
int img_alloc(struct img *im, size_t n, void **p, const char *what, char *err, size_t errcap);
void img_free(struct img *im, void *p, size_t n);
/* Exactly n bytes at off, which must lie inside the file. */
int img_pread(struct img *im, void *buf, size_t n, uint64_t off, char *err, size_t errcap);
/* Allocates the decompression buffers for units of ulen, input clen. */
int img_unit_setup(struct img *im, uint32_t ulen, uint64_t clen, char *err, size_t errcap);

/* ---- table caches -------------------------------------------------------- */

int img_cache_init(struct img *im, struct img_cache *c, uint32_t slot, const char *what, char *err,
		   size_t errcap);
void img_cache_free(struct img *im, struct img_cache *c);
/*
 * Points *cu at entry idx (esize bytes each) of the table of n entries at
 * file offset base and at the rest of its window, so a caller can walk on
 * through the entries that follow. The whole table (n * esize bytes) must
 * have been checked to lie inside the file.
 */
int img_table(struct img *im, struct img_cache *c, uint64_t base, uint64_t n, uint32_t esize,
	      uint64_t idx, struct cur *cu, char *err, size_t errcap);

/* ---- little-endian reads through a cursor (VMDK is LE) ------------------ */

int img_le16(struct cur *c, uint16_t *v);
int img_le32(struct cur *c, uint32_t *v);
int img_le64(struct cur *c, uint64_t *v);
int img_skip(struct cur *c, size_t n);

/* ---- overflow-checked arithmetic ----------------------------------------- */

/* *r = a + b or a * b; nonzero on overflow. */
static inline int img_add(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r);
}

static inline int img_mul(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

/* True if [a, a+alen) and [b, b+blen) share a byte (no overflow: callers
 * pass ranges already checked to lie inside the file). */
static inline int img_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* ---- zlib (inflate.c) ---------------------------------------------------- */

int img_z_new(struct img *im, char *err, size_t errcap);
void img_z_free(struct img *im);
/*
 * Inflates in[0..inlen) into out: raw deflate (qcow2) or the zlib format
 * (VMDK). Succeeds when the stream ends or out is full; *got is the
 * number of bytes produced. Errors use "image decompression failed".
 */
int img_z_inflate(struct img *im, int zlib_fmt, const uint8_t *in, size_t inlen, uint8_t *out,
		  size_t outlen, size_t *got, char *err, size_t errcap);

#endif
