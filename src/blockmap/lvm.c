/*
 * lvm.c - LVM2 physical volumes as a volume reader: finds the label and
 * PV header, reads the current VG text from a metadata area (CRC-checked,
 * bounded, the circular buffer's wrap handled), lets lvm_text.c model the
 * VG, then marks the PV's own structures and only the extents that
 * belong to an LV: an ordinary LV through its filesystem's reader (a
 * child volume whose segments map the LV onto the disk), thin pools,
 * snapshots, RAID and the like whole, with the reason in the plan. A
 * mounted LV is found through its device-mapper device. It never writes
 * and never activates anything.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/lvm.h"
#include "blockmap/probe.h"
#include "blockmap/reader.h"
#include "common/common.h"

static const char LABEL_ID[8] = {'L', 'A', 'B', 'E', 'L', 'O', 'N', 'E'};
static const char LABEL_TYPE[8] = {'L', 'V', 'M', '2', ' ', '0', '0', '1'};
static const char MDA_MAGIC[16] = " LVM2 x[5A%r0N*>";
#define MDA_VERSION	 1u
#define RAW_LOCN_IGNORED 1u

/* One zero-terminated list of disk_locn {offset, size} (at most LVM_MAX_AREAS). */
static int read_locns(struct cur *c, struct lvm_locn *out, size_t *n, const char *what, char *why,
		      size_t whycap)
{
	for (*n = 0;;) {
		uint64_t off, size;

		cur_le64(c, &off);
		cur_le64(c, &size);
		if (c->err)
			return bm_why(why, whycap, "the PV header's %s list runs past its sector",
				    what);
		if (off == 0 && size == 0)
			return 0;
		if (*n == LVM_MAX_AREAS)
			return bm_why(why, whycap, "the PV header lists more than %u %s",
				    LVM_MAX_AREAS, what);
		out[*n].off = off;
		out[*n].size = size;
		(*n)++;
	}
}

int bm_lvm_label(const uint8_t *buf, size_t len, struct lvm_label *l, char *why, size_t whycap)
{
	uint32_t s;

	memset(l, 0, sizeof(*l));
	for (s = 0; s < 4 && (size_t)(s + 1) * LVM_SECTOR <= len; s++) {
		const uint8_t *sec = buf + (size_t)s * LVM_SECTOR;
		uint64_t sector_xl;
		uint32_t crc, hoff, ver = 0, flags;
		struct cur c;
		size_t i;

		if (memcmp(sec, LABEL_ID, sizeof(LABEL_ID)) != 0)
			continue;
		cur_init(&c, sec, LVM_SECTOR);
		cur_skip(&c, 8);
		cur_le64(&c, &sector_xl);
		cur_le32(&c, &crc);
		cur_le32(&c, &hoff);
		if (sector_xl != s)
			return bm_why(why, whycap,
				    "the label in sector %u says it is in sector %" PRIu64, s,
				    sector_xl);
		if (bm_lvm_crc(LVM_CRC_INIT, sec + 20, LVM_SECTOR - 20) != crc)
			return bm_why(why, whycap, "the label in sector %u has a bad CRC", s);
		if (memcmp(sec + 24, LABEL_TYPE, sizeof(LABEL_TYPE)) != 0)
			return bm_why(why, whycap, "the label in sector %u is not \"LVM2 001\"", s);
		if (hoff < 32 || hoff > LVM_SECTOR - LVM_UUID_LEN - 8)
			return bm_why(why, whycap,
				    "the PV header offset %u is outside the label sector", hoff);
		cur_seek(&c, hoff);
		for (i = 0; i < LVM_UUID_LEN; i++) {
			uint8_t ch;

			cur_u8(&c, &ch);
			if (!bm_lvm_uuid_char((char)ch))
				return bm_why(why, whycap, "the PV uuid holds byte 0x%02x", ch);
			l->pv_uuid[i] = (char)ch;
		}
		cur_le64(&c, &l->dev_size);
		if (read_locns(&c, l->data, &l->ndata, "data areas", why, whycap) ||
		    read_locns(&c, l->mda, &l->nmda, "metadata areas", why, whycap))
			return -EUCLEAN;
		/* The extension (LVM 2.02.110+): bootloader areas, also sent. */
		if (cur_left(&c) >= 8) {
			cur_le32(&c, &ver);
			cur_le32(&c, &flags);
			if (ver >= 1 &&
			    read_locns(&c, l->boot, &l->nboot, "bootloader areas", why, whycap))
				return -EUCLEAN;
		}
		if (l->ndata == 0)
			return bm_why(why, whycap, "the PV header lists no data area");
		l->sector = s;
		return 1;
	}
	return 0;
}

