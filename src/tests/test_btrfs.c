/*
 * test_btrfs.c - the btrfs map on filesystems made by mkfs.btrfs and
 * filled through the kernel (files written, some deleted, a subvolume, a
 * snapshot): every extent btrfs-progs lists (dump-tree, through its
 * chunk map) is marked, the blocks of deleted files are not, and an image
 * holding only the marked bytes on top of garbage passes `btrfs check`
 * and has every file. Unmounted (on-disk trees) and mounted (the kernel's
 * trees through TREE_SEARCH), one device with DUP metadata, and two
 * devices with RAID0 data and RAID1 metadata; then damaged superblocks,
 * tree blocks and sys_chunk_arrays, which must be refused. Needs root
 * (loop mounts) and btrfs-progs; skips otherwise.
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

#include "blockmap/btrfs.h"
#include "common/common.h"
#include "tests/tap.h"
#include "tests/shell.h"

#define MiB  ((uint64_t)1024 * 1024)
#define BLK  4096u
#define GARB 0xa5

static char T[64];


/* ---- a device under test: reads, and a 4 KiB-granular record of marks -- */

struct dev {
	int fd, out; /* the image; a copy receiving the marked bytes, or -1 */
	uint64_t size;
	uint8_t *bits;	  /* one byte per 4 KiB block */
	uint64_t outside; /* marks past the end */
	uint64_t marked;
};

static int dev_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct dev *d = ctx;
	ssize_t n = pread(d->fd, buf, len, (off_t)off);

	return n == (ssize_t)len ? 0 : -EIO;
}

static void dev_mark(void *ctx, uint64_t off, uint64_t len)
{
	struct dev *d = ctx;
	static uint8_t buf[1 << 20];
	uint64_t b;

	if (off > d->size || len > d->size - off) {
		d->outside++;
		return;
	}
	for (b = off / BLK; b < (off + len + BLK - 1) / BLK; b++) {
		d->marked += !d->bits[b];
		d->bits[b] = 1;
	}
	while (d->out >= 0 && len) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

		if (pread(d->fd, buf, n, (off_t)off) != (ssize_t)n ||
		    pwrite(d->out, buf, n, (off_t)off) != (ssize_t)n)
			d->outside++;
		off += n;
		len -= n;
	}
}

static int dev_open(struct dev *d, const char *img, const char *copy)
{
	memset(d, 0, sizeof(*d));
	d->out = -1;
	d->fd = open(img, O_RDONLY);
	if (d->fd < 0)
		return -1;
	d->size = (uint64_t)lseek(d->fd, 0, SEEK_END);
	d->bits = calloc(d->size / BLK + 1, 1);
	if (copy) {
		/* The destination's old contents: garbage, not zeros. */
		static uint8_t g[1 << 20];
		uint64_t o;

		memset(g, GARB, sizeof(g));
		d->out = open(copy, O_RDWR | O_CREAT | O_TRUNC, 0644);
		for (o = 0; d->out >= 0 && o < d->size; o += sizeof(g))
			if (pwrite(d->out, g, d->size - o < sizeof(g) ? d->size - o : sizeof(g),
				   (off_t)o) < 0)
				return -1;
	}
	return d->bits && (!copy || d->out >= 0) ? 0 : -1;
}

static void dev_close(struct dev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->out >= 0)
		close(d->out);
	free(d->bits);
	d->fd = d->out = -1;
	d->bits = NULL;
}

static struct btrfs_io dev_io(struct dev *d)
{
	struct btrfs_io io = {dev_read, dev_mark, d, d->size};

	return io;
}

/* ---- patterned files: each 4 KiB block names its file and index ------- */

static int write_pattern(const char *path, const char *tag, unsigned blocks)
{
	static uint8_t b[BLK];
	unsigned i;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), r = 0;

	if (fd < 0)
		return -1;
	for (i = 0; i < blocks && !r; i++) {
		size_t j;

		char rec[48];

		snprintf(rec, sizeof(rec), "%-8.8s%08u%-16s", tag, i % 100000000u, "ferry");
		for (j = 0; j < BLK; j += 32)
			memcpy(b + j, rec, 32);
		r = write(fd, b, BLK) == BLK ? 0 : -1;
	}
	close(fd);
	return r;
}

