#!/bin/bash
# Host mode: the layouts servers have. (1) A GPT disk whose partition 2 is
# an LVM PV (made by pvcreate/vgcreate/lvcreate without device-mapper:
# src/tests/fixtures/lvm-disk.sh): an XFS root LV in two pieces, a swap
# LV, an ext4 LV, a freed gap, a thin pool. (2) A GPT disk whose
# partition 1 is btrfs with a subvolume, a snapshot and deleted files.
# Each migrated into a destination full of garbage: LVM reads the
# destination's VG back, every LV and file is identical, xfs_repair -n,
# e2fsck -fn and btrfs check clean, the swap UUID kept, and what is read
# and sent stays within 1.02 x what the filesystems use plus their
# metadata (free extents and deleted files are not sent). With --grow
# into a larger disk the PV takes the new space and its LVs stay as they
# were (pvs, vgck, segments).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk pvcreate lvs mkfs.xfs xfs_repair xfs_db mkfs.btrfs btrfs \
	e2fsck dumpe2fs debugfs blkid losetup python3
[ "$(id -u)" = 0 ] || q_skip "needs root (loop devices, mounts)"
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || q_skip "no btrfs in this kernel"
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null || q_skip "no XFS in this kernel"
export LVM_SUPPRESS_FD_WARNINGS=1
fix=$Q_TOP/src/tests/fixtures/lvm-disk.sh
loops=""
mnts=""
cleanup_fs() {
	for m in $mnts; do umount "$m" 2>/dev/null || true; done
	for l in $loops; do losetup -d "$l" 2>/dev/null || true; done
}
trap 'rc=$?; cleanup_fs; (exit $rc); _q_exit' EXIT

# garbage IMG MB: the destination, holding old data everywhere.
garbage() {
	python3 -c 'import sys; sys.stdout.buffer.write(bytes([0xa5]) * (1 << 20) * int(sys.argv[1]))' \
		"$2" >"$1"
}

# migrate SRC DST: one migration; its NDJSON in $Q_TMP/ev.$(basename SRC).json.
migrate() {
	local ev=$Q_TMP/ev.$(basename "$1").json
	h_serve "vda=$2"
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$1=vda" \
		--json >"$ev" 2>"$Q_TMP/agent.err" ||
		q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/agent.err")"
	h_wait_serve || q_fail "the receiver exited $?: $(tail -n 5 "$H_LOG")"
}

# ext_used IMG: bytes ext2/3/4 uses.
ext_used() {
	dumpe2fs -h "$1" 2>/dev/null | awk -F: '
		/^Block count/ {c = $2} /^Free blocks/ {f = $2} /^Block size/ {b = $2}
		END {print (c - f) * b}'
}

# within NAME BYTES USED: BYTES <= 1.02 x USED + 4 MiB.
within() {
	[ "$2" -le $(($3 * 102 / 100 + (4 << 20))) ] ||
		q_fail "$1: $2 bytes, more than 1.02 x $3 used + 4 MiB"
	q_log "$1: $2 bytes for $3 used"
}

# ---- (1) LVM ----------------------------------------------------------
src=$Q_TMP/lvm.img dst=$Q_TMP/lvm.dst
"$fix" make "$src" >"$Q_TMP/fixture.log" 2>&1 || q_fail "the LVM fixture: $(tail -n 5 "$Q_TMP/fixture.log")"
"$FERRY" check --disk "$src" >"$Q_TMP/check.txt" 2>&1 || true
grep -q "LV vgt/root xfs" "$Q_TMP/check.txt" || q_fail "the plan does not name root: $(cat "$Q_TMP/check.txt")"
grep -q "LV vgt/pool .*thin-pool" "$Q_TMP/check.txt" || q_fail "the plan does not say the thin pool is sent whole"
garbage "$dst" 800
migrate "$src" "$dst"
# The JSON plan lists the same: every LV with its VG, filesystem and bytes.
python3 - "$Q_TMP/ev.$(basename "$src").json" >"$Q_TMP/plan-lvs.txt" 2>&1 <<'PY' || q_fail "the JSON plan: $(cat "$Q_TMP/plan-lvs.txt")"
import json, sys
plan = [e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "plan"]
assert len(plan) == 1, "%d plan events" % len(plan)
lvs = {l["vg"] + "/" + l["name"]: l for l in plan[0]["lvs"]}
for n in ("vgt/root", "vgt/data", "vgt/swap", "vgt/pool"):
    assert n in lvs, "no %s in %s" % (n, sorted(lvs))
