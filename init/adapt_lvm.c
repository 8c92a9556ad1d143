/*
 * adapt_lvm.c - the LVM2 logical volumes of the migrated disks, opened
 * for the adapt phase without the lvm tool: ferry's own metadata reader
 * (src/blockmap/lvm*.c) models each PV's VG, and every linear LV becomes
 * a device-mapper device made through the DM ioctls, named and tagged as
 * lvm names and tags it (VG-LV with '-' doubled, DM UUID "LVM-" + VG
 * uuid + LV uuid), so the system's own tools in the chroot (dracut
 * host-only, grub-probe, update-initramfs) see a real LVM root. Each LV
 * becomes one more volume of the layout, so the root, fstab and UUID=
 * find it like a partition. In host mode (the host's device-mapper is
 * not ferry's to touch, and often absent) a one-piece LV is a loop
 * device at its extents instead. It never writes LVM metadata, activates
 * only what it read, and removes every device it made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "adapt_phase.h"
#include "blockmap/lvm.h"

#define DM_CONTROL    "/dev/mapper/control"
#define DM_TARGETS    256 /* runs of extents of one LV made into one table */
#define DM_PARAMS_MAX 48  /* "259:65535 18446744073709551615" and padding */

/* ---- device-mapper ioctls ------------------------------------------------------- */

static void dm_hdr(struct dm_ioctl *io, size_t size, const char *name, const char *uuid)
{
	memset(io, 0, sizeof(*io));
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = (uint32_t)size;
	io->data_start = sizeof(*io);
	snprintf(io->name, sizeof(io->name), "%s", name);
	if (uuid)
		snprintf(io->uuid, sizeof(io->uuid), "%s", uuid);
}

static int dm_call(int ctl, unsigned long req, struct dm_ioctl *io)
{
	return ioctl(ctl, req, io) < 0 ? -errno : 0;
}

static int dm_remove(int ctl, const char *name)
{
	struct dm_ioctl io;
	int i, r = 0;

	/* A just-unmounted device can stay busy for a moment. */
	for (i = 0; i < 20; i++) {
		dm_hdr(&io, sizeof(io), name, NULL);
		r = dm_call(ctl, DM_DEV_REMOVE, &io);
		if (r != -EBUSY)
			break;
		usleep(100 * 1000);
	}
	return r;
}

/*
 * One linear target per run of extents, over the PV's device (pv, its
 * major:minor) at pe_start + pe x extent_size. Every run is checked
 * against the PV's size again: the reader checked it against the
 * metadata's own numbers and this is the kernel's table.
 */
static int dm_table(int ctl, const char *name, const struct lvm_vg *vg, const struct lvm_lv *lv,
		    dev_t pv, uint64_t pv_bytes, int ro)
{
	size_t size =
	    sizeof(struct dm_ioctl) + lv->npieces * (sizeof(struct dm_target_spec) + DM_PARAMS_MAX);
	uint64_t sec = vg->extent_size / 512, next = 0;
	struct dm_ioctl *io;
	char *at;
	uint32_t k;
	int r;

	if (!lv->npieces || lv->npieces > DM_TARGETS)
		return -E2BIG;
	io = calloc(1, size);
	if (!io)
		return -ENOMEM;
	dm_hdr(io, size, name, NULL);
	io->target_count = lv->npieces;
	io->flags = ro ? DM_READONLY_FLAG : 0;
	at = (char *)io + sizeof(*io);
	for (k = 0; k < lv->npieces; k++) {
		const struct lvm_piece *p = &vg->pieces[lv->piece0 + k];
		struct dm_target_spec *t = (struct dm_target_spec *)at;
		char *params = at + sizeof(*t);
		uint64_t off = vg->pe_start + p->pe * vg->extent_size;
		size_t n;

		if (p->lv_ext != next || p->count > vg->pe_count ||
		    p->pe > vg->pe_count - p->count || off > pv_bytes ||
		    p->count * vg->extent_size > pv_bytes - off) {
			free(io);
			return -ERANGE;
		}
		t->sector_start = p->lv_ext * sec;
		t->length = p->count * sec;
		snprintf(t->target_type, sizeof(t->target_type), "linear");
		n = (size_t)snprintf(params, DM_PARAMS_MAX, "%u:%u %" PRIu64, major(pv), minor(pv),
				     off / 512) +
		    1;
		n = (sizeof(*t) + n + 7) & ~(size_t)7;
		t->next = (uint32_t)n;
		at += n;
		next += p->count;
	}
	if (next != lv->extents) {
		free(io);
		return -ERANGE; /* a hole: the LV is not all on this PV */
	}
	r = dm_call(ctl, DM_TABLE_LOAD, io);
	free(io);
	return r;
}

