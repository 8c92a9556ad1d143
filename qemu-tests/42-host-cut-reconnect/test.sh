#!/bin/bash
# Cut the TCP connection mid-stream (a proxy closes it): the agent
# reconnects by itself with backoff, the receiver still holds the session
# and resumes from what it committed; the result is identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 96 56
truncate -s 96M "$dst"
# The receiver must outlive the cut session.
H_ONCE=0 h_serve "vda=$dst"
h_proxy "$H_PORT" --after $((25 << 20)) --cut
"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" --flush-every 4 \
	--state-dir "$Q_TMP/st" --json >"$Q_TMP/ev.json" 2>"$Q_TMP/err" ||
	q_fail "the agent failed: $(tail -n 5 "$Q_TMP/err")"
wait "$H_PID" || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
grep -q '"event":"reconnect"' "$Q_TMP/ev.json" || q_fail "no reconnect event"
grep -q "resuming session" "$H_LOG" || q_fail "the receiver did not resume the session"
cmp "$src" "$dst" || q_fail "destination differs from the source"
echo "ok: cut at 25 MiB; reconnected and resumed; identical"
