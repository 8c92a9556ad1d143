#!/bin/bash
# Signals reach the agent at any moment, not only between passes:
#  A. SIGUSR1 while the agent still waits for a booting destination (before
#     any handler used to be installed: it killed the agent) only asks for
#     the cutover: the agent lives on, copies, and cuts over right after the
#     first pass; the destination is identical.
#  B. SIGINT while the agent waits for the destination: it stops within a
#     second with an "interrupted" error (it used to die silently).
#  C. SIGTERM during the reconnect backoff (the destination died
#     mid-copy), with --sync-interval: the agent stops at once (it used to
#     sleep on and reconnect), exit 1, the message names the signal and the
#     state file, the summary says interrupted. A new run against the
#     destination back up resumes from that state: it sends less than half.
#  D. SIGINT during the first pass without --sync-interval: it stops
#     within a second, with the message and the summary (it used to be
#     killed by the signal: exit 130, nothing said).
#  E. --json emits a progress event every second by default (it was every
#     5 s); --progress-interval 2 gives a text line every 2 s.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" python3

src=$Q_TMP/src.img
head -c 48M /dev/urandom >"$src"
total=$((48 << 20))

# stopped_within PID SECONDS: waits for PID to exit; fails past SECONDS.
# Sets RC to its exit status.
stopped_within() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$1" 2>/dev/null && q_fail "the agent (pid $1) still runs $2 s after the signal"
	RC=0
	wait "$1" || RC=$?
}
# wait_for FILE REGEX SECONDS
wait_for() {
	local i
	for i in $(seq 1 $(($3 * 20))); do
		grep -q -E -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	q_fail "no /$2/ in $1 after $3 s: $(tail -n 3 "$1")"
}

# A. SIGUSR1 before the destination is up.
dst=$Q_TMP/a.dst
truncate -s 64M "$dst"
port=$(q_free_port)
tok=$("$FERRY" token)
"$FERRY" migrate --to "127.0.0.1:$port" --token "$tok" --disk "$src=vda" --wait 60 \
	--sync-interval 1h --state-dir "$Q_TMP/sta" --json >"$Q_TMP/a.json" 2>"$Q_TMP/a.err" &
agent=$!
Q_PIDS+=("$agent")
sleep 1
kill -USR1 "$agent"
sleep 0.5
if ! kill -0 "$agent" 2>/dev/null; then
	RC=0
	wait "$agent" || RC=$?
	q_fail "A: SIGUSR1 before the first pass killed the agent (exit $RC)"
fi
: >"$Q_TMP/a.result"
"$FERRY_INIT" serve --listen "127.0.0.1:$port" --token "$tok" --result "$Q_TMP/a.result" --once \
	--disk "vda=$dst" >"$Q_TMP/a.serve" 2>&1 &
spid=$!
Q_PIDS+=("$spid")
stopped_within "$agent" 60
[ "$RC" = 0 ] || q_fail "A: the cutover asked early failed (exit $RC): $(tail -n 3 "$Q_TMP/a.err")"
wait "$spid" || q_fail "A: the receiver failed: $(tail -n 3 "$Q_TMP/a.serve")"
cmp -s "$src" <(head -c "$total" "$dst") || q_fail "A: the destination differs"
case "$(h_json_field "$Q_TMP/a.json" summary result)" in
migrated*) ;; # random data: "migrated, but the destination may not boot"
*) q_fail "A: summary $(h_json_field "$Q_TMP/a.json" summary result)" ;;
esac
q_log "A: SIGUSR1 before the destination was up: copied, cut over, identical"

# B. SIGINT while waiting for the destination.
port=$(q_free_port)
"$FERRY" migrate --to "127.0.0.1:$port" --token "$tok" --disk "$src=vda" --wait 60 \
	--state-dir "$Q_TMP/stb" >"$Q_TMP/b.out" 2>"$Q_TMP/b.err" &
agent=$!
sleep 1.5
kill -INT "$agent"
stopped_within "$agent" 1
[ "$RC" = 1 ] || q_fail "B: exit $RC, want 1: $(tail -n 3 "$Q_TMP/b.err")"
grep -q "interrupted by SIGINT; nothing was sent in this run" "$Q_TMP/b.err" ||
	q_fail "B: no interrupted message: $(tail -n 3 "$Q_TMP/b.err")"
q_log "B: SIGINT while waiting for the destination: stopped, $(tail -n 1 "$Q_TMP/b.err")"

# C. SIGTERM during the reconnect backoff.
dst=$Q_TMP/c.dst
truncate -s 64M "$dst"
H_ONCE=0 h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --bwlimit 8M \
	--flush-every 4 --sync-interval 1h --state-dir "$Q_TMP/stc" --json \
	>"$Q_TMP/c1.json" 2>"$Q_TMP/c1.err" &
