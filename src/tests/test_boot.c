/*
 * test_boot.c - src/boot on the host: the extlinux and grub parsers
 * (table-driven, then hostile text: oversize, long lines and command
 * lines, "..", broken quoting, random bytes), and boot_inspect /
 * boot_find_entry on real disk images made with sfdisk, mkfs.ext4 -d,
 * mkfs.vfat + mtools and mkswap: a good GPT system, a bad fstab, virtio
 * as a module with and without it in the initramfs (cpio, gzip, zstd,
 * early+main, lz4), no bootloader, grub with set default="1", an MBR
 * system with a separate /boot, logical partitions and BLS entries, and
 * hostile partition tables. No root needed; nothing is kexec'ed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"
#include "common/common.h"
#include "tests/tap.h"

static char tmp[256];
static struct boot_report rep;

/* ---- helpers --------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell snippet in tmp with the image-making functions defined. */
static int sh(const char *fmt, ...)
{
	static const char lib[] =
	    "set -e; cd \"$T\"\n"
	    "ROOTU=11111111-2222-3333-4444-555555555555\n"
	    "SWAPU=66666666-7777-8888-9999-aaaaaaaaaaaa\n"
	    "BOOTU=77777777-8888-9999-aaaa-bbbbbbbbbbbb\n"
	    "fstab() { cat <<EOF\n"
	    "# <file system> <mount point> <type> <options> <dump> <pass>\n"
	    "UUID=$ROOTU / ext4 errors=remount-ro 0 1\n"
	    "UUID=1234-ABCD /boot/efi vfat umask=0077 0 1\n"
	    "UUID=$SWAPU none swap sw 0 0\n"
	    "PARTUUID=aaaaaaaa-0000-0000-0000-000000000002 /srv ext4 noauto 0 0\n"
	    "LABEL=my\\\\040root /mnt ext4 defaults 0 0\n"
	    "tmpfs /tmp tmpfs defaults 0 0\n"
	    "proc /proc proc defaults 0 0\n"
	    "server:/export /nfs nfs defaults 0 0\n"
	    "EOF\n"
	    "}\n"
	    /* tree DIR BLK: a small root; BLK is CONFIG_VIRTIO_BLK's value */
	    "tree() { rm -rf $1; mkdir -p $1/etc $1/sbin $1/boot/extlinux "
	    "$1/lib/modules/6.1-test\n"
	    "  printf '#!/bin/sh\\n' > $1/sbin/init; chmod 755 $1/sbin/init\n"
	    "  head -c 8192 /dev/zero | tr '\\0' k > $1/boot/vmlinuz-6.1-test\n"
	    "  printf 'CONFIG_VIRTIO_BLK=%s\\nCONFIG_VIRTIO_PCI=y\\nCONFIG_VIRTIO_NET=m\\n' $2 "
	    "> $1/boot/config-6.1-test\n"
	    "  printf 'kernel/drivers/net/virtio_net.ko:\\n' > "
	    "$1/lib/modules/6.1-test/modules.dep\n"
	    "  fstab > $1/etc/fstab; }\n"
	    /* xl DIR [INITRD]: extlinux.conf booting 6.1-test */
	    "xl() { cat > $1/boot/extlinux/extlinux.conf <<EOF\n"
	    "# generated\n"
	    "DEFAULT linux\nTIMEOUT 50\n"
	    "LABEL rescue\n  KERNEL /boot/vmlinuz-6.1-test\n  APPEND single\n"
	    "LABEL linux\n  MENU LABEL Linux 6.1\n  LINUX /boot/vmlinuz-6.1-test\n"
	    "  APPEND root=UUID=$ROOTU ro console=ttyS0 ${2:+initrd=$2}\n"
	    "EOF\n"
	    "}\n"
	    /* initrd OUT MOD FMT: a cpio holding MOD (or nothing), then FMT */
	    "initrd() { rm -rf ir; mkdir -p ir/lib/modules/6.1-test/kernel/drivers/block ir/bin\n"
	    "  echo busybox > ir/bin/sh; [ -n \"$2\" ] && echo m > "
	    "ir/lib/modules/6.1-test/kernel/drivers/block/$2\n"
	    "  (cd ir && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > ir.cpio\n"
	    "  case $3 in raw) cp ir.cpio $1;; gz) gzip -n -c ir.cpio > $1;;\n"
	    "  zst) zstd -q -c ir.cpio > $1;; lz4) lz4 -l -q -c ir.cpio > $1;;\n"
	    "  early) rm -rf er; mkdir -p er/kernel/x86/microcode; echo u > "
	    "er/kernel/x86/microcode/GenuineIntel.bin\n"
	    "    (cd er && find . | cpio -o -H newc --quiet) > er.cpio; gzip -n -c ir.cpio > ir.gz;"
	    " cat er.cpio ir.gz > $1;;\n"
	    "  trunc) head -c 300 ir.cpio > $1;; esac; }\n"
	    "esp() { [ -f esp.img ] && return 0; mkfs.vfat -C -i 1234ABCD -n ESP esp.img 8192 "
	    ">/dev/null\n"
	    "  echo efi > x.efi; mmd -i esp.img ::/EFI ::/EFI/BOOT ::/EFI/debian\n"
	    "  mcopy -i esp.img x.efi ::/EFI/BOOT/BOOTX64.EFI; mcopy -i esp.img x.efi "
	    "::/EFI/debian/grubx64.efi; }\n"
	    "swap() { [ -f swap.img ] && return 0; truncate -s 4M swap.img; chmod 600 swap.img;"
	    " mkswap -U $SWAPU swap.img >/dev/null 2>&1; }\n"
	    /* gpt IMG ROOTDIR: ESP, ext4 root (label "my root"), swap */
	    "gpt() { esp; swap; rm -f $1; truncate -s 40M $1; sfdisk -q $1 >/dev/null <<EOF\n"
	    "label: gpt\n"
	    "label-id: 01234567-89AB-CDEF-0123-456789ABCDEF\n"
	    "start=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, "
	    "uuid=aaaaaaaa-0000-0000-0000-000000000001\n"
	    "start=18432, size=49152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, "
	    "uuid=aaaaaaaa-0000-0000-0000-000000000002\n"
	    "start=67584, size=8192, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, "
	    "uuid=aaaaaaaa-0000-0000-0000-000000000003\n"
	    "EOF\n"
	    "  dd if=esp.img of=$1 bs=512 seek=2048 conv=notrunc status=none\n"
	    "  mkfs.ext4 -q -F -U $ROOTU -L 'my root' -d $2 -E offset=9437184 $1 24M\n"
	    "  dd if=swap.img of=$1 bs=512 seek=67584 conv=notrunc status=none; }\n"
	    /* whole IMG ROOTDIR: an ext4 filesystem on the whole disk */
	    "whole() { rm -f $1; mkfs.ext4 -q -F -U $ROOTU -d $2 $1 16M >/dev/null; }\n";
	char cmd[8192];
	va_list ap;
	int n, rc;

	n = snprintf(cmd, sizeof(cmd), "T='%s'\n%s", tmp, lib);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc)
		note("shell snippet failed (%d): %.200s", rc, cmd + n);
	return rc;
}

