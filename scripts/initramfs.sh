#!/bin/sh
# Builds the initramfs: rootfs/initramfs.list.in made concrete, packed by
# the kernel's own gen_init_cpio with a fixed timestamp and gzip -n, so two
# builds from the same inputs are byte-identical. Never reads the build
# host's clock, user names or file order.
#
#   scripts/initramfs.sh OUT      (OUT: build/out/initramfs.cpio.gz)
#
# Inputs (override by environment, e.g. for stand-ins):
#   FERRY_INIT     build/out/ferry-init
#   BUSYBOX        build/sysroot/bin/busybox  (busybox-static, sources.lock)
#   E2FSCK         build/sysroot/bin/e2fsck
#   RESIZE2FS      build/sysroot/bin/resize2fs
#   GEN_INIT_CPIO  build/kernel/gen_init_cpio
#   SOURCE_DATE_EPOCH  mtime of every entry (default 1704067200, 2024-01-01)
set -eu

die() {
	echo "initramfs: error: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: $0 OUT"
case "$1" in
/*) OUT=$1 ;;
*) OUT=$(pwd)/$1 ;;
esac
cd "$(dirname "$0")/.."
TOP=$(pwd)

FERRY_INIT=${FERRY_INIT:-build/out/ferry-init}
BUSYBOX=${BUSYBOX:-build/sysroot/bin/busybox}
E2FSCK=${E2FSCK:-build/sysroot/bin/e2fsck}
RESIZE2FS=${RESIZE2FS:-build/sysroot/bin/resize2fs}
GEN_INIT_CPIO=${GEN_INIT_CPIO:-build/kernel/gen_init_cpio}
EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
MAX_BYTES=$((4 * 1024 * 1024))
STAGE=build/initramfs

[ -x "$GEN_INIT_CPIO" ] || die "$GEN_INIT_CPIO: missing or not executable (build the kernel first: make kernel)"
[ -f rootfs/initramfs.list.in ] || die "rootfs/initramfs.list.in: missing"

# Every binary must be static: the initramfs has no dynamic loader, and a
# dynamic binary would fail only at run time with a bare ENOENT.
check_static() {
	[ -f "$2" ] || die "$1: $2: missing"
	[ -x "$2" ] || die "$1: $2: not executable"
	hdr=$(od -An -c -N4 "$2" | tr -d ' ')
	[ "$hdr" = '177ELF' ] || die "$1: $2: not an ELF executable"
	if LC_ALL=C readelf -l "$2" 2>/dev/null | grep -q 'program interpreter'; then
		die "$1: $2: dynamically linked (needs a static build)"
	fi
}
check_static ferry-init "$FERRY_INIT"
check_static busybox "$BUSYBOX"
check_static e2fsck "$E2FSCK"
check_static resize2fs "$RESIZE2FS"

# Stage copies with a fixed mtime: gen_init_cpio stores a regular file's own
# mtime (-t only covers directories, links and nodes).
rm -rf "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/rootfs"
cp "$FERRY_INIT" "$STAGE/bin/ferry-init"
cp "$BUSYBOX" "$STAGE/bin/busybox"
cp "$E2FSCK" "$STAGE/bin/e2fsck"
cp "$RESIZE2FS" "$STAGE/bin/resize2fs"
strip --strip-all "$STAGE/bin/e2fsck" "$STAGE/bin/resize2fs"
(cd rootfs && find . -type f ! -name '*.in' -print) | while read -r f; do
	mkdir -p "$STAGE/rootfs/$(dirname "$f")"
	cp "rootfs/$f" "$STAGE/rootfs/$f"
done
find "$STAGE" -exec touch -h -d "@$EPOCH" {} +

# Applet links. The manifest's own entries win (never overwrite /init or a
# real tool), and every applet's directory must be declared in the manifest.
LIST=$STAGE/initramfs.list
APPLETS=$STAGE/applets.list
declared=$(awk '$1 == "dir" || $1 == "file" || $1 == "slink" || $1 == "nod" { print $2 }' \
	rootfs/initramfs.list.in)
"$BUSYBOX" --list-full | LC_ALL=C sort -u | while read -r a; do
	p=/$a
	if printf '%s\n' "$declared" | grep -qxF "$p"; then
		continue
	fi
	d=${p%/*}
	if [ -n "$d" ] && ! printf '%s\n' "$declared" | grep -qxF "$d"; then
		die "busybox applet $p: directory $d is not in rootfs/initramfs.list.in"
	fi
	echo "slink $p /bin/busybox 0777 0 0"
done >"$APPLETS"
n_applets=$(wc -l <"$APPLETS")
[ "$n_applets" -gt 100 ] || die "$BUSYBOX --list-full gave only $n_applets applets"

S=$TOP/$STAGE
sed -e "s|@FERRY_INIT@|$S/bin/ferry-init|" \
	-e "s|@BUSYBOX@|$S/bin/busybox|" \
	-e "s|@E2FSCK@|$S/bin/e2fsck|" \
	-e "s|@RESIZE2FS@|$S/bin/resize2fs|" \
	-e "s|@ROOTFS@|$S/rootfs|g" \
	-e "/^@BUSYBOX_APPLETS@\$/{
r $APPLETS
d
}" rootfs/initramfs.list.in >"$LIST"
if grep -v '^#' "$LIST" | grep '@[A-Z_]*@' >&2; then
	die "$LIST: unreplaced placeholder"
fi

mkdir -p "$(dirname "$OUT")"
"$GEN_INIT_CPIO" -t "$EPOCH" "$LIST" >"$STAGE/initramfs.cpio" ||
	die "gen_init_cpio failed on $LIST"
gzip -n -9 <"$STAGE/initramfs.cpio" >"$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"

size=$(wc -c <"$OUT")
raw=$(wc -c <"$STAGE/initramfs.cpio")
printf '  CPIO    %s  %d bytes (%d.%d MiB; %d KiB unpacked, %d applet links)\n' \
	"${OUT#"$TOP"/}" "$size" $((size / 1048576)) $((size % 1048576 * 10 / 1048576)) \
	$((raw / 1024)) "$n_applets"
if [ "$size" -gt "$MAX_BYTES" ]; then
	die "$OUT is $size bytes, over the 4 MiB budget ($MAX_BYTES)"
fi
