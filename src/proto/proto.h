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

#define PROTO_VERSION 1
#define PROTO_HDR_LEN 8
#define PROTO_CTRL_MAX (64u * 1024)	       /* any control message */
#define PROTO_DATA_MAX (1024u * 1024)	       /* largest DATA payload */
#define PROTO_FRAME_MAX (PROTO_HDR_LEN + PROTO_DATA_MAX + 64)

#define PROTO_PROOF_LEN 32
#define PROTO_MAX_DISKS 32
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
	size_t len;	/* bytes held */
	size_t done;	/* bytes of the last frame handed out */
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

/* ---- the destination's session engine ----------------------------------- */

enum proto_srv_state {
	PROTO_SRV_HELLO,	/* waiting for HELLO */
	PROTO_SRV_READY,	/* authenticated */
	PROTO_SRV_DONE,		/* BYE seen or sent */
	PROTO_SRV_FAILED,	/* ERROR sent; the session must end */
};

enum proto_act_kind {
	PROTO_ACT_NONE,
	PROTO_ACT_WELCOME,	/* send WELCOME with the inventory */
	PROTO_ACT_STATUS,	/* send STATUS with the inventory */
	PROTO_ACT_BYE,		/* answer BYE and end the session */
	PROTO_ACT_FAIL,		/* send ERROR(code, text) and end */
};

struct proto_act {
	enum proto_act_kind kind;
	uint16_t code;
	char text[PROTO_TEXT_MAX];
	struct proto_hello hello; /* with WELCOME: who connected */
};

struct proto_srv {
	enum proto_srv_state state;
	uint8_t expect_proof[PROTO_PROOF_LEN];
	uint16_t version;
};

/* expect_proof is what an agent holding the token must send. */
void proto_srv_init(struct proto_srv *s, const uint8_t *expect_proof);
/* Feeds one frame; *a says what to do. Never fails silently. */
void proto_srv_input(struct proto_srv *s, const struct proto_frame *f,
		     struct proto_act *a);
/* Wipes the expected proof. */
void proto_srv_end(struct proto_srv *s);

#endif
