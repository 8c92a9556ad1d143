/*
 * adapt_fs.c - files of the migrated system, as the adapt phase reads and
 * writes them: every path is resolved inside the mounted root as a chroot
 * would (openat2 with RESOLVE_IN_ROOT), so an absolute symlink or ".."
 * in the migrated system never leads a read or a write to the live
 * environment's files or, in host mode, to the host's. Writes go to a
 * temporary file in the same directory, fsync, then rename: a file is
 * either the old one or the whole new one. Nothing here mounts or runs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "adapt_phase.h"
#include "common/common.h"

int ax_path(const struct ax *x, const char *rel, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s", x->root, rel);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int ax_openat_in(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

int ax_open(const struct ax *x, const char *rel, int flags, mode_t mode)
{
	if (x->rootfd < 0)
		return -EBADF;
	return ax_openat_in(x->rootfd, rel, flags, mode);
}

/* The directory holding rel (opened in the root) and rel's last name. */
static int open_parent(const struct ax *x, const char *rel, char *base, size_t cap)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(rel, '/');
	size_t dl = slash ? (size_t)(slash - rel) : 0;

	if (!slash || !slash[1] || strlen(slash + 1) >= cap || dl >= sizeof(dir) ||
	    !strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
		return -EINVAL;
	memcpy(dir, rel, dl);
	dir[dl] = 0;
	snprintf(base, cap, "%s", slash + 1);
	return ax_open(x, dl ? dir : "/", O_PATH | O_DIRECTORY, 0);
}

