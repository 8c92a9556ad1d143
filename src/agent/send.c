/*
 * send.c - the data path of a stream: source bytes read (O_DIRECT on a
 * block device, an image through its reader), zero chunks sent as ZERO,
 * the rest as RAW or zstd while compression pays, paced by --bwlimit;
 * FLUSH every --flush-every and the FLUSHED answers turned into durable
 * positions in the state file; in a tracked pass, the dirty ranges that
 * are used now. It never allocates and never writes the source.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/freeze.h"
#include "agent/mig.h"
#include "common/common.h"
#include "image/image.h"
#include "track/track.h"

/* ---- durable progress and the state file ---------------------------------- */

/* A failed save leaves the previous file as it was: it only records
 * less than is durable, so a resume sends a little more, never less.
 * Said once, tried again at every FLUSHED (space may come back). */
static int save_state_locked(struct shared *sh)
{
	char err[300];
	int r;

	if (!sh->state_file[0] || freeze_active())
		return 0;
	r = state_save(sh->state_file, &sh->st, err, sizeof(err));
	if (r && !sh->state_failing)
		log_error("state file: %s; it keeps the progress of its last save until "
			  "it can be written again", err);
	else if (!r && sh->state_failing)
		log_info("state file %s written again", sh->state_file);
	sh->state_failing = r != 0;
	if (r)
		snprintf(sh->state_err, sizeof(sh->state_err), "%s", err);
	return r;
}

int mig_save_state(struct mig *m)
{
	int r;

	pthread_mutex_lock(&m->sh->lock);
	r = save_state_locked(m->sh);
	pthread_mutex_unlock(&m->sh->lock);
	return r;
}

/*
 * FLUSHED(seq): the ranges of this stream's FLUSHes up to seq are on the
 * destination's disk - recorded (the destination's own rule) and saved,
 * so a resume against a destination that lost the session compares
 * exactly those by hashes.
 */
void mig_flushed_to(struct mig *m, uint64_t seq)
{
	struct shared *sh = m->sh;
	uint32_t j;
	int moved = 0;

	pthread_mutex_lock(&sh->lock);
	while (m->ring_tail != m->ring_head && m->ring[m->ring_tail % FLUSH_RING].seq <= seq) {
		const struct proto_range *r = m->ring[m->ring_tail % FLUSH_RING].r;

		for (j = 0; j < m->ring[m->ring_tail % FLUSH_RING].n; j++)
			if (r[j].disk < sh->st.n)
				proto_durable_add(sh->st.done, &sh->st.ndone, PROTO_DONE_MAX,
						  &sh->st.d[r[j].disk].acked, &r[j]);
		m->ring_tail++;
		moved = 1;
	}
	if (moved)
		save_state_locked(sh);
	pthread_mutex_unlock(&sh->lock);
}

/* ---- frames from the destination during the copy ------------------------- */

/* Reads what has arrived (wait_ms 0) or waits; handles FLUSHED, fails on
 * ERROR. 0 ok, -1 failed. */
int mig_pump(struct mig *m, int wait_ms)
{
	struct proto_frame f;
	uint64_t seq, written;
	int r;

	for (;;) {
		r = agent_recv(m->ac, &f, wait_ms);
		if (r == -EAGAIN)
			return 0;
		if (r == -ETIMEDOUT)
			return wait_ms ? mig_fail(m, "the destination did not answer within %d s",
						  wait_ms / 1000) : 0;
		if (r <= 0) {
			m->lost = 1;
			return mig_fail(m, "connection to the destination lost: %s",
					r == 0 ? "closed" : strerror(-r));
		}
		if (f.type == PROTO_ERROR) {
			agent_error_frame(&f, m->err, sizeof(m->err));
			return -1;
		}
		if (f.type != PROTO_FLUSHED || proto_dec_flushed(&f, &seq, &written))
			return mig_fail(m, "unexpected %s from the destination", proto_type_name(f.type));
		m->flush_acked = seq;
		mig_flushed_to(m, seq);
		if (m->json && m->k == 0) {
			char a[32], b[32];

			snprintf(a, sizeof(a), "%llu", (unsigned long long)seq);
			snprintf(b, sizeof(b), "%llu", (unsigned long long)written);
			progress_event(&m->sh->pg, "flush", "seq", a, "durable", b, NULL);
		}
		log_debug("flush %llu acknowledged: %llu bytes durable", (unsigned long long)seq,
			  (unsigned long long)written);
		if (wait_ms)
			return 0;
	}
}

