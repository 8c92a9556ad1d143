/*
 * conn.c - TLS 1.2 connections: BearSSL's engine driven by our own loop
 * (non-blocking send/recv, poll() against a deadline). We never use
 * br_sslio: its close spins at 100% CPU when the peer is gone, and it
 * cannot bound a handshake in time.
 *
 * Policy: TLS 1.2 only, ECDHE_ECDSA with AEAD suites only, server
 * preference enforced, no renegotiation. The server proves the token by
 * its derived key; the client pins that key (knownkey engine, so the
 * certificate's contents are ignored and the ServerKeyExchange signature
 * is the actual check) and proves the token back with tls_auth_proof().
 *
 * Each connection owns one full-duplex buffer (BR_SSL_BUFSIZE_BIDI),
 * allocated with it; nothing is allocated per record. Errors become one
 * sentence in c->err; secrets never enter it.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "tls/tls_impl.h"

#define CONN_EXPORT_LABEL "EXPORTER-ferry-auth-v1"
#define CONN_AUTH_LABEL	  "ferry auth v1"
#define CONN_EXPORT_LEN	  32
#define CONN_SEED_LEN	  32

/* What conn_pump() waits for, beyond the engine's own state bits. */
#define WANT_DRAINED 0u		   /* no outgoing record left */
#define WANT_CLOSED  BR_SSL_CLOSED /* only the peer's close_notify / EOF */

struct tls_conn {
	union {
		br_ssl_server_context srv;
		br_ssl_client_context cli;
	} u;
	br_ssl_engine_context *eng;
	br_x509_knownkey_context pin;
	br_ec_public_key pin_key;
	uint8_t pin_q[TLS_EC_PUB_LEN];
	int fd;
	int is_server;
	int hs_done;
	int rd_eof; /* the peer sent FIN */
	int wr_err; /* sending failed (-errno); later records are dropped */
	uint16_t suite;
	char err[TLS_ERR_TEXT_MAX];
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
};

static void conn_errf(struct tls_conn *c, const char *fmt, ...) FERRY_ATTR_PRINTF(2, 3);

static void conn_errf(struct tls_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static uint64_t conn_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : time_now_ms() + (uint64_t)timeout_ms;
}

