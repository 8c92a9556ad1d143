/*
 * test_tls.c - src/tls on the host: the token text format (round trips,
 * a fixed vector, a rejection table), the token-derived key and
 * certificate (deterministic, decoded by BearSSL to the same key, its
 * signature verified, accepted by openssl), and real TLS sessions over
 * loopback against a forked server: the right token, the wrong token,
 * peers that vanish, stay silent or never speak TLS. Every wait in here
 * is bounded; an alarm() backs that up so a regression cannot hang CI.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"
#include "tls/tls.h"
#include "tls/tls_impl.h"
#include "tests/tap.h"

#define MIB	 (1024u * 1024u)
#define DATA_LEN (8 * MIB)
/* fp of the all-zero token: pinned so the derivation cannot drift. */
#define KAT_ZERO_FP "0042d9ec"
#define KEY_MISMATCH_TEXT                                                                          \
	"the destination's key does not match the token (wrong token, or not a ferry destination)"

/* ---- helpers -------------------------------------------------------- */

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#define FNV0 0xcbf29ce484222325ull

static int have_openssl(void)
{
	return system("openssl version >/dev/null 2>&1") == 0;
}

/* Runs cmd, returns its exit status; out gets stdout (NUL-terminated). */
static int run_capture(const char *cmd, char *out, size_t cap, size_t *len)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0, r;

	if (!f)
		return -1;
	while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, f)) > 0)
		n += r;
	out[n] = 0;
	if (len)
		*len = n;
	return pclose(f);
}

/* ---- token ---------------------------------------------------------- */

static void test_token_vector(void)
{
	struct tls_token t, u;
	char buf[TLS_TOKEN_TEXT_MAX], err[TLS_ERR_TEXT_MAX];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(t.b); i++)
		t.b[i] = (uint8_t)i;
	tls_token_format(&t, buf, sizeof(buf));
	/* python3: base64.b32encode(bytes(range(20))) */
	ok(strcmp(buf, "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT") == 0,
	   "format matches RFC 4648 base32 in groups of 4 (%s)", buf);
	rc = tls_token_parse("777P37H37L47R57W6X2PH4XR6DX653PM", &u, err, sizeof(err));
	for (i = 0; i < sizeof(t.b); i++)
		t.b[i] = (uint8_t)(0xff - i);
	ok(rc == 0 && memcmp(t.b, u.b, sizeof(t.b)) == 0, "parse of a known vector without dashes");
	tls_token_format(&t, buf, 10);
	ok(buf[0] == 0, "format into a short buffer writes an empty string");
}

static void test_token_roundtrip(void)
{
	struct tls_token a, b, c;
	char text[TLS_TOKEN_TEXT_MAX], lower[TLS_TOKEN_TEXT_MAX];
	char spaced[TLS_TOKEN_TEXT_MAX + 8], err[TLS_ERR_TEXT_MAX];
	size_t i, j;
	int good = 1;

	ok(tls_token_generate(&a) == 0 && tls_token_generate(&b) == 0, "generate two tokens");
	ok(memcmp(a.b, b.b, sizeof(a.b)) != 0, "two generated tokens differ");
	tls_token_format(&a, text, sizeof(text));
	is_int(strlen(text), 39, "formatted token is 39 characters");
	for (i = 0; i < 39; i++)
		if ((i % 5 == 4) != (text[i] == '-'))
			good = 0;
	ok(good, "dashes every 4 symbols: %.4s-...", text);
	ok(tls_token_parse(text, &c, err, sizeof(err)) == 0 && memcmp(a.b, c.b, sizeof(a.b)) == 0,
	   "format -> parse round trip");
	for (i = 0; text[i]; i++)
		lower[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] + 32 : text[i]);
	lower[i] = 0;
	memset(&c, 0, sizeof(c));
	ok(tls_token_parse(lower, &c, err, sizeof(err)) == 0 && memcmp(a.b, c.b, sizeof(a.b)) == 0,
	   "lowercase parses to the same token");
	for (i = 0, j = 0; text[i]; i++)
		spaced[j++] = text[i] == '-' ? ' ' : text[i];
	spaced[j] = 0;
	memset(&c, 0, sizeof(c));
	ok(tls_token_parse(spaced, &c, err, sizeof(err)) == 0 && memcmp(a.b, c.b, sizeof(a.b)) == 0,
	   "spaces instead of dashes parse too");
}

struct bad_token {
	const char *in;
	const char *why; /* substring of the error message */
};

