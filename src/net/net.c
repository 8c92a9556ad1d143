/*
 * net.c - TCP sockets for both ends: "host:port" parsing, a dual-stack
 * listener, accept and a connect bounded by a deadline. Every socket is
 * CLOEXEC (PID 1 forks the receiver and runs udhcpc and e2fsck) and
 * carries TCP_NODELAY: the protocol pipelines small messages and a
 * Nagle delay costs ~40 ms per round trip (the TLS handshake alone took
 * 130 ms without it). Every connected socket also notices a peer that
 * vanished without a FIN (power loss, a NAT that dropped the flow): TCP
 * keepalive when nothing is in flight, TCP_USER_TIMEOUT when sent data
 * stays unacknowledged (see net_tune). Knows nothing about TLS; prints
 * nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"

/* RFC 1035 limit on a name; longer "hosts" are junk, not names. */
#define NET_HOST_MAX 253

static int net_host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '%';
}

/* Digits only, 1..65535; "+80", "0x50", " 80" and "" are refused. */
static int net_parse_port(const char *s, size_t len, uint16_t *port)
{
	uint32_t v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int net_copy_host(const char *s, size_t len, int v6, char *host, size_t cap)
{
	size_t i;

	if (len > NET_HOST_MAX || len >= cap)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (!net_host_char_ok(s[i]))
			return -EINVAL;
		/* A colon outside brackets would make "a:b:c" ambiguous. */
		if (s[i] == ':' && !v6)
			return -EINVAL;
	}
	memcpy(host, s, len);
	host[len] = 0;
	return 0;
}

/* "fe80::1" or "fe80::1%eth0" without brackets: a literal, never a port. */
static int net_is_v6_literal(const char *s)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;
	size_t n = strcspn(s, "%");

	if (n >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

int net_split_hostport(const char *s, uint16_t default_port, char *host, size_t cap, uint16_t *port)
{
	const char *colon, *rb;
	uint16_t p = default_port;
	int err;

	if (!s || !host || cap == 0 || !port)
		return -EINVAL;
	host[0] = 0;
	if (!*s)
		return -EINVAL;

	if (s[0] == '[') {
		rb = strchr(s, ']');
		if (!rb || rb == s + 1 || memchr(s + 1, '[', (size_t)(rb - s - 1)))
			return -EINVAL;
		if (rb[1] == ':') {
			if ((err = net_parse_port(rb + 2, strlen(rb + 2), &p)))
				return err;
		} else if (rb[1] != 0) {
			return -EINVAL;
		}
		if ((err = net_copy_host(s + 1, (size_t)(rb - s - 1), 1, host, cap)))
			return err;
		if (!net_is_v6_literal(host)) {
			host[0] = 0;
			return -EINVAL;
		}
	} else if (strchr(s, ']')) {
		return -EINVAL;
	} else if ((colon = strchr(s, ':')) && strchr(colon + 1, ':')) {
		if (!net_is_v6_literal(s))
			return -EINVAL;
		if ((err = net_copy_host(s, strlen(s), 1, host, cap)))
			return err;
	} else if (colon) {
		if ((err = net_parse_port(colon + 1, strlen(colon + 1), &p)))
			return err;
		if ((err = net_copy_host(s, (size_t)(colon - s), 0, host, cap)))
			return err;
	} else {
		if ((err = net_copy_host(s, strlen(s), 0, host, cap)))
			return err;
	}
	/* A default of 0 means the caller needs an explicit port. */
	if (p == 0) {
		host[0] = 0;
		return -EINVAL;
	}
	*port = p;
	return 0;
}

/* getaddrinfo speaks EAI_*, callers speak errno. */
static int net_gai_errno(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_FAMILY: return -ENXIO;
	case EAI_AGAIN: return -EAGAIN;
	case EAI_MEMORY: return -ENOMEM;
	case EAI_SYSTEM: return errno ? -errno : -EIO;
	default: return -EINVAL;
	}
}

static int net_resolve(const char *host, uint16_t port, int passive, struct addrinfo **res)
{
	struct addrinfo hints;
	char serv[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	errno = 0;
	rc = getaddrinfo(host, serv, &hints, res);
	return rc ? net_gai_errno(rc) : 0;
}

static int net_bind_listen(int family, const struct sockaddr *sa, socklen_t salen, int dual,
			   int backlog)
{
	int fd, one = 1, zero = 0, err = 0;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		err = -errno;
		goto out;
	}
	/* Explicit: the sysctl net.ipv6.bindv6only may say otherwise. */
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof(int)) < 0) {
		err = -errno;
		goto out;
	}
	if (bind(fd, sa, salen) < 0 || listen(fd, backlog) < 0)
		err = -errno;
