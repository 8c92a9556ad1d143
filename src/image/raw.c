/*
 * raw.c - raw images: the virtual disk is the file. Holes (SEEK_DATA /
 * SEEK_HOLE) read as zeros without touching the disk and are left out of
 * the allocation map; where the file system cannot say, everything is
 * data. It never reads the file's bytes itself. A fixed VHD is mapped
 * the same way (its data starts at offset 0).
 */
#include <errno.h>
#include <unistd.h>

#include "image/image_impl.h"

static int raw_open(struct img *im, char *err, size_t errcap)
{
	(void)err;
	(void)errcap;
	im->vsize = im->file_size;
	im->data_end = im->file_size;
	return 0;
}

int img_raw_map(struct img *im, uint64_t off, struct img_ext *e)
{
	off_t d, h;

	e->kind = IMG_EXT_DATA;
	e->foff = off;
	e->len = im->vsize - off;
	d = lseek(im->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		/* ENXIO: nothing but hole from off on; else no hole support. */
		if (errno == ENXIO)
			e->kind = IMG_EXT_ZERO;
		return 0;
	}
	if ((uint64_t)d > off) {
		e->kind = IMG_EXT_ZERO;
		e->len = (uint64_t)d - off;
		return 0;
	}
	h = lseek(im->fd, (off_t)off, SEEK_HOLE);
	if (h > (off_t)off && (uint64_t)h - off < e->len)
		e->len = (uint64_t)h - off;
	return 0;
}

static int raw_map(struct img *im, uint64_t off, struct img_ext *e, char *err, size_t errcap)
{
	(void)err;
	(void)errcap;
	return img_raw_map(im, off, e);
}

const struct img_ops img_raw_ops = {
    .name = "raw",
    .open = raw_open,
    .map = raw_map,
};
