/*
 * verify.c - --checksum: after the copy, every sent chunk hashed on both
 * sides; what differs is sent again and checked once more. A second
 * difference fails the migration; it never hands off an unverified disk.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "agent/mig.h"
#include "common/common.h"

#define VERIFY_WINDOW 4			/* HASHES? requests in flight */

/* Compares one HASHES answer with the source; resends what differs. */
static int check_hashes(struct mig *m, const struct vreq *v, uint32_t block, int resend,
			uint64_t *bad)
{
	struct proto_hashes h;
	struct src *s = &m->s[v->disk];
	uint64_t off = v->off, end = v->off + v->len;
	uint32_t k = 0;
	uint8_t mine[HASH_LEN];
	int r;

	if (mig_recv_hashes(m, v->disk, v->off, block, (uint32_t)((v->len + block - 1) / block), &h))
		return -1;
	while (off < end) {
		size_t n = (size_t)(end - off < block ? end - off : block);

		if ((r = mig_read(m, v->disk, m->rbuf, n, off)))
			return -1;
		m->bytes_read += n;
		hash128(m->rbuf, n, m->plan.seed, mine);
		if (memcmp(mine, h.hashes + (size_t)k * HASH_LEN, HASH_LEN)) {
			(*bad)++;
			log_info("%s: chunk at offset %llu differs on %s%s", s->path,
				 (unsigned long long)off, s->dst, resend ? "; sending it again" : "");
			if (resend) {
				if (mig_send_data(m, (uint16_t)v->disk,
						  mem_is_zero(m->rbuf, n) ? PROTO_ENC_ZERO : PROTO_ENC_RAW,
						  off, (uint32_t)n, m->rbuf))
					return mig_fail(m, "connection lost while re-sending");
				m->resent += n;
			}
		}
		__atomic_add_fetch(&m->sh->pg.done, n, __ATOMIC_RELAXED);
		off += n;
		k++;
	}
	return 0;
}

/* One pass over every sent run: hash both sides, resend differences. */
static int verify_pass(struct mig *m, int resend, uint64_t *bad)
{
	struct vreq q[VERIFY_WINDOW];
	uint32_t head = 0, tail = 0, i;

	*bad = 0;
	for (i = 0; i < m->n; i++) {
		const struct bm_disk *d = &m->s[i].bm;
		uint32_t block = d->chunk;
		uint64_t c = 0;

		posix_fadvise(m->s[i].fd, 0, 0, POSIX_FADV_DONTNEED);

		m->sh->pg.disk = m->s[i].dst;
		while (c < d->nchunks) {
			uint64_t e, end;
			struct vreq v;

			if (!bm_test(d, c)) {
				c++;
				continue;
			}
			for (e = c; e < d->nchunks && bm_test(d, e) && e - c < PROTO_HASH_MAX; e++)
				;
			v.disk = i;
			v.off = c * d->chunk;
			end = e * d->chunk > d->size ? d->size : e * d->chunk;
			v.len = end - v.off;
			c = e;
			if (mig_got_stop)
				return mig_fail(m, "interrupted while verifying");
			if (head - tail == VERIFY_WINDOW) {
				if (check_hashes(m, &q[tail % VERIFY_WINDOW], block, resend, bad))
					return -1;
				tail++;
				progress_tick(&m->sh->pg, 0);
			}
			if (mig_hash_req(m, &v, block))
				return -1;
			q[head++ % VERIFY_WINDOW] = v;
		}
		while (tail < head) {
			if (check_hashes(m, &q[tail % VERIFY_WINDOW], block, resend, bad))
				return -1;
			tail++;
		}
	}
	return 0;
}

int mig_verify(struct mig *m)
{
	uint64_t bad = 0, total = 0;
	uint32_t i;
	char a[32];

	for (i = 0; i < m->n; i++)
		total += m->s[i].bm.map_bytes;
	for (int round = 1; round <= 2; round++) {
		progress_init(&m->sh->pg, m->json, total);
		m->sh->pg.phase = "verifying";
		if (verify_pass(m, round == 1, &bad))
			return -1;
		progress_tick(&m->sh->pg, 1);
		progress_break(&m->sh->pg);
		if (m->json) {
			char r[8], b[32];

			snprintf(r, sizeof(r), "%d", round);
			snprintf(b, sizeof(b), "%llu", (unsigned long long)bad);
			progress_event(&m->sh->pg, "verify", "round", r, "differing_chunks", b, NULL);
		}
		if (bad == 0) {
			log_info("verify: every sent chunk matches the source (%s compared)",
				 fmt_bytes(total, a, sizeof(a)));
			return 0;
		}
		if (round == 1) {
			log_info("verify: %llu chunks differed and were sent again; checking again",
				 (unsigned long long)bad);
			if (mig_send_flush(m) || mig_wait_flushed(m))
				return -1;
		}
	}
	return mig_fail(m, "verification failed: %llu chunks still differ after being sent again",
			(unsigned long long)bad);
}
