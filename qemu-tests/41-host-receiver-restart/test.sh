#!/bin/bash
# Kill -9 the receiver mid-stream and start it again on the same port: the
# agent reconnects by itself, finds the session gone, compares what it
# had sent by hashes, sends the rest, and the result is identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 96 56
truncate -s 96M "$dst"
token=$("$FERRY" token)
port=$(q_free_port)
start_receiver() { # LOG
	: >"$1.result"
	"$FERRY_INIT" serve --listen "127.0.0.1:$port" --token "$token" \
		--result "$1.result" --disk "vda=$dst" >"$1" 2>&1 &
	RPID=$!
	Q_PIDS+=("$RPID")
	echo "$RPID" >"$Q_TMP/receiver.pid"
	for _ in $(seq 1 100); do grep -q READY "$1.result" && return 0; sleep 0.05; done
	q_fail "receiver did not start: $(cat "$1")"
}
start_receiver "$Q_TMP/r1.log"
h_proxy "$port" --after $((30 << 20)) --kill-pidfile "$Q_TMP/receiver.pid"
"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$token" --disk "$src=vda" --flush-every 4 \
	--state-dir "$Q_TMP/st" --json >"$Q_TMP/ev.json" 2>"$Q_TMP/err" &
agent=$!
# The receiver dies at byte 30 MiB; bring it back on the same port.
for _ in $(seq 1 200); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$RPID" 2>/dev/null && q_fail "the receiver was not killed"
start_receiver "$Q_TMP/r2.log"
wait "$agent" || q_fail "the agent failed: $(tail -n 5 "$Q_TMP/err")"
wait "$RPID" || true
grep -q '"event":"reconnect"' "$Q_TMP/ev.json" || q_fail "no reconnect event"
grep -q "session lost" "$Q_TMP/err" || q_fail "the agent did not notice the lost session: $(grep -v sending "$Q_TMP/err")"
cmp "$src" "$dst" || q_fail "destination differs from the source"
echo "ok: receiver killed at 30 MiB and restarted; the agent reconnected, compared by hashes, finished identical"
