/*
 * image.h - virtual disks stored in image files: raw (sparse-aware),
 * qcow2 (v2/v3), VHD (fixed, dynamic) and VMDK (monolithicSparse,
 * streamOptimized). Read-only, through bounded cursors, with capped
 * memory; anything that references another file is refused. The agent
 * sends an image like a disk: img_read() gives the virtual disk's bytes,
 * img_alloc_map() says which chunks hold data.
 */
#ifndef FERRY_IMAGE_H
#define FERRY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMG_ERR_MAX 256
/* Virtual sizes beyond this are refused as insane (64 TiB). */
#define IMG_VSIZE_MAX (64ull << 40)

struct img;

struct img_info {
	char format[16];	/* "raw", "qcow2", "vhd", "vmdk" */
	char subformat[32];	/* "v3", "dynamic", "streamOptimized", ... */
	uint64_t virtual_size;	/* bytes */
	uint64_t file_size;	/* bytes */
	uint64_t allocated;	/* bytes of the virtual disk backed by data */
	char features[160];	/* "compressed clusters, zero clusters", ... */
	char warnings[256];	/* e.g. "2 internal snapshots ignored" */
};

/*
 * Opens path. format NULL detects by magic; a given format is checked
 * against the magic and a mismatch is an error, never a guess. Errors
 * use the seed tool's words: "failed to obtain the metadata of the image
 * file: <detail>". Returns 0 or -errno with err filled.
 */
int img_open(const char *path, const char *format, struct img **out, char *err,
	     size_t errcap);
void img_info(const struct img *im, struct img_info *info);
/*
 * Reads len bytes of the virtual disk at off (anything unallocated reads
 * as zeros). Decompression failures: "image decompression failed: ...".
 */
int img_read(struct img *im, void *buf, size_t len, uint64_t off, char *err, size_t errcap);
/*
 * Sets bit i of bits (nchunks bits, zeroed by the caller) for every
 * chunk of `chunk` bytes (a power of two >= 4096) that overlaps data
 * the image holds (not holes, not zero clusters).
 */
int img_alloc_map(struct img *im, uint32_t chunk, uint8_t *bits, uint64_t nchunks,
		  char *err, size_t errcap);
void img_close(struct img *im);

#endif
