#!/bin/bash
# --streams: the same migration over 1, 2 and 3 TLS connections gives
# byte-identical destinations; the extra streams really carry data (the
# receiver says what each applied); a run killed with 2 streams resumes with
# 1 and one killed with 1 resumes with 3; `ferry sync` with 2 streams
# sends only what changed; reverse mode dials the extra streams from the
# destination.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

# 160 MiB: ten 16 MiB stripes, an ext4 filesystem with 90 MiB of files.
src=$Q_TMP/src.img
h_mkdisk gpt "$src" 160 90

declare -A sent
for n in 1 2 3; do
	dst=$Q_TMP/d$n.img
	truncate -s 160M "$dst"
	h_serve "vda=$dst"
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--streams "$n" --json --state-dir "$Q_TMP/st$n" >"$Q_TMP/m$n.json" 2>"$Q_TMP/m$n.err" ||
		q_fail "--streams $n failed: $(tail -n 3 "$Q_TMP/m$n.err")"
	h_wait_serve || q_fail "--streams $n: receiver failed: $(tail -n 3 "$H_LOG")"
	cmp "$src" "$dst" || q_fail "--streams $n: destination differs from the source"
	sent[$n]=$(h_json_field "$Q_TMP/m$n.json" summary bytes_sent)
	joined=$(grep -c "stream [0-9] of $n joined session" "$H_LOG" || true)
	[ "$joined" = $((n - 1)) ] || q_fail "--streams $n: $joined extra streams joined, want $((n - 1))"
	# Every extra stream applied a share of the data.
	while read -r k bytes; do
		[ "$bytes" -gt $((8 << 20)) ] || q_fail "--streams $n: stream $k applied only $bytes bytes"
	done < <(sed -n 's/.*: stream \([0-9]*\) ended, \([0-9]*\) bytes of DATA applied/\1 \2/p' "$H_LOG")
	echo "--streams $n: identical, ${sent[$n]} bytes sent"
	cp "$H_LOG" "$Q_TMP/serve$n.log"
done
cmp "$Q_TMP/d1.img" "$Q_TMP/d2.img" && cmp "$Q_TMP/d1.img" "$Q_TMP/d3.img" ||
	q_fail "the destinations of 1, 2 and 3 streams differ"
# The same bytes go, whatever the number of streams (framing aside).
for n in 2 3; do
	diff=$((sent[$n] - sent[1]))
	[ "${diff#-}" -le $((sent[1] / 100)) ] ||
		q_fail "--streams $n sent ${sent[$n]} bytes, one stream ${sent[1]}"
done

# Killed mid-way, resumed with another number of streams.
for pair in "2 1" "1 3"; do
	set -- $pair
	dst=$Q_TMP/k$1.img
	rm -f "$dst"
	truncate -s 160M "$dst"
	H_ONCE=0 H_TIMEOUT=180 h_serve "vda=$dst"
	at=$(python3 -c "import random; print(random.randrange(40 << 20, 85 << 20))")
	h_proxy "$H_PORT" --after "$at" --kill-pidfile "$Q_TMP/agent.pid"
	"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--streams "$1" --flush-every 4 --retries 0 --state-dir "$Q_TMP/sk$1" \
		>/dev/null 2>"$Q_TMP/k.err" &
	echo $! >"$Q_TMP/agent.pid"
	rc=0
	{ wait $! || rc=$?; } 2>/dev/null
	p_stop
	[ "$rc" = 137 ] || q_fail "$1 streams: the agent was not killed at byte $at (exit $rc)"
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--streams "$2" --flush-every 4 --state-dir "$Q_TMP/sk$1" >/dev/null 2>"$Q_TMP/r.err" ||
		q_fail "killed with $1 streams, resumed with $2: $(tail -n 3 "$Q_TMP/r.err")"
	wait "$H_PID" || q_fail "killed with $1 streams: receiver failed: $(tail -n 3 "$H_LOG")"
	cmp -s "$src" "$dst" || q_fail "killed with $1 streams at byte $at, resumed with $2: destination differs"
	grep -q "resuming session" "$H_LOG" || q_fail "killed with $1 streams: the receiver did not resume"
	applied=$(h_applied "$H_LOG")
	total=$(h_applied "$Q_TMP/serve1.log")
	again=$((applied - total))
	# What is re-sent: at most one 4 MiB flush window in all, whatever
	# the streams. Killed past 40 MiB, a run that did not resume would
	# apply far more than that again.
	[ "$again" -le $((4 << 20)) ] ||
		q_fail "killed with $1 streams at byte $at: $again bytes applied twice"
	echo "killed with $1 streams at byte $at, resumed with $2: identical, $again bytes applied twice"
