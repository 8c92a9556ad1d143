/*
 * fuzz_image_raw.c - libFuzzer target for src/image/raw.c: the input is a
 * raw image file (seeds: small real images and one file per refused
 * class, src/fuzz/corpus/image_raw/). The checks live in fuzz_image.h.
 */
#include "fuzz/fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_image(data, size, "raw");
}
