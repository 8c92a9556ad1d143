/*
 * check.c - `ferry check`: the seed tool's "Checks Before Migration",
 * done on the source server before a byte is sent. One line per check,
 * PASS / WARN / FAIL, what was found (quoting the value) and how to fix
 * it. It reads /proc, /sys, /boot and /lib/modules, probes the source
 * disks read-only and asks the destination for its inventory; it never
 * writes to a disk and never changes a setting itself. Where it cannot
 * tell (an initramfs it cannot read), it says "unknown" and why.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/check.h"
#include "agent/check_impl.h"
#include "agent/opts.h"
#include "agent/sources.h"
#include "blockmap/blockmap.h"
#include "boot/boot.h"
#include "common/common.h"
#include "track/track.h"

#define MEM_LOW	 (128ull << 20) /* MemAvailable below this: WARN */
#define SKEW_MAX 300		/* seconds between the two clocks */
#define YEAR_MIN 2024		/* older than ferry: the clock was never set */
#define YEAR_MAX 2100

/* ---- results and their lines ------------------------------------------- */

const char *check_level_name(enum check_level l)
{
	return l == CHECK_PASS ? "PASS" : l == CHECK_WARN ? "WARN" : "FAIL";
}

int check_exit_code(const struct check_result *r)
{
	return r->count[CHECK_FAIL] ? AGENT_EXIT_CHECK : AGENT_EXIT_OK;
}

int check_format(const struct check_item *it, int json, char *buf, size_t cap)
{
	static char a[CHECK_NAME_MAX * 6 + 3], b[CHECK_TEXT_MAX * 6 + 3], c[CHECK_TEXT_MAX * 6 + 3];
	int n;

	if (json)
		n = snprintf(buf, cap,
			     "{\"event\":\"check\",\"check\":%s,\"level\":\"%s\","
			     "\"found\":%s,\"fix\":%s}",
			     json_str(it->name, a, sizeof(a)), check_level_name(it->level),
			     json_str(it->found, b, sizeof(b)),
			     json_str(it->fix, c, sizeof(c)));
	else
		n = snprintf(buf, cap, "%s  %s%s%s", check_level_name(it->level), it->found,
			     it->fix[0] ? "  \xe2\x80\x94 " : "", it->fix);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int check_format_summary(const struct check_result *r, int json, char *buf, size_t cap)
{
	int n;

	if (json)
		n = snprintf(buf, cap,
			     "{\"event\":\"check_summary\",\"result\":\"%s\",\"pass\":%u,"
			     "\"warn\":%u,\"fail\":%u}",
			     check_level_name(r->worst), r->count[CHECK_PASS], r->count[CHECK_WARN],
			     r->count[CHECK_FAIL]);
	else
		n = snprintf(buf, cap, "check: %s (%u passed, %u warning%s, %u failed)",
			     check_level_name(r->worst), r->count[CHECK_PASS], r->count[CHECK_WARN],
			     r->count[CHECK_WARN] == 1 ? "" : "s", r->count[CHECK_FAIL]);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

/* vsnprintf that marks a cut text with "..." instead of cutting silently. */
static void vtext(char *dst, size_t cap, const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, cap, fmt, ap);

	if (n >= 0 && (size_t)n >= cap && cap > 4)
		memcpy(dst + cap - 4, "...", 4);
}

void ck_text(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtext(dst, cap, fmt, ap);
	va_end(ap);
}

/* Appends to a text being built (cut with "..." when it does not fit). */
void ck_append(char *dst, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(dst);
	va_list ap;

	if (len + 1 >= cap)
		return;
	va_start(ap, fmt);
	vtext(dst + len, cap - len, fmt, ap);
	va_end(ap);
}

void ck_say(struct ck *c, enum check_level l, const char *name, const char *fix, const char *fmt,
	    ...)
{
	static struct check_item spare;
	static char line[CHECK_LINE_MAX];
	struct check_result *r = c->r;
	struct check_item *it = r->n < CHECK_MAX ? &r->item[r->n] : &spare;
	va_list ap;

	memset(it, 0, sizeof(*it));
	it->level = l;
	snprintf(it->name, sizeof(it->name), "%s", name);
	va_start(ap, fmt);
	vtext(it->found, sizeof(it->found), fmt, ap);
	va_end(ap);
	if (fix && l != CHECK_PASS)
		ck_text(it->fix, sizeof(it->fix), "%s", fix);
	if (r->n < CHECK_MAX)
		r->n++;
	else
		r->dropped++;
	r->count[l]++;
	if (l > r->worst)
		r->worst = l;
	if (c->o->out) {
		check_format(it, c->o->json, line, sizeof(line));
		fprintf(c->o->out, "%s\n", line);
		fflush(c->o->out);
	}
}

/* ---- small readers --------------------------------------------------------- */

void ck_path(const struct env *e, char *dst, size_t cap, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	snprintf(dst, cap, "%s", e->root);
	n = strlen(dst);
	va_start(ap, fmt);
	vsnprintf(dst + n, cap - n, fmt, ap);
	va_end(ap);
}

const char *ck_shown(const struct env *e, const char *path)
{
	size_t n = strlen(e->root);

	return strncmp(path, e->root, n) ? path : path + n;
}

int ck_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* "2025-03-01 12:00:00 UTC" */
static const char *fmt_time(time_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, cap, "%lld s since 1970", (long long)t);
	return buf;
}

