#!/bin/bash
# The ESP's removable-media fallback, for real: a UEFI Debian 12
# (scripts/fixture-uefi.sh: GPT, an ESP with only \EFI\debian\ - shim,
# signed GRUB, MokManager, grub.cfg - as Debian installs it; its NVRAM
# boot entry stayed on the old machine) copied block for block to a new
# VM whose OVMF has empty variables.
#  1. The copy does not boot with OVMF: no \EFI\BOOT\BOOTX64.EFI, no
#     boot entry, no marker (OVMF ends in its shell or says no bootable
#     device). The disk is not changed (-snapshot).
#  2. The live environment boots with ferry.mode=adapt on that disk: the
#     readiness report before adapting WARNs the missing fallback; the
#     system's own grub-install --removable --no-nvram installs it (a
#     FERRY ADAPT line); the report after has no such WARN; \EFI\debian\
#     is untouched (mtools reads the ESP: the host has no vfat).
#  3. The adapted disk boots with OVMF (fresh variables again) to the
#     marker on virtio, root on vda1.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY_INIT" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" "$OVMF" \
	sfdisk mdir mcopy
[ "$(id -u)" = 0 ] || q_skip "the UEFI fixture is built with a loop mount and chroot: needs root"

t0=$(q_now)
fixture=$("$Q_TOP/scripts/fixture-uefi.sh") || q_fail "the UEFI fixture could not be built"
q_log "fixture $(basename "$fixture") ready in $(q_elapsed "$t0") s"
dst=$Q_TMP/dst.img
cp --sparse=always "$fixture" "$dst"
esp_off=$(sfdisk -J "$dst" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][2]; print(p["start"]*512)')
esp() { mdir -i "$dst@@$esp_off" "$@"; }
esp -/ ::/EFI >"$Q_TMP/esp.before" 2>&1 || q_fail "the fixture's ESP cannot be read: $(cat "$Q_TMP/esp.before")"
grep -qi 'shimx64' "$Q_TMP/esp.before" || q_fail "no \\EFI\\debian\\shimx64.efi on the fixture: $(cat "$Q_TMP/esp.before")"
esp ::/EFI/BOOT >/dev/null 2>&1 && q_fail "the fixture already has \\EFI\\BOOT"

# 1. Not adapted: OVMF with empty variables finds no loader.
t1=$(q_now)
BOOT_MARKER='FERRY-MARKER booted|Shell> |No bootable option' BOOT_TIMEOUT=150 BOOT_MEM=768 \
	boot_disk "$dst" uefi -snapshot || true
case "$BOOT_LINE" in
*FERRY-MARKER*) q_fail "the unadapted copy booted with OVMF: $BOOT_LINE" ;;
'') q_log "without adapting: no marker in $(q_elapsed "$t1") s" ;;
*) q_log "without adapting: OVMF ends in \"$(printf '%s' "$BOOT_LINE" | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g')\" after $(q_elapsed "$t1") s, no marker" ;;
esac
grep -aq 'FERRY-MARKER' "$BOOT_LOG" && q_fail "a marker from the unadapted copy"

# 2. ferry.mode=adapt in the live environment.
t1=$(q_now)
Q_VM_TIMEOUT=1500 q_boot kernel --disk-file "$dst" --mem 1024 \
	--append "ferry.mode=adapt ferry.handoff=poweroff"
q_wait_log "$Q_RESULT" '^FERRY RESULT adapt verdict=' 1400 >/dev/null ||
	q_fail "no adapt result from the live environment"
adapt_secs=$(q_elapsed "$t1")
for _ in $(seq 1 150); do q_alive || break; sleep 0.2; done
q_alive && q_fail "the live environment did not power off after adapting"
grep -a '^FERRY ADAPT ' "$Q_RESULT" | tr -d '\r' >"$Q_TMP/adapt.lines"
res() { cat "$Q_TMP/adapt.lines"; }
grep -aq '^FERRY RESULT adapt verdict=ready\|^FERRY RESULT adapt verdict=warnings' "$Q_RESULT" ||
	q_fail "the adapted system is not ready: $(res | grep FAIL)"
grep -qF 'WARN before adapting: EFI system partition vda3: no /EFI/BOOT/BOOT*.EFI' "$Q_TMP/adapt.lines" ||
	q_fail "the report before adapting did not WARN the missing fallback:
$(res | cut -c1-200)"
grep -qF 'PASS adapt: bootloader: fallback \EFI\BOOT\BOOTX64.EFI installed by grub-install --removable' \
	"$Q_TMP/adapt.lines" || q_fail "no fallback installed:
$(res | cut -c1-200)"
grep -v 'before adapting' "$Q_TMP/adapt.lines" | grep -qF 'no /EFI/BOOT/BOOT*.EFI' &&
	q_fail "the report after adapting still misses the fallback"
esp -/ ::/EFI >"$Q_TMP/esp.after" 2>&1 || q_fail "the ESP cannot be read after adapting"
grep -qi 'BOOTX64  EFI\|BOOTX64.EFI' "$Q_TMP/esp.after" || q_fail "no BOOTX64.EFI on the ESP: $(cat "$Q_TMP/esp.after")"
for f in shimx64.efi grubx64.efi mmx64.efi grub.cfg; do
	mcopy -n -i "$dst@@$esp_off" "::/EFI/debian/$f" "$Q_TMP/after-$f" ||
		q_fail "\\EFI\\debian\\$f gone"
	mcopy -n -i "$fixture@@$esp_off" "::/EFI/debian/$f" "$Q_TMP/before-$f"
	cmp -s "$Q_TMP/before-$f" "$Q_TMP/after-$f" || q_fail "\\EFI\\debian\\$f changed"
done
fsck.vfat -n "$dst@@$esp_off" >/dev/null 2>&1 || true
q_log "adapted in $adapt_secs s: $(grep -F 'fallback' "$Q_TMP/adapt.lines" | cut -c1-160)"

# 3. OVMF with empty variables again: the fallback boots it.
BOOT_MARKER='FERRY-MARKER end|reboot: Power down' BOOT_TIMEOUT=420 BOOT_MEM=768 \
	boot_disk "$dst" uefi -serial "file:$Q_TMP/marker-new.log" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 ||
	grep -q '^FERRY-MARKER end' "$Q_TMP/marker-new.log" ||
	q_fail "the adapted disk did not boot with OVMF"
tr -d '\r' <"$Q_TMP/marker-new.log" >"$Q_TMP/marker"
grep -q '^FERRY-MARKER booted .*root=/dev/vda1' "$Q_TMP/marker" ||
	q_fail "no marker with root on vda1: $(cat "$Q_TMP/marker")"
echo "ok: a UEFI Debian 12 with only \\EFI\\debian\\ did not boot on a new VM's OVMF; adapted ($adapt_secs s) it booted by \\EFI\\BOOT\\BOOTX64.EFI in ${BOOT_SECS:-?} s; total $(q_elapsed "$t0") s"
