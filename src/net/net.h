/*
 * net.h - TCP sockets: address parsing, listening, connecting with a
 * deadline. Knows nothing about TLS or the protocol.
 */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr_storage;

#define NET_ADDR_MAX 64 /* "[ffff:...:ffff]:65535" fits */

/*
 * Splits "HOST:PORT", "[V6]:PORT", ":PORT" or "HOST" (then default_port)
 * into host (cap bytes) and port. Host "" means any address.
 * Returns 0 or -EINVAL (the message names the bad value).
 */
int net_split_hostport(const char *s, uint16_t default_port, char *host,
		       size_t cap, uint16_t *port);

/*
 * Listens on host:port (host "" = dual-stack any). SO_REUSEADDR,
 * CLOEXEC, non-blocking accept not required. Returns fd or -errno.
 */
int net_listen(const char *host, uint16_t port, int backlog);

/*
 * Accepts with TCP_NODELAY set and CLOEXEC; peer written as text
 * ("127.0.0.1:41234") into peer (>= NET_ADDR_MAX). Returns fd or -errno.
 */
int net_accept(int lfd, char *peer, size_t cap);

/*
 * Resolves host (numeric or name via getaddrinfo) and connects with a
 * deadline of timeout_ms; TCP_NODELAY, CLOEXEC. Returns fd or -errno
 * (-ETIMEDOUT, -ECONNREFUSED, ...; -ENXIO when the name does not
 * resolve, -EAGAIN when DNS fails temporarily). DNS itself is not
 * bounded by the deadline; numeric hosts never wait on it.
 */
int net_connect(const char *host, uint16_t port, int timeout_ms);

/* The bound port of a listening socket (tests listen on port 0). */
int net_local_port(int fd, uint16_t *port);

/* ---- HTTP CONNECT proxies (proxy.c) ------------------------------------ */

#define NET_PROXY_URL_MAX 256	/* with the NUL */
#define NET_PROXY_CRED_MAX 128	/* user, password: decoded, with the NUL */
#define NET_PROXY_HEAD_MAX 8192	/* the proxy's reply head, status to blank line */
#define NET_PROXY_LINE_MAX 128	/* its status line as quoted in errors */

struct net_proxy {
	char host[NET_ADDR_MAX];
	uint16_t port;
	int auth;			/* user (and password) given */
	char user[NET_PROXY_CRED_MAX];
	char pass[NET_PROXY_CRED_MAX];
};

/*
 * Parses "http://[USER[:PASS]@]HOST:PORT[/]" (or the same without
 * "http://", as curl reads https_proxy); USER and PASS may hold %XX
 * escapes. Other schemes are -EPROTONOSUPPORT, anything else malformed
 * -EINVAL; err then quotes the URL with the password masked. Wipe the
 * result with net_proxy_wipe.
 */
int net_proxy_parse(const char *url, struct net_proxy *p, char *err, size_t errcap);
void net_proxy_wipe(struct net_proxy *p);
/* "host:port" of the proxy (brackets for IPv6), never the credentials. */
void net_proxy_text(const struct net_proxy *p, char *buf, size_t cap);

/*
 * Parses the head of a proxy's reply held in buf[0..len). 0: complete;
 * *head_len is its length up to and with the blank line (CRLF or bare
 * LF), *status its code, line (may be NULL) its status line with
 * control bytes replaced. -EAGAIN: incomplete, read more. -EMSGSIZE: no
 * end within NET_PROXY_HEAD_MAX. -EBADMSG: not an HTTP/1.x reply.
 */
int net_proxy_reply(const char *buf, size_t len, size_t *head_len, unsigned *status, char *line,
		    size_t linecap);

/*
 * Connects to host:port through the HTTP proxy at proxy_url with
 * CONNECT (Basic credentials when the URL has them), all within
 * timeout_ms. Returns the tunnel's fd (TCP_NODELAY, CLOEXEC, blocking)
 * or -errno with err quoting what happened ("proxy 127.0.0.1:8888
 * refused CONNECT 10.0.0.5:443: HTTP/1.1 407 Proxy Authentication
 * Required"): -EACCES for a 4xx refusal, -ECONNREFUSED for a 5xx (the
 * proxy could not reach the destination), -EBADMSG for a reply that is
 * not HTTP or too long.
 */
int net_connect_proxy(const char *proxy_url, const char *host, uint16_t port, int timeout_ms,
		      char *err, size_t errcap);

#endif
