/*
 * token.c - the pairing token as text: generation from getrandom(),
 * RFC 4648 base32 parsing and formatting in groups of four. The token
 * arrives from the kernel command line, a flag, a file or the
 * environment, so the parser is strict and its messages give counts and
 * positions, never the characters themselves (they are the secret).
 * No BearSSL here: the fingerprint, which needs the derived key, lives
 * in keys.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/common.h"
#include "tls/tls.h"

#define TOKEN_SYMBOLS 32 /* 160 bits / 5 bits per symbol, no padding */
#define TOKEN_GROUP   4

static const char token_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int tls_token_generate(struct tls_token *t)
{
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(t->b)) {
		/* Blocks only until the pool is initialised (seed_entropy). */
		n = getrandom(t->b + got, sizeof(t->b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

static int token_symbol(char ch)
{
	if (ch >= 'a' && ch <= 'z')
		ch = (char)(ch - 'a' + 'A');
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= '2' && ch <= '7')
		return ch - '2' + 26;
	return -1;
}

static void token_err(char *err, size_t errcap, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);

static void token_err(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (!err || errcap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap);
	va_end(ap);
}

int tls_token_parse(const char *s, struct tls_token *t, char *err, size_t errcap)
{
	uint8_t out[TLS_TOKEN_BYTES];
	uint32_t acc = 0;
	size_t i, nsym = 0, nout = 0, bad_pos = 0;
	int bits = 0, bad = 0, v, rc = 0;

	if (err && errcap)
		err[0] = 0;
	if (!s) {
		token_err(err, errcap, "no token given");
		return -EINVAL;
	}
	/* Count first, so a wrong length is reported as such, not as junk. */
	for (i = 0; s[i]; i++) {
		if (s[i] == '-' || s[i] == ' ')
			continue;
		if (token_symbol(s[i]) < 0 && !bad) {
			bad = 1;
			bad_pos = i + 1;
		}
		nsym++;
	}
	if (bad) {
		token_err(err, errcap,
			  "token has an invalid character at position %zu "
			  "(base32 uses A-Z and 2-7; 0, 1, 8 and 9 never occur)",
			  bad_pos);
		return -EINVAL;
	}
	if (nsym != TOKEN_SYMBOLS) {
		token_err(err, errcap, "token has %zu characters, need %d", nsym, TOKEN_SYMBOLS);
		return -EINVAL;
	}
	for (i = 0; s[i]; i++) {
		if (s[i] == '-' || s[i] == ' ')
			continue;
		v = token_symbol(s[i]);
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[nout++] = (uint8_t)(acc >> bits);
		}
	}
	/* 32 symbols are exactly 20 bytes: no bits may be left over. */
	if (nout != TLS_TOKEN_BYTES || bits != 0) {
		token_err(err, errcap, "token does not decode to %d bytes", TLS_TOKEN_BYTES);
		rc = -EINVAL;
		goto out;
	}
	memcpy(t->b, out, sizeof(t->b));
out:
	mem_wipe(out, sizeof(out));
	mem_wipe(&acc, sizeof(acc));
	return rc;
}

void tls_token_format(const struct tls_token *t, char *buf, size_t cap)
{
	/* 32 symbols + 7 dashes + NUL */
	char tmp[TOKEN_SYMBOLS + TOKEN_SYMBOLS / TOKEN_GROUP];
	uint32_t acc = 0;
	size_t i, n = 0, nsym = 0;
	int bits = 0;

	if (!buf || cap == 0)
		return;
	buf[0] = 0;
	if (cap < sizeof(tmp))
		return;
	for (i = 0; i < sizeof(t->b); i++) {
		acc = (acc << 8) | t->b[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			if (nsym && nsym % TOKEN_GROUP == 0)
				tmp[n++] = '-';
			tmp[n++] = token_alphabet[(acc >> bits) & 31];
			nsym++;
		}
	}
	tmp[n] = 0;
	memcpy(buf, tmp, n + 1);
	mem_wipe(tmp, sizeof(tmp));
	mem_wipe(&acc, sizeof(acc));
}
