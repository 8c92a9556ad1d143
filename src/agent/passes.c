/*
 * passes.c - keeping the destination in step: incremental passes every
 * --sync-interval until SIGUSR1 or SIGINT, and the final pass with the
 * source's filesystems frozen (--freeze). Each pass maps the sources
 * again and, per disk, sends what change tracking saw written since the
 * last pass, or compares everything by hashes where tracking is off or
 * had a gap; it never writes to a frozen filesystem (state and log wait
 * for the thaw).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/freeze.h"
#include "agent/mig.h"
#include "common/common.h"
#include "track/track.h"

/* A tracked pass with less than this to send uses one stream. */
#define ONE_STREAM_MAX (256ull << 20)

volatile sig_atomic_t mig_got_stop, mig_got_cutover;

static void on_stop(int sig)
{
	mig_got_stop = sig;
	agent_stop_sig = sig;
}

static void on_cutover(int sig)
{
	(void)sig;
	mig_got_cutover = 1;
}

/* Installed first thing (before the checks, the probes and the connect,
 * which can take minutes): a SIGUSR1 that came early once killed the
 * agent (its default action), and SIGINT/SIGTERM killed it without a
 * word. No SA_RESTART: a blocked poll or sleep returns and the loop
 * around it looks at the flags. */
void mig_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_cutover;
	sigaction(SIGUSR1, &sa, NULL);
}

/* One line per pass; pass 0 is the cutover's. */
void mig_report_pass(struct mig *m, unsigned pass, uint64_t t0)
{
	char a[32], b[32], c[32];
	double secs = (double)(time_now_ms() - t0) / 1000.0;
	uint64_t rd = m->bytes_read - m->pass_read0;

	if (m->json) {
		char p1[16], c1[32], s1[32], d1[32], r1[32], t1[16], h1[16];

		snprintf(p1, sizeof(p1), "%u", pass);
		snprintf(c1, sizeof(c1), "%llu", (unsigned long long)m->compared);
		snprintf(s1, sizeof(s1), "%llu", (unsigned long long)m->changed);
		snprintf(r1, sizeof(r1), "%llu", (unsigned long long)rd);
		snprintf(t1, sizeof(t1), "%u", m->ntracked);
		snprintf(h1, sizeof(h1), "%u", m->nhashed);
		snprintf(d1, sizeof(d1), "%.3f", secs);
		progress_event(&m->sh->pg, "pass", "pass", p1, "compared", c1, "changed", s1,
			       "bytes_read", r1, "tracked", t1, "hashed", h1, "seconds", d1, NULL);
	} else {
		fprintf(stderr, "ferry: pass %u: compared %s, %s changed and sent, read %s, %.3f s%s\n",
			pass, fmt_bytes(m->compared, a, sizeof(a)), fmt_bytes(m->changed, b, sizeof(b)),
			fmt_bytes(rd, c, sizeof(c)), secs,
			m->ntracked == 0 ? "" : m->nhashed ? " (some disks tracked)" : " (tracked)");
	}
}

/* ---- change tracking ---------------------------------------------------------- */

/* A disk's tracking: on, off (why) at the start, gap (why) at a pass. */
static void track_event(struct mig *m, uint32_t i, const char *state, const char *why)
{
	char j1[SRC_PATH_MAX * 2 + 8], j2[TRACK_ERR_MAX * 2 + 8], st[16];

	if (!strcmp(state, "on"))
		log_info("%s: change tracking on: incremental passes send what was written",
			 m->s[i].path);
	else if (!strcmp(state, "off"))
		log_info("%s: no change tracking (%s): incremental passes compare it by hashes",
			 m->s[i].path, why);
	else
		log_info("%s: change tracking had a gap (%s): comparing by hashes in this pass",
			 m->s[i].path, why);
	snprintf(st, sizeof(st), "\"%s\"", state);
	progress_event(&m->sh->pg, "tracking", "disk", json_str(m->s[i].path, j1, sizeof(j1)),
		       "state", st, "reason", json_str(why, j2, sizeof(j2)), NULL);
}

void mig_track_start(struct mig *m)
{
	const char *paths[PROTO_MAX_DISKS];
	char err[TRACK_ERR_MAX];
	uint32_t i;

	for (i = 0; i < m->n; i++)
		paths[i] = m->s[i].path;
	if (track_start(paths, m->n, &m->trk, err, sizeof(err))) {
		log_info("no change tracking (%s): incremental passes compare by hashes", err);
		return;
	}
	for (i = 0; i < m->n; i++)
		track_event(m, i, track_disk(m->trk, i, err, sizeof(err)) ? "on" : "off", err);
}

