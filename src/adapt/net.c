/*
 * net.c - detaching a migrated system's network configuration from the
 * old machine's NICs: MAC bindings in udev persistent-net rules, ifcfg
 * files, NetworkManager keyfiles and netplan go; the old primary
 * interface's static IPv4 setup becomes DHCP when asked; a rule naming
 * the old primary NIC by MAC is bound to the new NIC instead, so the new
 * NIC takes the old name and every file that names it still applies.
 * Each rewrite also records which interfaces its file configures, so the
 * caller can pick the primary in a first pass over all files.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapt/adapt_impl.h"

int adapt_ifname_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= ADAPT_IFNAME || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.:-", s[i]))
			return 0;
	return 1;
}

int adapt_mac_ok(const char *s)
{
	size_t i;

	if (strlen(s) != 17)
		return 0;
	for (i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

void adapt_learn(struct adapt_net *n, const char *name, size_t len, int gw, int is_static)
{
	char nm[ADAPT_IFNAME];
	size_t i;

	if (!n || len == 0 || len >= sizeof(nm))
		return;
	memcpy(nm, name, len);
	nm[len] = 0;
	if (!adapt_ifname_ok(nm) || !strcmp(nm, "lo"))
		return;
	for (i = 0; i < n->nifs; i++)
		if (!strcmp(n->ifs[i].name, nm))
			break;
	if (i == n->nifs) {
		if (n->nifs == ADAPT_IFS_MAX)
			return;
		snprintf(n->ifs[n->nifs++].name, ADAPT_IFNAME, "%s", nm);
	}
	n->ifs[i].gw |= gw;
	n->ifs[i].is_static |= is_static;
}

const char *adapt_net_primary(const struct adapt_net *n)
{
	size_t i;

	for (i = 0; i < n->nifs; i++)
		if (n->ifs[i].gw)
			return n->ifs[i].name;
	return n->nifs ? n->ifs[0].name : "";
}

static int is_primary(const struct adapt_net *n, const char *name, size_t len)
{
	return n->primary[0] && strlen(n->primary) == len && !memcmp(n->primary, name, len);
}

static void comment_out(struct adapt_buf *out, const struct adapt_line *l)
{
	adapt_puts(out, ADAPT_MARK);
	adapt_put(out, l->s, l->n);
	adapt_put_line_end(out, l);
}

static void copy_line(struct adapt_buf *out, const struct adapt_line *l)
{
	adapt_put(out, l->s, l->n);
	adapt_put_line_end(out, l);
}

/* Finds needle in the line; its offset or -1. */
static long line_find(const struct adapt_line *l, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= l->n; i++)
		if (!memcmp(l->s + i, needle, k))
			return (long)i;
	return -1;
}

/* The value of KEY=="v" or KEY="v" in a udev rule: [*a, *b). */
static int udev_value(const struct adapt_line *l, const char *key, size_t *a, size_t *b)
{
	long at = line_find(l, key);
	size_t i;

	if (at < 0)
		return 0;
	i = (size_t)at + strlen(key);
	if (i >= l->n || l->s[i] != '"')
		return 0;
	*a = ++i;
	while (i < l->n && l->s[i] != '"')
		i++;
	if (i >= l->n)
		return 0;
	*b = i;
	return 1;
}

/* ---- udev persistent-net rules -------------------------------------------- */

