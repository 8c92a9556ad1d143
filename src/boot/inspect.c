/*
 * inspect.c - the boot-readiness report: disks and partition tables, the
 * root filesystem, every fstab source, the default boot entry and its
 * root=, the virtio drivers of its kernel (config, modules.builtin,
 * initramfs, /lib/modules) and a bootloader or EFI system partition.
 * Each line says what it checked and where; "unknown" is a WARN with
 * its reason, never a guess. Read-only throughout.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "boot/boot_impl.h"

#define KVER_MAX 64

/* ---- the report ----------------------------------------------------- */

const char *boot_level_name(enum boot_level l)
{
	return l == BOOT_PASS ? "PASS" : l == BOOT_WARN ? "WARN" : "FAIL";
}

void boot_say(struct boot_report *r, enum boot_level l, const char *fmt, ...)
{
	va_list ap;
	struct boot_line *ln;

	if (!r)
		return;
	if (l > r->verdict)
		r->verdict = l;
	if (r->n >= BOOT_REPORT_LINES) {
		r->dropped++;
		return;
	}
	ln = &r->line[r->n++];
	ln->level = l;
	va_start(ap, fmt);
	vsnprintf(ln->text, sizeof(ln->text), fmt, ap);
	va_end(ap);
	boot_printable(ln->text);
}

int boot_report_write(const struct boot_report *r, int fd)
{
	char buf[BOOT_LINE_MAX + 32];
	size_t i;
	int n, rc;

	for (i = 0; i < r->n; i++) {
		n = snprintf(buf, sizeof(buf), "%s  %s\n", boot_level_name(r->line[i].level),
			     r->line[i].text);
		if ((rc = fd_write_all(fd, buf,
				       (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1)))
			return rc;
	}
	if (r->dropped) {
		n = snprintf(buf, sizeof(buf), "....  %zu more lines not shown\n", r->dropped);
		if ((rc = fd_write_all(fd, buf, (size_t)n)))
			return rc;
	}
	n = snprintf(buf, sizeof(buf), "boot-readiness: %s\n", boot_level_name(r->verdict));
	return fd_write_all(fd, buf, (size_t)n);
}

/* ---- disks ----------------------------------------------------------- */

static void say_disks(const struct boot_ctx *c, struct boot_report *r)
{
	char list[BOOT_LINE_MAX], sz[24];
	size_t i, k, o;

	for (i = 0; i < c->ndisk; i++) {
		const struct boot_disk *d = &c->disk[i];

		if (d->err) {
			boot_say(r, BOOT_FAIL, "disk %s", d->errtext);
			continue;
		}
		o = 0;
		list[0] = 0;
		for (k = 0; k < c->nvol; k++) {
			const struct boot_vol *v = &c->vol[k];
			int w;

			if (v->disk != i)
				continue;
			w = snprintf(list + o, sizeof(list) - o, "%s%s %s%s", o ? ", " : "",
				     v->name, v->fs ? boot_fs_name(v->fs) : "(no filesystem found)",
				     v->esp	    ? " ESP"
				     : v->bios_boot ? " BIOS-boot"
						    : "");
			if (w < 0 || (size_t)w >= sizeof(list) - o)
				break;
			o += (size_t)w;
		}
		boot_say(r, BOOT_PASS, "disk %s (%s): %s table, %s", d->name,
			 fmt_bytes(d->size, sz, sizeof(sz)), d->table[0] ? d->table : "no",
			 list[0] ? list : "nothing found");
		if (d->warn[0])
			boot_say(r, d->warn_level, "disk %s", d->warn);
	}
	if (c->vol_dropped)
		boot_say(r, BOOT_WARN, "more than %d partitions; %zu were not looked at",
			 BOOT_VOL_MAX, c->vol_dropped);
}

/* ---- fstab ---------------------------------------------------------- */

static int one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return 1;
	return 0;
}

static const char *const pseudo_types[] = {
    "tmpfs",	   "proc",    "sysfs",	    "devpts",	  "devtmpfs", "cgroup",
    "cgroup2",	   "debugfs", "securityfs", "hugetlbfs",  "mqueue",   "efivarfs",
    "binfmt_misc", "pstore",  "tracefs",    "configfs",	  "fusectl",  "bpf",
    "overlay",	   "ramfs",   "autofs",	    "rpc_pipefs", "none",     NULL};
static const char *const net_types[] = {"nfs",	 "nfs4",      "cifs", "smbfs", "smb3",
					"sshfs", "glusterfs", "ceph", "9p",    "virtiofs",
					"davfs", "lustre",    "afs",  NULL};

