#!/bin/sh
# Tests of the pinned inputs (scripts/lock.sh, sources.lock), each in an
# empty cache of its own, against the real Debian archive:
#  - every line of sources.lock parses (kind, version, sha256);
#  - a locked version the archive does not serve fails with the package,
#    the version, what the lists offer and `make lock`;
#  - a .dsc whose hash differs from the lock fails and names both hashes;
#  - without network a cold fetch fails naming what it needed;
#  - `make lock` (lock.sh update) re-pins a stale lock to versions that
#    download, and the result fetches in a fresh cache;
#  - a warm cache fetches nothing: it works with the network gone.
# Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-lock.XXXXXX")
trap 'rm -rf "$T"' EXIT
P=0 F=0
ok() { P=$((P + 1)); echo "ok   $*"; }
bad() { F=$((F + 1)); echo "FAIL $*"; }
lock() { "$ROOT/scripts/lock.sh" "$@"; }
SYS=${FERRY_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
sed 's|http://[^ /]*|http://127.0.0.1:9|' "$SYS" >"$T/offline.sources"

# 1. The lock parses.
if FERRY_CACHE=$T/c0 lock check >"$T/check.out" 2>&1 &&
	[ "$(wc -l <"$T/check.out")" -ge 7 ]; then
	ok "sources.lock: $(wc -l <"$T/check.out") entries parse"
else
	bad "sources.lock does not parse: $(tail -n 2 "$T/check.out")"
fi

# 2. A version the archive does not serve.
zl=$(awk '$1 == "zlib"' "$ROOT/sources.lock")
printf '%s\n' "$zl" | awk '{ print $1, $2, $3 "+ferry9", $4 }' >"$T/gone.lock"
if FERRY_CACHE=$T/c1 FERRY_LOCK=$T/gone.lock lock fetch zlib >"$T/gone.out" 2>&1; then
	bad "a version that does not exist was fetched"
else
	v=$(awk '{ print $3 }' "$T/gone.lock")
	if grep -qF "zlib $v (dsc, pinned in sources.lock) cannot be fetched" "$T/gone.out" &&
		grep -Eq 'The lists offer: [0-9]+:1\.2\.' "$T/gone.out" &&
		grep -qF "Run 'make lock'" "$T/gone.out"; then
		ok "vanished version: $(grep -F 'cannot be fetched' "$T/gone.out" | cut -c1-120)..."
	else
		bad "vanished version: unclear error: $(cat "$T/gone.out")"
	fi
fi

# 3. A hash that does not match.
printf '%s\n' "$zl" | awk '{ print $1, $2, $3, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }' \
	>"$T/hash.lock"
if FERRY_CACHE=$T/c2 FERRY_LOCK=$T/hash.lock lock fetch zlib >"$T/hash.out" 2>&1; then
	bad "a .dsc with the wrong hash was accepted"
elif grep -q "sources.lock says 0123456789abcdef" "$T/hash.out" &&
	! ls "$T"/c2/src/dl/zlib_*/.complete >/dev/null 2>&1; then
	ok "hash mismatch refused, nothing cached"
else
	bad "hash mismatch: $(cat "$T/hash.out")"
fi

# 4. No network, cold cache.
if FERRY_CACHE=$T/c3 FERRY_APT_SOURCES=$T/offline.sources lock fetch zlib >"$T/off.out" 2>&1; then
	bad "fetched with no network"
elif grep -q "no network?); needed: zlib " "$T/off.out"; then
	ok "no network: $(grep -o 'cannot read.*needed: [^.]*' "$T/off.out")"
else
	bad "no network: unclear error: $(tail -n 2 "$T/off.out")"
fi

# 5. make lock on a stale lock: re-pinned to versions that download.
{
	echo "# a stale lock"
	awk '$1 == "zlib" || $1 == "bearssl" { print $1, $2, $3 "+ferry9", $4 }' "$ROOT/sources.lock"
} >"$T/stale.lock"
if FERRY_CACHE=$T/c4 FERRY_LOCK=$T/stale.lock lock update >"$T/upd.out" 2>&1 &&
	! grep -q ferry9 "$T/stale.lock" && grep -q '^# a stale lock' "$T/stale.lock" &&
	[ "$(grep -c ' dsc ' "$T/stale.lock")" = 2 ]; then
	if FERRY_CACHE=$T/c5 FERRY_LOCK=$T/stale.lock lock fetch >"$T/f5.out" 2>&1; then
		ok "make lock re-pinned: $(awk '!/^#/ { printf "%s %s; ", $1, $3 }' "$T/stale.lock")fetches cold"
	else
		bad "make lock wrote a lock that does not fetch: $(tail -n 3 "$T/f5.out")"
	fi
else
	bad "make lock failed: $(tail -n 3 "$T/upd.out"; cat "$T/stale.lock")"
fi

# 6. Warm: the cache of 5, network gone.
if FERRY_CACHE=$T/c5 FERRY_LOCK=$T/stale.lock FERRY_APT_SOURCES=$T/offline.sources \
	lock fetch >"$T/warm.out" 2>&1; then
	ok "warm cache: fetch needs no network"
else
	bad "warm cache went to the network: $(tail -n 3 "$T/warm.out")"
fi

echo "$P passed, $F failed"
[ "$F" = 0 ]
