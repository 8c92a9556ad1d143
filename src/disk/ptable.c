/*
 * ptable.c - reads and rewrites the partition tables at the start of a
 * disk image held in memory: MBR/GPT detection, the GPT backup moved to
 * the end of a larger disk, the last partition grown. Every read of the
 * table goes through a bounded cursor; every check runs before the first
 * byte of a caller's buffer is changed. No I/O, no allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "disk/ptable.h"

#define MBR_LEN		    512
#define MBR_PART_OFF	    446
#define MBR_PART_LEN	    16
#define MBR_SIG_OFF	    510
#define MBR_TYPE_PROTECTIVE 0xee
#define MBR_LBA_LIMIT	    0x100000000ull /* 32-bit LBAs: 2 TiB at 512 bytes */

#define GPT_HDR_MIN   92
#define GPT_ENTRY_MIN 128
#define GPT_ENTRY_MAX 4096
/* Header field offsets (UEFI 2.10, 5.3.2). */
#define GPT_OFF_HCRC	  16
#define GPT_OFF_MY	  24
#define GPT_OFF_ALT	  32
#define GPT_OFF_LAST	  48
#define GPT_OFF_ENTRY_LBA 72
#define GPT_OFF_ACRC	  88
/* Entry field offsets (5.3.3). */
#define GPT_ENT_END 40

static const uint8_t gpt_sig[8] = {'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'};

/* The fields of a GPT header this file uses, after gpt_parse checked them. */
struct gpt_hdr {
	uint32_t hsize;
	uint64_t alt, first_usable, last_usable, entry_lba;
	uint32_t count, esize;
	uint64_t array_bytes, array_secs;
	/* The used entry that ends last; count if none. */
	uint32_t last_idx;
	uint64_t last_start, last_end;
	uint32_t tie_idx; /* another entry ending at last_end; count if none */
};

struct mbr_part {
	uint8_t status, type;
	uint32_t start, size;
};

