#!/bin/bash
# bench/run.sh - ferry side by side with the tools an operator would use
# instead, on the same data in the same run, in host mode over 127.0.0.1:
# `ferry-init serve` with file-backed disks and the agent reading image
# files, all on tmpfs, so the network stack, TLS, hashing and the programs
# are measured, not a disk. It owns the data, the contenders' daemons and
# the measuring; it never changes the build, and outside its tmpfs work
# directory writes only bench/RESULTS.md (full runs of every case) and the
# contenders' packages (bench/deps.sh).
#
#   bench/run.sh [--smoke] [--reps N] [--cases "1 2 ..."] [--keep]
#
# Every contender of a case runs in turn, round after round, the order
# rotated each round (A B C, B C A, ...), so slow drift in the machine's
# load falls on all of them; ratios ferry/contender are taken pair by pair
# within a round. Wire bytes come from bench/countproxy.py, a splice(2)
# forwarder every networked contender goes through in an extra, untimed
# first round (the timed rounds connect directly); peak RSS and CPU time
# from /usr/bin/time -v around each side. Every result is checked (cmp,
# e2fsck -fn) before it counts.
#
# --smoke: tiny sizes, one timed round (after the counting one), one
# boot; fails loudly (exit 1) when a contender or ferry breaks; prints the
# tables instead of writing RESULTS.md (as does a run of some --cases).
# The last line is "N passed, N failed, N skipped" (a case is one test; a
# case whose ferry feature has not landed is "not yet" and counted as
# skipped, though its contenders still run and must work).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
OUT=${FERRY_OUT:-$root/build/out}
FERRY=$OUT/ferry
FERRY_INIT=$OUT/ferry-init
PY=${PYTHON:-python3}

ALL_CASES="1 2 3 4 5 6 7 8 9 10 11"
SMOKE=0 REPS='' CASES=$ALL_CASES KEEP=0
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) SMOKE=1; shift ;;
	--reps) REPS=$2; shift 2 ;;
	--cases) CASES=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
done

GiB=$((1 << 30)) MiB=$((1 << 20))
if [ "$SMOKE" = 1 ]; then
	REPS=${REPS:-1}
	C1_BYTES=$((32 * MiB))   # case 1 (and 3): raw incompressible disk
	C2_BYTES=$((256 * MiB))  # case 2 (and 4): ext4 image ...
	C2_FILES_MIB=90          # ... with this much in files
	C7_BYTES=$((512 * MiB))  # case 7: XFS image (mkfs.xfs needs 300 MiB) ...
	C7_FILES_MIB=90          # ... with this much in files ...
	C7_GONE_MIB=64           # ... and this much written, then deleted
	C10_BYTES=$((512 * MiB)) # case 10: btrfs image ...
	C10_FILES_MIB=90         # ... with this much in files ...
	C10_GONE_MIB=64          # ... and this much written, then deleted
	BOOTS=1
	TMO=60                   # seconds any one command may take
	NEED_MIB=1024            # tmpfs and memory the run needs
	C8_MIB="512"             # case 8: space in use on the live ext4
	C9="2 32 8"              # case 9: hosts, image MiB, MiB of files each
	C11_BYTES=$((32 * MiB))  # case 11: the head of case 1's image, direct and relayed
else
	REPS=${REPS:-3}
	C1_BYTES=$((2 * GiB))
	C2_BYTES=$((4 * GiB))
	C2_FILES_MIB=1434        # 1.4 GiB
	C7_BYTES=$((4 * GiB))
	C7_FILES_MIB=1536        # 1.5 GiB
	C7_GONE_MIB=1024
	C10_BYTES=$((3 * GiB))
	C10_FILES_MIB=1024
	C10_GONE_MIB=512
	BOOTS=5
	TMO=600
	NEED_MIB=$((9 * 1024))
	C8_MIB="1024 4096 16384"
	C9="8 64 32"
	C11_BYTES=$((512 * MiB))
