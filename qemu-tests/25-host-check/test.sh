#!/bin/bash
# Host mode: `ferry check` against the real receiver (`ferry-init serve`)
# over real TLS. A fitting disk passes (exit 0, no FAIL line); a destination
# smaller than its source fails with the seed tool's words and both sizes
# (exit 3) and nothing is written to it; a wrong token fails the handshake
# (exit 3); --json is NDJSON that parses, one object per check and a
# summary; usage errors exit 2.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.ext4 mkswap python3

src=$Q_TMP/src.img
h_mkdisk mbr "$src" 96 8
truncate -s 128M "$Q_TMP/big.img"
head -c 64M /dev/urandom >"$Q_TMP/small.img"
before=$(sha256sum <"$Q_TMP/small.img")

# check ARGS...: runs ferry check against the receiver; sets rc.
check() {
	rc=0
	"$FERRY" check --to "127.0.0.1:$H_PORT" "$@" >"$Q_TMP/out" 2>"$Q_TMP/err" || rc=$?
}
stop_serve() {
	kill "$H_PID" 2>/dev/null || true
	wait "$H_PID" 2>/dev/null || true
}

# 1. A fitting destination: PASS lines, exit 0.
h_serve "vda=$Q_TMP/big.img"
check --token "$H_TOKEN" --disk "$src=vda"
stop_serve
[ "$rc" = 0 ] || q_fail "fitting disk: exit $rc, want 0: $(cat "$Q_TMP/out" "$Q_TMP/err")"
grep -q "^FAIL" "$Q_TMP/out" && q_fail "fitting disk: a FAIL line: $(cat "$Q_TMP/out")"
grep -q "^PASS  127.0.0.1:$H_PORT: TLS handshake and token valid" "$Q_TMP/out" ||
	q_fail "no destination PASS line: $(cat "$Q_TMP/out")"
grep -q "^PASS  $src -> vda: 96.0 MiB fits in 128.0 MiB" "$Q_TMP/out" ||
	q_fail "no capacity PASS line: $(cat "$Q_TMP/out")"
grep -q "^PASS  the clocks of this server and the destination .* agree within" "$Q_TMP/out" ||
	q_fail "no clock comparison: $(cat "$Q_TMP/out")"
grep -q "^PASS  $src: 96.0 MiB, MBR: 1 ext4 .* (used blocks), 2 swap .* (header); a migration sends" \
	"$Q_TMP/out" || q_fail "no disk line with its partitions: $(cat "$Q_TMP/out")"
grep -q "^check: \(PASS\|WARN\) (" "$Q_TMP/out" || q_fail "no summary: $(cat "$Q_TMP/out")"
q_log "fitting disk: exit 0, $(grep -c '^PASS' "$Q_TMP/out") PASS lines"

# 2. Too small: the seed's wording with both sizes, exit 3, nothing written.
h_serve "vdb=$Q_TMP/small.img"
check --token "$H_TOKEN" --disk "$src"
stop_serve
[ "$rc" = 3 ] || q_fail "too small: exit $rc, want 3: $(cat "$Q_TMP/out" "$Q_TMP/err")"
want="^FAIL  the storage space of the target device is too small: vdb is 64.0 MiB (67108864 bytes), the source $src needs 96.0 MiB (100663296 bytes)  — "
grep -q "$want" "$Q_TMP/out" || q_fail "no seed wording in: $(cat "$Q_TMP/out")"
[ "$(sha256sum <"$Q_TMP/small.img")" = "$before" ] || q_fail "check wrote to the destination"
q_log "too small: exit 3 with the seed's wording"

# 3. A wrong token: the handshake fails, exit 3.
h_serve "vda=$Q_TMP/big.img"
check --token "$("$FERRY" token)" --disk "$src"
stop_serve
[ "$rc" = 3 ] || q_fail "wrong token: exit $rc, want 3: $(cat "$Q_TMP/out" "$Q_TMP/err")"
grep -q "^FAIL  .*does not match the token.*  — use the token the destination shows" \
	"$Q_TMP/out" || q_fail "wrong token: no FAIL line: $(cat "$Q_TMP/out")"
grep -q "fits in" "$Q_TMP/out" && q_fail "wrong token: capacity checked anyway"
q_log "wrong token: exit 3"

# 4. Nobody listening: FAIL with the firewall fix.
check --token "$H_TOKEN" --disk "$src"
[ "$rc" = 3 ] || q_fail "no receiver: exit $rc, want 3"
grep -q "^FAIL  cannot connect to 127.0.0.1:$H_PORT.*allow TCP port $H_PORT" "$Q_TMP/out" ||
	q_fail "no receiver: $(cat "$Q_TMP/out")"

# 5. --json parses: one object per check, then the summary.
h_serve "vdb=$Q_TMP/small.img"
check --token "$H_TOKEN" --disk "$src" --json
stop_serve
[ "$rc" = 3 ] || q_fail "--json too small: exit $rc, want 3"
python3 - "$Q_TMP/out" <<'PY' || q_fail "--json: $(cat "$Q_TMP/out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
checks, summary = lines[:-1], lines[-1]
assert all(o["event"] == "check" for o in checks), "not all check events"
assert all(set(o) == {"event", "check", "level", "found", "fix"} for o in checks)
assert all(o["level"] in ("PASS", "WARN", "FAIL") for o in checks)
assert summary["event"] == "check_summary" and summary["result"] == "FAIL", summary
for lv, key in (("PASS", "pass"), ("WARN", "warn"), ("FAIL", "fail")):
    assert summary[key] == sum(o["level"] == lv for o in checks), (lv, summary)
cap = [o for o in checks if o["check"] == "capacity"]
assert len(cap) == 1 and cap[0]["level"] == "FAIL", cap
assert "the storage space of the target device is too small: vdb is 64.0 MiB" in cap[0]["found"]
assert cap[0]["fix"], "a FAIL without a fix"
assert all(o["fix"] == "" for o in checks if o["level"] == "PASS")
names = {o["check"] for o in checks}
for n in ("root", "clock", "memory", "selinux", "disk", "destination", "clock_skew"):
    assert n in names, n
print("json ok: %d checks" % len(checks))
PY

# 6. Usage errors exit 2.
rc=0; "$FERRY" check --token "$H_TOKEN" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || q_fail "--token without --to: exit $rc, want 2"
rc=0; "$FERRY" check --disk "=vda" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || q_fail "--disk =vda: exit $rc, want 2"
rc=0; "$FERRY" check --to 127.0.0.1:1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || q_fail "--to without a token: exit $rc, want 2"
"$FERRY" check --help | grep -q "usage: ferry check" || q_fail "check --help"
echo "ok: fitting disk passes, too small and a wrong token fail with exit 3, --json parses"
