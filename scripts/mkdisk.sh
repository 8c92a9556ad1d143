#!/bin/bash
# Makes a real, bootable source disk image: a tiny BusyBox system on ext4
# with our kernel, installed the way a distribution installs itself, so the
# migrated copy must boot through its own bootloader (no -kernel).
#
#   scripts/mkdisk.sh [OPTIONS] OUT.img
#
#   --layout gpt|mbr|bare  partition layout (gpt)
#       gpt:  1 BIOS boot (1 MiB)  2 ESP (vfat, 32 MiB)  3 swap
#             4 root (ext4, LegacyBIOSBootable, the rest of the disk).
#             BIOS: see --bios-loader.
#             UEFI: \EFI\BOOT\BOOTX64.EFI on the ESP, a standalone GRUB
#             (grub-mkimage) whose embedded config finds root by its FS
#             UUID and reads /boot/grub/grub.cfg there.
#       mbr:  1 swap  2 root (ext4, active). BIOS: see --bios-loader.
#       bare: ext4 on the whole disk, no table, no bootloader (data disk).
#       Root is the last partition, so a grown destination can grow it.
#   --bios-loader extlinux|grub  (extlinux)
#       extlinux: syslinux gptmbr.bin/mbr.bin in the MBR, extlinux in the
#             root filesystem, /boot/extlinux/extlinux.conf. Needs root.
#       grub: GRUB's boot.img in the MBR, core.img (i386-pc) in the BIOS
#             boot partition (gpt) or the gap before partition 1 (mbr),
#             set up by hand like grub-bios-setup; /boot/grub/grub.cfg.
#             Needs no root.
#   --size SIZE            disk size, bytes or with K/M/G suffix (256M)
#   --files DIR            copy DIR's contents into /srv/files
#   --marker TEXT          console marker text ("migrated system is up")
#   --test                 kernel command line gets "panic=-1
#                          ferry.test=poweroff": the system powers off
#                          right after printing the marker (for tests)
#   --hostname NAME        /etc/hostname (ferry-src)
#   --seed STR             seed of every UUID and of the random data
#                          (ferry-LAYOUT): same inputs, same layout
#   --random-mib N         MiB of (seeded) random data in /srv/ferry-data (4)
#   --swap-mib N           swap partition size (16)
#   --kernel FILE          kernel to install (build/kernel/bzImage)
#   --kconfig FILE         its .config (build/kernel/config)
#   -q, --quiet            print only the layout summary
#
# Writes OUT.img and OUT.img.layout (shell-sourceable KEY=VALUE: UUIDs,
# PARTUUIDs, offsets, sizes, the data checksum). extlinux needs root (it
# installs into a mounted filesystem: loop device with -o OFFSET
# --sizelimit SIZE, never partition scanning, in a private mount
# namespace); everything else is made in files without privileges.
# Both bootloader configs, when present, carry the same kernel command line
# (root=PARTUUID=..., console=ttyS0,115200 and with --test the two above).
#
# The system's /sbin/init prints on the console, in this order:
#   FERRY-TEST-CMDLINE: <kernel command line>
#   FERRY-TEST-BLOCK: <dev> <bytes>            (every disk and partition)
#   FERRY-TEST-DF: / <KiB total> <KiB used> <KiB available>
#   FERRY-TEST-FSTAB: <UUID=...> <mount point> <device>|MISSING
#   FERRY-TEST-ESP: ok|FAILED (<reason>)      (gpt: mounts the ESP via fstab)
#   FERRY-TEST-DATA: ok|FAILED <n> files      (sha256 of /srv against the
#                                              manifest written at build time)
#   FERRY-TEST: <marker> on <hostname>, root /dev/<dev>
# then powers off (ferry.test=poweroff) or runs a shell on the console.
#
# Reproducible: fixed UUIDs and disk ids derived from --seed, fixed
# timestamps (SOURCE_DATE_EPOCH, default 1704067200), our own mke2fs.conf
# (the host's defaults do not leak in), fixed ext4 hash seed. The same
# inputs give byte-identical images (checked for all three layouts).
set -euo pipefail

PROG=mkdisk
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
usage() {
	sed -n '/^#   scripts/,/^#   -q/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cd "$(dirname "$0")/.."
TOP=$(pwd)

LAYOUT=gpt
BIOS_LOADER=extlinux
SIZE=256M
FILES=
MARKER="migrated system is up"
TEST=0
HOSTNAME_=ferry-src
SEED=
RANDOM_MIB=4
SWAP_MIB=16
KERNEL=${KERNEL:-$TOP/build/kernel/bzImage}
KCONFIG=${KCONFIG:-$TOP/build/kernel/config}
QUIET=0
OUT=
while [ $# -gt 0 ]; do
	case "$1" in
	--layout) LAYOUT=${2:?}; shift 2 ;;
	--bios-loader) BIOS_LOADER=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--files) FILES=${2:?}; shift 2 ;;
	--marker) MARKER=${2:?}; shift 2 ;;
	--test) TEST=1; shift ;;
	--hostname) HOSTNAME_=${2:?}; shift 2 ;;
	--seed) SEED=${2:?}; shift 2 ;;
	--random-mib) RANDOM_MIB=${2:?}; shift 2 ;;
	--swap-mib) SWAP_MIB=${2:?}; shift 2 ;;
	--kernel) KERNEL=${2:?}; shift 2 ;;
	--kconfig) KCONFIG=${2:?}; shift 2 ;;
	-q | --quiet) QUIET=1; shift ;;
	-h | --help) usage ;;
	-*) echo "$PROG: unknown option $1" >&2; usage ;;
	*)
		[ -z "$OUT" ] || usage
		OUT=$1
		shift
		;;
	esac
