#!/bin/bash
# ferry import under QEMU: a bootable MBR disk converted by the real
# qemu-img to a compressed qcow2, imported with --grow into the live
# environment's larger blank disk; the destination then boots alone,
# through its own bootloader, and sees its grown root filesystem.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" qemu-img sfdisk python3
[ "$(id -u)" = 0 ] || q_skip "making a bootable source disk installs extlinux through a loop mount: needs root"

src=$Q_TMP/src.img img=$Q_TMP/src.qcow2 dst=$Q_TMP/dst.img
"$Q_TOP/scripts/mkdisk.sh" -q --layout mbr --size 128M --test "$src" || q_fail "mkdisk failed"
qemu-img convert -q -O qcow2 -c "$src" "$img" || q_fail "qemu-img convert failed"
truncate -s 160M "$dst"

token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry import "$img" --disk vda --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 \
	--grow --handoff poweroff --state-dir "$Q_TMP/st" \
	>"$Q_TMP/out" 2>"$Q_TMP/agent.err" ||
	q_fail "ferry import exited $?: $(tail -n 5 "$Q_TMP/agent.err")"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no poweroff hand-off"
for _ in $(seq 1 100); do q_alive || break; sleep 0.2; done
q_alive && q_fail "the destination did not power off after the import"
q_stop

# The root partition (2, the last) grew to the destination's end.
ssize=$(h_part_size "$src" 2) dsize=$(h_part_size "$dst" 2)
[ "$dsize" -gt $((ssize + (24 << 20))) ] || q_fail "root partition not grown: $ssize -> $dsize"

# The imported disk boots by itself and sees its grown root.
boot_disk "$dst" bios || q_fail "the imported disk did not boot"
df=$(grep -a '^FERRY-TEST-DF' "$BOOT_LOG" | tr -d '\r' | tail -n 1)
total=$(echo "$df" | awk '{print $3}')
# More than the whole source root partition (KiB): only a grown ext4 fits.
[ -n "$total" ] && [ "$total" -gt $((ssize >> 10)) ] ||
	q_fail "root filesystem not grown in the imported system ($((ssize >> 10)) KiB source partition): $df"
echo "ok: qcow2 (compressed) imported, grown; boots in $BOOT_SECS s ($BOOT_LINE); $df"
