/*
 * vol.c - what is on the destination disks: the MBR (with its extended
 * chain) or GPT (header and entry CRCs checked, the backup header tried
 * when the primary is bad), and for each partition the filesystem
 * signature with its UUID and label (ext2/3/4, vfat, swap, xfs, btrfs,
 * LVM and LUKS by name only). Every on-disk byte is read through a
 * bounded cursor. Disks are opened O_RDONLY; nothing here writes.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "boot/boot_impl.h"

#define MBR_TABLE_OFF	446
#define MBR_SIG_OFF	510
#define MBR_LOGICAL_MAX 60	   /* the Linux kernel stops near this too */
#define GPT_ENTRIES_CAP (1u << 20) /* bytes; 128 entries of 128 bytes is 16 KiB */
/* Enough of a partition's start for every signature probed: btrfs keeps
 * its superblock at 64 KiB, swap's magic ends the first page (up to 64 KiB). */
#define PROBE_LEN (0x10000 + 0x1000)

/* ---- small shared helpers ------------------------------------------ */

int boot_le16(struct cur *c, uint16_t *v)
{
	const uint8_t *p;

	*v = 0;
	if (cur_ref(c, &p, 2))
		return c->err;
	*v = (uint16_t)(p[0] | p[1] << 8);
	return 0;
}

int boot_le32(struct cur *c, uint32_t *v)
{
	const uint8_t *p;

	*v = 0;
	if (cur_ref(c, &p, 4))
		return c->err;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return 0;
}

int boot_le64(struct cur *c, uint64_t *v)
{
	uint32_t lo, hi;

	boot_le32(c, &lo);
	boot_le32(c, &hi);
	*v = c->err ? 0 : (uint64_t)hi << 32 | lo;
	return c->err;
}

int boot_skip(struct cur *c, size_t n)
{
	const uint8_t *p;

	return cur_ref(c, &p, n);
}

