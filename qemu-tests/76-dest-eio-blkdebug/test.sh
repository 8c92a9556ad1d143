#!/bin/bash
# A destination disk that returns EIO, in the live environment: QEMU's
# blkdebug fails the guest's requests touching one chosen sector.
#  A. Writes there fail, always: `ferry migrate --checksum` stops with an
#     error naming the disk, the offset and EIO (exit 1), and run again
#     against the same faulty disk fails the same way - never a success,
#     never a verify that passes over the range that did not write.
#  B. The destination rebooted with the write fault gone but reads of
#     that sector failing once: the agent (session lost, so it compares by
#     hashes and verifies) stops on the read-back error, naming disk,
#     offset and EIO; run again, it resumes and finishes identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 64 40
truncate -s 64M "$dst"
bad=$(h_data_chunk "$src" 24)
sector=$((bad / 512 + 8))
token=$("$FERRY" token)
args=(--token "$token" --disk "$src=vda" --state-dir "$Q_TMP/st" --checksum --json --retries 0)

# blkdebug: requests of one kind (read or write) that overlap sector
# fail with EIO, always or once.
blk() {
	cat >"$Q_TMP/$1.conf" <<EOT
[inject-error]
event = "$2_aio"
iotype = "$2"
errno = "5"
sector = "$sector"
once = "$3"
EOT
	echo "file=blkdebug:$Q_TMP/$1.conf:$dst,format=raw,cache=writeback,werror=report,rerror=report"
}

# A message naming the disk, an offset range holding the bad sector, EIO.
expect_eio() {
	local file=$1 what=$2 re line
	re="vda: $what ([0-9]+) bytes at offset ([0-9]+) failed: [^(]*\(EIO\)"
	line=$(grep -E -m1 "$re" "$file") || q_fail "no '$what … EIO' error naming vda: $(tail -n 2 "$file")"
	[[ $line =~ $re ]]
	local n=${BASH_REMATCH[1]} off=${BASH_REMATCH[2]}
	[ "$off" -le $((sector * 512)) ] && [ $((sector * 512)) -lt $((off + n)) ] ||
		q_fail "the error names bytes $off+$n, the bad sector is $sector (byte $((sector * 512)))"
	echo "$line" | sed 's/^ferry: //'
}

q_boot kernel --drive "$(blk w write off)" --append "ferry.token=$token"
for run in 1 2; do
	rc=0
	q_ferry migrate --to "127.0.0.1:$Q_PORT" --wait 90 "${args[@]}" >"$Q_TMP/a$run.json" \
		2>"$Q_TMP/a$run.err" || rc=$?
	[ "$rc" = 1 ] || q_fail "run $run on a disk failing writes exited $rc, want 1"
	expect_eio "$Q_TMP/a$run.err" writing
	grep -q '"event":"verify"\|"event":"done"' "$Q_TMP/a$run.json" &&
		q_fail "run $run verified or finished although a write failed"
	grep -q "FERRY RESULT ok" "$Q_RESULT" && q_fail "the destination reported success"
done
grep -a -q "vda: writing [0-9]* bytes at offset [0-9]* failed: .*(EIO)" "$Q_SERIAL" ||
	q_fail "the destination's console does not show the failed write"
q_stop

q_boot kernel --drive "$(blk r read on)" --append "ferry.token=$token"
rc=0
q_ferry migrate --to "127.0.0.1:$Q_PORT" --wait 90 "${args[@]}" >"$Q_TMP/b1.json" \
	2>"$Q_TMP/b1.err" || rc=$?
[ "$rc" = 1 ] || q_fail "the run on a disk failing a read exited $rc, want 1"
expect_eio "$Q_TMP/b1.err" "reading back"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --wait 90 "${args[@]}" --handoff poweroff \
	>"$Q_TMP/b2.json" 2>"$Q_TMP/b2.err" || q_fail "the run after the fault failed: $(tail -n 3 "$Q_TMP/b2.err")"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no hand-off"
q_stop
cmp "$src" "$dst" || q_fail "the destination differs from the source"
echo "ok: EIO on write at sector $sector stopped two runs (never a success); EIO on read-back stopped one; the next run resumed and finished identical"
