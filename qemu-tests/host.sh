# qemu-tests/host.sh - host-mode helpers, sourced after lib.sh: the real
# receiver (`ferry-init serve`) on 127.0.0.1 with file-backed disks, and
# source disk images made with the real tools (sfdisk, mkfs.ext4 -d,
# mkswap, mkfs.vfat) without root.
# shellcheck shell=bash disable=SC2034

FERRY_INIT=${FERRY_INIT:-$FERRY_OUT/ferry-init}
H_PORT=
H_TOKEN=
H_PID=
H_LOG=

# h_serve NAME=PATH...: starts the receiver and waits for its port. It
# exits after one migration session, or with H_ONCE=0 lives on across
# sessions (resume tests) until a finished migration or the case's end.
h_serve() {
	local args=() d
	for d in "$@"; do
		args+=(--disk "$d")
	done
	[ "${H_ONCE:-1}" = 1 ] && args+=(--once)
	H_TOKEN=$("$FERRY" token)
	H_LOG=$Q_TMP/serve.$RANDOM.log
	: >"$H_LOG.result"
	timeout -k 5 "${H_TIMEOUT:-300}" "$FERRY_INIT" serve --listen 127.0.0.1:0 \
		--token "$H_TOKEN" --result "$H_LOG.result" "${args[@]}" \
		>"$H_LOG" 2>&1 &
	H_PID=$!
	Q_PIDS+=("$H_PID")
	local i
	for i in $(seq 1 100); do
		H_PORT=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$H_LOG.result")
		[ -n "$H_PORT" ] && return 0
		kill -0 "$H_PID" 2>/dev/null || q_fail "ferry-init serve exited: $(cat "$H_LOG")"
		sleep 0.05
	done
	q_fail "ferry-init serve did not start listening: $(cat "$H_LOG")"
}

# h_wait_serve: waits for the receiver to exit; returns its exit status.
h_wait_serve() {
	local rc=0
	wait "$H_PID" || rc=$?
	return "$rc"
}

# h_copy_unadapted SRC DST: migrates SRC into a fresh 3 GiB DST without
# --adapt (the agent's output in $Q_TMP/mig.out) and asserts that the
# destination's readiness report FAILs virtio_blk: the adapt cases' "it
# would not boot as copied".
h_copy_unadapted() {
	truncate -s 3G "$2"
	h_serve "vda=$2"
	q_ferry migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$1=vda" --ignore-check \
		--handoff poweroff --state-dir "$Q_TMP/st" >"$Q_TMP/mig.out" 2>&1 ||
		q_fail "ferry migrate exited $?: $(tail -n 5 "$Q_TMP/mig.out")"
	h_wait_serve || true
	grep -q 'FAIL  virtio_blk: a module in kernel .* not in initramfs' "$Q_TMP/mig.out" ||
		q_fail "the readiness report did not FAIL virtio_blk: $(grep -E 'PASS|WARN|FAIL' "$Q_TMP/mig.out")"
}

# h_files DIR MB SEED: a tree of real files: random data, text, a symlink,
# a sparse file, nested directories.
h_files() {
	local dir=$1 mb=$2 seed=$3
	mkdir -p "$dir/data/nested/deeper" "$dir/etc"
	python3 - "$dir" "$mb" "$seed" <<'PY'
import os, random, sys
d, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
left = mb << 20
i = 0
while left > 0:
    n = min(left, r.choice([4096, 65536, 1 << 20, 3 << 20]) + r.randrange(4096))
    with open(os.path.join(d, "data", "f%03d.bin" % i), "wb") as f:
        f.write(r.randbytes(n))
    left -= n
    i += 1
with open(os.path.join(d, "data/nested/deeper/words.txt"), "w") as f:
    for k in range(20000):
        f.write("line %d %x\n" % (k, r.getrandbits(32)))
with open(os.path.join(d, "data/sparse.img"), "wb") as f:
    f.seek(8 << 20)
    f.write(b"end")
os.symlink("nested/deeper/words.txt", os.path.join(d, "data/link"))
with open(os.path.join(d, "etc/hostname"), "w") as f:
    f.write("source-%d\n" % seed)
PY
}

# h_mkdisk LAYOUT OUT MB [DATA_MB]: gpt (ESP vfat + ext4 + swap), mbr
# (ext4 + swap), bare (ext4 on the whole disk). Prints nothing.
h_mkdisk() {
	local layout=$1 out=$2 mb=$3 data=${4:-24}
	local root=$Q_TMP/root.$RANDOM
	h_files "$root" "$data" "$mb"
	rm -f "$out"
	truncate -s "${mb}M" "$out"
	case "$layout" in
	gpt)
		sfdisk -q "$out" <<EOT
