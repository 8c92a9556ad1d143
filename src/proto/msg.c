/*
 * msg.c - encoders and decoders of the control messages. Decoders read
 * only through a bounded cursor, reject trailing bytes, and cap every
 * count and string at the sizes in proto.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"

/* A decoder must consume the whole payload: trailing bytes are an error. */
static int dec_end(struct cur *c)
{
	if (c->err)
		return -EBADMSG;
	return cur_left(c) ? -EBADMSG : 0;
}

/* disk u16 | off u64 | end u64 */
static void enc_range(struct wbuf *w, const struct proto_range *r)
{
	wbuf_u16(w, (uint16_t)r->disk);
	wbuf_u64(w, r->off);
	wbuf_u64(w, r->end);
}

/* A range that is one: off < end. Which disk it may name is the
 * caller's to check. */
static int dec_range(struct cur *c, struct proto_range *r)
{
	uint16_t d;

	cur_u16(c, &d);
	cur_u64(c, &r->off);
	cur_u64(c, &r->end);
	r->disk = d;
	return c->err || r->off >= r->end ? -EBADMSG : 0;
}

int proto_enc_empty(struct wbuf *w, uint8_t type)
{
	size_t at;

	proto_frame_begin(w, type, &at);
	return proto_frame_end(w, at);
}

int proto_enc_hello(struct wbuf *w, const struct proto_hello *m)
{
	size_t at;

	proto_frame_begin(w, PROTO_HELLO, &at);
	wbuf_u16(w, m->ver_min);
	wbuf_u16(w, m->ver_max);
	wbuf_str(w, m->agent);
	wbuf_str(w, m->host);
	wbuf_bytes(w, m->proof, PROTO_PROOF_LEN);
	if (m->join) {
		wbuf_u64(w, m->join);
		wbuf_u8(w, m->stream);
		wbuf_u8(w, m->streams);
	}
	return proto_frame_end(w, at);
}

int proto_dec_hello(const struct proto_frame *f, struct proto_hello *m)
{
	struct cur c;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_HELLO)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u16(&c, &m->ver_min);
	cur_u16(&c, &m->ver_max);
	cur_str(&c, m->agent, sizeof(m->agent));
	cur_str(&c, m->host, sizeof(m->host));
	cur_bytes(&c, m->proof, PROTO_PROOF_LEN);
	if (!c.err && m->ver_min > m->ver_max)
		return -EBADMSG;
	if (!c.err && cur_left(&c)) {
		cur_u64(&c, &m->join);
		cur_u8(&c, &m->stream);
		cur_u8(&c, &m->streams);
		if (!c.err && (m->join == 0 || m->streams < 2 || m->streams > PROTO_STREAMS_MAX ||
			       m->stream == 0 || m->stream >= m->streams))
			return -EBADMSG;
	}
	return dec_end(&c);
}

int proto_enc_inventory(struct wbuf *w, uint8_t type,
			const struct proto_inventory *m)
{
	size_t at;
	uint32_t i;

	if ((type != PROTO_WELCOME && type != PROTO_STATUS) ||
	    m->ndisks > PROTO_MAX_DISKS)
		return -EINVAL;
	proto_frame_begin(w, type, &at);
	wbuf_u16(w, m->version);
	wbuf_str(w, m->server);
	wbuf_str(w, m->state);
	wbuf_str(w, m->host);
	wbuf_u64(w, m->mem_total);
	wbuf_u16(w, (uint16_t)m->ndisks);
	for (i = 0; i < m->ndisks; i++) {
		const struct proto_disk *d = &m->disks[i];

		wbuf_str(w, d->name);
		wbuf_u64(w, d->size);
		wbuf_u32(w, d->lsec);
		wbuf_u32(w, d->psec);
		wbuf_u8(w, d->flags);
		wbuf_str(w, d->model);
		wbuf_str(w, d->serial);
	}
	if (m->nsess > PROTO_MAX_DISKS)
		return -EINVAL;
	wbuf_u64(w, m->session);
	wbuf_u16(w, (uint16_t)m->nsess);
	for (i = 0; i < m->nsess; i++) {
		wbuf_str(w, m->sess[i].dst);
		wbuf_u64(w, m->sess[i].committed);
	}
	wbuf_u64(w, m->time_unix);
	return proto_frame_end(w, at);
}

