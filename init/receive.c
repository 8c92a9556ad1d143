/*
 * receive.c - writes a migration onto the destination's disks. Every
 * offset and length has been checked against the plan by the engine;
 * here they are checked again against the real disk before each write,
 * because a disk is the one thing we must never get wrong. A disk that
 * fails (EIO, ENOSPC on a thin volume or a full filesystem) fails the
 * session with its name, the offset and the errno, and nothing written
 * after the failure is ever committed; it never reports success.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "common/common.h"
#include "init.h"
#include "receive.h"

#define ZERO_BUF (256u * 1024)

static const uint8_t zeros[ZERO_BUF] __attribute__((aligned(RECV_ALIGN)));
/* The head buffers, the counters and the stream positions are shared by
 * the streams; disk writes themselves go on without it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* One FLUSH at a time, from fdatasync to commit: a writeback error is
 * reported to one fdatasync of a file only, so a second one running at
 * the same time could succeed and commit what the first one lost. Taken
 * before lock, never inside it. */
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;

/* A disk or any of its partitions in /proc/mounts is in use. */
static int is_mounted(const char *name, char *where, size_t cap)
{
	char line[512], dev[300];
	FILE *f = fopen("/proc/mounts", "re");
	size_t n = strlen(name);
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char mnt[256];

		if (sscanf(line, "%299s %255s", dev, mnt) != 2)
			continue;
		if (!strncmp(dev, "/dev/", 5) && !strncmp(dev + 5, name, n)) {
			if (snprintf(where, cap, "%s on %s", dev, mnt) < 0)
				where[0] = 0;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* A file shorter than its planned size reads as zeros. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Before any data: the partition tables at both ends (MBR, both GPTs) are
 * blanked and LBA 0 says "under migration". An old system on the disk no
 * longer looks bootable while its blocks are being replaced, and clean
 * mode can tell a failed migration from a disk it must not touch.
 */
static int mark_disk(struct recv_disk *d, uint64_t session, const char *src)
{
	static uint8_t blank[RECV_BLANK];
	char mark[512];
	uint64_t end;
	int r, n;

	memset(blank, 0, sizeof(blank));
	end = d->dst_size > RECV_BLANK ? d->dst_size - RECV_BLANK : 0;
	if ((r = pwrite_all(d->fd, blank, d->dst_size < RECV_BLANK ? (size_t)d->dst_size :
				   RECV_BLANK, 0)) ||
	    (end >= RECV_BLANK && (r = pwrite_all(d->fd, blank, RECV_BLANK, end))))
		return r;
	memset(mark, 0, sizeof(mark));
	n = snprintf(mark, sizeof(mark), "%s\nsession %016llx\nsource %.200s\n", RECV_MARK,
		     (unsigned long long)session, src);
	if (n < 0 || d->dst_size < sizeof(mark))
		return -EINVAL;
	if ((r = pwrite_all(d->fd, mark, sizeof(mark), 0)))
		return r;
	return fdatasync(d->fd) < 0 ? -errno : 0;
}

int recv_marked(int fd, char *sess, size_t cap)
{
	char b[512];
	const char *p;

	if (pread_all(fd, b, sizeof(b), 0) || memcmp(b, RECV_MARK "\n", strlen(RECV_MARK) + 1))
		return 0;
	b[sizeof(b) - 1] = 0;
	p = strstr(b, "session ");
	snprintf(sess, cap, "%.16s", p ? p + 8 : "?");
	return 1;
}

int recv_wipe(int fd, uint64_t size)
{
	static uint8_t z[RECV_WIPE];
	int r;

	memset(z, 0, sizeof(z));
	if ((r = pwrite_all(fd, z, size < RECV_WIPE ? (size_t)size : RECV_WIPE, 0)))
		return r;
	if (size > 2 * (uint64_t)RECV_WIPE && (r = pwrite_all(fd, z, RECV_WIPE, size - RECV_WIPE)))
		return r;
	return fdatasync(fd) < 0 ? -errno : 0;
}

int recv_open(struct recv_state *st, const struct proto_plan *plan,
	      const struct serve_config *cfg, char *err, size_t errcap)
{
	uint32_t i;
	int r;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < plan->ndisks; i++) {
		st->d[i].fd = st->d[i].dfd = -1;
		st->d[i].dirty_lo = 1;	/* none */
	}
	st->ndisks = plan->ndisks;
	st->seed = plan->seed;
	st->session = plan->session;
	st->live = cfg->live;
	for (i = 0; i < plan->ndisks; i++) {
		const struct proto_plan_disk *p = &plan->disks[i];
		const struct disk_info *di = &cfg->disks[p->dst_index];
		struct recv_disk *d = &st->d[i];
		char where[400];
		struct stat sb;

		if (p->dst_index >= cfg->ndisks) {
			snprintf(err, errcap, "%s: not in the inventory", p->dst);
			r = -ENODEV;
			goto fail;
		}
		snprintf(d->name, sizeof(d->name), "%s", di->name);
		snprintf(d->path, sizeof(d->path), "%s", di->path);
		snprintf(d->src, sizeof(d->src), "%s", p->src);
		d->dst_size = di->size;
		d->src_size = p->src_size;
		d->lsec = p->lsec;
		d->table = p->table;
		if (stat(di->path, &sb) == 0 && S_ISBLK(sb.st_mode)) {
			const char *base = strrchr(di->path, '/');

			if (is_mounted(base ? base + 1 : di->path, where, sizeof(where))) {
				snprintf(err, errcap, "%s is in use (%s); refusing to write to it",
					 di->name, where);
				r = -EBUSY;
				goto fail;
			}
		}
		d->fd = open(di->path, O_RDWR | O_CLOEXEC);
		if (d->fd < 0) {
			r = -errno;
			snprintf(err, errcap, "%s: open %s: %s", di->name, di->path, strerror(-r));
			goto fail;
		}
		if (fstat(d->fd, &sb) == 0 && S_ISBLK(sb.st_mode)) {
			int efd;

			d->is_blk = 1;
			/* O_EXCL on a block device fails if anything holds it. */
			efd = open(di->path, O_RDONLY | O_EXCL | O_CLOEXEC);
			if (efd < 0) {
				r = -errno;
				snprintf(err, errcap, "%s is in use by the kernel (%s); refusing to write",
					 di->name, strerror(-r));
				goto fail;
			}
			close(efd);
			d->dio = 512;
			if (ioctl(d->fd, BLKSSZGET, &efd) == 0 && efd >= 512 && efd <= 65536 &&
			    !(efd & (efd - 1)))
				d->dio = (uint32_t)efd;
			/* Without O_DIRECT a write error only shows at FLUSH. */
			if (d->dio <= RECV_ALIGN)
				d->dfd = open(di->path, O_RDWR | O_DIRECT | O_CLOEXEC);
			if (d->dfd < 0)
				log_info("%s: no O_DIRECT (%s): a write error shows at the next flush",
					 di->name, strerror(errno));
		}
		d->head_len = p->src_size < RECV_HEAD ? p->src_size : RECV_HEAD;
		d->head = malloc(RECV_HEAD);
		if (!d->head) {
			r = -ENOMEM;
			snprintf(err, errcap, "%s: no memory for the first MiB", di->name);
			goto fail;
		}
	}
	/* Every disk passed its checks: only now is anything written. */
	for (i = 0; i < plan->ndisks; i++) {
		struct recv_disk *d = &st->d[i];

		if ((r = mark_disk(d, plan->session, plan->disks[i].src))) {
			snprintf(err, errcap, "%s: marking the disk as under migration: %s",
				 d->name, strerror(-r));
			goto fail;
		}
		/* Start from what is there now: untouched bytes stay. */
		if ((r = pread_all(d->fd, d->head, d->head_len, 0))) {
			snprintf(err, errcap, "%s: reading the first MiB: %s", d->name,
				 strerror(-r));
			goto fail;
		}
	}
	return 0;
fail:
	recv_close(st);
	return r;
}

/*
 * len bytes of p at off. On a block device through the O_DIRECT fd when
 * the offset and length suit it (p copied into the aligned bounce buffer
 * unless aligned already): the error, if any, is this write's. Otherwise
 * (a file in host mode, an odd tail) through the page cache, where a file
 * system still reports ENOSPC at once and EIO at the next FLUSH.
 */
static int write_data(struct recv_disk *d, const uint8_t *p, size_t len, uint64_t off,
		      uint8_t *bounce)
{
	if (d->dfd >= 0 && off % d->dio == 0 && len % d->dio == 0 && len <= RECV_SCRATCH) {
		int r;

		if ((uintptr_t)p % RECV_ALIGN) {
			memmove(bounce, p, len);
			p = bounce;
		}
		r = pwrite_all(d->dfd, p, len, off);
		if (r != -EINVAL)
			return r;
		/* The device wants another alignment after all. */
	}
	return pwrite_all(d->fd, p, len, off);
}

static int zero_range(struct recv_disk *d, uint64_t off, uint64_t len, uint8_t *bounce)
{
	if (d->is_blk) {
		uint64_t range[2] = { off, len };

		if (ioctl(d->fd, BLKZEROOUT, range) == 0)
			return 0;
		/* The disk failed: that is the answer. Only a device or kernel
		 * without the call is zeroed by writing. */
		if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL)
			return -errno;
	} else if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			     (off_t)len) == 0) {
		return 0;
	}
	while (len > 0) {
		size_t n = len > ZERO_BUF ? ZERO_BUF : (size_t)len;
		int r = write_data(d, zeros, n, off, bounce);

		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* The first failure of the session is the one reported, also to every
 * later write and FLUSH of any stream. */
static void set_failed(struct recv_state *st, const char *why)
{
	pthread_mutex_lock(&lock);
	if (!st->failed) {
		st->failed = 1;
		snprintf(st->why, sizeof(st->why), "%s", why);
	}
	pthread_mutex_unlock(&lock);
}

static int check_failed(struct recv_state *st, char *err, size_t errcap)
{
	int f;

	pthread_mutex_lock(&lock);
	f = st->failed;
	if (f)
		snprintf(err, errcap, "%s", st->why);
	pthread_mutex_unlock(&lock);
	return f ? -EIO : 0;
}

int recv_write(struct recv_state *st, const struct proto_data *m, uint8_t *zbuf, char *err,
	       size_t errcap)
{
	struct recv_disk *d;
	uint64_t off = m->off, len = m->len, h;
	const uint8_t *p = m->payload;
	char e[64];
	int r = 0;

	if ((r = check_failed(st, err, errcap)))
		return r;

	if (m->enc == PROTO_ENC_ZSTD) {
		if (m->len > RECV_SCRATCH || zc_decompress(m->payload, m->plen, zbuf, m->len)) {
			snprintf(err, errcap, "image decompression failed: DATA at offset %llu "
				 "(%u bytes compressed, %u promised)",
				 (unsigned long long)m->off, m->plen, m->len);
			return -EBADMSG;
		}
		p = zbuf;
	}

	if (m->disk >= st->ndisks)
		return -EINVAL;
	d = &st->d[m->disk];
	/* The engine checked the plan; the disk is checked here. */
	if (off > d->dst_size || len > d->dst_size - off || off + len > d->src_size) {
		snprintf(err, errcap, "%s: write of %llu bytes at %llu is outside the disk",
			 d->name, (unsigned long long)len, (unsigned long long)off);
		return -ERANGE;
	}
	if (off < d->head_len) {
		h = d->head_len - off < len ? d->head_len - off : len;
		pthread_mutex_lock(&lock);
		if (p)
			memcpy(d->head + off, p, h);
		else
			memset(d->head + off, 0, h);
		d->head_dirty = 1;
		pthread_mutex_unlock(&lock);
		off += h;
		len -= h;
		if (p)
			p += h;
	}
	if (len > 0)
		r = p ? write_data(d, p, (size_t)len, off, zbuf) : zero_range(d, off, len, zbuf);
	if (r) {
		snprintf(err, errcap, "%s: writing %llu bytes at offset %llu failed: %s", d->name,
			 (unsigned long long)len, (unsigned long long)off,
			 err_text(-r, e, sizeof(e)));
		set_failed(st, err);
		return r;
	}
	pthread_mutex_lock(&lock);
	d->written += m->len;
	st->written += m->len;
	if (len > 0 && d->dirty_lo > d->dirty_hi) {
		d->dirty_lo = off;
		d->dirty_hi = off + len;
	} else if (len > 0) {
		d->dirty_lo = off < d->dirty_lo ? off : d->dirty_lo;
		d->dirty_hi = off + len > d->dirty_hi ? off + len : d->dirty_hi;
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

void recv_lock(void)
{
	pthread_mutex_lock(&lock);
}

void recv_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

uint64_t recv_written(struct recv_state *st)
{
	uint64_t w;

	pthread_mutex_lock(&lock);
	w = st->written;
	pthread_mutex_unlock(&lock);
	return w;
}

void recv_begin(struct recv_state *st)
{
	pthread_mutex_lock(&lock);
	st->failed = 0;
	st->why[0] = 0;
	pthread_mutex_unlock(&lock);
}

void recv_durable(struct recv_state *st, struct proto_plan_ok *ok)
{
	uint32_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < st->ndisks && i < PROTO_MAX_DISKS; i++)
		ok->committed[i] = st->d[i].committed;
	ok->ndone = st->ndone;
	memcpy(ok->done, st->done, st->ndone * sizeof(st->done[0]));
	pthread_mutex_unlock(&lock);
}

int recv_same_session(const struct recv_state *st, const struct proto_plan *plan)
{
	uint32_t i;

	if (!st->session || st->session != plan->session || st->seed != plan->seed ||
	    st->ndisks != plan->ndisks)
		return 0;
	for (i = 0; i < st->ndisks; i++) {
		const struct recv_disk *d = &st->d[i];
		const struct proto_plan_disk *p = &plan->disks[i];

		if (strcmp(d->name, p->dst) || d->src_size != p->src_size || d->lsec != p->lsec)
			return 0;
	}
	return 1;
}

/*
 * Each stream's FLUSH lists what it covered since its previous one: once
 * fdatasync returned, that is on the disk whatever the other streams
 * did, so it is recorded as durable. What a kill or a cut loses is only
 * what each stream sent after its last FLUSH.
 */
int recv_flush(struct recv_state *st, const struct proto_flush *fl, char *err, size_t errcap)
{
	uint64_t lo[PROTO_MAX_DISKS], hi[PROTO_MAX_DISKS];
	uint32_t i;
	int r;

	pthread_mutex_lock(&flush_lock);
	if ((r = check_failed(st, err, errcap))) {
		pthread_mutex_unlock(&flush_lock);
		return r;
	}
	/* What this fdatasync covers, for the message if it fails. */
	pthread_mutex_lock(&lock);
	for (i = 0; i < st->ndisks; i++) {
		lo[i] = st->d[i].dirty_lo;
		hi[i] = st->d[i].dirty_hi;
		st->d[i].dirty_lo = 1;
		st->d[i].dirty_hi = 0;
	}
	pthread_mutex_unlock(&lock);
	for (i = 0; i < st->ndisks; i++)
		if (fdatasync(st->d[i].fd) < 0) {
			struct recv_disk *d = &st->d[i];
			char e[64];

			r = -errno;
			if (lo[i] <= hi[i])
				snprintf(err, errcap, "%s: flush failed: %s; what was written since the "
					 "last flush (offsets %llu to %llu) may not be on the disk",
					 d->name, err_text(-r, e, sizeof(e)),
					 (unsigned long long)lo[i], (unsigned long long)hi[i]);
			else
				snprintf(err, errcap, "%s: flush failed: %s", d->name,
					 err_text(-r, e, sizeof(e)));
			set_failed(st, err);
			pthread_mutex_unlock(&flush_lock);
			return r;
		}
	pthread_mutex_lock(&lock);
	st->flushed = st->written;
	for (i = 0; i < fl->n; i++)
		if (fl->r[i].disk < st->ndisks)
			proto_durable_add(st->done, &st->ndone, PROTO_DONE_MAX,
					  &st->d[fl->r[i].disk].committed, &fl->r[i]);
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&flush_lock);
	return 0;
}

int recv_hash(struct recv_state *st, const struct proto_hash_req *req, uint8_t *out,
	      uint32_t *count, uint8_t *rbuf, char *err, size_t errcap)
{
	struct recv_disk *d;
	uint64_t off = req->off, end = req->off + req->len;
	uint32_t n = 0;

	if (req->disk >= st->ndisks || req->block > RECV_SCRATCH)
		return -EINVAL;
	d = &st->d[req->disk];
	/* Read back from the disk, not from our page cache: O_DIRECT on a
	 * block device (a bad block fails this read, at its offset, and is
	 * not retried by readahead); elsewhere everything was flushed, so
	 * dropping the clean pages makes the reads go to the file. */
	posix_fadvise(d->fd, (off_t)off, (off_t)req->len, POSIX_FADV_DONTNEED);
	while (off < end) {
		size_t len = (size_t)(end - off < req->block ? end - off : req->block);

		if (off + len <= d->head_len) {
			pthread_mutex_lock(&lock);
			memcpy(rbuf, d->head + off, len);
			pthread_mutex_unlock(&lock);
		} else {
			int direct = d->dfd >= 0 && off % d->dio == 0 && len % d->dio == 0 &&
				     (uintptr_t)rbuf % RECV_ALIGN == 0;
			int r = pread_all(direct ? d->dfd : d->fd, rbuf, len, off);

			if (r == -EINVAL && direct)
				r = pread_all(d->fd, rbuf, len, off);
			if (r) {
				char e[64];

				snprintf(err, errcap, "%s: reading back %zu bytes at offset %llu "
					 "failed: %s", d->name, len, (unsigned long long)off,
					 err_text(-r, e, sizeof(e)));
				return r;
			}
			/* A block straddling the head: the head part is in memory. */
			if (off < d->head_len) {
				pthread_mutex_lock(&lock);
				memcpy(rbuf, d->head + off, (size_t)(d->head_len - off));
				pthread_mutex_unlock(&lock);
			}
		}
		hash128(rbuf, len, st->seed, out + (size_t)n * HASH_LEN);
		n++;
		off += len;
	}
	*count = n;
	return 0;
}

void recv_close(struct recv_state *st)
{
	uint32_t i;

	st->session = 0;
	for (i = 0; i < st->ndisks; i++) {
		if (st->d[i].fd >= 0)
			close(st->d[i].fd);
		if (st->d[i].dfd >= 0)
			close(st->d[i].dfd);
		st->d[i].fd = st->d[i].dfd = -1;
		free(st->d[i].head);
		st->d[i].head = NULL;
	}
}
