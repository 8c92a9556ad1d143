/*
 * ctx.c - the migrated system as the boot checks see it: which ext
 * filesystem is its root (the one with /etc/fstab and an init), its
 * fstab entries, and which partitions its fstab mounts at /boot and
 * /boot/efi. Filesystems are opened once per inspection and read-only.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot_impl.h"

struct boot_ctx *boot_ctx_new(void)
{
	struct boot_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->root = c->boot = c->esp = -1;
	return c;
}

void boot_ctx_free(struct boot_ctx *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < BOOT_VOL_MAX; i++)
		boot_ext_close(c->ext[i]);
	free(c->fstab);
	free(c);
}

int boot_ctx_ext(struct boot_ctx *c, int vol, struct boot_ext **fs)
{
	const struct boot_vol *v;
	int r;

	*fs = NULL;
	if (vol < 0 || (size_t)vol >= c->nvol)
		return -EINVAL;
	v = &c->vol[vol];
	if (!boot_fs_is_ext(v->fs))
		return -EINVAL;
	if (c->ext[vol]) {
		*fs = c->ext[vol];
		return 0;
	}
	if (c->ext_err[vol])
		return c->ext_err[vol];
	r = boot_ext_open(c->disk[v->disk].path, v->start, &c->ext[vol], c->ext_errtext[vol],
			  sizeof(c->ext_errtext[vol]));
	if (r) {
		c->ext_err[vol] = r;
		return r;
	}
	*fs = c->ext[vol];
	return 0;
}

/* ---- fstab ---------------------------------------------------------- */

/* One field, with fstab's octal escapes (\040 is a blank) undone. */
static int field(const char *l, size_t n, size_t *i, char *dst, size_t cap)
{
	size_t o = 0;

	while (*i < n && isspace((unsigned char)l[*i]))
		(*i)++;
	if (*i >= n)
		return 0;
	while (*i < n && !isspace((unsigned char)l[*i])) {
		char ch = l[(*i)++];

		if (ch == '\\' && *i + 2 < n && l[*i] >= '0' && l[*i] <= '3' && l[*i + 1] >= '0' &&
		    l[*i + 1] <= '7' && l[*i + 2] >= '0' && l[*i + 2] <= '7') {
			ch = (char)((l[*i] - '0') * 64 + (l[*i + 1] - '0') * 8 + (l[*i + 2] - '0'));
			*i += 3;
		}
		if (o + 1 >= cap)
			return -ENAMETOOLONG;
		dst[o++] = ch;
	}
	dst[o] = 0;
	return 1;
}

int boot_fstab_next(struct cur *c, int *lineno, struct boot_fstab_ent *e)
{
	const uint8_t *start, *nl, *p;
	size_t left, n, i;
	int r;

	while ((left = cur_left(c)) > 0) {
		cur_ref(c, &start, 0);
		nl = memchr(start, '\n', left);
		n = nl ? (size_t)(nl - start) : left;
		if (cur_ref(c, &p, nl ? n + 1 : n))
			return c->err;
		(*lineno)++;
		memset(e, 0, sizeof(*e));
		e->line = *lineno;
		i = 0;
		while (i < n && isspace(p[i]))
			i++;
		if (i == n || p[i] == '#')
			continue;
		r = field((const char *)p, n, &i, e->spec, sizeof(e->spec));
		if (r > 0)
			r = field((const char *)p, n, &i, e->file, sizeof(e->file));
		if (r > 0 && field((const char *)p, n, &i, e->type, sizeof(e->type)) <= 0)
			snprintf(e->type, sizeof(e->type), "auto");
		if (r > 0 && field((const char *)p, n, &i, e->opts, sizeof(e->opts)) <= 0)
			snprintf(e->opts, sizeof(e->opts), "defaults");
		if (r < 0) {
			e->bad = 1; /* a field too long to be anything real */
			return 1;
		}
		if (r == 0) {
			e->bad = 1; /* a line with one field */
			return 1;
		}
		return 1;
	}
	return 0;
}

