/*
 * ext.c - the libext2fs adapter of src/boot, and the only file here that
 * includes ext2fs.h. Filesystems are opened read-only (no EXT2_FLAG_RW,
 * so unix_io opens the disk O_RDONLY) at a byte offset ("offset=N"),
 * paths are looked up from the filesystem's own root with symlinks
 * followed inside it, and libext2fs error codes become negative errnos
 * here. It never writes, and never replays a journal.
 */
#include <sys/types.h> /* before ext2fs.h: musl needs it */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#include "boot/boot_impl.h"

#define EXT_CHUNK (64u * 1024)

struct boot_ext {
	ext2_filsys fs;
};

static int ext_errno(errcode_t e)
{
	if (!e)
		return 0;
	/* unix_io passes errno values through unchanged. */
	if (e > 0 && e < 4096)
		return -(int)e;
	switch (e) {
	case EXT2_ET_FILE_NOT_FOUND: return -ENOENT;
	case EXT2_ET_NO_DIRECTORY: return -ENOTDIR;
	case EXT2_ET_SYMLINK_LOOP: return -ELOOP;
	case EXT2_ET_NO_MEMORY: return -ENOMEM;
	case EXT2_ET_BAD_MAGIC: return -EINVAL;
	case EXT2_ET_UNSUPP_FEATURE:
	case EXT2_ET_RO_UNSUPP_FEATURE: return -EOPNOTSUPP;
	case EXT2_ET_FILE_TOO_BIG: return -EFBIG;
	default: return -EIO;
	}
}

int boot_ext_open(const char *path, uint64_t offset, struct boot_ext **out, char *err,
		  size_t errcap)
{
	struct boot_ext *x;
	char opts[48];
	errcode_t e;

	*out = NULL;
	initialize_ext2_error_table(); /* idempotent: the table is added once */
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)offset);
	e = ext2fs_open2(path, opts, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0, unix_io_manager,
			 &x->fs);
	if (e) {
		free(x);
		return boot_err(err, errcap, ext_errno(e), "%s", error_message(e));
	}
	*out = x;
	return 0;
}

void boot_ext_close(struct boot_ext *x)
{
	if (!x)
		return;
	ext2fs_close_free(&x->fs);
	free(x);
}

static int lookup(struct boot_ext *x, const char *path, ext2_ino_t *ino, struct ext2_inode *inode)
{
	errcode_t e;

	if (!path[0])
		return -ENOENT;
	e = ext2fs_namei_follow(x->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, ino);
	if (!e)
		e = ext2fs_read_inode(x->fs, *ino, inode);
	return ext_errno(e);
}

int boot_ext_stat(struct boot_ext *x, const char *path, int *type, uint64_t *size)
{
	struct ext2_inode in;
	ext2_ino_t ino;
	int r = lookup(x, path, &ino, &in);

	if (r)
		return r;
	*type = LINUX_S_ISREG(in.i_mode) ? 'f' : LINUX_S_ISDIR(in.i_mode) ? 'd' : '?';
	if (size)
		*size = EXT2_I_SIZE(&in);
	return 0;
}

/* Opens path as a regular file. */
static int open_file(struct boot_ext *x, const char *path, ext2_file_t *f, uint64_t *size)
{
	struct ext2_inode in;
	ext2_ino_t ino;
	errcode_t e;
	int r = lookup(x, path, &ino, &in);

	if (r)
		return r;
	if (!LINUX_S_ISREG(in.i_mode))
		return LINUX_S_ISDIR(in.i_mode) ? -EISDIR : -EINVAL;
	e = ext2fs_file_open2(x->fs, ino, &in, 0, f);
	if (e)
		return ext_errno(e);
	*size = EXT2_I_SIZE(&in);
	return 0;
}

