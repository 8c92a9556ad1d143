#!/bin/bash
# The adapt phase for real, in the live environment under QEMU, on a real
# Debian 12 (scripts/fixture-debian.sh) as it would come off Xen/VMware:
# Debian's own kernel, an initramfs built without virtio (MODULES=list),
# fstab, grub.cfg and RESUME naming /dev/sda1 and /dev/sda2, eth0 bound to
# the old NIC's MAC by a persistent-net rule with a static address, GRUB in
# the MBR for /dev/sda (debconf too).
#  1. The fixture boots on its old hardware (IDE disk, e1000 NIC): the
#     marker is reached (the fixture is sound).
#  2. Copied without --adapt (host mode, ferry-init serve): the readiness
#     report FAILs virtio_blk, and the copy does not boot on virtio: through
#     its own GRUB, its initramfs ends in "ALERT! /dev/sda1 does not
#     exist" (a throw-away snapshot: the disk is not changed).
#  3. The live environment boots with ferry.mode=adapt on that disk and
#     adapts it: update-initramfs, update-grub and grub-install run in the
#     chroot under the live kernel; every change is a FERRY ADAPT line.
#  4. The adapted disk boots on virtio only (virtio-blk, virtio-net): its
#     root is /dev/vda1, virtio_blk is loaded, the swap is on, and eth0
#     (the old name, now this NIC's) got 10.0.2.15 by DHCP.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY" "$FERRY_INIT" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" \
	sfdisk debugfs python3
[ "$(id -u)" = 0 ] || q_skip "the Debian fixture is built with a loop mount and chroot: needs root"

t0=$(q_now)
fixture=$("$Q_TOP/scripts/fixture-debian.sh") || q_fail "the Debian fixture could not be built"
q_log "fixture $(basename "$fixture") ready in $(q_elapsed "$t0") s"
off=$(h_part_off "$fixture" 1)

# 1. On its old hardware (and a throw-away overlay: the fixture stays).
qemu-img create -q -f qcow2 -b "$fixture" -F raw "$Q_TMP/old.qcow2"
t1=$(q_now)
timeout -k 5 400 "$QEMU" -accel tcg -cpu max -nodefaults -no-reboot -m 768 -display none \
	-serial "file:$Q_TMP/boot-old.serial.log" -serial "file:$Q_TMP/marker-old.log" \
	-drive "file=$Q_TMP/old.qcow2,if=ide,format=qcow2" \
	-netdev user,id=n0 -device e1000,netdev=n0,mac=52:54:00:0e:0e:01 \
	</dev/null >"$Q_TMP/boot-old.qemu.log" 2>&1 || true
# The marker's own serial port (ttyS1): nothing else writes there.
tr -d '\r' <"$Q_TMP/marker-old.log" >"$Q_TMP/marker"
m() { cat "$Q_TMP/marker"; }
grep -q '^FERRY-MARKER booted .*root=/dev/sda1' "$Q_TMP/marker" ||
	q_fail "the fixture did not boot on its old hardware (IDE, e1000): $(m)"
grep -q '^FERRY-MARKER ip eth0 192.168.50.10/24' "$Q_TMP/marker" ||
	q_fail "the fixture's eth0 (old NIC) did not get its static address: $(m)"
q_log "old hardware: booted in $(q_elapsed "$t1") s (IDE, e1000 as eth0, 192.168.50.10)"
rm -f "$Q_TMP/old.qcow2"

# 2. The copy, without --adapt.
dst=$Q_TMP/dst.img
truncate -s 3G "$dst"
h_serve "vda=$dst"
q_ferry migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$fixture=vda" --ignore-check \
	--handoff poweroff --state-dir "$Q_TMP/st" >"$Q_TMP/mig.out" 2>&1 ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/mig.out")"
h_wait_serve || true
grep -q 'FAIL  virtio_blk: a module in kernel .* not in initramfs' "$Q_TMP/mig.out" ||
	q_fail "the readiness report did not FAIL virtio_blk: $(grep -E 'PASS|WARN|FAIL' "$Q_TMP/mig.out")"
grep -q 'migrated, but the destination may not boot' "$Q_TMP/mig.out" || q_fail "no warning in the summary"

kver=$(debugfs -R "ls /boot" "$dst?offset=$off" 2>/dev/null | tr ' ' '\n' | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
[ -n "$kver" ] || q_fail "no kernel in the migrated /boot"
t1=$(q_now)
BOOT_MARKER='ALERT!  /dev/sda1 does not exist|FERRY-MARKER booted' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$dst" bios -snapshot || q_fail "the unadapted disk neither booted nor failed in 420 s"
line=$BOOT_LINE
case "$line" in
*ALERT*) q_log "without adapting, on virtio: \"${line//$'\r'/}\" after $(q_elapsed "$t1") s" ;;
*) q_fail "the unadapted system booted on virtio, or said nothing: ${line:-no line}" ;;
esac

