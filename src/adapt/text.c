/*
 * text.c - device references in a migrated system's configuration:
 * fstab and crypttab sources, KEY=/dev/... words of kernel command lines
 * and shell-style settings, /etc/default/grub and the grubenv block.
 * Every rewrite copies its input line by line into the caller's buffer
 * and changes only the words the caller's mapping names; everything else,
 * including bytes it does not understand, passes through unchanged.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/adapt_impl.h"

void adapt_buf_init(struct adapt_buf *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->err = 0;
	if (cap)
		p[0] = 0;
}

void adapt_put(struct adapt_buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	/* One byte stays free for the NUL that makes the result a string. */
	if (n >= b->cap - b->len) {
		b->err = -ENOSPC;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void adapt_puts(struct adapt_buf *b, const char *s)
{
	adapt_put(b, s, strlen(s));
}

/* Notes end up on a console and in JSON: no control bytes. */
static void printable(char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

void adapt_note(struct adapt_notes *nt, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!nt)
		return;
	if (nt->n >= ADAPT_NOTES_MAX) {
		nt->dropped++;
		return;
	}
	s = nt->note[nt->n++];
	va_start(ap, fmt);
	vsnprintf(s, ADAPT_NOTE_MAX, fmt, ap);
	va_end(ap);
	printable(s);
}

int adapt_refuse(struct adapt_notes *nt, int err, const char *fmt, ...)
{
	va_list ap;

	if (nt) {
		va_start(ap, fmt);
		vsnprintf(nt->why, sizeof(nt->why), fmt, ap);
		va_end(ap);
		printable(nt->why);
	}
	return err;
}

int adapt_check_in(const char *in, size_t len, const struct adapt_buf *out)
{
	if ((!in && len) || !out || !out->p || !out->cap)
		return -EINVAL;
	if (len > ADAPT_TEXT_MAX)
		return -EFBIG;
	return 0;
}

int adapt_next_line(const char *in, size_t len, size_t *pos, struct adapt_line *l)
{
	const char *nl;

	if (*pos >= len)
		return 0;
	l->s = in + *pos;
	nl = memchr(l->s, '\n', len - *pos);
	l->n = nl ? (size_t)(nl - l->s) : len - *pos;
	l->nl = nl != NULL;
	*pos += l->n + (nl ? 1 : 0);
	return 1;
}

void adapt_put_line_end(struct adapt_buf *b, const struct adapt_line *l)
{
	if (l->nl)
		adapt_put(b, "\n", 1);
}

int adapt_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The byte range of field k (0-based, blank-separated) of a line. */
int adapt_field(const struct adapt_line *l, int k, size_t *start, size_t *end)
{
	size_t i = 0;
	int f;

	for (f = 0;; f++) {
		while (i < l->n && adapt_is_blank(l->s[i]))
			i++;
		if (i >= l->n)
			return 0;
		*start = i;
		while (i < l->n && !adapt_is_blank(l->s[i]))
			i++;
		*end = i;
		if (f == k)
			return 1;
	}
}

int adapt_is_comment(const struct adapt_line *l)
{
	size_t i = 0;

	while (i < l->n && adapt_is_blank(l->s[i]))
		i++;
	return i == l->n || l->s[i] == '#';
}

/* A device word the mapping may be asked about: /dev/..., printable,
 * no quotes, backslashes or blanks, and short. */
static int dev_word(const char *s, size_t n)
{
	size_t i;

	if (n <= 5 || n >= ADAPT_DEV_MAX || memcmp(s, "/dev/", 5))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
		    s[i] == '\'' || s[i] == '\\' || s[i] == '`' || s[i] == '$')
			return 0;
	return 1;
}

/* A mapped name goes into configuration files: same rules, no '/'. */
static int name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= ADAPT_DEV_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
		    s[i] == '\'' || s[i] == '\\' || s[i] == '`' || s[i] == '$' || s[i] == '#')
			return 0;
	return 1;
}