int adapt_udev_net(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		   struct adapt_notes *notes)
{
	struct adapt_line l;
	size_t pos = 0, ma, mb, na, nb;
	int ln = 0, changed = 0, r, bind_first;

	if ((r = adapt_check_in(in, len, out)) || !n)
		return r ? r : -EINVAL;
	/* Without a primary the first rule's NIC is the one to keep. */
	bind_first = !n->primary[0];
	while (adapt_next_line(in, len, &pos, &l)) {
		ln++;
		if (adapt_is_comment(&l) || line_find(&l, "SUBSYSTEM==\"net\"") < 0 ||
		    !udev_value(&l, "ATTR{address}==", &ma, &mb) ||
		    !udev_value(&l, "NAME=", &na, &nb)) {
			copy_line(out, &l);
			continue;
		}
		adapt_learn(n, l.s + na, nb - na, 0, 0);
		if (n->new_mac[0] && !n->bound[0] && nb - na < ADAPT_IFNAME &&
		    (bind_first || is_primary(n, l.s + na, nb - na))) {
			adapt_put(out, l.s, ma);
			adapt_puts(out, n->new_mac);
			adapt_put(out, l.s + mb, l.n - mb);
			adapt_put_line_end(out, &l);
			memcpy(n->bound, l.s + na, nb - na);
			n->bound[nb - na] = 0;
			adapt_note(notes, "line %d: %s now names the new NIC %s (was %.*s)", ln,
				   n->bound, n->new_mac, (int)(mb - ma), l.s + ma);
		} else {
			comment_out(out, &l);
			adapt_note(notes, "line %d: rule for the old NIC %.*s (%.*s) commented out",
				   ln, (int)(mb - ma < 40 ? mb - ma : 40), l.s + ma,
				   (int)(nb - na < 20 ? nb - na : 20), l.s + na);
		}
		changed++;
	}
	return out->err ? out->err : changed;
}

/* ---- KEY=VALUE files (ifcfg, NetworkManager keyfiles) ----------------------- */

/* A KEY=VALUE line: key [*ka,*kb), value [*va,*vb) without quotes. */
static int kv(const struct adapt_line *l, size_t *ka, size_t *kb, size_t *va, size_t *vb)
{
	size_t i = 0;

	while (i < l->n && adapt_is_blank(l->s[i]))
		i++;
	if (i == l->n || l->s[i] == '#' || l->s[i] == ';' || l->s[i] == '[')
		return 0;
	*ka = i;
	while (i < l->n && l->s[i] != '=' && !adapt_is_blank(l->s[i]))
		i++;
	*kb = i;
	while (i < l->n && adapt_is_blank(l->s[i]))
		i++;
	if (i == l->n || l->s[i] != '=' || *kb == *ka)
		return 0;
	i++;
	while (i < l->n && adapt_is_blank(l->s[i]))
		i++;
	*va = i;
	*vb = l->n;
	while (*vb > *va && adapt_is_blank(l->s[*vb - 1]))
		(*vb)--;
	if (*vb - *va >= 2 && (l->s[*va] == '"' || l->s[*va] == '\'') &&
	    l->s[*vb - 1] == l->s[*va]) {
		(*va)++;
		(*vb)--;
	}
	return 1;
}

static int key_is(const struct adapt_line *l, size_t ka, size_t kb, const char *key)
{
	return kb - ka == strlen(key) && !memcmp(l->s + ka, key, kb - ka);
}

/* KEY or KEY<digits> (ifcfg's IPADDR0, PREFIX1, ...). */
static int key_is_n(const struct adapt_line *l, size_t ka, size_t kb, const char *key)
{
	size_t k = strlen(key), i;

	if (kb - ka < k || memcmp(l->s + ka, key, k))
		return 0;
	for (i = ka + k; i < kb; i++)
		if (!isdigit((unsigned char)l->s[i]))
			return 0;
	return 1;
}

static int val_is(const struct adapt_line *l, size_t va, size_t vb, const char *v)
{
	return vb - va == strlen(v) && !strncasecmp(l->s + va, v, vb - va);
}

int adapt_ifcfg(const char *in, size_t len, const char *name, struct adapt_net *n,
		struct adapt_buf *out, struct adapt_notes *notes)
{
	struct adapt_line l;
	size_t pos = 0, ka, kb, va, vb;
	char dev[ADAPT_IFNAME];
	int ln = 0, changed = 0, r, gw = 0, stat = 0, ip = 0, dhcp_ok, st_ok, proto = 0;

