/*
 * cmdline.c - the kernel command line: ferry.* parameters and ip=. Pure
 * parsing into struct init_config; no side effects, so it is unit-tested
 * and fuzzed on the host. A bad value never stops the boot: the default
 * stays and a warning names the parameter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "init.h"

void init_config_defaults(struct init_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_port = 443;
	c->mode = INIT_MODE_SERVE;
	c->handoff = INIT_HANDOFF_REBOOT;
	c->loglevel = LOG_LVL_INFO;
	c->adapt = PROTO_ADAPT_ON;
}

const char *init_mode_name(enum init_mode m)
{
	switch (m) {
	case INIT_MODE_SERVE: return "serve";
	case INIT_MODE_CLEAN: return "clean";
	case INIT_MODE_RESCUE: return "rescue";
	case INIT_MODE_ADAPT: return "adapt";
	case INIT_MODE_RELAY: return "relay";
	}
	return "?";
}

const char *init_handoff_name(enum init_handoff h)
{
	switch (h) {
	case INIT_HANDOFF_REBOOT: return "reboot";
	case INIT_HANDOFF_KEXEC: return "kexec";
	case INIT_HANDOFF_POWEROFF: return "poweroff";
	case INIT_HANDOFF_SHELL: return "shell";
	}
	return "?";
}

int init_handoff_parse(const char *s, enum init_handoff *h)
{
	static const enum init_handoff all[] = { INIT_HANDOFF_REBOOT, INIT_HANDOFF_KEXEC,
						 INIT_HANDOFF_POWEROFF, INIT_HANDOFF_SHELL };
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(all); i++)
		if (!strcmp(s, init_handoff_name(all[i]))) {
			*h = all[i];
			return 0;
		}
	return -EINVAL;
}

struct warner {
	char *buf;
	size_t cap, len;
	int count;
};

static void warn(struct warner *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(struct warner *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	w->count++;
	if (!w->buf || w->len + 1 >= w->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	w->len += (size_t)n;
	if (w->len + 1 >= w->cap) {
		w->len = w->cap - 1;
		return;
	}
	w->buf[w->len++] = '\n';
	w->buf[w->len] = 0;
}

/* Quoting a value back must not let it spill control bytes or run on. */
static const char *shown(const char *v, char *buf, size_t cap)
{
	size_t i;

	for (i = 0; v[i] && i + 4 < cap; i++)
		buf[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
	if (v[i]) {
		memcpy(buf + (i < 3 ? 0 : i - 3), "...", 3);
		i = i < 3 ? 3 : i;
	}
	buf[i] = 0;
	return buf;
}

static int ipv4_ok(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

static int copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, s, n);
	dst[n] = 0;
	return 0;
}

/* ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1> */
static void parse_ip(const char *v, struct init_config *c, struct warner *w)
{
	struct init_ip ip;
	const char *p = v;
	char *fields[9];
	size_t caps[9];
	char autoconf[16] = "";
	int i;
	char sb[80];

	memset(&ip, 0, sizeof(ip));
	ip.given = 1;
	if (!strcmp(v, "dhcp") || !strcmp(v, "on") || !strcmp(v, "any") ||
	    !strcmp(v, "both")) {
		ip.dhcp = 1;
		c->ip = ip;
		return;
	}
	if (!strcmp(v, "off") || !strcmp(v, "none")) {
		ip.off = 1;
		c->ip = ip;
		return;
	}
	fields[0] = ip.client; caps[0] = sizeof(ip.client);
	fields[1] = ip.server; caps[1] = sizeof(ip.server);
	fields[2] = ip.gw; caps[2] = sizeof(ip.gw);
	fields[3] = ip.mask; caps[3] = sizeof(ip.mask);
	fields[4] = ip.hostname; caps[4] = sizeof(ip.hostname);
	fields[5] = ip.dev; caps[5] = sizeof(ip.dev);
	fields[6] = autoconf; caps[6] = sizeof(autoconf);
	fields[7] = ip.dns0; caps[7] = sizeof(ip.dns0);
	fields[8] = ip.dns1; caps[8] = sizeof(ip.dns1);
	for (i = 0; i < 9; i++) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (copy_field(fields[i], caps[i], p, n)) {
			warn(w, "ip=%s: field %d is too long; using DHCP",
			     shown(v, sb, sizeof(sb)), i + 1);
			c->ip.given = 1;
			c->ip.dhcp = 1;
			return;
		}
		if (!e)
			break;
		p = e + 1;
		if (i == 8) {
			warn(w, "ip=%s: more than 9 fields; using DHCP",
			     shown(v, sb, sizeof(sb)));
			c->ip.given = 1;
			c->ip.dhcp = 1;
			return;
		}
	}
	if (!ip.client[0]) {
		/* Kernel semantics: no client address means autoconfigure. */
		ip.dhcp = strcmp(autoconf, "off") && strcmp(autoconf, "none");
		ip.off = !ip.dhcp;
		c->ip = ip;
		return;
	}
	if (!ipv4_ok(ip.client) || (ip.gw[0] && !ipv4_ok(ip.gw)) ||
	    (ip.mask[0] && !ipv4_ok(ip.mask)) || (ip.server[0] && !ipv4_ok(ip.server)) ||
	    (ip.dns0[0] && !ipv4_ok(ip.dns0)) || (ip.dns1[0] && !ipv4_ok(ip.dns1))) {
		warn(w, "ip=%s: not an IPv4 address where one is needed; using DHCP",
		     shown(v, sb, sizeof(sb)));
		memset(&c->ip, 0, sizeof(c->ip));
		c->ip.given = 1;
		c->ip.dhcp = 1;
		return;
	}
	if (!ip.mask[0])
		snprintf(ip.mask, sizeof(ip.mask), "255.255.255.0");
	c->ip = ip;
}

static void parse_param(const char *key, const char *v, struct init_config *c,
			struct warner *w)
{
	char sb[80], host[NET_ADDR_MAX], err[TLS_ERR_TEXT_MAX];
	uint16_t port;
	uint64_t n;

