#!/bin/bash
# Host mode: --checksum must catch a destination block changed behind
# ferry's back after it was written, send it again, and end identical;
# and a block that keeps being corrupted must fail the migration, never
# pass silently.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 60
# A chunk holding file data, well past the first MiB (held back to the end).
target=$(python3 - "$src" <<'PY'
import sys
f = open(sys.argv[1], "rb")
off = 8 << 20
while True:
    f.seek(off)
    b = f.read(65536)
    if len(b) < 65536:
        sys.exit("no data chunk")
    if b.count(0) < 1000:
        print(off)
        break
    off += 65536
PY
)

# corrupt DST OFF ONCE: waits until ferry wrote the chunk, then overwrites
# it (once, or again and again).
corrupt() {
	python3 - "$src" "$1" "$target" "$2" >"$Q_TMP/corrupter.out" <<'PY' &
import os, sys, time
src, dst, off, once = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "once"
with open(src, "rb") as f:
    f.seek(off)
    want = f.read(65536)
print("ready", flush=True)
end = time.time() + 120
while time.time() < end:
    fd = os.open(dst, os.O_RDWR)
    if os.pread(fd, 65536, off) == want:
        os.pwrite(fd, b"\xa5" * 4096, off + 8192)
        os.fsync(fd)
        if once:
            print("corrupted", flush=True)
            sys.exit(0)
    os.close(fd)
    time.sleep(0.001)
PY
	CORRUPTER=$!
	local i
	for i in $(seq 1 200); do
		grep -q ready "$Q_TMP/corrupter.out" 2>/dev/null && return 0
		sleep 0.02
	done
	q_fail "the corrupter did not start"
}

# 1. Corrupted once: detected, sent again, identical at the end.
truncate -s 96M "$Q_TMP/dst1.img"
h_serve "vda=$Q_TMP/dst1.img"
corrupt "$Q_TMP/dst1.img" once
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src" --checksum --json \
	--flush-every 4 >"$Q_TMP/ev1" 2>"$Q_TMP/err1" || q_fail "migrate exited $?: $(tail -n 3 "$Q_TMP/err1")"
h_wait_serve || true
wait "$CORRUPTER" || q_fail "the corrupter never saw ferry's write"
grep -q corrupted "$Q_TMP/corrupter.out" || q_fail "the corrupter did not corrupt"
grep -q "chunk at offset $target differs" "$Q_TMP/err1" || q_fail "the corruption was not reported: $(cat "$Q_TMP/err1")"
[ "$(h_json_field "$Q_TMP/ev1" summary resent)" -ge 65536 ] || q_fail "nothing was re-sent"
cmp "$src" "$Q_TMP/dst1.img" || q_fail "destination differs from the source after repair"

# 2. Corrupted again and again: the migration fails, loudly.
truncate -s 96M "$Q_TMP/dst2.img"
h_serve "vda=$Q_TMP/dst2.img"
corrupt "$Q_TMP/dst2.img" always
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src" --checksum \
	>/dev/null 2>"$Q_TMP/err2" || rc=$?
kill "$CORRUPTER" 2>/dev/null || true
h_wait_serve || true
[ "$rc" = 1 ] || q_fail "exit $rc with a block that keeps changing, want 1"
grep -q "verification failed" "$Q_TMP/err2" || q_fail "no verification failure: $(cat "$Q_TMP/err2")"
echo "ok: a changed block was detected and repaired; a block that keeps changing fails the migration"
