#!/bin/bash
# A destination disk that runs out of space, as a thin-provisioned cloud
# volume does: the file-backed disk is a sparse 96 MiB file on a 32 MiB
# tmpfs, so the receiver's writes fail with ENOSPC part-way. The agent
# (2 streams, --checksum) stops with an error naming the disk, the offset
# and the errno and exits 1; nothing reports success. With the
# filesystem grown (the fault cleared) `ferry migrate` resumes the
# session and the result is identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3
[ "$(id -u)" = 0 ] || q_skip "mounting a tmpfs needs root"

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 56
mnt=$Q_TMP/small
mkdir -p "$mnt"
mount -t tmpfs -o size=32M ferry-test "$mnt" || q_skip "cannot mount a tmpfs"
Q_CLEANUP+=("umount -l '$mnt'")
dst=$mnt/dst.img
truncate -s 96M "$dst"

H_ONCE=0 H_TIMEOUT=200 h_serve "vda=$dst"
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --streams 2 \
	--checksum --json --retries 2 --state-dir "$Q_TMP/st" >"$Q_TMP/m1.json" 2>"$Q_TMP/m1.err" || rc=$?
[ "$rc" = 1 ] || q_fail "on a full destination the agent exited $rc, want 1: $(tail -n 3 "$Q_TMP/m1.err")"
re="the destination's disk failed: vda: writing ([0-9]+) bytes at offset ([0-9]+) failed: No space left on device \(ENOSPC\)"
line=$(grep -E -m1 "$re" "$Q_TMP/m1.err") ||
	q_fail "the agent's error does not name disk, offset and errno: $(tail -n 2 "$Q_TMP/m1.err")"
[[ $line =~ $re ]]
off=${BASH_REMATCH[2]}
[ "$off" -ge $((16 << 20)) ] && [ "$off" -lt $((96 << 20)) ] ||
	q_fail "the failing offset $off is not where the 32 MiB filesystem fills up"
grep -q '"event":"error".*ENOSPC' "$Q_TMP/m1.json" || q_fail "no JSON error event naming ENOSPC"
grep -q '"event":"summary"' "$Q_TMP/m1.json" || q_fail "no JSON summary"
if grep -q '"event":"done"' "$Q_TMP/m1.json" || grep -q "FERRY RESULT ok" "$H_LOG.result"; then
	q_fail "a failed migration was reported as done"
fi
grep -q "vda: writing [0-9]* bytes at offset $off failed: No space left on device (ENOSPC)" "$H_LOG" ||
	q_fail "the receiver's log does not name the failed write"
echo "full destination: $(sed 's/^ferry: //' <<<"$line")"

# The fault cleared: more space, the same command again.
mount -o remount,size=160M "$mnt"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --streams 2 \
	--checksum --json --state-dir "$Q_TMP/st" >"$Q_TMP/m2.json" 2>"$Q_TMP/m2.err" ||
	q_fail "the run after the fault was cleared failed: $(tail -n 3 "$Q_TMP/m2.err")"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
grep -q "resuming session" "$H_LOG" || q_fail "the second run did not resume the session"
grep -q "FERRY RESULT ok" "$H_LOG.result" || q_fail "the receiver did not finish"
cmp "$src" "$dst" || q_fail "destination differs from the source after the resume"
echo "ok: ENOSPC at offset $off stopped the migration (exit 1); resumed after the fault was cleared, identical"
