/*
 * fuzz_image_qcow2.c - libFuzzer target for src/image/qcow2.c: the input is a
 * qcow2 image file (seeds: small real images and one file per refused
 * class, src/fuzz/corpus/image_qcow2/). The checks live in fuzz_image.h.
 */
#include "fuzz/fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_image(data, size, "qcow2");
}
