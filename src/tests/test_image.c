/*
 * test_image.c - src/image against images made by the real qemu-img from
 * one known raw disk (GPT, an ext4 partition with files, random and
 * compressible data at known offsets, holes, a partial last MiB): every
 * format and subformat must read back equal to the raw disk and to
 * `qemu-img convert -O raw`, report qemu's virtual size, and map every
 * non-zero chunk with about as many allocated bytes as `qemu-img map`
 * says hold data. Then each refusal class, on images qemu-img made and we
 * patched: the message must carry the seed tool's words and the reason.
 * Needs qemu-img (qemu-utils); skips with a reason without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "image/image.h"
#include "tests/tap.h"

#define MIB	 (1024ull * 1024)
#define RAW_SIZE (64 * MIB)
#define CHUNK	 (64u * 1024)
#define META	 "failed to obtain the metadata of the image file: "
#define UNZ	 "image decompression failed: "

static char dir[64];
static uint8_t *raw;  /* the source disk */
static uint8_t *got;  /* what img_read gave */
static uint8_t *want; /* qemu-img convert -O raw */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd);
}

static const char *P(const char *name)
{
	static char buf[8][256];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* ---- file patching -------------------------------------------------------- */

static uint64_t get_be(const char *path, uint64_t off, int n)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;
	int fd = open(path, O_RDONLY), i;

	if (fd < 0 || pread(fd, b, (size_t)n, (off_t)off) != n)
		v = ~0ull;
	else
		for (i = 0; i < n; i++)
			v = v << 8 | b[i];
	if (fd >= 0)
		close(fd);
	return v;
}

static uint64_t get_le(const char *path, uint64_t off, int n)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;
	int fd = open(path, O_RDONLY), i;

	if (fd < 0 || pread(fd, b, (size_t)n, (off_t)off) != n)
		v = ~0ull;
	else
		for (i = n - 1; i >= 0; i--)
			v = v << 8 | b[i];
	if (fd >= 0)
		close(fd);
	return v;
}

static void put(const char *path, uint64_t off, int n, uint64_t v, int le)
{
	uint8_t b[8];
	int fd = open(path, O_WRONLY), i;

	for (i = 0; i < n; i++)
		b[le ? i : n - 1 - i] = (uint8_t)(v >> (8 * i));
	if (fd < 0 || pwrite(fd, b, (size_t)n, (off_t)off) != n)
		fprintf(stderr, "patch %s failed\n", path);
	if (fd >= 0)
		close(fd);
}

