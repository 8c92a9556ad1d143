/*
 * fat.c - a read-only FAT12/16/32 directory walker, just enough to list
 * the loaders of an EFI system partition (/EFI/ * / *.efi, long names
 * included). Boot sector, FAT entries and directory entries are read
 * through bounded cursors; cluster chains are bounded by the cluster
 * count and directories by FAT_DIR_CAP, so a looping or hostile FAT ends
 * in an error, not a hang. It never writes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "boot/boot_impl.h"

#define FAT_DIR_CAP (256u * 1024) /* bytes of one directory */

struct fat {
	int fd;
	uint64_t off, size; /* the partition, in bytes */
	uint32_t clus_bytes;
	uint64_t fat_off, root_off, data_off;
	uint32_t root_bytes; /* FAT12/16 fixed root directory */
	uint32_t nclus;	     /* data clusters, numbered from 2 */
	uint32_t root_clus;  /* FAT32 */
	int bits;	     /* 12, 16, 32 */
};

static int fat_open(struct fat *f, int fd, uint64_t off, uint64_t size, char *err, size_t errcap)
{
	uint8_t bs[512];
	struct cur c;
	uint16_t bps, rsvd, nroot, tot16, fatsz16;
	uint8_t spc, nfats;
	uint32_t tot32, fatsz32, rootclus, fatsz, tot;
	uint64_t meta;
	int r;

	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->off = off;
	f->size = size;
	if (size < 512 || (r = boot_pread_full(fd, bs, sizeof(bs), off)))
		return boot_err(err, errcap, size < 512 ? -EINVAL : r,
				"cannot read the boot sector");
	cur_init(&c, bs, sizeof(bs));
	boot_skip(&c, 11);
	boot_le16(&c, &bps);
	cur_u8(&c, &spc);
	boot_le16(&c, &rsvd);
	cur_u8(&c, &nfats);
	boot_le16(&c, &nroot);
	boot_le16(&c, &tot16);
	boot_skip(&c, 1);
	boot_le16(&c, &fatsz16);
	boot_skip(&c, 8);
	boot_le32(&c, &tot32);
	boot_le32(&c, &fatsz32);
	boot_skip(&c, 4);
	boot_le32(&c, &rootclus);
	if (c.err || bps < 512 || bps > 4096 || (bps & (bps - 1)) || !spc || (spc & (spc - 1)) ||
	    !rsvd || !nfats || nfats > 4)
		return boot_err(err, errcap, -EINVAL, "not a FAT boot sector");
	fatsz = fatsz16 ? fatsz16 : fatsz32;
	tot = tot16 ? tot16 : tot32;
	f->clus_bytes = (uint32_t)bps * spc;
	f->root_bytes = (uint32_t)nroot * 32;
	f->fat_off = (uint64_t)rsvd * bps;
	f->root_off = f->fat_off + (uint64_t)nfats * fatsz * bps;
	f->data_off = f->root_off + ((f->root_bytes + bps - 1u) / bps) * (uint64_t)bps;
	meta = f->data_off / bps;
	if (!fatsz || (uint64_t)tot * bps > size || meta >= tot)
		return boot_err(err, errcap, -EINVAL,
				"FAT geometry does not fit the partition (%u sectors of %u bytes)",
				tot, bps);
	f->nclus = (uint32_t)((tot - meta) / spc);
	/* The cluster count, not a label, decides the FAT type. */
	f->bits = f->nclus < 4085 ? 12 : f->nclus < 65525 ? 16 : 32;
	if (f->bits == 32) {
		f->root_clus = rootclus;
		if (fatsz16 || nroot)
			return boot_err(err, errcap, -EINVAL, "inconsistent FAT32 boot sector");
	} else if (!nroot) {
		return boot_err(err, errcap, -EINVAL, "FAT%d without a root directory", f->bits);
	}
	/* Each FAT must hold an entry for every cluster. */
	if ((uint64_t)fatsz * bps * 8 < ((uint64_t)f->nclus + 2) * (uint64_t)f->bits)
		return boot_err(err, errcap, -EINVAL, "FAT is too small for %u clusters", f->nclus);
	return 0;
}

