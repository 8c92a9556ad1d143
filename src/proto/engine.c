/*
 * engine.c - the destination's session state machine. It sees frames,
 * never sockets or disks, and answers each with one action. Nothing is
 * allowed before a HELLO with the right proof; the first failure ends
 * the session (sticky).
 */
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "proto/proto.h"

void proto_srv_init(struct proto_srv *s, const uint8_t *expect_proof,
		    const struct proto_inventory *inv)
{
	memset(s, 0, sizeof(*s));
	s->state = PROTO_SRV_HELLO;
	s->inv = inv;
	memcpy(s->expect_proof, expect_proof, PROTO_PROOF_LEN);
}

void proto_srv_fail(struct proto_srv *s)
{
	s->state = PROTO_SRV_FAILED;
}

void proto_srv_join(struct proto_srv *s, const struct proto_plan *plan)
{
	if (s->state != PROTO_SRV_READY)
		return;
	s->plan = *plan;
	s->joined = 1;
	s->state = PROTO_SRV_PLANNED;
}

void proto_srv_end(struct proto_srv *s)
{
	mem_wipe(s->expect_proof, sizeof(s->expect_proof));
	s->state = PROTO_SRV_DONE;
}

static void act_fail(struct proto_srv *s, struct proto_act *a, uint16_t code,
		     const char *text)
{
	a->kind = PROTO_ACT_FAIL;
	a->code = code;
	snprintf(a->text, sizeof(a->text), "%s", text);
	s->state = PROTO_SRV_FAILED;
}

static void on_hello(struct proto_srv *s, const struct proto_frame *f,
		     struct proto_act *a)
{
	if (proto_dec_hello(f, &a->hello)) {
		act_fail(s, a, PROTO_E_MALFORMED, "malformed HELLO");
		return;
	}
	if (mem_neq_ct(a->hello.proof, s->expect_proof, PROTO_PROOF_LEN)) {
		act_fail(s, a, PROTO_E_AUTH,
			 "authentication failed: the agent did not prove the token");
		return;
	}
	if (a->hello.ver_min > PROTO_VERSION || a->hello.ver_max < PROTO_VERSION) {
		char t[PROTO_TEXT_MAX];

		snprintf(t, sizeof(t),
			 "protocol version mismatch: agent speaks %u..%u, destination %u",
			 a->hello.ver_min, a->hello.ver_max, PROTO_VERSION);
		act_fail(s, a, PROTO_E_VERSION, t);
		return;
	}
	s->version = PROTO_VERSION;
	s->state = PROTO_SRV_READY;
	a->kind = PROTO_ACT_WELCOME;
}

/* Checks a PLAN against the destination's disks before anything opens. */
static void on_plan(struct proto_srv *s, const struct proto_frame *f,
		    struct proto_act *a)
{
	struct proto_plan *p = &s->plan;
	char t[PROTO_TEXT_MAX], hs[32], hd[32];
	uint32_t i, j, k;

