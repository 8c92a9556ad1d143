/*
 * transfer.c - one pass over every disk with all streams: the address
 * space handed out in stripes, the extra streams' connections joining the
 * session, their counters added up, the first failure stopping them all.
 * It schedules; what goes on the wire is send.c's and compare.c's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "agent/mig.h"
#include "common/common.h"

/*
 * A pass hands out the disks' address space in pieces of at most a 16
 * MiB stripe, in send order, to whichever stream is free, so the source
 * is read close to sequentially. A piece never crosses the edge of a
 * range the pass already knows, so it is all sent, all compared or all
 * skipped; each stream's FLUSH then lists the pieces (and the part of
 * its current one) it covered since its previous FLUSH, and those are
 * what the destination records as durable (see recv_flush).
 */
#define STRIPE (16ull << 20)
#define KEEPALIVE_MS 10000	/* a FLUSH on an idle session connection */

void mig_tick(struct mig *m)
{
	if (m->k == 0)
		progress_tick(&m->sh->pg, 0);
}

/* How many streams a migration uses: never more than its stripes. */
uint32_t mig_streams_for(const struct mig *m, uint32_t want)
{
	uint64_t stripes = 0;
	uint32_t i;

	for (i = 0; i < m->n; i++)
		stripes += (m->s[i].bm.size + STRIPE - 1) / STRIPE;
	return stripes < want ? (uint32_t)(stripes ? stripes : 1) : want;
}

void mig_known_all(struct mig *m)
{
	struct shared *sh = m->sh;
	uint32_t i;

	pthread_mutex_lock(&sh->lock);
	for (i = 0; i < m->n; i++) {
		sh->known[i].disk = i;
		sh->known[i].off = 0;
		sh->known[i].end = m->s[i].bm.size;
	}
	sh->nknown = m->n;
	sh->known_cmp = 1;
	pthread_mutex_unlock(&sh->lock);
}

/* The next piece of the pass: 0 and [*a, *b) of disk *disk, to compare
 * (*cmp) or to send; or 1 when none is left. */
static int next_piece(struct mig *m, uint32_t *disk, uint64_t *a, uint64_t *b, int *cmp)
{
	struct shared *sh = m->sh;
	int r = 1;

	pthread_mutex_lock(&sh->lock);
	while (!sh->abort && sh->next_disk < m->n) {
		uint32_t i = sh->next_disk;
		uint64_t size = m->s[i].bm.size, lo = sh->next_off, hi, stripe_end;
		const struct proto_range *k;

		if (lo >= size) {
			sh->next_disk++;
			sh->next_off = 0;
			continue;
		}
		while (sh->next_k < sh->nknown &&
		       (sh->known[sh->next_k].disk < i ||
			(sh->known[sh->next_k].disk == i && sh->known[sh->next_k].end <= lo)))
			sh->next_k++;
		k = sh->next_k < sh->nknown && sh->known[sh->next_k].disk == i ?
			    &sh->known[sh->next_k] : NULL;
		stripe_end = (lo / STRIPE + 1) * STRIPE;
		hi = stripe_end < size ? stripe_end : size;
		if (k && k->off <= lo) {
			/* Inside a known range: skipped, or compared piece by piece. */
			if (!sh->known_cmp) {
				sh->next_off = k->end;
				continue;
			}
			hi = k->end < hi ? k->end : hi;
			*cmp = 1;
		} else {
			hi = k && k->off < hi ? k->off : hi;
			*cmp = 0;
		}
		*disk = i;
		*a = lo;
		*b = hi;
		sh->next_off = hi;
		r = 0;
		break;
	}
	pthread_mutex_unlock(&sh->lock);
	return r;
}

/* The first failure stops every stream; its words are the ones reported. */
static void stream_failed(struct mig *m)
{
	struct shared *sh = m->sh;

	pthread_mutex_lock(&sh->lock);
	if (!sh->abort) {
		sh->abort = 1;
		sh->lost = m->lost;
		snprintf(sh->err, sizeof(sh->err), "%s", m->err);
	}
	pthread_mutex_unlock(&sh->lock);
}

int mig_aborted(struct mig *m)
{
	int a;

	pthread_mutex_lock(&m->sh->lock);
	a = m->sh->abort;
	pthread_mutex_unlock(&m->sh->lock);
	return a;
}

