#!/bin/bash
# A bootable system laid out as the RHEL/CentOS/Rocky installer lays one
# out (scripts/fixture-xfslvm.sh: Debian 12's kernel and userland on MBR,
# /boot on XFS, an LVM PV with VG "rhel" holding an XFS root LV and a swap
# LV, free extents left, GRUB in the MBR, an initramfs that activates the
# VG), migrated in host mode and booted.
#  1. The fixture boots by itself on virtio (a throw-away snapshot): its
#     root is /dev/mapper/rhel-root, XFS, /boot is XFS, the swap LV is on.
#  2. `ferry check` names the VG, each LV with its filesystem (root xfs,
#     swap) and /boot's XFS, each by its used blocks.
#  3. Migrated (ferry-init serve on 127.0.0.1, a file-backed destination):
#     what is sent is what the filesystems use plus the LVM metadata and
#     the first MiB (<= 1.02 x that + 4 MiB), far below the disk's size;
#     LVM reads the destination's VG back (vgck), and xfs_repair -n is
#     clean on /boot and on the root LV (a loop device at its extents).
#  4. The destination boots through its own GRUB with the same root:
#     /dev/mapper/rhel-root, XFS, the swap LV on.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY" "$FERRY_INIT" "$QEMU" sfdisk pvs lvs vgck xfs_repair xfs_db losetup python3
[ "$(id -u)" = 0 ] || q_skip "the fixture is built with loop devices and a chroot: needs root"
export LVM_SUPPRESS_FD_WARNINGS=1
loops=""
cleanup_loops() {
	for l in $loops; do losetup -d "$l" 2>/dev/null || true; done
	loops=""
}
trap 'rc=$?; cleanup_loops; (exit $rc); _q_exit' EXIT

t0=$(q_now)
fixture=$("$Q_TOP/scripts/fixture-xfslvm.sh") || q_fail "the XFS-on-LVM fixture could not be built"
q_log "fixture $(basename "$fixture") ready in $(q_elapsed "$t0") s"

# marker LOG: the marker's own serial port, carriage returns cut.
marker() { tr -d '\r' <"$1" >"$Q_TMP/marker"; }
m() { cat "$Q_TMP/marker"; }
booted() { # LOG WHAT: the marker says root is the XFS root LV
	marker "$1"
	grep -q '^FERRY-MARKER booted .* root=/dev/mapper/rhel-root roottype=xfs$' "$Q_TMP/marker" ||
		q_fail "$2: root is not /dev/mapper/rhel-root on XFS: $(m)"
	grep -q '^FERRY-MARKER boot=/dev/vda1 boottype=xfs$' "$Q_TMP/marker" ||
		q_fail "$2: /boot is not /dev/vda1 on XFS: $(m)"
	grep -q '^FERRY-MARKER swap /dev/dm-' "$Q_TMP/marker" || q_fail "$2: the swap LV is not on: $(m)"
	grep -q '^FERRY-MARKER lv rhel root -wi-ao' "$Q_TMP/marker" ||
		q_fail "$2: lvs does not show rhel/root active and open: $(m)"
}

# 1. The fixture by itself.
t1=$(q_now)
BOOT_MARKER='FERRY-MARKER end|reboot: Power down' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$fixture" bios -snapshot -serial "file:$Q_TMP/marker-src.log" ||
	grep -q '^FERRY-MARKER end' "$Q_TMP/marker-src.log" ||
	q_fail "the fixture did not boot on virtio"
booted "$Q_TMP/marker-src.log" "the fixture"
q_log "the fixture boots (GRUB, XFS /boot, LVM root) in $(q_elapsed "$t1") s"

# 2. The plan.
"$FERRY" check --disk "$fixture" >"$Q_TMP/check.txt" 2>&1 || true
ck() { cat "$Q_TMP/check.txt"; }
grep -q "^PASS  $fixture: .*MBR: 1 xfs .*(used blocks), 2 LVM2_member .*, 2 LVs; a migration sends" \
	"$Q_TMP/check.txt" || q_fail "the check's disk line: $(ck)"
grep -q "^PASS  $fixture: LV rhel/root xfs 1.8 GiB (used blocks, sends" "$Q_TMP/check.txt" ||
	q_fail "the check does not send the root LV by XFS's used blocks: $(ck)"
grep -q "^PASS  $fixture: LV rhel/swap swap 128.0 MiB (" "$Q_TMP/check.txt" ||
	q_fail "the check does not name the swap LV: $(ck)"

