/*
 * test_xfs.c - the XFS reader and the mounted path on images made by the
 * real tools: mkfs.xfs (v5 with 4 KiB blocks, v4 with 1 KiB blocks and a
 * two-level free-space tree), files written through a loop mount and some
 * deleted; each map against xfs_db's own free-space list (freesp -d
 * minus the AG free list), and the deleted file's blocks left out. Then
 * damaged images (xfs_db -x, one per check: AGF magic, numrecs, a pointer
 * outside the AG, a loop, agcount, a CRC, a dirty log) sent whole; the
 * mounted path (GETFSMAP) on XFS and ext4 while files are written; an
 * ext4 read through a volume in three pieces. Needs root (loop devices).
 */
#include <sys/stat.h>

#include "blockmap/reader.h"
#include "common/common.h"
#include "tests/tap.h"
#include "tests/fsimg.h"

#define XFS_PART_OFF (1 * MiB)
#define XFS_PART_LEN (360 * MiB)
#define XFS_DISK_LEN (400 * MiB)

struct xv {
	uint64_t bs, agcount, agblocks, dblocks;
	uint8_t *used; /* one byte per fs block (linear: agno * agblocks + agbno) */
};

static int xv_num(const char *dev, const char *cmd, const char *field, uint64_t *out)
{
	char buf[256], pat[64];
	unsigned long long x;

	if (capture(buf, sizeof(buf), "xfs_db -r -c '%s' -c 'p %s' %s 2>/dev/null", cmd, field,
		    dev) != 0)
		return -1;
	snprintf(pat, sizeof(pat), "%s = %%llu", field);
	if (sscanf(buf, pat, &x) != 1)
		return -1;
	*out = x;
	return 0;
}

/* xfs_db's view: free extents (freesp -d) that are not on the AG free list. */
static int xfs_view(const char *dev, struct xv *v)
{
	char cmd[256], *line = NULL;
	size_t cap = 0;
	uint64_t a, b;
	FILE *f;

	memset(v, 0, sizeof(*v));
	if (xv_num(dev, "sb 0", "blocksize", &v->bs) ||
	    xv_num(dev, "sb 0", "agcount", &v->agcount) ||
	    xv_num(dev, "sb 0", "agblocks", &v->agblocks) ||
	    xv_num(dev, "sb 0", "dblocks", &v->dblocks))
		return -1;
	v->used = malloc(v->agcount * v->agblocks);
	if (!v->used)
		return -1;
	memset(v->used, 1, v->agcount * v->agblocks);
	snprintf(cmd, sizeof(cmd), "xfs_db -r -c 'freesp -d' %s 2>/dev/null", dev);
	f = popen(cmd, "r");
	while (f && getline(&line, &cap, f) > 0) {
		unsigned long long ag, bno, len;

		if (strstr(line, "from"))
			break; /* the histogram after the list */
		if (sscanf(line, "%llu %llu %llu", &ag, &bno, &len) == 3 && ag < v->agcount &&
		    bno + len <= v->agblocks)
			memset(v->used + ag * v->agblocks + bno, 0, len);
	}
	if (f)
		pclose(f);
	for (a = 0; a < v->agcount; a++) {
		char *tok, *save = NULL;

		snprintf(cmd, sizeof(cmd),
			 "xfs_db -r -c 'agfl %" PRIu64 "' -c 'p bno' %s 2>/dev/null", a, dev);
		f = popen(cmd, "r");
		while (f && getline(&line, &cap, f) > 0)
			for (tok = strtok_r(line, " \n", &save); tok;
			     tok = strtok_r(NULL, " \n", &save)) {
				unsigned long long i, x;

				if (sscanf(tok, "%llu:%llu", &i, &x) == 2 && x < v->agblocks)
					v->used[a * v->agblocks + x] = 1;
			}
		if (f)
			pclose(f);
	}
	free(line);
	for (b = v->dblocks; b < v->agcount * v->agblocks; b++)
		v->used[b] = 0; /* the last AG is short */
	return 0;
}

