/*
 * test_lvm.c - LVM2 on disks made by pvcreate/vgcreate/lvcreate (and
 * vgcfgrestore for a thin pool) without device-mapper
 * (src/tests/fixtures/lvm-disk.sh): the VG text parsed from the disk
 * against the tools' own extent lists; the map of the whole disk
 * (bm_probe): every kept file block, the thin pool and the PV's own
 * structures marked, free extents and deleted files not, and the marked
 * chunks alone over garbage give LVs that fsck clean with identical
 * files; a VG over two PVs (striped and spanning LVs: each PV's share
 * whole); metadata in a wrapped circular buffer; damaged labels, headers
 * and VG text (bad CRC, an extent out of range, a truncated section,
 * deep nesting, overlaps, random flips) refused; the device-mapper
 * lookup of a mounted LV on a fake sysfs tree; bm_lvm_read_pv (what adapt
 * activates LVs from) against the text parsed by hand. Needs root, lvm2 and
 * xfsprogs; skips otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockmap/blockmap.h"
#include "blockmap/lvm.h"
#include "blockmap/reader.h"
#include "common/common.h"
#include "tests/tap.h"
#include "tests/shell.h"

#define FIX "src/tests/fixtures/lvm-disk.sh"
#define BLK 4096u

static char T[64], IMG[112], MAN[128];
static struct bm_disk D;
static struct lvm_vg VG;


static uint64_t man_u64(const char *key)
{
	char out[64];
	unsigned long long v = 0;

	if (capture(out, sizeof(out), "sed -n 's/^%s=//p' %s", key, MAN) == 0)
		sscanf(out, "%llu", &v);
	return v;
}

static int pread_all(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY), r;

	if (fd < 0)
		return -1;
	r = pread(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
	close(fd);
	return r;
}

/* The current VG text of the PV at pv_off of img (first metadata area). */
static char *vg_text(const char *img, uint64_t pv_off, struct lvm_label *l, size_t *len)
{
	uint8_t head[LVM_LABEL_SCAN], hdr[LVM_MDA_HDR];
	struct lvm_rlocn rl;
	char why[256];
	char *t;
	uint64_t first;

	if (pread_all(img, head, sizeof(head), pv_off) ||
	    bm_lvm_label(head, sizeof(head), l, why, sizeof(why)) != 1 || l->nmda < 1 ||
	    pread_all(img, hdr, sizeof(hdr), pv_off + l->mda[0].off) ||
	    bm_lvm_mda(hdr, l->mda[0].off, l->mda[0].size, &rl, why, sizeof(why)) || !rl.size)
		return NULL;
	t = malloc(rl.size);
	first = l->mda[0].size - rl.off < rl.size ? l->mda[0].size - rl.off : rl.size;
	if (!t || pread_all(img, t, first, pv_off + l->mda[0].off + rl.off) ||
	    (first < rl.size &&
	     pread_all(img, t + first, rl.size - first, pv_off + l->mda[0].off + LVM_MDA_HDR))) {
		free(t);
		return NULL;
	}
	*len = rl.size;
	return t;
}

static const struct lvm_lv *lv_named(const struct lvm_vg *vg, const char *name)
{
	size_t i;

	for (i = 0; i < vg->nlvs; i++)
		if (!strcmp(vg->lvs[i].name, name))
			return &vg->lvs[i];
	return NULL;
}

static const struct bm_lv *plan_lv(const char *name)
{
	size_t i;

	for (i = 0; i < D.nlvs; i++)
		if (!strcmp(D.lvs[i].name, name))
			return &D.lvs[i];
	return NULL;
}

/* ---- the parse against the tools' own extent lists ------------------- */

