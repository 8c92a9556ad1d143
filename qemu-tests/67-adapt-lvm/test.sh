#!/bin/bash
# The adapt phase on an LVM root, for real: the RHEL-like layout of
# scripts/fixture-xfslvm.sh (XFS /boot on vda1, PV on vda2 with VG "rhel":
# root XFS + swap; Debian's kernel, initramfs-tools with the lvm2 hook,
# fstab naming /dev/mapper/rhel-root), its initramfs rebuilt here with
# MODULES=list and no virtio (as a system installed on SATA has it).
#  1. The derived disk's initramfs lacks virtio_blk and has lvm
#     (lsinitramfs in its own chroot).
#  2. Host mode (ferry-init serve, a file-backed disk, `ferry adapt
#     --dry-run`): the root LV is opened through a loop device at
#     its extents, and the report says the tools would see a loop device.
#  3. The live environment boots with ferry.mode=adapt on that disk: the
#     root LV is activated as /dev/mapper/rhel-root (dm-linear over vda2,
#     the kernel's slaves link checked), update-initramfs runs in the
#     chroot and the new initramfs has virtio_blk; verdict ready.
#  4. The adapted disk boots on virtio through its own GRUB: root is
#     /dev/mapper/rhel-root on XFS, virtio_blk loaded, LVM sees rhel/root.
# Without adapt's LVM support step 2 and 3 find no root and fail.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY" "$FERRY_INIT" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" \
	sfdisk losetup unshare chroot python3
[ "$(id -u)" = 0 ] || q_skip "the fixture is rebuilt with loop devices and a chroot: needs root"
[ -e /dev/loop-control ] || q_skip "no loop devices here"

t0=$(q_now)
fixture=$("$Q_TOP/scripts/fixture-xfslvm.sh") || q_fail "the XFS-on-LVM fixture could not be built"
q_log "fixture $(basename "$fixture") ready in $(q_elapsed "$t0") s"
read -r roff rlen < <(sed -n 's/^root LV at \([0-9]*\) \([0-9]*\) .*/\1 \2/p' "$fixture.info")
[ -n "$rlen" ] || q_fail "no root LV range in $fixture.info"
dst=$Q_TMP/dst.img
cp --sparse=always "$fixture" "$dst"

