#!/bin/bash
# The adapt phase with dracut, for real: a Debian 12 (scripts/fixture-dracut.sh,
# derived from the fixture of 62-adapt-debian) whose initramfs is made by
# Debian's dracut, host-only, with the virtio drivers omitted
# (omit_drivers+=" virtio_blk virtio_pci virtio_scsi virtio_net "), and no
# initramfs-tools. Its fstab and grub.cfg name /dev/sda1.
#  1. Copied without --adapt (host mode, ferry-init serve): the readiness
#     report FAILs virtio_blk (not in initramfs).
#  2. The live environment boots with ferry.mode=adapt on that disk and
#     adapts it: dracut runs in the chroot under the live kernel, into a
#     file of its own; the FERRY ADAPT line names dracut; the config that
#     brings the drivers back despite omit_drivers is written.
#  3. On the adapted disk (debugfs, no mount): the old initramfs is kept
#     byte for byte as .ferry-orig, no half-written .ferry-new is left,
#     and the new initramfs (listed by its cpio archives here, not by
#     ferry) holds virtio_blk.ko and virtio_pci.ko.
#  4. The adapted disk boots on virtio through its own GRUB: root is
#     /dev/vda1, virtio_blk is loaded, eth0 (virtio-net) got DHCP.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY" "$FERRY_INIT" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" \
	sfdisk debugfs python3 zstd
[ "$(id -u)" = 0 ] || q_skip "the Debian fixture is built with a loop mount and chroot: needs root"

t0=$(q_now)
fixture=$("$Q_TOP/scripts/fixture-dracut.sh") || q_fail "the dracut fixture could not be built"
q_log "fixture $(basename "$fixture") ready in $(q_elapsed "$t0") s"
off=$(h_part_off "$fixture" 1)
kver=$(debugfs -R "ls /boot" "$fixture?offset=$off" 2>/dev/null | tr ' ' '\n' | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
[ -n "$kver" ] || q_fail "no kernel in the fixture's /boot"
initrd=/boot/initrd.img-$kver

# Lists the files of an initramfs as the kernel unpacks it: cpio (newc)
# archives one after the other, uncompressed (early microcode) or
# compressed (gzip, zstd, xz), each padded to 4 bytes.
lsimg() {
	python3 - "$1" <<-'PY'
	import subprocess, sys
	data = open(sys.argv[1], "rb").read()
	def unpack(d):
	    if d[:2] == b"\x1f\x8b": return subprocess.run(["gzip", "-dc"], input=d, capture_output=True).stdout
	    if d[:4] == b"\x28\xb5\x2f\xfd": return subprocess.run(["zstd", "-dc"], input=d, capture_output=True).stdout
	    if d[:6] == b"\xfd7zXZ\x00": return subprocess.run(["xz", "-dc"], input=d, capture_output=True).stdout
	    sys.exit("unknown initramfs part: %r" % d[:8])
	def walk(d, o):
	    while o + 110 <= len(d):
	        if d[o:o + 6] != b"070701":
	            return o
	        h = d[o:o + 110]
	        namesize, filesize = int(h[94:102], 16), int(h[54:62], 16)
	        name = d[o + 110:o + 110 + namesize - 1].decode(errors="replace")
	        o = (o + 110 + namesize + 3) & ~3
	        o = (o + filesize + 3) & ~3
	        if name == "TRAILER!!!":
	            continue
	        print(name)
	    return o
	o = 0
	while o < len(data):
	    while o < len(data) and data[o] == 0:
	        o += 1
	    if o >= len(data):
	        break
	    if data[o:o + 6] == b"070701":
	        o = walk(data, o)
	    else:
	        walk(unpack(data[o:]), 0)
	        break
	PY
}
debugfs -R "dump $initrd $Q_TMP/initrd.old" "$fixture?offset=$off" >/dev/null 2>&1
lsimg "$Q_TMP/initrd.old" >"$Q_TMP/old.list" || q_fail "the fixture's initramfs could not be listed"
grep -q '/ata_piix.ko' "$Q_TMP/old.list" || q_fail "the listing is wrong: no ata_piix.ko in the fixture's initramfs"
grep -q 'virtio_blk.ko' "$Q_TMP/old.list" && q_fail "the fixture's initramfs has virtio_blk"
grep -q 'dracut' "$Q_TMP/old.list" || q_fail "the fixture's initramfs is not dracut's"

# 1. The copy, without --adapt.
dst=$Q_TMP/dst.img
truncate -s 3G "$dst"
h_serve "vda=$dst"
q_ferry migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$fixture=vda" --ignore-check \
	--handoff poweroff --state-dir "$Q_TMP/st" >"$Q_TMP/mig.out" 2>&1 ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/mig.out")"
