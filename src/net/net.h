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

#endif
