/*
 * probe.c - what is on a source disk, as libblkid and the tables on it
 * say: the partition table and its partitions, the signature in each
 * partition (or on the bare disk), and where the table's own structures
 * lie (boot area, both GPT headers and arrays, every EBR). The only file
 * that includes blkid.h. It reads through the caller's read-only fd,
 * identifies and decides nothing about what gets sent: map.c does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "blockmap/probe.h"
#include "blockmap/reader.h"
#include "common/common.h"

/*
 * The boot area sent before the first partition: the MBR and whatever a
 * boot loader embedded behind it (GRUB's core.img on DOS disks), but
 * never more than the 1 MiB that partitioning tools leave.
 */
#define BOOT_AREA_MAX (1024u * 1024)
/* A GPT array is 16 KiB by default; a larger one is clipped here. */
#define GPT_ARRAY_MAX (4u * 1024 * 1024)
/* LBA 0..33 and the last 33 LBAs: where GPT lives when a header is bad. */
#define GPT_PRIMARY_LBAS 34u
#define GPT_BACKUP_LBAS	 33u

struct fsid {
	char type[16], uuid[40], label[64];
	int ambivalent;	  /* two signatures: type left empty */
};

struct gpt_hdr {
	uint64_t alt_lba;
	uint64_t array_off, array_len; /* bytes, clipped to the disk */
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Copies a value from the disk: truncated, control characters made '?'. */
static void copy_val(char *dst, size_t cap, const char *src)
{
	size_t i;

	snprintf(dst, cap, "%s", src ? src : "");
	for (i = 0; dst[i]; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

static void add_extent(const struct bm_disk *d, struct bm_layout *lay, uint64_t off, uint64_t len)
{
	if (off >= d->size || len == 0)
		return;
	if (len > d->size - off)
		len = d->size - off;
	if (lay->ntab == BM_MAX_EXTENTS) {
		/* Every caller bounds its count; reaching this is a bug. */
		log_error("%s: more than %u table extents; ignoring one at %" PRIu64, d->path,
			  BM_MAX_EXTENTS, off);
		return;
	}
	lay->tab[lay->ntab].off = off;
	lay->tab[lay->ntab].len = len;
	lay->ntab++;
}

static int probe_err(void)
{
	/* libblkid returns -1 and leaves errno from the failed read or malloc. */
	return errno > 0 ? -errno : -EIO;
}

/*
 * The filesystem (or other signature) at [off, off + size). Nothing found
 * and ambiguous signatures both leave id->type empty: the caller sends
 * such an area whole.
 */
static int probe_fs(int fd, uint64_t off, uint64_t size, struct fsid *id)
{
	blkid_probe pr;
	const char *v;
	int rc, err = 0;

	memset(id, 0, sizeof(*id));
	if (size == 0)
		return 0;
	pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	errno = 0;
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)size) != 0) {
		err = probe_err();
		goto out;
	}
	blkid_probe_enable_partitions(pr, 0);
	blkid_probe_enable_superblocks(pr, 1);
	/*
	 * BADCSUM: a mounted ext4 can show a superblock checksum that is a
	 * moment stale; report it anyway and let ext.c judge it.
	 */
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID |
						  BLKID_SUBLKS_LABEL | BLKID_SUBLKS_BADCSUM);
	errno = 0;
	rc = blkid_do_safeprobe(pr);
	if (rc == -2) {
		id->ambivalent = 1;
		goto out;
	}
	if (rc < 0) {
		err = probe_err();
		goto out;
	}
	if (rc == 1)
		goto out;
	if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0)
		copy_val(id->type, sizeof(id->type), v);
	if (blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0)
		copy_val(id->uuid, sizeof(id->uuid), v);
	if (blkid_probe_lookup_value(pr, "LABEL", &v, NULL) == 0)
		copy_val(id->label, sizeof(id->label), v);
out:
	blkid_free_probe(pr);
	return err;
}