/* "45 s", "12 min 3 s", "3 h 12 min", "400 days" */
static const char *fmt_secs(uint64_t s, char *buf, size_t cap)
{
	if (s < 60)
		snprintf(buf, cap, "%llu s", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, cap, "%llu min %llu s", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 3 * 86400)
		snprintf(buf, cap, "%llu h %llu min", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, cap, "%llu days", (unsigned long long)(s / 86400));
	return buf;
}

/* ---- this machine ------------------------------------------------------------ */

static void check_root(struct ck *c, int files_only)
{
	if (c->e->euid == 0) {
		ck_say(c, CHECK_PASS, "root", NULL, "running as root");
		return;
	}
	if (files_only) {
		ck_say(c, CHECK_WARN, "root",
		       "run as root to migrate block devices, freeze filesystems (--freeze) and "
		       "keep state in /var/lib/ferry",
		       "not running as root (uid %u); the sources are image files this user can read",
		       (unsigned)c->e->euid);
		return;
	}
	ck_say(c, CHECK_FAIL, "root", "run ferry as root (sudo ferry ...)",
	       "not running as root (uid %u): reading the disks needs root", (unsigned)c->e->euid);
}

static void check_clock(struct ck *c)
{
	char when[64];
	struct tm tm;

	if (!gmtime_r(&c->e->now, &tm)) {
		ck_say(c, CHECK_FAIL, "clock", "set the clock", "the clock reads %lld s since 1970",
		       (long long)c->e->now);
		return;
	}
	fmt_time(c->e->now, when, sizeof(when));
	if (tm.tm_year + 1900 < YEAR_MIN || tm.tm_year + 1900 >= YEAR_MAX) {
		ck_say(c, CHECK_FAIL, "clock",
		       "set the system time (timedatectl set-ntp true, chronyc makestep, or "
		       "date -s 'YYYY-MM-DD HH:MM:SS' and hwclock -w); the migrated system keeps "
		       "the timestamps this clock writes",
		       "the clock reads %s, which cannot be right", when);
		return;
	}
	ck_say(c, CHECK_PASS, "clock", NULL, "the clock reads %s", when);
}

/* MemAvailable in bytes; older kernels: MemFree + Buffers + Cached. */
static int meminfo_available(const char *path, uint64_t *bytes, int *estimated)
{
	char line[LINEBUF];
	unsigned long long v, avail = 0, sum = 0;
	int have = 0, parts = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
			avail = v, have = 1;
		else if (sscanf(line, "MemFree: %llu kB", &v) == 1 ||
			 sscanf(line, "Buffers: %llu kB", &v) == 1 ||
			 sscanf(line, "Cached: %llu kB", &v) == 1)
			sum += v, parts++;
	}
	fclose(f);
	if (!have && parts < 3)
		return -ENODATA;
	*estimated = !have;
	*bytes = (have ? avail : sum) * 1024ull;
	return 0;
}