static uint64_t fsize(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void copy(const char *from, const char *to)
{
	sh("cp --sparse=always '%s' '%s'", P(from), P(to));
}

/* ---- qemu-img's view --------------------------------------------------------- */

static uint64_t qemu_vsize(const char *path, const char *fmt)
{
	char cmd[512], line[512];
	unsigned long long v = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "qemu-img info -f %s --output=json '%s'", fmt, path);
	if (!(f = popen(cmd, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "\"virtual-size\""))
			sscanf(strchr(line, ':') + 1, "%llu", &v);
	pclose(f);
	return v;
}

/* Bytes `qemu-img map` reports as data. */
static uint64_t qemu_data(const char *path, const char *fmt)
{
	char cmd[512], line[512], *s;
	unsigned long long len, sum = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "qemu-img map -f %s --output=json '%s'", fmt, path);
	if (!(f = popen(cmd, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "\"data\": true") && (s = strstr(line, "\"length\":")) &&
		    sscanf(s + 9, "%llu", &len) == 1)
			sum += len;
	pclose(f);
	return sum;
}

/* ---- the source disk ------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_file(const char *path, size_t n, int compressible)
{
	FILE *f = fopen(path, "w");
	size_t i;

	for (i = 0; f && i < n; i++)
		fputc(compressible ? "ferry moves disks "[rnd() % 18] : (int)(rnd() & 0xff), f);
	if (f)
		fclose(f);
}

static void put_random(int fd, uint64_t off, size_t n)
{
	uint8_t *b = malloc(n);
	size_t i;

	for (i = 0; b && i < n; i++)
		b[i] = (uint8_t)rnd();
	if (!b || pwrite(fd, b, n, (off_t)off) != (ssize_t)n)
		fprintf(stderr, "write failed\n");
	free(b);
}

static int make_raw(void)
{
	const char *img = P("disk.raw");
	int fd, have_ext4;

	sh("mkdir -p %s/files/etc %s/files/data", dir, dir);
	fill_file(P("files/etc/hostname"), 12, 1);
	fill_file(P("files/data/text"), 3 * MIB, 1);
	fill_file(P("files/data/random"), 2 * MIB + 123, 0);
	fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)RAW_SIZE) < 0)
		return -1;
	close(fd);
	have_ext4 = sh("printf 'label: gpt\\nstart=2048, size=81920, type=linux\\n' | "
		       "sfdisk -q '%s' >/dev/null 2>&1 && mkfs.ext4 -q -F -d '%s/files' "
		       "-E offset=1048576 '%s' 40M >/dev/null 2>&1",
		       img, dir, img) == 0;
	if (!have_ext4)
		note("sfdisk/mkfs.ext4 unavailable: data regions only");
	fd = open(img, O_WRONLY);
	if (fd < 0)
		return -1;
	/* Random data straddling cluster and block boundaries, a lone sector,
	 * written zeros (allocated but zero), and the disk's last bytes. */
	put_random(fd, 44 * MIB + 12345, 3 * MIB);
	put_random(fd, 50 * MIB + 512, 512);
	{
		static uint8_t z[256 * 1024];

		if (pwrite(fd, z, sizeof(z), (off_t)(52 * MIB)) != (ssize_t)sizeof(z))
			return -1;
	}
	put_random(fd, RAW_SIZE - 5000, 5000);
	close(fd);
	return 0;
}

static int load(const char *path, uint8_t *buf, uint64_t cap, uint64_t *n)
{
	int fd = open(path, O_RDONLY);
	ssize_t k;
	uint64_t off = 0;

	if (fd < 0)
		return -1;
	while (off < cap && (k = pread(fd, buf + off, (size_t)(cap - off), (off_t)off)) > 0)
		off += (uint64_t)k;
	close(fd);
	*n = off;
	return 0;
}

/* ---- one good image ------------------------------------------------------ */

