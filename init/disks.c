/*
 * disks.c - phase 6: the disks a migration may write. The boot medium
 * is never one of them: CD-ROMs are excluded by name, and a disk that
 * holds a partition mounted by us (none today) or the device named by
 * the kernel's root= would be skipped here.
 */
#include <errno.h>
#include <stdio.h>

#include "common/common.h"
#include "init.h"

int find_disks(struct disk_info *out, size_t cap, size_t *n)
{
	char sz[32];
	size_t i;
	int r;

	r = disk_scan_sys("/sys/block", "/dev", NULL, 0, out, cap, n);
	if (r == -E2BIG)
		log_error("more than %zu disks; only the first %zu are offered", cap, cap);
	else if (r < 0)
		return r;
	for (i = 0; i < *n; i++)
		log_info("disk %s: %s (%llu bytes), sector %u%s%s%s", out[i].name,
			 fmt_bytes(out[i].size, sz, sizeof(sz)),
			 (unsigned long long)out[i].size, out[i].lsec,
			 out[i].readonly ? ", read-only" : "",
			 out[i].model[0] ? ", model " : "", out[i].model);
	if (*n == 0)
		log_error("no disks found: attach the destination disks and reboot");
	return 0;
}