int bm_lvm_mda(const uint8_t *hdr, uint64_t mda_off, uint64_t mda_size, struct lvm_rlocn *r,
	       char *why, size_t whycap)
{
	uint64_t start, size;
	uint32_t crc, ver, flags;
	struct cur c;

	memset(r, 0, sizeof(*r));
	cur_init(&c, hdr, LVM_MDA_HDR);
	cur_le32(&c, &crc);
	if (memcmp(hdr + 4, MDA_MAGIC, sizeof(MDA_MAGIC)) != 0)
		return bm_why(why, whycap, "the metadata area at %" PRIu64 " has no LVM2 magic",
			    mda_off);
	if (bm_lvm_crc(LVM_CRC_INIT, hdr + 4, LVM_MDA_HDR - 4) != crc)
		return bm_why(why, whycap, "the metadata area header at %" PRIu64 " has a bad CRC",
			    mda_off);
	cur_skip(&c, sizeof(MDA_MAGIC));
	cur_le32(&c, &ver);
	cur_le64(&c, &start);
	cur_le64(&c, &size);
	cur_le64(&c, &r->off);
	cur_le64(&c, &r->size);
	cur_le32(&c, &r->crc);
	cur_le32(&c, &flags);
	if (c.err)
		return bm_why(why, whycap, "the metadata area header is short");
	if (ver != MDA_VERSION || start != mda_off || size != mda_size)
		return bm_why(why, whycap,
			    "the metadata area header says version %u, %" PRIu64 "+%" PRIu64
			    "; the PV header says %" PRIu64 "+%" PRIu64,
			    ver, start, size, mda_off, mda_size);
	r->ignored = (flags & RAW_LOCN_IGNORED) != 0;
	if (r->off == 0 && r->size == 0)
		return 0; /* an orphan PV: no VG yet */
	if (mda_size <= LVM_MDA_HDR || r->off < LVM_MDA_HDR || r->off >= mda_size || r->size == 0 ||
	    r->size > mda_size - LVM_MDA_HDR || r->size > LVM_META_MAX)
		return bm_why(why, whycap,
			    "the metadata text at %" PRIu64 "+%" PRIu64 " does not fit its %" PRIu64
			    "-byte area (limit %u)",
			    r->off, r->size, mda_size, LVM_META_MAX);
	return 0;
}

/* ---- device-mapper: is the LV active, and where is it mounted ---------- */

static int read_line(const char *path, char *buf, size_t cap)
{
	int n = file_read_small(path, buf, cap);

	return n < 0 ? n : 0;
}

/* The mount point of major:minor in root's mountinfo ("" if none). */
static void mount_of(const char *root, const char *majmin, char *mnt, size_t cap)
{
	char path[512], line[1536];
	FILE *f;

	mnt[0] = 0;
	snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mm[32], rootdir[512], mp[512];

		/* "36 35 253:0 / /mnt rw,relatime shared:1 - xfs /dev/mapper/vg-root rw" */
		if (sscanf(line, "%*u %*u %31s %511s %511s", mm, rootdir, mp) != 3)
			continue;
		if (strcmp(mm, majmin) != 0)
			continue;
		/* A bind mount of a subdirectory is not the filesystem's root. */
		if (strcmp(rootdir, "/") != 0 && mnt[0])
			continue;
		snprintf(mnt, cap, "%s", mp);
		if (strcmp(rootdir, "/") == 0)
			break;
	}
	fclose(f);
	/* mountinfo escapes blanks as \040 and friends: undo the ones paths use. */
	{
		char *s = mnt, *d = mnt;

		while (*s) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
			    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
				*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
				s += 4;
			} else {
				*d++ = *s++;
			}
		}
		*d = 0;
	}
}

