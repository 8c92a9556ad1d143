/*
 * test_net.c - net.c on the host: the host:port table (what is accepted
 * and exactly what comes out, what is refused), real sockets on
 * loopback (CLOEXEC and TCP_NODELAY on both ends, peer text, dual-stack
 * listening), refused and timed-out connects. proxy.c: the proxy URL
 * table, the reply-head parser (malformed, oversized, split), and
 * CONNECT against a scripted proxy in a child process.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* Keepalive on, and the probes and the unacknowledged-data limit that
 * make a vanished peer dead within NET_DEAD_MS. */
static int fd_dead_peer(int fd)
{
	int ka = 0, idle = 0, intvl = 0, cnt = 0;
	unsigned int user = 0;
	socklen_t l1 = sizeof(int), l2 = sizeof(int), l3 = sizeof(int), l4 = sizeof(int),
		  l5 = sizeof(user);

	return getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l1) == 0 && ka &&
	       getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l2) == 0 &&
	       idle == NET_KEEPIDLE_S &&
	       getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, &l3) == 0 &&
	       intvl == NET_KEEPINTVL_S &&
	       getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, &l4) == 0 && cnt == NET_KEEPCNT &&
	       getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, &l5) == 0 &&
	       user == NET_DEAD_MS && NET_KEEPIDLE_S + NET_KEEPCNT * NET_KEEPINTVL_S <= 60;
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
		ok(fd_dead_peer(cfd) && fd_dead_peer(afd),
		   "both ends: keepalive %d s + %d x %d s, unacknowledged data %d ms",
		   NET_KEEPIDLE_S, NET_KEEPCNT, NET_KEEPINTVL_S, NET_DEAD_MS);
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

/* ---- proxy.c ------------------------------------------------------------ */

struct url_case {
	const char *in;
	int rc;
	const char *host;
	uint16_t port;
	int auth;
	const char *user, *pass;
};

static const struct url_case url_cases[] = {
    {"http://127.0.0.1:3128", 0, "127.0.0.1", 3128, 0, "", ""},
    {"http://proxy.corp.example:8080/", 0, "proxy.corp.example", 8080, 0, "", ""},
    {"HTTP://proxy:8080", 0, "proxy", 8080, 0, "", ""},
    {"proxy:3128", 0, "proxy", 3128, 0, "", ""}, /* https_proxy without a scheme */
    {"http://[::1]:3128", 0, "::1", 3128, 0, "", ""},
    {"http://alice:s3cret@127.0.0.1:3128", 0, "127.0.0.1", 3128, 1, "alice", "s3cret"},
    {"http://alice@10.0.0.1:1", 0, "10.0.0.1", 1, 1, "alice", ""},
    {"http://alice:@h:1", 0, "h", 1, 1, "alice", ""},
    {"http://al%69ce:p%40ss%3Aw%2fd@h:1", 0, "h", 1, 1, "alice", "p@ss:w/d"},
    {"http://u:p@ss@h:1", 0, "h", 1, 1, "u", "p@ss"}, /* the last '@' ends it */
    {"http://u:p%20q@[fd00::5]:3128", 0, "fd00::5", 3128, 1, "u", "p q"},
    {"", -EINVAL, 0, 0, 0, 0, 0},
    {"http://", -EINVAL, 0, 0, 0, 0, 0},
    {"http://proxy", -EINVAL, 0, 0, 0, 0, 0}, /* no port: no guessing */
    {"http://proxy:", -EINVAL, 0, 0, 0, 0, 0},
    {"http://proxy:0", -EINVAL, 0, 0, 0, 0, 0},
    {"http://proxy:65536", -EINVAL, 0, 0, 0, 0, 0},
    {"http://proxy:3128/path", -EINVAL, 0, 0, 0, 0, 0},
    {"http://proxy:3128?x=1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://pro xy:3128", -EINVAL, 0, 0, 0, 0, 0},
    {"http://h:1:2", -EINVAL, 0, 0, 0, 0, 0},
    {"https://proxy:443", -EPROTONOSUPPORT, 0, 0, 0, 0, 0},
    {"socks5://proxy:1080", -EPROTONOSUPPORT, 0, 0, 0, 0, 0},
    {"httpx://proxy:1", -EPROTONOSUPPORT, 0, 0, 0, 0, 0},
    {"://proxy:1", -EPROTONOSUPPORT, 0, 0, 0, 0, 0},
    {"http://@h:1", -EINVAL, 0, 0, 0, 0, 0},			/* empty user */
    {"http://:pass@h:1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://u%3ax:p@h:1", -EINVAL, 0, 0, 0, 0, 0},		/* ':' in a Basic user */
    {"http://u%0d%0aX-Evil:%20y:p@h:1", -EINVAL, 0, 0, 0, 0, 0}, /* header injection */
    {"http://u:p%0a@h:1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://u:p%00@h:1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://u:p%zz@h:1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://u:p%4@h:1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://u:p%@h:1", -EINVAL, 0, 0, 0, 0, 0},
    {"http://u:p\tq@h:1", -EINVAL, 0, 0, 0, 0, 0},
};

