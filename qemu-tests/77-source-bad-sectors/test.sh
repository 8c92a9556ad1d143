#!/bin/bash
# A source disk with sectors the kernel cannot read: the agent runs inside
# a QEMU guest (our live kernel and initramfs, with the static agent and a
# small init script added) whose source disk is QEMU blkdebug failing
# every read of two chosen sectors with EIO; the destination is the host
# mode receiver on the host, reached through the user network (10.0.2.2).
#  A. By default the migration stops (exit 1) and names the sector range.
#  B. --skip-bad-sectors --checksum: it finishes; the two unreadable 4 KiB
#     blocks went as zeros and are listed in the summary, JSON and text;
#     the destination's report says the copy is not exact; every other
#     byte is the source's.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" "$FERRY_OUT/vmlinuz" "$FERRY_OUT/initramfs.cpio.gz" "$QEMU" \
	mkfs.ext4 python3 cpio

src=$Q_TMP/src.img
h_mkdisk bare "$src" 64 40
b1=$(h_data_chunk "$src" 24)
b2=$(h_data_chunk "$src" 40)
s1=$((b1 / 512 + 9)) s2=$((b2 / 512 + 17))
cat >"$Q_TMP/bad.conf" <<EOT
[inject-error]
event = "read_aio"
iotype = "read"
errno = "5"
sector = "$s1"

[inject-error]
event = "read_aio"
iotype = "read"
errno = "5"
sector = "$s2"
EOT
drive="file=blkdebug:$Q_TMP/bad.conf:$src,format=raw,readonly=on,rerror=report"

# The guest's PID 1: network on QEMU's user net, then the agent against
# the receiver on the host; its NDJSON and exit status (AGENT_RC) on the
# result port.
guest_agent() {
	local dir=$Q_TMP/extra.$1
	shift
	mkdir -p "$dir/bin"
	cp "$FERRY" "$dir/bin/ferry"
	cat >"$dir/agent.sh" <<EOT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/bin/ferry migrate --to 10.0.2.2:$H_PORT --token $H_TOKEN --disk /dev/vda=vda --ignore-check \
	--json --state-dir /tmp/st --handoff poweroff $* >/dev/ttyS1 2>/dev/console
echo "AGENT EXIT \$?" >/dev/ttyS1
sync
poweroff -f
EOT
	chmod +x "$dir/agent.sh"
	(cd "$dir" && find . | cpio -o -H newc --quiet) >"$dir.cpio"
	q_boot kernel --drive "$drive" --initrd-add "$dir.cpio" --append "rdinit=/agent.sh"
	q_wait_log "$Q_RESULT" '^AGENT EXIT' 240 >/dev/null || q_fail "the agent in the guest did not finish"
	AGENT_RC=$(sed -n 's/^AGENT EXIT //p' "$Q_RESULT" | tr -d '\r')
}

# A. The default: stop and name the sectors.
dst=$Q_TMP/a.img
truncate -s 64M "$dst"
h_serve "vda=$dst"
guest_agent a
q_stop
[ "$AGENT_RC" = 1 ] || q_fail "with unreadable sectors the agent exited $AGENT_RC, want 1"
re='cannot read sectors ([0-9]+)-([0-9]+) \(bytes [0-9]+ to [0-9]+\): [^(]*\(EIO\)'
line=$(grep -a -E -m1 "$re" "$Q_SERIAL" | tr -d '\r') ||
	q_fail "the error does not name the sectors: $(grep -a 'ferry: error' "$Q_SERIAL" | tail -n 1)"
[[ $line =~ $re ]]
lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
[ "$lo" -le "$s1" ] && [ "$s1" -le "$hi" ] && [ $((hi - lo)) -lt 8 ] ||
	q_fail "the error names sectors $lo-$hi; sector $s1 is the bad one"
grep -a -q -- "--skip-bad-sectors" <<<"$line" || q_fail "the error does not say how to go on"
grep -q "FERRY RESULT ok" "$H_LOG.result" && q_fail "the destination reported success"
echo "A: $(sed 's/.*ferry: error: //' <<<"$line")"

# B. --skip-bad-sectors: zeros for the two 4 KiB blocks, listed, not exact.
dst=$Q_TMP/b.img
truncate -s 64M "$dst"
h_serve "vda=$dst"
guest_agent b --skip-bad-sectors --checksum
q_stop
[ "$AGENT_RC" = 0 ] || q_fail "--skip-bad-sectors exited $AGENT_RC: $(grep -a 'ferry: error' "$Q_SERIAL" | tail -n 1)"
h_wait_serve || q_fail "receiver failed: $(tail -n 3 "$H_LOG")"
tr -d '\r' <"$Q_RESULT" >"$Q_TMP/b.json"
python3 - "$Q_TMP/b.json" "$src" "$dst" "$s1" "$s2" <<'PY' || q_fail "--skip-bad-sectors: see above"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
summ = [e for e in ev if e["event"] == "summary"][-1]
want = sorted((int(s) * 512 // 4096 * 4096, 4096) for s in sys.argv[4:6])
got = sorted((u["offset"], u["length"]) for u in summ["unreadable"])
if got != want or summ["unreadable_bytes"] != 8192 or summ["exact"] is not False:
    sys.exit("summary lists %s (%s bytes, exact %s), want %s" %
             (got, summ["unreadable_bytes"], summ["exact"], want))
if sorted((e["offset"], e["length"]) for e in ev if e["event"] == "unreadable") != want:
    sys.exit("the unreadable events do not list the two blocks once each")
rep = [e["text"] for e in ev if e["event"] == "report"]
if not any("the copy is not exact" in t and "2 range(s)" in t for t in rep):
    sys.exit("the destination's report does not say the copy is not exact: %s" % rep)
if not [e for e in ev if e["event"] == "verify" and e["differing_chunks"] == 0]:
    sys.exit("--checksum did not verify")
a, b = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
for off, n in want:
    if b[off:off + n] != bytes(n) or a[off:off + n] == bytes(n):
        sys.exit("block at %d: want zeros on the destination (and data on the source)" % off)
    a = a[:off] + bytes(n) + a[off + n:]
if a != b:
    sys.exit("the destination differs from the source outside the unreadable blocks")
print("B: %s" % ", ".join("bytes %d+%d" % w for w in want))
PY
grep -a -q "ferry: the copy is not exact: 8.0 KiB in 2 range(s)" "$Q_SERIAL" ||
	q_fail "the text summary does not say the copy is not exact"
for s in "$s1" "$s2"; do
	grep -a -q "ferry:   /dev/vda sectors $((s / 8 * 8))-$((s / 8 * 8 + 7)) " "$Q_SERIAL" ||
		q_fail "the text summary does not list sectors $((s / 8 * 8))-$((s / 8 * 8 + 7))"
done
echo "ok: unreadable sectors $s1 and $s2: by default the migration stopped naming sectors $lo-$hi; with --skip-bad-sectors both 4 KiB blocks went as zeros, listed, the report says not exact"
