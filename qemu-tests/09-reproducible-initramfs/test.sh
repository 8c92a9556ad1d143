#!/bin/bash
# The initramfs is reproducible: built twice from the same inputs (with
# the inputs' timestamps changed in between), the bytes are the same - and
# the same as build/out's. Also checks it stays within its 4 MiB budget.
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY_OUT/initramfs.cpio.gz" "$FERRY_OUT/ferry-init" "$Q_TOP/build/kernel/gen_init_cpio"

"$Q_TOP/scripts/initramfs.sh" "$Q_TMP/a.cpio.gz" >/dev/null || q_fail "first build failed"
touch "$FERRY_OUT/ferry-init" "$Q_TOP"/rootfs/*
"$Q_TOP/scripts/initramfs.sh" "$Q_TMP/b.cpio.gz" >/dev/null || q_fail "second build failed"
a=$(sha256sum <"$Q_TMP/a.cpio.gz") b=$(sha256sum <"$Q_TMP/b.cpio.gz") o=$(sha256sum <"$FERRY_OUT/initramfs.cpio.gz")
[ "$a" = "$b" ] || q_fail "two builds differ"
[ "$a" = "$o" ] || q_fail "differs from build/out/initramfs.cpio.gz (stale build?)"
size=$(stat -c %s "$Q_TMP/a.cpio.gz")
[ "$size" -le $((4 << 20)) ] || q_fail "initramfs is $size bytes, over 4 MiB"
echo "ok: byte-identical twice (${a%% *}), $size bytes"