fi
SEED1=20240701 SEED2=20240702 SEED3=20240703 SEED7=20240707 SEED10=20240710
TAG=bench
say() { printf '%s: %s\n' "$TAG" "$*"; }
die() {
	printf '%s: %s\n' "$TAG" "$*" >&2
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

[ "$(id -u)" = 0 ] || die "needs root: a private sshd, apt-get for the contenders"
for f in "$FERRY" "$FERRY_INIT"; do
	[ -x "$f" ] || die "$f missing (run make)"
done
"$here/deps.sh" || die "bench/deps.sh could not install the contenders"
for t in nc socat openssl /usr/sbin/sshd ssh ssh-keygen partclone.ext4 partclone.xfs bmaptool \
	rsync qemu-img /usr/bin/time mkfs.ext4 e2fsck mkfs.xfs xfs_repair xfs_db unshare ss timeout \
	partclone.btrfs mkfs.btrfs btrfs "$PY"; do
	command -v "$t" >/dev/null || die "$t not found after bench/deps.sh"
done

# ---- work directory on tmpfs ---------------------------------------------
SHM=${BENCH_TMPFS:-/dev/shm}
avail=$(df -Pm "$SHM" | awk 'NR == 2 { print $4 }')
memav=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
[ "${avail:-0}" -ge "$NEED_MIB" ] ||
	die "$SHM: ${avail} MiB free, need $NEED_MIB MiB (the data lives on tmpfs)"
[ "${memav:-0}" -ge "$NEED_MIB" ] ||
	die "MemAvailable ${memav} MiB, need $NEED_MIB MiB for tmpfs data"
W=$(mktemp -d "$SHM/ferry-bench.XXXXXX") || die "mktemp in $SHM failed"
mkdir -p "$W/log" "$W/bin"
# The binaries are copied first: a rebuild during the run must not mix two
# versions of ferry in one table.
cp "$FERRY" "$FERRY_INIT" "$W/bin/" || die "cannot copy the ferry binaries"
FERRY=$W/bin/ferry
FERRY_INIT=$W/bin/ferry-init
# Every long-lived child is `timeout` (its own process group: killing it
# ends the whole command) or the proxy; `jobs -p` lists only ours.
cleanup() {
	local p
	for p in $(jobs -p); do
		kill "$p" 2>/dev/null
	done
	for p in "$W"/*.sshd.pid; do
		[ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "$KEEP" = 1 ]; then
		say "kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

REC=$W/records.jsonl
META=$W/meta.txt
: >"$REC"
: >"$META"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

# ---- small helpers ---------------------------------------------------------
free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
# wait_listen PORT PID: until PORT listens (10 s); fails if PID died.
wait_listen() {
	local i
	for i in $(seq 1 200); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
# tv FILE CMD...: CMD under GNU time -v (peak RSS, CPU) and the timeout.
# timeout is outermost: it puts the command in its own process group and
# signals all of it, which GNU time alone would not.
tv() {
	local f=$1
	shift
	timeout -k 5 "$TMO" /usr/bin/time -v -o "$f" "$@"
}
# tv_bg FILE CMD... &: the same in the background. exec, so that $! is
# timeout itself and not a subshell around it (killing that would leave
# the command running).
tv_bg() {
	local f=$1
	shift
	exec timeout -k 5 "$TMO" /usr/bin/time -v -o "$f" "$@"
}
# tv_rss FILE...: the largest peak RSS (KiB) among the measured commands.
tv_rss() { awk -F': ' '/Maximum resident set size/ { if ($2 > m) m = $2 } END { print m + 0 }' "$@"; }
# tv_cpu FILE...: user + system seconds, summed.
tv_cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$@"; }
# reap PID SENDER_RC: waits for a receiver after its sender ended: a
# while when the sender succeeded (the last writes land), briefly when it
# failed (a receiver whose peer never came would wait for ever). Returns
# the receiver's exit status; 143 if it had to be stopped.
reap() {
	local pid=$1 grace=$((SMOKE ? 10 : 60)) i
	[ "$2" = 0 ] || grace=2
	for i in $(seq 1 $((grace * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && kill "$pid" 2>/dev/null
	wait "$pid"
}
tail_log() { [ -f "$1" ] && tail -n "${2:-8}" "$1" | sed 's/^/    | /'; }

# The result of one contender run, set by the run_* functions.
# R_PCPU: the proxy's own CPU seconds (its overhead, not the contender's).
r_reset() {
	R_SECS='' R_UP=null R_DOWN=null R_RSS_S=null R_RSS_R=null R_CPU_S=null R_CPU_R=null
	R_PCPU=null R_LISTEN=null R_ERR='' R_NOTE=''
}
r_reset

# ---- the counting proxy ----------------------------------------------------
# Only in the counting round (COUNTING=1): the timed rounds connect
# directly, so the proxy's hop (a third busy process on a small machine)
# is in no time. proxy_start then only passes the port through.
COUNTING=0
P_PID='' P_PORT='' P_REP=''
proxy_start() {
	if [ "$COUNTING" = 0 ]; then
		P_PORT=$1
		return 0
	fi
	local pf=$W/proxy.port
	P_REP=$W/proxy.report
	rm -f "$pf" "$P_REP"
	"$PY" "$here/countproxy.py" --to "127.0.0.1:$1" --port-file "$pf" --report "$P_REP" \
		2>"$W/log/proxy.err" &
	P_PID=$!
	local i
	for i in $(seq 1 200); do
		[ -s "$pf" ] && break
		kill -0 "$P_PID" 2>/dev/null || { R_ERR="countproxy died: $(cat "$W/log/proxy.err")"; return 1; }
		sleep 0.02
	done
	P_PORT=$(cat "$pf" 2>/dev/null)
	[ -n "$P_PORT" ] || { R_ERR="countproxy did not listen"; return 1; }
}
# proxy_stop: ends the proxy, sets R_UP and R_DOWN.
proxy_stop() {
	[ "$COUNTING" = 1 ] || return 0
	kill -TERM "$P_PID" 2>/dev/null
	wait "$P_PID" 2>/dev/null
	[ -s "$P_REP" ] || { R_ERR="countproxy wrote no report"; return 1; }
	R_UP=$(sed -n 's/.*up=\([0-9]*\).*/\1/p' "$P_REP")
	R_DOWN=$(sed -n 's/.*down=\([0-9]*\).*/\1/p' "$P_REP")
	R_PCPU=$(sed -n 's/.*cpu=\([0-9.]*\).*/\1/p' "$P_REP")
}

# ---- a private sshd (for ssh and rsync) ------------------------------------
SSH_DIR=$W/ssh
ssh_setup() {
	[ -f "$SSH_DIR/client" ] && return 0
	mkdir -p "$SSH_DIR" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host" || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/client" || return 1
	cp "$SSH_DIR/client.pub" "$SSH_DIR/authorized_keys"
	chmod 600 "$SSH_DIR/authorized_keys"
}
# sshd_start: one sshd per run under GNU time, so its peak RSS and CPU
# (sessions included: sshd reaps them) are the receiving side's.
S_PORT='' S_PID='' S_TV=''
sshd_start() {
	ssh_setup || { R_ERR="ssh-keygen failed"; return 1; }
	S_PORT=$(free_port)
	S_TV=$1
	local pidf=$W/$S_PORT.sshd.pid
	cat >"$SSH_DIR/sshd_config" <<EOT
ListenAddress 127.0.0.1
Port $S_PORT
HostKey $SSH_DIR/host
AuthorizedKeysFile $SSH_DIR/authorized_keys
PidFile $pidf
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
Ciphers aes128-gcm@openssh.com
Compression no
LogLevel ERROR
EOT
	tv_bg "$S_TV" /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config" 2>"$W/log/sshd.err" &
	S_PID=$!
	wait_listen "$S_PORT" "$S_PID" || { R_ERR="sshd did not listen: $(cat "$W/log/sshd.err")"; return 1; }
}
sshd_stop() {
	local pidf=$W/$S_PORT.sshd.pid
	[ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
	wait "$S_PID" 2>/dev/null
	rm -f "$pidf"
}
ssh_cmd() {
	printf 'ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o Compression=no -c aes128-gcm@openssh.com -p %s' \
		"$SSH_DIR/client" "$1"
}

# ---- TLS key for the openssl/socat pipe ------------------------------------
tls_setup() {
	[ -f "$W/tls.crt" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj /CN=bench -days 2 -keyout "$W/tls.key" -out "$W/tls.crt" 2>/dev/null
}
# The suite ferry uses (BearSSL, TLS 1.2 ECDHE-ECDSA-AES128-GCM), so the
# pipe measures the same cipher, not OpenSSL's TLS 1.3 AES-256 default.
TLS_OPTS=openssl-min-proto-version=TLS1.2,openssl-max-proto-version=TLS1.2,cipher=ECDHE-ECDSA-AES128-GCM-SHA256

# ---- generic runners ---------------------------------------------------------

# ferry_run LOGBASE SUBCMD SRC DST [ARGS...]: `ferry-init serve` with DST as
# vda, `ferry SUBCMD` from SRC through the proxy. The clock runs from the
# agent's start to the receiver's exit (the receiver is listening before).
ferry_run() {
	local lb=$1 sub=$2 src=$3 dst=$4
	shift 4
	local token res port spid t0 rc
	token=$("$FERRY" token) || { R_ERR="ferry token failed"; return 1; }
	res=$lb.result
	: >"$res"
	tv_bg "$lb.recv.tv" "$FERRY_INIT" serve --listen 127.0.0.1:0 --token "$token" \
		--disk "vda=$dst" --once --result "$res" >"$lb.recv.log" 2>&1 &
	spid=$!
	local i
	for i in $(seq 1 200); do
		port=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$res")
		[ -n "$port" ] && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$port" ] || { R_ERR="ferry-init serve did not listen: $(tail -n 3 "$lb.recv.log")"; return 1; }
	proxy_start "$port" || return 1
	t0=$(now)
	rc=0
	case "$sub" in
	import) tv "$lb.send.tv" "$FERRY" import "$src" --to "127.0.0.1:$P_PORT" --token "$token" \
		--disk vda --json "$@" >"$lb.send.json" 2>"$lb.send.err" || rc=$? ;;
	*) tv "$lb.send.tv" "$FERRY" "$sub" --to "127.0.0.1:$P_PORT" --token "$token" \
		--disk "$src=vda" --json "$@" >"$lb.send.json" 2>"$lb.send.err" || rc=$? ;;
	esac
	local rrc=0
	reap "$spid" "$rc" || rrc=$?
	R_SECS=$(elapsed "$t0")
	proxy_stop || return 1
	[ "$rc" = 0 ] || { R_ERR="ferry $sub exited $rc: $(tail -n 3 "$lb.send.err")"; return 1; }
	[ "$rrc" = 0 ] || { R_ERR="ferry-init serve exited $rrc: $(tail -n 3 "$lb.recv.log")"; return 1; }
	R_RSS_S=$(tv_rss "$lb.send.tv")
	R_RSS_R=$(tv_rss "$lb.recv.tv")
	R_CPU_S=$(tv_cpu "$lb.send.tv")
	R_CPU_R=$(tv_cpu "$lb.recv.tv")
	# ferry's own count, next to the proxy's: they must agree within the
	# protocol's framing.
	local own
	own=$("$PY" -c 'import json, sys
v = ""
for l in open(sys.argv[1]):
    l = l.strip()
    if l.startswith("{"):
        o = json.loads(l)
        if o.get("event") == "summary":
            v = o.get("bytes_sent", "")
print(v)' "$lb.send.json")
	R_NOTE="ferry says bytes_sent=$own"
	# The proxy sees the frames and TLS records around ferry's payload:
	# never less. Less would mean the proxy lost count.
	if [ -n "$own" ] && [ "$R_UP" != null ] && [ "$R_UP" -lt "$own" ]; then
		R_ERR="countproxy counted $R_UP bytes, ferry says it sent $own"
		return 1
	fi
}

# pipe_run LOGBASE SEND_CMD RECV_CMD RECV_PORT: RECV_CMD listens on
# RECV_PORT, SEND_CMD connects to $PPORT (the proxy) — both are sh -c
# strings, each side measured as a whole.
pipe_run() {
	local lb=$1 send=$2 recv=$3 rport=$4 rpid t0 rc=0 rrc=0
	tv_bg "$lb.recv.tv" sh -c "$recv" >"$lb.recv.log" 2>&1 &
	rpid=$!
	wait_listen "$rport" "$rpid" || { R_ERR="receiver did not listen: $(tail -n 3 "$lb.recv.log")"; return 1; }
	proxy_start "$rport" || return 1
	t0=$(now)
	PPORT=$P_PORT tv "$lb.send.tv" sh -c "$send" >"$lb.send.log" 2>&1 || rc=$?
	reap "$rpid" "$rc" || rrc=$?
	R_SECS=$(elapsed "$t0")
	proxy_stop || return 1
	[ "$rc" = 0 ] || { R_ERR="sender exited $rc: $(tail -n 3 "$lb.send.log")"; return 1; }
	[ "$rrc" = 0 ] || { R_ERR="receiver exited $rrc: $(tail -n 3 "$lb.recv.log")"; return 1; }
	R_RSS_S=$(tv_rss "$lb.send.tv")
	R_RSS_R=$(tv_rss "$lb.recv.tv")
	R_CPU_S=$(tv_cpu "$lb.send.tv")
	R_CPU_R=$(tv_cpu "$lb.recv.tv")
}

# ssh_run LOGBASE CLIENT_CMD: a fresh sshd, CLIENT_CMD (sh -c, with $SSH
# the ssh command through the proxy) timed from its start to its end.
ssh_run() {
	local lb=$1 cmd=$2 t0 rc=0
	sshd_start "$lb.recv.tv" || return 1
	proxy_start "$S_PORT" || { sshd_stop; return 1; }
	t0=$(now)
	SSH=$(ssh_cmd "$P_PORT") tv "$lb.send.tv" sh -c "$cmd" >"$lb.send.log" 2>&1 || rc=$?
	R_SECS=$(elapsed "$t0")
	sshd_stop
	proxy_stop || return 1
	[ "$rc" = 0 ] || { R_ERR="exited $rc: $(tail -n 3 "$lb.send.log") $(tail -n 2 "$W/log/sshd.err")"; return 1; }
	R_RSS_S=$(tv_rss "$lb.send.tv")
	R_RSS_R=$(tv_rss "$lb.recv.tv")
	R_CPU_S=$(tv_cpu "$lb.send.tv")
	R_CPU_R=$(tv_cpu "$lb.recv.tv")
}

# local_run LOGBASE CMD: one local command (no network, no wire bytes).
local_run() {
	local lb=$1 cmd=$2 t0 rc=0
	t0=$(now)
	tv "$lb.send.tv" sh -c "$cmd" >"$lb.send.log" 2>&1 || rc=$?
	R_SECS=$(elapsed "$t0")
	[ "$rc" = 0 ] || { R_ERR="exited $rc: $(tail -n 3 "$lb.send.log")"; return 1; }
	R_RSS_S=$(tv_rss "$lb.send.tv")
	R_CPU_S=$(tv_cpu "$lb.send.tv")
}

# ---- records -----------------------------------------------------------------
# record CASE ID LABEL REP STATUS: one JSON line per run.
record() {
	local note=${R_ERR:-$R_NOTE}
	# shellcheck disable=SC1003 # a backslash, not a quote, is replaced
	note=$(printf '%s' "$note" | tr '\n\t"\\' '    ' | cut -c1-300)
	printf '{"case":%s,"id":"%s","label":"%s","rep":%s,"status":"%s","secs":%s,"up":%s,"down":%s,"rss_s":%s,"rss_r":%s,"cpu_s":%s,"cpu_r":%s,"pcpu":%s,"listen":%s,"note":"%s"}\n' \
		"$1" "$2" "$3" "$4" "$5" "${R_SECS:-null}" "${R_UP:-null}" "${R_DOWN:-null}" \
		"${R_RSS_S:-null}" "${R_RSS_R:-null}" "${R_CPU_S:-null}" "${R_CPU_R:-null}" \
		"${R_PCPU:-null}" "${R_LISTEN:-null}" "$note" >>"$REC"
}
# not_yet CASE ID LABEL WHY: a contender whose feature has not landed.
not_yet() {
	r_reset
	R_NOTE=$4
	record "$1" "$2" "$3" 0 notyet
}

declare -A CASE_STATE   # pass | fail | skip
case_fail() {
	CASE_STATE[$1]=fail
	printf '%s: FAIL case %s: %s\n' "$TAG" "$1" "$2" >&2
}

# rounds CASE ID... : runs the contenders round after round, the order
# rotated each round. Contender ID has run_ID (runs it, sets R_*) and
# check_ID (checks its output); prep_ID (untimed) is optional. Round 0
# counts the wire bytes through countproxy (networked contenders only;
# its times are not used); rounds 1..REPS are timed, connected directly.
# Every round's output is checked.
rounds() {
	local c=$1
	shift
	local ids=("$@") n=$# r k i id lb label fc st
	for r in $(seq 0 "$REPS"); do
		COUNTING=$((r == 0))
		st=ok
		[ "$r" = 0 ] && st=count
		for k in $(seq 0 $((n - 1))); do
			i=$(((k + r) % n))
			id=${ids[$i]}
			[ "$r" = 0 ] && [ -n "${LOCAL[$id]:-}" ] && continue
			label=${LABEL[$id]}
			lb=$W/log/c$c-$id-$r
			r_reset
			if declare -F "prep_$id" >/dev/null && ! "prep_$id" "$lb"; then
				R_ERR=${R_ERR:-"preparation failed"}
			elif "run_$id" "$lb"; then
				"check_$id" "$lb" || R_ERR=${R_ERR:-"check failed"}
			fi
			if [ -n "$R_ERR" ]; then
				record "$c" "$id" "$label" "$r" fail
				# Case 5's variants run within cases 1 and 2.
				fc=$c
				[[ $id == c[12]_s[12]z[03] ]] && fc=5
				case_fail "$fc" "$label (round $r): $R_ERR"
				tail_log "$lb.send.err" 5
				tail_log "$lb.send.log" 5
				tail_log "$lb.recv.log" 5
			elif [ "$r" = 0 ]; then
				record "$c" "$id" "$label" "$r" count
				printf '%s:   case %s count    %-34s wire %s (back %s)\n' "$TAG" "$c" \
					"$label" "$R_UP" "$R_DOWN"
			else
				record "$c" "$id" "$label" "$r" "$st"
				printf '%s:   case %s round %s  %-34s %8ss\n' "$TAG" "$c" "$r" \
					"$label" "$R_SECS"
			fi
			declare -F "post_$id" >/dev/null && "post_$id" "$lb"
		done
	done
	COUNTING=0
}
declare -A LABEL LOCAL

# fresh DST BYTES: an empty sparse destination disk, as a new VM's would be.
fresh() { rm -f "$1" && truncate -s "$2" "$1"; }
same() { cmp -s "$1" "$2" || { R_ERR="$(basename "$2") differs from $(basename "$1")"; return 1; }; }
fsck_ok() {
	e2fsck -fn "$1" >"$W/log/fsck.log" 2>&1 ||
		{ R_ERR="e2fsck -fn $(basename "$1"): $(tail -n 2 "$W/log/fsck.log" | tr '\n' ' ')"; return 1; }
}
at_least() { # at_least WHAT HAVE WANT (only where bytes were counted)
	[ "$COUNTING" = 1 ] || return 0
	if [ "$2" = null ] || [ "$2" -lt "$3" ]; then
		R_ERR="$1 $2 < $3"
		return 1
	fi
}

# ---- feature detection -------------------------------------------------------
have_sync=0 have_import=0 have_streams=0 have_compress=0
"$FERRY" sync --help >/dev/null 2>&1 && have_sync=1
"$FERRY" import --help >/dev/null 2>&1 && have_import=1
mhelp=$("$FERRY" migrate --help 2>&1)
case "$mhelp" in *--streams*) have_streams=1 ;; esac
case "$mhelp" in *--compress*) have_compress=1 ;; esac
# Case 5's variants of ferry: streams 1/2 x compression 0/3, less the
# default (plain "ferry", run in cases 1 and 2 anyway: as many streams as
# cores, at most 8, no compression).
def_streams=$(nproc)
[ "$def_streams" -gt 8 ] && def_streams=8
[ "$have_streams" = 0 ] && def_streams=1
VARIANTS=()
if [ "$have_streams" = 1 ] || [ "$have_compress" = 1 ]; then
	for s in 1 2; do
		for z in 0 3; do
			[ "$s" = 2 ] && [ "$have_streams" = 0 ] && continue
			[ "$z" = 3 ] && [ "$have_compress" = 0 ] && continue
			[ "$s$z" = "${def_streams}0" ] && continue
			VARIANTS+=("s${s}z$z")
		done
	done