static void check_memory(struct ck *c)
{
	char path[PATHBUF], a[32], b[32];
	uint64_t avail = 0;
	int est = 0, r;

	ck_path(c->e, path, sizeof(path), "/proc/meminfo");
	if ((r = meminfo_available(path, &avail, &est))) {
		ck_say(c, CHECK_WARN, "memory", "mount /proc (mount -t proc proc /proc)",
		       "free memory unknown: %s: %s", ck_shown(c->e, path),
		       r == -ENODATA ? "no MemAvailable line" : strerror(-r));
		return;
	}
	if (avail < MEM_LOW) {
		ck_say(c, CHECK_WARN, "memory",
		       "stop memory-hungry services or add swap before migrating: ferry itself "
		       "needs a few MiB, but a server short of memory slows the copy down",
		       "memory: %s available%s, below %s", fmt_bytes(avail, a, sizeof(a)),
		       est ? " (MemFree+Buffers+Cached)" : "", fmt_bytes(MEM_LOW, b, sizeof(b)));
		return;
	}
	ck_say(c, CHECK_PASS, "memory", NULL, "memory: %s available%s", fmt_bytes(avail, a, sizeof(a)),
	       est ? " (MemFree+Buffers+Cached)" : "");
}

static void check_selinux(struct ck *c)
{
	char path[PATHBUF], v[16];
	int r;

	ck_path(c->e, path, sizeof(path), "/sys/fs/selinux/enforce");
	r = file_read_small(path, v, sizeof(v));
	if (r == -ENOENT) {
		ck_say(c, CHECK_PASS, "selinux", NULL, "SELinux is not enabled");
		return;
	}
	if (r < 0) {
		ck_say(c, CHECK_WARN, "selinux", "check by hand: getenforce",
		       "SELinux state unknown: %s: %s", ck_shown(c->e, path), strerror(-r));
		return;
	}
	if (!strcmp(v, "1")) {
		ck_say(c, CHECK_WARN, "selinux",
		       "disable it: setenforce 0 for now, and in /etc/selinux/config set "
		       "SELINUX=disabled (or permissive) so it stays off after a reboot",
		       "SELinux is enforcing: its policy can keep ferry from reading the disks "
		       "or freezing filesystems");
		return;
	}
	ck_say(c, CHECK_PASS, "selinux", NULL, "SELinux is permissive");
}

/* ---- the source disks ------------------------------------------------------- */

struct srcs {
	size_t n;
	char path[PROTO_MAX_DISKS][SRC_PATH_MAX];
	char dst[PROTO_MAX_DISKS][PROTO_NAME_MAX]; /* "" = in order */
	int ok[PROTO_MAX_DISKS];		   /* probed */
	uint64_t size[PROTO_MAX_DISKS];
	uint32_t lsec[PROTO_MAX_DISKS];
	int files_only; /* every source is a regular file */
};

/* Splits "SRC[=DST]" as migrate does; -EINVAL for a bad one. */
static int parse_specs(const struct check_opts *o, struct srcs *s)
{
	size_t i;

	if (o->ndisks > PROTO_MAX_DISKS)
		return -EINVAL;
	for (i = 0; i < o->ndisks; i++) {
		const char *spec = o->disks[i], *eq = strrchr(spec, '=');
		size_t l = eq ? (size_t)(eq - spec) : strlen(spec);

		if (l == 0 || l >= SRC_PATH_MAX ||
		    (eq && (!eq[1] || strlen(eq + 1) >= PROTO_NAME_MAX)))
			return -EINVAL;
		memcpy(s->path[i], spec, l);
		s->path[i][l] = 0;
		snprintf(s->dst[i], sizeof(s->dst[i]), "%s", eq ? eq + 1 : "");
	}
	s->n = o->ndisks;
	return 0;
}

static const char *table_name(const char *t)
{
	return !strcmp(t, "gpt") ? "GPT" : !strcmp(t, "dos") ? "MBR" : "no partition table";
}

/* "/dev/vda: 40.0 GiB, GPT: 1 vfat 512.0 MiB (used blocks), 2 LVM2_member 39.0 GiB
 * (volumes by their filesystems), 1 LV; a migration sends 5.2 GiB". The LVs get a
 * line each (describe_lv): a server with a dozen of them would not fit in one. */
