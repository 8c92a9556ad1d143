/*
 * fuzz_image.h - the body shared by the fuzz_image_<fmt> targets. The
 * input is the image file itself: written to a memfd (raw: all-zero 4 KiB
 * pages left as holes, so SEEK_DATA/SEEK_HOLE have something to say),
 * opened with the target's format and detected, read in varying pieces up
 * to a cap and at its end, and alloc-mapped. Besides the sanitizers it
 * checks what the API promises: every error carries the seed tool's
 * words, allocated never exceeds the virtual size, and every non-zero
 * byte read lies in a chunk the alloc map marked.
 */
#ifndef FERRY_FUZZ_IMAGE_H
#define FERRY_FUZZ_IMAGE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image/image.h"

#define FZ_READ_CAP (1u << 20)
#define FZ_TAIL	    (128u << 10)
#define FZ_BITS	    4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fz_buf[FZ_READ_CAP + FZ_TAIL];
static uint8_t fz_bits[FZ_BITS / 8];

static void fz_check_err(const char *err)
{
	static const char meta[] = "failed to obtain the metadata of the image file: ";
	static const char unz[] = "image decompression failed: ";

	if (strncmp(err, meta, sizeof(meta) - 1) && strncmp(err, unz, sizeof(unz) - 1))
		abort();
}

static int fz_write(int fd, const uint8_t *data, size_t size, int holes)
{
	static const uint8_t zero[4096];
	size_t off, n;

	if (ftruncate(fd, 0) || ftruncate(fd, (off_t)size))
		return -1;
	for (off = 0; off < size; off += n) {
		n = size - off < 4096 ? size - off : 4096;
		if (holes && n == 4096 && !memcmp(data + off, zero, n))
			continue;
		if (pwrite(fd, data + off, n, (off_t)off) != (ssize_t)n)
			return -1;
	}
	return 0;
}

/* Reads [off, off+len) in pieces whose sizes come from the input. */
static int fz_read(struct img *im, uint8_t *dst, uint64_t off, uint64_t len, const uint8_t *data,
		   size_t size, char *err, size_t cap)
{
	uint64_t done = 0, n;
	size_t k = 0;
	int r;

	while (done < len) {
		n = size ? 1 + (uint64_t)data[k++ % size] * 509 : len;
		if (n > len - done)
			n = len - done;
		if ((r = img_read(im, dst + done, (size_t)n, off + done, err, cap)))
			return r;
		done += n;
	}
	return 0;
}

/* buf holds the virtual bytes [off, off+len): unmapped chunks must be 0. */
static void fz_holes_zero(const uint8_t *buf, uint64_t off, uint64_t len, uint64_t chunk)
{
	uint64_t i = 0, c, n, k;

	while (i < len) {
		c = (off + i) / chunk;
		n = (c + 1) * chunk - (off + i);
		if (n > len - i)
			n = len - i;
		if (!(fz_bits[c / 8] >> (c % 8) & 1))
			for (k = 0; k < n; k++)
				if (buf[i + k])
					abort();
		i += n;
	}
}

static void fz_one(const uint8_t *data, size_t size, const char *fmt, int holes)
{
	static int fd = -1;
	char path[64], err[IMG_ERR_MAX];
	struct img *im = NULL;
	struct img_info in;
	uint64_t head, toff = 0, tlen = 0, chunk = 4096, nch;
	int r, rm;

	if (fd < 0 && (fd = memfd_create("fuzz-image", MFD_CLOEXEC)) < 0)
		abort();
	if (fz_write(fd, data, size, holes))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	err[0] = 0;
	if ((r = img_open(path, fmt, &im, err, sizeof(err)))) {
		if (im || r >= 0)
			abort();
		fz_check_err(err);
		return;
	}
	img_info(im, &in);
	if (in.allocated > in.virtual_size || strcmp(in.format, fmt ? fmt : in.format))
		abort();
	head = in.virtual_size < FZ_READ_CAP ? in.virtual_size : FZ_READ_CAP;
	r = fz_read(im, fz_buf, 0, head, data, size, err, sizeof(err));
	if (r == 0 && in.virtual_size > head) {
		tlen = in.virtual_size - head < FZ_TAIL ? in.virtual_size - head : FZ_TAIL;
		toff = in.virtual_size - tlen;
		r = fz_read(im, fz_buf + head, toff, tlen, data + size / 2, size - size / 2, err,
			    sizeof(err));
	}
	if (r < 0)
		fz_check_err(err);
	while (in.virtual_size / chunk >= FZ_BITS)
		chunk <<= 1;
	nch = (in.virtual_size + chunk - 1) / chunk;
	memset(fz_bits, 0, sizeof(fz_bits));
	rm = img_alloc_map(im, (uint32_t)chunk, fz_bits, nch, err, sizeof(err));
	if (rm < 0)
		fz_check_err(err);
	/* A read that worked and a map that worked agree: no data in a hole. */
	if (r == 0 && rm == 0) {
		fz_holes_zero(fz_buf, 0, head, chunk);
		fz_holes_zero(fz_buf + head, toff, tlen, chunk);
	}
	img_close(im);
}

/* The target's format, then detection, on the same bytes. */
static int fz_image(const uint8_t *data, size_t size, const char *fmt)
{
	fz_one(data, size, fmt, !strcmp(fmt, "raw"));
	fz_one(data, size, NULL, 0);
	return 0;
}

#endif
