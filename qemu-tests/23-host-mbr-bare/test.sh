#!/bin/bash
# Host mode: an MBR disk and a disk with ext4 directly on it (no table),
# mapped in order to the destination's disks (the seed tool's DataDisks
# order) in one migration.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.ext4 mkswap debugfs e2fsck python3

m=$Q_TMP/mbr.img b=$Q_TMP/bare.img
h_mkdisk mbr "$m" 128 30
h_mkdisk bare "$b" 64 20
truncate -s 128M "$Q_TMP/d1.img"
truncate -s 80M "$Q_TMP/d2.img"
h_serve "vda=$Q_TMP/d1.img" "vdb=$Q_TMP/d2.img"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$m" --disk "$b" \
	>"$Q_TMP/out" 2>"$Q_TMP/err" || q_fail "migrate exited $?: $(tail -n 3 "$Q_TMP/err")"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
grep -q "table MBR" "$Q_TMP/out" || q_fail "plan does not say MBR: $(cat "$Q_TMP/out")"
grep -q "table none, filesystem ext4" "$Q_TMP/out" || q_fail "plan does not show the bare ext4: $(cat "$Q_TMP/out")"
off=$(h_part_off "$m" 1) size=$(h_part_size "$m" 1)
h_extract "$m" "$off" "$size" "$Q_TMP/m1"
h_extract "$Q_TMP/d1.img" "$off" "$size" "$Q_TMP/d1p1"
h_same_files "$Q_TMP/m1" "$Q_TMP/d1p1"
h_fsck "$Q_TMP/d1p1"
[ "$(sfdisk -d "$m" | grep '^/' | sed 's/^[^:]*://')" = "$(sfdisk -d "$Q_TMP/d1.img" | grep '^/' | sed 's/^[^:]*://')" ] ||
	q_fail "MBR partitions differ"
head -c "$(stat -c %s "$b")" "$Q_TMP/d2.img" >"$Q_TMP/d2p"
h_same_files "$b" "$Q_TMP/d2p"
h_fsck "$Q_TMP/d2p"
echo "ok: MBR and bare ext4 migrated in order"