/* Appends [off, end) of disk to the pending ranges (merged with the last
 * when they touch); 0, or -1 when the list is full. */
static int pend_add(struct mig *m, uint32_t disk, uint64_t off, uint64_t end)
{
	struct proto_range *l = m->npend ? &m->pend[m->npend - 1] : NULL;

	if (off >= end)
		return 0;
	if (l && l->disk == disk && l->end == off) {
		l->end = end;
		return 0;
	}
	if (m->npend == PROTO_FLUSH_RANGES)
		return -1;
	m->pend[m->npend].disk = disk;
	m->pend[m->npend].off = off;
	m->pend[m->npend].end = end;
	m->npend++;
	return 0;
}

/* FLUSH with what this stream covered since its previous one: the
 * pieces it finished and its current one up to where it is. */
int mig_send_flush(struct mig *m)
{
	struct proto_flush fl;
	uint8_t b[PROTO_HDR_LEN + 10 + PROTO_FLUSH_RANGES * 18];
	struct wbuf w;
	int r;

	/* Room in the ring: wait for the oldest acknowledgement. */
	while (m->ring_head - m->ring_tail >= FLUSH_RING)
		if (mig_pump(m, 120000))
			return -1;
	if (pend_add(m, m->cur_disk, m->cur_a, m->cur_off) == 0)
		m->cur_a = m->cur_off;
	memset(&fl, 0, sizeof(fl));
	fl.seq = ++m->flush_seq;
	fl.n = m->npend;
	memcpy(fl.r, m->pend, m->npend * sizeof(m->pend[0]));
	wbuf_init(&w, b, sizeof(b));
	if ((r = proto_enc_flush(&w, &fl)))
		return mig_fail(m, "FLUSH: %s", strerror(-r));
	m->ring[m->ring_head % FLUSH_RING].seq = m->flush_seq;
	m->ring[m->ring_head % FLUSH_RING].n = fl.n;
	memcpy(m->ring[m->ring_head % FLUSH_RING].r, fl.r, fl.n * sizeof(fl.r[0]));
	m->ring_head++;
	m->npend = 0;
	m->since_flush = 0;
	/* The current piece did not fit the full list: it goes next time. */
	if (m->cur_a < m->cur_off && pend_add(m, m->cur_disk, m->cur_a, m->cur_off) == 0)
		m->cur_a = m->cur_off;
	if (agent_send(m->ac, &w)) {
		m->lost = 1;
		return mig_fail(m, "connection to the destination lost while flushing");
	}
	return 0;
}

int mig_piece_done(struct mig *m, uint32_t disk, uint64_t end)
{
	m->cur_disk = disk;
	m->cur_off = end;
	if (pend_add(m, disk, m->cur_a, end)) {
		/* The list is full: it goes now, and this piece with it. */
		if (mig_send_flush(m))
			return -1;
	}
	m->cur_a = m->cur_off = end;
	return 0;
}

int mig_wait_flushed(struct mig *m)
{
	while (m->flush_acked < m->flush_seq)
		if (mig_pump(m, 120000))
			return -1;
	return 0;
}

/* ---- sending ------------------------------------------------------------- */

#define ZWINDOW (16ull << 20)		/* judge compression every 16 MiB */
#define ZPAUSE (256ull << 20)		/* then leave it off this long */


uint64_t mig_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits until n bytes may leave; n never exceeds the burst (one chunk).
 * The streams share the bucket: each takes its bytes at once (the level
 * may go below zero) and sleeps off its debt outside the lock. */
