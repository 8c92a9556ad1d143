#!/bin/bash
# Host mode: the agent reaches the receiver only through a real HTTP
# CONNECT proxy (Debian's tinyproxy on 127.0.0.1, CONNECT allowed to the
# receiver's port alone). Without and with Basic credentials status and
# check work, https_proxy from the environment works and no_proxy bypasses
# it; missing or wrong credentials and a forbidden port fail with the
# proxy's status line quoted and the password never printed; a migration
# through the authenticated proxy is identical; `ferry clean --proxy
# --json` takes a second receiver out of migration mode through it. The
# proxy's own log shows the CONNECTs.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" tinyproxy mkfs.ext4 debugfs e2fsck python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 40 12
truncate -s 64M "$dst"

# The receiver outlives several sessions: no --once (it exits after the
# migration finishes).
H_TOKEN=$("$FERRY" token)
H_LOG=$Q_TMP/serve.log
: >"$H_LOG.result"
timeout -k 5 240 "$FERRY_INIT" serve --listen 127.0.0.1:0 --token "$H_TOKEN" \
	--result "$H_LOG.result" --disk "vda=$dst" >"$H_LOG" 2>&1 &
H_PID=$!
Q_PIDS+=("$H_PID")
for _ in $(seq 1 100); do
	H_PORT=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$H_LOG.result")
	[ -n "$H_PORT" ] && break
	sleep 0.05
done
[ -n "$H_PORT" ] || q_fail "receiver did not start: $(cat "$H_LOG")"