# 3. ferry.mode=adapt in the live environment, on that disk.
sum_before=$(sha256sum <"$dst")
t1=$(q_now)
Q_VM_TIMEOUT=1500 q_boot kernel --disk-file "$dst" --mem 1024 \
	--append "ferry.mode=adapt ferry.handoff=poweroff"
q_wait_log "$Q_RESULT" '^FERRY RESULT adapt verdict=' 1400 >/dev/null ||
	q_fail "no adapt result from the live environment"
adapt_secs=$(q_elapsed "$t1")
for _ in $(seq 1 150); do q_alive || break; sleep 0.2; done
q_alive && q_fail "the live environment did not power off after adapting"
# Files, not pipes into grep -q: with pipefail an early exit is a failure.
grep -a '^FERRY ADAPT ' "$Q_RESULT" | tr -d '\r' >"$Q_TMP/adapt.lines"
res() { cat "$Q_TMP/adapt.lines"; }
grep -aq '^FERRY RESULT adapt verdict=ready\|^FERRY RESULT adapt verdict=warnings' "$Q_RESULT" ||
	q_fail "the adapted system is not ready: $(res | grep FAIL)"
grep -aq '^FERRY HANDOFF poweroff' "$Q_RESULT" || q_fail "no hand-off after a passing report"
for want in 'FAIL before adapting: virtio_blk' \
	'PASS adapt: /etc/fstab: fstab line 4 (/): /dev/sda1 -> UUID=' \
	'PASS adapt: /etc/udev/rules.d/70-persistent-net.rules: line 5: eth0 now names the new NIC 52:54:00:12:34:56' \
	'PASS adapt: /etc/network/interfaces: line 12: iface eth0 inet static -> dhcp' \
	"PASS adapt: kernel $kver: initramfs /boot/initrd.img-$kver regenerated by update-initramfs" \
	'PASS adapt: bootloader: /boot/grub/grub.cfg regenerated by update-grub' \
	'PASS adapt: bootloader: GRUB installed to /dev/vda by grub-install (it was installed for /dev/sda)' \
	'PASS adapt: debconf: grub-pc/install_devices is /dev/vda' \
	'PASS virtio_blk: module, in initramfs' \
	"PASS boot entry: root=UUID="; do
	grep -qF -- "$want" "$Q_TMP/adapt.lines" || q_fail "no /$want/ among the FERRY ADAPT lines:
$(res | cut -c1-200)"
done
[ "$(sha256sum <"$dst")" != "$sum_before" ] || q_fail "the disk did not change"
q_log "adapted in the live environment in $adapt_secs s ($(res | grep -c 'PASS adapt:') changes)"
for f in /etc/fstab /boot/grub/grub.cfg /etc/network/interfaces /etc/default/grub \
	/etc/initramfs-tools/modules "/boot/initrd.img-$kver" \
	/var/lib/ferry-adapt/orig/etc/udev/rules.d/70-persistent-net.rules \
	/var/lib/ferry-adapt/orig/etc/initramfs-tools/conf.d/resume; do
	o=$f.ferry-orig
	debugfs -R "stat $o" "$dst?offset=$off" >"$Q_TMP/f" 2>&1
	grep -q 'Inode:' "$Q_TMP/f" || q_fail "no $o kept"
done

e2fsck -fn "$dst?offset=$off" >"$Q_TMP/fsck.log" 2>&1 || q_fail "e2fsck -fn vda1: $(tail -n 5 "$Q_TMP/fsck.log")"

# 4. It boots on virtio alone, and its network comes up by DHCP.
BOOT_MARKER='FERRY-MARKER end|reboot: Power down' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$dst" bios -serial "file:$Q_TMP/marker-new.log" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 ||
	grep -q '^FERRY-MARKER end' "$Q_TMP/marker-new.log" ||
	q_fail "the adapted disk did not boot on virtio"
tr -d '\r' <"$Q_TMP/marker-new.log" >"$Q_TMP/marker"
grep -q "^FERRY-MARKER booted kernel=$kver root=/dev/vda1" "$Q_TMP/marker" || q_fail "root: $(m)"
grep -q '^FERRY-MARKER module virtio_blk' "$Q_TMP/marker" || q_fail "virtio_blk not loaded: $(m)"
grep -q '^FERRY-MARKER swap /dev/vda2' "$Q_TMP/marker" || q_fail "swap not on: $(m)"
grep -q '^FERRY-MARKER ip eth0 10.0.2.15/24' "$Q_TMP/marker" || q_fail "eth0 has no DHCP address: $(m)"
echo "ok: Debian 12 from Xen/VMware-like hardware adapted in the live environment ($adapt_secs s) and booted on virtio in ${BOOT_SECS:-?} s with DHCP on eth0; total $(q_elapsed "$t0") s"
