#!/bin/sh
# Builds the live kernel: linux-source-6.1 configured from `make allnoconfig`
# plus the kernel-config/*.config fragments, out of tree in
# $FERRY_CACHE/kernel-<debian version>-<recipe hash>, and points build/kernel
# at it (bzImage, config, gen_init_cpio, .stamp).  Every CONFIG_ line of every
# fragment must survive olddefconfig; a dropped option fails the build.
# A cached build is only relinked.  It never builds inside the shared
# source tree, which sysroot.sh also reads.
set -eu
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

MAX_BZIMAGE=$((4 * 1024 * 1024))
FRAGS=$(ls "$ROOT"/kernel-config/*.config)
[ -n "$FRAGS" ] || die "no fragments in kernel-config/"

# The key: linux-source's Debian version, the compiler, this script and the
# fragments (names and contents).
# shellcheck disable=SC2086
KEYTEXT=$(printf '%s\n' "$(lock_line linux-source-6.1)" "gcc $(gcc -dumpfullversion)" \
	"recipe $(recipe_hash "$ROOT/scripts/kernel.sh" $FRAGS)")
KEY=$(printf '%s\n' "$KEYTEXT" | short_hash)
K=$FERRY_CACHE/kernel-$(printf '%s' "$LINUX_VERSION" | tr ':' '~')-$KEY
OBJ=$K/obj
LOGS=$K/logs

link() {
	mkdir -p "$ROOT/build"
	if [ -d "$ROOT/build/kernel" ] && [ ! -L "$ROOT/build/kernel" ]; then
		rm -rf "$ROOT/build/kernel"
	fi
	ln -sfn "$K" "$ROOT/build/kernel"
	touch "$K/.stamp"
}

if [ -f "$K/.complete" ]; then
	link
	say "cached $(basename "$K") (bzImage $(stat -c %s "$K/bzImage") bytes)"
	exit 0
fi

# Reproducible version string: no build user, host or wall-clock time.
KBUILD_BUILD_USER=ferry
KBUILD_BUILD_HOST=ferry
lock_fetch linux-source-6.1
KBUILD_BUILD_TIMESTAMP=$(date -u -r "$LINUX_TARBALL")
export KBUILD_BUILD_USER KBUILD_BUILD_HOST KBUILD_BUILD_TIMESTAMP

kmake() { make -C "$LINUX_SRC" O="$OBJ" ARCH=x86 "$@"; }

configure() {
	mkdir -p "$OBJ"
	kmake allnoconfig
	# shellcheck disable=SC2086
	"$LINUX_SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" $FRAGS
	kmake olddefconfig
}

# check_config: every "CONFIG_X=v" and "# CONFIG_X is not set" line of every
# fragment against the final .config; lists each one that did not survive.
check_config() {
	awk '
	FNR == 1 { file = FILENAME; sub(".*/", "", file) }
	FILENAME == cfg {
		if ($0 ~ /^CONFIG_/) { i = index($0, "="); have[substr($0, 1, i - 1)] = substr($0, i + 1) }
		next
	}
	/^CONFIG_/ {
		i = index($0, "="); sym = substr($0, 1, i - 1); want = substr($0, i + 1)
		n++
		if (!(sym in have)) { printf "  %s: %s=%s, got: not set\n", file, sym, want; bad++ }
		else if (have[sym] != want) { printf "  %s: %s=%s, got: %s\n", file, sym, want, have[sym]; bad++ }
		next
	}
	/^# CONFIG_.* is not set$/ {
		sym = $2; n++
		if ((sym in have) && have[sym] != "n") { printf "  %s: %s off, got: %s\n", file, sym, have[sym]; bad++ }
	}
	END {
		if (bad) { printf "%d of %d fragment lines missing or different\n", bad, n; exit 1 }
		printf "%d fragment lines checked\n", n
	}' cfg="$OBJ/.config" "$OBJ/.config" "$@"
}

build() {
	kmake -j"$(nproc)" bzImage
}

install_outputs() {
	cp "$OBJ/arch/x86/boot/bzImage" "$K/bzImage"
	cp "$OBJ/.config" "$K/config"
	# The initramfs builder; the same tool the kernel uses for built-in
	# initramfs images, from the same tree.
	cc -O2 -o "$K/gen_init_cpio" "$LINUX_SRC/usr/gen_init_cpio.c"
}

# smoke: boots the new bzImage under TCG with no initramfs; it must print
# its banner and panic for want of a root fs (the panic ends QEMU, thanks to
# panic=-1 and -no-reboot).
smoke() {
	timeout 120 qemu-system-x86_64 -accel tcg -cpu max -nodefaults -no-reboot \
		-m 256 -display none -serial stdio -kernel "$K/bzImage" \
		-append "console=ttyS0 panic=-1" >"$LOGS/boot.log" 2>&1 || true
	cat "$LOGS/boot.log"
	grep -q '^Linux version' "$LOGS/boot.log"
	grep -Eq 'Kernel panic - not syncing: (VFS: Unable to mount root|No working init found)' \
		"$LOGS/boot.log"
}

# One kernel build at a time per cache.  The lock holder keeps the last
# completed builds' outputs but drops their object trees (~250 MB each) and
# whatever other unfinished builds left; an unfinished build of this key
# resumes where it stopped.
mkdir -p "$FERRY_CACHE/locks"
exec 9>"$FERRY_CACHE/locks/kernel"
flock 9
if [ -f "$K/.complete" ]; then
	link
	say "cached $(basename "$K")"
	exit 0
fi
for d in "$FERRY_CACHE"/kernel-*; do
	if [ ! -d "$d" ] || [ "$d" = "$K" ]; then
		continue
	elif [ -f "$d/.complete" ]; then
		rm -rf "$d/obj"
	else
		rm -rf "$d"
	fi
done

linux_tree
step "$LOGS/config.log" "configure (allnoconfig + fragments)" configure
# shellcheck disable=SC2086
if ! check_config $FRAGS >"$LOGS/check.log" 2>&1; then
	say "fragment options missing from the final .config:" >&2
	cat "$LOGS/check.log" >&2
	exit 1
fi
say "$(tail -n 1 "$LOGS/check.log")"
step "$LOGS/build.log" "bzImage (make -j$(nproc))" build
step "$LOGS/install.log" "bzImage, config, gen_init_cpio" install_outputs

size=$(stat -c %s "$K/bzImage")
if [ "$size" -gt "$MAX_BZIMAGE" ]; then
	die "bzImage is $size bytes, more than $MAX_BZIMAGE"
fi
step "$LOGS/smoke.log" "boot to the root-fs panic (TCG)" smoke
printf '%s\n' "$KEYTEXT" "$FRAGS" >"$K/.complete"
link
say "bzImage $size bytes ($(basename "$K"))"
