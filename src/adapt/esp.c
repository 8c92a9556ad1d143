/*
 * esp.c - which files of an EFI system partition's vendor directory
 * (\EFI\debian\, \EFI\ubuntu\, ...) make the removable-media fallback
 * \EFI\BOOT\BOOTX64.EFI, the only loader a firmware with empty boot
 * variables (a new VM) starts. A pure function over a directory listing:
 * nothing here reads or writes the ESP (init/adapt_fix.c does).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapt/adapt.h"

/* The listing's own spelling of name (FAT is case-blind), or NULL. */
static const char *has(const char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] && !strcasecmp(names[i], name))
			return names[i];
	return NULL;
}

static int add(struct adapt_esp_copy *out, size_t cap, size_t *k, const char *from, const char *to)
{
	if (*k >= cap || strlen(from) >= sizeof(out->from) || strlen(to) >= sizeof(out->to))
		return 0;
	snprintf(out[*k].from, sizeof(out[*k].from), "%s", from);
	snprintf(out[*k].to, sizeof(out[*k].to), "%s", to);
	(*k)++;
	return 1;
}

int adapt_esp_plan(const char *const *names, size_t n, struct adapt_esp_copy *out, size_t cap)
{
	const char *shim = has(names, n, "shimx64.efi"), *grub = has(names, n, "grubx64.efi");
	const char *mm = has(names, n, "mmx64.efi"), *cfg = has(names, n, "grub.cfg");
	size_t k = 0;

	if (!grub)
		return 0; /* shim alone only chain-loads grubx64.efi next to it */
	if (shim) {
		/* shim loads grubx64.efi (and MokManager) from its own
		 * directory: they go next to it under their own names. */
		if (!add(out, cap, &k, shim, "BOOTX64.EFI") ||
		    !add(out, cap, &k, grub, "grubx64.efi") ||
		    (mm && !add(out, cap, &k, mm, "mmx64.efi")))
			return -1;
	} else if (!add(out, cap, &k, grub, "BOOTX64.EFI")) {
		return -1;
	}
	/* Debian's signed grubx64.efi has the prefix /EFI/debian built in
	 * and its embedded script sources $prefix/grub.cfg, or, when that
	 * is not there, $cmdpath/grub.cfg: the one next to it (read from
	 * grub-efi-amd64-signed 2.06-13+deb12u2). grub-install --removable
	 * puts it there too. */
	if (cfg && !add(out, cap, &k, cfg, "grub.cfg"))
		return -1;
	return (int)k;
}
