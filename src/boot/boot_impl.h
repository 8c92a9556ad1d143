/*
 * boot_impl.h - private to src/boot: the disk and partition scan, the
 * libext2fs adapter (ext.c is the only file that sees ext2fs.h), the vfat
 * walker, the initramfs scanner and the report helpers that the public
 * functions share. Nothing outside src/boot includes it.
 */
#ifndef FERRY_BOOT_IMPL_H
#define FERRY_BOOT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "common/common.h"

#define BOOT_DISK_MAX BOOT_DISKS_MAX
#define BOOT_VOL_MAX  128 /* partitions over all disks */
#define BOOT_ERR_MAX  256

/* ---- little-endian reads through a cursor (on-disk formats are LE) --- */

int boot_le16(struct cur *c, uint16_t *v);
int boot_le32(struct cur *c, uint32_t *v);
int boot_le64(struct cur *c, uint64_t *v);
int boot_skip(struct cur *c, size_t n);
/* 16 bytes as "01234567-89ab-cdef-0123-456789abcdef"; gpt = mixed-endian. */
void boot_fmt_uuid(const uint8_t u[16], int gpt, char out[37]);
uint32_t boot_crc32(uint32_t crc, const void *p, size_t n);
/* Reads exactly n bytes at off, or fails (-EIO on a short read). */
int boot_pread_full(int fd, void *buf, size_t n, uint64_t off);

