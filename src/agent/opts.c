/*
 * opts.c - every option of every agent command, declared once: its name,
 * its argument, the commands that accept it, how it is checked and its
 * help. The parser and each command's --help are made from this table,
 * so a command cannot accept an option its help does not list. It only
 * parses and checks words; what an option does is the command's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/opts.h"
#include "agent/state.h"
#include "common/common.h"

#define M (1u << AGENT_CMD_MIGRATE)
#define S (1u << AGENT_CMD_SYNC)
#define I (1u << AGENT_CMD_IMPORT)
#define K (1u << AGENT_CMD_CHECK)
#define C (1u << AGENT_CMD_CLEAN)
#define T (1u << AGENT_CMD_STATUS)
#define A (1u << AGENT_CMD_ADAPT)
#define MSI (M | S | I)

#define HELP_COL 20	/* where an option's help starts in --help */

struct cmd_help {
	const char *name;
	const char *synopsis;	/* after "usage: " */
	const char *about;
	const char *exits;
};

static const struct cmd_help cmds[AGENT_CMD_N] = {
	[AGENT_CMD_MIGRATE] = {
		"migrate",
		"ferry migrate --to HOST[:PORT] [--token T | --token-file F]\n"
		"                     [--disk SRC[=DST]]... [OPTIONS]\n"
		"       ferry migrate --listen [ADDR]:PORT [--token T | --token-file F] ...\n",
		"Copies source disks (block devices or image files) into a destination in\n"
		"migration mode. Only used blocks are sent: ext2/3/4 by their block bitmaps,\n"
		"swap by its header, partition tables outside partitions; anything else\n"
		"whole. All-zero chunks are never sent as data. The checks of ferry check\n"
		"run first. --json prints NDJSON events on stdout (plan, progress, flush,\n"
		"verify, done, error, summary).\n",
		"exit status: 0 migrated, 1 failed, 2 usage, 3 a check failed\n",
	},
	[AGENT_CMD_SYNC] = {
		"sync",
		"ferry sync --to HOST[:PORT] [--token T | --token-file F]\n"
		"                  [--disk SRC[=DST]]... [OPTIONS]\n",
		"One incremental pass with the options of ferry migrate (but not\n"
		"--sync-interval, --freeze or --grow): chunk hashes, then 4 KiB hashes\n"
		"inside the chunks that differ; only what differs is sent; no hand-off.\n",
		"exit status: 0 synced, 1 failed, 2 usage\n",
	},
	[AGENT_CMD_IMPORT] = {
		"import",
		"ferry import IMAGE[=DST]... --to HOST[:PORT] [--token T | --token-file F]\n"
		"                    [--format raw|qcow2|vhd|vmdk] [OPTIONS]\n"
		"       ferry import --inspect IMAGE... [--format F] [--json]\n",
		"Sends disk images (raw, qcow2 v2/v3, VHD fixed/dynamic, VMDK monolithicSparse/\n"
		"streamOptimized) instead of live disks: only their allocated data goes on the\n"
		"wire. The format is detected by its magic and checked against --format; images\n"
		"that reference other files (backing files, external data, extents) are refused.\n"
		"Each --disk DST names the destination of the next IMAGE without =DST.\n",
		"exit status: 0 migrated, 1 failed, 2 usage\n",
	},
	[AGENT_CMD_CHECK] = {
		"check",
		"ferry check [--to HOST[:PORT] [--proxy URL] [--token T | --token-file F]]\n"
		"                   [--disk SRC[=DST]]... [--json]\n",
		"Checks this server before a migration and prints one line per check:\n"
		"PASS, WARN or FAIL, what was found and how to fix it. Checked: running\n"
		"as root, the clock, free memory, SELinux, the source disks (partition\n"
		"table, filesystems, the bytes a migration would send), the virtio\n"
		"drivers of the running kernel (built in or in its initramfs). With --to,\n"
		"also: the destination is reachable, the TLS handshake and the token are\n"
		"valid, its clock is close to this one, and every destination disk is\n"
		"large enough for the source mapped to it (as ferry migrate maps them).\n"
		"--json prints one {\"event\":\"check\"} object per check, then\n"
		"{\"event\":\"check_summary\"}.\n",
		"exit status: 0 no check failed (warnings allowed), 2 usage, 3 a check failed\n",
	},
	[AGENT_CMD_CLEAN] = {
		"clean",
		"ferry clean --to HOST[:PORT] [--proxy URL] [--token T | --token-file F]\n"
		"                   [--wipe] [--handoff reboot|kexec|poweroff|shell]\n"
		"                   [--wait SECONDS] [--json]\n",
		"Aborts the migration in progress on the destination and leaves migration\n"
		"mode (default hand-off: reboot). --wipe blanks the first and last MiB of every\n"
		"disk the failed migration was writing; disks it did not touch are never\n"
		"touched. Without network access, boot the destination with ferry.mode=clean.\n"
		"--json prints one {\"event\":\"report\"} object per line of the destination's\n"
		"report, then {\"event\":\"clean\"} (or {\"event\":\"error\"}).\n",
		"exit status: 0 left migration mode, 1 failed, 2 usage\n",
	},
	[AGENT_CMD_STATUS] = {
		"status",
		"ferry status --to HOST[:PORT] [--proxy URL] [--token T | --token-file F]\n"
		"                    [--json] [--wait SECONDS] [--watch SECONDS]\n"
		"       ferry status --listen [ADDR]:PORT [--token T | --token-file F] ...\n",
		"Connects to a destination in migration mode and prints its version,\n"
		"state and disks (--json: one {\"event\":\"status\"} object).\n",
		"exit status: 0 ok, 1 failed, 2 usage\n",
	},
	[AGENT_CMD_ADAPT] = {
		"adapt",
		"ferry adapt --to HOST[:PORT] [--token T | --token-file F]\n"
		"                   [--dry-run | --force] [--keep-ip | --adapt-ip A/P[,gw=G][,dns=D]]\n"
		"                   [--handoff reboot|kexec|poweroff|shell] [--wait SECONDS] [--json]\n",
		"Adapts the system on a destination's disks to the destination's machine,\n"
		"as ferry migrate --adapt does after a copy: the initramfs of every kernel\n"
		"gets the virtio and NVMe drivers it lacks (the system's own update-initramfs,\n"
		"dracut or mkinitrd), fstab, crypttab and the boot configuration name\n"
		"filesystems by UUID instead of device path, the network configuration is\n"
		"detached from the old NIC (DHCP on this machine's NIC unless --keep-ip keeps\n"
		"the static addresses as configured or --adapt-ip gives new ones),\n"
		"cloud-init's instance state is reset, grub.cfg is regenerated and GRUB\n"
		"installed again when the boot disk's name changed. Every edited file keeps\n"
		"its original as FILE.ferry-orig; /var/log/ferry-adapt.log in the migrated\n"
		"system has it all. Nothing is adapted when the boot-readiness report has no\n"
		"FAIL, unless --force. --dry-run says what would change and changes nothing.\n"
		"The destination hands off (default reboot) only after a report without\n"
		"FAIL; otherwise, and after a dry run, it stays in migration mode.\n",
		"exit status: 0 adapted (or nothing to adapt), 1 a FAIL in the report, 2 usage\n",
	},
};