assert lvs["vgt/root"]["fstype"] == "xfs", lvs["vgt/root"]
assert 0 < lvs["vgt/data"]["send"] < lvs["vgt/data"]["size"], lvs["vgt/data"]
assert "whole" in lvs["vgt/pool"]["method"] or "thin" in lvs["vgt/pool"]["note"], lvs["vgt/pool"]
assert [p["number"] for p in plan[0]["parts"]] == [1, 2], plan[0]["parts"]
print(" ".join("%s:%s:%d" % (n, l["fstype"] or "-", l["send"]) for n, l in sorted(lvs.items())))
PY
q_log "JSON plan LVs: $(cat "$Q_TMP/plan-lvs.txt")"

# LVM itself reads the destination's PV and VG.
p2=$(h_part_off "$dst" 2) p2s=$(h_part_size "$dst" 2)
l=$(losetup -f --show -o "$p2" --sizelimit "$p2s" --read-only "$dst")
loops="$loops $l"
lvs --devices "$l" --noheadings -o lv_name vgt 2>/dev/null | tr -d ' ' | sort >"$Q_TMP/lvs.dst"
for lv in data pool root swap thin1; do
	grep -qx "$lv" "$Q_TMP/lvs.dst" || q_fail "lvs on the destination does not list $lv: $(cat "$Q_TMP/lvs.dst")"
done
vgck --devices "$l" vgt >/dev/null 2>&1 || q_fail "vgck on the destination failed"
losetup -d "$l"
loops=""

# Partition 1, and each LV taken out of both disks by its extents.
h_extract "$src" "$(h_part_off "$src" 1)" "$(h_part_size "$src" 1)" "$Q_TMP/s.boot"
h_extract "$dst" "$(h_part_off "$dst" 1)" "$(h_part_size "$dst" 1)" "$Q_TMP/d.boot"
h_fsck "$Q_TMP/d.boot"
h_same_files "$Q_TMP/s.boot" "$Q_TMP/d.boot"
for lv in data root swap; do
	"$fix" get "$src" $lv "$Q_TMP/s.$lv"
	MAN=$src.lvm "$fix" get "$dst" $lv "$Q_TMP/d.$lv"
done
h_fsck "$Q_TMP/d.data"
h_same_files "$Q_TMP/s.data" "$Q_TMP/d.data"
xfs_repair -n -f "$Q_TMP/d.root" >"$Q_TMP/xfs.log" 2>&1 || q_fail "xfs_repair -n: $(tail -n 5 "$Q_TMP/xfs.log")"
mkdir -p "$Q_TMP/a" "$Q_TMP/b"
mount -o loop,ro,nouuid "$Q_TMP/s.root" "$Q_TMP/a" && mnts="$Q_TMP/a"
mount -o loop,ro,nouuid "$Q_TMP/d.root" "$Q_TMP/b" && mnts="$mnts $Q_TMP/b"
diff -r --no-dereference "$Q_TMP/a" "$Q_TMP/b" >/dev/null || q_fail "files differ in the root LV"
cleanup_fs
mnts=""
su=$(blkid -p -o value -s UUID "$Q_TMP/s.swap") du=$(blkid -p -o value -s UUID "$Q_TMP/d.swap")
[ -n "$su" ] && [ "$su" = "$du" ] || q_fail "swap LV UUID: source '$su', destination '$du'"