/* /dev/sda2, /dev/vdb1, /dev/nvme0n1p2, /dev/xvda1: a kernel disk name. */
static int kernel_devname(const char *dev)
{
	static const char *const pre[] = {"sd", "vd", "hd", "xvd", "nvme", "mmcblk", NULL};
	size_t i;

	for (i = 0; pre[i]; i++)
		if (!strncmp(dev, pre[i], strlen(pre[i])))
			return 1;
	return 0;
}

static void disk_names(const struct boot_ctx *c, char *out, size_t cap)
{
	size_t i, o = 0;

	out[0] = 0;
	for (i = 0; i < c->ndisk && o < cap; i++) {
		int w = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", c->disk[i].name);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static void check_entry(const struct boot_ctx *c, const struct boot_fstab_ent *e,
			struct boot_report *r, unsigned *checked)
{
	enum boot_level miss =
	    boot_fstab_opt(e, "nofail") || boot_fstab_opt(e, "noauto") ? BOOT_WARN : BOOT_FAIL;
	const char *why = miss == BOOT_WARN ? " (nofail/noauto: boot goes on without it)" : "";
	char names[128];
	int v, nm, rc;

	(*checked)++;
	rc = boot_find_vol(c, e->spec, &v, &nm);
	if (rc == 0) {
		const struct boot_vol *vol = &c->vol[v];

		if (nm > 1)
			boot_say(r, BOOT_WARN,
				 "fstab line %d: %.80s (%.60s) matches %d filesystems; "
				 "the first is %s",
				 e->line, e->spec, e->file, nm, vol->name);
		else
			boot_say(r, BOOT_PASS, "fstab line %d: %.80s (%.60s) is %s (%s)", e->line,
				 e->spec, e->file, vol->name, boot_fs_name(vol->fs));
		if (!strcmp(e->file, "/") && v != c->root)
			boot_say(r, BOOT_WARN,
				 "fstab line %d: / is %s, but the root with /etc/fstab "
				 "and an init is %s",
				 e->line, vol->name, c->vol[c->root].name);
		return;
	}
	disk_names(c, names, sizeof(names));
	if (rc == -ENOENT) {
		boot_say(r, miss,
			 "fstab line %d: %.80s (%.60s) matches no filesystem or partition "
			 "on %s%s",
			 e->line, e->spec, e->file, names, why);
		return;
	}
	if (!strncmp(e->spec, "/dev/disk/by-id/", 16) ||
	    !strncmp(e->spec, "/dev/disk/by-path/", 18)) {
		boot_say(r, BOOT_WARN,
			 "fstab line %d: %.80s (%.60s) names hardware, which changes "
			 "in a migration; not checked (prefer UUID=)",
			 e->line, e->spec, e->file);
		return;
	}
	if (!strncmp(e->spec, "/dev/", 5) && kernel_devname(e->spec + 5)) {
		v = boot_vol_by_name(c, e->spec + 5);
		if (v >= 0)
			boot_say(r, BOOT_WARN,
				 "fstab line %d: %.80s (%.60s) is %s here, but kernel "
				 "names follow the disk bus (prefer UUID=)",
				 e->line, e->spec, e->file, c->vol[v].name);
		else
			boot_say(r, miss,
				 "fstab line %d: %.80s (%.60s): no such device here (disks: "
				 "%s)%s",
				 e->line, e->spec, e->file, names, why);
		return;
	}
	boot_say(r, BOOT_WARN,
		 "fstab line %d: %.80s (%.60s) is not checked (LVM, device-mapper, "
		 "RAID or another form)",
		 e->line, e->spec, e->file);
}

static void check_fstab(const struct boot_ctx *c, struct boot_report *r)
{
	const struct boot_vol *root = &c->vol[c->root];
	struct boot_fstab_ent *e;
	unsigned checked = 0, skipped = 0;
	struct cur cu;
	int ln = 0;

	if (!c->fstab) {
		boot_say(r, BOOT_FAIL, "fstab: %s:/etc/fstab cannot be read: %s", root->name,
			 c->fstab_err == -EFBIG ? "larger than 256 KiB" : strerror(-c->fstab_err));
		return;
	}
	e = malloc(sizeof(*e));
	if (!e) {
		boot_say(r, BOOT_WARN, "fstab: out of memory");
		return;
	}
	cur_init(&cu, c->fstab, c->fstab_len);
	while (boot_fstab_next(&cu, &ln, e) > 0) {
		if (e->bad) {
			boot_say(r, BOOT_WARN, "fstab line %d: not an fstab entry; ignored",
				 e->line);
			continue;
		}
		if (one_of(e->type, pseudo_types) || one_of(e->spec, pseudo_types) ||
		    one_of(e->type, net_types) || !strncmp(e->type, "fuse", 4) ||
		    strstr(e->spec, ":/") || !strncmp(e->spec, "//", 2) ||
		    boot_fstab_opt(e, "bind") || boot_fstab_opt(e, "rbind") ||
		    (!strcmp(e->type, "swap") && e->spec[0] == '/' &&
		     strncmp(e->spec, "/dev/", 5))) {
			skipped++;
			continue;
		}
		check_entry(c, e, r, &checked);
	}
	free(e);
	boot_say(r, BOOT_PASS,
		 "fstab: %s:/etc/fstab, %u entries checked, %u not disk-backed "
		 "(pseudo, network, bind, swap files) skipped",
		 root->name, checked, skipped);
}

/* ---- the kernel's virtio drivers ------------------------------------- */

struct drv {
	const char *mod, *cfg;
	int early; /* needed before the root is mounted: in the initramfs */
};

static const struct drv drvs[] = {
    {"virtio_blk", "CONFIG_VIRTIO_BLK", 1},
    {"virtio_pci", "CONFIG_VIRTIO_PCI", 1},
    {"virtio_net", "CONFIG_VIRTIO_NET", 0},
};

/* The version in "vmlinuz-6.1.0-13-amd64", or "" */
static void version_from_name(const char *path, char *ver, size_t cap)
{
	static const char *const pre[] = {"vmlinuz-", "vmlinux-", "bzImage-", "kernel-", NULL};
	const char *b = strrchr(path, '/');
	size_t i;

	b = b ? b + 1 : path;
	ver[0] = 0;
	for (i = 0; pre[i]; i++)
		if (!strncmp(b, pre[i], strlen(pre[i])) && b[strlen(pre[i])]) {
			snprintf(ver, cap, "%s", b + strlen(pre[i]));
			return;
		}
}

/* The x86 boot header names the release: "6.1.0-13-amd64 (debian-kernel@...) #1 ..." */
static void version_from_image(struct boot_ext *fs, const char *path, char *ver, size_t cap)
{
	uint8_t *buf = malloc(0x10200 + KVER_MAX);
	const uint8_t *p;
	uint16_t hver, vptr;
	uint32_t magic;
	size_t got, i;
	struct cur c;

	ver[0] = 0;
	if (!buf || boot_ext_pread(fs, path, 0, buf, 0x10200 + KVER_MAX, &got) || got < 0x210)
		goto out;
	cur_init(&c, buf, got);
	boot_skip(&c, 0x202);
	boot_le32(&c, &magic);
	boot_le16(&c, &hver);
	boot_skip(&c, 0x20e - 0x208);
	boot_le16(&c, &vptr);
	if (c.err || magic != 0x53726448 /* "HdrS" */ || hver < 0x200)
		goto out;
	cur_init(&c, buf, got);
	if (boot_skip(&c, (size_t)vptr + 0x200) || cur_ref(&c, &p, 0))
		goto out;
	for (i = 0; i + 1 < cap && i < cur_left(&c) && p[i] > 0x20 && p[i] < 0x7f; i++)
		ver[i] = (char)p[i];
	ver[i] = 0;
	if (boot_path_ok(ver) || strchr(ver, '/'))
		ver[0] = 0;
out:
	free(buf);
}

/* 'y', 'm', 'n' from a kernel .config text; 0 when the option is absent. */
static int config_value(const char *text, size_t len, const char *opt)
{
	char want[64], notset[80];
	const char *p = text, *end = text + len, *nl;
	size_t k;

	snprintf(want, sizeof(want), "%s=", opt);
	snprintf(notset, sizeof(notset), "# %s is not set", opt);
	k = strlen(want);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if ((size_t)(nl - p) > k && !strncmp(p, want, k))
			return p[k] == 'y' ? 'y' : p[k] == 'm' ? 'm' : 'n';
		if ((size_t)(nl - p) >= strlen(notset) && !strncmp(p, notset, strlen(notset)))
			return 'n';
		p = nl + 1;
	}
	return 0;
}

