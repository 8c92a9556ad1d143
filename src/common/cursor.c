/*
 * cursor.c - bounded big-endian readers and writers, and little-endian
 * readers for on-disk formats. Every byte that arrives from the network,
 * a file or the kernel is read through these; the first error is sticky
 * so a parser checks once at the end.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"

void cur_init(struct cur *c, const void *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->off = 0;
	c->err = 0;
}

size_t cur_left(const struct cur *c)
{
	return c->err ? 0 : c->len - c->off;
}

static const uint8_t *cur_take(struct cur *c, size_t n)
{
	const uint8_t *p;

	if (c->err)
		return NULL;
	if (n > c->len - c->off) {
		c->err = -EBADMSG;
		return NULL;
	}
	p = c->p + c->off;
	c->off += n;
	return p;
}

int cur_u8(struct cur *c, uint8_t *v)
{
	const uint8_t *p = cur_take(c, 1);

	*v = p ? p[0] : 0;
	return c->err;
}

int cur_u16(struct cur *c, uint16_t *v)
{
	const uint8_t *p = cur_take(c, 2);

	*v = p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
	return c->err;
}

int cur_u32(struct cur *c, uint32_t *v)
{
	const uint8_t *p = cur_take(c, 4);

	*v = p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			 (uint32_t)p[2] << 8 | p[3]
	       : 0;
	return c->err;
}

int cur_u64(struct cur *c, uint64_t *v)
{
	uint32_t hi, lo;

	cur_u32(c, &hi);
	cur_u32(c, &lo);
	*v = c->err ? 0 : (uint64_t)hi << 32 | lo;
	return c->err;
}

int cur_le16(struct cur *c, uint16_t *v)
{
	const uint8_t *p = cur_take(c, 2);

	*v = p ? (uint16_t)(p[0] | p[1] << 8) : 0;
	return c->err;
}

int cur_le32(struct cur *c, uint32_t *v)
{
	const uint8_t *p = cur_take(c, 4);

	*v = p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24
	       : 0;
	return c->err;
}

int cur_le64(struct cur *c, uint64_t *v)
{
	uint32_t lo, hi;

	cur_le32(c, &lo);
	cur_le32(c, &hi);
	*v = c->err ? 0 : (uint64_t)hi << 32 | lo;
	return c->err;
}

int cur_skip(struct cur *c, size_t n)
{
	(void)cur_take(c, n);
	return c->err;
}

int cur_seek(struct cur *c, size_t off)
{
	if (!c->err && off > c->len)
		c->err = -EBADMSG;
	if (!c->err)
		c->off = off;
	return c->err;
}

int cur_bytes(struct cur *c, void *dst, size_t n)
{
	const uint8_t *p = cur_take(c, n);

	if (p)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
	return c->err;
}

int cur_ref(struct cur *c, const uint8_t **p, size_t n)
{
	*p = cur_take(c, n);
	return c->err;
}

int cur_str(struct cur *c, char *dst, size_t cap)
{
	uint16_t n;
	const uint8_t *p;
	size_t i;

	dst[0] = 0;
	if (cur_u16(c, &n))
		return c->err;
	if ((size_t)n >= cap) {
		c->err = -EMSGSIZE;
		return c->err;
	}
	if (!(p = cur_take(c, n)))
		return c->err;
	for (i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f) {
			c->err = -EBADMSG;
			return c->err;
		}
	}
	memcpy(dst, p, n);
	dst[n] = 0;
	return 0;
}

void wbuf_init(struct wbuf *w, void *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->len = 0;
	w->err = 0;
}

static uint8_t *wbuf_take(struct wbuf *w, size_t n)
{
	uint8_t *p;

	if (w->err)
		return NULL;
	if (n > w->cap - w->len) {
		w->err = -ENOSPC;
		return NULL;
	}
	p = w->p + w->len;
	w->len += n;
	return p;
}

void wbuf_u8(struct wbuf *w, uint8_t v)
{
	uint8_t *p = wbuf_take(w, 1);

	if (p)
		p[0] = v;
}

void wbuf_u16(struct wbuf *w, uint16_t v)
{
	uint8_t *p = wbuf_take(w, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

void wbuf_u32(struct wbuf *w, uint32_t v)
{
	uint8_t *p = wbuf_take(w, 4);

	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

void wbuf_u64(struct wbuf *w, uint64_t v)
{
	wbuf_u32(w, (uint32_t)(v >> 32));
	wbuf_u32(w, (uint32_t)v);
}

void wbuf_bytes(struct wbuf *w, const void *src, size_t n)
{
	uint8_t *p = wbuf_take(w, n);

	if (p && n)
		memcpy(p, src, n);
}

void wbuf_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);

	if (n > 0xffff) {
		if (!w->err)
			w->err = -EOVERFLOW;
		return;
	}
	wbuf_u16(w, (uint16_t)n);
	wbuf_bytes(w, s, n);
}
