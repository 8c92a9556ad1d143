/*
 * fuzz_fat.c - libFuzzer target for the FAT reader (blockmap/fat.c): a
 * sparse volume from the input (fuzz_vol.h) read by bm_reader_fat. Besides
 * the sanitizers it checks that the reader answers only 0 or -EUCLEAN with
 * a reason. Seeds: FAT12/16/32 made by mkfs.vfat and mtools, and one per
 * bound the reader checks (mkseeds-fs.py).
 */
#include <stdio.h>

#include "fuzz/fuzz_vol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bm_seg seg;
	struct bm_vol v;
	uint8_t flags;

	if (fv_build(data, size, &v, &seg, &flags) == 0)
		fv_run(&bm_reader_fat, &v);
	return 0;
}
