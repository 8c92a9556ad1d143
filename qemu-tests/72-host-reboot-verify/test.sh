#!/bin/bash
# A destination rebooted mid-verify: the receiver is killed -9 while the
# agent's --checksum pass runs (the copy itself finished and was flushed),
# a block of the destination disk is damaged while it is down (a write
# cache lost at power-off), and the receiver starts again on the same
# disk, holding no session. The agent must stop with a clear error (never
# report success for a verify that did not finish), and `ferry migrate`
# run again must compare by hashes, repair the block, verify and finish
# identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" python3

src=$Q_TMP/src.img
head -c 512M /dev/urandom >"$src"
dst=$Q_TMP/dst.img
truncate -s 512M "$dst"
tok=$("$FERRY" token)
port=$(q_free_port)
n=0
serve() {
	n=$((n + 1))
	LOG=$Q_TMP/serve$n.log
	: >"$LOG.result"
	"$FERRY_INIT" serve --listen "127.0.0.1:$port" --token "$tok" \
		--result "$LOG.result" --disk "vda=$dst" >"$LOG" 2>&1 &
	SPID=$!	# the receiver itself (no timeout wrapper): kill -9 must hit it
	Q_PIDS+=("$SPID")
	for _ in $(seq 1 100); do
		grep -q "^FERRY READY" "$LOG.result" && return 0
		sleep 0.05
	done
	q_fail "the receiver did not start: $(cat "$LOG")"
}
args=(--to "127.0.0.1:$port" --token "$tok" --disk "$src=vda" --checksum --json
	--state-dir "$Q_TMP/st" --handoff shell)

serve
"$FERRY" migrate "${args[@]}" >"$Q_TMP/m1.json" 2>"$Q_TMP/m1.err" &
agent=$!
Q_PIDS+=("$agent")
for _ in $(seq 1 1200); do
	grep -q '"event":"done"' "$Q_TMP/m1.json" && break
	sleep 0.02
done
grep -q '"event":"done"' "$Q_TMP/m1.json" || q_fail "the copy did not finish: $(tail -n 3 "$Q_TMP/m1.err")"
kill -9 "$SPID"
{ wait "$SPID" || true; } 2>/dev/null
grep -q '"event":"verify"' "$Q_TMP/m1.json" && q_fail "the verify finished before the receiver was killed"
# A block the disk lost at power-off.
python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"\xa5" * 4096, 300 << 20)' "$dst"
serve
rc=0
wait "$agent" || rc=$?
[ "$rc" != 0 ] || q_fail "the agent reported success although its destination died mid-verify"
msg=$(sed -n 's/^ferry: error: //p' "$Q_TMP/m1.err" | tail -n 1)
grep -q -i "destination" <<<"$msg" || q_fail "the error does not say what happened: $msg"
grep -q '"event":"done"\|"result":"migrated' <<<"$(grep summary "$Q_TMP/m1.json")" &&
	q_fail "the summary calls it migrated"
echo "mid-verify: exit $rc: $msg"

"$FERRY" migrate "${args[@]}" >"$Q_TMP/m2.json" 2>"$Q_TMP/m2.err" ||
	q_fail "the run after the restart failed: $(tail -n 3 "$Q_TMP/m2.err")"
grep -q "session lost" "$Q_TMP/m2.err" || q_fail "the second run did not compare by hashes"
# The comparison repaired the lost block and the first MiB the receiver
# held in memory, so the first verify round already finds nothing.
grep -m1 '"event":"verify"' "$Q_TMP/m2.json" | grep -q '"differing_chunks":0' ||
	q_fail "the second run's compare left differences for the verify: $(grep '"event":"verify"' "$Q_TMP/m2.json")"
for _ in $(seq 1 100); do
	grep -q "FERRY RESULT ok" "$LOG.result" && break
	sleep 0.05
done
grep -q "FERRY RESULT ok" "$LOG.result" || q_fail "the restarted receiver did not finish"
cmp "$src" "$dst" || q_fail "the destination differs from the source"
echo "ok: killed mid-verify, a block lost while down; the agent failed clearly, the next run compared, repaired, verified and finished identical"
