/*
 * dirty.c - the dirty map: which grains of a disk were written. A top
 * level with one entry per group of LEAF_BITS grains says "nothing",
 * "all" or which leaf (a 512-byte bitmap) holds the group's bits. All
 * memory is allocated by track_map_new; marking never allocates: when no
 * leaf is free the map doubles its grain (pairs of bits are ORed, pairs of
 * groups merge), so a write may be remembered more coarsely but is never
 * forgotten. Knows nothing of tracing or of the disk itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "track/track.h"

#define LEAF_BYTES 512u
#define LEAF_BITS  (LEAF_BYTES * 8u)
#define LEAF_WORDS (LEAF_BYTES / 8u)
#define TOP_EMPTY  0u
#define TOP_FULL   UINT32_MAX
/* Bytes per leaf besides its bits: its count and its free-stack slot. */
#define LEAF_COST (LEAF_BYTES + sizeof(uint16_t) + sizeof(uint32_t))

struct track_map {
	uint64_t size;
	unsigned shift;		       /* grain = TRACK_GRAIN << shift */
	uint64_t nbits;		       /* grains in the disk at this shift */
	uint64_t ngroups;	       /* groups at this shift */
	uint64_t top_len;	       /* entries allocated (groups at the first shift) */
	uint32_t *top;		       /* TOP_EMPTY, TOP_FULL or leaf index + 1 */
	uint64_t *leaves;	       /* nleaves * LEAF_WORDS */
	uint16_t *count;	       /* bits set per leaf */
	uint32_t *freel;	       /* returned leaves */
	uint32_t nleaves, nfree, next; /* next: leaves never handed out start here */
	size_t mem_max;
};

static uint64_t grain(const struct track_map *m)
{
	return (uint64_t)TRACK_GRAIN << m->shift;
}

static void set_shift(struct track_map *m, unsigned shift)
{
	uint64_t g = (uint64_t)TRACK_GRAIN << shift;

	m->shift = shift;
	m->nbits = (m->size + g - 1) / g;
	m->ngroups = (m->nbits + LEAF_BITS - 1) / LEAF_BITS;
}

/* Grains in group G (the last group may be short). */
static uint32_t group_bits(const struct track_map *m, uint64_t G)
{
	uint64_t left = m->nbits - G * LEAF_BITS;

	return left < LEAF_BITS ? (uint32_t)left : LEAF_BITS;
}

