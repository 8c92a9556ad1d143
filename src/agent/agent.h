/*
 * agent.h - the source agent `ferry`: command dispatch, the client side
 * of a session, and output for people (text) and programs (NDJSON).
 */
#ifndef FERRY_AGENT_H
#define FERRY_AGENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tls/tls.h"

enum { AGENT_EXIT_OK = 0, AGENT_EXIT_FAIL = 1, AGENT_EXIT_USAGE = 2, AGENT_EXIT_CHECK = 3 };

#define AGENT_ERR_MAX 600
#define AGENT_RX_CAP (PROTO_HDR_LEN + PROTO_CTRL_MAX)

struct agent_target {
	char host[64];
	uint16_t port;
	char text[80];		/* "host:port" for messages */
	char proxy[256];	/* http://[user:pass@]host:port, "" = direct */
	char listen[64];	/* reverse mode: "[ADDR]:PORT" to wait on, "" = dial */
	struct tls_token token;
	int wait_s;		/* retry connecting for this long */
	int busy_s;		/* retry a destination busy with another
				 * session (e.g. our own dead one) this long */
	/* An extra stream: HELLO joins this session as stream k of n. */
	uint64_t join;
	uint8_t stream, streams;
};

struct agent_conn {
	struct tls_conn *tls;
	struct proto_rx rx;
	uint8_t rxbuf[AGENT_RX_CAP];
	uint8_t txbuf[PROTO_HDR_LEN + PROTO_CTRL_MAX];
	char peer[80];		/* the destination's address in this session */
};

/* Set (to the signal's number) by a SIGINT/SIGTERM handler of the
 * command: agent_connect stops retrying and returns -EINTR. */
extern volatile sig_atomic_t agent_stop_sig;

/* Connects, handshakes with the pinned key, proves the token, reads
 * WELCOME into *inv. On failure err says what happened to whom and
 * what to do. Returns 0 or -errno. */
int agent_connect(const struct agent_target *t, struct agent_conn *ac,
		  struct proto_inventory *inv, char *err, size_t errcap);
int agent_status(struct agent_conn *ac, struct proto_inventory *inv, char *err,
		 size_t errcap);
void agent_bye(struct agent_conn *ac);
/* Sends a frame built in w (flushes the TLS record). */
int agent_send(struct agent_conn *ac, struct wbuf *w);
/* Queues bytes without flushing (DATA payloads). */
int agent_write(struct agent_conn *ac, const void *p, size_t n);
/* 1 = frame, 0 = closed, <0 error; waits at most ms (0 = only what is
 * already here). */
int agent_recv(struct agent_conn *ac, struct proto_frame *f, int ms);
/* Turns an ERROR frame into a sentence; returns a negative errno. */
int agent_error_frame(const struct proto_frame *f, char *err, size_t errcap);


int cmd_status(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_adapt(int argc, char **argv);
/* --adapt[=auto|force|dry-run] into PROTO_ADAPT_* flags; -1 when bad. */
int agent_parse_adapt(const char *arg, uint8_t *flags);

/* Shared option handling: --to, --token, --token-file, FERRY_TOKEN. */
int agent_parse_to(const char *to, struct agent_target *t, char *err, size_t errcap);
/* --proxy URL, or when arg is NULL https_proxy / HTTPS_PROXY unless
 * no_proxy / NO_PROXY names t->host (call after agent_parse_to). An
 * empty arg means direct, whatever the environment says. */
int agent_parse_proxy(const char *arg, struct agent_target *t, char *err, size_t errcap);
/* --listen [ADDR]:PORT: reverse mode, the destination dials in
 * (ferry.connect=); agent_connect then accepts, within wait_s (0: 600). */
int agent_parse_listen(const char *arg, struct agent_target *t, char *err, size_t errcap);
/* All three at once, with their conflicts: exactly one of --to and
 * --listen; --proxy only with --to. */
int agent_parse_target(const char *to, const char *listen, const char *proxy,
		       struct agent_target *t, char *err, size_t errcap);
int agent_load_token(const char *tok, const char *file, struct tls_token *t,
		     char *err, size_t errcap);

#endif
