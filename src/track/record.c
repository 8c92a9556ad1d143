/*
 * record.c - reads what the kernel's tracing hands out: the text of an
 * event's tracefs "format" file and of "events/header_page", and the
 * binary pages of trace_pipe_raw (a page header, then ring-buffer events:
 * a 4-byte header of type_len:5 and time_delta:27, then the record). It
 * is the only file that knows that layout. The bytes come from the
 * kernel, but they are still read through a bounded cursor and any
 * inconsistency is reported, never trusted. No I/O, no allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "track/track.h"

#define FORMAT_MAX 65536      /* a format file is a few hundred bytes */
#define PAGE_MAX   (1u << 20) /* tracefs sub-buffers are at most 1 MiB */

/* Ring-buffer event types (include/linux/ring_buffer.h). */
#define RB_PADDING     29
#define RB_TIME_EXTEND 30
#define RB_TIME_STAMP  31
/* Flags in the page's commit word (kernel/trace/ring_buffer.c). */
#define RB_MISSED_EVENTS (1ull << 31)
#define RB_MISSED_STORED (1ull << 30)

static int errf(char *err, size_t errcap, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
static int errf(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* One "field:" line: its name (array brackets dropped), offset, size. */
struct field {
	char name[48];
	unsigned long off, size;
	int has_off, has_size;
};

/* The unsigned decimal after key within [p, e), or -1. */
static int num_after(const char *p, const char *e, const char *key, unsigned long *v)
{
	size_t k = strlen(key);
	const char *q;

	for (q = p; q + k <= e; q++) {
		if (memcmp(q, key, k))
			continue;
		q += k;
		if (q >= e || *q < '0' || *q > '9')
			return -1;
		for (*v = 0; q < e && *q >= '0' && *q <= '9'; q++) {
			if (*v > 1000000)
				return -1;
			*v = *v * 10 + (unsigned long)(*q - '0');
		}
		return 0;
	}
	return -1;
}

/* Parses the line [p, e) if it is a field line; 1 parsed, 0 not one. */
static int parse_field(const char *p, const char *e, struct field *f)
{
	const char *d, *semi, *n;
	size_t len;

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (e - p < 6 || memcmp(p, "field:", 6))
		return 0;
	d = p + 6;
	for (semi = d; semi < e && *semi != ';'; semi++)
		;
	if (semi >= e)
		return 0;
	/* The name is the declaration's last word: "char rwbs[10]" -> rwbs. */
	for (n = semi; n > d && n[-1] != ' ' && n[-1] != '\t'; n--)
		;
	len = (size_t)(semi - n);
	for (size_t i = 0; i < len; i++)
		if (n[i] == '[') {
			len = i;
			break;
		}
	if (len == 0 || len >= sizeof(f->name))
		return 0;
	memcpy(f->name, n, len);
	f->name[len] = 0;
	f->has_off = num_after(semi, e, "offset:", &f->off) == 0;
	f->has_size = num_after(semi, e, "size:", &f->size) == 0;
	return 1;
}

/* Calls each line of text through fn until it returns nonzero. */
static int for_lines(const char *text, size_t len, int (*fn)(void *, const char *, const char *),
		     void *ctx)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		int r;

		if (!e)
			e = end;
		if ((r = fn(ctx, p, e)))
			return r;
		p = e + 1;
	}
	return 0;
}

struct evparse {
	struct track_evfmt *f;
	int have_id, have_type;
	int seen; /* bit per wanted field */
	const char *bad;
	char *err;
	size_t errcap;
};