/* A line of modules.builtin / modules.dep naming mod's .ko. */
static int modlist_has(const char *text, size_t len, const char *mod)
{
	char needle[48];
	const char *p = text, *end = text + len, *hit;
	size_t k;

	snprintf(needle, sizeof(needle), "/%s.ko", mod);
	k = strlen(needle);
	while (p < end && (hit = memmem(p, (size_t)(end - p), needle, k))) {
		const char *after = hit + k;

		if (after == end || *after == '\n' || *after == ':' || *after == '.')
			return 1;
		p = hit + 1;
	}
	return 0;
}

struct kinfo {
	char ver[KVER_MAX];
	char where[BOOT_NAME_MAX + BOOT_PATH_MAX + 8]; /* what told the values */
	int val[3];				       /* per drvs[]: y m n, 0 unknown */
	int have_modlist;
	char *dep; /* /lib/modules/V/modules.dep */
	size_t deplen;
};

static int try_config(struct boot_ctx *c, int vol, const char *path, struct kinfo *k)
{
	struct boot_ext *fs;
	char *text;
	size_t len, i;

	if (vol < 0 || boot_ctx_ext(c, vol, &fs) || boot_ext_read(fs, path, 4u << 20, &text, &len))
		return 0;
	for (i = 0; i < FERRY_ARRAY_LEN(drvs); i++) {
		k->val[i] = config_value(text, len, drvs[i].cfg);
		if (!k->val[i])
			k->val[i] = 'n'; /* a whole .config lists every option it knows */
	}
	free(text);
	boot_fmt(k->where, sizeof(k->where), "%s:%s", c->vol[vol].name, path);
	return 1;
}