static int sector_ok(uint32_t s)
{
	return s >= 512 && s <= 65536 && (s & (s - 1)) == 0;
}

int proto_dec_inventory(const struct proto_frame *f, struct proto_inventory *m)
{
	struct cur c;
	uint16_t n;
	uint32_t i, j;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_WELCOME && f->type != PROTO_STATUS)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u16(&c, &m->version);
	cur_str(&c, m->server, sizeof(m->server));
	cur_str(&c, m->state, sizeof(m->state));
	cur_str(&c, m->host, sizeof(m->host));
	cur_u64(&c, &m->mem_total);
	cur_u16(&c, &n);
	if (c.err || n > PROTO_MAX_DISKS)
		return -EBADMSG;
	m->ndisks = n;
	for (i = 0; i < n; i++) {
		struct proto_disk *d = &m->disks[i];

		cur_str(&c, d->name, sizeof(d->name));
		cur_u64(&c, &d->size);
		cur_u32(&c, &d->lsec);
		cur_u32(&c, &d->psec);
		cur_u8(&c, &d->flags);
		cur_str(&c, d->model, sizeof(d->model));
		cur_str(&c, d->serial, sizeof(d->serial));
		if (c.err)
			return -EBADMSG;
		/* A name is a kernel block device name: no paths, unique. */
		if (!d->name[0] || strchr(d->name, '/') || !sector_ok(d->lsec) ||
		    !sector_ok(d->psec) || d->size % d->lsec)
			return -EBADMSG;
		for (j = 0; j < i; j++)
			if (!strcmp(m->disks[j].name, d->name))
				return -EBADMSG;
	}
	cur_u64(&c, &m->session);
	cur_u16(&c, &n);
	if (c.err || n > PROTO_MAX_DISKS || (m->session == 0 && n))
		return -EBADMSG;
	m->nsess = n;
	for (i = 0; i < n; i++) {
		cur_str(&c, m->sess[i].dst, sizeof(m->sess[i].dst));
		cur_u64(&c, &m->sess[i].committed);
	}
	cur_u64(&c, &m->time_unix);
	return dec_end(&c);
}

int proto_enc_error(struct wbuf *w, uint16_t code, const char *text)
{
	size_t at;
	char t[PROTO_TEXT_MAX];
	size_t i;

	/* Clip and clean so the peer's strict decoder accepts it. */
	snprintf(t, sizeof(t), "%s", text);
	for (i = 0; t[i]; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			t[i] = ' ';
	proto_frame_begin(w, PROTO_ERROR, &at);
	wbuf_u16(w, code);
	wbuf_str(w, t);
	return proto_frame_end(w, at);
}

int proto_dec_error(const struct proto_frame *f, struct proto_error *m)
{
	struct cur c;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_ERROR)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u16(&c, &m->code);
	cur_str(&c, m->text, sizeof(m->text));
	return dec_end(&c);
}

/* ---- migration messages ------------------------------------------------ */

static int pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

int proto_enc_plan(struct wbuf *w, const struct proto_plan *m)
{
	size_t at;
	uint32_t i;

	if (m->ndisks == 0 || m->ndisks > PROTO_MAX_DISKS)
		return -EINVAL;
	proto_frame_begin(w, PROTO_PLAN, &at);
	wbuf_u32(w, m->chunk);
	wbuf_u64(w, m->session);
	wbuf_u64(w, m->seed);
	wbuf_u8(w, m->flags);
	wbuf_u8(w, m->streams);
	wbuf_u16(w, (uint16_t)m->ndisks);
	for (i = 0; i < m->ndisks; i++) {
		const struct proto_plan_disk *d = &m->disks[i];

		wbuf_str(w, d->dst);
		wbuf_str(w, d->src);
		wbuf_u64(w, d->src_size);
		wbuf_u32(w, d->lsec);
		wbuf_u8(w, d->table);
		wbuf_u64(w, d->send_bytes);
	}
	return proto_frame_end(w, at);
}