static int ev_line(void *ctx, const char *p, const char *e)
{
	struct evparse *x = ctx;
	struct field fl;
	unsigned long v;

	if (e - p >= 3 && !memcmp(p, "ID:", 3)) {
		if (num_after(p, e, "ID: ", &v) || v == 0 || v > 65535)
			return errf(x->err, x->errcap, "ID line '%.*s'",
				    (int)(e - p < 40 ? e - p : 40), p);
		x->f->id = (uint16_t)v;
		x->have_id = 1;
		return 0;
	}
	if (!parse_field(p, e, &fl))
		return 0;
	if (!fl.has_off || !fl.has_size || fl.off > 4096 || fl.size > 4096 || fl.size == 0)
		return errf(x->err, x->errcap, "field %s: no usable offset and size", fl.name);
	static const struct {
		const char *name;
		unsigned long size; /* 0: any of at least 2 */
		int bit;
	} want[] = {{"common_type", 2, 0},
		    {"dev", 4, 1},
		    {"sector", 8, 2},
		    {"nr_sector", 4, 3},
		    {"rwbs", 0, 4}};
	for (size_t i = 0; i < FERRY_ARRAY_LEN(want); i++) {
		if (strcmp(fl.name, want[i].name))
			continue;
		if (want[i].size ? fl.size != want[i].size : fl.size < 2)
			return errf(x->err, x->errcap, "field %s is %lu bytes, want %lu", fl.name,
				    fl.size, want[i].size ? want[i].size : 2ul);
		switch (want[i].bit) {
		case 0:
			if (fl.off != 0)
				return errf(x->err, x->errcap, "common_type at offset %lu, want 0",
					    fl.off);
			break;
		case 1: x->f->dev_off = (uint16_t)fl.off; break;
		case 2: x->f->sector_off = (uint16_t)fl.off; break;
		case 3: x->f->nr_off = (uint16_t)fl.off; break;
		case 4:
			x->f->rwbs_off = (uint16_t)fl.off;
			x->f->rwbs_len = (uint16_t)fl.size;
			break;
		}
		if (fl.off + fl.size > x->f->min_len)
			x->f->min_len = (uint16_t)(fl.off + fl.size);
		x->seen |= 1 << want[i].bit;
	}
	return 0;
}

int track_parse_format(const char *text, size_t len, struct track_evfmt *f, char *err,
		       size_t errcap)
{
	struct evparse x = {.f = f, .err = err, .errcap = errcap};
	int r;

	memset(f, 0, sizeof(*f));
	err[0] = 0;
	if (len > FORMAT_MAX)
		return errf(err, errcap, "format of %zu bytes", len);
	if ((r = for_lines(text, len, ev_line, &x)))
		return r;
	if (!x.have_id)
		return errf(err, errcap, "no ID line");
	if (x.seen != 0x1f)
		return errf(err, errcap, "missing field%s%s%s%s%s",
			    x.seen & 1 ? "" : " common_type", x.seen & 2 ? "" : " dev",
			    x.seen & 4 ? "" : " sector", x.seen & 8 ? "" : " nr_sector",
			    x.seen & 16 ? "" : " rwbs");
	return 0;
}

struct hdrparse {
	struct track_pagefmt *p;
	int seen;
	unsigned long data_size;
};

static int hdr_line(void *ctx, const char *p, const char *e)
{
	struct hdrparse *x = ctx;
	struct field fl;

	if (!parse_field(p, e, &fl) || !fl.has_off || !fl.has_size)
		return 0;
	if (!strcmp(fl.name, "commit") && (fl.size == 4 || fl.size == 8) && fl.off <= 64) {
		x->p->commit_off = (uint16_t)fl.off;
		x->p->commit_len = (uint16_t)fl.size;
		x->seen |= 1;
	} else if (!strcmp(fl.name, "data") && fl.off <= 64) {
		x->p->data_off = (uint16_t)fl.off;
		x->data_size = fl.size;
		x->seen |= 2;
	}
	return 0;
}

