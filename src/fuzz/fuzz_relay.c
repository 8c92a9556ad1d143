/*
 * fuzz_relay.c - libFuzzer target for the relay's two parsers
 * (src/net/relay.c): the allow-list (from --allow or ferry.relay.allow=)
 * and the CONNECT request head (from any client on the network). The
 * first byte picks the parser. Whatever the input, nothing is read or
 * written out of bounds, and what comes out keeps its promises: entries
 * with host bits clear, prefixes and port ranges in range, a canonical
 * text that parses to the same list; a head within the input and
 * NET_RELAY_HEAD_MAX, a printable target with a port, an address family
 * of 4, 6 or 0 (a name), and a match only for addresses.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static void check_list(const struct net_allow_list *l)
{
	size_t i, k;

	if (l->n > NET_ALLOW_MAX)
		abort();
	for (i = 0; i < l->n; i++) {
		const struct net_allow *e = &l->e[i];
		unsigned bits = e->family == 4 ? 32 : 128;

		if ((e->family != 4 && e->family != 6) || e->prefix > bits || e->port_lo == 0 ||
		    e->port_hi < e->port_lo)
			abort();
		for (k = e->prefix; k < 128; k++)
			if (e->addr[k / 8] & (0x80 >> (k % 8)))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[NET_RELAY_HEAD_MAX * 2];
	static struct net_allow_list l, l2;
	static char text[NET_ALLOW_TEXT_MAX + 1];
	struct net_relay_target t;
	char err[300];
	size_t head = 0;
	int r;

	if (size < 1)
		return 0;
	size--;
	if (size > sizeof(buf) - 1)
		size = sizeof(buf) - 1;
	memcpy(buf, data + 1, size);
	buf[size] = 0;
	if (data[0] & 1) {
		if (net_allow_parse(buf, &l, err, sizeof(err)) == 0) {
			check_list(&l);
			/* The canonical text, when it fits, means the same list. */
			net_allow_text(&l, text, sizeof(text));
			if (!strstr(text, "...")) {
				if (net_allow_parse(text, &l2, err, sizeof(err)) || l2.n != l.n ||
				    memcmp(l2.e, l.e, l.n * sizeof(l.e[0])))
					abort();
			}
		} else if (l.n || !err[0] || !printable(err)) {
			abort();
		}
		return 0;
	}
	r = net_relay_request(buf, size, &head, &t, err, sizeof(err));
	if (r == 0) {
		if (head < 4 || head > size || head > NET_RELAY_HEAD_MAX || buf[head - 1] != '\n' ||
		    t.port == 0 || !t.text[0] || !printable(t.text) || !printable(t.host) ||
		    (t.family != 0 && t.family != 4 && t.family != 6))
			abort();
		if (net_allow_parse("0.0.0.0/0:*,[::/0]:*", &l, err, sizeof(err)) ||
		    net_allow_match(&l, &t) != (t.family != 0))
			abort();
	} else if (r != -EAGAIN && (!err[0] || !printable(err) || t.text[0])) {
		abort();
	}
	return 0;
}
