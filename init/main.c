/*
 * main.c - ferry-init. As PID 1 it runs the boot phases in order, forks
 * the receiver and stays the reaper, restarting a receiver that dies;
 * it never exits. As an ordinary process, `ferry-init serve` runs the
 * same receiver on a host with file-backed disks (tests, benchmarks).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "init.h"
#include "proto/proto.h"

static const char usage_text[] =
	"usage: ferry-init serve --listen [ADDR]:PORT --disk NAME=PATH [--disk ...]\n"
	"                        [--token TOKEN | --token-file FILE] [--once]\n"
	"                        [--connect HOST:PORT (instead of --listen)]\n"
	"                        [--result FILE] [--log-level 1|2|3] [--banner]\n"
	"       ferry-init serve --relay --listen [ADDR]:PORT --allow CIDR:PORTS[,...]\n"
	"                        [--result FILE] [--log-level 1|2|3]\n"
	"       ferry-init --version\n"
	"\n"
	"As PID 1 (the live environment's /init) it reads its settings from the\n"
	"kernel command line: ferry.token, ferry.listen, ferry.connect, ip=,\n"
	"ferry.mode (serve, clean, rescue, adapt, relay), ferry.relay.allow,\n"
	"ferry.adapt, ferry.handoff, ferry.result, ferry.loglevel.\n"
	"\n"
	"serve runs the block receiver as an ordinary process; --once exits after one\n"
	"migration session (status and check sessions do not count). The token comes\n"
	"from --token, --token-file or FERRY_TOKEN; without one a fresh token is\n"
	"generated and printed. PORT 0 picks a free port (printed, and written\n"
	"as 'FERRY READY port=N' to the --result file). --connect is reverse mode,\n"
	"as ferry.connect=: dial the agent (ferry migrate --listen) instead of\n"
	"listening, again after each session; the TLS roles stay the same.\n"
	"\n"
	"--relay is the relay (transit) instance, as ferry.mode=relay: it tunnels the\n"
	"agents' HTTP CONNECTs (ferry --proxy http://RELAY:PORT --to DEST:PORT) to\n"
	"destinations on the --allow list only (10.0.0.0/24:443,[fd00::/64]:7000-7010,\n"
	"10.0.1.5:*), IP addresses only; it holds no token and TLS stays end to end.\n"
	"\n"
	"exit status: 0 ok, 1 failure, 2 usage\n";

static void pid1_receiver(struct serve_config *sc)
{
	unsigned backoff = 1;

	for (;;) {
		pid_t pid = fork();
		int st;
		uint64_t t0 = time_now_ms();

		if (pid == 0) {
			signal(SIGCHLD, SIG_DFL);
			int r = serve_run(sc);

			_exit(r >= SERVE_HANDOFF_BASE ? r : r ? 1 : 0);
		}
		if (pid < 0) {
			log_errno(-errno, "fork");
			sleep(1);
			continue;
		}
		/* PID 1 reaps every orphan; only the receiver matters. */
		for (;;) {
			pid_t p = waitpid(-1, &st, 0);

			if (p == pid)
				break;
			if (p < 0 && errno == ECHILD)
				break;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) >= SERVE_HANDOFF_BASE &&
		    WEXITSTATUS(st) <= SERVE_HANDOFF_BASE + INIT_HANDOFF_SHELL) {
			enum init_handoff h = (enum init_handoff)(WEXITSTATUS(st) - SERVE_HANDOFF_BASE);

			/* The agent's choice wins over ferry.handoff. */
			hand_off(h, sc);
		}
		if (WIFSIGNALED(st))
			log_error("receiver killed by signal %d; restarting", WTERMSIG(st));
		else
			log_error("receiver exited with status %d; restarting",
				  WEXITSTATUS(st));
		result_line("FERRY STATE restarting");
		backoff = time_now_ms() - t0 > 10000 ? 1 : (backoff < 8 ? backoff * 2 : 8);
		sleep(backoff);
	}
}

/* ferry.mode=adapt: the disks here hold a migrated system; adapt it,
 * show the report, hand off when it has no FAIL (and was no dry run),
 * else stay in migration mode. */
