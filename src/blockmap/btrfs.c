/*
 * btrfs.c - the on-disk btrfs of one device: the superblock (CRC32C), the
 * sys_chunk_array that bootstraps the chunk tree, the chunk tree (logical
 * to physical, by devid), the root tree (where the extent tree is) and
 * the extent tree (which extents are allocated, data and tree blocks).
 * It marks the device head, every superblock copy and the pieces here of
 * every allocated extent (both copies of DUP and RAID1, the stripes of
 * RAID0/10 that live here); RAID5/6 chunks, and every chunk when the
 * extent tree cannot be trusted or reached from here, whole. Every tree
 * block is checked (CRC32C, fsid, bytenr, level, generation, nritems and
 * each item inside the block, keys in order) and the walk is bounded by
 * the metadata bytes, so a damaged filesystem makes the caller send it
 * whole. Reads and marks go through struct btrfs_io; it never writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/btrfs.h"
#include "blockmap/reader.h"
#include "common/common.h"

#define MAGIC		       "_BHRfS_M"
#define CSUM_CRC32C	       0u
#define INCOMPAT_METADATA_UUID (1ull << 10)
/* Layouts this map does not model: zoned, extent tree v2, RAID stripe tree. */
#define INCOMPAT_UNMAPPED ((1ull << 12) | (1ull << 13) | (1ull << 14))
#define PROFILE_MASK                                                                               \
	(BTRFS_BG_RAID0 | BTRFS_BG_RAID1 | BTRFS_BG_DUP | BTRFS_BG_RAID10 | BTRFS_BG_RAID5 |       \
	 BTRFS_BG_RAID6 | BTRFS_BG_RAID1C3 | BTRFS_BG_RAID1C4)
#define CHUNK_ITEM_LEN 48u
#define STRIPE_LEN     32u
/* Superblock copies: 64 KiB, 64 MiB, 256 GiB (the primary is in the head). */
static const uint64_t SB_COPIES[] = {65536ull, 64ull << 20, 256ull << 30};