/*
 * Blocks of the image carrying tag's pattern: how many, and how many of
 * them are marked.
 */
static void count_tag(struct dev *d, const char *tag, uint64_t *found, uint64_t *marked)
{
	static uint8_t b[BLK];
	char want[9];
	uint64_t i;

	snprintf(want, sizeof(want), "%-8s", tag);
	*found = *marked = 0;
	for (i = 0; i < d->size / BLK; i++) {
		if (pread(d->fd, b, BLK, (off_t)(i * BLK)) != BLK)
			break;
		if (memcmp(b, want, 8) || memcmp(b + 16, "ferry", 5))
			continue;
		(*found)++;
		*marked += d->bits[i];
	}
}

/* ---- btrfs-progs' own view: extents through its chunk map ------------- */

struct pchunk {
	uint64_t logical, length;
	uint64_t phys[4];
	uint64_t devid[4];
	int n;
};

/*
 * Every allocated extent dump-tree lists, on this device (devid), for
 * single/DUP/RAID1 chunks (what these tests use for a check by extent):
 * the count of 4 KiB blocks and how many of them are not marked.
 */
static int progs_extents(struct dev *d, const char *img, uint64_t devid, uint32_t nodesize,
			 uint64_t *blocks, uint64_t *missing)
{
	static struct pchunk ch[256];
	char cmd[512], *line = NULL;
	size_t cap = 0, nch = 0, i;
	FILE *f;

	*blocks = *missing = 0;
	snprintf(cmd, sizeof(cmd), "btrfs inspect-internal dump-tree -t chunk '%s' 2>/dev/null",
		 img);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long a, b, c;

		if (sscanf(line, " item %*u key (FIRST_CHUNK_TREE CHUNK_ITEM %llu)", &a) == 1 &&
		    nch < 256) {
			memset(&ch[nch], 0, sizeof(ch[0]));
			ch[nch++].logical = a;
		} else if (nch && sscanf(line, " length %llu", &a) == 1) {
			ch[nch - 1].length = a;
		} else if (nch &&
			   sscanf(line, " stripe %llu devid %llu offset %llu", &a, &b, &c) == 3 &&
			   ch[nch - 1].n < 4) {
			ch[nch - 1].devid[ch[nch - 1].n] = b;
			ch[nch - 1].phys[ch[nch - 1].n++] = c;
		}
	}
	pclose(f);
	snprintf(cmd, sizeof(cmd), "btrfs inspect-internal dump-tree -t extent '%s' 2>/dev/null",
		 img);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long a, b;
		char ty[32];
		uint64_t len;

		if (sscanf(line, " item %*u key (%llu %31s %llu)", &a, ty, &b) != 3)
			continue;
		if (!strcmp(ty, "EXTENT_ITEM"))
			len = b;
		else if (!strcmp(ty, "METADATA_ITEM"))
			len = nodesize;
		else
			continue;
		for (i = 0; i < nch; i++) {
			int s;

			if (a < ch[i].logical || a >= ch[i].logical + ch[i].length)
				continue;
			for (s = 0; s < ch[i].n; s++) {
				uint64_t p = ch[i].phys[s] + (a - ch[i].logical), x;

				if (ch[i].devid[s] != devid)
					continue;
				for (x = p / BLK; x < (p + len) / BLK; x++) {
					(*blocks)++;
					*missing += !d->bits[x];
				}
			}
		}
	}
	free(line);
	pclose(f);
	return nch ? 0 : -1;
}

static uint64_t sb_u64(const char *img, const char *field)
{
	char out[128];
	unsigned long long v = 0;

	if (capture(out, sizeof(out),
		    "btrfs inspect-internal dump-super '%s' | awk '$1 == \"%s\" {print $2}'", img,
		    field) == 0)
		sscanf(out, "%llu", &v);
	return v;
}