int bm_lvm_dm_lookup(const char *root, const char *vg_uuid, const char *lv_uuid, char *dmname,
		     size_t dmcap, char *mnt, size_t mntcap)
{
	char want[4 + 2 * LVM_UUID_LEN + 1], path[512], val[256];
	struct dirent *de;
	DIR *dir;
	int found = 0;

	dmname[0] = 0;
	mnt[0] = 0;
	snprintf(want, sizeof(want), "LVM-%s%s", vg_uuid, lv_uuid);
	snprintf(path, sizeof(path), "%s/sys/block", root);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "dm-", 3) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/sys/block/%s/dm/uuid", root, de->d_name);
		/* Exactly the LV: "-cow", "-real", "-pool" suffixes are layers under it. */
		if (read_line(path, val, sizeof(val)) || strcmp(val, want) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/sys/block/%s/dev", root, de->d_name);
		if (read_line(path, val, sizeof(val)))
			continue;
		snprintf(dmname, dmcap, "%s", de->d_name);
		mount_of(root, val, mnt, mntcap);
		found = 1;
		break;
	}
	closedir(dir);
	return found;
}

/* ---- the reader --------------------------------------------------------- */

/*
 * The current VG text of one metadata area into a buffer the caller
 * frees: CRC-checked, the circular buffer's wrap followed (the text
 * continues right after the area's header). 1 with *text, 0 when the PV
 * is in no VG or this copy is ignored, -EUCLEAN with why, or -errno.
 */
static int read_text(const struct bm_vol *v, const struct lvm_locn *mda, char **text, size_t *len,
		     char *why, size_t whycap)
{
	uint8_t hdr[LVM_MDA_HDR];
	struct lvm_rlocn rl;
	uint64_t first;
	char *t;
	int r;

	*text = NULL;
	r = bm_vol_read(v, hdr, sizeof(hdr), mda->off);
	if (r)
		return r == -EINVAL ? bm_why(why, whycap, "metadata area outside the PV") : r;
	r = bm_lvm_mda(hdr, mda->off, mda->size, &rl, why, whycap);
	if (r)
		return r;
	if (rl.size == 0 || rl.ignored)
		return 0;
	t = malloc((size_t)rl.size);
	if (!t)
		return -ENOMEM;
	first = mda->size - rl.off < rl.size ? mda->size - rl.off : rl.size;
	r = bm_vol_read(v, t, (size_t)first, mda->off + rl.off);
	if (!r && first < rl.size)
		r = bm_vol_read(v, t + first, (size_t)(rl.size - first), mda->off + LVM_MDA_HDR);
	if (!r && bm_lvm_crc(LVM_CRC_INIT, t, (size_t)rl.size) != rl.crc)
		r = bm_why(why, whycap, "the metadata text at %" PRIu64 "+%" PRIu64 " has a bad CRC",
			 mda->off + rl.off, rl.size);
	if (r) {
		free(t);
		return r;
	}
	*text = t;
	*len = (size_t)rl.size;
	return 1;
}

/*
 * The newest VG text among the metadata areas (highest seqno), parsed.
 * 1 with vg filled, 0 when the PV belongs to no VG, -EUCLEAN, -errno.
 */
static int read_vg(const struct bm_vol *v, const struct lvm_label *l, struct lvm_vg *vg,
		   struct lvm_vg *tmp, char *why, size_t whycap)
{
	char bad[BM_WHY_MAX] = "";
	int found = 0, orphan = 0;
	size_t i;

	for (i = 0; i < l->nmda; i++) {
		char *text = NULL;
		size_t len = 0;
		int r;

		r = read_text(v, &l->mda[i], &text, &len, bad, sizeof(bad));
		if (r == 0)
			orphan = 1;
		if (r == -EUCLEAN || r == 0)
			continue;
		if (r < 0)
			return r;
		r = bm_lvm_parse(text, len, l->pv_uuid, v->size, tmp, bad, sizeof(bad));
		free(text);
		if (r == -EUCLEAN)
			continue;
		if (r)
			return r;
		if (!found || tmp->seqno > vg->seqno)
			memcpy(vg, tmp, sizeof(*vg));
		found = 1;
	}
	if (found)
		return 1;
	if (bad[0])
		return bm_why(why, whycap, "%s", bad);
	if (orphan)
		return 0;
	return bm_why(why, whycap, "no metadata area on this PV: its VG is described elsewhere");
}

