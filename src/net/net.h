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

/* Every connected socket (accepted, dialed, through a proxy) finds a
 * peer that vanished without a FIN within NET_DEAD_MS plus a few
 * seconds: keepalive after NET_KEEPIDLE_S of silence, NET_KEEPCNT probes
 * NET_KEEPINTVL_S apart; data unacknowledged that long ends it too. */
#define NET_KEEPIDLE_S 10
#define NET_KEEPINTVL_S 5
#define NET_KEEPCNT 4
#define NET_DEAD_MS 30000

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
 * Accepts with TCP_NODELAY, keepalive and the dead-peer timeout set,
 * CLOEXEC; peer written as text ("127.0.0.1:41234") into peer (>=
 * NET_ADDR_MAX). Returns fd or -errno.
 */
int net_accept(int lfd, char *peer, size_t cap);

/*
 * Resolves host (numeric or name via getaddrinfo) and connects with a
 * deadline of timeout_ms; TCP_NODELAY, keepalive, the dead-peer
 * timeout, CLOEXEC. Returns fd or -errno (-ETIMEDOUT, -ECONNREFUSED,
 * ...; -ENXIO when the name does not resolve, -EAGAIN when DNS fails
 * temporarily). DNS itself is not
 * bounded by the deadline; numeric hosts never wait on it.
 */
int net_connect(const char *host, uint16_t port, int timeout_ms);

/* The bound port of a listening socket (tests listen on port 0). */
int net_local_port(int fd, uint16_t *port);

/* ---- HTTP CONNECT proxies (proxy.c) ------------------------------------ */

#define NET_PROXY_URL_MAX 256	/* with the NUL */
#define NET_PROXY_CRED_MAX 128	/* user, password: decoded, with the NUL */
#define NET_PROXY_HEAD_MAX 8192	/* the proxy's reply head, status to blank line */
#define NET_PROXY_LINE_MAX 256	/* its status line as quoted in errors (a ferry
				   relay says there why it refused) */

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

/* ---- the relay's parsers (relay.c) ------------------------------------- */

#define NET_ALLOW_MAX 32		/* entries in an allow-list */
#define NET_ALLOW_TEXT_MAX 1024	/* an allow-list as given, without the NUL */
#define NET_RELAY_HEAD_MAX 4096	/* a CONNECT request head, line to blank line */
#define NET_RELAY_HEADERS_MAX 32	/* header lines in it */

/* One allow-list entry: a network (prefix bits of addr) and a port range. */
struct net_allow {
	uint8_t family;		/* 4 or 6 */
	uint8_t prefix;
	uint8_t addr[16];	/* host bits zero */
	uint16_t port_lo, port_hi;
};

struct net_allow_list {
	size_t n;
	struct net_allow e[NET_ALLOW_MAX];
};

/* Where a CONNECT asks to go. */
struct net_relay_target {
	uint8_t family;			/* 4 or 6; 0: a host name (never resolved) */
	uint8_t addr[16];		/* IPv4-mapped IPv6 is stored as IPv4 */
	uint16_t port;
	char host[NET_ADDR_MAX];	/* canonical address text, or the name */
	char text[NET_ADDR_MAX + 8];	/* "10.0.0.5:443", "[fd00::5]:443" */
};

/*
 * Parses "CIDR:PORTS[,CIDR:PORTS...]": CIDR is ADDR[/N] (IPv4) or
 * [ADDR[/N]] (IPv6; [ADDR]/N too), no N = one address; PORTS is PORT,
 * LOW-HIGH or *. Host bits are cleared. Names are refused. -EINVAL with
 * err quoting the bad entry; l is then empty.
 */
int net_allow_parse(const char *s, struct net_allow_list *l, char *err, size_t errcap);
/* 1 when t is an address (not a name) inside an entry's network and ports. */
int net_allow_match(const struct net_allow_list *l, const struct net_relay_target *t);
/* The list in canonical form ("10.0.0.0/24:443,[fd00::]/64:7000-7010"),
 * cut with "..." to fit cap. */
void net_allow_text(const struct net_allow_list *l, char *buf, size_t cap);

/*
 * Parses a CONNECT request head held in buf[0..len): "CONNECT HOST:PORT
 * HTTP/1.x", header lines, a blank line (CRLF or bare LF). 0: complete,
 * *head_len its length with the blank line, t the target (a name is
 * family 0). -EAGAIN: incomplete. -EMSGSIZE: no end within
 * NET_RELAY_HEAD_MAX. -EOPNOTSUPP: another method. -EBADMSG: anything
 * else malformed (not HTTP at all is said at the first byte). why says
 * what, quoting the input printably.
 */
int net_relay_request(const char *buf, size_t len, size_t *head_len, struct net_relay_target *t,
		      char *why, size_t whycap);

#endif