static void kernel_facts(struct boot_ctx *c, int kvol, const struct boot_file *kf, struct kinfo *k)
{
	char path[BOOT_PATH_MAX];
	struct boot_ext *fs;
	char *text;
	size_t len, i;
	const char *slash = strrchr(kf->path, '/');
	int dlen = slash ? (int)(slash - kf->path) : 0;

	if (!k->ver[0])
		return;
	/* /boot/config-V beside the kernel, or on root or /boot */
	if (!boot_fmt(path, sizeof(path), "%.*s/config-%s", dlen, kf->path, k->ver) &&
	    try_config(c, kvol, path, k))
		goto modules;
	if (!boot_fmt(path, sizeof(path), "/boot/config-%s", k->ver) &&
	    try_config(c, c->root, path, k))
		goto modules;
	if (!boot_fmt(path, sizeof(path), "/config-%s", k->ver) && try_config(c, c->boot, path, k))
		goto modules;
	/* No config: modules.builtin says what is built in. */
	if (!boot_fmt(path, sizeof(path), "/lib/modules/%s/modules.builtin", k->ver) &&
	    !boot_ctx_ext(c, c->root, &fs) && !boot_ext_read(fs, path, 4u << 20, &text, &len)) {
		k->have_modlist = 1;
		for (i = 0; i < FERRY_ARRAY_LEN(drvs); i++)
			k->val[i] = modlist_has(text, len, drvs[i].mod) ? 'y' : 0;
		free(text);
		boot_fmt(k->where, sizeof(k->where), "%s:%s", c->vol[c->root].name, path);
	}
modules:
	if (!boot_fmt(path, sizeof(path), "/lib/modules/%s/modules.dep", k->ver) &&
	    !boot_ctx_ext(c, c->root, &fs) &&
	    !boot_ext_read(fs, path, 16u << 20, &k->dep, &k->deplen)) {
		/* modules.builtin said "not built in": modules.dep says module or absent. */
		for (i = 0; i < FERRY_ARRAY_LEN(drvs); i++)
			if (k->have_modlist && !k->val[i])
				k->val[i] = modlist_has(k->dep, k->deplen, drvs[i].mod) ? 'm' : 'n';
	}
}

struct initrd_set {
	size_t n;
	int vol[BOOT_INITRD_MAX];
	char path[BOOT_INITRD_MAX][BOOT_PATH_MAX];
};

/* Scans each initrd; found bits OR'ed. 0 complete, else err says why not. */
static int scan_initrds(struct boot_ctx *c, const struct initrd_set *s, unsigned *found, char *fmt,
			size_t fmtcap, char *err, size_t errcap)
{
	static const char *const want[] = {"virtio_blk", "virtio_pci", "virtio_net"};
	char one[32];
	struct boot_ext *fs;
	uint64_t len;
	unsigned f;
	size_t i;
	int fd, r = 0;

	*found = 0;
	fmt[0] = 0;
	for (i = 0; i < s->n && !r; i++) {
		if (boot_ctx_ext(c, s->vol[i], &fs))
			return boot_err(err, errcap, -EIO, "%s cannot be opened",
					c->vol[s->vol[i]].name);
		fd = boot_tmpfd("ferry-initrd");
		if (fd < 0)
			return boot_err(err, errcap, fd, "no memory file for the initramfs: %s",
					strerror(-fd));
		r = boot_ext_to_fd(fs, s->path[i], BOOT_INITRDS_MAX, fd, &len);
		if (r == -EFBIG)
			r = boot_err(err, errcap, r, "%s:%s is larger than %llu MiB",
				     c->vol[s->vol[i]].name, s->path[i], BOOT_INITRDS_MAX >> 20);
		else if (r)
			r = boot_err(err, errcap, r, "%s:%s: %s", c->vol[s->vol[i]].name,
				     s->path[i], strerror(-r));
		else
			r = boot_initrd_scan(fd, len, want, FERRY_ARRAY_LEN(want), &f, one,
					     sizeof(one), err, errcap);
		close(fd);
		if (!r || r == -EOPNOTSUPP || r == -EIO)
			snprintf(fmt + strlen(fmt), fmtcap - strlen(fmt), "%s%s", i ? ", " : "",
				 one);
		if (!r)
			*found |= f;
	}
	return r;
}

