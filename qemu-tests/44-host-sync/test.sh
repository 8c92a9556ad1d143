#!/bin/bash
# Incremental sync while the source changes:
#  A. migrate --sync-interval 1s: after the first pass the source changes
#     (a new file, a deleted one); the next pass sends about the change,
#     not the disk; SIGUSR1 cuts over and finishes.
#  B. migrate interrupted with SIGINT after its first pass (the
#     destination stays in migration mode), the source changes, `ferry
#     sync` sends the change, and migrate run again finishes.
# Each time the destination's files equal the changed source's.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 debugfs e2fsck python3

wait_event() { # FILE REGEX SECONDS
	for _ in $(seq 1 $(($3 * 10))); do
		grep -q -E "$2" "$1" && return 0
		sleep 0.1
	done
	q_fail "no /$2/ in $1 after $3 s: $(tail -n 3 "$1")"
}
change() { # IMG MIB NAME: a new file of MIB MiB, and one old file deleted
	head -c "$(($2 << 20))" /dev/urandom >"$Q_TMP/new.bin"
	debugfs -w -R "write $Q_TMP/new.bin /$3" "$1" >/dev/null 2>&1 || q_fail "debugfs write"
	victim=$(debugfs -R "ls -p /data" "$1" 2>/dev/null | awk -F/ '$6 ~ /^f0/ { print $6; exit }')
	debugfs -w -R "rm /data/$victim" "$1" >/dev/null 2>&1 || q_fail "debugfs rm"
}

# A.
src=$Q_TMP/a.src dst=$Q_TMP/a.dst
h_mkdisk bare "$src" 128 48
truncate -s 128M "$dst"
H_ONCE=0 h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --sync-interval 1s \
	--state-dir "$Q_TMP/sta" --json >"$Q_TMP/a.json" 2>"$Q_TMP/a.err" &
agent=$!
wait_event "$Q_TMP/a.json" '"event":"done"' 60
change "$src" 3 added-a
sleep 2.5
wait_event "$Q_TMP/a.json" '"event":"pass","[^}]*"changed":[1-9]' 30
kill -USR1 "$agent"
wait "$agent" || q_fail "A: migrate failed after the cutover: $(tail -n 3 "$Q_TMP/a.err")"
wait "$H_PID" || true
changed=$(python3 - "$Q_TMP/a.json" <<'PY'
import json, sys
print(max(json.loads(l)["changed"] for l in open(sys.argv[1]) if '"event":"pass"' in l))
PY
)
[ "$changed" -ge $((3 << 20)) ] && [ "$changed" -le $((8 << 20)) ] ||
	q_fail "A: a pass sent $changed bytes for a 3 MiB change"
h_same_files "$src" "$dst"
h_fsck "$dst"

# B.
src=$Q_TMP/b.src dst=$Q_TMP/b.dst
h_mkdisk bare "$src" 96 32
truncate -s 96M "$dst"
H_ONCE=0 h_serve "vda=$dst"
args=(--to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --state-dir "$Q_TMP/stb")
"$FERRY" migrate "${args[@]}" --sync-interval 1h --json >"$Q_TMP/b1.json" 2>"$Q_TMP/b1.err" &
agent=$!
wait_event "$Q_TMP/b1.json" '"event":"done"' 60
kill -INT "$agent"
wait "$agent" || q_fail "B: an interrupted migrate must exit 0"
grep -q "interrupted" "$Q_TMP/b1.json" || q_fail "B: no interrupted summary"
change "$src" 2 added-b
"$FERRY" sync "${args[@]}" --json >"$Q_TMP/b2.json" 2>"$Q_TMP/b2.err" ||
	q_fail "B: ferry sync failed: $(tail -n 3 "$Q_TMP/b2.err")"
grep -q '"event":"pass","[^}]*"changed":[1-9]' "$Q_TMP/b2.json" || q_fail "B: sync sent nothing"
"$FERRY" migrate "${args[@]}" >/dev/null 2>"$Q_TMP/b3.err" || q_fail "B: final migrate failed: $(tail -n 3 "$Q_TMP/b3.err")"
wait "$H_PID" || true
grep -q "resuming session" "$H_LOG" || q_fail "B: the final run did not resume"
h_same_files "$src" "$dst"
h_fsck "$dst"
echo "ok: sync passes sent $changed bytes for a 3 MiB change; sync + resume finished identical"
