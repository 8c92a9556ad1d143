/*
 * test_fat.c - the FAT reader on images made by the real tools: a GPT
 * disk with FAT32 (an ESP), FAT16 and FAT12 partitions made by mkfs.vfat,
 * filled with mtools, some files deleted. Each partition's map must be
 * exactly its reserved sectors, FATs and root directory (from minfo)
 * plus the clusters of every file and directory (mshowfat), at two chunk
 * sizes; the deleted files' clusters are left out. Then damaged boot
 * sectors and FATs (one per check) are sent whole. Last, the formats
 * sent whole on purpose (LUKS by cryptsetup, bcache by make-bcache) are
 * named with their reason. No root needed.
 */
#include "blockmap/reader.h"
#include "common/common.h"
#include "tests/tap.h"
#include "tests/fsimg.h"

#define SEC 512u

struct fatv {
	uint64_t bps, spc, reserved, nfats, fatlen, root_ents;
	uint64_t data_start; /* bytes from the partition start */
};

static uint64_t minfo_num(const char *out, const char *key)
{
	const char *p = strstr(out, key);
	unsigned long long x = 0;

	if (p)
		sscanf(p + strlen(key), " %llu", &x);
	return x;
}

/* Geometry as mtools reads it. */
static int fat_view(const char *img, uint64_t off, struct fatv *v)
{
	static char out[8192];

	if (capture(out, sizeof(out), "MTOOLS_SKIP_CHECK=1 minfo -i %s@@%" PRIu64 " ::", img,
		    off) != 0)
		return -1;
	memset(v, 0, sizeof(*v));
	v->bps = minfo_num(out, "sector size:");
	v->spc = minfo_num(out, "cluster size:");
	v->reserved = minfo_num(out, "reserved (boot) sectors:");
	v->nfats = minfo_num(out, "fats:");
	v->fatlen = minfo_num(out, "sectors per fat:");
	if (v->fatlen == 0)
		v->fatlen = minfo_num(out, "Big fatlen=");
	v->root_ents = minfo_num(out, "max available root directory slots:");
	if (!v->bps || !v->spc || !v->reserved || !v->nfats || !v->fatlen)
		return -1;
	v->data_start =
	    (v->reserved + v->nfats * v->fatlen + (v->root_ents * 32 + v->bps - 1) / v->bps) *
	    v->bps;
	return 0;
}

/* Adds the cluster chains mshowfat prints ("::/a <5-590><600>") to want. */
static void add_chains(uint8_t *want, const struct fatv *v, uint64_t start, const char *img,
		       uint64_t off, const char *paths)
{
	char cmd[4096], *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "MTOOLS_SKIP_CHECK=1 mshowfat -i %s@@%" PRIu64 " %s 2>/dev/null",
		 img, off, paths);
	f = popen(cmd, "r");
	while (f && getline(&line, &cap, f) > 0) {
		char *p = line;

		while ((p = strchr(p, '<'))) {
			unsigned long long a, b;
			uint64_t c, i, csize = v->spc * v->bps;

			if (sscanf(p, "<%llu-%llu>", &a, &b) != 2) {
				if (sscanf(p, "<%llu>", &a) != 1) {
					p++;
					continue;
				}
				b = a;
			}
			for (c = a; c <= b; c++) {
				uint64_t s = start + v->data_start + (c - 2) * csize;

				for (i = s / D.chunk; i <= (s + csize - 1) / D.chunk; i++)
					want[i] = 1;
			}
			p++;
		}
	}
	if (f)
		pclose(f);
	free(line);
}

/* Every entry of the filesystem, quoted for a shell, into out. */
static void all_paths(const char *img, uint64_t off, int fat32, char *out, size_t cap)
{
	char list[8192], *tok, *save = NULL;
	size_t o;

	o = (size_t)snprintf(out, cap, "%s", fat32 ? "::/" : "");
	capture(list, sizeof(list), "MTOOLS_SKIP_CHECK=1 mdir -/ -b -i %s@@%" PRIu64 " ::", img,
		off);
	for (tok = strtok_r(list, "\n", &save); tok && o < cap; tok = strtok_r(NULL, "\n", &save))
		o += (size_t)snprintf(out + o, cap - o, " '%s'", tok);
}

