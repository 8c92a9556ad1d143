/*
 * test_check.c - `ferry check` on the host. The initramfs scanner
 * (boot_initrd_modules) on real cpio archives made with cpio -o -H newc
 * and compressed with gzip, xz, zstd, lz4 (legacy and frame) and bzip2,
 * a microcode cpio in front, a truncated archive and a missing tool; then
 * the checks themselves against a fake machine (a temp tree standing in
 * for /proc, /sys, /boot, /lib/modules, /etc) and a fake destination:
 * the virtio verdicts, root, clock, memory, SELinux, the disks, the
 * mapping with the seed's "too small" wording, the clock skew, a wrong
 * token; and the line format, NDJSON and exit code.
 *
 * The agent is not linked into unit tests, so check.c is compiled into
 * this file, and the agent functions it calls (connect, disk discovery)
 * are the fakes below; blockmap, boot and the option table (opts.c) are
 * the real ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/check.c"
#include "agent/check_kernel.c"
#include "agent/opts.c"
#include "tests/tap.h"

static char tmp[256];

/* ---- the agent, faked ---------------------------------------------------- */

static struct proto_inventory fake_inv;
static int fake_connect_rc;
static const char *fake_connect_err = "";
static int fake_connects, fake_byes;
static const char *fake_disks[4];
static size_t fake_ndisks;

int agent_connect(const struct agent_target *t, struct agent_conn *ac, struct proto_inventory *inv,
		  char *err, size_t errcap)
{
	(void)t;
	(void)ac;
	fake_connects++;
	if (fake_connect_rc) {
		snprintf(err, errcap, "%s", fake_connect_err);
		return fake_connect_rc;
	}
	*inv = fake_inv;
	return 0;
}

void agent_bye(struct agent_conn *ac)
{
	(void)ac;
	fake_byes++;
}

int agent_parse_target(const char *to, const char *listen, const char *proxy,
		       struct agent_target *t, char *err, size_t errcap)
{
	(void)listen;
	(void)proxy;
	(void)err;
	(void)errcap;
	snprintf(t->text, sizeof(t->text), "%s", to);
	return 0;
}

int agent_parse_proxy(const char *arg, struct agent_target *t, char *err, size_t errcap)
{
	(void)arg, (void)t, (void)err, (void)errcap;
	return 0;
}

int agent_load_token(const char *tok, const char *file, struct tls_token *t, char *err,
		     size_t errcap)
{
	(void)tok, (void)file, (void)t, (void)err, (void)errcap;
	return 0;
}

int src_discover(char paths[][SRC_PATH_MAX], size_t cap, size_t *n, char *err, size_t errcap)
{
	size_t i;

	for (i = 0; i < fake_ndisks && i < cap; i++)
		snprintf(paths[i], SRC_PATH_MAX, "%s", fake_disks[i]);
	*n = i;
	if (i == 0) {
		snprintf(err, errcap, "no source disks found in /sys/block; name them with --disk");
		return -ENODEV;
	}
	return 0;
}

int src_is_partition(const char *path, char *disk, size_t cap)
{
	(void)cap;
	if (strstr(path, "part")) {
		snprintf(disk, cap, "/dev/sdz");
		return 1;
	}
	return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell snippet in tmp with the archive-making functions defined. */
static int sh(const char *fmt, ...)
{
	static const char lib[] =
	    "set -e; cd \"$T\"\n"
	    /* tree DIR MOD...: an initramfs tree holding the named module files */
	    "tree() { d=$1; shift; rm -rf $d; mkdir -p $d/bin; echo busybox > $d/bin/sh\n"
	    "  for m in \"$@\"; do f=$d/lib/modules/6.1-t/kernel/drivers/$m\n"
	    "    mkdir -p $(dirname $f); echo m > $f; done; }\n"
	    "newc() { (cd $1 && find . | LC_ALL=C sort | cpio -o -H newc --quiet); }\n"
	    /* pack OUT FMT DIR: DIR as newc, then compressed as FMT */
	    "pack() { newc $3 > $1.cpio\n"
	    "  case $2 in raw) cp $1.cpio $1;; gz) gzip -n -c $1.cpio > $1;;\n"
	    "  xz) xz --check=crc32 -c $1.cpio > $1;; zst) zstd -q -c $1.cpio > $1;;\n"
	    "  lz4) lz4 -l -q -c $1.cpio > $1;; lz4f) lz4 -q -c $1.cpio > $1;;\n"
	    "  bz2) bzip2 -c $1.cpio > $1;; esac; rm -f $1.cpio; }\n"
	    /* early OUT FMT DIR: an uncompressed microcode cpio, then pack */
	    "early() { rm -rf ucode; mkdir -p ucode/kernel/x86/microcode\n"
	    "  head -c 3000 /dev/urandom > ucode/kernel/x86/microcode/GenuineIntel.bin\n"
	    "  newc ucode > $1.early; pack $1.main $2 $3; cat $1.early $1.main > $1;"
	    " rm -f $1.early $1.main; }\n";
	char cmd[8192];
	va_list ap;
	int n, rc;

	n = snprintf(cmd, sizeof(cmd), "T='%s'\n%s", tmp, lib);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc)
		note("shell snippet failed (%d): %.300s", rc, cmd + n);
	return rc;
}

