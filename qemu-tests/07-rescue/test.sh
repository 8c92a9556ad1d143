#!/bin/bash
# ferry.mode=rescue: a BusyBox shell on the console with the ferry-rescue#
# prompt that runs what is typed (the arithmetic proves a shell evaluated
# it, not an echo of the input), and the result port says RESCUE.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU"

q_boot kernel --interactive --disk 67108864 --append "ferry.mode=rescue"
q_wait_log "$Q_SERIAL" 'ferry-rescue# ' 60 >/dev/null ||
	q_fail "no 'ferry-rescue# ' prompt on the console"
q_wait_log "$Q_RESULT" '^FERRY RESCUE' 5 >/dev/null ||
	q_fail "no 'FERRY RESCUE' line on the result port"
# shellcheck disable=SC2016 # typed into the guest's shell
q_type 'echo rescue-$((6*7))'
q_wait_log "$Q_SERIAL" 'rescue-42' 30 >/dev/null ||
	q_fail "the shell did not answer 'rescue-42'"
# The disk tools are there and run (static: the initramfs has no loader).
q_type 'e2fsck -V 2>&1 | head -n 1; resize2fs 2>&1 | head -n 1'
q_wait_log "$Q_SERIAL" 'e2fsck 1\.[0-9]+' 30 >/dev/null ||
	q_fail "e2fsck -V printed no version in the rescue shell"
q_wait_log "$Q_SERIAL" 'resize2fs 1\.[0-9]+' 30 >/dev/null ||
	q_fail "resize2fs printed no version in the rescue shell"
echo "ok: rescue shell answered rescue-42; e2fsck and resize2fs run"