int proto_dec_plan(const struct proto_frame *f, struct proto_plan *m)
{
	struct cur c;
	uint16_t n;
	uint32_t i;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_PLAN)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u32(&c, &m->chunk);
	cur_u64(&c, &m->session);
	cur_u64(&c, &m->seed);
	cur_u8(&c, &m->flags);
	cur_u8(&c, &m->streams);
	cur_u16(&c, &n);
	if (c.err || n == 0 || n > PROTO_MAX_DISKS || m->streams == 0 ||
	    m->streams > PROTO_STREAMS_MAX)
		return -EBADMSG;
	if (!pow2_in(m->chunk, 4096, PROTO_DATA_MAX) ||
	    (m->flags & ~(PROTO_PLAN_CHECKSUM | PROTO_PLAN_GROW)))
		return -EBADMSG;
	m->ndisks = n;
	for (i = 0; i < n; i++) {
		struct proto_plan_disk *d = &m->disks[i];

		cur_str(&c, d->dst, sizeof(d->dst));
		cur_str(&c, d->src, sizeof(d->src));
		cur_u64(&c, &d->src_size);
		cur_u32(&c, &d->lsec);
		cur_u8(&c, &d->table);
		cur_u64(&c, &d->send_bytes);
		if (c.err)
			return -EBADMSG;
		if (!d->dst[0] || !pow2_in(d->lsec, 512, 65536) || d->src_size == 0 ||
		    d->src_size % d->lsec || d->table > PROTO_TABLE_GPT ||
		    d->send_bytes > d->src_size)
			return -EBADMSG;
	}
	return dec_end(&c);
}

int proto_enc_plan_ok(struct wbuf *w, const struct proto_plan_ok *m)
{
	size_t at;
	uint32_t i;

	if (m->n > PROTO_MAX_DISKS || m->ndone > PROTO_DONE_MAX)
		return -EINVAL;
	proto_frame_begin(w, PROTO_PLAN_OK, &at);
	wbuf_u8(w, m->resumed);
	wbuf_u16(w, (uint16_t)m->n);
	for (i = 0; i < m->n; i++) {
		wbuf_u64(w, m->dst_size[i]);
		wbuf_u64(w, m->committed[i]);
	}
	wbuf_u16(w, (uint16_t)m->ndone);
	for (i = 0; i < m->ndone; i++)
		enc_range(w, &m->done[i]);
	return proto_frame_end(w, at);
}

int proto_dec_plan_ok(const struct proto_frame *f, struct proto_plan_ok *m)
{
	struct cur c;
	uint16_t k;
	uint32_t i;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_PLAN_OK)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u8(&c, &m->resumed);
	cur_u16(&c, &k);
	if (c.err || k > PROTO_MAX_DISKS || m->resumed > 1)
		return -EBADMSG;
	m->n = k;
	for (i = 0; i < k; i++) {
		cur_u64(&c, &m->dst_size[i]);
		cur_u64(&c, &m->committed[i]);
		if (!c.err && m->committed[i] > m->dst_size[i])
			return -EBADMSG;
	}
	cur_u16(&c, &k);
	if (c.err || k > PROTO_DONE_MAX)
		return -EBADMSG;
	m->ndone = k;
	for (i = 0; i < k; i++)
		if (dec_range(&c, &m->done[i]) || m->done[i].disk >= m->n ||
		    m->done[i].end > m->dst_size[m->done[i].disk])
			return -EBADMSG;
	return dec_end(&c);
}

int proto_enc_data_hdr(struct wbuf *w, const struct proto_data *m)
{
	size_t at;
	uint32_t plen = m->enc == PROTO_ENC_RAW ? m->len : m->enc == PROTO_ENC_ZSTD ? m->plen : 0;

	if (m->len == 0 || m->len > PROTO_DATA_MAX || m->enc > PROTO_ENC_ZSTD ||
	    (m->enc == PROTO_ENC_ZSTD && (plen == 0 || plen >= m->len)))
		return -EINVAL;
	proto_frame_begin(w, PROTO_DATA, &at);
	wbuf_u16(w, m->disk);
	wbuf_u8(w, m->enc);
	wbuf_u8(w, 0);
	wbuf_u64(w, m->off);
	wbuf_u32(w, m->len);
	if (proto_frame_end(w, at))
		return w->err;
	/* The length covers the payload the caller sends next. */
	{
		uint8_t *p = w->p + at + 4;
		uint32_t len = PROTO_DATA_HDR + plen;

		p[0] = (uint8_t)(len >> 24);
		p[1] = (uint8_t)(len >> 16);
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
	}
	return 0;
}