int boot_fstab_opt(const struct boot_fstab_ent *e, const char *opt)
{
	const char *p = e->opts;
	size_t k = strlen(opt);

	while (*p) {
		if (!strncmp(p, opt, k) && (p[k] == ',' || !p[k]))
			return 1;
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	return 0;
}

/* ---- the root filesystem ------------------------------------------- */

static const char *const inits[] = {"/sbin/init", "/lib/systemd/systemd",
				    "/usr/lib/systemd/systemd", "/init", NULL};

static int is_file(struct boot_ext *fs, const char *path)
{
	int type;

	return !boot_ext_stat(fs, path, &type, NULL) && type == 'f';
}

static void append_name(char *dst, size_t cap, const char *name)
{
	size_t n = strlen(dst);

	if (n + strlen(name) + 3 < cap)
		snprintf(dst + n, cap - n, "%s%s", n ? ", " : "", name);
}

static void find_mounts(struct boot_ctx *c)
{
	struct boot_fstab_ent *e = malloc(sizeof(*e));
	struct cur cu;
	int ln = 0, v;
	size_t i;

	if (e && c->fstab) {
		cur_init(&cu, c->fstab, c->fstab_len);
		while (boot_fstab_next(&cu, &ln, e) > 0) {
			if (e->bad || boot_find_vol(c, e->spec, &v, NULL))
				continue;
			if (!strcmp(e->file, "/boot") && boot_fs_is_ext(c->vol[v].fs) &&
			    v != c->root)
				c->boot = v;
			else if ((!strcmp(e->file, "/boot/efi") || !strcmp(e->file, "/efi")) &&
				 c->vol[v].fs == BOOT_FS_VFAT)
				c->esp = v;
		}
	}
	free(e);
	/* No fstab line for it: the first EFI system partition with vfat. */
	for (i = 0; i < c->nvol && c->esp < 0; i++)
		if (c->vol[i].esp && c->vol[i].fs == BOOT_FS_VFAT)
			c->esp = (int)i;
}

int boot_find_root(struct boot_ctx *c, char *err, size_t errcap)
{
	char looked[256] = "", one[64];
	struct boot_ext *fs;
	int best = -1, best_score = 0, score, r;
	size_t i, k, len;

	for (i = 0; i < c->nvol; i++) {
		const struct boot_vol *v = &c->vol[i];

		if (v->fs == BOOT_FS_NONE || v->fs == BOOT_FS_SWAP)
			continue;
		snprintf(one, sizeof(one), "%s %s", v->name, boot_fs_name(v->fs));
		append_name(looked, sizeof(looked), one);
		if (!boot_fs_is_ext(v->fs) || boot_ctx_ext(c, (int)i, &fs))
			continue;
		if (!is_file(fs, "/etc/fstab"))
			continue;
		score = 1;
		for (k = 0; inits[k]; k++)
			if (is_file(fs, inits[k]))
				score = 2;
		if (score > best_score) {
			if (best >= 0)
				append_name(c->root_others, sizeof(c->root_others),
					    c->vol[best].name);
			best = (int)i;
			best_score = score;
		} else {
			append_name(c->root_others, sizeof(c->root_others), v->name);
		}
	}
	if (best < 0)
		return boot_err(err, errcap, -ENOENT,
				"no ext2/3/4 filesystem holds /etc/fstab (looked at: %s)",
				looked[0] ? looked : "no filesystems found");
	c->root = best;
	boot_ctx_ext(c, best, &fs);
	for (k = 0; inits[k] && !c->root_init[0]; k++)
		if (is_file(fs, inits[k]))
			snprintf(c->root_init, sizeof(c->root_init), "%s", inits[k]);
	r = boot_ext_read(fs, "/etc/fstab", BOOT_CONFIG_MAX, &c->fstab, &len);
	c->fstab_err = r;
	c->fstab_len = r ? 0 : len;
	find_mounts(c);
	return 0;
}
