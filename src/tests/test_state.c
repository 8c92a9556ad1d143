/*
 * test_state.c - the agent's state file is read like untrusted input:
 * a good file round-trips; corrupt, truncated, oversized, edited or
 * foreign files are rejected with a sentence, never trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tap.h"

/* The agent is not linked into unit tests: the module under test is. */
#include "../agent/state.c"

static char dir[] = "/tmp/ferry-test-state.XXXXXX";

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static const char good1[] = "ferry-state 1\n"
			    "session 00000000000000aa\n"
			    "seed 0123456789abcdef\n"
			    "chunk 65536\n"
			    "dest fp:1a2b3c4d\n"
			    "disks 1\n"
			    "disk vda 1073741824 512 268435456 /dev/sda\n"
			    "end\n";

static const char good[] = "ferry-state 2\n"
			   "session 00000000000000aa\n"
			   "seed 0123456789abcdef\n"
			   "chunk 65536\n"
			   "dest fp:1a2b3c4d\n"
			   "disks 2\n"
			   "disk vda 1073741824 512 268435456 /dev/sda\n"
			   "disk vdb 2147483648 4096 0 /srv/images/data disk.img\n"
			   "done 0 285212672 301989888\n"
			   "done 0 318767104 335544320\n"
			   "done 1 0 16777216\n"
			   "zeroed 0 10485760 10489856\n"
			   "zeroed 1 4096 12288\n"
			   "end\n";

struct bad {
	const char *what, *from, *to;
};

