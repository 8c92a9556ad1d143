/*
 * netplan.c - netplan YAML as netplan, cloud-init and the installers
 * write it (block style, spaces): under "ethernets:", each interface's
 * "match: macaddress:" becomes a match by the interface's name, and the
 * primary's static IPv4 setup may become DHCP. It walks lines by their
 * indentation and never parses YAML in general: flow style, anchors and
 * anything it does not recognise are copied unchanged.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapt/adapt_impl.h"

struct yline {
	struct adapt_line l;
	size_t indent;
	int skip;      /* blank or comment: no structure */
	size_t ka, kb; /* the key, quotes stripped; ka == kb: none (a list item) */
	size_t va, vb; /* the value after "key:", blanks trimmed */
};

static void yparse(struct yline *y)
{
	const struct adapt_line *l = &y->l;
	size_t i = 0, e;

	y->ka = y->kb = y->va = y->vb = 0;
	while (i < l->n && l->s[i] == ' ')
		i++;
	y->indent = i;
	y->skip = i == l->n || l->s[i] == '#' || adapt_is_blank(l->s[i]);
	if (y->skip || l->s[i] == '-')
		return;
	for (e = i; e < l->n; e++)
		if (l->s[e] == ':' && (e + 1 == l->n || adapt_is_blank(l->s[e + 1])))
			break;
	if (e == l->n)
		return;
	y->ka = i;
	y->kb = e;
	if (y->kb - y->ka >= 2 && (l->s[y->ka] == '"' || l->s[y->ka] == '\'') &&
	    l->s[y->kb - 1] == l->s[y->ka]) {
		y->ka++;
		y->kb--;
	}
	for (y->va = e + 1; y->va < l->n && adapt_is_blank(l->s[y->va]); y->va++)
		;
	y->vb = l->n;
	/* A trailing comment is not part of the value. */
	for (i = y->va; i < l->n; i++)
		if (l->s[i] == '#' && i > y->va && adapt_is_blank(l->s[i - 1])) {
			y->vb = i;
			break;
		}
	while (y->vb > y->va && adapt_is_blank(l->s[y->vb - 1]))
		y->vb--;
}

/* A line nested under a key at indentation ind: deeper, or a list item
 * at the same indentation (YAML's compact sequences). */
static int ychild(const struct yline *y, size_t ind)
{
	return y->indent > ind || (y->indent == ind && !y->skip && y->l.s[y->indent] == '-');
}

static int ykey(const struct yline *y, const char *k)
{
	return y->kb - y->ka == strlen(k) && !memcmp(y->l.s + y->ka, k, y->kb - y->ka);
}

static int yval_is(const struct yline *y, const char *v)
{
	return y->vb - y->va == strlen(v) && !memcmp(y->l.s + y->va, v, y->vb - y->va);
}

static int ynext(const char *in, size_t len, size_t *pos, struct yline *y)
{
	if (!adapt_next_line(in, len, pos, &y->l))
		return 0;
	yparse(y);
	return 1;
}

/* The facts of one interface block (lines after its header at indent
 * ii, up to the first line at ii or less). */
struct yif {
	char id[ADAPT_IFNAME], setname[ADAPT_IFNAME];
	size_t prop;	 /* indentation of its properties; 0: none seen */
	size_t match;	 /* indentation of match:'s children; 0: no match: */
	int match_other; /* match: has keys besides macaddress */
	int mac, dhcp4_true, dhcp4_line, addresses, gw;
	size_t end; /* byte offset where the block ends */
};

static void copy_val(char *dst, size_t cap, const struct yline *y)
{
	size_t a = y->va, b = y->vb;

	if (b - a >= 2 && (y->l.s[a] == '"' || y->l.s[a] == '\'') && y->l.s[b - 1] == y->l.s[a]) {
		a++;
		b--;
	}
	if (b - a >= cap) {
		dst[0] = 0;
		return;
	}
	memcpy(dst, y->l.s + a, b - a);
	dst[b - a] = 0;
}