static int put(const char *rel, const void *p, size_t n)
{
	char path[512];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, p, n) != (ssize_t)n)
		rc = -EIO;
	close(fd);
	return rc;
}

static int have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static void dump(const struct boot_report *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		note("  %s  %s",
		     r->line[i].level == BOOT_PASS   ? "PASS"
		     : r->line[i].level == BOOT_WARN ? "WARN"
						     : "FAIL",
		     r->line[i].text);
}

/* A line at level l holding every needle (NULL-terminated list). */
static int line_has(const struct boot_report *r, enum boot_level l, const char *a, const char *b)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->line[i].level == l && strstr(r->line[i].text, a) &&
		    (!b || strstr(r->line[i].text, b)))
			return 1;
	return 0;
}

static int inspect(const char *img)
{
	char spec[512];
	const char *disks[1] = {spec};

	snprintf(spec, sizeof(spec), "vda=%s/%s", tmp, img);
	return boot_inspect(disks, 1, &rep);
}

static int find(const char *img, struct boot_entry *e, char *err, size_t errcap)
{
	char spec[512];
	const char *disks[1] = {spec};

	snprintf(spec, sizeof(spec), "vda=%s/%s", tmp, img);
	err[0] = 0;
	return boot_find_entry(disks, 1, e, err, errcap);
}

#define expect_line(l, a, b, name)                                                                 \
	do {                                                                                       \
		if (!ok(line_has(&rep, (l), (a), (b)), "%s", (name)))                              \
			dump(&rep);                                                                \
	} while (0)

/* ---- parser tables ------------------------------------------------- */

struct pcase {
	const char *name;
	int grub;
	const char *cfgpath, *text, *env;
	int rc;
	const char *title, *kernel, *initrd0, *initrd1, *cmdline, *hint, *note;
};

#define NO_ENTRY NULL, NULL, NULL, NULL, NULL, NULL, NULL
#define ROOT	 "root=UUID=11111111-2222-3333-4444-555555555555"

