/*
 * compare.c - compare by hashes (a resume after the destination lost our
 * session, and every pass of sync): chunk hashes asked for a window at a
 * time, 4 KiB hashes inside the chunks that differ, and only the blocks
 * that differ sent. It reads the source and never trusts an answer that
 * is not the one asked for.
 */
#include <string.h>

#include "agent/mig.h"
#include "common/common.h"

int mig_hash_req(struct mig *m, const struct vreq *v, uint32_t block)
{
	struct proto_hash_req q = { (uint16_t)v->disk, block, v->off, v->len };
	struct wbuf w;
	uint8_t b[64];

	wbuf_init(&w, b, sizeof(b));
	proto_enc_hash_req(&w, &q);
	if (agent_send(m->ac, &w))
		return mig_fail(m, "connection to the destination lost while verifying");
	return 0;
}

#define FINE_BLOCK 4096

/* The next HASHES for (disk, off, block, count), skipping late FLUSHED. */
int mig_recv_hashes(struct mig *m, uint32_t disk, uint64_t off, uint32_t block,
		    uint32_t count, struct proto_hashes *h)
{
	struct proto_frame f;
	uint64_t seq, written;
	int r;

	for (;;) {
		r = agent_recv(m->ac, &f, 120000);
		if (r != 1) {
			m->lost = 1;
			return mig_fail(m, "connection to the destination lost while comparing hashes "
					   "(%s); run ferry migrate again: it "
					   "resumes, compares what was sent and verifies again",
					r == 0 ? "connection closed" : strerror(-r));
		}
		if (f.type == PROTO_ERROR) {
			agent_error_frame(&f, m->err, sizeof(m->err));
			return -1;
		}
		if (f.type == PROTO_FLUSHED && !proto_dec_flushed(&f, &seq, &written)) {
			m->flush_acked = seq;
			mig_flushed_to(m, seq);
			continue;
		}
		break;
	}
	if (proto_dec_hashes(&f, h) || h->disk != disk || h->off != off || h->block != block ||
	    h->count != count)
		return mig_fail(m, "the destination answered the wrong hashes at offset %llu",
				(unsigned long long)off);
	return 0;
}

/* Inside one differing chunk: 4 KiB hashes, and only differing blocks go. */
static int compare_fine(struct mig *m, uint32_t i, uint64_t off, uint64_t len)
{
	struct proto_hashes h;
	uint32_t count = (uint32_t)((len + FINE_BLOCK - 1) / FINE_BLOCK), k = 0;
	uint8_t mine[HASH_LEN];
	int r;

	if (mig_hash_req(m, &(struct vreq){ i, off, len }, FINE_BLOCK) ||
	    mig_recv_hashes(m, i, off, FINE_BLOCK, count, &h))
		return -1;
	if ((r = mig_read(m, i, m->rbuf, (size_t)len, off)))
		return -1;
	m->bytes_read += len;
	while (k < count) {
		uint32_t e = k;

		/* A run of differing blocks goes as one message. */
		while (e < count) {
			uint64_t bo = (uint64_t)e * FINE_BLOCK;
			size_t n = (size_t)(len - bo < FINE_BLOCK ? len - bo : FINE_BLOCK);

			hash128(m->rbuf + bo, n, m->plan.seed, mine);
			if (!memcmp(mine, h.hashes + (size_t)e * HASH_LEN, HASH_LEN))
				break;
			e++;
		}
		if (e > k) {
			uint64_t bo = (uint64_t)k * FINE_BLOCK;
			uint64_t n = ((uint64_t)e * FINE_BLOCK > len ? len : (uint64_t)e * FINE_BLOCK) - bo;

			if (m->since_flush && m->since_flush + n > m->budget && mig_send_flush(m))
				return -1;
			if (mig_send_data(m, (uint16_t)i,
					  mem_is_zero(m->rbuf + bo, (size_t)n) ? PROTO_ENC_ZERO : PROTO_ENC_RAW,
					  off + bo, (uint32_t)n, m->rbuf + bo))
				return -1;
			m->changed += n;
			k = e;
		} else {
			k++;
		}
	}
	return 0;
}

/* Compares the set chunks of disk i in [from, to) with the destination:
 * chunk hashes first, then 4 KiB hashes inside the chunks that differ. */
int mig_compare_range(struct mig *m, uint32_t i, uint64_t from, uint64_t to)
{
	const struct bm_disk *d = &m->s[i].bm;
	struct src *s = &m->s[i];
	struct vreq q[CMP_WINDOW];
	uint64_t c = from / d->chunk, last = (to + d->chunk - 1) / d->chunk;
	uint8_t mine[HASH_LEN];
	int r;

	if (last > d->nchunks)
		last = d->nchunks;
	if (m->k == 0)
		m->sh->pg.disk = s->dst;
	while (c < last) {
		uint32_t nq = 0, k;
		size_t nd = 0;

		/* Up to CMP_WINDOW requests in flight, each a run of set chunks. */
		while (nq < CMP_WINDOW && c < last) {
			uint64_t e, end;

			if (!bm_test(d, c)) {
				c++;
				continue;
			}
			for (e = c; e < last && bm_test(d, e) && e - c < PROTO_HASH_MAX; e++)
				;
			q[nq].disk = i;
			q[nq].off = c * d->chunk;
			end = e * d->chunk > d->size ? d->size : e * d->chunk;
			q[nq].len = end - q[nq].off;
			if (mig_hash_req(m, &q[nq], d->chunk))
				return -1;
			nq++;
			c = e;
		}
		for (k = 0; k < nq; k++) {
			struct proto_hashes h;
			uint32_t count = (uint32_t)((q[k].len + d->chunk - 1) / d->chunk), j;

			if (mig_recv_hashes(m, i, q[k].off, d->chunk, count, &h))
				return -1;
			for (j = 0; j < count; j++) {
				uint64_t off = q[k].off + (uint64_t)j * d->chunk;
				size_t n = (size_t)(q[k].off + q[k].len - off < d->chunk ?
							    q[k].off + q[k].len - off : d->chunk);

				if ((r = mig_read(m, i, m->rbuf, n, off)))
					return -1;
				m->bytes_read += n;
				m->compared += n;
				__atomic_add_fetch(&m->sh->pg.done, n, __ATOMIC_RELAXED);
				hash128(m->rbuf, n, m->plan.seed, mine);
				if (memcmp(mine, h.hashes + (size_t)j * HASH_LEN, HASH_LEN))
					m->diffs[nd++] = off;
			}
		}
		/* The window's answers are in: now the fine comparisons. */
		for (k = 0; k < nd; k++) {
			uint64_t len = d->size - m->diffs[k] < d->chunk ? d->size - m->diffs[k] : d->chunk;

			if (compare_fine(m, i, m->diffs[k], len))
				return -1;
		}
		if (m->since_flush >= m->budget && mig_send_flush(m))
			return -1;
		if (mig_got_stop)
			return mig_fail(m, "interrupted; what was flushed is kept: run again to resume");
		if (mig_aborted(m))
			return -1;
		mig_tick(m);
	}
	return 0;
}