/*
 * The disk ranges of [pv_off, pv_off + len) of the PV, appended to seg
 * as the volume's next bytes at *at. -E2BIG past BM_MAX_SEGS.
 */
static int add_segs(const struct bm_vol *pv, uint64_t pv_off, uint64_t len, struct bm_seg *seg,
		    size_t *n, uint64_t *at)
{
	size_t i;

	for (i = 0; i < pv->nseg && len; i++) {
		const struct bm_seg *s = &pv->seg[i];
		uint64_t in, k;

		if (pv_off < s->vol_off || pv_off - s->vol_off >= s->len)
			continue;
		in = pv_off - s->vol_off;
		k = s->len - in < len ? s->len - in : len;
		if (*n && seg[*n - 1].disk_off + seg[*n - 1].len == s->disk_off + in) {
			seg[*n - 1].len += k; /* consecutive extents: one piece */
		} else {
			if (*n == BM_MAX_SEGS)
				return -E2BIG;
			seg[*n].vol_off = *at;
			seg[*n].disk_off = s->disk_off + in;
			seg[*n].len = k;
			(*n)++;
		}
		*at += k;
		pv_off += k;
		len -= k;
		i = (size_t)-1; /* the next piece may lie in any segment */
	}
	return len ? -EINVAL : 0;
}

/* The bm_lv of the plan for LV i (its owner's for a hidden one). */
static struct bm_lv *plan_entry(struct bm_disk *d, const struct bm_vol *pv, const struct lvm_vg *vg,
				size_t i, size_t first)
{
	const struct lvm_lv *lv = &vg->lvs[i];
	const char *name = lv->owner >= 0 ? vg->lvs[lv->owner].name : lv->name;
	struct bm_lv *e;
	size_t k, p;

	for (k = first; k < d->nlvs; k++)
		if (!strcmp(d->lvs[k].name, name))
			return &d->lvs[k];
	if (d->nlvs == BM_MAX_LVS)
		return NULL;
	e = &d->lvs[d->nlvs++];
	memset(e, 0, sizeof(*e));
	snprintf(e->vg, sizeof(e->vg), "%.63s", vg->name);
	snprintf(e->name, sizeof(e->name), "%.63s", name);
	for (p = 0; p < d->nparts; p++)
		if (pv->nseg && d->parts[p].start == pv->seg[0].disk_off)
			e->part = d->parts[p].number;
	return e;
}

/*
 * Whether LV i (with the hidden LVs it owns) belongs in this PV's plan:
 * it has extents here, or none anywhere (a thin LV).
 */
static int on_this_pv(const struct lvm_vg *vg, size_t i)
{
	uint64_t here = vg->lvs[i].here, away = vg->lvs[i].elsewhere;
	size_t k;

	for (k = 0; k < vg->nlvs; k++)
		if (vg->lvs[k].owner == (int)i) {
			here += vg->lvs[k].here;
			away += vg->lvs[k].elsewhere;
		}
	return here > 0 || away == 0;
}

/* An LV with nothing to map through: its extents here, whole. */
static int lv_whole(struct bm_disk *d, const struct bm_vol *pv, const struct lvm_vg *vg, size_t i,
		    const char *why, struct bm_lv *e, struct bm_seg *seg)
{
	const struct lvm_lv *lv = &vg->lvs[i];
	struct bm_vol lvv = {0};
	size_t n = 0, k;
	uint64_t at = 0;

	for (k = 0; k < lv->npieces; k++) {
		const struct lvm_piece *p = &vg->pieces[lv->piece0 + k];
		int r = add_segs(pv, vg->pe_start + p->pe * vg->extent_size,
				 p->count * vg->extent_size, seg, &n, &at);

		if (r == -E2BIG) {
			/* Too many pieces to count separately: mark them, count later. */
			bm_vol_mark(d, pv, vg->pe_start + p->pe * vg->extent_size,
				    p->count * vg->extent_size);
			continue;
		}
		if (r)
			return r;
	}
	lvv.fd = pv->fd;
	lvv.seg = seg;
	lvv.nseg = n;
	lvv.size = at;
	for (k = 0; k < n; k++)
		bm_mark(d, seg[k].disk_off, seg[k].len);
	if (e) {
		e->method = BM_WHOLE;
		e->size += lv->here * vg->extent_size; /* what it holds here */
		e->used_bytes += bm_vol_count(d, &lvv);
		if (!e->note[0] || lv->owner < 0)
			snprintf(e->note, sizeof(e->note), "%s", why);
	}
	return 0;
}

