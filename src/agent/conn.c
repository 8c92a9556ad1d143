/*
 * conn.c - the agent's side of a session: connect (retrying while the
 * destination boots), TLS with the token-pinned key, HELLO with the
 * proof, and reading frames with deadlines. Every ERROR from the
 * destination becomes a sentence for the operator.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/common.h"
#include "net/net.h"

#define CONNECT_MS 10000
#define HANDSHAKE_MS 15000
#define REPLY_MS 30000

int agent_parse_to(const char *to, struct agent_target *t, char *err, size_t errcap)
{
	if (!to || !*to) {
		snprintf(err, errcap, "no destination: give --to HOST[:PORT]");
		return -EINVAL;
	}
	if (net_split_hostport(to, 443, t->host, sizeof(t->host), &t->port) || !t->host[0]) {
		snprintf(err, errcap, "--to %.80s: want HOST[:PORT] (e.g. 10.0.0.5 or [fd00::5]:443)", to);
		return -EINVAL;
	}
	snprintf(t->text, sizeof(t->text), "%s%s%s:%u", strchr(t->host, ':') ? "[" : "",
		 t->host, strchr(t->host, ':') ? "]" : "", t->port);
	return 0;
}

/* "10.0.0.0/8" against a numeric IPv4 host. */
static int no_proxy_cidr(const char *e, size_t n, const char *host)
{
	char net[INET_ADDRSTRLEN];
	const char *slash = memchr(e, '/', n);
	struct in_addr a, h;
	uint64_t bits;
	uint32_t mask;
	char nb[4];
	size_t l;

	if (!slash || (l = (size_t)(slash - e)) >= sizeof(net) || n - l - 1 == 0 ||
	    n - l - 1 >= sizeof(nb))
		return 0;
	memcpy(net, e, l);
	net[l] = 0;
	memcpy(nb, slash + 1, n - l - 1);
	nb[n - l - 1] = 0;
	if (parse_u64(nb, 32, &bits) || inet_pton(AF_INET, net, &a) != 1 ||
	    inet_pton(AF_INET, host, &h) != 1)
		return 0;
	mask = bits ? htonl(0xffffffffu << (32 - bits)) : 0;
	return (a.s_addr & mask) == (h.s_addr & mask);
}

/*
 * no_proxy as curl reads it: comma- or space-separated; "*" matches
 * everything; a name matches itself and its subdomains (".example.com"
 * and "example.com" alike); an IPv4 address or CIDR block matches
 * numerically; "host:port" only that port. Case does not matter.
 */
static int no_proxy_match(const char *list, const char *host, uint16_t port)
{
	size_t hl = strlen(host);

	while (*list) {
		size_t n, l;
		const char *e, *colon;
		char pb[8];
		uint64_t pv;

		list += strspn(list, ", \t");
		e = list;
		n = strcspn(list, ", \t");
		list += n;
		if (n == 0)
			continue;
		if (n == 1 && e[0] == '*')
			return 1;
		/* A port, unless the entry is a bare IPv6 address. */
		colon = memchr(e, ':', n);
		if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - e) - 1) &&
		    e[0] != '[') {
			l = n - (size_t)(colon - e) - 1;
			if (l == 0 || l >= sizeof(pb))
				continue;
			memcpy(pb, colon + 1, l);
			pb[l] = 0;
			if (parse_u64(pb, 65535, &pv) || pv != port)
				continue;
			n = (size_t)(colon - e);
		}
		if (n >= 2 && e[0] == '[' && e[n - 1] == ']')
			e++, n -= 2;
		if (memchr(e, '/', n)) {
			if (no_proxy_cidr(e, n, host))
				return 1;
			continue;
		}
		if (e[0] == '.')
			e++, n--;
		if (n == 0)
			continue;
		if (hl == n && !strncasecmp(host, e, n))
			return 1;
		if (hl > n && host[hl - n - 1] == '.' && !strncasecmp(host + hl - n, e, n))
			return 1;
	}
	return 0;
}

