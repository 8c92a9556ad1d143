/*
 * entry.c - the default boot entry on the disks: which bootloader
 * configuration the migrated system has (grub.cfg with its grubenv and
 * BootLoaderSpec entries first, then extlinux/syslinux), on its root or
 * its separate /boot, and which partition actually holds each kernel and
 * initrd path. Read-only; the parsing itself is bootcfg.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/boot_impl.h"

#define BLS_MAX 64

struct cfg_cand {
	int on_boot; /* on the /boot partition (else the root) */
	const char *path;
	int grub;
};

/* Where a system keeps its configuration, in the order they are tried. */
static const struct cfg_cand cands[] = {
    {0, "/boot/grub/grub.cfg", 1},
    {0, "/boot/grub2/grub.cfg", 1},
    {1, "/grub/grub.cfg", 1},
    {1, "/grub2/grub.cfg", 1},
    {0, "/boot/extlinux/extlinux.conf", 0},
    {0, "/boot/extlinux.conf", 0},
    {0, "/extlinux.conf", 0},
    {0, "/boot/syslinux/syslinux.cfg", 0},
    {0, "/boot/syslinux/extlinux.conf", 0},
    {1, "/extlinux/extlinux.conf", 0},
    {1, "/extlinux.conf", 0},
    {1, "/syslinux/syslinux.cfg", 0},
    {1, "/syslinux.cfg", 0},
};

static int file_on(struct boot_ctx *c, int vol, const char *path)
{
	struct boot_ext *fs;
	int type;

	if (vol < 0 || boot_ctx_ext(c, vol, &fs))
		return 0;
	return !boot_ext_stat(fs, path, &type, NULL) && type == 'f';
}

/* The path without a leading "/boot", or NULL. */
static const char *unboot(const char *p)
{
	return !strncmp(p, "/boot/", 6) ? p + 5 : NULL;
}

/*
 * Which partition holds path, for a config read from cfgvol: the
 * filesystem grub's search named, the config's own, then root and /boot
 * with the "/boot" prefix taken off or put on (a separate /boot is
 * mounted there, so its files have no such prefix on their own).
 */
static int resolve(struct boot_ctx *c, const struct boot_entry *e, int cfgvol, struct boot_file *f,
		   const char *what, char *err, size_t errcap)
{
	char withboot[BOOT_PATH_MAX + 8], tried[128] = "";
	const char *p = f->path, *nb = unboot(p);
	struct {
		int vol;
		const char *path;
	} t[10];
	int hint = -1, n = 0, i, j;

	if (e->fs_hint[0])
		boot_find_vol(c, e->fs_hint, &hint, NULL);
	snprintf(withboot, sizeof(withboot), "/boot%s", p);
	if (hint >= 0) {
		t[n].vol = hint, t[n++].path = p;
		if (nb && hint != c->root)
			t[n].vol = hint, t[n++].path = nb;
	}
	t[n].vol = cfgvol, t[n++].path = p;
	if (cfgvol == c->root && c->boot >= 0)
		t[n].vol = c->boot, t[n++].path = nb ? nb : p;
	if (cfgvol == c->boot)
		t[n].vol = c->root, t[n++].path = withboot;
	if (cfgvol != c->root)
		t[n].vol = c->root, t[n++].path = p;
	if (!nb)
		t[n].vol = c->root, t[n++].path = withboot;
	for (i = 0; i < n; i++) {
		if (t[i].vol < 0 || strlen(t[i].path) >= BOOT_PATH_MAX)
			continue;
		if (file_on(c, t[i].vol, t[i].path)) {
			snprintf(f->part, sizeof(f->part), "%s", c->vol[t[i].vol].name);
			memmove(f->path, t[i].path, strlen(t[i].path) + 1);
			return t[i].vol;
		}
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i && t[j].vol != t[i].vol; j++)
			;
		if (t[i].vol >= 0 && j == i) {
			size_t k = strlen(tried);

			snprintf(tried + k, sizeof(tried) - k, "%s%s", k ? " or " : "",
				 c->vol[t[i].vol].name);
		}
	}
	return boot_err(err, errcap, -ENOENT, "%s %s not found on %s", what, p, tried);
}

struct bls_list {
	char names[BLS_MAX][128];
	size_t n, skipped;
};

static int bls_name(void *arg, const char *name)
{
	struct bls_list *l = arg;
	size_t n = strlen(name);

	if (n <= 5 || n - 5 >= sizeof(l->names[0]) || strcmp(name + n - 5, ".conf"))
		return 0;
	if (l->n >= BLS_MAX) {
		l->skipped++;
		return 0;
	}
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%.*s", (int)(n - 5), name);
	return 0;
}