enum kind { O_FLAG, O_STR, O_NUM, O_FN };

struct opt {
	const char *name;
	const char *arg;	/* its argument in --help; NULL: a flag */
	unsigned cmds;		/* bit 1 << enum agent_cmd for each that accepts it */
	enum kind kind;
	size_t off;		/* O_FLAG int, O_STR const char *, O_NUM uint64_t */
	uint64_t min, max;	/* O_NUM */
	const char *want;	/* O_NUM's error: "want ...", NULL: "MIN to MAX" */
	int (*fn)(struct agent_opts *o, const char *arg);	/* O_FN */
	const char *help;	/* lines after the first start at HELP_COL */
};

static int bad(const char *name, const char *arg, const char *want)
{
	fprintf(stderr, "ferry: --%s %s: want %s\n", name, arg, want);
	return -EINVAL;
}

static int set_disk(struct agent_opts *o, const char *arg)
{
	if (o->ndisks == PROTO_MAX_DISKS) {
		fprintf(stderr, "ferry: at most %d disks\n", PROTO_MAX_DISKS);
		return -EINVAL;
	}
	o->disks[o->ndisks++] = arg;
	return 0;
}

static const char *const handoffs[] = { "reboot", "kexec", "poweroff", "shell" };

const char *agent_handoff_name(uint8_t handoff)
{
	return handoff < FERRY_ARRAY_LEN(handoffs) ? handoffs[handoff] : "?";
}