/* CRC-32, reflected polynomial 0xEDB88320, four bits at a time. */
static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t gpt_crc32(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	crc = ~crc;
	while (n--) {
		crc ^= *b++;
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return ~crc;
}

static int fail(char *err, size_t cap, int code, const char *fmt, ...) FERRY_ATTR_PRINTF(4, 5);

static int fail(char *err, size_t cap, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && cap) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* GPT is little-endian; the common cursor reads big-endian fields. */
static uint32_t get_le32(struct cur *c)
{
	uint8_t b[4];

	cur_bytes(c, b, sizeof(b));
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_le64(struct cur *c)
{
	uint64_t lo = get_le32(c);

	return lo | (uint64_t)get_le32(c) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static int lsec_ok(uint32_t lsec)
{
	return lsec >= 512 && lsec <= 4096 && (lsec & (lsec - 1)) == 0;
}

static int check_lsec(uint32_t lsec, char *err, size_t errcap)
{
	if (!lsec_ok(lsec))
		return fail(err, errcap, -EINVAL, "sector size %u is not 512, 1024, 2048 or 4096",
			    lsec);
	return 0;
}

/* Header CRC over hsize bytes with the CRC field read as zero. */
static uint32_t hdr_crc(const uint8_t *h, uint32_t hsize)
{
	static const uint8_t zero[4];
	uint32_t crc;

	crc = gpt_crc32(0, h, GPT_OFF_HCRC);
	crc = gpt_crc32(crc, zero, sizeof(zero));
	return gpt_crc32(crc, h + GPT_OFF_HCRC + 4, hsize - GPT_OFF_HCRC - 4);
}

static int guid_is_zero(const uint8_t *g)
{
	size_t i;

	for (i = 0; i < 16; i++)
		if (g[i])
			return 0;
	return 1;
}

/* Checks the header at LBA 1 and its entry array, all inside first[0..len). */
static int gpt_parse(const uint8_t *first, size_t len, uint32_t lsec, struct gpt_hdr *h, char *err,
		     size_t errcap)
{
	struct cur c, e;
	const uint8_t *sig, *hp, *arr, *ent;
	uint32_t rev, hcrc, acrc, crc, i;
	uint64_t my, start, end;

	memset(h, 0, sizeof(*h));
	if (len / 2 < lsec)
		return fail(err, errcap, -EINVAL, "%zu bytes given; a GPT header at LBA 1 needs %u",
			    len, 2 * lsec);
	hp = first + lsec;
	cur_init(&c, hp, lsec);
	cur_ref(&c, &sig, sizeof(gpt_sig));
	rev = get_le32(&c);
	h->hsize = get_le32(&c);
	hcrc = get_le32(&c);
	(void)get_le32(&c); /* reserved */
	my = get_le64(&c);
	h->alt = get_le64(&c);
	h->first_usable = get_le64(&c);
	h->last_usable = get_le64(&c);
	cur_ref(&c, &ent, 16); /* disk GUID */
	h->entry_lba = get_le64(&c);
	h->count = get_le32(&c);
	h->esize = get_le32(&c);
	acrc = get_le32(&c);
	if (c.err)
		return fail(err, errcap, c.err, "GPT header cut short");
	if (memcmp(sig, gpt_sig, sizeof(gpt_sig)) != 0)
		return fail(err, errcap, -EBADMSG, "no \"EFI PART\" signature at LBA 1 (byte %u)",
			    lsec);
	if (rev >> 16 != 1)
		return fail(err, errcap, -EBADMSG, "GPT revision %u.%u is not 1.x", rev >> 16,
			    rev & 0xffff);
	if (h->hsize < GPT_HDR_MIN || h->hsize > lsec)
		return fail(err, errcap, -EBADMSG, "GPT header size %u is outside %u..%u", h->hsize,
			    GPT_HDR_MIN, lsec);
	crc = hdr_crc(hp, h->hsize);
	if (crc != hcrc)
		return fail(err, errcap, -EBADMSG,
			    "GPT header CRC is 0x%08x, the header says 0x%08x", crc, hcrc);
	if (my != 1)
		return fail(err, errcap, -EBADMSG, "primary GPT header at LBA 1 says MyLBA %llu",
			    (unsigned long long)my);
	if (h->esize < GPT_ENTRY_MIN || h->esize > GPT_ENTRY_MAX || (h->esize & (h->esize - 1)))
		return fail(err, errcap, -E2BIG, "GPT entry size %u is not 128 x 2^n up to %u",
			    h->esize, GPT_ENTRY_MAX);
	h->array_bytes = (uint64_t)h->count * h->esize;
	if (h->count == 0 || h->array_bytes > GPT_ARRAY_MAX)
		return fail(err, errcap, -E2BIG,
			    "GPT entry array of %u x %u bytes is outside 1..%u bytes", h->count,
			    h->esize, GPT_ARRAY_MAX);
	h->array_secs = (h->array_bytes + lsec - 1) / lsec;
	if (h->entry_lba < 2 || h->entry_lba > len / lsec ||
	    h->array_secs > len / lsec - h->entry_lba)
		return fail(
		    err, errcap, -EBADMSG,
		    "GPT entry array at LBA %llu (%llu sectors) is not inside LBA 2..%zu given",
		    (unsigned long long)h->entry_lba, (unsigned long long)h->array_secs,
		    len / lsec - 1);
	if (h->first_usable < h->entry_lba + h->array_secs || h->last_usable < h->first_usable)
		return fail(
		    err, errcap, -EBADMSG,
		    "GPT usable LBAs %llu..%llu overlap the entry array at %llu..%llu or are empty",
		    (unsigned long long)h->first_usable, (unsigned long long)h->last_usable,
		    (unsigned long long)h->entry_lba,
		    (unsigned long long)(h->entry_lba + h->array_secs - 1));
	if (h->alt <= h->last_usable)
		return fail(err, errcap, -EBADMSG,
			    "GPT backup header LBA %llu is inside the usable LBAs ..%llu",
			    (unsigned long long)h->alt, (unsigned long long)h->last_usable);

	/* entry_lba * lsec + array_bytes <= len was checked above. */
	cur_init(&c, first + h->entry_lba * lsec, (size_t)h->array_bytes);
	cur_ref(&c, &arr, (size_t)h->array_bytes);
	if (c.err)
		return fail(err, errcap, c.err, "GPT entry array cut short");
	crc = gpt_crc32(0, arr, (size_t)h->array_bytes);
	if (crc != acrc)
		return fail(err, errcap, -EBADMSG,
			    "GPT entry array CRC is 0x%08x, the header says 0x%08x", crc, acrc);

	h->last_idx = h->tie_idx = h->count;
	cur_init(&c, arr, (size_t)h->array_bytes);
	for (i = 0; i < h->count; i++) {
		cur_ref(&c, &ent, h->esize);
		if (c.err)
			return fail(err, errcap, c.err, "GPT entry %u cut short", i + 1);
		if (guid_is_zero(ent))
			continue;
		cur_init(&e, ent + 32, 16);
		start = get_le64(&e);
		end = get_le64(&e);
		if (start > end || start < h->first_usable || end > h->last_usable)
			return fail(
			    err, errcap, -EBADMSG,
			    "GPT partition %u at LBA %llu..%llu is outside the usable %llu..%llu",
			    i + 1, (unsigned long long)start, (unsigned long long)end,
			    (unsigned long long)h->first_usable,
			    (unsigned long long)h->last_usable);
		if (h->last_idx == h->count || end > h->last_end) {
			h->last_idx = i;
			h->last_start = start;
			h->last_end = end;
			h->tie_idx = h->count;
		} else if (end == h->last_end) {
			h->tie_idx = i;
		}
	}
	return 0;
}

static void mbr_read(const uint8_t *first, struct mbr_part p[4])
{
	struct cur c;
	const uint8_t *chs;
	int i;

	/* The caller checked len >= MBR_LEN. */
	cur_init(&c, first + MBR_PART_OFF, 4 * MBR_PART_LEN);
	for (i = 0; i < 4; i++) {
		cur_u8(&c, &p[i].status);
		cur_ref(&c, &chs, 3);
		cur_u8(&c, &p[i].type);
		cur_ref(&c, &chs, 3);
		p[i].start = get_le32(&c);
		p[i].size = get_le32(&c);
	}
}

static int mbr_has_sig(const uint8_t *first)
{
	return first[MBR_SIG_OFF] == 0x55 && first[MBR_SIG_OFF + 1] == 0xaa;
}

/* Index of the first 0xEE entry, or -1. */
static int mbr_protective(const struct mbr_part p[4])
{
	int i;

	for (i = 0; i < 4; i++)
		if (p[i].type == MBR_TYPE_PROTECTIVE)
			return i;
	return -1;
}

/* Index of an entry whose boot flag is neither 0x00 nor 0x80, or -1. */
static int mbr_bad_flag(const struct mbr_part p[4])
{
	int i;

	for (i = 0; i < 4; i++)
		if (p[i].status != 0 && p[i].status != 0x80)
			return i;
	return -1;
}

static int mbr_used(const struct mbr_part *p)
{
	return p->type != 0 && p->size != 0;
}

int ptable_detect(const uint8_t *first, size_t len, uint32_t lsec, enum ptable_kind *kind,
		  char *err, size_t errcap)
{
	struct mbr_part p[4];
	struct gpt_hdr h;
	char other_err[PTABLE_ERR_LEN];
	uint32_t other;
	int i, r;

	*kind = PTABLE_NONE;
	if ((r = check_lsec(lsec, err, errcap)))
		return r;
	if (len < MBR_LEN)
		return fail(err, errcap, -EINVAL, "%zu bytes given; an MBR needs %u", len, MBR_LEN);
	if (!mbr_has_sig(first))
		return 0;
	mbr_read(first, p);
	if (mbr_protective(p) >= 0) {
		r = gpt_parse(first, len, lsec, &h, err, errcap);
		if (r == 0) {
			*kind = PTABLE_GPT;
			return 0;
		}
		/* A table made for the other common sector size says why. */
		other = lsec == 512 ? 4096 : 512;
		if (gpt_parse(first, len, other, &h, other_err, sizeof(other_err)) == 0)
			return fail(
			    err, errcap, -EINVAL,
			    "the GPT was made for %u-byte sectors; this disk has %u-byte sectors",
			    other, lsec);
		return r;
	}
	if (mbr_bad_flag(p) >= 0)
		return 0;
	for (i = 0; i < 4; i++) {
		if (mbr_used(&p[i])) {
			*kind = PTABLE_MBR;
			break;
		}
	}
	return 0;
}

/* (lba + extra) * lsec, saturated: the values come from the disk. */
static uint64_t need_bytes(uint64_t lba, uint64_t extra, uint32_t lsec)
{
	if (lba > UINT64_MAX - extra || lba + extra > UINT64_MAX / lsec)
		return UINT64_MAX;
	return (lba + extra) * lsec;
}

/* Exclusive end of a partition grown to `limit` sectors, 0 if none fits. */
static uint64_t align_end(uint64_t limit, uint32_t lsec)
{
	uint64_t grain = PTABLE_ALIGN / lsec;

	return limit / grain * grain;
}

int gpt_relocate(uint8_t *first, size_t len, uint32_t lsec, uint64_t disk_bytes, unsigned flags,
		 uint8_t *backup, size_t backup_cap, struct gpt_reloc *r, char *err, size_t errcap)
{
	struct mbr_part p[4];
	struct gpt_hdr h;
	char b1[16], b2[16];
	uint8_t *hp, *arr, *bh;
	uint64_t sectors, new_last, new_usable, new_arr_lba, end_excl, grow_end;
	uint64_t old_pmbr, new_pmbr;
	size_t arr_len;
	uint32_t crc;
	int pm, ret;

	memset(r, 0, sizeof(*r));
	if ((ret = check_lsec(lsec, err, errcap)))
		return ret;
	if (len < MBR_LEN)
		return fail(err, errcap, -EINVAL, "%zu bytes given; an MBR needs %u", len, MBR_LEN);
	mbr_read(first, p);
	if (!mbr_has_sig(first) || (pm = mbr_protective(p)) < 0)
		return fail(err, errcap, -EBADMSG,
			    "no protective MBR (0x55AA and a type 0xEE entry) before the GPT");
	if ((ret = gpt_parse(first, len, lsec, &h, err, errcap)))
		return ret;

	sectors = disk_bytes / lsec;
	/* Backup header and array after the old last usable LBA. */
	if (sectors < h.array_secs + 2 || sectors - h.array_secs - 2 < h.last_usable)
		return fail(
		    err, errcap, -ENOSPC,
		    "the disk holds %s (%llu sectors); the GPT's last usable LBA %llu and its "
		    "backup need %s",
		    fmt_bytes(disk_bytes, b1, sizeof(b1)), (unsigned long long)sectors,
		    (unsigned long long)h.last_usable,
		    fmt_bytes(need_bytes(h.last_usable, h.array_secs + 2, lsec), b2, sizeof(b2)));
	new_last = sectors - 1;
	new_arr_lba = new_last - h.array_secs;
	new_usable = new_arr_lba - 1;
	arr_len = (size_t)(h.array_secs * lsec);
	r->backup_len = arr_len + lsec;
	if (!backup || backup_cap < r->backup_len)
		return fail(err, errcap, -ENOBUFS,
			    "the backup buffer holds %zu bytes; the GPT backup needs %zu",
			    backup ? backup_cap : 0, r->backup_len);

	grow_end = h.last_end;
	if (flags & GPT_GROW_LAST) {
		if (h.last_idx == h.count)
			return fail(err, errcap, -ENOENT, "the GPT holds no partition to grow");
		if (h.tie_idx != h.count)
			return fail(err, errcap, -EBADMSG,
				    "GPT partitions %u and %u both end at LBA %llu", h.last_idx + 1,
				    h.tie_idx + 1, (unsigned long long)h.last_end);
		end_excl = align_end(new_usable + 1, lsec);
		if (end_excl > h.last_end + 1)
			grow_end = end_excl - 1;
	}

	/* Every check passed; from here on the buffers change. */
	hp = first + lsec;
	arr = first + h.entry_lba * lsec;
	if (grow_end != h.last_end) {
		put_le64(arr + (size_t)h.last_idx * h.esize + GPT_ENT_END, grow_end);
		r->grown = h.last_idx + 1;
		r->grown_start_lba = h.last_start;
		r->grown_old_bytes = (h.last_end - h.last_start + 1) * lsec;
		r->grown_new_bytes = (grow_end - h.last_start + 1) * lsec;
	}
	crc = gpt_crc32(0, arr, (size_t)h.array_bytes);
	put_le32(hp + GPT_OFF_ACRC, crc);
	put_le64(hp + GPT_OFF_ALT, new_last);
	put_le64(hp + GPT_OFF_LAST, new_usable);
	put_le32(hp + GPT_OFF_HCRC, hdr_crc(hp, h.hsize));

	/*
	 * The protective entry covers LBA 1 to the end, capped at 32 bits.
	 * One that covered less of the old disk (a hybrid MBR) is kept.
	 */
	old_pmbr = h.alt < 0xffffffffull ? h.alt : 0xffffffffull;
	new_pmbr = new_last < 0xffffffffull ? new_last : 0xffffffffull;
	if (p[pm].start == 1 && p[pm].size == old_pmbr) {
		put_le32(first + MBR_PART_OFF + (size_t)pm * MBR_PART_LEN + 12, (uint32_t)new_pmbr);
		r->pmbr_updated = 1;
	}

	memset(backup, 0, r->backup_len);
	memcpy(backup, arr, arr_len);
	bh = backup + arr_len;
	memcpy(bh, hp, h.hsize);
	put_le64(bh + GPT_OFF_MY, new_last);
	put_le64(bh + GPT_OFF_ALT, 1);
	put_le64(bh + GPT_OFF_ENTRY_LBA, new_arr_lba);
	put_le32(bh + GPT_OFF_HCRC, hdr_crc(bh, h.hsize));

	r->backup_off = new_arr_lba * lsec;
	r->old_alt_lba = h.alt;
	r->last_lba = new_last;
	r->last_usable = new_usable;
	/* A tiny disk: the first region, written last, must carry it too. */
	if (r->backup_off < len) {
		size_t n = len - (size_t)r->backup_off;

		memcpy(first + r->backup_off, backup, n < r->backup_len ? n : r->backup_len);
	}
	return 0;
}

/* End CHS for 255 heads x 63 sectors; 1023/254/63 past 1024 cylinders. */
static void mbr_chs(uint8_t chs[3], uint64_t lba)
{
	uint64_t cyl = lba / (255 * 63);
	unsigned head = (unsigned)(lba / 63 % 255);
	unsigned sec = (unsigned)(lba % 63) + 1;

	if (cyl > 1023) {
		cyl = 1023;
		head = 254;
		sec = 63;
	}
	chs[0] = (uint8_t)head;
	chs[1] = (uint8_t)(sec | (cyl >> 8) << 6);
	chs[2] = (uint8_t)cyl;
}

static int mbr_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

int mbr_grow_last(uint8_t *first, size_t len, uint32_t lsec, uint64_t disk_bytes,
		  struct mbr_grow *g, char *err, size_t errcap)
{
	struct mbr_part p[4];
	char b1[16], b2[16];
	uint64_t sectors, end, last_end = 0, end_excl;
	uint8_t *ent;
	int i, bad, last = -1, tie = -1, ret;

	memset(g, 0, sizeof(*g));
	if ((ret = check_lsec(lsec, err, errcap)))
		return ret;
	if (len < MBR_LEN)
		return fail(err, errcap, -EINVAL, "%zu bytes given; an MBR needs %u", len, MBR_LEN);
	if (!mbr_has_sig(first))
		return fail(err, errcap, -EBADMSG,
			    "no MBR signature: bytes 510-511 are 0x%02x%02x, not 0x55AA",
			    first[MBR_SIG_OFF], first[MBR_SIG_OFF + 1]);
	mbr_read(first, p);
	if (mbr_protective(p) >= 0)
		return fail(err, errcap, -EINVAL,
			    "this MBR protects a GPT (type 0xEE); grow the GPT instead");
	if ((bad = mbr_bad_flag(p)) >= 0)
		return fail(err, errcap, -EBADMSG,
			    "MBR entry %d has boot flag 0x%02x, not 0x00 or 0x80", bad + 1,
			    p[bad].status);
	for (i = 0; i < 4; i++) {
		if (!mbr_used(&p[i]))
			continue;
		end = (uint64_t)p[i].start + p[i].size;
		if (last < 0 || end > last_end) {
			last = i;
			last_end = end;
			tie = -1;
		} else if (end == last_end) {
			tie = i;
		}
	}
	if (last < 0)
		return fail(err, errcap, -ENOENT, "the MBR holds no partition to grow");
	if (tie >= 0)
		return fail(err, errcap, -EBADMSG, "MBR partitions %d and %d both end at LBA %llu",
			    last + 1, tie + 1, (unsigned long long)(last_end - 1));
	if (mbr_is_extended(p[last].type))
		return fail(err, errcap, -EOPNOTSUPP,
			    "MBR partition %d, which ends last, is extended (type 0x%02x); growing "
			    "a logical partition is not supported",
			    last + 1, p[last].type);
	sectors = disk_bytes / lsec;
	if (sectors > MBR_LBA_LIMIT)
		return fail(err, errcap, -EFBIG,
			    "the disk holds %s (%llu sectors); an MBR partition cannot end past "
			    "sector 4294967295 (%s): convert to GPT to use the whole disk",
			    fmt_bytes(disk_bytes, b1, sizeof(b1)), (unsigned long long)sectors,
			    fmt_bytes(MBR_LBA_LIMIT * lsec, b2, sizeof(b2)));
	if (sectors < last_end)
		return fail(err, errcap, -ENOSPC,
			    "the disk holds %s (%llu sectors); MBR partition %d ends at LBA %llu",
			    fmt_bytes(disk_bytes, b1, sizeof(b1)), (unsigned long long)sectors,
			    last + 1, (unsigned long long)(last_end - 1));
	end_excl = align_end(sectors, lsec);
	if (end_excl <= last_end)
		return 0;
	/* The size field holds 32 bits too (a start of 0 could overflow it). */
	if (end_excl - p[last].start > 0xffffffffull) {
		end_excl = align_end((uint64_t)p[last].start + 0xffffffffull, lsec);
		if (end_excl <= last_end)
			return 0;
	}

	ent = first + MBR_PART_OFF + (size_t)last * MBR_PART_LEN;
	put_le32(ent + 12, (uint32_t)(end_excl - p[last].start));
	mbr_chs(ent + 5, end_excl - 1);
	g->grown = (uint32_t)last + 1;
	g->start_lba = p[last].start;
	g->old_bytes = (uint64_t)p[last].size * lsec;
	g->new_bytes = (end_excl - p[last].start) * lsec;
	return 0;
}
