#!/bin/bash
# The live ISO under OVMF (UEFI): GRUB's default entry boots with no input, the
# destination makes up a token and shows it on the serial console, and the
# agent sees exactly the one virtio disk (not the CD the system booted from).
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/ferry-live.iso" "$QEMU" python3 "$OVMF"

q_boot iso-uefi --disk 67108864
q_wait_log "$Q_SERIAL" 'ferry: migration mode' 60 >/dev/null ||
	q_fail "no GRUB menu on the serial console"
q_wait_log "$Q_SERIAL" 'Command line: .*ferry\.mode=serve' 120 >/dev/null ||
	q_fail "the kernel did not start with the default entry's ferry.mode=serve"
token=$(q_token "$Q_SERIAL" 120) || q_fail "no token on the console"
q_ferry status --to "127.0.0.1:$Q_PORT" --token "$token" --json --wait 60 \
	>"$Q_TMP/status.json" 2>"$Q_TMP/status.err" ||
	q_fail "ferry status exited $?: $(cat "$Q_TMP/status.err")"
echo "boot-to-handshake: $(q_elapsed "$Q_T0") s"
q_expect_disks "$Q_TMP/status.json" "vda 67108864"
echo "ok: ISO (UEFI) booted the default entry; disks: vda 67108864"