h_wait_serve || true
grep -q 'FAIL  virtio_blk: a module in kernel .* not in initramfs' "$Q_TMP/mig.out" ||
	q_fail "the readiness report did not FAIL virtio_blk: $(grep -E 'PASS|WARN|FAIL' "$Q_TMP/mig.out")"

# 2. ferry.mode=adapt in the live environment, on that disk.
t1=$(q_now)
Q_VM_TIMEOUT=1800 q_boot kernel --disk-file "$dst" --mem 1024 \
	--append "ferry.mode=adapt ferry.handoff=poweroff"
q_wait_log "$Q_RESULT" '^FERRY RESULT adapt verdict=' 1700 >/dev/null ||
	q_fail "no adapt result from the live environment"
adapt_secs=$(q_elapsed "$t1")
for _ in $(seq 1 150); do q_alive || break; sleep 0.2; done
grep -a '^FERRY ADAPT ' "$Q_RESULT" | tr -d '\r' >"$Q_TMP/adapt.lines"
res() { cat "$Q_TMP/adapt.lines"; }
grep -aq '^FERRY RESULT adapt verdict=ready\|^FERRY RESULT adapt verdict=warnings' "$Q_RESULT" ||
	q_fail "the adapted system is not ready: $(res | grep FAIL | cut -c1-300)"
for want in 'FAIL before adapting: virtio_blk' \
	'PASS adapt: /etc/dracut.conf.d/90-ferry-adapt.conf: add_drivers+=" virtio_blk virtio_pci' \
	"PASS adapt: kernel $kver: initramfs $initrd regenerated by dracut" \
	"regenerated by dracut, the old one kept as .ferry-orig; it has virtio_blk" \
	'PASS adapt: /etc/fstab: fstab line 4 (/): /dev/sda1 -> UUID=' \
	'PASS virtio_blk: module, in initramfs'; do
	grep -qF -- "$want" "$Q_TMP/adapt.lines" || q_fail "no /$want/ among the FERRY ADAPT lines:
$(res | cut -c1-200)"
done
q_log "adapted in the live environment in $adapt_secs s: $(grep -F 'regenerated by dracut' "$Q_TMP/adapt.lines" | cut -c1-160)"

# 3. The old initramfs kept whole, nothing half-written, virtio in the new.
debugfs -R "dump $initrd.ferry-orig $Q_TMP/initrd.orig" "$dst?offset=$off" >/dev/null 2>&1
cmp -s "$Q_TMP/initrd.old" "$Q_TMP/initrd.orig" || q_fail "$initrd.ferry-orig is not the old initramfs"
debugfs -R "ls -l /boot" "$dst?offset=$off" 2>/dev/null >"$Q_TMP/boot.ls"
grep -q 'ferry-new' "$Q_TMP/boot.ls" && q_fail "a .ferry-new is left in /boot: $(cat "$Q_TMP/boot.ls")"
debugfs -R "dump $initrd $Q_TMP/initrd.new" "$dst?offset=$off" >/dev/null 2>&1
lsimg "$Q_TMP/initrd.new" >"$Q_TMP/new.list" || q_fail "the new initramfs could not be listed"
for m in virtio_blk virtio_pci; do
	grep -q "/$m.ko" "$Q_TMP/new.list" || q_fail "no $m.ko in the new initramfs"
done
grep -q 'dracut' "$Q_TMP/new.list" || q_fail "the new initramfs is not dracut's"
e2fsck -fn "$dst?offset=$off" >"$Q_TMP/fsck.log" 2>&1 || q_fail "e2fsck -fn vda1: $(tail -n 5 "$Q_TMP/fsck.log")"

# 4. It boots on virtio through its own GRUB.
BOOT_MARKER='FERRY-MARKER end|reboot: Power down' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$dst" bios -serial "file:$Q_TMP/marker-new.log" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 ||
	grep -q '^FERRY-MARKER end' "$Q_TMP/marker-new.log" ||
	q_fail "the adapted disk did not boot on virtio"
tr -d '\r' <"$Q_TMP/marker-new.log" >"$Q_TMP/marker"
m() { cat "$Q_TMP/marker"; }
grep -q "^FERRY-MARKER booted kernel=$kver root=/dev/vda1" "$Q_TMP/marker" || q_fail "root: $(m)"
grep -q '^FERRY-MARKER module virtio_blk' "$Q_TMP/marker" || q_fail "virtio_blk not loaded: $(m)"
grep -q '^FERRY-MARKER ip eth0 10.0.2.15/24' "$Q_TMP/marker" || q_fail "eth0 has no DHCP address: $(m)"
echo "ok: Debian 12 with a dracut initramfs without virtio adapted in the live environment ($adapt_secs s, dracut) and booted on virtio in ${BOOT_SECS:-?} s; total $(q_elapsed "$t0") s"
