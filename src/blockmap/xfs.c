/*
 * xfs.c - the XFS reader. Unmounted: the superblock, then each allocation
 * group's AGF and its by-block-number free-space B+tree (v4 "ABTB", v5
 * "AB3B" with CRCs); everything that is not free is sent (headers, log,
 * inodes, btrees, data, the AG free list). Every field is checked against
 * its neighbours before it is used, the tree walk is depth-limited and
 * its records must ascend, so a loop or a shared block fails instead of
 * spinning; any failure is -EUCLEAN (sent whole). A log that was not
 * cleanly unmounted holds allocations the trees on disk do not show yet,
 * so such a filesystem is sent whole too. Mounted: the kernel's map
 * (GETFSMAP). It never writes and never replays the log.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/reader.h"
#include "common/common.h"

#define XFS_SB_MAGIC   0x58465342u /* "XFSB" */
#define XFS_AGF_MAGIC  0x58414746u /* "XAGF" */
#define XFS_ABTB_MAGIC 0x41425442u /* "ABTB": v4 bnobt */
#define XFS_AB3B_MAGIC 0x41423342u /* "AB3B": v5 bnobt */
#define XLOG_MAGIC     0xfeedbabeu

#define XFS_SB_CRC_OFF	224
#define XFS_AGF_CRC_OFF 216
#define XFS_BT_CRC_OFF	52
#define XFS_BT_HDR_V4	16
#define XFS_BT_HDR_V5	56
#define XFS_MIN_BLOCK	512u
#define XFS_MAX_BLOCK	65536u
#define XFS_MAX_SECT	32768u
#define XFS_MIN_AG	64u
/* The AG btrees' height limit in the kernel (XFS_BTREE_MAXLEVELS). */
#define XFS_MAX_LEVELS	 9
#define XFS_NULL_AGBLOCK 0xffffffffu

#define BBSIZE		   512u
#define XLOG_HEADER_CYCLE  32768u
#define XLOG_UNMOUNT_TRANS 0x20
/* A log record and its headers are at most 256 KiB + 8 header blocks. */
#define XLOG_SCAN_BACK_BBS 1024u

struct xsb {
	uint32_t bs, sectsize, agblocks, agcount, logblocks;
	uint64_t dblocks, logstart;
	uint8_t agblklog;
	int v5;
};