	if ((r = adapt_check_in(in, len, out)) || !n || !name)
		return r ? r : -EINVAL;
	snprintf(dev, sizeof(dev), "%s", adapt_ifname_ok(name) ? name : "");
	/* First the facts: DEVICE= overrides the file name. */
	while (adapt_next_line(in, len, &pos, &l)) {
		if (!kv(&l, &ka, &kb, &va, &vb))
			continue;
		if (key_is(&l, ka, kb, "DEVICE") && vb - va < sizeof(dev)) {
			memcpy(dev, l.s + va, vb - va);
			dev[vb - va] = 0;
		} else if (key_is_n(&l, ka, kb, "GATEWAY")) {
			gw = 1;
		} else if (key_is(&l, ka, kb, "BOOTPROTO")) {
			stat = val_is(&l, va, vb, "static") || val_is(&l, va, vb, "none");
		} else if (key_is_n(&l, ka, kb, "IPADDR")) {
			ip = 1;
		}
	}
	adapt_learn(n, dev, strlen(dev), gw, stat && ip);
	st_ok = n->st_addr[0] && dev[0] && is_primary(n, dev, strlen(dev));
	dhcp_ok = !st_ok && n->to_dhcp && stat && dev[0] && is_primary(n, dev, strlen(dev));
	pos = 0;
	while (adapt_next_line(in, len, &pos, &l)) {
		ln++;
		if (!kv(&l, &ka, &kb, &va, &vb)) {
			copy_line(out, &l);
			continue;
		}
		if (key_is(&l, ka, kb, "HWADDR") || key_is(&l, ka, kb, "MACADDR")) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: %.*s=%.*s commented out (the old NIC)", ln,
				   (int)(kb - ka), l.s + ka, (int)(vb - va < 40 ? vb - va : 40),
				   l.s + va);
			changed++;
		} else if (st_ok && key_is(&l, ka, kb, "BOOTPROTO")) {
			adapt_put(out, l.s, ka);
			adapt_puts(out, "BOOTPROTO=none");
			adapt_put_line_end(out, &l);
			adapt_note(notes, "line %d: BOOTPROTO=%.*s -> none (%s, a static setup)",
				   ln, (int)(vb - va < 20 ? vb - va : 20), l.s + va, dev);
			proto = 1;
			changed++;
		} else if (st_ok &&
			   (key_is_n(&l, ka, kb, "IPADDR") || key_is_n(&l, ka, kb, "PREFIX") ||
			    key_is_n(&l, ka, kb, "NETMASK") || key_is_n(&l, ka, kb, "GATEWAY") ||
			    key_is_n(&l, ka, kb, "DNS"))) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: %.*s=%.*s commented out (the new static setup)",
				   ln, (int)(kb - ka), l.s + ka, (int)(vb - va < 40 ? vb - va : 40),
				   l.s + va);
			changed++;
		} else if (dhcp_ok && key_is(&l, ka, kb, "BOOTPROTO")) {
			adapt_put(out, l.s, ka);
			adapt_puts(out, "BOOTPROTO=dhcp");
			adapt_put_line_end(out, &l);
			adapt_note(notes, "line %d: BOOTPROTO=%.*s -> dhcp (%s, the primary NIC)",
				   ln, (int)(vb - va < 20 ? vb - va : 20), l.s + va, dev);
			changed++;
		} else if (dhcp_ok &&
			   (key_is_n(&l, ka, kb, "IPADDR") || key_is_n(&l, ka, kb, "PREFIX") ||
			    key_is_n(&l, ka, kb, "NETMASK") || key_is_n(&l, ka, kb, "GATEWAY"))) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: %.*s=%.*s commented out (DHCP now)", ln,
				   (int)(kb - ka), l.s + ka, (int)(vb - va < 40 ? vb - va : 40),
				   l.s + va);
			changed++;
		} else {
			copy_line(out, &l);
		}
	}
	if (st_ok) {
		const char *slash = strchr(n->st_addr, '/');

		if (!slash)
			return -EINVAL;
		if (len && in[len - 1] != '\n')
			adapt_puts(out, "\n");
		adapt_puts(out, "# ferry-adapt: the static setup asked for\n");
		if (!proto)
			adapt_puts(out, "BOOTPROTO=none\n");
		adapt_puts(out, "IPADDR=");
		adapt_put(out, n->st_addr, (size_t)(slash - n->st_addr));
		adapt_puts(out, "\nPREFIX=");
		adapt_puts(out, slash + 1);
		adapt_puts(out, "\n");
		if (n->st_gw[0]) {
			adapt_puts(out, "GATEWAY=");
			adapt_puts(out, n->st_gw);
			adapt_puts(out, "\n");
		}
		if (n->st_dns[0]) {
			adapt_puts(out, "DNS1=");
			adapt_puts(out, n->st_dns);
			adapt_puts(out, "\n");
		}
		adapt_note(notes,
			   "end: %s: BOOTPROTO=none, static %s%s%s%s%s (the primary NIC, as "
			   "asked)",
			   dev, n->st_addr, n->st_gw[0] ? " gateway " : "", n->st_gw,
			   n->st_dns[0] ? " dns " : "", n->st_dns);
		n->st_done = 1;
		changed++;
	}
	return out->err ? out->err : changed;
}

