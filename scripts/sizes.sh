#!/bin/sh
# Prints the sizes of the artifacts and fails when a boot image is over its
# budget: a cloud import, a PXE server and a 16 MiB boot partition must
# all take them. Missing artifacts are listed, not fatal (make builds them
# before calling this).
#
#   scripts/sizes.sh [OUTDIR]     (OUTDIR: build/out)
set -eu

cd "$(dirname "$0")/.."
OUT=${1:-build/out}
MIB=1048576
bad=0

# name budget-in-MiB (0: no budget)
for spec in vmlinuz:4 initramfs.cpio.gz:4 ferry-live.iso:12 ferry:0 ferry-init:0; do
	name=${spec%%:*}
	max=${spec#*:}
	f=$OUT/$name
	if [ ! -f "$f" ]; then
		printf '  SIZE    %-20s missing\n' "$name"
		continue
	fi
	size=$(wc -c <"$f")
	mib=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')
	if [ "$max" -eq 0 ]; then
		printf '  SIZE    %-20s %9d bytes  %6s MiB\n' "$name" "$size" "$mib"
	elif [ "$size" -gt $((max * MIB)) ]; then
		printf '  SIZE    %-20s %9d bytes  %6s MiB  OVER the %d MiB budget\n' \
			"$name" "$size" "$mib" "$max"
		bad=1
	else
		printf '  SIZE    %-20s %9d bytes  %6s MiB  (budget %d MiB)\n' \
			"$name" "$size" "$mib" "$max"
	fi
done
if [ "$bad" -ne 0 ]; then
	echo "sizes: error: an artifact is over its budget" >&2
	exit 1
fi