int agent_parse_proxy(const char *arg, struct agent_target *t, char *err, size_t errcap)
{
	const char *url = arg, *from = "--proxy", *np;
	struct net_proxy p;
	char why[AGENT_ERR_MAX];

	t->proxy[0] = 0;
	if (!url) {
		from = "https_proxy";
		if (!(url = getenv("https_proxy")) || !*url) {
			from = "HTTPS_PROXY";
			url = getenv("HTTPS_PROXY");
		}
		if (!url || !*url)
			return 0;
		if (!(np = getenv("no_proxy")) || !*np)
			np = getenv("NO_PROXY");
		if (np && no_proxy_match(np, t->host, t->port)) {
			log_debug("%s is in no_proxy: connecting directly", t->text);
			return 0;
		}
	}
	if (!*url)
		return 0;
	if (net_proxy_parse(url, &p, why, sizeof(why))) {
		snprintf(err, errcap, "%s: %s", from, why);
		return -EINVAL;
	}
	net_proxy_wipe(&p);
	snprintf(t->proxy, sizeof(t->proxy), "%s", url);
	return 0;
}

int agent_parse_listen(const char *arg, struct agent_target *t, char *err, size_t errcap)
{
	char host[NET_ADDR_MAX];
	uint16_t port;

	if (!arg || strlen(arg) >= sizeof(t->listen) ||
	    net_split_hostport(arg, 0, host, sizeof(host), &port)) {
		snprintf(err, errcap, "--listen %.80s: want [ADDR]:PORT (e.g. :4430 or 192.0.2.7:443)",
			 arg ? arg : "");
		return -EINVAL;
	}
	snprintf(t->listen, sizeof(t->listen), "%s", arg);
	snprintf(t->text, sizeof(t->text), "%s%s%s:%u", strchr(host, ':') ? "[" : "",
		 host[0] ? host : "*", strchr(host, ':') ? "]" : "", port);
	t->host[0] = 0;
	t->port = port;
	t->proxy[0] = 0;
	return 0;
}

int agent_parse_target(const char *to, const char *listen, const char *proxy,
		       struct agent_target *t, char *err, size_t errcap)
{
	if (to && listen) {
		snprintf(err, errcap, "give --to (dial the destination) or --listen (the "
				      "destination dials in), not both");
		return -EINVAL;
	}
	if (listen) {
		if (proxy && *proxy) {
			snprintf(err, errcap, "--proxy is for --to: with --listen the destination "
					      "dials in");
			return -EINVAL;
		}
		return agent_parse_listen(listen, t, err, errcap);
	}
	if (agent_parse_to(to, t, err, errcap))
		return -EINVAL;
	return agent_parse_proxy(proxy, t, err, errcap);
}

int agent_load_token(const char *tok, const char *file, struct tls_token *t,
		     char *err, size_t errcap)
{
	char buf[256], why[TLS_ERR_TEXT_MAX];
	const char *src = tok, *from = "--token";
	int r;

	buf[0] = 0;
	if (file) {
		if ((r = file_read_small(file, buf, sizeof(buf))) < 0) {
			snprintf(err, errcap, "--token-file %.200s: %s", file, strerror(-r));
			return r;
		}
		src = buf;
		from = "--token-file";
	} else if (!src && (src = getenv("FERRY_TOKEN"))) {
		from = "FERRY_TOKEN";
	}
	if (!src) {
		snprintf(err, errcap,
			 "no token: give --token, --token-file or FERRY_TOKEN "
			 "(the destination shows its token on its console)");
		return -EINVAL;
	}
	r = tls_token_parse(src, t, why, sizeof(why));
	mem_wipe(buf, sizeof(buf));
	if (r)
		snprintf(err, errcap, "%s: bad token: %s", from, why);
	return r;
}

int agent_send(struct agent_conn *ac, struct wbuf *w)
{
	int r;

	if (w->err)
		return w->err;
	if ((r = tls_write(ac->tls, w->p, w->len, REPLY_MS)))
		return r;
	return tls_flush(ac->tls, REPLY_MS);
}

int agent_write(struct agent_conn *ac, const void *p, size_t n)
{
	return tls_write(ac->tls, p, n, REPLY_MS);
}

int agent_recv(struct agent_conn *ac, struct proto_frame *f, int ms)
{
	uint64_t deadline = time_now_ms() + (uint64_t)ms;

	for (;;) {
		uint8_t *space;
		size_t avail;
		int64_t left;
		int r = proto_rx_next(&ac->rx, f);

		if (r != 0)
			return r;
		left = (int64_t)(deadline - time_now_ms());
		if (ms == 0) {
			struct pollfd p = { tls_fd(ac->tls), POLLIN, 0 };

			if (!tls_pending(ac->tls) && poll(&p, 1, 0) <= 0)
				return -EAGAIN;
			left = REPLY_MS;
		} else if (left <= 0) {
			return -ETIMEDOUT;
		}
		space = proto_rx_space(&ac->rx, &avail);
		r = tls_read(ac->tls, space, avail, (int)left);
		if (r <= 0)
			return r;
		proto_rx_commit(&ac->rx, (size_t)r);
	}
}