/* ---- NetworkManager keyfiles ---------------------------------------------------- */

/* A [section] header: its name [*a, *b); -1 for a '[' without ']'. */
static int ini_section(const struct adapt_line *l, size_t *a, size_t *b)
{
	size_t i = 0;

	while (i < l->n && adapt_is_blank(l->s[i]))
		i++;
	if (i == l->n || l->s[i] != '[')
		return 0;
	*a = ++i;
	while (i < l->n && l->s[i] != ']')
		i++;
	if (i == l->n)
		return -1;
	*b = i;
	return 1;
}

static int sect_is(const char *sect, const char *a, const char *b)
{
	return !strcmp(sect, a) || (b && !strcmp(sect, b));
}

/*
 * A keyfile line ferry reads: a header or KEY=VALUE within the bounds
 * (a longer line is a certificate blob or damage; GLib would take it, we
 * do not guess), the section name into sect. 1 header, 0 other, or
 * -E2BIG / -EINVAL with notes->why saying which line and why.
 */
static int nm_line(const struct adapt_line *l, int ln, char *sect, struct adapt_notes *notes)
{
	size_t a, b, ka, kb, va, vb;
	int h;

	if (l->n > ADAPT_NM_LINE_MAX)
		return adapt_refuse(notes, -E2BIG,
				    "line %d: %zu bytes, over the %u-byte limit of a keyfile line",
				    ln, l->n, (unsigned)ADAPT_NM_LINE_MAX);
	h = ini_section(l, &a, &b);
	if (h < 0)
		return adapt_refuse(notes, -EINVAL, "line %d: a section header without ']'", ln);
	if (h) {
		if (b - a > ADAPT_NM_NAME_MAX)
			return adapt_refuse(notes, -EINVAL,
					    "line %d: a section name of %zu bytes, over the limit "
					    "of %u",
					    ln, b - a, (unsigned)ADAPT_NM_NAME_MAX);
		memcpy(sect, l->s + a, b - a);
		sect[b - a] = 0;
		return 1;
	}
	if (kv(l, &ka, &kb, &va, &vb) && kb - ka > ADAPT_NM_NAME_MAX)
		return adapt_refuse(notes, -EINVAL,
				    "line %d: a key of %zu bytes, over the limit of %u", ln,
				    kb - ka, (unsigned)ADAPT_NM_NAME_MAX);
	return 0;
}

/* [ipv4] keys a new static setup replaces: the addresses (address1=,
 * legacy addresses1=), gateway=, dns= and the routes (routeN=,
 * routeN_options=), which went through the old network's gateway. */
