/*
 * layout.c - the destination disks' partitions and filesystems, copied
 * out of the private scan for callers outside src/boot (the adapt phase,
 * which mounts them). Read-only, like everything in src/boot.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot/boot_impl.h"

int boot_layout(const char *const *disks, size_t n, struct boot_layout *out)
{
	struct boot_ctx *c;
	char err[BOOT_ERR_MAX];
	size_t i;
	int rc;

	if (!out || !disks || !n || n > BOOT_DISK_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->root = -1;
	c = boot_ctx_new();
	if (!c)
		return -ENOMEM;
	rc = boot_scan_disks(c, disks, n);
	if (rc)
		goto out;
	for (i = 0; i < c->ndisk; i++) {
		snprintf(out->disk[i].name, sizeof(out->disk[i].name), "%s", c->disk[i].name);
		snprintf(out->disk[i].path, sizeof(out->disk[i].path), "%s", c->disk[i].path);
		snprintf(out->disk[i].table, sizeof(out->disk[i].table), "%s", c->disk[i].table);
		out->disk[i].size = c->disk[i].size;
		out->disk[i].bios_code = c->disk[i].bios_code;
		out->disk[i].err = c->disk[i].err;
	}
	out->ndisk = c->ndisk;
	for (i = 0; i < c->nvol && i < BOOT_LAYOUT_VOLS; i++) {
		const struct boot_vol *v = &c->vol[i];
		struct boot_layout_vol *o = &out->vol[i];

		snprintf(o->name, sizeof(o->name), "%s", v->name);
		o->disk = v->disk;
		o->number = v->number;
		o->start = v->start;
		o->size = v->size;
		snprintf(o->fs, sizeof(o->fs), "%s", v->fs ? boot_fs_name(v->fs) : "");
		snprintf(o->uuid, sizeof(o->uuid), "%s", v->uuid);
		snprintf(o->label, sizeof(o->label), "%s", v->label);
		snprintf(o->partuuid, sizeof(o->partuuid), "%s", v->partuuid);
		o->esp = v->esp;
	}
	out->nvol = i;
	if (!boot_find_root(c, err, sizeof(err)))
		out->root = c->root;
out:
	boot_ctx_free(c);
	return rc;
}
