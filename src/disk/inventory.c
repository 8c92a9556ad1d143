/*
 * inventory.c - builds struct disk_info lists from sysfs or from
 * NAME=PATH specs. Read-only: nothing here opens a disk for writing.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "common/common.h"
#include "disk/disk.h"

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

int disk_name_is_candidate(const char *name)
{
	static const char *const deny[] = { "ram", "loop", "zram", "sr", "fd",
					    "md", "dm-", "nbd", "mtdblock" };
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(deny); i++)
		if (has_prefix(name, deny[i]))
			return 0;
	if (has_prefix(name, "vd") || has_prefix(name, "sd") ||
	    has_prefix(name, "xvd") || has_prefix(name, "hd") ||
	    has_prefix(name, "mmcblk"))
		return 1;
	/* nvme0n1 is a namespace (a disk); nvme0c0n1 is a hidden path. */
	if (has_prefix(name, "nvme"))
		return strchr(name, 'n') != strrchr(name, 'n') && !strchr(name + 4, 'c');
	return 0;
}

static void clean_label(char *s)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++)
		if (!isprint((unsigned char)s[i]))
			s[i] = '?';
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = 0;
}

static int sys_u64(const char *dir, const char *name, const char *file,
		   uint64_t *v)
{
	char path[512], buf[64];
	int r;

	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	r = file_read_small(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	return parse_u64(buf, UINT64_MAX, v);
}

static void sys_label(const char *dir, const char *name, const char *file,
		      char *dst, size_t cap)
{
	char path[512];

	dst[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file) >=
	    (int)sizeof(path))
		return;
	if (file_read_small(path, dst, cap) < 0)
		dst[0] = 0;
	clean_label(dst);
}

static int cmp_disk(const void *a, const void *b)
{
	const struct disk_info *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);

	/* vdb before vdaa, as the kernel names them. */
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x->name, y->name);
}

int disk_scan_sys(const char *sysblock, const char *devdir,
		  const char *const *skip, size_t nskip, struct disk_info *out,
		  size_t cap, size_t *n)
{
	DIR *dir;
	struct dirent *e;
	size_t i, count = 0;
	int err = 0;

	*n = 0;
	dir = opendir(sysblock);
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		struct disk_info d;
		uint64_t sectors, v;
		int skipped = 0;

		if (e->d_name[0] == '.' || !disk_name_is_candidate(e->d_name))
			continue;
		for (i = 0; i < nskip; i++)
			if (skip[i] && !strcmp(skip[i], e->d_name))
				skipped = 1;
		if (skipped || strlen(e->d_name) >= DISK_NAME_MAX)
			continue;
		memset(&d, 0, sizeof(d));
		memcpy(d.name, e->d_name, strlen(e->d_name) + 1);
		if (snprintf(d.path, sizeof(d.path), "%s/%s", devdir, d.name) >=
		    (int)sizeof(d.path))
			continue;
		/* sysfs "size" is always in 512-byte units. */
		if (sys_u64(sysblock, d.name, "size", &sectors) ||
		    sectors > UINT64_MAX / 512)
			continue;
		d.size = sectors * 512;
		d.lsec = 512;
		d.psec = 512;
		if (!sys_u64(sysblock, d.name, "queue/logical_block_size", &v) &&
		    v >= 512 && v <= 65536)
			d.lsec = (uint32_t)v;
		if (!sys_u64(sysblock, d.name, "queue/physical_block_size", &v) &&
		    v >= 512 && v <= 65536)
			d.psec = (uint32_t)v;
		if (!sys_u64(sysblock, d.name, "ro", &v))
			d.readonly = v != 0;
		if (!sys_u64(sysblock, d.name, "removable", &v))
			d.removable = v != 0;
		sys_label(sysblock, d.name, "device/model", d.model, sizeof(d.model));
		sys_label(sysblock, d.name, "serial", d.serial, sizeof(d.serial));
		if (!d.serial[0])
			sys_label(sysblock, d.name, "device/serial", d.serial,
				  sizeof(d.serial));
		if (d.size == 0)
			continue; /* an empty slot (no medium) */
		if (count == cap) {
			err = -E2BIG;
			break;
		}
		out[count++] = d;
	}
	closedir(dir);
	qsort(out, count, sizeof(*out), cmp_disk);
	*n = count;
	return err;
}

static int name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= DISK_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
		      s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

int disk_from_spec(const char *spec, struct disk_info *d, char *err,
		   size_t errcap)
{
	const char *eq = strchr(spec, '=');
	struct stat st;
	int fd, r = 0;

	memset(d, 0, sizeof(*d));
	if (!eq || !name_ok(spec, (size_t)(eq - spec))) {
		snprintf(err, errcap,
			 "bad disk '%s': want NAME=PATH with NAME of a-z 0-9 _ -", spec);
		return -EINVAL;
	}
	if (strlen(eq + 1) == 0 || strlen(eq + 1) >= DISK_PATH_MAX) {
		snprintf(err, errcap, "bad disk '%s': empty or too long path", spec);
		return -EINVAL;
	}
	memcpy(d->name, spec, (size_t)(eq - spec));
	snprintf(d->path, sizeof(d->path), "%s", eq + 1);
	d->lsec = d->psec = 512;
	fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errcap, "%s: %s: %s", d->name, d->path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errcap, "%s: %s: %s", d->name, d->path, strerror(-r));
		goto out;
	}
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		int ss;

		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			r = -errno;
			snprintf(err, errcap, "%s: %s: size: %s", d->name, d->path,
				 strerror(-r));
			goto out;
		}
		d->size = sz;
		if (ioctl(fd, BLKSSZGET, &ss) == 0 && ss >= 512)
			d->lsec = d->psec = (uint32_t)ss;
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else {
		r = -EINVAL;
		snprintf(err, errcap, "%s: %s is neither a file nor a block device",
			 d->name, d->path);
		goto out;
	}
	if (d->size % d->lsec) {
		r = -EINVAL;
		snprintf(err, errcap,
			 "%s: %s is %llu bytes, not a multiple of the %u-byte sector",
			 d->name, d->path, (unsigned long long)d->size, d->lsec);
	}
out:
	close(fd);
	return r;
}
