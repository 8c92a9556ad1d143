#!/bin/sh
# Builds the network-boot tree: a TFTP root with pxelinux (BIOS PXE) and an
# iPXE script (iPXE, BIOS or UEFI, over TFTP or HTTP), both offering the
# same three entries as the ISO, on the serial console and the screen.
#
#   scripts/pxe.sh DIR            (DIR: build/out/pxe)
#
# Inputs: VMLINUZ (build/out/vmlinuz), INITRAMFS (build/out/initramfs.cpio.gz),
# PXELINUX (/usr/lib/PXELINUX/pxelinux.0), LDLINUX
# (/usr/lib/syslinux/modules/bios/ldlinux.c32; must match pxelinux.0).
set -eu

die() {
	echo "pxe: error: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: $0 DIR"
case "$1" in
/*) DIR=$1 ;;
*) DIR=$(pwd)/$1 ;;
esac
cd "$(dirname "$0")/.."
TOP=$(pwd)

VMLINUZ=${VMLINUZ:-build/out/vmlinuz}
INITRAMFS=${INITRAMFS:-build/out/initramfs.cpio.gz}
PXELINUX=${PXELINUX:-/usr/lib/PXELINUX/pxelinux.0}
LDLINUX=${LDLINUX:-/usr/lib/syslinux/modules/bios/ldlinux.c32}
# Same as scripts/iso.sh: the last console= becomes /dev/console.
CONSOLE_ARGS="console=tty0 console=ttyS0,115200"

for f in "$VMLINUZ" "$INITRAMFS"; do
	[ -s "$f" ] || die "$f: missing or empty"
done
[ -f "$PXELINUX" ] || die "$PXELINUX missing (apt-get install pxelinux)"
[ -f "$LDLINUX" ] || die "$LDLINUX missing (apt-get install syslinux-common)"

# Build next to DIR and swap it in, so a failed run never leaves half a tree.
NEW=$DIR.new
rm -rf "$NEW"
mkdir -p "$NEW/pxelinux.cfg"
cp "$PXELINUX" "$NEW/pxelinux.0"
cp "$LDLINUX" "$NEW/ldlinux.c32"
cp "$VMLINUZ" "$NEW/vmlinuz"
cp "$INITRAMFS" "$NEW/initramfs.cpio.gz"

# pxelinux without menu.c32: a boot: prompt that takes a label and boots
# the default after TIMEOUT (tenths of a second).
{
	echo "SERIAL 0 115200"
	echo "DEFAULT serve"
	echo "PROMPT 1"
	echo "TIMEOUT 30"
	echo "SAY ferry: type a label and Enter, or wait 3 s for the default:"
	echo "SAY   serve   ferry: migration mode (default)"
	echo "SAY   clean   ferry: clean a failed migration"
	echo "SAY   rescue  ferry: rescue shell"
	for m in serve clean rescue; do
		echo ""
		echo "LABEL $m"
		echo "  KERNEL vmlinuz"
		echo "  INITRD initramfs.cpio.gz"
		echo "  APPEND $CONSOLE_ARGS ferry.mode=$m"
	done
} >"$NEW/pxelinux.cfg/default"

# iPXE resolves the relative names against the script's own URL, so the
# tree works from any TFTP or HTTP root. initrd= names the initrd for a
# UEFI kernel's EFI stub; BIOS kernels ignore it.
cat >"$NEW/boot.ipxe" <<EOF
#!ipxe
# ferry network boot. Chain it from iPXE:  chain tftp://SERVER/boot.ipxe
# (or http://SERVER/boot.ipxe); the files it names sit next to it.
set mode serve
menu ferry || goto boot
item serve  ferry: migration mode
item clean  ferry: clean a failed migration
item rescue ferry: rescue shell
choose --default serve --timeout 3000 mode || set mode serve
:boot
echo ferry: booting ferry.mode=\${mode}
kernel vmlinuz initrd=initramfs.cpio.gz $CONSOLE_ARGS ferry.mode=\${mode}
initrd initramfs.cpio.gz
boot
EOF

cat >"$NEW/README" <<'EOF'
ferry network boot tree. Serve this directory over TFTP (BIOS PXE: DHCP
filename "pxelinux.0"; e.g. dnsmasq --enable-tftp --tftp-root=THIS_DIR
--dhcp-boot=pxelinux.0) or chain boot.ipxe from iPXE over TFTP or HTTP
(python3 -m http.server -d THIS_DIR, then in iPXE: chain http://HOST:8000/boot.ipxe).
Serial console: ttyS0 at 115200. Kernel arguments such as ferry.token= or
ip= go on the APPEND lines of pxelinux.cfg/default or the kernel line of
boot.ipxe.
EOF
touch "$NEW/.stamp"

rm -rf "$DIR"
mv "$NEW" "$DIR"
total=$(du -sk "$DIR" | cut -f1)
printf '  PXE     %s  %d KiB (pxelinux.0, ldlinux.c32, boot.ipxe, vmlinuz, initramfs)\n' \
	"${DIR#"$TOP"/}" "$total"
