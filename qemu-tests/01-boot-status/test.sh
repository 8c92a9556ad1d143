#!/bin/bash
# Direct kernel boot with two virtio disks of different sizes and a token on
# the command line: the agent's status must list exactly those two disks
# with their exact byte sizes. Also prints boot-to-handshake, the time from
# QEMU's start to the first authenticated reply (goal: 4 s under TCG).
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" python3

token=$("$FERRY" token) || q_fail "ferry token failed"
[[ $token =~ ^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$ ]] || q_fail "ferry token printed '$token'"

# 64 MiB and 96 MiB + 512 bytes: sizes that only exact byte counts tell apart.
q_boot kernel --disk 67108864 --disk 100663808 --append "ferry.token=$token"
q_ferry status --to "127.0.0.1:$Q_PORT" --token "$token" --json --wait 60 \
	>"$Q_TMP/status.json" 2>"$Q_TMP/status.err" ||
	q_fail "ferry status exited $?: $(cat "$Q_TMP/status.err")"
echo "boot-to-handshake: $(q_elapsed "$Q_T0") s"

q_expect_disks "$Q_TMP/status.json" "vda 67108864" "vdb 100663808"
python3 - "$Q_TMP/status.json" <<'PY' || q_fail "status JSON: $(cat "$Q_TMP/status.json")"
import json, sys
o = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")][-1]
assert o["state"] == "waiting", o["state"]
for d in o["disks"]:
    assert d["logical_sector"] == 512 and not d["readonly"], d
PY

# The result port and the console agree on the listener and its key.
ready=$(q_wait_log "$Q_RESULT" '^FERRY READY port=443 fp=fp:[0-9a-f]{8}' 5) ||
	q_fail "no FERRY READY line on the result port"
fp=${ready##*fp=}
fp=${fp%%[[:space:]]*}
q_wait_log "$Q_SERIAL" "\\($fp\\)" 5 >/dev/null ||
	q_fail "console banner does not show the fingerprint $fp"
q_wait_log "$Q_SERIAL" 'disk +vdb .*\(100663808 bytes\)' 5 >/dev/null ||
	q_fail "console banner does not list vdb with its size"
echo "ok: vda 67108864, vdb 100663808, $fp"