static void case_parse(void)
{
	uint64_t pv_off = man_u64("pv_off"), pv_size = man_u64("pv_size"), owned = 0;
	char why[256] = "", line[256];
	struct lvm_label l;
	size_t len = 0, i;
	char *text = vg_text(IMG, pv_off, &l, &len);
	FILE *f;
	int r, bad = 0, lines = 0;

	ok(text != NULL, "the label, PV header, metadata area and VG text read back");
	if (!text)
		return;
	r = bm_lvm_parse(text, len, l.pv_uuid, pv_size, &VG, why, sizeof(why));
	ok(r == 0, "the VG text parses: %d %s", r, why);
	is_int(VG.extent_size, man_u64("ext"), "extent size");
	is_int(VG.pe_start, man_u64("pe_start"), "pe_start");
	ok(!strcmp(VG.name, "vgt"), "VG name %s", VG.name);

	/* Every LV piece lvs lists is in the model, on the same extents. */
	f = fopen(MAN, "r");
	while (f && fgets(line, sizeof(line), f)) {
		char name[128];
		unsigned long long pe, n;
		const struct lvm_lv *lv;
		uint32_t k;
		int found = 0;

		if (sscanf(line, "lv %127s %llu %llu", name, &pe, &n) == 3) {
			lines++;
			lv = lv_named(&VG, name);
			for (k = 0; lv && k < lv->npieces; k++)
				found |= VG.pieces[lv->piece0 + k].pe == pe &&
					 VG.pieces[lv->piece0 + k].count == n;
			if (!found) {
				bad++;
				note("lvs says %s has extents %llu+%llu; the model does not", name,
				     pe, n);
			}
		} else if (sscanf(line, "free %llu %llu", &pe, &n) == 2) {
			for (k = 0; k < VG.npieces; k++)
				if (VG.pieces[k].pe < pe + n &&
				    pe < VG.pieces[k].pe + VG.pieces[k].count)
					bad++;
		}
	}
	if (f)
		fclose(f);
	ok(lines >= 6 && bad == 0,
	   "%d pieces from lvs match the model, free extents in none "
	   "(%d mismatches)",
	   lines, bad);
	for (i = 0; i < VG.npieces; i++)
		owned += VG.pieces[i].count;
	note("%zu LVs, %zu pieces, %" PRIu64 " of %" PRIu64 " extents owned", VG.nlvs, VG.npieces,
	     owned, VG.pe_count);

	{
		const struct lvm_lv *root = lv_named(&VG, "root"), *pool = lv_named(&VG, "pool");
		const struct lvm_lv *tdata = lv_named(&VG, "pool_tdata");
		const struct lvm_lv *spare = lv_named(&VG, "lvol0_pmspare");
		const struct lvm_lv *thin = lv_named(&VG, "thin1");

		ok(root && !root->why[0] && root->npieces == 2, "root: mapped, two pieces");
		ok(pool && !strcmp(pool->why, "thin-pool"), "pool: whole as a thin-pool (%s)",
		   pool ? pool->why : "-");
		ok(tdata && strstr(tdata->why, "thin-pool pool") && pool &&
		       tdata->owner == (int)(pool - VG.lvs),
		   "pool_tdata: part of the pool (%s)", tdata ? tdata->why : "-");
		ok(spare && !strcmp(spare->why, "hidden LV"), "the pool's spare: hidden, whole");
		ok(thin && thin->here == 0 && strstr(thin->why, "thin"), "thin1: no extents here");
	}

	/* ---- the damage classes, on the real text ---- */
	{
		static const struct {
			const char *what, *from, *to, *expect;
		} ed[] = {
		    {"pe_count past the PV", "pe_count = ", "pe_count = 9", "do not fit"},
		    {"a stripe past pe_count", "\"pv0\", 0\n", "\"pv0\", 9999\n", "run past"},
		    {"two LVs on one extent", "\"pv0\", 75\n", "\"pv0\", 0\n", "overlap"},
		    {"a stripe on an unknown PV", "\"pv0\", 0\n", "\"pv7\", 0\n", "not a PV or LV"},
		    {"segments with a hole", "start_extent = 75", "start_extent = 76",
		     "do not follow"},
		    {"a negative extent count", "extent_count = 75", "extent_count = -75",
		     "non-negative"},
		    {"segment_count off by one", "segment_count = 2", "segment_count = 3",
		     "segment_count"},
		    {"extent_size 0", "extent_size = ", "extent_size = 0#", "extent_size"},
		};
		char *t2 = malloc(len + 64);

		for (i = 0; t2 && i < FERRY_ARRAY_LEN(ed); i++) {
			const char *p = strstr(text, ed[i].from);
			size_t pre;

			if (!p) {
				ok(0, "%s: \"%s\" in the text", ed[i].what, ed[i].from);
				continue;
			}
			pre = (size_t)(p - text);
			memcpy(t2, text, pre);
			strcpy(t2 + pre, ed[i].to);
			strcat(t2 + pre, p + strlen(ed[i].from));
			r = bm_lvm_parse(t2, strlen(t2), l.pv_uuid, pv_size, &VG, why, sizeof(why));
			ok(r == -EUCLEAN && strstr(why, ed[i].expect), "%s: refused (%s)",
			   ed[i].what, why);
		}
		/* Cut right after a section opens, and inside a string. */
		{
			size_t cut = len * 6 / 10;

			while (cut && text[cut - 1] != '{')
				cut--;
			r = bm_lvm_parse(text, cut, l.pv_uuid, pv_size, &VG, why, sizeof(why));
			ok(r == -EUCLEAN && strstr(why, "truncated"),
			   "truncated text: refused (%s)", why);
			r = bm_lvm_parse("vg { id = \"abc", 15, l.pv_uuid, pv_size, &VG, why,
					 sizeof(why));
			ok(r == -EUCLEAN && strstr(why, "not closed"), "an unclosed string: %s",
			   why);
		}
		/* Someone else's PV. */
		r = bm_lvm_parse(text, len, "0123456789abcdefABCDEF0123456789", pv_size, &VG, why,
				 sizeof(why));
		ok(r == -EUCLEAN && strstr(why, "does not list"), "another PV's view: refused (%s)",
		   why);
		/* Random flips: never a crash, and what parses stays inside the PV. */
		{
			unsigned seed = 12345, n, accepted = 0, outside = 0;

			for (n = 0; t2 && n < 3000; n++) {
				size_t k;

				memcpy(t2, text, len);
				for (k = 0; k < 1 + n % 4; k++) {
					seed = seed * 1103515245u + 12345u;
					t2[(seed >> 8) % len] = (char)(seed >> 24);
				}
				if (bm_lvm_parse(t2, len, l.pv_uuid, pv_size, &VG, why,
						 sizeof(why)))
					continue;
				accepted++;
				for (k = 0; k < VG.npieces; k++)
					outside +=
					    VG.pieces[k].pe + VG.pieces[k].count > VG.pe_count;
				outside += VG.pe_start + VG.pe_count * VG.extent_size > pv_size;
			}
			ok(outside == 0,
			   "3000 damaged texts: %u accepted, none reaching past the PV", accepted);
		}
		free(t2);
	}
	{
		/* Deep nesting and a text over the limit. */
		size_t big = LVM_META_MAX + 16, k;
		char *t3 = malloc(big);

		for (k = 0; t3 && k < 40; k++)
			memcpy(t3 + k * 4, "a { ", 4);
		if (t3) {
			r = bm_lvm_parse(t3, 160, l.pv_uuid, pv_size, &VG, why, sizeof(why));
			ok(r == -EUCLEAN && strstr(why, "nested deeper"), "40 nested sections: %s",
			   why);
			memset(t3, ' ', big);
			r = bm_lvm_parse(t3, big, l.pv_uuid, pv_size, &VG, why, sizeof(why));
			ok(r == -EUCLEAN && strstr(why, "limit"), "more than 1 MiB of text: %s",
			   why);
		}
		free(t3);
	}
	{
		/* The label and the metadata area header: a flipped byte breaks the CRC. */
		uint8_t head[LVM_LABEL_SCAN], hdr[LVM_MDA_HDR];
		struct lvm_label l2;
		struct lvm_rlocn rl;

		if (!pread_all(IMG, head, sizeof(head), pv_off) &&
		    !pread_all(IMG, hdr, sizeof(hdr), pv_off + l.mda[0].off)) {
			head[l.sector * LVM_SECTOR + 40] ^= 1;
			r = bm_lvm_label(head, sizeof(head), &l2, why, sizeof(why));
			ok(r == -EUCLEAN && strstr(why, "CRC"), "label with a bad CRC: %s", why);
			hdr[100] ^= 1;
			r = bm_lvm_mda(hdr, l.mda[0].off, l.mda[0].size, &rl, why, sizeof(why));
			ok(r == -EUCLEAN && strstr(why, "CRC"),
			   "metadata header with a bad CRC: %s", why);
			r = bm_lvm_mda(hdr, l.mda[0].off + 512, l.mda[0].size, &rl, why,
				       sizeof(why));
			ok(r == -EUCLEAN, "metadata header at the wrong place: %s", why);
		}
	}
	free(text);
}

