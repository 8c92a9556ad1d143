#!/bin/sh
# The cold path, as a fresh machine meets it: every input in sources.lock
# fetched from the Debian archive into an empty cache (FERRY_CACHE of its
# own, removed afterwards) and the musl sysroot built from them.  Run by
# `make check` under CI (CI=true) or FERRY_COLD=1, so an input the archive
# stopped serving fails CI instead of the first user.  The kernel is not
# rebuilt here (5-6 minutes): its input, linux-source, is fetched and its
# UAPI headers built cold; the kernel build itself is proven by every cold
# `make` and keyed by the same lock line.
# Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
C=$(mktemp -d "${FERRY_COLD_DIR:-/var/tmp}/ferry-cold.XXXXXX")
trap 'rm -rf "$C"' EXIT
t0=$(date +%s)
P=0 F=0
if FERRY_CACHE=$C FERRY_NOLINK=1 FERRY_TAG=cold "$ROOT/scripts/sysroot.sh"; then
	cold=$(basename "$(ls -d "$C"/sysroot-* | head -n 1)")
	warm=$(basename "$(readlink "$ROOT/build/sysroot" 2>/dev/null || echo none)")
	echo "ok   cold sysroot built in $(($(date +%s) - t0)) s: $cold"
	P=$((P + 1))
	# The warm build was made from the same lock lines, so the same key.
	if [ "$cold" = "$warm" ]; then
		echo "ok   the warm build/sysroot has the same key (same pinned inputs)"
		P=$((P + 1))
	else
		echo "FAIL cold key $cold, but build/sysroot is $warm"
		F=$((F + 1))
	fi
else
	echo "FAIL the sysroot does not build from an empty cache"
	F=$((F + 1))
fi
echo "$P passed, $F failed"
[ "$F" = 0 ]
