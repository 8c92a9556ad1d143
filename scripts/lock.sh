#!/bin/sh
# The pinned inputs: every Debian package whose files go into what we build
# (source packages built with musl, and the few binary packages whose
# contents we ship or compile) is named with its exact version and the
# sha256 of its .dsc or .deb in $ROOT/sources.lock.  Builds fetch exactly
# those, through a private apt list (apt checks each file against the signed
# index, we check the lock's hash on top), into $FERRY_CACHE/src/dl; a
# complete, matching download is never fetched again, so a warm build needs
# no network.  `make lock` (this script's `update`) is the only thing that
# looks at what is newest.
#
#   scripts/lock.sh fetch [NAME...]   fetch the locked inputs (all by default)
#   scripts/lock.sh update            rewrite sources.lock: for each entry the
#                                     newest version whose files download
#   scripts/lock.sh check             the lock parses; every entry is cached
#
# Sourced by lib.sh for lock_line, lock_fetch, lock_dir, lock_version.
# It never touches /etc/apt or the system's package lists.
# shellcheck shell=sh

FERRY_LOCK=${FERRY_LOCK:-${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}/sources.lock}
SRC=$FERRY_CACHE/src

# lock_line NAME: the lock's line for NAME (whitespace squeezed), or dies.
lock_line() {
	[ -f "$FERRY_LOCK" ] || die "$FERRY_LOCK: missing (the pinned inputs; make lock writes it)"
	_l=$(awk -v n="$1" '$1 == n { $1 = $1; print; exit }' "$FERRY_LOCK")
	[ -n "$_l" ] || die "$FERRY_LOCK: no entry for $1 (add a line '$1 dsc|deb 0 <64 zeros>'" \
		"and run 'make lock' to pin it)"
	printf '%s\n' "$_l"
}

# lock_fields NAME: sets _kind _ver _sha from NAME's line, checking each.
lock_fields() {
	# shellcheck disable=SC2046
	set -- $(lock_line "$1")
	[ $# -eq 4 ] || die "$FERRY_LOCK: $1: want 'name kind version sha256', got $# fields"
	case "$2" in dsc | deb) ;; *) die "$FERRY_LOCK: $1: kind '$2' (want dsc or deb)" ;; esac
	printf '%s' "$4" | grep -Eqx '[0-9a-f]{64}' || die "$FERRY_LOCK: $1: '$4' is not a sha256"
	_kind=$2 _ver=$3 _sha=$4
}

lock_version() {
	lock_fields "$1"
	printf '%s\n' "$_ver"
}

# lock_dir NAME: where NAME's files are (or will be): one directory per lock
# line, so a changed line is a new cache entry.
lock_dir() {
	lock_fields "$1"
	printf '%s/dl/%s_%s_%s\n' "$SRC" "$1" "$(printf '%s' "$_ver" | tr ':' '~')" \
		"$(printf '%s' "$_sha" | cut -c1-12)"
}

# ---- the private apt lists --------------------------------------------------