static const struct pcase pcases[] = {
    {"extlinux: DEFAULT names a label", 0, "/boot/extlinux/extlinux.conf",
     "DEFAULT linux\nLABEL rescue\n KERNEL /a\nLABEL linux\n LINUX /boot/vmlinuz-6.1\n"
     " APPEND " ROOT " ro quiet initrd=/boot/initrd.img-6.1\n",
     NULL, 0, "linux", "/boot/vmlinuz-6.1", "/boot/initrd.img-6.1", NULL, ROOT " ro quiet", NULL,
     NULL},
    {"extlinux: keywords any case, relative paths from the config's dir", 0,
     "/boot/extlinux/extlinux.conf",
     "default Arch\r\nlabel Arch\r\n\tlinux vmlinuz\r\n\tinitrd ucode.img,initramfs.img\r\n"
     "\tappend root=/dev/vda2 rw\r\n",
     NULL, 0, "Arch", "/boot/extlinux/vmlinuz", "/boot/extlinux/ucode.img",
     "/boot/extlinux/initramfs.img", "root=/dev/vda2 rw", NULL, NULL},
    {"extlinux: no DEFAULT takes the first LABEL, global APPEND", 0, "/extlinux.conf",
     "APPEND console=ttyS0\nLABEL one\n KERNEL /vmlinuz\nLABEL two\n KERNEL /other\n", NULL, 0,
     "one", "/vmlinuz", NULL, NULL, "console=ttyS0", NULL, "first LABEL"},
    {"extlinux: UI menu with MENU DEFAULT, APPEND -", 0, "/boot/syslinux/syslinux.cfg",
     "UI menu.c32\nDEFAULT vesamenu.c32\nAPPEND quiet\nLABEL a\n KERNEL /a\nLABEL b\n"
     " MENU DEFAULT\n KERNEL /b\n APPEND -\n",
     NULL, 0, "b", "/b", NULL, NULL, "", NULL, NULL},
    {"extlinux: DEFAULT with no such LABEL is a kernel command line", 0, "/extlinux.conf",
     "DEFAULT /boot/vmlinuz root=/dev/sda1 initrd=/boot/initrd\n", NULL, 0, "/boot/vmlinuz",
     "/boot/vmlinuz", "/boot/initrd", NULL, "root=/dev/sda1", NULL, "taken as a kernel"},
    {"extlinux: TEXT HELP block and comments skipped", 0, "/extlinux.conf",
     "# LABEL x\nDEFAULT l\nLABEL l\n TEXT HELP\n LABEL fake\n KERNEL /fake\n ENDTEXT\n"
     " KERNEL /real\n",
     NULL, 0, "l", "/real", NULL, NULL, "", NULL, NULL},
    {"extlinux: LOCALBOOT is not a Linux entry", 0, "/extlinux.conf",
     "DEFAULT hd\nLABEL hd\n LOCALBOOT 0\n", NULL, -ENOENT, NO_ENTRY},
    {"extlinux: menu module as kernel is refused", 0, "/extlinux.conf",
     "DEFAULT m\nLABEL m\n KERNEL menu.c32\n", NULL, -ENOENT, NO_ENTRY},
    {"extlinux: no LABEL and no DEFAULT", 0, "/extlinux.conf", "TIMEOUT 1\n", NULL, -ENOENT,
     NO_ENTRY},
    {"extlinux: label without KERNEL", 0, "/extlinux.conf", "DEFAULT a\nLABEL a\n APPEND x\n", NULL,
     -ENOENT, NO_ENTRY},
    {"extlinux: .. in the kernel path", 0, "/boot/extlinux/extlinux.conf",
     "DEFAULT a\nLABEL a\n KERNEL ../../etc/shadow\n", NULL, -EINVAL, NO_ENTRY},
    {"extlinux: .. in an initrd= path", 0, "/extlinux.conf",
     "DEFAULT a\nLABEL a\n KERNEL /k\n APPEND initrd=/boot/../x\n", NULL, -EINVAL, NO_ENTRY},
    {"extlinux: five initrds", 0, "/extlinux.conf",
     "DEFAULT a\nLABEL a\n KERNEL /k\n INITRD /1,/2,/3,/4,/5\n", NULL, -E2BIG, NO_ENTRY},

    {"grub: set default=\"1\" picks the second entry; search hint; stock variables not noted", 1,
     "/boot/grub/grub.cfg",
     "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n"
     "   set default=\"1\"\nfi\n"
     "if [ x\"${feature_menuentry_id}\" = xy ]; then\n  menuentry_id_option=\"--id\"\n"
     "else\n  menuentry_id_option=\"\"\nfi\n"
     "function load_video {\n  insmod all_video\n}\n"
     "menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple' {\n"
     "\tload_video\n\tsearch --no-floppy --fs-uuid --set=root 1111\n"
     "\tlinux\t/boot/vmlinuz-old " ROOT " ro quiet\n\tinitrd\t/boot/initrd.img-old\n}\n"
     "menuentry 'Debian, with Linux 6.1' --class debian $menuentry_id_option 'gnulinux-6.1' {\n"
     "\tsearch --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 abcd-ef\n"
     "\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
     "\techo 'Loading Linux 6.1 ...'\n"
     "\tlinux\t/boot/vmlinuz-6.1 " ROOT " ro console=ttyS0 $vt_handoff\n"
     "\tinitrd\t/boot/initrd.img-6.1\n}\n",
     NULL, 0, "Debian, with Linux 6.1", "/boot/vmlinuz-6.1", "/boot/initrd.img-6.1", NULL,
     ROOT " ro console=ttyS0", "UUID=abcd-ef", ""},
    {"grub: a variable set only inside a function and passed to linux is noted", 1,
     "/boot/grub/grub.cfg",
     "function kopts {\n  set kargs=quiet\n}\n"
     "menuentry A {\n linux /k root=/dev/vda1 $kargs $never_set\n}\n",
     NULL, 0, "A", "/k", NULL, NULL, "root=/dev/vda1", NULL, "$kargs unresolved, dropped"},
    {"grub: no default is entry 0; variables set at the top are expanded", 1, "/boot/grub/grub.cfg",
     "set kopts=\"ro quiet\"\nset gfxpayload=keep\n"
     "menuentry \"A {braced} title\" {\n  linux ($root)/vmlinuz root=/dev/vda2 ${kopts} "
     "\"acpi_osi=Windows 2009\"\n  initrd (hd0,gpt2)/initrd.img /early.img\n}\n"
     "menuentry B {\n linux /b\n}\n",
     NULL, 0, "A {braced} title", "/vmlinuz", "/initrd.img", "/early.img",
     "root=/dev/vda2 ro quiet \"acpi_osi=Windows 2009\"", NULL, NULL},
    {"grub: submenu path default from grubenv saved_entry", 1, "/boot/grub/grub.cfg",
     "set default=\"${saved_entry}\"\n"
     "menuentry 'Debian' --id simple {\n linux /vmlinuz-a root=/dev/vda1\n}\n"
     "submenu 'Advanced' --id advanced {\n"
     "  menuentry 'Debian 6.1' --id v61 {\n   linux /vmlinuz-6.1 root=/dev/vda1\n  }\n"
     "  menuentry 'Debian 6.1 (recovery)' --id v61r {\n"
     "   linux /vmlinuz-6.1 root=/dev/vda1 single\n   initrd /initrd-6.1\n  }\n}\n",
     "# GRUB Environment Block\nsaved_entry=advanced>v61r\n#####################\n", 0,
     "Debian 6.1 (recovery)", "/vmlinuz-6.1", "/initrd-6.1", NULL, "root=/dev/vda1 single", NULL,
     NULL},
    {"grub: numeric submenu path \"1>0\" and linuxefi/initrdefi", 1, "/boot/grub2/grub.cfg",
     "set default=\"1>0\"\nmenuentry a {\n linux16 /a\n}\nsubmenu s {\n"
     " menuentry b {\n  linuxefi /vmlinuz-b x=1\n  initrdefi /initramfs-b.img\n }\n}\n",
     NULL, 0, "b", "/vmlinuz-b", "/initramfs-b.img", NULL, "x=1", NULL, NULL},
    {"grub: default by title", 1, "/boot/grub/grub.cfg",
     "set default='Second one'\nmenuentry 'First' {\n linux /1\n}\n"
     "menuentry 'Second one' {\n linux /2 a b\n}\n",
     NULL, 0, "Second one", "/2", NULL, NULL, "a b", NULL, NULL},
    {"grub: default out of range falls back to the first, noted", 1, "/boot/grub/grub.cfg",
     "set default=7\nmenuentry 'only' {\n linux /k\n}\n", NULL, 0, "only", "/k", NULL, NULL, "",
     NULL, "matches no entry"},
    {"grub: ${saved_entry} unset: an empty default is ignored", 1, "/boot/grub/grub.cfg",
     "set default=\"0\"\nset default=\"${saved_entry}\"\nmenuentry x {\n linux /x\n}\n", NULL, 0,
     "x", "/x", NULL, NULL, "", NULL, NULL},
    {"grub: chosen entry without linux", 1, "/boot/grub/grub.cfg",
     "menuentry 'UEFI Firmware Settings' {\n fwsetup\n}\n", NULL, -ENOENT, NO_ENTRY},
    {"grub: no menuentry at all", 1, "/boot/grub/grub.cfg", "set timeout=5\n", NULL, -ENOENT,
     NO_ENTRY},
    {"grub: unterminated quote", 1, "/boot/grub/grub.cfg", "menuentry 'x {\n linux /k\n}\n", NULL,
     -EBADMSG, NO_ENTRY},
    {"grub: .. in the kernel path", 1, "/boot/grub/grub.cfg",
     "menuentry x {\n linux /boot/../../../etc/shadow\n}\n", NULL, -EINVAL, NO_ENTRY},
    {"grub: control byte in the initrd path", 1, "/boot/grub/grub.cfg",
     "menuentry x {\n linux /k\n initrd \"/a\x01b\"\n}\n", NULL, -EINVAL, NO_ENTRY},
    {"grub: blocks nested too deep", 1, "/boot/grub/grub.cfg",
     "function a {\nfunction a {\nfunction a {\nfunction a {\nfunction a {\nfunction a {\n"
     "function a {\nfunction a {\nfunction a {\nfunction a {\nfunction a {\nfunction a {\n"
     "function a {\nfunction a {\nfunction a {\nfunction a {\nfunction a {\nfunction a {\n",
     NULL, -E2BIG, NO_ENTRY},
    {"grub: stray closing braces and $ at the end", 1, "/boot/grub/grub.cfg",
     "}\n}\nmenuentry x {\n linux /k a$\n}\n}\n$", NULL, 0, "x", "/k", NULL, NULL, "a$", NULL,
     NULL},
};

static void test_parsers(void)
{
	static struct boot_entry e;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < FERRY_ARRAY_LEN(pcases); i++) {
		const struct pcase *c = &pcases[i];

		err[0] = 0;
		if (c->grub)
			rc = boot_parse_grub(c->cfgpath, c->text, strlen(c->text), c->env,
					     c->env ? strlen(c->env) : 0, &e, err, sizeof(err));
		else
			rc = boot_parse_extlinux(c->cfgpath, c->text, strlen(c->text), &e, err,
						 sizeof(err));
		if (!is_int(rc, c->rc, c->name)) {
			note("err: %s", err);
			continue;
		}
		if (rc) {
			ok(err[0] != 0, "%s: says why (%s)", c->name, err);
			continue;
		}
		ok(!strcmp(e.title, c->title), "%s: title \"%s\"", c->name, e.title);
		ok(!strcmp(e.kernel.path, c->kernel), "%s: kernel %s", c->name, e.kernel.path);
		is_int(e.ninitrd, c->initrd1 ? 2 : c->initrd0 ? 1 : 0, "initrd count");
		if (c->initrd0)
			ok(!strcmp(e.initrd[0].path, c->initrd0), "%s: initrd %s", c->name,
			   e.initrd[0].path);
		if (c->initrd1)
			ok(!strcmp(e.initrd[1].path, c->initrd1), "%s: second initrd %s", c->name,
			   e.initrd[1].path);
		ok(!strcmp(e.cmdline, c->cmdline), "%s: cmdline \"%s\"", c->name, e.cmdline);
		if (c->hint)
			ok(!strcmp(e.fs_hint, c->hint), "%s: fs hint %s", c->name, e.fs_hint);
		if (c->note && !c->note[0])
			ok(!e.note[0], "%s: no note (\"%s\")", c->name, e.note);
		else if (c->note)
			ok(strstr(e.note, c->note) != NULL && !strstr(e.note, "never_set"),
			   "%s: note \"%s\"", c->name, e.note);
	}
}