fi
variant_args() {
	local v=$1 a=()
	[ "$have_streams" = 1 ] && a+=(--streams "${v:1:1}")
	[ "$have_compress" = 1 ] && a+=(--compress "${v:3:1}")
	echo "${a[@]}"
}

want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- machine -----------------------------------------------------------------
T_ALL=$(now)
meta mode "$([ "$SMOKE" = 1 ] && echo smoke || echo full)"
meta reps "$REPS"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta commit "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown) ($(git -C "$root" rev-parse --short HEAD 2>/dev/null))"
meta ferry "$("$FERRY" version 2>/dev/null | head -n 1)"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
meta cores "$(nproc)"
meta mem "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta def_streams "$def_streams"
for p in netcat-openbsd openssh-client openssh-server socat openssl partclone bmap-tools rsync qemu-utils qemu-system-x86 xfsprogs btrfs-progs; do
	meta "pkg:$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)"
done
say "$(sed -n 's/^cpu\t//p' "$META"), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
say "work directory $W ($avail MiB free on $SHM), $REPS round(s)"

IMG1=$W/c1.img      # case 1: raw, incompressible
IMG3=$W/c3.img      # case 3: IMG1 with 1 % of its 4 KiB blocks rewritten
IMG2=$W/c2.img      # case 2: ext4 with files
IMG7=$W/c7.img      # case 7: XFS with files, more written and deleted
IMG10=$W/c10.img    # case 10: btrfs with files, more written and deleted
DST=$W/dst.img

