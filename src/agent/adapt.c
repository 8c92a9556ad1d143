/*
 * adapt.c - `ferry adapt`: a destination in migration mode whose disks
 * already hold a migrated system (migrated before, or copied by other
 * means) adapts it to its machine: virtio/NVMe drivers in the
 * initramfs, device names, network configuration, bootloader. The agent
 * only asks and prints the report; everything happens on the
 * destination. Also the --adapt[=MODE] value of ferry migrate.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/opts.h"
#include "common/common.h"

int agent_parse_adapt(const char *arg, uint8_t *flags)
{
	return proto_adapt_parse(arg ? arg : "", flags) ? -1 : 0;
}

int cmd_adapt(int argc, char **argv)
{
	static struct agent_conn ac;
	static struct proto_report rep;
	static struct agent_opts o;
	struct agent_target t;
	struct proto_inventory inv;
	struct proto_frame f;
	struct wbuf w;
	char err[AGENT_ERR_MAX], js[600];
	uint8_t flags = PROTO_ADAPT_ON;
	uint32_t i;
	int r, json;

	if ((r = agent_opts_parse(AGENT_CMD_ADAPT, argc, argv, &o)))
		return r > 0 ? AGENT_EXIT_OK : AGENT_EXIT_USAGE;
	json = o.json;
	flags |= (o.dry_run ? PROTO_ADAPT_DRY : 0) | (o.force ? PROTO_ADAPT_FORCE : 0) |
		 (o.keep_ip ? PROTO_ADAPT_KEEP_IP : 0) | (o.adapt_ip.prefix ? PROTO_ADAPT_IP : 0);
	memset(&t, 0, sizeof(t));
	t.wait_s = (int)o.wait;
	if (agent_parse_to(o.to, &t, err, sizeof(err)) ||
	    agent_load_token(o.token, o.token_file, &t.token, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	t.busy_s = 30;
	r = agent_connect(&t, &ac, &inv, err, sizeof(err));
	mem_wipe(&t.token, sizeof(t.token));
	if (r) {
		fprintf(stderr, "ferry: error: %s\n", err);
		return AGENT_EXIT_FAIL;
	}
	if (!json)
		printf("%s: adapting the migrated system on %u disk(s)%s; this takes minutes\n",
		       t.text, inv.ndisks, flags & PROTO_ADAPT_DRY ? " (dry run)" : "");
	fflush(stdout);
	wbuf_init(&w, ac.txbuf, sizeof(ac.txbuf));
	proto_enc_adapt(&w, flags, o.handoff, &o.adapt_ip);
	/* An initramfs under an emulated CPU takes minutes per kernel. */
	if (agent_send(&ac, &w) || (r = agent_recv(&ac, &f, 60 * 60 * 1000)) != 1) {
		fprintf(stderr, "ferry: error: %s: no answer to ADAPT\n", t.text);
		tls_close(ac.tls, 1000);
		return AGENT_EXIT_FAIL;
	}
	if (f.type == PROTO_ERROR) {
		agent_error_frame(&f, err, sizeof(err));
		fprintf(stderr, "ferry: error: %s\n", err);
		tls_close(ac.tls, 1000);
		return AGENT_EXIT_FAIL;
	}
	if (proto_dec_finished(&f, &rep)) {
		fprintf(stderr, "ferry: error: unexpected %s after ADAPT\n", proto_type_name(f.type));
		tls_close(ac.tls, 1000);
		return AGENT_EXIT_FAIL;
	}
	for (i = 0; i < rep.n; i++) {
		const char *lv = rep.line[i].level == PROTO_PASS ? "pass" :
				 rep.line[i].level == PROTO_WARN ? "warn" : "fail";

		if (json)
			printf("{\"event\":\"report\",\"level\":\"%s\",\"text\":%s}\n", lv,
			       json_str(rep.line[i].text, js, sizeof(js)));
		else
			printf("  %s  %s\n", rep.line[i].level == PROTO_PASS ? "PASS" :
					     rep.line[i].level == PROTO_WARN ? "WARN" : "FAIL",
			       rep.line[i].text);
	}
	if (json)
		printf("{\"event\":\"summary\",\"command\":\"adapt\",\"verdict\":\"%s\"}\n",
		       rep.verdict == PROTO_PASS ? "pass" : rep.verdict == PROTO_WARN ? "warn" : "fail");
	else
		printf("%s: %s\n", t.text,
		       rep.verdict == PROTO_FAIL ? "the migrated system may not boot here (FAIL above); "
						   "the destination stays in migration mode"
		       : flags & PROTO_ADAPT_DRY ? "dry run: nothing changed"
						 : "adapted; the destination hands off");
	tls_close(ac.tls, 2000);
	return rep.verdict == PROTO_FAIL ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}
