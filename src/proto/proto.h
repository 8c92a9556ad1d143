/*
 * proto.h - the ferry wire protocol inside TLS: frames, messages and the
 * receive-side engine. Pure code: no I/O, no malloc. Callers push bytes
 * in, pull frames out, hand frames to the engine and carry out the
 * actions it returns.
 *
 * Frame: type u8 | flags u8 | reserved u16 (0) | length u32, big-endian,
 * then `length` payload bytes. Every length is bounded per type before a
 * byte of payload is looked at.
 */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct wbuf;

/* 2: streams (HELLO join, PLAN streams, FLUSH position). 3: FLUSH and
 * PLAN_OK carry durable ranges, FINISH the source's unreadable blocks and
 * the adapt flags, ADAPT, 128 report lines. */
#define PROTO_VERSION 3
#define PROTO_HDR_LEN 8
#define PROTO_CTRL_MAX (64u * 1024)	       /* any control message */
#define PROTO_DATA_MAX (1024u * 1024)	       /* largest DATA payload */
#define PROTO_DATA_HDR 16			/* disk, enc, rsv, offset, length */
#define PROTO_FRAME_MAX (PROTO_HDR_LEN + PROTO_DATA_HDR + PROTO_DATA_MAX)
#define PROTO_HASH_LEN 16			/* XXH3-128 */
#define PROTO_HASH_MAX 2048			/* hashes per HASHES message */

#define PROTO_PROOF_LEN 32
#define PROTO_MAX_DISKS 32
#define PROTO_STREAMS_MAX 8		/* TLS connections of one migration */
#define PROTO_FLUSH_RANGES 64		/* ranges one FLUSH makes durable */
#define PROTO_DONE_MAX 1024		/* durable ranges past the committed prefixes */
#define PROTO_NAME_MAX 32
#define PROTO_LABEL_MAX 64
#define PROTO_TEXT_MAX 512

enum proto_type {
	PROTO_HELLO = 0x01,	/* agent -> dest: versions, proof */
	PROTO_WELCOME = 0x02,	/* dest -> agent: version, inventory */
	PROTO_ERROR = 0x03,	/* either way: code + text; ends the session */
	PROTO_BYE = 0x04,	/* either way: orderly end */
	PROTO_STATUS_REQ = 0x05, /* agent -> dest */
	PROTO_STATUS = 0x06,	/* dest -> agent: inventory */
	PROTO_PLAN = 0x10,	/* agent -> dest: disks, mapping, options */
	PROTO_PLAN_OK = 0x11,	/* dest -> agent: plan accepted, disks open */
	PROTO_DATA = 0x12,	/* agent -> dest: bytes (or zeros) at an offset */
	PROTO_FLUSH = 0x13,	/* agent -> dest: make everything so far durable */
	PROTO_FLUSHED = 0x14,	/* dest -> agent: it is (seq echoed) */
	PROTO_HASH_REQ = 0x15,	/* agent -> dest: hashes of a range, please */
	PROTO_HASHES = 0x16,	/* dest -> agent: XXH3-128 per block */
	PROTO_FINISH = 0x17,	/* agent -> dest: fix-ups, report, hand-off */
	PROTO_FINISHED = 0x18,	/* dest -> agent: the boot-readiness report */
	PROTO_CLEAN = 0x19,	/* agent -> dest: abort, optionally wipe, hand off */
	PROTO_ADAPT = 0x1a,	/* agent -> dest: adapt the migrated system, report */
};

enum proto_err {
	PROTO_E_AUTH = 1,	/* missing or wrong proof of the token */
	PROTO_E_BUSY = 2,	/* another session is active */
	PROTO_E_VERSION = 3,	/* no common protocol version */
	PROTO_E_MALFORMED = 4,	/* a frame or message failed to parse */
	PROTO_E_STATE = 5,	/* a message not allowed now */
	PROTO_E_TOOSMALL = 6,	/* destination disk too small */
	PROTO_E_IO = 7,		/* the destination failed to read/write */
	PROTO_E_INTERNAL = 8,
};

const char *proto_type_name(uint8_t type);
const char *proto_err_name(uint16_t code);

/* ---- frames ----------------------------------------------------------- */

struct proto_frame {
	uint8_t type;
	uint8_t flags;
	uint32_t len;
	const uint8_t *payload; /* points into the rx buffer */
};

