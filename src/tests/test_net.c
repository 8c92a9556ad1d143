/*
 * test_net.c - net.c on the host: the host:port table (what is accepted
 * and exactly what comes out, what is refused), real sockets on
 * loopback (CLOEXEC and TCP_NODELAY on both ends, peer text, dual-stack
 * listening), refused and timed-out connects.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"
#include "tests/tap.h"

struct split_case {
	const char *in;
	uint16_t def;
	int rc;
	const char *host;
	uint16_t port;
};

static const struct split_case split_cases[] = {
    {"10.0.2.15:443", 443, 0, "10.0.2.15", 443},
    {"dest.example.com:8443", 443, 0, "dest.example.com", 8443},
    {"dest.example.com", 443, 0, "dest.example.com", 443},
    {":443", 0, 0, "", 443},
    {":1", 0, 0, "", 1},
    {"h:65535", 0, 0, "h", 65535},
    {"[::1]:443", 0, 0, "::1", 443},
    {"[fe80::1%eth0]:22", 0, 0, "fe80::1%eth0", 22},
    {"[::]", 443, 0, "::", 443},
    {"fe80::1", 443, 0, "fe80::1", 443}, /* bare v6: all host */
    {"", 443, -EINVAL, "", 0},
    {"host:", 443, -EINVAL, "", 0},
    {":", 443, -EINVAL, "", 0},
    {"host:0", 443, -EINVAL, "", 0},
    {"host:65536", 443, -EINVAL, "", 0},
    {"host:99999", 443, -EINVAL, "", 0},
    {"host:123456", 443, -EINVAL, "", 0},
    {"host:+80", 443, -EINVAL, "", 0},
    {"host:8o", 443, -EINVAL, "", 0},
    {"host: 80", 443, -EINVAL, "", 0},
    {"host", 0, -EINVAL, "", 0}, /* no default: a port is required */
    {"[::1", 443, -EINVAL, "", 0},
    {"::1]:443", 443, -EINVAL, "", 0},
    {"[::1]443", 443, -EINVAL, "", 0},
    {"[::1]:", 443, -EINVAL, "", 0},
    {"[]:443", 443, -EINVAL, "", 0},
    {"[[::1]]:443", 443, -EINVAL, "", 0},
    {"[dest.example.com]:443", 443, -EINVAL, "", 0},
    {"a:b:c", 443, -EINVAL, "", 0},
    {"http://dest:443", 443, -EINVAL, "", 0},
    {"user@dest:22", 443, -EINVAL, "", 0},
    {"de st:443", 443, -EINVAL, "", 0},
    {"dest/24:443", 443, -EINVAL, "", 0},
};

static void test_split(void)
{
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(split_cases); i++) {
		const struct split_case *tc = &split_cases[i];
		char host[NET_ADDR_MAX];
		uint16_t port = 7;
		int rc = net_split_hostport(tc->in, tc->def, host, sizeof(host), &port);

		if (tc->rc == 0)
			ok(rc == 0 && strcmp(host, tc->host) == 0 && port == tc->port,
			   "split \"%s\" -> host \"%s\" port %u (got rc %d, \"%s\", %u)", tc->in,
			   tc->host, tc->port, rc, host, port);
		else
			ok(rc == tc->rc && port == 7 && host[0] == 0,
			   "split \"%s\" refused (rc %d)", tc->in, rc);
	}
}

static void test_split_long(void)
{
	char in[400], host[300];
	uint16_t port = 0;
	int rc;

	memset(in, 'a', 254);
	strcpy(in + 254, ":443");
	rc = net_split_hostport(in, 443, host, sizeof(host), &port);
	ok(rc == -EINVAL, "254-char host refused (over RFC 1035's 253)");
	memset(in, 'a', 70);
	strcpy(in + 70, ":443");
	rc = net_split_hostport(in, 443, host, NET_ADDR_MAX, &port);
	ok(rc == -EINVAL, "host longer than the caller's buffer refused");
	memset(in, 'a', 63);
	strcpy(in + 63, ":443");
	rc = net_split_hostport(in, 443, host, NET_ADDR_MAX, &port);
	ok(rc == 0 && strlen(host) == 63, "63-char host fits a NET_ADDR_MAX buffer");
}

static int fd_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl >= 0 && (fl & FD_CLOEXEC);
}

static int fd_nodelay(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v;
}

static int fd_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_NONBLOCK);
}

static void test_loopback_v4(void)
{
	char peer[NET_ADDR_MAX], want[NET_ADDR_MAX];
	uint16_t port = 0, cport = 0;
	int lfd, cfd, afd, rc;
	char b = 0;

	lfd = net_listen("127.0.0.1", 0, 4);
	ok(lfd >= 0, "listen on 127.0.0.1:0 (rc %d)", lfd);
	if (lfd < 0)
		return;
	ok(fd_cloexec(lfd), "listener is CLOEXEC");
	rc = net_local_port(lfd, &port);
	ok(rc == 0 && port != 0, "bound port %u", port);
	cfd = net_connect("127.0.0.1", port, 2000);
	ok(cfd >= 0, "connect 127.0.0.1:%u (rc %d)", port, cfd);
	afd = net_accept(lfd, peer, sizeof(peer));
	ok(afd >= 0, "accept (rc %d)", afd);
	if (cfd >= 0 && afd >= 0) {
		ok(fd_cloexec(cfd) && fd_cloexec(afd), "both ends CLOEXEC");
		ok(fd_nodelay(cfd) && fd_nodelay(afd), "both ends TCP_NODELAY");
		ok(fd_blocking(cfd), "connected fd is back in blocking mode");
		net_local_port(cfd, &cport);
		snprintf(want, sizeof(want), "127.0.0.1:%u", cport);
		ok(strcmp(peer, want) == 0, "peer text \"%s\" (want \"%s\")", peer, want);
		ok(write(cfd, "x", 1) == 1 && read(afd, &b, 1) == 1 && b == 'x', "bytes flow");
	}
	if (cfd >= 0)
		close(cfd);
	if (afd >= 0)
		close(afd);
	close(lfd);
}

