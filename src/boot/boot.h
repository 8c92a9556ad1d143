/*
 * boot.h - after the copy: will the migrated system boot here, and
 * loading its kernel for kexec. It reads the destination disks (block
 * devices or image files) and never writes to them: partition tables are
 * parsed here, ext2/3/4 filesystems are read with libext2fs opened
 * read-only, vfat directories with a small walker. Disks are named by
 * "NAME=PATH" specs (as for `ferry-init serve --disk`) or plain paths
 * (the name is the base name), 1 to BOOT_DISKS_MAX of them; partitions
 * get kernel names: vda2, nvme0n1p2. Partition tables (MBR with its
 * extended chain, GPT) are read here, not through libblkid.
 */
#ifndef FERRY_BOOT_H
#define FERRY_BOOT_H

#include <stddef.h>

#define BOOT_DISKS_MAX	  32   /* disks per call, as DISK_MAX */
#define BOOT_NAME_MAX	  40   /* "nvme0n1p128" */
#define BOOT_PATH_MAX	  256  /* a path inside a filesystem */
#define BOOT_CMDLINE_MAX  4096 /* kernel command line incl. NUL */
#define BOOT_INITRD_MAX	  4    /* initrds of one entry, concatenated */
#define BOOT_TITLE_MAX	  128
#define BOOT_NOTE_MAX	  512
#define BOOT_CONFIG_MAX	  (256u * 1024)	 /* bootloader config, fstab */
#define BOOT_KERNEL_MAX	  (256ull << 20) /* one kernel image */
#define BOOT_INITRDS_MAX  (512ull << 20) /* all initrds of an entry */
#define BOOT_REPORT_LINES 64
#define BOOT_LINE_MAX	  320

/* ---- boot-readiness report ------------------------------------------ */

enum boot_level {
	BOOT_PASS = 0,
	BOOT_WARN = 1,
	BOOT_FAIL = 2,
};

struct boot_line {
	enum boot_level level;
	char text[BOOT_LINE_MAX]; /* says what was checked and where */
};

/* Caller-owned (about 21 KB). */
struct boot_report {
	enum boot_level verdict; /* the worst level of all lines */
	size_t n;		 /* lines held */
	size_t dropped;		 /* lines that did not fit; counted in verdict */
	/* The ESP has no \EFI\BOOT\BOOTX64.EFI: a WARN on the source, where
	 * the firmware has boot entries, but a new machine has none; adapt
	 * acts on it as on a FAIL. */
	int no_esp_fallback;
	/* The root is on what this check does not read (XFS, btrfs, LVM,
	 * LUKS): a WARN, not a proof that it boots; adapt, which opens
	 * them, acts on it as on a FAIL. */
	int root_unread;
	struct boot_line line[BOOT_REPORT_LINES];
};

/*
 * Inspects the destination disks: the partition tables; the root
 * filesystem (the ext2/3/4 filesystem holding /etc/fstab and an init);
 * every UUID=/LABEL=/PARTUUID=/PARTLABEL= (and /dev/disk/by-*) source in
 * its fstab against the filesystems and partitions found; the default
 * boot entry, its kernel, initrd and root=; virtio_blk, virtio_pci and
 * virtio_net in that kernel (its /boot/config-VERSION or
 * modules.builtin, then its initramfs or /lib/modules); a bootloader
 * configuration and an EFI system partition with its loaders (and the
 * /EFI/BOOT fallback a new VM's firmware looks for). A WARN says
 * "unknown" where ferry cannot tell (xfs/btrfs/LVM roots, lz4
 * initramfs, no config); missing virtio drivers FAIL when a disk is
 * named vd*, else WARN. Returns 0 when the report was produced (whatever its verdict), -EINVAL
 * for bad arguments, -ENOMEM.
 */
int boot_inspect(const char *const *disks, size_t n, struct boot_report *r);

/* "PASS", "WARN", "FAIL". */
const char *boot_level_name(enum boot_level l);

/* One "LEVEL text" line per report line, then "boot-readiness: VERDICT". */
int boot_report_write(const struct boot_report *r, int fd);

/*
 * Which kernel modules in want (at most 32; "virtio_blk" matches
 * virtio_blk.ko, .ko.xz, .ko.zst, .ko.gz) the initramfs file at path
 * carries: bit i of *found for want[i]. For `ferry check` on a source
 * server, which has no BusyBox: raw cpio (a microcode archive first, as
 * Debian and Ubuntu build them) is read in place, zstd with libzstd,
 * gzip, xz, lzma, bzip2, lzop and lz4 by this system's own tools from
 * PATH (TOOL -dc). 0 when the scan was complete (or found everything);
 * otherwise -EOPNOTSUPP (a format without a tool: "there is no gzip tool
 * in PATH"), -EIO (truncated), -errno, and err says why. Bits set in
 * *found are true even then. fmt gets the formats seen ("cpio+zstd").
 */
int boot_initrd_modules(const char *path, const char *const *want, size_t nwant, unsigned *found,
			char *fmt, size_t fmtcap, char *err, size_t errcap);

/* ---- the disks' layout, for the adapt phase ------------------------- */