static int describe_frame_error(struct agent_conn *ac, int r, const char *what,
				char *err, size_t errcap)
{
	if (r == 0)
		snprintf(err, errcap, "the destination closed the connection %s", what);
	else if (r == -ETIMEDOUT)
		snprintf(err, errcap, "no answer from the destination %s", what);
	else if (ac->rx.err)
		snprintf(err, errcap, "bad frame from the destination %s: %s", what,
			 ac->rx.why);
	else
		snprintf(err, errcap, "connection lost %s: %s", what, strerror(-r));
	return r == 0 ? -ECONNRESET : r;
}

int agent_error_frame(const struct proto_frame *f, char *err, size_t errcap)
{
	struct proto_error e;

	if (proto_dec_error(f, &e)) {
		snprintf(err, errcap, "the destination sent a malformed ERROR");
		return -EPROTO;
	}
	if (e.code == PROTO_E_AUTH)
		snprintf(err, errcap, "%s (is the token the one on the destination's console?)",
			 e.text);
	else if (e.code == PROTO_E_IO)
		snprintf(err, errcap, "the destination's disk failed: %s; once it is fixed, run "
			 "ferry migrate again: it resumes", e.text);
	else
		snprintf(err, errcap, "%s", e.text);
	return e.code == PROTO_E_BUSY	  ? -EBUSY
	       : e.code == PROTO_E_AUTH	  ? -EACCES
	       : e.code == PROTO_E_TOOSMALL ? -ENOSPC
				       : -EPROTO;
}

static int expect_inventory(struct agent_conn *ac, uint8_t type,
			    struct proto_inventory *inv, char *err, size_t errcap)
{
	struct proto_frame f;
	int r = agent_recv(ac, &f, REPLY_MS);

	if (r != 1)
		return describe_frame_error(ac, r, "waiting for its inventory", err, errcap);
	if (f.type == PROTO_ERROR)
		return agent_error_frame(&f, err, errcap);
	if (f.type != type || proto_dec_inventory(&f, inv)) {
		/* Not retried: the two ends were built from different versions. */
		snprintf(err, errcap, "the destination's %s does not parse (wanted %s): are the "
			 "agent and the live image from the same ferry version?",
			 proto_type_name(f.type), proto_type_name(type));
		return -EBADMSG;
	}
	return 0;
}

/* While waiting for a booting destination, attempts are short: a
 * connection QEMU's user network accepted before the guest listened hangs
 * rather than fails. They start at 500 ms and double up to 2 s, so a
 * destination that just came up is found within half a second, and a slow
 * one (a TLS handshake under emulation) still gets 2 s. */
#define ATTEMPT_MS_FIRST 500
#define ATTEMPT_MS 2000

/* TLS (we are the client in both directions), HELLO with the proof,
 * WELCOME: on fd, a connection to or from the destination `who`. */
static int open_session(const struct agent_target *t, int fd, const char *who,
			struct agent_conn *ac, struct proto_inventory *inv, int quick, char *err,
			size_t errcap)
{
	char terr[TLS_ERR_TEXT_MAX], host[64];
	struct proto_hello h;
	struct wbuf w;
	int r;

	r = tls_client_connect(&t->token, fd, quick ? quick : HANDSHAKE_MS, &ac->tls, terr,
			       sizeof(terr));
	if (r) {
		snprintf(err, errcap, "%s: TLS handshake failed: %s", who, terr);
		return r;
	}
	memset(&h, 0, sizeof(h));
	h.ver_min = h.ver_max = PROTO_VERSION;
	h.join = t->join;
	h.stream = t->stream;
	h.streams = t->streams;
	snprintf(h.agent, sizeof(h.agent), "ferry %s", FERRY_VERSION);
	if (gethostname(host, sizeof(host) - 1) == 0) {
		host[sizeof(host) - 1] = 0;
		snprintf(h.host, sizeof(h.host), "%s", host);
	}
	if ((r = tls_auth_proof(ac->tls, &t->token, h.proof))) {
		snprintf(err, errcap, "%s: cannot compute the session proof", who);
		goto fail;
	}
	proto_rx_init(&ac->rx, ac->rxbuf, sizeof(ac->rxbuf));
	wbuf_init(&w, ac->txbuf, sizeof(ac->txbuf));
	proto_enc_hello(&w, &h);
	mem_wipe(h.proof, sizeof(h.proof));
	if ((r = agent_send(ac, &w))) {
		snprintf(err, errcap, "%s: sending HELLO: %s", who, strerror(-r));
		goto fail;
	}
	if ((r = expect_inventory(ac, PROTO_WELCOME, inv, err, errcap)))
		goto fail;
	snprintf(ac->peer, sizeof(ac->peer), "%s", who);
	return 0;
fail:
	tls_close(ac->tls, 1000);
	ac->tls = NULL;
	return r;
}