# The system's sources with both deb and deb-src: same URIs, suites,
# components and keys, so apt verifies every index and file.
# FERRY_APT_SOURCES names another deb822 file to start from (a mirror).
_lock_list() {
	mkdir -p "$SRC/lists/partial"
	_sys=${FERRY_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
	if [ -f "$_sys" ]; then
		sed 's/^Types:.*/Types: deb deb-src/' "$_sys" \
			>"$SRC/private.sources.new"
		mv "$SRC/private.sources.new" "$SRC/private.sources"
		_LIST=$SRC/private.sources
	elif [ -f /etc/apt/sources.list ]; then
		sed -n 's/^[[:space:]]*deb[[:space:]]\(.*\)/deb \1\ndeb-src \1/p' /etc/apt/sources.list \
			>"$SRC/private.list.new"
		mv "$SRC/private.list.new" "$SRC/private.list"
		_LIST=$SRC/private.list
	else
		die "no Debian sources in /etc/apt (sources.list.d/debian.sources or sources.list)"
	fi
}

_lock_apt() {
	_c=$1
	shift
	"$_c" -q -o Dir::Etc::SourceList="$_LIST" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$SRC/lists" \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "$@"
}

# _lock_update: refreshes the private lists once per process.
_lock_update() {
	_lock_list
	[ "${_LOCK_UPDATED:-0}" = 1 ] && return 0
	_t0=$(now)
	# apt-get update exits 0 when every index failed to download: look.
	if ! _lock_apt apt-get update >"$SRC/update.log" 2>&1 ||
		! ls "$SRC/lists/"*_Sources* >/dev/null 2>&1; then
		grep -E '^(Err|E|W):' "$SRC/update.log" | sed 's/^/    | /' | tail -n 6 >&2
		die "cannot read the Debian archive's package lists (no network?);" \
			"needed: $*. They are fetched once into $FERRY_CACHE/src and then" \
			"used offline; run again with network access to deb.debian.org."
	fi
	if grep -q '^Err:' "$SRC/update.log"; then
		warn "some package lists were not refreshed (see $SRC/update.log)"
	fi
	_LOCK_UPDATED=1
	printf '%s: %-34s %7ss\n' "$FERRY_TAG" "package lists (private)" "$(since "$_t0")" >&2
}

# _lock_offered NAME KIND: the versions the lists offer, newest first.
_lock_offered() {
	if [ "$2" = dsc ]; then
		_lock_apt apt-cache showsrc --only-source "$1" 2>/dev/null | sed -n 's/^Version: //p'
	else
		_lock_apt apt-cache madison "$1" 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print $2 }'
	fi | sort -u | while read -r _o; do
		printf '%s\n' "$_o"
	done | _lock_sort_desc
}

# Newest first, by dpkg's ordering (a plain insertion sort; lists are short).
_lock_sort_desc() {
	_all=
	while read -r _v; do _all="$_all $_v"; done
	_out=
	for _v in $_all; do
		_new= _done=0
		for _w in $_out; do
			if [ "$_done" = 0 ] && dpkg --compare-versions "$_v" gt "$_w"; then
				_new="$_new $_v"
				_done=1
			fi
			_new="$_new $_w"
		done
		[ "$_done" = 0 ] && _new="$_new $_v"
		_out=$_new
	done
	for _v in $_out; do printf '%s\n' "$_v"; done
}