# tp_start [USER PASS]: tinyproxy in the foreground (-d) with a generated
# config; sets TP_PORT, TP_PID, TP_LOG.
TP_PORT= TP_PID= TP_LOG=
tp_start() {
	local conf=$Q_TMP/tinyproxy.$RANDOM.conf _
	TP_LOG=$conf.log
	for _ in 1 2 3; do
		TP_PORT=$(q_free_port)
		# tinyproxy allows CONNECT only to 443 and 563 unless told.
		cat >"$conf" <<EOF
Port $TP_PORT
Listen 127.0.0.1
Timeout 60
MaxClients 16
LogLevel Connect
LogFile "$TP_LOG"
Allow 127.0.0.1
ConnectPort $H_PORT
EOF
		[ $# -eq 2 ] && echo "BasicAuth $1 $2" >>"$conf"
		tinyproxy -d -c "$conf" >"$conf.out" 2>&1 &
		TP_PID=$!
		Q_PIDS+=("$TP_PID")
		for _ in $(seq 1 50); do
			_q_listening "$TP_PORT" && return 0
			kill -0 "$TP_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$TP_PID" 2>/dev/null || true
		wait "$TP_PID" 2>/dev/null || true
	done
	q_fail "tinyproxy did not start: $(cat "$conf.out")"
}
tp_stop() {
	kill "$TP_PID" 2>/dev/null || true
	wait "$TP_PID" 2>/dev/null || true
}
tp_connects() { grep -c "CONNECT 127.0.0.1:$H_PORT HTTP" "$TP_LOG" 2>/dev/null || true; }

# 1. No credentials.
tp_start
q_ferry status --proxy "http://127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	--json >"$Q_TMP/s1.json" 2>"$Q_TMP/s1.err" || q_fail "status through the proxy: $(cat "$Q_TMP/s1.err")"
q_expect_disks "$Q_TMP/s1.json" "vda 67108864"
[ "$(tp_connects)" = 1 ] || q_fail "the proxy's log has no CONNECT: $(tail -n 5 "$TP_LOG")"
# ferry check reaches the destination the same way.
q_ferry check --proxy "http://127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	--disk "$src=vda" --json >"$Q_TMP/k1.json" 2>"$Q_TMP/k1.err" ||
	q_fail "check through the proxy: $(cat "$Q_TMP/k1.err") $(grep fail "$Q_TMP/k1.json")"
grep -q '"check":"destination","level":"PASS","found":"127.0.0.1:'"$H_PORT"': TLS handshake and token valid' \
	"$Q_TMP/k1.json" || q_fail "check through the proxy did not reach the destination: $(cat "$Q_TMP/k1.json")"
[ "$(tp_connects)" = 2 ] || q_fail "ferry check did not go through the proxy"

# 2. https_proxy from the environment; no_proxy (an IPv4 block, as
# corporate settings write it) bypasses it.
https_proxy="127.0.0.1:$TP_PORT" q_ferry status --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	>"$Q_TMP/s2" 2>&1 || q_fail "status with https_proxy: $(cat "$Q_TMP/s2")"
[ "$(tp_connects)" = 3 ] || q_fail "https_proxy was not used"
HTTPS_PROXY="http://127.0.0.1:$TP_PORT/" no_proxy="localhost, 127.0.0.0/8" q_ferry status \
	--to "127.0.0.1:$H_PORT" --token "$H_TOKEN" >"$Q_TMP/s3" 2>&1 ||
	q_fail "status with no_proxy: $(cat "$Q_TMP/s3")"
[ "$(tp_connects)" = 3 ] || q_fail "no_proxy=127.0.0.0/8 did not bypass the proxy"
tp_stop

# 3. Basic credentials.
tp_start alice s3cret
rc=0
q_ferry status --proxy "http://127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	>/dev/null 2>"$Q_TMP/e1" || rc=$?
[ "$rc" = 1 ] || q_fail "no credentials: exit $rc, want 1"
grep -q "proxy 127.0.0.1:$TP_PORT refused CONNECT 127.0.0.1:$H_PORT: HTTP/1.[01] 407 Proxy Authentication Required" \
	"$Q_TMP/e1" || q_fail "no 407 quoted: $(cat "$Q_TMP/e1")"
rc=0
q_ferry status --proxy "http://alice:wrongpass@127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" \
	--token "$H_TOKEN" >/dev/null 2>"$Q_TMP/e2" || rc=$?
[ "$rc" = 1 ] || q_fail "wrong password: exit $rc, want 1"
# tinyproxy answers a wrong password with 401, a missing one with 407.
grep -Eq "refused CONNECT 127.0.0.1:$H_PORT: HTTP/1.[01] 40[17] .*check the proxy user and password" \
	"$Q_TMP/e2" || q_fail "wrong password: no status quoted: $(cat "$Q_TMP/e2")"
grep -q wrongpass "$Q_TMP/e2" && q_fail "the password was printed: $(cat "$Q_TMP/e2")"
rc=0
q_ferry status --proxy "http://alice:s3cret@127.0.0.1:$TP_PORT" --to "127.0.0.1:$TP_PORT" \
	--token "$H_TOKEN" >/dev/null 2>"$Q_TMP/e3" || rc=$?
[ "$rc" = 1 ] && grep -q "HTTP/1.[01] 403 " "$Q_TMP/e3" ||
	q_fail "a port the proxy forbids: exit $rc, $(cat "$Q_TMP/e3")"
rc=0
q_ferry status --proxy "socks5://127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	>/dev/null 2>"$Q_TMP/e4" || rc=$?
[ "$rc" = 2 ] && grep -q "scheme 'socks5' is not supported" "$Q_TMP/e4" ||
	q_fail "socks5:// : exit $rc, $(cat "$Q_TMP/e4")"
n=$(tp_connects)

# 4. A migration through the authenticated proxy; the password is given
# percent-encoded (%65 = e) and appears nowhere in the output.
q_ferry migrate --proxy "http://alice:s3cr%65t@127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" \
	--token "$H_TOKEN" --disk "$src=vda" --state-dir "$Q_TMP/st" --log-level 3 \
	>"$Q_TMP/m.out" 2>"$Q_TMP/m.err" || q_fail "migrate through the proxy: $(tail -n 5 "$Q_TMP/m.err")"
wait "$H_PID" || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
[ "$(tp_connects)" -gt "$n" ] || q_fail "the migration did not go through the proxy"
grep -q 's3cr' "$Q_TMP/m.out" "$Q_TMP/m.err" && q_fail "the password was printed"
head -c "$(stat -c %s "$src")" "$dst" >"$Q_TMP/dst.part"
cmp -s "$src" "$Q_TMP/dst.part" || h_same_files "$src" "$Q_TMP/dst.part"
h_fsck "$Q_TMP/dst.part"
tp_stop

# 5. ferry clean --proxy --json: a second receiver (the proxy allows its
# port alone) leaves migration mode through the proxy.
truncate -s 16M "$Q_TMP/dst2.img"
H_ONCE=0 h_serve "vda=$Q_TMP/dst2.img"
tp_start
q_ferry clean --proxy "http://127.0.0.1:$TP_PORT" --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" \
	--handoff poweroff --json >"$Q_TMP/cl.json" 2>"$Q_TMP/cl.err" ||
	q_fail "clean through the proxy: $(cat "$Q_TMP/cl.err")"
[ "$(tp_connects)" = 1 ] || q_fail "ferry clean did not go through the proxy"
python3 - "$Q_TMP/cl.json" "127.0.0.1:$H_PORT" <<'PY' || q_fail "clean --json: $(cat "$Q_TMP/cl.json")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]  # every line is JSON
assert ev[-1]["event"] == "clean", ev[-1]
assert ev[-1]["to"] == sys.argv[2] and ev[-1]["handoff"] == "poweroff", ev[-1]
assert ev[-1]["verdict"] == "pass" and ev[-1]["wiped"] is False, ev[-1]
assert all(e["event"] == "report" and e["level"] in ("pass", "warn", "fail") and e["text"]
           for e in ev[:-1]), ev
PY
h_wait_serve || q_fail "the receiver did not leave migration mode: $(tail -n 3 "$H_LOG")"
tp_stop
echo "ok: status, check, migrate and clean through tinyproxy (plain, https_proxy, Basic auth); 407/401/403 quoted; no_proxy bypasses; clean --json"