void boot_fmt_uuid(const uint8_t u[16], int gpt, char out[37])
{
	uint8_t b[16];

	memcpy(b, u, 16);
	if (gpt) {
		/* GUIDs keep their first three fields little-endian on disk. */
		b[0] = u[3], b[1] = u[2], b[2] = u[1], b[3] = u[0];
		b[4] = u[5], b[5] = u[4];
		b[6] = u[7], b[7] = u[6];
	}
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

uint32_t boot_crc32(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *s = p;
	int k;

	crc = ~crc;
	while (n--) {
		crc ^= *s++;
		for (k = 0; k < 8; k++)
			crc = crc >> 1 ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

int boot_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t r;

	while (n) {
		r = pread(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int boot_fmt(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	return r < 0 || (size_t)r >= cap ? -ENAMETOOLONG : 0;
}

void boot_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int boot_err(char *err, size_t errcap, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errcap) {
		va_start(ap, fmt);
		vsnprintf(err, errcap, fmt, ap);
		va_end(ap);
		boot_printable(err); /* it quotes disk contents and goes to a console */
	}
	return rc;
}

const char *boot_fs_name(enum boot_fstype fs)
{
	switch (fs) {
	case BOOT_FS_EXT2: return "ext2";
	case BOOT_FS_EXT3: return "ext3";
	case BOOT_FS_EXT4: return "ext4";
	case BOOT_FS_VFAT: return "vfat";
	case BOOT_FS_SWAP: return "swap";
	case BOOT_FS_XFS: return "xfs";
	case BOOT_FS_BTRFS: return "btrfs";
	case BOOT_FS_LVM: return "LVM2_member";
	case BOOT_FS_LUKS: return "crypto_LUKS";
	case BOOT_FS_NONE: break;
	}
	return "unknown";
}

int boot_fs_is_ext(enum boot_fstype fs)
{
	return fs == BOOT_FS_EXT2 || fs == BOOT_FS_EXT3 || fs == BOOT_FS_EXT4;
}

/* Printable ASCII of a fixed-size on-disk label, trailing blanks cut. */
static void label_copy(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && src[i] && o + 1 < cap; i++)
		dst[o++] = isprint(src[i]) ? (char)src[i] : '?';
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = 0;
}

/* ---- filesystem signatures ----------------------------------------- */

static void probe_ext(struct boot_vol *v, const uint8_t *buf, size_t len)
{
	struct cur c;
	uint16_t magic;
	uint32_t compat, incompat, ro;
	const uint8_t *uuid, *label;

	if (len < 2048)
		return;
	cur_init(&c, buf + 1024, 1024);
	boot_skip(&c, 56);
	boot_le16(&c, &magic);
	boot_skip(&c, 92 - 58);
	boot_le32(&c, &compat);
	boot_le32(&c, &incompat);
	boot_le32(&c, &ro);
	cur_ref(&c, &uuid, 16);
	cur_ref(&c, &label, 16);
	if (c.err || magic != 0xef53)
		return;
	if (incompat & 0x8) /* an external journal device, not a filesystem */
		return;
	if (incompat & (0x40 | 0x80 | 0x200 | 0x100 | 0x400 | 0x8000) ||
	    ro & (0x8 | 0x10 | 0x20 | 0x40 | 0x400))
		v->fs = BOOT_FS_EXT4;
	else if (compat & 0x4)
		v->fs = BOOT_FS_EXT3;
	else
		v->fs = BOOT_FS_EXT2;
	boot_fmt_uuid(uuid, 0, v->uuid);
	label_copy(v->label, sizeof(v->label), label, 16);
}

static void probe_swap(struct boot_vol *v, const uint8_t *buf, size_t len)
{
	static const size_t pages[] = {4096, 8192, 16384, 65536};
	struct cur c;
	const uint8_t *uuid, *label;
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(pages); i++) {
		if (pages[i] > len || (memcmp(buf + pages[i] - 10, "SWAPSPACE2", 10) &&
				       memcmp(buf + pages[i] - 10, "SWAP-SPACE", 10)))
			continue;
		cur_init(&c, buf, len);
		boot_skip(&c, 1036);
		cur_ref(&c, &uuid, 16);
		cur_ref(&c, &label, 16);
		if (c.err)
			return;
		v->fs = BOOT_FS_SWAP;
		boot_fmt_uuid(uuid, 0, v->uuid);
		label_copy(v->label, sizeof(v->label), label, 16);
		return;
	}
}

static void probe_vfat(struct boot_vol *v, const uint8_t *buf, size_t len)
{
	struct cur c;
	uint16_t bps, rsvd, fatsz16, sig;
	uint8_t spc, nfats, media, bootsig;
	uint32_t serial;
	const uint8_t *label, *p;
	size_t soff;

	if (len < 512 || !memcmp(buf + 3, "NTFS    ", 8) || !memcmp(buf + 3, "EXFAT   ", 8))
		return;
	cur_init(&c, buf, 512);
	boot_skip(&c, 11);
	boot_le16(&c, &bps);
	cur_u8(&c, &spc);
	boot_le16(&c, &rsvd);
	cur_u8(&c, &nfats);
	boot_skip(&c, 4);
	cur_u8(&c, &media);
	boot_le16(&c, &fatsz16);
	boot_skip(&c, MBR_SIG_OFF - 24);
	boot_le16(&c, &sig);
	if (c.err || sig != 0xaa55 || bps < 512 || bps > 4096 || (bps & (bps - 1)) || !spc ||
	    (spc & (spc - 1)) || !rsvd || !nfats || nfats > 4 || (media < 0xf0 && media != 0))
		return;
	/* FAT32 keeps its extended boot record after the 28 more BPB bytes. */
	soff = fatsz16 ? 38 : 66;
	cur_init(&c, buf, 512);
	boot_skip(&c, soff);
	cur_u8(&c, &bootsig);
	boot_le32(&c, &serial);
	cur_ref(&c, &label, 11);
	cur_ref(&c, &p, 8); /* "FAT16   " / "FAT32   ": informational only */
	if (c.err)
		return;
	v->fs = BOOT_FS_VFAT;
	if (bootsig == 0x29) {
		snprintf(v->uuid, sizeof(v->uuid), "%04X-%04X", serial >> 16, serial & 0xffff);
		label_copy(v->label, sizeof(v->label), label, 11);
		if (!strcmp(v->label, "NO NAME"))
			v->label[0] = 0;
	}
}

static void probe(struct boot_vol *v, const uint8_t *buf, size_t len)
{
	const uint8_t *p;
	size_t i;

	probe_ext(v, buf, len);
	if (v->fs)
		return;
	if (len >= 120 && !memcmp(buf, "XFSB", 4)) {
		v->fs = BOOT_FS_XFS;
		boot_fmt_uuid(buf + 32, 0, v->uuid);
		label_copy(v->label, sizeof(v->label), buf + 108, 12);
		return;
	}
	if (len >= 0x10000 + 0x12b + 64 && !memcmp(buf + 0x10040, "_BHRfS_M", 8)) {
		v->fs = BOOT_FS_BTRFS;
		boot_fmt_uuid(buf + 0x10020, 0, v->uuid);
		label_copy(v->label, sizeof(v->label), buf + 0x1012b, 64);
		return;
	}
	if (len >= 208 && !memcmp(buf, "LUKS\xba\xbe", 6)) {
		v->fs = BOOT_FS_LUKS;
		label_copy(v->uuid, sizeof(v->uuid), buf + 168, 40);
		return;
	}
	for (i = 0; i < 4 && (i + 1) * 512 <= len; i++) {
		p = buf + i * 512;
		if (!memcmp(p, "LABELONE", 8) && !memcmp(p + 24, "LVM2 001", 8)) {
			v->fs = BOOT_FS_LVM;
			label_copy(v->uuid, sizeof(v->uuid), p + 32, 32);
			return;
		}
	}
	probe_swap(v, buf, len);
	if (v->fs)
		return;
	probe_vfat(v, buf, len);
}

/* ---- partition tables ---------------------------------------------- */

static void disk_warn(struct boot_disk *d, enum boot_level l, const char *fmt, ...)
    FERRY_ATTR_PRINTF(3, 4);

/* Keeps the first of the worst problems: that one is worth reading. */
static void disk_warn(struct boot_disk *d, enum boot_level l, const char *fmt, ...)
{
	va_list ap;

	if (d->warn[0] && l <= d->warn_level)
		return;
	d->warn_level = l;
	va_start(ap, fmt);
	vsnprintf(d->warn, sizeof(d->warn), fmt, ap);
	va_end(ap);
}

static void disk_fail(struct boot_disk *d, int err, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);

static void disk_fail(struct boot_disk *d, int err, const char *fmt, ...)
{
	char text[BOOT_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	d->err = err;
	memcpy(d->errtext, text, sizeof(text));
}

static struct boot_vol *vol_add(struct boot_ctx *c, size_t di, int number, uint64_t start,
				uint64_t size)
{
	struct boot_disk *d = &c->disk[di];
	struct boot_vol *v;
	size_t n = strlen(d->name);

	if (c->nvol >= BOOT_VOL_MAX) {
		c->vol_dropped++;
		return NULL;
	}
	if (start > d->size || size > d->size - start) {
		disk_warn(d, BOOT_FAIL,
			  "%s: partition %d (%llu+%llu bytes) ends past the disk end (%llu bytes)",
			  d->name, number, (unsigned long long)start, (unsigned long long)size,
			  (unsigned long long)d->size);
		return NULL;
	}
	v = &c->vol[c->nvol++];
	memset(v, 0, sizeof(*v));
	v->disk = di;
	v->number = number;
	v->start = start;
	v->size = size;
	/* d->name is at most 33 bytes (spec_name), so this always fits. */
	if (number == 0)
		boot_fmt(v->name, sizeof(v->name), "%s", d->name);
	else
		boot_fmt(v->name, sizeof(v->name), "%s%s%d", d->name,
			 n && isdigit((unsigned char)d->name[n - 1]) ? "p" : "", number);
	return v;
}

struct gpt_hdr {
	uint64_t my_lba, alt_lba, entry_lba;
	uint32_t nent, entsize, entcrc;
};

/* Reads and checks the GPT header at lba; 0 or -EBADMSG with why. */
static int gpt_header(int fd, uint32_t ss, uint64_t lba, uint64_t disk_size, struct gpt_hdr *h,
		      char *why, size_t whycap)
{
	uint8_t buf[4096];
	struct cur c;
	uint32_t rev, hsize, hcrc, crc;
	int r;

	if ((lba + 1) * ss > disk_size)
		return boot_err(why, whycap, -EBADMSG, "LBA %llu is past the disk end",
				(unsigned long long)lba);
	r = boot_pread_full(fd, buf, ss, lba * ss);
	if (r)
		return boot_err(why, whycap, r, "cannot read LBA %llu: %s", (unsigned long long)lba,
				strerror(-r));
	if (memcmp(buf, "EFI PART", 8))
		return boot_err(why, whycap, -EBADMSG, "no \"EFI PART\" signature at LBA %llu",
				(unsigned long long)lba);
	cur_init(&c, buf, ss);
	boot_skip(&c, 8);
	boot_le32(&c, &rev);
	boot_le32(&c, &hsize);
	boot_le32(&c, &hcrc);
	boot_skip(&c, 4);
	boot_le64(&c, &h->my_lba);
	boot_le64(&c, &h->alt_lba);
	boot_skip(&c, 16 + 16); /* first/last usable LBA, disk GUID */
	boot_le64(&c, &h->entry_lba);
	boot_le32(&c, &h->nent);
	boot_le32(&c, &h->entsize);
	boot_le32(&c, &h->entcrc);
	if (c.err || hsize < 92 || hsize > ss)
		return boot_err(why, whycap, -EBADMSG, "GPT header size %u at LBA %llu is invalid",
				hsize, (unsigned long long)lba);
	memset(buf + 16, 0, 4);
	crc = boot_crc32(0, buf, hsize);
	if (crc != hcrc)
		return boot_err(why, whycap, -EBADMSG, "GPT header CRC mismatch at LBA %llu",
				(unsigned long long)lba);
	if (h->my_lba != lba)
		return boot_err(why, whycap, -EBADMSG, "GPT header at LBA %llu says it is at %llu",
				(unsigned long long)lba, (unsigned long long)h->my_lba);
	if (h->entsize < 128 || h->entsize > 4096 || h->entsize % 8 || !h->nent ||
	    (uint64_t)h->nent * h->entsize > GPT_ENTRIES_CAP)
		return boot_err(why, whycap, -EBADMSG,
				"GPT at LBA %llu: %u entries of %u bytes is not a sane table",
				(unsigned long long)lba, h->nent, h->entsize);
	if (h->entry_lba > disk_size / ss ||
	    (uint64_t)h->nent * h->entsize > disk_size - h->entry_lba * ss)
		return boot_err(why, whycap, -EBADMSG,
				"GPT entries at LBA %llu are past the disk end",
				(unsigned long long)h->entry_lba);
	return 0;
}

static int gpt_entries(struct boot_ctx *c, size_t di, int fd, const struct gpt_hdr *h, char *why,
		       size_t whycap)
{
	struct boot_disk *d = &c->disk[di];
	size_t total = (size_t)h->nent * h->entsize;
	uint8_t *buf = malloc(total);
	const uint8_t *type, *uniq, *name;
	static const uint8_t zero[16];
	static const char esp[] = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
	static const char biosboot[] = "21686148-6449-6e6f-744e-656564454649";
	uint64_t first, last, attr, nsec = d->size / d->ss;
	struct boot_vol *v;
	struct cur cu;
	uint32_t i;
	size_t k;
	int r;

	if (!buf)
		return -ENOMEM;
	r = boot_pread_full(fd, buf, total, h->entry_lba * d->ss);
	if (r) {
		boot_err(why, whycap, r, "cannot read GPT entries: %s", strerror(-r));
		goto out;
	}
	if (boot_crc32(0, buf, total) != h->entcrc) {
		r = boot_err(why, whycap, -EBADMSG, "GPT entry array CRC mismatch (LBA %llu)",
			     (unsigned long long)h->entry_lba);
		goto out;
	}
	for (i = 0; i < h->nent; i++) {
		cur_init(&cu, buf + (size_t)i * h->entsize, h->entsize);
		cur_ref(&cu, &type, 16);
		cur_ref(&cu, &uniq, 16);
		boot_le64(&cu, &first);
		boot_le64(&cu, &last);
		boot_le64(&cu, &attr);
		cur_ref(&cu, &name, 72);
		if (cu.err) {
			r = -EBADMSG;
			goto out;
		}
		if (!memcmp(type, zero, 16))
			continue;
		if (first > last || last >= nsec) {
			disk_warn(
			    d, BOOT_FAIL,
			    "%s: GPT entry %u (LBA %llu-%llu) is outside the disk (%llu sectors)",
			    d->name, i + 1, (unsigned long long)first, (unsigned long long)last,
			    (unsigned long long)nsec);
			continue;
		}
		v = vol_add(c, di, (int)i + 1, first * d->ss, (last - first + 1) * d->ss);
		if (!v)
			continue;
		boot_fmt_uuid(type, 1, v->ptype);
		boot_fmt_uuid(uniq, 1, v->partuuid);
		v->esp = !strcmp(v->ptype, esp);
		v->bios_boot = !strcmp(v->ptype, biosboot);
		/* UTF-16LE name: ASCII kept, the rest shown as '?'. */
		for (k = 0; k < 36 && k + 1 < sizeof(v->partlabel); k++) {
			uint16_t ch = (uint16_t)(name[2 * k] | name[2 * k + 1] << 8);

			if (!ch)
				break;
			v->partlabel[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		}
		v->partlabel[k] = 0;
	}
	r = 0;
out:
	free(buf);
	return r;
}

static int read_gpt(struct boot_ctx *c, size_t di, int fd)
{
	struct boot_disk *d = &c->disk[di];
	struct gpt_hdr h;
	char why[160], why2[160];
	int r;

	r = gpt_header(fd, d->ss, 1, d->size, &h, why, sizeof(why));
	if (!r)
		r = gpt_entries(c, di, fd, &h, why, sizeof(why));
	if (!r)
		return 0;
	/* The primary is bad: the backup at the last LBA may still be good. */
	r = gpt_header(fd, d->ss, d->size / d->ss - 1, d->size, &h, why2, sizeof(why2));
	if (!r)
		r = gpt_entries(c, di, fd, &h, why2, sizeof(why2));
	if (!r) {
		disk_warn(d, BOOT_WARN, "%s: primary GPT is bad (%s); the backup GPT was used",
			  d->name, why);
		return 0;
	}
	disk_fail(d, -EBADMSG, "%s: primary GPT: %s; backup GPT: %s", d->name, why, why2);
	return -EBADMSG;
}

struct mbr_ent {
	uint8_t flag, type;
	uint32_t lba, nsec;
};

static int mbr_parse(const uint8_t *sec, struct mbr_ent e[4], uint32_t *sig)
{
	struct cur c;
	uint16_t magic;
	int i;

	cur_init(&c, sec, 512);
	boot_skip(&c, 440);
	boot_le32(&c, sig);
	boot_skip(&c, 2);
	for (i = 0; i < 4; i++) {
		cur_u8(&c, &e[i].flag);
		boot_skip(&c, 3);
		cur_u8(&c, &e[i].type);
		boot_skip(&c, 3);
		boot_le32(&c, &e[i].lba);
		boot_le32(&c, &e[i].nsec);
	}
	boot_le16(&c, &magic);
	if (c.err || magic != 0xaa55)
		return -EBADMSG;
	for (i = 0; i < 4; i++)
		if (e[i].flag != 0 && e[i].flag != 0x80)
			return -EBADMSG; /* a boot sector, not a partition table */
	return 0;
}

static int is_extended(uint8_t t)
{
	return t == 0x05 || t == 0x0f || t == 0x85;
}

static void mbr_vol(struct boot_ctx *c, size_t di, int number, uint8_t type, uint64_t lba,
		    uint64_t nsec, uint32_t sig)
{
	struct boot_disk *d = &c->disk[di];
	struct boot_vol *v = vol_add(c, di, number, lba * d->ss, nsec * d->ss);

	if (!v)
		return;
	snprintf(v->ptype, sizeof(v->ptype), "0x%02x", type);
	snprintf(v->partuuid, sizeof(v->partuuid), "%08x-%02x", sig, (unsigned)number);
	v->esp = type == 0xef;
}

static void read_ebr_chain(struct boot_ctx *c, size_t di, int fd, uint64_t ext_lba, uint32_t sig)
{
	struct boot_disk *d = &c->disk[di];
	struct mbr_ent e[4];
	uint8_t sec[512];
	uint64_t cur = ext_lba, prev = 0;
	uint32_t dummy;
	int n, number = 5;

	for (n = 0; n < MBR_LOGICAL_MAX; n++) {
		if (cur * d->ss + 512 > d->size ||
		    boot_pread_full(fd, sec, sizeof(sec), cur * d->ss) ||
		    mbr_parse(sec, e, &dummy)) {
			disk_warn(d, BOOT_FAIL, "%s: extended partition chain broken at LBA %llu",
				  d->name, (unsigned long long)cur);
			return;
		}
		if (e[0].type && e[0].nsec)
			mbr_vol(c, di, number++, e[0].type, cur + e[0].lba, e[0].nsec, sig);
		if (!is_extended(e[1].type) || !e[1].lba)
			return;
		prev = cur;
		cur = ext_lba + e[1].lba;
		if (cur <= prev) { /* a chain must move forward, or it may loop */
			disk_warn(d, BOOT_FAIL,
				  "%s: extended partition chain goes backwards at LBA %llu",
				  d->name, (unsigned long long)prev);
			return;
		}
	}
	disk_warn(d, BOOT_WARN, "%s: more than %d logical partitions; the rest were not read",
		  d->name, MBR_LOGICAL_MAX);
}

static int probe_vol(int fd, struct boot_vol *v, uint8_t *buf)
{
	size_t len = v->size < PROBE_LEN ? (size_t)v->size : PROBE_LEN;
	int r;

	memset(buf, 0, PROBE_LEN);
	r = boot_pread_full(fd, buf, len, v->start);
	if (r)
		return r;
	probe(v, buf, len);
	return 0;
}

/* The filesystem at [off, off + size) of fd into o's fs, uuid and label
 * (a volume no partition table lists: an LV). 0, -ENOMEM or -errno. */
int boot_probe_fs(int fd, unsigned long long off, unsigned long long size,
		  struct boot_layout_vol *o)
{
	struct boot_vol v;
	uint8_t *buf = malloc(PROBE_LEN);
	int r;

	if (!buf)
		return -ENOMEM;
	memset(&v, 0, sizeof(v));
	v.start = off;
	v.size = size;
	r = probe_vol(fd, &v, buf);
	free(buf);
	if (r)
		return r;
	snprintf(o->fs, sizeof(o->fs), "%s", v.fs ? boot_fs_name(v.fs) : "");
	snprintf(o->uuid, sizeof(o->uuid), "%s", v.uuid);
	snprintf(o->label, sizeof(o->label), "%s", v.label);
	return 0;
}

static int spec_name(const char *spec, char *name, size_t cap, const char **path)
{
	const char *eq = strchr(spec, '='), *base;
	size_t i, n;

	if (eq && eq > spec && (size_t)(eq - spec) < 32) {
		n = (size_t)(eq - spec);
		for (i = 0; i < n; i++)
			if (!islower((unsigned char)spec[i]) && !isdigit((unsigned char)spec[i]) &&
			    spec[i] != '_' && spec[i] != '-')
				break;
		if (i == n && eq[1]) {
			snprintf(name, cap, "%.*s", (int)n, spec);
			*path = eq + 1;
			return 0;
		}
	}
	*path = spec;
	base = strrchr(spec, '/');
	base = base ? base + 1 : spec;
	if (!*base)
		return -EINVAL;
	snprintf(name, cap, "%.*s", (int)(cap > 6 ? cap - 6 : 1), base);
	return 0;
}

static void scan_one(struct boot_ctx *c, size_t di, const char *spec, uint8_t *buf)
{
	struct boot_disk *d = &c->disk[di];
	struct mbr_ent e[4];
	uint8_t sec[512];
	const char *path;
	struct stat st;
	uint32_t sig = 0;
	size_t first = c->nvol, i;
	int fd = -1, r, ss, has_mbr, has_gpt = 0, k;
	uint64_t sz;

	if (spec_name(spec, d->name, sizeof(d->name), &path) ||
	    boot_fmt(d->path, sizeof(d->path), "%s", path)) {
		disk_fail(d, -EINVAL, "%.64s: not a usable disk name", spec);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		disk_fail(d, -errno, "%s: cannot open %s: %s", d->name, path, strerror(errno));
		goto out;
	}
	d->ss = 512;
	if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &sz) || ioctl(fd, BLKSSZGET, &ss)) {
			disk_fail(d, -errno, "%s: cannot size %s: %s", d->name, path,
				  strerror(errno));
			goto out;
		}
		d->size = sz;
		d->ss = ss >= 512 && ss <= 4096 ? (uint32_t)ss : 512;
	} else {
		disk_fail(d, -ENODEV, "%s: %s is neither a file nor a block device", d->name, path);
		goto out;
	}
	if (d->size < 512) {
		disk_fail(d, -EINVAL, "%s: %llu bytes is too small for a disk", d->name,
			  (unsigned long long)d->size);
		goto out;
	}
	r = boot_pread_full(fd, sec, sizeof(sec), 0);
	if (r) {
		disk_fail(d, r, "%s: cannot read sector 0: %s", d->name, strerror(-r));
		goto out;
	}
	for (k = 0; k < 440; k++)
		if (sec[k])
			d->bios_code = 1;
	has_mbr = !mbr_parse(sec, e, &sig);
	/* An image file carries no sector size: a GPT at 4096 tells it. */
	for (k = 0; k < 2 && !has_gpt; k++) {
		uint8_t hdr[8];
		uint32_t try = k ? 4096 : 512;

		if (S_ISBLK(st.st_mode) && try != d->ss)
			continue;
		if (d->size >= 2ull * try && !boot_pread_full(fd, hdr, 8, try) &&
		    !memcmp(hdr, "EFI PART", 8)) {
			d->ss = try;
			has_gpt = 1;
		}
	}
	if (!has_gpt && has_mbr)
		for (k = 0; k < 4; k++)
			if (e[k].type == 0xee)
				has_gpt = 1; /* protective MBR: a damaged primary GPT */
	if (has_gpt) {
		snprintf(d->table, sizeof(d->table), "gpt");
		read_gpt(c, di, fd);
	} else if (has_mbr && (e[0].type || e[1].type || e[2].type || e[3].type)) {
		snprintf(d->table, sizeof(d->table), "dos");
		for (k = 0; k < 4; k++) {
			if (!e[k].type || !e[k].nsec)
				continue;
			if (is_extended(e[k].type))
				read_ebr_chain(c, di, fd, e[k].lba, sig);
			else
				mbr_vol(c, di, k + 1, e[k].type, e[k].lba, e[k].nsec, sig);
		}
	} else {
		vol_add(c, di, 0, 0, d->size); /* a filesystem on the whole disk */
	}
	for (i = first; i < c->nvol; i++) {
		r = probe_vol(fd, &c->vol[i], buf);
		if (r)
			disk_warn(d, BOOT_FAIL, "%s: cannot read %s: %s", d->name, c->vol[i].name,
				  strerror(-r));
	}
out:
	if (fd >= 0)
		close(fd);
}

int boot_scan_disks(struct boot_ctx *c, const char *const *disks, size_t n)
{
	uint8_t *buf;
	size_t i;

	if (!disks || !n || n > BOOT_DISK_MAX)
		return -EINVAL;
	buf = malloc(PROBE_LEN);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		memset(&c->disk[i], 0, sizeof(c->disk[i]));
		if (disks[i])
			scan_one(c, i, disks[i], buf);
		else
			c->disk[i].err = -EINVAL;
	}
	c->ndisk = n;
	free(buf);
	return 0;
}