static int have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static int put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	if (!(f = fopen(path, "w")))
		return -errno;
	fputs(text, f);
	return fclose(f) ? -EIO : 0;
}

static const char *const want4[] = {"virtio_blk", "virtio_scsi", "virtio_net", "virtio_pci"};

/* ---- the initramfs scanner --------------------------------------------------- */

struct scase {
	const char *name, *fmt, *tool;
	int early;
	unsigned want_found;
	int want_rc;	    /* 0, or the error class: 1 = any error */
	const char *needle; /* in fmt (rc 0) or err (rc != 0) */
};

static void test_scan(void)
{
	/* tree "m": virtio_blk.ko.zst, virtio_scsi.ko, virtio_net.ko.xz, no virtio_pci */
	static const struct scase sc[] = {
	    {"raw cpio", "raw", NULL, 0, 0x7, 0, "cpio"},
	    {"gzip cpio", "gz", "gzip", 0, 0x7, 0, "gzip"},
	    {"xz cpio", "xz", "xz", 0, 0x7, 0, "xz"},
	    {"zstd cpio (libzstd)", "zst", NULL, 0, 0x7, 0, "zstd"},
	    {"lz4 legacy cpio (as the kernel reads it)", "lz4", "lz4", 0, 0x7, 0, "lz4"},
	    {"lz4 frame cpio", "lz4f", "lz4", 0, 0x7, 0, "lz4"},
	    {"bzip2 cpio", "bz2", "bzip2", 0, 0x7, 0, "bzip2"},
	    {"microcode cpio + gzip cpio", "gz", "gzip", 1, 0x7, 0, "cpio+gzip"},
	    {"microcode cpio + zstd cpio", "zst", NULL, 1, 0x7, 0, "cpio+zstd"},
	    {"microcode cpio + xz cpio", "xz", "xz", 1, 0x7, 0, "cpio+xz"},
	    {"microcode cpio + lz4 cpio", "lz4", "lz4", 1, 0x7, 0, "cpio+lz4"},
	};
	char err[300], fmt[64], path[512];
	unsigned found;
	size_t i;
	int rc;

	for (i = 0; i < FERRY_ARRAY_LEN(sc); i++) {
		const struct scase *c = &sc[i];

		if (c->tool && !have(c->tool)) {
			char why[96];

			snprintf(why, sizeof(why), "%s: no %s tool on this machine", c->name,
				 c->tool);
			skip(why);
			continue;
		}
		if (sh("tree m%zu block/virtio_blk.ko.zst scsi/virtio_scsi.ko net/virtio_net.ko.xz "
		       "virtio/virtio_ring.ko; %s ir%zu %s m%zu",
		       i, c->early ? "early" : "pack", i, c->fmt, i)) {
			skip("could not build the archive");
			continue;
		}
		snprintf(path, sizeof(path), "%s/ir%zu", tmp, i);
		err[0] = 0;
		rc =
		    boot_initrd_modules(path, want4, 4, &found, fmt, sizeof(fmt), err, sizeof(err));
		ok(rc == 0 && found == c->want_found && !strcmp(fmt, c->needle),
		   "%s: rc %d, found 0x%x, format %s%s%s", c->name, rc, found, fmt,
		   err[0] ? ", " : "", err);
	}

	/* Everything wanted is found before the end: the scan stops early. */
	if (!sh("tree all virtio_blk.ko virtio_pci.ko; pack all.img gz all")) {
		static const char *const two[] = {"virtio_pci", "virtio_blk"};

		snprintf(path, sizeof(path), "%s/all.img", tmp);
		rc = boot_initrd_modules(path, two, 2, &found, fmt, sizeof(fmt), err, sizeof(err));
		ok(rc == 0 && found == 0x3, "both wanted modules found (rc %d, 0x%x)", rc, found);
	}

	/* A gzip archive and no gzip in PATH: unknown, with the reason. */
	if (!sh("tree ng virtio_blk.ko; pack ng.img gz ng; mkdir -p empty")) {
		char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL, empty[300];

		snprintf(empty, sizeof(empty), "%s/empty", tmp);
		setenv("PATH", empty, 1);
		snprintf(path, sizeof(path), "%s/ng.img", tmp);
		rc =
		    boot_initrd_modules(path, want4, 4, &found, fmt, sizeof(fmt), err, sizeof(err));
		if (old)
			setenv("PATH", old, 1);
		free(old);
		ok(rc == -EOPNOTSUPP && found == 0 && strstr(err, "no gzip tool in PATH"),
		   "no gzip tool: -EOPNOTSUPP \"%s\"", err);
	}

	/* Truncated: a gzip stream cut in the middle, and a raw cpio cut. */
	if (!sh("tree tr virtio_net.ko; head -c 20000 /dev/urandom > tr/big; pack tr.gz gz tr; "
		"n=$(stat -c %%s tr.gz); head -c $((n / 2)) tr.gz > trunc.gz; pack tr.raw raw tr; "
		"head -c 300 tr.raw > trunc.raw; head -c 9 tr.gz > tiny.gz")) {
		static const char *const f[] = {"trunc.gz", "trunc.raw", "tiny.gz"};

		for (i = 0; i < FERRY_ARRAY_LEN(f); i++) {
			snprintf(path, sizeof(path), "%s/%s", tmp, f[i]);
			err[0] = 0;
			rc = boot_initrd_modules(path, want4, 4, &found, fmt, sizeof(fmt), err,
						 sizeof(err));
			ok(rc < 0 && err[0] && !(found & 0x4),
			   "%s: an error, not a verdict (rc %d: %s)", f[i], rc, err);
		}
	}

	/* Not an initramfs at all, an empty file, a missing file. */
	{
		put("junk.img", "this is not an initramfs\n");
		put("empty.img", "");
		snprintf(path, sizeof(path), "%s/junk.img", tmp);
		rc =
		    boot_initrd_modules(path, want4, 4, &found, fmt, sizeof(fmt), err, sizeof(err));
		ok(rc == -EOPNOTSUPP && strstr(err, "unknown format"), "junk: %s", err);
		snprintf(path, sizeof(path), "%s/empty.img", tmp);
		rc =
		    boot_initrd_modules(path, want4, 4, &found, fmt, sizeof(fmt), err, sizeof(err));
		ok(rc < 0, "empty file: %s", err);
		snprintf(path, sizeof(path), "%s/missing.img", tmp);
		rc =
		    boot_initrd_modules(path, want4, 4, &found, fmt, sizeof(fmt), err, sizeof(err));
		ok(rc == -ENOENT && strstr(err, "missing.img"), "missing file: %s", err);
	}
}

