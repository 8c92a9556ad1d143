#!/bin/sh
# Runs each libFuzzer target for SECONDS on a scratch copy of its seed
# corpus (the checked-in seeds are never modified). One test per target;
# ends with "fuzz: N passed, N failed". Crash inputs are kept in build/fuzz.
set -u
secs=$1
shift
pass=0 fail=0
for f in "$@"; do
	name=$(basename "$f")
	short=${name#fuzz_}
	work=$(mktemp -d)
	cp -r "src/fuzz/corpus/$short/." "$work/" 2>/dev/null || true
	if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-artifact_prefix="build/fuzz/$short-" "$work" >"build/fuzz/$short.log" 2>&1; then
		runs=$(grep -o 'Done [0-9]* runs' "build/fuzz/$short.log" | tail -n 1)
		echo "  $name: ok (${runs:-done} in ${secs} s)"
		pass=$((pass + 1))
	else
		tail -n 30 "build/fuzz/$short.log"
		echo "  $name: FAILED (see build/fuzz/$short.log and build/fuzz/$short-*)"
		fail=$((fail + 1))
	fi
	rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
