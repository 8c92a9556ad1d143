#!/bin/bash
# Host mode: a destination smaller than its source is refused before any
# byte is written, with the seed tool's words and both sizes; the disk is
# hashed before and after.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.ext4 mkswap python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk mbr "$src" 96 8
head -c 64M /dev/urandom >"$dst"
before=$(sha256sum <"$dst")
h_serve "vdb=$dst"
# The agent's own checks stop it first (exit 3) ...
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src" \
	--state-dir "$Q_TMP/st" >"$Q_TMP/out0" 2>"$Q_TMP/err0" || rc=$?
[ "$rc" = 3 ] || q_fail "the pre-migration check did not stop it: exit $rc"
grep -q "FAIL .*the storage space of the target device is too small" "$Q_TMP/out0" ||
	q_fail "no FAIL check line: $(cat "$Q_TMP/out0")"
# ... and past them, the destination refuses the plan itself (exit 1).
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src" --ignore-check \
	--state-dir "$Q_TMP/st" >"$Q_TMP/out" 2>"$Q_TMP/err" || rc=$?
h_wait_serve || true
[ "$rc" = 1 ] || q_fail "exit status $rc, want 1"
grep -q "the storage space of the target device is too small" "$Q_TMP/err" ||
	q_fail "no seed wording in: $(cat "$Q_TMP/err")"
grep -q "vdb is 64.0 MiB (67108864 bytes)" "$Q_TMP/err" || q_fail "destination size missing: $(cat "$Q_TMP/err")"
grep -q "needs 96.0 MiB (100663296 bytes)" "$Q_TMP/err" || q_fail "source size missing: $(cat "$Q_TMP/err")"
after=$(sha256sum <"$dst")
[ "$before" = "$after" ] || q_fail "the destination changed"
grep -q "too small" "$H_LOG" || q_fail "the receiver did not log the refusal"
echo "ok: refused, destination unchanged"