/*
 * Receive buffer, owned by the caller: buf of cap bytes (>= PROTO_FRAME_MAX
 * for a data-carrying session, >= PROTO_HDR_LEN + PROTO_CTRL_MAX for a
 * control-only one). The first error is sticky.
 */
struct proto_rx {
	uint8_t *buf;
	size_t cap;
	size_t len;	/* end of the bytes held */
	size_t done;	/* start of the bytes not yet handed out as frames */
	int err;
	char why[96];
};

void proto_rx_init(struct proto_rx *rx, void *buf, size_t cap);
/* Where to put new bytes and how many fit (after compacting). */
uint8_t *proto_rx_space(struct proto_rx *rx, size_t *avail);
/* n bytes were written at proto_rx_space(). */
void proto_rx_commit(struct proto_rx *rx, size_t n);
/* Copies in up to len bytes; returns how many were taken. */
size_t proto_rx_push(struct proto_rx *rx, const void *p, size_t len);
/*
 * 1 and *f filled when a whole frame is held (valid until the next call),
 * 0 when more bytes are needed, -EBADMSG / -EMSGSIZE on a bad header
 * (rx->why says what was wrong).
 */
int proto_rx_next(struct proto_rx *rx, struct proto_frame *f);

/* Header + payload written by enc into w; returns w->err. */
void proto_frame_begin(struct wbuf *w, uint8_t type, size_t *hdr_at);
int proto_frame_end(struct wbuf *w, size_t hdr_at);

/* ---- messages --------------------------------------------------------- */

struct proto_hello {
	uint16_t ver_min, ver_max;
	char agent[PROTO_LABEL_MAX];	/* "ferry 0.1.0" */
	char host[PROTO_LABEL_MAX];	/* source hostname */
	uint8_t proof[PROTO_PROOF_LEN];
	/* An extra stream of a migration (optional trailer): the session it
	 * joins (0 = none, a session of its own), its index 1..streams-1. */
	uint64_t join;
	uint8_t stream, streams;
};

#define PROTO_DISK_RO 0x01
#define PROTO_DISK_REMOVABLE 0x02

struct proto_disk {
	char name[PROTO_NAME_MAX];
	uint64_t size;
	uint32_t lsec, psec;
	uint8_t flags;
	char model[PROTO_LABEL_MAX];
	char serial[PROTO_LABEL_MAX];
};

struct proto_inventory {
	uint16_t version;		/* protocol version in use */
	char server[PROTO_LABEL_MAX];	/* "ferry-init 0.1.0" */
	char state[PROTO_LABEL_MAX];	/* "waiting", ... */
	char host[PROTO_LABEL_MAX];
	uint64_t mem_total;
	uint32_t ndisks;
	struct proto_disk disks[PROTO_MAX_DISKS];
	/* A migration this boot of the destination holds (0 = none): per
	 * planned disk, the bytes of its send order known durable. */
	uint64_t session;
	uint32_t nsess;
	struct {
		char dst[PROTO_NAME_MAX];
		uint64_t committed;
	} sess[PROTO_MAX_DISKS];
	/* The destination's clock (seconds since 1970, UTC): `ferry check`
	 * compares it with the source's. */
	uint64_t time_unix;
};

struct proto_error {
	uint16_t code;
	char text[PROTO_TEXT_MAX];
};

int proto_enc_hello(struct wbuf *w, const struct proto_hello *m);
int proto_dec_hello(const struct proto_frame *f, struct proto_hello *m);
/* type is PROTO_WELCOME or PROTO_STATUS: same body. */
int proto_enc_inventory(struct wbuf *w, uint8_t type,
			const struct proto_inventory *m);
int proto_dec_inventory(const struct proto_frame *f,
			struct proto_inventory *m);
int proto_enc_error(struct wbuf *w, uint16_t code, const char *text);
int proto_dec_error(const struct proto_frame *f, struct proto_error *m);
/* Frames with no body: BYE, STATUS_REQ. */
int proto_enc_empty(struct wbuf *w, uint8_t type);

/* ---- migration messages ---------------------------------------------- */

enum proto_table { PROTO_TABLE_NONE = 0, PROTO_TABLE_MBR = 1, PROTO_TABLE_GPT = 2 };

