/*
 * adapt.h - the text rewrites of the adapt phase: configuration files of
 * a migrated system (fstab, crypttab, kernel command lines in grub.cfg,
 * extlinux.conf, BLS entries and grubenv, /etc/default/grub, udev
 * persistent-net rules, ifcfg files, NetworkManager keyfiles, netplan,
 * /etc/network/interfaces) edited so they no longer name the old
 * machine's devices and NIC. Pure functions: text in, text out into a
 * caller-owned buffer, one note per change for the report. Nothing here
 * reads or writes a file, and nothing is changed that the caller's
 * mapping does not name: a line that is not understood is copied as is.
 */
#ifndef FERRY_ADAPT_H
#define FERRY_ADAPT_H

#include <stddef.h>

#define ADAPT_TEXT_MAX	(256u * 1024) /* a configuration file we edit */
#define ADAPT_OUT_MAX	(2 * ADAPT_TEXT_MAX + 4096)
#define ADAPT_NOTES_MAX 32
#define ADAPT_NOTE_MAX	200
#define ADAPT_IFNAME	16 /* IFNAMSIZ */
#define ADAPT_MAC	18 /* "52:54:00:12:34:56" + NUL */
#define ADAPT_DEV_MAX	128

/* Where a rewrite writes: cap bytes at p; err is sticky (-ENOSPC). */
struct adapt_buf {
	char *p;
	size_t len, cap;
	int err;
};

void adapt_buf_init(struct adapt_buf *b, char *p, size_t cap);

/* What a rewrite changed, one sentence each ("line 3: /dev/sda1 ->
 * UUID=..."); more than ADAPT_NOTES_MAX are counted in dropped. why says
 * why a rewrite refused its input, when it says more than its -errno
 * ("" otherwise). */
struct adapt_notes {
	size_t n, dropped;
	char note[ADAPT_NOTES_MAX][ADAPT_NOTE_MAX];
	char why[ADAPT_NOTE_MAX];
};

/*
 * The caller's mapping of a device path as the file spells it
 * ("/dev/sda1", "/dev/xvda1") to its stable name ("UUID=...",
 * "PARTUUID=..."), written into out (cap bytes); 1 when mapped, 0 to
 * leave the reference as it is. The rewrites only ask about words that
 * start with "/dev/" and hold no blank or quote.
 */
typedef int (*adapt_dev_fn)(void *arg, const char *dev, char *out, size_t cap);

/*
 * fstab: the first field of each entry; crypttab: the second (the
 * encrypted device). Comments, blank lines, spacing and the other fields
 * are kept byte for byte. Each returns the number of lines changed, or
 * -EFBIG (input over ADAPT_TEXT_MAX), -ENOSPC (out too small), -EINVAL.
 */
int adapt_fstab(const char *in, size_t len, adapt_dev_fn map, void *arg, struct adapt_buf *out,
		struct adapt_notes *notes);
int adapt_crypttab(const char *in, size_t len, adapt_dev_fn map, void *arg,
		   struct adapt_buf *out, struct adapt_notes *notes);

/*
 * KEY=/dev/... words anywhere in a text, for each KEY in keys (NULL-
 * terminated, e.g. {"root", "resume", NULL}): kernel command lines in
 * grub.cfg, extlinux.conf, BLS entries, /etc/kernel/cmdline,
 * GRUB_CMDLINE_LINUX in /etc/default/grub; RESUME= of initramfs-tools.
 * A word starts at the line's start or after a blank, a quote or '=' (so
 * GRUB_CMDLINE_LINUX="root=... counts, and "set root=" does too, but
 * only values that start with "/dev/" are offered to map). The value
 * ends at a blank, a quote or the line's end. Returns words changed.
 */
int adapt_words(const char *in, size_t len, const char *const *keys, adapt_dev_fn map, void *arg,
		struct adapt_buf *out, struct adapt_notes *notes);

/*
 * /etc/default/grub: adapt_words with root and resume, and a
 * GRUB_DISABLE_LINUX_UUID=true line (which makes grub-mkconfig write
 * root=/dev/...) commented out. Returns changes.
 */
int adapt_grub_default(const char *in, size_t len, adapt_dev_fn map, void *arg,
		       struct adapt_buf *out, struct adapt_notes *notes);

