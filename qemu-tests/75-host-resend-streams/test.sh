#!/bin/bash
# The re-send bound with streams, as a new user meets it: a 640 MiB disk,
# the default flush window (256 MiB), 2 and then 4 streams, the agent
# killed -9 past 300 MiB (each stream well short of 256 MiB of its own).
# Run again, the receiver must apply at most one flush window twice in
# all - not everything sent so far, as when each stream flushed per 256
# MiB of its own and only the slowest stream's position counted.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" python3

src=$Q_TMP/src.img
# Raw random data: every byte is sent, none as zeros.
head -c 640M /dev/urandom >"$src"
size=$(stat -c %s "$src")
window=$((256 << 20))
for streams in 2 4; do
	dst=$Q_TMP/dst$streams.img
	truncate -s 640M "$dst"
	H_ONCE=0 H_TIMEOUT=300 h_serve "vda=$dst"
	at=$(python3 -c "import random; print(random.randrange(300 << 20, 360 << 20))")
	h_proxy "$H_PORT" --after "$at" --kill-pidfile "$Q_TMP/agent.pid"
	"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--streams "$streams" --retries 0 --state-dir "$Q_TMP/st$streams" \
		>/dev/null 2>"$Q_TMP/k.err" &
	echo $! >"$Q_TMP/agent.pid"
	rc=0
	{ wait $! || rc=$?; } 2>/dev/null
	p_stop
	[ "$rc" = 137 ] || q_fail "$streams streams: the agent was not killed at byte $at (exit $rc)"
	first=$(h_applied "$H_LOG")
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--streams "$streams" --json --state-dir "$Q_TMP/st$streams" >"$Q_TMP/r.json" \
		2>"$Q_TMP/r.err" || q_fail "$streams streams: the resumed run failed: $(tail -n 3 "$Q_TMP/r.err")"
	wait "$H_PID" || q_fail "$streams streams: receiver failed: $(tail -n 3 "$H_LOG")"
	grep -q "resuming session" "$H_LOG" || q_fail "$streams streams: the receiver did not resume"
	cmp -s "$src" "$dst" || q_fail "$streams streams, killed at byte $at: destination differs"
	applied=$(h_applied "$H_LOG")
	again=$((applied - size))
	[ "$first" -gt $((280 << 20)) ] ||
		q_fail "$streams streams: only $first bytes applied before the kill at $at"
	[ "$again" -le "$window" ] ||
		q_fail "$streams streams, killed at byte $at after $first bytes applied: $again bytes applied twice, more than the $window-byte flush window"
	echo "$streams streams: killed at byte $at with $first bytes applied; $again bytes applied twice (window $window)"
	rm -f "$dst"
done
echo "ok: killed past 300 MiB with 2 and 4 streams and the default window, at most one flush window applied twice"
