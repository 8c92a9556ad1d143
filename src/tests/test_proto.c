/*
 * test_proto.c - the frame layer, every message codec, and the session
 * engine: round trips, malformed and truncated frames of every type, and
 * the rule that nothing happens before a HELLO with the right proof.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"
#include "tests/tap.h"

static uint8_t buf[PROTO_HDR_LEN + PROTO_CTRL_MAX];
static uint8_t out[PROTO_HDR_LEN + PROTO_CTRL_MAX];

/* Feeds w's bytes into a fresh rx one byte at a time; returns the frame. */
static int one_frame(const struct wbuf *w, struct proto_rx *rx, struct proto_frame *f)
{
	size_t i;
	int r = 0;

	proto_rx_init(rx, buf, sizeof(buf));
	for (i = 0; i < w->len; i++) {
		if (proto_rx_push(rx, w->p + i, 1) != 1)
			return -100;
		r = proto_rx_next(rx, f);
		if (r != 0)
			return (i + 1 == w->len) ? r : -101;
	}
	return r;
}

static void test_frames(void)
{
	struct proto_rx rx;
	struct proto_frame f;
	struct wbuf w;
	uint8_t hdr[PROTO_HDR_LEN] = { 0x7e, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t big[PROTO_HDR_LEN] = { PROTO_HELLO, 0, 0, 0, 0, 1, 0, 1 };
	uint8_t res[PROTO_HDR_LEN] = { PROTO_BYE, 0, 0, 1, 0, 0, 0, 0 };
	uint8_t bye1[PROTO_HDR_LEN + 1] = { PROTO_BYE, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t two[2 * PROTO_HDR_LEN] = { PROTO_BYE, 0, 0, 0, 0, 0, 0, 0,
					   PROTO_STATUS_REQ, 0, 0, 0, 0, 0, 0, 0 };

	wbuf_init(&w, out, sizeof(out));
	is_int(proto_enc_empty(&w, PROTO_BYE), 0, "encode BYE");
	is_int((int)w.len, PROTO_HDR_LEN, "BYE is a bare header");
	is_int(one_frame(&w, &rx, &f), 1, "BYE arrives whole after its 8th byte");
	is_int(f.type, PROTO_BYE, "BYE type");

	proto_rx_init(&rx, buf, sizeof(buf));
	proto_rx_push(&rx, hdr, sizeof(hdr));
	is_int(proto_rx_next(&rx, &f), -EBADMSG, "unknown type refused");
	ok(strstr(rx.why, "0x7e") != NULL, "the reason names the type (%s)", rx.why);
	is_int(proto_rx_next(&rx, &f), -EBADMSG, "error is sticky");

	proto_rx_init(&rx, buf, sizeof(buf));
	proto_rx_push(&rx, big, sizeof(big));
	is_int(proto_rx_next(&rx, &f), -EMSGSIZE, "HELLO over 64 KiB refused from its header");

	proto_rx_init(&rx, buf, sizeof(buf));
	proto_rx_push(&rx, res, sizeof(res));
	is_int(proto_rx_next(&rx, &f), -EBADMSG, "reserved bits refused");

	proto_rx_init(&rx, buf, sizeof(buf));
	proto_rx_push(&rx, bye1, sizeof(bye1));
	is_int(proto_rx_next(&rx, &f), -EMSGSIZE, "BYE with a body refused");

	proto_rx_init(&rx, buf, sizeof(buf));
	proto_rx_push(&rx, two, sizeof(two));
	is_int(proto_rx_next(&rx, &f), 1, "first of two frames");
	is_int(f.type, PROTO_BYE, "first is BYE");
	is_int(proto_rx_next(&rx, &f), 1, "second of two frames");
	is_int(f.type, PROTO_STATUS_REQ, "second is STATUS?");
	is_int(proto_rx_next(&rx, &f), 0, "then nothing");
}

static void test_hello(void)
{
	struct proto_hello h, d;
	struct proto_rx rx;
	struct proto_frame f;
	struct wbuf w;
	size_t cut;

	memset(&h, 0, sizeof(h));
	h.ver_min = 1;
	h.ver_max = 3;
	strcpy(h.agent, "ferry 0.1.0");
	strcpy(h.host, "db1.example");
	memset(h.proof, 0xa5, sizeof(h.proof));
	wbuf_init(&w, out, sizeof(out));
	is_int(proto_enc_hello(&w, &h), 0, "encode HELLO");
	is_int(one_frame(&w, &rx, &f), 1, "HELLO frame");
	is_int(proto_dec_hello(&f, &d), 0, "decode HELLO");
	ok(d.ver_min == 1 && d.ver_max == 3 && !strcmp(d.host, "db1.example") &&
	   !memcmp(d.proof, h.proof, PROTO_PROOF_LEN), "HELLO round trip");

	/* Every truncation of the payload (with a consistent header) fails. */
	for (cut = 0; cut < f.len; cut++) {
		struct proto_frame t = f;

		t.len = (uint32_t)cut;
		if (proto_dec_hello(&t, &d) == 0)
			break;
	}
	is_int((int)cut, (int)f.len, "every truncated HELLO is refused");
	{
		/* An extra stream's HELLO: the session and the stream. */
		struct proto_hello j = h, e;
		struct proto_frame g;
		static uint8_t o2[512];
		struct wbuf w2;
		static const struct {
			uint64_t join;
			uint8_t stream, streams;
		} bad[] = { { 0, 1, 2 }, { 5, 0, 2 }, { 5, 2, 2 }, { 5, 1, 1 },
			    { 5, 1, PROTO_STREAMS_MAX + 1 } };
		size_t i;

		j.join = 0x1122334455667788ull;
		j.stream = 3;
		j.streams = 4;
		wbuf_init(&w2, o2, sizeof(o2));
		proto_enc_hello(&w2, &j);
		is_int(one_frame(&w2, &rx, &g), 1, "joining HELLO frame");
		ok(proto_dec_hello(&g, &e) == 0 && e.join == j.join && e.stream == 3 &&
		   e.streams == 4, "joining HELLO round trip");
		for (i = 0; i < FERRY_ARRAY_LEN(bad); i++) {
			uint8_t t[512];
			struct proto_frame x = g;

			memcpy(t, g.payload, g.len);
			for (int b = 0; b < 8; b++)
				t[g.len - 10 + b] = (uint8_t)(bad[i].join >> (56 - 8 * b));
			t[g.len - 2] = bad[i].stream;
			t[g.len - 1] = bad[i].streams;
			x.payload = t;
			ok(proto_dec_hello(&x, &e) != 0, "joining HELLO %llx stream %u of %u refused",
			   (unsigned long long)bad[i].join, bad[i].stream, bad[i].streams);
		}
		for (cut = f.len + 1; cut < g.len; cut++) {
			struct proto_frame x = g;

			x.len = (uint32_t)cut;
			if (proto_dec_hello(&x, &e) == 0)
				break;
		}
		is_int((int)cut, (int)g.len, "every truncated join trailer is refused");
	}
	{
		struct proto_frame t = f;
		uint8_t longer[256];

		memcpy(longer, f.payload, f.len);
		longer[f.len] = 0;
		t.payload = longer;
		t.len = f.len + 1;
		ok(proto_dec_hello(&t, &d) != 0, "HELLO with a trailing byte refused");
	}
	{
		uint8_t bad[256];
		struct proto_frame t = f;

		memcpy(bad, f.payload, f.len);
		bad[6] = 0x07; /* first byte of the agent string: a control char */
		t.payload = bad;
		ok(proto_dec_hello(&t, &d) != 0, "control character in a string refused");
		memcpy(bad, f.payload, f.len);
		bad[4] = 0xff; /* agent string length far past the payload */
		ok(proto_dec_hello(&t, &d) != 0, "string length past the end refused");
		memcpy(bad, f.payload, f.len);
		bad[0] = 0; bad[1] = 5; bad[2] = 0; bad[3] = 1; /* min 5 > max 1 */
		ok(proto_dec_hello(&t, &d) != 0, "ver_min > ver_max refused");
	}
}

static void test_inventory(void)
{
	static struct proto_inventory inv, d;
	struct proto_rx rx;
	struct proto_frame f;
	struct wbuf w;
	uint32_t i;

	memset(&inv, 0, sizeof(inv));
	inv.version = 1;
	strcpy(inv.server, "ferry-init test");
	strcpy(inv.state, "waiting for the source");
	inv.mem_total = 512ull << 20;
	inv.ndisks = PROTO_MAX_DISKS;
	for (i = 0; i < inv.ndisks; i++) {
		snprintf(inv.disks[i].name, sizeof(inv.disks[i].name), "vd%c%c",
			 'a' + i / 26, 'a' + i % 26);
		inv.disks[i].size = (uint64_t)(i + 1) << 30;
		inv.disks[i].lsec = 512;
		inv.disks[i].psec = 4096;
		strcpy(inv.disks[i].serial, "SER-1");
	}
	wbuf_init(&w, out, sizeof(out));
	is_int(proto_enc_inventory(&w, PROTO_WELCOME, &inv), 0, "encode WELCOME with 32 disks");
	is_int(one_frame(&w, &rx, &f), 1, "WELCOME frame");
	is_int(proto_dec_inventory(&f, &d), 0, "decode WELCOME");
	ok(d.ndisks == PROTO_MAX_DISKS && d.disks[31].size == 32ull << 30 &&
	   d.disks[5].psec == 4096 && !strcmp(d.disks[31].name, "vdbf") &&
	   d.mem_total == inv.mem_total, "WELCOME round trip");

	inv.ndisks = 2;
	inv.disks[1].lsec = 768;
	wbuf_init(&w, out, sizeof(out));
	proto_enc_inventory(&w, PROTO_STATUS, &inv);
	one_frame(&w, &rx, &f);
	ok(proto_dec_inventory(&f, &d) != 0, "sector size 768 refused");

	inv.disks[1].lsec = 512;
	strcpy(inv.disks[1].name, inv.disks[0].name);
	wbuf_init(&w, out, sizeof(out));
	proto_enc_inventory(&w, PROTO_STATUS, &inv);
	one_frame(&w, &rx, &f);
	ok(proto_dec_inventory(&f, &d) != 0, "duplicate disk name refused");

	strcpy(inv.disks[1].name, "../sda");
	wbuf_init(&w, out, sizeof(out));
	proto_enc_inventory(&w, PROTO_STATUS, &inv);
	one_frame(&w, &rx, &f);
	ok(proto_dec_inventory(&f, &d) != 0, "disk name with a slash refused");

	strcpy(inv.disks[1].name, "vdb");
	inv.disks[1].size = 1000;
	wbuf_init(&w, out, sizeof(out));
	proto_enc_inventory(&w, PROTO_STATUS, &inv);
	one_frame(&w, &rx, &f);
	ok(proto_dec_inventory(&f, &d) != 0, "size not a multiple of the sector refused");

	inv.ndisks = PROTO_MAX_DISKS + 1;
	wbuf_init(&w, out, sizeof(out));
	ok(proto_enc_inventory(&w, PROTO_STATUS, &inv) != 0, "encoder refuses 33 disks");
	{
		/* A forged count of 33 on the wire. */
		uint8_t p[64];
		struct wbuf x;
		struct proto_frame t;

		wbuf_init(&x, p, sizeof(p));
		wbuf_u16(&x, 1);
		wbuf_str(&x, "s");
		wbuf_str(&x, "t");
		wbuf_str(&x, "h");
		wbuf_u64(&x, 0);
		wbuf_u16(&x, PROTO_MAX_DISKS + 1);
		t.type = PROTO_STATUS;
		t.flags = 0;
		t.len = (uint32_t)x.len;
		t.payload = p;
		ok(proto_dec_inventory(&t, &d) != 0, "decoder refuses a count of 33");
	}
}

static void test_error_msg(void)
{
	struct proto_error e;
	struct proto_rx rx;
	struct proto_frame f;
	struct wbuf w;
	char longtext[2000];

	wbuf_init(&w, out, sizeof(out));
	proto_enc_error(&w, PROTO_E_BUSY, "busy:\nanother session");
	one_frame(&w, &rx, &f);
	is_int(proto_dec_error(&f, &e), 0, "decode ERROR");
	is_int(e.code, PROTO_E_BUSY, "ERROR code");
	ok(!strcmp(e.text, "busy: another session"), "control chars replaced (%s)", e.text);

	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = 0;
	wbuf_init(&w, out, sizeof(out));
	proto_enc_error(&w, PROTO_E_IO, longtext);
	one_frame(&w, &rx, &f);
	is_int(proto_dec_error(&f, &e), 0, "an over-long ERROR text is clipped, not refused");
	is_int((int)strlen(e.text), PROTO_TEXT_MAX - 1, "clipped to the limit");
}

static void test_engine(void)
{
	struct proto_srv s;
	struct proto_act a;
	struct proto_hello h;
	struct proto_rx rx;
	struct proto_frame f;
	struct wbuf w;
	uint8_t proof[PROTO_PROOF_LEN];

	memset(proof, 0x42, sizeof(proof));
	memset(&h, 0, sizeof(h));
	h.ver_min = h.ver_max = PROTO_VERSION;
	strcpy(h.agent, "ferry test");

	/* Anything before HELLO is an authentication failure. */
	proto_srv_init(&s, proof, NULL);
	wbuf_init(&w, out, sizeof(out));
	proto_enc_empty(&w, PROTO_STATUS_REQ);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_AUTH, "STATUS? before HELLO refused");
	proto_srv_input(&s, &f, &a);
	is_int(a.kind, PROTO_ACT_NONE, "a failed session stays failed");

	/* Wrong proof. */
	proto_srv_init(&s, proof, NULL);
	memset(h.proof, 0x43, sizeof(h.proof));
	wbuf_init(&w, out, sizeof(out));
	proto_enc_hello(&w, &h);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_AUTH, "wrong proof refused");
	is_int(s.state, PROTO_SRV_FAILED, "state FAILED");

	/* Version mismatch, right proof. */
	proto_srv_init(&s, proof, NULL);
	memcpy(h.proof, proof, sizeof(proof));
	h.ver_min = h.ver_max = PROTO_VERSION + 1;
	wbuf_init(&w, out, sizeof(out));
	proto_enc_hello(&w, &h);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_VERSION, "version mismatch refused");

	/* The good path. */
	proto_srv_init(&s, proof, NULL);
	h.ver_min = 1;
	h.ver_max = PROTO_VERSION + 5;
	wbuf_init(&w, out, sizeof(out));
	proto_enc_hello(&w, &h);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	is_int(a.kind, PROTO_ACT_WELCOME, "right proof: WELCOME");
	ok(!strcmp(a.hello.agent, "ferry test"), "the action carries who connected");
	proto_srv_input(&s, &f, &a);
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_STATE, "a second HELLO is refused");

	proto_srv_init(&s, proof, NULL);
	wbuf_init(&w, out, sizeof(out));
	proto_enc_hello(&w, &h);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	wbuf_init(&w, out, sizeof(out));
	proto_enc_empty(&w, PROTO_STATUS_REQ);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	is_int(a.kind, PROTO_ACT_STATUS, "STATUS? after HELLO");
	wbuf_init(&w, out, sizeof(out));
	proto_enc_empty(&w, PROTO_BYE);
	one_frame(&w, &rx, &f);
	proto_srv_input(&s, &f, &a);
	is_int(a.kind, PROTO_ACT_BYE, "BYE ends");
	proto_srv_end(&s);
	{
		uint8_t z[PROTO_PROOF_LEN] = { 0 };

		ok(!memcmp(s.expect_proof, z, sizeof(z)), "the expected proof is wiped at the end");
	}
}

