/*
 * test_cmdline.c - the kernel command line parser, table-driven: what
 * each ferry.* and ip= value yields, and that bad values keep the safe
 * default with a warning that names the parameter.
 */
#include <string.h>

#include "common/common.h"
#include "init.h"
#include "tests/tap.h"

static const char tok[] = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567";

static int parse(const char *line, struct init_config *c, char *w, size_t cap)
{
	init_config_defaults(c);
	return init_parse_cmdline(line, c, w, cap);
}

static void test_defaults(void)
{
	struct init_config c;
	char w[INIT_WARN_MAX];

	is_int(parse("console=ttyS0 quiet root=/dev/vda1", &c, w, sizeof(w)), 0,
	       "foreign words ignored without warning");
	ok(!c.have_token && c.listen_port == 443 && !c.listen_host[0] &&
	   c.mode == INIT_MODE_SERVE && c.handoff == INIT_HANDOFF_REBOOT &&
	   !c.result[0] && c.loglevel == 2 && !c.ip.given, "defaults");
}

static void test_good(void)
{
	struct init_config c;
	char w[INIT_WARN_MAX], line[512], back[TLS_TOKEN_TEXT_MAX];

	snprintf(line, sizeof(line),
		 "console=ttyS0 ferry.token=%s ferry.listen=[::1]:8443 ferry.mode=rescue "
		 "ferry.handoff=kexec ferry.result=/dev/ttyS1 ferry.loglevel=3", tok);
	is_int(parse(line, &c, w, sizeof(w)), 0, "all good values: no warning");
	tls_token_format(&c.token, back, sizeof(back));
	ok(c.have_token && !strcmp(back, tok), "token parsed");
	ok(!strcmp(c.listen_host, "::1") && c.listen_port == 8443, "listen [::1]:8443 (%s %u)",
	   c.listen_host, c.listen_port);
	ok(c.mode == INIT_MODE_RESCUE, "mode rescue");
	ok(c.handoff == INIT_HANDOFF_KEXEC, "handoff kexec");
	ok(!strcmp(c.result, "/dev/ttyS1"), "result port");
	is_int(c.loglevel, 3, "loglevel");

	is_int(parse("ferry.token=abcdefghijklmnopqrstuvwxyz234567", &c, w, sizeof(w)), 0,
	       "lowercase token without dashes");
	tls_token_format(&c.token, back, sizeof(back));
	ok(!strcmp(back, tok), "same token as the dashed form");

	parse("ferry.listen=:9000", &c, w, sizeof(w));
	ok(!c.listen_host[0] && c.listen_port == 9000, "listen :9000");
	parse("ferry.listen=10.1.2.3:443 \"ferry.mode=clean\"", &c, w, sizeof(w));
	ok(!strcmp(c.listen_host, "10.1.2.3") && c.mode == INIT_MODE_CLEAN,
	   "quoted word and address listen");
	parse("ferry.mode=rescue -- ferry.mode=clean", &c, w, sizeof(w));
	ok(c.mode == INIT_MODE_RESCUE, "words after -- are init's argv, not parameters");
	parse("ferry.mode=clean ferry.mode=serve", &c, w, sizeof(w));
	ok(c.mode == INIT_MODE_SERVE, "the last value wins, as in the kernel");
	parse("ferry.mode=adapt", &c, w, sizeof(w));
	ok(c.mode == INIT_MODE_ADAPT && c.adapt == PROTO_ADAPT_ON, "ferry.mode=adapt, auto by default");
	parse("ferry.mode=adapt ferry.adapt=force", &c, w, sizeof(w));
	ok(c.adapt == (PROTO_ADAPT_ON | PROTO_ADAPT_FORCE), "ferry.adapt=force");
	parse("ferry.adapt=dry-run", &c, w, sizeof(w));
	ok(c.adapt == (PROTO_ADAPT_ON | PROTO_ADAPT_DRY), "ferry.adapt=dry-run");
	parse("ferry.adapt=force,keep-ip", &c, w, sizeof(w));
	ok(c.adapt == (PROTO_ADAPT_ON | PROTO_ADAPT_FORCE | PROTO_ADAPT_KEEP_IP),
	   "ferry.adapt=force,keep-ip");
	parse("ferry.mode=adapt ferry.adapt.ip=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53", &c, w,
	      sizeof(w));
	ok(c.adapt_ip.addr == 0xc000020a && c.adapt_ip.prefix == 24 &&
	   c.adapt_ip.gw == 0xc0000201 && c.adapt_ip.dns == 0xc0000235 && !w[0],
	   "ferry.adapt.ip=: a static setup for the primary NIC");
	parse("ferry.mode=adapt", &c, w, sizeof(w));
	ok(c.adapt_ip.prefix == 0, "no ferry.adapt.ip=: DHCP");
}

struct bad_case {
	const char *line;
	const char *needle; /* the warning must name this */
};

