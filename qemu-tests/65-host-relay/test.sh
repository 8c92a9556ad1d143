#!/bin/bash
# The relay (transit) instance in host mode, in network namespaces made
# here: the sources (ns SRC, 10.81.1.2) have no route to the destinations
# (ns DST, 10.81.2.2-5); only the relay's namespace (ns RLY, 10.81.1.1 and
# 10.81.2.1, forwarding off) touches both, and `ferry-init serve --relay`
# there tunnels the agents' CONNECTs to the allow-list alone. Asserts: a
# direct attempt fails (the isolation is real); two migrations at once
# through the relay are byte-identical (sha256); a destination outside the
# allow-list, reachable from the relay, is refused with the relay's reason
# quoted by the agent and never contacted; a --streams 4 migration opens
# its four tunnels through the relay; the relay's throughput is compared
# with the same migration made directly from the relay's namespace.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 sha256sum python3
[ "$(id -u)" = 0 ] || q_skip "network namespaces need root"
command -v ip >/dev/null || q_skip "ip (iproute2) not installed"

S=frs$$ R=frr$$ D=frd$$
for ns in $S $R $D; do
	ip netns add $ns || q_skip "cannot create a network namespace"
	Q_CLEANUP+=("ip netns del $ns")
	ip -n $ns link set lo up
done
ip link add "fa$$" netns $S type veth peer name "fb$$" netns $R || q_skip "cannot create a veth pair"
ip link add "fc$$" netns $R type veth peer name "fd$$" netns $D
ip -n $S addr add 10.81.1.2/24 dev "fa$$"
ip -n $R addr add 10.81.1.1/24 dev "fb$$"
ip -n $R addr add 10.81.2.1/24 dev "fc$$"
for a in 2 3 4 5; do ip -n $D addr add 10.81.2.$a/24 dev "fd$$"; done
ip -n $S link set "fa$$" up
ip -n $R link set "fb$$" up
ip -n $R link set "fc$$" up
ip -n $D link set "fd$$" up
# Even with a route the relay's namespace would not forward.
ip netns exec $R sysctl -qw net.ipv4.ip_forward=0
ip -n $S route add 10.81.2.0/24 via 10.81.1.1 2>/dev/null || true

# nsserve NAME ADDR:PORT DISK [extra]: a receiver in DST; sets <NAME>_PID.
nsserve() {
	local name=$1 at=$2 disk=$3 log=$Q_TMP/$1.log
	shift 3
	: >"$log.result"
	timeout -k 5 240 ip netns exec $D "$FERRY_INIT" serve --listen "$at" --token "$TOK" \
		--result "$log.result" --disk "vda=$disk" "$@" >"$log" 2>&1 &
	eval "${name}_PID=$!"
	Q_PIDS+=("$!")
	for _ in $(seq 1 100); do
		grep -q "^FERRY READY" "$log.result" && return 0
		sleep 0.05
	done
	q_fail "$name did not start: $(cat "$log")"
}
TOK=$("$FERRY" token)
ALLOW=10.81.2.2:7000,10.81.2.3/32:7000-7001,10.81.2.4:7100-7199
RLOG=$Q_TMP/relay.log
: >"$RLOG.result"
timeout -k 5 280 ip netns exec $R "$FERRY_INIT" serve --relay --listen 10.81.1.1:3128 \
	--allow "$ALLOW" --result "$RLOG.result" >"$RLOG" 2>&1 &
Q_PIDS+=("$!")
for _ in $(seq 1 100); do
	grep -q "^FERRY READY relay port=3128" "$RLOG.result" && break
	sleep 0.05
done
grep -q "^FERRY READY relay port=3128" "$RLOG.result" || q_fail "the relay did not start: $(cat "$RLOG")"
RELAY=http://10.81.1.1:3128
src() { timeout -k 5 180 ip netns exec $S "$FERRY" "$@"; }