static void check_image(const char *name, const char *fmt, const char *qfmt, const char *sub)
{
	const char *path = P(name);
	char err[IMG_ERR_MAX];
	struct img *im = NULL;
	struct img_info in;
	uint64_t qv, qd, off, n, wn, i, nch, missed = 0, nz = 0;
	uint8_t *bits = NULL;
	int r, bad = 0;

	r = img_open(path, NULL, &im, err, sizeof(err));
	if (!ok(r == 0, "%s: opens (detected)", name)) {
		note("%s", err);
		return;
	}
	img_info(im, &in);
	ok(!strcmp(in.format, fmt), "%s: detected as %s (%s)", name, fmt, in.format);
	ok(!sub || !strcmp(in.subformat, sub), "%s: subformat %s (%s)", name, sub ? sub : "-",
	   in.subformat);
	qv = qemu_vsize(path, qfmt);
	is_int(in.virtual_size, qv, "virtual size equals qemu-img info's");
	ok(in.virtual_size >= RAW_SIZE && in.virtual_size < RAW_SIZE + MIB,
	   "%s: virtual size %llu covers the disk", name, (unsigned long long)in.virtual_size);
	{
		struct img *im2 = NULL;

		ok(img_open(path, fmt, &im2, err, sizeof(err)) == 0, "%s: opens with --format %s",
		   name, fmt);
		img_close(im2);
	}
	/* The whole virtual disk in random-sized pieces. */
	for (off = 0; off < in.virtual_size && !bad; off += n) {
		n = 1 + rnd() % (3 * MIB);
		if (rnd() % 4 == 0)
			n = 1 + rnd() % 4096;
		if (n > in.virtual_size - off)
			n = in.virtual_size - off;
		if (img_read(im, got + off, n, off, err, sizeof(err))) {
			note("%s", err);
			bad = 1;
		}
	}
	ok(!bad, "%s: reads the whole virtual disk in random pieces", name);
	ok(!memcmp(got, raw, RAW_SIZE) &&
	       (in.virtual_size == RAW_SIZE ||
		!(got[RAW_SIZE] |
		  memcmp(got + RAW_SIZE, got + RAW_SIZE + 1, in.virtual_size - RAW_SIZE - 1))),
	   "%s: equals the raw disk (zeros beyond it)", name);
	sh("qemu-img convert -f %s -O raw '%s' '%s'", qfmt, path, P("back.raw"));
	ok(load(P("back.raw"), want, RAW_SIZE + MIB, &wn) == 0 && wn == in.virtual_size &&
	       !memcmp(got, want, in.virtual_size),
	   "%s: equals qemu-img convert -O raw", name);
	unlink(P("back.raw"));

	nch = (in.virtual_size + CHUNK - 1) / CHUNK;
	bits = calloc(1, nch / 8 + 1);
	r = img_alloc_map(im, CHUNK, bits, nch, err, sizeof(err));
	if (r)
		note("%s", err);
	for (i = 0; bits && r == 0 && i < nch; i++) {
		uint64_t len =
		    in.virtual_size - i * CHUNK < CHUNK ? in.virtual_size - i * CHUNK : CHUNK;
		int zero = got[i * CHUNK] == 0 &&
			   !memcmp(got + i * CHUNK, got + i * CHUNK + 1, (size_t)len - 1);

		if (!zero)
			nz++;
		if (!zero && !(bits[i / 8] >> (i % 8) & 1))
			missed++;
	}
	ok(r == 0 && missed == 0, "%s: alloc map covers all %llu non-zero chunks (%llu missed)",
	   name, (unsigned long long)nz, (unsigned long long)missed);
	/* qemu's vpc driver reports a fixed disk as all data; its file's holes
	 * are what it holds. */
	qd = qemu_data(path, strcmp(sub, "fixed") ? qfmt : "raw");
	note("%s: allocated %llu, qemu-img map data %llu, file %llu, features [%s]", name,
	     (unsigned long long)in.allocated, (unsigned long long)qd,
	     (unsigned long long)in.file_size, in.features);
	ok(in.allocated + MIB + qd / 20 >= qd && in.allocated <= qd + MIB + qd / 20,
	   "%s: allocated bytes (%llu) close to qemu-img map's data (%llu)", name,
	   (unsigned long long)in.allocated, (unsigned long long)qd);
	ok(in.allocated < in.virtual_size / 2, "%s: allocated is the data, not the virtual size",
	   name);
	free(bits);
	img_close(im);
}

/* ---- refusals -------------------------------------------------------------- */

/* Opens (and, if that works, reads and maps) path; the first error. */
static int try_all(const char *path, const char *fmt, char *err, size_t cap)
{
	static uint8_t buf[1 << 20];
	struct img *im = NULL;
	struct img_info in;
	uint64_t off, n, nch;
	uint8_t *bits;
	int r;

	err[0] = 0;
	if ((r = img_open(path, fmt, &im, err, cap)))
		return r;
	img_info(im, &in);
	nch = in.virtual_size / CHUNK + 1;
	bits = calloc(1, nch / 8 + 1);
	r = bits ? img_alloc_map(im, CHUNK, bits, nch, err, cap) : -ENOMEM;
	free(bits);
	for (off = 0; r == 0 && off < in.virtual_size; off += n) {
		n = in.virtual_size - off < sizeof(buf) ? in.virtual_size - off : sizeof(buf);
		r = img_read(im, buf, n, off, err, cap);
	}
	img_close(im);
	return r;
}

static void refused(const char *name, const char *fmt, const char *prefix, const char *reason)
{
	char err[IMG_ERR_MAX];
	int r = try_all(P(name), fmt, err, sizeof(err));

	ok(r < 0 && !strncmp(err, prefix, strlen(prefix)) && strstr(err, reason),
	   "%s refused: \"%s\"", name, reason);
	note("  -> %s", err[0] ? err : "(no error)");
}