static void check_drivers(struct boot_ctx *c, const struct boot_entry *e, int kvol, const int *ivol,
			  struct boot_report *r)
{
	struct kinfo k;
	struct initrd_set is;
	struct boot_ext *fs;
	char fmt[96] = "", why[BOOT_ERR_MAX] = "", ilist[192] = "";
	unsigned found = 0;
	int virtio_disks = 0, scanned = 0, scan_rc = 0;
	size_t i;
	enum boot_level bad;

	memset(&k, 0, sizeof(k));
	memset(&is, 0, sizeof(is));
	for (i = 0; i < c->ndisk; i++)
		if (!strncmp(c->disk[i].name, "vd", 2))
			virtio_disks = 1;
	/* Missing drivers fail a virtio destination; elsewhere they may not matter. */
	bad = virtio_disks ? BOOT_FAIL : BOOT_WARN;

	if (!e) {
		boot_say(r, BOOT_WARN,
			 "virtio drivers: unknown: no default boot entry and no "
			 "vmlinuz-VERSION in /boot, so no kernel to check");
		return;
	}
	version_from_name(e->kernel.path, k.ver, sizeof(k.ver));
	if ((!k.ver[0] || boot_path_ok(k.ver)) && !boot_ctx_ext(c, kvol, &fs))
		version_from_image(fs, e->kernel.path, k.ver, sizeof(k.ver));
	if (!k.ver[0]) {
		boot_say(r, BOOT_WARN,
			 "virtio drivers: unknown: the release of %s:%s is not in its "
			 "name or its boot header",
			 e->kernel.part, e->kernel.path);
		return;
	}
	kernel_facts(c, kvol, &e->kernel, &k);
	if (!k.where[0]) {
		boot_say(r, BOOT_WARN,
			 "virtio drivers: unknown: no config-%s beside %s:%s or in "
			 "/boot, and no /lib/modules/%s/modules.builtin on %s",
			 k.ver, e->kernel.part, e->kernel.path, k.ver, c->vol[c->root].name);
		free(k.dep);
		return;
	}
	for (i = 0; i < e->ninitrd && i < BOOT_INITRD_MAX; i++) {
		is.vol[is.n] = ivol[i];
		snprintf(is.path[is.n++], BOOT_PATH_MAX, "%s", e->initrd[i].path);
		snprintf(ilist + strlen(ilist), sizeof(ilist) - strlen(ilist), "%s%s:%s",
			 i ? " " : "", e->initrd[i].part, e->initrd[i].path);
	}

	for (i = 0; i < FERRY_ARRAY_LEN(drvs); i++) {
		const struct drv *d = &drvs[i];
		int v = k.val[i];

		if (v == 'y') {
			boot_say(r, BOOT_PASS, "%s: built into kernel %s (%s)", d->mod, k.ver,
				 k.where);
		} else if (v == 'n') {
			boot_say(r, bad, "%s: kernel %s has no %s (%s)%s", d->mod, k.ver, d->mod,
				 k.where, virtio_disks ? "" : "; needed only on virtio hardware");
		} else if (v == 0) {
			boot_say(r, BOOT_WARN, "%s: unknown: %s does not say", d->mod, k.where);
		} else if (!d->early) {
			/* Loaded after the root is mounted: it must be in /lib/modules. */
			if (!k.dep)
				boot_say(r, BOOT_WARN,
					 "%s: unknown: a module in kernel %s, and "
					 "/lib/modules/%s/modules.dep is not readable on %s",
					 d->mod, k.ver, k.ver, c->vol[c->root].name);
			else if (modlist_has(k.dep, k.deplen, d->mod))
				boot_say(r, BOOT_PASS, "%s: module, in %s:/lib/modules/%s", d->mod,
					 c->vol[c->root].name, k.ver);
			else
				boot_say(r, bad,
					 "%s: a module in kernel %s but not in %s:/lib/modules/%s"
					 "/modules.dep: no network on a virtio NIC",
					 d->mod, k.ver, c->vol[c->root].name, k.ver);
		} else if (!is.n) {
			boot_say(r, bad,
				 "%s: a module in kernel %s (%s) and the default entry has no "
				 "initramfs: the root disk cannot be found on virtio",
				 d->mod, k.ver, k.where);
		} else {
			if (!scanned) {
				scan_rc = scan_initrds(c, &is, &found, fmt, sizeof(fmt), why,
						       sizeof(why));
				scanned = 1;
			}
			if (found & (1u << i))
				boot_say(r, BOOT_PASS, "%s: module, in initramfs %s (%s)", d->mod,
					 ilist, fmt);
			else if (scan_rc)
				boot_say(r, BOOT_WARN, "%s: unknown: a module in kernel %s; %s",
					 d->mod, k.ver, why);
			else
				boot_say(
				    r, bad,
				    "%s: a module in kernel %s and not in initramfs %s (%s, "
				    "read to its end): the root disk cannot be found on virtio",
				    d->mod, k.ver, ilist, fmt);
		}
	}
	free(k.dep);
}