/* Creates, loads and resumes one LV's device; its dev_t into *dev. */
static int dm_activate(int ctl, const char *name, const char *uuid, const struct lvm_vg *vg,
		       const struct lvm_lv *lv, dev_t pv, uint64_t pv_bytes, int ro, dev_t *dev)
{
	struct dm_ioctl io;
	int r;

	dm_hdr(&io, sizeof(io), name, uuid);
	if ((r = dm_call(ctl, DM_DEV_CREATE, &io)))
		return r;
	*dev = makedev(major(io.dev), minor(io.dev));
	if ((r = dm_table(ctl, name, vg, lv, pv, pv_bytes, ro)))
		goto fail;
	dm_hdr(&io, sizeof(io), name, NULL); /* no DM_SUSPEND_FLAG: resume */
	if ((r = dm_call(ctl, DM_DEV_SUSPEND, &io)))
		goto fail;
	return 0;
fail:
	dm_remove(ctl, name);
	return r;
}

/* ---- the LVs as volumes ------------------------------------------------------------ */

static const char *human(uint64_t b, char *buf, size_t cap)
{
	if (b >= (1ull << 30))
		snprintf(buf, cap, "%.1f GiB", (double)b / (1ull << 30));
	else
		snprintf(buf, cap, "%.1f MiB", (double)b / (1ull << 20));
	return buf;
}

/* /dev/mapper/NAME (a node, as libdevmapper makes one without udev) and
 * /dev/VG/LV pointing at it. */
static void dev_nodes(const struct ax_lv *l, dev_t dev)
{
	char p[300], t[200];

	mkdir("/dev/mapper", 0755);
	snprintf(p, sizeof(p), "/dev/mapper/%s", l->dm);
	unlink(p);
	if (mknod(p, S_IFBLK | 0660, dev) < 0)
		log_errno(-errno, "adapt: mknod %s", p);
	snprintf(p, sizeof(p), "/dev/%s", l->vg);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "/dev/%s/%s", l->vg, l->lv);
	snprintf(t, sizeof(t), "../mapper/%s", l->dm);
	unlink(p);
	if (symlink(t, p) < 0)
		log_errno(-errno, "adapt: symlink %s", p);
}

static void dev_nodes_gone(const struct ax_lv *l)
{
	char p[300];

	snprintf(p, sizeof(p), "/dev/%s/%s", l->vg, l->lv);
	unlink(p);
	snprintf(p, sizeof(p), "/dev/%s", l->vg);
	rmdir(p);
	snprintf(p, sizeof(p), "/dev/mapper/%s", l->dm);
	unlink(p);
}

/* What the kernel lists under /sys/block/NODE/slaves: the tools in the
 * chroot (dracut host-only, grub-probe) follow it to the PV. */
static void slaves(const char *node, char *out, size_t cap)
{
	char p[64];
	struct dirent *de;
	size_t o = 0;
	DIR *d;

	snprintf(out, cap, "none");
	snprintf(p, sizeof(p), "/sys/block/%s/slaves", node);
	if (!(d = opendir(p)))
		return;
	while ((de = readdir(d)) && o + 2 < cap) {
		if (de->d_name[0] == '.')
			continue;
		o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? " " : "", de->d_name);
	}
	if (o >= cap)
		out[cap - 1] = 0;
	closedir(d);
}

/* A new volume of the layout for the LV: its name, disk, filesystem. */
static int add_vol(struct ax *x, int pv, const char *name, uint64_t start, uint64_t size)
{
	struct boot_layout_vol *o;

	if (x->lay->nvol >= BOOT_LAYOUT_VOLS || x->nlv >= AX_LVS_MAX)
		return -1;
	o = &x->lay->vol[x->lay->nvol];
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%.*s", (int)sizeof(o->name) - 1, name);
	o->disk = x->lay->vol[pv].disk;
	o->number = -1;
	o->start = start;
	o->size = size;
	return (int)x->lay->nvol++;
}

struct pvctx {
	int pv;	     /* the PV's volume */
	int ctl;     /* /dev/mapper/control, or -1: loop devices (host mode) */
	dev_t pvdev; /* the PV's block device, for the tables */
	char pvname[AX_DEV_MAX];
	int diskfd; /* the PV's disk, to probe a host-mode LV */
};