int track_parse_header_page(const char *text, size_t len, struct track_pagefmt *p, char *err,
			    size_t errcap)
{
	struct hdrparse x = {.p = p};

	memset(p, 0, sizeof(*p));
	err[0] = 0;
	if (len > FORMAT_MAX)
		return errf(err, errcap, "header_page of %zu bytes", len);
	for_lines(text, len, hdr_line, &x);
	if (x.seen != 3)
		return errf(err, errcap, "header_page without %s", x.seen & 1 ? "data" : "commit");
	if (p->commit_off + p->commit_len > p->data_off || x.data_size < 64 ||
	    x.data_size + p->data_off > PAGE_MAX)
		return errf(err, errcap,
			    "header_page: commit at %u (%u bytes), data at %u (%lu "
			    "bytes) do not fit a page",
			    p->commit_off, p->commit_len, p->data_off, x.data_size);
	p->page_size = (uint32_t)(p->data_off + x.data_size);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* One record of a known event into io; 0, or -1 when it is not ours. */
static int decode(const struct track_evfmt *evs, size_t nev, const uint8_t *rec, size_t len,
		  struct track_io *io)
{
	uint16_t type;
	size_t i, k;

	if (len < 2)
		return -1;
	memcpy(&type, rec, 2);
	for (i = 0; i < nev; i++) {
		const struct track_evfmt *f = &evs[i];
		const char *rwbs;

		if (f->id != type || len < f->min_len)
			continue;
		memcpy(&io->dev, rec + f->dev_off, 4);
		memcpy(&io->sector, rec + f->sector_off, 8);
		memcpy(&io->nr, rec + f->nr_off, 4);
		/* rwbs: an optional 'F' (preflush) before the operation's
		 * letter, then flag letters (F for FUA, A, S, M...). */
		rwbs = (const char *)rec + f->rwbs_off;
		k = 0;
		if (f->rwbs_len > 1 && rwbs[0] == 'F' && strchr("WDFRN", rwbs[1]) && rwbs[1])
			k = 1;
		io->op = rwbs[k] ? rwbs[k] : '?';
		return 0;
	}
	return -1;
}

int track_parse_page(const struct track_pagefmt *pf, const struct track_evfmt *evs, size_t nev,
		     const uint8_t *page, size_t len,
		     void (*fn)(void *ctx, const struct track_io *io), void *ctx, int *missed)
{
	struct cur c;
	const uint8_t *hdr, *data;
	uint64_t commit = 0;
	size_t dlen;

	*missed = 0;
	if (len < pf->data_off || pf->commit_off + pf->commit_len > pf->data_off)
		return -EBADMSG;
	if (pf->commit_len == 8) {
		memcpy(&commit, page + pf->commit_off, 8);
	} else {
		uint32_t c32;

		memcpy(&c32, page + pf->commit_off, 4);
		commit = c32;
	}
	if (commit & (RB_MISSED_EVENTS | RB_MISSED_STORED))
		*missed = 1;
	dlen = (size_t)(commit & 0x3fffffffull);
	if (dlen > len - pf->data_off || dlen > pf->page_size - pf->data_off)
		return -EBADMSG;
	cur_init(&c, page + pf->data_off, dlen);
	while (cur_left(&c) >= 4) {
		uint32_t h, tl, delta, n;
		struct track_io io;

		if (cur_ref(&c, &hdr, 4))
			return -EBADMSG;
		h = rd32(hdr);
		tl = h & 31;
		delta = h >> 5;
		switch (tl) {
		case RB_PADDING:
			/* Without a time delta: the rest of the page is empty. */
			if (delta == 0)
				return 0;
			/* A discarded event (e.g. filtered): its length follows. */
			if (cur_ref(&c, &data, 4))
				return -EBADMSG;
			n = rd32(data);
			if (n < 4 || n % 4 || cur_ref(&c, &data, n - 4))
				return -EBADMSG;
			continue;
		case RB_TIME_EXTEND:
		case RB_TIME_STAMP:
			if (cur_ref(&c, &data, 4))
				return -EBADMSG;
			continue;
		case 0:
			/* A long event: the length (itself included) comes first. */
			if (cur_ref(&c, &data, 4))
				return -EBADMSG;
			n = rd32(data);
			if (n < 4 || n % 4 || cur_ref(&c, &data, n - 4))
				return -EBADMSG;
			n -= 4;
			break;
		default:
			n = tl * 4;
			if (cur_ref(&c, &data, n))
				return -EBADMSG;
			break;
		}
		if (decode(evs, nev, data, n, &io) == 0)
			fn(ctx, &io);
	}
	return cur_left(&c) ? -EBADMSG : 0;
}
