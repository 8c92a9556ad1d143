#!/bin/bash
# --checksum in the live environment: a block of the destination disk
# changed behind ferry's back (from the host, in the image file) after
# ferry wrote it is found by the read-back, sent again, and the result is
# identical - never a silent success.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 64 40
truncate -s 64M "$dst"
target=$(python3 - "$src" <<'PY'
import sys
f = open(sys.argv[1], "rb")
off = 24 << 20
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
python3 - "$src" "$dst" "$target" >"$Q_TMP/corrupter.out" <<'PY' &
import os, sys, time
src, dst, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "rb") as f:
    f.seek(off)
    want = f.read(65536)
print("ready", flush=True)
end = time.time() + 240
while time.time() < end:
    fd = os.open(dst, os.O_RDWR)
    if os.pread(fd, 65536, off) == want:
        os.pwrite(fd, b"\x5a" * 4096, off + 4096)
        os.fsync(fd)
        print("corrupted", flush=True)
        sys.exit(0)
    os.close(fd)
    time.sleep(0.005)
PY
corrupter=$!
for _ in $(seq 1 100); do grep -q ready "$Q_TMP/corrupter.out" && break; sleep 0.1; done
grep -q ready "$Q_TMP/corrupter.out" || q_fail "corrupter did not start"
token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 --disk "$src=vda" --checksum \
	--handoff poweroff --state-dir "$Q_TMP/state" >"$Q_TMP/out" 2>"$Q_TMP/err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/err")"
wait "$corrupter" || q_fail "the corrupter never saw ferry's write"
grep -q "chunk at offset $target differs" "$Q_TMP/err" || q_fail "not detected: $(grep -a verify "$Q_TMP/err")"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no hand-off"
q_stop
cmp "$src" "$dst" || q_fail "the destination differs from the source after the repair"
echo "ok: the changed block at $target was detected, sent again, and the disk is identical"
