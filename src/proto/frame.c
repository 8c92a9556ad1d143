/*
 * frame.c - the frame layer: a caller-owned receive buffer that yields
 * whole frames once their header has been checked, and the frame header
 * writer. Never allocates; never trusts a length before bounding it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"

const char *proto_type_name(uint8_t type)
{
	switch (type) {
	case PROTO_HELLO: return "HELLO";
	case PROTO_WELCOME: return "WELCOME";
	case PROTO_ERROR: return "ERROR";
	case PROTO_BYE: return "BYE";
	case PROTO_STATUS_REQ: return "STATUS?";
	case PROTO_STATUS: return "STATUS";
	case PROTO_PLAN: return "PLAN";
	case PROTO_PLAN_OK: return "PLAN_OK";
	case PROTO_DATA: return "DATA";
	case PROTO_FLUSH: return "FLUSH";
	case PROTO_FLUSHED: return "FLUSHED";
	case PROTO_HASH_REQ: return "HASHES?";
	case PROTO_HASHES: return "HASHES";
	case PROTO_FINISH: return "FINISH";
	case PROTO_FINISHED: return "FINISHED";
	case PROTO_CLEAN: return "CLEAN";
	case PROTO_ADAPT: return "ADAPT";
	}
	return "unknown";
}

const char *proto_err_name(uint16_t code)
{
	switch (code) {
	case PROTO_E_AUTH: return "authentication failed";
	case PROTO_E_BUSY: return "busy";
	case PROTO_E_VERSION: return "protocol version mismatch";
	case PROTO_E_MALFORMED: return "malformed message";
	case PROTO_E_STATE: return "unexpected message";
	case PROTO_E_TOOSMALL: return "the storage space of the target device is too small";
	case PROTO_E_IO: return "I/O error on the destination";
	case PROTO_E_INTERNAL: return "internal error";
	}
	return "unknown error";
}

/* Largest payload each type may carry; -1 means the type is unknown. */
static int64_t frame_max_len(uint8_t type)
{
	switch (type) {
	case PROTO_BYE:
	case PROTO_STATUS_REQ:
		return 0;
	case PROTO_HELLO:
	case PROTO_WELCOME:
	case PROTO_ERROR:
	case PROTO_STATUS:
	case PROTO_PLAN:
	case PROTO_PLAN_OK:
	case PROTO_FINISHED:
		return PROTO_CTRL_MAX;
	case PROTO_FLUSH:	/* seq, count, ranges of 18 bytes */
		return 10 + PROTO_FLUSH_RANGES * 18;
	case PROTO_FLUSHED:
		return 16;
	case PROTO_HASH_REQ:
		return 22;
	case PROTO_FINISH:	/* flags, hand-off, zeroed bytes, ranges, the first, */
		return 2 + 8 + 4 + 18 + 13;	/* a static IPv4 setup */
	case PROTO_CLEAN:
		return 2;
	case PROTO_ADAPT:	/* flags, hand-off, a static IPv4 setup */
		return 2 + 13;
	case PROTO_HASHES:
		return 18 + PROTO_HASH_MAX * PROTO_HASH_LEN;
	case PROTO_DATA:
		return PROTO_DATA_HDR + PROTO_DATA_MAX;
	}
	return -1;
}

void proto_rx_init(struct proto_rx *rx, void *buf, size_t cap)
{
	rx->buf = buf;
	rx->cap = cap;
	rx->len = 0;
	rx->done = 0;
	rx->err = 0;
	rx->why[0] = 0;
}

/*
 * Frames are parsed where they lie; the unparsed tail is moved to the
 * front only when it is small or the space behind it runs out, so a
 * stream of 1 MiB DATA frames is not copied a second time.
 */
static void rx_compact(struct proto_rx *rx, int force)
{
	size_t tail = rx->len - rx->done;

	if (rx->done == 0)
		return;
	if (!force && tail > 65536 && rx->cap - rx->len >= 65536)
		return;
	memmove(rx->buf, rx->buf + rx->done, tail);
	rx->len = tail;
	rx->done = 0;
}

uint8_t *proto_rx_space(struct proto_rx *rx, size_t *avail)
{
	rx_compact(rx, 0);
	*avail = rx->cap - rx->len;
	return rx->buf + rx->len;
}

void proto_rx_commit(struct proto_rx *rx, size_t n)
{
	if (n > rx->cap - rx->len)
		n = rx->cap - rx->len;
	rx->len += n;
}

size_t proto_rx_push(struct proto_rx *rx, const void *p, size_t len)
{
	size_t avail;
	uint8_t *dst = proto_rx_space(rx, &avail);

	if (len > avail)
		len = avail;
	memcpy(dst, p, len);
	rx->len += len;
	return len;
}

static int rx_fail(struct proto_rx *rx, int err, const char *why)
{
	rx->err = err;
	snprintf(rx->why, sizeof(rx->why), "%s", why);
	return err;
}

int proto_rx_next(struct proto_rx *rx, struct proto_frame *f)
{
	const uint8_t *h;
	uint32_t len;
	int64_t max;
	size_t held;

	if (rx->err)
		return rx->err;
	held = rx->len - rx->done;
	if (held < PROTO_HDR_LEN) {
		rx_compact(rx, 0);
		return 0;
	}
	h = rx->buf + rx->done;
	len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	max = frame_max_len(h[0]);
	if (max < 0) {
		char why[64];

		snprintf(why, sizeof(why), "unknown frame type 0x%02x", h[0]);
		return rx_fail(rx, -EBADMSG, why);
	}
	if (h[2] || h[3])
		return rx_fail(rx, -EBADMSG, "reserved header bits set");
	if ((int64_t)len > max || len > rx->cap - PROTO_HDR_LEN) {
		char why[96];

		snprintf(why, sizeof(why), "%s frame of %u bytes exceeds the limit",
			 proto_type_name(h[0]), len);
		return rx_fail(rx, -EMSGSIZE, why);
	}
	if (held - PROTO_HDR_LEN < len) {
		/* The rest of this frame must fit behind it. */
		if (rx->cap - rx->done < PROTO_HDR_LEN + (size_t)len)
			rx_compact(rx, 1);
		return 0;
	}
	f->type = h[0];
	f->flags = h[1];
	f->len = len;
	f->payload = h + PROTO_HDR_LEN;
	rx->done += PROTO_HDR_LEN + len;
	return 1;
}

void proto_frame_begin(struct wbuf *w, uint8_t type, size_t *hdr_at)
{
	*hdr_at = w->len;
	wbuf_u8(w, type);
	wbuf_u8(w, 0);
	wbuf_u16(w, 0);
	wbuf_u32(w, 0); /* patched by proto_frame_end */
}

int proto_frame_end(struct wbuf *w, size_t hdr_at)
{
	size_t len;
	uint8_t *p;

	if (w->err)
		return w->err;
	len = w->len - hdr_at - PROTO_HDR_LEN;
	if (len > 0xffffffffu) {
		w->err = -EOVERFLOW;
		return w->err;
	}
	p = w->p + hdr_at + 4;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	return 0;
}