static int nm_v4_static_key(const struct adapt_line *l, size_t ka, size_t kb)
{
	static const char opt[] = "_options";
	size_t k = sizeof(opt) - 1;

	if (kb - ka > k && !memcmp(l->s + kb - k, opt, k) && key_is_n(l, ka, kb - k, "route"))
		return 1;
	return key_is(l, ka, kb, "method") || key_is(l, ka, kb, "gateway") ||
	       key_is(l, ka, kb, "dns") || key_is_n(l, ka, kb, "address") ||
	       key_is_n(l, ka, kb, "addresses") || key_is_n(l, ka, kb, "route") ||
	       key_is_n(l, ka, kb, "routes");
}

/* The static setup, in keyfile syntax, right after the [ipv4] header. */
static void nm_put_static(struct adapt_buf *out, const struct adapt_net *n)
{
	adapt_puts(out, "# ferry-adapt: the static setup asked for\nmethod=manual\naddress1=");
	adapt_puts(out, n->st_addr);
	if (n->st_gw[0]) {
		adapt_puts(out, ",");
		adapt_puts(out, n->st_gw);
	}
	adapt_puts(out, "\n");
	if (n->st_dns[0]) {
		adapt_puts(out, "dns=");
		adapt_puts(out, n->st_dns);
		adapt_puts(out, ";\n");
	}
}

int adapt_nm_keyfile(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		     struct adapt_notes *notes)
{
	struct adapt_line l;
	size_t pos = 0, ka, kb, va, vb;
	char sect[ADAPT_NM_NAME_MAX + 1] = "", ifname[ADAPT_IFNAME] = "";
	int ln = 0, changed = 0, r, gw = 0, manual = 0, eth = 0, mine, ours, st, v4 = 0, st_ln = 0;

	if ((r = adapt_check_in(in, len, out)) || !n)
		return r ? r : -EINVAL;
	while (adapt_next_line(in, len, &pos, &l)) {
		if ((r = nm_line(&l, ++ln, sect, notes)) < 0)
			return r;
		if (r || !kv(&l, &ka, &kb, &va, &vb))
			continue;
		if (!strcmp(sect, "connection") && key_is(&l, ka, kb, "interface-name") &&
		    vb - va < sizeof(ifname)) {
			memcpy(ifname, l.s + va, vb - va);
			ifname[vb - va] = 0;
		} else if (!strcmp(sect, "connection") && key_is(&l, ka, kb, "type")) {
			eth =
			    val_is(&l, va, vb, "ethernet") || val_is(&l, va, vb, "802-3-ethernet");
		} else if (sect_is(sect, "ipv4", NULL) && key_is(&l, ka, kb, "method")) {
			manual = val_is(&l, va, vb, "manual");
		} else if (sect_is(sect, "ipv4", NULL) &&
			   (key_is(&l, ka, kb, "gateway") ||
			    (key_is_n(&l, ka, kb, "address") && memchr(l.s + va, ',', vb - va)))) {
			gw = 1;
		}
	}
	adapt_learn(n, ifname, strlen(ifname), gw, manual);
	/* A profile that names no interface was bound by MAC alone: it is
	 * the primary's when the caller knows no better. */
	ours = ifname[0] ? is_primary(n, ifname, strlen(ifname)) : !n->primary[0] || gw;
	/* A static setup goes to the primary's profile; one naming no
	 * interface must at least be Ethernet (not Wi-Fi, not a VPN). */
	st = n->st_addr[0] && ours && (ifname[0] || eth);
	mine = !st && n->to_dhcp && manual && ours;
	pos = 0;
	ln = 0;
	sect[0] = 0;
	while (adapt_next_line(in, len, &pos, &l)) {
		if (nm_line(&l, ++ln, sect, NULL) == 1) {
			copy_line(out, &l);
			/* The first [ipv4] takes the setup; GLib merges a
			 * repeated group, whose old lines go too. */
			if ((v4 = !strcmp(sect, "ipv4")) && st && !st_ln) {
				if (!l.nl)
					adapt_puts(out, "\n");
				nm_put_static(out, n);
				st_ln = ln;
			}
			continue;
		}
		if (!kv(&l, &ka, &kb, &va, &vb)) {
			copy_line(out, &l);
			continue;
		}
		if ((sect_is(sect, "ethernet", "802-3-ethernet") &&
		     (key_is(&l, ka, kb, "mac-address") ||
		      key_is(&l, ka, kb, "cloned-mac-address"))) ||
		    (!strcmp(sect, "connection") && key_is(&l, ka, kb, "interface-name"))) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: [%s] %.*s=%.*s commented out (the old NIC)", ln,
				   sect, (int)(kb - ka), l.s + ka,
				   (int)(vb - va < 40 ? vb - va : 40), l.s + va);
			changed++;
		} else if (st && v4 && nm_v4_static_key(&l, ka, kb)) {
			comment_out(out, &l);
			adapt_note(notes,
				   "line %d: [ipv4] %.*s=%.*s commented out (the new static "
				   "setup)",
				   ln, (int)(kb - ka), l.s + ka, (int)(vb - va < 40 ? vb - va : 40),
				   l.s + va);
			changed++;
		} else if (mine && v4 && key_is(&l, ka, kb, "method")) {
			adapt_put(out, l.s, ka);
			adapt_puts(out, "method=auto");
			adapt_put_line_end(out, &l);
			adapt_note(notes, "line %d: [ipv4] method=manual -> auto (DHCP)", ln);
			changed++;
		} else if (mine && v4 &&
			   (key_is(&l, ka, kb, "gateway") || key_is_n(&l, ka, kb, "address") ||
			    key_is_n(&l, ka, kb, "addresses"))) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: [ipv4] %.*s commented out (DHCP now)", ln,
				   (int)(kb - ka), l.s + ka);
			changed++;
		} else {
			copy_line(out, &l);
		}
	}
	if (st && st_ln) {
		adapt_note(notes, "line %d: [ipv4] method=manual, static %s%s%s%s%s (%s, as asked)",
			   st_ln, n->st_addr, n->st_gw[0] ? " gateway " : "", n->st_gw,
			   n->st_dns[0] ? " dns " : "", n->st_dns,
			   ifname[0] ? ifname : "the primary connection");
	} else if (st) {
		/* Without [ipv4] NM uses auto: the section is added. */
		if (len && in[len - 1] != '\n')
			adapt_puts(out, "\n");
		adapt_puts(out, "\n[ipv4]\n");
		nm_put_static(out, n);
		adapt_note(notes,
			   "end: [ipv4] added: method=manual, static %s%s%s%s%s (%s, as asked)",
			   n->st_addr, n->st_gw[0] ? " gateway " : "", n->st_gw,
			   n->st_dns[0] ? " dns " : "", n->st_dns,
			   ifname[0] ? ifname : "the primary connection");
	}
	if (st) {
		n->st_done = 1;
		changed++;
	}
	return out->err ? out->err : changed;
}