static const uint32_t crc32c_tab[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
    0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
    0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
    0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
    0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
    0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
    0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
    0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
    0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
    0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
    0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
    0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
    0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
    0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
    0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
    0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
    0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
    0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
    0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
    0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
    0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
    0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t bm_btrfs_crc32c(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		crc = crc32c_tab[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return crc;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

/* The checksum btrfs stores: CRC32C (~0 in, inverted out) in the first 4 bytes. */
static int csum_ok(const uint8_t *buf, size_t len)
{
	return le32(buf) == ~bm_btrfs_crc32c(~0u, buf + 32, len - 32);
}

int bm_btrfs_sb(const uint8_t *b, uint64_t dev_size, struct btrfs_sb *sb, char *why, size_t whycap)
{
	uint16_t csum_type;

	memset(sb, 0, sizeof(*sb));
	if (memcmp(b + 0x40, MAGIC, 8) != 0)
		return bm_why(why, whycap, "no btrfs superblock at 64 KiB");
	csum_type = (uint16_t)(b[0xc4] | b[0xc5] << 8);
	if (csum_type != CSUM_CRC32C)
		return bm_why(why, whycap, "checksum type %u (only crc32c is verified)", csum_type);
	if (!csum_ok(b, BTRFS_SB_LEN))
		return bm_why(why, whycap, "the superblock's CRC32C does not match");
	if (le64(b + 0x30) != BTRFS_SB_OFF)
		return bm_why(why, whycap, "the superblock says it is at %" PRIu64, le64(b + 0x30));
	sb->generation = le64(b + 0x48);
	sb->root = le64(b + 0x50);
	sb->chunk_root = le64(b + 0x58);
	sb->log_root = le64(b + 0x60);
	sb->total_bytes = le64(b + 0x70);
	sb->num_devices = le64(b + 0x88);
	sb->sectorsize = le32(b + 0x90);
	sb->nodesize = le32(b + 0x94);
	sb->sys_array_len = le32(b + 0xa0);
	sb->incompat = le64(b + 0xbc);
	sb->root_level = b[0xc6];
	sb->chunk_root_level = b[0xc7];
	sb->devid = le64(b + 0xc9);
	sb->dev_bytes = le64(b + 0xc9 + 8);
	memcpy(sb->uuid, b + 0x20, 16);
	memcpy(sb->fsid, (sb->incompat & INCOMPAT_METADATA_UUID) ? b + 0x23b : b + 0x20, 16);
	if (!pow2_in(sb->sectorsize, 4096, BTRFS_NODE_MAX) ||
	    !pow2_in(sb->nodesize, sb->sectorsize, BTRFS_NODE_MAX))
		return bm_why(why, whycap, "sector size %u, node size %u", sb->sectorsize,
			     sb->nodesize);
	if (sb->sys_array_len > BTRFS_SYS_ARRAY_MAX)
		return bm_why(why, whycap, "sys_chunk_array of %u bytes (limit %u)",
			     sb->sys_array_len, BTRFS_SYS_ARRAY_MAX);
	if (sb->root_level >= BTRFS_LEVELS || sb->chunk_root_level >= BTRFS_LEVELS)
		return bm_why(why, whycap, "tree levels %u and %u (limit %u)", sb->root_level,
			     sb->chunk_root_level, BTRFS_LEVELS - 1);
	if (!sb->root || !sb->chunk_root || sb->root % sb->sectorsize ||
	    sb->chunk_root % sb->sectorsize)
		return bm_why(why, whycap,
			     "root %" PRIu64 " and chunk root %" PRIu64 " are not block addresses",
			     sb->root, sb->chunk_root);
	if (sb->devid == 0 || sb->num_devices == 0)
		return bm_why(why, whycap, "device id %" PRIu64 " of %" PRIu64, sb->devid,
			     sb->num_devices);
	if (sb->dev_bytes > dev_size)
		return bm_why(why, whycap,
			     "the filesystem gives this device %" PRIu64 " bytes, it has %" PRIu64,
			     sb->dev_bytes, dev_size);
	if (sb->incompat & INCOMPAT_UNMAPPED)
		return bm_why(why, whycap, "incompat features 0x%" PRIx64 " are not mapped",
			     (uint64_t)(sb->incompat & INCOMPAT_UNMAPPED));
	memcpy(sb->sys_array, b + 0x32b, sb->sys_array_len);
	return 0;
}

static void read_key(const uint8_t *p, struct btrfs_key *k)
{
	k->objectid = le64(p);
	k->type = p[8];
	k->offset = le64(p + 9);
}

static int key_cmp(const struct btrfs_key *a, const struct btrfs_key *b)
{
	if (a->objectid != b->objectid)
		return a->objectid < b->objectid ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

int bm_btrfs_node(const uint8_t *b, const struct btrfs_sb *sb, uint64_t bytenr, int want_level,
		  char *why, size_t whycap)
{
	uint32_t ns = sb->nodesize, nritems = le32(b + 0x60), i, lo;
	unsigned level = b[0x64];
	struct btrfs_key prev = {0}, k;

	if (!csum_ok(b, ns))
		return bm_why(why, whycap, "tree block %" PRIu64 ": CRC32C does not match", bytenr);
	if (memcmp(b + 0x20, sb->fsid, 16) != 0)
		return bm_why(why, whycap, "tree block %" PRIu64 " belongs to another filesystem",
			     bytenr);
	if (le64(b + 0x30) != bytenr)
		return bm_why(why, whycap, "tree block %" PRIu64 " says it is %" PRIu64, bytenr,
			     le64(b + 0x30));
	if (level >= BTRFS_LEVELS)
		return bm_why(why, whycap, "tree block %" PRIu64 ": level %u (limit %u)", bytenr,
			     level, BTRFS_LEVELS - 1);
	if (want_level >= 0 && level != (unsigned)want_level)
		return bm_why(why, whycap, "tree block %" PRIu64 ": level %u, expected %d", bytenr,
			     level, want_level);
	if (level == 0 ? nritems > (ns - BTRFS_HDR_LEN) / BTRFS_ITEM_LEN
		       : nritems == 0 || nritems > (ns - BTRFS_HDR_LEN) / BTRFS_PTR_LEN)
		return bm_why(why, whycap, "tree block %" PRIu64 ": %u items at level %u", bytenr,
			     nritems, level);
	/* Leaf data grows down from the end and may not reach the item array. */
	lo = nritems * BTRFS_ITEM_LEN;
	for (i = 0; i < nritems; i++) {
		const uint8_t *p =
		    b + BTRFS_HDR_LEN + (size_t)i * (level ? BTRFS_PTR_LEN : BTRFS_ITEM_LEN);

		read_key(p, &k);
		if (i && key_cmp(&prev, &k) >= 0)
			return bm_why(why, whycap, "tree block %" PRIu64 ": keys out of order at %u",
				     bytenr, i);
		prev = k;
		if (level) {
			uint64_t ptr = le64(p + BTRFS_KEY_LEN);

			if (!ptr || ptr % sb->sectorsize)
				return bm_why(why, whycap,
					     "tree block %" PRIu64 ": pointer %u is %" PRIu64,
					     bytenr, i, ptr);
		} else {
			uint32_t off = le32(p + BTRFS_KEY_LEN), size = le32(p + BTRFS_KEY_LEN + 4);

			if (off < lo || off > ns - BTRFS_HDR_LEN || size > ns - BTRFS_HDR_LEN - off)
				return bm_why(why, whycap,
					     "tree block %" PRIu64 ": item %u at %u+%u is outside "
					     "the block",
					     bytenr, i, off, size);
		}
	}
	return 0;
}

void bm_btrfs_item(const uint8_t *leaf, uint32_t i, struct btrfs_key *k, const uint8_t **data,
		   uint32_t *size)
{
	const uint8_t *p = leaf + BTRFS_HDR_LEN + (size_t)i * BTRFS_ITEM_LEN;

	read_key(p, k);
	*data = leaf + BTRFS_HDR_LEN + le32(p + BTRFS_KEY_LEN);
	*size = le32(p + BTRFS_KEY_LEN + 4);
}

/* ---- chunks ---------------------------------------------------------- */

/* Bytes of one stripe of c (each device's share), 0 if the shape is wrong. */
static uint64_t stripe_bytes(const struct btrfs_chunk *c)
{
	uint64_t n = c->num_stripes, p = c->type & PROFILE_MASK;

	switch (p) {
	case 0: return n == 1 ? c->length : 0;
	case BTRFS_BG_DUP:
	case BTRFS_BG_RAID1:
	case BTRFS_BG_RAID1C3:
	case BTRFS_BG_RAID1C4: return n >= 2 ? c->length : 0;
	case BTRFS_BG_RAID0: return c->length % n ? 0 : c->length / n;
	case BTRFS_BG_RAID10:
		if (c->sub_stripes != 2 || n < 2 || n % 2 || c->length % (n / 2))
			return 0;
		return c->length / (n / 2);
	case BTRFS_BG_RAID5: return n >= 2 && c->length % (n - 1) == 0 ? c->length / (n - 1) : 0;
	case BTRFS_BG_RAID6: return n >= 3 && c->length % (n - 2) == 0 ? c->length / (n - 2) : 0;
	}
	return 0; /* two profile bits */
}

int bm_btrfs_chunk_by_extent(const struct btrfs_chunk *c)
{
	return !(c->type & (BTRFS_BG_RAID5 | BTRFS_BG_RAID6));
}

int bm_btrfs_add_chunk(struct btrfs_map *m, uint64_t logical, const uint8_t *it, uint32_t size,
		       char *why, size_t whycap)
{
	struct btrfs_chunk c = {0};
	uint64_t per;
	size_t lo = 0, hi = m->n, i;

	if (size < CHUNK_ITEM_LEN)
		return bm_why(why, whycap, "chunk %" PRIu64 ": item of %u bytes", logical, size);
	c.logical = logical;
	c.length = le64(it);
	c.stripe_len = le64(it + 16);
	c.type = le64(it + 24);
	c.num_stripes = (uint16_t)(it[44] | it[45] << 8);
	c.sub_stripes = (uint16_t)(it[46] | it[47] << 8);
	if (c.num_stripes == 0 || size != CHUNK_ITEM_LEN + (uint32_t)c.num_stripes * STRIPE_LEN)
		return bm_why(why, whycap, "chunk %" PRIu64 ": %u stripes in %u bytes", logical,
			     c.num_stripes, size);
	if (c.length == 0 || logical > UINT64_MAX - c.length ||
	    !pow2_in(c.stripe_len, 4096, 1u << 30) ||
	    !(c.type & (BTRFS_BG_DATA | BTRFS_BG_METADATA | BTRFS_BG_SYSTEM)))
		return bm_why(why, whycap,
			     "chunk %" PRIu64 ": length %" PRIu64 ", stripe_len %" PRIu64
			     ", type 0x%" PRIx64,
			     logical, c.length, c.stripe_len, c.type);
	per = stripe_bytes(&c);
	/* Striped profiles: a stripe is whole stripe units, or the mapping runs past it. */
	if ((c.type & (BTRFS_BG_RAID0 | BTRFS_BG_RAID10 | BTRFS_BG_RAID5 | BTRFS_BG_RAID6)) &&
	    per % c.stripe_len)
		per = 0;
	if (per == 0)
		return bm_why(why, whycap,
			     "chunk %" PRIu64 ": type 0x%" PRIx64
			     " with %u stripes (%u sub) of %" PRIu64 " bytes",
			     logical, c.type, c.num_stripes, c.sub_stripes, c.length);
	for (i = 0; i < c.num_stripes; i++) {
		const uint8_t *s = it + CHUNK_ITEM_LEN + i * STRIPE_LEN;
		uint64_t phys = le64(s + 8);

		if (le64(s) != m->devid)
			continue;
		if (c.nlocal == BTRFS_LOCAL_MAX)
			return bm_why(why, whycap, "chunk %" PRIu64 ": more than %u stripes here",
				     logical, BTRFS_LOCAL_MAX);
		if (phys > m->dev_size || per > m->dev_size - phys)
			return bm_why(why, whycap,
				     "chunk %" PRIu64 ": stripe %zu at %" PRIu64 "+%" PRIu64
				     " runs past the device's %" PRIu64 " bytes",
				     logical, i, phys, per, m->dev_size);
		c.local[c.nlocal].idx = (uint16_t)i;
		c.local[c.nlocal].phys = phys;
		c.nlocal++;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->c[mid].logical < logical)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* The sys_chunk_array's chunks come again from the chunk tree. */
	if (lo < m->n && m->c[lo].logical == logical) {
		if (m->c[lo].length != c.length || m->c[lo].type != c.type)
			return bm_why(why, whycap,
				     "chunk %" PRIu64 " is described twice, differently", logical);
		return 0;
	}
	if ((lo > 0 && m->c[lo - 1].logical + m->c[lo - 1].length > logical) ||
	    (lo < m->n && logical + c.length > m->c[lo].logical))
		return bm_why(why, whycap, "chunk %" PRIu64 "+%" PRIu64 " overlaps another", logical,
			     c.length);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct btrfs_chunk *nc;

		if (m->n >= BTRFS_CHUNKS_MAX)
			return bm_why(why, whycap, "more than %u chunks", BTRFS_CHUNKS_MAX);
		nc = realloc(m->c, cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		m->c = nc;
		m->cap = cap;
	}
	memmove(&m->c[lo + 1], &m->c[lo], (m->n - lo) * sizeof(c));
	m->c[lo] = c;
	m->n++;
	return 0;
}

int bm_btrfs_sys_array(const struct btrfs_sb *sb, struct btrfs_map *m, char *why, size_t whycap)
{
	uint32_t off = 0, len = sb->sys_array_len;

	while (off < len) {
		struct btrfs_key k;
		uint32_t n, size;
		int r;

		if (len - off < BTRFS_KEY_LEN + CHUNK_ITEM_LEN)
			return bm_why(why, whycap, "sys_chunk_array: %u stray bytes", len - off);
		read_key(sb->sys_array + off, &k);
		if (k.type != BTRFS_CHUNK_ITEM)
			return bm_why(why, whycap, "sys_chunk_array: item type %u", k.type);
		off += BTRFS_KEY_LEN;
		n = (uint32_t)(sb->sys_array[off + 44] | sb->sys_array[off + 45] << 8);
		size = CHUNK_ITEM_LEN + n * STRIPE_LEN;
		if (size > len - off)
			return bm_why(why, whycap, "sys_chunk_array: a chunk of %u stripes is cut",
				     n);
		r = bm_btrfs_add_chunk(m, k.offset, sb->sys_array + off, size, why, whycap);
		if (r)
			return r;
		off += size;
	}
	if (m->n == 0)
		return bm_why(why, whycap, "sys_chunk_array is empty");
	return 0;
}

const struct btrfs_chunk *bm_btrfs_chunk_at(const struct btrfs_map *m, uint64_t logical)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->c[mid].logical + m->c[mid].length <= logical)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->n && m->c[lo].logical <= logical)
		return &m->c[lo];
	return NULL;
}

void bm_btrfs_map_free(struct btrfs_map *m)
{
	free(m->c);
	m->c = NULL;
	m->n = m->cap = 0;
}

static int local_idx(const struct btrfs_chunk *c, unsigned idx, uint64_t *phys)
{
	unsigned i;

	for (i = 0; i < c->nlocal; i++)
		if (c->local[i].idx == idx) {
			*phys = c->local[i].phys;
			return 1;
		}
	return 0;
}

/*
 * Calls fn for each piece here of [off, off + len) of chunk c (off from
 * the chunk's start, inside it). Returns whether any piece is here.
 */
static int for_pieces(const struct btrfs_chunk *c, uint64_t off, uint64_t len,
		      void (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	uint64_t p = c->type & PROFILE_MASK, sl = c->stripe_len, phys;
	int any = 0;
	unsigned i;

	if (!(p & (BTRFS_BG_RAID0 | BTRFS_BG_RAID10))) {
		for (i = 0; i < c->nlocal; i++) {
			fn(arg, c->local[i].phys + off, len);
			any = 1;
		}
		return any;
	}
	while (len) {
		uint64_t sn = off / sl, in = off % sl, n = sl - in < len ? sl - in : len, row,
			 first;
		unsigned subs = p & BTRFS_BG_RAID10 ? c->sub_stripes : 1;
		unsigned factor = c->num_stripes / subs;

		row = sn / factor;
		first = (sn % factor) * subs;
		for (i = 0; i < subs; i++)
			if (local_idx(c, (unsigned)first + i, &phys)) {
				fn(arg, phys + row * sl + in, n);
				any = 1;
			}
		off += n;
		len -= n;
	}
	return any;
}

struct first_piece {
	uint64_t phys;
	int found;
};

static void take_first(void *arg, uint64_t phys, uint64_t len)
{
	struct first_piece *f = arg;

	(void)len;
	if (!f->found) {
		f->phys = phys;
		f->found = 1;
	}
}

/* Where a tree block of nodesize bytes at logical can be read here; -ENOENT if not here. */
static int map_block(const struct btrfs_map *m, uint64_t logical, uint32_t ns, uint64_t *phys,
		     char *why, size_t whycap)
{
	const struct btrfs_chunk *c = bm_btrfs_chunk_at(m, logical);
	struct first_piece f = {0};
	uint64_t off;

	if (!c || logical - c->logical > c->length - ns)
		return bm_why(why, whycap, "tree block %" PRIu64 " is in no chunk", logical);
	if (!(c->type & (BTRFS_BG_METADATA | BTRFS_BG_SYSTEM)))
		return bm_why(why, whycap, "tree block %" PRIu64 " lies in a data chunk", logical);
	off = logical - c->logical;
	if (c->type & (BTRFS_BG_RAID5 | BTRFS_BG_RAID6))
		return -ENOENT;
	/* A tree block never crosses a stripe unit: check before mapping its start. */
	if ((c->type & (BTRFS_BG_RAID0 | BTRFS_BG_RAID10)) &&
	    off % c->stripe_len + ns > c->stripe_len)
		return bm_why(why, whycap, "tree block %" PRIu64 " crosses a stripe", logical);
	for_pieces(c, off, 1, take_first, &f);
	if (!f.found)
		return -ENOENT;
	*phys = f.phys;
	return 0;
}

/* ---- marking --------------------------------------------------------- */

static void io_mark(void *arg, uint64_t off, uint64_t len)
{
	const struct btrfs_io *io = arg;

	io->mark(io->ctx, off, len);
}

void bm_btrfs_mark_head(const struct btrfs_io *io)
{
	size_t i;

	io->mark(io->ctx, 0, io->size < BTRFS_HEAD_LEN ? io->size : BTRFS_HEAD_LEN);
	for (i = 0; i < sizeof(SB_COPIES) / sizeof(SB_COPIES[0]); i++)
		if (io->size >= SB_COPIES[i] + BTRFS_SB_LEN)
			io->mark(io->ctx, SB_COPIES[i], BTRFS_SB_LEN);
}

int bm_btrfs_mark_extent(const struct btrfs_map *m, const struct btrfs_io *io, uint64_t logical,
			 uint64_t len, char *why, size_t whycap)
{
	const struct btrfs_chunk *c = bm_btrfs_chunk_at(m, logical);

	if (!c || len == 0 || len > c->length - (logical - c->logical))
		return bm_why(why, whycap, "extent %" PRIu64 "+%" PRIu64 " is outside its chunk",
			     logical, len);
	/* RAID5/6 chunks (parity rotates) are marked whole by mark_chunks. */
	if (bm_btrfs_chunk_by_extent(c))
		for_pieces(c, logical - c->logical, len, io_mark, (void *)io);
	return 0;
}

void bm_btrfs_mark_chunks(const struct btrfs_map *m, const struct btrfs_io *io, int all,
			  struct btrfs_stats *st)
{
	size_t i;
	unsigned j;

	for (i = 0; i < m->n; i++) {
		const struct btrfs_chunk *c = &m->c[i];

		st->chunks++;
		st->data_chunks += (c->type & BTRFS_BG_DATA) != 0;
		if (bm_btrfs_chunk_by_extent(c) && !all)
			continue;
		for (j = 0; j < c->nlocal; j++) {
			io->mark(io->ctx, c->local[j].phys, stripe_bytes(c));
			st->whole_bytes += stripe_bytes(c);
		}
	}
}

/* ---- the tree walk ---------------------------------------------------- */

struct walk {
	const struct btrfs_io *io;
	const struct btrfs_sb *sb;
	struct btrfs_map *m;
	uint8_t *buf[BTRFS_LEVELS];
	uint64_t nodes, max_nodes;
	int (*leaf)(struct walk *w, const struct btrfs_key *k, const uint8_t *d, uint32_t n);
	struct btrfs_stats *st;
	uint64_t extent_root;
	int extent_level, found_extent_root;
	char *why;
	size_t whycap;
};

static int walk_node(struct walk *w, uint64_t bytenr, int level, uint64_t gen)
{
	uint8_t *b = w->buf[level];
	uint32_t i, nritems;
	uint64_t phys = 0;
	int r;

	if (++w->nodes > w->max_nodes)
		return bm_why(w->why, w->whycap,
			     "more tree blocks than the %" PRIu64 " the metadata chunks hold",
			     w->max_nodes);
	r = map_block(w->m, bytenr, w->sb->nodesize, &phys, w->why, w->whycap);
	if (r)
		return r;
	r = w->io->read(w->io->ctx, b, w->sb->nodesize, phys);
	if (r)
		return r;
	r = bm_btrfs_node(b, w->sb, bytenr, level, w->why, w->whycap);
	if (r)
		return r;
	if (gen && le64(b + 0x50) != gen)
		return bm_why(w->why, w->whycap,
			     "tree block %" PRIu64 ": generation %" PRIu64
			     ", its parent says %" PRIu64,
			     bytenr, le64(b + 0x50), gen);
	/* The blocks this map was read from are sent, whatever the extent tree says. */
	bm_btrfs_mark_extent(w->m, w->io, bytenr, w->sb->nodesize, NULL, 0);
	nritems = le32(b + 0x60);
	for (i = 0; i < nritems; i++) {
		if (level == 0) {
			struct btrfs_key k;
			const uint8_t *d;
			uint32_t n;

			bm_btrfs_item(b, i, &k, &d, &n);
			r = w->leaf(w, &k, d, n);
		} else {
			const uint8_t *p = b + BTRFS_HDR_LEN + (size_t)i * BTRFS_PTR_LEN;

			r = walk_node(w, le64(p + BTRFS_KEY_LEN), level - 1,
				      le64(p + BTRFS_KEY_LEN + 8));
			/* The child overwrote nothing of ours: each level has its buffer. */
		}
		if (r)
			return r;
	}
	return 0;
}

static int leaf_chunk(struct walk *w, const struct btrfs_key *k, const uint8_t *d, uint32_t n)
{
	if (k->type != BTRFS_CHUNK_ITEM)
		return 0;
	return bm_btrfs_add_chunk(w->m, k->offset, d, n, w->why, w->whycap);
}

static int leaf_root(struct walk *w, const struct btrfs_key *k, const uint8_t *d, uint32_t n)
{
	if (k->type != BTRFS_ROOT_ITEM || k->objectid != BTRFS_EXTENT_TREE_ID)
		return 0;
	if (n < 239)
		return bm_why(w->why, w->whycap, "the extent tree's root item has %u bytes", n);
	w->extent_root = le64(d + 176);
	w->extent_level = d[238];
	w->found_extent_root = 1;
	if (w->extent_level >= (int)BTRFS_LEVELS)
		return bm_why(w->why, w->whycap, "the extent tree's level is %d", w->extent_level);
	return 0;
}

/*
 * Every allocated extent, data and tree blocks alike: EXTENT_ITEM (bytenr,
 * length), METADATA_ITEM (bytenr, level) of one node (skinny metadata).
 */
static int leaf_extent(struct walk *w, const struct btrfs_key *k, const uint8_t *d, uint32_t n)
{
	uint64_t len;

	(void)d, (void)n;
	if (k->type == BTRFS_EXTENT_ITEM)
		len = k->offset;
	else if (k->type == BTRFS_METADATA_ITEM)
		len = w->sb->nodesize;
	else
		return 0;
	w->st->extent_bytes += len;
	return bm_btrfs_mark_extent(w->m, w->io, k->objectid, len, w->why, w->whycap);
}

/* Tree blocks the metadata and system chunks can hold: the walk's bound. */
static uint64_t max_blocks(const struct btrfs_map *m, uint32_t ns)
{
	uint64_t bytes = 0;
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->c[i].type & (BTRFS_BG_METADATA | BTRFS_BG_SYSTEM))
			bytes += m->c[i].length;
	return bytes / ns + 1;
}

static void note(struct btrfs_stats *st, const char *s)
{
	if (!st->note[0])
		snprintf(st->note, sizeof(st->note), "%s", s);
}

int bm_btrfs_scan(const struct btrfs_io *io, struct btrfs_stats *st, char *why, size_t whycap)
{
	struct btrfs_map m = {0};
	struct btrfs_sb *sb = NULL;
	struct walk w = {0};
	uint8_t *sbuf = NULL;
	int r, all = 0;
	unsigned i;

	memset(st, 0, sizeof(*st));
	if (io->size < BTRFS_SB_OFF + BTRFS_SB_LEN)
		return bm_why(why, whycap, "the device has only %" PRIu64 " bytes", io->size);
	sb = calloc(1, sizeof(*sb));
	sbuf = calloc(1, BTRFS_SB_LEN);
	if (!sb || !sbuf) {
		r = -ENOMEM;
		goto out;
	}
	r = io->read(io->ctx, sbuf, BTRFS_SB_LEN, BTRFS_SB_OFF);
	if (!r)
		r = bm_btrfs_sb(sbuf, io->size, sb, why, whycap);
	if (r)
		goto out;
	m.devid = sb->devid;
	m.dev_size = io->size;
	r = bm_btrfs_sys_array(sb, &m, why, whycap);
	if (r)
		goto out;

	w.io = io;
	w.sb = sb;
	w.m = &m;
	w.st = st;
	w.why = why;
	w.whycap = whycap;
	for (i = 0; i < BTRFS_LEVELS; i++) {
		w.buf[i] = malloc(sb->nodesize);
		if (!w.buf[i]) {
			r = -ENOMEM;
			goto out;
		}
	}
	w.max_nodes = max_blocks(&m, sb->nodesize);
	w.leaf = leaf_chunk;
	r = walk_node(&w, sb->chunk_root, sb->chunk_root_level, 0);
	if (r == -ENOENT)
		r = bm_why(why, whycap, "the chunk tree is not on this device");
	if (r)
		goto out;

	/* Data written under a pending log is only in the log tree. */
	/* Log tree blocks and the data they name are in no extent tree yet. */
	if (sb->log_root) {
		all = 1;
		note(st, "a log tree is pending (not cleanly unmounted): chunks sent whole");
	}
	w.max_nodes = w.nodes + max_blocks(&m, sb->nodesize);
	w.leaf = leaf_root;
	r = walk_node(&w, sb->root, sb->root_level, 0);
	if (!r && !w.found_extent_root)
		r = bm_why(why, whycap, "the root tree has no extent tree");
	if (!r && !all) {
		w.leaf = leaf_extent;
		r = walk_node(&w, w.extent_root, w.extent_level, 0);
	}
	if (r == -ENOENT) {
		/* Metadata striped or kept on other devices: chunks are what we know. */
		all = 1;
		st->chunk_level = 1;
		note(st, "the extent tree is not on this device: chunks sent whole");
		r = 0;
	}
	if (r)
		goto out;
	st->nodes = w.nodes;
	bm_btrfs_mark_head(io);
	bm_btrfs_mark_chunks(&m, io, all, st);
out:
	for (i = 0; i < BTRFS_LEVELS; i++)
		free(w.buf[i]);
	bm_btrfs_map_free(&m);
	free(sb);
	free(sbuf);
	return r;
}

/* ---- the reader: a volume as a btrfs_io --------------------------------- */

struct vol_io {
	struct bm_disk *d;
	const struct bm_vol *v;
};

static int vol_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct vol_io *x = ctx;
	int r = bm_vol_read(x->v, buf, len, off);

	/* Outside the volume: a bounds check above let a bad number through. */
	return r == -EINVAL ? -EUCLEAN : r;
}