/* snprintf that reports truncation as -ENAMETOOLONG. */
int boot_fmt(char *dst, size_t cap, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
/* Control bytes (terminal escapes from a hostile config) become '?'. */
void boot_printable(char *s);
/* err sentence helper: snprintf into err (may be NULL), returns rc. */
int boot_err(char *err, size_t errcap, int rc, const char *fmt, ...) FERRY_ATTR_PRINTF(4, 5);

/* ---- disks, partitions and what is on them -------------------------- */

enum boot_fstype {
	BOOT_FS_NONE = 0,
	BOOT_FS_EXT2,
	BOOT_FS_EXT3,
	BOOT_FS_EXT4,
	BOOT_FS_VFAT,
	BOOT_FS_SWAP,
	BOOT_FS_XFS,
	BOOT_FS_BTRFS,
	BOOT_FS_LVM,
	BOOT_FS_LUKS,
};

struct boot_disk {
	char name[BOOT_NAME_MAX];
	char path[BOOT_PATH_MAX];
	uint64_t size;
	uint32_t ss;   /* logical sector size */
	char table[8]; /* "gpt", "dos", "" */
	int bios_code; /* boot code in the first 440 bytes */
	int err;       /* 0 or the -errno that stopped the scan */
	char errtext[BOOT_ERR_MAX];
	char warn[BOOT_ERR_MAX]; /* a table problem that did not stop it */
	enum boot_level warn_level;
};

struct boot_vol {
	char name[BOOT_NAME_MAX]; /* "vda2", or "vda" for a whole disk */
	size_t disk;
	int number;	      /* 0: the whole disk */
	uint64_t start, size; /* bytes */
	enum boot_fstype fs;
	char uuid[40], label[64];
	char partuuid[40], partlabel[72];
	char ptype[40]; /* GPT type GUID or "0x83" */
	int esp;	/* partition type: EFI system */
	int bios_boot;	/* GPT BIOS boot partition (grub core) */
};

struct boot_ext;

/* Everything one inspection or lookup learned; heap-allocated. */
struct boot_ctx {
	struct boot_disk disk[BOOT_DISK_MAX];
	size_t ndisk;
	struct boot_vol vol[BOOT_VOL_MAX];
	size_t nvol, vol_dropped;
	struct boot_ext *ext[BOOT_VOL_MAX]; /* opened lazily */
	int ext_err[BOOT_VOL_MAX];	    /* a failed open is not retried */
	char ext_errtext[BOOT_VOL_MAX][128];

	int root;	       /* vol index or -1 */
	char root_init[64];    /* the init found on it */
	char root_others[128]; /* other candidates, named */
	int boot;	       /* fstab's /boot, -1 if none or on root */
	int esp;	       /* fstab's /boot/efi or /efi, else first ESP */
	char *fstab;	       /* root's /etc/fstab, NUL-terminated */
	size_t fstab_len;
	int fstab_err; /* why fstab is NULL */
};

struct boot_fstab_ent {
	char spec[256], file[256], type[32], opts[256];
	int line;
	int bad; /* not the four fields of an entry */
};
/* The next entry of fstab text (comments and blank lines skipped): 1, or
 * 0 at the end. */
int boot_fstab_next(struct cur *c, int *lineno, struct boot_fstab_ent *e);
int boot_fstab_opt(const struct boot_fstab_ent *e, const char *opt);

const char *boot_fs_name(enum boot_fstype fs);
int boot_fs_is_ext(enum boot_fstype fs);

/* Reads each disk's partition table and probes each partition. Problems
 * with one disk are recorded in its boot_disk and do not stop the scan. */
int boot_scan_disks(struct boot_ctx *c, const char *const *disks, size_t n);

/* "TYPE=VALUE" (UUID, LABEL, PARTUUID, PARTLABEL) or /dev/disk/by-* path
 * to a vol index; -ENOENT when absent, -EINVAL when not such a form. */
int boot_find_vol(const struct boot_ctx *c, const char *spec, int *vol, int *nmatch);
int boot_vol_by_name(const struct boot_ctx *c, const char *name);

/* Finds root, fstab, /boot and the ESP; fills c. 0, or -ENOENT when no
 * root was found (err says what was looked at). */
int boot_find_root(struct boot_ctx *c, char *err, size_t errcap);

struct boot_ctx *boot_ctx_new(void);
void boot_ctx_free(struct boot_ctx *c);
/* The open ext filesystem of vol (cached in c), or -errno. */
int boot_ctx_ext(struct boot_ctx *c, int vol, struct boot_ext **fs);

/* The default entry with files located; used by boot_find_entry and
 * boot_inspect. kvol/ivol receive the vol indexes of kernel/initrds. */
int boot_locate_entry(struct boot_ctx *c, struct boot_entry *e, int *kvol,
		      int ivol[BOOT_INITRD_MAX], char *err, size_t errcap);

/* ---- ext2/3/4 through libext2fs, read-only --------------------------- */

int boot_ext_open(const char *path, uint64_t offset, struct boot_ext **fs, char *err,
		  size_t errcap);
void boot_ext_close(struct boot_ext *fs);
/* Follows symlinks (inside the filesystem). *type: 'f', 'd' or '?'. */
int boot_ext_stat(struct boot_ext *fs, const char *path, int *type, uint64_t *size);
/* Whole file into a malloc'd NUL-terminated buffer; -EFBIG (and *len set
 * to the real size) when larger than cap. */
int boot_ext_read(struct boot_ext *fs, const char *path, size_t cap, char **buf, size_t *len);
/* Up to n bytes from off; *got is what the file had. */
int boot_ext_pread(struct boot_ext *fs, const char *path, uint64_t off, void *buf, size_t n,
		   size_t *got);
/* Feeds the file to fn in pieces; -EFBIG when it is larger than cap.
 * fn returns 0 to go on, 1 to stop early, -errno to fail. */
typedef int (*boot_sink_fn)(void *arg, const void *p, size_t n);
int boot_ext_stream(struct boot_ext *fs, const char *path, uint64_t cap, boot_sink_fn fn, void *arg,
		    uint64_t *len);
/* Calls fn for each name in dir ("." and ".." excluded); fn returns
 * nonzero to stop. -ENOTDIR, -ENOENT. */
typedef int (*boot_name_fn)(void *arg, const char *name);
int boot_ext_list(struct boot_ext *fs, const char *dir, boot_name_fn fn, void *arg);

/* ---- vfat, read-only ------------------------------------------------ */

#define BOOT_EFI_MAX 16
struct boot_efi {
	size_t n;		     /* loaders found */
	char path[BOOT_EFI_MAX][64]; /* "/EFI/debian/grubx64.efi" */
	int fallback;		     /* /EFI/BOOT/BOOTX64.EFI (or other arch) */
	char fallback_name[64];
	char cfg_path[64]; /* "/EFI/redhat/grub.cfg", or "" */
	uint32_t cfg_clus, cfg_size;
	char env_dir[24]; /* "redhat" when /EFI/redhat/grubenv exists */
	uint32_t env_clus, env_size;
};
/* Lists /EFI/ * / *.efi on the vfat filesystem at off. */
int boot_fat_efi(int fd, uint64_t off, uint64_t size, struct boot_efi *out, char *err,
		 size_t errcap);

/* A file's bytes by its first cluster and size (from boot_fat_efi). */
int boot_fat_read(int fd, uint64_t off, uint64_t size, uint32_t clus, uint32_t fsize, size_t cap,
		  char **out, char *err, size_t errcap);

/* ---- initramfs ----------------------------------------------------- */

/*
 * Scans an initramfs (uncompressed newc cpio, or one compressed with
 * gzip/xz/lzma/bzip2 through BusyBox, or zstd) for modules named in
 * want ("virtio_blk" matches virtio_blk.ko, .ko.xz, .ko.zst, .ko.gz).
 * found bit i is set for want[i]. fmt gets the format ("gzip", ...).
 * 0: the scan was complete; -EOPNOTSUPP / -EIO: it was not, err says why.
 */
int boot_initrd_scan(int fd, uint64_t size, const char *const *want, size_t nwant, unsigned *found,
		     char *fmt, size_t fmtcap, char *err, size_t errcap);
/* An unlinked memory file (memfd, else O_TMPFILE or an unlinked file in
 * /tmp) for a copy of a kernel or initrd; fd or -errno. */
int boot_tmpfd(const char *name);
/* Copies a file of an ext filesystem into a new boot_tmpfd; *len its size. */
int boot_ext_to_fd(struct boot_ext *fs, const char *path, uint64_t cap, int fd, uint64_t *len);

/* BusyBox used for gzip/xz/lzma/bzip2; the live environment has it here. */
#define BOOT_BUSYBOX "/bin/busybox"

/* zstd.c: decompresses [off, off+size) of fd into fn (stops when fn
 * returns 1), at most outcap bytes. */
int boot_unzstd(int fd, uint64_t off, uint64_t size, uint64_t outcap, boot_sink_fn fn, void *arg,
		char *err, size_t errcap);

/* ---- bootloader configs (bootcfg.c) -------------------------------- */

/* One BLS entry (/boot/loader/entries/NAME.conf), already parsed. */
struct boot_bls {
	char id[128]; /* file name without .conf */
	char title[BOOT_TITLE_MAX];
	char version[64];
	char *body; /* "linux P OPTIONS\ninitrd P...\n", malloc'd */
};
int boot_bls_parse(const char *id, const char *text, size_t len, struct boot_bls *b, char *err,
		   size_t errcap);
void boot_bls_free(struct boot_bls *b);
int boot_parse_grub_bls(const char *cfgpath, const char *text, size_t len, const char *grubenv,
			size_t envlen, const struct boot_bls *bls, size_t nbls,
			struct boot_entry *e, char *err, size_t errcap);
/* Rejects "..", control bytes, over-long; 0 or -EINVAL. */
int boot_path_ok(const char *p);
/* Appends "; text" to e->note (truncating quietly: notes are advisory). */
void boot_note(struct boot_entry *e, const char *fmt, ...) FERRY_ATTR_PRINTF(2, 3);

/* ---- report -------------------------------------------------------- */

void boot_say(struct boot_report *r, enum boot_level l, const char *fmt, ...)
    FERRY_ATTR_PRINTF(3, 4);

#endif