#define PROTO_PLAN_CHECKSUM 0x01	/* the agent will verify by hashes */
#define PROTO_PLAN_GROW 0x02		/* grow the last partition at FINISH */
/* FINISH and ADAPT: adapt the migrated system to this machine (drivers,
 * fstab, network, bootloader) when its boot-readiness report fails, or
 * whatever it says (FORCE), or only say what would change (DRY). */
#define PROTO_ADAPT_ON 0x04
#define PROTO_ADAPT_DRY 0x08
#define PROTO_ADAPT_FORCE 0x10
#define PROTO_ADAPT_KEEP_IP 0x20	/* keep static addresses (default: DHCP) */
#define PROTO_ADAPT_IP 0x40		/* a static IPv4 setup for the primary NIC follows */

/* The static IPv4 setup the migrated system's primary NIC gets instead
 * of DHCP (ferry migrate --adapt-ip, ferry.adapt.ip=): host byte order;
 * prefix 0 = none; gw, dns 0 = none. */
struct proto_adapt_ip {
	uint32_t addr, gw, dns;
	uint8_t prefix;
};
/* "ADDR/PREFIX[,gw=GW][,dns=DNS]" (IPv4, dotted quads, prefix 1..32, the
 * gateway inside ADDR/PREFIX and not ADDR): 0, or -EINVAL with why (a
 * sentence, cap bytes) and *ip unchanged. */
int proto_adapt_ip_parse(const char *s, struct proto_adapt_ip *ip, char *why, size_t cap);
/* "10.0.0.5/24" (addr), "10.0.0.1" (gw, dns: "" when 0) into out. */
void proto_ipv4_text(uint32_t a, char *out, size_t cap);

struct proto_plan_disk {
	char dst[PROTO_NAME_MAX];	/* destination disk name ("vdb") */
	char src[PROTO_LABEL_MAX];	/* source, for messages ("/dev/sda") */
	uint64_t src_size;		/* bytes: the range DATA may cover */
	uint32_t lsec;			/* source logical sector size */
	uint8_t table;			/* enum proto_table */
	uint64_t send_bytes;		/* what the agent plans to send */
	/* filled by the engine from the inventory: */
	uint32_t dst_index;
	uint64_t dst_size;
};

struct proto_plan {
	uint32_t chunk;			/* power of two, 4 KiB .. PROTO_DATA_MAX */
	uint64_t session;		/* random per migration */
	uint64_t seed;			/* hash seed for this session */
	uint8_t flags;
	uint8_t streams;		/* connections carrying DATA: 1..PROTO_STREAMS_MAX */
	uint32_t ndisks;
	struct proto_plan_disk disks[PROTO_MAX_DISKS];
};

/* ZSTD: the payload is one zstd frame of exactly len bytes of content. */
enum proto_enc { PROTO_ENC_RAW = 0, PROTO_ENC_ZERO = 1, PROTO_ENC_ZSTD = 2 };

struct proto_data {
	uint16_t disk;			/* index into the plan */
	uint8_t enc;
	uint64_t off;
	uint32_t len;
	const uint8_t *payload;		/* NULL for ZERO */
	uint32_t plen;			/* payload bytes (len for RAW) */
};

struct proto_hash_req {
	uint16_t disk;
	uint32_t block;			/* bytes per hash */
	uint64_t off, len;
};

struct proto_hashes {
	uint16_t disk;
	uint32_t block;
	uint64_t off;
	uint32_t count;
	const uint8_t *hashes;		/* count * PROTO_HASH_LEN, in the frame */
};

enum proto_level { PROTO_PASS = 0, PROTO_WARN = 1, PROTO_FAIL = 2 };

#define PROTO_REPORT_MAX 128

struct proto_report {
	uint8_t verdict;		/* worst level */
	uint32_t n;
	struct {
		uint8_t level;
		char text[240];
	} line[PROTO_REPORT_MAX];
};

int proto_enc_plan(struct wbuf *w, const struct proto_plan *m);
int proto_dec_plan(const struct proto_frame *f, struct proto_plan *m);
/* Bytes [off, end) of disk (an index into the plan). */
struct proto_range {
	uint32_t disk;
	uint64_t off, end;
};
/*
 * PLAN_OK: whether the destination resumed the session it held, then
 * per disk its size and the prefix known durable (0 unless resumed),
 * then the ranges past those prefixes known durable too, ascending by
 * (disk, off). Decoding bounds the count and checks each range lies in a
 * disk; order and overlap are the reader's to check.
 */
