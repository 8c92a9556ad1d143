#!/bin/bash
# The relay instance in the real live environment: booted with
# ferry.mode=relay and ferry.relay.allow=10.0.2.2/32:PORT (no disks, no
# token), it listens on :443 (forwarded from the host by slirp). The
# destination is `ferry-init serve` on the host's 127.0.0.1:PORT, which the
# guest reaches as 10.0.2.2; the agent on the host migrates to
# 10.0.2.2:PORT with --proxy pointing at the guest. Asserts: the migration
# through the guest is identical; the guest's console shows the flow with
# its bytes and rate; a port outside the allow-list is refused with the
# relay's reason (the relay holds no token: it was booted without one).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" mkfs.ext4 python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img
h_mkdisk bare "$src" 32 10
truncate -s 32M "$dst"
# slirp connects the guest's 10.0.2.2 to the host's 127.0.0.1.
H_TIMEOUT=400 h_serve "vda=$dst"
q_boot kernel --mem 256 --append "ferry.mode=relay ferry.relay.allow=10.0.2.2/32:$H_PORT"
q_wait_log "$Q_RESULT" "^FERRY READY relay port=443" 180 >/dev/null ||
	q_fail "the relay did not start in the guest: $(tail -n 20 "$Q_SERIAL")"
echo "boot to relay ready: $(q_elapsed "$Q_T0") s"
RELAY=http://127.0.0.1:$Q_PORT

rc=0
q_ferry status --proxy "$RELAY" --to "10.0.2.2:$((H_PORT + 1))" --token "$H_TOKEN" >/dev/null \
	2>"$Q_TMP/deny.err" || rc=$?
[ "$rc" = 1 ] && grep -q "403 ferry relay: 10.0.2.2:$((H_PORT + 1)) is not on its allow-list (10.0.2.2/32:$H_PORT)" \
	"$Q_TMP/deny.err" || q_fail "a port outside the allow-list: exit $rc, $(cat "$Q_TMP/deny.err")"

Q_FERRY_TIMEOUT=300 q_ferry migrate --proxy "$RELAY" --to "10.0.2.2:$H_PORT" --token "$H_TOKEN" \
	--disk "$src=vda" --state-dir "$Q_TMP/st" >"$Q_TMP/m.out" 2>"$Q_TMP/m.err" ||
	q_fail "migrate through the guest relay: $(tail -n 5 "$Q_TMP/m.err")"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
cmp -s "$src" "$dst" || q_fail "the destination differs from the source"
# slirp's connections to 10.0.2.2 come from the host's loopback.
grep -q "127.0.0.1:[0-9]*: session from" "$H_LOG" || q_fail "the receiver saw no session"
q_wait_log "$Q_SERIAL" "relay: flow [0-9]+ 10\\.0\\.2\\.2:[0-9]+ -> 10\\.0\\.2\\.2:$H_PORT closed after .* up, .* down, .*/s" 10 >/dev/null ||
	q_fail "the guest's console shows no flow line: $(grep relay "$Q_SERIAL" | tail -n 5)"
up=$(sed -n "s/^FERRY RELAY close .*target=10.0.2.2:$H_PORT up=\([0-9]*\) .*/\1/p" "$Q_RESULT" |
	awk '{ s += $1 } END { print s + 0 }')
[ "$up" -gt $((8 << 20)) ] || q_fail "the relay carried only $up bytes up"
grep -q "FERRY RELAY refused .*code=403 target=10.0.2.2:$((H_PORT + 1))" "$Q_RESULT" ||
	q_fail "the relay's result port has no refusal"
echo "ok: migrated through the relay in the live environment, identical; $up bytes up; outside the allow-list refused"