/* First nonzero u64 (BE) of the L2 table behind L1 entry 0, and its place. */
static uint64_t qcow2_first_l2(const char *path, uint64_t *at)
{
	uint64_t cs = 1ull << get_be(path, 20, 4), l1 = get_be(path, 40, 8);
	uint64_t l2 = get_be(path, l1, 8) & 0x00fffffffffffe00ull, i, v;

	for (i = 0; l2 && i < cs / 8; i++)
		if ((v = get_be(path, l2 + 8 * i, 8))) {
			*at = l2 + 8 * i;
			return v;
		}
	*at = 0;
	return 0;
}

static uint32_t vhd_sum(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			s += p[i];
	return ~s;
}

static void vhd_fix_footer(const char *path, uint64_t off)
{
	uint8_t f[512];
	int fd = open(path, O_RDWR);

	if (fd < 0 || pread(fd, f, 512, (off_t)off) != 512)
		return;
	put(path, off + 64, 4, vhd_sum(f, 512, 64), 0);
	close(fd);
}

static void qcow2_refusals(void)
{
	const char *q3 = P("v3.qcow2");
	uint64_t at, v, l2, cs, i, max;
	char err[IMG_ERR_MAX];
	struct img *im;

	sh("qemu-img create -q -f qcow2 '%s' 1M >/dev/null", P("base.qcow2"));
	sh("cd %s && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 backed.qcow2 >/dev/null",
	   dir);
	refused("backed.qcow2", NULL, META, "backing file \"base.qcow2\"");
	sh("cd %s && qemu-img create -q -f qcow2 -o data_file=ext.raw ext.qcow2 1M >/dev/null",
	   dir);
	refused("ext.qcow2", NULL, META, "external data file \"ext.raw\"");
	if (sh("cd %s && qemu-img create -q --object secret,id=s0,data=ferry -f qcow2 -o "
	       "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 luks.qcow2 1M "
	       ">/dev/null 2>&1",
	       dir) == 0)
		refused("luks.qcow2", NULL, META, "encrypted (crypt_method 2, LUKS)");
	else
		skip("qemu-img cannot make a LUKS qcow2 here");
	copy("v3.qcow2", "aes.qcow2");
	put(P("aes.qcow2"), 32, 4, 1, 0);
	refused("aes.qcow2", NULL, META, "encrypted (crypt_method 1, AES)");

	copy("v3.qcow2", "l1huge.qcow2");
	put(P("l1huge.qcow2"), 36, 4, 0x7fffffff, 0);
	refused("l1huge.qcow2", NULL, META, "more than 4194304");
	/* 0x20000001 * 8 is 8 in 32 bits. */
	copy("v3.qcow2", "l1trunc.qcow2");
	put(P("l1trunc.qcow2"), 36, 4, 0x20000001, 0);
	refused("l1trunc.qcow2", NULL, META, "L1 table has 536870913 entries");
	copy("v3.qcow2", "l1past.qcow2");
	put(P("l1past.qcow2"), 40, 8, 1ull << 40, 0);
	refused("l1past.qcow2", NULL, META, "L1 table (offset 1099511627776");
	copy("v3.qcow2", "l1small.qcow2");
	put(P("l1small.qcow2"), 24, 8, 1ull << 40, 0);
	refused("l1small.qcow2", NULL, META, "virtual size needs");
	copy("v3.qcow2", "cbits30.qcow2");
	put(P("cbits30.qcow2"), 20, 4, 30, 0);
	refused("cbits30.qcow2", NULL, META, "cluster_bits 30 is outside 9..21");
	copy("v3.qcow2", "vsize62.qcow2");
	put(P("vsize62.qcow2"), 24, 8, 1ull << 62, 0);
	refused("vsize62.qcow2", NULL, META, "virtual size 4611686018427387904 bytes is beyond");
	copy("v3.qcow2", "incompat.qcow2");
	put(P("incompat.qcow2"), 72, 8, 1ull << 40, 0);
	refused("incompat.qcow2", NULL, META, "unknown incompatible features 0x10000000000");
	copy("v3.qcow2", "corrupt.qcow2");
	put(P("corrupt.qcow2"), 72, 8, 2, 0);
	refused("corrupt.qcow2", NULL, META, "marked corrupt");
	v = qcow2_first_l2(q3, &at);
	ok(v != 0, "v3.qcow2: found an allocated L2 entry");
	copy("v3.qcow2", "l2hdr.qcow2");
	put(P("l2hdr.qcow2"), at, 8, (1ull << 62) | 100, 0);
	refused("l2hdr.qcow2", NULL, META, "at offset 100 overlaps the header");
	copy("v3.qcow2", "l1unal.qcow2");
	put(P("l1unal.qcow2"), get_be(q3, 40, 8), 8, get_be(q3, get_be(q3, 40, 8), 8) + 512, 0);
	refused("l1unal.qcow2", NULL, META, "not a cluster boundary");
	copy("v3.qcow2", "l2past.qcow2");
	put(P("l2past.qcow2"), at, 8, (1ull << 63) | (1ull << 40), 0);
	refused("l2past.qcow2", NULL, META, "points past the end of the file");
	/* The same cluster 4 GiB further: what a 32-bit offset would wrap to. */
	copy("v3.qcow2", "l2wrap.qcow2");
	put(P("l2wrap.qcow2"), at, 8, v + (1ull << 32), 0);
	refused("l2wrap.qcow2", NULL, META, "points past the end of the file");
	copy("v3.qcow2", "l2onl1.qcow2");
	put(P("l2onl1.qcow2"), at, 8, (1ull << 63) | get_be(q3, 40, 8), 0);
	refused("l2onl1.qcow2", NULL, META, "overlaps the L1 table");
	copy("v3.qcow2", "l2unal.qcow2");
	put(P("l2unal.qcow2"), at, 8, v + 4096, 0);
	refused("l2unal.qcow2", NULL, META, "unaligned offset");
	copy("v2.qcow2", "v2zero.qcow2");
	qcow2_first_l2(P("v2.qcow2"), &at);
	put(P("v2zero.qcow2"), at, 8, 1, 0);
	refused("v2zero.qcow2", NULL, META, "zero cluster 0 in a version 2 image");

	/* Every L1 entry on one L2 table: 1 MiB of data from a small file. */
	sh("qemu-img create -q -f qcow2 -o cluster_size=512 '%s' 1M >/dev/null && "
	   "qemu-io -c 'write -P 0x55 0 32k' '%s' >/dev/null",
	   P("shared.qcow2"), P("shared.qcow2"));
	l2 = get_be(P("shared.qcow2"), get_be(P("shared.qcow2"), 40, 8), 8);
	for (i = 1; i < get_be(P("shared.qcow2"), 36, 4); i++)
		put(P("shared.qcow2"), get_be(P("shared.qcow2"), 40, 8) + 8 * i, 8, l2, 0);
	refused("shared.qcow2", NULL, META, "entries overlap");

	/* One compressed cluster, the last thing in its file, cut short. */
	sh("qemu-img create -q -f qcow2 '%s' 1M >/dev/null && qemu-io -f qcow2 -c "
	   "'write -c -P 0x41 64k 64k' '%s' >/dev/null",
	   P("c1.qcow2"), P("c1.qcow2"));
	cs = 1ull << get_be(P("c1.qcow2"), 20, 4);
	l2 = get_be(P("c1.qcow2"), get_be(P("c1.qcow2"), 40, 8), 8) & 0x00fffffffffffe00ull;
	for (i = 0, max = 0; l2 && i < cs / 8; i++) {
		v = get_be(P("c1.qcow2"), l2 + 8 * i, 8);
		if (v >> 62 & 1) {
			v &= (1ull << (62 - (get_be(P("c1.qcow2"), 20, 4) - 8))) - 1;
			max = v > max ? v : max;
		}
	}
	ok(max && fsize(P("c1.qcow2")) - max < 512,
	   "c1.qcow2: its compressed cluster (at %llu) "
	   "ends the file (%llu bytes)",
	   (unsigned long long)max, (unsigned long long)fsize(P("c1.qcow2")));
	copy("c1.qcow2", "ccut.qcow2");
	ok(truncate(P("ccut.qcow2"), (off_t)(max + 10)) == 0, "ccut.qcow2: cut 10 bytes in");
	refused("ccut.qcow2", NULL, UNZ, "ends early");
	copy("c1.qcow2", "cbad.qcow2");
	put(P("cbad.qcow2"), max, 8, 0xffffffffffffffffull, 0);
	refused("cbad.qcow2", NULL, UNZ, "zlib:");

	/* --format mismatch: the exact wording. */
	im = NULL;
	img_open(q3, "vmdk", &im, err, sizeof(err));
	ok(!im && !strcmp(err, META "--format vmdk but the file is qcow2 (magic QFI\\xfb)"),
	   "--format vmdk on a qcow2: \"%s\"", err);
	if (im) /* opened though it should not have: no leak */
		img_close(im), im = NULL;
	img_open(P("disk.raw"), "qcow2", &im, err, sizeof(err));
	ok(!im && strstr(err, "--format qcow2 but the file is raw"), "--format qcow2 on raw: %s",
	   err);
	if (im) /* opened though it should not have: no leak */
		img_close(im), im = NULL;
	img_open(q3, "raw", &im, err, sizeof(err));
	ok(!im && strstr(err, "--format raw but the file is qcow2"), "--format raw on qcow2");
	if (im) /* opened though it should not have: no leak */
		img_close(im), im = NULL;
	img_open(q3, "qed", &im, err, sizeof(err));
	ok(!im && strstr(err, "unknown format \"qed\""), "unknown --format refused");
	if (im) /* opened though it should not have: no leak */
		img_close(im), im = NULL;
	sh("qemu-img create -q -f vhdx '%s' 1M >/dev/null", P("x.vhdx"));
	refused("x.vhdx", NULL, META, "vhdx images are not supported");
	sh("qemu-img create -q -f vdi '%s' 1M >/dev/null", P("x.vdi"));
	refused("x.vdi", NULL, META, "vdi images are not supported");
}