struct proto_plan_ok {
	uint8_t resumed;
	uint32_t n;
	uint64_t dst_size[PROTO_MAX_DISKS];
	uint64_t committed[PROTO_MAX_DISKS];
	uint32_t ndone;
	struct proto_range done[PROTO_DONE_MAX];
};
/*
 * What is durable: per disk a prefix, past the prefixes a list of n
 * ranges (at most max) ascending by (disk, off), disjoint and never
 * touching each other or a prefix. proto_durable_add records r, prefix
 * pointing at the prefix of r's disk (NULL: a plain list): merged into it
 * when r reaches it, else into the list; a full list drops its highest
 * range (or r) and returns -1 - for what is durable that only means
 * sending it again on a resume, never skipping anything.
 * proto_durable_check: 0 if a list from elsewhere keeps those rules
 * (sizes per disk, ndisks of them), -1 if not.
 */
int proto_durable_add(struct proto_range *list, uint32_t *n, uint32_t max, uint64_t *prefix,
		      const struct proto_range *r);
int proto_durable_check(const struct proto_range *list, uint32_t n, const uint64_t *size,
			uint32_t ndisks);
int proto_enc_plan_ok(struct wbuf *w, const struct proto_plan_ok *m);
int proto_dec_plan_ok(const struct proto_frame *f, struct proto_plan_ok *m);
/* The DATA header only; the caller sends plen payload bytes after it
 * (len for RAW, 0 for ZERO, the compressed size for ZSTD), so the payload
 * is never copied into a frame buffer. */
int proto_enc_data_hdr(struct wbuf *w, const struct proto_data *m);
int proto_dec_data(const struct proto_frame *f, struct proto_data *m);
/*
 * FLUSH: seq, and the ranges that become durable with it: what the
 * stream covered (sent, compared, or found nothing to send in) since
 * its previous FLUSH. None is a keepalive or a plain barrier.
 */
struct proto_flush {
	uint64_t seq;
	uint32_t n;
	struct proto_range r[PROTO_FLUSH_RANGES];
};
int proto_enc_flush(struct wbuf *w, const struct proto_flush *m);
int proto_dec_flush(const struct proto_frame *f, struct proto_flush *m);
int proto_enc_flushed(struct wbuf *w, uint64_t seq, uint64_t written);
int proto_dec_flushed(const struct proto_frame *f, uint64_t *seq, uint64_t *written);
int proto_enc_hash_req(struct wbuf *w, const struct proto_hash_req *m);
int proto_dec_hash_req(const struct proto_frame *f, struct proto_hash_req *m);
/* HASHES header + count hashes from h. */
int proto_enc_hashes(struct wbuf *w, const struct proto_hash_req *req,
		     const uint8_t *h, uint32_t count);
int proto_dec_hashes(const struct proto_frame *f, struct proto_hashes *m);
/* FINISH: the plan's GROW flag, the hand-off, and what of the source
 * could not be read and went as zeros (ferry migrate --skip-bad-sectors):
 * bytes, ranges, the first of them. */
struct proto_finish {
	uint8_t flags, handoff;
	struct proto_adapt_ip ip;	/* with PROTO_ADAPT_IP */
	uint64_t zeroed;
	uint32_t nzeroed;
	struct proto_range zfirst;
};
int proto_enc_finish(struct wbuf *w, const struct proto_finish *m);
int proto_dec_finish(const struct proto_frame *f, struct proto_finish *m);
#define PROTO_CLEAN_WIPE 0x01
/* CLEAN: flags (PROTO_CLEAN_WIPE) and the hand-off; answered by FINISHED. */
int proto_enc_clean(struct wbuf *w, uint8_t flags, uint8_t handoff);
int proto_dec_clean(const struct proto_frame *f, uint8_t *flags, uint8_t *handoff);
/* ADAPT: flags (PROTO_ADAPT_*), the hand-off after a report without
 * FAIL and, with PROTO_ADAPT_IP, the static setup (ip may be NULL
 * without it); answered by FINISHED. */
