#!/bin/bash
# A peer that vanishes without a FIN (power loss, a NAT that forgot the
# flow): receiver and agent in two network namespaces joined by a veth
# pair; mid-copy the destination's namespace starts dropping every
# packet (nftables), so no FIN and no RST ever arrive. Both ends must
# notice within 60 s - the receiver ends the dead session (and would
# accept the next one), the agent starts reconnecting - and once the
# packets flow again the agent resumes and the copy is identical.
# Without keepalive the receiver waits its 120 s idle timeout.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3 nft ip
h_netns_pair

src=$Q_TMP/src.img
dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 64 40
truncate -s 64M "$dst"
tok=$("$FERRY" token)
log=$Q_TMP/serve.log
: >"$log.result"
ip netns exec "$NS_DEST" timeout -k 5 300 "$FERRY_INIT" serve --listen 10.77.0.1:4430 \
	--token "$tok" --result "$log.result" --disk "vda=$dst" >"$log" 2>&1 &
Q_PIDS+=("$!")
for _ in $(seq 1 100); do
	grep -q "^FERRY READY" "$log.result" && break
	sleep 0.05
done
grep -q "^FERRY READY" "$log.result" || q_fail "receiver did not start: $(cat "$log")"

# 2 MiB/s: about 20 s of copying, so the cut lands in the middle.
ip netns exec "$NS_SRC" timeout -k 5 300 "$FERRY" migrate --to 10.77.0.1:4430 --token "$tok" \
	--disk "$src=vda" --bwlimit 2M --streams 2 --retries 8 --json \
	--state-dir "$Q_TMP/st" >"$Q_TMP/m.json" 2>"$Q_TMP/m.err" &
agent=$!
Q_PIDS+=("$agent")
for _ in $(seq 1 300); do
	grep -q "receiving\|plan:" "$log" && break
	sleep 0.1
done
sleep 4
kill -0 "$agent" 2>/dev/null || q_fail "the agent ended before the cut: $(tail -n 3 "$Q_TMP/m.err")"
lost0=$(grep -c "connection lost" "$log" || true)
h_blackhole on
t0=$(q_now)
dest_s= agent_s=
while :; do
	el=$(q_elapsed "$t0")
	if [ -z "$dest_s" ] && [ "$(grep -c "connection lost" "$log" || true)" -gt "$lost0" ]; then
		dest_s=$el
		echo "receiver: dead session noticed after $dest_s s: $(grep "connection lost" "$log" | tail -n 1)"
	fi
	if [ -z "$agent_s" ] && grep -q '"event":"reconnect"' "$Q_TMP/m.json"; then
		agent_s=$el
		echo "agent: reconnecting after $agent_s s: $(grep '"event":"reconnect"' "$Q_TMP/m.json" | head -n 1)"
	fi
	[ -n "$dest_s" ] && [ -n "$agent_s" ] && break
	awk -v e="$el" 'BEGIN { exit !(e > 75) }' && break
	sleep 0.5
done
[ -n "$dest_s" ] && awk -v e="$dest_s" 'BEGIN { exit !(e < 60) }' ||
	q_fail "the receiver did not notice the vanished agent within 60 s (${dest_s:-not at all})"
[ -n "$agent_s" ] && awk -v e="$agent_s" 'BEGIN { exit !(e < 60) }' ||
	q_fail "the agent did not notice the vanished destination within 60 s (${agent_s:-not at all})"
h_blackhole off

rc=0
wait "$agent" || rc=$?
[ "$rc" = 0 ] || q_fail "the agent failed after the packets came back (exit $rc): $(tail -n 3 "$Q_TMP/m.err")"
for _ in $(seq 1 100); do
	grep -q "FERRY RESULT ok" "$log.result" && break
	sleep 0.1
done
grep -q "resuming session" "$log" || q_fail "the receiver did not resume the session"
grep -q "FERRY RESULT ok" "$log.result" || q_fail "the receiver did not finish: $(tail -n 3 "$log")"
cmp "$src" "$dst" || q_fail "destination differs from the source"
echo "ok: vanished peer noticed by the receiver after $dest_s s and by the agent after $agent_s s; resumed, identical"