int proto_dec_data(const struct proto_frame *f, struct proto_data *m)
{
	struct cur c;
	uint8_t rsv;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_DATA)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u16(&c, &m->disk);
	cur_u8(&c, &m->enc);
	cur_u8(&c, &rsv);
	cur_u64(&c, &m->off);
	cur_u32(&c, &m->len);
	if (c.err || rsv || m->len == 0 || m->len > PROTO_DATA_MAX)
		return -EBADMSG;
	if (m->enc == PROTO_ENC_RAW) {
		if (cur_left(&c) != m->len)
			return -EBADMSG;
		m->plen = m->len;
		cur_ref(&c, &m->payload, m->len);
	} else if (m->enc == PROTO_ENC_ZSTD) {
		/* Compressed only when it shrank: never as large as the data. */
		m->plen = (uint32_t)cur_left(&c);
		if (m->plen == 0 || m->plen >= m->len)
			return -EBADMSG;
		cur_ref(&c, &m->payload, m->plen);
	} else if (m->enc != PROTO_ENC_ZERO) {
		return -EBADMSG;
	}
	return dec_end(&c);
}

int proto_enc_flush(struct wbuf *w, const struct proto_flush *m)
{
	size_t at;
	uint32_t i;

	if (m->n > PROTO_FLUSH_RANGES)
		return -EINVAL;
	proto_frame_begin(w, PROTO_FLUSH, &at);
	wbuf_u64(w, m->seq);
	wbuf_u16(w, (uint16_t)m->n);
	for (i = 0; i < m->n; i++)
		enc_range(w, &m->r[i]);
	return proto_frame_end(w, at);
}

int proto_dec_flush(const struct proto_frame *f, struct proto_flush *m)
{
	struct cur c;
	uint16_t n;
	uint32_t i;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_FLUSH)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u64(&c, &m->seq);
	cur_u16(&c, &n);
	if (c.err || n > PROTO_FLUSH_RANGES)
		return -EBADMSG;
	m->n = n;
	for (i = 0; i < n; i++)
		if (dec_range(&c, &m->r[i]))
			return -EBADMSG;
	return dec_end(&c);
}

int proto_enc_flushed(struct wbuf *w, uint64_t seq, uint64_t written)
{
	size_t at;

	proto_frame_begin(w, PROTO_FLUSHED, &at);
	wbuf_u64(w, seq);
	wbuf_u64(w, written);
	return proto_frame_end(w, at);
}

int proto_dec_flushed(const struct proto_frame *f, uint64_t *seq, uint64_t *written)
{
	struct cur c;

	if (f->type != PROTO_FLUSHED)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u64(&c, seq);
	cur_u64(&c, written);
	return dec_end(&c);
}

int proto_enc_hash_req(struct wbuf *w, const struct proto_hash_req *m)
{
	size_t at;

	proto_frame_begin(w, PROTO_HASH_REQ, &at);
	wbuf_u16(w, m->disk);
	wbuf_u32(w, m->block);
	wbuf_u64(w, m->off);
	wbuf_u64(w, m->len);
	return proto_frame_end(w, at);
}

int proto_dec_hash_req(const struct proto_frame *f, struct proto_hash_req *m)
{
	struct cur c;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_HASH_REQ)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u16(&c, &m->disk);
	cur_u32(&c, &m->block);
	cur_u64(&c, &m->off);
	cur_u64(&c, &m->len);
	if (c.err || !pow2_in(m->block, 512, PROTO_DATA_MAX) || m->len == 0 ||
	    m->len > (uint64_t)m->block * PROTO_HASH_MAX || m->off % 512 || m->len % 512)
		return -EBADMSG;
	return dec_end(&c);
}

