# qemu-tests/disk.sh - sourced (bash): boots a disk image by itself, through
# the bootloader installed on it (no -kernel), and waits for the test
# system's marker on the serial console (images from scripts/mkdisk.sh).
#
#   boot_disk IMG [bios|uefi] [EXTRA QEMU ARGS...]
#
# bios: SeaBIOS (QEMU's default firmware); uefi: OVMF ($OVMF). The image is
# the first virtio disk (vda) and the only boot device; extra disks or
# options go in EXTRA (e.g. -drive file=X,if=virtio,format=raw, -snapshot).
# Returns 0 once a console line matches $BOOT_MARKER, 1 when the VM exits
# or $BOOT_TIMEOUT passes first. QEMU is always stopped before it returns:
# a --test image powers itself off after the marker (given BOOT_EXIT_WAIT
# seconds to do so), any other is killed.
#
# Sets:
#   BOOT_LOG      the serial log (kept; in $Q_TMP when lib.sh is sourced,
#                 so lib.sh prints its tail when the case fails)
#   BOOT_SECS     seconds from QEMU's start to the marker (one decimal)
#   BOOT_LINE     the marker line
#   BOOT_OFF      1 when the guest powered itself off after the marker
# Environment (optional):
#   BOOT_MARKER   extended regex ('^FERRY-TEST: ')
#   BOOT_TIMEOUT  seconds to wait for the marker (240)
#   BOOT_EXIT_WAIT seconds to wait for a power-off after it (15)
#   BOOT_MEM      guest MiB (256)
#   BOOT_IF       how the disk is attached: virtio (default), ahci (sda) or
#                 nvme (nvme0n1)
#   QEMU, OVMF    as in lib.sh
# shellcheck shell=bash disable=SC2034,SC2054 # BOOT_* are read by the cases; commas belong to QEMU options

QEMU=${QEMU:-qemu-system-x86_64}
OVMF=${OVMF:-/usr/share/ovmf/OVMF.fd}
BOOT_LOG=
BOOT_SECS=
BOOT_LINE=
BOOT_OFF=0
_BOOT_N=0

_boot_now() { date +%s.%N; }
_boot_since() { awk -v a="$1" -v b="$(_boot_now)" 'BEGIN { printf "%.1f", b - a }'; }

boot_disk() {
	local img=$1 fw=${2:-bios}
	shift $(($# >= 2 ? 2 : 1))
	local marker=${BOOT_MARKER:-^FERRY-TEST: }
	local limit=${BOOT_TIMEOUT:-240} exit_wait=${BOOT_EXIT_WAIT:-15}
	local dir=${Q_TMP:-${TMPDIR:-/tmp}}

	BOOT_LINE='' BOOT_SECS='' BOOT_OFF=0
	[ -f "$img" ] || { echo "boot_disk: $img: no such image" >&2; return 1; }
	_BOOT_N=$((_BOOT_N + 1))
	# boot*.serial.log / boot*.qemu.pid: lib.sh's names, so its cleanup
	# and failure report cover these VMs too.
	local b
	b=$dir/bootdisk$_BOOT_N-$$-$fw
	BOOT_LOG=$b.serial.log
	: >"$BOOT_LOG"

	local args=(-accel tcg -cpu max -nodefaults -no-reboot -m "${BOOT_MEM:-256}"
		-display none -serial "file:$BOOT_LOG" -pidfile "$b.qemu.pid")
	case "$fw" in
	bios) ;;
	uefi)
		[ -f "$OVMF" ] || { echo "boot_disk: $OVMF missing (apt-get install ovmf)" >&2; return 1; }
		args+=(-bios "$OVMF")
		;;
	*) echo "boot_disk: firmware must be bios or uefi, not '$fw'" >&2; return 1 ;;
	esac
	# -drive if=none + -device with bootindex=0: the same virtio-blk disk
	# as if=virtio, but it stays the boot disk whatever EXTRA adds.
	args+=(-drive "file=$img,if=none,id=bootdisk,format=raw")
	case "${BOOT_IF:-virtio}" in
	virtio) args+=(-device virtio-blk-pci,drive=bootdisk,bootindex=0) ;;
	ahci) args+=(-device ahci,id=ahci0 -device ide-hd,drive=bootdisk,bus=ahci0.0,bootindex=0) ;;
	nvme) args+=(-device nvme,drive=bootdisk,serial=ferry0,bootindex=0) ;;
	*) echo "boot_disk: BOOT_IF must be virtio, ahci or nvme" >&2; return 1 ;;
	esac
	args+=("$@")
	printf '%s\n' "$QEMU ${args[*]}" >"$b.cmdline"

	local t0 pid line rc=1
	t0=$(_boot_now)
	timeout -k 5 $((limit + exit_wait + 30)) "$QEMU" "${args[@]}" \
		</dev/null >"$b.qemu.log" 2>&1 &
	pid=$!
	# lib.sh's q_stop kills what is listed here when the case exits.
	if declare -p Q_PIDS >/dev/null 2>&1; then
		Q_PIDS+=("$pid")
	fi
	while :; do
		if line=$(grep -a -E -m1 -- "$marker" "$BOOT_LOG" 2>/dev/null); then
			BOOT_SECS=$(_boot_since "$t0")
			BOOT_LINE=${line//$'\r'/}
			rc=0
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			if line=$(grep -a -E -m1 -- "$marker" "$BOOT_LOG" 2>/dev/null); then
				BOOT_SECS=$(_boot_since "$t0")
				BOOT_LINE=${line//$'\r'/}
				rc=0
			else
				echo "boot_disk: QEMU exited before /$marker/ ($fw, $(_boot_since "$t0") s)" >&2
				[ -s "$b.qemu.log" ] && sed 's/^/    qemu: /' "$b.qemu.log" >&2
			fi
			break
		fi
		if [ "$(_boot_since "$t0" | cut -d. -f1)" -ge "$limit" ]; then
			echo "boot_disk: no /$marker/ within ${limit}s ($fw)" >&2
			break
		fi
		sleep 0.2
	done

	if [ "$rc" = 0 ]; then
		# A --test image powers off right after the marker.
		local n=0
		while kill -0 "$pid" 2>/dev/null && [ "$n" -lt $((exit_wait * 5)) ]; do
			sleep 0.2
			n=$((n + 1))
		done
		kill -0 "$pid" 2>/dev/null || BOOT_OFF=1
	fi
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	rm -f "$b.qemu.pid"
	return "$rc"
}

# boot_field NAME: the value of the last "FERRY-TEST-NAME: ..." line of the
# last boot's console (e.g. boot_field DF -> "/ 203000 30000 160000").
boot_field() {
	grep -a "^FERRY-TEST-$1: " "$BOOT_LOG" 2>/dev/null | tail -n 1 | tr -d '\r' |
		sed "s/^FERRY-TEST-$1: //"
}