/* One stream's share of a pass: pieces until none are left, then a
 * FLUSH of what is still pending, acknowledged. */
static int stream_pass(struct mig *m)
{
	uint32_t i;
	uint64_t a, b;
	int cmp;

	while (!next_piece(m, &i, &a, &b, &cmp)) {
		m->cur_disk = i;
		m->cur_a = m->cur_off = a;
		if (cmp ? (m->tmap[i] ? mig_send_dirty(m, i, a, b) : mig_compare_range(m, i, a, b)) :
			  mig_send_part(m, i, a, b))
			goto fail;
		if (mig_piece_done(m, i, b))
			goto fail;
	}
	if (mig_aborted(m))
		return -1;
	if (mig_send_flush(m) || mig_wait_flushed(m))
		goto fail;
	return 0;
fail:
	stream_failed(m);
	return -1;
}

struct strm {
	struct mig m;
	pthread_t th;
	int rc;
	int started;
};

/* An extra stream: its own connection joining the session, its own
 * buffers, the same pass. */
static void *stream_main(void *arg)
{
	struct strm *x = arg;
	struct mig *m = &x->m;
	struct agent_target t = *m->t;
	struct proto_inventory *inv = malloc(sizeof(*inv));
	int fd;

	x->rc = -1;
	t.join = m->plan.session;
	t.stream = (uint8_t)m->k;
	t.streams = (uint8_t)m->nstreams;
	t.busy_s = 0;
	t.wait_s = 15;
	if (!inv) {
		mig_fail(m, "stream %u: out of memory", m->k);
	} else if (agent_connect(&t, m->ac, inv, m->err, sizeof(m->err))) {
		m->lost = 1;
	} else {
		pthread_mutex_lock(&m->sh->lock);
		fd = tls_fd(m->ac->tls);
		m->sh->fds[m->k] = m->sh->abort ? -1 : fd;
		if (m->sh->abort)
			shutdown(fd, SHUT_RDWR);
		pthread_mutex_unlock(&m->sh->lock);
		log_debug("stream %u of %u connected", m->k, m->nstreams);
		x->rc = stream_pass(m);
		pthread_mutex_lock(&m->sh->lock);
		m->sh->fds[m->k] = -1;
		pthread_mutex_unlock(&m->sh->lock);
		if (x->rc == 0)
			agent_bye(m->ac);
	}
	if (x->rc && m->err[0])
		stream_failed(m);
	if (m->ac->tls) {
		tls_close(m->ac->tls, 500);
		m->ac->tls = NULL;
	}
	mem_wipe(&t.token, sizeof(t.token));
	free(inv);
	zc_thread_end();
	return NULL;
}

static void strm_free(struct strm *x)
{
	free(x->m.ac);
	free(x->m.rbuf);
	free(x->m.zout);
	free(x->m.diffs);
}

/* A copy of the session's mig for stream k, with its own connection,
 * buffers, FLUSH ring and counters. */
static int strm_init(struct strm *x, const struct mig *m, uint32_t k)
{
	memset(x, 0, sizeof(*x));
	x->m = *m;
	x->m.k = k;
	x->m.ac = calloc(1, sizeof(*x->m.ac));
	x->m.rbuf = aligned_alloc(4096, READ_MAX);
	x->m.zout = malloc(ZOUT_MAX);
	x->m.diffs = malloc(CMP_WINDOW * PROTO_HASH_MAX * sizeof(uint64_t));
	x->m.flush_seq = x->m.flush_acked = x->m.since_flush = 0;
	x->m.ring_head = x->m.ring_tail = 0;
	x->m.npend = 0;
	x->m.cur_a = x->m.cur_off = 0;
	x->m.bytes_read = x->m.bytes_sent = x->m.zero_bytes = 0;
	x->m.resent = x->m.compared = x->m.changed = x->m.tracked = 0;
	x->m.z_total_in = x->m.z_total_out = x->m.z_in = x->m.z_out = x->m.z_ns = 0;
	x->m.lost = 0;
	x->m.err[0] = 0;
	if (!x->m.ac || !x->m.rbuf || !x->m.zout || !x->m.diffs) {
		strm_free(x);
		return -ENOMEM;
	}
	return 0;
}

