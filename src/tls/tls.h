/*
 * tls.h - the pairing token, the keys derived from it, and TLS 1.2
 * connections driven by our own engine loop (poll with deadlines; never
 * br_sslio, whose close can spin on a dead peer). BearSSL stays behind
 * this header: nothing outside src/tls includes bearssl.h.
 *
 * Trust model (ARCHITECTURE.md section 4): the server's P-256 key is
 * derived from the token, the client derives the same public key and
 * pins it, and the client proves the token inside the session with an
 * HMAC over the TLS key exporter.
 */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <stddef.h>
#include <stdint.h>

#define TLS_TOKEN_BYTES 20	/* 160 bits of secret */
#define TLS_TOKEN_TEXT_MAX 48	/* 32 base32 chars, 7 dashes, NUL */
#define TLS_FP_TEXT_MAX 20	/* "fp:0123abcd" + NUL, with room */
#define TLS_PROOF_LEN 32	/* HMAC-SHA256 */
#define TLS_ERR_TEXT_MAX 160

struct tls_token {
	uint8_t b[TLS_TOKEN_BYTES];
};

/* Fresh token from getrandom(); -errno on failure. */
int tls_token_generate(struct tls_token *t);
/*
 * RFC 4648 base32 (A-Z, 2-7), case-insensitive; '-' and ' ' ignored;
 * exactly 32 symbols. -EINVAL otherwise; err (may be NULL) says why
 * ("token has 12 characters, need 32") without echoing the token.
 */
int tls_token_parse(const char *s, struct tls_token *t, char *err,
		    size_t errcap);
/* "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567" into buf (>= TOKEN_TEXT_MAX). */
void tls_token_format(const struct tls_token *t, char *buf, size_t cap);
/* Short public fingerprint, safe to log: "fp:" + 8 hex digits of
 * SHA-256 of the derived public key. */
void tls_token_fingerprint(const struct tls_token *t, char *buf, size_t cap);

/* Server side: derived key + self-signed certificate for one token. */
struct tls_server;
int tls_server_new(const struct tls_token *t, struct tls_server **out);
void tls_server_free(struct tls_server *s);
/* The DER certificate (for tests and for `openssl x509`). */
void tls_server_cert(const struct tls_server *s, const uint8_t **der,
		     size_t *len);

struct tls_conn;

/*
 * Timeouts: a negative timeout_ms waits forever. For the handshake and
 * tls_close it bounds the whole call; for tls_read, tls_write and
 * tls_flush it bounds the time without progress, so a long write to a
 * slow but live peer does not fail. The tls_server must outlive the
 * connections accepted with it.
 */

/*
 * Runs the server handshake on a connected fd within timeout_ms. On
 * success *out owns fd. On failure fd is closed, err holds a sentence
 * ("client aborted the handshake (alert 42: bad certificate) - wrong
 * token on the agent?").
 */
int tls_server_accept(struct tls_server *s, int fd, int timeout_ms,
		      struct tls_conn **out, char *err, size_t errcap);
/*
 * Client handshake pinning the key derived from t. Returns
 * -EKEYREJECTED when the server's key is not the token's key (wrong
 * token or not a ferry destination), -ETIMEDOUT, -ECONNRESET, -EPROTO.
 * On failure fd is closed and err holds a sentence.
 */
int tls_client_connect(const struct tls_token *t, int fd, int timeout_ms,
		       struct tls_conn **out, char *err, size_t errcap);

/* >0 bytes read, 0 on clean close_notify/EOF, -ETIMEDOUT, -ECONNRESET,
 * -EBADMSG (a record failed authentication), -EPROTO. */
int tls_read(struct tls_conn *c, void *buf, size_t len, int timeout_ms);
/* Writes all of buf into the engine (records go out as they fill). */
int tls_write(struct tls_conn *c, const void *buf, size_t len, int timeout_ms);
/* Pushes out any partial record. */
int tls_flush(struct tls_conn *c, int timeout_ms);
/* The proof of the token bound to this session (both sides compute it:
 * HMAC-SHA256(key(token), TLS exporter "EXPORTER-ferry-auth-v1")). */
int tls_auth_proof(struct tls_conn *c, const struct tls_token *t,
		   uint8_t proof[TLS_PROOF_LEN]);
/* e.g. "ECDHE-ECDSA-AES128-GCM-SHA256"; "TLS1.2". */
const char *tls_cipher_name(const struct tls_conn *c);
/* The socket, for poll() by callers that multiplex. */
int tls_fd(const struct tls_conn *c);
/* Bytes already decrypted and waiting (so poll() is not needed). */
size_t tls_pending(const struct tls_conn *c);
/* The sentence describing the last failure on c ("" if none); valid
 * until the next call on c. */
const char *tls_last_error(const struct tls_conn *c);
/* Sends close_notify within timeout_ms at most, closes fd, frees c. */
void tls_close(struct tls_conn *c, int timeout_ms);

#endif