int adapt_map_dev(adapt_dev_fn map, void *arg, const char *s, size_t n, char *dev, char *to,
		  size_t tocap)
{
	if (!dev_word(s, n))
		return 0;
	memcpy(dev, s, n);
	dev[n] = 0;
	to[0] = 0;
	if (map(arg, dev, to, tocap) != 1)
		return 0;
	to[tocap - 1] = 0;
	return name_ok(to) && strcmp(to, dev);
}

/* fstab and crypttab: field k of non-comment lines. */
static int rewrite_field(const char *in, size_t len, int k, const char *what, adapt_dev_fn map,
			 void *arg, struct adapt_buf *out, struct adapt_notes *notes)
{
	struct adapt_line l;
	size_t pos = 0, a, b;
	char dev[ADAPT_DEV_MAX], to[ADAPT_DEV_MAX];
	int ln = 0, changed = 0, r;

	if ((r = adapt_check_in(in, len, out)) || !map)
		return r ? r : -EINVAL;
	while (adapt_next_line(in, len, &pos, &l)) {
		ln++;
		if (adapt_is_comment(&l) || !adapt_field(&l, k, &a, &b) ||
		    !adapt_map_dev(map, arg, l.s + a, b - a, dev, to, sizeof(to))) {
			adapt_put(out, l.s, l.n);
			adapt_put_line_end(out, &l);
			continue;
		}
		adapt_put(out, l.s, a);
		adapt_puts(out, to);
		adapt_put(out, l.s + b, l.n - b);
		adapt_put_line_end(out, &l);
		{
			size_t c, d;
			char mnt[64] = "";

			/* The mount point (fstab) or mapping name (crypttab)
			 * says which line it was. */
			if (adapt_field(&l, k ? 0 : 1, &c, &d))
				snprintf(mnt, sizeof(mnt), " (%.*s)",
					 (int)(d - c < 60 ? d - c : 60), l.s + c);
			adapt_note(notes, "%s line %d%s: %s -> %s", what, ln, mnt, dev, to);
		}
		changed++;
	}
	return out->err ? out->err : changed;
}

int adapt_fstab(const char *in, size_t len, adapt_dev_fn map, void *arg, struct adapt_buf *out,
		struct adapt_notes *notes)
{
	return rewrite_field(in, len, 0, "fstab", map, arg, out, notes);
}

int adapt_crypttab(const char *in, size_t len, adapt_dev_fn map, void *arg, struct adapt_buf *out,
		   struct adapt_notes *notes)
{
	return rewrite_field(in, len, 1, "crypttab", map, arg, out, notes);
}

static int word_start(const struct adapt_line *l, size_t i)
{
	char p;

	if (i == 0)
		return 1;
	p = l->s[i - 1];
	return adapt_is_blank(p) || p == '"' || p == '\'' || p == '=';
}

static int value_end_char(char c)
{
	return adapt_is_blank(c) || c == '"' || c == '\'' || c == ';';
}

/* One line through adapt_words; returns words changed on it. */
static int words_line(const struct adapt_line *l, int ln, const char *const *keys, adapt_dev_fn map,
		      void *arg, struct adapt_buf *out, struct adapt_notes *notes)
{
	char dev[ADAPT_DEV_MAX], to[ADAPT_DEV_MAX];
	size_t i = 0, done = 0, k, kl, v, e;
	int changed = 0;

	while (i < l->n) {
		for (k = 0; keys[k]; k++) {
			kl = strlen(keys[k]);
			if (i + kl + 1 <= l->n && word_start(l, i) &&
			    !memcmp(l->s + i, keys[k], kl) && l->s[i + kl] == '=')
				break;
		}
		if (!keys[k]) {
			i++;
			continue;
		}
		v = i + kl + 1;
		for (e = v; e < l->n && !value_end_char(l->s[e]); e++)
			;
		if (adapt_map_dev(map, arg, l->s + v, e - v, dev, to, sizeof(to))) {
			adapt_put(out, l->s + done, v - done);
			adapt_puts(out, to);
			done = e;
			adapt_note(notes, "line %d: %s=%s -> %s=%s", ln, keys[k], dev, keys[k], to);
			changed++;
		}
		i = e > i ? e : i + 1;
	}
	adapt_put(out, l->s + done, l->n - done);
	adapt_put_line_end(out, l);
	return changed;
}