# ---- the plaintext contenders every used-block case runs -------------------------
# partclone_nc LB TOOL IMG: TOOL's image through nc, restored by TOOL -r.
partclone_nc() {
	local p
	p=$(free_port)
	pipe_run "$1" "$2 -q -c -s '$3' -o - -L '$1.pc.log' 2>'$1.send.err' | nc -N 127.0.0.1 \$PPORT" \
		"nc -l -d 127.0.0.1 $p | $2 -q -r -s - -O '$DST' -L '$1.pr.log'" "$p"
}
# dd_nc LB IMG [CONV]: the whole disk through nc; CONV adds to dd's
# notrunc (sparse: the destination's zeros stay holes, as a fresh disk's
# would read).
dd_nc() {
	local p
	p=$(free_port)
	pipe_run "$1" "dd if='$2' bs=1M status=none | nc -N 127.0.0.1 \$PPORT" \
		"nc -l -d 127.0.0.1 $p | dd of='$DST' bs=1M iflag=fullblock conv=${3:+$3,}notrunc status=none" "$p"
}

# ---- case 1: full copy of incompressible data --------------------------------
LABEL[c1_ferry]="ferry"
run_c1_ferry() { ferry_run "$1" migrate "$IMG1" "$DST"; }
prep_c1_ferry() { fresh "$DST" "$C1_BYTES"; }
check_c1_ferry() { same "$IMG1" "$DST" && at_least "wire bytes" "$R_UP" "$C1_BYTES"; }

LABEL[c1_nc]="dd | nc (plaintext)"
prep_c1_nc() { fresh "$DST" "$C1_BYTES"; }
run_c1_nc() { dd_nc "$1" "$IMG1"; }
check_c1_nc() { check_c1_ferry; }

LABEL[c1_ssh]="dd | ssh aes128-gcm"
prep_c1_ssh() { fresh "$DST" "$C1_BYTES"; }
run_c1_ssh() {
	ssh_run "$1" "dd if='$IMG1' bs=1M status=none | \$SSH root@127.0.0.1 \"dd of='$DST' bs=1M iflag=fullblock conv=notrunc status=none\""
}
check_c1_ssh() { check_c1_ferry; }

LABEL[c1_tls]="socat TLS (openssl)"
prep_c1_tls() { fresh "$DST" "$C1_BYTES" && tls_setup; }
run_c1_tls() {
	local p
	p=$(free_port)
	pipe_run "$1" "socat -u -b 262144 OPEN:'$IMG1',rdonly OPENSSL:127.0.0.1:\$PPORT,verify=0,$TLS_OPTS" \
		"socat -u -b 262144 OPENSSL-LISTEN:$p,bind=127.0.0.1,reuseaddr,cert=$W/tls.crt,key=$W/tls.key,verify=0,$TLS_OPTS OPEN:'$DST',wronly" "$p"
}
check_c1_tls() { check_c1_ferry; }

