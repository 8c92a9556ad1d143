#!/bin/bash
# Kill -9 the agent at random byte offsets of its first pass (a proxy
# counts the bytes and kills it: measured outside the agent), run it
# again: the destination equals the source, and what the receiver had to
# apply twice is at most one flush window in all, with 1, 2 and 4 streams
# (FERRY_STREAMS). FERRY_TRIALS trials per stream count (6; 200 in make
# check-long). The last line per stream count holds the figures
# bench/RELIABILITY.md publishes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3
trials=${FERRY_TRIALS:-6}
window_mib=4

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 56

for streams in ${FERRY_STREAMS:-1 2 4}; do
	# A clean run: what the receiver applies, and the bytes on the wire.
	rm -f "$Q_TMP/clean.img"
	truncate -s 96M "$Q_TMP/clean.img"
	h_serve "vda=$Q_TMP/clean.img"
	h_proxy "$H_PORT"
	"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" --restart \
		--state-dir "$Q_TMP/st0" --flush-every $window_mib --streams "$streams" \
		>/dev/null 2>"$Q_TMP/clean.err" || q_fail "clean run failed: $(tail -n 3 "$Q_TMP/clean.err")"
	h_wait_serve || true
	p_stop
	wire=$(sed -n 's/^up //p' "$P_STATS")
	clean=$(h_applied "$H_LOG")
	[ "$clean" -gt $((40 << 20)) ] || q_fail "clean run applied only $clean bytes"
	cmp -s "$src" "$Q_TMP/clean.img" || q_fail "the clean run is not identical"

	worst=0
	rm -f "$Q_TMP/again"
	for t in $(seq 1 "$trials"); do
		dst=$Q_TMP/dst.img
		rm -f "$dst"
		truncate -s 96M "$dst"
		# The receiver lives across sessions here.
		H_ONCE=0 H_TIMEOUT=120 h_serve "vda=$dst"
		at=$(python3 -c "import random; print(random.randrange(1 << 20, $wire - (1 << 20)))")
		h_proxy "$H_PORT" --after "$at" --kill-pidfile "$Q_TMP/agent.pid"
		"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" \
			--state-dir "$Q_TMP/st" --restart --flush-every $window_mib --retries 0 \
			--streams "$streams" >/dev/null 2>"$Q_TMP/k.err" &
		echo $! >"$Q_TMP/agent.pid"
		rc=0
		{ wait $! || rc=$?; } 2>/dev/null
		p_stop
		[ "$rc" = 137 ] || q_fail "$streams streams, trial $t: the agent was not killed at byte $at (exit $rc)"
		"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
			--state-dir "$Q_TMP/st" --flush-every $window_mib --streams "$streams" \
			>/dev/null 2>"$Q_TMP/r.err" ||
			q_fail "$streams streams, trial $t: the resumed run failed: $(tail -n 3 "$Q_TMP/r.err")"
		wait "$H_PID" || q_fail "$streams streams, trial $t: receiver failed: $(tail -n 3 "$H_LOG")"
		cmp -s "$src" "$dst" ||
			q_fail "$streams streams, trial $t (killed at byte $at): destination differs from the source"
		grep -q "resuming session" "$H_LOG" || q_fail "$streams streams, trial $t: the receiver did not resume"
		applied=$(h_applied "$H_LOG")
		again=$((applied - clean))
		[ "$again" -le $((window_mib << 20)) ] ||
			q_fail "$streams streams, trial $t (killed at byte $at): $again bytes applied twice, more than one $window_mib MiB flush window"
		[ "$again" -gt "$worst" ] && worst=$again
		echo "$again" >>"$Q_TMP/again"
		rm -rf "$Q_TMP/st"
	done
	median=$(sort -n "$Q_TMP/again" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	echo "campaign streams=$streams trials=$trials identical=$trials again_max=$worst again_median=$median window=$((window_mib << 20)) wire=$wire"
done
echo "ok: every kill resumed identical, at most one $window_mib MiB flush window applied twice"