/* One AG's walk: free extents must ascend; used runs are marked between them. */
struct agwalk {
	uint32_t agno, aglen;
	uint32_t end;	  /* first block after the last free extent seen */
	uint64_t free;	  /* blocks in free extents */
	uint64_t visited; /* tree blocks read */
	uint64_t agstart; /* byte offset of the AG in the volume */
	uint8_t *buf[XFS_MAX_LEVELS];
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* v5 metadata: crc32c of the block with its CRC field taken as zero. */
static int crc_ok(const uint8_t *p, size_t len, size_t off)
{
	static const uint8_t zero[4];
	uint32_t c = bm_crc32c(0xffffffffu, p, off);

	c = bm_crc32c(c, zero, 4);
	c = bm_crc32c(c, p + off + 4, len - off - 4);
	return le32(p + off) == ~c;
}

static int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int read_sb(const struct bm_vol *v, struct xsb *s, char *why, size_t whycap)
{
	uint8_t b[XFS_MAX_SECT];
	struct cur c;
	uint32_t magic, rextsize, rbmblocks;
	uint16_t version, sectsize;
	uint8_t blocklog, sectlog, inprogress;
	uint64_t u;
	int r;

	if (v->size < XFS_MIN_BLOCK)
		return bm_why(why, whycap, "the volume is only %" PRIu64 " bytes", v->size);
	r = bm_vol_read(v, b, XFS_MIN_BLOCK, 0);
	if (r)
		return r;
	cur_init(&c, b, XFS_MIN_BLOCK);
	cur_u32(&c, &magic);
	cur_u32(&c, &s->bs);
	cur_u64(&c, &s->dblocks);
	cur_skip(&c, 8 + 8 + 16); /* rblocks, rextents, uuid */
	cur_u64(&c, &s->logstart);
	cur_skip(&c, 24); /* root, rt bitmap and summary inodes */
	cur_u32(&c, &rextsize);
	cur_u32(&c, &s->agblocks);
	cur_u32(&c, &s->agcount);
	cur_u32(&c, &rbmblocks);
	cur_u32(&c, &s->logblocks);
	cur_u16(&c, &version);
	cur_u16(&c, &sectsize);
	cur_skip(&c, 2 + 2 + 12); /* inodesize, inopblock, fname */
	cur_u8(&c, &blocklog);
	cur_u8(&c, &sectlog);
	cur_skip(&c, 2); /* inodelog, inopblog */
	cur_u8(&c, &s->agblklog);
	cur_skip(&c, 1); /* rextslog */
	cur_u8(&c, &inprogress);
	if (c.err)
		return bm_why(why, whycap, "superblock cut short");
	(void)rextsize, (void)rbmblocks;
	if (magic != XFS_SB_MAGIC)
		return bm_why(why, whycap, "superblock magic 0x%08x", magic);
	if ((version & 0xf) != 4 && (version & 0xf) != 5)
		return bm_why(why, whycap, "superblock version %u", version & 0xf);
	s->v5 = (version & 0xf) == 5;
	s->sectsize = sectsize;
	if (!is_pow2(s->bs) || s->bs < XFS_MIN_BLOCK || s->bs > XFS_MAX_BLOCK ||
	    s->bs != 1u << blocklog)
		return bm_why(why, whycap, "block size %u (log %u)", s->bs, blocklog);
	if (!is_pow2(sectsize) || sectsize < 512 || sectsize > XFS_MAX_SECT || sectsize > s->bs ||
	    sectsize != 1u << sectlog)
		return bm_why(why, whycap, "sector size %u (log %u)", sectsize, sectlog);
	if (inprogress)
		return bm_why(why, whycap, "mkfs did not finish (sb_inprogress)");
	if (s->agblocks < XFS_MIN_AG || s->agblocks > 0x7fffffffu || s->agblklog > 31 ||
	    (1ull << s->agblklog) < s->agblocks || (1ull << s->agblklog) >= 2ull * s->agblocks)
		return bm_why(why, whycap, "AG size %u blocks (log %u)", s->agblocks, s->agblklog);
	if (s->agcount == 0 || s->dblocks == 0 || s->dblocks > (uint64_t)s->agcount * s->agblocks ||
	    s->dblocks <= (uint64_t)(s->agcount - 1) * s->agblocks)
		return bm_why(why, whycap, "%u AGs of %u blocks do not make %" PRIu64 " blocks",
			      s->agcount, s->agblocks, s->dblocks);
	if (s->dblocks > v->size / s->bs)
		return bm_why(why, whycap, "%" PRIu64 " blocks of %u do not fit %" PRIu64 " bytes",
			      s->dblocks, s->bs, v->size);
	if (s->v5) {
		/* The CRC covers the whole superblock sector. */
		if (sectsize > XFS_MIN_BLOCK && (r = bm_vol_read(v, b, sectsize, 0)))
			return r;
		if (!crc_ok(b, sectsize, XFS_SB_CRC_OFF))
			return bm_why(why, whycap, "superblock CRC mismatch");
	}
	u = s->logstart;
	if (u == 0)
		return bm_why(why, whycap, "external log: whether it is clean cannot be read here");
	if ((u >> s->agblklog) >= s->agcount ||
	    (u & ((1ull << s->agblklog) - 1)) + s->logblocks > s->agblocks || s->logblocks == 0)
		return bm_why(why, whycap, "log at %" PRIu64 " (%u blocks) is outside the AGs", u,
			      s->logblocks);
	return 0;
}

/* The walk of one tree block at agbno, expected at level; recursion depth <= level. */
static int walk(const struct bm_vol *v, struct bm_disk *d, const struct xsb *s, struct agwalk *w,
		uint32_t agbno, int level, char *why, size_t whycap)
{
	uint8_t *b = w->buf[level];
	uint32_t hdr = s->v5 ? XFS_BT_HDR_V5 : XFS_BT_HDR_V4, magic, i;
	uint16_t blevel, n;
	uint64_t off, maxrecs;
	int r;

	if (agbno == 0 || agbno >= w->aglen)
		return bm_why(why, whycap, "AG %u: tree block %u outside the AG (%u blocks)",
			      w->agno, agbno, w->aglen);
	/* Every tree block at most once per AG, however the pointers are laid. */
	if (++w->visited > w->aglen)
		return bm_why(why, whycap,
			      "AG %u: free-space tree visits more blocks than the AG has", w->agno);
	off = w->agstart + (uint64_t)agbno * s->bs;
	r = bm_vol_read(v, b, s->bs, off);
	if (r)
		return r == -EINVAL
			   ? bm_why(why, whycap, "AG %u: block %u past the volume", w->agno, agbno)
			   : r;
	magic = be32(b);
	blevel = (uint16_t)(b[4] << 8 | b[5]);
	n = (uint16_t)(b[6] << 8 | b[7]);
	if (magic != (s->v5 ? XFS_AB3B_MAGIC : XFS_ABTB_MAGIC))
		return bm_why(why, whycap, "AG %u: block %u magic 0x%08x is not a free-space tree",
			      w->agno, agbno, magic);
	if (s->v5) {
		uint64_t blkno = (uint64_t)be32(b + 16) << 32 | be32(b + 20);

		if (!crc_ok(b, s->bs, XFS_BT_CRC_OFF))
			return bm_why(why, whycap, "AG %u: block %u CRC mismatch", w->agno, agbno);
		if (blkno != off / BBSIZE || be32(b + 48) != w->agno)
			return bm_why(why, whycap,
				      "AG %u: block %u says it is block %" PRIu64 " of AG %u",
				      w->agno, agbno, blkno, be32(b + 48));
	}
	if (blevel != level)
		return bm_why(why, whycap, "AG %u: block %u at level %u, expected %d", w->agno,
			      agbno, blevel, level);
	maxrecs = (s->bs - hdr) / (level ? 12 : 8);
	if (n > maxrecs || (n == 0 && level > 0))
		return bm_why(why, whycap, "AG %u: block %u holds %u records (at most %" PRIu64 ")",
			      w->agno, agbno, n, maxrecs);
	if (level == 0) {
		for (i = 0; i < n; i++) {
			uint32_t start = be32(b + hdr + 8 * i), len = be32(b + hdr + 8 * i + 4);

			if (len == 0 || start < w->end || start >= w->aglen ||
			    len > w->aglen - start)
				return bm_why(
				    why, whycap,
				    "AG %u: free extent %u+%u (after %u, AG of %u blocks)", w->agno,
				    start, len, w->end, w->aglen);
			bm_vol_mark(d, v, w->agstart + (uint64_t)w->end * s->bs,
				    (uint64_t)(start - w->end) * s->bs);
			w->end = start + len;
			w->free += len;
		}
		return 0;
	}
	for (i = 0; i < n; i++) {
		/* Pointers follow the keys of a full node, not of n records. */
		r = walk(v, d, s, w, be32(b + hdr + 8 * maxrecs + 4 * i), level - 1, why, whycap);
		if (r)
			return r;
	}
	return 0;
}

static int map_ag(const struct bm_vol *v, struct bm_disk *d, const struct xsb *s, struct agwalk *w,
		  uint8_t *agf, char *why, size_t whycap)
{
	uint32_t magic, len, root, levels, freeblks;
	uint64_t want;
	int r;

	w->agstart = (uint64_t)w->agno * s->agblocks * s->bs;
	r = bm_vol_read(v, agf, s->sectsize, w->agstart + s->sectsize);
	if (r)
		return r;
	magic = be32(agf);
	len = be32(agf + 12);
	root = be32(agf + 16);
	levels = be32(agf + 28);
	freeblks = be32(agf + 52);
	want =
	    w->agno == s->agcount - 1 ? s->dblocks - (uint64_t)w->agno * s->agblocks : s->agblocks;
	if (magic != XFS_AGF_MAGIC)
		return bm_why(why, whycap, "AG %u: AGF magic 0x%08x", w->agno, magic);
	if (s->v5 && !crc_ok(agf, s->sectsize, XFS_AGF_CRC_OFF))
		return bm_why(why, whycap, "AG %u: AGF CRC mismatch", w->agno);
	if (be32(agf + 8) != w->agno || len != want)
		return bm_why(why, whycap, "AG %u: AGF says AG %u of %u blocks, expected %" PRIu64,
			      w->agno, be32(agf + 8), len, want);
	if (levels < 1 || levels > XFS_MAX_LEVELS)
		return bm_why(why, whycap, "AG %u: free-space tree of %u levels", w->agno, levels);
	w->aglen = len;
	w->end = 0;
	w->free = 0;
	w->visited = 0;
	r = walk(v, d, s, w, root, (int)levels - 1, why, whycap);
	if (r)
		return r;
	if (w->free != freeblks)
		return bm_why(why, whycap, "AG %u: tree has %" PRIu64 " free, AGF %u", w->agno,
			      w->free, freeblks);
	bm_vol_mark(d, v, w->agstart + (uint64_t)w->end * s->bs,
		    (uint64_t)(w->aglen - w->end) * s->bs);
	return 0;
}

/* The cycle stamped at the start of log basic block i (a header keeps it at +4). */
static int log_cycle(const struct bm_vol *v, uint64_t log, uint64_t i, uint32_t *cyc, uint8_t *bb)
{
	int r = bm_vol_read(v, bb, BBSIZE, log + i * BBSIZE);

	if (r)
		return r;
	*cyc = be32(bb) == XLOG_MAGIC ? be32(bb + 4) : be32(bb);
	return 0;
}

/*
 * Whether the log ends with an unmount record, as the kernel decides at
 * mount: find the head (where the cycle number drops), then the last
 * record header before it; clean if that record is one unmount operation
 * that ends exactly at the head. 1 clean, 0 not, or -errno.
 */
static int log_clean(const struct bm_vol *v, const struct xsb *s)
{
	uint8_t bb[BBSIZE];
	uint64_t log, nbb, head, first = 0, last, k;
	uint32_t c0, cl, c;
	int r;

	log = (((s->logstart >> s->agblklog) * s->agblocks) +
	       (s->logstart & ((1ull << s->agblklog) - 1))) *
	      s->bs;
	nbb = (uint64_t)s->logblocks * s->bs / BBSIZE;
	if ((r = log_cycle(v, log, 0, &c0, bb)) || (r = log_cycle(v, log, nbb - 1, &cl, bb)))
		return r;
	if (c0 == 0)
		return cl == 0; /* a zeroed log (xfs_repair -L): nothing to replay */
	if (c0 == cl) {
		head = 0; /* all one cycle: the head wrapped to the start */
	} else {
		if (cl + 1 != c0 && cl != 0)
			return 0;
		last = nbb - 1;
		while (last - first > 1) {
			uint64_t mid = first + (last - first) / 2;

			if ((r = log_cycle(v, log, mid, &c, bb)))
				return r;
			if (c == c0)
				first = mid;
			else
				last = mid;
		}
		head = last;
	}
	for (k = 1; k <= XLOG_SCAN_BACK_BBS && k <= nbb; k++) {
		uint64_t blk = (head + nbb - k) % nbb, hblks = 1, after;
		uint32_t hsize, hlen;

		if ((r = bm_vol_read(v, bb, BBSIZE, log + blk * BBSIZE)))
			return r;
		if (be32(bb) != XLOG_MAGIC)
			continue;
		hlen = be32(bb + 12);
		hsize = be32(bb + 320);
		if ((be32(bb + 8) & 2) && hsize > XLOG_HEADER_CYCLE)
			hblks = (hsize + XLOG_HEADER_CYCLE - 1) / XLOG_HEADER_CYCLE;
		after = (blk + hblks + (hlen + BBSIZE - 1) / BBSIZE) % nbb;
		if (after != head % nbb || be32(bb + 40) != 1)
			return 0;
		if ((r = bm_vol_read(v, bb, BBSIZE, log + ((blk + hblks) % nbb) * BBSIZE)))
			return r;
		return (bb[9] & XLOG_UNMOUNT_TRANS) != 0;
	}
	return 0;
}

static int xfs_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	struct agwalk w;
	struct xsb s;
	uint8_t *mem = NULL;
	int r, i;