	if (proto_dec_plan(f, p)) {
		act_fail(s, a, PROTO_E_MALFORMED, "malformed PLAN");
		return;
	}
	for (i = 0; i < p->ndisks; i++) {
		struct proto_plan_disk *d = &p->disks[i];
		const struct proto_disk *x = NULL;

		for (k = 0; s->inv && k < s->inv->ndisks; k++)
			if (!strcmp(s->inv->disks[k].name, d->dst))
				x = &s->inv->disks[k];
		if (!x) {
			size_t o;

			o = (size_t)snprintf(t, sizeof(t),
					     "destination disk %s does not exist; this destination has:",
					     d->dst);
			for (k = 0; s->inv && k < s->inv->ndisks && o < sizeof(t); k++)
				o += (size_t)snprintf(t + o, sizeof(t) - o, " %s (%s)",
						      s->inv->disks[k].name,
						      fmt_bytes(s->inv->disks[k].size, hd, sizeof(hd)));
			act_fail(s, a, PROTO_E_STATE, t);
			return;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(p->disks[j].dst, d->dst)) {
				snprintf(t, sizeof(t),
					 "destination disk %s is named twice (for %s and %s)",
					 d->dst, p->disks[j].src, d->src);
				act_fail(s, a, PROTO_E_STATE, t);
				return;
			}
		if (x->flags & PROTO_DISK_RO) {
			snprintf(t, sizeof(t), "destination disk %s is read-only", d->dst);
			act_fail(s, a, PROTO_E_STATE, t);
			return;
		}
		if (d->lsec != x->lsec) {
			snprintf(t, sizeof(t),
				 "sector sizes differ: %s has %u-byte sectors, %s has %u; "
				 "partition tables would not fit",
				 d->src, d->lsec, d->dst, x->lsec);
			act_fail(s, a, PROTO_E_STATE, t);
			return;
		}
		if (d->src_size > x->size) {
			snprintf(t, sizeof(t),
				 "the storage space of the target device is too small: "
				 "%s is %s (%llu bytes), the source %s needs %s (%llu bytes)",
				 d->dst, fmt_bytes(x->size, hd, sizeof(hd)),
				 (unsigned long long)x->size, d->src,
				 fmt_bytes(d->src_size, hs, sizeof(hs)),
				 (unsigned long long)d->src_size);
			act_fail(s, a, PROTO_E_TOOSMALL, t);
			return;
		}
		d->dst_index = (uint32_t)(x - s->inv->disks);
		d->dst_size = x->size;
	}
	s->state = PROTO_SRV_PLANNED;
	a->kind = PROTO_ACT_PLAN;
}

/* offset + len inside the planned source size, without overflow. */
static int range_ok(const struct proto_plan_disk *d, uint64_t off, uint64_t len)
{
	return off <= d->src_size && len <= d->src_size - off && off % d->lsec == 0 &&
	       len % d->lsec == 0;
}

static void on_planned(struct proto_srv *s, const struct proto_frame *f,
		       struct proto_act *a)
{
	char t[PROTO_TEXT_MAX];

	switch (f->type) {
	case PROTO_DATA:
		if (proto_dec_data(f, &a->data)) {
			act_fail(s, a, PROTO_E_MALFORMED, "malformed DATA");
			return;
		}
		if (a->data.disk >= s->plan.ndisks ||
		    !range_ok(&s->plan.disks[a->data.disk], a->data.off, a->data.len)) {
			snprintf(t, sizeof(t),
				 "DATA outside the plan: disk %u, offset %llu, length %u",
				 a->data.disk, (unsigned long long)a->data.off, a->data.len);
			act_fail(s, a, PROTO_E_STATE, t);
			return;
		}
		a->kind = PROTO_ACT_WRITE;
		return;
	case PROTO_FLUSH:
		if (proto_dec_flush(f, &a->flush)) {
			act_fail(s, a, PROTO_E_MALFORMED, "malformed FLUSH");
			return;
		}
		/* Every range inside a planned disk. */
		for (uint32_t i = 0; i < a->flush.n; i++) {
			const struct proto_range *r = &a->flush.r[i];

			if (r->disk >= s->plan.ndisks || r->end > s->plan.disks[r->disk].src_size) {
				snprintf(t, sizeof(t), "FLUSH range outside the plan: disk %u, "
					 "bytes %llu to %llu", r->disk, (unsigned long long)r->off,
					 (unsigned long long)r->end);
				act_fail(s, a, PROTO_E_STATE, t);
				return;
			}
		}
		a->kind = PROTO_ACT_FLUSH;
		return;
	case PROTO_HASH_REQ:
		if (proto_dec_hash_req(f, &a->hreq)) {
			act_fail(s, a, PROTO_E_MALFORMED, "malformed HASHES?");
			return;
		}
		if (a->hreq.disk >= s->plan.ndisks ||
		    !range_ok(&s->plan.disks[a->hreq.disk], a->hreq.off, a->hreq.len)) {
			snprintf(t, sizeof(t),
				 "HASHES? outside the plan: disk %u, offset %llu, length %llu",
				 a->hreq.disk, (unsigned long long)a->hreq.off,
				 (unsigned long long)a->hreq.len);
			act_fail(s, a, PROTO_E_STATE, t);
			return;
		}
		a->kind = PROTO_ACT_HASH;
		return;
	case PROTO_FINISH:
		if (s->joined)
			break;
		if (proto_dec_finish(f, &a->fin) ||
		    (a->fin.nzeroed && (a->fin.zfirst.disk >= s->plan.ndisks ||
					a->fin.zfirst.end >
						s->plan.disks[a->fin.zfirst.disk].src_size))) {
			act_fail(s, a, PROTO_E_MALFORMED, "malformed FINISH");
			return;
		}
		a->flags = a->fin.flags;
		a->handoff = a->fin.handoff;
		s->state = PROTO_SRV_FINISHING;
		a->kind = PROTO_ACT_FINISH;
		return;
	}
	snprintf(t, sizeof(t), "unexpected %s during a migration", proto_type_name(f->type));
	act_fail(s, a, PROTO_E_STATE, t);
}