a=$Q_TMP/a.img b=$Q_TMP/b.img
h_mkdisk bare "$a" 48 16
h_mkdisk gpt "$b" 64 20
truncate -s 48M "$Q_TMP/da.img"
truncate -s 64M "$Q_TMP/db.img"
truncate -s 64M "$Q_TMP/dx.img"
nsserve A 10.81.2.2:7000 "$Q_TMP/da.img" --once
nsserve B 10.81.2.3:7000 "$Q_TMP/db.img" --once
nsserve X 10.81.2.5:7000 "$Q_TMP/dx.img"

# 1. Isolation: no way from the sources to a destination but the relay.
rc=0
src status --to 10.81.2.2:7000 --token "$TOK" --wait 2 >/dev/null 2>"$Q_TMP/direct.err" || rc=$?
[ "$rc" != 0 ] || q_fail "the source reached 10.81.2.2 directly: the namespaces do not isolate"
echo "direct from the source: refused ($(tail -n 1 "$Q_TMP/direct.err"))"

# 2. Outside the allow-list (10.81.2.5 runs a receiver the relay could
# reach): refused by the relay with its reason, and never contacted.
ip netns exec $R "$FERRY" status --to 10.81.2.5:7000 --token "$TOK" >/dev/null 2>&1 ||
	q_fail "10.81.2.5:7000 is not reachable from the relay's namespace"
nx=$(grep -c "session from" "$Q_TMP/X.log" || true)
rc=0
src status --proxy "$RELAY" --to 10.81.2.5:7000 --token "$TOK" >/dev/null 2>"$Q_TMP/deny.err" || rc=$?
[ "$rc" = 1 ] || q_fail "a destination outside the allow-list: exit $rc, want 1: $(cat "$Q_TMP/deny.err")"
grep -q "refused CONNECT 10.81.2.5:7000: HTTP/1.1 403 ferry relay: 10.81.2.5:7000 is not on its allow-list (10.81.2.2/32:7000,10.81.2.3/32:7000-7001,10.81.2.4/32:7100-7199)" \
	"$Q_TMP/deny.err" || q_fail "the refusal does not name the destination and the list: $(cat "$Q_TMP/deny.err")"
grep -q "do the proxy's rules" "$Q_TMP/deny.err" && q_fail "a tinyproxy hint on the relay's own reason"
[ "$(grep -c "session from" "$Q_TMP/X.log" || true)" = "$nx" ] || q_fail "the refused destination was contacted"
grep -q "FERRY RELAY refused .* code=403 target=10.81.2.5:7000" "$RLOG.result" || q_fail "the relay did not record the refusal"
# A name is never resolved, whatever it would resolve to.
rc=0
src status --proxy "$RELAY" --to localhost:7000 --token "$TOK" >/dev/null 2>"$Q_TMP/name.err" || rc=$?
[ "$rc" = 1 ] && grep -q "403 ferry relay: localhost:7000 is a name; the relay resolves none" "$Q_TMP/name.err" ||
	q_fail "a name: exit $rc, $(cat "$Q_TMP/name.err")"
echo "outside the allow-list: $(sed 's/^ferry: error: //' "$Q_TMP/deny.err" | tail -n 1)"

# 3. Two migrations at once, each to its destination, through the relay.
src migrate --proxy "$RELAY" --to 10.81.2.2:7000 --token "$TOK" --disk "$a=vda" \
	--state-dir "$Q_TMP/sa" >/dev/null 2>"$Q_TMP/ma.err" &
pa=$!
src migrate --proxy "$RELAY" --to 10.81.2.3:7000 --token "$TOK" --disk "$b=vda" \
	--state-dir "$Q_TMP/sb" >/dev/null 2>"$Q_TMP/mb.err" &
