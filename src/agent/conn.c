/*
 * conn.c - the agent's side of a session: connect (retrying while the
 * destination boots), TLS with the token-pinned key, HELLO with the
 * proof, and reading frames with deadlines. Every ERROR from the
 * destination becomes a sentence for the operator.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		snprintf(err, errcap, "unexpected %s from the destination (wanted %s)",
			 proto_type_name(f.type), proto_type_name(type));
		return -EPROTO;
	}
	return 0;
}

/* While waiting for a booting destination, each attempt is short: a
 * connection QEMU's user network accepted before the guest listened
 * hangs rather than fails. */
#define ATTEMPT_MS 2000

static int try_connect(const struct agent_target *t, struct agent_conn *ac,
		       struct proto_inventory *inv, int quick, char *err, size_t errcap)
{
	char terr[TLS_ERR_TEXT_MAX], host[64];
	struct proto_hello h;
	struct wbuf w;
	int fd, r;

	fd = net_connect(t->host, t->port, quick ? ATTEMPT_MS : CONNECT_MS);
	if (fd < 0) {
		snprintf(err, errcap, "cannot connect to %s: %s", t->text, strerror(-fd));
		return fd;
	}
	r = tls_client_connect(&t->token, fd, quick ? ATTEMPT_MS : HANDSHAKE_MS, &ac->tls, terr,
			       sizeof(terr));
	if (r) {
		snprintf(err, errcap, "%s: TLS handshake failed: %s", t->text, terr);
		return r;
	}
	memset(&h, 0, sizeof(h));
	h.ver_min = h.ver_max = PROTO_VERSION;
	snprintf(h.agent, sizeof(h.agent), "ferry %s", FERRY_VERSION);
	if (gethostname(host, sizeof(host) - 1) == 0) {
		host[sizeof(host) - 1] = 0;
		snprintf(h.host, sizeof(h.host), "%s", host);
	}
	if ((r = tls_auth_proof(ac->tls, &t->token, h.proof))) {
		snprintf(err, errcap, "%s: cannot compute the session proof", t->text);
		goto fail;
	}
	proto_rx_init(&ac->rx, ac->rxbuf, sizeof(ac->rxbuf));
	wbuf_init(&w, ac->txbuf, sizeof(ac->txbuf));
	proto_enc_hello(&w, &h);
	mem_wipe(h.proof, sizeof(h.proof));
	if ((r = agent_send(ac, &w))) {
		snprintf(err, errcap, "%s: sending HELLO: %s", t->text, strerror(-r));
		goto fail;
	}
	if ((r = expect_inventory(ac, PROTO_WELCOME, inv, err, errcap)))
		goto fail;
	return 0;
fail:
	tls_close(ac->tls, 1000);
	ac->tls = NULL;
	return r;
}

static int retryable(int r)
{
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT ||
	       r == -EHOSTUNREACH || r == -ENETUNREACH || r == -EPIPE || r == -EPROTO;
}

int agent_connect(const struct agent_target *t, struct agent_conn *ac,
		  struct proto_inventory *inv, char *err, size_t errcap)
{
	uint64_t deadline = time_now_ms() + (uint64_t)t->wait_s * 1000u;
	unsigned tries = 0;
	int r;

	for (;;) {
		tries++;
		/* Short attempts while there is time left for more. */
		r = try_connect(t, ac, inv,
				time_now_ms() + HANDSHAKE_MS < deadline, err, errcap);
		if (r == 0 || !retryable(r) || time_now_ms() >= deadline)
			break;
		log_debug("attempt %u: %s; retrying", tries, err);
		usleep(250000);
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

const char *agent_json_str(const char *s, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap < 3) {
		if (cap)
			buf[0] = 0;
		return buf;
	}
	buf[o++] = '"';
	for (; *s && o + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}
