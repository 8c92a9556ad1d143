#!/bin/bash
# --bwlimit and --compress, measured outside the agent by a counting proxy:
#  - at 4 MiB/s the average over more than 10 s is within 5 % of the
#    limit, and at no moment has more than rate * time + one chunk gone out;
#  - --compress 3 on compressible data sends a fraction of it; on random
#    data it sends it raw and turns itself off; the results are identical.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 python3

# Random data sent whole (no filesystem): 48 MiB.
rnd=$Q_TMP/rnd.img
head -c 48M /dev/urandom >"$rnd"
truncate -s 48M "$Q_TMP/d1.img"
h_serve "vda=$Q_TMP/d1.img"
h_proxy "$H_PORT" --trace "$Q_TMP/trace"
"$FERRY" migrate --to "127.0.0.1:$P_PORT" --token "$H_TOKEN" --disk "$rnd=vda" --bwlimit 4M \
	--state-dir "$Q_TMP/st1" >/dev/null 2>"$Q_TMP/e1" || q_fail "bwlimit run failed: $(tail -n 3 "$Q_TMP/e1")"
h_wait_serve || true
p_stop
cmp "$rnd" "$Q_TMP/d1.img" || q_fail "bwlimit run: destination differs"
python3 - "$Q_TMP/trace" $((4 << 20)) 65536 <<'PY' || q_fail "bandwidth limit not kept"
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
rate, chunk = float(sys.argv[2]), float(sys.argv[3])
# The data phase: from the first to the last large read.
t0, t1 = rows[0][0], rows[-1][0]
total = sum(b for _, b in rows)
avg = total / (t1 - t0)
print("average %.3f MiB/s over %.1f s (limit %.3f)" % (avg / 2**20, t1 - t0, rate / 2**20))
assert t1 - t0 >= 10, "too short to judge"
assert abs(avg - rate) <= 0.05 * rate, "average %.0f B/s, limit %.0f" % (avg, rate)
# Bursts: a token bucket of one chunk means that by any moment t at most
# rate * (t - t0) + one chunk can have gone out (plus TLS framing and the
# handshake, a few KiB). The proxy can only see bytes later than they
# were sent, so its own delays never make this fail wrongly.
cum = 0.0
worst = 0.0
for t, b in rows:
    cum += b
    worst = max(worst, cum - rate * (t - t0))
allowed = chunk * 1.02 + 16384
print("largest burst above the rate: %d bytes (allowed %d)" % (worst, allowed))
assert worst <= allowed
PY

# Compressible: text files in ext4.
txt=$Q_TMP/txt.img
mkdir -p "$Q_TMP/troot"
python3 -c 'import sys
for i in range(12):
    with open(sys.argv[1] + "/t%d.txt" % i, "w") as f:
        for k in range(60000):
            f.write("record %d of file %d: the quick brown fox %d\n" % (k, i, k % 97))' "$Q_TMP/troot"
rm -f "$txt"
truncate -s 96M "$txt"
mkfs.ext4 -q -F -d "$Q_TMP/troot" "$txt"
for z in 0 3; do
	truncate -s 96M "$Q_TMP/d2.$z.img"
	h_serve "vda=$Q_TMP/d2.$z.img"
	"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$txt=vda" --compress $z \
		--json --state-dir "$Q_TMP/st2$z" >"$Q_TMP/z$z.json" 2>"$Q_TMP/ez$z" ||
		q_fail "--compress $z failed: $(tail -n 3 "$Q_TMP/ez$z")"
	h_wait_serve || true
	cmp "$txt" "$Q_TMP/d2.$z.img" || q_fail "--compress $z: destination differs"
done
plain=$(h_json_field "$Q_TMP/z0.json" summary bytes_sent)
packed=$(h_json_field "$Q_TMP/z3.json" summary bytes_sent)
[ "$packed" -lt $((plain / 3)) ] || q_fail "--compress 3 sent $packed bytes, plain $plain"

# Random data with --compress: sent raw, and compression turns itself off.
truncate -s 48M "$Q_TMP/d3.img"
h_serve "vda=$Q_TMP/d3.img"
"$FERRY" migrate --to "127.0.0.1:$H_PORT" --token "$H_TOKEN" --disk "$rnd=vda" --compress 3 \
	--json --state-dir "$Q_TMP/st3" >"$Q_TMP/z.json" 2>"$Q_TMP/ez" || q_fail "random --compress failed"
h_wait_serve || true
cmp "$rnd" "$Q_TMP/d3.img" || q_fail "random --compress: destination differs"
grep -q "compression off for the next" "$Q_TMP/ez" || q_fail "compression did not turn itself off on random data"
zin=$(h_json_field "$Q_TMP/z.json" summary compressed_in)
[ "$zin" -lt $((48 << 20)) ] || q_fail "compression stayed on for all $zin bytes of random data"
echo "ok: bandwidth kept; --compress 3 sent $packed of $plain bytes; off by itself on random data after $zin bytes"
