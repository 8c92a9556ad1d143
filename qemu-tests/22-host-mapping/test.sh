#!/bin/bash
# Host mode: two disks with an explicit crossed mapping (a=vdb, b=vda), and
# mappings that must be refused with the list of what exists: a missing
# disk, the same destination twice, a partition name.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.ext4 mkswap debugfs e2fsck python3

a=$Q_TMP/a.img b=$Q_TMP/b.img
h_mkdisk mbr "$a" 96 10
h_mkdisk bare "$b" 48 6
truncate -s 64M "$Q_TMP/vda.img"
truncate -s 128M "$Q_TMP/vdb.img"

refuse() { # WANT-IN-MESSAGE DISK-ARGS...
	local want=$1 rc=0
	shift
	# Past the pre-migration checks: the mapping is refused by migrate
	# itself, before a PLAN is sent (so the receiver is stopped here).
	h_serve "vda=$Q_TMP/vda.img" "vdb=$Q_TMP/vdb.img"
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --ignore-check \
		--state-dir "$Q_TMP/st" "$@" >/dev/null 2>"$Q_TMP/err" || rc=$?
	kill "$H_PID" 2>/dev/null
	h_wait_serve || true
	[ "$rc" = 1 ] || q_fail "$*: exit $rc, want 1"
	grep -q -- "$want" "$Q_TMP/err" || q_fail "$*: no '$want' in: $(cat "$Q_TMP/err")"
	grep -q "vda (64.0 MiB)" "$Q_TMP/err" && grep -q "vdb (128.0 MiB)" "$Q_TMP/err" ||
		[ "$want" = "named for both" ] || q_fail "$*: the message does not list the disks: $(cat "$Q_TMP/err")"
}
refuse "vdc does not exist" --disk "$a=vdc"
refuse "named for both" --disk "$a=vda" --disk "$b=vda"
refuse "vda1 looks like a partition" --disk "$a=vda1"
cmp -s "$Q_TMP/vda.img" <(head -c 64M /dev/zero) || q_fail "a refused mapping wrote to vda"
# The pre-migration check says it first (exit 3).
h_serve "vda=$Q_TMP/vda.img" "vdb=$Q_TMP/vdb.img"
rc=0
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$a=vdc" \
	--state-dir "$Q_TMP/st" >"$Q_TMP/out0" 2>"$Q_TMP/err0" || rc=$?
kill "$H_PID" 2>/dev/null
h_wait_serve || true
[ "$rc" = 3 ] || q_fail "the pre-migration check let a missing disk through (exit $rc)"
grep -q "FAIL" "$Q_TMP/out0" || q_fail "no FAIL line from the check: $(cat "$Q_TMP/out0")"

h_serve "vda=$Q_TMP/vda.img" "vdb=$Q_TMP/vdb.img"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$a=vdb" --disk "$b=vda" \
	--state-dir "$Q_TMP/st" >"$Q_TMP/out" 2>"$Q_TMP/err" || q_fail "migrate exited $?: $(tail -n 3 "$Q_TMP/err")"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
grep -q "$a -> .*:vdb" "$Q_TMP/out" || q_fail "plan does not show a -> vdb: $(cat "$Q_TMP/out")"
off=$(h_part_off "$a" 1) size=$(h_part_size "$a" 1)
h_extract "$a" "$off" "$size" "$Q_TMP/a1"
h_extract "$Q_TMP/vdb.img" "$off" "$size" "$Q_TMP/vdb1"
h_same_files "$Q_TMP/a1" "$Q_TMP/vdb1"
h_fsck "$Q_TMP/vdb1"
head -c "$(stat -c %s "$b")" "$Q_TMP/vda.img" >"$Q_TMP/vda.part"
h_same_files "$b" "$Q_TMP/vda.part"
h_fsck "$Q_TMP/vda.part"
echo "ok: crossed mapping migrated; three bad mappings refused"
