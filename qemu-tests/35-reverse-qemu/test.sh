#!/bin/bash
# Reverse mode in the real live environment: booted with
# ferry.connect=10.0.2.2:PORT, ferry-init dials out (slirp maps the guest's
# connections to 10.0.2.2 onto the host's 127.0.0.1) to an agent waiting
# with `ferry status --listen 127.0.0.1:PORT`; no port is forwarded into
# the guest for this. The agent gets the destination's disks with exact
# sizes, the console banner shows the reverse mode, and the result port
# says what it dials. The agent is started late, so the destination's
# retry is exercised too.
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" python3

token=$("$FERRY" token)
port=$(q_free_port)
q_boot kernel --disk 67108864 --disk 100663808 \
	--append "ferry.token=$token ferry.connect=10.0.2.2:$port"
# The agent starts only after the destination found nobody there: it
# keeps dialing (slirp answers the guest with a refusal, as a host would).
q_wait_log "$Q_SERIAL" "dialing the agent at 10.0.2.2:$port: Connection refused" 120 >/dev/null ||
	q_fail "the destination did not dial out (or did not say it was refused)"
q_ferry status --listen "127.0.0.1:$port" --token "$token" --wait 90 --json \
	>"$Q_TMP/status.json" 2>"$Q_TMP/status.err" ||
	q_fail "ferry status --listen exited $?: $(cat "$Q_TMP/status.err")"
echo "boot-to-dial-in (agent started after the first refusal): $(q_elapsed "$Q_T0") s"

q_expect_disks "$Q_TMP/status.json" "vda 67108864" "vdb 100663808"
python3 - "$Q_TMP/status.json" <<'PY' || q_fail "status JSON: $(cat "$Q_TMP/status.json")"
import json, sys
o = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")][-1]
assert o["state"] == "waiting", o["state"]
# The destination's address as the agent saw it: slirp's host side.
assert o["to"].startswith("127.0.0.1:"), o["to"]
PY
grep -q "the destination dialed in from 127.0.0.1:" "$Q_TMP/status.err" ||
	q_fail "the agent did not log the dial-in: $(cat "$Q_TMP/status.err")"

q_wait_log "$Q_RESULT" "^FERRY READY connect=10.0.2.2:$port fp=fp:[0-9a-f]{8}" 5 >/dev/null ||
	q_fail "no FERRY READY connect= line on the result port"
q_wait_log "$Q_SERIAL" "connect +10.0.2.2:$port +\\(reverse mode" 5 >/dev/null ||
	q_fail "the console banner does not show the reverse mode"
q_wait_log "$Q_SERIAL" "ferry migrate --listen :$port" 5 >/dev/null ||
	q_fail "the console banner does not say what to run on the source"
# After the session the destination dials again, for the migration.
q_wait_log "$Q_SERIAL" "session ended" 10 >/dev/null || q_fail "no session end on the console"
echo "ok: the destination dialed out to 127.0.0.1:$port; vda 67108864, vdb 100663808"
