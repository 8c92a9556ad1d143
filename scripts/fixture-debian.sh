#!/bin/sh
# Builds (once) and prints the path of a real Debian 12 disk image as it
# would come off a Xen/VMware/bare-metal machine: debootstrap'd from
# deb.debian.org with Debian's own kernel (linux-image-amd64),
# initramfs-tools and GRUB (grub-pc, in the MBR), and everything that ties
# it to its old hardware:
#   - the initramfs is built with MODULES=list for IDE/SATA only: no
#     virtio_blk, virtio_pci, virtio_scsi, virtio_net (checked);
#   - fstab, grub.cfg (GRUB_DISABLE_LINUX_UUID=true) and RESUME= name
#     /dev/sda1 and /dev/sda2;
#   - a udev persistent-net rule binds eth0 to the old NIC's MAC
#     (52:54:00:0e:0e:01), and /etc/network/interfaces gives eth0 the old
#     network's static address;
#   - debconf's grub-pc/install_devices names /dev/sda.
# On boot a unit prints FERRY-MARKER lines (kernel, root, addresses,
# modules) to ttyS0, and to ttyS1 (a port of its own) when there is one,
# and powers the machine off.
#
#   scripts/fixture-debian.sh        prints /var/cache/ferry/fixtures/debian12-KEY.img
#
# Two cache levels in $FERRY_CACHE/fixtures (never in the work tree):
#   base-KEY.img   the disk right after debootstrap (the slow part:
#                  minutes of downloads and unpacking), keyed by the suite,
#                  the package list, debootstrap's version and the
#                  Debian versions of the main packages as the host's
#                  package lists know them;
#   debian12-KEY.img  the base configured as the old machine (seconds),
#                  keyed also by this script.
# Images are 2 GiB raw, sparse: MBR, sda1 ext4 /, sda2 swap. Needs root
# (loop mount, chroot) and deb.debian.org for a cold base.
set -eu
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