/* ---- the checks against a fake machine -------------------------------------- */

static struct check_result res;

static const struct check_item *find_item(const char *name, int nth)
{
	size_t i;

	for (i = 0; i < res.n; i++)
		if (!strcmp(res.item[i].name, name) && nth-- == 0)
			return &res.item[i];
	return NULL;
}

static void dump(void)
{
	char line[CHECK_LINE_MAX];
	size_t i;

	for (i = 0; i < res.n; i++) {
		check_format(&res.item[i], 0, line, sizeof(line));
		note("%s", line);
	}
}

/* The line for name has level and found (and fix) contains the needles. */
static int has(const char *name, int nth, enum check_level l, const char *found_needle,
	       const char *fix_needle)
{
	const struct check_item *it = find_item(name, nth);

	return it && it->level == l && (!found_needle || strstr(it->found, found_needle)) &&
	       (!fix_needle || strstr(it->fix, fix_needle));
}

static int run(const char *root, uid_t uid, time_t now, const struct agent_target *t,
	       const char *const *disks, size_t n)
{
	struct check_opts o;
	struct env e = {root, "6.1-t", uid, now};

	memset(&o, 0, sizeof(o));
	o.target = t;
	o.disks = disks;
	o.ndisks = n;
	return run_checks(&o, &e, &res);
}

#define NOW ((time_t)1767225600) /* 2026-01-01 00:00:00 UTC */