done
[ -n "$OUT" ] || usage
case "$OUT" in /*) ;; *) OUT=$OLDPWD/$OUT ;; esac
[ -z "$FILES" ] || case "$FILES" in /*) ;; *) FILES=$OLDPWD/$FILES ;; esac
case "$KERNEL" in /*) ;; *) KERNEL=$OLDPWD/$KERNEL ;; esac
case "$KCONFIG" in /*) ;; *) KCONFIG=$OLDPWD/$KCONFIG ;; esac
case "$LAYOUT" in gpt | mbr | bare) ;; *) die "--layout must be gpt, mbr or bare" ;; esac
case "$BIOS_LOADER" in extlinux | grub) ;; *) die "--bios-loader must be extlinux or grub" ;; esac
[ "$LAYOUT" != bare ] || BIOS_LOADER=none
# GRUB for UEFI (gpt) and/or BIOS (--bios-loader grub).
GRUB=0
{ [ "$LAYOUT" = gpt ] || [ "$BIOS_LOADER" = grub ]; } && GRUB=1
case "$HOSTNAME_" in *[!A-Za-z0-9.-]* | "") die "bad --hostname '$HOSTNAME_'" ;; esac
case "$MARKER" in *[\'\\]* | *$'\n'*) die "--marker must not hold quotes, backslashes or newlines" ;; esac
[[ $RANDOM_MIB =~ ^[0-9]+$ ]] || die "--random-mib wants a number"
[[ $SWAP_MIB =~ ^[1-9][0-9]*$ ]] || die "--swap-mib wants a positive number"
[ -z "$FILES" ] || [ -d "$FILES" ] || die "--files $FILES: not a directory"
SEED=${SEED:-ferry-$LAYOUT}

MiB=1048576
to_bytes() {
	local n=$1 m=1
	case "$n" in
	*[kK]) m=1024; n=${n%?} ;;
	*[mM]) m=$MiB; n=${n%?} ;;
	*[gG]) m=$((MiB * 1024)); n=${n%?} ;;
	esac
	[[ $n =~ ^[0-9]+$ ]] || die "bad size '$1'"
	echo $((n * m))
}
DISK_BYTES=$(to_bytes "$SIZE")
[ $((DISK_BYTES % MiB)) -eq 0 ] || die "--size must be a whole number of MiB"
DISK_MIB=$((DISK_BYTES / MiB))

say() { [ "$QUIET" = 1 ] || printf '%s: %s\n' "$PROG" "$*"; }

# ---- tools and inputs -------------------------------------------------------
need() {
	command -v "$1" >/dev/null || die "$1 not found (apt-get install $2)"
}
need mkfs.ext4 e2fsprogs
need debugfs e2fsprogs
need sfdisk fdisk
need openssl openssl
[ -s "$KERNEL" ] || die "kernel $KERNEL missing (make kernel)"
[ -s "$KCONFIG" ] || die "kernel config $KCONFIG missing (make kernel)"
# The pinned busybox-static the live image ships (make sysroot).
BUSYBOX=${BUSYBOX:-$TOP/build/sysroot/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing (make sysroot)"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	die "$BUSYBOX is not static"
SYSLINUX_DIR=
if [ "$BIOS_LOADER" = extlinux ]; then
	[ "$(id -u)" = 0 ] || die "extlinux needs root: it installs into a mounted filesystem" \
		"(loop device). Run as root, or use --bios-loader grub or --layout bare."
	need extlinux extlinux
	need losetup mount
	need unshare util-linux
	for d in /usr/lib/syslinux/mbr /usr/lib/SYSLINUX /usr/share/syslinux; do
		[ -f "$d/gptmbr.bin" ] && SYSLINUX_DIR=$d && break
	done
	[ -n "$SYSLINUX_DIR" ] || die "syslinux gptmbr.bin/mbr.bin not found (apt-get install syslinux-common)"
fi
[ "$GRUB" = 0 ] || need grub-mkimage grub-common
if [ "$LAYOUT" = gpt ]; then
	[ -d /usr/lib/grub/x86_64-efi ] || die "/usr/lib/grub/x86_64-efi missing (apt-get install grub-efi-amd64-bin)"
	need mkfs.vfat dosfstools
	need mcopy mtools
fi
if [ "$BIOS_LOADER" = grub ]; then
	for f in boot.img moddep.lst; do
		[ -f "/usr/lib/grub/i386-pc/$f" ] || die "/usr/lib/grub/i386-pc/$f missing (apt-get install grub-pc-bin)"
	done
fi
[ "$LAYOUT" = bare ] || need mkswap util-linux

# GRUB modules built into BOOTX64.EFI and core.img: everything the embedded
# config and /boot/grub/grub.cfg use, so nothing is loaded from disk.
GRUB_MODULES=(part_gpt part_msdos ext2 search search_fs_uuid linux boot serial terminal echo normal)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
export SOURCE_DATE_EPOCH
# libext2fs stamps superblock and inodes with this instead of now.
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
export TZ=UTC LC_ALL=C

# uuid NAME: a fixed version-4-shaped UUID from the seed and NAME.
uuid() {
	printf '%s/%s' "$SEED" "$1" | sha256sum |
		sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-a\4-\5/'
}
hex8() { printf '%s/%s' "$SEED" "$1" | sha256sum | cut -c1-8; }

# ---- the layout -------------------------------------------------------------
# Everything in MiB; sectors are 512 bytes.
DISK_UUID=$(uuid disk)
ROOT_UUID=$(uuid root-fs)
ROOT_PARTUUID=
ESP_UUID=
ESP_PARTUUID=
SWAP_UUID=$(uuid swap)
SWAP_PARTUUID=
BIOS_PARTUUID=
ROOT_PART=
case "$LAYOUT" in
gpt)
	BIOS_START=1 BIOS_MIB=1
	ESP_START=2 ESP_MIB=32
	SWAP_START=$((ESP_START + ESP_MIB))
	ROOT_START=$((SWAP_START + SWAP_MIB))
	# The last MiB holds the backup GPT.
	ROOT_MIB=$((DISK_MIB - ROOT_START - 1))
	VFAT_ID=$(hex8 esp-fs | tr a-f A-F)
	ESP_UUID=${VFAT_ID:0:4}-${VFAT_ID:4:4}
	BIOS_PARTUUID=$(uuid part-bios)
	ESP_PARTUUID=$(uuid part-esp)
	SWAP_PARTUUID=$(uuid part-swap)
	ROOT_PARTUUID=$(uuid part-root)
	ROOT_PART=4
	;;
mbr)
	MBR_ID=$(hex8 disk)
	DISK_UUID=0x$MBR_ID
	SWAP_START=1
	ROOT_START=$((SWAP_START + SWAP_MIB))
	ROOT_MIB=$((DISK_MIB - ROOT_START))
	SWAP_PARTUUID=$MBR_ID-01
	ROOT_PARTUUID=$MBR_ID-02
	ROOT_PART=2
	;;
bare)
	DISK_UUID=
	ROOT_START=0
	ROOT_MIB=$DISK_MIB
	;;
esac
[ "$ROOT_MIB" -ge 48 ] || die "--size $SIZE leaves only ${ROOT_MIB} MiB for root (48 MiB at least)"

if [ "$LAYOUT" = bare ]; then
	# Not bootable by itself; for a direct kernel boot of a data disk.
	CMDLINE="root=/dev/vda rootwait console=ttyS0,115200"
else
	CMDLINE="root=PARTUUID=$ROOT_PARTUUID rootwait console=ttyS0,115200"
fi
[ "$TEST" = 0 ] || CMDLINE="$CMDLINE panic=-1 ferry.test=poweroff"

# ---- scratch space and cleanup ----------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mkdisk.XXXXXX")
LOOP=
cleanup() {
	local rc=$?
	if [ -n "$LOOP" ]; then
		losetup -d "$LOOP" 2>/dev/null || true
	fi
	rm -rf "$WORK"
	[ "$rc" -eq 0 ] || rm -f "$OUT.tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Runs a command quietly; shows its output only when it fails.
run() {
	if ! "$@" >"$WORK/cmd.log" 2>&1; then
		cat "$WORK/cmd.log" >&2
		die "failed: $*"
	fi
}

# ---- the root filesystem tree -----------------------------------------------
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/ferry-test,dev,proc,sys,run,tmp,root,boot,mnt,var/log,srv/ferry-data}
cp "$BUSYBOX" "$R/bin/busybox"
# Applet links where Debian's busybox puts them (bin/sh, sbin/mount, ...);
# /sbin/init is ours.
"$BUSYBOX" --list-full | while read -r a; do
	case "$a" in bin/busybox | sbin/init | linuxrc | "") continue ;; esac
	mkdir -p "$R/$(dirname "$a")"
	[ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
chmod 1777 "$R/tmp"
chmod 700 "$R/root"
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$R/dev/console" c 5 1
	mknod -m 666 "$R/dev/null" c 1 3
fi

cp "$KERNEL" "$R/boot/vmlinuz"
# /boot/config-<release>, where a distribution puts it: the destination's
# readiness check finds the virtio drivers there (the release is read
# from the bzImage header's version string).
krel=$(python3 -c 'import struct,sys
b = open(sys.argv[1], "rb").read()
o = struct.unpack_from("<H", b, 0x20e)[0] + 0x200
print(b[o:o + 64].split(b"\0")[0].split()[0].decode())' "$KERNEL") || die "no version in $KERNEL"
cp "$KCONFIG" "$R/boot/config-$krel"

echo "$HOSTNAME_" >"$R/etc/hostname"
cat >"$R/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$HOSTNAME_
EOF
cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
EOF
cat >"$R/etc/os-release" <<'EOF'
PRETTY_NAME="ferry test system (BusyBox)"
NAME="ferry-test"
ID=ferry-test
VERSION_ID=1
EOF
cat >"$R/etc/profile" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='\h:\w# '
EOF
cat >"$R/etc/motd" <<EOF
ferry test system ($LAYOUT layout): a source server to migrate.
EOF

{
	echo "# <file system>  <mount point>  <type>  <options>  <dump>  <pass>"
	echo "UUID=$ROOT_UUID  /  ext4  defaults  0  1"
	[ -z "$ESP_UUID" ] || echo "UUID=$ESP_UUID  /boot/efi  vfat  umask=0077  0  2"
	[ "$LAYOUT" = bare ] || echo "UUID=$SWAP_UUID  none  swap  sw  0  0"
	echo "proc  /proc  proc  defaults  0  0"
} >"$R/etc/fstab"
[ -z "$ESP_UUID" ] || mkdir -p "$R/boot/efi"

if [ "$BIOS_LOADER" = extlinux ]; then
	mkdir -p "$R/boot/extlinux"
	cat >"$R/boot/extlinux/extlinux.conf" <<EOF
# extlinux (syslinux $(dpkg-query -W -f='${Version}' extlinux 2>/dev/null || echo '?')), made by ferry scripts/mkdisk.sh
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT linux
LABEL linux
	KERNEL /boot/vmlinuz
	APPEND $CMDLINE
EOF
fi
if [ "$GRUB" = 1 ]; then
	# Read by GRUB's normal mode; the embedded config of BOOTX64.EFI and
	# core.img has found this filesystem and set \$prefix to /boot/grub.
	mkdir -p "$R/boot/grub"
	cat >"$R/boot/grub/grub.cfg" <<EOF
# GRUB configuration of the ferry test system (scripts/mkdisk.sh)
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=0
set timeout_style=hidden
menuentry "ferry test system" {
	search --no-floppy --fs-uuid --set=root $ROOT_UUID
	linux /boot/vmlinuz $CMDLINE
}
EOF
	cat >"$WORK/grub-early.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
EOF
fi

cat >"$R/sbin/init" <<EOF
#!/bin/sh
# PID 1 of the ferry test system (scripts/mkdisk.sh). Reports what a
# migration test checks, then powers off (ferry.test=poweroff) or runs a
# shell on the console.
MARKER='$MARKER'
EOF
cat >>"$R/sbin/init" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
hostname -F /etc/hostname

echo "FERRY-TEST-CMDLINE: $(cat /proc/cmdline)"
for d in /sys/block/*; do
	n=${d##*/}
	case "$n" in loop* | ram*) continue ;; esac
	echo "FERRY-TEST-BLOCK: $n $(($(cat "$d/size") * 512))"
	for p in "$d/$n"*; do
		[ -f "$p/partition" ] || continue
		echo "FERRY-TEST-BLOCK: ${p##*/} $(($(cat "$p/size") * 512))"
	done