/* 1 and *h filled if a plausible GPT header is at lba, 0 if not, or -errno. */
static int gpt_header_at(const struct bm_disk *d, int fd, uint64_t lba, struct gpt_hdr *h)
{
	uint8_t sec[BM_SECTOR_MAX];
	uint64_t nsec = d->size / d->lsec, elba, len;
	uint32_t hsz, nent, esz;
	int r;

	if (lba >= nsec)
		return 0;
	r = bm_pread(fd, sec, d->lsec, lba * d->lsec);
	if (r)
		return r;
	hsz = le32(sec + 12);
	if (memcmp(sec, "EFI PART", 8) != 0 || hsz < 92 || hsz > d->lsec || le64(sec + 24) != lba)
		return 0;
	elba = le64(sec + 72);
	nent = le32(sec + 80);
	esz = le32(sec + 84);
	if (elba >= nsec || esz < 128 || esz > 4096 || nent == 0)
		return 0;
	len = (uint64_t)nent * esz;
	if (len > GPT_ARRAY_MAX)
		len = GPT_ARRAY_MAX;
	if (len > d->size - elba * d->lsec)
		len = d->size - elba * d->lsec;
	h->alt_lba = le64(sec + 32);
	h->array_off = elba * d->lsec;
	h->array_len = len;
	return 1;
}

/*
 * Both GPT headers and arrays where the headers say. A header that does
 * not parse (blkid may have used the other one) falls back to where GPT
 * puts them on every disk made by the usual tools.
 */
static int gpt_extents(const struct bm_disk *d, int fd, struct bm_layout *lay)
{
	uint64_t nsec = d->size / d->lsec, alt = nsec - 1;
	struct gpt_hdr h;
	int r;

	r = gpt_header_at(d, fd, 1, &h);
	if (r < 0)
		return r;
	if (r) {
		add_extent(d, lay, d->lsec, d->lsec);
		add_extent(d, lay, h.array_off, h.array_len);
		alt = h.alt_lba;
	} else {
		add_extent(d, lay, 0, (uint64_t)GPT_PRIMARY_LBAS * d->lsec);
	}
	r = alt != 1 ? gpt_header_at(d, fd, alt, &h) : 0;
	if (r < 0)
		return r;
	if (r) {
		add_extent(d, lay, alt * d->lsec, d->lsec);
		add_extent(d, lay, h.array_off, h.array_len);
	} else if (nsec > GPT_BACKUP_LBAS) {
		add_extent(d, lay, (nsec - GPT_BACKUP_LBAS) * d->lsec,
			   (uint64_t)GPT_BACKUP_LBAS * d->lsec);
	}
	return 0;
}

static int dos_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/*
 * The EBR chain of a DOS extended partition at [ex, ex + exlen): each
 * EBR's sector is table, the logical partitions are probed like any
 * other. Links are relative to the container's start; a link out of the
 * container, back to a visited EBR, or past BM_MAX_PARTS hops ends the
 * walk (libblkid stops on such chains too).
 */
static int ebr_extents(const struct bm_disk *d, int fd, uint64_t ex, uint64_t exlen,
		       struct bm_layout *lay)
{
	uint8_t sec[BM_SECTOR_MAX];
	uint64_t cur = ex, seen[BM_MAX_PARTS];
	size_t n, j;
	int r, i;

	for (n = 0; n < BM_MAX_PARTS; n++) {
		uint64_t next = 0;

		if (cur >= d->size || d->size - cur < d->lsec)
			break;
		for (j = 0; j < n; j++)
			if (seen[j] == cur)
				return 0;
		seen[n] = cur;
		add_extent(d, lay, cur, d->lsec);
		r = bm_pread(fd, sec, d->lsec, cur);
		if (r)
			return r;
		if (sec[510] != 0x55 || sec[511] != 0xaa)
			break;
		for (i = 0; i < 4; i++) {
			const uint8_t *e = sec + 446 + 16 * i;
			uint64_t rel = le32(e + 8);

			if (dos_is_extended(e[4]) && le32(e + 12) != 0 && rel != 0) {
				next = ex + rel * d->lsec;
				break;
			}
		}
		if (next == 0 || next >= ex + exlen)
			break;
		cur = next;
	}
	return 0;
}

/* Whether par comes from the disk's own table (nested BSD/Solaris labels do not). */
static int part_is_ours(blkid_partition par, blkid_parttable root)
{
	return blkid_partition_get_table(par) == root;
}

