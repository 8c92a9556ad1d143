#!/bin/sh
# make check: the pinned inputs' tests (and, under CI, a cold build of the
# sysroot in an empty cache), unit tests (ASan/UBSan), short fuzz runs, qemu-tests against
# the real artifacts, and a smoke run of the benchmarks. Every part runs even
# if an earlier one failed; the last line adds them up: "N passed, N failed,
# N skipped".
set -u
cd "$(dirname "$0")/.."
P=0 F=0 S=0
log=$(mktemp)
tally() {
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/.*\b\([0-9][0-9]*\) passed.*/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
	s=$(printf '%s' "$line" | sed -n 's/.* \([0-9][0-9]*\) skipped.*/\1/p')
	if [ -z "$p" ]; then
		echo "check: $1 printed no summary; counting it as one failure"
		F=$((F + 1))
		return
	fi
	P=$((P + p)); F=$((F + f)); S=$((S + ${s:-0}))
}
run() {
	name=$1
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$log"
	tally "$name"
}
run lock scripts/test-lock.sh
# CI proves the cold path: the sysroot (every locked input fetched, every
# library built) in an empty cache of its own.
if [ "${CI:-}" = true ] || [ "${FERRY_COLD:-0}" = 1 ]; then
	run cold scripts/cold.sh
fi
run unit make --no-print-directory unit
run fuzz make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
run qemu-tests qemu-tests/run.sh
# The benchmark harness at tiny sizes, one round: so it cannot rot.
run bench-smoke bench/run.sh --smoke
rm -f "$log"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
