/*
 * check_kernel.c - `ferry check`'s look at the kernel that will boot:
 * whether virtio_blk, virtio_scsi, virtio_net and virtio_pci are built
 * in, modules in its initramfs, or missing (and the command that adds
 * them). Reads /boot and /lib/modules under the check's root only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/check_impl.h"
#include "boot/boot.h"

/* ---- virtio drivers of the kernel that will boot ------------------------------ */

enum { V_BLK, V_SCSI, V_NET, V_PCI, V_N };

static const char *const vname[V_N] = {"virtio_blk", "virtio_scsi", "virtio_net", "virtio_pci"};
static const char *const vconfig[V_N] = {"CONFIG_VIRTIO_BLK", "CONFIG_SCSI_VIRTIO",
					 "CONFIG_VIRTIO_NET", "CONFIG_VIRTIO_PCI"};

struct kstate {
	int have_config, have_builtin, have_dep;
	char config[V_N];     /* 'y', 'm', 'n' (not set), 0 (not mentioned) */
	int builtin[V_N];     /* in modules.builtin */
	int module[V_N];      /* in modules.dep */
	char initrd[PATHBUF]; /* "" when none was found */
	int scanned, scan_r;
	unsigned found; /* bit per driver */
	char fmt[64], why[300];
};

/* Reads a file line by line (lines over LINEBUF are skipped whole). */
static int ck_each_line(const char *path, void (*fn)(void *, char *), void *arg)
{
	char line[LINEBUF];
	int start = 1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		int whole = n && line[n - 1] == '\n';

		if (whole)
			line[--n] = 0;
		if (start && whole)
			fn(arg, line);
		start = whole;
	}
	fclose(f);
	return 0;
}

static void config_line(void *arg, char *line)
{
	struct kstate *k = arg;
	size_t i, n;

	for (i = 0; i < V_N; i++) {
		n = strlen(vconfig[i]);
		if (!strncmp(line, vconfig[i], n) && line[n] == '=')
			k->config[i] = line[n + 1] == 'y' ? 'y' : line[n + 1] == 'm' ? 'm' : 'n';
		else if (!strncmp(line, "# ", 2) && !strncmp(line + 2, vconfig[i], n) &&
			 !strcmp(line + 2 + n, " is not set"))
			k->config[i] = 'n';
	}
}

/* The driver a modules.builtin / modules.dep path names, or -1:
 * "kernel/drivers/block/virtio_blk.ko[.xz]: deps..." */
static int module_of(char *line)
{
	char *colon = strchr(line, ':'), *base;
	size_t i, n;

	if (colon)
		*colon = 0;
	base = strrchr(line, '/');
	base = base ? base + 1 : line;
	for (i = 0; i < V_N; i++) {
		n = strlen(vname[i]);
		if (!strncmp(base, vname[i], n) && !strncmp(base + n, ".ko", 3) &&
		    (!base[n + 3] || !strcmp(base + n + 3, ".xz") ||
		     !strcmp(base + n + 3, ".zst") || !strcmp(base + n + 3, ".gz")))
			return (int)i;
	}
	return -1;
}

static void builtin_line(void *arg, char *line)
{
	int i = module_of(line);

	if (i >= 0)
		((struct kstate *)arg)->builtin[i] = 1;
}

static void dep_line(void *arg, char *line)
{
	int i = module_of(line);

	if (i >= 0)
		((struct kstate *)arg)->module[i] = 1;
}

static int is_builtin(const struct kstate *k, int i)
{
	return k->config[i] == 'y' || k->builtin[i];
}

static void kernel_state(const struct env *e, struct kstate *k)
{
	static const char *const initrds[] = {"/boot/initrd.img-%s", "/boot/initramfs-%s.img",
					      "/boot/initrd-%s"};
	const char *want[V_N];
	int idx[V_N];
	char path[PATHBUF];
	size_t i, n = 0;
	unsigned f = 0;

	memset(k, 0, sizeof(*k));
	ck_path(e, path, sizeof(path), "/boot/config-%s", e->release);
	k->have_config = ck_each_line(path, config_line, k) == 0;
	ck_path(e, path, sizeof(path), "/lib/modules/%s/modules.builtin", e->release);
	k->have_builtin = ck_each_line(path, builtin_line, k) == 0;
	ck_path(e, path, sizeof(path), "/lib/modules/%s/modules.dep", e->release);
	k->have_dep = ck_each_line(path, dep_line, k) == 0;
	for (i = 0; i < FERRY_ARRAY_LEN(initrds) && !k->initrd[0]; i++) {
		ck_path(e, path, sizeof(path), initrds[i], e->release);
		if (ck_exists(path))
			snprintf(k->initrd, sizeof(k->initrd), "%s", path);
	}
	for (i = 0; i < V_N; i++)
		if (!is_builtin(k, (int)i) && k->config[i] != 'n') {
			idx[n] = (int)i;
			want[n++] = vname[i];
		}
	if (!k->initrd[0] || n == 0)
		return;
	k->scanned = 1;
	k->scan_r = boot_initrd_modules(k->initrd, want, n, &f, k->fmt, sizeof(k->fmt), k->why,
					sizeof(k->why));
	for (i = 0; i < n; i++)
		if (f & (1u << i))
			k->found |= 1u << idx[i];
}