static void scan_if(const char *in, size_t len, size_t pos, size_t ii, struct yif *f)
{
	struct yline y;
	size_t at = pos, in_match = 0, in_routes = 0;

	while (at = pos, ynext(in, len, &pos, &y)) {
		if (y.skip)
			continue;
		if (y.indent <= ii) {
			pos = at;
			break;
		}
		if (!f->prop)
			f->prop = y.indent;
		if (!ychild(&y, f->prop))
			in_match = in_routes = 0;
		if (y.indent == f->prop && y.kb > y.ka) {
			if (ykey(&y, "match")) {
				in_match = 1;
			} else if (ykey(&y, "set-name")) {
				copy_val(f->setname, sizeof(f->setname), &y);
			} else if (ykey(&y, "dhcp4")) {
				f->dhcp4_line = 1;
				f->dhcp4_true = yval_is(&y, "true") || yval_is(&y, "yes");
			} else if (ykey(&y, "addresses")) {
				f->addresses = 1;
			} else if (ykey(&y, "gateway4")) {
				f->gw = 1;
			} else if (ykey(&y, "routes")) {
				in_routes = 1;
			}
			continue;
		}
		if (in_match && y.kb > y.ka) {
			if (!f->match)
				f->match = y.indent;
			if (y.indent == f->match) {
				if (ykey(&y, "macaddress"))
					f->mac = 1;
				else
					f->match_other = 1;
			}
		}
		if (in_routes && ykey(&y, "to") &&
		    (yval_is(&y, "default") || yval_is(&y, "0.0.0.0/0")))
			f->gw = 1;
		/* "- to: default" is a list item: its key starts after "- ". */
		if (in_routes && y.l.n > y.indent + 2 && y.l.s[y.indent] == '-') {
			const char *s = y.l.s + y.indent + 1;
			size_t n = y.l.n - y.indent - 1;

			while (n && adapt_is_blank(*s))
				s++, n--;
			if ((n >= 11 && !memcmp(s, "to: default", 11)) ||
			    (n >= 13 && !memcmp(s, "to: 0.0.0.0/0", 13)))
				f->gw = 1;
		}
	}
	f->end = pos;
}

static void spaces(struct adapt_buf *out, size_t n)
{
	static const char sp[] = "                                ";

	while (n > 0) {
		size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;

		adapt_put(out, sp, k);
		n -= k;
	}
}

/* One "KEY:" line, then "- VALUE" nested under it, at indentation ind. */
static void put_list(struct adapt_buf *out, size_t ind, const char *key, const char *pre,
		     const char *val)
{
	spaces(out, ind);
	adapt_puts(out, key);
	adapt_puts(out, ":\n");
	spaces(out, ind + 2);
	adapt_puts(out, pre);
	adapt_puts(out, val);
	adapt_puts(out, "\n");
}

/* The static setup asked for, at the interface's property indentation. */
static void put_static(struct adapt_buf *out, const struct yif *f, const struct adapt_net *st)
{
	if (!f->dhcp4_line) {
		spaces(out, f->prop);
		adapt_puts(out, "dhcp4: false\n");
	}
	put_list(out, f->prop, "addresses", "- ", st->st_addr);
	if (st->st_gw[0]) {
		put_list(out, f->prop, "routes", "- to: default", "");
		spaces(out, f->prop + 4);
		adapt_puts(out, "via: ");
		adapt_puts(out, st->st_gw);
		adapt_puts(out, "\n");
	}
	if (st->st_dns[0]) {
		spaces(out, f->prop);
		adapt_puts(out, "nameservers:\n");
		put_list(out, f->prop + 2, "addresses", "- ", st->st_dns);
	}
}

/* Writes one interface block [pos, f->end) with its changes; st: the
 * primary's new static setup, NULL when none. */
static int emit_if(const char *in, size_t pos, const struct yif *f, const char *name, int target,
		   const struct adapt_net *st, int *ln, struct adapt_buf *out,
		   struct adapt_notes *notes)
{
	struct yline y;
	size_t block = 0; /* > 0: inside a block being commented out, its indent */
	int changed = 0, in_match = 0;