/* One visible LV of vg: a dm device (or loop range) and a volume. */
static void open_lv(struct ax *x, const struct pvctx *c, const struct lvm_vg *vg, size_t i)
{
	const struct lvm_lv *lv = &vg->lvs[i];
	const struct boot_layout_vol *pv = &x->lay->vol[c->pv];
	uint64_t bytes = lv->extents * vg->extent_size;
	char name[DM_NAME_LEN], uuid[DM_UUID_LEN], hb[24], dev[AX_DEV_MAX], sl[64];
	struct ax_lv *l;
	dev_t d = 0;
	int v, r, fd;

	if (lv->why[0] || strcmp(lv->type, "striped")) {
		ax_say(x, PROTO_FAIL,
		       "LVM: LV %s/%s is not opened: segment type %s (%s); adapt opens linear "
		       "LVs only",
		       vg->name, lv->name, lv->type, lv->why[0] ? lv->why : "not linear");
		return;
	}
	if (adapt_dm_name(vg->name, lv->name, name, sizeof(name))) {
		ax_say(x, PROTO_FAIL, "LVM: LV %.64s/%.64s: a name lvm would not make a device of",
		       vg->name, lv->name);
		return;
	}
	if (c->ctl < 0 && lv->npieces != 1) {
		ax_say(x, PROTO_FAIL,
		       "LVM: LV %s/%s is in %u pieces on %s: host mode opens an LV through one "
		       "loop device (a single run of extents) only",
		       vg->name, lv->name, lv->npieces, pv->name);
		return;
	}
	{
		/* The first run: where a host-mode loop device starts (dm_table
		 * checks every run of a device-mapper table). */
		const struct lvm_piece *p = &vg->pieces[lv->piece0];
		uint64_t off = vg->pe_start + p->pe * vg->extent_size;
		uint64_t len = p->count * vg->extent_size;

		if (lv->npieces < 1 || off > pv->size || len > pv->size - off) {
			ax_say(x, PROTO_FAIL,
			       "LVM: LV %s/%s: %" PRIu64 " bytes at %" PRIu64
			       " run past %s's %llu bytes",
			       vg->name, lv->name, len, off, pv->name, pv->size);
			return;
		}
		v = add_vol(x, c->pv, name, pv->start + off, bytes);
	}
	if (v < 0) {
		ax_say(x, PROTO_FAIL, "LVM: LV %s/%s: more volumes than adapt keeps", vg->name,
		       lv->name);
		return;
	}
	l = &x->lv[x->nlv++];
	memset(l, 0, sizeof(*l));
	l->vol = v;
	snprintf(l->vg, sizeof(l->vg), "%s", vg->name);
	snprintf(l->lv, sizeof(l->lv), "%s", lv->name);
	snprintf(l->dm, sizeof(l->dm), "%s", name);
	if (c->ctl < 0) {
		/* ax_voldev makes the loop device at [start, start + size). */
		boot_probe_fs(c->diskfd, x->lay->vol[v].start, bytes, &x->lay->vol[v]);
		ax_say(x, PROTO_PASS,
		       "LVM: LV %s/%s (%s, %s) opened as a loop device at its extents on %s "
		       "(host mode, no device-mapper): the system's tools see a loop device, "
		       "not LVM",
		       vg->name, lv->name,
		       x->lay->vol[v].fs[0] ? x->lay->vol[v].fs : "no filesystem",
		       human(bytes, hb, sizeof(hb)), pv->name);
		return;
	}
	snprintf(uuid, sizeof(uuid), "LVM-%s%s", vg->uuid, lv->uuid);
	r = dm_activate(c->ctl, name, uuid, vg, lv, c->pvdev, pv->size, x->dry, &d);
	if (r) {
		ax_say(x, PROTO_FAIL, "LVM: LV %s/%s could not be activated as %s: %s", vg->name,
		       lv->name, name,
		       r == -ERANGE  ? "its extents do not map onto the PV"
		       : r == -E2BIG ? "in more than 256 runs of extents (DM_TARGETS)"
				     : strerror(-r));
		x->nlv--;
		x->lay->nvol--;
		return;
	}
	l->active = 1;
	snprintf(l->node, sizeof(l->node), "dm-%u", minor(d));
	dev_nodes(l, d);
	snprintf(dev, sizeof(dev), "/dev/mapper/%s", name);
	snprintf(x->voldev[v], sizeof(x->voldev[v]), "%s", dev);
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		boot_probe_fs(fd, 0, bytes, &x->lay->vol[v]);
		close(fd);
	}
	slaves(l->node, sl, sizeof(sl));
	ax_say(x, PROTO_PASS,
	       "LVM: LV %s/%s (%s, %s) activated as %s (%s, dm-linear over %s, %u segment%s; "
	       "slaves %s)",
	       vg->name, lv->name, x->lay->vol[v].fs[0] ? x->lay->vol[v].fs : "no filesystem",
	       human(bytes, hb, sizeof(hb)), dev, l->node, c->pvname, lv->npieces,
	       lv->npieces == 1 ? "" : "s", sl);
}

