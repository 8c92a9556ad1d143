/*
 * lvm.h - private to src/blockmap (and its unit tests and fuzz target,
 * and ferry-init's adapt phase, which activates LVs from this model): the
 * LVM2 on-disk pieces as pure functions over bytes (the label and PV
 * header, the metadata area header, the VG text) and the model of one VG
 * as seen from one PV. lvm.c does the I/O and the marking; nothing here
 * reads a disk but bm_lvm_read_pv.
 */
#ifndef FERRY_BLOCKMAP_LVM_H
#define FERRY_BLOCKMAP_LVM_H

#include <stddef.h>
#include <stdint.h>

#define LVM_SECTOR     512u
#define LVM_LABEL_SCAN (4 * LVM_SECTOR) /* the label lives in one of sectors 0-3 */
#define LVM_MDA_HDR    512u		/* a metadata area starts with its header */
#define LVM_META_MAX   (1u << 20)	/* larger VG text is refused: sent whole */
#define LVM_MAX_AREAS  8		/* data or metadata areas listed in a PV header */
#define LVM_NAME_MAX   128		/* LVM's own limit is 127 characters */
#define LVM_UUID_LEN   32		/* without the dashes */
#define LVM_MAX_PVS    256
#define LVM_MAX_LVS    1024
#define LVM_MAX_PIECES 4096 /* extents runs of all LVs on this PV */
#define LVM_DEPTH_MAX  8    /* the VG text nests 5 deep */
#define LVM_NODES_MAX  (1u << 17)
#define LVM_REASON_MAX 96

struct lvm_locn {
	uint64_t off, size; /* bytes from the start of the PV; size 0: to its end */
};

/* What the label sector and the PV header say. */
struct lvm_label {
	uint32_t sector; /* 0..3 */
	char pv_uuid[LVM_UUID_LEN + 1];
	uint64_t dev_size; /* bytes, as recorded */
	struct lvm_locn data[LVM_MAX_AREAS], mda[LVM_MAX_AREAS], boot[LVM_MAX_AREAS];
	size_t ndata, nmda, nboot;
};

/* The first raw_locn of a metadata area: where the current VG text is. */
struct lvm_rlocn {
	uint64_t off, size; /* off relative to the area's start; size with the NUL */
	uint32_t crc;
	int ignored; /* "metadataignore": this copy is not kept up to date */
};

/* A run of extents of one LV on this PV. */
struct lvm_piece {
	uint64_t lv_ext; /* first LV extent of the run */
	uint64_t pe;	 /* first physical extent on this PV */
	uint64_t count;	 /* extents */
};

struct lvm_lv {
	char name[LVM_NAME_MAX];
	char uuid[LVM_UUID_LEN + 1];
	char type[24];		  /* the first segment's type ("striped", "thin-pool"...) */
	char why[LVM_REASON_MAX]; /* empty: mapped through its filesystem; else sent
				     whole, and why ("thin-pool", "hidden LV"...) */
	uint64_t extents;	  /* the LV's size in extents */
	uint64_t here;		  /* of which on this PV */
	uint64_t elsewhere;	  /* and on other PVs */
	uint32_t piece0, npieces; /* its runs on this PV, sorted by lv_ext */
	int visible;
	int owner; /* index of the visible LV this hidden one serves, or -1 */
};

struct lvm_vg {
	char name[LVM_NAME_MAX];
	char uuid[LVM_UUID_LEN + 1];
	uint64_t seqno;
	uint64_t extent_size;	     /* bytes */
	uint64_t pe_start, pe_count; /* this PV's: bytes, extents */
	char pv_name[LVM_NAME_MAX];  /* "pv0": this PV in the text */
	size_t npvs, nlvs, npieces;
	struct lvm_lv lvs[LVM_MAX_LVS];
	struct lvm_piece pieces[LVM_MAX_PIECES];
};

/* LVM's CRC-32 (reflected 0xedb88320, no inversion), seeded with LVM_CRC_INIT. */
#define LVM_CRC_INIT 0xf597a6cfu
uint32_t bm_lvm_crc(uint32_t crc, const void *p, size_t n);
/* The characters LVM draws its uuids from. */
int bm_lvm_uuid_char(char c);

/*
 * The label in buf (the PV's first LVM_LABEL_SCAN bytes, len of them),
 * its CRC and the PV header behind it. 1 and *l filled when a label is
 * found, 0 when there is none, -EUCLEAN with why for a damaged one.
 */
int bm_lvm_label(const uint8_t *buf, size_t len, struct lvm_label *l, char *why, size_t whycap);

/*
 * The metadata area header in hdr (LVM_MDA_HDR bytes) of the area
 * [mda_off, mda_off + mda_size): magic, version, CRC, start, size and the
 * first raw_locn. -EUCLEAN with why when any of them is wrong or the
 * text it points at does not fit the area or LVM_META_MAX.
 */
int bm_lvm_mda(const uint8_t *hdr, uint64_t mda_off, uint64_t mda_size, struct lvm_rlocn *r,
	       char *why, size_t whycap);

/*
 * Parses the VG text (len bytes, a trailing NUL allowed) and fills vg as
 * seen from the PV whose uuid (32 characters, no dashes) is pv_uuid and
 * whose device holds pv_bytes: the extent geometry of this PV, every LV,
 * which of them can be mapped through their filesystem and the runs of
 * extents each holds here. Every number is checked against the PV and
 * the segments of each LV against each other. 0, -EUCLEAN with why (the
 * PV is then sent whole), or -ENOMEM.
 */
int bm_lvm_parse(const char *text, size_t len, const char *pv_uuid, uint64_t pv_bytes,
		 struct lvm_vg *vg, char *why, size_t whycap);

/* A number in the VG text: its value and where its digits are. */
struct lvm_span {
	uint64_t value;
	size_t off, len;
};

struct lvm_spans {
	struct lvm_span seqno, dev_size, pe_count; /* the VG's; this PV's */
	size_t npvs;
	int found;
};

/*
 * Where the VG's seqno and this PV's dev_size and pe_count are in the
 * text, for an edit that changes nothing else (bm_lvm_grow). 0,
 * -EUCLEAN with why, or -ENOMEM.
 */
int bm_lvm_locate(const char *text, size_t len, const char *pv_uuid, struct lvm_spans *sp,
		  char *why, size_t whycap);

/*
 * The device-mapper device of an LV and where it is mounted: looks in
 * root/sys/block/dm-* for dm/uuid "LVM-<vg uuid><lv uuid>" (both without
 * dashes) and then in root/proc/self/mountinfo for its major:minor. root
 * is "" on a live system (tests pass a fake tree). 1 with dmname (e.g.
 * "dm-0") and mnt (may be "" when active but not mounted) filled, 0 when
 * the LV is not active.
 */
int bm_lvm_dm_lookup(const char *root, const char *vg_uuid, const char *lv_uuid, char *dmname,
		     size_t dmcap, char *mnt, size_t mntcap);

/*
 * The newest VG text of the PV at [off, off + size) of fd, parsed into
 * vg (as bm_lvm_parse fills it; every extent checked against size). 1,
 * 0 when the PV is in no VG, -EUCLEAN with why, or -errno.
 */
int bm_lvm_read_pv(int fd, uint64_t off, uint64_t size, struct lvm_vg *vg, char *why,
		   size_t whycap);

#endif