done
df -k / | awk 'NR == 2 { print "FERRY-TEST-DF: / " $2 " " $3 " " $4 }'
while read -r spec mp type rest; do
	case "$spec" in UUID=*) ;; *) continue ;; esac
	dev=$(findfs "$spec" 2>/dev/null) || dev=MISSING
	echo "FERRY-TEST-FSTAB: $spec $mp $dev"
	if [ "$type" = vfat ]; then
		if ! mount -o ro "$mp" 2>/tmp/esp.err; then
			echo "FERRY-TEST-ESP: FAILED (mount $mp: $(cat /tmp/esp.err))"
		elif [ -f "$mp/EFI/BOOT/BOOTX64.EFI" ]; then
			echo "FERRY-TEST-ESP: ok"
		else
			echo "FERRY-TEST-ESP: FAILED (no $mp/EFI/BOOT/BOOTX64.EFI)"
		fi
		umount "$mp" 2>/dev/null
	fi
done </etc/fstab
n=$(wc -l </etc/ferry-test/SHA256SUMS)
if (cd / && sha256sum -c -s etc/ferry-test/SHA256SUMS); then
	echo "FERRY-TEST-DATA: ok $n files"
else
	echo "FERRY-TEST-DATA: FAILED $n files"
fi
mm=$(awk '$5 == "/" { print $3; exit }' /proc/self/mountinfo)
rootdev=$(sed -n 's/^DEVNAME=//p' "/sys/dev/block/$mm/uevent" 2>/dev/null)
echo "FERRY-TEST: $MARKER on $(hostname), root /dev/${rootdev:-?}"