static void test_hostile_text(void)
{
	static struct boot_entry e;
	const size_t big = 10u << 20;
	char err[256], *t = malloc(big + 1);
	size_t i, n, len;
	unsigned x = 12345;
	int rc;

	if (!t) {
		ok(0, "malloc");
		return;
	}
	/* 10 MB of config */
	memset(t, '#', big);
	t[big] = 0;
	rc = boot_parse_grub("/boot/grub/grub.cfg", t, big, NULL, 0, &e, err, sizeof(err));
	ok(rc == -EFBIG && strstr(err, "more than"), "10 MB grub.cfg refused: %s", err);
	rc = boot_parse_extlinux("/extlinux.conf", t, big, &e, err, sizeof(err));
	ok(rc == -EFBIG, "10 MB extlinux.conf refused: %s", err);

	/* one line of 100 KB */
	n = (size_t)snprintf(t, big, "DEFAULT a\nLABEL a\n KERNEL /k\n APPEND ");
	memset(t + n, 'x', 100 * 1024);
	n += 100 * 1024;
	t[n++] = '\n';
	t[n] = 0;
	rc = boot_parse_extlinux("/extlinux.conf", t, n, &e, err, sizeof(err));
	ok(rc == -E2BIG && strstr(err, "line 4"), "100 KB line refused (extlinux): %s", err);
	memcpy(t, "menuentry a {\n linux /k ", 24);
	rc = boot_parse_grub("/boot/grub/grub.cfg", t, n, NULL, 0, &e, err, sizeof(err));
	ok(rc == -E2BIG, "100 KB line refused (grub): %s", err);

	/* a command line of 8 KB: under the line limit, over the cmdline limit */
	n = (size_t)snprintf(t, big, "DEFAULT a\nLABEL a\n KERNEL /k\n APPEND ");
	for (i = 0; i < 1024; i++)
		n += (size_t)snprintf(t + n, big - n, "opt%04zu ", i);
	t[n++] = '\n';
	t[n] = 0;
	rc = boot_parse_extlinux("/extlinux.conf", t, n, &e, err, sizeof(err));
	ok(rc == -E2BIG && strstr(err, "command line"), "8 KB cmdline refused (extlinux): %s", err);
	n = (size_t)snprintf(t, big, "menuentry a {\n linux /k");
	for (i = 0; i < 1024; i++)
		n += (size_t)snprintf(t + n, big - n, " opt%04zu", i);
	n += (size_t)snprintf(t + n, big - n, "\n}\n");
	rc = boot_parse_grub("/boot/grub/grub.cfg", t, n, NULL, 0, &e, err, sizeof(err));
	ok(rc == -E2BIG && strstr(err, "command line"), "8 KB cmdline refused (grub): %s", err);

	/* a path just over BOOT_PATH_MAX */
	n = (size_t)snprintf(t, big, "menuentry a {\n linux /");
	memset(t + n, 'p', BOOT_PATH_MAX);
	n += BOOT_PATH_MAX;
	n += (size_t)snprintf(t + n, big - n, "\n}\n");
	rc = boot_parse_grub("/boot/grub/grub.cfg", t, n, NULL, 0, &e, err, sizeof(err));
	ok(rc == -EINVAL, "over-long kernel path refused: %s", err);

	/* 400 menu entries: the first 256 are kept, the default still works */
	n = (size_t)snprintf(t, big, "set default=3\n");
	for (i = 0; i < 400; i++)
		n += (size_t)snprintf(t + n, big - n, "menuentry e%zu {\n linux /k%zu\n}\n", i, i);
	rc = boot_parse_grub("/boot/grub/grub.cfg", t, n, NULL, 0, &e, err, sizeof(err));
	ok(rc == 0 && !strcmp(e.kernel.path, "/k3") && strstr(e.note, "more than"),
	   "400 entries: default 3 found, overflow noted (%d %s)", rc, e.kernel.path);

	/* random bytes and every prefix of a real config: no crash, no hang */
	for (i = 0; i < 3000; i++) {
		size_t k;

		len = 1 + (x % 2048);
		for (k = 0; k < len; k++) {
			x = x * 1103515245u + 12345u;
			/* mostly the bytes that matter to the parsers */
			t[k] = "{}'\"$\\\n ;#=>aLm\x01/."[(x >> 16) % 18];
		}
		boot_parse_grub("/boot/grub/grub.cfg", t, len, t, len / 2, &e, err, sizeof(err));
		boot_parse_extlinux("/a/b.conf", t, len, &e, err, sizeof(err));
	}
	ok(1, "3000 random configs parsed without a crash");
	{
		const char *g = pcases[13].text;

		len = strlen(g);
		for (i = 0; i <= len; i++) {
			memcpy(t, g, i);
			boot_parse_grub("/boot/grub/grub.cfg", t, i, NULL, 0, &e, err, sizeof(err));
		}
		ok(1, "every prefix of a grub.cfg parsed without a crash");
	}
	free(t);
}

/* ---- images --------------------------------------------------------- */

static void test_good_gpt(void)
{
	static struct boot_entry e;
	char err[256];
	int rc;

	if (sh("tree good y; printf x > good/boot/initrd.img-6.1-test; xl good "
	       "/boot/initrd.img-6.1-test; gpt good.img good")) {
		skip("could not build the GPT image");
		return;
	}
	rc = inspect("good.img");
	is_int(rc, 0, "inspect good.img");
	if (!ok(rep.verdict == BOOT_PASS, "good image: verdict PASS"))
		dump(&rep);
	expect_line(BOOT_PASS, "disk vda", "vda1 vfat ESP, vda2 ext4, vda3 swap",
		    "partitions and filesystems listed");
	expect_line(BOOT_PASS, "root filesystem: vda2", "/sbin/init", "root is vda2 with init");
	expect_line(BOOT_PASS, "UUID=1234-ABCD", "vda1 (vfat)", "vfat serial matched");
	expect_line(BOOT_PASS, "UUID=66666666-7777-8888-9999-aaaaaaaaaaaa", "vda3 (swap)",
		    "swap UUID matched");
	expect_line(BOOT_PASS, "PARTUUID=aaaaaaaa-0000-0000-0000-000000000002", "vda2",
		    "GPT partition UUID matched");
	expect_line(BOOT_PASS, "LABEL=my root", "vda2", "label with \\040 matched");
	expect_line(BOOT_PASS, "5 entries checked", "3 not disk-backed", "pseudo and nfs skipped");
	expect_line(BOOT_PASS, "boot entry \"linux\"", "vda2:/boot/extlinux/extlinux.conf",
		    "boot entry found");
	expect_line(BOOT_PASS, "root=UUID=11111111", "is vda2", "root= checked");
	expect_line(BOOT_PASS, "virtio_blk: built into kernel 6.1-test", "config-6.1-test",
		    "virtio_blk built in");
	expect_line(BOOT_PASS, "virtio_net: module", "/lib/modules/6.1-test",
		    "virtio_net module on root");
	expect_line(BOOT_PASS, "EFI system partition vda1", "/EFI/BOOT/BOOTX64.EFI",
		    "ESP loaders listed");
	ok(!rep.no_esp_fallback, "a fallback loader: nothing for adapt to install");
	expect_line(BOOT_PASS, "/EFI/debian/grubx64.efi", NULL, "long file name read");

	rc = find("good.img", &e, err, sizeof(err));
	is_int(rc, 0, "find_entry on good.img");
	ok(!strcmp(e.kernel.part, "vda2") && !strcmp(e.kernel.path, "/boot/vmlinuz-6.1-test"),
	   "extlinux kernel vda2:/boot/vmlinuz-6.1-test (%s:%s)", e.kernel.part, e.kernel.path);
	ok(e.ninitrd == 1 && !strcmp(e.initrd[0].path, "/boot/initrd.img-6.1-test"),
	   "extlinux initrd from APPEND initrd=");
	ok(!strcmp(e.cmdline, ROOT " ro console=ttyS0"), "extlinux cmdline \"%s\"", e.cmdline);
	ok(!strcmp(e.loader, "extlinux") && !strcmp(e.title, "linux"), "loader %s, title %s",
	   e.loader, e.title);
}

