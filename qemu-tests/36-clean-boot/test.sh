#!/bin/bash
# ferry.mode=clean, for a destination nobody can reach any more: a
# migration dies half way (the VM is killed); booted again with
# ferry.mode=clean, the live environment wipes the disk that carries the
# in-progress mark, leaves the other disk alone, and offers the rescue
# shell.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img other=$Q_TMP/other.img
h_mkdisk bare "$src" 64 40
head -c 64M /dev/urandom >"$dst"
head -c 16M /dev/urandom >"$other"
other_sum=$(sha256sum <"$other")
token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --disk-file "$other" --append "ferry.token=$token"
q_ferry migrate --to "127.0.0.1:$Q_PORT" --wait 90 --retries 0 --token "$token" --disk "$src=vda" \
	--flush-every 4 --state-dir "$Q_TMP/st" --json >"$Q_TMP/1.json" 2>"$Q_TMP/1.err" &
agent=$!
for _ in $(seq 1 600); do
	grep -q '"event":"flush","[^}]*"seq":2' "$Q_TMP/1.json" && break
	sleep 0.1
done
q_stop
wait "$agent" || true
head -c 27 "$dst" | grep -q "FERRY-MIGRATION-IN-PROGRESS" || q_fail "no in-progress mark after the failed migration"

q_boot kernel --disk-file "$dst" --disk-file "$other" --append "ferry.mode=clean"
q_wait_log "$Q_RESULT" '^FERRY CLEAN wiped=vda' 60 >/dev/null || q_fail "vda was not wiped"
q_wait_log "$Q_RESULT" '^FERRY RESCUE' 30 >/dev/null || q_fail "no rescue shell after clean"
grep -aq 'wiped=vdb' "$Q_RESULT" && q_fail "clean wiped vdb, which was not being migrated"
q_stop
cmp -s <(head -c 1M "$dst") <(head -c 1M /dev/zero) || q_fail "the first MiB of vda is not blank"
[ "$other_sum" = "$(sha256sum <"$other")" ] || q_fail "vdb changed"
echo "ok: the half-migrated disk was wiped at boot, the other left alone"
