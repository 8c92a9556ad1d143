/*
 * lvm_grow.c - growing an LVM2 PV into a partition that was grown (the
 * destination's --grow): this PV's dev_size and pe_count in the VG text
 * and the VG's seqno go up, nothing else of the text changes, and the
 * new text is committed as LVM commits it (written after the current
 * one in the circular buffer, then the metadata area header pointing at
 * it, then the PV header's device size). LVs are untouched: the new
 * extents are free. Only the simple, common case is done: one PV in the
 * VG and one metadata area, at the PV's start; anything else is refused
 * before a byte is written, with the reason. I/O goes through the
 * caller's callbacks; this file never opens a disk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/blockmap.h"
#include "blockmap/lvm.h"

static int refuse(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (err && errcap) {
		va_start(ap, fmt);
		vsnprintf(err, errcap, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* text with the three numbers replaced, into out (cap bytes). Returns its length or 0. */
static size_t splice(const char *text, size_t len, const struct lvm_spans *sp, uint64_t seqno,
		     uint64_t dev_size, uint64_t pe_count, char *out, size_t cap)
{
	struct {
		const struct lvm_span *s;
		uint64_t v;
	} e[3] = {{&sp->seqno, seqno}, {&sp->dev_size, dev_size}, {&sp->pe_count, pe_count}}, t;
	size_t at = 0, o = 0, i, j;

	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (e[j].s->off < e[i].s->off) {
				t = e[i];
				e[i] = e[j];
				e[j] = t;
			}
	for (i = 0; i < 3; i++) {
		int n;

		if (e[i].s->off < at || e[i].s->off - at > cap - o)
			return 0;
		memcpy(out + o, text + at, e[i].s->off - at);
		o += e[i].s->off - at;
		n = snprintf(out + o, cap - o, "%" PRIu64, e[i].v);
		if (n < 0 || (size_t)n >= cap - o)
			return 0;
		o += (size_t)n;
		at = e[i].s->off + e[i].s->len;
	}
	if (len - at > cap - o)
		return 0;
	memcpy(out + o, text + at, len - at);
	return o + (len - at);
}

