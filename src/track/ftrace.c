/*
 * ftrace.c - the tracer: the only file that knows tracefs. It makes a
 * trace instance of its own (instances/ferry-PID, so nobody else's
 * tracing is disturbed and nothing is exclusive), enables the block
 * completion events (block_rq_complete, and block_bio_complete for
 * bio-based disks) filtered in the kernel to the source disks and to
 * anything but reads, and a thread drains the per-CPU ring buffers
 * (trace_pipe_raw) into each disk's dirty map. Before trusting a disk it
 * proves the trace shows that disk's I/O: one O_DIRECT read of a known
 * sector must come back as an event. Lost events (the kernel's per-CPU
 * counters, a page flagged "missed", a damaged page) mark every disk's
 * filling map as a gap. It never writes to a disk.
 *
 * Why not blktrace's BLKTRACESETUP and its relay files: they live in
 * debugfs, which kernel lockdown (integrity, the mode of every Secure
 * Boot machine with a distribution kernel) refuses to open, and one
 * device takes one blktrace at a time; tracefs is open in that mode and
 * instances are independent. The events are the same tracepoints.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "common/common.h"
#include "track/track.h"

#define DEVS_MAX   64 /* the disk and its partitions */
#define CPUS_MAX   4096
#define WHY_MAX	   200
#define BUFFER_KB  1024 /* per CPU: ~18000 events between two reads */
#define POLL_MS	   100
#define CANARY_MS  2000
#define FILTER_MAX 4096

struct tdisk {
	char path[PATH_MAX];
	int ok;
	char why[WHY_MAX];
	uint32_t devs[DEVS_MAX]; /* kernel dev_t: major << 20 | minor */
	size_t ndevs;
	uint64_t start; /* the device's first sector on its disk */
	uint64_t size;	/* bytes */
	struct track_map *live, *spare;
	int gap;
	char gapwhy[WHY_MAX];
	int canary; /* the proving read was seen */
};

struct track {
	char root[64];	/* where tracefs is mounted */
	char inst[128]; /* our instance */
	int mounted, made;
	struct track_pagefmt pf;
	struct track_evfmt ev[2];
	size_t nev;
	int fds[CPUS_MAX];
	size_t ncpus;
	uint8_t *page;
	pthread_mutex_t lock;
	pthread_t th;
	int running;
	volatile int stop;
	unsigned poll_ms;
	uint64_t events, lost_seen;
	int damaged; /* a bad or "missed" page since the last look */
	size_t n;
	struct tdisk d[];
};

static void whyf(char *why, size_t cap, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
static void whyf(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	r = fd_write_all(fd, s, strlen(s));
	close(fd);
	return r;
}

static uint64_t env_u64(const char *name, uint64_t def, uint64_t max)
{
	const char *v = getenv(name);
	uint64_t x;

	return v && *v && !parse_u64(v, max, &x) ? x : def;
}

/* ---- finding the disk's devices ---------------------------------------- */

static uint32_t kdev(unsigned maj, unsigned min)
{
	return (uint32_t)maj << 20 | (min & 0xfffff);
}

/* "M:m" from a sysfs dev file into a kernel dev_t; 0 on failure. */
static uint32_t sysfs_dev(const char *path)
{
	char b[32];
	unsigned maj, min;

	if (file_read_small(path, b, sizeof(b)) <= 0 || sscanf(b, "%u:%u", &maj, &min) != 2)
		return 0;
	return kdev(maj, min);
}

/* The devices whose events belong to disk d (the whole disk and its
 * partitions: a partition's requests carry the disk's dev and sectors
 * from the disk's start, bio-based disks' the partition's dev), and
 * where d itself starts on its disk. */
static int disk_devs(struct tdisk *d, const struct stat *st)
{
	char link[64], real[PATH_MAX], disk[PATH_MAX], p[PATH_MAX + 320], b[32];
	struct dirent *e;
	uint64_t v;
	DIR *dir;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st->st_rdev),
		 minor(st->st_rdev));
	if (!realpath(link, real)) {
		whyf(d->why, WHY_MAX, "no sysfs entry %s", link);
		return -ENOENT;
	}
	snprintf(p, sizeof(p), "%s/partition", real);
	d->start = 0;
	snprintf(disk, sizeof(disk), "%s", real);
	if (access(p, F_OK) == 0) {
		char *slash = strrchr(disk, '/');

		snprintf(p, sizeof(p), "%s/start", real);
		if (!slash || file_read_small(p, b, sizeof(b)) <= 0 ||
		    parse_u64(b, UINT64_MAX / 512, &v)) {
			whyf(d->why, WHY_MAX, "cannot read where partition %s starts", real);
			return -EINVAL;
		}
		d->start = v;
		*slash = 0;
	}
	snprintf(p, sizeof(p), "%s/dev", disk);
	d->ndevs = 0;
	if ((d->devs[d->ndevs] = sysfs_dev(p)))
		d->ndevs++;
	dir = opendir(disk);
	while (dir && (e = readdir(dir)) && d->ndevs < DEVS_MAX) {
		snprintf(p, sizeof(p), "%s/%s/partition", disk, e->d_name);
		if (e->d_name[0] == '.' || access(p, F_OK))
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", disk, e->d_name);
		if ((d->devs[d->ndevs] = sysfs_dev(p)))
			d->ndevs++;
	}
	if (dir)
		closedir(dir);
	if (d->ndevs == 0) {
		whyf(d->why, WHY_MAX, "no device number in %s", disk);
		return -ENOENT;
	}
	return 0;
}

