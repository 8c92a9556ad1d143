#!/bin/sh
# Builds the live ISO: a grub-mkrescue hybrid (BIOS El Torito + UEFI ESP,
# also bootable as a USB disk) with build/out/vmlinuz and the initramfs.
# GRUB talks on the first serial port and the screen at once, so the menu
# works on a cloud serial console and on VNC alike. Only the GRUB modules
# the menu needs are installed (fonts, locales and themes left out): about
# 4 MB of overhead instead of 20.
#
#   scripts/iso.sh OUT            (OUT: build/out/ferry-live.iso)
#
# Inputs: VMLINUZ (build/out/vmlinuz), INITRAMFS (build/out/initramfs.cpio.gz).
# SOURCE_DATE_EPOCH (default 1704067200) fixes the file dates and volume
# times.
set -eu

die() {
	echo "iso: error: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: $0 OUT"
case "$1" in
/*) OUT=$1 ;;
*) OUT=$(pwd)/$1 ;;
esac
cd "$(dirname "$0")/.."
TOP=$(pwd)

VMLINUZ=${VMLINUZ:-build/out/vmlinuz}
INITRAMFS=${INITRAMFS:-build/out/initramfs.cpio.gz}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
export SOURCE_DATE_EPOCH
MAX_BYTES=$((12 * 1024 * 1024))
STAGE=build/iso
# The names must exist for both i386-pc and x86_64-efi.
MODULES="linux normal iso9660 search serial terminal configfile echo part_msdos part_gpt fat all_video"
# GRUB probes every partition map it knows and prints "file not found" for
# each missing one: ship them (about 10 KiB) so the boot shows no errors.
MODULES="$MODULES part_acorn part_amiga part_bsd part_dfly part_dvh part_plan part_sun part_sunpc"
# Shared with scripts/pxe.sh: the last console= becomes /dev/console.
CONSOLE_ARGS="console=tty0 console=ttyS0,115200"

for f in "$VMLINUZ" "$INITRAMFS"; do
	[ -s "$f" ] || die "$f: missing or empty"
done
command -v grub-mkrescue >/dev/null || die "grub-mkrescue not found (apt-get install grub-common)"
for d in /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi; do
	[ -d "$d" ] || die "$d missing (apt-get install grub-pc-bin grub-efi-amd64-bin)"
done
command -v xorriso >/dev/null || die "xorriso not found"
command -v mformat >/dev/null || die "mformat not found (apt-get install mtools)"

rm -rf "$STAGE"
mkdir -p "$STAGE/root/boot/grub"
cp "$VMLINUZ" "$STAGE/root/boot/vmlinuz"
cp "$INITRAMFS" "$STAGE/root/boot/initramfs.cpio.gz"
cat >"$STAGE/root/boot/grub/grub.cfg" <<EOF
# ferry live ISO. The same three entries are in the PXE menu (scripts/pxe.sh).
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=3
set timeout_style=menu

menuentry "ferry: migration mode" {
	linux /boot/vmlinuz $CONSOLE_ARGS ferry.mode=serve
	initrd /boot/initramfs.cpio.gz
}
menuentry "ferry: clean a failed migration" {
	linux /boot/vmlinuz $CONSOLE_ARGS ferry.mode=clean
	initrd /boot/initramfs.cpio.gz
}
menuentry "ferry: rescue shell" {
	linux /boot/vmlinuz $CONSOLE_ARGS ferry.mode=rescue
	initrd /boot/initramfs.cpio.gz
}
EOF
find "$STAGE/root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.tmp"
# Everything after -- goes to xorriso: a volume label an operator can find
# (and search --label can use), and fixed volume dates.
if ! grub-mkrescue -o "$OUT.tmp" \
	--install-modules="$MODULES" --fonts= --locales= --themes= \
	--compress=xz \
	"$STAGE/root" -- \
	-volid FERRY_LIVE \
	-volume_date all_file_dates "=$SOURCE_DATE_EPOCH" \
	>"$STAGE/grub-mkrescue.log" 2>&1; then
	cat "$STAGE/grub-mkrescue.log" >&2
	die "grub-mkrescue failed"
fi
mv -f "$OUT.tmp" "$OUT"

size=$(wc -c <"$OUT")
printf '  ISO     %s  %d bytes (%d.%d MiB)\n' "${OUT#"$TOP"/}" "$size" \
	$((size / 1048576)) $((size % 1048576 * 10 / 1048576))
if [ "$size" -gt "$MAX_BYTES" ]; then
	die "$OUT is $size bytes, over the 12 MiB budget ($MAX_BYTES)"
fi