#define BOOT_LAYOUT_VOLS 128

struct boot_layout_vol {
	char name[BOOT_NAME_MAX]; /* "vda2"; the disk's name for a whole disk */
	size_t disk;		  /* index into disk[] */
	int number;		  /* partition number, 0: the whole disk */
	unsigned long long start, size; /* bytes */
	char fs[16];			/* "ext4", "xfs", "swap", ... "" */
	char uuid[40], label[64], partuuid[40];
	int esp;
};

struct boot_layout {
	size_t ndisk;
	struct {
		char name[BOOT_NAME_MAX];
		char path[BOOT_PATH_MAX];
		unsigned long long size;
		char table[8]; /* "gpt", "dos", "" */
		int bios_code; /* boot code in sector 0 */
		int err;       /* the disk could not be read: -errno */
	} disk[BOOT_DISKS_MAX];
	size_t nvol;
	struct boot_layout_vol vol[BOOT_LAYOUT_VOLS];
	int root; /* the ext2/3/4 root (fstab and an init) or -1 */
};

/* The disks' partitions and filesystems (as boot_inspect sees them) and
 * the ext root if there is one. 0, -EINVAL, -ENOMEM. */
int boot_layout(const char *const *disks, size_t n, struct boot_layout *out);
/* The filesystem at [off, off + size) of fd into o->fs, uuid and label,
 * as boot_layout probes a partition (for an LV). 0 or -errno. */
int boot_probe_fs(int fd, unsigned long long off, unsigned long long size,
		  struct boot_layout_vol *o);

/* ---- the default boot entry ---------------------------------------- */

struct boot_file {
	char part[BOOT_NAME_MAX]; /* "vda2"; "" when only parsed */
	char path[BOOT_PATH_MAX]; /* inside that filesystem */
};

struct boot_entry {
	char loader[16];			    /* "grub", "grub+bls", "extlinux" */
	char config[BOOT_NAME_MAX + BOOT_PATH_MAX]; /* "vda2:/boot/grub/grub.cfg" */
	char title[BOOT_TITLE_MAX];		    /* menuentry title or LABEL */
	struct boot_file kernel;
	struct boot_file initrd[BOOT_INITRD_MAX];
	size_t ninitrd;
	char cmdline[BOOT_CMDLINE_MAX];
	char fs_hint[64];	  /* "UUID=..." from grub's search --set=root */
	char note[BOOT_NOTE_MAX]; /* what was ignored or guessed, or "" */
};

/*
 * Parses an extlinux/syslinux configuration: DEFAULT (a label, or a
 * kernel and its arguments), LABEL, KERNEL/LINUX, APPEND (and "initrd="
 * in it), INITRD, MENU DEFAULT. cfgpath ("/boot/extlinux/extlinux.conf")
 * anchors relative paths. Paths come out without their partition.
 * -EFBIG for text over BOOT_CONFIG_MAX, -E2BIG for a line over 16 KiB or
 * a command line over BOOT_CMDLINE_MAX-1, -EINVAL for a path with "..",
 * control bytes or over BOOT_PATH_MAX-1, -ENOENT when no entry has a
 * kernel. err gets a sentence.
 */
int boot_parse_extlinux(const char *cfgpath, const char *text, size_t len, struct boot_entry *e,
			char *err, size_t errcap);

/*
 * Parses a grub.cfg: `set default=` (index, "1>2", title or id,
 * ${saved_entry} from grubenv), menuentry/submenu, and in the chosen
 * entry linux/linuxefi/linux16 with its arguments and initrd. grubenv
 * (the text of grubenv, may be NULL) supplies saved_entry, kernelopts
 * and the like. $variables that cannot be resolved are dropped and named
 * in e->note. Errors as for boot_parse_extlinux.
 */
int boot_parse_grub(const char *cfgpath, const char *text, size_t len, const char *grubenv,
		    size_t envlen, struct boot_entry *e, char *err, size_t errcap);

/*
 * Finds the migrated system's default boot entry on the disks: the root
 * filesystem, a separate /boot (from fstab), grub.cfg (with grubenv and
 * BLS entries under /boot/loader/entries) in preference to extlinux.conf,
 * a grub.cfg in the ESP's /EFI/<vendor>/ when neither exists, and the
 * partition that holds each file (a /boot partition is tried with and
 * without the "/boot" prefix). e->kernel.part and e->initrd[].part are
 * filled. -ENOENT with a sentence when no configuration, entry or file
 * is found.
 */
int boot_find_entry(const char *const *disks, size_t n, struct boot_entry *e, char *err,
		    size_t errcap);

/*
 * boot_find_entry, then copies the kernel and its initrds (concatenated)
 * into memory files and calls kexec_file_load with the entry's command
 * line (KEXEC_FILE_NO_INITRAMFS when there is none). 0 when loaded: the
 * caller then calls reboot(RB_KEXEC). Otherwise -errno and err says what
 * failed: "kexec: /boot/vmlinuz not found on vda2",
 * "kexec_file_load: Operation not permitted (...)".
 */
int boot_kexec_load(const char *const *disks, size_t n, char *err, size_t errcap);

#endif