static void vhd_refusals(void)
{
	const char *dyn = P("dynamic.vhd");
	uint64_t dh, bat, i, e;

	copy("fixed.vhd", "fixsum.vhd");
	put(P("fixsum.vhd"), fsize(P("fixsum.vhd")) - 512 + 24, 4, 0x12345678, 0);
	refused("fixsum.vhd", "vhd", META, "footer checksum");
	copy("dynamic.vhd", "dynsum.vhd");
	put(P("dynsum.vhd"), 24, 4, 0x12345678, 0);
	refused("dynsum.vhd", NULL, META, "footer checksum");
	copy("dynamic.vhd", "diff.vhd");
	put(P("diff.vhd"), 60, 4, 4, 0);
	vhd_fix_footer(P("diff.vhd"), 0);
	refused("diff.vhd", NULL, META, "differencing disk");
	dh = get_be(dyn, 16, 8);
	copy("dynamic.vhd", "dhsum.vhd");
	put(P("dhsum.vhd"), dh + 32, 4, 1u << 30, 0);
	refused("dhsum.vhd", NULL, META, "dynamic disk header checksum");
	bat = get_be(dyn, dh + 16, 8);
	for (i = 0; (e = get_be(dyn, bat + 4 * i, 4)) == 0xffffffffull && i < 4096; i++)
		;
	copy("dynamic.vhd", "batpast.vhd");
	put(P("batpast.vhd"), bat + 4 * i, 4, 0x7fffff00, 0);
	refused("batpast.vhd", NULL, META, "past the end of the data");
	copy("dynamic.vhd", "batonbat.vhd");
	put(P("batonbat.vhd"), bat + 4 * i, 4, bat / 512, 0);
	refused("batonbat.vhd", NULL, META, "overlaps the footer copy, the header or the BAT");
	(void)e;
}