static void test_machine(void)
{
	char root[300], img[2][320];
	const char *disks[2];

	snprintf(root, sizeof(root), "%s/m", tmp);
	if (sh("rm -rf m; mkdir -p m/proc m/sys/fs/selinux m/boot m/lib/modules/6.1-t m/etc; "
	       "printf 'MemTotal: 2048000 kB\\nMemFree: 1000 kB\\nMemAvailable: 1024000 kB\\n' "
	       "> m/proc/meminfo; echo 0 > m/sys/fs/selinux/enforce\n"
	       "printf '# CONFIG_X is not set\\nCONFIG_VIRTIO_PCI=y\\nCONFIG_VIRTIO_BLK=m\\n"
	       "CONFIG_SCSI_VIRTIO=m\\nCONFIG_VIRTIO_NET=m\\n' > m/boot/config-6.1-t\n"
	       "printf 'kernel/drivers/net/virtio_net.ko.xz: kernel/x.ko\\n' > "
	       "m/lib/modules/6.1-t/modules.dep\n"
	       "tree mi block/virtio_blk.ko.zst; pack m/boot/initrd.img-6.1-t zst mi\n"
	       "truncate -s 8M d8.img; truncate -s 16M d16.img")) {
		skip("could not build the fake machine");
		return;
	}
	snprintf(img[0], sizeof(img[0]), "%s/d8.img", tmp);
	snprintf(img[1], sizeof(img[1]), "%s/d16.img", tmp);

	/* Debian-like: pci built in, blk in the initramfs, scsi missing, net later. */
	disks[0] = img[0];
	is_int(run(root, 0, NOW, NULL, disks, 1), 0, "checks ran");
	ok(has("root", 0, CHECK_PASS, "running as root", NULL), "root: PASS");
	ok(has("clock", 0, CHECK_PASS, "2026-01-01 00:00:00 UTC", NULL), "clock: PASS");
	ok(has("memory", 0, CHECK_PASS, "1000.0 MiB available", NULL), "memory: MemAvailable");
	ok(has("selinux", 0, CHECK_PASS, "permissive", NULL), "selinux: permissive");
	ok(has("disk", 0, CHECK_PASS,
	       "d8.img: 8.0 MiB, no partition table, no filesystem found "
	       "(sent whole)",
	       NULL) &&
	       strstr(find_item("disk", 0)->found, "a migration sends 8.0 MiB"),
	   "disk: 8 MiB, no table, sent whole");
	ok(has("virtio_pci", 0, CHECK_PASS, "built into kernel 6.1-t (CONFIG_VIRTIO_PCI=y)", NULL),
	   "virtio_pci: built in");
	ok(has("virtio_blk", 0, CHECK_PASS, "module in the initramfs /boot/initrd.img-6.1-t (zstd)",
	       NULL),
	   "virtio_blk: in the initramfs (path shown without the test prefix)");
	ok(has("virtio_net", 0, CHECK_PASS, "/lib/modules/6.1-t", NULL),
	   "virtio_net: a module loaded later");
	ok(has("virtio_scsi", 0, CHECK_WARN, "not in its initramfs",
	       "dracut -f --add-drivers \"virtio_scsi\" /boot/initrd.img-6.1-t 6.1-t"),
	   "virtio_scsi: WARN with the dracut fix naming only it");
	ok(!find_item("destination", 0) && fake_connects == 0, "no --to: no destination check");
	is_int(res.worst, CHECK_WARN, "verdict WARN");
	is_int(check_exit_code(&res), 0, "exit 0 with warnings");
	if (res.worst != CHECK_WARN)
		dump();

	/* Debian's initramfs-tools: the fix is update-initramfs. */
	sh("mkdir -p m/etc/initramfs-tools");
	run(root, 0, NOW, NULL, disks, 1);
	ok(has("virtio_scsi", 0, CHECK_WARN, NULL,
	       "printf '%s\\n' virtio_scsi >> /etc/initramfs-tools/modules && "
	       "update-initramfs -u -k 6.1-t"),
	   "initramfs-tools: update-initramfs fix");

	/* A truncated initramfs: unknown, with the reason, and no crash. */
	sh("head -c 200 m/boot/initrd.img-6.1-t > x && mv x m/boot/initrd.img-6.1-t");
	run(root, 0, NOW, NULL, disks, 1);
	ok(has("virtio_blk", 0, CHECK_WARN, "virtio_blk: unknown: ", "lsinitramfs"),
	   "truncated initramfs: virtio_blk unknown");
	ok(has("virtio_pci", 0, CHECK_PASS, NULL, NULL), "virtio_pci still built in");

	/* modules.builtin, a driver not configured, no initramfs. */
	sh("rm -f m/boot/initrd.img-6.1-t; printf 'kernel/drivers/block/virtio_blk.ko\\n' > "
	   "m/lib/modules/6.1-t/modules.builtin; sed -i 's/CONFIG_SCSI_VIRTIO=m/"
	   "# CONFIG_SCSI_VIRTIO is not set/' m/boot/config-6.1-t");
	run(root, 0, NOW, NULL, disks, 1);
	ok(has("virtio_blk", 0, CHECK_PASS, "in modules.builtin", NULL), "modules.builtin");
	ok(has("virtio_scsi", 0, CHECK_WARN, "CONFIG_SCSI_VIRTIO is not set", "boot a kernel"),
	   "not configured at all");
	ok(has("virtio_net", 0, CHECK_PASS, NULL, NULL), "virtio_net from /lib/modules");

	/* Nothing to look at: one line, unknown. */
	sh("rm -rf m/boot/config-6.1-t m/lib/modules/6.1-t");
	run(root, 0, NOW, NULL, disks, 1);
	ok(has("virtio", 0, CHECK_WARN, "virtio drivers unknown: no /boot/config-6.1-t", NULL) &&
	       !find_item("virtio_blk", 0),
	   "no kernel files: one unknown line");

	/* SELinux enforcing, low memory, no MemAvailable, the clock in 1970. */
	sh("echo 1 > m/sys/fs/selinux/enforce; printf 'MemFree: 1000 kB\\nBuffers: 24 kB\\n"
	   "Cached: 1024 kB\\n' > m/proc/meminfo");
	run(root, 0, 5, NULL, disks, 1);
	ok(has("selinux", 0, CHECK_WARN, "enforcing", "SELINUX=disabled"), "selinux: enforcing");
	ok(has("memory", 0, CHECK_WARN, "2.0 MiB available (MemFree+Buffers+Cached), below",
	       "stop memory-hungry services"),
	   "memory: low, estimated");
	ok(has("clock", 0, CHECK_FAIL, "1970-01-01 00:00:05 UTC", "set-ntp"), "clock: 1970 FAILs");
	is_int(check_exit_code(&res), AGENT_EXIT_CHECK, "a FAIL exits 3");
	run(root, 0, (time_t)4102444800ll, NULL, disks, 1); /* 2100 */
	ok(has("clock", 0, CHECK_FAIL, "2100-01-01", NULL), "clock: 2100 FAILs");
	sh("rm -rf m/sys/fs/selinux m/proc/meminfo");
	run(root, 0, NOW, NULL, disks, 1);
	ok(has("selinux", 0, CHECK_PASS, "not enabled", NULL), "selinux: absent");
	ok(has("memory", 0, CHECK_WARN, "unknown", NULL), "memory: no /proc/meminfo");

	/* Not root: image files are fine (WARN), discovered disks are not. */
	run(root, 1000, NOW, NULL, disks, 1);
	ok(has("root", 0, CHECK_WARN, "uid 1000", NULL), "not root, image files: WARN");
	fake_disks[0] = img[1];
	fake_ndisks = 1;
	run(root, 1000, NOW, NULL, NULL, 0);
	ok(has("root", 0, CHECK_FAIL, "uid 1000", "as root"), "not root, real disks: FAIL");
	ok(has("disk", 0, CHECK_PASS, "d16.img: 16.0 MiB", NULL), "discovered disk probed");
	fake_ndisks = 0;
	run(root, 0, NOW, NULL, NULL, 0);
	ok(has("disks", 0, CHECK_FAIL, "no source disks found", "--disk"), "nothing discovered");

	/* Bad sources: missing, a partition, a bad spec. */
	{
		const char *bad[] = {"/nonexistent/disk.img", "/dev/sdz-part1"};

		run(root, 0, NOW, NULL, bad, 2);
		ok(has("disk", 0, CHECK_FAIL, "/nonexistent/disk.img", "check the path"),
		   "missing source: FAIL");
		ok(has("disk", 1, CHECK_FAIL, "is a partition", "--disk /dev/sdz"),
		   "partition: FAIL with the whole disk");
		bad[0] = "=vda";
		is_int(run(root, 0, NOW, NULL, bad, 1), -EINVAL, "\"=vda\" is a usage error");
	}
}