static void bw_take(struct mig *m, size_t n)
{
	struct shared *sh = m->sh;
	double wait = 0;
	uint64_t t;

	if (sh->bw_rate <= 0)
		return;
	pthread_mutex_lock(&sh->lock);
	t = mig_now_ns();
	sh->bw_tokens += (double)(t - sh->bw_last_ns) * sh->bw_rate / 1e9;
	if (sh->bw_tokens > sh->bw_burst)
		sh->bw_tokens = sh->bw_burst;
	sh->bw_last_ns = t;
	sh->bw_tokens -= (double)n;
	if (sh->bw_tokens < 0)
		wait = -sh->bw_tokens / sh->bw_rate;
	pthread_mutex_unlock(&sh->lock);
	if (wait > 0) {
		struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* Writes p in pieces the bucket allows. */
static int bw_write(struct mig *m, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k = m->sh->bw_rate > 0 && n > m->sh->bw_burst ? m->sh->bw_burst : n;
		int r;

		bw_take(m, k);
		if ((r = agent_write(m->ac, p, k)))
			return r;
		p += k;
		n -= k;
	}
	return 0;
}

/* Compression pays when the time it costs is less than the time the
 * bytes it saves would take on the wire at the rate we actually get. */
static void z_judge(struct mig *m)
{
	double secs = (double)(time_now_ms() - m->t_start_ms) / 1000.0;
	double rate = m->sh->bw_rate > 0 ? m->sh->bw_rate :
		      secs > 0.01 && m->bytes_sent > (1u << 20) ? (double)m->bytes_sent / secs : 0;
	double saved_s, cost_s = (double)m->z_ns / 1e9;

	saved_s = rate > 0 ? (double)(m->z_in - m->z_out) / rate : 0;
	/* Nothing saved, or saved less time than it cost: off for a while. */
	if (m->z_out >= m->z_in - m->z_in / 100 || (rate > 0 && cost_s > saved_s)) {
		log_info("compression off for the next %llu MiB: it took %.2f s to save %.2f s "
			 "(%.0f%% smaller at %.1f MB/s)", ZPAUSE >> 20, cost_s, saved_s,
			 100.0 * (1.0 - (double)m->z_out / (double)m->z_in),
			 rate > 0 ? rate / 1e6 : 0.0);
		m->z_off_until = ZPAUSE;
	}
	m->z_in = m->z_out = m->z_ns = 0;
}

int mig_send_data(struct mig *m, uint16_t disk, uint8_t enc, uint64_t off, uint32_t len,
		  const uint8_t *p)
{
	struct proto_data d = { disk, enc, off, len, NULL, 0 };
	uint8_t hbuf[64];
	struct wbuf w;
	int r;

	d.plen = enc == PROTO_ENC_RAW ? len : 0;
	if (enc == PROTO_ENC_RAW && m->zlevel > 0) {
		if (m->z_off_until > 0) {
			m->z_off_until = m->z_off_until > len ? m->z_off_until - len : 0;
		} else {
			uint64_t t = mig_now_ns();
			size_t clen;

			m->z_in += len;
			m->z_total_in += len;
			if (zc_compress(p, len, m->zout, ZOUT_MAX, m->zlevel, &clen) == 0 &&
			    clen < len - len / 32) {
				d.enc = PROTO_ENC_ZSTD;
				d.plen = (uint32_t)clen;
				p = m->zout;
			}
			m->z_out += d.plen;
			m->z_total_out += d.plen;
			m->z_ns += mig_now_ns() - t;
			if (m->z_in >= ZWINDOW)
				z_judge(m);
		}
	}
	wbuf_init(&w, hbuf, sizeof(hbuf));
	if ((r = proto_enc_data_hdr(&w, &d)))
		return mig_fail(m, "DATA header: %s", strerror(-r));
	if ((r = bw_write(m, hbuf, w.len)) || (d.plen && (r = bw_write(m, p, d.plen)))) {
		m->lost = 1;
		return mig_fail(m, "connection to the destination lost: %s", strerror(-r));
	}
	m->bytes_sent += w.len + d.plen;
	if (enc == PROTO_ENC_ZERO)
		m->zero_bytes += len;
	m->since_flush += len;
	__atomic_add_fetch(&m->sh->pg.done, len, __ATOMIC_RELAXED);
	return 0;
}

static int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		got += (size_t)n;
	}
	return 0;
}

/* The source's bytes: a disk or raw file directly, an image through its
 * format's reader (unallocated ranges read as zeros). */
int mig_src_read(struct src *s, uint8_t *buf, size_t n, uint64_t off, char *err,
		 size_t errcap)
{
	int r;

	if (s->img) {
		pthread_mutex_lock(&s->img_lock);
		r = img_read(s->img, buf, n, off, err, errcap);
		pthread_mutex_unlock(&s->img_lock);
		return r;
	}
	/*
	 * A block device is read with O_DIRECT: a mounted filesystem writes
	 * file data straight to the device, while its metadata buffers can
	 * pin a page of the device's cache that also holds data blocks (1 KiB
	 * blocks) - a cached read would return those blocks stale, and no
	 * fadvise can drop a pinned page.
	 */
	if (s->dfd >= 0 && ((uintptr_t)buf % 4096) == 0 && off % s->bm.lsec == 0 &&
	    n % s->bm.lsec == 0)
		r = pread_full(s->dfd, buf, n, off);
	else
		r = pread_full(s->fd, buf, n, off);
	if (r) {
		char e[64];

		snprintf(err, errcap, "%s: reading %zu bytes at offset %llu failed: %s", s->path, n,
			 (unsigned long long)off, err_text(-r, e, sizeof(e)));
	}
	return r;
}

