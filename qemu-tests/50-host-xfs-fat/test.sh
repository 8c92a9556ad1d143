#!/bin/bash
# Host mode: a GPT disk with a FAT32 ESP (a boot loader file, one file
# deleted) and an XFS root (real files, 100 MiB written and deleted),
# migrated twice:
#  A. unmounted: every file identical (XFS mounted read-only from both
#     images, the ESP through mtools), xfs_repair -n and fsck.vfat -n clean,
#     and the wire carries at most 1.02 x what both filesystems use + 2 MiB
#     (boot area, GPT, chunk rounding) - not the deleted data;
#  B. while the XFS is loop-mounted and being written: ferry check says
#     the map comes from GETFSMAP; passes every second while the writer
#     runs, then the writer stops, the XFS is frozen, two more passes, and
#     the cutover. The destination's XFS mounts (replaying its covered log,
#     as a copy of a frozen XFS needs), is then xfs_repair-clean and holds
#     every file.
# Runs in a private mount namespace; needs root.
if [ "${FERRY_IN_NS:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	FERRY_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.xfs xfs_repair xfs_db mkfs.vfat fsck.vfat mcopy mmd \
	mdel minfo losetup python3
[ "$(id -u)" = 0 ] || q_skip "loop-mounting XFS needs root"
[ "${FERRY_IN_NS:-}" = 1 ] || q_skip "unshare not available for a private mount namespace"
export MTOOLS_SKIP_CHECK=1

MB=640 ESP_OFF=$((1 << 20)) ESP_MB=64 XFS_OFF=$((65 << 20)) XFS_MB=560
cleanup() {
	[ -n "${writer:-}" ] && kill "$writer" 2>/dev/null
	for m in "$Q_TMP"/m*; do
		[ -d "$m" ] || continue
		fsfreeze -u "$m" 2>/dev/null || true
		umount "$m" 2>/dev/null || true
	done
	for img in "$Q_TMP"/*.img; do
		for l in $(losetup -j "$img" -O NAME -n 2>/dev/null); do losetup -d "$l" 2>/dev/null || true; done
	done
}
# Keep the case's exit status for _q_exit (cleanup's own would hide a failure).
trap 'rc=$?; cleanup; (exit $rc); _q_exit' EXIT

loop_at() { # IMG OFF MB [-r]: prints the loop device
	local l
	losetup -f --show ${4:-} -o "$2" --sizelimit $(($3 << 20)) "$1" || q_skip "no loop device"
}

# The source: GPT, ESP FAT32, XFS with files, some deleted.
src=$Q_TMP/src.img
truncate -s ${MB}M "$src"
sfdisk -q "$src" <<EOT
label: gpt
start=2048, size=$((ESP_MB * 2048)), type=uefi
start=$((XFS_OFF / 512)), size=$((XFS_MB * 2048)), type=linux
EOT
mkfs.vfat -F 32 -s 1 -n ESP --offset=$((ESP_OFF / 512)) "$src" $((ESP_MB * 1024)) >/dev/null 2>&1 ||
	q_fail "mkfs.vfat"
esp="$src@@$ESP_OFF"
head -c 700000 /dev/urandom >"$Q_TMP/bootx64.efi"
head -c 2000000 /dev/urandom >"$Q_TMP/gone.efi"
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i "$esp" "$Q_TMP/bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$Q_TMP/gone.efi" ::/EFI/debian/old.efi
echo "configfile \$prefix/grub.cfg" >"$Q_TMP/grub.cfg"
mcopy -i "$esp" "$Q_TMP/grub.cfg" ::/EFI/debian/grub.cfg
mdel -i "$esp" ::/EFI/debian/old.efi

xl=$(loop_at "$src" $XFS_OFF $XFS_MB)
mkfs.xfs -q -f "$xl" || q_fail "mkfs.xfs"
mkdir -p "$Q_TMP/ms"
mount "$xl" "$Q_TMP/ms" || q_fail "mount the source XFS"
h_files "$Q_TMP/ms" 150 50
head -c $((100 << 20)) /dev/urandom >"$Q_TMP/ms/deleted.bin"
sync
rm "$Q_TMP/ms/deleted.bin"
umount "$Q_TMP/ms"
losetup -d "$xl"

# Old garbage on the destinations: free space must not matter.
mkdst() {
	truncate -s ${MB}M "$1"
	head -c 32M /dev/urandom | dd of="$1" conv=notrunc status=none
	head -c 32M /dev/urandom | dd of="$1" bs=1M seek=300 conv=notrunc status=none
}

# Every file of both XFS partitions equal; the destination's xfs_repair -n
# clean. With REPLAY the destination is mounted once first: a copy of a
# frozen XFS has a covered log without an unmount record, which mount
# replays (a no-op) and xfs_repair -n would refuse, as after a crash.
same_xfs() { # SRC DST WHAT [REPLAY]
	local a b
	if [ -n "${4:-}" ]; then
		b=$(loop_at "$2" $XFS_OFF $XFS_MB)
		mkdir -p "$Q_TMP/mr"
		mount -o nouuid "$b" "$Q_TMP/mr" || q_fail "$3: the destination XFS does not mount"
		umount "$Q_TMP/mr"
		losetup -d "$b"
	fi
	a=$(loop_at "$1" $XFS_OFF $XFS_MB -r)
	b=$(loop_at "$2" $XFS_OFF $XFS_MB -r)
	xfs_repair -n "$b" >"$Q_TMP/repair.log" 2>&1 || q_fail "$3: xfs_repair -n: $(tail -n 5 "$Q_TMP/repair.log")"
	mkdir -p "$Q_TMP/ma" "$Q_TMP/mb"
	mount -o ro,nouuid "$a" "$Q_TMP/ma" || q_fail "$3: mount the source XFS"
	mount -o ro,nouuid "$b" "$Q_TMP/mb" || q_fail "$3: mount the destination XFS"
	diff -r --no-dereference "$Q_TMP/ma" "$Q_TMP/mb" >"$Q_TMP/diff.log" 2>&1 ||
		q_fail "$3: XFS files differ: $(head -n 5 "$Q_TMP/diff.log")"
	n=$(find "$Q_TMP/mb" -type f | wc -l)
	[ "$n" -gt 10 ] || q_fail "$3: only $n files on the destination XFS"
	umount "$Q_TMP/ma" "$Q_TMP/mb"
	losetup -d "$a" "$b"
}

same_esp() { # SRC DST WHAT
	rm -rf "$Q_TMP/ea" "$Q_TMP/eb"
	mkdir -p "$Q_TMP/ea" "$Q_TMP/eb"
	mcopy -s -n -i "$1@@$ESP_OFF" ::/ "$Q_TMP/ea/" && mcopy -s -n -i "$2@@$ESP_OFF" ::/ "$Q_TMP/eb/" ||
		q_fail "$3: mcopy out of the ESP"
	diff -r "$Q_TMP/ea" "$Q_TMP/eb" >/dev/null || q_fail "$3: the ESP's files differ"
	cmp -s "$Q_TMP/eb/EFI/BOOT/BOOTX64.EFI" "$Q_TMP/bootx64.efi" || q_fail "$3: BOOTX64.EFI differs"
	h_extract "$2" $ESP_OFF $((ESP_MB << 20)) "$Q_TMP/esp.dst"
	fsck.vfat -n "$Q_TMP/esp.dst" >"$Q_TMP/fsckv.log" 2>&1 || q_fail "$3: fsck.vfat -n: $(tail -n 5 "$Q_TMP/fsckv.log")"
}

# A. Unmounted.
dst=$Q_TMP/dst.img
mkdst "$dst"
"$FERRY" check --disk "$src" >"$Q_TMP/check.txt" 2>&1 || true
grep -q "1 vfat .*(used blocks), 2 xfs .*(used blocks)" "$Q_TMP/check.txt" ||
	q_fail "check does not map both by used blocks: $(grep -i disk "$Q_TMP/check.txt")"
h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --json \
	>"$Q_TMP/a.json" 2>"$Q_TMP/a.err" || q_fail "A: migrate exited $?: $(tail -n 5 "$Q_TMP/a.err")"
h_wait_serve || q_fail "A: the receiver exited $?: $(tail -n 5 "$H_LOG")"
same_xfs "$src" "$dst" A
same_esp "$src" "$dst" A

# Used: XFS blocks minus free extents (xfs_db), the ESP minus its free clusters (minfo).
xl=$(loop_at "$src" $XFS_OFF $XFS_MB -r)
bs=$(xfs_db -r -c "sb 0" -c "p blocksize" "$xl" | sed 's/.*= //')
db=$(xfs_db -r -c "sb 0" -c "p dblocks" "$xl" | sed 's/.*= //')
fr=$(xfs_db -r -c "freesp -s" "$xl" | sed -n 's/.*total free blocks \([0-9]*\).*/\1/p')
losetup -d "$xl"
[ -n "$fr" ] || q_fail "xfs_db freesp -s gave no total"
xused=$(((db - fr) * bs))
efree=$(minfo -i "$esp" :: | sed -n 's/^free clusters=\([0-9]*\).*/\1/p')
eused=$(((ESP_MB << 20) - efree * 512))
sent=$(h_json_field "$Q_TMP/a.json" summary bytes_sent)
limit=$(python3 -c "print(int(1.02 * ($xused + $eused)) + (2 << 20))")
[ "$sent" -ge $((150 << 20)) ] || q_fail "A: sent $sent bytes, less than the 150 MiB of files"
[ "$sent" -le "$limit" ] ||
	q_fail "A: sent $sent bytes, more than 1.02 x (XFS $xused + ESP $eused used) + 2 MiB = $limit"
echo "A: sent $sent bytes for XFS $xused + ESP $eused used (limit $limit); 100 MiB deleted not sent"

# B. Mounted and written; frozen for the last pass.
dst2=$Q_TMP/dst2.img
mkdst "$dst2"
xl=$(loop_at "$src" $XFS_OFF $XFS_MB)
mount "$xl" "$Q_TMP/ms" || q_fail "B: mount the source XFS"
"$FERRY" check --disk "$src" >"$Q_TMP/check2.txt" 2>&1 || true
grep -q "2 xfs .*(used blocks (mounted: GETFSMAP))" "$Q_TMP/check2.txt" ||
	q_fail "B: a mounted XFS is not mapped by GETFSMAP: $(grep -i disk "$Q_TMP/check2.txt")"
python3 - "$Q_TMP/ms" <<'PY' &
import os, sys, time
d = sys.argv[1]
os.makedirs(os.path.join(d, "live"), exist_ok=True)
i = 0
while True:
    with open(os.path.join(d, "live", "w%05d.bin" % i), "wb") as f:
        f.write(os.urandom((64 + i % 7 * 100) << 10))
        f.flush()
        os.fsync(f.fileno())
    if i % 10 == 9:
        os.unlink(os.path.join(d, "live", "w%05d.bin" % (i - 5)))
    i += 1
    time.sleep(0.01)
PY
writer=$!
sleep 1
wait_event() { # FILE REGEX SECONDS
	for _ in $(seq 1 $(($3 * 10))); do
		grep -q -E "$2" "$1" && return 0
		sleep 0.1
	done
	q_fail "no /$2/ in $1 after $3 s: $(tail -n 3 "$1")"
}
H_ONCE=0 h_serve "vda=$dst2"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --sync-interval 1s \
	--state-dir "$Q_TMP/st" --json >"$Q_TMP/b.json" 2>"$Q_TMP/b.err" &
agent=$!
wait_event "$Q_TMP/b.json" '"event":"done"' 120
wait_event "$Q_TMP/b.json" '"event":"pass","[^}]*"changed":[1-9]' 60
kill "$writer"
wait "$writer" 2>/dev/null || true
writer=
nlive=$(find "$Q_TMP/ms/live" -type f | wc -l)
fsfreeze -f "$Q_TMP/ms" || q_fail "B: fsfreeze"
npass=$(grep -c '"event":"pass"' "$Q_TMP/b.json")
for _ in $(seq 1 300); do
	[ "$(grep -c '"event":"pass"' "$Q_TMP/b.json")" -ge $((npass + 2)) ] && break
	sleep 0.1
done
kill -USR1 "$agent"
wait "$agent" || q_fail "B: migrate failed after the cutover: $(tail -n 3 "$Q_TMP/b.err")"
h_wait_serve || true
fsfreeze -u "$Q_TMP/ms"
umount "$Q_TMP/ms"
losetup -d "$xl"
same_xfs "$src" "$dst2" B replay
same_esp "$src" "$dst2" B
passes=$(grep -c '"event":"pass"' "$Q_TMP/b.json")
echo "ok: A within the wire bound; B: $passes passes while written (GETFSMAP), $nlive live files, frozen last pass: identical and xfs_repair-clean"