/* One command that puts every missing driver into the initramfs. */
static void initramfs_fix(const struct env *e, const struct kstate *k, unsigned missing, char *out,
			  size_t cap)
{
	char path[PATHBUF], list[80] = "";
	size_t i;

	for (i = 0; i < V_N; i++)
		if (missing & (1u << i))
			ck_append(list, sizeof(list), "%s%s", list[0] ? " " : "", vname[i]);
	ck_path(e, path, sizeof(path), "/etc/initramfs-tools");
	if (ck_exists(path))
		ck_text(out, cap,
		        "rebuild the initramfs with the virtio drivers: "
		        "printf '%%s\\n' %s >> /etc/initramfs-tools/modules && "
		        "update-initramfs -u -k %s",
		        list, e->release);
	else
		ck_text(out, cap,
		        "rebuild the initramfs with the virtio drivers: "
		        "dracut -f --add-drivers \"%s\" %s %s",
		        list, k->initrd[0] ? ck_shown(e, k->initrd) : "/boot/initramfs-$(uname -r).img",
		        e->release);
}

void ck_virtio(struct ck *c)
{
	static struct kstate k;
	const struct env *e = c->e;
	char fix[CHECK_TEXT_MAX];
	unsigned missing = 0;
	int i;

	kernel_state(e, &k);
	/* The drivers the fix must add: modules of this kernel not in its
	 * initramfs (virtio_net may load later, from /lib/modules). */
	for (i = 0; i < V_N; i++)
		if (!is_builtin(&k, i) && k.config[i] != 'n' && !(k.found & (1u << i)) &&
		    !(i == V_NET && k.module[i]))
			missing |= 1u << i;
	initramfs_fix(e, &k, missing, fix, sizeof(fix));
	if (!k.have_config && !k.have_builtin && !k.have_dep && !k.initrd[0]) {
		/* Nothing to look at: one line, not four saying the same. */
		ck_say(c, CHECK_WARN, "virtio",
		       "look by hand: grep -i virtio /boot/config-$(uname -r), and lsinitramfs or "
		       "lsinitrd on the initramfs of the kernel that boots",
		       "virtio drivers unknown: no /boot/config-%s, no /lib/modules/%s/"
		       "modules.builtin and no initramfs for kernel %s",
		       e->release, e->release, e->release);
		return;
	}
	for (i = 0; i < V_N; i++) {
		const char *name = vname[i];

		if (is_builtin(&k, i)) {
			ck_say(c, CHECK_PASS, name, NULL, "%s: built into kernel %s (%s%s)", name,
			       e->release, k.config[i] == 'y' ? vconfig[i] : "in modules.builtin",
			       k.config[i] == 'y' ? "=y" : "");
		} else if (k.config[i] == 'n') {
			ck_say(c, CHECK_WARN, name,
			       "boot a kernel with the virtio drivers (the distribution's standard "
			       "kernel has them) before migrating",
			       "%s: not in kernel %s at all (%s is not set)", name, e->release,
			       vconfig[i]);
		} else if (k.found & (1u << i)) {
			ck_say(c, CHECK_PASS, name, NULL, "%s: module in the initramfs %s (%s)", name,
			       ck_shown(e, k.initrd), k.fmt);
		} else if (i == V_NET && k.module[i]) {
			ck_say(c, CHECK_PASS, name, NULL,
			       "%s: module in /lib/modules/%s (loaded after / is mounted; the "
			       "initramfs does not need it)",
			       name, e->release);
		} else if (k.scanned && k.scan_r == 0) {
			ck_say(c, CHECK_WARN, name, fix,
			       "%s: a module of kernel %s, not in its initramfs %s (%s): a "
			       "virtio destination may not boot",
			       name, e->release, ck_shown(e, k.initrd), k.fmt);
		} else if (k.scanned) {
			char why[CHECK_TEXT_MAX];

			ck_text(why, sizeof(why),
			        "look by hand (lsinitramfs or lsinitrd %s | grep virtio); if it "
			        "is missing, %s",
			        ck_shown(e, k.initrd), fix);
			ck_say(c, CHECK_WARN, name, why, "%s: unknown: %s: %s", name,
			       ck_shown(e, k.initrd), k.why[0] ? k.why : "cannot be read");
		} else {
			ck_say(c, CHECK_WARN, name, fix,
			       "%s: not built into kernel %s, and no initramfs for it "
			       "(/boot/initrd.img-%s, /boot/initramfs-%s.img)",
			       name, e->release, e->release, e->release);
		}
	}
}