static const struct bad_token bad_tokens[] = {
    {"", "has 0 characters, need 32"},
    {"----", "has 0 characters"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ23456", "has 31 characters, need 32"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ2345677", "has 33 characters, need 32"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ234560", "invalid character at position 32"},
    {"1BCDEFGHIJKLMNOPQRSTUVWXYZ234567", "invalid character at position 1"},
    {"ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4568", "position 39"},
    {"ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-456=", "invalid character"},
    {"ABCD_EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567", "position 5"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567\n", "invalid character"},
    {"ABCDEFGH\xc3\x84JKLMNOPQRSTUVWXYZ23456", "invalid character"},
};

static void test_token_reject(void)
{
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(bad_tokens); i++) {
		const struct bad_token *tc = &bad_tokens[i];
		struct tls_token t;
		char err[TLS_ERR_TEXT_MAX];
		int rc;

		memset(&t, 0x5a, sizeof(t));
		rc = tls_token_parse(tc->in, &t, err, sizeof(err));
		ok(rc == -EINVAL && strstr(err, tc->why) && t.b[0] == 0x5a, "reject #%zu: \"%s\"",
		   i, err);
		/* The message must not quote the secret back. */
		if (strlen(tc->in) >= 8) {
			char probe[9];

			memcpy(probe, tc->in, 8);
			probe[8] = 0;
			ok(!strstr(err, probe), "reject #%zu does not echo the token", i);
		}
	}
	ok(tls_token_parse(NULL, NULL, NULL, 0) == -EINVAL, "NULL token refused");
}

/* ---- keys and certificate ------------------------------------------- */

static void test_keys(const struct tls_token *a, const struct tls_token *b)
{
	uint8_t sk1[TLS_EC_PRIV_LEN], sk2[TLS_EC_PRIV_LEN], skb[TLS_EC_PRIV_LEN];
	uint8_t pub1[TLS_EC_PUB_LEN], pub2[TLS_EC_PUB_LEN], pubb[TLS_EC_PUB_LEN];
	uint8_t pub_only[TLS_EC_PUB_LEN], q[BR_EC_KBUF_PUB_MAX_SIZE];
	char fa[TLS_FP_TEXT_MAX], fa2[TLS_FP_TEXT_MAX], fb[TLS_FP_TEXT_MAX];
	br_ec_private_key sk;
	struct tls_token zero;

	ok(tls_key_derive(a, sk1, pub1) == 0 && tls_key_derive(a, sk2, pub2) == 0, "derive twice");
	ok(memcmp(sk1, sk2, sizeof(sk1)) == 0 && memcmp(pub1, pub2, sizeof(pub1)) == 0,
	   "same token -> same key pair");
	ok(tls_key_derive(a, NULL, pub_only) == 0 && memcmp(pub1, pub_only, sizeof(pub1)) == 0,
	   "public-only derivation (the agent's) gives the same point");
	ok(tls_key_derive(b, skb, pubb) == 0 && memcmp(sk1, skb, sizeof(sk1)) != 0 &&
	       memcmp(pub1, pubb, sizeof(pub1)) != 0,
	   "different token -> different key pair");
	sk.curve = BR_EC_secp256r1;
	sk.x = sk1;
	sk.xlen = sizeof(sk1);
	ok(br_ec_compute_pub(br_ec_get_default(), NULL, q, &sk) == TLS_EC_PUB_LEN &&
	       memcmp(q, pub1, TLS_EC_PUB_LEN) == 0 && pub1[0] == 0x04,
	   "public key is sk*G, uncompressed");

	tls_token_fingerprint(a, fa, sizeof(fa));
	tls_token_fingerprint(a, fa2, sizeof(fa2));
	tls_token_fingerprint(b, fb, sizeof(fb));
	ok(strlen(fa) == 11 && strncmp(fa, "fp:", 3) == 0 &&
	       strspn(fa + 3, "0123456789abcdef") == 8,
	   "fingerprint format (%s)", fa);
	ok(strcmp(fa, fa2) == 0 && strcmp(fa, fb) != 0,
	   "fingerprint is stable per token, differs across tokens");
	/*
	 * Known answer: agent and destination of different builds must
	 * derive the same key. If this changes, the derivation changed:
	 * bump "ferry tls key v1" instead.
	 */
	memset(&zero, 0, sizeof(zero));
	tls_token_fingerprint(&zero, fa, sizeof(fa));
	ok(strcmp(fa, "fp:" KAT_ZERO_FP) == 0, "known answer: all-zero token -> %s (want fp:%s)",
	   fa, KAT_ZERO_FP);
	mem_wipe(sk1, sizeof(sk1));
	mem_wipe(sk2, sizeof(sk2));
	mem_wipe(skb, sizeof(skb));
}

struct dn_buf {
	char s[256];
	size_t n;
};

static void dn_append(void *ctx, const void *buf, size_t len)
{
	struct dn_buf *d = ctx;

	if (len > sizeof(d->s) - 1 - d->n)
		len = sizeof(d->s) - 1 - d->n;
	memcpy(d->s + d->n, buf, len);
	d->n += len;
	d->s[d->n] = 0;
}

/* Minimal DER walk: the TLV at c, its value in val/vlen, all of it in tlv/tlen. */
static int der_next(struct cur *c, uint8_t tag, const uint8_t **tlv, size_t *tlen,
		    const uint8_t **val, size_t *vlen)
{
	size_t start = c->off, len = 0;
	uint8_t t = 0, b = 0, i;

	cur_u8(c, &t);
	cur_u8(c, &b);
	if (b & 0x80) {
		for (i = 0; i < (b & 0x7f); i++) {
			uint8_t x = 0;

			cur_u8(c, &x);
			len = len << 8 | x;
		}
	} else {
		len = b;
	}
	if (c->err || t != tag)
		return -1;
	if (cur_ref(c, val, len))
		return -1;
	*vlen = len;
	*tlv = c->p + start;
	*tlen = c->off - start;
	return 0;
}

static void test_cert(const struct tls_token *a, const struct tls_token *b)
{
	struct tls_server *s1 = NULL, *s2 = NULL, *s3 = NULL;
	const uint8_t *d1, *d2, *d3, *tbs, *v, *sig, *x;
	size_t l1, l2, l3, tbs_len, vlen, sig_len, xlen;
	uint8_t pub[TLS_EC_PUB_LEN], hash[32], tbs_copy[TLS_CERT_MAX];
	br_x509_decoder_context *dc;
	const br_x509_pkey *pk;
	br_ec_public_key ecpub;
	br_sha256_context h;
	struct dn_buf dn;
	struct cur c, in;
	char fp[TLS_FP_TEXT_MAX], want_cn[40];

	ok(tls_server_new(a, &s1) == 0 && tls_server_new(a, &s2) == 0 &&
	       tls_server_new(b, &s3) == 0,
	   "tls_server_new for two tokens");
	if (!s1 || !s2 || !s3)
		goto out;
	tls_server_cert(s1, &d1, &l1);
	tls_server_cert(s2, &d2, &l2);
	tls_server_cert(s3, &d3, &l3);
	ok(l1 > 300 && l1 < TLS_CERT_MAX, "certificate is %zu bytes", l1);
	ok(l1 == l2 && memcmp(d1, d2, l1) == 0,
	   "same token -> byte-identical certificate (RFC 6979 signature)");
	ok(l1 != l3 || memcmp(d1, d3, l1) != 0, "different token -> other certificate");

	tls_key_derive(a, NULL, pub);
	dc = calloc(1, sizeof(*dc));
	memset(&dn, 0, sizeof(dn));
	br_x509_decoder_init(dc, dn_append, &dn);
	br_x509_decoder_push(dc, d1, l1);
	pk = br_x509_decoder_get_pkey(dc);
	ok(pk != NULL, "br_x509_decoder accepts it (error %d)", br_x509_decoder_last_error(dc));
	ok(pk && pk->key_type == BR_KEYTYPE_EC && pk->key.ec.curve == BR_EC_secp256r1 &&
	       pk->key.ec.qlen == TLS_EC_PUB_LEN && memcmp(pk->key.ec.q, pub, TLS_EC_PUB_LEN) == 0,
	   "decoded key is the token's P-256 key");
	ok(!br_x509_decoder_isCA(dc), "not a CA (basicConstraints CA:FALSE)");
	ok(br_x509_decoder_get_signer_key_type(dc) == BR_KEYTYPE_EC &&
	       br_x509_decoder_get_signer_hash_id(dc) == br_sha256_ID,
	   "signed ecdsa-with-SHA256");
	tls_token_fingerprint(a, fp, sizeof(fp));
	snprintf(want_cn, sizeof(want_cn), "ferry %s", fp);
	ok(memmem(dn.s, dn.n, want_cn, strlen(want_cn)) != NULL, "subject CN is \"%s\"", want_cn);
	free(dc);

	/* Certificate ::= SEQUENCE { tbs, algorithm, BIT STRING signature } */
	cur_init(&c, d1, l1);
	ok(der_next(&c, 0x30, &x, &xlen, &v, &vlen) == 0 && cur_left(&c) == 0,
	   "outer SEQUENCE spans the whole DER");
	cur_init(&in, v, vlen);
	der_next(&in, 0x30, &tbs, &tbs_len, &x, &xlen);
	der_next(&in, 0x30, &x, &xlen, &v, &vlen);
	der_next(&in, 0x03, &x, &xlen, &sig, &sig_len);
	ok(!in.err && cur_left(&in) == 0 && sig_len > 1 && sig[0] == 0,
	   "tbs, algorithm, signature and nothing else");
	if (!in.err && sig_len > 1) {
		ecpub.curve = BR_EC_secp256r1;
		ecpub.q = pub;
		ecpub.qlen = sizeof(pub);
		br_sha256_init(&h);
		br_sha256_update(&h, tbs, tbs_len);
		br_sha256_out(&h, hash);
		ok(br_ecdsa_vrfy_asn1_get_default()(br_ec_get_default(), hash, 32, &ecpub, sig + 1,
						    sig_len - 1) == 1,
		   "self-signature verifies with the derived key");
		memcpy(tbs_copy, tbs, tbs_len);
		tbs_copy[tbs_len / 2] ^= 1;
		br_sha256_init(&h);
		br_sha256_update(&h, tbs_copy, tbs_len);
		br_sha256_out(&h, hash);
		ok(br_ecdsa_vrfy_asn1_get_default()(br_ec_get_default(), hash, 32, &ecpub, sig + 1,
						    sig_len - 1) == 0,
		   "a flipped bit in the TBS breaks the signature");
	}
out:
	tls_server_free(s1);
	tls_server_free(s2);
	tls_server_free(s3);
}

static void test_cert_openssl(const struct tls_token *a)
{
	struct tls_server *s = NULL;
	const uint8_t *der;
	size_t len, n = 0;
	uint8_t pub[TLS_EC_PUB_LEN];
	char path[] = "/tmp/ferry-test-cert-XXXXXX", cmd[256];
	static char out[16384];
	int fd, st;

	if (!have_openssl()) {
		skip("openssl not installed: certificate not cross-checked");
		return;
	}
	if (tls_server_new(a, &s))
		return;
	tls_server_cert(s, &der, &len);
	tls_key_derive(a, NULL, pub);
	fd = mkstemp(path);
	if (fd < 0 || fd_write_all(fd, der, len)) {
		skip("cannot write a temporary file");
		goto out;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "openssl x509 -inform der -in %s -noout -text 2>&1", path);
	st = run_capture(cmd, out, sizeof(out), NULL);
	ok(st == 0, "openssl x509 -text parses it (status %d)", st);
	ok(strstr(out, "Version: 3 (0x2)") && strstr(out, "ecdsa-with-SHA256") &&
	       strstr(out, "prime256v1") && strstr(out, "CA:FALSE") &&
	       strstr(out, "Digital Signature") && strstr(out, "Subject: CN = ferry fp:") &&
	       strstr(out, "Not After : Dec 31 23:59:59 9999 GMT") &&
	       strstr(out, "Not Before: Jan  1 00:00:00 2024 GMT"),
	   "openssl sees v3, ecdsa-with-SHA256, P-256, CA:FALSE, digitalSignature, "
	   "CN, validity 2024..9999");
	if (st != 0)
		note("%s", out);
	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -inform der -in %s -noout -pubkey 2>/dev/null | "
		 "openssl pkey -pubin -outform der 2>/dev/null",
		 path);
	st = run_capture(cmd, out, sizeof(out), &n);
	/* SubjectPublicKeyInfo for P-256 is 91 bytes, the point at the end. */
	ok(st == 0 && n == 91 && memcmp(out + n - TLS_EC_PUB_LEN, pub, TLS_EC_PUB_LEN) == 0,
	   "openssl x509 -pubkey prints the derived key (%zu bytes)", n);
	unlink(path);
out:
	tls_server_free(s);
}