/* 1 with *next, 0 at the chain's end, -EBADMSG for a bad link. */
static int fat_next(const struct fat *f, uint32_t clus, uint32_t *next)
{
	uint8_t b[4];
	struct cur c;
	uint64_t at;
	uint32_t v;
	uint16_t v16;
	int r;

	if (clus < 2 || clus > f->nclus + 1)
		return -EBADMSG;
	at = f->bits == 12 ? clus + clus / 2 : (uint64_t)clus * (uint64_t)(f->bits / 8);
	r = boot_pread_full(f->fd, b, f->bits == 32 ? 4 : 2, f->off + f->fat_off + at);
	if (r)
		return r;
	cur_init(&c, b, f->bits == 32 ? 4 : 2);
	if (f->bits == 32) {
		boot_le32(&c, &v);
		v &= 0x0fffffff;
		if (v >= 0x0ffffff8)
			return 0;
	} else {
		boot_le16(&c, &v16);
		v = v16;
		if (f->bits == 12)
			v = clus & 1 ? v >> 4 : v & 0xfff;
		if (v >= (f->bits == 12 ? 0xff8u : 0xfff8u))
			return 0;
	}
	if (v < 2 || v > f->nclus + 1)
		return -EBADMSG;
	*next = v;
	return 1;
}

/* A directory's bytes: the fixed root (clus 0 on FAT12/16) or a chain. */
static int fat_dir(const struct fat *f, uint32_t clus, uint8_t **out, size_t *len)
{
	uint8_t *buf;
	size_t n = 0, steps = 0;
	int r;

	*out = NULL;
	*len = 0;
	if (!clus && f->bits != 32) {
		size_t sz = f->root_bytes > FAT_DIR_CAP ? FAT_DIR_CAP : f->root_bytes;

		buf = malloc(sz ? sz : 1);
		if (!buf)
			return -ENOMEM;
		r = boot_pread_full(f->fd, buf, sz, f->off + f->root_off);
		if (r) {
			free(buf);
			return r;
		}
		*out = buf;
		*len = sz;
		return 0;
	}
	if (!clus)
		clus = f->root_clus;
	if (f->clus_bytes > FAT_DIR_CAP)
		return -EFBIG;
	buf = malloc(FAT_DIR_CAP);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		uint64_t at = f->data_off + (uint64_t)(clus - 2) * f->clus_bytes;

		if (clus < 2 || clus > f->nclus + 1 || at + f->clus_bytes > f->size) {
			r = -EBADMSG;
			goto fail;
		}
		if (n + f->clus_bytes > FAT_DIR_CAP || ++steps > f->nclus) {
			r = -EFBIG; /* or a loop in the chain */
			goto fail;
		}
		r = boot_pread_full(f->fd, buf + n, f->clus_bytes, f->off + at);
		if (r)
			goto fail;
		n += f->clus_bytes;
		r = fat_next(f, clus, &clus);
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
	}
	*out = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	return r;
}

struct fat_ent {
	char name[256];
	uint8_t attr;
	uint32_t clus, size;
};

static uint8_t sfn_sum(const uint8_t *n)
{
	uint8_t s = 0;
	int i;

	for (i = 0; i < 11; i++)
		s = (uint8_t)(((s & 1) << 7) + (s >> 1) + n[i]);
	return s;
}