static int set_handoff(struct agent_opts *o, const char *arg)
{
	uint8_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(handoffs); i++)
		if (!strcmp(arg, handoffs[i])) {
			o->handoff = i;
			return 0;
		}
	return bad("handoff", arg, "reboot, kexec, poweroff or shell");
}

static int set_log_file(struct agent_opts *o, const char *arg)
{
	int fd = open(arg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	(void)o;
	if (fd < 0) {
		fprintf(stderr, "ferry: --log-file %s: %s\n", arg, strerror(errno));
		return -EINVAL;
	}
	log_set_file(fd);
	return 0;
}

static int set_log_level(struct agent_opts *o, const char *arg)
{
	uint64_t v;

	(void)o;
	if (parse_u64(arg, 3, &v) || v < 1)
		return bad("log-level", arg, "1, 2 or 3");
	log_init("ferry", (int)v);
	return 0;
}

static int set_chunk(struct agent_opts *o, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, PROTO_DATA_MAX / 1024, &v) || v < 4 || (v & (v - 1))) {
		fprintf(stderr, "ferry: --chunk %s: want KiB, a power of two from 4 to %u\n", arg,
			PROTO_DATA_MAX / 1024);
		return -EINVAL;
	}
	o->chunk_kib = v;
	return 0;
}

static int set_state_dir(struct agent_opts *o, const char *arg)
{
	if (strlen(arg) >= sizeof(o->state_dir)) {
		fprintf(stderr, "ferry: --state-dir: path too long\n");
		return -EINVAL;
	}
	snprintf(o->state_dir, sizeof(o->state_dir), "%s", arg);
	return 0;
}

/* --bwlimit: a bare number is KB/s (the seed tool's BandwidthLimit);
 * K, M, G are KiB/MiB/GiB per second; Kbit, Mbit, Gbit are bits. */
static int parse_rate(const char *s, double *out)
{
	static const struct {
		const char *sfx;
		double mul;
	} u[] = { { "Gbit", 1e9 / 8 }, { "Mbit", 1e6 / 8 }, { "Kbit", 1e3 / 8 },
		  { "G", 1073741824.0 }, { "M", 1048576.0 }, { "K", 1024.0 }, { "", 1024.0 } };
	char num[24];
	size_t n = strlen(s), i;
	uint64_t v;

	for (i = 0; i < FERRY_ARRAY_LEN(u); i++) {
		size_t k = strlen(u[i].sfx);

		if (n <= k || n - k >= sizeof(num) || strcmp(s + n - k, u[i].sfx))
			continue;
		memcpy(num, s, n - k);
		num[n - k] = 0;
		if (parse_u64(num, 1ull << 40, &v) || v == 0)
			return -EINVAL;
		*out = (double)v * u[i].mul;
		return *out >= 1024.0 ? 0 : -EINVAL; /* at least 1 KB/s */
	}
	return -EINVAL;
}

static int set_bwlimit(struct agent_opts *o, const char *arg)
{
	if (parse_rate(arg, &o->bw_rate))
		return bad("bwlimit", arg, "KB/s (e.g. 51200), or 50M, 200Mbit, 1G");
	return 0;
}

/* "90", "90s", "30m", "1h", "7d": seconds, at most 30 days. */
static int parse_duration(const char *s, uint64_t *out)
{
	char num[24];
	size_t n = strlen(s);
	uint64_t mul = 1, v;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's': mul = 1; num[n - 1] = 0; break;
	case 'm': mul = 60; num[n - 1] = 0; break;
	case 'h': mul = 3600; num[n - 1] = 0; break;
	case 'd': mul = 86400; num[n - 1] = 0; break;
	}
	if (parse_u64(num, 30ull * 86400 / mul, &v) || v == 0)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int set_sync_interval(struct agent_opts *o, const char *arg)
{
	if (parse_duration(arg, &o->sync_interval))
		return bad("sync-interval", arg, "a duration (90s, 30m, 1h, 7d)");
	return 0;
}

