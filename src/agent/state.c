/*
 * state.c - reads and writes the agent's state file. The format is one
 * record per line ("key value..."); every field is bounded and checked
 * when read back, because the file may be truncated, edited or from
 * another version.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/state.h"
#include "common/common.h"

void state_path(const char *dir, const char *dest, char *out, size_t cap)
{
	uint8_t h[HASH_LEN];

	hash128(dest, strlen(dest), 0x6665727279ull, h);
	snprintf(out, cap, "%s/migrate-%02x%02x%02x%02x%02x%02x%02x%02x.state", dir, h[0], h[1],
		 h[2], h[3], h[4], h[5], h[6], h[7]);
}

static int mkdirs(const char *path)
{
	char tmp[512], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int state_save(const char *path, const struct mstate *s, char *err, size_t errcap)
{
	static char buf[STATE_FILE_MAX];
	char tmp[600], dir[512], etext[64], *slash;
	size_t o = 0;
	uint32_t i;
	int fd, r;

	if (s->ndone > PROTO_DONE_MAX || s->nzeroed > STATE_ZEROED_MAX) {
		snprintf(err, errcap, "state too large");
		return -E2BIG;
	}
	o += (size_t)snprintf(buf + o, sizeof(buf) - o,
			      "ferry-state 2\nsession %016" PRIx64 "\nseed %016" PRIx64
			      "\nchunk %u\ndest %s\ndisks %u\n",
			      s->session, s->seed, s->chunk, s->dest, s->n);
	for (i = 0; i < s->n && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "disk %s %" PRIu64 " %u %" PRIu64 " %s\n", s->d[i].dst,
				      s->d[i].size, s->d[i].lsec, s->d[i].acked, s->d[i].src);
	for (i = 0; i < s->ndone && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "done %u %" PRIu64 " %" PRIu64 "\n",
				      s->done[i].disk, s->done[i].off, s->done[i].end);
	for (i = 0; i < s->nzeroed && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "zeroed %u %" PRIu64 " %" PRIu64 "\n",
				      s->zeroed[i].disk, s->zeroed[i].off, s->zeroed[i].end);
	if (o >= sizeof(buf) - 8) {
		snprintf(err, errcap, "state too large");
		return -E2BIG;
	}
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "end\n");
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if ((r = mkdirs(dir))) {
			snprintf(err, errcap, "%s: %s", dir, err_text(-r, etext, sizeof(etext)));
			return r;
		}
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errcap, "%s: %s", tmp, err_text(-r, etext, sizeof(etext)));
		return r;
	}
	if ((r = fd_write_all(fd, buf, o)) || (fsync(fd) < 0 && (r = -errno))) {
		close(fd);
		unlink(tmp);
		snprintf(err, errcap, "%s: %s", tmp, err_text(-r, etext, sizeof(etext)));
		return r;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		snprintf(err, errcap, "%s: %s", path, err_text(-r, etext, sizeof(etext)));
		return r;
	}
	if (slash && (fd = open(slash != dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

int state_remove(const char *path)
{
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* One line from buf[*pos..len) into line (cap), without the newline. */
static int next_line(const char *buf, size_t len, size_t *pos, char *line, size_t cap)
{
	size_t s = *pos, e = s;

	if (s >= len)
		return 0;
	while (e < len && buf[e] != '\n')
		e++;
	if (e - s >= cap)
		return -1;
	memcpy(line, buf + s, e - s);
	line[e - s] = 0;
	*pos = e + 1;
	return 1;
}

static int bad(char *err, size_t errcap, const char *path, const char *what)
{
	snprintf(err, errcap, "%s: %s", path, what);
	return -EBADMSG;
}

/* "KEY DISK OFF END" into the next free entry of list (at most max,
 * count in *n): a range of a listed disk, after the previous one. */
static int range_line(const char *line, const char *key, const struct mstate *s,
		      struct proto_range *list, uint32_t *n, uint32_t max)
{
	struct proto_range r;
	char k[16];
	int end = -1;

	memset(&r, 0, sizeof(r));