/*
 * GRUB's environment block (grub/grubenv: exactly its own length, "#"
 * padded, usually 1024 bytes): adapt_words with root and resume on its
 * lines (kernelopts=), then padded back to the same length; -ENOSPC when
 * the result does not fit, -EINVAL when it is not a grubenv block.
 */
int adapt_grubenv(const char *in, size_t len, adapt_dev_fn map, void *arg, struct adapt_buf *out,
		  struct adapt_notes *notes);

/*
 * A module list (initramfs-tools' /etc/initramfs-tools/modules, one
 * module per line): each of mods (NULL-terminated) that no line names
 * yet is appended, after one comment line. Returns modules added.
 */
int adapt_modules_list(const char *in, size_t len, const char *const *mods, struct adapt_buf *out,
		       struct adapt_notes *notes);

/* ---- network configuration ----------------------------------------------- */

/*
 * What the network rewrites are told and what they learn. primary is the
 * old interface whose configuration the new machine's primary NIC takes
 * ("" when unknown); to_dhcp switches its static IPv4 configuration to
 * DHCP. The rewrites fill names with interfaces they saw configured
 * (with gw set when one holds the default gateway), so the caller can
 * choose the primary in a first pass.
 */
#define ADAPT_IFS_MAX 16
struct adapt_net {
	char primary[ADAPT_IFNAME];
	char new_mac[ADAPT_MAC]; /* the new primary NIC's MAC, "" = unknown */
	int to_dhcp;
	/* Instead of DHCP, this static IPv4 setup for the primary (ferry
	 * migrate --adapt-ip): "192.0.2.10/24"; gw, dns "" = none. "" = no. */
	char st_addr[20], st_gw[16], st_dns[16];
	/* learned */
	int st_done; /* a rewrite wrote the static setup */
	size_t nifs;
	struct {
		char name[ADAPT_IFNAME];
		int gw;	    /* holds the default gateway */
		int is_static; /* a static IPv4 address */
	} ifs[ADAPT_IFS_MAX];
	char bound[ADAPT_IFNAME]; /* the name a udev rule now gives new_mac */
};

/* The interface that should become the primary: the one with a default
 * gateway, else the first one seen; "" when none. */
const char *adapt_net_primary(const struct adapt_net *n);

/*
 * udev persistent-net rules (70-persistent-net.rules): every rule that
 * names a NIC by its MAC (ATTR{address}=="...") and gives it a NAME. The
 * rule naming the primary (or, without one, the first rule) is bound to
 * new_mac, so the new NIC gets the old name; the others are commented
 * out (their NICs are gone). Without new_mac every such rule is
 * commented out.
 */
int adapt_udev_net(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		   struct adapt_notes *notes);

/*
 * One ifcfg file (RHEL /etc/sysconfig/network-scripts/ifcfg-NAME, SUSE
 * /etc/sysconfig/network/ifcfg-NAME); name is NAME from the file name.
 * HWADDR= and MACADDR= are commented out; for the primary with to_dhcp,
 * BOOTPROTO=static|none becomes dhcp and IPADDR*, PREFIX*, NETMASK*,
 * GATEWAY* are commented out. With st_addr, the primary's BOOTPROTO
 * becomes none, its IPADDR*, PREFIX*, NETMASK*, GATEWAY*, DNS* are
 * commented out and IPADDR, PREFIX, GATEWAY, DNS1 of st_* appended.
 */
int adapt_ifcfg(const char *in, size_t len, const char *name, struct adapt_net *n,
		struct adapt_buf *out, struct adapt_notes *notes);

/*
 * A NetworkManager keyfile (system-connections/NAME.nmconnection): the
 * ethernet section's mac-address= and the connection's interface-name=
 * are commented out (the profile then applies to any Ethernet NIC); for
 * the primary with to_dhcp, [ipv4] method=manual becomes auto and its
 * address*= and gateway= lines are commented out. With st_addr, the
 * primary's profile (interface-name= names the primary; without one, an
 * Ethernet profile when the primary is unknown or it holds the gateway)
 * gets method=manual, address1=ADDR/PREFIX[,GW] and dns=DNS; right after
 * its first [ipv4] header (a section added when there is none), its old
 * method, address*, addresses*, gateway, dns and route* lines commented
 * out. A line over ADAPT_NM_LINE_MAX, a section name or key over
 * ADAPT_NM_NAME_MAX or a '[' without ']' leaves the file as it is:
 * -E2BIG / -EINVAL, the reason in notes->why.
 */