# Case 5 variants on case 1 data: c1_s2z0 etc.
for v in "${VARIANTS[@]}"; do
	LABEL[c1_$v]="ferry streams=${v:1:1} compress=${v:3:1}"
	eval "prep_c1_$v() { fresh \"\$DST\" \"\$C1_BYTES\"; }"
	eval "run_c1_$v() { ferry_run \"\$1\" migrate \"\$IMG1\" \"\$DST\" \$(variant_args $v); }"
	# Compressed runs may send less than the data: no wire floor for them.
	if [ "${v:3:1}" = 0 ]; then
		eval "check_c1_$v() { check_c1_ferry; }"
	else
		eval "check_c1_$v() { same \"\$IMG1\" \"\$DST\"; }"
	fi
done
post_rm() { rm -f "$DST"; }
for id in c1_ferry c1_nc c1_ssh c1_tls; do eval "post_$id() { post_rm; }"; done

# ---- case 11: through a relay ----------------------------------------------------
# The same migration direct and through `ferry-init serve --relay` on
# 127.0.0.1 (RELAY_PORT, allowing 127.0.0.1 on every port: the receiver's
# and the counting proxy's are picked at random).
IMG11=$W/c11.img
RELAY_PORT=
LABEL[c11_relay]="ferry through the relay"
prep_c11_relay() { fresh "$DST" "$C11_BYTES"; }
run_c11_relay() { ferry_run "$1" migrate "$IMG11" "$DST" --proxy "http://127.0.0.1:$RELAY_PORT"; }
check_c11_relay() { same "$IMG11" "$DST" && at_least "wire bytes" "$R_UP" "$C11_BYTES"; }
LABEL[c11_direct]="ferry direct"
prep_c11_direct() { fresh "$DST" "$C11_BYTES"; }
run_c11_direct() { ferry_run "$1" migrate "$IMG11" "$DST"; }
check_c11_direct() { check_c11_relay; }
post_c11_relay() { post_rm; }
post_c11_direct() { post_rm; }

# ---- case 3: incremental -------------------------------------------------------
LABEL[c3_sync]="ferry sync"
# The destination holds the old image; the source has 1 % rewritten.
prep_c3_sync() { cp "$IMG1" "$DST"; }
run_c3_sync() { ferry_run "$1" sync "$IMG3" "$DST"; }
# A sync pass is not a cutover: the receiver holds the first MiB back
# until the final pass (so a half-synced disk never looks bootable); the
# rest must be identical.
check_c3_sync() {
	cmp -s -i 1048576 "$IMG3" "$DST" ||
		{ R_ERR="dst.img differs from c3.img beyond the first MiB"; return 1; }
}
LABEL[c3_rsync]="rsync --inplace over ssh"
prep_c3_rsync() { cp "$IMG1" "$DST"; }
run_c3_rsync() {
	# --ignore-times: a block image's mtime says nothing; always compare.
	ssh_run "$1" "rsync --inplace --no-whole-file --ignore-times -e \"\$SSH\" '$IMG3' root@127.0.0.1:'$DST'"
}
check_c3_rsync() { same "$IMG3" "$DST"; }
post_c3_sync() { post_rm; }
post_c3_rsync() { post_rm; }

# ---- case 2: used blocks of an ext4 image --------------------------------------
C2_USED=0
LABEL[c2_ferry]="ferry"
prep_c2_ferry() { fresh "$DST" "$C2_BYTES"; }
run_c2_ferry() { ferry_run "$1" migrate "$IMG2" "$DST"; }
check_c2_ferry() { fsck_ok "$DST" && same "$IMG2" "$DST" && at_least "wire bytes" "$R_UP" "$C2_FILE_BYTES"; }

LABEL[c2_partclone]="partclone.ext4 | nc | partclone -r"
prep_c2_partclone() { fresh "$DST" "$C2_BYTES"; }
run_c2_partclone() { partclone_nc "$1" partclone.ext4 "$IMG2"; }
check_c2_partclone() { check_c2_ferry; }

LABEL[c2_bmap]="bmaptool create + copy (local, no network)"
LOCAL[c2_bmap]=1
prep_c2_bmap() { rm -f "$DST" "$W/c2.bmap"; }
run_c2_bmap() {
	local_run "$1" "bmaptool create -o '$W/c2.bmap' '$IMG2' && bmaptool copy --bmap '$W/c2.bmap' '$IMG2' '$DST'"
}
check_c2_bmap() { fsck_ok "$DST" && same "$IMG2" "$DST"; }

for v in "${VARIANTS[@]}"; do
	LABEL[c2_$v]="ferry streams=${v:1:1} compress=${v:3:1}"
	eval "prep_c2_$v() { fresh \"\$DST\" \"\$C2_BYTES\"; }"
	eval "run_c2_$v() { ferry_run \"\$1\" migrate \"\$IMG2\" \"\$DST\" \$(variant_args $v); }"
	if [ "${v:3:1}" = 0 ]; then
		eval "check_c2_$v() { check_c2_ferry; }"
	else
		eval "check_c2_$v() { fsck_ok \"\$DST\" && same \"\$IMG2\" \"\$DST\"; }"
	fi
	eval "post_c1_$v() { post_rm; }"
	eval "post_c2_$v() { post_rm; }"
done
for id in c2_ferry c2_partclone c2_bmap; do eval "post_$id() { post_rm; }"; done

# ---- case 7: used blocks of an XFS image ------------------------------------------
# The check mounts the result read-only in a private mount namespace (a
# mount another namespace copies would outlive our umount) and compares
# every file's SHA-256 with the source's, then xfs_repair -n.
C7_USED=0 C7_FILE_BYTES=0
xfs_sums() { # IMG OUT: sha256 of every file, sorted by name
	unshare -m --propagation private sh -c "mkdir -p '$W/c7.mnt' &&
		mount -o ro,nouuid,loop '$1' '$W/c7.mnt' &&
		(cd '$W/c7.mnt' && find . -type f -print0 | sort -z | xargs -0 sha256sum) >'$2';
		rc=\$?; umount '$W/c7.mnt'; exit \$rc"
}
xfs_ok() {
	xfs_repair -n -f "$1" >"$W/log/repair.log" 2>&1 ||
		{ R_ERR="xfs_repair -n $(basename "$1"): $(tail -n 2 "$W/log/repair.log" | tr '\n' ' ')"; return 1; }
	xfs_sums "$1" "$W/c7.dst.sums" || { R_ERR="cannot mount $(basename "$1")"; return 1; }
	cmp -s "$W/c7.sums" "$W/c7.dst.sums" || { R_ERR="the files of $(basename "$1") differ"; return 1; }
}
at_most() { # at_most WHAT HAVE LIMIT (only where bytes were counted)
	[ "$COUNTING" = 1 ] || return 0
	if [ "$2" = null ] || [ "$2" -gt "$3" ]; then
		R_ERR="$1 $2 > $3"
		return 1
	fi
}
LABEL[c7_ferry]="ferry"
prep_c7_ferry() { fresh "$DST" "$C7_BYTES"; }
run_c7_ferry() { ferry_run "$1" migrate "$IMG7" "$DST"; }
# The issue's bound: what goes over the wire is at most 1.02 x what XFS
# says is used (frames and TLS included).
check_c7_ferry() {
	xfs_ok "$DST" && at_least "wire bytes" "$R_UP" "$C7_FILE_BYTES" &&
		at_most "wire bytes" "$R_UP" "$((C7_USED + C7_USED / 50))"
}
LABEL[c7_partclone]="partclone.xfs | nc | partclone -r"
prep_c7_partclone() { fresh "$DST" "$C7_BYTES"; }
run_c7_partclone() { partclone_nc "$1" partclone.xfs "$IMG7"; }
check_c7_partclone() { xfs_ok "$DST"; }
LABEL[c7_nc]="dd | nc (whole disk, plaintext)"
prep_c7_nc() { fresh "$DST" "$C7_BYTES"; }
run_c7_nc() { dd_nc "$1" "$IMG7" sparse; }
check_c7_nc() { same "$IMG7" "$DST"; }
for id in c7_ferry c7_partclone c7_nc; do eval "post_$id() { post_rm; }"; done

