#!/bin/bash
# --checksum in the live environment: a block of the destination disk
# changed behind ferry's back (from the host, in the image file) after
# ferry wrote it is found by the read-back, sent again, and the result is
# identical - never a silent success.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 64 40
truncate -s 64M "$dst"
target=$(h_data_chunk "$src" 24)
h_corrupter "$src" "$dst" "$target" once
corrupter=$CORRUPTER
token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 --disk "$src=vda" --checksum \
	--handoff poweroff --state-dir "$Q_TMP/state" >"$Q_TMP/out" 2>"$Q_TMP/err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/err")"
wait "$corrupter" || q_fail "the corrupter never saw ferry's write"
grep -q "chunk at offset $target differs" "$Q_TMP/err" || q_fail "not detected: $(grep -a verify "$Q_TMP/err")"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no hand-off"
q_stop
cmp "$src" "$dst" || q_fail "the destination differs from the source after the repair"
echo "ok: the changed block at $target was detected, sent again, and the disk is identical"
