#!/bin/bash
# --handoff kexec: after the migration the live environment loads the
# migrated system's kernel, initrd and command line from its bootloader
# configuration (kexec_file_load) and starts it: the migrated system's
# marker appears on the same console, without a firmware reboot.
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU"
[ "$(id -u)" = 0 ] || q_skip "making a bootable source disk needs root (loop mount for extlinux)"

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
"$Q_TOP/scripts/mkdisk.sh" -q --layout mbr --size 128M --test "$src" || q_fail "mkdisk failed"
truncate -s 128M "$dst"
token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 --disk "$src=vda" \
	--handoff kexec --state-dir "$Q_TMP/state" >"$Q_TMP/out" 2>"$Q_TMP/err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/err")"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF kexec' 60 >/dev/null ||
	q_fail "no kexec hand-off: $(tr -d '\r' <"$Q_SERIAL" | grep -a -i kexec | tail -n 3)"
line=$(q_wait_log "$Q_SERIAL" 'FERRY-TEST: migrated system is up' 120) ||
	q_fail "the migrated system did not come up after kexec"
grep -aq 'FERRY-TEST-CMDLINE:.*root=PARTUUID=' "$Q_SERIAL" || q_fail "the migrated kernel did not get its own command line"
echo "ok: kexec into the migrated system: $line"
