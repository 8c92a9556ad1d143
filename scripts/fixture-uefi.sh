#!/bin/sh
# Builds (once) and prints the path of a Debian 12 disk image that boots
# by UEFI only the way Debian installs it: GPT, sda1 ext4 / (the root of
# scripts/fixture-debian.sh, same UUID), sda2 swap, sda3 an EFI system
# partition (mkfs.vfat, filled with mtools: the build host has no vfat)
# holding only \EFI\debian\ (shimx64.efi, grubx64.efi, mmx64.efi from
# Debian's shim-signed, shim-helpers-amd64-signed, grub-efi-amd64-signed,
# and the grub.cfg stub grub-install writes), no \EFI\BOOT\; fstab mounts
# it at /boot/efi by UUID; grub-efi-amd64-bin is installed in the root so
# its grub-install can do x86_64-efi. Its NVRAM boot entry stayed on the
# old machine: a firmware with empty variables finds no loader.
#
#   scripts/fixture-uefi.sh     prints /var/cache/ferry/fixtures/uefi12-KEY.img
#
# Starts from the cached image scripts/fixture-debian.sh prints; keyed by
# its .info and this script. Needs root (loop mount, chroot) and
# deb.debian.org (apt-get in the chroot, apt-get download on the host).
set -eu
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

SIZE_MB=2048
SWAP_MB=128
ESP_MB=64
ESP_ID=FE0A1234 # the ESP's volume id: UUID=FE0A-1234
DIR=$FERRY_CACHE/fixtures

[ "$(id -u)" = 0 ] || die "needs root (loop mount and chroot)"

SRC=$("$ROOT/scripts/fixture-debian.sh") || die "the Debian fixture could not be built"
KEYTEXT=$(printf '%s\n' "recipe $(recipe_hash "$ROOT/scripts/fixture-uefi.sh")" \
	"from $(basename "$SRC")" "$(cat "$SRC.info")")
KEY=$(printf '%s\n' "$KEYTEXT" | short_hash)
IMG=$DIR/uefi12-$KEY.img

if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi
mkdir -p "$DIR/locks"
exec 9>"$DIR/locks/uefi12"
flock 9
if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi

T0=$(now)
WORK=$DIR/work-uefi-$KEY
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
mkdir -p "$MNT" "$WORK/logs" "$WORK/debs"
say "building the UEFI fixture (key $KEY) from $(basename "$SRC")" >&2

RAW=$WORK/disk.img
ROOT_OFF=$((1024 * 1024))
ROOT_BYTES=$(((SIZE_MB - SWAP_MB - 1) * 1024 * 1024))
SWAP_OFF=$((ROOT_OFF + ROOT_BYTES))
ESP_OFF=$((SIZE_MB * 1024 * 1024))
cp --sparse=always "$SRC" "$RAW"

uefi_in() {
	# GPT over the same root and swap (the MBR's boot code is no use now).
	truncate -s $(((SIZE_MB + ESP_MB + 1) * 1024 * 1024)) "$RAW"
	dd if=/dev/zero of="$RAW" bs=512 count=34 conv=notrunc status=none
	printf 'label: gpt\nstart=2048, size=%s, type=L, name=root\nstart=%s, size=%s, type=S, name=swap\nstart=%s, size=%s, type=U, name=esp\n' \
		$((ROOT_BYTES / 512)) $((SWAP_OFF / 512)) $((SWAP_MB * 2048)) \
		$((ESP_OFF / 512)) $((ESP_MB * 2048)) | sfdisk -q "$RAW"
	LOOP=$(losetup -f --show -o "$ROOT_OFF" --sizelimit "$ROOT_BYTES" "$RAW")
	mount "$LOOP" "$MNT"
	root_uuid=$(blkid -o value -s UUID "$LOOP")
	mount --bind /dev "$MNT/dev"
	mount --bind /dev/pts "$MNT/dev/pts"
	mount -t proc proc "$MNT/proc"
	mount -t sysfs sys "$MNT/sys"
	cp /etc/resolv.conf "$MNT/etc/resolv.conf" 2>/dev/null || true
	in_root() { chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
	in_root apt-get -q update
	in_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends \
		install grub-efi-amd64-bin
	[ -d "$MNT/usr/lib/grub/x86_64-efi" ] || { echo "no x86_64-efi modules" >&2; return 1; }
	in_root apt-get clean
	rm -f "$MNT/var/lib/apt/lists/"*_Packages "$MNT/var/lib/apt/lists/"*_InRelease
	in_root dpkg-query -W grub-efi-amd64-bin >"$WORK/versions"
	mkdir -p "$MNT/boot/efi"
	printf 'UUID=FE0A-1234 /boot/efi vfat umask=0077 0 1\n' >>"$MNT/etc/fstab"
	umount "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys"
	umount "$MNT"
	e2fsck -fn "$LOOP"
	losetup -d "$LOOP"
	LOOP=
	# The signed loaders as Debian's packages ship them.
	(cd "$WORK/debs" && apt-get download grub-efi-amd64-signed shim-signed \
		shim-helpers-amd64-signed)
	for d in "$WORK/debs"/*.deb; do
		dpkg-deb -x "$d" "$WORK/x"
		dpkg-deb -f "$d" Package Version | paste -sd' ' >>"$WORK/versions"
	done
	printf "search.fs_uuid %s root\nset prefix=(\$root)'/boot/grub'\nconfigfile \$prefix/grub.cfg\n" \
		"$root_uuid" >"$WORK/grub.cfg"
	E=$WORK/esp.img
	mkfs.vfat -F 32 -i "$ESP_ID" -n EFI -C "$E" $((ESP_MB * 1024)) >/dev/null
	mmd -i "$E" ::/EFI ::/EFI/debian
	mcopy -i "$E" "$WORK/x/usr/lib/shim/shimx64.efi.signed" ::/EFI/debian/shimx64.efi
	mcopy -i "$E" "$WORK/x/usr/lib/shim/mmx64.efi.signed" ::/EFI/debian/mmx64.efi
	mcopy -i "$E" "$WORK/x/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" \
		::/EFI/debian/grubx64.efi
	mcopy -i "$E" "$WORK/grub.cfg" ::/EFI/debian/grub.cfg
	mdir -i "$E" ::/EFI/debian
	if mdir -i "$E" ::/EFI/BOOT >/dev/null 2>&1; then
		echo "an \\EFI\\BOOT on the ESP" >&2
		return 1
	fi
	fsck.vfat -n "$E"
	dd if="$E" of="$RAW" bs=1M seek=$SIZE_MB conv=notrunc,sparse status=none
	sfdisk --verify "$RAW"
}
step "$WORK/logs/uefi.log" "GPT, ESP with \\EFI\\debian only, grub-efi-amd64-bin" uefi_in >&2

secs=$(since "$T0")
{
	printf '%s\n' "$KEYTEXT"
	sed 's/^/installed /' "$WORK/versions"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s"
} >"$WORK/info"
mv "$RAW" "$IMG"
mv "$WORK/info" "$IMG.info"
for f in "$DIR"/uefi12-*.img; do
	[ "$f" = "$IMG" ] || rm -f "$f" "$f.info"
done
say "fixture built in ${secs}s: $IMG" >&2
printf '%s\n' "$IMG"