int proto_enc_adapt(struct wbuf *w, uint8_t flags, uint8_t handoff,
		    const struct proto_adapt_ip *ip);
int proto_dec_adapt(const struct proto_frame *f, uint8_t *flags, uint8_t *handoff,
		    struct proto_adapt_ip *ip);
/* "auto", "force" or "dry-run" (one at most), and "keep-ip", separated by
 * commas ("" = auto): PROTO_ADAPT_ON and the flags they ask for; -EINVAL
 * otherwise (*flags unchanged). For --adapt= and ferry.adapt=. */
int proto_adapt_parse(const char *s, uint8_t *flags);
int proto_enc_finished(struct wbuf *w, const struct proto_report *r);
int proto_dec_finished(const struct proto_frame *f, struct proto_report *r);
/* Appends a line (clipped) and raises the verdict. */
void proto_report_add(struct proto_report *r, uint8_t level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- the destination's session engine ----------------------------------- */

enum proto_srv_state {
	PROTO_SRV_HELLO,	/* waiting for HELLO */
	PROTO_SRV_READY,	/* authenticated */
	PROTO_SRV_PLANNED,	/* PLAN accepted: DATA, FLUSH, HASH_REQ, FINISH */
	PROTO_SRV_FINISHING,	/* FINISH seen: only the report goes out */
	PROTO_SRV_DONE,		/* BYE seen or sent */
	PROTO_SRV_FAILED,	/* ERROR sent; the session must end */
};

enum proto_act_kind {
	PROTO_ACT_NONE,
	PROTO_ACT_WELCOME,	/* send WELCOME with the inventory */
	PROTO_ACT_STATUS,	/* send STATUS with the inventory */
	PROTO_ACT_BYE,		/* answer BYE and end the session */
	PROTO_ACT_FAIL,		/* send ERROR(code, text) and end */
	PROTO_ACT_PLAN,		/* open the disks of s->plan; PLAN_OK or fail */
	PROTO_ACT_WRITE,	/* write a.data (checked against the plan) */
	PROTO_ACT_FLUSH,	/* fdatasync everything; FLUSHED(a.seq) */
	PROTO_ACT_HASH,		/* hash a.hreq on the disk; HASHES */
	PROTO_ACT_FINISH,	/* fix-ups, report, FINISHED, then hand-off */
	PROTO_ACT_CLEAN,	/* abort, wipe if a.flags asks, FINISHED, hand-off */
	PROTO_ACT_ADAPT,	/* adapt the disks as a.flags asks, FINISHED, hand-off */
};

struct proto_act {
	enum proto_act_kind kind;
	uint16_t code;
	char text[PROTO_TEXT_MAX];
	struct proto_hello hello; /* with WELCOME: who connected */
	struct proto_data data;	  /* with WRITE */
	struct proto_hash_req hreq; /* with HASH */
	struct proto_flush flush; /* with FLUSH (ranges checked against the plan) */
	struct proto_finish fin;  /* with FINISH */
	uint8_t flags, handoff;	  /* with FINISH, CLEAN, ADAPT */
	struct proto_adapt_ip ip; /* with ADAPT */
};

struct proto_srv {
	enum proto_srv_state state;
	uint8_t expect_proof[PROTO_PROOF_LEN];
	uint16_t version;
	const struct proto_inventory *inv; /* the destination's disks */
	struct proto_plan plan;
	int joined;		/* an extra stream: DATA, FLUSH, HASH_REQ, BYE only */
};

/* expect_proof is what an agent holding the token must send; inv lists
 * the disks a PLAN may name (it must outlive the session). */
void proto_srv_init(struct proto_srv *s, const uint8_t *expect_proof,
		    const struct proto_inventory *inv);
/* The caller could not carry out PLAN: the session fails. */
void proto_srv_fail(struct proto_srv *s);
/* Feeds one frame; *a says what to do. Never fails silently. */
void proto_srv_input(struct proto_srv *s, const struct proto_frame *f,
		     struct proto_act *a);
/* After a WELCOME to a HELLO that joins a session the caller holds: the
 * engine takes plan (checked when it was accepted) and is PLANNED as an
 * extra stream. */
void proto_srv_join(struct proto_srv *s, const struct proto_plan *plan);
/* Wipes the expected proof. */
void proto_srv_end(struct proto_srv *s);

#endif