int bm_lvm_grow(const struct bm_pv_io *io, uint64_t new_bytes, struct bm_pv_grown *g, char *err,
		size_t errcap)
{
	uint8_t head[LVM_LABEL_SCAN], hdr[LVM_MDA_HDR], *sec;
	struct lvm_vg *vg = NULL;
	struct lvm_label l;
	struct lvm_rlocn rl;
	struct lvm_spans sp;
	struct lvm_locn mda;
	char *text = NULL, *nt = NULL;
	uint64_t first, new_pe, old_end, noff;
	size_t len, nlen, cap;
	int r;

	memset(g, 0, sizeof(*g));
	r = io->read(io->ctx, head, sizeof(head), 0);
	if (r)
		return r;
	r = bm_lvm_label(head, sizeof(head), &l, err, errcap);
	if (r <= 0)
		return r ? r : -ENOENT;
	if (l.nmda != 1)
		return refuse(err, errcap, "%zu metadata areas on the PV (grow it with pvresize)",
			      l.nmda);
	mda = l.mda[0];
	if (l.ndata != 1 || l.data[0].size != 0 || mda.off + mda.size > l.data[0].off)
		return refuse(err, errcap,
			      "the PV's data or metadata area is not laid out as "
			      "pvcreate makes it (grow it with pvresize)");
	r = io->read(io->ctx, hdr, sizeof(hdr), mda.off);
	if (!r)
		r = bm_lvm_mda(hdr, mda.off, mda.size, &rl, err, errcap);
	if (r)
		return r;
	if (rl.size == 0 || rl.ignored)
		return refuse(err, errcap, "the PV holds no current VG metadata");
	text = malloc((size_t)rl.size);
	vg = calloc(1, sizeof(*vg));
	nt = malloc((size_t)rl.size + 64);
	if (!text || !vg || !nt) {
		r = -ENOMEM;
		goto out;
	}
	first = mda.size - rl.off < rl.size ? mda.size - rl.off : rl.size;
	len = (size_t)rl.size;
	r = io->read(io->ctx, text, (size_t)first, mda.off + rl.off);
	if (!r && first < rl.size)
		r = io->read(io->ctx, text + first, len - (size_t)first, mda.off + LVM_MDA_HDR);
	if (r)
		goto out;
	if (bm_lvm_crc(LVM_CRC_INIT, text, len) != rl.crc) {
		r = refuse(err, errcap, "the VG text has a bad CRC");
		goto out;
	}
	r = bm_lvm_parse(text, len, l.pv_uuid, new_bytes, vg, err, errcap);
	if (!r)
		r = bm_lvm_locate(text, len, l.pv_uuid, &sp, err, errcap);
	if (r)
		goto out;
	snprintf(g->vg, sizeof(g->vg), "%.63s", vg->name);
	g->extent_size = vg->extent_size;
	g->old_extents = g->new_extents = vg->pe_count;
	if (sp.npvs != 1) {
		r = refuse(err, errcap, "VG %s has %zu PVs (grow this one with pvresize)", vg->name,
			   sp.npvs);
		goto out;
	}
	new_pe = (new_bytes - vg->pe_start) / vg->extent_size;
	if (new_pe <= vg->pe_count) {
		r = 0; /* the PV already holds every whole extent of the partition */
		goto out;
	}
	/* The same text but three numbers, NUL-terminated as LVM writes it. */
	nlen = splice(text, strnlen(text, len), &sp, sp.seqno.value + 1, new_bytes / LVM_SECTOR,
		      new_pe, nt, (size_t)rl.size + 63);
	if (nlen == 0) {
		r = refuse(err, errcap, "the VG text could not be edited");
		goto out;
	}
	nt[nlen++] = 0;
	/* After the current text (sector-aligned), wrapping; it must not overlap it. */
	cap = (size_t)(mda.size - LVM_MDA_HDR);
	old_end = (rl.size + LVM_SECTOR - 1) / LVM_SECTOR * LVM_SECTOR;
	if (old_end + nlen > cap) {
		r = refuse(err, errcap,
			   "the metadata area (%" PRIu64 " bytes) has no room for the "
			   "new text beside the old",
			   mda.size);
		goto out;
	}
	noff = rl.off + old_end;
	if (noff >= mda.size)
		noff = LVM_MDA_HDR + (noff - mda.size);
	first = mda.size - noff < nlen ? mda.size - noff : nlen;
	r = io->write(io->ctx, nt, (size_t)first, mda.off + noff);
	if (!r && first < nlen)
		r = io->write(io->ctx, nt + first, nlen - (size_t)first, mda.off + LVM_MDA_HDR);
	if (!r)
		r = io->sync(io->ctx);
	if (r)
		goto out;
	/* Commit: the header's first raw_locn now points at the new text. */
	put64(hdr + 40, noff);
	put64(hdr + 48, nlen);
	put32(hdr + 56, bm_lvm_crc(LVM_CRC_INIT, nt, nlen));
	put32(hdr + 60, 0);
	put32(hdr, bm_lvm_crc(LVM_CRC_INIT, hdr + 4, LVM_MDA_HDR - 4));
	r = io->write(io->ctx, hdr, sizeof(hdr), mda.off);
	if (!r)
		r = io->sync(io->ctx);
	if (r)
		goto out;
	/* The PV header's device size, and the label's CRC over it. */
	sec = head + (size_t)l.sector * LVM_SECTOR;
	put64(sec + get32(sec + 20) + LVM_UUID_LEN, new_bytes);
	put32(sec + 16, bm_lvm_crc(LVM_CRC_INIT, sec + 20, LVM_SECTOR - 20));
	r = io->write(io->ctx, sec, LVM_SECTOR, (uint64_t)l.sector * LVM_SECTOR);
	if (!r)
		r = io->sync(io->ctx);
	if (!r) {
		g->new_extents = new_pe;
		r = 1;
	}
out:
	free(text);
	free(nt);
	free(vg);
	return r;
}
