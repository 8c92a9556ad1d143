/*
 * adapt_map.c - the old machine's device names as the adapt phase maps
 * them: which destination disk the old "sda" is (the migration plan, else
 * the root its fstab names, else fstab's filesystem types), and an old
 * device path to the UUID= (or PARTUUID=) of the filesystem it names
 * now. A name it cannot explain is never guessed: the caller leaves it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapt_phase.h"
#include "common/common.h"

/* ---- the old machine's device names ---------------------------------------------- */

static int old_disk(const struct ax *x, const char *old)
{
	size_t i;

	for (i = 0; i < x->nold; i++)
		if (!strcmp(x->old[i].name, old))
			return x->old[i].disk;
	return -1;
}

static void set_old(struct ax *x, const char *old, int disk, const char *how)
{
	if (old_disk(x, old) >= 0 || x->nold >= AX_OLD_MAX)
		return;
	snprintf(x->old[x->nold].name, sizeof(x->old[0].name), "%s", old);
	x->old[x->nold++].disk = disk;
	log_info("adapt: the old disk %s is %s here (%s)", old, x->lay->disk[disk].name, how);
}

static int vol_of(const struct ax *x, int disk, int part)
{
	size_t i;

	for (i = 0; i < x->lay->nvol; i++)
		if ((int)x->lay->vol[i].disk == disk && x->lay->vol[i].number == part)
			return (int)i;
	return -1;
}

static int fs_matches(const char *fstab_type, const char *fs)
{
	if (!strcmp(fstab_type, "auto") || !fstab_type[0])
		return fs[0] != 0;
	if (!strncmp(fstab_type, "ext", 3) && !strncmp(fs, "ext", 3))
		return 1;
	return !strcmp(fstab_type, fs) || (!strcmp(fstab_type, "msdos") && !strcmp(fs, "vfat"));
}

/* The vol an fstab/crypttab spec names, or -1. */
int ax_vol_by_spec(const struct ax *x, const char *spec)
{
	static const struct {
		const char *key;
		int f;
	} forms[] = {{"UUID=", 0},
		     {"LABEL=", 1},
		     {"PARTUUID=", 2},
		     {"/dev/disk/by-uuid/", 0},
		     {"/dev/disk/by-label/", 1},
		     {"/dev/disk/by-partuuid/", 2}};
	char disk[32];
	size_t i, k;
	int part, d, hit = -1;

	for (i = 0; i < FERRY_ARRAY_LEN(forms); i++) {
		const char *val;

		if (strncmp(spec, forms[i].key, strlen(forms[i].key)))
			continue;
		val = spec + strlen(forms[i].key);
		for (k = 0; k < x->lay->nvol; k++) {
			const struct boot_layout_vol *v = &x->lay->vol[k];
			const char *have = forms[i].f == 0   ? v->uuid
					   : forms[i].f == 1 ? v->label
							     : v->partuuid;

			if (!have[0] ||
			    (forms[i].f == 1 ? strcmp(have, val) : strcasecmp(have, val)))
				continue;
			if (forms[i].f == 0 &&
			    (!strcmp(v->fs, "LVM2_member") || !strcmp(v->fs, "crypto_LUKS")))
				continue;
			if (hit >= 0)
				return -1; /* two filesystems with one name: no guess */
			hit = (int)k;
		}
		return hit;
	}
	if ((hit = ax_lvm_vol(x, spec)) >= 0)
		return hit;
	if (!strncmp(spec, "/dev/", 5) && adapt_split_dev(spec + 5, disk, sizeof(disk), &part) &&
	    (d = old_disk(x, disk)) >= 0)
		return vol_of(x, d, part);
	return -1;
}

/*
 * Which destination disk each old disk name is. The plan says it for a
 * migration; otherwise fstab does: the disk of the root it names is the
 * one holding the root found, and another old disk is the first
 * destination disk not taken whose partitions hold the filesystem types
 * fstab expects there.
 */