static void adapt_mode(const struct init_config *cfg, struct serve_config *sc)
{
	static struct proto_report rep;
	static struct adapt_req q;
	size_t i;

	memset(&q, 0, sizeof(q));
	q.dry = (cfg->adapt & PROTO_ADAPT_DRY) != 0;
	q.force = (cfg->adapt & PROTO_ADAPT_FORCE) != 0;
	q.keep_ip = (cfg->adapt & PROTO_ADAPT_KEEP_IP) != 0;
	if (!q.keep_ip)
		q.ip = cfg->adapt_ip;
	q.live = 1;
	for (i = 0; i < sc->ndisks && i < DISK_MAX; i++) {
		snprintf(q.d[i].name, sizeof(q.d[i].name), "%s", sc->disks[i].name);
		snprintf(q.d[i].path, sizeof(q.d[i].path), "%s", sc->disks[i].path);
	}
	q.n = i;
	result_line("FERRY STATE adapting");
	if (!q.n)
		proto_report_add(&rep, PROTO_FAIL, "adapt: no disks found");
	else if (adapt_run(&q, &rep) < 0)
		proto_report_add(&rep, PROTO_FAIL, "adapt: could not run");
	for (i = 0; i < rep.n; i++) {
		const char *lv = rep.line[i].level == PROTO_PASS ? "PASS" :
				 rep.line[i].level == PROTO_WARN ? "WARN" : "FAIL";

		log_info("%s %s", lv, rep.line[i].text);
		result_line("FERRY ADAPT %s %s", lv, rep.line[i].text);
	}
	result_line("FERRY RESULT adapt verdict=%s",
		    rep.verdict == PROTO_PASS ? "ready" :
		    rep.verdict == PROTO_WARN ? "warnings" : "not-bootable");
	if (rep.verdict != PROTO_FAIL && !q.dry)
		hand_off(cfg->handoff, sc);
	log_info("ferry.mode=adapt: not handing off (%s); staying in migration mode",
		 q.dry ? "a dry run" : "the report has FAIL lines");
}

/* ferry.mode=relay: no disks, no token; the relay restarted if it dies. */
static void pid1_relay(const struct init_config *cfg)
{
	static struct relay_config rc;

	snprintf(rc.listen_host, sizeof(rc.listen_host), "%s", cfg->listen_host);
	rc.listen_port = cfg->listen_port;
	rc.allow = cfg->relay_allow;
	if (!rc.allow.n)
		log_error("ferry.mode=relay without a valid ferry.relay.allow=CIDR:PORT[,...]: "
			  "every destination is refused");
	for (;;) {
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			signal(SIGCHLD, SIG_DFL);
			_exit(relay_run(&rc) ? 1 : 0);
		}
		if (pid < 0) {
			log_errno(-errno, "fork");
			sleep(1);
			continue;
		}
		for (;;) {
			pid_t p = waitpid(-1, &st, 0);

			if (p == pid || (p < 0 && errno == ECHILD))
				break;
		}
		if (WIFSIGNALED(st))
			log_error("relay killed by signal %d; restarting", WTERMSIG(st));
		else
			log_error("relay exited with status %d; restarting", WEXITSTATUS(st));
		result_line("FERRY STATE restarting");
		sleep(2);
	}
}

