/*
 * relay.c - the relay (transit) instance: ferry.mode=relay in the live
 * environment, `ferry-init serve --relay` on a host. It listens for HTTP
 * CONNECT requests (the agent's --proxy), and tunnels each to the
 * destination it names when that address and port are on the allow-list,
 * refusing anything else with a status line that says why. It holds no
 * token and never looks inside a tunnel: TLS runs end to end between the
 * agent and the destination, whose key the agent pins. It never resolves
 * a name (only IP literals are tunneled), never opens a disk, and copies
 * with splice(2), so a tunnel's bytes stay in the kernel. Every flow is a
 * thread with deadlines; the console shows each flow's bytes and rate.
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
#include <unistd.h>

#include "common/common.h"
#include "init.h"

#define HEAD_MS	    10000  /* from accept to a whole CONNECT head */
#define CONNECT_MS  10000  /* to reach the destination */
#define IDLE_MS	    600000 /* no byte either way: longer than the receiver's own */
#define PROGRESS_MS 10000  /* a console line per long flow */
#define POLL_MS	    1000
#define FLOWS_MAX   64	      /* tunnels at once (16 streams x a few agents) */
#define PIPE_BYTES  (1 << 20) /* per direction; the kernel may give less */
#define DRAIN_ROUNDS 8	      /* steps without a poll while bytes keep moving */

struct flow {
	unsigned id;
	int cfd; /* the agent's side */
	int dfd; /* the destination's side */
	char peer[NET_ADDR_MAX];
	struct net_relay_target t;
	const struct relay_config *cfg;
};

/* One direction of a tunnel: src -> pipe -> dst. */
struct half {
	int src, dst;
	int p[2];
	size_t cap;	/* the pipe's size */
	size_t held;	/* bytes in the pipe */
	int eof;	/* src said FIN */
	int shut;	/* FIN passed on to dst */
	uint64_t bytes; /* delivered to dst */
};

static pthread_mutex_t flock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nflows, next_id;

static void rate_text(uint64_t bytes, uint64_t ms, char *buf, size_t cap)
{
	char b[32];

	fmt_bytes(ms ? bytes * 1000 / ms : 0, b, sizeof(b));
	snprintf(buf, cap, "%s/s", b);
}