/* The partition's set chunks are exactly those holding a used block. */
static void check_xfs(const char *dev, const char *name, uint64_t start, uint64_t size)
{
	struct xv v;
	uint8_t *want;
	uint64_t b, i, nused = 0, missing = 0, extra = 0, absent = 0, want_bytes = 0;
	const struct bm_part *p = part(2);

	if (!ok(xfs_view(dev, &v) == 0, "%s: xfs_db read the filesystem", name))
		return;
	want = calloc(D.nchunks, 1);
	for (b = 0; b < v.dblocks && want; b++) {
		uint64_t s = start + b * v.bs;

		if (!v.used[b])
			continue;
		nused++;
		for (i = s / D.chunk; i <= (s + v.bs - 1) / D.chunk; i++)
			want[i] = 1;
		if (!marked(s) || !marked(s + v.bs - 1))
			missing++;
	}
	for (i = start / D.chunk; want && i < (start + size + D.chunk - 1) / D.chunk; i++) {
		extra += bm_test(&D, i) && !want[i];
		absent += !bm_test(&D, i) && want[i];
		want_bytes += want[i] ? D.chunk : 0;
	}
	ok(missing == 0,
	   "%s (chunk %u): every used block (%" PRIu64 " of %" PRIu64 ") lies in a marked chunk "
	   "(%" PRIu64 " do not)",
	   name, D.chunk, nused, v.dblocks, missing);
	ok(extra == 0 && absent == 0,
	   "%s (chunk %u): marked chunks are exactly those holding used blocks (%" PRIu64
	   " extra, %" PRIu64 " absent)",
	   name, D.chunk, extra, absent);
	if (p)
		is_int(p->used_bytes, want_bytes, "used_bytes is the size of those chunks");
	free(want);
	free(v.used);
}

/* Byte ranges of a file on its filesystem (filefrag: FIEMAP, 512-byte units). */
static size_t file_extents(const char *path, uint64_t (*ext)[2], size_t max)
{
	char cmd[256], *line = NULL;
	size_t cap = 0, n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "filefrag -e -b512 %s 2>/dev/null", path);
	f = popen(cmd, "r");
	while (f && n < max && getline(&line, &cap, f) > 0) {
		unsigned long long a, b, c, e;

		if (sscanf(line, " %*u: %llu.. %llu: %llu.. %llu:", &a, &b, &c, &e) == 4) {
			ext[n][0] = c * 512;
			ext[n][1] = (e - c + 1) * 512;
			n++;
		}
	}
	if (f)
		pclose(f);
	free(line);
	return n;
}

/* Bytes of the extents (relative to start) that are marked. */
static uint64_t marked_bytes(uint64_t start, uint64_t (*ext)[2], size_t n)
{
	uint64_t m = 0, o;
	size_t i;

	for (i = 0; i < n; i++)
		for (o = 0; o < ext[i][1]; o += 512)
			m += marked(start + ext[i][0] + o) ? 512 : 0;
	return m;
}

static uint64_t ext_total(uint64_t (*ext)[2], size_t n)
{
	uint64_t t = 0;
	size_t i;

	for (i = 0; i < n; i++)
		t += ext[i][1];
	return t;
}

/*
 * A GPT disk: partition 1 a small unformatted area, 2 the XFS made with
 * mkfs_opts. v5: filled through a loop mount with nfiles small files
 * (every other one deleted, to fragment free space) and an 8 MiB file
 * that is deleted (its extents into gone[]). v4: this kernel does not
 * mount v4, so mkfs.xfs fills it from a prototype file (nothing deleted).
 */