/* ---- the cases ------------------------------------------------------- */

static char M[96], C[96];

/* The whole check of one device's map against the image and btrfs-progs. */
static void check_map(struct dev *d, const char *img, const char *what, uint64_t devid)
{
	uint64_t found, hit, blocks, missing, used = sb_u64(img, "bytes_used");
	uint32_t ns = (uint32_t)sb_u64(img, "nodesize");

	is_int(d->outside, 0, "no mark past the device");
	count_tag(d, "KEEP", &found, &hit);
	ok(found > 0 && hit == found,
	   "%s: every block of kept files is marked (%" PRIu64 "/%" PRIu64 ")", what, hit, found);
	count_tag(d, "DEL", &found, &hit);
	ok(found > 0 && hit == 0,
	   "%s: no block of deleted files is marked (%" PRIu64 " of %" PRIu64 ")", what, hit,
	   found);
	if (progs_extents(d, img, devid, ns, &blocks, &missing) == 0)
		ok(blocks > 0 && missing == 0,
		   "%s: every extent dump-tree lists is marked (%" PRIu64 " blocks, %" PRIu64
		   " missing)",
		   what, blocks, missing);
	else
		ok(0, "%s: dump-tree could be read", what);
	note("%s: marked %" PRIu64 " KiB, bytes_used %" PRIu64 " KiB", what, d->marked * 4,
	     used / 1024);
}

static void case_single(void)
{
	char img[96], copy[96], why[256] = "", sums[256];
	struct btrfs_stats st;
	struct btrfs_io io;
	struct dev d;
	int r;

	snprintf(img, sizeof(img), "%s/one.img", T);
	snprintf(copy, sizeof(copy), "%s/one.copy", T);
	if (run("truncate -s 320M %s && mkfs.btrfs -q -f %s >/dev/null && mount -o loop %s %s", img,
		img, img, M)) {
		ok(0, "mkfs.btrfs and mount");
		return;
	}
	{
		char p[160];

		snprintf(p, sizeof(p), "%s/keep1", M);
		write_pattern(p, "KEEP", 3000);
		snprintf(p, sizeof(p), "%s/del1", M);
		write_pattern(p, "DEL", 5000);
		run("btrfs -q subvolume create %s/sv >/dev/null && sync", M);
		snprintf(p, sizeof(p), "%s/sv/keep2", M);
		write_pattern(p, "KEEP", 2000);
		snprintf(p, sizeof(p), "%s/sv/del2", M);
		write_pattern(p, "DEL", 1000);
		run("sync && btrfs -q subvolume snapshot %s/sv %s/snap >/dev/null && sync", M, M);
		run("rm %s/del1 %s/sv/del2 %s/snap/del2 && sync", M, M, M);
	}
	run("(cd %s && find . -type f | sort | xargs md5sum) > %s/one.sums; umount %s", M, T, M);

	/* Unmounted: the on-disk trees. */
	if (dev_open(&d, img, copy)) {
		ok(0, "open the image");
		return;
	}
	io = dev_io(&d);
	r = bm_btrfs_scan(&io, &st, why, sizeof(why));
	ok(r == 0 && !st.note[0] && !st.chunk_level, "unmounted scan: %d %s %s", r, why, st.note);
	note("%" PRIu64 " chunks, %" PRIu64 " tree blocks read, %" PRIu64 " bytes whole", st.chunks,
	     st.nodes, st.whole_bytes);
	is_int(st.extent_bytes, sb_u64(img, "bytes_used"), "the extents add up to bytes_used");
	check_map(&d, img, "unmounted", 1);
	dev_close(&d);
	ok(run("btrfs check --readonly %s >%s/check.log 2>&1", copy, T) == 0,
	   "only the marked bytes over garbage: btrfs check is clean");
	ok(run("mount -o loop,ro %s %s && (cd %s && md5sum -c --quiet %s/one.sums); r=$?; "
	       "umount %s; exit $r",
	       copy, C, C, T, C) == 0,
	   "only the marked bytes over garbage: every file identical");

	/* Mounted: the kernel's trees, after a sync. */
	if (run("mount -o loop %s %s", img, M)) {
		ok(0, "mount again");
		return;
	}
	{
		char p[160];

		snprintf(p, sizeof(p), "%s/keep3", M);
		write_pattern(p, "KEEP", 700);
		snprintf(p, sizeof(p), "%s/del3", M);
		write_pattern(p, "DEL", 700);
		run("sync && rm %s/del3 && sync", M);
	}
	run("(cd %s && find . -type f | sort | xargs md5sum) > %s/one.sums", M, T);
	if (dev_open(&d, img, copy)) {
		ok(0, "open the image");
		return;
	}
	{
		uint8_t b[BTRFS_SB_LEN];
		struct btrfs_sb sb;

		/*
		 * Frozen, as for the agent's final pass: a background commit
		 * between the scan and dump-tree would make them disagree.
		 */
		run("fsfreeze -f %s", M);
		io = dev_io(&d);
		r = pread(d.fd, b, sizeof(b), BTRFS_SB_OFF) == (ssize_t)sizeof(b) ? 0 : -EIO;
		if (!r)
			r = bm_btrfs_sb(b, d.size, &sb, why, sizeof(why));
		if (!r)
			r = bm_btrfs_scan_mounted(M, &sb, &io, &st, why, sizeof(why));
		ok(r == 0, "mounted scan: %d %s", r, why);
		/* Another filesystem's mount point is refused, not trusted. */
		r = bm_btrfs_scan_mounted("/", &sb, &io, &st, why, sizeof(why));
		ok(r != 0, "a mount of another filesystem is refused (%d)", r);
	}
	/* Before the umount, whose commit rewrites tree blocks. */
	check_map(&d, img, "mounted", 1);
	run("fsfreeze -u %s; umount %s", M, M);
	dev_close(&d);
	ok(run("btrfs check --readonly %s >%s/check.log 2>&1", copy, T) == 0,
	   "mounted map over garbage: btrfs check is clean");
	snprintf(sums, sizeof(sums), "%s/one.sums", T);
	ok(run("mount -o loop,ro %s %s && (cd %s && md5sum -c --quiet %s); r=$?; umount %s; "
	       "exit $r",
	       copy, C, C, sums, C) == 0,
	   "mounted map over garbage: every file identical");
}

