/*
 * zstd.c - the libzstd adapter of src/boot, and the only file here that
 * includes zstd.h: streams a zstd-compressed initramfs (Debian 12 and
 * Ubuntu compress theirs so) into a sink. Memory is bounded by libzstd's
 * default window limit (128 MiB) and two 128 KiB buffers; output by the
 * caller's cap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "boot/boot_impl.h"

#define ZIN  (128u * 1024)
#define ZOUT (128u * 1024)

int boot_unzstd(int fd, uint64_t off, uint64_t size, uint64_t outcap, boot_sink_fn fn, void *arg,
		char *err, size_t errcap)
{
	ZSTD_DStream *z = ZSTD_createDStream();
	uint8_t *in = malloc(ZIN), *out = malloc(ZOUT);
	uint64_t done = 0, total = 0;
	size_t k, ret = 0;
	int r = 0, frames = 0;

	if (!z || !in || !out) {
		r = boot_err(err, errcap, -ENOMEM, "out of memory for zstd");
		goto out;
	}
	ZSTD_initDStream(z);
	while (done < size) {
		ZSTD_inBuffer ib;

		k = size - done < ZIN ? (size_t)(size - done) : ZIN;
		if ((r = boot_pread_full(fd, in, k, off + done))) {
			boot_err(err, errcap, r, "cannot read the initramfs: %s", strerror(-r));
			goto out;
		}
		done += k;
		ib.src = in, ib.size = k, ib.pos = 0;
		/* A full output buffer may leave more output inside libzstd. */
		for (;;) {
			ZSTD_outBuffer ob = {out, ZOUT, 0};

			ret = ZSTD_decompressStream(z, &ob, &ib);
			if (ZSTD_isError(ret)) {
				/* Padding after complete frames is not an error here:
				 * the scanner's state tells whether the cpio was whole. */
				if (frames)
					goto out;
				r = boot_err(err, errcap, -EIO, "zstd: %s", ZSTD_getErrorName(ret));
				goto out;
			}
			if (ret == 0)
				frames++;
			total += ob.pos;
			if (total > outcap) {
				r = boot_err(err, errcap, -EFBIG,
					     "initramfs decompresses past %llu bytes",
					     (unsigned long long)outcap);
				goto out;
			}
			if (ob.pos && (r = fn(arg, out, ob.pos)) != 0) {
				if (r > 0)
					r = 0; /* the sink has what it wanted */
				else
					boot_err(err, errcap, r, "initramfs (zstd): bad cpio data");
				goto out;
			}
			if (ib.pos == ib.size && ob.pos < ob.size)
				break;
		}
	}
	if (ret != 0 && !frames)
		r = boot_err(err, errcap, -EIO, "zstd: the initramfs ends inside a frame");
out:
	ZSTD_freeDStream(z);
	free(in);
	free(out);
	return r;
}