/* An ordinary LV: a child volume mapped by its filesystem's reader. */
static int lv_map(struct bm_disk *d, const struct bm_vol *pv, const struct lvm_vg *vg, size_t i,
		  struct bm_lv *e, struct bm_seg *seg)
{
	const struct lvm_lv *lv = &vg->lvs[i];
	char dm[32], mnt[BM_PATH_MAX], err[BM_WHY_MAX], note[BM_NOTE_MAX], fstype[16];
	struct bm_vol lvv = {0};
	enum bm_method m;
	size_t n = 0, k;
	uint64_t at = 0;
	int r;

	for (k = 0; k < lv->npieces; k++) {
		const struct lvm_piece *p = &vg->pieces[lv->piece0 + k];

		r = add_segs(pv, vg->pe_start + p->pe * vg->extent_size, p->count * vg->extent_size,
			     seg, &n, &at);
		if (r == -E2BIG)
			return lv_whole(d, pv, vg, i, "in too many pieces to follow", e, seg);
		if (r)
			return r;
	}
	lvv.fd = pv->fd;
	lvv.size = at;
	lvv.seg = seg;
	lvv.nseg = n;
	lvv.depth = pv->depth + 1;
	snprintf(lvv.what, sizeof(lvv.what), "LV %.28s/%.28s", vg->name, lv->name);
	/* Active and mounted: the filesystem is asked through its mount point. */
	if (bm_lvm_dm_lookup("", vg->uuid, lv->uuid, dm, sizeof(dm), mnt, sizeof(mnt)) && mnt[0])
		lvv.mountpoint = mnt;
	r = bm_probe_vol(&lvv, fstype, sizeof(fstype));
	if (r)
		return r;
	r = bm_map_vol(d, &lvv, fstype, &m, note, sizeof(note), err, sizeof(err));
	if (r) {
		log_error("%s", err);
		return r;
	}
	if (e) {
		snprintf(e->fstype, sizeof(e->fstype), "%s", fstype);
		e->method = m;
		e->size = at;
		e->used_bytes = bm_vol_count(d, &lvv);
		char all[BM_PATH_MAX + BM_NOTE_MAX + 16];

		if (lvv.mountpoint)
			snprintf(all, sizeof(all), "mounted at %s%s%s", mnt, note[0] ? "; " : "",
				 note);
		else
			snprintf(all, sizeof(all), "%s", note);
		snprintf(e->note, sizeof(e->note), "%.*s", (int)sizeof(e->note) - 1, all);
	}
	return 0;
}