/* ---- unreadable source blocks ---------------------------------------------- */

#define BAD_BLOCK 4096	/* what --skip-bad-sectors replaces with zeros */

/* What a disk answers for a block it cannot read (a medium error, a
 * virtual disk's failed checksum); anything else is not a bad block. */
static int media_error(int r)
{
	return r == -EIO || r == -EILSEQ || r == -EREMOTEIO || r == -EBADMSG;
}

/* [off, end) of disk i went as zeros: recorded (for the summary, the
 * state file and the destination's report) and said once. */
static int zeroed(struct mig *m, uint32_t i, uint64_t off, uint64_t end, int err)
{
	struct shared *sh = m->sh;
	struct proto_range r = { i, off, end };
	uint64_t before = 0, after = 0;
	uint32_t k;
	int full;
	char e[64];

	pthread_mutex_lock(&sh->lock);
	for (k = 0; k < sh->st.nzeroed; k++)
		before += sh->st.zeroed[k].end - sh->st.zeroed[k].off;
	full = proto_durable_add(sh->st.zeroed, &sh->st.nzeroed, STATE_ZEROED_MAX, NULL, &r);
	for (k = 0; k < sh->st.nzeroed; k++)
		after += sh->st.zeroed[k].end - sh->st.zeroed[k].off;
	pthread_mutex_unlock(&sh->lock);
	if (full)
		return mig_fail(m, "%s: more than %d ranges of unreadable blocks: the disk is "
				   "failing; copy it to an image with a tool made for that "
				   "(ddrescue) and migrate the image", m->s[i].path, STATE_ZEROED_MAX);
	if (after == before)
		return 0;
	log_error("%s: sectors %llu-%llu (bytes %llu to %llu) unreadable: %s; sent as zeros "
		  "(--skip-bad-sectors)", m->s[i].path, (unsigned long long)(off / 512),
		  (unsigned long long)((end - 1) / 512), (unsigned long long)off,
		  (unsigned long long)end, err_text(-err, e, sizeof(e)));
	if (m->json) {
		char j1[300], o1[32], l1[32];

		snprintf(o1, sizeof(o1), "%llu", (unsigned long long)off);
		snprintf(l1, sizeof(l1), "%llu", (unsigned long long)(end - off));
		progress_event(&sh->pg, "unreadable", "source", json_str(m->s[i].path, j1, sizeof(j1)),
			       "offset", o1, "length", l1, NULL);
	}
	return 0;
}

/*
 * n bytes of disk i at off into buf. A read that fails with a medium
 * error is read again 4 KiB at a time to find the blocks that cannot be
 * read: without --skip-bad-sectors the first run of them is the error,
 * named by its sectors; with it they read as zeros and are recorded.
 * Any other error is an error.
 */
int mig_read(struct mig *m, uint32_t i, uint8_t *buf, size_t n, uint64_t off)
{
	struct src *s = &m->s[i];
	size_t k, end;
	char e[64];
	int r = mig_src_read(s, buf, n, off, m->err, sizeof(m->err)), bad;

	if (!media_error(r))
		return r ? -1 : 0;
	for (k = 0; k < n; k = end) {
		end = k + (n - k < BAD_BLOCK ? n - k : BAD_BLOCK);
		r = mig_src_read(s, buf + k, end - k, off + k, m->err, sizeof(m->err));
		if (!r)
			continue;
		if (!media_error(r))
			return -1;
		/* The run of unreadable blocks from here. */
		bad = r;
		while (end < n) {
			size_t e2 = end + (n - end < BAD_BLOCK ? n - end : BAD_BLOCK);

			r = mig_src_read(s, buf + end, e2 - end, off + end, m->err, sizeof(m->err));
			if (!r)
				break;
			if (!media_error(r))
				return -1;
			end = e2;
		}
		if (!m->skip_bad)
			return mig_fail(m, "%s: cannot read sectors %llu-%llu (bytes %llu to %llu): %s; "
					   "the source disk has unreadable blocks: run with "
					   "--skip-bad-sectors to send zeros for them (the copy will "
					   "not be exact)", s->path, (unsigned long long)((off + k) / 512),
					(unsigned long long)((off + end - 1) / 512),
					(unsigned long long)(off + k), (unsigned long long)(off + end),
					err_text(-bad, e, sizeof(e)));
		memset(buf + k, 0, end - k);
		if (zeroed(m, i, off + k, off + end, bad))
			return -1;
		/* The block after the run was read fine above. */
	}
	return 0;
}

