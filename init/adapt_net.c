/*
 * adapt_net.c - the adapt phase's network step: the migrated system's
 * network configuration detached from the old NICs. A first pass over
 * every file (udev persistent-net rules, ifcfg, NetworkManager keyfiles,
 * netplan, ifupdown) learns which interfaces are configured and which
 * one held the default gateway: the old primary. A second pass removes
 * the MAC bindings and turns the primary's static IPv4 setup into DHCP.
 * Then this machine's primary NIC (the one with the default route, else
 * the first with a device) is given the old primary's name by a udev
 * rule, so every file that names the old interface applies to it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapt_phase.h"
#include "common/common.h"

enum nkind { NK_UDEV, NK_IFCFG, NK_NM, NK_NETPLAN, NK_IFUPDOWN };

struct nfile {
	enum nkind kind;
	char rel[160];
	char name[ADAPT_IFNAME]; /* ifcfg-NAME */
};

#define NFILES_MAX 64

struct nctx {
	struct adapt_net net;
	int learn;
	struct nfile f[NFILES_MAX];
	size_t n;
};

static void add(struct ax *x, struct nctx *c, enum nkind k, const char *rel, const char *name)
{
	struct stat st;

	if (c->n >= NFILES_MAX || ax_stat(x, rel, &st) || !S_ISREG(st.st_mode))
		return;
	c->f[c->n].kind = k;
	snprintf(c->f[c->n].rel, sizeof(c->f[0].rel), "%s", rel);
	snprintf(c->f[c->n].name, sizeof(c->f[0].name), "%s", name ? name : "");
	c->n++;
}

static int skip_name(const char *n)
{
	size_t k = strlen(n);

	return n[0] == '.' || (k && n[k - 1] == '~') || strstr(n, ".ferry-") || strstr(n, ".bak") ||
	       strstr(n, ".orig") || strstr(n, ".rpmsave") || strstr(n, ".rpmnew") ||
	       strstr(n, ".dpkg-");
}

static void add_dir(struct ax *x, struct nctx *c, enum nkind k, const char *dir, const char *prefix,
		    const char *suffix)
{
	char rel[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (!(d = ax_opendir(x, dir)))
		return;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t nl = strlen(n), sl = suffix ? strlen(suffix) : 0;

		if (skip_name(n) || (prefix && strncmp(n, prefix, strlen(prefix))) ||
		    (suffix && (nl <= sl || strcmp(n + nl - sl, suffix))) ||
		    snprintf(rel, sizeof(rel), "%s/%s", dir, n) >= (int)sizeof(rel))
			continue;
		if (prefix && !strcmp(n + strlen(prefix), "lo"))
			continue;
		add(x, c, k, rel, prefix ? n + strlen(prefix) : NULL);
	}
	closedir(d);
}

static int rw_net(struct ax *x, void *arg, const char *in, size_t len, struct adapt_buf *out,
		  struct adapt_notes *nt)
{
	const struct nfile *f = ((const struct nfile **)arg)[0];
	struct nctx *c = ((struct nctx **)arg)[1];

	(void)x;
	switch (f->kind) {
	case NK_UDEV: return adapt_udev_net(in, len, &c->net, out, nt);
	case NK_IFCFG: return adapt_ifcfg(in, len, f->name, &c->net, out, nt);
	case NK_NM: return adapt_nm_keyfile(in, len, &c->net, out, nt);
	case NK_NETPLAN: return adapt_netplan(in, len, &c->net, out, nt);
	case NK_IFUPDOWN: return adapt_interfaces(in, len, &c->net, out, nt);
	}
	return -EINVAL;
}

/* The learning pass: the rewrites run, their output is dropped. */
static int rw_learn(struct ax *x, void *arg, const char *in, size_t len, struct adapt_buf *out,
		    struct adapt_notes *nt)
{
	int r = rw_net(x, arg, in, len, out, nt);

	(void)r;
	return 0;
}

/* This machine's primary NIC: the default route's, else the first one
 * with a device behind it. */
static int new_nic(char *name, size_t ncap, char *mac, size_t mcap)
{
	char line[256], p[300];
	struct dirent *de;
	FILE *f;
	DIR *d;

	name[0] = mac[0] = 0;
	if ((f = fopen("/proc/net/route", "re"))) {
		char ifn[32];
		unsigned long dst;

		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "%31s %lx", ifn, &dst) == 2 && dst == 0 &&
			    strcmp(ifn, "lo")) {
				snprintf(name, ncap, "%s", ifn);
				break;
			}
		fclose(f);
	}
	if (!name[0] && (d = opendir("/sys/class/net"))) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || !strcmp(de->d_name, "lo"))
				continue;
			snprintf(p, sizeof(p), "/sys/class/net/%s/device", de->d_name);
			if (!access(p, F_OK) && strlen(de->d_name) < ncap &&
			    (!name[0] || strcmp(de->d_name, name) < 0))
				snprintf(name, ncap, "%.15s", de->d_name);
		}
		closedir(d);
	}
	if (!name[0])
		return -ENODEV;
	snprintf(p, sizeof(p), "/sys/class/net/%s/address", name);
	if (file_read_small(p, line, sizeof(line)) < 0 || !adapt_mac_ok(line))
		return -ENODEV;
	snprintf(mac, mcap, "%.17s", line);
	return 0;
}

