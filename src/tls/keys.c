/*
 * keys.c - everything the token determines: the destination's P-256 key
 * pair, its public fingerprint, and a self-signed X.509 v3 certificate
 * built by hand in DER. All of it is deterministic, so the agent derives
 * the very key the destination serves and pins it, and a destination
 * rebooted with the same token presents the same certificate bytes.
 *
 * Derivation, version 1 (changing any byte breaks agent/destination
 * interoperability; bump the label instead):
 *   drbg = HMAC-DRBG(SHA-256), seed = "ferry tls key v1" || token (20 bytes)
 *   sk   = br_ec_keygen(drbg, P-256)  (rejection sampling below the order)
 *   pub  = sk * G, uncompressed
 *   fp   = "fp:" + hex(SHA-256(pub)[0..3])
 * The certificate is signed with RFC 6979 deterministic ECDSA.
 *
 * Never logs, never writes a key anywhere; private bytes are wiped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tls/tls_impl.h"

static const char key_label[] = "ferry tls key v1";

int tls_key_derive(const struct tls_token *t, uint8_t priv[TLS_EC_PRIV_LEN],
		   uint8_t pub[TLS_EC_PUB_LEN])
{
	const br_ec_impl *ec = br_ec_get_default();
	br_hmac_drbg_context drbg;
	br_ec_private_key sk;
	uint8_t seed[sizeof(key_label) - 1 + TLS_TOKEN_BYTES];
	uint8_t kbuf[BR_EC_KBUF_PRIV_MAX_SIZE];
	int err = 0;

	memcpy(seed, key_label, sizeof(key_label) - 1);
	memcpy(seed + sizeof(key_label) - 1, t->b, TLS_TOKEN_BYTES);
	br_hmac_drbg_init(&drbg, &br_sha256_vtable, seed, sizeof(seed));
	if (br_ec_keygen(&drbg.vtable, ec, &sk, kbuf, BR_EC_secp256r1) != TLS_EC_PRIV_LEN) {
		err = -ENOTSUP;
		goto out;
	}
	if (br_ec_compute_pub(ec, NULL, pub, &sk) != TLS_EC_PUB_LEN) {
		err = -ENOTSUP;
		goto out;
	}
	if (priv)
		memcpy(priv, kbuf, TLS_EC_PRIV_LEN);
out:
	mem_wipe(&drbg, sizeof(drbg));
	mem_wipe(seed, sizeof(seed));
	mem_wipe(kbuf, sizeof(kbuf));
	mem_wipe(&sk, sizeof(sk));
	return err;
}

static void key_fp_text(const uint8_t pub[TLS_EC_PUB_LEN], char *buf, size_t cap)
{
	br_sha256_context h;
	uint8_t d[br_sha256_SIZE];

	br_sha256_init(&h);
	br_sha256_update(&h, pub, TLS_EC_PUB_LEN);
	br_sha256_out(&h, d);
	snprintf(buf, cap, "fp:%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
}

void tls_token_fingerprint(const struct tls_token *t, char *buf, size_t cap)
{
	uint8_t pub[TLS_EC_PUB_LEN];

	if (!buf || cap == 0)
		return;
	if (tls_key_derive(t, NULL, pub)) {
		snprintf(buf, cap, "fp:?");
		return;
	}
	key_fp_text(pub, buf, cap);
}

/* ---- DER, written forward; der_wrap() prepends a header in place ---- */

/*
 * Turns everything written since start into the value of one TLV with
 * the minimal (DER) length encoding. Our certificate stays below 64 KiB,
 * so at most two length bytes.
 */
static void der_wrap(struct wbuf *w, size_t start, uint8_t tag)
{
	uint8_t hdr[4];
	size_t n = 0, len;

	if (w->err)
		return;
	len = w->len - start;
	hdr[n++] = tag;
	if (len >= 0x100) {
		hdr[n++] = 0x82;
		hdr[n++] = (uint8_t)(len >> 8);
		hdr[n++] = (uint8_t)len;
	} else if (len >= 0x80) {
		hdr[n++] = 0x81;
		hdr[n++] = (uint8_t)len;
	} else {
		hdr[n++] = (uint8_t)len;
	}
	wbuf_bytes(w, hdr, n); /* reserves room, or sets w->err */
	if (w->err)
		return;
	memmove(w->p + start + n, w->p + start, len);
	memcpy(w->p + start, hdr, n);
}

static void der_tlv(struct wbuf *w, uint8_t tag, const void *v, size_t len)
{
	size_t start = w->len;

	wbuf_bytes(w, v, len);
	der_wrap(w, start, tag);
}

#define DER_BOOLEAN	 0x01
#define DER_INTEGER	 0x02
#define DER_BIT_STRING	 0x03
#define DER_OCTET_STRING 0x04
#define DER_OID		 0x06
#define DER_UTF8	 0x0c
#define DER_UTCTIME	 0x17
#define DER_GENTIME	 0x18
#define DER_SEQ		 0x30
#define DER_SET		 0x31
#define DER_CTX0	 0xa0 /* [0] EXPLICIT */
#define DER_CTX3	 0xa3 /* [3] EXPLICIT */