static int make_xfs(const char *img, const char *mkfs_opts, int v4, int nfiles, uint64_t (*gone)[2],
		    size_t *ngone)
{
	char dev[32], mnt[128], path[192];
	int r;

	*ngone = 0;
	r = run("rm -f %s; truncate -s %" PRIu64 " %s && printf 'label: gpt\\n2048,1024\\n%" PRIu64
		",%" PRIu64 "\\n' | sfdisk -q %s",
		img, XFS_DISK_LEN, img, XFS_PART_OFF / 512 + 2048, XFS_PART_LEN / 512, img);
	if (r || loop_at(img, XFS_PART_OFF + MiB, XFS_PART_LEN, 0, dev, sizeof(dev)))
		return -1;
	if (v4) {
		/* Prototype: boot image, block/inode counts, root, then its entries. */
		r = run("set -e; cd %s; mkdir -p p4; head -c 20000000 /dev/urandom > p4/big; "
			"{ echo /dev/null; echo 0 0; echo 'd--755 0 0'; "
			"echo 'big ---644 0 0 %s/p4/big'; echo 'd d--755 0 0'; i=0; "
			"while [ $i -lt %d ]; do head -c $((i * 37 %% 5000 + 1)) /dev/urandom > "
			"p4/s$i; "
			"echo \"s$i ---644 0 0 %s/p4/s$i\"; i=$((i+1)); done; echo '$'; echo '$'; "
			"} > proto4; mkfs.xfs -q -f %s -p proto4 %s",
			T, T, nfiles, T, mkfs_opts, dev);
		loop_free(dev);
		return r;
	}
	r = run("mkfs.xfs -q -f %s %s", mkfs_opts, dev);
	if (!r)
		r = mount_at(dev, "mx", mnt, sizeof(mnt));
	if (!r)
		r = run(
		    "set -e; cd %s; mkdir d; head -c 20000000 /dev/urandom > big; "
		    "i=0; while [ $i -lt %d ]; do head -c 3000 /dev/urandom > d/s$i; i=$((i+1)); "
		    "done; head -c 8388608 /dev/urandom > gone; sync",
		    mnt, nfiles);
	snprintf(path, sizeof(path), "%s/gone", mnt);
	*ngone = r ? 0 : file_extents(path, gone, 64);
	if (!r)
		r = run("set -e; cd %s; rm gone; i=0; while [ $i -lt %d ]; do rm d/s$i; "
			"i=$((i+2)); done; sync",
			mnt, nfiles);
	if (*ngone == 0)
		r = -1;
	umount_at(mnt);
	loop_free(dev);
	return r;
}

static void test_xfs_image(const char *label, const char *mkfs_opts, int v4, int nfiles,
			   int want_levels)
{
	char img[128], dev[32], name[96], lv[64];
	uint64_t gone[64][2], start = XFS_PART_OFF + MiB, levels = 0, a;
	uint32_t chunks[] = {4096, 65536};
	size_t ngone = 0, i;
	const struct bm_part *p;

	snprintf(img, sizeof(img), "%s/%s.img", T, label);
	if (!ok(make_xfs(img, mkfs_opts, v4, nfiles, gone, &ngone) == 0,
		"%s: XFS (%s) made, filled%s (%zu extents of the deleted file)", label, mkfs_opts,
		v4 ? " from a prototype" : " and files deleted", ngone))
		return;
	if (loop_at(img, start, XFS_PART_LEN, 1, dev, sizeof(dev)))
		return;
	for (a = 0; a < 8; a++) {
		uint64_t l = 0;
		char cmd[32];

		snprintf(cmd, sizeof(cmd), "agf %" PRIu64, a);
		if (xv_num(dev, cmd, "bnolevel", &l) == 0 && l > levels)
			levels = l;
	}
	snprintf(lv, sizeof(lv), "%s: free-space tree %" PRIu64 " levels deep (want >= %d)", label,
		 levels, want_levels);
	ok(levels >= (uint64_t)want_levels, "%s", lv);
	for (i = 0; i < FERRY_ARRAY_LEN(chunks); i++) {
		if (!ok(probe(img, chunks[i]) == 0, "%s: probed at chunk %u: %s", label, chunks[i],
			ERR))
			continue;
		p = part(2);
		if (ok(p && !strcmp(p->fstype, "xfs") && p->method == BM_USED && !p->note[0],
		       "%s: partition 2 is xfs, used blocks (%s, note \"%s\")", label,
		       p ? bm_method_name(p->method) : "-", p ? p->note : "-")) {
			snprintf(name, sizeof(name), "%s p2", label);
			check_xfs(dev, name, start, XFS_PART_LEN);
			if (ngone)
				ok(marked_bytes(start, gone, ngone) <= ext_total(gone, ngone) / 10,
				   "%s: the deleted 8 MiB file is left out (%" PRIu64 " of %" PRIu64
				   " bytes marked)",
				   label, marked_bytes(start, gone, ngone), ext_total(gone, ngone));
			note("%s chunk %u: partition %" PRIu64 " MiB, sends %" PRIu64 " KiB", label,
			     chunks[i], XFS_PART_LEN / MiB, p->used_bytes / 1024);
		}
		bm_free(&D);
	}
	loop_free(dev);
}

/* ---- damaged images: each check, sent whole --------------------------- */