static int read_parts(struct bm_disk *d, int fd, blkid_partlist ls, blkid_parttable root,
		      struct bm_layout *lay, char *err, size_t errcap)
{
	int dos = strcmp(d->table, "dos") == 0;
	int i, np = blkid_partlist_numof_partitions(ls);
	uint64_t first = d->size;
	char sz[16], psz[16];

	for (i = 0; i < np; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		blkid_loff_t s, n;
		struct bm_part *p;
		struct fsid id;
		int r;

		if (!par || !part_is_ours(par, root))
			continue;
		if (d->nparts == BM_MAX_PARTS) {
			log_error("%s: %s: more than %d partitions; sending the whole disk",
				  d->path, fmt_bytes(d->size, sz, sizeof(sz)), BM_MAX_PARTS);
			d->nparts = 0;
			return -E2BIG;
		}
		s = blkid_partition_get_start(par);
		n = blkid_partition_get_size(par);
		p = &d->parts[d->nparts];
		memset(p, 0, sizeof(*p));
		p->number = blkid_partition_get_partno(par);
		p->method = BM_WHOLE;
		/* libblkid counts in 512-byte units whatever the sector size. */
		if (s < 0 || n < 0 || (uint64_t)s > UINT64_MAX / 512 ||
		    (uint64_t)n > UINT64_MAX / 512)
			s = n = 0;
		p->start = (uint64_t)s * 512;
		p->size = (uint64_t)n * 512;
		if (p->start >= d->size) {
			log_error("%s: %s: partition %d starts at %" PRIu64
				  ", past the end of the disk; ignoring its contents",
				  d->path, fmt_bytes(d->size, sz, sizeof(sz)), p->number, p->start);
			p->start = d->size;
			p->size = 0;
		} else if (p->size > d->size - p->start) {
			log_error("%s: %s: partition %d (%s at %" PRIu64
				  ") runs past the end of the disk; clipped",
				  d->path, fmt_bytes(d->size, sz, sizeof(sz)), p->number,
				  fmt_bytes(p->size, psz, sizeof(psz)), p->start);
			p->size = d->size - p->start;
		}
		copy_val(p->partuuid, sizeof(p->partuuid), blkid_partition_get_uuid(par));
		if (dos)
			snprintf(p->parttype, sizeof(p->parttype), "0x%x",
				 (unsigned)blkid_partition_get_type(par) & 0xff);
		else
			copy_val(p->parttype, sizeof(p->parttype),
				 blkid_partition_get_type_string(par));
		if (p->size && p->start < first)
			first = p->start;
		d->nparts++;
		if (dos && blkid_partition_is_extended(par)) {
			p->method = BM_TABLE;
			r = ebr_extents(d, fd, p->start, p->size, lay);
		} else {
			r = probe_fs(fd, p->start, p->size, &id);
			if (r == 0 && id.ambivalent)
				snprintf(p->note, sizeof(p->note), "two signatures");
			if (r == 0 && id.ambivalent)
				log_info("%s: %s: partition %d holds more than one signature; "
					 "sending it whole",
					 d->path, fmt_bytes(d->size, sz, sizeof(sz)), p->number);
			if (r == 0) {
				memcpy(p->fstype, id.type, sizeof(p->fstype));
				memcpy(p->uuid, id.uuid, sizeof(p->uuid));
				memcpy(p->label, id.label, sizeof(p->label));
			}
		}
		if (r) {
			bm_errf(d, err, errcap, "partition %d could not be read: %s", p->number,
				strerror(-r));
			return r;
		}
	}
	/* The MBR (and a protective MBR) always; the boot gap up to 1 MiB. */
	if (first > BOOT_AREA_MAX)
		first = BOOT_AREA_MAX;
	add_extent(d, lay, 0, first > d->lsec ? first : d->lsec);
	return 0;
}