int track_map_new(uint64_t size, size_t budget, struct track_map **out)
{
	struct track_map *m;
	unsigned shift = 0;
	uint64_t n;

	*out = NULL;
	if (size == 0)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->size = size;
	/* The top level takes at most a quarter of the budget: 32 TiB at
	 * 4 KiB with the default; a larger disk starts coarser. */
	for (set_shift(m, 0); m->ngroups > 1 && m->ngroups * 4 > budget / 4; set_shift(m, ++shift))
		;
	m->top_len = m->ngroups;
	n = budget > m->top_len * 4 ? (budget - m->top_len * 4) / LEAF_COST : 0;
	if (n > m->ngroups)
		n = m->ngroups; /* more than one leaf per group is never needed */
	if (n == 0)
		n = 1;
	if (n > UINT32_MAX - 1)
		n = UINT32_MAX - 1;
	m->nleaves = (uint32_t)n;
	/* calloc of the large arrays maps pages lazily: what is resident
	 * grows with the leaves in use, up to mem_max. */
	m->top = calloc((size_t)m->top_len, sizeof(*m->top));
	m->leaves = calloc((size_t)n, LEAF_BYTES);
	m->count = calloc((size_t)n, sizeof(*m->count));
	m->freel = calloc((size_t)n, sizeof(*m->freel));
	m->mem_max = sizeof(*m) + (size_t)m->top_len * 4 + (size_t)n * LEAF_COST;
	if (!m->top || !m->leaves || !m->count || !m->freel) {
		track_map_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void track_map_free(struct track_map *m)
{
	if (!m)
		return;
	free(m->top);
	free(m->leaves);
	free(m->count);
	free(m->freel);
	free(m);
}

void track_map_clear(struct track_map *m)
{
	memset(m->top, 0, (size_t)m->ngroups * sizeof(*m->top));
	m->nfree = 0;
	m->next = 0;
	set_shift(m, 0);
	while (m->ngroups > m->top_len) /* the disk's first shift */
		set_shift(m, m->shift + 1);
}

/* A zeroed leaf, or -1 when none is left. */
static int64_t leaf_alloc(struct track_map *m)
{
	uint32_t l;

	if (m->nfree)
		l = m->freel[--m->nfree];
	else if (m->next < m->nleaves)
		l = m->next++;
	else
		return -1;
	memset(m->leaves + (size_t)l * LEAF_WORDS, 0, LEAF_BYTES);
	m->count[l] = 0;
	return l;
}

static void leaf_free(struct track_map *m, uint32_t l)
{
	m->freel[m->nfree++] = l;
}

/* Bits 0, 2, 4, ... of x|x>>1, packed into the low 32 bits. */
static uint64_t squeeze(uint64_t x)
{
	x = (x | (x >> 1)) & 0x5555555555555555ull;
	x = (x | (x >> 1)) & 0x3333333333333333ull;
	x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0Full;
	x = (x | (x >> 4)) & 0x00FF00FF00FF00FFull;
	x = (x | (x >> 8)) & 0x0000FFFF0000FFFFull;
	x = (x | (x >> 16)) & 0x00000000FFFFFFFFull;
	return x;
}

/* Half a new leaf (32 words) from one old group's state. */
static void squeeze_group(const struct track_map *m, uint32_t state, uint32_t bits, uint64_t *dst)
{
	uint32_t j;

	if (state == TOP_EMPTY) {
		memset(dst, 0, LEAF_WORDS / 2 * 8);
		return;
	}
	for (j = 0; j < LEAF_WORDS / 2; j++) {
		uint64_t w0, w1;

		if (state == TOP_FULL) {
			/* The group's bits up to its length, as a leaf would hold. */
			uint64_t b = (uint64_t)j * 128;

			w0 = b >= bits ? 0 : bits - b >= 64 ? ~0ull : (1ull << (bits - b)) - 1;
			w1 = b + 64 >= bits	   ? 0
			     : bits - b - 64 >= 64 ? ~0ull
						   : (1ull << (bits - b - 64)) - 1;
		} else {
			const uint64_t *l = m->leaves + (size_t)(state - 1) * LEAF_WORDS;

			w0 = l[2 * j];
			w1 = l[2 * j + 1];
		}
		dst[j] = squeeze(w0) | squeeze(w1) << 32;
	}
}

/* Doubles the grain. Every old dirty grain lies in a dirty new grain;
 * where no leaf is left for a merged group it becomes "all" (coarser
 * still, never less). */
static void coarsen(struct track_map *m)
{
	uint64_t old_groups = m->ngroups, old_bits = m->nbits, G;
	uint64_t tmp[LEAF_WORDS];

	set_shift(m, m->shift + 1);
	for (G = 0; G < m->ngroups; G++) {
		uint64_t ga = 2 * G, gb = 2 * G + 1;
		uint32_t a = m->top[ga], b = gb < old_groups ? m->top[gb] : TOP_EMPTY;
		uint32_t abits =
		    (uint32_t)(old_bits - ga * LEAF_BITS < LEAF_BITS ? old_bits - ga * LEAF_BITS
								     : LEAF_BITS);
		uint32_t bbits = gb < old_groups ? (uint32_t)(old_bits - gb * LEAF_BITS < LEAF_BITS
								  ? old_bits - gb * LEAF_BITS
								  : LEAF_BITS)
						 : 0;
		uint32_t state, cnt = 0, k;
		int64_t l;

		if (a == TOP_EMPTY && b == TOP_EMPTY) {
			state = TOP_EMPTY;
		} else if (a == TOP_FULL && (b == TOP_FULL || gb >= old_groups)) {
			state = TOP_FULL;
		} else {
			squeeze_group(m, a, abits, tmp);
			squeeze_group(m, b, bbits, tmp + LEAF_WORDS / 2);
			if (a != TOP_EMPTY && a != TOP_FULL) {
				l = a - 1;
				if (b != TOP_EMPTY && b != TOP_FULL)
					leaf_free(m, b - 1);
			} else if (b != TOP_EMPTY && b != TOP_FULL) {
				l = b - 1;
			} else {
				l = leaf_alloc(m);
			}
			for (k = 0; k < LEAF_WORDS; k++)
				cnt += (uint32_t)__builtin_popcountll(tmp[k]);
			if (l < 0 || cnt >= group_bits(m, G)) {
				if (l >= 0)
					leaf_free(m, (uint32_t)l);
				state = TOP_FULL;
			} else {
				memcpy(m->leaves + (size_t)l * LEAF_WORDS, tmp, LEAF_BYTES);
				m->count[l] = (uint16_t)cnt;
				state = (uint32_t)l + 1;
			}
		}
		m->top[G] = state; /* G <= ga: entries not yet read stay intact */
	}
	memset(m->top + m->ngroups, 0, (size_t)(old_groups - m->ngroups) * sizeof(*m->top));
}

/* Sets bits [lo, hi) of leaf l; returns how many were newly set. */
static uint32_t leaf_set(struct track_map *m, uint32_t l, uint32_t lo, uint32_t hi)
{
	uint64_t *w = m->leaves + (size_t)l * LEAF_WORDS;
	uint32_t added = 0;

	while (lo < hi) {
		uint32_t k = lo / 64, b = lo % 64, n = hi - lo < 64 - b ? hi - lo : 64 - b;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << b;

		added += (uint32_t)__builtin_popcountll(mask & ~w[k]);
		w[k] |= mask;
		lo += n;
	}
	return added;
}

/* One pass of marking at the current grain: 0, or -ENOSPC when a leaf
 * was needed and none was left. */
static int mark_at_grain(struct track_map *m, uint64_t off, uint64_t end)
{
	uint64_t g = grain(m), b0 = off / g, b1 = (end + g - 1) / g, G;

	for (G = b0 / LEAF_BITS; G <= (b1 - 1) / LEAF_BITS; G++) {
		uint64_t base = G * LEAF_BITS;
		uint32_t lo = (uint32_t)(b0 > base ? b0 - base : 0);
		uint32_t hi = (uint32_t)(b1 - base < LEAF_BITS ? b1 - base : LEAF_BITS);
		uint32_t st = m->top[G], bits = group_bits(m, G);

		if (st == TOP_FULL)
			continue;
		if (lo == 0 && hi >= bits) {
			if (st != TOP_EMPTY)
				leaf_free(m, st - 1);
			m->top[G] = TOP_FULL;
			continue;
		}
		if (st == TOP_EMPTY) {
			int64_t l = leaf_alloc(m);

			if (l < 0)
				return -ENOSPC;
			st = m->top[G] = (uint32_t)l + 1;
		}
		m->count[st - 1] = (uint16_t)(m->count[st - 1] + leaf_set(m, st - 1, lo, hi));
		if (m->count[st - 1] >= bits) {
			leaf_free(m, st - 1);
			m->top[G] = TOP_FULL;
		}
	}
	return 0;
}

void track_map_mark(struct track_map *m, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (len == 0 || off >= m->size)
		return;
	end = len > m->size - off ? m->size : off + len;
	/* Marking is idempotent: after coarsening, mark the whole range again.
	 * A failed allocation means more groups than leaves, so at least two
	 * groups exist and the grain can double; it ends at one group. */
	while (mark_at_grain(m, off, end))
		coarsen(m);
}

/* Is grain bit set? */
static int bit_at(const struct track_map *m, uint64_t bit)
{
	uint32_t st = m->top[bit / LEAF_BITS];
	uint32_t i = (uint32_t)(bit % LEAF_BITS);

	if (st == TOP_EMPTY || st == TOP_FULL)
		return st == TOP_FULL;
	return (int)((m->leaves[(size_t)(st - 1) * LEAF_WORDS + i / 64] >> (i % 64)) & 1);
}

/* The first grain >= bit whose state is want (1 dirty, 0 clean), or nbits. */
static uint64_t find(const struct track_map *m, uint64_t bit, int want)
{
	while (bit < m->nbits) {
		uint64_t G = bit / LEAF_BITS, gend = G * LEAF_BITS + group_bits(m, G);
		uint32_t st = m->top[G];

		if (st == TOP_EMPTY || st == TOP_FULL) {
			if ((st == TOP_FULL) == want)
				return bit;
			bit = gend;
			continue;
		}
		/* A leaf: word by word. */
		const uint64_t *w = m->leaves + (size_t)(st - 1) * LEAF_WORDS;

		while (bit < gend) {
			uint32_t i = (uint32_t)(bit - G * LEAF_BITS);
			uint64_t x = (want ? w[i / 64] : ~w[i / 64]) >> (i % 64);

			if (x) {
				bit += (uint64_t)__builtin_ctzll(x);
				return bit < gend ? bit : gend;
			}
			bit += 64 - i % 64;
		}
		bit = gend;
	}
	return m->nbits;
}

int track_map_next(const struct track_map *m, uint64_t from, uint64_t *a, uint64_t *b)
{
	uint64_t g = grain(m), s, e;

	if (from >= m->size)
		return 0;
	s = find(m, from / g, 1);
	if (s >= m->nbits)
		return 0;
	e = find(m, s + 1, 0);
	*a = s * g > from ? s * g : from;
	*b = e * g < m->size ? e * g : m->size;
	return 1;
}

void track_map_merge(struct track_map *dst, const struct track_map *src)
{
	uint64_t a, b, at = 0;

	while (track_map_next(src, at, &a, &b)) {
		track_map_mark(dst, a, b - a);
		at = b;
	}
}

uint64_t track_map_dirty(const struct track_map *m)
{
	uint64_t a, b, at = 0, n = 0;

	while (track_map_next(m, at, &a, &b)) {
		n += b - a;
		at = b;
	}
	return n;
}

uint64_t track_map_grain(const struct track_map *m)
{
	return grain(m);
}

size_t track_map_mem_max(const struct track_map *m)
{
	return m->mem_max;
}

size_t track_map_mem_used(const struct track_map *m)
{
	return sizeof(*m) + (size_t)m->top_len * 4 + (size_t)m->next * LEAF_COST;
}

int track_map_test(const struct track_map *m, uint64_t off)
{
	return off < m->size && bit_at(m, off / grain(m));
}