int adapt_words(const char *in, size_t len, const char *const *keys, adapt_dev_fn map, void *arg,
		struct adapt_buf *out, struct adapt_notes *notes)
{
	struct adapt_line l;
	size_t pos = 0;
	int ln = 0, changed = 0, r;

	if ((r = adapt_check_in(in, len, out)) || !map || !keys)
		return r ? r : -EINVAL;
	while (adapt_next_line(in, len, &pos, &l))
		changed += words_line(&l, ++ln, keys, map, arg, out, notes);
	return out->err ? out->err : changed;
}

static const char *const root_keys[] = {"root", "resume", NULL};

int adapt_grub_default(const char *in, size_t len, adapt_dev_fn map, void *arg,
		       struct adapt_buf *out, struct adapt_notes *notes)
{
	static const char key[] = "GRUB_DISABLE_LINUX_UUID=";
	struct adapt_line l;
	size_t pos = 0, i;
	int ln = 0, changed = 0, r;

	if ((r = adapt_check_in(in, len, out)) || !map)
		return r ? r : -EINVAL;
	while (adapt_next_line(in, len, &pos, &l)) {
		ln++;
		for (i = 0; i < l.n && adapt_is_blank(l.s[i]); i++)
			;
		if (l.n - i >= sizeof(key) - 1 && !memcmp(l.s + i, key, sizeof(key) - 1)) {
			const char *v = l.s + i + sizeof(key) - 1;
			size_t vn = l.n - i - (sizeof(key) - 1);

			while (vn && adapt_is_blank(v[vn - 1]))
				vn--;
			if ((vn == 4 && !memcmp(v, "true", 4)) ||
			    (vn == 6 && !memcmp(v, "\"true\"", 6))) {
				adapt_puts(out, "# ferry-adapt: ");
				adapt_put(out, l.s, l.n);
				adapt_put_line_end(out, &l);
				adapt_note(notes,
					   "line %d: GRUB_DISABLE_LINUX_UUID=true commented out "
					   "(grub-mkconfig would write root=/dev/...)",
					   ln);
				changed++;
				continue;
			}
		}
		changed += words_line(&l, ln, root_keys, map, arg, out, notes);
	}
	return out->err ? out->err : changed;
}

int adapt_grubenv(const char *in, size_t len, adapt_dev_fn map, void *arg, struct adapt_buf *out,
		  struct adapt_notes *notes)
{
	static const char hdr[] = "# GRUB Environment Block\n";
	size_t body, i;
	int r;

	if ((r = adapt_check_in(in, len, out)) || !map)
		return r ? r : -EINVAL;
	if (len < sizeof(hdr) - 1 || memcmp(in, hdr, sizeof(hdr) - 1))
		return -EINVAL;
	/* The variables end where the '#' padding starts. */
	for (body = len; body > 0 && in[body - 1] == '#'; body--)
		;
	if (body < sizeof(hdr) - 1)
		body = sizeof(hdr) - 1;
	for (i = 0; i < body; i++)
		if (in[i] == 0)
			return -EINVAL;
	r = adapt_words(in, body, root_keys, map, arg, out, notes);
	if (r < 0)
		return r;
	if (out->len > len)
		return out->err = -ENOSPC;
	/* GRUB reads and rewrites the block in place: same length. */
	while (out->len < len && !out->err)
		adapt_put(out, "#", 1);
	return out->err ? out->err : r;
}