/* ---- the map of the whole disk ------------------------------------------ */

/* Blocks of the image starting with tag's pattern: found, and marked. */
static void count_tag(const char *tag, uint64_t *found, uint64_t *marked)
{
	static uint8_t b[1 << 20];
	char want[9];
	uint64_t off;
	int fd = open(IMG, O_RDONLY);

	snprintf(want, sizeof(want), "%-8s", tag);
	*found = *marked = 0;
	for (off = 0; fd >= 0 && off < D.size; off += sizeof(b)) {
		ssize_t n = pread(fd, b, sizeof(b), (off_t)off), k;

		for (k = 0; k + BLK <= n; k += BLK) {
			ssize_t q;
			int all = 1;

			/* Every 1 KiB of it: a filesystem block of 1 KiB is one quarter. */
			for (q = k; q < k + BLK; q += 1024)
				all &= !memcmp(b + q, want, 8) && !memcmp(b + q + 16, "ferry", 5);
			if (!all)
				continue;
			(*found)++;
			*marked += bm_test(&D, (off + (uint64_t)k) / D.chunk);
		}
	}
	if (fd >= 0)
		close(fd);
}

/* The marked chunks of IMG over garbage, as the destination would hold them. */
static int copy_marked(const char *out)
{
	static uint8_t b[1 << 16];
	int in = open(IMG, O_RDONLY), o = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint64_t i;
	int r = 0;

	if (in < 0 || o < 0 || D.chunk > sizeof(b))
		r = -1;
	memset(b, 0xa5, sizeof(b));
	for (i = 0; !r && i < D.nchunks; i++) {
		uint64_t off = i * D.chunk, n = D.size - off < D.chunk ? D.size - off : D.chunk;

		if (bm_test(&D, i) && pread(in, b, n, (off_t)off) != (ssize_t)n)
			r = -1;
		if (!r && pwrite(o, b, n, (off_t)off) != (ssize_t)n)
			r = -1;
		if (bm_test(&D, i))
			memset(b, 0xa5, sizeof(b));
	}
	if (in >= 0)
		close(in);
	if (o >= 0)
		close(o);
	return r;
}