/* ---- loopback sessions ---------------------------------------------- */

enum srv_mode {
	M_NORMAL,    /* read DATA_LEN, send DATA_LEN back, expect close_notify */
	M_DRAIN,     /* read until close */
	M_DIE_READ,  /* read 1 MiB, then vanish without close_notify */
	M_DIE_WRITE, /* send 1 MiB, then vanish */
	M_IDLE,	     /* handshake, then neither read nor close for 3 s */
	M_SILENT,    /* accept TCP, never speak TLS */
};

struct srv_result {
	int rc;
	char err[TLS_ERR_TEXT_MAX];
	char cipher[48];
	uint8_t proof[TLS_PROOF_LEN];
	int proof_rc;
	uint64_t got;
	uint64_t sum;
	int last_read;
	int close_ms;
};

static void server_child(const struct tls_token *t, int lfd, enum srv_mode mode, int resfd)
{
	struct srv_result r;
	struct tls_server *s = NULL;
	struct tls_conn *c = NULL;
	static uint8_t buf[64 * 1024];
	uint8_t *data;
	uint64_t t0;
	int fd, n;

	memset(&r, 0, sizeof(r));
	r.rc = tls_server_new(t, &s);
	if (r.rc)
		goto report;
	fd = net_accept(lfd, NULL, 0);
	if (mode == M_SILENT) {
		sleep(3);
		_exit(0);
	}
	r.rc = tls_server_accept(s, fd, 3000, &c, r.err, sizeof(r.err));
	if (r.rc)
		goto report;
	snprintf(r.cipher, sizeof(r.cipher), "%s", tls_cipher_name(c));
	r.proof_rc = tls_auth_proof(c, t, r.proof);
	r.sum = FNV0;
	switch (mode) {
	case M_NORMAL:
	case M_DRAIN:
	case M_DIE_READ:
		for (;;) {
			size_t want = sizeof(buf);

			if (mode == M_NORMAL && r.got == DATA_LEN)
				break;
			if (mode == M_NORMAL && DATA_LEN - r.got < want)
				want = DATA_LEN - r.got;
			if (mode == M_DIE_READ && r.got >= MIB)
				break;
			n = tls_read(c, buf, want, 5000);
			if (n <= 0) {
				r.last_read = n;
				if (n < 0)
					snprintf(r.err, sizeof(r.err), "%s", tls_last_error(c));
				break;
			}
			r.sum = fnv(r.sum, buf, (size_t)n);
			r.got += (uint64_t)n;
		}
		if (mode == M_DIE_READ)
			break;
		if (mode == M_NORMAL) {
			data = malloc(DATA_LEN);
			fill(data, DATA_LEN, 2);
			tls_write(c, data, DATA_LEN, 5000);
			tls_flush(c, 5000);
			free(data);
			r.last_read = tls_read(c, buf, sizeof(buf), 5000);
		}
		t0 = time_now_ms();
		tls_close(c, 2000);
		r.close_ms = (int)(time_now_ms() - t0);
		c = NULL;
		break;
	case M_DIE_WRITE:
		data = calloc(1, MIB);
		tls_write(c, data, MIB, 5000);
		tls_flush(c, 5000);
		free(data);
		break;
	case M_IDLE: sleep(3); break;
	case M_SILENT: break;
	}
report:
	fd_write_all(resfd, &r, sizeof(r));
	/* Vanish as a crash would: no close_notify, the kernel closes fds. */
	_exit(0);
}

