/*
 * migrate.c - `ferry migrate`: probe the source disks, agree a plan with
 * the destination, send the used chunks (zeros as ZERO, never as data),
 * pipelined with a FLUSH every few hundred MiB, verify by hashes if
 * asked, FINISH, and report. The source is only ever read.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/check.h"
#include "agent/freeze.h"
#include "agent/progress.h"
#include "agent/sources.h"
#include "agent/state.h"
#include "blockmap/blockmap.h"
#include "common/common.h"
#include "disk/ptable.h"
#include "image/image.h"

#define READ_MAX PROTO_DATA_MAX		/* one DATA message */
#define FLUSH_EVERY_DEFAULT (256ull << 20)
#define FINISH_MS (20 * 60 * 1000)	/* fsck + resize2fs of a big disk */
#define VERIFY_WINDOW 4			/* HASHES? requests in flight */

static const char migrate_usage[] =
	"usage: ferry migrate --to HOST[:PORT] [--token T | --token-file F]\n"
	"                     [--disk SRC[=DST]]... [--checksum] [--grow]\n"
	"                     [--handoff reboot|kexec|poweroff|shell] [--json]\n"
	"                     [--log-file F] [--log-level 1|2|3] [--wait SECONDS]\n"
	"                     [--chunk KiB] [--flush-every MiB] [--bwlimit RATE]\n"
	"                     [--compress LEVEL] [--streams N] [--sync-interval D]\n"
	"                     [--freeze]\n"
	"                     [--state-dir DIR] [--restart] [--retries N]\n"
	"                     [--proxy URL | --listen [ADDR]:PORT]\n"
	"       ferry sync    (the same options, one incremental pass, no hand-off)\n"
	"\n"
	"Copies source disks (block devices or image files) into a destination in\n"
	"migration mode. Only used blocks are sent: ext2/3/4 by their block bitmaps,\n"
	"swap by its header, partition tables outside partitions; anything else\n"
	"whole. All-zero chunks are never sent as data.\n"
	"\n"
	"  --disk SRC[=DST]  a source disk and, optionally, the destination disk\n"
	"                    (e.g. /dev/sda=vdb); repeat for several disks. Without\n"
	"                    --disk every whole disk is sent, the one holding / first,\n"
	"                    to the destination's disks in order.\n"
	"  --proxy URL       through an HTTP proxy with CONNECT: http://[USER:PASS@]\n"
	"                    HOST:PORT (default: https_proxy unless no_proxy names\n"
	"                    the destination; \"\" = direct)\n"
	"  --listen ADDR     reverse mode: wait (--wait, default 600 s) for a\n"
	"                    destination booted with ferry.connect=THIS-HOST:PORT to\n"
	"                    dial in; the token and TLS work as with --to\n"
	"  --checksum        the destination reads back what it wrote; chunk hashes\n"
	"                    are compared and any difference is sent again\n"
	"  --grow            grow the last partition and its ext4 filesystem to fill\n"
	"                    a larger destination disk\n"
	"  --handoff MODE    what the destination does after success (default reboot)\n"
	"  --bwlimit RATE    cap the bandwidth: KB/s (as the seed tool's BandwidthLimit),\n"
	"                    or 50M (MiB/s), 200Mbit\n"
	"  --compress LEVEL  zstd level 1-19 (0 = off, the default); chunks that do not\n"
	"                    shrink go raw, and it turns itself off when it costs more\n"
	"                    time than it saves\n"
	"  --streams N       parallel TLS connections, each sending its own stripes\n"
	"                    of the disks, so encryption and writing use every core\n"
	"                    (default: this machine's cores, at most 8)\n"
	"  --sync-interval D keep the destination in step: a pass every D (90s, 30m, 1h,\n"
	"                    7d) until SIGUSR1 (cut over) or SIGINT (stop, resume later)\n"
	"  --freeze          cut over crash-consistently: the final pass runs with the\n"
	"                    source's mounted filesystems frozen (--freeze-timeout 60)\n"
	"  --state-dir DIR   where the resume state lives (/var/lib/ferry); --restart\n"
	"                    ignores it; --retries N reconnects after a cut (8)\n"
	"  --ignore-check    go on when a pre-migration check (ferry check) fails\n"
	"  --json            NDJSON events on stdout (plan, progress, flush, verify,\n"
	"                    done, error, summary)\n"
	"\n"
	"exit status: 0 migrated, 1 failed, 2 usage, 3 a check failed\n";

struct src {
	char path[SRC_PATH_MAX];
	char dst[PROTO_NAME_MAX];	/* "" until mapped */
	struct bm_disk bm;
	int fd;
	int dfd;			/* O_DIRECT on a block device, or -1 */
	struct img *img;		/* an image file (ferry import), or NULL */
	pthread_mutex_t img_lock;	/* its reader keeps state: one stream at a time */
	char format[16];		/* --format for it, "" = detect */
};

#define FLUSH_RING 64

/* What the streams of a pass share (under lock). */
struct shared {
	pthread_mutex_t lock;
	struct progress pg;	/* done is added to atomically */
	struct mstate st;	/* acked positions; saved at each FLUSHED */
	char state_file[600];	/* "" = no state file */
	/* --bwlimit: one token bucket for all streams' bytes. */
	double bw_rate, bw_tokens;	/* bytes/s (0 = off), bytes */
	uint64_t bw_last_ns;
	uint32_t bw_burst;		/* one chunk */
	/* The pass: the next stripe to hand out, where each stream stood
	 * at its last acknowledged FLUSH, what was acked before the pass. */
	uint32_t next_disk;
	uint64_t next_off;
	struct {
		uint32_t disk;
		uint64_t off;
	} acked[PROTO_STREAMS_MAX];
	uint64_t base[PROTO_MAX_DISKS];
	int abort;			/* a stream failed: the others stop */
	int lost;			/* ... and a reconnect may help */
	char err[AGENT_ERR_MAX];
	int fds[PROTO_STREAMS_MAX];	/* extra streams' sockets, -1 = none */
};

struct mig {
	struct agent_conn *ac;
	struct shared *sh;
	uint32_t k;		/* stream index (0 = the session's connection) */
	uint32_t nstreams;	/* streams per pass (the plan's) */
	const struct agent_target *t;
	uint8_t *rbuf;		/* READ_MAX, aligned for O_DIRECT */
	uint8_t *zout;		/* ZOUT_MAX */
	uint64_t *diffs;	/* CMP_WINDOW * PROTO_HASH_MAX */
	struct proto_plan plan;
	struct src *s;
	uint32_t n;
	uint64_t flush_every, since_flush, flush_seq, flush_acked;
	uint64_t bytes_read, bytes_sent, zero_bytes, resent, compared, changed;
	int json;
	int lost;		/* the connection failed (a reconnect may help) */
	char err[AGENT_ERR_MAX];
	/* Where the send order stands: disk cur_disk up to cur_off sent. */
	uint32_t cur_disk;
	uint64_t cur_off;
	/* FLUSHes in flight and the position each one makes durable. */
	struct {
		uint64_t seq;
		uint32_t disk;
		uint64_t off;
	} ring[FLUSH_RING];
	uint32_t ring_head, ring_tail;
	/* Per disk for the next pass: compare by hashes below cmp_end, send
	 * whole from start on (resume). */
	uint64_t start[PROTO_MAX_DISKS], cmp_end[PROTO_MAX_DISKS];
	/* --compress: zstd level, and whether it currently pays. */
	int zlevel;
	uint64_t z_off_until;		/* raw bytes to send before trying again */
	uint64_t z_in, z_out, z_ns;	/* this window */
	uint64_t z_total_in, z_total_out;
	uint64_t t_start_ms;
};

static volatile sig_atomic_t got_stop, got_cutover;
static int send_flush(struct mig *m);
static int pump(struct mig *m, int wait_ms);
static int wait_flushed(struct mig *m);
static int send_part(struct mig *m, uint32_t i, uint64_t from, uint64_t to);
static int compare_range(struct mig *m, uint32_t i, uint64_t from, uint64_t to);

static struct src srcs[PROTO_MAX_DISKS];
static struct agent_conn conn;
static struct shared shared;
/* Stream 0's buffers; the other streams allocate theirs. Aligned for
 * O_DIRECT reads of block devices. */
#define ZOUT_MAX (PROTO_DATA_MAX + 65536)
#define CMP_WINDOW 4
static uint8_t rbuf0[READ_MAX] __attribute__((aligned(4096)));
static uint8_t zout0[ZOUT_MAX];
static uint64_t diffs0[CMP_WINDOW * PROTO_HASH_MAX];