done

# ferry sync with 2 streams: 1 % of the blocks of a raw disk rewritten.
raw=$Q_TMP/raw.img
head -c 64M /dev/urandom >"$raw"
dst=$Q_TMP/sync.img
truncate -s 64M "$dst"
H_ONCE=0 H_TIMEOUT=180 h_serve "vda=$dst"
"$FERRY" sync --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$raw=vda" --streams 2 \
	--state-dir "$Q_TMP/ss" >/dev/null 2>"$Q_TMP/s1.err" || q_fail "first sync failed: $(tail -n 3 "$Q_TMP/s1.err")"
python3 - "$raw" <<'PY'
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDWR)
r = random.Random(7)
for b in r.sample(range(16384), 164):
    os.pwrite(fd, os.urandom(4096), b * 4096)
PY
"$FERRY" sync --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$raw=vda" --streams 2 --json \
	--state-dir "$Q_TMP/ss" >"$Q_TMP/s2.json" 2>"$Q_TMP/s2.err" || q_fail "second sync failed: $(tail -n 3 "$Q_TMP/s2.err")"
# Until FINISH the first MiB is held by the receiver: compare past it.
cmp -i 1048576 "$raw" "$dst" || q_fail "after a 2-stream sync the destination differs"
synced=$(h_json_field "$Q_TMP/s2.json" summary bytes_sent)
[ "$synced" -lt $((4 << 20)) ] || q_fail "the 2-stream sync sent $synced bytes for 656 KiB of changes"
grep -q "stream 1 of 2 joined" "$H_LOG" || q_fail "the sync did not use 2 streams"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$raw=vda" --streams 2 \
	--ignore-check --state-dir "$Q_TMP/ss" >/dev/null 2>"$Q_TMP/s3.err" ||
	q_fail "finishing after the syncs failed: $(tail -n 3 "$Q_TMP/s3.err")"
h_wait_serve || q_fail "receiver failed after the syncs: $(tail -n 3 "$H_LOG")"
cmp "$raw" "$dst" || q_fail "after syncs and the finish the destination differs"
echo "sync with 2 streams: identical, $synced bytes sent for 164 changed 4 KiB blocks"

# Reverse mode: the destination dials the agent for every stream.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dst=$Q_TMP/rev.img
truncate -s 160M "$dst"
tok=$("$FERRY" token)
"$FERRY" migrate --listen "127.0.0.1:$port" --token "$tok" --disk "$src=vda" --streams 2 \
	--wait 60 --state-dir "$Q_TMP/sr" >/dev/null 2>"$Q_TMP/rev.err" &
agent=$!
Q_PIDS+=("$agent")
timeout -k 5 120 "$FERRY_INIT" serve --connect "127.0.0.1:$port" --token "$tok" --once \
	--disk "vda=$dst" >"$Q_TMP/rev.log" 2>&1 || q_fail "reverse receiver failed: $(tail -n 3 "$Q_TMP/rev.log")"
wait "$agent" || q_fail "reverse agent failed: $(tail -n 3 "$Q_TMP/rev.err")"
cmp "$src" "$dst" || q_fail "reverse mode with 2 streams: destination differs"
grep -q "stream 1 of 2 joined" "$Q_TMP/rev.log" || q_fail "reverse mode did not dial a second stream"
echo "ok: 1, 2 and 3 streams identical (sent ${sent[1]}, ${sent[2]}, ${sent[3]} bytes); resume across stream counts; sync and reverse mode with 2 streams"
