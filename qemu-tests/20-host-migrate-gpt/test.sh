#!/bin/bash
# Host mode: a GPT disk (ESP vfat with a boot loader file + ext4 with real
# files + swap) migrated with --checksum into a larger destination that
# holds old garbage. Every file identical, e2fsck and fsck.vfat clean, the
# ESP's boot sector and FATs byte-identical, the swap header kept, the
# partition table valid for the bigger disk, and only used blocks on the
# wire.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.ext4 mkswap mkfs.vfat debugfs e2fsck dumpe2fs blkid python3 \
	mcopy mmd fsck.vfat

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk gpt "$src" 160 40
export MTOOLS_SKIP_CHECK=1
head -c 300000 /dev/urandom >"$Q_TMP/bootx64.efi"
mmd -i "$src@@1M" ::/EFI ::/EFI/BOOT
mcopy -i "$src@@1M" "$Q_TMP/bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
# The destination is bigger and not blank: old data must not matter.
truncate -s 224M "$dst"
head -c 8M /dev/urandom | dd of="$dst" conv=notrunc status=none
head -c 8M /dev/urandom | dd of="$dst" bs=1M seek=100 conv=notrunc status=none

h_serve "vda=$dst"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
	--checksum --json >"$Q_TMP/ev.json" 2>"$Q_TMP/agent.err" ||
	q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/agent.err")"
h_wait_serve || q_fail "the receiver exited $?: $(tail -n 5 "$H_LOG")"

# Files and filesystem.
off=$(h_part_off "$src" 2) size=$(h_part_size "$src" 2)
h_extract "$src" "$off" "$size" "$Q_TMP/s2"
h_extract "$dst" "$off" "$size" "$Q_TMP/d2"
h_same_files "$Q_TMP/s2" "$Q_TMP/d2"
h_fsck "$Q_TMP/d2"
# ESP: mapped by its FAT (the destination's old garbage stays in free
# clusters): the boot sector and FATs identical, the files identical, clean.
eoff=$(h_part_off "$src" 1) esize=$(h_part_size "$src" 1)
h_extract "$src" "$eoff" "$esize" "$Q_TMP/e1"
h_extract "$dst" "$eoff" "$esize" "$Q_TMP/e2"
cmp -n 65536 "$Q_TMP/e1" "$Q_TMP/e2" || q_fail "the ESP's boot sector and FATs differ"
mkdir -p "$Q_TMP/ef1" "$Q_TMP/ef2"
mcopy -s -n -i "$Q_TMP/e1" ::/ "$Q_TMP/ef1/" && mcopy -s -n -i "$Q_TMP/e2" ::/ "$Q_TMP/ef2/" ||
	q_fail "mcopy out of the ESP failed"
diff -r "$Q_TMP/ef1" "$Q_TMP/ef2" >/dev/null || q_fail "the ESP's files differ"
[ -s "$Q_TMP/ef2/EFI/BOOT/BOOTX64.EFI" ] || q_fail "the ESP's boot loader file is missing"
fsck.vfat -n "$Q_TMP/e2" >"$Q_TMP/fsckv.log" 2>&1 || q_fail "fsck.vfat -n: $(tail -n 5 "$Q_TMP/fsckv.log")"
# Swap: the header page (with its UUID) is there.
soff=$(h_part_off "$src" 3)
su=$(blkid -p -o value -s UUID -O "$soff" "$src")
du=$(blkid -p -o value -s UUID -O "$soff" "$dst")
[ -n "$su" ] && [ "$su" = "$du" ] || q_fail "swap UUID: source '$su', destination '$du'"

# The partition table: same partitions, valid on the bigger disk.
sfdisk -d "$src" | grep '^/' | sed 's/^[^:]*://' >"$Q_TMP/p.src"
sfdisk -d "$dst" | grep '^/' | sed 's/^[^:]*://' >"$Q_TMP/p.dst"
diff "$Q_TMP/p.src" "$Q_TMP/p.dst" >/dev/null || q_fail "partitions differ: $(diff "$Q_TMP/p.src" "$Q_TMP/p.dst")"
sfdisk --verify "$dst" >"$Q_TMP/verify.txt" 2>&1 || q_fail "sfdisk --verify: $(cat "$Q_TMP/verify.txt")"
grep -q "No errors detected" "$Q_TMP/verify.txt" || q_fail "sfdisk --verify: $(cat "$Q_TMP/verify.txt")"

# Only used blocks on the wire: at least the file data, at most the used
# ext4 blocks plus the ESP's non-zero bytes plus 4 MiB of slack.
sent=$(h_json_field "$Q_TMP/ev.json" summary bytes_sent)
unused=$(h_json_field "$Q_TMP/ev.json" summary skipped_unused)
bs=$(dumpe2fs -h "$Q_TMP/s2" 2>/dev/null | sed -n 's/^Block size: *//p')
bc=$(dumpe2fs -h "$Q_TMP/s2" 2>/dev/null | sed -n 's/^Block count: *//p')
fb=$(dumpe2fs -h "$Q_TMP/s2" 2>/dev/null | sed -n 's/^Free blocks: *//p')
used=$(((bc - fb) * bs))
espnz=$(h_extract "$src" "$eoff" "$esize" /dev/stdout | python3 -c 'import sys
b = sys.stdin.buffer.read()
print(sum(1 for i in range(0, len(b), 4096) if b[i:i+4096].strip(b"\0")) * 4096)')
[ "$sent" -ge $((40 << 20)) ] || q_fail "sent $sent bytes, less than the 40 MiB of files"
[ "$sent" -le $((used + espnz + (4 << 20))) ] ||
	q_fail "sent $sent bytes, more than used ext4 $used + ESP $espnz + 4 MiB"
[ "$unused" -gt $((60 << 20)) ] || q_fail "only $unused bytes skipped as unused"
grep -q '"event":"verify"' "$Q_TMP/ev.json" || q_fail "no verify event with --checksum"
echo "ok: sent $sent bytes for $used used ext4 bytes + $espnz ESP bytes; skipped $unused unused"