pb=$!
wait $pa || q_fail "migration A through the relay: $(tail -n 3 "$Q_TMP/ma.err")"
wait $pb || q_fail "migration B through the relay: $(tail -n 3 "$Q_TMP/mb.err")"
wait "$A_PID" || q_fail "receiver A failed: $(tail -n 3 "$Q_TMP/A.log")"
wait "$B_PID" || q_fail "receiver B failed: $(tail -n 3 "$Q_TMP/B.log")"
for p in a b; do
	s1=$(sha256sum <"$Q_TMP/$p.img" | cut -d' ' -f1)
	s2=$(sha256sum <"$Q_TMP/d$p.img" | cut -d' ' -f1)
	[ "$s1" = "$s2" ] || q_fail "migration ${p^^}: sha256 $s2 on the destination, $s1 on the source"
	echo "migration ${p^^} through the relay: identical (sha256 ${s1:0:16}...)"
done
grep -q "ferry-init: 10.81.2.1:[0-9]*: session from" "$Q_TMP/A.log" ||
	q_fail "receiver A did not see the relay as its peer: $(grep 'session from' "$Q_TMP/A.log")"
for t in 10.81.2.2:7000 10.81.2.3:7000; do
	up=$(sed -n "s/^FERRY RELAY close .*target=$t up=\([0-9]*\) .*/\1/p" "$RLOG.result" |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$up" -gt $((10 << 20)) ] || q_fail "the relay carried only $up bytes to $t"
done
grep -q "relay: flow [0-9]* 10.81.1.2:[0-9]* -> 10.81.2.2:7000 closed after .* up, .* down, .*/s" "$RLOG" ||
	q_fail "the relay's console has no flow line with bytes and rate: $(tail -n 5 "$RLOG")"

# 4. --streams 4 through the relay: every stream is a tunnel of its own.
truncate -s 64M "$Q_TMP/ds.img"
nsserve C 10.81.2.3:7001 "$Q_TMP/ds.img" --once
# ferry check reaches its destination through the relay too.
rc=0
src check --proxy "$RELAY" --to 10.81.2.3:7001 --token "$TOK" --disk "$b=vda" >"$Q_TMP/check.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || q_fail "ferry check --proxy: exit $rc: $(tail -n 5 "$Q_TMP/check.out")"
grep -q "ferry-init: 10.81.2.1:[0-9]*: session from" "$Q_TMP/C.log" ||
	q_fail "ferry check did not reach the destination through the relay: $(grep -i 'destination\|FAIL' "$Q_TMP/check.out")"
n0=$(grep -c "^FERRY RELAY open .*target=10.81.2.3:7001" "$RLOG.result" || true)
src migrate --proxy "$RELAY" --to 10.81.2.3:7001 --token "$TOK" --disk "$b=vda" --streams 4 \
	--state-dir "$Q_TMP/ss" >/dev/null 2>"$Q_TMP/ms.err" || q_fail "--streams 4 through the relay: $(tail -n 3 "$Q_TMP/ms.err")"
wait "$C_PID" || q_fail "receiver C failed: $(tail -n 3 "$Q_TMP/C.log")"
cmp -s "$b" "$Q_TMP/ds.img" || q_fail "--streams 4 through the relay: the destination differs"
[ "$(grep -c "stream [1-3] of 4 joined" "$Q_TMP/C.log")" = 3 ] || q_fail "not all 4 streams joined: $(grep stream "$Q_TMP/C.log")"
n1=$(grep -c "^FERRY RELAY open .*target=10.81.2.3:7001" "$RLOG.result" || true)
[ $((n1 - n0)) -ge 4 ] || q_fail "--streams 4 opened $((n1 - n0)) tunnels through the relay"
echo "--streams 4 through the relay: identical, $((n1 - n0)) tunnels"

# 5. The Ansible module routes a host through the relay (ferry_proxy in
# the wave role): status and check with proxy=, from the source's namespace.
if command -v ansible >/dev/null; then
	coll=$Q_TMP/coll/ansible_collections/ferry
	mkdir -p "$coll"
	ln -s "$Q_TOP/contrib/ansible/ferry" "$coll/migrate"
	truncate -s 64M "$Q_TMP/de.img"
	nsserve E 10.81.2.3:7001 "$Q_TMP/de.img"
	n0=$(grep -c "^FERRY RELAY open .*target=10.81.2.3:7001" "$RLOG.result" || true)
	for cmd in status check; do
		ANSIBLE_COLLECTIONS_PATH=$Q_TMP/coll ANSIBLE_LOCAL_TEMP=$Q_TMP/ans-tmp ANSIBLE_NOCOLOR=1 \
			timeout -k 5 120 ip netns exec $S ansible localhost -i localhost, -c local \
			-m ferry.migrate.agent -a "command=$cmd to=10.81.2.3:7001 token=$TOK proxy=$RELAY agent=$FERRY state_dir=$Q_TMP/ans disks=$b=vda" \
			>"$Q_TMP/ans-$cmd.out" 2>&1 || [ "$cmd" = check ] ||
			q_fail "ansible ferry.migrate.agent command=$cmd through the relay: $(tail -n 20 "$Q_TMP/ans-$cmd.out")"
	done
	grep -q '^localhost | SUCCESS' "$Q_TMP/ans-status.out" && grep -q '"logical_sector": 512' "$Q_TMP/ans-status.out" ||
		q_fail "the module's status shows no destination disk: $(tail -n 20 "$Q_TMP/ans-status.out")"
	n1=$(grep -c "^FERRY RELAY open .*target=10.81.2.3:7001" "$RLOG.result" || true)
	[ $((n1 - n0)) -ge 2 ] || q_fail "the module's status and check made $((n1 - n0)) tunnels through the relay"
	kill "$E_PID" 2>/dev/null
	echo "Ansible (ferry.migrate.agent with proxy=): status and check through the relay, $((n1 - n0)) tunnels"
else
	echo "ansible not installed: the module's proxy= not exercised here (test 60 runs the wave)"
fi

# 6. Throughput: 256 MiB of random data (all sent), through the relay
# from the source vs directly from the relay's namespace (same
# destination, one veth hop less). Best of three each.
raw=$Q_TMP/raw.img
head -c 256M /dev/urandom >"$raw"
best() { awk 'BEGIN { m = 1e9 } { if ($1 < m) m = $1 } END { print m }'; }
PORT=7100
timed() { # NS PROXYARGS...
	local ns=$1 t0
	shift
	PORT=$((PORT + 1))
	rm -f "$Q_TMP/dr.img"
	truncate -s 256M "$Q_TMP/dr.img"
	nsserve T 10.81.2.4:$PORT "$Q_TMP/dr.img" --once
	t0=$(q_now)
	timeout -k 5 120 ip netns exec "$ns" "$FERRY" migrate "$@" --to 10.81.2.4:$PORT --token "$TOK" \
		--disk "$raw=vda" --state-dir "$Q_TMP/st.$RANDOM" --ignore-check >/dev/null 2>"$Q_TMP/t.err" ||
		q_fail "timed migration ($ns $*): $(tail -n 3 "$Q_TMP/t.err")"
	wait "$T_PID" || q_fail "timed receiver: $(tail -n 3 "$Q_TMP/T.log")"
	cmp -s "$raw" "$Q_TMP/dr.img" || q_fail "timed migration ($ns $*): the destination differs"
	q_elapsed "$t0"
}
direct=() relayed=()
for _ in 1 2 3; do
	direct+=("$(timed $R)")
	relayed+=("$(timed $S --proxy "$RELAY")")
done
td=$(printf '%s\n' "${direct[@]}" | best)
tr=$(printf '%s\n' "${relayed[@]}" | best)
ratio=$(awk -v d="$td" -v r="$tr" 'BEGIN { printf "%.2f", d / r }')
echo "throughput, 256 MiB: direct ${td} s, through the relay ${tr} s: ${ratio}x direct (runs: ${direct[*]} / ${relayed[*]})"
# The issue asks 0.8x; two shared cores make single runs noisy, so the
# test fails only well below it (bench case 11 publishes the figure).
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.6) }' || q_fail "through the relay at ${ratio}x direct"
echo "ok: isolated; refused outside the allow-list; two migrations and --streams 4 identical through the relay; ${ratio}x direct"
