/*
 * fsimg.h - what the filesystem reader tests (test_blockmap.c,
 * test_xfs.c, test_fat.c) share: running the real tools, loop devices at a partition's offset
 * (detached and unmounted at exit whatever failed), and bm_probe with
 * its warnings captured. Included once per test program after tap.h.
 */
#ifndef FERRY_TESTS_FSIMG_H
#define FERRY_TESTS_FSIMG_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockmap/blockmap.h"
#include "tests/shell.h"

#define MiB	     ((uint64_t)1024 * 1024)
#define FS_MAX_LOOPS 16

static char T[64];		 /* the temp dir */
static struct bm_disk D;	 /* large: not on the stack */
static char ERR[512], LOG[8192]; /* last bm_probe's err and stderr */
static int QUIET;		 /* no stderr notes (loops over random input) */
static char LOOPS[FS_MAX_LOOPS][32], MNTS[FS_MAX_LOOPS][96];


/* A loop device over [off, off + size) of img into dev; 0 or -1. */
static __attribute__((unused)) int loop_at(const char *img, uint64_t off, uint64_t size, int ro,
					   char *dev, size_t cap)
{
	size_t i;

	if (capture(dev, cap, "losetup %s -f --show -o %" PRIu64 " --sizelimit %" PRIu64 " %s",
		    ro ? "-r" : "", off, size, img) != 0 ||
	    strncmp(dev, "/dev/loop", 9) != 0)
		return -1;
	for (i = 0; i < FS_MAX_LOOPS; i++)
		if (!LOOPS[i][0]) {
			snprintf(LOOPS[i], sizeof(LOOPS[i]), "%s", dev);
			break;
		}
	return 0;
}

static __attribute__((unused)) void loop_free(const char *name)
{
	char dev[32];
	size_t i;

	snprintf(dev, sizeof(dev), "%s", name);
	if (!dev[0])
		return;
	for (i = 0; i < FS_MAX_LOOPS; i++)
		if (!strcmp(LOOPS[i], dev)) {
			run("losetup -d %s", dev);
			LOOPS[i][0] = 0;
		}
}

/* Mounts dev on T/name (made); mnt gets the path. */
static __attribute__((unused)) int mount_at(const char *dev, const char *name, char *mnt,
					    size_t cap)
{
	size_t i;

	snprintf(mnt, cap, "%s/%s", T, name);
	if (run("mkdir -p '%s' && mount %s '%s'", mnt, dev, mnt) != 0)
		return -1;
	for (i = 0; i < FS_MAX_LOOPS; i++)
		if (!MNTS[i][0]) {
			snprintf(MNTS[i], sizeof(MNTS[i]), "%s", mnt);
			break;
		}
	return 0;
}

static __attribute__((unused)) void umount_at(const char *name)
{
	char mnt[96];
	size_t i;

	snprintf(mnt, sizeof(mnt), "%s", name);
	if (!mnt[0])
		return;
	for (i = 0; i < FS_MAX_LOOPS; i++)
		if (!strcmp(MNTS[i], mnt)) {
			run("umount '%s'", mnt);
			MNTS[i][0] = 0;
		}
}

/* Everything still mounted or attached, last first. */
static __attribute__((unused)) void fs_cleanup(void)
{
	int i;

	for (i = FS_MAX_LOOPS - 1; i >= 0; i--)
		if (MNTS[i][0])
			umount_at(MNTS[i]);
	for (i = FS_MAX_LOOPS - 1; i >= 0; i--)
		if (LOOPS[i][0])
			loop_free(LOOPS[i]);
}

/* bm_probe with its stderr (the warnings) captured into LOG. */
static __attribute__((unused)) int probe(const char *path, uint32_t chunk)
{
	char lp[128];
	int saved, fd, r;
	ssize_t n;

	snprintf(lp, sizeof(lp), "%s/stderr.log", T);
	fflush(stderr);
	saved = dup(2);
	fd = open(lp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (saved < 0 || fd < 0)
		return -EIO;
	dup2(fd, 2);
	r = bm_probe(path, chunk, &D, ERR, sizeof(ERR));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, LOG, sizeof(LOG) - 1, 0);
	LOG[n > 0 ? n : 0] = 0;
	close(fd);
	if (LOG[0] && !QUIET)
		note("stderr: %.*s", (int)strcspn(LOG, "\n"), LOG);
	return r;
}

static __attribute__((unused)) const struct bm_part *part(int number)
{
	size_t i;

	for (i = 0; i < D.nparts; i++)
		if (D.parts[i].number == number)
			return &D.parts[i];
	return NULL;
}

static __attribute__((unused)) int marked(uint64_t off)
{
	return off < D.size && bm_test(&D, off / D.chunk);
}

/* Whether every chunk of [lo, hi) is set. */
static __attribute__((unused)) int all_marked(uint64_t lo, uint64_t hi)
{
	uint64_t i;

	for (i = lo / D.chunk; i * D.chunk < hi && i < D.nchunks; i++)
		if (!bm_test(&D, i))
			return 0;
	return 1;
}

/*
 * Root and loop devices, or a reason to skip. The test's mounts live in
 * a private mount namespace: a mount namespace another process clones
 * (or a shared peer) while one of ours is mounted would keep that
 * filesystem alive after our umount, its log not yet written - seen
 * here with other test runs on the machine.
 */
static __attribute__((unused)) const char *fs_cannot(void)
{
	if (geteuid() != 0)
		return "not root: loop devices and mounts need it";
	if (run("losetup -f >/dev/null 2>&1") != 0)
		return "no free loop device";
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return "no private mount namespace (unshare)";
	return NULL;
}

#endif