	if (st) {
		put_static(out, f, st);
		adapt_note(notes,
			   "after line %d: %s: static %s%s%s%s%s (the primary NIC, as asked)", *ln,
			   name, st->st_addr, st->st_gw[0] ? " via " : "", st->st_gw,
			   st->st_dns[0] ? " dns " : "", st->st_dns);
		changed++;
	}
	if (target && !f->dhcp4_line) {
		spaces(out, f->prop);
		adapt_puts(out, "dhcp4: true\n");
		adapt_note(notes, "after line %d: dhcp4: true added for %s (the primary NIC)", *ln,
			   name);
		changed++;
	}
	while (ynext(in, f->end, &pos, &y)) {
		(*ln)++;
		if (block && (y.skip || ychild(&y, block - 1))) {
			adapt_puts(out, ADAPT_MARK);
			adapt_put(out, y.l.s, y.l.n);
			adapt_put_line_end(out, &y.l);
			continue;
		}
		block = 0;
		if (y.skip) {
			adapt_put(out, y.l.s, y.l.n);
			adapt_put_line_end(out, &y.l);
			continue;
		}
		if (y.indent == f->prop)
			in_match = ykey(&y, "match");
		if (in_match && y.indent == f->match && ykey(&y, "macaddress")) {
			/* Matched by name now: the new NIC is given this name. */
			spaces(out, y.indent);
			if (f->match_other) {
				adapt_puts(out, ADAPT_MARK);
				adapt_put(out, y.l.s + y.indent, y.l.n - y.indent);
			} else {
				adapt_puts(out, "name: \"");
				adapt_puts(out, name);
				adapt_puts(out, "\"");
			}
			adapt_put_line_end(out, &y.l);
			adapt_note(notes, "line %d: %s: match by MAC %.*s -> %s", *ln, f->id,
				   (int)(y.vb - y.va < 40 ? y.vb - y.va : 40), y.l.s + y.va,
				   f->match_other ? "the other match keys" : "by name");
			changed++;
			continue;
		}
		if ((target || st) && y.indent == f->prop &&
		    (ykey(&y, "addresses") || ykey(&y, "gateway4") || ykey(&y, "routes") ||
		     (st && ykey(&y, "nameservers")))) {
			adapt_puts(out, ADAPT_MARK);
			adapt_put(out, y.l.s, y.l.n);
			adapt_put_line_end(out, &y.l);
			adapt_note(notes, "line %d: %s: %.*s commented out (%s)", *ln, name,
				   (int)(y.kb - y.ka), y.l.s + y.ka,
				   st ? "the new static setup" : "DHCP now");
			block = y.indent + 1; /* + 1: 0 means none */
			changed++;
			continue;
		}
		if (st && y.indent == f->prop && ykey(&y, "dhcp4") && !yval_is(&y, "false")) {
			adapt_put(out, y.l.s, y.va);
			adapt_puts(out, "false");
			adapt_put(out, y.l.s + y.vb, y.l.n - y.vb);
			adapt_put_line_end(out, &y.l);
			adapt_note(notes, "line %d: %s: dhcp4: false (a static setup)", *ln, name);
			changed++;
			continue;
		}
		if (target && y.indent == f->prop && ykey(&y, "dhcp4") && !f->dhcp4_true) {
			adapt_put(out, y.l.s, y.va);
			adapt_puts(out, "true");
			adapt_put(out, y.l.s + y.vb, y.l.n - y.vb);
			adapt_put_line_end(out, &y.l);
			adapt_note(notes, "line %d: %s: dhcp4: true (the primary NIC)", *ln, name);
			changed++;
			continue;
		}
		adapt_put(out, y.l.s, y.l.n);
		adapt_put_line_end(out, &y.l);
	}
	return changed;
}

int adapt_netplan(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		  struct adapt_notes *notes)
{
	struct yline y;
	size_t pos = 0, eth = 0, ii = 0;
	int ln = 0, changed = 0, r, in_eth = 0;

	if ((r = adapt_check_in(in, len, out)) || !n)
		return r ? r : -EINVAL;
	while (ynext(in, len, &pos, &y)) {
		ln++;
		adapt_put(out, y.l.s, y.l.n);
		adapt_put_line_end(out, &y.l);
		if (y.skip)
			continue;
		if (in_eth && y.indent <= eth)
			in_eth = 0;
		if (!in_eth) {
			if (ykey(&y, "ethernets") && y.va == y.vb) {
				in_eth = 1;
				eth = y.indent;
				ii = 0;
			}
			continue;
		}
		if (!ii)
			ii = y.indent;
		if (y.indent == ii && y.kb > y.ka && y.va == y.vb) {
			struct yif f;
			const char *name;
			int target, st;

			memset(&f, 0, sizeof(f));
			if (y.kb - y.ka < sizeof(f.id))
				memcpy(f.id, y.l.s + y.ka, y.kb - y.ka);
			scan_if(in, len, pos, ii, &f);
			name = f.setname[0] ? f.setname : f.id;
			if (!adapt_ifname_ok(name)) {
				/* Not an interface we can name: copied as it is. */
				adapt_put(out, in + pos, f.end - pos);
				for (; pos < f.end; pos++)
					ln += in[pos] == '\n';
				continue;
			}
			adapt_learn(n, name, strlen(name), f.gw, f.addresses && !f.dhcp4_true);
			st = n->st_addr[0] && f.prop && n->primary[0] && !strcmp(n->primary, name);
			target = !st && n->to_dhcp && f.addresses && !f.dhcp4_true &&
				 n->primary[0] && !strcmp(n->primary, name);
			n->st_done |= st;
			changed +=
			    emit_if(in, pos, &f, name, target, st ? n : NULL, &ln, out, notes);
			pos = f.end;
		}
	}
	return out->err ? out->err : changed;
}