/* Milliseconds for poll(): -1 forever, 0 when the deadline has passed. */
static int conn_poll_ms(uint64_t deadline)
{
	uint64_t now;

	if (deadline == UINT64_MAX)
		return -1;
	now = time_now_ms();
	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

static const char *conn_peer(const struct tls_conn *c)
{
	return c->is_server ? "client" : "destination";
}

static const char *conn_alert_name(int a)
{
	switch (a) {
	case 0: return "close notify";
	case 10: return "unexpected message";
	case 20: return "bad record mac";
	case 22: return "record overflow";
	case 40: return "handshake failure";
	case 42: return "bad certificate";
	case 43: return "unsupported certificate";
	case 44: return "certificate revoked";
	case 45: return "certificate expired";
	case 46: return "certificate unknown";
	case 47: return "illegal parameter";
	case 48: return "unknown ca";
	case 49: return "access denied";
	case 50: return "decode error";
	case 51: return "decrypt error";
	case 70: return "protocol version";
	case 71: return "insufficient security";
	case 80: return "internal error";
	case 86: return "inappropriate fallback";
	case 90: return "user canceled";
	case 100: return "no renegotiation";
	case 109: return "missing extension";
	case 110: return "unsupported extension";
	case 112: return "unrecognized name";
	default: return "unknown alert";
	}
}

/*
 * A failed engine's error code as errno plus a sentence. The knownkey
 * engine ignores the certificate, so a destination with another key
 * shows up as a bad ServerKeyExchange signature (BR_ERR_BAD_SIGNATURE,
 * measured); the other codes are kept for safety.
 */
static int conn_map_error(struct tls_conn *c, int berr)
{
	int a;

	if (berr >= BR_ERR_SEND_FATAL_ALERT) {
		a = berr - BR_ERR_SEND_FATAL_ALERT;
		if (!c->hs_done && a == 40)
			conn_errf(c,
				  "no cipher suite or curve in common with the %s "
				  "(it must offer TLS 1.2 ECDHE-ECDSA with AES-GCM "
				  "or ChaCha20)",
				  conn_peer(c));
		else if (!c->hs_done && a == 70)
			conn_errf(c, "the %s does not offer TLS 1.2", conn_peer(c));
		else
			conn_errf(c, "TLS protocol error with the %s (sent alert %d: %s)",
				  conn_peer(c), a, conn_alert_name(a));
		return -EPROTO;
	}
	if (berr >= BR_ERR_RECV_FATAL_ALERT) {
		a = berr - BR_ERR_RECV_FATAL_ALERT;
		if (c->hs_done)
			conn_errf(c, "the %s aborted the connection (alert %d: %s)", conn_peer(c),
				  a, conn_alert_name(a));
		else if (c->is_server)
			conn_errf(c, "client aborted the handshake (alert %d: %s) - %s", a,
				  conn_alert_name(a),
				  a == 42 ? "wrong token on the agent?" : "not a ferry agent?");
		else
			conn_errf(c,
				  "the destination refused the handshake "
				  "(alert %d: %s) - not a ferry destination?",
				  a, conn_alert_name(a));
		return c->hs_done ? -ECONNRESET : -EPROTO;
	}
	switch (berr) {
	case BR_ERR_BAD_SIGNATURE:
	case BR_ERR_WRONG_KEY_USAGE:
	case BR_ERR_X509_NOT_TRUSTED:
		if (!c->is_server) {
			conn_errf(c, "the destination's key does not match the token "
				     "(wrong token, or not a ferry destination)");
			return -EKEYREJECTED;
		}
		break;
	case BR_ERR_BAD_MAC:
		conn_errf(c,
			  "a TLS record from the %s failed authentication "
			  "(corrupted or tampered with in transit)",
			  conn_peer(c));
		return -EBADMSG;
	case BR_ERR_UNSUPPORTED_VERSION:
	case BR_ERR_BAD_VERSION:
		conn_errf(c, "the %s does not speak TLS 1.2 (BearSSL error %d)", conn_peer(c),
			  berr);
		return -EPROTO;
	case BR_ERR_BAD_CIPHER_SUITE:
		conn_errf(c, "the %s chose a cipher suite we do not offer", conn_peer(c));
		return -EPROTO;
	case BR_ERR_NO_RANDOM: conn_errf(c, "no entropy for TLS"); return -EIO;
	}
	conn_errf(c, "TLS protocol error with the %s (BearSSL error %d)", conn_peer(c), berr);
	return -EPROTO;
}

/* The engine is closed: 1 for an orderly close_notify, else -errno. */
static int conn_closed(struct tls_conn *c)
{
	int berr = br_ssl_engine_last_error(c->eng);

	return berr ? conn_map_error(c, berr) : 1;
}

/* Moves engine output to the socket: 1 progress, 0 would block. */
static int conn_send(struct tls_conn *c)
{
	unsigned char *buf;
	size_t len;
	ssize_t n;

	buf = br_ssl_engine_sendrec_buf(c->eng, &len);
	if (c->wr_err) {
		/* The peer is gone; drop the record so the engine can move on. */
		br_ssl_engine_sendrec_ack(c->eng, len);
		return 1;
	}
	n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0) {
		br_ssl_engine_sendrec_ack(c->eng, (size_t)n);
		return 1;
	}
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	c->wr_err = n < 0 ? -errno : -EPIPE;
	if (c->wr_err == -EPIPE)
		c->wr_err = -ECONNRESET;
	br_ssl_engine_sendrec_ack(c->eng, len);
	return 1;
}

