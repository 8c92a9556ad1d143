/*
 * lvm_text.c - the LVM2 volume group text ("vg0 { id = ... }") as a
 * bounded recursive-descent parse into a pool of nodes, then the model
 * of the VG as one PV sees it: its extent geometry, every LV, the runs of
 * extents each LV holds on this PV and whether an LV can be mapped
 * through its filesystem or must be sent whole (and why). Pure: no I/O,
 * no marking (lvm.c does both). Every number is checked before it is
 * used; anything the checks reject makes the caller send the PV whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap/lvm.h"
#include "blockmap/reader.h"

/* Extent size limits in sectors: LVM's own are 1 KiB .. 16 GiB. */
#define EXT_SECTORS_MAX (1ull << 32)
#define SEGS_MAX	65536u
#define STRIPES_MAX	128u

enum kind { K_SECTION = 1, K_INT, K_STR, K_ARRAY, K_OTHER };

struct node {
	uint32_t name, name_len; /* key span in the text (0 for array elements) */
	uint32_t s, s_len;	 /* K_STR: the span between the quotes; K_INT: the digits */
	uint64_t num;		 /* K_INT */
	uint32_t child, next;	 /* node indices, 0 = none (node 0 is the root) */
	uint8_t kind, neg;
};

struct parser {
	const char *t;
	size_t len, pos;
	unsigned line;
	struct node *n;
	uint32_t nn, cap;
	char *why;
	size_t whycap;
};

/* Per-PV facts the segments are checked against. */
struct pvinfo {
	uint32_t node;
	uint64_t pe_count;
	int ours;
};

/* Per-LV scratch for the second pass. */
struct lvinfo {
	uint32_t node;
	int stacked;	   /* an LV among its stripes: index + 1 */
	int ref_by;	   /* an LV whose segment names this one: index + 1 */
	char ref_type[24]; /* that segment's type */
	unsigned max_stripes;
	int other_pv; /* a segment lies on another PV */
};

struct model {
	struct parser *p;
	struct lvm_vg *vg;
	struct pvinfo pv[LVM_MAX_PVS];
	struct lvinfo *lv;
};

static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t bm_lvm_crc(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--) {
		crc ^= *b++;
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
	}
	return crc;
}

/* ---- the parse ------------------------------------------------------- */

int bm_lvm_uuid_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '!' || c == '#';
}

static int is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.' || c == '+';
}

static void skip(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->t[p->pos];

		if (c == '\n') {
			p->line++;
			p->pos++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (c == '#') {
			while (p->pos < p->len && p->t[p->pos] != '\n')
				p->pos++;
		} else {
			break;
		}
	}
}

static uint32_t new_node(struct parser *p)
{
	if (p->nn == p->cap)
		return 0;
	memset(&p->n[p->nn], 0, sizeof(p->n[0]));
	return p->nn++;
}

static int too_many(struct parser *p)
{
	return bm_why(p->why, p->whycap, "more than %u values in the metadata text", p->cap);
}

static int parse_scalar(struct parser *p, struct node *n)
{
	size_t start = p->pos;
	char c = p->t[p->pos];

	if (c == '"') {
		p->pos++;
		start = p->pos;
		while (p->pos < p->len && p->t[p->pos] != '"') {
			if (p->t[p->pos] == 0)
				return bm_why(p->why, p->whycap, "a NUL inside a string at line %u",
					     p->line);
			if (p->t[p->pos] == '\n')
				p->line++;
			if (p->t[p->pos] == '\\' && p->pos + 1 < p->len)
				p->pos++;
			p->pos++;
		}
		if (p->pos >= p->len)
			return bm_why(p->why, p->whycap, "a string at line %u is not closed",
				     p->line);
		n->kind = K_STR;
		n->s = (uint32_t)start;
		n->s_len = (uint32_t)(p->pos - start);
		p->pos++;
		return 0;
	}
	if (c == '-' || c == '+') {
		n->neg = c == '-';
		p->pos++;
	}
	if (p->pos >= p->len || p->t[p->pos] < '0' || p->t[p->pos] > '9')
		return bm_why(p->why, p->whycap, "expected a value at line %u", p->line);
	n->kind = K_INT;
	while (p->pos < p->len && p->t[p->pos] >= '0' && p->t[p->pos] <= '9') {
		unsigned d = (unsigned)(p->t[p->pos] - '0');

		if (n->num > (UINT64_MAX - d) / 10)
			return bm_why(p->why, p->whycap, "a number at line %u is too large",
				     p->line);
		n->num = n->num * 10 + d;
		p->pos++;
	}
	if (p->pos < p->len && p->t[p->pos] == '.') {
		/* A float: legal in LVM's config syntax, never a size. */
		n->kind = K_OTHER;
		p->pos++;
		while (p->pos < p->len && p->t[p->pos] >= '0' && p->t[p->pos] <= '9')
			p->pos++;
	}
	if (p->pos < p->len && is_ident(p->t[p->pos]))
		return bm_why(p->why, p->whycap, "a malformed number at line %u", p->line);
	/* Where the number is, sign included: bm_lvm_locate hands it out. */
	n->s = (uint32_t)start;
	n->s_len = (uint32_t)(p->pos - start);
	return 0;
}