struct newest {
	char name[BOOT_PATH_MAX];
};

static int newest_cb(void *arg, const char *name)
{
	struct newest *n = arg;

	/* vmlinuz-0-rescue-<machine-id> is RHEL's rescue image, not the default */
	if (strncmp(name, "vmlinuz-", 8) || !name[8] || strstr(name, "rescue") ||
	    strlen(name) >= sizeof(n->name))
		return 0;
	if (!n->name[0] || strverscmp(name, n->name) > 0)
		snprintf(n->name, sizeof(n->name), "%s", name);
	return 0;
}

/* No boot entry: the newest /boot/vmlinuz-V and its initrd stand in. */
static int newest_kernel(struct boot_ctx *c, struct boot_entry *e, int *kvol, int *ivol)
{
	static const char *const ipat[] = {"%s/initrd.img-%s", "%s/initramfs-%s.img",
					   "%s/initrd-%s", "%s/initrd-%s.img"};
	const int vols[2] = {c->boot, c->root};
	const char *const dirs[2] = {"", "/boot"};
	struct newest n;
	struct boot_ext *fs;
	char path[BOOT_PATH_MAX];
	size_t i, k;
	int type;

	memset(e, 0, sizeof(*e));
	for (i = 0; i < 2; i++) {
		memset(&n, 0, sizeof(n));
		if (vols[i] < 0 || boot_ctx_ext(c, vols[i], &fs) ||
		    boot_ext_list(fs, i ? "/boot" : "/", newest_cb, &n) || !n.name[0])
			continue;
		if (boot_fmt(e->kernel.path, sizeof(e->kernel.path), "%s/%s", dirs[i], n.name))
			continue;
		snprintf(e->kernel.part, sizeof(e->kernel.part), "%s", c->vol[vols[i]].name);
		*kvol = vols[i];
		for (k = 0; k < FERRY_ARRAY_LEN(ipat); k++) {
			if (boot_fmt(path, sizeof(path), ipat[k], dirs[i], n.name + 8) ||
			    boot_ext_stat(fs, path, &type, NULL) || type != 'f')
				continue;
			snprintf(e->initrd[0].path, sizeof(e->initrd[0].path), "%s", path);
			snprintf(e->initrd[0].part, sizeof(e->initrd[0].part), "%s",
				 e->kernel.part);
			e->ninitrd = 1;
			ivol[0] = vols[i];
			break;
		}
		return 0;
	}
	return -ENOENT;
}

/* ---- the default entry and the bootloader ----------------------------- */

/* root= on the command line, compared with what the disks hold. */
static void check_cmdline_root(const struct boot_ctx *c, const struct boot_entry *e,
			       struct boot_report *r)
{
	char val[160];
	const char *p = e->cmdline, *s = NULL;
	size_t n;
	int v, rc;