static void case_map(void)
{
	char err[512] = "", copy[112], a[128], b[128];
	const struct bm_lv *root, *data, *swap, *pool, *thin;
	uint64_t found, hit, pv_off = man_u64("pv_off");
	int xfs = bm_reader_for("xfs") != NULL;
	int r;

	/* 4 KiB chunks: a freed block is then never marked beside a used one. */
	r = bm_probe(IMG, 4096, &D, err, sizeof(err));
	ok(r == 0, "bm_probe: %d %s", r, err);
	if (r)
		return;
	ok(D.nparts == 2 && D.parts[1].method == BM_VOLUME, "partition 2: volumes (%s)",
	   D.parts[1].note);
	root = plan_lv("root");
	data = plan_lv("data");
	swap = plan_lv("swap");
	pool = plan_lv("pool");
	thin = plan_lv("thin1");
	ok(root && !strcmp(root->fstype, "xfs") && !strcmp(root->vg, "vgt") && root->part == 2,
	   "the plan names root: xfs in vgt on partition 2");
	ok(data && !strcmp(data->fstype, "ext4") && data->method == BM_USED,
	   "data: ext4 by its used blocks");
	ok(swap && swap->method == BM_HEADER, "swap: its header");
	ok(pool && pool->method == BM_WHOLE && strstr(pool->note, "thin-pool") &&
	       pool->used_bytes == 11 * man_u64("ext"),
	   "pool: its data and metadata whole, and says why (%s)", pool ? pool->note : "-");
	ok(thin && thin->used_bytes == 0, "thin1: nothing of its own");
	if (xfs)
		ok(root && root->method == BM_USED, "root: XFS by its used blocks");
	else
		skip("no XFS reader in this tree: root is sent whole");

	ok(bm_test(&D, pv_off / D.chunk) && bm_test(&D, (pv_off + 4096) / D.chunk),
	   "the PV label and metadata area are marked");
	count_tag("FREE", &found, &hit);
	ok(found > 0 && hit == 0, "free extents: none of %" PRIu64 " blocks marked (%" PRIu64 ")",
	   found, hit);
	count_tag("POOL", &found, &hit);
	ok(found > 0 && hit == found, "thin pool data: all %" PRIu64 " blocks marked", found);
	count_tag("KEEP", &found, &hit);
	ok(found > 0 && hit == found, "kept files: %" PRIu64 " of %" PRIu64 " blocks marked", hit,
	   found);
	count_tag("KEEPD", &found, &hit);
	ok(found > 0 && hit == found, "kept files in data: all %" PRIu64 " marked", found);
	count_tag("KEEPR", &found, &hit);
	ok(found > 0 && hit == found, "kept files in root: all %" PRIu64 " marked", found);
	count_tag("DELD", &found, &hit);
	ok(found > 0 && hit == 0,
	   "deleted files in data: none of %" PRIu64 " blocks marked (%" PRIu64 ")", found, hit);
	count_tag("DELB", &found, &hit);
	ok(found > 0 && hit == 0,
	   "deleted files in partition 1: none of %" PRIu64 " marked (%" PRIu64 ")", found, hit);
	count_tag("DELR", &found, &hit);
	if (xfs)
		ok(found > 0 && hit == 0,
		   "deleted files in root: none of %" PRIu64 " blocks marked (%" PRIu64 ")", found,
		   hit);
	else
		note("deleted files in root: %" PRIu64 " of %" PRIu64 " marked (sent whole)", hit,
		     found);
	note("map %" PRIu64 " MiB of %" PRIu64 " MiB", D.map_bytes >> 20, D.size >> 20);

	/* The destination's view: only the marked chunks, over garbage. */
	snprintf(copy, sizeof(copy), "%s/dst.img", T);
	ok(copy_marked(copy) == 0, "copy the marked chunks over garbage");
	snprintf(a, sizeof(a), "%s/a", T);
	snprintf(b, sizeof(b), "%s/b", T);
	ok(run("%s get %s data %s/s.data && MAN=%s %s get %s data %s/d.data && "
	       "e2fsck -fn %s/d.data >/dev/null 2>&1",
	       FIX, IMG, T, MAN, FIX, copy, T, T) == 0,
	   "the data LV of the copy: e2fsck -fn clean");
	ok(run("mount -o loop,ro %s/s.data %s && mount -o loop,ro %s/d.data %s && diff -r "
	       "--no-dereference %s %s "
	       ">/dev/null; r=$?; umount %s %s; exit $r",
	       T, a, T, b, a, b, a, b) == 0,
	   "the data LV of the copy: every file identical");
	ok(run("%s get %s root %s/s.root && MAN=%s %s get %s root %s/d.root && "
	       "xfs_repair -n -f %s/d.root >/dev/null 2>&1",
	       FIX, IMG, T, MAN, FIX, copy, T, T) == 0,
	   "the root LV of the copy (two pieces): xfs_repair -n clean");
	ok(run("mount -o loop,ro,nouuid %s/s.root %s && mount -o loop,ro,nouuid %s/d.root %s && "
	       "diff -r --no-dereference %s %s >/dev/null; r=$?; umount %s %s; exit $r",
	       T, a, T, b, a, b, a, b) == 0,
	   "the root LV of the copy: every file identical");
	run("rm -f %s/s.* %s/d.* %s", T, T, copy);
	bm_free(&D);
}