/* A PV holding ten LVs with long names (lvm2's own tools, nothing
 * activated): the disk line says how many, and each LV has a line of its
 * own, whole (one line for all of them was cut at CHECK_TEXT_MAX). */
static void test_many_lvs(void)
{
	static const char *const names[] = {"root",
					    "swap",
					    "home",
					    "var",
					    "var_log",
					    "var_log_audit",
					    "var_tmp",
					    "tmp",
					    "opt_application",
					    "srv_database_files"};
	char root[300], img[320], want[96];
	const char *disks[1];
	size_t i, n = sizeof(names) / sizeof(names[0]);

	if (geteuid() != 0 || !have("pvcreate") || !have("losetup") || !have("sfdisk")) {
		skip("ten LVs: needs root, lvm2, losetup and sfdisk");
		return;
	}
	snprintf(root, sizeof(root), "%s/m", tmp);
	snprintf(img, sizeof(img), "%s/lvs.img", tmp);
	/* lv_N 8 MiB each, the first ext4 (through a loop at its extents). */
	if (sh("export LVM_SUPPRESS_FD_WARNINGS=1; rm -f lvs.img; truncate -s 160M lvs.img\n"
	       "printf 'label: dos\\nstart=2048, type=8e\\n' | sfdisk -q lvs.img\n"
	       "l=$(losetup -f --show -o 1048576 lvs.img); O=\"--devices $l\"\n"
	       "trap 'losetup -d $l' EXIT\n"
	       "pvcreate -q $O $l >/dev/null; vgcreate -q $O -s 4M vg_application_server $l "
	       ">/dev/null\n"
	       "for n in %s %s %s %s %s %s %s %s %s %s; do lvcreate $O --driverloaded n -an -Zn "
	       "-q -L 8M -n lv_$n vg_application_server >/dev/null 2>&1; done\n"
	       "pe=$(pvs $O --noheadings --units b --nosuffix -o pe_start | tr -d ' ')\n"
	       "e=$(losetup -f --show -o $((1048576 + pe)) --sizelimit 8388608 lvs.img)\n"
	       "mkfs.ext4 -q $e; losetup -d $e",
	       names[0], names[1], names[2], names[3], names[4], names[5], names[6], names[7],
	       names[8], names[9])) {
		skip("ten LVs: could not build the disk");
		return;
	}
	disks[0] = img;
	run(root, 0, NOW, NULL, disks, 1);
	ok(has("disk", 0, CHECK_PASS, "10 LVs; a migration sends", NULL),
	   "the disk line counts the LVs and ends whole");
	for (i = 0; i < n; i++) {
		const struct check_item *it = find_item("lv", (int)i);

		snprintf(want, sizeof(want), ": LV vg_application_server/lv_%s ", names[i]);
		ok(it && it->level == CHECK_PASS && strstr(it->found, want) &&
		       !strstr(it->found, "...") && it->found[strlen(it->found) - 1] == ')',
		   "LV %s on its own line: %s", names[i], it ? it->found : "(none)");
	}
	ok(has("lv", 0, CHECK_PASS, "lv_root ext4 8.0 MiB (", NULL), "the ext4 LV is named ext4");
	ok(!find_item("lv", (int)n), "no eleventh LV line");
	if (!has("lv", 0, CHECK_PASS, "lv_root ext4", NULL))
		dump();
	sh("rm -f lvs.img");
}

