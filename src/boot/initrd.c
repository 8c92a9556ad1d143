/*
 * initrd.c - what modules an initramfs carries. An initramfs is one or
 * more newc cpio archives, each raw or compressed, one after another
 * (microcode first, uncompressed, is common). The archives are read by a
 * streaming scanner that only looks at member names and skips their
 * data, so memory stays bounded whatever the size. gzip, xz, lzma,
 * bzip2 and lzop are decompressed by BusyBox through a pipe (the live
 * environment ships it; no zlib in ferry-init), zstd by libzstd
 * (zstd.c). On a source server (`ferry check`) there is no BusyBox: the
 * system's own gzip, xz, bzip2, lzop and lz4 from PATH do the same job.
 * Anything else is reported as not checked, never guessed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot/boot_impl.h"

#define CPIO_HDR      110
#define CPIO_NAME_MAX 4096
#define OUT_CAP	      (2ull << 30) /* decompressed bytes scanned at most */
#define PIPE_BUF_LEN  (128u * 1024)

extern char **environ;

/* ---- memory files ---------------------------------------------------- */

int boot_tmpfd(const char *name)
{
	char path[64];
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd >= 0)
		return fd;
	/* Kernels without memfd: an unnamed file on /tmp (tmpfs in ferry-init). */
	fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "/tmp/ferry-%s-XXXXXX", name);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int fd_sink(void *arg, const void *p, size_t n)
{
	return fd_write_all(*(int *)arg, p, n);
}

int boot_ext_to_fd(struct boot_ext *fs, const char *path, uint64_t cap, int fd, uint64_t *len)
{
	return boot_ext_stream(fs, path, cap, fd_sink, &fd, len);
}

/* ---- newc cpio, streamed --------------------------------------------- */

enum { CP_HDR, CP_NAME, CP_SKIP, CP_GAP, CP_END };

struct cpio {
	int state;
	uint8_t hdr[CPIO_HDR];
	size_t hlen;
	char name[CPIO_NAME_MAX];
	size_t namesize, nlen;
	uint64_t skip;	  /* bytes of data and padding still to skip */
	uint64_t pos;	  /* bytes consumed from the stream */
	uint64_t end_pos; /* where non-cpio bytes began (CP_END) */
	uint32_t filesize, mode;
	int from_gap; /* this header follows padding (or the start) */
	int after_trailer;
	unsigned long trailers;
	const char *const *want;
	size_t nwant;
	unsigned found;
	unsigned long members;
	char errtext[128];
};

static void cpio_init(struct cpio *s, const char *const *want, size_t nwant, unsigned found)
{
	memset(s, 0, sizeof(*s));
	s->want = want;
	s->nwant = nwant;
	s->found = found;
	s->state = CP_GAP; /* a stream may open with zero padding too */
}