# What was read and sent: the filesystems' used blocks, the thin pool,
# the PV's header and metadata area; root whole only without an XFS reader.
ext=$((4 << 20))
pool=$(awk '$1 == "lv" && ($2 ~ /^pool_/ || $2 == "lvol0_pmspare") {s += $4} END {print s}' "$src.lvm")
used=$(($(ext_used "$Q_TMP/s.boot") + $(ext_used "$Q_TMP/s.data") + pool * ext + (2 << 20)))
if grep -q "LV vgt/root xfs [^)]*(sent whole" "$Q_TMP/check.txt"; then
	q_log "no XFS reader in this build: the root LV is sent whole"
	used=$((used + $(stat -c %s "$Q_TMP/s.root")))
else
	# Blocks not free, the internal log (sent: it is metadata) included.
	xfs_used=$(xfs_db -r -c "sb 0" -c "p dblocks fdblocks blocksize" "$Q_TMP/s.root" |
		awk '{v[$1] = $3} END {printf "%d\n", (v["dblocks"] - v["fdblocks"]) * v["blocksize"]}')
	used=$((used + xfs_used))
fi
read_b=$(h_json_field "$Q_TMP/ev.lvm.img.json" summary bytes_read)
sent=$(h_json_field "$Q_TMP/ev.lvm.img.json" summary bytes_sent)
within "LVM disk: read" "$read_b" "$used"
within "LVM disk: sent" "$sent" "$used"
rm -f "$Q_TMP"/s.* "$Q_TMP"/d.* "$dst"

# --grow into a larger disk: the last partition and its PV take the new
# space as free extents; the LVs stay as they were.
segs() { # DEVICE: the LVs' segments, device names left out
	local i
	for i in 1 2 3; do
		lvs --devices "$1" --noheadings --segments -o lv_name,seg_start_pe,seg_pe_ranges \
			vgt 2>"$Q_TMP/lvs.err" | sed 's#/dev/[^:]*:##' >"$Q_TMP/lvs.out" &&
			grep -q root "$Q_TMP/lvs.out" && cat "$Q_TMP/lvs.out" && return 0
		sleep 1
	done
	q_fail "lvs on $1 failed: $(grep -v WARNING "$Q_TMP/lvs.err" | tail -n 3)"
}
l=$(losetup -f --show -o "$p2" --sizelimit "$p2s" --read-only "$src")
loops="$l"
segs "$l" >"$Q_TMP/segs.src"
pe_src=$(pvs --devices "$l" --noheadings -o pv_pe_count "$l" 2>/dev/null | tr -d ' ')
losetup -d "$l"
loops=""
dst=$Q_TMP/lvm.big
garbage "$dst" 1024
h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" --grow \
	>"$Q_TMP/grow.out" 2>&1 || q_fail "ferry migrate --grow exited $?: $(tail -n 5 "$Q_TMP/grow.out")"
h_wait_serve || q_fail "the receiver exited $?: $(tail -n 5 "$H_LOG")"
grep -q "LVM PV (VG vgt) grown from $pe_src to" "$Q_TMP/grow.out" ||
	q_fail "the report does not say the PV grew: $(grep -i grow "$Q_TMP/grow.out")"
p2=$(h_part_off "$dst" 2) p2s=$(h_part_size "$dst" 2)
l=$(losetup -f --show -o "$p2" --sizelimit "$p2s" --read-only "$dst")
loops="$l"
pe_dst=$(pvs --devices "$l" --noheadings -o pv_pe_count "$l" 2>/dev/null | tr -d ' ')
[ "$pe_dst" -eq $(((p2s - (1 << 20)) / (4 << 20))) ] && [ "$pe_dst" -gt "$pe_src" ] ||
	q_fail "the PV has $pe_dst extents after --grow (before: $pe_src, partition $p2s bytes)"
vgck --devices "$l" vgt >/dev/null 2>&1 || q_fail "vgck after --grow failed"
segs "$l" >"$Q_TMP/segs.dst"
diff "$Q_TMP/segs.src" "$Q_TMP/segs.dst" >/dev/null ||
	q_fail "LV segments changed by --grow: $(diff "$Q_TMP/segs.src" "$Q_TMP/segs.dst")"