int boot_ext_stream(struct boot_ext *x, const char *path, uint64_t cap, boot_sink_fn fn, void *arg,
		    uint64_t *len)
{
	ext2_file_t f = NULL;
	uint64_t size, done = 0;
	unsigned int got;
	uint8_t *buf = NULL;
	errcode_t e;
	int r;

	if (len)
		*len = 0;
	r = open_file(x, path, &f, &size);
	if (r)
		return r;
	if (len)
		*len = size;
	if (size > cap) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc(EXT_CHUNK);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (done < size) {
		e = ext2fs_file_read(f, buf, EXT_CHUNK, &got);
		if (e) {
			r = ext_errno(e);
			goto out;
		}
		if (!got) { /* the inode's size promised more */
			r = -EIO;
			goto out;
		}
		if (got > size - done)
			got = (unsigned int)(size - done);
		done += got;
		r = fn(arg, buf, got);
		if (r < 0)
			goto out;
		if (r > 0)
			break;
	}
	r = 0;
out:
	free(buf);
	ext2fs_file_close(f);
	return r;
}

struct membuf {
	char *p;
	size_t len, cap;
};

static int mem_sink(void *arg, const void *p, size_t n)
{
	struct membuf *m = arg;

	if (n > m->cap - m->len)
		return -EFBIG;
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return 0;
}

int boot_ext_read(struct boot_ext *x, const char *path, size_t cap, char **out, size_t *len)
{
	struct membuf m = {NULL, 0, 0};
	uint64_t size;
	int type, r;

	*out = NULL;
	*len = 0;
	r = boot_ext_stat(x, path, &type, &size);
	if (r)
		return r;
	if (type != 'f')
		return type == 'd' ? -EISDIR : -EINVAL;
	if (size > cap) {
		*len = size > SIZE_MAX ? SIZE_MAX : (size_t)size;
		return -EFBIG;
	}
	m.cap = (size_t)size;
	m.p = malloc(m.cap + 1);
	if (!m.p)
		return -ENOMEM;
	r = boot_ext_stream(x, path, cap, mem_sink, &m, NULL);
	if (r) {
		free(m.p);
		return r;
	}
	m.p[m.len] = 0;
	*out = m.p;
	*len = m.len;
	return 0;
}

int boot_ext_pread(struct boot_ext *x, const char *path, uint64_t off, void *buf, size_t n,
		   size_t *got)
{
	ext2_file_t f = NULL;
	uint64_t size;
	unsigned int k;
	size_t done = 0;
	errcode_t e;
	int r;

	*got = 0;
	r = open_file(x, path, &f, &size);
	if (r)
		return r;
	if (off >= size)
		goto out;
	if (n > size - off)
		n = (size_t)(size - off);
	e = ext2fs_file_llseek(f, off, EXT2_SEEK_SET, NULL);
	while (!e && done < n) {
		e = ext2fs_file_read(f, (char *)buf + done,
				     (unsigned int)(n - done > EXT_CHUNK ? EXT_CHUNK : n - done),
				     &k);
		if (!e && !k)
			break;
		done += k;
	}
	r = ext_errno(e);
	*got = done;
out:
	ext2fs_file_close(f);
	return r;
}

struct list_arg {
	boot_name_fn fn;
	void *arg;
	int stopped;
};

static int list_cb(struct ext2_dir_entry *d, int offset, int blocksize, char *buf, void *priv)
{
	struct list_arg *a = priv;
	char name[256];
	int n = ext2fs_dirent_name_len(d);

	(void)offset, (void)blocksize, (void)buf;
	if (n <= 0 || n > 255)
		return 0;
	memcpy(name, d->name, (size_t)n);
	name[n] = 0;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (a->fn(a->arg, name)) {
		a->stopped = 1;
		return DIRENT_ABORT;
	}
	return 0;
}

int boot_ext_list(struct boot_ext *x, const char *dir, boot_name_fn fn, void *arg)
{
	struct list_arg a = {fn, arg, 0};
	struct ext2_inode in;
	ext2_ino_t ino;
	int r = lookup(x, dir, &ino, &in);

	if (r)
		return r;
	if (!LINUX_S_ISDIR(in.i_mode))
		return -ENOTDIR;
	return ext_errno(ext2fs_dir_iterate(x->fs, ino, 0, NULL, list_cb, &a));
}
