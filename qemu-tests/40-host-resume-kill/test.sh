#!/bin/bash
# Kill -9 the agent at random byte offsets of its first pass (a proxy
# counts the bytes and kills it: measured outside the agent), run it
# again: the destination equals the source, and what the receiver had to
# apply twice is at most one flush window. FERRY_TRIALS trials (20; 200
# in make check-long). One stream here (the window is a stream's); 48
# kills runs of several streams.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3
trials=${FERRY_TRIALS:-20}
window_mib=4

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 56

# A clean run: what the receiver applies, and the bytes on the wire.
truncate -s 96M "$Q_TMP/clean.img"
h_serve "vda=$Q_TMP/clean.img"
h_proxy "$H_PORT"
"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" --restart \
	--state-dir "$Q_TMP/st0" --flush-every $window_mib --streams 1 >/dev/null 2>"$Q_TMP/clean.err" ||
	q_fail "clean run failed: $(tail -n 3 "$Q_TMP/clean.err")"
h_wait_serve || true
p_stop
wire=$(sed -n 's/^up //p' "$P_STATS")
clean=$(h_applied "$H_LOG")
[ "$clean" -gt $((40 << 20)) ] || q_fail "clean run applied only $clean bytes"
cmp -s "$src" "$Q_TMP/clean.img" || q_fail "the clean run is not identical"

worst=0
for t in $(seq 1 "$trials"); do
	dst=$Q_TMP/dst.img
	rm -f "$dst"
	truncate -s 96M "$dst"
	# The receiver lives across sessions here.
	H_ONCE=0 H_TIMEOUT=120 h_serve "vda=$dst"
	at=$(python3 -c "import random; print(random.randrange(1 << 20, $wire - (1 << 20)))")
	h_proxy "$H_PORT" --after "$at" --kill-pidfile "$Q_TMP/agent.pid"
	"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--state-dir "$Q_TMP/st" --restart --flush-every $window_mib --retries 0 --streams 1 \
		>/dev/null 2>"$Q_TMP/k.err" &
	echo $! >"$Q_TMP/agent.pid"
	rc=0
	wait $! || rc=$?
	p_stop
	[ "$rc" = 137 ] || q_fail "trial $t: the agent was not killed at byte $at (exit $rc)"
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--state-dir "$Q_TMP/st" --flush-every $window_mib --streams 1 >/dev/null 2>"$Q_TMP/r.err" ||
		q_fail "trial $t: the resumed run failed: $(tail -n 3 "$Q_TMP/r.err")"
	wait "$H_PID" || q_fail "trial $t: receiver failed: $(tail -n 3 "$H_LOG")"
	cmp -s "$src" "$dst" || q_fail "trial $t (killed at byte $at): destination differs from the source"
	grep -q "resuming session" "$H_LOG" || q_fail "trial $t: the receiver did not resume"
	applied=$(h_applied "$H_LOG")
	again=$((applied - clean))
	[ "$again" -le $((window_mib << 20)) ] ||
		q_fail "trial $t (killed at byte $at): $again bytes applied twice, more than one $window_mib MiB flush window"
	[ "$again" -gt "$worst" ] && worst=$again
	echo "$again" >>"$Q_TMP/again"
	rm -rf "$Q_TMP/st"
done
median=$(sort -n "$Q_TMP/again" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "ok: $trials kills at random byte offsets of $wire; every result identical; bytes applied twice: max $worst, median $median (window $((window_mib << 20)))"
