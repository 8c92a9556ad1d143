# qemu-tests/lib.sh - sourced by every qemu-tests/NN-name/test.sh (bash).
#
# Boots the real artifacts (build/out) under QEMU in the background, one VM
# at a time per case, with the console (ttyS0) and the result port (ttyS1)
# in files of the case's own temp dir, and the guest's port 443 forwarded to
# a free port on 127.0.0.1. Every VM runs under `timeout` and is killed when
# the case exits, however it exits. On failure the temp dir is kept and the
# tail of each console log is printed.
#
# A case: `. "$(dirname "$0")/../lib.sh"`, then q_need, q_boot, q_wait_log,
# q_ferry ..., and exit 0 (pass), 77 (skip: q_skip REASON) or fail (q_fail).
#
# Environment: FERRY_OUT (build/out), FERRY (the agent, $FERRY_OUT/ferry),
# QEMU (qemu-system-x86_64), Q_VM_TIMEOUT (hard limit per VM, 300 s),
# Q_KEEP=1 (keep the temp dir even on success), Q_ACCEL (tcg; kvm where
# KVM works: then -cpu host).
# shellcheck shell=bash disable=SC2034 # Q_* globals are read by the cases

set -euo pipefail

Q_CASE_DIR=$(cd "$(dirname "$0")" && pwd)
Q_NAME=$(basename "$Q_CASE_DIR")
Q_TOP=$(cd "$Q_CASE_DIR/../.." && pwd)
FERRY_OUT=${FERRY_OUT:-$Q_TOP/build/out}
FERRY=${FERRY:-$FERRY_OUT/ferry}
QEMU=${QEMU:-qemu-system-x86_64}
OVMF=${OVMF:-/usr/share/ovmf/OVMF.fd}
Q_VM_TIMEOUT=${Q_VM_TIMEOUT:-300}
Q_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferry-qemu-$Q_NAME.XXXXXX")
Q_BOOTS=0
Q_PIDS=()
# Commands run (eval, last first) when the case exits, after its
# processes are stopped: network namespaces, mounts, loop devices.
Q_CLEANUP=()

# Set by q_boot for the VM it started (read by the cases).
Q_PORT=
Q_SERIAL=
Q_RESULT=
Q_CONSOLE_IN=
Q_PID=
Q_T0=

q_log() { printf '%s: %s\n' "$Q_NAME" "$*"; }

q_fail() {
	printf '%s: FAIL: %s\n' "$Q_NAME" "$*" >&2
	exit 1
}

q_skip() {
	printf 'SKIP: %s\n' "$*"
	exit 77
}

q_now() { date +%s.%N; }

# q_elapsed T0: seconds since T0 with one decimal.
q_elapsed() { awk -v a="$1" -v b="$(q_now)" 'BEGIN { printf "%.1f", b - a }'; }

q_stop() {
	local pid
	for pid in "${Q_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${Q_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	Q_PIDS=()
	# QEMU itself, in case its timeout wrapper died first.
	local f
	for f in "$Q_TMP"/boot*.qemu.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null || true)
		if [ -n "$pid" ] && [ -d "/proc/$pid" ] &&
			grep -q qemu "/proc/$pid/comm" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
}