static int set_format(struct agent_opts *o, const char *arg)
{
	if (strcmp(arg, "raw") && strcmp(arg, "qcow2") && strcmp(arg, "vhd") &&
	    strcmp(arg, "vpc") && strcmp(arg, "vmdk"))
		return bad("format", arg, "raw, qcow2, vhd or vmdk (ferry import)");
	o->format = strcmp(arg, "vpc") ? arg : "vhd";
	return 0;
}

#define F(field) offsetof(struct agent_opts, field)
#define FLAG(name, cmds, field, help) { name, NULL, cmds, O_FLAG, F(field), 0, 0, NULL, NULL, help }
#define STR(name, arg, cmds, field, help) { name, arg, cmds, O_STR, F(field), 0, 0, NULL, NULL, help }
#define NUM(name, arg, cmds, field, min, max, want, help) \
	{ name, arg, cmds, O_NUM, F(field), min, max, want, NULL, help }
#define FN(name, arg, cmds, fn, help) { name, arg, cmds, O_FN, 0, 0, 0, NULL, fn, help }

static int set_adapt(struct agent_opts *o, const char *arg)
{
	if (proto_adapt_parse(arg ? arg : "", &o->adapt))
		return bad("adapt", arg ? arg : "", "auto, force or dry-run, and keep-ip "
			   "(comma-separated)");
	return 0;
}

static int set_adapt_ip(struct agent_opts *o, const char *arg)
{
	char why[96];

	if (proto_adapt_ip_parse(arg, &o->adapt_ip, why, sizeof(why))) {
		fprintf(stderr, "ferry: --adapt-ip %s: %s\n", arg, why);
		return -EINVAL;
	}
	return 0;
}