/* ---- reading the trace ---------------------------------------------------- */

static struct tdisk *disk_of(struct track *t, uint32_t dev)
{
	size_t i, k;

	for (i = 0; i < t->n; i++)
		for (k = 0; k < t->d[i].ndevs; k++)
			if (t->d[i].devs[k] == dev && t->d[i].live)
				return &t->d[i];
	return NULL;
}

static void on_io(void *ctx, const struct track_io *io)
{
	struct track *t = ctx;
	struct tdisk *d = disk_of(t, io->dev);
	uint64_t sec;

	t->events++;
	if (!d)
		return;
	if (io->op == 'R') {
		/* Only the proving read passes the kernel's filter. */
		if (io->sector == d->start)
			d->canary = 1;
		return;
	}
	/* Flushes and the empty completions around them carry no sectors;
	 * everything else that is not a read may have changed data. */
	if (io->nr == 0 || io->sector < d->start)
		return;
	sec = io->sector - d->start;
	if (sec >= d->size / 512)
		return;
	track_map_mark(d->live, sec * 512, (uint64_t)io->nr * 512);
}

/* Everything the kernel holds now. Called with the lock held. */
static void drain(struct track *t)
{
	size_t c;

	for (c = 0; c < t->ncpus; c++) {
		for (;;) {
			ssize_t n = read(t->fds[c], t->page, t->pf.page_size);
			int missed = 0;

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break; /* EAGAIN: this CPU is empty */
			if (track_parse_page(&t->pf, t->ev, t->nev, t->page, (size_t)n, on_io, t,
					     &missed) ||
			    missed)
				t->damaged = 1;
		}
	}
}

/* Events the kernel could not store, summed over the CPUs. */
static uint64_t lost_now(struct track *t)
{
	static const char *const keys[] = {
	    "\noverrun: ", "\ncommit overrun: ", "\ndropped events: "};
	char p[PATH_MAX + 64], b[1024];
	uint64_t sum = 0, v;
	size_t c, k;

	for (c = 0; c < t->ncpus; c++) {
		snprintf(p, sizeof(p), "%s/per_cpu/cpu%zu/stats", t->inst, c);
		if (file_read_small(p, b, sizeof(b)) <= 0)
			continue;
		for (k = 0; k < FERRY_ARRAY_LEN(keys); k++) {
			char *q = strstr(b, keys[k]);

			if (q && sscanf(q + strlen(keys[k]), "%" SCNu64, &v) == 1)
				sum += v;
		}
	}
	return sum;
}

static void *reader(void *arg)
{
	struct track *t = arg;
	struct pollfd pf[64];
	size_t c, np = t->ncpus < 64 ? t->ncpus : 64;

	for (c = 0; c < np; c++)
		pf[c] = (struct pollfd){.fd = t->fds[c], .events = POLLIN};
	while (!t->stop) {
		/* The kernel wakes us when a CPU's buffer is half full
		 * (buffer_percent); otherwise every poll_ms. */
		poll(pf, (nfds_t)np, (int)t->poll_ms);
		if (t->stop)
			break;
		pthread_mutex_lock(&t->lock);
		drain(t);
		pthread_mutex_unlock(&t->lock);
	}
	return NULL;
}

