/*
 * serve.c - the receiver: listens, runs one authenticated session at a
 * time through the protocol engine. Any other connection gets a thread of
 * its own: an extra stream of the migration in progress (HELLO names the
 * session and the stream) joins it, anything else is turned away with
 * "busy", so the session is never disturbed.
 * In reverse mode (ferry.connect=) it dials the agent instead, again
 * after every session until a migration finished; only TCP turns
 * around: we stay the TLS server with the token's key and the agent
 * still proves the token. No disk is opened here before the engine has
 * accepted the proof.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "init.h"
#include "proto/proto.h"
#include "receive.h"

#define HANDSHAKE_MS 10000	/* a TCG guest needs a few hundred ms */
#define HELLO_MS 10000		/* between handshake and HELLO */
#define IDLE_MS 120000		/* an authenticated agent that says nothing */
#define IO_MS 30000
#define TX_CAP (PROTO_HDR_LEN + PROTO_CTRL_MAX)
#define RX_CAP PROTO_FRAME_MAX
#define PROGRESS_MS 10000	/* a console line while receiving */
#define DIAL_MS 10000		/* one attempt to reach the agent */
#define DIAL_BACKOFF_MAX_S 30	/* between attempts, doubling from 1 s */

struct srv {
	const struct serve_config *cfg;
	struct tls_server *tls;
	int lfd;
	uint16_t port;
	char state[PROTO_LABEL_MAX];	/* for people: the banner */
	char word[16];			/* for programs: waiting, session, ... */
	char peer[NET_ADDR_MAX];
	uint64_t since_ms;
	int handoff;		/* set by a successful FINISH: INIT_HANDOFF_* */
};

/* A connection's own buffers for the data messages. */
struct conn_bufs {
	uint8_t *tx;		/* TX_CAP */
	uint8_t *hash;		/* PROTO_HASH_MAX * PROTO_HASH_LEN */
	uint8_t *scratch;	/* RECV_SCRATCH */
	uint64_t data;		/* DATA bytes applied */
};

static uint8_t rx_buf[RX_CAP];
static uint8_t tx_buf[TX_CAP];
static uint8_t hash_buf[PROTO_HASH_MAX * PROTO_HASH_LEN];
static uint8_t scratch[RECV_SCRATCH] __attribute__((aligned(RECV_ALIGN)));
static struct conn_bufs main_bufs = { tx_buf, hash_buf, scratch, 0 };
static struct proto_inventory inv_now;
/* The migration in progress: it outlives a session, so an agent that
 * reconnects (or is run again) continues where the disks are. */
static struct recv_state rs;
static int held;

static void set_state(struct srv *S, const char *state, const char *word)
{
	if (!strcmp(S->state, state))
		return;
	snprintf(S->state, sizeof(S->state), "%s", state);
	snprintf(S->word, sizeof(S->word), "%s", word);
	result_line("FERRY STATE %s", word);
	if (S->cfg->banner)
		banner_show(S->cfg, S->port, state);
}

static void fill_inventory(const struct srv *S, struct proto_inventory *inv)
{
	struct sysinfo si;
	size_t i;

	memset(inv, 0, sizeof(*inv));
	inv->version = PROTO_VERSION;
	snprintf(inv->server, sizeof(inv->server), "ferry-init %s", FERRY_VERSION);
	snprintf(inv->state, sizeof(inv->state), "%s", S->word);
	if (gethostname(inv->host, sizeof(inv->host) - 1) < 0)
		inv->host[0] = 0;
	if (sysinfo(&si) == 0)
		inv->mem_total = (uint64_t)si.totalram * si.mem_unit;
	inv->time_unix = (uint64_t)time(NULL);
	for (i = 0; i < S->cfg->ndisks && i < PROTO_MAX_DISKS; i++) {
		const struct disk_info *d = &S->cfg->disks[i];
		struct proto_disk *p = &inv->disks[i];

		snprintf(p->name, sizeof(p->name), "%s", d->name);
		p->size = d->size;
		p->lsec = d->lsec;
		p->psec = d->psec;
		p->flags = (uint8_t)((d->readonly ? PROTO_DISK_RO : 0) |
				     (d->removable ? PROTO_DISK_REMOVABLE : 0));
		snprintf(p->model, sizeof(p->model), "%s", d->model);
		snprintf(p->serial, sizeof(p->serial), "%s", d->serial);
	}
	inv->ndisks = (uint32_t)i;
	if (held) {
		recv_lock();
		inv->session = rs.session;
		inv->nsess = rs.ndisks;
		for (i = 0; i < rs.ndisks; i++) {
			snprintf(inv->sess[i].dst, sizeof(inv->sess[i].dst), "%s", rs.d[i].name);
			inv->sess[i].committed = rs.d[i].committed;
		}
		recv_unlock();
	}
}

static int send_frame(struct tls_conn *c, struct wbuf *w)
{
	int r;

	if (w->err)
		return w->err;
	if ((r = tls_write(c, w->p, w->len, IO_MS)))
		return r;
	return tls_flush(c, IO_MS);
}