/* Every visible LV of the PV in volume v. */
static void open_pv(struct ax *x, int v, struct lvm_vg *vg)
{
	const struct boot_layout_vol *pv = &x->lay->vol[v];
	char why[LVM_REASON_MAX * 2] = "", dev[AX_DEV_MAX];
	struct pvctx c = {.pv = v, .ctl = -1, .diskfd = -1};
	struct stat st;
	size_t i;
	int r;

	c.diskfd = open(x->lay->disk[pv->disk].path, O_RDONLY | O_CLOEXEC);
	if (c.diskfd < 0) {
		ax_say(x, PROTO_FAIL, "LVM: %s cannot be read: %s", x->lay->disk[pv->disk].path,
		       strerror(errno));
		return;
	}
	r = bm_lvm_read_pv(c.diskfd, pv->start, pv->size, vg, why, sizeof(why));
	if (r <= 0) {
		ax_say(x, r ? PROTO_FAIL : PROTO_WARN, "LVM: the PV %s: %s", pv->name,
		       r == 0	       ? "in no VG; nothing to open"
		       : r == -EUCLEAN ? why
				       : strerror(-r));
		goto out;
	}
	if (x->live) {
		if ((r = ax_voldev(x, v, dev, sizeof(dev))) || stat(dev, &st) < 0 ||
		    !S_ISBLK(st.st_mode)) {
			ax_say(x, PROTO_FAIL, "LVM: the PV %s has no block device here: %s",
			       pv->name, r ? strerror(-r) : dev);
			goto out;
		}
		c.pvdev = st.st_rdev;
		snprintf(c.pvname, sizeof(c.pvname), "%s", dev + 5);
		c.ctl = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
		if (c.ctl < 0) {
			ax_say(x, PROTO_FAIL, "LVM: VG %s: %s: %s (a kernel without device-mapper)",
			       vg->name, DM_CONTROL, strerror(errno));
			goto out;
		}
	}
	log_info("adapt: the PV %s holds VG %s (%zu LVs, extents of %" PRIu64 " KiB)", pv->name,
		 vg->name, vg->nlvs, vg->extent_size >> 10);
	for (i = 0; i < vg->nlvs; i++)
		if (vg->lvs[i].visible && vg->lvs[i].owner < 0)
			open_lv(x, &c, vg, i);
out:
	if (c.ctl >= 0)
		close(c.ctl);
	close(c.diskfd);
}

void ax_lvm_open(struct ax *x)
{
	struct lvm_vg *vg = NULL;
	size_t i, n = x->lay->nvol;

	for (i = 0; i < n; i++) {
		if (strcmp(x->lay->vol[i].fs, "LVM2_member"))
			continue;
		if (!vg && !(vg = malloc(sizeof(*vg)))) {
			ax_say(x, PROTO_FAIL, "LVM: no memory for the VG metadata");
			return;
		}
		open_pv(x, (int)i, vg);
	}
	free(vg);
}

void ax_lvm_close(struct ax *x)
{
	int ctl = -1, r;
	size_t i;

	for (i = x->nlv; i-- > 0;) {
		struct ax_lv *l = &x->lv[i];

		if (!l->active)
			continue;
		if (ctl < 0 && (ctl = open(DM_CONTROL, O_RDWR | O_CLOEXEC)) < 0)
			break;
		dev_nodes_gone(l);
		r = dm_remove(ctl, l->dm);
		if (r && r != -ENXIO)
			log_errno(r, "adapt: removing the device-mapper device %s", l->dm);
		else
			log_info("adapt: %s (%s) removed", l->dm, l->node);
		l->active = 0;
	}
	if (ctl >= 0)
		close(ctl);
}

int ax_lvm_vol(const struct ax *x, const char *path)
{
	size_t i;

	for (i = 0; i < x->nlv; i++) {
		const struct ax_lv *l = &x->lv[i];
		size_t nv = strlen(l->vg);

		if (!strncmp(path, "/dev/mapper/", 12) && !strcmp(path + 12, l->dm))
			return l->vol;
		if (!strncmp(path, "/dev/", 5) && !strncmp(path + 5, l->vg, nv) &&
		    path[5 + nv] == '/' && !strcmp(path + 6 + nv, l->lv))
			return l->vol;
	}
	return -1;
}

const char *ax_lvm_node(const struct ax *x, int v)
{
	size_t i;

	for (i = 0; i < x->nlv; i++)
		if (x->lv[i].vol == v && x->lv[i].active)
			return x->lv[i].node;
	return NULL;
}