static const struct opt opts[] = {
	STR("to", "HOST[:PORT]", MSI | K | C | T | A, to,
	    "the destination: a name, an IPv4 or a bracketed IPv6\n"
	    "address ([fd00::5]:443); the port defaults to 443"),
	STR("token", "T", MSI | K | C | T | A, token,
	    "the pairing token the destination shows (or FERRY_TOKEN)"),
	STR("token-file", "F", MSI | K | C | T | A, token_file,
	    "read the token from file F (not in the process list)"),
	STR("proxy", "URL", MSI | K | C | T, proxy,
	    "through an HTTP proxy with CONNECT: http://[USER:PASS@]\n"
	    "HOST:PORT (default: https_proxy unless no_proxy names\n"
	    "the destination; \"\" = direct)"),
	STR("listen", "[ADDR]:PORT", MSI | T, listen,
	    "reverse mode: wait (--wait, default 600 s) for a\n"
	    "destination booted with ferry.connect=THIS-HOST:PORT to\n"
	    "dial in; the token and TLS work as with --to"),
	NUM("wait", "SECONDS", MSI | C | T | A, wait, 0, 86400, "seconds (0..86400)",
	    "retry connecting this long while the destination boots"),
	FN("disk", "SRC[=DST]", MSI | K, set_disk,
	   "a source disk and, optionally, the destination disk\n"
	   "(e.g. /dev/sda=vdb); repeat for several disks. Without\n"
	   "--disk every whole disk is sent, the one holding / first,\n"
	   "to the destination's disks in order"),
	FLAG("json", MSI | K | C | T | A, json, "NDJSON events on stdout instead of text"),
	NUM("progress-interval", "SECONDS", MSI, progress_s, 1, 3600, "seconds (1..3600)",
	    "a progress line (or --json event) this often (default:\n"
	    "5 s for lines, 1 s with --json)"),
	FLAG("checksum", MSI, checksum,
	     "the destination reads back what it wrote; chunk hashes\n"
	     "are compared and any difference is sent again"),
	FLAG("grow", MSI, grow,
	     "grow the last partition and its ext4 filesystem (or\n"
	     "its LVM PV: LVs untouched) to fill a larger disk"),
	FN("handoff", "MODE", MSI | C | A, set_handoff,
	   "what the destination does at the end: reboot (the\n"
	   "default), kexec, poweroff or shell"),
	FLAG("wipe", C, wipe,
	     "blank the first and last MiB of every disk the aborted\n"
	     "migration was writing"),
	NUM("watch", "SECONDS", T, watch, 0, 86400, "seconds (0..86400)",
	    "keep the session open and print the status every second,\n"
	    "this many times"),
	FN("log-file", "F", MSI, set_log_file, "also append every log line, timestamped, to F"),
	FN("log-level", "1|2|3", MSI, set_log_level, "ERROR, INFO (the default) or DEBUG"),
	FN("chunk", "KiB", MSI, set_chunk,
	   "the chunk of the used-block map and of comparisons: a\n"
	   "power of two from 4 to 1024 (default 64)"),
	NUM("flush-every", "MiB", MSI, flush_mib, 1, 1u << 20, "MiB (1 or more)",
	    "the flush window: never more than this, over all streams,\n"
	    "is sent without a FLUSH (a point the destination makes\n"
	    "durable), so a cut sends at most this again (default 256)"),
	FN("bwlimit", "RATE", MSI, set_bwlimit,
	   "cap the bandwidth: KB/s (as the seed tool's BandwidthLimit),\n"
	   "or 50M (MiB/s), 200Mbit"),
	NUM("compress", "LEVEL", MSI, zlevel, 0, 19, "a zstd level 0 (off) to 19",
	    "zstd level 1-19 (0 = off, the default); chunks that do not\n"
	    "shrink go raw, and it turns itself off when it costs more\n"
	    "time than it saves"),
	NUM("streams", "N", MSI, streams, 1, PROTO_STREAMS_MAX, NULL,
	    "parallel TLS connections, each sending its own stripes\n"
	    "of the disks, so encryption and writing use every core\n"
	    "(default: this machine's cores, at most 8)"),
	FN("sync-interval", "D", MSI, set_sync_interval,
	   "keep the destination in step: a pass every D (90s, 30m, 1h,\n"
	   "7d) until SIGUSR1 (cut over) or SIGINT (stop, resume later)"),
	FLAG("freeze", MSI, freeze,
	     "cut over crash-consistently: the final pass runs with the\n"
	     "source's mounted filesystems frozen"),
	NUM("freeze-timeout", "SECONDS", MSI, freeze_timeout, 0, 100000, "a number",
	    "thaw and fail the cutover when the frozen pass takes\n"
	    "longer (default 60)"),
	FLAG("no-track", M, no_track,
	     "do not trace block I/O: incremental passes and the cutover\n"
	     "compare by hashes (by default they send what was written)"),
	FN("state-dir", "DIR", MSI, set_state_dir,
	   "where the resume state lives (default /var/lib/ferry)"),
	FLAG("restart", MSI, restart, "ignore the saved state and start over"),
	NUM("retries", "N", MSI, retries, 0, 100000, "a number",
	    "reconnect this many times after a cut (default 8)"),
	FLAG("skip-bad-sectors", MSI, skip_bad,
	     "send zeros for 4 KiB source blocks that cannot be read\n"
	     "(listed in the summary; the copy is then not exact)\n"
	     "instead of stopping at the first"),
	FN("adapt", "[=MODE]", M, set_adapt,
	   "after the copy, adapt the system to this machine when its\n"
	   "boot-readiness report fails (force: always; dry-run: say\n"
	   "what would change; ,keep-ip: keep static addresses\n"
	   "instead of DHCP); see ferry adapt"),
	FN("adapt-ip", "A/P[,gw=G][,dns=D]", M | A, set_adapt_ip,
	   "adapting: the primary NIC gets this static IPv4 setup\n"
	   "(e.g. 192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53)\n"
	   "instead of DHCP, in the system's own format (with\n"
	   "ferry migrate it implies --adapt)"),
	FLAG("dry-run", A, dry_run, "say what would change; change nothing"),
	FLAG("force", A, force, "adapt even when the boot-readiness report has no FAIL"),
	FLAG("keep-ip", A, keep_ip, "keep the static addresses as configured (default: DHCP)"),
	FLAG("ignore-check", MSI, ignore_check,
	     "go on when a pre-migration check (ferry check) fails"),
	FN("format", "raw|qcow2|vhd|vmdk", I, set_format,
	   "the images' format; an image of another format is refused"),
	FLAG("inspect", I, inspect, "describe the images and send nothing; no destination needed"),
};