void ax_map_old_disks(struct ax *x, const char *fstab, size_t len, int root)
{
	char old[32];
	size_t i, pos, d;
	struct adapt_line l;
	int part, pass;

	for (i = 0; i < x->q->n; i++) {
		const char *o = x->q->d[i].old;
		int k;

		if (!strncmp(o, "/dev/", 5))
			o += 5;
		for (k = 0; k < (int)x->lay->ndisk; k++)
			if (!strcmp(x->lay->disk[k].name, x->q->d[i].name) && o[0] &&
			    adapt_split_dev(o, old, sizeof(old), &part) && part == 0)
				set_old(x, old, k, "the migration plan");
	}
	for (pass = 0; pass < 2; pass++) {
		pos = 0;
		while (adapt_next_line(fstab, len, &pos, &l)) {
			size_t a, b, c, e, t1, t2;
			char spec[64], type[16], mnt[64];

			if (adapt_is_comment(&l) || !adapt_field(&l, 0, &a, &b) ||
			    !adapt_field(&l, 1, &c, &e) || b - a >= sizeof(spec) ||
			    e - c >= sizeof(mnt))
				continue;
			snprintf(spec, sizeof(spec), "%.*s", (int)(b - a), l.s + a);
			snprintf(mnt, sizeof(mnt), "%.*s", (int)(e - c), l.s + c);
			type[0] = 0;
			if (adapt_field(&l, 2, &t1, &t2) && t2 - t1 < sizeof(type))
				snprintf(type, sizeof(type), "%.*s", (int)(t2 - t1), l.s + t1);
			if (strncmp(spec, "/dev/", 5) ||
			    !adapt_split_dev(spec + 5, old, sizeof(old), &part) ||
			    old_disk(x, old) >= 0)
				continue;
			if (pass == 0 && !strcmp(mnt, "/") && root >= 0 &&
			    x->lay->vol[root].number == part) {
				set_old(x, old, (int)x->lay->vol[root].disk, "its fstab's root");
			} else if (pass == 1) {
				for (d = 0; d < x->lay->ndisk; d++) {
					size_t k;
					int taken = 0, v = vol_of(x, (int)d, part);

					for (k = 0; k < x->nold; k++)
						taken |= x->old[k].disk == (int)d;
					if (!taken && v >= 0 &&
					    fs_matches(type, x->lay->vol[v].fs)) {
						set_old(x, old, (int)d, "fstab's filesystem types");
						break;
					}
				}
			}
		}
	}
}

/* A disk of this machine by its name, or -1. */
static int disk_here(const struct ax *x, const char *name)
{
	size_t i;

	for (i = 0; i < x->lay->ndisk; i++)
		if (!strcmp(x->lay->disk[i].name, name))
			return (int)i;
	return -1;
}

/* adapt_dev_fn: an old device path to UUID= (or PARTUUID=). A name the
 * old machine's disks do not explain but a disk here has (grub-mkconfig
 * writes root=/dev/vda1 when /dev/disk/by-uuid is missing) is that
 * disk: what the line means on this machine, made stable. */
int ax_map(void *arg, const char *dev, char *out, size_t cap)
{
	struct ax *x = arg;
	char disk[32];
	int part, d, v;

	if (!adapt_split_dev(dev + 5, disk, sizeof(disk), &part))
		return 0;
	d = old_disk(x, disk);
	if (d < 0)
		d = disk_here(x, disk);
	if (d < 0 || (v = vol_of(x, d, part)) < 0)
		return 0;
	if (x->lay->vol[v].uuid[0] && strcmp(x->lay->vol[v].fs, "LVM2_member") &&
	    strcmp(x->lay->vol[v].fs, "crypto_LUKS")) {
		char spec[64];

		snprintf(spec, sizeof(spec), "UUID=%s", x->lay->vol[v].uuid);
		if (ax_vol_by_spec(x, spec) == v) {
			snprintf(out, cap, "%s", spec);
			return 1;
		}
	}
	if (x->lay->vol[v].partuuid[0]) {
		snprintf(out, cap, "PARTUUID=%s", x->lay->vol[v].partuuid);
		return 1;
	}
	return 0;
}