agent=$!
Q_PIDS+=("$agent")
wait_for "$Q_TMP/c1.json" '"event":"flush".*"durable":[3-9][0-9]{7}' 30 # 28 MiB of 48
# h_serve runs it under timeout(1): the receiver is its child.
kill -9 "$(pgrep -P "$H_PID")" || q_fail "C: no receiver under $H_PID"
{ wait "$H_PID" || true; } 2>/dev/null
wait_for "$Q_TMP/c1.err" 'reconnecting in 2 s' 20
sleep 0.5 # inside the 2 s wait
kill -TERM "$agent"
stopped_within "$agent" 1
[ "$RC" = 1 ] || q_fail "C: exit $RC, want 1: $(tail -n 3 "$Q_TMP/c1.err")"
state=$(ls "$Q_TMP"/stc/migrate-*.state 2>/dev/null | head -n 1)
[ -s "$state" ] || q_fail "C: no state file in $Q_TMP/stc"
grep -q "error: interrupted by SIGTERM; what the destination made durable is kept in $state" \
	"$Q_TMP/c1.err" || q_fail "C: no interrupted message: $(tail -n 3 "$Q_TMP/c1.err")"
case "$(h_json_field "$Q_TMP/c1.json" summary result)" in
interrupted*) ;;
*) q_fail "C: summary result $(h_json_field "$Q_TMP/c1.json" summary result)" ;;
esac
grep -q "reconnecting in 4 s" "$Q_TMP/c1.err" && q_fail "C: the agent went on reconnecting after SIGTERM"
# The destination back (same disk, same token): the state resumes.
tok=$H_TOKEN
: >"$Q_TMP/c.result"
"$FERRY_INIT" serve --listen "127.0.0.1:$H_PORT" --token "$tok" --result "$Q_TMP/c.result" --once \
	--disk "vda=$dst" >"$Q_TMP/c.serve" 2>&1 &
spid=$!
Q_PIDS+=("$spid")
for _ in $(seq 1 100); do
	grep -q '^FERRY READY' "$Q_TMP/c.result" && break
	sleep 0.05
done
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$tok" --disk "$src=vda" \
	--state-dir "$Q_TMP/stc" --json >"$Q_TMP/c2.json" 2>"$Q_TMP/c2.err" ||
	q_fail "C: the resumed run failed: $(tail -n 3 "$Q_TMP/c2.err")"
wait "$spid" || q_fail "C: the receiver failed: $(tail -n 3 "$Q_TMP/c.serve")"
cmp -s "$src" <(head -c "$total" "$dst") || q_fail "C: the destination differs"
sent=$(h_json_field "$Q_TMP/c2.json" summary bytes_sent)
[ "$sent" -lt $((total / 2)) ] || q_fail "C: the resumed run sent $sent of $total bytes"
q_log "C: SIGTERM in the backoff: stopped at once, state kept; the resume sent $sent of $total bytes"

# D. SIGINT during the first pass, no --sync-interval; E. progress events.
dst=$Q_TMP/d.dst
truncate -s 64M "$dst"
H_ONCE=0 h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --bwlimit 8M \
	--state-dir "$Q_TMP/std" --json >"$Q_TMP/d.json" 2>"$Q_TMP/d.err" &
agent=$!
Q_PIDS+=("$agent")
wait_for "$Q_TMP/d.json" '"event":"progress"' 20
sleep 3.2
kill -INT "$agent"
stopped_within "$agent" 1
[ "$RC" = 1 ] || q_fail "D: exit $RC, want 1: $(tail -n 3 "$Q_TMP/d.err")"
grep -q "error: interrupted by SIGINT; what the destination made durable is kept in" "$Q_TMP/d.err" ||
	q_fail "D: no interrupted message: $(tail -n 3 "$Q_TMP/d.err")"
case "$(h_json_field "$Q_TMP/d.json" summary result)" in
interrupted*) ;;
*) q_fail "D: summary result $(h_json_field "$Q_TMP/d.json" summary result)" ;;
esac
n=$(grep -c '"event":"progress"' "$Q_TMP/d.json")
[ "$n" -ge 3 ] || q_fail "E: $n --json progress events in about 4 s, want one a second"
# Text lines every 2 s (stderr is no terminal here).
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --bwlimit 8M \
	--state-dir "$Q_TMP/std" --progress-interval 2 >"$Q_TMP/e.out" 2>"$Q_TMP/e.err" ||
	q_fail "E: the resumed run failed: $(tail -n 3 "$Q_TMP/e.err")"
lines=$(grep -c '^ferry: sending' "$Q_TMP/e.err" || true)
[ "$lines" -ge 2 ] || q_fail "E: $lines text progress lines with --progress-interval 2: $(cat "$Q_TMP/e.err")"
cmp -s "$src" <(head -c "$total" "$dst") || q_fail "D: the destination differs after the resume"
q_log "D: SIGINT in the first pass: stopped with the message; E: $n progress events in ~4 s, $lines lines at 2 s"
echo "ok: SIGUSR1 early asks for the cutover; SIGINT/SIGTERM stop at once while connecting, in the backoff and in the first pass, state kept and resumed; progress every 1 s with --json"