/* ---- setting up ----------------------------------------------------------- */

static int has_tracefs(void)
{
	char b[4096];

	return file_read_small("/proc/filesystems", b, sizeof(b)) > 0 && strstr(b, "\ttracefs");
}

/* Where tracefs is, mounting it when nobody did. 0 or -errno with why. */
static int find_tracefs(struct track *t, char *why, size_t cap)
{
	static const char *const dirs[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
	char p[PATH_MAX];
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(dirs); i++) {
		snprintf(p, sizeof(p), "%s/instances", dirs[i]);
		if (access(p, F_OK) == 0) {
			snprintf(t->root, sizeof(t->root), "%s", dirs[i]);
			return 0;
		}
	}
	if (!has_tracefs()) {
		whyf(why, cap, "the kernel has no tracefs (built without CONFIG_TRACING)");
		return -ENOENT;
	}
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL)) {
		whyf(why, cap, "cannot mount tracefs on /sys/kernel/tracing: %s", strerror(errno));
		return -errno;
	}
	t->mounted = 1;
	snprintf(t->root, sizeof(t->root), "/sys/kernel/tracing");
	return 0;
}

/* Instances of agents that died (SIGKILL) still trace: remove them. */
static void reap_stale(const struct track *t)
{
	char p[PATH_MAX + 300];
	struct dirent *e;
	DIR *dir;

	snprintf(p, sizeof(p), "%s/instances", t->root);
	dir = opendir(p);
	while (dir && (e = readdir(dir))) {
		uint64_t pid;

		if (strncmp(e->d_name, "ferry-", 6) || parse_u64(e->d_name + 6, INT_MAX, &pid) ||
		    (pid_t)pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(p, sizeof(p), "%s/instances/%s", t->root, e->d_name);
		if (rmdir(p) == 0)
			log_debug("removed the trace instance of a dead agent: %s", p);
	}
	if (dir)
		closedir(dir);
}

static int read_formats(struct track *t, char *why, size_t cap)
{
	static const char *const names[] = {"block_rq_complete", "block_bio_complete"};
	char p[PATH_MAX + 64], text[8192], err[TRACK_ERR_MAX];
	int n;
	size_t i;

	snprintf(p, sizeof(p), "%s/events/header_page", t->root);
	if ((n = file_read_small(p, text, sizeof(text))) < 0 ||
	    track_parse_header_page(text, (size_t)n, &t->pf, err, sizeof(err))) {
		whyf(why, cap, "%s: %s", p, n < 0 ? strerror(-n) : err);
		return -EINVAL;
	}
	/* A larger sub-buffer (6.8+) makes larger pages. */
	snprintf(p, sizeof(p), "%s/buffer_subbuf_size_kb", t->inst);
	if (file_read_small(p, text, sizeof(text)) > 0) {
		uint64_t kb;

		if (!parse_u64(text, 1024, &kb) && kb * 1024 > t->pf.page_size)
			t->pf.page_size = (uint32_t)(kb * 1024);
	}
	for (i = 0; i < FERRY_ARRAY_LEN(names); i++) {
		snprintf(p, sizeof(p), "%s/events/block/%s/format", t->inst, names[i]);
		if ((n = file_read_small(p, text, sizeof(text))) < 0) {
			if (i == 0) {
				whyf(why, cap, "the kernel has no block trace events (%s: %s)", p,
				     strerror(-n));
				return n;
			}
			continue;
		}
		if (track_parse_format(text, (size_t)n, &t->ev[t->nev], err, sizeof(err))) {
			whyf(why, cap, "%s: %s", p, err);
			return -EINVAL;
		}
		t->nev++;
	}
	return 0;
}

/* In-kernel filter: our disks' devices; no reads but the proving ones. */
static int set_filters(struct track *t, char *why, size_t cap)
{
	static const char *const names[] = {"block_rq_complete", "block_bio_complete"};
	char f[FILTER_MAX], p[PATH_MAX + 64];
	size_t i, k, len = 0, nd = 0;
	int r;

	len += (size_t)snprintf(f + len, sizeof(f) - len, "(");
	for (i = 0; i < t->n; i++)
		for (k = 0; t->d[i].ok && k < t->d[i].ndevs && len < sizeof(f) - 200; k++, nd++)
			len += (size_t)snprintf(f + len, sizeof(f) - len, "%sdev == %u",
						nd ? " || " : "", t->d[i].devs[k]);
	len += (size_t)snprintf(f + len, sizeof(f) - len, ") && (!(rwbs ~ \"R*\")");
	for (i = 0; i < t->n && len < sizeof(f) - 100; i++)
		if (t->d[i].ok)
			len += (size_t)snprintf(f + len, sizeof(f) - len, " || sector == %llu",
						(unsigned long long)t->d[i].start);
	snprintf(f + len, sizeof(f) - len, ")");
	for (i = 0; i < t->nev; i++) {
		snprintf(p, sizeof(p), "%s/events/block/%s/filter", t->inst, names[i]);
		if ((r = write_str(p, f))) {
			whyf(why, cap, "the block trace filter was refused (%s): %s", p,
			     strerror(-r));
			return r;
		}
		snprintf(p, sizeof(p), "%s/events/block/%s/enable", t->inst, names[i]);
		if ((r = write_str(p, "1"))) {
			whyf(why, cap, "cannot enable %s: %s", p, strerror(-r));
			return r;
		}
	}
	log_debug("trace filter: %s", f);
	return 0;
}

static int open_cpus(struct track *t, char *why, size_t cap)
{
	char p[PATH_MAX + 64];

	for (t->ncpus = 0; t->ncpus < CPUS_MAX; t->ncpus++) {
		int fd;

		snprintf(p, sizeof(p), "%s/per_cpu/cpu%zu/trace_pipe_raw", t->inst, t->ncpus);
		fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT && t->ncpus > 0)
				break;
			whyf(why, cap, "%s: %s", p, strerror(errno));
			return -errno;
		}
		t->fds[t->ncpus] = fd;
	}
	return 0;
}

