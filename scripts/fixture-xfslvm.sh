#!/bin/sh
# Builds (once) and prints the path of a bootable disk laid out as a
# RHEL/CentOS/Rocky installer lays one out: MBR, partition 1 /boot on XFS,
# partition 2 an LVM PV in VG "rhel" with LVs "root" (XFS) and "swap", and
# free extents left in the VG. The system is the cached Debian 12 base of
# scripts/fixture-debian.sh (its debootstrap is the slow part; it is
# reused, never repeated) copied onto that layout, with lvm2 and xfsprogs
# installed in the chroot from deb.debian.org, an initramfs that activates
# the root LV (initramfs-tools' lvm2 hook; checked), fstab naming
# /dev/mapper/rhel-root, UUID= /boot and /dev/mapper/rhel-swap, and GRUB
# (grub-pc's boot.img and a core.img with xfs) in the MBR. On boot a unit
# prints FERRY-MARKER lines (kernel, root and /boot with their types, swap,
# the active LVs) to ttyS0 and ttyS1, and powers the machine off.
#
#   scripts/fixture-xfslvm.sh        prints /var/cache/ferry/fixtures/xfslvm-KEY.img
#
# The host has no device-mapper: nothing is activated here. The PV, VG
# and LVs are made on a loop device over partition 2 (--activate n
# --zero n), and each LV is reached through a loop device at its extents'
# offset (pe_start + first PE x extent size, as `lvs` reports them).
# Cache: $FERRY_CACHE/fixtures/xfslvm-KEY.img, keyed by this script and the
# base's key text (so a new base means a new fixture). 3 GiB raw, sparse.
# Needs root, lvm2, xfsprogs, and deb.debian.org for the two packages.
set -eu
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

SIZE_MB=3072
BOOT_MB=512
ROOT_MB=1792
SWAP_MB=128
VG=rhel
DIR=$FERRY_CACHE/fixtures
export LVM_SUPPRESS_FD_WARNINGS=1

[ "$(id -u)" = 0 ] || die "needs root (loop mount and chroot)"
# The mounts live in a private mount namespace: a process that clones
# ours while an XFS is mounted (other jobs on the machine do) keeps that
# mount alive after our umount, its log not written back (doc/DESIGN.md 15).
if [ -z "${FIXTURE_XFSLVM_NS:-}" ]; then
	FIXTURE_XFSLVM_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
for c in pvcreate mkfs.xfs xfs_repair sfdisk unshare; do
	command -v "$c" >/dev/null || die "$c is not installed (scripts/deps.sh)"
done

T0=$(now)
# The base: fixture-debian.sh builds it when it is missing or stale, and
# keeps exactly one (the current) in $DIR.
"$ROOT/scripts/fixture-debian.sh" >/dev/null || die "the Debian fixture (and its base) could not be built"
BASE=
for f in "$DIR"/base-*.img; do
	[ -f "$f.info" ] && BASE=$f
done
[ -n "$BASE" ] || die "no base-*.img in $DIR after fixture-debian.sh"
BASETEXT=$(sed '/^built /d' "$BASE.info")
KEYTEXT=$(printf '%s\n' "recipe $(recipe_hash "$ROOT/scripts/fixture-xfslvm.sh")" "$(basename "$BASE")" "$BASETEXT")
KEY=$(printf '%s\n' "$KEYTEXT" | short_hash)
IMG=$DIR/xfslvm-$KEY.img

if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi
mkdir -p "$DIR/locks"
exec 9>"$DIR/locks/xfslvm"
flock 9
if [ -f "$IMG" ] && [ -f "$IMG.info" ]; then
	printf '%s\n' "$IMG"
	exit 0
fi