#define ADAPT_NM_LINE_MAX 16384 /* certificate blobs are the long lines */
#define ADAPT_NM_NAME_MAX 128	/* "wireguard-peer.<key>" is ~60 */
int adapt_nm_keyfile(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		     struct adapt_notes *notes);

/*
 * A netplan YAML file (block style, as netplan, cloud-init and
 * installers write them): "macaddress:" under "match:" is removed, with
 * the "match:" left empty and the interface's "set-name:"; for the
 * primary with to_dhcp, "addresses:", "gateway4:" and "routes:" (with
 * their nested lines) are commented out and "dhcp4: true" set. With
 * st_addr, the primary's "addresses:", "gateway4:", "routes:" and
 * "nameservers:" are commented out whatever it had, "dhcp4: false" set,
 * and st_*'s addresses, default route and nameservers written. Flow
 * style and anchors are left alone.
 */
int adapt_netplan(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		  struct adapt_notes *notes);

/*
 * /etc/network/interfaces (ifupdown): "hwaddress" lines are commented
 * out; for the primary with to_dhcp, "iface PRIMARY inet static" becomes
 * "inet dhcp" and its address, netmask, network, broadcast, gateway and
 * pointopoint lines are commented out. With st_addr, "iface PRIMARY inet
 * static|dhcp" becomes "inet static" with address, gateway and
 * dns-nameservers lines of st_*, the old ones (dns-nameservers too)
 * commented out.
 */
int adapt_interfaces(const char *in, size_t len, struct adapt_net *n, struct adapt_buf *out,
		     struct adapt_notes *notes);

/*
 * A kernel device name without /dev/: "sda1" -> disk "sda", part 1;
 * "xvda" -> "xvda", 0; "nvme0n1p2" -> "nvme0n1", 2; "mmcblk0p1" ->
 * "mmcblk0", 1 (sd, hd, vd, xvd, nvme, mmcblk). 1 when it is one.
 */
int adapt_split_dev(const char *name, char *disk, size_t cap, int *part);

/*
 * lvm's device-mapper name of LV lv in VG vg: "VG-LV" with each '-'
 * inside a name doubled ("ubuntu-vg", "ubuntu-lv" ->
 * "ubuntu--vg-ubuntu--lv"), as /dev/mapper shows it. 0, -EINVAL for a
 * name lvm would not accept, -ENAMETOOLONG past cap (DM_NAME_LEN: 128).
 */
int adapt_dm_name(const char *vg, const char *lv, char *out, size_t cap);

/* ---- a line walker (also for the callers' own reading of fstab) ---------- */

struct adapt_line {
	const char *s; /* not NUL-terminated */
	size_t n;      /* without the newline */
	int nl;	       /* a newline followed */
};

/* The next line from *pos; 0 at the end. */
int adapt_next_line(const char *in, size_t len, size_t *pos, struct adapt_line *l);
/* Blank or '#'-comment line. */
int adapt_is_comment(const struct adapt_line *l);
/* Field k (blank-separated) of l: [*start, *end). 0 when absent. */
int adapt_field(const struct adapt_line *l, int k, size_t *start, size_t *end);

/* 1 when s is a plausible interface name (1..15 of [A-Za-z0-9_.:-]). */
int adapt_ifname_ok(const char *s);
/* 1 when s is "xx:xx:xx:xx:xx:xx" (hex, any case). */
int adapt_mac_ok(const char *s);

/* ---- the ESP's removable-media fallback (esp.c) ---------------------------- */

/* One file of a vendor directory and its name in \EFI\BOOT\. */
struct adapt_esp_copy {
	char from[64];
	char to[16];
};
#define ADAPT_ESP_COPIES 4
/*
 * From the names in a vendor directory of an ESP: with shimx64.efi,
 * shim as BOOTX64.EFI with grubx64.efi and mmx64.efi next to it; else
 * grubx64.efi as BOOTX64.EFI; and its grub.cfg next to them when it has
 * one. Names are matched without case (FAT). The number of copies, 0
 * when the directory has no GRUB, -1 when out (cap) is too small.
 */
int adapt_esp_plan(const char *const *names, size_t n, struct adapt_esp_copy *out, size_t cap);

#endif
