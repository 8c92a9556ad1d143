/*
 * pseudofs.c - phase 1: the kernel's pseudo filesystems. An already
 * mounted target (EBUSY: devtmpfs automount) is fine.
 */
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common/common.h"
#include "init.h"

struct mnt {
	const char *src, *dst, *type;
	unsigned long flags;
	const char *data;
};

int mount_pseudofs(void)
{
	static const struct mnt m[] = {
		{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
		{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
		{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755" },
		{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666" },
		{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755" },
		{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	};
	size_t i;
	int err = 0;

	for (i = 0; i < FERRY_ARRAY_LEN(m); i++) {
		mkdir(m[i].dst, 0755);
		if (mount(m[i].src, m[i].dst, m[i].type, m[i].flags, m[i].data) < 0 &&
		    errno != EBUSY) {
			/* Logged once the console is open; keep going. */
			if (!err)
				err = -errno;
		}
	}
	mkdir("/run/net", 0755);
	return err;
}
