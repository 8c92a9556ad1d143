/*
 * inflate.c - the zlib adapter of src/image, and the only file here that
 * includes zlib.h: one inflate stream per open image, reset for every
 * compressed qcow2 cluster (raw deflate) or VMDK grain (zlib format).
 * zlib's allocations (its state and 32 KiB window) are counted against
 * the image's memory cap. Output never exceeds the caller's buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "image/image_impl.h"

struct img_z {
	z_stream s;
	struct img *im;
	int ready;
};

/* Each block is prefixed by its size so img_free can account for it. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	struct img_z *z = opaque;
	uint64_t n;
	void *p;

	if (img_mul(items, size, &n) || img_add(n, 16, &n) || n > SIZE_MAX)
		return Z_NULL;
	if (img_alloc(z->im, (size_t)n, &p, "zlib state", NULL, 0))
		return Z_NULL;
	memcpy(p, &n, sizeof(n));
	return (uint8_t *)p + 16;
}

static void z_free(voidpf opaque, voidpf address)
{
	struct img_z *z = opaque;
	uint8_t *p = address;
	uint64_t n;

	if (!p)
		return;
	memcpy(&n, p - 16, sizeof(n));
	img_free(z->im, p - 16, (size_t)n);
}

int img_z_new(struct img *im, char *err, size_t errcap)
{
	struct img_z *z;
	int r;

	if ((r = img_alloc(im, sizeof(*z), (void **)&z, "zlib stream", err, errcap)))
		return r;
	z->im = im;
	z->s.zalloc = z_alloc;
	z->s.zfree = z_free;
	z->s.opaque = z;
	im->z = z;
	if (inflateInit2(&z->s, -MAX_WBITS) != Z_OK)
		return img_zbad(im, err, errcap, -ENOMEM, "zlib: %s",
				z->s.msg ? z->s.msg : "cannot initialise");
	z->ready = 1;
	return 0;
}

void img_z_free(struct img *im)
{
	struct img_z *z = im->z;

	if (!z)
		return;
	if (z->ready)
		inflateEnd(&z->s);
	im->z = NULL;
	img_free(im, z, sizeof(*z));
}

int img_z_inflate(struct img *im, int zlib_fmt, const uint8_t *in, size_t inlen, uint8_t *out,
		  size_t outlen, size_t *got, char *err, size_t errcap)
{
	struct img_z *z = im->z;
	int ret;

	*got = 0;
	if (!z || !z->ready)
		return img_zbad(im, err, errcap, -EIO, "no inflate stream");
	if (inlen > UINT32_MAX || outlen > UINT32_MAX)
		return img_zbad(im, err, errcap, -EINVAL, "unit of %zu bytes", inlen);
	if (inflateReset2(&z->s, zlib_fmt ? MAX_WBITS : -MAX_WBITS) != Z_OK)
		return img_zbad(im, err, errcap, -EIO, "zlib: cannot reset the stream");
	z->s.next_in = (Bytef *)(uintptr_t)in;
	z->s.avail_in = (uInt)inlen;
	z->s.next_out = out;
	z->s.avail_out = (uInt)outlen;
	ret = inflate(&z->s, Z_FINISH);
	*got = outlen - z->s.avail_out;
	/* A full buffer is success whether or not the stream says it ended:
	 * qcow2 rounds compressed sizes up to whole sectors. */
	if (ret == Z_STREAM_END || (z->s.avail_out == 0 && (ret == Z_OK || ret == Z_BUF_ERROR)))
		return 0;
	if (ret == Z_BUF_ERROR || ret == Z_OK)
		return img_zbad(im, err, errcap, -EIO,
				"the compressed data ends early (%zu of %zu bytes after "
				"%zu compressed bytes)",
				*got, outlen, inlen);
	if (ret == Z_MEM_ERROR)
		return img_zbad(im, err, errcap, -ENOMEM, "zlib: out of memory");
	return img_zbad(im, err, errcap, -EBADMSG, "zlib: %s",
			z->s.msg ? z->s.msg : "invalid compressed data");
}