/* Two devices: RAID0 data, RAID1 metadata. Each device maps only its stripes. */
static void case_raid(void)
{
	char a[96], b[96], ca[96], cb[96], why[256] = "", la[64] = "", lb[64] = "";
	struct btrfs_stats st;
	struct btrfs_io io;
	struct dev d;
	uint64_t marked[2];
	int r, i;

	snprintf(a, sizeof(a), "%s/ra.img", T);
	snprintf(b, sizeof(b), "%s/rb.img", T);
	snprintf(ca, sizeof(ca), "%s/ra.copy", T);
	snprintf(cb, sizeof(cb), "%s/rb.copy", T);
	if (run("truncate -s 256M %s %s && mkfs.btrfs -q -f -d raid0 -m raid1 %s %s >/dev/null", a,
		b, a, b) ||
	    capture(la, sizeof(la), "losetup -f --show %s", a) ||
	    capture(lb, sizeof(lb), "losetup -f --show %s", b) ||
	    run("btrfs device scan %s %s >/dev/null && mount %s %s", la, lb, la, M)) {
		ok(0, "mkfs.btrfs raid0/raid1 on two loop devices and mount");
		goto out;
	}
	{
		char p[160];

		snprintf(p, sizeof(p), "%s/keep", M);
		write_pattern(p, "KEEP", 6000);
		snprintf(p, sizeof(p), "%s/del", M);
		write_pattern(p, "DEL", 3000);
		run("sync && rm %s/del && sync", M);
	}
	/* The kernel must forget these devices, or it takes the copies for them. */
	run("(cd %s && md5sum keep) > %s/raid.sums; umount %s; "
	    "btrfs device scan --forget %s %s >/dev/null 2>&1; losetup -d %s %s",
	    M, T, M, la, lb, la, lb);
	la[0] = lb[0] = 0;
	for (i = 0; i < 2; i++) {
		const char *img = i ? b : a;
		uint64_t found, hit;

		if (dev_open(&d, img, i ? cb : ca)) {
			ok(0, "open %s", img);
			goto out;
		}
		io = dev_io(&d);
		r = bm_btrfs_scan(&io, &st, why, sizeof(why));
		ok(r == 0 && !st.note[0], "raid device %d: %d %s %s", i + 1, r, why, st.note);
		is_int(d.outside, 0, "no mark past the device");
		count_tag(&d, "KEEP", &found, &hit);
		ok(found > 0 && hit == found,
		   "raid device %d: its stripes of the file are marked "
		   "(%" PRIu64 "/%" PRIu64 ")",
		   i + 1, hit, found);
		count_tag(&d, "DEL", &found, &hit);
		ok(found > 0 && hit == 0,
		   "raid device %d: no deleted block marked (%" PRIu64 " of %" PRIu64 ")", i + 1,
		   hit, found);
		marked[i] = d.marked * BLK;
		dev_close(&d);
	}
	/* RAID0: each device holds about half the data, not all of it. */
	ok(marked[0] < 20 * MiB && marked[1] < 20 * MiB,
	   "each device marks only its share (%" PRIu64 " and %" PRIu64 " KiB of a 23 MiB file)",
	   marked[0] / 1024, marked[1] / 1024);
	if (capture(la, sizeof(la), "losetup -f --show %s", ca) ||
	    capture(lb, sizeof(lb), "losetup -f --show %s", cb) ||
	    run("btrfs device scan %s %s >/dev/null", la, lb)) {
		ok(0, "loop the copies");
		goto out;
	}
	ok(run("btrfs check --readonly %s >%s/check.log 2>&1", la, T) == 0,
	   "raid copies over garbage: btrfs check is clean");
	ok(run("mount -o ro %s %s && (cd %s && md5sum -c --quiet %s/raid.sums); r=$?; "
	       "umount %s; exit $r",
	       la, C, C, T, C) == 0,
	   "raid copies over garbage: the file is identical");
out:
	if (la[0] && lb[0])
		run("btrfs device scan --forget %s %s >/dev/null 2>&1; losetup -d %s %s", la, lb,
		    la, lb);
}