/* A static setup was asked for and no file took it: a FAIL, never a
 * silent DHCP. */
static void static_unwritten(struct ax *x, const struct nctx *c)
{
	if (x->q->ip.prefix && !x->q->keep_ip && !c->net.st_done)
		ax_say(x, PROTO_FAIL,
		       "network: the static setup asked for (%s) was not written: no ifupdown, "
		       "netplan, ifcfg or NetworkManager keyfile configuration of the primary "
		       "NIC%s%s was found",
		       c->net.st_addr, c->net.primary[0] ? " " : "", c->net.primary);
}

void ax_fix_network(struct ax *x)
{
	static struct nctx c;
	char nic[32] = "", rule[512];
	const void *arg[2];
	struct stat st;
	size_t i;

	memset(&c, 0, sizeof(c));
	if (x->q->ip.prefix && !x->q->keep_ip) {
		char a[16];

		proto_ipv4_text(x->q->ip.addr, a, sizeof(a));
		snprintf(c.net.st_addr, sizeof(c.net.st_addr), "%.15s/%u", a,
			 x->q->ip.prefix & 63u);
		proto_ipv4_text(x->q->ip.gw, c.net.st_gw, sizeof(c.net.st_gw));
		proto_ipv4_text(x->q->ip.dns, c.net.st_dns, sizeof(c.net.st_dns));
	}
	add(x, &c, NK_UDEV, "/etc/udev/rules.d/70-persistent-net.rules", NULL);
	add_dir(x, &c, NK_IFCFG, "/etc/sysconfig/network-scripts", "ifcfg-", NULL);
	add_dir(x, &c, NK_IFCFG, "/etc/sysconfig/network", "ifcfg-", NULL);
	add_dir(x, &c, NK_NM, "/etc/NetworkManager/system-connections", NULL, ".nmconnection");
	add_dir(x, &c, NK_NETPLAN, "/etc/netplan", NULL, ".yaml");
	add(x, &c, NK_IFUPDOWN, "/etc/network/interfaces", NULL);
	add_dir(x, &c, NK_IFUPDOWN, "/etc/network/interfaces.d", NULL, NULL);
	if (!c.n) {
		static_unwritten(x, &c);
		return;
	}
	/* Pass 1: what is configured, and the old primary. A dry run
	 * reads the same way; ax_edit writes nothing for rw_learn. */
	arg[1] = &c;
	for (i = 0; i < c.n; i++) {
		arg[0] = &c.f[i];
		ax_edit(x, c.f[i].rel, rw_learn, arg, NULL);
	}
	snprintf(c.net.primary, sizeof(c.net.primary), "%s", adapt_net_primary(&c.net));
	c.net.to_dhcp = !x->q->keep_ip;
	if (x->live && new_nic(nic, sizeof(nic), c.net.new_mac, sizeof(c.net.new_mac)))
		ax_say(x, PROTO_WARN,
		       "network: this machine's NIC is unknown (no device in "
		       "/sys/class/net): the old NIC's name is not handed on");
	c.net.nifs = 0;
	c.net.st_done = 0;
	/* Pass 2: the rewrites. */
	for (i = 0; i < c.n; i++) {
		arg[0] = &c.f[i];
		ax_edit(x, c.f[i].rel, rw_net, arg,
			c.f[i].kind == NK_UDEV
			    ? "the old NICs are gone; the primary's name goes to this machine's NIC"
			    : "the configuration named the old NIC");
	}
	static_unwritten(x, &c);
	if (!c.net.primary[0])
		return;
	if (x->q->keep_ip)
		ax_say(x, PROTO_PASS, "network: %s keeps its addresses as configured (keep-ip)",
		       c.net.primary);
	if (!c.net.new_mac[0]) {
		if (!x->live)
			ax_say(x, PROTO_WARN,
			       "network: %s configured; this machine's NIC is not known "
			       "in host mode, so it keeps the name the system gives it",
			       c.net.primary);
		return;
	}
	if (c.net.bound[0])
		return; /* the persistent-net rule names the new NIC already */
	snprintf(rule, sizeof(rule),
		 "# ferry-adapt: this machine's primary NIC takes the name the migrated "
		 "system's\n# configuration uses (%s); delete this file to get the default "
		 "name.\nSUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", "
		 "ATTR{address}==\"%s\", ATTR{type}==\"1\", NAME=\"%s\"\n",
		 c.net.primary, c.net.new_mac, c.net.primary);
	if (x->dry) {
		ax_say(x, PROTO_PASS,
		       "network: would name this machine's NIC %s (%s) %s by a udev rule", nic,
		       c.net.new_mac, c.net.primary);
		return;
	}
	memset(&st, 0, sizeof(st));
	st.st_mode = 0644;
	if (ax_write_rel(x, "/etc/udev/rules.d/70-ferry-net.rules", rule, strlen(rule), &st))
		ax_say(x, PROTO_FAIL, "network: /etc/udev/rules.d/70-ferry-net.rules not written");
	else
		ax_say(
		    x, PROTO_PASS,
		    "network: /etc/udev/rules.d/70-ferry-net.rules names this machine's NIC (%s, "
		    "%s) %s, the interface the configuration names (new file)",
		    nic, c.net.new_mac, c.net.primary);
}
