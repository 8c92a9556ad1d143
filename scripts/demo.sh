#!/bin/bash
# make demo: the whole job, end to end, on this machine.
#  1. a small bootable "server" disk: GPT, ESP, swap, ext4 root with a
#     BusyBox system and our kernel, extlinux and GRUB installed for real;
#  2. the ferry live environment booted in QEMU with a larger blank disk;
#  3. ferry migrate --grow --checksum from the host, with its progress;
#  4. the destination disk booted alone, through its own bootloader.
# Needs root (the bootloader install loop-mounts the image). QEMU runs
# under TCG here, so the copy runs at ~20 MB/s: the disk is small.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/out
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (the bootloader install needs a loop mount)" >&2; exit 1; }

say "1. A source server disk (GPT: BIOS boot, ESP, swap, ext4 root with a BusyBox system)"
scripts/mkdisk.sh --layout gpt --size 256M --marker "DEMO: the migrated server is up" "$work/server.img"

say "2. The destination: the ferry live environment in QEMU with a blank 512 MiB disk"
truncate -s 512M "$work/dest.img"
token=$("$OUT/ferry" token)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
qemu-system-x86_64 -accel tcg -cpu max -nodefaults -no-reboot -m 512 -display none \
	-kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
	-append "console=ttyS0,115200 panic=-1 ferry.token=$token" \
	-drive "file=$work/dest.img,if=virtio,format=raw" \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:443" -device virtio-net-pci,netdev=n0 \
	-serial "file:$work/live.log" </dev/null >/dev/null 2>&1 &
qpid=$!
"$OUT/ferry" status --to "127.0.0.1:$port" --token "$token" --wait 120
echo "(its console:)"
sed -n '/==== ferry live/,/=====/p' "$work/live.log" | tr -d '\r' | tail -n 12

say "3. ferry migrate --grow --checksum (only used blocks go over TLS)"
"$OUT/ferry" migrate --to "127.0.0.1:$port" --token "$token" --disk "$work/server.img=vda" \
	--grow --checksum --handoff poweroff --state-dir "$work/state"
for _ in $(seq 1 150); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true
qpid=

say "4. The destination disk, booted alone through its own bootloader"
qemu-system-x86_64 -accel tcg -cpu max -nodefaults -no-reboot -m 256 -display none \
	-device virtio-blk-pci,drive=d0,bootindex=0 -drive "if=none,id=d0,file=$work/dest.img,format=raw" \
	-serial "file:$work/boot.log" </dev/null >/dev/null 2>&1 &
qpid=$!
for _ in $(seq 1 600); do
	grep -aq "DEMO: the migrated server is up" "$work/boot.log" 2>/dev/null && break
	kill -0 "$qpid" 2>/dev/null || break
	sleep 0.2
done
tr -d '\r' <"$work/boot.log" | grep -a -E '^(FERRY-TEST-(DF|BLOCK|FSTAB|DATA)|DEMO:)' || true
grep -aq "DEMO: the migrated server is up" "$work/boot.log" || {
	echo "demo: the migrated disk did not boot; its console:" >&2
	tail -n 30 "$work/boot.log" >&2
	exit 1
}
say "Done: the server was migrated and boots on its new (bigger) disk."