static int parse_value(struct parser *p, uint32_t idx)
{
	uint32_t last = 0;

	if (p->pos >= p->len)
		return bm_why(p->why, p->whycap, "the text ends before a value (line %u)", p->line);
	if (p->t[p->pos] != '[')
		return parse_scalar(p, &p->n[idx]);
	p->n[idx].kind = K_ARRAY;
	p->pos++;
	for (;;) {
		uint32_t e;
		int r;

		skip(p);
		if (p->pos >= p->len)
			return bm_why(p->why, p->whycap, "an array at line %u is not closed",
				     p->line);
		if (p->t[p->pos] == ']' && last == 0) {
			p->pos++;
			return 0;
		}
		if (p->t[p->pos] == '[')
			return bm_why(p->why, p->whycap, "a nested array at line %u", p->line);
		e = new_node(p);
		if (!e)
			return too_many(p);
		r = parse_scalar(p, &p->n[e]);
		if (r)
			return r;
		if (last)
			p->n[last].next = e;
		else
			p->n[idx].child = e;
		last = e;
		skip(p);
		if (p->pos < p->len && p->t[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->t[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		return bm_why(p->why, p->whycap, "expected ',' or ']' at line %u", p->line);
	}
}

/* The assignments and sections of one section (depth 0: the whole text). */
static int parse_body(struct parser *p, uint32_t parent, unsigned depth)
{
	uint32_t last = 0;

	for (;;) {
		size_t start;
		uint32_t idx;
		int r;

		skip(p);
		if (p->pos >= p->len) {
			if (depth == 0)
				return 0;
			return bm_why(p->why, p->whycap,
				     "the text ends inside a section (truncated at line %u)",
				     p->line);
		}
		if (p->t[p->pos] == '}') {
			if (depth == 0)
				return bm_why(p->why, p->whycap, "an unmatched '}' at line %u",
					     p->line);
			p->pos++;
			return 0;
		}
		if (!is_ident(p->t[p->pos]))
			return bm_why(p->why, p->whycap, "unexpected character 0x%02x at line %u",
				     (unsigned char)p->t[p->pos], p->line);
		start = p->pos;
		while (p->pos < p->len && is_ident(p->t[p->pos]))
			p->pos++;
		if (p->pos - start >= LVM_NAME_MAX)
			return bm_why(p->why, p->whycap, "a name of %zu characters at line %u",
				     p->pos - start, p->line);
		idx = new_node(p);
		if (!idx)
			return too_many(p);
		p->n[idx].name = (uint32_t)start;
		p->n[idx].name_len = (uint32_t)(p->pos - start);
		if (last)
			p->n[last].next = idx;
		else
			p->n[parent].child = idx;
		last = idx;
		skip(p);
		if (p->pos < p->len && p->t[p->pos] == '{') {
			if (depth + 1 >= LVM_DEPTH_MAX)
				return bm_why(p->why, p->whycap,
					     "sections nested deeper than %d at line %u",
					     LVM_DEPTH_MAX, p->line);
			p->n[idx].kind = K_SECTION;
			p->pos++;
			r = parse_body(p, idx, depth + 1);
		} else if (p->pos < p->len && p->t[p->pos] == '=') {
			p->pos++;
			skip(p);
			r = parse_value(p, idx);
		} else {
			r = bm_why(p->why, p->whycap, "expected '=' or '{' after a name at line %u",
				  p->line);
		}
		if (r)
			return r;
	}
}

/* ---- reading the tree ------------------------------------------------- */

static int name_is(const struct parser *p, const struct node *n, const char *s)
{
	size_t l = strlen(s);

	return n->name_len == l && memcmp(p->t + n->name, s, l) == 0;
}

static int str_is(const struct parser *p, const struct node *n, const char *s, size_t l)
{
	return n->kind == K_STR && n->s_len == l && memcmp(p->t + n->s, s, l) == 0;
}

static const struct node *child(const struct parser *p, const struct node *sec, const char *key)
{
	uint32_t i;

	for (i = sec->child; i; i = p->n[i].next)
		if (name_is(p, &p->n[i], key))
			return &p->n[i];
	return NULL;
}

/* "vg0", "LV root": printed names are clipped and cleaned by the caller's %.*s. */
static int get_u64(struct model *m, const struct node *sec, const char *key, const char *where,
		   uint64_t *v)
{
	const struct node *n = child(m->p, sec, key);

	if (!n)
		return bm_why(m->p->why, m->p->whycap, "%s has no %s", where, key);
	if (n->kind != K_INT || n->neg)
		return bm_why(m->p->why, m->p->whycap, "%s: %s is not a non-negative integer", where,
			     key);
	*v = n->num;
	return 0;
}

static int copy_span(const struct parser *p, uint32_t off, uint32_t len, char *dst, size_t cap)
{
	if (len >= cap)
		return -1;
	memcpy(dst, p->t + off, len);
	dst[len] = 0;
	return 0;
}

/* An "xxxxxx-xxxx-...-xxxxxx" id with its dashes taken out: 32 alphanumerics. */
static int get_uuid(struct model *m, const struct node *sec, const char *where, char *out)
{
	const struct node *n = child(m->p, sec, "id");
	size_t i, o = 0;

	if (!n || n->kind != K_STR)
		return bm_why(m->p->why, m->p->whycap, "%s has no id", where);
	for (i = 0; i < n->s_len; i++) {
		char c = m->p->t[n->s + i];

		if (c == '-')
			continue;
		if (o == LVM_UUID_LEN || !bm_lvm_uuid_char(c))
			return bm_why(m->p->why, m->p->whycap, "%s: id \"%.*s\" is not an LVM uuid",
				     where, (int)(n->s_len > 64 ? 64 : n->s_len), m->p->t + n->s);
		out[o++] = c;
	}
	if (o != LVM_UUID_LEN)
		return bm_why(m->p->why, m->p->whycap, "%s: id \"%.*s\" is not an LVM uuid", where,
			     (int)(n->s_len > 64 ? 64 : n->s_len), m->p->t + n->s);
	out[o] = 0;
	return 0;
}

static int find_pv(const struct model *m, const char *s, size_t l)
{
	size_t i;

	for (i = 0; i < m->vg->npvs; i++) {
		const struct node *n = &m->p->n[m->pv[i].node];

		if (n->name_len == l && memcmp(m->p->t + n->name, s, l) == 0)
			return (int)i;
	}
	return -1;
}

static int find_lv(const struct model *m, const char *s, size_t l)
{
	size_t i;

	for (i = 0; i < m->vg->nlvs; i++)
		if (strlen(m->vg->lvs[i].name) == l && memcmp(m->vg->lvs[i].name, s, l) == 0)
			return (int)i;
	return -1;
}

static int read_pvs(struct model *m, const struct node *vgs, const char *pv_uuid, uint64_t pv_bytes)
{
	const struct node *sec = child(m->p, vgs, "physical_volumes");
	struct lvm_vg *vg = m->vg;
	uint64_t ext = vg->extent_size;
	int found = 0;
	uint32_t i;

	if (!sec || sec->kind != K_SECTION)
		return bm_why(m->p->why, m->p->whycap, "VG %s has no physical_volumes", vg->name);
	for (i = sec->child; i; i = m->p->n[i].next) {
		const struct node *n = &m->p->n[i];
		char where[LVM_NAME_MAX + 8], uuid[LVM_UUID_LEN + 1];
		uint64_t pe_start, pe_count, dev_size;
		int r;

		if (n->kind != K_SECTION)
			continue;
		if (vg->npvs == LVM_MAX_PVS)
			return bm_why(m->p->why, m->p->whycap, "VG %s has more than %u PVs",
				     vg->name, LVM_MAX_PVS);
		snprintf(where, sizeof(where), "PV %.*s", (int)n->name_len, m->p->t + n->name);
		if (find_pv(m, m->p->t + n->name, n->name_len) >= 0)
			return bm_why(m->p->why, m->p->whycap, "%s is listed twice", where);
		r = get_uuid(m, n, where, uuid);
		if (!r)
			r = get_u64(m, n, "pe_start", where, &pe_start);
		if (!r)
			r = get_u64(m, n, "pe_count", where, &pe_count);
		if (!r)
			r = get_u64(m, n, "dev_size", where, &dev_size);
		if (r)
			return r;
		m->pv[vg->npvs].node = i;
		m->pv[vg->npvs].pe_count = pe_count;
		m->pv[vg->npvs].ours = strcmp(uuid, pv_uuid) == 0;
		vg->npvs++;
		if (!m->pv[vg->npvs - 1].ours)
			continue;
		if (found++)
			return bm_why(m->p->why, m->p->whycap, "this PV's uuid is listed twice");
		copy_span(m->p, n->name, n->name_len, vg->pv_name, sizeof(vg->pv_name));
		if (pe_start > pv_bytes / LVM_SECTOR)
			return bm_why(m->p->why, m->p->whycap,
				     "%s: pe_start %" PRIu64 " sectors lies past its %" PRIu64
				     " bytes",
				     where, pe_start, pv_bytes);
		vg->pe_start = pe_start * LVM_SECTOR;
		if (pe_count > (pv_bytes - vg->pe_start) / ext)
			return bm_why(m->p->why, m->p->whycap,
				     "%s: %" PRIu64 " extents of %" PRIu64 " bytes from %" PRIu64
				     " do not fit its %" PRIu64 " bytes",
				     where, pe_count, ext, vg->pe_start, pv_bytes);
		vg->pe_count = pe_count;
	}
	if (!found)
		return bm_why(m->p->why, m->p->whycap, "VG %s does not list this PV (%s)", vg->name,
			     pv_uuid);
	return 0;
}

/* Pass 1: names, ids and visibility of every LV, so segments can name them. */
static int read_lv_names(struct model *m, const struct node *sec)
{
	struct lvm_vg *vg = m->vg;
	uint32_t i, j;

	for (i = sec->child; i; i = m->p->n[i].next) {
		const struct node *n = &m->p->n[i], *st;
		struct lvm_lv *lv;
		int r;

		if (n->kind != K_SECTION)
			continue;
		if (vg->nlvs == LVM_MAX_LVS)
			return bm_why(m->p->why, m->p->whycap, "VG %s has more than %u LVs",
				     vg->name, LVM_MAX_LVS);
		if (find_lv(m, m->p->t + n->name, n->name_len) >= 0)
			return bm_why(m->p->why, m->p->whycap, "LV %.*s is listed twice",
				     (int)n->name_len, m->p->t + n->name);
		lv = &vg->lvs[vg->nlvs];
		memset(lv, 0, sizeof(*lv));
		copy_span(m->p, n->name, n->name_len, lv->name, sizeof(lv->name));
		lv->owner = -1;
		m->lv[vg->nlvs].node = i;
		vg->nlvs++;
		{
			char where[LVM_NAME_MAX + 8];

			snprintf(where, sizeof(where), "LV %s", lv->name);
			r = get_uuid(m, n, where, lv->uuid);
			if (r)
				return r;
		}
		st = child(m->p, n, "status");
		if (st && st->kind == K_ARRAY)
			for (j = st->child; j; j = m->p->n[j].next)
				if (str_is(m->p, &m->p->n[j], "VISIBLE", 7))
					lv->visible = 1;
	}
	return 0;
}

/* Every string in seg (values and array elements) that names an LV. */
static void note_refs(struct model *m, int lvi, const struct node *seg, const char *type)
{
	int snap = !strcmp(type, "snapshot") || !strcmp(type, "thin");
	uint32_t i, j;

	for (i = seg->child; i; i = m->p->n[i].next) {
		const struct node *n = &m->p->n[i];

		if (name_is(m->p, n, "type"))
			continue;
		/* A snapshot's origin is an ordinary LV: it keeps its map. */
		if (snap && (name_is(m->p, n, "origin") || name_is(m->p, n, "external_origin") ||
			     name_is(m->p, n, "merging_store")))
			continue;
		for (j = n->kind == K_ARRAY ? n->child : i; j;
		     j = n->kind == K_ARRAY ? m->p->n[j].next : 0) {
			const struct node *e = &m->p->n[j];
			int x;

			if (e->kind != K_STR)
				continue;
			x = find_lv(m, m->p->t + e->s, e->s_len);
			if (x < 0 || x == lvi || m->lv[x].ref_by)
				continue;
			m->lv[x].ref_by = lvi + 1;
			snprintf(m->lv[x].ref_type, sizeof(m->lv[x].ref_type), "%s", type);
		}
	}
}

static int seg_cmp(const void *a, const void *b)
{
	uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];

	return x < y ? -1 : x > y;
}

/* The stripes of a "striped" segment: pieces on this PV, others noted. */
static int read_stripes(struct model *m, int lvi, const struct node *seg, const char *where,
			uint64_t start, uint64_t count)
{
	struct lvm_lv *lv = &m->vg->lvs[lvi];
	struct lvinfo *li = &m->lv[lvi];
	const struct node *st;
	uint64_t nstripes, per, k = 0;
	uint32_t j;
	int r;

	r = get_u64(m, seg, "stripe_count", where, &nstripes);
	if (r)
		return r;
	if (nstripes == 0 || nstripes > STRIPES_MAX || count % nstripes)
		return bm_why(m->p->why, m->p->whycap,
			     "%s: %" PRIu64 " stripes for %" PRIu64 " extents", where, nstripes,
			     count);
	per = count / nstripes;
	if (nstripes > li->max_stripes)
		li->max_stripes = (unsigned)nstripes;
	st = child(m->p, seg, "stripes");
	if (!st || st->kind != K_ARRAY)
		return bm_why(m->p->why, m->p->whycap, "%s has no stripes", where);
	for (j = st->child; j; j = m->p->n[m->p->n[j].next].next, k++) {
		const struct node *name = &m->p->n[j], *pe;
		int pv, x;

		if (!name->next)
			return bm_why(m->p->why, m->p->whycap,
				     "%s: stripe %" PRIu64 " has no extent", where, k);
		pe = &m->p->n[name->next];
		if (name->kind != K_STR || pe->kind != K_INT || pe->neg)
			return bm_why(m->p->why, m->p->whycap,
				     "%s: stripe %" PRIu64 " is not a name and an extent", where,
				     k);
		if (k == nstripes)
			return bm_why(m->p->why, m->p->whycap, "%s: more stripes than %" PRIu64,
				     where, nstripes);
		pv = find_pv(m, m->p->t + name->s, name->s_len);
		if (pv < 0) {
			/* An LV under an LV (pvmove, layered types): checked by that LV. */
			x = find_lv(m, m->p->t + name->s, name->s_len);
			if (x < 0 || x == lvi)
				return bm_why(m->p->why, m->p->whycap,
					     "%s: stripe %" PRIu64
					     " names \"%.*s\", not a PV or LV",
					     where, k, (int)(name->s_len > 64 ? 64 : name->s_len),
					     m->p->t + name->s);
			li->stacked = x + 1;
			if (!m->lv[x].ref_by) {
				m->lv[x].ref_by = lvi + 1;
				snprintf(m->lv[x].ref_type, sizeof(m->lv[x].ref_type), "striped");
			}
			continue;
		}
		if (pe->num > m->pv[pv].pe_count || per > m->pv[pv].pe_count - pe->num)
			return bm_why(m->p->why, m->p->whycap,
				     "%s: extents %" PRIu64 "..%" PRIu64 " run past the %" PRIu64
				     " extents of PV %.*s",
				     where, pe->num, pe->num + per - 1, m->pv[pv].pe_count,
				     (int)name->s_len, m->p->t + name->s);
		if (!m->pv[pv].ours) {
			li->other_pv = 1;
			lv->elsewhere += per;
			continue;
		}
		if (m->vg->npieces == LVM_MAX_PIECES)
			return bm_why(m->p->why, m->p->whycap,
				     "more than %u runs of extents on this PV", LVM_MAX_PIECES);
		m->vg->pieces[m->vg->npieces].lv_ext = start;
		m->vg->pieces[m->vg->npieces].pe = pe->num;
		m->vg->pieces[m->vg->npieces].count = per;
		m->vg->npieces++;
		lv->npieces++;
		lv->here += per;
	}
	if (k != nstripes)
		return bm_why(m->p->why, m->p->whycap,
			     "%s: %" PRIu64 " stripes listed, %" PRIu64 " declared", where, k,
			     nstripes);
	return 0;
}

/* Pass 2: one LV's segments, in order, contiguous, each checked. */
static int read_segments(struct model *m, int lvi)
{
	struct lvm_lv *lv = &m->vg->lvs[lvi];
	const struct node *sec = &m->p->n[m->lv[lvi].node];
	uint64_t nseg, (*order)[2] = NULL, next = 0;
	char where[LVM_NAME_MAX + 40];
	size_t k = 0, i;
	uint32_t j;
	int r;

	snprintf(where, sizeof(where), "LV %s", lv->name);
	r = get_u64(m, sec, "segment_count", where, &nseg);
	if (r)
		return r;
	if (nseg == 0 || nseg > SEGS_MAX)
		return bm_why(m->p->why, m->p->whycap, "%s: segment_count %" PRIu64, where, nseg);
	order = calloc((size_t)nseg, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (j = sec->child; j; j = m->p->n[j].next) {
		const struct node *n = &m->p->n[j];
		uint64_t s;

		if (n->kind != K_SECTION)
			continue;
		if (k == nseg) {
			r = bm_why(m->p->why, m->p->whycap, "%s: more segments than %" PRIu64, where,
				  nseg);
			goto out;
		}
		snprintf(where, sizeof(where), "LV %s %.*s", lv->name, (int)n->name_len,
			 m->p->t + n->name);
		r = get_u64(m, n, "start_extent", where, &s);
		if (r)
			goto out;
		order[k][0] = s;
		order[k][1] = j;
		k++;
	}
	if (k != nseg) {
		r = bm_why(m->p->why, m->p->whycap, "LV %s: %zu segments, segment_count %" PRIu64,
			  lv->name, k, nseg);
		goto out;
	}
	qsort(order, k, sizeof(*order), seg_cmp);
	lv->piece0 = (uint32_t)m->vg->npieces;
	for (i = 0; i < k; i++) {
		const struct node *n = &m->p->n[order[i][1]], *ty;
		char type[24];
		uint64_t count;

		snprintf(where, sizeof(where), "LV %s %.*s", lv->name, (int)n->name_len,
			 m->p->t + n->name);
		r = get_u64(m, n, "extent_count", where, &count);
		if (r)
			goto out;
		if (order[i][0] != next || count == 0 || count > (1ull << 40) - next) {
			r = bm_why(m->p->why, m->p->whycap,
				  "%s: extents %" PRIu64 "+%" PRIu64
				  " do not follow extent %" PRIu64,
				  where, order[i][0], count, next);
			goto out;
		}
		next += count;
		ty = child(m->p, n, "type");
		if (!ty || ty->kind != K_STR ||
		    copy_span(m->p, ty->s, ty->s_len, type, sizeof(type))) {
			r = bm_why(m->p->why, m->p->whycap, "%s has no usable type", where);
			goto out;
		}
		if (i == 0)
			snprintf(lv->type, sizeof(lv->type), "%s", type);
		else if (strcmp(lv->type, type) && !lv->why[0])
			snprintf(lv->why, sizeof(lv->why), "mixed segment types");
		if (strcmp(type, "striped") == 0) {
			r = read_stripes(m, lvi, n, where, order[i][0], count);
			if (r)
				goto out;
		} else {
			note_refs(m, lvi, n, type);
			if (!lv->why[0] && !strcmp(type, "thin"))
				snprintf(lv->why, sizeof(lv->why), "thin: its data is in its pool");
			else if (!lv->why[0])
				snprintf(lv->why, sizeof(lv->why), "%s", type);
		}
	}
	lv->extents = next;
	r = 0;
out:
	free(order);
	return r;
}

static int piece_cmp(const void *a, const void *b)
{
	const struct lvm_piece *x = *(const struct lvm_piece *const *)a;
	const struct lvm_piece *y = *(const struct lvm_piece *const *)b;

	return x->pe < y->pe ? -1 : x->pe > y->pe;
}

/* Two LVs (or two runs of one) on the same extent: the metadata is wrong. */
static int check_overlap(struct model *m)
{
	const struct lvm_piece **s;
	size_t i;
	int r = 0;

	if (m->vg->npieces < 2)
		return 0;
	s = calloc(m->vg->npieces, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (i = 0; i < m->vg->npieces; i++)
		s[i] = &m->vg->pieces[i];
	qsort(s, m->vg->npieces, sizeof(*s), piece_cmp);
	for (i = 1; i < m->vg->npieces; i++)
		if (s[i - 1]->pe + s[i - 1]->count > s[i]->pe) {
			r = bm_why(m->p->why, m->p->whycap,
				  "extents %" PRIu64 "..%" PRIu64 " and %" PRIu64 "..%" PRIu64
				  " of this PV overlap",
				  s[i - 1]->pe, s[i - 1]->pe + s[i - 1]->count - 1, s[i]->pe,
				  s[i]->pe + s[i]->count - 1);
			break;
		}
	free(s);
	return r;
}

/* Why each LV is sent whole, if it is, and whom a hidden LV serves. */
static void classify(struct model *m)
{
	struct lvm_vg *vg = m->vg;
	size_t i, hop;

	for (i = 0; i < vg->nlvs; i++) {
		struct lvm_lv *lv = &vg->lvs[i];
		const struct lvinfo *li = &m->lv[i];

		if (li->ref_by) {
			int o = li->ref_by - 1;

			if (!lv->visible)
				lv->owner = o;
			/* An old-style snapshot: the visible LV is the cow store. */
			if (!strcmp(li->ref_type, "snapshot"))
				snprintf(lv->why, sizeof(lv->why),
					 "snapshot (copy-on-write store)");
			else if (!lv->why[0] || !strcmp(lv->type, "striped"))
				snprintf(lv->why, sizeof(lv->why), "part of %s %s", li->ref_type,
					 vg->lvs[o].name);
		}
		if (lv->why[0])
			continue;
		if (li->stacked)
			snprintf(lv->why, sizeof(lv->why), "on LV %s",
				 vg->lvs[li->stacked - 1].name);
		else if (!lv->visible)
			snprintf(lv->why, sizeof(lv->why), "hidden LV");
		else if (li->max_stripes > 1)
			snprintf(lv->why, sizeof(lv->why), "striped (%u stripes)", li->max_stripes);
		else if (li->other_pv)
			snprintf(lv->why, sizeof(lv->why), "spans PVs: this PV's share");
	}
	/* A hidden LV is charged to the visible LV it serves (pool_tdata -> pool). */
	for (i = 0; i < vg->nlvs; i++) {
		int o = vg->lvs[i].owner;

		for (hop = 0; o >= 0 && !vg->lvs[o].visible && hop < vg->nlvs; hop++)
			o = vg->lvs[o].owner;
		vg->lvs[i].owner = o >= 0 && vg->lvs[o].visible ? o : -1;
	}
}

int bm_lvm_parse(const char *text, size_t len, const char *pv_uuid, uint64_t pv_bytes,
		 struct lvm_vg *vg, char *why, size_t whycap)
{
	struct parser p = {.t = text, .why = why, .whycap = whycap, .line = 1};
	struct model m = {.p = &p, .vg = vg};
	const struct node *vgs = NULL, *lvs;
	uint64_t ext;
	uint32_t i;
	int r;

	memset(vg, 0, sizeof(*vg));
	if (why && whycap)
		why[0] = 0;
	while (len && text[len - 1] == 0)
		len--;
	if (len > LVM_META_MAX)
		return bm_why(why, whycap, "%zu bytes of metadata text (limit %u)", len,
			     LVM_META_MAX);
	p.len = len;
	/* A value costs at least two bytes of text ("a=1" is two nodes in three). */
	p.cap = (uint32_t)(len / 2 + 2 < LVM_NODES_MAX ? len / 2 + 2 : LVM_NODES_MAX);
	p.n = calloc(p.cap, sizeof(*p.n));
	m.lv = calloc(LVM_MAX_LVS, sizeof(*m.lv));
	if (!p.n || !m.lv) {
		r = -ENOMEM;
		goto out;
	}
	p.nn = 1; /* node 0: the root */
	r = parse_body(&p, 0, 0);
	if (r)
		goto out;

	for (i = p.n[0].child; i; i = p.n[i].next) {
		if (p.n[i].kind != K_SECTION)
			continue;
		if (vgs) {
			r = bm_why(why, whycap, "more than one VG in the metadata text");
			goto out;
		}
		vgs = &p.n[i];
	}
	if (!vgs) {
		r = bm_why(why, whycap, "no VG in the metadata text");
		goto out;
	}
	copy_span(&p, vgs->name, vgs->name_len, vg->name, sizeof(vg->name));
	r = get_uuid(&m, vgs, "the VG", vg->uuid);
	if (!r)
		r = get_u64(&m, vgs, "seqno", "the VG", &vg->seqno);
	if (!r)
		r = get_u64(&m, vgs, "extent_size", "the VG", &ext);
	if (r)
		goto out;
	if (ext == 0 || ext > EXT_SECTORS_MAX) {
		r = bm_why(why, whycap, "VG %s: extent_size %" PRIu64 " sectors", vg->name, ext);
		goto out;
	}
	vg->extent_size = ext * LVM_SECTOR;
	r = read_pvs(&m, vgs, pv_uuid, pv_bytes);
	if (r)
		goto out;
	lvs = child(&p, vgs, "logical_volumes");
	if (lvs && lvs->kind == K_SECTION) {
		r = read_lv_names(&m, lvs);
		for (i = 0; !r && i < vg->nlvs; i++)
			r = read_segments(&m, (int)i);
		if (!r)
			r = check_overlap(&m);
		if (r)
			goto out;
	}
	classify(&m);
out:
	free(p.n);
	free(m.lv);
	if (r)
		memset(vg, 0, sizeof(*vg));
	return r;
}

/* The text span of sec's integer key, or -EUCLEAN. */
static int span_of(struct model *m, const struct node *sec, const char *key, const char *where,
		   struct lvm_span *sp)
{
	const struct node *n = child(m->p, sec, key);
	int r = get_u64(m, sec, key, where, &sp->value);

	if (r)
		return r;
	sp->off = n->s;
	sp->len = n->s_len;
	return 0;
}

int bm_lvm_locate(const char *text, size_t len, const char *pv_uuid, struct lvm_spans *sp,
		  char *why, size_t whycap)
{
	struct parser p = {.t = text, .why = why, .whycap = whycap, .line = 1};
	struct model m = {.p = &p};
	const struct node *vgs = NULL, *pvs;
	uint32_t i;
	int r;

	memset(sp, 0, sizeof(*sp));
	while (len && text[len - 1] == 0)
		len--;
	if (len > LVM_META_MAX)
		return bm_why(why, whycap, "%zu bytes of metadata text (limit %u)", len,
			     LVM_META_MAX);
	p.len = len;
	p.cap = (uint32_t)(len / 2 + 2 < LVM_NODES_MAX ? len / 2 + 2 : LVM_NODES_MAX);
	p.n = calloc(p.cap, sizeof(*p.n));
	if (!p.n)
		return -ENOMEM;
	p.nn = 1;
	r = parse_body(&p, 0, 0);
	for (i = r ? 0 : p.n[0].child; i; i = p.n[i].next)
		if (p.n[i].kind == K_SECTION)
			vgs = vgs ? NULL : &p.n[i];
	if (!r && !vgs)
		r = bm_why(why, whycap, "not one VG in the metadata text");
	if (!r)
		r = span_of(&m, vgs, "seqno", "the VG", &sp->seqno);
	pvs = r ? NULL : child(&p, vgs, "physical_volumes");
	if (!r && (!pvs || pvs->kind != K_SECTION))
		r = bm_why(why, whycap, "no physical_volumes");
	for (i = r ? 0 : pvs->child; i; i = p.n[i].next) {
		char uuid[LVM_UUID_LEN + 1];

		if (p.n[i].kind != K_SECTION)
			continue;
		sp->npvs++;
		if (get_uuid(&m, &p.n[i], "a PV", uuid) || strcmp(uuid, pv_uuid))
			continue;
		r = span_of(&m, &p.n[i], "dev_size", "this PV", &sp->dev_size);
		if (!r)
			r = span_of(&m, &p.n[i], "pe_count", "this PV", &sp->pe_count);
		if (r)
			break;
		sp->found = 1;
	}
	if (!r && !sp->found)
		r = bm_why(why, whycap, "the VG does not list this PV");
	free(p.n);
	return r;
}
