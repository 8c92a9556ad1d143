#!/bin/bash
# The source disks the migration tests use really boot by themselves,
# through their own bootloaders: a GPT image under SeaBIOS (gptmbr.bin +
# extlinux) and under OVMF (GRUB as \EFI\BOOT\BOOTX64.EFI), an MBR image
# under SeaBIOS (mbr.bin + extlinux), and a GPT image with GRUB for BIOS
# (boot.img + core.img in the BIOS boot partition, set up by mkdisk.sh).
# Each boot must reach the test system's marker with its data intact and
# its fstab UUIDs resolvable, then power off. Needs root (mkdisk.sh mounts
# a loop device for extlinux).
# shellcheck source=qemu-tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=qemu-tests/disk.sh
. "$Q_TOP/qemu-tests/disk.sh"

[ "$(id -u)" = 0 ] || q_skip "mkdisk.sh needs root (extlinux installs through a loop mount)"
KERNEL=${KERNEL:-$Q_TOP/build/kernel/bzImage}
[ -s "$KERNEL" ] || q_skip "$KERNEL missing (make kernel)"
q_need "$QEMU" "$OVMF" /usr/lib/grub/i386-pc/boot.img extlinux grub-mkimage mkfs.vfat mcopy sfdisk

mk() {
	local out=$1
	shift
	local t0
	t0=$(q_now)
	"$Q_TOP/scripts/mkdisk.sh" -q --test "$@" "$out" >"$out.mkdisk.log" 2>&1 ||
		{ cat "$out.mkdisk.log" >&2; q_fail "mkdisk.sh $* failed"; }
	q_log "mkdisk $* ($(q_elapsed "$t0") s)"
	sed 's/^/    /' "$out.mkdisk.log"
}

# check IMG FW: boots and checks what the test system reports.
check() {
	local img=$1 fw=$2 what=$3
	boot_disk "$img" "$fw" || q_fail "$what: no marker"
	# Sets LAYOUT, ROOT_PART, MARKER, HOSTNAME, ... (mkdisk.sh).
	# shellcheck disable=SC1091
	. "$img.layout"
	local root=vda$ROOT_PART data fstab
	# shellcheck disable=SC2153
	[ "$BOOT_LINE" = "FERRY-TEST: $MARKER on $HOSTNAME, root /dev/$root" ] ||
		q_fail "$what: unexpected marker line: $BOOT_LINE"
	data=$(boot_field DATA)
	case "$data" in ok*) ;; *) q_fail "$what: data check: ${data:-no line}" ;; esac
	if grep -a '^FERRY-TEST-FSTAB: ' "$BOOT_LOG" | grep -q MISSING; then
		q_fail "$what: fstab names a missing UUID: $(grep -a MISSING "$BOOT_LOG")"
	fi
	fstab=$(grep -a -c '^FERRY-TEST-FSTAB: ' "$BOOT_LOG" || true)
	if [ "$LAYOUT" = gpt ]; then
		[ "$(boot_field ESP)" = ok ] || q_fail "$what: ESP check: $(boot_field ESP)"
	fi
	[ "$BOOT_OFF" = 1 ] || q_fail "$what: the guest did not power off after the marker"
	local df
	df=$(boot_field DF)
	printf '%s: %-28s %5s s to marker  (root /dev/%s, df %s, fstab %s UUIDs ok, data %s)\n' \
		"$Q_NAME" "$what" "$BOOT_SECS" "$root" "$df" "$fstab" "$data"
}

mk "$Q_TMP/gpt.img" --layout gpt --size 256M
check "$Q_TMP/gpt.img" bios "gpt, BIOS (extlinux)"
check "$Q_TMP/gpt.img" uefi "gpt, UEFI (GRUB)"

mk "$Q_TMP/mbr.img" --layout mbr --size 256M --marker "mbr system is up"
check "$Q_TMP/mbr.img" bios "mbr, BIOS (extlinux)"

mk "$Q_TMP/gpt-grub.img" --layout gpt --size 256M --bios-loader grub
check "$Q_TMP/gpt-grub.img" bios "gpt, BIOS (GRUB)"

echo "ok: gpt boots under BIOS (extlinux, GRUB) and UEFI (GRUB), mbr under BIOS (extlinux)"