/* Applies xfs_db -x commands to partition 2 of img (a copy of base). */
static int damage(const char *base, const char *img, const char *cmds)
{
	char dev[32];
	int r;

	if (run("cp --sparse=always %s %s", base, img) ||
	    loop_at(img, XFS_PART_OFF + MiB, XFS_PART_LEN, 0, dev, sizeof(dev)))
		return -1;
	r = run("xfs_db -x %s %s >/dev/null 2>&1", cmds, dev);
	loop_free(dev);
	return r;
}

static void expect_whole(const char *img, const char *what, const char *why)
{
	const struct bm_part *p;

	if (!ok(probe(img, 65536) == 0, "%s: probe succeeds (%s)", what, ERR))
		return;
	p = part(2);
	ok(p && p->method == BM_WHOLE && all_marked(p->start, p->start + p->size) &&
	       !strncmp(p->note, "unreadable: ", 12) && strstr(p->note, why) &&
	       strstr(LOG, "sending it whole"),
	   "%s: sent whole with a WARN (note \"%s\", want \"%s\")", what, p ? p->note : "-", why);
	bm_free(&D);
}

static void test_xfs_damaged(void)
{
	char base4[128], base5[128], img[128], dev[32], mnt[128], cmds[256];
	uint64_t root = 0, ag, lvl, ptr1 = 0;
	int r, node_ag = -1;

	snprintf(base4, sizeof(base4), "%s/v4.img", T);
	snprintf(base5, sizeof(base5), "%s/v5.img", T);
	snprintf(img, sizeof(img), "%s/bad.img", T);
	if (access(base4, F_OK) != 0 || access(base5, F_OK) != 0) {
		skip("the v4 and v5 images were not made");
		return;
	}
	/* The AG whose free-space tree has a node: pointer damage goes there. */
	if (loop_at(base5, XFS_PART_OFF + MiB, XFS_PART_LEN, 1, dev, sizeof(dev)) == 0) {
		for (ag = 0; ag < 4 && node_ag < 0; ag++) {
			snprintf(cmds, sizeof(cmds), "agf %" PRIu64, ag);
			if (xv_num(dev, cmds, "bnolevel", &lvl) == 0 && lvl >= 2 &&
			    xv_num(dev, cmds, "bnoroot", &root) == 0)
				node_ag = (int)ag;
		}
		if (node_ag >= 0) {
			snprintf(cmds, sizeof(cmds), "agf %d' -c 'addr bnoroot", node_ag);
			xv_num(dev, cmds, "ptrs[1]", &ptr1);
		}
		loop_free(dev);
	}

	if (damage(base5, img, "-c 'agf 1' -c 'write -d magicnum 0x12345678'") == 0)
		expect_whole(img, "v5 AGF 1 bad magic", "AGF magic");
	if (damage(base4, img, "-c 'agf 0' -c 'addr bnoroot' -c 'write numrecs 4000'") == 0)
		expect_whole(img, "v4 bnobt leaf numrecs 4000", "records (at most");
	if (damage(base4, img, "-c 'agf 1' -c 'addr bnoroot' -c 'write magic 0x41423342'") == 0)
		expect_whole(img, "v4 bnobt with the v5 magic", "is not a free-space");
	if (ok(node_ag >= 0, "the v5 image has a free-space tree node (AG %d, root %" PRIu64 ")",
	       node_ag, root)) {
		snprintf(cmds, sizeof(cmds),
			 "-c 'agf %d' -c 'addr bnoroot' -c 'write -d numrecs 2000'", node_ag);
		if (damage(base5, img, cmds) == 0)
			expect_whole(img, "v5 bnobt node numrecs 2000", "records (at most");
		snprintf(cmds, sizeof(cmds),
			 "-c 'agf %d' -c 'addr bnoroot' -c 'write -d ptrs[1] 9999999'", node_ag);
		if (damage(base5, img, cmds) == 0)
			expect_whole(img, "v5 bnobt pointer outside the AG", "outside the AG");
		snprintf(cmds, sizeof(cmds),
			 "-c 'agf %d' -c 'addr bnoroot' -c 'write -d ptrs[2] %" PRIu64 "'", node_ag,
			 root);
		if (damage(base5, img, cmds) == 0)
			expect_whole(img, "v5 bnobt node pointing at itself (a loop)", "at level");
		snprintf(cmds, sizeof(cmds),
			 "-c 'agf %d' -c 'addr bnoroot' -c 'write -d ptrs[2] 0'", node_ag);
		if (damage(base5, img, cmds) == 0)
			expect_whole(img, "v5 bnobt null pointer", "tree block 0");
		/* Two pointers to one leaf: its records would come twice. */
		snprintf(cmds, sizeof(cmds),
			 "-c 'agf %d' -c 'addr bnoroot' -c 'write -d ptrs[2] %" PRIu64 "'", node_ag,
			 ptr1);
		if (ptr1 && damage(base5, img, cmds) == 0)
			expect_whole(img, "v5 bnobt node with a leaf twice", "free extent");
	}
	if (damage(base5, img, "-c 'sb 0' -c 'write -d logstart 999999999999'") == 0)
		expect_whole(img, "v5 superblock log outside the AGs", "is outside the");
	if (damage(base5, img, "-c 'agf 2' -c 'write -d freeblks 7'") == 0)
		expect_whole(img, "v5 AGF free count disagrees with its tree", "AGF 7");
	if (damage(base5, img, "-c 'agf 2' -c 'write -d length 100'") == 0)
		expect_whole(img, "v5 AGF length not the AG size", "expected");
	/* Fields changed without fixing the CRC. */
	if (damage(base5, img, "-c 'agf 2' -c 'write -c btreeblks 5'") == 0)
		expect_whole(img, "v5 AGF with a stale CRC", "CRC mismatch");
	if (damage(base5, img, "-c 'agf 0' -c 'addr bnoroot' -c 'write -c leftsib 5'") == 0)
		expect_whole(img, "v5 bnobt root with a stale CRC", "CRC mismatch");

	/* A dirty log: writes, then a shutdown, then unmount. */
	r = run("cp --sparse=always %s %s", base5, img);
	if (!r)
		r = loop_at(img, XFS_PART_OFF + MiB, XFS_PART_LEN, 0, dev, sizeof(dev));
	if (!r && mount_at(dev, "md", mnt, sizeof(mnt)) == 0) {
		r = run("set -e; head -c 3000000 /dev/urandom > %s/new; xfs_io -c fsync %s/new; "
			"xfs_io -x -c 'shutdown -f' %s",
			mnt, mnt, mnt);
		umount_at(mnt);
		loop_free(dev);
		if (ok(r == 0, "dirty log: written and shut down"))
			expect_whole(img, "v5 with a dirty log", "not cleanly unmounted");
	}
}

