/*
 * test_adapt.c - the adapt phase's text rewrites on configuration files
 * as CentOS, RHEL, Ubuntu, Debian and SUSE installers and cloud images
 * write them: exact expected output for each, what must stay untouched
 * (comments, spacing, other fields, words that are not device paths),
 * and the limits (too large, output too small, grubenv length).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapt/adapt.h"
#include "adapt_phase.h"
#include "tap.h"

static char outbuf[ADAPT_OUT_MAX];

/* The old machine's names and what they are on the new disks. */
static int map(void *arg, const char *dev, char *out, size_t cap)
{
	static const char *const tab[][2] = {
		{"/dev/sda1", "UUID=0b1c2d3e-0000-4000-8000-000000000001"},
		{"/dev/sda2", "UUID=0b1c2d3e-0000-4000-8000-000000000002"},
		{"/dev/sda3", "UUID=0b1c2d3e-0000-4000-8000-000000000003"},
		{"/dev/xvda1", "UUID=7a7a7a7a-1111-4111-8111-111111111111"},
		{"/dev/hda1", "UUID=5d5d5d5d-2222-4222-8222-222222222222"},
		{"/dev/vda1", "UUID=6e6e6e6e-3333-4333-8333-333333333333"},
		{"/dev/sdb1", "PARTUUID=11223344-01"},
	};
	size_t i;

	(void)arg;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(dev, tab[i][0])) {
			snprintf(out, cap, "%s", tab[i][1]);
			return 1;
		}
	return 0;
}

static struct adapt_buf out;
static struct adapt_notes notes;

static void reset(void)
{
	adapt_buf_init(&out, outbuf, sizeof(outbuf));
	memset(&notes, 0, sizeof(notes));
}

static int same(const char *got, const char *want, const char *name)
{
	int r = ok(!strcmp(got, want), "%s", name);

	if (!r)
		printf("# got:\n%s\n# want:\n%s\n", got, want);
	return r;
}


/* The policy of --adapt-ip 192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53 with
 * eth0 as the new primary NIC. */
static void static_net(struct adapt_net *n)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->primary, sizeof(n->primary), "eth0");
	n->to_dhcp = 1;
	snprintf(n->st_addr, sizeof(n->st_addr), "192.0.2.10/24");
	snprintf(n->st_gw, sizeof(n->st_gw), "192.0.2.1");
	snprintf(n->st_dns, sizeof(n->st_dns), "192.0.2.53");
}
static void test_fstab(void)
{
	/* Debian 12 on VMware, as the installer wrote it (by device). */
	static const char in[] =
	    "# /etc/fstab: static file system information.\n"
	    "#\n"
	    "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
	    "/dev/sda1\t/               ext4    errors=remount-ro 0       1\n"
	    "/dev/sda2       none            swap    sw              0       0\n"
	    "/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0\n"
	    "UUID=abcd-1234  /boot/efi       vfat    umask=0077      0       1\n"
	    "proc /proc proc defaults 0 0\n"
	    "#/dev/sda3 /old ext4 defaults 0 2\n"
	    "  /dev/sdb1   /data xfs defaults,nofail 0 2";
	static const char want[] =
	    "# /etc/fstab: static file system information.\n"
	    "#\n"
	    "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
	    "UUID=0b1c2d3e-0000-4000-8000-000000000001\t/               ext4    errors=remount-ro 0       1\n"
	    "UUID=0b1c2d3e-0000-4000-8000-000000000002       none            swap    sw              0       0\n"
	    "/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0\n"
	    "UUID=abcd-1234  /boot/efi       vfat    umask=0077      0       1\n"
	    "proc /proc proc defaults 0 0\n"
	    "#/dev/sda3 /old ext4 defaults 0 2\n"
	    "  PARTUUID=11223344-01   /data xfs defaults,nofail 0 2";

	reset();
	is_int(adapt_fstab(in, strlen(in), map, NULL, &out, &notes), 3, "fstab: 3 lines changed");
	same(out.p, want, "fstab: only the device fields change; comments, cdrom, UUID kept");
	is_int(notes.n, 3, "fstab: one note per change");
	ok(strstr(notes.note[0], "line 4") && strstr(notes.note[0], "(/)") &&
	       strstr(notes.note[0], "/dev/sda1 -> UUID=0b1c2d3e"),
	   "fstab: the note names the line, mount point and both names: %s", notes.note[0]);

	/* CentOS 7 on Xen (xvda), a LABEL and an LVM name stay. */
	static const char c7[] = "/dev/xvda1 / xfs defaults 0 0\n"
				 "LABEL=boot /boot xfs defaults 0 0\n"
				 "/dev/mapper/centos-swap swap swap defaults 0 0\n";
	reset();
	is_int(adapt_fstab(c7, strlen(c7), map, NULL, &out, &notes), 1, "fstab xvda: 1 change");
	same(out.p,
	     "UUID=7a7a7a7a-1111-4111-8111-111111111111 / xfs defaults 0 0\n"
	     "LABEL=boot /boot xfs defaults 0 0\n"
	     "/dev/mapper/centos-swap swap swap defaults 0 0\n",
	     "fstab xvda: LABEL= and /dev/mapper kept");

	/* An old SUSE with IDE names. */
	static const char suse[] = "/dev/hda1  /  ext3  acl,user_xattr  1 1\n";
	reset();
	adapt_fstab(suse, strlen(suse), map, NULL, &out, &notes);
	same(out.p, "UUID=5d5d5d5d-2222-4222-8222-222222222222  /  ext3  acl,user_xattr  1 1\n",
	     "fstab hda: SUSE layout");

	/* Nothing to do: identical output, 0 changes. */
	static const char none[] = "UUID=x / ext4 defaults 0 1\n";
	reset();
	is_int(adapt_fstab(none, strlen(none), map, NULL, &out, &notes), 0, "fstab: no change");
	same(out.p, none, "fstab: unchanged text copied");
}

static void test_crypttab(void)
{
	static const char in[] = "# <target name> <source device> <key file> <options>\n"
				 "sda3_crypt /dev/sda3 none luks,discard\n"
				 "swap /dev/sda2 /dev/urandom swap,cipher=aes-xts-plain64\n"
				 "home UUID=1234 none luks\n";
	static const char want[] = "# <target name> <source device> <key file> <options>\n"
				   "sda3_crypt UUID=0b1c2d3e-0000-4000-8000-000000000003 none luks,discard\n"
				   "swap UUID=0b1c2d3e-0000-4000-8000-000000000002 /dev/urandom swap,cipher=aes-xts-plain64\n"
				   "home UUID=1234 none luks\n";

	reset();
	is_int(adapt_crypttab(in, strlen(in), map, NULL, &out, &notes), 2, "crypttab: 2 changes");
	same(out.p, want, "crypttab: the source field only; /dev/urandom key file kept");
	ok(strstr(notes.note[0], "(sda3_crypt)") != NULL, "crypttab: note names the mapping");
}

