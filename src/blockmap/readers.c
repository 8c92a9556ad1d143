/*
 * readers.c - the table of formats ferry knows: one entry per reader
 * (each defined in its own file), then the formats recognised and sent
 * whole on purpose, with the reason the plan prints. Adding a format is
 * one file and one line here. It reads nothing itself.
 */
#include <stddef.h>
#include <string.h>

#include "blockmap/reader.h"

static const char *const luks_types[] = {"crypto_LUKS", "BitLocker", "VeraCrypt", NULL};
static const char *const md_types[] = {"linux_raid_member",
				       "isw_raid_member",
				       "ddf_raid_member",
				       "adaptec_raid_member",
				       "lsi_mega_raid_member",
				       "nvidia_raid_member",
				       "promise_fasttrack_raid_member",
				       "silicon_medley_raid_member",
				       "via_raid_member",
				       "jmicron_raid_member",
				       "hpt45x_raid_member",
				       "hpt37x_raid_member",
				       NULL};
static const char *const bcache_types[] = {"bcache", NULL};
static const char *const zfs_types[] = {"zfs_member", NULL};
static const char *const lvm1_types[] = {"LVM1_member", NULL};
static const char *const hib_types[] = {"swsuspend", NULL};

/* The bytes of these are opaque to ferry, or their members only make
 * sense together: all of them is the only safe copy. */
static const struct bm_reader whole_encrypted = {
    .name = "encrypted", .types = luks_types, .method = BM_WHOLE, .note = "encrypted"};
static const struct bm_reader whole_md = {
    .name = "raid", .types = md_types, .method = BM_WHOLE, .note = "RAID member"};
static const struct bm_reader whole_bcache = {
    .name = "bcache", .types = bcache_types, .method = BM_WHOLE, .note = "bcache device"};
static const struct bm_reader whole_zfs = {
    .name = "zfs", .types = zfs_types, .method = BM_WHOLE, .note = "ZFS pool member"};
static const struct bm_reader whole_lvm1 = {
    .name = "lvm1", .types = lvm1_types, .method = BM_WHOLE, .note = "LVM1 PV"};
static const struct bm_reader whole_hib = {
    .name = "swsuspend", .types = hib_types, .method = BM_WHOLE, .note = "hibernation image"};

/* One line per format, readers first (clang-format would pack them). */
/* clang-format off */
static const struct bm_reader *const readers[] = {
	&bm_reader_ext,
	&bm_reader_swap,
	&bm_reader_xfs,
	&bm_reader_fat,
	&bm_reader_lvm,
	&bm_reader_btrfs,
	&whole_encrypted,
	&whole_md,
	&whole_bcache,
	&whole_zfs,
	&whole_lvm1,
	&whole_hib,
};
/* clang-format on */

const struct bm_reader *bm_reader_for(const char *fstype)
{
	size_t i, j;

	if (!fstype || !fstype[0])
		return NULL;
	for (i = 0; i < sizeof(readers) / sizeof(readers[0]); i++)
		for (j = 0; readers[i]->types[j]; j++)
			if (!strcmp(readers[i]->types[j], fstype))
				return readers[i];
	return NULL;
}