static void check_fat(const char *img, int number, int fat32, const char *label)
{
	static char paths[16384];
	const struct bm_part *p = part(number);
	struct fatv v;
	uint8_t *want;
	uint64_t i, extra = 0, absent = 0, nwant = 0, lo, hi;

	if (!ok(p && !strcmp(p->fstype, "vfat") && p->method == BM_USED,
		"%s: partition %d is vfat, used blocks (%s, note \"%s\")", label, number,
		p ? bm_method_name(p->method) : "-", p ? p->note : "-"))
		return;
	if (!ok(fat_view(img, p->start, &v) == 0, "%s: minfo read the boot sector", label))
		return;
	want = calloc(D.nchunks, 1);
	if (!want)
		return;
	for (i = p->start / D.chunk; i <= (p->start + v.data_start - 1) / D.chunk; i++)
		want[i] = 1;
	all_paths(img, p->start, fat32, paths, sizeof(paths));
	add_chains(want, &v, p->start, img, p->start, paths);
	lo = p->start / D.chunk;
	hi = (p->start + p->size + D.chunk - 1) / D.chunk;
	for (i = lo; i < hi; i++) {
		extra += bm_test(&D, i) && !want[i];
		absent += !bm_test(&D, i) && want[i];
		nwant += want[i];
	}
	ok(extra == 0 && absent == 0,
	   "%s (chunk %u): marked chunks are exactly the boot area, FATs, root directory and "
	   "every file's and directory's clusters (%" PRIu64 " extra, %" PRIu64
	   " absent of %" PRIu64 ")",
	   label, D.chunk, extra, absent, nwant);
	note("%s chunk %u: %" PRIu64 " KiB of %" PRIu64 " KiB sent", label, D.chunk,
	     p->used_bytes / 1024, p->size / 1024);
	free(want);
}

/* mkfs.vfat at a sector offset, then files, a directory tree and deletions via mtools. */
static int make_fat(const char *img, const char *opts, uint64_t sec, uint64_t kib, int nfiles)
{
	return run(
	    "set -e; cd %s; export MTOOLS_SKIP_CHECK=1; "
	    "mkfs.vfat %s --offset=%" PRIu64 " %s %" PRIu64 " >/dev/null 2>&1; "
	    "I=%s@@%" PRIu64 "; mmd -i $I ::/EFI ::/EFI/BOOT ::/data; "
	    "head -c 700000 /dev/urandom > f.big; mcopy -i $I f.big ::/EFI/BOOT/BOOTX64.EFI; "
	    "i=0; while [ $i -lt %d ]; do head -c $((i * 531 + 1)) /dev/urandom > f.s; "
	    "mcopy -i $I f.s ::/data/s$i; i=$((i+1)); done; "
	    "head -c 400000 /dev/urandom > f.gone; mcopy -i $I f.gone ::/gone; "
	    "mshowfat -i $I ::/gone > gone.%" PRIu64 "; mdel -i $I ::/gone; "
	    "i=0; while [ $i -lt %d ]; do mdel -i $I ::/data/s$i; i=$((i+3)); done; "
	    "fsck.vfat -n $I >/dev/null 2>&1 || fsck.vfat -n %s >/dev/null 2>&1 || true",
	    T, opts, sec, img, kib, img, sec * SEC, nfiles, sec, nfiles, img);
}

/* Chunks lying wholly in the deleted file's clusters (recorded before mdel): marked? */
static void check_gone(const char *img, int number, uint64_t sec, const char *label)
{
	const struct bm_part *p = part(number);
	char path[160], line[4096], *q;
	struct fatv v;
	uint64_t n = 0, m = 0;
	FILE *f;

	if (!p || fat_view(img, p->start, &v) != 0)
		return;
	snprintf(path, sizeof(path), "%s/gone.%" PRIu64, T, sec);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		for (q = line; (q = strchr(q, '<')); q++) {
			unsigned long long a, b;
			uint64_t lo, hi, i, csize = v.spc * v.bps;

			if (sscanf(q, "<%llu-%llu>", &a, &b) != 2) {
				if (sscanf(q, "<%llu>", &a) != 1)
					continue;
				b = a;
			}
			lo = p->start + v.data_start + (a - 2) * csize;
			hi = p->start + v.data_start + (b - 1) * csize;
			for (i = (lo + D.chunk - 1) / D.chunk; (i + 1) * D.chunk <= hi; i++) {
				n++;
				m += bm_test(&D, i);
			}
		}
	if (f)
		fclose(f);
	ok(n > 0 && m * 10 <= n,
	   "%s: the deleted 400 KB file is left out (%" PRIu64 " of its %" PRIu64 " chunks marked)",
	   label, m, n);
}