# ---- case 10: used blocks of a btrfs image ----------------------------------------
# As case 7. btrfs keeps a list of the filesystems it has seen by fsid:
# the source and each copy share one, so the list is emptied after every
# mount (else a mount of the copy could open the source).
C10_USED=0 C10_FILE_BYTES=0
btrfs_sums() { # IMG OUT: sha256 of every file, sorted by name
	unshare -m --propagation private sh -c "mkdir -p '$W/c10.mnt' &&
		mount -o ro,loop '$1' '$W/c10.mnt' &&
		(cd '$W/c10.mnt' && find . -type f -print0 | sort -z | xargs -0 sha256sum) >'$2';
		rc=\$?; umount '$W/c10.mnt'; exit \$rc"
	local rc=$?
	btrfs device scan --forget >/dev/null 2>&1
	return $rc
}
btrfs_ok() {
	btrfs check --readonly "$1" >"$W/log/bcheck.log" 2>&1 ||
		{ R_ERR="btrfs check $(basename "$1"): $(tail -n 2 "$W/log/bcheck.log" | tr '\n' ' ')"; return 1; }
	btrfs_sums "$1" "$W/c10.dst.sums" || { R_ERR="cannot mount $(basename "$1")"; return 1; }
	cmp -s "$W/c10.sums" "$W/c10.dst.sums" || { R_ERR="the files of $(basename "$1") differ"; return 1; }
}
LABEL[c10_ferry]="ferry"
prep_c10_ferry() { fresh "$DST" "$C10_BYTES"; }
run_c10_ferry() { ferry_run "$1" migrate "$IMG10" "$DST"; }
# The issue's bound: at most 1.02 x what btrfs says is used (data once,
# DUP metadata and system twice) plus the first MiB ferry always sends.
check_c10_ferry() {
	btrfs_ok "$DST" && at_least "wire bytes" "$R_UP" "$C10_FILE_BYTES" &&
		at_most "wire bytes" "$R_UP" "$(((C10_USED + MiB) * 102 / 100))"
}
LABEL[c10_partclone]="partclone.btrfs | nc | partclone -r"
prep_c10_partclone() { fresh "$DST" "$C10_BYTES"; }
run_c10_partclone() { partclone_nc "$1" partclone.btrfs "$IMG10"; }
check_c10_partclone() { btrfs_ok "$DST"; }
LABEL[c10_nc]="dd | nc (whole disk, plaintext)"
prep_c10_nc() { fresh "$DST" "$C10_BYTES"; }
run_c10_nc() { dd_nc "$1" "$IMG10" sparse; }
check_c10_nc() { same "$IMG10" "$DST"; }
for id in c10_ferry c10_partclone c10_nc; do eval "post_$id() { post_rm; }"; done

# ---- case 4: import a qcow2 ------------------------------------------------------
QCOW=$W/c2.qcow2
LABEL[c4_import]="ferry import"
prep_c4_import() { fresh "$DST" "$C2_BYTES"; }
run_c4_import() { ferry_run "$1" import "$QCOW" "$DST"; }
check_c4_import() { same "$IMG2" "$DST"; }
LABEL[c4_qemuimg]="qemu-img convert -W -m 8 (local, no network)"
LOCAL[c4_qemuimg]=1
prep_c4_qemuimg() { rm -f "$DST"; }
run_c4_qemuimg() { local_run "$1" "qemu-img convert -W -m 8 -O raw '$QCOW' '$DST'"; }
check_c4_qemuimg() { same "$IMG2" "$DST"; }
post_c4_import() { post_rm; }
post_c4_qemuimg() { post_rm; }