void mig_track_planned(struct mig *m)
{
	uint32_t i;

	/* What the plan trusts without comparing (known ranges of a
	 * destination that kept our session) was sent by an earlier run:
	 * writes since then were not traced. */
	for (i = 0; m->trk && i < m->n; i++) {
		uint32_t k;
		int trusted = 0;

		pthread_mutex_lock(&m->sh->lock);
		for (k = 0; k < m->sh->nknown; k++)
			if (!m->sh->known_cmp && m->sh->known[k].disk == i &&
			    m->sh->known[k].end > m->sh->known[k].off)
				trusted = 1;
		pthread_mutex_unlock(&m->sh->lock);
		if (trusted)
			track_invalidate(m->trk, i, "the time before this run was not traced (it "
					 "resumed an earlier one)");
	}
}

/* ---- the passes ------------------------------------------------------------------ */


/* The used-block map of disk i, read again. */
static int probe(struct mig *m, uint32_t i)
{
	char err[AGENT_ERR_MAX];

	bm_free(&m->s[i].bm);
	if (bm_probe(m->s[i].path, m->plan.chunk, &m->s[i].bm, err, sizeof(err)))
		return mig_fail(m, "%s", err);
	if (m->s[i].bm.size != m->plan.disks[i].src_size)
		return mig_fail(m, "%s changed size during the migration (%llu bytes, was %llu)",
				m->s[i].path, (unsigned long long)m->s[i].bm.size,
				(unsigned long long)m->plan.disks[i].src_size);
	return 0;
}

/*
 * One pass: per disk, what change tracking saw written since the last
 * pass (clipped to the used-block map of now), or everything used now
 * compared by hashes. frozen (the cutover): FIFREEZE synced the frozen
 * filesystems, so the machine-wide sync() - other filesystems' dirty
 * data - stays out of the freeze; and a tracked disk's used-block map is
 * not read again (reading every bitmap grows with the filesystem): its
 * dirty ranges go whole, the few freed since the last pass included.
 */
static int sync_pass(struct mig *m, int frozen)
{
	uint64_t t0 = time_now_ms(), ts, tp, t1, t2;
	uint32_t i;
	int r;

	/*
	 * The dirty maps first: writes from here on land in the next ones. In
	 * the final pass the filesystems are frozen already. A map with a gap
	 * goes back into the next one whole (what it did record is still
	 * true: a block it saw written and unused below may be used later).
	 */
	m->ntracked = m->nhashed = 0;
	for (i = 0; i < m->n; i++) {
		char why[TRACK_ERR_MAX];

		m->tmap[i] = NULL;
		if (m->trk && track_disk(m->trk, i, why, sizeof(why)) &&
		    !track_take(m->trk, i, &m->tmap[i], why, sizeof(why))) {
			track_event(m, i, "gap", why);
			track_put(m->trk, i, m->tmap[i], 1);
			m->tmap[i] = NULL;
		}
		if (m->tmap[i])
			m->ntracked++;
		else if (!m->s[i].img)
			m->nhashed++;
	}
	ts = time_now_ms();
	/* Then sync, then the bitmaps: a block allocated before the take -
	 * also one whose write the trace lost - is on its bitmap on disk
	 * now (the journal commits, the bitmaps are written back), so a
	 * pass comparing by hashes sees it used. */
	if (!frozen)
		sync();
	tp = time_now_ms();
	m->unclipped = frozen;
	for (i = 0; i < m->n; i++) {
		/* An image file does not change under a sync. */
		if (!m->s[i].img && !(frozen && m->tmap[i]) && probe(m, i)) {
			for (i = 0; i < m->n; i++) { /* the maps go back: nothing was sent */
				track_put(m->trk, i, m->tmap[i], 1);
				m->tmap[i] = NULL;
			}
			return -1;
		}
	}
	/* Everything the destination holds is compared (tracked disks: their
	 * dirty ranges inside it are sent). */
	mig_known_all(m);
	/* Every disk tracked and little to send: one stream is enough, and
	 * no connection is opened while the source may be frozen. */
	if (m->nhashed == 0 && m->ntracked > 0) {
		uint64_t dirty = 0;

		for (i = 0; i < m->n; i++)
			dirty += m->tmap[i] ? track_map_dirty(m->tmap[i]) : 0;
		m->pass_streams = dirty < ONE_STREAM_MAX ? 1 : 0;
	}
	m->compared = m->changed = 0;
	m->pass_read0 = m->bytes_read;
	t1 = time_now_ms();
	r = mig_transfer(m);
	t2 = time_now_ms();
	m->pass_streams = 0;
	log_debug("pass: dirty maps %llu ms, sync %llu ms, used maps %llu ms, transfer %llu ms",
		  (unsigned long long)(ts - t0), (unsigned long long)(tp - ts),
		  (unsigned long long)(t1 - tp), (unsigned long long)(t2 - t1));
	/* A failed pass gives its maps back to the next one. */
	for (i = 0; i < m->n; i++) {
		track_put(m->trk, i, m->tmap[i], r != 0);
		m->tmap[i] = NULL;
	}
	return r;
}