static void test_proxy_url(void)
{
	struct net_proxy p;
	char err[300], url[400];
	size_t i;
	int rc;

	for (i = 0; i < FERRY_ARRAY_LEN(url_cases); i++) {
		const struct url_case *tc = &url_cases[i];

		err[0] = 0;
		memset(&p, 0x55, sizeof(p));
		rc = net_proxy_parse(tc->in, &p, err, sizeof(err));
		if (tc->rc == 0)
			ok(rc == 0 && !strcmp(p.host, tc->host) && p.port == tc->port &&
				   p.auth == tc->auth && !strcmp(p.user, tc->user) &&
				   !strcmp(p.pass, tc->pass),
			   "proxy \"%s\" -> %s %u auth %d user \"%s\" pass \"%s\" (rc %d: %s)", tc->in,
			   tc->host, tc->port, tc->auth, tc->user, tc->pass, rc, err);
		else
			ok(rc == tc->rc && err[0] && !p.auth && !p.user[0] && !p.pass[0],
			   "proxy \"%s\" refused with %d (rc %d: %s)", tc->in, tc->rc, rc, err);
		net_proxy_wipe(&p);
	}

	/* The password never appears in an error, whatever is wrong. */
	rc = net_proxy_parse("http://alice:TOPSECRET@proxy", &p, err, sizeof(err));
	ok(rc == -EINVAL && !strstr(err, "TOPSECRET") && strstr(err, "alice:***@proxy"),
	   "error masks the password: %s", err);
	rc = net_proxy_parse("http://alice:TOPSECRET@proxy:1/x", &p, err, sizeof(err));
	ok(rc == -EINVAL && !strstr(err, "TOPSECRET"), "path error masks the password: %s", err);
	rc = net_proxy_parse("http://al%0aice:TOPSECRET@proxy:1", &p, err, sizeof(err));
	ok(rc == -EINVAL && !strstr(err, "TOPSECRET"), "bad user error masks the password: %s", err);
	rc = net_proxy_parse("http://alice:TOP/SECRET@proxy:1", &p, err, sizeof(err));
	ok(rc == -EINVAL && !strstr(err, "SECRET") && strstr(err, "alice:***@proxy:1"),
	   "an unescaped '/' in the password is still masked: %s", err);
	rc = net_proxy_parse("http://alice:TOPSECRET", &p, err, sizeof(err));
	ok(rc == -EINVAL && !strstr(err, "TOPSECRET"), "user:pass without a host is masked: %s",
	   err);
	rc = net_proxy_parse("http://proxy:3128/x", &p, err, sizeof(err));
	ok(rc == -EINVAL && strstr(err, "'http://proxy:3128/x'"), "a port is not masked: %s", err);

	/* Lengths: the URL, and each credential after decoding. */
	snprintf(url, sizeof(url), "http://%0*d:p@h:1", 200, 0);
	ok(net_proxy_parse(url, &p, err, sizeof(err)) == -EINVAL, "200-char user refused");
	snprintf(url, sizeof(url), "http://%0*d:p@h:1", NET_PROXY_CRED_MAX - 1, 0);
	rc = net_proxy_parse(url, &p, err, sizeof(err));
	ok(rc == 0 && strlen(p.user) == NET_PROXY_CRED_MAX - 1, "%d-char user fits (rc %d)",
	   NET_PROXY_CRED_MAX - 1, rc);
	net_proxy_wipe(&p);
	ok(!p.user[0] && !p.pass[0] && !p.auth, "net_proxy_wipe clears the credentials");
	memset(url, 'a', sizeof(url) - 1);
	url[sizeof(url) - 1] = 0;
	memcpy(url, "http://", 7);
	ok(net_proxy_parse(url, &p, err, sizeof(err)) == -EINVAL && strlen(err) < 300,
	   "a 399-char URL is refused, the error stays short");
	ok(net_proxy_parse(NULL, &p, err, sizeof(err)) == -EINVAL, "NULL URL refused");
}

