/*
 * fuzz_bootcfg.c - boot_parse_grub and boot_parse_extlinux on arbitrary
 * text; the first byte picks the parser, and for grub the second half of
 * the input is also handed in as grubenv.
 */
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct boot_entry e;
	char err[256];

	if (size < 1)
		return 0;
	if (data[0] & 1)
		boot_parse_grub("/boot/grub/grub.cfg", (const char *)data + 1, size - 1,
				(const char *)data + 1 + (size - 1) / 2, (size - 1) / 2, &e, err,
				sizeof(err));
	else
		boot_parse_extlinux("/boot/extlinux/extlinux.conf", (const char *)data + 1,
				    size - 1, &e, err, sizeof(err));
	return 0;
}