static int send_all(int fd, const char *p, size_t n, int ms)
{
	uint64_t deadline = time_now_ms() + (uint64_t)ms;

	while (n) {
		struct pollfd pfd = {fd, POLLOUT, 0};
		int64_t left = (int64_t)(deadline - time_now_ms());
		ssize_t w;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* An error reply: the reason is in the status line, which the agent
 * quotes (proxy.c), so it reads "... refused CONNECT X: HTTP/1.1 403
 * ferry relay: X is not on its allow-list (...)". */
static void refuse(struct flow *f, unsigned code, const char *why)
{
	char r[NET_PROXY_LINE_MAX + 128];
	int n;

	n = snprintf(r, sizeof(r),
		     "HTTP/1.1 %u ferry relay: %.220s\r\nContent-Length: 0\r\n"
		     "Connection: close\r\n\r\n",
		     code, why);
	if (n > 0 && (size_t)n < sizeof(r))
		(void)send_all(f->cfd, r, (size_t)n, 2000);
	log_info("relay: refused %s: %s", f->peer, why);
	result_line("FERRY RELAY refused peer=%s code=%u target=%s", f->peer, code,
		    f->t.text[0] ? f->t.text : "-");
}

/* Reads the CONNECT head; 0 with *len bytes held and *head its length. */
static int read_head(struct flow *f, char *buf, size_t *len, size_t *head)
{
	uint64_t deadline = time_now_ms() + HEAD_MS;
	char why[200];
	int r;

	*len = 0;
	for (;;) {
		struct pollfd pfd = {f->cfd, POLLIN, 0};
		int64_t left = (int64_t)(deadline - time_now_ms());
		ssize_t got;

		if (left <= 0) {
			refuse(f, 408, "no complete CONNECT request in time");
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		got = recv(f->cfd, buf + *len, NET_RELAY_HEAD_MAX - *len, MSG_DONTWAIT);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (got == 0) {
			log_info("relay: %s closed before a CONNECT request", f->peer);
			return -ECONNRESET;
		}
		*len += (size_t)got;
		r = net_relay_request(buf, *len, head, &f->t, why, sizeof(why));
		if (r == -EAGAIN)
			continue;
		if (r)
			refuse(f, r == -EOPNOTSUPP ? 405 : 400, why);
		return r;
	}
}

static int half_init(struct half *h, int src, int dst)
{
	int sz;

	memset(h, 0, sizeof(*h));
	h->src = src;
	h->dst = dst;
	if (pipe2(h->p, O_CLOEXEC | O_NONBLOCK) < 0) {
		h->p[0] = h->p[1] = -1;
		return -errno;
	}
	sz = fcntl(h->p[1], F_SETPIPE_SZ, PIPE_BYTES);
	if (sz < 0)
		sz = fcntl(h->p[1], F_GETPIPE_SZ);
	h->cap = sz > 0 ? (size_t)sz : 65536;
	return 0;
}

static void half_close(struct half *h)
{
	if (h->p[0] >= 0)
		close(h->p[0]);
	if (h->p[1] >= 0)
		close(h->p[1]);
}

/* Moves what it can without blocking. 1 = moved bytes, 0 = nothing, <0 error. */
static int half_step(struct half *h, short src_ev, short dst_ev)
{
	int moved = 0;
	ssize_t n;

	if (!h->eof && h->held < h->cap && (src_ev & (POLLIN | POLLHUP | POLLERR))) {
		n = splice(h->src, NULL, h->p[1], NULL, h->cap - h->held,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			h->held += (size_t)n;
			moved = 1;
		} else if (n == 0) {
			h->eof = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
	}
	/* What just came in goes out at once when the far side can take it
	 * (EAGAIN otherwise), rather than after another poll's wake-up. */
	if (h->held && (moved || (dst_ev & (POLLOUT | POLLERR | POLLHUP)))) {
		n = splice(h->p[0], NULL, h->dst, NULL, h->held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			h->held -= (size_t)n;
			h->bytes += (uint64_t)n;
			moved = 1;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
	}
	if (h->eof && !h->held && !h->shut) {
		/* Half-close: the other direction may still carry a reply. */
		shutdown(h->dst, SHUT_WR);
		h->shut = 1;
	}
	return moved;
}

/* Copies both ways until both have ended, an error, or IDLE_MS of silence. */
static void pump(struct flow *f, const char *extra, size_t nextra)
{
	struct half up, down;
	uint64_t t0 = time_now_ms(), last = t0, report = t0, rep_bytes = 0;
	char a[32], b[32], rate[40];
	const char *end = "closed";
	int r = 0;

	if (half_init(&up, f->cfd, f->dfd) || half_init(&down, f->dfd, f->cfd)) {
		log_errno(-errno, "relay: flow %u: pipes", f->id);
		half_close(&up);
		return;
	}
	/* Bytes that came with the head belong to the tunnel. */
	if (nextra) {
		if ((r = send_all(f->dfd, extra, nextra, CONNECT_MS)))
			end = "error";
		up.bytes = nextra;
	}
	fcntl(f->cfd, F_SETFL, fcntl(f->cfd, F_GETFL) | O_NONBLOCK);
	fcntl(f->dfd, F_SETFL, fcntl(f->dfd, F_GETFL) | O_NONBLOCK);
	while (!r && !(up.shut && down.shut)) {
		struct pollfd p[2] = {{f->cfd, 0, 0}, {f->dfd, 0, 0}};
		uint64_t now;
		int m1, m2, k, moved;

		if (!up.eof && up.held < up.cap)
			p[0].events |= POLLIN;
		if (!down.eof && down.held < down.cap)
			p[1].events |= POLLIN;
		if (up.held)
			p[1].events |= POLLOUT;
		if (down.held)
			p[0].events |= POLLOUT;
		/* A side we wait nothing from is left out: once both its
		 * directions are shut, POLLHUP would wake us at once, for
		 * ever, while the other side drains. */
		if (!p[0].events)
			p[0].fd = -1;
		if (!p[1].events)
			p[1].fd = -1;
		if (poll(p, 2, POLL_MS) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		m1 = half_step(&up, p[0].revents, p[1].revents);
		m2 = half_step(&down, p[1].revents, p[0].revents);
		/* A busy tunnel is drained without polling between steps: a few
		 * more rounds as if both sides were ready, while bytes move. */
		moved = m1 > 0 || m2 > 0;
		for (k = 0; k < DRAIN_ROUNDS && m1 >= 0 && m2 >= 0 && (m1 || m2); k++) {
			m1 = half_step(&up, POLLIN, POLLOUT);
			m2 = half_step(&down, POLLIN, POLLOUT);
			moved |= m1 > 0 || m2 > 0;
		}
		now = time_now_ms();
		if (m1 < 0 || m2 < 0) {
			r = m1 < 0 ? m1 : m2;
			end = r == -ECONNRESET || r == -EPIPE ? "reset" : "error";
			break;
		}
		if (moved)
			last = now;
		else if (now - last >= IDLE_MS) {
			end = "idle";
			break;
		}
		if (now - report >= PROGRESS_MS) {
			rate_text(up.bytes + down.bytes - rep_bytes, now - report, rate,
				  sizeof(rate));
			log_info("relay: flow %u %s -> %s: %s up, %s down, %s now", f->id, f->peer,
				 f->t.text, fmt_bytes(up.bytes, a, sizeof(a)),
				 fmt_bytes(down.bytes, b, sizeof(b)), rate);
			report = now;
			rep_bytes = up.bytes + down.bytes;
		}
	}
	{
		uint64_t ms = time_now_ms() - t0;

		rate_text(up.bytes + down.bytes, ms, rate, sizeof(rate));
		log_info("relay: flow %u %s -> %s %s%s%s after %llu.%01llu s: %s up, %s down, %s",
			 f->id, f->peer, f->t.text, end, r && strcmp(end, "reset") ? ": " : "",
			 r && strcmp(end, "reset") ? strerror(-r) : "",
			 (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000 / 100),
			 fmt_bytes(up.bytes, a, sizeof(a)), fmt_bytes(down.bytes, b, sizeof(b)),
			 rate);
		result_line("FERRY RELAY close id=%u target=%s up=%llu down=%llu ms=%llu end=%s",
			    f->id, f->t.text, (unsigned long long)up.bytes,
			    (unsigned long long)down.bytes, (unsigned long long)ms, end);
	}
	half_close(&up);
	half_close(&down);
}

static void *flow_main(void *arg)
{
	struct flow *f = arg;
	char head[NET_RELAY_HEAD_MAX], why[NET_PROXY_LINE_MAX], list[120];
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	size_t len = 0, hlen = 0;
	int r;

	f->dfd = -1;
	if (read_head(f, head, &len, &hlen))
		goto out;
	if (f->t.family == 0) {
		snprintf(why, sizeof(why),
			 "%s is a name; the relay resolves none: give the "
			 "destination's IP address",
			 f->t.text);
		refuse(f, 403, why);
		goto out;
	}
	if (!net_allow_match(&f->cfg->allow, &f->t)) {
		net_allow_text(&f->cfg->allow, list, sizeof(list));
		snprintf(why, sizeof(why), "%s is not on its allow-list (%s)", f->t.text, list);
		refuse(f, 403, why);
		goto out;
	}
	f->dfd = net_connect(f->t.host, f->t.port, CONNECT_MS);
	if (f->dfd < 0) {
		/* 5xx: the agent retries (the destination may still boot). */
		snprintf(why, sizeof(why), "cannot reach %s: %s", f->t.text, strerror(-f->dfd));
		refuse(f, f->dfd == -ETIMEDOUT ? 504 : 502, why);
		goto out;
	}
	if ((r = send_all(f->cfd, ok, sizeof(ok) - 1, CONNECT_MS))) {
		log_info("relay: %s: answering CONNECT %s: %s", f->peer, f->t.text, strerror(-r));
		goto out;
	}
	log_info("relay: flow %u %s -> %s open", f->id, f->peer, f->t.text);
	result_line("FERRY RELAY open id=%u peer=%s target=%s", f->id, f->peer, f->t.text);
	pump(f, head + hlen, len - hlen);
out:
	if (f->dfd >= 0)
		close(f->dfd);
	close(f->cfd);
	free(f);
	pthread_mutex_lock(&flock);
	nflows--;
	pthread_mutex_unlock(&flock);
	return NULL;
}

static void flow_start(const struct relay_config *cfg, int fd, const char *peer)
{
	struct flow *f = calloc(1, sizeof(*f));
	pthread_attr_t at;
	pthread_t th;
	int ok = 0;

	pthread_mutex_lock(&flock);
	if (f && nflows < FLOWS_MAX) {
		nflows++;
		f->id = ++next_id;
		ok = 1;
	}
	pthread_mutex_unlock(&flock);
	if (!ok) {
		static const char busy[] = "HTTP/1.1 503 ferry relay: too many tunnels at once\r\n"
					   "Content-Length: 0\r\nConnection: close\r\n\r\n";

		(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		log_info("relay: refused %s: %d tunnels at once", peer, FLOWS_MAX);
		close(fd);
		free(f);
		return;
	}
	f->cfd = fd;
	f->cfg = cfg;
	snprintf(f->peer, sizeof(f->peer), "%s", peer);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (pthread_create(&th, &at, flow_main, f)) {
		close(fd);
		free(f);
		pthread_mutex_lock(&flock);
		nflows--;
		pthread_mutex_unlock(&flock);
	}
	pthread_attr_destroy(&at);
}

int relay_run(const struct relay_config *cfg)
{
	char list[NET_ALLOW_TEXT_MAX], peer[NET_ADDR_MAX];
	uint16_t port;
	int lfd;

	signal(SIGPIPE, SIG_IGN);
	lfd = net_listen(cfg->listen_host, cfg->listen_port, 64);
	if (lfd < 0) {
		log_errno(lfd, "relay: listen on %s:%u",
			  cfg->listen_host[0] ? cfg->listen_host : "*", cfg->listen_port);
		return lfd;
	}
	if (net_local_port(lfd, &port))
		port = cfg->listen_port;
	net_allow_text(&cfg->allow, list, sizeof(list));
	log_info("relay: listening on %s:%u for CONNECT; allowed: %s",
		 cfg->listen_host[0] ? cfg->listen_host : "*", port, list);
	log_info("relay: on each source: ferry migrate --proxy http://THIS-ADDRESS:%u "
		 "--to DESTINATION:PORT ...",
		 port);
	result_line("FERRY READY relay port=%u", port);
	for (;;) {
		int fd = net_accept(lfd, peer, sizeof(peer));

		if (fd < 0) {
			if (fd != -EINTR && fd != -ECONNABORTED)
				log_errno(fd, "relay: accept");
			if (fd == -EMFILE || fd == -ENFILE)
				sleep(1);
			continue;
		}
		flow_start(cfg, fd, peer);
	}
	return 0;
}