/* Moves socket input into the engine: 1 progress (or EOF), 0 would block. */
static int conn_recv(struct tls_conn *c)
{
	unsigned char *buf;
	size_t len;
	ssize_t n;
	int err;

	buf = br_ssl_engine_recvrec_buf(c->eng, &len);
	n = recv(c->fd, buf, len, MSG_DONTWAIT);
	if (n > 0) {
		br_ssl_engine_recvrec_ack(c->eng, (size_t)n);
		return 1;
	}
	if (n == 0) {
		c->rd_eof = 1;
		return 1;
	}
	err = errno;
	if (err == EINTR)
		return 1;
	if (err == EAGAIN || err == EWOULDBLOCK)
		return 0;
	if (err == ECONNRESET)
		conn_errf(c, "the connection was reset by the %s", conn_peer(c));
	else
		conn_errf(c, "receiving from the %s failed: %s", conn_peer(c), strerror(err));
	return -err;
}

/*
 * After a failed send, input that already arrived may hold the peer's
 * reason (a fatal alert), which says more than EPIPE. Reads only what is
 * there, and stops at application data the caller has not read yet.
 */
static int conn_peer_reason(struct tls_conn *c)
{
	unsigned st;
	int i;

	for (i = 0; i < 8; i++) {
		st = br_ssl_engine_current_state(c->eng);
		if (st & BR_SSL_CLOSED)
			return conn_closed(c) < 0 ? -1 : 0;
		if ((st & BR_SSL_RECVAPP) || !(st & BR_SSL_RECVREC) || c->rd_eof ||
		    conn_recv(c) <= 0)
			break;
	}
	return 0;
}

static int conn_is_write_want(unsigned want)
{
	return want == BR_SSL_SENDAPP || want == WANT_DRAINED;
}

/*
 * Runs the engine until `want` holds: an engine state bit
 * (BR_SSL_SENDAPP, BR_SSL_RECVAPP), WANT_DRAINED, or WANT_CLOSED.
 * Output is always pushed first, so records never wait behind a read.
 * Returns 0 when reached, 1 when the peer closed (close_notify or EOF),
 * -ETIMEDOUT at the deadline, another -errno on failure (c->err says
 * what happened).
 */
static int conn_pump(struct tls_conn *c, unsigned want, uint64_t deadline)
{
	for (;;) {
		unsigned st = br_ssl_engine_current_state(c->eng);
		struct pollfd pfd;
		int r, ms;

		pfd.fd = c->fd;
		pfd.events = 0;
		pfd.revents = 0;
		if (st & BR_SSL_CLOSED)
			return conn_closed(c);
		if (c->wr_err && conn_is_write_want(want)) {
			if (conn_peer_reason(c) < 0)
				return conn_closed(c);
			conn_errf(c, "sending to the %s failed: %s", conn_peer(c),
				  strerror(-c->wr_err));
			return c->wr_err;
		}
		if (st & BR_SSL_SENDREC) {
			if ((r = conn_send(c)) > 0)
				continue;
			pfd.events |= POLLOUT;
		}
		if (want == WANT_DRAINED ? !(st & BR_SSL_SENDREC)
					 : (want != WANT_CLOSED && (st & want)))
			return 0;
		if ((st & BR_SSL_RECVREC) && !c->rd_eof) {
			if ((r = conn_recv(c)) < 0)
				return r;
			if (r > 0)
				continue;
			pfd.events |= POLLIN;
		}
		if (!pfd.events) {
			if (c->rd_eof && !c->hs_done) {
				conn_errf(c,
					  "the %s closed the connection during the "
					  "handshake",
					  conn_peer(c));
				return -ECONNRESET;
			}
			if (c->rd_eof)
				return 1;
			/* The engine wants nothing: never spin on it. */
			conn_errf(c, "TLS engine stalled (state 0x%x)", st);
			return -EPROTO;
		}
		ms = conn_poll_ms(deadline);
		if (ms == 0) {
			conn_errf(c, "timed out waiting for the %s", conn_peer(c));
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
			r = -errno;
			conn_errf(c, "poll: %s", strerror(-r));
			return r;
		}
		/* Readiness, HUP or ERR: the next send/recv reports it. */
	}
}