struct reply_case {
	const char *in;
	int rc;
	unsigned status;
	size_t head; /* 0: the whole input */
	const char *line;
};

static const struct reply_case reply_cases[] = {
    {"HTTP/1.1 200 Connection established\r\n\r\n", 0, 200, 0,
     "HTTP/1.1 200 Connection established"},
    {"HTTP/1.0 200 OK\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n", 0, 200, 0, "HTTP/1.0 200 OK"},
    {"HTTP/1.1 200\r\n\r\n", 0, 200, 0, "HTTP/1.1 200"},
    {"HTTP/1.1 204 x\n\n", 0, 204, 0, "HTTP/1.1 204 x"}, /* bare LF */
    {"HTTP/1.1 200 OK\r\nA: b\n\r\n", 0, 200, 0, "HTTP/1.1 200 OK"},
    {"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
     "realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
     0, 407, 0, "HTTP/1.1 407 Proxy Authentication Required"},
    {"HTTP/1.1 502 Bad\x01Gateway\r\n\r\n", 0, 502, 0, "HTTP/1.1 502 Bad?Gateway"},
    {"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01", 0, 200, 19, "HTTP/1.1 200 OK"}, /* bytes after */
    {"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 0, 200, 19, "HTTP/1.1 200 OK"},
    {"", -EAGAIN, 0, 0, 0},
    {"HTT", -EAGAIN, 0, 0, 0},
    {"HTTP/1.1 2", -EAGAIN, 0, 0, 0},
    {"HTTP/1.1 200 OK\r\n", -EAGAIN, 0, 0, 0},
    {"HTTP/1.1 200 OK\r\nX: y\r\n\r", -EAGAIN, 0, 0, 0},
    {"SSH-2.0-OpenSSH_9.2\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"\x16\x03\x01\x02", -EBADMSG, 0, 0, 0}, /* a TLS server, not a proxy */
    {"http/1.1 200 OK\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/2 200\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.x 200 OK\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1 20 OK\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1 2000 OK\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1  200 OK\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1 2x0 OK\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1 099 Low\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1 600 High\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"HTTP/1.1\r\n\r\n", -EBADMSG, 0, 0, 0},
    {"\r\n\r\n", -EBADMSG, 0, 0, 0},
};

static void test_proxy_reply(void)
{
	static char big[NET_PROXY_HEAD_MAX + 1024];
	char line[NET_PROXY_LINE_MAX];
	const char *full;
	size_t i, n, head = 0, again = 0;
	unsigned st = 0;
	int rc;

	for (i = 0; i < FERRY_ARRAY_LEN(reply_cases); i++) {
		const struct reply_case *tc = &reply_cases[i];
		size_t want = tc->head ? tc->head : strlen(tc->in);

		head = 0;
		st = 0;
		line[0] = 0;
		rc = net_proxy_reply(tc->in, strlen(tc->in), &head, &st, line, sizeof(line));
		if (tc->rc == 0)
			ok(rc == 0 && st == tc->status && head == want && !strcmp(line, tc->line),
			   "reply #%zu: status %u, head %zu, \"%s\" (rc %d, %u, %zu, \"%s\")", i,
			   tc->status, want, tc->line, rc, st, head, line);
		else
			ok(rc == tc->rc && head == 0 && st == 0, "reply #%zu refused with %d (rc %d)",
			   i, tc->rc, rc);
	}

	/* A NUL is not HTTP, wherever it is. */
	ok(net_proxy_reply("HTTP/1.1 200 O\0K\r\n\r\n", 21, &head, &st, NULL, 0) == -EBADMSG,
	   "NUL in the head refused");

	/* Split reads: every prefix is "more", the whole is the answer. */
	full = "HTTP/1.1 200 Connection established\r\nProxy-agent: x\r\n\r\n";
	n = strlen(full);
	for (i = 0; i < n; i++)
		again += net_proxy_reply(full, i, &head, &st, line, sizeof(line)) == -EAGAIN;
	ok(again == n, "all %zu prefixes ask for more (%zu did)", n, again);
	ok(net_proxy_reply(full, n, &head, &st, line, sizeof(line)) == 0 && head == n && st == 200,
	   "the whole head parses");

	/* Oversized heads: the bound is on the head, not on the buffer. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	rc = net_proxy_reply(big, NET_PROXY_HEAD_MAX - 1, &head, &st, NULL, 0);
	ok(rc == -EAGAIN, "%d bytes without an end: read more (rc %d)", NET_PROXY_HEAD_MAX - 1, rc);
	rc = net_proxy_reply(big, NET_PROXY_HEAD_MAX, &head, &st, NULL, 0);
	ok(rc == -EMSGSIZE, "%d bytes without an end: -EMSGSIZE (rc %d)", NET_PROXY_HEAD_MAX, rc);
	memcpy(big + NET_PROXY_HEAD_MAX - 4, "\r\n\r\n", 4);
	rc = net_proxy_reply(big, NET_PROXY_HEAD_MAX, &head, &st, NULL, 0);
	ok(rc == 0 && head == NET_PROXY_HEAD_MAX, "a head of exactly %d bytes parses (rc %d)",
	   NET_PROXY_HEAD_MAX, rc);
	memset(big + NET_PROXY_HEAD_MAX - 4, 'a', 4);
	memcpy(big + NET_PROXY_HEAD_MAX + 100, "\r\n\r\n", 4);
	rc = net_proxy_reply(big, sizeof(big), &head, &st, NULL, 0);
	ok(rc == -EMSGSIZE, "an end past %d bytes: -EMSGSIZE (rc %d)", NET_PROXY_HEAD_MAX, rc);

	/* A long reason is cut to the caller's buffer. */
	memset(big, 'r', 400);
	memcpy(big, "HTTP/1.1 403 ", 13);
	memcpy(big + 400, "\r\n\r\n", 5);
	rc = net_proxy_reply(big, 404, &head, &st, line, sizeof(line));
	ok(rc == 0 && st == 403 && strlen(line) == sizeof(line) - 1, "long status line cut to %zu",
	   strlen(line));
}

/*
 * A scripted proxy in a child: accepts one connection, sends the
 * request it got to the parent through a pipe, writes reply in pieces
 * (split at the '|' marks, 20 ms apart; a piece SILENCE says nothing
 * for 2 s, CLOSE hangs up), then echoes one byte.
 */
static pid_t fake_proxy(int lfd, const char *reply, int pipefd)
{
	pid_t pid = fork();
	char req[4096], *piece;
	size_t n = 0;
	int fd;

	if (pid != 0)
		return pid;
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(1);
	while (n < sizeof(req) - 1) {
		ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	(void)!write(pipefd, req, n);
	close(pipefd);
	{
		static char copy[10000];

		snprintf(copy, sizeof(copy), "%s", reply);
		for (piece = strtok(copy, "|"); piece; piece = strtok(NULL, "|")) {
			if (!strcmp(piece, "SILENCE")) {
				sleep(2);
				_exit(0);
			}
			if (!strcmp(piece, "CLOSE"))
				_exit(0);
			(void)!write(fd, piece, strlen(piece));
			usleep(20000);
		}
	}
	{
		char b;

		if (read(fd, &b, 1) == 1)
			(void)!write(fd, &b, 1);
	}
	_exit(0);
}

struct proxy_run {
	int rc;
	char err[400];
	char req[4096];
	uint64_t ms;
};

static void run_proxy(const char *url_fmt, const char *host, const char *reply, int timeout_ms,
		      struct proxy_run *out)
{
	char url[200];
	uint16_t port = 0;
	int lfd, p[2];
	pid_t pid;
	ssize_t n;
	uint64_t t0;

	memset(out, 0, sizeof(*out));
	lfd = net_listen("127.0.0.1", 0, 4);
	net_local_port(lfd, &port);
	if (pipe(p) < 0) {
		out->rc = -errno;
		return;
	}
	pid = fake_proxy(lfd, reply, p[1]);
	close(p[1]);
	snprintf(url, sizeof(url), url_fmt, port);
	t0 = time_now_ms();
	out->rc = net_connect_proxy(url, host, 443, timeout_ms, out->err, sizeof(out->err));
	out->ms = time_now_ms() - t0;
	n = read(p[0], out->req, sizeof(out->req) - 1);
	out->req[n > 0 ? n : 0] = 0;
	close(p[0]);
	if (out->rc >= 0) {
		char b = 0;

		if (write(out->rc, "z", 1) != 1 || read(out->rc, &b, 1) != 1 || b != 'z')
			out->rc = -EPIPE;
		close(out->rc);
		out->rc = 0;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(lfd);
}

static void test_proxy_connect(void)
{
	struct proxy_run r;

	run_proxy("http://alice:s3cr%%65t@127.0.0.1:%u", "10.1.2.3",
		  "HTTP/1.1 200 Con|nection established\r\nProxy-agent: fake\r|\n\r\n", 2000, &r);
	ok(r.rc == 0, "CONNECT through a proxy replying in three pieces (rc %d: %s)", r.rc, r.err);
	ok(!strncmp(r.req, "CONNECT 10.1.2.3:443 HTTP/1.1\r\nHost: 10.1.2.3:443\r\n", 49),
	   "request line, then Host:");
	ok(strstr(r.req, "\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n") != NULL,
	   "Basic credentials, percent-decoded (alice:s3cret)");
	ok(strlen(r.req) >= 4 && !strcmp(r.req + strlen(r.req) - 4, "\r\n\r\n"),
	   "the request ends with a blank line");

	run_proxy("http://127.0.0.1:%u", "::1", "HTTP/1.0 200 OK\r\n\r\n", 2000, &r);
	ok(r.rc == 0 && !strncmp(r.req, "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n", 45) &&
		   !strstr(r.req, "Proxy-Authorization"),
	   "IPv6 target in brackets, no credentials sent without a user (rc %d)", r.rc);

	run_proxy("http://alice:hunter2@127.0.0.1:%u", "10.1.2.3",
		  "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
		  2000, &r);
	ok(r.rc == -EACCES && strstr(r.err, "refused CONNECT 10.1.2.3:443: HTTP/1.1 407 Proxy "
					     "Authentication Required"),
	   "407 is -EACCES and quoted: %s", r.err);
	ok(!strstr(r.err, "hunter2"), "the password is not in the error");

	run_proxy("http://127.0.0.1:%u", "10.1.2.3", "HTTP/1.1 502 Bad Gateway\r\n\r\n", 2000, &r);
	ok(r.rc == -ECONNREFUSED && strstr(r.err, "502 Bad Gateway"),
	   "502 is -ECONNREFUSED (retry while the destination boots): %s", r.err);

	run_proxy("http://127.0.0.1:%u", "10.1.2.3", "HTTP/1.1 200 OK\r\n\r\nEARLY", 2000, &r);
	ok(r.rc == -EPROTO && strstr(r.err, "5 bytes after"),
	   "bytes after the reply head are refused, not lost: %s", r.err);

	{
		static char endless[NET_PROXY_HEAD_MAX + 200];

		memset(endless, 'x', sizeof(endless) - 1);
		memcpy(endless, "HTTP/1.1 200 OK\r\nX: ", 20);
		run_proxy("http://127.0.0.1:%u", "10.1.2.3", endless, 2000, &r);
		ok(r.rc == -EBADMSG && strstr(r.err, "over 8192"), "an endless head is cut: %s",
		   r.err);
	}

	run_proxy("http://127.0.0.1:%u", "10.1.2.3", "SSH-2.0-OpenSSH_9.2\r\n", 2000, &r);
	ok(r.rc == -EBADMSG && strstr(r.err, "does not answer like an HTTP proxy"),
	   "not a proxy: %s", r.err);

	run_proxy("http://127.0.0.1:%u", "10.1.2.3", "SILENCE", 300, &r);
	ok(r.rc == -ETIMEDOUT && r.ms >= 250 && r.ms < 1500, "a silent proxy times out in %llu ms: %s",
	   (unsigned long long)r.ms, r.err);

	run_proxy("http://127.0.0.1:%u", "10.1.2.3", "HTTP/1.1 200 OK\r\n|CLOSE", 2000, &r);
	ok(r.rc == -ECONNRESET && strstr(r.err, "closed the connection"),
	   "a proxy that hangs up mid-head: %s", r.err);

	{
		char err[200];
		uint16_t port = 0;
		int lfd = net_listen("127.0.0.1", 0, 1), rc;

		net_local_port(lfd, &port);
		close(lfd);
		snprintf(err, sizeof(err), "http://127.0.0.1:%u", port);
		rc = net_connect_proxy(err, "10.1.2.3", 443, 1000, err, sizeof(err));
		ok(rc == -ECONNREFUSED && strstr(err, "cannot connect to proxy 127.0.0.1:"),
		   "no proxy listening: %s", err);
		rc = net_connect_proxy("http://127.0.0.1:1", "bad\r\nhost", 443, 1000, err,
				       sizeof(err));
		ok(rc == -EINVAL, "a target host with CR LF is refused before connecting");
	}
}

int main(void)
{
	log_init("test_net", LOG_LVL_ERROR);
	test_proxy_url();
	test_proxy_reply();
	test_proxy_connect();
	test_split();
	test_split_long();
	test_loopback_v4();
	test_names();
	test_dual_stack();
	test_refused();
	test_timeout();
	return tap_done();
}