case " $(cat /proc/cmdline) " in
*" ferry.test=poweroff "*)
	sync
	poweroff -f
	;;
esac
cat /etc/motd
while :; do
	setsid cttyhack sh -l
	sleep 1
done
EOF
chmod 755 "$R/sbin/init"

# Data: seeded random bytes (AES-CTR keystream), a sparse file, text, and
# the caller's files; their sha256 list is checked by init at boot.
key=$(printf '%s/data' "$SEED" | sha256sum | cut -c1-32)
rnd() { head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$key" -iv "000000000000000000000000000000$2"; }
D=$R/srv/ferry-data
if [ "$RANDOM_MIB" -gt 0 ]; then
	rnd $((RANDOM_MIB * MiB * 3 / 4)) 01 >"$D/random-1.bin"
	rnd $((RANDOM_MIB * MiB - RANDOM_MIB * MiB * 3 / 4)) 02 >"$D/random-2.bin"
fi
# 8 MiB apparent, 192 KiB of data in three runs, holes between.
truncate -s 8M "$D/sparse.bin"
rnd 65536 03 | dd of="$D/sparse.bin" bs=64K seek=0 conv=notrunc status=none
rnd 65536 04 | dd of="$D/sparse.bin" bs=64K seek=50 conv=notrunc status=none
rnd 65536 05 | dd of="$D/sparse.bin" bs=64K seek=127 conv=notrunc status=none
seq 1 100000 | sed 's/^/line /' >"$D/lines.txt"
cat >"$D/README.txt" <<EOF
This disk was made by ferry's scripts/mkdisk.sh (layout $LAYOUT, seed $SEED).
The files in /srv are listed with their sha256 in /etc/ferry-test/SHA256SUMS;
/sbin/init checks them at every boot and prints FERRY-TEST-DATA.
EOF
if [ -n "$FILES" ]; then
	mkdir -p "$R/srv/files"
	cp -a "$FILES/." "$R/srv/files/"
fi
(cd "$R" && find srv -type f -print0 | sort -z | xargs -0r sha256sum) >"$R/etc/ferry-test/SHA256SUMS"
DATA_SUM=$(sha256sum <"$R/etc/ferry-test/SHA256SUMS" | cut -c1-16)
{
	echo "layout=$LAYOUT"
	echo "seed=$SEED"
	echo "test=$TEST"
} >"$R/etc/ferry-test/build-info"

# Fixed dates everywhere (the caller's files keep theirs).
find "$R" -path "$R/srv/files" -prune -o -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# ---- the image --------------------------------------------------------------
say "making $LAYOUT image ${OUT#"$TOP"/} (${DISK_MIB} MiB)"
rm -f "$OUT.tmp"
truncate -s "$DISK_BYTES" "$OUT.tmp"

case "$LAYOUT" in
gpt)
	cat >"$WORK/sfdisk" <<EOF