	while ((p = strstr(p, "root="))) {
		if (p == e->cmdline || p[-1] == ' ')
			s = p + 5; /* the last root= wins, as in the kernel */
		p += 5;
	}
	if (!s) {
		boot_say(r, BOOT_WARN,
			 "boot entry: no root= on the command line; the initramfs "
			 "must find the root itself");
		return;
	}
	n = strcspn(s, " ");
	snprintf(val, sizeof(val), "%.*s", (int)(n < sizeof(val) ? n : sizeof(val) - 1), s);
	rc = boot_find_vol(c, val, &v, NULL);
	if (!rc) {
		boot_say(r, v == c->root ? BOOT_PASS : BOOT_WARN, "boot entry: root=%s is %s%s",
			 val, c->vol[v].name, v == c->root ? "" : ", not the root with /etc/fstab");
	} else if (rc == -ENOENT) {
		boot_say(r, BOOT_FAIL, "boot entry: root=%s matches no filesystem on the disks",
			 val);
	} else if (!strncmp(val, "/dev/", 5) && kernel_devname(val + 5)) {
		v = boot_vol_by_name(c, val + 5);
		boot_say(r, v >= 0 ? BOOT_WARN : BOOT_FAIL, "boot entry: root=%s %s", val,
			 v >= 0 ? "exists here, but kernel names follow the disk bus (prefer UUID=)"
				: "is no device here");
	} else {
		boot_say(r, BOOT_WARN,
			 "boot entry: root=%s is not checked (LVM, device-mapper or "
			 "another form)",
			 val);
	}
}

static void check_bootloader(struct boot_ctx *c, int have_cfg, const char *cfgwhere,
			     struct boot_report *r)
{
	char efilist[BOOT_LINE_MAX] = "", why[160] = "";
	struct boot_efi efi;
	size_t i, o = 0;
	int esp_ok = 0, fd, rc;