static void test_bad(void)
{
	static const struct bad_case t[] = {
		{ "ferry.token=SHORT", "ferry.token" },
		{ "ferry.token=ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4561", "ferry.token" },
		{ "ferry.listen=nonsense:99999", "ferry.listen" },
		{ "ferry.listen=[::1:80", "ferry.listen" },
		{ "ferry.mode=destroy", "ferry.mode" },
		{ "ferry.adapt=always", "ferry.adapt" },
		{ "ferry.adapt.ip=192.0.2.10/24,gw=10.0.0.1", "ferry.adapt.ip" },
		{ "ferry.adapt.ip=192.0.2.10", "ferry.adapt.ip" },
		{ "ferry.handoff=explode", "ferry.handoff" },
		{ "ferry.result=/etc/passwd", "ferry.result" },
		{ "ferry.result=/dev/../etc/x", "ferry.result" },
		{ "ferry.loglevel=9", "ferry.loglevel" },
		{ "ferry.loglevel=", "ferry.loglevel" },
		{ "ferry.colour=blue", "ferry.colour" },
		{ "ferry.token", "ferry.token" },
		{ "ip=10.0.2.300::10.0.2.2:255.255.255.0::eth0:off", "ip=" },
		{ "ip=a:b:c:d:e:f:g:h:i:j", "ip=" },
		{ "ferry.connect=:443", "ferry.connect" },
	};
	struct init_config c;
	char w[INIT_WARN_MAX];
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(t); i++) {
		int n = parse(t[i].line, &c, w, sizeof(w));
		size_t l = strlen(w);

		if (l && w[l - 1] == '\n')
			w[l - 1] = 0;

		ok(n == 1 && strstr(w, t[i].needle) != NULL, "'%s' warns naming %s (%s)",
		   t[i].line, t[i].needle, w);
		ok(!c.have_token && c.mode == INIT_MODE_SERVE &&
		   c.handoff == INIT_HANDOFF_REBOOT && !c.result[0] && c.loglevel == 2 &&
		   c.listen_port == 443 && !c.connect[0],
		   "'%s' keeps the safe defaults", t[i].line);
	}
	parse("ferry.token=ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4561", &c, w, sizeof(w));
	ok(!strstr(w, "4561"), "a bad token is not echoed in the warning");
}

static void test_ip(void)
{
	struct init_config c;
	char w[INIT_WARN_MAX];

	parse("ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off", &c, w, sizeof(w));
	ok(c.ip.given && !c.ip.dhcp && !c.ip.off && !strcmp(c.ip.client, "10.0.2.15") &&
	   !strcmp(c.ip.gw, "10.0.2.2") && !strcmp(c.ip.mask, "255.255.255.0") &&
	   !strcmp(c.ip.dev, "eth0"), "static ip= with device");
	parse("ip=192.168.7.9:::::", &c, w, sizeof(w));
	ok(!c.ip.dhcp && !strcmp(c.ip.client, "192.168.7.9") && !strcmp(c.ip.mask, "255.255.255.0"),
	   "static ip= without mask gets /24");
	parse("ip=10.0.0.2::10.0.0.1:255.0.0.0:host:eth1:none:1.1.1.1:8.8.8.8", &c, w, sizeof(w));
	ok(!strcmp(c.ip.dns0, "1.1.1.1") && !strcmp(c.ip.dns1, "8.8.8.8") &&
	   !strcmp(c.ip.hostname, "host"), "all nine fields");
	parse("ip=dhcp", &c, w, sizeof(w));
	ok(c.ip.given && c.ip.dhcp, "ip=dhcp");
	parse("ip=off", &c, w, sizeof(w));
	ok(c.ip.given && c.ip.off && !c.ip.dhcp, "ip=off");
	parse("ip=:::::eth0:dhcp", &c, w, sizeof(w));
	ok(c.ip.dhcp && !strcmp(c.ip.dev, "eth0"), "no client address means autoconfiguration");
	parse("ip=10.0.2.300::10.0.2.2:255.255.255.0::eth0:off", &c, w, sizeof(w));
	ok(c.ip.given && c.ip.dhcp && !c.ip.client[0], "a bad address falls back to DHCP");
}

static void test_bounds(void)
{
	static char huge[INIT_CMDLINE_MAX * 2];
	struct init_config c;
	char w[64];
	size_t i;

	for (i = 0; i + 1 < sizeof(huge); i++)
		huge[i] = (i % 50 == 49) ? ' ' : 'x';
	huge[sizeof(huge) - 1] = 0;
	ok(parse(huge, &c, w, sizeof(w)) == 1, "an over-long command line warns once");
	memset(huge, 'a', sizeof(huge) - 1);
	memcpy(huge, "ferry.mode=", 11);
	parse(huge, &c, w, sizeof(w));
	is_int(c.mode, INIT_MODE_SERVE, "a word longer than the buffer cannot set a mode");
	/* A tiny warning buffer is never overrun (ASan watches). */
	ok(parse("ferry.mode=a ferry.mode=b ferry.mode=c", &c, w, 8) == 3,
	   "three warnings counted with an 8-byte buffer");
}

int main(void)
{
	test_defaults();
	test_good();
	test_bad();
	test_ip();
	test_bounds();
	return tap_done();
}