/* One pass over every disk with all streams: compare what must be
 * compared, send the rest, each stream flushed to the end. */
int mig_transfer(struct mig *m)
{
	static struct strm xs[PROTO_STREAMS_MAX];
	struct shared *sh = m->sh;
	uint32_t k, i;
	int r;

	pthread_mutex_lock(&sh->lock);
	sh->next_disk = 0;
	sh->next_off = 0;
	sh->next_k = 0;
	sh->abort = sh->lost = 0;
	sh->err[0] = 0;
	for (k = 0; k < PROTO_STREAMS_MAX; k++)
		sh->fds[k] = -1;
	pthread_mutex_unlock(&sh->lock);
	/* The session's window shared out: never more than flush_every
	 * unflushed in all, whatever the number of streams. */
	m->budget = (m->flush_every / (m->nstreams ? m->nstreams : 1)) & ~4095ull;
	if (m->budget < 4096)
		m->budget = 4096;
	m->npend = 0;
	m->cur_a = m->cur_off = 0;
	/* Read what is on the device now: a mounted filesystem writes file
	 * data through its partition's page cache, which the kernel does not
	 * keep coherent with the whole disk's, so pages cached by an earlier
	 * pass may be stale. */
	for (i = 0; i < m->n; i++)
		if (m->s[i].fd >= 0) {
			posix_fadvise(m->s[i].fd, 0, 0, POSIX_FADV_DONTNEED);
			posix_fadvise(m->s[i].fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		}
	/* A pass may use fewer streams than the plan (a small tracked one:
	 * no new connection while the source is frozen); the others keep the
	 * positions of their last FLUSH, at the end of the previous pass. */
	for (k = 1; k < (m->pass_streams ? m->pass_streams : m->nstreams); k++) {
		if (strm_init(&xs[k], m, k))
			return mig_fail(m, "no memory for stream %u", k);
		if (pthread_create(&xs[k].th, NULL, stream_main, &xs[k])) {
			strm_free(&xs[k]);
			mig_fail(m, "cannot start stream %u", k);
			stream_failed(m);
			break;
		}
		xs[k].started = 1;
	}
	r = stream_pass(m);
	/* Done with our share: wait for the others, keep the session's
	 * connection alive, cut the streams short when one failed. */
	for (uint64_t last = time_now_ms();;) {
		uint32_t running = 0, waited = 0;

		for (k = 1; k < m->nstreams; k++) {
			struct timespec until;

			if (xs[k].started != 1)
				continue;
			/* The first running stream is waited for up to 100 ms, so
			 * a short pass (a tracked one) ends when its streams do. */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += waited ? 0 : 100000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			waited = 1;
			if (pthread_timedjoin_np(xs[k].th, NULL, &until) == ETIMEDOUT)
				running++;
			else
				xs[k].started = 2;	/* joined */
		}
		if (!running)
			break;
		if (mig_aborted(m)) {
			pthread_mutex_lock(&sh->lock);
			for (k = 1; k < m->nstreams; k++)
				if (sh->fds[k] >= 0)
					shutdown(sh->fds[k], SHUT_RDWR);
			pthread_mutex_unlock(&sh->lock);
		} else if (r == 0 && time_now_ms() - last >= KEEPALIVE_MS) {
			if (mig_send_flush(m) || mig_pump(m, 0)) {
				stream_failed(m);
				r = -1;
			}
			last = time_now_ms();
		}
		progress_tick(&sh->pg, 0);
	}
	for (k = 1; k < m->nstreams; k++) {
		struct mig *x = &xs[k].m;

		if (!xs[k].started)
			continue;
		m->bytes_read += x->bytes_read;
		m->bytes_sent += x->bytes_sent;
		m->zero_bytes += x->zero_bytes;
		m->resent += x->resent;
		m->compared += x->compared;
		m->changed += x->changed;
		m->tracked += x->tracked;
		m->z_total_in += x->z_total_in;
		m->z_total_out += x->z_total_out;
		strm_free(&xs[k]);
		xs[k].started = 0;
	}
	if (r == 0 && !sh->abort && mig_wait_flushed(m) == 0)
		return 0;
	if (sh->abort) {
		snprintf(m->err, sizeof(m->err), "%s", sh->err);
		m->lost = sh->lost;
	}
	return -1;
}
