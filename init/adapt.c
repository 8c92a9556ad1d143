/*
 * adapt.c - the adapt phase: after the copy (or on a disk migrated
 * before), make the migrated system boot on this machine. In a child
 * with a mount namespace of its own (so nothing stays mounted, on the
 * host either), it mounts the migrated root, its /usr, /var, /boot and
 * /boot/efi from its own fstab, then rewrites device paths to UUIDs,
 * detaches the network configuration from the old NIC (adapt_net.c),
 * resets cloud-init, and in a chroot runs the system's own tools:
 * update-initramfs, dracut or mkinitrd when a kernel's initramfs lacks a
 * virtio or NVMe driver, grub-mkconfig when grub.cfg named old devices,
 * grub-install when the BIOS boot disk changed its name. Every change is
 * a report line and every edited file keeps its first original as
 * FILE.ferry-orig; an initramfs is restored from it when its tool fails.
 * adapt_fs.c opens the root's files, adapt_map.c maps old device names,
 * adapt_fix.c and adapt_net.c are the steps.
 * A dry run mounts read-only, runs nothing and changes nothing. It never
 * touches the source, and never a disk the caller did not name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapt/adapt.h"
#include "adapt_phase.h"
#include "boot/boot.h"
#include "common/common.h"
#include "init.h"

#define TOOL_MS	 (30 * 60 * 1000) /* an initramfs under TCG takes minutes */
#define TAIL_MAX 240

static char inbuf[ADAPT_TEXT_MAX + 2];
static char outbuf[ADAPT_OUT_MAX];

/* ---- report ----------------------------------------------------------------- */

