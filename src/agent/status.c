/*
 * status.c - `ferry status` and `ferry token`: what the destination is,
 * what disks it has, and a fresh pairing token.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/opts.h"
#include "common/common.h"

static void print_text(const char *to, const struct proto_inventory *inv)
{
	char sz[32], mem[32];
	uint32_t i;

	printf("destination  %s  (%s, protocol %u, host %s)\n", to, inv->server,
	       inv->version, inv->host[0] ? inv->host : "-");
	printf("state        %s\n", inv->state);
	printf("memory       %s\n", fmt_bytes(inv->mem_total, mem, sizeof(mem)));
	printf("disks        %u\n", inv->ndisks);
	for (i = 0; i < inv->ndisks; i++) {
		const struct proto_disk *d = &inv->disks[i];

		printf("  %-8s %10s  %llu bytes  sector %u/%u%s%s%s%s%s%s\n", d->name,
		       fmt_bytes(d->size, sz, sizeof(sz)), (unsigned long long)d->size,
		       d->lsec, d->psec, d->model[0] ? "  model " : "", d->model,
		       d->serial[0] ? "  serial " : "", d->serial,
		       (d->flags & PROTO_DISK_RO) ? "  read-only" : "",
		       (d->flags & PROTO_DISK_REMOVABLE) ? "  removable" : "");
	}
	fflush(stdout);
}

static void print_json(const char *to, const struct proto_inventory *inv)
{
	char a[160], b[160], c[160], d2[160];
	uint32_t i;

	printf("{\"event\":\"status\",\"to\":%s,\"version\":%s,\"protocol\":%u,\"state\":%s,"
	       "\"host\":%s,\"memory\":%llu,\"disks\":[",
	       json_str(to, a, sizeof(a)), json_str(inv->server, b, sizeof(b)),
	       inv->version, json_str(inv->state, c, sizeof(c)),
	       json_str(inv->host, d2, sizeof(d2)), (unsigned long long)inv->mem_total);
	for (i = 0; i < inv->ndisks; i++) {
		const struct proto_disk *d = &inv->disks[i];

		printf("%s{\"name\":%s,\"size\":%llu,\"logical_sector\":%u,\"physical_sector\":%u,"
		       "\"model\":%s,\"serial\":%s,\"readonly\":%s,\"removable\":%s}",
		       i ? "," : "", json_str(d->name, a, sizeof(a)),
		       (unsigned long long)d->size, d->lsec, d->psec,
		       json_str(d->model, b, sizeof(b)),
		       json_str(d->serial, c, sizeof(c)),
		       (d->flags & PROTO_DISK_RO) ? "true" : "false",
		       (d->flags & PROTO_DISK_REMOVABLE) ? "true" : "false");
	}
	printf("]}\n");
	fflush(stdout);
}

static void print_error(int json, const char *err)
{
	char e[AGENT_ERR_MAX + 64];

	if (json)
		printf("{\"event\":\"error\",\"message\":%s}\n", json_str(err, e, sizeof(e)));
	fprintf(stderr, "ferry: error: %s\n", err);
}

int cmd_status(int argc, char **argv)
{
	static struct agent_conn ac;
	struct agent_opts o;
	struct agent_target t;
	struct proto_inventory inv;
	char err[AGENT_ERR_MAX];
	uint64_t watch;
	int json, r;

	if ((r = agent_opts_parse(AGENT_CMD_STATUS, argc, argv, &o)))
		return r > 0 ? AGENT_EXIT_OK : AGENT_EXIT_USAGE;
	memset(&t, 0, sizeof(t));
	t.wait_s = (int)o.wait;
	json = o.json;
	watch = o.watch;
	if (agent_parse_target(o.to, o.listen, o.proxy, &t, err, sizeof(err)) ||
	    agent_load_token(o.token, o.token_file, &t.token, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	r = agent_connect(&t, &ac, &inv, err, sizeof(err));
	mem_wipe(&t.token, sizeof(t.token));
	if (r) {
		print_error(json, err);
		return AGENT_EXIT_FAIL;
	}
	json ? print_json(ac.peer, &inv) : print_text(ac.peer, &inv);
	while (watch-- > 0) {
		sleep(1);
		if ((r = agent_status(&ac, &inv, err, sizeof(err)))) {
			print_error(json, err);
			tls_close(ac.tls, 1000);
			return AGENT_EXIT_FAIL;
		}
		json ? print_json(ac.peer, &inv) : print_text(ac.peer, &inv);
	}
	agent_bye(&ac);
	return AGENT_EXIT_OK;
}

int cmd_token(int argc, char **argv)
{
	struct tls_token t;
	char buf[TLS_TOKEN_TEXT_MAX];
	int r;

	if (argc > 1) {
		fprintf(stderr, "usage: ferry token\n");
		return AGENT_EXIT_USAGE;
	}
	(void)argv;
	if ((r = tls_token_generate(&t))) {
		fprintf(stderr, "ferry: error: generating a token: %s\n", strerror(-r));
		return AGENT_EXIT_FAIL;
	}
	tls_token_format(&t, buf, sizeof(buf));
	printf("%s\n", buf);
	mem_wipe(&t, sizeof(t));
	mem_wipe(buf, sizeof(buf));
	return AGENT_EXIT_OK;
}
