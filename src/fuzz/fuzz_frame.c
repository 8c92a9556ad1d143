/*
 * fuzz_frame.c - libFuzzer target for everything a peer can send: the
 * frame layer fed in random-sized pieces, every message decoder, and the
 * session engine (with the right proof, so it gets past HELLO, and a disk
 * vda of 1 GiB, so a PLAN can be accepted). A HELLO that joins a session
 * makes the engine an extra stream of a fixed plan, as the receiver does.
 * Seeds: corpus/mkseeds-frame.py.
 */
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[PROTO_HDR_LEN + PROTO_CTRL_MAX];
	static struct proto_inventory inv, got;
	static struct proto_plan plan, pl;
	static struct proto_report rep;
	static struct proto_plan_ok ok;
	struct proto_data dd;
	struct proto_flush fl;
	struct proto_finish fin;
	struct proto_hash_req hq;
	struct proto_hashes hs;
	uint64_t u1, u2;
	uint8_t f1, f2;
	struct proto_adapt_ip aip;
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
	memset(&inv, 0, sizeof(inv));
	inv.ndisks = 1;
	strcpy(inv.disks[0].name, "vda");
	inv.disks[0].size = 1ull << 30;
	inv.disks[0].lsec = inv.disks[0].psec = 512;
	memset(&plan, 0, sizeof(plan));
	plan.chunk = 65536;
	plan.session = 0x1122334455667788ull;
	plan.streams = 2;
	plan.ndisks = 1;
	strcpy(plan.disks[0].dst, "vda");
	plan.disks[0].src_size = 1ull << 30;
	plan.disks[0].lsec = 512;
	proto_rx_init(&rx, buf, sizeof(buf));
	proto_srv_init(&s, proof, &inv);
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
			(void)proto_dec_inventory(&f, &got);
			(void)proto_dec_error(&f, &e);
			(void)proto_dec_plan(&f, &pl);
			(void)proto_dec_plan_ok(&f, &ok);
			(void)proto_dec_data(&f, &dd);
			(void)proto_dec_flush(&f, &fl);
			(void)proto_dec_flushed(&f, &u1, &u2);
			(void)proto_dec_hash_req(&f, &hq);
			(void)proto_dec_hashes(&f, &hs);
			(void)proto_dec_finish(&f, &fin);
			(void)proto_dec_clean(&f, &f1, &f2);
			(void)proto_dec_adapt(&f, &f1, &f2, &aip);
			(void)proto_dec_finished(&f, &rep);
			proto_srv_input(&s, &f, &a);
			if (a.kind == PROTO_ACT_WELCOME && a.hello.join)
				proto_srv_join(&s, &plan);
		}
		if (r < 0)
			break;
	}
	proto_srv_end(&s);
	return 0;
}