static int lvm_mark(struct bm_disk *d, const struct bm_vol *v, char *why, size_t whycap)
{
	uint8_t head[LVM_LABEL_SCAN];
	struct lvm_vg *vg = NULL, *tmp = NULL;
	struct bm_seg *seg = NULL;
	struct lvm_label l;
	size_t i, first = d->nlvs, mapped = 0, whole = 0;
	int r;

	if (v->size < LVM_LABEL_SCAN)
		return bm_why(why, whycap, "the PV has only %" PRIu64 " bytes", v->size);
	r = bm_vol_read(v, head, sizeof(head), 0);
	if (r)
		return r;
	r = bm_lvm_label(head, sizeof(head), &l, why, whycap);
	if (r <= 0)
		return r ? r : bm_why(why, whycap, "no LVM2 label in sectors 0-3");
	/* The label, the PV header and every metadata and bootloader area. */
	bm_vol_mark(d, v, 0, LVM_LABEL_SCAN);
	for (i = 0; i < l.nmda; i++) {
		if (l.mda[i].off >= v->size || l.mda[i].size > v->size - l.mda[i].off)
			return bm_why(why, whycap,
				      "metadata area %" PRIu64 "+%" PRIu64
				      " runs past the PV's %" PRIu64 " bytes",
				      l.mda[i].off, l.mda[i].size, v->size);
		bm_vol_mark(d, v, l.mda[i].off, l.mda[i].size);
	}
	for (i = 0; i < l.nboot; i++)
		bm_vol_mark(d, v, l.boot[i].off, l.boot[i].size);

	vg = calloc(1, sizeof(*vg));
	tmp = calloc(1, sizeof(*tmp));
	seg = calloc(BM_MAX_SEGS, sizeof(*seg));
	if (!vg || !tmp || !seg) {
		r = -ENOMEM;
		goto out;
	}
	r = read_vg(v, &l, vg, tmp, why, whycap);
	if (r <= 0) {
		if (r == 0)
			snprintf(why, whycap, "PV in no VG: its header only");
		goto out;
	}
	/* Visible LVs first, so a hidden one finds its owner's entry. */
	for (i = 0; i < vg->nlvs; i++) {
		const struct lvm_lv *lv = &vg->lvs[i];
		struct bm_lv *e;

		if (lv->owner >= 0 || (!lv->here && !lv->visible) || !on_this_pv(vg, i))
			continue;
		e = plan_entry(d, v, vg, i, first);
		if (lv->why[0]) {
			r = lv_whole(d, v, vg, i, lv->why, e, seg);
			whole++;
		} else {
			r = lv_map(d, v, vg, i, e, seg);
			mapped++;
		}
		if (r)
			goto out;
	}
	for (i = 0; i < vg->nlvs; i++) {
		const struct lvm_lv *lv = &vg->lvs[i];

		if (lv->owner < 0 || !lv->here)
			continue;
		r = lv_whole(d, v, vg, i, lv->why, plan_entry(d, v, vg, i, first), seg);
		if (r)
			goto out;
	}
	/* A thin LV holds nothing here: the plan shows its own size. */
	for (i = first; i < d->nlvs; i++) {
		size_t k;

		for (k = 0; !d->lvs[i].size && k < vg->nlvs; k++)
			if (!strcmp(vg->lvs[k].name, d->lvs[i].name))
				d->lvs[i].size = vg->lvs[k].extents * vg->extent_size;
	}
	snprintf(why, whycap, "VG %.64s: %zu LVs by their filesystems, %zu whole", vg->name, mapped,
		 whole);
out:
	free(vg);
	free(tmp);
	free(seg);
	return r;
}

/*
 * The VG of the PV at [off, off + size) of fd, for a caller that
 * activates its LVs (ferry-init's adapt phase): the same label, metadata
 * area and text checks as the volume reader, nothing marked.
 */
int bm_lvm_read_pv(int fd, uint64_t off, uint64_t size, struct lvm_vg *vg, char *why,
		   size_t whycap)
{
	uint8_t head[LVM_LABEL_SCAN];
	struct lvm_vg *tmp;
	struct lvm_label l;
	struct bm_seg seg;
	struct bm_vol v;
	size_t i;
	int r;

	memset(vg, 0, sizeof(*vg));
	if (size < LVM_LABEL_SCAN)
		return bm_why(why, whycap, "the PV has only %" PRIu64 " bytes", size);
	bm_vol_linear(&v, &seg, fd, off, size, NULL, "PV");
	r = bm_vol_read(&v, head, sizeof(head), 0);
	if (r)
		return r;
	r = bm_lvm_label(head, sizeof(head), &l, why, whycap);
	if (r <= 0)
		return r ? r : bm_why(why, whycap, "no LVM2 label in sectors 0-3");
	for (i = 0; i < l.nmda; i++)
		if (l.mda[i].off >= size || l.mda[i].size > size - l.mda[i].off)
			return bm_why(why, whycap,
				      "metadata area %" PRIu64 "+%" PRIu64
				      " runs past the PV's %" PRIu64 " bytes",
				      l.mda[i].off, l.mda[i].size, size);
	tmp = calloc(1, sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	r = read_vg(&v, &l, vg, tmp, why, whycap);
	free(tmp);
	return r;
}

static const char *const lvm_types[] = {"LVM2_member", NULL};

const struct bm_reader bm_reader_lvm = {
    .name = "lvm",
    .types = lvm_types,
    .method = BM_VOLUME,
    .mark = lvm_mark,
};
