/*
 * tls_impl.h - private to src/tls: what keys.c and conn.c share. It is
 * the only header that pulls in bearssl.h, and only those two files
 * include it; token.c and everything outside src/tls stay BearSSL-free.
 */
#ifndef FERRY_TLS_IMPL_H
#define FERRY_TLS_IMPL_H

#include <bearssl.h>

#include "tls/tls.h"

#define TLS_EC_PRIV_LEN 32  /* P-256 scalar */
#define TLS_EC_PUB_LEN	65  /* uncompressed P-256 point: 04 || X || Y */
#define TLS_CERT_MAX	512 /* our certificate is ~380 bytes */

/*
 * One token's server credentials. Connections accepted with it point
 * into sk and chain, so it must outlive them.
 */
struct tls_server {
	br_ec_private_key sk;
	uint8_t sk_buf[TLS_EC_PRIV_LEN];
	uint8_t pub[TLS_EC_PUB_LEN];
	br_x509_certificate chain;
	uint8_t cert[TLS_CERT_MAX];
	size_t cert_len;
};

/*
 * The token's P-256 key pair (priv may be NULL when only the public key
 * is wanted, as on the agent). 0 or -ENOTSUP if BearSSL lacks P-256.
 */
int tls_key_derive(const struct tls_token *t, uint8_t priv[TLS_EC_PRIV_LEN],
		   uint8_t pub[TLS_EC_PUB_LEN]);

#endif