static int hex8(struct cur *c, uint32_t *v)
{
	const uint8_t *p;
	int i, d;

	*v = 0;
	if (cur_ref(c, &p, 8))
		return c->err;
	for (i = 0; i < 8; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			d = (p[i] | 0x20) - 'a' + 10;
		else
			return -EBADMSG;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

static int cpio_header(struct cpio *s)
{
	uint32_t f[13];
	struct cur c;
	int i;

	cur_init(&c, s->hdr, CPIO_HDR);
	boot_skip(&c, 6);
	for (i = 0; i < 13; i++)
		if (hex8(&c, &f[i]))
			return -EBADMSG;
	s->mode = f[1];
	s->filesize = f[6];
	s->namesize = f[11];
	if (!s->namesize || s->namesize > CPIO_NAME_MAX) {
		snprintf(s->errtext, sizeof(s->errtext), "cpio member name of %zu bytes at %llu",
			 s->namesize, (unsigned long long)(s->pos - CPIO_HDR));
		return -EBADMSG;
	}
	s->nlen = 0;
	return 0;
}

static void cpio_member(struct cpio *s)
{
	const char *base = strrchr(s->name, '/');
	char stem[CPIO_NAME_MAX];
	size_t i, n;

	s->members++;
	if ((s->mode & 0170000) != 0100000) /* regular files only */
		return;
	base = base ? base + 1 : s->name;
	snprintf(stem, sizeof(stem), "%s", base);
	n = strlen(stem);
	/* virtio_blk.ko, .ko.xz, .ko.zst, .ko.gz */
	for (i = 0; i < 3; i++) {
		static const char *const sfx[] = {".xz", ".zst", ".gz"};
		size_t k = strlen(sfx[i]);

		if (n > k && !strcmp(stem + n - k, sfx[i])) {
			stem[n - k] = 0;
			n -= k;
			break;
		}
	}
	if (n < 4 || strcmp(stem + n - 3, ".ko"))
		return;
	stem[n - 3] = 0;
	for (i = 0; i < s->nwant && i < 32; i++)
		if (!strcmp(stem, s->want[i]))
			s->found |= 1u << i;
}

static int all_found(const struct cpio *s)
{
	unsigned all = s->nwant >= 32 ? ~0u : (1u << s->nwant) - 1;

	return (s->found & all) == all;
}

/* 0 go on, 1 everything wanted was found, -errno. In CP_END the bytes
 * from end_pos on are not cpio (a compressed archive follows). */
static int cpio_feed(struct cpio *s, const uint8_t *p, size_t n)
{
	size_t k;

	while (n && s->state != CP_END) {
		switch (s->state) {
		case CP_GAP:
			/* Zero padding between archives; a header starts 4-aligned. */
			if (p[0] == 0) {
				p++, n--, s->pos++;
				continue;
			}
			if (s->pos % 4 || p[0] != '0') {
				s->end_pos = s->pos;
				s->state = CP_END;
				return 0;
			}
			s->state = CP_HDR;
			s->hlen = 0;
			s->from_gap = 1;
			/* fall through */
		case CP_HDR:
			k = CPIO_HDR - s->hlen < n ? CPIO_HDR - s->hlen : n;
			memcpy(s->hdr + s->hlen, p, k);
			s->hlen += k, p += k, n -= k, s->pos += k;
			if (s->hlen >= 6 && memcmp(s->hdr, "070701", 6) &&
			    memcmp(s->hdr, "070702", 6)) {
				if (!s->from_gap) {
					snprintf(s->errtext, sizeof(s->errtext),
						 "no cpio header at byte %llu",
						 (unsigned long long)(s->pos - s->hlen));
					return -EBADMSG;
				}
				/* Something else starts here, e.g. a compressed archive. */
				s->end_pos = s->pos - s->hlen;
				s->state = CP_END;
				return 0;
			}
			if (s->hlen < CPIO_HDR)
				break;
			if (cpio_header(s))
				return -EBADMSG;
			s->state = CP_NAME;
			s->from_gap = 0;
			break;
		case CP_NAME:
			k = s->namesize - s->nlen < n ? s->namesize - s->nlen : n;
			memcpy(s->name + s->nlen, p, k);
			s->nlen += k, p += k, n -= k, s->pos += k;
			if (s->nlen < s->namesize)
				break;
			s->name[s->namesize - 1] = 0;
			s->after_trailer = !strcmp(s->name, "TRAILER!!!");
			/* name padding to 4, then the data and its padding */
			s->skip = (4 - (CPIO_HDR + s->namesize) % 4) % 4 + s->filesize +
				  (4 - s->filesize % 4) % 4;
			if (s->after_trailer) {
				s->trailers++;
			} else {
				cpio_member(s);
				if (all_found(s))
					return 1;
			}
			s->state = CP_SKIP;
			break;
		case CP_SKIP:
			k = s->skip < n ? (size_t)s->skip : n;
			s->skip -= k, p += k, n -= k, s->pos += k;
			break;
		}
		if (s->state == CP_SKIP && !s->skip) {
			s->state = s->after_trailer ? CP_GAP : CP_HDR;
			s->hlen = 0;
		}
	}
	return 0;
}

/* The stream ended: fine between archives, truncated inside one. */
static int cpio_clean(const struct cpio *s)
{
	return (s->state == CP_GAP || s->state == CP_END) && s->trailers > 0;
}

/* ---- compressed archives ------------------------------------------- */

struct fmt {
	const char *name;
	const uint8_t *magic;
	size_t mlen;
	const char *applet, *arg; /* BusyBox; NULL applet: libzstd or none */
	int zstd;
	const char *tool; /* the host's decompressor (run as TOOL -dc) */
};

/* xz -dc reads .lzma too (its --format=auto); lz4 -dc the kernel's
 * legacy frames. BusyBox in the live environment has no lz4 applet. */
static const struct fmt fmts[] = {
    {"gzip", (const uint8_t *)"\x1f\x8b", 2, "zcat", NULL, 0, "gzip"},
    {"gzip", (const uint8_t *)"\x1f\x9e", 2, "zcat", NULL, 0, "gzip"},
    {"zstd", (const uint8_t *)"\x28\xb5\x2f\xfd", 4, NULL, NULL, 1, NULL},
    {"xz",
     (const uint8_t *)"\xfd"
		      "7zXZ\x00",
     6, "xzcat", NULL, 0, "xz"},
    {"lzma", (const uint8_t *)"\x5d\x00\x00", 3, "lzcat", NULL, 0, "xz"},
    {"bzip2", (const uint8_t *)"BZh", 3, "bzcat", NULL, 0, "bzip2"},
    {"lzo", (const uint8_t *)"\x89LZO", 4, "lzop", "-dc", 0, "lzop"},
    {"lz4", (const uint8_t *)"\x02\x21\x4c\x18", 4, NULL, NULL, 0, "lz4"},
    {"lz4", (const uint8_t *)"\x04\x22\x4d\x18", 4, NULL, NULL, 0, "lz4"},
    {"odc cpio", (const uint8_t *)"070707", 6, NULL, NULL, 0, NULL},
};

#define TOOL_PATH_MAX 512
#define DEFAULT_PATH  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The first executable name in $PATH; 0 or -ENOENT. */
static int find_tool(const char *name, char *out, size_t cap)
{
	const char *p = getenv("PATH"), *e;

	if (!p || !*p)
		p = DEFAULT_PATH;
	for (; *p; p = *e ? e + 1 : e) {
		size_t len;

		e = strchr(p, ':');
		if (!e)
			e = p + strlen(p);
		len = (size_t)(e - p);
		if (len == 0 || len + strlen(name) + 2 > cap)
			continue;
		memcpy(out, p, len);
		snprintf(out + len, cap - len, "/%s", name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int scan_sink(void *arg, const void *p, size_t n)
{
	struct cpio *s = arg;
	int r = cpio_feed(s, p, n);

	if (r)
		return r;
	return s->state == CP_END ? 1 : 0;
}

/* Runs a decompressor on fd from off, feeding its output to the scanner:
 * BusyBox's applet, or with host set (or no BusyBox) the system's own
 * tool from PATH. */
static int pipe_scan(const struct fmt *f, int host, int fd, uint64_t off, struct cpio *s, char *err,
		     size_t errcap)
{
	posix_spawn_file_actions_t fa;
	char *argv[4], prog[TOOL_PATH_MAX];
	const char *what;
	int pfd[2] = {-1, -1}, st = 0, r, stopped = 0, killed = 0, waited;
	uint64_t total = 0;
	uint8_t *buf = NULL;
	pid_t pid = -1;
	ssize_t got;

	/* The receiver run on a host (ferry-init serve) has no BusyBox of
	 * its own: there the system's tool reads it, when it has one. */
	if (!host && access(BOOT_BUSYBOX, X_OK) && f->tool && !find_tool(f->tool, prog, sizeof(prog)))
		host = 1;
	if (host) {
		if (!f->tool)
			return boot_err(err, errcap, -EOPNOTSUPP,
					"initramfs is %s, which ferry cannot read", f->name);
		if (find_tool(f->tool, prog, sizeof(prog)))
			return boot_err(err, errcap, -EOPNOTSUPP,
					"initramfs is %s-compressed and there is no %s tool in "
					"PATH to read it",
					f->name, f->tool);
		argv[0] = (char *)f->tool;
		argv[1] = (char *)"-dc";
		argv[2] = NULL;
		what = f->tool;
	} else {
		if (!f->applet)
			return boot_err(err, errcap, -EOPNOTSUPP,
					"initramfs is %s, which ferry cannot read", f->name);
		if (access(BOOT_BUSYBOX, X_OK))
			return boot_err(err, errcap, -EOPNOTSUPP,
					"initramfs is %s-compressed and %s is not there to read it",
					f->name, BOOT_BUSYBOX);
		snprintf(prog, sizeof(prog), "%s", BOOT_BUSYBOX);
		argv[0] = (char *)"busybox";
		argv[1] = (char *)f->applet;
		argv[2] = (char *)f->arg;
		argv[3] = NULL;
		what = f->applet;
	}
	buf = malloc(PIPE_BUF_LEN);
	if (!buf || pipe2(pfd, O_CLOEXEC)) {
		r = buf ? -errno : -ENOMEM;
		free(buf);
		return boot_err(err, errcap, r, "cannot start %s: %s", prog, strerror(-r));
	}
	/* The child reads fd from its offset; pread elsewhere is unaffected. */
	if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
		r = -errno;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = -posix_spawn(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	pfd[1] = -1;
	if (r) {
		pid = -1;
		goto out;
	}
	for (;;) {
		got = read(pfd[0], buf, PIPE_BUF_LEN);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			break;
		}
		if (got == 0)
			break;
		total += (uint64_t)got;
		r = scan_sink(s, buf, (size_t)got);
		if (r < 0)
			break;
		if (r > 0 || total > OUT_CAP) {
			stopped = 1;
			r = total > OUT_CAP && r == 0 ? -EFBIG : 0;
			break;
		}
	}
	if (stopped || r < 0) {
		kill(pid, SIGKILL); /* our own child; its remaining output is not needed */
		killed = 1;
	}
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(buf);
	if (pid > 0) {
		while ((waited = (int)waitpid(pid, &st, 0)) < 0 && errno == EINTR)
			;
		/* Bytes after the last archive (padding) can make an applet exit
		 * nonzero after a complete stream: the scanner's state decides.
		 * Without a status (reaped elsewhere) the same holds. */
		if (waited < 0)
			st = 0;
		if (!r && !killed && (!WIFEXITED(st) || WEXITSTATUS(st)) && !cpio_clean(s))
			return boot_err(err, errcap, -EIO,
					"%s%s failed (status %d) after %llu bytes: "
					"the initramfs was not read to its end",
					host ? "" : "busybox ", what,
					WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
					(unsigned long long)total);
	}
	if (r == -EFBIG)
		return boot_err(err, errcap, r, "initramfs decompresses past %llu bytes",
				(unsigned long long)OUT_CAP);
	if (r == -EBADMSG)
		return boot_err(err, errcap, r, "initramfs (%s): bad cpio data%s%s", f->name,
				s->errtext[0] ? ": " : "", s->errtext);
	if (r)
		return boot_err(err, errcap, r, "%s%s: %s", host ? "" : "busybox ", what,
				strerror(-r));
	return 0;
}

static int initrd_scan(int fd, uint64_t size, int host, const char *const *want, size_t nwant,
		       unsigned *found, char *fmt, size_t fmtcap, char *err, size_t errcap)
{
	struct cpio *s = NULL;
	uint8_t *buf = NULL, magic[8];
	uint64_t off = 0;
	size_t k, n;
	int r = 0, segs = 0;
	char fmts_seen[64] = "";

	*found = 0;
	if (fmt && fmtcap)
		fmt[0] = 0;
	if (nwant > 32)
		return -EINVAL;
	s = malloc(sizeof(*s));
	buf = malloc(PIPE_BUF_LEN);
	if (!s || !buf) {
		r = -ENOMEM;
		goto out;
	}
	/* Raw cpio archives are scanned in place; the first compressed one
	 * takes the rest of the file (the kernel reads it the same way). */
	while (off < size && segs++ < 64) {
		const struct fmt *f = NULL;

		memset(magic, 0, sizeof(magic));
		n = size - off < sizeof(magic) ? (size_t)(size - off) : sizeof(magic);
		if ((r = boot_pread_full(fd, magic, n, off)))
			goto out;
		if (n >= 6 && (!memcmp(magic, "070701", 6) || !memcmp(magic, "070702", 6))) {
			uint64_t at = off;

			cpio_init(s, want, nwant, *found);
			s->pos = off; /* alignment counts from the file's start */
			while (at < size && s->state != CP_END) {
				k = size - at < PIPE_BUF_LEN ? (size_t)(size - at) : PIPE_BUF_LEN;
				if ((r = boot_pread_full(fd, buf, k, at)))
					goto out;
				at += k;
				r = cpio_feed(s, buf, k);
				if (r < 0) {
					r = boot_err(err, errcap, r, "initramfs: bad cpio data%s%s",
						     s->errtext[0] ? ": " : "", s->errtext);
					goto out;
				}
				*found = s->found;
				if (r > 0)
					break;
			}
			if (!strstr(fmts_seen, "cpio"))
				snprintf(fmts_seen + strlen(fmts_seen),
					 sizeof(fmts_seen) - strlen(fmts_seen), "%scpio",
					 fmts_seen[0] ? "+" : "");
			if (r > 0) {
				r = 0;
				break; /* all found */
			}
			if (s->state != CP_END) {
				r = cpio_clean(s)
					? 0
					: boot_err(err, errcap, -EIO,
						   "initramfs ends inside a cpio archive");
				break;
			}
			off = s->end_pos;
			continue;
		}
		for (k = 0; k < FERRY_ARRAY_LEN(fmts) && !f; k++)
			if (n >= fmts[k].mlen && !memcmp(magic, fmts[k].magic, fmts[k].mlen))
				f = &fmts[k];
		if (!f) {
			r = boot_err(err, errcap, -EOPNOTSUPP,
				     "initramfs has data of an unknown format at byte %llu",
				     (unsigned long long)off);
			goto out;
		}
		snprintf(fmts_seen + strlen(fmts_seen), sizeof(fmts_seen) - strlen(fmts_seen),
			 "%s%s", fmts_seen[0] ? "+" : "", f->name);
		cpio_init(s, want, nwant, *found);
		if (f->zstd)
			r = boot_unzstd(fd, off, size - off, OUT_CAP, scan_sink, s, err, errcap);
		else
			r = pipe_scan(f, host, fd, off, s, err, errcap);
		*found = s->found;
		if (r == 0 && !all_found(s) && !cpio_clean(s))
			r = boot_err(err, errcap, -EIO,
				     "initramfs: the %s data ends inside a cpio archive", f->name);
		break;
	}
out:
	if (fmt && fmtcap)
		snprintf(fmt, fmtcap, "%s", fmts_seen[0] ? fmts_seen : "empty");
	free(s);
	free(buf);
	return r;
}

int boot_initrd_scan(int fd, uint64_t size, const char *const *want, size_t nwant, unsigned *found,
		     char *fmt, size_t fmtcap, char *err, size_t errcap)
{
	return initrd_scan(fd, size, 0, want, nwant, found, fmt, fmtcap, err, errcap);
}

int boot_initrd_modules(const char *path, const char *const *want, size_t nwant, unsigned *found,
			char *fmt, size_t fmtcap, char *err, size_t errcap)
{
	struct stat st;
	int fd, r;

	*found = 0;
	if (fmt && fmtcap)
		fmt[0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return boot_err(err, errcap, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = boot_err(err, errcap, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0) {
		r = boot_err(err, errcap, -EIO, "%s: empty file", path);
		goto out;
	}
	r = initrd_scan(fd, (uint64_t)st.st_size, 1, want, nwant, found, fmt, fmtcap, err, errcap);
out:
	close(fd);
	return r;
}