static void describe_disk(const struct bm_disk *d, char *out, size_t cap)
{
	char a[32], b[32], how[BM_NOTE_MAX + 48];
	size_t p;

	ck_text(out, cap, "%s: %s, %s", d->path, fmt_bytes(d->size, a, sizeof(a)),
	        table_name(d->table));
	if (!d->table[0]) {
		bm_describe(d->method, d->note, how, sizeof(how));
		ck_append(out, cap, ", %s%s (%s)", d->fstype[0] ? d->fstype : "no filesystem",
		          d->fstype[0] ? " on the whole disk" : " found", how);
	} else if (d->nparts == 0) {
		ck_append(out, cap, ", no partitions");
	}
	for (p = 0; p < d->nparts; p++) {
		const struct bm_part *x = &d->parts[p];

		bm_describe(x->method, x->note, how, sizeof(how));
		ck_append(out, cap, "%s%d %s %s (%s)", p ? ", " : ": ", x->number,
		          x->fstype[0] ? x->fstype : "-", fmt_bytes(x->size, a, sizeof(a)), how);
	}
	if (d->nlvs)
		ck_append(out, cap, ", %zu LV%s", d->nlvs, d->nlvs == 1 ? "" : "s");
	ck_append(out, cap, "; a migration sends %s", fmt_bytes(d->map_bytes, b, sizeof(b)));
}

/* "/dev/vda: LV rl/root xfs 30.0 GiB (used blocks, sends 4.1 GiB)" */
static void describe_lv(const struct bm_disk *d, const struct bm_lv *l, char *out, size_t cap)
{
	char a[32], b[32], how[BM_NOTE_MAX + 48];

	bm_describe(l->method, l->note, how, sizeof(how));
	ck_text(out, cap, "%s: LV %s/%s %s %s (%s, sends %s)", d->path, l->vg, l->name,
	        l->fstype[0] ? l->fstype : "-", fmt_bytes(l->size, a, sizeof(a)), how,
	        fmt_bytes(l->used_bytes, b, sizeof(b)));
}

static const char *probe_fix(int r, uid_t euid)
{
	if (r == -ENOENT)
		return "check the path given with --disk";
	if ((r == -EACCES || r == -EPERM) && euid != 0)
		return "run ferry as root";
	if (r == -EACCES || r == -EPERM)
		return "even root may not read it here: run ferry on the server itself (not in a "
		       "container), or allow it in SELinux/AppArmor";
	if (r == -EFBIG)
		return "use larger chunks (ferry migrate --chunk)";
	return "check the disk (dmesg) or leave it out with --disk";
}

/* Can the incremental passes and the cutover of this disk send only what
 * was written (change tracking), or must they compare it by hashes? */
static void check_tracking(struct ck *c, const char *path)
{
	char why[CHECK_TEXT_MAX], fix[CHECK_TEXT_MAX];
	struct stat st;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		ck_say(c, CHECK_PASS, "tracking", NULL, "%s: an image file: no change tracking; "
		       "incremental passes compare it by hashes", path);
		return;
	}
	if (c->e->euid != 0) {
		ck_say(c, CHECK_WARN, "tracking", "run ferry as root",
		       "%s: change tracking unknown: tracing block I/O needs root", path);
		return;
	}
	if (track_probe(path, why, sizeof(why)) == 0) {
		ck_say(c, CHECK_PASS, "tracking", NULL, "%s: change tracking available (%s): "
		       "incremental passes and the cutover send only what was written", path, why);
		return;
	}
	if (strstr(why, "lockdown"))
		ck_text(fix, sizeof(fix), "boot without lockdown=confidentiality to track changes");
	else if (strstr(why, "CONFIG_TRACING") || strstr(why, "block trace events"))
		ck_text(fix, sizeof(fix), "a kernel with CONFIG_TRACING (distribution kernels have it) "
		        "tracks changes");
	else
		fix[0] = 0;
	ck_append(fix, sizeof(fix), "%swithout it, incremental passes and the --freeze cutover "
	          "compare this disk by hashes (the freeze lasts as long as reading its used blocks)",
	          fix[0] ? "; " : "");
	ck_say(c, CHECK_WARN, "tracking", fix, "%s: no change tracking: %s", path, why);
}

