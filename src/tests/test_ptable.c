/*
 * test_ptable.c - ptable.c against real images made by sfdisk/sgdisk in a
 * temp dir: a GPT disk copied onto a larger one is relocated (and grown)
 * and then judged by sfdisk --verify, sfdisk --dump and sgdisk -v; the
 * same with 4096-byte sectors on a loop device (root); an MBR disk
 * grown; and a table of broken headers that must each be refused with a
 * sentence and leave the buffer as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "disk/ptable.h"
#include "tests/tap.h"

#define MIB	(1024u * 1024u)
#define OUT_MAX 16384

static char tmp[64];
static uint8_t region[PTABLE_REGION_LEN], saved[PTABLE_REGION_LEN];
static uint8_t backup[GPT_BACKUP_MAX];
static char out[OUT_MAX];

/* Runs fmt in the temp dir; stdout+stderr into out. Exit status or -1. */
static int sh(const char *fmt, ...) FERRY_ATTR_PRINTF(1, 2);

static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *f;
	size_t n = 0, k;
	int st, len;

	len = snprintf(cmd, sizeof(cmd), "cd %s && (", tmp);
	va_start(ap, fmt);
	len += vsnprintf(cmd + len, sizeof(cmd) - (size_t)len, fmt, ap);
	va_end(ap);
	if (len + 8 >= (int)sizeof(cmd))
		return -1;
	strcat(cmd, ") 2>&1");
	out[0] = 0;
	if (!(f = popen(cmd, "r")))
		return -1;
	while (n < sizeof(out) - 1 && (k = fread(out + n, 1, sizeof(out) - 1 - n, f)) > 0)
		n += k;
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have(const char *tool)
{
	return sh("command -v %s >/dev/null", tool) == 0;
}

