/*
 * zc.c - the one adapter for zstd (built from Debian's libzstd source
 * with musl): one context per direction and thread (the streams compress
 * and decompress at once), reused, never reallocated on the data path. Decompression writes exactly the promised length into a
 * caller buffer of that size or fails: a hostile frame cannot make it
 * write more.
 */
#include <errno.h>
#include <zstd.h>

#include "common/common.h"

static __thread ZSTD_CCtx *cctx;
static __thread ZSTD_DCtx *dctx;

void zc_thread_end(void)
{
	ZSTD_freeCCtx(cctx);
	ZSTD_freeDCtx(dctx);
	cctx = NULL;
	dctx = NULL;
}

size_t zc_bound(size_t n)
{
	return ZSTD_compressBound(n);
}

int zc_compress(const void *src, size_t n, void *dst, size_t cap, int level, size_t *out)
{
	size_t r;

	if (!cctx && !(cctx = ZSTD_createCCtx()))
		return -ENOMEM;
	r = ZSTD_compressCCtx(cctx, dst, cap, src, n, level);
	if (ZSTD_isError(r))
		return -ENOSPC;
	*out = r;
	return 0;
}

int zc_decompress(const void *src, size_t n, void *dst, size_t want)
{
	unsigned long long content;
	size_t r;

	if (!dctx && !(dctx = ZSTD_createDCtx()))
		return -ENOMEM;
	/* The frame must say, up front, exactly the size we expect. */
	content = ZSTD_getFrameContentSize(src, n);
	if (content != want)
		return -EBADMSG;
	r = ZSTD_decompressDCtx(dctx, dst, want, src, n);
	if (ZSTD_isError(r) || r != want)
		return -EBADMSG;
	return 0;
}
