/*
 * kexec.c - loads the migrated system's default kernel for a kexec
 * hand-off: the kernel and its initrds (concatenated, each padded to 4
 * bytes as bootloaders place them) are copied from the read-only
 * filesystem into memory files, then handed to kexec_file_load with the
 * entry's command line. It only loads; the caller reboots into it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "boot/boot_impl.h"

#ifndef KEXEC_FILE_NO_INITRAMFS
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#endif

static const char *kexec_hint(int e)
{
	switch (e) {
	case EPERM: return " (not root, kexec_load_disabled set, or kernel lockdown)";
	case ENOSYS: return " (kernel without KEXEC_FILE?)";
	case ENOEXEC: return " (not a kernel image this kernel can load)";
	case EKEYREJECTED:
	case EBADMSG: return " (the kernel requires a signed image)";
	case EINVAL: return " (command line too long for the new kernel, or a bad image)";
	case ENOMEM: return " (not enough memory for the new kernel and initrd)";
	case EBUSY: return " (another kexec is in progress)";
	default: return "";
	}
}

static int copy_initrds(struct boot_ctx *c, const struct boot_entry *e, const int *ivol, int fd,
			char *err, size_t errcap)
{
	static const uint8_t zero[4];
	struct boot_ext *fs;
	uint64_t len, total = 0;
	size_t i;
	int r;

	for (i = 0; i < e->ninitrd; i++) {
		if ((r = boot_ctx_ext(c, ivol[i], &fs)))
			return boot_err(err, errcap, r, "kexec: %s cannot be opened",
					e->initrd[i].part);
		if (total >= BOOT_INITRDS_MAX)
			return boot_err(err, errcap, -EFBIG,
					"kexec: initrds are larger than %llu MiB",
					BOOT_INITRDS_MAX >> 20);
		r = boot_ext_to_fd(fs, e->initrd[i].path, BOOT_INITRDS_MAX - total, fd, &len);
		if (r == -EFBIG)
			return boot_err(err, errcap, r, "kexec: initrds are larger than %llu MiB",
					BOOT_INITRDS_MAX >> 20);
		if (r)
			return boot_err(err, errcap, r, "kexec: %s on %s: %s", e->initrd[i].path,
					e->initrd[i].part, strerror(-r));
		total += len;
		if (len % 4 && (r = fd_write_all(fd, zero, 4 - len % 4)))
			return boot_err(err, errcap, r, "kexec: writing the initrd copy: %s",
					strerror(-r));
		total += (4 - len % 4) % 4;
	}
	return 0;
}

int boot_kexec_load(const char *const *disks, size_t n, char *err, size_t errcap)
{
	struct boot_ctx *c = NULL;
	struct boot_entry *e = NULL;
	struct boot_ext *fs;
	int kvol, ivol[BOOT_INITRD_MAX], kfd = -1, ifd = -1, r;
	unsigned long flags = 0;
	uint64_t len;
	long rc;

	if (!disks || !n || n > BOOT_DISK_MAX)
		return boot_err(err, errcap, -EINVAL, "kexec: between 1 and %d disks are needed",
				BOOT_DISK_MAX);
	c = boot_ctx_new();
	e = calloc(1, sizeof(*e));
	if (!c || !e) {
		r = boot_err(err, errcap, -ENOMEM, "kexec: out of memory");
		goto out;
	}
	if ((r = boot_scan_disks(c, disks, n))) {
		boot_err(err, errcap, r, "kexec: %s", strerror(-r));
		goto out;
	}
	if ((r = boot_find_root(c, err, errcap)) ||
	    (r = boot_locate_entry(c, e, &kvol, ivol, err, errcap))) {
		char why[BOOT_ERR_MAX];

		snprintf(why, sizeof(why), "%s", err && errcap ? err : "");
		boot_err(err, errcap, r, "kexec: %s", why);
		goto out;
	}

	kfd = boot_tmpfd("ferry-kernel");
	ifd = e->ninitrd ? boot_tmpfd("ferry-initrd") : -1;
	if (kfd < 0 || (e->ninitrd && ifd < 0)) {
		r = kfd < 0 ? kfd : ifd;
		boot_err(err, errcap, r, "kexec: no memory file for the kernel: %s", strerror(-r));
		goto out;
	}
	if ((r = boot_ctx_ext(c, kvol, &fs))) {
		boot_err(err, errcap, r, "kexec: %s cannot be opened", e->kernel.part);
		goto out;
	}
	r = boot_ext_to_fd(fs, e->kernel.path, BOOT_KERNEL_MAX, kfd, &len);
	if (r == -EFBIG) {
		boot_err(err, errcap, r, "kexec: %s on %s is %llu bytes, more than %llu MiB",
			 e->kernel.path, e->kernel.part, (unsigned long long)len,
			 BOOT_KERNEL_MAX >> 20);
		goto out;
	}
	if (r) {
		boot_err(err, errcap, r, "kexec: %s on %s: %s", e->kernel.path, e->kernel.part,
			 strerror(-r));
		goto out;
	}
	if (e->ninitrd && (r = copy_initrds(c, e, ivol, ifd, err, errcap)))
		goto out;
	if (!e->ninitrd)
		flags |= KEXEC_FILE_NO_INITRAMFS;

#ifdef SYS_kexec_file_load
	rc = syscall(SYS_kexec_file_load, kfd, ifd, (unsigned long)strlen(e->cmdline) + 1,
		     e->cmdline, flags);
	r = rc < 0 ? -errno : 0;
#else
	(void)rc;
	r = -ENOSYS;
#endif
	if (r)
		boot_err(err, errcap, r, "kexec_file_load: %s%s (kernel %s:%s)", strerror(-r),
			 kexec_hint(-r), e->kernel.part, e->kernel.path);
	else
		boot_err(err, errcap, 0, "kexec: loaded %s:%s%s with \"%.200s\"", e->kernel.part,
			 e->kernel.path, e->ninitrd ? " and its initrd" : "", e->cmdline);
out:
	if (kfd >= 0)
		close(kfd);
	if (ifd >= 0)
		close(ifd);
	free(e);
	boot_ctx_free(c);
	return r;
}
