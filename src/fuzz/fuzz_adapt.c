/*
 * fuzz_adapt.c - libFuzzer target for the adapt phase's text rewrites
 * (src/adapt). Input: one selector byte (which rewrite; bit 7 turns
 * to_dhcp on for the network ones), then the file's text. The mapping
 * maps every /dev/sd?N, /dev/xvd?N and /dev/vd?N to a UUID. Besides the
 * sanitizers it checks what the API promises: the output is a string of
 * exactly out.len bytes; a rewrite that reports no change copied its
 * input byte for byte; a second pass over the output (of the device
 * rewrites) changes nothing more; grubenv keeps its length.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/adapt.h"
#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out1[ADAPT_OUT_MAX], out2[ADAPT_OUT_MAX];

static int map(void *arg, const char *dev, char *out, size_t cap)
{
	char disk[32];
	int part;

	(void)arg;
	if (!adapt_split_dev(dev + 5, disk, sizeof(disk), &part) || !part ||
	    (strncmp(disk, "sd", 2) && strncmp(disk, "xvd", 3) && strncmp(disk, "vd", 2)))
		return 0;
	snprintf(out, cap, "UUID=0b1c2d3e-0000-4000-8000-0000000000%02d", part % 100);
	return 1;
}

static int one(int sel, const char *in, size_t len, struct adapt_buf *out, struct adapt_notes *nt,
	       struct adapt_net *n)
{
	static const char *const keys[] = {"root", "resume", "RESUME", NULL};
	static const char *const mods[] = {"virtio_blk", "virtio_pci", "nvme", NULL};

	switch (sel) {
	case 0: return adapt_fstab(in, len, map, NULL, out, nt);
	case 1: return adapt_crypttab(in, len, map, NULL, out, nt);
	case 2: return adapt_words(in, len, keys, map, NULL, out, nt);
	case 3: return adapt_grub_default(in, len, map, NULL, out, nt);
	case 4: return adapt_grubenv(in, len, map, NULL, out, nt);
	case 5: return adapt_modules_list(in, len, mods, out, nt);
	case 6: return adapt_udev_net(in, len, n, out, nt);
	case 7: return adapt_ifcfg(in, len, "eth0", n, out, nt);
	case 8: return adapt_nm_keyfile(in, len, n, out, nt);
	case 9: return adapt_netplan(in, len, n, out, nt);
	default: return adapt_interfaces(in, len, n, out, nt);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct adapt_notes nt;
	struct adapt_buf a, b;
	struct adapt_net n;
	const char *in;
	size_t len;
	int sel, r, r2;

	if (size < 1)
		return 0;
	sel = data[0] % 11;
	in = (const char *)data + 1;
	len = size - 1;
	memset(&n, 0, sizeof(n));
	snprintf(n.primary, sizeof(n.primary), "eth0");
	snprintf(n.new_mac, sizeof(n.new_mac), "52:54:00:12:34:56");
	n.to_dhcp = (data[0] & 0x80) != 0;
	if (data[0] & 0x40) { /* --adapt-ip's static setup */
		snprintf(n.st_addr, sizeof(n.st_addr), "192.0.2.10/24");
		snprintf(n.st_gw, sizeof(n.st_gw), "192.0.2.1");
		snprintf(n.st_dns, sizeof(n.st_dns), "192.0.2.53");
	}
	memset(&nt, 0, sizeof(nt));
	adapt_buf_init(&a, out1, sizeof(out1));
	r = one(sel, in, len, &a, &nt, &n);
	if (r < 0)
		return 0;
	if (strlen(a.p) > a.len || a.len >= a.cap)
		abort(); /* the output is a string of out.len bytes (a NUL may be input) */
	if (sel != 5 && r == 0 && (a.len != len || memcmp(a.p, in, len)))
		abort(); /* no change reported, yet the text differs */
	if (sel == 4 && a.len != len)
		abort(); /* grubenv keeps its size */
	if (nt.n > ADAPT_NOTES_MAX)
		abort();
	/* The device rewrites are idempotent: their output maps nothing. */
	if (sel <= 3) {
		adapt_buf_init(&b, out2, sizeof(out2));
		r2 = one(sel, a.p, a.len, &b, NULL, &n);
		if (r2 > 0 || (r2 == 0 && (b.len != a.len || memcmp(a.p, b.p, a.len))))
			abort();
	}
	return 0;
}
