#!/bin/sh
# Builds (once) and prints the path of a Debian 12 disk image whose
# initramfs is made by dracut, not initramfs-tools, and has no virtio:
# the old machine of scripts/fixture-debian.sh (its fstab, grub.cfg and
# root=/dev/sda1, its MAC-bound eth0, GRUB in the MBR, the FERRY-MARKER
# unit on ttyS0 and ttyS1) with Debian's dracut installed from
# deb.debian.org in its chroot (it replaces initramfs-tools) and
# configured as a host-only image that leaves the virtio drivers out:
#   /etc/dracut.conf.d/10-old-machine.conf: hostonly="yes",
#   hostonly_cmdline="no", omit_drivers+=" virtio_blk virtio_pci
#   virtio_scsi virtio_net ", add_drivers+=" ata_piix ... " (the old
#   machine's disk drivers, whatever the build host has);
# the initramfs is checked: no virtio_*, ata_piix in, made by dracut.
#
#   scripts/fixture-dracut.sh     prints /var/cache/ferry/fixtures/dracut12-KEY.img
#
# It never rebuilds the Debian base: it starts from the image
# scripts/fixture-debian.sh prints (cached), and is keyed by that image's
# .info (its recipe and package versions), this script and the Debian
# version of dracut as the host's package lists know it. Needs root (loop
# mount, chroot) and deb.debian.org (apt-get in the chroot).
set -eu
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

SIZE_MB=2048
SWAP_MB=128
DIR=$FERRY_CACHE/fixtures

[ "$(id -u)" = 0 ] || die "needs root (loop mount and chroot)"

SRC=$("$ROOT/scripts/fixture-debian.sh") || die "the Debian fixture could not be built"
dv=$(apt-cache madison dracut 2>/dev/null | awk '$0 ~ "bookworm/main" {print $3; exit}')
KEYTEXT=$(printf '%s\n' "recipe $(recipe_hash "$ROOT/scripts/fixture-dracut.sh")" \
	"dracut ${dv:-unknown}" "from $(basename "$SRC")" "$(cat "$SRC.info")")
KEY=$(printf '%s\n' "$KEYTEXT" | short_hash)
IMG=$DIR/dracut12-$KEY.img

if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi
mkdir -p "$DIR/locks"
exec 9>"$DIR/locks/dracut12"
flock 9
if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi

T0=$(now)
WORK=$DIR/work-dracut-$KEY
MNT=$WORK/mnt
LOOP=
cleanup() {
	for m in "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m" 2>/dev/null || true
	done
	mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" 2>/dev/null || true
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$MNT" "$WORK/logs"
say "building the dracut fixture (key $KEY) from $(basename "$SRC")" >&2

RAW=$WORK/disk.img
ROOT_OFF=$((1024 * 1024))
ROOT_BYTES=$(((SIZE_MB - SWAP_MB - 1) * 1024 * 1024))
cp --sparse=always "$SRC" "$RAW"
LOOP=$(losetup -f --show -o "$ROOT_OFF" --sizelimit "$ROOT_BYTES" "$RAW")
mount "$LOOP" "$MNT"

in_root() { chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

dracut_in() {
	mount --bind /dev "$MNT/dev"
	mount --bind /dev/pts "$MNT/dev/pts"
	mount -t proc proc "$MNT/proc"
	mount -t sysfs sys "$MNT/sys"
	kver=$(ls "$MNT/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
	mkdir -p "$MNT/etc/dracut.conf.d"
	# The old machine's choice: a small host-only image, its disk
	# drivers in, virtio out (dracut would add what the build host has).
	cat >"$MNT/etc/dracut.conf.d/10-old-machine.conf" <<-'EOF'
	# The old machine: IDE/SATA disks, no virtio.
	hostonly="yes"
	hostonly_cmdline="no"
	omit_drivers+=" virtio_blk virtio_pci virtio_scsi virtio_net "
	add_drivers+=" ata_piix ata_generic ahci sd_mod ext4 crc32c_generic "
	EOF
	cp /etc/resolv.conf "$MNT/etc/resolv.conf" 2>/dev/null || true
	in_root apt-get -q update
	in_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends \
		install dracut
	[ ! -e "$MNT/usr/sbin/update-initramfs" ] || { echo "update-initramfs still there" >&2; return 1; }
	in_root dracut -f "/boot/initrd.img-$kver" "$kver"
	in_root lsinitrd "/boot/initrd.img-$kver" >"$WORK/lsinitrd"
	if grep -E 'virtio_(blk|pci|scsi|net)' "$WORK/lsinitrd"; then
		echo "virtio modules in the initramfs" >&2
		return 1
	fi
	grep -q '/ata_piix.ko' "$WORK/lsinitrd" || { echo "ata_piix missing from the initramfs" >&2; return 1; }
	grep -q 'dracut' "$WORK/lsinitrd" || { echo "not a dracut image" >&2; return 1; }
	in_root apt-get clean
	rm -f "$MNT/var/lib/apt/lists/"*_Packages "$MNT/var/lib/apt/lists/"*_InRelease
	printf '%s\n' "$kver" >"$WORK/kver"
	in_root dpkg-query -W dracut dracut-core "linux-image-$kver" >"$WORK/versions"
	umount "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys"
	umount "$MNT"
	e2fsck -fn "$LOOP"
}
step "$WORK/logs/dracut.log" "dracut in, initramfs without virtio" dracut_in >&2
losetup -d "$LOOP"
LOOP=

secs=$(since "$T0")
{
	printf '%s\n' "$KEYTEXT"
	echo "kernel $(cat "$WORK/kver")"
	sed 's/^/installed /' "$WORK/versions"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s"
} >"$WORK/info"
mv "$RAW" "$IMG"
mv "$WORK/info" "$IMG.info"
for f in "$DIR"/dracut12-*.img; do
	[ "$f" = "$IMG" ] || rm -f "$f" "$f.info"
done
say "fixture built in ${secs}s: $IMG" >&2
printf '%s\n' "$IMG"