/* ---- mounted: GETFSMAP -------------------------------------------------- */

/* A file written while mounted (synced, the trees on disk not yet) is marked. */
static void test_mounted(const char *label, const char *mkfs, uint64_t part_len)
{
	char img[128], dev[32], mnt[128], path[192];
	uint64_t ext[64][2], start = XFS_PART_OFF + MiB;
	size_t n;
	const struct bm_part *p;
	int r;

	snprintf(img, sizeof(img), "%s/m-%s.img", T, label);
	r = run("rm -f %s; truncate -s %" PRIu64 " %s && printf 'label: gpt\\n2048,1024\\n%" PRIu64
		",%" PRIu64 "\\n' | sfdisk -q %s",
		img, XFS_DISK_LEN, img, start / 512, part_len / 512, img);
	if (r || loop_at(img, start, part_len, 0, dev, sizeof(dev)) || run("%s %s", mkfs, dev) ||
	    mount_at(dev, "mm", mnt, sizeof(mnt))) {
		ok(0, "%s: made and mounted", label);
		return;
	}
	/* Written through the mount; fsync commits the log, nothing pushes the trees. */
	snprintf(path, sizeof(path), "%s/live", mnt);
	r = run("head -c 12000000 /dev/urandom > %s && xfs_io -c fsync %s", path, path);
	n = r ? 0 : file_extents(path, ext, 64);
	ok(n > 0, "%s: a 12 MB file written while mounted (%zu extents)", label, n);
	if (ok(probe(img, 65536) == 0, "%s mounted: probed (%s)", label, ERR)) {
		p = part(2);
		ok(p && p->method == BM_USED && !strcmp(p->note, "mounted: GETFSMAP"),
		   "%s mounted: used blocks from the kernel (note \"%s\")", label,
		   p ? p->note : "-");
		ok(marked_bytes(start, ext, n) == ext_total(ext, n),
		   "%s mounted: every block of the live file is marked (%" PRIu64 " of %" PRIu64
		   ")",
		   label, marked_bytes(start, ext, n), ext_total(ext, n));
		if (p)
			ok(p->used_bytes < part_len / 2,
			   "%s mounted: sends %" PRIu64 " KiB of %" PRIu64
			   " MiB, not the whole partition",
			   label, p->used_bytes / 1024, part_len / MiB);
		bm_free(&D);
	}
	umount_at(mnt);
	loop_free(dev);
}