static void vmdk_refusals(void)
{
	const char *ms = P("sparse.vmdk");
	uint64_t gd, gt, i;

	sh("cd %s && qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 3G "
	   ">/dev/null && qemu-img create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 1M "
	   ">/dev/null",
	   dir);
	refused("split.vmdk", NULL, META, "references 2 extent files (\"split-s001.vmdk\"");
	refused("flat.vmdk", NULL, META, "references 1 extent file (\"flat-flat.vmdk\")");
	refused("split-s001.vmdk", NULL, META, "an extent of a split image");
	gd = get_le(ms, 56, 8) * 512;
	gt = get_le(ms, gd, 4) * 512;
	for (i = 0; get_le(ms, gt + 4 * i, 4) == 0 && i < 512; i++)
		;
	copy("sparse.vmdk", "gtpast.vmdk");
	put(P("gtpast.vmdk"), gt + 4 * i, 4, 0x7fffffff, 1);
	refused("gtpast.vmdk", NULL, META, "points past the end of the file");
	copy("sparse.vmdk", "gthdr.vmdk");
	put(P("gthdr.vmdk"), gt + 4 * i, 4, 0, 1);
	put(P("gthdr.vmdk"), gt + 4 * i + 4, 4, 1, 1);
	refused("gthdr.vmdk", NULL, META, "overlaps the header");
	copy("sparse.vmdk", "gdpast.vmdk");
	put(P("gdpast.vmdk"), gd, 4, 0x7fffffff, 1);
	refused("gdpast.vmdk", NULL, META, "grain table past the end");
	copy("sparse.vmdk", "gtehuge.vmdk");
	put(P("gtehuge.vmdk"), 44, 4, 0x40000001, 1);
	refused("gtehuge.vmdk", NULL, META, "entries per grain table");
	copy("sparse.vmdk", "cap.vmdk");
	put(P("cap.vmdk"), 12, 8, 1ull << 60, 1);
	refused("cap.vmdk", NULL, META, "is beyond");
	/* A streamOptimized grain whose header claims zero bytes. */
	gd = get_le(P("stream.vmdk"), 56, 8) * 512;
	gt = get_le(P("stream.vmdk"), gd, 4) * 512;
	for (i = 0; get_le(P("stream.vmdk"), gt + 4 * i, 4) == 0 && i < 512; i++)
		;
	copy("stream.vmdk", "grain0.vmdk");
	put(P("grain0.vmdk"), get_le(P("stream.vmdk"), gt + 4 * i, 4) * 512 + 8, 4, 0, 1);
	refused("grain0.vmdk", NULL, UNZ, "claims 0 compressed bytes");
	copy("stream.vmdk", "grainlba.vmdk");
	put(P("grainlba.vmdk"), get_le(P("stream.vmdk"), gt + 4 * i, 4) * 512, 8, 7, 1);
	refused("grainlba.vmdk", NULL, UNZ, "is for sector 7");
}