/* Newest first, as GRUB's blscfg sorts them. */
static int bls_cmp(const void *a, const void *b)
{
	const struct boot_bls *x = a, *y = b;
	int r = strverscmp(y->version, x->version);

	return r ? r : strverscmp(y->id, x->id);
}

/* Reads /loader/entries/ *.conf from /boot (or root's /boot/loader). */
static int load_bls(struct boot_ctx *c, struct boot_bls **out, size_t *nout, struct boot_entry *e)
{
	struct bls_list *l = calloc(1, sizeof(*l));
	struct boot_bls *bls = NULL;
	struct boot_ext *fs;
	char path[BOOT_PATH_MAX], perr[160], *text;
	const char *dir = NULL;
	size_t i, len, n = 0;
	int vol = -1, r = 0;

	*out = NULL;
	*nout = 0;
	if (!l)
		return -ENOMEM;
	if (c->boot >= 0 && !boot_ctx_ext(c, c->boot, &fs) &&
	    !boot_ext_list(fs, "/loader/entries", bls_name, l))
		vol = c->boot, dir = "/loader/entries";
	else if (!boot_ctx_ext(c, c->root, &fs) &&
		 !boot_ext_list(fs, "/boot/loader/entries", bls_name, l))
		vol = c->root, dir = "/boot/loader/entries";
	if (vol < 0 || !l->n)
		goto out;
	if (l->skipped)
		boot_note(e, "more than %d BLS entries; %zu not read", BLS_MAX, l->skipped);
	bls = calloc(l->n, sizeof(*bls));
	if (!bls) {
		r = -ENOMEM;
		goto out;
	}
	boot_ctx_ext(c, vol, &fs);
	for (i = 0; i < l->n; i++) {
		if (boot_fmt(path, sizeof(path), "%s/%s.conf", dir, l->names[i]))
			continue;
		if (boot_ext_read(fs, path, 64 * 1024, &text, &len)) {
			boot_note(e, "%s unreadable", path);
			continue;
		}
		if (boot_bls_parse(l->names[i], text, len, &bls[n], perr, sizeof(perr)))
			boot_note(e, "%s", perr);
		else
			n++;
		free(text);
	}
	qsort(bls, n, sizeof(*bls), bls_cmp);
	*out = bls;
	*nout = n;
	bls = NULL;
out:
	free(bls);
	free(l);
	return r;
}

/* grub.cfg text read from vol; its grubenv from the same directory, or
 * the one given (an ESP is not ext: its caller reads it). */
static int parse_grub(struct boot_ctx *c, int vol, const char *path, const char *text, size_t len,
		      const char *genv, size_t genvlen, struct boot_entry *e, char *err,
		      size_t errcap)
{
	char envpath[BOOT_PATH_MAX], *env = NULL;
	struct boot_bls *bls = NULL;
	struct boot_entry scratch;
	struct boot_ext *fs;
	size_t envlen = 0, nbls = 0, i;
	const char *slash = strrchr(path, '/');
	int r;

	if (!genv && !boot_ctx_ext(c, vol, &fs) && slash &&
	    (size_t)(slash - path) < sizeof(envpath) - 8) {
		snprintf(envpath, sizeof(envpath), "%.*s/grubenv", (int)(slash - path), path);
		if (boot_ext_read(fs, envpath, 64 * 1024, &env, &envlen))
			env = NULL, envlen = 0;
	}
	memset(&scratch, 0, sizeof(scratch));
	if (memmem(text, len, "blscfg", 6) && (r = load_bls(c, &bls, &nbls, &scratch)))
		goto out;
	r = boot_parse_grub_bls(path, text, len, genv ? genv : env, genv ? genvlen : envlen, bls,
				nbls, e, err, errcap);
	if (!r && scratch.note[0])
		boot_note(e, "%s", scratch.note);
out:
	for (i = 0; i < nbls; i++)
		boot_bls_free(&bls[i]);
	free(bls);
	free(env);
	return r;
}

/* No configuration on root or /boot: a full grub.cfg may live on the ESP
 * (RHEL 8 and older Fedora with UEFI keep it in /EFI/<vendor>/). */