static void test_destination(void)
{
	static struct agent_target t;
	char root[300], img[2][320], spec[2][340];
	const char *disks[2];

	snprintf(root, sizeof(root), "%s/m", tmp);
	snprintf(img[0], sizeof(img[0]), "%s/d8.img", tmp);
	snprintf(img[1], sizeof(img[1]), "%s/d16.img", tmp);
	snprintf(t.text, sizeof(t.text), "127.0.0.1:4430");
	t.port = 4430;
	memset(&fake_inv, 0, sizeof(fake_inv));
	snprintf(fake_inv.server, sizeof(fake_inv.server), "ferry-init test");
	snprintf(fake_inv.state, sizeof(fake_inv.state), "waiting");
	fake_inv.version = 1;
	fake_inv.ndisks = 2;
	snprintf(fake_inv.disks[0].name, PROTO_NAME_MAX, "vda");
	fake_inv.disks[0].size = 12ull << 20;
	snprintf(fake_inv.disks[1].name, PROTO_NAME_MAX, "vdb");
	fake_inv.disks[1].size = 4ull << 20;
	fake_inv.disks[0].lsec = fake_inv.disks[1].lsec = 512;
	fake_inv.time_unix = (uint64_t)NOW + 30;
	fake_connect_rc = 0;
	fake_connects = fake_byes = 0;

	/* In order: d8 -> vda fits; d16 -> vdb (4 MiB) is too small. */
	disks[0] = img[0];
	disks[1] = img[1];
	run(root, 0, NOW, &t, disks, 2);
	ok(fake_connects == 1 && fake_byes == 1, "connected once and said BYE");
	ok(has("destination", 0, CHECK_PASS, "127.0.0.1:4430: TLS handshake and token valid",
	       NULL) &&
	       strstr(find_item("destination", 0)->found, "vda 12.0 MiB, vdb 4.0 MiB"),
	   "destination: PASS with its disks");
	ok(has("clock_skew", 0, CHECK_PASS, "agree within 30 s", NULL), "clocks agree");
	ok(has("capacity", 0, CHECK_PASS, "d8.img -> vda: 8.0 MiB fits in 12.0 MiB", NULL),
	   "d8 fits vda");
	ok(has("capacity", 1, CHECK_FAIL,
	       "the storage space of the target device is too small: vdb is 4.0 MiB (4194304 "
	       "bytes), the source ",
	       "at least 16.0 MiB") &&
	       strstr(find_item("capacity", 1)->found, "d16.img needs 16.0 MiB (16777216 bytes)"),
	   "d16 on vdb: the seed's wording with both sizes");
	is_int(check_exit_code(&res), AGENT_EXIT_CHECK, "too small: exit 3");
	if (res.worst != CHECK_FAIL)
		dump();

	/* Explicit mapping: d16=vda, d8 takes the next one not named (vdb). */
	snprintf(spec[0], sizeof(spec[0]), "%s=vda", img[1]);
	disks[0] = spec[0];
	disks[1] = img[0];
	fake_inv.disks[1].size = 8ull << 20;
	fake_inv.disks[0].size = 16ull << 20;
	fake_inv.time_unix = (uint64_t)NOW - 7200;
	run(root, 0, NOW, &t, disks, 2);
	ok(has("capacity", 0, CHECK_PASS, "d16.img -> vda", NULL) &&
	       has("capacity", 1, CHECK_PASS, "d8.img -> vdb: 8.0 MiB fits in 8.0 MiB", NULL),
	   "explicit DST and in-order mapping");
	ok(has("clock_skew", 0, CHECK_WARN, "the clocks differ by 2 h 0 min", "chronyc"),
	   "two hours apart: WARN");

	/* A destination disk that does not exist, one named twice, none left. */
	snprintf(spec[0], sizeof(spec[0]), "%s=sdq", img[0]);
	disks[0] = spec[0];
	run(root, 0, NOW, &t, disks, 1);
	ok(has("capacity", 0, CHECK_FAIL,
	       "destination disk sdq does not exist: the destination "
	       "has vda (16.0 MiB), vdb (8.0 MiB)",
	       NULL),
	   "unknown DST named");
	snprintf(spec[0], sizeof(spec[0]), "%s=vda1", img[0]);
	run(root, 0, NOW, &t, disks, 1);
	ok(has("capacity", 0, CHECK_FAIL, "vda1 looks like a partition", "whole disks"),
	   "a partition named as DST");
	snprintf(spec[0], sizeof(spec[0]), "%s=vdb", img[0]);
	snprintf(spec[1], sizeof(spec[1]), "%s=vdb", img[1]);
	disks[0] = spec[0];
	disks[1] = spec[1];
	run(root, 0, NOW, &t, disks, 2);
	ok(has("capacity", 1, CHECK_FAIL, "vdb is named for both", NULL), "DST named twice");
	fake_inv.ndisks = 1;
	disks[0] = img[0];
	disks[1] = img[1];
	run(root, 0, NOW, &t, disks, 2);
	ok(has("capacity", 1, CHECK_FAIL, "no destination disk left for", NULL), "none left");

	/* Sector size and read-only, as the destination would refuse them. */
	fake_inv.disks[0].lsec = 4096;
	run(root, 0, NOW, &t, disks, 1);
	ok(has("capacity", 0, CHECK_FAIL, "sector sizes differ", NULL), "4K sectors refused");
	fake_inv.disks[0].lsec = 512;
	fake_inv.disks[0].flags = PROTO_DISK_RO;
	run(root, 0, NOW, &t, disks, 1);
	ok(has("capacity", 0, CHECK_FAIL, "read-only", NULL), "read-only refused");

	/* A wrong token, a refused connection, a busy destination. */
	fake_connect_rc = -EKEYREJECTED;
	fake_connect_err = "127.0.0.1:4430: TLS handshake failed: the destination's key does not "
			   "match the token";
	run(root, 0, NOW, &t, disks, 1);
	ok(has("destination", 0, CHECK_FAIL, "does not match the token",
	       "token the destination "
	       "shows") &&
	       !find_item("capacity", 0),
	   "wrong token: FAIL, no capacity lines");
	is_int(check_exit_code(&res), AGENT_EXIT_CHECK, "wrong token: exit 3");
	fake_connect_rc = -ECONNREFUSED;
	fake_connect_err = "cannot connect to 127.0.0.1:4430: Connection refused";
	run(root, 0, NOW, &t, disks, 1);
	ok(has("destination", 0, CHECK_FAIL, "Connection refused", "allow TCP port 4430"),
	   "refused: the firewall fix");
	fake_connect_rc = -EBUSY;
	fake_connect_err = "busy";
	run(root, 0, NOW, &t, disks, 1);
	ok(has("destination", 0, CHECK_FAIL, "busy", "another agent"), "busy");
	fake_connect_rc = 0;
}