/* Sends bytes [off, off+len) of disk i: data runs as RAW, zero chunks as
 * ZERO, each message at most READ_MAX. */
static int send_range(struct mig *m, uint32_t i, uint64_t off, uint64_t len)
{
	struct src *s = &m->s[i];
	uint32_t chunk = s->bm.chunk;
	int r;

	while (len > 0) {
		size_t n = len > READ_MAX ? READ_MAX : (size_t)len;
		size_t p = 0;

		/* Never more than the stream's budget unflushed: what a kill
		 * makes the destination apply twice is bounded by it. */
		if (m->since_flush >= m->budget && mig_send_flush(m))
			return -1;
		if (n > m->budget - m->since_flush)
			n = (size_t)(m->budget - m->since_flush);
		if ((r = mig_read(m, i, m->rbuf, n, off)))
			return -1;
		m->bytes_read += n;
		while (p < n) {
			size_t q = p + (n - p < chunk ? n - p : chunk);
			int zero = mem_is_zero(m->rbuf + p, q - p);

			/* Extend the run while chunks keep the same zero-ness. */
			while (q < n) {
				size_t c = n - q < chunk ? n - q : chunk;

				if (mem_is_zero(m->rbuf + q, c) != zero)
					break;
				q += c;
			}
			r = mig_send_data(m, (uint16_t)i, zero ? PROTO_ENC_ZERO : PROTO_ENC_RAW,
					  off + p, (uint32_t)(q - p), m->rbuf + p);
			if (r) {
				/* An ERROR the destination sent before closing says more. */
				char keep[AGENT_ERR_MAX];

				memcpy(keep, m->err, sizeof(keep));
				m->err[0] = 0;
				if (mig_pump(m, 1000) == 0 || !m->err[0] || m->lost)
					memcpy(m->err, keep, sizeof(keep));
				return -1;
			}
			p = q;
			m->cur_disk = i;
			m->cur_off = off + q;
		}
		off += n;
		len -= n;
		if (mig_pump(m, 0))
			return -1;
		if (mig_got_stop)
			return mig_fail(m, "interrupted; what was flushed is kept: run again to resume");
		if (mig_aborted(m))
			return -1;
		mig_tick(m);
	}
	return 0;
}

/* Every run of set chunks in [from, to) of disk i. */
/*
 * Sends what disk i's dirty map says was written in [from, to) and is used
 * now, without comparing. What is dirty but unused now goes back into the
 * filling map: a bitmap read between passes can lag an allocation (it
 * waits in the journal), and such a block must still go in a later pass.
 * m->unclipped (the frozen pass, which reads no bitmaps): all of it goes.
 */
int mig_send_dirty(struct mig *m, uint32_t i, uint64_t from, uint64_t to)
{
	const struct bm_disk *d = &m->s[i].bm;
	uint64_t a, b, at = from;

	if (m->k == 0)
		m->sh->pg.disk = m->s[i].dst;
	while (at < to && track_map_next(m->tmap[i], at, &a, &b) && a < to) {
		if (b > to)
			b = to;
		at = b;
		while (a < b) {
			uint64_t c = a / d->chunk, e, end;
			int used = m->unclipped || (c < d->nchunks && bm_test(d, c));

			for (e = c + 1; !m->unclipped && e < d->nchunks && e * d->chunk < b &&
					bm_test(d, e) == used; e++)
				;
			end = !m->unclipped && e * d->chunk < b ? e * d->chunk : b;
			if (!used) {
				track_mark(m->trk, i, a, end - a);
			} else {
				if (send_range(m, i, a, end - a))
					return -1;
				m->changed += end - a;
				m->tracked += end - a;
			}
			a = end;
		}
	}
	return 0;
}

int mig_send_part(struct mig *m, uint32_t i, uint64_t from, uint64_t to)
{
	const struct bm_disk *d = &m->s[i].bm;
	uint64_t c, last = (to + d->chunk - 1) / d->chunk;

	if (m->k == 0)
		m->sh->pg.disk = m->s[i].dst;
	if (last > d->nchunks)
		last = d->nchunks;
	c = from / d->chunk;
	while (c < last) {
		uint64_t e, off, end;

		if (!bm_test(d, c)) {
			c++;
			continue;
		}
		for (e = c; e < last && bm_test(d, e); e++)
			;
		off = c * d->chunk;
		end = e * d->chunk > to ? to : e * d->chunk;
		if (off < from) /* resuming inside a run */
			off = from;
		if (off < end && send_range(m, i, off, end - off))
			return -1;
		c = e;
	}
	return 0;
}
