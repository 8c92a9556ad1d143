#!/bin/bash
# Network boot of build/out/pxe: SeaBIOS runs the virtio NIC's iPXE ROM,
# which takes pxelinux.0 from QEMU's built-in TFTP server; pxelinux loads
# the kernel and initramfs and boots its default entry with no input. The
# token comes from the console and the agent gets a reply.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/pxe/pxelinux.0" "$FERRY_OUT/pxe/ldlinux.c32" \
	"$FERRY_OUT/pxe/pxelinux.cfg/default" "$FERRY_OUT/pxe/vmlinuz" \
	"$FERRY_OUT/pxe/initramfs.cpio.gz" "$QEMU" python3

q_boot pxe --disk 67108864
q_wait_log "$Q_SERIAL" 'PXELINUX' 60 >/dev/null ||
	q_fail "pxelinux did not start (no PXELINUX banner on the serial console)"
q_wait_log "$Q_SERIAL" 'Command line: .*ferry\.mode=serve' 120 >/dev/null ||
	q_fail "the kernel did not start with the default entry's ferry.mode=serve"
token=$(q_token "$Q_SERIAL" 180) || q_fail "no token on the console"
q_ferry status --to "127.0.0.1:$Q_PORT" --token "$token" --json --wait 60 \
	>"$Q_TMP/status.json" 2>"$Q_TMP/status.err" ||
	q_fail "ferry status exited $?: $(cat "$Q_TMP/status.err")"
echo "boot-to-handshake: $(q_elapsed "$Q_T0") s"
q_expect_disks "$Q_TMP/status.json" "vda 67108864"
echo "ok: PXE (pxelinux over slirp TFTP) booted; disks: vda 67108864"
