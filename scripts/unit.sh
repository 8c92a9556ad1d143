#!/bin/sh
# Runs the unit test binaries given as arguments, shows the failures, and
# ends with one line: "unit: N passed, N failed, N skipped".
set -u
pass=0 fail=0 skip=0 bad=""
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	last=$(printf '%s\n' "$out" | tail -n 1)
	p=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
	f=$(printf '%s' "$last" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	s=$(printf '%s' "$last" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
	if [ -z "$p" ] || [ -z "$f" ]; then
		# Crashed (sanitizer report) before its summary.
		printf '%s\n' "$out" | tail -n 40
		echo "  FAIL $(basename "$t"): no summary line (exit $rc)"
		fail=$((fail + 1)); bad="$bad $(basename "$t")"
		continue
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${s:-0}))
	if [ "$f" != 0 ] || [ $rc != 0 ]; then
		printf '%s\n' "$out" | grep -E '^not ok|^#' | head -n 40
		[ "$f" = 0 ] && fail=$((fail + 1))
		bad="$bad $(basename "$t")"
	fi
	printf '  %-16s %s\n' "$(basename "$t")" "$last"
	printf '%s\n' "$out" | grep '^# skip' | sed 's/^/    /'
done
[ -n "$bad" ] && echo "unit: failing:$bad"
echo "unit: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