/* ---- an ext4 volume in three pieces ------------------------------------ */

static void test_ext_segments(void)
{
	char fsimg[128], disk[128], out[64];
	struct bm_seg seg[3];
	struct bm_vol v;
	enum bm_method m;
	char note_[BM_NOTE_MAX], err[256];
	uint64_t bs = 4096, blocks = 6144, b, missing = 0, extra = 0, setc = 0;
	uint64_t piece = blocks * bs / 3;
	int fd, r;
	FILE *f;
	char cmd[256], *line = NULL;
	size_t cap = 0;
	uint8_t *freemap;

	snprintf(fsimg, sizeof(fsimg), "%s/seg-fs.img", T);
	snprintf(disk, sizeof(disk), "%s/seg-disk.img", T);
	/* The fs's thirds laid on the disk in reverse order, with gaps. */
	r = run("set -e; rm -f %s %s; mkdir -p %s/segd; head -c 5000000 /dev/urandom > %s/segd/a; "
		"head -c 9000000 /dev/urandom > %s/segd/b; "
		"mkfs.ext4 -q -F -b 4096 -d %s/segd %s %" PRIu64 "k; truncate -s 40M %s; "
		"dd if=%s of=%s bs=%" PRIu64 " skip=0 seek=%" PRIu64
		" count=1 conv=notrunc status=none; "
		"dd if=%s of=%s bs=%" PRIu64 " skip=1 seek=%" PRIu64
		" count=1 conv=notrunc status=none; "
		"dd if=%s of=%s bs=%" PRIu64 " skip=2 seek=%" PRIu64
		" count=1 conv=notrunc status=none",
		fsimg, disk, T, T, T, T, fsimg, blocks * 4, disk, fsimg, disk, piece, (uint64_t)4,
		fsimg, disk, piece, (uint64_t)2, fsimg, disk, piece, (uint64_t)0);
	if (!ok(r == 0, "ext4 of 24 MiB cut in three, laid reversed on a 40 MiB disk"))
		return;
	seg[0] = (struct bm_seg){0, 4 * piece, piece};
	seg[1] = (struct bm_seg){piece, 2 * piece, piece};
	seg[2] = (struct bm_seg){2 * piece, 0, piece};
	memset(&D, 0, sizeof(D));
	snprintf(D.path, sizeof(D.path), "%s", disk);
	D.size = 40 * MiB;
	D.chunk = 4096;
	D.nchunks = D.size / D.chunk;
	D.map = calloc(D.nchunks / 8, 1);
	fd = open(disk, O_RDONLY);
	if (!D.map || fd < 0)
		return;
	memset(&v, 0, sizeof(v));
	v.fd = fd;
	v.size = 3 * piece;
	v.seg = seg;
	v.nseg = 3;
	snprintf(v.what, sizeof(v.what), "LV test/three");
	r = bm_map_vol(&D, &v, "ext4", &m, note_, sizeof(note_), err, sizeof(err));
	ok(r == 0 && m == BM_USED, "three-piece ext4: mapped by its bitmaps (r %d, %s, \"%s\")", r,
	   bm_method_name(m), note_);

	freemap = calloc(blocks, 1);
	snprintf(cmd, sizeof(cmd), "dumpe2fs %s 2>/dev/null | sed -n 's/^  Free blocks: //p'",
		 fsimg);
	f = popen(cmd, "r");
	while (f && freemap && getline(&line, &cap, f) > 0) {
		char *tok, *save = NULL;

		for (tok = strtok_r(line, ", \n", &save); tok;
		     tok = strtok_r(NULL, ", \n", &save)) {
			unsigned long long a, z;

			if (sscanf(tok, "%llu-%llu", &a, &z) != 2 && sscanf(tok, "%llu", &a) == 1)
				z = a;
			for (; a <= z && a < blocks; a++)
				freemap[a] = 1;
		}
	}
	if (f)
		pclose(f);
	free(line);
	for (b = 0; freemap && b < blocks; b++) {
		uint64_t vo = b * bs, dk = seg[vo / piece].disk_off + vo % piece;

		if (!freemap[b] && !marked(dk))
			missing++;
		if (freemap[b] && marked(dk))
			extra++;
	}
	for (b = 0; b < D.nchunks; b++)
		setc += bm_test(&D, b);
	ok(missing == 0 && extra == 0,
	   "three-piece ext4: each block marked where its piece lies iff dumpe2fs has it in use "
	   "(%" PRIu64 " missing, %" PRIu64 " extra)",
	   missing, extra);
	is_int(bm_vol_count(&D, &v), setc * D.chunk, "bm_vol_count counts the pieces' set chunks");
	ok(!marked(12 * MiB) && !marked(28 * MiB), "the gaps between the pieces are not marked");
	snprintf(out, sizeof(out), "%s", note_);
	free(freemap);
	free(D.map);
	memset(&D, 0, sizeof(D));
	close(fd);
}

