#!/bin/bash
# A source disk that changed size between runs (grown by the hypervisor,
# or the wrong disk): a run killed part-way, the source grown by 16 MiB,
# then `ferry migrate` again must refuse to continue - naming the state
# file, the old size and --restart - and send nothing; with --restart it
# starts a new session that replaces the unfinished one and the result is
# identical to the grown source. A source that shrank is refused too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

src=$Q_TMP/src.img
h_mkdisk bare "$src" 96 56
dst=$Q_TMP/dst.img
truncate -s 128M "$dst"
H_ONCE=0 H_TIMEOUT=180 h_serve "vda=$dst"
h_proxy "$H_PORT" --after $((30 << 20)) --kill-pidfile "$Q_TMP/agent.pid"
"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$src=vda" \
	--state-dir "$Q_TMP/st" --flush-every 4 --retries 0 >/dev/null 2>"$Q_TMP/k.err" &
echo $! >"$Q_TMP/agent.pid"
rc=0
{ wait $! || rc=$?; } 2>/dev/null
p_stop
[ "$rc" = 137 ] || q_fail "the agent was not killed (exit $rc)"
applied=$(h_applied "$H_LOG")

cp "$src" "$Q_TMP/orig.img"
for change in grown shrunk; do
	cp "$Q_TMP/orig.img" "$src"
	if [ $change = grown ]; then
		truncate -s 112M "$src"
	else
		truncate -s 80M "$src"
	fi
	rc=0
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
		--state-dir "$Q_TMP/st" --flush-every 4 --ignore-check >/dev/null 2>"$Q_TMP/$change.err" || rc=$?
	[ "$rc" = 1 ] || q_fail "a $change source was not refused (exit $rc)"
	now=$(stat -c %s "$src")
	grep -q "$src changed size since the unfinished migration recorded in $Q_TMP/st/migrate-.*: $now bytes now, $((96 << 20)) then; .* run with --restart" \
		"$Q_TMP/$change.err" || q_fail "the $change source's error is not clear: $(tail -n 2 "$Q_TMP/$change.err")"
	[ "$(h_applied "$H_LOG")" = "$applied" ] || q_fail "the refused run with a $change source sent data"
done
echo "refused: $(sed -n 's/^ferry: error: //p' "$Q_TMP/grown.err" | sed "s|$Q_TMP/||g")"
cp "$Q_TMP/orig.img" "$src"
truncate -s 112M "$src"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$src=vda" \
	--state-dir "$Q_TMP/st" --flush-every 4 --restart --ignore-check >/dev/null 2>"$Q_TMP/r.err" ||
	q_fail "--restart failed: $(tail -n 3 "$Q_TMP/r.err")"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
grep -q "a new migration replaces unfinished session" "$H_LOG" ||
	q_fail "the receiver did not replace the unfinished session"
cmp -n $((112 << 20)) "$src" "$dst" || q_fail "the destination differs from the grown source"
echo "ok: a grown or shrunk source is refused with the state file, the old size and --restart named, nothing sent; --restart migrates it identical"
