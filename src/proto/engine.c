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

void proto_srv_init(struct proto_srv *s, const uint8_t *expect_proof)
{
	memset(s, 0, sizeof(*s));
	s->state = PROTO_SRV_HELLO;
	memcpy(s->expect_proof, expect_proof, PROTO_PROOF_LEN);
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
	default:
		snprintf(t, sizeof(t), "unexpected %s in this state",
			 proto_type_name(f->type));
		act_fail(s, a, PROTO_E_STATE, t);
	}
}
