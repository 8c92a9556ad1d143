#!/bin/bash
# Two source disks - an MBR disk and ext4 directly on a disk - with a
# crossed explicit mapping (mbr=vdb, bare=vda) into the live environment;
# every file identical and fsck clean on the host afterwards.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" sfdisk mkfs.ext4 mkswap debugfs e2fsck python3

m=$Q_TMP/mbr.img b=$Q_TMP/bare.img
h_mkdisk mbr "$m" 64 12
h_mkdisk bare "$b" 48 10
truncate -s 64M "$Q_TMP/vda.img"
truncate -s 96M "$Q_TMP/vdb.img"
token=$("$FERRY" token)
q_boot kernel --disk-file "$Q_TMP/vda.img" --disk-file "$Q_TMP/vdb.img" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 --disk "$m=vdb" --disk "$b=vda" \
	--handoff poweroff --state-dir "$Q_TMP/state" >"$Q_TMP/out" 2>"$Q_TMP/err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/err")"
q_wait_log "$Q_RESULT" '^FERRY HANDOFF poweroff' 30 >/dev/null || q_fail "no hand-off"
q_stop
off=$(h_part_off "$m" 1) size=$(h_part_size "$m" 1)
h_extract "$m" "$off" "$size" "$Q_TMP/m1"
h_extract "$Q_TMP/vdb.img" "$off" "$size" "$Q_TMP/vdb1"
h_same_files "$Q_TMP/m1" "$Q_TMP/vdb1"
h_fsck "$Q_TMP/vdb1"
head -c "$(stat -c %s "$b")" "$Q_TMP/vda.img" >"$Q_TMP/vda.fs"
h_same_files "$b" "$Q_TMP/vda.fs"
h_fsck "$Q_TMP/vda.fs"
echo "ok: mbr -> vdb and bare ext4 -> vda"