static int send_error(struct tls_conn *c, uint16_t code, const char *text)
{
	uint8_t b[PROTO_HDR_LEN + PROTO_TEXT_MAX + 16];
	struct wbuf w;

	wbuf_init(&w, b, sizeof(b));
	proto_enc_error(&w, code, text);
	return send_frame(c, &w);
}

/* read_frame's own deadline passed: the peer is there (keepalive would
 * have said otherwise) but says nothing. Not -ETIMEDOUT, which is what
 * the socket reports when keepalive or unacknowledged data found the
 * peer gone. */
#define IDLE_EXPIRED (-ETIME)

/* Reads until one whole frame is held, within ms. 1 = frame, 0 = peer
 * closed, IDLE_EXPIRED, <0 error. Polls the listener too so a second
 * client is answered while this session waits. */
static int read_frame(struct srv *S, struct tls_conn *c, struct proto_rx *rx,
		      struct proto_frame *f, int ms, void (*on_listener)(struct srv *))
{
	uint64_t deadline = time_now_ms() + (uint64_t)ms;

	for (;;) {
		uint8_t *space;
		size_t avail;
		int r = proto_rx_next(rx, f);

		if (r != 0)
			return r;
		if (!tls_pending(c)) {
			struct pollfd p[2] = { { tls_fd(c), POLLIN, 0 }, { S->lfd, POLLIN, 0 } };
			int64_t left = (int64_t)(deadline - time_now_ms());

			if (left <= 0)
				return IDLE_EXPIRED;
			r = poll(p, on_listener ? 2 : 1, (int)left);
			if (r < 0 && errno != EINTR)
				return -errno;
			if (r <= 0)
				continue;
			if (on_listener && (p[1].revents & POLLIN))
				on_listener(S);
			if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		space = proto_rx_space(rx, &avail);
		if (avail == 0)
			return -EMSGSIZE;
		r = tls_read(c, space, avail, IO_MS);
		if (r <= 0)
			return r;
		proto_rx_commit(rx, (size_t)r);
	}
}

static void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* ---- extra connections: streams that join, and the turned away ---------- */

#define XCONN_MAX 16	/* threads for extra connections at once */

static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t xcond = PTHREAD_COND_INITIALIZER;
static unsigned xcount;			/* extra connection threads alive */
static int xfd[PROTO_STREAMS_MAX];	/* joined streams' sockets (-1 = free) */
static int xopen;			/* streams may join sess_plan */
static struct proto_plan sess_plan;	/* the plan of the session in progress */
static char sess_peer[NET_ADDR_MAX];	/* for "busy" */
static uint64_t sess_since_ms;
static struct srv *srv_g;

struct xconn {
	int fd;
	char peer[NET_ADDR_MAX];
};

static void progress(struct srv *S);
static int reply_inventory(struct srv *S, struct tls_conn *c, uint8_t type, uint8_t *tx,
			   size_t txcap);
static int data_step(struct srv *S, struct tls_conn *c, const struct proto_act *a, uint32_t k,
		     struct conn_bufs *b, const char *peer);

/* The session in progress takes streams now (after its PLAN), or no more. */
static void streams_open(const struct proto_plan *plan)
{
	pthread_mutex_lock(&xlock);
	sess_plan = *plan;
	xopen = 1;
	pthread_mutex_unlock(&xlock);
}

/* No more joins; streams still running are cut and waited for, so the
 * disks are never closed under one. */
static void streams_close(void)
{
	unsigned k, n = 0;

	pthread_mutex_lock(&xlock);
	xopen = 0;
	for (k = 1; k < PROTO_STREAMS_MAX; k++)
		if (xfd[k] >= 0) {
			shutdown(xfd[k], SHUT_RDWR);
			n++;
		}
	for (;;) {
		for (k = 1; k < PROTO_STREAMS_MAX && xfd[k] < 0; k++)
			;
		if (k == PROTO_STREAMS_MAX)
			break;
		pthread_cond_wait(&xcond, &xlock);
	}
	pthread_mutex_unlock(&xlock);
	if (n)
		log_debug("%u stream(s) still open were closed", n);
}

/* One joined stream: DATA, FLUSH, HASHES? until BYE. Its buffers are its own. */
static void stream_run(struct srv *S, struct tls_conn *c, struct proto_srv *eng,
		       struct proto_rx *rx, uint32_t k, const char *peer)
{
	struct conn_bufs b = { malloc(TX_CAP), malloc(PROTO_HASH_MAX * PROTO_HASH_LEN),
			       aligned_alloc(RECV_ALIGN, RECV_SCRATCH), 0 };

