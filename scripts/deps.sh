#!/bin/sh
# Installs the Debian packages the build, the tests and the demo need.
# Idempotent: asks dpkg first and calls apt-get only for what is missing,
# so a machine that has everything prints nothing and touches no network.
#
#   scripts/deps.sh                         the project's packages
#   scripts/deps.sh [--no-services] PKG...  these instead (bench/deps.sh);
#       --no-services keeps their install scripts from starting daemons
set -eu

tag=deps no_services=0
if [ "${1:-}" = --no-services ]; then
	no_services=1
	shift
fi
if [ $# -gt 0 ]; then
	PKGS="$*"
	tag=${DEPS_TAG:-deps}
else
# Build tools only: what goes into the artifacts (Debian sources, the
# kernel tree, busybox) is pinned in sources.lock and fetched by lock.sh.
PKGS="musl-tools musl-dev build-essential pkg-config cpio gzip xz-utils
flex bison bc libelf-dev libssl-dev dpkg-dev
qemu-system-x86 qemu-utils ovmf ipxe-qemu xorriso isolinux syslinux syslinux-common
pxelinux grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools
e2fsprogs xfsprogs cryptsetup-bin bcache-tools fdisk gdisk libxxhash-dev libbearssl-dev clang llvm openssl python3 socat
tinyproxy-bin
libext2fs-dev libblkid-dev libzstd-dev zlib1g-dev extlinux
zstd lz4 bzip2 groff-base iproute2 nftables debootstrap initramfs-tools-core
ansible-core ansible-lint yamllint pycodestyle
lvm2 btrfs-progs xfsprogs util-linux"

fi

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
	echo "$tag: missing packages:$missing" >&2
	echo "$tag: run as root (or install them) and try again" >&2
	exit 1
fi
echo "$tag: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be old or absent on a fresh machine.
apt-get -q update >/dev/null
# policy-rc.d exiting 101 tells invoke-rc.d to start no service (e.g.
# openssh-server's postinst would start a system sshd on :22).
prc=/usr/sbin/policy-rc.d own_prc=0
if [ "$no_services" = 1 ] && [ ! -e "$prc" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	own_prc=1
fi
rc=0
# shellcheck disable=SC2086
apt-get -q -y --no-install-recommends install $missing >/dev/null || rc=$?
[ "$own_prc" = 1 ] && rm -f "$prc"
[ "$rc" = 0 ] || { echo "$tag: apt-get install failed (exit $rc)" >&2; exit "$rc"; }
echo "$tag: done"
