# Helpers sourced by the build scripts: cache location, quiet logged steps,
# recipe hashes, the pinned Debian inputs (lock.sh, sources.lock), and the
# one shared linux-source tree with its UAPI headers.
# It never touches /etc/apt or the system's package lists, and nothing here
# writes outside $FERRY_CACHE except what the calling script asks for.
# shellcheck shell=sh

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRY_CACHE=${FERRY_CACHE:-/var/cache/ferry}
FERRY_TAG=${FERRY_TAG:-$(basename "$0" .sh)}
export FERRY_CACHE
# The builds here are self-contained: the top-level make's command line
# (MAKEFLAGS) and a developer's compiler flags must not leak into kbuild or
# into the musl builds of the libraries.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES CFLAGS CPPFLAGS LDFLAGS LIBS

say() { printf '%s: %s\n' "$FERRY_TAG" "$*"; }
warn() { printf '%s: warning: %s\n' "$FERRY_TAG" "$*" >&2; }
die() {
	printf '%s: %s\n' "$FERRY_TAG" "$*" >&2
	exit 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# step LOG LABEL CMD...: runs CMD with its output in LOG and prints one line
# with the duration; on failure prints the tail of LOG and exits.  CMD runs
# in a subshell with set -e, so shell functions stop at their first error.
step() {
	_log=$1 _label=$2
	shift 2
	mkdir -p "$(dirname "$_log")"
	_t0=$(now)
	set +e
	(set -e; "$@") >"$_log" 2>&1
	_rc=$?
	set -e
	if [ "$_rc" -ne 0 ]; then
		printf '%s: %-34s FAILED (exit %s)\n' "$FERRY_TAG" "$_label" "$_rc" >&2
		tail -n 40 "$_log" | sed 's/^/    | /' >&2
		printf '%s: full log: %s\n' "$FERRY_TAG" "$_log" >&2
		exit "$_rc"
	fi
	printf '%s: %-34s %7ss\n' "$FERRY_TAG" "$_label" "$(since "$_t0")"
}

# recipe_hash FILES...: short sha256 over the names and contents of FILES.
recipe_hash() {
	for _f in "$@"; do
		printf '%s\n' "${_f#"$ROOT"/}"
		cat "$_f"
	done | sha256sum | cut -c1-12
}

# short_hash: short sha256 of stdin.
short_hash() { sha256sum | cut -c1-12; }

deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || die "package $1 is not installed"; }

# with_lock NAME CMD...: serialises concurrent builds (make -j) that share
# one cache entry.
with_lock() {
	_lk=$1
	shift
	mkdir -p "$FERRY_CACHE/locks"
	flock "$FERRY_CACHE/locks/$_lk" "$@"
}

# ---- pinned inputs (sources.lock) -------------------------------------------

_LOCK_LIB=1
# shellcheck source=scripts/lock.sh
. "$ROOT/scripts/lock.sh"

# ---- linux-source ----------------------------------------------------------

# One extracted linux-source tree per Debian version, shared by kernel.sh
# (O= builds) and sysroot.sh (UAPI headers); it is never built in place, so
# it stays clean for out-of-tree builds.
# (A lock without linux-source, as lock.sh's tests use, has no tree.)
LINUX_VERSION=none
if lock_has linux-source-6.1; then LINUX_VERSION=$(lock_version linux-source-6.1); fi
LINUX_DIR=$FERRY_CACHE/linux-$(printf '%s' "$LINUX_VERSION" | tr ':' '~')
LINUX_SRC=$LINUX_DIR/src
LINUX_HDR=$LINUX_DIR/headers/include

# The locked linux-source-6.1 .deb's tarball (lock_fetch linux-source-6.1
# first).
LINUX_TARBALL=
if lock_has linux-source-6.1; then
	LINUX_TARBALL=$(lock_dir linux-source-6.1)/root/usr/src/linux-source-6.1.tar.xz
fi

_linux_extract() {
	[ -f "$LINUX_DIR/.extracted" ] && return 0
	# Trees of older linux-source versions (1.5 GB each) are dead weight.
	for _d in "$FERRY_CACHE"/linux-*; do
		if [ -d "$_d" ] && [ "$_d" != "$LINUX_DIR" ]; then rm -rf "$_d"; fi
	done
	rm -rf "$LINUX_DIR/tmp" "$LINUX_SRC"
	mkdir -p "$LINUX_DIR/tmp"
	lock_fetch linux-source-6.1
	tar -C "$LINUX_DIR/tmp" -xf "$LINUX_TARBALL"
	mv "$LINUX_DIR/tmp/linux-source-6.1" "$LINUX_SRC"
	rmdir "$LINUX_DIR/tmp"
	touch "$LINUX_DIR/.extracted"
}

_linux_headers() {
	[ -f "$LINUX_DIR/.headers" ] && return 0
	rm -rf "$LINUX_DIR/headers" "$LINUX_DIR/hdr-obj"
	# headers_install is `headers` plus an rsync (not installed here) that
	# skips kbuild's .*.cmd files; copy by hand instead.
	make -C "$LINUX_SRC" O="$LINUX_DIR/hdr-obj" ARCH=x86 headers
	mkdir -p "$LINUX_DIR/headers"
	cp -a "$LINUX_DIR/hdr-obj/usr/include" "$LINUX_HDR"
	find "$LINUX_HDR" -name '.*' -type f -delete
	rm -rf "$LINUX_DIR/hdr-obj"
	touch "$LINUX_DIR/.headers"
}

# linux_tree: extracts the tree once (flock'd: sysroot and kernel may run
# in parallel under make -j).
linux_tree() {
	[ -f "$LINUX_DIR/.extracted" ] && return 0
	mkdir -p "$LINUX_DIR" "$FERRY_CACHE/locks"
	(
		flock 9
		if [ ! -f "$LINUX_DIR/.extracted" ]; then
			step "$LINUX_DIR/extract.log" "extract linux-source $LINUX_VERSION" _linux_extract
		fi
	) 9>"$FERRY_CACHE/locks/linux-$LINUX_VERSION"
}

# linux_headers: the UAPI headers (make headers_install) in $LINUX_HDR.
linux_headers() {
	linux_tree
	[ -f "$LINUX_DIR/.headers" ] && return 0
	(
		flock 9
		if [ ! -f "$LINUX_DIR/.headers" ]; then
			step "$LINUX_DIR/headers.log" "linux headers_install" _linux_headers
		fi
	) 9>"$FERRY_CACHE/locks/linux-$LINUX_VERSION"
}