T1=$(now)
WORK=$DIR/work-xfslvm-$KEY
MNT=$WORK/mnt
SRC=$WORK/base
RAW=$WORK/disk.img
LOOPS=
cleanup() {
	for m in "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys" "$MNT/boot" "$MNT" "$SRC"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m" 2>/dev/null || true
	done
	for m in "$MNT/boot" "$MNT" "$SRC"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m" 2>/dev/null || true
	done
	[ -f "$WORK/base.loop" ] && losetup -d "$(cat "$WORK/base.loop")" 2>/dev/null
	[ -f "$WORK/loops" ] && LOOPS="$LOOPS $(cat "$WORK/loops")"
	for l in $LOOPS; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$MNT" "$SRC" "$WORK/logs"
say "building the XFS-on-LVM fixture (key $KEY) in $WORK" >&2

BOOT_OFF=$((1024 * 1024))
BOOT_BYTES=$((BOOT_MB * 1024 * 1024))
PV_OFF=$((BOOT_OFF + BOOT_BYTES))
PV_BYTES=$((SIZE_MB * 1024 * 1024 - PV_OFF))

# loop OFF SIZE [FILE]: $L = a new loop device over that byte range.
loop() {
	L=$(losetup -f --show -o "$1" --sizelimit "$2" "${3:-$RAW}")
	LOOPS="$LOOPS $L"
	echo "$L" >>"$WORK/loops"
}

# lv_range LV: "OFFSET BYTES" of the LV in the disk image (one linear
# segment: lvcreate on an empty VG gives one).
lv_range() {
	# shellcheck disable=SC2086 # $O is options
	pe=$(pvs $O --noheadings --units b --nosuffix -o pe_start 2>/dev/null | tr -d ' ')
	# shellcheck disable=SC2086
	lvs $O --noheadings --units b --nosuffix --separator ' ' \
		-o seg_pe_ranges,seg_size_pe,vg_extent_size "$VG/$1" 2>/dev/null |
		awk -v pv="$PV_OFF" -v pe="$pe" '{ n = split($1, r, ":"); split(r[n], a, "-")
			if (NR > 1 || pe == "") exit 1
			printf "%d %d\n", pv + pe + a[1] * $3, $2 * $3 }'
}