void proto_srv_input(struct proto_srv *s, const struct proto_frame *f,
		     struct proto_act *a)
{
	char t[PROTO_TEXT_MAX];

	memset(a, 0, sizeof(*a));
	switch (s->state) {
	case PROTO_SRV_DONE:
	case PROTO_SRV_FAILED:
		a->kind = PROTO_ACT_NONE;
		return;
	case PROTO_SRV_HELLO:
		if (f->type == PROTO_HELLO) {
			on_hello(s, f, a);
			return;
		}
		snprintf(t, sizeof(t),
			 "authentication required: got %s before HELLO",
			 proto_type_name(f->type));
		act_fail(s, a, PROTO_E_AUTH, t);
		return;
	case PROTO_SRV_READY:
	case PROTO_SRV_PLANNED:
	case PROTO_SRV_FINISHING:
		break;
	}
	switch (f->type) {
	case PROTO_STATUS_REQ:
		if (f->len) {
			act_fail(s, a, PROTO_E_MALFORMED, "STATUS? with a body");
			return;
		}
		a->kind = PROTO_ACT_STATUS;
		return;
	case PROTO_BYE:
		a->kind = PROTO_ACT_BYE;
		s->state = PROTO_SRV_DONE;
		return;
	case PROTO_ERROR:
		/* The agent gave up; end quietly, it already knows why. */
		a->kind = PROTO_ACT_BYE;
		s->state = PROTO_SRV_DONE;
		return;
	case PROTO_PLAN:
		if (s->state == PROTO_SRV_READY) {
			on_plan(s, f, a);
			return;
		}
		break;
	case PROTO_CLEAN:
		if (!s->joined && (s->state == PROTO_SRV_READY || s->state == PROTO_SRV_PLANNED)) {
			if (proto_dec_clean(f, &a->flags, &a->handoff)) {
				act_fail(s, a, PROTO_E_MALFORMED, "malformed CLEAN");
				return;
			}
			s->state = PROTO_SRV_FINISHING;
			a->kind = PROTO_ACT_CLEAN;
			return;
		}
		break;
	case PROTO_ADAPT:
		/* A migrated system on the disks, outside any migration. */
		if (!s->joined && s->state == PROTO_SRV_READY) {
			if (proto_dec_adapt(f, &a->flags, &a->handoff, &a->ip)) {
				act_fail(s, a, PROTO_E_MALFORMED, "malformed ADAPT");
				return;
			}
			s->state = PROTO_SRV_FINISHING;
			a->kind = PROTO_ACT_ADAPT;
			return;
		}
		break;
	default:
		if (s->state == PROTO_SRV_PLANNED) {
			on_planned(s, f, a);
			return;
		}
	}
	snprintf(t, sizeof(t), "unexpected %s in this state", proto_type_name(f->type));
	act_fail(s, a, PROTO_E_STATE, t);
}
