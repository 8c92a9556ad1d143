/*
 * test_receive.c - the receiver's record of what is durable, on real
 * file-backed disks: ranges a FLUSH lists are merged into the committed
 * prefix or kept sorted past it, a full list drops its highest range
 * (sent again, never skipped), and a failed write is sticky: no later
 * FLUSH of the session commits anything until a new PLAN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tap.h"

/* ferry-init is not linked into unit tests: the file under test is. */
#include "../../init/receive.c"

#define MIB (1ull << 20)

static char dir[] = "/tmp/ferry-test-receive.XXXXXX";
static struct serve_config cfg;
static struct proto_plan plan;
static struct recv_state st;
static struct proto_plan_ok ok_;
static uint8_t scratch_[RECV_SCRATCH] __attribute__((aligned(RECV_ALIGN)));

static void flush_ranges(const struct proto_range *r, uint32_t n)
{
	struct proto_flush fl;
	char err[PROTO_TEXT_MAX];

	memset(&fl, 0, sizeof(fl));
	fl.n = n;
	memcpy(fl.r, r, n * sizeof(*r));
	if (recv_flush(&st, &fl, err, sizeof(err)))
		note("recv_flush: %s", err);
}

static void flush1(uint32_t disk, uint64_t off, uint64_t end)
{
	struct proto_range r = {disk, off, end};

	flush_ranges(&r, 1);
}

/* The durable ranges as "d:off-end d:off-end" in MiB, prefixes first. */
static const char *durable(void)
{
	static char b[4096];
	size_t o = 0;
	uint32_t i;

	memset(&ok_, 0, sizeof(ok_));
	recv_durable(&st, &ok_);
	for (i = 0; i < st.ndisks; i++)
		o += (size_t)snprintf(b + o, sizeof(b) - o, "%s%u<%llu", i ? " " : "", i,
				      (unsigned long long)(ok_.committed[i] / MIB));
	for (i = 0; i < ok_.ndone && o < sizeof(b) - 64; i++)
		o += (size_t)snprintf(b + o, sizeof(b) - o, " %u:%llu-%llu", ok_.done[i].disk,
				      (unsigned long long)(ok_.done[i].off / MIB),
				      (unsigned long long)(ok_.done[i].end / MIB));
	return b;
}

/* Nothing else can run without the disks. */
static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

static void is_durable(const char *want, const char *name)
{
	const char *got = durable();

	if (!ok(!strcmp(got, want), "%s", name))
		note("got \"%s\", want \"%s\"", got, want);
}

static void setup(void)
{
	char err[PROTO_TEXT_MAX];
	uint32_t i;

	if (!mkdtemp(dir))
		die("mkdtemp");
	memset(&cfg, 0, sizeof(cfg));
	memset(&plan, 0, sizeof(plan));
	plan.chunk = 65536;
	plan.session = 0x42;
	plan.streams = 2;
	plan.ndisks = 2;
	for (i = 0; i < 2; i++) {
		struct disk_info *d = &cfg.disks[i];
		int fd;

		snprintf(d->name, sizeof(d->name), "vd%c", 'a' + i);
		snprintf(d->path, sizeof(d->path), "%s/%s.img", dir, d->name);
		d->size = 64 * MIB;
		d->lsec = d->psec = 512;
		fd = open(d->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)d->size) < 0)
			die(d->path);
		close(fd);
		snprintf(plan.disks[i].dst, sizeof(plan.disks[i].dst), "%s", d->name);
		snprintf(plan.disks[i].src, sizeof(plan.disks[i].src), "/dev/sd%c", 'a' + i);
		plan.disks[i].src_size = d->size;
		plan.disks[i].lsec = 512;
		plan.disks[i].dst_index = i;
		plan.disks[i].dst_size = d->size;
	}
	cfg.ndisks = 2;
	if (recv_open(&st, &plan, &cfg, err, sizeof(err)))
		die(err);
	recv_begin(&st);
}