/* OID contents (without tag and length). */
static const uint8_t oid_ecdsa_sha256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t oid_ec_public_key[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t oid_prime256v1[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_common_name[] = {0x55, 0x04, 0x03};
static const uint8_t oid_basic_constraints[] = {0x55, 0x1d, 0x13};
static const uint8_t oid_key_usage[] = {0x55, 0x1d, 0x0f};

/* RFC 5758: ecdsa-with-SHA256 has no parameters, not even NULL. */
static void der_sig_alg(struct wbuf *w)
{
	size_t s = w->len;

	der_tlv(w, DER_OID, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
	der_wrap(w, s, DER_SEQ);
}

static void der_name(struct wbuf *w, const char *cn)
{
	size_t name = w->len, set, atv;

	set = w->len;
	atv = w->len;
	der_tlv(w, DER_OID, oid_common_name, sizeof(oid_common_name));
	der_tlv(w, DER_UTF8, cn, strlen(cn));
	der_wrap(w, atv, DER_SEQ);
	der_wrap(w, set, DER_SET);
	der_wrap(w, name, DER_SEQ);
}

/* One extension: critical, its value a DER blob inside an OCTET STRING. */
static void der_ext(struct wbuf *w, const uint8_t *oid, size_t oidlen, const uint8_t *val,
		    size_t vallen)
{
	static const uint8_t t = 0xff;
	size_t s = w->len;

	der_tlv(w, DER_OID, oid, oidlen);
	der_tlv(w, DER_BOOLEAN, &t, 1);
	der_tlv(w, DER_OCTET_STRING, val, vallen);
	der_wrap(w, s, DER_SEQ);
}

static int key_build_cert(struct tls_server *s)
{
	/* basicConstraints: SEQUENCE {} (cA defaults to FALSE). */
	static const uint8_t bc_val[] = {0x30, 0x00};
	/* keyUsage: BIT STRING, 7 unused bits, digitalSignature (bit 0). */
	static const uint8_t ku_val[] = {0x03, 0x02, 0x07, 0x80};
	static const uint8_t version_v3[] = {0x02, 0x01, 0x02};
	/* Valid from 2024-01-01; 9999-12-31 is RFC 5280's "no expiry". */
	static const char not_before[] = "240101000000Z";
	static const char not_after[] = "99991231235959Z";
	br_sha256_context h;
	struct wbuf w;
	uint8_t digest[br_sha256_SIZE], serial[16];
	uint8_t sig[1 + 80]; /* leading 0 "unused bits" + ASN.1 signature */
	char fp[TLS_FP_TEXT_MAX], cn[32];
	size_t tbs, x, sig_len;

	/* A positive, minimal 16-byte INTEGER taken from the key's hash. */
	br_sha256_init(&h);
	br_sha256_update(&h, s->pub, sizeof(s->pub));
	br_sha256_out(&h, digest);
	memcpy(serial, digest + 4, sizeof(serial));
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
	key_fp_text(s->pub, fp, sizeof(fp));
	snprintf(cn, sizeof(cn), "ferry %s", fp);

	wbuf_init(&w, s->cert, sizeof(s->cert));
	tbs = w.len;
	der_tlv(&w, DER_CTX0, version_v3, sizeof(version_v3));
	der_tlv(&w, DER_INTEGER, serial, sizeof(serial));
	der_sig_alg(&w);
	der_name(&w, cn); /* issuer */
	x = w.len;
	der_tlv(&w, DER_UTCTIME, not_before, sizeof(not_before) - 1);
	der_tlv(&w, DER_GENTIME, not_after, sizeof(not_after) - 1);
	der_wrap(&w, x, DER_SEQ);
	der_name(&w, cn); /* subject */
	x = w.len;
	{
		size_t alg = w.len, bits;

		der_tlv(&w, DER_OID, oid_ec_public_key, sizeof(oid_ec_public_key));
		der_tlv(&w, DER_OID, oid_prime256v1, sizeof(oid_prime256v1));
		der_wrap(&w, alg, DER_SEQ);
		bits = w.len;
		wbuf_u8(&w, 0); /* no unused bits */
		wbuf_bytes(&w, s->pub, sizeof(s->pub));
		der_wrap(&w, bits, DER_BIT_STRING);
	}
	der_wrap(&w, x, DER_SEQ);
	x = w.len;
	{
		size_t exts = w.len;

		der_ext(&w, oid_basic_constraints, sizeof(oid_basic_constraints), bc_val,
			sizeof(bc_val));
		der_ext(&w, oid_key_usage, sizeof(oid_key_usage), ku_val, sizeof(ku_val));
		der_wrap(&w, exts, DER_SEQ);
	}
	der_wrap(&w, x, DER_CTX3);
	der_wrap(&w, tbs, DER_SEQ);
	if (w.err)
		return w.err;

	br_sha256_init(&h);
	br_sha256_update(&h, w.p + tbs, w.len - tbs);
	br_sha256_out(&h, digest);
	sig[0] = 0;
	sig_len = br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), &br_sha256_vtable, digest,
						   &s->sk, sig + 1);
	if (sig_len == 0 || sig_len > sizeof(sig) - 1)
		return -EPROTO;

	der_sig_alg(&w);
	der_tlv(&w, DER_BIT_STRING, sig, sig_len + 1);
	der_wrap(&w, 0, DER_SEQ);
	if (w.err)
		return w.err;
	s->cert_len = w.len;
	return 0;
}

int tls_server_new(const struct tls_token *t, struct tls_server **out)
{
	struct tls_server *s;
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if ((err = tls_key_derive(t, s->sk_buf, s->pub)))
		goto out;
	s->sk.curve = BR_EC_secp256r1;
	s->sk.x = s->sk_buf;
	s->sk.xlen = sizeof(s->sk_buf);
	if ((err = key_build_cert(s)))
		goto out;
	s->chain.data = s->cert;
	s->chain.data_len = s->cert_len;
	*out = s;
out:
	if (err)
		tls_server_free(s);
	return err;
}

void tls_server_free(struct tls_server *s)
{
	if (!s)
		return;
	mem_wipe(s, sizeof(*s));
	free(s);
}

void tls_server_cert(const struct tls_server *s, const uint8_t **der, size_t *len)
{
	*der = s->cert;
	*len = s->cert_len;
}