	if (c->esp >= 0) {
		const struct boot_vol *v = &c->vol[c->esp];
		const struct boot_disk *d = &c->disk[v->disk];

		fd = open(d->path, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : boot_fat_efi(fd, v->start, v->size, &efi, why, sizeof(why));
		if (fd >= 0)
			close(fd);
		if (rc) {
			boot_say(r, have_cfg ? BOOT_WARN : BOOT_FAIL, "EFI system partition %s: %s",
				 v->name, fd < 0 ? strerror(-rc) : why);
		} else if (!efi.n) {
			boot_say(r, have_cfg ? BOOT_WARN : BOOT_FAIL,
				 "EFI system partition %s: no /EFI/*/*.efi loader", v->name);
		} else {
			for (i = 0; i < efi.n && o < sizeof(efilist); i++) {
				int w = snprintf(efilist + o, sizeof(efilist) - o, "%s%s",
						 i ? ", " : "", efi.path[i]);

				if (w < 0)
					break;
				o += (size_t)w;
			}
			esp_ok = 1;
			boot_say(r, BOOT_PASS, "EFI system partition %s (vfat %s): %s", v->name,
				 v->uuid, efilist);
			if (!efi.fallback)
				r->no_esp_fallback = 1;
			if (!efi.fallback)
				boot_say(
				    r, BOOT_WARN,
				    "EFI system partition %s: no /EFI/BOOT/BOOT*.EFI; "
				    "firmware with no boot entries (a new VM) will not find the "
				    "loader",
				    v->name);
		}
	} else {
		for (i = 0; i < c->nvol; i++)
			if (c->vol[i].esp)
				boot_say(r, have_cfg ? BOOT_WARN : BOOT_FAIL,
					 "EFI system partition %s holds no FAT filesystem",
					 c->vol[i].name);
	}
	if (have_cfg) {
		boot_say(r, BOOT_PASS, "bootloader: configuration %s", cfgwhere);
	} else if (esp_ok) {
		boot_say(r, BOOT_PASS,
			 "bootloader: EFI loaders on %s; no grub.cfg or extlinux.conf "
			 "on %s to check the boot entry",
			 c->vol[c->esp].name, c->vol[c->root].name);
	} else {
		boot_say(
		    r, BOOT_FAIL,
		    "bootloader: none: no /boot/grub/grub.cfg, /boot/grub2/grub.cfg, "
		    "/boot/extlinux/extlinux.conf, /extlinux.conf or /boot/syslinux/syslinux.cfg "
		    "on %s%s%s, and no EFI system partition with /EFI/*/*.efi",
		    c->vol[c->root].name, c->boot >= 0 ? " or " : "",
		    c->boot >= 0 ? c->vol[c->boot].name : "");
		return;
	}
	for (i = 0; i < c->nvol && c->esp < 0; i++)
		if (c->vol[i].esp)
			return; /* an ESP is there, broken: reported above */
	if (c->esp < 0 && have_cfg) {
		/* BIOS boot: the loader's first stage lives in sector 0. */
		for (i = 0; i < c->ndisk; i++)
			if (c->disk[i].bios_code)
				break;
		if (i < c->ndisk)
			boot_say(r, BOOT_PASS, "BIOS: boot code in sector 0 of %s",
				 c->disk[i].name);
		else
			boot_say(r, BOOT_WARN,
				 "BIOS: no boot code in sector 0 of any disk and no EFI "
				 "system partition: firmware may find nothing to start");
	}
}

int boot_inspect(const char *const *disks, size_t n, struct boot_report *r)
{
	struct boot_ctx *c;
	struct boot_entry *e = NULL;
	char err[BOOT_ERR_MAX], cfgwhere[BOOT_NAME_MAX + BOOT_PATH_MAX];
	int kvol = -1, ivol[BOOT_INITRD_MAX], rc, have_cfg = 0, have_entry = 0;
	size_t i;

	if (!r)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	if (!disks || !n || n > BOOT_DISK_MAX) {
		boot_say(r, BOOT_FAIL, "between 1 and %d disks are needed", BOOT_DISK_MAX);
		return -EINVAL;
	}
	c = boot_ctx_new();
	e = malloc(sizeof(*e));
	if (!c || !e) {
		boot_ctx_free(c);
		free(e);
		return -ENOMEM;
	}
	rc = boot_scan_disks(c, disks, n);
	if (rc) {
		boot_say(r, BOOT_FAIL, "disks: %s", strerror(-rc));
		goto out;
	}
	say_disks(c, r);

	rc = boot_find_root(c, err, sizeof(err));
	if (rc) {
		int other = 0;

		for (i = 0; i < c->nvol; i++)
			if (c->vol[i].fs == BOOT_FS_XFS || c->vol[i].fs == BOOT_FS_BTRFS ||
			    c->vol[i].fs == BOOT_FS_LVM || c->vol[i].fs == BOOT_FS_LUKS)
				other = 1;
		/* A root ferry cannot read is unknown, not absent. */
		r->root_unread = other;
		boot_say(r, other ? BOOT_WARN : BOOT_FAIL, "root filesystem: %s%s", err,
			 other
			     ? "; unknown: the root may be on xfs, btrfs, LVM or LUKS, which this "
			       "check does not read"
			     : "");
		goto out;
	}
	{
		const struct boot_vol *v = &c->vol[c->root];

		if (c->root_init[0])
			boot_say(r, BOOT_PASS,
				 "root filesystem: %s (%s, UUID %s) holds /etc/fstab and "
				 "%s",
				 v->name, boot_fs_name(v->fs), v->uuid, c->root_init);
		else
			boot_say(
			    r, BOOT_FAIL,
			    "root filesystem: %s (%s) holds /etc/fstab but no "
			    "/sbin/init, /lib/systemd/systemd, /usr/lib/systemd/systemd or /init",
			    v->name, boot_fs_name(v->fs));
		if (c->root_others[0])
			boot_say(r, BOOT_WARN,
				 "root filesystem: %s also hold /etc/fstab; %s was "
				 "checked",
				 c->root_others, v->name);
		if (c->boot >= 0)
			boot_say(r, BOOT_PASS, "/boot: %s (%s) from fstab", c->vol[c->boot].name,
				 boot_fs_name(c->vol[c->boot].fs));
	}
	check_fstab(c, r);

	rc = boot_locate_entry(c, e, &kvol, ivol, err, sizeof(err));
	have_cfg = e->config[0] != 0;
	snprintf(cfgwhere, sizeof(cfgwhere), "%s", e->config);
	if (!rc) {
		char initrds[BOOT_LINE_MAX] = "";

		have_entry = 1;
		for (i = 0; i < e->ninitrd; i++)
			snprintf(initrds + strlen(initrds), sizeof(initrds) - strlen(initrds),
				 "%s%s:%s", i ? " " : ", initrd ", e->initrd[i].part,
				 e->initrd[i].path);
		boot_say(r, BOOT_PASS, "boot entry \"%.60s\" (%s): kernel %s:%.80s%.100s", e->title,
			 e->config, e->kernel.part, e->kernel.path, initrds);
		if (e->note[0])
			boot_say(r, BOOT_WARN, "boot entry: %.300s", e->note);
		check_cmdline_root(c, e, r);
	} else if (have_cfg) {
		boot_say(r, BOOT_FAIL, "boot entry: %s", err);
	}
	if (!have_entry && !newest_kernel(c, e, &kvol, ivol)) {
		have_entry = 1;
		boot_say(r, BOOT_WARN,
			 "virtio drivers: no boot entry; checking the newest kernel, "
			 "%s:%s",
			 e->kernel.part, e->kernel.path);
	}
	check_drivers(c, have_entry ? e : NULL, kvol, ivol, r);
	check_bootloader(c, have_cfg, cfgwhere, r);
out:
	free(e);
	boot_ctx_free(c);
	return 0;
}
