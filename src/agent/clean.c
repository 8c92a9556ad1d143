/*
 * clean.c - `ferry clean`: force a destination out of migration mode.
 * The session in progress is aborted; with --wipe the disks it was
 * writing get their first and last MiB blanked (they read as empty, not
 * as a broken copy); then the destination hands off. It reports what the
 * destination did, as text or --json events; it never touches a disk
 * itself.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/opts.h"
#include "agent/progress.h"
#include "common/common.h"

/* The error on stderr and, with --json, as an event. */
static int failed(const struct progress *pg, const char *msg)
{
	char e[AGENT_ERR_MAX + 64];

	progress_event(pg, "error", "message", json_str(msg, e, sizeof(e)), NULL);
	fprintf(stderr, "ferry: error: %s\n", msg);
	return AGENT_EXIT_FAIL;
}

static const char *level_name(uint8_t level)
{
	return level == PROTO_PASS ? "pass" : level == PROTO_WARN ? "warn" : "fail";
}

int cmd_clean(int argc, char **argv)
{
	static struct agent_conn ac;
	static struct proto_report rep;
	struct agent_opts o;
	struct agent_target t;
	struct proto_inventory inv;
	struct proto_frame f;
	struct progress pg;
	struct wbuf w;
	char err[AGENT_ERR_MAX], msg[AGENT_ERR_MAX + 64];
	uint32_t i;
	int r;

	if ((r = agent_opts_parse(AGENT_CMD_CLEAN, argc, argv, &o)))
		return r > 0 ? AGENT_EXIT_OK : AGENT_EXIT_USAGE;
	memset(&t, 0, sizeof(t));
	t.wait_s = (int)o.wait;
	/* --proxy, or https_proxy unless no_proxy names the destination: as
	 * migrate reaches it, clean reaches it. */
	if (agent_parse_target(o.to, NULL, o.proxy, &t, err, sizeof(err)) ||
	    agent_load_token(o.token, o.token_file, &t.token, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	progress_init(&pg, o.json, 0);
	t.busy_s = 30;
	r = agent_connect(&t, &ac, &inv, err, sizeof(err));
	mem_wipe(&t.token, sizeof(t.token));
	if (r)
		return failed(&pg, err);
	wbuf_init(&w, ac.txbuf, sizeof(ac.txbuf));
	proto_enc_clean(&w, o.wipe ? PROTO_CLEAN_WIPE : 0, o.handoff);
	if (agent_send(&ac, &w) || (r = agent_recv(&ac, &f, 600000)) != 1) {
		snprintf(msg, sizeof(msg), "%s: no answer to CLEAN", t.text);
		tls_close(ac.tls, 1000);
		return failed(&pg, msg);
	}
	if (f.type == PROTO_ERROR) {
		agent_error_frame(&f, err, sizeof(err));
		tls_close(ac.tls, 1000);
		return failed(&pg, err);
	}
	if (proto_dec_finished(&f, &rep)) {
		snprintf(msg, sizeof(msg), "unexpected %s after CLEAN", proto_type_name(f.type));
		tls_close(ac.tls, 1000);
		return failed(&pg, msg);
	}
	for (i = 0; i < rep.n; i++) {
		char lv[16], tx[600];

		if (!o.json) {
			printf("  %s  %s\n", rep.line[i].level == PROTO_PASS ? "PASS" :
			       rep.line[i].level == PROTO_WARN ? "WARN" : "FAIL", rep.line[i].text);
			continue;
		}
		snprintf(lv, sizeof(lv), "\"%s\"", level_name(rep.line[i].level));
		progress_event(&pg, "report", "level", lv, "text",
			       json_str(rep.line[i].text, tx, sizeof(tx)), NULL);
	}
	if (o.json) {
		char to[200], ho[32], v[16];

		snprintf(ho, sizeof(ho), "\"%s\"", agent_handoff_name(o.handoff));
		snprintf(v, sizeof(v), "\"%s\"", rep.verdict == PROTO_FAIL ? "fail" : "pass");
		progress_event(&pg, "clean", "to", json_str(t.text, to, sizeof(to)), "handoff", ho,
			       "wiped", o.wipe ? "true" : "false", "verdict", v, NULL);
	} else {
		printf("%s: left migration mode (hand-off %s)\n", t.text,
		       agent_handoff_name(o.handoff));
	}
	tls_close(ac.tls, 2000);
	return rep.verdict == PROTO_FAIL ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}
