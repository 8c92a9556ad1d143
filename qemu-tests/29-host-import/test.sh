#!/bin/bash
# ferry import: a partitioned raw disk (GPT, ext4 with files) converted by
# the real qemu-img to qcow2 v2, v3, compressed, with zero clusters, VHD
# fixed and dynamic, VMDK monolithicSparse and streamOptimized; each one
# imported into `ferry-init serve`: the destination equals the raw disk,
# and the bytes on the wire (counted by a proxy) are about the allocated
# bytes, not the virtual size. Refusals keep the seed tool's words.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" qemu-img qemu-io sfdisk mkfs.ext4 mkswap mkfs.vfat python3

raw=$Q_TMP/disk.raw
h_mkdisk gpt "$raw" 96 24
vsize=$(stat -c %s "$raw")
mk() { # NAME qemu-img-args...
	local n=$1
	shift
	qemu-img convert -q "$@" "$raw" "$Q_TMP/$n" || q_fail "qemu-img $*"
}
mk v2.qcow2 -O qcow2 -o compat=0.10
mk v3.qcow2 -O qcow2 -o compat=1.1
mk c.qcow2 -O qcow2 -c
mk fixed.vhd -O vpc -o subformat=fixed
mk dyn.vhd -O vpc -o subformat=dynamic
mk sparse.vmdk -O vmdk -o subformat=monolithicSparse
mk stream.vmdk -O vmdk -o subformat=streamOptimized
# Zero clusters over real data: the import must write zeros there.
cp "$Q_TMP/v3.qcow2" "$Q_TMP/z.qcow2"
qemu-io -c "write -z 20M 2M" "$Q_TMP/z.qcow2" >/dev/null || q_fail "qemu-io"
qemu-img convert -q -O raw "$Q_TMP/z.qcow2" "$Q_TMP/z.raw"

for img in v2.qcow2 v3.qcow2 c.qcow2 z.qcow2 fixed.vhd dyn.vhd sparse.vmdk stream.vmdk; do
	want=$raw
	[ "$img" = z.qcow2 ] && want=$Q_TMP/z.raw
	rm -f "$Q_TMP/dst.img"
	truncate -s 128M "$Q_TMP/dst.img"
	h_serve "vda=$Q_TMP/dst.img"
	h_proxy "$H_PORT"
	"$FERRY" import "$Q_TMP/$img" --disk vda --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" \
		--state-dir "$Q_TMP/st.$img" --json >"$Q_TMP/$img.json" 2>"$Q_TMP/$img.err" ||
		q_fail "import $img: $(tail -n 3 "$Q_TMP/$img.err")"
	h_wait_serve || true
	p_stop
	# The data area is byte-identical; the partition table is the same,
	# valid at the destination's size (its GPT backup moved to the end).
	cmp -s <(tail -c +$(((1 << 20) + 1)) "$want" | head -c $((vsize - (2 << 20)))) \
		<(tail -c +$(((1 << 20) + 1)) "$Q_TMP/dst.img" | head -c $((vsize - (2 << 20)))) ||
		q_fail "import $img: the data area differs from the raw disk"
	[ "$(sfdisk -d "$want" | grep '^/' | sed 's/^[^:]*://')" = \
	  "$(sfdisk -d "$Q_TMP/dst.img" | grep '^/' | sed 's/^[^:]*://')" ] ||
		q_fail "import $img: partitions differ"
	sfdisk --verify "$Q_TMP/dst.img" 2>&1 | grep -q "No errors detected" ||
		q_fail "import $img: sfdisk --verify: $(sfdisk --verify "$Q_TMP/dst.img" 2>&1)"
	wire=$(sed -n 's/^up //p' "$P_STATS")
	alloc=$("$FERRY" import --inspect --json "$Q_TMP/$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated"])')
	[ "$wire" -le $((alloc + (2 << 20))) ] || q_fail "import $img: $wire bytes on the wire for $alloc allocated"
	[ "$wire" -lt $((vsize * 6 / 10)) ] || q_fail "import $img: $wire bytes on the wire for a $vsize-byte disk"
	echo "  $img: identical; $wire bytes on the wire, $alloc allocated, $vsize virtual"
done

# Refusals.
qemu-img create -q -f qcow2 -b "$Q_TMP/v3.qcow2" -F qcow2 "$Q_TMP/child.qcow2"
rc=0
"$FERRY" import --inspect "$Q_TMP/child.qcow2" 2>"$Q_TMP/e1" || rc=$?
[ "$rc" = 1 ] && grep -q "failed to obtain the metadata of the image file: .*backing" "$Q_TMP/e1" ||
	q_fail "a backing file was not refused: $(cat "$Q_TMP/e1")"
rc=0
"$FERRY" import --inspect --format vmdk "$Q_TMP/v3.qcow2" 2>"$Q_TMP/e2" || rc=$?
[ "$rc" = 1 ] && grep -q "failed to obtain the metadata of the image file: --format vmdk but the file is qcow2" "$Q_TMP/e2" ||
	q_fail "a format mismatch was not refused: $(cat "$Q_TMP/e2")"
head -c 64M /dev/urandom >"$Q_TMP/small.img"
before=$(sha256sum <"$Q_TMP/small.img")
h_serve "vda=$Q_TMP/small.img"
rc=0
"$FERRY" import "$Q_TMP/v3.qcow2" --disk vda --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	--state-dir "$Q_TMP/st.small" >/dev/null 2>"$Q_TMP/e3" || rc=$?
h_wait_serve || true
[ "$rc" = 1 ] && grep -q "the storage space of the target device is too small" "$Q_TMP/e3" ||
	q_fail "a too-small destination was not refused: $(cat "$Q_TMP/e3")"
[ "$before" = "$(sha256sum <"$Q_TMP/small.img")" ] || q_fail "a refused import wrote to the disk"
echo "ok: 8 images imported identical with about their allocated bytes on the wire; backing file, format mismatch and too-small refused"
