/*
 * btrfs_live.c - the map of a mounted btrfs from the kernel's own trees
 * (BTRFS_IOC_TREE_SEARCH_V2 on the mount point): the chunk tree for where
 * this device's stripes are, the extent tree for what is allocated. The
 * on-disk trees of a mounted filesystem are only as of its last commit
 * and their blocks are rewritten by the next one while they are read;
 * the kernel's view is consistent and, after the caller's sync, complete.
 * Marking is btrfs.c's; this file only turns search results into items.
 * Needs CAP_SYS_ADMIN, like the agent; never changes the filesystem.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/btrfs.h>

#include "blockmap/btrfs.h"
#include "blockmap/reader.h"

/* One search returns as many items as fit: 64 KiB holds any single item. */
#define SEARCH_BUF (64u * 1024)

struct live {
	struct btrfs_map *m;
	const struct btrfs_io *io;
	const struct btrfs_sb *sb;
	struct btrfs_stats *st;
	char *why;
	size_t whycap;
};

static int on_chunk(struct live *l, const struct btrfs_key *k, const uint8_t *d, uint32_t n)
{
	if (k->type != BTRFS_CHUNK_ITEM)
		return 0;
	return bm_btrfs_add_chunk(l->m, k->offset, d, n, l->why, l->whycap);
}

static int on_extent(struct live *l, const struct btrfs_key *k, const uint8_t *d, uint32_t n)
{
	uint64_t len;

	(void)d, (void)n;
	if (k->type == BTRFS_EXTENT_ITEM)
		len = k->offset;
	else if (k->type == BTRFS_METADATA_ITEM)
		len = l->sb->nodesize;
	else
		return 0;
	l->st->extent_bytes += len;
	return bm_btrfs_mark_extent(l->m, l->io, k->objectid, len, l->why, l->whycap);
}

/* Every item of one tree, in key order, through fn. */
static int search(int fd, uint64_t tree, struct btrfs_ioctl_search_args_v2 *a, struct live *l,
		  int (*fn)(struct live *, const struct btrfs_key *, const uint8_t *, uint32_t))
{
	struct btrfs_key k = {0};
	const uint8_t *buf = (const uint8_t *)a->buf;

	for (;;) {
		size_t pos = 0;
		uint32_t i, n;

		memset(&a->key, 0, sizeof(a->key));
		a->key.tree_id = tree;
		a->key.min_objectid = k.objectid;
		a->key.min_type = k.type;
		a->key.min_offset = k.offset;
		a->key.max_objectid = UINT64_MAX;
		a->key.max_type = 255;
		a->key.max_offset = UINT64_MAX;
		a->key.max_transid = UINT64_MAX;
		a->key.nr_items = UINT32_MAX;
		a->buf_size = SEARCH_BUF;
		if (ioctl(fd, BTRFS_IOC_TREE_SEARCH_V2, a) < 0)
			return -errno;
		n = a->key.nr_items;
		if (n == 0)
			return 0;
		for (i = 0; i < n; i++) {
			struct btrfs_ioctl_search_header sh;
			int r;

			if (SEARCH_BUF - pos < sizeof(sh))
				return bm_why(l->why, l->whycap,
					     "tree %" PRIu64 ": search result cut", tree);
			memcpy(&sh, buf + pos, sizeof(sh));
			pos += sizeof(sh);
			if (sh.len > SEARCH_BUF - pos || sh.type > 255)
				return bm_why(l->why, l->whycap,
					     "tree %" PRIu64
					     ": item of %u bytes in the search result",
					     tree, sh.len);
			k.objectid = sh.objectid;
			k.type = (uint8_t)sh.type;
			k.offset = sh.offset;
			r = fn(l, &k, buf + pos, sh.len);
			if (r)
				return r;
			pos += sh.len;
		}
		/* The next search starts just past the last key. */
		if (k.offset != UINT64_MAX) {
			k.offset++;
		} else if (k.type != 255) {
			k.type++;
			k.offset = 0;
		} else if (k.objectid != UINT64_MAX) {
			k.objectid++;
			k.type = 0;
			k.offset = 0;
		} else {
			return 0;
		}
	}
}

int bm_btrfs_scan_mounted(const char *mnt, const struct btrfs_sb *sb, const struct btrfs_io *io,
			  struct btrfs_stats *st, char *why, size_t whycap)
{
	struct btrfs_ioctl_fs_info_args fi;
	struct btrfs_ioctl_search_args_v2 *a = NULL;
	struct btrfs_map m = {0};
	struct live l = {&m, io, sb, st, why, whycap};
	int fd, r;

	memset(st, 0, sizeof(*st));
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&fi, 0, sizeof(fi));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) < 0) {
		r = -errno;
		goto out;
	}
	/* The mount must be this filesystem, or its trees say nothing about our disk. */
	if (memcmp(fi.fsid, sb->uuid, sizeof(sb->uuid)) != 0) {
		r = -ENODEV;
		goto out;
	}
	a = calloc(1, sizeof(*a) + SEARCH_BUF);
	if (!a) {
		r = -ENOMEM;
		goto out;
	}
	m.devid = sb->devid;
	m.dev_size = io->size;
	r = search(fd, BTRFS_CHUNK_TREE_ID, a, &l, on_chunk);
	if (!r && m.n == 0)
		r = bm_why(why, whycap, "%s: the chunk tree search found no chunks", mnt);
	if (!r)
		r = search(fd, BTRFS_EXTENT_TREE_ID, a, &l, on_extent);
	if (r)
		goto out;
	bm_btrfs_mark_head(io);
	bm_btrfs_mark_chunks(&m, io, 0, st);
out:
	free(a);
	bm_btrfs_map_free(&m);
	close(fd);
	return r;
}