/* ---- bm_lvm_grow: the PV takes its grown partition, LVs untouched ------- */

struct fio {
	int fd;
	uint64_t off;
};

static int f_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct fio *f = ctx;

	return pread(f->fd, buf, len, (off_t)(f->off + off)) == (ssize_t)len ? 0 : -EIO;
}

static int f_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	const struct fio *f = ctx;

	return pwrite(f->fd, buf, len, (off_t)(f->off + off)) == (ssize_t)len ? 0 : -EIO;
}

static int f_sync(void *ctx)
{
	const struct fio *f = ctx;

	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int grow(const char *img, uint64_t off, uint64_t bytes, struct bm_pv_grown *g, char *err,
		size_t errcap)
{
	struct fio f = {open(img, O_RDWR), off};
	struct bm_pv_io io = {f_read, f_write, f_sync, &f};
	int r;

	if (f.fd < 0)
		return -errno;
	r = bm_lvm_grow(&io, bytes, g, err, errcap);
	close(f.fd);
	return r;
}

static void case_grow(void)
{
	char img[112], dev[64] = "", before[4096], after[4096], out[512], err[256] = "";
	struct bm_pv_grown g;
	int r;

	snprintf(img, sizeof(img), "%s/grow.img", T);
	if (run("truncate -s 64M %s", img) ||
	    capture(dev, sizeof(dev), "losetup -f --show %s", img) ||
	    run("export LVM_SUPPRESS_FD_WARNINGS=1; O='--devices %s'; pvcreate -q $O %s >/dev/null "
		"&& "
		"vgcreate -q $O -s 4M vgg %s >/dev/null 2>&1 && "
		"lvcreate $O --driverloaded n -an -Zn -q -L 8M -n a vgg >/dev/null 2>&1 && "
		"lvcreate $O --driverloaded n -an -Zn -q -L 12M -n b vgg >/dev/null 2>&1 && "
		"lvextend $O --driverloaded n -q -L +4M vgg/a >/dev/null 2>&1",
		dev, dev, dev) ||
	    capture(before, sizeof(before),
		    "LVM_SUPPRESS_FD_WARNINGS=1 lvs --devices %s --noheadings --segments "
		    "-o lv_name,seg_start_pe,seg_pe_ranges vgg 2>/dev/null | sed 's#/dev/[^:]*:##'",
		    dev)) {
		ok(0, "a 64 MiB PV with two LVs");
		goto out;
	}
	run("python3 src/tests/fixtures/pattern.py LVA 2048 | dd of=%s bs=1M seek=1 conv=notrunc "
	    "status=none",
	    img);
	run("losetup -d %s", dev);
	dev[0] = 0;
	r = grow(img, 0, 64 << 20, &g, err, sizeof(err));
	ok(r == 0 && g.old_extents == 15 && !strcmp(g.vg, "vgg"),
	   "a PV that fills its device is left as it is (%d, %s)", r, err);
	run("truncate -s 128M %s", img);
	r = grow(img, 0, 128 << 20, &g, err, sizeof(err));
	ok(r == 1 && g.old_extents == 15 && g.new_extents == 31,
	   "grown to 128 MiB: %d %s, %" PRIu64 " -> %" PRIu64 " extents", r, err, g.old_extents,
	   g.new_extents);
	if (capture(dev, sizeof(dev), "losetup -f --show %s", img)) {
		ok(0, "loop the grown image");
		goto out;
	}
	ok(capture(out, sizeof(out),
		   "LVM_SUPPRESS_FD_WARNINGS=1 pvs --devices %s --noheadings --units b --nosuffix "
		   "-o pv_size,pv_pe_count,dev_size %s 2>/dev/null",
		   dev, dev) == 0 &&
	       strstr(out, "130023424") && strstr(out, " 31 "),
	   "LVM itself sees the grown PV: 31 extents (%s)", out);
	ok(run("LVM_SUPPRESS_FD_WARNINGS=1 vgck --devices %s vgg >/dev/null 2>&1", dev) == 0,
	   "vgck is clean");
	capture(after, sizeof(after),
		"LVM_SUPPRESS_FD_WARNINGS=1 lvs --devices %s --noheadings --segments "
		"-o lv_name,seg_start_pe,seg_pe_ranges vgg 2>/dev/null | sed 's#/dev/[^:]*:##'",
		dev);
	ok(before[0] && !strcmp(before, after), "the LVs' segments are untouched");
	ok(run("python3 src/tests/fixtures/pattern.py LVA 2048 | cmp -s - %s -i 0:1048576 -n "
	       "8388608",
	       img) == 0,
	   "and so is their data");
	run("losetup -d %s", dev);
	dev[0] = 0;
	r = grow(img, 0, 128 << 20, &g, err, sizeof(err));
	ok(r == 0, "growing again changes nothing (%d)", r);
	run("truncate -s 64M %s", img);
	r = grow(img, 0, 64 << 20, &g, err, sizeof(err));
	ok(r == -EUCLEAN, "a device smaller than the PV's extents is refused: %s", err);
	r = grow(IMG, 0, 64 << 20, &g, err, sizeof(err));
	ok(r == -ENOENT, "a disk that is no PV: -ENOENT (%d)", r);
out:
	if (dev[0])
		run("losetup -d %s", dev);
	run("rm -f %s", img);
}

/* A VG over two PVs (two partitions): each PV maps its own share. */
static void case_two_pvs(void)
{
	char img[112], err[512] = "";
	uint64_t found, hit;
	size_t i;
	int r, st = 0, big = 0, a_here = 0, a_there = 0;

	snprintf(img, sizeof(img), "%s/two.img", T);
	if (run("%s make2 %s >%s/fixture2.log 2>&1", FIX, img, T)) {
		ok(0, "the two-PV fixture");
		return;
	}
	snprintf(IMG, sizeof(IMG), "%s", img);
	r = bm_probe(img, 4096, &D, err, sizeof(err));
	ok(r == 0 && D.nparts == 2 && D.parts[0].method == BM_VOLUME &&
	       D.parts[1].method == BM_VOLUME,
	   "both PVs read as volumes: %d %s", r, err);
	for (i = 0; i < D.nlvs; i++) {
		const struct bm_lv *l = &D.lvs[i];

		st += !strcmp(l->name, "st") && l->method == BM_WHOLE && strstr(l->note, "striped");
		big += !strcmp(l->name, "big") && l->method == BM_WHOLE && strstr(l->note, "spans");
		a_here += !strcmp(l->name, "a") && l->part == 1 && l->method == BM_USED;
		a_there += !strcmp(l->name, "a") && l->part == 2;
	}
	ok(st == 2 && big == 2, "striped and spanning LVs: each PV's share whole, said so");
	ok(a_here == 1 && a_there == 0, "an LV on one PV: mapped there, absent from the other");
	count_tag("FREE", &found, &hit);
	ok(found > 0 && hit == 0, "free extents of both PVs: none of %" PRIu64 " marked", found);
	count_tag("STRP", &found, &hit);
	ok(found > 0 && hit == found, "striped LV: all %" PRIu64 " blocks on both PVs marked",
	   found);
	count_tag("BIG", &found, &hit);
	ok(found > 0 && hit == found, "spanning LV: all %" PRIu64 " blocks marked", found);
	count_tag("KEEPA", &found, &hit);
	ok(found > 0 && hit == found, "files in LV a: all %" PRIu64 " blocks marked", found);
	count_tag("DELA", &found, &hit);
	ok(found > 0 && hit == 0, "deleted files in LV a: none of %" PRIu64 " marked", found);
	{
		struct bm_pv_grown g;

		r = grow(img, D.parts[1].start, D.parts[1].size + (4 << 20), &g, err, sizeof(err));
		ok(r == -EUCLEAN && strstr(err, "2 PVs"),
		   "growing a PV of a two-PV VG is refused: %s", err);
	}
	bm_free(&D);
	run("rm -f %s", img);
}

/* Damaged VG text on the disk: the PV is sent whole, with the reason. */
static void case_damaged_disk(void)
{
	char bad[112], err[512] = "";
	uint64_t pv_off = man_u64("pv_off");
	struct lvm_label l;
	size_t len;
	char *text = vg_text(IMG, pv_off, &l, &len);
	uint8_t hdr[LVM_MDA_HDR];
	struct lvm_rlocn rl;
	int r, fd;

	snprintf(bad, sizeof(bad), "%s/bad.img", T);
	if (!text || run("cp --sparse=always %s %s", IMG, bad) ||
	    pread_all(IMG, hdr, sizeof(hdr), pv_off + l.mda[0].off) ||
	    bm_lvm_mda(hdr, l.mda[0].off, l.mda[0].size, &rl, err, sizeof(err))) {
		ok(0, "set up the damaged disk");
		free(text);
		return;
	}
	fd = open(bad, O_RDWR);
	/* One byte of the text's first line: the CRC no longer matches. */
	if (fd < 0 || pwrite(fd, "X", 1, (off_t)(pv_off + l.mda[0].off + rl.off)) != 1)
		ok(0, "damage the text");
	if (fd >= 0)
		close(fd);
	r = bm_probe(bad, 0, &D, err, sizeof(err));
	ok(r == 0 && D.parts[1].method == BM_WHOLE && strstr(D.parts[1].note, "CRC"),
	   "VG text with a bad CRC: partition 2 sent whole (%s)", D.parts[1].note);
	ok(D.nlvs == 0, "and no LV in the plan");
	bm_free(&D);
	run("rm -f %s", bad);
	free(text);
}

/* The metadata text wrapping around the end of its circular buffer. */
static void case_wrap(void)
{
	char img[112], dev[64] = "", err[512] = "";
	const struct bm_lv *keep;
	uint8_t hdr[LVM_MDA_HDR];
	struct lvm_rlocn rl;
	int i, wrapped = 0, r;

	snprintf(img, sizeof(img), "%s/wrap.img", T);
	if (run("truncate -s 64M %s", img) ||
	    capture(dev, sizeof(dev), "losetup -f --show %s", img) ||
	    run("export LVM_SUPPRESS_FD_WARNINGS=1; pvcreate -q --devices %s %s >/dev/null && "
		"vgcreate -q --devices %s -s 1M vgw %s >/dev/null 2>&1 && "
		"lvcreate --devices %s --driverloaded n -an -Zn -q -L 8M -n keep vgw >/dev/null "
		"2>&1",
		dev, dev, dev, dev, dev)) {
		ok(0, "a PV with a VG");
		goto out;
	}
	/* 700 tags of 110 characters: ~80 KiB of text, a dozen updates fill the area. */
	{
		char *cmd = malloc(100000);
		size_t k = 0;

		if (!cmd)
			goto out;
		k += (size_t)snprintf(cmd + k, 100000 - k,
				      "LVM_SUPPRESS_FD_WARNINGS=1 vgchange -q --devices %s", dev);
		for (i = 0; i < 700; i++)
			k += (size_t)snprintf(cmd + k, 100000 - k, " --addtag t%0110d", i);
		snprintf(cmd + k, 100000 - k, " vgw >/dev/null 2>&1");
		r = system(cmd);
		free(cmd);
		(void)r;
	}
	for (i = 0; i < 40 && !wrapped; i++) {
		run("LVM_SUPPRESS_FD_WARNINGS=1 vgchange -q --devices %s --addtag x%d vgw "
		    ">/dev/null 2>&1",
		    dev, i);
		if (pread_all(img, hdr, sizeof(hdr), 4096) == 0 &&
		    bm_lvm_mda(hdr, 4096, (1 << 20) - 4096, &rl, err, sizeof(err)) == 0)
			wrapped = rl.off + rl.size > (1 << 20) - 4096;
		else if (!i)
			note("metadata area: %s", err);
	}
	run("losetup -d %s", dev);
	dev[0] = 0;
	ok(wrapped, "the VG text wraps around its metadata area after %d updates", i);
	r = bm_probe(img, 0, &D, err, sizeof(err));
	keep = plan_lv("keep");
	ok(r == 0 && D.method == BM_VOLUME && keep && keep->size == 8 << 20,
	   "wrapped text read back: the bare PV maps its LV (%s)", D.note);
	bm_free(&D);
	/* Growing writes the new text after the wrapped one, wrapping too. */
	{
		struct bm_pv_grown g;
		char out[256];

		run("truncate -s 96M %s", img);
		r = grow(img, 0, 96 << 20, &g, err, sizeof(err));
		ok(r == 1 && g.new_extents > g.old_extents,
		   "a PV with wrapped metadata grows: %d %s", r, err);
		if (capture(dev, sizeof(dev), "losetup -f --show %s", img) == 0) {
			ok(run("LVM_SUPPRESS_FD_WARNINGS=1 vgck --devices %s vgw >/dev/null 2>&1",
			       dev) == 0 &&
			       capture(out, sizeof(out),
				       "LVM_SUPPRESS_FD_WARNINGS=1 pvs --devices %s --noheadings "
				       "-o pv_pe_count %s 2>/dev/null",
				       dev, dev) == 0 &&
			       strtoull(out, NULL, 10) == g.new_extents,
			   "and LVM reads it back: %s extents", out);
			run("losetup -d %s", dev);
			dev[0] = 0;
		}
	}
out:
	if (dev[0])
		run("losetup -d %s", dev);
	run("rm -f %s", img);
}

/* ---- device-mapper lookup on a fake sysfs and mountinfo ----------------- */

static void put(const char *rel, const char *text)
{
	char path[256], dir[256], *s;
	FILE *f;

	snprintf(path, sizeof(path), "%s/dm%s", T, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	s = strrchr(dir, '/');
	*s = 0;
	run("mkdir -p '%s'", dir);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void case_dm(void)
{
	const char *vg = "7StQDvgVapYCzSzgail6MaDVzpTqmZsf";
	const char *lv = "Zh38aJHWaV0Rw4jBh646ntqpkQ32pxpr";
	const char *lv2 = "YSEoig2mjx9xtWegcv1hX0yeRacyIk0A";
	char root[128], uuid[128], dm[32], mnt[256];

	snprintf(root, sizeof(root), "%s/dm", T);
	snprintf(uuid, sizeof(uuid), "LVM-%s%s-cow\n", vg, lv);
	put("/sys/block/dm-0/dm/uuid", uuid); /* a snapshot layer under the LV */
	put("/sys/block/dm-0/dev", "253:0\n");
	snprintf(uuid, sizeof(uuid), "LVM-%s%s\n", vg, lv);
	put("/sys/block/dm-3/dm/uuid", uuid);
	put("/sys/block/dm-3/dm/name", "vgt-root\n");
	put("/sys/block/dm-3/dev", "253:3\n");
	snprintf(uuid, sizeof(uuid), "LVM-%s%s\n", vg, lv2);
	put("/sys/block/dm-4/dm/uuid", uuid);
	put("/sys/block/dm-4/dev", "253:4\n");
	put("/sys/block/sda/dev", "8:0\n");
	put("/proc/self/mountinfo",
	    "22 1 8:2 / /boot rw,relatime - ext4 /dev/sda2 rw\n"
	    "23 1 253:30 / /other rw - xfs /dev/mapper/x rw\n"
	    "24 1 253:3 /sub /bind rw - xfs /dev/mapper/vgt-root rw\n"
	    "25 1 253:3 / /srv/with\\040space rw - xfs /dev/mapper/vgt-root rw\n");
	ok(bm_lvm_dm_lookup(root, vg, lv, dm, sizeof(dm), mnt, sizeof(mnt)) == 1 &&
	       !strcmp(dm, "dm-3") && !strcmp(mnt, "/srv/with space"),
	   "the LV's dm device (not its -cow layer) and its mount, not a bind of a subdirectory "
	   "(%s at '%s')",
	   dm, mnt);
	ok(bm_lvm_dm_lookup(root, vg, lv2, dm, sizeof(dm), mnt, sizeof(mnt)) == 1 &&
	       !strcmp(dm, "dm-4") && mnt[0] == 0,
	   "an active LV that is not mounted");
	ok(bm_lvm_dm_lookup(root, vg, "00000000000000000000000000000000", dm, sizeof(dm), mnt,
			    sizeof(mnt)) == 0,
	   "an inactive LV");
	ok(bm_lvm_dm_lookup("/nonexistent", vg, lv, dm, sizeof(dm), mnt, sizeof(mnt)) == 0,
	   "no sysfs: not active");
}

/* ---- bm_lvm_read_pv: what adapt activates from ------------------------ */

static void case_read_pv(void)
{
	uint64_t pv_off = man_u64("pv_off"), pv_size = man_u64("pv_size");
	struct lvm_vg *vg = calloc(1, sizeof(*vg));
	char why[256] = "";
	int fd = open(IMG, O_RDONLY), r;

	if (!vg || fd < 0) {
		ok(0, "bm_lvm_read_pv: %s", fd < 0 ? "the image" : "memory");
		free(vg);
		return;
	}
	{
		struct lvm_label l;
		size_t len = 0;
		char *text = vg_text(IMG, pv_off, &l, &len);

		r = text ? bm_lvm_parse(text, len, l.pv_uuid, pv_size, &VG, why, sizeof(why)) : -1;
		free(text);
		ok(r == 0, "the VG text parsed by hand again: %d %s", r, why);
	}
	r = bm_lvm_read_pv(fd, pv_off, pv_size, vg, why, sizeof(why));
	ok(r == 1, "bm_lvm_read_pv reads the VG from the disk: %d %s", r, why);
	ok(!strcmp(vg->name, VG.name) && vg->seqno == VG.seqno && vg->nlvs == VG.nlvs &&
	       vg->npieces == VG.npieces && vg->pe_start == VG.pe_start &&
	       !memcmp(vg->pieces, VG.pieces, VG.npieces * sizeof(VG.pieces[0])),
	   "the same VG as the text parsed by hand: %s seqno %" PRIu64 ", %zu LVs, %zu runs",
	   vg->name, vg->seqno, vg->nlvs, vg->npieces);
	/* A PV shorter than its extents: refused, nothing to activate. */
	r = bm_lvm_read_pv(fd, pv_off, pv_size / 2, vg, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "do not fit"), "a PV half its size is refused: %d %s", r,
	   why);
	r = bm_lvm_read_pv(fd, pv_off + 512 * 1024, pv_size - 512 * 1024, vg, why, sizeof(why));
	ok(r == -EUCLEAN, "no label where the PV is not: %d %s", r, why);
	close(fd);
	free(vg);
}

int main(void)
{
	char v[256];

	snprintf(T, sizeof(T), "/tmp/ferry-lvm.XXXXXX");
	if (!mkdtemp(T))
		return 1;
	case_dm();
	if (geteuid() != 0) {
		skip("LVM disks need root (loop devices)");
		goto out;
	}
	if (capture(v, sizeof(v), "command -v pvcreate mkfs.xfs xfs_repair e2fsck") ||
	    access(FIX, X_OK)) {
		skip("lvm2 or xfsprogs missing (scripts/deps.sh), or not run from the source tree");
		goto out;
	}
	snprintf(IMG, sizeof(IMG), "%s/lvm.img", T);
	snprintf(MAN, sizeof(MAN), "%s.lvm", IMG);
	run("mkdir -p %s/a %s/b", T, T);
	if (run("%s make %s >%s/fixture.log 2>&1", FIX, IMG, T)) {
		run("tail -n 5 %s/fixture.log", T);
		ok(0, "the LVM disk fixture");
		goto out;
	}
	case_parse();
	case_read_pv();
	case_map();
	case_damaged_disk();
	case_wrap();
	case_grow();
	case_two_pvs();
out:
	run("umount %s/a %s/b 2>/dev/null; rm -rf %s", T, T, T);
	return tap_done();
}