/* ---- lines, NDJSON, exit codes ------------------------------------------------ */

static void test_format(void)
{
	static struct check_item it;
	static struct check_result r;
	char line[CHECK_LINE_MAX], small[16];
	char *p;
	size_t i;

	it.level = CHECK_WARN;
	snprintf(it.name, sizeof(it.name), "selinux");
	snprintf(it.found, sizeof(it.found), "SELinux is enforcing");
	snprintf(it.fix, sizeof(it.fix), "set SELINUX=disabled");
	is_int(check_format(&it, 0, line, sizeof(line)), 0, "text line");
	ok(!strcmp(line, "WARN  SELinux is enforcing  \xe2\x80\x94 set SELINUX=disabled"),
	   "text: LEVEL  found  \xe2\x80\x94 fix: %s", line);
	it.level = CHECK_PASS;
	it.fix[0] = 0;
	check_format(&it, 0, line, sizeof(line));
	ok(!strcmp(line, "PASS  SELinux is enforcing"), "PASS without a fix: %s", line);

	it.level = CHECK_FAIL;
	snprintf(it.found, sizeof(it.found), "a \"quoted\"\\ path\nwith a newline");
	snprintf(it.fix, sizeof(it.fix), "tab\there");
	check_format(&it, 1, line, sizeof(line));
	ok(!strcmp(line, "{\"event\":\"check\",\"check\":\"selinux\",\"level\":\"FAIL\","
			 "\"found\":\"a \\\"quoted\\\"\\\\ path\\u000awith a newline\","
			 "\"fix\":\"tab\\u0009here\"}"),
	   "JSON escapes: %s", line);
	is_int(check_format(&it, 0, small, sizeof(small)), -ENOSPC, "short buffer: -ENOSPC");
	ok(strlen(small) == sizeof(small) - 1, "short buffer: cut, terminated");

	/* A full-length found and fix with control bytes everywhere still
	 * make one bounded line. */
	memset(it.found, '\x01', sizeof(it.found) - 1);
	memset(it.fix, '"', sizeof(it.fix) - 1);
	check_format(&it, 1, line, sizeof(line));
	ok(line[strlen(line) - 1] == '}', "worst-case JSON still closes (%zu bytes)", strlen(line));

	memset(&r, 0, sizeof(r));
	r.count[CHECK_PASS] = 5;
	r.count[CHECK_WARN] = 1;
	r.worst = CHECK_WARN;
	check_format_summary(&r, 0, line, sizeof(line));
	ok(!strcmp(line, "check: WARN (5 passed, 1 warning, 0 failed)"), "summary: %s", line);
	is_int(check_exit_code(&r), 0, "warnings only: exit 0");
	r.count[CHECK_FAIL] = 2;
	r.worst = CHECK_FAIL;
	check_format_summary(&r, 1, line, sizeof(line));
	ok(!strcmp(line, "{\"event\":\"check_summary\",\"result\":\"FAIL\",\"pass\":5,\"warn\":1,"
			 "\"fail\":2}"),
	   "JSON summary: %s", line);
	is_int(check_exit_code(&r), 3, "a FAIL: exit 3");

	/* More lines than fit: counted, and a dropped FAIL still fails. */
	{
		static const struct check_opts o = {0};
		struct env e = {"", "x", 0, NOW};
		struct ck c = {&o, &r, &e};

		memset(&r, 0, sizeof(r));
		for (i = 0; i < CHECK_MAX + 3; i++)
			ck_say(&c, i == CHECK_MAX + 1 ? CHECK_FAIL : CHECK_PASS, "x", NULL, "line %zu",
			       i);
		ok(r.n == CHECK_MAX && r.dropped == 3 && r.count[CHECK_FAIL] == 1 &&
		       check_exit_code(&r) == 3,
		   "overflow: %zu kept, %zu dropped, FAIL counted", r.n, r.dropped);
	}

	/* A found text too long for its field is cut with "...". */
	{
		static const struct check_opts o = {0};
		struct env e = {"", "x", 0, NOW};
		struct ck c = {&o, &r, &e};
		char big[2 * CHECK_TEXT_MAX];

		memset(&r, 0, sizeof(r));
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		ck_say(&c, CHECK_PASS, "x", NULL, "%s", big);
		p = r.item[0].found;
		ok(strlen(p) == CHECK_TEXT_MAX - 1 && !strcmp(p + strlen(p) - 3, "..."),
		   "long text cut with ...");
	}

	/* Printed as they come: one line each, then the summary. */
	{
		struct check_opts o;
		struct env e = {"/nonexistent-root", "x", 0, NOW};
		FILE *f = tmpfile();
		char buf[CHECK_LINE_MAX];
		int lines = 0, json_ok = 1;

		memset(&o, 0, sizeof(o));
		o.out = f;
		o.json = 1;
		fake_ndisks = 0;
		if (f && run_checks(&o, &e, &r) == 0) {
			rewind(f);
			while (fgets(buf, sizeof(buf), f)) {
				lines++;
				if (buf[0] != '{' || !strstr(buf, "}\n") ||
				    !strstr(buf, "\"event\":\"check"))
					json_ok = 0;
			}
			ok(json_ok && (size_t)lines == r.n + 1 && strstr(buf, "check_summary"),
			   "--json: %d NDJSON lines, the last the summary", lines);
		} else {
			skip("no tmpfile");
		}
		if (f)
			fclose(f);
	}
}