static void test_bad_variants(void)
{
	static struct boot_entry e;
	char err[256], spec[512];
	const char *disks[1] = {spec};
	int rc;

	/* an fstab UUID that is on no disk */
	if (!sh("tree badfs y; xl badfs; echo 'UUID=deadbeef-0000-4000-8000-000000000000 /data "
		"ext4 defaults 0 2' >> badfs/etc/fstab; echo 'UUID=cafe-f00d /opt ext4 nofail 0 2'"
		" >> badfs/etc/fstab; gpt badfs.img badfs")) {
		inspect("badfs.img");
		ok(rep.verdict == BOOT_FAIL, "missing fstab UUID: verdict FAIL");
		expect_line(BOOT_FAIL, "UUID=deadbeef-0000-4000-8000-000000000000", "(/data)",
			    "missing UUID named with its mount point");
		expect_line(BOOT_WARN, "UUID=cafe-f00d", "nofail",
			    "missing nofail entry is a WARN");
	} else {
		skip("could not build badfs.img");
	}

	/* virtio_blk as a module and no initramfs at all */
	if (!sh("tree mod m; xl mod; whole mod.img mod")) {
		inspect("mod.img");
		expect_line(BOOT_FAIL, "virtio_blk: a module in kernel 6.1-test", "no initramfs",
			    "virtio_blk=m without initramfs: FAIL (the root disk cannot be found)");
		expect_line(BOOT_PASS, "virtio_pci: built into", NULL, "virtio_pci still checked");
		expect_line(BOOT_PASS, "disk vda", "no table, vda ext4",
			    "a filesystem on the whole disk");
		expect_line(BOOT_WARN, "BIOS: no boot code", NULL, "no ESP and no boot code: WARN");
	} else {
		skip("could not build mod.img");
	}

	/* no bootloader at all */
	if (!sh("tree nobl y; rm -rf nobl/boot/extlinux; whole nobl.img nobl")) {
		inspect("nobl.img");
		ok(rep.verdict == BOOT_FAIL, "no bootloader: verdict FAIL");
		expect_line(BOOT_FAIL, "bootloader: none", "/boot/grub/grub.cfg",
			    "no bootloader: FAIL saying where it looked");
		rc = find("nobl.img", &e, err, sizeof(err));
		ok(rc == -ENOENT && strstr(err, "no grub.cfg"), "find_entry: %s", err);
	} else {
		skip("could not build nobl.img");
	}

	/* the kernel named by the config is not there; kexec fails before loading */
	if (!sh("tree nok y; xl nok; rm nok/boot/vmlinuz-6.1-test; whole nok.img nok")) {
		rc = find("nok.img", &e, err, sizeof(err));
		ok(rc == -ENOENT && strstr(err, "kernel /boot/vmlinuz-6.1-test not found on vda"),
		   "missing kernel: %s", err);
		snprintf(spec, sizeof(spec), "vda=%s/nok.img", tmp);
		rc = boot_kexec_load(disks, 1, err, sizeof(err));
		ok(rc == -ENOENT && !strncmp(err, "kexec: ", 7) && strstr(err, "not found on vda"),
		   "kexec with a missing kernel refused before loading: %s", err);
		inspect("nok.img");
		expect_line(BOOT_FAIL, "boot entry:", "not found", "missing kernel: FAIL");
	} else {
		skip("could not build nok.img");
	}

	/* a 10 MB extlinux.conf on the disk */
	if (!sh("tree huge y; head -c 10485760 /dev/zero | tr '\\0' '#' > "
		"huge/boot/extlinux/extlinux.conf; mkfs.ext4 -q -F -d huge huge.img 32M "
		">/dev/null")) {
		rc = find("huge.img", &e, err, sizeof(err));
		ok(rc == -EFBIG && strstr(err, "extlinux.conf is 10485760 bytes"),
		   "10 MB extlinux.conf on disk refused: %s", err);
	} else {
		skip("could not build huge.img");
	}
}

struct icase {
	const char *name, *mod, *fmt, *tool;
	enum boot_level level;
	const char *needle;
};

static void test_initramfs(void)
{
	static const struct icase ic[] = {
	    {"uncompressed cpio with virtio_blk.ko", "virtio_blk.ko", "raw", NULL, BOOT_PASS,
	     "(cpio)"},
	    {"gzip cpio with virtio_blk.ko.xz (BusyBox zcat)", "virtio_blk.ko.xz", "gz",
	     "/bin/busybox", BOOT_PASS, "(gzip)"},
	    {"zstd cpio with virtio_blk.ko.zst", "virtio_blk.ko.zst", "zst", "zstd", BOOT_PASS,
	     "(zstd)"},
	    {"microcode cpio then gzip cpio", "virtio_blk.ko", "early", "/bin/busybox", BOOT_PASS,
	     "(cpio+gzip)"},
	    {"cpio without virtio_blk", "", "raw", NULL, BOOT_FAIL, "read to its end"},
	    {"gzip cpio without virtio_blk", "", "gz", "/bin/busybox", BOOT_FAIL,
	     "read to its end"},
	    /* In the live environment: BusyBox has no lz4 applet. */
	    {"lz4: not readable, unknown", "virtio_blk.ko", "lz4", "/bin/busybox", BOOT_WARN,
	     "unknown: a module"},
	    /* A receiver on a host without BusyBox reads it with the system's
	     * own tool ("-PATH": only where PATH is absent). */
	    {"gzip cpio, no BusyBox: the system's gzip", "virtio_blk.ko", "gz", "-/bin/busybox",
	     BOOT_PASS, "(gzip)"},
	    {"truncated cpio: unknown", "virtio_blk.ko", "trunc", NULL, BOOT_WARN, "ends inside"},
	};
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(ic); i++) {
		const struct icase *c = &ic[i];

		if (c->tool && (c->tool[0] == '-'   ? !access(c->tool + 1, X_OK)
				: c->tool[0] == '/' ? access(c->tool, X_OK)
						    : !have(c->tool))) {
			skip(c->tool[0] == '-' ? "BusyBox is there: the path without it is not taken"
					       : c->tool);
			continue;
		}
		if (sh("tree ir%zu m; initrd ir%zu/boot/initrd.img-6.1-test '%s' %s; xl ir%zu "
		       "/boot/initrd.img-6.1-test; whole ir%zu.img ir%zu",
		       i, i, c->mod, c->fmt, i, i, i)) {
			skip("could not build the initramfs image");
			continue;
		}
		{
			char img[32];

			snprintf(img, sizeof(img), "ir%zu.img", i);
			inspect(img);
		}
		if (!ok(line_has(&rep, c->level, "virtio_blk:", c->needle), "initramfs: %s",
			c->name))
			dump(&rep);
	}
}

