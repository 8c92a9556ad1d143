#!/bin/bash
# A failed migration and `ferry clean --wipe`: while a migration is under
# way its disk carries the in-progress mark and no partition table (it
# never looks bootable); clean aborts the session, blanks the first and
# last MiB of that disk, leaves the other disk untouched, and the
# receiver leaves migration mode.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" sfdisk mkfs.ext4 mkswap python3

src=$Q_TMP/src.img dst=$Q_TMP/dst.img other=$Q_TMP/other.img
h_mkdisk mbr "$src" 96 48
# The destination held an old system: a partition table and data.
h_mkdisk gpt "$dst" 96 8
head -c 32M /dev/urandom >"$other"
other_sum=$(sha256sum <"$other")
token=$("$FERRY" token)
: >"$Q_TMP/r.result"
"$FERRY_INIT" serve --listen 127.0.0.1:0 --token "$token" --result "$Q_TMP/r.result" \
	--disk "vda=$dst" --disk "vdb=$other" >"$Q_TMP/r.log" 2>&1 &
rpid=$!
Q_PIDS+=("$rpid")
for _ in $(seq 1 100); do
	port=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$Q_TMP/r.result")
	[ -n "$port" ] && break
	sleep 0.05
done
h_proxy "$port" --after $((20 << 20)) --kill-pidfile "$Q_TMP/agent.pid"
"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$token" --disk "$src=vda" --retries 0 \
	--state-dir "$Q_TMP/st" >/dev/null 2>&1 &
echo $! >"$Q_TMP/agent.pid"
wait $! && q_fail "the agent was not killed"
p_stop

head -c 27 "$dst" | grep -q "FERRY-MIGRATION-IN-PROGRESS" || q_fail "no in-progress mark on the half-migrated disk"
sfdisk -d "$dst" >/dev/null 2>&1 && q_fail "the half-migrated disk still shows a partition table"
"$FERRY" clean --to "127.0.0.1:$port" --token "$token" --wipe --handoff poweroff \
	>"$Q_TMP/out" 2>"$Q_TMP/err" || q_fail "ferry clean failed: $(cat "$Q_TMP/err")"
grep -q "vda: unfinished migration (session .*) wiped" "$Q_TMP/out" || q_fail "report: $(cat "$Q_TMP/out")"
wait "$rpid" || q_fail "the receiver did not leave migration mode cleanly: $(tail -n 3 "$Q_TMP/r.log")"
cmp -s <(head -c 1M "$dst") <(head -c 1M /dev/zero) || q_fail "the first MiB was not blanked"
cmp -s <(tail -c 1M "$dst") <(head -c 1M /dev/zero) || q_fail "the last MiB was not blanked"
[ "$other_sum" = "$(sha256sum <"$other")" ] || q_fail "clean touched a disk that was not being migrated"
grep -q "FERRY CLEAN wiped=vda" "$Q_TMP/r.result" || q_fail "no clean line on the result port"
echo "ok: in-progress mark seen, session aborted, vda blanked at both ends, vdb untouched"
