#!/bin/bash
# Authentication and exclusivity: a wrong token is refused (both ends say
# so), a second client is told "busy" while a session is held, a TLS client
# that completes the handshake but proves nothing is refused, only TLS 1.2
# is spoken, and with no ferry.token= the destination makes one up and
# shows it on the console, where it works.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
q_need "$FERRY" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" openssl python3

token=$("$FERRY" token) || q_fail "ferry token failed"
wrong=$("$FERRY" token) || q_fail "ferry token failed"
[ "$token" != "$wrong" ] || q_fail "ferry token printed the same token twice: $token"

q_boot kernel --disk 67108864 --append "ferry.token=$token"
to=127.0.0.1:$Q_PORT
q_ferry status --to "$to" --token "$token" --wait 60 >"$Q_TMP/ok.out" 2>"$Q_TMP/ok.err" ||
	q_fail "ferry status with the right token exited $?: $(cat "$Q_TMP/ok.err")"

# --- wrong token
n0=$(q_count_log "$Q_SERIAL" 'refused')
rc=0
q_ferry status --to "$to" --token "$wrong" >"$Q_TMP/wrong.out" 2>"$Q_TMP/wrong.err" || rc=$?
[ "$rc" = 1 ] || q_fail "wrong token: ferry status exited $rc, want 1"
grep -qi 'token' "$Q_TMP/wrong.err" ||
	q_fail "wrong token: stderr does not mention the token: $(cat "$Q_TMP/wrong.err")"
grep -q '^ferry: error: ' "$Q_TMP/wrong.err" ||
	q_fail "wrong token: stderr is not 'ferry: error: ...': $(cat "$Q_TMP/wrong.err")"
q_wait_count "$Q_SERIAL" 'refused' "$n0" 20 ||
	q_fail "wrong token: no 'refused' line on the destination's console"
echo "ok: wrong token refused: $(head -n1 "$Q_TMP/wrong.err")"

# --- a TLS client that completes the handshake but sends no token proof
n1=$(q_count_log "$Q_SERIAL" 'refused')
head -c 4096 /dev/zero | tr '\0' '\377' |
	timeout 30 openssl s_client -connect "$to" -tls1_2 -quiet \
		>"$Q_TMP/garbage.out" 2>&1 || true
q_wait_count "$Q_SERIAL" 'refused' "$n1" 20 ||
	q_fail "garbage after the TLS handshake: no 'refused' line on the console"
echo "ok: unauthenticated TLS client refused"

# --- one session at a time
q_ferry status --to "$to" --token "$token" --json --watch 8 \
	>"$Q_TMP/hold.out" 2>"$Q_TMP/hold.err" &
hold=$!
q_wait_log "$Q_TMP/hold.out" '"event"' 30 >/dev/null ||
	q_fail "the holding session printed no status: $(cat "$Q_TMP/hold.err")"
rc=0
q_ferry status --to "$to" --token "$token" >"$Q_TMP/busy.out" 2>"$Q_TMP/busy.err" || rc=$?
[ "$rc" = 1 ] || q_fail "second client: ferry status exited $rc, want 1"
grep -qi 'busy' "$Q_TMP/busy.err" ||
	q_fail "second client: stderr does not say busy: $(cat "$Q_TMP/busy.err")"
rc=0
wait "$hold" || rc=$?
[ "$rc" = 0 ] || q_fail "the holding session exited $rc: $(cat "$Q_TMP/hold.err")"
[ "$(grep -c '"event"' "$Q_TMP/hold.out")" -ge 3 ] ||
	q_fail "--watch 8 reprinted the status fewer than 3 times"
echo "ok: second client told busy: $(head -n1 "$Q_TMP/busy.err")"
# The session is free again.
q_ferry status --to "$to" --token "$token" >/dev/null 2>"$Q_TMP/after.err" ||
	q_fail "ferry status after the session ended: $(cat "$Q_TMP/after.err")"

# --- TLS versions: 1.2 handshakes, 1.1 and 1.0 do not
handshakes() { grep -qE '^New, TLSv1(\.[0-9])?, Cipher is [A-Z0-9]' "$1"; }
timeout 30 openssl s_client -connect "$to" -tls1_2 </dev/null >"$Q_TMP/tls12.out" 2>&1 || true
handshakes "$Q_TMP/tls12.out" ||
	q_fail "no TLS 1.2 handshake: $(grep -E 'Cipher|error' "$Q_TMP/tls12.out" | head -n3)"
grep -E '^New, ' "$Q_TMP/tls12.out" | sed 's/^/ok: TLS 1.2: /'
for v in tls1_1 tls1; do
	timeout 30 openssl s_client -connect "$to" -"$v" -cipher 'DEFAULT:@SECLEVEL=0' \
		</dev/null >"$Q_TMP/$v.out" 2>&1 || true
	! handshakes "$Q_TMP/$v.out" ||
		q_fail "-$v completed a handshake: $(grep -E '^New, ' "$Q_TMP/$v.out")"
done
echo "ok: TLS 1.1 and 1.0 refused"
q_stop

# --- no ferry.token=: the destination generates one and shows it
q_boot kernel --disk 67108864
shown=$(q_token "$Q_SERIAL" 60) || q_fail "no token line on the console"
[ "$shown" != "$token" ] || q_fail "the generated token equals the previous one"
q_ferry status --to "127.0.0.1:$Q_PORT" --token "$shown" --wait 60 \
	>"$Q_TMP/gen.out" 2>"$Q_TMP/gen.err" ||
	q_fail "ferry status with the console's token exited $?: $(cat "$Q_TMP/gen.err")"
echo "ok: generated token $shown works"