/* One non-blocking attempt to push whole records out (latency). */
static void conn_push(struct tls_conn *c)
{
	unsigned st = br_ssl_engine_current_state(c->eng);

	while ((st & BR_SSL_SENDREC) && !c->wr_err && conn_send(c) > 0)
		st = br_ssl_engine_current_state(c->eng);
}

/*
 * AES-GCM first when the CPU has AES-NI and PCLMUL (BearSSL then runs
 * it near 1 GB/s against ~240 MB/s for ChaCha20); without them BearSSL's
 * constant-time AES is the slow one and ChaCha20 goes first.
 */
static size_t conn_suites(uint16_t s[3])
{
	if (br_aes_x86ni_ctr_get_vtable() && br_ghash_pclmul_get()) {
		s[0] = BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
		s[1] = BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384;
		s[2] = BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256;
	} else {
		s[0] = BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256;
		s[1] = BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
		s[2] = BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384;
	}
	return 3;
}

static int conn_random(void *p, size_t n)
{
	uint8_t *b = p;
	ssize_t r;

	while (n > 0) {
		r = getrandom(b, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * What both ends share; the context has just been zeroed. The entropy
 * comes from getrandom() so a missing /dev/urandom cannot stop us
 * (BearSSL still tries its own OS seeder once and keeps ours if that
 * fails).
 */
static int conn_engine_setup(struct tls_conn *c)
{
	br_ssl_engine_context *eng = c->eng;
	uint16_t suites[3];
	uint8_t seed[CONN_SEED_LEN];
	int err;

	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(eng, suites, conn_suites(suites));
	br_ssl_engine_set_default_ec(eng);
	/* SHA-256 for the PRF and signatures, SHA-384 for AES-256's PRF. */
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
	br_ssl_engine_set_default_chapol(eng);
	br_ssl_engine_add_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_buffer(eng, c->iobuf, sizeof(c->iobuf), 1);
	if ((err = conn_random(seed, sizeof(seed)))) {
		conn_errf(c, "getrandom: %s", strerror(-err));
		return err;
	}
	br_ssl_engine_inject_entropy(eng, seed, sizeof(seed));
	mem_wipe(seed, sizeof(seed));
	return 0;
}

static struct tls_conn *conn_new(int fd, int is_server)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->is_server = is_server;
	c->eng = is_server ? &c->u.srv.eng : &c->u.cli.eng;
	return c;
}

static void conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	/* The engine holds session keys and the master secret. */
	mem_wipe(c, sizeof(*c));
	free(c);
}

static void conn_copy_err(const struct tls_conn *c, char *err, size_t errcap)
{
	if (err && errcap)
		snprintf(err, errcap, "%s", c->err);
}

/* Runs the handshake to completion and pushes our last flight out. */
static int conn_handshake(struct tls_conn *c, int timeout_ms)
{
	br_ssl_session_parameters sp;
	uint64_t deadline = conn_deadline(timeout_ms);
	int r;

	r = conn_pump(c, BR_SSL_SENDAPP, deadline);
	if (r == 1) {
		conn_errf(c, "the %s closed the connection during the handshake", conn_peer(c));
		r = -ECONNRESET;
	}
	if (r == 0) {
		c->hs_done = 1;
		/* A peer that hangs up right away is the next read's news. */
		if ((r = conn_pump(c, WANT_DRAINED, deadline)) == 1)
			r = 0;
	}
	if (r == -ETIMEDOUT)
		conn_errf(c,
			  "the TLS handshake with the %s did not complete "
			  "within %d.%d s",
			  conn_peer(c), timeout_ms / 1000, timeout_ms % 1000 / 100);
	if (r)
		return r;
	br_ssl_engine_get_session_parameters(c->eng, &sp);
	c->suite = sp.cipher_suite;
	mem_wipe(&sp, sizeof(sp));
	return 0;
}

int tls_server_accept(struct tls_server *s, int fd, int timeout_ms, struct tls_conn **out,
		      char *err, size_t errcap)
{
	struct tls_conn *c;
	int rc;

	*out = NULL;
	if (err && errcap)
		err[0] = 0;
	c = conn_new(fd, 1);
	if (!c) {
		close(fd);
		if (err && errcap)
			snprintf(err, errcap, "out of memory for a TLS connection");
		return -ENOMEM;
	}
	br_ssl_server_zero(&c->u.srv);
	if ((rc = conn_engine_setup(c)))
		goto out;
	br_ssl_server_set_single_ec(&c->u.srv, &s->chain, 1, &s->sk, BR_KEYTYPE_SIGN, BR_KEYTYPE_EC,
				    br_ssl_engine_get_ec(c->eng), br_ecdsa_sign_asn1_get_default());
	if (!br_ssl_server_reset(&c->u.srv)) {
		rc = conn_closed(c);
		rc = rc < 0 ? rc : -EPROTO;
		goto out;
	}
	rc = conn_handshake(c, timeout_ms);
out:
	if (rc) {
		conn_copy_err(c, err, errcap);
		conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/*
 * BearSSL fails a pinned-key mismatch silently (no alert), which would
 * leave the destination with a bare EOF. Tell it, so its operator reads
 * "wrong token on the agent?". We are still before ChangeCipherSpec, so
 * a plaintext TLS 1.2 record is the correct form: fatal bad_certificate.
 */
static void conn_send_bad_cert_alert(int fd)
{
	static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 42};

	(void)!send(fd, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int tls_client_connect(const struct tls_token *t, int fd, int timeout_ms, struct tls_conn **out,
		       char *err, size_t errcap)
{
	struct tls_conn *c;
	int rc;

	*out = NULL;
	if (err && errcap)
		err[0] = 0;
	c = conn_new(fd, 0);
	if (!c) {
		close(fd);
		if (err && errcap)
			snprintf(err, errcap, "out of memory for a TLS connection");
		return -ENOMEM;
	}
	if ((rc = tls_key_derive(t, NULL, c->pin_q))) {
		conn_errf(c, "cannot derive the token's key: %s", strerror(-rc));
		goto out;
	}
	c->pin_key.curve = BR_EC_secp256r1;
	c->pin_key.q = c->pin_q;
	c->pin_key.qlen = sizeof(c->pin_q);
	br_ssl_client_zero(&c->u.cli);
	if ((rc = conn_engine_setup(c)))
		goto out;
	br_ssl_engine_set_default_ecdsa(c->eng);
	br_x509_knownkey_init_ec(&c->pin, &c->pin_key, BR_KEYTYPE_SIGN);
	br_ssl_engine_set_x509(c->eng, &c->pin.vtable);
	/* No SNI: the destination is an address, and has one key anyway. */
	if (!br_ssl_client_reset(&c->u.cli, NULL, 0)) {
		rc = conn_closed(c);
		rc = rc < 0 ? rc : -EPROTO;
		goto out;
	}
	rc = conn_handshake(c, timeout_ms);
	if (rc == -EKEYREJECTED)
		conn_send_bad_cert_alert(c->fd);
out:
	if (rc) {
		conn_copy_err(c, err, errcap);
		conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int tls_read(struct tls_conn *c, void *buf, size_t len, int timeout_ms)
{
	unsigned char *p;
	size_t n;
	int r;

	if (len == 0)
		return -EINVAL;
	r = conn_pump(c, BR_SSL_RECVAPP, conn_deadline(timeout_ms));
	if (r == 1)
		return 0;
	if (r < 0)
		return r;
	p = br_ssl_engine_recvapp_buf(c->eng, &n);
	if (n > len)
		n = len;
	if (n > INT_MAX)
		n = INT_MAX;
	memcpy(buf, p, n);
	br_ssl_engine_recvapp_ack(c->eng, n);
	return (int)n;
}

int tls_write(struct tls_conn *c, const void *buf, size_t len, int timeout_ms)
{
	const unsigned char *src = buf;
	unsigned char *p;
	size_t n;
	int r;

	while (len > 0) {
		/* A fresh deadline per step: the bound is on lack of progress. */
		r = conn_pump(c, BR_SSL_SENDAPP, conn_deadline(timeout_ms));
		if (r == 1) {
			conn_errf(c, "the %s closed the connection", conn_peer(c));
			return -ECONNRESET;
		}
		if (r < 0)
			return r;
		p = br_ssl_engine_sendapp_buf(c->eng, &n);
		if (n > len)
			n = len;
		memcpy(p, src, n);
		br_ssl_engine_sendapp_ack(c->eng, n);
		src += n;
		len -= n;
	}
	conn_push(c);
	return 0;
}

int tls_flush(struct tls_conn *c, int timeout_ms)
{
	int r;

	br_ssl_engine_flush(c->eng, 0);
	r = conn_pump(c, WANT_DRAINED, conn_deadline(timeout_ms));
	if (r == 1) {
		conn_errf(c, "the %s closed the connection", conn_peer(c));
		return -ECONNRESET;
	}
	return r;
}

int tls_auth_proof(struct tls_conn *c, const struct tls_token *t, uint8_t proof[TLS_PROOF_LEN])
{
	br_hmac_key_context kc;
	br_hmac_context hc;
	uint8_t ekm[CONN_EXPORT_LEN], key[br_sha256_SIZE];
	int err = 0;

	if (!br_ssl_key_export(c->eng, ekm, sizeof(ekm), CONN_EXPORT_LABEL, NULL, 0)) {
		conn_errf(c, "TLS session is not established");
		err = -ENOTCONN;
		goto out;
	}
	/* key = HMAC(token, label): the raw token never keys the proof. */
	br_hmac_key_init(&kc, &br_sha256_vtable, t->b, sizeof(t->b));
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, CONN_AUTH_LABEL, sizeof(CONN_AUTH_LABEL) - 1);
	br_hmac_out(&hc, key);
	br_hmac_key_init(&kc, &br_sha256_vtable, key, sizeof(key));
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, ekm, sizeof(ekm));
	br_hmac_out(&hc, proof);
out:
	mem_wipe(&kc, sizeof(kc));
	mem_wipe(&hc, sizeof(hc));
	mem_wipe(ekm, sizeof(ekm));
	mem_wipe(key, sizeof(key));
	return err;
}

const char *tls_cipher_name(const struct tls_conn *c)
{
	switch (c->suite) {
	case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: return "ECDHE-ECDSA-AES128-GCM-SHA256";
	case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: return "ECDHE-ECDSA-AES256-GCM-SHA384";
	case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-ECDSA-CHACHA20-POLY1305";
	default: return "unknown";
	}
}

int tls_fd(const struct tls_conn *c)
{
	return c->fd;
}

size_t tls_pending(const struct tls_conn *c)
{
	size_t n = 0;

	if (!br_ssl_engine_recvapp_buf(c->eng, &n))
		return 0;
	return n;
}

const char *tls_last_error(const struct tls_conn *c)
{
	return c->err;
}

/*
 * close_notify, then a lingering close: shut our side, and drain until
 * the peer's close_notify or EOF so unread input does not turn our
 * close() into a RST that could cost the peer its last bytes. All of it
 * within timeout_ms; a dead peer ends it at the first failed send.
 */
void tls_close(struct tls_conn *c, int timeout_ms)
{
	uint64_t deadline;
	unsigned char *p;
	size_t n;

	if (!c)
		return;
	deadline = conn_deadline(timeout_ms);
	if (!(br_ssl_engine_current_state(c->eng) & BR_SSL_CLOSED) && !c->wr_err) {
		/* Unread application data would block the engine's close. */
		while ((p = br_ssl_engine_recvapp_buf(c->eng, &n)) != NULL)
			br_ssl_engine_recvapp_ack(c->eng, n);
		br_ssl_engine_close(c->eng);
		if (conn_pump(c, WANT_DRAINED, deadline) == 0 && !c->wr_err) {
			shutdown(c->fd, SHUT_WR);
			if (!c->rd_eof)
				(void)conn_pump(c, WANT_CLOSED, deadline);
		}
	}
	conn_free(c);
}
