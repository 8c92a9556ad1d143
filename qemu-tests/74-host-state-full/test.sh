#!/bin/bash
# The agent's state file on a full filesystem (/var full on the source):
#  A. Full from the start: the migration refuses to begin, naming the
#     state file and ENOSPC - a run that cannot record its progress could
#     not be resumed - and sends nothing.
#  B. Full part-way: saves fail (said once), the previous file stays as it
#     was; the agent is killed, space is freed, and the run resumes the
#     session the destination holds and finishes identical; the state
#     file is gone at the end.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3
[ "$(id -u)" = 0 ] || q_skip "mounting a tmpfs needs root"

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 56
var=$Q_TMP/var
mkdir -p "$var"
mount -t tmpfs -o size=256k ferry-test-var "$var" || q_skip "cannot mount a tmpfs"
Q_CLEANUP+=("umount -l '$var'")
head -c 300k /dev/zero >"$var/filler" 2>/dev/null || true
[ "$(df --output=avail -k "$var" | tail -n 1)" -eq 0 ] || q_fail "the tmpfs is not full"

# A.
dst=$Q_TMP/a.img
truncate -s 96M "$dst"
H_ONCE=0 H_TIMEOUT=60 h_serve "vda=$dst"
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
	--state-dir "$var/ferry" --retries 0 >/dev/null 2>"$Q_TMP/a.err" || rc=$?
[ "$rc" = 1 ] || q_fail "with a full state directory the agent exited $rc, want 1"
grep -q "cannot write the state file: $var/ferry.*No space left on device (ENOSPC)" "$Q_TMP/a.err" ||
	q_fail "the error does not name the state file and ENOSPC: $(tail -n 2 "$Q_TMP/a.err")"
grep -q "plan:" "$H_LOG" && q_fail "a PLAN reached the destination although the state could not be saved"
echo "A: $(grep -o 'cannot write the state file.*' "$Q_TMP/a.err" | cut -c1-150)..."
kill "$H_PID" 2>/dev/null || true

# B. Room for the first save, then the filesystem fills up.
rm -f "$var/filler"
dst=$Q_TMP/b.img
truncate -s 96M "$dst"
H_ONCE=0 H_TIMEOUT=120 h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
	--state-dir "$var/ferry" --flush-every 4 --bwlimit 8M --retries 0 --log-level 3 \
	>/dev/null 2>"$Q_TMP/b1.err" &
agent=$!
Q_PIDS+=("$agent")
for _ in $(seq 1 100); do
	ls "$var"/ferry/migrate-*.state >/dev/null 2>&1 && break
	sleep 0.05
done
state=$(ls "$var"/ferry/migrate-*.state) || q_fail "no state file was written"
cp "$state" "$Q_TMP/first.state"
head -c 1M /dev/zero >"$var/filler" 2>/dev/null || true
for _ in $(seq 1 200); do
	grep -q "state file: .*No space left on device" "$Q_TMP/b1.err" && break
	sleep 0.05
done
grep -q "state file: .*No space left on device (ENOSPC)" "$Q_TMP/b1.err" ||
	q_fail "the full state directory was not reported: $(tail -n 2 "$Q_TMP/b1.err")"
sleep 1
kill -9 "$agent"
{ wait "$agent" || true; } 2>/dev/null
n=$(grep -c "state file: .*No space left" "$Q_TMP/b1.err")
[ "$n" = 1 ] || q_fail "the failing saves were reported $n times, want once"
cmp -s "$state" "$Q_TMP/first.state" ||
	python3 -c 'import sys; sys.exit(0 if open(sys.argv[1]).read().endswith("end\n") else 1)' "$state" ||
	q_fail "the state file was left damaged"
rm -f "$var/filler"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
	--state-dir "$var/ferry" --flush-every 4 >/dev/null 2>"$Q_TMP/b2.err" ||
	q_fail "the run after space was freed failed: $(tail -n 3 "$Q_TMP/b2.err")"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
grep -q "resuming session" "$H_LOG" || q_fail "the second run did not resume the session"
grep -q "continuing the migration recorded in" "$Q_TMP/b2.err" || q_fail "the state file was not used"
cmp "$src" "$dst" || q_fail "destination differs after the resume"
[ ! -e "$state" ] || q_fail "the state file is left behind after success"
echo "ok: a full state directory refuses to start (ENOSPC named); one that fills up mid-way is reported once, the run resumes after space is freed and finishes identical"