static void test_words(void)
{
	static const char *const keys[] = {"root", "resume", NULL};
	/* A grub.cfg made with GRUB_DISABLE_LINUX_UUID=true (Debian). */
	static const char grub[] =
	    "menuentry 'Debian GNU/Linux' --class debian {\n"
	    "\tset root='hd0,msdos1'\n"
	    "\tsearch --no-floppy --fs-uuid --set=root 0b1c2d3e-0000-4000-8000-000000000001\n"
	    "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=/dev/sda1 ro  quiet resume=/dev/sda2\n"
	    "\tinitrd\t/boot/initrd.img-6.1.0-18-amd64\n"
	    "}\n"
	    "# chroot=/dev/sda1 is no key; noroot=/dev/sda1 neither\n";
	static const char want[] =
	    "menuentry 'Debian GNU/Linux' --class debian {\n"
	    "\tset root='hd0,msdos1'\n"
	    "\tsearch --no-floppy --fs-uuid --set=root 0b1c2d3e-0000-4000-8000-000000000001\n"
	    "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=0b1c2d3e-0000-4000-8000-000000000001 ro  quiet resume=UUID=0b1c2d3e-0000-4000-8000-000000000002\n"
	    "\tinitrd\t/boot/initrd.img-6.1.0-18-amd64\n"
	    "}\n"
	    "# chroot=/dev/sda1 is no key; noroot=/dev/sda1 neither\n";

	reset();
	is_int(adapt_words(grub, strlen(grub), keys, map, NULL, &out, &notes), 2,
	       "grub.cfg: root= and resume= changed");
	same(out.p, want, "grub.cfg: set root='hd0,msdos1' and --set=root kept");

	/* extlinux.conf APPEND, and a BLS entry's options (RHEL 8). */
	static const char ext[] = "LABEL linux\n  KERNEL /boot/vmlinuz\n  APPEND root=/dev/xvda1 console=ttyS0\n";
	reset();
	adapt_words(ext, strlen(ext), keys, map, NULL, &out, &notes);
	same(out.p,
	     "LABEL linux\n  KERNEL /boot/vmlinuz\n  APPEND root=UUID=7a7a7a7a-1111-4111-8111-111111111111 console=ttyS0\n",
	     "extlinux: APPEND root=");
	static const char bls[] = "title CentOS\nlinux /vmlinuz-4.18.0\noptions root=/dev/sda1 ro crashkernel=auto\n";
	reset();
	adapt_words(bls, strlen(bls), keys, map, NULL, &out, &notes);
	ok(strstr(out.p, "options root=UUID=0b1c2d3e-0000-4000-8000-000000000001 ro") != NULL,
	   "BLS options: root=");

	/* initramfs-tools conf.d/resume and a quoted value. */
	static const char *const rk[] = {"RESUME", NULL};
	static const char res[] = "RESUME=/dev/sda2\n";
	reset();
	adapt_words(res, strlen(res), rk, map, NULL, &out, &notes);
	same(out.p, "RESUME=UUID=0b1c2d3e-0000-4000-8000-000000000002\n", "RESUME= (initramfs-tools)");

	/* An unknown device is left; a value with $ is never offered. */
	static const char unk[] = "linux /vmlinuz root=/dev/sdz9 root=$dev\n";
	reset();
	is_int(adapt_words(unk, strlen(unk), keys, map, NULL, &out, &notes), 0,
	       "unmapped devices and variables left");
	same(out.p, unk, "unmapped: unchanged");
}

static void test_grub_default(void)
{
	static const char in[] = "GRUB_DEFAULT=0\n"
				 "GRUB_TIMEOUT=5\n"
				 "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
				 "GRUB_CMDLINE_LINUX=\"root=/dev/sda1 console=ttyS0\"\n"
				 "GRUB_DISABLE_LINUX_UUID=true\n"
				 "#GRUB_DISABLE_LINUX_UUID=true\n"
				 "GRUB_DISABLE_LINUX_UUID=false\n";
	static const char want[] =
	    "GRUB_DEFAULT=0\n"
	    "GRUB_TIMEOUT=5\n"
	    "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
	    "GRUB_CMDLINE_LINUX=\"root=UUID=0b1c2d3e-0000-4000-8000-000000000001 console=ttyS0\"\n"
	    "# ferry-adapt: GRUB_DISABLE_LINUX_UUID=true\n"
	    "#GRUB_DISABLE_LINUX_UUID=true\n"
	    "GRUB_DISABLE_LINUX_UUID=false\n";

	reset();
	is_int(adapt_grub_default(in, strlen(in), map, NULL, &out, &notes), 2,
	       "default/grub: root= in the quotes and DISABLE_LINUX_UUID");
	same(out.p, want, "default/grub: exact");
}

static void test_grubenv(void)
{
	char env[1024], *p;
	size_t n;

	/* RHEL 8: kernelopts in grubenv. */
	memset(env, '#', sizeof(env));
	n = (size_t)snprintf(env, sizeof(env),
			     "# GRUB Environment Block\nsaved_entry=abc-4.18.0\n"
			     "kernelopts=root=/dev/sda1 ro resume=/dev/sda2 rhgb quiet \n");
	env[n] = '#';
	reset();
	is_int(adapt_grubenv(env, sizeof(env), map, NULL, &out, &notes), 2, "grubenv: 2 words");
	is_int(out.len, 1024, "grubenv: still 1024 bytes");
	ok(strstr(out.p, "kernelopts=root=UUID=0b1c2d3e-0000-4000-8000-000000000001 ro resume=UUID=") !=
	       NULL,
	   "grubenv: kernelopts rewritten");
	ok(out.p[1023] == '#', "grubenv: padded with #");

	/* A full block cannot grow. */
	memset(env, '#', sizeof(env));
	n = (size_t)snprintf(env, sizeof(env), "# GRUB Environment Block\nkernelopts=root=/dev/sda1 ");
	env[n] = 'x';
	for (p = env + n; p < env + sizeof(env) - 1; p++)
		*p = 'x';
	env[sizeof(env) - 1] = '\n';
	reset();
	is_int(adapt_grubenv(env, sizeof(env), map, NULL, &out, &notes), -ENOSPC,
	       "grubenv: -ENOSPC when it would outgrow its block");
	reset();
	is_int(adapt_grubenv("not an env", 10, map, NULL, &out, &notes), -EINVAL,
	       "grubenv: not a block");
}