int proto_enc_hashes(struct wbuf *w, const struct proto_hash_req *req,
		     const uint8_t *h, uint32_t count)
{
	size_t at;

	if (count > PROTO_HASH_MAX)
		return -EINVAL;
	proto_frame_begin(w, PROTO_HASHES, &at);
	wbuf_u16(w, req->disk);
	wbuf_u32(w, req->block);
	wbuf_u64(w, req->off);
	wbuf_u32(w, count);
	wbuf_bytes(w, h, (size_t)count * PROTO_HASH_LEN);
	return proto_frame_end(w, at);
}

int proto_dec_hashes(const struct proto_frame *f, struct proto_hashes *m)
{
	struct cur c;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_HASHES)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u16(&c, &m->disk);
	cur_u32(&c, &m->block);
	cur_u64(&c, &m->off);
	cur_u32(&c, &m->count);
	if (c.err || m->count > PROTO_HASH_MAX)
		return -EBADMSG;
	cur_ref(&c, &m->hashes, (size_t)m->count * PROTO_HASH_LEN);
	return dec_end(&c);
}

#define ADAPT_FLAGS                                                                         \
	(PROTO_ADAPT_ON | PROTO_ADAPT_DRY | PROTO_ADAPT_FORCE | PROTO_ADAPT_KEEP_IP |      \
	 PROTO_ADAPT_IP)

/* The static IPv4 setup after PROTO_ADAPT_IP: address, prefix, gateway,
 * DNS server. */
static void enc_ip(struct wbuf *w, const struct proto_adapt_ip *ip)
{
	wbuf_u32(w, ip->addr);
	wbuf_u8(w, ip->prefix);
	wbuf_u32(w, ip->gw);
	wbuf_u32(w, ip->dns);
}

static int ip_valid(const struct proto_adapt_ip *ip)
{
	uint32_t mask = ip->prefix >= 1 && ip->prefix <= 32 ?
				(ip->prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> ip->prefix)) :
				0;

	return mask && ip->addr && (!ip->gw || ((ip->gw & mask) == (ip->addr & mask) &&
						ip->gw != ip->addr));
}

/* Reads it when flags ask for it; with KEEP_IP it makes no sense. */
static void dec_ip(struct cur *c, uint8_t flags, struct proto_adapt_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (!(flags & PROTO_ADAPT_IP))
		return;
	cur_u32(c, &ip->addr);
	cur_u8(c, &ip->prefix);
	cur_u32(c, &ip->gw);
	cur_u32(c, &ip->dns);
	if (!c->err &&
	    (!ip_valid(ip) || (flags & PROTO_ADAPT_KEEP_IP) || !(flags & PROTO_ADAPT_ON)))
		c->err = 1;
}

int proto_enc_finish(struct wbuf *w, const struct proto_finish *m)
{
	size_t at;

	proto_frame_begin(w, PROTO_FINISH, &at);
	wbuf_u8(w, m->flags);
	wbuf_u8(w, m->handoff);
	wbuf_u64(w, m->zeroed);
	wbuf_u32(w, m->nzeroed);
	enc_range(w, &m->zfirst);
	if (m->flags & PROTO_ADAPT_IP)
		enc_ip(w, &m->ip);
	return proto_frame_end(w, at);
}

int proto_dec_finish(const struct proto_frame *f, struct proto_finish *m)
{
	struct proto_range *z = &m->zfirst;
	struct cur c;
	uint16_t d;

	memset(m, 0, sizeof(*m));
	if (f->type != PROTO_FINISH)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u8(&c, &m->flags);
	cur_u8(&c, &m->handoff);
	cur_u64(&c, &m->zeroed);
	cur_u32(&c, &m->nzeroed);
	cur_u16(&c, &d);
	cur_u64(&c, &z->off);
	cur_u64(&c, &z->end);
	z->disk = d;
	if (!c.err)
		dec_ip(&c, m->flags, &m->ip);
	if (c.err || (m->flags & ~(PROTO_PLAN_GROW | ADAPT_FLAGS)) || m->handoff > 3)
		return -EBADMSG;
	/* Nothing zeroed is all zeros; otherwise bytes and a real range. */
	if (m->nzeroed ? m->zeroed == 0 || z->off >= z->end :
			 m->zeroed || z->disk || z->off || z->end)
		return -EBADMSG;
	return dec_end(&c);
}

