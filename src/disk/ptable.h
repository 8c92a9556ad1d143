/*
 * ptable.h - partition tables in the first region of a disk: telling MBR
 * from GPT, moving the GPT backup to the real end of a larger disk, and
 * growing the last partition. Pure functions on buffers the caller owns;
 * nothing here reads or writes a disk or allocates.
 *
 * Every function returns 0 or a negative errno. On failure err gets one
 * sentence quoting the offending value (the caller prefixes the disk
 * name) and no caller buffer has been changed.
 */
#ifndef FERRY_PTABLE_H
#define FERRY_PTABLE_H

#include <stddef.h>
#include <stdint.h>

/* What the destination passes as `first`: the first MiB, written last. */
#define PTABLE_REGION_LEN (1024u * 1024u)
/* Grown partitions end on this boundary (bytes), as sfdisk makes them. */
#define PTABLE_ALIGN (1024u * 1024u)
/* Room for err; longer sentences are cut. */
#define PTABLE_ERR_LEN 192

/*
 * Largest GPT entry array accepted (entries x entry size). UEFI asks for
 * at least 16 KiB; every tool writes 128 x 128 bytes = 16 KiB.
 */
#define GPT_ARRAY_MAX (256u * 1024u)
/* The backup region: the entry array (whole sectors) and one header sector. */
#define GPT_BACKUP_MAX (GPT_ARRAY_MAX + 4096u)

enum ptable_kind {
	PTABLE_NONE = 0,
	PTABLE_MBR = 1,
	PTABLE_GPT = 2,
};

/*
 * Tells what partition table first[0..len) starts with, for logical
 * sectors of lsec bytes (512, 1024, 2048 or 4096):
 *  - PTABLE_GPT: a protective MBR (an 0xEE entry; hybrids count) and a
 *    valid GPT header at LBA 1: signature, revision 1.x, header CRC,
 *    entry-array CRC, sane LBAs, used entries inside the usable area;
 *  - PTABLE_MBR: 0x55AA, boot flags 0x00/0x80, at least one partition;
 *  - PTABLE_NONE: anything else (a bare filesystem, zeros).
 * A protective MBR whose GPT does not check out is an error, not NONE
 * (-EBADMSG, or -EINVAL naming both sizes when the GPT was made for the
 * other sector size). The array must lie inside first[0..len).
 */
int ptable_detect(const uint8_t *first, size_t len, uint32_t lsec, enum ptable_kind *kind,
		  char *err, size_t errcap);

/* gpt_relocate flags */
#define GPT_GROW_LAST 1u

struct gpt_reloc {
	/* Write backup[0..backup_len) at this byte offset of the disk. */
	uint64_t backup_off;
	size_t backup_len;
	uint64_t old_alt_lba; /* where the copied, now stale, backup header sits */
	uint64_t last_lba;    /* new AlternateLBA: the disk's last sector */
	uint64_t last_usable; /* new LastUsableLBA */
	int pmbr_updated;     /* 0: hybrid/odd protective MBR left untouched */
	/* GPT_GROW_LAST: the entry (1-based, = Linux partition number) that
	 * grew, 0 if it already reached the aligned end. Sizes in bytes. */
	uint32_t grown;
	uint64_t grown_start_lba;
	uint64_t grown_old_bytes, grown_new_bytes;
};

/*
 * For a GPT disk copied onto a disk of disk_bytes (>= the source):
 * rewrites, inside first[0..len) (at least the protective MBR, the
 * primary header and its entry array; pass the first MiB), the protective
 * MBR's size (min(sectors - 1, 0xFFFFFFFF), only if it covered the whole
 * old disk), the header's AlternateLBA (last LBA) and LastUsableLBA (last
 * LBA - array sectors - 1) and both CRCs; fills backup[0..backup_cap)
 * (GPT_BACKUP_MAX is always enough) with the backup entry array followed
 * by the backup header, and says where it goes.
 *
 * With GPT_GROW_LAST the entry with the highest EndingLBA is extended so
 * that it ends on a PTABLE_ALIGN boundary at or below the new
 * LastUsableLBA (never shrunk). Refuses a disk too small for the old
 * LastUsableLBA (-ENOSPC), an invalid header or array (-EBADMSG), sizes
 * out of bounds (-E2BIG), a short backup buffer (-ENOBUFS).
 *
 * Write order: backup region, flush, then first[0..len) last. If the
 * backup region falls inside first[0..len) (a disk under ~1 MiB) it is
 * copied there too, so that order still leaves it intact.
 */
int gpt_relocate(uint8_t *first, size_t len, uint32_t lsec, uint64_t disk_bytes, unsigned flags,
		 uint8_t *backup, size_t backup_cap, struct gpt_reloc *r, char *err, size_t errcap);

struct mbr_grow {
	uint32_t grown; /* 1..4, 0 if it already reached the aligned end */
	uint64_t start_lba;
	uint64_t old_bytes, new_bytes;
};

/*
 * For an MBR disk copied onto a disk of disk_bytes: extends the primary
 * partition that ends last to the end of the disk, aligned down to
 * PTABLE_ALIGN, in first[0..512). Refuses (with a sentence) when that
 * partition is an extended one (its last logical would need growing), a
 * disk past 2^32 sectors (an MBR cannot address it: use GPT), a disk
 * smaller than the partitions, a protective MBR (use gpt_relocate).
 * End CHS is rewritten for 255 heads x 63 sectors, or 1023/254/63.
 */
int mbr_grow_last(uint8_t *first, size_t len, uint32_t lsec, uint64_t disk_bytes,
		  struct mbr_grow *g, char *err, size_t errcap);

/* CRC-32 (IEEE 802.3, reflected, as GPT uses); chain with crc = previous. */
uint32_t gpt_crc32(uint32_t crc, const void *p, size_t n);

#endif
