#!/bin/bash
# Change tracking on a live source: a mounted ext4 on a loop device that a
# writer keeps changing (an append-only log fsynced every 5 ms, a new
# 64 KiB file fsynced every 20 lines). Three migrations of it:
#  A. tracked: `ferry migrate --sync-interval 1s --freeze`: every
#     incremental pass and the frozen final pass take the dirty map - no
#     chunk compared by hashes, and the final pass reads exactly the bytes
#     it sends as changed, a small part of what is used.
#  B. forced overflow (a 4 KiB kernel buffer, nobody reading it between
#     passes): the loss is detected, said, and those passes compare by
#     hashes.
#  C. restarted: a run stopped with SIGINT after its first pass, then run
#     again: the time between the runs was not traced, so the first pass
#     of the second run compares by hashes; the next ones are tracked.
# Each destination is e2fsck-clean, every file fsynced before its freeze
# is there and equal (a prefix of the writer's list), its log a prefix of
# the source's. Runs in a private mount namespace; needs root and a
# kernel with block trace events (skips otherwise, with the reason).
if [ "${FERRY_IN_NS:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	FERRY_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 e2fsck debugfs losetup python3
[ "$(id -u)" = 0 ] || q_skip "tracing block I/O and freezing need root (loop device and mount)"
[ "${FERRY_IN_NS:-}" = 1 ] || q_skip "unshare not available for a private mount namespace"

src=$Q_TMP/src.img mnt=$Q_TMP/mnt
h_mkdisk bare "$src" 128 24
loop=$(losetup -f --show "$src") || q_skip "no loop device available"
mkdir -p "$mnt"
cleanup_loop() {
	[ -n "${agent:-}" ] && kill "$agent" 2>/dev/null
	[ -n "${writer:-}" ] && kill "$writer" 2>/dev/null
	fsfreeze -u "$mnt" 2>/dev/null || true
	umount "$mnt" 2>/dev/null || true
	losetup -d "$loop" 2>/dev/null || true
}
trap 'rc=$?; cleanup_loop; (exit $rc); _q_exit' EXIT
"$FERRY" check --disk "$loop" >"$Q_TMP/check" 2>&1
line=$(grep "$loop: .*change tracking" "$Q_TMP/check") || q_fail "ferry check has no tracking line: $(cat "$Q_TMP/check")"
case "$line" in
PASS*) q_log "$line" ;;
*) q_skip "no change tracking here: ${line#*: }" ;;
esac
mount "$loop" "$mnt" || q_fail "mount $loop"
python3 - "$mnt" "$Q_TMP/manifest" <<'PY' &
import hashlib, os, sys, time
d, manifest = sys.argv[1], sys.argv[2]
with open(os.path.join(d, "append.log"), "a") as log, open(manifest, "a", buffering=1) as m:
    i = 0
    while True:
        log.write("line %08d %s\n" % (i, "x" * 100))
        log.flush()
        os.fsync(log.fileno())
        if i % 20 == 0:
            name = "new%05d.bin" % i
            data = os.urandom(64 << 10)
            with open(os.path.join(d, "data", name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            m.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
        i += 1
        time.sleep(0.005)
PY
writer=$!
sleep 1

# passes FILE: "pass tracked hashed compared changed bytes_read" per pass event.
passes() {
	python3 - "$1" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    if '"event":"pass"' in l:
        o = json.loads(l)
        print(o["pass"], o["tracked"], o["hashed"], o["compared"], o["changed"], o["bytes_read"])
PY
}
wait_passes() { # FILE N: N pass events, within 60 s
	for _ in $(seq 1 600); do
		[ "$(grep -c '"event":"pass"' "$1")" -ge "$2" ] && return 0
		kill -0 "$agent" 2>/dev/null || q_fail "the agent exited: $(tail -n 5 "$1.err")"
		sleep 0.1
	done
	q_fail "fewer than $2 passes in $1: $(tail -n 3 "$1.err")"
}
# cutover NAME [ENV=V...]: a migration to a new destination, three passes
# after the first, then SIGUSR1 with --freeze.
cutover() {
	local name=$1
	shift
	truncate -s 128M "$Q_TMP/$name.dst"
	h_serve "vda=$Q_TMP/$name.dst"
	env "$@" "$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$loop=vda" \
		--freeze --freeze-timeout 30 --sync-interval 1s --state-dir "$Q_TMP/st.$name" --json \
		>"$Q_TMP/$name.json" 2>"$Q_TMP/$name.json.err" &
	agent=$!
	wait_passes "$Q_TMP/$name.json" 3
	kill -USR1 "$agent"
	wait "$agent" || q_fail "$name: migrate --freeze failed: $(tail -n 5 "$Q_TMP/$name.json.err")"
	agent=
	h_wait_serve || true
	h_fsck "$Q_TMP/$name.dst"
}
field() { h_json_field "$@"; }

# A. Tracked.
cutover a
used=$(field "$Q_TMP/a.json" plan send)
passes "$Q_TMP/a.json" >"$Q_TMP/a.passes"
q_log "A passes (pass tracked hashed compared changed read): $(tr '\n' ';' <"$Q_TMP/a.passes")"
grep -q '"event":"tracking",[^}]*"disk":"'"$loop"'","state":"on"' "$Q_TMP/a.json" ||
	q_fail "A: no tracking-on event: $(grep tracking "$Q_TMP/a.json")"
awk '$1 >= 2 && !($2 == 1 && $3 == 0 && $4 == 0) { exit 1 }' "$Q_TMP/a.passes" ||
	q_fail "A: an incremental pass was not tracked or compared by hashes"
read -r p tr ha cmp chg rd < <(awk '$1 == 0' "$Q_TMP/a.passes")
[ "${p:-}" = 0 ] || q_fail "A: no final pass event"
[ "$tr" = 1 ] && [ "$ha" = 0 ] && [ "$cmp" = 0 ] || q_fail "A: the final pass was not tracked"
[ "$rd" -gt 0 ] || q_fail "A: the final pass read nothing although the writer ran"
[ "$rd" = "$chg" ] || q_fail "A: the final pass read $rd bytes but sent $chg as changed: it read unchanged data"
[ $((rd * 20)) -lt "$used" ] || q_fail "A: the final pass read $rd of $used used bytes"
fin_read=$(field "$Q_TMP/a.json" summary final_bytes_read)
fin_secs=$(field "$Q_TMP/a.json" summary final_seconds)
frz=$(field "$Q_TMP/a.json" freeze ms)
[ "$fin_read" = "$rd" ] || q_fail "A: the summary's final_bytes_read $fin_read is not the final pass's $rd"
[ -n "$fin_secs" ] && [ -n "$frz" ] || q_fail "A: no final_seconds or freeze ms"
q_log "A: final pass read $rd of $used used bytes (all of it sent as changed), $fin_secs s, frozen $frz ms"

# B. Overflow: the kernel's 4 KiB buffer, read only when a pass starts.
cutover b FERRY_TRACK_BUFFER_KB=4 FERRY_TRACK_READER=0
grep -q '"event":"tracking",[^}]*"disk":"'"$loop"'","state":"gap","reason":"the kernel lost [0-9]* block trace events' \
	"$Q_TMP/b.json" || q_fail "B: no gap event for lost events: $(grep tracking "$Q_TMP/b.json")"
grep -q "change tracking had a gap (the kernel lost .*): comparing by hashes" "$Q_TMP/b.json.err" ||
	q_fail "B: no line saying so on stderr: $(grep -i track "$Q_TMP/b.json.err")"
passes "$Q_TMP/b.json" >"$Q_TMP/b.passes"
awk '$1 >= 2 && $3 == 1 && $4 > 0 { n++ } END { exit !n }' "$Q_TMP/b.passes" ||
	q_fail "B: no pass compared by hashes: $(tr '\n' ';' <"$Q_TMP/b.passes")"
q_log "B passes: $(tr '\n' ';' <"$Q_TMP/b.passes")"

# C. Restarted: the first pass of the second run compares by hashes.
truncate -s 128M "$Q_TMP/c.dst"
H_ONCE=0 h_serve "vda=$Q_TMP/c.dst"
cargs=(--to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$loop=vda" --state-dir "$Q_TMP/st.c" --json)
"$FERRY" migrate "${cargs[@]}" --sync-interval 1h >"$Q_TMP/c1.json" 2>"$Q_TMP/c1.json.err" &
agent=$!
for _ in $(seq 1 600); do
	grep -q '"event":"done"' "$Q_TMP/c1.json" && break
	sleep 0.1
done
kill -INT "$agent"
wait "$agent" || q_fail "C: an interrupted migrate must exit 0: $(tail -n 3 "$Q_TMP/c1.json.err")"
sleep 1
"$FERRY" migrate "${cargs[@]}" --sync-interval 1s --freeze >"$Q_TMP/c2.json" 2>"$Q_TMP/c2.json.err" &
agent=$!
wait_passes "$Q_TMP/c2.json" 3
kill -USR1 "$agent"
wait "$agent" || q_fail "C: the second run failed: $(tail -n 5 "$Q_TMP/c2.json.err")"
agent=
h_wait_serve || true
h_fsck "$Q_TMP/c.dst"
passes "$Q_TMP/c2.json" >"$Q_TMP/c.passes"
q_log "C passes: $(tr '\n' ';' <"$Q_TMP/c.passes")"
grep -q '"state":"gap","reason":"the time before this run was not traced' "$Q_TMP/c2.json" ||
	q_fail "C: no gap for the untraced time between the runs: $(grep tracking "$Q_TMP/c2.json")"
awk 'NR == 1 { exit !($1 == 2 && $3 == 1 && $4 > 0) }' "$Q_TMP/c.passes" ||
	q_fail "C: the first pass of the second run did not compare by hashes"
awk '$1 == 0 { exit !($2 == 1 && $4 == 0) }' "$Q_TMP/c.passes" ||
	q_fail "C: the final pass of the second run was not tracked"

# Every destination against the source.
timeout 5 touch "$mnt/after-thaw" || q_fail "the filesystem is still frozen"
kill "$writer"
wait "$writer" 2>/dev/null || true
writer=
umount "$mnt" || q_fail "umount $mnt"
debugfs -R "cat /append.log" "$src" >"$Q_TMP/src.log" 2>/dev/null
for name in a b c; do
	dst=$Q_TMP/$name.dst
	debugfs -R "cat /append.log" "$dst" >"$Q_TMP/dst.log" 2>/dev/null
	n=$(wc -l <"$Q_TMP/dst.log")
	[ "$n" -gt 100 ] || q_fail "$name: the destination's log has only $n lines"
	head -n "$n" "$Q_TMP/src.log" | cmp -s - "$Q_TMP/dst.log" ||
		q_fail "$name: the destination's log is not a prefix of the source's"
	present=0 gap=0
	while read -r f sum; do
		if debugfs -R "dump /data/$f $Q_TMP/f" "$dst" >/dev/null 2>&1 && [ -s "$Q_TMP/f" ]; then
			[ "$gap" = 0 ] || q_fail "$name: $f is on the destination after a missing file"
			[ "$(sha256sum <"$Q_TMP/f" | cut -d' ' -f1)" = "$sum" ] || q_fail "$name: $f differs"
			present=$((present + 1))
		else
			gap=1
		fi
		rm -f "$Q_TMP/f"
	done <"$Q_TMP/manifest"
	[ "$present" -ge 3 ] || q_fail "$name: only $present fsynced files on the destination"
	q_log "$name: fsck clean, $present fsynced files equal, $n log lines (a prefix)"
done
echo "ok: tracked final pass read $rd bytes of $used used (= its changed bytes), frozen $frz ms; overflow and restart fell back to hashes; all three destinations consistent"