/* One O_DIRECT read of each disk's first 4 KiB must show up in the
 * trace: else its I/O goes through a device we do not see (a multipath
 * head, a driver without block events) and it is not tracked. */
static void prove(struct track *t)
{
	uint8_t *buf = aligned_alloc(4096, 4096);
	uint64_t t0;
	size_t i, waiting = 0;

	for (i = 0; i < t->n; i++) {
		struct tdisk *d = &t->d[i];
		int fd;

		if (!d->ok)
			continue;
		fd = open(d->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (fd < 0 || !buf || pread(fd, buf, 4096, 0) != 4096) {
			d->ok = 0;
			whyf(d->why, WHY_MAX,
			     "cannot read its first 4 KiB with O_DIRECT to prove "
			     "the trace sees it: %s",
			     strerror(fd < 0 || !buf ? errno : EIO));
		} else {
			waiting++;
		}
		if (fd >= 0)
			close(fd);
	}
	for (t0 = time_now_ms(); waiting && time_now_ms() - t0 < CANARY_MS;) {
		pthread_mutex_lock(&t->lock);
		drain(t);
		for (waiting = 0, i = 0; i < t->n; i++)
			waiting += t->d[i].ok && !t->d[i].canary;
		pthread_mutex_unlock(&t->lock);
		if (waiting)
			usleep(10000);
	}
	for (i = 0; i < t->n; i++)
		if (t->d[i].ok && !t->d[i].canary) {
			t->d[i].ok = 0;
			whyf(t->d[i].why, WHY_MAX,
			     "the block trace does not show its I/O (a "
			     "multipath or stacked device?)");
		}
	free(buf);
}

/* Makes disk i's maps, or says why it cannot be tracked. */
static void disk_setup(struct tdisk *d)
{
	struct stat st;
	int fd;

	d->ok = 0;
	if (stat(d->path, &st) < 0) {
		whyf(d->why, WHY_MAX, "%s", strerror(errno));
		return;
	}
	if (!S_ISBLK(st.st_mode)) {
		whyf(d->why, WHY_MAX,
		     S_ISREG(st.st_mode) ? "an image file (it does not change "
					   "under ferry: nothing to track)"
					 : "not a block device");
		return;
	}
	fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &d->size) || d->size == 0) {
		whyf(d->why, WHY_MAX, "cannot read its size: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	if (disk_devs(d, &st))
		return;
	if (track_map_new(d->size, TRACK_MAP_BUDGET, &d->live) ||
	    track_map_new(d->size, TRACK_MAP_BUDGET, &d->spare)) {
		whyf(d->why, WHY_MAX, "no memory for its dirty maps");
		return;
	}
	d->ok = 1;
}

/* Undoes what was done in the kernel: the reader, the events, the
 * instance, our tracefs mount. The maps stay. */
static void teardown(struct track *t)
{
	static const char *const names[] = {"block_rq_complete", "block_bio_complete"};
	char p[PATH_MAX + 64];
	size_t i;

	if (t->running) {
		t->stop = 1;
		pthread_join(t->th, NULL);
		t->running = 0;
	}
	for (i = 0; i < t->ncpus; i++)
		close(t->fds[i]);
	t->ncpus = 0;
	if (t->made) {
		for (i = 0; i < FERRY_ARRAY_LEN(names); i++) {
			snprintf(p, sizeof(p), "%s/events/block/%s/enable", t->inst, names[i]);
			write_str(p, "0");
		}
		if (rmdir(t->inst))
			log_debug("cannot remove the trace instance %s: %s", t->inst,
				  strerror(errno));
		t->made = 0;
	}
	if (t->mounted)
		umount2(t->root, MNT_DETACH);
	t->mounted = 0;
}

/* Nothing can be tracked: every disk says why. */
static void all_off(struct track *t, const char *why)
{
	size_t i;

	teardown(t);
	for (i = 0; i < t->n; i++) {
		struct tdisk *d = &t->d[i];

		if (d->ok) {
			d->ok = 0;
			snprintf(d->why, WHY_MAX, "%s", why);
		}
		track_map_free(d->live);
		track_map_free(d->spare);
		d->live = d->spare = NULL;
	}
}

int track_start(const char *const *paths, size_t n, struct track **out, char *err, size_t errcap)
{
	struct track *t;
	char why[WHY_MAX * 2], p[PATH_MAX + 64], num[32];
	size_t i, any = 0;

	*out = NULL;
	t = calloc(1, sizeof(*t) + n * sizeof(t->d[0]));
	if (!t) {
		whyf(err, errcap, "no memory for the tracker");
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->n = n;
	t->poll_ms = (unsigned)env_u64("FERRY_TRACK_POLL_MS", POLL_MS, 3600000);
	if (t->poll_ms < 10)
		t->poll_ms = 10;
	for (i = 0; i < n; i++) {
		snprintf(t->d[i].path, sizeof(t->d[i].path), "%s", paths[i]);
		disk_setup(&t->d[i]);
		any += t->d[i].ok;
	}
	*out = t;
	if (!any)
		return 0;
	if (find_tracefs(t, why, sizeof(why)))
		goto off;
	reap_stale(t);
	snprintf(t->inst, sizeof(t->inst), "%s/instances/ferry-%d", t->root, (int)getpid());
	if (mkdir(t->inst, 0700) && errno != EEXIST) {
		int e = errno;
		char lock[128];

		if ((e == EPERM || e == EACCES) &&
		    file_read_small("/sys/kernel/security/lockdown", lock, sizeof(lock)) > 0 &&
		    strstr(lock, "[confidentiality]"))
			whyf(why, sizeof(why), "kernel lockdown (confidentiality) closes tracefs");
		else
			whyf(why, sizeof(why), "cannot make a trace instance %s: %s", t->inst,
			     strerror(e));
		goto off;
	}
	t->made = 1;
	if (read_formats(t, why, sizeof(why)))
		goto off;
	/* The per-CPU buffer: what the kernel can hold between two reads. */
	snprintf(num, sizeof(num), "%llu",
		 (unsigned long long)env_u64("FERRY_TRACK_BUFFER_KB", BUFFER_KB, 1u << 20));
	snprintf(p, sizeof(p), "%s/buffer_size_kb", t->inst);
	if (write_str(p, num))
		log_debug("%s: cannot set it to %s KiB", p, num);
	/* When full, keep what is there: a loss is counted either way. */
	snprintf(p, sizeof(p), "%s/options/overwrite", t->inst);
	write_str(p, "0");
	t->page = malloc(t->pf.page_size);
	if (!t->page) {
		whyf(why, sizeof(why), "no memory for a trace page");
		goto off;
	}
	if (open_cpus(t, why, sizeof(why)) || set_filters(t, why, sizeof(why)))
		goto off;
	prove(t);
	pthread_mutex_lock(&t->lock);
	t->lost_seen = lost_now(t);
	t->damaged = 0;
	pthread_mutex_unlock(&t->lock);
	/* FERRY_TRACK_READER=0 (tests): no reader, the kernel's buffer is
	 * read only when a pass takes a map - a sure way to overflow it. */
	if (env_u64("FERRY_TRACK_READER", 1, 1) == 1) {
		if (pthread_create(&t->th, NULL, reader, t)) {
			whyf(why, sizeof(why), "cannot start the trace reader thread");
			goto off;
		}
		t->running = 1;
	}
	for (i = 0; i < n; i++)
		if (t->d[i].ok)
			log_debug("%s: tracking writes (%zu device numbers, %zu CPUs, %s)",
				  paths[i], t->d[i].ndevs, t->ncpus, t->inst);
	return 0;
off:
	all_off(t, why);
	return 0;
}

void track_stop(struct track *t)
{
	if (!t)
		return;
	all_off(t, "stopped");
	free(t->page);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int track_disk(const struct track *t, size_t i, char *why, size_t whycap)
{
	if (!t || i >= t->n) {
		whyf(why, whycap, "not tracked");
		return 0;
	}
	if (!t->d[i].ok)
		whyf(why, whycap, "%s", t->d[i].why);
	else
		why[0] = 0;
	return t->d[i].ok;
}

int track_take(struct track *t, size_t i, struct track_map **map, char *why, size_t whycap)
{
	struct tdisk *d;
	uint64_t lost;
	size_t k;
	int good;

	*map = NULL;
	if (!track_disk(t, i, why, whycap))
		return 0;
	d = &t->d[i];
	pthread_mutex_lock(&t->lock);
	drain(t);
	lost = lost_now(t);
	if (lost != t->lost_seen || t->damaged) {
		for (k = 0; k < t->n; k++) {
			if (!t->d[k].ok)
				continue;
			t->d[k].gap = 1;
			if (lost != t->lost_seen)
				whyf(t->d[k].gapwhy, WHY_MAX,
				     "the kernel lost %llu block trace "
				     "events (its buffer was full)",
				     (unsigned long long)(lost - t->lost_seen));
			else
				whyf(t->d[k].gapwhy, WHY_MAX,
				     "a trace page was damaged or "
				     "flagged as missing events");
		}
		t->lost_seen = lost;
		t->damaged = 0;
	}
	good = !d->gap;
	if (!good)
		whyf(why, whycap, "%s", d->gapwhy);
	d->gap = 0;
	*map = d->live;
	d->live = d->spare;
	d->spare = NULL;
	if (!d->live) {
		/* The last map was never put back: start from a new one. */
		if (track_map_new(d->size, TRACK_MAP_BUDGET, &d->live)) {
			d->live = *map;
			*map = NULL;
			d->ok = 0;
			whyf(d->why, WHY_MAX, "no memory for its dirty map");
			good = 0;
			whyf(why, whycap, "%s", d->why);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return good;
}

void track_mark(struct track *t, size_t i, uint64_t off, uint64_t len)
{
	if (!t || i >= t->n || !t->d[i].live)
		return;
	pthread_mutex_lock(&t->lock);
	track_map_mark(t->d[i].live, off, len);
	pthread_mutex_unlock(&t->lock);
}

void track_put(struct track *t, size_t i, struct track_map *map, int failed)
{
	struct tdisk *d;

	if (!t || i >= t->n || !map)
		return;
	d = &t->d[i];
	pthread_mutex_lock(&t->lock);
	if (failed && d->live)
		track_map_merge(d->live, map);
	track_map_clear(map);
	if (!d->spare)
		d->spare = map;
	else
		track_map_free(map);
	pthread_mutex_unlock(&t->lock);
}

void track_invalidate(struct track *t, size_t i, const char *why)
{
	if (!t || i >= t->n || !t->d[i].ok)
		return;
	pthread_mutex_lock(&t->lock);
	t->d[i].gap = 1;
	snprintf(t->d[i].gapwhy, WHY_MAX, "%s", why);
	pthread_mutex_unlock(&t->lock);
}

void track_counts(const struct track *t, uint64_t *events, uint64_t *lost)
{
	*events = t ? t->events : 0;
	*lost = t ? t->lost_seen : 0;
}

int track_probe(const char *path, char *why, size_t whycap)
{
	struct track *t;
	int r;

	if ((r = track_start(&path, 1, &t, why, whycap)))
		return r;
	if (track_disk(t, 0, why, whycap)) {
		whyf(why, whycap, "block trace events through tracefs at %s", t->root);
		r = 0;
	} else {
		r = -ENOTSUP;
	}
	track_stop(t);
	return r;
}