label: gpt
label-id: $DISK_UUID
unit: sectors
first-lba: 2048
sector-size: 512

start=$((BIOS_START * 2048)), size=$((BIOS_MIB * 2048)), type=21686148-6449-6E6F-744E-656564454649, uuid=$BIOS_PARTUUID, name="bios"
start=$((ESP_START * 2048)), size=$((ESP_MIB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_PARTUUID, name="EFI"
start=$((SWAP_START * 2048)), size=$((SWAP_MIB * 2048)), type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=$SWAP_PARTUUID, name="swap"
start=$((ROOT_START * 2048)), size=$((ROOT_MIB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$ROOT_PARTUUID, name="root", attrs="LegacyBIOSBootable"
EOF
	;;
mbr)
	cat >"$WORK/sfdisk" <<EOF
label: dos
label-id: 0x$MBR_ID
unit: sectors
sector-size: 512

start=$((SWAP_START * 2048)), size=$((SWAP_MIB * 2048)), type=82
start=$((ROOT_START * 2048)), size=$((ROOT_MIB * 2048)), type=83, bootable
EOF
	;;
esac
if [ "$LAYOUT" != bare ]; then
	run sfdisk --no-reread --no-tell-kernel -q "$OUT.tmp" <"$WORK/sfdisk"
fi

# ext4 with a fixed feature set (that of Debian 12, which GRUB 2.06 and
# syslinux 6.04 read), not the host's defaults. The journal is added after
# extlinux is installed, so the kernel's mount writes nothing into it.
cat >"$WORK/mke2fs.conf" <<'EOF'
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
EOF
ROOT_OFF=$((ROOT_START * MiB))
ROOT_BYTES=$((ROOT_MIB * MiB))
run env MKE2FS_CONFIG="$WORK/mke2fs.conf" mkfs.ext4 -F -q -t ext4 -L root \
	-U "$ROOT_UUID" -E "hash_seed=$ROOT_UUID,offset=$ROOT_OFF,nodiscard,lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0" \
	-O ^has_journal -d "$R" "$OUT.tmp" "${ROOT_MIB}M"

if [ "$LAYOUT" = gpt ]; then
	# ESP: a separate FAT file with GRUB, dd'd into partition 2.
	E=$WORK/esp
	mkdir -p "$E/EFI/BOOT"
	# grub-mkimage, not grub-mkstandalone: the latter's memdisk tar
	# carries the build time. The early config finds root and sets
	# $prefix; GRUB's normal mode then reads /boot/grub/grub.cfg.
	run grub-mkimage -O x86_64-efi -o "$E/EFI/BOOT/BOOTX64.EFI" -p /boot/grub \
		-c "$WORK/grub-early.cfg" "${GRUB_MODULES[@]}" fat
	find "$E" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	# --invariant fixes the dates but also the volume id (1234-ABCD); put
	# ours into the boot sector's BPB afterwards (FAT12/16: 0x27, FAT32: 0x43).
	run mkfs.vfat -C -n ESP --invariant "$WORK/esp.img" $((ESP_MIB * 1024))
	case "$(dd if="$WORK/esp.img" bs=1 skip=82 count=8 status=none)" in
	"FAT32   ") idoff=67 ;;
	*) idoff=39 ;;
	esac
	printf '%b' "\\x${VFAT_ID:6:2}\\x${VFAT_ID:4:2}\\x${VFAT_ID:2:2}\\x${VFAT_ID:0:2}" |
		dd of="$WORK/esp.img" bs=1 seek="$idoff" conv=notrunc status=none
	run mcopy -i "$WORK/esp.img" -s -m -Q "$E/EFI" ::/
	dd if="$WORK/esp.img" of="$OUT.tmp" bs=1M seek="$ESP_START" conv=notrunc,sparse status=none
fi
if [ "$LAYOUT" != bare ]; then
	truncate -s $((SWAP_MIB * MiB)) "$WORK/swap.img"
	run mkswap -U "$SWAP_UUID" -L swap "$WORK/swap.img"
	dd if="$WORK/swap.img" of="$OUT.tmp" bs=1M seek="$SWAP_START" conv=notrunc,sparse status=none
fi

# reset_times DEV: mke2fs -d copies each file's ctime (touch cannot set
# it) and the kernel's mount stamps the superblock and extlinux's files with
# the wall clock; put the fixed time back everywhere. Without root, also
# gives every file to root (mke2fs -d copies the owner).
reset_times() {
	local t=@$SOURCE_DATE_EPOCH
	{
		printf '%s\n' "ssv mtime $t" "ssv wtime $t" "ssv lastcheck $t" "ssv mnt_count 0" \
			"ssv kbytes_written 0" 'ssv last_mounted ""'
		[ "$BIOS_LOADER" != extlinux ] || printf '%s\n' /boot/extlinux/ldlinux.sys /boot/extlinux/ldlinux.c32
		(cd "$R" && find . -printf '%P\n') | sed 's|^|/|'
	} | awk -v t="$t" -v chown="$([ "$(id -u)" = 0 ] || echo 1)" '
		/^ssv / { print; next }
		{ gsub(/"/, "\\\""); p = "\"" $0 "\""
		  print "sif " p " ctime " t; print "sif " p " atime " t
		  if (chown) { print "sif " p " uid 0"; print "sif " p " gid 0" }
		  if (index($0, "/boot/extlinux") == 1) {
			print "sif " p " mtime " t; print "sif " p " crtime " t; print "sif " p " generation 0"; print "sif " p " version 0"
			n = split("atime_extra ctime_extra mtime_extra crtime_extra", x, " ")
			for (i = 1; i <= n; i++) print "sif " p " " x[i] " 0" } }' |
		debugfs -w -f - "$1" >"$WORK/debugfs.log" 2>&1
	# debugfs echoes each command as "debugfs: ..."; anything else is an error.
	if grep -v '^debugfs' "$WORK/debugfs.log" | grep -q .; then
		grep -v '^debugfs' "$WORK/debugfs.log" | head >&2
		die "debugfs could not reset the timestamps"
	fi
}

if [ "$BIOS_LOADER" = extlinux ]; then
	# extlinux into the mounted root filesystem, then the MBR boot code.
	LOOP=$(losetup -o "$ROOT_OFF" --sizelimit "$ROOT_BYTES" -f --show "$OUT.tmp") ||
		die "losetup failed (no free loop device?)"
	# Mounted in a private mount namespace at a fixed path: nothing leaks
	# into the host's mount table, the mount dies with the namespace
	# however this script ends, and ext4 records the same "last mounted
	# on" every time.
	# shellcheck disable=SC2016 # expanded by the inner sh
	if ! unshare -m --propagation private sh -c '
		mount -t ext4 "$1" /mnt || exit 1
		extlinux --install /mnt/boot/extlinux; rc=$?
		umount /mnt || rc=1
		exit $rc' sh "$LOOP" >"$WORK/extlinux.log" 2>&1; then
		cat "$WORK/extlinux.log" >&2
		die "installing extlinux into the root filesystem ($LOOP) failed"
	fi
	# Times first: tune2fs then copies the fixed superblock to the backups.
	reset_times "$LOOP"
	run tune2fs -O has_journal "$LOOP"
	run e2fsck -fn "$LOOP"
	losetup -d "$LOOP"
	LOOP=
	if [ "$LAYOUT" = gpt ]; then
		mbr=$SYSLINUX_DIR/gptmbr.bin
	else
		mbr=$SYSLINUX_DIR/mbr.bin
	fi
	dd if="$mbr" of="$OUT.tmp" bs=440 count=1 conv=notrunc status=none
	# extlinux takes the partition offset from the loop device; it must
	# match the table (the boot sector's "hidden sectors" field).
	hidden=$(od -An -tu4 -j $((ROOT_OFF + 28)) -N4 "$OUT.tmp" | tr -d ' ')
	[ "$hidden" = $((ROOT_OFF / 512)) ] ||
		die "extlinux boot sector says the partition starts at sector $hidden, not $((ROOT_OFF / 512))"
else
	# No mount: libext2fs opens the partition as FILE?offset=BYTES.
	reset_times "$OUT.tmp?offset=$ROOT_OFF"
	run tune2fs -O has_journal "$OUT.tmp?offset=$ROOT_OFF"
	run e2fsck -fn "$OUT.tmp?offset=$ROOT_OFF"
fi

if [ "$BIOS_LOADER" = grub ]; then
	# What grub-install/grub-bios-setup do for a BIOS boot partition (gpt)
	# or the gap before the first partition (mbr), done on the file:
	# core.img at CORE_LBA with the blocklist in its first sector pointing
	# at the rest of it, boot.img's code (not the partition table) in the
	# MBR pointing at core.img.
	if [ "$LAYOUT" = gpt ]; then
		CORE_LBA=$((BIOS_START * 2048))
		core_max=$((BIOS_MIB * MiB))
	else
		CORE_LBA=1
		core_max=$((SWAP_START * MiB - 512))
	fi
	run grub-mkimage -O i386-pc -o "$WORK/core.img" -p /boot/grub \
		-c "$WORK/grub-early.cfg" biosdisk "${GRUB_MODULES[@]}"
	core_bytes=$(wc -c <"$WORK/core.img")
	[ "$core_bytes" -le "$core_max" ] ||
		die "GRUB core.img is $core_bytes bytes, over the $core_max bytes it has"
	nsec=$(((core_bytes + 511) / 512))
	# le BYTES VALUE: VALUE as BYTES little-endian bytes.
	le() {
		local i out=
		for ((i = 0; i < $1; i++)); do
			out=$out$(printf '\\x%02x' $((($2 >> (8 * i)) & 255)))
		done
		printf '%b' "$out"
	}
	# The blocklist (start u64, len u16, segment u16) ends sector 0.
	bl=$(od -An -tu2 -j 508 -N4 "$WORK/core.img" | awk '{ print $1, $2 }')
	[ "$bl" = "$((nsec - 1)) 2080" ] ||
		die "unexpected blocklist in GRUB's core.img ('$bl'): GRUB changed?"
	le 8 $((CORE_LBA + 1)) | dd of="$WORK/core.img" bs=1 seek=500 conv=notrunc status=none
	dd if="$WORK/core.img" of="$OUT.tmp" bs=512 seek="$CORE_LBA" conv=notrunc status=none
	cp /usr/lib/grub/i386-pc/boot.img "$WORK/boot.img"
	# 0x5c: LBA of core.img; 0x64: boot drive 0xff (the one the BIOS
	# booted); 0x66: the floppy check jump becomes two NOPs (a hard disk).
	le 8 "$CORE_LBA" | dd of="$WORK/boot.img" bs=1 seek=$((0x5c)) conv=notrunc status=none
	printf '\377' | dd of="$WORK/boot.img" bs=1 seek=$((0x64)) conv=notrunc status=none
	printf '\220\220' | dd of="$WORK/boot.img" bs=1 seek=$((0x66)) conv=notrunc status=none
	dd if="$WORK/boot.img" of="$OUT.tmp" bs=440 count=1 conv=notrunc status=none
fi
mv -f "$OUT.tmp" "$OUT"

# ---- summary ----------------------------------------------------------------
fs_used() { # ext4 bytes in use
	dumpe2fs -h "$1" 2>/dev/null | awk -F: '
		/^Block count/ { c = $2 } /^Free blocks/ { f = $2 } /^Block size/ { b = $2 }
		END { printf "%d", (c - f) * b }'
}
ROOT_USED=$(fs_used "$OUT?offset=$ROOT_OFF")
ESP_USED=0
[ "$LAYOUT" != gpt ] || ESP_USED=$(du -sb --apparent-size "$E" | cut -f1)
ALLOC=$(du -B1 "$OUT" | cut -f1)

{
	echo "# made by scripts/mkdisk.sh; source it for the values"
	echo "LAYOUT=$LAYOUT"
	echo "BIOS_LOADER=$BIOS_LOADER"
	echo "DISK_BYTES=$DISK_BYTES"
	echo "DISK_ID=$DISK_UUID"
	echo "ROOT_PART=$ROOT_PART"
	echo "ROOT_OFFSET=$ROOT_OFF"
	echo "ROOT_BYTES=$ROOT_BYTES"
	echo "ROOT_UUID=$ROOT_UUID"
	echo "ROOT_PARTUUID=$ROOT_PARTUUID"
	echo "ROOT_USED=$ROOT_USED"
	if [ "$LAYOUT" = gpt ]; then
		echo "BIOS_OFFSET=$((BIOS_START * MiB))"
		echo "BIOS_BYTES=$((BIOS_MIB * MiB))"
		echo "BIOS_PARTUUID=$BIOS_PARTUUID"
		echo "ESP_OFFSET=$((ESP_START * MiB))"
		echo "ESP_BYTES=$((ESP_MIB * MiB))"
		echo "ESP_UUID=$ESP_UUID"
		echo "ESP_PARTUUID=$ESP_PARTUUID"
	fi
	if [ "$LAYOUT" != bare ]; then
		echo "SWAP_OFFSET=$((SWAP_START * MiB))"
		echo "SWAP_BYTES=$((SWAP_MIB * MiB))"
		echo "SWAP_UUID=$SWAP_UUID"
		echo "SWAP_PARTUUID=$SWAP_PARTUUID"
	fi
	echo "CMDLINE='$CMDLINE'"
	echo "MARKER='$MARKER'"
	echo "HOSTNAME=$HOSTNAME_"
	echo "DATA_SUM=$DATA_SUM"
	echo "ALLOCATED=$ALLOC"
} >"$OUT.layout"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
{
	printf '%s: %s  %s, %d MiB, disk id %s, %s allocated\n' "$PROG" "${OUT#"$TOP"/}" \
		"$LAYOUT" "$DISK_MIB" "${DISK_UUID:-none}" "$(mib "$ALLOC")"
	row() { printf '  %-5s %-10s %11s %11s  %-8s %-36s %s\n' "$@"; }
	row part name offset size fs uuid "used / partuuid"
	case "$LAYOUT" in
	gpt)
		row 1 bios $((BIOS_START * MiB)) $((BIOS_MIB * MiB)) - - "${core_bytes:-0} / $BIOS_PARTUUID"
		row 2 EFI $((ESP_START * MiB)) $((ESP_MIB * MiB)) vfat "$ESP_UUID" "$(mib "$ESP_USED") / $ESP_PARTUUID"
		row 3 swap $((SWAP_START * MiB)) $((SWAP_MIB * MiB)) swap "$SWAP_UUID" "4 KiB / $SWAP_PARTUUID"
		row 4 root "$ROOT_OFF" "$ROOT_BYTES" ext4 "$ROOT_UUID" "$(mib "$ROOT_USED") / $ROOT_PARTUUID"
		;;
	mbr)
		row 1 swap $((SWAP_START * MiB)) $((SWAP_MIB * MiB)) swap "$SWAP_UUID" "4 KiB / $SWAP_PARTUUID"
		row 2 root "$ROOT_OFF" "$ROOT_BYTES" ext4 "$ROOT_UUID" "$(mib "$ROOT_USED") / $ROOT_PARTUUID"
		;;
	bare)
		row - root 0 "$ROOT_BYTES" ext4 "$ROOT_UUID" "$(mib "$ROOT_USED")"
		;;
	esac
	case "$LAYOUT-$BIOS_LOADER" in
	gpt-extlinux) echo "  boot: BIOS gptmbr.bin -> extlinux (part 4, LegacyBIOSBootable)" ;;
	gpt-grub) echo "  boot: BIOS GRUB boot.img -> core.img (part 1, $core_bytes bytes) -> /boot/grub/grub.cfg (part 4)" ;;
	mbr-extlinux) echo "  boot: BIOS mbr.bin -> extlinux (part 2, active)" ;;
	mbr-grub) echo "  boot: BIOS GRUB boot.img -> core.img (sectors 1-$nsec) -> /boot/grub/grub.cfg (part 2)" ;;
	bare-*) echo "  boot: none (data disk)" ;;
	esac
	[ "$LAYOUT" != gpt ] || echo "  boot: UEFI \\EFI\\BOOT\\BOOTX64.EFI (GRUB) -> /boot/grub/grub.cfg (part 4)"
	[ "$LAYOUT" = bare ] || echo "  cmdline: $CMDLINE"
	echo "  data: $(wc -l <"$R/etc/ferry-test/SHA256SUMS") files in /srv, manifest sha256 $DATA_SUM"
}