static int list_has_line(const char *in, size_t len, const char *mod)
{
	struct adapt_line l;
	size_t pos = 0, a, b;

	while (adapt_next_line(in, len, &pos, &l))
		if (!adapt_is_comment(&l) && adapt_field(&l, 0, &a, &b) && b - a == strlen(mod) &&
		    !memcmp(l.s + a, mod, b - a))
			return 1;
	return 0;
}

int adapt_modules_list(const char *in, size_t len, const char *const *mods, struct adapt_buf *out,
		       struct adapt_notes *notes)
{
	int added = 0, r;
	size_t i;

	if ((r = adapt_check_in(in, len, out)) || !mods)
		return r ? r : -EINVAL;
	adapt_put(out, in, len);
	if (len && in[len - 1] != '\n')
		adapt_put(out, "\n", 1);
	for (i = 0; mods[i]; i++) {
		if (list_has_line(in, len, mods[i]))
			continue;
		if (!added++)
			adapt_puts(out, "# ferry-adapt: drivers of the machine this system was "
					"migrated to\n");
		adapt_puts(out, mods[i]);
		adapt_put(out, "\n", 1);
		adapt_note(notes, "%s added (the initramfs loads it from now on)", mods[i]);
	}
	return out->err ? out->err : added;
}

/* A partition number: 1 to 4 digits, the whole rest of the name. */
static int part_num(const char *s, int *part)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 4 || s[n])
		return 0;
	*part = atoi(s);
	return *part > 0;
}

int adapt_split_dev(const char *name, char *disk, size_t cap, int *part)
{
	static const char *const letters[] = {"xvd", "sd", "hd", "vd", NULL};
	size_t i, n = strlen(name), e;

	*part = 0;
	for (i = 0; letters[i]; i++) {
		size_t k = strlen(letters[i]);

		if (strncmp(name, letters[i], k) || n <= k || name[k] < 'a' || name[k] > 'z')
			continue;
		for (e = k; e < n && name[e] >= 'a' && name[e] <= 'z'; e++)
			;
		if (e >= cap || e - k > 3 || (e < n && !part_num(name + e, part)))
			return 0;
		memcpy(disk, name, e);
		disk[e] = 0;
		return 1;
	}
	if (strncmp(name, "nvme", 4) && strncmp(name, "mmcblk", 6))
		return 0;
	/* nvme0n1p2, mmcblk0p1: a 'p' and digits after the disk's digits. */
	e = name[0] == 'n' ? 4 : 6;
	e += strspn(name + e, "0123456789");
	if (name[0] == 'n' && name[e] == 'n')
		e += 1 + strspn(name + e + 1, "0123456789");
	if (e >= cap || !isdigit((unsigned char)name[e - 1]))
		return 0;
	if (name[e] && (name[e] != 'p' || !part_num(name + e + 1, part)))
		return 0;
	memcpy(disk, name, e);
	disk[e] = 0;
	return 1;
}

/* A VG or LV name lvm accepts: [a-zA-Z0-9+_.-], not "-..", ".", "..". */
static int lvm_name_ok(const char *s)
{
	if (!s[0] || s[0] == '-' || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+_.-", *s))
			return 0;
	return 1;
}

int adapt_dm_name(const char *vg, const char *lv, char *out, size_t cap)
{
	const char *parts[2] = {vg, lv};
	size_t o = 0, i;
	const char *p;

	if (!cap || !lvm_name_ok(vg) || !lvm_name_ok(lv))
		return -EINVAL;
	for (i = 0; i < 2; i++) {
		if (i) {
			if (o + 1 >= cap)
				return -ENAMETOOLONG;
			out[o++] = '-';
		}
		for (p = parts[i]; *p; p++) {
			if (o + (*p == '-' ? 2 : 1) >= cap)
				return -ENAMETOOLONG;
			if (*p == '-')
				out[o++] = '-';
			out[o++] = *p;
		}
	}
	out[o] = 0;
	return 0;
}
