/*
 * bootcfg.c - the default boot entry from a bootloader's configuration
 * text: extlinux/syslinux, grub.cfg (a tokenizer for the subset of GRUB
 * script that menus use: quoting, $variables, set, menuentry/submenu
 * blocks, search --set=root) and BootLoaderSpec entries. Pure text in,
 * struct boot_entry out: no I/O, and every byte is read through a
 * bounded cursor. Conditionals are not evaluated: GRUB's if/else
 * branches are read in order and the last assignment of a variable wins,
 * which is how grub-mkconfig output reads in the common case; what could
 * not be resolved is named in the entry's note.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "boot/boot_impl.h"

#define LINE_MAX_LEN (16u * 1024) /* longer lines are refused */
#define G_WORDS	     2048	  /* a 4 KiB command line has at most 2048 */
#define G_CMDBUF     (32u * 1024)
#define G_VARS	     96
#define G_VAR_NAME   48
#define G_VAR_VAL    1024
#define G_ITEMS	     256
#define G_DEPTH	     16

/* ---- shared ------------------------------------------------------- */

void boot_note(struct boot_entry *e, const char *fmt, ...)
{
	size_t n = strlen(e->note);
	va_list ap;

	if (n + 3 >= sizeof(e->note))
		return;
	if (n) {
		memcpy(e->note + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(e->note + n, sizeof(e->note) - n, fmt, ap);
	va_end(ap);
	boot_printable(e->note + n);
}

int boot_path_ok(const char *p)
{
	size_t i, n = strlen(p);

	if (!n || n >= BOOT_PATH_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return -EINVAL;
	/* ".." as a whole component, anywhere. */
	for (i = 0; i + 1 < n; i++)
		if (p[i] == '.' && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') &&
		    (i + 2 == n || p[i + 2] == '/'))
			return -EINVAL;
	return 0;
}

/* Next line of the cursor's text (without its newline): 1, or 0 at the
 * end, or -E2BIG when a line is longer than LINE_MAX_LEN. */
static int next_line(struct cur *c, const char **line, size_t *len, int *lineno)
{
	const uint8_t *start, *nl, *p;
	size_t left = cur_left(c), n;

	if (!left)
		return 0;
	if (cur_ref(c, &start, 0))
		return c->err;
	nl = memchr(start, '\n', left);
	n = nl ? (size_t)(nl - start) : left;
	(*lineno)++;
	if (n > LINE_MAX_LEN)
		return -E2BIG;
	if (cur_ref(c, &p, nl ? n + 1 : n))
		return c->err;
	if (n && p[n - 1] == '\r')
		n--;
	*line = (const char *)p;
	*len = n;
	return 1;
}

static int check_lines(const char *text, size_t len, char *err, size_t errcap)
{
	const char *l;
	size_t n;
	struct cur c;
	int ln = 0, r;

	cur_init(&c, text, len);
	while ((r = next_line(&c, &l, &n, &ln)) > 0)
		;
	if (r == -E2BIG)
		return boot_err(err, errcap, r, "line %d is longer than %u bytes", ln,
				LINE_MAX_LEN);
	return r;
}

static int check_size(size_t len, char *err, size_t errcap)
{
	if (len > BOOT_CONFIG_MAX)
		return boot_err(err, errcap, -EFBIG, "configuration is %zu bytes, more than %u",
				len, BOOT_CONFIG_MAX);
	return 0;
}

/* Appends one argument to a command line; -E2BIG past BOOT_CMDLINE_MAX-1. */
static int cmdline_add(char *cmd, const char *arg, size_t alen, int quote)
{
	size_t n = strlen(cmd), need = alen + (n ? 1 : 0) + (quote ? 2 : 0);

	if (!alen)
		return 0;
	if (need >= BOOT_CMDLINE_MAX - n)
		return -E2BIG;
	if (n)
		cmd[n++] = ' ';
	if (quote)
		cmd[n++] = '"';
	memcpy(cmd + n, arg, alen);
	n += alen;
	if (quote)
		cmd[n++] = '"';
	cmd[n] = 0;
	return 0;
}

static int set_path(char *dst, const char *dir, const char *p, size_t plen, const char *what,
		    char *err, size_t errcap)
{
	int r;

	if (plen >= BOOT_PATH_MAX)
		return boot_err(err, errcap, -EINVAL, "%s path is longer than %d bytes", what,
				BOOT_PATH_MAX - 1);
	if (plen && p[0] != '/' && dir)
		r = boot_fmt(dst, BOOT_PATH_MAX, "%s/%.*s", strcmp(dir, "/") ? dir : "", (int)plen,
			     p);
	else
		r = boot_fmt(dst, BOOT_PATH_MAX, "%s%.*s", plen && p[0] == '/' ? "" : "/",
			     (int)plen, p);
	if (r || boot_path_ok(dst))
		return boot_err(err, errcap, -EINVAL,
				"%s path \"%.*s\" is not acceptable (\"..\", "
				"control bytes or too long)",
				what, (int)(plen > 80 ? 80 : plen), p);
	return 0;
}

/* ---- extlinux / syslinux -------------------------------------------- */

static int kw(const char *l, size_t n, const char *word, const char **rest, size_t *rlen)
{
	size_t k = strlen(word);

	if (n < k || strncasecmp(l, word, k) || (n > k && !isspace((unsigned char)l[k])))
		return 0;
	l += k;
	n -= k;
	while (n && isspace((unsigned char)*l))
		l++, n--;
	while (n && isspace((unsigned char)l[n - 1]))
		n--;
	*rest = l;
	*rlen = n;
	return 1;
}

static void trim(const char **l, size_t *n)
{
	while (*n && isspace((unsigned char)**l))
		(*l)++, (*n)--;
	while (*n && isspace((unsigned char)(*l)[*n - 1]))
		(*n)--;
}

static size_t word_len(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && !isspace((unsigned char)s[i]))
		i++;
	return i;
}

struct xl_state {
	char def[BOOT_TITLE_MAX]; /* DEFAULT's label (first word) */
	const char *def_args;	  /* the rest of DEFAULT, in the text */
	size_t def_args_len, def_len;
	char menu_def[BOOT_TITLE_MAX];
	char first[BOOT_TITLE_MAX];
	const char *gappend; /* APPEND before any LABEL */
	size_t gappend_len;
	int labels, has_def;
};

static void copy_n(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

static int xl_pass1(const char *text, size_t len, struct xl_state *x, struct boot_entry *e)
{
	const char *l, *a;
	size_t n, an;
	struct cur c;
	int ln = 0, r, intext = 0;

	cur_init(&c, text, len);
	while ((r = next_line(&c, &l, &n, &ln)) > 0) {
		trim(&l, &n);
		if (intext) {
			if (kw(l, n, "ENDTEXT", &a, &an))
				intext = 0;
			continue;
		}
		if (!n || l[0] == '#')
			continue;
		if (kw(l, n, "TEXT", &a, &an)) {
			intext = 1;
		} else if (kw(l, n, "DEFAULT", &a, &an)) {
			size_t w = word_len(a, an);

			x->has_def = 1;
			x->def_len = w;
			copy_n(x->def, sizeof(x->def), a, w);
			x->def_args = a + w;
			x->def_args_len = an - w;
			trim(&x->def_args, &x->def_args_len);
		} else if (kw(l, n, "LABEL", &a, &an)) {
			if (!x->labels++)
				copy_n(x->first, sizeof(x->first), a, an);
			copy_n(e->title, sizeof(e->title), a, an); /* current label */
		} else if (kw(l, n, "MENU", &a, &an)) {
			const char *b;
			size_t bn;

			if (kw(a, an, "DEFAULT", &b, &bn) && x->labels)
				snprintf(x->menu_def, sizeof(x->menu_def), "%s", e->title);
			else if (kw(a, an, "INCLUDE", &b, &bn))
				boot_note(e, "MENU INCLUDE %.*s not followed",
					  (int)(bn < 60 ? bn : 60), b);
		} else if (kw(l, n, "INCLUDE", &a, &an)) {
			boot_note(e, "INCLUDE %.*s not followed", (int)(an < 60 ? an : 60), a);
		} else if (kw(l, n, "APPEND", &a, &an) && !x->labels) {
			x->gappend = a;
			x->gappend_len = an;
		}
	}
	e->title[0] = 0;
	return r;
}

/* Adds APPEND text to the command line; initrd=a,b goes to initrds. */
static int xl_append(const char *a, size_t an, const char *dir, struct boot_entry *e, char *err,
		     size_t errcap)
{
	size_t i = 0, w, k, s;
	int r;

	if (an == 1 && a[0] == '-')
		return 0; /* "APPEND -": no arguments */
	while (i < an) {
		while (i < an && isspace((unsigned char)a[i]))
			i++;
		w = word_len(a + i, an - i);
		if (!w)
			break;
		if (w > 7 && !strncmp(a + i, "initrd=", 7)) {
			for (k = i + 7; k < i + w; k = s + 1) {
				for (s = k; s < i + w && a[s] != ','; s++)
					;
				if (s == k)
					continue;
				if (e->ninitrd >= BOOT_INITRD_MAX)
					return boot_err(err, errcap, -E2BIG, "more than %d initrds",
							BOOT_INITRD_MAX);
				r = set_path(e->initrd[e->ninitrd].path, dir, a + k, s - k,
					     "initrd", err, errcap);
				if (r)
					return r;
				e->ninitrd++;
			}
		} else if (cmdline_add(e->cmdline, a + i, w, 0)) {
			return boot_err(err, errcap, -E2BIG,
					"kernel command line is longer than %d bytes",
					BOOT_CMDLINE_MAX - 1);
		}
		i += w;
	}
	return 0;
}

static int xl_initrds(const char *a, size_t an, const char *dir, struct boot_entry *e, char *err,
		      size_t errcap)
{
	char buf[BOOT_PATH_MAX * BOOT_INITRD_MAX + 16];

	/* "INITRD a,b" is "initrd=a,b" in APPEND. */
	if (boot_fmt(buf, sizeof(buf), "initrd=%.*s", (int)an, a))
		return boot_err(err, errcap, -EINVAL, "INITRD line is too long");
	return xl_append(buf, strlen(buf), dir, e, err, errcap);
}

static int is_module(const char *s)
{
	size_t n = strlen(s);

	return n > 4 && !strcasecmp(s + n - 4, ".c32");
}

int boot_parse_extlinux(const char *cfgpath, const char *text, size_t len, struct boot_entry *e,
			char *err, size_t errcap)
{
	struct xl_state x;
	char dir[BOOT_PATH_MAX], want[BOOT_TITLE_MAX];
	const char *l, *a, *slash;
	const char *lappend = NULL;
	size_t n, an, lappend_len = 0;
	struct cur c;
	int ln = 0, r, in = 0, intext = 0, have_append = 0, kernel_set = 0;

	memset(e, 0, sizeof(*e));
	memset(&x, 0, sizeof(x));
	snprintf(e->loader, sizeof(e->loader), "extlinux");
	if (!cfgpath || boot_fmt(e->config, sizeof(e->config), "%s", cfgpath) ||
	    boot_fmt(dir, sizeof(dir), "%s", cfgpath))
		return boot_err(err, errcap, -EINVAL, "configuration path is missing or too long");
	slash = strrchr(dir, '/');
	if (slash)
		dir[slash == dir ? 1 : slash - dir] = 0;
	else
		snprintf(dir, sizeof(dir), "/");
	if ((r = check_size(len, err, errcap)) || (r = check_lines(text, len, err, errcap)))
		return r;
	if ((r = xl_pass1(text, len, &x, e)))
		return r;

	if (x.has_def && x.def[0] && !is_module(x.def)) {
		snprintf(want, sizeof(want), "%s", x.def);
	} else if (x.menu_def[0]) {
		snprintf(want, sizeof(want), "%s", x.menu_def);
	} else if (x.labels) {
		snprintf(want, sizeof(want), "%s", x.first);
		if (!x.has_def)
			boot_note(e, "no DEFAULT; using the first LABEL");
	} else {
		return boot_err(err, errcap, -ENOENT, "%s has no LABEL and no DEFAULT", cfgpath);
	}

	cur_init(&c, text, len);
	while ((r = next_line(&c, &l, &n, &ln)) > 0) {
		trim(&l, &n);
		if (intext) {
			if (kw(l, n, "ENDTEXT", &a, &an))
				intext = 0;
			continue;
		}
		if (!n || l[0] == '#')
			continue;
		if (kw(l, n, "TEXT", &a, &an)) {
			intext = 1;
		} else if (kw(l, n, "LABEL", &a, &an)) {
			if (in)
				break; /* the wanted label's block has ended */
			in = an == strlen(want) && !strncmp(a, want, an);
			if (in) {
				copy_n(e->title, sizeof(e->title), a, an);
				boot_printable(e->title);
			}
		} else if (!in) {
			continue;
		} else if (kw(l, n, "KERNEL", &a, &an) || kw(l, n, "LINUX", &a, &an)) {
			size_t w = word_len(a, an);

			if ((r = set_path(e->kernel.path, dir, a, w, "kernel", err, errcap)))
				return r;
			kernel_set = 1;
			if (w < an) { /* arguments after the file: syslinux passes them on */
				if ((r = xl_append(a + w, an - w, dir, e, err, errcap)))
					return r;
			}
		} else if (kw(l, n, "APPEND", &a, &an)) {
			lappend = a;
			lappend_len = an;
			have_append = 1;
		} else if (kw(l, n, "INITRD", &a, &an)) {
			if ((r = xl_initrds(a, an, dir, e, err, errcap)))
				return r;
		} else if (kw(l, n, "LOCALBOOT", &a, &an) || kw(l, n, "COM32", &a, &an) ||
			   kw(l, n, "CONFIG", &a, &an)) {
			return boot_err(err, errcap, -ENOENT,
					"entry \"%s\" in %s does not boot a Linux kernel", want,
					cfgpath);
		}
	}
	if (r < 0)
		return r;

	if (!e->title[0]) {
		/* DEFAULT names no label: syslinux then runs it as a command line. */
		if (!x.has_def || !x.def[0])
			return boot_err(err, errcap, -ENOENT, "no LABEL \"%s\" in %s", want,
					cfgpath);
		if ((r = set_path(e->kernel.path, dir, x.def, x.def_len, "kernel", err, errcap)))
			return r;
		kernel_set = 1;
		snprintf(e->title, sizeof(e->title), "%s", x.def);
		boot_printable(e->title);
		boot_note(e, "DEFAULT %s names no LABEL; taken as a kernel", x.def);
		if (x.gappend && (r = xl_append(x.gappend, x.gappend_len, dir, e, err, errcap)))
			return r;
		if (x.def_args_len &&
		    (r = xl_append(x.def_args, x.def_args_len, dir, e, err, errcap)))
			return r;
	} else {
		if (have_append)
			r = xl_append(lappend, lappend_len, dir, e, err, errcap);
		else if (x.gappend)
			r = xl_append(x.gappend, x.gappend_len, dir, e, err, errcap);
		if (r)
			return r;
		if (x.def_args_len && !strcmp(want, x.def) &&
		    (r = xl_append(x.def_args, x.def_args_len, dir, e, err, errcap)))
			return r;
	}
	if (!kernel_set)
		return boot_err(err, errcap, -ENOENT, "entry \"%s\" in %s has no KERNEL or LINUX",
				e->title, cfgpath);
	if (is_module(e->kernel.path))
		return boot_err(err, errcap, -ENOENT,
				"entry \"%s\" in %s runs %s, not a Linux kernel", e->title, cfgpath,
				e->kernel.path);
	return 0;
}

/* ---- GRUB script, the subset menus use ------------------------------ */

struct gvars {
	size_t n;
	struct {
		char name[G_VAR_NAME];
		char val[G_VAR_VAL];
	} v[G_VARS];
};

static const char *gvar_get(const struct gvars *g, const char *name)
{
	size_t i;

	if (!g)
		return NULL;
	for (i = 0; i < g->n; i++)
		if (!strcmp(g->v[i].name, name))
			return g->v[i].val;
	return NULL;
}

static int name_ok(const char *s, size_t n)
{
	size_t i;

	if (!n || n >= G_VAR_NAME || isdigit((unsigned char)s[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* "name=value"; returns 0, or -EINVAL when not an assignment. */
static int gvar_assign(struct gvars *g, const char *nv, struct boot_entry *e)
{
	const char *eq = strchr(nv, '=');
	size_t i, n;

	if (!eq || !name_ok(nv, (size_t)(eq - nv)))
		return -EINVAL;
	n = (size_t)(eq - nv);
	if (strlen(eq + 1) >= G_VAR_VAL) {
		if (e)
			boot_note(e, "value of %.*s is over %d bytes; ignored", (int)n, nv,
				  G_VAR_VAL - 1);
		return 0;
	}
	for (i = 0; i < g->n; i++)
		if (strlen(g->v[i].name) == n && !strncmp(g->v[i].name, nv, n))
			break;
	if (i == g->n) {
		if (g->n == G_VARS)
			return 0; /* a menu needs few variables; the rest are dropped */
		g->n++;
		memcpy(g->v[i].name, nv, n);
		g->v[i].name[n] = 0;
	}
	snprintf(g->v[i].val, sizeof(g->v[i].val), "%s", eq + 1);
	return 0;
}

/* grubenv: "# GRUB Environment Block" then name=value lines, # padding. */
static void gvars_env(struct gvars *g, const char *env, size_t len)
{
	char nv[G_VAR_NAME + G_VAR_VAL + 2];
	const char *l = NULL;
	size_t n = 0;
	struct cur c;
	int ln = 0;

	if (!env)
		return;
	cur_init(&c, env, len);
	while (next_line(&c, &l, &n, &ln) > 0) {
		if (!n || l[0] == '#' || n >= sizeof(nv))
			continue;
		memcpy(nv, l, n);
		nv[n] = 0;
		gvar_assign(g, nv, NULL);
	}
}

struct gscan {
	struct cur c;
	int line;
	struct gvars *glob;   /* assignments at the top level */
	struct gvars *loc;    /* inside the entry being run, or NULL */
	struct gvars *deep;   /* names assigned inside blocks and functions */
	struct boot_entry *e; /* unresolved variables are noted here */
	char unres[256];      /* the current command's unresolved names, "a b " */
	int pending_close;
	char buf[G_CMDBUF];
	size_t blen, nw;
	size_t w[G_WORDS];
	int open, close;
	int cmd_line;
	size_t wstart; /* the word being read */
	int quoted;
	char errtext[160];
};

static int gpeek(struct gscan *s)
{
	const uint8_t *p;
	struct cur t = s->c;

	if (!cur_left(&t) || cur_ref(&t, &p, 1))
		return -1;
	return p[0];
}

static int gtake(struct gscan *s)
{
	uint8_t ch;

	if (!cur_left(&s->c) || cur_u8(&s->c, &ch))
		return -1;
	if (ch == '\n')
		s->line++;
	return ch;
}

static int gput(struct gscan *s, const char *p, size_t n)
{
	if (n >= sizeof(s->buf) - s->blen) {
		snprintf(s->errtext, sizeof(s->errtext), "command at line %d is too long",
			 s->cmd_line);
		return -E2BIG;
	}
	memcpy(s->buf + s->blen, p, n);
	s->blen += n;
	return 0;
}

/* Ends the word being read (kept if quoted or not empty), starts another. */
static int gbreak(struct gscan *s)
{
	int r;

	if (s->blen > s->wstart || s->quoted) {
		if (s->nw >= G_WORDS) {
			snprintf(s->errtext, sizeof(s->errtext),
				 "command at line %d has more than %d words", s->cmd_line, G_WORDS);
			return -E2BIG;
		}
		if ((r = gput(s, "", 1)))
			return r;
		s->w[s->nw++] = s->wstart;
	}
	s->wstart = s->blen;
	s->quoted = 0;
	return 0;
}

/* $name or ${name}; unquoted (split), the value is split into words on
 * blanks as GRUB does, which is how "linux /k $kernelopts" gets its
 * arguments. */
static int gexpand(struct gscan *s, int split)
{
	char name[G_VAR_NAME];
	const char *v;
	size_t n = 0;
	int ch = gpeek(s), brace = 0;

	if (ch == '{') {
		brace = 1;
		gtake(s);
	}
	for (;;) {
		ch = gpeek(s);
		if (ch < 0)
			break;
		if (brace && ch == '}') {
			gtake(s);
			break;
		}
		if (!isalnum(ch) && ch != '_' && !(brace && (ch == '?' || ch == '#' || ch == '@')))
			break;
		if (!brace && n == 0 && isdigit(ch)) { /* $1: a positional argument */
			gtake(s);
			name[n++] = (char)ch;
			break;
		}
		if (n + 1 >= sizeof(name)) {
			snprintf(s->errtext, sizeof(s->errtext),
				 "variable name at line %d is too long", s->line);
			return -E2BIG;
		}
		name[n++] = (char)gtake(s);
	}
	name[n] = 0;
	if (!n)
		return brace ? 0 : gput(s, "$", 1);
	if (!strcmp(name, "menuentry_id_option")) /* 00_header: "--id" where supported */
		return gput(s, "--id", 4);
	v = gvar_get(s->loc, name);
	if (!v)
		v = gvar_get(s->glob, name);
	if (v && !split)
		return gput(s, v, strlen(v));
	if (v) {
		int r;

		for (; *v; v++) {
			if (*v == ' ' || *v == '\t' || *v == '\n')
				r = gbreak(s);
			else
				r = gput(s, v, 1);
			if (r)
				return r;
		}
		return 0;
	}
	/* Kept for the command to judge (note_unresolved): GRUB itself
	 * expands an unset variable to nothing. */
	if (s->e && strlen(s->unres) + n + 2 < sizeof(s->unres)) {
		strcat(s->unres, name);
		strcat(s->unres, " ");
	}
	return 0;
}

/*
 * The next command: 1 with s->nw words (and s->open if it ended with an
 * unquoted "{", s->close for a "}"), 0 at the end of the text, -errno.
 */
static int gnext(struct gscan *s)
{
	int ch, r, start;

	s->blen = s->nw = 0;
	s->open = s->close = 0;
	s->unres[0] = 0;
	if (s->pending_close) {
		s->pending_close = 0;
		s->close = 1;
		return 1;
	}
	s->cmd_line = s->line;
	for (;;) {
		ch = gpeek(s);
		if (ch == ' ' || ch == '\t' || ch == '\r') {
			gtake(s);
			continue;
		}
		if (ch == '\\') { /* a continued line */
			struct cur t = s->c;
			const uint8_t *p;

			if (cur_left(&t) >= 2 && !cur_ref(&t, &p, 2) && p[1] == '\n') {
				gtake(s), gtake(s);
				continue;
			}
		}
		if (ch < 0)
			return s->nw ? 1 : 0;
		if (ch == '\n' || ch == ';') {
			gtake(s);
			if (s->nw)
				return 1;
			s->cmd_line = s->line;
			continue;
		}
		if (ch == '#' && !s->nw) {
			while ((ch = gpeek(s)) >= 0 && ch != '\n')
				gtake(s);
			continue;
		}
		/* a word */
		s->wstart = s->blen;
		s->quoted = 0;
		for (;;) {
			ch = gpeek(s);
			if (ch < 0 || ch == ' ' || ch == '\t' || ch == '\n' || ch == ';' ||
			    ch == '\r')
				break;
			gtake(s);
			r = 0;
			if (ch == '\'') {
				s->quoted = 1;
				start = s->line;
				while ((ch = gtake(s)) >= 0 && ch != '\'') {
					char cc = (char)ch;

					if ((r = gput(s, &cc, 1)))
						return r;
				}
				if (ch < 0) {
					snprintf(s->errtext, sizeof(s->errtext),
						 "unterminated ' from line %d", start);
					return -EBADMSG;
				}
			} else if (ch == '"') {
				s->quoted = 1;
				start = s->line;
				while ((ch = gtake(s)) >= 0 && ch != '"') {
					char cc = (char)ch;

					if (ch == '\\') {
						int nx = gpeek(s);

						if (nx == '"' || nx == '\\' || nx == '$') {
							cc = (char)gtake(s);
						} else if (nx == '\n') {
							gtake(s);
							continue;
						}
					} else if (ch == '$') {
						if ((r = gexpand(s, 0)))
							return r;
						continue;
					}
					if ((r = gput(s, &cc, 1)))
						return r;
				}
				if (ch < 0) {
					snprintf(s->errtext, sizeof(s->errtext),
						 "unterminated \" from line %d", start);
					return -EBADMSG;
				}
			} else if (ch == '\\') {
				int nx = gtake(s);
				char cc = (char)nx;

				if (nx >= 0 && nx != '\n')
					r = gput(s, &cc, 1);
			} else if (ch == '$') {
				r = gexpand(s, 1);
			} else {
				char cc = (char)ch;

				r = gput(s, &cc, 1);
			}
			if (r)
				return r;
		}
		/* "{" and "}" mean blocks only as whole, unquoted words. */
		if (!s->quoted && s->blen == s->wstart + 1 && s->buf[s->wstart] == '{') {
			s->blen = s->wstart;
			s->open = 1;
			return 1;
		}
		if (!s->quoted && s->blen == s->wstart + 1 && s->buf[s->wstart] == '}') {
			s->blen = s->wstart;
			if (!s->nw) {
				s->close = 1;
				return 1;
			}
			s->pending_close = 1;
			return 1;
		}
		if ((r = gbreak(s)))
			return r;
	}
}

static const char *gw(const struct gscan *s, size_t i)
{
	return i < s->nw ? s->buf + s->w[i] : "";
}

static int gerr(const struct gscan *s, int r, char *err, size_t errcap)
{
	return boot_err(err, errcap, r, "%s", s->errtext[0] ? s->errtext : strerror(-r));
}

enum { GB_OTHER, GB_MENU, GB_SUB, GB_FUNC };

struct gitem {
	char title[BOOT_TITLE_MAX];
	char id[BOOT_TITLE_MAX];
	int sub;     /* a submenu */
	int parent;  /* item index of its submenu, or -1 */
	int idx;     /* index among its siblings */
	size_t body; /* text offset after "{" */
	int line;
	int bls; /* index into bls[], or -1 */
};

struct gmenu {
	size_t n;
	struct gitem it[G_ITEMS];
};

static int is_cmd(const char *w, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(w, *names))
			return 1;
	return 0;
}

/* Pass 1: top-level assignments, in order, as GRUB runs them before the menu. */
static int grub_globals(struct gscan *s, char *err, size_t errcap)
{
	int depth = 0, r;

	while ((r = gnext(s)) > 0) {
		if (s->close) {
			if (depth > 0)
				depth--;
			continue;
		}
		if (depth == 0 && s->nw >= 2 && !strcmp(gw(s, 0), "set")) {
			/* An empty default is the branch not taken (next_entry unset). */
			if (!strcmp(gw(s, 1), "default="))
				;
			else
				gvar_assign(s->glob, gw(s, 1), NULL);
		} else if (depth == 0 && s->nw == 1 && strchr(gw(s, 0), '=')) {
			gvar_assign(s->glob, gw(s, 0), NULL);
		} else if (depth > 0 && s->nw >= 2 && !strcmp(gw(s, 0), "set")) {
			gvar_assign(s->deep, gw(s, 1), NULL);
		} else if (depth > 0 && s->nw == 1 && strchr(gw(s, 0), '=')) {
			gvar_assign(s->deep, gw(s, 0), NULL);
		}
		if (s->open && ++depth > G_DEPTH)
			return boot_err(err, errcap, -E2BIG,
					"blocks nested deeper than %d at line %d", G_DEPTH,
					s->cmd_line);
	}
	return r < 0 ? gerr(s, r, err, errcap) : 0;
}

static void item_header(const struct gscan *s, struct gitem *it)
{
	size_t i;

	snprintf(it->title, sizeof(it->title), "%s", gw(s, 1));
	for (i = 2; i < s->nw; i++) {
		const char *w = gw(s, i);

		if (!strcmp(w, "--id") && i + 1 < s->nw)
			snprintf(it->id, sizeof(it->id), "%s", gw(s, ++i));
		else if (!strncmp(w, "--id=", 5))
			snprintf(it->id, sizeof(it->id), "%s", w + 5);
		else if ((!strcmp(w, "--class") || !strcmp(w, "--users") ||
			  !strcmp(w, "--hotkey")) &&
			 i + 1 < s->nw)
			i++;
	}
}

static struct gitem *item_add(struct gmenu *m, int parent)
{
	struct gitem *it;
	size_t i;
	int idx = 0;

	if (m->n >= G_ITEMS)
		return NULL;
	for (i = 0; i < m->n; i++)
		if (m->it[i].parent == parent)
			idx++;
	it = &m->it[m->n++];
	memset(it, 0, sizeof(*it));
	it->parent = parent;
	it->idx = idx;
	it->bls = -1;
	return it;
}

/* Pass 2: the menu's items with where their bodies start. */
static int grub_menu(struct gscan *s, struct gmenu *m, const struct boot_bls *bls, size_t nbls,
		     struct boot_entry *e, char *err, size_t errcap)
{
	int stack[G_DEPTH + 1], subitem[G_DEPTH + 1], depth = 0, r;
	struct gitem *it;
	size_t i;

	while ((r = gnext(s)) > 0) {
		if (s->close) {
			if (depth > 0)
				depth--;
			continue;
		}
		if (s->open) {
			int kind = GB_OTHER, parent = -1;

			if (depth >= G_DEPTH)
				return boot_err(err, errcap, -E2BIG,
						"blocks nested deeper than %d at line %d", G_DEPTH,
						s->cmd_line);
			if (!strcmp(gw(s, 0), "menuentry"))
				kind = GB_MENU;
			else if (!strcmp(gw(s, 0), "submenu"))
				kind = GB_SUB;
			else if (!strcmp(gw(s, 0), "function"))
				kind = GB_FUNC;
			if (depth == 1 && stack[0] == GB_SUB)
				parent = subitem[0];
			subitem[depth] = -1;
			if ((kind == GB_MENU || kind == GB_SUB) &&
			    (depth == 0 || (depth == 1 && parent >= 0 && kind == GB_MENU))) {
				it = item_add(m, parent);
				if (!it) {
					boot_note(e, "more than %d menu entries; the rest ignored",
						  G_ITEMS);
				} else {
					item_header(s, it);
					it->sub = kind == GB_SUB;
					it->body = s->c.off;
					it->line = s->line;
					subitem[depth] = (int)(it - m->it);
				}
			}
			stack[depth++] = kind;
			continue;
		}
		if (depth == 0 && s->nw >= 1 && !strcmp(gw(s, 0), "blscfg")) {
			for (i = 0; i < nbls; i++) {
				it = item_add(m, -1);
				if (!it)
					break;
				snprintf(it->title, sizeof(it->title), "%s", bls[i].title);
				snprintf(it->id, sizeof(it->id), "%s", bls[i].id);
				it->bls = (int)i;
			}
			if (!bls)
				boot_note(e, "blscfg: BootLoaderSpec entries not read");
		}
	}
	return r < 0 ? gerr(s, r, err, errcap) : 0;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Follows "2", "1>0", a title or an id through the menu. */
static int grub_pick(const struct gmenu *m, const char *def, struct boot_entry *e)
{
	char part[BOOT_TITLE_MAX];
	const char *p = def, *gt;
	int parent = -1, pick = -1, level = 0;
	size_t i, n;

	if (!m->n)
		return -1;
	while (*p && level < 4) {
		gt = strchr(p, '>');
		n = gt ? (size_t)(gt - p) : strlen(p);
		copy_n(part, sizeof(part), p, n);
		pick = -1;
		for (i = 0; i < m->n && pick < 0; i++) {
			const struct gitem *it = &m->it[i];

			if (it->parent != parent)
				continue;
			if (all_digits(part) ? it->idx == strtol(part, NULL, 10)
					     : !strcmp(it->title, part) || !strcmp(it->id, part))
				pick = (int)i;
		}
		if (pick < 0) {
			boot_note(e, "default \"%.80s\" matches no entry; using the first", def);
			break;
		}
		if (!m->it[pick].sub || !gt)
			break;
		parent = pick;
		p = gt + 1;
		level++;
	}
	if (pick < 0)
		for (i = 0; i < m->n && pick < 0; i++)
			if (m->it[i].parent == -1)
				pick = (int)i;
	/* A submenu as the default: GRUB shows it; its first entry boots. */
	while (pick >= 0 && m->it[pick].sub) {
		int child = -1;

		for (i = 0; i < m->n && child < 0; i++)
			if (m->it[i].parent == pick)
				child = (int)i;
		if (child < 0)
			return -1;
		boot_note(e, "default is submenu \"%.60s\"; using its first entry",
			  m->it[pick].title);
		pick = child;
	}
	return pick;
}

static void strip_device(const char **p)
{
	const char *s = *p, *close;

	/* "(hd0,gpt2)/boot/vmlinuz", "($root)/vmlinuz" once expanded */
	if (s[0] == '(' && (close = strchr(s, ')')))
		*p = close + 1;
}

static void search_hint(const struct gscan *s, struct boot_entry *e)
{
	const char *kind = "UUID", *key = NULL, *var = NULL;
	size_t i;

	if (!strcmp(gw(s, 0), "search.fs_uuid") || !strcmp(gw(s, 0), "search.fs_label")) {
		/* search.fs_uuid UUID VAR (the ESP stub that grub-install writes) */
		kind = gw(s, 0)[10] == 'u' ? "UUID" : "LABEL";
		key = gw(s, 1);
		var = s->nw > 2 ? gw(s, 2) : "root";
	} else {
		for (i = 1; i < s->nw; i++) {
			const char *w = gw(s, i);

			if (!strcmp(w, "--fs-uuid") || !strcmp(w, "-u"))
				kind = "UUID";
			else if (!strcmp(w, "--label") || !strcmp(w, "-l"))
				kind = "LABEL";
			else if (!strcmp(w, "--file") || !strcmp(w, "-f"))
				kind = NULL;
			else if (!strncmp(w, "--set=", 6))
				var = w + 6;
			else if (!strcmp(w, "--set") || !strcmp(w, "-s"))
				var = i + 1 < s->nw && gw(s, i + 1)[0] != '-' ? gw(s, ++i) : "root";
			else if (w[0] != '-')
				key = w;
		}
	}
	if (!kind || !key || !key[0] || (var && strcmp(var, "root")) || !var)
		return;
	snprintf(e->fs_hint, sizeof(e->fs_hint), "%s=%.48s", kind, key);
}

/*
 * An unset variable is unset for GRUB too, so dropping it changes nothing.
 * It is noted (a WARN) only when it could change what boots: an argument
 * of linux or initrd that the configuration assigns somewhere this reader
 * does not run (a function, another entry). Stock
 * configurations test $grub_platform in every Debian entry and pass
 * $tuned_params (RHEL, empty without tuned) and $vt_handoff (Ubuntu, a
 * console hand-off set by its gfxmode function): none of them is a reason
 * to doubt the entry.
 */
static void note_unresolved(struct gscan *s, struct boot_entry *e)
{
	static const char *const harmless[] = {"vt_handoff", NULL};
	char name[G_VAR_NAME], tag[G_VAR_NAME + 4];
	const char *p = s->unres, *sp;
	size_t n;

	for (; (sp = strchr(p, ' ')); p = sp + 1) {
		n = (size_t)(sp - p);
		if (!n || n >= sizeof(name))
			continue;
		memcpy(name, p, n);
		name[n] = 0;
		if (is_cmd(name, harmless) || !s->deep || !gvar_get(s->deep, name))
			continue;
		snprintf(tag, sizeof(tag), "$%s ", name);
		if (!strstr(e->note, tag))
			boot_note(e, "$%s unresolved, dropped", name);
	}
}

/* Pass 3: the chosen entry's body, with its own assignments. */
static int grub_run(struct gscan *s, struct boot_entry *e, char *err, size_t errcap)
{
	static const char *const linux_cmds[] = {"linux", "linux16", "linuxefi", NULL};
	static const char *const initrd_cmds[] = {"initrd", "initrd16", "initrdefi", NULL};
	int depth = 1, r, have_linux = 0;
	size_t i;

	while ((r = gnext(s)) > 0) {
		if (s->close) {
			if (--depth == 0)
				break;
			continue;
		}
		if (s->open) {
			depth++;
			continue;
		}
		if (!s->nw)
			continue;
		if (!strcmp(gw(s, 0), "set") && s->nw >= 2) {
			gvar_assign(s->loc, gw(s, 1), e);
		} else if (!strncmp(gw(s, 0), "search", 6)) {
			search_hint(s, e);
		} else if (is_cmd(gw(s, 0), linux_cmds)) {
			const char *p = gw(s, 1);

			if (have_linux++) {
				boot_note(e, "more than one linux command; the first is used");
				continue;
			}
			note_unresolved(s, e);
			strip_device(&p);
			if (s->nw < 2)
				return boot_err(err, errcap, -ENOENT,
						"linux without a file at line %d", s->cmd_line);
			if ((r = set_path(e->kernel.path, NULL, p, strlen(p), "kernel", err,
					  errcap)))
				return r;
			for (i = 2; i < s->nw; i++) {
				const char *a = gw(s, i);

				if (cmdline_add(e->cmdline, a, strlen(a), strchr(a, ' ') != NULL))
					return boot_err(
					    err, errcap, -E2BIG,
					    "kernel command line is longer than %d bytes",
					    BOOT_CMDLINE_MAX - 1);
			}
		} else if (is_cmd(gw(s, 0), initrd_cmds)) {
			note_unresolved(s, e);
			if (e->ninitrd) {
				boot_note(e, "more than one initrd command; the first is used");
				continue;
			}
			for (i = 1; i < s->nw; i++) {
				const char *p = gw(s, i);

				if (e->ninitrd >= BOOT_INITRD_MAX)
					return boot_err(err, errcap, -E2BIG, "more than %d initrds",
							BOOT_INITRD_MAX);
				strip_device(&p);
				r = set_path(e->initrd[e->ninitrd].path, NULL, p, strlen(p),
					     "initrd", err, errcap);
				if (r)
					return r;
				e->ninitrd++;
			}
		}
	}
	if (r < 0)
		return gerr(s, r, err, errcap);
	if (!have_linux)
		return boot_err(err, errcap, -ENOENT, "entry \"%s\" has no linux command",
				e->title);
	return 0;
}

struct gwork {
	struct gscan s;
	struct gvars glob, loc, deep;
	struct gmenu menu;
};

int boot_parse_grub_bls(const char *cfgpath, const char *text, size_t len, const char *grubenv,
			size_t envlen, const struct boot_bls *bls, size_t nbls,
			struct boot_entry *e, char *err, size_t errcap)
{
	struct gwork *w;
	const char *def;
	const struct gitem *it;
	int r, pick;

	memset(e, 0, sizeof(*e));
	snprintf(e->loader, sizeof(e->loader), "grub");
	if (!cfgpath || boot_fmt(e->config, sizeof(e->config), "%s", cfgpath))
		return boot_err(err, errcap, -EINVAL, "configuration path is missing or too long");
	if ((r = check_size(len, err, errcap)) || (r = check_lines(text, len, err, errcap)))
		return r;
	if (grubenv && envlen > 64 * 1024)
		return boot_err(err, errcap, -EFBIG, "grubenv is %zu bytes, more than 64 KiB",
				envlen);
	w = calloc(1, sizeof(*w));
	if (!w)
		return boot_err(err, errcap, -ENOMEM, "out of memory");
	gvars_env(&w->glob, grubenv, envlen);

	cur_init(&w->s.c, text, len);
	w->s.line = 1;
	w->s.glob = &w->glob;
	w->s.deep = &w->deep;
	if ((r = grub_globals(&w->s, err, errcap)))
		goto out;

	cur_init(&w->s.c, text, len);
	w->s.line = 1;
	w->s.pending_close = 0;
	if ((r = grub_menu(&w->s, &w->menu, bls, nbls, e, err, errcap)))
		goto out;
	if (!w->menu.n) {
		r = boot_err(err, errcap, -ENOENT, "%s has no menuentry", cfgpath);
		goto out;
	}
	def = gvar_get(&w->glob, "default");
	if (!def || !def[0])
		def = "0";
	pick = grub_pick(&w->menu, def, e);
	if (pick < 0) {
		r = boot_err(err, errcap, -ENOENT, "%s: no entry to boot", cfgpath);
		goto out;
	}
	it = &w->menu.it[pick];
	snprintf(e->title, sizeof(e->title), "%s", it->title);
	boot_printable(e->title);

	/* Run the chosen body: its text, or the BLS entry's. */
	if (it->bls >= 0) {
		snprintf(e->loader, sizeof(e->loader), "grub+bls");
		cur_init(&w->s.c, bls[it->bls].body, strlen(bls[it->bls].body));
		w->s.line = 1;
	} else {
		cur_init(&w->s.c, text, len);
		boot_skip(&w->s.c, it->body);
		w->s.line = it->line;
	}
	w->s.pending_close = 0;
	w->s.loc = &w->loc;
	w->s.e = e;
	r = grub_run(&w->s, e, err, errcap);
out:
	free(w);
	return r;
}

int boot_parse_grub(const char *cfgpath, const char *text, size_t len, const char *grubenv,
		    size_t envlen, struct boot_entry *e, char *err, size_t errcap)
{
	return boot_parse_grub_bls(cfgpath, text, len, grubenv, envlen, NULL, 0, e, err, errcap);
}

/* ---- BootLoaderSpec entries ---------------------------------------- */

int boot_bls_parse(const char *id, const char *text, size_t len, struct boot_bls *b, char *err,
		   size_t errcap)
{
	char linux_[BOOT_PATH_MAX] = "", initrd[BOOT_PATH_MAX * BOOT_INITRD_MAX] = "";
	char *opts = NULL;
	const char *l, *a;
	size_t n, an, olen = 0, cap = BOOT_CMDLINE_MAX;
	struct cur c;
	int ln = 0, r;

	memset(b, 0, sizeof(*b));
	snprintf(b->id, sizeof(b->id), "%s", id);
	if (len > 64 * 1024)
		return boot_err(err, errcap, -EFBIG, "%s.conf is %zu bytes, more than 64 KiB", id,
				len);
	opts = calloc(1, cap);
	if (!opts)
		return -ENOMEM;
	cur_init(&c, text, len);
	while ((r = next_line(&c, &l, &n, &ln)) > 0) {
		trim(&l, &n);
		if (!n || l[0] == '#')
			continue;
		if (kw(l, n, "title", &a, &an)) {
			copy_n(b->title, sizeof(b->title), a, an);
		} else if (kw(l, n, "version", &a, &an)) {
			copy_n(b->version, sizeof(b->version), a, an);
		} else if (kw(l, n, "linux", &a, &an)) {
			copy_n(linux_, sizeof(linux_), a, an);
		} else if (kw(l, n, "initrd", &a, &an)) {
			size_t k = strlen(initrd);

			if (an + 2 >= sizeof(initrd) - k) {
				r = boot_err(err, errcap, -E2BIG, "%s.conf: too many initrds", id);
				goto out;
			}
			snprintf(initrd + k, sizeof(initrd) - k, "%s%.*s", k ? " " : "", (int)an,
				 a);
		} else if (kw(l, n, "options", &a, &an)) {
			if (an + 2 >= cap - olen) {
				r = boot_err(err, errcap, -E2BIG, "%s.conf: options too long", id);
				goto out;
			}
			olen += (size_t)snprintf(opts + olen, cap - olen, "%s%.*s", olen ? " " : "",
						 (int)an, a);
		}
	}
	if (r < 0) {
		r = boot_err(err, errcap, r, "%s.conf: line %d is too long", id, ln);
		goto out;
	}
	if (!linux_[0]) {
		r = boot_err(err, errcap, -ENOENT, "%s.conf has no linux line", id);
		goto out;
	}
	if (!b->title[0])
		snprintf(b->title, sizeof(b->title), "%s", id);
	/* GRUB's blscfg builds the same script text from these fields. */
	n = strlen(linux_) + olen + strlen(initrd) + 32;
	b->body = malloc(n);
	if (!b->body) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(b->body, n, "linux %s %s\n%s%s\n", linux_, opts, initrd[0] ? "initrd " : "",
		 initrd);
	r = 0;
out:
	free(opts);
	return r;
}

void boot_bls_free(struct boot_bls *b)
{
	free(b->body);
	b->body = NULL;
}