static void test_ranges(void)
{
	uint32_t i;

	is_durable("0<0 1<0", "nothing durable at first");
	/* Two streams on interleaved 16 MiB stripes: 0-16 and 16-32. */
	flush1(0, 16 * MIB, 20 * MIB);
	is_durable("0<0 1<0 0:16-20", "a stream past the first stripe: a range, no prefix");
	flush1(0, 0, 4 * MIB);
	is_durable("0<4 1<0 0:16-20", "the first stripe's start: the prefix grows");
	flush1(0, 4 * MIB, 16 * MIB);
	is_durable("0<20 1<0", "the gap filled: prefix and range merge");
	flush1(0, 40 * MIB, 48 * MIB);
	flush1(1, 8 * MIB, 12 * MIB);
	flush1(0, 24 * MIB, 32 * MIB);
	is_durable("0<20 1<0 0:24-32 0:40-48 1:8-12", "ranges sorted by disk, then offset");
	flush1(0, 32 * MIB, 40 * MIB);
	is_durable("0<20 1<0 0:24-48 1:8-12", "a range touching two merges all three");
	flush1(0, 10 * MIB, 12 * MIB);
	is_durable("0<20 1<0 0:24-48 1:8-12", "a range inside the prefix changes nothing");
	{
		struct proto_range two[2] = {{0, 20 * MIB, 24 * MIB}, {1, 0, 8 * MIB}};

		flush_ranges(two, 2);
	}
	is_durable("0<48 1<12", "one FLUSH, two disks: both prefixes grow");
	flush1(0, 60 * MIB, 64 * MIB);
	flush1(0, 48 * MIB, 60 * MIB);
	is_durable("0<64 1<12", "the whole disk");

	/* A full list keeps the lowest ranges: what it drops is sent again. */
	for (i = 0; i < PROTO_DONE_MAX + 8; i++)
		flush1(1, 13 * MIB + (uint64_t)i * 32768, 13 * MIB + (uint64_t)i * 32768 + 4096);
	memset(&ok_, 0, sizeof(ok_));
	recv_durable(&st, &ok_);
	ok(ok_.ndone == PROTO_DONE_MAX && ok_.done[0].off == 13 * MIB &&
	       ok_.done[PROTO_DONE_MAX - 1].off ==
		   13 * MIB + (uint64_t)(PROTO_DONE_MAX - 1) * 32768,
	   "a full list holds the %d lowest ranges (%u)", PROTO_DONE_MAX, ok_.ndone);
	flush1(1, 12 * MIB + 4096, 13 * MIB);
	recv_durable(&st, &ok_);
	ok(ok_.ndone == PROTO_DONE_MAX && ok_.done[0].off == 12 * MIB + 4096 &&
	       ok_.done[0].end == 13 * MIB + 4096,
	   "a lower range still goes in, merged with its neighbour; the highest is dropped");
	for (i = 1; i < ok_.ndone; i++)
		if (ok_.done[i].disk != 1 || ok_.done[i].off <= ok_.done[i - 1].end)
			break;
	ok(i == ok_.ndone, "sorted and never touching after all that");
}

static void test_sticky(void)
{
	struct proto_data d;
	char err[PROTO_TEXT_MAX];
	int ro, r;

	recv_begin(&st);
	memset(&d, 0, sizeof(d));
	d.disk = 1;
	d.enc = PROTO_ENC_RAW;
	d.off = 20 * MIB;
	d.len = 65536;
	d.payload = scratch_;
	d.plen = 65536;
	memset(scratch_, 0xa5, 65536);
	ok(recv_write(&st, &d, scratch_, err, sizeof(err)) == 0, "a write");
	/* The disk turns read-only under us: the next write fails. */
	ro = open(st.d[1].path, O_RDONLY);
	dup2(ro, st.d[1].fd);
	close(ro);
	d.off = 24 * MIB;
	r = recv_write(&st, &d, scratch_, err, sizeof(err));
	ok(r == -EBADF && strstr(err, "vdb: writing 65536 bytes at offset 25165824 failed") &&
	       strstr(err, "(EBADF)"),
	   "a failed write names disk, offset and errno (%s)", err);
	{
		static struct proto_plan_ok before;
		struct proto_range r1 = {1, 12 * MIB, 28 * MIB};
		struct proto_flush fl = {.n = 1};

		memset(&before, 0, sizeof(before));
		recv_durable(&st, &before);
		fl.r[0] = r1;
		r = recv_flush(&st, &fl, err, sizeof(err));
		ok(r == -EIO && strstr(err, "offset 25165824"),
		   "every later FLUSH fails with it (%s)", err);
		memset(&ok_, 0, sizeof(ok_));
		recv_durable(&st, &ok_);
		ok(!memcmp(&before, &ok_, sizeof(ok_)), "and commits nothing");
	}
	d.disk = 0;
	d.off = 0;
	ok(recv_write(&st, &d, scratch_, err, sizeof(err)) == -EIO,
	   "a write of another stream fails too");
	recv_begin(&st);
	ok(recv_flush(&st, &(struct proto_flush){.n = 0}, err, sizeof(err)) == 0,
	   "a new PLAN starts clean");
}

int main(void)
{
	setup();
	test_ranges();
	test_sticky();
	recv_close(&st);
	unlink(cfg.disks[0].path);
	unlink(cfg.disks[1].path);
	rmdir(dir);
	return tap_done();
}