/* Calls fn for each live entry of a directory's bytes; stops on nonzero. */
static int fat_each(const uint8_t *d, size_t len, int (*fn)(void *, const struct fat_ent *),
		    void *arg)
{
	struct fat_ent e;
	char lfn[256];
	uint8_t lsum = 0;
	int have_lfn = 0;
	struct cur c;

	cur_init(&c, d, len);
	while (cur_left(&c) >= 32) {
		const uint8_t *p, *name;
		uint8_t attr, nt;
		uint16_t hi, lo;
		uint32_t fsize;
		size_t i, o;

		cur_ref(&c, &p, 32);
		if (c.err)
			return c.err;
		if (p[0] == 0)
			break; /* the end of the directory */
		attr = p[11];
		if (p[0] == 0xe5) {
			have_lfn = 0;
			continue;
		}
		if ((attr & 0x3f) == 0x0f) {
			/* 13 UCS-2 characters at 1, 14 and 28; the order in byte 0. */
			static const uint8_t at[13] = {1,  3,  5,  7,  9,  14, 16,
						       18, 20, 22, 24, 28, 30};
			unsigned ord = p[0] & 0x1f;

			if (p[0] & 0x40) {
				memset(lfn, 0, sizeof(lfn));
				have_lfn = 1;
				lsum = p[13];
			}
			if (!have_lfn || !ord || ord > 19 || p[13] != lsum) {
				have_lfn = 0;
				continue;
			}
			for (i = 0; i < 13; i++) {
				uint16_t ch = (uint16_t)(p[at[i]] | p[at[i] + 1] << 8);

				o = (ord - 1) * 13 + i;
				if (ch == 0 || ch == 0xffff || o >= sizeof(lfn) - 1)
					continue;
				lfn[o] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
			}
			continue;
		}
		name = p;
		nt = p[12];
		{
			struct cur f;

			cur_init(&f, p, 32);
			boot_skip(&f, 20);
			boot_le16(&f, &hi);
			boot_skip(&f, 4);
			boot_le16(&f, &lo);
			boot_le32(&f, &fsize);
		}
		memset(&e, 0, sizeof(e));
		e.attr = attr;
		e.clus = (uint32_t)hi << 16 | lo;
		e.size = fsize;
		if (attr & 0x08) { /* volume label */
			have_lfn = 0;
			continue;
		}
		if (have_lfn && sfn_sum(name) == lsum && lfn[0]) {
			snprintf(e.name, sizeof(e.name), "%s", lfn);
		} else {
			/* 8.3, with the NT case bits (0x08 base, 0x10 extension lower). */
			o = 0;
			for (i = 0; i < 8 && name[i] != ' '; i++)
				e.name[o++] = (char)(nt & 0x08 ? tolower(name[i]) : name[i]);
			if (name[8] != ' ')
				e.name[o++] = '.';
			for (i = 8; i < 11 && name[i] != ' '; i++)
				e.name[o++] = (char)(nt & 0x10 ? tolower(name[i]) : name[i]);
			e.name[o] = 0;
			for (i = 0; i < o; i++)
				if ((unsigned char)e.name[i] < 0x20 ||
				    (unsigned char)e.name[i] >= 0x7f)
					e.name[i] = '?';
			if (e.name[0] == 0x05)
				e.name[0] = '?';
		}
		have_lfn = 0;
		if (!strcmp(e.name, ".") || !strcmp(e.name, ".."))
			continue;
		if (fn(arg, &e))
			return 1;
	}
	return 0;
}

struct find_arg {
	const char *name;
	int dir;
	struct fat_ent found;
	int hit;
};

static int find_cb(void *arg, const struct fat_ent *e)
{
	struct find_arg *a = arg;

	if (!!(e->attr & 0x10) != a->dir || strcasecmp(e->name, a->name))
		return 0;
	a->found = *e;
	a->hit = 1;
	return 1;
}

#define SUBDIR_MAX 16

struct subdirs {
	size_t n;
	struct fat_ent d[SUBDIR_MAX];
};

static int subdir_cb(void *arg, const struct fat_ent *e)
{
	struct subdirs *s = arg;

	if ((e->attr & 0x10) && s->n < SUBDIR_MAX)
		s->d[s->n++] = *e;
	return 0;
}

struct efi_arg {
	struct boot_efi *out;
	const char *sub;
};