/*
 * qemu-img writes the grain directory of a streamOptimized image up
 * front; stream writers (ovftool) put it at the end, behind a footer.
 * Rebuild qemu's image that way: header gdOffset GD_AT_END, and a footer
 * marker, the footer (the old header) and the end-of-stream marker.
 */
static void make_gd_at_end(void)
{
	uint8_t hdr[512], sec[512];
	const char *p = P("stream-end.vmdk");
	uint64_t n;
	int fd;

	copy("stream.vmdk", "stream-end.vmdk");
	fd = open(p, O_RDWR);
	n = fsize(p) - 512; /* drop qemu's end-of-stream marker */
	if (fd < 0 || pread(fd, hdr, 512, 0) != 512 || ftruncate(fd, (off_t)n) < 0)
		return;
	memset(sec, 0, sizeof(sec));
	sec[0] = 1;  /* numSectors */
	sec[12] = 3; /* MARKER_FOOTER */
	if (pwrite(fd, sec, 512, (off_t)n) != 512 || pwrite(fd, hdr, 512, (off_t)n + 512) != 512)
		return;
	memset(sec, 0, sizeof(sec));
	if (pwrite(fd, sec, 512, (off_t)n + 1024) != 512)
		return;
	close(fd);
	put(p, 56, 8, ~0ull, 1);
}