_q_exit() {
	local rc=$?
	trap - EXIT INT TERM
	q_stop
	local c
	for ((c = ${#Q_CLEANUP[@]} - 1; c >= 0; c--)); do
		eval "${Q_CLEANUP[c]}" >/dev/null 2>&1 || true
	done
	# Anything else the case left in the background (an agent session).
	local j
	for j in $(jobs -p); do
		kill "$j" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		local log
		for log in "$Q_TMP"/boot*.serial.log; do
			[ -f "$log" ] || continue
			printf '%s: --- last 30 lines of %s\n' "$Q_NAME" "$log" >&2
			tail -n 30 "$log" | tr -d '\r' | sed 's/^/    | /' >&2
		done
		for log in "$Q_TMP"/boot*.result "$Q_TMP"/boot*.qemu.log; do
			[ -s "$log" ] || continue
			printf '%s: --- %s\n' "$Q_NAME" "$log" >&2
			tail -n 10 "$log" | sed 's/^/    | /' >&2
		done
		printf '%s: logs kept in %s\n' "$Q_NAME" "$Q_TMP" >&2
	elif [ "${Q_KEEP:-0}" = 1 ]; then
		printf '%s: logs kept in %s\n' "$Q_NAME" "$Q_TMP"
	else
		rm -rf "$Q_TMP"
	fi
	exit "$rc"
}
trap _q_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# q_need FILE...: skip the case when an artifact or tool is missing.
q_need() {
	local f
	for f in "$@"; do
		case "$f" in
		*/*) [ -e "$f" ] || q_skip "$f missing (run make)" ;;
		*) command -v "$f" >/dev/null || q_skip "$f not installed" ;;
		esac
	done
}

# q_free_port: a TCP port on 127.0.0.1 that nothing listens on now.
q_free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

_q_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# q_boot MODE [OPTIONS]: starts a VM in the background and returns once
# QEMU is up (its host port listens). MODE: kernel (direct kernel boot of
# vmlinuz + initramfs), iso-bios, iso-uefi, pxe.
#   --disk BYTES      add a zero-filled raw virtio disk of that size (repeat)
#   --disk-file PATH  add an existing raw image as a virtio disk (after --disk)
#   --drive SPEC      add a virtio disk from a -drive SPEC (after those), e.g.
#                     file=blkdebug:CONF:IMG,format=raw for injected errors
#   --initrd-add CPIO append a cpio archive to the initramfs (kernel mode): its
#                     files are added to (or replace) the live environment's
#   --append ARGS     extra kernel arguments (kernel mode only)
#   --interactive     console input through $Q_CONSOLE_IN (q_type)
#   --mem MIB         guest memory (512)
# Sets Q_PORT, Q_SERIAL (console log), Q_RESULT (result-port file),
# Q_CONSOLE_IN, Q_PID, Q_T0 (time just before QEMU started).
q_boot() {
	local mode=$1
	shift
	local append="" interactive=0 mem=512 disks=() files=() drives=() initrd_add=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--disk) disks+=("$2"); shift 2 ;;
		--disk-file) files+=("$2"); shift 2 ;;
		--drive) drives+=("$2"); shift 2 ;;
		--initrd-add) initrd_add=$2; shift 2 ;;
		--append) append="$append $2"; shift 2 ;;
		--interactive) interactive=1; shift ;;
		--mem) mem=$2; shift 2 ;;
		*) q_fail "q_boot: unknown option $1" ;;
		esac
	done

	Q_BOOTS=$((Q_BOOTS + 1))
	local b=$Q_TMP/boot$Q_BOOTS
	Q_SERIAL=$b.serial.log
	Q_RESULT=$b.result
	Q_CONSOLE_IN=
	: >"$Q_SERIAL"
	: >"$Q_RESULT"

	local accel=(-accel tcg -cpu max)
	[ "${Q_ACCEL:-tcg}" = kvm ] && accel=(-accel kvm -cpu host)
	local args=("${accel[@]}" -nodefaults -no-reboot -m "$mem"
		-display none -pidfile "$b.qemu.pid")
	if [ "$interactive" = 1 ]; then
		# QEMU opens PATH.in and PATH.out read-write, so neither blocks.
		mkfifo "$b.console.in" "$b.console.out"
		args+=(-chardev "pipe,id=con,path=$b.console")
		Q_CONSOLE_IN=$b.console.in
	else
		args+=(-chardev "file,id=con,path=$Q_SERIAL")
	fi
	args+=(-serial chardev:con
		-chardev "file,id=res,path=$Q_RESULT" -serial chardev:res)

	local i=0 size f
	for size in "${disks[@]}"; do
		truncate -s "$size" "$b.disk$i.img"
		args+=(-drive "file=$b.disk$i.img,if=virtio,format=raw")
		i=$((i + 1))
	done
	for f in "${files[@]}"; do
		args+=(-drive "file=$f,if=virtio,format=raw")
	done
	for f in "${drives[@]}"; do
		args+=(-drive "$f,if=virtio")
	done

	local netopt="" nic=virtio-net-pci
	case "$mode" in
	kernel)
		# panic=-1 with -no-reboot: a dead PID 1 ends the VM at once
		# instead of leaving the case to its timeout.
		local initrd=$FERRY_OUT/initramfs.cpio.gz
		if [ -n "$initrd_add" ]; then
			# The kernel unpacks concatenated archives in order; each
			# must start on a 4-byte boundary (zeros in between are
			# skipped).
			cp "$initrd" "$b.initrd"
			truncate -s %512 "$b.initrd"
			cat "$initrd_add" >>"$b.initrd"
			initrd=$b.initrd
		fi
		args+=(-kernel "$FERRY_OUT/vmlinuz" -initrd "$initrd"
			-append "console=ttyS0,115200 panic=-1 ferry.result=/dev/ttyS1$append")
		;;
	iso-bios | iso-uefi)
		# The CD on AHCI, as on most real and cloud machines: the
		# kernel sees it (sr0), so the tests check that it is skipped.
		# shellcheck disable=SC2054 # commas belong to QEMU options
		args+=(-device ahci,id=ahci
			-drive "if=none,id=cd,file=$FERRY_OUT/ferry-live.iso,media=cdrom,format=raw,readonly=on"
			-device ide-cd,drive=cd,bus=ahci.0,bootindex=0)
		[ "$mode" = iso-uefi ] && args+=(-bios "$OVMF")
		;;
	pxe)
		# SeaBIOS runs the NIC's iPXE option ROM (ipxe-qemu), which
		# fetches pxelinux.0 from slirp's built-in TFTP server.
		netopt=",tftp=$FERRY_OUT/pxe,bootfile=pxelinux.0"
		args+=(-boot order=n)
		;;
	*) q_fail "q_boot: unknown mode $mode" ;;
	esac

	for _ in 1 2 3; do
		Q_PORT=$(q_free_port)
		local nargs=(-netdev "user,id=n0$netopt,hostfwd=tcp:127.0.0.1:$Q_PORT-:443"
			-device "$nic,netdev=n0,bootindex=1")
		[ "$mode" = pxe ] && nargs[3]="$nic,netdev=n0,bootindex=0"
		printf '%s\n' "$QEMU ${args[*]} ${nargs[*]}" >"$b.cmdline"
		Q_T0=$(q_now)
		timeout -k 5 "$Q_VM_TIMEOUT" "$QEMU" "${args[@]}" "${nargs[@]}" \
			</dev/null >"$b.qemu.log" 2>&1 &
		Q_PID=$!
		Q_PIDS+=("$Q_PID")
		if [ "$interactive" = 1 ]; then
			cat "$b.console.out" >"$Q_SERIAL" &
			Q_PIDS+=("$!")
		fi
		# QEMU binds the forwarded port before it runs the guest.
		local n=0
		while ! _q_listening "$Q_PORT"; do
			if ! kill -0 "$Q_PID" 2>/dev/null; then
				break
			fi
			n=$((n + 1))
			[ "$n" -lt 300 ] || q_fail "QEMU did not open port $Q_PORT in 30 s"
			sleep 0.1
		done
		_q_listening "$Q_PORT" && return 0
		wait "$Q_PID" 2>/dev/null || true
		if grep -qi 'forward' "$b.qemu.log"; then
			q_log "port $Q_PORT was taken, retrying"
			q_stop
			continue
		fi
		cat "$b.qemu.log" >&2
		q_fail "QEMU exited at start (see $b.qemu.log)"
	done
	q_fail "no free port after 3 tries"
}

# q_alive: true while the last VM's QEMU runs.
q_alive() { kill -0 "$Q_PID" 2>/dev/null; }

# q_wait_log FILE REGEX TIMEOUT: waits until a line of FILE matches the
# extended REGEX; fails early when the VM is gone. Prints the line.
q_wait_log() {
	local file=$1 re=$2 limit=$3
	local t0 line
	t0=$(date +%s)
	while :; do
		# -a: a console log holds escape sequences and stray bytes.
		if line=$(grep -a -E -m1 -- "$re" "$file" 2>/dev/null); then
			printf '%s\n' "${line//$'\r'/}"
			return 0
		fi
		if ! q_alive; then
			# One last look: the line may have landed as QEMU exited.
			if line=$(grep -a -E -m1 -- "$re" "$file" 2>/dev/null); then
				printf '%s\n' "${line//$'\r'/}"
				return 0
			fi
			q_log "VM exited while waiting for /$re/ in ${file##*/}" >&2
			return 1
		fi
		if [ $(($(date +%s) - t0)) -ge "$limit" ]; then
			q_log "timed out after ${limit}s waiting for /$re/ in ${file##*/}" >&2
			return 1
		fi
		sleep 0.2
	done
}

# q_count_log FILE REGEX: how many lines of FILE match.
q_count_log() { grep -a -c -E -- "$2" "$1" || true; }

# q_wait_count FILE REGEX N TIMEOUT: waits until more than N lines match.
q_wait_count() {
	local file=$1 re=$2 n=$3 limit=$4 t0
	t0=$(date +%s)
	while [ "$(q_count_log "$file" "$re")" -le "$n" ]; do
		q_alive || return 1
		[ $(($(date +%s) - t0)) -lt "$limit" ] || return 1
		sleep 0.2
	done
}

# q_token FILE TIMEOUT: waits for the banner's token line, prints the token.
Q_TOKEN_RE='token +([A-Z2-7]{4}(-[A-Z2-7]{4}){7})'
q_token() {
	local line
	line=$(q_wait_log "$1" "$Q_TOKEN_RE" "$2") || return 1
	[[ $line =~ $Q_TOKEN_RE ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}

# q_type TEXT: types TEXT and Enter on the console (--interactive boots).
q_type() {
	[ -n "$Q_CONSOLE_IN" ] || q_fail "q_type needs q_boot --interactive"
	printf '%s\r' "$1" >"$Q_CONSOLE_IN"
}

# q_ferry ARGS...: the agent under a timeout; its own exit status.
q_ferry() { timeout -k 5 "${Q_FERRY_TIMEOUT:-120}" "$FERRY" "$@"; }

# q_json_disks FILE: "name size" per disk of a `ferry status --json` reply.
q_json_disks() {
	python3 -c 'import json, sys
obj = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        o = json.loads(line)
        if o.get("event") == "status":
            obj = o
if obj is None:
    sys.exit("no status object in " + sys.argv[1])
for d in obj["disks"]:
    print(d["name"], d["size"])' "$1"
}

# q_expect_disks FILE "vda 67108864" ...: the reply lists exactly these.
q_expect_disks() {
	local file=$1 got want
	shift
	got=$(q_json_disks "$file") || q_fail "bad JSON from ferry status: $(head -c 400 "$file")"
	want=$(printf '%s\n' "$@")
	[ "$got" = "$want" ] || q_fail "disks: want [${want//$'\n'/, }], got [${got//$'\n'/, }]"
}