	if (sscanf(line, "%15s %u %" SCNu64 " %" SCNu64 "%n", k, &r.disk, &r.off, &r.end, &end) != 4 ||
	    end < 0 || line[end] || strcmp(k, key) || *n >= max || r.disk >= s->n ||
	    r.off >= r.end || r.end > s->d[r.disk].size)
		return -1;
	if (*n && (list[*n - 1].disk > r.disk ||
		   (list[*n - 1].disk == r.disk && list[*n - 1].end > r.off)))
		return -1;
	list[(*n)++] = r;
	return 0;
}

int state_load(const char *path, struct mstate *s, char *err, size_t errcap)
{
	static char buf[STATE_FILE_MAX + 1];
	char line[512];
	size_t pos = 0, len = 0;
	uint32_t i, n = 0;
	ssize_t r;
	int fd, version;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)r;
	close(fd);
	if (len > STATE_FILE_MAX)
		return bad(err, errcap, path, "larger than a state file can be");
	/* Version 1 had no lists; it still resumes. */
	if (next_line(buf, len, &pos, line, sizeof(line)) != 1 ||
	    (strcmp(line, "ferry-state 1") && strcmp(line, "ferry-state 2")))
		return bad(err, errcap, path, "not a ferry state file (version 1 or 2)");
	version = line[12] - '0';
	if (next_line(buf, len, &pos, line, sizeof(line)) != 1 ||
	    sscanf(line, "session %16" SCNx64, &s->session) != 1 || !s->session)
		return bad(err, errcap, path, "bad session line");
	if (next_line(buf, len, &pos, line, sizeof(line)) != 1 ||
	    sscanf(line, "seed %16" SCNx64, &s->seed) != 1)
		return bad(err, errcap, path, "bad seed line");
	if (next_line(buf, len, &pos, line, sizeof(line)) != 1 ||
	    sscanf(line, "chunk %u", &s->chunk) != 1 || s->chunk < 4096 ||
	    s->chunk > PROTO_DATA_MAX || (s->chunk & (s->chunk - 1)))
		return bad(err, errcap, path, "bad chunk line");
	if (next_line(buf, len, &pos, line, sizeof(line)) != 1 || strncmp(line, "dest ", 5) ||
	    strlen(line + 5) >= sizeof(s->dest))
		return bad(err, errcap, path, "bad dest line");
	memcpy(s->dest, line + 5, strlen(line + 5) + 1);
	if (next_line(buf, len, &pos, line, sizeof(line)) != 1 || sscanf(line, "disks %u", &n) != 1 ||
	    n == 0 || n > PROTO_MAX_DISKS)
		return bad(err, errcap, path, "bad disks line");
	s->n = n;
	for (i = 0; i < n; i++) {
		int off = -1;

		if (next_line(buf, len, &pos, line, sizeof(line)) != 1 ||
		    sscanf(line, "disk %31s %" SCNu64 " %u %" SCNu64 " %n", s->d[i].dst, &s->d[i].size,
			   &s->d[i].lsec, &s->d[i].acked, &off) != 4 || off < 0 ||
		    strlen(line + off) == 0 || strlen(line + off) >= sizeof(s->d[i].src) ||
		    s->d[i].acked > s->d[i].size || s->d[i].lsec < 512)
			return bad(err, errcap, path, "bad disk line");
		snprintf(s->d[i].src, sizeof(s->d[i].src), "%s", line + off);
	}
	for (;;) {
		if (next_line(buf, len, &pos, line, sizeof(line)) != 1)
			return bad(err, errcap, path, "truncated (no end line)");
		if (!strcmp(line, "end"))
			break;
		if (version < 2)
			return bad(err, errcap, path, "truncated (no end line)");
		if (!strncmp(line, "done ", 5)) {
			if (range_line(line, "done", s, s->done, &s->ndone, PROTO_DONE_MAX))
				return bad(err, errcap, path, "bad done line");
		} else if (!strncmp(line, "zeroed ", 7)) {
			if (range_line(line, "zeroed", s, s->zeroed, &s->nzeroed, STATE_ZEROED_MAX))
				return bad(err, errcap, path, "bad zeroed line");
		} else {
			return bad(err, errcap, path, "an unknown line");
		}
	}
	return 0;
}
