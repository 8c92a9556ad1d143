/*
 * mount.c - where a volume of the source is mounted now: the one place
 * that reads /proc/self/mountinfo and sysfs for it. A block device's
 * partitions are found by their device numbers (sysfs), an image file's
 * by the loop device holding it at the partition's offset. It only
 * reads; what a mount means for the map is map.c's business.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "blockmap/reader.h"
#include "common/common.h"

#define MOUNTINFO  "/proc/self/mountinfo"
#define LINE_MAX_  4096
#define LOOP_MAJOR 7

struct mnt_ent {
	unsigned maj, min;
	char mnt[BM_PATH_MAX];
	char src[BM_PATH_MAX];
};

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
}

/* "36 35 8:2 / /mnt rw,relatime shared:1 - ext4 /dev/sda2 rw": 0 if parsed. */
static int parse_line(char *line, struct mnt_ent *e)
{
	char *sep, *tok, *save = NULL;
	int field = 0;

	sep = strstr(line, " - ");
	if (!sep)
		return -EINVAL;
	*sep = 0;
	memset(e, 0, sizeof(*e));
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 2 && sscanf(tok, "%u:%u", &e->maj, &e->min) != 2)
			return -EINVAL;
		if (field == 4) {
			if (strlen(tok) >= sizeof(e->mnt))
				return -ENAMETOOLONG;
			memcpy(e->mnt, tok, strlen(tok) + 1);
			unescape(e->mnt);
		}
	}
	if (field < 5)
		return -EINVAL;
	/* After " - ": fstype, source, super options. */
	save = NULL;
	tok = strtok_r(sep + 3, " ", &save);
	tok = tok ? strtok_r(NULL, " \n", &save) : NULL;
	if (tok && strlen(tok) < sizeof(e->src)) {
		memcpy(e->src, tok, strlen(tok) + 1);
		unescape(e->src);
	}
	return 0;
}

/* Does the loop device maj:min hold the file st at byte offset start? */
static int loop_holds(unsigned maj, unsigned min, const struct stat *st, uint64_t start)
{
	char path[96], val[BM_PATH_MAX];
	struct stat bs;
	uint64_t off;

	if (maj != LOOP_MAJOR)
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/offset", maj, min);
	if (file_read_small(path, val, sizeof(val)) <= 0 || parse_u64(val, UINT64_MAX, &off) ||
	    off != start)
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file", maj, min);
	if (file_read_small(path, val, sizeof(val)) <= 0 || stat(val, &bs) != 0)
		return 0;
	return bs.st_dev == st->st_dev && bs.st_ino == st->st_ino;
}

/*
 * The first mount that matches: the block device dev (img == NULL), or
 * a loop device holding img at start. 1 with mnt set, 0, or -errno.
 */
static int find(dev_t dev, const struct stat *img, uint64_t start, char *mnt, size_t cap)
{
	char line[LINE_MAX_];
	struct mnt_ent e;
	FILE *f = fopen(MOUNTINFO, "re");
	int found = 0;

	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		struct stat st;

		if (!strchr(line, '\n') && !feof(f)) {
			int c;

			/* A line longer than any path we could use: skip it. */
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		if (parse_line(line, &e))
			continue;
		if (img)
			found = loop_holds(e.maj, e.min, img, start);
		else
			found = makedev(e.maj, e.min) == dev ||
				(e.src[0] == '/' && stat(e.src, &st) == 0 && S_ISBLK(st.st_mode) &&
				 st.st_rdev == dev);
	}
	fclose(f);
	if (!found)
		return 0;
	if (strlen(e.mnt) >= cap)
		return -ENAMETOOLONG;
	memcpy(mnt, e.mnt, strlen(e.mnt) + 1);
	return 1;
}

int bm_mount_of_dev(dev_t dev, char *mnt, size_t cap)
{
	return find(dev, NULL, 0, mnt, cap);
}

/* The device number of partition number of the disk dev, from sysfs. */
static int part_dev(dev_t disk, int number, dev_t *out)
{
	char dir[64], path[BM_PATH_MAX], val[32];
	struct dirent *de;
	DIR *dp;
	int r = -ENOENT;

	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(disk), minor(disk));
	dp = opendir(dir);
	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		unsigned ma, mi;
		uint64_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/partition", dir, de->d_name);
		if (file_read_small(path, val, sizeof(val)) <= 0 || parse_u64(val, 1u << 20, &n) ||
		    n != (uint64_t)number)
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, de->d_name);
		if (file_read_small(path, val, sizeof(val)) > 0 &&
		    sscanf(val, "%u:%u", &ma, &mi) == 2) {
			*out = makedev(ma, mi);
			r = 0;
		}
		break;
	}
	closedir(dp);
	return r;
}

int bm_mount_of_part(int fd, int number, uint64_t start, char *mnt, size_t cap)
{
	struct stat st;
	dev_t dev = 0;
	int r;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode))
		return find(0, &st, start, mnt, cap);
	if (!S_ISBLK(st.st_mode))
		return 0;
	if (number == 0)
		return bm_mount_of_dev(st.st_rdev, mnt, cap);
	r = part_dev(st.st_rdev, number, &dev);
	if (r == -ENOENT)
		return 0; /* the kernel does not know the partition: nothing mounts it */
	if (r)
		return r;
	return bm_mount_of_dev(dev, mnt, cap);
}