static void test_layout(void)
{
	char img[128];
	uint32_t chunks[] = {4096, 65536};
	size_t i;
	int r;

	snprintf(img, sizeof(img), "%s/fat.img", T);
	/* p1 FAT32 ESP 80 MiB, p2 FAT16 32 MiB, p3 FAT12 4 MiB. */
	r = run("rm -f %s; truncate -s 160M %s && printf 'label: gpt\\nstart=2048, size=163840, "
		"type=U\\nstart=165888, size=65536\\nstart=231424, size=8192\\n' | sfdisk -q %s",
		img, img, img);
	r = r || make_fat(img, "-F 32 -s 1 -n ESP", 2048, 81920, 300);
	r = r || make_fat(img, "-F 16 -s 4", 165888, 32768, 120);
	r = r || make_fat(img, "-F 12 -s 2", 231424, 4096, 40);
	if (!ok(r == 0, "GPT with FAT32, FAT16 and FAT12 made by mkfs.vfat, filled by mtools"))
		return;
	ok(run("MTOOLS_SKIP_CHECK=1 minfo -i %s@@%u :: | grep -q 'FAT32' && "
	       "MTOOLS_SKIP_CHECK=1 minfo -i %s@@%u :: | grep -q 'FAT16' && "
	       "MTOOLS_SKIP_CHECK=1 minfo -i %s@@%u :: | grep -q 'FAT12'",
	       img, 2048 * SEC, img, 165888 * SEC, img, 231424 * SEC) == 0,
	   "mtools sees FAT32, FAT16 and FAT12");
	for (i = 0; i < FERRY_ARRAY_LEN(chunks); i++) {
		if (!ok(probe(img, chunks[i]) == 0, "probed at chunk %u (%s)", chunks[i], ERR))
			continue;
		check_fat(img, 1, 1, "FAT32 p1");
		check_fat(img, 2, 0, "FAT16 p2");
		check_fat(img, 3, 0, "FAT12 p3");
		if (chunks[i] == 4096) {
			check_gone(img, 1, 2048, "FAT32 p1");
			check_gone(img, 2, 165888, "FAT16 p2");
			check_gone(img, 3, 231424, "FAT12 p3");
		}
		bm_free(&D);
	}
}

/* ---- damaged: each bound, sent whole ------------------------------------ */

