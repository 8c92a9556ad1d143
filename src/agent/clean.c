/*
 * clean.c - `ferry clean`: force a destination out of migration mode.
 * The session in progress is aborted; with --wipe the disks it was
 * writing get their first and last MiB blanked (they read as empty, not
 * as a broken copy); then the destination hands off.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "common/common.h"

static const char clean_usage[] =
	"usage: ferry clean --to HOST[:PORT] [--token T | --token-file F] [--wipe]\n"
	"                   [--handoff reboot|kexec|poweroff|shell] [--wait SECONDS]\n"
	"\n"
	"Aborts the migration in progress on the destination and leaves migration\n"
	"mode (default hand-off: reboot). --wipe blanks the first and last MiB of every\n"
	"disk the failed migration was writing; disks it did not touch are never\n"
	"touched. Without network access, boot the destination with ferry.mode=clean.\n";

int cmd_clean(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 'o' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "wipe", no_argument, NULL, 'W' },
		{ "handoff", required_argument, NULL, 'H' },
		{ "wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const handoffs[] = { "reboot", "kexec", "poweroff", "shell" };
	static struct agent_conn ac;
	static struct proto_report rep;
	struct agent_target t;
	struct proto_inventory inv;
	struct proto_frame f;
	struct wbuf w;
	const char *to = NULL, *tok = NULL, *tokfile = NULL;
	char err[AGENT_ERR_MAX];
	uint8_t handoff = 0, flags = 0;
	uint64_t v;
	uint32_t i;
	int c, r;

	memset(&t, 0, sizeof(t));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': to = optarg; break;
		case 't': tok = optarg; break;
		case 'T': tokfile = optarg; break;
		case 'W': flags |= PROTO_CLEAN_WIPE; break;
		case 'H':
			for (handoff = 0; handoff < 4 && strcmp(optarg, handoffs[handoff]); handoff++)
				;
			if (handoff == 4) {
				fprintf(stderr, "ferry: --handoff %s: want reboot, kexec, poweroff or shell\n",
					optarg);
				return AGENT_EXIT_USAGE;
			}
			break;
		case 'w':
			if (parse_u64(optarg, 86400, &v)) {
				fprintf(stderr, "ferry: --wait %s: want seconds\n", optarg);
				return AGENT_EXIT_USAGE;
			}
			t.wait_s = (int)v;
			break;
		case 'h':
			fputs(clean_usage, stdout);
			return AGENT_EXIT_OK;
		default:
			fputs(clean_usage, stderr);
			return AGENT_EXIT_USAGE;
		}
	}
	if (optind != argc || agent_parse_to(to, &t, err, sizeof(err)) ||
	    agent_load_token(tok, tokfile, &t.token, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", optind != argc ? "clean: unexpected argument" : err);
		return AGENT_EXIT_USAGE;
	}
	t.busy_s = 30;
	r = agent_connect(&t, &ac, &inv, err, sizeof(err));
	mem_wipe(&t.token, sizeof(t.token));
	if (r) {
		fprintf(stderr, "ferry: error: %s\n", err);
		return AGENT_EXIT_FAIL;
	}
	wbuf_init(&w, ac.txbuf, sizeof(ac.txbuf));
	proto_enc_clean(&w, flags, handoff);
	if (agent_send(&ac, &w) || (r = agent_recv(&ac, &f, 600000)) != 1) {
		fprintf(stderr, "ferry: error: %s: no answer to CLEAN\n", t.text);
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
		fprintf(stderr, "ferry: error: unexpected %s after CLEAN\n", proto_type_name(f.type));
		tls_close(ac.tls, 1000);
		return AGENT_EXIT_FAIL;
	}
	for (i = 0; i < rep.n; i++)
		printf("  %s  %s\n", rep.line[i].level == PROTO_PASS ? "PASS" :
			 rep.line[i].level == PROTO_WARN ? "WARN" : "FAIL", rep.line[i].text);
	printf("%s: left migration mode (hand-off %s)\n", t.text, handoffs[handoff]);
	tls_close(ac.tls, 2000);
	return rep.verdict == PROTO_FAIL ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}