int main(void)
{
	static const struct bad table[] = {
		{ "another version", "ferry-state 2", "ferry-state 3" },
		{ "ranges out of order", "done 0 318767104 335544320", "done 0 1 2" },
		{ "overlapping ranges", "done 0 318767104", "done 0 301989887" },
		{ "a range past its disk", "done 1 0 16777216", "done 1 0 2147483649" },
		{ "a range on a disk not listed", "done 1 0", "done 2 0" },
		{ "an empty range", "zeroed 1 4096 12288", "zeroed 1 4096 4096" },
		{ "a range line with junk after it", "zeroed 1 4096 12288", "zeroed 1 4096 12288 x" },
		{ "an unknown line", "zeroed 1 4096 12288", "skipped 1 4096 12288" },
		{ "a negative offset", "zeroed 1 4096", "zeroed 1 -4096" },
		{ "a zero session", "session 00000000000000aa", "session 0000000000000000" },
		{ "a chunk that is not a power of two", "chunk 65536", "chunk 65537" },
		{ "a chunk too small", "chunk 65536", "chunk 512" },
		{ "no disks", "disks 2", "disks 0" },
		{ "too many disks", "disks 2", "disks 33" },
		{ "more disks announced than listed", "disks 2", "disks 3" },
		{ "acked past the disk's end", "268435456 /dev/sda", "1073741825 /dev/sda" },
		{ "a sector size below 512", "1073741824 512", "1073741824 256" },
		{ "a disk line without a source", " /dev/sda\n", "\n" },
		{ "a missing end line", "end\n", "" },
		{ "garbage instead of a size", "1073741824 512", "lots 512" },
	};
	char path[300], err[400], text[2048];
	static struct mstate s, back;
	size_t i;
	int fd;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/s.state", dir);

	put(path, good);
	is_int(state_load(path, &s, err, sizeof(err)), 0, "a good state file loads");
	ok(s.session == 0xaa && s.chunk == 65536 && s.n == 2 && s.d[0].acked == 268435456 &&
	   !strcmp(s.d[1].src, "/srv/images/data disk.img") && s.d[1].lsec == 4096,
	   "its fields (a source path with a space)");
	ok(s.ndone == 3 && s.done[1].off == 318767104 && s.done[2].disk == 1 &&
	   s.done[2].end == 16777216 && s.nzeroed == 2 && s.zeroed[0].off == 10485760 &&
	   s.zeroed[1].end == 12288, "its durable ranges and its zeroed ranges");
	put(path, good1);
	ok(state_load(path, &back, err, sizeof(err)) == 0 && back.n == 1 && back.ndone == 0 &&
	   back.d[0].acked == 268435456, "a version 1 file (no lists) still loads (%s)", err);
	{
		char v1[1024];
		const char *e = strstr(good1, "end\n");

		snprintf(v1, sizeof(v1), "%.*sdone 0 0 4096\nend\n", (int)(e - good1), good1);
		put(path, v1);
		ok(state_load(path, &back, err, sizeof(err)) == -EBADMSG,
		   "a version 1 file with a list is rejected");
	}
	is_int(state_save(path, &s, err, sizeof(err)), 0, "saved again");
	is_int(state_load(path, &back, err, sizeof(err)), 0, "and loaded");
	ok(!memcmp(&s, &back, sizeof(s)), "the round trip keeps every field");
	snprintf(text, sizeof(text), "%s.tmp", path);
	ok(access(text, F_OK) != 0, "no temp file left behind");

	for (i = 0; i < FERRY_ARRAY_LEN(table); i++) {
		const char *at = strstr(good, table[i].from);
		size_t pre = (size_t)(at - good);

		snprintf(text, sizeof(text), "%.*s%s%s", (int)pre, good, table[i].to,
			 at + strlen(table[i].from));
		put(path, text);
		err[0] = 0;
		ok(state_load(path, &s, err, sizeof(err)) == -EBADMSG && strstr(err, path),
		   "rejected: %s (%s)", table[i].what, err);
	}
	/* Every truncation of a good file is rejected (but for the last
	 * newline: "end" is all there is to say). */
	for (i = 0; i < strlen(good) - 1; i++) {
		snprintf(text, sizeof(text), "%.*s", (int)i, good);
		put(path, text);
		if (state_load(path, &s, err, sizeof(err)) == 0)
			break;
	}
	is_int((int)i, (int)strlen(good) - 1, "every truncated state file is rejected");
	/* An oversized file is rejected before it is parsed. */
	fd = open(path, O_WRONLY | O_TRUNC);
	for (i = 0; i <= STATE_FILE_MAX; i += 64)
		(void)!write(fd, "################################################################", 64);
	close(fd);
	ok(state_load(path, &s, err, sizeof(err)) == -EBADMSG && strstr(err, "larger"),
	   "an oversized file is rejected (%s)", err);
	/* Binary garbage. */
	fd = open(path, O_WRONLY | O_TRUNC);
	for (i = 0; i < 4096; i++) {
		unsigned char b = (unsigned char)(i * 131 + 7);

		(void)!write(fd, &b, 1);
	}
	close(fd);
	ok(state_load(path, &s, err, sizeof(err)) == -EBADMSG, "binary garbage is rejected");
	unlink(path);
	ok(state_load(path, &s, err, sizeof(err)) == -ENOENT, "no file: -ENOENT, not an error");
	/* The path is derived from the destination's fingerprint only. */
	{
		char a[600], b[600];

		state_path("/x", "fp:1a2b3c4d", a, sizeof(a));
		state_path("/x", "fp:1a2b3c4e", b, sizeof(b));
		ok(strcmp(a, b) && !strncmp(a, "/x/migrate-", 11), "one file per destination (%s)", a);
	}
	/* Every list full still fits a file. */
	{
		static struct mstate full, back2;

		memset(&full, 0, sizeof(full));
		full.session = 0xbb;
		full.seed = 1;
		full.chunk = 65536;
		snprintf(full.dest, sizeof(full.dest), "fp:1a2b3c4d");
		snprintf(full.d[0].dst, sizeof(full.d[0].dst), "vda");
		full.d[0].lsec = 512;
		full.n = 1;
		full.d[0].size = 1ull << 42;
		full.d[0].acked = 0;
		for (i = 0; i < PROTO_DONE_MAX; i++)
			full.done[i] = (struct proto_range){ 0, (uint64_t)(2 * i + 1) << 30,
							     (uint64_t)(2 * i + 2) << 30 };
		full.ndone = PROTO_DONE_MAX;
		for (i = 0; i < STATE_ZEROED_MAX; i++)
			full.zeroed[i] = (struct proto_range){ 0, (uint64_t)(2 * i + 1) << 29,
							       (uint64_t)(2 * i + 2) << 29 };
		full.nzeroed = STATE_ZEROED_MAX;
		snprintf(full.d[0].src, sizeof(full.d[0].src), "%0255d", 7);
		ok(state_save(path, &full, err, sizeof(err)) == 0 &&
		   state_load(path, &back2, err, sizeof(err)) == 0 && !memcmp(&full, &back2, sizeof(full)),
		   "%d durable and %d zeroed ranges round-trip (%s)", PROTO_DONE_MAX, STATE_ZEROED_MAX,
		   err);
		unlink(path);
	}
	rmdir(dir);
	return tap_done();
}
