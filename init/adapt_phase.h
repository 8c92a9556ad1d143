/*
 * adapt_phase.h - shared by the adapt phase's files (adapt.c: mounts,
 * chroot, the phase; adapt_fix.c: devices, initramfs, bootloader,
 * cloud-init; adapt_net.c: the network configuration). Nothing else
 * includes it.
 */
#ifndef FERRY_ADAPT_PHASE_H
#define FERRY_ADAPT_PHASE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "adapt/adapt.h"
#include "boot/boot.h"
#include "common/common.h"
#include "init.h"
#include "proto/proto.h"

#define AX_MOUNTS_MAX 24
#define AX_LOOPS_MAX  16
#define AX_OLD_MAX    16
#define AX_LVS_MAX    32
#define AX_DEV_MAX    160 /* "/dev/mapper/" and a device-mapper name */

/* An LV opened for adapting (adapt_lvm.c): one more volume of the layout. */
struct ax_lv {
	int vol; /* its index in lay->vol */
	char vg[128], lv[128];
	char dm[128];  /* lvm's device-mapper name: "rhel-root", "ubuntu--vg-ubuntu--lv" */
	char node[16]; /* "dm-0" */
	int active;    /* a device-mapper device of ours, to remove */
};

/* One adapt run, in the child that owns its mount namespace. */
struct ax {
	const struct adapt_req *q;
	struct boot_layout *lay;
	struct proto_report *r; /* shared with the parent */
	int dry, live;
	char work[64];		/* its temporary directory */
	char root[96];		/* where the migrated root is mounted */
	int root_vol, boot_vol, esp_vol;
	char esp_dir[16]; /* where the ESP is mounted: "/boot/efi" or "/efi" */
	/* "/dev/vda2", "/dev/loop3", "/dev/mapper/VG-LV" */
	char voldev[BOOT_LAYOUT_VOLS][AX_DEV_MAX];
	char mounts[AX_MOUNTS_MAX][PATH_MAX];
	size_t nmounts;
	int loops[AX_LOOPS_MAX];
	size_t nloops;
	int pseudo; /* /proc, /sys, /dev, /run mounted in the root */
	int rootfd; /* the mounted root (O_PATH), or -1 */
	int logfd;  /* the root's /var/log/ferry-adapt.log, or -1 */
	/* old disk names ("sda") and the destination disk each one is */
	struct {
		char name[32];
		int disk;
	} old[AX_OLD_MAX];
	size_t nold;
	char fstab[ADAPT_TEXT_MAX + 1];
	size_t fstab_len;
	int grub_old;	   /* a grub configuration named old devices */
	char grub_cfg[64]; /* the one edited, relative to the root */
	struct adapt_notes notes;
	/* in the shared mapping: the parent removes what a killed child left */
	struct ax_lv lv[AX_LVS_MAX];
	size_t nlv;
};

/* ---- files of the migrated root (adapt_fs.c) ---- */
#include <dirent.h>
/* openat2(RESOLVE_IN_ROOT) below dirfd / the root: symlinks and ".."
 * stay inside. fd or -errno. */
int ax_openat_in(int dirfd, const char *rel, int flags, mode_t mode);
int ax_open(const struct ax *x, const char *rel, int flags, mode_t mode);
int ax_stat(const struct ax *x, const char *rel, struct stat *st); /* lstat */
int ax_exists(const struct ax *x, const char *rel);
DIR *ax_opendir(const struct ax *x, const char *rel);
/* A regular file into buf (cap bytes, NUL added); -EFBIG when larger,
 * -EINVAL for a symlink or not a regular file. */
int ax_read_rel(struct ax *x, const char *rel, char *buf, size_t cap, size_t *len,
		struct stat *st);
int ax_mkdirs(struct ax *x, const char *dir);
int ax_copy_rel(struct ax *x, const char *from, const char *to);
int ax_rename_rel(struct ax *x, const char *from, const char *to);
int ax_unlink_rel(struct ax *x, const char *rel);
int ax_remove_tree(struct ax *x, const char *rel);

/* A report line "adapt: ..." (also logged, and into the root's log). */
void ax_say(struct ax *x, uint8_t level, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
/* root + rel into out. */
int ax_path(const struct ax *x, const char *rel, char *out, size_t cap);

/* A rewrite of one file's text; returns changes or -errno. */
typedef int (*ax_rewrite_fn)(struct ax *x, void *arg, const char *in, size_t len,
			     struct adapt_buf *out, struct adapt_notes *nt);
/*
 * Reads rel (a regular file under the root, at most ADAPT_TEXT_MAX),
 * rewrites it with fn, and when it changed keeps rel.ferry-orig (the
 * first original only) and replaces rel (temporary file, fsync, rename),
 * with a report line per change and one saying why. Nothing is written in
 * a dry run. 1 changed, 0 unchanged or absent, -EIO when writing failed.
 */
int ax_edit(struct ax *x, const char *rel, ax_rewrite_fn fn, void *arg, const char *why);
/* Keeps rel's first original (p, or the file itself when p is NULL). */
int ax_keep_orig(struct ax *x, const char *rel, const void *p, size_t len,
		 const struct stat *st);
/* Where ax_keep_orig keeps rel's original (relative to the root). */
#define AX_ORIG_DIR "/var/lib/ferry-adapt/orig"
void ax_orig_rel(const char *rel, char *out, size_t cap);
int ax_write_rel(struct ax *x, const char *rel, const void *p, size_t len,
		 const struct stat *st);

/* The vol an fstab spec (UUID=, LABEL=, PARTUUID=, by-*, an old device
 * path) names, or -1. */
int ax_vol_by_spec(const struct ax *x, const char *spec);
/* Fills x->old from the plan and the root's fstab (text, len); root is
 * the vol of the root. */
void ax_map_old_disks(struct ax *x, const char *fstab, size_t len, int root);
/* adapt_dev_fn over x: an old device path to UUID= / PARTUUID=. */
int ax_map(void *arg, const char *dev, char *out, size_t cap);
/* The block device of vol v (a partition node or a loop device). */
int ax_voldev(struct ax *x, int v, char *dev, size_t cap);
int ax_mount_vol(struct ax *x, int v, const char *dir, const char *extra);

/* ---- LVM (adapt_lvm.c) ---- */
/* Every linear LV of every PV on the disks as one more volume: a
 * device-mapper device in the live environment, a loop range in host
 * mode; a report line each, FAIL for what cannot be opened. */
void ax_lvm_open(struct ax *x);
/* Removes the device-mapper devices ax_lvm_open made (again: a no-op). */
void ax_lvm_close(struct ax *x);
/* The volume of /dev/mapper/VG-LV or /dev/VG/LV, or -1. */
int ax_lvm_vol(const struct ax *x, const char *path);
/* "dm-0" for an activated LV's volume, else NULL. */
const char *ax_lvm_node(const struct ax *x, int v);

/* 1 and rel ("/usr/sbin/dracut") when the root has the tool. */
int ax_tool(struct ax *x, const char *name, char *rel, size_t cap);
/* argv[0] is a path inside the root; the tool's exit status, or -errno. */
int ax_run(struct ax *x, const char *const *argv, char *tail, size_t tailcap);

/* The steps, in this order. */
void ax_fix_devices(struct ax *x);
void ax_fix_network(struct ax *x);
void ax_fix_cloudinit(struct ax *x);
void ax_fix_initramfs(struct ax *x);
void ax_fix_bootloader(struct ax *x);

#endif
