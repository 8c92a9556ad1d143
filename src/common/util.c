/*
 * util.c - small helpers with no state: sizes for humans, time, secret
 * wiping, whole-buffer writes, bounded number parsing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

const char *fmt_bytes(uint64_t n, char *buf, size_t cap)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < FERRY_ARRAY_LEN(unit)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
	return buf;
}

uint64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mem_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

int mem_neq_ct(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d != 0;
}

int file_read_small(const char *path, char *buf, size_t cap)
{
	int fd, err = 0;
	ssize_t n;
	size_t len = 0;

	if (cap == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < cap - 1) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (err)
		return err;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = 0;
	return (int)len;
}

int fd_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		uint64_t d;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (uint64_t)(*s - '0');
		if (v > max / 10)
			return -ERANGE;
		v *= 10;
		if (d > max - v)
			return -ERANGE;
		v += d;
	}
	*out = v;
	return 0;
}

const char *json_str(const char *s, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap < 3) {
		if (cap)
			buf[0] = 0;
		return buf;
	}
	buf[o++] = '"';
	for (; *s && o + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

const char *err_text(int e, char *buf, size_t cap)
{
	static const struct {
		int e;
		const char *name;
	} t[] = { { EIO, "EIO" },	  { ENOSPC, "ENOSPC" },	  { EDQUOT, "EDQUOT" },
		  { EROFS, "EROFS" },	  { ENXIO, "ENXIO" },	  { ENODEV, "ENODEV" },
		  { EFBIG, "EFBIG" },	  { EINVAL, "EINVAL" },	  { EBADF, "EBADF" },
		  { ENOMEM, "ENOMEM" },	  { EPERM, "EPERM" },	  { EACCES, "EACCES" },
		  { ENODATA, "ENODATA" }, { EREMOTEIO, "EREMOTEIO" }, { EILSEQ, "EILSEQ" },
		  { ETIMEDOUT, "ETIMEDOUT" }, { EMEDIUMTYPE, "EMEDIUMTYPE" },
		  { ENOMEDIUM, "ENOMEDIUM" }, { EBUSY, "EBUSY" } };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].e == e) {
			snprintf(buf, cap, "%s (%s)", strerror(e), t[i].name);
			return buf;
		}
	snprintf(buf, cap, "%s (errno %d)", strerror(e), e);
	return buf;
}