int main(void)
{
	struct {
		const char *name, *args, *fmt, *qfmt, *sub;
	} imgs[] = {
	    {"disk.raw", NULL, "raw", "raw", ""},
	    {"v2.qcow2", "-O qcow2 -o compat=0.10", "qcow2", "qcow2", "v2"},
	    {"v3.qcow2", "-O qcow2 -o compat=1.1", "qcow2", "qcow2", "v3"},
	    {"c.qcow2", "-O qcow2 -c", "qcow2", "qcow2", "v3"},
	    {"small.qcow2", "-O qcow2 -o cluster_size=512", "qcow2", "qcow2", "v3"},
	    {"big.qcow2", "-O qcow2 -o cluster_size=2M", "qcow2", "qcow2", "v3"},
	    {"sub.qcow2", "-O qcow2 -o extended_l2=on,cluster_size=128k", "qcow2", "qcow2", "v3"},
	    {"zero.qcow2", NULL, "qcow2", "qcow2", "v3"},
	    {"fixed.vhd", "-O vpc -o subformat=fixed", "vhd", "vpc", "fixed"},
	    {"dynamic.vhd", "-O vpc -o subformat=dynamic", "vhd", "vpc", "dynamic"},
	    {"sparse.vmdk", "-O vmdk -o subformat=monolithicSparse", "vmdk", "vmdk",
	     "monolithicSparse"},
	    {"stream.vmdk", "-O vmdk -o subformat=streamOptimized", "vmdk", "vmdk",
	     "streamOptimized"},
	    {"stream-end.vmdk", NULL, "vmdk", "vmdk", "streamOptimized"},
	};
	uint64_t n;
	size_t i;

	if (system("qemu-img --version >/dev/null 2>&1") != 0) {
		skip("qemu-img not installed (qemu-utils)");
		return tap_done();
	}
	snprintf(dir, sizeof(dir), "/tmp/ferry-image-XXXXXX");
	raw = malloc(RAW_SIZE + MIB);
	got = malloc(RAW_SIZE + MIB);
	want = malloc(RAW_SIZE + MIB);
	if (!mkdtemp(dir) || !raw || !got || !want || make_raw() ||
	    load(P("disk.raw"), raw, RAW_SIZE, &n) || n != RAW_SIZE) {
		ok(0, "make the source disk in %s", dir);
		return tap_done();
	}
	for (i = 0; i < FERRY_ARRAY_LEN(imgs); i++)
		if (imgs[i].args)
			sh("qemu-img convert -f raw %s '%s' '%s'", imgs[i].args, P("disk.raw"),
			   P(imgs[i].name));
	/* Zero clusters: the raw disk, then 4 MiB of its data zeroed in place
	 * (write -z) and the same bytes zeroed in our copy of the disk. */
	sh("qemu-img convert -f raw -O qcow2 -o compat=1.1 '%s' '%s' && qemu-io -f qcow2 -c "
	   "'write -z 20M 4M' -c 'write -z 44M 1M' '%s' >/dev/null",
	   P("disk.raw"), P("zero.qcow2"), P("zero.qcow2"));
	make_gd_at_end();
	for (i = 0; i < FERRY_ARRAY_LEN(imgs); i++) {
		if (!strcmp(imgs[i].name, "zero.qcow2")) {
			uint8_t *keep = malloc(5 * MIB);

			if (!keep)
				continue;
			memcpy(keep, raw + 20 * MIB, 4 * MIB);
			memcpy(keep + 4 * MIB, raw + 44 * MIB, MIB);
			memset(raw + 20 * MIB, 0, 4 * MIB);
			memset(raw + 44 * MIB, 0, MIB);
			check_image(imgs[i].name, imgs[i].fmt, imgs[i].qfmt, imgs[i].sub);
			memcpy(raw + 20 * MIB, keep, 4 * MIB);
			memcpy(raw + 44 * MIB, keep + 4 * MIB, MIB);
			free(keep);
			continue;
		}
		check_image(imgs[i].name, imgs[i].fmt, imgs[i].qfmt, imgs[i].sub);
	}
	{
		struct img *im = NULL;
		struct img_info in;
		char err[IMG_ERR_MAX];

		if (img_open(P("zero.qcow2"), NULL, &im, err, sizeof(err)) == 0) {
			img_info(im, &in);
			ok(strstr(in.features, "zero clusters") != NULL,
			   "zero.qcow2: features say zero clusters [%s]", in.features);
			img_close(im);
		}
	}
	qcow2_refusals();
	vhd_refusals();
	vmdk_refusals();
	free(raw);
	free(got);
	free(want);
	if (!getenv("FERRY_KEEP"))
		sh("rm -rf '%s'", dir);
	else
		note("kept %s", dir);
	return tap_done();
}
