#!/bin/bash
# Online migration with cutover: a mounted ext4 that a writer keeps
# changing (new files fsynced one after another, an append-only log);
# migrate --sync-interval 1s makes a few passes, then SIGUSR1 cuts over
# with --freeze: the final pass runs with the filesystem frozen (FIFREEZE)
# and it is thawed afterwards. The destination is crash-consistent
# (e2fsck clean), every file the writer had fsynced before the freeze is
# there and equal (the files present are a prefix of the writer's list),
# its log is a prefix of the source's, and the freeze time is reported.
# Runs in a private mount namespace; needs root.
if [ "${FERRY_IN_NS:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	FERRY_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 e2fsck debugfs losetup python3
[ "$(id -u)" = 0 ] || q_skip "freezing a mounted filesystem needs root (loop device and mount)"
[ "${FERRY_IN_NS:-}" = 1 ] || q_skip "unshare not available for a private mount namespace"

src=$Q_TMP/src.img dst=$Q_TMP/dst.img mnt=$Q_TMP/mnt
h_mkdisk bare "$src" 96 24
truncate -s 96M "$dst"
loop=$(losetup -f --show "$src") || q_skip "no loop device available"
mkdir -p "$mnt"
cleanup_loop() {
	[ -n "${writer:-}" ] && kill "$writer" 2>/dev/null
	fsfreeze -u "$mnt" 2>/dev/null || true
	umount "$mnt" 2>/dev/null || true
	losetup -d "$loop" 2>/dev/null || true
}
# Keep the case's exit status for _q_exit (cleanup's own would hide a failure).
trap 'rc=$?; cleanup_loop; (exit $rc); _q_exit' EXIT
mount "$loop" "$mnt" || q_fail "mount $loop"
# The writer: an append-only log with a line every 5 ms, and new files.
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
            # Written down only once fsync returned.
            m.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
        i += 1
        time.sleep(0.005)
PY
writer=$!
sleep 1

h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$loop=vda" --freeze \
	--freeze-timeout 30 --sync-interval 1s --state-dir "$Q_TMP/st" --json \
	>"$Q_TMP/ev.json" 2>"$Q_TMP/err" &
agent=$!
for _ in $(seq 1 300); do
	[ "$(grep -c '"event":"pass"' "$Q_TMP/ev.json")" -ge 2 ] && break
	sleep 0.1
done
[ "$(grep -c '"event":"pass"' "$Q_TMP/ev.json")" -ge 2 ] || q_fail "fewer than two incremental passes"
kill -USR1 "$agent"
wait "$agent" || q_fail "migrate --freeze failed: $(tail -n 5 "$Q_TMP/err")"
h_wait_serve || true
# Thawed: the writer goes on, and a write returns at once.
timeout 5 touch "$mnt/after-thaw" || q_fail "the filesystem is still frozen after the agent exited"
sleep 0.5
kill "$writer"
writer=
grep -q '"event":"freeze","[^}]*"filesystems":1' "$Q_TMP/ev.json" || q_fail "no freeze of 1 filesystem: $(grep freeze "$Q_TMP/ev.json")"
ms=$(python3 -c 'import json,sys
print([json.loads(l) for l in open(sys.argv[1]) if "\"freeze\"" in l][-1]["ms"])' "$Q_TMP/ev.json")
h_fsck "$dst"
debugfs -R "cat /append.log" "$dst" >"$Q_TMP/dst.log" 2>/dev/null
umount "$mnt"
debugfs -R "cat /append.log" "$src" >"$Q_TMP/src.log" 2>/dev/null
n=$(wc -l <"$Q_TMP/dst.log")
[ "$n" -gt 100 ] || q_fail "the destination's log has only $n lines"
head -n "$n" "$Q_TMP/src.log" | cmp -s - "$Q_TMP/dst.log" || q_fail "the destination's log is not a prefix of the source's"
# Every file fsynced before the freeze: present and equal, a prefix of
# the writer's list (nothing after a gap).
present=0 gap=0
while read -r name sum; do
	if debugfs -R "dump /data/$name $Q_TMP/f" "$dst" >/dev/null 2>&1 && [ -s "$Q_TMP/f" ]; then
		[ "$gap" = 0 ] || q_fail "$name is on the destination after a missing file"
		[ "$(sha256sum <"$Q_TMP/f" | cut -d' ' -f1)" = "$sum" ] || q_fail "$name differs"
		present=$((present + 1))
	else
		gap=1
	fi
	rm -f "$Q_TMP/f"
done <"$Q_TMP/manifest"
[ "$present" -ge 3 ] || q_fail "only $present fsynced files on the destination"
[ "$(wc -l <"$Q_TMP/src.log")" -gt "$n" ] || q_fail "the writer did not go on after the thaw"
passes=$(grep -c '"event":"pass"' "$Q_TMP/ev.json")
echo "ok: $passes passes, then frozen for $ms ms in the final pass; destination fsck-clean, $present fsynced files equal, $n log lines (a prefix)"
