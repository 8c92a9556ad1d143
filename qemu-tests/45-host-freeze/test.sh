#!/bin/bash
# --freeze: a mounted ext4 that keeps being written during the migration.
# The final pass runs with the filesystem frozen (FIFREEZE) and it is
# thawed afterwards; the destination is crash-consistent (e2fsck clean),
# its append-only log is a prefix of the source's, and the freeze time is
# reported. Runs in a private mount namespace; needs root.
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
trap 'cleanup_loop; _q_exit' EXIT
mount "$loop" "$mnt" || q_fail "mount $loop"
# The writer: an append-only log with a line every 5 ms, and new files.
python3 - "$mnt" <<'PY' &
import os, sys, time
d = sys.argv[1]
with open(os.path.join(d, "append.log"), "a") as log:
    i = 0
    while True:
        log.write("line %08d %s\n" % (i, "x" * 100))
        log.flush()
        os.fsync(log.fileno())
        if i % 50 == 0:
            with open(os.path.join(d, "data", "new%05d.bin" % i), "wb") as f:
                f.write(os.urandom(64 << 10))
        i += 1
        time.sleep(0.005)
PY
writer=$!
sleep 1

h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$loop=vda" --freeze \
	--freeze-timeout 30 --state-dir "$Q_TMP/st" --json >"$Q_TMP/ev.json" 2>"$Q_TMP/err" ||
	q_fail "migrate --freeze failed: $(tail -n 5 "$Q_TMP/err")"
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
[ "$(wc -l <"$Q_TMP/src.log")" -gt "$n" ] || q_fail "the writer did not go on after the thaw"
echo "ok: frozen for $ms ms in the final pass; destination fsck-clean with $n log lines, a prefix of the source's"
