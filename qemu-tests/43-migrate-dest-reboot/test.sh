#!/bin/bash
# Kill the QEMU destination in the middle of a migration and boot it again
# on the same disk: the new boot holds no session, so the agent, run
# again, compares what it had flushed by hashes, sends only the rest, and
# the result is identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 64 40
truncate -s 64M "$dst"
token=$("$FERRY" token)
args=(--token "$token" --disk "$src=vda" --state-dir "$Q_TMP/st" --flush-every 4 --json)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --wait 90 --retries 0 "${args[@]}" \
	>"$Q_TMP/1.json" 2>"$Q_TMP/1.err" &
agent=$!
# Once two flush windows are durable, the VM dies.
for _ in $(seq 1 600); do
	grep -q '"event":"flush","[^}]*"seq":3' "$Q_TMP/1.json" && break
	sleep 0.1
done
grep -q '"event":"flush","[^}]*"seq":3' "$Q_TMP/1.json" || q_fail "no third flush: $(tail -n 3 "$Q_TMP/1.err")"
q_stop
rc=0
wait "$agent" || rc=$?
[ "$rc" = 1 ] || q_fail "the agent exited $rc when its destination died, want 1"

q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --wait 90 --handoff poweroff "${args[@]}" \
	>"$Q_TMP/2.json" 2>"$Q_TMP/2.err" || q_fail "the second run failed: $(tail -n 3 "$Q_TMP/2.err")"
grep -q "session lost" "$Q_TMP/2.err" || q_fail "the agent did not resume by hashes: $(grep -v '^ferry: sending' "$Q_TMP/2.err" | head)"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no hand-off"
q_stop
cmp "$src" "$dst" || q_fail "destination differs from the source"
sent1=$(h_json_field "$Q_TMP/1.json" flush durable)
sent2=$(h_json_field "$Q_TMP/2.json" summary bytes_sent)
total=$(h_json_field "$Q_TMP/2.json" summary disk_bytes)
echo "ok: destination killed after $sent1 durable bytes, rebooted; the second run sent $sent2 bytes; identical"
