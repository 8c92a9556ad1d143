#!/bin/bash
# Incremental sync at scale: a 4 GiB ext4 image (on tmpfs) migrated with
# migrate --sync-interval, then 1 % of its 4 KiB blocks rewritten (inside
# files, so the filesystem stays valid) and a 200 MiB file deleted and its
# freed blocks scribbled over: `ferry sync` sends at most 2 % of the disk,
# none of the freed blocks, and the destination's files equal the source's.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 debugfs e2fsck python3
shm=$(mktemp -d /dev/shm/ferry-sync.XXXXXX) || q_skip "no /dev/shm"
trap 'rm -rf "$shm"; _q_exit' EXIT
[ "$(df -k --output=avail /dev/shm | tail -n 1)" -gt $((4 << 20)) ] || q_skip "less than 4 GiB free in /dev/shm"

src=$shm/src.img dst=$shm/dst.img
mkdir -p "$shm/root"
python3 - "$shm/root" <<'PY'
import os, random, sys
r = random.Random(7)
for i in range(12):
    with open(os.path.join(sys.argv[1], "f%02d.bin" % i), "wb") as f:
        for _ in range(100):
            f.write(r.randbytes(1 << 20))
with open(os.path.join(sys.argv[1], "big-to-free.bin"), "wb") as f:
    for _ in range(200):
        f.write(r.randbytes(1 << 20))
PY
truncate -s 4G "$src" "$dst"
mkfs.ext4 -q -F -d "$shm/root" "$src"
rm -rf "$shm/root"

H_ONCE=0 h_serve "vda=$dst"
args=(--to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --state-dir "$Q_TMP/st")
"$FERRY" migrate "${args[@]}" --sync-interval 1h --json >"$Q_TMP/m.json" 2>"$Q_TMP/m.err" &
agent=$!
for _ in $(seq 1 600); do grep -q '"event":"done"' "$Q_TMP/m.json" && break; sleep 0.1; done
kill -INT "$agent"
wait "$agent" || q_fail "the first pass failed: $(tail -n 3 "$Q_TMP/m.err")"

# The changes: 1 % of the disk's 4 KiB blocks, chosen among file data
# blocks; then the big file is deleted and its blocks overwritten.
python3 - "$src" <<'PY' || q_fail "could not change the source"
import os, random, subprocess, sys
img = sys.argv[1]
def blocks(path):
    out = subprocess.run(["debugfs", "-R", "blocks " + path, img], capture_output=True,
                         text=True).stdout
    return [int(b) for b in out.split()]
data = []
for i in range(12):
    data += blocks("/f%02d.bin" % i)
freed = blocks("/big-to-free.bin")
r = random.Random(11)
n = (4 << 30) // 4096 // 100
fd = os.open(img, os.O_RDWR)
for b in r.sample(data, n):
    os.pwrite(fd, r.randbytes(4096), b * 4096)
os.close(fd)
subprocess.run(["debugfs", "-w", "-R", "rm /big-to-free.bin", img], check=True,
               capture_output=True)
fd = os.open(img, os.O_RDWR)
for b in freed:
    os.pwrite(fd, b"\x5a" * 4096, b * 4096)
os.close(fd)
PY

t0=$(q_now)
"$FERRY" sync "${args[@]}" --json >"$Q_TMP/s.json" 2>"$Q_TMP/s.err" ||
	q_fail "ferry sync failed: $(tail -n 3 "$Q_TMP/s.err")"
secs=$(q_elapsed "$t0")
sent=$(h_json_field "$Q_TMP/s.json" summary bytes_sent)
changed=$(python3 -c 'import json,sys
print(max(json.loads(l)["changed"] for l in open(sys.argv[1]) if "\"event\":\"pass\"" in l))' "$Q_TMP/s.json")
disk=$((4 << 30))
[ "$sent" -le $((disk / 50)) ] || q_fail "sync sent $sent bytes, more than 2 % of $disk"
want=$(((4 << 30) / 100))
[ "$changed" -ge "$want" ] || q_fail "sync found only $changed changed bytes of $want"
[ "$changed" -le $((want + (8 << 20))) ] || q_fail "sync sent $changed changed bytes: the freed blocks went too"
"$FERRY" migrate "${args[@]}" >/dev/null 2>"$Q_TMP/f.err" || q_fail "the final run failed: $(tail -n 3 "$Q_TMP/f.err")"
wait "$H_PID" || true
h_fsck "$dst"
h_same_files "$src" "$dst"
echo "ok: 1 % of 4 GiB changed ($want bytes) + 200 MiB freed and scribbled: sync sent $sent bytes ($changed changed) in $secs s; files identical"
