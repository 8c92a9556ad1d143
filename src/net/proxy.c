/*
 * proxy.c - TCP through an HTTP CONNECT proxy (the seed tool's Net.Mode
 * "migration through a proxy"): parses http://[user:pass@]host:port,
 * asks for a tunnel with optional Basic credentials and hands back the
 * connected fd, ready for TLS. The proxy's answer is untrusted: its head
 * is read within NET_PROXY_HEAD_MAX bytes and a deadline, and only a 2xx
 * status opens the tunnel. The password is never written into an error
 * or a log line, and is wiped after use. Prints nothing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"

static int proxy_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes s[0..len) into dst (cap bytes with the NUL). Control
 * characters are refused even when encoded: the result goes into an
 * HTTP header, and a CR or LF there would let a URL inject headers.
 */
static int proxy_unescape(const char *s, size_t len, char *dst, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = proxy_hex(s[i + 1]);
			lo = proxy_hex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f)
			return -EINVAL;
		if (o + 1 >= cap)
			return -ENAMETOOLONG;
		dst[o++] = (char)ch;
	}
	dst[o] = 0;
	return 0;
}

/*
 * Quotes a URL for an error without its password, erring on the side of
 * masking: from the first ':' after the scheme to the last '@' anywhere
 * (a password may hold an unescaped '/' or '@'); with no '@', whatever
 * follows the last ':' unless it is a port ("http://alice:secret").
 */
static void proxy_redact(const char *url, char *out, size_t cap)
{
	const char *auth = strstr(url, "://"), *at, *from = NULL, *to = NULL;
	size_t o = 0, i, n = strlen(url);

	if (cap == 0)
		return;
	auth = auth ? auth + 3 : url;
	at = strrchr(auth, '@');
	if (at) {
		from = memchr(auth, ':', (size_t)(at - auth));
		to = at;
	} else if ((from = strrchr(auth, ':'))) {
		to = from + 1 + strspn(from + 1, "0123456789");
		if (*to == 0 || *to == '/')
			from = NULL;
		else
			to = url + n;
	}
	for (i = 0; i < n && o + 4 < cap && i < 120; i++) {
		unsigned char ch = (unsigned char)url[i];

		if (from && url + i == from + 1) {
			memcpy(out + o, "***", 3);
			o += 3;
			i = (size_t)(to - url) - 1;
			continue;
		}
		out[o++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	if (i < n && o + 3 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
}

int net_proxy_parse(const char *url, struct net_proxy *p, char *err, size_t errcap)
{
	const char *auth, *end, *at = NULL, *colon, *sep;
	char shown[160], hp[NET_ADDR_MAX + 8];
	size_t i, n;
	int r;

	memset(p, 0, sizeof(*p));
	if (!url || !*url) {
		snprintf(err, errcap, "empty proxy URL: want http://[USER:PASS@]HOST:PORT");
		return -EINVAL;
	}
	proxy_redact(url, shown, sizeof(shown));
	n = strlen(url);
	if (n >= NET_PROXY_URL_MAX) {
		snprintf(err, errcap, "proxy URL '%s' is longer than %d characters", shown,
			 NET_PROXY_URL_MAX - 1);
		return -EINVAL;
	}
	sep = strstr(url, "://");
	if (sep) {
		size_t sl = (size_t)(sep - url);

		if (sl != 4 || strncasecmp(url, "http", 4)) {
			snprintf(err, errcap,
				 "proxy URL '%s': scheme '%.*s' is not supported; ferry tunnels "
				 "through HTTP proxies (http://HOST:PORT) with CONNECT",
				 shown, (int)(sl < 16 ? sl : 16), url);
			return -EPROTONOSUPPORT;
		}
		auth = sep + 3;
	} else {
		/* "proxy:3128" as curl takes it from https_proxy. */
		auth = url;
	}
	end = auth + strcspn(auth, "/?#");
	if (*end && strcmp(end, "/")) {
		snprintf(err, errcap,
			 "proxy URL '%s': want http://[USER:PASS@]HOST:PORT, "
			 "without a path",
			 shown);
		return -EINVAL;
	}
	/* The last '@': an unescaped one in a password still parses. */
	for (i = 0; auth + i < end; i++)
		if (auth[i] == '@')
			at = auth + i;
	if (at) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		r = proxy_unescape(auth, (size_t)((colon ? colon : at) - auth), p->user,
				   sizeof(p->user));
		if (!r && colon)
			r = proxy_unescape(colon + 1, (size_t)(at - colon - 1), p->pass,
					   sizeof(p->pass));
		if (r || !p->user[0] || strchr(p->user, ':')) {
			net_proxy_wipe(p);
			snprintf(err, errcap,
				 "proxy URL '%s': bad user or password (at most %d characters "
				 "each, %%XX escapes, no control characters, no ':' in the user)",
				 shown, NET_PROXY_CRED_MAX - 1);
			return -EINVAL;
		}
		p->auth = 1;
		auth = at + 1;
	}
	n = (size_t)(end - auth);
	if (n == 0 || n >= sizeof(hp)) {
		net_proxy_wipe(p);
		snprintf(err, errcap, "proxy URL '%s': want http://[USER:PASS@]HOST:PORT", shown);
		return -EINVAL;
	}
	memcpy(hp, auth, n);
	hp[n] = 0;
	/* No default port: 3128, 8080 and 1080 are all common guesses. */
	if (net_split_hostport(hp, 0, p->host, sizeof(p->host), &p->port) || !p->host[0]) {
		net_proxy_wipe(p);
		snprintf(err, errcap,
			 "proxy URL '%s': want http://[USER:PASS@]HOST:PORT "
			 "(the port is required)",
			 shown);
		return -EINVAL;
	}
	return 0;
}

void net_proxy_wipe(struct net_proxy *p)
{
	mem_wipe(p->user, sizeof(p->user));
	mem_wipe(p->pass, sizeof(p->pass));
	p->auth = 0;
}

void net_proxy_text(const struct net_proxy *p, char *buf, size_t cap)
{
	int v6 = strchr(p->host, ':') != NULL;

	snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", p->host, v6 ? "]" : "", (unsigned)p->port);
}

int net_proxy_reply(const char *buf, size_t len, size_t *head_len, unsigned *status, char *line,
		    size_t linecap)
{
	static const char http[] = "HTTP/1.";
	size_t i, end = 0, eol, o = 0;
	unsigned st = 0;

	/* Anything that is not HTTP (a TLS server, SSH) is refused early. */
	for (i = 0; i < len && i < sizeof(http) - 1; i++)
		if (buf[i] != http[i])
			return -EBADMSG;
	for (i = 0; i < len; i++) {
		if (buf[i] == 0)
			return -EBADMSG;
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n') {
			end = i + 2;
			break;
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 3;
			break;
		}
	}
	if (!end)
		return len >= NET_PROXY_HEAD_MAX ? -EMSGSIZE : -EAGAIN;
	if (end > NET_PROXY_HEAD_MAX)
		return -EMSGSIZE;

	/* "HTTP/1.x SSS[ reason]" */
	eol = (size_t)((const char *)memchr(buf, '\n', end) - buf);
	if (eol > 0 && buf[eol - 1] == '\r')
		eol--;
	if (eol < 12 || buf[7] < '0' || buf[7] > '9' || buf[8] != ' ' ||
	    (eol > 12 && buf[12] != ' '))
		return -EBADMSG;
	for (i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EBADMSG;
		st = st * 10 + (unsigned)(buf[i] - '0');
	}
	if (st < 100 || st > 599)
		return -EBADMSG;
	if (line && linecap) {
		for (i = 0; i < eol && o + 1 < linecap; i++) {
			unsigned char ch = (unsigned char)buf[i];

			line[o++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
		}
		line[o] = 0;
	}
	*status = st;
	*head_len = end;
	return 0;
}

static void proxy_base64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = 0;
}

