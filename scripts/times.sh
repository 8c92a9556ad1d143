#!/bin/sh
# times.sh: prints where the time of the last make went (build/times.txt,
# written by timed.sh), slowest first, then empties the file.  Prints
# nothing when nothing was timed.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
f=$ROOT/build/times.txt
[ -s "$f" ] || exit 0
echo "where time went:"
awk '{ t[$1] += $2; if ($3 == "failed") bad[$1] = 1; total += $2 }
END {
	for (n in t) printf "  %-12s %8.1fs%s\n", n, t[n], (n in bad) ? "  (failed)" : ""
}' "$f" | sort -k2 -rn
awk '{ total += $2 } END { printf "  %-12s %8.1fs\n", "total", total }' "$f"
: >"$f"
