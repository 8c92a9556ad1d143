#!/bin/bash
# The whole job under QEMU: a bootable GPT disk (BIOS boot + ESP + swap +
# ext4 root with real files) migrated with --grow --checksum into the live
# environment's larger blank disk; then, on the host, every file identical,
# e2fsck clean, sfdisk --verify clean, the GPT at the new end, the root
# partition grown; and the migrated disk boots alone, through its own
# bootloader, showing the grown filesystem.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
. "$(dirname "$0")/../disk.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" sfdisk debugfs e2fsck python3
[ "$(id -u)" = 0 ] || q_skip "making a bootable source disk installs extlinux through a loop mount: needs root"

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
"$Q_TOP/scripts/mkdisk.sh" -q --layout gpt --size 256M --test "$src" || q_fail "mkdisk failed"
truncate -s 384M "$dst"

token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 --disk "$src=vda" \
	--grow --checksum --handoff poweroff --state-dir "$Q_TMP/state" --json \
	>"$Q_TMP/ev.json" 2>"$Q_TMP/agent.err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/agent.err")"
q_wait_log "$Q_RESULT" '^FERRY RESULT ok' 30 >/dev/null || q_fail "no FERRY RESULT ok on the result port"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no poweroff hand-off"
for _ in $(seq 1 100); do q_alive || break; sleep 0.2; done
q_alive && q_fail "the destination did not power off after the migration"
grep -q '"event":"verify"' "$Q_TMP/ev.json" || q_fail "no verify pass"
grep -q 'partition 4 and its ext filesystem grown' "$Q_TMP/ev.json" ||
	q_fail "no grow in the report: $(grep report "$Q_TMP/ev.json")"

# The host's view of the result.
sfdisk --verify "$dst" 2>&1 | grep -q "No errors detected" || q_fail "sfdisk --verify: $(sfdisk --verify "$dst" 2>&1)"
[ "$(sfdisk -J "$dst" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["lastlba"])')" \
	-gt $((380 * 2048)) ] || q_fail "GPT last LBA not at the end of the 384 MiB disk"
soff=$(h_part_off "$src" 4) ssize=$(h_part_size "$src" 4) dsize=$(h_part_size "$dst" 4)
[ "$dsize" -gt $((ssize + (100 << 20))) ] || q_fail "root partition not grown: $ssize -> $dsize"
h_extract "$src" "$soff" "$ssize" "$Q_TMP/s4"
h_extract "$dst" "$soff" "$dsize" "$Q_TMP/d4"
h_fsck "$Q_TMP/d4"
h_same_files "$Q_TMP/s4" "$Q_TMP/d4"
cmp <(h_extract "$src" "$(h_part_off "$src" 2)" "$(h_part_size "$src" 2)" /dev/stdout) \
	<(h_extract "$dst" "$(h_part_off "$dst" 2)" "$(h_part_size "$dst" 2)" /dev/stdout) || q_fail "ESP differs"

# The migrated disk boots by itself and sees its grown root.
boot_disk "$dst" bios || q_fail "the migrated disk did not boot"
df=$(grep -a '^FERRY-TEST-DF' "$BOOT_LOG" | tr -d '\r' | tail -n 1)
total=$(echo "$df" | awk '{print $3}')
[ -n "$total" ] && [ "$total" -gt 300000 ] || q_fail "root filesystem not grown in the migrated system: $df"
echo "ok: migrated, grown, verified; boots in $BOOT_SECS s ($BOOT_LINE); $df"
