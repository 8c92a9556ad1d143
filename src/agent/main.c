/*
 * main.c - `ferry`, the source agent: one static binary to copy onto the
 * server being migrated. This file only dispatches commands.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "common/common.h"

static const char usage_text[] =
	"usage: ferry COMMAND [OPTIONS]\n"
	"\n"
	"commands:\n"
	"  migrate  copy this machine's disks (or image files) into a destination\n"
	"  clean    abort a failed migration on a destination (--wipe blanks its disks)\n"
	"  adapt    make a migrated system boot on its destination (drivers, fstab,\n"
	"           network, bootloader)\n"
	"  import   send disk images (raw, qcow2, VHD, VMDK) instead of live disks\n"
	"  sync     one incremental pass: send only what changed since the last pass\n"
	"  check    check this server (and a destination) before a migration\n"
	"  status   show a destination's version, state and disks\n"
	"  token    print a fresh pairing token (for ferry.token= on the destination)\n"
	"  version  print the version\n"
	"\n"
	"The destination runs the ferry live environment; it shows its addresses\n"
	"and its token on its console. The token is given with --token, --token-file\n"
	"or the FERRY_TOKEN environment variable.\n"
	"\n"
	"exit status: 0 ok, 1 failed, 2 usage, 3 a check failed\n"
	"Run 'ferry COMMAND --help' for a command's options.\n";

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("ferry", LOG_LVL_INFO);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return AGENT_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	if (!strcmp(argv[1], "clean"))
		return cmd_clean(argc - 1, argv + 1);
	if (!strcmp(argv[1], "adapt"))
		return cmd_adapt(argc - 1, argv + 1);
	if (!strcmp(argv[1], "import"))
		return cmd_import(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sync"))
		return cmd_sync(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "token"))
		return cmd_token(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("ferry %s\n", FERRY_VERSION);
		return AGENT_EXIT_OK;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return AGENT_EXIT_OK;
	}
	fprintf(stderr, "ferry: unknown command '%s'\n\n%s", argv[1], usage_text);
	return AGENT_EXIT_USAGE;
}