	if (!b.tx || !b.hash || !b.scratch) {
		send_error(c, PROTO_E_INTERNAL, "the destination is out of memory for a stream");
		goto out;
	}
	for (;;) {
		struct proto_frame f;
		struct proto_act a;
		struct wbuf w;
		int r = read_frame(S, c, rx, &f, IDLE_MS, NULL);

		if (r <= 0) {
			if (r == IDLE_EXPIRED)
				send_error(c, PROTO_E_STATE, "idle timeout");
			else if (r < 0 && rx->err)
				send_error(c, PROTO_E_MALFORMED, rx->why);
			if (r < 0)
				log_info("%s: stream %u: %s", peer, k,
					 rx->err ? rx->why : r == IDLE_EXPIRED ? "idle for too long" :
					 strerror(-r));
			break;
		}
		proto_srv_input(eng, &f, &a);
		if (a.kind == PROTO_ACT_FAIL) {
			log_info("%s: stream %u: %s", peer, k, a.text);
			send_error(c, a.code, a.text);
			break;
		} else if (a.kind == PROTO_ACT_STATUS) {
			if (reply_inventory(S, c, PROTO_STATUS, b.tx, TX_CAP))
				break;
		} else if (a.kind == PROTO_ACT_BYE) {
			wbuf_init(&w, b.tx, TX_CAP);
			proto_enc_empty(&w, PROTO_BYE);
			send_frame(c, &w);
			break;
		} else if (data_step(S, c, &a, k, &b, peer)) {
			break;
		}
	}
	log_info("%s: stream %u ended, %llu bytes of DATA applied", peer, k,
		 (unsigned long long)b.data);
out:
	free(b.tx);
	free(b.hash);
	free(b.scratch);
	zc_thread_end();
}

/* An extra connection: authenticated like any; a HELLO that joins the
 * session in progress becomes a stream of it, anything else is busy. */
static void *xconn_main(void *arg)
{
	struct xconn *x = arg;
	struct srv *S = srv_g;
	char err[TLS_ERR_TEXT_MAX], text[PROTO_TEXT_MAX];
	uint8_t proof[TLS_PROOF_LEN], *rxb = malloc(RX_CAP);
	struct tls_conn *c = NULL;
	struct proto_rx rx;
	struct proto_frame f;
	struct proto_srv eng;
	struct proto_act a;
	struct proto_plan plan;
	uint32_t k = 0;
	int r;

	memset(&eng, 0, sizeof(eng));
	if (!rxb) {
		close(x->fd);
		goto out;
	}
	if (tls_server_accept(S->tls, x->fd, HANDSHAKE_MS, &c, err, sizeof(err))) {
		log_info("refused %s: %s", x->peer, err);
		goto out;
	}
	if (tls_auth_proof(c, &S->cfg->token, proof))
		goto out;
	proto_srv_init(&eng, proof, NULL);
	mem_wipe(proof, sizeof(proof));
	proto_rx_init(&rx, rxb, RX_CAP);
	r = read_frame(S, c, &rx, &f, HELLO_MS, NULL);
	if (r != 1) {
		log_info("refused %s: no HELLO", x->peer);
		goto out;
	}
	proto_srv_input(&eng, &f, &a);
	if (a.kind != PROTO_ACT_WELCOME) {
		log_info("refused %s: %s", x->peer, a.text);
		send_error(c, a.code, a.text);
		goto out;
	}
	pthread_mutex_lock(&xlock);
	text[0] = 0;
	if (!a.hello.join) {
		snprintf(text, sizeof(text),
			 "busy: another session is active (from %s, for %llu s); one session at a time",
			 sess_peer, (unsigned long long)((time_now_ms() - sess_since_ms) / 1000));
	} else if (!xopen || sess_plan.session != a.hello.join) {
		snprintf(text, sizeof(text), "no migration session %016llx to join here%s",
			 (unsigned long long)a.hello.join,
			 xopen ? " (another one is in progress)" : "");
	} else if (a.hello.streams != sess_plan.streams || xfd[a.hello.stream] >= 0) {
		snprintf(text, sizeof(text), "stream %u of %u does not fit session %016llx "
			 "(%u streams planned%s)", a.hello.stream, a.hello.streams,
			 (unsigned long long)a.hello.join, sess_plan.streams,
			 xfd[a.hello.stream] >= 0 ? ", that one is connected" : "");
	} else {
		k = a.hello.stream;
		xfd[k] = tls_fd(c);
		plan = sess_plan;
	}
	pthread_mutex_unlock(&xlock);
	if (!k) {
		log_info("refused %s: %s", x->peer, text);
		send_error(c, a.hello.join ? PROTO_E_STATE : PROTO_E_BUSY, text);
		goto out;
	}
	log_info("%s: stream %u of %u joined session %016llx", x->peer, k, plan.streams,
		 (unsigned long long)plan.session);
	{
		uint8_t *tx = malloc(TX_CAP);

		r = tx ? reply_inventory(S, c, PROTO_WELCOME, tx, TX_CAP) : -ENOMEM;
		free(tx);
	}
	if (r == 0) {
		proto_srv_join(&eng, &plan);
		stream_run(S, c, &eng, &rx, k, x->peer);
	}
	pthread_mutex_lock(&xlock);
	xfd[k] = -1;
	pthread_cond_broadcast(&xcond);
	pthread_mutex_unlock(&xlock);
out:
	proto_srv_end(&eng);
	if (c)
		tls_close(c, 2000);
	free(rxb);
	free(x);
	pthread_mutex_lock(&xlock);
	xcount--;
	pthread_mutex_unlock(&xlock);
	return NULL;
}

/* Hands a connected fd to a thread of its own (closes it when too many). */
static void xconn_start(int fd, const char *peer)
{
	struct xconn *x = malloc(sizeof(*x));
	pthread_attr_t at;
	pthread_t th;
	int ok = 0;

	pthread_mutex_lock(&xlock);
	if (x && xcount < XCONN_MAX) {
		xcount++;
		ok = 1;
	}
	pthread_mutex_unlock(&xlock);
	if (!ok) {
		log_info("refused %s: too many connections at once", peer);
		close(fd);
		free(x);
		return;
	}
	x->fd = fd;
	snprintf(x->peer, sizeof(x->peer), "%s", peer);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (pthread_create(&th, &at, xconn_main, x)) {
		close(fd);
		free(x);
		pthread_mutex_lock(&xlock);
		xcount--;
		pthread_mutex_unlock(&xlock);
	}
	pthread_attr_destroy(&at);
}

static void turn_away(struct srv *S)
{
	char peer[NET_ADDR_MAX];
	int fd = net_accept(S->lfd, peer, sizeof(peer));

	if (fd >= 0)
		xconn_start(fd, peer);
}

/* Reverse mode: the destination dials the extra streams itself. */
static void *dial_stream(void *arg)
{
	struct srv *S = srv_g;
	int fd;

	(void)arg;
	fd = net_connect(S->cfg->connect_host, S->cfg->connect_port, DIAL_MS);
	if (fd < 0)
		log_info("dialing the agent at %s for a stream: %s", S->cfg->connect,
			 strerror(-fd));
	else
		xconn_start(fd, S->cfg->connect);
	return NULL;
}

static int reply_inventory(struct srv *S, struct tls_conn *c, uint8_t type, uint8_t *tx,
			   size_t txcap)
{
	struct proto_inventory *inv = malloc(sizeof(*inv));
	struct wbuf w;
	int r;

	if (!inv)
		return -ENOMEM;
	fill_inventory(S, inv);
	wbuf_init(&w, tx, txcap);
	proto_enc_inventory(&w, type, inv);
	free(inv);
	r = send_frame(c, &w);
	return r;
}
static uint64_t plan_total, last_progress_ms, last_progress_bytes;
static int sess_planned;	/* this session sent PLAN or CLEAN */

static int fail_io(struct tls_conn *c, const char *peer, int r, const char *err)
{
	log_error("%s: %s", peer, err);
	result_line("FERRY RESULT fail %s", err);
	/* Out of space is the disk failing (a thin volume, a full file
	 * system), like EIO; a disk in use or a write outside it is not. */
	send_error(c, r == -EBADMSG ? PROTO_E_MALFORMED :
		   r == -ERANGE || r == -EBUSY || r == -ENODEV || r == -EINVAL ? PROTO_E_STATE :
										    PROTO_E_IO,
		   err);
	return -1;
}

/* WRITE, FLUSH and HASH for stream k (0 = the session's connection), the
 * same on every connection. 0 = go on, <0 = failed (an ERROR was sent). */
static int data_step(struct srv *S, struct tls_conn *c, const struct proto_act *a, uint32_t k,
		     struct conn_bufs *b, const char *peer)
{
	char err[PROTO_TEXT_MAX];
	struct wbuf w;
	uint32_t count;
	int r;