static int efi_cb(void *arg, const struct fat_ent *e)
{
	struct efi_arg *a = arg;
	struct boot_efi *o = a->out;
	size_t n = strlen(e->name);
	char p[64];

	if (!(e->attr & 0x10) && !strcasecmp(e->name, "grub.cfg") &&
	    (!o->cfg_path[0] || !strcasecmp(o->cfg_path, "/EFI/BOOT/grub.cfg"))) {
		/* A vendor directory's grub.cfg before the fallback one. */
		snprintf(o->cfg_path, sizeof(o->cfg_path), "/EFI/%.20s/grub.cfg", a->sub);
		o->cfg_clus = e->clus;
		o->cfg_size = e->size;
	}
	if (!(e->attr & 0x10) && !strcasecmp(e->name, "grubenv") &&
	    (!o->env_dir[0] || !strcasecmp(o->env_dir, "BOOT"))) {
		snprintf(o->env_dir, sizeof(o->env_dir), "%.20s", a->sub);
		o->env_clus = e->clus;
		o->env_size = e->size;
	}
	if ((e->attr & 0x10) || n < 5 || strcasecmp(e->name + n - 4, ".efi"))
		return 0;
	snprintf(p, sizeof(p), "/EFI/%.20s/%.30s", a->sub, e->name);
	/* The removable-media path firmware uses when its boot entries are gone. */
	if (!strcasecmp(a->sub, "BOOT") && !strncasecmp(e->name, "BOOT", 4) && !o->fallback) {
		o->fallback = 1;
		snprintf(o->fallback_name, sizeof(o->fallback_name), "%s", p);
	}
	if (o->n < BOOT_EFI_MAX)
		memcpy(o->path[o->n++], p, sizeof(p));
	return 0;
}

int boot_fat_efi(int fd, uint64_t off, uint64_t size, struct boot_efi *out, char *err,
		 size_t errcap)
{
	struct fat f;
	struct find_arg fa;
	struct subdirs *sd = NULL;
	struct efi_arg ea;
	uint8_t *d = NULL;
	size_t len, i;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&fa, 0, sizeof(fa));
	fa.name = "EFI";
	fa.dir = 1;
	if ((r = fat_open(&f, fd, off, size, err, errcap)))
		return r;
	if ((r = fat_dir(&f, 0, &d, &len)))
		return boot_err(err, errcap, r, "cannot read the root directory: %s", strerror(-r));
	fat_each(d, len, find_cb, &fa);
	free(d);
	d = NULL;
	if (!fa.hit)
		return boot_err(err, errcap, -ENOENT, "no /EFI directory");
	if (!fa.found.clus)
		return boot_err(err, errcap, -EBADMSG, "/EFI has no clusters");
	if ((r = fat_dir(&f, fa.found.clus, &d, &len)))
		return boot_err(err, errcap, r, "cannot read /EFI: %s",
				r == -EFBIG ? "its cluster chain loops or is over 256 KiB"
					    : strerror(-r));
	sd = calloc(1, sizeof(*sd));
	if (!sd) {
		r = -ENOMEM;
		goto out;
	}
	fat_each(d, len, subdir_cb, sd);
	for (i = 0; i < sd->n; i++) {
		free(d);
		d = NULL;
		if (!sd->d[i].clus || fat_dir(&f, sd->d[i].clus, &d, &len))
			continue; /* one bad directory does not hide the others */
		ea.out = out;
		ea.sub = sd->d[i].name;
		fat_each(d, len, efi_cb, &ea);
	}
	r = 0;
out:
	free(sd);
	free(d);
	return r;
}

int boot_fat_read(int fd, uint64_t off, uint64_t size, uint32_t clus, uint32_t fsize, size_t cap,
		  char **out, char *err, size_t errcap)
{
	struct fat f;
	char *buf;
	size_t n = 0, k, steps = 0;
	int r;

	*out = NULL;
	if ((r = fat_open(&f, fd, off, size, err, errcap)))
		return r;
	if (fsize > cap)
		return boot_err(err, errcap, -EFBIG, "%u bytes, more than %zu", fsize, cap);
	buf = malloc((size_t)fsize + 1);
	if (!buf)
		return -ENOMEM;
	while (n < fsize) {
		uint64_t at = f.data_off + (uint64_t)(clus - 2) * f.clus_bytes;

		if (clus < 2 || clus > f.nclus + 1 || at + f.clus_bytes > f.size ||
		    ++steps > f.nclus) {
			r = boot_err(err, errcap, -EBADMSG, "broken cluster chain");
			goto fail;
		}
		k = fsize - n < f.clus_bytes ? fsize - n : f.clus_bytes;
		if ((r = boot_pread_full(fd, buf + n, k, off + at)))
			goto fail;
		n += k;
		if (n < fsize && (r = fat_next(&f, clus, &clus)) <= 0) {
			r = boot_err(err, errcap, -EBADMSG, "cluster chain ends before the file");
			goto fail;
		}
	}
	buf[n] = 0;
	*out = buf;
	return 0;
fail:
	free(buf);
	return r;
}
