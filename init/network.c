/*
 * network.c - phase 5: loopback, every NIC up, then a static address
 * from ip= or DHCP (BusyBox udhcpc) on every NIC. The receiver starts
 * either way: a destination without an address can still be reached by
 * a later lease, and the banner shows what there is.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "init.h"

#define NET_MAX_IFS 16
#define DHCP_WAIT_MS 20000

static int if_up(int s, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

static int set_addr(int s, const char *name, unsigned long req, const char *ip)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
		return -EINVAL;
	if (ioctl(s, req, &ifr) < 0)
		return -errno;
	return 0;
}

static int add_default_route(int s, const char *gw)
{
	struct rtentry rt;
	struct sockaddr_in *a;

	memset(&rt, 0, sizeof(rt));
	a = (struct sockaddr_in *)&rt.rt_dst;
	a->sin_family = AF_INET;
	a = (struct sockaddr_in *)&rt.rt_genmask;
	a->sin_family = AF_INET;
	a = (struct sockaddr_in *)&rt.rt_gateway;
	a->sin_family = AF_INET;
	if (inet_pton(AF_INET, gw, &a->sin_addr) != 1)
		return -EINVAL;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int mask_bits(const char *mask)
{
	struct in_addr a;
	uint32_t m;
	int n = 0;

	if (inet_pton(AF_INET, mask, &a) != 1)
		return -1;
	m = ntohl(a.s_addr);
	while (m & 0x80000000u) {
		n++;
		m <<= 1;
	}
	return n;
}

static size_t list_nics(char names[][INIT_IFNAME], size_t cap)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < cap) {
		char path[300], type[16];

		if (e->d_name[0] == '.' || !strcmp(e->d_name, "lo") ||
		    strlen(e->d_name) >= INIT_IFNAME)
			continue;
		/* Ethernet only (ARPHRD_ETHER): not sit0, tunnels or the like. */
		snprintf(path, sizeof(path), "/sys/class/net/%s/type", e->d_name);
		if (file_read_small(path, type, sizeof(type)) <= 0 || strcmp(type, "1"))
			continue;
		memcpy(names[n], e->d_name, strlen(e->d_name) + 1);
		n++;
	}
	closedir(d);
	return n;
}

static void write_resolv(const char *a, const char *b)
{
	char buf[160];
	int n, fd;

	if (!a[0] && !b[0])
		return;
	n = snprintf(buf, sizeof(buf), "%s%s%s%s%s", a[0] ? "nameserver " : "", a,
		     a[0] ? "\n" : "", b[0] ? "nameserver " : "", b);
	if (n < 0 || (size_t)n + 1 >= sizeof(buf))
		return;
	buf[n++] = '\n';
	fd = open("/run/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		fd_write_all(fd, buf, (size_t)n);
		close(fd);
	}
}

static int configure_static(int s, const struct init_ip *ip, const char *dev)
{
	int r;

	if ((r = set_addr(s, dev, SIOCSIFADDR, ip->client)) ||
	    (r = set_addr(s, dev, SIOCSIFNETMASK, ip->mask))) {
		log_errno(r, "%s: static address %s", dev, ip->client);
		return r;
	}
	if (ip->gw[0] && (r = add_default_route(s, ip->gw)))
		log_errno(r, "%s: default route via %s", dev, ip->gw);
	write_resolv(ip->dns0, ip->dns1);
	log_info("%s: static %s/%d%s%s", dev, ip->client, mask_bits(ip->mask),
		 ip->gw[0] ? " gw " : "", ip->gw);
	return 0;
}

static pid_t start_udhcpc(const char *dev)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0 && log_level() < LOG_LVL_DEBUG) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Foreground until the first lease (or 5 tries), then it
		 * daemonizes and keeps renewing: the parent sees an exit. */
		execl("/bin/busybox", "udhcpc", "-i", dev, "-s", "/etc/udhcpc.script",
		      "-t", "5", "-T", "2", "-A", "3", "-b", "-x", "hostname:ferry-live",
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int count_ipv4(char *first, size_t cap)
{
	struct ifaddrs *ifa, *i;
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		if (n++ == 0 && first)
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				  first, (socklen_t)cap);
	}
	freeifaddrs(ifa);
	return n;
}

int bring_up_network(const struct init_config *c)
{
	char nics[NET_MAX_IFS][INIT_IFNAME];
	pid_t pids[NET_MAX_IFS];
	size_t n, i, running = 0;
	uint64_t deadline;
	char addr[INET6_ADDRSTRLEN];
	int s, r;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if ((r = if_up(s, "lo")))
		log_errno(r, "loopback");
	sethostname("ferry-live", 10);
	n = list_nics(nics, NET_MAX_IFS);
	if (n == 0) {
		log_error("no network interface found: the destination cannot be reached");
		close(s);
		return -ENODEV;
	}
	for (i = 0; i < n; i++)
		if ((r = if_up(s, nics[i])))
			log_errno(r, "%s: up", nics[i]);
	if (c->ip.given && c->ip.off) {
		log_info("ip=off: no address configured");
		close(s);
		return 0;
	}
	if (c->ip.given && !c->ip.dhcp) {
		const char *dev = c->ip.dev[0] ? c->ip.dev : nics[0];

		r = configure_static(s, &c->ip, dev);
		close(s);
		return r;
	}
	close(s);
	for (i = 0; i < n; i++) {
		pids[i] = start_udhcpc(nics[i]);
		if (pids[i] > 0) {
			running++;
			log_info("%s: dhcp: asking for a lease", nics[i]);
		}
	}
	deadline = time_now_ms() + DHCP_WAIT_MS;
	while (running > 0 && time_now_ms() < deadline) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0) {
			for (i = 0; i < n; i++)
				if (pids[i] == p) {
					pids[i] = 0;
					running--;
				}
			continue;
		}
		if (count_ipv4(NULL, 0) > 0)
			break;
		usleep(20000);
	}
	if (count_ipv4(addr, sizeof(addr)) > 0) {
		log_info("dhcp: got %s", addr);
		return 0;
	}
	log_error("dhcp: no lease after %d s; still trying in the background",
		  DHCP_WAIT_MS / 1000);
	return -ETIMEDOUT;
}