	wbuf_init(&w, b->tx, TX_CAP);
	switch (a->kind) {
	case PROTO_ACT_WRITE:
		if ((r = recv_write(&rs, &a->data, b->scratch, err, sizeof(err))))
			return fail_io(c, peer, r, err);
		b->data += a->data.len;
		progress(S);
		return 0;
	case PROTO_ACT_FLUSH:
		if ((r = recv_flush(&rs, &a->flush, err, sizeof(err))))
			return fail_io(c, peer, r, err);
		log_debug("%s: stream %u flush %llu (%u ranges): %llu bytes durable", peer, k,
			  (unsigned long long)a->flush.seq, a->flush.n,
			  (unsigned long long)recv_written(&rs));
		proto_enc_flushed(&w, a->flush.seq, recv_written(&rs));
		return send_frame(c, &w) ? -1 : 0;
	case PROTO_ACT_HASH:
		if ((r = recv_hash(&rs, &a->hreq, b->hash, &count, b->scratch, err, sizeof(err))))
			return fail_io(c, peer, r, err);
		proto_enc_hashes(&w, &a->hreq, b->hash, count);
		return send_frame(c, &w) ? -1 : 0;
	default:
		return 0;
	}
}

/* A console line every PROGRESS_MS, from whichever stream gets there. */
static void progress(struct srv *S)
{
	static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
	uint64_t now = time_now_ms(), written;
	char a[32], b[32], st[PROTO_LABEL_MAX];
	double rate;

	pthread_mutex_lock(&plock);
	if (now - last_progress_ms < PROGRESS_MS) {
		pthread_mutex_unlock(&plock);
		return;
	}
	written = recv_written(&rs);
	rate = (double)(written - last_progress_bytes) * 1000.0 /
	       (double)(now - last_progress_ms + 1);
	snprintf(st, sizeof(st), "receiving %s of %s", fmt_bytes(written, a, sizeof(a)),
		 fmt_bytes(plan_total, b, sizeof(b)));
	log_info("%s, %.1f MB/s", st, rate / 1e6);
	snprintf(S->state, sizeof(S->state), "%s", st);
	last_progress_ms = now;
	last_progress_bytes = written;
	pthread_mutex_unlock(&plock);
}

/* Carries out PLAN/WRITE/FLUSH/HASH/FINISH. 0 = go on, 1 = finished,
 * <0 = the session failed (an ERROR was sent). */
static int migrate_step(struct srv *S, struct tls_conn *c, struct proto_srv *eng,
			const struct proto_act *a, const char *peer)
{
	char err[PROTO_TEXT_MAX], sz[32];
	struct wbuf w;
	uint32_t i;
	int r, stay;

	wbuf_init(&w, tx_buf, sizeof(tx_buf));
	switch (a->kind) {
	case PROTO_ACT_PLAN: {
		static struct proto_plan_ok ok;

		sess_planned = 1;
		memset(&ok, 0, sizeof(ok));
		if (held && recv_same_session(&rs, &eng->plan)) {
			ok.resumed = 1;
			log_info("%s: resuming session %016llx", peer,
				 (unsigned long long)rs.session);
		} else {
			if (held) {
				log_info("%s: a new migration replaces unfinished session %016llx",
					 peer, (unsigned long long)rs.session);
				recv_close(&rs);
				held = 0;
			}
			if ((r = recv_open(&rs, &eng->plan, S->cfg, err, sizeof(err))))
				return fail_io(c, peer, r, err);
			held = 1;
		}
		ok.n = eng->plan.ndisks;
		for (i = 0; i < ok.n; i++)
			ok.dst_size[i] = eng->plan.disks[i].dst_size;
		if (ok.resumed)
			recv_durable(&rs, &ok);
		plan_total = 0;
		for (i = 0; i < eng->plan.ndisks; i++) {
			const struct proto_plan_disk *d = &eng->plan.disks[i];

			plan_total += d->send_bytes;
			log_info("%s: plan: %s -> %s, %s (%llu bytes), %s to send", peer, d->src,
				 d->dst, fmt_bytes(d->src_size, sz, sizeof(sz)),
				 (unsigned long long)d->src_size,
				 fmt_bytes(d->send_bytes, err, sizeof(err)));
		}
		last_progress_ms = time_now_ms();
		last_progress_bytes = recv_written(&rs);
		snprintf(err, sizeof(err), "receiving from %s", peer);
		set_state(S, err, "receiving");
		/* The extra streams may join from now on (in reverse mode we
		 * dial them). */
		recv_begin(&rs);
		streams_open(&eng->plan);
		if (eng->plan.streams > 1)
			log_info("%s: %u streams", peer, eng->plan.streams);
		proto_enc_plan_ok(&w, &ok);
		if (send_frame(c, &w))
			return -1;
		for (i = 1; S->lfd < 0 && i < eng->plan.streams; i++) {
			pthread_t th;

			if (pthread_create(&th, NULL, dial_stream, NULL) == 0)
				pthread_detach(th);
		}
		return 0;
	}
	case PROTO_ACT_WRITE:
	case PROTO_ACT_FLUSH:
	case PROTO_ACT_HASH:
		return data_step(S, c, a, 0, &main_bufs, peer);
	case PROTO_ACT_CLEAN: {
		static struct proto_report rep;

		sess_planned = 1;
		memset(&rep, 0, sizeof(rep));
		streams_close();
		set_state(S, "cleaning: aborting the migration", "cleaning");
		clean_disks(S->cfg, held ? &rs : NULL, a->flags & PROTO_CLEAN_WIPE, &rep);
		if (held) {
			recv_close(&rs);
			held = 0;
		}
		for (i = 0; i < rep.n; i++)
			log_info("clean: %s", rep.line[i].text);
		proto_enc_finished(&w, &rep);
		send_frame(c, &w);
		S->handoff = a->handoff;
		result_line("FERRY RESULT clean");
		set_state(S, "cleaned: leaving migration mode", "cleaned");
		return 1;
	}
	case PROTO_ACT_FINISH: {
		static struct proto_report rep;

		/* The agent ended its streams before FINISH; none may write now. */
		streams_close();
		set_state(S, "finishing: fix-ups and checks", "finishing");
		memset(&rep, 0, sizeof(rep));
		r = recv_finish(&rs, &a->fin, &rep);
		for (i = 0; i < rep.n; i++)
			log_info("%s %s", rep.line[i].level == PROTO_PASS ? "PASS" :
					  rep.line[i].level == PROTO_WARN ? "WARN" : "FAIL",
				 rep.line[i].text);
		/* Asked to adapt: only a report without FAIL hands off, and a
		 * dry run never does (nothing was changed). */
		stay = (a->flags & PROTO_ADAPT_ON) &&
		       (rep.verdict == PROTO_FAIL || (a->flags & PROTO_ADAPT_DRY));
		if (!r && stay) {
			proto_report_add(&rep, rep.verdict, "not handing off: %s; the destination "
					 "stays in migration mode (ferry adapt, or fix and hand off)",
					 rep.verdict == PROTO_FAIL ? "the report has FAIL lines" :
					 "a dry run changed nothing");
			log_info("%s", rep.line[rep.n - 1].text);
		}
		proto_enc_finished(&w, &rep);
		if (send_frame(c, &w) || r) {
			result_line("FERRY RESULT fail finish");
			return -1;
		}
		result_line("FERRY RESULT ok verdict=%s",
			    rep.verdict == PROTO_PASS ? "ready" :
			    rep.verdict == PROTO_WARN ? "warnings" : "not-bootable");
		if (stay) {
			/* The copy is complete: nothing to resume. */
			recv_close(&rs);
			held = 0;
			set_state(S, "done: migrated, not handed off (see the report)", "waiting");
			return 1;
		}
		S->handoff = a->handoff;
		set_state(S, "done: migration complete", "done");
		return 1;
	}
	case PROTO_ACT_ADAPT: {
		static struct proto_report rep;
		static struct adapt_req q;

		sess_planned = 1;
		memset(&rep, 0, sizeof(rep));
		if (held) {
			snprintf(err, sizeof(err), "a migration (session %016llx) is in progress on "
				 "these disks: finish it (ferry migrate) or abort it (ferry clean) first",
				 (unsigned long long)rs.session);
			send_error(c, PROTO_E_STATE, err);
			return -1;
		}
		memset(&q, 0, sizeof(q));
		q.dry = (a->flags & PROTO_ADAPT_DRY) != 0;
		q.force = (a->flags & PROTO_ADAPT_FORCE) != 0;
		q.keep_ip = (a->flags & PROTO_ADAPT_KEEP_IP) != 0;
		if (a->flags & PROTO_ADAPT_IP)
			q.ip = a->ip;
		q.live = S->cfg->live;
		for (i = 0; i < S->cfg->ndisks && i < DISK_MAX; i++) {
			snprintf(q.d[i].name, sizeof(q.d[i].name), "%s", S->cfg->disks[i].name);
			snprintf(q.d[i].path, sizeof(q.d[i].path), "%s", S->cfg->disks[i].path);
		}
		q.n = i;
		set_state(S, "adapting the migrated system", "adapting");
		if (!q.n)
			proto_report_add(&rep, PROTO_FAIL, "adapt: no disks on this destination");
		else if (adapt_run(&q, &rep) < 0)
			proto_report_add(&rep, PROTO_FAIL, "adapt: could not run");
		for (i = 0; i < rep.n; i++)
			log_info("%s %s", rep.line[i].level == PROTO_PASS ? "PASS" :
					  rep.line[i].level == PROTO_WARN ? "WARN" : "FAIL",
				 rep.line[i].text);
		stay = rep.verdict == PROTO_FAIL || q.dry;
		if (stay)
			proto_report_add(&rep, rep.verdict, "not handing off: %s; the destination "
					 "stays in migration mode",
					 q.dry ? "a dry run changed nothing" :
					 "the report has FAIL lines");
		proto_enc_finished(&w, &rep);
		if (send_frame(c, &w))
			return -1;
		result_line("FERRY RESULT adapt verdict=%s",
			    rep.verdict == PROTO_PASS ? "ready" :
			    rep.verdict == PROTO_WARN ? "warnings" : "not-bootable");
		if (stay) {
			set_state(S, "adapted: not handed off (see the report)", "waiting");
			return 1;
		}
		S->handoff = a->handoff;
		set_state(S, "done: adapted", "done");
		return 1;
	}
	default:
		return 0;
	}
}

/* Returns 1 when the agent proved the token, 0 otherwise. */
static int session(struct srv *S, int fd, const char *peer)
{
	char err[TLS_ERR_TEXT_MAX];
	uint8_t proof[TLS_PROOF_LEN];
	struct tls_conn *c;
	struct proto_srv eng;
	struct proto_rx rx;
	struct proto_frame f;
	struct proto_act a;
	int r, authed = 0;

	if (tls_server_accept(S->tls, fd, HANDSHAKE_MS, &c, err, sizeof(err))) {
		log_info("refused %s: TLS handshake failed: %s", peer, err);
		return 0;
	}
	log_debug("%s: TLS up (%s)", peer, tls_cipher_name(c));
	if ((r = tls_auth_proof(c, &S->cfg->token, proof))) {
		log_errno(r, "%s: computing the session proof", peer);
		tls_close(c, 2000);
		return 0;
	}
	fill_inventory(S, &inv_now);
	proto_srv_init(&eng, proof, &inv_now);
	main_bufs.data = 0;
	mem_wipe(proof, sizeof(proof));
	proto_rx_init(&rx, rx_buf, sizeof(rx_buf));
	snprintf(S->peer, sizeof(S->peer), "%s", peer);
	S->since_ms = time_now_ms();
	pthread_mutex_lock(&xlock);
	snprintf(sess_peer, sizeof(sess_peer), "%s", peer);
	sess_since_ms = S->since_ms;
	pthread_mutex_unlock(&xlock);
	for (;;) {
		/* Nobody to turn away in reverse mode: there is no listener. */
		r = read_frame(S, c, &rx, &f, authed ? IDLE_MS : HELLO_MS,
			       S->lfd >= 0 ? turn_away : NULL);
		if (r == 0) {
			log_info("%s: connection closed by the agent", peer);
			break;
		}
		if (r == IDLE_EXPIRED) {
			log_info("%s: %s; closing", peer,
				 authed ? "idle for too long" : "refused: no HELLO in time");
			send_error(c, authed ? PROTO_E_STATE : PROTO_E_AUTH,
				   authed ? "idle timeout" : "authentication required: no HELLO in time");
			break;
		}
		if (r < 0) {
			if (rx.err) {
				log_info("%s: %s%s", peer, authed ? "" : "refused: ", rx.why);
				send_error(c, authed ? PROTO_E_MALFORMED : PROTO_E_AUTH, rx.why);
			} else {
				log_info("%s: connection lost: %s", peer, strerror(-r));
			}
			break;
		}
		/* A PLAN or CLEAN makes this the migration session, accepted
		 * or refused (--once). */
		if (f.type == PROTO_PLAN || f.type == PROTO_CLEAN)
			sess_planned = 1;
		proto_srv_input(&eng, &f, &a);
		if (a.kind == PROTO_ACT_FAIL) {
			log_info("%s: %s%s", peer, authed ? "" : "refused: ", a.text);
			send_error(c, a.code, a.text);
			break;
		}
		if (a.kind == PROTO_ACT_WELCOME && a.hello.join) {
			/* A stream of a session this destination does not hold
			 * (it restarted): the agent starts over with a PLAN. */
			snprintf(err, sizeof(err), "no migration session %016llx to join here",
				 (unsigned long long)a.hello.join);
			log_info("refused %s: %s", peer, err);
			send_error(c, PROTO_E_STATE, err);
			break;
		}
		if (a.kind == PROTO_ACT_WELCOME) {
			authed = 1;
			log_info("%s: session from %s (%s)", peer,
				 a.hello.host[0] ? a.hello.host : "?", a.hello.agent);
			if (reply_inventory(S, c, PROTO_WELCOME, tx_buf, sizeof(tx_buf)))
				break;
		} else if (a.kind == PROTO_ACT_STATUS) {
			if (reply_inventory(S, c, PROTO_STATUS, tx_buf, sizeof(tx_buf)))
				break;
		} else if (a.kind >= PROTO_ACT_PLAN) {
			r = migrate_step(S, c, &eng, &a, peer);
			if (r < 0) {
				proto_srv_fail(&eng);
				break;
			}
			if (r == 1) /* FINISHED sent */
				break;
		} else if (a.kind == PROTO_ACT_BYE) {
			struct wbuf w;

			wbuf_init(&w, tx_buf, sizeof(tx_buf));
			proto_enc_empty(&w, PROTO_BYE);
			send_frame(c, &w);
			log_info("%s: session ended", peer);
			break;
		}
	}
	streams_close();
	proto_srv_end(&eng);
	tls_close(c, 2000);
	if (main_bufs.data)
		log_info("%s: %llu bytes of DATA applied in this session", peer,
			 (unsigned long long)main_bufs.data);
	if (held && S->handoff >= 0) {
		recv_close(&rs);
		held = 0;
	} else if (held) {
		log_info("%s: session %016llx left unfinished; the agent can resume it",
			 peer, (unsigned long long)rs.session);
		set_state(S, "interrupted: waiting for the agent to resume", "interrupted");
	}
	S->peer[0] = 0;
	/* In reverse mode the dialing loop says what happens next. */
	if (S->handoff < 0 && S->lfd >= 0)
		set_state(S, "waiting for the source", "waiting");
	return authed;
}

int serve_set_connect(struct serve_config *sc, const char *hostport)
{
	if (!hostport || strlen(hostport) >= sizeof(sc->connect) ||
	    net_split_hostport(hostport, 443, sc->connect_host, sizeof(sc->connect_host),
			       &sc->connect_port) ||
	    !sc->connect_host[0]) {
		sc->connect[0] = sc->connect_host[0] = 0;
		return -EINVAL;
	}
	snprintf(sc->connect, sizeof(sc->connect), "%s", hostport);
	return 0;
}

/*
 * Reverse mode: dial, serve one session on the connection, dial again
 * (the agent may reconnect to resume, or run again later). Failures to
 * connect are retried forever with backoff and logged when they change,
 * so a console is not flooded while the agent is not running yet.
 */
static void dial_loop(struct srv *S)
{
	const struct serve_config *cfg = S->cfg;
	char st[PROTO_LABEL_MAX + NET_ADDR_MAX];	/* set_state keeps what fits */
	unsigned backoff = 1;
	int last = 0;

	for (;;) {
		int fd, authed;

		snprintf(st, sizeof(st), held ? "interrupted: dialing %s to resume" : "dialing %s",
			 cfg->connect);
		set_state(S, st, held ? "interrupted" : "dialing");
		fd = net_connect(cfg->connect_host, cfg->connect_port, DIAL_MS);
		reap();
		if (fd < 0) {
			if (fd != last)
				log_info("dialing the agent at %s: %s; retrying every %u s at most",
					 cfg->connect, strerror(-fd), DIAL_BACKOFF_MAX_S);
			else
				log_debug("dialing the agent at %s: %s", cfg->connect,
					  strerror(-fd));
			last = fd;
			sleep(backoff);
			backoff = backoff * 2 < DIAL_BACKOFF_MAX_S ? backoff * 2 : DIAL_BACKOFF_MAX_S;
			continue;
		}
		last = 0;
		log_info("connected to the agent at %s", cfg->connect);
		snprintf(st, sizeof(st), "connected to the source at %s", cfg->connect);
		set_state(S, st, held ? "interrupted" : "waiting");
		sess_planned = 0;
		authed = session(S, fd, cfg->connect);
		/* --once as when listening: one migration session. */
		if (S->handoff >= 0 || (cfg->once && sess_planned))
			return;
		/* After a session, 1 s: an agent that said goodbye is exiting,
		 * one that reconnects is still listening. After a refusal, the
		 * backoff, so a wrong token is not a tight loop. */
		if (authed)
			backoff = 1;
		sleep(backoff);
		if (!authed)
			backoff = backoff * 2 < DIAL_BACKOFF_MAX_S ? backoff * 2 : DIAL_BACKOFF_MAX_S;
	}
}

int serve_run(const struct serve_config *cfg)
{
	struct srv S;
	char fp[TLS_FP_TEXT_MAX], peer[NET_ADDR_MAX];
	int r;

	memset(&S, 0, sizeof(S));
	S.cfg = cfg;
	S.handoff = -1;
	srv_g = &S;
	for (r = 0; r < PROTO_STREAMS_MAX; r++)
		xfd[r] = -1;
	signal(SIGPIPE, SIG_IGN);
	if ((r = tls_server_new(&cfg->token, &S.tls))) {
		log_errno(r, "deriving the TLS key from the token");
		return r;
	}
	if (cfg->connect[0]) {
		S.lfd = -1;
		tls_token_fingerprint(&cfg->token, fp, sizeof(fp));
		log_info("reverse mode: dialing the agent at %s (token %s)", cfg->connect, fp);
		result_line("FERRY READY connect=%s fp=%s", cfg->connect, fp);
		dial_loop(&S);
		tls_server_free(S.tls);
		return S.handoff >= 0 ? SERVE_HANDOFF_BASE + S.handoff : 0;
	}
	S.lfd = net_listen(cfg->listen_host, cfg->listen_port, 8);
	if (S.lfd < 0) {
		log_errno(S.lfd, "listen on %s:%u",
			  cfg->listen_host[0] ? cfg->listen_host : "*", cfg->listen_port);
		tls_server_free(S.tls);
		return S.lfd;
	}
	if (net_local_port(S.lfd, &S.port))
		S.port = cfg->listen_port;
	tls_token_fingerprint(&cfg->token, fp, sizeof(fp));
	log_info("listening on %s:%u (token %s)", cfg->listen_host[0] ? cfg->listen_host : "*",
		 S.port, fp);
	set_state(&S, "waiting for the source", "waiting");
	result_line("FERRY READY port=%u fp=%s", S.port, fp);
	for (;;) {
		int fd = net_accept(S.lfd, peer, sizeof(peer));

		reap();
		if (fd < 0) {
			if (fd != -EINTR && fd != -ECONNABORTED)
				log_errno(fd, "accept");
			continue;
		}
		sess_planned = 0;
		session(&S, fd, peer);
		/* --once: one migration session; status and check sessions
		 * before it do not count. */
		if ((cfg->once && sess_planned) || S.handoff >= 0)
			break;
	}
	close(S.lfd);
	tls_server_free(S.tls);
	/* A finished migration tells PID 1 which hand-off to do. */
	return S.handoff >= 0 ? SERVE_HANDOFF_BASE + S.handoff : 0;
}