int ax_stat(const struct ax *x, const char *rel, struct stat *st)
{
	char base[NAME_MAX + 1];
	int d = open_parent(x, rel, base, sizeof(base)), r = 0;

	if (d < 0)
		return d;
	if (fstatat(d, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	close(d);
	return r;
}

int ax_exists(const struct ax *x, const char *rel)
{
	struct stat st;

	return ax_stat(x, rel, &st) == 0;
}

DIR *ax_opendir(const struct ax *x, const char *rel)
{
	int fd = ax_open(x, rel, O_RDONLY | O_DIRECTORY, 0);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

int ax_read_rel(struct ax *x, const char *rel, char *buf, size_t cap, size_t *len, struct stat *st)
{
	ssize_t n;
	int fd;

	*len = 0;
	fd = ax_open(x, rel, O_RDONLY | O_NOFOLLOW, 0);
	if (fd < 0)
		return fd == -ELOOP ? -EINVAL : fd;
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st->st_size >= cap) {
		close(fd);
		return -EFBIG;
	}
	while (*len + 1 < cap && (n = read(fd, buf + *len, cap - 1 - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	if (*len + 1 >= cap)
		return -EFBIG;
	buf[*len] = 0;
	return 0;
}

int ax_mkdirs(struct ax *x, const char *dir)
{
	char p[PATH_MAX], base[NAME_MAX + 1];
	size_t i;
	int d, r;

	if (snprintf(p, sizeof(p), "%s/", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (i = 1; p[i]; i++) {
		if (p[i] != '/')
			continue;
		p[i] = 0;
		d = open_parent(x, p, base, sizeof(base));
		if (d < 0)
			return d;
		r = mkdirat(d, base, 0755) < 0 && errno != EEXIST ? -errno : 0;
		close(d);
		if (r)
			return r;
		p[i] = '/';
	}
	return 0;
}

/* Writes from the fd src (or from p) to rel: temp file, fsync, rename. */
static int write_file(struct ax *x, const char *rel, const void *p, size_t len, int src,
		      const struct stat *st)
{
	char base[NAME_MAX + 1], tmp[NAME_MAX + 16], buf[64 * 1024];
	int d, fd, r = 0;
	ssize_t n;

	d = open_parent(x, rel, base, sizeof(base));
	if (d < 0)
		return d;
	snprintf(tmp, sizeof(tmp), "%s.ferry-tmp", base);
	/* A temporary file left by an interrupted run would keep its own
	 * mode and owner through O_TRUNC, and the umask narrows a new one:
	 * a fresh file, then the original's mode and owner exactly
	 * (NetworkManager ignores a keyfile that is not 0600 and root's). */
	unlinkat(d, tmp, 0);
	fd = openat(d, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		    st ? st->st_mode & 07777 : 0644);
	if (fd < 0) {
		r = -errno;
		close(d);
		return r;
	}
	if (st && (st->st_uid || st->st_gid) && fchown(fd, st->st_uid, st->st_gid) < 0)
		r = -errno;
	if (!r && fchmod(fd, st ? st->st_mode & 07777 : 0644) < 0)
		r = -errno;
	if (!r && src < 0)
		r = fd_write_all(fd, p, len);
	while (!r && src >= 0 && (n = read(src, buf, sizeof(buf))) != 0)
		r = n < 0 ? -errno : fd_write_all(fd, buf, (size_t)n);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	/* Complete on disk before it takes the old name. */
	if (!r && renameat(d, tmp, d, base) < 0)
		r = -errno;
	if (r)
		unlinkat(d, tmp, 0);
	close(d);
	return r;
}

int ax_write_rel(struct ax *x, const char *rel, const void *p, size_t len, const struct stat *st)
{
	return write_file(x, rel, p, len, -1, st);
}

int ax_copy_rel(struct ax *x, const char *from, const char *to)
{
	struct stat st;
	int src = ax_open(x, from, O_RDONLY | O_NOFOLLOW, 0), r;

	if (src < 0)
		return src;
	if (fstat(src, &st) || !S_ISREG(st.st_mode)) {
		close(src);
		return -EINVAL;
	}
	r = write_file(x, to, NULL, 0, src, &st);
	close(src);
	return r;
}

int ax_rename_rel(struct ax *x, const char *from, const char *to)
{
	char b1[NAME_MAX + 1], b2[NAME_MAX + 1];
	int d1 = open_parent(x, from, b1, sizeof(b1)), d2, r = 0;

	if (d1 < 0)
		return d1;
	d2 = open_parent(x, to, b2, sizeof(b2));
	if (d2 < 0) {
		close(d1);
		return d2;
	}
	if (renameat(d1, b1, d2, b2) < 0)
		r = -errno;
	close(d1);
	close(d2);
	return r;
}

int ax_unlink_rel(struct ax *x, const char *rel)
{
	char base[NAME_MAX + 1];
	int d = open_parent(x, rel, base, sizeof(base)), r = 0;

	if (d < 0)
		return d;
	if (unlinkat(d, base, 0) < 0 && errno != ENOENT)
		r = -errno;
	close(d);
	return r;
}

/* Removes what dirfd/name is, depth first, never through a symlink. */
static int remove_at(int dirfd, const char *name, int depth)
{
	struct stat st;
	struct dirent *de;
	DIR *dir;
	int fd, r = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	if (depth > 32)
		return -ELOOP;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!r && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = remove_at(fd, de->d_name, depth + 1);
	closedir(dir);
	if (!r && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

int ax_remove_tree(struct ax *x, const char *rel)
{
	char base[NAME_MAX + 1];
	int d = open_parent(x, rel, base, sizeof(base)), r;

	if (d < 0)
		return d == -ENOENT ? 0 : d;
	r = remove_at(d, base, 0);
	close(d);
	return r;
}

/*
 * Where the original of rel is kept: rel.ferry-orig beside it, except in
 * directories whose every file is read (initramfs-tools' conf.d sources
 * "resume.ferry-orig" after "resume"; ifupdown's interfaces.d, ifcfg and
 * NetworkManager directories take any name as a configuration): there it
 * goes to AX_ORIG_DIR + rel + ".ferry-orig".
 */
void ax_orig_rel(const char *rel, char *out, size_t cap)
{
	static const char *const whole[] = {"/etc/sysconfig/network-scripts",
					    "/etc/sysconfig/network",
					    "/etc/NetworkManager/system-connections", NULL};
	const char *slash = strrchr(rel, '/');
	size_t dl = slash ? (size_t)(slash - rel) : 0, i;
	int away = dl >= 2 && rel[dl - 2] == '.' && rel[dl - 1] == 'd';

	for (i = 0; whole[i] && !away; i++)
		away = dl == strlen(whole[i]) && !strncmp(rel, whole[i], dl);
	snprintf(out, cap, "%s%s.ferry-orig", away ? AX_ORIG_DIR : "", rel);
}

int ax_keep_orig(struct ax *x, const char *rel, const void *p, size_t len, const struct stat *st)
{
	char orel[PATH_MAX];
	const char *slash;
	int r;

	ax_orig_rel(rel, orel, sizeof(orel));
	/* The first original stays: a second adapt keeps the pre-ferry file. */
	if (ax_exists(x, orel))
		return 0;
	slash = strrchr(orel, '/');
	if (slash && slash > orel) {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - orel), orel);
		if ((r = ax_mkdirs(x, dir)))
			return r;
	}
	return p ? ax_write_rel(x, orel, p, len, st) : ax_copy_rel(x, rel, orel);
}
