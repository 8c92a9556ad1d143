/*
 * test_opts.c - the agent's option table (agent/opts.c, compiled into
 * this file): every command's --help lists exactly the options it
 * accepts and the parser accepts exactly those; values land in the right
 * fields in the option's unit; bad values and operands are refused; the
 * defaults are the documented ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/opts.c"
#include "tests/tap.h"

static char logpath[64];

/* A value each option takes; flags take none. */
static const char *good_arg(const char *name)
{
	static const struct {
		const char *name, *arg;
	} a[] = {
		{ "to", "10.0.0.5" }, { "token", "x" }, { "token-file", "f" },
		{ "proxy", "http://p:3128" }, { "listen", ":4443" }, { "wait", "5" },
		{ "disk", "/dev/sda=vdb" }, { "handoff", "shell" }, { "watch", "2" },
		{ "log-file", logpath }, { "log-level", "2" }, { "chunk", "128" },
		{ "flush-every", "32" }, { "bwlimit", "50M" }, { "compress", "3" },
		{ "streams", "2" }, { "sync-interval", "30m" }, { "freeze-timeout", "9" },
		{ "state-dir", "/tmp/s" }, { "retries", "3" }, { "format", "qcow2" },
		{ "progress-interval", "2" },
		{ "adapt-ip", "192.0.2.10/24,gw=192.0.2.1" },
	};
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(a); i++)
		if (!strcmp(a[i].name, name))
			return a[i].arg;
	return NULL;
}

/* Parses the words of argv (NULL-terminated) for cmd. */
static int parse(enum agent_cmd cmd, struct agent_opts *o, const char *const *words)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)cmds[cmd].name;
	while (*words && argc < 31)
		argv[argc++] = (char *)*words++;
	argv[argc] = NULL;
	return agent_opts_parse(cmd, argc, argv, o);
}

static void test_table_and_help(void)
{
	static struct agent_opts o;
	int cmd, r, saved, devnull = open("/dev/null", O_WRONLY);
	size_t i;

	for (cmd = 0; cmd < AGENT_CMD_N; cmd++) {
		char *help = NULL, flag[48];
		size_t len = 0, bad = 0, missing = 0, wrong = 0;
		FILE *f = open_memstream(&help, &len);

		agent_opts_usage((enum agent_cmd)cmd, f);
		fclose(f);
		for (i = 0; i < FERRY_ARRAY_LEN(opts); i++) {
			int accepts = !!(opts[i].cmds & (1u << cmd));
			const char *arg = good_arg(opts[i].name);
			/* "[=MODE]": an optional argument, given with '=' or not at all */
			int opt_arg = opts[i].arg && !strncmp(opts[i].arg, "[=", 2);
			const char *words[3] = { flag, opts[i].arg && !opt_arg ? arg : NULL, NULL };

			if (opts[i].arg && !opt_arg && !arg) {
				printf("# no test value for --%s\n", opts[i].name);
				bad++;
				continue;
			}
			/* "  --name" then its argument or the padding, or the end of
			 * the line when the name is too long for the column. */
			snprintf(flag, sizeof(flag), "  --%s ", opts[i].name);
			int shown = strstr(help, flag) != NULL;

			snprintf(flag, sizeof(flag), "  --%s\n", opts[i].name);
			shown |= strstr(help, flag) != NULL;
			snprintf(flag, sizeof(flag), "  --%s[=", opts[i].name);
			shown |= strstr(help, flag) != NULL;
			if (accepts != shown) {
				printf("# %s --help %s --%s\n", cmds[cmd].name,
				       accepts ? "lacks" : "shows", opts[i].name);
				missing++;
			}
			snprintf(flag, sizeof(flag), "--%s", opts[i].name);
			r = parse((enum agent_cmd)cmd, &o, words);
			if (accepts ? r != 0 : r != -EINVAL) {
				printf("# %s %s: %d\n", cmds[cmd].name, flag, r);
				wrong++;
			}
		}
		ok(!bad && !missing, "%s --help lists exactly the options it accepts",
		   cmds[cmd].name);
		ok(!wrong, "%s accepts exactly its options", cmds[cmd].name);
		ok(strstr(help, "usage: ferry ") == help && strstr(help, "exit status: "),
		   "%s --help: usage first, exit status last", cmds[cmd].name);
		free(help);
		/* --help prints to stdout: not into the TAP stream. */
		fflush(stdout);
		saved = dup(1);
		dup2(devnull, 1);
		r = parse((enum agent_cmd)cmd, &o, (const char *[]){ "--help", NULL });
		fflush(stdout);
		dup2(saved, 1);
		close(saved);
		is_int(r, 1, "--help: exit 0");
	}
	close(devnull);
}

