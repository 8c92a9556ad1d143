#!/bin/sh
# Installs the contenders the benchmarks measure ferry against, by their
# Debian names. Idempotent: asks dpkg first and calls apt-get only for what
# is missing, so a machine that has everything touches no network. Kept
# apart from scripts/deps.sh: the build and the tests never need these.
set -eu

PKGS="netcat-openbsd openssh-server openssh-client socat openssl partclone
bmap-tools rsync qemu-utils qemu-system-x86 time python3 e2fsprogs"

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
	echo "bench-deps: missing packages:$missing" >&2
	echo "bench-deps: run as root (or install them) and try again" >&2
	exit 1
fi
echo "bench-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be old or absent on a fresh machine.
apt-get -q update >/dev/null
# openssh-server's postinst would start a system sshd on :22; the bench
# runs its own on a free port and wants none listening on the host.
# policy-rc.d (exit 101) tells invoke-rc.d not to start any service.
prc=/usr/sbin/policy-rc.d
own_prc=0
if [ ! -e "$prc" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	own_prc=1
fi
rc=0
# shellcheck disable=SC2086
apt-get -q -y --no-install-recommends install $missing >/dev/null || rc=$?
[ "$own_prc" = 1 ] && rm -f "$prc"
[ "$rc" = 0 ] || { echo "bench-deps: apt-get install failed (exit $rc)" >&2; exit "$rc"; }
echo "bench-deps: done"
