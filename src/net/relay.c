/*
 * relay.c - the two parsers of the relay (init/relay.c): its allow-list
 * ("10.0.0.0/24:443,[fd00::/64]:7000-7010") and the head of a client's
 * CONNECT request. Both inputs are untrusted (a kernel command line, a
 * socket): every byte is read within the given length, every field is
 * checked before use, and a refusal says which part was wrong. Names are
 * recognised but never resolved here; no I/O, no allocation, so both are
 * unit-tested and fuzzed on the host.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "net/net.h"

/* Printable and bounded, for quoting input back in a message. */
static void relay_quote(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	if (!cap)
		return;
	for (i = 0; i < n && o + 4 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[o++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	if (i < n && cap >= 4) {
		o = o > cap - 4 ? cap - 4 : o;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
}

/* Digits only, 1..65535: "0443" is 443, "+443" and "" are not ports. */
static int relay_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/*
 * An IP literal s[0..n) into family (4/6) and addr. An IPv4-mapped IPv6
 * address is taken as the IPv4 one, so "[::ffff:10.0.0.5]" meets the
 * same rules as "10.0.0.5" (the kernel would connect it there anyway).
 */
static int relay_ip(const char *s, size_t n, uint8_t *family, uint8_t addr[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char tmp[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	memset(addr, 0, 16);
	if (!memchr(tmp, ':', n)) {
		if (inet_pton(AF_INET, tmp, addr) != 1)
			return -EINVAL;
		*family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, addr) != 1)
		return -EINVAL;
	*family = 6;
	if (!memcmp(addr, mapped, sizeof(mapped))) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = 4;
	}
	return 0;
}

static void relay_mask(uint8_t addr[16], unsigned prefix)
{
	unsigned i;

	for (i = 0; i < 16; i++) {
		if (prefix >= 8) {
			prefix -= 8;
			continue;
		}
		addr[i] &= (uint8_t)(0xff00u >> prefix);
		prefix = 0;
	}
}

static void relay_addr_text(uint8_t family, const uint8_t addr[16], char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, cap, "%s", a);
}

/* One entry s[0..n): ADDR[/N]:PORTS or [V6ADDR[/N]]:PORTS (also [V6]/N:PORTS). */
static int relay_allow_one(const char *s, size_t n, struct net_allow *e, char *why, size_t whycap)
{
	const char *a = s, *ports, *slash, *dash;
	size_t an, pn, i;
	unsigned prefix = 0, max;
	int have_prefix = 0;

	memset(e, 0, sizeof(*e));
	if (n && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (!rb || (size_t)(rb - s) + 1 >= n) {
			snprintf(why, whycap, "want [IPV6[/N]]:PORT");
			return -EINVAL;
		}
		a = s + 1;
		an = (size_t)(rb - a);
		ports = rb + 1;
		/* "[fd00::]/64:443": the prefix after the bracket. */
		if (*ports == '/') {
			const char *c = memchr(ports, ':', n - (size_t)(ports - s));

			if (!c || memchr(a, '/', an)) {
				snprintf(why, whycap, "want [IPV6[/N]]:PORT");
				return -EINVAL;
			}
			slash = ports;
			for (i = 1; slash + i < c; i++) {
				if (slash[i] < '0' || slash[i] > '9' || i > 3) {
					snprintf(why, whycap, "bad prefix length");
					return -EINVAL;
				}
				prefix = prefix * 10 + (unsigned)(slash[i] - '0');
			}
			if (i == 1) {
				snprintf(why, whycap, "bad prefix length");
				return -EINVAL;
			}
			have_prefix = 1;
			ports = c;
		}
		if (*ports != ':') {
			snprintf(why, whycap, "want [IPV6[/N]]:PORT");
			return -EINVAL;
		}
		ports++;
	} else {
		const char *c = NULL;

		/* IPv4: the last ':' ends the address (an IPv6 one needs brackets). */
		for (i = 0; i < n; i++)
			if (s[i] == ':')
				c = s + i;
		if (!c || memchr(s, ':', (size_t)(c - s))) {
			snprintf(why, whycap,
				 "want ADDR[/N]:PORT (IPv6 in brackets: [fd00::/64]:443)");
			return -EINVAL;
		}
		an = (size_t)(c - s);
		ports = c + 1;
	}
	pn = n - (size_t)(ports - s);
	slash = memchr(a, '/', an);
	if (slash) {
		size_t pl = an - (size_t)(slash - a) - 1;

		if (pl == 0 || pl > 3) {
			snprintf(why, whycap, "bad prefix length");
			return -EINVAL;
		}
		for (i = 0; i < pl; i++) {
			if (slash[1 + i] < '0' || slash[1 + i] > '9') {
				snprintf(why, whycap, "bad prefix length");
				return -EINVAL;
			}
			prefix = prefix * 10 + (unsigned)(slash[1 + i] - '0');
		}
		have_prefix = 1;
		an = (size_t)(slash - a);
	}
	if (relay_ip(a, an, &e->family, e->addr)) {
		snprintf(why, whycap,
			 "not an IP address (names are not allowed: the relay resolves none)");
		return -EINVAL;
	}
	max = e->family == 4 ? 32 : 128;
	/* An IPv4-mapped address keeps its IPv6 prefix: ::ffff:0:0/96 and up. */
	if (e->family == 4 && memchr(a, ':', an) && have_prefix) {
		if (prefix < 96) {
			snprintf(why, whycap,
				 "an IPv4-mapped address needs a prefix of /96 or more");
			return -EINVAL;
		}
		prefix -= 96;
	}
	if (!have_prefix)
		prefix = max;
	if (prefix > max) {
		snprintf(why, whycap, "prefix /%u is longer than /%u", prefix, max);
		return -EINVAL;
	}
	e->prefix = (uint8_t)prefix;
	relay_mask(e->addr, prefix);
	if (pn == 1 && ports[0] == '*') {
		e->port_lo = 1;
		e->port_hi = 65535;
		return 0;
	}
	dash = memchr(ports, '-', pn);
	if (dash) {
		if (relay_port(ports, (size_t)(dash - ports), &e->port_lo) ||
		    relay_port(dash + 1, pn - (size_t)(dash - ports) - 1, &e->port_hi) ||
		    e->port_hi < e->port_lo) {
			snprintf(why, whycap, "want PORT, LOW-HIGH or *");
			return -EINVAL;
		}
		return 0;
	}
	if (relay_port(ports, pn, &e->port_lo)) {
		snprintf(why, whycap, "want PORT, LOW-HIGH or * after the address");
		return -EINVAL;
	}
	e->port_hi = e->port_lo;
	return 0;
}

int net_allow_parse(const char *s, struct net_allow_list *l, char *err, size_t errcap)
{
	char why[96], q[96];
	size_t len, i = 0;

	memset(l, 0, sizeof(*l));
	if (!s || !*s) {
		snprintf(err, errcap,
			 "empty allow-list: want CIDR:PORT[,CIDR:PORT...] "
			 "(e.g. 10.0.0.0/24:443)");
		return -EINVAL;
	}
	len = strnlen(s, NET_ALLOW_TEXT_MAX + 1);
	if (len > NET_ALLOW_TEXT_MAX) {
		snprintf(err, errcap, "allow-list longer than %d characters", NET_ALLOW_TEXT_MAX);
		return -EINVAL;
	}
	while (i <= len) {
		const char *c = memchr(s + i, ',', len - i);
		size_t n = c ? (size_t)(c - (s + i)) : len - i;

		relay_quote(s + i, n, q, sizeof(q));
		if (n == 0) {
			snprintf(err, errcap,
				 "allow-list: empty entry at character %zu (want "
				 "CIDR:PORT[,CIDR:PORT...])",
				 i + 1);
			goto bad;
		}
		if (l->n == NET_ALLOW_MAX) {
			snprintf(err, errcap, "allow-list: more than %d entries", NET_ALLOW_MAX);
			goto bad;
		}
		if (relay_allow_one(s + i, n, &l->e[l->n], why, sizeof(why))) {
			snprintf(err, errcap, "allow-list entry '%s': %s", q, why);
			goto bad;
		}
		l->n++;
		i += n + 1;
	}
	return 0;
bad:
	memset(l, 0, sizeof(*l));
	return -EINVAL;
}

static int relay_in(const struct net_allow *e, uint8_t family, const uint8_t addr[16])
{
	uint8_t a[16];

	if (e->family != family)
		return 0;
	memcpy(a, addr, 16);
	relay_mask(a, e->prefix);
	return !memcmp(a, e->addr, 16);
}

int net_allow_match(const struct net_allow_list *l, const struct net_relay_target *t)
{
	size_t i;

	if (t->family != 4 && t->family != 6)
		return 0;
	for (i = 0; i < l->n && i < NET_ALLOW_MAX; i++)
		if (relay_in(&l->e[i], t->family, t->addr) && t->port >= l->e[i].port_lo &&
		    t->port <= l->e[i].port_hi)
			return 1;
	return 0;
}

void net_allow_text(const struct net_allow_list *l, char *buf, size_t cap)
{
	size_t i, o = 0;

	if (!cap)
		return;
	buf[0] = 0;
	if (!l->n) {
		snprintf(buf, cap, "(empty: every destination is refused)");
		return;
	}
	for (i = 0; i < l->n && i < NET_ALLOW_MAX; i++) {
		const struct net_allow *e = &l->e[i];
		char a[INET6_ADDRSTRLEN], p[16];
		int n;

		relay_addr_text(e->family, e->addr, a, sizeof(a));
		if (e->port_lo == 1 && e->port_hi == 65535)
			snprintf(p, sizeof(p), "*");
		else if (e->port_lo == e->port_hi)
			snprintf(p, sizeof(p), "%u", (unsigned)e->port_lo);
		else
			snprintf(p, sizeof(p), "%u-%u", (unsigned)e->port_lo, (unsigned)e->port_hi);
		n = snprintf(buf + o, cap - o, "%s%s%s/%u%s:%s", i ? "," : "",
			     e->family == 6 ? "[" : "", a, (unsigned)e->prefix,
			     e->family == 6 ? "]" : "", p);
		if (n < 0 || (size_t)n >= cap - o) {
			/* Cut at an entry's edge where there is room to say so. */
			if (cap > 4) {
				o = o < cap - 4 ? o : cap - 4;
				snprintf(buf + o, cap - o, "...");
			}
			return;
		}
		o += (size_t)n;
	}
}

static int relay_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

/* "10.0.0.5:443", "[fd00::5]:443" or "name:443" in s[0..n). */
static int relay_target(const char *s, size_t n, struct net_relay_target *t, char *why,
			size_t whycap)
{
	const char *h = s, *c = NULL;
	size_t hn, i;
	char q[80];

	relay_quote(s, n, q, sizeof(q));
	if (n && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (!rb || (size_t)(rb - s) + 1 >= n || rb[1] != ':') {
			snprintf(why, whycap, "CONNECT target '%s': want [IPV6]:PORT", q);
			return -EBADMSG;
		}
		h = s + 1;
		hn = (size_t)(rb - h);
		c = rb + 1;
	} else {
		for (i = 0; i < n; i++)
			if (s[i] == ':')
				c = s + i;
		if (!c || memchr(s, ':', (size_t)(c - s))) {
			snprintf(why, whycap, "CONNECT target '%s': want HOST:PORT", q);
			return -EBADMSG;
		}
		hn = (size_t)(c - s);
	}
	if (relay_port(c + 1, n - (size_t)(c + 1 - s), &t->port)) {
		snprintf(why, whycap, "CONNECT target '%s': bad port", q);
		return -EBADMSG;
	}
	if (relay_ip(h, hn, &t->family, t->addr) == 0) {
		relay_addr_text(t->family, t->addr, t->host, sizeof(t->host));
		snprintf(t->text, sizeof(t->text), "%s%s%s:%u", t->family == 6 ? "[" : "", t->host,
			 t->family == 6 ? "]" : "", (unsigned)t->port);
		return 0;
	}
	if (s[0] == '[' || !relay_name_ok(h, hn)) {
		snprintf(why, whycap, "CONNECT target '%s': not an IP address or a host name", q);
		return -EBADMSG;
	}
	/* A name: kept (to be quoted in the refusal), never resolved. */
	t->family = 0;
	relay_quote(h, hn, t->host, sizeof(t->host));
	snprintf(t->text, sizeof(t->text), "%s:%u", t->host, (unsigned)t->port);
	return 0;
}

int net_relay_request(const char *buf, size_t len, size_t *head_len, struct net_relay_target *t,
		      char *why, size_t whycap)
{
	static const char method[] = "CONNECT ";
	size_t i, end = 0, line, sp1, sp2, eol, nhdr = 0;
	char q[64];

	memset(t, 0, sizeof(*t));
	why[0] = 0;
	if (len > NET_RELAY_HEAD_MAX)
		len = NET_RELAY_HEAD_MAX;
	/* Not HTTP at all (a TLS ClientHello: --to the relay without
	 * --proxy) is told at the first byte, not after a timeout. */
	if (len && (buf[0] < 'A' || buf[0] > 'Z')) {
		snprintf(why, whycap, "not an HTTP CONNECT request (first byte 0x%02x%s)",
			 (unsigned char)buf[0],
			 buf[0] == 0x16 ? ": a TLS client; give the relay as the agent's "
					  "--proxy and the destination as --to"
					: "");
		return -EBADMSG;
	}
	for (i = 0; i < len; i++) {
		if (buf[i] == 0) {
			snprintf(why, whycap, "a NUL byte in the request head");
			return -EBADMSG;
		}
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
	if (!end) {
		if (len >= NET_RELAY_HEAD_MAX) {
			snprintf(why, whycap, "request head longer than %d bytes",
				 NET_RELAY_HEAD_MAX);
			return -EMSGSIZE;
		}
		return -EAGAIN;
	}

	/* Request line: CONNECT SP target SP HTTP/1.x */
	eol = (size_t)((const char *)memchr(buf, '\n', end) - buf);
	line = eol > 0 && buf[eol - 1] == '\r' ? eol - 1 : eol;
	for (sp1 = 0; sp1 < line && buf[sp1] != ' '; sp1++)
		;
	if (sp1 != sizeof(method) - 2 || memcmp(buf, method, sizeof(method) - 1)) {
		relay_quote(buf, sp1, q, sizeof(q));
		snprintf(why, whycap,
			 "method '%s' is not supported: the relay only tunnels "
			 "(CONNECT HOST:PORT)",
			 q);
		return -EOPNOTSUPP;
	}
	for (sp2 = sp1 + 1; sp2 < line && buf[sp2] != ' '; sp2++)
		;
	if (sp2 >= line || line - sp2 - 1 != 8 || memcmp(buf + sp2 + 1, "HTTP/1.", 7) ||
	    buf[sp2 + 8] < '0' || buf[sp2 + 8] > '9') {
		relay_quote(buf, line, q, sizeof(q));
		snprintf(why, whycap, "bad request line '%s': want CONNECT HOST:PORT HTTP/1.1", q);
		return -EBADMSG;
	}
	if (relay_target(buf + sp1 + 1, sp2 - sp1 - 1, t, why, whycap)) {
		memset(t, 0, sizeof(*t));
		return -EBADMSG;
	}

	/* Headers: "Name: value" lines, no folding, a bounded number;
	 * their values mean nothing to the relay (it holds no credentials). */
	for (i = eol + 1; i < end;) {
		size_t e = (size_t)((const char *)memchr(buf + i, '\n', end - i) - buf), k;
		size_t l = e > i && buf[e - 1] == '\r' ? e - 1 : e;

		if (l == i)
			break;
		if (++nhdr > NET_RELAY_HEADERS_MAX) {
			snprintf(why, whycap, "more than %d header lines", NET_RELAY_HEADERS_MAX);
			memset(t, 0, sizeof(*t));
			return -EBADMSG;
		}
		for (k = i; k < l && buf[k] != ':'; k++)
			if (buf[k] <= ' ' || buf[k] >= 0x7f)
				break;
		if (k == i || k >= l || buf[k] != ':') {
			relay_quote(buf + i, l - i, q, sizeof(q));
			snprintf(why, whycap, "bad header line '%s'", q);
			memset(t, 0, sizeof(*t));
			return -EBADMSG;
		}
		i = e + 1;
	}
	*head_len = end;
	return 0;
}