# _lock_download NAME KIND VERSION DIR: NAME's files into DIR (apt checks
# them against the signed index); prints the sha256 of the .dsc / .deb.
_lock_download() {
	rm -rf "$4"
	mkdir -p "$4"
	# apt downloads as the unprivileged _apt user when it can.
	chown _apt "$4" 2>/dev/null || true
	if [ "$2" = dsc ]; then
		(cd "$4" && _lock_apt apt-get source --download-only --only-source "$1=$3") \
			>"$4/.fetch.log" 2>&1 || return 1
		_f=$(ls "$4"/*.dsc 2>/dev/null | head -n 1)
	else
		(cd "$4" && _lock_apt apt-get download "$1=$3") >"$4/.fetch.log" 2>&1 || return 1
		_f=$(ls "$4"/*.deb 2>/dev/null | head -n 1)
	fi
	[ -n "$_f" ] || return 1
	sha256sum "$_f" | cut -d' ' -f1
}

# lock_fetch NAME...: each NAME's locked files in lock_dir (a .deb is
# unpacked in its root/); fetched only when that directory is not complete,
# one fetcher at a time per cache (make -j runs sysroot and kernel side by
# side).  Dies with the package, the version, what the lists offer and the
# fix when the archive no longer serves the locked version.
lock_fetch() {
	mkdir -p "$FERRY_CACHE/locks" "$SRC/dl"
	(
		flock 8
		for _n in "$@"; do _lock_fetch1 "$_n"; done
	) 8>"$FERRY_CACHE/locks/fetch"
}

_lock_fetch1() {
	_d=$(lock_dir "$1")
	lock_fields "$1"
	[ -f "$_d/.complete" ] && return 0
	_t0=$(now)
	_lock_update "$1 $_ver"
	if ! _got=$(_lock_download "$1" "$_kind" "$_ver" "$_d.tmp"); then
		_offer=$(_lock_offered "$1" "$_kind" | tr '\n' ' ' | sed 's/ $//')
		sed 's/^/    | /' "$_d.tmp/.fetch.log" | grep -v NOTICE | tail -n 4 >&2
		rm -rf "$_d.tmp"
		die "$1 $_ver ($_kind, pinned in sources.lock) cannot be fetched: the Debian" \
			"archive does not serve it any more. The lists offer: ${_offer:-nothing}." \
			"Run 'make lock' to pin the newest version that downloads, then commit sources.lock."
	fi
	if [ "$_got" != "$_sha" ]; then
		rm -rf "$_d.tmp"
		die "$1 $_ver: the $_kind has sha256 $_got, sources.lock says $_sha" \
			"(the archive changed a published file, or the lock was edited by hand);" \
			"run 'make lock' to re-pin it"
	fi
	_lock_keep "$_kind" "$_d.tmp" "$_d"
	printf '%s: %-34s %7ss\n' "$FERRY_TAG" "fetch $1 $_ver" "$(since "$_t0")" >&2
}

# _lock_keep KIND TMP DIR: a checked download becomes the cache entry DIR.
_lock_keep() {
	if [ "$1" = deb ]; then
		dpkg-deb -x "$(ls "$2"/*.deb)" "$2/root"
	fi
	rm -rf "$3"
	mv "$2" "$3"
	touch "$3/.complete"
}

# lock_extract NAME DEST: the Debian-patched tree of source package NAME.
lock_extract() {
	_d=$(lock_dir "$1")
	[ -f "$_d/.complete" ] || lock_fetch "$1"
	rm -rf "$2"
	mkdir -p "$(dirname "$2")"
	dpkg-source --no-check -x "$(ls "$_d"/*.dsc)" "$2"
}

lock_has() { [ -f "$FERRY_LOCK" ] && awk -v n="$1" '$1 == n { f = 1 } END { exit !f }' "$FERRY_LOCK"; }

lock_names() { awk '!/^#/ && NF { print $1 }' "$FERRY_LOCK"; }

# lock_update: rewrites the lock: for each entry the newest version whose
# files actually download (security-suite versions can be listed and still
# answer 404), with its hash.  Prints what changed.
lock_update() {
	_lock_update "$(lock_names | tr '\n' ' ')"
	_new=$FERRY_LOCK.new
	: >"$_new"
	_tmp=$SRC/dl/lock-probe
	while IFS= read -r _line; do
		case "$_line" in '#'* | '') printf '%s\n' "$_line" >>"$_new"; continue ;; esac
		# shellcheck disable=SC2086
		set -- $_line
		_name=$1 _k=$2 _picked=
		for _v in $(_lock_offered "$_name" "$_k"); do
			if _s=$(_lock_download "$_name" "$_k" "$_v" "$_tmp"); then
				_picked="$_v $_s"
				break
			fi
			say "$_name $_v: listed but does not download; trying an older one" >&2
		done
		[ -n "$_picked" ] || die "$_name: no version in the lists downloads"
		printf '%-18s %s %s\n' "$_name" "$_k" "$_picked" >>"$_new"
		# What was downloaded to prove it is the cache entry of the new line.
		_keep=$SRC/dl/${_name}_$(printf '%s' "${_picked%% *}" | tr ':' '~')_$(printf '%s' "${_picked#* }" | cut -c1-12)
		[ -f "$_keep/.complete" ] || _lock_keep "$_k" "$_tmp" "$_keep"
		[ "$3" = "${_picked%% *}" ] || say "$_name: $3 -> ${_picked%% *}"
	done <"$FERRY_LOCK"
	rm -rf "$_tmp"
	mv "$_new" "$FERRY_LOCK"
	say "$FERRY_LOCK written"
}

if [ -z "${_LOCK_LIB:-}" ]; then
	set -eu
	# shellcheck source=scripts/lib.sh
	. "$(dirname "$0")/lib.sh"
	cmd=${1:-}
	[ $# -gt 0 ] && shift
	case "$cmd" in
	fetch)
		[ $# -gt 0 ] || set -- $(lock_names)
		lock_fetch "$@"
		;;
	update) lock_update ;;
	check)
		for n in $(lock_names); do
			lock_fields "$n"
			printf '%-18s %-4s %-28s %s\n' "$n" "$_kind" "$_ver" \
				"$([ -f "$(lock_dir "$n")/.complete" ] && echo cached || echo 'not cached')"
		done
		;;
	*) die "usage: lock.sh fetch [NAME...] | update | check" ;;
	esac
fi