static void test_names(void)
{
	uint16_t port = 0;
	int lfd, cfd, afd;

	lfd = net_listen("localhost", 0, 4);
	ok(lfd >= 0, "listen on a name (localhost) (rc %d)", lfd);
	if (lfd < 0)
		return;
	net_local_port(lfd, &port);
	cfd = net_connect("localhost", port, 2000);
	ok(cfd >= 0, "connect to localhost:%u by name (rc %d)", port, cfd);
	if (cfd >= 0) {
		afd = net_accept(lfd, NULL, 0);
		ok(afd >= 0, "accept with no peer buffer");
		if (afd >= 0)
			close(afd);
		close(cfd);
	}
	close(lfd);
	cfd = net_connect("no-such-host.invalid", 443, 2000);
	ok(cfd < 0, "unresolvable name fails (rc %d: %s)", cfd, strerror(-cfd));
	ok(net_connect("", 443, 100) == -EINVAL && net_connect("h", 0, 100) == -EINVAL,
	   "connect refuses empty host and port 0");
}

static void test_dual_stack(void)
{
	char peer[NET_ADDR_MAX], want[NET_ADDR_MAX];
	uint16_t port = 0, cport = 0;
	int lfd, cfd, afd, v6;

	lfd = net_listen("", 0, 4);
	ok(lfd >= 0, "listen on \"\" (any) (rc %d)", lfd);
	if (lfd < 0)
		return;
	net_local_port(lfd, &port);
	cfd = net_connect("127.0.0.1", port, 2000);
	ok(cfd >= 0, "IPv4 client reaches the any-listener");
	if (cfd >= 0) {
		afd = net_accept(lfd, peer, sizeof(peer));
		net_local_port(cfd, &cport);
		snprintf(want, sizeof(want), "127.0.0.1:%u", cport);
		ok(afd >= 0 && strcmp(peer, want) == 0,
		   "IPv4 peer shown as \"%s\", not v4-mapped (want \"%s\")", peer, want);
		if (afd >= 0)
			close(afd);
		close(cfd);
	}
	v6 = socket(AF_INET6, SOCK_STREAM, 0);
	if (v6 < 0) {
		skip("no IPv6 in this kernel");
	} else {
		close(v6);
		cfd = net_connect("::1", port, 2000);
		if (cfd == -EADDRNOTAVAIL || cfd == -ENETUNREACH) {
			skip("IPv6 loopback has no address here");
		} else {
			ok(cfd >= 0, "IPv6 client reaches the same listener (rc %d)", cfd);
			if (cfd >= 0) {
				afd = net_accept(lfd, peer, sizeof(peer));
				ok(afd >= 0 && strncmp(peer, "[::1]:", 6) == 0,
				   "IPv6 peer shown as \"%s\"", peer);
				if (afd >= 0)
					close(afd);
				close(cfd);
			}
		}
	}
	close(lfd);
}

static void test_refused(void)
{
	uint16_t port = 0;
	int lfd, cfd;
	uint64_t t0;

	lfd = net_listen("127.0.0.1", 0, 1);
	net_local_port(lfd, &port);
	close(lfd);
	t0 = time_now_ms();
	cfd = net_connect("127.0.0.1", port, 2000);
	ok(cfd == -ECONNREFUSED, "closed port: -ECONNREFUSED (rc %d)", cfd);
	ok(time_now_ms() - t0 < 1000, "refusal is immediate");
	if (cfd >= 0)
		close(cfd);
}

/*
 * A listener whose accept queue is full drops SYNs, so the connect
 * hangs: a deterministic timeout without depending on a black-hole route.
 */
static void test_timeout(void)
{
	int lfd, fds[8], n = 0, rc = 0, i;
	uint16_t port = 0;
	uint64_t t0 = 0, dt = 0;

	lfd = net_listen("127.0.0.1", 0, 0);
	net_local_port(lfd, &port);
	for (i = 0; i < 8; i++) {
		t0 = time_now_ms();
		rc = net_connect("127.0.0.1", port, 300);
		dt = time_now_ms() - t0;
		if (rc < 0)
			break;
		fds[n++] = rc;
	}
	if (rc >= 0) {
		skip("the kernel never filled the accept queue");
	} else {
		ok(rc == -ETIMEDOUT, "connect into a full backlog: -ETIMEDOUT (rc %d)", rc);
		ok(dt >= 250 && dt < 1000, "gave up after %llu ms (deadline 300)",
		   (unsigned long long)dt);
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
}

int main(void)
{
	log_init("test_net", LOG_LVL_ERROR);
	test_split();
	test_split_long();
	test_loopback_v4();
	test_names();
	test_dual_stack();
	test_refused();
	test_timeout();
	return tap_done();
}
