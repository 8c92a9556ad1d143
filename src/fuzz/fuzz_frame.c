/*
 * fuzz_frame.c - libFuzzer target for everything a peer can send: the
 * frame layer fed in random-sized pieces, every message decoder, and the
 * session engine (with the right proof, so it gets past HELLO).
 */
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[PROTO_HDR_LEN + PROTO_CTRL_MAX];
	static struct proto_inventory inv;
	struct proto_rx rx;
	struct proto_frame f;
	struct proto_srv s;
	struct proto_act a;
	struct proto_hello h;
	struct proto_error e;
	uint8_t proof[PROTO_PROOF_LEN];
	size_t off = 0;
	int r;

	memset(proof, 0, sizeof(proof));
	proto_rx_init(&rx, buf, sizeof(buf));
	proto_srv_init(&s, proof, NULL);
	while (off < size) {
		/* The first byte of each piece chooses its length. */
		size_t n = 1 + data[off] % 64;

		off++;
		if (n > size - off)
			n = size - off;
		if (proto_rx_push(&rx, data + off, n) != n)
			break;
		off += n;
		while ((r = proto_rx_next(&rx, &f)) == 1) {
			(void)proto_dec_hello(&f, &h);
			(void)proto_dec_inventory(&f, &inv);
			(void)proto_dec_error(&f, &e);
			proto_srv_input(&s, &f, &a);
		}
		if (r < 0)
			break;
	}
	proto_srv_end(&s);
	return 0;
}