static void check_disks(struct ck *c, struct srcs *s)
{
	static struct bm_disk d;
	static char paths[PROTO_MAX_DISKS][SRC_PATH_MAX];
	char err[AGENT_ERR_MAX], line[CHECK_TEXT_MAX], a[32], b[32], cc[32];
	uint64_t total = 0, send = 0;
	size_t i, v, probed = 0;
	int r;

	if (s->n == 0) {
		size_t n = 0;

		if ((r = src_discover(paths, PROTO_MAX_DISKS, &n, err, sizeof(err)))) {
			ck_say(c, CHECK_FAIL, "disks", "name the source disks with --disk SRC", "%s",
			       err);
			return;
		}
		for (i = 0; i < n; i++) {
			snprintf(s->path[i], sizeof(s->path[i]), "%s", paths[i]);
			s->dst[i][0] = 0;
		}
		s->n = n;
	}
	for (i = 0; i < s->n; i++) {
		char whole[SRC_PATH_MAX] = "", fix[CHECK_TEXT_MAX];

		if (src_is_partition(s->path[i], whole, sizeof(whole))) {
			ck_text(fix, sizeof(fix), "give the whole disk%s%s",
			        whole[0] ? ": --disk " : "", whole);
			ck_say(c, CHECK_FAIL, "disk", fix, "%s is a partition, not a disk",
			       s->path[i]);
			continue;
		}
		if ((r = bm_probe(s->path[i], c->o->chunk, &d, err, sizeof(err)))) {
			ck_say(c, CHECK_FAIL, "disk", probe_fix(r, c->e->euid), "%s", err);
			continue;
		}
		describe_disk(&d, line, sizeof(line));
		ck_say(c, CHECK_PASS, "disk", NULL, "%s", line);
		for (v = 0; v < d.nlvs && v < BM_MAX_LVS; v++) {
			describe_lv(&d, &d.lvs[v], line, sizeof(line));
			ck_say(c, CHECK_PASS, "lv", NULL, "%s", line);
		}
		check_tracking(c, s->path[i]);
		s->ok[i] = 1;
		s->size[i] = d.size;
		s->lsec[i] = d.lsec;
		total += d.size;
		send += d.map_bytes;
		probed++;
		bm_free(&d);
	}
	if (probed > 1)
		ck_say(c, CHECK_PASS, "disks", NULL,
		       "%zu disks, %s in all; a migration sends %s (%.0f %%) and skips %s unused",
		       probed, fmt_bytes(total, a, sizeof(a)), fmt_bytes(send, b, sizeof(b)),
		       total ? 100.0 * (double)send / (double)total : 0.0,
		       fmt_bytes(total - send, cc, sizeof(cc)));
}

/* ---- the destination ----------------------------------------------------------- */

static void check_skew(struct ck *c, uint64_t dest, const char *who)
{
	char a[64], b[64], d[32];
	uint64_t now = (uint64_t)c->e->now;
	uint64_t diff = now > dest ? now - dest : dest - now;

	if (diff <= SKEW_MAX) {
		ck_say(c, CHECK_PASS, "clock_skew", NULL,
		       "the clocks of this server and %s agree within %s", who,
		       fmt_secs(diff, d, sizeof(d)));
		return;
	}
	ck_say(c, CHECK_WARN, "clock_skew",
	       "set the wrong clock: on this server timedatectl set-ntp true or chronyc "
	       "makestep; a destination whose clock is off has a wrong hardware clock (RTC), "
	       "which the migrated system inherits at its first boot",
	       "the clocks differ by %s: this server %s, %s %s", fmt_secs(diff, d, sizeof(d)),
	       fmt_time(c->e->now, a, sizeof(a)), who, fmt_time((time_t)dest, b, sizeof(b)));
}

static void connect_failed(struct ck *c, const struct agent_target *t, int r, const char *err)
{
	char fix[CHECK_TEXT_MAX];

	if (r == -EKEYREJECTED || r == -EACCES)
		ck_text(fix, sizeof(fix),
		        "use the token the destination shows on its console "
		        "(or the one given with ferry.token=)");
	else if (r == -EBUSY)
		ck_text(fix, sizeof(fix),
		        "another agent holds a session with %s: wait for it to end or stop it",
		        t->text);
	else if (r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ENETUNREACH ||
		 r == -ECONNRESET)
		ck_text(fix, sizeof(fix),
		        "boot the destination into migration mode and allow TCP port %u from "
		        "this server to it (firewall, security group)",
		        t->port);
	else
		ck_text(fix, sizeof(fix),
		        "check the address given with --to and that %s runs the ferry live "
		        "environment",
		        t->text);
	ck_say(c, CHECK_FAIL, "destination", fix, "%s", err);
}

/* Migrate's mapping rule: an explicit DST, else the next destination disk
 * not named explicitly; then size, sector size and read-only, as the
 * destination will check the plan. */