# 1. The initramfs without virtio: MODULES=list with the drivers of a
# SATA machine, built by the system's own update-initramfs in a chroot
# (root LV through a loop device at its extents: this host has no
# device-mapper). The mounts live in a private namespace (XFS, see
# scripts/fixture-xfslvm.sh).
t1=$(q_now)
boff=$(h_part_off "$dst" 1) bsize=$(h_part_size "$dst" 1)
DST=$dst ROFF=$roff RLEN=$rlen BOFF=$boff BSIZE=$bsize MNT=$Q_TMP/mnt \
	unshare -m --propagation private bash -eu >"$Q_TMP/derive.log" 2>&1 <<-'EOF' ||
	loops=
	trap 'for m in dev/pts dev proc sys boot ""; do umount "$MNT/$m" 2>/dev/null || true; done
		for l in $loops; do losetup -d "$l" 2>/dev/null || true; done' EXIT
	r=$(losetup -f --show -o "$ROFF" --sizelimit "$RLEN" "$DST"); loops="$r"
	b=$(losetup -f --show -o "$BOFF" --sizelimit "$BSIZE" "$DST"); loops="$loops $b"
	mkdir -p "$MNT"
	mount "$r" "$MNT"
	mount "$b" "$MNT/boot"
	mount --bind /dev "$MNT/dev"
	mount --bind /dev/pts "$MNT/dev/pts"
	mount -t proc proc "$MNT/proc"
	mount -t sysfs sys "$MNT/sys"
	sed -i 's/^MODULES=.*/MODULES=list/' "$MNT/etc/initramfs-tools/initramfs.conf"
	printf '%s\n' ata_piix ahci sd_mod xfs dm_mod >>"$MNT/etc/initramfs-tools/modules"
	chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C \
		update-initramfs -u -k all
	kver=$(ls "$MNT/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
	echo "kver $kver"
	chroot "$MNT" lsinitramfs "/boot/initrd.img-$kver" >"$MNT/../initrd.list"
	EOF
	q_fail "the initramfs without virtio could not be built: $(tail -n 5 "$Q_TMP/derive.log")"
kver=$(sed -n 's/^kver //p' "$Q_TMP/derive.log")
grep -q '/ata_piix.ko' "$Q_TMP/initrd.list" || q_fail "the listing is wrong: no ata_piix.ko in the derived initramfs"
grep -q 'virtio_blk.ko' "$Q_TMP/initrd.list" && q_fail "the derived initramfs has virtio_blk"
grep -q '/sbin/lvm$' "$Q_TMP/initrd.list" || q_fail "the derived initramfs has no lvm"
q_log "initramfs $kver without virtio built in $(q_elapsed "$t1") s"

# 2. Host mode, dry run: the LV through a loop device.
token=$("$FERRY" token)
: >"$Q_TMP/r.result"
"$FERRY_INIT" serve --listen 127.0.0.1:0 --token "$token" --once --result "$Q_TMP/r.result" \
	--disk "vda=$dst" >"$Q_TMP/r.log" 2>&1 &
rpid=$!
Q_PIDS+=("$rpid")
port=
for _ in $(seq 1 100); do
	port=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$Q_TMP/r.result")
	[ -n "$port" ] && break
	sleep 0.05
done
[ -n "$port" ] || q_fail "the receiver did not start: $(tail -n 3 "$Q_TMP/r.log")"
sum=$(sha256sum <"$dst")
q_ferry adapt --to "127.0.0.1:$port" --token "$token" --handoff poweroff --dry-run \
	>"$Q_TMP/host.out" 2>&1 || q_fail "ferry adapt --dry-run exited $?: $(tail -n 5 "$Q_TMP/host.out")"
wait "$rpid" || true
hres() { grep -E 'PASS|WARN|FAIL' "$Q_TMP/host.out" | cut -c1-200; }
for want in 'adapt (dry run): LVM: LV rhel/root (xfs, 1.8 GiB) opened as a loop device at its extents on vda2 (host mode, no device-mapper): the system.s tools see a loop device, not LVM' \
	"adapt (dry run): kernel $kver: would regenerate /boot/initrd.img-$kver with update-initramfs"; do
	grep -q -- "$want" "$Q_TMP/host.out" || q_fail "host mode: no /$want/: $(hres)"
done
grep -q 'FAIL.*adapt (dry run)' "$Q_TMP/host.out" && q_fail "host mode: a FAIL: $(hres)"
[ "$(sha256sum <"$dst")" = "$sum" ] || q_fail "the dry run changed the disk"

# 3. ferry.mode=adapt in the live environment, on that disk.
t1=$(q_now)
Q_VM_TIMEOUT=1800 q_boot kernel --disk-file "$dst" --mem 1024 \
	--append "ferry.mode=adapt ferry.handoff=poweroff"
q_wait_log "$Q_RESULT" '^FERRY RESULT adapt verdict=' 1700 >/dev/null ||
	q_fail "no adapt result from the live environment"
adapt_secs=$(q_elapsed "$t1")
for _ in $(seq 1 150); do q_alive || break; sleep 0.2; done
grep -a '^FERRY ADAPT ' "$Q_RESULT" | tr -d '\r' >"$Q_TMP/adapt.lines"
res() { cut -c1-220 "$Q_TMP/adapt.lines"; }
grep -aq '^FERRY RESULT adapt verdict=ready\|^FERRY RESULT adapt verdict=warnings' "$Q_RESULT" ||
	q_fail "the adapted system is not ready: $(grep FAIL "$Q_TMP/adapt.lines" | cut -c1-300)"
grep -q 'FAIL adapt' "$Q_TMP/adapt.lines" && q_fail "adapt FAILed: $(res)"
for want in 'PASS adapt: LVM: LV rhel/root (xfs, 1.8 GiB) activated as /dev/mapper/rhel-root (dm-' \
	'dm-linear over vda2, 1 segment; slaves vda2)' \
	'PASS adapt: LVM: LV rhel/swap (swap, 128.0 MiB) activated as /dev/mapper/rhel-swap' \
	"PASS adapt: kernel $kver: initramfs /boot/initrd.img-$kver regenerated by update-initramfs" \
	'PASS adapt: /etc/initramfs-tools/modules: '; do
	grep -qF -- "$want" "$Q_TMP/adapt.lines" || q_fail "no /$want/ among the FERRY ADAPT lines:
$(res)"
done
grep -a 'removed' "$Q_SERIAL" | grep -q 'rhel-root (dm-' ||
	q_fail "the live environment did not remove rhel-root's device: $(grep -a 'adapt:' "$Q_SERIAL" | tail -n 5)"
q_log "adapted in the live environment in $adapt_secs s: $(grep -F 'regenerated by update-initramfs' "$Q_TMP/adapt.lines" | cut -c1-160)"

# 4. It boots on virtio through its own GRUB, root on the LV.
BOOT_MARKER='FERRY-MARKER end|reboot: Power down' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$dst" bios -serial "file:$Q_TMP/marker-new.log" ||
	grep -q '^FERRY-MARKER end' "$Q_TMP/marker-new.log" ||
	q_fail "the adapted disk did not boot on virtio: $(tail -n 20 "$BOOT_LOG" | tr -d '\r')"
tr -d '\r' <"$Q_TMP/marker-new.log" >"$Q_TMP/marker"
m() { cat "$Q_TMP/marker"; }
grep -q "^FERRY-MARKER booted kernel=$kver root=/dev/mapper/rhel-root roottype=xfs$" "$Q_TMP/marker" ||
	q_fail "root: $(m)"
grep -q '^FERRY-MARKER boot=/dev/vda1 boottype=xfs$' "$Q_TMP/marker" || q_fail "/boot: $(m)"
grep -q '^FERRY-MARKER module virtio_blk' "$Q_TMP/marker" || q_fail "virtio_blk not loaded: $(m)"
grep -q '^FERRY-MARKER lv rhel root -wi-ao' "$Q_TMP/marker" || q_fail "lvs does not show rhel/root open: $(m)"
echo "ok: XFS root on LVM (VG rhel) with an initramfs without virtio adapted in the live environment ($adapt_secs s, dm-linear, update-initramfs) and booted on virtio in ${BOOT_SECS:-?} s; total $(q_elapsed "$t0") s"