static int try_connect(const struct agent_target *t, struct agent_conn *ac,
		       struct proto_inventory *inv, int quick, char *err, size_t errcap)
{
	int fd;

	if (t->proxy[0]) {
		/* Through a proxy every attempt gets the full time: the
		 * proxy answers only once it has reached the destination. */
		fd = net_connect_proxy(t->proxy, t->host, t->port, CONNECT_MS, err, errcap);
		if (fd < 0)
			return fd;
	} else {
		fd = net_connect(t->host, t->port, quick ? quick : CONNECT_MS);
		if (fd < 0) {
			snprintf(err, errcap, "cannot connect to %s: %s", t->text, strerror(-fd));
			return fd;
		}
	}
	return open_session(t, fd, t->text, ac, inv, quick, err, errcap);
}

/*
 * Reverse mode. The listener stays open for the life of the process, so
 * a destination that dials again (after a cut, or while we sleep before
 * a reconnect) lands in its queue instead of being refused.
 */
#define LISTEN_WAIT_DEFAULT_S 600
#define LISTEN_BACKLOG 4

static int listen_fd = -1;

static int open_listener(const struct agent_target *t, char *err, size_t errcap)
{
	char host[NET_ADDR_MAX];
	uint16_t port;
	int fd, fl;

	if (listen_fd >= 0)
		return 0;
	if (net_split_hostport(t->listen, 0, host, sizeof(host), &port)) {
		snprintf(err, errcap, "--listen %s: want [ADDR]:PORT", t->listen);
		return -EINVAL;
	}
	fd = net_listen(host, port, LISTEN_BACKLOG);
	if (fd < 0) {
		snprintf(err, errcap, "cannot listen on %s: %s", t->text, strerror(-fd));
		return fd;
	}
	/* Non-blocking, so a peer gone between poll and accept cannot
	 * hang accept past the deadline. Accepted sockets stay blocking. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, errcap, "listening on %s: %s", t->text, strerror(errno));
		close(fd);
		return -EIO;
	}
	listen_fd = fd;
	return 0;
}

static int accept_until(uint64_t deadline, char *peer, size_t cap)
{
	for (;;) {
		struct pollfd p = { listen_fd, POLLIN, 0 };
		uint64_t now = time_now_ms();
		uint64_t left = deadline > now ? deadline - now : 0;
		int r;

		if (left == 0)
			return -ETIMEDOUT;
		if (agent_stop_sig)
			return -EINTR;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		r = net_accept(listen_fd, peer, cap);
		if (r != -EAGAIN && r != -EWOULDBLOCK)
			return r;
	}
}

/*
 * Waits for the destination to dial in, then the same TLS client
 * handshake and HELLO as when we dial: the roles in TLS do not change
 * with the direction of TCP. Anything that connects and fails (a wrong
 * token, a scanner) is logged and the wait goes on until the deadline.
 */
static int listen_connect(const struct agent_target *t, struct agent_conn *ac,
			  struct proto_inventory *inv, char *err, size_t errcap)
{
	int wait_s = t->wait_s > 0 ? t->wait_s : LISTEN_WAIT_DEFAULT_S;
	uint64_t deadline = time_now_ms() + (uint64_t)wait_s * 1000u;
	char peer[NET_ADDR_MAX], last[AGENT_ERR_MAX];
	unsigned refused = 0;
	int r, last_r = 0;

	if ((r = open_listener(t, err, errcap)))
		return r;
	if (t->join)
		log_debug("waiting on %s for the destination to dial stream %u", t->text,
			  t->stream);
	else
		log_info("waiting on %s for the destination to dial in (ferry.connect=THIS-HOST:%u "
			 "on its kernel command line), up to %d s",
			 t->text, t->port, wait_s);
	for (;;) {
		int fd = accept_until(deadline, peer, sizeof(peer));

		if (fd == -ETIMEDOUT)
			break;
		if (fd == -EINTR) {
			snprintf(err, errcap, "interrupted (signal %d) while waiting on %s",
				 (int)agent_stop_sig, t->text);
			return fd;
		}
		if (fd < 0) {
			snprintf(err, errcap, "accepting on %s: %s", t->text, strerror(-fd));
			return fd;
		}
		log_debug("%s dialed in", peer);
		r = open_session(t, fd, peer, ac, inv, 0, err, errcap);
		if (r == 0) {
			log_info("the destination dialed in from %s", peer);
			return 0;
		}
		refused++;
		last_r = r;
		snprintf(last, sizeof(last), "%s", err);
		log_error("%s; waiting for another connection", err);
	}
	if (refused)
		snprintf(err, errcap, "%s (%u connection%s on %s in %d s, none authenticated)",
			 last, refused, refused == 1 ? "" : "s", t->text, wait_s);
	else
		snprintf(err, errcap, "no destination dialed in to %s within %d s (is "
				      "ferry.connect=THIS-HOST:%u on its kernel command line, and "
				      "can it reach this host?)",
			 t->text, wait_s, t->port);
	return refused ? last_r : -ETIMEDOUT;
}

static int retryable(int r)
{
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT ||
	       r == -EHOSTUNREACH || r == -ENETUNREACH || r == -EPIPE || r == -EPROTO;
}

volatile sig_atomic_t agent_stop_sig;

/* Sleeps ms unless a stop was asked (checked every 100 ms): 0 or -EINTR. */
static int nap(unsigned ms)
{
	while (ms && !agent_stop_sig) {
		unsigned d = ms < 100 ? ms : 100;

		usleep(d * 1000u);
		ms -= d;
	}
	return agent_stop_sig ? -EINTR : 0;
}

int agent_connect(const struct agent_target *t, struct agent_conn *ac,
		  struct proto_inventory *inv, char *err, size_t errcap)
{
	uint64_t deadline = time_now_ms() + (uint64_t)t->wait_s * 1000u;
	unsigned tries = 0;
	int r;

	if (t->listen[0])
		return listen_connect(t, ac, inv, err, errcap);

	uint64_t busy_deadline = time_now_ms() + (uint64_t)t->busy_s * 1000u;

	int attempt_ms = ATTEMPT_MS_FIRST;

	for (;;) {
		tries++;
		/* Short attempts while there is time left for more. */
		r = try_connect(t, ac, inv,
				time_now_ms() + HANDSHAKE_MS < deadline ? attempt_ms : 0, err,
				errcap);
		if (attempt_ms < ATTEMPT_MS)
			attempt_ms *= 2;
		if (r == -EBUSY && time_now_ms() < busy_deadline) {
			/* A session of ours that died may not have been noticed
			 * yet: the destination lets it go when its socket closes. */
			log_info("%s; retrying", err);
			if ((r = nap(1000)))
				break;
			continue;
		}
		if (r == 0 || !retryable(r) || time_now_ms() >= deadline)
			break;
		log_debug("attempt %u: %s; retrying", tries, err);
		if ((r = nap(250)))
			break;
	}
	if (r == -EINTR && agent_stop_sig) {
		snprintf(err, errcap, "interrupted (signal %d) while connecting to %s",
			 (int)agent_stop_sig, t->text);
		return r;
	}
	if (r && tries > 1) {
		size_t n = strlen(err);

		snprintf(err + n, errcap - n, " (after %u attempts in %d s)", tries, t->wait_s);
	}
	return r;
}

int agent_status(struct agent_conn *ac, struct proto_inventory *inv, char *err,
		 size_t errcap)
{
	struct wbuf w;
	int r;

	wbuf_init(&w, ac->txbuf, sizeof(ac->txbuf));
	proto_enc_empty(&w, PROTO_STATUS_REQ);
	if ((r = agent_send(ac, &w))) {
		snprintf(err, errcap, "sending STATUS?: %s", strerror(-r));
		return r;
	}
	return expect_inventory(ac, PROTO_STATUS, inv, err, errcap);
}

void agent_bye(struct agent_conn *ac)
{
	struct proto_frame f;
	struct wbuf w;

	if (!ac->tls)
		return;
	wbuf_init(&w, ac->txbuf, sizeof(ac->txbuf));
	proto_enc_empty(&w, PROTO_BYE);
	/* Wait briefly for the destination's BYE so it logs a clean end. */
	if (!agent_send(ac, &w))
		(void)agent_recv(ac, &f, 2000);
	tls_close(ac->tls, 2000);
	ac->tls = NULL;
}