static void check_capacity(struct ck *c, const struct srcs *s, const struct proto_inventory *inv)
{
	char have[400] = "", fix[CHECK_TEXT_MAX], a[32], b[32];
	const char *used[PROTO_MAX_DISKS];
	uint32_t next = 0, k;
	size_t i, j;

	for (k = 0; k < inv->ndisks; k++)
		ck_append(have, sizeof(have), "%s%s (%s)", k ? ", " : "", inv->disks[k].name,
		          fmt_bytes(inv->disks[k].size, a, sizeof(a)));
	if (inv->ndisks == 0)
		snprintf(have, sizeof(have), "no disks at all");
	for (i = 0; i < s->n; i++) {
		const struct proto_disk *x = NULL;
		const char *dst = s->dst[i];

		used[i] = NULL;
		if (!dst[0]) {
			for (; next < inv->ndisks; next++) {
				int taken = 0;

				for (j = 0; j < s->n; j++)
					if (!strcmp(s->dst[j], inv->disks[next].name))
						taken = 1;
				if (!taken)
					break;
			}
			if (next >= inv->ndisks) {
				ck_say(c, CHECK_FAIL, "capacity",
				       "add a disk to the destination, or leave this source out "
				       "(name the others with --disk)",
				       "no destination disk left for %s: the destination has %s",
				       s->path[i], have);
				continue;
			}
			dst = inv->disks[next++].name;
		}
		for (k = 0; k < inv->ndisks; k++)
			if (!strcmp(inv->disks[k].name, dst))
				x = &inv->disks[k];
		if (!x) {
			size_t l = strlen(dst);

			ck_text(fix, sizeof(fix),
			        "name one of the destination's whole disks: --disk %s=%s", s->path[i],
			        inv->ndisks ? inv->disks[0].name : "vda");
			if (l > 1 && dst[l - 1] >= '0' && dst[l - 1] <= '9')
				ck_say(c, CHECK_FAIL, "capacity", fix,
				       "destination %s looks like a partition; name a whole disk: "
				       "the destination has %s",
				       dst, have);
			else
				ck_say(c, CHECK_FAIL, "capacity", fix,
				       "destination disk %s does not exist: the destination has %s",
				       dst, have);
			continue;
		}
		used[i] = x->name;
		for (j = 0; j < i; j++)
			if (used[j] && !strcmp(used[j], x->name))
				break;
		if (j < i) {
			ck_say(c, CHECK_FAIL, "capacity",
			       "map each source to its own destination disk",
			       "destination disk %s is named for both %s and %s", x->name, s->path[j],
			       s->path[i]);
			continue;
		}
		if (!s->ok[i])
			continue; /* its probe failed and was reported */
		if (s->size[i] > x->size) {
			ck_text(fix, sizeof(fix),
			        "give the destination a disk %s of at least %s (%llu bytes), or map "
			        "%s to a larger one with --disk %s=DST",
			        x->name, fmt_bytes(s->size[i], b, sizeof(b)),
			        (unsigned long long)s->size[i], s->path[i], s->path[i]);
			ck_say(c, CHECK_FAIL, "capacity", fix,
			       "the storage space of the target device is too small: %s is %s "
			       "(%llu bytes), the source %s needs %s (%llu bytes)",
			       x->name, fmt_bytes(x->size, a, sizeof(a)), (unsigned long long)x->size,
			       s->path[i], fmt_bytes(s->size[i], b, sizeof(b)),
			       (unsigned long long)s->size[i]);
		} else if (x->flags & PROTO_DISK_RO) {
			ck_say(c, CHECK_FAIL, "capacity", "give the destination a writable disk",
			       "destination disk %s is read-only", x->name);
		} else if (s->lsec[i] != x->lsec) {
			ck_say(c, CHECK_FAIL, "capacity",
			       "give the destination a disk with the source's sector size",
			       "sector sizes differ: %s has %u-byte sectors, %s has %u; partition "
			       "tables would not fit",
			       s->path[i], s->lsec[i], x->name, x->lsec);
		} else {
			ck_say(c, CHECK_PASS, "capacity", NULL, "%s -> %s: %s fits in %s", s->path[i],
			       x->name, fmt_bytes(s->size[i], b, sizeof(b)),
			       fmt_bytes(x->size, a, sizeof(a)));
		}
	}
}