static void test_grub_gpt(void)
{
	static struct boot_entry e;
	char err[256];
	int rc;

	if (sh("tree gr y; rm -rf gr/boot/extlinux; mkdir -p gr/boot/grub; "
	       "printf x > gr/boot/initrd.img-6.1-test\n"
	       "cat > gr/boot/grub/grub.cfg <<EOF\n"
	       "if [ -s \\$prefix/grubenv ]; then\n  load_env\nfi\n"
	       "if [ \"\\${next_entry}\" ] ; then\n   set default=\"\\${next_entry}\"\n"
	       "else\n   set default=\"1\"\nfi\n"
	       "menuentry 'Debian GNU/Linux' --class debian \\$menuentry_id_option "
	       "'gnulinux-simple-$ROOTU' {\n"
	       "\tsearch --no-floppy --fs-uuid --set=root $ROOTU\n"
	       "\tlinux\t/boot/vmlinuz-6.0-old root=UUID=$ROOTU ro quiet\n"
	       "\tinitrd\t/boot/initrd.img-6.0-old\n}\n"
	       "menuentry 'Debian GNU/Linux, with Linux 6.1-test' --class debian "
	       "\\$menuentry_id_option 'gnulinux-6.1-test-advanced-$ROOTU' {\n"
	       "\tsearch --no-floppy --fs-uuid --set=root $ROOTU\n"
	       "\tlinux\t/boot/vmlinuz-6.1-test root=UUID=$ROOTU ro console=ttyS0\n"
	       "\tinitrd\t/boot/initrd.img-6.1-test\n}\n"
	       "EOF\n"
	       "gpt grub.img gr")) {
		skip("could not build grub.img");
		return;
	}
	rc = find("grub.img", &e, err, sizeof(err));
	is_int(rc, 0, "find_entry on grub.img");
	if (rc)
		note("err: %s", err);
	ok(!strcmp(e.title, "Debian GNU/Linux, with Linux 6.1-test"),
	   "set default=\"1\" picked the second entry: %s", e.title);
	ok(!strcmp(e.kernel.part, "vda2") && !strcmp(e.kernel.path, "/boot/vmlinuz-6.1-test"),
	   "grub kernel %s:%s", e.kernel.part, e.kernel.path);
	ok(e.ninitrd == 1 && !strcmp(e.initrd[0].path, "/boot/initrd.img-6.1-test"),
	   "grub initrd %s", e.initrd[0].path);
	ok(!strcmp(e.cmdline, ROOT " ro console=ttyS0"), "grub cmdline \"%s\"", e.cmdline);
	ok(!strcmp(e.config, "vda2:/boot/grub/grub.cfg"), "grub config %s", e.config);
	inspect("grub.img");
	if (!ok(rep.verdict == BOOT_PASS, "grub image: verdict PASS"))
		dump(&rep);
}

