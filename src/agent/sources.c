/*
 * sources.c - which source disks to send: the ones named with --disk, or
 * every whole disk of this machine with the one holding / first (the
 * seed tool's DataDisks order). Partitions, loop, ram and CD-ROM devices
 * are refused with the list of what exists.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/sources.h"
#include "common/common.h"
#include "disk/disk.h"

/* The whole-disk name holding "/", or "" if it cannot be told. */
static void root_disk(char *name, size_t cap)
{
	char link[64], target[PATH_MAX], *base;
	struct stat st;
	ssize_t n;

	name[0] = 0;
	if (stat("/", &st) < 0)
		return;
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = 0;
	base = strrchr(target, '/');
	if (!base)
		return;
	/* A partition's sysfs directory sits inside its disk's. */
	{
		char part[PATH_MAX + 16];

		snprintf(part, sizeof(part), "%s/partition", link);
		if (access(part, F_OK) == 0) {
			*base = 0;
			base = strrchr(target, '/');
			if (!base)
				return;
		}
	}
	snprintf(name, cap, "%s", base + 1);
}

int src_is_partition(const char *path, char *disk, size_t cap)
{
	char sys[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;
	char *slash;

	if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
		return 0;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/partition", major(st.st_rdev),
		 minor(st.st_rdev));
	if (access(sys, F_OK) != 0)
		return 0;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev));
	n = readlink(sys, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = 0;
		if ((slash = strrchr(target, '/'))) {
			*slash = 0;
			if ((slash = strrchr(target, '/')))
				snprintf(disk, cap, "/dev/%s", slash + 1);
		}
	}
	return 1;
}

int src_discover(char paths[][SRC_PATH_MAX], size_t cap, size_t *n, char *err,
		 size_t errcap)
{
	static struct disk_info d[DISK_MAX];
	char root[64];
	size_t nd = 0, i, k = 0;
	int r;

	r = disk_scan_sys("/sys/block", "/dev", NULL, 0, d, DISK_MAX, &nd);
	if (r < 0 && r != -E2BIG) {
		snprintf(err, errcap, "listing /sys/block: %s", strerror(-r));
		return r;
	}
	root_disk(root, sizeof(root));
	for (i = 0; i < nd && k < cap; i++)
		if (root[0] && !strcmp(d[i].name, root))
			snprintf(paths[k++], SRC_PATH_MAX, "%s", d[i].path);
	for (i = 0; i < nd && k < cap; i++)
		if (!root[0] || strcmp(d[i].name, root))
			snprintf(paths[k++], SRC_PATH_MAX, "%s", d[i].path);
	*n = k;
	if (k == 0) {
		snprintf(err, errcap, "no source disks found in /sys/block; name them with --disk");
		return -ENODEV;
	}
	return 0;
}
