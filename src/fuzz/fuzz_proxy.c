/*
 * fuzz_proxy.c - libFuzzer target for the two parsers of proxy.c: the
 * proxy URL (from --proxy or https_proxy) and the proxy's reply head.
 * The first byte picks the parser. Whatever the input, nothing is read
 * or written out of bounds, and what comes out keeps its promises: a
 * head within NET_PROXY_HEAD_MAX and the input, a status of 100..599, a
 * printable status line; credentials without control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[NET_PROXY_HEAD_MAX * 2];
	char line[NET_PROXY_LINE_MAX], err[300];
	struct net_proxy p;
	size_t head = 0, i;
	unsigned st = 0;

	if (size < 1)
		return 0;
	size--;
	if (size > sizeof(buf) - 1)
		size = sizeof(buf) - 1;
	memcpy(buf, data + 1, size);
	if (data[0] & 1) {
		buf[size] = 0;
		if (net_proxy_parse(buf, &p, err, sizeof(err)) == 0) {
			if (!p.host[0] || p.port == 0 || !printable(p.user) || !printable(p.pass) ||
			    strchr(p.user, ':') || (p.auth && !p.user[0]) || (!p.auth && p.user[0]))
				abort();
			/* The password never reaches an error message. */
		} else if (p.auth || p.user[0] || p.pass[0] || !err[0]) {
			abort();
		}
		net_proxy_wipe(&p);
		return 0;
	}
	if (net_proxy_reply(buf, size, &head, &st, line, sizeof(line)) == 0) {
		if (head < 4 || head > size || head > NET_PROXY_HEAD_MAX || st < 100 || st > 599 ||
		    strlen(line) >= sizeof(line) || !printable(line) || buf[head - 1] != '\n')
			abort();
		for (i = 0; i < head; i++)
			if (buf[i] == 0)
				abort();
	}
	return 0;
}
