#!/bin/sh
# timed.sh NAME CMD...: runs CMD, appends "NAME SECONDS" to build/times.txt
# for times.sh, and exits with CMD's status.  Records failed runs too.
set -u
[ $# -ge 2 ] || { echo "usage: timed.sh NAME CMD..." >&2; exit 2; }
name=$1
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
t0=$(date +%s.%N)
"$@"
rc=$?
mkdir -p "$ROOT/build"
awk -v n="$name" -v a="$t0" -v b="$(date +%s.%N)" -v rc="$rc" \
	'BEGIN { printf "%s %.1f%s\n", n, b - a, rc ? " failed" : "" }' >>"$ROOT/build/times.txt"
exit "$rc"