int proto_enc_clean(struct wbuf *w, uint8_t flags, uint8_t handoff)
{
	size_t at;

	proto_frame_begin(w, PROTO_CLEAN, &at);
	wbuf_u8(w, flags);
	wbuf_u8(w, handoff);
	return proto_frame_end(w, at);
}

int proto_dec_clean(const struct proto_frame *f, uint8_t *flags, uint8_t *handoff)
{
	struct cur c;

	if (f->type != PROTO_CLEAN)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u8(&c, flags);
	cur_u8(&c, handoff);
	if (!c.err && ((*flags & ~PROTO_CLEAN_WIPE) || *handoff > 3))
		return -EBADMSG;
	return dec_end(&c);
}

int proto_enc_adapt(struct wbuf *w, uint8_t flags, uint8_t handoff,
		    const struct proto_adapt_ip *ip)
{
	size_t at;

	proto_frame_begin(w, PROTO_ADAPT, &at);
	wbuf_u8(w, flags);
	wbuf_u8(w, handoff);
	if ((flags & PROTO_ADAPT_IP) && ip)
		enc_ip(w, ip);
	return proto_frame_end(w, at);
}

int proto_dec_adapt(const struct proto_frame *f, uint8_t *flags, uint8_t *handoff,
		    struct proto_adapt_ip *ip)
{
	struct cur c;

	if (f->type != PROTO_ADAPT)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u8(&c, flags);
	cur_u8(&c, handoff);
	if (!c.err)
		dec_ip(&c, *flags, ip);
	if (c.err || (*flags & ~ADAPT_FLAGS) || !(*flags & PROTO_ADAPT_ON) || *handoff > 3)
		return -EBADMSG;
	return dec_end(&c);
}

void proto_ipv4_text(uint32_t a, char *out, size_t cap)
{
	if (!a)
		snprintf(out, cap, "%s", "");
	else
		snprintf(out, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			 a & 255);
}

/* A dotted quad, exactly n bytes of s: 0 or -EINVAL. */
static int ipv4_parse(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0, part;
	size_t i = 0;
	int k, digits;

	for (k = 0; k < 4; k++) {
		part = 0;
		digits = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			part = part * 10 + (uint32_t)(s[i++] - '0');
			digits++;
		}
		if (!digits || digits > 3 || part > 255 || (digits > 1 && s[i - digits] == '0'))
			return -EINVAL;
		v = v << 8 | part;
		if (k < 3 && (i >= n || s[i++] != '.'))
			return -EINVAL;
	}
	if (i != n)
		return -EINVAL;
	*out = v;
	return 0;
}