/* The destination's clock travels in WELCOME. */
static void test_wire(void)
{
	static struct proto_inventory a, b;
	static uint8_t buf[PROTO_HDR_LEN + PROTO_CTRL_MAX];
	struct proto_frame f;
	struct wbuf w;

	memset(&a, 0, sizeof(a));
	a.version = 1;
	a.time_unix = 1767225600;
	wbuf_init(&w, buf, sizeof(buf));
	is_int(proto_enc_inventory(&w, PROTO_WELCOME, &a), 0, "WELCOME with time_unix encodes");
	f.type = PROTO_WELCOME;
	f.payload = buf + PROTO_HDR_LEN;
	f.len = (uint32_t)(w.len - PROTO_HDR_LEN);
	is_int(proto_dec_inventory(&f, &b), 0, "WELCOME with time_unix decodes");
	is_int(b.time_unix, a.time_unix, "time_unix round trip");
	f.len -= 8;
	ok(proto_dec_inventory(&f, &b) != 0, "WELCOME without time_unix refused");
}

int main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmp, sizeof(tmp), "%s/ferry-test-check.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	if (!have("cpio")) {
		skip("cpio not installed: no initramfs archives");
	} else {
		test_scan();
		test_machine();
		test_many_lvs();
		test_destination();
	}
	test_format();
	test_wire();
	if (!getenv("KEEP")) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd))
			note("could not remove %s", tmp);
	} else {
		note("kept %s", tmp);
	}
	return tap_done();
}