out:
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int net_listen(const char *host, uint16_t port, int backlog)
{
	struct addrinfo *res = NULL, *ai;
	int fd, err;

	if (!host || !*host) {
		struct sockaddr_in6 s6;
		struct sockaddr_in s4;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = in6addr_any;
		s6.sin6_port = htons(port);
		fd = net_bind_listen(AF_INET6, (struct sockaddr *)&s6, sizeof(s6), 1, backlog);
		/* A kernel built without IPv6 still gets an IPv4 listener. */
		if (fd != -EAFNOSUPPORT)
			return fd;
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_addr.s_addr = htonl(INADDR_ANY);
		s4.sin_port = htons(port);
		return net_bind_listen(AF_INET, (struct sockaddr *)&s4, sizeof(s4), 0, backlog);
	}

	if ((err = net_resolve(host, port, 1, &res)))
		return err;
	fd = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = net_bind_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, 0, backlog);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

/*
 * A peer gone without a FIN is dead after NET_DEAD_MS, whichever side
 * waits: keepalive probes start after 10 s of silence and 4 probes 5 s
 * apart go unanswered (30 s), and data unacknowledged for 30 s
 * (TCP_USER_TIMEOUT) ends the connection too, since keepalive does not
 * probe while data is in flight. 30 s is also how long both ends
 * already let one write wait, so a slow but live peer loses nothing it
 * would not have lost anyway. Best effort: a kernel without one of
 * these only detects later.
 */
static void net_tune(int fd)
{
	int one = 1, idle = NET_KEEPIDLE_S, intvl = NET_KEEPINTVL_S, cnt = NET_KEEPCNT;
	unsigned int user = NET_DEAD_MS;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

static void net_format_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, cap, "%s:%u", a, (unsigned)ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		/* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], a, sizeof(a));
			snprintf(buf, cap, "%s:%u", a, (unsigned)ntohs(s6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			snprintf(buf, cap, "[%s]:%u", a, (unsigned)ntohs(s6->sin6_port));
		}
	} else {
		snprintf(buf, cap, "?");
	}
}

int net_accept(int lfd, char *peer, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	for (;;) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		/* A peer that reset before we got to it is not our error. */
		if (errno != EINTR && errno != ECONNABORTED)
			return -errno;
	}
	net_tune(fd);
	if (peer && cap)
		net_format_addr(&ss, peer, cap);
	return fd;
}

static int net_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* One address, at most ms milliseconds. Returns a blocking fd or -errno. */
static int net_connect_one(const struct addrinfo *ai, int ms)
{
	struct pollfd pfd;
	uint64_t deadline = time_now_ms() + (uint64_t)ms;
	socklen_t len = sizeof(int);
	int fd, rc, soerr = 0, err = 0;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	net_tune(fd);
	if ((err = net_set_nonblock(fd, 1)))
		goto out;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto done;
	if (errno != EINPROGRESS && errno != EINTR) {
		err = -errno;
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	for (;;) {
		uint64_t now = time_now_ms();

		if (now >= deadline) {
			err = -ETIMEDOUT;
			goto out;
		}
		rc = poll(&pfd, 1, (int)(deadline - now));
		if (rc > 0)
			break;
		if (rc < 0 && errno != EINTR) {
			err = -errno;
			goto out;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
		err = -errno;
		goto out;
	}
	if (soerr) {
		err = -soerr;
		goto out;
	}
done:
	err = net_set_nonblock(fd, 0);
out:
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int net_connect(const char *host, uint16_t port, int timeout_ms)
{
	struct addrinfo *res = NULL, *ai;
	uint64_t deadline;
	int fd, err, left = 0;

	if (!host || !*host || port == 0)
		return -EINVAL;
	if (timeout_ms < 0)
		timeout_ms = 0;
	deadline = time_now_ms() + (uint64_t)timeout_ms;
	/* getaddrinfo has no deadline; numeric hosts never wait on DNS. */
	if ((err = net_resolve(host, port, 0, &res)))
		return err;
	for (ai = res; ai; ai = ai->ai_next)
		left++;
	fd = -ETIMEDOUT;
	for (ai = res; ai; ai = ai->ai_next, left--) {
		uint64_t now = time_now_ms();
		int ms;

		if (now >= deadline) {
			fd = -ETIMEDOUT;
			break;
		}
		/*
		 * Share what is left between the remaining addresses, so a
		 * black-holed first address (often IPv6) cannot eat all of it.
		 */
		ms = (int)((deadline - now) / (uint64_t)left);
		fd = net_connect_one(ai, ms > 0 ? ms : 1);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

int net_local_port(int fd, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return -EAFNOSUPPORT;
	return 0;
}
