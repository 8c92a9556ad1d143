/*
 * fuzz_lvm_text.c - bm_lvm_parse on arbitrary VG text, as seen from the
 * PV whose uuid the seeds use, on a 64 GiB device. Besides the
 * sanitizers it checks what the model promises when the text is
 * accepted: this PV's extents fit the device, every run of an LV lies
 * inside them, runs of different LVs never overlap, and a hidden LV's
 * owner is a visible LV.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/lvm.h"

#define PV_UUID	 "DLfFjVIQDB3HZm1xzj6p51AulVZUAJTx"
#define PV_BYTES (64ull << 30)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lvm_vg vg;
	char why[256];
	size_t i, j;

	if (bm_lvm_parse((const char *)data, size, PV_UUID, PV_BYTES, &vg, why, sizeof(why)))
		return 0;
	if (vg.extent_size == 0 || vg.pe_start > PV_BYTES ||
	    vg.pe_count > (PV_BYTES - vg.pe_start) / vg.extent_size)
		abort();
	for (i = 0; i < vg.npieces; i++)
		if (vg.pieces[i].count == 0 || vg.pieces[i].pe > vg.pe_count ||
		    vg.pieces[i].count > vg.pe_count - vg.pieces[i].pe)
			abort();
	for (i = 0; i < vg.npieces; i++)
		for (j = i + 1; j < vg.npieces && j < i + 64; j++)
			if (vg.pieces[i].pe < vg.pieces[j].pe + vg.pieces[j].count &&
			    vg.pieces[j].pe < vg.pieces[i].pe + vg.pieces[i].count)
				abort();
	for (i = 0; i < vg.nlvs; i++) {
		const struct lvm_lv *lv = &vg.lvs[i];

		if (lv->piece0 + (size_t)lv->npieces > vg.npieces)
			abort();
		if (lv->owner >= 0 && ((size_t)lv->owner >= vg.nlvs || !vg.lvs[lv->owner].visible))
			abort();
		if (!lv->why[0] && (!lv->visible || lv->npieces == 0 || lv->here != lv->extents))
			abort();
	}
	return 0;
}