static int poke(const char *img, uint64_t off, const uint8_t *b, size_t n)
{
	int fd = open(img, O_WRONLY);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = pwrite(fd, b, n, (off_t)off);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

static void damaged(const char *base, const char *what, uint64_t off, const uint8_t *b, size_t n,
		    const char *why)
{
	char img[128];

	snprintf(img, sizeof(img), "%s/bad.img", T);
	if (run("cp %s %s", base, img) || poke(img, off, b, n)) {
		ok(0, "%s: image made", what);
		return;
	}
	if (!ok(probe(img, 4096) == 0, "%s: probed (%s)", what, ERR))
		return;
	ok(!strcmp(D.fstype, "vfat") && D.method == BM_WHOLE && D.map_bytes == D.size &&
	       strstr(D.note, why) && strstr(LOG, "sending it whole"),
	   "%s: blkid says %s, sent whole with a WARN (note \"%s\", want \"%s\")", what, D.fstype,
	   D.note, why);
	bm_free(&D);
}

static void test_damaged(void)
{
	char b16[128], b32[128];
	uint8_t x[4];

	snprintf(b16, sizeof(b16), "%s/b16.img", T);
	snprintf(b32, sizeof(b32), "%s/b32.img", T);
	if (run("cd %s && rm -f b16.img b32.img && mkfs.vfat -F 16 -C b16.img 16384 >/dev/null && "
		"mkfs.vfat -F 32 -s 1 -C b32.img 40960 >/dev/null",
		T) != 0) {
		ok(0, "bare FAT16 and FAT32 images made");
		return;
	}
	if (ok(probe(b16, 4096) == 0 && D.method == BM_USED, "bare FAT16: used blocks"))
		bm_free(&D);
	/* FAT entry 0 no longer carries the media byte (0xf8). */
	x[0] = 0x12;
	damaged(b16, "FAT16 entry 0 without the media byte", 4 * SEC, x, 1, "media byte");
	/* Total sectors (FAT32: the 32-bit field) past the image. */
	x[0] = 0xff, x[1] = 0xff, x[2] = 0xff, x[3] = 0x00;
	damaged(b32, "FAT32 claiming 8 GiB", 32, x, 4, "on a volume of");
	/* Sectors per FAT 1: too small for the clusters. */
	x[0] = 1, x[1] = 0;
	damaged(b16, "FAT16 with a 1-sector FAT", 22, x, 2, "a FAT of 512 bytes");
	/* FAT32: root directory cluster past the last. */
	x[0] = 0xff, x[1] = 0xff, x[2] = 0xff, x[3] = 0x0f;
	damaged(b32, "FAT32 root cluster 0x0fffffff", 44, x, 4, "root directory cluster");
	/* FAT32: mirroring off, active FAT 3 of 2. */
	x[0] = 0x83, x[1] = 0;
	damaged(b32, "FAT32 active FAT 3 of 2", 40, x, 2, "active FAT 3");
}

/* ---- named and sent whole on purpose ------------------------------------ */

static void test_whole_types(void)
{
	char img[128], how[128];
	const struct bm_part *p;
	int r;

	if (run("command -v cryptsetup >/dev/null && command -v make-bcache >/dev/null") != 0) {
		skip("cryptsetup or make-bcache not installed (cryptsetup-bin, bcache-tools)");
		return;
	}
	snprintf(img, sizeof(img), "%s/whole.img", T);
	r = run(
	    "set -e; cd %s; rm -f whole.img l.img b.img; truncate -s 64M whole.img; "
	    "printf 'label: gpt\\nstart=2048, size=40960\\nstart=43008, size=32768\\n"
	    "start=75776, size=8192\\n' | sfdisk -q whole.img; "
	    "truncate -s 20M l.img; printf secret > key; cryptsetup luksFormat -q --type luks2 "
	    "--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file key l.img; "
	    "truncate -s 16M b.img; make-bcache -B b.img >/dev/null; "
	    "dd if=l.img of=whole.img bs=512 seek=2048 conv=notrunc status=none; "
	    "dd if=b.img of=whole.img bs=512 seek=43008 conv=notrunc status=none; "
	    "head -c 4M /dev/urandom | dd of=whole.img bs=512 seek=75776 conv=notrunc status=none",
	    T);
	if (!ok(r == 0, "GPT with LUKS2 (cryptsetup), a bcache backing device, random data"))
		return;
	if (!ok(probe(img, 65536) == 0, "probed (%s)", ERR))
		return;
	p = part(1);
	if (p)
		bm_describe(p->method, p->note, how, sizeof(how));
	ok(p && !strcmp(p->fstype, "crypto_LUKS") && p->method == BM_WHOLE &&
	       !strcmp(how, "sent whole (encrypted)") && all_marked(p->start, p->start + p->size),
	   "partition 1: %s, \"%s\"", p ? p->fstype : "-", p ? how : "-");
	p = part(2);
	ok(p && !strcmp(p->fstype, "bcache") && p->method == BM_WHOLE &&
	       !strcmp(p->note, "bcache device") && all_marked(p->start, p->start + p->size),
	   "partition 2: %s, sent whole (%s)", p ? p->fstype : "-", p ? p->note : "-");
	p = part(3);
	ok(p && !p->fstype[0] && p->method == BM_WHOLE && !p->note[0] &&
	       all_marked(p->start, p->start + p->size),
	   "partition 3: nothing recognised, sent whole");
	ok(!strstr(LOG, "sending it whole"), "no warning: these are sent whole on purpose");
	bm_free(&D);
}

int main(void)
{
	static const char *const tools[] = {"sfdisk",	"mkfs.vfat", "fsck.vfat", "mcopy",
					    "mshowfat", "minfo",     "mdir",	  "blkid"};
	size_t i;

	log_init("test_fat", LOG_LVL_INFO);
	for (i = 0; i < FERRY_ARRAY_LEN(tools); i++) {
		if (run("PATH=$PATH:/sbin:/usr/sbin command -v %s >/dev/null", tools[i]) != 0) {
			char w[96];

			snprintf(w, sizeof(w), "%s not installed: no images can be made", tools[i]);
			skip(w);
			return tap_done();
		}
	}
	snprintf(T, sizeof(T), "%s/ferry-fat-XXXXXX",
		 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 40 ? getenv("TMPDIR") : "/tmp");
	if (!ok(mkdtemp(T) != NULL, "temp dir"))
		return tap_done();
	test_layout();
	test_damaged();
	test_whole_types();
	if (!getenv("FERRY_TEST_KEEP"))
		run("rm -rf %s", T);
	return tap_done();
}