static int esp_grub(struct boot_ctx *c, struct boot_entry *e, char *where, size_t wcap, char *err,
		    size_t errcap)
{
	const struct boot_vol *v = &c->vol[c->esp];
	struct boot_efi efi;
	char why[160], *text = NULL, *env = NULL;
	int fd, r;

	fd = open(c->disk[v->disk].path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = boot_fat_efi(fd, v->start, v->size, &efi, why, sizeof(why));
	if (r || !efi.cfg_path[0]) {
		r = -ENOENT;
		goto out;
	}
	snprintf(where, wcap, "%s:%s", v->name, efi.cfg_path);
	snprintf(e->config, sizeof(e->config), "%s", where);
	r = boot_fat_read(fd, v->start, v->size, efi.cfg_clus, efi.cfg_size, BOOT_CONFIG_MAX, &text,
			  why, sizeof(why));
	if (r) {
		r = boot_err(err, errcap, r, "%s: %s", where, why);
		goto out;
	}
	if (efi.env_dir[0] && boot_fat_read(fd, v->start, v->size, efi.env_clus, efi.env_size,
					    64 * 1024, &env, why, sizeof(why)))
		env = NULL;
	r = parse_grub(c, c->esp, efi.cfg_path, text, efi.cfg_size, env ? env : "",
		       env ? efi.env_size : 0, e, why, sizeof(why));
	snprintf(e->config, sizeof(e->config), "%s", where);
	if (r == -ENOENT && memmem(text, efi.cfg_size, "configfile", 10))
		r = boot_err(err, errcap, r,
			     "%s only chains (configfile) to a grub.cfg that is not "
			     "on %s",
			     where, c->vol[c->root].name);
	else if (r)
		r = boot_err(err, errcap, r, "%s: %s", where, why);
out:
	free(text);
	free(env);
	close(fd);
	return r;
}

int boot_locate_entry(struct boot_ctx *c, struct boot_entry *e, int *kvol,
		      int ivol[BOOT_INITRD_MAX], char *err, size_t errcap)
{
	char perr[BOOT_ERR_MAX], *text = NULL, where[BOOT_NAME_MAX + BOOT_PATH_MAX];
	struct boot_ext *fs;
	size_t i, len;
	int vol = -1, r;
	const struct cfg_cand *cand = NULL;

	memset(e, 0, sizeof(*e));
	if (c->root < 0)
		return boot_err(err, errcap, -ENOENT, "no root filesystem");
	for (i = 0; i < FERRY_ARRAY_LEN(cands) && !cand; i++) {
		vol = cands[i].on_boot ? c->boot : c->root;
		if (file_on(c, vol, cands[i].path))
			cand = &cands[i];
	}
	if (!cand && c->esp >= 0) {
		r = esp_grub(c, e, where, sizeof(where), err, errcap);
		if (r != -ENOENT || e->config[0]) {
			if (r)
				return r;
			vol = c->esp;
			goto files;
		}
	}
	if (!cand)
		return boot_err(err, errcap, -ENOENT,
				"no grub.cfg, extlinux.conf or syslinux.cfg on %s%s%s%s",
				c->vol[c->root].name, c->boot >= 0 ? " or " : "",
				c->boot >= 0 ? c->vol[c->boot].name : "",
				c->esp >= 0 ? " or in the ESP's /EFI/*/" : "");
	snprintf(where, sizeof(where), "%s:%s", c->vol[vol].name, cand->path);
	boot_ctx_ext(c, vol, &fs);
	r = boot_ext_read(fs, cand->path, BOOT_CONFIG_MAX, &text, &len);
	if (r)
		snprintf(e->config, sizeof(e->config), "%s", where);
	if (r == -EFBIG)
		return boot_err(err, errcap, r, "%s is %zu bytes, more than %u", where, len,
				BOOT_CONFIG_MAX);
	if (r)
		return boot_err(err, errcap, r, "%s: %s", where, strerror(-r));
	if (cand->grub)
		r = parse_grub(c, vol, cand->path, text, len, NULL, 0, e, perr, sizeof(perr));
	else
		r = boot_parse_extlinux(cand->path, text, len, e, perr, sizeof(perr));
	free(text);
	/* Set also on failure: the caller reports which configuration it was. */
	snprintf(e->config, sizeof(e->config), "%s", where);
	if (r)
		return boot_err(err, errcap, r, "%s: %s", where, perr);
files:
	r = resolve(c, e, vol, &e->kernel, "kernel", err, errcap);
	if (r < 0)
		return r;
	*kvol = r;
	for (i = 0; i < e->ninitrd; i++) {
		r = resolve(c, e, vol, &e->initrd[i], "initrd", err, errcap);
		if (r < 0)
			return r;
		ivol[i] = r;
	}
	return 0;
}

int boot_find_entry(const char *const *disks, size_t n, struct boot_entry *e, char *err,
		    size_t errcap)
{
	struct boot_ctx *c;
	int kvol, ivol[BOOT_INITRD_MAX], r;

	if (!e)
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	if (!disks || !n || n > BOOT_DISK_MAX)
		return boot_err(err, errcap, -EINVAL, "between 1 and %d disks are needed",
				BOOT_DISK_MAX);
	c = boot_ctx_new();
	if (!c)
		return boot_err(err, errcap, -ENOMEM, "out of memory");
	r = boot_scan_disks(c, disks, n);
	if (!r)
		r = boot_find_root(c, err, errcap);
	if (!r)
		r = boot_locate_entry(c, e, &kvol, ivol, err, errcap);
	boot_ctx_free(c);
	return r;
}
