#!/bin/bash
# A destination disk smaller than the source, in the live environment: the
# plan is refused before any write with the seed tool's words and both
# sizes, the agent exits 1, and the disk's bytes are unchanged.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" sfdisk mkfs.ext4 mkswap python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk mbr "$src" 96 8
head -c 64M /dev/urandom >"$dst"
before=$(sha256sum <"$dst")
token=$("$FERRY" token)
q_boot kernel --disk-file "$dst" --append "ferry.token=$token"
rc=0
q_ferry migrate --to "127.0.0.1:$Q_PORT" --token "$token" --wait 90 --disk "$src" --ignore-check \
	--state-dir "$Q_TMP/state" >"$Q_TMP/out" 2>"$Q_TMP/err" || rc=$?
[ "$rc" = 1 ] || q_fail "exit $rc, want 1: $(tail -n 3 "$Q_TMP/err")"
grep -q "the storage space of the target device is too small: vda is 64.0 MiB (67108864 bytes), the source .* needs 96.0 MiB (100663296 bytes)" \
	"$Q_TMP/err" || q_fail "message: $(cat "$Q_TMP/err")"
q_wait_log "$Q_SERIAL" 'too small' 10 >/dev/null || q_fail "the destination console does not say why"
q_stop
[ "$before" = "$(sha256sum <"$dst")" ] || q_fail "the destination disk changed"
echo "ok: refused before any write; disk unchanged"