static void check_destination(struct ck *c, const struct srcs *s)
{
	static struct agent_conn ac;
	static struct proto_inventory inv;
	const struct agent_target *t = c->o->target;
	char err[AGENT_ERR_MAX], disks[300] = "", who[120], a[32];
	uint32_t k;
	int r;

	if ((r = agent_connect(t, &ac, &inv, err, sizeof(err)))) {
		connect_failed(c, t, r, err);
		return;
	}
	for (k = 0; k < inv.ndisks; k++)
		ck_append(disks, sizeof(disks), "%s%s %s", k ? ", " : "", inv.disks[k].name,
		          fmt_bytes(inv.disks[k].size, a, sizeof(a)));
	ck_say(c, CHECK_PASS, "destination", NULL,
	       "%s: TLS handshake and token valid; %s, protocol %u, state \"%s\", %u disk%s%s%s",
	       t->text, inv.server, inv.version, inv.state, inv.ndisks, inv.ndisks == 1 ? "" : "s",
	       inv.ndisks ? ": " : "", disks);
	snprintf(who, sizeof(who), "the destination %s", t->text);
	check_skew(c, inv.time_unix, who);
	check_capacity(c, s, &inv);
	agent_bye(&ac);
}

/* ---- running them ---------------------------------------------------------------- */

static int run_checks(const struct check_opts *o, const struct env *e, struct check_result *r)
{
	static struct srcs s;
	struct ck c = {o, r, e};
	char line[CHECK_LINE_MAX];
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&s, 0, sizeof(s));
	if ((rc = parse_specs(o, &s)))
		return rc;
	s.files_only = s.n > 0;
	for (i = 0; i < s.n; i++) {
		struct stat st;

		if (stat(s.path[i], &st) || !S_ISREG(st.st_mode) || access(s.path[i], R_OK))
			s.files_only = 0;
	}
	check_root(&c, s.files_only);
	check_clock(&c);
	check_memory(&c);
	check_selinux(&c);
	check_disks(&c, &s);
	ck_virtio(&c);
	if (o->target)
		check_destination(&c, &s);
	if (o->out) {
		check_format_summary(r, o->json, line, sizeof(line));
		fprintf(o->out, "%s\n", line);
		fflush(o->out);
	}
	return 0;
}

int check_run(const struct check_opts *o, struct check_result *r)
{
	struct utsname u;
	struct env e;

	memset(&u, 0, sizeof(u));
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	e.root = "";
	e.release = u.release;
	e.euid = geteuid();
	e.now = time(NULL);
	return run_checks(o, &e, r);
}

int cmd_check(int argc, char **argv)
{
	static struct check_result res;
	static struct agent_target t;
	static struct agent_opts ao;
	struct check_opts o;
	char err[AGENT_ERR_MAX];
	int r;

	if ((r = agent_opts_parse(AGENT_CMD_CHECK, argc, argv, &ao)))
		return r > 0 ? AGENT_EXIT_OK : AGENT_EXIT_USAGE;
	memset(&t, 0, sizeof(t));
	if (!ao.to && (ao.token || ao.token_file || ao.proxy)) {
		fprintf(stderr, "ferry: check: --%s needs --to HOST[:PORT]\n",
			ao.proxy ? "proxy" : "token");
		return AGENT_EXIT_USAGE;
	}
	/* The destination as migrate reaches it: --proxy, or https_proxy
	 * unless no_proxy names it. */
	if (ao.to && (agent_parse_target(ao.to, NULL, ao.proxy, &t, err, sizeof(err)) ||
		      agent_load_token(ao.token, ao.token_file, &t.token, err, sizeof(err)))) {
		fprintf(stderr, "ferry: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	memset(&o, 0, sizeof(o));
	o.target = ao.to ? &t : NULL;
	o.disks = ao.disks;
	o.ndisks = ao.ndisks;
	o.out = stdout;
	o.json = ao.json;
	r = check_run(&o, &res);
	mem_wipe(&t.token, sizeof(t.token));
	if (r == -EINVAL) {
		fprintf(stderr, "ferry: --disk: want SRC or SRC=DST (e.g. /dev/sda=vdb)\n");
		return AGENT_EXIT_USAGE;
	}
	return r ? AGENT_EXIT_FAIL : check_exit_code(&res);
}