/* ---- lookups -------------------------------------------------------- */

/* Undoes udev's \xHH escapes of /dev/disk/by-label names. */
static void unescape_hex(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	unsigned v;

	while (*s && o + 1 < cap) {
		if (s[0] == '\\' && s[1] == 'x' && isxdigit((unsigned char)s[2]) &&
		    isxdigit((unsigned char)s[3]) && sscanf(s + 2, "%2x", &v) == 1) {
			out[o++] = (char)v;
			s += 4;
		} else {
			out[o++] = *s++;
		}
	}
	out[o] = 0;
}

int boot_find_vol(const struct boot_ctx *c, const char *spec, int *vol, int *nmatch)
{
	static const struct {
		const char *key, *dir;
		int field; /* 0 uuid, 1 label, 2 partuuid, 3 partlabel */
	} forms[] = {
	    {"UUID=", "/dev/disk/by-uuid/", 0},
	    {"LABEL=", "/dev/disk/by-label/", 1},
	    {"PARTUUID=", "/dev/disk/by-partuuid/", 2},
	    {"PARTLABEL=", "/dev/disk/by-partlabel/", 3},
	};
	char val[128];
	const char *s = NULL, *have;
	size_t i, n;
	int f = 0, hits = 0;

	*vol = -1;
	if (nmatch)
		*nmatch = 0;
	for (i = 0; i < FERRY_ARRAY_LEN(forms) && !s; i++) {
		if (!strncmp(spec, forms[i].key, strlen(forms[i].key))) {
			s = spec + strlen(forms[i].key);
			f = forms[i].field;
			snprintf(val, sizeof(val), "%s", s);
		} else if (!strncmp(spec, forms[i].dir, strlen(forms[i].dir))) {
			s = spec + strlen(forms[i].dir);
			f = forms[i].field;
			unescape_hex(s, val, sizeof(val));
		}
	}
	if (!s)
		return -EINVAL;
	n = strlen(val);
	if (n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0]) {
		memmove(val, val + 1, n - 2);
		val[n - 2] = 0;
	}
	if (!val[0])
		return -EINVAL;
	for (i = 0; i < c->nvol; i++) {
		const struct boot_vol *v = &c->vol[i];

		have = f == 0 ? v->uuid : f == 1 ? v->label : f == 2 ? v->partuuid : v->partlabel;
		if (!have[0])
			continue;
		/* UUIDs are hex: compare case-blind; labels exactly. */
		if (f == 0 || f == 2 ? strcasecmp(have, val) : strcmp(have, val))
			continue;
		if (f == 0 && (v->fs == BOOT_FS_LVM || v->fs == BOOT_FS_LUKS))
			continue; /* their UUIDs are not mountable filesystems */
		if (!hits++)
			*vol = (int)i;
	}
	if (nmatch)
		*nmatch = hits;
	return hits ? 0 : -ENOENT;
}

int boot_vol_by_name(const struct boot_ctx *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nvol; i++)
		if (!strcmp(c->vol[i].name, name))
			return (int)i;
	return -1;
}
