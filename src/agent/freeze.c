/*
 * freeze.c - FIFREEZE/FITHAW of the source's mounted filesystems. The
 * thaw is idempotent and async-signal-safe (ioctl and close only), so a
 * signal handler and the timeout can both run it: a freeze can never
 * outlive the agent's attention.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/fs.h>

#include "agent/freeze.h"
#include "common/common.h"

static volatile sig_atomic_t expired, active;
static int fds[FREEZE_MAX];
static volatile sig_atomic_t nfds;
static size_t last_count;
static uint64_t t0;
static struct sigaction old_int, old_term, old_hup, old_alrm;

static void thaw_all(void)
{
	sig_atomic_t i;

	for (i = 0; i < nfds; i++) {
		if (fds[i] >= 0) {
			ioctl(fds[i], FITHAW, 0);
			close(fds[i]);
			fds[i] = -1;
		}
	}
	nfds = 0;
	active = 0;
}

static void on_alarm(int sig)
{
	(void)sig;
	thaw_all();
	expired = 1;
}

static void on_fatal(int sig)
{
	thaw_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Is the block device dev (major:minor) one of the disks or inside one? */
static int on_source_at(dev_t dev, const char *const *disks, size_t n, int depth)
{
	char link[96], target[PATH_MAX];
	struct dirent *de;
	ssize_t len;
	size_t i;
	DIR *dir;
	int hit = 0;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	len = readlink(link, target, sizeof(target) - 1);
	if (len <= 0)
		return 0;
	target[len] = 0;
	for (i = 0; i < n; i++) {
		struct stat st;
		char want[64], *base;

		if (stat(disks[i], &st) < 0 || !S_ISBLK(st.st_mode))
			continue;
		if (st.st_rdev == dev)
			return 1;
		base = strrchr(disks[i], '/');
		snprintf(want, sizeof(want), "/%s/", base ? base + 1 : disks[i]);
		if (strstr(target, want))
			return 1; /* a partition: its sysfs path runs through the disk's */
	}
	/*
	 * A device-mapper device (an LVM LV) sits on its slaves: it is on
	 * the source when one of them is. Bounded: dm stacks are shallow.
	 */
	if (depth >= 4)
		return 0;
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u/slaves", major(dev), minor(dev));
	dir = opendir(link);
	while (dir && !hit && (de = readdir(dir)) != NULL) {
		char path[PATH_MAX], val[32];
		unsigned ma, mi;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/block/%s/dev", de->d_name);
		if (file_read_small(path, val, sizeof(val)) > 0 &&
		    sscanf(val, "%u:%u", &ma, &mi) == 2)
			hit = on_source_at(makedev(ma, mi), disks, n, depth + 1);
	}
	if (dir)
		closedir(dir);
	return hit;
}

/*
 * The mount's own device, or (btrfs shows an anonymous device number in
 * mountinfo) the block device named as its source.
 */
static int on_source(dev_t dev, const char *source, const char *const *disks, size_t n)
{
	struct stat st;

	if (on_source_at(dev, disks, n, 0))
		return 1;
	return strncmp(source, "/dev/", 5) == 0 && stat(source, &st) == 0 &&
	       S_ISBLK(st.st_mode) && st.st_rdev != dev && on_source_at(st.st_rdev, disks, n, 0);
}

int freeze_begin(const char *const *disks, size_t n, unsigned timeout_s, char *err,
		 size_t errcap)
{
	char line[1024], listed[400] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	struct sigaction sa;
	size_t o = 0;

	expired = 0;
	nfds = 0;
	last_count = 0;
	if (!f) {
		snprintf(err, errcap, "/proc/self/mountinfo: %s", strerror(errno));
		return -errno;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_fatal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, &old_alrm);
	active = 1;
	t0 = time_now_ms();
	alarm(timeout_s);
	while (fgets(line, sizeof(line), f)) {
		unsigned ma, mi;
		char mnt[512], fstype[64], source[256] = "";
		const char *sep;
		int fd;

		/* "36 35 8:2 / /mnt rw,relatime shared:1 - ext4 /dev/sda2 rw" */
		if (sscanf(line, "%*u %*u %u:%u %*s %511s", &ma, &mi, mnt) != 3)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%63s %255s", fstype, source) < 1)
			continue;
		if (!on_source(makedev(ma, mi), source, disks, n))
			continue;
		if (nfds == FREEZE_MAX) {
			thaw_all();
			fclose(f);
			snprintf(err, errcap, "more than %d filesystems to freeze", FREEZE_MAX);
			return -E2BIG;
		}
		fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, FIFREEZE, 0) < 0) {
			int e = errno;

			if (fd >= 0)
				close(fd);
			/* Already frozen by someone else, or a type that cannot freeze. */
			log_info("freeze: %s (%s) not frozen: %s", mnt, fstype, strerror(e));
			continue;
		}
		fds[nfds] = fd;
		nfds = nfds + 1;
		last_count++;
		o += (size_t)snprintf(listed + o, o < sizeof(listed) ? sizeof(listed) - o : 0,
				      "%s%s", o ? ", " : "", mnt);
	}
	fclose(f);
	snprintf(err, errcap, "%s", last_count ? listed : "no mounted filesystem on the source disks");
	return 0;
}

uint64_t freeze_end(void)
{
	uint64_t ms = time_now_ms() - t0;

	alarm(0);
	thaw_all();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGALRM, &old_alrm, NULL);
	return ms;
}

int freeze_expired(void)
{
	return expired != 0;
}

int freeze_active(void)
{
	return active != 0;
}

size_t freeze_count(void)
{
	return last_count;
}