losetup -d "$l"
loops=""
MAN=$src.lvm "$fix" get "$dst" data "$Q_TMP/d.data"
h_fsck "$Q_TMP/d.data"
q_log "--grow: the PV went from $pe_src to $pe_dst extents, LVs untouched"
rm -f "$Q_TMP"/d.* "$dst"

# ---- (2) btrfs ----------------------------------------------------------
src=$Q_TMP/btrfs.img dst=$Q_TMP/btrfs.dst
rm -f "$src"
truncate -s 700M "$src"
sfdisk -q "$src" <<EOT
label: gpt
start=2048, size=600MiB, type=linux
EOT
off=$(h_part_off "$src" 1) size=$(h_part_size "$src" 1)
l=$(losetup -f --show -o "$off" --sizelimit "$size" "$src")
loops="$loops $l"
mkfs.btrfs -q -f "$l" >/dev/null
mount "$l" "$Q_TMP/a" && mnts="$Q_TMP/a"
h_files "$Q_TMP/a" 60 7
btrfs -q subvolume create "$Q_TMP/a/home"
h_files "$Q_TMP/a/home" 30 8
head -c 80M /dev/urandom >"$Q_TMP/a/deleted.bin"
sync
btrfs -q subvolume snapshot "$Q_TMP/a/home" "$Q_TMP/a/home.snap"
rm "$Q_TMP/a/deleted.bin" "$Q_TMP/a/home/data/f000.bin"
sync
btrfs filesystem df -b "$Q_TMP/a" >"$Q_TMP/bdf.txt"
cleanup_fs
mnts="" loops=""
# Physical bytes in use: data once, metadata and system twice (DUP).
used=$(awk -F'used=' '/^Data/ {d = $2} /^(Metadata|System)/ {m += $2}
	END {printf "%d\n", d + 2 * m + 1048576}' "$Q_TMP/bdf.txt")
garbage "$dst" 700
migrate "$src" "$dst"
h_extract "$src" "$off" "$size" "$Q_TMP/s.btrfs"
h_extract "$dst" "$off" "$size" "$Q_TMP/d.btrfs"
btrfs check --readonly "$Q_TMP/d.btrfs" >"$Q_TMP/bcheck.log" 2>&1 ||
	q_fail "btrfs check: $(tail -n 5 "$Q_TMP/bcheck.log")"
# One at a time: both carry the same fsid, and btrfs would take the second
# mount for the first filesystem.
tree() { # DIR: every entry's type, size and path; every file's md5
	(cd "$1" && find . -printf '%y %s %p\n' | grep -v '^d' | sort &&
		find . -type f -print0 | sort -z | xargs -0 md5sum)
}
for side in s d; do
	mount -o loop,ro "$Q_TMP/$side.btrfs" "$Q_TMP/a" || q_fail "mount $side.btrfs"
	mnts="$Q_TMP/a"
	tree "$Q_TMP/a" >"$Q_TMP/tree.$side"
	if [ "$side" = d ]; then
		[ -f "$Q_TMP/a/home.snap/data/f000.bin" ] && [ ! -e "$Q_TMP/a/home/data/f000.bin" ] ||
			q_fail "the snapshot or the deletion did not come across"
	fi
	cleanup_fs
	mnts=""
	btrfs device scan --forget >/dev/null 2>&1 || true
done
[ "$(wc -l <"$Q_TMP/tree.s")" -gt 20 ] || q_fail "the btrfs source tree is missing"
diff "$Q_TMP/tree.s" "$Q_TMP/tree.d" >/dev/null ||
	q_fail "files differ on btrfs: $(diff "$Q_TMP/tree.s" "$Q_TMP/tree.d" | head -n 5)"
read_b=$(h_json_field "$Q_TMP/ev.btrfs.img.json" summary bytes_read)
sent=$(h_json_field "$Q_TMP/ev.btrfs.img.json" summary bytes_sent)
within "btrfs disk: read" "$read_b" "$used"
within "btrfs disk: sent" "$sent" "$used"
[ "$sent" -gt $((90 << 20)) ] || q_fail "btrfs disk: sent $sent bytes, less than the files"
echo "ok: LVM and btrfs disks migrated by their used blocks"
