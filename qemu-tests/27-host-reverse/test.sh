#!/bin/bash
# Host mode, reverse direction (ferry.connect= / --listen): the agent
# waits on a port and the receiver dials it; the TLS roles and the token
# proof are those of the usual direction. A receiver with the wrong token
# is refused by the agent (the key does not match), logs it and dials
# again; `ferry status --listen` with only that receiver fails with the
# pin mismatch. Then a migration with a cut in the middle: the receiver
# dials again, the agent accepts again and resumes; the result is
# identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 debugfs e2fsck python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 96 48
truncate -s 128M "$dst"
token=$("$FERRY" token)
wrong=$("$FERRY" token)

# dial NAME TOKEN PORT [ARGS]: a receiver in reverse mode; sets R_PID, R_LOG.
R_PID= R_LOG=
dial() {
	R_LOG=$Q_TMP/$1.log
	timeout -k 5 240 "$FERRY_INIT" serve --connect "127.0.0.1:$3" --token "$2" \
		--disk "vda=$dst" --result "$R_LOG.result" "${@:4}" >"$R_LOG" 2>&1 &
	R_PID=$!
	Q_PIDS+=("$R_PID")
}
wait_for() { # FILE REGEX SECONDS
	local i
	for i in $(seq 1 $(($3 * 10))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# 1. The wrong destination alone: status --listen refuses it and gives up
# at its deadline; the receiver logs the refusal and dials again.
port=$(q_free_port)
dial wrong "$wrong" "$port"
rc=0
q_ferry status --listen "127.0.0.1:$port" --token "$token" --wait 6 >"$Q_TMP/s1.out" \
	2>"$Q_TMP/s1.err" || rc=$?
[ "$rc" = 1 ] || q_fail "status with only a wrong-token destination: exit $rc, want 1"
grep -q "key does not match the token" "$Q_TMP/s1.err" ||
	q_fail "no pin mismatch in: $(cat "$Q_TMP/s1.err")"
grep -q "none authenticated" "$Q_TMP/s1.err" || q_fail "no summary: $(cat "$Q_TMP/s1.err")"
[ "$(grep -c "refused 127.0.0.1:$port: TLS handshake failed" "$R_LOG")" -ge 2 ] ||
	q_fail "the receiver did not log the refusal and dial again: $(cat "$R_LOG")"
grep -q '^FERRY READY connect=127.0.0.1:'"$port"' fp=fp:' "$R_LOG.result" ||
	q_fail "no FERRY READY connect= line: $(cat "$R_LOG.result")"
kill "$R_PID"
wait "$R_PID" 2>/dev/null || true
cmp -s "$dst" <(head -c 128M /dev/zero) || q_fail "a refused destination was written to"

# 2. The agent waits; the wrong receiver dials first and is turned away
# (the agent keeps waiting), then the right one dials; the connection is
# cut halfway, the receiver dials again, and the
# agent, accepting again, resumes.
port=$(q_free_port)
"$FERRY" migrate --listen "127.0.0.1:$port" --token "$token" --disk "$src=vda" --wait 60 \
	--flush-every 1 --state-dir "$Q_TMP/st" --json >"$Q_TMP/ev.json" 2>"$Q_TMP/m.err" &
agent=$!
for _ in $(seq 1 100); do
	_q_listening "$port" && break
	sleep 0.05
done
_q_listening "$port" || q_fail "the agent does not listen on $port: $(cat "$Q_TMP/m.err")"
dial wrong2 "$wrong" "$port"
wait_for "$Q_TMP/m.err" "does not match the token.*waiting for another connection" 10 ||
	q_fail "the agent did not refuse the wrong destination: $(cat "$Q_TMP/m.err")"
kill "$R_PID"
wait "$R_PID" 2>/dev/null || true
# The fault proxy counts bytes from its client (the receiver) only, so the
# cut is made from the other side: the receiver dials the proxy, which
# dials the agent; --after counts what the receiver sends: ~750 bytes of
# handshake and WELCOME, then 53 per FLUSHED (one a MiB), ~3.4 KB in all.
h_proxy "$port" --after 2000 --cut
dial right "$token" "$P_PORT"
wait "$agent" || q_fail "ferry migrate --listen failed: $(tail -n 5 "$Q_TMP/m.err")"
wait "$R_PID" || q_fail "the receiver failed: $(tail -n 5 "$R_LOG")"
p_stop
grep -q "fired 1" "$P_STATS" || q_fail "the cut did not happen: $(cat "$P_STATS")"
grep -q '"event":"reconnect"' "$Q_TMP/ev.json" || q_fail "no reconnect event"
[ "$(grep -c "the destination dialed in" "$Q_TMP/m.err")" -ge 2 ] ||
	q_fail "the agent did not accept a second time: $(cat "$Q_TMP/m.err")"
grep -q "resuming session" "$R_LOG" || q_fail "the receiver did not resume: $(cat "$R_LOG")"
head -c "$(stat -c %s "$src")" "$dst" >"$Q_TMP/dst.part"
cmp -s "$src" "$Q_TMP/dst.part" || q_fail "destination differs from the source"
h_fsck "$Q_TMP/dst.part"
echo "ok: wrong token refused by the agent (receiver logged it, dialed again); reverse migration cut, re-dialed, resumed, identical"