/* ---- where a partition is mounted -------------------------------------- */

static void test_mount_lookup(void)
{
	char img[128], dev[32], mnt[128], got[BM_PATH_MAX];
	int fd, r;

	snprintf(img, sizeof(img), "%s/ml.img", T);
	if (run("truncate -s 64M %s && mkfs.ext4 -q -F -E offset=%" PRIu64 " %s 32M", img,
		(uint64_t)8 * MiB, img) ||
	    loop_at(img, 8 * MiB, 32 * MiB, 0, dev, sizeof(dev)) ||
	    mount_at(dev, "ml dir", mnt, sizeof(mnt))) {
		ok(0, "ext4 at 8 MiB of an image, loop-mounted on a path with a space");
		return;
	}
	fd = open(img, O_RDONLY);
	r = bm_mount_of_part(fd, 1, 8 * MiB, got, sizeof(got));
	ok(r == 1 && !strcmp(got, mnt),
	   "the image at offset 8 MiB is mounted on \"%s\" (r %d, \"%s\")", mnt, r,
	   r == 1 ? got : "");
	r = bm_mount_of_part(fd, 1, 9 * MiB, got, sizeof(got));
	is_int(r, 0, "at offset 9 MiB nothing is mounted");
	close(fd);
	fd = open(dev, O_RDONLY);
	if (fd >= 0) {
		struct stat st;

		fstat(fd, &st);
		r = bm_mount_of_dev(st.st_rdev, got, sizeof(got));
		ok(r == 1 && !strcmp(got, mnt), "the loop device %s is found by its number", dev);
		close(fd);
	}
	umount_at(mnt);
	loop_free(dev);
}

int main(void)
{
	static const char *const tools[] = {"sfdisk",	"mkfs.xfs", "xfs_db",
					    "xfs_io",	"filefrag", "mkfs.ext4",
					    "dumpe2fs", "losetup",  "mount"};
	const char *why;
	size_t i;

	log_init("test_xfs", LOG_LVL_INFO);
	for (i = 0; i < FERRY_ARRAY_LEN(tools); i++) {
		if (run("PATH=$PATH:/sbin:/usr/sbin command -v %s >/dev/null", tools[i]) != 0) {
			char w[96];

			snprintf(w, sizeof(w), "%s not installed: no images can be made", tools[i]);
			skip(w);
			return tap_done();
		}
	}
	if ((why = fs_cannot())) {
		skip(why);
		return tap_done();
	}
	snprintf(T, sizeof(T), "%s/ferry-xfs-XXXXXX",
		 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 40 ? getenv("TMPDIR") : "/tmp");
	if (!ok(mkdtemp(T) != NULL, "temp dir"))
		return tap_done();

	test_ext_segments();
	test_mount_lookup();
	test_xfs_image("v5", "", 0, 2400, 2);
	test_xfs_image("v4", "-m crc=0 -b size=1024 -d agcount=2", 1, 300, 1);
	if (getenv("FERRY_TEST_ONLY_IMAGES")) {
		fs_cleanup();
		note("kept %s", T);
		return tap_done();
	}
	test_xfs_damaged();
	test_mounted("xfs", "mkfs.xfs -q -f", XFS_PART_LEN);
	test_mounted("ext4", "mkfs.ext4 -q -F", 64 * MiB);

	fs_cleanup();
	if (!getenv("FERRY_TEST_KEEP"))
		run("rm -rf %s", T);
	else
		note("kept %s", T);
	return tap_done();
}