/* ---- /etc/network/interfaces ------------------------------------------------ */

static int first_word_is(const struct adapt_line *l, const char *w)
{
	size_t a, b;

	return adapt_field(l, 0, &a, &b) && b - a == strlen(w) && !memcmp(l->s + a, w, b - a);
}

/* A line that starts a new stanza (and so ends an iface's options). */
static int stanza_start(const struct adapt_line *l)
{
	static const char *const kw[] = {
	    "iface",	    "auto",	  "mapping", "source", "source-directory",
	    "no-auto-down", "no-scripts", "rename",  NULL};
	size_t a, b, i;

	if (!adapt_field(l, 0, &a, &b))
		return 0;
	if (b - a > 6 && !memcmp(l->s + a, "allow-", 6))
		return 1;
	for (i = 0; kw[i]; i++)
		if (b - a == strlen(kw[i]) && !memcmp(l->s + a, kw[i], b - a))
			return 1;
	return 0;
}

int adapt_interfaces(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		     struct adapt_notes *notes)
{
	static const char *const static_opts[] = {
	    "address",
	    "netmask",
	    "network",
	    "broadcast",
	    "gateway",
	    "pointopoint",
	    "dns-nameservers" /* only for a new static setup */,
	    NULL};
	struct adapt_line l;
	size_t pos = 0, a, b, fa, fb, ma, mb, i;
	int ln = 0, changed = 0, r, in_iface = 0, inet = 0, stat = 0, target = 0, st = 0;
	char cur[ADAPT_IFNAME] = "";

	if ((r = adapt_check_in(in, len, out)) || !n)
		return r ? r : -EINVAL;
	while (adapt_next_line(in, len, &pos, &l)) {
		ln++;
		if (adapt_is_comment(&l)) {
			copy_line(out, &l);
			continue;
		}
		if (stanza_start(&l)) {
			in_iface = first_word_is(&l, "iface");
			inet = stat = target = st = 0;
			cur[0] = 0;
			if (in_iface && adapt_field(&l, 1, &a, &b) &&
			    adapt_field(&l, 2, &fa, &fb) && adapt_field(&l, 3, &ma, &mb) &&
			    b - a < sizeof(cur)) {
				memcpy(cur, l.s + a, b - a);
				cur[b - a] = 0;
				inet = fb - fa == 4 && !memcmp(l.s + fa, "inet", 4);
				stat = inet && mb - ma == 6 && !memcmp(l.s + ma, "static", 6);
				if (inet)
					adapt_learn(n, cur, strlen(cur), 0, stat);
				target = stat && n->to_dhcp && is_primary(n, cur, strlen(cur));
				st = inet && n->st_addr[0] && is_primary(n, cur, strlen(cur));
				if (st) {
					target = 1;
					adapt_put(out, l.s, ma);
					adapt_puts(out, "static");
					adapt_put(out, l.s + mb, l.n - mb);
					adapt_put_line_end(out, &l);
					adapt_puts(out, "\taddress ");
					adapt_puts(out, n->st_addr);
					adapt_puts(out, "\n");
					if (n->st_gw[0]) {
						adapt_puts(out, "\tgateway ");
						adapt_puts(out, n->st_gw);
						adapt_puts(out, "\n");
					}
					if (n->st_dns[0]) {
						adapt_puts(out, "\tdns-nameservers ");
						adapt_puts(out, n->st_dns);
						adapt_puts(out, "\n");
					}
					adapt_note(
					    notes,
					    "line %d: iface %s inet %.*s -> static %s%s%s%s%s "
					    "(the primary NIC, as asked)",
					    ln, cur, (int)(mb - ma < 8 ? mb - ma : 8), l.s + ma,
					    n->st_addr, n->st_gw[0] ? " gateway " : "", n->st_gw,
					    n->st_dns[0] ? " dns " : "", n->st_dns);
					n->st_done = 1;
					changed++;
					continue;
				}
				if (target) {
					adapt_put(out, l.s, ma);
					adapt_puts(out, "dhcp");
					adapt_put(out, l.s + mb, l.n - mb);
					adapt_put_line_end(out, &l);
					adapt_note(notes,
						   "line %d: iface %s inet static -> dhcp (the "
						   "primary NIC)",
						   ln, cur);
					changed++;
					continue;
				}
			}
			copy_line(out, &l);
			continue;
		}
		if (in_iface && first_word_is(&l, "hwaddress")) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: hwaddress of %s commented out (the old NIC)",
				   ln, cur);
			changed++;
			continue;
		}
		if (in_iface && inet && first_word_is(&l, "gateway"))
			adapt_learn(n, cur, strlen(cur), 1, stat);
		for (i = 0; target && static_opts[i]; i++)
			if (first_word_is(&l, static_opts[i]) && (st || static_opts[i + 1]))
				break;
		if (target && static_opts[i]) {
			comment_out(out, &l);
			adapt_note(notes, "line %d: %s of %s commented out (%s)", ln,
				   static_opts[i], cur, st ? "the new static setup" : "DHCP now");
			changed++;
			continue;
		}
		copy_line(out, &l);
	}
	return out->err ? out->err : changed;
}