MIRROR=${FIXTURE_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
SIZE_MB=2048
SWAP_MB=128
OLD_MAC=52:54:00:0e:0e:01
PKGS=systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,zstd,grub-pc,ifupdown,isc-dhcp-client,iproute2,procps
DIR=$FERRY_CACHE/fixtures

[ "$(id -u)" = 0 ] || die "needs root (loop mount and chroot)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/deps.sh)"

# The key: this recipe, debootstrap's version and the suite's versions of
# the packages that decide what boots (the host's lists, suite $SUITE).
versions() {
	for p in linux-image-amd64 initramfs-tools grub-pc systemd udev; do
		v=$(apt-cache madison "$p" 2>/dev/null | awk -v s="$SUITE/main" '$0 ~ s" " || $0 ~ s"$" {print $3; exit}')
		printf '%s %s\n' "$p" "${v:-unknown}"
	done
	printf 'debootstrap %s\n' "$(deb_version debootstrap)"
}
BASETEXT=$(printf '%s\n' "base 1 $SUITE $MIRROR $SIZE_MB $SWAP_MB" "$PKGS" "$(versions)")
BASEKEY=$(printf '%s\n' "$BASETEXT" | short_hash)
BASE=$DIR/base-$BASEKEY.img
KEYTEXT=$(printf '%s\n' "recipe $(recipe_hash "$ROOT/scripts/fixture-debian.sh")" "$BASETEXT")
KEY=$(printf '%s\n' "$KEYTEXT" | short_hash)
IMG=$DIR/debian12-$KEY.img

if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi
mkdir -p "$DIR/locks"
exec 9>"$DIR/locks/debian12"
flock 9
if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi

T0=$(now)
WORK=$DIR/work-$KEY
MNT=$WORK/mnt
LOOP=
cleanup() {
	for m in "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys" "$MNT"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m" 2>/dev/null || true
	done
	mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" 2>/dev/null || true
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$MNT" "$WORK/logs"
say "building the Debian $SUITE fixture (key $KEY) in $WORK" >&2

RAW=$WORK/disk.img
ROOT_OFF=$((1024 * 1024))
ROOT_BYTES=$(((SIZE_MB - SWAP_MB - 1) * 1024 * 1024))
SWAP_OFF=$((ROOT_OFF + ROOT_BYTES))

partition() {
	truncate -s "${SIZE_MB}M" "$RAW"
	printf 'label: dos\nlabel-id: 0x0ddba11\nstart=2048, size=%s, type=83, bootable\nstart=%s, type=82\n' \
		$((ROOT_BYTES / 512)) $((SWAP_OFF / 512)) | sfdisk -q "$RAW"
	LOOP=$(losetup -f --show -o "$ROOT_OFF" --sizelimit "$ROOT_BYTES" "$RAW")
	echo "$LOOP" >"$WORK/loop"
	mkfs.ext4 -q -L debroot "$LOOP"
	mount "$LOOP" "$MNT"
}

bootstrap() {
	debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$MNT" "$MIRROR"
	umount "$MNT"
}

attach() {
	LOOP=$(losetup -f --show -o "$ROOT_OFF" --sizelimit "$ROOT_BYTES" "$RAW")
	echo "$LOOP" >"$WORK/loop"
	mount "$LOOP" "$MNT"
}

if [ ! -f "$BASE" ]; then
	step "$WORK/logs/partition.log" "disk: MBR, ext4 root, swap" partition >&2
	LOOP=$(cat "$WORK/loop")
	step "$WORK/logs/debootstrap.log" "debootstrap $SUITE (minbase + kernel, grub)" bootstrap >&2
	losetup -d "$LOOP"
	LOOP=
	mv "$RAW" "$BASE"
	printf '%s\n' "$BASETEXT" "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(since "$T0")s" >"$BASE.info"
	for f in "$DIR"/base-*.img; do
		[ "$f" = "$BASE" ] || rm -f "$f" "$f.info"
	done
else
	say "base $(basename "$BASE") cached" >&2
fi
T1=$(now)
cp --sparse=always "$BASE" "$RAW"
step "$WORK/logs/attach.log" "the base disk, mounted" attach >&2
LOOP=$(cat "$WORK/loop")

in_root() { chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

configure() {
	mount --bind /dev "$MNT/dev"
	mount --bind /dev/pts "$MNT/dev/pts"
	mount -t proc proc "$MNT/proc"
	mount -t sysfs sys "$MNT/sys"
	echo oldhost >"$MNT/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 oldhost\n' >"$MNT/etc/hosts"
	# As the installer of a machine with SATA/IDE disks wrote it.
	cat >"$MNT/etc/fstab" <<-'EOF'
	# /etc/fstab: static file system information.
	#
	# <file system> <mount point>   <type>  <options>       <dump>  <pass>
	/dev/sda1       /               ext4    errors=remount-ro 0       1
	/dev/sda2       none            swap    sw              0       0
	EOF
	# The old hardware's drivers only: what MODULES=list puts in.
	sed -i 's/^MODULES=.*/MODULES=list/' "$MNT/etc/initramfs-tools/initramfs.conf"
	printf '%s\n' ata_piix ata_generic ahci sd_mod ext4 crc32c_generic >>"$MNT/etc/initramfs-tools/modules"
	echo "RESUME=/dev/sda2" >"$MNT/etc/initramfs-tools/conf.d/resume"
	# The old NIC, by MAC, and the old network's static address.
	cat >"$MNT/etc/udev/rules.d/70-persistent-net.rules" <<-EOF
	# This file was automatically generated by the /lib/udev/write_net_rules
	# program, run by the persistent-net-generator.rules rules file.

	# PCI device 0x8086:0x100e (e1000)
	SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="$OLD_MAC", ATTR{dev_id}=="0x0", ATTR{type}=="1", KERNEL=="eth*", NAME="eth0"
	EOF
	cat >"$MNT/etc/network/interfaces" <<-'EOF'
	# This file describes the network interfaces available on your system
	# and how to activate them. For more information, see interfaces(5).

	source /etc/network/interfaces.d/*

	# The loopback network interface
	auto lo
	iface lo inet loopback

	# The primary network interface
	allow-hotplug eth0
	iface eth0 inet static
		address 192.168.50.10/24
		gateway 192.168.50.1
	EOF
	# GRUB as on a hypervisor whose disks are named by device.
	cat >"$MNT/etc/default/grub" <<-'EOF'
	GRUB_DEFAULT=0
	GRUB_TIMEOUT=1
	GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
	GRUB_CMDLINE_LINUX_DEFAULT=""
	GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
	GRUB_TERMINAL="console serial"
	GRUB_SERIAL_COMMAND="serial --speed=115200"
	GRUB_DISABLE_LINUX_UUID=true
	EOF
	echo "grub-pc grub-pc/install_devices multiselect /dev/sda" | in_root debconf-set-selections
	# The marker: proof of a finished boot, with what it booted on.
	cat >"$MNT/usr/local/sbin/ferry-marker" <<-'EOF'
	#!/bin/sh
	# Up to 90 s for an IPv4 address (hotplugged NICs come up late).
	i=0
	while [ $i -lt 90 ] && [ -z "$(ip -4 -o addr show scope global)" ]; do
		sleep 1
		i=$((i + 1))
	done
	{
		echo "FERRY-MARKER booted kernel=$(uname -r) root=$(findmnt -no SOURCE /)"
		ip -4 -o addr show | awk '{print "FERRY-MARKER ip", $2, $4}'
		for m in virtio_blk virtio_pci virtio_net ata_piix e1000; do
			[ -d /sys/module/$m ] && echo "FERRY-MARKER module $m"
		done
		swapon --show=NAME --noheadings | sed 's/^/FERRY-MARKER swap /'
		echo "FERRY-MARKER end"
	} >/run/ferry-marker 2>&1
	# ttyS0 is shared with the kernel's console, systemd's status lines
	# and the getty, which can land inside a line; a second serial port
	# (the tests give one) is the marker's alone.
	cat /run/ferry-marker >/dev/ttyS0
	cat /run/ferry-marker 2>/dev/null >/dev/ttyS1 || true
	systemctl --no-block poweroff
	EOF
	chmod 755 "$MNT/usr/local/sbin/ferry-marker"
	cat >"$MNT/etc/systemd/system/ferry-marker.service" <<-'EOF'
	[Unit]
	Description=ferry test marker (serial console, then power off)
	Wants=network-online.target
	After=network-online.target

	[Service]
	Type=oneshot
	ExecStart=/usr/local/sbin/ferry-marker

	[Install]
	WantedBy=multi-user.target
	EOF
	in_root systemctl enable ferry-marker.service
	in_root systemctl enable serial-getty@ttyS0.service
	echo 'root:ferry' | in_root chpasswd
	in_root update-initramfs -u -k all
	# grub.cfg as grub-mkconfig wrote it on the old machine: root=/dev/sda1.
	kver=$(ls "$MNT/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
	uuid=$(blkid -s UUID -o value "$LOOP")
	mkdir -p "$MNT/boot/grub/i386-pc"
	cat >"$MNT/boot/grub/grub.cfg" <<-EOF
	# DO NOT EDIT THIS FILE
	# It is automatically generated by grub-mkconfig using templates
	# from /etc/grub.d and settings from /etc/default/grub
	if [ -s \$prefix/grubenv ]; then
	  load_env
	fi
	set default="0"
	serial --speed=115200
	terminal_input console serial
	terminal_output console serial
	set timeout=1
	menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'gnulinux-simple-$uuid' {
	  load_video
	  insmod gzio
	  insmod part_msdos
	  insmod ext2
	  set root='hd0,msdos1'
	  search --no-floppy --fs-uuid --set=root $uuid
	  echo 'Loading Linux $kver ...'
	  linux /boot/vmlinuz-$kver root=/dev/sda1 ro console=tty0 console=ttyS0,115200
	  echo 'Loading initial ramdisk ...'
	  initrd /boot/initrd.img-$kver
	}
	EOF
	# GRUB in the MBR as grub-install does it: boot.img in sector 0,
	# core.img (biosdisk, part_msdos, ext2) from sector 1, modules in
	# /boot/grub/i386-pc.
	cp "$MNT"/usr/lib/grub/i386-pc/*.mod "$MNT"/usr/lib/grub/i386-pc/*.lst "$MNT/boot/grub/i386-pc/"
	in_root grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \
		-p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2
	cp "$MNT/usr/lib/grub/i386-pc/boot.img" "$MNT/boot/grub/i386-pc/boot.img"
	# No virtio in the initramfs: the point of the fixture.
	if in_root lsinitramfs "/boot/initrd.img-$kver" | grep -E 'virtio_(blk|pci|scsi|net)'; then
		echo "virtio modules in the initramfs" >&2
		return 1
	fi
	in_root lsinitramfs "/boot/initrd.img-$kver" | grep -q '/ata_piix.ko' || {
		echo "ata_piix missing from the initramfs" >&2
		return 1
	}
	in_root apt-get clean
	rm -f "$MNT/var/lib/apt/lists/"*_Packages "$MNT/var/lib/apt/lists/"*_InRelease
	printf '%s\n' "$kver" >"$WORK/kver"
	in_root dpkg-query -W linux-image-amd64 "linux-image-$kver" initramfs-tools grub-pc systemd udev >"$WORK/versions"
	umount "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys"
}
step "$WORK/logs/configure.log" "configure the old machine's system" configure >&2

finish() {
	core=$MNT/boot/grub/i386-pc/core.img
	size=$(stat -c %s "$core")
	[ "$size" -lt $((ROOT_OFF - 512)) ] || { echo "core.img is $size bytes" >&2; return 1; }
	dd if="$MNT/boot/grub/i386-pc/boot.img" of="$RAW" bs=440 count=1 conv=notrunc 2>/dev/null
	dd if="$core" of="$RAW" bs=512 seek=1 conv=notrunc 2>/dev/null
	umount "$MNT"
	e2fsck -fn "$LOOP"
	losetup -d "$LOOP"
	LOOP=
	rm -f "$WORK/loop"
	truncate -s "$SWAP_MB"M "$WORK/swap"
	mkswap -q -L oldswap "$WORK/swap"
	dd if="$WORK/swap" of="$RAW" bs=1M seek=$((SWAP_OFF / 1048576)) conv=notrunc,sparse 2>/dev/null
	sfdisk --verify "$RAW"
}
step "$WORK/logs/finish.log" "GRUB in the MBR, swap, fsck" finish >&2
LOOP=

secs=$(since "$T0")
{
	echo "configured in $(since "$T1")s"
	printf '%s\n' "$KEYTEXT"
	echo "kernel $(cat "$WORK/kver")"
	sed 's/^/installed /' "$WORK/versions"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s"
} >"$WORK/info"
mv "$RAW" "$IMG"
mv "$WORK/info" "$IMG.info"
# Older fixtures of this recipe are dead weight (2 GiB each, sparse).
for f in "$DIR"/debian12-*.img; do
	[ "$f" = "$IMG" ] || rm -f "$f" "$f.info"
done
say "fixture built in ${secs}s: $IMG" >&2
printf '%s\n' "$IMG"