static int fail(struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct mig *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *table_name(const struct bm_disk *d)
{
	return !strcmp(d->table, "gpt") ? "GPT" : !strcmp(d->table, "dos") ? "MBR" : "none";
}

/* ---- mapping ------------------------------------------------------------ */

static int map_disks(struct mig *m, const struct proto_inventory *inv)
{
	char have[400];
	size_t o = 0;
	uint32_t i, j, k, next = 0;

	for (k = 0; k < inv->ndisks && o < sizeof(have); k++) {
		char sz[32];

		o += (size_t)snprintf(have + o, sizeof(have) - o, "%s%s (%s)", k ? ", " : "",
				      inv->disks[k].name,
				      fmt_bytes(inv->disks[k].size, sz, sizeof(sz)));
	}
	if (inv->ndisks == 0)
		snprintf(have, sizeof(have), "no disks at all");
	for (i = 0; i < m->n; i++) {
		struct src *s = &m->s[i];
		int found = 0;

		if (!s->dst[0]) {
			/* The next destination disk not named explicitly. */
			for (; next < inv->ndisks; next++) {
				int taken = 0;

				for (j = 0; j < m->n; j++)
					if (!strcmp(m->s[j].dst, inv->disks[next].name))
						taken = 1;
				if (!taken)
					break;
			}
			if (next >= inv->ndisks)
				return fail(m, "no destination disk left for %s: the destination has %s",
					    s->path, have);
			snprintf(s->dst, sizeof(s->dst), "%s", inv->disks[next++].name);
		}
		for (k = 0; k < inv->ndisks; k++)
			if (!strcmp(inv->disks[k].name, s->dst))
				found = 1;
		if (!found) {
			size_t l = strlen(s->dst);

			if (l > 1 && s->dst[l - 1] >= '0' && s->dst[l - 1] <= '9')
				return fail(m, "destination %s looks like a partition; name a whole "
					       "disk: the destination has %s", s->dst, have);
			return fail(m, "destination disk %s does not exist: the destination has %s",
				    s->dst, have);
		}
		for (j = 0; j < i; j++)
			if (!strcmp(m->s[j].dst, s->dst))
				return fail(m, "destination disk %s is named for both %s and %s",
					    s->dst, m->s[j].path, s->path);
	}
	return 0;
}

/* ---- the plan ------------------------------------------------------------ */

static void print_plan(struct mig *m, const char *to)
{
	char a[32], b[32], c[32], j1[300], j2[300];
	uint32_t i;
	size_t p;

	for (i = 0; i < m->n; i++) {
		const struct bm_disk *d = &m->s[i].bm;

		if (m->json) {
			char sz[32], snd[32], nparts[16], tbl[16];

			snprintf(sz, sizeof(sz), "%llu", (unsigned long long)d->size);
			snprintf(snd, sizeof(snd), "%llu", (unsigned long long)d->map_bytes);
			snprintf(nparts, sizeof(nparts), "%zu", d->nparts);
			snprintf(tbl, sizeof(tbl), "\"%s\"", d->table[0] ? d->table : "none");
			progress_event(&m->sh->pg, "plan", "source", json_str(d->path, j1, sizeof(j1)),
				       "destination", json_str(m->s[i].dst, j2, sizeof(j2)),
				       "size", sz, "table", tbl, "partitions", nparts, "send", snd,
				       NULL);
			continue;
		}
		printf("%s -> %s:%s   %s (%llu bytes), table %s%s%s, send %s\n", d->path, to,
		       m->s[i].dst, fmt_bytes(d->size, a, sizeof(a)), (unsigned long long)d->size,
		       table_name(d), d->fstype[0] ? (m->s[i].img ? ", image " : ", filesystem ") : "",
		       d->fstype, fmt_bytes(d->map_bytes, b, sizeof(b)));
		for (p = 0; p < d->nparts; p++) {
			const struct bm_part *x = &d->parts[p];

			printf("   part %-3d %-6s %10s  %-12s send %10s%s%s\n", x->number,
			       x->fstype[0] ? x->fstype : "-", fmt_bytes(x->size, a, sizeof(a)),
			       bm_method_name(x->method), fmt_bytes(x->used_bytes, c, sizeof(c)),
			       x->uuid[0] ? "  UUID " : "", x->uuid);
		}
	}
	fflush(stdout);
}

/* Sends PLAN; from PLAN_OK decides, per disk, what to compare and where
 * to send from: a destination that still holds our session is trusted up
 * to what it committed; one that lost it (rebooted, receiver restarted)
 * is compared by hashes up to what we know was durable. */
static int send_plan(struct mig *m, int sync_all)
{
	struct proto_frame f;
	struct proto_plan_ok ok;
	struct wbuf w;
	uint32_t i;
	int r;

	wbuf_init(&w, m->ac->txbuf, sizeof(m->ac->txbuf));
	if ((r = proto_enc_plan(&w, &m->plan)) || (r = agent_send(m->ac, &w))) {
		m->lost = 1;
		return fail(m, "sending the plan: %s", strerror(-r));
	}
	r = agent_recv(m->ac, &f, 60000);
	if (r != 1) {
		m->lost = 1;
		return fail(m, "no answer to the plan from the destination");
	}
	if (f.type == PROTO_ERROR) {
		agent_error_frame(&f, m->err, sizeof(m->err));
		return -1;
	}
	if (proto_dec_plan_ok(&f, &ok) || ok.n != m->plan.ndisks)
		return fail(m, "unexpected %s in answer to the plan", proto_type_name(f.type));
	for (i = 0; i < ok.n; i++) {
		uint64_t size = m->s[i].bm.size;

		m->plan.disks[i].dst_size = ok.dst_size[i];
		if (sync_all) {
			m->cmp_end[i] = size;
			m->start[i] = size;
		} else if (ok.resumed) {
			/* From the destination, so bounded (PLAN_OK decoding checks
			 * committed <= its size) and put back on a chunk boundary. */
			uint64_t c = ok.committed[i] < size ? ok.committed[i] : size;

			m->cmp_end[i] = 0;
			m->start[i] = c == size ? size : c - c % m->plan.chunk;
			if (ok.committed[i] < m->sh->st.d[i].acked)
				log_info("%s: the destination committed less than we knew; sending from %llu",
					 m->s[i].dst, (unsigned long long)m->start[i]);
		} else {
			m->cmp_end[i] = m->sh->st.d[i].acked;
			m->start[i] = m->sh->st.d[i].acked;
		}
	}
	m->flush_seq = m->flush_acked = 0;
	m->ring_head = m->ring_tail = 0;
	m->since_flush = 0;
	if (!sync_all && (ok.resumed || m->cmp_end[0] || m->start[0])) {
		char sz[32];
		uint64_t cmp = 0;

		for (i = 0; i < ok.n; i++)
			cmp += m->cmp_end[i];
		log_info("resuming session %016llx: %s by the destination, %s to compare by hashes",
			 (unsigned long long)m->plan.session,
			 ok.resumed ? "trusting what was committed" : "session lost",
			 fmt_bytes(cmp, sz, sizeof(sz)));
	}
	return 0;
}

/* ---- streams ----------------------------------------------------------------- */

/*
 * A pass hands out the disks' address space in stripes, in send order,
 * to whichever stream is free: each stream's sends ascend, so its FLUSH
 * can say where it stands (see recv_flush on the destination), and the
 * source is read close to sequentially.
 */
#define STRIPE (16ull << 20)
#define KEEPALIVE_MS 10000	/* a FLUSH on an idle session connection */

static void tick(struct mig *m)
{
	if (m->k == 0)
		progress_tick(&m->sh->pg, 0);
}

/* How many streams a migration uses: never more than its stripes. */
static uint32_t streams_for(const struct mig *m, uint32_t want)
{
	uint64_t stripes = 0;
	uint32_t i;

	for (i = 0; i < m->n; i++)
		stripes += (m->s[i].bm.size + STRIPE - 1) / STRIPE;
	return stripes < want ? (uint32_t)(stripes ? stripes : 1) : want;
}

/* The next stripe of the pass: 0 and [*a, *b) of disk *disk, or 1. */
static int next_stripe(struct mig *m, uint32_t *disk, uint64_t *a, uint64_t *b)
{
	struct shared *sh = m->sh;
	int r = 1;

	pthread_mutex_lock(&sh->lock);
	while (!sh->abort && sh->next_disk < m->n) {
		uint32_t i = sh->next_disk;
		uint64_t size = m->s[i].bm.size, lo = sh->next_off;

		/* Between what is compared and what is sent there is nothing
		 * to do (a resume). */
		if (lo >= m->cmp_end[i] && lo < m->start[i])
			lo = m->start[i];
		if (lo >= size) {
			sh->next_disk++;
			sh->next_off = 0;
			continue;
		}
		*disk = i;
		*a = lo;
		*b = (lo / STRIPE + 1) * STRIPE < size ? (lo / STRIPE + 1) * STRIPE : size;
		sh->next_off = *b;
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

static int aborted(struct mig *m)
{
	int a;

	pthread_mutex_lock(&m->sh->lock);
	a = m->sh->abort;
	pthread_mutex_unlock(&m->sh->lock);
	return a;
}

/* One stream's share of a pass: stripes until none are left, then a
 * FLUSH that says it is done, acknowledged. */
static int stream_pass(struct mig *m)
{
	uint32_t i;
	uint64_t a, b;

	while (!next_stripe(m, &i, &a, &b)) {
		uint64_t ce = m->cmp_end[i] < b ? m->cmp_end[i] : b;
		uint64_t sa = a > m->start[i] ? a : m->start[i];

		m->cur_disk = i;
		m->cur_off = a;
		if (a < ce && compare_range(m, i, a, ce))
			goto fail;
		if (sa < b && send_part(m, i, sa, b))
			goto fail;
		m->cur_off = b;
	}
	if (aborted(m))
		return -1;
	m->cur_disk = m->n;
	m->cur_off = 0;
	if (send_flush(m) || wait_flushed(m))
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
		fail(m, "stream %u: out of memory", m->k);
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
	x->m.bytes_read = x->m.bytes_sent = x->m.zero_bytes = 0;
	x->m.resent = x->m.compared = x->m.changed = 0;
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
static int transfer(struct mig *m)
{
	static struct strm xs[PROTO_STREAMS_MAX];
	struct shared *sh = m->sh;
	uint32_t k, i;
	int r;

	pthread_mutex_lock(&sh->lock);
	sh->next_disk = 0;
	sh->next_off = 0;
	sh->abort = sh->lost = 0;
	sh->err[0] = 0;
	memset(sh->acked, 0, sizeof(sh->acked));
	for (i = 0; i < m->n; i++)
		sh->base[i] = sh->st.d[i].acked;
	for (k = 0; k < PROTO_STREAMS_MAX; k++)
		sh->fds[k] = -1;
	pthread_mutex_unlock(&sh->lock);
	/* Read what is on the device now: a mounted filesystem writes file
	 * data through its partition's page cache, which the kernel does not
	 * keep coherent with the whole disk's, so pages cached by an earlier
	 * pass may be stale. */
	for (i = 0; i < m->n; i++)
		if (m->s[i].fd >= 0) {
			posix_fadvise(m->s[i].fd, 0, 0, POSIX_FADV_DONTNEED);
			posix_fadvise(m->s[i].fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		}
	for (k = 1; k < m->nstreams; k++) {
		if (strm_init(&xs[k], m, k))
			return fail(m, "no memory for stream %u", k);
		if (pthread_create(&xs[k].th, NULL, stream_main, &xs[k])) {
			strm_free(&xs[k]);
			fail(m, "cannot start stream %u", k);
			stream_failed(m);
			break;
		}
		xs[k].started = 1;
	}
	r = stream_pass(m);
	/* Done with our share: wait for the others, keep the session's
	 * connection alive, cut the streams short when one failed. */
	for (uint64_t last = time_now_ms();;) {
		uint32_t running = 0;

		for (k = 1; k < m->nstreams; k++) {
			if (xs[k].started != 1)
				continue;
			if (pthread_tryjoin_np(xs[k].th, NULL) == EBUSY)
				running++;
			else
				xs[k].started = 2;	/* joined */
		}
		if (!running)
			break;
		if (aborted(m)) {
			pthread_mutex_lock(&sh->lock);
			for (k = 1; k < m->nstreams; k++)
				if (sh->fds[k] >= 0)
					shutdown(sh->fds[k], SHUT_RDWR);
			pthread_mutex_unlock(&sh->lock);
		} else if (r == 0 && time_now_ms() - last >= KEEPALIVE_MS) {
			if (send_flush(m) || pump(m, 0)) {
				stream_failed(m);
				r = -1;
			}
			last = time_now_ms();
		}
		progress_tick(&sh->pg, 0);
		usleep(100000);
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
		m->z_total_in += x->z_total_in;
		m->z_total_out += x->z_total_out;
		strm_free(&xs[k]);
		xs[k].started = 0;
	}
	if (r == 0 && !sh->abort && wait_flushed(m) == 0)
		return 0;
	if (sh->abort) {
		snprintf(m->err, sizeof(m->err), "%s", sh->err);
		m->lost = sh->lost;
	}
	return -1;
}

/* ---- durable progress and the state file ---------------------------------- */

static void save_state_locked(struct shared *sh)
{
	char err[300];

	if (!sh->state_file[0] || freeze_active())
		return;
	if (state_save(sh->state_file, &sh->st, err, sizeof(err))) {
		log_error("state file: %s; a resume will compare by hashes", err);
		sh->state_file[0] = 0;
	}
}

static void save_state(struct mig *m)
{
	pthread_mutex_lock(&m->sh->lock);
	save_state_locked(m->sh);
	pthread_mutex_unlock(&m->sh->lock);
}

/*
 * FLUSHED(seq): everything this stream sent before that FLUSH is durable,
 * and it stood where the FLUSH said. A disk is durable up to the lowest
 * position of all the pass's streams (or what was before the pass) - the
 * destination's own rule for what it committed.
 */
static void flushed_to(struct mig *m, uint64_t seq)
{
	struct shared *sh = m->sh;
	uint32_t d = 0, i, j;
	uint64_t off = 0;
	int moved = 0;

	while (m->ring_tail != m->ring_head && m->ring[m->ring_tail % FLUSH_RING].seq <= seq) {
		d = m->ring[m->ring_tail % FLUSH_RING].disk;
		off = m->ring[m->ring_tail % FLUSH_RING].off;
		m->ring_tail++;
		moved = 1;
	}
	if (!moved)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->acked[m->k].disk = d;
	sh->acked[m->k].off = off;
	for (i = 0; i < sh->st.n; i++) {
		uint64_t low = sh->st.d[i].size;

		for (j = 0; j < m->nstreams; j++) {
			uint64_t at = sh->acked[j].disk > i ? sh->st.d[i].size :
				      sh->acked[j].disk == i ? sh->acked[j].off : 0;

			if (at < low)
				low = at;
		}
		if (low < sh->base[i])
			low = sh->base[i];
		if (low > sh->st.d[i].acked)
			sh->st.d[i].acked = low;
	}
	save_state_locked(sh);
	pthread_mutex_unlock(&sh->lock);
}

/* ---- frames from the destination during the copy ------------------------- */

/* Reads what has arrived (wait_ms 0) or waits; handles FLUSHED, fails on
 * ERROR. 0 ok, -1 failed. */
static int pump(struct mig *m, int wait_ms)
{
	struct proto_frame f;
	uint64_t seq, written;
	int r;

	for (;;) {
		r = agent_recv(m->ac, &f, wait_ms);
		if (r == -EAGAIN)
			return 0;
		if (r == -ETIMEDOUT)
			return wait_ms ? fail(m, "the destination did not answer within %d s",
					      wait_ms / 1000) : 0;
		if (r <= 0) {
			m->lost = 1;
			return fail(m, "connection to the destination lost: %s",
				    r == 0 ? "closed" : strerror(-r));
		}
		if (f.type == PROTO_ERROR) {
			agent_error_frame(&f, m->err, sizeof(m->err));
			return -1;
		}
		if (f.type != PROTO_FLUSHED || proto_dec_flushed(&f, &seq, &written))
			return fail(m, "unexpected %s from the destination", proto_type_name(f.type));
		m->flush_acked = seq;
		flushed_to(m, seq);
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

static int send_flush(struct mig *m)
{
	struct proto_flush fl = { 0, m->cur_disk, m->cur_off };
	struct wbuf w;
	uint8_t b[32];

	/* Room in the ring: wait for the oldest acknowledgement. */
	while (m->ring_head - m->ring_tail >= FLUSH_RING)
		if (pump(m, 120000))
			return -1;
	wbuf_init(&w, b, sizeof(b));
	fl.seq = ++m->flush_seq;
	proto_enc_flush(&w, &fl);
	m->ring[m->ring_head % FLUSH_RING].seq = m->flush_seq;
	m->ring[m->ring_head % FLUSH_RING].disk = m->cur_disk;
	m->ring[m->ring_head % FLUSH_RING].off = m->cur_off;
	m->ring_head++;
	m->since_flush = 0;
	if (agent_send(m->ac, &w)) {
		m->lost = 1;
		return fail(m, "connection to the destination lost while flushing");
	}
	return 0;
}

static int wait_flushed(struct mig *m)
{
	while (m->flush_acked < m->flush_seq)
		if (pump(m, 120000))
			return -1;
	return 0;
}

/* ---- sending ------------------------------------------------------------- */

#define ZWINDOW (16ull << 20)		/* judge compression every 16 MiB */
#define ZPAUSE (256ull << 20)		/* then leave it off this long */


static uint64_t now_ns(void)
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
	t = now_ns();
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

static int send_data(struct mig *m, uint16_t disk, uint8_t enc, uint64_t off, uint32_t len,
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
			uint64_t t = now_ns();
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
			m->z_ns += now_ns() - t;
			if (m->z_in >= ZWINDOW)
				z_judge(m);
		}
	}
	wbuf_init(&w, hbuf, sizeof(hbuf));
	if ((r = proto_enc_data_hdr(&w, &d)))
		return fail(m, "DATA header: %s", strerror(-r));
	if ((r = bw_write(m, hbuf, w.len)) || (d.plen && (r = bw_write(m, p, d.plen)))) {
		m->lost = 1;
		return fail(m, "connection to the destination lost: %s", strerror(-r));
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
static int src_read(struct src *s, uint8_t *buf, size_t n, uint64_t off, char *err,
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
	if (r)
		snprintf(err, errcap, "%s: reading %zu bytes at offset %llu: %s", s->path, n,
			 (unsigned long long)off, strerror(-r));
	return r;
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

		if ((r = src_read(s, m->rbuf, n, off, m->err, sizeof(m->err))))
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
			r = send_data(m, (uint16_t)i, zero ? PROTO_ENC_ZERO : PROTO_ENC_RAW,
				      off + p, (uint32_t)(q - p), m->rbuf + p);
			if (r) {
				/* An ERROR the destination sent before closing says more. */
				char keep[AGENT_ERR_MAX];

				memcpy(keep, m->err, sizeof(keep));
				m->err[0] = 0;
				if (pump(m, 1000) == 0 || !m->err[0] || m->lost)
					memcpy(m->err, keep, sizeof(keep));
				return -1;
			}
			p = q;
			m->cur_disk = i;
			m->cur_off = off + q;
		}
		off += n;
		len -= n;
		if (m->since_flush >= m->flush_every && send_flush(m))
			return -1;
		if (pump(m, 0))
			return -1;
		if (got_stop)
			return fail(m, "interrupted; what was flushed is kept: run again to resume");
		if (aborted(m))
			return -1;
		tick(m);
	}
	return 0;
}

/* Every run of set chunks in [from, to) of disk i. */
static int send_part(struct mig *m, uint32_t i, uint64_t from, uint64_t to)
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

/* ---- compare by hashes (resume after a destination restart, sync) ---------- */

struct vreq {
	uint32_t disk;
	uint64_t off, len;
};

static int hash_req(struct mig *m, const struct vreq *v, uint32_t block)
{
	struct proto_hash_req q = { (uint16_t)v->disk, block, v->off, v->len };
	struct wbuf w;
	uint8_t b[64];

	wbuf_init(&w, b, sizeof(b));
	proto_enc_hash_req(&w, &q);
	if (agent_send(m->ac, &w))
		return fail(m, "connection to the destination lost while verifying");
	return 0;
}

#define FINE_BLOCK 4096

/* The next HASHES for (disk, off, block, count), skipping late FLUSHED. */
static int recv_hashes(struct mig *m, uint32_t disk, uint64_t off, uint32_t block,
		       uint32_t count, struct proto_hashes *h)
{
	struct proto_frame f;
	uint64_t seq, written;
	int r;

	for (;;) {
		r = agent_recv(m->ac, &f, 120000);
		if (r != 1) {
			m->lost = 1;
			return fail(m, "no hashes from the destination (%s)",
				    r == 0 ? "connection closed" : strerror(-r));
		}
		if (f.type == PROTO_ERROR) {
			agent_error_frame(&f, m->err, sizeof(m->err));
			return -1;
		}
		if (f.type == PROTO_FLUSHED && !proto_dec_flushed(&f, &seq, &written)) {
			m->flush_acked = seq;
			flushed_to(m, seq);
			continue;
		}
		break;
	}
	if (proto_dec_hashes(&f, h) || h->disk != disk || h->off != off || h->block != block ||
	    h->count != count)
		return fail(m, "the destination answered the wrong hashes at offset %llu",
			    (unsigned long long)off);
	return 0;
}

/* Inside one differing chunk: 4 KiB hashes, and only differing blocks go. */
static int compare_fine(struct mig *m, uint32_t i, uint64_t off, uint64_t len)
{
	struct src *s = &m->s[i];
	struct proto_hashes h;
	uint32_t count = (uint32_t)((len + FINE_BLOCK - 1) / FINE_BLOCK), k = 0;
	uint8_t mine[HASH_LEN];
	int r;

	if (hash_req(m, &(struct vreq){ i, off, len }, FINE_BLOCK) ||
	    recv_hashes(m, i, off, FINE_BLOCK, count, &h))
		return -1;
	if ((r = src_read(s, m->rbuf, (size_t)len, off, m->err, sizeof(m->err))))
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

			if (send_data(m, (uint16_t)i,
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
static int compare_range(struct mig *m, uint32_t i, uint64_t from, uint64_t to)
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
			if (hash_req(m, &q[nq], d->chunk))
				return -1;
			nq++;
			c = e;
		}
		for (k = 0; k < nq; k++) {
			struct proto_hashes h;
			uint32_t count = (uint32_t)((q[k].len + d->chunk - 1) / d->chunk), j;

			if (recv_hashes(m, i, q[k].off, d->chunk, count, &h))
				return -1;
			for (j = 0; j < count; j++) {
				uint64_t off = q[k].off + (uint64_t)j * d->chunk;
				size_t n = (size_t)(q[k].off + q[k].len - off < d->chunk ?
							    q[k].off + q[k].len - off : d->chunk);

				if ((r = src_read(s, m->rbuf, n, off, m->err, sizeof(m->err))))
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
		if (m->since_flush >= m->flush_every && send_flush(m))
			return -1;
		if (aborted(m))
			return -1;
		tick(m);
	}
	return 0;
}

/* ---- verify ---------------------------------------------------------------- */

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

	if (recv_hashes(m, v->disk, v->off, block, (uint32_t)((v->len + block - 1) / block), &h))
		return -1;
	while (off < end) {
		size_t n = (size_t)(end - off < block ? end - off : block);

		if ((r = src_read(s, m->rbuf, n, off, m->err, sizeof(m->err))))
			return -1;
		m->bytes_read += n;
		hash128(m->rbuf, n, m->plan.seed, mine);
		if (memcmp(mine, h.hashes + (size_t)k * HASH_LEN, HASH_LEN)) {
			(*bad)++;
			log_info("%s: chunk at offset %llu differs on %s%s", s->path,
				 (unsigned long long)off, s->dst, resend ? "; sending it again" : "");
			if (resend) {
				if (send_data(m, (uint16_t)v->disk,
					      mem_is_zero(m->rbuf, n) ? PROTO_ENC_ZERO : PROTO_ENC_RAW,
					      off, (uint32_t)n, m->rbuf))
					return fail(m, "connection lost while re-sending");
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
			if (head - tail == VERIFY_WINDOW) {
				if (check_hashes(m, &q[tail % VERIFY_WINDOW], block, resend, bad))
					return -1;
				tail++;
				progress_tick(&m->sh->pg, 0);
			}
			if (hash_req(m, &v, block))
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

static int verify(struct mig *m)
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
			if (send_flush(m) || wait_flushed(m))
				return -1;
		}
	}
	return fail(m, "verification failed: %llu chunks still differ after being sent again",
		    (unsigned long long)bad);
}

/* ---- finish ------------------------------------------------------------------ */

static int finish(struct mig *m, uint8_t handoff, int grow, struct proto_report *rep)
{
	struct proto_frame f;
	struct wbuf w;
	uint8_t b[32];
	uint32_t i;
	int r;

	wbuf_init(&w, b, sizeof(b));
	proto_enc_finish(&w, grow ? PROTO_PLAN_GROW : 0, handoff);
	if (agent_send(m->ac, &w))
		return fail(m, "connection lost before FINISH");
	for (;;) {
		r = agent_recv(m->ac, &f, FINISH_MS);
		if (r != 1)
			return fail(m, "no report from the destination after FINISH (%s)",
				    r == 0 ? "connection closed" : strerror(-r));
		if (f.type == PROTO_FLUSHED)
			continue;
		break;
	}
	if (f.type == PROTO_ERROR) {
		agent_error_frame(&f, m->err, sizeof(m->err));
		return -1;
	}
	if (proto_dec_finished(&f, rep))
		return fail(m, "unexpected %s after FINISH", proto_type_name(f.type));
	if (!m->json) {
		printf("destination report:\n");
		for (i = 0; i < rep->n; i++)
			printf("  %s  %s\n",
			       rep->line[i].level == PROTO_PASS ? "PASS" :
			       rep->line[i].level == PROTO_WARN ? "WARN" : "FAIL",
			       rep->line[i].text);
	} else {
		for (i = 0; i < rep->n; i++) {
			char t[600];

			progress_event(&m->sh->pg, "report",
				       "level", rep->line[i].level == PROTO_PASS ? "\"pass\"" :
				       rep->line[i].level == PROTO_WARN ? "\"warn\"" : "\"fail\"",
				       "text", json_str(rep->line[i].text, t, sizeof(t)), NULL);
		}
	}
	return 0;
}

/* ---- state, incremental passes, cutover ------------------------------------------ */

static void on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}

static void on_cutover(int sig)
{
	(void)sig;
	got_cutover = 1;
}

static int load_or_start_state(struct mig *m, const struct agent_target *t, const char *dir,
			       int restart)
{
	char fp[TLS_FP_TEXT_MAX], err[400];
	struct mstate old;
	uint32_t i;
	int r;

	tls_token_fingerprint(&t->token, fp, sizeof(fp));
	memset(&m->sh->st, 0, sizeof(m->sh->st));
	/* The destination is who holds the token, wherever it is reached
	 * (a proxy, a new address after a reboot). */
	snprintf(m->sh->st.dest, sizeof(m->sh->st.dest), "%s", fp);
	m->sh->st.chunk = m->plan.chunk;
	m->sh->st.n = m->n;
	for (i = 0; i < m->n; i++) {
		snprintf(m->sh->st.d[i].src, sizeof(m->sh->st.d[i].src), "%s", m->s[i].path);
		snprintf(m->sh->st.d[i].dst, sizeof(m->sh->st.d[i].dst), "%s", m->s[i].dst);
		m->sh->st.d[i].size = m->s[i].bm.size;
		m->sh->st.d[i].lsec = m->s[i].bm.lsec;
	}
	if (dir[0])
		state_path(dir, m->sh->st.dest, m->sh->state_file, sizeof(m->sh->state_file));
	r = m->sh->state_file[0] && !restart ? state_load(m->sh->state_file, &old, err, sizeof(err)) : -ENOENT;
	if (r == -EBADMSG)
		return fail(m, "%s; move it away or run with --restart to start over", err);
	if (r == 0) {
		char why[400] = "";

		if (old.n != m->n || old.chunk != m->plan.chunk || strcmp(old.dest, m->sh->st.dest))
			snprintf(why, sizeof(why), "%u disk(s) at %u-byte chunks to %s", old.n,
				 old.chunk, old.dest);
		for (i = 0; !why[0] && i < m->n; i++)
			if (strcmp(old.d[i].src, m->sh->st.d[i].src) || strcmp(old.d[i].dst, m->sh->st.d[i].dst) ||
			    old.d[i].size != m->sh->st.d[i].size || old.d[i].lsec != m->sh->st.d[i].lsec)
				if (snprintf(why, sizeof(why), "%s (%llu bytes) -> %s", old.d[i].src,
					     (unsigned long long)old.d[i].size, old.d[i].dst) < 0)
					why[0] = '?';
		if (why[0])
			return fail(m, "%s holds an unfinished migration of %s, not this one; "
				       "run with --restart to start over", m->sh->state_file, why);
		m->plan.session = old.session;
		m->plan.seed = old.seed;
		for (i = 0; i < m->n; i++)
			m->sh->st.d[i].acked = old.d[i].acked;
		log_info("continuing the migration recorded in %s", m->sh->state_file);
	} else {
		if (getrandom(&m->plan.session, sizeof(m->plan.session), 0) < 0 ||
		    getrandom(&m->plan.seed, sizeof(m->plan.seed), 0) < 0)
			return fail(m, "getrandom: %s", strerror(errno));
		if (!m->plan.session)
			m->plan.session = 1;
	}
	m->sh->st.session = m->plan.session;
	m->sh->st.seed = m->plan.seed;
	save_state(m);
	return 0;
}

static void report_pass(struct mig *m, unsigned pass, uint64_t t0)
{
	char a[32], b[32];
	double secs = (double)(time_now_ms() - t0) / 1000.0;

	if (m->json) {
		char p1[16], c1[32], s1[32], d1[32];

		snprintf(p1, sizeof(p1), "%u", pass);
		snprintf(c1, sizeof(c1), "%llu", (unsigned long long)m->compared);
		snprintf(s1, sizeof(s1), "%llu", (unsigned long long)m->changed);
		snprintf(d1, sizeof(d1), "%.3f", secs);
		progress_event(&m->sh->pg, "pass", "pass", p1, "compared", c1, "changed", s1,
			       "seconds", d1, NULL);
	} else {
		fprintf(stderr, "ferry: pass %u: compared %s, %s changed and sent, %.1f s\n", pass,
			fmt_bytes(m->compared, a, sizeof(a)), fmt_bytes(m->changed, b, sizeof(b)),
			secs);
	}
}

/* Probes the maps again (blocks freed since are not sent, new ones are)
 * and compares everything by hashes. */
/* Maps an image: its allocated chunks, its partition table for the plan. */
static int image_probe(struct src *s, uint32_t chunk, char *err, size_t errcap)
{
	struct img_info info;
	struct bm_disk *d = &s->bm;
	enum ptable_kind kind = PTABLE_NONE;
	char perr[PTABLE_ERR_LEN];
	uint64_t c;
	int r;

	if (!s->img && (r = img_open(s->path, s->format[0] ? s->format : NULL, &s->img, err,
				     errcap)))
		return r;
	img_info(s->img, &info);
	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "%s", s->path);
	d->size = info.virtual_size;
	d->lsec = 512;
	if (d->size == 0 || d->size % 512) {
		snprintf(err, errcap, "%s: virtual size %llu is not a whole number of 512-byte "
			 "sectors", s->path, (unsigned long long)d->size);
		return -EINVAL;
	}
	d->chunk = chunk;
	d->nchunks = (d->size + chunk - 1) / chunk;
	d->map = calloc((size_t)((d->nchunks + 7) / 8), 1);
	if (!d->map) {
		snprintf(err, errcap, "%s: no memory for the allocation map", s->path);
		return -ENOMEM;
	}
	if ((r = img_alloc_map(s->img, chunk, d->map, d->nchunks, err, errcap)))
		return r;
	for (c = 0; c < d->nchunks; c++)
		if (bm_test(d, c))
			d->map_bytes += (c + 1) * chunk > d->size ? d->size - c * chunk : chunk;
	/* The first MiB holds the partition table, if any. */
	if (src_read(s, rbuf0, d->size < PTABLE_REGION_LEN ? (size_t)d->size : PTABLE_REGION_LEN,
		     0, err, errcap) == 0 &&
	    ptable_detect(rbuf0, d->size < PTABLE_REGION_LEN ? (size_t)d->size : PTABLE_REGION_LEN,
			  512, &kind, perr, sizeof(perr)) == 0)
		snprintf(d->table, sizeof(d->table), "%s",
			 kind == PTABLE_GPT ? "gpt" : kind == PTABLE_MBR ? "dos" : "");
	snprintf(d->fstype, sizeof(d->fstype), "%s", info.format);
	log_info("%s: %s%s%s, virtual %llu bytes, %llu allocated%s%s", s->path, info.format,
		 info.subformat[0] ? " " : "", info.subformat, (unsigned long long)info.virtual_size,
		 (unsigned long long)info.allocated, info.warnings[0] ? "; " : "", info.warnings);
	return 0;
}

static void src_free(struct src *s)
{
	if (s->img) {
		free(s->bm.map);
		s->bm.map = NULL;
		img_close(s->img);
		s->img = NULL;
	} else {
		bm_free(&s->bm);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->dfd >= 0)
		close(s->dfd);
	s->fd = s->dfd = -1;
}

static int sync_pass(struct mig *m)
{
	char err[AGENT_ERR_MAX];
	uint32_t i;

	sync();
	for (i = 0; i < m->n; i++) {
		if (m->s[i].img) {
			/* An image file does not change under a sync. */
			m->cmp_end[i] = m->s[i].bm.size;
			m->start[i] = m->s[i].bm.size;
			continue;
		}
		bm_free(&m->s[i].bm);
		if (bm_probe(m->s[i].path, m->plan.chunk, &m->s[i].bm, err, sizeof(err)))
			return fail(m, "%s", err);
		if (m->s[i].bm.size != m->plan.disks[i].src_size)
			return fail(m, "%s changed size during the migration (%llu bytes, was %llu)",
				    m->s[i].path, (unsigned long long)m->s[i].bm.size,
				    (unsigned long long)m->plan.disks[i].src_size);
		m->cmp_end[i] = m->s[i].bm.size;
		m->start[i] = m->s[i].bm.size;
	}
	m->compared = m->changed = 0;
	return transfer(m);
}

static int sync_loop(struct mig *m, unsigned interval)
{
	unsigned pass = 1;

	log_info("in step: incremental passes every %u s; SIGUSR1 cuts over, SIGINT stops",
		 interval);
	for (;;) {
		uint64_t t0;
		unsigned waited = 0;

		while (waited < interval && !got_stop && !got_cutover) {
			sleep(1);
			waited++;
			/* Keep the session alive and notice a dead one early. */
			if (pump(m, 0))
				return -1;
		}
		if (got_stop || got_cutover)
			return 0;
		t0 = time_now_ms();
		progress_init(&m->sh->pg, m->json, 0);
		m->sh->pg.phase = "comparing";
		if (sync_pass(m))
			return -1;
		report_pass(m, ++pass, t0);
	}
}

/* The cutover pass: source filesystems frozen, the delta sent, thawed. */
static int final_pass(struct mig *m, unsigned timeout)
{
	const char *paths[PROTO_MAX_DISKS];
	char err[AGENT_ERR_MAX];
	uint64_t ms, t0 = time_now_ms();
	uint32_t i;
	int r;

	for (i = 0; i < m->n; i++)
		paths[i] = m->s[i].path;
	sync();
	if (freeze_begin(paths, m->n, timeout, err, sizeof(err)))
		return fail(m, "freeze: %s", err);
	log_info("frozen for the final pass: %s", err);
	/* Nothing goes to a frozen filesystem: no state, no log file. */
	log_pause_file(1);
	progress_init(&m->sh->pg, m->json, 0);
	m->sh->pg.phase = "final";
	r = sync_pass(m);
	ms = freeze_end();
	log_pause_file(0);
	save_state(m);
	if (freeze_expired())
		return fail(m, "the final pass took longer than the %u s freeze timeout; the "
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
	report_pass(m, 0, t0);
	return 0;
}

/* ---- the command --------------------------------------------------------------- */

/* --bwlimit: a bare number is KB/s (the seed tool's BandwidthLimit);
 * K, M, G are KiB/MiB/GiB per second; Kbit, Mbit, Gbit are bits. */
static int parse_rate(const char *s, double *out)
{
	static const struct {
		const char *sfx;
		double mul;
	} u[] = { { "Gbit", 1e9 / 8 }, { "Mbit", 1e6 / 8 }, { "Kbit", 1e3 / 8 },
		  { "G", 1073741824.0 }, { "M", 1048576.0 }, { "K", 1024.0 }, { "", 1024.0 } };
	char num[24];
	size_t n = strlen(s), i;
	uint64_t v;

	for (i = 0; i < FERRY_ARRAY_LEN(u); i++) {
		size_t k = strlen(u[i].sfx);

		if (n <= k || n - k >= sizeof(num) || strcmp(s + n - k, u[i].sfx))
			continue;
		memcpy(num, s, n - k);
		num[n - k] = 0;
		if (parse_u64(num, 1ull << 40, &v) || v == 0)
			return -EINVAL;
		*out = (double)v * u[i].mul;
		return *out >= 1024.0 ? 0 : -EINVAL; /* at least 1 KB/s */
	}
	return -EINVAL;
}

/* "90", "90s", "30m", "1h", "7d": seconds, at most 30 days. */
static int parse_duration(const char *s, uint64_t *out)
{
	char num[24];
	size_t n = strlen(s);
	uint64_t mul = 1, v;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's': mul = 1; num[n - 1] = 0; break;
	case 'm': mul = 60; num[n - 1] = 0; break;
	case 'h': mul = 3600; num[n - 1] = 0; break;
	case 'd': mul = 86400; num[n - 1] = 0; break;
	}
	if (parse_u64(num, 30ull * 86400 / mul, &v) || v == 0)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int parse_handoff(const char *s, uint8_t *h)
{
	static const char *const names[] = { "reboot", "kexec", "poweroff", "shell" };
	uint8_t i;

	for (i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*h = i;
			return 0;
		}
	return -EINVAL;
}

static void summary(struct mig *m, const char *result, uint64_t t0, uint64_t total_size,
		    uint64_t unused)
{
	char a[32], b[32], c[32], d[32], e[32];
	double secs = (double)(time_now_ms() - t0) / 1000.0;

	if (m->json) {
		char r[64], s1[32], s2[32], s3[32], s4[32], s5[32], s6[32], s7[32], s8[32], s9[32];

		snprintf(r, sizeof(r), "\"%s\"", result);
		snprintf(s1, sizeof(s1), "%llu", (unsigned long long)m->bytes_read);
		snprintf(s2, sizeof(s2), "%llu", (unsigned long long)m->bytes_sent);
		snprintf(s3, sizeof(s3), "%llu", (unsigned long long)unused);
		snprintf(s4, sizeof(s4), "%llu", (unsigned long long)m->zero_bytes);
		snprintf(s5, sizeof(s5), "%.3f", secs);
		snprintf(s6, sizeof(s6), "%llu", (unsigned long long)total_size);
		snprintf(s7, sizeof(s7), "%llu", (unsigned long long)m->resent);
		snprintf(s8, sizeof(s8), "%llu", (unsigned long long)m->z_total_in);
		snprintf(s9, sizeof(s9), "%llu", (unsigned long long)m->z_total_out);
		progress_event(&m->sh->pg, "summary", "result", r, "disk_bytes", s6, "bytes_read", s1,
			       "bytes_sent", s2, "skipped_unused", s3, "skipped_zero", s4,
			       "resent", s7, "compressed_in", s8, "compressed_out", s9,
			       "seconds", s5, NULL);
		return;
	}
	fprintf(stderr,
		"ferry: %s: %u disk(s), %s in all; read %s, sent %s, skipped %s unused "
		"and %s of zeros; %.1f s\n",
		result, m->n, fmt_bytes(total_size, a, sizeof(a)),
		fmt_bytes(m->bytes_read, b, sizeof(b)), fmt_bytes(m->bytes_sent, c, sizeof(c)),
		fmt_bytes(unused, d, sizeof(d)), fmt_bytes(m->zero_bytes, e, sizeof(e)), secs);
}

static const char import_usage[] =
	"usage: ferry import IMAGE[=DST]... --to HOST[:PORT] [--token T | --token-file F]\n"
	"                    [--format raw|qcow2|vhd|vmdk] [--grow] [--checksum] [--json]\n"
	"                    [the other options of ferry migrate]\n"
	"       ferry import --inspect IMAGE... [--format F] [--json]\n"
	"\n"
	"Sends disk images (raw, qcow2 v2/v3, VHD fixed/dynamic, VMDK monolithicSparse/\n"
	"streamOptimized) instead of live disks: only their allocated data goes on the\n"
	"wire. The format is detected by its magic and checked against --format; images\n"
	"that reference other files (backing files, external data, extents) are refused.\n";

static int inspect_images(const char *const *specs, size_t n, const char *format, int json)
{
	char err[AGENT_ERR_MAX], a[32], b[32], c[32], path[SRC_PATH_MAX];
	int rc = AGENT_EXIT_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *eq = strrchr(specs[i], '=');
		size_t l = eq ? (size_t)(eq - specs[i]) : strlen(specs[i]);
		struct img_info info;
		struct img *im;

		snprintf(path, sizeof(path), "%.*s", (int)l, specs[i]);
		if (img_open(path, format, &im, err, sizeof(err))) {
			fprintf(stderr, "ferry: error: %s\n", err);
			rc = AGENT_EXIT_FAIL;
			continue;
		}
		img_info(im, &info);
		if (json) {
			char j1[600], j2[400], j3[600];

			printf("{\"event\":\"image\",\"path\":%s,\"format\":\"%s\",\"subformat\":\"%s\","
			       "\"virtual_size\":%llu,\"file_size\":%llu,\"allocated\":%llu,"
			       "\"features\":%s,\"warnings\":%s}\n",
			       json_str(path, j1, sizeof(j1)), info.format, info.subformat,
			       (unsigned long long)info.virtual_size, (unsigned long long)info.file_size,
			       (unsigned long long)info.allocated,
			       json_str(info.features, j2, sizeof(j2)),
			       json_str(info.warnings, j3, sizeof(j3)));
		} else {
			printf("%s: %s%s%s, virtual size %s (%llu bytes), file %s, allocated %s%s%s%s%s\n",
			       path, info.format, info.subformat[0] ? " " : "", info.subformat,
			       fmt_bytes(info.virtual_size, a, sizeof(a)),
			       (unsigned long long)info.virtual_size,
			       fmt_bytes(info.file_size, b, sizeof(b)),
			       fmt_bytes(info.allocated, c, sizeof(c)),
			       info.features[0] ? "; " : "", info.features,
			       info.warnings[0] ? "; warning: " : "", info.warnings);
		}
		img_close(im);
	}
	return rc;
}

static int run(int argc, char **argv, int sync_mode, int import_mode)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 'o' },
		{ "proxy", required_argument, NULL, 'P' },
		{ "listen", required_argument, NULL, 'l' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "disk", required_argument, NULL, 'd' },
		{ "checksum", no_argument, NULL, 'c' },
		{ "grow", no_argument, NULL, 'g' },
		{ "handoff", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "wait", required_argument, NULL, 'w' },
		{ "chunk", required_argument, NULL, 'C' },
		{ "flush-every", required_argument, NULL, 'F' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "restart", no_argument, NULL, 'R' },
		{ "retries", required_argument, NULL, 'r' },
		{ "sync-interval", required_argument, NULL, 'I' },
		{ "freeze", no_argument, NULL, 'z' },
		{ "freeze-timeout", required_argument, NULL, 'Z' },
		{ "bwlimit", required_argument, NULL, 'B' },
		{ "format", required_argument, NULL, 'f' },
		{ "ignore-check", no_argument, NULL, 'K' },
		{ "inspect", no_argument, NULL, 'i' },
		{ "compress", required_argument, NULL, 'x' },
		{ "streams", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct mig m;
	static struct proto_report rep;
	struct agent_target t;
	struct proto_inventory inv;
	const char *to = NULL, *tok = NULL, *tokfile = NULL, *specs[PROTO_MAX_DISKS];
	const char *proxy = NULL, *listen = NULL;
	char paths[PROTO_MAX_DISKS][SRC_PATH_MAX], err[AGENT_ERR_MAX];
	uint64_t v, t0, total_size = 0, unused = 0, send_total = 0, chunk = BM_CHUNK_DEFAULT;
	uint8_t handoff = 0;
	int c, checksum = 0, grow = 0, rc = AGENT_EXIT_FAIL, restart = 0, freeze = 0;
	unsigned retries = 8, sync_interval = 0, freeze_timeout = 60;
	char state_dir[300] = STATE_DIR_DEFAULT;
	const char *format = NULL;
	int inspect = 0, ignore_check = 0;
	uint32_t want_streams = 1;
	size_t nspec = 0, i;

	memset(&t, 0, sizeof(t));
	memset(&m, 0, sizeof(m));
	memset(&shared, 0, sizeof(shared));
	pthread_mutex_init(&shared.lock, NULL);
	m.sh = &shared;
	m.rbuf = rbuf0;
	m.zout = zout0;
	m.diffs = diffs0;
	m.t = &t;
	{
		long nc = sysconf(_SC_NPROCESSORS_ONLN);

		want_streams = nc < 1 ? 1 : nc > PROTO_STREAMS_MAX ? PROTO_STREAMS_MAX : (uint32_t)nc;
	}
	m.flush_every = FLUSH_EVERY_DEFAULT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': to = optarg; break;
		case 'P': proxy = optarg; break;
		case 'l': listen = optarg; break;
		case 't': tok = optarg; break;
		case 'T': tokfile = optarg; break;
		case 'c': checksum = 1; break;
		case 'g': grow = 1; break;
		case 'j': m.json = 1; break;
		case 'd':
			if (nspec == PROTO_MAX_DISKS) {
				fprintf(stderr, "ferry: at most %d disks\n", PROTO_MAX_DISKS);
				return AGENT_EXIT_USAGE;
			}
			specs[nspec++] = optarg;
			break;
		case 'H':
			if (parse_handoff(optarg, &handoff)) {
				fprintf(stderr, "ferry: --handoff %s: want reboot, kexec, poweroff or shell\n",
					optarg);
				return AGENT_EXIT_USAGE;
			}
			break;
		case 'L': {
			int fd = open(optarg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

			if (fd < 0) {
				fprintf(stderr, "ferry: --log-file %s: %s\n", optarg, strerror(errno));
				return AGENT_EXIT_USAGE;
			}
			log_set_file(fd);
			break;
		}
		case 'v':
			if (parse_u64(optarg, 3, &v) || v < 1) {
				fprintf(stderr, "ferry: --log-level %s: want 1, 2 or 3\n", optarg);
				return AGENT_EXIT_USAGE;
			}
			log_init("ferry", (int)v);
			break;
		case 'w':
			if (parse_u64(optarg, 86400, &v)) {
				fprintf(stderr, "ferry: --wait %s: want seconds\n", optarg);
				return AGENT_EXIT_USAGE;
			}
			t.wait_s = (int)v;
			break;
		case 'C':
			if (parse_u64(optarg, PROTO_DATA_MAX / 1024, &v) || v < 4 || (v & (v - 1))) {
				fprintf(stderr, "ferry: --chunk %s: want KiB, a power of two from 4 to %u\n",
					optarg, PROTO_DATA_MAX / 1024);
				return AGENT_EXIT_USAGE;
			}
			chunk = v * 1024;
			break;
		case 'F':
			if (parse_u64(optarg, 1u << 20, &v) || v < 1) {
				fprintf(stderr, "ferry: --flush-every %s: want MiB (1 or more)\n", optarg);
				return AGENT_EXIT_USAGE;
			}
			m.flush_every = v << 20;
			break;
		case 'S':
			if (strlen(optarg) >= sizeof(state_dir)) {
				fprintf(stderr, "ferry: --state-dir: path too long\n");
				return AGENT_EXIT_USAGE;
			}
			snprintf(state_dir, sizeof(state_dir), "%s", optarg);
			break;
		case 'B':
			if (parse_rate(optarg, &m.sh->bw_rate)) {
				fprintf(stderr, "ferry: --bwlimit %s: want KB/s (e.g. 51200), or 50M, "
						"200Mbit, 1G\n", optarg);
				return AGENT_EXIT_USAGE;
			}
			break;
		case 'x':
			if (parse_u64(optarg, 19, &v)) {
				fprintf(stderr, "ferry: --compress %s: want a zstd level 0 (off) to 19\n",
					optarg);
				return AGENT_EXIT_USAGE;
			}
			m.zlevel = (int)v;
			break;
		case 'n':
			if (parse_u64(optarg, PROTO_STREAMS_MAX, &v) || v < 1) {
				fprintf(stderr, "ferry: --streams %s: want 1 to %d\n", optarg,
					PROTO_STREAMS_MAX);
				return AGENT_EXIT_USAGE;
			}
			want_streams = (uint32_t)v;
			break;
		case 'f':
			if (!import_mode || (strcmp(optarg, "raw") && strcmp(optarg, "qcow2") &&
					     strcmp(optarg, "vhd") && strcmp(optarg, "vpc") &&
					     strcmp(optarg, "vmdk"))) {
				fprintf(stderr, "ferry: --format %s: want raw, qcow2, vhd or vmdk "
						"(ferry import)\n", optarg);
				return AGENT_EXIT_USAGE;
			}
			format = strcmp(optarg, "vpc") ? optarg : "vhd";
			break;
		case 'i': inspect = 1; break;
		case 'K': ignore_check = 1; break;
		case 'R': restart = 1; break;
		case 'z': freeze = 1; break;
		case 'r':
		case 'Z':
		case 'I':
			if (c == 'I' ? parse_duration(optarg, &v) : parse_u64(optarg, 100000, &v)) {
				fprintf(stderr, "ferry: --%s %s: want %s\n",
					c == 'r' ? "retries" : c == 'Z' ? "freeze-timeout" : "sync-interval",
					optarg, c == 'I' ? "a duration (90s, 30m, 1h, 7d)" : "a number");
				return AGENT_EXIT_USAGE;
			}
			if (c == 'r')
				retries = (unsigned)v;
			else if (c == 'Z')
				freeze_timeout = v ? (unsigned)v : 1;
			else
				sync_interval = (unsigned)v;
			break;
		case 'h':
			fputs(import_mode ? import_usage : migrate_usage, stdout);
			return AGENT_EXIT_OK;
		default:
			fputs(import_mode ? import_usage : migrate_usage, stderr);
			return AGENT_EXIT_USAGE;
		}
	}
	if (sync_mode && (sync_interval || freeze || grow)) {
		fprintf(stderr, "ferry: sync runs one pass: --sync-interval, --freeze and --grow "
				"belong to ferry migrate\n");
		return AGENT_EXIT_USAGE;
	}
	if (import_mode) {
		/* ferry import IMAGE[=DST]... [--disk DST]...: the images are the
		 * sources; each --disk names the destination of the next image
		 * that has no =DST. */
		const char *dsts[PROTO_MAX_DISKS];
		static char joined[PROTO_MAX_DISKS][SRC_PATH_MAX + PROTO_NAME_MAX + 2];
		size_t nd = nspec, k = 0;

		memcpy(dsts, specs, nd * sizeof(*dsts));
		nspec = 0;
		for (; optind < argc; optind++) {
			if (nspec == PROTO_MAX_DISKS) {
				fprintf(stderr, "ferry: at most %d images\n", PROTO_MAX_DISKS);
				return AGENT_EXIT_USAGE;
			}
			specs[nspec++] = argv[optind];
		}
		if (nspec == 0) {
			fprintf(stderr, "ferry: import: name an image file\n%s", import_usage);
			return AGENT_EXIT_USAGE;
		}
		for (i = 0; i < nspec && k < nd; i++) {
			if (strchr(specs[i], '='))
				continue;
			snprintf(joined[i], sizeof(joined[i]), "%s=%s", specs[i], dsts[k++]);
			specs[i] = joined[i];
		}
		if (k < nd) {
			fprintf(stderr, "ferry: import: more --disk destinations than images\n");
			return AGENT_EXIT_USAGE;
		}
		if (inspect)
			return inspect_images(specs, nspec, format, m.json);
	}
	if (optind != argc) {
		fprintf(stderr, "ferry: migrate: unexpected argument '%s'\n", argv[optind]);
		return AGENT_EXIT_USAGE;
	}
	if (agent_parse_target(to, listen, proxy, &t, err, sizeof(err)) ||
	    agent_load_token(tok, tokfile, &t.token, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	t0 = time_now_ms();
	/* A session of ours that just died may still hold the destination:
	 * the checks and the migration wait for it to let go. */
	t.busy_s = 30;
	if (!sync_mode && !import_mode) {
		/* The checks of `ferry check` first (the seed tool's --check):
		 * a FAIL stops here, before anything is sent. */
		static struct check_result cres;
		struct check_opts co = { .target = &t, .disks = specs, .ndisks = nspec,
					 .chunk = (uint32_t)chunk, .out = stdout, .json = m.json };

		if (check_run(&co, &cres) == 0 && cres.count[CHECK_FAIL]) {
			if (!ignore_check) {
				fprintf(stderr, "ferry: error: %u check(s) failed (above): fix them, or "
						"run with --ignore-check\n", cres.count[CHECK_FAIL]);
				mem_wipe(&t.token, sizeof(t.token));
				return AGENT_EXIT_CHECK;
			}
			log_info("%u check(s) failed; going on (--ignore-check)",
				 cres.count[CHECK_FAIL]);
		}
	}
	m.t_start_ms = t0;
	m.sh->bw_burst = (uint32_t)chunk;
	m.sh->bw_tokens = (double)chunk;
	m.sh->bw_last_ns = now_ns();
	m.s = srcs;
	m.ac = &conn;
	progress_init(&m.sh->pg, m.json, 0);

	/* 1. The sources, probed before anything goes on the wire; what the
	 * running system has in its page cache goes to the disks first. */
	sync();
	if (nspec == 0) {
		if (src_discover(paths, PROTO_MAX_DISKS, &nspec, err, sizeof(err))) {
			fail(&m, "%s", err);
			goto out;
		}
		for (i = 0; i < nspec; i++)
			srcs[i].dst[0] = 0, snprintf(srcs[i].path, SRC_PATH_MAX, "%s", paths[i]);
	} else {
		for (i = 0; i < nspec; i++) {
			const char *eq = strrchr(specs[i], '=');
			size_t l = eq ? (size_t)(eq - specs[i]) : strlen(specs[i]);

			if (l == 0 || l >= SRC_PATH_MAX || (eq && (!eq[1] || strlen(eq + 1) >= PROTO_NAME_MAX))) {
				fprintf(stderr, "ferry: --disk %s: want SRC or SRC=DST\n", specs[i]);
				return AGENT_EXIT_USAGE;
			}
			memcpy(srcs[i].path, specs[i], l);
			srcs[i].path[l] = 0;
			snprintf(srcs[i].dst, sizeof(srcs[i].dst), "%s", eq ? eq + 1 : "");
		}
	}
	m.n = (uint32_t)nspec;
	for (i = 0; i < m.n; i++) {
		char whole[SRC_PATH_MAX];

		srcs[i].fd = -1;
		srcs[i].dfd = -1;
		srcs[i].img = NULL;
		pthread_mutex_init(&srcs[i].img_lock, NULL);
		whole[0] = 0;
		if (!import_mode && src_is_partition(srcs[i].path, whole, sizeof(whole))) {
			fail(&m, "%s is a partition, not a disk: give the whole disk%s%s", srcs[i].path,
			     whole[0] ? " " : "", whole);
			goto out;
		}
		if (import_mode) {
			snprintf(srcs[i].format, sizeof(srcs[i].format), "%s", format ? format : "");
			if (image_probe(&srcs[i], (uint32_t)chunk, err, sizeof(err))) {
				fail(&m, "%s", err);
				goto out;
			}
		} else {
			if (bm_probe(srcs[i].path, (uint32_t)chunk, &srcs[i].bm, err, sizeof(err))) {
				fail(&m, "%s", err);
				goto out;
			}
			srcs[i].fd = open(srcs[i].path, O_RDONLY | O_CLOEXEC);
			if (srcs[i].fd < 0) {
				fail(&m, "%s: %s", srcs[i].path, strerror(errno));
				goto out;
			}
			{
				struct stat st;

				if (fstat(srcs[i].fd, &st) == 0 && S_ISBLK(st.st_mode))
					srcs[i].dfd = open(srcs[i].path,
							   O_RDONLY | O_DIRECT | O_CLOEXEC);
			}
		}
		total_size += srcs[i].bm.size;
		unused += srcs[i].bm.size - srcs[i].bm.map_bytes;
		send_total += srcs[i].bm.map_bytes;
	}

	/* 2. The destination, the mapping, the state of an earlier run. */
	if (agent_connect(&t, &conn, &inv, err, sizeof(err))) {
		fail(&m, "%s", err);
		goto out;
	}
	if (map_disks(&m, &inv))
		goto out_conn;
	print_plan(&m, conn.peer);
	m.plan.chunk = (uint32_t)chunk;
	m.nstreams = streams_for(&m, want_streams);
	m.plan.streams = (uint8_t)m.nstreams;
	if (m.nstreams > 1)
		log_info("%u streams", m.nstreams);
	m.plan.flags = (uint8_t)((checksum ? PROTO_PLAN_CHECKSUM : 0) | (grow ? PROTO_PLAN_GROW : 0));
	m.plan.ndisks = m.n;
	for (i = 0; i < m.n; i++) {
		struct proto_plan_disk *d = &m.plan.disks[i];
		const struct bm_disk *b = &srcs[i].bm;

		snprintf(d->dst, sizeof(d->dst), "%s", srcs[i].dst);
		snprintf(d->src, sizeof(d->src), "%.*s", (int)sizeof(d->src) - 1, b->path);
		d->src_size = b->size;
		d->lsec = b->lsec;
		d->table = !strcmp(b->table, "gpt") ? PROTO_TABLE_GPT :
			   !strcmp(b->table, "dos") ? PROTO_TABLE_MBR : PROTO_TABLE_NONE;
		d->send_bytes = b->map_bytes;
	}
	if (load_or_start_state(&m, &t, state_dir, restart))
		goto out_conn;

	if (sync_interval) {
		/* From now on SIGINT/SIGTERM stop between passes (the destination
		 * stays in migration mode) and SIGUSR1 cuts over. */
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sa.sa_handler = on_cutover;
		sigaction(SIGUSR1, &sa, NULL);
	}

	/* 3. The passes: the destination checks the plan before opening a
	 * disk; a lost connection is retried with backoff and resumed. */
	for (unsigned attempt = 0, backoff = 1;; attempt++) {
		if (!conn.tls && agent_connect(&t, &conn, &inv, err, sizeof(err))) {
			fail(&m, "%s", err);
			m.lost = 1;
		} else if (send_plan(&m, sync_mode) == 0) {
			uint64_t done = 0;

			for (i = 0; i < m.n; i++)
				done += m.start[i] < srcs[i].bm.map_bytes ? m.start[i] : 0;
			progress_init(&m.sh->pg, m.json, sync_mode ? send_total : send_total);
			m.sh->pg.phase = sync_mode ? "comparing" : "sending";
			if (transfer(&m) == 0)
				break;
		}
		if (!m.lost || attempt >= retries)
			goto out_conn;
		if (conn.tls) {
			tls_close(conn.tls, 500);
			conn.tls = NULL;
		}
		progress_break(&m.sh->pg);
		log_info("%s; reconnecting in %u s (attempt %u of %u)", m.err, backoff,
			 attempt + 1, retries);
		if (m.json) {
			char a1[16], e1[AGENT_ERR_MAX + 64];

			snprintf(a1, sizeof(a1), "%u", attempt + 1);
			progress_event(&m.sh->pg, "reconnect", "attempt", a1, "reason",
				       json_str(m.err, e1, sizeof(e1)), NULL);
		}
		sleep(backoff);
		backoff = backoff < 16 ? backoff * 2 : 30;
		m.lost = 0;
		m.err[0] = 0;
	}
	progress_tick(&m.sh->pg, 1);
	progress_break(&m.sh->pg);
	if (m.json) {
		char a1[32];

		snprintf(a1, sizeof(a1), "%llu", (unsigned long long)m.sh->pg.done);
		progress_event(&m.sh->pg, sync_mode ? "synced" : "done", "sent", a1, NULL);
	}
	if (sync_mode) {
		report_pass(&m, 1, t0);
		agent_bye(&conn);
		rc = AGENT_EXIT_OK;
		summary(&m, "synced", t0, total_size, unused);
		goto out;
	}

	/* 4. Incremental passes while the source runs, then the cutover. */
	if (sync_interval && sync_loop(&m, sync_interval) < 0)
		goto out_conn;
	if (got_stop) {
		agent_bye(&conn);
		rc = AGENT_EXIT_OK;
		summary(&m, "interrupted: the destination stays in migration mode; run "
			    "ferry migrate again to continue", t0, total_size, unused);
		goto out;
	}
	if (freeze && final_pass(&m, freeze_timeout))
		goto out_conn;

	/* 5. Verify, finish, hand off. */
	if (checksum && verify(&m))
		goto out_conn;
	if (finish(&m, handoff, grow, &rep))
		goto out_conn;
	tls_close(conn.tls, 2000);
	conn.tls = NULL;
	if (m.sh->state_file[0])
		state_remove(m.sh->state_file);
	rc = AGENT_EXIT_OK;
	summary(&m, rep.verdict == PROTO_FAIL ? "migrated, but the destination may not boot" :
		    "migrated", t0, total_size, unused);
	goto out;
out_conn:
	if (conn.tls) {
		tls_close(conn.tls, 1000);
		conn.tls = NULL;
	}
out:
	progress_break(&m.sh->pg);
	if (rc != AGENT_EXIT_OK) {
		char e[AGENT_ERR_MAX + 64];

		if (m.json)
			progress_event(&m.sh->pg, "error", "message",
				       json_str(m.err, e, sizeof(e)), NULL);
		fprintf(stderr, "ferry: error: %s\n", m.err);
		summary(&m, "failed", t0, total_size, unused);
	}
	for (i = 0; i < m.n; i++)
		src_free(&srcs[i]);
	mem_wipe(&t.token, sizeof(t.token));
	return rc;
}

int cmd_migrate(int argc, char **argv)
{
	return run(argc, argv, 0, 0);
}

int cmd_sync(int argc, char **argv)
{
	return run(argc, argv, 1, 0);
}

int cmd_import(int argc, char **argv)
{
	return run(argc, argv, 0, 1);
}