static int file_io(const char *name, int wr, uint64_t off, void *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	if ((fd = open(path, wr ? O_WRONLY : O_RDONLY)) < 0)
		return -errno;
	n = wr ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
	if (wr && fsync(fd) < 0)
		n = -1;
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int region_read(const char *name, size_t len)
{
	return file_io(name, 0, 0, region, len);
}

/* The destination's order: backup region, flush, first region last. */
static int apply(const char *name, const struct gpt_reloc *r, size_t len)
{
	int e = file_io(name, 1, r->backup_off, backup, r->backup_len);

	return e ? e : file_io(name, 1, 0, region, len);
}

/* The partition lines of a `sfdisk --dump` in out, without the device. */
static size_t dump_parts(char lines[][256], size_t cap)
{
	char *p = out, *nl, *colon;
	size_t n = 0;

	for (; *p && n < cap; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		colon = strstr(p, " : start=");
		if (colon && colon < nl) {
			snprintf(lines[n], 256, "%.*s", (int)(nl - colon), colon);
			n++;
		}
		if (!*nl)
			break;
	}
	return n;
}

static unsigned long long field(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* Clean: "No errors detected" and none of the words sfdisk warns with. */
static int verify_clean(void)
{
	const char *no = strstr(out, "No errors detected");

	return no && strstr(out, "errors detected") == no + 3 &&
	       !strstr(no + 4, "errors detected") && !strstr(out, " error detected") &&
	       !strstr(out, "backup") && !strstr(out, "mismatch") && !strstr(out, "Warning") &&
	       !strstr(out, "different");
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* Recomputes both CRCs of the header at LBA 1 (512-byte sectors). */
static void fix_crcs(uint8_t *b)
{
	uint8_t *h = b + 512;
	uint64_t ent = rd64(h + 72);
	uint64_t bytes = (uint64_t)rd32(h + 80) * rd32(h + 84);

	if (ent * 512 + bytes <= PTABLE_REGION_LEN)
		wr32(h + 88, gpt_crc32(0, b + ent * 512, (size_t)bytes));
	wr32(h + 16, 0);
	wr32(h + 16, gpt_crc32(0, h, rd32(h + 12)));
}

static void test_crc(void)
{
	static const char check[] = "123456789";

	is_int(gpt_crc32(0, check, 9), 0xcbf43926u, "crc32 check value of \"123456789\"");
	is_int(gpt_crc32(gpt_crc32(0, check, 4), check + 4, 5), 0xcbf43926u,
	       "crc32 chains over pieces");
	is_int(gpt_crc32(0, check, 0), 0, "crc32 of nothing is 0");
}

/* sfdisk input: 3 partitions, the last one to the (aligned) end. */
static const char gpt_script[] = "label: gpt\n"
				 "size=8MiB, name=boot\n"
				 "size=16MiB, type=linux\n"
				 "type=linux\n";

static int make_gpt512(void)
{
	if (sh("truncate -s 64M src.img && printf '%s' | sfdisk -q src.img", gpt_script) != 0) {
		note("sfdisk: %s", out);
		return -1;
	}
	return 0;
}

/* dst.img: a 100 MiB disk holding a block copy of src.img. */
static int copy_to(const char *src, const char *dst, const char *size)
{
	return sh("rm -f %s && truncate -s %s %s && dd if=%s of=%s conv=notrunc status=none", dst,
		  size, dst, src, dst);
}

static void test_gpt512(int grow)
{
	char src_parts[8][256], dst_parts[8][256];
	enum ptable_kind kind;
	struct gpt_reloc r;
	char err[PTABLE_ERR_LEN] = "";
	const char *dst = grow ? "grow.img" : "dst.img";
	const char *what = grow ? "gpt512 grow" : "gpt512";
	size_t ns, nd, i;
	int rc;

	if (sh("sfdisk --dump src.img") != 0) {
		ok(0, "%s: sfdisk --dump src.img: %s", what, out);
		return;
	}
	ns = dump_parts(src_parts, 8);
	is_int(ns, 3, "source image has 3 partitions");
	if (copy_to("src.img", dst, "100M") != 0) {
		ok(0, "%s: copy: %s", what, out);
		return;
	}
	sh("sfdisk --verify %s", dst);
	ok(strstr(out, "backup GPT table is not on the end"),
	   "%s: before: sfdisk --verify sees the backup GPT mid-disk", what);

	if (region_read(dst, PTABLE_REGION_LEN) != 0) {
		ok(0, "%s: read first MiB", what);
		return;
	}
	rc = ptable_detect(region, PTABLE_REGION_LEN, 512, &kind, err, sizeof(err));
	ok(rc == 0 && kind == PTABLE_GPT, "%s: detected as GPT (%d, %s)", what, rc, err);

	rc = gpt_relocate(region, PTABLE_REGION_LEN, 512, 100ull * MIB, grow ? GPT_GROW_LAST : 0,
			  backup, sizeof(backup), &r, err, sizeof(err));
	if (!ok(rc == 0, "%s: gpt_relocate: %s", what, rc ? err : "ok"))
		return;
	is_int(r.last_lba, 204799, "new AlternateLBA is the last sector");
	is_int(r.last_usable, 204799 - 32 - 1, "new LastUsableLBA = last - 32 - 1");
	is_int(r.backup_off, (204799ull - 32) * 512, "backup region offset");
	is_int(r.backup_len, 33 * 512, "backup region = 32 array sectors + header");
	is_int(r.old_alt_lba, 131071, "old backup header was at the 64 MiB end");
	ok(r.pmbr_updated, "protective MBR updated");
	is_int(rd32(region + 446 + 12), 204799, "protective MBR size = sectors - 1");
	ok(memcmp(backup + 32 * 512, "EFI PART", 8) == 0, "backup header after the array");
	if (grow) {
		is_int(r.grown, 3, "partition 3 grew");
		is_int(r.grown_old_bytes, 77824ull * 512, "old size reported");
		/* (204766 + 1) aligned down to 2048 sectors = 202752. */
		is_int(r.grown_new_bytes, (202752ull - 51200) * 512, "new size reported");
	} else {
		is_int(r.grown, 0, "nothing grew without GPT_GROW_LAST");
	}
	if (apply(dst, &r, PTABLE_REGION_LEN) != 0) {
		ok(0, "%s: write back", what);
		return;
	}

	rc = sh("sfdisk --verify %s", dst);
	ok(rc == 0 && verify_clean(), "%s: sfdisk --verify is clean", what);
	if (!verify_clean())
		note("%s", out);
	rc = sh("sgdisk -v %s", dst);
	ok(rc == 0 && strstr(out, "No problems found"), "%s: sgdisk -v: no problems", what);
	if (!strstr(out, "No problems found"))
		note("%s", out);
	sh("sfdisk --dump %s", dst);
	is_int(field(out, "last-lba:"), 204766, "sfdisk --dump: last-lba at the new end");
	nd = dump_parts(dst_parts, 8);
	is_int(nd, 3, "still 3 partitions");
	for (i = 0; i < ns && i < nd; i++) {
		if (grow && i == 2)
			continue;
		ok(strcmp(src_parts[i], dst_parts[i]) == 0, "%s: partition %zu identical", what,
		   i + 1);
	}
	if (grow && nd == 3) {
		unsigned long long start = field(dst_parts[2], "start=");
		unsigned long long size = field(dst_parts[2], "size=");

		is_int(start, 51200, "grown partition keeps its start");
		is_int(size, 202752 - 51200, "grown partition ends at the 1 MiB-aligned end");
		ok(204766 - (start + size - 1) < 2048,
		   "grown partition ends within 1 MiB of LastUsableLBA");
		/* The rest of partition 3's line is unchanged. */
		ok(strcmp(strstr(src_parts[2], ", type="), strstr(dst_parts[2], ", type=")) == 0,
		   "grown partition keeps type and uuid");
		sh("gdisk -l %s", dst);
		ok(strstr(out, "Found valid GPT with protective MBR") != NULL,
		   "gdisk -l: valid GPT with protective MBR");
	}

	/* Run again on what is now on the disk: nothing left to change. */
	if (region_read(dst, PTABLE_REGION_LEN) == 0) {
		memcpy(saved, region, PTABLE_REGION_LEN);
		rc = gpt_relocate(region, PTABLE_REGION_LEN, 512, 100ull * MIB,
				  grow ? GPT_GROW_LAST : 0, backup, sizeof(backup), &r, err,
				  sizeof(err));
		ok(rc == 0 && r.grown == 0 && memcmp(region, saved, PTABLE_REGION_LEN) == 0,
		   "%s: relocating again at the same size changes nothing", what);
	}
}

/* 4096-byte sectors: sfdisk 2.38 cannot make them on a file; a loop device can. */
static int loop_attach(const char *img, char *dev, size_t cap)
{
	char *nl;

	if (sh("losetup -f --show -b 4096 %s", img) != 0)
		return -1;
	if ((nl = strchr(out, '\n')))
		*nl = 0;
	snprintf(dev, cap, "%s", out);
	return strncmp(dev, "/dev/loop", 9) == 0 ? 0 : -1;
}

static void test_gpt4096(void)
{
	char src_parts[8][256], dst_parts[8][256];
	char dev[64], err[PTABLE_ERR_LEN] = "";
	size_t ns = 0, nd;
	enum ptable_kind kind;
	struct gpt_reloc r;
	int rc;

	if (geteuid() != 0 || !have("losetup")) {
		skip("4096-byte sectors need root and losetup (a loop device with -b 4096)");
		return;
	}
	if (sh("truncate -s 64M s4.img") != 0 || loop_attach("s4.img", dev, sizeof(dev))) {
		skip("4096-byte sectors: losetup -b 4096 failed (no loop devices here?)");
		return;
	}
	rc = sh("printf '%s' | sfdisk -q %s", gpt_script, dev);
	if (rc == 0 && sh("sfdisk --dump %s", dev) == 0)
		ns = dump_parts(src_parts, 8);
	sh("losetup -d %s", dev);
	if (!ok(rc == 0, "gpt4096: sfdisk made a 4096-byte-sector GPT"))
		return;
	if (copy_to("s4.img", "d4.img", "100M") != 0 ||
	    region_read("d4.img", PTABLE_REGION_LEN) != 0) {
		ok(0, "gpt4096: copy and read");
		return;
	}
	rc = ptable_detect(region, PTABLE_REGION_LEN, 4096, &kind, err, sizeof(err));
	ok(rc == 0 && kind == PTABLE_GPT, "gpt4096: detected as GPT at lsec 4096");
	rc = ptable_detect(region, PTABLE_REGION_LEN, 512, &kind, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "4096-byte sectors"),
	   "gpt4096: at lsec 512 it says the table is for 4096 (%s)", err);

	rc = gpt_relocate(region, PTABLE_REGION_LEN, 4096, 100ull * MIB, GPT_GROW_LAST, backup,
			  sizeof(backup), &r, err, sizeof(err));
	if (!ok(rc == 0, "gpt4096: gpt_relocate: %s", rc ? err : "ok"))
		return;
	/* 25600 sectors; 128 x 128-byte entries = 4 sectors. */
	is_int(r.last_lba, 25599, "gpt4096: AlternateLBA");
	is_int(r.last_usable, 25594, "gpt4096: LastUsableLBA");
	is_int(r.backup_len, 5 * 4096, "gpt4096: backup = 4 array sectors + header");
	is_int(rd32(region + 446 + 12), 25599, "gpt4096: protective MBR in 4 KiB sectors");
	is_int(r.grown, 3, "gpt4096: partition 3 grew");
	if (apply("d4.img", &r, PTABLE_REGION_LEN) != 0 ||
	    loop_attach("d4.img", dev, sizeof(dev))) {
		ok(0, "gpt4096: write back and attach");
		return;
	}
	rc = sh("sfdisk --verify %s", dev);
	ok(rc == 0 && verify_clean(), "gpt4096: sfdisk --verify is clean");
	if (!verify_clean())
		note("%s", out);
	sh("sgdisk -v %s", dev);
	ok(strstr(out, "No problems found") != NULL, "gpt4096: sgdisk -v: no problems");
	sh("sfdisk --dump %s", dev);
	is_int(field(out, "last-lba:"), 25594, "gpt4096: sfdisk --dump last-lba");
	is_int(field(out, "sector-size:"), 4096, "gpt4096: sfdisk sees 4096-byte sectors");
	nd = dump_parts(dst_parts, 8);
	is_int(nd, 3, "gpt4096: 3 partitions");
	if (ns == 3 && nd == 3) {
		ok(strcmp(src_parts[0], dst_parts[0]) == 0 &&
		       strcmp(src_parts[1], dst_parts[1]) == 0,
		   "gpt4096: partitions 1 and 2 identical");
		is_int(field(dst_parts[2], "start="), field(src_parts[2], "start="),
		       "gpt4096: partition 3 keeps its start");
		/* 25595 aligned down to 256 sectors (1 MiB) = 25344. */
		is_int(field(dst_parts[2], "start=") + field(dst_parts[2], "size="), 25344,
		       "gpt4096: partition 3 ends at the aligned end");
	}
	sh("losetup -d %s", dev);
}

/* A GPT disk smaller than the first region: the backup lands inside it. */
static void test_gpt_tiny(void)
{
	char err[PTABLE_ERR_LEN] = "";
	struct gpt_reloc r;
	int rc;

	if (sh("truncate -s 192K tiny.img && sgdisk -o -a 8 -n 1:0:0 tiny.img") != 0) {
		note("sgdisk: %s", out);
		skip("sgdisk could not make a tiny GPT image");
		return;
	}
	if (copy_to("tiny.img", "tiny2.img", "512K") != 0 ||
	    region_read("tiny2.img", 512 * 1024) != 0) {
		ok(0, "tiny: copy and read");
		return;
	}
	rc = gpt_relocate(region, 512 * 1024, 512, 512 * 1024, GPT_GROW_LAST, backup,
			  sizeof(backup), &r, err, sizeof(err));
	if (!ok(rc == 0, "tiny: gpt_relocate: %s", rc ? err : "ok"))
		return;
	ok(r.backup_off < 512 * 1024, "tiny: backup region lies in the first region");
	ok(memcmp(region + r.backup_off, backup, r.backup_len) == 0,
	   "tiny: ...and was copied into it");
	is_int(r.grown, 0, "tiny: nothing grows: the aligned end (0) is below it");
	/* Only the first region is written: it must carry the backup. */
	if (file_io("tiny2.img", 1, 0, region, 512 * 1024) != 0) {
		ok(0, "tiny: write");
		return;
	}
	sh("sgdisk -v tiny2.img");
	ok(strstr(out, "No problems found") != NULL, "tiny: sgdisk -v: no problems");
}

static const char mbr_script[] = "label: dos\nsize=16MiB\n,\n";

static void test_mbr(void)
{
	char before[8][256], after[8][256], err[PTABLE_ERR_LEN] = "";
	enum ptable_kind kind;
	struct mbr_grow g;
	size_t nb, na;
	int rc;

	if (sh("truncate -s 64M m.img && printf '%s' | sfdisk -q m.img", mbr_script) ||
	    sh("sfdisk --dump m.img")) {
		ok(0, "mbr: sfdisk: %s", out);
		return;
	}
	nb = dump_parts(before, 8);
	is_int(nb, 2, "mbr: 2 primaries");
	if (copy_to("m.img", "md.img", "100M") || region_read("md.img", PTABLE_REGION_LEN)) {
		ok(0, "mbr: copy and read");
		return;
	}
	rc = ptable_detect(region, PTABLE_REGION_LEN, 512, &kind, err, sizeof(err));
	ok(rc == 0 && kind == PTABLE_MBR, "mbr: detected as MBR");
	rc = mbr_grow_last(region, PTABLE_REGION_LEN, 512, 100ull * MIB, &g, err, sizeof(err));
	if (!ok(rc == 0, "mbr: mbr_grow_last: %s", rc ? err : "ok"))
		return;
	is_int(g.grown, 2, "mbr: partition 2 grew");
	is_int(g.old_bytes, 96256ull * 512, "mbr: old size");
	is_int(g.new_bytes, (204800ull - 34816) * 512, "mbr: new size reaches the end");
	if (file_io("md.img", 1, 0, region, 512)) {
		ok(0, "mbr: write");
		return;
	}
	rc = sh("sfdisk --verify md.img");
	ok(rc == 0 && verify_clean(), "mbr: sfdisk --verify is clean");
	if (!verify_clean())
		note("%s", out);
	sh("sfdisk --dump md.img");
	na = dump_parts(after, 8);
	is_int(na, 2, "mbr: still 2 partitions");
	if (na == 2) {
		ok(strcmp(before[0], after[0]) == 0, "mbr: partition 1 identical");
		is_int(field(after[1], "start="), 34816, "mbr: partition 2 keeps its start");
		is_int(field(after[1], "size="), 204800 - 34816,
		       "mbr: sfdisk --dump: partition 2 ends at the disk's end");
	}
	sh("fdisk -l md.img");
	ok(!strstr(out, "differ") && !strstr(out, "does not end"),
	   "mbr: fdisk -l has no CHS complaints");

	/* Refusals, each leaving the sector as it was. */
	region_read("m.img", 512);
	memcpy(saved, region, 512);
	rc = mbr_grow_last(region, 512, 512, 3ull << 40, &g, err, sizeof(err));
	ok(rc == -EFBIG && strstr(err, "GPT") && strstr(err, "3.0 TiB") &&
	       !memcmp(region, saved, 512),
	   "mbr: a 3 TiB disk is refused: %s", err);
	rc = mbr_grow_last(region, 512, 512, 32ull * MIB, &g, err, sizeof(err));
	ok(rc == -ENOSPC && strstr(err, "32.0 MiB") && !memcmp(region, saved, 512),
	   "mbr: a smaller disk is refused: %s", err);
	rc = mbr_grow_last(region, 511, 512, 100ull * MIB, &g, err, sizeof(err));
	ok(rc == -EINVAL && err[0], "mbr: 511 bytes refused: %s", err);
	rc = mbr_grow_last(region, 512, 512, 64ull * MIB, &g, err, sizeof(err));
	ok(rc == 0 && g.grown == 0 && !memcmp(region, saved, 512),
	   "mbr: same-size disk: nothing to grow, nothing changed");

	/* It starts inside the disk's unaligned last MiB: nothing to grow. */
	memset(region, 0, 512);
	region[446 + 4] = 0x83;
	wr32(region + 446 + 8, 204850);
	wr32(region + 446 + 12, 40);
	region[510] = 0x55;
	region[511] = 0xaa;
	memcpy(saved, region, 512);
	rc = mbr_grow_last(region, 512, 512, 204900ull * 512, &g, err, sizeof(err));
	ok(rc == 0 && g.grown == 0 && !memcmp(region, saved, 512),
	   "mbr: a partition past the last aligned MiB is left alone");
	/* A 2 TiB disk exactly: the partition ends at sector 2^32 - 1. */
	wr32(region + 446 + 8, 2048);
	rc = mbr_grow_last(region, 512, 512, 2ull << 40, &g, err, sizeof(err));
	ok(rc == 0 && g.grown == 1 && rd32(region + 446 + 12) == 0xffffffffu - 2047,
	   "mbr: on a 2 TiB disk it ends at the last 32-bit LBA");

	/* The last partition is extended: refused, not half-done. */
	if (sh("truncate -s 64M e.img && printf 'label: dos\\nsize=16MiB\\ntype=5\\nsize=8MiB\\n' "
	       "| sfdisk -q e.img") == 0 &&
	    region_read("e.img", 512) == 0) {
		memcpy(saved, region, 512);
		rc = mbr_grow_last(region, 512, 512, 100ull * MIB, &g, err, sizeof(err));
		ok(rc == -EOPNOTSUPP && strstr(err, "extended") && strstr(err, "0x05") &&
		       !memcmp(region, saved, 512),
		   "mbr: extended last partition refused: %s", err);
	} else {
		ok(0, "mbr: sfdisk extended: %s", out);
	}
}

/* ---- broken GPT headers, in memory ------------------------------------ */

struct bad_case {
	const char *name;
	void (*mutate)(uint8_t *b);
	size_t len;
	uint64_t disk;
	int want;
	const char *says;
};

static void m_hdr_crc(uint8_t *b)
{
	b[512 + 60] ^= 1; /* a disk GUID byte; CRC left stale */
}

static void m_count(uint8_t *b)
{
	wr32(b + 512 + 80, 100000);
	fix_crcs(b);
}

static void m_esize(uint8_t *b)
{
	wr32(b + 512 + 84, 7);
	fix_crcs(b);
}

static void m_esize_big(uint8_t *b)
{
	wr32(b + 512 + 84, 8192);
	fix_crcs(b);
}

static void m_array_crc(uint8_t *b)
{
	b[1024 + 56] ^= 1; /* a name byte of partition 1 */
}

static void m_sig(uint8_t *b)
{
	b[512] = 'X';
}

static void m_my_lba(uint8_t *b)
{
	wr64(b + 512 + 24, 2);
	fix_crcs(b);
}

static void m_hsize(uint8_t *b)
{
	wr32(b + 512 + 12, 600);
	wr32(b + 512 + 16, 0);
}

static void m_entry_lba(uint8_t *b)
{
	wr64(b + 512 + 72, 1ull << 60); /* would overflow lba * 512 */
	fix_crcs(b);
}

static void m_part_end(uint8_t *b)
{
	wr64(b + 1024 + 2 * 128 + 40, 999999); /* partition 3 past LastUsableLBA */
	fix_crcs(b);
}

static void m_tie(uint8_t *b)
{
	wr64(b + 1024 + 1 * 128 + 40, rd64(b + 1024 + 2 * 128 + 40));
	fix_crcs(b);
}

static void m_last_usable(uint8_t *b)
{
	wr64(b + 512 + 48, UINT64_MAX - 1);
	wr64(b + 512 + 32, UINT64_MAX);
	fix_crcs(b);
}

static void m_no_pmbr(uint8_t *b)
{
	b[446 + 4] = 0x83;
}

static void m_none(uint8_t *b)
{
	(void)b;
}

static const struct bad_case bad_cases[] = {
    {"header CRC", m_hdr_crc, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "header CRC"},
    {"entry count 100000", m_count, PTABLE_REGION_LEN, 100ull * MIB, -E2BIG, "100000"},
    {"entry size 7", m_esize, PTABLE_REGION_LEN, 100ull * MIB, -E2BIG, "entry size 7"},
    {"entry size 8192", m_esize_big, PTABLE_REGION_LEN, 100ull * MIB, -E2BIG, "8192"},
    {"entry array CRC", m_array_crc, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "entry array CRC"},
    {"no signature", m_sig, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "EFI PART"},
    {"MyLBA 2", m_my_lba, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "MyLBA 2"},
    {"header size 600", m_hsize, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "600"},
    {"entry LBA 2^60", m_entry_lba, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG,
     "1152921504606846976"},
    {"partition past usable", m_part_end, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "999999"},
    {"two partitions end last", m_tie, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "both end"},
    {"LastUsableLBA near 2^64", m_last_usable, PTABLE_REGION_LEN, 100ull * MIB, -ENOSPC,
     "16.0 EiB"},
    {"no protective MBR", m_no_pmbr, PTABLE_REGION_LEN, 100ull * MIB, -EBADMSG, "protective MBR"},
    {"disk smaller than source", m_none, PTABLE_REGION_LEN, 32ull * MIB, -ENOSPC, "32.0 MiB"},
    {"disk of 0 bytes", m_none, PTABLE_REGION_LEN, 0, -ENOSPC, "0 B"},
    {"region cut inside the array", m_none, 10240, 100ull * MIB, -EBADMSG, "entry array at LBA 2"},
    {"region cut inside the header", m_none, 700, 100ull * MIB, -EINVAL, "700 bytes"},
    {"region of 100 bytes", m_none, 100, 100ull * MIB, -EINVAL, "100 bytes"},
};

static void test_bad(void)
{
	static uint8_t src[PTABLE_REGION_LEN];
	char err[PTABLE_ERR_LEN];
	struct gpt_reloc r;
	size_t i;
	int rc;

	if (region_read("src.img", PTABLE_REGION_LEN)) {
		ok(0, "bad: read src.img");
		return;
	}
	memcpy(src, region, sizeof(src));
	for (i = 0; i < FERRY_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];

		memcpy(region, src, sizeof(region));
		c->mutate(region);
		memcpy(saved, region, sizeof(saved));
		err[0] = 0;
		rc = gpt_relocate(region, c->len, 512, c->disk, GPT_GROW_LAST, backup,
				  sizeof(backup), &r, err, sizeof(err));
		ok(rc == c->want && strstr(err, c->says) &&
		       memcmp(region, saved, sizeof(region)) == 0,
		   "refused, unchanged: %s: %s", c->name, err);
		if (rc != c->want)
			note("got %d, want %d", rc, c->want);
	}

	/* Wrong sizes from the caller. */
	memcpy(region, src, sizeof(region));
	rc = gpt_relocate(region, PTABLE_REGION_LEN, 512, 100ull * MIB, 0, backup, 33 * 512 - 1, &r,
			  err, sizeof(err));
	ok(rc == -ENOBUFS && strstr(err, "16896") && !memcmp(region, src, sizeof(src)),
	   "short backup buffer refused: %s", err);
	rc = gpt_relocate(region, PTABLE_REGION_LEN, 1000, 100ull * MIB, 0, backup, sizeof(backup),
			  &r, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "1000"), "sector size 1000 refused: %s", err);
	rc = gpt_relocate(region, PTABLE_REGION_LEN, 512, 100ull * MIB, 0, backup, sizeof(backup),
			  &r, NULL, 0);
	ok(rc == 0, "a NULL err buffer is fine");

	/* A hybrid MBR's 0xEE entry (not covering the disk) is kept. */
	memcpy(region, src, sizeof(region));
	wr32(region + 446 + 12, 4095);
	memcpy(saved, region, 512);
	rc = gpt_relocate(region, PTABLE_REGION_LEN, 512, 100ull * MIB, 0, backup, sizeof(backup),
			  &r, err, sizeof(err));
	ok(rc == 0 && !r.pmbr_updated && !memcmp(region, saved, 512),
	   "hybrid protective entry left as it was");

	/* Detection of things that are not partition tables. */
	{
		enum ptable_kind k = PTABLE_GPT;

		memset(region, 0, 4096);
		rc = ptable_detect(region, 4096, 512, &k, err, sizeof(err));
		ok(rc == 0 && k == PTABLE_NONE, "zeros: none");
		memset(region, 0x4e, 510); /* a boot sector with no table */
		region[510] = 0x55;
		region[511] = 0xaa;
		rc = ptable_detect(region, 4096, 512, &k, err, sizeof(err));
		ok(rc == 0 && k == PTABLE_NONE, "boot code with 0x55AA but bad flags: none");
		memcpy(region, src, sizeof(region));
		m_hdr_crc(region);
		rc = ptable_detect(region, PTABLE_REGION_LEN, 512, &k, err, sizeof(err));
		ok(rc == -EBADMSG && strstr(err, "CRC"),
		   "protective MBR + broken GPT: an error, not none: %s", err);
		memcpy(region, src, sizeof(region));
		rc = ptable_detect(region, 100, 512, &k, err, sizeof(err));
		ok(rc == -EINVAL && k == PTABLE_NONE, "detect on 100 bytes refused: %s", err);
	}
}

int main(void)
{
	int tools;

	test_crc();
	snprintf(tmp, sizeof(tmp), "/tmp/ferry-ptable-XXXXXX");
	if (!mkdtemp(tmp)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	tools = have("sfdisk") && have("sgdisk") && have("gdisk") && have("truncate");
	if (!tools || make_gpt512() != 0) {
		skip("sfdisk, sgdisk, gdisk and truncate are needed for the image tests");
	} else {
		test_gpt512(0);
		test_gpt512(1);
		test_gpt4096();
		test_gpt_tiny();
		test_mbr();
		test_bad();
	}
	sh("rm -rf %s", tmp);
	return tap_done();
}