/* The destination's planner: a PLAN is checked against the inventory
 * before anything opens, and every DATA / HASHES? against the plan. */
static void test_plan(void)
{
	static struct proto_inventory inv;
	static struct proto_plan plan;
	struct proto_srv s;
	struct proto_act a;
	struct proto_hello h;
	struct proto_rx rx;
	struct proto_frame f;
	struct wbuf w;
	uint8_t proof[PROTO_PROOF_LEN];
	static uint8_t data[8192];

	memset(&inv, 0, sizeof(inv));
	inv.ndisks = 2;
	strcpy(inv.disks[0].name, "vda");
	inv.disks[0].size = 10ull << 30;
	inv.disks[0].lsec = inv.disks[0].psec = 512;
	strcpy(inv.disks[1].name, "vdb");
	inv.disks[1].size = 20ull << 30;
	inv.disks[1].lsec = inv.disks[1].psec = 512;
	memset(proof, 7, sizeof(proof));
	memset(&h, 0, sizeof(h));
	h.ver_min = h.ver_max = PROTO_VERSION;
	memcpy(h.proof, proof, sizeof(proof));

#define START()                                                                          \
	do {                                                                             \
		proto_srv_init(&s, proof, &inv);                                         \
		wbuf_init(&w, out, sizeof(out));                                         \
		proto_enc_hello(&w, &h);                                                 \
		one_frame(&w, &rx, &f);                                                  \
		proto_srv_input(&s, &f, &a);                                             \
	} while (0)
#define SEND_PLAN()                                                                      \
	do {                                                                             \
		wbuf_init(&w, out, sizeof(out));                                         \
		proto_enc_plan(&w, &plan);                                               \
		one_frame(&w, &rx, &f);                                                  \
		proto_srv_input(&s, &f, &a);                                             \
	} while (0)

	memset(&plan, 0, sizeof(plan));
	plan.chunk = 65536;
	plan.session = 1;
	plan.streams = 1;
	plan.ndisks = 1;
	strcpy(plan.disks[0].dst, "vdb");
	strcpy(plan.disks[0].src, "/dev/sda");
	plan.disks[0].src_size = 20ull << 30;
	plan.disks[0].lsec = 512;

	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_PLAN && s.plan.disks[0].dst_index == 1 &&
	   s.plan.disks[0].dst_size == 20ull << 30, "a plan that fits exactly is accepted");

	plan.disks[0].src_size = (20ull << 30) + 512;
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_TOOSMALL &&
	   strstr(a.text, "the storage space of the target device is too small: vdb is 20.0 GiB "
			  "(21474836480 bytes), the source /dev/sda needs 20.0 GiB (21474836992 bytes)"),
	   "one sector too big: the seed's words and both sizes (%s)", a.text);
	plan.disks[0].src_size = 20ull << 30;

	strcpy(plan.disks[0].dst, "vdc");
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_FAIL && strstr(a.text, "vdc does not exist") &&
	   strstr(a.text, "vda (10.0 GiB)") && strstr(a.text, "vdb (20.0 GiB)"),
	   "a missing disk is refused with the list of what exists (%s)", a.text);

	plan.ndisks = 2;
	strcpy(plan.disks[0].dst, "vda");
	plan.disks[0].src_size = 1ull << 30;
	plan.disks[1] = plan.disks[0];
	strcpy(plan.disks[1].src, "/dev/sdb");
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_FAIL && strstr(a.text, "vda is named twice"),
	   "the same destination twice is refused (%s)", a.text);

	plan.ndisks = 1;
	plan.disks[0].lsec = 4096;
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_FAIL && strstr(a.text, "sector sizes differ"),
	   "a sector size mismatch is refused (%s)", a.text);
	plan.disks[0].lsec = 512;

	/* DATA and HASHES? are held to the plan. */
	START();
	SEND_PLAN();
	{
		struct proto_data d = { 0, PROTO_ENC_RAW, (1ull << 30) - 8192, 8192, NULL, 0 };
		struct proto_hash_req q = { 0, 65536, (1ull << 30) - 65536, 65536 };

		wbuf_init(&w, out, sizeof(out));
		proto_enc_data_hdr(&w, &d);
		wbuf_bytes(&w, data, sizeof(data));
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		is_int(a.kind, PROTO_ACT_WRITE, "DATA ending at the disk's end is written");
		wbuf_init(&w, out, sizeof(out));
		proto_enc_hash_req(&w, &q);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		is_int(a.kind, PROTO_ACT_HASH, "HASHES? of the last chunk");
		d.off += 512;
		wbuf_init(&w, out, sizeof(out));
		proto_enc_data_hdr(&w, &d);
		wbuf_bytes(&w, data, sizeof(data));
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FAIL && strstr(a.text, "outside the plan"),
		   "DATA one sector past the end is refused (%s)", a.text);
	}
	START();
	SEND_PLAN();
	{
		struct proto_data d = { 0, PROTO_ENC_RAW, 100, 512, NULL, 0 };

		wbuf_init(&w, out, sizeof(out));
		proto_enc_data_hdr(&w, &d);
		wbuf_bytes(&w, data, 512);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FAIL, "DATA not on a sector boundary is refused");
	}
	START();
	SEND_PLAN();
	{
		struct proto_data d = { 3, PROTO_ENC_ZERO, 0, 4096, NULL, 0 };

		wbuf_init(&w, out, sizeof(out));
		proto_enc_data_hdr(&w, &d);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FAIL, "DATA for a disk not in the plan is refused");
	}
	START();
	{
		struct proto_data d = { 0, PROTO_ENC_ZERO, 0, 4096, NULL, 0 };

		wbuf_init(&w, out, sizeof(out));
		proto_enc_data_hdr(&w, &d);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_STATE,
		   "DATA before a PLAN is refused: nothing is written before the plan");
	}

	/* The number of streams is bounded. */
	plan.ndisks = 1;
	strcpy(plan.disks[0].dst, "vdb");
	plan.disks[0].src_size = 1ull << 30;
	plan.streams = 0;
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_MALFORMED, "a PLAN with 0 streams is refused");
	plan.streams = PROTO_STREAMS_MAX + 1;
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_MALFORMED,
	   "a PLAN with more than %d streams is refused", PROTO_STREAMS_MAX);
	plan.streams = 2;
	START();
	SEND_PLAN();
	ok(a.kind == PROTO_ACT_PLAN && s.plan.streams == 2, "a PLAN with 2 streams is accepted");

	/* FLUSH lists what becomes durable: ranges inside the plan. */
	{
		static const struct {
			uint32_t disk;
			uint64_t off, end;
			int ok;
			const char *what;
		} fl[] = {
			{ 0, 0, 4096, 1, "at the start" },
			{ 0, (1ull << 30) - 4096, 1ull << 30, 1, "at the disk's end" },
			{ 0, 0, 1ull << 30, 1, "the whole disk" },
			{ 0, 4096, (1ull << 30) + 512, 0, "past the disk's end" },
			{ 1, 0, 4096, 0, "on a disk not in the plan" },
		};
		size_t i;

		for (i = 0; i < FERRY_ARRAY_LEN(fl); i++) {
			struct proto_flush x, y;

			memset(&x, 0, sizeof(x));
			x.seq = 7;
			x.n = 2;
			x.r[0].disk = 0;
			x.r[0].off = 8192;
			x.r[0].end = 16384;
			x.r[1].disk = fl[i].disk;
			x.r[1].off = fl[i].off;
			x.r[1].end = fl[i].end;
			START();
			SEND_PLAN();
			wbuf_init(&w, out, sizeof(out));
			proto_enc_flush(&w, &x);
			one_frame(&w, &rx, &f);
			ok(proto_dec_flush(&f, &y) == 0 && y.seq == 7 && y.n == 2 &&
			   !memcmp(y.r, x.r, sizeof(x.r[0]) * 2), "FLUSH round trip (%s)", fl[i].what);
			proto_srv_input(&s, &f, &a);
			if (fl[i].ok)
				ok(a.kind == PROTO_ACT_FLUSH && a.flush.n == 2 &&
				   a.flush.r[1].end == fl[i].end, "FLUSH range %s is taken", fl[i].what);
			else
				ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_STATE,
				   "FLUSH range %s is refused (%s)", fl[i].what, a.text);
		}
		/* No ranges: a keepalive. Bounded count, non-empty ranges. */
		{
			struct proto_flush x, y;
			uint8_t raw[64];

			memset(&x, 0, sizeof(x));
			x.seq = 9;
			START();
			SEND_PLAN();
			wbuf_init(&w, out, sizeof(out));
			proto_enc_flush(&w, &x);
			one_frame(&w, &rx, &f);
			proto_srv_input(&s, &f, &a);
			ok(a.kind == PROTO_ACT_FLUSH && a.flush.n == 0 && a.flush.seq == 9,
			   "a FLUSH without ranges is a barrier");
			x.n = PROTO_FLUSH_RANGES + 1;
			wbuf_init(&w, out, sizeof(out));
			ok(proto_enc_flush(&w, &x) == -EINVAL, "more than %d ranges do not encode",
			   PROTO_FLUSH_RANGES);
			/* seq, n = 1, disk 0, off 4096, end 4096: an empty range. */
			memset(raw, 0, sizeof(raw));
			raw[9] = 1;
			raw[12 + 6] = 0x10;
			raw[20 + 6] = 0x10;
			f.type = PROTO_FLUSH;
			f.payload = raw;
			f.len = 8 + 2 + 18;
			ok(proto_dec_flush(&f, &y) == -EBADMSG, "a FLUSH range with off == end is malformed");
			raw[20 + 6] = 0x20;
			ok(proto_dec_flush(&f, &y) == 0 && y.r[0].off == 4096 && y.r[0].end == 8192,
			   "the same range one page long decodes");
			raw[9] = 0xff;
			ok(proto_dec_flush(&f, &y) == -EBADMSG, "a FLUSH claiming 255 ranges is malformed");
		}
	}

	/* PLAN_OK carries the durable ranges past the prefixes. */
	{
		static struct proto_plan_ok x, y;

		memset(&x, 0, sizeof(x));
		x.resumed = 1;
		x.n = 2;
		x.dst_size[0] = x.dst_size[1] = 1ull << 30;
		x.committed[0] = 1ull << 20;
		x.ndone = 3;
		x.done[0] = (struct proto_range){ 0, 4ull << 20, 8ull << 20 };
		x.done[1] = (struct proto_range){ 0, 16ull << 20, 17ull << 20 };
		x.done[2] = (struct proto_range){ 1, 0, 1ull << 30 };
		wbuf_init(&w, out, sizeof(out));
		ok(proto_enc_plan_ok(&w, &x) == 0, "PLAN_OK with 3 ranges encodes");
		one_frame(&w, &rx, &f);
		ok(proto_dec_plan_ok(&f, &y) == 0 && y.ndone == 3 &&
		   !memcmp(y.done, x.done, 3 * sizeof(x.done[0])) && y.committed[0] == 1ull << 20,
		   "PLAN_OK round trip with its ranges");
		x.done[2].end = (1ull << 30) + 4096;
		wbuf_init(&w, out, sizeof(out));
		proto_enc_plan_ok(&w, &x);
		one_frame(&w, &rx, &f);
		ok(proto_dec_plan_ok(&f, &y) == -EBADMSG, "a PLAN_OK range past its disk is malformed");
		x.done[2] = (struct proto_range){ 2, 0, 4096 };
		wbuf_init(&w, out, sizeof(out));
		proto_enc_plan_ok(&w, &x);
		one_frame(&w, &rx, &f);
		ok(proto_dec_plan_ok(&f, &y) == -EBADMSG, "a PLAN_OK range on a third disk is malformed");
		x.ndone = PROTO_DONE_MAX;
		for (uint32_t i = 0; i < PROTO_DONE_MAX; i++)
			x.done[i] = (struct proto_range){ 0, (uint64_t)(2 * i + 2) << 12,
							  (uint64_t)(2 * i + 3) << 12 };
		wbuf_init(&w, out, sizeof(out));
		ok(proto_enc_plan_ok(&w, &x) == 0 && w.len <= PROTO_HDR_LEN + PROTO_CTRL_MAX,
		   "PLAN_OK with %d ranges fits a control message (%zu bytes)", PROTO_DONE_MAX, w.len);
		x.ndone = PROTO_DONE_MAX + 1;
		wbuf_init(&w, out, sizeof(out));
		ok(proto_enc_plan_ok(&w, &x) == -EINVAL, "more ranges do not encode");
	}

	/* A durable list from the destination is checked before it is used. */
	{
		static const uint64_t size[2] = { 1ull << 30, 1ull << 20 };
		static const struct {
			struct proto_range r[3];
			uint32_t n;
			int ok;
			const char *what;
		} t[] = {
			{ { { 0, 4096, 8192 }, { 0, 65536, 1ull << 30 }, { 1, 0, 4096 } }, 3, 0, "in order" },
			{ { { 0, 65536, 131072 }, { 0, 4096, 8192 } }, 2, -1, "out of order" },
			{ { { 0, 4096, 8192 }, { 0, 8192, 12288 } }, 2, -1, "touching (not merged)" },
			{ { { 0, 4096, 8192 }, { 0, 4096, 8192 } }, 2, -1, "twice the same" },
			{ { { 1, 0, (1ull << 20) + 512 } }, 1, -1, "past its disk's end" },
			{ { { 2, 0, 4096 } }, 1, -1, "on a disk not planned" },
			{ { { 0, 8192, 8192 } }, 1, -1, "empty" },
			{ { { 1, 0, 4096 }, { 0, 0, 4096 } }, 2, -1, "disks out of order" },
		};
		size_t i;

		for (i = 0; i < FERRY_ARRAY_LEN(t); i++)
			is_int(proto_durable_check(t[i].r, t[i].n, size, 2), t[i].ok, t[i].what);
	}
	/* Adding keeps the list's rules, and a plain list (no prefix) too. */
	{
		struct proto_range l[4];
		uint32_t n = 0;
		uint64_t prefix = 0, size[1] = { 1ull << 30 };
		int r1, r2, r3;

		proto_durable_add(l, &n, 4, &prefix, &(struct proto_range){ 0, 8192, 12288 });
		proto_durable_add(l, &n, 4, &prefix, &(struct proto_range){ 0, 0, 4096 });
		ok(prefix == 4096 && n == 1 && l[0].off == 8192, "a range at 0 grows the prefix");
		proto_durable_add(l, &n, 4, &prefix, &(struct proto_range){ 0, 4096, 8192 });
		ok(prefix == 12288 && n == 0, "the gap filled: all one prefix");
		n = 0;
		r1 = proto_durable_add(l, &n, 2, NULL, &(struct proto_range){ 0, 0, 4096 });
		r2 = proto_durable_add(l, &n, 2, NULL, &(struct proto_range){ 0, 65536, 69632 });
		r3 = proto_durable_add(l, &n, 2, NULL, &(struct proto_range){ 0, 32768, 36864 });
		ok(r1 == 0 && r2 == 0 && r3 == -1 && n == 2 && l[0].off == 0 && l[1].off == 32768 &&
		   !proto_durable_check(l, n, size, 1),
		   "a plain list keeps a range at 0, and says when a full list dropped one");
	}

	/* FINISH says what of the source went as zeros. */
	{
		struct proto_finish x, y;

		memset(&x, 0, sizeof(x));
		x.flags = PROTO_PLAN_GROW;
		x.handoff = 2;
		START();
		SEND_PLAN();
		wbuf_init(&w, out, sizeof(out));
		proto_enc_finish(&w, &x);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FINISH && a.flags == PROTO_PLAN_GROW && a.handoff == 2 &&
		   a.fin.nzeroed == 0, "FINISH of an exact copy");
		x.zeroed = 12288;
		x.nzeroed = 2;
		x.zfirst = (struct proto_range){ 0, 1ull << 20, (1ull << 20) + 4096 };
		START();
		SEND_PLAN();
		wbuf_init(&w, out, sizeof(out));
		proto_enc_finish(&w, &x);
		one_frame(&w, &rx, &f);
		ok(proto_dec_finish(&f, &y) == 0 && y.zeroed == 12288 && y.nzeroed == 2 &&
		   y.zfirst.off == 1ull << 20 && y.zfirst.end == (1ull << 20) + 4096,
		   "FINISH round trip with zeroed ranges");
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FINISH && a.fin.nzeroed == 2, "FINISH with zeroed ranges is taken");
		x.zfirst.disk = 1;
		START();
		SEND_PLAN();
		wbuf_init(&w, out, sizeof(out));
		proto_enc_finish(&w, &x);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_MALFORMED,
		   "FINISH naming a zeroed range on a disk not in the plan is refused");
		x.zfirst.disk = 0;
		x.zeroed = 0;
		wbuf_init(&w, out, sizeof(out));
		proto_enc_finish(&w, &x);
		one_frame(&w, &rx, &f);
		ok(proto_dec_finish(&f, &y) == -EBADMSG, "zeroed ranges of 0 bytes are malformed");
	}

	/* A joined stream carries data, never the session's own messages. */
	{
		static const uint8_t types[] = { PROTO_PLAN, PROTO_FINISH, PROTO_CLEAN,
						 PROTO_ADAPT };
		struct proto_data d = { 0, PROTO_ENC_ZERO, 0, 4096, NULL, 0 };
		size_t i;

		START();
		s.plan.ndisks = 0;
		proto_srv_join(&s, &plan);
		ok(s.state == PROTO_SRV_PLANNED && s.joined && s.plan.disks[0].src_size == 1ull << 30,
		   "a joined stream takes the session's plan");
		wbuf_init(&w, out, sizeof(out));
		proto_enc_data_hdr(&w, &d);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		is_int(a.kind, PROTO_ACT_WRITE, "a joined stream writes DATA inside the plan");
		for (i = 0; i < FERRY_ARRAY_LEN(types); i++) {
			START();
			proto_srv_join(&s, &plan);
			wbuf_init(&w, out, sizeof(out));
			if (types[i] == PROTO_PLAN)
				proto_enc_plan(&w, &plan);
			else if (types[i] == PROTO_FINISH)
				proto_enc_finish(&w, &(struct proto_finish){ 0 });
			else if (types[i] == PROTO_ADAPT)
				proto_enc_adapt(&w, PROTO_ADAPT_ON, 0, NULL);
			else
				proto_enc_clean(&w, PROTO_CLEAN_WIPE, 0);
			one_frame(&w, &rx, &f);
			proto_srv_input(&s, &f, &a);
			ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_STATE,
			   "%s on a joined stream is refused (%s)", proto_type_name(types[i]), a.text);
		}
		proto_srv_init(&s, proof, &inv);
		proto_srv_join(&s, &plan);
		ok(s.state == PROTO_SRV_HELLO && !s.joined, "nothing joins before HELLO");
	}
	/* ADAPT: authenticated and outside a migration only; flags checked. */
	{
		static const struct {
			uint8_t flags, handoff;
			int ok;
			const char *what;
			struct proto_adapt_ip ip;
		} ad[] = {
			{ PROTO_ADAPT_ON, 2, 1, "auto, poweroff", { 0 } },
			{ PROTO_ADAPT_ON | PROTO_ADAPT_DRY, 0, 1, "dry run", { 0 } },
			{ PROTO_ADAPT_ON | PROTO_ADAPT_FORCE, 3, 1, "force, shell", { 0 } },
			{ 0, 0, 0, "without ON", { 0 } },
			{ PROTO_ADAPT_ON | PROTO_PLAN_GROW, 0, 0, "with GROW", { 0 } },
			{ PROTO_ADAPT_ON, 4, 0, "hand-off 4", { 0 } },
			{ PROTO_ADAPT_ON | PROTO_ADAPT_IP, 0, 1, "a static setup",
			  { 0xc000020a, 0xc0000201, 0x01010101, 24 } },
			{ PROTO_ADAPT_ON | PROTO_ADAPT_IP, 0, 0, "prefix 33", { 0xc000020a, 0, 0, 33 } },
			{ PROTO_ADAPT_ON | PROTO_ADAPT_IP, 0, 0, "gateway outside",
			  { 0xc000020a, 0xc0000301, 0, 24 } },
			{ PROTO_ADAPT_ON | PROTO_ADAPT_IP | PROTO_ADAPT_KEEP_IP, 0, 0,
			  "static and keep-ip", { 0xc000020a, 0, 0, 24 } },
		};
		struct proto_adapt_ip aip;
		uint8_t fl, ho;
		size_t i;

		for (i = 0; i < FERRY_ARRAY_LEN(ad); i++) {
			START();
			wbuf_init(&w, out, sizeof(out));
			proto_enc_adapt(&w, ad[i].flags, ad[i].handoff, &ad[i].ip);
			one_frame(&w, &rx, &f);
			ok((proto_dec_adapt(&f, &fl, &ho, &aip) == 0) == ad[i].ok, "ADAPT decode: %s",
			   ad[i].what);
			proto_srv_input(&s, &f, &a);
			if (ad[i].ok)
				ok(a.kind == PROTO_ACT_ADAPT && a.flags == ad[i].flags &&
				   a.handoff == ad[i].handoff && s.state == PROTO_SRV_FINISHING &&
				   !memcmp(&a.ip, &aip, sizeof(aip)) &&
				   (!(ad[i].flags & PROTO_ADAPT_IP) ||
				    (aip.addr == ad[i].ip.addr && aip.gw == ad[i].ip.gw &&
				     aip.dns == ad[i].ip.dns && aip.prefix == ad[i].ip.prefix)),
				   "ADAPT accepted when authenticated (%s)", ad[i].what);
			else
				ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_MALFORMED,
				   "ADAPT refused: %s", ad[i].what);
		}
		START();
		SEND_PLAN();
		wbuf_init(&w, out, sizeof(out));
		proto_enc_adapt(&w, PROTO_ADAPT_ON, 0, NULL);
		one_frame(&w, &rx, &f);
		proto_srv_input(&s, &f, &a);
		ok(a.kind == PROTO_ACT_FAIL && a.code == PROTO_E_STATE,
		   "ADAPT during a migration is refused (%s)", a.text);
		{
			static const struct {
				const char *s;
				int ok;
				uint8_t f;
			} pa[] = {
				{ "", 1, PROTO_ADAPT_ON },
				{ "auto", 1, PROTO_ADAPT_ON },
				{ "force", 1, PROTO_ADAPT_ON | PROTO_ADAPT_FORCE },
				{ "dry-run,keep-ip", 1, PROTO_ADAPT_ON | PROTO_ADAPT_DRY | PROTO_ADAPT_KEEP_IP },
				{ "keep-ip", 1, PROTO_ADAPT_ON | PROTO_ADAPT_KEEP_IP },
				{ "force,dry-run", 0, 0 },
				{ "force,", 0, 0 },
				{ "always", 0, 0 },
				{ "forced", 0, 0 },
			};

			for (i = 0; i < FERRY_ARRAY_LEN(pa); i++) {
				fl = 0xee;
				ok(proto_adapt_parse(pa[i].s, &fl) == (pa[i].ok ? 0 : -EINVAL) &&
				   (!pa[i].ok ? fl == 0xee : fl == pa[i].f),
				   "adapt words \"%s\": %s", pa[i].s, pa[i].ok ? "taken" : "refused");
			}
		}
		/* FINISH takes the adapt flags with GROW. */
		{
			struct proto_finish fx = { 0 }, fy;

			fx.flags = PROTO_PLAN_GROW | PROTO_ADAPT_ON | PROTO_ADAPT_FORCE;
			fx.handoff = 1;
			wbuf_init(&w, out, sizeof(out));
			proto_enc_finish(&w, &fx);
			one_frame(&w, &rx, &f);
			ok(proto_dec_finish(&f, &fy) == 0 && fy.flags == fx.flags && fy.handoff == 1,
			   "FINISH with GROW and the adapt flags");
			fx.flags = 0x80;
			wbuf_init(&w, out, sizeof(out));
			proto_enc_finish(&w, &fx);
			one_frame(&w, &rx, &f);
			ok(proto_dec_finish(&f, &fy) != 0, "FINISH with an unknown flag is refused");
			fx.flags = PROTO_ADAPT_ON | PROTO_ADAPT_IP;
			fx.ip = (struct proto_adapt_ip){ 0x0a00000a, 0x0a000001, 0, 8 };
			wbuf_init(&w, out, sizeof(out));
			proto_enc_finish(&w, &fx);
			one_frame(&w, &rx, &f);
			ok(proto_dec_finish(&f, &fy) == 0 && fy.ip.addr == fx.ip.addr &&
			   fy.ip.gw == fx.ip.gw && fy.ip.prefix == 8 && fy.ip.dns == 0,
			   "FINISH carries the static setup");
			f.len -= 4;
			ok(proto_dec_finish(&f, &fy) != 0, "FINISH with a short static setup is refused");
		}
		/* --adapt-ip and ferry.adapt.ip=: one parser. */
		{
			static const struct {
				const char *s;
				int ok;
				struct proto_adapt_ip ip;
			} pi[] = {
				{ "192.0.2.10/24", 1, { 0xc000020a, 0, 0, 24 } },
				{ "192.0.2.10/24,gw=192.0.2.1,dns=9.9.9.9", 1,
				  { 0xc000020a, 0xc0000201, 0x09090909, 24 } },
				{ "10.1.2.3/8,dns=10.0.0.2", 1, { 0x0a010203, 0, 0x0a000002, 8 } },
				{ "192.0.2.10", 0, { 0 } },
				{ "192.0.2.10/", 0, { 0 } },
				{ "192.0.2.10/33", 0, { 0 } },
				{ "192.0.2.10/0", 0, { 0 } },
				{ "192.0.2.256/24", 0, { 0 } },
				{ "192.0.2/24", 0, { 0 } },
				{ "192.0.2.010/24", 0, { 0 } },
				{ "192.0.2.10/24,gw=192.0.3.1", 0, { 0 } },
				{ "192.0.2.10/24,gw=192.0.2.10", 0, { 0 } },
				{ "192.0.2.10/24,gw=192.0.2.1,gw=192.0.2.2", 0, { 0 } },
				{ "192.0.2.10/24,mtu=1500", 0, { 0 } },
				{ "192.0.2.10/24,dns=", 0, { 0 } },
				{ "192.0.2.10/24,", 0, { 0 } },
				{ "0.0.0.0/24", 0, { 0 } },
				{ "", 0, { 0 } },
			};
			struct proto_adapt_ip ip;
			char why[96];
			int r;

			for (i = 0; i < FERRY_ARRAY_LEN(pi); i++) {
				memset(&ip, 0xee, sizeof(ip));
				why[0] = 0;
				r = proto_adapt_ip_parse(pi[i].s, &ip, why, sizeof(why));
				ok(pi[i].ok ? r == 0 && ip.addr == pi[i].ip.addr && ip.gw == pi[i].ip.gw &&
						      ip.dns == pi[i].ip.dns && ip.prefix == pi[i].ip.prefix
					    : r == -EINVAL && ip.prefix == 0xee && why[0],
				   "adapt ip \"%s\": %s%s%s", pi[i].s, pi[i].ok ? "taken" : "refused: ",
				   pi[i].ok ? "" : why, "");
			}
			{
				char t[20];

				proto_ipv4_text(0xc000020a, t, sizeof(t));
				ok(!strcmp(t, "192.0.2.10"), "ipv4 text: %s", t);
			}
		}
	}
#undef START
#undef SEND_PLAN
}

int main(void)
{
	test_frames();
	test_hello();
	test_inventory();
	test_error_msg();
	test_engine();
	test_plan();
	return tap_done();
}
