/*
 * msg.c - encoders and decoders of the control messages. Decoders read
 * only through a bounded cursor, reject trailing bytes, and cap every
 * count and string at the sizes in proto.h.
 */
#include <errno.h>
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
