/*
 * opts.h - the agent's command-line options: one table for every command
 * that takes options, each option declared once (its name, argument,
 * help and the commands that accept it), one parser that fills struct
 * agent_opts, and each command's --help printed from the same table.
 */
#ifndef FERRY_OPTS_H
#define FERRY_OPTS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "proto/proto.h"

enum agent_cmd {
	AGENT_CMD_MIGRATE,
	AGENT_CMD_SYNC,
	AGENT_CMD_IMPORT,
	AGENT_CMD_CHECK,
	AGENT_CMD_CLEAN,
	AGENT_CMD_STATUS,
	AGENT_CMD_ADAPT,
	AGENT_CMD_N
};

/* What the options said; numbers in the units the option takes (--chunk
 * in KiB, --flush-every in MiB), checked against the option's range. */
struct agent_opts {
	const char *to, *proxy, *listen, *token, *token_file, *format;
	const char *disks[PROTO_MAX_DISKS];	/* --disk, in order */
	size_t ndisks;
	int json, checksum, grow, restart, freeze, ignore_check, inspect, wipe, no_track, skip_bad;
	int dry_run, force, keep_ip;		/* ferry adapt */
	uint8_t handoff;			/* PROTO handoff: reboot = 0 */
	uint8_t adapt;				/* --adapt: PROTO_ADAPT_* (0 = off) */
	struct proto_adapt_ip adapt_ip;		/* --adapt-ip (prefix 0 = none) */
	double bw_rate;				/* --bwlimit, bytes/s (0 = off) */
	char state_dir[300];
	uint64_t wait, watch, chunk_kib, flush_mib, zlevel, streams, retries, sync_interval,
		freeze_timeout, progress_s;
	int argi;				/* the first operand in argv */
};

/* Parses argv (argv[0] is the command's name) for cmd: defaults first,
 * then every option; --log-file and --log-level take effect at once.
 * 0: go on (operands from argv[o->argi], only ferry import has any);
 * 1: --help was printed, exit 0; -EINVAL: the error and, for an unknown
 * option, the usage went to stderr: exit 2. */
int agent_opts_parse(enum agent_cmd cmd, int argc, char **argv, struct agent_opts *o);
/* cmd's --help, as printed by agent_opts_parse. */
void agent_opts_usage(enum agent_cmd cmd, FILE *out);
/* "reboot", "kexec", "poweroff", "shell". */
const char *agent_handoff_name(uint8_t handoff);

#endif
