/*
 * finish.c - the end of a migration on the destination: everything
 * flushed, the partition table fixed for the real disk size (the GPT
 * backup moved to the end, the last partition grown if asked), the first
 * MiB written last, the filesystem (or LVM PV) grown, and a report of whether the
 * result can boot. Every step says what it did in the report. Also the
 * other end, `clean`: an unfinished migration dropped, its disks wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockmap/blockmap.h"
#include "boot/boot.h"
#include "common/common.h"
#include "disk/ptable.h"
#include "init.h"
#include "receive.h"

#define FSCK_MS (30 * 60 * 1000)

static uint8_t backup[GPT_BACKUP_MAX];
static struct boot_report boot_rep;

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* e2fsck and resize2fs from the rootfs (or the host's PATH in host mode),
 * pointed at the partition with libext2fs' "?offset=" syntax on a block
 * device, so neither partition devices nor a re-read of the table are
 * needed. Output (both streams) into out. */
static int run_tool_argv(const char *const *argv, char *out, size_t cap)
{
	int p[2], st = 0;
	size_t got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin", 0);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -errno;
	}
	for (;;) {
		char junk[512];
		ssize_t n = read(p[0], got + 1 < cap ? out + got : junk,
				 got + 1 < cap ? cap - 1 - got : sizeof(junk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got + 1 < cap)
			got += (size_t)n;
	}
	out[got] = 0;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_tool(const char *tool, const char *a1, const char *a2, const char *a3,
		    const char *a4, char *out, size_t cap)
{
	const char *argv[] = { tool, a1, a2, a3, a4, NULL };

	return run_tool_argv(argv, out, cap);
}

static const char *last_line(char *s)
{
	size_t n = strlen(s);
	char *p;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
	p = strrchr(s, '\n');
	return p ? p + 1 : s;
}

/* The grown partition, for bm_lvm_grow: offsets from its start. */
struct part_io {
	int fd;
	uint64_t start;
};

static int part_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct part_io *p = ctx;
	uint8_t *b = buf;

	while (len > 0) {
		ssize_t n = pread(p->fd, b, len, (off_t)(p->start + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int part_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	const struct part_io *p = ctx;

	return pwrite_all(p->fd, buf, len, p->start + off);
}

static int part_sync(void *ctx)
{
	const struct part_io *p = ctx;

	return fdatasync(p->fd) < 0 ? -errno : 0;
}

/*
 * An LVM PV in the grown partition: the PV takes the new space (free
 * extents); its LVs and their filesystems are left as they were. 1 if
 * it was a PV (reported either way), 0 if not.
 */
static int grow_pv(struct recv_disk *d, uint32_t part, uint64_t start, uint64_t bytes,
		   struct proto_report *r)
{
	struct part_io p = { d->fd, start };
	struct bm_pv_io io = { part_read, part_write, part_sync, &p };
	struct bm_pv_grown g;
	char err[256] = "", a[32], b[32];
	int rc = bm_lvm_grow(&io, bytes, &g, err, sizeof(err));

	if (rc == -ENOENT)
		return 0;
	if (rc == 1)
		proto_report_add(r, PROTO_PASS,
				 "%s: partition %u's LVM PV (VG %s) grown from %llu to %llu extents "
				 "of %s (%s free for LVs); LVs untouched, grow them from the "
				 "migrated system (lvextend -r)",
				 d->name, part, g.vg, (unsigned long long)g.old_extents,
				 (unsigned long long)g.new_extents,
				 fmt_bytes(g.extent_size, a, sizeof(a)),
				 fmt_bytes((g.new_extents - g.old_extents) * g.extent_size, b,
					   sizeof(b)));
	else if (rc == 0)
		proto_report_add(r, PROTO_PASS, "%s: partition %u's LVM PV (VG %s) already fills it",
				 d->name, part, g.vg);
	else
		proto_report_add(r, PROTO_WARN,
				 "%s: partition %u grown to %s; its LVM PV not: %s", d->name, part,
				 fmt_bytes(bytes, a, sizeof(a)), rc == -EUCLEAN ? err : strerror(-rc));
	return 1;
}

static void grow_fs(struct recv_disk *d, uint32_t part, uint64_t start, uint64_t bytes,
		    struct proto_report *r)
{
	char dev[300], size[32], out[4096], sz[32], loopdev[300] = "";
	uint8_t sb[2];
	int rc;

	if (grow_pv(d, part, start, bytes, r))
		return;

	/* Only ext2/3/4 can be grown here: its magic sits at 1024 + 56. */
	if (pread(d->fd, sb, 2, (off_t)(start + 1080)) != 2 || sb[0] != 0x53 || sb[1] != 0xef) {
		proto_report_add(r, PROTO_WARN,
				 "%s: partition %u grown to %s; its filesystem is not ext2/3/4, "
				 "grow it from the migrated system", d->name, part,
				 fmt_bytes(bytes, sz, sizeof(sz)));
		return;
	}
	snprintf(size, sizeof(size), "%lluK", (unsigned long long)(bytes / 1024));
	if (d->is_blk) {
		snprintf(dev, sizeof(dev), "%s?offset=%llu", d->path, (unsigned long long)start);
	} else {
		/* resize2fs truncates a regular file to the filesystem's size
		 * whatever the offset: a file-backed disk (host mode) goes
		 * through a loop device over the partition instead. */
		char off[32], lim[32];

		snprintf(off, sizeof(off), "%llu", (unsigned long long)start);
		snprintf(lim, sizeof(lim), "%llu", (unsigned long long)bytes);
		rc = run_tool_argv((const char *[]){ "losetup", "-f", "--show", "-o", off,
						     "--sizelimit", lim, d->path, NULL },
				   out, sizeof(out));
		if (rc != 0 || strncmp(out, "/dev/loop", 9)) {
			proto_report_add(r, PROTO_WARN,
					 "%s: partition %u grown to %s; its filesystem not (a file-backed "
					 "disk needs a loop device: %s)", d->name, part,
					 fmt_bytes(bytes, sz, sizeof(sz)), last_line(out));
			return;
		}
		snprintf(dev, sizeof(dev), "%s", last_line(out));
		snprintf(loopdev, sizeof(loopdev), "%s", dev);
	}
	log_info("%s: checking partition %u before growing it (e2fsck -fy)", d->name, part);
	rc = run_tool("e2fsck", "-fy", dev, NULL, NULL, out, sizeof(out));
	/* 0: clean, 1: errors fixed; anything else: do not resize. */
	if (rc > 1) {
		proto_report_add(r, PROTO_FAIL, "%s: e2fsck of partition %u failed (exit %d): %s",
				 d->name, part, rc, last_line(out));
		goto out;
	}
	rc = run_tool("resize2fs", dev, size, NULL, NULL, out, sizeof(out));
	if (rc != 0)
		proto_report_add(r, PROTO_FAIL, "%s: resize2fs of partition %u failed (exit %d): %s",
				 d->name, part, rc, last_line(out));
	else
		proto_report_add(r, PROTO_PASS, "%s: partition %u and its ext filesystem grown to %s",
				 d->name, part, fmt_bytes(bytes, sz, sizeof(sz)));
out:
	if (loopdev[0])
		run_tool("losetup", "-d", loopdev, NULL, NULL, out, sizeof(out));
}

/* Fixes the table in the held first MiB; writes the GPT backup. */
static int fix_table(struct recv_disk *d, int grow, struct proto_report *r,
		     uint32_t *gpart, uint64_t *gstart, uint64_t *gbytes)
{
	char err[PTABLE_ERR_LEN], a[64], b[32];
	enum ptable_kind kind;
	int ret;

	*gpart = 0;
	if (ptable_detect(d->head, d->head_len, d->lsec, &kind, err, sizeof(err))) {
		proto_report_add(r, PROTO_WARN, "%s: partition table not understood (%s); left as sent",
				 d->name, err);
		return 0;
	}
	/* Every GPT: on a disk of the same size this changes nothing, and it
	 * also repairs a source whose backup was not at its end. */
	if (kind == PTABLE_GPT) {
		struct gpt_reloc g;
		uint8_t zero[4096];

		ret = gpt_relocate(d->head, d->head_len, d->lsec, d->dst_size,
				   grow ? GPT_GROW_LAST : 0, backup, sizeof(backup), &g, err,
				   sizeof(err));
		if (ret) {
			proto_report_add(r, PROTO_FAIL, "%s: GPT not moved to the end of the disk: %s",
					 d->name, err);
			return ret;
		}
		if ((ret = pwrite_all(d->fd, backup, g.backup_len, g.backup_off))) {
			proto_report_add(r, PROTO_FAIL, "%s: writing the GPT backup at offset %llu "
					 "failed: %s", d->name, (unsigned long long)g.backup_off,
					 err_text(-ret, a, sizeof(a)));
			return ret;
		}
		/* The copied backup header in the middle is stale now. */
		memset(zero, 0, sizeof(zero));
		if (g.old_alt_lba != g.last_lba && d->lsec <= sizeof(zero) &&
		    (g.old_alt_lba + 1) * d->lsec <= d->dst_size &&
		    g.old_alt_lba * d->lsec >= d->head_len &&
		    g.old_alt_lba * d->lsec < g.backup_off)
			pwrite_all(d->fd, zero, d->lsec, g.old_alt_lba * d->lsec);
		if (fdatasync(d->fd) < 0) {
			ret = -errno;
			proto_report_add(r, PROTO_FAIL, "%s: flushing the GPT backup at offset %llu "
					 "failed: %s", d->name, (unsigned long long)g.backup_off,
					 err_text(-ret, a, sizeof(a)));
			return ret;
		}
		if (g.old_alt_lba != g.last_lba)
			proto_report_add(r, PROTO_PASS,
					 "%s: GPT backup moved to the end of the %s disk (last LBA %llu)",
					 d->name, fmt_bytes(d->dst_size, a, sizeof(a)),
					 (unsigned long long)g.last_lba);
		if (grow && g.grown) {
			*gpart = g.grown;
			*gstart = g.grown_start_lba * d->lsec;
			*gbytes = g.grown_new_bytes;
			proto_report_add(r, PROTO_PASS, "%s: partition %u grown from %s to %s",
					 d->name, g.grown, fmt_bytes(g.grown_old_bytes, a, sizeof(a)),
					 fmt_bytes(g.grown_new_bytes, b, sizeof(b)));
		} else if (grow) {
			proto_report_add(r, PROTO_PASS, "%s: the last partition already fills the disk",
					 d->name);
		}
	} else if (kind == PTABLE_MBR && grow) {
		struct mbr_grow g;

		if (mbr_grow_last(d->head, d->head_len, d->lsec, d->dst_size, &g, err, sizeof(err))) {
			proto_report_add(r, PROTO_WARN, "%s: not grown: %s", d->name, err);
			return 0;
		}
		if (g.grown) {
			*gpart = g.grown;
			*gstart = g.start_lba * d->lsec;
			*gbytes = g.new_bytes;
			proto_report_add(r, PROTO_PASS, "%s: partition %u grown from %s to %s",
					 d->name, g.grown, fmt_bytes(g.old_bytes, a, sizeof(a)),
					 fmt_bytes(g.new_bytes, b, sizeof(b)));
		}
	} else if (kind == PTABLE_NONE && grow) {
		proto_report_add(r, PROTO_WARN, "%s: no partition table: nothing to grow", d->name);
	}
	return 0;
}

static int write_head(struct recv_disk *d, struct proto_report *r)
{
	int ret = pwrite_all(d->fd, d->head, d->head_len, 0);
	char e[64];

	if (ret || fdatasync(d->fd) < 0) {
		proto_report_add(r, PROTO_FAIL, "%s: writing the first MiB (offsets 0 to %llu) "
				 "failed: %s", d->name, (unsigned long long)d->head_len,
				 err_text(ret ? -ret : errno, e, sizeof(e)));
		return -EIO;
	}
	return 0;
}

static void readiness(struct recv_state *st, struct proto_report *r)
{
	char specs[PROTO_MAX_DISKS][300];
	const char *v[PROTO_MAX_DISKS];
	size_t i;

	for (i = 0; i < st->ndisks; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%s=%s", st->d[i].name, st->d[i].path);
		v[i] = specs[i];
	}
	memset(&boot_rep, 0, sizeof(boot_rep));
	if (boot_inspect(v, st->ndisks, &boot_rep)) {
		proto_report_add(r, PROTO_WARN, "boot-readiness could not be checked");
		return;
	}
	for (i = 0; i < boot_rep.n; i++)
		proto_report_add(r, (uint8_t)boot_rep.line[i].level, "%s", boot_rep.line[i].text);
	if (boot_rep.dropped)
		proto_report_add(r, (uint8_t)boot_rep.verdict, "(%zu more lines not shown)",
				 boot_rep.dropped);
}

int recv_finish(struct recv_state *st, const struct proto_finish *fin, struct proto_report *r)
{
	char err[PROTO_TEXT_MAX], a[32], b[32];
	int grow = (fin->flags & PROTO_PLAN_GROW) != 0;
	uint32_t i;
	int ret = 0;

	static const struct proto_flush none;

	/* Durable before the fix-ups; nothing new recorded. */
	if (recv_flush(st, &none, err, sizeof(err))) {
		proto_report_add(r, PROTO_FAIL, "%s", err);
		return -EIO;
	}
	for (i = 0; i < st->ndisks; i++) {
		struct recv_disk *d = &st->d[i];
		uint32_t gpart = 0;
		uint64_t gstart = 0, gbytes = 0;

		if (fix_table(d, grow, r, &gpart, &gstart, &gbytes) || write_head(d, r)) {
			ret = -EIO;
			continue;
		}
		proto_report_add(r, PROTO_PASS, "%s: %s written and flushed, first MiB last (disk %s)",
				 d->name, fmt_bytes(d->written, a, sizeof(a)),
				 fmt_bytes(d->dst_size, b, sizeof(b)));
		if (gpart)
			grow_fs(d, gpart, gstart, gbytes, r);
	}
	/* Not a failure of this disk, but never to be mistaken for a copy. */
	if (fin->nzeroed && fin->zfirst.disk < st->ndisks) {
		proto_report_add(r, PROTO_WARN, "the copy is not exact: %s of the source in %u "
				 "range(s) could not be read and was written as zeros, the first at "
				 "%s bytes %llu to %llu; the agent's summary lists every range",
				 fmt_bytes(fin->zeroed, a, sizeof(a)), fin->nzeroed,
				 st->d[fin->zfirst.disk].name, (unsigned long long)fin->zfirst.off,
				 (unsigned long long)fin->zfirst.end);
		result_line("FERRY INEXACT zeroed=%llu ranges=%u", (unsigned long long)fin->zeroed,
			    fin->nzeroed);
	}
	if (ret == 0 && (fin->flags & PROTO_ADAPT_ON)) {
		static struct adapt_req q;

		memset(&q, 0, sizeof(q));
		q.dry = (fin->flags & PROTO_ADAPT_DRY) != 0;
		q.force = (fin->flags & PROTO_ADAPT_FORCE) != 0;
		q.keep_ip = (fin->flags & PROTO_ADAPT_KEEP_IP) != 0;
		if (fin->flags & PROTO_ADAPT_IP)
			q.ip = fin->ip;
		q.live = st->live;
		q.n = st->ndisks;
		for (i = 0; i < st->ndisks; i++) {
			snprintf(q.d[i].name, sizeof(q.d[i].name), "%s", st->d[i].name);
			snprintf(q.d[i].path, sizeof(q.d[i].path), "%s", st->d[i].path);
			snprintf(q.d[i].old, sizeof(q.d[i].old), "%s", st->d[i].src);
		}
		if (adapt_run(&q, r) < 0)
			proto_report_add(r, PROTO_FAIL, "adapt: could not run");
	} else if (ret == 0) {
		readiness(st, r);
	}
	return ret;
}

/*
 * Clean: the session in progress is dropped; with wipe, every disk of it -
 * or, when none is held (a new boot), every disk carrying the in-progress
 * mark - gets its first and last MiB zeroed, so it reads as blank rather
 * than broken. A disk without the mark is never touched.
 */
void clean_disks(const struct serve_config *cfg, const struct recv_state *held_st, int wipe,
		 struct proto_report *r)
{
	size_t i, done = 0;

	for (i = 0; i < cfg->ndisks; i++) {
		const struct disk_info *d = &cfg->disks[i];
		char sess[32] = "";
		int fd, mine = 0, r2;
		uint32_t k;

		for (k = 0; held_st && k < held_st->ndisks; k++)
			if (!strcmp(held_st->d[k].name, d->name))
				mine = 1;
		fd = open(d->path, (wipe ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd < 0) {
			proto_report_add(r, PROTO_WARN, "%s: %s", d->name, strerror(errno));
			continue;
		}
		if (!recv_marked(fd, sess, sizeof(sess)) && !mine) {
			close(fd);
			continue;
		}
		done++;
		if (!wipe) {
			proto_report_add(r, PROTO_PASS, "%s: unfinished migration (session %s) aborted; "
					 "the disk is left as it is (no partition table)", d->name,
					 sess[0] ? sess : "?");
		} else if ((r2 = recv_wipe(fd, d->size))) {
			proto_report_add(r, PROTO_FAIL, "%s: wiping: %s", d->name, strerror(-r2));
		} else {
			proto_report_add(r, PROTO_PASS, "%s: unfinished migration (session %s) wiped: "
					 "first and last MiB blanked, the disk reads as empty",
					 d->name, sess[0] ? sess : "?");
			result_line("FERRY CLEAN wiped=%s", d->name);
		}
		close(fd);
	}
	if (!done)
		proto_report_add(r, PROTO_PASS, "no unfinished migration on this destination; "
				 "no disk touched");
}