static pid_t server_spawn(const struct tls_token *t, int lfd, enum srv_mode mode, int *resfd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		alarm(30);
		server_child(t, lfd, mode, p[1]);
		_exit(0);
	}
	close(p[1]);
	*resfd = p[0];
	return pid;
}

/* The child's report, or -1 after timeout_ms. */
static int server_result(int fd, struct srv_result *r, int timeout_ms)
{
	uint64_t deadline = time_now_ms() + (uint64_t)timeout_ms;
	size_t got = 0;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	while (got < sizeof(*r)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = time_now_ms();

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		n = read(fd, (char *)r + got, sizeof(*r) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got == sizeof(*r) ? 0 : -1;
}

static void server_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int aes_ni(void)
{
	char line[4096];
	FILE *f = fopen("/proc/cpuinfo", "r");
	int aes = 0, pcl = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		aes = strstr(line, " aes") != NULL;
		pcl = strstr(line, " pclmulqdq") != NULL;
		break;
	}
	fclose(f);
	return aes && pcl;
}

static struct tls_conn *client(const struct tls_token *t, uint16_t port, int *rc, char *err,
			       size_t cap, uint64_t *ms)
{
	struct tls_conn *c = NULL;
	uint64_t t0 = time_now_ms();
	int fd = net_connect("127.0.0.1", port, 2000);

	if (fd < 0) {
		*rc = fd;
		snprintf(err, cap, "connect: %s", strerror(-fd));
		return NULL;
	}
	*rc = tls_client_connect(t, fd, 3000, &c, err, cap);
	if (ms)
		*ms = time_now_ms() - t0;
	return c;
}

static void test_session(const struct tls_token *a, const struct tls_token *b, int lfd,
			 uint16_t port)
{
	struct srv_result r;
	struct tls_conn *c;
	uint8_t proof[TLS_PROOF_LEN], proof2[TLS_PROOF_LEN], other[TLS_PROOF_LEN];
	uint8_t *data, *back;
	const char *cipher;
	char err[TLS_ERR_TEXT_MAX];
	uint64_t hs_ms, t0, dt, sum, want_sum;
	size_t got = 0;
	int rc, resfd, n;
	pid_t pid;

	data = malloc(DATA_LEN);
	back = malloc(DATA_LEN);
	fill(data, DATA_LEN, 1);
	fill(back, DATA_LEN, 2);
	want_sum = fnv(FNV0, back, DATA_LEN);

	pid = server_spawn(a, lfd, M_NORMAL, &resfd);
	c = client(a, port, &rc, err, sizeof(err), &hs_ms);
	ok(rc == 0 && c, "handshake with the right token (%s)", rc ? err : "ok");
	if (!c) {
		server_reap(pid);
		close(resfd);
		goto out;
	}
	note("loopback connect + handshake: %llu ms", (unsigned long long)hs_ms);
	cipher = tls_cipher_name(c);
	ok(strcmp(cipher, aes_ni() ? "ECDHE-ECDSA-AES128-GCM-SHA256"
				   : "ECDHE-ECDSA-CHACHA20-POLY1305") == 0,
	   "cipher %s", cipher);
	ok(tls_fd(c) >= 0 && tls_pending(c) == 0, "tls_fd / tls_pending");
	ok(tls_auth_proof(c, a, proof) == 0, "client computes the proof");
	ok(tls_auth_proof(c, b, other) == 0 && memcmp(proof, other, sizeof(proof)) != 0,
	   "the proof depends on the token");

	t0 = time_now_ms();
	rc = tls_write(c, data, DATA_LEN, 5000);
	if (rc == 0)
		rc = tls_flush(c, 5000);
	dt = time_now_ms() - t0;
	ok(rc == 0, "write 8 MiB (rc %d)", rc);
	note("one stream, this build: %.0f MB/s (8 MiB in %llu ms)",
	     dt ? DATA_LEN / 1e6 / ((double)dt / 1000.0) : 0.0, (unsigned long long)dt);

	sum = FNV0;
	while (got < DATA_LEN) {
		n = tls_read(c, back, DATA_LEN - got < 65536 ? DATA_LEN - got : 65536, 5000);
		if (n <= 0)
			break;
		sum = fnv(sum, back, (size_t)n);
		got += (size_t)n;
	}
	ok(got == DATA_LEN && sum == want_sum, "read 8 MiB back, checksum matches");
	t0 = time_now_ms();
	tls_close(c, 2000);
	dt = time_now_ms() - t0;
	ok(dt < 1000, "clean close took %llu ms", (unsigned long long)dt);

	rc = server_result(resfd, &r, 10000);
	ok(rc == 0 && r.rc == 0, "server side handshake ok (%s)", r.err);
	ok(strcmp(r.cipher, cipher) == 0, "server agrees on %s", r.cipher);
	ok(r.proof_rc == 0 && memcmp(r.proof, proof, sizeof(proof)) == 0,
	   "both ends compute the same proof");
	ok(r.got == DATA_LEN && r.sum == fnv(FNV0, data, DATA_LEN), "server received 8 MiB intact");
	is_int(r.last_read, 0, "server's tls_read sees close_notify as 0");
	ok(r.close_ms < 1000, "server close took %d ms", r.close_ms);
	waitpid(pid, NULL, 0);

	/* A second session: same token, different exporter, different proof. */
	pid = server_spawn(a, lfd, M_DRAIN, &resfd);
	c = client(a, port, &rc, err, sizeof(err), NULL);
	ok(c && tls_auth_proof(c, a, proof2) == 0 && memcmp(proof, proof2, 32) != 0,
	   "a second session has a different proof");
	if (c)
		tls_close(c, 2000);
	server_result(resfd, &r, 10000);
	ok(r.rc == 0 && memcmp(r.proof, proof2, 32) == 0 && r.last_read == 0,
	   "...which the server computes too");
	waitpid(pid, NULL, 0);
out:
	free(data);
	free(back);
}

static void test_wrong_token(const struct tls_token *a, const struct tls_token *b, int lfd,
			     uint16_t port)
{
	struct srv_result r;
	struct tls_conn *c;
	char err[TLS_ERR_TEXT_MAX];
	uint64_t ms;
	int rc, resfd;
	pid_t pid;

	pid = server_spawn(a, lfd, M_DRAIN, &resfd);
	c = client(b, port, &rc, err, sizeof(err), &ms);
	is_int(rc, -EKEYREJECTED, "wrong token: client gets -EKEYREJECTED");
	ok(c == NULL, "no connection handed out");
	ok(strcmp(err, KEY_MISMATCH_TEXT) == 0, "client says: %s", err);
	ok(ms < 2000, "client failed in %llu ms", (unsigned long long)ms);
	rc = server_result(resfd, &r, 5000);
	ok(rc == 0 && r.rc < 0, "server handshake fails too (rc %d)", r.rc);
	ok(strstr(r.err, "alert 42") && strstr(r.err, "wrong token"), "server says: %s", r.err);
	if (c)
		tls_close(c, 100);
	waitpid(pid, NULL, 0);
}

static void test_peer_vanishes(const struct tls_token *a, int lfd, uint16_t port)
{
	struct srv_result r;
	struct tls_conn *c;
	static uint8_t buf[64 * 1024];
	uint8_t *big;
	char err[TLS_ERR_TEXT_MAX];
	uint64_t t0, dt;
	size_t got = 0;
	int rc, resfd, n = 0;
	pid_t pid;

	/* The destination dies while the agent streams. */
	pid = server_spawn(a, lfd, M_DIE_READ, &resfd);
	c = client(a, port, &rc, err, sizeof(err), NULL);
	ok(c != NULL, "handshake before the server dies");
	if (c) {
		big = calloc(1, 64 * MIB);
		t0 = time_now_ms();
		rc = tls_write(c, big, 64 * MIB, 3000);
		dt = time_now_ms() - t0;
		free(big);
		ok(rc == -ECONNRESET || rc == -EPIPE, "write to a vanished peer fails (rc %d: %s)",
		   rc, tls_last_error(c));
		ok(dt < 3000, "...in %llu ms, not at the timeout", (unsigned long long)dt);
		t0 = time_now_ms();
		tls_close(c, 5000);
		dt = time_now_ms() - t0;
		ok(dt < 2000, "tls_close after a dead peer returns in %llu ms",
		   (unsigned long long)dt);
	}
	server_result(resfd, &r, 5000);
	waitpid(pid, NULL, 0);

	/* The destination dies while the agent reads. */
	pid = server_spawn(a, lfd, M_DIE_WRITE, &resfd);
	c = client(a, port, &rc, err, sizeof(err), NULL);
	ok(c != NULL, "handshake before the server dies (reading side)");
	if (c) {
		t0 = time_now_ms();
		for (;;) {
			n = tls_read(c, buf, sizeof(buf), 3000);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		dt = time_now_ms() - t0;
		ok(got == MIB && (n == 0 || n == -ECONNRESET),
		   "read gets the 1 MiB, then EOF/reset (rc %d)", n);
		ok(dt < 3000, "...in %llu ms, not at the timeout", (unsigned long long)dt);
		t0 = time_now_ms();
		tls_close(c, 5000);
		dt = time_now_ms() - t0;
		ok(dt < 2000, "tls_close returns in %llu ms", (unsigned long long)dt);
	}
	server_result(resfd, &r, 5000);
	waitpid(pid, NULL, 0);

	/* A live peer that never answers: reads and close are bounded. */
	pid = server_spawn(a, lfd, M_IDLE, &resfd);
	c = client(a, port, &rc, err, sizeof(err), NULL);
	ok(c != NULL, "handshake with an idle server");
	if (c) {
		t0 = time_now_ms();
		n = tls_read(c, buf, sizeof(buf), 300);
		dt = time_now_ms() - t0;
		ok(n == -ETIMEDOUT && dt >= 250 && dt < 1500,
		   "tls_read times out (rc %d after %llu ms)", n, (unsigned long long)dt);
		t0 = time_now_ms();
		tls_close(c, 500);
		dt = time_now_ms() - t0;
		ok(dt < 1500, "tls_close on an unresponsive peer is bounded (%llu ms)",
		   (unsigned long long)dt);
	}
	server_reap(pid);
	close(resfd);
}

/* A record altered on the wire must be refused, not delivered. */
static void test_tamper(const struct tls_token *a, int lfd, uint16_t port)
{
	/* An application-data record of 32 bytes nobody encrypted. */
	static const uint8_t forged[] = {23, 3,	 3,  0,	 32, 1,	 2,  3,	 4,  5,	 6,  7,	 8,
					 9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
					 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
	struct srv_result r;
	struct tls_conn *c;
	char err[TLS_ERR_TEXT_MAX];
	int rc, resfd;
	pid_t pid;

	pid = server_spawn(a, lfd, M_DRAIN, &resfd);
	c = client(a, port, &rc, err, sizeof(err), NULL);
	ok(c != NULL, "handshake before tampering");
	if (c) {
		rc = tls_write(c, "hello", 5, 1000);
		if (rc == 0)
			rc = tls_flush(c, 1000);
		ok(rc == 0, "a genuine record first");
		fd_write_all(tls_fd(c), forged, sizeof(forged));
	}
	server_result(resfd, &r, 5000);
	ok(r.got == 5 && r.last_read == -EBADMSG && strstr(r.err, "failed authentication"),
	   "server delivers the genuine 5 bytes, refuses the forged record (rc %d): %s",
	   r.last_read, r.err);
	if (c)
		tls_close(c, 500);
	waitpid(pid, NULL, 0);
}

static void test_handshake_timeouts(const struct tls_token *a, int lfd, uint16_t port)
{
	struct tls_server *s = NULL;
	struct tls_conn *c = NULL;
	char err[TLS_ERR_TEXT_MAX];
	uint64_t t0, dt;
	int rc, cfd, afd, resfd;
	pid_t pid;

	/* The server accepts TCP and never speaks. */
	pid = server_spawn(a, lfd, M_SILENT, &resfd);
	cfd = net_connect("127.0.0.1", port, 2000);
	t0 = time_now_ms();
	rc = tls_client_connect(a, cfd, 300, &c, err, sizeof(err));
	dt = time_now_ms() - t0;
	is_int(rc, -ETIMEDOUT, "client handshake against a silent server times out");
	ok(dt >= 250 && dt < 1500, "...after %llu ms (deadline 300): %s", (unsigned long long)dt,
	   err);
	server_reap(pid);
	close(resfd);

	if (tls_server_new(a, &s))
		return;
	/* A client that connects and never speaks. */
	cfd = net_connect("127.0.0.1", port, 2000);
	afd = net_accept(lfd, NULL, 0);
	t0 = time_now_ms();
	rc = tls_server_accept(s, afd, 300, &c, err, sizeof(err));
	dt = time_now_ms() - t0;
	is_int(rc, -ETIMEDOUT, "server handshake with a silent client times out");
	ok(dt >= 250 && dt < 1500 && strstr(err, "did not complete"), "...after %llu ms: %s",
	   (unsigned long long)dt, err);
	close(cfd);

	/* A client that speaks HTTP. */
	cfd = net_connect("127.0.0.1", port, 2000);
	afd = net_accept(lfd, NULL, 0);
	fd_write_all(cfd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	t0 = time_now_ms();
	rc = tls_server_accept(s, afd, 3000, &c, err, sizeof(err));
	dt = time_now_ms() - t0;
	ok(rc < 0 && rc != -ETIMEDOUT && dt < 1000, "plain HTTP client refused (rc %d): %s", rc,
	   err);
	close(cfd);

	/* A port scanner: connect, close. */
	cfd = net_connect("127.0.0.1", port, 2000);
	afd = net_accept(lfd, NULL, 0);
	close(cfd);
	rc = tls_server_accept(s, afd, 3000, &c, err, sizeof(err));
	ok(rc == -ECONNRESET && strstr(err, "closed the connection during the handshake"),
	   "client that hangs up: %s", err);
	tls_server_free(s);
}

static void test_openssl_client(const struct tls_token *a, int lfd, uint16_t port)
{
	struct srv_result r;
	static char out[32768];
	char cmd[512];
	int st, resfd;
	pid_t pid;

	if (!have_openssl()) {
		skip("openssl not installed: no interop check");
		return;
	}
	pid = server_spawn(a, lfd, M_DRAIN, &resfd);
	/* The client prefers ChaCha20; our server's order must win. */
	snprintf(cmd, sizeof(cmd),
		 "timeout 10 openssl s_client -connect 127.0.0.1:%u -tls1_2 "
		 "-cipher ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:"
		 "ECDHE-ECDSA-AES128-GCM-SHA256 </dev/null 2>&1",
		 port);
	st = run_capture(cmd, out, sizeof(out), NULL);
	server_result(resfd, &r, 10000);
	waitpid(pid, NULL, 0);
	ok(r.rc == 0, "openssl s_client completes the handshake (%s)", r.err);
	ok(strstr(out, "ferry fp:") != NULL, "s_client sees the ferry certificate");
	if (aes_ni())
		ok(strstr(out, "ECDHE-ECDSA-AES128-GCM-SHA256") &&
		       strcmp(r.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256") == 0,
		   "server preference wins over the client's ChaCha20-first list");
	else
		skip("no AES-NI: ChaCha20 is the server's first choice here");
	ok(r.last_read == 0, "s_client's close_notify reads as 0 (status %d)", st);
}

/*
 * Some other TLS server on the port (an ECDSA one, so the suites match
 * and only the key differs): the pin must reject it with the sentence,
 * and an RSA-only one must fail with a sentence, not hang.
 */
static void test_foreign_server(const struct tls_token *a)
{
	static const char *const kinds[] = {"ec", "rsa"};
	char dir[] = "/tmp/ferry-test-srv-XXXXXX", cmd[1024], err[TLS_ERR_TEXT_MAX];
	static char out[4096];
	struct tls_conn *c = NULL;
	uint16_t port = 0;
	size_t k;
	int lfd, fd, rc, i;
	pid_t pid;

	if (!have_openssl()) {
		skip("openssl not installed: no foreign-server check");
		return;
	}
	if (!mkdtemp(dir)) {
		skip("mkdtemp failed");
		return;
	}
	for (k = 0; k < FERRY_ARRAY_LEN(kinds); k++) {
		snprintf(cmd, sizeof(cmd),
			 "cd %s && openssl req -x509 -newkey %s -nodes -keyout k.pem "
			 "-out c.pem -days 1 -subj /CN=other %s >/dev/null 2>&1",
			 dir, kinds[k],
			 k == 0 ? "-pkeyopt ec_paramgen_curve:P-256"
				: "-pkeyopt rsa_keygen_bits:2048");
		if (run_capture(cmd, out, sizeof(out), NULL) != 0) {
			skip("openssl req failed");
			continue;
		}
		/* A free port: bind 0, read it, release it for s_server. */
		lfd = net_listen("127.0.0.1", 0, 1);
		net_local_port(lfd, &port);
		close(lfd);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			char acc[32];
			int devnull = open("/dev/null", O_RDWR);

			snprintf(acc, sizeof(acc), "127.0.0.1:%u", port);
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			if (chdir(dir) == 0)
				execlp("timeout", "timeout", "10", "openssl", "s_server", "-accept",
				       acc, "-key", "k.pem", "-cert", "c.pem", "-naccept", "1",
				       "-quiet", (char *)NULL);
			_exit(127);
		}
		fd = -1;
		for (i = 0; i < 100 && fd < 0; i++) {
			fd = net_connect("127.0.0.1", port, 1000);
			if (fd < 0)
				usleep(20000);
		}
		if (fd < 0) {
			skip("openssl s_server did not start");
		} else {
			uint64_t t0 = time_now_ms();

			rc = tls_client_connect(a, fd, 3000, &c, err, sizeof(err));
			if (k == 0)
				ok(rc == -EKEYREJECTED && strcmp(err, KEY_MISMATCH_TEXT) == 0,
				   "ECDSA server with another key: rc %d, \"%s\"", rc, err);
			else
				ok(rc < 0 && rc != -ETIMEDOUT && time_now_ms() - t0 < 2000,
				   "RSA-only server: rc %d, \"%s\"", rc, err);
			if (c)
				tls_close(c, 100);
			c = NULL;
		}
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
}

int main(void)
{
	struct tls_token a, b;
	uint16_t port = 0;
	int lfd;

	/* Nothing in here may hang CI. */
	alarm(180);
	signal(SIGPIPE, SIG_DFL); /* prove we never raise it */
	log_init("test_tls", LOG_LVL_ERROR);
	test_token_vector();
	test_token_roundtrip();
	test_token_reject();
	tls_token_generate(&a);
	tls_token_generate(&b);
	test_keys(&a, &b);
	test_cert(&a, &b);
	test_cert_openssl(&a);

	lfd = net_listen("127.0.0.1", 0, 8);
	if (lfd < 0 || net_local_port(lfd, &port)) {
		skip("cannot listen on loopback: no TLS sessions");
		return tap_done();
	}
	test_session(&a, &b, lfd, port);
	test_wrong_token(&a, &b, lfd, port);
	test_peer_vanishes(&a, lfd, port);
	test_tamper(&a, lfd, port);
	test_handshake_timeouts(&a, lfd, port);
	test_openssl_client(&a, lfd, port);
	test_foreign_server(&a);
	close(lfd);
	return tap_done();
}
