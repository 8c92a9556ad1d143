#!/bin/bash
# Host mode: --checksum must catch a destination block changed behind
# ferry's back after it was written, send it again, and end identical;
# and a block that keeps being corrupted must fail the migration, never
# pass silently.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 60
# A chunk holding file data, well past the first MiB (held back to the end).
target=$(h_data_chunk "$src" 8)

# 1. Corrupted once: detected, sent again, identical at the end.
truncate -s 96M "$Q_TMP/dst1.img"
h_serve "vda=$Q_TMP/dst1.img"
h_corrupter "$src" "$Q_TMP/dst1.img" "$target" once
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src" --checksum --json \
	--flush-every 4 >"$Q_TMP/ev1" 2>"$Q_TMP/err1" || q_fail "migrate exited $?: $(tail -n 3 "$Q_TMP/err1")"
h_wait_serve || true
wait "$CORRUPTER" || q_fail "the corrupter never saw ferry's write"
grep -q corrupted "$Q_TMP/corrupter.out" || q_fail "the corrupter did not corrupt"
grep -q "chunk at offset $target differs" "$Q_TMP/err1" || q_fail "the corruption was not reported: $(cat "$Q_TMP/err1")"
[ "$(h_json_field "$Q_TMP/ev1" summary resent)" -ge 65536 ] || q_fail "nothing was re-sent"
cmp "$src" "$Q_TMP/dst1.img" || q_fail "destination differs from the source after repair"

# 2. Corrupted again and again: the migration fails, loudly.
truncate -s 96M "$Q_TMP/dst2.img"
h_serve "vda=$Q_TMP/dst2.img"
h_corrupter "$src" "$Q_TMP/dst2.img" "$target" always
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src" --checksum \
	>/dev/null 2>"$Q_TMP/err2" || rc=$?
kill "$CORRUPTER" 2>/dev/null || true
h_wait_serve || true
[ "$rc" = 1 ] || q_fail "exit $rc with a block that keeps changing, want 1"
grep -q "verification failed" "$Q_TMP/err2" || q_fail "no verification failure: $(cat "$Q_TMP/err2")"
echo "ok: a changed block was detected and repaired; a block that keeps changing fails the migration"