label: gpt
size=16M, type=uefi
size=$((mb - 16 - 1 - 16))M, type=linux
type=swap
EOT
		mkfs.vfat -C "$Q_TMP/esp.img" $((16 * 1024)) >/dev/null
		dd if="$Q_TMP/esp.img" of="$out" bs=1M seek=1 conv=notrunc status=none
		mkfs.ext4 -q -F -d "$root" -E offset=$((17 << 20)) "$out" "$((mb - 16 - 1 - 16))M"
		local swoff=$(((17 + mb - 16 - 1 - 16) << 20))
		truncate -s 15M "$Q_TMP/swap.img"
		mkswap -q "$Q_TMP/swap.img"
		dd if="$Q_TMP/swap.img" of="$out" bs=1M seek=$((swoff >> 20)) conv=notrunc status=none
		rm -f "$Q_TMP/esp.img" "$Q_TMP/swap.img"
		;;
	mbr)
		sfdisk -q "$out" <<EOT
label: dos
size=$((mb - 1 - 16))M, type=83
type=82
EOT
		mkfs.ext4 -q -F -d "$root" -E offset=$((1 << 20)) "$out" "$((mb - 1 - 16))M"
		truncate -s 15M "$Q_TMP/swap.img"
		mkswap -q "$Q_TMP/swap.img"
		dd if="$Q_TMP/swap.img" of="$out" bs=1M seek=$((mb - 16)) conv=notrunc status=none
		rm -f "$Q_TMP/swap.img"
		;;
	bare)
		mkfs.ext4 -q -F -d "$root" "$out"
		;;
	*) q_fail "h_mkdisk: unknown layout $layout" ;;
	esac
	rm -rf "$root"
}

# h_part_off IMG N: byte offset of partition N (sfdisk's view).
h_part_off() {
	sfdisk -J "$1" | python3 -c 'import json,sys
t = json.load(sys.stdin)["partitiontable"]
p = t["partitions"][int(sys.argv[1]) - 1]
print(p["start"] * t.get("sectorsize", 512))' "$2"
}

# h_part_size IMG N: byte size of partition N.
h_part_size() {
	sfdisk -J "$1" | python3 -c 'import json,sys
t = json.load(sys.stdin)["partitiontable"]
p = t["partitions"][int(sys.argv[1]) - 1]
print(p["size"] * t.get("sectorsize", 512))' "$2"
}