static void pid1_main(void)
{
	static struct init_config cfg;
	static struct serve_config sc;
	char cmdline[INIT_CMDLINE_MAX + 1], warn[INIT_WARN_MAX], fp[TLS_FP_TEXT_MAX];
	int r, fs_err;
	char *line, *save = NULL;

	fs_err = mount_pseudofs();
	open_console();
	log_init("ferry-init", LOG_LVL_INFO);
	init_config_defaults(&cfg);
	if ((r = file_read_small("/proc/cmdline", cmdline, sizeof(cmdline))) < 0)
		log_errno(r, "reading /proc/cmdline; using defaults");
	else
		init_parse_cmdline(cmdline, &cfg, warn, sizeof(warn));
	mem_wipe(cmdline, sizeof(cmdline));
	log_init("ferry-init", cfg.loglevel);
	log_info("ferry-init %s starting (mode %s, hand-off %s)", FERRY_VERSION,
		 init_mode_name(cfg.mode), init_handoff_name(cfg.handoff));
	if (fs_err)
		log_errno(fs_err, "mounting the pseudo filesystems");
	for (line = strtok_r(warn, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_error("%s", line);
	result_open(cfg.result);
	if (cfg.mode == INIT_MODE_RESCUE)
		rescue_shell("ferry.mode=rescue");
	if ((r = seed_entropy()))
		log_errno(r, "random pool");
	bring_up_network(&cfg);
	if (cfg.mode == INIT_MODE_RELAY)
		pid1_relay(&cfg);
	if ((r = find_disks(sc.disks, DISK_MAX, &sc.ndisks)))
		log_errno(r, "listing disks");
	if (cfg.mode == INIT_MODE_ADAPT)
		adapt_mode(&cfg, &sc);
	if (cfg.mode == INIT_MODE_CLEAN) {
		static struct proto_report rep;
		size_t i;

		/* Locally, for a destination nobody can reach: every disk that
		 * carries the in-progress mark is wiped; others are untouched. */
		clean_disks(&sc, NULL, 1, &rep);
		for (i = 0; i < rep.n; i++)
			log_info("clean: %s", rep.line[i].text);
		result_line("FERRY RESULT clean");
		rescue_shell("ferry.mode=clean done");
	}
	/* cmdline.c checked it; reverse mode wins over ferry.listen. */
	if (cfg.connect[0] && serve_set_connect(&sc, cfg.connect))
		log_error("ferry.connect=%s: want HOST:PORT; listening instead", cfg.connect);
	if (cfg.have_token) {
		sc.token = cfg.token;
	} else {
		if ((r = tls_token_generate(&sc.token)))
			fatal("cannot generate a token: %s", strerror(-r));
		sc.token_generated = 1;
		log_info("no ferry.token on the kernel command line: generated one (see banner)");
	}
	mem_wipe(&cfg.token, sizeof(cfg.token));
	tls_token_fingerprint(&sc.token, fp, sizeof(fp));
	snprintf(sc.listen_host, sizeof(sc.listen_host), "%s", cfg.listen_host);
	sc.listen_port = cfg.listen_port;
	sc.banner = 1;
	sc.live = 1;
	log_info("token fingerprint %s", fp);
	pid1_receiver(&sc);
}

static int load_token_arg(const char *tok, const char *file, struct tls_token *t,
			  int *have)
{
	char buf[256], err[TLS_ERR_TEXT_MAX];
	const char *src = tok;
	int r;

	*have = 0;
	if (file) {
		if ((r = file_read_small(file, buf, sizeof(buf))) < 0) {
			log_errno(r, "--token-file %s", file);
			return r;
		}
		src = buf;
	} else if (!src) {
		src = getenv("FERRY_TOKEN");
	}
	if (!src)
		return 0;
	r = tls_token_parse(src, t, err, sizeof(err));
	mem_wipe(buf, sizeof(buf));
	if (r) {
		log_error("token: %s", err);
		return r;
	}
	*have = 1;
	return 0;
}

static int open_result(const char *result)
{
	int fd;

	if (!result)
		return 0;
	fd = strcmp(result, "-") ? open(result, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
				 : dup(STDOUT_FILENO);
	if (fd < 0) {
		log_errno(-errno, "--result %s", result);
		return -1;
	}
	result_set_fd(fd);
	return 0;
}

/* --listen as given: PORT 0 (pick a free one) is for hosts and tests only. */
static int parse_listen(const char *listen, char *host, size_t cap, uint16_t *port)
{
	char l[NET_ADDR_MAX + 2];
	size_t n = strlen(listen);
	int any = n >= 2 && !strcmp(listen + n - 2, ":0");

	snprintf(l, sizeof(l), "%.*s%s", (int)(any ? n - 1 : n), listen, any ? "1" : "");
	if (n >= NET_ADDR_MAX || net_split_hostport(l, 443, host, cap, port)) {
		fprintf(stderr, "ferry-init: --listen %s: want [ADDR]:PORT\n", listen);
		return -EINVAL;
	}
	if (any)
		*port = 0;
	return 0;
}

static int relay_main(const char *listen, const char *allow, const char *result)
{
	static struct relay_config rc;
	char err[256];

	if (parse_listen(listen, rc.listen_host, sizeof(rc.listen_host), &rc.listen_port))
		return 2;
	if (net_allow_parse(allow, &rc.allow, err, sizeof(err))) {
		fprintf(stderr, "ferry-init: --allow: %s\n", err);
		return 2;
	}
	if (open_result(result))
		return 1;
	return relay_run(&rc) ? 1 : 0;
}

static int serve_main(int argc, char **argv)
{
	static struct serve_config sc;
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "disk", required_argument, NULL, 'd' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "result", required_argument, NULL, 'r' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "once", no_argument, NULL, 'o' },
		{ "banner", no_argument, NULL, 'b' },
		{ "relay", no_argument, NULL, 'R' },
		{ "allow", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = NULL, *tok = NULL, *tokfile = NULL, *result = NULL, *conn = NULL;
	const char *allow = NULL;
	int relay = 0;
	char err[TLS_ERR_TEXT_MAX + 64], tt[TLS_TOKEN_TEXT_MAX];
	uint64_t lvl;
	int c, have, r;

	log_init("ferry-init", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "l:c:d:t:T:r:v:obRA:h", opts, NULL)) != -1) {
		switch (c) {
		case 'R': relay = 1; break;
		case 'A': allow = optarg; break;
		case 'l': listen = optarg; break;
		case 'c': conn = optarg; break;
		case 't': tok = optarg; break;
		case 'T': tokfile = optarg; break;
		case 'r': result = optarg; break;
		case 'o': sc.once = 1; break;
		case 'b': sc.banner = 1; break;
		case 'v':
			if (parse_u64(optarg, 3, &lvl) || lvl < 1) {
				fprintf(stderr, "ferry-init: --log-level %s: want 1, 2 or 3\n", optarg);
				return 2;
			}
			log_init("ferry-init", (int)lvl);
			break;
		case 'd':
			if (sc.ndisks == DISK_MAX) {
				fprintf(stderr, "ferry-init: at most %d disks\n", DISK_MAX);
				return 2;
			}
			if (disk_from_spec(optarg, &sc.disks[sc.ndisks], err, sizeof(err))) {
				fprintf(stderr, "ferry-init: --disk: %s\n", err);
				return 2;
			}
			for (r = 0; r < (int)sc.ndisks; r++)
				if (!strcmp(sc.disks[r].name, sc.disks[sc.ndisks].name)) {
					fprintf(stderr, "ferry-init: --disk: name %s given twice\n",
						sc.disks[r].name);
					return 2;
				}
			sc.ndisks++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind != argc || !listen == !conn) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (relay || allow) {
		if (!relay || !allow || conn || sc.ndisks || tok || tokfile || sc.once) {
			fprintf(stderr, "ferry-init: serve --relay wants --listen and --allow, and no "
					"--disk, --connect, --token or --once (a relay holds no token)\n");
			return 2;
		}
		return relay_main(listen, allow, result);
	}
	if (conn && serve_set_connect(&sc, conn)) {
		fprintf(stderr, "ferry-init: --connect %s: want HOST[:PORT]\n", conn);
		return 2;
	}
	if (listen && parse_listen(listen, sc.listen_host, sizeof(sc.listen_host), &sc.listen_port))
		return 2;
	if (load_token_arg(tok, tokfile, &sc.token, &have))
		return 2;
	if (!have) {
		if ((r = tls_token_generate(&sc.token))) {
			log_errno(r, "generating a token");
			return 1;
		}
		sc.token_generated = 1;
		tls_token_format(&sc.token, tt, sizeof(tt));
		printf("token %s\n", tt);
		fflush(stdout);
		mem_wipe(tt, sizeof(tt));
	}
	if (open_result(result))
		return 1;
	r = serve_run(&sc);
	mem_wipe(&sc.token, sizeof(sc.token));
	if (r >= SERVE_HANDOFF_BASE) {
		log_info("migration finished; hand-off '%s' is for the live environment, "
			 "host mode exits", init_handoff_name((enum init_handoff)(r - SERVE_HANDOFF_BASE)));
		return 0;
	}
	return r ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (getpid() == 1) {
		pid1_main();
		for (;;)
			pause();
	}
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("ferry-init %s\n", FERRY_VERSION);
		return 0;
	}
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	fputs(usage_text, stderr);
	return 2;
}