static void test_values(void)
{
	static struct agent_opts o;
	const char *w[] = { "--to", "h:1", "--chunk", "128", "--flush-every", "32",
			    "--bwlimit", "200Mbit", "--sync-interval", "2h", "--handoff",
			    "poweroff", "--disk", "a", "--disk", "b=vdc", "--checksum", NULL };

	is_int(parse(AGENT_CMD_MIGRATE, &o, w), 0, "migrate: a full command line parses");
	ok(!strcmp(o.to, "h:1") && o.chunk_kib == 128 && o.flush_mib == 32 &&
	   o.bw_rate == 25e6 && o.sync_interval == 7200 && o.handoff == 2 && o.checksum &&
	   !o.grow && o.ndisks == 2 && !strcmp(o.disks[1], "b=vdc"),
	   "values land in their fields, in the option's unit");
	ok(!strcmp(agent_handoff_name(o.handoff), "poweroff"), "handoff name");
	is_int(parse(AGENT_CMD_IMPORT, &o, (const char *[]){ "--format", "vpc", "x.vhd", NULL }),
	       0, "import: vpc is accepted");
	ok(!strcmp(o.format, "vhd") && o.argi == 3, "... as vhd; the operand follows");
	is_int(parse(AGENT_CMD_CLEAN, &o, (const char *[]){ "--to", "h", "--proxy", "http://p:3128",
							     "--json", NULL }),
	       0, "clean: --proxy and --json");
	ok(o.json && !strcmp(o.proxy, "http://p:3128"), "... land in their fields");
	is_int(parse(AGENT_CMD_CHECK, &o, (const char *[]){ "--to", "h", "--proxy", "", NULL }), 0,
	       "check: --proxy (\"\" = direct)");
	is_int(parse(AGENT_CMD_MIGRATE, &o, (const char *[]){ "--progress-interval", "3", NULL }), 0,
	       "migrate: --progress-interval");
	ok(o.progress_s == 3, "... in seconds");
	is_int(parse(AGENT_CMD_ADAPT, &o,
		     (const char *[]){ "--to", "h", "--force", "--adapt-ip",
				       "192.0.2.10/24,gw=192.0.2.1", "--handoff", "shell", NULL }),
	       0, "adapt: a full command line parses");
	ok(o.force && !o.dry_run && !o.keep_ip && o.handoff == 3 && o.adapt_ip.prefix == 24 &&
	   o.adapt_ip.gw == 0xc0000201, "adapt: --force, --adapt-ip, --handoff land");
	is_int(parse(AGENT_CMD_MIGRATE, &o, (const char *[]){ "--adapt-ip", "10.0.0.5/8", NULL }),
	       0, "migrate: --adapt-ip alone");
	ok(o.adapt == PROTO_ADAPT_ON && o.adapt_ip.addr == 0x0a000005, "... implies --adapt");
	is_int(parse(AGENT_CMD_SYNC, &o, (const char *[]){ NULL }), 0, "sync: no options");
	ok(o.chunk_kib == 64 && o.flush_mib == 256 && o.retries == 8 && o.freeze_timeout == 60 &&
	   o.streams >= 1 && o.streams <= PROTO_STREAMS_MAX && o.handoff == 0 &&
	   !strcmp(o.state_dir, STATE_DIR_DEFAULT) && !o.to && !o.json && o.bw_rate == 0 &&
	   o.progress_s == 0,
	   "defaults: 64 KiB chunks, 256 MiB flushes, 8 retries, 60 s freeze, one stream a core");
}

