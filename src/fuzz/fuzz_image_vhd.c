/*
 * fuzz_image_vhd.c - libFuzzer target for src/image/vhd.c: the input is a
 * vhd image file (seeds: small real images and one file per refused
 * class, src/fuzz/corpus/image_vhd/). The checks live in fuzz_image.h.
 */
#include "fuzz/fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_image(data, size, "vhd");
}