/* ---- damage: each must be refused (the caller then sends whole) -------- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void fix_csum(uint8_t *b, size_t len)
{
	put32(b, ~bm_btrfs_crc32c(~0u, b + 32, len - 32));
}

/* Physical offset of mirror 1 of logical, per btrfs-map-logical. */
static uint64_t map_logical(const char *img, uint64_t logical)
{
	char out[256];
	unsigned long long p = 0;

	if (capture(out, sizeof(out), "btrfs-map-logical -l %" PRIu64 " %s 2>/dev/null | head -n 1",
		    logical, img) == 0)
		sscanf(out, "mirror 1 logical %*u physical %llu", &p);
	return p;
}

/* Copies img, lets edit damage it at off (len bytes), and scans the copy. */
static int damaged(const char *img, uint64_t off, size_t len, void (*edit)(uint8_t *b, size_t len),
		   char *why, size_t whycap)
{
	char bad[96];
	uint8_t *b = malloc(len);
	struct btrfs_stats st;
	struct btrfs_io io;
	struct dev d;
	int fd, r = -1;

	snprintf(bad, sizeof(bad), "%s/bad.img", T);
	if (!b || run("cp --sparse=always %s %s", img, bad))
		goto out;
	fd = open(bad, O_RDWR);
	if (fd < 0 || pread(fd, b, len, (off_t)off) != (ssize_t)len)
		goto out;
	edit(b, len);
	if (pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
		goto out;
	close(fd);
	if (dev_open(&d, bad, NULL))
		goto out;
	io = dev_io(&d);
	r = bm_btrfs_scan(&io, &st, why, whycap);
	dev_close(&d);
out:
	free(b);
	return r;
}

static void ed_flip(uint8_t *b, size_t len)
{
	b[len / 2] ^= 0x40;
}

static void ed_nritems(uint8_t *b, size_t len)
{
	put32(b + 0x60, 5000);
	fix_csum(b, len);
}

static void ed_item_off(uint8_t *b, size_t len)
{
	put32(b + BTRFS_HDR_LEN + BTRFS_KEY_LEN, (uint32_t)len);
	fix_csum(b, len);
}

static void ed_level(uint8_t *b, size_t len)
{
	b[0x64] = 3;
	fix_csum(b, len);
}

static void ed_sys_array(uint8_t *b, size_t len)
{
	put32(b + 0xa0, 40); /* a key and part of a chunk */
	fix_csum(b, len);
}

static void ed_sys_stripes(uint8_t *b, size_t len)
{
	/* The first chunk's num_stripes: more stripes than bytes. */
	b[0x32b + BTRFS_KEY_LEN + 44] = 200;
	fix_csum(b, len);
}

static void case_damage(void)
{
	char img[96], why[256];
	uint64_t chunk_root, root, phys;
	uint32_t ns;
	int r;

	snprintf(img, sizeof(img), "%s/one.img", T);
	chunk_root = sb_u64(img, "chunk_root");
	root = sb_u64(img, "root");
	ns = (uint32_t)sb_u64(img, "nodesize");
	if (!chunk_root || !root || !ns) {
		ok(0, "read the superblock with dump-super");
		return;
	}
	r = damaged(img, BTRFS_SB_OFF, BTRFS_SB_LEN, ed_flip, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "CRC32C"), "superblock with a bad CRC: %d %s", r, why);
	r = damaged(img, BTRFS_SB_OFF, BTRFS_SB_LEN, ed_sys_array, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "sys_chunk_array"), "sys_chunk_array cut short: %d %s", r,
	   why);
	r = damaged(img, BTRFS_SB_OFF, BTRFS_SB_LEN, ed_sys_stripes, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "sys_chunk_array"), "sys chunk with 200 stripes: %d %s", r,
	   why);
	phys = map_logical(img, chunk_root);
	ok(phys > 0, "btrfs-map-logical finds the chunk root");
	r = damaged(img, phys, ns, ed_nritems, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "items at level"), "chunk root with nritems 5000: %d %s", r,
	   why);
	r = damaged(img, phys, ns, ed_flip, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "CRC32C"), "chunk root with a bad CRC: %d %s", r, why);
	r = damaged(img, phys, ns, ed_item_off, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "outside the block"), "item data past the block: %d %s", r,
	   why);
	phys = map_logical(img, root);
	r = damaged(img, phys, ns, ed_level, why, sizeof(why));
	ok(r == -EUCLEAN && strstr(why, "level"), "root tree block at the wrong level: %d %s", r,
	   why);
}

int main(void)
{
	char v[256];

	if (geteuid() != 0) {
		skip("needs root for loop mounts");
		return tap_done();
	}
	if (capture(v, sizeof(v), "mkfs.btrfs --version 2>/dev/null") || !v[0] ||
	    run("command -v btrfs-map-logical >/dev/null")) {
		skip("btrfs-progs is not installed (scripts/deps.sh)");
		return tap_done();
	}
	if (run("grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null")) {
		skip("this kernel has no btrfs");
		return tap_done();
	}
	snprintf(T, sizeof(T), "/tmp/ferry-btrfs.XXXXXX");
	if (!mkdtemp(T))
		return 1;
	snprintf(M, sizeof(M), "%s/m", T);
	snprintf(C, sizeof(C), "%s/c", T);
	mkdir(M, 0755);
	mkdir(C, 0755);
	case_single();
	case_damage();
	case_raid();
	run("umount %s 2>/dev/null; umount %s 2>/dev/null; rm -rf %s", M, C, T);
	return tap_done();
}