static int proxy_send(int fd, const char *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		struct pollfd pfd = {fd, POLLOUT, 0};
		uint64_t now = time_now_ms();
		ssize_t w;
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the reply head into buf; *len grows. 0 once parsed, -errno. */
static int proxy_read_head(int fd, char *buf, size_t *len, size_t *head_len, unsigned *status,
			   char *line, size_t linecap, uint64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		uint64_t now = time_now_ms();
		ssize_t got;
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		got = recv(fd, buf + *len, NET_PROXY_HEAD_MAX - *len, MSG_DONTWAIT);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (got == 0)
			return -ECONNRESET;
		*len += (size_t)got;
		r = net_proxy_reply(buf, *len, head_len, status, line, linecap);
		if (r != -EAGAIN)
			return r;
	}
}

static int proxy_host_ok(const char *h)
{
	if (!*h || strlen(h) >= NET_ADDR_MAX)
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || strchr(".-_:%", *h)))
			return 0;
	return 1;
}

int net_connect_proxy(const char *proxy_url, const char *host, uint16_t port, int timeout_ms,
		      char *err, size_t errcap)
{
	/* 2 * (127 + 1 + 127) bytes of credentials and base64's 4/3. */
	char head[NET_PROXY_HEAD_MAX], req[1024], line[NET_PROXY_LINE_MAX];
	char ptext[NET_ADDR_MAX + 8], target[NET_ADDR_MAX + 8], cred[2 * NET_PROXY_CRED_MAX];
	char b64[(2 * NET_PROXY_CRED_MAX + 2) / 3 * 4 + 1];
	struct net_proxy p;
	uint64_t deadline;
	size_t len = 0, head_len = 0;
	unsigned status = 0;
	int fd, r, n, auth;

	if ((r = net_proxy_parse(proxy_url, &p, err, errcap)))
		return r;
	if (!host || !proxy_host_ok(host) || port == 0) {
		net_proxy_wipe(&p);
		snprintf(err, errcap, "CONNECT through a proxy: bad destination host");
		return -EINVAL;
	}
	if (timeout_ms < 0)
		timeout_ms = 0;
	deadline = time_now_ms() + (uint64_t)timeout_ms;
	net_proxy_text(&p, ptext, sizeof(ptext));
	snprintf(target, sizeof(target), "%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", (unsigned)port);

	fd = net_connect(p.host, p.port, timeout_ms);
	if (fd < 0) {
		net_proxy_wipe(&p);
		snprintf(err, errcap, "cannot connect to proxy %s: %s", ptext, strerror(-fd));
		return fd;
	}
	b64[0] = 0;
	auth = p.auth;
	if (p.auth) {
		n = snprintf(cred, sizeof(cred), "%s:%s", p.user, p.pass);
		proxy_base64((const uint8_t *)cred, (size_t)n, b64);
		mem_wipe(cred, sizeof(cred));
	}
	net_proxy_wipe(&p);
	n = snprintf(req, sizeof(req),
		     "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%sUser-Agent: ferry/%s\r\n\r\n",
		     target, target, b64[0] ? "Proxy-Authorization: Basic " : "", b64,
		     b64[0] ? "\r\n" : "", FERRY_VERSION);
	mem_wipe(b64, sizeof(b64));
	if (n < 0 || (size_t)n >= sizeof(req)) {
		r = -EOVERFLOW;
		snprintf(err, errcap, "CONNECT request to proxy %s too long", ptext);
		goto fail;
	}
	r = proxy_send(fd, req, (size_t)n, deadline);
	mem_wipe(req, sizeof(req));
	if (r) {
		snprintf(err, errcap, "proxy %s: sending CONNECT %s: %s", ptext, target,
			 r == -ETIMEDOUT ? "timed out" : strerror(-r));
		goto fail;
	}
	r = proxy_read_head(fd, head, &len, &head_len, &status, line, sizeof(line), deadline);
	if (r == -ETIMEDOUT) {
		snprintf(err, errcap, "proxy %s did not answer CONNECT %s within %d s", ptext,
			 target, (timeout_ms + 999) / 1000);
		goto fail;
	}
	if (r == -ECONNRESET) {
		snprintf(err, errcap, "proxy %s closed the connection before answering CONNECT %s",
			 ptext, target);
		goto fail;
	}
	if (r == -EMSGSIZE) {
		snprintf(err, errcap, "proxy %s answered CONNECT %s with a head over %d bytes",
			 ptext, target, NET_PROXY_HEAD_MAX);
		r = -EBADMSG;
		goto fail;
	}
	if (r == -EBADMSG) {
		snprintf(err, errcap,
			 "%s does not answer like an HTTP proxy (no 'HTTP/1.x NNN' "
			 "status line)",
			 ptext);
		goto fail;
	}
	if (r) {
		snprintf(err, errcap, "proxy %s: reading the CONNECT reply: %s", ptext,
			 strerror(-r));
		goto fail;
	}
	if (status < 200 || status > 299) {
		const char *hint = "";

		/* tinyproxy answers bad credentials with 401, none with 407. */
		if (status == 407 || status == 401)
			hint = auth ? " (check the proxy user and password)"
				    : " (the proxy wants credentials: http://USER:PASS@HOST:PORT)";
		else if (status == 403 && !strstr(line, "ferry relay"))
			hint = " (do the proxy's rules allow CONNECT to this port?)";
		else if (status >= 500)
			hint = " (the proxy could not reach the destination)";
		snprintf(err, errcap, "proxy %s refused CONNECT %s: %s%s", ptext, target, line,
			 hint);
		r = status >= 500 ? -ECONNREFUSED : status >= 400 ? -EACCES : -EPROTO;
		goto fail;
	}
	/* TLS starts with our ClientHello: a proxy that already sent tunnel
	 * bytes is confused, and they would be lost. */
	if (len != head_len) {
		snprintf(err, errcap,
			 "proxy %s sent %zu bytes after its CONNECT reply, before TLS "
			 "started",
			 ptext, len - head_len);
		r = -EPROTO;
		goto fail;
	}
	return fd;
fail:
	mem_wipe(req, sizeof(req));
	close(fd);
	return r;
}
