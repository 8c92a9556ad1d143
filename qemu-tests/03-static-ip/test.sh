#!/bin/bash
# Static addressing from the kernel's ip= syntax
# (client:server:gw:netmask:hostname:device:autoconf), with slirp's own
# addresses so the forwarded port still reaches the guest: the agent gets a
# reply, the console says the address was set statically, and no DHCP ran.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU"

token=$("$FERRY" token) || q_fail "ferry token failed"
q_boot kernel --disk 67108864 \
	--append "ferry.token=$token ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"
q_ferry status --to "127.0.0.1:$Q_PORT" --token "$token" --wait 60 \
	>"$Q_TMP/status.out" 2>"$Q_TMP/status.err" ||
	q_fail "ferry status exited $?: $(cat "$Q_TMP/status.err")"

line=$(q_wait_log "$Q_SERIAL" '^ferry-init: .*static.*10\.0\.2\.15|^ferry-init: .*10\.0\.2\.15.*static' 5) ||
	q_fail "no 'static ... 10.0.2.15' line from ferry-init on the console"
echo "ok: $line"
q_wait_log "$Q_SERIAL" 'listen +10\.0\.2\.15:443' 5 >/dev/null ||
	q_fail "the banner does not show 'listen 10.0.2.15:443'"
if grep -a -iE '^ferry-init: .*(dhcp|udhcpc)' "$Q_SERIAL" >"$Q_TMP/dhcp.lines"; then
	q_fail "DHCP ran despite ip=...:off: $(head -n1 "$Q_TMP/dhcp.lines")"
fi
echo "ok: no DHCP"