void agent_opts_usage(enum agent_cmd cmd, FILE *out)
{
	const struct cmd_help *h = &cmds[cmd];
	size_t i;

	fprintf(out, "usage: %s\n%s\n", h->synopsis, h->about);
	for (i = 0; i < FERRY_ARRAY_LEN(opts); i++) {
		const struct opt *p = &opts[i];
		const char *t = p->help, *nl;
		int w;

		if (!(p->cmds & (1u << cmd)))
			continue;
		w = fprintf(out, "  --%s%s%s", p->name, p->arg && strncmp(p->arg, "[=", 2) ? " " : "",
			    p->arg ? p->arg : "");
		if (w + 2 > HELP_COL)
			fprintf(out, "\n%*s", HELP_COL, "");
		else
			fprintf(out, "%*s", HELP_COL - w, "");
		while ((nl = strchr(t, '\n'))) {
			fprintf(out, "%.*s\n%*s", (int)(nl - t), t, HELP_COL, "");
			t = nl + 1;
		}
		fprintf(out, "%s\n", t);
	}
	fprintf(out, "  --help            this text\n\n%s", h->exits);
}

int agent_opts_parse(enum agent_cmd cmd, int argc, char **argv, struct agent_opts *o)
{
	struct option lo[FERRY_ARRAY_LEN(opts) + 2];
	size_t n = 0, i;
	long nc = sysconf(_SC_NPROCESSORS_ONLN);
	int c, r;

	memset(o, 0, sizeof(*o));
	snprintf(o->state_dir, sizeof(o->state_dir), "%s", STATE_DIR_DEFAULT);
	o->chunk_kib = 64;
	o->flush_mib = 256;
	o->retries = 8;
	o->freeze_timeout = 60;
	o->streams = nc < 1 ? 1 : nc > PROTO_STREAMS_MAX ? PROTO_STREAMS_MAX : (uint64_t)nc;
	for (i = 0; i < FERRY_ARRAY_LEN(opts); i++)
		if (opts[i].cmds & (1u << cmd))
			lo[n++] = (struct option){ opts[i].name,
						   /* "[=MODE]": the argument is optional */
						   !opts[i].arg ? no_argument :
						   !strncmp(opts[i].arg, "[=", 2) ? optional_argument :
										    required_argument,
						   NULL, 256 + (int)i };
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		const struct opt *p = &opts[c >= 256 ? c - 256 : 0];
		char *base = (char *)o;
		uint64_t v;

		if (c == 'h') {
			agent_opts_usage(cmd, stdout);
			return 1;
		}
		if (c < 256) {
			agent_opts_usage(cmd, stderr);
			return -EINVAL;
		}
		switch (p->kind) {
		case O_FLAG: *(int *)(base + p->off) = 1; break;
		case O_STR: *(const char **)(base + p->off) = optarg; break;
		case O_NUM:
			if (parse_u64(optarg, p->max, &v) || v < p->min) {
				char want[48];

				if (!p->want)
					snprintf(want, sizeof(want), "%llu to %llu",
						 (unsigned long long)p->min, (unsigned long long)p->max);
				return bad(p->name, optarg, p->want ? p->want : want);
			}
			*(uint64_t *)(base + p->off) = v;
			break;
		case O_FN:
			if ((r = p->fn(o, optarg)))
				return r;
			break;
		}
	}
	o->argi = optind;
	if (cmd == AGENT_CMD_ADAPT && o->dry_run && o->force) {
		fprintf(stderr, "ferry: adapt: --dry-run and --force exclude each other\n");
		return -EINVAL;
	}
	if (o->adapt_ip.prefix && (o->keep_ip || (o->adapt & PROTO_ADAPT_KEEP_IP))) {
		fprintf(stderr, "ferry: --adapt-ip and keep-ip exclude each other\n");
		return -EINVAL;
	}
	if (cmd == AGENT_CMD_MIGRATE && o->adapt_ip.prefix && !o->adapt)
		o->adapt = PROTO_ADAPT_ON; /* --adapt-ip says --adapt */
	if (cmd != AGENT_CMD_IMPORT && optind != argc) {
		fprintf(stderr, "ferry: %s: unexpected argument '%s'\n", cmds[cmd].name,
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}