void ax_say(struct ax *x, uint8_t level, const char *fmt, ...)
{
	char line[PROTO_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	proto_report_add(x->r, level, "adapt%s: %s", x->dry ? " (dry run)" : "", line);
	if (level == PROTO_FAIL)
		log_error("adapt: %s", line);
	else
		log_info("adapt: %s", line);
	if (x->logfd >= 0)
		dprintf(x->logfd, "%s %s\n",
			level == PROTO_PASS   ? "PASS"
			: level == PROTO_WARN ? "WARN"
					      : "FAIL",
			line);
}

/* The notes of one edit: a few in the report, all in the log. */
static void say_notes(struct ax *x, const char *path, const struct adapt_notes *nt)
{
	size_t i;

	for (i = 0; i < nt->n; i++) {
		if (i < 4)
			ax_say(x, PROTO_PASS, "%s: %s", path, nt->note[i]);
		else if (x->logfd >= 0)
			dprintf(x->logfd, "PASS %s: %s\n", path, nt->note[i]);
	}
	if (nt->n > 4 || nt->dropped)
		ax_say(x, PROTO_PASS, "%s: %zu more change(s)%s", path, nt->n - 4 + nt->dropped,
		       x->dry ? "" : " (all in /var/log/ferry-adapt.log)");
}

/* ---- editing files of the migrated root ------------------------------------------- */

int ax_edit(struct ax *x, const char *rel, ax_rewrite_fn fn, void *arg, const char *why)
{
	struct adapt_notes *nt = &x->notes;
	struct adapt_buf out;
	struct stat st;
	size_t len;
	int r;

	r = ax_read_rel(x, rel, inbuf, sizeof(inbuf), &len, &st);
	if (r == -ENOENT || r == -ENOTDIR)
		return 0;
	if (r) {
		ax_say(x, PROTO_WARN, "%s: not read (%s); left as it is", rel,
		       r == -EFBIG    ? "larger than 256 KiB"
		       : r == -EINVAL ? "not a regular file"
				      : strerror(-r));
		return 0;
	}
	memset(nt, 0, sizeof(*nt));
	adapt_buf_init(&out, outbuf, sizeof(outbuf));
	r = fn(x, arg, inbuf, len, &out, nt);
	if (r < 0) {
		ax_say(x, PROTO_WARN, "%s: not rewritten (%s); left as it is", rel,
		       nt->why[0] ? nt->why : strerror(-r));
		return 0;
	}
	if (r == 0 || (out.len == len && !memcmp(out.p, inbuf, len)))
		return 0;
	if (!x->dry) {
		if ((r = ax_keep_orig(x, rel, inbuf, len, &st)) ||
		    (r = ax_write_rel(x, rel, out.p, out.len, &st))) {
			ax_say(x, PROTO_FAIL, "%s: cannot write: %s", rel, strerror(-r));
			return -EIO;
		}
	}
	say_notes(x, rel, nt);
	if (why) {
		char orel[PATH_MAX];

		ax_orig_rel(rel, orel, sizeof(orel));
		ax_say(x, PROTO_PASS, "%s: %s%s%s", rel, why,
		       x->dry ? "" : "; the original is kept as ", x->dry ? "" : orel);
	}
	return 1;
}

/* ---- mounts -------------------------------------------------------------------- */

static int do_mount(struct ax *x, const char *src, const char *dir, const char *type,
		    unsigned long flags, const char *data)
{
	if (mount(src, dir, type, flags | (x->dry ? MS_RDONLY : 0), data) < 0)
		return -errno;
	if (x->nmounts < AX_MOUNTS_MAX)
		snprintf(x->mounts[x->nmounts++], sizeof(x->mounts[0]), "%s", dir);
	return 0;
}

static void unmount_all(struct ax *x)
{
	sync();
	while (x->nmounts > 0) {
		const char *m = x->mounts[--x->nmounts];

		if (umount2(m, 0) < 0 && umount2(m, MNT_DETACH) < 0)
			log_errno(-errno, "adapt: unmounting %s", m);
	}
}

/* A loop device over part of a disk image (host mode) or a disk whose
 * partitions the kernel does not show. It goes away with its last user
 * (LO_FLAGS_AUTOCLEAR); the fd is held until the mount holds it. */
static int loop_over(struct ax *x, const char *file, uint64_t off, uint64_t size, char *dev,
		     size_t cap)
{
	struct loop_info64 li;
	int ctl, n, lfd = -1, ffd = -1, r;

	if (x->nloops >= AX_LOOPS_MAX)
		return -EMFILE;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -errno;
	snprintf(dev, cap, "/dev/loop%d", n);
	ffd = open(file, (x->dry ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	lfd = open(dev, (x->dry ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (ffd < 0 || lfd < 0) {
		r = -errno;
		goto out;
	}
	if (ioctl(lfd, LOOP_SET_FD, ffd) < 0) {
		r = -errno;
		goto out;
	}
	memset(&li, 0, sizeof(li));
	li.lo_offset = off;
	li.lo_sizelimit = size;
	li.lo_flags = LO_FLAGS_AUTOCLEAR | (x->dry ? LO_FLAGS_READ_ONLY : 0);
	if (ioctl(lfd, LOOP_SET_STATUS64, &li) < 0) {
		r = -errno;
		ioctl(lfd, LOOP_CLR_FD, 0);
		goto out;
	}
	x->loops[x->nloops++] = lfd;
	lfd = -1;
	r = 0;
out:
	if (ffd >= 0)
		close(ffd);
	if (lfd >= 0)
		close(lfd);
	return r;
}

static int is_blk(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISBLK(st.st_mode);
}

/* The block device of a partition: the kernel's (after a re-read of
 * the table the receiver just wrote), else a loop device. */
int ax_voldev(struct ax *x, int v, char *dev, size_t cap)
{
	const struct boot_layout_vol *vol = &x->lay->vol[v];
	const char *disk = x->lay->disk[vol->disk].path;
	int i, r;

	if (x->voldev[v][0]) {
		snprintf(dev, cap, "%s", x->voldev[v]);
		return 0;
	}
	if (vol->number < 0) {
		/* An LV in host mode: its one run of extents (adapt_lvm.c). */
		if ((r = loop_over(x, disk, vol->start, vol->size, dev, cap)))
			return r;
	} else if (vol->number == 0 && is_blk(disk)) {
		snprintf(dev, cap, "%s", disk);
	} else if (is_blk(disk)) {
		snprintf(dev, cap, "/dev/%s", vol->name);
		if (!is_blk(dev)) {
			int fd = open(disk, O_RDONLY | O_CLOEXEC);

			if (fd >= 0) {
				ioctl(fd, BLKRRPART);
				close(fd);
			}
			/* devtmpfs creates the nodes shortly after. */
			for (i = 0; i < 30 && !is_blk(dev); i++)
				usleep(100 * 1000);
		}
		if (!is_blk(dev) && (r = loop_over(x, disk, vol->start, vol->size, dev, cap)))
			return r;
	} else if ((r = loop_over(x, disk, vol->start, vol->size, dev, cap))) {
		return r;
	}
	snprintf(x->voldev[v], sizeof(x->voldev[v]), "%s", dev);
	return 0;
}

/* Options that keep a read-only mount from writing (journal replay). */
static const char *ro_opts(const char *fs)
{
	if (!strncmp(fs, "ext", 3))
		return "noload";
	if (!strcmp(fs, "xfs"))
		return "norecovery";
	if (!strcmp(fs, "btrfs"))
		return "rescue=nologreplay";
	return NULL;
}

/* The real path of the directory rel in the root (symlinks resolved in
 * the root, as the migrated system sees it), for mount(2). */
static int real_dir(struct ax *x, const char *rel, char *out, size_t cap)
{
	char fdp[32];
	ssize_t n;
	int fd = ax_open(x, rel, O_PATH | O_DIRECTORY, 0);

	if (fd == -ENOENT && !x->dry && !ax_mkdirs(x, rel))
		fd = ax_open(x, rel, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", fd);
	n = readlink(fdp, out, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	if ((size_t)n >= cap - 1)
		return -ENAMETOOLONG;
	out[n] = 0;
	return 0;
}

int ax_mount_vol(struct ax *x, int v, const char *dir, const char *extra)
{
	const struct boot_layout_vol *vol = &x->lay->vol[v];
	char dev[AX_DEV_MAX], data[160];
	const char *ro = x->dry ? ro_opts(vol->fs) : NULL;
	int r;

	if ((r = ax_voldev(x, v, dev, sizeof(dev))))
		return r;
	snprintf(data, sizeof(data), "%s%s%s", ro ? ro : "", ro && extra ? "," : "",
		 extra ? extra : "");
	return do_mount(x, dev, dir, vol->fs, 0, data[0] ? data : NULL);
}

/* ---- the root ---------------------------------------------------------------------- */

/* rel exists under dir, resolved as if dir were the root. */
static int has(const char *dir, const char *rel)
{
	int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;

	if (d < 0)
		return 0;
	fd = ax_openat_in(d, rel, O_PATH, 0);
	close(d);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int root_score(const char *dir)
{
	static const char *const inits[] = {"/sbin/init", "/lib/systemd/systemd",
					    "/usr/lib/systemd/systemd", NULL};
	int i;

	if (!has(dir, "/etc/fstab"))
		return 0;
	for (i = 0; inits[i]; i++)
		if (has(dir, inits[i]))
			return 2;
	return 1;
}

/* The root: the ext one src/boot found, else any xfs/btrfs/ext volume
 * that holds /etc/fstab and an init (btrfs: at the top or in a
 * subvolume named as installers name them). */
static int find_root(struct ax *x, char *subvol, size_t cap)
{
	static const char *const subs[] = {"@", "root", "@root", "@rootfs", NULL};
	char probe[PATH_MAX], d[PATH_MAX];
	int best = -1, best_score = 0, v, s, i;
	size_t n0;

	subvol[0] = 0;
	if (x->lay->root >= 0)
		return x->lay->root;
	snprintf(probe, sizeof(probe), "%s/probe", x->work);
	mkdir(probe, 0700);
	for (v = 0; v < (int)x->lay->nvol; v++) {
		const char *fs = x->lay->vol[v].fs;
		char dev[AX_DEV_MAX], sv[32] = "";

		if (strcmp(fs, "xfs") && strcmp(fs, "btrfs") && strncmp(fs, "ext", 3))
			continue;
		if (ax_voldev(x, v, dev, sizeof(dev)) ||
		    mount(dev, probe, fs, MS_RDONLY, ro_opts(fs)) < 0)
			continue;
		n0 = x->nmounts;
		s = root_score(probe);
		for (i = 0; !s && !strcmp(fs, "btrfs") && subs[i]; i++) {
			if (snprintf(d, sizeof(d), "%s/%s", probe, subs[i]) >= (int)sizeof(d))
				continue;
			if ((s = root_score(d)))
				snprintf(sv, sizeof(sv), "%s", subs[i]);
		}
		umount2(probe, MNT_DETACH);
		x->nmounts = n0;
		if (s > best_score) {
			best = v;
			best_score = s;
			snprintf(subvol, cap, "%s", sv);
		}
	}
	return best;
}

/* ---- running the system's own tools --------------------------------------------------- */

/*
 * /dev/disk/by-uuid, by-partuuid and by-label as udev would make them:
 * grub-mkconfig writes root=UUID= only when /dev/disk/by-uuid/UUID
 * exists, dracut and the initramfs tools look there too. devtmpfs is one
 * instance for all its mounts, so the live environment's /dev gets them
 * as well (never done in host mode: the host's udev owns its /dev).
 */
static void disk_links(struct ax *x)
{
	static const char *const dirs[] = {"disk", "disk/by-uuid", "disk/by-partuuid",
					   "disk/by-label"};
	char target[96];
	size_t i, k;
	int dev = ax_open(x, "/dev", O_PATH | O_DIRECTORY, 0), d[4];

	if (dev < 0)
		return;
	for (k = 0; k < 4; k++) {
		mkdirat(dev, dirs[k], 0755);
		d[k] = openat(dev, dirs[k], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	for (i = 0; i < x->lay->nvol; i++) {
		const struct boot_layout_vol *v = &x->lay->vol[i];
		const char *names[4] = {NULL, v->uuid, v->partuuid, v->label};
		char dn[72];

		const char *node = ax_lvm_node(x, (int)i);

		snprintf(dn, sizeof(dn), "/dev/%s", node ? node : v->name);
		if (!is_blk(dn) || !strcmp(v->fs, "LVM2_member") || !strcmp(v->fs, "crypto_LUKS"))
			continue;
		snprintf(target, sizeof(target), "../../%s", node ? node : v->name);
		for (k = 1; k < 4; k++)
			if (d[k] >= 0 && names[k][0] && !strchr(names[k], '/') &&
			    names[k][0] != '.')
				symlinkat(target, d[k], names[k]);
	}
	for (k = 0; k < 4; k++)
		if (d[k] >= 0)
			close(d[k]);
	close(dev);
}

/* /proc, /sys, /dev, /dev/pts and /run inside the root, once. */
static int chroot_ready(struct ax *x)
{
	static const struct {
		const char *rel, *type, *data;
	} pm[] = {{"/proc", "proc", NULL},
		  {"/sys", "sysfs", NULL},
		  {"/dev", "devtmpfs", NULL},
		  {"/dev/pts", "devpts", "newinstance,ptmxmode=0666"},
		  {"/run", "tmpfs", "mode=0755"}};
	char p[PATH_MAX];
	size_t i;
	int r;

	if (x->pseudo)
		return 0;
	for (i = 0; i < FERRY_ARRAY_LEN(pm); i++) {
		if ((r = real_dir(x, pm[i].rel, p, sizeof(p))) ||
		    (r = do_mount(x, pm[i].type, p, pm[i].type, MS_NOSUID, pm[i].data))) {
			ax_say(x, PROTO_FAIL, "cannot mount %s in the migrated root: %s", pm[i].rel,
			       strerror(-r));
			return r;
		}
	}
	if (x->live)
		disk_links(x);
	/* grub-install on UEFI wants the firmware's variables. */
	if (!access("/sys/firmware/efi/efivars", F_OK) &&
	    !real_dir(x, "/sys/firmware/efi/efivars", p, sizeof(p)))
		do_mount(x, "efivarfs", p, "efivarfs", MS_NOSUID, NULL);
	x->pseudo = 1;
	return 0;
}

int ax_tool(struct ax *x, const char *name, char *rel, size_t cap)
{
	static const char *const dirs[] = {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/", NULL};
	size_t i;

	for (i = 0; dirs[i]; i++) {
		struct stat st;
		int fd;

		snprintf(rel, cap, "%s%s", dirs[i], name);
		fd = ax_open(x, rel, O_PATH, 0);
		if (fd < 0)
			continue;
		if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
			close(fd);
			return 1;
		}
		close(fd);
	}
	rel[0] = 0;
	return 0;
}

/* Runs argv in the chroot with a clean environment, its output into the
 * log and the last line into tail. The exit status, 128+signal, or
 * -errno. */
int ax_run(struct ax *x, const char *const *argv, char *tail, size_t tailcap)
{
	char buf[4096], last[TAIL_MAX] = "";
	int p[2], st = 0, i, r;
	uint64_t t0 = time_now_ms();
	size_t ln = 0;
	pid_t pid;

	tail[0] = 0;
	if (x->dry)
		return -EROFS;
	if ((r = chroot_ready(x)))
		return r;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (x->logfd >= 0) {
		dprintf(x->logfd, "+");
		for (i = 0; argv[i]; i++)
			dprintf(x->logfd, " %s", argv[i]);
		dprintf(x->logfd, "\n");
	}
	log_info("adapt: running %s in the migrated system", argv[0]);
	pid = fork();
	if (pid == 0) {
		static char *const env[] = {
		    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		    "LANG=C",
		    "LC_ALL=C",
		    "HOME=/root",
		    "TERM=dumb",
		    "DEBIAN_FRONTEND=noninteractive",
		    NULL};
		int nul = open("/dev/null", O_RDONLY);

		setsid();
		if (nul >= 0)
			dup2(nul, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (chroot(x->root) < 0 || chdir("/") < 0)
			_exit(126);
		execve(argv[0], (char *const *)argv, env);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -errno;
	}
	for (;;) {
		struct pollfd pf = {p[0], POLLIN, 0};
		int left = (int)(TOOL_MS - (int64_t)(time_now_ms() - t0));
		ssize_t n;

		if (left <= 0) {
			kill(-pid, SIGKILL);
			ax_say(x, PROTO_FAIL, "%s: killed after %d minutes", argv[0],
			       TOOL_MS / 60000);
			break;
		}
		if (poll(&pf, 1, left) < 0 && errno != EINTR)
			break;
		n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (x->logfd >= 0)
			fd_write_all(x->logfd, buf, (size_t)n);
		/* Keep the last non-empty line for the report. */
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				if (ln) {
					last[ln] = 0;
					snprintf(tail, tailcap, "%s", last);
				}
				ln = 0;
			} else if (ln + 1 < sizeof(last)) {
				last[ln++] = buf[i] >= 0x20 ? buf[i] : ' ';
			}
		}
	}
	if (ln) {
		last[ln] = 0;
		snprintf(tail, tailcap, "%s", last);
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	log_info("adapt: %s exited %d after %.1f s", argv[0],
		 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
		 (double)(time_now_ms() - t0) / 1000);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the child: mount, adapt, unmount --------------------------------------------------- */

struct fsline {
	char spec[128], file[64], type[16], opts[160];
};

static int fstab_entry(const struct adapt_line *l, struct fsline *e)
{
	size_t a, b, i;
	char *dst[4] = {e->spec, e->file, e->type, e->opts};
	size_t caps[4] = {sizeof(e->spec), sizeof(e->file), sizeof(e->type), sizeof(e->opts)};

	memset(e, 0, sizeof(*e));
	if (adapt_is_comment(l))
		return 0;
	for (i = 0; i < 4; i++) {
		if (!adapt_field(l, (int)i, &a, &b))
			return i >= 2;
		if (b - a >= caps[i])
			return 0;
		memcpy(dst[i], l->s + a, b - a);
		dst[i][b - a] = 0;
	}
	return 1;
}

/* subvol=X from fstab options, for a btrfs mount. */
static void subvol_opt(const char *opts, char *out, size_t cap)
{
	const char *p = strstr(opts, "subvol=");

	out[0] = 0;
	if (p && (p == opts || p[-1] == ','))
		snprintf(out, cap, "subvol=%.*s", (int)strcspn(p + 7, ","), p + 7);
}

/* /usr, /var, /boot, /boot/efi and /efi from the root's own fstab. */
static void mount_fstab(struct ax *x, const char *fstab, size_t len)
{
	static const char *const want[] = {"/usr", "/var", "/boot", "/boot/efi", "/efi", NULL};
	struct adapt_line l;
	struct fsline e;
	char dir[PATH_MAX], sv[80];
	size_t pos, i;
	int v, r;

	for (i = 0; want[i]; i++) {
		pos = 0;
		while (adapt_next_line(fstab, len, &pos, &l)) {
			if (!fstab_entry(&l, &e) || strcmp(e.file, want[i]))
				continue;
			v = ax_vol_by_spec(x, e.spec);
			if (v < 0) {
				ax_say(
				    x, strstr(e.opts, "nofail") ? PROTO_WARN : PROTO_FAIL,
				    "fstab: %s (%s) is no filesystem on these disks; not mounted "
				    "for adapting (RAID and encrypted volumes are not)",
				    e.spec, e.file);
				break;
			}
			subvol_opt(e.opts, sv, sizeof(sv));
			if ((r = real_dir(x, e.file, dir, sizeof(dir))) ||
			    (r = ax_mount_vol(x, v, dir, sv[0] ? sv : NULL))) {
				ax_say(x, PROTO_FAIL, "cannot mount %s (%s, %s) at %s: %s",
				       x->lay->vol[v].name, e.spec, x->lay->vol[v].fs, e.file,
				       strerror(-r));
			} else {
				log_info("adapt: %s (%s) mounted at %s", x->lay->vol[v].name,
					 x->lay->vol[v].fs, e.file);
				if (!strcmp(e.file, "/boot"))
					x->boot_vol = v;
				else if (strcmp(e.file, "/usr") && strcmp(e.file, "/var")) {
					x->esp_vol = v;
					snprintf(x->esp_dir, sizeof(x->esp_dir), "%s", want[i]);
				}
			}
			break;
		}
	}
}

static void adapt_child(struct ax *x)
{
	char subvol[40], opts[64];
	size_t len;
	struct stat st;
	int root, r;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		ax_say(x, PROTO_FAIL, "no mount namespace of its own: %s", strerror(errno));
		return;
	}
	ax_lvm_open(x);
	root = find_root(x, subvol, sizeof(subvol));
	if (root < 0) {
		size_t i;
		int lvm = 0;

		for (i = 0; i < x->lay->nvol; i++)
			lvm |= !strcmp(x->lay->vol[i].fs, "LVM2_member") ||
			       !strcmp(x->lay->vol[i].fs, "crypto_LUKS");
		ax_say(x, PROTO_FAIL,
		       "no root filesystem (/etc/fstab and an init) on ext2/3/4, "
		       "xfs or btrfs%s",
		       lvm ? "; the root may be on LUKS (adapt cannot open it) or in an LV not "
			     "opened above"
			   : "");
		goto out;
	}
	snprintf(x->root, sizeof(x->root), "%s/root", x->work);
	mkdir(x->root, 0700);
	snprintf(opts, sizeof(opts), "%s%s", subvol[0] ? "subvol=" : "", subvol);
	if ((r = ax_mount_vol(x, root, x->root, opts[0] ? opts : NULL))) {
		ax_say(x, PROTO_FAIL, "cannot mount the root %s (%s): %s", x->lay->vol[root].name,
		       x->lay->vol[root].fs, strerror(-r));
		goto out;
	}
	x->root_vol = root;
	x->rootfd = open(x->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	log_info("adapt: root %s (%s%s%s) mounted%s", x->lay->vol[root].name, x->lay->vol[root].fs,
		 subvol[0] ? ", subvolume " : "", subvol, x->dry ? " read-only" : "");
	if ((r = ax_read_rel(x, "/etc/fstab", x->fstab, sizeof(x->fstab), &len, &st))) {
		ax_say(x, PROTO_FAIL, "%s:/etc/fstab cannot be read: %s", x->lay->vol[root].name,
		       strerror(-r));
		goto out;
	}
	x->fstab_len = len;
	ax_map_old_disks(x, x->fstab, x->fstab_len, root);
	mount_fstab(x, x->fstab, x->fstab_len);
	if (!x->dry) {
		x->logfd = ax_open(x, "/var/log/ferry-adapt.log",
				   O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
		if (x->logfd >= 0) {
			time_t now = time(NULL);
			char when[32];

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
			dprintf(x->logfd, "==== ferry adapt %s, %s\n", FERRY_VERSION, when);
		}
	}
	ax_fix_devices(x);
	ax_fix_network(x);
	ax_fix_cloudinit(x);
	ax_fix_initramfs(x);
	ax_fix_bootloader(x);
out:
	if (x->logfd >= 0) {
		fsync(x->logfd);
		close(x->logfd);
		x->logfd = -1;
	}
	if (x->rootfd >= 0)
		close(x->rootfd);
	x->rootfd = -1;
	unmount_all(x);
	while (x->nloops > 0)
		close(x->loops[--x->nloops]);
	ax_lvm_close(x);
}

/* ---- the phase ------------------------------------------------------------------------ */

static void readiness(const char *const *v, size_t n, struct boot_report *b)
{
	memset(b, 0, sizeof(*b));
	if (boot_inspect(v, n, b)) {
		b->verdict = BOOT_WARN;
		b->n = 1;
		b->line[0].level = BOOT_WARN;
		snprintf(b->line[0].text, sizeof(b->line[0].text),
			 "boot-readiness could not be checked");
	}
}

int adapt_run(const struct adapt_req *q, struct proto_report *r)
{
	static struct boot_report before, after;
	char specs[DISK_MAX][300], probe[PATH_MAX];
	const char *v[DISK_MAX];
	struct shared {
		struct proto_report rep;
		struct boot_layout lay;
	} * sh;
	struct ax *x;
	uint8_t base;
	size_t i;
	pid_t pid;
	int st = 0;

	if (!q || !r || !q->n || q->n > DISK_MAX)
		return -EINVAL;
	for (i = 0; i < q->n; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%s=%s", q->d[i].name, q->d[i].path);
		v[i] = specs[i];
	}
	readiness(v, q->n, &before);
	if (!q->force && !q->dry && before.verdict != BOOT_FAIL && !before.no_esp_fallback &&
	    !before.root_unread) {
		for (i = 0; i < before.n; i++)
			proto_report_add(r, (uint8_t)before.line[i].level, "%s",
					 before.line[i].text);
		proto_report_add(
		    r, PROTO_PASS,
		    "adapt: nothing adapted: the boot-readiness report has no FAIL "
		    "and the ESP has its fallback loader (--adapt=force adapts anyway)");
		return r->verdict;
	}
	/* The child writes the report; the parent reads it when it is gone. */
	sh = mmap(NULL, sizeof(*sh) + sizeof(*x), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -ENOMEM;
	x = (struct ax *)(sh + 1);
	memset(sh, 0, sizeof(*sh) + sizeof(*x));
	base = r->verdict;
	if (q->dry) {
		for (i = 0; i < before.n; i++)
			proto_report_add(r, (uint8_t)before.line[i].level, "%s",
					 before.line[i].text);
	} else {
		for (i = 0; i < before.n; i++)
			if (before.line[i].level != BOOT_PASS)
				proto_report_add(r, (uint8_t)before.line[i].level,
						 "before adapting: %s", before.line[i].text);
		r->verdict = base;
	}
	if (boot_layout(v, q->n, &sh->lay)) {
		proto_report_add(r, PROTO_FAIL, "adapt: the disks could not be read");
		goto out;
	}
	x->q = q;
	x->lay = &sh->lay;
	x->r = &sh->rep;
	x->dry = q->dry;
	x->live = q->live;
	x->logfd = x->rootfd = -1;
	x->root_vol = x->boot_vol = x->esp_vol = -1;
	snprintf(x->work, sizeof(x->work), "%s/ferry-adapt.XXXXXX",
		 access("/run", W_OK) ? "/tmp" : "/run");
	if (!mkdtemp(x->work)) {
		proto_report_add(r, PROTO_FAIL, "adapt: no work directory: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		adapt_child(x);
		_exit(0);
	}
	if (pid > 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	ax_lvm_close(x); /* what a killed child left */
	sync();
	/* The partitions were written through their own devices; the whole
	 * disk's page cache (read by the report before, by kexec after) is
	 * not coherent with them: drop it. */
	for (i = 0; i < q->n; i++) {
		int fd = open(q->d[i].path, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			if (is_blk(q->d[i].path))
				ioctl(fd, BLKFLSBUF, 0);
			close(fd);
		}
	}
	rmdir(x->root);
	if (snprintf(probe, sizeof(probe), "%s/probe", x->work) < (int)sizeof(probe))
		rmdir(probe);
	rmdir(x->work);
	for (i = 0; i < sh->rep.n; i++)
		proto_report_add(r, sh->rep.line[i].level, "%s", sh->rep.line[i].text);
	if (sh->rep.verdict > r->verdict)
		r->verdict = sh->rep.verdict;
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		proto_report_add(r, PROTO_FAIL, "adapt: the adapt process failed (%s)",
				 pid < 0 ? strerror(errno) : "killed");
	if (!q->dry) {
		readiness(v, q->n, &after);
		for (i = 0; i < after.n; i++)
			proto_report_add(r, (uint8_t)after.line[i].level, "%s%s",
					 after.line[i].level == BOOT_PASS ? "" : "after adapting: ",
					 after.line[i].text);
	}
out:
	munmap(sh, sizeof(*sh) + sizeof(*x));
	return r->verdict;
}
