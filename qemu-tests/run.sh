#!/bin/bash
# Runs the QEMU cases one after another (TCG is CPU-bound: two at once would
# only make both slow and their timings meaningless), each under a hard
# timeout. A case exits 0 (pass), 77 (skip, with a "SKIP: reason" line) or
# anything else (fail).
#
#   qemu-tests/run.sh [CASE...]      (CASE: 01-boot-status or its number 01)
#
# Environment: Q_CASE_TIMEOUT (seconds per case, 600; a case's own
# "timeout" file, one number, raises it for that case), Q_KEEP=1 (keep the
# temp dirs of passing cases too).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
limit=${Q_CASE_TIMEOUT:-600}

cases=()
if [ $# -eq 0 ]; then
	for t in "$here"/*/test.sh; do
		[ -f "$t" ] && cases+=("$(basename "$(dirname "$t")")")
	done
else
	for a in "$@"; do
		a=${a%/}
		a=${a##*/}
		m=("$here"/"$a"*/test.sh)
		if [ ! -f "${m[0]}" ] || [ ${#m[@]} -ne 1 ]; then
			echo "qemu-tests: no single case matches '$a'" >&2
			exit 2
		fi
		cases+=("$(basename "$(dirname "${m[0]}")")")
	done
fi

pass=0 fail=0 skip=0
failed=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-qemu-run.XXXXXX")
for c in "${cases[@]}"; do
	log=$logdir/$c.log
	t0=$(date +%s.%N)
	limit=${Q_CASE_TIMEOUT:-600}
	if [ -f "$here/$c/timeout" ]; then
		own=$(tr -dc 0-9 <"$here/$c/timeout")
		[ -n "$own" ] && [ "$own" -gt "$limit" ] && limit=$own
	fi
	# Output streams as it comes (indented) and is kept for the skip reason.
	timeout -k 15 "$limit" bash "$here/$c/test.sh" </dev/null 2>&1 |
		tee "$log" | sed -u 's/^/    /'
	rc=${PIPESTATUS[0]}
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case "$rc" in
	0)
		pass=$((pass + 1))
		printf 'PASS  %-20s %6ss\n' "$c" "$secs"
		;;
	77)
		skip=$((skip + 1))
		reason=$(sed -n 's/^SKIP: //p' "$log" | tail -n 1)
		printf 'SKIP  %-20s %6ss  %s\n' "$c" "$secs" "${reason:-no reason given}"
		;;
	124 | 137)
		fail=$((fail + 1))
		failed+=("$c")
		printf 'FAIL  %-20s %6ss  (killed after the %ss case timeout)\n' "$c" "$secs" "$limit"
		;;
	*)
		fail=$((fail + 1))
		failed+=("$c")
		printf 'FAIL  %-20s %6ss  (exit %s)\n' "$c" "$secs" "$rc"
		;;
	esac
done
rm -rf "$logdir"
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