	if (!strcmp(key, "ferry.token")) {
		if (tls_token_parse(v, &c->token, err, sizeof(err))) {
			warn(w, "ferry.token: %s; a new token is generated and shown", err);
			c->have_token = 0;
		} else {
			c->have_token = 1;
		}
	} else if (!strcmp(key, "ferry.listen")) {
		if (net_split_hostport(v, 443, host, sizeof(host), &port)) {
			warn(w, "ferry.listen=%s: want [ADDR]:PORT; using :443",
			     shown(v, sb, sizeof(sb)));
			return;
		}
		snprintf(c->listen_host, sizeof(c->listen_host), "%s", host);
		c->listen_port = port;
	} else if (!strcmp(key, "ferry.connect")) {
		if (net_split_hostport(v, 443, host, sizeof(host), &port) || !host[0]) {
			warn(w, "ferry.connect=%s: want HOST:PORT; reverse mode stays off",
			     shown(v, sb, sizeof(sb)));
			return;
		}
		snprintf(c->connect, sizeof(c->connect), "%s", v);
	} else if (!strcmp(key, "ferry.mode")) {
		if (!strcmp(v, "serve"))
			c->mode = INIT_MODE_SERVE;
		else if (!strcmp(v, "clean"))
			c->mode = INIT_MODE_CLEAN;
		else if (!strcmp(v, "rescue"))
			c->mode = INIT_MODE_RESCUE;
		else if (!strcmp(v, "adapt"))
			c->mode = INIT_MODE_ADAPT;
		else if (!strcmp(v, "relay"))
			c->mode = INIT_MODE_RELAY;
		else
			warn(w, "ferry.mode=%s: want serve, clean, rescue, adapt or relay; using serve",
			     shown(v, sb, sizeof(sb)));
	} else if (!strcmp(key, "ferry.relay.allow")) {
		char aerr[256];

		if (net_allow_parse(v, &c->relay_allow, aerr, sizeof(aerr)))
			warn(w, "ferry.relay.allow: %s; the relay refuses every destination", aerr);
	} else if (!strcmp(key, "ferry.adapt")) {
		if (proto_adapt_parse(v, &c->adapt))
			warn(w, "ferry.adapt=%s: want auto, force or dry-run, and keep-ip "
				"(comma-separated); using auto",
			     shown(v, sb, sizeof(sb)));
	} else if (!strcmp(key, "ferry.adapt.ip")) {
		char why[96];

		if (proto_adapt_ip_parse(v, &c->adapt_ip, why, sizeof(why)))
			warn(w, "ferry.adapt.ip=%s: %s; the primary NIC gets DHCP",
			     shown(v, sb, sizeof(sb)), why);
	} else if (!strcmp(key, "ferry.handoff")) {
		if (init_handoff_parse(v, &c->handoff))
			warn(w, "ferry.handoff=%s: want reboot, kexec, poweroff or shell; using reboot",
			     shown(v, sb, sizeof(sb)));
	} else if (!strcmp(key, "ferry.result")) {
		if (strncmp(v, "/dev/", 5) || strlen(v) >= sizeof(c->result) ||
		    strstr(v, "..")) {
			warn(w, "ferry.result=%s: want a device under /dev/; result port off",
			     shown(v, sb, sizeof(sb)));
			return;
		}
		snprintf(c->result, sizeof(c->result), "%s", v);
	} else if (!strcmp(key, "ferry.loglevel")) {
		if (parse_u64(v, 3, &n) || n < 1)
			warn(w, "ferry.loglevel=%s: want 1, 2 or 3; using 2",
			     shown(v, sb, sizeof(sb)));
		else
			c->loglevel = (int)n;
	} else if (!strcmp(key, "ip")) {
		parse_ip(v, c, w);
	} else if (!strncmp(key, "ferry.", 6)) {
		warn(w, "%s: unknown ferry parameter; ignored", shown(key, sb, sizeof(sb)));
	}
}

int init_parse_cmdline(const char *cmdline, struct init_config *c, char *wbuf,
		       size_t warncap)
{
	struct warner w = { wbuf, warncap, 0, 0 };
	char word[INIT_CMDLINE_MAX];
	size_t len = strnlen(cmdline, INIT_CMDLINE_MAX + 1);
	size_t i = 0;

	if (wbuf && warncap)
		wbuf[0] = 0;
	if (len > INIT_CMDLINE_MAX) {
		warn(&w, "kernel command line longer than %d bytes; only the start is read",
		     INIT_CMDLINE_MAX);
		len = INIT_CMDLINE_MAX;
	}
	while (i < len) {
		size_t n = 0;
		int quoted = 0;
		char *eq;

		while (i < len && (cmdline[i] == ' ' || cmdline[i] == '\t' ||
				   cmdline[i] == '\n'))
			i++;
		if (i >= len)
			break;
		/* The kernel's rule: double quotes group, and are dropped. */
		while (i < len && (quoted || (cmdline[i] != ' ' && cmdline[i] != '\t' &&
					      cmdline[i] != '\n'))) {
			if (cmdline[i] == '"')
				quoted = !quoted;
			else if (n + 1 < sizeof(word))
				word[n++] = cmdline[i];
			i++;
		}
		word[n] = 0;
		if (!strcmp(word, "--"))
			break; /* the rest is for init's argv */
		eq = strchr(word, '=');
		if (!eq) {
			if (!strncmp(word, "ferry.", 6)) {
				char sb[80];

				warn(&w, "%s: needs a value (%s=...); ignored",
				     shown(word, sb, sizeof(sb)), shown(word, sb, sizeof(sb)));
			}
			continue;
		}
		*eq = 0;
		parse_param(word, eq + 1, c, &w);
	}
	mem_wipe(word, sizeof(word));
	return w.count;
}