/* MBR with logical partitions, /boot separate, GRUB with BLS entries. */
static void test_mbr_bls(void)
{
	static struct boot_entry e;
	char err[256];
	int rc;

	if (access("/bin/busybox", X_OK)) {
		skip("/bin/busybox missing (gzip initramfs)");
		return;
	}
	if (sh("tree rr m; rm -rf rr/boot/*; mkdir -p rr/lib/modules/5.14.0-old\n"
	       "printf 'kernel/drivers/net/virtio_net.ko.xz:\\n' > "
	       "rr/lib/modules/5.14.0-old/modules.dep\n"
	       "cat > rr/etc/fstab <<EOF\n"
	       "UUID=$ROOTU / ext4 defaults 0 1\nUUID=$BOOTU /boot ext4 defaults 1 2\n"
	       "UUID=$SWAPU swap swap defaults 0 0\n"
	       "PARTUUID=deadbeef-05 /alt ext4 noauto 0 0\n"
	       "/dev/sda1 /data ext4 nofail 0 2\n/dev/vda1 /data2 ext4 defaults 0 2\n"
	       "/dev/mapper/vg-lv /lv xfs defaults 0 0\n"
	       "EOF\n"
	       "rm -rf bb; mkdir -p bb/grub2 bb/loader/entries\n"
	       "head -c 8192 /dev/zero | tr '\\0' k > bb/vmlinuz-5.14.0-old\n"
	       "printf 'CONFIG_VIRTIO_BLK=m\\nCONFIG_VIRTIO_PCI=m\\nCONFIG_VIRTIO_NET=m\\n' > "
	       "bb/config-5.14.0-old\n"
	       "initrd bb/initramfs-5.14.0-old.img virtio_blk.ko.xz gz\n"
	       "cat > bb/grub2/grub.cfg <<'EOF'\n"
	       "set pager=1\n"
	       "if [ -f ${config_directory}/grubenv ]; then\n"
	       "  load_env -f ${config_directory}/grubenv\nfi\n"
	       "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n"
	       "else\n   set default=\"${saved_entry}\"\nfi\n"
	       "insmod blscfg\nblscfg\n"
	       "EOF\n"
	       "printf '# GRUB Environment Block\\nsaved_entry=abc-5.14.0-old\\n"
	       "kernelopts=root=UUID=%%s ro crashkernel=auto\\n#####\\n' $ROOTU > "
	       "bb/grub2/grubenv\n"
	       "for v in old new; do cat > bb/loader/entries/abc-5.14.0-$v.conf <<EOF\n"
	       "title Linux (5.14.0-$v)\nversion 5.14.0-$v\nlinux /vmlinuz-5.14.0-$v\n"
	       "initrd /initramfs-5.14.0-$v.img \\$tuned_initrd\n"
	       "options \\$kernelopts \\$tuned_params\ngrub_class kernel\n"
	       "EOF\ndone\n"
	       "rm -f mbr.img; truncate -s 40M mbr.img\n"
	       "sfdisk -q mbr.img >/dev/null <<EOF\nlabel: dos\nlabel-id: 0xdeadbeef\n"
	       "start=2048, size=16384, type=83, bootable\nstart=18432, size=63488, type=5\n"
	       "start=20480, size=49152, type=83\nstart=71680, size=8192, type=82\nEOF\n"
	       "mkfs.ext4 -q -F -U $BOOTU -d bb -E offset=1048576 mbr.img 8M\n"
	       "mkfs.ext4 -q -F -U $ROOTU -d rr -E offset=10485760 mbr.img 24M\n"
	       "swap; dd if=swap.img of=mbr.img bs=512 seek=71680 conv=notrunc status=none\n"
	       "printf 'GRUB' | dd of=mbr.img bs=1 seek=384 conv=notrunc status=none\n")) {
		skip("could not build mbr.img");
		return;
	}
	rc = find("mbr.img", &e, err, sizeof(err));
	is_int(rc, 0, "find_entry on mbr.img (BLS)");
	if (rc)
		note("err: %s", err);
	ok(!strcmp(e.loader, "grub+bls") && !strcmp(e.title, "Linux (5.14.0-old)"),
	   "saved_entry picked BLS entry %s (%s)", e.title, e.loader);
	ok(!strcmp(e.kernel.part, "vda1") && !strcmp(e.kernel.path, "/vmlinuz-5.14.0-old"),
	   "kernel on the /boot partition: %s:%s", e.kernel.part, e.kernel.path);
	ok(e.ninitrd == 1 && !strcmp(e.initrd[0].part, "vda1"), "initrd on vda1");
	ok(!strcmp(e.cmdline, ROOT " ro crashkernel=auto"), "kernelopts from grubenv: \"%s\"",
	   e.cmdline);
	ok(!strstr(e.note, "tuned_"),
	   "$tuned_params and $tuned_initrd, unset as GRUB sees them, "
	   "are not noted: \"%s\"",
	   e.note);
	ok(!strcmp(e.config, "vda1:/grub2/grub.cfg"), "config on /boot: %s", e.config);

	inspect("mbr.img");
	expect_line(BOOT_PASS, "disk vda", "dos table, vda1 ext4, vda5 ext4, vda6 swap",
		    "MBR with logical partitions");
	expect_line(BOOT_PASS, "/boot: vda1", NULL, "/boot partition from fstab");
	expect_line(BOOT_PASS, "PARTUUID=deadbeef-05", "vda5", "MBR PARTUUID of a logical");
	expect_line(BOOT_WARN, "/dev/sda1", "nofail", "/dev/sda1 absent, nofail: WARN");
	expect_line(BOOT_WARN, "/dev/vda1 (/data2) is vda1 here", NULL, "kernel name: WARN");
	expect_line(BOOT_WARN, "/dev/mapper/vg-lv", "not checked", "LVM not checked: WARN");
	expect_line(BOOT_PASS, "virtio_blk: module, in initramfs", "(gzip)",
		    "virtio_blk.ko.xz found in gzip initramfs");
	expect_line(BOOT_FAIL, "virtio_pci: a module", "not in initramfs",
		    "virtio_pci=m missing from the initramfs: FAIL");
	expect_line(BOOT_PASS, "virtio_net: module", NULL, "virtio_net.ko.xz in modules.dep");
	expect_line(BOOT_PASS, "BIOS: boot code in sector 0 of vda", NULL, "MBR boot code seen");
}

/* RHEL 8 with UEFI: grub.cfg and grubenv on the ESP, BLS entries in root's /boot. */
static void test_esp_grub(void)
{
	static struct boot_entry e;
	char err[256];
	int rc;

	if (sh("tree eg y; rm -rf eg/boot/extlinux; mkdir -p eg/boot/loader/entries\n"
	       "mv eg/boot/vmlinuz-6.1-test eg/boot/vmlinuz-5.14.0-1\n"
	       "mv eg/boot/config-6.1-test eg/boot/config-5.14.0-1\n"
	       "mv eg/lib/modules/6.1-test eg/lib/modules/5.14.0-1\n"
	       "printf 'title RHEL (5.14.0-1)\\nversion 5.14.0-1\\nlinux /vmlinuz-5.14.0-1\\n"
	       "options $kernelopts\\n' > eg/boot/loader/entries/m-5.14.0-1.conf\n"
	       "printf 'set default=\"${saved_entry}\"\\nsearch --no-floppy --fs-uuid --set=root "
	       "%%s\\ninsmod blscfg\\nblscfg\\n' $ROOTU > grub.cfg\n"
	       "printf '# GRUB Environment Block\\nkernelopts=root=UUID=%%s ro\\n' $ROOTU > "
	       "grubenv\n"
	       "rm -f esp2.img; mkfs.vfat -C -i 1234ABCD esp2.img 8192 >/dev/null\n"
	       "mmd -i esp2.img ::/EFI ::/EFI/redhat\n"
	       "mcopy -i esp2.img x.efi ::/EFI/redhat/shimx64.efi\n"
	       "mcopy -i esp2.img grub.cfg grubenv ::/EFI/redhat/\n"
	       "gpt eg.img eg; dd if=esp2.img of=eg.img bs=512 seek=2048 conv=notrunc "
	       "status=none")) {
		skip("could not build eg.img");
		return;
	}
	rc = find("eg.img", &e, err, sizeof(err));
	is_int(rc, 0, "find_entry with grub.cfg on the ESP");
	if (rc)
		note("err: %s", err);
	ok(!strcmp(e.config, "vda1:/EFI/redhat/grub.cfg"), "config %s", e.config);
	ok(!strcmp(e.kernel.part, "vda2") && !strcmp(e.kernel.path, "/boot/vmlinuz-5.14.0-1"),
	   "BLS /vmlinuz found as root's /boot/vmlinuz: %s:%s", e.kernel.part, e.kernel.path);
	ok(!strcmp(e.cmdline, ROOT " ro"), "kernelopts from the ESP's grubenv: \"%s\"", e.cmdline);
	inspect("eg.img");
	expect_line(BOOT_PASS, "EFI system partition vda1", "/EFI/redhat/shimx64.efi",
		    "vendor loader listed");
	expect_line(BOOT_WARN, "no /EFI/BOOT/BOOT*.EFI", NULL, "missing fallback loader: WARN");
	ok(rep.no_esp_fallback, "... and flagged for adapt (a new machine has no boot entries)");
	expect_line(BOOT_PASS, "virtio_blk: built into kernel 5.14.0-1", NULL,
		    "kernel version from the BLS entry's file name");

	/* No configuration anywhere but loaders on the ESP (systemd-boot-like). */
	if (sh("tree nc y; rm -rf nc/boot/extlinux; gpt nc.img nc")) {
		skip("could not build nc.img");
		return;
	}
	inspect("nc.img");
	expect_line(BOOT_PASS, "bootloader: EFI loaders on vda1", NULL,
		    "ESP loaders count as a bootloader");
	expect_line(BOOT_WARN, "checking the newest kernel", "vda2:/boot/vmlinuz-6.1-test",
		    "no entry: the newest kernel is checked, and said so");
	expect_line(BOOT_PASS, "virtio_blk: built into kernel 6.1-test", NULL,
		    "virtio checked on the newest kernel");
}