# ---- run the cases -----------------------------------------------------------
# Order: 1, 5 (on case 1 data), 3 (reuses case 1's image), then 2, 5, 4 on
# the ext4 image, then 6; each data set is deleted before the next is made.
c5_notes=()
if [ ${#VARIANTS[@]} -eq 0 ]; then
	c5_why="ferry migrate --help mentions neither --streams nor --compress"
else
	c5_why=
	[ "$have_streams" = 0 ] && c5_notes+=("--streams not yet")
	[ "$have_compress" = 0 ] && c5_notes+=("--compress not yet")
fi

if want 1 || want 3 || want 11; then
	t=$(now)
	"$PY" "$here/gen.py" random "$IMG1" "$C1_BYTES" "$SEED1" || die "gen.py random failed"
	say "case 1 data: $((C1_BYTES / MiB)) MiB incompressible in $(since "$t")s"
fi

if want 1; then
	say "case 1: full copy, $((C1_BYTES / MiB)) MiB incompressible"
	CASE_STATE[1]=pass
	meta c1_bytes "$C1_BYTES"
	ids=(c1_ferry c1_nc c1_ssh c1_tls)
	if want 5; then
		for v in "${VARIANTS[@]}"; do ids+=("c1_$v"); done
	fi
	rounds 1 "${ids[@]}"
fi

if want 3; then
	say "case 3: incremental, 1 % of the 4 KiB blocks of the case 1 image rewritten"
	cp "$IMG1" "$IMG3" || die "cp failed"
	nblk=$("$PY" "$here/gen.py" rewrite "$IMG3" 1 "$SEED3") || die "gen.py rewrite failed"
	meta c3_blocks "$nblk"
	meta c3_bytes "$C1_BYTES"
	CASE_STATE[3]=pass
	ids=(c3_rsync)
	if [ "$have_sync" = 1 ]; then
		ids=(c3_sync c3_rsync)
	else
		not_yet 3 c3_sync "ferry sync" "ferry sync --help exits non-zero: the command has not landed"
	fi
	rounds 3 "${ids[@]}"
	[ "$have_sync" = 0 ] && [ "${CASE_STATE[3]}" = pass ] && CASE_STATE[3]=skip
	rm -f "$IMG3"
fi

if want 11; then
	r_reset
	if ! "$FERRY_INIT" serve --help 2>&1 | grep -q -- --relay; then
		not_yet 11 c11_relay "ferry through the relay" "ferry-init serve has no --relay"
		CASE_STATE[11]=skip
	else
		say "case 11: $((C11_BYTES / MiB)) MiB incompressible, direct and through ferry-init serve --relay"
		head -c "$C11_BYTES" "$IMG1" >"$IMG11" || die "head failed"
		meta c11_bytes "$C11_BYTES"
		rres=$W/log/c11-relay.result
		: >"$rres"
		timeout -k 5 $((TMO * 4 * (REPS + 1))) "$FERRY_INIT" serve --relay \
			--listen 127.0.0.1:0 --allow '127.0.0.1/32:*' --result "$rres" \
			>"$W/log/c11-relay.log" 2>&1 &
		rpid=$!
		for _ in $(seq 1 100); do
			RELAY_PORT=$(sed -n 's/^FERRY READY relay port=\([0-9]*\).*/\1/p' "$rres")
			[ -n "$RELAY_PORT" ] && break
			sleep 0.05
		done
		CASE_STATE[11]=pass
		if [ -z "$RELAY_PORT" ]; then
			case_fail 11 "the relay did not start: $(tail -n 3 "$W/log/c11-relay.log")"
		else
			rounds 11 c11_relay c11_direct
			# Every relayed run went through it (and was not refused).
			n=$(grep -c '^FERRY RELAY close .* end=closed' "$rres" || true)
			[ "$n" -ge $((REPS + 1)) ] ||
				case_fail 11 "the relay closed $n flows cleanly, want at least $((REPS + 1))"
		fi
		kill "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null
		rm -f "$IMG11"
	fi
fi
rm -f "$IMG1"

if want 2 || want 4; then
	t=$(now)
	tree=$W/c2.tree
	mkdir -p "$tree"
	nfiles=$("$PY" "$here/gen.py" tree "$tree" "$C2_FILES_MIB" "$SEED2") || die "gen.py tree failed"
	C2_FILE_BYTES=$(du -sb "$tree" | cut -f1)
	truncate -s "$C2_BYTES" "$IMG2"
	mkfs.ext4 -q -F -b 4096 -d "$tree" "$IMG2" || die "mkfs.ext4 -d failed"
	rm -rf "$tree"
	C2_USED=$(dumpe2fs -h "$IMG2" 2>/dev/null | awk -F: '/^Block count/ { b = $2 } /^Free blocks/ { f = $2 } END { print (b - f) * 4096 }')
	meta c2_bytes "$C2_BYTES"
	meta c2_files "$nfiles files, $C2_FILE_BYTES bytes"
	meta c2_used "$C2_USED"
	say "case 2 data: ext4 $((C2_BYTES / MiB)) MiB, $nfiles files, $((C2_FILE_BYTES / MiB)) MiB of files, $((C2_USED / MiB)) MiB used, in $(since "$t")s"
fi

if want 2; then
	say "case 2: used blocks of an ext4 image"
	CASE_STATE[2]=pass
	ids=(c2_ferry c2_partclone c2_bmap)
	if want 5; then
		for v in "${VARIANTS[@]}"; do ids+=("c2_$v"); done
	fi
	rounds 2 "${ids[@]}"
fi

if want 5; then
	if [ -n "$c5_why" ]; then
		not_yet 5 c5 "ferry streams 1/2, compress 0/3" "$c5_why"
		CASE_STATE[5]=skip
	elif ! want 1 && ! want 2; then
		say "case 5 runs within cases 1 and 2: give --cases \"1 2 5\""
	else
		# The runs were made within cases 1 and 2 (same rounds, same data);
		# case 5 passes when all of them did.
		CASE_STATE[5]=pass
		grep -q '"id":"c[12]_s[12]z[03]".*"status":"fail"' "$REC" && CASE_STATE[5]=fail
		[ ${#c5_notes[@]} -gt 0 ] && meta c5_note "${c5_notes[*]}"
	fi
fi

if want 4; then
	say "case 4: import a qcow2 of the case 2 image"
	t=$(now)
	qemu-img convert -O qcow2 "$IMG2" "$QCOW" || die "qemu-img convert to qcow2 failed"
	meta c4_qcow2 "$(stat -c %s "$QCOW")"
	CASE_STATE[4]=pass
	ids=(c4_qemuimg)
	if [ "$have_import" = 1 ]; then
		ids=(c4_import c4_qemuimg)
	else
		not_yet 4 c4_import "ferry import" "ferry import --help exits non-zero: the command has not landed"
	fi
	rounds 4 "${ids[@]}"
	[ "$have_import" = 0 ] && [ "${CASE_STATE[4]}" = pass ] && CASE_STATE[4]=skip
	rm -f "$QCOW"
fi
rm -f "$IMG2" "$DST"

# ---- case 7 ------------------------------------------------------------------------
if want 7; then
	t=$(now)
	truncate -s "$C7_BYTES" "$IMG7"
	mkfs.xfs -q -f "$IMG7" || die "mkfs.xfs failed"
	# Filled through a loop mount in a private mount namespace; the
	# deleted data stays in the image's free space.
	unshare -m --propagation private sh -c "set -e; mkdir -p '$W/c7.mnt';
		mount -o loop '$IMG7' '$W/c7.mnt'; mkdir '$W/c7.mnt/tree'
		'$PY' '$here/gen.py' tree '$W/c7.mnt/tree' $C7_FILES_MIB $SEED7 >'$W/c7.nfiles'
		'$PY' '$here/gen.py' random '$W/c7.mnt/gone' $((C7_GONE_MIB * MiB)) $((SEED7 + 1))
		sync; rm '$W/c7.mnt/gone'; du -sb '$W/c7.mnt/tree' | cut -f1 >'$W/c7.fbytes'
		umount '$W/c7.mnt'" || die "filling the XFS image failed"
	C7_FILE_BYTES=$(cat "$W/c7.fbytes")
	bs=$(xfs_db -r -c "sb 0" -c "p blocksize" "$IMG7" | sed 's/.*= //')
	db=$(xfs_db -r -c "sb 0" -c "p dblocks" "$IMG7" | sed 's/.*= //')
	fr=$(xfs_db -r -c "freesp -s" "$IMG7" | sed -n 's/.*total free blocks \([0-9]*\).*/\1/p')
	C7_USED=$(((db - fr) * bs))
	xfs_sums "$IMG7" "$W/c7.sums" || die "cannot read the XFS image's files back"
	meta c7_bytes "$C7_BYTES"
	meta c7_files "$(cat "$W/c7.nfiles") files, $C7_FILE_BYTES bytes"
	meta c7_used "$C7_USED"
	meta c7_gone "$((C7_GONE_MIB * MiB))"
	say "case 7 data: XFS $((C7_BYTES / MiB)) MiB, $((C7_FILE_BYTES / MiB)) MiB of files, $((C7_USED / MiB)) MiB used, $C7_GONE_MIB MiB deleted, in $(since "$t")s"
	say "case 7: used blocks of an XFS image"
	CASE_STATE[7]=pass
	rounds 7 c7_ferry c7_partclone c7_nc
	rm -f "$IMG7" "$DST"
fi

# ---- case 10 -----------------------------------------------------------------------
if want 10; then
	t=$(now)
	truncate -s "$C10_BYTES" "$IMG10"
	mkfs.btrfs -q -f "$IMG10" >/dev/null || die "mkfs.btrfs failed"
	unshare -m --propagation private sh -c "set -e; mkdir -p '$W/c10.mnt';
		mount -o loop '$IMG10' '$W/c10.mnt'; mkdir '$W/c10.mnt/tree'
		'$PY' '$here/gen.py' tree '$W/c10.mnt/tree' $C10_FILES_MIB $SEED10 >'$W/c10.nfiles'
		'$PY' '$here/gen.py' random '$W/c10.mnt/gone' $((C10_GONE_MIB * MiB)) $((SEED10 + 1))
		sync; rm '$W/c10.mnt/gone'; sync; du -sb '$W/c10.mnt/tree' | cut -f1 >'$W/c10.fbytes'
		btrfs filesystem df -b '$W/c10.mnt' >'$W/c10.df'
		umount '$W/c10.mnt'" || die "filling the btrfs image failed"
	btrfs device scan --forget >/dev/null 2>&1
	C10_FILE_BYTES=$(cat "$W/c10.fbytes")
	# Physical bytes in use: data once, metadata and system as often as
	# their profile stores them (DUP: twice).
	C10_USED=$(awk -F'used=' '/^(Data|Metadata|System)/ {
		n = ($0 ~ /DUP/) ? 2 : 1; u += n * $2 } END { printf "%d\n", u }' "$W/c10.df")
	btrfs_sums "$IMG10" "$W/c10.sums" || die "cannot read the btrfs image's files back"
	meta c10_bytes "$C10_BYTES"
	meta c10_files "$(cat "$W/c10.nfiles") files, $C10_FILE_BYTES bytes"
	meta c10_used "$C10_USED"
	meta c10_gone "$((C10_GONE_MIB * MiB))"
	say "case 10 data: btrfs $((C10_BYTES / MiB)) MiB, $((C10_FILE_BYTES / MiB)) MiB of files, $((C10_USED / MiB)) MiB used, $C10_GONE_MIB MiB deleted, in $(since "$t")s"
	say "case 10: used blocks of a btrfs image"
	CASE_STATE[10]=pass
	rounds 10 c10_ferry c10_partclone c10_nc
	rm -f "$IMG10" "$DST"
fi

# ---- case 6: boot to a TLS handshake under TCG ----------------------------------
if want 6; then
	# Copies, like the binaries: one kernel and initramfs for all boots.
	for f in vmlinuz initramfs.cpio.gz ferry-live.iso; do
		[ -f "$OUT/$f" ] && [ "$f" != ferry-live.iso ] && cp "$OUT/$f" "$W/bin/"
		[ -f "$OUT/$f" ] && meta "size:$f" "$(stat -c %s "$OUT/$f")"
	done
	for f in ferry ferry-init; do
		meta "size:$f" "$(stat -c %s "$W/bin/$f")"
	done
	if [ ! -f "$W/bin/vmlinuz" ] || [ ! -f "$W/bin/initramfs.cpio.gz" ]; then
		r_reset
		not_yet 6 c6_boot "boot to handshake" "build/out/vmlinuz or initramfs.cpio.gz missing (run make)"
		CASE_STATE[6]=skip
	elif ! command -v qemu-system-x86_64 >/dev/null; then
		not_yet 6 c6_boot "boot to handshake" "qemu-system-x86_64 not installed"
		CASE_STATE[6]=skip
	else
		say "case 6: QEMU start to a completed TLS handshake (ferry status), TCG, $BOOTS boot(s)"
		CASE_STATE[6]=pass
		# The guest runs the ferry-init inside the initramfs, the probe is
		# today's agent: an initramfs older than ferry-init may speak an
		# older protocol (make rebuilds it; running run.sh alone does not).
		stale=''
		[ "$OUT/initramfs.cpio.gz" -ot "$OUT/ferry-init" ] &&
			stale=" (build/out/initramfs.cpio.gz is older than ferry-init: run make)"
		token=$("$FERRY" token)
		for r in $(seq 1 "$BOOTS"); do
			r_reset
			lb=$W/log/c6-boot-$r
			port=$(free_port)
			t0=$(now)
			timeout -k 5 "$TMO" qemu-system-x86_64 -accel tcg -cpu max -nodefaults -no-reboot \
				-m 512 -display none -kernel "$W/bin/vmlinuz" -initrd "$W/bin/initramfs.cpio.gz" \
				-append "console=ttyS0 ferry.token=$token" \
				-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:443" \
				-device virtio-net-pci,netdev=n0 -serial "file:$lb.serial" \
				</dev/null >"$lb.qemu.log" 2>&1 &
			qpid=$!
			# The probe's own cadence (short attempts that a not yet
			# listening guest leaves hanging) rounds the handshake time up;
			# the console's "listening on" line, polled every 50 ms, says
			# when the guest was ready.
			(
				while ! grep -q -a 'listening on' "$lb.serial" 2>/dev/null; do
					sleep 0.05
				done
				elapsed "$t0" >"$lb.listen"
			) &
			lpid=$!
			rc=0
			timeout -k 5 90 "$FERRY" status --to "127.0.0.1:$port" --token "$token" --wait 60 \
				>"$lb.status" 2>"$lb.send.err" || rc=$?
			R_SECS=$(elapsed "$t0")
			sleep 0.1
			kill "$lpid" 2>/dev/null
			wait "$lpid" 2>/dev/null
			R_LISTEN=$(cat "$lb.listen" 2>/dev/null)
			kill "$qpid" 2>/dev/null
			wait "$qpid" 2>/dev/null
			if [ "$rc" != 0 ]; then
				R_ERR="ferry status exited $rc: $(tail -n 2 "$lb.send.err") $(tail -n 2 "$lb.qemu.log")$stale"
				record 6 c6_boot "boot to handshake" "$r" fail
				case_fail 6 "boot $r: $R_ERR"
				tail_log "$lb.serial" 10
			else
				record 6 c6_boot "boot to handshake" "$r" ok
				say "  case 6 boot $r: ${R_SECS}s (console says listening at ${R_LISTEN:-?}s)"
			fi
		done
	fi
fi

# ---- case 8: the cutover of a live ext4, tracked against a rescan -------------------
if want 8; then
	r_reset
	if ! "$FERRY" migrate --help 2>&1 | grep -q -- --no-track; then
		not_yet 8 c8_cutover "cutover" "ferry migrate has no --no-track: change tracking has not landed"
		CASE_STATE[8]=skip
	else
		say "case 8: cutover of a live ext4 at $C8_MIB MiB in use, tracked and --no-track"
		CASE_STATE[8]=pass
		# shellcheck disable=SC2086 # the sizes are words
		if ! "$here/cutover.sh" "$FERRY" "$FERRY_INIT" "$W/c8" "$W/c8.md" $C8_MIB; then
			case_fail 8 "a cutover failed (above)"
		fi
		[ -s "$W/c8.md" ] && meta c8_md "$W/c8.md"
	fi
fi

# ---- case 9: a wave of servers through Ansible ----------------------------------------
if want 9; then
	r_reset
	if ! command -v ansible-playbook >/dev/null; then
		not_yet 9 c9_wave "wave" "ansible-playbook not installed (scripts/deps.sh installs ansible-core)"
		CASE_STATE[9]=skip
	else
		# shellcheck disable=SC2086 # the sizes are words
		set -- $C9
		say "case 9: a wave of $1 servers through Ansible (forks $1), serial 1, and ferry alone"
		CASE_STATE[9]=pass
		meta c9_hosts "$1"
		if ! "$here/wave.sh" "$FERRY" "$FERRY_INIT" "$W/c9" "$W/c9.md" "$@"; then
			case_fail 9 "a wave run failed (above)"
		fi
		[ -s "$W/c9.md" ] && meta c9_md "$W/c9.md"
		rm -rf "$W/c9"
	fi
fi

# ---- report --------------------------------------------------------------------
meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta total_secs "$(since "$T_ALL")"
pass=0 fail=0 skip=0
for c in $CASES; do
	case "${CASE_STATE[$c]:-}" in
	pass) pass=$((pass + 1)) ;;
	fail) fail=$((fail + 1)) ;;
	skip) skip=$((skip + 1)) ;;
	esac
	meta "state:$c" "${CASE_STATE[$c]:-}"
done
if [ "$SMOKE" = 1 ] || [ "$CASES" != "$ALL_CASES" ]; then
	"$PY" "$here/report.py" "$REC" "$META" - || fail=$((fail + 1))
else
	"$PY" "$here/report.py" "$REC" "$META" "$here/RESULTS.md" || fail=$((fail + 1))
	say "wrote bench/RESULTS.md"
fi
say "done in $(since "$T_ALL")s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