	memset(&w, 0, sizeof(w));
	r = read_sb(v, &s, why, whycap);
	if (r)
		return r;
	r = log_clean(v, &s);
	if (r < 0)
		return r == -EINVAL ? bm_why(why, whycap, "log outside the volume") : r;
	if (r == 0)
		return bm_why(why, whycap, "the log was not cleanly unmounted");
	/* One block per tree level and the AGF sector: at most 9 * 64 KiB + 32 KiB. */
	mem = malloc((size_t)s.bs * XFS_MAX_LEVELS + s.sectsize);
	if (!mem)
		return -ENOMEM;
	for (i = 0; i < XFS_MAX_LEVELS; i++)
		w.buf[i] = mem + (size_t)i * s.bs;
	for (w.agno = 0; w.agno < s.agcount; w.agno++) {
		r = map_ag(v, d, &s, &w, mem + (size_t)s.bs * XFS_MAX_LEVELS, why, whycap);
		if (r == -EINVAL)
			r = bm_why(why, whycap, "AG %u lies past the volume", w.agno);
		if (r)
			break;
	}
	free(mem);
	if (r == 0 && why && whycap)
		why[0] = 0;
	return r;
}

static int xfs_mark_mounted(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	char fw[BM_WHY_MAX] = "";
	int r = bm_fsmap_mark(d, v, fw, sizeof(fw));

	if (r == 0) {
		snprintf(why, whycap, "mounted: GETFSMAP");
		return 0;
	}
	/* The trees on disk lag the log: without the kernel's map, all of it. */
	return bm_why(why, whycap, "mounted, and GETFSMAP on %s failed: %s", v->mountpoint,
		      r == -EUCLEAN ? fw : strerror(-r));
}

static const char *const xfs_types[] = {"xfs", NULL};

const struct bm_reader bm_reader_xfs = {
    .name = "xfs",
    .types = xfs_types,
    .method = BM_USED,
    .mark = xfs_mark,
    .mark_mounted = xfs_mark_mounted,
};
