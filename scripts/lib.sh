# Helpers sourced by the build scripts: cache location, quiet logged steps,
# recipe hashes, Debian source packages fetched through a private deb-src
# list, and the one shared linux-source tree with its UAPI headers.
# It never touches /etc/apt or the system's package lists, and nothing here
# writes outside $FERRY_CACHE except what the calling script asks for.
# shellcheck shell=sh

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRY_CACHE=${FERRY_CACHE:-/var/cache/ferry}
# Days before the private deb-src lists are refreshed; a refresh that fails
# (no network) falls back to the old lists with a warning.
FERRY_SRC_MAX_AGE=${FERRY_SRC_MAX_AGE:-7}
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

# ---- Debian source packages ------------------------------------------------

SRC=$FERRY_CACHE/src

# The system's deb sources, rewritten as deb-src: same URIs, suites,
# components and keys, so apt verifies the Sources indices and every .dsc.
src_write_list() {
	mkdir -p "$SRC/lists/partial"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>"$SRC/deb-src.sources.new"
		mv "$SRC/deb-src.sources.new" "$SRC/deb-src.sources"
		_SRC_LIST=$SRC/deb-src.sources
	elif [ -f /etc/apt/sources.list ]; then
		sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list \
			>"$SRC/deb-src.list.new"
		mv "$SRC/deb-src.list.new" "$SRC/deb-src.list"
		_SRC_LIST=$SRC/deb-src.list
	else
		die "no Debian sources found in /etc/apt"
	fi
}

src_apt() {
	apt-get -q \
		-o Dir::Etc::SourceList="$_SRC_LIST" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$SRC/lists" \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
		"$@"
}

# Resolves the Debian version apt would fetch for each package (the .dsc it
# would download), one "pkg version" line each.
src_resolve() {
	src_apt source --print-uris --only-source "$@" |
		sed -n "s/^'[^']*' \([^_]*\)_\([^ ]*\)\.dsc .*/\1 \2/p"
}

_src_refresh() {
	_stale=1
	if [ -f "$SRC/lists/.updated" ] &&
		[ -z "$(find "$SRC/lists/.updated" -mtime +"$FERRY_SRC_MAX_AGE")" ]; then
		_stale=0
	fi
	if [ "$_stale" = 1 ]; then
		src_write_list
		_t0=$(now)
		if src_apt update >"$SRC/update.log" 2>&1; then
			touch "$SRC/lists/.updated"
			rm -f "$SRC/versions"
			# stderr: callers capture src_versions' stdout.
			printf '%s: %-34s %7ss\n' "$FERRY_TAG" "deb-src lists" "$(since "$_t0")" >&2
		elif [ -f "$SRC/lists/.updated" ]; then
			warn "deb-src update failed (see $SRC/update.log); using the old lists"
			touch "$SRC/lists/.updated"
		else
			tail -n 20 "$SRC/update.log" >&2
			die "deb-src update failed: $SRC/update.log"
		fi
	fi
	src_write_list
	_missing=
	for _p in "$@"; do
		grep -q "^$_p " "$SRC/versions" 2>/dev/null || _missing="$_missing $_p"
	done
	if [ -n "$_missing" ]; then
		# shellcheck disable=SC2086
		src_resolve $_missing >>"$SRC/versions"
		for _p in $_missing; do
			grep -q "^$_p " "$SRC/versions" || die "no source package $_p in the deb-src lists"
		done
	fi
}

# src_versions PKGS...: prints "pkg version" for each; refreshes the lists
# only when they are missing or older than FERRY_SRC_MAX_AGE days, so a warm
# build touches no network.
src_versions() {
	mkdir -p "$SRC" "$FERRY_CACHE/locks"
	(
		flock 9
		_src_refresh "$@"
	) 9>"$FERRY_CACHE/locks/src"
	for _p in "$@"; do
		grep "^$_p " "$SRC/versions" | tail -n 1
	done
}

# src_version PKG: the version src_versions recorded.
src_version() { grep "^$1 " "$SRC/versions" | tail -n 1 | cut -d' ' -f2; }

# src_download PKG: downloads PKG's source files (.dsc, .orig, .debian)
# once into $SRC/dl/PKG-VERSION; apt checks them against the signed index.
src_download() {
	_v=$(src_version "$1")
	[ -n "$_v" ] || die "src_download: no version for $1 (call src_versions first)"
	_d=$SRC/dl/$1-$_v
	[ -f "$_d/.complete" ] && return 0
	rm -rf "$_d"
	mkdir -p "$_d"
	# apt downloads as the unprivileged _apt user when it can.
	chown _apt "$_d" 2>/dev/null || true
	src_write_list
	# .dsc names (and so src_resolve) drop the epoch; apt wants it back
	# (zlib is 1:1.2.13.dfsg-1).
	_e=$(apt-cache -o Dir::Etc::SourceList="$_SRC_LIST" \
		-o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$SRC/lists" \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
		showsrc --only-source "$1" 2>/dev/null |
		sed -n "s/^Version: \([0-9]*:\)$_v\$/\1/p" | head -n 1)
	(cd "$_d" && src_apt source --download-only --only-source "$1=$_e$_v")
	touch "$_d/.complete"
}

# src_extract PKG DEST: the Debian-patched tree of PKG in DEST (replaced).
src_extract() {
	_v=$(src_version "$1")
	_d=$SRC/dl/$1-$_v
	rm -rf "$2"
	mkdir -p "$(dirname "$2")"
	dpkg-source --no-check -x "$(ls "$_d"/*.dsc)" "$2"
}

# ---- linux-source ----------------------------------------------------------

# One extracted linux-source tree per Debian version, shared by kernel.sh
# (O= builds) and sysroot.sh (UAPI headers); it is never built in place, so
# it stays clean for out-of-tree builds.
LINUX_VERSION=$(deb_version linux-source-6.1)
LINUX_DIR=$FERRY_CACHE/linux-$LINUX_VERSION
LINUX_SRC=$LINUX_DIR/src
LINUX_HDR=$LINUX_DIR/headers/include

_linux_extract() {
	[ -f "$LINUX_DIR/.extracted" ] && return 0
	# Trees of older linux-source versions (1.5 GB each) are dead weight.
	for _d in "$FERRY_CACHE"/linux-*; do
		if [ -d "$_d" ] && [ "$_d" != "$LINUX_DIR" ]; then rm -rf "$_d"; fi
	done
	rm -rf "$LINUX_DIR/tmp" "$LINUX_SRC"
	mkdir -p "$LINUX_DIR/tmp"
	tar -C "$LINUX_DIR/tmp" -xf /usr/src/linux-source-6.1.tar.xz
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