int bm_probe_layout(int fd, struct bm_disk *d, struct bm_layout *lay, char *err, size_t errcap)
{
	blkid_probe pr = NULL;
	blkid_partlist ls;
	blkid_parttable root;
	struct fsid id;
	char sz[16];
	int rc, r = 0;

	memset(lay, 0, sizeof(*lay));
	if (d->lsec < 512 || d->lsec > BM_SECTOR_MAX || (d->lsec & (d->lsec - 1))) {
		bm_errf(d, err, errcap, "sector size %u is not handled", d->lsec);
		return -EINVAL;
	}

	/* A signature on the bare disk: a filesystem without a table, or one beside it. */
	r = probe_fs(fd, 0, d->size, &id);
	if (r) {
		bm_errf(d, err, errcap, "probing failed: %s", strerror(-r));
		return r;
	}
	if (id.ambivalent) {
		log_info("%s: %s: more than one signature on the disk; sending it whole", d->path,
			 fmt_bytes(d->size, sz, sizeof(sz)));
		lay->whole = 1;
		snprintf(d->note, sizeof(d->note), "two signatures");
	}
	memcpy(d->fstype, id.type, sizeof(d->fstype));
	memcpy(d->uuid, id.uuid, sizeof(d->uuid));
	memcpy(d->label, id.label, sizeof(d->label));

	pr = blkid_new_probe();
	if (!pr) {
		r = -ENOMEM;
		bm_errf(d, err, errcap, "probing failed: %s", strerror(-r));
		goto out;
	}
	errno = 0;
	if (blkid_probe_set_device(pr, fd, 0, 0) != 0) {
		r = probe_err();
		bm_errf(d, err, errcap, "probing failed: %s", strerror(-r));
		goto out;
	}
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	errno = 0;
	rc = blkid_do_safeprobe(pr);
	if (rc == -2) {
		log_info("%s: %s: more than one partition table signature; sending the whole "
			 "disk",
			 d->path, fmt_bytes(d->size, sz, sizeof(sz)));
		lay->whole = 1;
		goto out;
	}
	if (rc < 0) {
		r = probe_err();
		bm_errf(d, err, errcap, "reading the partition table failed: %s", strerror(-r));
		goto out;
	}
	if (rc == 1)
		goto out;
	errno = 0;
	ls = blkid_probe_get_partitions(pr);
	root = ls ? blkid_partlist_get_table(ls) : NULL;
	if (!root) {
		if (errno == ENOMEM || errno == EIO) {
			r = -errno;
			bm_errf(d, err, errcap, "reading the partition table failed: %s",
				strerror(-r));
		}
		goto out;
	}
	copy_val(d->table, sizeof(d->table), blkid_parttable_get_type(root));
	copy_val(d->ptuuid, sizeof(d->ptuuid), blkid_parttable_get_id(root));
	if (strcmp(d->table, "gpt") != 0 && strcmp(d->table, "dos") != 0) {
		/* PMBR alone, or a table ferry does not map (sun, bsd, atari...). */
		log_info("%s: %s: partition table \"%s\" is not mapped; sending the whole disk",
			 d->path, fmt_bytes(d->size, sz, sizeof(sz)), d->table);
		lay->whole = 1;
		goto out;
	}
	r = read_parts(d, fd, ls, root, lay, err, errcap);
	if (r == -E2BIG) {
		memset(lay, 0, sizeof(*lay));
		lay->whole = 1;
		r = 0;
		goto out;
	}
	if (r)
		goto out;
	if (strcmp(d->table, "gpt") == 0) {
		r = gpt_extents(d, fd, lay);
		if (r)
			bm_errf(d, err, errcap, "reading the GPT headers failed: %s", strerror(-r));
	}
out:
	if (pr)
		blkid_free_probe(pr);
	return r;
}

int bm_probe_vol(const struct bm_vol *v, char *type, size_t cap)
{
	struct fsid id;
	int r;

	type[0] = 0;
	/*
	 * The first segment: where every filesystem's superblock lives. A
	 * signature kept at the end of a volume in pieces (md 0.90) goes
	 * unseen, and the volume is then sent whole.
	 */
	if (v->nseg == 0)
		return 0;
	r = probe_fs(v->fd, v->seg[0].disk_off, v->seg[0].len, &id);
	if (r == 0 && !id.ambivalent)
		snprintf(type, cap, "%s", id.type);
	return r;
}
