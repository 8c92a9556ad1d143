/*
 * banner.c - the block an operator reads on a cloud VNC console or a lab
 * screen: version, every address with the port, the token, the disks,
 * the state. Written to stdout (/dev/console) and to every other active
 * console (tty0 when the serial line is /dev/console).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "init.h"

#define BANNER_MAX 4096

static void add(char *b, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(char *b, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= BANNER_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b + *len, BANNER_MAX - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n < BANNER_MAX - *len ? (size_t)n : BANNER_MAX - 1 - *len;
}

static void add_addresses(char *b, size_t *len, const char *host, uint16_t port)
{
	struct ifaddrs *ifa, *i;
	char a[INET6_ADDRSTRLEN];
	int shown = 0;

	if (host[0]) {
		add(b, len, "  listen   %s%s%s:%u\n", strchr(host, ':') ? "[" : "", host,
		    strchr(host, ':') ? "]" : "", port);
		return;
	}
	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i; i = i->ifa_next) {
			if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			if (i->ifa_addr->sa_family == AF_INET) {
				inet_ntop(AF_INET,
					  &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a,
					  sizeof(a));
				add(b, len, "  listen   %s:%u   (%s)\n", a, port, i->ifa_name);
				shown++;
			} else if (i->ifa_addr->sa_family == AF_INET6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)i->ifa_addr;

				inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
				if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
					add(b, len, "  listen   [%s%%%s]:%u\n", a, i->ifa_name, port);
				else
					add(b, len, "  listen   [%s]:%u\n", a, port);
				shown++;
			}
		}
		freeifaddrs(ifa);
	}
	if (!shown)
		add(b, len, "  listen   *:%u   (no address yet)\n", port);
}

static void write_other_consoles(const char *b, size_t len)
{
	char active[256], *tok, *save = NULL, path[64];

	if (file_read_small("/sys/class/tty/console/active", active, sizeof(active)) <= 0)
		return;
	/* The last listed is /dev/console, which got stdout already. */
	for (tok = strtok_r(active, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		int fd;

		if (!save || !*save)
			break;
		if (snprintf(path, sizeof(path), "/dev/%s", tok) >= (int)sizeof(path))
			continue;
		fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			(void)!write(fd, b, len);
			close(fd);
		}
	}
}

void banner_show(const struct serve_config *cfg, uint16_t port, const char *state)
{
	char b[BANNER_MAX], tok[TLS_TOKEN_TEXT_MAX], fp[TLS_FP_TEXT_MAX], sz[32];
	size_t len = 0, i;

	tls_token_format(&cfg->token, tok, sizeof(tok));
	tls_token_fingerprint(&cfg->token, fp, sizeof(fp));
	add(b, &len, "\n==== ferry live %s - migration mode ====\n", FERRY_VERSION);
	if (cfg->connect[0])
		add(b, &len, "  connect  %s   (reverse mode: this machine dials the source)\n",
		    cfg->connect);
	else
		add_addresses(b, &len, cfg->listen_host, port);
	add(b, &len, "  token    %s   (%s)\n", tok, fp);
	if (cfg->ndisks == 0)
		add(b, &len, "  disk     none found\n");
	for (i = 0; i < cfg->ndisks; i++)
		add(b, &len, "  disk     %s  %s (%llu bytes)%s%s\n", cfg->disks[i].name,
		    fmt_bytes(cfg->disks[i].size, sz, sizeof(sz)),
		    (unsigned long long)cfg->disks[i].size,
		    cfg->disks[i].model[0] ? "  " : "", cfg->disks[i].model);
	add(b, &len, "  state    %s\n", state);
	if (cfg->connect[0])
		add(b, &len, "  on the source (%s): ferry migrate --listen :%u --token %s\n",
		    cfg->connect_host, cfg->connect_port,
		    cfg->token_generated ? "<token above>" : "<token>");
	else
		add(b, &len, "  on the source: ferry migrate --to ADDRESS:%u --token %s\n", port,
		    cfg->token_generated ? "<token above>" : "<token>");
	add(b, &len, "=======================================\n");
	mem_wipe(tok, sizeof(tok));
	fd_write_all(STDOUT_FILENO, b, len);
	if (getpid() != 1 && getppid() == 1)
		write_other_consoles(b, len);
	mem_wipe(b, sizeof(b));
}