layout() {
	truncate -s "${SIZE_MB}M" "$RAW"
	printf 'label: dos\nlabel-id: 0x2e1f0001\nstart=2048, size=%s, type=83, bootable\nstart=%s, type=8e\n' \
		$((BOOT_BYTES / 512)) $((PV_OFF / 512)) | sfdisk -q "$RAW"
	loop "$PV_OFF" "$PV_BYTES"
	pv=$L
	O="--devices $pv"
	C="$O --driverloaded n -an -Zn -q"
	# shellcheck disable=SC2086
	pvcreate -q $O "$pv"
	# shellcheck disable=SC2086
	vgcreate -q $O -s 4M "$VG" "$pv"
	# As the RHEL installer orders them: swap, then root.
	# shellcheck disable=SC2086
	lvcreate $C -L "${SWAP_MB}M" -n swap "$VG"
	# shellcheck disable=SC2086
	lvcreate $C -L "${ROOT_MB}M" -n root "$VG"
	# shellcheck disable=SC2086
	lvs $O -o lv_name,lv_size,seg_pe_ranges "$VG"
	root=$(lv_range root) swap=$(lv_range swap)
	[ -n "$root" ] && [ -n "$swap" ] || { echo "no extents for root or swap" >&2; return 1; }
	echo "$root" >"$WORK/root.range"
	echo "$swap" >"$WORK/swap.range"
	# shellcheck disable=SC2086
	loop $swap
	mkswap -q -L swap "$L"
	# shellcheck disable=SC2086
	loop $root
	mkfs.xfs -q -L root "$L"
	echo "$L" >"$WORK/root.loop"
	loop "$BOOT_OFF" "$BOOT_BYTES"
	mkfs.xfs -q -L boot "$L"
	echo "$L" >"$WORK/boot.loop"
	mount "$(cat "$WORK/root.loop")" "$MNT"
	mkdir -p "$MNT/boot"
	mount "$(cat "$WORK/boot.loop")" "$MNT/boot"
	# The base's root (its partition 1), read-only.
	boff=$(sfdisk -J "$BASE" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][0]; print(p["start"]*512, p["size"]*512)')
	# shellcheck disable=SC2086
	set -- $boff
	b=$(losetup -f --show -r -o "$1" --sizelimit "$2" "$BASE")
	echo "$b" >"$WORK/base.loop"
	mount -o ro "$b" "$SRC"
	# Everything but downloaded .debs; /boot lands on partition 1.
	tar -C "$SRC" --exclude=./var/cache/apt/archives/*.deb -cf - . | tar -C "$MNT" -xpf -
	umount "$SRC"
	losetup -d "$b"
	rm "$WORK/base.loop"
	df -m "$MNT" "$MNT/boot"
}
step "$WORK/logs/layout.log" "MBR, XFS /boot, PV, VG $VG, LVs" layout >&2
LOOPS=$(cat "$WORK/loops")

in_root() { chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
	DEBIAN_FRONTEND=noninteractive "$@"; }

configure() {
	mount --bind /dev "$MNT/dev"
	mount --bind /dev/pts "$MNT/dev/pts"
	mount -t proc proc "$MNT/proc"
	mount -t sysfs sys "$MNT/sys"
	echo rhelish >"$MNT/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 rhelish\n' >"$MNT/etc/hosts"
	boot_uuid=$(blkid -s UUID -o value "$(cat "$WORK/boot.loop")")
	cat >"$MNT/etc/fstab" <<-EOF
	# As anaconda writes it: root and swap by their device-mapper names,
	# /boot by UUID.
	/dev/mapper/$VG-root   /       xfs     defaults        0 0
	UUID=$boot_uuid /boot   xfs     defaults        0 0
	/dev/mapper/$VG-swap   none    swap    defaults        0 0
	EOF
	# Any hardware: MODULES=most (virtio included), and the lvm2 hook.
	sed -i 's/^MODULES=.*/MODULES=most/' "$MNT/etc/initramfs-tools/initramfs.conf"
	echo "RESUME=/dev/mapper/$VG-swap" >"$MNT/etc/initramfs-tools/conf.d/resume"
	# lvm2's and xfsprogs' triggers build the initramfs with all of the above.
	cp /etc/resolv.conf "$MNT/etc/resolv.conf"
	date +"%T apt-get update"
	in_root apt-get -q update
	date +"%T apt-get install"
	in_root apt-get -q -y --no-install-recommends install lvm2 xfsprogs
	# No network to wait for: the machine boots without a NIC.
	rm -f "$MNT/etc/udev/rules.d/70-persistent-net.rules"
	cat >"$MNT/usr/local/sbin/ferry-marker" <<-'EOF'
	#!/bin/sh
	{
		echo "FERRY-MARKER booted kernel=$(uname -r) root=$(findmnt -no SOURCE /) roottype=$(findmnt -no FSTYPE /)"
		echo "FERRY-MARKER boot=$(findmnt -no SOURCE /boot) boottype=$(findmnt -no FSTYPE /boot)"
		for m in virtio_blk dm_mod xfs; do
			[ -d /sys/module/$m ] && echo "FERRY-MARKER module $m"
		done
		swapon --show=NAME --noheadings | sed 's/^/FERRY-MARKER swap /'
		lvs --noheadings -o vg_name,lv_name,lv_attr 2>/dev/null | sed 's/^ */FERRY-MARKER lv /'
		echo "FERRY-MARKER end"
	} >/run/ferry-marker 2>&1
	# ttyS0 is shared with the console and the getty; ttyS1 (the tests
	# give one) is the marker's alone.
	cat /run/ferry-marker >/dev/ttyS0
	cat /run/ferry-marker 2>/dev/null >/dev/ttyS1 || true
	systemctl --no-block poweroff
	EOF
	chmod 755 "$MNT/usr/local/sbin/ferry-marker"
	cat >"$MNT/etc/systemd/system/ferry-marker.service" <<-'EOF'
	[Unit]
	Description=ferry test marker (serial console, then power off)
	After=local-fs.target swap.target

	[Service]
	Type=oneshot
	ExecStart=/usr/local/sbin/ferry-marker

	[Install]
	WantedBy=multi-user.target
	EOF
	date +"%T installed"
	in_root systemctl enable ferry-marker.service
	in_root systemctl enable serial-getty@ttyS0.service
	echo 'root:ferry' | in_root chpasswd
	kver=$(ls "$MNT/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
	in_root lsinitramfs "/boot/initrd.img-$kver" >"$WORK/initrd.list"
	# Debian's lvm2 activates by udev (69-lvm.rules runs lvm pvscan
	# --autoactivation event as the PV appears), not by a local-top script.
	for want in '/sbin/lvm$' '/69-lvm.rules$' '/dm-mod.ko' '/xfs.ko' '/virtio_blk.ko'; do
		grep -q -- "$want" "$WORK/initrd.list" || {
			echo "the initramfs has no $want" >&2
			return 1
		}
	done
	# grub.cfg as grub2-mkconfig writes it on such a machine: /boot is
	# its own filesystem, found by UUID; root by its mapper name.
	mkdir -p "$MNT/boot/grub/i386-pc"
	cat >"$MNT/boot/grub/grub.cfg" <<-EOF
	set default="0"
	serial --speed=115200
	terminal_input console serial
	terminal_output console serial
	set timeout=1
	menuentry 'Linux on XFS on LVM' {
	  insmod part_msdos
	  insmod xfs
	  set root='hd0,msdos1'
	  search --no-floppy --fs-uuid --set=root $boot_uuid
	  echo 'Loading Linux $kver ...'
	  linux /vmlinuz-$kver root=/dev/mapper/$VG-root ro console=tty0 console=ttyS0,115200
	  echo 'Loading initial ramdisk ...'
	  initrd /initrd.img-$kver
	}
	EOF
	cp "$MNT"/usr/lib/grub/i386-pc/*.mod "$MNT"/usr/lib/grub/i386-pc/*.lst "$MNT/boot/grub/i386-pc/"
	in_root grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \
		-p '(hd0,msdos1)/grub' biosdisk part_msdos xfs
	cp "$MNT/usr/lib/grub/i386-pc/boot.img" "$MNT/boot/grub/i386-pc/boot.img"
	in_root apt-get clean
	rm -f "$MNT/var/lib/apt/lists/"*_Packages "$MNT/var/lib/apt/lists/"*_InRelease
	printf '%s\n' "$kver" >"$WORK/kver"
	in_root dpkg-query -W linux-image-amd64 lvm2 xfsprogs initramfs-tools grub-pc >"$WORK/versions"
	umount "$MNT/dev/pts" "$MNT/dev" "$MNT/proc" "$MNT/sys"
}
step "$WORK/logs/configure.log" "lvm2, xfsprogs, initramfs, GRUB" configure >&2

finish() {
	core=$MNT/boot/grub/i386-pc/core.img
	size=$(stat -c %s "$core")
	[ "$size" -lt $((BOOT_OFF - 512)) ] || { echo "core.img is $size bytes" >&2; return 1; }
	dd if="$MNT/boot/grub/i386-pc/boot.img" of="$RAW" bs=440 count=1 conv=notrunc 2>/dev/null
	dd if="$core" of="$RAW" bs=512 seek=1 conv=notrunc 2>/dev/null
	umount "$MNT/boot"
	umount "$MNT"
	xfs_repair -n "$(cat "$WORK/boot.loop")"
	xfs_repair -n "$(cat "$WORK/root.loop")"
	for l in $LOOPS; do losetup -d "$l"; done
	sfdisk --verify "$RAW"
}
step "$WORK/logs/finish.log" "GRUB in the MBR, xfs_repair -n" finish >&2
LOOPS=

secs=$(since "$T0")
{
	echo "configured in $(since "$T1")s"
	printf '%s\n' "$KEYTEXT"
	echo "kernel $(cat "$WORK/kver")"
	echo "root LV at $(cat "$WORK/root.range") (offset bytes), swap LV at $(cat "$WORK/swap.range")"
	sed 's/^/installed /' "$WORK/versions"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s"
} >"$WORK/info"
mv "$RAW" "$IMG"
mv "$WORK/info" "$IMG.info"
for f in "$DIR"/xfslvm-*.img; do
	[ "$f" = "$IMG" ] || rm -f "$f" "$f.info"
done
say "fixture built in ${secs}s: $IMG" >&2
printf '%s\n' "$IMG"
