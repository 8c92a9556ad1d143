#!/bin/sh
# Installs the Debian packages the build, the tests and the demo need.
# Idempotent: asks dpkg first and calls apt-get only for what is missing,
# so a machine that has everything prints nothing and touches no network.
set -eu

PKGS="musl-tools musl-dev busybox-static build-essential pkg-config cpio gzip xz-utils
flex bison bc libelf-dev libssl-dev linux-source-6.1 dpkg-dev
qemu-system-x86 qemu-utils ovmf ipxe-qemu xorriso isolinux syslinux syslinux-common
pxelinux grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools
e2fsprogs fdisk gdisk libxxhash-dev libbearssl-dev clang llvm openssl python3 socat
tinyproxy-bin
libext2fs-dev libblkid-dev libzstd-dev zlib1g-dev extlinux
zstd lz4 bzip2 groff-base"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root (or install them) and try again" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be old or absent on a fresh machine.
apt-get -q update >/dev/null
# shellcheck disable=SC2086
apt-get -q -y --no-install-recommends install $missing >/dev/null
echo "deps: done"