static void test_limits(void)
{
	static char big[ADAPT_TEXT_MAX + 1];
	char small[16];
	static const char in[] = "/dev/sda1 / ext4 defaults 0 1\n";

	memset(big, 'a', sizeof(big));
	reset();
	is_int(adapt_fstab(big, sizeof(big), map, NULL, &out, &notes), -EFBIG, "over 256 KiB: -EFBIG");
	adapt_buf_init(&out, small, sizeof(small));
	is_int(adapt_fstab(in, strlen(in), map, NULL, &out, &notes), -ENOSPC, "small out: -ENOSPC");
	ok(strlen(small) < sizeof(small), "small out stays a string");
}

static void test_udev(void)
{
	/* CentOS 6 / Debian 8, generated by the persistent-net generator. */
	static const char in[] =
	    "# This file was automatically generated by the /lib/udev/write_net_rules\n"
	    "\n"
	    "# PCI device 0x8086:0x100e (e1000)\n"
	    "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"00:0c:29:aa:bb:01\", "
	    "ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n"
	    "\n"
	    "# PCI device 0x8086:0x100e (e1000)\n"
	    "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"00:0c:29:aa:bb:02\", "
	    "ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth1\"\n";
	struct adapt_net n;

	memset(&n, 0, sizeof(n));
	snprintf(n.new_mac, sizeof(n.new_mac), "52:54:00:12:34:56");
	snprintf(n.primary, sizeof(n.primary), "eth0");
	reset();
	is_int(adapt_udev_net(in, strlen(in), &n, &out, &notes), 2, "udev: 2 rules changed");
	ok(strstr(out.p, "ATTR{address}==\"52:54:00:12:34:56\", ATTR{dev_id}==\"0x0\", "
			 "ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"") != NULL,
	   "udev: eth0's rule now names the new MAC");
	ok(strstr(out.p, "# ferry-adapt: SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", "
			 "ATTR{address}==\"00:0c:29:aa:bb:02\"") != NULL,
	   "udev: eth1's rule commented out");
	ok(!strstr(out.p, "00:0c:29:aa:bb:01"), "udev: the old MAC is gone");
	same(n.bound, "eth0", "udev: bound name reported");
	is_int(n.nifs, 2, "udev: learned eth0 and eth1");

	/* Without the new NIC's MAC: all commented out. */
	memset(&n, 0, sizeof(n));
	reset();
	adapt_udev_net(in, strlen(in), &n, &out, &notes);
	ok(!strstr(out.p, "\nSUBSYSTEM"), "udev: no MAC known, every rule commented out");
	same(n.bound, "", "udev: nothing bound");
}

static void test_ifcfg(void)
{
	/* CentOS 7 on VMware, static, with the installer's HWADDR. */
	static const char in[] = "TYPE=Ethernet\n"
				 "BOOTPROTO=none\n"
				 "DEFROUTE=yes\n"
				 "NAME=ens192\n"
				 "UUID=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\n"
				 "DEVICE=ens192\n"
				 "ONBOOT=yes\n"
				 "HWADDR=00:0C:29:AA:BB:01\n"
				 "IPADDR=192.168.50.10\n"
				 "PREFIX=24\n"
				 "GATEWAY=192.168.50.1\n"
				 "DNS1=192.168.50.2\n";
	static const char want[] = "TYPE=Ethernet\n"
				   "BOOTPROTO=dhcp\n"
				   "DEFROUTE=yes\n"
				   "NAME=ens192\n"
				   "UUID=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\n"
				   "DEVICE=ens192\n"
				   "ONBOOT=yes\n"
				   "# ferry-adapt: HWADDR=00:0C:29:AA:BB:01\n"
				   "# ferry-adapt: IPADDR=192.168.50.10\n"
				   "# ferry-adapt: PREFIX=24\n"
				   "# ferry-adapt: GATEWAY=192.168.50.1\n"
				   "DNS1=192.168.50.2\n";
	struct adapt_net n;

	memset(&n, 0, sizeof(n));
	reset();
	adapt_ifcfg(in, strlen(in), "ens192", &n, &out, &notes);
	is_int(n.nifs, 1, "ifcfg: learned one interface");
	ok(n.ifs[0].gw && n.ifs[0].is_static && !strcmp(n.ifs[0].name, "ens192"),
	   "ifcfg: ens192, static, with the gateway");
	same(adapt_net_primary(&n), "ens192", "ifcfg: primary is ens192");

	snprintf(n.primary, sizeof(n.primary), "ens192");
	n.to_dhcp = 1;
	reset();
	is_int(adapt_ifcfg(in, strlen(in), "ens192", &n, &out, &notes), 5, "ifcfg: 5 changes");
	same(out.p, want, "ifcfg: MAC gone, static -> dhcp");

	/* Not the primary: only the MAC goes; SUSE quoting. */
	static const char suse[] = "BOOTPROTO='static'\nSTARTMODE='auto'\nIPADDR='10.1.1.5/24'\n"
				   "MACADDR='00:0c:29:aa:bb:02'\n";
	reset();
	is_int(adapt_ifcfg(suse, strlen(suse), "eth1", &n, &out, &notes), 1, "ifcfg eth1: MAC only");
	same(out.p,
	     "BOOTPROTO='static'\nSTARTMODE='auto'\nIPADDR='10.1.1.5/24'\n"
	     "# ferry-adapt: MACADDR='00:0c:29:aa:bb:02'\n",
	     "ifcfg eth1: static kept");
}

static void test_nm(void)
{
	/* RHEL 9 keyfile as the installer writes it. */
	static const char in[] = "[connection]\n"
				 "id=ens192\n"
				 "uuid=2b0e1a70-0e44-4a51-a3d2-52ad3d3c4c0e\n"
				 "type=ethernet\n"
				 "interface-name=ens192\n"
				 "\n"
				 "[ethernet]\n"
				 "mac-address=00:0C:29:AA:BB:01\n"
				 "\n"
				 "[ipv4]\n"
				 "address1=192.168.50.10/24,192.168.50.1\n"
				 "dns=192.168.50.2;\n"
				 "method=manual\n"
				 "\n"
				 "[ipv6]\n"
				 "addr-gen-mode=eui64\n"
				 "method=auto\n";
	static const char want[] = "[connection]\n"
				   "id=ens192\n"
				   "uuid=2b0e1a70-0e44-4a51-a3d2-52ad3d3c4c0e\n"
				   "type=ethernet\n"
				   "# ferry-adapt: interface-name=ens192\n"
				   "\n"
				   "[ethernet]\n"
				   "# ferry-adapt: mac-address=00:0C:29:AA:BB:01\n"
				   "\n"
				   "[ipv4]\n"
				   "# ferry-adapt: address1=192.168.50.10/24,192.168.50.1\n"
				   "dns=192.168.50.2;\n"
				   "method=auto\n"
				   "\n"
				   "[ipv6]\n"
				   "addr-gen-mode=eui64\n"
				   "method=auto\n";
	struct adapt_net n;

	memset(&n, 0, sizeof(n));
	reset();
	adapt_nm_keyfile(in, strlen(in), &n, &out, &notes);
	ok(n.nifs == 1 && n.ifs[0].gw && n.ifs[0].is_static, "nm: learned ens192 static with gateway");
	snprintf(n.primary, sizeof(n.primary), "%s", adapt_net_primary(&n));
	n.to_dhcp = 1;
	reset();
	is_int(adapt_nm_keyfile(in, strlen(in), &n, &out, &notes), 4, "nm: 4 changes");
	same(out.p, want, "nm: MAC and name gone, ipv4 auto, ipv6 method untouched");
}

/* The static setup in NetworkManager keyfiles (RHEL 9, Fedora, Ubuntu
 * desktop): method=manual, address1=, dns= after the [ipv4] header. */
static void test_nm_static(void)
{
	/* Rocky 9 cloud image: DHCP, bound by name and MAC. */
	static const char dhcp[] = "[connection]\nid=System eth0\ntype=ethernet\n"
				   "interface-name=eth0\n\n[ethernet]\n"
				   "mac-address=52:54:00:AA:BB:01\n\n[ipv4]\nmethod=auto\n\n"
				   "[ipv6]\nmethod=auto\n";
	static const char dhcp_want[] = "[connection]\nid=System eth0\ntype=ethernet\n"
					"# ferry-adapt: interface-name=eth0\n\n[ethernet]\n"
					"# ferry-adapt: mac-address=52:54:00:AA:BB:01\n\n[ipv4]\n"
					"# ferry-adapt: the static setup asked for\n"
					"method=manual\naddress1=192.0.2.10/24,192.0.2.1\n"
					"dns=192.0.2.53;\n"
					"# ferry-adapt: method=auto\n\n[ipv6]\nmethod=auto\n";
	/* RHEL 9 installer: an old static address, its routes and DNS. */
	static const char stat[] = "[connection]\nid=ens192\ntype=ethernet\n"
				   "interface-name=ens192\n\n[ipv4]\n"
				   "address1=192.168.50.10/24,192.168.50.1\ndns=192.168.50.2;\n"
				   "dns-search=example.org;\nmethod=manual\n"
				   "route1=10.0.0.0/8,192.168.50.254\nroute1_options=mtu=1400\n"
				   "route-metric=100\n";
	static const char stat_want[] =
	    "[connection]\nid=ens192\ntype=ethernet\n"
	    "# ferry-adapt: interface-name=ens192\n\n[ipv4]\n"
	    "# ferry-adapt: the static setup asked for\n"
	    "method=manual\naddress1=192.0.2.10/24\n"
	    "# ferry-adapt: address1=192.168.50.10/24,192.168.50.1\n"
	    "# ferry-adapt: dns=192.168.50.2;\n"
	    "dns-search=example.org;\n# ferry-adapt: method=manual\n"
	    "# ferry-adapt: route1=10.0.0.0/8,192.168.50.254\n"
	    "# ferry-adapt: route1_options=mtu=1400\nroute-metric=100\n";
	/* Ubuntu desktop: no interface-name, no [ipv4], no final newline. */
	static const char bare[] = "[connection]\nid=Wired connection 1\ntype=ethernet\n"
				   "autoconnect-priority=-999";
	static const char bare_want[] = "[connection]\nid=Wired connection 1\ntype=ethernet\n"
					"autoconnect-priority=-999\n\n[ipv4]\n"
					"# ferry-adapt: the static setup asked for\n"
					"method=manual\naddress1=192.0.2.10/24,192.0.2.1\n"
					"dns=192.0.2.53;\n";
	static const char wifi[] = "[connection]\nid=home\ntype=wifi\n\n[wifi]\nssid=home\n"
				   "\n[ipv4]\nmethod=auto\n";
	static const char eth1[] = "[connection]\nid=eth1\ntype=ethernet\ninterface-name=eth1\n"
				   "\n[ipv4]\naddress1=10.1.0.5/16\nmethod=manual\n";
	static const char eth1_want[] = "[connection]\nid=eth1\ntype=ethernet\n"
					"# ferry-adapt: interface-name=eth1\n"
					"\n[ipv4]\naddress1=10.1.0.5/16\nmethod=manual\n";
	struct adapt_net n;

	static_net(&n);
	reset();
	is_int(adapt_nm_keyfile(dhcp, strlen(dhcp), &n, &out, &notes), 4,
	       "nm static over auto: 4 changes");
	same(out.p, dhcp_want, "nm: method=manual, address1 with gateway, dns; auto out");
	ok(n.st_done && notes.n == 4 &&
	       strstr(notes.note[3], "line 9: [ipv4] method=manual, static 192.0.2.10/24 gateway "
				     "192.0.2.1 dns 192.0.2.53 (eth0, as asked)"),
	   "nm static: written and noted (%s)", notes.n ? notes.note[notes.n - 1] : "none");

	/* The profile for another interface keeps its addresses. */
	n.st_done = 0;
	reset();
	is_int(adapt_nm_keyfile(eth1, strlen(eth1), &n, &out, &notes), 1,
	       "nm: another interface's profile: only its name goes");
	same(out.p, eth1_want, "nm: eth1's [ipv4] untouched");
	ok(!n.st_done, "nm: ... and the static setup is not written there");

	snprintf(n.primary, sizeof(n.primary), "ens192");
	n.st_gw[0] = n.st_dns[0] = 0;
	reset();
	is_int(adapt_nm_keyfile(stat, strlen(stat), &n, &out, &notes), 7,
	       "nm static over static: 7 changes");
	same(out.p, stat_want, "nm: the old address, DNS, method, routes out; dns-search kept");

	/* No profile names an interface, none is known: the Ethernet one. */
	n.primary[0] = 0;
	snprintf(n.st_gw, sizeof(n.st_gw), "192.0.2.1");
	snprintf(n.st_dns, sizeof(n.st_dns), "192.0.2.53");
	n.st_done = 0;
	reset();
	is_int(adapt_nm_keyfile(bare, strlen(bare), &n, &out, &notes), 1,
	       "nm: no [ipv4]: 1 change");
	same(out.p, bare_want, "nm: an [ipv4] section added at the end");
	ok(n.st_done && notes.n == 1 && strstr(notes.note[0], "end: [ipv4] added"),
	   "nm: the added section noted (%s)", notes.n ? notes.note[0] : "none");
	n.st_done = 0;
	reset();
	is_int(adapt_nm_keyfile(wifi, strlen(wifi), &n, &out, &notes), 0,
	       "nm: a Wi-Fi profile does not take the static setup");
	ok(!n.st_done && out.len == strlen(wifi) && !memcmp(out.p, wifi, out.len),
	   "nm: ... and is copied unchanged");
}

/* A keyfile ferry does not understand is left as it is, with a reason. */
static void test_nm_bounds(void)
{
	static char in[ADAPT_NM_LINE_MAX + 256];
	struct adapt_net n;
	size_t k;

	memset(&n, 0, sizeof(n));
	snprintf(n.primary, sizeof(n.primary), "eth0");
	n.to_dhcp = 1;
	snprintf(n.st_addr, sizeof(n.st_addr), "192.0.2.10/24");
	k = (size_t)snprintf(in, sizeof(in),
			     "[connection]\ninterface-name=eth0\n[ipv4]\n"
			     "method=auto\n[802-1x]\nca-cert=");
	memset(in + k, 'A', ADAPT_NM_LINE_MAX);
	k += ADAPT_NM_LINE_MAX;
	in[k++] = '\n';
	in[k] = 0;
	reset();
	is_int(adapt_nm_keyfile(in, k, &n, &out, &notes), -E2BIG, "nm: a line over the limit");
	ok(!n.st_done && !out.len && strstr(notes.why, "line 6: 16392 bytes, over the 16384-byte"),
	   "nm: ... refused, nothing written, the reason names the line (%s)", notes.why);

	reset();
	snprintf(in, sizeof(in), "[connection]\ninterface-name=eth0\n[ipv4\nmethod=auto\n");
	is_int(adapt_nm_keyfile(in, strlen(in), &n, &out, &notes), -EINVAL,
	       "nm: a header without ']'");
	ok(strstr(notes.why, "line 3: a section header without ']'") != NULL, "nm: ... named (%s)",
	   notes.why);

	reset();
	k = (size_t)snprintf(in, sizeof(in), "[connection]\ninterface-name=eth0\n[");
	memset(in + k, 's', ADAPT_NM_NAME_MAX + 1);
	snprintf(in + k + ADAPT_NM_NAME_MAX + 1, 8, "]\n");
	is_int(adapt_nm_keyfile(in, strlen(in), &n, &out, &notes), -EINVAL,
	       "nm: a section name over the limit");
	ok(strstr(notes.why, "line 3: a section name of 129 bytes") != NULL, "nm: ... named (%s)",
	   notes.why);
}

/* A rewritten keyfile keeps mode 0600 and its owner (NetworkManager
 * ignores it otherwise), even under a wide umask and over a temporary
 * file an interrupted run left with another mode. */
static void test_nm_mode(void)
{
	static char inb[ADAPT_TEXT_MAX + 1];
	static const char kf[] = "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n"
				 "[ipv4]\nmethod=auto\n";
	static const char rel[] = "/etc/NetworkManager/system-connections/eth0.nmconnection";
	char dir[] = "/tmp/ferry-test-nm-XXXXXX", p[PATH_MAX];
	struct adapt_net n;
	struct stat st, st2, st3;
	struct ax x;
	size_t len;
	mode_t old;
	int fd, r;

	memset(&x, 0, sizeof(x));
	x.rootfd = -1;
	if (!mkdtemp(dir)) {
		ok(0, "nm mode: mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(x.root, sizeof(x.root), "%s", dir);
	x.rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ok(x.rootfd >= 0 && !ax_mkdirs(&x, "/etc/NetworkManager/system-connections"),
	   "nm mode: a root with system-connections");
	snprintf(p, sizeof(p), "%s%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd >= 0 && write(fd, kf, strlen(kf)) == (ssize_t)strlen(kf) && !fchmod(fd, 0600),
	   "nm mode: a 0600 keyfile");
	if (fd >= 0)
		close(fd);
	snprintf(p, sizeof(p), "%s%s.ferry-tmp", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd >= 0)
		close(fd);
	chmod(p, 0644);
	old = umask(0277);
	memset(&n, 0, sizeof(n));
	snprintf(n.primary, sizeof(n.primary), "eth0");
	snprintf(n.st_addr, sizeof(n.st_addr), "192.0.2.10/24");
	reset();
	/* What ax_edit does: read, rewrite, keep the original, replace. */
	r = ax_read_rel(&x, rel, inb, sizeof(inb), &len, &st);
	ok(!r && adapt_nm_keyfile(inb, len, &n, &out, &notes) == 3 && n.st_done,
	   "nm mode: rewritten");
	ok(!ax_keep_orig(&x, rel, inb, len, &st) && !ax_write_rel(&x, rel, out.p, out.len, &st),
	   "nm mode: written, the original kept");
	umask(old);
	snprintf(p, sizeof(p), "%s%s", dir, rel);
	ok(!stat(p, &st2) && (st2.st_mode & 07777) == 0600 && st2.st_uid == st.st_uid,
	   "nm mode: the keyfile is still 0600 (%o), same owner", (unsigned)(st2.st_mode & 07777));
	snprintf(p, sizeof(p), "%s%s/system-connections/eth0.nmconnection.ferry-orig", dir,
		 AX_ORIG_DIR "/etc/NetworkManager");
	ok(!stat(p, &st3) && (st3.st_mode & 07777) == 0600, "nm mode: the original kept 0600 (%o)",
	   (unsigned)(st3.st_mode & 07777));
	snprintf(p, sizeof(p), "%s%s", dir, rel);
	len = 0;
	fd = open(p, O_RDONLY);
	if (fd >= 0) {
		ssize_t k = read(fd, inb, sizeof(inb) - 1);

		len = k > 0 ? (size_t)k : 0;
		close(fd);
	}
	inb[len] = 0;
	ok(strstr(inb, "method=manual\naddress1=192.0.2.10/24\n") != NULL,
	   "nm mode: the new keyfile holds the static setup");
	ax_remove_tree(&x, "/etc");
	ax_remove_tree(&x, "/var");
	close(x.rootfd);
	rmdir(dir);
}

static void test_netplan(void)
{
	/* Ubuntu cloud image (cloud-init's 50-cloud-init.yaml). */
	static const char cloud[] = "network:\n"
				    "    ethernets:\n"
				    "        ens3:\n"
				    "            dhcp4: true\n"
				    "            match:\n"
				    "                macaddress: fa:16:3e:11:22:33\n"
				    "            set-name: ens3\n"
				    "    version: 2\n";
	static const char cloud_want[] = "network:\n"
					 "    ethernets:\n"
					 "        ens3:\n"
					 "            dhcp4: true\n"
					 "            match:\n"
					 "                name: \"ens3\"\n"
					 "            set-name: ens3\n"
					 "    version: 2\n";
	/* Ubuntu server installer, static. */
	static const char stat[] = "# This is the network config written by 'subiquity'\n"
				   "network:\n"
				   "  ethernets:\n"
				   "    ens160:\n"
				   "      addresses:\n"
				   "      - 192.168.50.20/24\n"
				   "      nameservers:\n"
				   "        addresses:\n"
				   "        - 192.168.50.2\n"
				   "        search: []\n"
				   "      routes:\n"
				   "      - to: default\n"
				   "        via: 192.168.50.1\n"
				   "  version: 2\n";
	static const char stat_want[] = "# This is the network config written by 'subiquity'\n"
					"network:\n"
					"  ethernets:\n"
					"    ens160:\n"
					"      dhcp4: true\n"
					"# ferry-adapt:       addresses:\n"
					"# ferry-adapt:       - 192.168.50.20/24\n"
					"      nameservers:\n"
					"        addresses:\n"
					"        - 192.168.50.2\n"
					"        search: []\n"
					"# ferry-adapt:       routes:\n"
					"# ferry-adapt:       - to: default\n"
					"# ferry-adapt:         via: 192.168.50.1\n"
					"  version: 2\n";
	struct adapt_net n;

	memset(&n, 0, sizeof(n));
	reset();
	is_int(adapt_netplan(cloud, strlen(cloud), &n, &out, &notes), 1, "netplan cloud: 1 change");
	same(out.p, cloud_want, "netplan cloud: match by MAC -> by name");
	same(adapt_net_primary(&n), "ens3", "netplan cloud: learned ens3");

	memset(&n, 0, sizeof(n));
	reset();
	adapt_netplan(stat, strlen(stat), &n, &out, &notes);
	ok(n.nifs == 1 && n.ifs[0].gw && n.ifs[0].is_static, "netplan static: gateway from routes");
	snprintf(n.primary, sizeof(n.primary), "ens160");
	n.to_dhcp = 1;
	reset();
	is_int(adapt_netplan(stat, strlen(stat), &n, &out, &notes), 3, "netplan static: 3 changes");
	same(out.p, stat_want, "netplan static: addresses and routes out, dhcp4 in, DNS kept");

	/* match with a driver too: only the MAC line goes. */
	static const char drv[] = "network:\n  ethernets:\n    id0:\n      match:\n        driver: e1000\n"
				  "        macaddress: 00:0c:29:aa:bb:01\n      set-name: eth0\n";
	memset(&n, 0, sizeof(n));
	reset();
	adapt_netplan(drv, strlen(drv), &n, &out, &notes);
	same(out.p,
	     "network:\n  ethernets:\n    id0:\n      match:\n        driver: e1000\n"
	     "        # ferry-adapt: macaddress: 00:0c:29:aa:bb:01\n      set-name: eth0\n",
	     "netplan: other match keys keep the match");
	same(adapt_net_primary(&n), "eth0", "netplan: set-name is the interface's name");
}

static void test_interfaces(void)
{
	/* Debian 12 on VMware, static, with an old hwaddress line. */
	static const char in[] = "source /etc/network/interfaces.d/*\n"
				 "\n"
				 "auto lo\n"
				 "iface lo inet loopback\n"
				 "\n"
				 "allow-hotplug ens192\n"
				 "iface ens192 inet static\n"
				 "\taddress 192.168.50.10/24\n"
				 "\tgateway 192.168.50.1\n"
				 "\thwaddress ether 00:0c:29:aa:bb:01\n"
				 "\tdns-nameservers 192.168.50.2\n"
				 "\n"
				 "iface ens192 inet6 auto\n"
				 "auto ens224\n"
				 "iface ens224 inet static\n"
				 "    address 10.9.9.9\n"
				 "    netmask 255.255.255.0\n";
	static const char want[] = "source /etc/network/interfaces.d/*\n"
				   "\n"
				   "auto lo\n"
				   "iface lo inet loopback\n"
				   "\n"
				   "allow-hotplug ens192\n"
				   "iface ens192 inet dhcp\n"
				   "# ferry-adapt: \taddress 192.168.50.10/24\n"
				   "# ferry-adapt: \tgateway 192.168.50.1\n"
				   "# ferry-adapt: \thwaddress ether 00:0c:29:aa:bb:01\n"
				   "\tdns-nameservers 192.168.50.2\n"
				   "\n"
				   "iface ens192 inet6 auto\n"
				   "auto ens224\n"
				   "iface ens224 inet static\n"
				   "    address 10.9.9.9\n"
				   "    netmask 255.255.255.0\n";
	struct adapt_net n;

	memset(&n, 0, sizeof(n));
	reset();
	adapt_interfaces(in, strlen(in), &n, &out, &notes);
	is_int(n.nifs, 2, "interfaces: learned ens192 and ens224 (not lo)");
	same(adapt_net_primary(&n), "ens192", "interfaces: the one with the gateway is primary");
	snprintf(n.primary, sizeof(n.primary), "ens192");
	n.to_dhcp = 1;
	reset();
	is_int(adapt_interfaces(in, strlen(in), &n, &out, &notes), 4, "interfaces: 4 changes");
	same(out.p, want, "interfaces: primary to DHCP, the other static kept");

	/* Without to_dhcp only hwaddress goes. */
	n.to_dhcp = 0;
	reset();
	is_int(adapt_interfaces(in, strlen(in), &n, &out, &notes), 1, "interfaces: keep static");
}

/* A static setup asked for (--adapt-ip): written in each format. */
static void test_static(void)
{
	static const char ifdhcp[] = "auto lo\niface lo inet loopback\n\n"
				     "allow-hotplug eth0\niface eth0 inet dhcp\n"
				     "iface eth0 inet6 auto\n";
	static const char ifdhcp_want[] = "auto lo\niface lo inet loopback\n\n"
					  "allow-hotplug eth0\niface eth0 inet static\n"
					  "\taddress 192.0.2.10/24\n"
					  "\tgateway 192.0.2.1\n"
					  "\tdns-nameservers 192.0.2.53\n"
					  "iface eth0 inet6 auto\n";
	static const char ifstat[] = "iface ens192 inet static\n"
				     "\taddress 192.168.50.10/24\n"
				     "\tgateway 192.168.50.1\n"
				     "\tdns-nameservers 192.168.50.2\n"
				     "\tdns-search example.org\n";
	static const char ifstat_want[] = "iface ens192 inet static\n"
					  "\taddress 192.0.2.10/24\n"
					  "# ferry-adapt: \taddress 192.168.50.10/24\n"
					  "# ferry-adapt: \tgateway 192.168.50.1\n"
					  "# ferry-adapt: \tdns-nameservers 192.168.50.2\n"
					  "\tdns-search example.org\n";
	static const char npdhcp[] = "network:\n"
				     "    ethernets:\n"
				     "        ens3:\n"
				     "            dhcp4: true\n"
				     "            match:\n"
				     "                macaddress: fa:16:3e:11:22:33\n"
				     "            set-name: ens3\n"
				     "    version: 2\n";
	static const char npdhcp_want[] = "network:\n"
					  "    ethernets:\n"
					  "        ens3:\n"
					  "            addresses:\n"
					  "              - 192.0.2.10/24\n"
					  "            routes:\n"
					  "              - to: default\n"
					  "                via: 192.0.2.1\n"
					  "            nameservers:\n"
					  "              addresses:\n"
					  "                - 192.0.2.53\n"
					  "            dhcp4: false\n"
					  "            match:\n"
					  "                name: \"ens3\"\n"
					  "            set-name: ens3\n"
					  "    version: 2\n";
	static const char npstat[] = "network:\n"
				     "  ethernets:\n"
				     "    ens160:\n"
				     "      addresses:\n"
				     "      - 192.168.50.20/24\n"
				     "      nameservers:\n"
				     "        addresses:\n"
				     "        - 192.168.50.2\n"
				     "      gateway4: 192.168.50.1\n"
				     "  version: 2\n";
	static const char npstat_want[] = "network:\n"
					  "  ethernets:\n"
					  "    ens160:\n"
					  "      dhcp4: false\n"
					  "      addresses:\n"
					  "        - 192.0.2.10/24\n"
					  "# ferry-adapt:       addresses:\n"
					  "# ferry-adapt:       - 192.168.50.20/24\n"
					  "# ferry-adapt:       nameservers:\n"
					  "# ferry-adapt:         addresses:\n"
					  "# ferry-adapt:         - 192.168.50.2\n"
					  "# ferry-adapt:       gateway4: 192.168.50.1\n"
					  "  version: 2\n";
	static const char ifcfg[] = "DEVICE=eth0\nHWADDR=00:0c:29:aa:bb:01\nBOOTPROTO=dhcp\n"
				    "ONBOOT=yes\nDNS1=10.0.0.2";
	static const char ifcfg_want[] = "DEVICE=eth0\n# ferry-adapt: HWADDR=00:0c:29:aa:bb:01\n"
					 "BOOTPROTO=none\nONBOOT=yes\n# ferry-adapt: DNS1=10.0.0.2\n"
					 "# ferry-adapt: the static setup asked for\n"
					 "IPADDR=192.0.2.10\nPREFIX=24\nGATEWAY=192.0.2.1\n"
					 "DNS1=192.0.2.53\n";
	struct adapt_net n;

	static_net(&n);
	reset();
	is_int(adapt_interfaces(ifdhcp, strlen(ifdhcp), &n, &out, &notes), 1,
	       "interfaces static: 1 change");
	same(out.p, ifdhcp_want, "interfaces: inet dhcp -> static with address, gateway, DNS");
	ok(n.st_done && notes.n == 1 && strstr(notes.note[0], "-> static 192.0.2.10/24 gateway "
					      "192.0.2.1 dns 192.0.2.53"),
	   "interfaces static: noted (%s)", notes.n ? notes.note[0] : "none");

	snprintf(n.primary, sizeof(n.primary), "ens192");
	n.st_gw[0] = n.st_dns[0] = 0;
	n.st_done = 0;
	reset();
	is_int(adapt_interfaces(ifstat, strlen(ifstat), &n, &out, &notes), 4,
	       "interfaces static over static: 4 changes");
	same(out.p, ifstat_want, "interfaces: the old address, gateway, DNS out; dns-search kept");

	/* Not the primary: untouched. */
	snprintf(n.primary, sizeof(n.primary), "eth1");
	n.st_done = 0;
	reset();
	is_int(adapt_interfaces(ifdhcp, strlen(ifdhcp), &n, &out, &notes), 0,
	       "interfaces: another interface is not the primary");
	ok(!n.st_done, "... and nothing is written");

	snprintf(n.primary, sizeof(n.primary), "ens3");
	snprintf(n.st_gw, sizeof(n.st_gw), "192.0.2.1");
	snprintf(n.st_dns, sizeof(n.st_dns), "192.0.2.53");
	reset();
	is_int(adapt_netplan(npdhcp, strlen(npdhcp), &n, &out, &notes), 3,
	       "netplan static over dhcp4: 3 changes");
	same(out.p, npdhcp_want, "netplan: addresses, default route, nameservers; dhcp4 false");
	ok(n.st_done, "netplan static: written");

	snprintf(n.primary, sizeof(n.primary), "ens160");
	n.st_gw[0] = n.st_dns[0] = 0;
	n.st_done = 0;
	reset();
	is_int(adapt_netplan(npstat, strlen(npstat), &n, &out, &notes), 4,
	       "netplan static over static: 4 changes");
	same(out.p, npstat_want, "netplan: the old addresses, nameservers and gateway4 out");

	/* RHEL ifcfg, DHCP before, and a MAC. */
	snprintf(n.primary, sizeof(n.primary), "eth0");
	snprintf(n.st_gw, sizeof(n.st_gw), "192.0.2.1");
	snprintf(n.st_dns, sizeof(n.st_dns), "192.0.2.53");
	n.st_done = 0;
	reset();
	is_int(adapt_ifcfg(ifcfg, strlen(ifcfg), "eth0", &n, &out, &notes), 4,
	       "ifcfg static: 4 changes");
	same(out.p, ifcfg_want, "ifcfg: BOOTPROTO=none, the old DNS out, IPADDR/PREFIX/GATEWAY/DNS1");
	ok(n.st_done, "ifcfg static: written");
}

static void test_split(void)
{
	static const struct {
		const char *in, *disk;
		int part;
	} t[] = {
		{"sda1", "sda", 1},	     {"sda", "sda", 0},		 {"xvda1", "xvda", 1},
		{"hdb3", "hdb", 3},	     {"vdaa12", "vdaa", 12},	 {"nvme0n1p2", "nvme0n1", 2},
		{"nvme10n2", "nvme10n2", 0}, {"mmcblk0p1", "mmcblk0", 1}, {"mmcblk1", "mmcblk1", 0},
		{"sr0", NULL, 0},	     {"sda1x", NULL, 0},	 {"sd", NULL, 0},
		{"nvme0n1q2", NULL, 0},	     {"loop0", NULL, 0},	 {"sda99999", NULL, 0},
		{"nvme", NULL, 0},
	};
	char disk[32];
	size_t i;
	int part;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = adapt_split_dev(t[i].in, disk, sizeof(disk), &part);

		if (t[i].disk)
			ok(r == 1 && !strcmp(disk, t[i].disk) && part == t[i].part, "split %s: %s %d",
			   t[i].in, t[i].disk, t[i].part);
		else
			ok(r == 0, "split %s: not a disk name", t[i].in);
	}
}

static void test_dm_name(void)
{
	static const struct {
		const char *vg, *lv, *want; /* want NULL: refused */
	} t[] = {
	    {"rhel", "root", "rhel-root"},
	    {"ubuntu-vg", "ubuntu-lv", "ubuntu--vg-ubuntu--lv"},
	    {"vg--x", "a-", "vg----x-a--"},
	    {"cl_host", "home.1+", "cl_host-home.1+"},
	    {"vg", "", NULL},
	    {"-vg", "root", NULL},
	    {"vg", "..", NULL},
	    {"vg", "a/b", NULL},
	    {"vg", "a b", NULL},
	};
	char name[128], small[8];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = adapt_dm_name(t[i].vg, t[i].lv, name, sizeof(name));

		if (t[i].want)
			ok(r == 0 && !strcmp(name, t[i].want), "dm name %s/%s: %s", t[i].vg,
			   t[i].lv, t[i].want);
		else
			ok(r == -EINVAL, "dm name %s/%s: refused (%d)", t[i].vg, t[i].lv, r);
	}
	is_int(adapt_dm_name("rhel", "root", small, sizeof(small)), -ENAMETOOLONG,
	       "dm name: 9 characters do not fit 8 bytes");
	is_int(adapt_dm_name("a-b", "c", small, 6), -ENAMETOOLONG,
	       "dm name: a doubled '-' counts twice");
	is_int(adapt_dm_name("a-b", "c", small, 7), 0, "dm name: a--b-c fits 7 bytes");
}

static void test_modules_list(void)
{
	static const char *const mods[] = {"virtio_blk", "virtio_pci", "nvme", NULL};
	static const char in[] = "# List of modules that you want to include in your initramfs.\n"
				 "ata_piix\nsd_mod\n# nvme\nvirtio_pci\n";

	reset();
	is_int(adapt_modules_list(in, strlen(in), mods, &out, &notes), 2,
	       "modules: virtio_blk and nvme added, virtio_pci was there");
	same(out.p,
	     "# List of modules that you want to include in your initramfs.\n"
	     "ata_piix\nsd_mod\n# nvme\nvirtio_pci\n"
	     "# ferry-adapt: drivers of the machine this system was migrated to\n"
	     "virtio_blk\nnvme\n",
	     "modules: appended after one comment; a commented-out name does not count");
	reset();
	is_int(adapt_modules_list("sd_mod", 6, mods, &out, &notes), 3, "modules: no final newline");
	ok(!strncmp(out.p, "sd_mod\n#", 8), "modules: a newline is added first");
}

/* The removable-media fallback from a vendor directory, as Debian's
 * grub-install (with and without shim-signed) and Ubuntu's leave it. */
static void test_esp(void)
{
	static const char *const shim[] = {"BOOTX64.CSV", "grub.cfg", "grubx64.efi", "mmx64.efi",
					   "shimx64.efi", "fbx64.efi"};
	static const char *const plain[] = {"grubx64.efi"};
	static const char *const upper[] = {"GRUBX64.EFI", "GRUB.CFG"};
	static const char *const noshim_grub[] = {"shimx64.efi", "mmx64.efi"};
	static const char *const other[] = {"bootmgfw.efi", "grub.cfg"};
	struct adapt_esp_copy cp[ADAPT_ESP_COPIES];

	is_int(adapt_esp_plan(shim, 6, cp, ADAPT_ESP_COPIES), 4, "esp: shim, grub, mm, cfg");
	ok(!strcmp(cp[0].from, "shimx64.efi") && !strcmp(cp[0].to, "BOOTX64.EFI"),
	   "esp: shim becomes BOOTX64.EFI (%s -> %s)", cp[0].from, cp[0].to);
	ok(!strcmp(cp[1].from, "grubx64.efi") && !strcmp(cp[1].to, "grubx64.efi"),
	   "esp: grubx64.efi next to shim under its own name");
	ok(!strcmp(cp[2].from, "mmx64.efi") && !strcmp(cp[2].to, "mmx64.efi"), "esp: MokManager");
	ok(!strcmp(cp[3].from, "grub.cfg") && !strcmp(cp[3].to, "grub.cfg"),
	   "esp: grub.cfg next to them ($cmdpath/grub.cfg)");
	is_int(adapt_esp_plan(plain, 1, cp, ADAPT_ESP_COPIES), 1, "esp: GRUB alone");
	ok(!strcmp(cp[0].from, "grubx64.efi") && !strcmp(cp[0].to, "BOOTX64.EFI"),
	   "esp: grubx64.efi becomes BOOTX64.EFI without shim");
	is_int(adapt_esp_plan(upper, 2, cp, ADAPT_ESP_COPIES), 2, "esp: FAT names in capitals");
	ok(!strcmp(cp[0].from, "GRUBX64.EFI") && !strcmp(cp[1].from, "GRUB.CFG"),
	   "esp: the listing's own spelling is copied");
	is_int(adapt_esp_plan(noshim_grub, 2, cp, ADAPT_ESP_COPIES), 0,
	       "esp: shim without grubx64.efi is no loader");
	is_int(adapt_esp_plan(other, 2, cp, ADAPT_ESP_COPIES), 0, "esp: no GRUB, no plan");
	is_int(adapt_esp_plan(NULL, 0, cp, ADAPT_ESP_COPIES), 0, "esp: empty directory");
	is_int(adapt_esp_plan(shim, 6, cp, 2), -1, "esp: too small an output is an error");
}

static void test_names(void)
{
	ok(adapt_ifname_ok("eth0") && adapt_ifname_ok("enp0s3") && adapt_ifname_ok("eth0.100"),
	   "ifname: common names");
	ok(!adapt_ifname_ok("") && !adapt_ifname_ok("a b") && !adapt_ifname_ok("1234567890123456") &&
	       !adapt_ifname_ok("..") && !adapt_ifname_ok("x\"y"),
	   "ifname: bad names");
	ok(adapt_mac_ok("52:54:00:AB:cd:ef") && !adapt_mac_ok("52:54:00:ab:cd") &&
	       !adapt_mac_ok("52-54-00-ab-cd-ef"),
	   "mac: format");
}

int main(void)
{
	test_fstab();
	test_crypttab();
	test_words();
	test_grub_default();
	test_grubenv();
	test_limits();
	test_udev();
	test_ifcfg();
	test_nm();
	test_nm_static();
	test_nm_bounds();
	test_nm_mode();
	test_netplan();
	test_interfaces();
	test_static();
	test_split();
	test_dm_name();
	test_modules_list();
	test_names();
	test_esp();
	return tap_done();
}