# 3. The migration.
dst=$Q_TMP/dst.img
truncate -s "$(stat -c %s "$fixture")" "$dst"
t1=$(q_now)
h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$fixture=vda" --ignore-check \
	--handoff poweroff --json >"$Q_TMP/ev.json" 2>"$Q_TMP/agent.err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/agent.err")"
h_wait_serve || q_fail "the receiver exited $?: $(tail -n 5 "$H_LOG")"
mig_secs=$(q_elapsed "$t1")

# Each LV's place on a disk, from LVM itself: "OFFSET BYTES".
lv_range() { # IMG LV
	local p2 p2s l pe
	p2=$(h_part_off "$1" 2) p2s=$(h_part_size "$1" 2)
	l=$(losetup -f --show -r -o "$p2" --sizelimit "$p2s" "$1")
	loops="$loops $l"
	vgck --devices "$l" rhel >/dev/null 2>&1 || q_fail "vgck on $(basename "$1") failed"
	pe=$(pvs --devices "$l" --noheadings --units b --nosuffix -o pe_start "$l" 2>/dev/null | tr -d ' ')
	lvs --devices "$l" --noheadings --units b --nosuffix --separator ' ' \
		-o seg_pe_ranges,seg_size_pe,vg_extent_size "rhel/$2" 2>/dev/null |
		awk -v pv="$p2" -v pe="$pe" '{ n = split($1, r, ":"); split(r[n], a, "-")
			printf "%d %d\n", pv + pe + a[1] * $3, $2 * $3 }'
	cleanup_loops
}
root_src=$(lv_range "$fixture" root)
root_dst=$(lv_range "$dst" root)
[ -n "$root_dst" ] && [ "$root_src" = "$root_dst" ] ||
	q_fail "the root LV: '$root_src' on the source, '$root_dst' on the destination"
read -r roff rlen <<<"$root_dst"
# xfs_used DEV: bytes XFS does not count free (its log included).
xfs_used() {
	xfs_db -r -c "sb 0" -c "p dblocks fdblocks blocksize" "$1" |
		awk '{v[$1] = $3} END {printf "%d\n", (v["dblocks"] - v["fdblocks"]) * v["blocksize"]}'
}
for side in src dst; do
	img=$fixture
	[ "$side" = dst ] && img=$dst
	l=$(losetup -f --show -r -o "$roff" --sizelimit "$rlen" "$img")
	b=$(losetup -f --show -r -o "$(h_part_off "$img" 1)" --sizelimit "$(h_part_size "$img" 1)" "$img")
	loops="$l $b"
	if [ "$side" = dst ]; then
		xfs_repair -n "$l" >"$Q_TMP/repair.root" 2>&1 ||
			q_fail "xfs_repair -n on the destination's root LV: $(tail -n 5 "$Q_TMP/repair.root")"
		xfs_repair -n "$b" >"$Q_TMP/repair.boot" 2>&1 ||
			q_fail "xfs_repair -n on the destination's /boot: $(tail -n 5 "$Q_TMP/repair.boot")"
	else
		used=$(($(xfs_used "$l") + $(xfs_used "$b")))
	fi
	cleanup_loops
done
disk=$(stat -c %s "$fixture")
# The first MiB (MBR, GRUB's core.img), the PV's label and metadata area
# (its first MiB), the swap LV's header: 2 MiB at most.
used=$((used + (2 << 20)))
read_b=$(h_json_field "$Q_TMP/ev.json" summary bytes_read)
sent=$(h_json_field "$Q_TMP/ev.json" summary bytes_sent)
for what in read:"$read_b" sent:"$sent"; do
	n=${what#*:}
	[ -n "$n" ] && [ "$n" -le $((used * 102 / 100 + (4 << 20))) ] ||
		q_fail "${what%%:*} ${n:-?} bytes, more than 1.02 x $used used + 4 MiB"
done
[ "$sent" -gt $((used / 2)) ] || q_fail "sent $sent bytes, less than half of the $used in use"
q_log "migrated in $mig_secs s: read $read_b, sent $sent bytes for $used in use on a $disk-byte disk ($((sent * 100 / disk)) %)"

# 4. The destination, through its own GRUB.
t1=$(q_now)
BOOT_MARKER='FERRY-MARKER end|reboot: Power down' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$dst" bios -serial "file:$Q_TMP/marker-dst.log" ||
	grep -q '^FERRY-MARKER end' "$Q_TMP/marker-dst.log" ||
	q_fail "the destination did not boot"
booted "$Q_TMP/marker-dst.log" "the destination"
echo "ok: XFS on LVM (RHEL layout) migrated in $mig_secs s, $((sent >> 20)) MiB sent of a $((disk >> 20)) MiB disk, booted in $(q_elapsed "$t1") s; total $(q_elapsed "$t0") s"