static void vol_mark(void *ctx, uint64_t off, uint64_t len)
{
	const struct vol_io *x = ctx;

	bm_vol_mark(x->d, x->v, off, len);
}

static void remark(const struct btrfs_stats *st, const char *how, char *why, size_t whycap)
{
	if (st->note[0])
		snprintf(why, whycap, "%s", st->note);
	else
		snprintf(why, whycap, "%s", how);
}

static int btrfs_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	struct vol_io x = {d, v};
	struct btrfs_io io = {vol_read, vol_mark, &x, v->size};
	struct btrfs_stats st;
	int r;

	r = bm_btrfs_scan(&io, &st, why, whycap);
	if (r == -EUCLEAN && !why[0])
		snprintf(why, whycap, "a tree points outside the device");
	if (!r)
		remark(&st, "extent tree", why, whycap);
	return r;
}

/*
 * Mounted: the kernel's trees. Where the ioctl is refused (no
 * CAP_SYS_ADMIN, an old kernel) the on-disk trees after the caller's
 * sync are the fallback; their blocks are all checked, so a commit
 * racing the walk makes it fail (sent whole), never wrong.
 */
static int btrfs_mark_mounted(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	struct vol_io x = {d, v};
	struct btrfs_io io = {vol_read, vol_mark, &x, v->size};
	struct btrfs_stats st;
	struct btrfs_sb *sb;
	uint8_t *b;
	int r;

	if (v->size < BTRFS_SB_OFF + BTRFS_SB_LEN)
		return bm_why(why, whycap, "the device has only %" PRIu64 " bytes", v->size);
	sb = calloc(1, sizeof(*sb));
	b = malloc(BTRFS_SB_LEN);
	if (!sb || !b) {
		r = -ENOMEM;
		goto out;
	}
	r = vol_read(&x, b, BTRFS_SB_LEN, BTRFS_SB_OFF);
	if (!r)
		r = bm_btrfs_sb(b, v->size, sb, why, whycap);
	if (!r)
		r = bm_btrfs_scan_mounted(v->mountpoint, sb, &io, &st, why, whycap);
	if (!r) {
		remark(&st, "mounted: the kernel's trees", why, whycap);
	} else if (r != -EUCLEAN && r != -ENOMEM) {
		log_info("%s: %s: btrfs search at %s failed (%s); reading its trees from the disk",
			 d->path, v->what, v->mountpoint, strerror(-r));
		r = btrfs_mark(d, v, why, whycap);
	}
out:
	free(sb);
	free(b);
	return r;
}

static const char *const btrfs_types[] = {"btrfs", NULL};

const struct bm_reader bm_reader_btrfs = {
    .name = "btrfs",
    .types = btrfs_types,
    .method = BM_USED,
    .mark = btrfs_mark,
    .mark_mounted = btrfs_mark_mounted,
};