int proto_adapt_ip_parse(const char *s, struct proto_adapt_ip *ip, char *why, size_t cap)
{
	struct proto_adapt_ip t;
	const char *slash, *end;
	size_t n;
	uint32_t p = 0;

	memset(&t, 0, sizeof(t));
	n = strnlen(s, 128);
	if (n == 128) {
		snprintf(why, cap, "too long");
		return -EINVAL;
	}
	end = s + strcspn(s, ",");
	slash = memchr(s, '/', (size_t)(end - s));
	if (!slash || ipv4_parse(s, (size_t)(slash - s), &t.addr) || slash + 1 == end ||
	    end - slash > 3) {
		snprintf(why, cap, "want ADDR/PREFIX first (e.g. 192.0.2.10/24)");
		return -EINVAL;
	}
	for (const char *d = slash + 1; d < end; d++) {
		if (*d < '0' || *d > '9') {
			snprintf(why, cap, "the prefix is not a number");
			return -EINVAL;
		}
		p = p * 10 + (uint32_t)(*d - '0');
	}
	if (p < 1 || p > 32) {
		snprintf(why, cap, "prefix /%u: want 1 to 32", p);
		return -EINVAL;
	}
	t.prefix = (uint8_t)p;
	s = end;
	while (*s == ',') {
		uint32_t *dst;

		s++;
		end = s + strcspn(s, ",");
		if (!strncmp(s, "gw=", 3))
			dst = &t.gw;
		else if (!strncmp(s, "dns=", 4))
			dst = &t.dns;
		else {
			snprintf(why, cap, "'%.*s': want gw=GW or dns=DNS",
				 (int)(end - s > 40 ? 40 : end - s), s);
			return -EINVAL;
		}
		s += dst == &t.gw ? 3 : 4;
		if (*dst || ipv4_parse(s, (size_t)(end - s), dst) || !*dst) {
			snprintf(why, cap, "%s: want one IPv4 address", dst == &t.gw ? "gw" : "dns");
			return -EINVAL;
		}
		s = end;
	}
	if (!ip_valid(&t)) {
		snprintf(why, cap, "%s", t.addr ? "the gateway is not in ADDR/PREFIX (or is ADDR)"
						: "the address 0.0.0.0");
		return -EINVAL;
	}
	*ip = t;
	return 0;
}

int proto_adapt_parse(const char *s, uint8_t *flags)
{
	static const struct {
		const char *word;
		uint8_t flag;
		int mode;
	} words[] = {
		{ "auto", 0, 1 },
		{ "force", PROTO_ADAPT_FORCE, 1 },
		{ "dry-run", PROTO_ADAPT_DRY, 1 },
		{ "keep-ip", PROTO_ADAPT_KEEP_IP, 0 },
	};
	uint8_t f = PROTO_ADAPT_ON;
	int modes = 0;
	size_t i, n;

	while (*s) {
		n = strcspn(s, ",");
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (n == strlen(words[i].word) && !strncmp(s, words[i].word, n))
				break;
		if (i == sizeof(words) / sizeof(words[0]))
			return -EINVAL;
		f |= words[i].flag;
		modes += words[i].mode;
		s += n;
		if (*s == ',' && !*++s)
			return -EINVAL;
	}
	if (modes > 1)
		return -EINVAL;
	*flags = f;
	return 0;
}

void proto_report_add(struct proto_report *r, uint8_t level, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	if (level > r->verdict)
		r->verdict = level;
	if (r->n >= PROTO_REPORT_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(r->line[r->n].text, sizeof(r->line[r->n].text), fmt, ap);
	va_end(ap);
	for (i = 0; r->line[r->n].text[i]; i++)
		if ((unsigned char)r->line[r->n].text[i] < 0x20)
			r->line[r->n].text[i] = ' ';
	r->line[r->n].level = level;
	r->n++;
}

int proto_enc_finished(struct wbuf *w, const struct proto_report *r)
{
	size_t at;
	uint32_t i;

	if (r->n > PROTO_REPORT_MAX)
		return -EINVAL;
	proto_frame_begin(w, PROTO_FINISHED, &at);
	wbuf_u8(w, r->verdict);
	wbuf_u16(w, (uint16_t)r->n);
	for (i = 0; i < r->n; i++) {
		wbuf_u8(w, r->line[i].level);
		wbuf_str(w, r->line[i].text);
	}
	return proto_frame_end(w, at);
}

int proto_dec_finished(const struct proto_frame *f, struct proto_report *r)
{
	struct cur c;
	uint16_t n;
	uint32_t i;

	memset(r, 0, sizeof(*r));
	if (f->type != PROTO_FINISHED)
		return -EBADMSG;
	cur_init(&c, f->payload, f->len);
	cur_u8(&c, &r->verdict);
	cur_u16(&c, &n);
	if (c.err || n > PROTO_REPORT_MAX || r->verdict > PROTO_FAIL)
		return -EBADMSG;
	r->n = n;
	for (i = 0; i < n; i++) {
		cur_u8(&c, &r->line[i].level);
		cur_str(&c, r->line[i].text, sizeof(r->line[i].text));
		if (c.err || r->line[i].level > PROTO_FAIL)
			return -EBADMSG;
	}
	return dec_end(&c);
}