/* ---- hostile partition tables ---------------------------------------- */

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static void le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
	p[3] = (uint8_t)(v >> 24);
}

static void le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

static void test_hostile_tables(void)
{
	static uint8_t img[1u << 20];
	char spec[512];
	const char *disks[2] = {spec, "nope=/nonexistent/disk.img"};
	uint8_t *h = img + 512;

	/* A GPT whose header CRC is right but asks for 2^32-1 entries. */
	memset(img, 0, sizeof(img));
	img[446 + 4] = 0xee;
	le32(img + 446 + 8, 1);
	le32(img + 446 + 12, 2047);
	img[510] = 0x55, img[511] = 0xaa;
	memcpy(h, "EFI PART", 8);
	le32(h + 8, 0x10000);
	le32(h + 12, 92);
	le64(h + 24, 1);
	le64(h + 32, 2047);
	le64(h + 72, 2);
	le32(h + 80, 0xffffffffu);
	le32(h + 84, 128);
	le32(h + 16, crc32(h, 92));
	put("gpthuge.img", img, sizeof(img));
	snprintf(spec, sizeof(spec), "vda=%s/gpthuge.img", tmp);
	is_int(boot_inspect(disks, 2, &rep), 0, "inspect a hostile GPT and a missing disk");
	expect_line(BOOT_FAIL, "entries of 128 bytes is not a sane table", NULL,
		    "2^32 GPT entries refused");
	expect_line(BOOT_FAIL, "disk nope: cannot open /nonexistent/disk.img", NULL,
		    "missing disk named");

	/* Bad CRCs everywhere. */
	h[20] ^= 1;
	le32(h + 16, 0x12345678);
	put("gptcrc.img", img, sizeof(img));
	snprintf(spec, sizeof(spec), "vda=%s/gptcrc.img", tmp);
	boot_inspect(disks, 1, &rep);
	expect_line(BOOT_FAIL, "primary GPT: GPT header CRC mismatch", "backup GPT",
		    "bad primary and missing backup reported");

	/* An MBR extended chain that points back at itself. */
	memset(img, 0, sizeof(img));
	img[446 + 4] = 0x05;
	le32(img + 446 + 8, 4);
	le32(img + 446 + 12, 1000);
	img[510] = 0x55, img[511] = 0xaa;
	h = img + 4 * 512;
	h[446 + 4] = 0x83;
	le32(h + 446 + 8, 1);
	le32(h + 446 + 12, 10);
	h[446 + 16 + 4] = 0x05;
	le32(h + 446 + 16 + 8, 0); /* next EBR: itself */
	h[510] = 0x55, h[511] = 0xaa;
	put("ebrloop.img", img, sizeof(img));
	snprintf(spec, sizeof(spec), "vda=%s/ebrloop.img", tmp);
	boot_inspect(disks, 1, &rep);
	expect_line(BOOT_PASS, "disk vda", "vda5", "self-referencing EBR: one logical, no loop");

	h[446 + 16 + 8] = 0x10; /* next EBR at 4+16: past a partition that ends too late */
	le32(h + 446 + 12, 1u << 30);
	put("ebrbig.img", img, sizeof(img));
	snprintf(spec, sizeof(spec), "vda=%s/ebrbig.img", tmp);
	boot_inspect(disks, 1, &rep);
	expect_line(BOOT_FAIL, "ends past the disk end", NULL, "partition past the end: FAIL");

	/* Tiny and empty disks. */
	put("tiny.img", img, 100);
	snprintf(spec, sizeof(spec), "vda=%s/tiny.img", tmp);
	boot_inspect(disks, 1, &rep);
	expect_line(BOOT_FAIL, "too small for a disk", NULL, "100-byte disk refused");
	memset(img, 0, sizeof(img));
	put("zero.img", img, sizeof(img));
	snprintf(spec, sizeof(spec), "vda=%s/zero.img", tmp);
	boot_inspect(disks, 1, &rep);
	expect_line(BOOT_FAIL, "root filesystem: no ext2/3/4 filesystem holds /etc/fstab", NULL,
		    "blank disk: no root, FAIL");
	ok(boot_inspect(NULL, 0, &rep) == -EINVAL, "no disks: -EINVAL");
}

/* An ESP whose /EFI directory's cluster chain loops onto itself. */
static void test_hostile_fat(void)
{
	if (sh("esp; cp esp.img esploop.img")) {
		skip("could not copy the ESP");
		return;
	}
	/* Every FAT entry made to point at cluster 2. */
	{
		char path[512];
		uint8_t bs[512], *fat;
		uint16_t rsvd, fatsz;
		int fd;
		size_t i, n;

		snprintf(path, sizeof(path), "%s/esploop.img", tmp);
		fd = open(path, O_RDWR);
		if (fd < 0 || pread(fd, bs, sizeof(bs), 0) != (ssize_t)sizeof(bs)) {
			skip("cannot open esploop.img");
			if (fd >= 0)
				close(fd);
			return;
		}
		rsvd = (uint16_t)(bs[14] | bs[15] << 8);
		fatsz = (uint16_t)(bs[22] | bs[23] << 8);
		n = (size_t)fatsz * 512;
		fat = calloc(1, n);
		if (!fat) {
			close(fd);
			return;
		}
		/* FAT12 (8 MiB at 4 sectors/cluster is under 4085 clusters):
		 * every entry = 0x002, i.e. each cluster links to cluster 2. */
		for (i = 0; i + 2 < n; i += 3) {
			fat[i] = 0x02;
			fat[i + 1] = 0x20;
			fat[i + 2] = 0x00;
		}
		if (pwrite(fd, fat, n, (off_t)rsvd * 512) != (ssize_t)n)
			note("pwrite failed");
		free(fat);
		close(fd);
	}
	if (sh("tree fl y; xl fl; gpt fl.img fl; dd if=esploop.img of=fl.img bs=512 seek=2048 "
	       "conv=notrunc status=none")) {
		skip("could not build fl.img");
		return;
	}
	inspect("fl.img");
	if (!ok(line_has(&rep, BOOT_WARN, "EFI system partition vda1", NULL) ||
		    line_has(&rep, BOOT_PASS, "EFI system partition vda1", NULL),
		"looping FAT chains end in a line, not a hang"))
		dump(&rep);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	uint64_t t0 = time_now_ms();

	test_parsers();
	test_hostile_text();

	snprintf(tmp, sizeof(tmp), "%s/ferry-test-boot-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		skip("no temporary directory");
		return tap_done();
	}
	if (!have("sfdisk") || !have("mkfs.ext4") || !have("mkfs.vfat") || !have("mcopy") ||
	    !have("mkswap") || !have("cpio")) {
		skip("sfdisk, mkfs.ext4, mkfs.vfat, mtools, mkswap and cpio are needed for images");
	} else {
		test_good_gpt();
		test_bad_variants();
		test_initramfs();
		test_grub_gpt();
		test_mbr_bls();
		test_esp_grub();
		test_hostile_tables();
		test_hostile_fat();
	}
	note("test_boot took %llu ms", (unsigned long long)(time_now_ms() - t0));
	if (!getenv("KEEP"))
		sh("cd /; rm -rf \"$T\"");
	return tap_done();
}
