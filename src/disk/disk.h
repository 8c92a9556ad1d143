/*
 * disk.h - what disks a machine has: the kernel's view from /sys/block
 * (the live environment) or file-backed disks (host mode, tests). Opens
 * nothing for writing.
 */
#ifndef FERRY_DISK_H
#define FERRY_DISK_H

#include <stddef.h>
#include <stdint.h>

#define DISK_MAX 32
#define DISK_NAME_MAX 32
#define DISK_PATH_MAX 256
#define DISK_LABEL_MAX 64

struct disk_info {
	char name[DISK_NAME_MAX];	/* "vda", or the NAME of NAME=PATH */
	char path[DISK_PATH_MAX];	/* "/dev/vda" or the file */
	uint64_t size;			/* bytes */
	uint32_t lsec, psec;		/* logical / physical sector size */
	int readonly, removable;
	char model[DISK_LABEL_MAX];
	char serial[DISK_LABEL_MAX];
};

/*
 * Scans sysblock (normally "/sys/block") for whole disks a migration can
 * write: virtio (vd*), SCSI/SATA (sd*), NVMe namespaces (nvme*n*), Xen
 * (xvd*), MMC; never ram, loop, zram, sr, fd, md or dm devices, and
 * never a disk whose name is in `skip` (the boot medium). Sorted by
 * name. *n set to the count; -E2BIG if more than cap exist (the first cap
 * are returned), other -errno on failure.
 */
int disk_scan_sys(const char *sysblock, const char *devdir,
		  const char *const *skip, size_t nskip, struct disk_info *out,
		  size_t cap, size_t *n);

/*
 * Parses "NAME=PATH" and describes the file or block device at PATH
 * (size by fstat or BLKGETSIZE64, 512-byte sectors for files). The name
 * must be [a-z0-9_-]{1,31}. err gets a sentence naming the value.
 */
int disk_from_spec(const char *spec, struct disk_info *d, char *err,
		   size_t errcap);

/* True if a kernel disk name is something disk_scan_sys would list. */
int disk_name_is_candidate(const char *name);

#endif