static void test_refused(void)
{
	static const struct {
		enum agent_cmd cmd;
		const char *w[3];
	} t[] = {
		{ AGENT_CMD_MIGRATE, { "--chunk", "3" } },
		{ AGENT_CMD_MIGRATE, { "--chunk", "2048" } },
		{ AGENT_CMD_MIGRATE, { "--chunk", "96" } },
		{ AGENT_CMD_MIGRATE, { "--streams", "0" } },
		{ AGENT_CMD_MIGRATE, { "--streams", "9" } },
		{ AGENT_CMD_MIGRATE, { "--flush-every", "0" } },
		{ AGENT_CMD_MIGRATE, { "--compress", "20" } },
		{ AGENT_CMD_MIGRATE, { "--log-level", "0" } },
		{ AGENT_CMD_MIGRATE, { "--bwlimit", "1Kbit" } },
		{ AGENT_CMD_MIGRATE, { "--bwlimit", "fast" } },
		{ AGENT_CMD_MIGRATE, { "--sync-interval", "31d" } },
		{ AGENT_CMD_MIGRATE, { "--sync-interval", "0" } },
		{ AGENT_CMD_MIGRATE, { "--retries", "-1" } },
		{ AGENT_CMD_MIGRATE, { "--log-file", "/nonexistent/dir/log" } },
		{ AGENT_CMD_MIGRATE, { "extra" } },
		{ AGENT_CMD_IMPORT, { "--format", "vdi" } },
		{ AGENT_CMD_CLEAN, { "--handoff", "halt" } },
		{ AGENT_CMD_CLEAN, { "--to", "h", } },
		{ AGENT_CMD_STATUS, { "--wait", "86401" } },
		{ AGENT_CMD_STATUS, { "--watch", "x" } },
		{ AGENT_CMD_CHECK, { "--wait", "1" } },
		{ AGENT_CMD_MIGRATE, { "--progress-interval", "0" } },
		{ AGENT_CMD_SYNC, { "--progress-interval", "3601" } },
		{ AGENT_CMD_STATUS, { "--progress-interval", "2" } },
		{ AGENT_CMD_ADAPT, { "--dry-run", "--force" } },
		{ AGENT_CMD_ADAPT, { "--keep-ip", "--adapt-ip=192.0.2.10/24" } },
		{ AGENT_CMD_ADAPT, { "--adapt-ip", "192.0.2.10/33" } },
		{ AGENT_CMD_MIGRATE, { "--adapt=keep-ip", "--adapt-ip=192.0.2.10/24" } },
	};
	static struct agent_opts o;
	char state_dir[400];
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(t); i++) {
		const char *w[4] = { t[i].w[0], t[i].w[1], NULL, NULL };

		/* "--to h" is fine: the operand after it is what is refused. */
		if (t[i].cmd == AGENT_CMD_CLEAN && !strcmp(t[i].w[0], "--to"))
			w[2] = "extra";
		is_int(parse(t[i].cmd, &o, w), -EINVAL, w[1] ? w[1] : w[0]);
	}
	memset(state_dir, 'd', sizeof(state_dir) - 1);
	state_dir[sizeof(state_dir) - 1] = 0;
	is_int(parse(AGENT_CMD_MIGRATE, &o, (const char *[]){ "--state-dir", state_dir, NULL }),
	       -EINVAL, "--state-dir too long");
	{
		char *argv[2 * PROTO_MAX_DISKS + 4];
		int n;

		argv[0] = "check";
		for (n = 0; n < PROTO_MAX_DISKS + 1; n++) {
			argv[1 + 2 * n] = "--disk";
			argv[2 + 2 * n] = "x";
		}
		argv[1 + 2 * n] = NULL;
		is_int(agent_opts_parse(AGENT_CMD_CHECK, 1 + 2 * n, argv, &o), -EINVAL,
		       "33 disks are refused");
	}
}

int main(void)
{
	snprintf(logpath, sizeof(logpath), "/tmp/ferry-test-opts-%d.log", (int)getpid());
	test_table_and_help();
	test_values();
	test_refused();
	unlink(logpath);
	return tap_done();
}