int mig_sync_loop(struct mig *m, unsigned interval)
{
	unsigned pass = 1;

	log_info("in step: incremental passes every %u s; SIGUSR1 cuts over, SIGINT stops",
		 interval);
	for (;;) {
		uint64_t t0;
		unsigned waited = 0;

		while (waited < interval && !mig_got_stop && !mig_got_cutover) {
			sleep(1);
			waited++;
			/* Keep the session alive (the destination ends one silent
			 * for 120 s) and notice a dead one early. */
			if ((waited % 10 == 0 && mig_send_flush(m)) || mig_pump(m, 0))
				return -1;
		}
		if (mig_got_stop || mig_got_cutover)
			return 0;
		t0 = time_now_ms();
		progress_init(&m->sh->pg, m->json, 0);
		m->sh->pg.phase = "comparing";
		if (sync_pass(m, 0))
			return -1;
		mig_report_pass(m, ++pass, t0);
	}
}

/* The cutover pass: source filesystems frozen, the delta sent, thawed. */
int mig_final_pass(struct mig *m, unsigned timeout)
{
	const char *paths[PROTO_MAX_DISKS];
	char err[AGENT_ERR_MAX];
	uint64_t ms, t0 = time_now_ms(), read0 = m->bytes_read, sent0 = m->bytes_sent;
	uint32_t i;
	int r;

	for (i = 0; i < m->n; i++)
		paths[i] = m->s[i].path;
	sync();
	if (freeze_begin(paths, m->n, timeout, err, sizeof(err)))
		return mig_fail(m, "freeze: %s", err);
	log_info("frozen for the final pass: %s", err);
	/* Nothing goes to a frozen filesystem: no state, no log file. */
	log_pause_file(1);
	progress_init(&m->sh->pg, m->json, 0);
	m->sh->pg.phase = "final";
	r = sync_pass(m, 1);
	ms = freeze_end();
	log_pause_file(0);
	mig_save_state(m);
	if (freeze_expired())
		return mig_fail(m, "the final pass took longer than the %u s freeze timeout; the "
			       "filesystems were thawed, the cutover is not consistent: run again "
			       "(or raise --freeze-timeout)", timeout);
	if (r)
		return -1;
	if (m->json) {
		char a[32], n1[16];

		snprintf(a, sizeof(a), "%llu", (unsigned long long)ms);
		snprintf(n1, sizeof(n1), "%zu", freeze_count());
		progress_event(&m->sh->pg, "freeze", "filesystems", n1, "ms", a, NULL);
	}
	log_info("final pass: %zu filesystem(s) frozen for %.3f s; %s changed", freeze_count(),
		 (double)ms / 1000.0, fmt_bytes(m->changed, err, sizeof(err)));
	m->have_final = 1;
	m->final_read = m->bytes_read - read0;
	m->final_sent = m->bytes_sent - sent0;
	m->final_ms = time_now_ms() - t0;
	m->freeze_ms = ms;
	mig_report_pass(m, 0, t0);
	/* The used-block maps the frozen pass did not read (tracked disks),
	 * for --checksum and the finish: read now, thawed. */
	for (i = 0; m->trk && i < m->n; i++)
		if (!m->s[i].img && track_disk(m->trk, i, err, sizeof(err)) && probe(m, i))
			return -1;
	return 0;
}
