/*
 * swap.c - the swap reader: only the header page is sent (its UUID and
 * label make the destination's fstab and resume= work); the rest is
 * scratch the kernel rewrites. An active swap area is the same. It never
 * looks past the header.
 */
#include <errno.h>
#include <string.h>

#include "blockmap/reader.h"

/*
 * "SWAPSPACE2" (or the old "SWAP-SPACE") ends the header page, whose size
 * is the page size of the machine that ran mkswap: 4 KiB on x86, up to
 * 64 KiB elsewhere.
 */
#define SWAP_PAGE_MIN  4096u
#define SWAP_PAGE_MAX  65536u
#define SWAP_MAGIC_LEN 10

static int swap_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	uint32_t page;

	for (page = SWAP_PAGE_MIN; page <= SWAP_PAGE_MAX; page *= 2) {
		char magic[SWAP_MAGIC_LEN];
		int r;

		if (page > v->size)
			break;
		r = bm_vol_read(v, magic, sizeof(magic), page - SWAP_MAGIC_LEN);
		if (r)
			return r;
		if (!memcmp(magic, "SWAPSPACE2", SWAP_MAGIC_LEN) ||
		    !memcmp(magic, "SWAP-SPACE", SWAP_MAGIC_LEN)) {
			bm_vol_mark(d, v, 0, page);
			return 0;
		}
	}
	return bm_why(why, whycap, "no swap signature at the end of a 4-64 KiB header page");
}

static const char *const swap_types[] = {"swap", NULL};

const struct bm_reader bm_reader_swap = {
    .name = "swap",
    .types = swap_types,
    .method = BM_HEADER,
    .mark = swap_mark,
};