# h_extract IMG OFF SIZE OUT: copies a partition out of an image.
h_extract() {
	dd if="$1" of="$4" bs=64K iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# h_same_files A.ext4 B.ext4: every file identical (debugfs rdump + diff).
h_same_files() {
	local a=$Q_TMP/rd.a.$RANDOM b=$Q_TMP/rd.b.$RANDOM
	mkdir -p "$a" "$b"
	debugfs -R "rdump / $a" "$1" >/dev/null 2>&1 || q_fail "debugfs rdump of $1 failed"
	debugfs -R "rdump / $b" "$2" >/dev/null 2>&1 || q_fail "debugfs rdump of $2 failed"
	diff -r --no-dereference "$a" "$b" >/dev/null || q_fail "files differ between $1 and $2"
	local n
	n=$(find "$a" -type f | wc -l)
	[ "$n" -gt 3 ] || q_fail "only $n files in $1: the test tree is missing"
	rm -rf "$a" "$b"
}

# h_fsck IMG: e2fsck -fn clean.
h_fsck() {
	e2fsck -fn "$1" >"$Q_TMP/fsck.log" 2>&1 || q_fail "e2fsck -fn $1: $(tail -n 5 "$Q_TMP/fsck.log")"
}

# h_json_field FILE EVENT FIELD: a field of the last NDJSON event of that kind.
h_json_field() {
	python3 - "$@" <<'PY'
import json, sys
v = None
for l in open(sys.argv[1]):
    l = l.strip()
    if l.startswith("{"):
        o = json.loads(l)
        if o.get("event") == sys.argv[2]:
            v = o.get(sys.argv[3])
print("" if v is None else v)
PY
}

# h_proxy TARGET_PORT [proxy.py options]: starts the fault proxy; sets
# P_PORT and P_STATS (its byte counters after it stops: p_stop).
P_PORT=
P_PID=
P_STATS=
h_proxy() {
	local target=$1
	shift
	P_STATS=$Q_TMP/proxy.$RANDOM.stats
	python3 "$Q_TOP/qemu-tests/proxy.py" --target "$target" --stats "$P_STATS" "$@" \
		>"$P_STATS.out" 2>&1 &
	P_PID=$!
	Q_PIDS+=("$P_PID")
	local i
	for i in $(seq 1 100); do
		P_PORT=$(sed -n 's/^PORT //p' "$P_STATS.out" 2>/dev/null || true)
		[ -n "$P_PORT" ] && return 0
		sleep 0.05
	done
	q_fail "proxy did not start: $(cat "$P_STATS.out")"
}
p_stop() {
	kill "$P_PID" 2>/dev/null || true
	wait "$P_PID" 2>/dev/null || true
}
# h_applied LOG: total bytes of DATA the receiver applied, over all sessions
# and all their streams.
h_applied() {
	sed -n -e 's/.*: \([0-9]*\) bytes of DATA applied in this session/\1/p' \
		-e 's/.*: stream [0-9]* ended, \([0-9]*\) bytes of DATA applied/\1/p' "$1" |
		awk '{ s += $1 } END { print s + 0 }'
}

# h_corrupter SRC DST OFF ONCE: in the background, waits until DST holds
# SRC's 64 KiB chunk at OFF (ferry wrote it), then overwrites 4 KiB of it
# behind ferry's back - once, or again and again (ONCE=always). Sets
# CORRUPTER; its output file says "ready" and "corrupted".
h_corrupter() {
	python3 - "$@" >"$Q_TMP/corrupter.out" <<'PY' &
import os, sys, time
src, dst, off, once = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "once"
with open(src, "rb") as f:
    f.seek(off)
    want = f.read(65536)
print("ready", flush=True)
end = time.time() + 240
while time.time() < end:
    fd = os.open(dst, os.O_RDWR)
    if os.pread(fd, 65536, off) == want:
        os.pwrite(fd, b"\xa5" * 4096, off + 8192)
        os.fsync(fd)
        if once:
            print("corrupted", flush=True)
            sys.exit(0)
    os.close(fd)
    time.sleep(0.002)
PY
	CORRUPTER=$!
	local i
	for i in $(seq 1 200); do
		grep -q ready "$Q_TMP/corrupter.out" 2>/dev/null && return 0
		sleep 0.02
	done
	q_fail "the corrupter did not start"
}

# h_data_chunk IMG FROM_MIB: the offset of the first 64 KiB chunk at or
# after FROM_MIB that is nearly all data (not zeros).
h_data_chunk() {
	python3 - "$1" "$2" <<'PY'
import sys
f = open(sys.argv[1], "rb")
off = int(sys.argv[2]) << 20
while True:
    f.seek(off)
    b = f.read(65536)
    if len(b) < 65536:
        sys.exit("no data chunk")
    if b.count(0) < 1000:
        print(off)
        break
    off += 65536
PY
}

# h_netns_pair: two network namespaces joined by a veth pair, removed
# when the case exits: NS_DEST (10.77.0.1) for the receiver, NS_SRC
# (10.77.0.2) for the agent. Nothing of the host's network is touched.
NS_DEST=
NS_SRC=
h_netns_pair() {
	[ "$(id -u)" = 0 ] || q_skip "network namespaces need root"
	command -v ip >/dev/null || q_skip "ip (iproute2) not installed"
	NS_DEST=ferryd$$
	NS_SRC=ferrys$$
	ip netns add "$NS_DEST" || q_skip "cannot create a network namespace"
	Q_CLEANUP+=("ip netns del $NS_DEST")
	ip netns add "$NS_SRC"
	Q_CLEANUP+=("ip netns del $NS_SRC")
	ip link add "vd$$" netns "$NS_DEST" type veth peer name "vs$$" netns "$NS_SRC" ||
		q_skip "cannot create a veth pair"
	ip -n "$NS_DEST" addr add 10.77.0.1/24 dev "vd$$"
	ip -n "$NS_SRC" addr add 10.77.0.2/24 dev "vs$$"
	local ns
	for ns in "$NS_DEST" "$NS_SRC"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_DEST" link set "vd$$" up
	ip -n "$NS_SRC" link set "vs$$" up
}

# h_blackhole on|off: the destination's namespace drops every packet in
# and out (nftables), as a peer that lost power or a NAT that forgot the
# flow: no FIN, no RST, nothing.
h_blackhole() {
	if [ "$1" = on ]; then
		ip netns exec "$NS_DEST" nft -f - <<'NFT'
table inet ferryblackhole {
	chain in { type filter hook input priority 0; policy drop; }
	chain out { type filter hook output priority 0; policy drop; }
}
NFT
	else
		ip netns exec "$NS_DEST" nft delete table inet ferryblackhole
	fi
}
